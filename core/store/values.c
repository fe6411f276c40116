/*
 * values.c — the value codec: checks a JSON value against a field's type and gives its
 * canonical form, binds it into a statement, and reads it back from a column.
 */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "rapport/decimal.h"

#define MAX_TEXT (1 << 20) /* One mebibyte per text value. */

/* Puts a short, printable excerpt of @p v into @p buf for error messages. */
static const char *excerpt(json_t *v, char *buf, size_t cap)
{
    char *d = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (!d) {
        snprintf(buf, cap, "(value)");
        return buf;
    }
    if (strlen(d) > 60)
        snprintf(buf, cap, "%.57s...", d);
    else
        snprintf(buf, cap, "%s", d);
    free(d);
    return buf;
}

static int bad(rp_error_t *err, int msgcode, const char *entity, const rp__field_t *f, json_t *v,
               const char *why)
{
    char ex[80];
    return rp_error_field(err, f->name,
                          rp_error_set(err, RP_EINVAL, msgcode, "%s.%s: %s is not %s", entity,
                                       f->name, excerpt(v, ex, sizeof ex), why));
}

static bool utf8_ok(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        int len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (!len || i + (size_t)len > n)
            return false;
        unsigned cp = c & (0x7F >> len);
        for (int k = 1; k < len; k++) {
            if ((p[i + (size_t)k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + (size_t)k] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += (size_t)len;
    }
    return true;
}

/* Copies @p s without leading and trailing ASCII white space. */
static char *trimmed(const char *s, size_t n)
{
    while (n && isspace((unsigned char)*s))
        s++, n--;
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    char *r = malloc(n + 1);
    if (r) {
        memcpy(r, s, n);
        r[n] = '\0';
    }
    return r;
}

/* ---- numbers ---------------------------------------------------------------------------- */

static bool parse_int(const char *s, int64_t *out)
{
    const char *p = s;
    bool neg = false;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (!isdigit((unsigned char)*p))
        return false;
    uint64_t v = 0;
    for (; isdigit((unsigned char)*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_C(9223372036854775808) - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (*p || (!neg && v > INT64_MAX))
        return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

/* ---- text kinds ------------------------------------------------------------------------- */

static bool email_ok(char *s)
{
    char *at = strchr(s, '@');
    if (!at || at == s || strchr(at + 1, '@') || at - s > 64 || strlen(s) > 254)
        return false;
    for (char *p = s; p < at; p++) {
        unsigned char c = (unsigned char)*p;
        /* Mail systems treat the local part without case in practice; one form makes lookups
         * and unique checks match what people mean. */
        *p = (char)tolower(c);
        if (c <= ' ' || c == '"' || c == '(' || c == ')' || c == ',' || c == ':' || c == ';' ||
            c == '<' || c == '>' || c == '[' || c == ']' || c == '\\' || c == 0x7F)
            return false;
    }
    if (*s == '.' || at[-1] == '.' || strstr(s, ".."))
        return false;
    /* Domain: labels of letters, digits and '-' (or any non-ASCII, for IDN), a dot, a TLD. */
    char *dom = at + 1, *lastdot = strrchr(dom, '.');
    if (!*dom || !lastdot || lastdot == dom || strlen(lastdot + 1) < 2)
        return false;
    char prev = '.';
    for (char *p = dom; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '.') {
            if (prev == '.' || prev == '-')
                return false;
        } else if (c == '-') {
            if (prev == '.')
                return false;
        } else if (!(isalnum(c) || c >= 0x80)) {
            return false;
        }
        *p = (char)tolower(c); /* Domains are case-insensitive; keep one form. */
        prev = (char)c;
    }
    return prev != '.' && prev != '-';
}

static bool phone_ok(const char *s)
{
    int nd = 0;
    const char *p = s;
    if (*p == '+')
        p++;
    for (; *p; p++) {
        if (isdigit((unsigned char)*p))
            nd++;
        else if (*p == ' ' || *p == '-' || *p == '(' || *p == ')' || *p == '.' || *p == '/')
            continue;
        else if ((*p == 'x' || *p == 'X' || strncmp(p, "ext", 3) == 0) && nd >= 4)
            break; /* An extension follows. */
        else
            return false;
    }
    if (*p) {
        p += (*p == 'e') ? 3 : 1;
        while (*p == ' ' || *p == '.')
            p++;
        if (!isdigit((unsigned char)*p))
            return false;
        for (; *p; p++)
            if (!isdigit((unsigned char)*p))
                return false;
    }
    return nd >= 4 && nd <= 20;
}

static bool url_ok(const char *s)
{
    const char *p = s;
    if (!isalpha((unsigned char)*p))
        return false;
    while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
        p++;
    if (strncmp(p, "://", 3) != 0)
        return false;
    const char *host = p + 3;
    if (!*host || *host == '/' || *host == '?' || *host == '#')
        return false;
    for (const char *q = host; *q; q++)
        if ((unsigned char)*q <= ' ' || *q == 0x7F || *q == '"' || *q == '<' || *q == '>' ||
            *q == '\\')
            return false;
    return true;
}

/* ---- the codec -------------------------------------------------------------------------- */

int rp__value_canon(const char *entity, const rp__field_t *f, json_t *in, json_t **out,
                    rp_error_t *err)
{
    *out = NULL;
    if (!in || json_is_null(in)) {
        *out = json_null();
        return 0;
    }
    const char *str = json_string_value(in);
    switch (f->type) {
    case RP_T_INTEGER: {
        int64_t v;
        if (json_is_integer(in))
            v = json_integer_value(in);
        else if (json_is_real(in) && floor(json_real_value(in)) == json_real_value(in) &&
                 fabs(json_real_value(in)) < 9.0e15)
            v = (int64_t)json_real_value(in);
        else if (!str || !parse_int(str, &v))
            return bad(err, RP_C_TYPE, entity, f, in, "an integer");
        *out = json_integer(v);
        return 0;
    }
    case RP_T_REAL: {
        double v;
        if (json_is_number(in)) {
            v = json_number_value(in);
        } else {
            char *end;
            if (!str || !*str)
                return bad(err, RP_C_TYPE, entity, f, in, "a number");
            v = strtod(str, &end);
            if (*end || isspace((unsigned char)*str))
                return bad(err, RP_C_TYPE, entity, f, in, "a number");
        }
        if (!isfinite(v))
            return bad(err, RP_C_TYPE, entity, f, in, "a finite number");
        *out = json_real(v);
        return 0;
    }
    case RP_T_DECIMAL: {
        char buf[64];
        int64_t v;
        int r;
        if (json_is_integer(in)) {
            snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(in));
            r = rp_dec_read(buf, f->scale, &v);
        } else if (json_is_real(in)) {
            /* A JSON number reaches us as a double. Its shortest round-trip form is the
             * literal the sender wrote whenever that had at most 15 significant digits;
             * beyond that the sender must send a string, or money would touch a float. */
            double d = json_real_value(in);
            snprintf(buf, sizeof buf, "%.15g", d);
            if (strtod(buf, NULL) != d || strchr(buf, 'e') || strchr(buf, 'n') ||
                strchr(buf, 'i'))
                return bad(err, RP_C_TYPE, entity, f, in,
                           "an exact decimal (send more than 15 digits as a string)");
            r = rp_dec_read(buf, f->scale, &v);
        } else if (str) {
            char *t = trimmed(str, json_string_length(in));
            if (!t)
                return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
            r = rp_dec_read(t, f->scale, &v);
            free(t);
        } else {
            r = RP_DEC_BAD;
        }
        if (r == RP_DEC_PLACES) {
            char why[64];
            snprintf(why, sizeof why, "a decimal with at most %d decimal places", f->scale);
            return bad(err, RP_C_TYPE, entity, f, in, why);
        }
        if (r)
            return bad(err, RP_C_TYPE, entity, f, in,
                       r == RP_DEC_RANGE ? "a decimal in range" : "a decimal number");
        rp_dec_format(v, f->scale, buf, sizeof buf);
        *out = json_string(buf);
        return 0;
    }
    case RP_T_BOOLEAN:
        if (json_is_boolean(in)) {
            *out = json_incref(in);
            return 0;
        }
        if (json_is_integer(in) && (json_integer_value(in) == 0 || json_integer_value(in) == 1)) {
            *out = json_boolean(json_integer_value(in));
            return 0;
        }
        if (str) {
            static const char *const yes[] = {"true", "yes", "1", "on", NULL};
            static const char *const no[] = {"false", "no", "0", "off", NULL};
            for (int i = 0; yes[i]; i++) {
                if (strcasecmp(str, yes[i]) == 0) {
                    *out = json_true();
                    return 0;
                }
                if (strcasecmp(str, no[i]) == 0) {
                    *out = json_false();
                    return 0;
                }
            }
        }
        return bad(err, RP_C_TYPE, entity, f, in, "a boolean (true or false)");
    case RP_T_DATE: {
        int y, m, d;
        if (!str || strlen(str) != 10 || rp_time_parse_date(str, &y, &m, &d) != 0)
            return bad(err, RP_C_TYPE, entity, f, in, "a date (YYYY-MM-DD)");
        *out = json_string(str);
        return 0;
    }
    case RP_T_DATETIME: {
        int64_t ms;
        if (!str || rp__parse_datetime(str, &ms) != 0)
            return bad(err, RP_C_TYPE, entity, f, in,
                       "a date-time (YYYY-MM-DDTHH:MM[:SS[.sss]] with Z or an offset)");
        char buf[32];
        rp__fmt_time(ms, buf);
        *out = json_string(buf);
        return 0;
    }
    case RP_T_ENUM: {
        size_t i;
        json_t *v;
        if (str) {
            json_array_foreach(f->values, i, v) {
                if (json_equal(v, in)) {
                    *out = json_incref(in);
                    return 0;
                }
            }
        }
        char why[400];
        int n = snprintf(why, sizeof why, "one of");
        json_array_foreach(f->values, i, v) {
            if (n < (int)sizeof why - 40)
                n += snprintf(why + n, sizeof why - (size_t)n, "%s \"%s\"", i ? "," : "",
                              json_string_value(v));
        }
        return bad(err, RP_C_ENUM, entity, f, in, why);
    }
    case RP_T_REF: {
        int64_t v;
        if (json_is_integer(in))
            v = json_integer_value(in);
        else if (!str || !parse_int(str, &v))
            return bad(err, RP_C_TYPE, entity, f, in, "a record id");
        if (v <= 0)
            return bad(err, RP_C_TYPE, entity, f, in, "a record id");
        *out = json_integer(v);
        return 0;
    }
    case RP_T_JSON:
        *out = json_incref(in);
        return 0;
    case RP_T_TEXT:
    case RP_T_EMAIL:
    case RP_T_PHONE:
    case RP_T_URL:
        break;
    }
    /* The text kinds. Numbers are accepted as their text for plain text only. */
    if (!str) {
        if (f->type == RP_T_TEXT && (json_is_integer(in) || json_is_real(in))) {
            char buf[64];
            if (json_is_integer(in))
                snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(in));
            else
                snprintf(buf, sizeof buf, "%.17g", json_real_value(in));
            *out = json_string(buf);
            return 0;
        }
        return bad(err, RP_C_TYPE, entity, f, in, "text");
    }
    size_t len = json_string_length(in);
    if (len > MAX_TEXT)
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE,
                            "%s.%s: text of %zu bytes is longer than the limit of %d", entity,
                            f->name, len, MAX_TEXT);
    if (!utf8_ok((const unsigned char *)str, len))
        return bad(err, RP_C_TYPE, entity, f, in, "valid UTF-8 text without NUL characters");
    if (f->type == RP_T_TEXT) {
        *out = json_incref(in);
        return 0;
    }
    char *t = trimmed(str, len);
    if (!t)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    bool ok = f->type == RP_T_EMAIL ? email_ok(t) : f->type == RP_T_PHONE ? phone_ok(t) : url_ok(t);
    if (!ok) {
        free(t);
        return bad(err, RP_C_TYPE, entity, f, in,
                   f->type == RP_T_EMAIL   ? "an email address (name@domain.tld)"
                   : f->type == RP_T_PHONE ? "a phone number (4 to 20 digits, optional +, spaces, "
                                             "dashes, parentheses, extension)"
                                           : "a URL (scheme://host…)");
    }
    *out = json_string(t);
    free(t);
    return *out ? 0 : rp_error_set(err, RP_ENOMEM, 0, "out of memory");
}

int rp__value_bind(rp_db_stmt_t *st, int idx, const rp__field_t *f, json_t *v)
{
    if (!v || json_is_null(v))
        return rp_db_bind_null(st, idx);
    switch (f->type) {
    case RP_T_INTEGER:
    case RP_T_REF:
        return rp_db_bind_int(st, idx, json_integer_value(v));
    case RP_T_REAL:
        return rp_db_bind_float(st, idx, json_number_value(v));
    case RP_T_BOOLEAN:
        return rp_db_bind_int(st, idx, json_is_true(v));
    case RP_T_DECIMAL: {
        int64_t x = 0;
        rp_dec_read(json_string_value(v), f->scale, &x);
        return rp_db_bind_int(st, idx, x);
    }
    case RP_T_JSON: {
        char *d = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        return d ? rp_db_bind_text_owned(st, idx, d, -1) : RP_DB_NOMEM;
    }
    default:
        return rp_db_bind_text_copy(st, idx, json_string_value(v), (int)json_string_length(v));
    }
}

json_t *rp__value_column(rp_db_stmt_t *st, int col, const rp__field_t *f)
{
    if (rp_db_col_type(st, col) == RP_DB_NULL)
        return json_null();
    switch (f->type) {
    case RP_T_INTEGER:
    case RP_T_REF:
        return json_integer(rp_db_col_int(st, col));
    case RP_T_REAL: {
        /* A value that is not finite (put there by hand) reads as null, as the page written
         * from rows shows it: jansson has no such real. */
        json_t *r = json_real(rp_db_col_float(st, col));
        return r ? r : json_null();
    }
    case RP_T_BOOLEAN:
        return json_boolean(rp_db_col_int(st, col) != 0);
    case RP_T_DECIMAL: {
        char buf[40];
        rp_dec_format(rp_db_col_int(st, col), f->scale, buf, sizeof buf);
        return json_string(buf);
    }
    case RP_T_JSON: {
        json_t *v = json_loadb(rp_db_col_text(st, col),
                               (size_t)rp_db_col_bytes(st, col), JSON_DECODE_ANY, NULL);
        return v ? v : json_null();
    }
    default:
        /* Only checked UTF-8 was ever written here. */
        return json_stringn_nocheck(rp_db_col_text(st, col),
                                    (size_t)rp_db_col_bytes(st, col));
    }
}

const char *rp__value_text(json_t *v, char *buf, size_t cap)
{
    if (!v || json_is_null(v))
        return NULL;
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
    }
    if (json_is_real(v)) {
        snprintf(buf, cap, "%.15g", json_real_value(v));
        return buf;
    }
    if (json_is_boolean(v))
        return NULL;
    char *d = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (!d)
        return NULL;
    snprintf(buf, cap, "%s", d);
    free(d);
    return buf;
}
