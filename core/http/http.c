/*
 * http.c — the JSON API (see rapport/http.h) on h2o's HTTP/1.1, on the engine's libuv loop.
 *
 * h2o parses requests, keeps connections alive, pipelines, buffers a body up to the limit
 * (413 beyond) and drops a client that does not send its request in time. We route, check the
 * token, call the store, and answer JSON or application/problem+json.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <h2o.h>
#include <uv.h>

#include "rapport/access.h"
#include "rapport/auth.h"
#include "rapport/events.h"
#include "rapport/http.h"

#include "http_internal.h"

#define FAILS_N 256  /* clients whose failed tokens are remembered */
#define USES_N 64    /* tokens whose last recorded use is remembered */
#define MAX_FIELDS 64
#define MAX_PARAMS 256 /* parameters of one query string */
#define TOKEN_USE_EVERY_MS 60000

typedef struct client_fails {
    char addr[64];
    int count;
    int pending;        /* sign-ins of this client being checked */
    int64_t since_ms;   /* start of the window */
    int64_t blocked_until_ms;
} client_fails_t;

/* An answer held until the group's commit (see group_begin). */
typedef struct pending {
    h2o_req_t *req;       /* NULL once h2o has let the request go (its client left) */
    struct pending **guard; /* in req's pool: tells us when that happens */
    struct pending *next;
    size_t len;
    char body[];
} pending_t;

typedef struct token_use {
    int64_t id;
    int64_t at_ms;
} token_use_t;

struct rp_http {
    rp_store_t *s;
    rp_sched_t *e;
    rp_http_opts_t o;
    char host[64];
    int port;
    int bound_port;
    h2o_globalconf_t conf;
    h2o_context_t ctx;
    h2o_accept_ctx_t actx;
    bool ctx_ready;
    uv_tcp_t listener;
    bool listening;
    int conns;
    client_fails_t fails[FAILS_N];
    token_use_t uses[USES_N];
    /* Group commit: the writes of one turn of the loop share a transaction, and their
     * answers wait for its commit. */
    uv_check_t check;
    bool check_ready;
    uv_loop_t *loop;
    int logins;         /* sign-ins being checked on the thread pool */
    bool stopping;
    rp_http_route_fn routes;
    void *routes_ud;
    bool group;
    pending_t *pend, **pend_tail;
    char *openapi_text;   /* the OpenAPI document, as made for registry generation openapi_gen */
    uint64_t openapi_gen;
};

typedef struct handler {
    h2o_handler_t super;
    rp_http_t *h;
} handler_t;

typedef struct conn {
    uv_tcp_t tcp; /* first: h2o closes it with a pointer to this */
    rp_http_t *h;
} conn_t;

/* One request as we handle it. */
typedef struct call {
    rp_http_t *h;
    h2o_req_t *req;
    char client[64];
    char key[64];   /* whom failures are counted against: the address, an IPv6 one's /64 */
    char actor[80];
    rp_ctx_t ctx;
    json_t *who;    /* the token's user, once checked */
    rp_access_t *access; /* what that user may do */
    json_t *params; /* the query string, decoded: {name: value} */
} call_t;

static void say(rp_http_t *h, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(rp_http_t *h, const char *level, const char *fmt, ...)
{
    if (!h->o.log)
        return;
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    h->o.log(h->o.log_ud, level, "http", msg);
}

static int64_t mono_ms(void)
{
    return (int64_t)(uv_hrtime() / 1000000u);
}

/* ---- answers -------------------------------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
    }
}

static void add_header(call_t *c, const h2o_token_t *token, const char *value)
{
    h2o_iovec_t v = h2o_strdup(&c->req->pool, value, strlen(value));
    h2o_add_header(&c->req->pool, &c->req->res.headers, token, NULL, v.base, v.len);
}

static void guard_dispose(void *p)
{
    pending_t **guard = p;
    if (*guard)
        (*guard)->req = NULL;
}

static int send_body(call_t *c, int status, const char *ctype, const char *body, size_t len)
{
    h2o_req_t *req = c->req;
    req->res.status = status;
    req->res.reason = reason(status);
    if (ctype)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ctype,
                       strlen(ctype));
    rp_http_t *h = c->h;
    if (!h->group) {
        h2o_send_inline(req, body, len);
        return 0;
    }
    /* A group is open: nothing is said before what it wrote is committed. */
    pending_t *p = malloc(sizeof *p + len);
    if (!p) {
        h2o_send_error_503(req, "Service Unavailable", "out of memory", 0);
        return 0;
    }
    p->req = req;
    p->len = len;
    p->next = NULL;
    memcpy(p->body, body, len);
    p->guard = h2o_mem_alloc_shared(&req->pool, sizeof *p->guard, guard_dispose);
    *p->guard = p;
    *h->pend_tail = p;
    h->pend_tail = &p->next;
    return 0;
}

/* The length of the UTF-8 sequence at @p s (shortest form, no surrogate, at most U+10FFFF,
 * as jansson takes it), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0], lo = 0x80, hi = 0xBF;
    size_t need;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 0;
    }
    for (size_t k = 1; k <= need; k++) {
        if (s[k] < lo || s[k] > hi)
            return 0;
        lo = 0x80;
        hi = 0xBF;
    }
    return need + 1;
}

/* Copies @p in into the @p cap bytes at @p out with each byte that is not UTF-8 as '?': a
 * detail quotes what the client sent (a Content-Type, a parameter's name), and a JSON string
 * that is not UTF-8 would turn the answer into a bare 500. */
static const char *utf8_text(const char *in, char *out, size_t cap)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0, o = 0;
    while (s[i] && o + 1 < cap) {
        size_t n = utf8_len(s + i);
        if (n == 0) {
            out[o++] = '?';
            i++;
            continue;
        }
        if (o + n >= cap)
            break;
        memcpy(out + o, s + i, n);
        o += n;
        i += n;
    }
    out[o] = '\0';
    return out;
}

/* An "RP-Ennnn: " in @p detail (at its start or after a batch's "record N: ") becomes "code". */
char *rp__http_problem_doc(int status, const char *detail, const char *field)
{
    char code[16] = "", text[600], clean[600], fclean[192];
    detail = utf8_text(detail, clean, sizeof clean);
    field = field ? utf8_text(field, fclean, sizeof fclean) : NULL;
    const char *rp = strstr(detail, "RP-E");
    size_t digits = rp ? strspn(rp + 4, "0123456789") : 0;
    if (rp && digits && digits < 8 && rp[4 + digits] == ':' && rp[5 + digits] == ' ' &&
        (rp == detail || (rp - detail >= 2 && rp[-2] == ':' && rp[-1] == ' '))) {
        memcpy(code, rp, 4 + digits);
        code[4 + digits] = '\0';
        snprintf(text, sizeof text, "%.*s%s", (int)(rp - detail), detail, rp + 6 + digits);
        detail = text;
    }
    json_t *p = json_pack("{s:s,s:s,s:i,s:s}", "type", "about:blank", "title", reason(status),
                          "status", status, "detail", detail);
    if (p && field && *field)
        json_object_set_new(p, "field", json_string(field));
    if (p && *code)
        json_object_set_new(p, "code", json_string(code));
    char *body = p ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    return body;
}

/* Answers @p status with a problem document (RFC 9457). */
static int problem(call_t *c, int status, const char *detail, const char *field)
{
    char *body = rp__http_problem_doc(status, detail, field);
    static const char fallback[] = "{\"title\":\"Internal Server Error\",\"status\":500}";
    send_body(c, body ? status : 500, "application/problem+json", body ? body : fallback,
              body ? strlen(body) : sizeof fallback - 1);
    free(body);
    return 0;
}

