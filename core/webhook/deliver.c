/*
 * deliver.c — the webhook deliverer: a thread with its own connection that POSTs with libcurl's
 * multi interface, one attempt in flight per webhook, so a slow receiver holds back only itself;
 * every connection it opens or reuses is checked against where webhooks may go (dest.c).
 */
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <sodium.h>
#include <uv.h>

#include "rapport/db.h"
#include "rapport/store.h"
#include "rapport/access.h"
#include "rapport/log.h"
#include "rapport/webhook.h"
#include "webhook_int.h"

enum { QMAX = 32, SNIPPET = 200, REFRESH_MS = 1000, BACKOFF_MS = 1000, PRUNE_MS = 60000,
       PRUNE_ROWS = 500 };

/* One webhook as the deliverer knows it. */
typedef struct hook {
    struct hook *next;
    rp_webhook_deliverer_t *d;
    int64_t id;
    char name[32];
    char *url, *events, *secret, *owner;
    char origin[300];    /* the URL without what may be a credential, for log lines */
    char host[264];      /* the URL's host as libcurl reads it, for the allow list */
    bool active, seen;
    int64_t next_at;     /* when to look for work again (store clock) */
    rp_event_t q[QMAX];  /* events read, not yet done: q[qi .. qn) */
    int qi, qn;
    int64_t skipped;     /* the newest event passed over and not yet acknowledged */
    rp_access_t *access; /* the owner's, loaded with each batch (NULL: unrestricted) */
    bool loaded;         /* access is loaded for the events in q */
    /* The attempt in flight. */
    CURL *easy;
    struct curl_slist *hdrs;
    char *body;
    char resp[SNIPPET + 1];
    size_t resp_len;
    char errbuf[CURL_ERROR_SIZE];
    int opened, refused;  /* connections the attempt opened, and those refused */
    char refused_why[160];
} hook_t;

struct rp_webhook_deliverer {
    rp_store_t *s;
    char *path;
    rp_webhook_opts_t o;
    CURLM *multi;
    uv_thread_t thread;
    atomic_bool stop;
    hook_t *hooks;
    int64_t refresh_at, prune_at;
    int schema_cookie;
    rp_webhook_allow_t *allow; /* the allow list in force (NULL: empty) */
    char *allow_text;          /* its text as last read, to notice a change */
    char *allow_override;      /* o.allow_networks, copied */
};

