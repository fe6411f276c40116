/*
 * reports.c — reports and their output (a table, JSON, CSV, an SVG chart), and the analyses
 * that only read: Pareto 80/20 with its concentration curve and key customers, cohorts by
 * first purchase, and the pipeline forecast. Each reads through grouped aggregates.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytical.h"
#include "chart.h"

/* ---- reports -------------------------------------------------------------------------------- */

json_t *an_report(const char *const *columns)
{
    json_t *cols = json_array();
    for (int i = 0; columns[i]; i++)
        json_array_append_new(cols, json_string(columns[i]));
    return json_pack("{s:o,s:[]}", "columns", cols, "rows");
}

void an_report_row(json_t *report, json_t *first, ...)
{
    size_t n = json_array_size(json_object_get(report, "columns"));
    json_t *row = json_array();
    va_list ap;
    va_start(ap, first);
    json_t *v = first;
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(row, v ? v : json_null());
        if (i + 1 < n)
            v = va_arg(ap, json_t *);
    }
    va_end(ap);
    json_array_append_new(json_object_get(report, "rows"), row);
}

static char *cell(json_t *v)
{
    if (!v || json_is_null(v))
        return strdup("");
    if (json_is_string(v))
        return strdup(json_string_value(v));
    if (json_is_real(v)) {
        /* Money and counts in full; shares and rates to four significant digits. */
        char b[64];
        double d = json_real_value(v);
        snprintf(b, sizeof b, fabs(d) >= 1000 ? "%.2f" : "%.4g", d);
        return strdup(b);
    }
    return json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
}

static size_t width(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static void print_table(json_t *rep)
{
    json_t *cols = json_object_get(rep, "columns"), *rows = json_object_get(rep, "rows");
    size_t nc = json_array_size(cols);
    size_t *w = calloc(nc ? nc : 1, sizeof *w);
    for (size_t k = 0; k < nc; k++)
        w[k] = width(json_string_value(json_array_get(cols, k)));
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        for (size_t k = 0; k < nc; k++) {
            char *t = cell(json_array_get(row, k));
            if (width(t) > w[k])
                w[k] = width(t);
            free(t);
        }
    }
    for (size_t k = 0; k < nc; k++)
        printf("%s%-*s", k ? "  " : "", (int)w[k], json_string_value(json_array_get(cols, k)));
    printf("\n");
    for (size_t k = 0; k < nc; k++) {
        printf("%s", k ? "  " : "");
        for (size_t j = 0; j < w[k]; j++)
            putchar('-');
    }
    printf("\n");
    json_array_foreach(rows, i, row) {
        for (size_t k = 0; k < nc; k++) {
            json_t *c = json_array_get(row, k);
            char *t = cell(c);
            int pad = (int)(w[k] - width(t));
            if (json_is_number(c))
                printf("%s%*s%s", k ? "  " : "", pad, "", t);
            else
                printf("%s%s%*s", k ? "  " : "", t, k + 1 < nc ? pad : 0, "");
            free(t);
        }
        printf("\n");
    }
    free(w);
    /* The summary: every other plain value of the report. */
    const char *key;
    json_t *v;
    json_object_foreach(rep, key, v) {
        if (!strcmp(key, "columns") || !strcmp(key, "rows") || !strcmp(key, "chart") ||
            !strcmp(key, "list"))
            continue;
        char *t = json_is_object(v) || json_is_array(v)
                      ? json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(6))
                      : cell(v);
        printf("%s: %s\n", key, t ? t : "");
        free(t);
    }
}

static void csv_field(const char *s)
{
    /* A cell a spreadsheet would run as a formula gets a quote in front, as export does. */
    bool formula = strchr("=+-@\t\r", s[0]) && s[0] && !(s[0] == '-' && strspn(s + 1, "0123456789.") == strlen(s + 1) && s[1]);
    bool quote = strpbrk(s, ",\"\r\n") != NULL;
    if (quote)
        putchar('"');
    if (formula)
        putchar('\'');
    for (; *s; s++) {
        if (*s == '"')
            putchar('"');
        putchar(*s);
    }
    if (quote)
        putchar('"');
}

