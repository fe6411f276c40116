/*
 * repl.c — `rapport repl`: Lua on the live database, one chunk at a time, with a history file,
 * multi-line chunks, tab completion of the `crm` API and of entity and field names, records
 * printed as text and tables, and dry runs that show what an input would have changed.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <editline/readline.h>
#include <lauxlib.h>
#include <lua.h>

#include "rapport/lua.h"
#include "rapport/store.h"

#define CHUNKNAME "repl" /* the file in "file:line: message" */
#define HISTORY_MAX 1000 /* entries kept in the history file */
#define CELL_MAX 40      /* a table cell longer than this many characters is cut */

/* ---- a growable string ------------------------------------------------------------------- */

typedef struct buf {
    char *p;
    size_t n, cap;
} buf_t;

static bool buf_add(buf_t *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return false;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return true;
}

static bool buf_str(buf_t *b, const char *s)
{
    return buf_add(b, s, strlen(s));
}

/* ---- the session ------------------------------------------------------------------------- */

typedef struct repl {
    rp_store_t *s;
    rp_lua_t *l;
    lua_State *L;
    bool tty;      /* stdin is a terminal: libedit, prompts, completion and history */
    bool dry;      /* :dry on */
    char *history; /* the history file, or NULL when there is none (owned) */
} repl_t;

/* libedit's completion callback and a signal handler take no user data, so they find the
 * session here; it is set for as long as rp_cli_repl() runs. */
static repl_t *active;

/* ---- is the chunk complete? -------------------------------------------------------------- */

/* Compiles @p code (after @p prefix) without running it; the error message, if any, is left in
 * @p msg (owned; NULL when it compiled). */
static int try_load(lua_State *L, const char *prefix, const char *code, char **msg)
{
    buf_t b = {0};
    *msg = NULL;
    if (!buf_str(&b, prefix) || !buf_str(&b, code)) {
        free(b.p);
        return LUA_ERRMEM;
    }
    int rc = luaL_loadbufferx(L, b.p, b.n, "=" CHUNKNAME, "t");
    free(b.p);
    if (rc != LUA_OK) {
        const char *m = lua_tostring(L, -1);
        *msg = strdup(m ? m : "?");
    }
    lua_pop(L, 1);
    return rc;
}

/* Whether @p code stops where more may follow: the parser wanted more text when it hit the end,
 * as Lua's own REPL decides ("… near <eof>"). An expression is complete as it is. */
static bool incomplete(repl_t *r, const char *code)
{
    char *msg;
    if (try_load(r->L, "return ", code, &msg) == LUA_OK)
        return false;
    free(msg);
    int rc = try_load(r->L, "", code, &msg);
    static const char mark[] = "<eof>";
    size_t n = msg ? strlen(msg) : 0;
    bool more = rc == LUA_ERRSYNTAX && n >= sizeof mark - 1 &&
                strcmp(msg + n - (sizeof mark - 1), mark) == 0;
    free(msg);
    return more;
}

/* ---- Ctrl-C ------------------------------------------------------------------------------ */

/* On a terminal, Ctrl-C drops the input being typed, and stops a chunk that runs, the way Lua's
 * own REPL does it: the handler only sets a hook (lua_sethook is safe in a signal handler), and
 * the hook raises the error in Lua's own time. */
static volatile sig_atomic_t interrupted, running;
static lua_Hook saved_hook;
static int saved_mask, saved_count;

static void interrupt_hook(lua_State *L, lua_Debug *ar)
{
    lua_sethook(L, saved_hook, saved_mask, saved_count);
    lua_getinfo(L, "Sl", ar);
    if (ar->currentline > 0)
        luaL_error(L, "%s:%d: interrupted", ar->short_src, ar->currentline);
    luaL_error(L, "interrupted");
}

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
    if (running && active)
        lua_sethook(active->L, interrupt_hook,
                    LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT, 1);
}

/* ---- printing ---------------------------------------------------------------------------- */

static const char *const system_fields[] = {"version",    "created_at", "created_by", "updated_at",
                                            "updated_by", "deleted_at", NULL};

static bool is_system(const char *k)
{
    for (int i = 0; system_fields[i]; i++)
        if (strcmp(k, system_fields[i]) == 0)
            return true;
    return false;
}

/* A record is an object with a positive integer id: what crm.get, crm.find and crm.create
 * hand back (and a search hit, which reads well the same way). */
static bool is_record(json_t *v)
{
    json_t *id = json_object_get(v, "id");
    return json_is_object(v) && json_is_integer(id) && json_integer_value(id) > 0;
}