static void say(rp_webhook_deliverer_t *d, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(rp_webhook_deliverer_t *d, const char *level, const char *fmt, ...)
{
    if (!d->o.log)
        return;
    va_list ap;
    va_start(ap, fmt);
    rp_log_vto(d->o.log, d->o.log_ud, level, "webhook", fmt, ap);
    va_end(ap);
}

/* Forgets the events read and the access they were to be checked with. */
static void queue_clear(hook_t *h)
{
    for (int i = h->qi; i < h->qn; i++)
        rp_event_clear(&h->q[i]);
    h->qi = h->qn = 0;
    rp_access_free(h->access);
    h->access = NULL;
    h->loaded = false;
}

static void attempt_free(rp_webhook_deliverer_t *d, hook_t *h)
{
    if (h->easy) {
        curl_multi_remove_handle(d->multi, h->easy);
        curl_easy_cleanup(h->easy);
        h->easy = NULL;
    }
    curl_slist_free_all(h->hdrs);
    h->hdrs = NULL;
    free(h->body);
    h->body = NULL;
}

static void hook_free(rp_webhook_deliverer_t *d, hook_t *h)
{
    attempt_free(d, h);
    queue_clear(h);
    free(h->url);
    free(h->events);
    if (h->secret) {
        sodium_memzero(h->secret, strlen(h->secret));
        free(h->secret);
    }
    free(h->owner);
    free(h);
}

/* An entity defined by another process is not in this connection's registry, and the owner's
 * read scope may need a record of it: open afresh when the schema changed. */
static void follow_schema(rp_webhook_deliverer_t *d)
{
    int cookie = rp_db_schema_cookie(rp_store_db(d->s));
    if (cookie == d->schema_cookie)
        return;
    rp_store_t *fresh = NULL;
    rp_error_t err = {0};
    rp_store_opts_t so = {.must_exist = true};
    if (rp_store_open(d->path, &so, &fresh, &err)) {
        say(d, "warn", "cannot reopen the database after a schema change: %s", err.msg);
        return;
    }
    rp_store_close(d->s);
    d->s = fresh;
    d->schema_cookie = cookie;
}

/* Reads the allow list again, and takes it when it changed. One that does not parse leaves
 * the list empty, so nothing is let through that should not be. */
static void follow_allow(rp_webhook_deliverer_t *d)
{
    json_t *v = NULL;
    char *text = NULL;
    if (d->allow_override) {
        text = strdup(d->allow_override);
    } else {
        int rc = rp_config_get(d->s, RP_WEBHOOK_ALLOW_SETTING, &v, NULL);
        if (rc && rc != RP_ENOTFOUND)
            return; /* unreadable now: the list in force stays */
        text = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : strdup("");
    }
    if (!text || (d->allow_text && strcmp(text, d->allow_text) == 0)) {
        json_decref(v);
        free(text);
        return;
    }
    rp_webhook_allow_t *a = NULL;
    rp_error_t err = {0};
    int rc = d->allow_override ? rp_webhook_allow_parse(d->allow_override, &a, &err)
                               : rp_webhook_allow_json(v, &a, &err);
    if (rc)
        say(d, "warn", "%s; until it is fixed webhooks deliver to public addresses only",
            err.msg);
    else if (*text || d->allow_text)
        say(d, "info", "%s is now %s", RP_WEBHOOK_ALLOW_SETTING,
            *text ? text : "empty: webhooks deliver to public addresses only");
    rp_webhook_allow_free(d->allow);
    d->allow = a;
    free(d->allow_text);
    d->allow_text = text;
    json_decref(v);
}

/* Brings the webhooks in memory in step with the table. */
static void refresh(rp_webhook_deliverer_t *d)
{
    follow_schema(d);
    follow_allow(d);
    for (hook_t *h = d->hooks; h; h = h->next)
        h->seen = false;
    rp_error_t err = {0};
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(d->s), "SELECT id, url, events, secret, owner, active"
                                      " FROM rp_webhooks ORDER BY id", &err);
    if (!st) {
        say(d, "error", "cannot read the webhooks: %s", err.msg);
        for (hook_t *h = d->hooks; h; h = h->next)
            h->seen = true; /* keep them until the table can be read */
        return;
    }
    int rc;
    while ((rc = rp_db_step(st)) == RP_DB_ROW) {
        int64_t id = rp_db_col_int(st, 0);
        hook_t *h = d->hooks;
        while (h && h->id != id)
            h = h->next;
        if (!h) {
            h = calloc(1, sizeof *h);
            if (!h)
                break;
            h->id = id;
            rp__webhook_sub_name(id, h->name);
            h->url = strdup(rp_db_col_text(st, 1));
            h->events = strdup(rp_db_col_text(st, 2));
            h->secret = strdup(rp_db_col_text(st, 3));
            h->owner = strdup(rp_db_col_text(st, 4));
            if (!h->url || !h->events || !h->secret || !h->owner) {
                hook_free(d, h);
                break;
            }
            rp__webhook_url_origin(h->url, h->origin, sizeof h->origin);
            h->d = d;
            rp_webhook_url_host(h->url, h->host, sizeof h->host, NULL);
            h->next = d->hooks;
            d->hooks = h;
        }
        h->active = (int)rp_db_col_int(st, 5) != 0;
        h->seen = true;
    }
    if (rc != RP_DB_ROW && rc != RP_DB_DONE) {
        rp_db_error(rp_store_db(d->s), rc, "cannot read the webhooks", &err);
        say(d, "error", "%s", err.msg);
        for (hook_t *h = d->hooks; h; h = h->next)
            h->seen = true;
    }
    rp_db_reset(st);
    /* Removed webhooks go; one with an attempt in flight abandons it (its subscriber is gone,
     * so there is nothing to record it against). */
    for (hook_t **pp = &d->hooks; *pp;) {
        hook_t *h = *pp;
        if (h->seen) {
            pp = &h->next;
            continue;
        }
        *pp = h->next;
        hook_free(d, h);
    }
}

