/*
 * models.c — the customer models: compressing customers into weighted rows, the BG/NBD,
 * Pareto/NBD and Gamma-Gamma likelihoods and their NLopt fits, the expectations, and the
 * discounted expected value. Special functions live in special.c.
 */
#define _DEFAULT_SOURCE /* sysconf, M_LN2 under -std=c11 */

#include "models.h"

#include <float.h>
#include <math.h>
#include <nlopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The Pareto/NBD integral series stops at this many terms (see pnbd_log_integral). */
#define PNBD_MAX_TERMS 1000000
/* Log-parameters are boxed to [-30, 30]: e^30 is 1e13 weeks, far past any real fit. */
#define LOG_BOUND 30.0
#define MAX_EVALS 20000

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

static int positive(double v)
{
    return isfinite(v) && v > 0.0;
}

/* ln(1 + e^u) without overflow for large u or loss for very negative u. */
static double softplus(double u)
{
    return u > 0.0 ? u + log1p(exp(-u)) : log1p(exp(u));
}

/* ln(e^p + e^q), either argument may be -inf. */
static double log_add(double p, double q)
{
    if (p == -INFINITY)
        return q;
    if (q == -INFINITY)
        return p;
    return p > q ? p + log1p(exp(q - p)) : q + log1p(exp(p - q));
}

static int check_customer(int64_t x, double t_x, double T, const char *what, size_t i,
                          char *err, size_t errlen)
{
    if (x < 0)
        return fail(err, errlen, AN_EINVAL, "%s %zu: x = %lld repeat purchases is negative",
                    what, i, (long long)x);
    if (!positive(T))
        return fail(err, errlen, AN_EINVAL, "%s %zu: T = %g must be a positive number of weeks",
                    what, i, T);
    if (!isfinite(t_x) || t_x < 0.0 || t_x > T)
        return fail(err, errlen, AN_EINVAL, "%s %zu: t_x = %g must lie in [0, T = %g]", what, i,
                    t_x, T);
    return 0;
}

static int check_rows(const an_row_t *rows, size_t n, int spend, char *err, size_t errlen)
{
    if (!rows || n == 0)
        return fail(err, errlen, AN_EINVAL, "no rows: a likelihood needs at least one customer");
    for (size_t i = 0; i < n; i++) {
        int rc = check_customer(rows[i].x, rows[i].t_x, rows[i].T, "row", i, err, errlen);
        if (rc < 0)
            return rc;
        if (rows[i].weight < 1)
            return fail(err, errlen, AN_EINVAL, "row %zu: weight = %lld must be at least 1", i,
                        (long long)rows[i].weight);
        if (spend && rows[i].x >= 1 && !positive(rows[i].m_x))
            return fail(err, errlen, AN_EINVAL,
                        "row %zu: m_x = %g must be a positive mean spend when x = %lld", i,
                        rows[i].m_x, (long long)rows[i].x);
    }
    return 0;
}

static int check_params(const char *model, const char *const names[], const double *v, int k,
                        char *err, size_t errlen)
{
    for (int j = 0; j < k; j++)
        if (!positive(v[j]))
            return fail(err, errlen, AN_EINVAL, "%s parameter %s = %g must be positive and finite",
                        model, names[j], v[j]);
    return 0;
}

static const char *const BG_NAMES[] = {"r", "alpha", "a", "b"};
static const char *const PN_NAMES[] = {"r", "alpha", "s", "beta"};
static const char *const GG_NAMES[] = {"p", "q", "gamma"};

static int check_bgnbd(const an_bgnbd_params_t *p, char *err, size_t errlen)
{
    if (!p)
        return fail(err, errlen, AN_EINVAL, "BG/NBD parameters are NULL");
    double v[4] = {p->r, p->alpha, p->a, p->b};
    return check_params("BG/NBD", BG_NAMES, v, 4, err, errlen);
}

static int check_pnbd(const an_pnbd_params_t *p, char *err, size_t errlen)
{
    if (!p)
        return fail(err, errlen, AN_EINVAL, "Pareto/NBD parameters are NULL");
    double v[4] = {p->r, p->alpha, p->s, p->beta};
    return check_params("Pareto/NBD", PN_NAMES, v, 4, err, errlen);
}

static int check_gg(const an_gg_params_t *p, char *err, size_t errlen)
{
    if (!p)
        return fail(err, errlen, AN_EINVAL, "Gamma-Gamma parameters are NULL");
    double v[3] = {p->p, p->q, p->gamma};
    return check_params("Gamma-Gamma", GG_NAMES, v, 3, err, errlen);
}

/* ---- compression ---- */

static int cmp_double(double a, double b)
{
    return (a > b) - (a < b);
}

static int cmp_row(const void *pa, const void *pb)
{
    const an_row_t *a = pa, *b = pb;
    if (a->x != b->x)
        return a->x < b->x ? -1 : 1;
    int c = cmp_double(a->t_x, b->t_x);
    if (c)
        return c;
    c = cmp_double(a->T, b->T);
    return c ? c : cmp_double(a->m_x, b->m_x);
}

