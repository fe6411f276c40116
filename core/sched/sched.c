/*
 * sched.c — the engine's time: the clock, durable jobs (schedule, claim, run, retry, dead
 * letters), cron schedules, and the pass that runs what is due and dispatches events. The serve
 * loop that calls the pass on libuv is loop.c.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "rapport/db.h"
#include "rapport/store.h"
#include "rapport/cron.h"
#include "rapport/log.h"
#include "rapport/sched.h"
#include "private.h"

/* Durable jobs and cron schedules. Never edit a released step; append one. */
static const rp_db_step_t sched_steps[] = {
    {1,
     "CREATE TABLE rp_jobs(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, key TEXT,"
     " payload TEXT NOT NULL, due_at INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'pending',"
     " attempts INTEGER NOT NULL DEFAULT 0, lease_until INTEGER, owner TEXT, error TEXT,"
     " created_at INTEGER NOT NULL, created_by TEXT NOT NULL);"
     "CREATE UNIQUE INDEX rp_jobs_key ON rp_jobs(key) WHERE key IS NOT NULL AND state = 'pending';"
     "CREATE INDEX rp_jobs_due ON rp_jobs(state, due_at);"
     "CREATE TABLE rp_schedules(name TEXT PRIMARY KEY, cron TEXT NOT NULL, tz TEXT NOT NULL,"
     " job TEXT NOT NULL, payload TEXT NOT NULL, next_at INTEGER NOT NULL, last_at INTEGER)"
     " WITHOUT ROWID;",
     NULL},
    /* The last job id handed out in each millisecond's range (jobs.c), so no id is ever used
     * twice; the row ms = -1 holds the ranges given up (past), never handed out again. */
    {2, "CREATE TABLE IF NOT EXISTS rp_job_ids(ms INTEGER PRIMARY KEY, last INTEGER NOT NULL);",
     NULL},
};
static const int sched_legacy[] = {0, 1, 1, 1};
static const rp_db_schema_t sched_schema = {"sched", sched_steps, 2, sched_legacy, 4};
RP_DB_SCHEMA(sched_schema)

/* The lease of a claim: a bound on the time from the claim's commit to the BEGIN IMMEDIATE of its
 * run (the store waits up to 5 s for another writer, then gives up), six times over. During the
 * run the write lock keeps every other engine out. An owner of this machine that dies is found
 * by its pid at once, so the lease only decides for owners judged from afar. A driver where a
 * run holds no lock that keeps other engines out (PostgreSQL, several nodes) must renew the
 * lease from a heartbeat while a handler runs, every third of it, and never judge by pid. */
#define RP__LEASE_MS 30000
#define RP__WAL_RESTART_PAGES 16384 /* 64 MB of 4 KB pages (each frame has a 24-byte header) */
#define RP__RECLAIM_EVERY_MS 1000
/* Jobs due now claimed at once and run in one transaction: two commits for the batch instead of
 * two for each job, which were nearly all of a job's cost (≈ 100 µs of a no-op job, most of it
 * writing and locking the WAL). */
#define RP__JOB_BATCH 64
#define RP__BATCH_MS 100 /* the longest a batch holds the write lock before handing jobs back */

void rp__sched_vsay(rp_log_fn log, void *ud, const char *level, const char *fmt, va_list ap)
{
    if (log) /* NULL: nowhere (rp_sched_opts_t.log) */
        rp_log_vto(log, ud, level, "sched", fmt, ap);
}

void rp__sched_say(rp_sched_t *e, const char *level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rp__sched_vsay(e->log, e->log_ud, level, fmt, ap);
    va_end(ap);
}

static int64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t engine_clock(void *ud)
{
    rp_sched_t *e = ud;
    return e->virt ? e->vnow : real_ms();
}

int64_t rp_sched_now(const rp_sched_t *e)
{
    return e->virt ? e->vnow : real_ms();
}


/* ---- the engine -------------------------------------------------------------------------- */

/* The built-in job "emit": appends the event its payload describes, {"type": …, "entity": …,
 * "record_id": …, "payload": {…}}, so any event can be scheduled for later. */
static int builtin_emit(rp_store_t *s, const rp_job_t *job, const rp_ctx_t *ctx, void *ud,
                        rp_error_t *err)
{
    (void)ud;
    json_t *p = json_loads(job->payload, 0, NULL);
    json_t *type = json_object_get(p, "type"), *entity = json_object_get(p, "entity");
    json_t *rid = json_object_get(p, "record_id"), *inner = json_object_get(p, "payload");
    int rc;
    if (!json_is_string(type) || (entity && !json_is_string(entity)) ||
        (rid && !json_is_integer(rid)) || (inner && !json_is_object(inner)))
        rc = rp_error_set(err, RP_EINVAL, RP_C_TYPE,
                          "job emit needs a payload {\"type\": text, \"entity\": text, "
                          "\"record_id\": integer, \"payload\": object}");
    else
        rc = rp_events_emit(s, ctx, json_string_value(type), json_string_value(entity),
                            rid ? json_integer_value(rid) : 0, inner, NULL, err);
    json_decref(p);
    return rc;
}

