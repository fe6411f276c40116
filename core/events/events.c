/*
 * events.c — the event log from above the store: reading it, subscribers with checkpoints,
 * retries and dead letters, and explaining how a field came to hold its value. The store
 * appends the events (core/store/append.c) in the writer's transaction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapport/access.h"
#include "rapport/db.h"
#include "rapport/events.h"
#include "rapport/store.h"
#include "rapport/time.h"

/* The subscribers' tables. Never edit a released step; append one. */
static const rp_db_step_t events_steps[] = {
    {1,
     "CREATE TABLE rp_subscribers(name TEXT PRIMARY KEY, checkpoint INTEGER NOT NULL,"
     " types TEXT NOT NULL DEFAULT '*', created_at INTEGER NOT NULL) WITHOUT ROWID;"
     "CREATE TABLE rp_retries(subscriber TEXT NOT NULL, seq INTEGER NOT NULL,"
     " attempts INTEGER NOT NULL, next_at INTEGER NOT NULL, error TEXT NOT NULL,"
     " PRIMARY KEY(subscriber, seq)) WITHOUT ROWID;"
     "CREATE TABLE rp_dead(id INTEGER PRIMARY KEY AUTOINCREMENT, subscriber TEXT NOT NULL,"
     " seq INTEGER NOT NULL, attempts INTEGER NOT NULL, error TEXT NOT NULL, at INTEGER NOT NULL,"
     " replay INTEGER NOT NULL DEFAULT 0);"
     "CREATE INDEX rp_dead_sub ON rp_dead(subscriber, replay, id);",
     NULL},
};
static const int events_legacy[] = {1, 1, 1, 1};
static const rp_db_schema_t events_schema = {"events", events_steps, 1, events_legacy, 4};
RP_DB_SCHEMA(events_schema)

/* ---- reading ---------------------------------------------------------------------------- */

#define EVENT_COLS "seq, uid, type, entity, record_id, actor, origin, at, changes, cause, depth"

/* One allocation holds every string of an event (uid first, so freeing uid frees all): events
 * are read by the thousand and each would otherwise cost eight mallocs. */
static void event_from_row(rp_db_stmt_t *st, rp_event_t *ev)
{
    static const int cols[6] = {1, 2, 3, 5, 6, 8};
    size_t len[6], total = 32;
    for (int i = 0; i < 6; i++) {
        len[i] = (size_t)rp_db_col_bytes(st, cols[i]);
        total += len[i] + 1;
    }
    memset(ev, 0, sizeof *ev);
    char *arena = malloc(total);
    if (!arena)
        return;
    char **dst[6] = {&ev->uid, &ev->type, &ev->entity, &ev->actor, &ev->origin, &ev->changes};
    char *p = arena;
    for (int i = 0; i < 6; i++) {
        const char *t = rp_db_col_text(st, cols[i]);
        if (len[i])
            memcpy(p, t, len[i]);
        p[len[i]] = '\0';
        *dst[i] = p;
        p += len[i] + 1;
    }
    ev->at = p;
    ev->seq = rp_db_col_int(st, 0);
    ev->record_id = rp_db_col_int(st, 4);
    ev->at_ms = rp_db_col_int(st, 7);
    rp_time_format(ev->at_ms, ev->at);
    ev->cause = rp_db_col_int(st, 9);
    ev->depth = (int)rp_db_col_int(st, 10);
}

void rp_event_clear(rp_event_t *ev)
{
    if (!ev)
        return;
    free(ev->uid);
    memset(ev, 0, sizeof *ev);
}

json_t *rp_event_json(const rp_event_t *ev)
{
    json_t *ch = json_loads(ev->changes ? ev->changes : "{}", 0, NULL);
    return json_pack("{s:I,s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:o,s:I,s:i}", "seq", (json_int_t)ev->seq,
                     "uid", ev->uid ? ev->uid : "", "type", ev->type ? ev->type : "", "entity",
                     ev->entity ? ev->entity : "", "record_id", (json_int_t)ev->record_id,
                     "actor", ev->actor ? ev->actor : "", "origin", ev->origin ? ev->origin : "",
                     "at", ev->at ? ev->at : "", "changes", ch ? ch : json_object(), "cause",
                     (json_int_t)ev->cause, "depth", ev->depth);
}