int an_compress(const an_customer_t *in, size_t n, int with_spend, an_row_t *out, size_t *n_out,
                char *err, size_t errlen)
{
    if ((!in && n) || !out || !n_out)
        return fail(err, errlen, AN_EINVAL, "an_compress: in, out and n_out must not be NULL");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const an_customer_t *c = &in[i];
        int rc = check_customer(c->x, c->t_x, c->T, "customer", i, err, errlen);
        if (rc < 0)
            return rc;
        if (with_spend) {
            if (c->x == 0)
                continue;
            if (!positive(c->m_x))
                return fail(err, errlen, AN_EINVAL,
                            "customer %zu: m_x = %g must be a positive mean spend when x = %lld",
                            i, c->m_x, (long long)c->x);
        }
        out[k++] = (an_row_t){c->x, c->t_x, c->T, with_spend ? c->m_x : 0.0, 1};
    }
    qsort(out, k, sizeof *out, cmp_row);
    size_t u = 0;
    for (size_t i = 0; i < k; i++) {
        if (u > 0 && cmp_row(&out[u - 1], &out[i]) == 0)
            out[u - 1].weight++;
        else
            out[u++] = out[i];
    }
    *n_out = u;
    return 0;
}

/* ---- BG/NBD ---- */

/*
 * The BG/NBD log-likelihood of valid rows at valid parameters. Terms that depend only on x
 * (lgamma and digamma differences) are recomputed only when x changes, which on sorted,
 * compressed rows is once per distinct x. Returns the weighted total; grad (d/d ln theta) and
 * row_ll are optional.
 */
static double bgnbd_ll_core(const an_bgnbd_params_t *p, const an_row_t *rows, size_t n,
                            double *grad, double *row_ll)
{
    const double r = p->r, al = p->alpha, a = p->a, b = p->b;
    const double r_log_al = r * log(al);
    const double lg_r = an_lgamma(r), lg_b = an_lgamma(b), lg_ab = an_lgamma(a + b);
    const double ps_r = grad ? an_digamma(r) : 0, ps_b = grad ? an_digamma(b) : 0;
    const double ps_ab = grad ? an_digamma(a + b) : 0, log_al = log(al);
    double total = 0.0, gr = 0.0, gal = 0.0, ga = 0.0, gb = 0.0;
    int64_t cur_x = -1;
    double lg_x = 0, dr0 = 0, da0 = 0, db0 = 0, log_ratio = 0;
    for (size_t i = 0; i < n; i++) {
        const an_row_t *row = &rows[i];
        const int64_t x = row->x;
        const double xd = (double)x;
        if (x != cur_x) {
            cur_x = x;
            lg_x = an_lgamma(r + xd) - lg_r + lg_ab + an_lgamma(b + xd) - lg_b -
                   an_lgamma(a + b + xd);
            log_ratio = x > 0 ? log(a / (b + xd - 1.0)) : 0.0;
            if (grad) {
                double ps_abx = an_digamma(a + b + xd);
                dr0 = an_digamma(r + xd) - ps_r;
                da0 = ps_ab - ps_abx;
                db0 = ps_ab + an_digamma(b + xd) - ps_b - ps_abx;
            }
        }
        const double lT = log(al + row->T);
        double ll = lg_x + r_log_al - (r + xd) * lT, sig = 0.0, lt = lT;
        if (x > 0) {
            /* ln L = ln(first term) + ln(1 + e^u), u = ln(second term / first term). */
            lt = log(al + row->t_x);
            double u = log_ratio + (r + xd) * (lT - lt);
            ll += softplus(u);
            sig = 1.0 / (1.0 + exp(-u));
        }
        if (row_ll)
            row_ll[i] = ll;
        const double w = (double)row->weight;
        total += w * ll;
        if (grad) {
            gr += w * (dr0 + log_al - lT + sig * (lT - lt));
            gal += w * (r / al - (r + xd) / (al + row->T) +
                        (x > 0 ? sig * (r + xd) * (1.0 / (al + row->T) - 1.0 / (al + row->t_x))
                               : 0.0));
            ga += w * (da0 + (x > 0 ? sig / a : 0.0));
            gb += w * (db0 - (x > 0 ? sig / (b + xd - 1.0) : 0.0));
        }
    }
    if (grad) {
        grad[0] = gr * r;
        grad[1] = gal * al;
        grad[2] = ga * a;
        grad[3] = gb * b;
    }
    return total;
}

int an_bgnbd_ll(const an_bgnbd_params_t *p, const an_row_t *rows, size_t n, double *ll,
                double grad_log[4], double *row_ll, char *err, size_t errlen)
{
    int rc = check_bgnbd(p, err, errlen);
    if (rc == 0)
        rc = check_rows(rows, n, 0, err, errlen);
    if (rc < 0)
        return rc;
    if (!ll)
        return fail(err, errlen, AN_EINVAL, "an_bgnbd_ll: ll must not be NULL");
    *ll = bgnbd_ll_core(p, rows, n, grad_log, row_ll);
    return 0;
}