static bool is_record_list(json_t *v)
{
    if (!json_is_array(v) || json_array_size(v) == 0)
        return false;
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) if (!is_record(x)) return false;
    return true;
}

/* The fields of the entity whose fields cover every key of @p objs (the smallest such entity),
 * so columns follow the order the entity was defined in. Borrowed from @p schema, or NULL. */
static json_t *guess_fields(json_t *schema, json_t *const *objs, size_t n)
{
    json_t *best = NULL;
    const char *name;
    json_t *d;
    json_object_foreach(schema, name, d) {
        json_t *fields = json_object_get(d, "fields");
        bool covers = true;
        for (size_t i = 0; i < n && covers; i++) {
            const char *k;
            json_t *v;
            json_object_foreach(objs[i], k, v) {
                if (strcmp(k, "id") != 0 && !is_system(k) && !json_object_get(fields, k)) {
                    covers = false;
                    break;
                }
            }
        }
        if (covers && (!best || json_object_size(fields) < json_object_size(best)))
            best = fields;
    }
    return best;
}

typedef struct keys {
    const char **k; /* borrowed from the objects */
    size_t n, cap;
} keys_t;

static bool keys_has(const keys_t *ks, const char *k)
{
    for (size_t i = 0; i < ks->n; i++)
        if (strcmp(ks->k[i], k) == 0)
            return true;
    return false;
}