static int problemf(call_t *c, int status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int problemf(call_t *c, int status, const char *field, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return problem(c, status, msg, field);
}

/* The status a store error answers with; @p query: the error is about the request's own
 * parameters (a filter, an order), not about a record. */
static int status_of(const rp_error_t *err, bool query)
{
    switch (err->msgcode) {
    case RP_C_NO_ENTITY:
    case RP_C_NO_RECORD: return 404;
    case RP_C_STALE: return 412;
    case RP_C_FILTER:
    case RP_C_ORDER:
    case RP_C_CURSOR:
    case RP_C_SEARCH:
    case RP_C_CAP:
    case RP_C_BUDGET: return 400;
    case RP_C_UNIQUE:
    case RP_C_DELETED:
    case RP_C_REFERENCED: return 409;
    case RP_C_AUTH: return 401;
    case RP_C_DENIED:
    case RP_C_ROLE: return 403;
    default: break;
    }
    switch (err->code) {
    case RP_EINVAL: return query ? 400 : 422;
    case RP_EVETO: return 422;
    case RP_ENOTFOUND: return 404;
    case RP_ECONFLICT:
    case RP_ESTATE: return 409;
    case RP_EIO: return 503;
    case RP_EPERM: return 403;
    case RP_ELIMIT: return 400;
    default: return 500;
    }
}

static void security_event(call_t *c, const char *type, json_t *payload);

static int store_problem(call_t *c, const rp_error_t *err, bool query)
{
    int status = status_of(err, query);
    if (status >= 500) {
        /* The database's own words (table names, SQL) are for the log, not for the client. */
        char what[300];
        snprintf(what, sizeof what, "%.*s %.*s", (int)c->req->method.len, c->req->method.base,
                 (int)c->req->path_normalized.len, c->req->path_normalized.base);
        say(c->h, "error", "%s failed: %s", what, err->msg);
        return problem(c, status, status == 503 ? "the database could not do this now; the "
                       "server's log has the detail" : "the server failed; its log has the "
                       "detail", NULL);
    }
    if (err->msgcode == RP_C_BUDGET)
        return problemf(c, status, NULL, "RP-E%d: the request was stopped at its time budget "
                        "of %d ms (http.request_budget_ms): ask for less (a narrower filter, "
                        "fewer words or records)", RP_C_BUDGET, c->h->o.budget_ms);
    if (status == 403) {
        char what[300];
        snprintf(what, sizeof what, "%.*s %.*s", (int)c->req->method.len, c->req->method.base,
                 (int)c->req->path_normalized.len, c->req->path_normalized.base);
        security_event(c, "access.denied",
                       json_pack("{s:s,s:s,s:s,s:s}", "client", c->client, "request", what,
                                 "reason", err->msg, "role",
                                 c->access ? rp_access_role(c->access) : ""));
    }
    return problem(c, status, err->msg[0] ? err->msg : "the store failed", err->field);
}

/* Answers @p status with @p j (stolen). */
static int send_json(call_t *c, int status, json_t *j)
{
    char *body = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    if (!body)
        return problem(c, 500, "out of memory", NULL);
    send_body(c, status, "application/json", body, strlen(body));
    free(body);
    return 0;
}

/* {"data": data, "next": next-or-null}; both stolen. */
static int send_page(call_t *c, json_t *data, char *next)
{
    json_t *page = json_pack("{s:o,s:o}", "data", data, "next",
                             next ? json_string(next) : json_null());
    free(next);
    return send_json(c, 200, page);
}

/* The record with its version as ETag. */
static int send_record(call_t *c, int status, json_t *rec)
{
    json_t *v = json_object_get(rec, "version");
    if (json_is_integer(v)) {
        char etag[32];
        snprintf(etag, sizeof etag, "\"%" JSON_INTEGER_FORMAT "\"", json_integer_value(v));
        add_header(c, H2O_TOKEN_ETAG, etag);
    }
    return send_json(c, status, rec);
}

/* ---- the request ---------------------------------------------------------------------- */

static bool method_is(const h2o_req_t *req, const char *m)
{
    return req->method.len == strlen(m) && memcmp(req->method.base, m, req->method.len) == 0;
}

/* The value of header @p token as a string in the request's pool, or NULL. */
static const char *header(call_t *c, const h2o_token_t *token)
{
    ssize_t i = h2o_find_header(&c->req->headers, token, -1);
    if (i < 0)
        return NULL;
    h2o_iovec_t v = c->req->headers.entries[i].value;
    return h2o_strdup(&c->req->pool, v.base, v.len).base;
}

static int hexval(int ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0'
           : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
           : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                    : -1;
}

/* Percent-decodes [p, p+n) ("+" is a space) into a new string; NULL when malformed. */
static char *url_decode(const char *p, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '+')
            *o++ = ' ';
        else if (p[i] == '%') {
            int a = i + 2 < n ? hexval(p[i + 1]) : -1;
            int b = i + 2 < n ? hexval(p[i + 2]) : -1;
            if (a < 0 || b < 0 || (a == 0 && b == 0)) {
                free(out);
                return NULL;
            }
            *o++ = (char)(a * 16 + b);
            i += 2;
        } else
            *o++ = p[i];
    }
    *o = '\0';
    return out;
}

/* Decodes the query string into c->params; answers 400 itself and returns -1 on a bad one. */
static int parse_query(call_t *c)
{
    c->params = json_object();
    h2o_req_t *req = c->req;
    if (req->query_at == SIZE_MAX)
        return 0;
    const char *q = req->path.base + req->query_at + 1;
    const char *end = req->path.base + req->path.len;
    /* Each parameter costs a decode and, on a list, a filter term: counted before any work. */
    size_t n = 1;
    for (const char *a = q; (a = memchr(a, '&', (size_t)(end - a))) != NULL; a++)
        n++;
    if (n > MAX_PARAMS)
        return problemf(c, 400, NULL, "RP-E%d: the query string has %zu parameters; the limit "
                        "is %d", RP_C_CAP, n, MAX_PARAMS) - 1;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(stop - q));
        if (stop > q) {
            char *k = url_decode(q, (size_t)((eq ? eq : stop) - q));
            char *v = eq ? url_decode(eq + 1, (size_t)(stop - eq - 1)) : strdup("");
            json_t *sv = v ? json_string(v) : NULL; /* NULL when not UTF-8 */
            if (!k || !sv) {
                free(k);
                free(v);
                json_decref(sv);
                return problem(c, 400, "the query string is not well formed: a % escape is "
                               "malformed, decodes to NUL, or the text is not UTF-8", NULL) - 1;
            }
            if (json_object_get(c->params, k)) {
                json_decref(sv);
                problemf(c, 400, k, "the query parameter \"%s\" is given twice", k);
                free(k);
                free(v);
                return -1;
            }
            json_object_set_new(c->params, k, sv);
            free(k);
            free(v);
        }
        q = amp ? amp + 1 : end;
    }
    return 0;
}

static const char *param(call_t *c, const char *name)
{
    return json_string_value(json_object_get(c->params, name));
}

/* A positive integer parameter within [1, max]; *out keeps its default when absent. */
static int param_int(call_t *c, const char *name, int64_t max, int64_t *out)
{
    const char *v = param(c, name);
    if (!v)
        return 0;
    char *endp;
    errno = 0;
    long long n = strtoll(v, &endp, 10);
    if (errno || *endp || endp == v || n < 1 || n > max)
        return problemf(c, 400, name, "%s must be a whole number from 1 to %" PRId64 ", not "
                        "\"%s\"", name, max, v) - 1;
    *out = n;
    return 0;
}

json_t *rp__http_body_object(const char *ctype, const char *body, size_t len, int *status,
                             char *detail, size_t cap)
{
    size_t n = ctype ? strcspn(ctype, ";") : 0;
    while (n && ctype[n - 1] == ' ')
        n--;
    bool json = ctype && ((n == 16 && strncasecmp(ctype, "application/json", 16) == 0) ||
                          (n > 17 && strncasecmp(ctype, "application/", 12) == 0 &&
                           strncasecmp(ctype + n - 5, "+json", 5) == 0));
    *status = 400;
    if (!json) {
        *status = 415;
        snprintf(detail, cap, "the body must be JSON, sent with Content-Type: application/json "
                 "(got %s)", ctype ? ctype : "none");
        return NULL;
    }
    if (!body || len == 0) {
        snprintf(detail, cap, "the request has no body; send a JSON object");
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!j) {
        snprintf(detail, cap, "the body is not valid JSON: line %d, column %d: %s", je.line,
                 je.column, je.text);
    } else if (!json_is_object(j)) {
        /* Well-formed but not a document of fields ([] or a single value): 422 alike. */
        snprintf(detail, cap, "the body must be a JSON object of fields%s",
                 json_is_array(j) ? "" : ", not a single value");
        json_decref(j);
        j = NULL;
        *status = 422;
    }
    return j;
}

