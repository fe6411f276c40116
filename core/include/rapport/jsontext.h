/*
 * jsontext.h — JSON text written fast into one growing buffer: what every answer of the HTTP
 * API is made of, and what a list page is written with straight from the database's rows
 * (no tree built and dumped). The text is byte for byte what jansson's
 * json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) gives for the same value (object keys in their
 * order, "\uXXXX" in capitals, reals as "%.17g" with ".0" added and the exponent's "+" and
 * leading zeros taken out); tests/fuzz/fuzz_json_text.c holds it to that.
 */
#ifndef RAPPORT_JSONTEXT_H
#define RAPPORT_JSONTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

/** A text being written. Zero-initialised it is empty; a failed allocation sets oom and
 *  every later write does nothing. */
typedef struct rp_jtext {
    char *p;
    size_t len, cap;
    bool oom;
} rp_jtext_t;

void rp_jt_raw_grow(rp_jtext_t *b, const char *s, size_t n);
/** Appends @p n bytes as they are (JSON already). */
static inline void rp_jt_raw(rp_jtext_t *b, const char *s, size_t n)
{
    if (b->len + n < b->cap) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
    } else {
        rp_jt_raw_grow(b, s, n);
    }
}
/** Makes room for @p n more bytes at once (a page's worth), so writing it does not grow the
 *  buffer step by step. */
void rp_jt_reserve(rp_jtext_t *b, size_t n);
/** Appends @p s (NUL-terminated) as it is. */
void rp_jt_lit(rp_jtext_t *b, const char *s);
/** Appends @p n bytes of UTF-8 as a JSON string: quoted, '"' '\\' and control characters
 *  escaped (the bytes are not checked: write only text the engine checked on its way in). */
void rp_jt_str(rp_jtext_t *b, const char *s, size_t n);
void rp_jt_int(rp_jtext_t *b, int64_t v);
/** A real as jansson writes it; null when it is not finite (JSON has no such number). */
void rp_jt_real(rp_jtext_t *b, double v);
/** Any jansson value, compact. An invalid value (NULL) is written as null. */
void rp_jt_value(rp_jtext_t *b, const json_t *v);
/** The text, NUL-terminated, handed to the caller (free() it), its length in @p len; NULL
 *  (and the buffer freed) when an allocation failed. The writer is empty again after. */
char *rp_jt_take(rp_jtext_t *b, size_t *len);
void rp_jt_free(rp_jtext_t *b);

/** @p v as compact JSON text (free() it): json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY), only
 *  faster. NULL when out of memory. */
char *rp_json_text(const json_t *v, size_t *len);

#endif