static void keys_add(keys_t *ks, const char *k)
{
    if (keys_has(ks, k))
        return;
    if (ks->n == ks->cap) {
        size_t cap = ks->cap ? ks->cap * 2 : 16;
        const char **p = realloc(ks->k, cap * sizeof *p);
        if (!p)
            return; /* a column fewer rather than no output */
        ks->k = p;
        ks->cap = cap;
    }
    ks->k[ks->n++] = k;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool any_has(json_t *const *objs, size_t n, const char *k)
{
    for (size_t i = 0; i < n; i++)
        if (json_object_get(objs[i], k))
            return true;
    return false;
}

/* The keys of @p objs in reading order: id, the entity's fields as defined, any others by name,
 * then (with @p with_system) the system fields. */
static void order_keys(json_t *schema, json_t *const *objs, size_t n, bool with_system, keys_t *out)
{
    if (any_has(objs, n, "id"))
        keys_add(out, "id");
    json_t *fields = guess_fields(schema, objs, n);
    const char *k;
    json_t *v;
    json_object_foreach(fields, k, v) if (any_has(objs, n, k)) keys_add(out, k);
    size_t others = out->n;
    for (size_t i = 0; i < n; i++)
        json_object_foreach(objs[i], k, v) if (strcmp(k, "id") != 0 && !is_system(k))
            keys_add(out, k);
    if (out->n > others)
        qsort(out->k + others, out->n - others, sizeof *out->k, cmp_str);
    for (int i = 0; with_system && system_fields[i]; i++)
        if (any_has(objs, n, system_fields[i]))
            keys_add(out, system_fields[i]);
}

/* Characters, not bytes, so columns line up with UTF-8 text. */
static size_t u8_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

/* A value as one table cell: on one line, cut to CELL_MAX characters. Owned: free(). */
static char *cell_text(json_t *v)
{
    char *t = !v || json_is_null(v) ? strdup("") : rp_lua_render(v);
    if (!t)
        return NULL;
    for (char *p = t; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    size_t w = 0;
    for (char *p = t; *p; p++) {
        if (((unsigned char)*p & 0xC0) == 0x80)
            continue;
        if (++w == CELL_MAX && u8_width(p) > 1) {
            strcpy(p, "…"); /* the rest would not fit: a mark says so */
            break;
        }
    }
    return t;
}

static void put_padded(const char *s, size_t width, bool last)
{
    fputs(s, stdout);
    if (last)
        return;
    for (size_t w = u8_width(s); w < width + 2; w++)
        putchar(' ');
}

static void print_table(json_t *schema, json_t *rows)
{
    size_t nrows = json_array_size(rows);
    json_t **objs = malloc(nrows * sizeof *objs);
    if (!objs)
        return;
    bool full = true;
    for (size_t i = 0; i < nrows; i++) {
        objs[i] = json_array_get(rows, i);
        full = full && json_object_get(objs[i], "version");
    }
    /* Whole records show id and their fields; rows cut to some fields show what was asked. */
    keys_t cols = {0};
    order_keys(schema, objs, nrows, !full, &cols);
    char **cells = calloc(nrows * cols.n + 1, sizeof *cells);
    size_t *width = calloc(cols.n + 1, sizeof *width);
    if (!cells || !width)
        goto out;
    for (size_t c = 0; c < cols.n; c++) {
        width[c] = u8_width(cols.k[c]);
        for (size_t i = 0; i < nrows; i++) {
            char *t = cell_text(json_object_get(objs[i], cols.k[c]));
            cells[i * cols.n + c] = t;
            if (t && u8_width(t) > width[c])
                width[c] = u8_width(t);
        }
    }
    for (size_t c = 0; c < cols.n; c++)
        put_padded(cols.k[c], width[c], c + 1 == cols.n);
    putchar('\n');
    for (size_t c = 0; c < cols.n; c++) {
        for (size_t w = 0; w < width[c]; w++)
            putchar('-');
        if (c + 1 < cols.n)
            fputs("  ", stdout);
    }
    putchar('\n');
    for (size_t i = 0; i < nrows; i++) {
        for (size_t c = 0; c < cols.n; c++) {
            const char *t = cells[i * cols.n + c];
            put_padded(t ? t : "", width[c], c + 1 == cols.n);
        }
        putchar('\n');
    }
    printf("(%zu record%s)\n", nrows, nrows == 1 ? "" : "s");
out:
    if (cells)
        for (size_t i = 0; i < nrows * cols.n; i++)
            free(cells[i]);
    free(cells);
    free(width);
    free(cols.k);
    free(objs);
}

static void print_record(json_t *schema, json_t *rec)
{
    keys_t ks = {0};
    order_keys(schema, &rec, 1, true, &ks);
    size_t w = 0;
    for (size_t i = 0; i < ks.n; i++)
        w = u8_width(ks.k[i]) > w ? u8_width(ks.k[i]) : w;
    for (size_t i = 0; i < ks.n; i++) {
        char *v = rp_lua_render(json_object_get(rec, ks.k[i]));
        printf("%-*s = %s\n", (int)w, ks.k[i], v ? v : "?");
        free(v);
    }
    free(ks.k);
}

/* Prints an input's results: records as `field = value` lines, a list of records as a table,
 * anything else as `rapport eval` prints it. Trailing nils after a value are left out (the
 * missing next-page cursor of crm.find), but a lone nil is shown. */
static void print_results(repl_t *r, json_t *results)
{
    size_t n = json_array_size(results);
    while (n > 1 && json_is_null(json_array_get(results, n - 1)))
        n--;
    json_t *schema = NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(results, i);
        bool rec = is_record(v), list = !rec && is_record_list(v);
        if ((rec || list) && !schema) {
            rp_error_t err = {0};
            schema = rp_store_schema(r->s, NULL, &err);
        }
        if (rec) {
            print_record(schema, v);
        } else if (list) {
            print_table(schema, v);
        } else {
            char *t = rp_lua_render(v);
            puts(t ? t : "?");
            free(t);
        }
    }
    json_decref(schema);
}

/* ---- dry runs ---------------------------------------------------------------------------- */

/* An input in dry mode runs inside crm.dry_run, every result kept (dry_run keeps one): the
 * wrapper returns the changes first, then the results. The input starts on the first line, so
 * its line numbers stay right. The expression form is tried first, as rp_lua_eval() does. */
static const char dry_head[] =
    "local rp__dry, rp__pack, rp__unpack = crm.dry_run, table.pack, table.unpack "
    "local rp__r, rp__d = rp__dry(function(...) return rp__pack(";
static const char dry_expr_tail[] = "\n) end) return rp__d, rp__unpack(rp__r, 1, rp__r.n)";
static const char dry_stmt_head[] = "(function(...) ";
static const char dry_stmt_tail[] = "\nend)(...)) end) return rp__d, rp__unpack(rp__r, 1, rp__r.n)";

static int run_dry(repl_t *r, const char *code, json_t **results, json_t **changes, rp_error_t *err)
{
    *results = *changes = NULL;
    buf_t b = {0};
    char *msg = NULL;
    bool ok = buf_str(&b, dry_head) && buf_str(&b, code) && buf_str(&b, dry_expr_tail);
    if (ok && try_load(r->L, "", b.p, &msg) != LUA_OK) {
        free(msg);
        b.n = 0;
        ok = buf_str(&b, dry_head) && buf_str(&b, dry_stmt_head) && buf_str(&b, code) &&
             buf_str(&b, dry_stmt_tail);
        /* The input compiles on its own (it got here), so this only fails on odd inputs that
         * close the wrapper themselves; say so rather than run something else. */
        if (ok && try_load(r->L, "", b.p, &msg) != LUA_OK) {
            free(msg);
            free(b.p);
            return rp_error_set(err, RP_EINVAL, 0,
                                "this input cannot run inside crm.dry_run; try :dry off");
        }
    }
    if (!ok) {
        free(b.p);
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    }
    json_t *all = NULL;
    int rc = rp_lua_eval(r->l, b.p, CHUNKNAME, &all, err);
    free(b.p);
    if (rc)
        return rc;
    *changes = json_incref(json_array_get(all, 0));
    *results = json_array();
    for (size_t i = 1; i < json_array_size(all); i++)
        json_array_append(*results, json_array_get(all, i));
    json_decref(all);
    return 0;
}

/* A value in a diff: JSON, so "" and nil and "1" and 1 differ. Owned: free(). */
static char *diff_value(json_t *v)
{
    if (!v || json_is_null(v))
        return strdup("nil");
    return json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
}

/* Whether @p action (the last word of an event type) says a record was created, updated,
 * deleted, restored or purged, rather than naming a custom event. */
static bool lifecycle(const char *action)
{
    static const char *const acts[] = {"created", "updated", "deleted", "restored", "purged", NULL};
    for (int i = 0; action && acts[i]; i++)
        if (strcmp(action, acts[i]) == 0)
            return true;
    return false;
}

static void print_record_change(json_t *schema, json_t *rc)
{
    const char *entity = json_string_value(json_object_get(rc, "entity"));
    json_t *ch = json_object_get(rc, "changes");
    printf("  %s %lld %s\n", entity ? entity : "?",
           (long long)json_integer_value(json_object_get(rc, "id")),
           json_string_value(json_object_get(rc, "action")));
    /* Field order as the entity defines it; the round trip through Lua lost the event's. */
    keys_t ks = {0};
    const char *k;
    json_t *v;
    json_t *fields = json_object_get(json_object_get(schema, entity ? entity : ""), "fields");
    json_object_foreach(fields, k, v) if (json_object_get(ch, k)) keys_add(&ks, k);
    size_t known = ks.n;
    json_object_foreach(ch, k, v) keys_add(&ks, k);
    if (ks.n > known)
        qsort(ks.k + known, ks.n - known, sizeof *ks.k, cmp_str);
    size_t w = 0;
    for (size_t i = 0; i < ks.n; i++)
        w = u8_width(ks.k[i]) > w ? u8_width(ks.k[i]) : w;
    for (size_t i = 0; i < ks.n; i++) {
        json_t *pair = json_object_get(ch, ks.k[i]);
        /* {field: [old, new]}; Lua drops a trailing nil, so a missing new value is nil. */
        json_t *old = json_is_array(pair) ? json_array_get(pair, 0) : NULL;
        json_t *nw = json_is_array(pair) ? json_array_get(pair, 1) : pair;
        char *o = diff_value(old), *n = diff_value(nw);
        printf("      %-*s  %s → %s\n", (int)w, ks.k[i], o ? o : "?", n ? n : "?");
        free(o);
        free(n);
    }
    free(ks.k);
}

static void print_diff(repl_t *r, json_t *changes)
{
    if (!json_is_object(changes)) {
        char *t = rp_lua_render(changes);
        printf("dry run: nothing was saved (the changes cannot be shown: %s)\n", t ? t : "?");
        free(t);
        return;
    }
    json_t *records = json_object_get(changes, "records");
    json_t *events = json_object_get(changes, "events");
    json_t *jobs = json_object_get(changes, "jobs");
    /* An empty list came back from Lua as an empty object: json_array_size() says 0 for it. */
    size_t ne = json_array_size(events), nj = json_array_size(jobs), nr = 0;
    size_t i;
    json_t *x;
    /* crm.dry_run lists every event about a record; custom ones are shown with the events. */
    json_array_foreach(records, i, x) {
        nr += lifecycle(json_string_value(json_object_get(x, "action")));
    }
    if (nr + ne + nj == 0) {
        puts("dry run: no changes; nothing was saved");
        return;
    }
    rp_error_t err = {0};
    json_t *schema = rp_store_schema(r->s, NULL, &err);
    puts("dry run: would have changed");
    if (nr)
        printf(" %zu record%s\n", nr, nr == 1 ? "" : "s");
    json_array_foreach(records, i, x) {
        if (lifecycle(json_string_value(json_object_get(x, "action"))))
            print_record_change(schema, x);
    }
    if (ne)
        printf(" %zu event%s\n", ne, ne == 1 ? "" : "s");
    json_array_foreach(events, i, x) {
        const char *type = json_string_value(json_object_get(x, "type"));
        const char *entity = json_string_value(json_object_get(x, "entity"));
        int64_t id = json_integer_value(json_object_get(x, "record_id"));
        printf("  %s", type ? type : "?");
        if (id > 0)
            printf(" %s %lld", entity ? entity : "?", (long long)id);
        /* A custom event's payload is its substance; a record's changes are shown above. */
        json_t *payload = json_object_get(x, "changes");
        const char *dot = type ? strrchr(type, '.') : NULL;
        if (!(id > 0 && dot && lifecycle(dot + 1)) && json_object_size(payload) > 0) {
            char *p = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);
            printf(" %s", p ? p : "");
            free(p);
        }
        putchar('\n');
    }
    if (nj)
        printf(" %zu job%s\n", nj, nj == 1 ? "" : "s");
    json_array_foreach(jobs, i, x) {
        const char *key = json_string_value(json_object_get(x, "key"));
        char *p = json_dumps(json_object_get(x, "payload"), JSON_COMPACT | JSON_SORT_KEYS);
        const char *name = json_string_value(json_object_get(x, "name"));
        const char *due = json_string_value(json_object_get(x, "due_at"));
        printf("  %s due %s%s%s %s\n", name ? name : "?", due ? due : "?", key ? " key " : "",
               key ? key : "", p ? p : "{}");
        free(p);
    }
    puts("nothing was saved");
    json_decref(schema);
}