static void print_csv(json_t *rep)
{
    json_t *cols = json_object_get(rep, "columns"), *rows = json_object_get(rep, "rows");
    size_t i, k;
    json_t *v, *row;
    json_array_foreach(cols, k, v) {
        if (k)
            putchar(',');
        csv_field(json_string_value(v));
    }
    putchar('\n');
    json_array_foreach(rows, i, row) {
        json_array_foreach(row, k, v) {
            if (k)
                putchar(',');
            char *t = json_is_real(v) ? json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(10))
                                      : cell(v);
            csv_field(t ? t : "");
            free(t);
        }
        putchar('\n');
    }
}

static double *doubles(json_t *arr)
{
    size_t n = json_array_size(arr);
    double *d = malloc(sizeof *d * (n ? n : 1));
    for (size_t i = 0; d && i < n; i++) {
        json_t *v = json_array_get(arr, i);
        d[i] = json_is_null(v) ? NAN : an_num(v);
    }
    return d;
}

static const char **strings(json_t *arr)
{
    size_t n = json_array_size(arr);
    const char **s = calloc(n + 1, sizeof *s);
    for (size_t i = 0; s && i < n; i++)
        s[i] = json_string_value(json_array_get(arr, i));
    return s;
}

/* The report's chart as SVG (owned), from its "chart" object. */
static char *render(json_t *ch, char *err, size_t errlen)
{
    const char *kind = json_string_value(json_object_get(ch, "kind"));
    an_chart_t c = {.title = json_string_value(json_object_get(ch, "title")),
                    .x_label = json_string_value(json_object_get(ch, "x_label")),
                    .y_label = json_string_value(json_object_get(ch, "y_label")),
                    .value_fmt = json_string_value(json_object_get(ch, "value_fmt"))};
    char *svg = NULL;
    if (kind && !strcmp(kind, "curve")) {
        json_t *marks = json_object_get(ch, "marks");
        size_t nm = json_array_size(marks);
        an_chart_mark_t *mk = calloc(nm ? nm : 1, sizeof *mk);
        for (size_t i = 0; mk && i < nm; i++) {
            json_t *m = json_array_get(marks, i);
            mk[i] = (an_chart_mark_t){an_num(json_object_get(m, "x")),
                                      an_num(json_object_get(m, "y")),
                                      json_string_value(json_object_get(m, "label"))};
        }
        c.marks = mk;
        c.nmarks = nm;
        double *x = doubles(json_object_get(ch, "x")), *y = doubles(json_object_get(ch, "y"));
        svg = an_svg_curve(&c, x, y, json_array_size(json_object_get(ch, "x")), err, errlen);
        free(x);
        free(y);
        free(mk);
    } else if (kind && !strcmp(kind, "heatmap")) {
        const char **rows = strings(json_object_get(ch, "rows"));
        const char **cols = strings(json_object_get(ch, "cols"));
        double *v = doubles(json_object_get(ch, "values"));
        svg = an_svg_heatmap(&c, rows, json_array_size(json_object_get(ch, "rows")), cols,
                             json_array_size(json_object_get(ch, "cols")), v, err, errlen);
        free(rows);
        free(cols);
        free(v);
    } else if (kind && !strcmp(kind, "bars")) {
        const char **cats = strings(json_object_get(ch, "categories"));
        const char **series = strings(json_object_get(ch, "series"));
        double *v = doubles(json_object_get(ch, "values"));
        svg = an_svg_bars(&c, cats, json_array_size(json_object_get(ch, "categories")), series,
                          json_array_size(json_object_get(ch, "series")), v, err, errlen);
        free(cats);
        free(series);
        free(v);
    } else {
        an_fail(err, errlen, "this analysis has no chart (--svg is for pareto, cohorts and "
                             "forecast)");
    }
    return svg;
}

int an_print(json_t *report, const an_output_t *o, char *err, size_t errlen)
{
    if (o->svg) {
        char *svg = render(json_object_get(report, "chart"), err, errlen);
        if (!svg)
            return RAPPORT_EINVAL;
        FILE *f = fopen(o->svg, "w");
        bool ok = f && fputs(svg, f) >= 0;
        if (f && fclose(f))
            ok = false;
        free(svg);
        if (!ok)
            return an_fail(err, errlen, "cannot write %s", o->svg);
    }
    if (o->json) {
        char *t = json_dumps(report, JSON_COMPACT | JSON_REAL_PRECISION(12));
        if (t)
            puts(t);
        free(t);
    } else if (o->csv) {
        print_csv(report);
    } else {
        print_table(report);
    }
    return 0;
}

