/*
 * jobs.c — durable jobs and cron schedules as rows: schedule, cancel, list, retry, and the
 * delays that say when. All of it works without a running engine (the CLI uses it directly).
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapport/db.h"
#include "rapport/store.h"
#include "rapport/time.h"
#include "private.h"
#include "rapport/sched.h"

bool rp__job_name_ok(const char *n)
{
    if (!n || !*n || strlen(n) > 96 || !islower((unsigned char)*n))
        return false;
    for (const char *p = n; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_' || *p == '.' ||
              *p == '-' || *p == ':'))
            return false;
    return true;
}

/* ---- durable jobs ------------------------------------------------------------------------ */

int rp__sched_step(rp_store_t *s, rp_db_stmt_t *st, const char *what, rp_error_t *err)
{
    int rc = rp_db_step(st);
    rp_db_reset(st);
    return rc == RP_DB_DONE ? 0 : rp_db_error(rp_store_db(s), rc, what, err);
}

/* A job's id places its row by when it is due: the jobs due in one millisecond are
 * neighbours in the table, so the claim and the delete of a batch touch a page or two. With
 * ids in the order jobs were scheduled, a batch's rows lay scattered over the table, one page
 * (written to the log twice, at claim and at done) per job: three times the CPU per job.
 * id = (ms since 2020 + 1) * 2048 + n stays below 2^53 (a JavaScript client reads it exactly)
 * until 2159. No id is ever used twice (a handler may key its own writes on it): rp_job_ids
 * keeps the last id handed out in each millisecond's range (among committed jobs: a rolled
 * back schedule gives its id back), and once a second at most every range before the present
 * millisecond is given up (row ms = -1, their rows deleted), so a job due earlier takes an id
 * of about the present. A millisecond with 2048 jobs lends its ids to the next; past 64 full
 * ones the table picks (the largest id ever used, plus one: past 2^53 only once a job due
 * after 2159 was scheduled). */
#define JOB_ID_EPOCH_MS 1577836800000LL /* 2020-01-01 */
#define JOB_ID_PER_MS 2048
#define JOB_ID_MAX_MS ((1LL << 42) - 2)

static int64_t job_range(int64_t ms)
{
    if (ms < JOB_ID_EPOCH_MS)
        return 0;
    ms -= JOB_ID_EPOCH_MS;
    return ms > JOB_ID_MAX_MS ? JOB_ID_MAX_MS : ms;
}

#define JOB_ID_TRIES 64 /* full ranges passed over before the table picks */

static const char job_id_put[] = "INSERT INTO rp_job_ids(ms, last) VALUES(?1, ?2)"
                                 " ON CONFLICT(ms) DO UPDATE SET last = max(last, excluded.last)";

/* Inside the scheduling transaction. *id is 0 when the table is to pick (job_id_taken then).
 * Each statement is fetched just before it runs: fetching one may put another out of the
 * connection's cache. */
static int job_id(rp_store_t *s, int64_t due_ms, int64_t *id, rp_error_t *err)
{
    rp_db_t *db = rp_store_db(s);
    rp_db_stmt_t *st = rp_db_stmt(db, "SELECT last FROM rp_job_ids WHERE ms = -1", err);
    if (!st)
        return err ? err->code : RP_EIO;
    int rc = rp_db_step(st);
    int64_t given_up = rc == RP_DB_ROW ? rp_db_col_int(st, 0) : -1;
    rp_db_reset(st);
    if (rc != RP_DB_ROW && rc != RP_DB_DONE)
        return rp_db_error(db, rc, "cannot schedule the job", err);
    /* Once a second at most (a write), give up every range before the present millisecond. */
    int64_t past = job_range(rp_store_now(s)) - 1;
    if (past - given_up >= 1000) {
        if (!(st = rp_db_stmt(db, "DELETE FROM rp_job_ids WHERE ms >= 0 AND ms <= ?", err)))
            return err ? err->code : RP_EIO;
        rp_db_bind_int(st, 1, past);
        if ((rc = rp__sched_step(s, st, "cannot schedule the job", err)))
            return rc;
        if (!(st = rp_db_stmt(db, job_id_put, err)))
            return err ? err->code : RP_EIO;
        rp_db_bind_int(st, 1, -1);
        rp_db_bind_int(st, 2, past);
        if ((rc = rp__sched_step(s, st, "cannot schedule the job", err)))
            return rc;
        given_up = past;
    }
    int64_t ms = job_range(due_ms);
    if (ms <= given_up)
        ms = given_up + 1;
    *id = 0;
    for (int i = 0; i < JOB_ID_TRIES && ms + i <= JOB_ID_MAX_MS; i++) {
        int64_t lo = (ms + i + 1) * JOB_ID_PER_MS;
        /* The next id of a range; a range new to the table starts after the ids it holds. */
        if (!(st = rp_db_stmt(db, "INSERT INTO rp_job_ids(ms, last) VALUES(?1,"
                                  " (SELECT coalesce(max(id), ?2 - 1) + 1 FROM rp_jobs"
                                  " WHERE id >= ?2 AND id < ?2 + ?3))"
                                  " ON CONFLICT(ms) DO UPDATE SET last = last + 1"
                                  " RETURNING last", err)))
            return err ? err->code : RP_EIO;
        rp_db_bind_int(st, 1, ms + i);
        rp_db_bind_int(st, 2, lo);
        rp_db_bind_int(st, 3, JOB_ID_PER_MS);
        rc = rp_db_step(st);
        int64_t last = rc == RP_DB_ROW ? rp_db_col_int(st, 0) : 0;
        rp_db_reset(st);
        if (rc != RP_DB_ROW)
            return rp_db_error(db, rc, "cannot schedule the job", err);
        if (last < lo + JOB_ID_PER_MS) { /* else this range is full: the next */
            *id = last;
            break;
        }
    }
    return 0;
}