/* ---- running an input -------------------------------------------------------------------- */

static void run_chunk(repl_t *r, const char *code)
{
    json_t *results = NULL, *changes = NULL;
    rp_error_t err = {0};
    saved_hook = lua_gethook(r->L);
    saved_mask = lua_gethookmask(r->L);
    saved_count = lua_gethookcount(r->L);
    running = 1;
    int rc = r->dry ? run_dry(r, code, &results, &changes, &err)
                    : rp_lua_eval(r->l, code, CHUNKNAME, &results, &err);
    running = 0;
    /* A Ctrl-C that came as the chunk ended must not stop the next one. */
    lua_sethook(r->L, saved_hook, saved_mask, saved_count);
    interrupted = 0;
    if (rc) {
        fflush(stdout);
        fprintf(stderr, "%s\n", err.msg[0] ? err.msg : "failed");
    } else {
        print_results(r, results);
        if (r->dry)
            print_diff(r, changes);
    }
    json_decref(results);
    json_decref(changes);
    /* The crm API pairs every begin with a commit or a rollback; should a transaction still be
     * open, it would block `rapport serve`'s writes until the next input, so undo it now. */
    if (rp_store_txn_depth(r->s) > 0) {
        while (rp_store_txn_depth(r->s) > 0 && rp_store_rollback(r->s, NULL) == 0)
            ;
        fflush(stdout);
        fprintf(stderr, "repl: a transaction was left open; it was rolled back\n");
    }
    fflush(stdout);
}

