/*
 * auth.c — who asks the HTTP API: the bearer token checked, failures counted per client (429
 * once there are too many), and sign-in with a password on the thread pool.
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
#include "rapport/session.h"

#include "http_internal.h"

#define TOKEN_USE_EVERY_MS 60000

/* ---- authentication ------------------------------------------------------------------- */

/* The failures counted against @p addr; with @p make, a slot for it, taken from the client
 * counted longest ago that is neither slowed down nor signing in (a flood of new addresses
 * must not free the blocked ones). */
static client_fails_t *fails_of(rp_http_t *h, const char *addr, bool make)
{
    int64_t now = rp__http_mono_ms();
    client_fails_t *oldest = NULL;
    for (int i = 0; i < FAILS_N; i++) {
        client_fails_t *f = &h->fails[i];
        /* Asked on every request: the first byte rules most slots out without a call. */
        if (f->addr[0] == addr[0] && strcmp(f->addr, addr) == 0)
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

void rp__http_security_event(call_t *c, const char *type, json_t *payload)
{
    rp_ctx_t ctx = {.actor = c->who ? c->actor : "anonymous", .origin = "api"};
    rp_error_t err = {0};
    if (rp_events_emit(c->h->s, &ctx, type, NULL, 0, payload, NULL, &err))
        rp__http_say(c->h, "error", "cannot log %s: %s", type, err.msg);
    json_decref(payload);
}

/* -1 (answered 429 with Retry-After) while @p c's client is slowed down after failures. */
static int throttled(call_t *c)
{
    rp_http_t *h = c->h;
    int64_t now = rp__http_mono_ms();
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
        rp__http_add_header(c, H2O_TOKEN_RETRY_AFTER, secs);
        return rp__http_problemf(c, 429, NULL,
                                 "too many failed sign-ins from %s; try again in %s s", c->client,
                                 secs) -
               1;
    }
    return 0;
}

/* Counts a failure (or, for a sign-in, an attempt: it is taken back if the password was
 * right) for @p c's client, and slows the client down at the limit (auth.throttled). */
static client_fails_t *bump(call_t *c)
{
    rp_http_t *h = c->h;
    int64_t now = rp__http_mono_ms();
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
        rp__http_security_event(c, "auth.throttled",
                       json_pack("{s:s,s:i,s:i}", "client", c->client, "failures", f->count,
                                 "seconds", h->o.auth_window_s));
        rp__http_say(h, "warn", "client %s throttled for %d s after %d failed sign-ins", c->client,
            h->o.auth_window_s, f->count);
    }
    return f;
}

static void refused(call_t *c, const char *why, const char *user, int count)
{
    rp__http_security_event(c, "auth.refused",
                   json_pack("{s:s,s:s,s:i,s:s?}", "client", c->client, "reason", why,
                             "failures", count, "user", user));
}

/* A failed token from @p c's client: counted, and in the log as auth.refused. */
static void failed(call_t *c, const char *why, const char *user)
{
    client_fails_t *f = bump(c);
    refused(c, why, user, f->count);
}

/* The user and access of @p c, from c->who: 0, or -1 (answered). */
static int take_access(call_t *c)
{
    rp_error_t err = {0};
    const char *kind = json_string_value(json_object_get(c->who, "kind"));
    if (kind && strcmp(kind, "record") == 0) {
        /* A record's session (a contact through the portal) acts with its role's links, as
         * `rapport --as contact:42` does; it is never a user. */
        const char *who = json_string_value(json_object_get(c->who, "principal"));
        snprintf(c->actor, sizeof c->actor, "record:%s", who);
        if (rp_access_of_subject(c->h->s, who,
                                 json_string_value(json_object_get(c->who, "role")), &c->access,
                                 &err)) {
            c->session[0] = '\0';
            return rp__http_problem(c, 401, err.msg, NULL) - 1;
        }
        /* Its writes say where they came from: the role it acts with ("portal"), so rules
         * can tell a customer's own ticket from one staff opened through the API. */
        snprintf(c->origin, sizeof c->origin, "%s",
                 json_string_value(json_object_get(c->who, "role")) ?: "api");
        c->ctx = (rp_ctx_t){.actor = c->actor, .origin = c->origin, .access = c->access};
        return 0;
    }
    const char *user = json_string_value(json_object_get(c->who, "user"));
    snprintf(c->actor, sizeof c->actor, "user:%s", user);
    /* Set already when the token's check was remembered (tokencache.c). */
    if (!c->access && rp_access_load(c->h->s, user, json_string_value(json_object_get(c->who, "role")),
                       json_string_value(json_object_get(c->who, "team")), &c->access, &err))
        return rp__http_store_problem(c, &err, false) - 1;
    c->ctx = (rp_ctx_t){.actor = c->actor, .origin = "api", .access = c->access};
    return 0;
}

