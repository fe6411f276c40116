/*
 * repl_show.c — how `rapport repl` shows what an input gave and did: a record as `field = value`
 * lines, a list of records as a table (columns in the order the entity defines its fields,
 * cut to fit the terminal), anything else as `rapport eval` prints it; and a dry run's diff.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapport/lua.h"
#include "rapport/store.h"
#include "rapport/text.h"
#include "repl.h"

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

int repl_cmp_str(const void *a, const void *b)
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
        qsort(out->k + others, out->n - others, sizeof *out->k, repl_cmp_str);
    for (int i = 0; with_system && system_fields[i]; i++)
        if (any_has(objs, n, system_fields[i]))
            keys_add(out, system_fields[i]);
}

#define MIN_COL 3 /* a column is never cut narrower than this: one character and "…" */

/* A value as one table cell, on one line. Owned: free(). */
static char *cell_text(json_t *v)
{
    char *t = !v || json_is_null(v) ? strdup("") : rp_lua_render(v);
    if (!t)
        return NULL;
    for (char *p = t; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    /* DEL and C1 controls are shown, not sent to the terminal to act on. */
    char *safe = rp_text_printable(t, false);
    free(t);
    return safe;
}

static void put_padded(const char *s, size_t width, bool last)
{
    fputs(s, stdout);
    if (last)
        return;
    for (size_t w = repl_text_width(s); w < width + 2; w++)
        putchar(' ');
}

/* How wide each column may be so a row fits @p room: the widest columns are cut to one width,
 * as wide as still fits, and what room is left goes to them a column each; narrow columns
 * stay whole. @p width holds each column's natural width and receives the one to print. */
static void fit_columns(size_t *width, size_t ncols, size_t room)
{
    size_t total = 2 * (ncols - 1), widest = 0;
    for (size_t c = 0; c < ncols; c++) {
        total += width[c];
        widest = width[c] > widest ? width[c] : widest;
    }
    if (total <= room)
        return;
    size_t cap = widest, used = total;
    for (; cap > MIN_COL; cap--) {
        used = 2 * (ncols - 1);
        for (size_t c = 0; c < ncols; c++)
            used += width[c] < cap ? width[c] : cap;
        if (used <= room)
            break;
    }
    size_t spare = used <= room ? room - used : 0;
    for (size_t c = 0; c < ncols; c++) {
        if (width[c] <= cap)
            continue;
        width[c] = cap + (spare > 0);
        spare -= spare > 0;
    }
}

void repl_print_grid(repl_t *r, char *const *cells, size_t nrows, size_t ncols)
{
    if (nrows == 0 || ncols == 0)
        return;
    size_t *width = calloc(ncols, sizeof *width);
    if (!width)
        return;
    for (size_t c = 0; c < ncols; c++)
        for (size_t i = 0; i < nrows; i++) {
            const char *t = cells[i * ncols + c];
            size_t w = t ? repl_text_width(t) : 0;
            width[c] = w > width[c] ? w : width[c];
        }
    if (!r->wide)
        fit_columns(width, ncols, (size_t)repl_term_width());
    for (size_t i = 0; i < nrows; i++) {
        for (size_t c = 0; c < ncols; c++) {
            const char *t = cells[i * ncols + c];
            char *cut = t && repl_text_width(t) > width[c] ? repl_text_cut(t, width[c]) : NULL;
            put_padded(cut ? cut : t ? t : "", width[c], c + 1 == ncols);
            free(cut);
        }
        putchar('\n');
        if (i > 0)
            continue;
        for (size_t c = 0; c < ncols; c++) {
            for (size_t w = 0; w < width[c]; w++)
                putchar('-');
            if (c + 1 < ncols)
                fputs("  ", stdout);
        }
        putchar('\n');
    }
    free(width);
}

static void print_table(repl_t *r, json_t *schema, json_t *rows)
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
    size_t ncells = (nrows + 1) * cols.n;
    char **cells = calloc(ncells + 1, sizeof *cells);
    if (!cells)
        goto out;
    for (size_t c = 0; c < cols.n; c++) {
        cells[c] = strdup(cols.k[c]);
        for (size_t i = 0; i < nrows; i++)
            cells[(i + 1) * cols.n + c] = cell_text(json_object_get(objs[i], cols.k[c]));
    }
    repl_print_grid(r, cells, nrows + 1, cols.n);
    printf("(%zu record%s)\n", nrows, nrows == 1 ? "" : "s");
    for (size_t i = 0; i < ncells; i++)
        free(cells[i]);
out:
    free(cells);
    free(cols.k);
    free(objs);
}

static void print_record(json_t *schema, json_t *rec)
{
    keys_t ks = {0};
    order_keys(schema, &rec, 1, true, &ks);
    size_t w = 0;
    for (size_t i = 0; i < ks.n; i++)
        w = repl_text_width(ks.k[i]) > w ? repl_text_width(ks.k[i]) : w;
    for (size_t i = 0; i < ks.n; i++) {
        char *raw = rp_lua_render(json_object_get(rec, ks.k[i]));
        /* A stored value's control characters shown as escapes: no value moves the cursor. */
        char *v = rp_text_printable(raw, false);
        free(raw);
        printf("%-*s = %s\n", (int)w, ks.k[i], v ? v : "?");
        free(v);
    }
    free(ks.k);
}