static int ack(rp_webhook_deliverer_t *d, hook_t *h, int64_t seq)
{
    rp_error_t err = {0};
    int rc = rp_events_ack(d->s, h->name, seq, &err);
    if (rc)
        say(d, "error", "webhook %lld: cannot acknowledge event %lld: %s", (long long)h->id,
            (long long)seq, err.msg);
    return rc;
}

static int flush_skipped(rp_webhook_deliverer_t *d, hook_t *h)
{
    if (!h->skipped)
        return 0;
    int rc = ack(d, h, h->skipped);
    if (!rc)
        h->skipped = 0;
    return rc;
}

/* Waits @p ms before looking at this webhook again, forgetting what was read. */
static void back_off(rp_webhook_deliverer_t *d, hook_t *h, int64_t ms)
{
    queue_clear(h);
    h->next_at = rp_store_now(d->s) + ms;
}

/* Keeps the start of a non-2xx answer for the log: a receiver often says there what it
 * disliked. */
static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    hook_t *h = ud;
    size_t len = size * n;
    size_t room = SNIPPET - h->resp_len;
    size_t take = len < room ? len : room;
    memcpy(h->resp + h->resp_len, data, take);
    h->resp_len += take;
    h->resp[h->resp_len] = '\0';
    return len;
}

/* The answer's start as text the log can hold: one line, and valid UTF-8 (a cut in the middle
 * of a character drops it; bytes that are no UTF-8 at all become '?'). */
static void snippet_clean(hook_t *h)
{
    size_t n = h->resp_len;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)h->resp[i] < ' ')
            h->resp[i] = ' ';
    for (int cut = 0; cut < 4 && n >= (size_t)cut; cut++) {
        json_t *t = json_stringn(h->resp, n - (size_t)cut);
        if (t) {
            json_decref(t);
            h->resp[n - (size_t)cut] = '\0';
            return;
        }
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)h->resp[i] >= 0x80)
            h->resp[i] = '?';
}

static int add_header(struct curl_slist **list, const char *name, const char *value)
{
    char line[256];
    snprintf(line, sizeof line, "%s: %s", name, value);
    struct curl_slist *l = curl_slist_append(*list, line);
    if (!l)
        return RP_ENOMEM;
    *list = l;
    return 0;
}

/* Every connection an attempt opens: refused unless its address may be delivered to. The
 * resolved address is judged, so a name that resolves inside since it was added is caught;
 * curl goes on to the host's next address. */
static curl_socket_t open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    hook_t *h = ud;
    (void)purpose;
    char why[sizeof h->refused_why];
    if (rp_webhook_dest_refused(h->d->allow, &a->addr, why, sizeof why)) {
        if (!h->refused++)
            memcpy(h->refused_why, why, sizeof why);
        return CURL_SOCKET_BAD;
    }
    h->opened++;
    return socket(a->family, a->socktype, a->protocol);
}

/* Before each request, also on a connection kept from an earlier attempt (opened while the
 * allow list was wider): the peer's address judged again. */
static int before_request(void *ud, char *peer, char *local, int peer_port, int local_port)
{
    hook_t *h = ud;
    (void)local;
    (void)peer_port;
    (void)local_port;
    struct sockaddr_in in = {.sin_family = AF_INET};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    struct sockaddr_storage none = {.ss_family = AF_UNSPEC};
    const struct sockaddr *sa = (const struct sockaddr *)&none;
    if (peer && inet_pton(AF_INET, peer, &in.sin_addr) == 1)
        sa = (const struct sockaddr *)&in;
    else if (peer && inet_pton(AF_INET6, peer, &in6.sin6_addr) == 1)
        sa = (const struct sockaddr *)&in6;
    char why[sizeof h->refused_why];
    if (!rp_webhook_dest_refused(h->d->allow, sa, why, sizeof why))
        return CURL_PREREQFUNC_OK;
    if (!h->refused++)
        memcpy(h->refused_why, why, sizeof why);
    h->opened = 0; /* nothing was sent: the attempt counts as refused */
    return CURL_PREREQFUNC_ABORT;
}