rp_sched_t *rp_sched_new(rp_store_t *s, const rp_sched_opts_t *opts)
{
    rp_sched_t *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    rp_sched_opts_t o = opts ? *opts : (rp_sched_opts_t){0};
    e->s = s;
    e->virt = o.virtual_clock;
    e->vnow = o.start_ms ? o.start_ms : real_ms();
    e->lease_ms = o.lease_ms > 0 ? o.lease_ms : RP__LEASE_MS;
    e->wal_restart_pages = o.wal_restart_pages > 0 ? o.wal_restart_pages : RP__WAL_RESTART_PAGES;
    e->retry = o.retry;
    if (e->retry.max_attempts <= 0)
        e->retry.max_attempts = 5;
    e->log = o.log;
    e->log_ud = o.log_ud;
    if (o.owner)
        snprintf(e->owner, sizeof e->owner, "%s", o.owner);
    else
        rp__owner_self(e->owner, sizeof e->owner);
    rp_store_set_clock(s, engine_clock, e);
    if (rp_sched_handler(e, "emit", builtin_emit, NULL, "core", NULL)) {
        rp_sched_free(e);
        return NULL;
    }
    return e;
}

const char *rp_sched_owner(const rp_sched_t *e)
{
    return e->owner;
}

void rp_sched_free(rp_sched_t *e)
{
    if (!e)
        return;
    rp_store_set_clock(e->s, NULL, NULL);
    for (int i = 0; i < e->nhandlers; i++) {
        free(e->handlers[i].name);
        free(e->handlers[i].owner);
    }
    free(e->handlers);
    for (int i = 0; i < e->nsubs; i++) {
        free(e->subs[i]->name);
        free(e->subs[i]->owner);
        free(e->subs[i]);
    }
    free(e->subs);
    free(e);
}

/* Whether two owners are the same one, across reloads ("script:x#1" and "script:x#2"). */
static bool same_owner(const char *a, const char *b)
{
    size_t la = strcspn(a, "#"), lb = strcspn(b, "#");
    return la == lb && strncmp(a, b, la) == 0;
}

int rp_sched_handler(rp_sched_t *e, const char *name, rp_job_fn fn, void *ud, const char *owner,
                     rp_error_t *err)
{
    if (!rp__job_name_ok(name) || !fn)
        return rp_error_set(err, RP_EINVAL, RP_C_IDENT,
                            "\"%s\" is not a valid job name (lower-case letters, digits, _ . - :)",
                            name ? name : "(null)");
    for (int i = 0; i < e->nhandlers; i++) {
        if (strcmp(e->handlers[i].name, name) == 0) {
            if (!same_owner(e->handlers[i].owner, owner ? owner : ""))
                return rp_error_set(err, RP_ECONFLICT, RP_C_DUP_FIELD,
                                    "job handler \"%s\" is already registered by %s", name,
                                    e->handlers[i].owner);
            /* The newest registration wins, and with it its owner. */
            char *o = strdup(owner ? owner : "");
            if (!o)
                return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
            free(e->handlers[i].owner);
            e->handlers[i].owner = o;
            e->handlers[i].fn = fn;
            e->handlers[i].ud = ud;
            return 0;
        }
    }
    handler_t *nh = realloc(e->handlers, sizeof *nh * (size_t)(e->nhandlers + 1));
    if (!nh)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    e->handlers = nh;
    nh[e->nhandlers++] = (handler_t){strdup(name), strdup(owner ? owner : ""), fn, ud};
    return 0;
}

static handler_t *handler_of(rp_sched_t *e, const char *name)
{
    for (int i = 0; i < e->nhandlers; i++)
        if (strcmp(e->handlers[i].name, name) == 0)
            return &e->handlers[i];
    return NULL;
}

bool rp_sched_has_handler(rp_sched_t *e, const char *name)
{
    return e && name && handler_of(e, name) != NULL;
}

