/*
 * replay_bounds.c — the limits of one `rapport replay`: how many job runs an event and the
 * whole run may cause (a job that reschedules itself at once, a cron over a far --to) and how
 * large the report may grow (it is held whole in memory), each said with what to do instead.
 */
#include <stdio.h>
#include <string.h>

#include "rapport/db.h"
#include "rapport/settings.h"
#include "rapport/time.h"

#include "replay_int.h"

/* Every claim of a pending job counts against the replay's cap, and, unless a cron schedule
 * made it, against the cap of the recorded event that caused it (a job scheduled by a job
 * inherits its cause: a chain that reschedules itself is one event's). A claim over a cap is
 * aborted, so the scheduler stops with an error, which rp__replay_jobs_err() then names. */
static const char cap_sql[] =
    "CREATE TEMP TABLE replay_runs(total INTEGER, max_total INTEGER, max_event INTEGER);"
    "CREATE TEMP TABLE replay_cause(cause INTEGER PRIMARY KEY, n INTEGER);"
    "CREATE TEMP TRIGGER replay_runs_cap BEFORE UPDATE OF state ON main.rp_jobs"
    " WHEN new.state = 'running' AND old.state = 'pending' BEGIN"
    " SELECT RAISE(ABORT, 'replay: the cap on job runs is reached') FROM replay_runs"
    "  WHERE total >= max_total;"
    " SELECT RAISE(ABORT, 'replay: the cap on job runs of an event is reached')"
    "  FROM replay_runs, replay_jobs j JOIN replay_cause c ON c.cause = j.cause"
    "  WHERE j.id = new.id AND coalesce(j.created_by, '') <> 'cron' AND c.n >= max_event;"
    " UPDATE replay_runs SET total = total + 1;"
    " INSERT INTO replay_cause SELECT cause, 1 FROM replay_jobs"
    "  WHERE id = new.id AND coalesce(created_by, '') <> 'cron'"
    "  ON CONFLICT(cause) DO UPDATE SET n = n + 1; END;";

/* The events the copy appends for one recorded event (its handlers' writes, and theirs): a
 * handler that writes several records of the kind it handles fans out to the depth limit, so
 * past the cap every append fails (the handler's error) and the replay then stops. */
#define CAP_EVENTS_MSG "replay: the cap on events caused by one event is reached"
static const char events_sql[] =
    "CREATE TEMP TABLE replay_events(n INTEGER, max INTEGER);"
    "CREATE TEMP TRIGGER replay_events_cap BEFORE INSERT ON main.rp_events BEGIN"
    " SELECT RAISE(ABORT, '" CAP_EVENTS_MSG "')"
    "  FROM replay_events WHERE n >= max;"
    " UPDATE replay_events SET n = n + 1; END;";