/* Starts the POST of @p ev (redacted already, as @p body, owned) to @p h. */
static int start_attempt(rp_webhook_deliverer_t *d, hook_t *h, const rp_event_t *ev, char *body)
{
    h->body = body;
    h->resp_len = 0;
    h->resp[0] = '\0';
    h->errbuf[0] = '\0';
    h->opened = h->refused = 0;
    h->refused_why[0] = '\0';
    size_t len = strlen(body);
    int64_t ts = rp_store_now(d->s) / 1000;
    char sig[RP_WEBHOOK_SIG_SIZE], tstext[24], idtext[24];
    if (rp_webhook_sign(h->secret, ts, body, len, sig))
        return RP_EIO;
    snprintf(tstext, sizeof tstext, "%lld", (long long)ts);
    snprintf(idtext, sizeof idtext, "%lld", (long long)h->id);
    if (add_header(&h->hdrs, "Content-Type", "application/json") ||
        add_header(&h->hdrs, "X-Rapport-Event", ev->type) ||
        add_header(&h->hdrs, "X-Rapport-Delivery", ev->uid) ||
        add_header(&h->hdrs, "X-Rapport-Timestamp", tstext) ||
        add_header(&h->hdrs, "X-Rapport-Signature", sig) ||
        add_header(&h->hdrs, "X-Rapport-Webhook", idtext) ||
        /* No "Expect: 100-continue" round trip before a large body. */
        !(h->hdrs = curl_slist_append(h->hdrs, "Expect:")))
        return RP_ENOMEM;
    CURL *c = curl_easy_init();
    if (!c)
        return RP_ENOMEM;
    h->easy = c;
    long timeout = d->o.timeout_ms;
    curl_easy_setopt(c, CURLOPT_URL, h->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    /* A redirect would lead elsewhere unchecked by the add; a proxy from the environment would
     * connect in our stead, so the checks below would see the proxy, not the receiver. */
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    if (!rp_webhook_allow_host(d->allow, h->host)) {
        curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
        curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, h);
        curl_easy_setopt(c, CURLOPT_PREREQFUNCTION, before_request);
        curl_easy_setopt(c, CURLOPT_PREREQDATA, h);
    }
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, h->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->hdrs);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "Rapport-Webhooks/" RP_VERSION);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
    curl_easy_setopt(c, CURLOPT_PRIVATE, h);
    if (curl_multi_add_handle(d->multi, c) != CURLM_OK)
        return RP_EIO;
    return 0;
}

/*
 * Records attempt @p attempt of the head event of @p h with its outcome, in one transaction
 * with the acknowledgement or the failure, and moves on. @p status is the HTTP status (0: none
 * came); @p error NULL means delivered.
 */
static void record(rp_webhook_deliverer_t *d, hook_t *h, long status, const char *error,
                   bool retryable, int64_t duration_ms)
{
    rp_event_t *ev = &h->q[h->qi];
    rp_error_t err = {0};
    bool dead = false;
    int attempt = ev->attempts + 1;
    int max = d->o.retry.max_attempts > 0 ? d->o.retry.max_attempts : 5;
    /* A refusal that is no passing trouble (a 404, a 401 for a wrong secret) is not tried
     * again: one attempt is the last. */
    rp_retry_t once = {.max_attempts = 1};
    int rc = rp_store_begin(d->s, &err);
    if (rc)
        goto fail;
    if (!error)
        rc = rp_events_ack(d->s, h->name, ev->seq, &err);
    else
        rc = rp_events_fail(d->s, h->name, ev->seq, error, retryable ? &d->o.retry : &once,
                            &dead, &err);
    if (rc)
        goto rollback;
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(d->s), "INSERT INTO rp_webhook_deliveries(webhook_id, seq, attempt,"
                                      " status, error, duration_ms, at, outcome)"
                                      " VALUES(?, ?, ?, ?, ?, ?, ?, ?)", &err);
    if (!st) {
        rc = err.code ? err.code : RP_EIO;
        goto rollback;
    }
    rp_db_bind_int(st, 1, h->id);
    rp_db_bind_int(st, 2, ev->seq);
    rp_db_bind_int(st, 3, attempt);
    if (status > 0)
        rp_db_bind_int(st, 4, status);
    else
        rp_db_bind_null(st, 4);
    if (error)
        rp_db_bind_text(st, 5, error, -1);
    else
        rp_db_bind_null(st, 5);
    rp_db_bind_int(st, 6, duration_ms);
    rp_db_bind_int(st, 7, rp_store_now(d->s));
    rp_db_bind_text(st, 8, !error ? "delivered" : dead ? "dead" : "retry", -1);
    if ((rc = rp__webhook_step_done(d->s, st, "cannot write the delivery log", &err)) ||
        (rc = rp_store_commit(d->s, &err)))
        goto rollback;
    if (error && dead)
        say(d, "error", "webhook %lld dead-lettered event %lld (%s) after attempt %d: %s url=%s",
            (long long)h->id, (long long)ev->seq, ev->type, attempt, error, h->origin);
    else if (error)
        say(d, "warn", "webhook %lld: event %lld (%s) attempt %d/%d failed, will retry: %s "
            "url=%s", (long long)h->id, (long long)ev->seq, ev->type, attempt, max, error,
            h->origin);
    if (error && !dead) {
        /* The retry is due later: the next read says when. */
        back_off(d, h, 0);
        return;
    }
    rp_event_clear(ev);
    h->qi++;
    h->next_at = 0;
    return;
