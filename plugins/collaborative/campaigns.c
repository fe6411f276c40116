/*
 * campaigns.c — mail to many and mail to colleagues: a campaign sent to its mailing list's
 * consenting members, throttled and resumable (each recipient's message is one interaction
 * whose key names the campaign and the contact, so a step run again after a crash skips who
 * was queued already); one-click unsubscribe (RFC 8058) behind a signed link; and each user's
 * daily digest of open tasks and unread notifications.
 *
 * Settings (plugin.collaborative.*): unsubscribe_url (the public https address of
 * /api/v1/plugins/collaborative/unsubscribe), unsubscribe_secret (signs the links; a
 * campaign does not send without both), campaign_batch (recipients per step, 100),
 * campaign_pause (between steps, "10s"), digest_cron (a cron expression: the digest is
 * off until it is set).
 *
 * CLI: rapport campaign send ID | rapport digest [--user NAME]
 * Lua: crm.collaborative.send_campaign(id), crm.collaborative.digest([user])
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "collaborative.h"

/* ---- unsubscribe links ------------------------------------------------------------------- */

/* The signature of interaction @p id: hex of HMAC-SHA256(secret, "unsubscribe:<id>"), 32
 * digits (128 bits are plenty for a link). 0, or -1 when there is no secret. */
static int sign(rapport_host *h, int64_t id, char *hex, size_t cap)
{
    char secret[256];
    if (!cm_config_text(h, "unsubscribe_secret", NULL, secret, sizeof secret) || !*secret)
        return -1;
    unsigned char key[crypto_auth_hmacsha256_KEYBYTES];
    crypto_generichash(key, sizeof key, (const unsigned char *)secret, strlen(secret), NULL, 0);
    sodium_memzero(secret, sizeof secret);
    char msg[64];
    int n = snprintf(msg, sizeof msg, "unsubscribe:%" PRId64, id);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256(mac, (const unsigned char *)msg, (unsigned long long)n, key);
    sodium_memzero(key, sizeof key);
    sodium_bin2hex(hex, cap, mac, 16);
    return 0;
}

void cm_unsubscribe_url(rapport_host *h, int64_t id, char *out, size_t cap)
{
    char base[400], sig[40];
    out[0] = '\0';
    if (!cm_config_text(h, "unsubscribe_url", NULL, base, sizeof base) || !*base ||
        sign(h, id, sig, sizeof sig))
        return;
    snprintf(out, cap, "%s%s%" PRId64 ".%s", base, strchr(base, '?') ? "&t=" : "?t=", id, sig);
}

/* Opts the contact of marketing interaction @p id out of email and of its campaign's list. */
static int unsubscribe(rapport_host *h, int64_t id, char *err, size_t errlen)
{
    json_t *it = cm_json(cm_api->get(h, "interaction", id));
    if (!it)
        return cm_fail(err, errlen, RAPPORT_ENOTFOUND, "no such message");
    int64_t contact = json_integer_value(json_object_get(it, "contact"));
    int64_t campaign = json_integer_value(json_object_get(it, "campaign"));
    json_decref(it);
    json_t *c = contact ? cm_json(cm_api->get(h, "contact", contact)) : NULL;
    bool already = json_is_true(json_object_get(c, "email_opt_out"));
    json_decref(c);
    if (!contact || already)
        return 0; /* a second click changes nothing */
    char now[RAPPORT_TIME_LEN];
    cm_now_text(h, now);
    int rc = cm_api->begin(h);
    if (!rc)
        rc = cm_api->update(h, "contact", contact, "{\"email_opt_out\": true}", 0);
    json_t *camp = !rc && campaign ? cm_json(cm_api->get(h, "campaign", campaign)) : NULL;
    json_t *list = json_object_get(camp, "list");
    if (!rc && json_is_integer(list)) {
        json_t *ms = cm_find(h, "list_member", json_pack("{s:{s:O,s:I},s:i}", "where", "list",
                                                         list, "contact", (json_int_t)contact,
                                                         "limit", 10), err, errlen);
        size_t i;
        json_t *m;
        json_array_foreach(ms, i, m) {
            json_t *p = json_pack("{s:s,s:s}", "opted_out_at", now, "opt_out_source",
                                  "one-click unsubscribe");
            char *t = json_dumps(p, JSON_COMPACT);
            json_decref(p);
            if (!rc)
                rc = cm_api->update(h, "list_member",
                                    json_integer_value(json_object_get(m, "id")), t, 0);
            free(t);
        }
        json_decref(ms);
    }
    json_decref(camp);
    if (!rc)
        cm_campaign_count(h, campaign, "unsubscribe_count", 1);
    if (rc) {
        cm_api->rollback(h);
        return cm_host_fail(h, rc, err, errlen);
    }
    return cm_api->commit(h) ? cm_host_fail(h, RAPPORT_EIO, err, errlen) : 0;
}

