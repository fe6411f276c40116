/*
 * db.h — the database room: one connection, its statement cache, transactions and savepoints,
 * the time budget of a long read, and the registry where every module declares its own
 * versioned schema beside its code.
 *
 * Every other room reaches the database through this header and never through a driver's own
 * library: core/db/sqlite.c is the one file that names SQLite. A driver fills rp_db_driver_t
 * (core/db/driver.h); the calls below dispatch to it. The interface was drawn with a second,
 * server driver in mind (PostgreSQL):
 *   - parameters are written `?` (or `?N`) in the module's SQL; a driver that numbers them
 *     `$N` rewrites the text once, when it prepares it;
 *   - a new row's id comes from rp_db_last_id() after an INSERT, or from `RETURNING id` read
 *     as a row (both dialects answer RETURNING);
 *   - upsert is `INSERT … ON CONFLICT (…) DO UPDATE`, which both dialects parse alike;
 *   - JSON is stored as text and read back whole: nothing in the modules asks the database to
 *     look inside it;
 *   - full text: the embedded driver registers the "rapport" tokenizer for FTS5 on every
 *     connection; the store's search writes its query in each dialect (a tsvector there);
 *   - the lock that lets one process own a job is a lease written in the row (see
 *     core/sched/owner.c), so a driver with `FOR UPDATE SKIP LOCKED` or advisory locks can
 *     claim faster without changing the callers; rp_db_dialect() tells them which they have.
 *   - calendar buckets: every driver provides the SQL function rapport_bucket(value, unit,
 *     zone) — the label rp_time_bucket() writes for a date-time text on the wall clock of an
 *     IANA zone ("" for UTC), or for a date, with unit one of RP_BUCKET_* (the embedded driver
 *     registers it in C; a server driver defines it in SQL over date_trunc … AT TIME ZONE);
 * A schema step that the two dialects write differently carries both texts (rp_db_step_t).
 */
#ifndef RAPPORT_DB_H
#define RAPPORT_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rapport/error.h"

typedef struct rp_db rp_db_t;
typedef struct rp_db_stmt rp_db_stmt_t;

/** What rp_db_step() and the other calls answer besides an error: */
#define RP_DB_OK 0     /**< done, nothing to read */
#define RP_DB_ROW 100  /**< a row is ready to be read with rp_db_col_*() */
#define RP_DB_DONE 101 /**< the statement ran to its end */

/** The errors a caller may want to tell apart (others are RP_DB_ERROR). */
#define RP_DB_ERROR 1
#define RP_DB_BUSY 5       /**< another writer held the database past the wait */
#define RP_DB_LOCKED 6
#define RP_DB_NOMEM 7
#define RP_DB_INTERRUPT 9  /**< stopped at the caller's budget (rp_db_set_deadline) */
#define RP_DB_FULL 13      /**< the disk is full */
#define RP_DB_TOOBIG 18
#define RP_DB_MISUSE 21
#define RP_DB_CONSTRAINT 19 /**< a NOT NULL, CHECK or foreign key refused the row */
#define RP_DB_UNIQUE 2067   /**< a unique index refused the row */
#define RP_DB_FOREIGN 787   /**< a foreign key refused the row */

/** A column's type in the row being read. */
typedef enum { RP_DB_INTEGER = 1, RP_DB_FLOAT, RP_DB_TEXT, RP_DB_BLOB, RP_DB_NULL } rp_db_type_t;

/** How rp_db_open() opens the database. */
typedef struct rp_db_opts {
    bool read_only;       /**< open without writing (rapport backup, inspection) */
    bool sync_full;       /**< every commit waits for the disk (else the WAL's normal sync) */
    bool no_migrate;      /**< do not create or migrate the registered schemas */
    int busy_timeout_ms;  /**< how long to wait for another writer (default 5000) */
} rp_db_opts_t;

/* --- the connection ----------------------------------------------------------------------- */

/**
 * Opens the database at @p path with the driver that path names: a file name (or ":memory:")
 * the embedded driver (SQLite), a URI "postgresql://…" or "postgres://…" (libpq's connection
 * URI) the server driver (core/db/pg.c). Then creates or migrates every registered schema
 * (rp_db_schema_register) unless @p opts says not to. RP_EVERSION when the file holds a module
 * schema newer than this build knows. On PostgreSQL the connection and every statement call
 * work, but no module has its schema's server text yet: RP_ESTATE unless @p opts says
 * no_migrate (or read_only).
 */