rollback:
    rp_store_rollback(d->s, NULL);
fail:
    say(d, "error", "webhook %lld: cannot record attempt %d of event %lld: %s", (long long)h->id,
        attempt, (long long)ev->seq, err.msg);
    /* Not recorded, so it will be delivered again: at least once. */
    back_off(d, h, BACKOFF_MS);
}

/* Reads the next events of @p h and loads its owner's access. 0 when there is none to do now. */
static int refill(rp_webhook_deliverer_t *d, hook_t *h)
{
    if (flush_skipped(d, h)) {
        back_off(d, h, BACKOFF_MS);
        return 0;
    }
    int64_t now = rp_store_now(d->s), retry_at = 0;
    rp_error_t err = {0};
    /* Paused or removed since the last refresh: a pause applies from the next batch on. */
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(d->s), "SELECT active FROM rp_webhooks WHERE id = ?", &err);
    if (st) {
        rp_db_bind_int(st, 1, h->id);
        if (rp_db_step(st) != RP_DB_ROW || (int)rp_db_col_int(st, 0) == 0)
            h->active = false;
        rp_db_reset(st);
    }
    if (!h->active) {
        h->next_at = now + BACKOFF_MS;
        return 0;
    }
    int n = rp_events_read(d->s, h->name, h->q, QMAX, &retry_at, &err);
    if (n < 0) {
        if (n != RP_ENOTFOUND) /* removed meanwhile: the next refresh drops it */
            say(d, "error", "webhook %lld: cannot read events: %s", (long long)h->id, err.msg);
        h->next_at = now + BACKOFF_MS;
        return 0;
    }
    if (n == 0) {
        h->next_at = retry_at > 0 ? retry_at : now + (d->o.poll_ms > 0 ? d->o.poll_ms : 100);
        return 0;
    }
    h->qi = 0;
    h->qn = n;
    /* Loaded with every batch, so a changed role applies from the next batch on. An owner who
     * is gone or disabled is a failed delivery of the first event: visible in the log, retried,
     * then dead; the rest wait for the access to load. */
    if (rp_access_of_user(d->s, h->owner, &h->access, &err)) {
        char why[600];
        snprintf(why, sizeof why, "the owner %s cannot receive events: %s", h->owner, err.msg);
        record(d, h, 0, why, true, 0);
        queue_clear(h);
        return 0;
    }
    h->loaded = true;
    return n;
}