/* ---- Pareto 80/20 ---------------------------------------------------------------------------- */

typedef struct {
    int64_t id;
    double v;
} cv_t;

typedef struct {
    cv_t *a;
    size_t n, cap;
    const char *idkey, *key;  /* the row's keys of the customer and of the value */
} cvs_t;

static int add_cv(json_t *row, void *ud)
{
    cvs_t *c = ud;
    if (c->n == c->cap) {
        size_t nc = c->cap ? 2 * c->cap : 1024;
        cv_t *na = realloc(c->a, nc * sizeof *na);
        if (!na)
            return RAPPORT_ENOMEM;
        c->a = na;
        c->cap = nc;
    }
    c->a[c->n++] = (cv_t){json_integer_value(json_object_get(row, c->idkey)),
                          an_num(json_object_get(row, c->key))};
    return 0;
}

static int by_value_desc(const void *a, const void *b)
{
    double x = ((const cv_t *)a)->v, y = ((const cv_t *)b)->v;
    if (x != y)
        return x > y ? -1 : 1;
    int64_t i = ((const cv_t *)a)->id, j = ((const cv_t *)b)->id;
    return (i > j) - (i < j);
}

/* The cut points of opts.cut ("10,20,50"; default 20), in percent. */
static int cuts_of(json_t *opts, double *cut, int max, char *err, size_t errlen)
{
    const char *t = json_string_value(json_object_get(opts, "cut"));
    if (!t) {
        cut[0] = 20;
        return 1;
    }
    int n = 0;
    for (const char *p = t; *p && n < max;) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || v <= 0 || v >= 100 || (*end && *end != ','))
            return an_fail(err, errlen, "cut must be percentages between 0 and 100, as "
                                        "\"10,20,50\", not \"%s\"", t), -1;
        cut[n++] = v;
        p = *end ? end + 1 : end;
    }
    return n;
}