int an_bgnbd_palive(const an_bgnbd_params_t *p, int64_t x, double t_x, double T, double *out,
                    char *err, size_t errlen)
{
    int rc = check_bgnbd(p, err, errlen);
    if (rc == 0)
        rc = check_customer(x, t_x, T, "customer", 0, err, errlen);
    if (rc < 0)
        return rc;
    if (x == 0) {
        *out = 1.0;
        return 0;
    }
    double xd = (double)x;
    double u = log(p->a / (p->b + xd - 1.0)) + (p->r + xd) * log((p->alpha + T) / (p->alpha + t_x));
    *out = 1.0 / (1.0 + exp(u));
    return 0;
}

int an_bgnbd_expected(const an_bgnbd_params_t *p, double t, double *out, char *err,
                      size_t errlen)
{
    int rc = check_bgnbd(p, err, errlen);
    if (rc < 0)
        return rc;
    if (!isfinite(t) || t < 0.0)
        return fail(err, errlen, AN_EINVAL, "BG/NBD expectation: t = %g must be >= 0", t);
    if (p->a == 1.0)
        return fail(err, errlen, AN_EINVAL,
                    "BG/NBD expectation: a = 1 makes the closed form 0/0; use a != 1");
    double lf;
    rc = an_hyp2f1_log(p->r, p->b, p->a + p->b - 1.0, t / (p->alpha + t), &lf, err, errlen);
    if (rc < 0)
        return rc;
    double l = p->r * log(p->alpha / (p->alpha + t)) + lf;
    *out = (p->a + p->b - 1.0) / (p->a - 1.0) * -expm1(l);
    return 0;
}

int an_bgnbd_conditional(const an_bgnbd_params_t *p, int64_t x, double t_x, double T,
                         double t, double *out, char *err, size_t errlen)
{
    double palive;
    int rc = an_bgnbd_palive(p, x, t_x, T, &palive, err, errlen);
    if (rc < 0)
        return rc;
    if (!isfinite(t) || t < 0.0)
        return fail(err, errlen, AN_EINVAL, "BG/NBD conditional expectation: t = %g must be >= 0",
                    t);
    if (p->a == 1.0)
        return fail(err, errlen, AN_EINVAL,
                    "BG/NBD conditional expectation: a = 1 makes the closed form 0/0");
    const double xd = (double)x, aT = p->alpha + T, c = p->a + p->b + xd - 1.0;
    double lf;
    rc = an_hyp2f1_log(p->r + xd, p->b + xd, c, t / (aT + t), &lf, err, errlen);
    if (rc < 0)
        return rc;
    /* FHL eq. 10: the bracket 1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1 times P(alive)
     * (P(alive) is exactly FHL's 1 / (1 + delta a/(b+x-1) ...) denominator). */
    double l = (p->r + xd) * log(aT / (aT + t)) + lf;
    *out = c / (p->a - 1.0) * -expm1(l) * palive;
    return 0;
}

/* ---- fitting ---- */

typedef struct fit_ctx {
    const an_row_t *rows;
    size_t n;
    double total_w;     /* sum of weights of the rows the likelihood counts */
    double *aux;        /* per-row precomputed terms (Gamma-Gamma), or NULL */
    int evals;          /* objective calls over all runs */
    double best_f;      /* lowest objective seen, and where */
    double best_x[4];
    int dim;
    int error;          /* first AN_E* a likelihood evaluation raised, 0 if none */
    char msg[160];
} fit_ctx_t;

static void note_eval(fit_ctx_t *ctx, const double *lx, double f)
{
    ctx->evals++;
    if (isfinite(f) && f < ctx->best_f) {
        ctx->best_f = f;
        memcpy(ctx->best_x, lx, sizeof(double) * (size_t)ctx->dim);
    }
}

static const char *reason_words(nlopt_result res)
{
    switch (res) {
    case NLOPT_FAILURE: return "NLopt failed (generic failure)";
    case NLOPT_INVALID_ARGS: return "NLopt rejected its arguments";
    case NLOPT_OUT_OF_MEMORY: return "NLopt ran out of memory";
    case NLOPT_ROUNDOFF_LIMITED: return "roundoff errors stopped progress before the tolerances";
    case NLOPT_FORCED_STOP: return "the objective stopped the optimiser (non-finite likelihood)";
    case NLOPT_MAXEVAL_REACHED: return "hit the cap of objective evaluations before converging";
    case NLOPT_MAXTIME_REACHED: return "hit the time cap before converging";
    default: return "NLopt stopped for an unknown reason";
    }
}

/*
 * Runs algs[0] from lx, then algs[1] from the best point seen when algs[0] failed or when
 * @p always_second is set (a restart rebuilds BOBYQA's quadratic model, which on the flat
 * Pareto/NBD ridge moves the optimum by more than the first run's tolerance). Fills the
 * optimiser fields of @p out and leaves the best log-parameters in ctx->best_x.
 */
