/*
 * http.h — the JSON API over HTTP/1.1 (h2o on libuv), served on the engine's own loop so one
 * thread runs requests, jobs and event handlers in turn.
 *
 *   GET /health                          no token needed
 *   GET /openapi.json                    no token needed; generated from the entity registry
 *   GET|POST /api/v1/<entity>            list (filters, order, cursor, fields) | create
 *   POST /api/v1/<entity>/bulk           create and update many, all or nothing
 *   GET|PATCH|DELETE /api/v1/<entity>/<id>   (PATCH honours If-Match: "<version>")
 *   POST /api/v1/<entity>/<id>/restore
 *   GET /api/v1/<entity>/<id>/events     the record's history
 *   GET /api/v1/<entity>/<id>/explain/<field>
 *   GET /api/v1/search?q=…[&entity=…][&limit=…]
 *   POST /api/v1/auth/login              no token needed: {"user", "password", "expires"}
 *   POST|DELETE /api/v1/auth/session     a browser's sign-in into an HttpOnly cookie | sign-out
 *   GET /api/v1/auth/me                  who is asking (a session's CSRF token too)
 *   GET /<prefix>/…                      files compiled in (web/: /console/, /portal/,
 *                                        /shared/) or a plugin's (rp_http_add_assets)
 *   * /api/v1/plugins/<plugin>/…         a plugin's own routes (rp_http_set_routes)
 *   * /api/v1/admin/…                    the console's engine room, for the role admin only
 *                                        (the live event log is a stream of server-sent events)
 *
 * Every other /api/v1 request needs "Authorization: Bearer <token>" (rapport tokens create),
 * or else the session cookie rp_session (and, unless GET or HEAD, the session's CSRF token in
 * X-CSRF-Token: 403 without), and acts with the token's or session's role (rapport/access.h).
 * Every answer carries the security headers (a CSP without inline script, frame denial, no
 * referrer, nosniff), and an API answer Cache-Control: no-store. Errors are application/problem+json
 * (RFC 9457) with "status", "title", "detail", and "field" and "code" when known. A client
 * whose tokens or passwords fail repeatedly is answered 429 with Retry-After. The writes of
 * one loop turn share one commit, and every answer waits for it.
 *
 * No request holds the loop for long: each has a time budget (budget_ms) at which its reads
 * and the scripts it runs stop, and its size is capped where the work grows with it (words of
 * a search, conditions of a filter, records of a bulk request): beyond, 400 naming the limit.
 * A failure of the database itself answers 503 without its internals (they go to the log).
 */
#ifndef RAPPORT_HTTP_H
#define RAPPORT_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "rapport/error.h"
#include "rapport/sched.h"
#include "rapport/store.h"

typedef struct rp_http rp_http_t;

typedef struct rp_http_opts {
    const char *listen;  /**< "HOST:PORT": "127.0.0.1:8080", "[::1]:8080"; port 0 = any free. */
    size_t max_body;     /**< Largest request body in bytes (413 beyond); 0 = 1 MiB. */
    int req_timeout_ms;  /**< A request must arrive whole within this (slow clients are
                              dropped); 0 = 10000. */
    int auth_fails;      /**< Failed tokens from one client before it is answered 429; 0 = 5. */
    int auth_window_s;   /**< ... within this many seconds, also how long the 429 lasts;
                              0 = 60. */
    int budget_ms;       /**< The time one request may hold the loop: its reads, and the
                              scripts its writes run, stop at it (400, RP-E1704); 0 = 100. */
    int max_bulk;        /**< Records in one bulk request (400, RP-E1703, beyond); 0 = 1000. */
    rp_log_fn log;       /**< Where notable things are said (may be NULL). */
    void *log_ud;
    int session_idle_s;  /**< A session unused this long ends (http.session_idle_s);
                              0 = 1800. */
    int session_max_s;   /**< A session ends this long after its sign-in, used or not
                              (http.session_max_s); 0 = 43200. */
    bool cookie_secure;  /**< Session cookies carry Secure (http.cookie_secure): set it when a
                              TLS proxy is in front, as the browser then sends them only over
                              HTTPS. */
    int heartbeat_ms;    /**< A live log's heartbeat (http.live_heartbeat_ms), when its reader is
                              also checked again; 0 = 15000. */
} rp_http_opts_t;

/**
 * Makes a server for @p s and attaches it to @p e: it listens from the moment
 * rp_sched_serve() starts the loop (a port that cannot be bound fails that call) and closes
 * when it stops. @p o is copied. RP_EINVAL for a malformed listen address.
 */
int rp_http_new(rp_store_t *s, rp_sched_t *e, const rp_http_opts_t *o, rp_http_t **out,
                rp_error_t *err);

/**
 * A request to an extension's route: /api/v1/plugins/<name>/<sub…>, from a signed-in user;
 * or, with @p anonymous, before any token is asked for (only the extension's public routes
 * answer it: RP_ENOTFOUND sends the request on to the token check); or, with the name "*",
 * a record's own route /api/v1/<entity>/<id>/<view> as sub "/<view>/<entity>/<id>".
 */
/** Where a route leaves the browser session it started or ended (api->session_start, _end):
 *  the HTTP layer sets or clears the session cookie on the answer. */
