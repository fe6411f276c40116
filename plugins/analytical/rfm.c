/*
 * rfm.c — RFM: for each customer, recency (days since the last purchase), frequency (distinct
 * orders: distinct refs, a purchase without a ref counting alone) and monetary value (net of
 * returns), each scored 1–5 by quintile with ties kept together and recency reversed; the
 * three scores name a segment from a table an admin can replace. Computed from one grouped
 * aggregate of the purchases, stored on the contacts, and a change of segment is an event
 * (contact.segment_changed) that rules can act on.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytical.h"

/* The widely used 11 segments, first match wins, covering all 125 codes (a test checks it). */
static const char default_segments[] =
    "[{\"name\": \"Champions\", \"r\": [4, 5], \"f\": [4, 5], \"m\": [4, 5]},"
    " {\"name\": \"Loyal\", \"r\": [3, 5], \"f\": [3, 5], \"m\": [1, 5]},"
    " {\"name\": \"Can't Lose Them\", \"r\": [1, 1], \"f\": [4, 5], \"m\": [4, 5]},"
    " {\"name\": \"At Risk\", \"r\": [1, 2], \"f\": [3, 5], \"m\": [1, 5]},"
    " {\"name\": \"New\", \"r\": [5, 5], \"f\": [1, 1], \"m\": [1, 5]},"
    " {\"name\": \"Promising\", \"r\": [4, 4], \"f\": [1, 1], \"m\": [1, 5]},"
    " {\"name\": \"Potential Loyalist\", \"r\": [4, 5], \"f\": [2, 2], \"m\": [1, 5]},"
    " {\"name\": \"Need Attention\", \"r\": [3, 3], \"f\": [2, 2], \"m\": [1, 5]},"
    " {\"name\": \"About to Sleep\", \"r\": [3, 3], \"f\": [1, 1], \"m\": [1, 5]},"
    " {\"name\": \"Hibernating\", \"r\": [2, 2], \"f\": [1, 2], \"m\": [1, 5]},"
    " {\"name\": \"Lost\", \"r\": [1, 1], \"f\": [1, 2], \"m\": [1, 5]}]";

static bool in_range(json_t *seg, const char *k, int v)
{
    json_t *r = json_object_get(seg, k);
    return v >= json_integer_value(json_array_get(r, 0)) &&
           v <= json_integer_value(json_array_get(r, 1));
}

const char *an_rfm_segment_of(json_t *table, int r, int f, int m)
{
    size_t i;
    json_t *seg;
    json_array_foreach(table, i, seg) {
        if (in_range(seg, "r", r) && in_range(seg, "f", f) && in_range(seg, "m", m))
            return json_string_value(json_object_get(seg, "name"));
    }
    return NULL;
}

int an_rfm_segments_check(json_t *table, char *err, size_t errlen)
{
    if (!json_is_array(table) || json_array_size(table) == 0)
        return an_fail(err, errlen, "the segment table must be a non-empty list of "
                                    "{name, r = {lo, hi}, f = {lo, hi}, m = {lo, hi}}");
    size_t i;
    json_t *seg;
    json_array_foreach(table, i, seg) {
        const char *name = json_string_value(json_object_get(seg, "name"));
        if (!name || !*name)
            return an_fail(err, errlen, "segment %zu has no name", i + 1);
        static const char *const keys[] = {"r", "f", "m"};
        for (int k = 0; k < 3; k++) {
            json_t *r = json_object_get(seg, keys[k]);
            json_int_t lo = json_integer_value(json_array_get(r, 0));
            json_int_t hi = json_integer_value(json_array_get(r, 1));
            if (json_array_size(r) != 2 || !json_is_integer(json_array_get(r, 0)) ||
                !json_is_integer(json_array_get(r, 1)) || lo < 1 || hi > 5 || lo > hi)
                return an_fail(err, errlen, "segment \"%s\": %s must be {lo, hi} with 1 <= lo "
                               "<= hi <= 5", name, keys[k]);
        }
    }
    for (int r = 1; r <= 5; r++)
        for (int f = 1; f <= 5; f++)
            for (int m = 1; m <= 5; m++)
                if (!an_rfm_segment_of(table, r, f, m))
                    return an_fail(err, errlen, "the segment table leaves code %d%d%d without "
                                   "a segment (every one of the 125 codes needs one)", r, f, m);
    return 0;
}

