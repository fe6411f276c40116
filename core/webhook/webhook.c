/*
 * webhook.c — outgoing webhooks: the subscriptions and their delivery log (SQLite) and signing
 * (libsodium). The deliverer is deliver.c; where webhooks may go, dest.c.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <sodium.h>

#include "rapport/db.h"
#include "rapport/store.h"
#include "rapport/time.h"

/* Outgoing webhooks. The secret is kept as itself: it signs every delivery. One row per
 * delivery attempt in the log. Never edit a released step; append one. */
static const rp_db_step_t webhook_steps[] = {
    {1,
     "CREATE TABLE rp_webhooks(id INTEGER PRIMARY KEY AUTOINCREMENT, url TEXT NOT NULL,"
     " events TEXT NOT NULL, secret TEXT NOT NULL, owner TEXT NOT NULL,"
     " active INTEGER NOT NULL DEFAULT 1, created_at TEXT NOT NULL, created_by TEXT NOT NULL);"
     "CREATE TABLE rp_webhook_deliveries(id INTEGER PRIMARY KEY AUTOINCREMENT,"
     " webhook_id INTEGER NOT NULL, seq INTEGER NOT NULL, attempt INTEGER NOT NULL,"
     " status INTEGER, error TEXT, duration_ms INTEGER NOT NULL, at INTEGER NOT NULL,"
     " outcome TEXT NOT NULL);"
     "CREATE INDEX rp_webhook_deliveries_hook ON rp_webhook_deliveries(webhook_id, id);",
     NULL},
};
static const int webhook_legacy[] = {0, 0, 0, 1};
static const rp_db_schema_t webhook_schema = {"webhook", webhook_steps, 1, webhook_legacy, 4};
RP_DB_SCHEMA(webhook_schema)
#include "rapport/access.h"
#include "rapport/webhook.h"
#include "webhook_int.h"

#define MAX_URL 2048
#define MAX_EVENTS 120

void rp__webhook_sub_name(int64_t id, char out[32])
{
    snprintf(out, 32, SUB_PREFIX "%lld", (long long)id);
}

/* ---- checks ---------------------------------------------------------------------------- */

int rp_webhook_check_url(const char *url, rp_error_t *err)
{
    if (!url || !*url)
        return rp_error_set(err, RP_EINVAL, RP_C_WEBHOOK, "a webhook needs a URL");
    /* Messages show the URL without the user and password it may carry. */
    char shown[MAX_URL + 8];
    rp_webhook_url_redact(url, shown, sizeof shown);
    size_t len = strlen(url);
    if (len > MAX_URL)
        return rp_error_set(err, RP_EINVAL, RP_C_WEBHOOK,
                            "the webhook URL is %zu characters long (at most %d)", len, MAX_URL);
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return rp_error_set(err, RP_EINVAL, RP_C_WEBHOOK,
                                "the webhook URL \"%.200s\" holds a space or a control character "
                                "at position %d (percent-encode it)",
                                shown, (int)(p - (const unsigned char *)url) + 1);
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
        return rp_error_set(err, RP_EINVAL, RP_C_WEBHOOK,
                            "\"%.200s\" is not an http:// or https:// URL: webhooks are "
                            "delivered over HTTP only",
                            shown);
    /* libcurl reads "http:///x" as the host "x"; a person who wrote it meant something else. */
    const char *rest = strstr(url, "://") + 3;
    if (*rest == '/' || *rest == '\0')
        return rp_error_set(err, RP_EINVAL, RP_C_WEBHOOK, "the webhook URL \"%.200s\" names no "
                            "host", shown);
    CURLU *u = curl_url();
    if (!u)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    int rc = 0;
    char *host = NULL;
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc != CURLUE_OK)
        rc = rp_error_set(err, RP_EINVAL, RP_C_WEBHOOK, "\"%.200s\" is not a valid URL: %s",
                          shown, curl_url_strerror(uc));
    else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host)
        rc = rp_error_set(err, RP_EINVAL, RP_C_WEBHOOK, "the webhook URL \"%.200s\" names no "
                          "host", shown);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

void rp__webhook_url_origin(const char *url, char *out, size_t cap)
{
    snprintf(out, cap, "(unparsable)");
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        curl_url_get(u, CURLUPART_PORT, &port, 0);
        snprintf(out, cap, "%s://%s%s%s", scheme, host, port ? ":" : "", port ? port : "");
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
}

