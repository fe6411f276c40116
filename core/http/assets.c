/*
 * assets.c — static files served from tables compiled into the binary (web/ by
 * sdk/cmake/embed_assets.cmake, or a plugin's own bundle): exact names only, so there is no
 * file system behind a URL to walk, list or escape from. Text files are also kept gzipped,
 * made once when the bundle is added, and sent so to a client that accepts it.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <h2o.h>
#include <zlib.h>

#include "rapport/http.h"

#include "http_internal.h"

/* The web/ folder, embedded at build time (generated/web_assets.c). */
extern const rp_http_asset_t rp__web_assets[];

/* A file's gzipped form, when it has one worth sending (data NULL: none). */
typedef struct {
    unsigned char *data;
    size_t len;
    char etag[28]; /* the plain one's with "-gz": a cache keeps the two apart */
} gz_t;

struct rp_http_bundle {
    char prefix[64];
    char owner[64];
    const rp_http_asset_t *files;
    int n;
    char (*etags)[24];
    gz_t *gz;
    bool owned; /* files is our copy of the table (the built-in bundles): freed with h */
};

static const struct {
    const char *ext, *type;
} TYPES[] = {
    {".html", "text/html; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".ico", "image/x-icon"},
    {".woff2", "font/woff2"},
    {".txt", "text/plain; charset=utf-8"},
};

static const char *type_of(const char *path)
{
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof TYPES / sizeof TYPES[0]; i++)
        if (strcmp(dot, TYPES[i].ext) == 0)
            return TYPES[i].type;
    return "application/octet-stream";
}

/* Whether a file of type @p type is text that gzip shrinks (images and fonts are packed). */
static bool compressible(const char *type)
{
    return !strncmp(type, "text/", 5) || !strcmp(type, "application/json") ||
           !strcmp(type, "image/svg+xml");
}

/* @p in gzipped into @p g at the best level (once, at start), kept only when it saves a tenth:
 * what is not worth a Content-Encoding is sent as it is. Without memory it is sent plain. */
static void gzip_file(const unsigned char *in, size_t len, const char *etag, gz_t *g)
{
    z_stream z = {0};
    g->data = NULL;
    if (len < 256 || deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        return;
    uLong cap = deflateBound(&z, (uLong)len);
    unsigned char *out = malloc(cap);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (out && deflate(&z, Z_FINISH) == Z_STREAM_END && z.total_out < len - len / 10) {
        g->data = out;
        g->len = z.total_out;
        snprintf(g->etag, sizeof g->etag, "%.17s-gz\"", etag);
    } else
        free(out);
    deflateEnd(&z);
}

/* Whether Accept-Encoding @p ae takes gzip: "gzip" or "*" listed without q=0. */
static bool accepts_gzip(const char *ae)
{
    while (ae && *ae) {
        while (*ae == ' ' || *ae == ',')
            ae++;
        size_t n = strcspn(ae, ",;");
        while (n && ae[n - 1] == ' ')
            n--;
        bool named = (n == 4 && !strncasecmp(ae, "gzip", 4)) || (n == 1 && *ae == '*');
        const char *end = ae + strcspn(ae, ",");
        if (named) {
            const char *q = strstr(ae, "q=");
            bool zero = false;
            if (q && q < end) {
                zero = q[2] == '0';
                for (const char *d = q + 3; zero && d < end && *d != ' '; d++)
                    zero = *d == '.' || *d == '0';
            }
            if (!zero)
                return true;
        }
        ae = end;
    }
    return false;
}

/* Whether @p s (of @p len bytes) is made of [a-z0-9_-] segments joined by single slashes,
 * dots allowed inside a segment but never at its start: nothing a path could climb with. */
static bool clean_name(const char *s, size_t len)
{
    if (len == 0)
        return false;
    bool start = true;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        bool word = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
        if (ch == '/') {
            if (start)
                return false;
            start = true;
        } else if (ch == '.' && !start) {
            continue;
        } else if (!word) {
            return false;
        } else
            start = false;
    }
    return !start;
}

