/*
 * clv.c — what customers are worth and who is slipping away: fitting the purchase and spend
 * models (BG/NBD, Pareto/NBD, Gamma-Gamma, models.c) on a calibration window, historic CLV
 * (net purchases less the costs of acquiring and serving, at the time value of money), and per
 * customer the expected purchases over a horizon, P(alive), the expected spend and the
 * discounted future value, stored on the contact; churn risk when P(alive) falls below a
 * threshold or the customer's silence passes their own usual gap, with an event
 * (contact.churn_risk) the first time, for rules to act on.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "models.h"
#include "summary.h"

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* The model named by opts.model, else the setting, else BG/NBD; 0 when unknown. */
static int model_of(rapport_host *h, json_t *opts, bool spend_ok, char *err, size_t errlen)
{
    const char *m = json_string_value(json_object_get(opts, "model"));
    json_t *set = m ? NULL : an_config(h, "model");
    if (!m)
        m = json_string_value(set);
    int r = !m || !strcmp(m, "bgnbd")  ? AN_MODEL_BGNBD
            : !strcmp(m, "paretonbd") ? AN_MODEL_PNBD
            : spend_ok && !strcmp(m, "gammagamma") ? AN_MODEL_GG
                                                   : 0;
    if (!r)
        an_fail(err, errlen, "model must be bgnbd%s or paretonbd, not \"%s\"",
                spend_ok ? ", gammagamma" : "", m);
    json_decref(set);
    return r;
}

/* Fits @p model on the summary: every customer with a transaction, or for Gamma-Gamma those
 * with a repeat one. */
static int fit_model(const an_summary_t *s, int model, an_fit_t *fit, size_t *unique,
                     char *err, size_t errlen)
{
    an_customer_t *in = malloc(sizeof *in * (s->n ? s->n : 1));
    an_row_t *rows = malloc(sizeof *rows * (s->n ? s->n : 1));
    if (!in || !rows) {
        free(in);
        free(rows);
        return an_fail(err, errlen, "out of memory");
    }
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++) {
        const an_hist_t *c = &s->c[i];
        if (c->first_day < 0 || c->T <= 0 || (model == AN_MODEL_GG && (c->x < 1 || c->m_x <= 0)))
            continue;
        in[n++] = (an_customer_t){(int64_t)c->x, c->t_x, c->T, c->m_x};
    }
    size_t nr = 0;
    int rc = n ? an_compress(in, n, model == AN_MODEL_GG, rows, &nr, err, errlen)
               : an_fail(err, errlen, "no customer to fit %s on (purchases up to the "
                                      "calibration end, with a repeat one for Gamma-Gamma)",
                         model == AN_MODEL_GG ? "Gamma-Gamma" : "the model");
    if (!rc)
        rc = model == AN_MODEL_BGNBD ? an_bgnbd_fit(rows, nr, fit, err, errlen)
             : model == AN_MODEL_PNBD ? an_pnbd_fit(rows, nr, fit, err, errlen)
                                      : an_gg_fit(rows, nr, fit, err, errlen);
    if (rc && rc != RAPPORT_EINVAL)
        rc = RAPPORT_EINVAL;
    *unique = nr;
    free(in);
    free(rows);
    return rc;
}

static json_t *params_json(const an_fit_t *f)
{
    switch (f->model) {
    case AN_MODEL_BGNBD:
        return json_pack("{s:f,s:f,s:f,s:f}", "r", f->p.bgnbd.r, "alpha", f->p.bgnbd.alpha, "a",
                         f->p.bgnbd.a, "b", f->p.bgnbd.b);
    case AN_MODEL_PNBD:
        return json_pack("{s:f,s:f,s:f,s:f}", "r", f->p.pnbd.r, "alpha", f->p.pnbd.alpha, "s",
                         f->p.pnbd.s, "beta", f->p.pnbd.beta);
    default:
        return json_pack("{s:f,s:f,s:f}", "p", f->p.gg.p, "q", f->p.gg.q, "gamma",
                         f->p.gg.gamma);
    }
}