static int read_rows(rp_store_t *s, rp_db_stmt_t *st, rp_event_t *out, int max, rp_error_t *err)
{
    int n = 0, rc = RP_DB_DONE;
    rp_db_stmt_t *was_reading = rp_db_reading(rp_store_db(s), st);
    while (n < max && (rc = rp_db_step(st)) == RP_DB_ROW) {
        event_from_row(st, &out[n++]);
        if (n % 16 == 0 && (rc = rp_store_over_budget(s, err)))
            break;
    }
    rp_db_reading(rp_store_db(s), was_reading);
    if (rc < 0 || (n < max && rc != RP_DB_DONE)) {
        rp_db_reset(st);
        for (int i = 0; i < n; i++)
            rp_event_clear(&out[i]);
        return rc < 0 ? rc : rp_db_error(rp_store_db(s), rc, "cannot read events", err);
    }
    rp_db_reset(st);
    return n;
}

int rp_events_list(rp_store_t *s, int64_t after_seq, bool newest, rp_event_t *out, int max,
                   rp_error_t *err)
{
    if (max <= 0)
        return 0;
    const char *sql = newest ? "SELECT * FROM (SELECT " EVENT_COLS " FROM rp_events WHERE seq > ?"
                               " ORDER BY seq DESC LIMIT ?) ORDER BY seq"
                             : "SELECT " EVENT_COLS " FROM rp_events WHERE seq > ? ORDER BY seq"
                               " LIMIT ?";
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), sql, err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_int(st, 1, after_seq);
    rp_db_bind_int(st, 2, max);
    return read_rows(s, st, out, max, err);
}

int rp_events_for_record(rp_store_t *s, const char *entity, int64_t record_id, int64_t after_seq,
                         rp_event_t *out, int max, rp_error_t *err)
{
    if (max <= 0)
        return 0;
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s),
                                "SELECT " EVENT_COLS " FROM rp_events WHERE entity = ?"
                                " AND record_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                                err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_text(st, 1, entity, -1);
    rp_db_bind_int(st, 2, record_id);
    rp_db_bind_int(st, 3, after_seq);
    rp_db_bind_int(st, 4, max);
    return read_rows(s, st, out, max, err);
}

int rp_events_for_record_before(rp_store_t *s, const char *entity, int64_t record_id,
                                int64_t before_seq, rp_event_t *out, int max, rp_error_t *err)
{
    if (max <= 0)
        return 0;
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s),
                                "SELECT " EVENT_COLS " FROM rp_events WHERE entity = ?"
                                " AND record_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
                                err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_text(st, 1, entity, -1);
    rp_db_bind_int(st, 2, record_id);
    rp_db_bind_int(st, 3, before_seq > 0 ? before_seq : INT64_MAX);
    rp_db_bind_int(st, 4, max);
    return read_rows(s, st, out, max, err);
}

int64_t rp_events_last_seq(rp_store_t *s)
{
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "SELECT coalesce(max(seq), 0) FROM rp_events", NULL);
    if (!st)
        return 0;
    int64_t seq = rp_db_step(st) == RP_DB_ROW ? rp_db_col_int(st, 0) : 0;
    rp_db_reset(st);
    return seq;
}

/* ---- subscribers ------------------------------------------------------------------------ */

static bool subscriber_name_ok(const char *n)
{
    if (!n || !*n || strlen(n) > 64)
        return false;
    for (const char *p = n; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '.' || *p == '-' || *p == ':'))
            return false;
    return true;
}

static int no_subscriber(const char *name, rp_error_t *err)
{
    return rp_error_set(err, RP_ENOTFOUND, RP_C_SUBSCRIBER, "no subscriber named \"%s\"",
                        name ? name : "(null)");
}