/* Runs a subscriber's handler and says so when it fails, so failures are visible in the log. */
static int sub_trampoline(rp_store_t *s, const rp_event_t *ev, const rp_ctx_t *ctx, void *ud,
                          rp_error_t *err)
{
    sub_t *sub = ud;
    int rc = sub->fn(s, ev, ctx, sub->ud, err);
    if (rc) {
        int attempt = ev->attempts + 1, max = sub->e->retry.max_attempts;
        if (attempt >= max || ev->replay)
            rp__sched_say(sub->e, "error", "event dead-lettered subscriber=%s seq=%lld type=%s attempt=%d "
                "error=%s", sub->name, (long long)ev->seq, ev->type, attempt,
                err && err->msg[0] ? err->msg : "(none)");
        else
            rp__sched_say(sub->e, "warn", "handler failed subscriber=%s seq=%lld type=%s attempt=%d/%d "
                "error=%s", sub->name, (long long)ev->seq, ev->type, attempt, max,
                err && err->msg[0] ? err->msg : "(none)");
    }
    return rc;
}

int rp_sched_subscribe(rp_sched_t *e, const char *name, const char *types, bool from_now,
                       rp_event_fn fn, void *ud, const char *owner, rp_error_t *err)
{
    if (!fn)
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE, "subscriber %s needs a handler",
                            name ? name : "(null)");
    int rc = rp_events_subscribe(e->s, name, types, from_now, err);
    if (rc)
        return rc;
    e->quiet = false;
    for (int i = 0; i < e->nsubs; i++) {
        if (strcmp(e->subs[i]->name, name) == 0) {
            if (!same_owner(e->subs[i]->owner, owner ? owner : ""))
                return rp_error_set(err, RP_ECONFLICT, RP_C_DUP_FIELD,
                                    "subscriber \"%s\" is already registered by %s", name,
                                    e->subs[i]->owner);
            char *o = strdup(owner ? owner : "");
            if (!o)
                return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
            free(e->subs[i]->owner);
            e->subs[i]->owner = o;
            e->subs[i]->fn = fn;
            e->subs[i]->ud = ud;
            return 0;
        }
    }
    sub_t **ns = realloc(e->subs, sizeof *ns * (size_t)(e->nsubs + 1));
    sub_t *sub = calloc(1, sizeof *sub);
    if (!ns || !sub) {
        free(sub);
        if (ns)
            e->subs = ns;
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    }
    e->subs = ns;
    *sub = (sub_t){strdup(name), strdup(owner ? owner : ""), fn, ud, e};
    e->subs[e->nsubs++] = sub;
    return 0;
}

int rp_sched_unregister_owner(rp_sched_t *e, const char *owner)
{
    int n = 0;
    e->quiet = false;
    for (int i = e->nhandlers - 1; i >= 0; i--) {
        if (strcmp(e->handlers[i].owner, owner) != 0)
            continue;
        free(e->handlers[i].name);
        free(e->handlers[i].owner);
        memmove(&e->handlers[i], &e->handlers[i + 1],
                sizeof *e->handlers * (size_t)(e->nhandlers - i - 1));
        e->nhandlers--;
        n++;
    }
    for (int i = e->nsubs - 1; i >= 0; i--) {
        if (strcmp(e->subs[i]->owner, owner) != 0)
            continue;
        free(e->subs[i]->name);
        free(e->subs[i]->owner);
        free(e->subs[i]);
        memmove(&e->subs[i], &e->subs[i + 1], sizeof *e->subs * (size_t)(e->nsubs - i - 1));
        e->nsubs--;
        n++;
    }
    return n;
}

bool rp_sched_is_virtual(const rp_sched_t *e)
{
    return e->virt;
}

int rp_sched_every(rp_sched_t *e, const char *name, const char *cron, const char *tz,
                   const char *job, json_t *payload, rp_error_t *err)
{
    if (!rp__job_name_ok(name) || !rp__job_name_ok(job))
        return rp_error_set(err, RP_EINVAL, RP_C_IDENT,
                            "schedule \"%s\" of job \"%s\": names are lower-case letters, digits, "
                            "_ . - :", name ? name : "(null)", job ? job : "(null)");
    if (payload && !json_is_object(payload))
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE,
                            "the payload of schedule %s must be a JSON object", name);
    rp_cron_t c;
    int rc = rp_cron_parse(cron, tz, &c, err);
    if (rc)
        return rc;
    int64_t next;
    if ((rc = rp_cron_next(&c, rp_sched_now(e), &next, err)))
        return rc;
    char *text = (payload ? json_dumps(payload, JSON_COMPACT) : strdup("{}"));
    if (!text)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    /* The same expression keeps its next fire time (so a slot missed while the engine was down
     * still fires on start); a changed one starts afresh from now. */
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(e->s),
                                "INSERT INTO rp_schedules(name, cron, tz, job, payload, next_at)"
                                " VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(name) DO UPDATE SET"
                                " job = excluded.job, payload = excluded.payload,"
                                " next_at = CASE WHEN cron = excluded.cron AND tz = excluded.tz"
                                " THEN next_at ELSE excluded.next_at END,"
                                " cron = excluded.cron, tz = excluded.tz",
                                err);
    if (!st) {
        free(text);
        return err ? err->code : RP_EIO;
    }
    rp_db_bind_text(st, 1, name, -1);
    rp_db_bind_text(st, 2, cron, -1);
    rp_db_bind_text(st, 3, tz && *tz ? tz : "UTC", -1);
    rp_db_bind_text(st, 4, job, -1);
    rp_db_bind_text_owned(st, 5, text, -1);
    rp_db_bind_int(st, 6, next);
    if ((rc = rp_store_begin(e->s, err)))
        return rc;
    if ((rc = rp__sched_step(e->s, st, "cannot save the schedule", err))) {
        rp_store_rollback(e->s, NULL);
        return rc;
    }
    return rp_store_commit(e->s, err);
}