/* The body as a JSON object (owned); answers 415/400/422 itself and returns NULL. */
static json_t *body_object(call_t *c)
{
    char detail[600];
    int status;
    json_t *j = rp__http_body_object(header(c, H2O_TOKEN_CONTENT_TYPE), c->req->entity.base,
                                     c->req->entity.len, &status, detail, sizeof detail);
    if (!j)
        problem(c, status, detail, NULL);
    return j;
}

/* ---- authentication ------------------------------------------------------------------- */

/* The failures counted against @p addr; with @p make, a slot for it, taken from the client
 * counted longest ago that is neither slowed down nor signing in (a flood of new addresses
 * must not free the blocked ones). */
static client_fails_t *fails_of(rp_http_t *h, const char *addr, bool make)
{
    int64_t now = mono_ms();
    client_fails_t *oldest = NULL;
    for (int i = 0; i < FAILS_N; i++) {
        client_fails_t *f = &h->fails[i];
        if (strcmp(f->addr, addr) == 0)
            return f;
        bool busy = f->blocked_until_ms > now || f->pending > 0;
        if (!oldest || (!busy && (oldest->blocked_until_ms > now || oldest->pending > 0)) ||
            (!busy == !(oldest->blocked_until_ms > now || oldest->pending > 0) &&
             f->since_ms < oldest->since_ms))
            oldest = f;
    }
    if (!make)
        return NULL;
    memset(oldest, 0, sizeof *oldest);
    snprintf(oldest->addr, sizeof oldest->addr, "%s", addr);
    return oldest;
}

static void security_event(call_t *c, const char *type, json_t *payload)
{
    rp_ctx_t ctx = {.actor = c->who ? c->actor : "anonymous", .origin = "api"};
    rp_error_t err = {0};
    if (rp_events_emit(c->h->s, &ctx, type, NULL, 0, payload, NULL, &err))
        say(c->h, "error", "cannot log %s: %s", type, err.msg);
    json_decref(payload);
}

/* -1 (answered 429 with Retry-After) while @p c's client is slowed down after failures. */
static int throttled(call_t *c)
{
    rp_http_t *h = c->h;
    int64_t now = mono_ms();
    client_fails_t *f = fails_of(h, c->key, false);
    int64_t window_end = f ? f->since_ms + (int64_t)h->o.auth_window_s * 1000 : 0;
    /* Slowed down; or at the limit counting the sign-ins still being checked. */
    int64_t until = !f ? 0
                    : f->blocked_until_ms > now ? f->blocked_until_ms
                    : f->count >= h->o.auth_fails && window_end > now ? window_end
                                                                        : 0;
    if (until > now) {
        char secs[24];
        snprintf(secs, sizeof secs, "%" PRId64, (until - now + 999) / 1000);
        add_header(c, H2O_TOKEN_RETRY_AFTER, secs);
        return problemf(c, 429, NULL, "too many failed sign-ins from %s; try again in %s s",
                        c->client, secs) - 1;
    }
    return 0;
}

/* Counts a failure (or, for a sign-in, an attempt: it is taken back if the password was
 * right) for @p c's client, and slows the client down at the limit (auth.throttled). */
static client_fails_t *bump(call_t *c)
{
    rp_http_t *h = c->h;
    int64_t now = mono_ms();
    client_fails_t *f = fails_of(h, c->key, true);
    if (now - f->since_ms > (int64_t)h->o.auth_window_s * 1000) {
        f->since_ms = now;
        f->count = 0;
    }
    f->count++;
    /* Slowed down when the failures known to be failures reach the limit: sign-ins still
     * being checked count (see throttled) but do not slow it down before their answer. */
    if (f->count - f->pending >= h->o.auth_fails && f->blocked_until_ms <= now) {
        f->blocked_until_ms = now + (int64_t)h->o.auth_window_s * 1000;
        security_event(c, "auth.throttled",
                       json_pack("{s:s,s:i,s:i}", "client", c->client, "failures", f->count,
                                 "seconds", h->o.auth_window_s));
        say(h, "warn", "client %s throttled for %d s after %d failed sign-ins", c->client,
            h->o.auth_window_s, f->count);
    }
    return f;
}

static void refused(call_t *c, const char *why, const char *user, int count)
{
    security_event(c, "auth.refused",
                   json_pack("{s:s,s:s,s:i,s:s?}", "client", c->client, "reason", why,
                             "failures", count, "user", user));
}

/* A failed token from @p c's client: counted, and in the log as auth.refused. */
static void failed(call_t *c, const char *why, const char *user)
{
    client_fails_t *f = bump(c);
    refused(c, why, user, f->count);
}

/* Who the bearer token is; answers 401/429 itself and returns -1 when it lets no one in. */
static int authenticate(call_t *c)
{
    rp_http_t *h = c->h;
    int64_t now = mono_ms();
    if (throttled(c))
        return -1;
    client_fails_t *f = fails_of(h, c->key, false);
    const char *auth = header(c, H2O_TOKEN_AUTHORIZATION);
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) {
        add_header(c, H2O_TOKEN_WWW_AUTHENTICATE, "Bearer realm=\"rapport\"");
        return problem(c, 401, auth ? "the Authorization header must be \"Bearer <token>\""
                                    : "this needs a token: Authorization: Bearer <token> "
                                      "(rapport tokens create)", NULL) - 1;
    }
    const char *token = auth + 7;
    while (*token == ' ')
        token++;
    rp_error_t err = {0};
    if (rp_tokens_check(h->s, token, &c->who, &err)) {
        const char *why = strncmp(err.msg, "RP-E", 4) == 0 && strchr(err.msg, ' ')
                              ? strchr(err.msg, ' ') + 1
                              : err.msg;
        failed(c, why, NULL);
        add_header(c, H2O_TOKEN_WWW_AUTHENTICATE, "Bearer realm=\"rapport\", "
                   "error=\"invalid_token\"");
        return problem(c, status_of(&err, false) == 503 ? 503 : 401, err.msg, NULL) - 1;
    }
    /* A good token does not wipe the failures before it: one valid token must not let a
     * client go on guessing passwords or tokens. They expire with their window. */
    (void)f;
    const char *user = json_string_value(json_object_get(c->who, "user"));
    snprintf(c->actor, sizeof c->actor, "user:%s", user);
    if (rp_access_load(h->s, user, json_string_value(json_object_get(c->who, "role")),
                       json_string_value(json_object_get(c->who, "team")), &c->access, &err))
        return store_problem(c, &err, false) - 1;
    c->ctx = (rp_ctx_t){.actor = c->actor, .origin = "api", .access = c->access};
    /* The token's use, in the log once a minute at most (not a write per request). */
    int64_t tid = json_integer_value(json_object_get(c->who, "token_id"));
    token_use_t *u = &h->uses[(uint64_t)tid % USES_N];
    if (u->id != tid || now - u->at_ms >= TOKEN_USE_EVERY_MS) {
        u->id = tid;
        u->at_ms = now;
        if (rp_tokens_used(h->s, &c->ctx, tid, c->client, &err))
            say(h, "error", "cannot record the use of token %" PRId64 ": %s", tid, err.msg);
    }
    return 0;
}

/* ---- group commit ------------------------------------------------------------------------ */

/* Commits the open group and sends the answers it held: each as it was, or, when the commit
 * failed (and nothing of the group is stored), 503. */
static void group_end(rp_http_t *h)
{
    if (!h->group)
        return;
    h->group = false;
    uv_check_stop(&h->check);
    rp_error_t err = {0};
    int rc = 0;
    /* Something in the group (a plugin's route) left a begin without its commit: undo it
     * rather than commit half of it, and fail the group. */
    if (rp_store_txn_depth(h->s) > 1) {
        say(h, "error", "a request left a transaction open: the group of writes is undone");
        while (rp_store_txn_depth(h->s) > 0)
            rp_store_rollback(h->s, NULL);
        rc = rp_error_set(&err, RP_ESTATE, RP_C_TXN, "a request left a transaction open");
    } else
        rc = rp_store_commit(h->s, &err);
    if (rc) {
        rp_store_rollback(h->s, NULL);
        say(h, "error", "a group of writes could not be committed: %s", err.msg);
    }
    pending_t *p = h->pend;
    h->pend = NULL;
    h->pend_tail = &h->pend;
    while (p) {
        pending_t *next = p->next;
        if (p->req) {
            *p->guard = NULL;
            if (rc) {
                call_t c = {.h = h, .req = p->req};
                p->req->res.headers = (h2o_headers_t){NULL, 0, 0};
                problem(&c, 503, "the write could not be committed; nothing was stored", NULL);
            } else
                h2o_send_inline(p->req, p->body, p->len);
        }
        free(p);
        p = next;
    }
    if (!rc)
        rp_sched_kick(h->e);
}