/* The id the table picked (the largest ever used, plus one) is recorded in its range, so the
 * range's next id comes after it. */
static int job_id_taken(rp_store_t *s, int64_t id, rp_error_t *err)
{
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), job_id_put, err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_int(st, 1, id / JOB_ID_PER_MS - 1);
    rp_db_bind_int(st, 2, id);
    return rp__sched_step(s, st, "cannot schedule the job", err);
}

int rp_jobs_schedule(rp_store_t *s, const rp_ctx_t *ctx, const char *name, json_t *payload,
                     int64_t due_ms, const char *key, int64_t *id_out, rp_error_t *err)
{
    if (!rp__job_name_ok(name))
        return rp_error_set(err, RP_EINVAL, RP_C_IDENT,
                            "\"%s\" is not a valid job name (lower-case letters, digits, _ . - :)",
                            name ? name : "(null)");
    if (payload && !json_is_object(payload))
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE,
                            "the payload of job %s must be a JSON object", name);
    if (key && (!*key || strlen(key) > 200))
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE,
                            "the key of job %s must be 1 to 200 characters", name);
    char *text = (payload ? json_dumps(payload, JSON_COMPACT) : strdup("{}"));
    if (!text)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    int rc = rp_store_begin(s, err);
    if (rc) {
        free(text);
        return rc;
    }
    rp_db_stmt_t *st;
    if (key) {
        /* A key names one pending job: scheduling it again moves it. */
        if (!(st = rp_db_stmt(rp_store_db(s), "DELETE FROM rp_jobs WHERE key = ? AND state = 'pending'", err))) {
            rc = err ? err->code : RP_EIO;
            goto fail;
        }
        rp_db_bind_text(st, 1, key, -1);
        if ((rc = rp__sched_step(s, st, "cannot replace the job", err)))
            goto fail;
    }
    int64_t id;
    if ((rc = job_id(s, due_ms, &id, err)))
        goto fail;
    if (!(st = rp_db_stmt(rp_store_db(s), "INSERT INTO rp_jobs(name, key, payload, due_at, created_at,"
                           " created_by, id) VALUES(?,?,?,?,?,?,?)", err))) {
        rc = err ? err->code : RP_EIO;
        goto fail;
    }
    if (id) /* else the table picks one */
        rp_db_bind_int(st, 7, id);
    rp_db_bind_text(st, 1, name, -1);
    if (key)
        rp_db_bind_text(st, 2, key, -1);
    rp_db_bind_text(st, 3, text, -1);
    rp_db_bind_int(st, 4, due_ms);
    rp_db_bind_int(st, 5, rp_store_now(s));
    rp_db_bind_text(st, 6, ctx && ctx->actor ? ctx->actor : "system", -1);
    if ((rc = rp__sched_step(s, st, "cannot schedule the job", err)))
        goto fail;
    if (!id) { /* read before job_id_taken's own insert moves the last id */
        id = rp_db_last_id(rp_store_db(s));
        if ((rc = job_id_taken(s, id, err)))
            goto fail;
    }
    if (id_out)
        *id_out = id;
    free(text);
    return rp_store_commit(s, err);
fail:
    free(text);
    rp_store_rollback(s, NULL);
    return rc;
}

int rp_jobs_cancel(rp_store_t *s, const char *key, rp_error_t *err)
{
    /* A write like any other: inside a handler it belongs to the handler's savepoint. */
    int rc = rp_store_begin(s, err);
    if (rc)
        return rc;
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "DELETE FROM rp_jobs WHERE key = ? AND state = 'pending'", err);
    if (!st) {
        rp_store_rollback(s, NULL);
        return err ? err->code : RP_EIO;
    }
    rp_db_bind_text(st, 1, key ? key : "", -1);
    rc = rp__sched_step(s, st, "cannot cancel the job", err);
    if (!rc && rp_db_changes(rp_store_db(s)) == 0)
        rc = rp_error_set(err, RP_ENOTFOUND, RP_C_NO_RECORD, "no pending job with key \"%s\"",
                          key ? key : "");
    if (rc) {
        rp_store_rollback(s, NULL);
        return rc;
    }
    return rp_store_commit(s, err);
}

