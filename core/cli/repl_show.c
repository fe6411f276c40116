/*
 * repl_show.c — how `rapport repl` shows what an input gave and did: a record as `field = value`
 * lines, a list of records as a table (columns in the order the entity defines its fields,
 * cells cut at a width), anything else as `rapport eval` prints it; and a dry run's diff.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapport/lua.h"
#include "rapport/store.h"
#include "repl.h"

#define CELL_MAX 40 /* a table cell longer than this many characters is cut */

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
void repl_print_results(rp_store_t *s, json_t *results)
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
            schema = rp_store_schema(s, NULL, &err);
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
        qsort(ks.k + known, ks.n - known, sizeof *ks.k, repl_cmp_str);
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

void repl_print_diff(rp_store_t *s, json_t *changes)
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
    json_t *schema = rp_store_schema(s, NULL, &err);
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