typedef struct rp_http_session_out {
    char *secret;   /**< A session's secret to set as the cookie (owned: free()), or NULL. */
    int64_t max_s;  /**< The cookie's lifetime, with secret. */
    bool clear;     /**< Remove the cookie (the session was ended). */
} rp_http_session_out_t;

/** What a route answers instead of JSON (api->reply_bytes): the HTTP layer sends it as a
 *  download. All owned (free()); data NULL when the route answered JSON. */
typedef struct rp_http_reply_out {
    char *ctype;    /**< One of a short list of types that do not run, else octet-stream. */
    char *filename; /**< Without a path or control characters, at most 200 bytes. */
    char *data;
    size_t len;
} rp_http_reply_out_t;

typedef struct rp_http_request {
    const char *method;
    const char *path;     /**< The whole path. */
    const char *sub;      /**< After /api/v1/plugins/<name>: "/balance/42", or "". */
    const char *query;    /**< Without "?", or "". */
    const char *body;     /**< NUL-ended copy of the body, or NULL. */
    size_t body_len;
    const char *user, *role;
    const rp_ctx_t *ctx;  /**< The caller's context (actor user:<name>, their access). */
    bool anonymous;       /**< No token shown yet: only a public route may answer. */
    int nheaders;
    const char *const *header_names, *const *header_values; /**< lower-case names */
    const char *client;   /**< The peer's address. */
    const char *subject;  /**< A record session's principal ("contact:42"), or NULL. */
    const char *session;  /**< The session cookie's secret that let the request in, or NULL. */
    int64_t session_max_s; /**< How long a session this server opens lasts, in seconds. */
    rp_http_session_out_t *session_out; /**< Where a route leaves a session it opened/ended. */
    rp_http_reply_out_t *reply_out; /**< Where a route leaves a file it answers with, or NULL. */
} rp_http_request_t;

/**
 * Answers extension @p name's route for @p req: 0 with *status and *body (JSON text, owned:
 * free(), or NULL); RP_ENOTFOUND (with @p err) when it has no such route; another RP_E* code
 * (with @p err) for a failure, answered as a problem.
 */
typedef int (*rp_http_route_fn)(void *ud, const char *name, const rp_http_request_t *req,
                                int *status, char **body, rp_error_t *err);

/** Routes /api/v1/plugins/… to @p fn (the plugin host: rp_plugins_route). */
void rp_http_set_routes(rp_http_t *h, rp_http_route_fn fn, void *ud);

/**
 * What the engine room (/api/v1/admin/…) shows of the engine that serves: @p fn answers a new
 * object (owned) {"plugins": rp_plugins_describe(), "scripts": rp_scripts_describe(),
 * "script_dirs": [folders, in load order], "given_dirs": [the folders it was given, the
 * default rules' first]}, first reloading the edited scripts when @p reload.
 */
typedef json_t *(*rp_http_engine_fn)(void *ud, bool reload);
void rp_http_set_engine(rp_http_t *h, rp_http_engine_fn fn, void *ud);

struct rp_lua_ext;
/** The plugins' Lua functions (crm.<plugin>.…) for the engine room's Lua line (borrowed; they
 *  must outlive the server), or NULL. */
void rp_http_set_lua_ext(rp_http_t *h, const struct rp_lua_ext *ext);

/** Adds the extensions' routes to the "paths" object of the OpenAPI document. */
typedef void (*rp_http_docs_fn)(void *ud, json_t *paths);

/** Has @p fn add the extensions' routes to GET /openapi.json (the plugin host:
 *  rp_plugins_openapi). */
void rp_http_set_route_docs(rp_http_t *h, rp_http_docs_fn fn, void *ud);

/** One file of an asset bundle. Borrowed: static data, or valid until rp_http_free(). */
typedef struct rp_http_asset {
    const char *path;          /**< Under the bundle's prefix: "index.html", "app/main.js". */
    const unsigned char *data; /**< Its bytes. */
    size_t len;
} rp_http_asset_t;

/**
 * Serves the @p n files of @p files under @p prefix ("/console/": a slash, one or more
 * segments of [a-z0-9_-], a slash) to anyone, with GET or HEAD: the type from the name's
 * extension, an ETag (If-None-Match answers 304), Cache-Control: no-cache, the security
 * headers; "PREFIX" and "PREFIX/" answer its index.html; anything not in the table is 404 (no
 * listing, and a path that is not already in its normal form — "..", "%2e", "%2f", "//" — is
 * never looked up). @p owner (may be NULL) names who added it. RP_EINVAL for a malformed
 * prefix or file name, RP_ECONFLICT for a prefix already served or one the API
 * answers (/api/, /health, /openapi.json).
 */
int rp_http_add_assets(rp_http_t *h, const char *prefix, const rp_http_asset_t *files, int n,
                       const char *owner, rp_error_t *err);

/** The port listened on, once serving (useful with port 0); 0 before. */
int rp_http_port(const rp_http_t *h);

/** Detaches and frees @p h (NULL is fine). Call after rp_sched_serve() has returned. */
void rp_http_free(rp_http_t *h);

#endif