json_t *an_rfm_segments(rapport_host *h, char *err, size_t errlen)
{
    json_t *t = an_config(h, "rfm_segments");
    if (!t)
        return json_loads(default_segments, 0, NULL);
    char why[300];
    if (an_rfm_segments_check(t, why, sizeof why) == 0)
        return t;
    json_decref(t);
    an_fail(err, errlen, "plugin.analytical.rfm_segments: %s", why);
    return NULL;
}

/* ---- quintiles ---------------------------------------------------------------------------- */

typedef struct {
    double v;
    size_t i;
} vi_t;

static int cmp_vi(const void *a, const void *b)
{
    double x = ((const vi_t *)a)->v, y = ((const vi_t *)b)->v;
    return x < y ? -1 : x > y;
}

void an_quintiles(const double *v, size_t n, bool reverse, int *score)
{
    vi_t *s = malloc(sizeof *s * (n ? n : 1));
    if (!s)
        return;
    for (size_t i = 0; i < n; i++)
        s[i] = (vi_t){reverse ? -v[i] : v[i], i};
    qsort(s, n, sizeof *s, cmp_vi);
    /* A value's score is fixed by how many values are worse than it: equal values share it,
     * so a customer never scores below another with the same figure. */
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && s[j].v == s[i].v)
            j++;
        int sc = 1 + (int)(5 * i / n);
        for (size_t k = i; k < j; k++)
            score[s[k].i] = sc;
        i = j;
    }
    free(s);
}

/* ---- the figures of each customer ---------------------------------------------------------- */

typedef struct {
    int64_t *id;
    double *rec, *freq, *mon;
    char (*last)[RAPPORT_TIME_LEN];
    int64_t *money; /* net purchases, scaled by 10^scale */
    int scale;
    size_t n, cap;
    int64_t as_of;
} cust_t;

/* One customer's row: customer, max_at, count, count_ref, count_distinct_ref, sum_amount. */
static int add_customer(void *ud, int n, const rapport_cell *cell)
{
    cust_t *c = ud;
    if (n != 6)
        return RAPPORT_EINVAL;
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 1024;
        void *p[6] = {realloc(c->id, nc * sizeof *c->id), realloc(c->rec, nc * sizeof *c->rec),
                      realloc(c->freq, nc * sizeof *c->freq), realloc(c->mon, nc * sizeof *c->mon),
                      realloc(c->last, nc * sizeof *c->last),
                      realloc(c->money, nc * sizeof *c->money)};
        if (p[0])
            c->id = p[0];
        if (p[1])
            c->rec = p[1];
        if (p[2])
            c->freq = p[2];
        if (p[3])
            c->mon = p[3];
        if (p[4])
            c->last = p[4];
        if (p[5])
            c->money = p[5];
        for (int k = 0; k < 6; k++)
            if (!p[k])
                return RAPPORT_ENOMEM;
        c->cap = nc;
    }
    size_t i = c->n++;
    c->id[i] = cell[0].i;
    const char *last = cell[1].type == RAPPORT_CELL_TEXT ? cell[1].s : "";
    snprintf(c->last[i], RAPPORT_TIME_LEN, "%s", last);
    int64_t lms = last[0] ? an_time(last) : -1;
    c->rec[i] = lms < 0 ? 0 : floor((double)(c->as_of - lms) / 86400000.0);
    c->freq[i] = (double)(cell[4].i + (cell[2].i - cell[3].i));
    c->money[i] = cell[5].type == RAPPORT_CELL_DECIMAL ? cell[5].i : 0;
    c->scale = cell[5].type == RAPPORT_CELL_DECIMAL ? cell[5].scale : 2;
    c->mon[i] = an_cell_num(&cell[5]);
    return 0;
}

/* The customer's net purchases as the store writes them ("12.50"). */
static const char *money_text(const cust_t *c, size_t i, char *buf)
{
    an_api->dec_format(NULL, c->money[i], c->scale, buf, RAPPORT_DEC_LEN);
    return buf;
}

static void cust_free(cust_t *c)
{
    free(c->id);
    free(c->rec);
    free(c->freq);
    free(c->mon);
    free(c->last);
    free(c->money);
}

/* ---- storing on the contacts --------------------------------------------------------------- */

#define WINDOW 500

