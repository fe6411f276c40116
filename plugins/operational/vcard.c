/*
 * vcard.c — a vCard reader and writer for people: versions 2.1, 3.0 and 4.0 in, 4.0 out.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vcard.h"

/* A growing byte buffer. */
typedef struct {
    char *p;
    size_t len, cap;
} buf_t;

static bool put(buf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t nc = (b->cap ? b->cap * 2 : 128) + n;
        char *np = realloc(b->p, nc);
        if (!np)
            return false;
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return true;
}

/* Undoes vCard escapes (\\ \, \; \n) of @p s[0..n) into @p out; with @p split, stops at an
 * unescaped ';' and returns how far it read. */
static size_t unescape(const char *s, size_t n, buf_t *out, bool split)
{
    size_t i = 0;
    out->len = 0;
    put(out, "", 0);
    for (; i < n; i++) {
        char c = s[i];
        if (split && c == ';')
            break;
        if (c == '\\' && i + 1 < n) {
            char d = s[++i];
            c = d == 'n' || d == 'N' ? '\n' : d;
        }
        put(out, &c, 1);
    }
    return i;
}

/* The n-th (from 0) ';'-separated component of a structured value, unescaped, trimmed. */
static char *component(const char *v, size_t n, int k)
{
    buf_t b = {0};
    size_t at = 0;
    for (int i = 0; i <= k; i++) {
        size_t used = unescape(v + at, n - at, &b, true);
        if (i == k)
            break;
        at += used;
        if (at >= n) {
            b.len = 0;
            if (b.p)
                b.p[0] = '\0';
            break;
        }
        at++; /* the ';' */
    }
    if (!b.p)
        return strdup("");
    char *s = b.p;
    while (*s == ' ')
        s++;
    size_t len = strlen(s);
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\n'))
        len--;
    char *r = strndup(s, len);
    free(b.p);
    return r;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                          : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes quoted-printable (vCard 2.1) in place. */
static size_t unqp(char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int h, l;
        if (s[i] == '=' && i + 2 < n && (h = hexval(s[i + 1])) >= 0 &&
            (l = hexval(s[i + 2])) >= 0) {
            s[o++] = (char)(h * 16 + l);
            i += 2;
        } else {
            s[o++] = s[i];
        }
    }
    return o;
}

