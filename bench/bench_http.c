/*
 * bench_http.c — the HTTP API under load, with wrk on loopback against one `rapport serve`,
 * 64 connections, each figure beside the raw floor measured in the same run: wrk against
 * /health (h2o, routing and JSON, no token, no store).
 *   a. GET one contact by id (random ids);
 *   b. a filtered list of 50 (contacts of one owner, newest first), also beside its storage
 *      floor: raw SQLite running the same query and reading every column, in this process;
 *   c. search: a selective word, and a two-letter prefix that matches thousands, beside what
 *      FTS5 itself takes to rank every match of that prefix, and to read the newest 256 of
 *      them with the engine's ranks;
 *   d. POST create, durable at the default (WAL, synchronous=NORMAL) and with --sync-full
 *      (fsync per commit: group commit makes it possible);
 * and the server's memory at rest and its peak under load.
 * Usage: bench_http [N] (contacts in the database, default 100,000). Needs wrk.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "rapport/db.h"

extern char **environ;

static char dir[64] = "/tmp/rp-bench-http-XXXXXX";
static char db[256];

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_http: %s: %s\n", what, msg);
    exit(1);
}

/* Runs @p argv to completion, stdout to @p out (or /dev/null); exits on failure. */
static void run(char *const argv[], const char *out)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out ? out : "/dev/null",
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc)
        die(argv[0], strerror(rc));
    int status;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench_http: %s %s failed\n", argv[0], argv[1]);
        exit(1);
    }
}

static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
}

/* A server on a free port: its pid, and *port. @p sync_full adds --sync-full. */
static pid_t serve(bool sync_full, int *port)
{
    char log[300];
    snprintf(log, sizeof log, "%s/serve.log", dir);
    unlink(log);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    char *argv[] = {RP_RAPPORT_BIN, "--db", db, "serve", "--listen", "127.0.0.1:0", NULL, NULL};
    if (sync_full) {
        argv[3] = "--sync-full";
        argv[4] = "serve";
        argv[5] = "--listen";
        argv[6] = "127.0.0.1:0";
    }
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc)
        die("serve", strerror(rc));
    for (int i = 0; i < 200; i++) {
        char buf[8192];
        slurp(log, buf, sizeof buf);
        const char *p = strstr(buf, "listening on 127.0.0.1:");
        if (p) {
            *port = atoi(p + strlen("listening on 127.0.0.1:"));
            return pid;
        }
        nanosleep(&(struct timespec){0, 50000000}, NULL);
    }
    die("serve", "did not say where it listens");
    return 0;
}

static void stop(pid_t pid)
{
    kill(pid, SIGTERM);
    int status;
    waitpid(pid, &status, 0);
}

/* The resident memory (or with @p peak, its high-water mark) of @p pid in MB. */
static double rss_mb(pid_t pid, bool peak)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    slurp(path, buf, sizeof buf);
    const char *p = strstr(buf, peak ? "VmHWM:" : "VmRSS:");
    return p ? atof(p + 6) / 1024.0 : 0;
}

typedef struct {
    double rps, p50, p99; /* requests/s; latencies in ms */
    double cpu_us;        /* the server's CPU (user + system) a request, in microseconds */
    long non2xx;
} load_t;

static pid_t server; /* the server the loads run against */

/* The CPU @p pid has used so far (user + system), in seconds. */
static double cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    slurp(path, buf, sizeof buf);
    const char *p = strrchr(buf, ')'); /* the name may hold spaces: fields after it */
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        die(path, "unreadable");
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* wrk's "12.34ms" / "850.00us" / "1.20s" in ms. */
static double ms_of(const char *p)
{
    char *end;
    double v = strtod(p, &end);
    if (strncmp(end, "us", 2) == 0)
        return v / 1000.0;
    if (strncmp(end, "ms", 2) == 0)
        return v;
    if (*end == 's')
        return v * 1000.0;
    return v;
}