/* ---- completion -------------------------------------------------------------------------- */

typedef struct cands {
    char **v;
    size_t n, cap, next;
} cands_t;

static cands_t cands; /* what the last Tab offers; read by next_cand() */

static void cands_clear(void)
{
    for (size_t i = 0; i < cands.n; i++)
        free(cands.v[i]);
    free(cands.v);
    cands = (cands_t){0};
}

static void cands_add(const char *head, size_t hlen, const char *word, const char *tail)
{
    for (size_t i = 0; i < cands.n; i++)
        if (strncmp(cands.v[i], head, hlen) == 0 && strcmp(cands.v[i] + hlen, word) == 0)
            return;
    if (cands.n == cands.cap) {
        size_t cap = cands.cap ? cands.cap * 2 : 32;
        char **v = realloc(cands.v, cap * sizeof *v);
        if (!v)
            return;
        cands.v = v;
        cands.cap = cap;
    }
    size_t wl = strlen(word), tl = strlen(tail);
    char *c = malloc(hlen + wl + tl + 1);
    if (!c)
        return;
    memcpy(c, head, hlen);
    memcpy(c + hlen, word, wl);
    memcpy(c + hlen + wl, tail, tl + 1);
    cands.v[cands.n++] = c;
}

static char *next_cand(const char *text, int state)
{
    (void)text;
    if (state == 0)
        cands.next = 0;
    return cands.next < cands.n ? strdup(cands.v[cands.next++]) : NULL;
}

static bool is_ident(const char *s, size_t n)
{
    if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9')))
            return false;
    return true;
}

