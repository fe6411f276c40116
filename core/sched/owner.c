/*
 * owner.c — who holds a claimed job, and whether that one still lives: an engine that was
 * killed mid-job leaves its claims behind, and the next engine to look puts them back at once
 * instead of waiting out their lease.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rapport/db.h"
#include "rapport/store.h"
#include "private.h"

/* Reads the first line of @p path into @p out; false when it cannot. */
static bool read_line(const char *path, char *out, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, out, cap - 1);
    close(fd);
    if (n <= 0)
        return false;
    out[n] = '\0';
    out[strcspn(out, "\n")] = '\0';
    return true;
}

/* The start time of process @p pid in clock ticks after boot: 1 with *start filled, 0 when
 * there is no such process, -1 when it cannot be told (no /proc, a stat line not understood). */
static int proc_start(long pid, unsigned long long *start)
{
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ESRCH ? 0 : -1;
    ssize_t n = read(fd, line, sizeof line - 1);
    close(fd);
    if (n <= 0)
        return n == 0 ? 0 : -1;
    line[n] = '\0';
    /* "pid (comm) state ppid …": comm may hold spaces and parentheses, so count from the last
     * ')'; the start time is field 22, the 20th after it. */
    char *p = strrchr(line, ')');
    if (!p)
        return -1;
    for (int field = 2; field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (!p)
            return -1;
    }
    char *end;
    *start = strtoull(p + 1, &end, 10);
    return end == p + 1 ? -1 : 1;
}

/* This machine's scope: the boot id's first 8 hex digits and the pid namespace's inode. */
static void machine_scope(char boot[9], unsigned long long *pidns)
{
    char line[64], link[64];
    snprintf(boot, 9, "0");
    if (read_line("/proc/sys/kernel/random/boot_id", line, sizeof line) && strlen(line) >= 8)
        snprintf(boot, 9, "%.8s", line);
    *pidns = 0;
    ssize_t n = readlink("/proc/self/ns/pid", link, sizeof link - 1);
    if (n > 0) {
        link[n] = '\0';
        const char *b = strchr(link, '[');
        if (b)
            *pidns = strtoull(b + 1, NULL, 10);
    }
}

static void host_name(char *out, size_t cap)
{
    if (gethostname(out, cap) != 0 || !*out)
        snprintf(out, cap, "localhost");
    out[cap - 1] = '\0';
    /* The parts of an owner are separated by ':'. */
    for (char *p = out; *p; p++)
        if (*p == ':' || *p == ' ' || (unsigned char)*p < 0x20)
            *p = '_';
}

void rp__owner_self(char *out, size_t cap)
{
    char host[65], boot[9];
    unsigned long long start = 0, pidns;
    host_name(host, sizeof host);
    machine_scope(boot, &pidns);
    if (proc_start((long)getpid(), &start) != 1)
        start = 0;
    snprintf(out, cap, "%s:%ld:%llu:%s:%llu", host, (long)getpid(), start, boot, pidns);
}

/* Splits "<host>:<pid>:<start>:<boot>:<pidns>"; false for any other shape. */
static bool owner_parse(const char *owner, char *host, size_t cap, long *pid,
                        unsigned long long *start, char boot[9], unsigned long long *pidns)
{
    const char *c1 = strchr(owner, ':');
    if (!c1 || (size_t)(c1 - owner) >= cap || c1 == owner)
        return false;
    snprintf(host, cap, "%.*s", (int)(c1 - owner), owner);
    char b[16];
    int used = 0;
    if (sscanf(c1 + 1, "%ld:%llu:%15[0-9a-f]:%llu%n", pid, start, b, pidns, &used) != 4 ||
        c1[1 + used] != '\0' || strlen(b) > 8 || *pid <= 0)
        return false;
    memcpy(boot, b, strlen(b) + 1); /* at most 8 characters and the NUL, checked above */
    return true;
}

rp__owner_state_t rp__owner_judge(const char *owner)
{
    char host[65], boot[9], my_host[65], my_boot[9];
    long pid;
    unsigned long long start, pidns, my_pidns, now_start;
    if (!owner || !owner_parse(owner, host, sizeof host, &pid, &start, boot, &pidns))
        return RP__OWNER_UNKNOWN;
    host_name(my_host, sizeof my_host);
    machine_scope(my_boot, &my_pidns);
    /* Only a process of this very kernel and pid namespace can be looked up by its pid; any
     * other owner (another node of a shared database, a machine since rebooted, a container
     * beside us) is judged by its lease, never by a pid that means something else here. */
    if (strcmp(host, my_host) != 0 || strcmp(boot, my_boot) != 0 || !strcmp(boot, "0") ||
        pidns != my_pidns || pidns == 0 || start == 0)
        return RP__OWNER_UNKNOWN;
    switch (proc_start(pid, &now_start)) {
    case 0:
        return RP__OWNER_GONE;
    case 1:
        return now_start == start ? RP__OWNER_ALIVE : RP__OWNER_GONE; /* a recycled pid */
    default:
        return RP__OWNER_UNKNOWN;
    }
}