/* POST unsubscribe?t=ID.SIG (List-Unsubscribe-Post: one click), and GET for a person who
 * follows the link: public, checked by the link's signature. */
static int route_unsubscribe(rapport_host *h, const rapport_api *api, const rapport_request *req,
                             int *status, char **body, void *ud, char *err, size_t errlen)
{
    (void)api;
    (void)ud;
    const char *t = strncmp(req->query, "t=", 2) == 0 ? req->query + 2 : NULL;
    char *end = NULL;
    long long id = t ? strtoll(t, &end, 10) : 0;
    char want[40];
    if (!t || id <= 0 || *end != '.' || strlen(end + 1) != 32 || sign(h, id, want, sizeof want) ||
        sodium_memcmp(want, end + 1, 32) != 0) {
        *status = 403;
        *body = cm_dump(json_pack("{s:s}", "title", "this unsubscribe link is not valid"));
        return 0;
    }
    /* Only a POST unsubscribes (RFC 8058): mail scanners follow a link with GET, and must not
     * unsubscribe a reader who never clicked. */
    if (strcmp(req->method, "POST") != 0) {
        *status = 200;
        *body = cm_dump(json_pack("{s:s,s:s}", "data", "confirm", "detail",
                                  "POST to this address to unsubscribe"));
        return 0;
    }
    int rc = unsubscribe(h, id, err, errlen);
    if (rc)
        return rc;
    *status = 200;
    *body = cm_dump(json_pack("{s:s}", "data", "unsubscribed"));
    return 0;
}

/* ---- campaign sends ----------------------------------------------------------------------- */

