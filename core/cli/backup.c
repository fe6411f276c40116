/*
 * backup.c — `rapport backup FILE` and `rapport restore FILE`: a consistent copy of a live
 * database through SQLite's online backup API, checked, and putting such a copy back in place of
 * a database nobody uses. SQLite is named here until the core has a backup call of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cli.h"

/* Pages copied per backup step: 4 MB of 4 KB pages, so a step is short and can say progress. */
#define STEP_PAGES 1024

/* What a checked copy holds. */
typedef struct copy_info {
    int64_t pages, page_size, last_seq, events;
    int schema;
} copy_info_t;

/* Whether @p a and @p b name the same file (both must exist). */
static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* Removes @p path and the journal, WAL and shared-memory files SQLite may keep beside it. */
static void unlink_with_sidecars(const char *path)
{
    static const char *const ext[] = {"", "-journal", "-wal", "-shm"};
    char p[PATH_MAX + 16];
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++) {
        snprintf(p, sizeof p, "%s%s", path, ext[i]);
        unlink(p);
    }
}

/* fsyncs @p path, or the folder holding it with @p dir. */
static int sync_path(const char *path, bool dir)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    const char *target = dir ? dirname(buf) : path;
    int fd = open(target, (dir ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* The schema version in rp_meta: 0 with @p why filled when @p db is no Rapport database. */
static int schema_of(sqlite3 *db, const char *path, char *why, size_t cap)
{
    sqlite3_stmt *st = NULL;
    int v = 0;
    if (sqlite3_prepare_v2(db, "SELECT value FROM rp_meta WHERE key = 'schema_version'", -1, &st,
                           NULL) != SQLITE_OK) {
        snprintf(why, cap, "%s is not a Rapport database: %s", path, sqlite3_errmsg(db));
        return 0;
    }
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (v <= 0)
        snprintf(why, cap, "%s is not a Rapport database: it has no schema version", path);
    return v;
}

/* Opens @p path (SQLITE_OPEN_* @p flags) and reads its schema, so that a file that is not a
 * database says so here, by name. NULL with @p why filled. */
static sqlite3 *open_db(const char *path, int flags, char *why, size_t cap)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(why, cap, "%s is not a SQLite database: %s", path,
                 db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    return db;
}

/* Copies @p src into @p dst whole. The read transaction held on @p src for the whole copy
 * keeps one snapshot: in WAL mode it blocks no writer, and the copy never starts over however
 * steadily another process writes (stepping without it restarts at every foreign commit). */
static int copy_db(sqlite3 *src, sqlite3 *dst, int64_t *pages, char *why, size_t cap)
{
    if (sqlite3_exec(src, "BEGIN; SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) !=
        SQLITE_OK) {
        snprintf(why, cap, "cannot read the database: %s", sqlite3_errmsg(src));
        return -1;
    }
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    if (!b) {
        snprintf(why, cap, "cannot start the copy: %s", sqlite3_errmsg(dst));
        sqlite3_exec(src, "COMMIT", NULL, NULL, NULL);
        return -1;
    }
    int rc, waits = 0;
    while ((rc = sqlite3_backup_step(b, STEP_PAGES)) == SQLITE_OK || rc == SQLITE_BUSY ||
           rc == SQLITE_LOCKED) {
        if (rc != SQLITE_OK) {
            if (++waits > 500)
                break; /* 5 s without progress */
            struct timespec nap = {0, 10 * 1000000L};
            nanosleep(&nap, NULL);
        } else {
            waits = 0;
        }
    }
    *pages = sqlite3_backup_pagecount(b);
    sqlite3_backup_finish(b);
    sqlite3_exec(src, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_DONE) {
        snprintf(why, cap, "the copy failed: %s", sqlite3_errstr(rc));
        return -1;
    }
    return 0;
}

/* Makes @p db one self-contained file (no WAL), checks it whole and reads what it holds. */
static int check_copy(sqlite3 *db, const char *path, copy_info_t *info, char *why, size_t cap)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=DELETE", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW ||
        strcmp((const char *)sqlite3_column_text(st, 0), "delete") != 0) {
        snprintf(why, cap, "cannot make %s a single file: %s", path, sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    /* integrity_check answers "ok", or one row per problem: the first few say enough. */
    char problems[512] = "";
    bool ok = false;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check(5)", -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *row = (const char *)sqlite3_column_text(st, 0);
            ok = ok || strcmp(row, "ok") == 0;
            size_t n = strlen(problems);
            snprintf(problems + n, sizeof problems - n, "%s%s", n ? "; " : "", row);
        }
    }
    sqlite3_finalize(st);
    if (!ok) {
        snprintf(why, cap, "%s fails SQLite's integrity check: %s", path,
                 problems[0] ? problems : sqlite3_errmsg(db));
        return -1;
    }
    if (!(info->schema = schema_of(db, path, why, cap)))
        return -1;
    static const char *const sql[] = {"PRAGMA page_count", "PRAGMA page_size",
                                      "SELECT coalesce(max(seq), 0), count(*) FROM rp_events"};
    for (int i = 0; i < 3; i++) {
        if (sqlite3_prepare_v2(db, sql[i], -1, &st, NULL) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_ROW) {
            snprintf(why, cap, "cannot read %s: %s", path, sqlite3_errmsg(db));
            sqlite3_finalize(st);
            return -1;
        }
        int64_t v = sqlite3_column_int64(st, 0);
        if (i == 0)
            info->pages = v;
        else if (i == 1)
            info->page_size = v;
        else {
            info->last_seq = v;
            info->events = sqlite3_column_int64(st, 1);
        }
        sqlite3_finalize(st);
    }
    return 0;
}

/* Copies @p src_db into the new file @p tmp, checks it, and makes it durable. */
static int copy_to(sqlite3 *src_db, const char *tmp, copy_info_t *info, char *why, size_t cap)
{
    unlink_with_sidecars(tmp);
    sqlite3 *dst = open_db(tmp, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, why, cap);
    if (!dst)
        return -1;
    int rc = copy_db(src_db, dst, &info->pages, why, cap);
    if (!rc)
        rc = check_copy(dst, tmp, info, why, cap);
    if (sqlite3_close(dst) != SQLITE_OK && !rc) {
        snprintf(why, cap, "cannot close %s", tmp);
        rc = -1;
    }
    if (!rc && sync_path(tmp, false) != 0) {
        snprintf(why, cap, "cannot write %s to disk: %s", tmp, strerror(errno));
        rc = -1;
    }
    if (rc)
        unlink_with_sidecars(tmp);
    return rc;
}

static void print_info(const char *verb, const char *from, const char *to, const copy_info_t *i)
{
    printf("%s %s to %s: %lld pages of %lld bytes (%.1f MB), schema %d, %lld events (last seq "
           "%lld); integrity_check ok\n",
           verb, from, to, (long long)i->pages, (long long)i->page_size,
           (double)(i->pages * i->page_size) / 1e6, i->schema, (long long)i->events,
           (long long)i->last_seq);
}

/* Takes "--force" and checks that one operand, FILE, is left. */
static int file_operand(const char *cmd, int *argc, char **argv, bool *force)
{
    *force = false;
    flag_value(argc, argv, "--force", force);
    if (reject_unknown_flags(cmd, *argc, argv))
        return EXIT_USAGE;
    if (*argc != 2 || !argv[1][0])
        return usage_error(cmd, "%s needs one FILE", cmd);
    return 0;
}

int cmd_backup(cli_t *c, int argc, char **argv)
{
    bool force;
    int rc = file_operand("backup", &argc, argv, &force);
    if (rc)
        return rc;
    const char *file = argv[1];
    struct stat st;
    if (stat(c->db, &st) != 0)
        return fail("backup: no database at %s (name it with --db or $RAPPORT_DB)", c->db);
    if (stat(file, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return fail("backup: %s is a folder; name the backup file", file);
        if (same_file(file, c->db))
            return fail("backup: %s is the database itself", file);
        if (!force)
            return fail("backup: %s exists; add --force to replace it", file);
    }
    char why[1024], tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", file) >= (int)sizeof tmp)
        return fail("backup: the path %s is too long", file);
    sqlite3 *src = open_db(c->db, SQLITE_OPEN_READWRITE, why, sizeof why);
    if (!src)
        return fail("backup: %s", why);
    copy_info_t info = {0};
    rc = schema_of(src, c->db, why, sizeof why) ? copy_to(src, tmp, &info, why, sizeof why) : -1;
    sqlite3_close(src);
    if (rc)
        return fail("backup: %s", why);
    if (rename(tmp, file) != 0 || sync_path(file, true) != 0) {
        int e = errno;
        unlink_with_sidecars(tmp);
        return fail("backup: cannot put the copy at %s: %s", file, strerror(e));
    }
    print_info("backed up", c->db, file, &info);
    return 0;
}

bool restore_is_database(int argc, char **argv)
{
    int operands = 0;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--force") != 0)
            operands++;
    return operands == 1;
}

/* Takes the target for ourselves: refuses when any other connection has it open (a serve, a
 * REPL, a CLI command), and holds an exclusive lock until the copy is in place. Leaving WAL
 * mode needs every other connection gone: SQLite refuses with SQLITE_BUSY while one is open,
 * which is the test; rollback mode's BEGIN EXCLUSIVE then keeps newcomers out. Returns 0 with
 * *lock the connection holding the lock (NULL when the target is no database at all, which
 * nobody can be using as one), or -1 with @p why filled. */
static int lock_target(const char *path, sqlite3 **lock, char *why, size_t cap)
{
    sqlite3 *db = NULL;
    *lock = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        snprintf(why, cap, "cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, 200);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode=DELETE", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    bool left_wal = rc == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0),
                                               "delete") == 0;
    sqlite3_finalize(st);
    if (rc == SQLITE_NOTADB) {
        sqlite3_close(db);
        return 0;
    }
    if (!left_wal || sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(why, cap, "%s is in use by another process (a running `rapport serve`, a REPL, "
                 "a command); stop it and restore again", path);
        sqlite3_close(db);
        return -1;
    }
    *lock = db;
    return 0;
}

/* Checks that @p file is a Rapport database this build can open. */
static sqlite3 *open_backup(const char *file, char *why, size_t cap)
{
    char inner[768];
    sqlite3 *db = open_db(file, SQLITE_OPEN_READONLY, inner, sizeof inner);
    if (!db) {
        snprintf(why, cap, "%s is not a Rapport backup: %s", file, inner);
        return NULL;
    }
    int v = schema_of(db, file, inner, sizeof inner);
    if (v > RP_STORE_SCHEMA_VERSION)
        snprintf(why, cap, "%s has schema version %d, written by a newer Rapport; this build (%s) "
                 "understands up to version %d", file, v, RP_VERSION, RP_STORE_SCHEMA_VERSION);
    else if (!v)
        snprintf(why, cap, "%s", inner);
    if (!v || v > RP_STORE_SCHEMA_VERSION) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

int cmd_restore_database(cli_t *c, int argc, char **argv)
{
    bool force;
    int rc = file_operand("restore", &argc, argv, &force);
    if (rc)
        return rc;
    const char *file = argv[1], *target = c->db;
    struct stat st;
    if (stat(file, &st) != 0 || !S_ISREG(st.st_mode))
        return fail("restore: no backup file at %s", file);
    bool exists = stat(target, &st) == 0;
    if (exists && same_file(file, target))
        return fail("restore: %s is the database itself", file);
    char why[1024], tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.restore-tmp", target) >= (int)sizeof tmp)
        return fail("restore: the path %s is too long", target);
    sqlite3 *src = open_backup(file, why, sizeof why);
    if (!src)
        return fail("restore: %s", why);
    if (exists && !force) {
        sqlite3_close(src);
        return fail("restore: %s exists; add --force to replace it with %s", target, file);
    }
    copy_info_t info = {0};
    rc = copy_to(src, tmp, &info, why, sizeof why);
    sqlite3_close(src);
    if (rc)
        return fail("restore: %s", why);
    sqlite3 *lock = NULL;
    if (exists && lock_target(target, &lock, why, sizeof why)) {
        unlink_with_sidecars(tmp);
        return fail("restore: %s", why);
    }
    /* A WAL or shared-memory file left beside the target belongs to the old database: SQLite
     * would read it into the new one. */
    char side[PATH_MAX + 8];
    snprintf(side, sizeof side, "%s-wal", target);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", target);
    unlink(side);
    rc = rename(tmp, target) != 0 || sync_path(target, true) != 0 ? errno : 0;
    if (lock) {
        sqlite3_exec(lock, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(lock);
    }
    if (rc) {
        unlink_with_sidecars(tmp);
        return fail("restore: cannot put the copy at %s: %s", target, strerror(rc));
    }
    print_info("restored", file, target, &info);
    return 0;
}
