/*
 * server.c — the JSON API (see rapport/http.h) on h2o's HTTP/1.1, on the engine's libuv loop.
 *
 * h2o parses requests, keeps connections alive, pipelines, buffers a body up to the limit
 * (413 beyond) and drops a client that does not send its request in time. We route, check the
 * token, call the store, and answer JSON or application/problem+json. The writes of one loop
 * turn share one commit (the group), and their answers wait for it.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <h2o.h>
#include <uv.h>

#include "rapport/access.h"
#include "rapport/auth.h"
#include "rapport/db.h"
#include "rapport/events.h"
#include "rapport/http.h"

#include "http_internal.h"

void rp__http_say(rp_http_t *h, const char *level, const char *fmt, ...)
{
    if (!h->o.log)
        return;
    va_list ap;
    va_start(ap, fmt);
    rp_log_vto(h->o.log, h->o.log_ud, level, "http", fmt, ap);
    va_end(ap);
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
        rp__http_say(h, "error",
                     "a request left a transaction open: the group of writes is undone");
        while (rp_store_txn_depth(h->s) > 0)
            rp_store_rollback(h->s, NULL);
        rc = rp_error_set(&err, RP_ESTATE, RP_C_TXN, "a request left a transaction open");
    } else
        rc = rp_store_commit(h->s, &err);
    if (rc) {
        rp_store_rollback(h->s, NULL);
        rp__http_say(h, "error", "a group of writes could not be committed: %s", err.msg);
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
                rp__http_secure_headers(&c, "no-store");
                rp__http_problem(&c, 503, "the write could not be committed; nothing was stored",
                                 NULL);
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
        rp__http_store_problem(c, &err, false); /* 503, the database's words to the log */
        return -1;
    }
    h->group = true;
    uv_check_start(&h->check, on_check);
    return 0;
}


/* ---- routing -------------------------------------------------------------------------- */

static int method_not_allowed(call_t *c, const char *allow)
{
    rp__http_add_header(c, H2O_TOKEN_ALLOW, allow);
    char m[16];
    size_t n = c->req->method.len < sizeof m - 1 ? c->req->method.len : sizeof m - 1;
    memcpy(m, c->req->method.base, n);
    m[n] = '\0';
    return rp__http_problemf(c, 405, NULL, "%s is not allowed here; allowed: %s", m, allow);
}

