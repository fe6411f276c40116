/*
 * decimal.h — exact decimals as scaled integers: "12.50" at scale 2 is 1250. Money and
 * quantities never touch a float; sums and products are checked for overflow and rounded half
 * away from zero, as a till does. The plugin API offers the same (rapport_api.dec_*).
 */
#ifndef RAPPORT_DECIMAL_H
#define RAPPORT_DECIMAL_H

#include <stddef.h>
#include <stdint.h>

#include "rapport/error.h"

/** The largest scale (digits after the point) these functions take. */
#define RP_DEC_MAX_SCALE 18

/** Bytes enough for any rp_dec_format() text: sign, 19 digits, point, NUL. */
#define RP_DEC_LEN 24

/**
 * Reads @p text, written [+-]digits[.digits] (or [+-].digits), as an integer scaled by
 * 10^@p scale into *out. Decimals past @p scale are refused unless they are zeros.
 * @return 0, or RP_EINVAL with @p err (may be NULL) saying which: not a decimal, more than
 *         @p scale decimals, or out of range (the magnitude must stay within INT64_MAX).
 */
int rp_dec_parse(const char *text, int scale, int64_t *out, rp_error_t *err);

/** What rp_dec_read() found. */
enum { RP_DEC_OK, RP_DEC_BAD, RP_DEC_PLACES, RP_DEC_RANGE };
/** As rp_dec_parse() without a message: RP_DEC_OK, or which of the three refusals (a bad
 *  scale or no text is RP_DEC_BAD), for a caller that words the refusal itself. */
int rp_dec_read(const char *text, int scale, int64_t *out);

/**
 * Writes @p v at @p scale ("-12.50") into @p out of @p cap bytes (RP_DEC_LEN is enough).
 * @return 0, or RP_EINVAL for a scale outside 0–RP_DEC_MAX_SCALE or a buffer too small.
 */
int rp_dec_format(int64_t v, int scale, char *out, size_t cap);

/** *out = @p a + @p b (the same scale). RP_EINVAL when the sum leaves the range. */
int rp_dec_add(int64_t a, int64_t b, int64_t *out, rp_error_t *err);

/**
 * *out = @p a (at @p ascale) × @p b (at @p bscale), at @p scale, rounded half away from zero.
 * RP_EINVAL for a scale outside 0–RP_DEC_MAX_SCALE or a product out of range.
 */
int rp_dec_mul(int64_t a, int ascale, int64_t b, int bscale, int scale, int64_t *out,
               rp_error_t *err);

/** -1, 0 or 1 as @p a (at @p ascale) is less than, equal to or more than @p b (at @p bscale). */
int rp_dec_cmp(int64_t a, int ascale, int64_t b, int bscale);

#endif
