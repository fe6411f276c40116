/*
 * html_text.c — HTML made readable text, for a message that came with only an HTML body: tags
 * dropped (script, style and title with their content), entities decoded, white space
 * collapsed, line breaks and block ends made newlines. Bounded by its input; GLib only.
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <glib.h>

#include "mail_in.h"

/* The output of in_html_to_text: a buffer of fixed capacity, and the breaks owed before the next
 * character (so that runs of white space and of breaks collapse). */
typedef struct obuf {
    char *p;
    size_t n, cap;
    int nl;    /* newlines owed before the next character (0–2) */
    int space; /* a space owed before the next character */
} obuf;

static void emit(obuf *b, const char *s, size_t len)
{
    if (b->n > 0 && b->nl > 0) {
        for (int i = 0; i < b->nl && b->n < b->cap; i++)
            b->p[b->n++] = '\n';
    } else if (b->n > 0 && b->space && b->n < b->cap) {
        b->p[b->n++] = ' ';
    }
    b->nl = b->space = 0;
    if (len > b->cap - b->n)
        len = b->cap - b->n;
    memcpy(b->p + b->n, s, len);
    b->n += len;
}

/* Writes code point @p cp as UTF-8 into @p out (4 bytes); returns the length. */
static size_t put_utf8(unsigned long cp, char *out)
{
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD;
    return (size_t)g_unichar_to_utf8((gunichar)cp, out);
}

/*
 * Decodes the entity at @p s (which starts with '&', @p len bytes available) into @p out.
 * Returns the bytes of input it took, or 0 when it is not one we know (the '&' is then text).
 * Sets *space for &nbsp;, which reads as a space once the HTML is text.
 */
static size_t entity(const char *s, size_t len, char *out, size_t *outlen, int *space)
{
    static const struct {
        const char *name, *text;
    } named[] = {{"amp;", "&"}, {"lt;", "<"}, {"gt;", ">"}, {"quot;", "\""}, {"apos;", "'"}};
    const char *semi = memchr(s, ';', len < 12 ? len : 12);

    *space = 0;
    if (semi == NULL)
        return 0;
    size_t n = (size_t)(semi - s) + 1;
    if (n == 6 && strncasecmp(s + 1, "nbsp;", 5) == 0) {
        *space = 1;
        *outlen = 0;
        return n;
    }
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        if (strlen(named[i].name) == n - 1 && strncmp(s + 1, named[i].name, n - 1) == 0) {
            *outlen = strlen(named[i].text);
            memcpy(out, named[i].text, *outlen);
            return n;
        }
    if (n < 4 || s[1] != '#')
        return 0;
    int hex = s[2] == 'x' || s[2] == 'X';
    const char *d = s + 2 + hex;
    unsigned long cp = 0;
    if (d == semi)
        return 0;
    for (; d < semi; d++) {
        if (!(hex ? isxdigit((unsigned char)*d) : isdigit((unsigned char)*d)))
            return 0;
        cp = cp * (hex ? 16 : 10) + (unsigned long)g_ascii_xdigit_value(*d);
    }
    *outlen = put_utf8(cp, out);
    return n;
}

/* Where the tag starting at @p s ('<') ends: just past its '>', quotes honoured; NULL if never. */
static const char *tag_end(const char *s, const char *end)
{
    char quote = 0;

    for (const char *p = s + 1; p < end; p++) {
        if (quote != 0 && *p == quote)
            quote = 0;
        else if (quote == 0 && (*p == '"' || *p == '\''))
            quote = *p;
        else if (quote == 0 && *p == '>')
            return p + 1;
    }
    return NULL;
}

static int name_is(const char *name, size_t n, const char *const *list)
{
    for (; *list; list++)
        if (strlen(*list) == n && strncasecmp(name, *list, n) == 0)
            return 1;
    return 0;
}

/*
 * Acts on the tag [s, e): a line break or block asks for a newline, a table cell for a space,
 * and the content of script, style and title is skipped. Returns where reading goes on.
 */
static const char *on_tag(obuf *b, const char *s, const char *e, const char *end)
{
    static const char *const blocks[] = {
        "p",       "div",     "tr",      "li",     "ul",     "ol",     "table", "blockquote",
        "h1",      "h2",      "h3",      "h4",     "h5",     "h6",     "hr",    "pre",
        "address", "section", "article", "header", "footer", "center", NULL};
    static const char *const skipped[] = {"script", "style", "title", NULL};
    static const char *const cells[] = {"td", "th", NULL};
    int closing = s[1] == '/';
    const char *name = s + 1 + closing, *q = name;

    while (q < e && g_ascii_isalnum(*q))
        q++;
    size_t n = (size_t)(q - name);
    if (!closing && name_is(name, n, skipped)) {
        char close[16];
        snprintf(close, sizeof close, "</%.*s", (int)n, name);
        const char *at = in_find_ci(e, end, close), *after;
        if (at == NULL)
            return end;
        return (after = tag_end(at, end)) != NULL ? after : end;
    }
    if (n == 2 && strncasecmp(name, "br", 2) == 0)
        b->nl = b->nl < 2 ? b->nl + 1 : 2;
    else if (name_is(name, n, blocks))
        b->nl = b->nl < 1 ? 1 : b->nl;
    else if (name_is(name, n, cells))
        b->space = 1;
    return e;
}

/*
 * Turns HTML into readable text: tags dropped (script, style and title with their content),
 * comments dropped, the common entities decoded, runs of white space made one space, and line
 * breaks and block ends made newlines (a blank line at most). @p len bytes of UTF-8 in; a new
 * malloc'd string out, never longer than the input, or NULL when out of memory.
 */
char *in_html_to_text(const char *h, size_t len)
{
    obuf b = {malloc(len + 1), 0, len, 0, 0};
    const char *p = h, *end = h + len;

    if (b.p == NULL)
        return NULL;
    while (p < end) {
        if (*p == '<' && end - p >= 4 && memcmp(p, "<!--", 4) == 0) {
            const char *close = in_find_ci(p + 4, end, "-->");
            p = close != NULL ? close + 3 : end;
        } else if (*p == '<' && p + 1 < end &&
                   (g_ascii_isalpha(p[1]) || p[1] == '/' || p[1] == '!' || p[1] == '?')) {
            const char *e = tag_end(p, end);
            p = e != NULL ? on_tag(&b, p, e, end) : end;
        } else if (*p == '&') {
            char out[8];
            size_t outlen = 0, took;
            int space;
            if ((took = entity(p, (size_t)(end - p), out, &outlen, &space)) == 0) {
                emit(&b, p++, 1);
            } else {
                if (space)
                    b.space = 1;
                else
                    emit(&b, out, outlen);
                p += took;
            }
        } else if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == '\f') {
            b.space = 1;
            p++;
        } else {
            emit(&b, p++, 1);
        }
    }
    b.p[b.n] = '\0';
    return b.p;
}