int rp_events_subscribe(rp_store_t *s, const char *name, const char *types, bool from_now,
                        rp_error_t *err)
{
    if (!subscriber_name_ok(name))
        return rp_error_set(err, RP_EINVAL, RP_C_IDENT,
                            "\"%s\" is not a valid subscriber name (letters, digits, _ . - :, at "
                            "most 64)",
                            name ? name : "(null)");
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s),
                                "INSERT INTO rp_subscribers(name, checkpoint, types, created_at)"
                                " VALUES(?1, CASE WHEN ?2 THEN (SELECT coalesce(max(seq), 0)"
                                " FROM rp_events) ELSE 0 END, ?3, ?4)"
                                " ON CONFLICT(name) DO UPDATE SET types = excluded.types",
                                err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_text(st, 1, name, -1);
    rp_db_bind_int(st, 2, from_now);
    rp_db_bind_text(st, 3, types && *types ? types : "*", -1);
    rp_db_bind_int(st, 4, rp_store_now(s));
    int rc = rp_db_step(st);
    rp_db_reset(st);
    return rc == RP_DB_DONE ? 0 : rp_db_error(rp_store_db(s), rc, "cannot create the subscriber", err);
}

int rp_events_unsubscribe(rp_store_t *s, const char *name, rp_error_t *err)
{
    static const char *const sql[] = {"DELETE FROM rp_retries WHERE subscriber = ?",
                                      "DELETE FROM rp_dead WHERE subscriber = ?",
                                      "DELETE FROM rp_subscribers WHERE name = ?"};
    int rc = rp_store_begin(s, err);
    if (rc)
        return rc;
    for (int i = 0; i < 3; i++) {
        rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), sql[i], err);
        if (!st) {
            rc = err ? err->code : RP_EIO;
            break;
        }
        rp_db_bind_text(st, 1, name, -1);
        int src = rp_db_step(st);
        rp_db_reset(st);
        if (src != RP_DB_DONE) {
            rc = rp_db_error(rp_store_db(s), src, "cannot remove the subscriber", err);
            break;
        }
        if (i == 2 && rp_db_changes(rp_store_db(s)) == 0)
            rc = no_subscriber(name, err);
    }
    if (rc) {
        rp_store_rollback(s, NULL);
        return rc;
    }
    return rp_store_commit(s, err);
}

/* Reads the checkpoint and type glob of @p name. */
static int sub_state(rp_store_t *s, const char *name, int64_t *checkpoint, char *types,
                     size_t cap, rp_error_t *err)
{
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "SELECT checkpoint, types FROM rp_subscribers WHERE name = ?",
                                err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_text(st, 1, name, -1);
    int rc = rp_db_step(st);
    if (rc == RP_DB_ROW) {
        *checkpoint = rp_db_col_int(st, 0);
        if (types)
            snprintf(types, cap, "%s", rp_db_col_text(st, 1));
    }
    rp_db_reset(st);
    if (rc == RP_DB_DONE)
        return no_subscriber(name, err);
    return rc == RP_DB_ROW ? 0 : rp_db_error(rp_store_db(s), rc, "cannot read the subscriber", err);
}

int rp_events_checkpoint(rp_store_t *s, const char *name, int64_t *seq, rp_error_t *err)
{
    return sub_state(s, name, seq, NULL, 0, err);
}

#define SKIP_WRITE 256

static int exec_bound(rp_store_t *s, const char *sql, const char *name, int64_t a, int64_t b,
                      const char *text, rp_error_t *err);