/* Enqueues the job of every schedule whose time has come, once per schedule whatever the number
 * of slots missed, and moves each schedule to its next slot after now. */
static int fire_schedules(rp_sched_t *e, rp_error_t *err)
{
    rp_store_t *s = e->s;
    int64_t now = rp_sched_now(e);
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "SELECT name, cron, tz, job, payload, next_at FROM rp_schedules"
                                   " WHERE next_at <= ? ORDER BY next_at", err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_int(st, 1, now);
    json_t *due = json_array();
    while (rp_db_step(st) == RP_DB_ROW)
        json_array_append_new(due, json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "name",
                                             rp_db_col_text(st, 0), "cron",
                                             rp_db_col_text(st, 1), "tz",
                                             rp_db_col_text(st, 2), "job",
                                             rp_db_col_text(st, 3), "payload",
                                             rp_db_col_text(st, 4), "next_at",
                                             (json_int_t)rp_db_col_int(st, 5)));
    rp_db_reset(st);
    size_t i;
    json_t *d;
    int rc = 0;
    json_array_foreach(due, i, d) {
        const char *name = json_string_value(json_object_get(d, "name"));
        int64_t slot = json_integer_value(json_object_get(d, "next_at")), next = INT64_MAX;
        rp_cron_t c;
        rp_error_t cerr = {0};
        if (rp_cron_parse(json_string_value(json_object_get(d, "cron")),
                          json_string_value(json_object_get(d, "tz")), &c, &cerr) ||
            rp_cron_next(&c, now, &next, &cerr)) {
            rp__sched_say(e, "error", "schedule broken name=%s error=%s", name, cerr.msg);
            next = INT64_MAX;
        }
        json_t *payload = json_loads(json_string_value(json_object_get(d, "payload")), 0, NULL);
        if (payload)
            json_object_set_new(payload, "scheduled_for", json_integer(slot));
        char key[160];
        snprintf(key, sizeof key, "cron:%s", name);
        rp_ctx_t ctx = {.actor = "cron", .origin = "sched"};
        if ((rc = rp_store_begin(s, err))) {
            json_decref(payload);
            break;
        }
        rp_db_stmt_t *up = rp_db_stmt(rp_store_db(s), "UPDATE rp_schedules SET last_at = ?1, next_at = ?2"
                                       " WHERE name = ?3 AND next_at = ?1", err);
        if (!up) {
            rc = err ? err->code : RP_EIO;
        } else {
            rp_db_bind_int(up, 1, slot);
            rp_db_bind_int(up, 2, next);
            rp_db_bind_text(up, 3, name, -1);
            rc = rp__sched_step(s, up, "cannot advance the schedule", err);
        }
        /* Another engine on this database may have fired it first: then we do nothing. */
        if (!rc && rp_db_changes(rp_store_db(s)) == 1)
            rc = rp_jobs_schedule(s, &ctx, json_string_value(json_object_get(d, "job")), payload,
                                  slot, key, NULL, err);
        json_decref(payload);
        if (rc) {
            rp_store_rollback(s, NULL);
            break;
        }
        if ((rc = rp_store_commit(s, err)))
            break;
    }
    json_decref(due);
    return rc;
}

/* What the job due first (pending and due, or claimed by an engine whose lease ran out) is: 0
 * none, 1 one that must run alone, 2 a first try without a key (batched); negative on error.
 * One read, so a pass with nothing due takes no write lock. */
static int next_claim(rp_sched_t *e, rp_error_t *err)
{
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(e->s),
                                  "SELECT due_at, id, alone FROM (SELECT due_at, id,"
                                  " (attempts > 0 OR key IS NOT NULL) AS alone FROM rp_jobs"
                                  " WHERE state = 'pending' AND due_at <= ?1"
                                  " ORDER BY due_at, id LIMIT 1) UNION ALL"
                                  " SELECT due_at, id, 1 FROM (SELECT due_at, id FROM rp_jobs"
                                  " WHERE state = 'running' AND lease_until < ?1"
                                  " ORDER BY due_at, id LIMIT 1) ORDER BY due_at, id LIMIT 1",
                                  err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_int(st, 1, rp_sched_now(e));
    int rc = rp_db_step(st), kind = 0;
    if (rc == RP_DB_ROW)
        kind = rp_db_col_int(st, 2) ? 1 : 2;
    rp_db_reset(st);
    if (rc != RP_DB_ROW && rc != RP_DB_DONE)
        return rp_db_error(rp_store_db(e->s), rc, "cannot look for due jobs", err);
    return kind;
}