int rp_http_add_assets(rp_http_t *h, const char *prefix, const rp_http_asset_t *files, int n,
                       const char *owner, rp_error_t *err)
{
    size_t plen = prefix ? strlen(prefix) : 0;
    if (plen < 3 || plen >= sizeof h->bundles[0].prefix || prefix[0] != '/' ||
        prefix[plen - 1] != '/' || !clean_name(prefix + 1, plen - 2))
        return rp_error_set(err, RP_EINVAL, 0,
                            "asset prefix \"%s\" must be /NAME/ (letters, digits, _ and -)",
                            prefix ? prefix : "(none)");
    if (!strncmp(prefix, "/api/", 5) || !strcmp(prefix, "/health/") ||
        !strcmp(prefix, "/openapi.json/"))
        return rp_error_set(err, RP_ECONFLICT, 0, "asset prefix %s is the API's", prefix);
    for (int i = 0; i < h->nbundles; i++)
        if (!strcmp(h->bundles[i].prefix, prefix))
            return rp_error_set(err, RP_ECONFLICT, 0, "asset prefix %s is already served (by %s)",
                                prefix, h->bundles[i].owner);
    for (int i = 0; i < n; i++)
        if (!files[i].path || !clean_name(files[i].path, strlen(files[i].path)) ||
            (!files[i].data && files[i].len))
            return rp_error_set(err, RP_EINVAL, 0, "asset %d under %s: \"%s\" is not a file name",
                                i, prefix, files[i].path ? files[i].path : "(none)");
    struct rp_http_bundle *grown = realloc(h->bundles, (size_t)(h->nbundles + 1) * sizeof *grown);
    if (!grown)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    h->bundles = grown;
    struct rp_http_bundle *b = &h->bundles[h->nbundles];
    b->etags = calloc((size_t)(n ? n : 1), sizeof *b->etags);
    if (!b->etags)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    snprintf(b->prefix, sizeof b->prefix, "%s", prefix);
    snprintf(b->owner, sizeof b->owner, "%s", owner ? owner : "the engine");
    b->files = files;
    b->n = n;
    b->owned = false;
    /* FNV-1a of the bytes: the tag changes when the file does (a new binary), and costs one
     * pass over some kilobytes at start. */
    for (int i = 0; i < n; i++) {
        uint64_t x = 1469598103934665603u;
        for (size_t k = 0; k < files[i].len; k++)
            x = (x ^ files[i].data[k]) * 1099511628211u;
        snprintf(b->etags[i], sizeof b->etags[i], "\"%016" PRIx64 "\"", x);
    }
    b->gz = calloc((size_t)(n ? n : 1), sizeof *b->gz);
    for (int i = 0; b->gz && i < n; i++)
        if (compressible(type_of(files[i].path)))
            gzip_file(files[i].data, files[i].len, b->etags[i], &b->gz[i]);
    h->nbundles++;
    return 0;
}

int rp__http_assets_builtin(rp_http_t *h, rp_error_t *err)
{
    /* web/<folder>/<file> becomes /<folder>/<file>: one bundle per folder, in table order. */
    for (int i = 0; rp__web_assets[i].path;) {
        const char *slash = strchr(rp__web_assets[i].path, '/');
        size_t dlen = slash ? (size_t)(slash - rp__web_assets[i].path) : 0;
        int j = i;
        while (rp__web_assets[j].path && slash &&
               !strncmp(rp__web_assets[j].path, rp__web_assets[i].path, dlen + 1))
            j++;
        if (!slash) { /* a file at web/'s top is not served */
            i++;
            continue;
        }
        /* The bundle keeps pointers into the static table, past "<folder>/". */
        rp_http_asset_t *files = calloc((size_t)(j - i), sizeof *files);
        if (!files)
            return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        for (int k = i; k < j; k++)
            files[k - i] = (rp_http_asset_t){rp__web_assets[k].path + dlen + 1,
                                             rp__web_assets[k].data, rp__web_assets[k].len};
        char prefix[64];
        snprintf(prefix, sizeof prefix, "/%.*s/", (int)dlen, rp__web_assets[i].path);
        int rc = rp_http_add_assets(h, prefix, files, j - i, NULL, err);
        if (rc) {
            free(files);
            return rc;
        }
        h->bundles[h->nbundles - 1].owned = true;
        i = j;
    }
    return 0;
}