/* wrk for 5 s at 64 connections on @p url with Lua @p script (may be NULL). */
static load_t load(const char *url, const char *script)
{
    char out[300], spath[300];
    snprintf(out, sizeof out, "%s/wrk.out", dir);
    char *argv[12] = {"wrk", "-t2", "-c64", "-d5s", "--latency"};
    int n = 5;
    if (script) {
        snprintf(spath, sizeof spath, "%s/%s", dir, script);
        argv[n++] = "-s";
        argv[n++] = spath;
    }
    argv[n++] = (char *)url;
    argv[n] = NULL;
    double cpu0 = cpu_s(server);
    run(argv, out);
    double cpu = cpu_s(server) - cpu0;
    char buf[16384];
    slurp(out, buf, sizeof buf);
    load_t l = {0};
    const char *p;
    if ((p = strstr(buf, "Requests/sec:")))
        l.rps = atof(p + 13);
    if ((p = strstr(buf, " 50%")))
        l.p50 = ms_of(p + 4 + strspn(p + 4, " "));
    if ((p = strstr(buf, " 99%")))
        l.p99 = ms_of(p + 4 + strspn(p + 4, " "));
    if ((p = strstr(buf, "Non-2xx or 3xx responses:")))
        l.non2xx = atol(p + 26);
    /* wrk's "  123456 requests in 5.00s, …": the count starts its line. */
    long requests = 0;
    if ((p = strstr(buf, " requests in "))) {
        while (p > buf && p[-1] != '\n')
            p--;
        requests = strtol(p, NULL, 10);
    }
    l.cpu_us = requests > 0 ? cpu * 1e6 / (double)requests : 0;
    return l;
}

/* The storage floor of the list of 50: raw SQLite running the same query over the same
 * database (51 rows, every column read as the engine reads it: its type, then its value or
 * text), in this process, for 3 s; the engine's work beyond it is the JSON text, the field
 * rules and HTTP. Queries per second. */
static double list_floor(void)
{
    sqlite3 *d = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open_v2(db, &d, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(d, "SELECT * FROM contact WHERE owner = ? AND deleted_at IS NULL "
                              "ORDER BY id DESC LIMIT 51", -1, &st, NULL) != SQLITE_OK)
        die("sqlite3", sqlite3_errmsg(d));
    long queries = 0, sink = 0;
    double t0 = now_s(), t = t0;
    while (t - t0 < 3.0) {
        char owner[8];
        snprintf(owner, sizeof owner, "u%ld", queries % 20);
        sqlite3_bind_text(st, 1, owner, -1, SQLITE_TRANSIENT);
        int nc = sqlite3_column_count(st);
        while (sqlite3_step(st) == SQLITE_ROW)
            for (int i = 0; i < nc; i++) {
                int type = sqlite3_column_type(st, i);
                if (type == SQLITE_INTEGER)
                    sink += sqlite3_column_int64(st, i);
                else if (type == SQLITE_FLOAT)
                    sink += (long)sqlite3_column_double(st, i);
                else if (type != SQLITE_NULL)
                    sink += sqlite3_column_text(st, i)[0] + sqlite3_column_bytes(st, i);
            }
        sqlite3_reset(st);
        queries++;
        if (queries % 64 == 0)
            t = now_s();
    }
    sqlite3_finalize(st);
    sqlite3_close(d);
    if (sink == 42)
        putchar(' ');
    return (double)queries / (now_s() - t0);
}

/* The floor of a search for @p match (an FTS5 expression) in this process, through the
 * engine's own connection (its tokenizer and rank function): microseconds a query for FTS5's
 * own ranking of every match (ORDER BY rank, its bm25), and for the engine's read of the
 * newest 256 matches with their ranks (rp_bm25), before its snippets. */
