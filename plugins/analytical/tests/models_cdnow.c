/*
 * models_cdnow.c — a data check, not a unit test: fits BG/NBD, Pareto/NBD and Gamma-Gamma to
 * the CDNOW summary (ID,x,t_x,T,zbar), prints each fit with its time, and exits non-zero when
 * a parameter disagrees with the published value to three significant digits.
 *
 * Usage: models_cdnow cdnow_customers_summary_with_transactions.csv
 */
#include "../models.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int read_csv(const char *path, an_customer_t **out, size_t *n)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return -1;
    }
    size_t cap = 4096, k = 0;
    an_customer_t *c = malloc(cap * sizeof *c);
    char line[256];
    if (!c || !fgets(line, sizeof line, f)) { /* header */
        fprintf(stderr, "%s: empty file or no memory\n", path);
        free(c);
        fclose(f);
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        long long id, x;
        double t_x, T, m;
        if (sscanf(line, "%lld,%lld,%lf,%lf,%lf", &id, &x, &t_x, &T, &m) != 5)
            continue;
        if (k == cap) {
            cap *= 2;
            an_customer_t *g = realloc(c, cap * sizeof *c);
            if (!g) {
                free(c);
                fclose(f);
                return -1;
            }
            c = g;
        }
        c[k++] = (an_customer_t){x, t_x, T, m};
    }
    fclose(f);
    *out = c;
    *n = k;
    return 0;
}

/* Agreement to three significant digits: within half a unit of the third digit. */
static int agrees(const char *name, double got, double published)
{
    double unit = pow(10.0, floor(log10(fabs(published))) - 2);
    int ok = fabs(got - published) <= 0.5 * unit;
    if (!ok)
        printf("  MISMATCH %s = %.6g, published %.6g\n", name, got, published);
    return ok;
}

static void show(const char *name, const an_fit_t *f, const char *pn[], const double *v, int k,
                 double ms)
{
    printf("%-11s", name);
    for (int j = 0; j < k; j++)
        printf(" %s=%.4f", pn[j], v[j]);
    printf("  LL=%.2f n=%lld evals=%d %s%s%s  %.1f ms\n", f->ll, (long long)f->n_customers,
           f->iterations, f->method, f->converged ? "" : " NOT CONVERGED: ",
           f->converged ? "" : f->reason, ms);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s cdnow_customers_summary_with_transactions.csv\n", argv[0]);
        return 2;
    }
    an_customer_t *cust;
    size_t n;
    if (read_csv(argv[1], &cust, &n) < 0)
        return 2;
    an_row_t *rows = malloc(n * sizeof *rows), *spend = malloc(n * sizeof *spend);
    char err[256];
    size_t nr, ns;
    int bad = 0;
    if (!rows || !spend || an_compress(cust, n, 0, rows, &nr, err, sizeof err) < 0 ||
        an_compress(cust, n, 1, spend, &ns, err, sizeof err) < 0) {
        fprintf(stderr, "compress: %s\n", err);
        return 2;
    }
    printf("%zu customers -> %zu purchase rows, %zu spend rows\n", n, nr, ns);

    an_fit_t f;
    double t0 = now_ms();
    if (an_bgnbd_fit(rows, nr, &f, err, sizeof err) < 0) {
        fprintf(stderr, "BG/NBD: %s\n", err);
        return 1;
    }
    double ms = now_ms() - t0;
    const char *bn[] = {"r", "alpha", "a", "b"};
    double bv[] = {f.p.bgnbd.r, f.p.bgnbd.alpha, f.p.bgnbd.a, f.p.bgnbd.b};
    show("BG/NBD", &f, bn, bv, 4, ms);
    const double bpub[] = {0.243, 4.414, 0.793, 2.426};
    for (int j = 0; j < 4; j++)
        bad |= !agrees(bn[j], bv[j], bpub[j]);
    bad |= !agrees("LL", f.ll, -9582.4) || !f.converged;

    t0 = now_ms();
    if (an_pnbd_fit(rows, nr, &f, err, sizeof err) < 0) {
        fprintf(stderr, "Pareto/NBD: %s\n", err);
        return 1;
    }
    ms = now_ms() - t0;
    const char *pn[] = {"r", "alpha", "s", "beta"};
    double pv[] = {f.p.pnbd.r, f.p.pnbd.alpha, f.p.pnbd.s, f.p.pnbd.beta};
    show("Pareto/NBD", &f, pn, pv, 4, ms);
    const double ppub[] = {0.553, 10.578, 0.606, 11.669};
    for (int j = 0; j < 4; j++)
        bad |= !agrees(pn[j], pv[j], ppub[j]);
    bad |= !agrees("LL", f.ll, -9595.0) || !f.converged;

    t0 = now_ms();
    if (an_gg_fit(spend, ns, &f, err, sizeof err) < 0) {
        fprintf(stderr, "Gamma-Gamma: %s\n", err);
        return 1;
    }
    ms = now_ms() - t0;
    const char *gn[] = {"p", "q", "gamma"};
    double gv[] = {f.p.gg.p, f.p.gg.q, f.p.gg.gamma};
    show("Gamma-Gamma", &f, gn, gv, 3, ms);
    const double gpub[] = {6.25, 3.74, 15.44};
    for (int j = 0; j < 3; j++)
        bad |= !agrees(gn[j], gv[j], gpub[j]);
    bad |= !f.converged;

    /* Scale: CDNOW repeated to over 10^6 customers; compression is the O(n log n) step, and
     * the fit then sees the same unique rows. */
    size_t reps = 1000000 / n + 1, big_n = n * reps, big_k;
    an_customer_t *big = malloc(big_n * sizeof *big);
    an_row_t *big_rows = malloc(big_n * sizeof *big_rows);
    if (big && big_rows) {
        for (size_t i = 0; i < big_n; i++)
            big[i] = cust[(i * 7919) % n]; /* interleaved, so the sort has work to do */
        t0 = now_ms();
        int rc = an_compress(big, big_n, 0, big_rows, &big_k, err, sizeof err);
        double cms = now_ms() - t0;
        t0 = now_ms();
        if (rc == 0)
            rc = an_bgnbd_fit(big_rows, big_k, &f, err, sizeof err);
        ms = now_ms() - t0;
        if (rc == 0)
            printf("%zu customers -> %zu rows: compress %.1f ms, BG/NBD fit %.1f ms (n=%lld)\n",
                   big_n, big_k, cms, ms, (long long)f.n_customers);
        else
            printf("scale check failed: %s\n", err);
        bad |= rc != 0;
    }
    free(big);
    free(big_rows);
    free(cust);
    free(rows);
    free(spend);
    printf("%s\n", bad ? "FAIL: a fit disagrees with the published values" : "OK");
    return bad;
}