/* Starts the next delivery of @p h, passing over the events it does not deliver. */
static void next_delivery(rp_webhook_deliverer_t *d, hook_t *h)
{
    for (int guard = 0; guard < 4 * QMAX && !atomic_load(&d->stop); guard++) {
        if (h->qi == h->qn || !h->loaded) {
            queue_clear(h);
            if (refill(d, h) == 0)
                return;
        }
        rp_event_t *ev = &h->q[h->qi];
        json_t *j = NULL;
        int v = rp_webhook_events_match(h->events, ev->type) ? 1 : 0;
        rp_error_t err = {0};
        if (v && !(j = rp_event_json(ev)))
            v = RP_ENOMEM;
        if (v == 1)
            v = rp_access_event(d->s, h->access, j, &err);
        if (v < 0) {
            json_decref(j);
            say(d, "error", "webhook %lld: cannot check event %lld against %s's access: %s",
                (long long)h->id, (long long)ev->seq, h->owner, err.msg);
            back_off(d, h, BACKOFF_MS);
            return;
        }
        if (v == 0) {
            /* Not for this webhook or not for its owner's eyes: acknowledged, never sent. A
             * replayed dead letter is resolved at once; the others in one go. */
            json_decref(j);
            if (ev->replay ? ack(d, h, ev->seq) : 0) {
                back_off(d, h, BACKOFF_MS);
                return;
            }
            if (!ev->replay)
                h->skipped = ev->seq;
            rp_event_clear(ev);
            h->qi++;
            continue;
        }
        char *body = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (!body || flush_skipped(d, h) || start_attempt(d, h, ev, body)) {
            if (!body)
                say(d, "error", "webhook %lld: out of memory", (long long)h->id);
            if (!h->body)
                free(body);
            attempt_free(d, h);
            back_off(d, h, BACKOFF_MS);
        }
        return;
    }
}

/* An attempt ended: classify it and record it. */
static void finished(rp_webhook_deliverer_t *d, hook_t *h, CURLcode res)
{
    long status = 0;
    curl_off_t us = 0;
    curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(h->easy, CURLINFO_TOTAL_TIME_T, &us);
    attempt_free(d, h);
    char why[600];
    const char *error = NULL;
    bool retryable = true;
    if (res == CURLE_OK && status >= 200 && status < 300) {
        error = NULL;
    } else if (res != CURLE_OK && h->refused && !h->opened) {
        /* Every address it led to is refused: no passing trouble, so dead at once. */
        snprintf(why, sizeof why, "refused to connect to %s: webhooks deliver there only when "
                 "the setting %s allows it", h->refused_why, RP_WEBHOOK_ALLOW_SETTING);
        error = why;
        retryable = false;
        status = 0;
    } else if (res == CURLE_OK) {
        snippet_clean(h);
        snprintf(why, sizeof why, "HTTP %ld%s%s", status, h->resp[0] ? ": " : "", h->resp);
        error = why;
        /* Passing trouble: the server failed, timed the request out, or asks us to slow down. */
        retryable = status >= 500 || status == 408 || status == 429;
    } else if (res == CURLE_OPERATION_TIMEDOUT) {
        snprintf(why, sizeof why, "no answer within %d ms (webhooks.timeout_ms)",
                 d->o.timeout_ms);
        error = why;
        status = 0;
    } else {
        snprintf(why, sizeof why, "%s", h->errbuf[0] ? h->errbuf : curl_easy_strerror(res));
        error = why;
        status = 0;
    }
    record(d, h, status, error, retryable, (int64_t)(us / 1000));
}

/* Drops the oldest rows of the delivery log past its age. A few hundred at a time, from the
 * oldest id on (ids grow with time), so it never scans the table nor holds the write lock long;
 * again at once while there is more. */
static void prune(rp_webhook_deliverer_t *d)
{
    if (d->o.log_keep_ms <= 0)
        return;
    rp_error_t err = {0};
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(d->s), "DELETE FROM rp_webhook_deliveries WHERE id IN (SELECT id"
                                      " FROM rp_webhook_deliveries ORDER BY id LIMIT ?2)"
                                      " AND at < ?1", &err);
    if (!st)
        return;
    int64_t now = rp_store_now(d->s);
    rp_db_bind_int(st, 1, now - d->o.log_keep_ms);
    rp_db_bind_int(st, 2, PRUNE_ROWS);
    int rc = rp_db_step(st);
    rp_db_reset(st);
    if (rc != RP_DB_DONE) {
        rp_db_error(rp_store_db(d->s), rc, "cannot prune the delivery log", &err);
        say(d, "warn", "%s", err.msg);
    }
    d->prune_at = now + (rc == RP_DB_DONE && rp_db_changes(rp_store_db(d->s)) == PRUNE_ROWS ? REFRESH_MS
                                                                                        : PRUNE_MS);
}