int an_pareto(rapport_host *h, json_t *opts, json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    int64_t as_of = an_opt_time(opts, "as_of", an_api->now_ms(h), err, errlen);
    if (as_of < 0)
        return RAPPORT_EINVAL;
    double cut[16];
    int ncut = cuts_of(opts, cut, 16, err, errlen);
    if (ncut < 0)
        return RAPPORT_EINVAL;
    json_t *topv = json_object_get(opts, "top");
    int64_t top = topv ? (int64_t)an_num(topv) : 10;
    if (top < 0 || top > 10000)
        return an_fail(err, errlen, "top must be 0 to 10000");
    bool predicted = json_is_true(json_object_get(opts, "predicted"));
    char at[RAPPORT_TIME_LEN];
    an_time_fmt(as_of, at);
    /* Historic: each customer's net purchases; predicted: what the clv analysis stored. */
    cvs_t c = {.idkey = predicted ? "id" : "customer",
               .key = predicted ? "max_clv_predicted" : "sum_amount"};
    json_t *q = predicted
                    ? json_pack("{s:[s],s:[s],s:{s:{s:b}}}", "group_by", "id", "measures",
                                "max:clv_predicted", "where", "clv_predicted", "is_null", 0)
                    : json_pack("{s:[s],s:[s],s:{s:{s:s}}}", "group_by", "customer", "measures",
                                "sum:amount", "where", "at", "le", at);
    int rc = an_aggregate(h, predicted ? "contact" : "purchase", q, add_cv, &c, err, errlen);
    json_decref(q);
    if (rc) {
        free(c.a);
        return rc;
    }
    if (c.n) /* qsort of NULL is undefined, even of nothing */
        qsort(c.a, c.n, sizeof *c.a, by_value_desc);
    double total = 0, pos = 0;
    for (size_t i = 0; i < c.n; i++) {
        total += c.a[i].v;
        pos += c.a[i].v > 0 ? c.a[i].v : 0;
    }
    /* The curve and the Gini over what customers brought; one who brought nothing or less
     * (returns) counts as nothing there. Gini from the ascending order: sum (2i - n - 1) x_i
     * over n sum x_i. */
    double gsum = 0;
    for (size_t k = 0; k < c.n; k++) {
        size_t i = c.n - 1 - k; /* ascending index k of element i */
        double x = c.a[i].v > 0 ? c.a[i].v : 0;
        gsum += (2.0 * (double)(k + 1) - (double)c.n - 1) * x;
    }
    double gini = c.n && pos > 0 ? gsum / ((double)c.n * pos) : 0;
    json_t *shares = json_object();
    for (int k = 0; k < ncut; k++) {
        size_t m = (size_t)ceil(cut[k] / 100.0 * (double)c.n);
        double s = 0;
        for (size_t i = 0; i < m && i < c.n; i++)
            s += c.a[i].v > 0 ? c.a[i].v : 0;
        char key[32];
        snprintf(key, sizeof key, "top_%g%%", cut[k]);
        json_object_set_new(shares, key, json_real(pos > 0 ? round(1e4 * s / pos) / 1e4 : 0));
    }
    /* The chart: the curve thinned to 1,001 points (every 0.1 % of customers). */
    json_t *xs = json_array(), *ys = json_array();
    json_array_append_new(xs, json_real(0));
    json_array_append_new(ys, json_real(0));
    double run = 0;
    size_t next = 1;
    for (size_t i = 0; i < c.n; i++) {
        run += c.a[i].v > 0 ? c.a[i].v : 0;
        double x = (double)(i + 1) / (double)c.n;
        if (x * 1000 >= (double)next || i + 1 == c.n) {
            json_array_append_new(xs, json_real(x));
            json_array_append_new(ys, json_real(pos > 0 ? run / pos : 0));
            next = (size_t)(x * 1000) + 1;
        }
    }
    json_t *marks = json_array();
    const char *mk;
    json_t *mv;
    json_object_foreach(shares, mk, mv) {
        char label[96];
        double p = strtod(mk + 4, NULL);
        snprintf(label, sizeof label, "top %g %% of customers: %.0f %% of revenue", p,
                 100 * json_real_value(mv));
        json_array_append_new(marks, json_pack("{s:f,s:f,s:s}", "x", p / 100, "y",
                                               json_real_value(mv), "label", label));
    }
    static const char *const cols[] = {"rank", "customer", "name", "value", "share",
                                       "cumulative_share", NULL};
    json_t *rep = an_report(cols);
    double cum = 0;
    for (size_t i = 0; i < c.n && (int64_t)i < top; i++) {
        cum += c.a[i].v > 0 ? c.a[i].v : 0;
        json_t *ct = an_json(an_api->get(h, "contact", c.a[i].id));
        char name[200] = "";
        if (ct)
            snprintf(name, sizeof name, "%s%s%s",
                     json_string_value(json_object_get(ct, "first_name"))
                         ? json_string_value(json_object_get(ct, "first_name"))
                         : "",
                     json_string_value(json_object_get(ct, "first_name")) ? " " : "",
                     json_string_value(json_object_get(ct, "last_name"))
                         ? json_string_value(json_object_get(ct, "last_name"))
                         : "");
        json_decref(ct);
        an_report_row(rep, json_integer((json_int_t)(i + 1)), json_integer(c.a[i].id),
                      json_string(name), json_real(round(100 * c.a[i].v) / 100),
                      json_real(pos > 0 ? round(1e4 * (c.a[i].v > 0 ? c.a[i].v : 0) / pos) / 1e4
                                        : 0),
                      json_real(pos > 0 ? round(1e4 * cum / pos) / 1e4 : 0));
    }
    json_object_set_new(rep, "by", json_string(predicted ? "predicted" : "historic"));
    json_object_set_new(rep, "as_of", json_string(at));
    json_object_set_new(rep, "customers", json_integer((json_int_t)c.n));
    json_object_set_new(rep, "revenue", json_real(round(100 * total) / 100));
    json_object_set_new(rep, "gini", json_real(round(1e4 * gini) / 1e4));
    json_object_set_new(rep, "shares", shares);
    json_object_set_new(rep, "chart",
                        json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:o}", "kind", "curve", "title",
                                  predicted ? "Concentration of predicted value"
                                            : "Concentration of revenue",
                                  "x_label", "share of customers (best first)", "y_label",
                                  "share of revenue", "x", xs, "y", ys, "marks", marks));
    free(c.a);
    *out = rep;
    return 0;
}