static void on_check(uv_check_t *t)
{
    group_end(t->data);
}

/* Opens the loop turn's group of writes, if none is open: 0, or -1 (answered 503). */
static int group_begin(call_t *c)
{
    rp_http_t *h = c->h;
    if (h->group)
        return 0;
    rp_error_t err = {0};
    if (rp_store_begin(h->s, &err)) {
        store_problem(c, &err, false); /* 503, the database's words to the log */
        return -1;
    }
    h->group = true;
    uv_check_start(&h->check, on_check);
    return 0;
}

/* ---- sign-in with a password ------------------------------------------------------------ */

/* POST /api/v1/auth/login {"user", "password", "expires"}: a token for the user's role. The
 * password check (argon2id, slow by design) runs on a worker, off the loop. */
typedef struct login {
    uv_work_t work;
    rp_http_t *h;
    h2o_req_t *req; /* NULL once h2o has let the request go */
    struct login **guard;
    rp_password_check_t *pc;
    bool ok; /* set on the worker */
    int64_t expires_ms;
    char user[64], client[64], key[64];
} login_t;

static void login_guard_dispose(void *p)
{
    login_t **guard = p;
    if (*guard)
        (*guard)->req = NULL;
}

static void login_work(uv_work_t *w)
{
    login_t *l = w->data;
    l->ok = rp_password_check_run(l->pc);
}

static void login_done(uv_work_t *w, int status)
{
    login_t *l = w->data;
    rp_http_t *h = l->h;
    h->logins--;
    client_fails_t *f = fails_of(h, l->key, false);
    if (f && f->pending > 0)
        f->pending--;
    if (l->req)
        *l->guard = NULL; /* disarmed whatever follows: l is freed below */
    if ((!l->req || !h->ctx_ready) && status == 0 && l->ok && f && f->count > 0)
        f->count--; /* nobody to answer, but the password was right: not a failure */
    if (l->req && h->ctx_ready) {
        call_t c = {.h = h, .req = l->req};
        snprintf(c.client, sizeof c.client, "%s", l->client);
        snprintf(c.key, sizeof c.key, "%s", l->key);
        char actor[80];
        snprintf(actor, sizeof actor, "user:%s", l->user);
        rp_ctx_t ctx = {.actor = actor, .origin = "api"};
        rp_error_t err = {0};
        char *token = NULL;
        int64_t id = 0;
        if (status != 0 || !l->ok) {
            if (f && f->count > 0)
                f->count--; /* bump() counts it again, and slows the client at the limit */
            f = bump(&c);
            refused(&c, "wrong user name or password", l->user, f->count);
            problem(&c, 401, "wrong user name or password", NULL);
        } else if (rp_tokens_create(h->s, &ctx, l->user, NULL, l->expires_ms, &token, &id,
                                    &err)) {
            store_problem(&c, &err, false);
        } else {
            if (f && f->count > 0)
                f->count--; /* the attempt counted at its start was not a failure */
            json_t *ev = json_pack("{s:s,s:s,s:I}", "user", l->user, "client", l->client,
                                   "token_id", (json_int_t)id);
            if (rp_events_emit(h->s, &ctx, "auth.login", NULL, 0, ev, NULL, &err))
                say(h, "error", "cannot log auth.login: %s", err.msg);
            json_decref(ev);
            send_json(&c, 201, json_pack("{s:s,s:I,s:I}", "token", token, "token_id",
                                         (json_int_t)id, "expires_in_s",
                                         (json_int_t)(l->expires_ms / 1000)));
            free(token);
            rp_sched_kick(h->e);
        }
    }
    rp_password_check_free(l->pc);
    free(l);
}

static int do_login(call_t *c)
{
    if (throttled(c))
        return 0;
    json_t *body = body_object(c);
    if (!body)
        return 0;
    const char *user = NULL, *password = NULL, *expires = "8h";
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v) {
        const char **slot = !strcmp(k, "user") ? &user : !strcmp(k, "password") ? &password
                            : !strcmp(k, "expires") ? &expires : NULL;
        if (!slot || !json_is_string(v)) {
            problemf(c, 422, k, slot ? "\"%s\" must be a string"
                                     : "\"%s\" is not known (user, password, expires)", k);
            json_decref(body); /* after: k is the body's */
            return 0;
        }
        *slot = json_string_value(v);
    }
    if (!user || !password) {
        json_decref(body);
        return problem(c, 422, "sign-in needs \"user\" and \"password\"",
                       user ? "password" : "user");
    }
    rp_error_t err = {0};
    int64_t ms = 0;
    if (rp_parse_delay(expires, &ms, &err) || ms <= 0 || ms > INT64_C(366) * 86400000) {
        problemf(c, 422, "expires", "expires must be a delay up to a year (\"8h\", \"30d\"), "
                 "not \"%s\"", expires);
        json_decref(body); /* after: expires is the body's */
        return 0;
    }
    /* Each sign-in counts against the client's limit from the start (taken back when the
     * password was right), and few are checked at once: argon2id costs 64 MiB and tens of
     * milliseconds each, so a flood must not queue up on the thread pool. */
    client_fails_t *f = fails_of(c->h, c->key, true);
    if (f->pending >= 2 || c->h->logins >= 8) {
        add_header(c, H2O_TOKEN_RETRY_AFTER, "1");
        problem(c, f->pending >= 2 ? 429 : 503, "too many sign-ins being checked; try again "
                "in a second", NULL);
        json_decref(body);
        return 0;
    }
    login_t *l = calloc(1, sizeof *l);
    if (l)
        l->pc = rp_users_password_begin(c->h->s, user, password);
    if (!l || !l->pc) {
        free(l);
        json_decref(body);
        return problem(c, 503, "out of memory", NULL);
    }
    l->h = c->h;
    l->req = c->req;
    l->expires_ms = ms;
    snprintf(l->user, sizeof l->user, "%s", user);
    snprintf(l->client, sizeof l->client, "%s", c->client);
    snprintf(l->key, sizeof l->key, "%s", c->key);
    json_decref(body);
    l->guard = h2o_mem_alloc_shared(&c->req->pool, sizeof *l->guard, login_guard_dispose);
    *l->guard = l;
    l->work.data = l;
    if (uv_queue_work(c->h->loop, &l->work, login_work, login_done) != 0) {
        *l->guard = NULL;
        rp_password_check_free(l->pc);
        free(l);
        return problem(c, 503, "cannot check the password now", NULL);
    }
    /* Counted now, taken back if the password was right (bump() would slow the client at the
     * limit before knowing: the count alone holds attempts back meanwhile). */
    int64_t now = mono_ms();
    if (now - f->since_ms > (int64_t)c->h->o.auth_window_s * 1000) {
        f->since_ms = now;
        f->count = 0;
    }
    f->count++;
    f->pending++;
    c->h->logins++;
    return 0; /* answered by login_done */
}

/* ---- the handlers --------------------------------------------------------------------- */

static void wrote(call_t *c)
{
    rp_sched_kick(c->h->e);
}

/* The typed value of filter text @p v for field @p name of @p fields (the entity's schema). */
static json_t *typed_value(json_t *fields, const char *name, const char *v)
{
    static const char *const ints[] = {"id", "version", NULL};
    const char *type = json_string_value(json_object_get(json_object_get(fields, name), "type"));
    for (int i = 0; ints[i]; i++)
        if (strcmp(name, ints[i]) == 0)
            type = "integer";
    if (type && (!strcmp(type, "integer") || !strcmp(type, "ref") || !strcmp(type, "real") ||
                 !strcmp(type, "boolean"))) {
        json_t *j = json_loads(v, JSON_DECODE_ANY, NULL);
        if (j && (json_is_number(j) || json_is_boolean(j)))
            return j;
        json_decref(j);
    }
    if (strcmp(v, "null") == 0)
        return json_null();
    return json_string(v);
}

