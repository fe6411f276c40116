/*
 * repl.c — `rapport repl`: Lua on the live database, one chunk at a time, with a history file,
 * multi-line chunks, tab completion of the `crm` API and of entity and field names, records
 * printed as text and tables, and dry runs that show what an input would have changed. The
 * ":commands" are in repl_cmd.c, the printing in repl_show.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <editline/readline.h>
#include <lauxlib.h>
#include <lua.h>

#include "rapport/lua.h"
#include "rapport/store.h"
#include "repl.h"

#define HISTORY_MAX 1000 /* entries kept in the history file */

/* ---- a growable string ------------------------------------------------------------------- */

bool repl_buf_add(buf_t *b, const char *s, size_t n)
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

bool repl_buf_str(buf_t *b, const char *s)
{
    return repl_buf_add(b, s, strlen(s));
}

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
    if (!repl_buf_str(&b, prefix) || !repl_buf_str(&b, code)) {
        free(b.p);
        return LUA_ERRMEM;
    }
    int rc = luaL_loadbufferx(L, b.p, b.n, "=" REPL_CHUNKNAME, "t");
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
    bool ok = repl_buf_str(&b, dry_head) && repl_buf_str(&b, code) && repl_buf_str(&b, dry_expr_tail);
    if (ok && try_load(r->L, "", b.p, &msg) != LUA_OK) {
        free(msg);
        b.n = 0;
        ok = repl_buf_str(&b, dry_head) && repl_buf_str(&b, dry_stmt_head) && repl_buf_str(&b, code) &&
             repl_buf_str(&b, dry_stmt_tail);
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
    int rc = rp_lua_eval(r->l, b.p, REPL_CHUNKNAME, &all, err);
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

/* ---- running an input -------------------------------------------------------------------- */

/* :time counts instructions with a count hook that fires every REPL_COUNT_STEP of them: an
 * exact count (a hook on each one) would double the time it measures. */
static long long counted;

static void count_hook(lua_State *L, lua_Debug *ar)
{
    (void)L;
    (void)ar;
    counted += REPL_COUNT_STEP;
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void repl_run_chunk(repl_t *r, const char *code, repl_timing_t *t)
{
    json_t *results = NULL, *changes = NULL;
    rp_error_t err = {0};
    lua_Hook hook0 = lua_gethook(r->L);
    int mask0 = lua_gethookmask(r->L), count0 = lua_gethookcount(r->L);
    counted = 0;
    if (t)
        lua_sethook(r->L, count_hook, LUA_MASKCOUNT, REPL_COUNT_STEP);
    /* A Ctrl-C puts back this hook (the counter's, under :time) when it has stopped the chunk. */
    saved_hook = lua_gethook(r->L);
    saved_mask = lua_gethookmask(r->L);
    saved_count = lua_gethookcount(r->L);
    repl_page_reset(r);
    double t0 = mono_ms();
    running = 1;
    int rc = r->dry ? run_dry(r, code, &results, &changes, &err)
                    : rp_lua_eval(r->l, code, REPL_CHUNKNAME, &results, &err);
    running = 0;
    double t1 = mono_ms();
    /* A Ctrl-C that came as the chunk ended must not stop the next one. */
    lua_sethook(r->L, hook0, mask0, count0);
    interrupted = 0;
    if (rc) {
        fflush(stdout);
        fprintf(stderr, "%s\n", err.msg[0] ? err.msg : "failed");
    } else {
        repl_print_results(r, results);
        if (r->dry)
            repl_print_diff(r, changes);
    }
    if (t) {
        t->wall_ms = t1 - t0;
        t->instructions = counted;
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
    qsort(cands.v, cands.n, sizeof *cands.v, repl_cmp_str);
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
    if (repl_page_setup(&r))
        fprintf(stderr, "repl: crm.find cannot be followed; next-page cursors show bare\n");
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
            bool go_on = repl_command(&r, line);
            free(line);
            if (!go_on)
                break;
            continue;
        }
        bool ok = (lines == 0 || repl_buf_add(&chunk, "\n", 1)) && repl_buf_str(&chunk, line);
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
            repl_run_chunk(&r, chunk.p, NULL);
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
    repl_page_reset(&r);
    free(r.next_code);
    fflush(stdout);
    active = NULL;
    return 0;
}