static void optimise(fit_ctx_t *ctx, nlopt_func f, double *lx, const nlopt_algorithm algs[2],
                     int always_second, an_fit_t *out)
{
    double lb[4], ub[4];
    for (int j = 0; j < ctx->dim; j++) {
        lb[j] = -LOG_BOUND;
        ub[j] = LOG_BOUND;
    }
    nlopt_result res = NLOPT_FAILURE;
    out->method[0] = '\0';
    for (int run = 0; run < 2; run++) {
        if (run == 1) {
            if (!(res < 0 || always_second) || algs[1] == NLOPT_NUM_ALGORITHMS)
                break;
            if (isfinite(ctx->best_f))
                memcpy(lx, ctx->best_x, sizeof(double) * (size_t)ctx->dim);
        }
        nlopt_opt o = nlopt_create(algs[run], (unsigned)ctx->dim);
        if (!o) {
            res = NLOPT_OUT_OF_MEMORY;
            break;
        }
        nlopt_set_min_objective(o, f, ctx);
        nlopt_set_lower_bounds(o, lb);
        nlopt_set_upper_bounds(o, ub);
        nlopt_set_ftol_rel(o, 1e-14);
        nlopt_set_xtol_rel(o, 1e-10);
        nlopt_set_maxeval(o, MAX_EVALS);
        if (algs[run] == NLOPT_LN_BOBYQA || algs[run] == NLOPT_LN_SBPLX) {
            double step[4] = {0.5, 0.5, 0.5, 0.5};
            nlopt_set_initial_step(o, step);
        }
        double fval;
        res = nlopt_optimize(o, lx, &fval);
        nlopt_destroy(o);
        size_t len = strlen(out->method);
        snprintf(out->method + len, sizeof out->method - len, "%s%s", len ? "+" : "",
                 nlopt_algorithm_to_string(algs[run]));
    }
    out->iterations = ctx->evals;
    out->converged = res > 0;
    snprintf(out->reason, sizeof out->reason, "%s", res > 0 ? "" : reason_words(res));
}

static int finish_fit(fit_ctx_t *ctx, an_fit_t *out, char *err, size_t errlen)
{
    if (!isfinite(ctx->best_f)) {
        if (ctx->error)
            return fail(err, errlen, AN_EFIT, "no finite fit: %s", ctx->msg);
        return fail(err, errlen, AN_EFIT, "no finite fit: every likelihood evaluated was %s",
                    "non-finite");
    }
    out->ll = -ctx->best_f * ctx->total_w;
    return 0;
}

static double total_weight(const an_row_t *rows, size_t n, int spend_only)
{
    double w = 0.0;
    for (size_t i = 0; i < n; i++)
        if (!spend_only || rows[i].x >= 1)
            w += (double)rows[i].weight;
    return w;
}

static double mean_T(const an_row_t *rows, size_t n, double total_w)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)rows[i].weight * rows[i].T;
    return s / total_w;
}

static double bgnbd_objective(unsigned dim, const double *lx, double *grad, void *data)
{
    fit_ctx_t *ctx = data;
    (void)dim;
    an_bgnbd_params_t p = {exp(lx[0]), exp(lx[1]), exp(lx[2]), exp(lx[3])};
    double g[4];
    double ll = bgnbd_ll_core(&p, ctx->rows, ctx->n, grad ? g : NULL, NULL);
    double f = isfinite(ll) ? -ll / ctx->total_w : HUGE_VAL;
    if (grad)
        for (int j = 0; j < 4; j++)
            grad[j] = isfinite(f) ? -g[j] / ctx->total_w : 0.0;
    note_eval(ctx, lx, f);
    return f;
}

int an_bgnbd_fit(const an_row_t *rows, size_t n, an_fit_t *out, char *err, size_t errlen)
{
    int rc = check_rows(rows, n, 0, err, errlen);
    if (rc < 0)
        return rc;
    if (!out)
        return fail(err, errlen, AN_EINVAL, "an_bgnbd_fit: out must not be NULL");
    memset(out, 0, sizeof *out);
    fit_ctx_t ctx = {.rows = rows, .n = n, .total_w = total_weight(rows, n, 0), .dim = 4,
                     .best_f = INFINITY};
    /* BTYD's start (1, 3, 1, 3) with alpha scaled to the data's time unit (CDNOW: T ~ 32). */
    double lx[4] = {0.0, log(mean_T(rows, n, ctx.total_w) / 10.0), 0.0, log(3.0)};
    const nlopt_algorithm algs[2] = {NLOPT_LD_LBFGS, NLOPT_LN_BOBYQA};
    optimise(&ctx, bgnbd_objective, lx, algs, 0, out);
    rc = finish_fit(&ctx, out, err, errlen);
    if (rc < 0)
        return rc;
    out->model = AN_MODEL_BGNBD;
    out->p.bgnbd = (an_bgnbd_params_t){exp(ctx.best_x[0]), exp(ctx.best_x[1]),
                                       exp(ctx.best_x[2]), exp(ctx.best_x[3])};
    out->n_customers = (int64_t)ctx.total_w;
    return 0;
}

/* ---- Pareto/NBD ---- */