static const char *const keywords[] = {"and",   "break", "do",       "else",  "elseif", "end",
                                       "false", "for",   "function", "goto",  "if",     "in",
                                       "local", "nil",   "not",      "or",    "repeat", "return",
                                       "then",  "true",  "until",    "while", NULL};

/* Walks the live tables from _G along the dotted path in the text being completed (argument 1,
 * a light userdata) and offers the keys of the last table that start with what follows the
 * last dot: tables end with ".", functions with "(". Called in protected mode: a failed
 * allocation inside Lua must not end the session. */
static int walk_path(lua_State *L)
{
    const char *text = lua_touserdata(L, 1);
    const char *last = strrchr(text, '.');
    lua_pushglobaltable(L);
    for (const char *p = text; last && p < last;) {
        const char *dot = strchr(p, '.');
        lua_pushlstring(L, p, (size_t)(dot - p));
        /* Raw: completing must never run an __index metamethod. */
        lua_rawget(L, -2);
        if (!lua_istable(L, -1))
            return 0;
        lua_remove(L, -2);
        p = dot + 1;
    }
    const char *partial = last ? last + 1 : text;
    size_t hlen = (size_t)(partial - text), plen = strlen(partial);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        size_t kl;
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &kl) : NULL;
        if (k && is_ident(k, kl) && strncmp(k, partial, plen) == 0)
            cands_add(text, hlen, k, lua_istable(L, -1) ? "." : lua_isfunction(L, -1) ? "(" : "");
        lua_pop(L, 1);
    }
    for (int i = 0; !last && keywords[i]; i++)
        if (strncmp(keywords[i], partial, plen) == 0)
            cands_add("", 0, keywords[i], "");
    return 0;
}

static void complete_path(repl_t *r, const char *text)
{
    size_t n = strlen(text);
    /* Only a dotted name: anything else (a method call, an index) is left alone. */
    for (size_t i = 0, start = 0; i <= n; i++) {
        if (i < n && text[i] != '.')
            continue;
        if (!(is_ident(text + start, i - start) || (i == n && i == start)))
            return;
        start = i + 1;
    }
    lua_State *L = r->L;
    int top = lua_gettop(L);
    lua_pushcfunction(L, walk_path);
    lua_pushlightuserdata(L, (void *)text);
    lua_pcall(L, 1, 0, 0);
    lua_settop(L, top);
}

/* The quote character of the string literal open at @p upto in @p line, or 0 when none is. */
static char open_quote(const char *line, int upto)
{
    char q = 0;
    for (int i = 0; i < upto && line[i]; i++) {
        if (q) {
            if (line[i] == '\\' && i + 1 < upto)
                i++;
            else if (line[i] == q)
                q = 0;
        } else if (line[i] == '"' || line[i] == '\'') {
            q = line[i];
        } else if (line[i] == '-' && line[i + 1] == '-') {
            return 0; /* a comment: nothing to complete */
        }
    }
    return q;
}

/* Entity names, and field names: of the entity a string literal before the cursor names
 * (crm.find("contact", {order = "-la…), else of every entity. */
static void complete_names(repl_t *r, const char *line, int upto, const char *text)
{
    rp_error_t err = {0};
    json_t *schema = rp_store_schema(r->s, NULL, &err);
    if (!schema)
        return;
    size_t tl = strlen(text);
    json_t *named = NULL;
    for (int i = 0; i < upto && !named; i++) {
        if (line[i] != '"' && line[i] != '\'')
            continue;
        const char *end = strchr(line + i + 1, line[i]);
        if (!end || end - line >= upto)
            break;
        char ent[128];
        snprintf(ent, sizeof ent, "%.*s", (int)(end - line - i - 1), line + i + 1);
        named = json_object_get(schema, ent);
        i = (int)(end - line);
    }
    const char *name;
    json_t *d;
    json_object_foreach(schema, name, d) {
        if (strncmp(name, text, tl) == 0)
            cands_add("", 0, name, "");
        if (named && d != named)
            continue;
        const char *f;
        json_t *spec;
        json_object_foreach(json_object_get(d, "fields"), f, spec) if (strncmp(f, text, tl) == 0)
            cands_add("", 0, f, "");
    }
    static const char *const more[] = {"id",         "created_at", "updated_at", "version",
                                       "created_by", "updated_by", "deleted_at", NULL};
    for (int i = 0; more[i]; i++)
        if (strncmp(more[i], text, tl) == 0)
            cands_add("", 0, more[i], "");
    json_decref(schema);
}

