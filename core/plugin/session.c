/*
 * session.c — api->session_start and api->session_end: a plugin's route signing a record (a
 * contact through the portal) in and out as a browser session. The HTTP layer sets or clears
 * the cookie on the answer; the session itself is the core's (rapport/session.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "rapport/session.h"

/* The HTTP request @p req stands for, when a route of @p h is answering it; else NULL. */
static const rp_http_request_t *answering(rapport_host *h, const rapport_request *req,
                                          const char *what)
{
    if (!req || !h->http || !h->http->session_out) {
        rp__plugin_fail(h, RAPPORT_EINVAL, "%s: only a route answering a request over HTTP "
                        "signs a session in or out", what);
        return NULL;
    }
    return h->http;
}

int rp__plugin_session_start(rapport_host *h, const rapport_request *req, const char *entity,
                             int64_t id, const char *role, char *csrf)
{
    const rp_http_request_t *r = answering(h, req, "session_start");
    if (!r)
        return RAPPORT_EINVAL;
    if (!entity || !rp_store_name_ok(entity) || id <= 0)
        return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "session_start: a record is an entity "
                                    "name and a positive id, not %s %lld",
                                    entity ? entity : "(none)", (long long)id);
    if (!role || !rp_store_name_ok(role))
        return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "session_start: \"%s\" is not a role",
                                    role ? role : "(none)");
    if (r->session_out->secret)
        return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "session_start: this request has "
                                    "started a session already");
    char principal[160];
    snprintf(principal, sizeof principal, "%s:%lld", entity, (long long)id);
    int64_t max_s = r->session_max_s > 0 ? r->session_max_s : 43200;
    char *secret = NULL;
    rp_error_t err = {0};
    int rc = rp_sessions_create(h->P->s, &h->ctx, "record", principal, role, max_s * 1000,
                                r->client, &secret, NULL, &err);
    if (rc)
        return (int)rp__plugin_fail(h, rc, "session_start: %s", err.msg);
    if (csrf)
        rp_session_csrf(secret, csrf);
    r->session_out->secret = secret;
    r->session_out->max_s = max_s;
    r->session_out->clear = false;
    return 0;
}

/* Every live session of record @p id of @p entity, ended. */
static int end_record(rapport_host *h, const char *entity, int64_t id)
{
    if (!entity || !rp_store_name_ok(entity) || id <= 0)
        return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "session_end: a record is an entity "
                                    "name and a positive id, not %s %lld",
                                    entity ? entity : "(none)", (long long)id);
    char principal[160];
    snprintf(principal, sizeof principal, "%s:%lld", entity, (long long)id);
    rp_error_t err = {0};
    int rc = rp_sessions_revoke_principal(h->P->s, &h->ctx, "record", principal, NULL, &err);
    return rc ? (int)rp__plugin_fail(h, rc, "session_end: %s", err.msg) : 0;
}

int rp__plugin_session_end(rapport_host *h, const rapport_request *req, const char *entity,
                           int64_t id)
{
    if (!req)
        return end_record(h, entity, id);
    const rp_http_request_t *r = answering(h, req, "session_end");
    if (!r)
        return RAPPORT_EINVAL;
    if (!r->session)
        return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "session_end: the request was not "
                                    "signed in with a session cookie");
    rp_error_t err = {0};
    int rc = rp_sessions_revoke_secret(h->P->s, &h->ctx, r->session, &err);
    if (rc)
        return (int)rp__plugin_fail(h, rc, "session_end: %s", err.msg);
    r->session_out->clear = true;
    return 0;
}
