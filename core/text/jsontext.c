/*
 * jsontext.c — compact JSON text into one growing buffer (rapport/jsontext.h).
 *
 * jansson's dump calls back once per piece of text and checks the UTF-8 of every string it
 * writes; a list page of 50 records is ~2,000 such values, and the dump was 45 % of serving it.
 * Here a string is copied in runs between the bytes that need escaping, a number goes through
 * a small integer formatter, and the buffer doubles as it grows.
 */
#include "rapport/jsontext.h"

#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool grow(rp_jtext_t *b, size_t more)
{
    if (b->oom)
        return false;
    if (b->len + more + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1) {
        if (cap > SIZE_MAX / 2) {
            b->oom = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void rp_jt_raw_grow(rp_jtext_t *b, const char *s, size_t n)
{
    if (!grow(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

void rp_jt_reserve(rp_jtext_t *b, size_t n)
{
    grow(b, n);
}

void rp_jt_lit(rp_jtext_t *b, const char *s)
{
    rp_jt_raw(b, s, strlen(s));
}

/* 1 for the bytes a JSON string cannot hold as they are. */
static const unsigned char needs_escape[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    ['"'] = 1, ['\\'] = 1,
};

void rp_jt_str(rp_jtext_t *b, const char *s, size_t n)
{
    /* At worst every byte becomes \u00XX: six bytes. */
    if (n > (SIZE_MAX - 2) / 6)
        b->oom = true;
    if (!grow(b, n * 6 + 2))
        return;
    char *o = b->p + b->len;
    *o++ = '"';
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        const unsigned char *run = p;
        while (p < end && !needs_escape[*p])
            p++;
        memcpy(o, run, (size_t)(p - run));
        o += p - run;
        if (p == end)
            break;
        unsigned char c = *p++;
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default: {
            static const char hex[] = "0123456789ABCDEF";
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
}

void rp_jt_int(rp_jtext_t *b, int64_t v)
{
    if (!grow(b, 21))
        return;
    char tmp[24], *t = tmp + sizeof tmp;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--t = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--t = '-';
    size_t n = (size_t)(tmp + sizeof tmp - t);
    memcpy(b->p + b->len, t, n);
    b->len += n;
}

void rp_jt_real(rp_jtext_t *b, double v)
{
    if (!isfinite(v)) {
        rp_jt_raw(b, "null", 4);
        return;
    }
    /* As jansson's jsonp_dtostr: "%.17g", a ".0" where it would read back as an integer, and
     * the exponent without its "+" or leading zeros. */
    char buf[40];
    int n = snprintf(buf, sizeof buf, "%.17g", v);
    if (n < 0 || (size_t)n >= sizeof buf - 3) {
        rp_jt_raw(b, "null", 4);
        return;
    }
    /* A locale with a decimal comma (os.setlocale, a plugin) writes "1,5": JSON has a point. */
    char point = localeconv()->decimal_point[0];
    if (point && point != '.')
        for (char *c = buf; *c; c++)
            if (*c == point)
                *c = '.';
    if (!strchr(buf, '.') && !strchr(buf, 'e')) {
        memcpy(buf + n, ".0", 3);
        n += 2;
    }
    char *e = strchr(buf, 'e');
    if (e) {
        char *start = e + 1, *digits = start + 1;
        if (*start == '-')
            start++;
        while (*digits == '0')
            digits++;
        if (digits != start) {
            memmove(start, digits, (size_t)(buf + n - digits) + 1);
            n -= (int)(digits - start);
        }
    }
    rp_jt_raw(b, buf, (size_t)n);
}

void rp_jt_value(rp_jtext_t *b, const json_t *v)
{
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_OBJECT: {
        rp_jt_raw(b, "{", 1);
        bool first = true;
        /* The iteration is the object's insertion order, as json_dumps writes it. */
        for (void *it = json_object_iter((json_t *)v); it;
             it = json_object_iter_next((json_t *)v, it)) {
            if (!first)
                rp_jt_raw(b, ",", 1);
            first = false;
            rp_jt_str(b, json_object_iter_key(it), json_object_iter_key_len(it));
            rp_jt_raw(b, ":", 1);
            rp_jt_value(b, json_object_iter_value(it));
        }
        rp_jt_raw(b, "}", 1);
        return;
    }
    case JSON_ARRAY: {
        rp_jt_raw(b, "[", 1);
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n; i++) {
            if (i)
                rp_jt_raw(b, ",", 1);
            rp_jt_value(b, json_array_get(v, i));
        }
        rp_jt_raw(b, "]", 1);
        return;
    }
    case JSON_STRING:
        rp_jt_str(b, json_string_value(v), json_string_length(v));
        return;
    case JSON_INTEGER:
        rp_jt_int(b, (int64_t)json_integer_value(v));
        return;
    case JSON_REAL:
        rp_jt_real(b, json_real_value(v));
        return;
    case JSON_TRUE:
        rp_jt_raw(b, "true", 4);
        return;
    case JSON_FALSE:
        rp_jt_raw(b, "false", 5);
        return;
    default:
        rp_jt_raw(b, "null", 4);
    }
}

char *rp_jt_take(rp_jtext_t *b, size_t *len)
{
    if (!grow(b, 0)) {
        rp_jt_free(b);
        if (len)
            *len = 0;
        return NULL;
    }
    b->p[b->len] = '\0';
    char *p = b->p;
    if (len)
        *len = b->len;
    *b = (rp_jtext_t){0};
    return p;
}

void rp_jt_free(rp_jtext_t *b)
{
    free(b->p);
    *b = (rp_jtext_t){0};
}

char *rp_json_text(const json_t *v, size_t *len)
{
    rp_jtext_t b = {0};
    rp_jt_value(&b, v);
    return rp_jt_take(&b, len);
}
