/*
 * http_internal.h — what the HTTP room's files share: the server object and one request as it is
 * handled (server.c routes and listens, request.c answers and reads requests, auth.c checks
 * tokens and passwords, handlers.c serves the routes), and the parts that need no connection:
 * how a request body becomes the JSON a write takes, how a refusal becomes a problem document
 * (shared with the fuzz target tests/fuzz/fuzz_http_body.c), and the OpenAPI document
 * (openapi.c).
 */
#ifndef RAPPORT_HTTP_INTERNAL_H
#define RAPPORT_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <h2o.h>
#include <jansson.h>
#include <uv.h>

#include "rapport/access.h"
#include "rapport/error.h"
#include "rapport/http.h"
#include "rapport/log.h"
#include "rapport/store.h"

#define FAILS_N 256  /* clients whose failed tokens are remembered */
#define USES_N 64    /* tokens whose last recorded use is remembered */
#define KNOWN_N 64   /* bearer tokens whose check is remembered (tokencache.c) */

/* A bearer token checked in a snapshot of the database: its user and access stand while the
 * file has not changed since (tokencache.c). */
typedef struct known_token {
    unsigned char key[32]; /* BLAKE2b of the token: the token itself is not kept */
    bool live;
    uint32_t version;      /* the snapshot's data version it was read in */
    int64_t expires_at;    /* the store's ms; 0: never */
    json_t *who;
    rp_access_t *access;
} known_token_t;

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
    known_token_t known[KNOWN_N];
    /* Group commit: the writes of one turn of the loop share a transaction, and their
     * answers wait for its commit. */
    uv_check_t check;
    bool check_ready;
    uv_loop_t *loop;
    int logins;         /* sign-ins being checked on the thread pool */
    bool stopping;
    rp_http_route_fn routes;
    void *routes_ud;
    rp_http_docs_fn route_docs; /* adds the extensions' routes to the OpenAPI document */
    void *route_docs_ud;
    bool group;
    pending_t *pend, **pend_tail;
    char *openapi_text;   /* the OpenAPI document, as made for registry generation openapi_gen */
    uint64_t openapi_gen;
    struct rp_http_bundle *bundles; /* the asset bundles served (assets.c) */
    int nbundles;
    struct rp_http_admin *admin; /* the live logs open (admin.c), or NULL */
    rp_http_engine_fn engine;    /* the plugins and scripts served (rp_http_set_engine) */
    const struct rp_lua_ext *lua_ext; /* the plugins' Lua functions, for the Lua line */
    void *engine_ud;
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
    char origin[32]; /* a record session's writes: its role's name ("portal"); else "api" */
    rp_ctx_t ctx;
    json_t *who;    /* the token's user, once checked */
    rp_access_t *access; /* what that user may do */
    bool access_kept;    /* access is the token cache's: not freed with the request */
    json_t *params; /* the query string, decoded: {name: value} */
    char session[64]; /* the session cookie's secret, once it let the request in; else "" */
} call_t;

/** The monotonic clock in milliseconds, for windows and budgets. */
static inline int64_t rp__http_mono_ms(void)
{
    return (int64_t)(uv_hrtime() / 1000000u);
}

