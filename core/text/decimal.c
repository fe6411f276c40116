/*
 * decimal.c — exact decimals as scaled integers (rapport/decimal.h): reading and writing them,
 * and the checked sum, product and comparison the plugins need for money.
 */
#include "rapport/decimal.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>

typedef __int128 wide_t;

static wide_t pow10w(int n)
{
    wide_t p = 1;
    while (n-- > 0)
        p *= 10;
    return p;
}

static bool scale_ok(int scale)
{
    return scale >= 0 && scale <= RP_DEC_MAX_SCALE;
}

static bool in_range(wide_t v)
{
    return v <= INT64_MAX && v >= -(wide_t)INT64_MAX;
}

int rp_dec_read(const char *text, int scale, int64_t *out)
{
    if (!text || !scale_ok(scale))
        return RP_DEC_BAD;
    const char *p = text;
    bool neg = false;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (!isdigit((unsigned char)*p) && !(*p == '.' && isdigit((unsigned char)p[1])))
        return RP_DEC_BAD;
    wide_t v = 0;
    int decs = 0;
    for (; isdigit((unsigned char)*p); p++) {
        v = v * 10 + (*p - '0');
        if (v > INT64_MAX)
            return RP_DEC_RANGE;
    }
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return RP_DEC_BAD;
        for (; isdigit((unsigned char)*p); p++) {
            if (decs == scale) {
                if (*p != '0')
                    return RP_DEC_PLACES;
                continue; /* Trailing zeros past the scale are harmless. */
            }
            v = v * 10 + (*p - '0');
            decs++;
            if (v > INT64_MAX)
                return RP_DEC_RANGE;
        }
    }
    if (*p)
        return RP_DEC_BAD;
    v *= pow10w(scale - decs);
    if (v > INT64_MAX)
        return RP_DEC_RANGE;
    *out = (int64_t)(neg ? -v : v);
    return RP_DEC_OK;
}

int rp_dec_parse(const char *text, int scale, int64_t *out, rp_error_t *err)
{
    if (!text)
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE, "a decimal is missing");
    if (!scale_ok(scale))
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE, "scale %d is not between 0 and %d",
                            scale, RP_DEC_MAX_SCALE);
    switch (rp_dec_read(text, scale, out)) {
    case RP_DEC_OK:
        return 0;
    case RP_DEC_PLACES:
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE,
                            "decimal \"%.40s\" has more than %d decimal places", text, scale);
    case RP_DEC_RANGE:
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE,
                            "decimal \"%.40s\" is out of range at scale %d", text, scale);
    default:
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE,
                            "\"%.40s\" is not a decimal number (write e.g. 12.50 or -3)", text);
    }
}

int rp_dec_format(int64_t v, int scale, char *out, size_t cap)
{
    if (!scale_ok(scale) || !out)
        return RP_EINVAL;
    uint64_t a = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    uint64_t p10 = (uint64_t)pow10w(scale);
    int n;
    if (scale == 0)
        n = snprintf(out, cap, "%s%" PRIu64, v < 0 ? "-" : "", a);
    else
        n = snprintf(out, cap, "%s%" PRIu64 ".%0*" PRIu64, v < 0 ? "-" : "", a / p10, scale,
                     a % p10);
    return n >= 0 && (size_t)n < cap ? 0 : RP_EINVAL;
}

int rp_dec_add(int64_t a, int64_t b, int64_t *out, rp_error_t *err)
{
    wide_t s = (wide_t)a + b;
    if (!in_range(s))
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE, "the sum is out of range");
    *out = (int64_t)s;
    return 0;
}

int rp_dec_mul(int64_t a, int ascale, int64_t b, int bscale, int scale, int64_t *out,
               rp_error_t *err)
{
    if (!scale_ok(ascale) || !scale_ok(bscale) || !scale_ok(scale))
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE, "a scale is not between 0 and %d",
                            RP_DEC_MAX_SCALE);
    /* |a × b| < 2^126: the product fits; only the rescaling can leave the range. */
    wide_t p = (wide_t)a * b;
    int shift = ascale + bscale - scale;
    if (shift > 0) {
        wide_t d = pow10w(shift), half = d / 2;
        p = (p >= 0 ? p + half : p - half) / d;
    } else if (shift < 0) {
        wide_t m = pow10w(-shift);
        if (p > (wide_t)INT64_MAX * 10 || p < -(wide_t)INT64_MAX * 10)
            goto range;
        p *= m; /* |p| ≤ 10^20 · 10^18 fits in 127 bits */
    }
    if (!in_range(p))
        goto range;
    *out = (int64_t)p;
    return 0;
range:
    return rp_error_set(err, RP_EINVAL, RP_C_TYPE, "the product is out of range");
}

int rp_dec_cmp(int64_t a, int ascale, int64_t b, int bscale)
{
    if (!scale_ok(ascale) || !scale_ok(bscale))
        return 0;
    wide_t x = (wide_t)a * pow10w(bscale > ascale ? bscale - ascale : 0);
    wide_t y = (wide_t)b * pow10w(ascale > bscale ? ascale - bscale : 0);
    return x < y ? -1 : x > y ? 1 : 0;
}
