/*
 * copy.c — the embedded driver's operations on whole files (rapport backup and restore): open a
 * file as it is, copy a live database into a new file under one snapshot, check a file whole,
 * read its size, take a file for oneself, remove a file with the ones SQLite keeps beside it.
 * They reach SQLite through the connection db.c holds; a server driver would implement them
 * with its own tools (pg_dump or pg_basebackup, pg_amcheck, an exclusive advisory lock).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"

#define CONN(db) ((sqlite3 *)(db)->conn)

/* Pages copied per backup step: 4 MB of 4 KB pages, so a step is short and a writer waits
 * little. */
#define STEP_PAGES 1024
/* How long the copy waits without progress for a writer's lock: 500 naps of 10 ms. */
#define STEP_WAITS 500
/* How long a file's own opener waits for another writer, and the lock's shorter wait. */
#define OPEN_BUSY_MS 5000
#define LOCK_BUSY_MS 200

/* Opens @p path with SQLite's @p flags into a new connection of the embedded driver, with no
 * schema touched and the journal mode left as found. Returns SQLite's result; *@p out is set
 * whenever memory allowed, also on failure (for its message; close it with rp_db_close). */
static int open_conn(const char *path, int flags, int busy_ms, rp_db_t **out)
{
    rp_db_t *db = calloc(1, sizeof *db);
    *out = db;
    if (!db)
        return SQLITE_NOMEM;
    db->drv = &rp__db_sqlite;
    db->busy_ms = busy_ms;
    sqlite3 *c = NULL;
    int rc = sqlite3_open_v2(path, &c, flags | SQLITE_OPEN_NOMUTEX, NULL);
    db->conn = c;
    if (rc == SQLITE_OK)
        sqlite3_busy_timeout(c, busy_ms);
    return rc;
}

/* Opens @p path (SQLite @p flags) and reads its schema, so that a file that is not a database
 * says so here, by name. */
static int open_checked(const char *path, int flags, rp_db_t **out, rp_error_t *err)
{
    rp_db_t *db = NULL;
    int rc = open_conn(path, flags, OPEN_BUSY_MS, &db);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(CONN(db), "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        rp_error_set(err, rc == SQLITE_NOMEM ? RP_ENOMEM : RP_EIO, 0,
                     "%s is not a SQLite database: %s", path,
                     db && db->conn ? sqlite3_errmsg(CONN(db)) : "out of memory");
        rp_db_close(db);
        return rc == SQLITE_NOMEM ? RP_ENOMEM : RP_EIO;
    }
    *out = db;
    return 0;
}

/* The name of @p db's file for a message. */
static const char *name_of(rp_db_t *db)
{
    const char *p = rp_db_path(db);
    return p ? p : "the database in memory";
}

static int need_path(const char *path, const char *what, rp_error_t *err)
{
    if (!path || !*path)
        return rp_error_set(err, RP_EINVAL, 0, "%s needs the path of a file; none was given", what);
    return 0;
}

/* Refuses a call on no connection. */
static int need_db(rp_db_t *db, const char *what, rp_error_t *err)
{
    if (!db || !db->conn)
        return rp_error_set(err, RP_EINVAL, 0, "%s needs an open database; none was given", what);
    return 0;
}

int rp_db_open_file(const char *path, bool writable, rp_db_t **out, rp_error_t *err)
{
    *out = NULL;
    int rc = need_path(path, "rp_db_open_file", err);
    if (rc)
        return rc;
    return open_checked(path, writable ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY, out, err);
}

/* Steps the online backup from @p src into @p dst. The read transaction held on @p src for
 * the whole copy keeps one snapshot: in WAL mode it blocks no writer, and the copy never starts
 * over however steadily another process writes (stepping without it restarts at every foreign
 * commit). */