int rp_db_open(const char *path, const rp_db_opts_t *opts, rp_db_t **out, rp_error_t *err);
/** Whether @p path names a PostgreSQL database (a postgresql:// or postgres:// URI). */
bool rp_db_is_server(const char *path);
/** Closes @p db, rolling back an open transaction. NULL is ignored. */
void rp_db_close(rp_db_t *db);
/** The dialect of @p db's SQL: "sqlite" or "postgresql". */
const char *rp_db_dialect(const rp_db_t *db);
/** The driver's own last error message of @p db. */
const char *rp_db_errmsg(rp_db_t *db);
/**
 * Fills @p err from the driver's result @p rc of an operation called @p what, and returns the
 * RP_E* code: RP_ELIMIT (RP_C_BUDGET) when a read was stopped at the caller's budget, RP_ENOMEM,
 * else RP_EIO with the driver's message.
 */
int rp_db_error(rp_db_t *db, int rc, const char *what, rp_error_t *err);
/** Runs @p sql (one or more statements, no parameters, no rows wanted) once. */
int rp_db_exec(rp_db_t *db, const char *sql, rp_error_t *err);
/** Rows the last INSERT, UPDATE or DELETE changed. */
int64_t rp_db_changes(rp_db_t *db);
/** The id of the row the last INSERT made. */
int64_t rp_db_last_id(rp_db_t *db);
/** Sets the page cache to @p mb megabytes (1 to 4096). */
int rp_db_set_cache_mb(rp_db_t *db, int mb, rp_error_t *err);
/** The database's own count of schema changes (moves when any connection alters a table). */
int rp_db_schema_cookie(rp_db_t *db);
/** Whether the connection is inside a transaction the database still holds open. */
bool rp_db_in_txn(rp_db_t *db);
/** The file @p db was opened on, or NULL for a database in memory. */
const char *rp_db_path(rp_db_t *db);
/**
 * Turns the database's own folding of its write-ahead log into the file on (the default) or
 * off, for a process that folds it with rp_db_checkpoint() off its loop instead.
 */
void rp_db_auto_checkpoint(rp_db_t *db, bool on);
/**
 * Folds the write-ahead log into the file. Passive (@p restart false) copies what it can
 * without waiting for or blocking a writer and puts the log's size in pages in *@p pending;
 * restart waits (within the deadline) for readers and starts the log over.
 */
int rp_db_checkpoint(rp_db_t *db, bool restart, int *pending);

/* --- statements --------------------------------------------------------------------------- */

/**
 * A prepared statement for @p sql from the connection's cache, reset and with its parameters
 * cleared; NULL with @p err filled. It stays owned by the cache: never finalize it. Only SQL
 * written in the code (identifiers from the registry at most) is ever prepared: values are
 * always bound.
 */
rp_db_stmt_t *rp_db_stmt(rp_db_t *db, const char *sql, rp_error_t *err);
/**
 * As rp_db_stmt() for a statement kept in @p *slot (prepared on first use) for the few
 * statements every write runs. Its parameters are not cleared: the caller binds each one.
 * The slot is emptied by rp_db_flush().
 */
rp_db_stmt_t *rp_db_stmt_held(rp_db_t *db, rp_db_stmt_t **slot, const char *sql,
                              rp_error_t *err);
/** A statement of the caller's own, outside the cache; free it with rp_db_finalize(). */
rp_db_stmt_t *rp_db_prepare(rp_db_t *db, const char *sql, rp_error_t *err);
/** Frees a statement from rp_db_prepare() or a held slot's. NULL is ignored. */
void rp_db_finalize(rp_db_stmt_t *st);
/** Forgets every cached and held statement (after a schema change). */
void rp_db_flush(rp_db_t *db);

/** Binds parameter @p i (from 1). Text and blobs must outlive the statement's next reset
 *  unless bound with the _copy form. */
int rp_db_bind_int(rp_db_stmt_t *st, int i, int64_t v);
int rp_db_bind_float(rp_db_stmt_t *st, int i, double v);
int rp_db_bind_text(rp_db_stmt_t *st, int i, const char *s, int len);
int rp_db_bind_text_copy(rp_db_stmt_t *st, int i, const char *s, int len);
/** Binds text from malloc() that the statement now owns and frees (even on failure). */
int rp_db_bind_text_owned(rp_db_stmt_t *st, int i, char *s, int len);
int rp_db_bind_blob(rp_db_stmt_t *st, int i, const void *p, int len);
int rp_db_bind_null(rp_db_stmt_t *st, int i);
/** The number of the named parameter @p name (":x", "?3"), 0 if none. */
int rp_db_param_index(rp_db_stmt_t *st, const char *name);

