/*
 * bench_sched.c — time and dispatch figures, measured in the same run as their raw floor:
 *   1. N durable jobs (default 100,000) with random due times over 10 s of real time, run by
 *      rp_sched_serve(): how many fire, lateness p50/p99/max, CPU used; on a quiet machine,
 *      then again with a CPU-bound process running beside the engine.
 *   2. Events dispatched per second to a C handler that does nothing, against reading the same
 *      event rows with a raw prepared SELECT loop; then to eight such handlers at once, each
 *      subscribed with a pattern of its own; and the cost of a pass with nothing to do.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "rapport/engine.h"
#include "rapport/events.h"
#include "rapport/sched.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_sched: %s: %s\n", what, msg);
    exit(1);
}

/* The engine as every door opens it (rapport/engine.h): the store and its scheduler, here
 * with no plugins and no scripts, so the figure is the core's. */
static rp_engine_t *open_engine(const char *path)
{
    rp_engine_opts_t o = {.db = path, .create = true};
    rp_engine_t *en = NULL;
    rp_error_t err = {0};
    if (rp_engine_open(&o, &en, &err))
        die("open", err.msg);
    /* The page cache `rapport serve` takes (db.cache_mb's default). */
    if (rp_store_set_cache_mb(rp_engine_store(en), 64, &err))
        die("cache", err.msg);
    return en;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

typedef struct {
    int64_t *late;
    long n, want;
    rp_sched_t *e;
} jobs_t;

static int on_job(rp_store_t *s, const rp_job_t *job, const rp_ctx_t *ctx, void *ud,
                  rp_error_t *err)
{
    jobs_t *j = ud;
    if (j->n < j->want)
        j->late[j->n++] = wall_ms() - job->due_ms;
    if (j->n == j->want)
        rp_sched_stop(j->e);
    return 0;
}

/* With @p busy, a CPU-bound process (a child spinning) runs beside the engine all along, as
 * another program on the machine would. */
static void bench_jobs(const char *dir, long n, bool busy)
{
    char path[256];
    snprintf(path, sizeof path, "%s/jobs%s.db", dir, busy ? "-busy" : "");
    rp_engine_t *en = open_engine(path);
    rp_store_t *s = rp_engine_store(en);
    rp_error_t err = {0};
    srand(42);
    /* Schedule all jobs first, due 4–14 s from now, so the 10 s window is all firing: one
     * transaction of n jobs in random due order, each row placed by its due time (about 1 s
     * for 100,000 with serve's page cache; 3–4 s with SQLite's default 2 MB). */
    int64_t start = wall_ms() + 4000;
    double sched0 = now_s();
    if (rp_store_begin(s, &err))
        die("begin", err.msg);
    for (long i = 0; i < n; i++) {
        int64_t due = start + (int64_t)((double)rand() / RAND_MAX * 10000.0);
        if (rp_jobs_schedule(s, NULL, "tick", NULL, due, NULL, NULL, &err))
            die("schedule", err.msg);
    }
    if (rp_store_commit(s, &err))
        die("commit", err.msg);
    double sched_s = now_s() - sched0;
    jobs_t j = {.late = calloc((size_t)n, sizeof(int64_t)), .want = n};
    j.e = rp_engine_sched(en);
    rp_sched_handler(j.e, "tick", on_job, &j, "bench", &err);
    pid_t spinner = busy ? fork() : 0;
    if (spinner == 0 && busy)
        for (volatile unsigned long x = 0;; x++)
            ;
    double cpu0 = cpu_s(), t0 = now_s();
    if (rp_sched_serve(j.e, 1, NULL, NULL, &err))
        die("serve", err.msg);
    double cpu = cpu_s() - cpu0, wall = now_s() - t0;
    if (spinner > 0) {
        kill(spinner, SIGKILL);
        waitpid(spinner, NULL, 0);
    }
    /* The log must stay bounded under a steady stream of writes (restarted past 64 MB). */
    char wal[300];
    struct stat wst;
    snprintf(wal, sizeof wal, "%s-wal", path);
    double wal_mb = stat(wal, &wst) == 0 ? (double)wst.st_size / 1048576.0 : 0;
    qsort(j.late, (size_t)j.n, sizeof *j.late, cmp64);
    printf("jobs%s: %ld of %ld fired over %.1f s; lateness p50 %lld ms, p99 %lld ms, max %lld "
           "ms; CPU %.2f s (%.0f%% of one core), %.1f us a job (target <= 20; p99 < 10 ms); WAL "
           "file %.1f MB at the end; scheduled in %.2f s\n",
           busy ? ", a CPU-bound process beside" : "", j.n, n, wall, (long long)j.late[j.n / 2], (long long)j.late[(j.n * 99) / 100],
           (long long)j.late[j.n - 1], cpu, 100.0 * cpu / wall, j.n ? cpu * 1e6 / (double)j.n : 0,
           wal_mb, sched_s);
    free(j.late);
    rp_engine_close(en);
}

static long handled;
static int nothing(rp_store_t *s, const rp_event_t *ev, const rp_ctx_t *ctx, void *ud,
                   rp_error_t *err)
{
    handled++;
    return 0;
}

static void bench_dispatch(const char *dir, long n)
{
    char path[256];
    snprintf(path, sizeof path, "%s/events.db", dir);
    rp_engine_t *en = open_engine(path);
    rp_store_t *s = rp_engine_store(en);
    rp_error_t err = {0};
    /* n custom events with a small payload, like a stream of changes. */
    if (rp_store_begin(s, &err))
        die("begin", err.msg);
    json_t *p = json_pack("{s:[s,s],s:[i,i]}", "stage", "new", "won", "amount", 10, 20);
    for (long i = 0; i < n; i++)
        if (rp_events_emit(s, NULL, "deal.updated", NULL, i + 1, p, NULL, &err))
            die("emit", err.msg);
    json_decref(p);
    if (rp_store_commit(s, &err))
        die("commit", err.msg);

    /* Raw floor: the same rows through a prepared SELECT, every column read. */
    sqlite3 *db;
    sqlite3_open(path, &db);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "SELECT seq, uid, type, entity, record_id, actor, origin, at, changes,"
                           " cause, depth FROM rp_events WHERE seq > ? ORDER BY seq LIMIT 256",
                       -1, &st, NULL);
    double t0 = now_s();
    long rows = 0;
    int64_t last = 0;
    size_t bytes = 0;
    for (;;) {
        sqlite3_bind_int64(st, 1, last);
        int got = 0;
        while (sqlite3_step(st) == SQLITE_ROW) {
            last = sqlite3_column_int64(st, 0);
            for (int c = 1; c < 9; c++)
                bytes += (size_t)sqlite3_column_bytes(st, c) +
                         (sqlite3_column_text(st, c) ? 1 : 0);
            got++;
        }
        sqlite3_reset(st);
        rows += got;
        if (!got)
            break;
    }
    double raw = (double)rows / (now_s() - t0);
    sqlite3_finalize(st);
    sqlite3_close(db);

    rp_sched_t *e = rp_engine_sched(en);
    if (rp_sched_subscribe(e, "noop", NULL, false, nothing, NULL, "bench", &err))
        die("subscribe", err.msg);
    t0 = now_s();
    if (rp_sched_run_due(e, NULL, &err))
        die("run", err.msg);
    double ours = (double)handled / (now_s() - t0);
    printf("dispatch: %.0f events/s to a no-op C handler, raw SELECT loop %.0f rows/s, "
           "ratio %.2f (target >= 0.5; %ld handled, %zu bytes read raw)\n",
           ours, raw, ours / raw, handled, bytes);

    /* Eight subscribers, each with its own pattern, as an engine with plugins and scripts has:
     * they share the cached read, so a read that had to be prepared again for each pattern
     * shows here. Every event reaches each of them: eight times the raw rows. */
    static const char *const types[] = {"deal.*", "deal.updated", "*", "deal.up*",
                                        "*.updated", "d*", "deal.[u]pdated", "?eal.updated"};
    for (int i = 0; i < 8; i++) {
        char name[16];
        snprintf(name, sizeof name, "sub%d", i);
        if (rp_sched_subscribe(e, name, types[i], false, nothing, NULL, "bench", &err))
            die("subscribe", err.msg);
    }
    handled = 0;
    t0 = now_s();
    if (rp_sched_run_due(e, NULL, &err))
        die("run", err.msg);
    ours = (double)handled / (now_s() - t0);
    printf("dispatch to 8 subscribers with their own patterns: %.0f deliveries/s, ratio %.2f to "
           "the raw SELECT loop (%ld handled)\n", ours, ours / raw, handled);

    /* An idle pass: nothing new for anyone, as a server between requests and a test's virtual
     * clock meet it thousands of times. The floor asks each of the nine subscribers' questions
     * twice (the pass reads, then asks when it is next due) with a statement of its own. */
    enum { PASSES = 2000 };
    t0 = now_s();
    for (int i = 0; i < PASSES; i++) {
        if (rp_sched_run_due(e, NULL, &err))
            die("run", err.msg);
        rp_sched_next_due(e);
    }
    double pass_us = (now_s() - t0) * 1e6 / PASSES;
    sqlite3_open(path, &db);
    sqlite3_stmt *q[9];
    for (int i = 0; i < 9; i++) {
        sqlite3_prepare_v2(db, "SELECT seq, uid, type, entity, record_id, actor, origin, at,"
                               " changes, cause, depth FROM rp_events WHERE seq > ?"
                               " AND type GLOB ? ORDER BY seq LIMIT 1", -1, &q[i], NULL);
        sqlite3_bind_text(q[i], 2, i < 8 ? types[i] : "*", -1, SQLITE_STATIC);
    }
    t0 = now_s();
    for (int i = 0; i < PASSES; i++)
        for (int k = 0; k < 18; k++) {
            sqlite3_bind_int64(q[k % 9], 1, n);
            while (sqlite3_step(q[k % 9]) == SQLITE_ROW)
                ;
            sqlite3_reset(q[k % 9]);
        }
    double floor_us = (now_s() - t0) * 1e6 / PASSES;
    for (int i = 0; i < 9; i++)
        sqlite3_finalize(q[i]);
    sqlite3_close(db);
    printf("idle pass with 9 subscribers: %.1f us (nothing committed since the last: one read), "
           "raw reads of every subscriber's questions %.1f us, "
           "ratio %.2f\n", pass_us, floor_us, pass_us / floor_us);
    rp_engine_close(en);
}

int main(int argc, char **argv)
{
    long jobs = argc > 1 ? atol(argv[1]) : 100000;
    long events = argc > 2 ? atol(argv[2]) : 1000000;
    char dir[] = "/tmp/rp_bench_sched_XXXXXX";
    if (!mkdtemp(dir))
        die("mkdtemp", "failed");
    bench_dispatch(dir, events);
    bench_jobs(dir, jobs, false);
    bench_jobs(dir, jobs, true);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