static int do_list(call_t *c, const char *entity)
{
    rp_query_t q = {.entity = entity, .limit = 50, .access = c->access};
    if (param_int(c, "limit", 1000, &q.limit))
        return 0;
    q.after = param(c, "after");
    q.order = param(c, "order");
    const char *wd = param(c, "with_deleted");
    if (wd && strcmp(wd, "true") && strcmp(wd, "false"))
        return problem(c, 400, "with_deleted must be true or false", "with_deleted");
    q.with_deleted = wd && strcmp(wd, "true") == 0;
    rp_error_t err = {0};
    json_t *schema = rp_store_schema(c->h->s, entity, &err);
    if (!schema)
        return store_problem(c, &err, true);
    json_t *fields = json_object_get(schema, "fields");
    json_t *where = json_object();
    const char *wtext = param(c, "where");
    if (wtext) {
        json_error_t je;
        json_t *w = json_loads(wtext, 0, &je);
        if (!json_is_object(w)) {
            json_decref(w);
            json_decref(where);
            json_decref(schema);
            return problemf(c, 400, "where", "where must be a JSON object filter (column %d: "
                            "%s)", je.column, w ? "not an object" : je.text);
        }
        json_object_update(where, w);
        json_decref(w);
    }
    static const char *const reserved[] = {"limit", "after", "order", "fields", "with_deleted",
                                           "where", NULL};
    const char *k;
    json_t *v;
    json_object_foreach(c->params, k, v) {
        bool skip = false;
        for (int i = 0; reserved[i]; i++)
            skip |= strcmp(k, reserved[i]) == 0;
        if (!skip)
            json_object_set_new(where, k, typed_value(fields, k, json_string_value(v)));
    }
    char *fbuf = NULL;
    const char *flist[MAX_FIELDS + 1];
    const char *ftext = param(c, "fields");
    if (ftext) {
        fbuf = strdup(ftext);
        int n = 0;
        for (char *save = NULL, *t = strtok_r(fbuf, ",", &save); t;
             t = strtok_r(NULL, ",", &save)) {
            if (n == MAX_FIELDS)
                break;
            flist[n++] = t;
        }
        flist[n] = NULL;
        q.fields = flist;
    }
    q.where = json_object_size(where) ? where : NULL;
    json_t *out = NULL;
    char *next = NULL;
    int rc = rp_store_find(c->h->s, &q, &out, &next, &err);
    free(fbuf);
    json_decref(where);
    json_decref(schema);
    if (rc)
        return store_problem(c, &err, true);
    return send_page(c, out, next);
}

static int do_create(call_t *c, const char *entity)
{
    json_t *body = body_object(c);
    if (!body)
        return 0;
    rp_error_t err = {0};
    json_t *rec = NULL;
    int rc = rp_store_create_record(c->h->s, &c->ctx, entity, body, &rec, &err);
    json_decref(body);
    if (rc)
        return store_problem(c, &err, false);
    wrote(c);
    char loc[160];
    snprintf(loc, sizeof loc, "/api/v1/%s/%" JSON_INTEGER_FORMAT, entity,
             json_integer_value(json_object_get(rec, "id")));
    add_header(c, H2O_TOKEN_LOCATION, loc);
    return send_record(c, 201, rec);
}

/* Keeps only the fields the "fields" parameter names (and id, version). Returns the first
 * name that is not a field of @p rec, or NULL. */
static const char *select_fields(call_t *c, json_t *rec)
{
    const char *ftext = param(c, "fields");
    if (!ftext || !json_is_object(rec))
        return NULL;
    static char unknown[64];
    for (const char *t = ftext; *t;) {
        size_t n = strcspn(t, ",");
        snprintf(unknown, sizeof unknown, "%.*s", (int)(n < 63 ? n : 63), t);
        if (n && !json_object_get(rec, unknown))
            return unknown;
        t += n + (t[n] == ',');
    }
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(rec, tmp, k, v) {
        size_t n = strlen(k);
        bool keep = !strcmp(k, "id") || !strcmp(k, "version");
        for (const char *q = ftext; !keep && (q = strstr(q, k)); q += n)
            keep = (q == ftext || q[-1] == ',') && (q[n] == ',' || q[n] == '\0');
        if (!keep)
            json_object_del(rec, k);
    }
    return NULL;
}

static int do_get(call_t *c, const char *entity, int64_t id)
{
    rp_error_t err = {0};
    json_t *rec = NULL;
    const char *ftext = param(c, "fields");
    if (ftext && c->access) {
        /* As a list does: a hidden field named in "fields" is refused, not passed over. */
        char *buf = strdup(ftext);
        for (char *save = NULL, *t = buf ? strtok_r(buf, ",", &save) : NULL; t;
             t = strtok_r(NULL, ",", &save))
            if (rp_access_hidden(c->access, entity, t)) {
                rp_error_set(&err, RP_EPERM, RP_C_DENIED, "role %s may not read %s.%s: it is "
                             "hidden (missing: read %s.%s)", rp_access_role(c->access), entity,
                             t, entity, t);
                rp_error_field(&err, t, 0);
                free(buf);
                return store_problem(c, &err, true);
            }
        free(buf);
    }
    if (rp_store_get_as(c->h->s, &c->ctx, entity, id, &rec, &err))
        return store_problem(c, &err, false);
    const char *unknown = select_fields(c, rec);
    if (unknown) {
        json_decref(rec);
        return problemf(c, 400, unknown, "unknown field \"%s\" on %s", unknown, entity);
    }
    return send_record(c, 200, rec);
}

/* The version an If-Match header asks for: 0 when absent or "*" (any version will do),
 * -1 when it was answered (400 malformed; 412 for a weak tag, which If-Match never matches). */
static int64_t if_match(call_t *c)
{
    const char *v = header(c, H2O_TOKEN_IF_MATCH);
    if (!v || strcmp(v, "*") == 0)
        return 0;
    if (strncmp(v, "W/", 2) == 0) {
        problemf(c, 412, NULL, "If-Match compares strongly: a weak tag (%s) never matches; send "
                 "the ETag as given (\"3\")", v);
        return -1;
    }
    char *endp;
    long long n = strtoll(v + (*v == '"'), &endp, 10);
    if (n < 1 || (*v == '"' ? strcmp(endp, "\"") != 0 : *endp != '\0')) {
        problemf(c, 400, NULL, "If-Match must be the record's version as its ETag gives it "
                 "(\"3\"), not %s", v);
        return -1;
    }
    return n;
}

/* For DELETE and restore, which the store does not version: 0 when If-Match is absent or
 * matches the record as it is now (in the same transaction as the write that follows); -1
 * when it was answered (412, or 404). */
static int check_if_match(call_t *c, const char *entity, int64_t id)
{
    int64_t expect = if_match(c);
    if (expect <= 0)
        return (int)expect;
    rp_error_t err = {0};
    json_t *rec = NULL;
    if (rp_store_get_as(c->h->s, &c->ctx, entity, id, &rec, &err))
        return store_problem(c, &err, false) - 1;
    int64_t have = json_integer_value(json_object_get(rec, "version"));
    json_decref(rec);
    if (have == expect)
        return 0;
    return problemf(c, 412, NULL, "%s %" PRId64 ": version %" PRId64 " was read but the record "
                    "is now at version %" PRId64 "; read it again", entity, id, expect, have) - 1;
}

/* Whether the caller may read record @p id now. */
static bool readable(call_t *c, const char *entity, int64_t id)
{
    json_t *rec = NULL;
    bool ok = rp_store_get_as(c->h->s, &c->ctx, entity, id, &rec, NULL) == 0;
    json_decref(rec);
    return ok;
}

/* The record as a write left it, for its writer, without the fields hidden from them: whole
 * when they could read it before the write (@p could_read) or can after it (handing one's
 * record to another team still answers with what was written); else only its id and version,
 * so that a write the role allows is not a way to read what it does not. */
static int send_written(call_t *c, const char *entity, int64_t id, bool could_read)
{
    rp_error_t err = {0};
    json_t *rec = NULL;
    if (rp_store_get(c->h->s, entity, id, &rec, &err))
        return store_problem(c, &err, false);
    if (!could_read && !readable(c, entity, id)) {
        json_t *small = json_pack("{s:O,s:O}", "id", json_object_get(rec, "id"), "version",
                                  json_object_get(rec, "version"));
        json_decref(rec);
        rec = small;
    }
    rp_access_redact(c->access, entity, rec);
    return send_record(c, 200, rec);
}