int rp__replay_bounds_init(replay_t *r, rp_error_t *err)
{
    rp_store_t *s = r->s;
    r->max_runs = rp_setting_int(s, "replay.max_job_runs", RP_REPLAY_MAX_JOB_RUNS, NULL, NULL);
    r->max_event_runs = rp_setting_int(s, "replay.max_job_runs_per_event",
                                       RP_REPLAY_MAX_JOB_RUNS_PER_EVENT, NULL, NULL);
    int64_t mb = rp_setting_int(s, "replay.max_report_mb", RP_REPLAY_MAX_REPORT_MB, NULL, NULL);
    r->max_bytes = (size_t)(mb > 0 ? mb : RP_REPLAY_MAX_REPORT_MB) << 20;
    if (r->max_runs <= 0)
        r->max_runs = RP_REPLAY_MAX_JOB_RUNS;
    if (r->max_event_runs <= 0)
        r->max_event_runs = RP_REPLAY_MAX_JOB_RUNS_PER_EVENT;
    r->max_events = rp_setting_int(s, "replay.max_events_per_event",
                                   RP_REPLAY_MAX_EVENTS_PER_EVENT, NULL, NULL);
    if (r->max_events <= 0)
        r->max_events = RP_REPLAY_MAX_EVENTS_PER_EVENT;
    rp_db_t *db = rp_store_db(s);
    int rc = rp_db_exec(db, cap_sql, err);
    if (!rc)
        rc = rp_db_exec(db, events_sql, err);
    if (rc)
        return rc;
    rp_db_stmt_t *ev = rp_db_stmt(db, "INSERT INTO replay_events VALUES(0, ?1)", err);
    if (!ev)
        return err ? err->code : RP_EIO;
    rp_db_bind_int(ev, 1, r->max_events);
    int esrc = rp_db_step(ev);
    rp_db_reset(ev);
    if (esrc != RP_DB_DONE)
        return rp_db_error(db, esrc, "cannot count the replay's events", err);
    rp_db_stmt_t *st = rp_db_stmt(db, "INSERT INTO replay_runs VALUES(0, ?1, ?2)", err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_int(st, 1, r->max_runs);
    rp_db_bind_int(st, 2, r->max_event_runs);
    int src = rp_db_step(st);
    rp_db_reset(st);
    return src == RP_DB_DONE ? 0 : rp_db_error(db, src, "cannot count the replay's job runs", err);
}

int rp__replay_jobs_err(replay_t *r, int rc, rp_error_t *err)
{
    if (!rc)
        return 0;
    /* The job the refused claim would have taken: the first due, as the scheduler orders. */
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(r->s),
                                  "SELECT (SELECT total >= max_total FROM replay_runs), j.name,"
                                  " coalesce(c.cause, 0), coalesce(c.n, 0) >="
                                  " (SELECT max_event FROM replay_runs)"
                                  " FROM rp_jobs j LEFT JOIN replay_jobs x ON x.id = j.id"
                                  " LEFT JOIN replay_cause c ON c.cause = x.cause"
                                  " WHERE j.state = 'pending' AND j.due_at <= ?1"
                                  " ORDER BY j.due_at, j.id LIMIT 1",
                                  NULL);
    if (!st)
        return rc;
    rp_db_bind_int(st, 1, rp_sched_now(r->e));
    if (rp_db_step(st) == RP_DB_ROW) {
        const char *job = rp_db_col_text(st, 1);
        long long cause = (long long)rp_db_col_int(st, 2);
        char at[32];
        rp_time_format(rp_sched_now(r->e), at);
        if (rp_db_col_int(st, 0))
            rc = rp_error_set(err, RP_ELIMIT, RP_C_CAP,
                              "job %s (scheduled by event #%lld) would be job run %lld of "
                              "this replay, at %s: over replay.max_job_runs; replay a "
                              "narrower window (--from, --to, --event) or raise the setting",
                              job, cause, (long long)r->max_runs + 1, at);
        else if (rp_db_col_int(st, 3))
            rc = rp_error_set(err, RP_ELIMIT, RP_C_CAP,
                              "job %s would be run %lld of the jobs caused by event #%lld, at "
                              "%s: over replay.max_job_runs_per_event (a job that reschedules "
                              "itself at once?)",
                              job, (long long)r->max_event_runs + 1, cause, at);
    }
    rp_db_reset(st);
    return rc;
}

int rp__replay_events_reset(replay_t *r, rp_error_t *err)
{
    rp_db_t *db = rp_store_db(r->s);
    rp_db_stmt_t *st = rp_db_stmt(db, "UPDATE replay_events SET n = 0 WHERE ?1 = ?1", err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_int(st, 1, 0);
    int src = rp_db_step(st);
    rp_db_reset(st);
    return src == RP_DB_DONE ? 0 : rp_db_error(db, src, "cannot count the replay's events", err);
}

int rp__replay_events_err(replay_t *r, bool jobs, rp_error_t *err)
{
    /* The count itself is rolled back with each failed handler's writes: the failures the cap
     * caused are what stays (dead letters, dead jobs), until the report takes them. */
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(r->s),
                                  "SELECT (SELECT count(*) FROM rp_dead WHERE instr(error, ?1))"
                                  " + (SELECT count(*) FROM rp_jobs WHERE state = 'dead'"
                                  " AND instr(error, ?1))",
                                  err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_text(st, 1, CAP_EVENTS_MSG, -1);
    bool over = rp_db_step(st) == RP_DB_ROW && rp_db_col_int(st, 0) > 0;
    rp_db_reset(st);
    if (!over)
        return 0;
    char where[96] = "loading the script", at[32];
    rp_time_format(rp_sched_now(r->e), at);
    if (jobs)
        snprintf(where, sizeof where, "the jobs run as the clock moved to %s", at);
    else if (json_is_object(r->by))
        snprintf(where, sizeof where, "event #%lld",
                 (long long)json_integer_value(json_object_get(r->by, "seq")));
    return rp_error_set(err, RP_ELIMIT, RP_C_CAP,
                        "%s caused more than %lld events in the replay (replay.max_events_per_"
                        "event): a handler that writes what it handles, fanning out? Replay "
                        "that event alone (--event) with --trace, or raise the setting",
                        where, (long long)r->max_events);
}

void rp__replay_count(replay_t *r, json_t *item)
{
    r->bytes += json_dumpb(item, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY) + 1;
}

int rp__replay_size_err(replay_t *r, rp_error_t *err)
{
    if (!r->max_bytes || r->bytes <= r->max_bytes)
        return 0;
    char where[80] = "loading the script";
    if (json_is_object(r->by))
        snprintf(where, sizeof where, "event #%lld",
                 (long long)json_integer_value(json_object_get(r->by, "seq")));
    return rp_error_set(err, RP_ELIMIT, RP_C_CAP,
                        "the report passed %zu MB at %s (replay.max_report_mb): replay a "
                        "narrower window (--from, --to, --entity, --event)",
                        r->max_bytes >> 20, where);
}
