/*
 * db.c — the generic part of the database room: opening through a driver, the statement
 * cache, transaction levels and savepoints, the time budget of a long read, and the calls
 * that pass a statement on to its driver.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "driver.h"

int64_t rp__db_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------------------------------- */
/* The connection                                                                            */

bool rp_db_is_server(const char *path)
{
    return path && (strncmp(path, "postgresql://", 13) == 0 || strncmp(path, "postgres://", 11) == 0);
}

int rp_db_open(const char *path, const rp_db_opts_t *opts, rp_db_t **out, rp_error_t *err)
{
    rp_db_opts_t o = {0};
    if (opts)
        o = *opts;
    *out = NULL;
    if (!path || !*path)
        return rp_error_set(err, RP_EINVAL, RP_C_OPEN, "no database path given");
    rp_db_t *db = calloc(1, sizeof *db);
    if (!db)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    db->drv = rp_db_is_server(path) ? &rp__db_pg : &rp__db_sqlite;
    db->busy_ms = o.busy_timeout_ms > 0 ? o.busy_timeout_ms : 5000;
    int rc = db->drv->open(db, path, &o, err);
    /* The modules' schemas are written for SQLite so far: none has its server text yet. */
    if (!rc && !o.no_migrate && !o.read_only && db->drv == &rp__db_pg)
        rc = rp_error_set(err, RP_ESTATE, RP_C_OPEN,
                          "PostgreSQL answers, but this build's store runs on SQLite only: its "
                          "schemas are not yet written for PostgreSQL (give a file name)");
    else if (!rc && !o.no_migrate && !o.read_only)
        rc = rp__db_migrate(db, err);
    if (rc) {
        rp_db_close(db);
        return rc;
    }
    *out = db;
    return 0;
}

void rp_db_close(rp_db_t *db)
{
    if (!db)
        return;
    if (db->conn)
        rp_db_read_end(db);
    if (db->depth > 0 && db->conn && db->drv->in_txn(db))
        db->drv->exec(db, "ROLLBACK");
    rp_db_flush(db);
    if (db->conn)
        db->drv->close(db);
    free(db);
}

const char *rp_db_dialect(const rp_db_t *db)
{
    return db->drv->name;
}

const char *rp_db_errmsg(rp_db_t *db)
{
    return db->drv->errmsg(db);
}

int rp_db_error(rp_db_t *db, int rc, const char *what, rp_error_t *err)
{
    if (rc == RP_DB_INTERRUPT && db->interrupted) {
        db->interrupted = false;
        return rp_error_set(err, RP_ELIMIT, RP_C_BUDGET, "%s: stopped at the time budget of "
                            "the call it ran in", what);
    }
    int code = rc == RP_DB_NOMEM ? RP_ENOMEM : RP_EIO;
    return rp_error_set(err, code, RP_C_SQL, "%s: %s", what, db->drv->errmsg(db));
}

int rp_db_exec(rp_db_t *db, const char *sql, rp_error_t *err)
{
    int rc = db->drv->exec(db, sql);
    return rc == RP_DB_OK ? 0 : rp_db_error(db, rc, "database statement failed", err);
}

int64_t rp_db_changes(rp_db_t *db)
{
    return db->drv->changes(db);
}

int64_t rp_db_last_id(rp_db_t *db)
{
    return db->drv->last_id(db);
}

bool rp_db_in_txn(rp_db_t *db)
{
    return db->drv->in_txn(db);
}

const char *rp_db_path(rp_db_t *db)
{
    return db->drv->path(db);
}

void rp_db_auto_checkpoint(rp_db_t *db, bool on)
{
    db->drv->auto_checkpoint(db, on);
}

int rp_db_checkpoint(rp_db_t *db, bool restart, int *pending)
{
    return db->drv->checkpoint(db, restart, pending);
}

int rp_db_set_cache_mb(rp_db_t *db, int mb, rp_error_t *err)
{
    if (mb < 1 || mb > 4096)
        return rp_error_set(err, RP_EINVAL, 0, "a page cache of %d MB: 1 to 4096 MB", mb);
    char sql[80];
    /* A number of our own, never user text. */
    snprintf(sql, sizeof sql, "PRAGMA cache_size = -%d; PRAGMA temp_store = MEMORY", mb * 1024);
    return rp_db_exec(db, sql, err);
}