int rp_events_read(rp_store_t *s, const char *name, rp_event_t *out, int max,
                   int64_t *retry_at_ms, rp_error_t *err)
{
    if (retry_at_ms)
        *retry_at_ms = 0;
    int64_t checkpoint;
    char types[128];
    int rc = sub_state(s, name, &checkpoint, types, sizeof types, err);
    if (rc || max <= 0)
        return rc;
    /* Dead letters queued for replay go first. */
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s),
                                "SELECT e.seq, e.uid, e.type, e.entity, e.record_id, e.actor,"
                                " e.origin, e.at, e.changes, e.cause, e.depth, d.attempts"
                                " FROM rp_dead d JOIN rp_events e ON e.seq = d.seq"
                                " WHERE d.subscriber = ? AND d.replay = 1 ORDER BY d.id LIMIT ?",
                                err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_text(st, 1, name, -1);
    rp_db_bind_int(st, 2, max);
    int n = 0;
    while (n < max && rp_db_step(st) == RP_DB_ROW) {
        event_from_row(st, &out[n]);
        out[n].attempts = (int)rp_db_col_int(st, 11);
        out[n].replay = true;
        n++;
    }
    rp_db_reset(st);
    if (n > 0)
        return n;
    /* A pending retry of the head event holds the subscriber back until it is due. */
    st = rp_db_stmt(rp_store_db(s), "SELECT seq, attempts, next_at FROM rp_retries WHERE subscriber = ?"
                     " ORDER BY seq LIMIT 1", err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_text(st, 1, name, -1);
    int64_t rseq = 0, rnext = 0;
    int rattempts = 0;
    if (rp_db_step(st) == RP_DB_ROW) {
        rseq = rp_db_col_int(st, 0);
        rattempts = (int)rp_db_col_int(st, 1);
        rnext = rp_db_col_int(st, 2);
    }
    rp_db_reset(st);
    if (rseq && rnext > rp_store_now(s)) {
        if (retry_at_ms)
            *retry_at_ms = rnext;
        return 0;
    }
    /* The pattern is an expression, not a bare parameter: SQLite plans a GLOB against a bound
     * parameter by its value, so each subscriber's own pattern, bound to this one cached
     * statement, made it prepare again on every read (two thirds of an idle scheduler pass). */
    st = rp_db_stmt(rp_store_db(s), "SELECT " EVENT_COLS " FROM rp_events WHERE seq > ?"
                     " AND type GLOB CAST(? AS TEXT) ORDER BY seq LIMIT ?", err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_int(st, 1, checkpoint);
    rp_db_bind_text_copy(st, 2, types, -1);
    rp_db_bind_int(st, 3, max);
    n = read_rows(s, st, out, max, err);
    for (int i = 0; i < n; i++)
        if (out[i].seq == rseq)
            out[i].attempts = rattempts;
    /* Nothing for this subscriber since its checkpoint: move the checkpoint past what was
     * read, or every later read scans the same events again (a subscriber to lead.* under a
     * stream of contact.created scanned all of them on every pass: quadratic, and 73% of an
     * API server's time). Every event up to the newest visible one is committed and no later
     * commit can take a lower seq, so nothing is skipped. Written once per SKIP_WRITE events,
     * not on every empty read. */
    if (n == 0 && !rseq) {
        int64_t last = rp_events_last_seq(s);
        if (last - checkpoint >= SKIP_WRITE) {
            int rc2 = exec_bound(s, "UPDATE rp_subscribers SET checkpoint = max(checkpoint, ?2)"
                                    " WHERE name = ?1 AND ?3 = ?3", name, last, 0, NULL, err);
            if (rc2)
                return rc2;
        }
    }
    return n;
}

static int exec_bound(rp_store_t *s, const char *sql, const char *name, int64_t a, int64_t b,
                      const char *text, rp_error_t *err)
{
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), sql, err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_text(st, 1, name, -1);
    rp_db_bind_int(st, 2, a);
    rp_db_bind_int(st, 3, b);
    if (text)
        rp_db_bind_text(st, 4, text, -1);
    int rc = rp_db_step(st);
    rp_db_reset(st);
    return rc == RP_DB_DONE ? 0 : rp_db_error(rp_store_db(s), rc, "cannot update the subscriber", err);
}

