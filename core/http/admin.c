/*
 * admin.c — the engine room of the console, /api/v1/admin/…: the event log (a page, and a live
 * stream of server-sent events), jobs and dead jobs with retry, subscribers' dead letters with
 * replay. The Lua line and the users and tokens are admin_eval.c's.
 *
 * Who is an admin: a signed-in user (not a record's session) whose role is named "admin", the
 * role that grants everything unless a setting roles.admin narrows it (rapport/access.h), as
 * the command line's administration commands are the installation owner's. Anyone else is
 * answered 403 by every route here, whatever a page shows.
 *
 * The live log: GET /api/v1/admin/events/stream?after=SEQ answers text/event-stream and stays
 * open. The engine wakes it after each of its passes (rp_sched_on_pass): at once after a
 * commit of this server, within the engine's poll (100 ms) for another process's. A pass reads
 * the log only when a stream is open and behind the newest event. Each stream has one send in
 * flight at a time (h2o's generator: the next waits for proceed); a heartbeat comment every
 * 15 s (http.live_heartbeat_ms) keeps proxies from closing it, and then its reader is checked
 * again (signed out, revoked, no longer an admin: it ends). At most ADMIN_STREAMS are open
 * (503 beyond).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <h2o.h>
#include <uv.h>

#include "rapport/access.h"
#include "rapport/auth.h"
#include "rapport/session.h"
#include "rapport/events.h"
#include "rapport/sched.h"

#include "http_internal.h"

#define ADMIN_STREAMS 8       /* live logs open at once */
#define STREAM_BATCH 100      /* events read for one stream in one pass */
#define STREAM_BUF_MAX (1u << 20) /* bytes waiting for a slow reader before it is dropped */
#define STREAM_BUF_SOFT (256u << 10) /* catching up pauses here until the reader takes it */

typedef struct stream {
    h2o_generator_t gen;  /* first: h2o hands it back */
    h2o_req_t *req;
    rp_http_t *h;
    rp_access_t *access;  /* the caller's, to show each event as they may see it */
    int64_t seq;          /* the last event sent */
    char user[80];        /* who opened it, checked again at each heartbeat */
    char session[64];     /* the session cookie's secret that let it in, or "" (a token) */
    char *inflight;       /* the bytes h2o is sending (valid until proceed) */
    char *buf;            /* what waits for the next send */
    size_t len, cap;
    bool sending;  /* a send is in flight: the next waits for proceed */
    bool linked;   /* in the server's list of streams */
    bool closing;  /* we end it: the final send goes out when nothing is in flight */
    bool gone;     /* the client left or the answer is final: the request is not touched */
    struct stream *next;
} stream_t;

struct rp_http_admin {
    stream_t *streams;
    int nstreams;
    uv_timer_t beat;
    bool beat_ready;
};

/* ---- who may ------------------------------------------------------------------------- */

bool rp__http_is_admin(call_t *c)
{
    const char *kind = json_string_value(json_object_get(c->who, "kind"));
    const char *role = json_string_value(json_object_get(c->who, "role"));
    return !(kind && strcmp(kind, "record") == 0) && role && strcmp(role, "admin") == 0;
}

/* ---- the live log -------------------------------------------------------------------- */

static bool append(stream_t *st, const char *p, size_t n)
{
    if (st->len + n + 1 > st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 4096;
        while (cap < st->len + n + 1)
            cap *= 2;
        if (cap > STREAM_BUF_MAX)
            return false;
        char *b = realloc(st->buf, cap);
        if (!b)
            return false;
        st->buf = b;
        st->cap = cap;
    }
    memcpy(st->buf + st->len, p, n);
    st->len += n;
    st->buf[st->len] = '\0';
    return true;
}

/* Hands what waits to h2o when nothing is in flight. */
static void flush(stream_t *st)
{
    if (st->sending || st->len == 0 || st->closing || st->gone)
        return;
    free(st->inflight);
    st->inflight = st->buf;
    h2o_iovec_t v = h2o_iovec_init(st->inflight, st->len);
    st->buf = NULL;
    st->len = st->cap = 0;
    st->sending = true;
    h2o_send(st->req, &v, 1, H2O_SEND_STATE_IN_PROGRESS);
}

static void unlink_stream(rp_http_t *h, stream_t *st)
{
    if (!st->linked)
        return;
    st->linked = false;
    for (stream_t **p = &h->admin->streams; *p; p = &(*p)->next)
        if (*p == st) {
            *p = st->next;
            h->admin->nstreams--;
            break;
        }
    if (h->admin->nstreams == 0) {
        rp_sched_on_pass(h->e, NULL, NULL);
        if (h->admin->beat_ready)
            uv_timer_stop(&h->admin->beat);
    }
}