static int do_patch(call_t *c, const char *entity, int64_t id)
{
    int64_t expect = if_match(c);
    if (expect < 0)
        return 0;
    json_t *body = body_object(c);
    if (!body)
        return 0;
    rp_error_t err = {0};
    bool could_read = c->access ? readable(c, entity, id) : true;
    int rc = rp_store_update(c->h->s, &c->ctx, entity, id, body, expect, NULL, &err);
    json_decref(body);
    if (rc)
        return store_problem(c, &err, false);
    wrote(c);
    return send_written(c, entity, id, could_read);
}

static int do_delete(call_t *c, const char *entity, int64_t id)
{
    if (check_if_match(c, entity, id))
        return 0;
    rp_error_t err = {0};
    if (rp_store_delete(c->h->s, &c->ctx, entity, id, &err))
        return store_problem(c, &err, false);
    wrote(c);
    return send_body(c, 204, NULL, "", 0);
}

static int do_restore(call_t *c, const char *entity, int64_t id)
{
    if (check_if_match(c, entity, id))
        return 0;
    rp_error_t err = {0};
    bool could_read = c->access ? readable(c, entity, id) : true;
    if (rp_store_restore(c->h->s, &c->ctx, entity, id, &err))
        return store_problem(c, &err, false);
    wrote(c);
    return send_written(c, entity, id, could_read);
}

/* {"create": [records], "update": [patches with id (and version)]}: all or nothing. */
static int do_bulk(call_t *c, const char *entity)
{
    json_t *body = body_object(c);
    if (!body)
        return 0;
    json_t *cr = json_object_get(body, "create"), *up = json_object_get(body, "update");
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v) {
        if (strcmp(k, "create") && strcmp(k, "update")) {
            problemf(c, 422, k, "a bulk body has \"create\" and \"update\" arrays, not "
                     "\"%s\"", k);
            json_decref(body); /* after: k is the body's */
            return 0;
        }
        if (!json_is_array(v)) {
            problemf(c, 422, k, "\"%s\" must be an array", k);
            json_decref(body);
            return 0;
        }
    }
    size_t nc = json_array_size(cr);
    if (nc + json_array_size(up) > (size_t)c->h->o.max_bulk) {
        size_t n = nc + json_array_size(up);
        json_decref(body);
        return problemf(c, 400, NULL, "RP-E%d: a bulk request of %zu records; the limit is %d "
                        "(http.max_bulk_items): send them in several requests", RP_C_CAP, n,
                        c->h->o.max_bulk);
    }
    if (nc + json_array_size(up) == 0) {
        json_decref(body);
        return problem(c, 422, "a bulk body needs records in \"create\" or \"update\"", NULL);
    }
    rp_store_t *s = c->h->s;
    rp_error_t err = {0};
    int64_t *ids = calloc(nc ? nc : 1, sizeof *ids);
    size_t failed = 0;
    const char *part = "create";
    int rc = ids ? rp_store_begin(s, &err) : rp_error_set(&err, RP_ENOMEM, 0, "out of memory");
    if (!rc && nc)
        rc = rp_store_create_many(s, &c->ctx, entity, cr, ids, &failed, &err);
    if (!rc && json_array_size(up)) {
        part = "update";
        rc = rp_store_update_many(s, &c->ctx, entity, up, &failed, &err);
    }
    if (!rc)
        rc = rp_store_commit(s, &err);
    else
        rp_store_rollback(s, NULL);
    if (rc) {
        json_decref(body);
        free(ids);
        /* "field" points into the body: /create/17/email. */
        char where[160];
        snprintf(where, sizeof where, "/%s/%zu%s%s", part, failed, err.field[0] ? "/" : "",
                 err.field);
        return problem(c, status_of(&err, false), err.msg, where);
    }
    wrote(c);
    json_t *created = json_array();
    for (size_t i = 0; i < nc; i++)
        json_array_append_new(created, json_integer(ids[i]));
    free(ids);
    json_t *out = json_pack("{s:o,s:I}", "created", created, "updated",
                            (json_int_t)json_array_size(up));
    json_decref(body);
    return send_json(c, 200, out);
}

static int do_events(call_t *c, const char *entity, int64_t id)
{
    rp_error_t err = {0};
    json_t *rec = NULL;
    if (rp_store_get_as(c->h->s, &c->ctx, entity, id, &rec, &err))
        return store_problem(c, &err, false);
    json_decref(rec);
    int64_t limit = 100, after = 0;
    if (param_int(c, "limit", 1000, &limit))
        return 0;
    const char *a = param(c, "after");
    if (a) {
        char *endp;
        after = strtoll(a, &endp, 10);
        if (*endp || endp == a || after < 0)
            return problemf(c, 400, "after", "after must be an event's seq, not \"%s\"", a);
    }
    rp_event_t *evs = calloc((size_t)limit, sizeof *evs);
    if (!evs)
        return problem(c, 500, "out of memory", NULL);
    int n = rp_events_for_record(c->h->s, entity, id, after, evs, (int)limit, &err);
    if (n < 0) {
        free(evs);
        return store_problem(c, &err, true);
    }
    json_t *data = json_array();
    for (int i = 0; i < n; i++) {
        /* Events with big changes cost their parsing here: the budget holds over it too. */
        if (i % 8 == 7 && rp_store_over_budget(c->h->s, &err)) {
            for (int k = i; k < n; k++)
                rp_event_clear(&evs[k]);
            free(evs);
            json_decref(data);
            return store_problem(c, &err, true);
        }
        json_t *ev = rp_event_json(&evs[i]);
        /* The user's view of it: hidden fields out of its changes. */
        if (ev && rp_access_event(c->h->s, c->access, ev, NULL) == 1)
            json_array_append_new(data, ev);
        else
            json_decref(ev);
        if (i < n - 1)
            rp_event_clear(&evs[i]);
    }
    int64_t last_seq = n ? evs[n - 1].seq : 0;
    if (n)
        rp_event_clear(&evs[n - 1]);
    char *next = NULL;
    if (n == limit && asprintf(&next, "%" PRId64, last_seq) < 0)
        next = NULL;
    free(evs);
    return send_page(c, data, next);
}

static int do_explain(call_t *c, const char *entity, int64_t id, const char *field)
{
    rp_error_t err = {0};
    json_t *out = NULL;
    if (rp_events_explain_as(c->h->s, &c->ctx, entity, id, field, &out, &err))
        return store_problem(c, &err, false);
    return send_json(c, 200, json_pack("{s:o}", "data", out));
}

static int do_search(call_t *c)
{
    const char *q = param(c, "q");
    if (!q || !*q)
        return problem(c, 400, "search needs q, the words to look for (/api/v1/search?q=…)",
                       "q");
    int64_t limit = 20;
    if (param_int(c, "limit", 1000, &limit))
        return 0;
    rp_error_t err = {0};
    json_t *out = NULL;
    if (rp_store_search_as(c->h->s, c->access, q, param(c, "entity"), (int)limit, &out, &err))
        return store_problem(c, &err, true);
    return send_json(c, 200, json_pack("{s:o}", "data", out));
}

static int do_health(call_t *c)
{
    return send_json(c, 200, json_pack("{s:s,s:s,s:I}", "status", "ok", "version", RP_VERSION,
                                       "last_event", (json_int_t)rp_events_last_seq(c->h->s)));
}