int rp_events_ack(rp_store_t *s, const char *name, int64_t seq, rp_error_t *err)
{
    int rc = rp_store_begin(s, err);
    if (rc)
        return rc;
    if ((rc = exec_bound(s, "DELETE FROM rp_dead WHERE subscriber = ?1 AND seq = ?2 AND replay = 1"
                            " AND ?3 = ?3", name, seq, 0, NULL, err)))
        goto fail;
    if (rp_db_changes(rp_store_db(s)) == 0) {
        if ((rc = exec_bound(s, "UPDATE rp_subscribers SET checkpoint = max(checkpoint, ?2)"
                                " WHERE name = ?1 AND ?3 = ?3", name, seq, 0, NULL, err)))
            goto fail;
        if (rp_db_changes(rp_store_db(s)) == 0) {
            rc = no_subscriber(name, err);
            goto fail;
        }
        if ((rc = exec_bound(s, "DELETE FROM rp_retries WHERE subscriber = ?1 AND seq <= ?2"
                                " AND ?3 = ?3", name, seq, 0, NULL, err)))
            goto fail;
    }
    return rp_store_commit(s, err);
fail:
    rp_store_rollback(s, NULL);
    return rc;
}

int rp_events_fail(rp_store_t *s, const char *name, int64_t seq, const char *error,
                   const rp_retry_t *retry, bool *dead, rp_error_t *err)
{
    rp_retry_t r = retry ? *retry : (rp_retry_t){0};
    int max_attempts = r.max_attempts > 0 ? r.max_attempts : 5;
    int64_t base = r.base_ms > 0 ? r.base_ms : 1000;
    int64_t ceiling = r.max_delay_ms > 0 ? r.max_delay_ms : 3600000;
    const char *why = error && *error ? error : "the handler failed without a message";
    int64_t now = rp_store_now(s);
    if (dead)
        *dead = false;
    int rc = rp_store_begin(s, err);
    if (rc)
        return rc;
    /* A replayed dead letter that fails again goes back to the dead letters. */
    if ((rc = exec_bound(s, "UPDATE rp_dead SET replay = 0, attempts = attempts + 1, at = ?3,"
                            " error = ?4 WHERE subscriber = ?1 AND seq = ?2 AND replay = 1",
                         name, seq, now, why, err)))
        goto fail;
    if (rp_db_changes(rp_store_db(s)) > 0) {
        if (dead)
            *dead = true;
        return rp_store_commit(s, err);
    }
    int64_t checkpoint;
    if ((rc = sub_state(s, name, &checkpoint, NULL, 0, err)))
        goto fail;
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "SELECT attempts FROM rp_retries WHERE subscriber = ?"
                                   " AND seq = ?", err);
    if (!st) {
        rc = err ? err->code : RP_EIO;
        goto fail;
    }
    rp_db_bind_text(st, 1, name, -1);
    rp_db_bind_int(st, 2, seq);
    int attempts = (rp_db_step(st) == RP_DB_ROW ? (int)rp_db_col_int(st, 0) : 0) + 1;
    rp_db_reset(st);
    if (attempts >= max_attempts) {
        rp_db_stmt_t *ins = rp_db_stmt(rp_store_db(s), "INSERT INTO rp_dead(subscriber, seq, attempts, at,"
                                        " error) VALUES(?,?,?,?,?)", err);
        if (!ins) {
            rc = err ? err->code : RP_EIO;
            goto fail;
        }
        rp_db_bind_text(ins, 1, name, -1);
        rp_db_bind_int(ins, 2, seq);
        rp_db_bind_int(ins, 3, attempts);
        rp_db_bind_int(ins, 4, now);
        rp_db_bind_text(ins, 5, why, -1);
        int src = rp_db_step(ins);
        rp_db_reset(ins);
        if (src != RP_DB_DONE) {
            rc = rp_db_error(rp_store_db(s), src, "cannot record the dead letter", err);
            goto fail;
        }
        if ((rc = exec_bound(s, "DELETE FROM rp_retries WHERE subscriber = ?1 AND seq = ?2"
                                " AND ?3 = ?3", name, seq, 0, NULL, err)) ||
            (rc = exec_bound(s, "UPDATE rp_subscribers SET checkpoint = max(checkpoint, ?2)"
                                " WHERE name = ?1 AND ?3 = ?3", name, seq, 0, NULL, err)))
            goto fail;
        if (dead)
            *dead = true;
    } else {
        /* Exponential backoff with "equal jitter": half the delay fixed, half random, so
         * many failing subscribers do not retry in step. */
        int64_t delay = base;
        for (int i = 1; i < attempts && delay < ceiling; i++)
            delay *= 2;
        if (delay > ceiling)
            delay = ceiling;
        delay = delay / 2 + (int64_t)(rp_store_random(s) % (uint64_t)(delay / 2 + 1));
        rp_db_stmt_t *up = rp_db_stmt(rp_store_db(s), "INSERT INTO rp_retries(subscriber, seq, attempts, next_at,"
                                       " error) VALUES(?,?,?,?,?) ON CONFLICT(subscriber, seq)"
                                       " DO UPDATE SET attempts = excluded.attempts,"
                                       " next_at = excluded.next_at, error = excluded.error", err);
        if (!up) {
            rc = err ? err->code : RP_EIO;
            goto fail;
        }
        rp_db_bind_text(up, 1, name, -1);
        rp_db_bind_int(up, 2, seq);
        rp_db_bind_int(up, 3, attempts);
        rp_db_bind_int(up, 4, now + delay);
        rp_db_bind_text(up, 5, why, -1);
        int src = rp_db_step(up);
        rp_db_reset(up);
        if (src != RP_DB_DONE) {
            rc = rp_db_error(rp_store_db(s), src, "cannot record the retry", err);
            goto fail;
        }
    }
    return rp_store_commit(s, err);