int rp_jobs_list(rp_store_t *s, const char *state, json_t **out, rp_error_t *err)
{
    *out = NULL;
    if (state && strcmp(state, "pending") && strcmp(state, "running") && strcmp(state, "dead"))
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE,
                            "unknown job state \"%s\" (pending, running, dead)", state);
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "SELECT id, name, key, due_at, state, attempts, error, payload"
                                   " FROM rp_jobs WHERE ?1 IS NULL OR state = ?1"
                                   " ORDER BY due_at, id", err);
    if (!st)
        return err ? err->code : RP_EIO;
    if (state)
        rp_db_bind_text(st, 1, state, -1);
    json_t *arr = json_array();
    while (rp_db_step(st) == RP_DB_ROW) {
        char due[32];
        rp_time_format(rp_db_col_int(st, 3), due);
        json_t *payload = json_loads(rp_db_col_text(st, 7), 0, NULL);
        json_t *j = json_pack("{s:I,s:s,s:s,s:s,s:i,s:o}", "id",
                              (json_int_t)rp_db_col_int(st, 0), "name",
                              rp_db_col_text(st, 1), "due_at", due, "state",
                              rp_db_col_text(st, 4), "attempts",
                              (int)rp_db_col_int(st, 5), "payload",
                              payload ? payload : json_object());
        json_object_set_new(j, "key", rp_db_col_type(st, 2) == RP_DB_NULL
                                          ? json_null()
                                          : json_string(rp_db_col_text(st, 2)));
        json_object_set_new(j, "error", rp_db_col_type(st, 6) == RP_DB_NULL
                                            ? json_null()
                                            : json_string(rp_db_col_text(st, 6)));
        json_array_append_new(arr, j);
    }
    rp_db_reset(st);
    *out = arr;
    return 0;
}

int rp_jobs_retry(rp_store_t *s, int64_t id, rp_error_t *err)
{
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "UPDATE rp_jobs SET state = 'pending', attempts = 0,"
                                   " due_at = ?, owner = NULL, lease_until = NULL"
                                   " WHERE id = ? AND state = 'dead'", err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_int(st, 1, rp_store_now(s));
    rp_db_bind_int(st, 2, id);
    int rc = rp__sched_step(s, st, "cannot retry the job", err);
    if (rc && (err->msg[0] && strstr(err->msg, "UNIQUE")))
        return rp_error_set(err, RP_ECONFLICT, RP_C_UNIQUE,
                            "job %lld cannot be retried: a pending job already has its key",
                            (long long)id);
    if (!rc && rp_db_changes(rp_store_db(s)) == 0)
        return rp_error_set(err, RP_ENOTFOUND, RP_C_NO_RECORD, "no dead job with id %lld",
                            (long long)id);
    return rc;
}

int rp_schedules_list(rp_store_t *s, json_t **out, rp_error_t *err)
{
    *out = NULL;
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "SELECT name, cron, tz, job, payload, next_at, last_at"
                                   " FROM rp_schedules ORDER BY name", err);
    if (!st)
        return err ? err->code : RP_EIO;
    json_t *arr = json_array();
    while (rp_db_step(st) == RP_DB_ROW) {
        char next[32] = "", last[32] = "";
        if (rp_db_col_int(st, 5) != INT64_MAX)
            rp_time_format(rp_db_col_int(st, 5), next);
        if (rp_db_col_type(st, 6) != RP_DB_NULL)
            rp_time_format(rp_db_col_int(st, 6), last);
        json_t *payload = json_loads(rp_db_col_text(st, 4), 0, NULL);
        json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:o}", "name", rp_db_col_text(st, 0),
                              "cron", rp_db_col_text(st, 1), "tz",
                              rp_db_col_text(st, 2), "job", rp_db_col_text(st, 3),
                              "payload", payload ? payload : json_object());
        json_object_set_new(j, "next_at", next[0] ? json_string(next) : json_null());
        json_object_set_new(j, "last_at", last[0] ? json_string(last) : json_null());
        json_array_append_new(arr, j);
    }
    rp_db_reset(st);
    *out = arr;
    return 0;
}

int rp_schedules_remove(rp_store_t *s, const char *name, rp_error_t *err)
{
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "DELETE FROM rp_schedules WHERE name = ?", err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_text(st, 1, name ? name : "", -1);
    int rc = rp__sched_step(s, st, "cannot remove the schedule", err);
    if (!rc && rp_db_changes(rp_store_db(s)) == 0)
        return rp_error_set(err, RP_ENOTFOUND, RP_C_NO_RECORD, "no schedule named \"%s\"",
                            name ? name : "");
    return rc;
}
