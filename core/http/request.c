/*
 * request.c — the HTTP API's answers and the parts of a request: JSON and problem documents
 * (held for the group's commit while one is open), the query string, headers and body.
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
#include "rapport/jsontext.h"

#include "http_internal.h"

#define MAX_PARAMS 256 /* parameters of one query string */

/* ---- answers -------------------------------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
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

void rp__http_add_header(call_t *c, const h2o_token_t *token, const char *value)
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

/* An answer's status, type and length. */
static void answer_head(h2o_req_t *req, int status, const char *ctype, size_t len)
{
    req->res.status = status;
    req->res.reason = reason(status);
    if (ctype)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ctype,
                       strlen(ctype));
    /* h2o_send_inline leaves the length unset, and h2o then closes the connection after any
     * answer but a 200 (it chunks only those): every 201 and every refusal cost the client a
     * new connection. A 304 or 204 has no body to measure. */
    if (status != 304 && status != 204)
        req->res.content_length = len;
}

int rp__http_send_body(call_t *c, int status, const char *ctype, const char *body, size_t len)
{
    h2o_req_t *req = c->req;
    answer_head(req, status, ctype, len);
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

static void owned_dispose(void *p)
{
    free(*(char **)p);
}

int rp__http_send_owned(call_t *c, int status, const char *ctype, char *body, size_t len)
{
    h2o_req_t *req = c->req;
    if (c->h->group) {
        rp__http_send_body(c, status, ctype, body, len);
        free(body);
        return 0;
    }
    char **slot = h2o_mem_alloc_shared(&req->pool, sizeof *slot, owned_dispose);
    *slot = body;
    answer_head(req, status, ctype, len);
    /* As h2o_send_inline, without its copy: the body is the pool's now, freed with it. */
    static h2o_generator_t generator = {NULL, NULL};
    h2o_start_response(req, &generator);
    h2o_iovec_t buf = h2o_iovec_init(body, len);
    if (h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD")))
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    else
        h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
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
int rp__http_problem(call_t *c, int status, const char *detail, const char *field)
{
    char *body = rp__http_problem_doc(status, detail, field);
    static const char fallback[] = "{\"title\":\"Internal Server Error\",\"status\":500}";
    rp__http_send_body(c, body ? status : 500, "application/problem+json", body ? body : fallback,
              body ? strlen(body) : sizeof fallback - 1);
    free(body);
    return 0;
}

int rp__http_problemf(call_t *c, int status, const char *field, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return rp__http_problem(c, status, msg, field);
}

/* The status a store error answers with; @p query: the error is about the request's own
 * parameters (a filter, an order), not about a record. */
int rp__http_status_of(const rp_error_t *err, bool query)
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

int rp__http_store_problem(call_t *c, const rp_error_t *err, bool query)
{
    int status = rp__http_status_of(err, query);
    if (status >= 500) {
        /* The database's own words (table names, SQL) are for the log, not for the client. */
        char what[300];
        snprintf(what, sizeof what, "%.*s %.*s", (int)c->req->method.len, c->req->method.base,
                 (int)c->req->path_normalized.len, c->req->path_normalized.base);
        rp__http_say(c->h, "error", "%s failed: %s", what, err->msg);
        return rp__http_problem(c, status,
                                status == 503 ? "the database could not do this now; the "
                                                "server's log has the detail"
                                              : "the server failed; its log has the "
                                                "detail",
                                NULL);
    }
    if (err->msgcode == RP_C_BUDGET)
        return rp__http_problemf(
            c, status, NULL,
            "RP-E%d: the request was stopped at its time budget "
            "of %d ms (http.request_budget_ms): ask for less (a narrower filter, "
            "fewer words or records)",
            RP_C_BUDGET, c->h->o.budget_ms);
    if (status == 403) {
        char what[300];
        snprintf(what, sizeof what, "%.*s %.*s", (int)c->req->method.len, c->req->method.base,
                 (int)c->req->path_normalized.len, c->req->path_normalized.base);
        rp__http_security_event(c, "access.denied",
                       json_pack("{s:s,s:s,s:s,s:s}", "client", c->client, "request", what,
                                 "reason", err->msg, "role",
                                 c->access ? rp_access_role(c->access) : ""));
    }
    return rp__http_problem(c, status, err->msg[0] ? err->msg : "the store failed", err->field);
}

/* Answers @p status with @p j (stolen). */
int rp__http_send_json(call_t *c, int status, json_t *j)
{
    size_t n = 0;
    char *body = j ? rp_json_text(j, &n) : NULL;
    json_decref(j);
    if (!body)
        return rp__http_problem(c, 500, "out of memory", NULL);
    return rp__http_send_owned(c, status, "application/json", body, n);
}

/* {"data": data, "next": next-or-null}; both stolen. */
int rp__http_send_page(call_t *c, json_t *data, char *next)
{
    json_t *page = json_pack("{s:o,s:o}", "data", data, "next",
                             next ? json_string(next) : json_null());
    free(next);
    return rp__http_send_json(c, 200, page);
}

/* The record with its version as ETag. */
int rp__http_send_record(call_t *c, int status, json_t *rec)
{
    json_t *v = json_object_get(rec, "version");
    if (json_is_integer(v)) {
        char etag[32];
        snprintf(etag, sizeof etag, "\"%" JSON_INTEGER_FORMAT "\"", json_integer_value(v));
        rp__http_add_header(c, H2O_TOKEN_ETAG, etag);
    }
    return rp__http_send_json(c, status, rec);
}

/* ---- the request ---------------------------------------------------------------------- */

bool rp__http_method_is(const h2o_req_t *req, const char *m)
{
    return req->method.len == strlen(m) && memcmp(req->method.base, m, req->method.len) == 0;
}

/* The value of header @p token as a string in the request's pool, or NULL. */
const char *rp__http_header(call_t *c, const h2o_token_t *token)
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
int rp__http_parse_query(call_t *c)
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
        return rp__http_problemf(c, 400, NULL,
                                 "RP-E%d: the query string has %zu parameters; the limit "
                                 "is %d",
                                 RP_C_CAP, n, MAX_PARAMS) -
               1;
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
                return rp__http_problem(c, 400,
                                        "the query string is not well formed: a % escape is "
                                        "malformed, decodes to NUL, or the text is not UTF-8",
                                        NULL) -
                       1;
            }
            if (json_object_get(c->params, k)) {
                json_decref(sv);
                rp__http_problemf(c, 400, k, "the query parameter \"%s\" is given twice", k);
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

const char *rp__http_param(call_t *c, const char *name)
{
    return json_string_value(json_object_get(c->params, name));
}

/* A positive integer parameter within [1, max]; *out keeps its default when absent. */
int rp__http_param_int(call_t *c, const char *name, int64_t max, int64_t *out)
{
    const char *v = rp__http_param(c, name);
    if (!v)
        return 0;
    char *endp;
    errno = 0;
    long long n = strtoll(v, &endp, 10);
    if (errno || *endp || endp == v || n < 1 || n > max)
        return rp__http_problemf(c, 400, name,
                                 "%s must be a whole number from 1 to %" PRId64 ", not "
                                 "\"%s\"",
                                 name, max, v) -
               1;
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
json_t *rp__http_body(call_t *c)
{
    char detail[600];
    int status;
    json_t *j =
        rp__http_body_object(rp__http_header(c, H2O_TOKEN_CONTENT_TYPE), c->req->entity.base,
                             c->req->entity.len, &status, detail, sizeof detail);
    if (!j)
        rp__http_problem(c, status, detail, NULL);
    return j;
}