/* Field names of the entity a string literal before the cursor names, as table keys. */
static void complete_keys(repl_t *r, const char *line, int upto, const char *text)
{
    rp_error_t err = {0};
    json_t *schema = rp_store_schema(r->s, NULL, &err);
    if (!schema)
        return;
    json_t *named = NULL;
    for (int i = 0; i < upto && !named; i++) {
        if (line[i] != '"' && line[i] != '\'')
            continue;
        const char *end = strchr(line + i + 1, line[i]);
        if (!end || end - line >= upto)
            break;
        char ent[128];
        snprintf(ent, sizeof ent, "%.*s", (int)(end - line - i - 1), line + i + 1);
        named = json_object_get(schema, ent);
        i = (int)(end - line);
    }
    size_t tl = strlen(text);
    const char *f;
    json_t *spec;
    json_object_foreach(json_object_get(named, "fields"), f, spec) {
        if (strncmp(f, text, tl) == 0)
            cands_add("", 0, f, "");
    }
    json_decref(schema);
}

static char **complete(const char *text, int start, int end)
{
    (void)end;
    /* Never fall back to file names: they mean nothing here. */
    rl_attempted_completion_over = 1;
    cands_clear();
    if (!active)
        return NULL;
    char q = open_quote(rl_line_buffer, start);
    if (q) {
        complete_names(active, rl_line_buffer, start, text);
    } else {
        complete_path(active, text);
        /* A key in a table constructor after an entity's name ({sc → score): its fields. */
        int b = start - 1;
        while (b >= 0 && (rl_line_buffer[b] == ' ' || rl_line_buffer[b] == '\t'))
            b--;
        if (b >= 0 && (rl_line_buffer[b] == '{' || rl_line_buffer[b] == ',') &&
            !strchr(text, '.'))
            complete_keys(active, rl_line_buffer, start, text);
    }
    /* A lone name inside quotes is finished: close the string. */
    rl_completion_append_character = q && cands.n == 1 ? q : '\0';
    if (cands.n == 0)
        return NULL;
    qsort(cands.v, cands.n, sizeof *cands.v, cmp_str);
    return rl_completion_matches(text, next_cand);
}

/* ---- input ------------------------------------------------------------------------------- */

/* The history file: $RAPPORT_HISTORY (empty turns it off), else ~/.rapport_history. Owned. */
static char *history_path(void)
{
    const char *env = getenv("RAPPORT_HISTORY");
    if (env)
        return *env ? strdup(env) : NULL;
    const char *home = getenv("HOME");
    if (!home || !*home)
        return NULL;
    size_t n = strlen(home) + sizeof "/.rapport_history";
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/.rapport_history", home);
    return p;
}

static void history_open(repl_t *r)
{
    r->history = history_path();
    using_history();
    stifle_history(HISTORY_MAX);
    if (!r->history)
        return;
    /* What was typed may hold customer data: the file is the user's alone. */
    int fd = open(r->history, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0)
        close(fd);
    read_history(r->history);
}

static void history_add(repl_t *r, const char *entry)
{
    add_history(entry);
    /* Written at once, so a session that is killed keeps what it was given. */
    if (r->history && write_history(r->history) != 0) {
        fprintf(stderr, "repl: cannot write the history to %s: %s; history is off\n", r->history,
                strerror(errno));
        free(r->history);
        r->history = NULL;
    }
}

/* One line without its newline, through libedit on a terminal and plainly from a pipe (no
 * prompt, no editing). Owned: free(). NULL at the end of the input. */
static char *read_line(repl_t *r, const char *prompt)
{
    if (r->tty)
        return readline(prompt);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    return line;
}

static const char help_text[] =
    "Type Lua; the crm API is at hand (crm.find, crm.create, crm.update, crm.schema.get, …).\n"
    "An expression prints its value: a record as field = value lines, a list of records as a\n"
    "table, anything else as `rapport eval` prints it. A chunk that is not finished (a function\n"
    "without its end) continues on the next line at the \"...\" prompt. Errors never end the\n"
    "session. Writes are saved at once, as `rapport eval` saves them.\n"
    "\n"
    "  :help       this text\n"
    "  :dry on     run every input inside crm.dry_run: show what it would change, save nothing\n"
    "  :dry off    save again\n"
    "  :quit       leave (Ctrl-D does too)\n"
    "\n"
    "Tab completes globals and the crm API (crm.sch → crm.schema.), and entity and field names\n"
    "inside quotes. History is kept in $RAPPORT_HISTORY, else ~/.rapport_history.\n";