/* Claims due jobs (or jobs whose lease ran out), oldest due first, for this engine, atomically:
 * one UPDATE … RETURNING, so two engines on one database never take the same job. The claim
 * commits before any of them runs, so a job that kills the engine has its attempt counted and
 * is dead-lettered after the last, not run for ever.
 * With @p batch, up to RP__JOB_BATCH jobs on their first try and without a key, run together
 * in one transaction (two commits for the batch, not two for each job); else one job of any
 * kind, run alone. Only first tries are batched: if a job kills the engine mid-batch, every job
 * of the batch is charged an attempt and from then on runs alone, so the one that killed it
 * goes on to the dead jobs by itself and the others are charged once. Only jobs without a key
 * are batched: a keyed job may be cancelled or moved by a handler run just before it, which
 * must find it pending. */
static int claim(rp_sched_t *e, json_t **jobs, bool batch, rp_error_t *err)
{
    int64_t now = rp_sched_now(e);
    /* Jobs run in due order: a batch takes only what falls due before the first job that must
     * run alone (a retry, a keyed job, one whose lease ran out). */
    int64_t bound_due = INT64_MAX, bound_id = INT64_MAX;
    if (batch) {
        rp_db_stmt_t *b = rp_db_stmt(rp_store_db(e->s),
                                     "SELECT due_at, id FROM (SELECT due_at, id FROM rp_jobs"
                                     " WHERE state = 'pending' AND due_at <= ?1"
                                     " AND (attempts > 0 OR key IS NOT NULL)"
                                     " ORDER BY due_at, id LIMIT 1) UNION ALL"
                                     " SELECT due_at, id FROM (SELECT due_at, id FROM rp_jobs"
                                     " WHERE state = 'running' AND lease_until < ?1"
                                     " ORDER BY due_at, id LIMIT 1) ORDER BY due_at, id LIMIT 1",
                                     err);
        if (!b)
            return err ? err->code : RP_EIO;
        rp_db_bind_int(b, 1, now);
        int rc = rp_db_step(b);
        if (rc == RP_DB_ROW) {
            bound_due = rp_db_col_int(b, 0);
            bound_id = rp_db_col_int(b, 1);
        }
        rp_db_reset(b);
        if (rc != RP_DB_ROW && rc != RP_DB_DONE)
            return rp_db_error(rp_store_db(e->s), rc, "cannot claim jobs", err);
    }
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(e->s),
                                "UPDATE rp_jobs SET state = 'running', owner = ?1,"
                                " lease_until = ?2 + ?3, attempts = attempts + 1"
                                " WHERE id IN (SELECT id FROM (SELECT id, due_at FROM"
                                " (SELECT id, due_at FROM rp_jobs"
                                " WHERE state = 'pending' AND due_at <= ?2"
                                " AND (?5 = 0 OR (attempts = 0 AND key IS NULL"
                                " AND (due_at < ?6 OR (due_at = ?6 AND id < ?7))))"
                                " ORDER BY due_at, id LIMIT ?4) UNION ALL"
                                " SELECT id, due_at FROM (SELECT id, due_at FROM rp_jobs"
                                " WHERE state = 'running' AND lease_until < ?2 AND ?5 = 0"
                                " ORDER BY due_at, id LIMIT ?4)) ORDER BY due_at, id LIMIT ?4)"
                                " RETURNING id, name, key, payload, due_at, attempts",
                                err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_text(st, 1, e->owner, -1);
    rp_db_bind_int(st, 2, now);
    rp_db_bind_int(st, 3, e->lease_ms);
    rp_db_bind_int(st, 4, batch ? RP__JOB_BATCH : 1);
    rp_db_bind_int(st, 5, batch ? 1 : 0);
    rp_db_bind_int(st, 6, bound_due);
    rp_db_bind_int(st, 7, bound_id);
    json_t *arr = json_array();
    int rc;
    while ((rc = rp_db_step(st)) == RP_DB_ROW) {
        json_t *j = json_pack("{s:I,s:s,s:s,s:I,s:i}", "id",
                              (json_int_t)rp_db_col_int(st, 0), "name",
                              rp_db_col_text(st, 1), "payload", rp_db_col_text(st, 3),
                              "due_at", (json_int_t)rp_db_col_int(st, 4), "attempts",
                              (int)rp_db_col_int(st, 5));
        if (rp_db_col_type(st, 2) != RP_DB_NULL)
            json_object_set_new(j, "key", json_string(rp_db_col_text(st, 2)));
        json_array_append_new(arr, j);
    }
    rp_db_reset(st);
    if (rc != RP_DB_DONE) {
        json_decref(arr);
        return rp_db_error(rp_store_db(e->s), rc, "cannot claim jobs", err);
    }
    /* RETURNING gives no order; run them in due order. */
    size_t n = json_array_size(arr);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0; j--) {
            json_t *a = json_array_get(arr, j - 1), *b = json_array_get(arr, j);
            int64_t da = json_integer_value(json_object_get(a, "due_at"));
            int64_t db = json_integer_value(json_object_get(b, "due_at"));
            if (da < db || (da == db && json_integer_value(json_object_get(a, "id")) <
                                            json_integer_value(json_object_get(b, "id"))))
                break;
            json_incref(a);
            json_array_set(arr, j - 1, b);
            json_array_set_new(arr, j, a);
        }
    *jobs = arr;
    return 0;
}