/* ---- cohorts ----------------------------------------------------------------------------------- */

/* The index of a bucket label: consecutive buckets have consecutive indexes. */
static int64_t period_index(const char *label, const char *by)
{
    int y = 0, m = 1, q = 1;
    if (!label)
        return INT64_MIN;
    if (!strcmp(by, "year") && sscanf(label, "%4d", &y) == 1)
        return y;
    if (!strcmp(by, "quarter") && sscanf(label, "%4d-Q%d", &y, &q) == 2)
        return (int64_t)y * 4 + q - 1;
    if (!strcmp(by, "month") && sscanf(label, "%4d-%2d", &y, &m) == 2)
        return (int64_t)y * 12 + m - 1;
    int64_t days = an_day(label);
    if (days == INT64_MIN)
        return INT64_MIN;
    /* Week labels are Mondays: whole weeks apart. */
    return !strcmp(by, "week") ? (days + 3) / 7 : days;
}

typedef struct {
    const char *by;
    bool revenue;
    int64_t cur;            /* the customer being read */
    int64_t first;          /* their first period's index */
    char cohort[24];
    json_t *cohorts;        /* label -> {"size": n, "cells": {offset: value}} */
    int64_t max_offset;
} coh_t;

static int add_cell(json_t *row, void *ud)
{
    coh_t *c = ud;
    char key[24];
    snprintf(key, sizeof key, "at_%s", c->by);
    const char *label = json_string_value(json_object_get(row, key));
    int64_t p = period_index(label, c->by);
    if (p == INT64_MIN)
        return 0;
    int64_t cust = json_integer_value(json_object_get(row, "customer"));
    json_t *co;
    if (cust != c->cur) { /* rows come by customer, then period: this is their first */
        c->cur = cust;
        c->first = p;
        snprintf(c->cohort, sizeof c->cohort, "%s", label);
        co = json_object_get(c->cohorts, label);
        if (!co) {
            co = json_pack("{s:i,s:{}}", "size", 0, "cells");
            json_object_set_new(c->cohorts, label, co);
        }
        json_object_set_new(co, "size",
                            json_integer(json_integer_value(json_object_get(co, "size")) + 1));
    } else {
        co = json_object_get(c->cohorts, c->cohort);
    }
    int64_t off = p - c->first;
    if (off > c->max_offset)
        c->max_offset = off;
    char ok[24];
    snprintf(ok, sizeof ok, "%lld", (long long)off);
    json_t *cells = json_object_get(co, "cells");
    double was = an_num(json_object_get(cells, ok));
    double add = c->revenue ? an_num(json_object_get(row, "sum_amount")) : 1;
    json_object_set_new(cells, ok, json_real(was + add));
    return 0;
}