/** Says @p fmt on @p h's log as component "http", at @p level ("info", "warn", "error"). */
void rp__http_say(rp_http_t *h, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- answers and the request (request.c) ---------------------------------------------- */

/** Adds header @p token: @p value (copied into the request's pool) to the answer of @p c. */
void rp__http_add_header(call_t *c, const h2o_token_t *token, const char *value);

/** Answers @p status with @p len bytes of @p body (copied) of type @p ctype (NULL: none); held
 *  until the commit while a group of writes is open. Returns 0. */
int rp__http_send_body(call_t *c, int status, const char *ctype, const char *body, size_t len);
/* As rp__http_send_body, taking @p body (malloc'd) instead of copying it. */
int rp__http_send_owned(call_t *c, int status, const char *ctype, char *body, size_t len);

/** Answers @p status with a problem document (RFC 9457) saying @p detail about @p field
 *  (NULL: none). Returns 0 — the request is answered — so a route handler can return it;
 *  a step that reports "answered, stop" as -1 returns it minus one (auth.c does). */
int rp__http_problem(call_t *c, int status, const char *detail, const char *field);

/** rp__http_problem() with a detail made from @p fmt. */
int rp__http_problemf(call_t *c, int status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** The status a store error answers with; @p query: the error is about the request's own
 *  parameters (a filter, an order), not about a record. */
int rp__http_status_of(const rp_error_t *err, bool query);

/** Answers the store error @p err as a problem; a failure of the database itself answers 503
 *  and its words go to the log. Returns -1. */
int rp__http_store_problem(call_t *c, const rp_error_t *err, bool query);

/** Answers @p status with @p j (stolen). */
int rp__http_send_json(call_t *c, int status, json_t *j);

/** Answers {"data": data, "next": next-or-null}; both stolen. */
int rp__http_send_page(call_t *c, json_t *data, char *next);

/** Answers @p status with the record @p rec (stolen), its version as ETag. */
int rp__http_send_record(call_t *c, int status, json_t *rec);

/** Whether @p req's method is @p m. */
bool rp__http_method_is(const h2o_req_t *req, const char *m);

/** The value of header @p token in @p c's request (NUL-ended, in its pool), or NULL. */
const char *rp__http_header(call_t *c, const h2o_token_t *token);

/** Decodes the query string into c->params; answers 400 itself and returns -1 on a bad one. */
int rp__http_parse_query(call_t *c);

/** Query parameter @p name (borrowed from c->params), or NULL. */
const char *rp__http_param(call_t *c, const char *name);

/** A positive integer parameter within [1, max]; *out keeps its default when absent. Answers
 *  400 itself and returns -1 on a bad one. */
int rp__http_param_int(call_t *c, const char *name, int64_t max, int64_t *out);

/** The body as a JSON object (owned); answers 415/400/422 itself and returns NULL. */
json_t *rp__http_body(call_t *c);

/* ---- who asks (auth.c) ---------------------------------------------------------------- */

/** Appends the security event @p type with @p payload (stolen) for @p c's client. */
void rp__http_security_event(call_t *c, const char *type, json_t *payload);

/** Who the bearer token is; answers 401/429 itself and returns -1 when it lets no one in. */
int rp__http_authenticate(call_t *c);
/* Whether @p c's Origin header, when it has one, names this server (auth.c). */
bool rp__http_same_origin(call_t *c);

/** POST /api/v1/auth/login (a token), or with @p session POST /api/v1/auth/session (a
 *  cookie): checks the password on the thread pool and answers later. */
int rp__http_login(call_t *c, bool session);

/* ---- sessions and the browser (session.c) ---------------------------------------------- */

/** Adds the security headers every answer carries, and Cache-Control: @p cache (NULL: none). */
void rp__http_secure_headers(call_t *c, const char *cache);

/** The value of request header @p name (lower case; NUL-ended, in the pool), or NULL. */
const char *rp__http_header_named(call_t *c, const char *name);

/** Whether the request carries cookie @p name with a value of under @p cap bytes, then copied
 *  to @p out. */
bool rp__http_cookie(call_t *c, const char *name, char *out, size_t cap);

/** Answers a checked sign-in of @p user with a new session: its cookie, 201 {user, role, csrf,
 *  session_id, expires_in_s, idle_s}. */
int rp__http_session_open(call_t *c, const char *user);

/** Tells the browser to drop its session cookie. */
/** Sets the session cookie to @p secret for @p max_age_s seconds (a plugin's record session). */
void rp__http_session_set_cookie(call_t *c, const char *secret, int64_t max_age_s);

void rp__http_session_clear_cookie(call_t *c);

/** DELETE /api/v1/auth/session: ends the session the request came with (204). */
int rp__http_session_end(call_t *c);

/** GET /api/v1/auth/me: who is asking {user, role, team, via}, and a session's csrf. */
int rp__http_me(call_t *c);

/* ---- static files (assets.c) ----------------------------------------------------------- */

/** Serves the web/ folder compiled into the binary: one bundle per folder (/console/, …). */
int rp__http_assets_builtin(rp_http_t *h, rp_error_t *err);

/** Frees the bundles' bookkeeping (never the files of a caller's table). */
void rp__http_assets_free(rp_http_t *h);

/** Whether @p req's path is under an asset bundle's prefix (or is one without its slash). */
bool rp__http_is_asset_path(rp_http_t *h, const h2o_req_t *req);

/** Answers a request under an asset prefix: the file, 304, a redirect to the prefix, or 404. */
int rp__http_asset(call_t *c);

/* ---- the routes (handlers.c) ---------------------------------------------------------- */

/** GET /api/v1/<entity>: a page of records (filters, order, cursor, fields). */
int rp__http_list(call_t *c, const char *entity);
/** POST /api/v1/<entity>. */
int rp__http_create(call_t *c, const char *entity);
/** GET /api/v1/<entity>/aggregate: grouped aggregates (rp_store_aggregate). */
int rp__http_aggregate(call_t *c, const char *entity);
/** GET /api/v1/<entity>/<id>. */
int rp__http_get(call_t *c, const char *entity, int64_t id);
/** PATCH /api/v1/<entity>/<id> (If-Match: "<version>"). */
int rp__http_patch(call_t *c, const char *entity, int64_t id);
/** DELETE /api/v1/<entity>/<id>. */
int rp__http_delete(call_t *c, const char *entity, int64_t id);
/** POST /api/v1/<entity>/<id>/restore. */
int rp__http_restore(call_t *c, const char *entity, int64_t id);
/** POST /api/v1/<entity>/bulk: create and update many, all or nothing. */
int rp__http_bulk(call_t *c, const char *entity);
/** GET /api/v1/<entity>/<id>/events: the record's history. */
int rp__http_events(call_t *c, const char *entity, int64_t id);
/** GET /api/v1/<entity>/<id>/explain/<field>. */
int rp__http_explain(call_t *c, const char *entity, int64_t id, const char *field);

/** GET /api/v1/<entity>/<id>/subject: everything about the record, as the caller may read it,
 *  answered as an attachment. */
int rp__http_subject(call_t *c, const char *entity, int64_t id);
/** GET /api/v1/search. */
int rp__http_search(call_t *c);
/** GET /api/v1/schema: the entities and fields the caller may read, and what it may do
 *  (schema.c). */
int rp__http_schema(call_t *c);
/** GET /health. */
int rp__http_health(call_t *c);
/** /api/v1/plugins/<name>/…: a plugin's own route, acting as the caller. */
int rp__http_plugin(call_t *c, const char *name, const char *sub, bool anonymous);

/* ---- the engine room (admin.c, admin_eval.c) ------------------------------------------ */

/** Whether the caller is an admin: a user (not a record's session) whose role is "admin". */
bool rp__http_is_admin(call_t *c);
/** /api/v1/admin/<seg…> (@p n segments): 403 for anyone but an admin. */
int rp__http_admin(call_t *c, char **seg, int n);
/** The routes of admin_eval.c: eval, settings, users, tokens. */
int rp__http_admin_more(call_t *c, char **seg, int n);
/** Ends the live logs open (the server stops) and closes their timer. */
void rp__http_admin_stop(rp_http_t *h);
void rp__http_admin_free(rp_http_t *h);
/** Ends the live logs opened with the session of @p secret (it was signed out). */
void rp__http_admin_session_ended(rp_http_t *h, const char *secret);
/** GET admin/engine: the plugins and scripts; with @p reload (POST admin/scripts/reload) the
 *  edited scripts are reloaded first (admin_rules.c). */
int rp__http_admin_engine(call_t *c, bool reload);
/** POST admin/scripts/test: the scripts' tests, run in a child process; answered when done. */
int rp__http_admin_tests(call_t *c);
/** Stops a test run under way (the server stops): its answer is dropped. */
void rp__http_admin_tests_stop(rp_http_t *h);

/* ---- without a connection ----------------------------------------------------------- */

/**
 * Parses the @p len bytes at @p body, sent with the Content-Type header @p ctype (NULL: none),
 * as a write's body: a JSON object. Returns it (owned: json_decref), or NULL with *status
 * (415: not JSON by its type; 400: empty or malformed; 422: JSON but not an object) and a
 * sentence saying what is wrong in the @p cap bytes at @p detail.
 */
json_t *rp__http_body_object(const char *ctype, const char *body, size_t len, int *status,
                             char *detail, size_t cap);

/**
 * The problem document (RFC 9457) answering @p status with @p detail and, when not NULL or
 * empty, @p field. An "RP-Ennnn: " in @p detail (at its start or after a batch's "record N: ")
 * becomes "code". Returns compact JSON text (owned: free()), or NULL when out of memory.
 */
char *rp__http_problem_doc(int status, const char *detail, const char *field);

/**
 * The OpenAPI 3 document of the API for the entities of @p s (owned: json_decref), or NULL
 * with @p err filled when the registry cannot be read.
 */
json_t *rp__http_openapi(rp_store_t *s, rp_error_t *err);
/* Declares, at each path's level, the {name} parameters of @p paths (an OpenAPI "paths"
 * object) that it and its operations do not (openapi.c). */
void rp__http_openapi_path_params(json_t *paths);

/* ---- tokencache.c ---- */
/** The remembered check of bearer @p token, when the snapshot open now has the version it was
 *  read in and the token has not expired: c->who (a new reference) and c->access (the
 *  cache's, c->access_kept) set, true. Otherwise false and nothing set. */
bool rp__http_known_token(call_t *c, const char *token);
/** Remembers c->who and c->access for bearer @p token, when the snapshot they were read in is
 *  still open (no write ended it); c->access becomes the cache's. */
void rp__http_know_token(call_t *c, const char *token);
/** Forgets every remembered token (the server's end). */
void rp__http_known_free(rp_http_t *h);

#endif
