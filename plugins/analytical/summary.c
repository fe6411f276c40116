/*
 * summary.c — each customer's purchase history, summarised as the models and the historic CLV
 * need it, in one pass over a grouped aggregate (customer × day): same-day purchases merged
 * into one transaction, the first transaction at time 0, x the repeat transactions, t_x the
 * time of the last, T the time to the end of the calibration (its last day included), the
 * mean value of the repeat transactions (Gamma-Gamma's m_x), and the customer's purchases
 * and costs discounted to the reference date.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "summary.h"

typedef struct {
    an_summary_t *s;
    int64_t cur;       /* the customer being read, or -1 */
    int64_t end_day;   /* the calibration's last day */
    double unit_days;  /* days a time unit (7: weeks) */
    double rate;       /* the annual discount rate */
    double repeat_sum; /* the current customer's repeat transactions' value */
    int64_t last_day;
} pass_t;

static int grow(an_summary_t *s)
{
    size_t nc = s->cap ? 2 * s->cap : 4096;
    an_hist_t *n = realloc(s->c, nc * sizeof *n);
    if (!n)
        return RAPPORT_ENOMEM;
    s->c = n;
    s->cap = nc;
    return 0;
}

/* A cash flow of @p day valued at the reference day: compounded when before it. */
static double at_ref(double v, int64_t day, int64_t ref, double rate)
{
    return v * pow(1 + rate, (double)(ref - day) / 365.25);
}

static void close_customer(pass_t *p)
{
    if (p->cur < 0 || !p->s->n)
        return;
    an_hist_t *c = &p->s->c[p->s->n - 1];
    c->m_x = c->x > 0 ? p->repeat_sum / c->x : 0;
}

static int add_day(json_t *row, void *ud)
{
    pass_t *p = ud;
    int64_t cust = json_integer_value(json_object_get(row, "customer"));
    int64_t day = an_day(json_string_value(json_object_get(row, "at_day")));
    if (day == INT64_MIN)
        return 0;
    double amount = an_num(json_object_get(row, "sum_amount"));
    double cost = an_num(json_object_get(row, "sum_cost"));
    an_hist_t *c;
    if (cust != p->cur) {
        close_customer(p);
        if (p->s->n == p->s->cap && grow(p->s))
            return RAPPORT_ENOMEM;
        c = &p->s->c[p->s->n++];
        memset(c, 0, sizeof *c);
        c->id = cust;
        c->first_day = -1;
        p->cur = cust;
        p->repeat_sum = 0;
    } else {
        c = &p->s->c[p->s->n - 1];
    }
    c->revenue += amount;
    c->value += at_ref(amount - cost, day, p->end_day, p->rate);
    /* A day of returns only is no transaction (a free one, at 0.00, is: CDNOW has them). */
    if (amount < 0)
        return 0;
    if (c->first_day < 0) {
        c->first_day = day;
    } else {
        c->x++;
        p->repeat_sum += amount;
    }
    c->last_day = day;
    return 0;
}

int an_summary_load(rapport_host *h, int64_t end_ms, double unit_days, double rate,
                    an_summary_t *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    char end[RAPPORT_TIME_LEN];
    /* The calibration's last day is whole: purchases before the next midnight (UTC). */
    int64_t end_day = end_ms >= 0 ? end_ms / 86400000 : (end_ms - 86399999) / 86400000;
    an_time_fmt((end_day + 1) * 86400000, end);
    pass_t p = {.s = s, .cur = -1, .end_day = end_day, .unit_days = unit_days, .rate = rate};
    json_t *q = json_pack("{s:[s,s],s:[s,s],s:{s:{s:s}},s:s}", "group_by", "customer",
                          "at:day", "measures", "sum:amount", "sum:cost", "where", "at", "lt",
                          end, "zone", "UTC");
    int rc = an_aggregate(h, "purchase", q, add_day, &p, err, errlen);
    json_decref(q);
    close_customer(&p);
    if (rc) {
        an_summary_free(s);
        return rc;
    }
    s->end_day = end_day;
    s->unit_days = unit_days;
    for (size_t i = 0; i < s->n; i++) {
        an_hist_t *c = &s->c[i];
        if (c->first_day < 0) { /* returns only: no transaction yet */
            c->t_x = c->T = 0;
            continue;
        }
        c->t_x = (double)(c->last_day - c->first_day) / unit_days;
        c->T = (double)(end_day - c->first_day) / unit_days;
    }
    return 0;
}

an_hist_t *an_summary_find(an_summary_t *s, int64_t id)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->c[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->n && s->c[lo].id == id ? &s->c[lo] : NULL;
}

void an_summary_free(an_summary_t *s)
{
    free(s->c);
    memset(s, 0, sizeof *s);
}

/* ---- the costs of acquiring and serving -------------------------------------------------------- */

typedef struct {
    an_summary_t *s;
    const char *idkey, *daykey;
    double unit_cost;
    double rate;
} cost_t;

static int add_cost(json_t *row, void *ud)
{
    cost_t *k = ud;
    an_hist_t *c = an_summary_find(k->s, json_integer_value(json_object_get(row, k->idkey)));
    if (!c)
        return 0;
    int64_t day = an_day(json_string_value(json_object_get(row, k->daykey)));
    double n = an_num(json_object_get(row, "count"));
    if (day != INT64_MIN)
        c->value -= at_ref(n * k->unit_cost, day, k->s->end_day, k->rate);
    return 0;
}

typedef struct {
    an_summary_t *s;
    double rate;
} acq_t;

static int add_acquisition(json_t *row, void *ud)
{
    acq_t *a = ud;
    an_hist_t *c = an_summary_find(a->s, json_integer_value(json_object_get(row, "id")));
    if (c && c->first_day >= 0)
        c->value -= at_ref(an_num(json_object_get(row, "max_acquisition_cost")), c->first_day,
                           a->s->end_day, a->rate);
    return 0;
}

int an_summary_costs(rapport_host *h, an_summary_t *s, double rate, double per_ticket,
                     double per_activity, char *err, size_t errlen)
{
    char end[RAPPORT_TIME_LEN];
    an_time_fmt((s->end_day + 1) * 86400000, end);
    acq_t a = {s, rate};
    json_t *q = json_pack("{s:[s],s:[s],s:{s:{s:b}}}", "group_by", "id", "measures",
                          "max:acquisition_cost", "where", "acquisition_cost", "is_null", 0);
    int rc = an_aggregate(h, "contact", q, add_acquisition, &a, err, errlen);
    json_decref(q);
    if (!rc && per_ticket != 0) {
        cost_t k = {s, "contact", "created_at_day", per_ticket, rate};
        q = json_pack("{s:[s,s],s:[s],s:{s:{s:b},s:{s:s}},s:s}", "group_by", "contact",
                      "created_at:day", "measures", "count", "where", "contact", "is_null", 0,
                      "created_at", "lt", end, "zone", "UTC");
        rc = an_aggregate(h, "ticket", q, add_cost, &k, err, errlen);
        json_decref(q);
    }
    if (!rc && per_activity != 0) {
        cost_t k = {s, "related_id", "created_at_day", per_activity, rate};
        q = json_pack("{s:[s,s],s:[s],s:{s:s,s:{s:s}},s:s}", "group_by", "related_id",
                      "created_at:day", "measures", "count", "where", "related_entity",
                      "contact", "created_at", "lt", end, "zone", "UTC");
        rc = an_aggregate(h, "activity", q, add_cost, &k, err, errlen);
        json_decref(q);
    }
    return rc;
}