int rp_webhook_check_events(const char *events, rp_error_t *err)
{
    if (!events || !*events)
        return 0;
    if (strlen(events) > MAX_EVENTS)
        return rp_error_set(err, RP_EINVAL, RP_C_WEBHOOK,
                            "the event filter is longer than %d characters", MAX_EVENTS);
    const char *part = events;
    for (const char *p = events;; p++) {
        if (*p == ',' || *p == '\0') {
            if (p == part)
                return rp_error_set(err, RP_EINVAL, RP_C_WEBHOOK,
                                    "the event filter \"%s\" has an empty part (globs joined by "
                                    "commas, such as contact.*,deal.won)", events);
            part = p + 1;
            if (*p == '\0')
                return 0;
            continue;
        }
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' ||
              *p == '*' || *p == '?'))
            return rp_error_set(err, RP_EINVAL, RP_C_WEBHOOK,
                                "the event filter \"%s\" holds '%c' at position %d (globs of "
                                "lower-case letters, digits, _ . * ?, joined by commas)",
                                events, *p, (int)(p - events) + 1);
    }
}

bool rp_webhook_events_match(const char *events, const char *type)
{
    if (!events || !*events)
        return true;
    char pat[MAX_EVENTS + 1];
    const char *part = events;
    for (const char *p = events;; p++) {
        if (*p != ',' && *p != '\0')
            continue;
        size_t n = (size_t)(p - part);
        if (n > 0 && n < sizeof pat) {
            memcpy(pat, part, n);
            pat[n] = '\0';
            /* Without FNM_PERIOD or FNM_PATHNAME "*" crosses dots, as SQLite's GLOB does. */
            if (fnmatch(pat, type, 0) == 0)
                return true;
        }
        if (*p == '\0')
            return false;
        part = p + 1;
    }
}

static int check_secret(const char *secret, rp_error_t *err)
{
    size_t n = strlen(secret);
    if (n < 16 || n > 256)
        return rp_error_set(err, RP_EINVAL, RP_C_WEBHOOK,
                            "a webhook secret needs 16 to 256 characters (this one has %zu); "
                            "leave it out to have one made", n);
    for (const char *p = secret; *p; p++)
        if (*p < ' ' || *p > '~')
            return rp_error_set(err, RP_EINVAL, RP_C_WEBHOOK,
                                "a webhook secret is printable ASCII; character %d is not",
                                (int)(p - secret) + 1);
    return 0;
}

/* ---- signing ---------------------------------------------------------------------------- */

int rp_webhook_sign(const char *secret, int64_t timestamp, const char *body, size_t len,
                    char out[RP_WEBHOOK_SIG_SIZE])
{
    out[0] = '\0';
    if (sodium_init() < 0)
        return RP_EIO;
    char ts[24];
    int tn = snprintf(ts, sizeof ts, "%lld.", (long long)timestamp);
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, (unsigned long long)tn);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof st);
    memcpy(out, "sha256=", 7);
    sodium_bin2hex(out + 7, RP_WEBHOOK_SIG_SIZE - 7, mac, sizeof mac);
    return 0;
}

/* ---- subscriptions ---------------------------------------------------------------------- */

int rp__webhook_step_done(rp_store_t *s, rp_db_stmt_t *st, const char *what, rp_error_t *err)
{
    int rc = rp_db_step(st);
    rp_db_reset(st);
    return rc == RP_DB_DONE ? 0 : rp_db_error(rp_store_db(s), rc, what, err);
}

static int no_webhook(int64_t id, rp_error_t *err)
{
    return rp_error_set(err, RP_ENOTFOUND, RP_C_WEBHOOK, "there is no webhook %lld",
                        (long long)id);
}

static int emit(rp_store_t *s, const rp_ctx_t *ctx, const char *type, int64_t id,
                json_t *payload, rp_error_t *err)
{
    int rc = payload ? rp_events_emit(s, ctx, type, NULL, id, payload, NULL, err)
                     : rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    json_decref(payload);
    return rc;
}

