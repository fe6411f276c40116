/*
 * special.c — the special functions the customer models need: log-gamma (libm's), digamma,
 * and the Gauss hypergeometric 2F1 on z < 1 with its log for values past a double's range.
 */
#include "models.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

/* The series cap: 2F1(1, 1; 2; z) needs about 35,000 terms at z = 0.999 for full precision. */
#define HYP_MAX_TERMS 1000000

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

double an_lgamma(double x)
{
    int sign;
    return lgamma_r(x, &sign);
}

double an_digamma(double x)
{
    if (isnan(x))
        return x;
    if (x <= 0.0) {
        if (x == floor(x))
            return NAN;
        /* Reflection: psi(1 - x) - psi(x) = pi cot(pi x). */
        return an_digamma(1.0 - x) - M_PI / tan(M_PI * x);
    }
    double acc = 0.0;
    while (x < 10.0) {
        acc -= 1.0 / x;
        x += 1.0;
    }
    /* Asymptotic series with Bernoulli numbers B2..B14; at x >= 10 the first omitted term,
     * 3617/(8160 x^16), is below 5e-17, under 1e-16 relative to psi(10) = 2.25. (At x >= 6
     * it would be 1.6e-13: measured, psi(1) was off by 2e-13 relative.) */
    double inv = 1.0 / x, inv2 = inv * inv;
    double series =
        inv2 * (1.0 / 12 -
                inv2 * (1.0 / 120 -
                        inv2 * (1.0 / 252 -
                                inv2 * (1.0 / 240 -
                                        inv2 * (1.0 / 132 - inv2 * (691.0 / 32760 - inv2 / 12))))));
    return acc + log(x) - 0.5 * inv - series;
}

static int is_nonpositive_integer(double v)
{
    return v <= 0.0 && v == floor(v);
}

/*
 * Sums 2F1(a, b; c; z) for 0 <= z < 1 as ln|sum| and its sign. The running term and sum are
 * rescaled by 2^-900 whenever the sum passes 2^900 so a series with a huge peak (a, b in the
 * hundreds) stays representable; Kahan compensation keeps the rounding of long series (tens of
 * thousands of terms near z = 1) at the level of one term. The stop test bounds the whole tail
 * by a geometric series, so slowly converging series are not cut short.
 */
static int series(double a, double b, double c, double z, double *log_abs, int *sign, char *err,
                  size_t errlen)
{
    const double big = 0x1p900, shrink = 0x1p-900, log_big = 900.0 * M_LN2;
    double term = 1.0, sum = 1.0, comp = 0.0, scale_log = 0.0;
    for (long k = 0; k < HYP_MAX_TERMS; k++) {
        double ratio = (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z;
        if (ratio == 0.0)
            goto done; /* a or b is a non-positive integer (or z = 0): the series ended. */
        term *= ratio;
        double y = term - comp;
        double t = sum + y;
        comp = (t - sum) - y;
        sum = t;
        if (fabs(sum) > big) {
            sum *= shrink;
            term *= shrink;
            comp *= shrink;
            scale_log += log_big;
        }
        /* Past its last turning point the ratio of successive terms tends to z
         * monotonically, so max(next ratio, |z|) bounds every later ratio and the tail
         * by a geometric series. */
        double next = fabs((a + k + 1) * (b + k + 1) / ((c + k + 1) * (k + 2.0)) * z);
        double rho = fmax(next, fabs(z));
        if (rho < 1.0 && fabs(term) * rho / (1.0 - rho) <= DBL_EPSILON * 0.25 * fabs(sum))
            goto done;
    }
    return fail(err, errlen, AN_ELIMIT,
                "2F1(%g, %g; %g; %.17g) did not converge within %d terms", a, b, c, z,
                HYP_MAX_TERMS);
done:
    if (sum == 0.0) {
        *log_abs = -INFINITY;
        *sign = 0;
        return 0;
    }
    *sign = sum < 0 ? -1 : 1;
    *log_abs = log(fabs(sum)) + scale_log;
    return 0;
}

/*
 * ln|2F1| for z in [0, 1). Euler's transformation 2F1(a,b;c;z) = (1-z)^(c-a-b) 2F1(c-a,c-b;c;z)
 * is used when it terminates the series, or when a+b-c > 0 (terms then decay only like
 * k^(a+b-c-1) z^k, and after the transformation like k^(c-a-b-1) z^k) and the new upper
 * parameters are non-negative, so the new series keeps positive terms.
 */
static int log_unit(double a, double b, double c, double z, double *log_abs, int *sign,
                    char *err, size_t errlen)
{
    double ca = c - a, cb = c - b;
    int terminating = is_nonpositive_integer(a) || is_nonpositive_integer(b);
    int euler_ends = is_nonpositive_integer(ca) || is_nonpositive_integer(cb);
    if (!terminating && z > 0.0 && (euler_ends || (a + b - c > 0.0 && ca >= 0.0 && cb >= 0.0))) {
        int rc = series(ca, cb, c, z, log_abs, sign, err, errlen);
        if (rc == 0)
            *log_abs += (c - a - b) * log1p(-z);
        return rc;
    }
    return series(a, b, c, z, log_abs, sign, err, errlen);
}

static int hyp2f1_signed_log(double a, double b, double c, double z, double *log_abs, int *sign,
                             char *err, size_t errlen)
{
    if (!isfinite(a) || !isfinite(b) || !isfinite(c) || !isfinite(z))
        return fail(err, errlen, AN_EINVAL,
                    "2F1(%g, %g; %g; %g): every argument must be finite", a, b, c, z);
    if (is_nonpositive_integer(c))
        return fail(err, errlen, AN_EINVAL,
                    "2F1(%g, %g; %g; %g): c must not be zero or a negative integer", a, b, c, z);
    if (z >= 1.0)
        return fail(err, errlen, AN_EINVAL,
                    "2F1(%g, %g; %g; %.17g): z must be below 1 (the series diverges at z >= 1)",
                    a, b, c, z);
    if (z >= 0.0)
        return log_unit(a, b, c, z, log_abs, sign, err, errlen);
    /* Pfaff: 2F1(a,b;c;z) = (1-z)^-a 2F1(a, c-b; c; z/(z-1)), z/(z-1) in (0, 1). Of the two
     * symmetric forms, take the one whose new upper parameter c-b (or c-a) is non-negative,
     * so the mapped series keeps one sign. */
    double w = z / (z - 1.0);
    double lead = a, other = c - b;
    if (other < 0.0 && c - a >= 0.0) {
        lead = b;
        other = c - a;
    }
    int rc = log_unit(lead, other, c, w, log_abs, sign, err, errlen);
    if (rc == 0)
        *log_abs -= lead * log1p(-z);
    return rc;
}

int an_hyp2f1(double a, double b, double c, double z, double *value, char *err, size_t errlen)
{
    double l;
    int sign;
    int rc = hyp2f1_signed_log(a, b, c, z, &l, &sign, err, errlen);
    if (rc < 0)
        return rc;
    *value = sign == 0 ? 0.0 : sign * exp(l);
    return 0;
}

int an_hyp2f1_log(double a, double b, double c, double z, double *log_value, char *err,
                  size_t errlen)
{
    int sign;
    int rc = hyp2f1_signed_log(a, b, c, z, log_value, &sign, err, errlen);
    if (rc < 0)
        return rc;
    if (sign <= 0)
        return fail(err, errlen, AN_EINVAL,
                    "2F1(%g, %g; %g; %g) is not positive, so it has no real logarithm", a, b, c,
                    z);
    return 0;
}