/* Records a failed run: back to pending after a backoff, or dead after the last attempt. */
static int job_failed(rp_sched_t *e, const rp_job_t *job, const char *why, rp_error_t *err)
{
    bool dead = job->attempts >= e->retry.max_attempts;
    int64_t base = e->retry.base_ms > 0 ? e->retry.base_ms : 1000;
    int64_t ceiling = e->retry.max_delay_ms > 0 ? e->retry.max_delay_ms : 3600000;
    int64_t delay = base;
    for (int i = 1; i < job->attempts && delay < ceiling; i++)
        delay *= 2;
    if (delay > ceiling)
        delay = ceiling;
    delay = delay / 2 + (int64_t)(rp_store_random(e->s) % (uint64_t)(delay / 2 + 1));
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(e->s), "UPDATE rp_jobs SET state = ?1, due_at = ?2, error = ?3,"
                                      " owner = NULL, lease_until = NULL"
                                      " WHERE id = ?4 AND owner = ?5", err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_text(st, 1, dead ? "dead" : "pending", -1);
    rp_db_bind_int(st, 2, dead ? job->due_ms : rp_sched_now(e) + delay);
    rp_db_bind_text(st, 3, why, -1);
    rp_db_bind_int(st, 4, job->id);
    rp_db_bind_text(st, 5, e->owner, -1);
    int rc = rp_db_step(st);
    rp_db_reset(st);
    if (rc == RP_DB_UNIQUE) {
        /* A newer job with the same key was scheduled meanwhile: it supersedes this one. */
        st = rp_db_stmt(rp_store_db(e->s), "DELETE FROM rp_jobs WHERE id = ? AND owner = ?", err);
        if (!st)
            return err ? err->code : RP_EIO;
        rp_db_bind_int(st, 1, job->id);
        rp_db_bind_text(st, 2, e->owner, -1);
        return rp__sched_step(e->s, st, "cannot drop the superseded job", err);
    }
    if (rc != RP_DB_DONE)
        return rp_db_error(rp_store_db(e->s), rc, "cannot record the job failure", err);
    if (dead)
        rp__sched_say(e, "error", "job dead id=%lld name=%s attempts=%d error=%s", (long long)job->id,
            job->name, job->attempts, why);
    else
        rp__sched_say(e, "warn", "job failed id=%lld name=%s attempt=%d/%d retry_in_ms=%lld error=%s",
            (long long)job->id, job->name, job->attempts, e->retry.max_attempts,
            (long long)delay, why);
    return 0;
}

/* Ends the savepoint a handler's first write opened, if it wrote: kept or undone. */
static int end_lazy(rp_store_t *s, bool keep, rp_error_t *err)
{
    if (!rp_store_lazy_end(s))
        return 0;
    if (keep)
        return rp_store_commit(s, err);
    rp_store_rollback(s, NULL);
    return 0;
}

/* Runs one claimed job inside the caller's transaction: its handler's writes and its removal
 * commit together, and a failing handler undoes only its own writes. Returns 1 when it ran, 0
 * when it failed (and was rescheduled or dead-lettered), or a negative code. */