int rp_webhook_add(rp_store_t *s, const rp_ctx_t *ctx, const rp_webhook_spec_t *spec,
                   int64_t *id_out, char **secret_out, rp_error_t *err)
{
    if (id_out)
        *id_out = 0;
    if (secret_out)
        *secret_out = NULL;
    const char *events = spec->events && *spec->events ? spec->events : "*";
    int rc;
    if ((rc = rp_webhook_check_url(spec->url, err)) || (rc = rp_webhook_check_events(events, err)))
        return rc;
    if (spec->secret && (rc = check_secret(spec->secret, err)))
        return rc;
    if (!spec->user || !*spec->user)
        return rp_error_set(err, RP_EINVAL, RP_C_WEBHOOK,
                            "a webhook needs an owner (--user NAME): what it delivers is what "
                            "that user's role may see");
    /* The owner must be an enabled user with a role that loads, or nothing would be sent. */
    rp_access_t *a = NULL;
    if ((rc = rp_access_of_user(s, spec->user, &a, err)))
        return rc;
    rp_access_free(a);
    /* Where it leads, judged now and again at every connection the deliverer opens. */
    rp_webhook_allow_t *allow = NULL;
    if ((rc = rp_webhook_allow_load(s, spec->allow_networks, &allow, err)))
        return rc;
    rc = rp_webhook_check_dest(spec->url, allow, err);
    rp_webhook_allow_free(allow);
    if (rc)
        return rc;
    if (sodium_init() < 0)
        return rp_error_set(err, RP_EIO, RP_C_WEBHOOK, "libsodium cannot start");
    char made[64];
    const char *secret = spec->secret;
    if (!secret) {
        unsigned char raw[24];
        randombytes_buf(raw, sizeof raw);
        size_t pre = strlen(RP_WEBHOOK_SECRET_PREFIX);
        memcpy(made, RP_WEBHOOK_SECRET_PREFIX, pre);
        sodium_bin2base64(made + pre, sizeof made - pre, raw, sizeof raw,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        sodium_memzero(raw, sizeof raw);
        secret = made;
    }
    char *copy = secret_out ? strdup(secret) : NULL;
    if (secret_out && !copy) {
        sodium_memzero(made, sizeof made);
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    }
    if ((rc = rp_store_begin(s, err)))
        goto out;
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "INSERT INTO rp_webhooks(url, events, secret, owner,"
                                   " created_at, created_by) VALUES(?, ?, ?, ?, ?, ?)", err);
    if (!st) {
        rc = err ? err->code : RP_EIO;
        goto fail;
    }
    char now[32];
    rp_time_format(rp_store_now(s), now);
    rp_db_bind_text(st, 1, spec->url, -1);
    rp_db_bind_text(st, 2, events, -1);
    rp_db_bind_text(st, 3, secret, -1);
    rp_db_bind_text(st, 4, spec->user, -1);
    rp_db_bind_text(st, 5, now, -1);
    rp_db_bind_text(st, 6, ctx && ctx->actor ? ctx->actor : "system", -1);
    if ((rc = rp__webhook_step_done(s, st, "cannot add the webhook", err)))
        goto fail;
    int64_t id = rp_db_last_id(rp_store_db(s));
    char origin[300], name[32];
    rp__webhook_url_origin(spec->url, origin, sizeof origin);
    rp__webhook_sub_name(id, name);
    /* The event first: a subscriber made "from now" then starts after it, so a webhook is not
     * told of its own making. One glob goes to the subscriber, which then reads only what
     * matches; a list is matched by the deliverer. */
    if ((rc = emit(s, ctx, "webhook.added", id,
                   json_pack("{s:I,s:s,s:s,s:s}", "id", (json_int_t)id, "url", origin, "events",
                             events, "user", spec->user),
                   err)) ||
        (rc = rp_events_subscribe(s, name, strchr(events, ',') ? "*" : events, true, err)))
        goto fail;
    if ((rc = rp_store_commit(s, err)))
        goto out;
    if (id_out)
        *id_out = id;
    if (secret_out)
        *secret_out = copy;
    copy = NULL;
    goto out;
fail:
    rp_store_rollback(s, NULL);
out:
    if (copy) {
        sodium_memzero(copy, strlen(copy));
        free(copy);
    }
    sodium_memzero(made, sizeof made);
    return rc;
}