/* Runs a ":command". Returns false when the session should end. */
static bool command(repl_t *r, const char *line)
{
    char name[32] = "", arg[32] = "", extra[2] = "";
    int n = sscanf(line, " :%31s %31s %1s", name, arg, extra);
    if (n == 1 && (!strcmp(name, "quit") || !strcmp(name, "q") || !strcmp(name, "exit")))
        return false;
    if (n == 1 && strcmp(name, "help") == 0) {
        fputs(help_text, stdout);
    } else if (n >= 1 && n <= 2 && strcmp(name, "dry") == 0) {
        if (n == 2 && strcmp(arg, "on") == 0)
            r->dry = true;
        else if (n == 2 && strcmp(arg, "off") == 0)
            r->dry = false;
        else if (n == 2) {
            fflush(stdout);
            fprintf(stderr, "repl: :dry takes on or off, not \"%s\"\n", arg);
            return true;
        }
        printf("dry run is %s%s\n", r->dry ? "on" : "off",
               r->dry ? ": every input runs inside crm.dry_run and nothing is saved" : "");
    } else {
        fflush(stdout);
        fprintf(stderr, "repl: unknown command \"%s\" (:help lists them)\n", line);
    }
    fflush(stdout);
    return true;
}

/* A line that is a REPL command rather than Lua: ":word…". Lua's labels start with "::". */
static bool is_command(const char *line)
{
    while (*line == ' ' || *line == '\t')
        line++;
    return line[0] == ':' && line[1] != ':';
}

static bool blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return false;
    return true;
}

/* Runs the session on stdin until :quit or the end of the input. @p s and @p l are borrowed;
 * @p l must be a state over @p s. @p db names the database in the greeting. Returns the exit
 * status: 0, as errors inside the session never end it. */
int rp_cli_repl(rp_store_t *s, rp_lua_t *l, const char *db)
{
    repl_t r = {.s = s, .l = l, .L = rp_lua_state(l), .tty = isatty(STDIN_FILENO)};
    struct sigaction old_sigint;
    active = &r;
    if (r.tty) {
        rl_readline_name = "rapport";
        rl_attempted_completion_function = complete;
        /* Not ".", so crm.schema.def is one word; quotes, so a name inside a string is. */
        rl_basic_word_break_characters = " \t\n\"'`@$><=;|&{(,)}[]+-*/%^#~:";
        rl_completer_word_break_characters = (char *)rl_basic_word_break_characters;
        history_open(&r);
        /* No SA_RESTART: libedit's read must return so the input can be dropped. */
        struct sigaction sa = {.sa_handler = on_sigint};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, &old_sigint);
        printf("rapport %s on %s. Lua with the crm API; :help for help, :quit to leave.\n",
               RP_VERSION, db);
        fflush(stdout);
    }
    buf_t chunk = {0};
    int lines = 0;
    for (;;) {
        const char *prompt = lines ? "... " : r.dry ? "rapport (dry)> " : "rapport> ";
        interrupted = 0;
        char *line = read_line(&r, prompt);
        if (!line && interrupted) {
            /* Ctrl-C: forget what was typed so far, chunk and all, and ask again. */
            putchar('\n');
            chunk.n = 0;
            lines = 0;
            continue;
        }
        if (!line) {
            if (lines && !blank(chunk.p)) {
                /* The input ended inside a chunk: say why it never ran. */
                char *msg = NULL;
                try_load(r.L, "", chunk.p, &msg);
                fflush(stdout);
                fprintf(stderr, "%s\n", msg ? msg : "the input ended inside a chunk");
                free(msg);
            }
            if (r.tty)
                putchar('\n');
            break;
        }
        if (lines == 0 && is_command(line)) {
            if (r.tty)
                history_add(&r, line);
            bool go_on = command(&r, line);
            free(line);
            if (!go_on)
                break;
            continue;
        }
        bool ok = (lines == 0 || buf_add(&chunk, "\n", 1)) && buf_str(&chunk, line);
        free(line);
        lines++;
        if (!ok) {
            fprintf(stderr, "repl: out of memory; the input was dropped\n");
        } else if (blank(chunk.p)) {
            /* An empty line runs nothing and starts nothing. */
        } else if (incomplete(&r, chunk.p)) {
            continue;
        } else {
            if (r.tty)
                history_add(&r, chunk.p);
            run_chunk(&r, chunk.p);
        }
        chunk.n = 0;
        if (chunk.p)
            chunk.p[0] = '\0';
        lines = 0;
    }
    free(chunk.p);
    cands_clear();
    if (r.tty) {
        clear_history();
        sigaction(SIGINT, &old_sigint, NULL);
    }
    free(r.history);
    fflush(stdout);
    active = NULL;
    return 0;
}