/* Writes what changed on the contacts of customers [lo, hi), and the segment events. */
static int store_window(rapport_host *h, cust_t *c, const int *r, const int *f, const int *m,
                        json_t *table, size_t lo, size_t hi, int64_t *written,
                        int64_t *moved, char *err, size_t errlen)
{
    json_t *ids = json_array();
    for (size_t i = lo; i < hi; i++)
        json_array_append_new(ids, json_integer(c->id[i]));
    json_t *now = an_contacts(h, ids, json_pack("[s,s,s,s,s]", "rfm_score", "rfm_segment",
                                                "rfm_frequency", "rfm_monetary",
                                                "last_purchase_at"),
                              err, errlen);
    if (!now)
        return RAPPORT_EINVAL;
    int rc = 0;
    for (size_t i = lo; i < hi && !rc; i++) {
        char key[24], score[4];
        snprintf(key, sizeof key, "%lld", (long long)c->id[i]);
        snprintf(score, sizeof score, "%d%d%d", r[i], f[i], m[i]);
        json_t *was = json_object_get(now, key);
        if (!was)
            continue; /* a contact the caller may not read, or gone: left as it is */
        const char *seg = an_rfm_segment_of(table, r[i], f[i], m[i]);
        const char *old_seg = json_string_value(json_object_get(was, "rfm_segment"));
        json_t *patch = json_object();
        const char *old_score = json_string_value(json_object_get(was, "rfm_score"));
        if (!old_score || strcmp(old_score, score))
            json_object_set_new(patch, "rfm_score", json_string(score));
        if (!old_seg || strcmp(old_seg, seg))
            json_object_set_new(patch, "rfm_segment", json_string(seg));
        if (json_integer_value(json_object_get(was, "rfm_frequency")) != (json_int_t)c->freq[i] ||
            !json_is_integer(json_object_get(was, "rfm_frequency")))
            json_object_set_new(patch, "rfm_frequency", json_integer((json_int_t)c->freq[i]));
        char mbuf[RAPPORT_DEC_LEN];
        money_text(c, i, mbuf);
        const char *old_m = json_string_value(json_object_get(was, "rfm_monetary"));
        if (!old_m || strcmp(old_m, mbuf))
            json_object_set_new(patch, "rfm_monetary", json_string(mbuf));
        const char *old_l = json_string_value(json_object_get(was, "last_purchase_at"));
        if (c->last[i][0] && (!old_l || strcmp(old_l, c->last[i])))
            json_object_set_new(patch, "last_purchase_at", json_string(c->last[i]));
        if (json_object_size(patch)) {
            char *pt = json_dumps(patch, JSON_COMPACT);
            rc = an_api->update(h, "contact", c->id[i], pt, 0);
            free(pt);
            if (rc)
                an_fail(err, errlen, "contact %lld: %s", (long long)c->id[i],
                        an_api->last_error(h));
            else
                (*written)++;
        }
        if (!rc && (!old_seg || strcmp(old_seg, seg))) {
            json_t *ev = json_pack("{s:s?,s:s,s:s}", "from", old_seg, "to", seg, "score", score);
            char *et = json_dumps(ev, JSON_COMPACT);
            json_decref(ev);
            rc = an_api->emit(h, "contact.segment_changed", "contact", c->id[i], et);
            free(et);
            if (rc)
                an_fail(err, errlen, "contact %lld: %s", (long long)c->id[i],
                        an_api->last_error(h));
            else
                (*moved)++;
        }
        json_decref(patch);
    }
    json_decref(now);
    return rc;
}

/* ---- the analysis --------------------------------------------------------------------------- */

