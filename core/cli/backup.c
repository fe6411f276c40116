/*
 * backup.c — `rapport backup FILE` and `rapport restore FILE`: a consistent copy of a live
 * database (rp_db_copy), checked, and putting such a copy back in place of a database nobody
 * uses. The whole-file work is the database room's (rapport/db.h); this file names no driver.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "rapport/db.h"

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

/* fsyncs the folder holding @p path, so that a rename into it is on disk. */
static int sync_dir(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    int fd = open(dirname(buf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* The schema version in rp_meta: 0 with @p why filled when @p db is no Rapport database. */
static int schema_of(rp_db_t *db, const char *path, char *why, size_t cap)
{
    rp_db_stmt_t *st =
        rp_db_prepare(db, "SELECT value FROM rp_meta WHERE key = 'schema_version'", NULL);
    int v = 0;
    if (!st) {
        snprintf(why, cap, "%s is not a Rapport database: %s", path, rp_db_errmsg(db));
        return 0;
    }
    if (rp_db_step(st) == RP_DB_ROW)
        v = (int)rp_db_col_int(st, 0);
    rp_db_finalize(st);
    if (v <= 0)
        snprintf(why, cap, "%s is not a Rapport database: it has no schema version", path);
    return v;
}

/* Reads the last sequence number and the number of events in @p db into @p info. */
static int events_of(rp_db_t *db, const char *path, copy_info_t *info, char *why, size_t cap)
{
    rp_db_stmt_t *st =
        rp_db_prepare(db, "SELECT coalesce(max(seq), 0), count(*) FROM rp_events", NULL);
    if (!st || rp_db_step(st) != RP_DB_ROW) {
        snprintf(why, cap, "cannot read %s: %s", path, rp_db_errmsg(db));
        rp_db_finalize(st);
        return -1;
    }
    info->last_seq = rp_db_col_int(st, 0);
    info->events = rp_db_col_int(st, 1);
    rp_db_finalize(st);
    return 0;
}

/* Checks the copy at @p path whole and reads what it holds. */
static int check_copy(const char *path, copy_info_t *info, char *why, size_t cap)
{
    rp_db_t *db = NULL;
    rp_error_t err = {0};
    int rc = rp_db_open_file(path, false, &db, &err);
    if (!rc)
        rc = rp_db_verify(db, &err);
    if (rc)
        snprintf(why, cap, "%s", err.msg);
    else if (!(info->schema = schema_of(db, path, why, cap)))
        rc = -1;
    else if (rp_db_size(db, &info->pages, &info->page_size, &err) != 0) {
        snprintf(why, cap, "%s", err.msg);
        rc = -1;
    } else
        rc = events_of(db, path, info, why, cap);
    rp_db_close(db);
    return rc;
}

/* Copies @p src into the new file @p tmp, on disk, and checks it. */
static int copy_to(rp_db_t *src, const char *tmp, copy_info_t *info, char *why, size_t cap)
{
    rp_error_t err = {0};
    if (rp_db_copy(src, tmp, &info->pages, &err) != 0) {
        snprintf(why, cap, "%s", err.msg);
        return -1;
    }
    if (check_copy(tmp, info, why, cap) != 0) {
        rp_db_remove(tmp);
        return -1;
    }
    return 0;
}

/* Opens @p path as it is (no migration), read-write or not: NULL with @p why filled. */
static rp_db_t *open_file(const char *path, bool writable, char *why, size_t cap)
{
    rp_db_t *db = NULL;
    rp_error_t err = {0};
    if (rp_db_open_file(path, writable, &db, &err) != 0)
        snprintf(why, cap, "%s", err.msg);
    return db;
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
    rp_db_t *src = open_file(c->db, true, why, sizeof why);
    if (!src)
        return fail("backup: %s", why);
    copy_info_t info = {0};
    rc = schema_of(src, c->db, why, sizeof why) ? copy_to(src, tmp, &info, why, sizeof why) : -1;
    rp_db_close(src);
    if (rc)
        return fail("backup: %s", why);
    if (rename(tmp, file) != 0 || sync_dir(file) != 0) {
        int e = errno;
        rp_db_remove(tmp);
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
 * REPL, a CLI command), and holds an exclusive lock until the copy is in place. Returns 0 with
 * *lock the connection holding the lock (NULL when the target is no database at all, which
 * nobody can be using as one), or -1 with @p why filled. */
static int lock_target(const char *path, rp_db_t **lock, char *why, size_t cap)
{
    rp_error_t err = {0};
    int rc = rp_db_lock_file(path, lock, &err);
    if (rc == RP_ESTATE)
        snprintf(why, cap, "%s is in use by another process (a running `rapport serve`, a REPL, "
                 "a command); stop it and restore again", path);
    else if (rc)
        snprintf(why, cap, "%s", err.msg);
    return rc ? -1 : 0;
}

/* Checks that @p file is a Rapport database this build can open. */
static rp_db_t *open_backup(const char *file, char *why, size_t cap)
{
    char inner[768];
    rp_db_t *db = open_file(file, false, inner, sizeof inner);
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
        rp_db_close(db);
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
    rp_db_t *src = open_backup(file, why, sizeof why);
    if (!src)
        return fail("restore: %s", why);
    if (exists && !force) {
        rp_db_close(src);
        return fail("restore: %s exists; add --force to replace it with %s", target, file);
    }
    copy_info_t info = {0};
    rc = copy_to(src, tmp, &info, why, sizeof why);
    rp_db_close(src);
    if (rc)
        return fail("restore: %s", why);
    rp_db_t *lock = NULL;
    if (exists && lock_target(target, &lock, why, sizeof why)) {
        rp_db_remove(tmp);
        return fail("restore: %s", why);
    }
    /* A log left beside the target belongs to the old database: it would be read into the new
     * one. */
    rp_db_remove_logs(target);
    rc = rename(tmp, target) != 0 || sync_dir(target) != 0 ? errno : 0;
    rp_db_close(lock); /* releases the lock, rolling back its empty transaction */
    if (rc) {
        rp_db_remove(tmp);
        return fail("restore: cannot put the copy at %s: %s", target, strerror(rc));
    }
    print_info("restored", file, target, &info);
    return 0;
}