/* GET, or HEAD (h2o sends the head of the GET answer without its body). */
static bool method_get(const h2o_req_t *req)
{
    return rp__http_method_is(req, "GET") || rp__http_method_is(req, "HEAD");
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
        return rp__http_problem(c, 404, "no such path", NULL);
    /* "%00" decodes to a NUL, which would end the path early: /api/v1/pet%00x is not pet. */
    if (memchr(p.base, '\0', p.len))
        return rp__http_problem(c, 400, "the path holds a NUL byte (%00), which no name has", NULL);
    memcpy(path, p.base, p.len);
    path[p.len] = '\0';
    if (rp__http_parse_query(c))
        return 0;
    if (strcmp(path, "/health") == 0)
        return method_get(req) ? rp__http_health(c) : method_not_allowed(c, "GET");
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
                return rp__http_store_problem(c, &err, false);
            /* The plugins' routes are all registered before the server starts. */
            if (h->route_docs) {
                h->route_docs(h->route_docs_ud, json_object_get(doc, "paths"));
                rp__http_openapi_path_params(json_object_get(doc, "paths"));
            }
            free(h->openapi_text);
            h->openapi_text = json_dumps(doc, JSON_COMPACT);
            h->openapi_gen = gen;
            json_decref(doc);
            if (!h->openapi_text)
                return rp__http_problem(c, 500, "out of memory", NULL);
        }
        return rp__http_send_body(c, 200, "application/json", h->openapi_text,
                                  strlen(h->openapi_text));
    }
    if (strncmp(path, "/api/v1/", 8) != 0)
        return rp__http_problemf(c, 404, NULL, "no such path: %s (the API is under /api/v1/)",
                                 path);
    /* Segments after /api/v1/: entity [/ id|bulk [/ restore|events|explain [/ field]]]. */
    char *seg[5] = {0};
    int n = 0;
    for (char *save = NULL, *t = strtok_r(path + 8, "/", &save); t;
         t = strtok_r(NULL, "/", &save)) {
        if (n == 5)
            return rp__http_problem(c, 404, "no such path", NULL);
        seg[n++] = t;
    }
    if (n == 0)
        return rp__http_problem(c, 404, "no such path: name an entity, /api/v1/<entity>", NULL);
    if (n == 2 && strcmp(seg[0], "auth") == 0 && strcmp(seg[1], "login") == 0)
        return rp__http_method_is(req, "POST") ? rp__http_login(c, false)
                                               : method_not_allowed(c, "POST");
    if (n == 2 && strcmp(seg[0], "auth") == 0 && strcmp(seg[1], "session") == 0 &&
        rp__http_method_is(req, "POST"))
        return rp__http_login(c, true);
    /* A plugin's public route (a gateway's signed callback) answers before any token. A write
     * sent by a browser from a page of another site is refused first, as a session's is: a
     * form there could sign its visitor in as the attacker (the portal's link token posted as
     * text/plain) or vote with its visitors. A server's callback sends no Origin. */
    char sub[512];
    bool writes = !rp__http_method_is(req, "GET") && !rp__http_method_is(req, "HEAD");
    if (n >= 2 && strcmp(seg[0], "plugins") == 0 && writes && !rp__http_same_origin(c))
        return rp__http_problem(c, 403, "this request comes from a page of another site (its "
                                "Origin header does not name this server)", "Origin");
    if (n >= 2 && strcmp(seg[0], "plugins") == 0 && c->h->routes) {
        /* What follows the plugin's name, where it stands in the path (doubled slashes and
         * all): the copy split into segments has the path's offsets. */
        size_t skip = (size_t)(seg[1] - path) + strlen(seg[1]);
        snprintf(sub, sizeof sub, "%.*s", (int)(p.len > skip ? p.len - skip : 0),
                 p.base + (p.len > skip ? skip : p.len));
        if (rp__http_plugin(c, seg[1], sub, true) == 0)
            return 0;
    }
    if (rp__http_authenticate(c))
        return 0;
    const char *entity = seg[0];
    if (n == 2 && strcmp(entity, "auth") == 0 && strcmp(seg[1], "session") == 0)
        return rp__http_method_is(req, "DELETE") ? rp__http_session_end(c)
                                                 : method_not_allowed(c, "POST, DELETE");
    if (n == 2 && strcmp(entity, "auth") == 0 && strcmp(seg[1], "me") == 0)
        return method_get(req) ? rp__http_me(c) : method_not_allowed(c, "GET");
    if (n >= 2 && strcmp(entity, "plugins") == 0 && c->h->routes)
        return rp__http_plugin(c, seg[1], sub, false);
    if (strcmp(entity, "admin") == 0)
        return rp__http_admin(c, seg + 1, n - 1);
    if (n == 1 && strcmp(entity, "search") == 0)
        return method_get(req) ? rp__http_search(c) : method_not_allowed(c, "GET");
    if (n == 1 && strcmp(entity, "schema") == 0)
        return method_get(req) ? rp__http_schema(c) : method_not_allowed(c, "GET");
    if (!rp_store_has_entity(c->h->s, entity))
        return rp__http_problemf(c, 404, NULL, "there is no entity \"%s\"", entity);
    if (n == 1)
        return method_get(req)    ? rp__http_list(c, entity)
               : rp__http_method_is(req, "POST") ? rp__http_create(c, entity)
                                        : method_not_allowed(c, "GET, POST");
    if (n == 2 && strcmp(seg[1], "aggregate") == 0)
        return method_get(req) ? rp__http_aggregate(c, entity) : method_not_allowed(c, "GET");
    if (n == 2 && strcmp(seg[1], "bulk") == 0)
        return rp__http_method_is(req, "POST") ? rp__http_bulk(c, entity)
                                               : method_not_allowed(c, "POST");
    int64_t id;
    if (!segment_id(seg[1], &id))
        return rp__http_problemf(c, 404, NULL, "\"%s\" is not a record id", seg[1]);
    if (n == 2)
        return method_get(req)      ? rp__http_get(c, entity, id)
               : rp__http_method_is(req, "PATCH")  ? rp__http_patch(c, entity, id)
               : rp__http_method_is(req, "DELETE") ? rp__http_delete(c, entity, id)
                                          : method_not_allowed(c, "GET, PATCH, DELETE");
    if (n == 3 && strcmp(seg[2], "restore") == 0)
        return rp__http_method_is(req, "POST") ? rp__http_restore(c, entity, id)
                                               : method_not_allowed(c, "POST");
    if (n == 3 && strcmp(seg[2], "events") == 0)
        return method_get(req) ? rp__http_events(c, entity, id) : method_not_allowed(c, "GET");
    if (n == 3 && strcmp(seg[2], "subject") == 0)
        return method_get(req) ? rp__http_subject(c, entity, id) : method_not_allowed(c, "GET");
    if (n == 4 && strcmp(seg[2], "explain") == 0)
        return method_get(req) ? rp__http_explain(c, entity, id, seg[3])
                                     : method_not_allowed(c, "GET");
    /* A plugin's view of every record: /api/v1/<entity>/<id>/timeline. */
    if (n == 3 && c->h->routes) {
        if (!method_get(req))
            return method_not_allowed(c, "GET");
        snprintf(sub, sizeof sub, "/%s/%s/%" PRId64, seg[2], entity, id);
        return rp__http_plugin(c, "*", sub, false);
    }
    return rp__http_problem(c, 404, "no such path", NULL);
}