/* Whether a write's Origin header, when it has one, names this server (the authority the
 * request was sent to): a second wall beside the CSRF token and SameSite, for a browser that
 * sends the cookie on a cross-site request after all. "null" (a sandboxed frame, a file) is
 * another site too. */
bool rp__http_same_origin(call_t *c)
{
    const char *o = rp__http_header_named(c, "origin");
    if (!o)
        return true;
    const char *sep = strstr(o, "://");
    const h2o_iovec_t *a = &c->req->authority;
    if (!sep || (strncmp(o, "http://", 7) != 0 && strncmp(o, "https://", 8) != 0))
        return false;
    const char *host = sep + 3;
    return strlen(host) == a->len && a->len > 0 && strncasecmp(host, a->base, a->len) == 0;
}

/* Who the session cookie in c->session is, and, for a request that may write, whether it
 * shows the session's CSRF token: a page of another site can make the browser send the
 * cookie, never read the token. An ended session is not counted as a guess (the browser
 * sends the cookie it kept by itself); an unknown one is. */
static int session_authenticate(call_t *c)
{
    rp_http_t *h = c->h;
    rp_error_t err = {0};
    if (rp_sessions_check(h->s, c->session, (int64_t)h->o.session_idle_s * 1000, &c->who,
                          &err)) {
        c->session[0] = '\0';
        bool guess = strstr(err.msg, "unknown session") || strstr(err.msg, "not a Rapport");
        if (guess)
            failed(c, "unknown session", NULL);
        if (rp__http_status_of(&err, false) == 503)
            return rp__http_store_problem(c, &err, false) - 1;
        /* Only a cookie that was never ours is removed. An ended session's may have been
         * sent just before the answer that ended it set a new one (a password change opens
         * the session again): a removal on this answer could land after that cookie and sign
         * the browser out. The ended cookie stays refused, and expires with its Max-Age. */
        if (guess)
            rp__http_session_clear_cookie(c);
        return rp__http_problem(c, 401, err.msg, NULL) - 1;
    }
    bool writes = !rp__http_method_is(c->req, "GET") && !rp__http_method_is(c->req, "HEAD");
    if (writes && !rp__http_same_origin(c))
        return rp__http_problem(c, 403,
                                "this request is signed in with a session cookie but comes from "
                                "another site (its Origin header does not name this server)",
                                "Origin") -
               1;
    if (writes &&
        !rp_session_csrf_ok(c->session, rp__http_header_named(c, "x-csrf-token")))
        return rp__http_problem(c, 403,
                                "this request is signed in with a session cookie but does not "
                                "carry the session's CSRF token: send it in the X-CSRF-Token "
                                "header (the sign-in's answer and GET /api/v1/auth/me give it)",
                                "X-CSRF-Token") -
               1;
    return take_access(c);
}

/* Who the bearer token is; answers 401/429 itself and returns -1 when it lets no one in. */
int rp__http_authenticate(call_t *c)
{
    rp_http_t *h = c->h;
    int64_t now = rp__http_mono_ms();
    if (throttled(c))
        return -1;
    const char *auth = rp__http_header(c, H2O_TOKEN_AUTHORIZATION);
    /* A browser's session cookie stands for a token when no token is shown; a token wins, so
     * a script's bearer requests behave the same whatever cookies its client keeps. */
    if (!auth && rp__http_cookie(c, "rp_session", c->session, sizeof c->session))
        return session_authenticate(c);
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) {
        rp__http_add_header(c, H2O_TOKEN_WWW_AUTHENTICATE, "Bearer realm=\"rapport\"");
        return rp__http_problem(c, 401, auth ? "the Authorization header must be \"Bearer <token>\""
                                    : "this needs a token: Authorization: Bearer <token> "
                                      "(rapport tokens create)", NULL) - 1;
    }
    const char *token = auth + 7;
    while (*token == ' ')
        token++;
    rp_error_t err = {0};
    bool known = rp__http_known_token(c, token);
    if (!known && rp_tokens_check(h->s, token, &c->who, &err)) {
        const char *why = strncmp(err.msg, "RP-E", 4) == 0 && strchr(err.msg, ' ')
                              ? strchr(err.msg, ' ') + 1
                              : err.msg;
        failed(c, why, NULL);
        rp__http_add_header(c, H2O_TOKEN_WWW_AUTHENTICATE, "Bearer realm=\"rapport\", "
                   "error=\"invalid_token\"");
        return rp__http_problem(c, rp__http_status_of(&err, false) == 503 ? 503 : 401, err.msg,
                                NULL) -
               1;
    }
    /* A good token does not wipe the failures before it: one valid token must not let a
     * client go on guessing passwords or tokens. They expire with their window. */
    if (take_access(c))
        return -1;
    if (!known)
        rp__http_know_token(c, token); /* before the use's write ends the snapshot */
    /* The token's use, in the log once a minute at most (not a write per request). */
    int64_t tid = json_integer_value(json_object_get(c->who, "token_id"));
    token_use_t *u = &h->uses[(uint64_t)tid % USES_N];
    if (u->id != tid || now - u->at_ms >= TOKEN_USE_EVERY_MS) {
        u->id = tid;
        u->at_ms = now;
        if (rp_tokens_used(h->s, &c->ctx, tid, c->client, &err))
            rp__http_say(h, "error", "cannot record the use of token %" PRId64 ": %s", tid,
                         err.msg);
    }
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
    bool session; /* POST /api/v1/auth/session: answered with a cookie, not a token */
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
            rp__http_problem(&c, 401, "wrong user name or password", NULL);
        } else if (l->session) {
            if (f && f->count > 0)
                f->count--; /* the attempt counted at its start was not a failure */
            rp__http_session_open(&c, l->user);
        } else if (rp_tokens_create(h->s, &ctx, l->user, NULL, l->expires_ms, &token, &id,
                                    &err)) {
            rp__http_store_problem(&c, &err, false);
        } else {
            if (f && f->count > 0)
                f->count--; /* the attempt counted at its start was not a failure */
            json_t *ev = json_pack("{s:s,s:s,s:I}", "user", l->user, "client", l->client,
                                   "token_id", (json_int_t)id);
            if (rp_events_emit(h->s, &ctx, "auth.login", NULL, 0, ev, NULL, &err))
                rp__http_say(h, "error", "cannot log auth.login: %s", err.msg);
            json_decref(ev);
            rp__http_send_json(&c, 201, json_pack("{s:s,s:I,s:I}", "token", token, "token_id",
                                         (json_int_t)id, "expires_in_s",
                                         (json_int_t)(l->expires_ms / 1000)));
            free(token);
            rp_sched_kick(h->e);
        }
    }
    rp_password_check_free(l->pc);
    free(l);
}