void repl_print_results(repl_t *r, json_t *results)
{
    size_t n = json_array_size(results);
    while (n > 1 && json_is_null(json_array_get(results, n - 1)))
        n--;
    json_t *schema = NULL;
    bool after_list = false;
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
            print_table(r, schema, v);
            /* A list shown without a cursor after it was the last page: :next has none. */
            if (!json_is_string(json_array_get(results, i + 1)) || i + 1 >= n) {
                free(r->next_code);
                r->next_code = NULL;
            }
        } else if (!(after_list && json_is_string(v) && repl_page_hint(r, json_string_value(v)))) {
            char *raw = rp_lua_render(v);
            char *t = rp_text_printable(raw, true);
            free(raw);
            puts(t ? t : "?");
            free(t);
        }
        after_list = list;
    }
    json_decref(schema);
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

/* The cells of the diff table, row by row (owned). */
typedef struct grid {
    char **v;
    size_t n, cap;
    bool oom; /* a cell could not be added: the rows no longer line up */
} grid_t;

#define DIFF_COLS 7

static void grid_add(grid_t *g, char *cell)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        char **v = realloc(g->v, cap * sizeof *v);
        if (!v) {
            free(cell);
            g->oom = true;
            return;
        }
        g->v = v;
        g->cap = cap;
    }
    g->v[g->n++] = cell;
}

static void grid_row(grid_t *g, const char *entity, int64_t id, const char *action,
                     const char *field, char *old, char *nw)
{
    char idt[24];
    snprintf(idt, sizeof idt, "%lld", (long long)id);
    grid_add(g, strdup(entity));
    grid_add(g, strdup(idt));
    grid_add(g, strdup(action));
    grid_add(g, strdup(field));
    grid_add(g, old);
    grid_add(g, strdup(field[0] ? "→" : ""));
    grid_add(g, nw);
}

/* One row per changed field of one record, in the order the entity defines its fields. */
static void record_change_rows(grid_t *g, json_t *schema, json_t *rc)
{
    const char *entity = json_string_value(json_object_get(rc, "entity"));
    const char *action = json_string_value(json_object_get(rc, "action"));
    int64_t id = json_integer_value(json_object_get(rc, "id"));
    json_t *ch = json_object_get(rc, "changes");
    entity = entity ? entity : "?";
    /* Field order as the entity defines it; the round trip through Lua lost the event's. */
    keys_t ks = {0};
    const char *k;
    json_t *v;
    json_t *fields = json_object_get(json_object_get(schema, entity), "fields");
    json_object_foreach(fields, k, v) if (json_object_get(ch, k)) keys_add(&ks, k);
    size_t known = ks.n;
    json_object_foreach(ch, k, v) keys_add(&ks, k);
    if (ks.n > known)
        qsort(ks.k + known, ks.n - known, sizeof *ks.k, repl_cmp_str);
    if (ks.n == 0)
        grid_row(g, entity, id, action, "", strdup(""), strdup(""));
    for (size_t i = 0; i < ks.n; i++) {
        json_t *pair = json_object_get(ch, ks.k[i]);
        /* {field: [old, new]}; Lua drops a trailing nil, so a missing new value is nil. */
        json_t *old = json_is_array(pair) ? json_array_get(pair, 0) : NULL;
        json_t *nw = json_is_array(pair) ? json_array_get(pair, 1) : pair;
        grid_row(g, entity, id, action, ks.k[i], diff_value(old), diff_value(nw));
    }
    free(ks.k);
}

static void print_record_changes(repl_t *r, json_t *schema, json_t *records)
{
    static const char *const head[DIFF_COLS] = {"entity", "id", "change", "field",
                                                "old",    "",   "new"};
    grid_t g = {0};
    for (int c = 0; c < DIFF_COLS; c++)
        grid_add(&g, strdup(head[c]));
    size_t i;
    json_t *x;
    json_array_foreach(records, i, x) {
        if (lifecycle(json_string_value(json_object_get(x, "action"))))
            record_change_rows(&g, schema, x);
    }
    if (g.oom)
        puts("  (out of memory: the records cannot be shown)");
    else
        repl_print_grid(r, g.v, g.n / DIFF_COLS, DIFF_COLS);
    for (size_t j = 0; j < g.n; j++)
        free(g.v[j]);
    free(g.v);
}

static void print_job(json_t *x)
{
    const char *key = json_string_value(json_object_get(x, "key"));
    char *p = json_dumps(json_object_get(x, "payload"), JSON_COMPACT | JSON_SORT_KEYS);
    const char *name = json_string_value(json_object_get(x, "name"));
    const char *due = json_string_value(json_object_get(x, "due_at"));
    printf("  %s due %s%s%s %s\n", name ? name : "?", due ? due : "?", key ? " key " : "",
           key ? key : "", p ? p : "{}");
    free(p);
}

void repl_print_diff(repl_t *r, json_t *changes)
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
    json_t *cancelled = json_object_get(changes, "cancelled_jobs");
    /* An empty list came back from Lua as an empty object: json_array_size() says 0 for it. */
    size_t ne = json_array_size(events), nj = json_array_size(jobs), nr = 0;
    size_t nc = json_array_size(cancelled);
    size_t i;
    json_t *x;
    /* crm.dry_run lists every event about a record; custom ones are shown with the events. */
    json_array_foreach(records, i, x) {
        nr += lifecycle(json_string_value(json_object_get(x, "action")));
    }
    if (nr + ne + nj + nc == 0) {
        puts("dry run: no changes; nothing was saved");
        return;
    }
    rp_error_t err = {0};
    json_t *schema = rp_store_schema(r->s, NULL, &err);
    printf("dry run: would have changed %zu record%s\n", nr, nr == 1 ? "" : "s");
    if (nr)
        print_record_changes(r, schema, records);
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
    json_array_foreach(jobs, i, x) print_job(x);
    if (nc)
        printf(" %zu pending job%s cancelled (or moved by its key)\n", nc, nc == 1 ? "" : "s");
    json_array_foreach(cancelled, i, x) print_job(x);
    puts("nothing was saved");
    json_decref(schema);
}