/* The stream's memory lives in the request's pool; this frees what it holds besides. */
static void stream_dispose(void *p)
{
    stream_t *st = p;
    unlink_stream(st->h, st);
    st->gone = true;
    free(st->inflight);
    free(st->buf);
    rp_access_free(st->access);
    st->inflight = st->buf = NULL;
    st->access = NULL;
}

static void stream_catch_up(stream_t *st, int64_t last);

static void on_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    (void)req;
    stream_t *st = (stream_t *)g;
    st->sending = false;
    if (st->closing && !st->gone) {
        st->gone = true;
        h2o_send(st->req, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    /* A long catch-up (after=0 on a big log) goes on as the reader takes what was sent. */
    if (st->len == 0) {
        int64_t last = rp_events_last_seq(st->h->s);
        if (st->seq < last) {
            stream_catch_up(st, last);
            return;
        }
    }
    flush(st);
}

static void on_stop(h2o_generator_t *g, h2o_req_t *req)
{
    (void)req;
    stream_t *st = (stream_t *)g;
    unlink_stream(st->h, st);
    st->gone = true; /* the client left: nothing more is sent */
}

/* Ends @p st's answer (the server stops, or the reader is too slow to keep). */
static void stream_end(stream_t *st)
{
    unlink_stream(st->h, st);
    if (st->closing || st->gone)
        return;
    st->closing = true;
    if (!st->sending) {
        st->gone = true;
        h2o_send(st->req, NULL, 0, H2O_SEND_STATE_FINAL);
    } /* else on_proceed sends the final part */
}

/* Reads the events after the stream's last, as its reader may see them, into its buffer. */
static void stream_catch_up(stream_t *st, int64_t last)
{
    /* While a group of writes is open its events are not committed yet (and may never be):
     * the engine's pass after its commit catches up. */
    if (st->h->group) {
        flush(st);
        return;
    }
    rp_event_t evs[STREAM_BATCH];
    for (int round = 0; round < 10 && st->seq < last && !st->closing && !st->gone &&
                        st->len < STREAM_BUF_SOFT;
         round++) {
        int n = rp_events_list(st->h->s, st->seq, false, evs, STREAM_BATCH, NULL);
        if (n <= 0)
            return;
        for (int i = 0; i < n; i++) {
            json_t *ev = rp_event_json(&evs[i]);
            st->seq = evs[i].seq;
            if (ev && rp_access_event(st->h->s, st->access, ev, NULL) == 1) {
                char *text = json_dumps(ev, JSON_COMPACT);
                char head[48];
                int hl = snprintf(head, sizeof head, "id: %" PRId64 "\ndata: ", evs[i].seq);
                if (!text || !append(st, head, (size_t)hl) || !append(st, text, strlen(text)) ||
                    !append(st, "\n\n", 2)) {
                    free(text);
                    json_decref(ev);
                    for (int k = i; k < n; k++)
                        rp_event_clear(&evs[k]);
                    rp__http_say(st->h, "warn", "a live log's reader is too slow: it is closed");
                    stream_end(st);
                    return;
                }
                free(text);
            }
            json_decref(ev);
            rp_event_clear(&evs[i]);
        }
    }
    flush(st);
}

/* After each pass of the engine: the streams behind the log catch up. */
static void on_pass(void *ud)
{
    rp_http_t *h = ud;
    if (!h->admin || !h->admin->streams)
        return;
    int64_t last = rp_events_last_seq(h->s);
    stream_t *next;
    for (stream_t *st = h->admin->streams; st; st = next) {
        next = st->next;
        if (st->seq < last)
            stream_catch_up(st, last);
    }
}

/* Whether the stream's reader may still read it: a session not ended, revoked or expired (its
 * idle limit aside: the open log is its use), a user still enabled and still an admin. */
static bool still_allowed(stream_t *st)
{
    rp_store_t *s = st->h->s;
    json_t *who = NULL;
    if (st->session[0] && rp_sessions_check(s, st->session, 0, &who, NULL) != 0)
        return false;
    json_decref(who);
    json_t *u = NULL;
    if (rp_users_get(s, st->user, &u, NULL) != 0)
        return false;
    const char *role = json_string_value(json_object_get(u, "role"));
    bool ok = role && strcmp(role, "admin") == 0 && !json_is_true(json_object_get(u, "disabled"));
    json_decref(u);
    return ok;
}

/* Every heartbeat: a comment to each stream (a reader that left shows when the write fails),
 * and a stream whose reader may no longer read it ends. */
static void beat_all(rp_http_t *h, bool check)
{
    stream_t *next;
    for (stream_t *st = h->admin->streams; st; st = next) {
        next = st->next;
        if (check && !still_allowed(st))
            stream_end(st);
        else if (append(st, ": heartbeat\n\n", 13))
            flush(st);
    }
}

static void on_beat(uv_timer_t *t)
{
    beat_all(t->data, true);
}

static int events_stream(call_t *c)
{
    rp_http_t *h = c->h;
    if (!h->admin && !(h->admin = calloc(1, sizeof *h->admin)))
        return rp__http_problem(c, 503, "out of memory", NULL);
    if (h->admin->nstreams >= ADMIN_STREAMS) {
        /* h2o reads nothing from a connection while its answer streams: a reader that left
         * shows only when a write fails. Write to every stream now, so those that are gone
         * free their places for the retry. */
        beat_all(h, false);
        rp__http_add_header(c, H2O_TOKEN_RETRY_AFTER, "1");
        return rp__http_problemf(c, 503, NULL, "%d live logs are open, the most there may be; "
                                 "close one or try again later", ADMIN_STREAMS);
    }
    int64_t after = -1;
    const char *a = rp__http_param(c, "after");
    if (a) {
        char *end;
        long long v = strtoll(a, &end, 10);
        if (!*a || *end || v < 0)
            return rp__http_problem(c, 400, "after must be an event's seq, 0 or more", "after");
        after = v;
    }
    /* Without after: from now (what is written next). */
    /* The stream keeps an access of its own for its life: a remembered token's is the token
     * cache's, freed once the file changes. */
    rp_access_t *mine = c->access;
    if (c->access_kept) {
        rp_error_t err = {0};
        if (rp_access_load(h->s, json_string_value(json_object_get(c->who, "user")),
                           json_string_value(json_object_get(c->who, "role")),
                           json_string_value(json_object_get(c->who, "team")), &mine, &err))
            return rp__http_store_problem(c, &err, false);
    }
    int64_t last = rp_events_last_seq(h->s);
    stream_t *st = h2o_mem_alloc_shared(&c->req->pool, sizeof *st, stream_dispose);
    memset(st, 0, sizeof *st);
    st->gen.proceed = on_proceed;
    st->gen.stop = on_stop;
    st->req = c->req;
    st->h = h;
    st->access = mine; /* kept for the stream's life */
    const char *user = json_string_value(json_object_get(c->who, "user"));
    snprintf(st->user, sizeof st->user, "%s", user ? user : "");
    snprintf(st->session, sizeof st->session, "%s", c->session);
    c->access = NULL;
    st->seq = after >= 0 ? after : last;
    st->next = h->admin->streams;
    st->linked = true;
    h->admin->streams = st;
    h->admin->nstreams++;
    if (!h->admin->beat_ready && h->loop) {
        uv_timer_init(h->loop, &h->admin->beat);
        h->admin->beat.data = h;
        h->admin->beat_ready = true;
    }
    if (h->admin->beat_ready)
        uv_timer_start(&h->admin->beat, on_beat, (uint64_t)h->o.heartbeat_ms,
                       (uint64_t)h->o.heartbeat_ms);
    rp_sched_on_pass(h->e, on_pass, h);
    c->req->res.status = 200;
    c->req->res.reason = "OK";
    h2o_add_header(&c->req->pool, &c->req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/event-stream; charset=utf-8"));
    h2o_start_response(c->req, &st->gen);
    /* The first bytes open the stream at once (the browser's EventSource reports it open). */
    char hello[64];
    int n = snprintf(hello, sizeof hello, ": live log after %" PRId64 "\nretry: 2000\n\n",
                     st->seq);
    append(st, hello, (size_t)n);
    stream_catch_up(st, last);
    flush(st);
    return 0;
}

void rp__http_admin_stop(rp_http_t *h)
{
    rp__http_admin_tests_stop(h);
    if (!h->admin)
        return;
    while (h->admin->streams)
        stream_end(h->admin->streams);
    if (h->admin->beat_ready) {
        uv_close((uv_handle_t *)&h->admin->beat, NULL);
        h->admin->beat_ready = false;
    }
}

void rp__http_admin_session_ended(rp_http_t *h, const char *secret)
{
    stream_t *next;
    for (stream_t *st = h->admin ? h->admin->streams : NULL; st; st = next) {
        next = st->next;
        if (st->session[0] && strcmp(st->session, secret) == 0)
            stream_end(st);
    }
}

void rp__http_admin_free(rp_http_t *h)
{
    free(h->admin);
    h->admin = NULL;
}

/* ---- the log, jobs, dead letters ------------------------------------------------------- */

/* GET admin/events?after=SEQ&limit=N: the events after SEQ (without after: the newest N),
 * oldest first, as the caller may see them, and the newest seq. */
static int events_page(call_t *c)
{
    int64_t limit = 50, after = 0;
    if (rp__http_param_int(c, "limit", 500, &limit))
        return -1;
    const char *a = rp__http_param(c, "after");
    if (a) {
        char *end;
        long long v = strtoll(a, &end, 10);
        if (!*a || *end || v < 0)
            return rp__http_problem(c, 400, "after must be an event's seq, 0 or more", "after");
        after = v;
    }
    rp_event_t *evs = calloc((size_t)limit, sizeof *evs);
    if (!evs)
        return rp__http_problem(c, 503, "out of memory", NULL);
    rp_error_t err = {0};
    int n = rp_events_list(c->h->s, after, a == NULL, evs, (int)limit, &err);
    if (n < 0) {
        free(evs);
        return rp__http_store_problem(c, &err, false);
    }
    json_t *data = json_array();
    for (int i = 0; i < n; i++) {
        json_t *ev = rp_event_json(&evs[i]);
        if (ev && rp_access_event(c->h->s, c->access, ev, NULL) == 1)
            json_array_append(data, ev);
        json_decref(ev);
        rp_event_clear(&evs[i]);
    }
    free(evs);
    return rp__http_send_json(c, 200, json_pack("{s:o,s:I}", "data", data, "last_seq",
                                                (json_int_t)rp_events_last_seq(c->h->s)));
}

static int jobs_list(call_t *c)
{
    const char *state = rp__http_param(c, "state");
    if (state && strcmp(state, "pending") && strcmp(state, "running") && strcmp(state, "dead"))
        return rp__http_problem(c, 400, "state must be pending, running or dead", "state");
    json_t *out = NULL;
    rp_error_t err = {0};
    if (rp_jobs_list(c->h->s, state, &out, &err))
        return rp__http_store_problem(c, &err, true);
    return rp__http_send_json(c, 200, json_pack("{s:o}", "data", out));
}

static int dead_list(call_t *c)
{
    const char *sub = rp__http_param(c, "subscriber");
    json_t *out = NULL;
    rp_error_t err = {0};
    if (rp_events_dead(c->h->s, sub, &out, &err))
        return rp__http_store_problem(c, &err, true);
    return rp__http_send_json(c, 200, json_pack("{s:o}", "data", out));
}

static bool seg_id(const char *s, int64_t *id)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v <= 0)
        return false;
    *id = v;
    return true;
}

