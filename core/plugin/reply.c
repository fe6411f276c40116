/*
 * reply.c — api->reply_bytes: a plugin's route answering with a file to download (a ticket's
 * attachment) instead of JSON. What reaches the browser is decided here, not by the plugin:
 * the name is cleaned for the Content-Disposition header, and a type a browser would run or
 * render as a page (HTML, SVG, script) is sent as application/octet-stream.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "host.h"

enum { NAME_MAX_BYTES = 200, REPLY_MAX = 64 << 20 };

/* Types a browser shows without running anything; anything else is a download of bytes. */
static const char *const safe_types[] = {"image/png", "image/jpeg", "image/gif", "image/webp",
                                         "application/pdf", "text/plain"};

static char *safe_type(const char *ct)
{
    if (!ct)
        return strdup("application/octet-stream");
    size_t n = strcspn(ct, "; \t"); /* parameters (a charset) are dropped */
    for (size_t i = 0; i < sizeof safe_types / sizeof *safe_types; i++)
        if (strlen(safe_types[i]) == n && strncasecmp(ct, safe_types[i], n) == 0)
            return strdup(safe_types[i]);
    return strdup("application/octet-stream");
}

/* The length of the UTF-8 sequence at @p s (shortest form, no surrogate, at most U+10FFFF),
 * or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF)
        return (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0))
            return 0;
        return 3;
    }
    if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90))
            return 0;
        return 4;
    }
    return 0;
}

/* @p name without any folder ("../../x" is "x"), control characters or broken UTF-8, cut
 * at a whole letter within NAME_MAX_BYTES; "download" when nothing is left (owned). */
static char *clean_name(const char *name)
{
    const char *base = name ? name : "";
    for (const char *p = base; *p; p++)
        if (*p == '/' || *p == '\\')
            base = p + 1;
    char *out = malloc(NAME_MAX_BYTES + 1);
    if (!out)
        return NULL;
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)base; *p;) {
        size_t k = utf8_seq(p);
        if (k == 0) {
            p++; /* not a letter: left out */
            continue;
        }
        if (k == 1 && (*p < 0x20 || *p == 0x7F)) {
            p++;
            continue;
        }
        if (n + k > NAME_MAX_BYTES)
            break;
        memcpy(out + n, p, k);
        n += k;
        p += k;
    }
    out[n] = '\0';
    /* "." and ".." are folders, not names. */
    if (n == 0 || strcmp(out, ".") == 0 || strcmp(out, "..") == 0)
        snprintf(out, NAME_MAX_BYTES + 1, "download");
    return out;
}

int rp__plugin_reply_bytes(rapport_host *h, const char *content_type, const char *filename,
                           const void *data, size_t len)
{
    const rp_http_request_t *r = h->http;
    if (!r || !r->reply_out)
        return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "reply_bytes: only a route answering a "
                                    "request over HTTP answers with a file");
    if (r->reply_out->data)
        return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "reply_bytes: this request has its "
                                    "file already");
    if ((!data && len) || len > REPLY_MAX)
        return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "reply_bytes: %zu bytes: a file of at "
                                    "most %d bytes", len, REPLY_MAX);
    char *copy = malloc(len ? len : 1);
    char *ct = safe_type(content_type), *fn = clean_name(filename);
    if (!copy || !ct || !fn) {
        free(copy);
        free(ct);
        free(fn);
        return (int)rp__plugin_fail(h, RAPPORT_ENOMEM, "reply_bytes: out of memory");
    }
    if (len)
        memcpy(copy, data, len);
    r->reply_out->data = copy;
    r->reply_out->len = len;
    r->reply_out->ctype = ct;
    r->reply_out->filename = fn;
    return 0;
}