int an_cohorts(rapport_host *h, json_t *opts, json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    const char *by = json_string_value(json_object_get(opts, "by"));
    if (!by)
        by = "month";
    static const char *const units[] = {"day", "week", "month", "quarter", "year", NULL};
    bool known = false;
    for (int i = 0; units[i]; i++)
        known |= strcmp(by, units[i]) == 0;
    if (!known)
        return an_fail(err, errlen, "by must be day, week, month, quarter or year, not \"%s\"",
                       by);
    coh_t c = {.by = by, .revenue = json_is_true(json_object_get(opts, "revenue")), .cur = -1,
               .cohorts = json_object()};
    char g[32];
    snprintf(g, sizeof g, "at:%s", by);
    json_t *q = json_pack("{s:[s,s],s:[s,s]}", "group_by", "customer", g, "measures", "count",
                          "sum:amount");
    json_t *zone = json_object_get(opts, "zone");
    if (json_is_string(zone))
        json_object_set(q, "zone", zone);
    int rc = an_aggregate(h, "purchase", q, add_cell, &c, err, errlen);
    json_decref(q);
    if (rc) {
        json_decref(c.cohorts);
        return rc;
    }
    int64_t periods = c.max_offset + 1;
    if (periods > 400)
        periods = 400; /* a table a person reads; the JSON of cells beyond is left out */
    json_t *cols = json_pack("[s,s]", "cohort", "customers");
    for (int64_t k = 0; k < periods; k++) {
        char name[24];
        snprintf(name, sizeof name, "%lld", (long long)k);
        json_array_append_new(cols, json_string(name));
    }
    json_t *rep = json_pack("{s:o,s:[]}", "columns", cols, "rows");
    json_t *rows = json_object_get(rep, "rows");
    json_t *labels = json_array(), *values = json_array(), *pnames = json_array();
    for (int64_t k = 0; k < periods; k++) {
        char name[24];
        snprintf(name, sizeof name, "%lld", (long long)k);
        json_array_append_new(pnames, json_string(name));
    }
    /* Cohorts in time order: the labels sort as the periods do. */
    const char **keys = malloc(sizeof *keys * (json_object_size(c.cohorts) + 1));
    size_t nk = 0;
    const char *lbl;
    json_t *co;
    json_object_foreach(c.cohorts, lbl, co) keys[nk++] = lbl;
    for (size_t i = 1; i < nk; i++)
        for (size_t j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
            const char *t = keys[j];
            keys[j] = keys[j - 1];
            keys[j - 1] = t;
        }
    for (size_t i = 0; i < nk; i++) {
        co = json_object_get(c.cohorts, keys[i]);
        json_int_t size = json_integer_value(json_object_get(co, "size"));
        json_t *cells = json_object_get(co, "cells");
        json_t *row = json_pack("[s,I]", keys[i], size);
        json_array_append_new(labels, json_string(keys[i]));
        for (int64_t k = 0; k < periods; k++) {
            char ok[24];
            snprintf(ok, sizeof ok, "%lld", (long long)k);
            json_t *cv = json_object_get(cells, ok);
            json_t *v;
            if (!cv)
                v = json_null();
            else if (c.revenue)
                v = json_real(round(100 * json_real_value(cv)) / 100);
            else
                v = json_real(round(1e4 * json_real_value(cv) / (double)size) / 1e4);
            json_array_append_new(values, json_is_null(v) ? json_null()
                                                           : json_real(c.revenue
                                                                           ? json_real_value(v)
                                                                           : 100 * json_real_value(v)));
            json_array_append_new(row, v);
        }
        json_array_append_new(rows, row);
    }
    free(keys);
    json_object_set_new(rep, "by", json_string(by));
    json_object_set_new(rep, "measure", json_string(c.revenue ? "revenue" : "retention"));
    json_object_set_new(rep, "cohorts", json_integer((json_int_t)nk));
    json_object_set_new(
        rep, "chart",
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:o}", "kind", "heatmap", "title",
                  c.revenue ? "Revenue by cohort" : "Retention by cohort", "x_label",
                  c.revenue ? "periods since first purchase" : "periods since first purchase",
                  "y_label", "cohort (first purchase)", "value_fmt",
                  c.revenue ? "%.0f" : "%.0f%%", "rows", labels, "cols", pnames, "values",
                  values));
    json_decref(c.cohorts);
    *out = rep;
    return 0;
}

/* ---- the pipeline forecast ------------------------------------------------------------------- */

typedef struct {
    json_t *cells;  /* "month\towner" -> [open_deals, pipeline_cents, forecast_cents, won_cents] */
    bool won;
} fc_t;

static int64_t cents(json_t *v)
{
    int64_t c = 0;
    const char *t = json_string_value(v);
    if (t)
        an_api->dec_parse(NULL, t, 2, &c);
    return c;
}

static int add_deals(json_t *row, void *ud)
{
    fc_t *f = ud;
    const char *month = json_string_value(
        json_object_get(row, f->won ? "closed_at_month" : "expected_close_month"));
    const char *owner = json_string_value(json_object_get(row, "owner"));
    char key[160];
    snprintf(key, sizeof key, "%s\t%s", month ? month : "(none)", owner ? owner : "");
    json_t *c = json_object_get(f->cells, key);
    if (!c) {
        c = json_pack("[i,i,i,i]", 0, 0, 0, 0);
        json_object_set_new(f->cells, key, c);
    }
    int64_t sum = cents(json_object_get(row, "sum_amount"));
    json_int_t n = json_integer_value(json_object_get(row, "count"));
    if (f->won) {
        json_array_set_new(c, 3, json_integer(json_integer_value(json_array_get(c, 3)) + sum));
        return 0;
    }
    json_int_t p = json_integer_value(json_object_get(row, "probability"));
    int64_t w = (sum * (int64_t)p + (sum >= 0 ? 50 : -50)) / 100;
    json_array_set_new(c, 0, json_integer(json_integer_value(json_array_get(c, 0)) + n));
    json_array_set_new(c, 1, json_integer(json_integer_value(json_array_get(c, 1)) + sum));
    json_array_set_new(c, 2, json_integer(json_integer_value(json_array_get(c, 2)) + w));
    return 0;
}