void rp__http_assets_free(rp_http_t *h)
{
    for (int i = 0; i < h->nbundles; i++) {
        if (h->bundles[i].owned)
            free((void *)h->bundles[i].files);
        free(h->bundles[i].etags);
        for (int k = 0; h->bundles[i].gz && k < h->bundles[i].n; k++)
            free(h->bundles[i].gz[k].data);
        free(h->bundles[i].gz);
    }
    free(h->bundles);
    h->bundles = NULL;
    h->nbundles = 0;
}

/* The bundle whose prefix @p path is under, or is with its last slash left off. */
static struct rp_http_bundle *bundle_of(rp_http_t *h, const char *path, size_t len)
{
    for (int i = 0; i < h->nbundles; i++) {
        size_t plen = strlen(h->bundles[i].prefix);
        if ((len >= plen && !memcmp(path, h->bundles[i].prefix, plen)) ||
            (len == plen - 1 && !memcmp(path, h->bundles[i].prefix, len)))
            return &h->bundles[i];
    }
    return NULL;
}

bool rp__http_is_asset_path(rp_http_t *h, const h2o_req_t *req)
{
    return h->nbundles && bundle_of(h, req->path_normalized.base, req->path_normalized.len);
}

int rp__http_asset(call_t *c)
{
    h2o_req_t *req = c->req;
    h2o_iovec_t p = req->path_normalized;
    struct rp_http_bundle *b = bundle_of(c->h, p.base, p.len);
    if (!b)
        return rp__http_problem(c, 404, "no such file", NULL);
    if (!rp__http_method_is(req, "GET") && !rp__http_method_is(req, "HEAD")) {
        rp__http_add_header(c, H2O_TOKEN_ALLOW, "GET");
        return rp__http_problem(c, 405, "files are only read here: GET", NULL);
    }
    /* The path as sent, before h2o decoded and resolved it: one that needed either
     * ("/console/../x", "%2e%2e", "%2f", "//") names no file of ours. */
    const char *q = memchr(req->path.base, '?', req->path.len);
    size_t rawlen = q ? (size_t)(q - req->path.base) : req->path.len;
    if (rawlen != p.len || memcmp(req->path.base, p.base, p.len) != 0)
        return rp__http_problem(c, 404, "no such file", NULL);
    size_t plen = strlen(b->prefix);
    if (p.len == plen - 1) {
        rp__http_add_header(c, H2O_TOKEN_LOCATION, b->prefix);
        rp__http_add_header(c, H2O_TOKEN_CACHE_CONTROL, "no-cache");
        return rp__http_send_body(c, 301, NULL, "", 0);
    }
    char name[512];
    if (p.len - plen >= sizeof name)
        return rp__http_problem(c, 404, "no such file", NULL);
    if (p.len == plen)
        snprintf(name, sizeof name, "index.html");
    else
        snprintf(name, sizeof name, "%.*s", (int)(p.len - plen), p.base + plen);
    int i = 0;
    while (i < b->n && strcmp(b->files[i].path, name) != 0)
        i++;
    if (i == b->n)
        return rp__http_problem(c, 404, "no such file", NULL);
    const gz_t *g = b->gz && b->gz[i].data &&
                            accepts_gzip(rp__http_header(c, H2O_TOKEN_ACCEPT_ENCODING))
                        ? &b->gz[i]
                        : NULL;
    const char *etag = g ? g->etag : b->etags[i];
    rp__http_add_header(c, H2O_TOKEN_ETAG, etag);
    /* Asked again each time (no-cache), answered 304 while the binary is the same. */
    rp__http_add_header(c, H2O_TOKEN_CACHE_CONTROL, "no-cache");
    if (b->gz && b->gz[i].data)
        rp__http_add_header(c, H2O_TOKEN_VARY, "Accept-Encoding");
    const char *inm = rp__http_header(c, H2O_TOKEN_IF_NONE_MATCH);
    if (inm && strstr(inm, etag))
        return rp__http_send_body(c, 304, NULL, "", 0);
    if (g) {
        rp__http_add_header(c, H2O_TOKEN_CONTENT_ENCODING, "gzip");
        return rp__http_send_body(c, 200, type_of(name), (const char *)g->data, g->len);
    }
    return rp__http_send_body(c, 200, type_of(name), (const char *)b->files[i].data,
                              b->files[i].len);
}
