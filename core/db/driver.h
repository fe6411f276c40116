/*
 * driver.h — what a database driver fills in, and the connection and statement objects the
 * generic part of the room (db.c: cache, transaction levels, budget, schemas) shares with it.
 * Internal to core/db.
 */
#ifndef RAPPORT_DB_DRIVER_H
#define RAPPORT_DB_DRIVER_H

#include "rapport/db.h"

#define RP__DB_CACHE 256

/** The operations of one driver. Statement calls receive the driver's own statement (which
 *  begins with an rp_db_stmt_t); results are RP_DB_* codes. */
typedef struct rp_db_driver {
    const char *name;
    const char *begin_sql;     /* the outermost BEGIN, taking the write lock */
    const char *has_table_sql; /* one row when the table named by parameter 1 exists */
    const char *read_sql;      /* begins a read transaction that sees one snapshot */
    const char *cookie_sql;    /* one integer that moves whenever a table is changed */
    int (*open)(rp_db_t *db, const char *path, const rp_db_opts_t *o, rp_error_t *err);
    void (*close)(rp_db_t *db);
    const char *(*errmsg)(rp_db_t *db);
    int (*exec)(rp_db_t *db, const char *sql);
    int64_t (*changes)(rp_db_t *db);
    int64_t (*last_id)(rp_db_t *db);
    bool (*in_txn)(rp_db_t *db);
    /* The file's change counter as the connection last saw it (see rp_db_snapshot_version). */
    uint32_t (*data_version)(rp_db_t *db);
    const char *(*path)(rp_db_t *db);
    void (*auto_checkpoint)(rp_db_t *db, bool on);
    int (*checkpoint)(rp_db_t *db, bool restart, int *pending);
    /* Whether @p st is the only statement running (see rp_db_reading). */
    bool (*only_running)(rp_db_t *db, rp_db_stmt_t *st);
    int (*prepare)(rp_db_t *db, const char *sql, bool keep, rp_db_stmt_t **out);
    void (*finalize)(rp_db_stmt_t *st);
    int (*bind_int)(rp_db_stmt_t *st, int i, int64_t v);
    int (*bind_float)(rp_db_stmt_t *st, int i, double v);
    /* how: 0 the caller keeps the text alive, 1 copy it, 2 it is malloc()ed: free it */
    int (*bind_text)(rp_db_stmt_t *st, int i, const char *s, int len, int how);
    int (*bind_blob)(rp_db_stmt_t *st, int i, const void *p, int len);
    int (*bind_null)(rp_db_stmt_t *st, int i);
    int (*param_index)(rp_db_stmt_t *st, const char *name);
    int (*step)(rp_db_stmt_t *st);
    void (*reset)(rp_db_stmt_t *st);
    void (*clear)(rp_db_stmt_t *st);
    bool (*busy)(rp_db_stmt_t *st);
    bool (*readonly)(rp_db_stmt_t *st);
    int (*col_count)(rp_db_stmt_t *st);
    rp_db_type_t (*col_type)(rp_db_stmt_t *st, int c);
    int64_t (*col_int)(rp_db_stmt_t *st, int c);
    double (*col_float)(rp_db_stmt_t *st, int c);
    const char *(*col_text)(rp_db_stmt_t *st, int c);
    const void *(*col_blob)(rp_db_stmt_t *st, int c);
    int (*col_bytes)(rp_db_stmt_t *st, int c);
    const char *(*col_name)(rp_db_stmt_t *st, int c);
} rp_db_driver_t;

/** The head of every driver's statement. */
struct rp_db_stmt {
    const rp_db_driver_t *drv;
    rp_db_t *db;
};

/** One connection: the driver's handle and what the generic part keeps. */
struct rp_db {
    const rp_db_driver_t *drv;
    void *conn;
    int depth;
    /* The database rolled the whole transaction back by itself (disk full, I/O error) while
     * levels were open: every statement fails until the outermost level has unwound. */
    bool aborted;
    struct {
        char *sql;
        rp_db_stmt_t *st;
    } cache[RP__DB_CACHE];
    rp_db_stmt_t *sp[8], *release[8]; /* SAVEPOINT and RELEASE of the first levels, held */
    int busy_ms;             /* how long to wait for another writer */
    int64_t busy_since;      /* when the current wait began (monotonic ms) */
    int64_t deadline_ms;     /* no wait past this (monotonic ms), 0 for none */
    rp_db_interrupt_fn interrupt;
    void *interrupt_ud;
    bool interrupted;        /* the last statement was stopped by the budget */
    rp_db_stmt_t *reading;   /* the read the budget may stop, or NULL */
    bool snapshot;           /* a read transaction (rp_db_read_begin) is open, depth 0 */
    int snap_cookie;         /* the schema version the snapshot's first read found */
    struct {
        const char *module;
        int version;
    } found[32];             /* each module's version when the file was opened */
    int nfound;
    int legacy_found;        /* the release-wide schema number the file had, 0 if new */
};

/** The embedded driver. */
extern const rp_db_driver_t rp__db_sqlite;
extern const rp_db_driver_t rp__db_pg;

/** The text PostgreSQL is given for @p sql (SQLite's parameters as $N; owned), *@p nparams
 *  its parameters; NULL when a parameter is malformed. For the fuzz target. */
char *rp__pg_rewrite(const char *sql, int *nparams);

/** CLOCK_MONOTONIC in ms. */
int64_t rp__db_mono_ms(void);
/** The budget's verdict for a driver's progress callback: stop the marked read now? */
bool rp__db_progress(rp_db_t *db);
/** The wait for another writer: keep waiting (attempt @p count)? */
bool rp__db_busy_wait(rp_db_t *db, int count);
/** Creates or migrates every registered schema (db.c's schema part). */
int rp__db_migrate(rp_db_t *db, rp_error_t *err);

#endif