int rp_webhook_remove(rp_store_t *s, const rp_ctx_t *ctx, int64_t id, rp_error_t *err)
{
    int rc = rp_store_begin(s, err);
    if (rc)
        return rc;
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "DELETE FROM rp_webhooks WHERE id = ?", err);
    if (!st) {
        rc = err ? err->code : RP_EIO;
        goto fail;
    }
    rp_db_bind_int(st, 1, id);
    if ((rc = rp__webhook_step_done(s, st, "cannot remove the webhook", err)))
        goto fail;
    if (rp_db_changes(rp_store_db(s)) == 0) {
        rc = no_webhook(id, err);
        goto fail;
    }
    char name[32];
    rp__webhook_sub_name(id, name);
    rp_error_t e2 = {0};
    rc = rp_events_unsubscribe(s, name, &e2);
    if (rc && rc != RP_ENOTFOUND) {
        if (err)
            *err = e2;
        goto fail;
    }
    if ((rc = emit(s, ctx, "webhook.removed", id, json_pack("{s:I}", "id", (json_int_t)id),
                   err)))
        goto fail;
    return rp_store_commit(s, err);
fail:
    rp_store_rollback(s, NULL);
    return rc;
}

int rp_webhook_set_active(rp_store_t *s, const rp_ctx_t *ctx, int64_t id, bool active,
                          rp_error_t *err)
{
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "SELECT active FROM rp_webhooks WHERE id = ?", err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_int(st, 1, id);
    int src = rp_db_step(st);
    int was = src == RP_DB_ROW ? (int)rp_db_col_int(st, 0) : -1;
    rp_db_reset(st);
    if (src != RP_DB_ROW && src != RP_DB_DONE)
        return rp_db_error(rp_store_db(s), src, "cannot read the webhook", err);
    if (was < 0)
        return no_webhook(id, err);
    if ((was != 0) == active)
        return rp_error_set(err, RP_ECONFLICT, RP_C_WEBHOOK, "webhook %lld is %s already",
                            (long long)id, active ? "active" : "paused");
    int rc = rp_store_begin(s, err);
    if (rc)
        return rc;
    if (!(st = rp_db_stmt(rp_store_db(s), "UPDATE rp_webhooks SET active = ? WHERE id = ?", err))) {
        rc = err ? err->code : RP_EIO;
        goto fail;
    }
    rp_db_bind_int(st, 1, active);
    rp_db_bind_int(st, 2, id);
    if ((rc = rp__webhook_step_done(s, st, "cannot change the webhook", err)) ||
        (rc = emit(s, ctx, active ? "webhook.resumed" : "webhook.paused", id,
                   json_pack("{s:I}", "id", (json_int_t)id), err)))
        goto fail;
    return rp_store_commit(s, err);
fail:
    rp_store_rollback(s, NULL);
    return rc;
}

int rp_webhook_list(rp_store_t *s, json_t **out, rp_error_t *err)
{
    *out = NULL;
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(
        s),
        "SELECT w.id, w.url, w.events, w.owner, w.active, w.created_at, w.created_by,"
        " (SELECT checkpoint FROM rp_subscribers WHERE name = 'webhook:' || w.id),"
        " (SELECT count(*) FROM rp_dead WHERE subscriber = 'webhook:' || w.id AND replay = 0)"
        " FROM rp_webhooks w ORDER BY w.id",
        err);
    if (!st)
        return err ? err->code : RP_EIO;
    json_t *a = json_array();
    int rc;
    char url[MAX_URL + 8];
    while ((rc = rp_db_step(st)) == RP_DB_ROW) {
        rp_webhook_url_redact(rp_db_col_text(st, 1), url, sizeof url);
        json_array_append_new(
            a, json_pack("{s:I,s:s,s:s,s:s,s:b,s:s,s:s,s:I,s:I}", "id",
                         (json_int_t)rp_db_col_int(st, 0), "url", url, "events",
                         rp_db_col_text(st, 2), "user",
                         rp_db_col_text(st, 3), "active",
                         (int)rp_db_col_int(st, 4), "created_at",
                         rp_db_col_text(st, 5), "created_by",
                         rp_db_col_text(st, 6), "checkpoint",
                         (json_int_t)rp_db_col_int(st, 7), "dead",
                         (json_int_t)rp_db_col_int(st, 8)));
    }
    rp_db_reset(st);
    if (rc != RP_DB_DONE) {
        json_decref(a);
        return rp_db_error(rp_store_db(s), rc, "cannot list the webhooks", err);
    }
    *out = a;
    return 0;
}