static void search_floor(const char *match, double *all_us, double *window_us)
{
    static const char *const sql[2] = {
        "SELECT rowid, rank FROM rp_search WHERE rp_search MATCH ?1 ORDER BY rank LIMIT 20",
        "SELECT f.rowid, rp_bm25(rp_search, d.sz) FROM rp_search f JOIN rp_search_docsize d"
        " ON d.id = f.rowid WHERE rp_search MATCH ?1 ORDER BY f.rowid DESC LIMIT 256"};
    rp_db_t *d = NULL;
    rp_db_opts_t o = {.no_migrate = true};
    rp_error_t err = {0};
    if (rp_db_open(db, &o, &d, &err))
        die("rp_db_open", err.msg);
    for (int k = 0; k < 2; k++) {
        rp_db_stmt_t *st = rp_db_prepare(d, sql[k], &err);
        if (!st)
            die("search floor", err.msg);
        int n = 0;
        double t0 = now_s();
        for (; n < 2000 && now_s() - t0 < 2.0; n++) {
            rp_db_bind_text(st, 1, match, -1);
            while (rp_db_step(st) == RP_DB_ROW)
                ;
            rp_db_reset(st);
        }
        *(k ? window_us : all_us) = (now_s() - t0) / n * 1e6;
        rp_db_finalize(st);
    }
    rp_db_close(d);
}

