/*
 * fuzz_kb_render.c — libFuzzer target for the knowledge base's Markdown renderer (kb.c): any
 * bytes render, and the HTML holds only the tags cmark makes for Markdown (no raw HTML), with
 * only their own attributes, every attribute value quoted, and every href or src empty or
 * http(s), mailto or relative. Build with clang -fsanitize=fuzzer,address; with
 * -DRP_FUZZ_STANDALONE it gets a main() that runs each file named on the command line once.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const TAGS[] = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li",
                                   "a", "img", "em", "strong", "code", "pre", "blockquote", "hr",
                                   "br", NULL};
static const char *const ATTRS[] = {"href", "src", "alt", "title", "class", "start", NULL};

static bool listed(const char *const *list, const char *s, size_t n)
{
    for (; *list; list++)
        if (strlen(*list) == n && !strncmp(*list, s, n))
            return true;
    return false;
}

/* An href or src as written (percent-encoded by cmark, so no control or space is left): empty,
 * relative (no scheme: a letter, then letters, digits, '+', '-', '.', up to ':'), or
 * http(s) or mailto. */
static bool url_ok(const char *v, size_t n)
{
    size_t s = 0;
    while (s < n && ((v[s] >= 'a' && v[s] <= 'z') || (v[s] >= 'A' && v[s] <= 'Z') ||
                     (s && ((v[s] >= '0' && v[s] <= '9') || v[s] == '+' || v[s] == '-' ||
                            v[s] == '.'))))
        s++;
    if (s == n || v[s] != ':' || s == 0)
        return true;
    return (s == 4 && !strncasecmp(v, "http", 4)) || (s == 5 && !strncasecmp(v, "https", 5)) ||
           (s == 6 && !strncasecmp(v, "mailto", 6));
}

/* Checks one tag starting at @p p ('<'); returns what follows it. Traps on anything else. */
static const char *check_tag(const char *p)
{
    static const char omitted[] = "<!-- raw HTML omitted -->";
    if (!strncmp(p, omitted, sizeof omitted - 1))
        return p + sizeof omitted - 1;
    p++;
    if (*p == '/')
        p++;
    size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789");
    if (!listed(TAGS, p, n))
        __builtin_trap();
    p += n;
    for (;;) {
        p += strspn(p, " ");
        if (*p == '>')
            return p + 1;
        if (!strncmp(p, "/>", 2))
            return p + 2;
        size_t an = strspn(p, "abcdefghijklmnopqrstuvwxyz");
        if (!listed(ATTRS, p, an) || p[an] != '=' || p[an + 1] != '"')
            __builtin_trap();
        const char *v = p + an + 2, *end = strchr(v, '"');
        if (!end || memchr(v, '<', (size_t)(end - v)) || memchr(v, '>', (size_t)(end - v)))
            __builtin_trap();
        if ((!strncmp(p, "href", 4) || !strncmp(p, "src", 3)) && !url_ok(v, (size_t)(end - v)))
            __builtin_trap();
        p = end + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *html = portal_kb_render((const char *)data, size);
    if (!html)
        return 0; /* Out of memory is the only way to get nothing. */
    for (const char *p = html; (p = strchr(p, '<'));)
        p = check_tag(p);
    free(html);
    return 0;
}

#ifdef RP_FUZZ_STANDALONE
#include "standalone.h"
#endif