/* Appends "id:name" to the list in @p buf, cut with "…" when it would not fit. */
static void list_add(char *buf, size_t cap, int64_t id, const char *name)
{
    size_t n = strlen(buf);
    if (n + 4 >= cap || (n >= 3 && strcmp(buf + n - 3, "…") == 0))
        return;
    int w = snprintf(buf + n, cap - n, "%s%lld:%s", n ? "," : "", (long long)id, name);
    if (w < 0 || (size_t)w >= cap - n)
        snprintf(buf + (n < cap - 4 ? n : cap - 4), 4, "…");
}

static void tell(rp_log_fn log, void *ud, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void tell(rp_log_fn log, void *ud, const char *level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rp__sched_vsay(log, ud, level, fmt, ap);
    va_end(ap);
}

/* Puts back the running jobs of @p owner, which is gone, in one transaction; logs them. */
static int reclaim_owner(rp_store_t *s, const char *owner, int max_attempts, rp_log_fn log,
                         void *ud, rp_error_t *err)
{
    char back[400] = "", dead[400] = "", dropped[200] = "";
    int n = 0, rc = rp_store_begin(s, err);
    if (rc)
        return rc;
    /* A job scheduled again under the same key while this one ran supersedes it (as when a run
     * fails): putting this one back would break the one-pending-job-per-key rule. */
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "DELETE FROM rp_jobs WHERE state = 'running' AND owner = ?1"
                                   " AND key IN (SELECT key FROM rp_jobs WHERE state = 'pending'"
                                   " AND key IS NOT NULL) RETURNING id, name", err);
    if (!st)
        goto fail;
    rp_db_bind_text(st, 1, owner, -1);
    while ((rc = rp_db_step(st)) == RP_DB_ROW) {
        list_add(dropped, sizeof dropped, rp_db_col_int(st, 0),
                 rp_db_col_text(st, 1));
        n++;
    }
    rp_db_reset(st);
    if (rc != RP_DB_DONE) {
        rp_db_error(rp_store_db(s), rc, "cannot drop the superseded jobs of a stopped engine", err);
        goto fail;
    }
    st = rp_db_stmt(rp_store_db(s), "UPDATE rp_jobs SET state = CASE WHEN attempts >= ?2 THEN 'dead'"
                     " ELSE 'pending' END, owner = NULL, lease_until = NULL,"
                     " error = 'its engine ' || ?1 || ' stopped while running it (attempt '"
                     " || attempts || ')' WHERE state = 'running' AND owner = ?1"
                     " RETURNING id, name, state", err);
    if (!st)
        goto fail;
    rp_db_bind_text(st, 1, owner, -1);
    rp_db_bind_int(st, 2, max_attempts);
    while ((rc = rp_db_step(st)) == RP_DB_ROW) {
        bool is_dead = strcmp(rp_db_col_text(st, 2), "dead") == 0;
        list_add(is_dead ? dead : back, is_dead ? sizeof dead : sizeof back,
                 rp_db_col_int(st, 0), rp_db_col_text(st, 1));
        n++;
    }
    rp_db_reset(st);
    if (rc != RP_DB_DONE) {
        rp_db_error(rp_store_db(s), rc, "cannot put back the jobs of a stopped engine", err);
        goto fail;
    }
    if ((rc = rp_store_commit(s, err)))
        return rc;
    if (back[0] || dropped[0])
        tell(log, ud, "warn", "reclaimed the jobs of a stopped engine owner=%s jobs=%s%s%s",
             owner, back[0] ? back : "-", dropped[0] ? " superseded=" : "", dropped);
    if (dead[0])
        tell(log, ud, "error", "job dead: its engine stopped while running it on its last "
             "attempt owner=%s jobs=%s", owner, dead);
    return n;
fail:
    rp_store_rollback(s, NULL);
    return err ? err->code : RP_EIO;
}

int rp__jobs_reclaim(rp_store_t *s, const char *self, int max_attempts, rp_log_fn log,
                     void *log_ud, rp_error_t *err)
{
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "SELECT DISTINCT owner FROM rp_jobs WHERE state = 'running'"
                                   " AND owner IS NOT NULL AND owner <> ?1", err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_text(st, 1, self, -1);
    /* Judged after the read: the writes below must not run under an open statement. */
    json_t *gone = json_array();
    int rc;
    while ((rc = rp_db_step(st)) == RP_DB_ROW) {
        const char *owner = rp_db_col_text(st, 0);
        if (rp__owner_judge(owner) == RP__OWNER_GONE)
            json_array_append_new(gone, json_string(owner));
    }
    rp_db_reset(st);
    if (rc != RP_DB_DONE) {
        json_decref(gone);
        return rp_db_error(rp_store_db(s), rc, "cannot read the owners of running jobs", err);
    }
    int total = 0;
    size_t i;
    json_t *o;
    json_array_foreach(gone, i, o) {
        int n = reclaim_owner(s, json_string_value(o), max_attempts, log, log_ud, err);
        if (n < 0) {
            total = n;
            break;
        }
        total += n;
    }
    json_decref(gone);
    return total;
}