fail:
    rp_store_rollback(s, NULL);
    return rc;
}

int rp_events_deliver(rp_store_t *s, const char *name, rp_event_fn fn, void *ud, int max,
                      const rp_retry_t *retry, rp_error_t *err)
{
    enum { BATCH = 1024 };
    rp_event_t *evs = malloc(sizeof *evs * BATCH);
    if (!evs)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    char actor[96];
    snprintf(actor, sizeof actor, "subscriber:%s", name ? name : "");
    int handled = 0, rc = 0;
    while (handled < max && rc >= 0) {
        int want = max - handled < BATCH ? max - handled : BATCH;
        int n = rp_events_read(s, name, evs, want, NULL, err);
        if (n <= 0) {
            rc = n < 0 ? n : 0;
            break;
        }
        /* A batch is one transaction and each event a savepoint in it: a handler's writes and
         * the checkpoint that covers them commit together, and a failing handler undoes only
         * its own event. */
        int failed = -1;
        int64_t last_ok = 0;
        rp_error_t herr = {0};
        if ((rc = rp_store_begin(s, err)))
            goto next;
        for (int i = 0; i < n; i++) {
            rp_ctx_t ctx = {.actor = actor, .origin = "handler", .cause = evs[i].seq,
                            .depth = evs[i].depth + 1};
            rp_error_clear(&herr);
            rp_store_lazy_begin(s);
            int hrc = fn(s, &evs[i], &ctx, ud, &herr);
            bool opened = rp_store_lazy_end(s);
            if (hrc != 0) {
                if (opened)
                    rp_store_rollback(s, NULL);
                failed = i;
                break;
            }
            if (evs[i].replay && (rc = rp_events_ack(s, name, evs[i].seq, err))) {
                if (opened)
                    rp_store_rollback(s, NULL);
                break;
            }
            if (opened && (rc = rp_store_commit(s, err)))
                break;
            if (!evs[i].replay)
                last_ok = evs[i].seq;
            handled++;
        }
        if (!rc && last_ok)
            rc = rp_events_ack(s, name, last_ok, err);
        if (rc) {
            rp_store_rollback(s, NULL);
            goto next;
        }
        if ((rc = rp_store_commit(s, err)))
            goto next;
        if (failed >= 0) {
            const char *why = herr.msg[0] ? herr.msg : "the handler returned an error";
            bool dead = false;
            rc = rp_events_fail(s, name, evs[failed].seq, why, retry, &dead, err);
            /* A dead letter no longer holds the subscriber back: read on. A retry does. */
            if (!rc && !dead)
                rc = 1;
        }
    next:
        for (int j = 0; j < n; j++)
            rp_event_clear(&evs[j]);
    }
    free(evs);
    return rc < 0 ? rc : handled;
}