static void run(void *arg)
{
    rp_webhook_deliverer_t *d = arg;
    int poll_ms = d->o.poll_ms > 0 ? d->o.poll_ms : 100;
    while (!atomic_load(&d->stop)) {
        int64_t now = rp_store_now(d->s);
        if (now >= d->refresh_at) {
            refresh(d);
            d->refresh_at = now + REFRESH_MS;
        }
        if (now >= d->prune_at)
            prune(d);
        int64_t wake = d->refresh_at;
        for (hook_t *h = d->hooks; h && !atomic_load(&d->stop); h = h->next) {
            if (h->easy || !h->active)
                continue;
            if (h->next_at <= now)
                next_delivery(d, h);
            if (!h->easy && h->next_at < wake)
                wake = h->next_at;
        }
        int running = 0, left = 0, done = 0;
        curl_multi_perform(d->multi, &running);
        CURLMsg *m;
        while ((m = curl_multi_info_read(d->multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            hook_t *h = NULL;
            CURLcode res = m->data.result;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&h);
            if (h) {
                finished(d, h, res);
                done++;
            }
        }
        if (done)
            continue; /* a finished webhook may have its next event ready now */
        int64_t wait = wake - rp_store_now(d->s);
        if (wait > poll_ms)
            wait = poll_ms;
        if (wait < 0)
            wait = 0;
        curl_multi_poll(d->multi, NULL, 0, (int)wait, NULL);
    }
}

int rp_webhook_deliverer_start(rp_store_t *s, const rp_webhook_opts_t *o,
                               rp_webhook_deliverer_t **out, rp_error_t *err)
{
    *out = NULL;
    /* A replay's copy holds the live queue of deliveries: they are not its to send. */
    if (rp_store_offline(s))
        return rp_error_set(err, RP_EPERM, RP_C_WEBHOOK,
                            "webhooks are not delivered offline (a replay or a dry run)");
    const char *file = rp_db_path(rp_store_db(s));
    if (!file)
        return rp_error_set(err, RP_EINVAL, RP_C_WEBHOOK,
                            "webhooks are delivered from a database file, not from memory");
    if (sodium_init() < 0)
        return rp_error_set(err, RP_EIO, RP_C_WEBHOOK, "libsodium cannot start");
    rp_webhook_deliverer_t *d = calloc(1, sizeof *d);
    if (!d || !(d->path = strdup(file))) {
        free(d);
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    }
    if (o)
        d->o = *o;
    if (d->o.allow_networks && !(d->allow_override = strdup(d->o.allow_networks))) {
        free(d->path);
        free(d);
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    }
    d->o.allow_networks = NULL;
    if (d->o.timeout_ms <= 0)
        d->o.timeout_ms = 5000;
    atomic_init(&d->stop, false);
    int rc = 0;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(d->allow_override);
        free(d->path);
        free(d);
        return rp_error_set(err, RP_EIO, RP_C_WEBHOOK, "libcurl cannot start");
    }
    rp_store_opts_t so = {.must_exist = true};
    if ((rc = rp_store_open(d->path, &so, &d->s, err)))
        goto fail;
    d->schema_cookie = rp_db_schema_cookie(rp_store_db(d->s));
    if (!(d->multi = curl_multi_init())) {
        rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        goto fail;
    }
    /* The thread takes no signals: SIGTERM and SIGINT are the engine loop's, and a receiver
     * that closes early must not SIGPIPE the process. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int trc = uv_thread_create(&d->thread, run, d);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (trc != 0) {
        rc = rp_error_set(err, RP_EIO, RP_C_WEBHOOK, "cannot start the webhook thread: %s",
                          uv_strerror(trc));
        goto fail;
    }
    *out = d;
    return 0;
fail:
    if (d->multi)
        curl_multi_cleanup(d->multi);
    rp_store_close(d->s);
    curl_global_cleanup();
    free(d->allow_override);
    free(d->path);
    free(d);
    return rc;
}

void rp_webhook_deliverer_stop(rp_webhook_deliverer_t *d)
{
    if (!d)
        return;
    atomic_store(&d->stop, true);
    curl_multi_wakeup(d->multi);
    uv_thread_join(&d->thread);
    while (d->hooks) {
        hook_t *h = d->hooks;
        d->hooks = h->next;
        hook_free(d, h);
    }
    curl_multi_cleanup(d->multi);
    rp_store_close(d->s);
    curl_global_cleanup();
    rp_webhook_allow_free(d->allow);
    free(d->allow_text);
    free(d->allow_override);
    free(d->path);
    free(d);
}