/*
 * ln I, I = int_{t_x}^{T} (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau, the integral behind
 * Fader & Hardie's A0 (A0 = (r+s+x) I).
 *
 * The stable form chosen: let M = max(alpha, beta), d = |alpha - beta|, and e the exponent
 * of the factor with the smaller parameter (s+1 when alpha >= beta, r+x otherwise). Writing
 * that factor as (M+tau)^-e (1 - d/(M+tau))^-e and expanding the binomial gives, with
 * m = r+s+x, u = M+t_x, v = M+T, z = d/u < 1, rho = u/v:
 *
 *     I = u^-m  sum_k  (e)_k / k!  z^k  (1 - rho^(m+k)) / (m+k).
 *
 * This is the same series as F1/u^m - F2/v^m with F = 2F1(m, e; m+1; .), but taken term by
 * term, so every term is positive: the difference u^-(m+k) - v^-(m+k) is formed inside each
 * term as u^-(m+k) (1 - rho^(m+k)), and 1 - rho^(m+k) is built by the positive recurrence
 * d_{k+1} = d_k + rho^(m+k) (1 - rho) from d_0 = -expm1(m log1p(-(1 - rho))). There is no
 * subtraction of two nearly equal sums (the cancellation BTYD and CLVTools discuss when
 * t_x -> T or x is large), nothing is exponentiated before the final log, and the partial sums
 * are rescaled when they grow, so x in the thousands neither over- nor underflows. The same
 * expansion serves alpha >= beta and alpha < beta; alpha = beta leaves the k = 0 term only.
 */
static int pnbd_log_integral(const an_pnbd_params_t *p, double xd, double t_x, double T,
                             double *out, char *err, size_t errlen)
{
    if (t_x >= T) {
        *out = -INFINITY;
        return 0;
    }
    const double m = p->r + p->s + xd;
    double M, d, e;
    if (p->alpha >= p->beta) {
        M = p->alpha;
        d = p->alpha - p->beta;
        e = p->s + 1.0;
    } else {
        M = p->beta;
        d = p->beta - p->alpha;
        e = p->r + xd;
    }
    const double u = M + t_x, v = M + T, z = d / u, delta = (T - t_x) / v;
    const double big = 0x1p900, shrink = 0x1p-900, log_big = 900.0 * M_LN2;
    double coef = 1.0, g = exp(m * log1p(-delta)), dk = -expm1(m * log1p(-delta));
    double sum = 0.0, scale_log = 0.0;
    for (long k = 0; k < PNBD_MAX_TERMS; k++) {
        sum += coef * dk / (m + k);
        if (sum > big) {
            sum *= shrink;
            coef *= shrink;
            scale_log += log_big;
        }
        double ratio = (e + k) / (k + 1.0) * z;
        /* Later terms are at most coef_j / (m+k) and the coefficients' ratios are bounded by
         * max(ratio, z) < 1, so this bounds the rest of the series. */
        double bound = fmax(ratio, z);
        if (z == 0.0 || (bound < 1.0 && coef * bound / (1.0 - bound) / (m + k) <= 1e-17 * sum))
            goto done;
        coef *= ratio;
        dk += g * delta;
        g *= 1.0 - delta;
    }
    return fail(err, errlen, AN_ELIMIT,
                "Pareto/NBD integral for x = %g, t_x = %g, T = %g did not converge within %d "
                "terms (alpha = %g, beta = %g too far apart)",
                xd, t_x, T, PNBD_MAX_TERMS, p->alpha, p->beta);
done:
    *out = -m * log(u) + log(sum) + scale_log;
    return 0;
}

/* One row's log-likelihood: ln of the "alive at T" term plus the "died in (t_x, T]" term. */
static int pnbd_row(const an_pnbd_params_t *p, double lg_r, const an_row_t *row, double *ll,
                    char *err, size_t errlen)
{
    const double xd = (double)row->x;
    double li;
    int rc = pnbd_log_integral(p, xd, row->t_x, row->T, &li, err, errlen);
    if (rc < 0)
        return rc;
    double alive = -(p->r + xd) * log(p->alpha + row->T) - p->s * log(p->beta + row->T);
    double dead = log(p->s) + li;
    *ll = an_lgamma(p->r + xd) - lg_r + p->r * log(p->alpha) + p->s * log(p->beta) +
          log_add(alive, dead);
    return 0;
}

/* One share of the rows, summed by one thread. */
typedef struct {
    const an_pnbd_params_t *p;
    double lg_r;
    const an_row_t *rows;
    size_t lo, hi;
    double *row_ll;
    double total;
    int rc;
    char err[256];
} pnbd_share_t;

static void *pnbd_share(void *arg)
{
    pnbd_share_t *sh = arg;
    for (size_t i = sh->lo; i < sh->hi; i++) {
        double l;
        int rc = pnbd_row(sh->p, sh->lg_r, &sh->rows[i], &l, sh->err, sizeof sh->err);
        if (rc < 0) {
            sh->rc = rc;
            break;
        }
        if (sh->row_ll)
            sh->row_ll[i] = l;
        sh->total += (double)sh->rows[i].weight * l;
    }
    return NULL;
}

#define PNBD_MAX_THREADS 8
#define PNBD_ROWS_PER_THREAD 8192