static int copy_pages(rp_db_t *src, sqlite3 *dst, int64_t *pages, rp_error_t *err)
{
    sqlite3 *s = CONN(src);
    if (!sqlite3_get_autocommit(s))
        return rp_error_set(err, RP_ESTATE, 0,
                            "cannot copy %s from inside an open "
                            "transaction: the copy holds a snapshot of its own",
                            name_of(src));
    if (sqlite3_exec(s, "BEGIN; SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) !=
        SQLITE_OK) {
        rp_error_set(err, RP_EIO, 0, "cannot read the database: %s", sqlite3_errmsg(s));
        if (!sqlite3_get_autocommit(s))
            sqlite3_exec(s, "COMMIT", NULL, NULL, NULL);
        return RP_EIO;
    }
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", s, "main");
    if (!b) {
        rp_error_set(err, RP_EIO, 0, "cannot start the copy: %s", sqlite3_errmsg(dst));
        sqlite3_exec(s, "COMMIT", NULL, NULL, NULL);
        return RP_EIO;
    }
    int rc, waits = 0;
    while ((rc = sqlite3_backup_step(b, STEP_PAGES)) == SQLITE_OK || rc == SQLITE_BUSY ||
           rc == SQLITE_LOCKED) {
        if (rc != SQLITE_OK) {
            if (++waits > STEP_WAITS)
                break;
            struct timespec nap = {0, 10 * 1000000L};
            nanosleep(&nap, NULL);
        } else {
            waits = 0;
        }
    }
    if (pages)
        *pages = sqlite3_backup_pagecount(b);
    sqlite3_backup_finish(b);
    sqlite3_exec(s, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_DONE)
        return rp_error_set(err, rc == SQLITE_NOMEM ? RP_ENOMEM : RP_EIO, 0, "the copy failed: %s",
                            sqlite3_errstr(rc));
    return 0;
}

/* Makes @p dst (the file @p path) one self-contained file, without a write-ahead log. */
static int single_file(sqlite3 *dst, const char *path, rp_error_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(dst, "PRAGMA journal_mode=DELETE", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW ||
        strcmp((const char *)sqlite3_column_text(st, 0), "delete") != 0)
        rc = rp_error_set(err, RP_EIO, 0, "cannot make %s a single file: %s", path,
                          sqlite3_errmsg(dst));
    sqlite3_finalize(st);
    return rc;
}

/* Closes the copy @p dst, reporting a close that fails (its last pages unwritten) unless an
 * error @p rc came first. */
static int close_copy(rp_db_t *dst, const char *path, int rc, rp_error_t *err)
{
    if (dst->conn && sqlite3_close(CONN(dst)) == SQLITE_OK)
        dst->conn = NULL;
    else if (dst->conn && !rc)
        rc = rp_error_set(err, RP_EIO, 0, "cannot close %s", path);
    rp_db_close(dst);
    return rc;
}

/* fsyncs the file @p path. */
static int sync_file(const char *path, rp_error_t *err)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return rp_error_set(err, RP_EIO, 0, "cannot write %s to disk: %s", path, strerror(e));
    }
    close(fd);
    return 0;
}

int rp_db_copy(rp_db_t *src, const char *path, int64_t *pages, rp_error_t *err)
{
    int rc = need_path(path, "rp_db_copy", err);
    if (rc)
        return rc;
    if ((rc = need_db(src, "rp_db_copy", err)))
        return rc;
    rp_db_remove(path);
    rp_db_t *dst = NULL;
    rc = open_checked(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &dst, err);
    if (rc)
        return rc;
    rc = copy_pages(src, CONN(dst), pages, err);
    if (!rc)
        rc = single_file(CONN(dst), path, err);
    rc = close_copy(dst, path, rc, err);
    if (!rc)
        rc = sync_file(path, err);
    if (rc)
        rp_db_remove(path);
    return rc;
}

int rp_db_verify(rp_db_t *db, rp_error_t *err)
{
    int rc = need_db(db, "rp_db_verify", err);
    if (rc)
        return rc;
    /* integrity_check answers "ok", or one row per problem: the first few say enough. */
    char problems[400] = "";
    bool ok = false;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(CONN(db), "PRAGMA integrity_check(5)", -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *row = (const char *)sqlite3_column_text(st, 0);
            ok = ok || strcmp(row, "ok") == 0;
            size_t n = strlen(problems);
            snprintf(problems + n, sizeof problems - n, "%s%s", n ? "; " : "", row);
        }
    }
    sqlite3_finalize(st);
    if (!ok)
        return rp_error_set(err, RP_EIO, 0, "%s fails SQLite's integrity check: %s", name_of(db),
                            problems[0] ? problems : sqlite3_errmsg(CONN(db)));
    return 0;
}