int rp_events_dead(rp_store_t *s, const char *name, json_t **out, rp_error_t *err)
{
    *out = NULL;
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s),
                                "SELECT d.id, d.subscriber, d.seq, e.type, d.error, d.attempts,"
                                " d.at, d.replay FROM rp_dead d JOIN rp_events e ON e.seq = d.seq"
                                " WHERE ?1 IS NULL OR d.subscriber = ?1 ORDER BY d.id",
                                err);
    if (!st)
        return err ? err->code : RP_EIO;
    if (name)
        rp_db_bind_text(st, 1, name, -1);
    json_t *arr = json_array();
    while (rp_db_step(st) == RP_DB_ROW) {
        char at[32];
        rp_time_format(rp_db_col_int(st, 6), at);
        json_array_append_new(
            arr, json_pack("{s:I,s:s,s:I,s:s,s:s,s:i,s:s,s:b}", "id",
                           (json_int_t)rp_db_col_int(st, 0), "subscriber",
                           rp_db_col_text(st, 1), "seq",
                           (json_int_t)rp_db_col_int(st, 2), "type",
                           rp_db_col_text(st, 3), "error",
                           rp_db_col_text(st, 4), "attempts",
                           (int)rp_db_col_int(st, 5), "at", at, "replaying",
                           (int)rp_db_col_int(st, 7)));
    }
    rp_db_reset(st);
    *out = arr;
    return 0;
}

int rp_events_replay(rp_store_t *s, int64_t id, rp_error_t *err)
{
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "UPDATE rp_dead SET replay = 1 WHERE id = ?", err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_int(st, 1, id);
    int rc = rp_db_step(st);
    rp_db_reset(st);
    if (rc != RP_DB_DONE)
        return rp_db_error(rp_store_db(s), rc, "cannot queue the replay", err);
    if (rp_db_changes(rp_store_db(s)) == 0)
        return rp_error_set(err, RP_ENOTFOUND, RP_C_SUBSCRIBER, "no dead letter with id %lld",
                            (long long)id);
    return 0;
}

/* ---- explain ---------------------------------------------------------------------------- */

static json_t *causes_of(rp_store_t *s, int64_t cause)
{
    json_t *arr = json_array();
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "SELECT seq, type, entity, record_id, actor, origin, cause"
                                   " FROM rp_events WHERE seq = ?", NULL);
    for (int guard = 0; st && cause > 0 && guard < 64; guard++) {
        rp_db_bind_int(st, 1, cause);
        if (rp_db_step(st) != RP_DB_ROW) {
            rp_db_reset(st);
            break;
        }
        json_array_append_new(arr, json_pack("{s:I,s:s,s:s,s:I,s:s,s:s}", "seq",
                                             (json_int_t)rp_db_col_int(st, 0), "type",
                                             rp_db_col_text(st, 1), "entity",
                                             rp_db_col_text(st, 2), "record_id",
                                             (json_int_t)rp_db_col_int(st, 3), "actor",
                                             rp_db_col_text(st, 4), "origin",
                                             rp_db_col_text(st, 5)));
        cause = rp_db_col_int(st, 6);
        rp_db_reset(st);
    }
    return arr;
}