/** Runs @p st to its next row: RP_DB_ROW, RP_DB_DONE or an error (RP_DB_* result). */
int rp_db_step(rp_db_stmt_t *st);
/** Resets @p st to run again, keeping its bindings. */
void rp_db_reset(rp_db_stmt_t *st);
/** Clears @p st's bindings to NULL. */
void rp_db_clear(rp_db_stmt_t *st);
/** Whether @p st has started and not been reset or run to its end. */
bool rp_db_busy(rp_db_stmt_t *st);
/** Whether @p st only reads. */
bool rp_db_readonly(rp_db_stmt_t *st);

/** Reads column @p c (from 0) of the current row. Text is NUL-terminated and valid until the
 *  next step or reset; NULL for SQL NULL. */
int rp_db_col_count(rp_db_stmt_t *st);
rp_db_type_t rp_db_col_type(rp_db_stmt_t *st, int c);
int64_t rp_db_col_int(rp_db_stmt_t *st, int c);
double rp_db_col_float(rp_db_stmt_t *st, int c);
const char *rp_db_col_text(rp_db_stmt_t *st, int c);
const void *rp_db_col_blob(rp_db_stmt_t *st, int c);
int rp_db_col_bytes(rp_db_stmt_t *st, int c);
const char *rp_db_col_name(rp_db_stmt_t *st, int c);

/* --- transactions --------------------------------------------------------------------------- */

/**
 * Opens a level: the outermost begins a write transaction (taking the write lock at once),
 * deeper ones are savepoints. Every level ends with rp_db_commit() or rp_db_rollback().
 */
int rp_db_begin(rp_db_t *db, rp_error_t *err);
/** Ends the innermost level, keeping its work (the outermost commits). A failed commit rolls
 *  the level back. After the database aborted the transaction by itself (disk full), each
 *  level ends with an error and nothing runs until the outermost has ended. */
int rp_db_commit(rp_db_t *db, rp_error_t *err);
/** Ends the innermost level, undoing its work. */
int rp_db_rollback(rp_db_t *db, rp_error_t *err);
/** How many levels are open. */
int rp_db_depth(const rp_db_t *db);
/**
 * Opens a read transaction: every read until rp_db_read_end() sees one snapshot and takes the
 * database's read lock once, not once per statement (a request that makes several small reads
 * pays for one). Nothing when a level is open or a snapshot already is (0). The first
 * rp_db_begin() ends it before taking the write lock, so a write never runs on an old
 * snapshot (it would fail, not wait, when another process wrote meanwhile).
 */
int rp_db_read_begin(rp_db_t *db, rp_error_t *err);
/** Ends the read transaction rp_db_read_begin() opened, if it is still open. */
void rp_db_read_end(rp_db_t *db);
/**
 * While the snapshot rp_db_read_begin() opened is still open (no write has ended it), true and
 * in *@p version a number that differs from the one of any snapshot taken before a change to
 * the file, by this connection or another process: what a cache of rows read in one snapshot
 * compares to know it is still true. False when no snapshot is open.
 */
bool rp_db_snapshot_version(rp_db_t *db, uint32_t *version);

/* --- the budget of a long read ------------------------------------------------------------ */

/** Asked between steps of a long read: nonzero stops it. */
typedef int (*rp_db_interrupt_fn)(void *ud);
/** Waits for locks end and marked reads stop at @p mono_ms (CLOCK_MONOTONIC ms; 0: none).
 *  Returns the deadline it replaces. */
int64_t rp_db_set_deadline(rp_db_t *db, int64_t mono_ms);
int64_t rp_db_deadline(const rp_db_t *db);
/** Sets the check asked between steps of a marked read (NULL: none); returns the old one. */
void rp_db_set_interrupt(rp_db_t *db, rp_db_interrupt_fn fn, void *ud, rp_db_interrupt_fn *was_fn,
                         void **was_ud);
/** Records that the caller stopped a read between rows at the budget: the next rp_db_error()
 *  of RP_DB_INTERRUPT then says so. */
void rp_db_stopped(rp_db_t *db);
/** Whether the deadline has passed or the check says stop. */
bool rp_db_over_budget(rp_db_t *db);
/**
 * Marks @p st as the read the budget may stop between two of its steps (NULL: none); returns
 * the mark it replaces. Only a read-only statement, and only while nothing else runs (no
 * write, no index flush), is ever stopped: cutting a write rolls back the whole transaction.
 */
rp_db_stmt_t *rp_db_reading(rp_db_t *db, rp_db_stmt_t *st);

/* --- schemas -------------------------------------------------------------------------------- */

/** One version of a module's schema: the SQL that takes it from the version before. */
typedef struct rp_db_step {
    int version;            /**< 1, 2, … in order, never edited once released */
    const char *sql;        /**< the embedded (sqlite) dialect */
    const char *sql_server; /**< the server dialect where it differs, or NULL */
} rp_db_step_t;

