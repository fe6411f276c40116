/*
 * jobs.c — durable jobs and cron schedules as rows: schedule, cancel, list, retry, and the
 * delays that say when. All of it works without a running engine (the CLI uses it directly).
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../store/internal.h"
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

int rp__sched_step(rp_store_t *s, sqlite3_stmt *st, const char *what, rp_error_t *err)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : rp__dberr(s, rc, what, err);
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
    sqlite3_stmt *st;
    if (key) {
        /* A key names one pending job: scheduling it again moves it. */
        if (!(st = rp__stmt(s, "DELETE FROM rp_jobs WHERE key = ? AND state = 'pending'", err))) {
            rc = err ? err->code : RP_EIO;
            goto fail;
        }
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        if ((rc = rp__sched_step(s, st, "cannot replace the job", err)))
            goto fail;
    }
    if (!(st = rp__stmt(s, "INSERT INTO rp_jobs(name, key, payload, due_at, created_at,"
                           " created_by) VALUES(?,?,?,?,?,?)", err))) {
        rc = err ? err->code : RP_EIO;
        goto fail;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (key)
        sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, due_ms);
    sqlite3_bind_int64(st, 5, rp_store_now(s));
    sqlite3_bind_text(st, 6, ctx && ctx->actor ? ctx->actor : "system", -1, SQLITE_STATIC);
    if ((rc = rp__sched_step(s, st, "cannot schedule the job", err)))
        goto fail;
    if (id_out)
        *id_out = sqlite3_last_insert_rowid(s->db);
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
    sqlite3_stmt *st = rp__stmt(s, "DELETE FROM rp_jobs WHERE key = ? AND state = 'pending'", err);
    if (!st) {
        rp_store_rollback(s, NULL);
        return err ? err->code : RP_EIO;
    }
    sqlite3_bind_text(st, 1, key ? key : "", -1, SQLITE_STATIC);
    rc = rp__sched_step(s, st, "cannot cancel the job", err);
    if (!rc && sqlite3_changes(s->db) == 0)
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
    sqlite3_stmt *st = rp__stmt(s, "SELECT id, name, key, due_at, state, attempts, error, payload"
                                   " FROM rp_jobs WHERE ?1 IS NULL OR state = ?1"
                                   " ORDER BY due_at, id", err);
    if (!st)
        return err ? err->code : RP_EIO;
    if (state)
        sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
    json_t *arr = json_array();
    while (sqlite3_step(st) == SQLITE_ROW) {
        char due[32];
        rp__fmt_time(sqlite3_column_int64(st, 3), due);
        json_t *payload = json_loads((const char *)sqlite3_column_text(st, 7), 0, NULL);
        json_t *j = json_pack("{s:I,s:s,s:s,s:s,s:i,s:o}", "id",
                              (json_int_t)sqlite3_column_int64(st, 0), "name",
                              (const char *)sqlite3_column_text(st, 1), "due_at", due, "state",
                              (const char *)sqlite3_column_text(st, 4), "attempts",
                              sqlite3_column_int(st, 5), "payload",
                              payload ? payload : json_object());
        json_object_set_new(j, "key", sqlite3_column_type(st, 2) == SQLITE_NULL
                                          ? json_null()
                                          : json_string((const char *)sqlite3_column_text(st, 2)));
        json_object_set_new(j, "error", sqlite3_column_type(st, 6) == SQLITE_NULL
                                            ? json_null()
                                            : json_string((const char *)sqlite3_column_text(st, 6)));
        json_array_append_new(arr, j);
    }
    sqlite3_reset(st);
    *out = arr;
    return 0;
}

int rp_jobs_retry(rp_store_t *s, int64_t id, rp_error_t *err)
{
    sqlite3_stmt *st = rp__stmt(s, "UPDATE rp_jobs SET state = 'pending', attempts = 0,"
                                   " due_at = ?, owner = NULL, lease_until = NULL"
                                   " WHERE id = ? AND state = 'dead'", err);
    if (!st)
        return err ? err->code : RP_EIO;
    sqlite3_bind_int64(st, 1, rp_store_now(s));
    sqlite3_bind_int64(st, 2, id);
    int rc = rp__sched_step(s, st, "cannot retry the job", err);
    if (rc && (err->msg[0] && strstr(err->msg, "UNIQUE")))
        return rp_error_set(err, RP_ECONFLICT, RP_C_UNIQUE,
                            "job %lld cannot be retried: a pending job already has its key",
                            (long long)id);
    if (!rc && sqlite3_changes(s->db) == 0)
        return rp_error_set(err, RP_ENOTFOUND, RP_C_NO_RECORD, "no dead job with id %lld",
                            (long long)id);
    return rc;
}

int rp_schedules_list(rp_store_t *s, json_t **out, rp_error_t *err)
{
    *out = NULL;
    sqlite3_stmt *st = rp__stmt(s, "SELECT name, cron, tz, job, payload, next_at, last_at"
                                   " FROM rp_schedules ORDER BY name", err);
    if (!st)
        return err ? err->code : RP_EIO;
    json_t *arr = json_array();
    while (sqlite3_step(st) == SQLITE_ROW) {
        char next[32] = "", last[32] = "";
        if (sqlite3_column_int64(st, 5) != INT64_MAX)
            rp__fmt_time(sqlite3_column_int64(st, 5), next);
        if (sqlite3_column_type(st, 6) != SQLITE_NULL)
            rp__fmt_time(sqlite3_column_int64(st, 6), last);
        json_t *payload = json_loads((const char *)sqlite3_column_text(st, 4), 0, NULL);
        json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:o}", "name", sqlite3_column_text(st, 0),
                              "cron", sqlite3_column_text(st, 1), "tz",
                              sqlite3_column_text(st, 2), "job", sqlite3_column_text(st, 3),
                              "payload", payload ? payload : json_object());
        json_object_set_new(j, "next_at", next[0] ? json_string(next) : json_null());
        json_object_set_new(j, "last_at", last[0] ? json_string(last) : json_null());
        json_array_append_new(arr, j);
    }
    sqlite3_reset(st);
    *out = arr;
    return 0;
}

int rp_schedules_remove(rp_store_t *s, const char *name, rp_error_t *err)
{
    sqlite3_stmt *st = rp__stmt(s, "DELETE FROM rp_schedules WHERE name = ?", err);
    if (!st)
        return err ? err->code : RP_EIO;
    sqlite3_bind_text(st, 1, name ? name : "", -1, SQLITE_STATIC);
    int rc = rp__sched_step(s, st, "cannot remove the schedule", err);
    if (!rc && sqlite3_changes(s->db) == 0)
        return rp_error_set(err, RP_ENOTFOUND, RP_C_NO_RECORD, "no schedule named \"%s\"",
                            name ? name : "");
    return rc;
}