int rp_events_explain(rp_store_t *s, const char *entity, int64_t id, const char *field,
                      json_t **out, rp_error_t *err)
{
    *out = NULL;
    if (!rp_store_has_entity(s, entity))
        return rp_error_set(err, RP_ENOTFOUND, RP_C_NO_ENTITY, "unknown entity \"%s\"",
                            entity ? entity : "(null)");
    if (!field || (!rp_store_has_field(s, entity, field) && strcmp(field, "deleted_at") != 0))
        return rp_error_set(err, RP_EINVAL, RP_C_NO_FIELD, "unknown field \"%s\" on %s",
                            field ? field : "(null)", entity);
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "SELECT " EVENT_COLS " FROM rp_events WHERE entity = ?"
                                   " AND record_id = ? ORDER BY seq", err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_text(st, 1, entity, -1);
    rp_db_bind_int(st, 2, id);
    /* Collect first: causes_of() uses another cached statement while this one is open. */
    json_t *rows = json_array();
    int rc;
    rp_db_stmt_t *was_reading = rp_db_reading(rp_store_db(s), st);
    while ((rc = rp_db_step(st)) == RP_DB_ROW) {
        /* Each row's changes are parsed here, between the database's steps: a history of big
         * changes is stopped at the caller's budget, and says so rather than answer a part. */
        if ((rc = rp_store_over_budget(s, err)))
            break;
        json_t *ch = json_loads(rp_db_col_text(st, 8), 0, NULL);
        json_t *pair = json_object_get(ch, field);
        if (json_is_array(pair) && json_array_size(pair) == 2) {
            char at[32];
            rp_time_format(rp_db_col_int(st, 7), at);
            json_array_append_new(
                rows, json_pack("{s:I,s:s,s:s,s:s,s:s,s:O,s:O,s:I}", "seq",
                                (json_int_t)rp_db_col_int(st, 0), "at", at, "type",
                                rp_db_col_text(st, 2), "actor",
                                rp_db_col_text(st, 5), "origin",
                                rp_db_col_text(st, 6), "old",
                                json_array_get(pair, 0), "new", json_array_get(pair, 1), "cause",
                                (json_int_t)rp_db_col_int(st, 9)));
        }
        json_decref(ch);
    }
    rp_db_reading(rp_store_db(s), was_reading);
    rp_db_reset(st);
    if (rc != RP_DB_DONE) {
        json_decref(rows);
        return rc < 0 ? rc : rp_db_error(rp_store_db(s), rc, "cannot read the record's history", err);
    }
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) {
        json_object_set_new(r, "causes",
                            causes_of(s, json_integer_value(json_object_get(r, "cause"))));
        json_object_del(r, "cause");
    }
    *out = rows;
    return 0;
}

int rp_events_explain_as(rp_store_t *s, const rp_ctx_t *ctx, const char *entity, int64_t id,
                         const char *field, json_t **out, rp_error_t *err)
{
    const rp_access_t *a = (ctx ? ctx->access : NULL);
    if (a) {
        *out = NULL;
        json_t *rec = NULL;
        int rc = rp_store_get_as(s, ctx, entity, id, &rec, err);
        json_decref(rec);
        if (rc)
            return rc;
        if (rp_access_hidden(a, entity, field))
            return rp_error_field(err, field, rp_error_set(err, RP_EPERM, RP_C_DENIED,
                                  "role %s may not read %s.%s: it is hidden (missing: read "
                                  "%s.%s)", rp_access_role(a), entity, field, entity, field));
    }
    int rc = rp_events_explain(s, entity, id, field, out, err);
    if (rc || !a)
        return rc;
    /* The causes are other records' events: the user sees those they may read, and where a
     * cause is not theirs to see, that there was one ({"seq", "hidden": true}). */
    size_t i;
    json_t *row;
    json_array_foreach(*out, i, row) {
        json_t *causes = json_object_get(row, "causes");
        size_t j;
        json_t *cz;
        json_array_foreach(causes, j, cz) {
            json_t *probe = json_pack("{s:O,s:O}", "entity", json_object_get(cz, "entity"),
                                      "record_id", json_object_get(cz, "record_id"));
            if (probe && rp_access_event(s, a, probe, NULL) != 1)
                json_array_set_new(causes, j, json_pack("{s:O,s:b}", "seq",
                                                        json_object_get(cz, "seq"), "hidden",
                                                        1));
            json_decref(probe);
        }
    }
    return 0;
}