int an_rfm(rapport_host *h, json_t *opts, json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    int64_t as_of = an_opt_time(opts, "as_of", an_api->now_ms(h), err, errlen);
    if (as_of < 0)
        return RAPPORT_EINVAL;
    bool dry = json_is_true(json_object_get(opts, "dry_run"));
    char as_of_text[RAPPORT_TIME_LEN];
    an_time_fmt(as_of, as_of_text);
    json_t *table = an_rfm_segments(h, err, errlen);
    if (!table)
        return RAPPORT_EINVAL;
    cust_t c = {.as_of = as_of};
    json_t *q = json_pack("{s:[s],s:[s,s,s,s,s],s:{s:{s:s}}}", "group_by", "customer",
                          "measures", "max:at", "count", "count:ref", "count_distinct:ref",
                          "sum:amount", "where", "at", "le", as_of_text);
    int rc = an_aggregate_cells(h, "purchase", q, add_customer, &c, err, errlen);
    json_decref(q);
    int *r = NULL, *f = NULL, *m = NULL;
    if (rc)
        goto out;
    r = malloc(sizeof *r * (c.n + 1));
    f = malloc(sizeof *f * (c.n + 1));
    m = malloc(sizeof *m * (c.n + 1));
    if (!r || !f || !m) {
        rc = an_fail(err, errlen, "out of memory");
        goto out;
    }
    an_quintiles(c.rec, c.n, true, r);
    an_quintiles(c.freq, c.n, false, f);
    an_quintiles(c.mon, c.n, false, m);
    int64_t written = 0, moved = 0;
    if (!dry) {
        for (size_t lo = 0; lo < c.n && !rc; lo += WINDOW) {
            size_t hi = lo + WINDOW < c.n ? lo + WINDOW : c.n;
            /* One transaction a window: a crash leaves whole windows, and a rerun ends it. */
            if (an_api->begin(h)) {
                rc = an_fail(err, errlen, "%s", an_api->last_error(h));
                break;
            }
            rc = store_window(h, &c, r, f, m, table, lo, hi, &written, &moved, err, errlen);
            if (rc)
                an_api->rollback(h);
            else if (an_api->commit(h))
                rc = an_fail(err, errlen, "%s", an_api->last_error(h));
        }
        if (rc)
            goto out;
    }
    /* The report: one row a segment, in the table's order. */
    static const char *const cols[] = {"segment", "customers", "share", "avg_recency_days",
                                       "avg_frequency", "avg_monetary", "monetary", NULL};
    json_t *rep = an_report(cols);
    /* One pass: each customer's segment from a table of the 125 codes. */
    size_t nseg = json_array_size(table);
    const char *by_code[125];
    for (int k = 0; k < 125; k++)
        by_code[k] = an_rfm_segment_of(table, k / 25 + 1, k / 5 % 5 + 1, k % 5 + 1);
    double *acc = calloc(nseg * 4 + 1, sizeof *acc); /* count, sum r, sum f, sum m */
    for (size_t i = 0; acc && i < c.n; i++) {
        const char *name = by_code[(r[i] - 1) * 25 + (f[i] - 1) * 5 + m[i] - 1];
        for (size_t k = 0; k < nseg; k++)
            if (json_string_value(json_object_get(json_array_get(table, k), "name")) == name) {
                acc[4 * k] += 1;
                acc[4 * k + 1] += c.rec[i];
                acc[4 * k + 2] += c.freq[i];
                acc[4 * k + 3] += c.mon[i];
                break;
            }
    }
    for (size_t k = 0; acc && k < nseg; k++) {
        const char *name = json_string_value(json_object_get(json_array_get(table, k), "name"));
        double cnt = acc[4 * k], sr = acc[4 * k + 1], sf = acc[4 * k + 2], sm = acc[4 * k + 3];
        an_report_row(rep, json_string(name), json_integer((json_int_t)cnt),
                      json_real(c.n ? round(1e4 * cnt / (double)c.n) / 1e4 : 0),
                      cnt ? json_real(round(10 * sr / cnt) / 10) : json_null(),
                      cnt ? json_real(round(100 * sf / cnt) / 100) : json_null(),
                      cnt ? json_real(round(100 * sm / cnt) / 100) : json_null(),
                      json_real(round(100 * sm) / 100));
    }
    free(acc);
    json_object_set_new(rep, "as_of", json_string(as_of_text));
    json_object_set_new(rep, "customers", json_integer((json_int_t)c.n));
    json_object_set_new(rep, "stored", json_boolean(!dry));
    json_object_set_new(rep, "contacts_changed", json_integer(written));
    json_object_set_new(rep, "segment_changes", json_integer(moved));
    if (json_is_true(json_object_get(opts, "customers"))) {
        json_t *list = json_array();
        char mbuf[RAPPORT_DEC_LEN];
        for (size_t i = 0; i < c.n; i++)
            json_array_append_new(
                list, json_pack("{s:I,s:I,s:I,s:s,s:i,s:i,s:i,s:s}", "customer",
                                (json_int_t)c.id[i], "recency_days", (json_int_t)c.rec[i],
                                "frequency", (json_int_t)c.freq[i], "monetary",
                                money_text(&c, i, mbuf), "r",
                                r[i], "f", f[i], "m", m[i], "segment",
                                an_rfm_segment_of(table, r[i], f[i], m[i])));
        json_object_set_new(rep, "list", list);
    }
    *out = rep;
out:
    free(r);
    free(f);
    free(m);
    cust_free(&c);
    json_decref(table);
    return rc;
}