int rp_db_size(rp_db_t *db, int64_t *pages, int64_t *page_size, rp_error_t *err)
{
    static const char *const sql[] = {"PRAGMA page_count", "PRAGMA page_size"};
    int64_t *out[] = {pages, page_size};
    int rc = need_db(db, "rp_db_size", err);
    if (rc)
        return rc;
    for (int i = 0; i < 2; i++) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(CONN(db), sql[i], -1, &st, NULL) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_ROW) {
            rp_error_set(err, RP_EIO, 0, "cannot read %s: %s", name_of(db),
                         sqlite3_errmsg(CONN(db)));
            sqlite3_finalize(st);
            return RP_EIO;
        }
        if (out[i])
            *out[i] = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    return 0;
}

/* Leaving WAL mode needs every other connection gone: SQLite refuses with SQLITE_BUSY while
 * one is open, which is the test; rollback mode's BEGIN EXCLUSIVE then keeps newcomers out. */
int rp_db_lock_file(const char *path, rp_db_t **out, rp_error_t *err)
{
    *out = NULL;
    int rc = need_path(path, "rp_db_lock_file", err);
    if (rc)
        return rc;
    rp_db_t *db = NULL;
    if ((rc = open_conn(path, SQLITE_OPEN_READWRITE, LOCK_BUSY_MS, &db)) != SQLITE_OK) {
        rp_error_set(err, RP_EIO, 0, "cannot open %s: %s", path,
                     db && db->conn ? sqlite3_errmsg(CONN(db)) : "out of memory");
        rp_db_close(db);
        return RP_EIO;
    }
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(CONN(db), "PRAGMA journal_mode=DELETE", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    bool left_wal =
        rc == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), "delete") == 0;
    sqlite3_finalize(st);
    /* A file that is no database is nobody's database: there is nothing to lock. */
    if (rc == SQLITE_NOTADB) {
        rp_db_close(db);
        return 0;
    }
    if (!left_wal || sqlite3_exec(CONN(db), "BEGIN EXCLUSIVE", NULL, NULL, NULL) != SQLITE_OK) {
        rp_db_close(db);
        return rp_error_set(err, RP_ESTATE, 0, "%s is open in another connection", path);
    }
    *out = db;
    return 0;
}

/* Removes @p path followed by each of @p ext. */
static void remove_with(const char *path, const char *const *ext, size_t n)
{
    if (!path || !*path)
        return;
    char p[PATH_MAX + 16];
    for (size_t i = 0; i < n; i++)
        if (snprintf(p, sizeof p, "%s%s", path, ext[i]) < (int)sizeof p)
            unlink(p);
}

void rp_db_remove(const char *path)
{
    static const char *const ext[] = {"", "-journal", "-wal", "-shm"};
    remove_with(path, ext, sizeof ext / sizeof *ext);
}

void rp_db_remove_logs(const char *path)
{
    static const char *const ext[] = {"-wal", "-shm"};
    remove_with(path, ext, sizeof ext / sizeof *ext);
}

int rp_db_scratch(rp_db_t *db, rp_error_t *err)
{
    /* A throw-away copy (a replay's): no other connection to make room for, nothing to keep
     * through a crash. The file locks and syncs were a third of a replay's time. */
    return rp_db_exec(db, "PRAGMA locking_mode = EXCLUSIVE; PRAGMA synchronous = OFF", err);
}

int rp_db_restart_ids(rp_db_t *db, const char *table, rp_error_t *err)
{
    /* SQLite keeps the largest id an AUTOINCREMENT table ever gave in sqlite_sequence. */
    rp_db_stmt_t *st;
    char sql[300];
    /* @p table is a registry identifier, so it needs no escaping beyond the quotes. */
    snprintf(sql, sizeof sql,
             "UPDATE sqlite_sequence SET seq = (SELECT coalesce(max(id), 0) FROM \"%s\")"
             " WHERE name = ?1",
             table);
    if (!(st = rp_db_prepare(db, sql, err)))
        return err ? err->code : RP_EIO;
    rp_db_bind_text(st, 1, table, -1);
    int rc = rp_db_step(st);
    rp_db_finalize(st);
    return rc == RP_DB_DONE ? 0 : rp_db_error(db, rc, "cannot restart the ids", err);
}