/* /api/v1/plugins/<name>/…: a plugin's own route, acting as the caller. */
static int do_plugin(call_t *c, const char *name)
{
    h2o_req_t *req = c->req;
    char path[512], method[16], *body = NULL;
    snprintf(path, sizeof path, "%.*s", (int)req->path_normalized.len, req->path_normalized.base);
    snprintf(method, sizeof method, "%.*s", (int)req->method.len, req->method.base);
    if (strcmp(method, "HEAD") == 0)
        snprintf(method, sizeof method, "GET"); /* h2o leaves out the body */
    size_t skip = strlen("/api/v1/plugins/") + strlen(name);
    const char *query = req->query_at == SIZE_MAX ? "" : NULL;
    char *q = query ? NULL : strndup(req->path.base + req->query_at + 1,
                                     req->path.len - req->query_at - 1);
    char *b = req->entity.base ? strndup(req->entity.base, req->entity.len) : NULL;
    rp_http_request_t r = {.method = method, .path = path, .sub = path + skip,
                           .query = q ? q : "", .body = b, .body_len = b ? req->entity.len : 0,
                           .user = json_string_value(json_object_get(c->who, "user")),
                           .role = json_string_value(json_object_get(c->who, "role")),
                           .ctx = &c->ctx};
    int status = 200;
    rp_error_t err = {0};
    int depth = rp_store_txn_depth(c->h->s);
    int rc = c->h->routes(c->h->routes_ud, name, &r, &status, &body, &err);
    if (rp_store_txn_depth(c->h->s) > depth) {
        /* A route that began and did not end: undo what it left open, answer 500. */
        while (rp_store_txn_depth(c->h->s) > depth)
            rp_store_rollback(c->h->s, NULL);
        say(c->h, "error", "plugin %s left a transaction open in %s %s: undone", name, method,
            path);
        if (!rc)
            rc = rp_error_set(&err, RP_ESTATE, RP_C_TXN, "plugin %s left a transaction open; "
                              "what it wrote was undone", name);
    }
    free(q);
    free(b);
    if (rc) {
        free(body);
        return rc == RP_ENOTFOUND && !err.msg[0]
                   ? problemf(c, 404, NULL, "plugin %s has no route %s %s", name, method,
                              r.sub)
                   : store_problem(c, &err, false);
    }
    if (status < 200 || status > 599)
        status = 500;
    wrote(c); /* a route may write whatever its method */
    send_body(c, status, body ? "application/json" : NULL, body ? body : "",
              body ? strlen(body) : 0);
    free(body);
    return 0;
}

/* ---- routing -------------------------------------------------------------------------- */

static int method_not_allowed(call_t *c, const char *allow)
{
    add_header(c, H2O_TOKEN_ALLOW, allow);
    char m[16];
    size_t n = c->req->method.len < sizeof m - 1 ? c->req->method.len : sizeof m - 1;
    memcpy(m, c->req->method.base, n);
    m[n] = '\0';
    return problemf(c, 405, NULL, "%s is not allowed here; allowed: %s", m, allow);
}

/* GET, or HEAD (h2o sends the head of the GET answer without its body). */
static bool method_get(const h2o_req_t *req)
{
    return method_is(req, "GET") || method_is(req, "HEAD");
}

static bool segment_id(const char *seg, int64_t *id)
{
    if (!*seg || strlen(seg) > 18)
        return false;
    for (const char *p = seg; *p; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    *id = strtoll(seg, NULL, 10);
    return *id > 0;
}

static int route(call_t *c)
{
    h2o_req_t *req = c->req;
    h2o_iovec_t p = req->path_normalized;
    char path[512];
    if (p.len >= sizeof path)
        return problem(c, 404, "no such path", NULL);
    /* "%00" decodes to a NUL, which would end the path early: /api/v1/pet%00x is not pet. */
    if (memchr(p.base, '\0', p.len))
        return problem(c, 400, "the path holds a NUL byte (%00), which no name has", NULL);
    memcpy(path, p.base, p.len);
    path[p.len] = '\0';
    if (parse_query(c))
        return 0;
    if (strcmp(path, "/health") == 0)
        return method_get(req) ? do_health(c) : method_not_allowed(c, "GET");
    if (strcmp(path, "/openapi.json") == 0) {
        if (!method_get(req))
            return method_not_allowed(c, "GET");
        /* Asked without a token, and some 160 ms to make for 300 entities of 60 fields: made
         * once per version of the registry. */
        rp_http_t *h = c->h;
        uint64_t gen = rp_store_schema_generation(h->s);
        if (!h->openapi_text || h->openapi_gen != gen) {
            rp_error_t err = {0};
            json_t *doc = rp__http_openapi(h->s, &err);
            if (!doc)
                return store_problem(c, &err, false);
            free(h->openapi_text);
            h->openapi_text = json_dumps(doc, JSON_COMPACT);
            h->openapi_gen = gen;
            json_decref(doc);
            if (!h->openapi_text)
                return problem(c, 500, "out of memory", NULL);
        }
        return send_body(c, 200, "application/json", h->openapi_text, strlen(h->openapi_text));
    }
    if (strncmp(path, "/api/v1/", 8) != 0)
        return problemf(c, 404, NULL, "no such path: %s (the API is under /api/v1/)", path);
    /* Segments after /api/v1/: entity [/ id|bulk [/ restore|events|explain [/ field]]]. */
    char *seg[5] = {0};
    int n = 0;
    for (char *save = NULL, *t = strtok_r(path + 8, "/", &save); t;
         t = strtok_r(NULL, "/", &save)) {
        if (n == 5)
            return problem(c, 404, "no such path", NULL);
        seg[n++] = t;
    }
    if (n == 0)
        return problem(c, 404, "no such path: name an entity, /api/v1/<entity>", NULL);
    if (n == 2 && strcmp(seg[0], "auth") == 0 && strcmp(seg[1], "login") == 0)
        return method_is(req, "POST") ? do_login(c) : method_not_allowed(c, "POST");
    if (authenticate(c))
        return 0;
    const char *entity = seg[0];
    if (n >= 2 && strcmp(entity, "plugins") == 0 && c->h->routes)
        return do_plugin(c, seg[1]);
    if (n == 1 && strcmp(entity, "search") == 0)
        return method_get(req) ? do_search(c) : method_not_allowed(c, "GET");
    if (!rp_store_has_entity(c->h->s, entity))
        return problemf(c, 404, NULL, "there is no entity \"%s\"", entity);
    if (n == 1)
        return method_get(req)    ? do_list(c, entity)
               : method_is(req, "POST") ? do_create(c, entity)
                                        : method_not_allowed(c, "GET, POST");
    if (n == 2 && strcmp(seg[1], "bulk") == 0)
        return method_is(req, "POST") ? do_bulk(c, entity) : method_not_allowed(c, "POST");
    int64_t id;
    if (!segment_id(seg[1], &id))
        return problemf(c, 404, NULL, "\"%s\" is not a record id", seg[1]);
    if (n == 2)
        return method_get(req)      ? do_get(c, entity, id)
               : method_is(req, "PATCH")  ? do_patch(c, entity, id)
               : method_is(req, "DELETE") ? do_delete(c, entity, id)
                                          : method_not_allowed(c, "GET, PATCH, DELETE");
    if (n == 3 && strcmp(seg[2], "restore") == 0)
        return method_is(req, "POST") ? do_restore(c, entity, id) : method_not_allowed(c, "POST");
    if (n == 3 && strcmp(seg[2], "events") == 0)
        return method_get(req) ? do_events(c, entity, id) : method_not_allowed(c, "GET");
    if (n == 4 && strcmp(seg[2], "explain") == 0)
        return method_get(req) ? do_explain(c, entity, id, seg[3])
                                     : method_not_allowed(c, "GET");
    return problem(c, 404, "no such path", NULL);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    call_t c = {.h = ((handler_t *)self)->h, .req = req};
    struct sockaddr_storage ss;
    socklen_t len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    if (len == 0 || h2o_socket_getnumerichost((struct sockaddr *)&ss, len, c.client) == SIZE_MAX)
        snprintf(c.client, sizeof c.client, "unknown");
    /* One IPv6 host has a whole /64 to itself: count its failures as one client's. */
    snprintf(c.key, sizeof c.key, "%s", c.client);
    if (len && ss.ss_family == AF_INET6) {
        const uint8_t *b = ((struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr;
        bool mapped = !memcmp(b, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12);
        if (!mapped)
            snprintf(c.key, sizeof c.key, "%02x%02x:%02x%02x:%02x%02x:%02x%02x::/64", b[0], b[1],
                     b[2], b[3], b[4], b[5], b[6], b[7]);
    }
    if (c.h->stopping) {
        problem(&c, 503, "the server is stopping", NULL);
        return 0;
    }
    if (req->entity.base && req->entity.len > c.h->o.max_body) {
        problemf(&c, 413, NULL, "the body is %zu bytes; the limit is %zu (http.max_body_bytes)",
                 req->entity.len, c.h->o.max_body);
        return 0;
    }
    /* An entity or field an admin added from another process is served at once. */
    rp_store_refresh(c.h->s);
    /* A request that may write joins the turn's group (reads meanwhile wait for it too).
     * Its reads, and the scripts it runs, stop at its time budget. */
    int64_t was = rp_store_set_deadline(c.h->s, mono_ms() + c.h->o.budget_ms);
    if ((method_is(req, "GET") || method_is(req, "HEAD") || group_begin(&c) == 0))
        route(&c);
    rp_store_set_deadline(c.h->s, was);
    rp_access_free(c.access);
    json_decref(c.who);
    json_decref(c.params);
    return 0;
}

/* ---- the listener --------------------------------------------------------------------- */

static void conn_closed(uv_handle_t *handle)
{
    conn_t *cn = (conn_t *)handle;
    cn->h->conns--;
    free(cn);
}

static void on_accept(uv_stream_t *listener, int status)
{
    rp_http_t *h = listener->data;
    if (status != 0)
        return;
    conn_t *cn = calloc(1, sizeof *cn);
    if (!cn)
        return;
    cn->h = h;
    uv_tcp_init(listener->loop, &cn->tcp);
    if (uv_accept(listener, (uv_stream_t *)&cn->tcp) != 0) {
        uv_close((uv_handle_t *)&cn->tcp, (uv_close_cb)free);
        return;
    }
    uv_tcp_nodelay(&cn->tcp, 1);
    h->conns++;
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&cn->tcp, conn_closed);
    h2o_accept(&h->actx, sock);
}

static void listener_closed(uv_handle_t *handle)
{
    (void)handle;
}

static int start(void *ud, uv_loop_t *loop, rp_error_t *err)
{
    rp_http_t *h = ud;
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } addr;
    int rc = strchr(h->host, ':') ? uv_ip6_addr(h->host, h->port, &addr.in6)
                                  : uv_ip4_addr(h->host, h->port, &addr.in4);
    if (rc)
        return rp_error_set(err, RP_EINVAL, 0, "listen: %s is not an IP address", h->host);
    h2o_context_init(&h->ctx, loop, &h->conf);
    h->ctx_ready = true;
    h->loop = loop;
    uv_check_init(loop, &h->check);
    h->check.data = h;
    h->check_ready = true;
    h->pend_tail = &h->pend;
    h->actx.ctx = &h->ctx;
    h->actx.hosts = h->conf.hosts;
    uv_tcp_init(loop, &h->listener);
    h->listener.data = h;
    h->listening = true;
    if ((rc = uv_tcp_bind(&h->listener, &addr.sa, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&h->listener, 511, on_accept)) != 0) {
        rp_error_set(err, RP_EIO, 0, "cannot listen on %s:%d: %s", h->host, h->port,
                     uv_strerror(rc));
        uv_close((uv_handle_t *)&h->listener, listener_closed);
        uv_close((uv_handle_t *)&h->check, NULL);
        h->check_ready = false;
        h->listening = false;
        uv_run(loop, UV_RUN_NOWAIT);
        h2o_context_dispose(&h->ctx);
        h->ctx_ready = false;
        uv_run(loop, UV_RUN_NOWAIT);
        return RP_EIO;
    }
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(&h->listener, (struct sockaddr *)&bound, &blen);
    h->bound_port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                      : ((struct sockaddr_in *)&bound)->sin_port);
    say(h, "info", "listening on %s%s%s:%d", strchr(h->host, ':') ? "[" : "", h->host,
        strchr(h->host, ':') ? "]" : "", h->bound_port);
    return 0;
}

