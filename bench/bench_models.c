/*
 * bench_models.c — the analytical plugin's model fits at scale: N customers drawn from BG/NBD
 * with CDNOW's parameters (purchases on whole days over up to two years, spend from
 * Gamma-Gamma), then the compression into unique (x, t_x, T) rows and each fit, with where
 * the time goes. The floor each fit is set against is one evaluation of its log-likelihood
 * over the same rows: the ratio is the evaluations the optimiser needed, in time.
 * Usage: bench_models [N] (default 1,000,000).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "models.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double unif(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
}

/* Marsaglia and Tsang's Gamma(k, 1). */
static double gamma1(double k)
{
    if (k < 1)
        return gamma1(k + 1) * pow(unif(), 1 / k);
    double d = k - 1.0 / 3, c = 1 / sqrt(9 * d);
    for (;;) {
        double x, v;
        do {
            double u1 = unif(), u2 = unif();
            x = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
            v = 1 + c * x;
        } while (v <= 0);
        v = v * v * v;
        double u = unif();
        if (log(u) < 0.5 * x * x + d - d * v + d * log(v))
            return d * v;
    }
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    if (n <= 0)
        return 2;
    an_customer_t *c = malloc(sizeof *c * (size_t)n);
    an_row_t *rows = malloc(sizeof *rows * (size_t)n);
    if (!c || !rows)
        return 1;
    /* CDNOW's BG/NBD and Gamma-Gamma parameters, in weeks. */
    const double r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, p = 6.25, q = 3.74, g = 15.44;
    double t = now_s();
    for (long i = 0; i < n; i++) {
        double lambda = gamma1(r) / alpha, x1 = gamma1(a), pd = x1 / (x1 + gamma1(b));
        double nu = gamma1(q) / g;
        long T_days = 30 + (long)(unif() * 700);
        long last = 0, x = 0;
        double tt = 0, spend = 0;
        for (;;) {
            tt += -log(unif()) / lambda * 7; /* days */
            if (tt > (double)T_days)
                break;
            x++;
            last = (long)tt;
            spend += gamma1(p) / nu;
            if (unif() < pd)
                break;
        }
        c[i] = (an_customer_t){x, (double)last / 7, (double)T_days / 7, x ? spend / (double)x : 0};
    }
    printf("data: %ld customers drawn in %.1f s\n", n, now_s() - t);
    char err[256];
    size_t nr = 0;
    t = now_s();
    if (an_compress(c, (size_t)n, 0, rows, &nr, err, sizeof err))
        return fprintf(stderr, "compress: %s\n", err), 1;
    double tc = now_s() - t;
    printf("compress: %zu unique rows in %.3f s\n", nr, tc);
    an_fit_t fit;
    for (int model = 0; model < 2; model++) {
        double ll;
        t = now_s();
        if (model == 0) {
            an_bgnbd_params_t pp = {r, alpha, a, b};
            an_bgnbd_ll(&pp, rows, nr, &ll, NULL, NULL, err, sizeof err);
        } else {
            an_pnbd_params_t pp = {0.553, 10.578, 0.606, 11.669};
            an_pnbd_ll(&pp, rows, nr, &ll, NULL, err, sizeof err);
        }
        double one = now_s() - t;
        t = now_s();
        int rc = model == 0 ? an_bgnbd_fit(rows, nr, &fit, err, sizeof err)
                            : an_pnbd_fit(rows, nr, &fit, err, sizeof err);
        double tf = now_s() - t;
        if (rc)
            return fprintf(stderr, "fit: %s\n", err), 1;
        if (model == 0)
            printf("bgnbd: r %.3f alpha %.3f a %.3f b %.3f (drawn with 0.243 4.414 0.793 2.426), "
                   "%d evaluations, %.2f s + compress %.2f s; one LL %.1f ms: ratio %.0f\n",
                   fit.p.bgnbd.r, fit.p.bgnbd.alpha, fit.p.bgnbd.a, fit.p.bgnbd.b,
                   fit.iterations, tf, tc, one * 1e3, tf / one);
        else
            printf("paretonbd: r %.3f alpha %.3f s %.3f beta %.3f, %d evaluations, %.2f s + "
                   "compress %.2f s; one LL %.1f ms: ratio %.0f\n",
                   fit.p.pnbd.r, fit.p.pnbd.alpha, fit.p.pnbd.s, fit.p.pnbd.beta,
                   fit.iterations, tf, tc, one * 1e3, tf / one);
    }
    /* Gamma-Gamma over the repeat buyers, keyed on their spend (little to compress). */
    long k = 0;
    for (long i = 0; i < n; i++)
        if (c[i].x > 0)
            c[k++] = c[i];
    t = now_s();
    if (an_compress(c, (size_t)k, 1, rows, &nr, err, sizeof err) ||
        an_gg_fit(rows, nr, &fit, err, sizeof err))
        return fprintf(stderr, "gammagamma: %s\n", err), 1;
    printf("gammagamma: p %.2f q %.2f gamma %.2f (drawn with 6.25 3.74 15.44) over %ld repeat "
           "buyers, %d evaluations, %.2f s\n", fit.p.gg.p, fit.p.gg.q, fit.p.gg.gamma, k,
           fit.iterations, now_s() - t);
    free(c);
    free(rows);
    return 0;
}
