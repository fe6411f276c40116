/*
 * sqlite.c — the embedded driver: the one file of Rapport that talks to SQLite. It opens the
 * file in WAL mode, registers the search tokenizer, waits for other writers within the
 * caller's deadline and lets the budget stop a long read (db.c decides when).
 */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "driver.h"
#include "fts.h"
#include "rapport/time.h"

/* The driver's statement: the head every statement has, then SQLite's. */
typedef struct sq_stmt {
    rp_db_stmt_t base;
    sqlite3_stmt *st;
} sq_stmt_t;

#define CONN(db) ((sqlite3 *)(db)->conn)
#define ST(s) (((sq_stmt_t *)(s))->st)

/* SQLite's codes are ours (db.h took their numbers); extended codes keep the two that callers
 * tell apart and fold the rest into their primary code. */
static int code(int rc)
{
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        return RP_DB_UNIQUE;
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        return RP_DB_FOREIGN;
    return rc & 0xff;
}

/* SQLite's wait for another writer: see rp__db_busy_wait(). */
static int busy(void *ud, int count)
{
    return rp__db_busy_wait(ud, count) ? 1 : 0;
}

/* SQLite's progress handler, every PROGRESS_OPS virtual-machine steps (about 20 µs). */
#define PROGRESS_OPS 2000
static int progress(void *ud)
{
    return rp__db_progress(ud) ? 1 : 0;
}

/* rapport_bucket(value, unit, zone): the calendar bucket of a date-time (text as the store
 * writes it) on the wall clock of zone (an IANA name, "" for UTC), or of a date (with no zone).
 * unit is RP_BUCKET_*. Every driver provides it (db.h); here it is C, the zone read once per
 * statement and kept as the argument's auxiliary data. */
static void bucket_fn(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const char *v = (const char *)sqlite3_value_text(argv[0]);
    if (!v) {
        sqlite3_result_null(cx);
        return;
    }
    int unit = sqlite3_value_int(argv[1]);
    char out[RP_BUCKET_LEN];
    int rc;
    int y, m, d;
    if (sqlite3_value_bytes(argv[0]) == 10 && rp_time_parse_date(v, &y, &m, &d) == 0) {
        rc = rp_time_bucket_days(rp_time_days_from_civil(y, (unsigned)m, (unsigned)d), unit, out);
    } else {
        rp_zone_t *z = sqlite3_get_auxdata(cx, 2);
        if (!z) {
            rp_error_t err = {0};
            if (rp_zone_open((const char *)sqlite3_value_text(argv[2]), &z, &err)) {
                sqlite3_result_error(cx, err.msg, -1);
                return;
            }
            sqlite3_set_auxdata(cx, 2, z, (void (*)(void *))rp_zone_close);
            z = sqlite3_get_auxdata(cx, 2);
            if (!z) {
                sqlite3_result_error_nomem(cx);
                return;
            }
        }
        int64_t ms;
        rc = rp_time_parse(v, &ms, NULL);
        if (rc == 0)
            rc = rp_time_bucket(ms, unit, z, out);
    }
    if (rc)
        sqlite3_result_null(cx);
    else
        sqlite3_result_text(cx, out, -1, SQLITE_TRANSIENT);
}