static const char *model_name(int m)
{
    return m == AN_MODEL_BGNBD ? "bgnbd" : m == AN_MODEL_PNBD ? "paretonbd" : "gammagamma";
}

/* The time unit of opts.unit: 7 days (weeks, as the papers) or 1. */
static double unit_of(json_t *opts, char *err, size_t errlen)
{
    const char *u = json_string_value(json_object_get(opts, "unit"));
    if (!u || !strcmp(u, "week"))
        return 7;
    if (!strcmp(u, "day"))
        return 1;
    an_fail(err, errlen, "unit must be week or day, not \"%s\"", u);
    return 0;
}

int an_fit(rapport_host *h, json_t *opts, json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    int model = model_of(h, opts, true, err, errlen);
    double unit = model ? unit_of(opts, err, errlen) : 0;
    int64_t end = unit ? an_opt_time(opts, "calibration_end", an_api->now_ms(h), err, errlen)
                       : -1;
    if (!model || !unit || end < 0)
        return RAPPORT_EINVAL;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    an_summary_t s;
    int rc = an_summary_load(h, end, unit, 0, &s, err, errlen);
    if (rc)
        return rc;
    double load_ms = ms_since(&t0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    an_fit_t fit;
    size_t unique = 0;
    rc = fit_model(&s, model, &fit, &unique, err, errlen);
    double fit_ms = ms_since(&t0);
    an_summary_free(&s);
    if (rc)
        return rc;
    static const char *const cols[] = {"parameter", "value", NULL};
    json_t *rep = an_report(cols);
    json_t *p = params_json(&fit);
    const char *k;
    json_t *v;
    json_object_foreach(p, k, v) an_report_row(rep, json_string(k), json_incref(v));
    char endt[RAPPORT_TIME_LEN];
    an_time_fmt(end, endt);
    json_object_set_new(rep, "model", json_string(model_name(model)));
    json_object_set_new(rep, "params", p);
    json_object_set_new(rep, "log_likelihood", json_real(fit.ll));
    json_object_set_new(rep, "customers", json_integer(fit.n_customers));
    json_object_set_new(rep, "unique_rows", json_integer((json_int_t)unique));
    json_object_set_new(rep, "iterations", json_integer(fit.iterations));
    json_object_set_new(rep, "converged", json_boolean(fit.converged));
    json_object_set_new(rep, "method", json_string(fit.method));
    if (!fit.converged)
        json_object_set_new(rep, "reason", json_string(fit.reason));
    json_object_set_new(rep, "calibration_end", json_string(endt));
    json_object_set_new(rep, "unit", json_string(unit == 7 ? "week" : "day"));
    json_object_set_new(rep, "read_ms", json_real(round(load_ms * 10) / 10));
    json_object_set_new(rep, "fit_ms", json_real(round(fit_ms * 100) / 100));
    *out = rep;
    return 0;
}

/* ---- value per customer ------------------------------------------------------------------------ */

typedef struct {
    double p_alive, expected, spend, dev;
    bool risk;
    const char *why;
} pred_t;

static json_t *money(double v)
{
    char b[32];
    snprintf(b, sizeof b, "%.2f", round(v * 100) / 100 + 0.0);
    return json_string(strcmp(b, "-0.00") ? b : "0.00");
}

#define WINDOW 500

/* Writes what changed on the contacts of customers [lo, hi), and the churn events. */
static int store_window(rapport_host *h, const an_summary_t *s, const pred_t *pr, bool predicted,
                        size_t lo, size_t hi, int64_t *written, int64_t *newly, char *err,
                        size_t errlen)
{
    json_t *ids = json_array();
    for (size_t i = lo; i < hi; i++)
        json_array_append_new(ids, json_integer(s->c[i].id));
    json_t *now = an_contacts(h, ids, json_pack("[s,s,s,s,s]", "clv_historic", "clv_predicted",
                                                "expected_purchases", "p_alive", "churn_risk"),
                              err, errlen);
    if (!now)
        return RAPPORT_EINVAL;
    json_t *v;
    int rc = 0;
    for (size_t i = lo; i < hi && !rc; i++) {
        char key[24];
        snprintf(key, sizeof key, "%lld", (long long)s->c[i].id);
        json_t *was = json_object_get(now, key);
        if (!was)
            continue;
        json_t *want = json_pack("{s:o,s:o,s:f,s:f,s:b}", "clv_historic", money(s->c[i].value),
                                 "clv_predicted", money(pr[i].dev), "expected_purchases",
                                 round(pr[i].expected * 1e4) / 1e4, "p_alive",
                                 round(pr[i].p_alive * 1e4) / 1e4, "churn_risk", pr[i].risk);
        if (!predicted) { /* only what is known */
            json_t *keep = json_pack("{s:O}", "clv_historic", json_object_get(want, "clv_historic"));
            json_decref(want);
            want = keep;
        }
        json_t *patch = json_object();
        const char *f;
        json_object_foreach(want, f, v) {
            json_t *o = json_object_get(was, f);
            bool same = json_is_real(v) && json_is_number(o)
                            ? fabs(json_number_value(o) - json_real_value(v)) < 1e-9
                            : json_equal(o, v);
            if (!same)
                json_object_set(patch, f, v);
        }
        if (json_object_size(patch)) {
            char *pt = json_dumps(patch, JSON_COMPACT);
            rc = an_api->update(h, "contact", s->c[i].id, pt, 0);
            free(pt);
            if (rc)
                an_fail(err, errlen, "contact %lld: %s", (long long)s->c[i].id,
                        an_api->last_error(h));
            else
                (*written)++;
        }
        if (!rc && pr[i].risk && !json_is_true(json_object_get(was, "churn_risk"))) {
            json_t *ev = json_pack("{s:s,s:f}", "reason", pr[i].why, "p_alive",
                                   round(pr[i].p_alive * 1e4) / 1e4);
            char *et = json_dumps(ev, JSON_COMPACT);
            json_decref(ev);
            rc = an_api->emit(h, "contact.churn_risk", "contact", s->c[i].id, et);
            free(et);
            if (rc)
                an_fail(err, errlen, "contact %lld: %s", (long long)s->c[i].id,
                        an_api->last_error(h));
            else
                (*newly)++;
        }
        json_decref(patch);
        json_decref(want);
    }
    json_decref(now);
    return rc;
}

typedef struct {
    double dev;
    size_t i;
} rank_t;

static int by_dev_desc(const void *a, const void *b)
{
    double x = ((const rank_t *)a)->dev, y = ((const rank_t *)b)->dev;
    return (x < y) - (x > y);
}

/* Both `clv` and `churn`: @p churn_only lists the customers at risk instead of the best. */
static int value(rapport_host *h, json_t *opts, bool churn_only, json_t **out, char *err,
                 size_t errlen)
{
    *out = NULL;
    int model = model_of(h, opts, false, err, errlen);
    if (!model)
        return RAPPORT_EINVAL;
    int64_t as_of = an_opt_time(opts, "as_of", an_api->now_ms(h), err, errlen);
    if (as_of < 0)
        return RAPPORT_EINVAL;
    const char *hz = json_string_value(json_object_get(opts, "horizon"));
    int64_t hms = 52 * 7 * 86400000LL;
    if (hz && (an_api->delay_parse(NULL, hz, &hms) || hms < 7 * 86400000LL ||
               hms > 520 * 7 * 86400000LL))
        return an_fail(err, errlen, "horizon must be a delay of 1 to 520 weeks, as \"52w\"");
    int weeks = (int)(hms / (7 * 86400000LL));
    json_t *rv = json_object_get(opts, "rate");
    double rate = rv ? an_num(rv) : an_config_num(h, "discount_rate", 0.1);
    if (!(rate >= 0 && rate < 10))
        return an_fail(err, errlen, "rate must be an annual rate from 0 to 10 (0.1 is 10 %%)");
    bool dry = json_is_true(json_object_get(opts, "dry_run"));
    double threshold = an_config_num(h, "churn_p_alive", 0.5);
    double gap_factor = an_config_num(h, "churn_gap_factor", 2);
    json_t *tv = json_object_get(opts, "top");
    int64_t top = tv ? (int64_t)an_num(tv) : 10;
    an_summary_t s;
    int rc = an_summary_load(h, as_of, 7, rate, &s, err, errlen);
    if (!rc)
        rc = an_summary_costs(h, &s, rate, an_config_num(h, "cost_per_ticket", 0),
                              an_config_num(h, "cost_per_activity", 0), err, errlen);
    if (rc)
        return rc;
    an_fit_t fit, gg;
    size_t unique;
    pred_t *pr = calloc(s.n ? s.n : 1, sizeof *pr);
    if (!pr) {
        an_summary_free(&s);
        return an_fail(err, errlen, "out of memory");
    }
    /* Without a model (too few customers, a fit that fails) the historic value still counts. */
    char model_err[256] = "";
    bool have_model = fit_model(&s, model, &fit, &unique, model_err, sizeof model_err) == 0;
    bool have_gg = false;
    char gg_err[256] = "";
    if (have_model) /* without repeat buyers (or q <= 1) the spend is the customer's own mean */
        have_gg = fit_model(&s, AN_MODEL_GG, &gg, &unique, gg_err, sizeof gg_err) == 0 &&
                  gg.p.gg.q > 1;
    int64_t at_risk = 0;
    double total_dev = 0, total_hist = 0;
    for (size_t i = 0; !rc && i < s.n; i++) {
        an_hist_t *c = &s.c[i];
        pred_t *p = &pr[i];
        total_hist += c->value;
        p->why = "";
        if (!have_model || c->first_day < 0 || c->T <= 0)
            continue;
        int64_t x = (int64_t)c->x;
        char e[200];
        int r = model == AN_MODEL_BGNBD
                    ? an_bgnbd_palive(&fit.p.bgnbd, x, c->t_x, c->T, &p->p_alive, e, sizeof e)
                    : an_pnbd_palive(&fit.p.pnbd, x, c->t_x, c->T, &p->p_alive, e, sizeof e);
        if (!r)
            r = model == AN_MODEL_BGNBD
                    ? an_bgnbd_conditional(&fit.p.bgnbd, x, c->t_x, c->T, weeks, &p->expected,
                                           e, sizeof e)
                    : an_pnbd_conditional(&fit.p.pnbd, x, c->t_x, c->T, weeks, &p->expected, e,
                                          sizeof e);
        if (!r && have_gg)
            r = an_gg_expected_spend(&gg.p.gg, x, c->m_x, &p->spend, e, sizeof e);
        else if (!r)
            p->spend = c->x > 0 ? c->m_x : c->revenue;
        if (!r)
            r = an_dev(&fit, x, c->t_x, c->T, p->spend, weeks, rate, &p->dev, e, sizeof e);
        if (r) {
            /* A degenerate fit (too few customers for it): said, and the historic value still
             * counts; start the pass over without the model. */
            snprintf(model_err, sizeof model_err, "the fitted model cannot value customer "
                     "%lld: %s", (long long)c->id, e);
            have_model = have_gg = false;
            memset(pr, 0, sizeof *pr * s.n);
            at_risk = 0;
            total_dev = total_hist = 0;
            i = (size_t)-1;
            continue;
        }
        /* At risk: probably gone, or quiet for longer than this customer's own rhythm. */
        double gap = c->x > 0 ? (double)(c->last_day - c->first_day) / c->x : 0;
        double quiet = (double)(s.end_day - c->last_day);
        if (p->p_alive < threshold) {
            p->risk = true;
            p->why = "P(alive) below the threshold";
        } else if (gap > 0 && quiet > gap_factor * gap) {
            p->risk = true;
            p->why = "silent past their usual gap";
        } else {
            p->why = "";
        }
        at_risk += p->risk;
        total_dev += p->dev;
    }
    int64_t written = 0, newly = 0;
    for (size_t lo = 0; !rc && !dry && lo < s.n; lo += WINDOW) {
        size_t hi = lo + WINDOW < s.n ? lo + WINDOW : s.n;
        if (an_api->begin(h)) {
            rc = an_fail(err, errlen, "%s", an_api->last_error(h));
            break;
        }
        rc = store_window(h, &s, pr, have_model, lo, hi, &written, &newly, err, errlen);
        if (rc)
            an_api->rollback(h);
        else if (an_api->commit(h))
            rc = an_fail(err, errlen, "%s", an_api->last_error(h));
    }
    if (rc) {
        free(pr);
        an_summary_free(&s);
        return rc;
    }
    static const char *const cols[] = {"customer", "repeat_purchases", "days_quiet", "p_alive",
                                       "expected_purchases", "expected_spend", "clv_predicted",
                                       "clv_historic", "churn_risk", NULL};
    json_t *rep = an_report(cols);
    rank_t *order = malloc(sizeof *order * (s.n ? s.n : 1));
    size_t listed = 0;
    for (size_t i = 0; order && i < s.n; i++)
        if (!churn_only || pr[i].risk)
            order[listed++] = (rank_t){have_model ? pr[i].dev : s.c[i].value, i};
    if (order)
        qsort(order, listed, sizeof *order, by_dev_desc);
    for (size_t j = 0; order && j < listed && (int64_t)j < top; j++) {
        size_t i = order[j].i;
        an_hist_t *c = &s.c[i];
        an_report_row(rep, json_integer(c->id), json_integer((json_int_t)c->x),
                      json_integer(c->first_day < 0 ? 0 : s.end_day - c->last_day),
                      have_model ? json_real(round(pr[i].p_alive * 1e4) / 1e4) : NULL,
                      have_model ? json_real(round(pr[i].expected * 100) / 100) : NULL,
                      have_model ? json_real(round(pr[i].spend * 100) / 100) : NULL,
                      have_model ? money(pr[i].dev) : NULL, money(c->value),
                      json_boolean(pr[i].risk));
    }
    free(order);
    char at[RAPPORT_TIME_LEN];
    an_time_fmt(as_of, at);
    json_object_set_new(rep, "as_of", json_string(at));
    json_object_set_new(rep, "model", json_string(model_name(model)));
    if (have_model)
        json_object_set_new(rep, "params", params_json(&fit));
    else
        json_object_set_new(rep, "model_error", json_string(model_err));
    if (have_gg)
        json_object_set_new(rep, "spend_params", params_json(&gg));
    else if (have_model)
        json_object_set_new(rep, "spend_model", json_string(gg_err[0] ? gg_err : "q <= 1"));
    json_object_set_new(rep, "horizon_weeks", json_integer(weeks));
    json_object_set_new(rep, "rate", json_real(rate));
    json_object_set_new(rep, "customers", json_integer((json_int_t)s.n));
    json_object_set_new(rep, "at_risk", json_integer(at_risk));
    json_object_set_new(rep, "clv_predicted_total", money(total_dev));
    json_object_set_new(rep, "clv_historic_total", money(total_hist));
    json_object_set_new(rep, "stored", json_boolean(!dry));
    json_object_set_new(rep, "contacts_changed", json_integer(written));
    json_object_set_new(rep, "newly_at_risk", json_integer(newly));
    free(pr);
    an_summary_free(&s);
    *out = rep;
    return 0;
}

int an_clv(rapport_host *h, json_t *opts, json_t **out, char *err, size_t errlen)
{
    return value(h, opts, false, out, err, errlen);
}

int an_churn(rapport_host *h, json_t *opts, json_t **out, char *err, size_t errlen)
{
    return value(h, opts, true, out, err, errlen);
}