static void on_drain_timer(uv_timer_t *t)
{
    (void)t;
}

static void stop(void *ud, uv_loop_t *loop)
{
    rp_http_t *h = ud;
    h->stopping = true; /* requests still arriving on open connections get 503 */
    group_end(h);
    if (h->check_ready) {
        uv_close((uv_handle_t *)&h->check, NULL);
        h->check_ready = false;
    }
    if (h->listening) {
        uv_close((uv_handle_t *)&h->listener, listener_closed);
        h->listening = false;
    }
    if (!h->ctx_ready)
        return;
    /* h2o 2.2 closes an HTTP/1 connection only when its request timeout fires (an idle
     * keep-alive one waits there for its next request): fire them all now, as often as needed
     * for connections that finish sending an answer first, for up to 2 s. */
    h->ctx.http1.req_timeout.timeout = 0;
    uv_timer_t t;
    uv_timer_init(loop, &t);
    int64_t until = mono_ms() + 2000;
    while ((h->conns > 0 || h->logins > 0) && mono_ms() < until) {
        uv_update_time(loop);
        h2o_timeout_run(loop, &h->ctx.http1.req_timeout, uv_now(loop));
        uv_timer_start(&t, on_drain_timer, 20, 0);
        uv_run(loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    if (h->conns > 0)
        say(h, "warn", "%d connection(s) still open at shutdown", h->conns);
    h2o_context_dispose(&h->ctx);
    h->ctx_ready = false;
}

/* ---- the object ----------------------------------------------------------------------- */

/* Splits "HOST:PORT" / "[V6]:PORT" into h->host and h->port. */
static int parse_listen(rp_http_t *h, const char *listen, rp_error_t *err)
{
    const char *colon = strrchr(listen, ':');
    const char *host = listen;
    size_t hlen = colon ? (size_t)(colon - listen) : 0;
    if (colon && *listen == '[' && colon > listen && colon[-1] == ']') {
        host = listen + 1;
        hlen -= 2;
    }
    char *endp;
    long port = colon ? strtol(colon + 1, &endp, 10) : -1;
    if (!colon || hlen == 0 || hlen >= sizeof h->host || colon[1] == '\0' || *endp ||
        port < 0 || port > 65535)
        return rp_error_set(err, RP_EINVAL, 0, "listen: \"%s\" is not HOST:PORT (such as "
                            "127.0.0.1:8080 or [::1]:8080)", listen);
    memcpy(h->host, host, hlen);
    h->host[hlen] = '\0';
    h->port = (int)port;
    return 0;
}

int rp_http_new(rp_store_t *s, rp_sched_t *e, const rp_http_opts_t *o, rp_http_t **out,
                rp_error_t *err)
{
    *out = NULL;
    rp_http_t *h = calloc(1, sizeof *h);
    if (!h)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    h->s = s;
    h->e = e;
    h->o = *o;
    if (!h->o.max_body)
        h->o.max_body = 1u << 20;
    if (h->o.req_timeout_ms <= 0)
        h->o.req_timeout_ms = 10000;
    if (h->o.auth_fails <= 0)
        h->o.auth_fails = 5;
    if (h->o.auth_window_s <= 0)
        h->o.auth_window_s = 60;
    if (h->o.budget_ms <= 0)
        h->o.budget_ms = 100;
    if (h->o.max_bulk <= 0)
        h->o.max_bulk = 1000;
    int rc = parse_listen(h, o->listen ? o->listen : "127.0.0.1:8080", err);
    if (rc) {
        free(h);
        return rc;
    }
    h2o_config_init(&h->conf);
    /* h2o refuses a body over its own limit with a plain-text 413 before we see it: let it
     * take up to four times ours (at least 1 MiB more), and answer what is over ours with a
     * problem document ourselves. */
    h->conf.max_request_entity_size = h->o.max_body * 4 > h->o.max_body + (1u << 20)
                                          ? h->o.max_body * 4
                                          : h->o.max_body + (1u << 20);
    h->conf.http1.req_timeout = (uint64_t)h->o.req_timeout_ms;
    h->conf.server_name = h2o_iovec_init(H2O_STRLIT("rapport"));
    h2o_hostconf_t *host = h2o_config_register_host(&h->conf,
                                                    h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pc = h2o_config_register_path(host, "/", 0);
    handler_t *hd = (handler_t *)h2o_create_handler(pc, sizeof *hd);
    hd->super.on_req = on_req;
    hd->h = h;
    rp_sched_attach(e, start, stop, h);
    *out = h;
    return 0;
}

void rp_http_set_routes(rp_http_t *h, rp_http_route_fn fn, void *ud)
{
    h->routes = fn;
    h->routes_ud = ud;
}

int rp_http_port(const rp_http_t *h)
{
    return h ? h->bound_port : 0;
}

void rp_http_free(rp_http_t *h)
{
    if (!h)
        return;
    rp_sched_attach(h->e, NULL, NULL, NULL);
    h2o_config_dispose(&h->conf);
    free(h->openapi_text);
    free(h);
}
