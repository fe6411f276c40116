/*
 * test_models.c — cmocka tests of the analytical models: special functions against Abramowitz
 * & Stegun closed forms, likelihoods against independent routes (literal product formulas,
 * numerical integration, the hypergeometric form), expectations against published numbers,
 * and fits against data simulated here from known parameters. No data file is read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../models.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char err[256];

#define ASSERT_REL(got, want, rel)                                                                 \
    do {                                                                                           \
        double g_ = (got), w_ = (want);                                                            \
        if (!(fabs(g_ - w_) <= (rel) * fabs(w_)))                                                  \
            fail_msg("%s = %.17g, want %.17g (rel %.3g, allowed %.3g)", #got, g_, w_,              \
                     fabs(g_ - w_) / fabs(w_), (double)(rel));                                     \
    } while (0)

#define ASSERT_ABS(got, want, tol)                                                                 \
    do {                                                                                           \
        double g_ = (got), w_ = (want);                                                            \
        if (!(fabs(g_ - w_) <= (tol)))                                                             \
            fail_msg("%s = %.17g, want %.17g (diff %.3g, allowed %.3g)", #got, g_, w_,             \
                     fabs(g_ - w_), (double)(tol));                                                \
    } while (0)

#define OK(call)                                                                                   \
    do {                                                                                           \
        err[0] = '\0';                                                                             \
        int rc_ = (call);                                                                          \
        if (rc_ != 0)                                                                              \
            fail_msg("%s returned %d: %s", #call, rc_, err);                                       \
    } while (0)

/* ---- independent numerical tools ---- */

typedef double (*fn_t)(double, void *);

static double simpson_rec(fn_t f, void *c, double a, double b, double fa, double fm, double fb,
                          double whole, double tol, int depth)
{
    double m = 0.5 * (a + b), lm = 0.5 * (a + m), rm = 0.5 * (m + b);
    double flm = f(lm, c), frm = f(rm, c);
    double left = (m - a) / 6 * (fa + 4 * flm + fm), right = (b - m) / 6 * (fm + 4 * frm + fb);
    double delta = left + right - whole;
    if (depth <= 0 || fabs(delta) <= 15 * tol)
        return left + right + delta / 15;
    return simpson_rec(f, c, a, m, fa, flm, fm, left, tol / 2, depth - 1) +
           simpson_rec(f, c, m, b, fm, frm, fb, right, tol / 2, depth - 1);
}

/* Adaptive Simpson quadrature of f on [a, b] to about 512 rel relative accuracy: a 512-panel composite
 * rule finds where the mass is (so a narrow peak is not missed) and sets the absolute
 * tolerance, then each panel is refined adaptively. */
static double integrate(fn_t f, void *c, double a, double b, double rel)
{
    enum { PANELS = 512 };
    double h = (b - a) / PANELS, coarse = 0;
    for (int i = 0; i < PANELS; i++) {
        double x0 = a + i * h;
        coarse += h / 6 * (f(x0, c) + 4 * f(x0 + h / 2, c) + f(x0 + h, c));
    }
    /* Per panel, not divided among panels: a tolerance below the rounding of a panel that
     * holds most of the mass would send the recursion to its depth cap everywhere. */
    double tol = rel * fabs(coarse), sum = 0;
    for (int i = 0; i < PANELS; i++) {
        double x0 = a + i * h, x1 = x0 + h, f0 = f(x0, c), f1 = f(x1, c), fm = f(x0 + h / 2, c);
        sum += simpson_rec(f, c, x0, x1, f0, fm, f1, h / 6 * (f0 + 4 * fm + f1), tol, 20);
    }
    return sum;
}

/* A deterministic generator (splitmix64) and the distributions the simulations need. */
typedef struct {
    uint64_t s;
} rng_t;