static int pnbd_ll_core(const an_pnbd_params_t *p, const an_row_t *rows, size_t n, double *ll,
                        double *row_ll, char *err, size_t errlen)
{
    /* Each row's series is independent and costs microseconds: with many rows they are shared
     * among the cores, each thread a contiguous share, summed in share order (so a result
     * does not depend on which thread finished first). */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t k = n / PNBD_ROWS_PER_THREAD;
    if (k > (size_t)(cpus > 0 ? cpus : 1))
        k = (size_t)(cpus > 0 ? cpus : 1);
    if (k > PNBD_MAX_THREADS)
        k = PNBD_MAX_THREADS;
    if (k < 1)
        k = 1;
    pnbd_share_t sh[PNBD_MAX_THREADS];
    pthread_t th[PNBD_MAX_THREADS];
    bool started[PNBD_MAX_THREADS] = {false};
    const double lg_r = an_lgamma(p->r);
    for (size_t t = 0; t < k; t++) {
        sh[t] = (pnbd_share_t){.p = p, .lg_r = lg_r, .rows = rows, .lo = n * t / k,
                               .hi = n * (t + 1) / k, .row_ll = row_ll};
        /* The first share is ours; a thread that cannot start leaves its share to us too. */
        started[t] = t > 0 && pthread_create(&th[t], NULL, pnbd_share, &sh[t]) == 0;
    }
    pnbd_share(&sh[0]);
    double total = 0.0;
    int rc = 0;
    for (size_t t = 0; t < k; t++) {
        if (started[t])
            pthread_join(th[t], NULL);
        else if (t > 0)
            pnbd_share(&sh[t]);
        if (sh[t].rc < 0 && !rc) {
            rc = sh[t].rc;
            if (err && errlen)
                snprintf(err, errlen, "%s", sh[t].err);
        }
        total += sh[t].total;
    }
    if (rc)
        return rc;
    *ll = total;
    return 0;
}

int an_pnbd_ll(const an_pnbd_params_t *p, const an_row_t *rows, size_t n, double *ll,
               double *row_ll, char *err, size_t errlen)
{
    int rc = check_pnbd(p, err, errlen);
    if (rc == 0)
        rc = check_rows(rows, n, 0, err, errlen);
    if (rc < 0)
        return rc;
    if (!ll)
        return fail(err, errlen, AN_EINVAL, "an_pnbd_ll: ll must not be NULL");
    return pnbd_ll_core(p, rows, n, ll, row_ll, err, errlen);
}

static double pnbd_objective(unsigned dim, const double *lx, double *grad, void *data)
{
    fit_ctx_t *ctx = data;
    (void)dim;
    (void)grad;
    an_pnbd_params_t p = {exp(lx[0]), exp(lx[1]), exp(lx[2]), exp(lx[3])};
    double ll;
    double f = HUGE_VAL;
    int rc = pnbd_ll_core(&p, ctx->rows, ctx->n, &ll, NULL, ctx->msg, sizeof ctx->msg);
    if (rc < 0 && !ctx->error)
        ctx->error = rc;
    if (rc == 0 && isfinite(ll))
        f = -ll / ctx->total_w;
    note_eval(ctx, lx, f);
    return f;
}

int an_pnbd_fit(const an_row_t *rows, size_t n, an_fit_t *out, char *err, size_t errlen)
{
    int rc = check_rows(rows, n, 0, err, errlen);
    if (rc < 0)
        return rc;
    if (!out)
        return fail(err, errlen, AN_EINVAL, "an_pnbd_fit: out must not be NULL");
    memset(out, 0, sizeof *out);
    fit_ctx_t ctx = {.rows = rows, .n = n, .total_w = total_weight(rows, n, 0), .dim = 4,
                     .best_f = INFINITY};
    double lt = log(mean_T(rows, n, ctx.total_w) / 3.0);
    double lx[4] = {0.0, lt, 0.0, lt};
    const nlopt_algorithm algs[2] = {NLOPT_LN_BOBYQA, NLOPT_LN_BOBYQA};
    optimise(&ctx, pnbd_objective, lx, algs, 1, out);
    if (!out->converged) {
        const nlopt_algorithm again[2] = {NLOPT_LN_SBPLX, NLOPT_NUM_ALGORITHMS};
        char used[sizeof out->method];
        snprintf(used, sizeof used, "%s", out->method);
        memcpy(lx, ctx.best_x, sizeof lx);
        optimise(&ctx, pnbd_objective, lx, again, 0, out);
        char both[sizeof out->method];
        snprintf(both, sizeof both, "%.20s+%.20s", used, out->method);
        snprintf(out->method, sizeof out->method, "%s", both);
    }
    rc = finish_fit(&ctx, out, err, errlen);
    if (rc < 0)
        return rc;
    out->model = AN_MODEL_PNBD;
    out->p.pnbd = (an_pnbd_params_t){exp(ctx.best_x[0]), exp(ctx.best_x[1]), exp(ctx.best_x[2]),
                                     exp(ctx.best_x[3])};
    out->n_customers = (int64_t)ctx.total_w;
    return 0;
}