static int sq_open(rp_db_t *db, const char *path, const rp_db_opts_t *o, rp_error_t *err)
{
    /* Memory statistics cost a mutex on every allocation and nothing here reads them. The call
     * only takes effect before SQLite is first initialised, and is harmless after. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    /* No bulk page allocation per cache: SQLite would otherwise malloc 20 pages (87 KB) for
     * every page cache it makes, and it makes one for each sort or IN list a statement runs
     * (an ephemeral table). That allocation lands at the top of the heap, is touched page by
     * page and handed back to the kernel when the statement ends: a scheduler pass with nothing
     * to do spent 2 ms in page faults and brk. Pages are then allocated one at a time. */
    sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0);
    sqlite3 *c = NULL;
    int flags = o->read_only ? SQLITE_OPEN_READONLY
                             : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    int rc = sqlite3_open_v2(path, &c, flags | SQLITE_OPEN_NOMUTEX, NULL);
    db->conn = c;
    if (rc != SQLITE_OK)
        return rp_error_set(err, RP_EIO, RP_C_OPEN, "cannot open database %s: %s", path,
                            c ? sqlite3_errmsg(c) : "out of memory");
    sqlite3_extended_result_codes(c, 1);
    sqlite3_busy_handler(c, busy, db);
    sqlite3_progress_handler(c, PROGRESS_OPS, progress, db);
    if ((rc = rp__fts_register(c)) != SQLITE_OK)
        return rp_db_error(db, code(rc), "cannot register the search tokenizer", err);
    if ((rc = sqlite3_create_function(c, "rapport_bucket", 3,
                                      SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
                                      bucket_fn, NULL, NULL)) != SQLITE_OK)
        return rp_db_error(db, code(rc), "cannot register rapport_bucket", err);
    if (sqlite3_exec(c, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) != SQLITE_OK)
        return rp_error_set(err, RP_EIO, RP_C_OPEN, "%s is not a Rapport database (or is "
                            "damaged): %s", path, sqlite3_errmsg(c));
    if (o->read_only)
        return 0;
    /* journal_mode answers with a row; exec runs it and checks the result. secure_delete=FAST:
     * what is deleted (a job's payload, a plugin's taken secret) is zeroed where that costs no
     * extra I/O (the page is written anyway), not left readable in it until the page is reused;
     * ON would also zero whole freed pages, at a write each. (`rapport erase` turns ON for its
     * own transaction.) journal_size_limit: a log started over is cut back to 128 MB at most
     * (a bulk import's can grow far past that; a restart otherwise keeps the file's size). It
     * is above the 64 MB past which a serving engine starts its log over (sched/loop.c), so a
     * serving engine's log is not cut and grown again on every cycle. */
    return rp_db_exec(db, o->sync_full ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                                         " PRAGMA foreign_keys=ON; PRAGMA secure_delete=FAST;"
                                         " PRAGMA journal_size_limit=134217728;"
                                       : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                                         " PRAGMA foreign_keys=ON; PRAGMA secure_delete=FAST;"
                                         " PRAGMA journal_size_limit=134217728;",
                      err);
}

static void sq_close(rp_db_t *db)
{
    sqlite3_close_v2(CONN(db));
    db->conn = NULL;
}

static const char *sq_errmsg(rp_db_t *db)
{
    return db->conn ? sqlite3_errmsg(CONN(db)) : "no connection";
}

static int sq_exec(rp_db_t *db, const char *sql)
{
    return code(sqlite3_exec(CONN(db), sql, NULL, NULL, NULL));
}

static int64_t sq_changes(rp_db_t *db)
{
    return sqlite3_changes64(CONN(db));
}

static int64_t sq_last_id(rp_db_t *db)
{
    return sqlite3_last_insert_rowid(CONN(db));
}

static bool sq_in_txn(rp_db_t *db)
{
    return !sqlite3_get_autocommit(CONN(db));
}

static uint32_t sq_data_version(rp_db_t *db)
{
    /* Unlike PRAGMA data_version, it also moves on this connection's own commits, and costs
     * no statement: the pager's counter, brought up to date when a read transaction starts. */
    unsigned v = 0;
    if (sqlite3_file_control(CONN(db), "main", SQLITE_FCNTL_DATA_VERSION, &v) != SQLITE_OK)
        return 0;
    return v;
}

static const char *sq_path(rp_db_t *db)
{
    const char *file = sqlite3_db_filename(CONN(db), "main");
    return file && *file ? file : NULL;
}

static void sq_auto_checkpoint(rp_db_t *db, bool on)
{
    sqlite3_wal_autocheckpoint(CONN(db), on ? 1000 : 0);
}

static int sq_checkpoint(rp_db_t *db, bool restart, int *pending)
{
    int log = 0, done = 0;
    /* Restart, not truncate: the next writer starts over at the head of the same file, where
     * truncating made every write after it extend the file again, page by page, while it grew
     * back (measured on a serving loop: a restart's stall 30-40 ms with truncate, 10-17 ms with
     * restart). journal_size_limit, set at open, keeps the file from staying much larger. The
     * old frames stay in the file until written over (`rapport erase` truncates it itself). */
    int rc = sqlite3_wal_checkpoint_v2(CONN(db), NULL, restart ? SQLITE_CHECKPOINT_RESTART
                                                               : SQLITE_CHECKPOINT_PASSIVE,
                                       &log, &done);
    if (pending)
        *pending = log;
    return code(rc);
}

static bool sq_only_running(rp_db_t *db, rp_db_stmt_t *only)
{
    sqlite3_stmt *mine = ST(only);
    for (sqlite3_stmt *st = sqlite3_next_stmt(CONN(db), NULL); st;
         st = sqlite3_next_stmt(CONN(db), st))
        if (st != mine && sqlite3_stmt_busy(st))
            return false;
    return true;
}

static int sq_prepare(rp_db_t *db, const char *sql, bool keep, rp_db_stmt_t **out)
{
    sq_stmt_t *s = calloc(1, sizeof *s);
    if (!s)
        return RP_DB_NOMEM;
    int rc = sqlite3_prepare_v3(CONN(db), sql, -1, keep ? SQLITE_PREPARE_PERSISTENT : 0,
                                &s->st, NULL);
    if (rc != SQLITE_OK || !s->st) {
        sqlite3_finalize(s->st);
        free(s);
        return rc != SQLITE_OK ? code(rc) : RP_DB_ERROR;
    }
    *out = &s->base;
    return RP_DB_OK;
}

