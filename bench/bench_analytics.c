/*
 * bench_analytics.c — the analytical plugin's RFM against its floor in the same run: the bare
 * SQL GROUP BY that computes the same recency, frequency and monetary value per customer, run
 * by raw SQLite over the same file, beside `rapport analytics rfm --dry-run` (the grouped
 * aggregate through the store and the plugin's host call, the quintiles and the segments;
 * --dry-run: the figure is the computation, not the writing of a million contacts). Alternates
 * the two three times and prints the median of the ratios, and the plugin's peak memory.
 *
 * The data (N customers, about 10 purchases each over two years, two lines to most orders,
 * some without an order) is written by raw SQLite into the tables `rapport init` made: loading
 * is not what is measured here (bench_import measures that).
 * Usage: bench_analytics [N] (default 100,000 customers; 1000000 gives the 10M rows);
 * BENCH_KEEP=1 keeps the database for a profile.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_analytics: %s: %s\n", what, msg);
    exit(1);
}

static void exec(sqlite3 *db, const char *sql)
{
    char *e = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &e) != SQLITE_OK)
        die(sql, e);
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void fill(const char *path, long n, long *rows)
{
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        die("open", sqlite3_errmsg(db));
    exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; BEGIN");
    sqlite3_stmt *c, *p;
    sqlite3_prepare_v2(db, "INSERT INTO contact(id, created_at, updated_at, version, created_by, "
                           "updated_by, last_name) VALUES (?, '2026-01-01T00:00:00.000Z', "
                           "'2026-01-01T00:00:00.000Z', 1, 'bench', 'bench', 'Customer')",
                       -1, &c, NULL);
    if (sqlite3_prepare_v2(db, "INSERT INTO purchase(created_at, updated_at, version, created_by,"
                               " updated_by, customer, at, amount, ref) VALUES "
                               "('2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', 1, "
                               "'bench', 'bench', ?, ?, ?, ?)",
                           -1, &p, NULL) != SQLITE_OK)
        die("prepare", sqlite3_errmsg(db));
    long order = 0;
    *rows = 0;
    for (long id = 1; id <= n; id++) {
        sqlite3_bind_int64(c, 1, id);
        if (sqlite3_step(c) != SQLITE_DONE)
            die("contact", sqlite3_errmsg(db));
        sqlite3_reset(c);
        long k = 1 + (long)(next() % 19); /* 1..19 lines, 10 on average */
        long day0 = (long)(next() % 700);
        for (long j = 0; j < k; j++) {
            if (j % 2 == 0)
                order++;
            long day = day0 + (long)(next() % (730 - (unsigned long)day0));
            char at[32], ref[32];
            snprintf(at, sizeof at, "%04ld-%02ld-%02ldT12:00:00.000Z", 2024 + day / 365,
                     1 + (day % 365) / 31 % 12, 1 + (day % 365) % 28);
            snprintf(ref, sizeof ref, "o%ld", order);
            sqlite3_bind_int64(p, 1, id);
            sqlite3_bind_text(p, 2, at, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(p, 3, 100 + (long)(next() % 20000));
            if (next() % 10 == 0)
                sqlite3_bind_null(p, 4);
            else
                sqlite3_bind_text(p, 4, ref, -1, SQLITE_TRANSIENT);
            if (sqlite3_step(p) != SQLITE_DONE)
                die("purchase", sqlite3_errmsg(db));
            sqlite3_reset(p);
            (*rows)++;
        }
    }
    sqlite3_finalize(c);
    sqlite3_finalize(p);
    exec(db, "COMMIT; ANALYZE");
    sqlite3_close(db);
}

/* The floor: the same R, F and M by one GROUP BY, every row read. */
static double raw_rfm(const char *path, long *groups)
{
    sqlite3 *db;
    sqlite3_open(path, &db);
    sqlite3_stmt *st;
    double t = now_s();
    if (sqlite3_prepare_v2(db, "SELECT customer, max(at), count(*), count(ref), "
                               "count(DISTINCT ref), sum(amount) FROM purchase WHERE deleted_at "
                               "IS NULL AND at <= '2026-12-31T00:00:00.000Z' GROUP BY customer "
                               "ORDER BY customer",
                           -1, &st, NULL) != SQLITE_OK)
        die("raw", sqlite3_errmsg(db));
    long n = 0;
    double sink = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        sink += (double)sqlite3_column_int64(st, 2) + (double)sqlite3_column_int64(st, 4) +
                (double)sqlite3_column_int64(st, 5) + (double)sqlite3_column_bytes(st, 1);
        n++;
    }
    t = now_s() - t;
    sqlite3_finalize(st);
    sqlite3_close(db);
    *groups = n + (sink < 0);
    return t;
}

/* The plugin, as a user runs it; its peak memory from the kernel. */
static double engine_rfm(const char *path, long *max_rss_kb)
{
    fflush(stdout); /* or the child writes our buffer again */
    double t = now_s();
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout))
            _exit(127);
        execl(RP_RAPPORT_BIN, "rapport", "--db", path, "analytics", "rfm", "--dry-run",
              "--as-of", "2026-12-31", (char *)NULL);
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
        die("rapport analytics rfm", "failed");
    *max_rss_kb = ru.ru_maxrss;
    return now_s() - t;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    if (n <= 0)
        die("usage", "bench_analytics [customers]");
    char dir[] = "/tmp/rp_bench_an_XXXXXX";
    if (!mkdtemp(dir))
        die("mkdtemp", "failed");
    char path[64], cmd[4096];
    snprintf(path, sizeof path, "%s/crm.db", dir);
    /* init makes the file; a command that loads the plugins makes their tables. The binary's
     * path is the build folder's, of any length: a command that does not fit is an error. */
    int len = snprintf(cmd, sizeof cmd,
                       "%s --db %s init >/dev/null 2>&1 && %s --db %s plugins >/dev/null",
                       RP_RAPPORT_BIN, path, RP_RAPPORT_BIN, path);
    if (len < 0 || (size_t)len >= sizeof cmd)
        die("command too long", RP_RAPPORT_BIN);
    if (system(cmd) != 0)
        die("rapport init", cmd);
    long rows = 0;
    double t = now_s();
    fill(path, n, &rows);
    printf("data: %ld customers, %ld purchases (written raw in %.1f s)\n", n, rows, now_s() - t);
    double ratio[3], raw[3], eng[3];
    long groups = 0, rss = 0, peak = 0;
    for (int i = 0; i < 3; i++) {
        raw[i] = raw_rfm(path, &groups);
        eng[i] = engine_rfm(path, &rss);
        if (rss > peak)
            peak = rss;
        ratio[i] = eng[i] / raw[i];
        printf("  run %d: bare GROUP BY %.2f s (%ld groups), rapport analytics rfm %.2f s: "
               "ratio %.2f\n", i + 1, raw[i], groups, eng[i], ratio[i]);
    }
    qsort(ratio, 3, sizeof *ratio, cmp_d);
    printf("rfm: ratio to the bare GROUP BY (median of 3) %.2f; peak memory %.1f MB\n", ratio[1],
           (double)peak / 1024);
    if (getenv("BENCH_KEEP")) { /* to profile: perf record rapport --db … analytics rfm */
        printf("kept: %s\n", path);
        return 0;
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        die("cleanup", dir);
    return 0;
}
