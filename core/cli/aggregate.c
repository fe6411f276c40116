/*
 * aggregate.c — `rapport aggregate`: grouped aggregates of any entity (rp_store_aggregate) as a
 * table, JSON lines or CSV, under the user's role like every read of the CLI.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "io.h"
#include "rapport/text.h"

/* A cell's text: strings as they are, null empty, the rest as JSON. Owned. */
static char *cell(json_t *v)
{
    if (!v || json_is_null(v))
        return strdup("");
    if (json_is_string(v))
        return strdup(json_string_value(v));
    return json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
}

/* A cell as the table shows it on a terminal: its control characters as escapes. Owned. */
static char *shown(json_t *v)
{
    char *t = cell(v), *safe = rp_text_printable(t, false);
    free(t);
    return safe;
}

/* UTF-8 characters in @p s, for the width of a column. */
static size_t width(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* Whether @p s is a decimal number as the store writes one ("-12.50"), not a label. */
static bool is_decimal(const char *s)
{
    s += *s == '-';
    size_t n = strspn(s, "0123456789");
    if (n && s[n] == '.')
        n += 1 + strspn(s + n + 1, "0123456789");
    return n && !s[n];
}

static void print_table(json_t *rows)
{
    json_t *first = json_array_get(rows, 0);
    size_t ncol = json_object_size(first);
    if (!ncol) {
        printf("(no rows)\n");
        return;
    }
    const char **keys = calloc(ncol, sizeof *keys);
    size_t *w = calloc(ncol, sizeof *w);
    size_t k = 0;
    const char *key;
    json_t *v;
    json_object_foreach(first, key, v) {
        keys[k] = key;
        w[k] = width(key);
        k++;
    }
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        for (k = 0; k < ncol; k++) {
            char *t = shown(json_object_get(row, keys[k]));
            if (t && width(t) > w[k])
                w[k] = width(t);
            free(t);
        }
    }
    for (k = 0; k < ncol; k++)
        printf("%s%-*s", k ? "  " : "", (int)w[k], keys[k]);
    printf("\n");
    for (k = 0; k < ncol; k++) {
        printf("%s", k ? "  " : "");
        for (size_t j = 0; j < w[k]; j++)
            putchar('-');
    }
    printf("\n");
    json_array_foreach(rows, i, row) {
        for (k = 0; k < ncol; k++) {
            json_t *c = json_object_get(row, keys[k]);
            char *t = shown(c);
            /* Numbers to the right, as a reader of figures expects. */
            int pad = (int)(w[k] - width(t ? t : ""));
            bool right = json_is_number(c) || (json_is_string(c) && is_decimal(t));
            printf("%s%*s%s%*s", k ? "  " : "", right ? pad : 0, "", t ? t : "",
                   right || k + 1 == ncol ? 0 : pad, "");
            free(t);
        }
        printf("\n");
    }
    free(keys);
    free(w);
}

static void print_csv(json_t *rows)
{
    json_t *first = json_array_get(rows, 0);
    const char *key;
    json_t *v;
    bool sep = false;
    json_object_foreach(first, key, v) {
        printf("%s", sep ? "," : "");
        csv_out(stdout, key);
        sep = true;
    }
    if (sep)
        printf("\n");
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        sep = false;
        json_object_foreach(first, key, v) {
            char *t = cell(json_object_get(row, key));
            printf("%s", sep ? "," : "");
            /* A label such as "=cmd()" from a record must not run in a spreadsheet. */
            if (t && guarded(t))
                putchar('\'');
            csv_out(stdout, t ? t : "");
            free(t);
            sep = true;
        }
        printf("\n");
    }
}

/* Splits the comma list @p text into @p out (NULL-terminated; more than @p max keeps max + 1,
 * so the store names its cap). @p text is modified. */
static void split(char *text, const char **out, int max)
{
    int n = 0;
    for (char *save = NULL, *t = text ? strtok_r(text, ",", &save) : NULL; t && n <= max;
         t = strtok_r(NULL, ",", &save))
        out[n++] = t;
    out[n] = NULL;
}

int cmd_aggregate(cli_t *c, int argc, char **argv)
{
    const char *group = flag_value(&argc, argv, "--group-by", NULL);
    const char *measures = flag_value(&argc, argv, "--measures", NULL);
    const char *where = flag_value(&argc, argv, "--where", NULL);
    const char *zone = flag_value(&argc, argv, "--zone", NULL);
    const char *order = flag_value(&argc, argv, "--order", NULL);
    const char *limit = flag_value(&argc, argv, "--limit", NULL);
    const char *offset = flag_value(&argc, argv, "--offset", NULL);
    bool deleted = false, as_json = false, as_csv = false;
    flag_value(&argc, argv, "--deleted", &deleted);
    flag_value(&argc, argv, "--json", &as_json);
    flag_value(&argc, argv, "--csv", &as_csv);
    const char *vals[] = {group, measures, where, zone, order, limit, offset};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++)
        if (vals[i] == FLAG_MISSING)
            return usage_error("aggregate", "aggregate: an option is missing its value");
    if (reject_unknown_flags("aggregate", argc, argv))
        return EXIT_USAGE;
    if (argc != 2)
        return usage_error("aggregate", "aggregate needs one entity");
    if (as_json && as_csv)
        return usage_error("aggregate", "choose one of --json and --csv");
    int64_t lim = 0, off = 0;
    if (limit && !parse_id(limit, &lim))
        return usage_error("aggregate", "--limit needs a positive integer, not %s", limit);
    if (offset && strcmp(offset, "0") != 0 && !parse_id(offset, &off))
        return usage_error("aggregate", "--offset needs a non-negative integer, not %s",
                           offset);
    json_t *w = where ? json_arg("aggregate", "--where", where) : NULL;
    if (where && !w)
        return EXIT_FAIL;
    char *gcopy = group ? strdup(group) : NULL, *mcopy = measures ? strdup(measures) : NULL;
    const char *groups[RP_AGG_MAX_GROUPS + 2], *ms[RP_AGG_MAX_MEASURES + 2];
    split(gcopy, groups, RP_AGG_MAX_GROUPS);
    split(mcopy, ms, RP_AGG_MAX_MEASURES);
    rp_store_t *s;
    int rc = open_store(c, false, &s);
    if (!rc) {
        rp_aggregate_t q = {.entity = argv[1], .where = w, .group_by = groups, .measures = ms,
                            .zone = zone, .order = order, .limit = lim, .offset = off,
                            .with_deleted = deleted, .access = c->access};
        json_t *rows = NULL;
        rp_error_t err = {0};
        if (rp_store_aggregate(s, &q, &rows, &err)) {
            rc = fail("%s", err.msg);
        } else if (as_json) {
            size_t i;
            json_t *r;
            json_array_foreach(rows, i, r) print_json(r, false);
        } else if (as_csv) {
            print_csv(rows);
        } else {
            print_table(rows);
        }
        json_decref(rows);
        close_store(c, s);
    }
    free(gcopy);
    free(mcopy);
    json_decref(w);
    return rc;
}