static int run_job(rp_sched_t *e, json_t *j, rp_error_t *err)
{
    rp_job_t job = {.id = json_integer_value(json_object_get(j, "id")),
                    .name = json_string_value(json_object_get(j, "name")),
                    .key = json_string_value(json_object_get(j, "key")),
                    .payload = json_string_value(json_object_get(j, "payload")),
                    .due_ms = json_integer_value(json_object_get(j, "due_at")),
                    .attempts = (int)json_integer_value(json_object_get(j, "attempts"))};
    handler_t *h = handler_of(e, job.name);
    rp_error_t herr = {0};
    if (!h) {
        snprintf(herr.msg, sizeof herr.msg, "no handler is registered for job \"%s\"", job.name);
        return job_failed(e, &job, herr.msg, err);
    }
    char actor[128];
    snprintf(actor, sizeof actor, "job:%s", job.name);
    rp_ctx_t ctx = {.actor = actor, .origin = "job"};
    rp_store_lazy_begin(e->s);
    int hrc = h->fn(e->s, &job, &ctx, h->ud, &herr);
    if (hrc != 0) {
        end_lazy(e->s, false, NULL);
        return job_failed(e, &job,
                          herr.msg[0] ? herr.msg : "the handler failed without a message", err);
    }
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(e->s), "DELETE FROM rp_jobs WHERE id = ? AND owner = ?", err);
    int rc = st ? 0 : err->code;
    if (!rc) {
        rp_db_bind_int(st, 1, job.id);
        rp_db_bind_text(st, 2, e->owner, -1);
        rc = rp__sched_step(e->s, st, "cannot complete the job", err);
    }
    if (rc) {
        end_lazy(e->s, false, NULL);
        return rc;
    }
    if (rp_db_changes(rp_store_db(e->s)) == 0) {
        /* Our lease ran out and another engine took the job: its run counts, not ours. */
        end_lazy(e->s, false, NULL);
        rp__sched_say(e, "warn", "job lease lost id=%lld name=%s", (long long)job.id, job.name);
        return 0;
    }
    return (rc = end_lazy(e->s, true, err)) ? rc : 1;
}

int64_t rp__sched_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Hands claimed jobs that did not start back (pending, their attempt taken back), in the
 * batch's transaction. */
static int unclaim(rp_sched_t *e, json_t *jobs, size_t from, rp_error_t *err)
{
    for (size_t i = from; i < json_array_size(jobs); i++) {
        rp_db_stmt_t *st = rp_db_stmt(rp_store_db(e->s),
                                      "UPDATE rp_jobs SET state = 'pending', owner = NULL,"
                                      " lease_until = NULL, attempts = attempts - 1"
                                      " WHERE id = ? AND owner = ? AND state = 'running'",
                                      err);
        if (!st)
            return err ? err->code : RP_EIO;
        rp_db_bind_int(st, 1, json_integer_value(json_object_get(json_array_get(jobs, i), "id")));
        rp_db_bind_text(st, 2, e->owner, -1);
        int rc = rp__sched_step(e->s, st, "cannot hand a claimed job back", err);
        if (rc)
            return rc;
    }
    return 0;
}

/* Runs the claimed jobs in one transaction. BEGIN IMMEDIATE takes SQLite's write lock, which is
 * held until the commit: while a handler runs no other engine can claim anything, so a live
 * owner's job is never run twice however long it takes, and its lease needs no renewal. A batch
 * holds the lock RP__BATCH_MS at most (another process's write waits for it): past that, or
 * when the engine stops, the jobs not begun are handed back for the next pass. */
static int run_jobs(rp_sched_t *e, json_t *jobs, int *work, rp_error_t *err)
{
    int rc = rp_store_begin(e->s, err);
    if (rc)
        return rc;
    int64_t until = rp__sched_mono_ms() + RP__BATCH_MS;
    size_t i;
    json_t *j;
    json_array_foreach(jobs, i, j) {
        if (i > 0 && (e->stopping || rp__sched_mono_ms() > until)) {
            if ((rc = unclaim(e, jobs, i, err))) {
                rp_store_rollback(e->s, NULL);
                return rc;
            }
            break;
        }
        int ran = run_job(e, j, err);
        if (ran < 0) {
            rp_store_rollback(e->s, NULL);
            return ran;
        }
        *work += ran;
    }
    return rp_store_commit(e->s, err);
}

/* Puts back the jobs of engines that died holding them: on the first pass, then at most once a
 * second (one indexed read of the running jobs' owners, a /proc look-up for each other one). */
static void reclaim_stopped(rp_sched_t *e)
{
    int64_t now = rp__sched_mono_ms();
    if (e->reclaim_after && now < e->reclaim_after)
        return;
    e->reclaim_after = now + RP__RECLAIM_EVERY_MS;
    rp_error_t err = {0};
    if (rp__jobs_reclaim(e->s, e->owner, e->retry.max_attempts, e->log, e->log_ud, &err) < 0)
        rp__sched_say(e, "warn", "cannot reclaim the jobs of stopped engines error=%s", err.msg);
}

/* The file's version as a read transaction of its own finds it (this connection's commits and
 * other processes' alike move it); false when it cannot be told here (inside a transaction or
 * another's snapshot). */