static double uniform(rng_t *g)
{
    uint64_t z = (g->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return ((z >> 11) + 0.5) * 0x1p-53;
}

static double normal(rng_t *g)
{
    return sqrt(-2 * log(uniform(g))) * cos(2 * M_PI * uniform(g));
}

/* Gamma(shape k, scale 1) by Marsaglia & Tsang; k < 1 through Gamma(k+1) U^(1/k). */
static double gamma_draw(rng_t *g, double k)
{
    if (k < 1)
        return gamma_draw(g, k + 1) * pow(uniform(g), 1 / k);
    double d = k - 1.0 / 3, c = 1 / sqrt(9 * d);
    for (;;) {
        double x = normal(g), v = 1 + c * x;
        if (v <= 0)
            continue;
        v = v * v * v;
        double u = uniform(g);
        if (log(u) < 0.5 * x * x + d - d * v + d * log(v))
            return d * v;
    }
}

static double exp_draw(rng_t *g, double rate)
{
    return -log(uniform(g)) / rate;
}

/* ---- special functions ---- */

static double f21(double a, double b, double c, double z)
{
    double v = NAN;
    OK(an_hyp2f1(a, b, c, z, &v, err, sizeof err));
    return v;
}

static void test_hyp2f1_closed_forms(void **state)
{
    (void)state;
    const double zs[] = {0.01, 0.3, 0.5, 0.9, 0.99, 0.999, 0.9999};
    for (size_t i = 0; i < sizeof zs / sizeof *zs; i++) {
        double z = zs[i];
        /* A&S 15.1.3: F(1,1;2;z) = -ln(1-z)/z, and at -z: ln(1+z)/z. */
        ASSERT_REL(f21(1, 1, 2, z), -log1p(-z) / z, 1e-13);
        ASSERT_REL(f21(1, 1, 2, -z), log1p(z) / z, 1e-13);
        /* A&S 15.1.8: F(a,b;b;z) = (1-z)^-a. */
        ASSERT_REL(f21(0.7, 2.5, 2.5, z), pow(1 - z, -0.7), 1e-13);
        ASSERT_REL(f21(3.2, 0.4, 0.4, -z), pow(1 + z, -3.2), 1e-13);
        double y = sqrt(z);
        /* A&S 15.1.4: F(1/2,1;3/2;z^2) = ln((1+z)/(1-z))/(2z); 15.1.5 at -z^2: atan(z)/z. */
        ASSERT_REL(f21(0.5, 1, 1.5, z), atanh(y) / y, 1e-13);
        ASSERT_REL(f21(0.5, 1, 1.5, -z), atan(y) / y, 1e-13);
        /* A&S 15.1.6: F(1/2,1/2;3/2;z^2) = asin(z)/z; 15.1.7 at -z^2: asinh(z)/z. */
        ASSERT_REL(f21(0.5, 0.5, 1.5, z), asin(y) / y, 1e-13);
        ASSERT_REL(f21(0.5, 0.5, 1.5, -z), asinh(y) / y, 1e-13);
    }
    /* Far out on the negative axis (Pfaff maps z = -99 to 0.99). */
    ASSERT_REL(f21(1, 1, 2, -99), log(100) / 99, 1e-13);
    ASSERT_REL(f21(0.5, 0.5, 1.5, -1e4), asinh(100) / 100, 1e-13);
    /* A&S 15.1.1 with a = -2: the series ends, F = 1 - 2bz/c + b(b+1)z^2/(c(c+1)). */
    ASSERT_REL(f21(-2, 1.5, 2.5, 0.7), 1 - 2 * 1.5 * 0.7 / 2.5 + 1.5 * 2.5 * 0.49 / (2.5 * 3.5),
               1e-14);
    ASSERT_REL(f21(0.3, 0.9, 1.1, 0.0), 1.0, 0);
}

static void test_hyp2f1_log_and_domain(void **state)
{
    (void)state;
    double l;
    /* (1-z)^-a with a = 1000 is 1e1000: only its log is a double. */
    OK(an_hyp2f1_log(1000, 2, 2, 0.9, &l, err, sizeof err));
    ASSERT_REL(l, 1000 * log(10.0), 1e-12);
    OK(an_hyp2f1_log(1, 1, 2, 0.999, &l, err, sizeof err));
    ASSERT_REL(l, log(-log1p(-0.999) / 0.999), 1e-13);
    double v;
    assert_int_equal(an_hyp2f1(1, 1, 2, 1.0, &v, err, sizeof err), AN_EINVAL);
    assert_non_null(strstr(err, "z must be below 1"));
    assert_int_equal(an_hyp2f1(1, 1, -3, 0.5, &v, err, sizeof err), AN_EINVAL);
    assert_non_null(strstr(err, "c must not be zero or a negative integer"));
    assert_int_equal(an_hyp2f1(NAN, 1, 2, 0.5, &v, err, sizeof err), AN_EINVAL);
    /* Terminating series: F(-3,b;b;z) = (1-z)^3, through Pfaff at z = -1 (gives 8); and
     * F(-3,2;1;0.9) = 1 - 5.4 + 7.29 - 2.916 = -0.026, which has no real log. */
    ASSERT_REL(f21(-3, 1, 1, -1), 8.0, 1e-14);
    OK(an_hyp2f1_log(-1, 1, 1, 0.5, &l, err, sizeof err));
    ASSERT_REL(l, log(0.5), 1e-15);
    ASSERT_REL(f21(-3, 2, 1, 0.9), -0.026, 1e-12);
    assert_int_equal(an_hyp2f1_log(-3, 2, 1, 0.9, &l, err, sizeof err), AN_EINVAL);
    assert_non_null(strstr(err, "not positive"));
}

static double lgamma_fd(double x)
{
    double h = 1e-5;
    return (an_lgamma(x + h) - an_lgamma(x - h)) / (2 * h);
}

static void test_digamma(void **state)
{
    (void)state;
    const double euler = 0.57721566490153286061;
    ASSERT_REL(an_digamma(1.0), -euler, 1e-15);
    ASSERT_REL(an_digamma(0.5), -euler - 2 * M_LN2, 1e-15);
    /* psi(0.1) (A&S table 6.3 / DLMF 5.4) and psi(10) = H_9 - gamma. */
    ASSERT_REL(an_digamma(0.1), -10.423754940411076795, 1e-15);
    double h9 = 0;
    for (int k = 1; k <= 9; k++)
        h9 += 1.0 / k;
    ASSERT_REL(an_digamma(10.0), h9 - euler, 1e-15);
    /* Reflection side, via psi(x+1) = psi(x) + 1/x. */
    ASSERT_REL(an_digamma(-0.5), -euler - 2 * M_LN2 + 2, 1e-14);
    assert_true(isnan(an_digamma(0.0)));
    assert_true(isnan(an_digamma(-3.0)));
    /* The derivative of libm's lgamma, by central differences. */
    const double xs[] = {0.03, 0.77, 3.7, 42.0, 1234.5};
    for (size_t i = 0; i < 5; i++)
        ASSERT_REL(an_digamma(xs[i]), lgamma_fd(xs[i]), 1e-7);
    ASSERT_REL(an_lgamma(0.5), 0.5 * log(M_PI), 1e-15);
}

/* ---- compression ---- */

static void test_compress(void **state)
{
    (void)state;
    const an_customer_t c[] = {
        {2, 30.43, 38.86, 22.35}, {0, 0, 38.86, 0}, {1, 1.71, 38.86, 11.77},
        {0, 0, 38.86, 0},         {2, 30.43, 38.86, 22.35}, {0, 0, 27.0, 0},
        {2, 30.43, 38.86, 50.0},  {0, 0, 38.86, 0},
    };
    const size_t n = sizeof c / sizeof *c;
    an_row_t rows[8];
    size_t k;
    OK(an_compress(c, n, 0, rows, &k, err, sizeof err));
    assert_int_equal(k, 4);
    /* Sorted by (x, t_x, T); the 38.86 zero rows merged into one of weight 3. */
    assert_int_equal(rows[0].x, 0);
    ASSERT_REL(rows[0].T, 27.0, 0);
    assert_int_equal(rows[0].weight, 1);
    ASSERT_REL(rows[1].T, 38.86, 0);
    assert_int_equal(rows[1].weight, 3);
    assert_int_equal(rows[2].x, 1);
    assert_int_equal(rows[3].x, 2);
    assert_int_equal(rows[3].weight, 3); /* spend is not part of this key */
    ASSERT_REL(rows[3].m_x, 0.0, 0);
    int64_t total = 0;
    for (size_t i = 0; i < k; i++)
        total += rows[i].weight;
    assert_int_equal(total, n);

    /* Keyed on spend: x = 0 dropped, the two spends of (2, 30.43, 38.86) kept apart. */
    OK(an_compress(c, n, 1, rows, &k, err, sizeof err));
    assert_int_equal(k, 3);
    assert_int_equal(rows[0].x, 1);
    ASSERT_REL(rows[1].m_x, 22.35, 0);
    assert_int_equal(rows[1].weight, 2);
    ASSERT_REL(rows[2].m_x, 50.0, 0);

    OK(an_compress(c, 0, 0, rows, &k, err, sizeof err));
    assert_int_equal(k, 0);

    const an_customer_t bad[] = {{1, 1, 2, 5}, {3, 40, 38.86, 1}};
    assert_int_equal(an_compress(bad, 2, 0, rows, &k, err, sizeof err), AN_EINVAL);
    assert_non_null(strstr(err, "customer 1: t_x = 40"));
    const an_customer_t nospend[] = {{2, 1, 2, 0.0}};
    assert_int_equal(an_compress(nospend, 1, 1, rows, &k, err, sizeof err), AN_EINVAL);
    assert_non_null(strstr(err, "m_x = 0"));
}

/* ---- BG/NBD ---- */

static const an_bgnbd_params_t BG_PUB = {0.243, 4.414, 0.793, 2.426}; /* FHL 2005, CDNOW */

static const an_row_t HAND_ROWS[] = {
    {0, 0.0, 38.86, 0, 3}, {1, 1.71, 38.86, 0, 1}, {2, 30.43, 38.86, 0, 2},
    {7, 29.43, 38.86, 0, 1}, {5, 27.0, 27.0, 0, 1}, {14, 5.0, 33.0, 0, 1},
};
#define N_HAND (sizeof HAND_ROWS / sizeof *HAND_ROWS)

/* FHL 2005 eq. 6 taken literally, with tgamma, Beta functions and pow. */
static double bgnbd_literal(const an_bgnbd_params_t *p, double x, double t_x, double T)
{
    double beta_ab = tgamma(p->a) * tgamma(p->b) / tgamma(p->a + p->b);
    double common = tgamma(p->r + x) * pow(p->alpha, p->r) / tgamma(p->r);
    double b1 = tgamma(p->a) * tgamma(p->b + x) / tgamma(p->a + p->b + x) / beta_ab;
    double l = b1 * common / pow(p->alpha + T, p->r + x);
    if (x > 0) {
        double b2 = tgamma(p->a + 1) * tgamma(p->b + x - 1) / tgamma(p->a + p->b + x) / beta_ab;
        l += b2 * common / pow(p->alpha + t_x, p->r + x);
    }
    return log(l);
}

static void test_bgnbd_ll_literal(void **state)
{
    (void)state;
    double ll, row_ll[N_HAND], want = 0;
    OK(an_bgnbd_ll(&BG_PUB, HAND_ROWS, N_HAND, &ll, NULL, row_ll, err, sizeof err));
    for (size_t i = 0; i < N_HAND; i++) {
        double l = bgnbd_literal(&BG_PUB, (double)HAND_ROWS[i].x, HAND_ROWS[i].t_x,
                                 HAND_ROWS[i].T);
        ASSERT_REL(row_ll[i], l, 1e-12);
        want += HAND_ROWS[i].weight * l;
    }
    ASSERT_REL(ll, want, 1e-12);
    /* Weights are multiplicities: the same rows expanded one per customer give the same LL. */
    an_row_t expanded[16];
    size_t k = 0;
    for (size_t i = 0; i < N_HAND; i++)
        for (int64_t w = 0; w < HAND_ROWS[i].weight; w++) {
            expanded[k] = HAND_ROWS[i];
            expanded[k++].weight = 1;
        }
    double ll2;
    OK(an_bgnbd_ll(&BG_PUB, expanded, k, &ll2, NULL, NULL, err, sizeof err));
    ASSERT_REL(ll2, ll, 1e-13);
    /* x = 500 underflows the literal form (alpha+T)^-(r+x) but not the log-space one. */
    an_row_t heavy = {500, 38.0, 38.86, 0, 1};
    OK(an_bgnbd_ll(&BG_PUB, &heavy, 1, &ll, NULL, NULL, err, sizeof err));
    assert_true(isfinite(ll));
    double first = lgamma(0.243 + 500) - lgamma(0.243) + 0.243 * log(4.414) +
                   lgamma(0.793 + 2.426) + lgamma(2.426 + 500) - lgamma(2.426) -
                   lgamma(0.793 + 2.426 + 500) - 500.243 * log(4.414 + 38.86);
    /* The "dropped at t_x" term dominates by (42.86/42)^500: ln L = ln first + ln(1 + ratio),
     * with ratio = a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x), from lgamma sums. */
    double ratio = log(0.793 / (2.426 + 499)) + 500.243 * log((4.414 + 38.86) / (4.414 + 38.0));
    ASSERT_REL(ll, first + ratio + log1p(exp(-ratio)), 1e-12);
}

static void test_bgnbd_gradient(void **state)
{
    (void)state;
    const an_bgnbd_params_t ps[] = {BG_PUB, {1.7, 0.3, 2.2, 0.6}};
    for (size_t t = 0; t < 2; t++) {
        double ll, g[4];
        OK(an_bgnbd_ll(&ps[t], HAND_ROWS, N_HAND, &ll, g, NULL, err, sizeof err));
        for (int j = 0; j < 4; j++) {
            double v[4] = {ps[t].r, ps[t].alpha, ps[t].a, ps[t].b}, h = 1e-6, lp, lm;
            double up[4], dn[4];
            memcpy(up, v, sizeof v);
            memcpy(dn, v, sizeof v);
            up[j] *= exp(h);
            dn[j] *= exp(-h);
            an_bgnbd_params_t pu = {up[0], up[1], up[2], up[3]}, pd = {dn[0], dn[1], dn[2], dn[3]};
            OK(an_bgnbd_ll(&pu, HAND_ROWS, N_HAND, &lp, NULL, NULL, err, sizeof err));
            OK(an_bgnbd_ll(&pd, HAND_ROWS, N_HAND, &lm, NULL, NULL, err, sizeof err));
            ASSERT_ABS(g[j], (lp - lm) / (2 * h), 1e-6 * (1 + fabs(g[j])));
        }
    }
}

static void test_bgnbd_expectations_published(void **state)
{
    (void)state;
    double v;
    /* E[X(t)] on CDNOW: Hardie's BG/NBD spreadsheet, as quoted by lifetimes'
     * test_expectation_returns_same_value_Hardie_excel_sheet (4 decimals). The sheet uses the
     * unrounded MLE, so compare at BTYD's 7-digit fit below: at the 3-digit published values
     * E[X(32)] moves by 0.0015 (measured 1.0452), the rounding alone. */
    const an_bgnbd_params_t mle = {0.2425982, 4.4136842, 0.7929899, 2.4261667};
    const double t[] = {1, 3, 32, 78}, want[] = {0.0532, 0.1506, 1.0437, 1.8576};
    for (int i = 0; i < 4; i++) {
        OK(an_bgnbd_expected(&mle, t[i], &v, err, sizeof err));
        ASSERT_ABS(v, want[i], 5e-4);
    }
    /* FHL 2005 / Hardie's spreadsheet: customer (2, 30.43, 38.86), next 39 weeks: 1.226. */
    OK(an_bgnbd_conditional(&BG_PUB, 2, 30.43, 38.86, 39, &v, err, sizeof err));
    ASSERT_ABS(v, 1.226, 6e-4);

    /* BTYD walkthrough (vignette, section 4.3), computed after its third estimation round,
     * whose parameters it prints as row 3 of p.matrix (7 digits); customer 1516 has
     * t.x = 30.85714 printed, 216/7 weeks in the data. */
    const an_bgnbd_params_t btyd = {0.2425967, 4.413659, 0.7929869, 2.426164};
    OK(an_bgnbd_expected(&btyd, 52, &v, err, sizeof err));
    ASSERT_REL(v, 1.444004, 1e-6);
    OK(an_bgnbd_conditional(&btyd, 26, 216.0 / 7, 31, 52, &v, err, sizeof err));
    ASSERT_REL(v, 25.75659, 1e-6);
    OK(an_bgnbd_palive(&btyd, 26, 216.0 / 7, 31, &v, err, sizeof err));
    ASSERT_REL(v, 0.9688523, 1e-6);
    /* The walkthrough's "increasing frequency paradox": t_x = 20, T = 39, 52 weeks ahead. */
    const int64_t xs[] = {10, 15, 20, 25};
    const double paradox[] = {0.3474606, 0.04283391, 0.004158973, 0.0003583685};
    for (int i = 0; i < 4; i++) {
        OK(an_bgnbd_conditional(&btyd, xs[i], 20, 39, 52, &v, err, sizeof err));
        ASSERT_REL(v, paradox[i], 1e-6);
    }
    OK(an_bgnbd_palive(&btyd, 0, 0, 39, &v, err, sizeof err));
    ASSERT_REL(v, 1.0, 0);
}

static size_t simulate_bgnbd(const an_bgnbd_params_t *p, size_t n, uint64_t seed, an_row_t *rows)
{
    rng_t g = {seed};
    for (size_t i = 0; i < n; i++) {
        double lambda = gamma_draw(&g, p->r) / p->alpha;
        double ga = gamma_draw(&g, p->a), gb = gamma_draw(&g, p->b), drop = ga / (ga + gb);
        double T = 27 + 12 * uniform(&g), t = 0, t_x = 0;
        int64_t x = 0;
        for (;;) {
            t += exp_draw(&g, lambda);
            if (t > T)
                break;
            x++;
            t_x = t;
            if (uniform(&g) < drop)
                break;
        }
        rows[i] = (an_row_t){x, t_x, T, 0, 1};
    }
    return n;
}

static void test_bgnbd_fit_simulated(void **state)
{
    (void)state;
    const an_bgnbd_params_t truth = {0.5, 5.0, 0.8, 2.5};
    const size_t n = 20000;
    an_row_t *rows = malloc(n * sizeof *rows);
    assert_non_null(rows);
    simulate_bgnbd(&truth, n, 42, rows);
    an_fit_t f;
    OK(an_bgnbd_fit(rows, n, &f, err, sizeof err));
    assert_int_equal(f.model, AN_MODEL_BGNBD);
    assert_true(f.converged);
    assert_int_equal(f.n_customers, (int64_t)n);
    assert_true(f.iterations > 0);
    double ll_truth, g[4], ll_fit;
    OK(an_bgnbd_ll(&truth, rows, n, &ll_truth, NULL, NULL, err, sizeof err));
    OK(an_bgnbd_ll(&f.p.bgnbd, rows, n, &ll_fit, g, NULL, err, sizeof err));
    ASSERT_REL(f.ll, ll_fit, 1e-12);
    assert_true(f.ll >= ll_truth); /* the maximum beats the truth on its own sample */
    for (int j = 0; j < 4; j++)
        ASSERT_ABS(g[j], 0.0, 1e-3); /* a stationary point of the total LL */
    /* 20,000 customers pin each parameter to within about 10%. */
    ASSERT_REL(f.p.bgnbd.r, truth.r, 0.15);
    ASSERT_REL(f.p.bgnbd.alpha, truth.alpha, 0.15);
    ASSERT_REL(f.p.bgnbd.a, truth.a, 0.2);
    ASSERT_REL(f.p.bgnbd.b, truth.b, 0.2);
    free(rows);
}

/* ---- Pareto/NBD ---- */

typedef struct {
    double r, alpha, s, beta, x, shift;
} pn_int_t;

/* The integrand of I, scaled by e^shift so that x in the hundreds stays representable. */
static double pn_integrand(double tau, void *c)
{
    const pn_int_t *q = c;
    return exp(-(q->r + q->x) * log(q->alpha + tau) - (q->s + 1) * log(q->beta + tau) + q->shift);
}

/* The Pareto/NBD row log-likelihood with I by adaptive quadrature (Fader & Hardie note 008:
 * L = G(r+x) a^r b^s / G(r) [ (a+T)^-(r+x) (b+T)^-s + s int_tx^T (a+t)^-(r+x) (b+t)^-(s+1) ]). */
static double pnbd_quadrature(const an_pnbd_params_t *p, double x, double t_x, double T)
{
    pn_int_t q = {p->r, p->alpha, p->s, p->beta, x, 0};
    q.shift = (p->r + x) * log(p->alpha + t_x) + (p->s + 1) * log(p->beta + t_x);
    double I = t_x < T ? integrate(pn_integrand, &q, t_x, T, 1e-15) : 0.0;
    double alive = exp(-(p->r + x) * log(p->alpha + T) - p->s * log(p->beta + T) + q.shift);
    return lgamma(p->r + x) - lgamma(p->r) + p->r * log(p->alpha) + p->s * log(p->beta) +
           log(alive + p->s * I) - q.shift;
}

/* The same row through BTYD's hypergeometric form (F1/(M+t_x)^m - F2/(M+T)^m). */
static double pnbd_hyp_form(const an_pnbd_params_t *p, double x, double t_x, double T)
{
    double m = p->r + p->s + x, M = fmax(p->alpha, p->beta), d = fabs(p->alpha - p->beta);
    double b2 = p->alpha >= p->beta ? p->s + 1 : p->r + x;
    double a0 = f21(m, b2, m + 1, d / (M + t_x)) / pow(M + t_x, m) -
                f21(m, b2, m + 1, d / (M + T)) / pow(M + T, m);
    double l = 1 / (pow(p->alpha + T, p->r + x) * pow(p->beta + T, p->s)) + p->s / m * a0;
    return lgamma(p->r + x) - lgamma(p->r) + p->r * log(p->alpha) + p->s * log(p->beta) + log(l);
}

static const an_pnbd_params_t PN_PUB = {0.553, 10.578, 0.606, 11.669}; /* F&H 2005, CDNOW */

static void test_pnbd_ll_routes(void **state)
{
    (void)state;
    const an_pnbd_params_t ps[] = {
        PN_PUB,                       /* alpha < beta */
        {0.553, 11.669, 0.606, 10.578}, /* alpha > beta */
        {0.8, 6.0, 1.3, 6.0},         /* alpha = beta */
        {2.0, 0.5, 0.4, 30.0},        /* far apart */
    };
    for (size_t t = 0; t < sizeof ps / sizeof *ps; t++) {
        double ll, row_ll[N_HAND], want = 0;
        OK(an_pnbd_ll(&ps[t], HAND_ROWS, N_HAND, &ll, row_ll, err, sizeof err));
        for (size_t i = 0; i < N_HAND; i++) {
            const an_row_t *r = &HAND_ROWS[i];
            double q = pnbd_quadrature(&ps[t], (double)r->x, r->t_x, r->T);
            ASSERT_REL(row_ll[i], q, 1e-10);
            ASSERT_REL(row_ll[i], pnbd_hyp_form(&ps[t], (double)r->x, r->t_x, r->T), 1e-10);
            want += r->weight * q;
        }
        ASSERT_REL(ll, want, 1e-10);
    }
    /* Continuity across alpha = beta (the series switches the factor it expands). */
    double l1, l2, l3;
    an_pnbd_params_t e1 = {0.8, 6.0, 1.3, 6.0}, e2 = {0.8, 6.0 + 1e-9, 1.3, 6.0},
                     e3 = {0.8, 6.0, 1.3, 6.0 + 1e-9};
    OK(an_pnbd_ll(&e1, HAND_ROWS, N_HAND, &l1, NULL, err, sizeof err));
    OK(an_pnbd_ll(&e2, HAND_ROWS, N_HAND, &l2, NULL, err, sizeof err));
    OK(an_pnbd_ll(&e3, HAND_ROWS, N_HAND, &l3, NULL, err, sizeof err));
    ASSERT_REL(l2, l1, 1e-8);
    ASSERT_REL(l3, l1, 1e-8);
}

static void test_pnbd_ll_stable(void **state)
{
    (void)state;
    /* Where the difference form cancels or underflows: t_x a hair before T, and x = 400
     * (the (M+t_x)^-m factor is 1e-600). The positive-term series still matches quadrature. */
    const an_row_t hard[] = {
        {3, 38.86 - 1e-7, 38.86, 0, 1},
        {400, 30.0, 38.86, 0, 1},
        {400, 38.8, 38.86, 0, 1},
        {1000, 1.0, 38.86, 0, 1},
    };
    const an_pnbd_params_t ps[] = {PN_PUB, {0.553, 11.669, 0.606, 10.578}};
    for (size_t t = 0; t < 2; t++)
        for (size_t i = 0; i < sizeof hard / sizeof *hard; i++) {
            double ll;
            OK(an_pnbd_ll(&ps[t], &hard[i], 1, &ll, NULL, err, sizeof err));
            assert_true(isfinite(ll));
            ASSERT_REL(ll, pnbd_quadrature(&ps[t], (double)hard[i].x, hard[i].t_x, hard[i].T),
                       1e-9);
        }
}

typedef struct {
    double s, beta, t;
} pn_exp_t;

/* E[X(t) | lambda = 1, mu] = (1 - e^-mu t)/mu against the Gamma(s, beta) density of mu, with
 * mu = u^(1/s) so the density's mu^(s-1) singularity is absorbed into du. */
static double pn_exp_integrand(double u, void *c)
{
    const pn_exp_t *q = c;
    double mu = pow(u, 1 / q->s);
    double f = mu > 0 ? -expm1(-mu * q->t) / mu : q->t;
    return f * exp(-q->beta * mu + q->s * log(q->beta) - lgamma(q->s)) / q->s;
}

static void test_pnbd_expectations(void **state)
{
    (void)state;
    double v;
    /* BTYD reference manual, pnbd.Expectation(c(0.55, 10.56, 0.61, 11.64), t = 1:10), as quoted
     * by lifetimes' test_expectation_returns_same_value_as_R_BTYD. */
    const an_pnbd_params_t man = {0.55, 10.56, 0.61, 11.64};
    OK(an_pnbd_expected(&man, 1, &v, err, sizeof err));
    ASSERT_REL(v, 0.05077821, 2e-7);
    OK(an_pnbd_expected(&man, 3, &v, err, sizeof err));
    ASSERT_REL(v, 0.14542507, 2e-7);
    /* No published figure at 32 and 78 weeks: integrate the model's definition instead,
     * E[X(t)] = E[lambda] E_mu[(1 - e^-mu t)/mu]. */
    const double ts[] = {1, 3, 32, 78};
    for (int i = 0; i < 4; i++) {
        pn_exp_t q = {PN_PUB.s, PN_PUB.beta, ts[i]};
        double umax = pow(60 / PN_PUB.beta, PN_PUB.s);
        double want = PN_PUB.r / PN_PUB.alpha * integrate(pn_exp_integrand, &q, 0, umax, 1e-15);
        OK(an_pnbd_expected(&PN_PUB, ts[i], &v, err, sizeof err));
        ASSERT_REL(v, want, 1e-9);
    }
    /* s = 1 exactly: the limit r beta/alpha ln(1 + t/beta). */
    const an_pnbd_params_t s1 = {0.5, 10, 1.0, 12};
    OK(an_pnbd_expected(&s1, 20, &v, err, sizeof err));
    ASSERT_REL(v, 0.5 * 12 / 10 * log1p(20.0 / 12), 1e-14);

    /* BTYD walkthrough section 3.3, customer 1516 (26, 30.85714, 31), at the walkthrough's fit
     * (0.5534, 10.5802, 0.6061, 11.6562 to the 4 decimals lifetimes' tests carry):
     * E[X(52)] = 1.473434, 52-week conditional expectation 25.45647, P(alive) 0.997874. */
    const an_pnbd_params_t wt = {0.5534, 10.5802, 0.6061, 11.6562};
    OK(an_pnbd_expected(&wt, 52, &v, err, sizeof err));
    ASSERT_REL(v, 1.473434, 3e-4);
    OK(an_pnbd_conditional(&wt, 26, 216.0 / 7, 31, 52, &v, err, sizeof err));
    ASSERT_REL(v, 25.45647, 3e-4);
    OK(an_pnbd_palive(&wt, 26, 216.0 / 7, 31, &v, err, sizeof err));
    ASSERT_REL(v, 0.997874, 1e-5);
    /* P(alive) is the "alive" term's share of the likelihood: check through quadrature. */
    const an_pnbd_params_t *p = &PN_PUB;
    const double x = 2, t_x = 30.43, T = 38.86;
    double alive = lgamma(p->r + x) - lgamma(p->r) + p->r * log(p->alpha) + p->s * log(p->beta) -
                   (p->r + x) * log(p->alpha + T) - p->s * log(p->beta + T);
    OK(an_pnbd_palive(p, 2, t_x, T, &v, err, sizeof err));
    ASSERT_REL(v, exp(alive - pnbd_quadrature(p, x, t_x, T)), 1e-10);
    OK(an_pnbd_palive(p, 23, 39, 39, &v, err, sizeof err));
    ASSERT_REL(v, 1.0, 1e-15); /* t_x = T: nothing could have died unseen */
}

static void test_pnbd_fit_simulated(void **state)
{
    (void)state;
    const an_pnbd_params_t truth = {0.6, 8.0, 0.7, 12.0};
    const size_t n = 8000;
    an_row_t *rows = malloc(n * sizeof *rows);
    assert_non_null(rows);
    rng_t g = {7};
    for (size_t i = 0; i < n; i++) {
        double lambda = gamma_draw(&g, truth.r) / truth.alpha;
        double life = exp_draw(&g, gamma_draw(&g, truth.s) / truth.beta);
        /* Weekly cohorts, times on a 1/7-week grid as in CDNOW, so rows compress. */
        double T = 27 + floor(12 * uniform(&g)), t = 0, t_x = 0, end = fmin(life, T);
        int64_t x = 0;
        while ((t += exp_draw(&g, lambda)) <= end) {
            x++;
            t_x = ceil(t * 7) / 7;
        }
        rows[i] = (an_row_t){x, fmin(t_x, T), T, 0, 1};
    }
    an_customer_t *c = malloc(n * sizeof *c);
    assert_non_null(c);
    for (size_t i = 0; i < n; i++)
        c[i] = (an_customer_t){rows[i].x, rows[i].t_x, rows[i].T, 0};
    size_t k;
    OK(an_compress(c, n, 0, rows, &k, err, sizeof err));
    assert_true(k < n);
    an_fit_t f;
    OK(an_pnbd_fit(rows, k, &f, err, sizeof err));
    assert_int_equal(f.model, AN_MODEL_PNBD);
    assert_true(f.converged);
    assert_int_equal(f.n_customers, (int64_t)n);
    double ll_truth;
    OK(an_pnbd_ll(&truth, rows, k, &ll_truth, NULL, err, sizeof err));
    assert_true(f.ll >= ll_truth);
    /* A stationary point: no coordinate move of 1e-4 in log space improves the fit. */
    for (int j = 0; j < 4; j++)
        for (int sgn = -1; sgn <= 1; sgn += 2) {
            an_pnbd_params_t q = f.p.pnbd;
            double *v = j == 0 ? &q.r : j == 1 ? &q.alpha : j == 2 ? &q.s : &q.beta, l;
            *v *= exp(sgn * 1e-4);
            OK(an_pnbd_ll(&q, rows, k, &l, NULL, err, sizeof err));
            assert_true(l <= f.ll + 1e-7 * fabs(f.ll));
        }
    ASSERT_REL(f.p.pnbd.r, truth.r, 0.25);
    ASSERT_REL(f.p.pnbd.alpha, truth.alpha, 0.25);
    ASSERT_REL(f.p.pnbd.s, truth.s, 0.5); /* s and beta ride a long, flat ridge */
    ASSERT_REL(f.p.pnbd.beta, truth.beta, 0.8);
    free(c);
    free(rows);
}

/* ---- Gamma-Gamma ---- */

static const an_gg_params_t GG_PUB = {6.25, 3.74, 15.44}; /* FHL 2005 "RFM and CLV", CDNOW */

typedef struct {
    double p, q, g, x, m;
} gg_int_t;

/* Density of the mean of x Gamma(p, nu) spends, Gamma(px, x nu), against nu ~ Gamma(q, g). */
static double gg_integrand(double nu, void *c)
{
    const gg_int_t *k = c;
    double px = k->p * k->x;
    double dens = px * log(k->x * nu) + (px - 1) * log(k->m) - k->x * nu * k->m - lgamma(px);
    double prior = k->q * log(k->g) + (k->q - 1) * log(nu) - k->g * nu - lgamma(k->q);
    return exp(dens + prior);
}

static double gg_posterior_mean_integrand(double nu, void *c)
{
    const gg_int_t *k = c;
    return k->p / nu * gg_integrand(nu, c);
}

static void test_gg_ll_and_spend(void **state)
{
    (void)state;
    const an_row_t rows[] = {
        {2, 30.43, 38.86, 22.35, 1}, {1, 1.71, 38.86, 11.77, 2}, {7, 29.43, 38.86, 73.74, 1},
        {0, 0, 38.86, 0, 4}, /* skipped: no spend */
    };
    double ll, g[3], want = 0;
    OK(an_gg_ll(&GG_PUB, rows, 4, &ll, g, err, sizeof err));
    for (int i = 0; i < 3; i++) {
        gg_int_t k = {GG_PUB.p, GG_PUB.q, GG_PUB.gamma, (double)rows[i].x, rows[i].m_x};
        double d = integrate(gg_integrand, &k, 1e-9, 5.0, 1e-15);
        want += rows[i].weight * log(d);
        /* And the posterior mean of p/nu, by the same quadrature, is E[M | x, m_x]. */
        double e, num = integrate(gg_posterior_mean_integrand, &k, 1e-9, 5.0, 1e-15);
        OK(an_gg_expected_spend(&GG_PUB, rows[i].x, rows[i].m_x, &e, err, sizeof err));
        ASSERT_REL(e, num / d, 1e-8);
    }
    ASSERT_REL(ll, want, 1e-9);
    /* The gradient against central differences in log-parameters. */
    for (int j = 0; j < 3; j++) {
        double h = 1e-6, lp, lm;
        an_gg_params_t up = GG_PUB, dn = GG_PUB;
        double *u = j == 0 ? &up.p : j == 1 ? &up.q : &up.gamma;
        double *d = j == 0 ? &dn.p : j == 1 ? &dn.q : &dn.gamma;
        *u *= exp(h);
        *d *= exp(-h);
        OK(an_gg_ll(&up, rows, 4, &lp, NULL, err, sizeof err));
        OK(an_gg_ll(&dn, rows, 4, &lm, NULL, err, sizeof err));
        ASSERT_ABS(g[j], (lp - lm) / (2 * h), 1e-6 * (1 + fabs(g[j])));
    }
    /* Hardie's Gamma-Gamma spreadsheet (note 025) for the first ten CDNOW customers, as
     * quoted by lifetimes' test_conditional_expected_average_profit; his unrounded
     * parameters put the population mean at 35.17 where the rounded ones give 35.22. */
    const int64_t x10[] = {2, 1, 0, 0, 0, 7, 1, 0, 2, 0};
    const double m10[] = {22.35, 11.77, 0, 0, 0, 73.74, 11.77, 0, 25.55, 0};
    const double want10[] = {24.65, 18.91, 35.17, 35.17, 35.17, 71.46, 18.91, 35.17, 27.28, 35.17};
    for (int i = 0; i < 10; i++) {
        double e;
        OK(an_gg_expected_spend(&GG_PUB, x10[i], m10[i], &e, err, sizeof err));
        ASSERT_ABS(e, want10[i], 0.1);
    }
}

static void test_gg_fit_simulated(void **state)
{
    (void)state;
    const an_gg_params_t truth = {5.0, 4.0, 20.0};
    const size_t n = 6000;
    an_row_t *rows = malloc(n * sizeof *rows);
    assert_non_null(rows);
    rng_t g = {99};
    for (size_t i = 0; i < n; i++) {
        double nu = gamma_draw(&g, truth.q) / truth.gamma, sum = 0;
        int64_t x = 1 + (int64_t)(6 * uniform(&g));
        for (int64_t j = 0; j < x; j++)
            sum += gamma_draw(&g, truth.p) / nu;
        rows[i] = (an_row_t){x, 1, 2, sum / (double)x, 1};
    }
    an_fit_t f;
    OK(an_gg_fit(rows, n, &f, err, sizeof err));
    assert_int_equal(f.model, AN_MODEL_GG);
    assert_true(f.converged);
    double ll_truth, gr[3], ll_fit;
    OK(an_gg_ll(&truth, rows, n, &ll_truth, NULL, err, sizeof err));
    OK(an_gg_ll(&f.p.gg, rows, n, &ll_fit, gr, err, sizeof err));
    ASSERT_REL(f.ll, ll_fit, 1e-12);
    assert_true(f.ll >= ll_truth);
    for (int j = 0; j < 3; j++)
        ASSERT_ABS(gr[j], 0.0, 1e-3);
    ASSERT_REL(f.p.gg.p, truth.p, 0.1);
    ASSERT_REL(f.p.gg.q, truth.q, 0.25);
    ASSERT_REL(f.p.gg.gamma, truth.gamma, 0.35);
    free(rows);
}

/* ---- value ---- */

static void test_dev(void **state)
{
    (void)state;
    an_fit_t bg = {.model = AN_MODEL_BGNBD, .p.bgnbd = BG_PUB};
    an_fit_t pn = {.model = AN_MODEL_PNBD, .p.pnbd = PN_PUB};
    double v, ce;
    /* Undiscounted, the weekly increments telescope to E(39): 1.226 purchases (FHL 2005). */
    OK(an_dev(&bg, 2, 30.43, 38.86, 10.0, 39, 0.0, &v, err, sizeof err));
    ASSERT_ABS(v, 12.26, 6e-3);
    OK(an_pnbd_conditional(&PN_PUB, 2, 30.43, 38.86, 39, &ce, err, sizeof err));
    OK(an_dev(&pn, 2, 30.43, 38.86, 10.0, 39, 0.0, &v, err, sizeof err));
    ASSERT_REL(v, 10.0 * ce, 1e-12);
    /* Discounted at 15% a year: each week's purchases weigh between (1.15)^-(39/52) and
     * (1.15)^-(1/52), and the increments of E are positive, so the value lies in between. */
    double d;
    OK(an_dev(&pn, 2, 30.43, 38.86, 10.0, 39, 0.15, &d, err, sizeof err));
    assert_true(d < v * pow(1.15, -1.0 / 52) && d > v * pow(1.15, -39.0 / 52));
    /* One week: exactly E(1) spend (1+rate)^(-1/52). */
    OK(an_bgnbd_conditional(&BG_PUB, 7, 29.43, 38.86, 1, &ce, err, sizeof err));
    OK(an_dev(&bg, 7, 29.43, 38.86, 73.0, 1, 0.1, &v, err, sizeof err));
    ASSERT_REL(v, 73.0 * ce * pow(1.1, -1.0 / 52), 1e-14);
    OK(an_dev(&bg, 7, 29.43, 38.86, 73.0, 0, 0.1, &v, err, sizeof err));
    ASSERT_REL(v, 0.0, 0);

    an_fit_t gg = {.model = AN_MODEL_GG, .p.gg = GG_PUB};
    assert_int_equal(an_dev(&gg, 2, 30.43, 38.86, 10, 39, 0.1, &v, err, sizeof err), AN_EINVAL);
    assert_non_null(strstr(err, "BG/NBD or Pareto/NBD"));
    assert_int_equal(an_dev(&bg, 2, 30.43, 38.86, 10, 39, -1.0, &v, err, sizeof err), AN_EINVAL);
    assert_non_null(strstr(err, "discount rate"));
}

/* ---- errors ---- */

static void test_errors_name_the_problem(void **state)
{
    (void)state;
    double v;
    an_bgnbd_params_t bad = BG_PUB;
    bad.alpha = -1;
    assert_int_equal(an_bgnbd_ll(&bad, HAND_ROWS, N_HAND, &v, NULL, NULL, err, sizeof err),
                     AN_EINVAL);
    assert_non_null(strstr(err, "alpha = -1"));
    an_row_t rows[2] = {HAND_ROWS[0], HAND_ROWS[1]};
    rows[1].weight = 0;
    assert_int_equal(an_bgnbd_ll(&BG_PUB, rows, 2, &v, NULL, NULL, err, sizeof err), AN_EINVAL);
    assert_non_null(strstr(err, "row 1: weight = 0"));
    rows[1].weight = 1;
    rows[1].x = -2;
    assert_int_equal(an_pnbd_ll(&PN_PUB, rows, 2, &v, NULL, err, sizeof err), AN_EINVAL);
    assert_non_null(strstr(err, "x = -2"));
    assert_int_equal(an_bgnbd_fit(rows, 0, &(an_fit_t){0}, err, sizeof err), AN_EINVAL);
    assert_non_null(strstr(err, "no rows"));
    an_pnbd_params_t pn = PN_PUB;
    pn.beta = NAN;
    assert_int_equal(an_pnbd_palive(&pn, 1, 1, 2, &v, err, sizeof err), AN_EINVAL);
    assert_non_null(strstr(err, "beta = nan"));
    an_gg_params_t gq = GG_PUB;
    gq.q = 0.9;
    assert_int_equal(an_gg_expected_spend(&gq, 1, 10, &v, err, sizeof err), AN_EINVAL);
    assert_non_null(strstr(err, "q > 1"));
    assert_int_equal(an_bgnbd_conditional(&BG_PUB, 1, 5, 4, 10, &v, err, sizeof err), AN_EINVAL);
    assert_non_null(strstr(err, "t_x = 5"));
    assert_int_equal(an_bgnbd_expected(&BG_PUB, -1, &v, err, sizeof err), AN_EINVAL);
    /* A NULL error buffer is allowed. */
    assert_int_equal(an_bgnbd_expected(&BG_PUB, -1, &v, NULL, 0), AN_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hyp2f1_closed_forms),
        cmocka_unit_test(test_hyp2f1_log_and_domain),
        cmocka_unit_test(test_digamma),
        cmocka_unit_test(test_compress),
        cmocka_unit_test(test_bgnbd_ll_literal),
        cmocka_unit_test(test_bgnbd_gradient),
        cmocka_unit_test(test_bgnbd_expectations_published),
        cmocka_unit_test(test_bgnbd_fit_simulated),
        cmocka_unit_test(test_pnbd_ll_routes),
        cmocka_unit_test(test_pnbd_ll_stable),
        cmocka_unit_test(test_pnbd_expectations),
        cmocka_unit_test(test_pnbd_fit_simulated),
        cmocka_unit_test(test_gg_ll_and_spend),
        cmocka_unit_test(test_gg_fit_simulated),
        cmocka_unit_test(test_dev),
        cmocka_unit_test(test_errors_name_the_problem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
