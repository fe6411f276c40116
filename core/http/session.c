/*
 * session.c — the browser's side of the API: the session cookie (opened by a sign-in that
 * auth.c checks, ended by DELETE /api/v1/auth/session), GET /api/v1/auth/me, and the security
 * headers every answer carries.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <h2o.h>

#include "rapport/session.h"

#include "http_internal.h"

/* No inline script or style, nothing from elsewhere, never framed: a page of ours runs only
 * the files we serve. */
static const char CSP[] = "default-src 'self'; script-src 'self'; style-src 'self'; "
                          "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
                          "form-action 'self'";

static void add_named(call_t *c, const char *name, const char *value)
{
    h2o_add_header_by_str(&c->req->pool, &c->req->res.headers, name, strlen(name), 1, NULL, value,
                          strlen(value));
}

void rp__http_secure_headers(call_t *c, const char *cache)
{
    add_named(c, "content-security-policy", CSP);
    add_named(c, "x-frame-options", "DENY");
    add_named(c, "referrer-policy", "no-referrer");
    add_named(c, "x-content-type-options", "nosniff");
    if (cache)
        rp__http_add_header(c, H2O_TOKEN_CACHE_CONTROL, cache);
}

const char *rp__http_header_named(call_t *c, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&c->req->headers, name, strlen(name), -1);
    if (i < 0)
        return NULL;
    h2o_iovec_t v = c->req->headers.entries[i].value;
    return h2o_strdup(&c->req->pool, v.base, v.len).base;
}

bool rp__http_cookie(call_t *c, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    for (ssize_t i = -1; (i = h2o_find_header(&c->req->headers, H2O_TOKEN_COOKIE, i)) >= 0;) {
        h2o_iovec_t v = c->req->headers.entries[i].value;
        const char *p = v.base, *end = v.base + v.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';'))
                p++;
            const char *semi = memchr(p, ';', (size_t)(end - p));
            const char *pair_end = semi ? semi : end;
            if ((size_t)(pair_end - p) > nlen && !memcmp(p, name, nlen) && p[nlen] == '=') {
                size_t vlen = (size_t)(pair_end - p) - nlen - 1;
                if (vlen == 0 || vlen >= cap)
                    return false; /* empty, or too long to be ours */
                memcpy(out, p + nlen + 1, vlen);
                out[vlen] = '\0';
                return true;
            }
            p = pair_end;
        }
    }
    return false;
}

/* Sets the session cookie to @p value for @p max_age_s seconds (0: removes it). */
static void set_cookie(call_t *c, const char *value, int64_t max_age_s)
{
    char v[256];
    snprintf(v, sizeof v, "rp_session=%s; Path=/; Max-Age=%" PRId64 "; HttpOnly; SameSite=Strict%s",
             value, max_age_s, c->h->o.cookie_secure ? "; Secure" : "");
    rp__http_add_header(c, H2O_TOKEN_SET_COOKIE, v);
}

void rp__http_session_set_cookie(call_t *c, const char *secret, int64_t max_age_s)
{
    set_cookie(c, secret, max_age_s);
}

void rp__http_session_clear_cookie(call_t *c)
{
    set_cookie(c, "", 0);
}

int rp__http_session_open(call_t *c, const char *user)
{
    rp_http_t *h = c->h;
    char actor[80];
    snprintf(actor, sizeof actor, "user:%s", user);
    rp_ctx_t ctx = {.actor = actor, .origin = "api"};
    rp_error_t err = {0};
    char *secret = NULL;
    int64_t id = 0, max_s = h->o.session_max_s;
    if (rp_sessions_create(h->s, &ctx, "user", user, NULL, max_s * 1000, c->client, &secret, &id,
                           &err))
        return rp__http_store_problem(c, &err, false);
    json_t *who = NULL;
    if (rp_sessions_check(h->s, secret, 0, &who, &err)) {
        free(secret);
        return rp__http_store_problem(c, &err, false);
    }
    char csrf[RP_SESSION_CSRF_LEN + 1];
    rp_session_csrf(secret, csrf);
    set_cookie(c, secret, max_s);
    free(secret);
    json_t *ans = json_pack("{s:s,s:O,s:s,s:I,s:I,s:I}", "user", user, "role",
                            json_object_get(who, "role"), "csrf", csrf, "session_id",
                            (json_int_t)id, "expires_in_s", (json_int_t)max_s, "idle_s",
                            (json_int_t)h->o.session_idle_s);
    json_decref(who);
    rp_sched_kick(h->e);
    return rp__http_send_json(c, 201, ans);
}

int rp__http_session_end(call_t *c)
{
    if (!c->session[0])
        return rp__http_problem(c, 400,
                                "this request is not signed in with a session cookie: there is "
                                "no session to end (a token is revoked with rapport tokens "
                                "revoke)",
                                NULL);
    rp_error_t err = {0};
    if (rp_sessions_revoke_secret(c->h->s, &c->ctx, c->session, &err))
        return rp__http_store_problem(c, &err, false);
    rp__http_admin_session_ended(c->h, c->session); /* its live logs close with it */
    rp__http_session_clear_cookie(c);
    return rp__http_send_body(c, 204, NULL, "", 0);
}

int rp__http_me(call_t *c)
{
    json_t *who = c->who;
    const char *kind = json_string_value(json_object_get(who, "kind"));
    /* A record's session (a portal's customer) is no user: it says the record and its role. */
    json_t *ans = kind && strcmp(kind, "record") == 0
                      ? json_pack("{s:s,s:O,s:O,s:s}", "kind", "record", "principal",
                                  json_object_get(who, "principal"), "role",
                                  json_object_get(who, "role"), "via", "session")
                      : json_pack("{s:O,s:O,s:O?,s:s}", "user", json_object_get(who, "user"),
                                  "role", json_object_get(who, "role"), "team",
                                  json_object_get(who, "team"), "via",
                                  c->session[0] ? "session" : "token");
    if (ans && c->session[0]) {
        char csrf[RP_SESSION_CSRF_LEN + 1];
        rp_session_csrf(c->session, csrf);
        json_object_set_new(ans, "csrf", json_string(csrf));
        json_object_set(ans, "session_id", json_object_get(who, "session_id"));
    }
    if (!ans)
        return rp__http_problem(c, 500, "out of memory", NULL);
    return rp__http_send_json(c, 200, ans);
}