/* Whether @p req asks for /health (any method: route() answers the wrong ones). */
static bool is_health(const h2o_req_t *req)
{
    return req->path_normalized.len == 7 && memcmp(req->path_normalized.base, "/health", 7) == 0;
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
    /* Every answer carries them, the refusals below included; an asset answer says its own
     * Cache-Control, an API answer is never kept (it may be a signed-in user's). */
    bool asset = rp__http_is_asset_path(c.h, req);
    rp__http_secure_headers(&c, asset ? NULL : "no-store");
    if (c.h->stopping) {
        rp__http_problem(&c, 503, "the server is stopping", NULL);
        return 0;
    }
    if (req->entity.base && req->entity.len > c.h->o.max_body) {
        rp__http_problemf(&c, 413, NULL,
                          "the body is %zu bytes; the limit is %zu (http.max_body_bytes)",
                          req->entity.len, c.h->o.max_body);
        return 0;
    }
    /* /health says the process answers, and touches no database: a probe polling it often
     * must cost nothing, and still be answered while the file is busy. */
    if (!asset && is_health(req)) {
        route(&c);
        json_decref(c.params);
        return 0;
    }
    /* A read runs in one snapshot: the token, the role, the schema check and the records
     * take the database's read lock once, not once each. Its first write (a token's use, a
     * security event, a plugin route's work) ends the snapshot before taking the write lock.
     * Inside an open group, reads see the group's own transaction instead. */
    bool reads = rp__http_method_is(req, "GET") || rp__http_method_is(req, "HEAD");
    rp_db_t *db = rp_store_db(c.h->s);
    if (reads && !asset && !c.h->group) {
        rp_error_t err = {0};
        if (rp_db_read_begin(db, &err)) {
            rp__http_store_problem(&c, &err, false);
            return 0;
        }
    }
    /* An entity or field an admin added from another process is served at once. */
    rp_store_refresh(c.h->s);
    /* A request that may write joins the turn's group (reads meanwhile wait for it too).
     * Its reads, and the scripts it runs, stop at its time budget. */
    int64_t was = rp_store_set_deadline(c.h->s, rp__http_mono_ms() + c.h->o.budget_ms);
    if (asset)
        rp__http_asset(&c);
    else if (reads || group_begin(&c) == 0)
        route(&c);
    rp_store_set_deadline(c.h->s, was);
    rp_db_read_end(db);
    if (!c.access_kept)
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
    /* A client that leaves while its answer is written (a live log's reader, above all) must
     * cost an EPIPE on that connection, not the process. */
    signal(SIGPIPE, SIG_IGN);
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
    rp__http_say(h, "info", "listening on %s%s%s:%d", strchr(h->host, ':') ? "[" : "", h->host,
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
    rp__http_admin_stop(h);
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
    int64_t until = rp__http_mono_ms() + 2000;
    while ((h->conns > 0 || h->logins > 0) && rp__http_mono_ms() < until) {
        uv_update_time(loop);
        h2o_timeout_run(loop, &h->ctx.http1.req_timeout, uv_now(loop));
        uv_timer_start(&t, on_drain_timer, 20, 0);
        uv_run(loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    if (h->conns > 0)
        rp__http_say(h, "warn", "%d connection(s) still open at shutdown", h->conns);
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
    if (h->o.session_idle_s <= 0)
        h->o.session_idle_s = 1800;
    if (h->o.session_max_s <= 0)
        h->o.session_max_s = 43200;
    if (h->o.heartbeat_ms <= 0)
        h->o.heartbeat_ms = 15000;
    int rc = parse_listen(h, o->listen ? o->listen : "127.0.0.1:8080", err);
    if (rc) {
        free(h);
        return rc;
    }
    if ((rc = rp__http_assets_builtin(h, err))) {
        rp__http_assets_free(h);
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

void rp_http_set_engine(rp_http_t *h, rp_http_engine_fn fn, void *ud)
{
    h->engine = fn;
    h->engine_ud = ud;
}

void rp_http_set_lua_ext(rp_http_t *h, const struct rp_lua_ext *ext)
{
    h->lua_ext = ext;
}

void rp_http_set_route_docs(rp_http_t *h, rp_http_docs_fn fn, void *ud)
{
    h->route_docs = fn;
    h->route_docs_ud = ud;
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
    rp__http_known_free(h);
    rp__http_admin_free(h);
    rp__http_assets_free(h);
    free(h);
}