/* Queues up to campaign_batch recipients of campaign @p id; *left whether more remain. */
static int campaign_step(rapport_host *h, int64_t id, bool *left, char *err, size_t errlen)
{
    *left = false;
    json_t *camp = cm_json(cm_api->get(h, "campaign", id));
    if (!camp)
        return cm_fail(err, errlen, RAPPORT_ENOTFOUND, "%s", cm_api->last_error(h));
    const char *subject = json_string_value(json_object_get(camp, "subject"));
    const char *body = json_string_value(json_object_get(camp, "body"));
    const char *html = json_string_value(json_object_get(camp, "html"));
    /* A template fills each member's mail in their language. */
    const char *tpl = json_string_value(json_object_get(camp, "template"));
    json_t *list = json_object_get(camp, "list");
    char probe[600];
    cm_unsubscribe_url(h, 1, probe, sizeof probe);
    int rc = 0;
    if (!json_is_integer(list))
        rc = cm_fail(err, errlen, RAPPORT_EINVAL, "campaign %" PRId64 " has no mailing list",
                     id);
    else if (!tpl && (!subject || (!body && !html)))
        rc = cm_fail(err, errlen, RAPPORT_EINVAL, "campaign %" PRId64 " needs a template, or a "
                     "subject and a body or html", id);
    else if (!probe[0])
        rc = cm_fail(err, errlen, RAPPORT_EINVAL, "campaign mail needs a one-click unsubscribe: "
                     "set plugin.collaborative.unsubscribe_url and unsubscribe_secret");
    int64_t batch = cm_config_int(h, "campaign_batch", 100);
    if (batch < 1 || batch > 1000)
        batch = 100;
    /* Members in id order from where the last step stopped (send_cursor); a member written to
     * before a crash is skipped below. */
    int64_t cursor = json_integer_value(json_object_get(camp, "send_cursor"));
    json_t *ms = rc ? NULL
                    : cm_find(h, "list_member",
                              json_pack("{s:{s:O,s:n,s:{s:I}},s:s,s:I}", "where", "list", list,
                                        "opted_out_at", "id", "gt", (json_int_t)cursor, "order",
                                        "id", "limit", (json_int_t)batch),
                              err, errlen);
    if (!rc && !ms)
        rc = RAPPORT_EIO;
    *left = !rc && (int64_t)json_array_size(ms) == batch;
    int queued = 0, skipped = 0;
    size_t i;
    json_t *m;
    json_array_foreach(ms, i, m) {
        if (rc)
            break;
        cursor = json_integer_value(json_object_get(m, "id"));
        int64_t contact = json_integer_value(json_object_get(m, "contact"));
        if (!json_is_string(json_object_get(m, "opted_in_at")))
            continue; /* never opted in: not on the list for mail */
        /* Queued or refused on an earlier step (or before a crash): not again. */
        json_t *was = cm_find(h, "interaction", json_pack("{s:{s:I,s:I},s:i}", "where",
                                                          "campaign", (json_int_t)id, "contact",
                                                          (json_int_t)contact, "limit", 1),
                              err, errlen);
        bool done = json_array_size(was) > 0;
        json_decref(was);
        if (done)
            continue;
        json_t *c = cm_json(cm_api->get(h, "contact", contact));
        const char *to = json_string_value(json_object_get(c, "email"));
        char why[256] = "";
        int ok = c && to ? cm_consent(h, c, "email", "marketing", why, sizeof why) : 0;
        if (!to)
            snprintf(why, sizeof why, "no email address");
        json_t *o = json_pack("{s:s,s:s?,s:s?,s:s?,s:s?,s:s,s:I,s:[[s,I]]}", "to",
                              to ? to : "", "subject", subject, "body", body, "html", html,
                              "template", tpl, "purpose", "marketing", "campaign", (json_int_t)id,
                              "related", "campaign", (json_int_t)id);
        int64_t iid = 0;
        char mid[160], e2[400];
        int q = ok == 1 ? cm_mail_queue(h, o, &iid, mid, sizeof mid, e2, sizeof e2) : 0;
        json_decref(o);
        json_decref(c);
        /* The recipient's mark: queued or refused, it is not tried again on a rerun. */
        if (ok == 1 && q == 0) {
            queued++;
        } else if (ok == 1 && q == RAPPORT_EVETO) {
            skipped++; /* refused by consent inside the queue: recorded there */
        } else {
            json_t *f = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:s}", "channel", "email",
                                  "direction", "out", "status", "refused", "purpose", "marketing",
                                  "subject", subject ? subject : tpl, "campaign", (json_int_t)id,
                                  "contact",
                                  (json_int_t)contact, "error", ok == 1 ? e2 : why);
            bool dup;
            int64_t rid;
            rc = cm_interaction_add(h, f, json_pack("[[s,I]]", "campaign", (json_int_t)id), &rid,
                                    &dup, err, errlen);
            skipped++;
        }
    }
    json_decref(ms);
    if (!rc && skipped)
        cm_campaign_count(h, id, "skipped_count", skipped);
    char patch[96];
    snprintf(patch, sizeof patch, "{\"send_cursor\": %" PRId64 "%s}", cursor,
             *left ? "" : ", \"send_status\": \"sent\"");
    if (!rc && cm_api->update(h, "campaign", id, patch, 0))
        rc = cm_host_fail(h, RAPPORT_EIO, err, errlen);
    json_decref(camp);
    return rc;
}

static int schedule_step(rapport_host *h, int64_t id, int64_t delay, char *err, size_t errlen)
{
    char payload[64], key[64];
    snprintf(payload, sizeof payload, "{\"campaign\": %" PRId64 "}", id);
    snprintf(key, sizeof key, "campaign:%" PRId64, id);
    int rc = cm_api->schedule(h, "collaborative.campaign_step", payload, delay, key);
    return rc ? cm_host_fail(h, rc, err, errlen) : 0;
}

static int step_job(rapport_host *h, const rapport_api *api, const rapport_job *job, void *ud,
                    char *err, size_t errlen)
{
    (void)ud;
    json_t *p = json_loads(job->payload, 0, NULL);
    int64_t id = json_integer_value(json_object_get(p, "campaign"));
    json_decref(p);
    bool left;
    int rc = campaign_step(h, id, &left, err, errlen);
    if (rc == RAPPORT_EINVAL || rc == RAPPORT_ENOTFOUND) {
        api->log(h, RAPPORT_LOG_ERROR, "campaign %" PRId64 " stopped: %s", id, err);
        return 0;
    }
    if (rc || !left)
        return rc;
    char pause[32];
    int64_t ms = 10000;
    cm_config_text(h, "campaign_pause", "10s", pause, sizeof pause);
    api->delay_parse(h, pause, &ms);
    return schedule_step(h, id, ms, err, errlen);
}