static json_t *money(int64_t c)
{
    char b[RAPPORT_DEC_LEN];
    an_api->dec_format(NULL, c, 2, b, sizeof b);
    return json_string(b);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int an_forecast(rapport_host *h, json_t *opts, json_t **out, char *err, size_t errlen)
{
    (void)opts;
    *out = NULL;
    fc_t f = {.cells = json_object()};
    /* Open deals: not closed; their probability is the stage's (the operational plugin sets
     * it with the stage). Won: closed at probability 100. */
    json_t *q = json_pack("{s:[s,s,s],s:[s,s],s:{s:{s:b}}}", "group_by", "expected_close:month",
                          "owner", "probability", "measures", "count", "sum:amount", "where",
                          "closed_at", "is_null", 1);
    int rc = an_aggregate(h, "deal", q, add_deals, &f, err, errlen);
    json_decref(q);
    if (!rc) {
        f.won = true;
        q = json_pack("{s:[s,s],s:[s,s],s:{s:{s:b},s:i}}", "group_by", "closed_at:month",
                      "owner", "measures", "count", "sum:amount", "where", "closed_at",
                      "is_null", 0, "probability", 100);
        rc = an_aggregate(h, "deal", q, add_deals, &f, err, errlen);
        json_decref(q);
    }
    if (rc) {
        json_decref(f.cells);
        return rc;
    }
    size_t n = json_object_size(f.cells), k = 0;
    const char **keys = malloc(sizeof *keys * (n + 1));
    const char *key;
    json_t *c;
    json_object_foreach(f.cells, key, c) keys[k++] = key;
    qsort(keys, n, sizeof *keys, cmp_str);
    static const char *const cols[] = {"month", "owner", "open_deals", "pipeline", "forecast",
                                       "won", NULL};
    json_t *rep = an_report(cols);
    json_t *cats = json_array(), *vals = json_array();
    int64_t tf = 0, tw = 0, mf = 0, mw = 0;
    char last[24] = "";
    for (size_t i = 0; i <= n; i++) {
        char month[24] = "";
        if (i < n)
            snprintf(month, sizeof month, "%.*s", (int)strcspn(keys[i], "\t"), keys[i]);
        if (last[0] && strcmp(month, last)) { /* a month ends: one bar pair for it */
            json_array_append_new(cats, json_string(last));
            json_array_append_new(vals, json_real((double)mf / 100));
            json_array_append_new(vals, json_real((double)mw / 100));
            mf = mw = 0;
        }
        if (i == n)
            break;
        snprintf(last, sizeof last, "%s", month);
        c = json_object_get(f.cells, keys[i]);
        int64_t fc = json_integer_value(json_array_get(c, 2)),
                won = json_integer_value(json_array_get(c, 3));
        mf += fc;
        mw += won;
        tf += fc;
        tw += won;
        an_report_row(rep, json_string(month), json_string(strchr(keys[i], '\t') + 1),
                      json_integer(json_integer_value(json_array_get(c, 0))),
                      money(json_integer_value(json_array_get(c, 1))), money(fc), money(won));
    }
    free(keys);
    json_object_set_new(rep, "forecast", money(tf));
    json_object_set_new(rep, "won", money(tw));
    json_object_set_new(rep, "chart",
                        json_pack("{s:s,s:s,s:s,s:s,s:o,s:[s,s],s:o}", "kind", "bars", "title",
                                  "Pipeline forecast and won deals by month", "x_label", "month",
                                  "y_label", "amount", "categories", cats, "series",
                                  "forecast (weighted)", "won", "values", vals));
    json_decref(f.cells);
    *out = rep;
    return 0;
}