int an_pnbd_palive(const an_pnbd_params_t *p, int64_t x, double t_x, double T, double *out,
                   char *err, size_t errlen)
{
    int rc = check_pnbd(p, err, errlen);
    if (rc == 0)
        rc = check_customer(x, t_x, T, "customer", 0, err, errlen);
    if (rc < 0)
        return rc;
    double xd = (double)x, li;
    rc = pnbd_log_integral(p, xd, t_x, T, &li, err, errlen);
    if (rc < 0)
        return rc;
    double u = log(p->s) + (p->r + xd) * log(p->alpha + T) + p->s * log(p->beta + T) + li;
    *out = 1.0 / (1.0 + exp(u));
    return 0;
}

/* [1 - (c/(c+t))^k] / k, with the k -> 0 limit ln(1 + t/c) taken without cancellation. */
static double one_minus_pow_over(double c, double t, double k)
{
    double l = log1p(t / c);
    if (fabs(k) < 1e-10)
        return l;
    return -expm1(-k * l) / k;
}

int an_pnbd_expected(const an_pnbd_params_t *p, double t, double *out, char *err, size_t errlen)
{
    int rc = check_pnbd(p, err, errlen);
    if (rc < 0)
        return rc;
    if (!isfinite(t) || t < 0.0)
        return fail(err, errlen, AN_EINVAL, "Pareto/NBD expectation: t = %g must be >= 0", t);
    *out = p->r * p->beta / p->alpha * one_minus_pow_over(p->beta, t, p->s - 1.0);
    return 0;
}

int an_pnbd_conditional(const an_pnbd_params_t *p, int64_t x, double t_x, double T, double t,
                        double *out, char *err, size_t errlen)
{
    double palive;
    int rc = an_pnbd_palive(p, x, t_x, T, &palive, err, errlen);
    if (rc < 0)
        return rc;
    if (!isfinite(t) || t < 0.0)
        return fail(err, errlen, AN_EINVAL,
                    "Pareto/NBD conditional expectation: t = %g must be >= 0", t);
    double xd = (double)x;
    *out = (p->r + xd) * (p->beta + T) / (p->alpha + T) *
           one_minus_pow_over(p->beta + T, t, p->s - 1.0) * palive;
    return 0;
}

/* ---- Gamma-Gamma ---- */

/* aux layout per row: ln m_x, ln x. */
static double gg_ll_core(const an_gg_params_t *p, const an_row_t *rows, size_t n,
                         const double *aux, double *grad)
{
    const double pp = p->p, q = p->q, g = p->gamma;
    const double lg_q = an_lgamma(q), q_log_g = q * log(g), log_g = log(g);
    const double ps_q = grad ? an_digamma(q) : 0.0;
    double total = 0.0, gp = 0.0, gq = 0.0, gg = 0.0;
    for (size_t i = 0; i < n; i++) {
        const an_row_t *row = &rows[i];
        if (row->x < 1)
            continue;
        const double xd = (double)row->x, px = pp * xd, w = (double)row->weight;
        const double lm = aux ? aux[2 * i] : log(row->m_x);
        const double lxx = aux ? aux[2 * i + 1] : log(xd);
        const double den = g + row->m_x * xd, lden = log(den);
        total += w * (an_lgamma(px + q) - an_lgamma(px) - lg_q + q_log_g + (px - 1.0) * lm +
                      px * lxx - (px + q) * lden);
        if (grad) {
            double ps_pxq = an_digamma(px + q);
            gp += w * xd * (ps_pxq - an_digamma(px) + lm + lxx - lden);
            gq += w * (ps_pxq - ps_q + log_g - lden);
            gg += w * (q / g - (px + q) / den);
        }
    }
    if (grad) {
        grad[0] = gp * pp;
        grad[1] = gq * q;
        grad[2] = gg * g;
    }
    return total;
}

int an_gg_ll(const an_gg_params_t *p, const an_row_t *rows, size_t n, double *ll,
             double grad_log[3], char *err, size_t errlen)
{
    int rc = check_gg(p, err, errlen);
    if (rc == 0)
        rc = check_rows(rows, n, 1, err, errlen);
    if (rc < 0)
        return rc;
    if (!ll)
        return fail(err, errlen, AN_EINVAL, "an_gg_ll: ll must not be NULL");
    *ll = gg_ll_core(p, rows, n, NULL, grad_log);
    return 0;
}

static double gg_objective(unsigned dim, const double *lx, double *grad, void *data)
{
    fit_ctx_t *ctx = data;
    (void)dim;
    an_gg_params_t p = {exp(lx[0]), exp(lx[1]), exp(lx[2])};
    double g[3];
    double ll = gg_ll_core(&p, ctx->rows, ctx->n, ctx->aux, grad ? g : NULL);
    double f = isfinite(ll) ? -ll / ctx->total_w : HUGE_VAL;
    if (grad)
        for (int j = 0; j < 3; j++)
            grad[j] = isfinite(f) ? -g[j] / ctx->total_w : 0.0;
    note_eval(ctx, lx, f);
    return f;
}