int rp__http_login(call_t *c, bool session)
{
    if (throttled(c))
        return 0;
    json_t *body = rp__http_body(c);
    if (!body)
        return 0;
    const char *user = NULL, *password = NULL, *expires = "8h";
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v) {
        const char **slot = !strcmp(k, "user") ? &user : !strcmp(k, "password") ? &password
                            : !strcmp(k, "expires") && !session ? &expires : NULL;
        if (!slot || !json_is_string(v)) {
            rp__http_problemf(c, 422, k, slot ? "\"%s\" must be a string"
                                     : session ? "\"%s\" is not known (user, password)"
                                     : "\"%s\" is not known (user, password, expires)", k);
            json_decref(body); /* after: k is the body's */
            return 0;
        }
        *slot = json_string_value(v);
    }
    if (!user || !password) {
        json_decref(body);
        return rp__http_problem(c, 422, "sign-in needs \"user\" and \"password\"",
                       user ? "password" : "user");
    }
    rp_error_t err = {0};
    int64_t ms = 0;
    if (rp_parse_delay(expires, &ms, &err) || ms <= 0 || ms > INT64_C(366) * 86400000) {
        rp__http_problemf(c, 422, "expires",
                          "expires must be a delay up to a year (\"8h\", \"30d\"), "
                          "not \"%s\"",
                          expires);
        json_decref(body); /* after: expires is the body's */
        return 0;
    }
    /* Each sign-in counts against the client's limit from the start (taken back when the
     * password was right), and few are checked at once: argon2id costs 64 MiB and tens of
     * milliseconds each, so a flood must not queue up on the thread pool. */
    client_fails_t *f = fails_of(c->h, c->key, true);
    if (f->pending >= 2 || c->h->logins >= 8) {
        rp__http_add_header(c, H2O_TOKEN_RETRY_AFTER, "1");
        rp__http_problem(c, f->pending >= 2 ? 429 : 503,
                         "too many sign-ins being checked; try again "
                         "in a second",
                         NULL);
        json_decref(body);
        return 0;
    }
    login_t *l = calloc(1, sizeof *l);
    if (l)
        l->pc = rp_users_password_begin(c->h->s, user, password);
    if (!l || !l->pc) {
        free(l);
        json_decref(body);
        return rp__http_problem(c, 503, "out of memory", NULL);
    }
    l->h = c->h;
    l->req = c->req;
    l->expires_ms = ms;
    l->session = session;
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
        return rp__http_problem(c, 503, "cannot check the password now", NULL);
    }
    /* Counted now, taken back if the password was right (bump() would slow the client at the
     * limit before knowing: the count alone holds attempts back meanwhile). */
    int64_t now = rp__http_mono_ms();
    if (now - f->since_ms > (int64_t)c->h->o.auth_window_s * 1000) {
        f->since_ms = now;
        f->count = 0;
    }
    f->count++;
    f->pending++;
    c->h->logins++;
    return 0; /* answered by login_done */
}