static int method_not_allowed(call_t *c, const char *allow)
{
    rp__http_add_header(c, H2O_TOKEN_ALLOW, allow);
    return rp__http_problemf(c, 405, NULL, "this path answers %s", allow);
}

int rp__http_admin(call_t *c, char **seg, int n)
{
    if (!rp__http_is_admin(c))
        return rp__http_problem(c, 403, "the engine room is for admins (a user whose role is "
                                "admin)", NULL);
    bool get = rp__http_method_is(c->req, "GET") || rp__http_method_is(c->req, "HEAD");
    bool post = rp__http_method_is(c->req, "POST");
    const char *what = n > 0 ? seg[0] : "";
    int64_t id = 0;
    if (n == 1 && strcmp(what, "events") == 0)
        return get ? events_page(c) : method_not_allowed(c, "GET");
    if (n == 2 && strcmp(what, "events") == 0 && strcmp(seg[1], "stream") == 0)
        return rp__http_method_is(c->req, "GET") ? events_stream(c)
                                                 : method_not_allowed(c, "GET");
    if (n == 1 && strcmp(what, "engine") == 0)
        return get ? rp__http_admin_engine(c, false) : method_not_allowed(c, "GET");
    if (n == 2 && strcmp(what, "scripts") == 0 && strcmp(seg[1], "reload") == 0)
        return post ? rp__http_admin_engine(c, true) : method_not_allowed(c, "POST");
    if (n == 2 && strcmp(what, "scripts") == 0 && strcmp(seg[1], "test") == 0)
        return post ? rp__http_admin_tests(c) : method_not_allowed(c, "POST");
    if (n == 1 && strcmp(what, "jobs") == 0)
        return get ? jobs_list(c) : method_not_allowed(c, "GET");
    if (n == 1 && strcmp(what, "dead") == 0)
        return get ? dead_list(c) : method_not_allowed(c, "GET");
    if (n == 3 && (strcmp(what, "jobs") == 0 || strcmp(what, "dead") == 0)) {
        bool jobs = what[0] == 'j';
        if (strcmp(seg[2], jobs ? "retry" : "replay") != 0)
            return rp__http_problem(c, 404, "no such path", NULL);
        if (!post)
            return method_not_allowed(c, "POST");
        if (!seg_id(seg[1], &id))
            return rp__http_problemf(c, 404, NULL, "\"%s\" is not an id", seg[1]);
        rp_error_t err = {0};
        int rc = jobs ? rp_jobs_retry(c->h->s, id, &err) : rp_events_replay(c->h->s, id, &err);
        if (rc)
            return rp__http_store_problem(c, &err, false);
        return rp__http_send_json(c, 200, json_pack("{s:I,s:s}", "id", (json_int_t)id,
                                                    "queued", jobs ? "retry" : "replay"));
    }
    return rp__http_admin_more(c, seg, n);
}