static void write_file(const char *name, const char *text)
{
    char path[300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        die(path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

static void report(const char *what, load_t l, double floor)
{
    printf("   %-44s %8.0f req/s (%.2f of the floor)  p50 %6.2f ms  p99 %6.2f ms  server "
           "%5.1f us CPU a request%s\n", what, l.rps, l.rps / floor, l.p50, l.p99, l.cpu_us,
           l.non2xx ? "  (some answers were not 2xx!)" : "");
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    if (n < 1000)
        n = 1000;
    if (!mkdtemp(dir))
        die("mkdtemp", strerror(errno));
    snprintf(db, sizeof db, "%s/crm.db", dir);
    char csv[300];
    snprintf(csv, sizeof csv, "%s/contacts.csv", dir);
    FILE *f = fopen(csv, "w");
    if (!f)
        die(csv, strerror(errno));
    static const char *const firsts[] = {"Ada", "Grace", "Alan", "Sara", "Reza", "Maryam",
                                         "Omid", "Leila", "Jon", "Emma"};
    /* Surnames of three syllables (8,000 of them, about N/8000 people each), so a search
     * for one is as selective as a surname in a real customer base. */
    static const char *const syl[] = {"ka", "ri", "mo", "ta", "lu", "se", "no", "vi", "ra",
                                      "de", "ko", "ma", "ti", "sa", "ne", "lo", "ba", "ze",
                                      "pu", "ha"};
    fputs("first_name,last_name,email,owner\n", f);
    uint64_t s = 7;
    for (long i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        const char *fn = firsts[(s >> 33) % 10];
        unsigned k = (unsigned)((s >> 40) % 8000);
        char ln[16];
        snprintf(ln, sizeof ln, "%s%s%s", syl[k % 20], syl[(k / 20) % 20], syl[k / 400]);
        ln[0] = (char)(ln[0] - 32);
        fprintf(f, "%s,%s,%s.%s%ld@example.com,u%ld\n", fn, ln, fn, ln, i,
                (long)((s >> 20) % 20));
    }
    fclose(f);
    char *init[] = {RP_RAPPORT_BIN, "--db", db, "init", NULL};
    run(init, NULL);
    char *imp[] = {RP_RAPPORT_BIN, "--db", db, "import", "contact", csv, "--quiet", NULL};
    run(imp, NULL);
    char *add[] = {RP_RAPPORT_BIN, "--db", db, "users", "add", "bench", "--role", "admin",
                   "--password-stdin", NULL};
    char pw[300];
    snprintf(pw, sizeof pw, "%s/pw", dir);
    write_file("pw", "a bench password\n");
    if (!freopen(pw, "r", stdin))
        die("stdin", strerror(errno));
    run(add, NULL);
    char tokf[300], tok[4096];
    snprintf(tokf, sizeof tokf, "%s/token", dir);
    char *mk[] = {RP_RAPPORT_BIN, "--db", db, "tokens", "create", "--user", "bench", NULL};
    run(mk, tokf);
    slurp(tokf, tok, sizeof tok);
    char *t = strstr(tok, "rpt_");
    if (!t)
        die("tokens create", "no token printed");
    t[strcspn(t, " \n")] = '\0';

    char lua[2048];
    snprintf(lua, sizeof lua, "wrk.headers[\"Authorization\"] = \"Bearer %s\"\n", t);
    write_file("auth.lua", lua);
    snprintf(lua, sizeof lua,
             "wrk.headers[\"Authorization\"] = \"Bearer %s\"\n"
             "request = function()\n"
             "  return wrk.format(nil, \"/api/v1/contact/\" .. math.random(1, %ld))\n"
             "end\n", t, n);
    write_file("get.lua", lua);
    snprintf(lua, sizeof lua,
             "wrk.method = \"POST\"\n"
             "wrk.headers[\"Authorization\"] = \"Bearer %s\"\n"
             "wrk.headers[\"Content-Type\"] = \"application/json\"\n"
             "local n = 0\n"
             "request = function()\n"
             "  n = n + 1\n"
             "  return wrk.format(nil, nil, nil, '{\"first_name\": \"Load\", \"last_name\": "
             "\"Test' .. n .. '\", \"email\": \"load' .. math.random(1, 1e9) .. "
             "'@example.com\"}')\n"
             "end\n", t);
    write_file("post.lua", lua);

    int port;
    pid_t pid = server = serve(false, &port);
    nanosleep(&(struct timespec){0, 300000000}, NULL);
    double rest = rss_mb(pid, false);
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    char u[400];
    snprintf(u, sizeof u, "%s/health", url);
    load_t floor = load(u, NULL);
    snprintf(u, sizeof u, "%s/api/v1/contact/1", url);
    load_t get = load(u, "get.lua");
    snprintf(u, sizeof u, "%s/api/v1/contact?owner=u7&order=-id&limit=50", url);
    load_t list = load(u, "auth.lua");
    double lfloor = list_floor();
    snprintf(u, sizeof u, "%s/api/v1/search?q=kariko", url);
    load_t search = load(u, "auth.lua");
    snprintf(u, sizeof u, "%s/api/v1/search?q=ka", url);
    load_t search2 = load(u, "auth.lua");
    double rank_all = 0, rank_window = 0;
    search_floor("\"ka\"*", &rank_all, &rank_window);
    snprintf(u, sizeof u, "%s/api/v1/contact", url);
    load_t post = load(u, "post.lua");
    double peak = rss_mb(pid, true);
    stop(pid);
    pid = server = serve(true, &port);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    snprintf(u, sizeof u, "%s/api/v1/contact", url);
    load_t post_full = load(u, "post.lua");
    stop(pid);

    printf("HTTP API over %ld contacts, wrk -t2 -c64 -d5s on loopback, one rapport serve:\n", n);
    report("floor: GET /health (no token, no store)", floor, floor.rps);
    report("a. GET one contact by id (target >= 20000)", get, floor.rps);
    report("b. GET a filtered list of 50", list, floor.rps);
    printf("      its storage floor: raw SQLite reading the same rows, %.0f q/s in this "
           "process: the list is %.2f of it\n", lfloor, list.rps / lfloor);
    report("c. search, a surname (target >= 5000)", search, floor.rps);
    report("   search, a 2-letter prefix", search2, floor.rps);
    printf("      its floor: FTS5 ranking every match of \"ka\" %.0f us a query; the newest 256 "
           "with their ranks %.0f us (raw SQL, this process)\n", rank_all, rank_window);
    report("d. POST create, WAL default (target >= 5000)", post, floor.rps);
    report("   POST create, --sync-full", post_full, floor.rps);
    printf("   memory: %.1f MB at rest, %.1f MB peak under load\n", rest, peak);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