static bool file_version(rp_sched_t *e, uint32_t *v)
{
    rp_db_t *db = rp_store_db(e->s);
    if (rp_db_snapshot_version(db, v) || rp_db_read_begin(db, NULL))
        return false;
    bool ok = rp_db_snapshot_version(db, v);
    rp_db_read_end(db);
    return ok;
}

/* True when no subscriber can have anything to do: nothing committed since a pass found them
 * all idle, and none of their retries due yet. An idle pass then costs one read, not five for
 * each subscriber. */
static bool subs_quiet(rp_sched_t *e, uint32_t *v, bool *known)
{
    *known = file_version(e, v);
    return *known && e->quiet && *v == e->quiet_version && rp_sched_now(e) < e->quiet_until;
}

int rp_sched_run_due(rp_sched_t *e, int *did, rp_error_t *err)
{
    int work = 0, rc = 0;
    reclaim_stopped(e);
    /* Jobs and handlers may cause more work due now; go round until quiet (bounded). */
    for (int round = 0; round < 1000; round++) {
        int before = work;
        if ((rc = fire_schedules(e, err)))
            break;
        /* The job due first decides: a first try without a key goes with the batch of those
         * due after it (up to the first that must run alone), any other runs alone. */
        for (;;) {
            int next = next_claim(e, err);
            if (next < 0) {
                rc = next;
                break;
            }
            if (next == 0)
                break;
            json_t *jobs = NULL;
            if ((rc = claim(e, &jobs, next == 2, err)))
                break;
            size_t n = json_array_size(jobs);
            if (n)
                rc = run_jobs(e, jobs, &work, err);
            json_decref(jobs);
            if (rc || n == 0 || e->stopping)
                break;
        }
        if (rc)
            break;
        uint32_t v;
        bool known;
        for (int i = 0; i < e->nsubs && !e->stopping && !(i == 0 && subs_quiet(e, &v, &known));
             i++) {
            int n = rp_events_deliver(e->s, e->subs[i]->name, sub_trampoline, e->subs[i], 1000,
                                      &e->retry, err);
            if (n < 0) {
                rc = n;
                break;
            }
            work += n;
        }
        if (rc || work == before || e->stopping)
            break;
    }
    if (did)
        *did = work;
    return rc;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

int64_t rp_sched_next_due(rp_sched_t *e)
{
    int64_t next = INT64_MAX;
    static const char *const sql[] = {
        "SELECT min(due_at) FROM rp_jobs WHERE state = 'pending'",
        "SELECT min(lease_until) FROM rp_jobs WHERE state = 'running'",
        "SELECT min(next_at) FROM rp_schedules"};
    for (int i = 0; i < 3; i++) {
        rp_db_stmt_t *st = rp_db_stmt(rp_store_db(e->s), sql[i], NULL);
        if (st && rp_db_step(st) == RP_DB_ROW && rp_db_col_type(st, 0) != RP_DB_NULL)
            next = min64(next, rp_db_col_int(st, 0) + (i == 1 ? 1 : 0));
        if (st)
            rp_db_reset(st);
    }
    uint32_t v = 0;
    bool known;
    if (subs_quiet(e, &v, &known))
        return min64(next, e->quiet_until);
    /* Read after the version: a commit between the two moves the version past the one kept. */
    bool idle = true;
    int64_t until = INT64_MAX;
    for (int i = 0; i < e->nsubs; i++) {
        rp_event_t ev;
        int64_t retry_at = 0;
        int n = rp_events_read(e->s, e->subs[i]->name, &ev, 1, &retry_at, NULL);
        if (n > 0) {
            rp_event_clear(&ev);
            next = min64(next, rp_sched_now(e));
            idle = false;
        } else if (n < 0) {
            idle = false;
        } else if (retry_at > 0) {
            until = min64(until, retry_at);
        }
    }
    next = min64(next, until);
    e->quiet = known && idle;
    e->quiet_version = v;
    e->quiet_until = until;
    return next;
}

int rp_sched_advance(rp_sched_t *e, int64_t ms, rp_error_t *err)
{
    if (!e->virt)
        return rp_error_set(err, RP_ESTATE, RP_C_TXN, "only a virtual clock can be advanced");
    if (ms < 0)
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE, "time cannot go backwards (%lld ms)",
                            (long long)ms);
    int64_t target = e->vnow + ms;
    for (int guard = 0; guard < 1000000; guard++) {
        int rc = rp_sched_run_due(e, NULL, err);
        if (rc)
            return rc;
        int64_t next = rp_sched_next_due(e);
        if (next > target)
            break;
        if (next > e->vnow)
            e->vnow = next;
    }
    e->vnow = target;
    return rp_sched_run_due(e, NULL, err);
}