/* Sets @p field to @p v, trimmed of white space at both ends, unless it has a value. */
static void set_if_absent(json_t *card, const char *field, const char *v)
{
    if (!v || json_object_get(card, field))
        return;
    while (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r')
        v++;
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\n' || v[n - 1] == '\r'))
        n--;
    json_t *s = n ? json_stringn(v, n) : NULL; /* NULL too for text that is not UTF-8 */
    if (s)
        json_object_set_new(card, field, s);
}

/* Whether the parameters @p params (";TYPE=cell;PREF=1", raw) mention @p word as a type. */
static bool has_type(const char *params, size_t n, const char *word)
{
    size_t w = strlen(word);
    for (size_t i = 0; i + w <= n; i++) {
        if (strncasecmp(params + i, word, w) != 0)
            continue;
        char before = i ? params[i - 1] : ';', after = i + w < n ? params[i + w] : ';';
        if ((before == '=' || before == ',' || before == ';' || before == '"') &&
            (after == ',' || after == ';' || after == '"'))
            return true;
    }
    return false;
}

/* One property of a card. */
static void property(json_t *card, const char *name, const char *params, size_t plen,
                     const char *value, size_t vlen)
{
    buf_t b = {0};
    if (strcasecmp(name, "N") == 0) {
        char *last = component(value, vlen, 0), *first = component(value, vlen, 1);
        set_if_absent(card, "last_name", last);
        set_if_absent(card, "first_name", first);
        free(last);
        free(first);
        return;
    }
    if (strcasecmp(name, "ADR") == 0) {
        char *street = component(value, vlen, 2), *city = component(value, vlen, 3);
        char *country = component(value, vlen, 6);
        set_if_absent(card, "address", street);
        set_if_absent(card, "city", city);
        set_if_absent(card, "country", country);
        free(street);
        free(city);
        free(country);
        return;
    }
    if (strcasecmp(name, "ORG") == 0) {
        char *org = component(value, vlen, 0);
        set_if_absent(card, "company", org);
        free(org);
        return;
    }
    unescape(value, vlen, &b, false);
    const char *v = b.p ? b.p : "";
    while (*v == ' ')
        v++;
    if (strcasecmp(name, "FN") == 0) {
        set_if_absent(card, "_fn", v);
    } else if (strcasecmp(name, "EMAIL") == 0) {
        set_if_absent(card, "email", v);
    } else if (strcasecmp(name, "TEL") == 0) {
        if (strncasecmp(v, "tel:", 4) == 0)
            v += 4;
        bool cell = has_type(params, plen, "cell") || has_type(params, plen, "mobile");
        set_if_absent(card, cell && !json_object_get(card, "mobile") ? "mobile" : "phone", v);
    } else if (strcasecmp(name, "TITLE") == 0) {
        set_if_absent(card, "title", v);
    } else if (strcasecmp(name, "URL") == 0) {
        set_if_absent(card, "website", v);
    } else if (strcasecmp(name, "NOTE") == 0) {
        set_if_absent(card, "note", v);
    } else if (strcasecmp(name, "BDAY") == 0) {
        char d[11];
        size_t n = strlen(v);
        if (n >= 10 && v[4] == '-' && v[7] == '-') {
            memcpy(d, v, 10);
            d[10] = '\0';
            set_if_absent(card, "birthday", d);
        } else if (n >= 8 && strspn(v, "0123456789") >= 8) {
            snprintf(d, sizeof d, "%.4s-%.2s-%.2s", v, v + 4, v + 6);
            set_if_absent(card, "birthday", d);
        } /* "--MMDD" (no year) cannot be a date: left out */
    }
    free(b.p);
}

/* Whether the property on @p line says ENCODING=QUOTED-PRINTABLE (before its colon). */
static bool qp_line(const char *line)
{
    const char *colon = strchr(line, ':');
    size_t n = colon ? (size_t)(colon - line) : strlen(line);
    for (size_t i = 0; i + 16 <= n; i++)
        if (strncasecmp(line + i, "QUOTED-PRINTABLE", 16) == 0)
            return true;
    return false;
}

int op_vcard_parse(const char *text, size_t len, op_vcard_fn fn, void *ud, char *why,
                   size_t wlen)
{
    buf_t line = {0};
    json_t *card = NULL;
    long lineno = 0, card_line = 0, line_start = 0;
    size_t i = 0;
    int rc = 0;
    /* A UTF-8 byte order mark is not content. */
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        i = 3;
    while (i < len) {
        /* One logical line: a physical line and the folded ones after it. */
        line.len = 0;
        put(&line, "", 0);
        line_start = lineno + 1;
        bool any = false;
        while (i < len) {
            size_t e = i;
            while (e < len && text[e] != '\r' && text[e] != '\n')
                e++;
            /* vCard 2.1 quoted-printable: a line ending in '=' goes on at the next one, which
             * is not indented (the soft line break of RFC 2045). */
            bool soft = any && line.len && line.p[line.len - 1] == '=' && qp_line(line.p);
            if (soft)
                line.p[--line.len] = '\0';
            else if (any && !(text[i] == ' ' || text[i] == '\t'))
                break;
            size_t skip = any && !soft ? 1 : 0;
            put(&line, text + i + skip, e - i - skip);
            any = true;
            lineno++;
            if (e < len && text[e] == '\r')
                e++;
            if (e < len && text[e] == '\n')
                e++;
            i = e;
        }
        if (!any)
            break;
        char *l = line.p;
        size_t n = line.len;
        while (n && (l[n - 1] == ' ' || l[n - 1] == '\t'))
            n--;
        if (n == 0)
            continue;
        /* NAME;PARAMS:VALUE, the colon outside quoted parameter values. */
        size_t colon = 0;
        bool quoted = false;
        for (; colon < n; colon++) {
            if (l[colon] == '"')
                quoted = !quoted;
            else if (l[colon] == ':' && !quoted)
                break;
        }
        if (colon == n) {
            snprintf(why, wlen, "line %ld: \"%.40s\" is not a vCard property (NAME:value)",
                     line_start, l);
            rc = -1;
            break;
        }
        size_t nend = 0;
        while (nend < colon && l[nend] != ';')
            nend++;
        char name[64];
        size_t dot = 0;
        for (size_t k = 0; k < nend; k++)
            if (l[k] == '.')
                dot = k + 1; /* "item1.EMAIL": the group is not the name */
        snprintf(name, sizeof name, "%.*s", (int)(nend - dot), l + dot);
        const char *params = l + nend;
        size_t plen = colon - nend;
        char *value = l + colon + 1;
        size_t vlen = n - colon - 1;
        if (strcasecmp(name, "BEGIN") == 0 && vlen == 5 && strncasecmp(value, "VCARD", 5) == 0) {
            if (card) {
                snprintf(why, wlen, "line %ld: BEGIN:VCARD inside the card of line %ld, which "
                                    "has no END:VCARD", line_start, card_line);
                rc = -1;
                break;
            }
            card = json_object();
            card_line = line_start;
            continue;
        }
        if (!card) {
            snprintf(why, wlen, "line %ld: %s outside a card (no BEGIN:VCARD before it)",
                     line_start, name);
            rc = -1;
            break;
        }
        if (strcasecmp(name, "END") == 0 && vlen == 5 && strncasecmp(value, "VCARD", 5) == 0) {
            /* FN alone: the last word is the family name. */
            const char *fn_ = json_string_value(json_object_get(card, "_fn"));
            if (fn_ && !json_object_get(card, "last_name")) {
                const char *sp = strrchr(fn_, ' ');
                set_if_absent(card, "last_name", sp ? sp + 1 : fn_);
                if (sp) {
                    char *first = strndup(fn_, (size_t)(sp - fn_));
                    set_if_absent(card, "first_name", first);
                    free(first);
                }
            }
            json_object_del(card, "_fn");
            int stop = fn(ud, card, card_line);
            json_decref(card);
            card = NULL;
            if (stop)
                break;
            continue;
        }
        if (strcasecmp(name, "VERSION") == 0) {
            if (!(vlen == 3 && (strncmp(value, "2.1", 3) == 0 || strncmp(value, "3.0", 3) == 0 ||
                                strncmp(value, "4.0", 3) == 0))) {
                snprintf(why, wlen, "line %ld: vCard version \"%.*s\" (2.1, 3.0 and 4.0 are "
                                    "read)", line_start, (int)(vlen > 10 ? 10 : vlen), value);
                rc = -1;
                break;
            }
            continue;
        }
        if (has_type(params, plen, "quoted-printable"))
            vlen = unqp(value, vlen);
        property(card, name, params, plen, value, vlen);
    }
    if (!rc && card) {
        snprintf(why, wlen, "line %ld: BEGIN:VCARD without END:VCARD", card_line);
        rc = -1;
    }
    json_decref(card);
    free(line.p);
    return rc;
}

/* ---- writing ----------------------------------------------------------------------------- */

/* Writes one content line, escaped, folded at 75 octets without cutting a UTF-8 character. */
static void out_line(FILE *f, const char *name, const char *value, bool structured)
{
    buf_t b = {0};
    put(&b, name, strlen(name));
    put(&b, ":", 1);
    for (const char *p = value; *p; p++) {
        /* A structured value comes escaped already (comp()). */
        if (!structured && (*p == '\\' || *p == ',' || *p == ';'))
            put(&b, "\\", 1);
        if (*p == '\n')
            put(&b, "\\n", 2);
        else if (*p != '\r')
            put(&b, p, 1);
    }
    size_t col = 0;
    for (size_t i = 0; i < b.len; i++) {
        unsigned char c = (unsigned char)b.p[i];
        if (col >= 74 && (c & 0xC0) != 0x80) {
            fputs("\r\n ", f);
            col = 1;
        }
        fputc(c, f);
        col++;
    }
    fputs("\r\n", f);
    free(b.p);
}

static const char *str(json_t *rec, const char *field)
{
    const char *v = json_string_value(json_object_get(rec, field));
    return v ? v : "";
}

/* A component of a structured value: its ';' and ',' escaped. */
static void comp(buf_t *b, const char *v)
{
    for (; *v; v++) {
        if (*v == ';' || *v == ',' || *v == '\\')
            put(b, "\\", 1);
        if (*v == '\n')
            put(b, "\\n", 2);
        else if (*v != '\r')
            put(b, v, 1);
    }
}

void op_vcard_write(FILE *f, json_t *rec, const char *uid)
{
    fputs("BEGIN:VCARD\r\nVERSION:4.0\r\n", f);
    const char *first = str(rec, "first_name"), *last = str(rec, "last_name");
    buf_t fn = {0};
    put(&fn, first, strlen(first));
    if (*first && *last)
        put(&fn, " ", 1);
    put(&fn, last, strlen(last));
    out_line(f, "FN", fn.p ? fn.p : "", false);
    free(fn.p);
    buf_t n = {0};
    comp(&n, last);
    put(&n, ";", 1);
    comp(&n, first);
    put(&n, ";;;", 3);
    out_line(f, "N", n.p, true);
    free(n.p);
    if (*str(rec, "email"))
        out_line(f, "EMAIL", str(rec, "email"), false);
    if (*str(rec, "phone"))
        out_line(f, "TEL;TYPE=voice", str(rec, "phone"), false);
    if (*str(rec, "mobile"))
        out_line(f, "TEL;TYPE=cell", str(rec, "mobile"), false);
    if (*str(rec, "title"))
        out_line(f, "TITLE", str(rec, "title"), false);
    if (*str(rec, "company"))
        out_line(f, "ORG", str(rec, "company"), false);
    if (*str(rec, "birthday"))
        out_line(f, "BDAY", str(rec, "birthday"), false);
    if (*str(rec, "address") || *str(rec, "city") || *str(rec, "country")) {
        buf_t a = {0};
        put(&a, ";;", 2);
        comp(&a, str(rec, "address"));
        put(&a, ";", 1);
        comp(&a, str(rec, "city"));
        put(&a, ";;;", 3);
        comp(&a, str(rec, "country"));
        out_line(f, "ADR", a.p, true);
        free(a.p);
    }
    if (*str(rec, "website"))
        out_line(f, "URL", str(rec, "website"), false);
    if (uid)
        out_line(f, "UID", uid, false);
    fputs("END:VCARD\r\n", f);
}