/* Starts sending campaign @p id (a step now, then one per pause). */
static int campaign_start(rapport_host *h, int64_t id, char *err, size_t errlen)
{
    json_t *camp = cm_json(cm_api->get(h, "campaign", id));
    if (!camp)
        return cm_fail(err, errlen, RAPPORT_ENOTFOUND, "%s", cm_api->last_error(h));
    const char *st = json_string_value(json_object_get(camp, "send_status"));
    bool sent = st && strcmp(st, "sent") == 0;
    json_decref(camp);
    if (sent)
        return cm_fail(err, errlen, RAPPORT_ECONFLICT, "campaign %" PRId64 " was sent already",
                       id);
    int rc = cm_api->update(h, "campaign", id, "{\"send_status\": \"sending\"}", 0);
    if (rc)
        return cm_host_fail(h, rc, err, errlen);
    return schedule_step(h, id, 0, err, errlen);
}

/* ---- the daily digest ------------------------------------------------------------------------- */

/* Writes @p user's digest (open tasks, unread notifications not mailed yet); *sent 1 when a
 * mail was queued. */
static int digest_user(rapport_host *h, const char *user, int *sent, char *err, size_t errlen)
{
    *sent = 0;
    json_t *u = cm_json(cm_api->user(h, user));
    const char *email = json_string_value(json_object_get(u, "email"));
    if (!email || json_is_true(json_object_get(u, "disabled"))) {
        json_decref(u);
        return 0;
    }
    json_t *tasks = cm_find(h, "activity", json_pack("{s:{s:s,s:s,s:b},s:s,s:i}", "where",
                                                     "owner", user, "kind", "task", "done", 0,
                                                     "order", "due_at", "limit", 100),
                            err, errlen);
    json_t *notes = cm_find(h, "notification",
                            json_pack("{s:{s:s,s:n,s:n},s:s,s:i}", "where", "owner", user,
                                      "read_at", "emailed_at", "order", "at", "limit", 200),
                            err, errlen);
    int rc = 0;
    if (!tasks || !notes)
        rc = RAPPORT_EIO;
    size_t nt = json_array_size(tasks), nn = json_array_size(notes);
    if (!rc && (nt || nn)) {
        size_t cap = 200 + (nt + nn) * 240, n = 0;
        char *body = malloc(cap);
        n += (size_t)snprintf(body + n, cap - n, "Open tasks: %zu\n", nt);
        size_t i;
        json_t *r;
        json_array_foreach(tasks, i, r) n += (size_t)snprintf(
            body + n, cap - n, "- %.150s (due %.16s)\n",
            json_string_value(json_object_get(r, "subject")) ?: "",
            json_string_value(json_object_get(r, "due_at")) ?: "-");
        n += (size_t)snprintf(body + n, cap - n, "\nNotifications: %zu\n", nn);
        json_array_foreach(notes, i, r) n += (size_t)snprintf(
            body + n, cap - n, "- %.150s\n", json_string_value(json_object_get(r, "text")) ?: "");
        char subject[120], mid[160];
        snprintf(subject, sizeof subject, "Your day: %zu open tasks, %zu notifications", nt, nn);
        json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "to", email, "subject", subject, "body", body,
                              "author", "rapport:digest");
        free(body);
        int64_t id;
        rc = cm_mail_queue(h, o, &id, mid, sizeof mid, err, errlen);
        json_decref(o);
        char now[RAPPORT_TIME_LEN], patch[80];
        cm_now_text(h, now);
        snprintf(patch, sizeof patch, "{\"emailed_at\": \"%s\"}", now);
        json_array_foreach(notes, i, r) {
            if (!rc && cm_api->update(h, "notification",
                                      json_integer_value(json_object_get(r, "id")), patch, 0))
                rc = cm_host_fail(h, RAPPORT_EIO, err, errlen);
        }
        *sent = !rc;
    }
    json_decref(tasks);
    json_decref(notes);
    json_decref(u);
    return rc;
}

static int collect_owner(void *ud, const char *json)
{
    json_t *row = json_loads(json, 0, NULL);
    const char *o = json_string_value(json_object_get(row, "owner"));
    if (o && *o)
        json_object_set_new(ud, o, json_true());
    json_decref(row);
    return 0;
}

/* Digests for @p user, or every user with unread notifications or open tasks. */
static int digest(rapport_host *h, const char *user, int *sent, char *err, size_t errlen)
{
    *sent = 0;
    json_t *users = json_object();
    if (user)
        json_object_set_new(users, user, json_true());
    else {
        cm_api->aggregate(h, "notification", "{\"group_by\": [\"owner\"], \"where\": "
                          "{\"read_at\": null}}", collect_owner, users);
        cm_api->aggregate(h, "activity", "{\"group_by\": [\"owner\"], \"where\": "
                          "{\"done\": false, \"kind\": \"task\"}}", collect_owner, users);
    }
    const char *name;
    json_t *v;
    int rc = 0;
    json_object_foreach(users, name, v) {
        int one;
        if ((rc = digest_user(h, name, &one, err, errlen)))
            break;
        *sent += one;
    }
    json_decref(users);
    return rc;
}