/** A module's schema: its name (unique, [a-z_]) and its ordered steps. */
typedef struct rp_db_schema {
    const char *module;
    const rp_db_step_t *steps;
    int nsteps;
    /** Which version the file had reached when one release-wide number was kept instead:
     *  legacy[v] is this module's version in a file of release-wide version v+1. */
    const int *legacy;
    int nlegacy;
} rp_db_schema_t;

/**
 * Registers @p schema (static storage) for every database opened afterwards; modules do it
 * from a constructor (RP_DB_SCHEMA) so that linking a module is what gives a file its tables.
 * Schemas migrate in the order they were registered.
 */
void rp_db_schema_register(const rp_db_schema_t *schema);
/** The version of @p module found in @p db when it was opened (0: it was new); for NULL, the
 *  release-wide number older files kept (1 to 4; 0 for a new file). */
int rp_db_schema_found(const rp_db_t *db, const char *module);
/** The version of @p module in the file now (0: absent). */
int rp_db_schema_version(rp_db_t *db, const char *module);

/** Declares @p var (an rp_db_schema_t) and registers it before main() runs. */
#define RP_DB_SCHEMA(var)                                                                       \
    static void var##_register(void) __attribute__((constructor));                              \
    static void var##_register(void) { rp_db_schema_register(&var); }

/* --- whole files ---------------------------------------------------------------------------- */
/*
 * What `rapport backup` and `rapport restore` do to a database as one file (core/db/copy.c).
 * The embedded driver works on its file through SQLite; a server driver would do the same with
 * its own tools (pg_dump or pg_basebackup, pg_amcheck, an advisory lock).
 */

/**
 * Opens the file @p path as it is, for copying or checking it: no schema is created or
 * migrated and its journal mode is left as found; another writer is waited for up to 5 s.
 * Read-only unless @p writable (which still never creates the file). RP_EIO with "PATH is not
 * a SQLite database: …" when the file cannot be opened or read as one. Owned: close *@p out
 * with rp_db_close().
 */
int rp_db_open_file(const char *path, bool writable, rp_db_t **out, rp_error_t *err);

/**
 * Copies the whole of @p src, live, into a new file at @p path (whatever was there, with its
 * journal and log files, is removed first). One read snapshot of @p src is held for the whole
 * copy, so writers in other connections go on and the copy never starts over; it proceeds in
 * steps of 1024 pages and waits up to 5 s for a step another connection locks. The copy is
 * left as one self-contained file (no write-ahead log) and is on disk when this returns; on
 * failure nothing is left at @p path. *@p pages (may be NULL) gets the number of pages copied.
 * RP_ESTATE when @p src is inside a transaction, RP_EIO otherwise.
 */
int rp_db_copy(rp_db_t *src, const char *path, int64_t *pages, rp_error_t *err);

/**
 * Checks every page and index of @p db (SQLite's integrity_check). RP_EIO with the first five
 * problems named when it finds any.
 */
int rp_db_verify(rp_db_t *db, rp_error_t *err);

/** The size of @p db: *@p pages pages of *@p page_size bytes (either may be NULL). */
int rp_db_size(rp_db_t *db, int64_t *pages, int64_t *page_size, rp_error_t *err);

/**
 * Takes the database file @p path for the caller alone, to put another file in its place: it
 * waits 200 ms at most and refuses with RP_ESTATE ("PATH is open in another connection") while
 * any other connection (a process serving it, a REPL, a command) has the file open. On success
 * *@p out holds an exclusive lock that keeps newcomers out until rp_db_close(*out); it is NULL
 * when the file is no database at all, which nobody can be using as one. The file is left in
 * rollback-journal mode (the next rp_db_open() turns its log back on).
 */
int rp_db_lock_file(const char *path, rp_db_t **out, rp_error_t *err);

/** Removes the database file @p path and the journal and log files kept beside it; the files
 *  that are not there are passed over. */
void rp_db_remove(const char *path);

/** Removes only the write-ahead log and shared-memory files beside @p path, which would
 *  otherwise be read into a new file put at that path. */
void rp_db_remove_logs(const char *path);

/** Makes @p db a scratch database this connection alone uses and nobody needs after a crash
 *  (a replay's private copy): held exclusively, never synced. */
int rp_db_scratch(rp_db_t *db, rp_error_t *err);

/** Lets the next row of @p table (a registry identifier, with an AUTOINCREMENT id) take the id
 *  after the largest one stored, rather than after the largest one ever given. */
int rp_db_restart_ids(rp_db_t *db, const char *table, rp_error_t *err);

#endif