static void sq_finalize(rp_db_stmt_t *st)
{
    sqlite3_finalize(ST(st));
    free(st);
}

static int sq_bind_int(rp_db_stmt_t *st, int i, int64_t v)
{
    return code(sqlite3_bind_int64(ST(st), i, v));
}

static int sq_bind_float(rp_db_stmt_t *st, int i, double v)
{
    return code(sqlite3_bind_double(ST(st), i, v));
}

static int sq_bind_text(rp_db_stmt_t *st, int i, const char *s, int len, int how)
{
    return code(sqlite3_bind_text(ST(st), i, s, len, how == 2   ? free
                                                     : how == 1 ? SQLITE_TRANSIENT
                                                                : SQLITE_STATIC));
}

static int sq_bind_blob(rp_db_stmt_t *st, int i, const void *p, int len)
{
    return code(sqlite3_bind_blob(ST(st), i, p, len, SQLITE_TRANSIENT));
}

static int sq_bind_null(rp_db_stmt_t *st, int i)
{
    return code(sqlite3_bind_null(ST(st), i));
}

static int sq_param_index(rp_db_stmt_t *st, const char *name)
{
    return sqlite3_bind_parameter_index(ST(st), name);
}

static int sq_step(rp_db_stmt_t *st)
{
    return code(sqlite3_step(ST(st)));
}

static void sq_reset(rp_db_stmt_t *st)
{
    sqlite3_reset(ST(st));
}

static void sq_clear(rp_db_stmt_t *st)
{
    sqlite3_clear_bindings(ST(st));
}

static bool sq_busy(rp_db_stmt_t *st)
{
    return sqlite3_stmt_busy(ST(st));
}

static bool sq_readonly(rp_db_stmt_t *st)
{
    return sqlite3_stmt_readonly(ST(st));
}

static int sq_col_count(rp_db_stmt_t *st)
{
    return sqlite3_column_count(ST(st));
}

static rp_db_type_t sq_col_type(rp_db_stmt_t *st, int c)
{
    /* SQLITE_INTEGER 1 … SQLITE_NULL 5 are rp_db_type_t's numbers. */
    return (rp_db_type_t)sqlite3_column_type(ST(st), c);
}

static int64_t sq_col_int(rp_db_stmt_t *st, int c)
{
    return sqlite3_column_int64(ST(st), c);
}

static double sq_col_float(rp_db_stmt_t *st, int c)
{
    return sqlite3_column_double(ST(st), c);
}

static const char *sq_col_text(rp_db_stmt_t *st, int c)
{
    return (const char *)sqlite3_column_text(ST(st), c);
}

static const void *sq_col_blob(rp_db_stmt_t *st, int c)
{
    return sqlite3_column_blob(ST(st), c);
}

static int sq_col_bytes(rp_db_stmt_t *st, int c)
{
    return sqlite3_column_bytes(ST(st), c);
}

static const char *sq_col_name(rp_db_stmt_t *st, int c)
{
    return sqlite3_column_name(ST(st), c);
}

const rp_db_driver_t rp__db_sqlite = {
    .name = "sqlite",
    .begin_sql = "BEGIN IMMEDIATE",
    .has_table_sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
    .read_sql = "BEGIN",
    .cookie_sql = "PRAGMA schema_version",
    .open = sq_open,
    .close = sq_close,
    .errmsg = sq_errmsg,
    .exec = sq_exec,
    .changes = sq_changes,
    .last_id = sq_last_id,
    .in_txn = sq_in_txn,
    .data_version = sq_data_version,
    .path = sq_path,
    .auto_checkpoint = sq_auto_checkpoint,
    .checkpoint = sq_checkpoint,
    .only_running = sq_only_running,
    .prepare = sq_prepare,
    .finalize = sq_finalize,
    .bind_int = sq_bind_int,
    .bind_float = sq_bind_float,
    .bind_text = sq_bind_text,
    .bind_blob = sq_bind_blob,
    .bind_null = sq_bind_null,
    .param_index = sq_param_index,
    .step = sq_step,
    .reset = sq_reset,
    .clear = sq_clear,
    .busy = sq_busy,
    .readonly = sq_readonly,
    .col_count = sq_col_count,
    .col_type = sq_col_type,
    .col_int = sq_col_int,
    .col_float = sq_col_float,
    .col_text = sq_col_text,
    .col_blob = sq_col_blob,
    .col_bytes = sq_col_bytes,
    .col_name = sq_col_name,
};