static int digest_job(rapport_host *h, const rapport_api *api, const rapport_job *job, void *ud,
                      char *err, size_t errlen)
{
    (void)ud;
    (void)job;
    int sent;
    int rc = digest(h, NULL, &sent, err, errlen);
    if (!rc)
        api->log(h, RAPPORT_LOG_INFO, "daily digest: %d mails", sent);
    return rc;
}

/* ---- doors -------------------------------------------------------------------------------- */

static int lua_send_campaign(rapport_host *h, const rapport_api *api, const char *args,
                             char **result, void *ud, char *err, size_t errlen)
{
    (void)api;
    (void)ud;
    (void)result;
    json_t *a = json_loads(args, 0, NULL);
    json_t *id = json_array_get(a, 0);
    int rc = json_is_integer(id) ? campaign_start(h, json_integer_value(id), err, errlen)
                                 : cm_fail(err, errlen, RAPPORT_EINVAL, "send_campaign(id)");
    json_decref(a);
    return rc;
}

static int lua_digest(rapport_host *h, const rapport_api *api, const char *args, char **result,
                      void *ud, char *err, size_t errlen)
{
    (void)api;
    (void)ud;
    json_t *a = json_loads(args, 0, NULL);
    int sent;
    int rc = digest(h, json_string_value(json_array_get(a, 0)), &sent, err, errlen);
    json_decref(a);
    if (!rc)
        *result = cm_dump(json_integer(sent));
    return rc;
}

static int cmd_campaign(rapport_host *h, const rapport_api *api, int argc, char **argv, void *ud)
{
    (void)api;
    (void)ud;
    char *end = NULL;
    long long id = argc == 3 && strcmp(argv[1], "send") == 0 ? strtoll(argv[2], &end, 10) : 0;
    if (!end || *end || id <= 0) {
        fprintf(stderr, "usage: rapport campaign send ID\n");
        return 2;
    }
    char err[600];
    if (campaign_start(h, id, err, sizeof err)) {
        fprintf(stderr, "rapport: campaign: %s\n", err);
        return 1;
    }
    printf("campaign %lld: sending (serve sends it, %lld recipients a step)\n", id,
           (long long)cm_config_int(h, "campaign_batch", 100));
    return 0;
}

static int cmd_digest(rapport_host *h, const rapport_api *api, int argc, char **argv, void *ud)
{
    (void)api;
    (void)ud;
    if (!(argc == 1 || (argc == 3 && strcmp(argv[1], "--user") == 0))) {
        fprintf(stderr, "usage: rapport digest [--user NAME]\n");
        return 2;
    }
    char err[600];
    int sent;
    if (digest(h, argc == 3 ? argv[2] : NULL, &sent, err, sizeof err)) {
        fprintf(stderr, "rapport: digest: %s\n", err);
        return 1;
    }
    printf("%d digest mails queued\n", sent);
    return 0;
}

int cm_campaigns_init(rapport_host *h, char *err, size_t errlen)
{
    const rapport_api *api = cm_api;
    if (api->lua_function(h, "send_campaign", lua_send_campaign, NULL) ||
        api->lua_function(h, "digest", lua_digest, NULL) ||
        api->command(h, "campaign", "campaign send ID: mail a campaign to its list's "
                                    "consenting members", cmd_campaign, NULL) ||
        api->command(h, "digest", "digest [--user NAME]: mail open tasks and unread "
                                  "notifications", cmd_digest, NULL) ||
        api->job(h, "collaborative.campaign_step", step_job, NULL) ||
        api->job(h, "collaborative.digest", digest_job, NULL) ||
        api->public_route(h, "*", "unsubscribe", route_unsubscribe, NULL))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "%s", api->last_error(h));
    json_t *cron = cm_config(h, "digest_cron");
    int rc = 0;
    if (json_is_string(cron) &&
        api->every(h, "collaborative.digest", json_string_value(cron), NULL,
                   "collaborative.digest", "{}"))
        rc = cm_fail(err, errlen, RAPPORT_EINVAL, "plugin.collaborative.digest_cron: %s",
                     api->last_error(h));
    json_decref(cron);
    return rc;
}