int rp_db_schema_cookie(rp_db_t *db)
{
    /* Inside a snapshot the schema is the one its first read found: no other process's
     * change is seen, and this connection writes nothing before the snapshot ends. */
    if (db->snapshot && db->depth == 0)
        return db->snap_cookie;
    rp_db_stmt_t *st = rp_db_stmt(db, db->drv->cookie_sql, NULL);
    int v = st && rp_db_step(st) == RP_DB_ROW ? (int)rp_db_col_int(st, 0) : -1;
    if (st)
        rp_db_reset(st);
    return v;
}

/* ---------------------------------------------------------------------------------------- */
/* The statement cache                                                                       */

/* FNV-1a over the length, the first 48 and the last 48 bytes: the statements differ there
 * (their verb and table up front, their column lists and filters at the end), and hashing
 * every byte of a long INSERT was half of the lookup. strcmp decides equality. */
static unsigned hash_str(const char *p)
{
    size_t n = strlen(p);
    unsigned h = 2166136261u ^ (unsigned)n;
    size_t head = n < 96 ? n : 48;
    for (size_t i = 0; i < head; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    for (size_t i = n < 96 ? n : n - 48; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

/* Without this check a write after the database rolled back by itself would run outside any
 * transaction and commit on its own. */
static rp_db_stmt_t *aborted_error(rp_error_t *err)
{
    rp_error_set(err, RP_EIO, RP_C_SQL,
                 "the database rolled the transaction back after an error; nothing more runs "
                 "until it is unwound");
    return NULL;
}

/* Whether the open transaction is gone: the database rolled it back by itself after an error
 * (a full disk, an I/O error) that the caller has not yet unwound, perhaps not even seen (a
 * search that ran the index's held writes, its error caught by a script). Until the levels are
 * unwound, nothing more runs: a SAVEPOINT would start a transaction of its own, and its
 * RELEASE commit half of the work. */
static bool lost(rp_db_t *db)
{
    if (!db->aborted && db->depth > 0 && !db->drv->in_txn(db))
        db->aborted = true;
    return db->aborted;
}

static rp_db_stmt_t *prepare(rp_db_t *db, const char *sql, bool keep, rp_error_t *err)
{
    rp_db_stmt_t *st = NULL;
    int rc = db->drv->prepare(db, sql, keep, &st);
    if (rc != RP_DB_OK) {
        rp_db_error(db, rc, "cannot prepare a statement", err);
        return NULL;
    }
    st->drv = db->drv;
    st->db = db;
    return st;
}

rp_db_stmt_t *rp_db_stmt(rp_db_t *db, const char *sql, rp_error_t *err)
{
    if (lost(db))
        return aborted_error(err);
    unsigned h = hash_str(sql) % RP__DB_CACHE;
    for (unsigned i = 0; i < RP__DB_CACHE; i++) {
        unsigned k = (h + i) % RP__DB_CACHE;
        if (!db->cache[k].sql)
            break;
        if (strcmp(db->cache[k].sql, sql) == 0) {
            rp_db_stmt_t *st = db->cache[k].st;
            st->drv->reset(st);
            st->drv->clear(st);
            return st;
        }
    }
    rp_db_stmt_t *st = prepare(db, sql, true, err);
    if (!st)
        return NULL;
    /* A free slot on the probe path, else an idle statement's slot: a statement that is
     * still stepping (a caller's loop) is never finalized under it. Only filter shapes vary
     * without bound, so evicting is rare. */
    unsigned victim = RP__DB_CACHE;
    for (unsigned i = 0; i < RP__DB_CACHE; i++) {
        unsigned k = (h + i) % RP__DB_CACHE;
        if (!db->cache[k].sql) {
            victim = k;
            break;
        }
        if (victim == RP__DB_CACHE && !db->drv->busy(db->cache[k].st))
            victim = k;
    }
    char *copy = victim < RP__DB_CACHE ? strdup(sql) : NULL;
    if (!copy) {
        db->drv->finalize(st);
        rp_error_set(err, RP_ENOMEM, 0, "statement cache failure");
        return NULL;
    }
    if (db->cache[victim].sql) {
        db->drv->finalize(db->cache[victim].st);
        free(db->cache[victim].sql);
    }
    db->cache[victim].sql = copy;
    db->cache[victim].st = st;
    return st;
}

rp_db_stmt_t *rp_db_stmt_held(rp_db_t *db, rp_db_stmt_t **slot, const char *sql,
                              rp_error_t *err)
{
    if (lost(db))
        return aborted_error(err);
    if (*slot) {
        /* No clear: a held statement's caller binds every parameter. */
        (*slot)->drv->reset(*slot);
        return *slot;
    }
    *slot = prepare(db, sql, true, err);
    return *slot;
}

rp_db_stmt_t *rp_db_prepare(rp_db_t *db, const char *sql, rp_error_t *err)
{
    if (lost(db))
        return aborted_error(err);
    return prepare(db, sql, false, err);
}

void rp_db_finalize(rp_db_stmt_t *st)
{
    if (st)
        st->drv->finalize(st);
}

void rp_db_flush(rp_db_t *db)
{
    for (int i = 0; i < 8; i++) {
        rp_db_finalize(db->sp[i]);
        rp_db_finalize(db->release[i]);
        db->sp[i] = db->release[i] = NULL;
    }
    for (int i = 0; i < RP__DB_CACHE; i++) {
        if (db->cache[i].sql) {
            db->drv->finalize(db->cache[i].st);
            free(db->cache[i].sql);
            db->cache[i].sql = NULL;
            db->cache[i].st = NULL;
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Statements, passed on to the driver                                                       */

int rp_db_bind_int(rp_db_stmt_t *st, int i, int64_t v) { return st->drv->bind_int(st, i, v); }
int rp_db_bind_float(rp_db_stmt_t *st, int i, double v) { return st->drv->bind_float(st, i, v); }
int rp_db_bind_text(rp_db_stmt_t *st, int i, const char *s, int len)
{
    return st->drv->bind_text(st, i, s, len, 0);
}
int rp_db_bind_text_copy(rp_db_stmt_t *st, int i, const char *s, int len)
{
    return st->drv->bind_text(st, i, s, len, 1);
}
int rp_db_bind_text_owned(rp_db_stmt_t *st, int i, char *s, int len)
{
    return st->drv->bind_text(st, i, s, len, 2);
}
int rp_db_bind_blob(rp_db_stmt_t *st, int i, const void *p, int len)
{
    return st->drv->bind_blob(st, i, p, len);
}
int rp_db_bind_null(rp_db_stmt_t *st, int i) { return st->drv->bind_null(st, i); }
int rp_db_param_index(rp_db_stmt_t *st, const char *name)
{
    return st->drv->param_index(st, name);
}
int rp_db_step(rp_db_stmt_t *st) { return st->drv->step(st); }
void rp_db_reset(rp_db_stmt_t *st) { st->drv->reset(st); }
void rp_db_clear(rp_db_stmt_t *st) { st->drv->clear(st); }
bool rp_db_busy(rp_db_stmt_t *st) { return st->drv->busy(st); }
bool rp_db_readonly(rp_db_stmt_t *st) { return st->drv->readonly(st); }
int rp_db_col_count(rp_db_stmt_t *st) { return st->drv->col_count(st); }
rp_db_type_t rp_db_col_type(rp_db_stmt_t *st, int c) { return st->drv->col_type(st, c); }
int64_t rp_db_col_int(rp_db_stmt_t *st, int c) { return st->drv->col_int(st, c); }
double rp_db_col_float(rp_db_stmt_t *st, int c) { return st->drv->col_float(st, c); }
const char *rp_db_col_text(rp_db_stmt_t *st, int c) { return st->drv->col_text(st, c); }
const void *rp_db_col_blob(rp_db_stmt_t *st, int c) { return st->drv->col_blob(st, c); }
int rp_db_col_bytes(rp_db_stmt_t *st, int c) { return st->drv->col_bytes(st, c); }
const char *rp_db_col_name(rp_db_stmt_t *st, int c) { return st->drv->col_name(st, c); }

/* ---------------------------------------------------------------------------------------- */
/* Transaction levels                                                                        */

/* Writes "<prefix><depth>" into @p out: savepoint names, made often, so without printf. */
static const char *level_sql(char *out, const char *prefix, int depth)
{
    size_t n = strlen(prefix);
    memcpy(out, prefix, n);
    char digits[12];
    int k = 0;
    do {
        digits[k++] = (char)('0' + depth % 10);
        depth /= 10;
    } while (depth && k < 11);
    while (k)
        out[n++] = digits[--k];
    out[n] = '\0';
    return out;
}

/* Runs one transaction statement: held for the first levels, cached beyond. */
static int run_level(rp_db_t *db, rp_db_stmt_t **slot, const char *sql, const char *what,
                     rp_error_t *err)
{
    rp_db_stmt_t *st = slot ? rp_db_stmt_held(db, slot, sql, err) : rp_db_stmt(db, sql, err);
    if (!st)
        return err ? err->code : RP_EIO;
    int rc = rp_db_step(st);
    rp_db_reset(st);
    return rc == RP_DB_DONE ? 0 : rp_db_error(db, rc, what, err);
}

int rp_db_begin(rp_db_t *db, rp_error_t *err)
{
    char buf[40];
    if (db->depth == 0 && db->snapshot)
        rp_db_read_end(db); /* a write takes the newest state, never the snapshot's */
    int d = db->depth;
    if (lost(db)) {
        aborted_error(err);
        return err ? err->code : RP_EIO;
    }
    int rc = d == 0 ? run_level(db, NULL, db->drv->begin_sql, "cannot begin a transaction", err)
                    : run_level(db, d <= 8 ? &db->sp[d - 1] : NULL,
                                level_sql(buf, "SAVEPOINT rp_sp", d),
                                "cannot begin a transaction", err);
    if (!rc)
        db->depth++;
    return rc;
}

int rp_db_commit(rp_db_t *db, rp_error_t *err)
{
    if (db->depth == 0)
        return rp_error_set(err, RP_ESTATE, RP_C_TXN, "commit without an open transaction");
    if (db->aborted || !db->drv->in_txn(db))
        return rp_db_rollback(db, err); /* nothing is left to commit: say so */
    char buf[40];
    int level = db->depth - 1;
    int rc = level == 0 ? run_level(db, NULL, "COMMIT", "cannot commit", err)
                        : run_level(db, level <= 8 ? &db->release[level - 1] : NULL,
                                    level_sql(buf, "RELEASE rp_sp", level), "cannot commit",
                                    err);
    if (rc) {
        /* A failed COMMIT leaves the transaction open: roll it back so nothing half-done
         * lingers and the depth stays true. */
        rp_db_rollback(db, NULL);
        return rc;
    }
    db->depth--;
    return 0;
}

int rp_db_rollback(rp_db_t *db, rp_error_t *err)
{
    if (db->depth == 0)
        return rp_error_set(err, RP_ESTATE, RP_C_TXN, "rollback without an open transaction");
    if (db->aborted || !db->drv->in_txn(db)) {
        /* The database already rolled everything back by itself (disk full, I/O error): each
         * level unwinds with an error, and nothing runs meanwhile (see rp_db_stmt). */
        db->aborted = --db->depth > 0;
        return rp_error_set(err, RP_EIO, RP_C_SQL,
                            "the database rolled the whole transaction back after an error");
    }
    db->depth--;
    if (db->depth == 0) {
        int rc = db->drv->exec(db, "ROLLBACK");
        return rc == RP_DB_OK || !db->drv->in_txn(db)
                   ? 0 : rp_db_error(db, rc, "cannot roll back", err);
    }
    char buf[40];
    int rc = run_level(db, NULL, level_sql(buf, "ROLLBACK TO rp_sp", db->depth),
                       "cannot roll back to a savepoint", err);
    if (!rc)
        rc = run_level(db, NULL, level_sql(buf, "RELEASE rp_sp", db->depth),
                       "cannot roll back to a savepoint", err);
    return rc;
}

int rp_db_depth(const rp_db_t *db)
{
    return db->depth;
}

int rp_db_read_begin(rp_db_t *db, rp_error_t *err)
{
    if (db->depth > 0 || db->snapshot || db->drv->in_txn(db))
        return 0;
    int rc = run_level(db, NULL, db->drv->read_sql, "cannot begin a read", err);
    if (rc)
        return rc;
    /* BEGIN takes no lock: a first read does, and brings the data version up to date. */
    db->snap_cookie = rp_db_schema_cookie(db);
    db->snapshot = true;
    if (db->snap_cookie < 0) {
        rp_db_read_end(db);
        return rp_error_set(err, RP_EIO, RP_C_SQL, "cannot begin a read: %s",
                            db->drv->errmsg(db));
    }
    return 0;
}

bool rp_db_snapshot_version(rp_db_t *db, uint32_t *version)
{
    if (!db->snapshot || db->depth > 0 || !db->drv->in_txn(db))
        return false;
    *version = db->drv->data_version(db);
    return true;
}

void rp_db_read_end(rp_db_t *db)
{
    if (!db->snapshot)
        return;
    db->snapshot = false;
    /* COMMIT, not ROLLBACK: a bare statement that wrote inside the snapshot (outside any
     * level) keeps its work, as it would have without one. */
    if (db->depth == 0 && db->drv->in_txn(db) &&
        run_level(db, NULL, "COMMIT", "cannot end a read", NULL) && db->drv->in_txn(db))
        db->drv->exec(db, "ROLLBACK");
}

/* ---------------------------------------------------------------------------------------- */
/* The budget                                                                                */

int64_t rp_db_set_deadline(rp_db_t *db, int64_t mono_ms)
{
    int64_t was = db->deadline_ms;
    db->deadline_ms = mono_ms;
    return was;
}

int64_t rp_db_deadline(const rp_db_t *db)
{
    return db->deadline_ms;
}

void rp_db_set_interrupt(rp_db_t *db, rp_db_interrupt_fn fn, void *ud, rp_db_interrupt_fn *was_fn,
                         void **was_ud)
{
    if (was_fn)
        *was_fn = db->interrupt;
    if (was_ud)
        *was_ud = db->interrupt_ud;
    db->interrupt = fn;
    db->interrupt_ud = ud;
}

void rp_db_stopped(rp_db_t *db)
{
    db->interrupted = true;
}

bool rp_db_over_budget(rp_db_t *db)
{
    if (!db->deadline_ms && !db->interrupt)
        return false;
    /* The clock first, the caller's check after: a caller that set this deadline reads its
     * clock later, sees it passed too and names its own limit. The other way round, a
     * millisecond that ended between the two reads stopped a script's read at its wall-time
     * limit with the words of an enclosing call's budget (seen once, under load). */
    bool late = db->deadline_ms && rp__db_mono_ms() >= db->deadline_ms;
    return (db->interrupt && db->interrupt(db->interrupt_ud)) || late;
}

rp_db_stmt_t *rp_db_reading(rp_db_t *db, rp_db_stmt_t *st)
{
    rp_db_stmt_t *was = db->reading;
    db->reading = st;
    return was;
}

bool rp__db_progress(rp_db_t *db)
{
    if (!db->reading || (!db->deadline_ms && !db->interrupt))
        return false;
    /* The budget check first (the deadline, and the caller's, which can say which of its
     * limits stopped the read). The walk over the running statements only once the time is
     * up. Anything else running may be a write, which the database answers being cut by
     * rolling back the whole transaction, or the search index flushing (measured: a commit
     * cut there left the index malformed). */
    if (!rp_db_over_budget(db) || !db->drv->only_running(db, db->reading) ||
        !db->drv->readonly(db->reading))
        return false;
    db->interrupted = true;
    return true;
}

bool rp__db_busy_wait(rp_db_t *db, int count)
{
    int64_t now = rp__db_mono_ms();
    if (count == 0)
        db->busy_since = now;
    if (now - db->busy_since >= db->busy_ms || (db->deadline_ms && now >= db->deadline_ms))
        return false;
    struct timespec nap = {0, (count < 10 ? 1 : 5) * 1000000L};
    nanosleep(&nap, NULL);
    return true;
}