int an_gg_fit(const an_row_t *rows, size_t n, an_fit_t *out, char *err, size_t errlen)
{
    int rc = check_rows(rows, n, 1, err, errlen);
    if (rc < 0)
        return rc;
    if (!out)
        return fail(err, errlen, AN_EINVAL, "an_gg_fit: out must not be NULL");
    memset(out, 0, sizeof *out);
    fit_ctx_t ctx = {.rows = rows, .n = n, .total_w = total_weight(rows, n, 1), .dim = 3,
                     .best_f = INFINITY};
    if (ctx.total_w == 0.0)
        return fail(err, errlen, AN_EINVAL,
                    "Gamma-Gamma fit: no row has x >= 1, so there is no spend to fit");
    /* ln m_x and ln x do not depend on the parameters: computed once, not per evaluation. */
    ctx.aux = malloc(sizeof(double) * 2 * n);
    if (!ctx.aux)
        return fail(err, errlen, AN_ENOMEM, "Gamma-Gamma fit: no memory for %zu rows", n);
    double mean_m = 0.0;
    for (size_t i = 0; i < n; i++) {
        int has = rows[i].x >= 1;
        ctx.aux[2 * i] = has ? log(rows[i].m_x) : 0.0;
        ctx.aux[2 * i + 1] = has ? log((double)rows[i].x) : 0.0;
        if (has)
            mean_m += (double)rows[i].weight * rows[i].m_x;
    }
    mean_m /= ctx.total_w;
    /* Start at p = 1, q = 2 and gamma making the population mean p gamma/(q-1) the data's. */
    double lx[3] = {0.0, log(2.0), log(mean_m)};
    const nlopt_algorithm algs[2] = {NLOPT_LD_LBFGS, NLOPT_LN_BOBYQA};
    optimise(&ctx, gg_objective, lx, algs, 0, out);
    free(ctx.aux);
    rc = finish_fit(&ctx, out, err, errlen);
    if (rc < 0)
        return rc;
    out->model = AN_MODEL_GG;
    out->p.gg = (an_gg_params_t){exp(ctx.best_x[0]), exp(ctx.best_x[1]), exp(ctx.best_x[2])};
    out->n_customers = (int64_t)ctx.total_w;
    return 0;
}

int an_gg_expected_spend(const an_gg_params_t *p, int64_t x, double m_x, double *out, char *err,
                         size_t errlen)
{
    int rc = check_gg(p, err, errlen);
    if (rc < 0)
        return rc;
    if (p->q <= 1.0)
        return fail(err, errlen, AN_EINVAL,
                    "Gamma-Gamma q = %g: the mean spend exists only for q > 1", p->q);
    if (x < 0 || !isfinite(m_x) || m_x < 0.0)
        return fail(err, errlen, AN_EINVAL,
                    "Gamma-Gamma expected spend: x = %lld and m_x = %g must be >= 0",
                    (long long)x, m_x);
    double px = p->p * (double)x, den = px + p->q - 1.0;
    *out = (p->q - 1.0) / den * (p->p * p->gamma / (p->q - 1.0)) + px / den * m_x;
    return 0;
}

/* ---- value ---- */

static int conditional(const an_fit_t *fit, int64_t x, double t_x, double T, double t,
                       double *out, char *err, size_t errlen)
{
    if (fit->model == AN_MODEL_BGNBD)
        return an_bgnbd_conditional(&fit->p.bgnbd, x, t_x, T, t, out, err, errlen);
    return an_pnbd_conditional(&fit->p.pnbd, x, t_x, T, t, out, err, errlen);
}

int an_dev(const an_fit_t *fit, int64_t x, double t_x, double T, double spend, int horizon_weeks,
           double annual_rate, double *out, char *err, size_t errlen)
{
    if (!fit || (fit->model != AN_MODEL_BGNBD && fit->model != AN_MODEL_PNBD))
        return fail(err, errlen, AN_EINVAL,
                    "discounted value needs a BG/NBD or Pareto/NBD fit (model = %d)",
                    fit ? (int)fit->model : 0);
    if (horizon_weeks < 0)
        return fail(err, errlen, AN_EINVAL, "discounted value: horizon = %d weeks is negative",
                    horizon_weeks);
    if (!isfinite(annual_rate) || annual_rate <= -1.0)
        return fail(err, errlen, AN_EINVAL,
                    "discounted value: annual discount rate = %g must exceed -1", annual_rate);
    if (!isfinite(spend) || spend < 0.0)
        return fail(err, errlen, AN_EINVAL, "discounted value: spend = %g must be >= 0", spend);
    double prev = 0.0, total = 0.0, log_disc = log1p(annual_rate) / 52.0;
    for (int w = 1; w <= horizon_weeks; w++) {
        double e;
        int rc = conditional(fit, x, t_x, T, (double)w, &e, err, errlen);
        if (rc < 0)
            return rc;
        total += (e - prev) * exp(-log_disc * w);
        prev = e;
    }
    if (horizon_weeks == 0) {
        /* Still validate the customer and parameters, as a zero horizon is a real query. */
        double e;
        int rc = conditional(fit, x, t_x, T, 0.0, &e, err, errlen);
        if (rc < 0)
            return rc;
    }
    *out = spend * total;
    return 0;
}