/* Column @p col as a JSON string, or null. */
static json_t *text_or_null(rp_db_stmt_t *st, int col)
{
    const char *t = rp_db_col_text(st, col);
    return t ? json_string(t) : json_null();
}

int rp_webhook_deliveries(rp_store_t *s, int64_t id, int limit, json_t **out, rp_error_t *err)
{
    *out = NULL;
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(
        s),
        "SELECT * FROM (SELECT d.id, d.webhook_id, d.seq, e.uid, e.type, d.attempt, d.status,"
        " d.error, d.duration_ms, d.at, d.outcome FROM rp_webhook_deliveries d"
        " LEFT JOIN rp_events e ON e.seq = d.seq WHERE ?1 = 0 OR d.webhook_id = ?1"
        " ORDER BY d.id DESC LIMIT ?2) ORDER BY id",
        err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_int(st, 1, id);
    rp_db_bind_int(st, 2, limit > 0 ? limit : 20);
    json_t *a = json_array();
    int rc;
    while ((rc = rp_db_step(st)) == RP_DB_ROW) {
        char at[32];
        rp_time_format(rp_db_col_int(st, 9), at);
        json_t *status = rp_db_col_type(st, 6) == RP_DB_NULL
                             ? json_null()
                             : json_integer(rp_db_col_int(st, 6));
        json_array_append_new(
            a, json_pack("{s:I,s:I,s:I,s:o,s:o,s:i,s:o,s:o,s:I,s:s,s:s}", "id",
                         (json_int_t)rp_db_col_int(st, 0), "webhook",
                         (json_int_t)rp_db_col_int(st, 1), "seq",
                         (json_int_t)rp_db_col_int(st, 2), "event", text_or_null(st, 3),
                         "type", text_or_null(st, 4), "attempt", (int)rp_db_col_int(st, 5),
                         "status", status, "error", text_or_null(st, 7), "duration_ms",
                         (json_int_t)rp_db_col_int(st, 8), "at", at, "outcome",
                         rp_db_col_text(st, 10)));
    }
    rp_db_reset(st);
    if (rc != RP_DB_DONE) {
        json_decref(a);
        return rp_db_error(rp_store_db(s), rc, "cannot read the delivery log", err);
    }
    *out = a;
    return 0;
}

static bool webhook_exists(rp_store_t *s, int64_t id)
{
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "SELECT 1 FROM rp_webhooks WHERE id = ?", NULL);
    if (!st)
        return false;
    rp_db_bind_int(st, 1, id);
    bool yes = rp_db_step(st) == RP_DB_ROW;
    rp_db_reset(st);
    return yes;
}

int rp_webhook_dead(rp_store_t *s, int64_t id, json_t **out, rp_error_t *err)
{
    *out = NULL;
    char name[32];
    rp__webhook_sub_name(id, name);
    if (id && !webhook_exists(s, id))
        return no_webhook(id, err);
    json_t *all = NULL;
    int rc = rp_events_dead(s, id ? name : NULL, &all, err);
    if (rc)
        return rc;
    json_t *a = json_array();
    size_t i;
    json_t *d;
    size_t plen = strlen(SUB_PREFIX);
    json_array_foreach(all, i, d) {
        const char *sub = json_string_value(json_object_get(d, "subscriber"));
        if (!sub || strncmp(sub, SUB_PREFIX, plen) != 0)
            continue;
        json_object_set_new(d, "webhook", json_integer(strtoll(sub + plen, NULL, 10)));
        json_array_append(a, d);
    }
    json_decref(all);
    *out = a;
    return 0;
}

int rp_webhook_replay(rp_store_t *s, int64_t dead_id, rp_error_t *err)
{
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "SELECT 1 FROM rp_dead WHERE id = ? AND subscriber GLOB"
                                   " 'webhook:[0-9]*'", err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_int(st, 1, dead_id);
    bool found = rp_db_step(st) == RP_DB_ROW;
    rp_db_reset(st);
    if (!found)
        return rp_error_set(err, RP_ENOTFOUND, RP_C_WEBHOOK,
                            "there is no webhook dead letter %lld (see webhooks dead)",
                            (long long)dead_id);
    return rp_events_replay(s, dead_id, err);
}
