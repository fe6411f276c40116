/*
 * bench_timeline.c — the collaborative plugin's timeline over HTTP: one page of 50 for a
 * customer with 10,000 interactions among N (default 1,000,000), the first page and a deep one
 * (5,000 items down, reached by following the cursor), each GET timed 200 times one after the
 * other on one keep-alive connection to one `rapport serve`. Beside them, two floors measured in
 * the same run: GET /health on the same server (h2o, routing, JSON; no token, no store), and
 * the same page read by raw SQLite from the same file (the interaction_link key range, then the
 * interactions by id, every column read). Prints p50 and p99 in ms and the ratios (issue target:
 * p99 under 10 ms).
 *
 * The data is written by raw SQLite into the tables `rapport init` and the plugins made, as
 * interactions.c writes them: an interaction, and a link to its contact and one to the contact's
 * account, each link's key "target|at|%012d id". Not written: the event log of those records and
 * the search index (the timeline reads neither for interactions).
 * Usage: bench_timeline [N] (interactions in all; the customer has min(10,000, N/10) of them);
 * BENCH_KEEP=1 keeps the database for a profile.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

extern char **environ;

enum { REPS = 200, WARMUP = 20, PAGE = 50, DEEP = 5000, CUSTOMER = 1 };

static char dir[64] = "/tmp/rp-bench-timeline-XXXXXX";
static char db[256];

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_timeline: %s: %s\n", what, msg);
    exit(1);
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* ---- the binary, as a user runs it ----------------------------------------------------------- */

static void slurp(const char *path, char *buf, size_t cap);

/* Runs @p argv to completion, stdin from @p in and stdout to @p out (NULL: /dev/null); what it
 * says on stderr is shown only when it fails. */
static void run(char *const argv[], const char *in, const char *out)
{
    char log[300];
    snprintf(log, sizeof log, "%s/run.log", dir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, in ? in : "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out ? out : "/dev/null",
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc)
        die(argv[0], strerror(rc));
    int status;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char said[4096];
        slurp(log, said, sizeof said);
        fprintf(stderr, "bench_timeline: rapport %s %s failed: %s\n", argv[3],
                argv[4] ? argv[4] : "", said);
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

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        die(path, strerror(errno));
}

/* An admin's API token (users add, tokens create) into @p tok. */
static void make_token(char *tok, size_t cap)
{
    char pw[300], out[300], buf[4096];
    snprintf(pw, sizeof pw, "%s/pw", dir);
    snprintf(out, sizeof out, "%s/token", dir);
    write_file(pw, "a bench password\n");
    char *add[] = {RP_RAPPORT_BIN, "--db", db, "users", "add", "bench", "--role", "admin",
                   "--password-stdin", NULL};
    run(add, pw, NULL);
    char *mk[] = {RP_RAPPORT_BIN, "--db", db, "tokens", "create", "--user", "bench", NULL};
    run(mk, NULL, out);
    slurp(out, buf, sizeof buf);
    char *t = strstr(buf, "rpt_");
    if (!t)
        die("tokens create", "no token printed");
    t[strcspn(t, " \n")] = '\0';
    snprintf(tok, cap, "%s", t);
}

/* A server on a free port: its pid, and *port. */
static pid_t serve(int *port)
{
    char log[300];
    snprintf(log, sizeof log, "%s/serve.log", dir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    char *argv[] = {RP_RAPPORT_BIN, "--db", db, "serve", "--listen", "127.0.0.1:0", NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc)
        die("serve", strerror(rc));
    for (int i = 0; i < 400; i++) {
        char buf[16384];
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

/* ---- the data, written raw ------------------------------------------------------------------- */

static void exec(sqlite3 *d, const char *sql)
{
    char *e = NULL;
    if (sqlite3_exec(d, sql, NULL, NULL, &e) != SQLITE_OK)
        die(sql, e);
}

static sqlite3_stmt *prepare(sqlite3 *d, const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(d, sql, -1, &st, NULL) != SQLITE_OK)
        die(sql, sqlite3_errmsg(d));
    return st;
}

static void step_done(sqlite3 *d, sqlite3_stmt *st, const char *what)
{
    if (sqlite3_step(st) != SQLITE_DONE)
        die(what, sqlite3_errmsg(d));
    sqlite3_reset(st);
}

/* The store's UTC text of @p ms: "2026-03-01T09:15:02.417Z". */
static void time_text(int64_t ms, char *out, size_t cap)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char day[32];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%s.%03dZ", day, (int)(ms % 1000));
}

static void link_row(sqlite3 *d, sqlite3_stmt *st, int64_t id, const char *entity, long rid,
                     const char *at)
{
    char target[64], key[128];
    snprintf(target, sizeof target, "%s:%ld", entity, rid);
    snprintf(key, sizeof key, "%s|%s|%012lld", target, at, (long long)id);
    sqlite3_bind_text(st, 1, at, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, id);
    sqlite3_bind_text(st, 3, target, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, key, -1, SQLITE_TRANSIENT);
    step_done(d, st, "interaction_link");
}

/* N interactions over two years, every (N / @p mine)-th the customer's (contact 1); the rest
 * the other contacts', about ten each. A contact belongs to one account of twenty people. */
static void fill(long n, long mine, long *contacts)
{
    sqlite3 *d;
    if (sqlite3_open(db, &d) != SQLITE_OK)
        die("open", sqlite3_errmsg(d));
    /* A cache that holds the indexes being filled: the link keys arrive in no order. */
    exec(d, "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; PRAGMA cache_size=-262144; BEGIN");
    long nc = 1 + (n - mine) / 10, na = nc / 20 + 1;
    sqlite3_stmt *a = prepare(d, "INSERT INTO account(id, created_at, updated_at, version, "
                                 "created_by, updated_by, name) VALUES (?, "
                                 "'2024-01-01T00:00:00.000Z', '2024-01-01T00:00:00.000Z', 1, "
                                 "'bench', 'bench', ?)");
    for (long i = 1; i <= na; i++) {
        char name[32];
        snprintf(name, sizeof name, "Account %ld", i);
        sqlite3_bind_int64(a, 1, i);
        sqlite3_bind_text(a, 2, name, -1, SQLITE_TRANSIENT);
        step_done(d, a, "account");
    }
    sqlite3_finalize(a);
    sqlite3_stmt *c = prepare(d, "INSERT INTO contact(id, created_at, updated_at, version, "
                                 "created_by, updated_by, last_name, email, account, "
                                 "do_not_contact, email_opt_out, email_bouncing, sms_opt_out) "
                                 "VALUES (?, '2024-01-01T00:00:00.000Z', "
                                 "'2024-01-01T00:00:00.000Z', 1, 'bench', 'bench', ?, ?, ?, 0, "
                                 "0, 0, 0)");
    for (long i = 1; i <= nc; i++) {
        char name[32], email[64];
        snprintf(name, sizeof name, "Customer%ld", i);
        snprintf(email, sizeof email, "customer%ld@example.org", i);
        sqlite3_bind_int64(c, 1, i);
        sqlite3_bind_text(c, 2, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(c, 3, email, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(c, 4, 1 + i % na);
        step_done(d, c, "contact");
    }
    sqlite3_finalize(c);
    sqlite3_stmt *it = prepare(
        d, "INSERT INTO interaction(id, created_at, updated_at, version, created_by, updated_by, "
           "at, attempts, body, channel, contact, direction, from_addr, to_addr, purpose, "
           "status, subject, visibility) VALUES (?1, ?2, ?2, 1, 'plugin:collaborative', "
           "'plugin:collaborative', ?2, 0, ?3, ?4, ?5, ?6, ?7, ?8, 'service', ?9, ?10, "
           "'public')");
    sqlite3_stmt *lk = prepare(
        d, "INSERT INTO interaction_link(created_at, updated_at, version, created_by, "
           "updated_by, interaction, target, key) VALUES (?1, ?1, 1, 'plugin:collaborative', "
           "'plugin:collaborative', ?2, ?3, ?4)");
    static const char *const channels[] = {"email", "email", "phone", "note", "sms"};
    static const char *const dirs[] = {"out", "in", "out", "internal", "in"};
    static const char *const status[] = {"sent", "received", "logged", "logged", "received"};
    const int64_t t0 = 1704067200000; /* 2024-01-01 */
    const int64_t span = 730LL * 86400000;
    long every = n / mine;
    for (long i = 1; i <= n; i++) {
        long who = (i % every == 0 && i / every <= mine) ? CUSTOMER
                                                         : 2 + (long)(next() % (uint64_t)(nc - 1));
        int k = (int)(next() % 5);
        char at[40], subject[80], body[400], addr[64];
        /* Roughly in id order, as stored history is; neighbours may swap. */
        time_text(t0 + span / n * i + (int64_t)(next() % 60000), at, sizeof at);
        snprintf(subject, sizeof subject, "Order %ld: a question about the delivery", i);
        snprintf(body, sizeof body, "Hello, this is about order %ld. The parcel was due on "
                 "Tuesday and has not arrived; the tracking page says it left the warehouse "
                 "three days ago. Could you look into it and tell me when to expect it? "
                 "Thank you, customer %ld.", i, who);
        snprintf(addr, sizeof addr, "customer%ld@example.org", who);
        sqlite3_bind_int64(it, 1, i);
        sqlite3_bind_text(it, 2, at, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(it, 3, body, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(it, 4, channels[k], -1, SQLITE_STATIC);
        sqlite3_bind_int64(it, 5, who);
        sqlite3_bind_text(it, 6, dirs[k], -1, SQLITE_STATIC);
        sqlite3_bind_text(it, 7, k == 1 ? addr : "support@example.com", -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(it, 8, k == 0 ? addr : "support@example.com", -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(it, 9, status[k], -1, SQLITE_STATIC);
        if (k == 3)
            sqlite3_bind_null(it, 10);
        else
            sqlite3_bind_text(it, 10, subject, -1, SQLITE_TRANSIENT);
        step_done(d, it, "interaction");
        link_row(d, lk, i, "contact", who, at);
        link_row(d, lk, i, "account", 1 + who % na, at);
    }
    sqlite3_finalize(it);
    sqlite3_finalize(lk);
    /* No ANALYZE: the engine never runs it, so its databases have no statistics; with them
     * (sqlite_stat4) the scheduler's event reads were prepared again on every pass. */
    exec(d, "COMMIT");
    sqlite3_close(d);
    *contacts = nc;
}

/* ---- the floor: the same page by raw SQLite ------------------------------------------------- */

typedef struct raw {
    sqlite3 *d;
    sqlite3_stmt *links, *rows;
} raw_t;

static void raw_open(raw_t *r)
{
    if (sqlite3_open_v2(db, &r->d, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        die("open", sqlite3_errmsg(r->d));
    r->links = prepare(r->d, "SELECT interaction FROM interaction_link WHERE deleted_at IS NULL "
                             "AND key >= ?1 AND key < ?2 ORDER BY key DESC LIMIT ?3");
    char sql[1024] = "SELECT * FROM interaction WHERE deleted_at IS NULL AND id IN (?";
    for (int i = 1; i < PAGE + 1; i++)
        strcat(sql, ",?");
    strcat(sql, ")");
    r->rows = prepare(r->d, sql);
}

/* Every column is read, as the store reads a row; the sum keeps the reads. */
static volatile size_t raw_sink;

/* One page: the links of the range [lo, hi), newest first, then their interactions. */
static double raw_page(raw_t *r, const char *lo, const char *hi, int *got)
{
    double t = now_ms();
    sqlite3_bind_text(r->links, 1, lo, -1, SQLITE_STATIC);
    sqlite3_bind_text(r->links, 2, hi, -1, SQLITE_STATIC);
    sqlite3_bind_int(r->links, 3, PAGE + 1);
    int n = 0;
    while (sqlite3_step(r->links) == SQLITE_ROW)
        sqlite3_bind_int64(r->rows, ++n, sqlite3_column_int64(r->links, 0));
    sqlite3_reset(r->links);
    for (int i = n + 1; i <= PAGE + 1; i++)
        sqlite3_bind_null(r->rows, i);
    *got = 0;
    while (sqlite3_step(r->rows) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(r->rows); c++)
            raw_sink += (size_t)sqlite3_column_bytes(r->rows, c);
        (*got)++;
    }
    sqlite3_reset(r->rows);
    return now_ms() - t;
}

/* ---- a keep-alive HTTP/1.1 client ------------------------------------------------------------ */

typedef struct conn {
    int fd;
    char in[1 << 20]; /* what was read and not yet used */
    size_t len;
} conn_t;

static void conn_open(conn_t *c, int port)
{
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0)
        die("connect", strerror(errno));
    c->len = 0;
}

/* Reads until @p want bytes are buffered. */
static void need(conn_t *c, size_t want)
{
    while (c->len < want) {
        if (want > sizeof c->in)
            die("http", "an answer larger than 1 MB");
        ssize_t n = read(c->fd, c->in + c->len, sizeof c->in - c->len);
        if (n <= 0)
            die("http", n ? strerror(errno) : "the server closed the connection");
        c->len += (size_t)n;
    }
}

/* The offset just past the first "\r\n" at or after @p from, reading as needed. */
static size_t line_end(conn_t *c, size_t from)
{
    for (;;) {
        char *p = c->len > from ? memmem(c->in + from, c->len - from, "\r\n", 2) : NULL;
        if (p)
            return (size_t)(p - c->in) + 2;
        need(c, c->len + 1);
    }
}

/* GET @p path; the status, and the body (NUL-ended, cut to @p cap) into @p body. */
static int get(conn_t *c, const char *path, const char *token, char *body, size_t cap)
{
    char req[1024];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%s\r\n", path,
                     token ? "Authorization: Bearer " : "", token ? token : "",
                     token ? "\r\n" : "");
    if (write(c->fd, req, (size_t)n) != n)
        die("http write", strerror(errno));
    size_t at = 0, end;
    long clen = -1;
    int chunked = 0, status = 0;
    /* The head: the status line, then headers to an empty line. */
    while ((end = line_end(c, at)) != at + 2) {
        if (at == 0)
            status = atoi(c->in + 9);
        else if (strncasecmp(c->in + at, "content-length:", 15) == 0)
            clen = atol(c->in + at + 15);
        else if (strncasecmp(c->in + at, "transfer-encoding:", 18) == 0 &&
                 memmem(c->in + at, end - at, "chunked", 7))
            chunked = 1;
        at = end;
    }
    at = end;
    size_t out = 0;
    if (!chunked) {
        if (clen < 0)
            die("http", "an answer without a length");
        need(c, at + (size_t)clen);
        out = (size_t)clen < cap - 1 ? (size_t)clen : cap - 1;
        memcpy(body, c->in + at, out);
        at += (size_t)clen;
    } else {
        for (;;) {
            end = line_end(c, at);
            size_t size = strtoul(c->in + at, NULL, 16);
            at = end;
            need(c, at + size + 2);
            size_t take = size < cap - 1 - out ? size : cap - 1 - out;
            memcpy(body + out, c->in + at, take);
            out += take;
            at += size + 2;
            if (size == 0)
                break;
        }
    }
    body[out] = '\0';
    memmove(c->in, c->in + at, c->len - at);
    c->len -= at;
    return status;
}

/* ---- figures --------------------------------------------------------------------------------- */

typedef struct stats {
    double p50, p99;
} stats_t;

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static stats_t stats_of(double *ms, int n)
{
    qsort(ms, (size_t)n, sizeof *ms, cmp_d);
    return (stats_t){ms[n / 2], ms[n * 99 / 100]};
}

static char body[1 << 20];

/* @p path timed REPS times (after WARMUP untimed); every answer must be 200. */
static stats_t time_get(conn_t *c, const char *path, const char *token)
{
    double ms[REPS];
    for (int i = 0; i < WARMUP + REPS; i++) {
        double t = now_ms();
        int st = get(c, path, token, body, sizeof body);
        t = now_ms() - t;
        if (st != 200)
            die(path, body);
        if (i >= WARMUP)
            ms[i - WARMUP] = t;
    }
    return stats_of(ms, REPS);
}

static stats_t time_raw(raw_t *r, const char *lo, const char *hi)
{
    double ms[REPS];
    int got = 0;
    for (int i = 0; i < WARMUP + REPS; i++) {
        double t = raw_page(r, lo, hi, &got);
        if (i >= WARMUP)
            ms[i - WARMUP] = t;
    }
    if (got < PAGE)
        die("raw page", "fewer rows than a page");
    return stats_of(ms, REPS);
}

/* How many times @p needle is in @p hay. */
static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* The "next" cursor of a timeline page into @p out, '|' escaped for a query. */
static void next_cursor(const char *page, char *out, size_t cap, char *raw, size_t rcap)
{
    const char *p = strstr(page, "\"next\":\"");
    if (!p)
        die("timeline", "a page without a next cursor");
    p += 8;
    size_t n = strcspn(p, "\"");
    snprintf(raw, rcap, "%.*s", (int)n, p);
    size_t o = 0;
    for (size_t i = 0; i < n && o + 4 < cap; i++) {
        if (p[i] == '|')
            o += (size_t)snprintf(out + o, cap - o, "%%7C");
        else
            out[o++] = p[i];
    }
    out[o] = '\0';
}

static void report(const char *what, stats_t s, stats_t floor, const char *floor_name)
{
    printf("   %-40s p50 %6.2f ms  p99 %6.2f ms   (p50 %5.1f x %s)\n", what, s.p50, s.p99,
           s.p50 / floor.p50, floor_name);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    if (n < 1000)
        die("usage", "bench_timeline [interactions >= 1000]");
    long mine = n / 10 < 10000 ? n / 10 : 10000;
    if (!mkdtemp(dir))
        die("mkdtemp", strerror(errno));
    snprintf(db, sizeof db, "%s/crm.db", dir);
    /* init makes the file; a command that loads the plugins makes their tables. */
    char *init[] = {RP_RAPPORT_BIN, "--db", db, "init", NULL};
    run(init, NULL, NULL);
    char *plugins[] = {RP_RAPPORT_BIN, "--db", db, "plugins", NULL};
    run(plugins, NULL, NULL);
    char token[256];
    make_token(token, sizeof token);
    long contacts = 0;
    double t = now_ms();
    fill(n, mine, &contacts);
    printf("data: %ld interactions (%ld links) for %ld contacts; the customer has %ld "
           "(written raw in %.1f s)\n", n, 2 * n, contacts, mine, (now_ms() - t) / 1e3);

    int port;
    pid_t pid = serve(&port);
    conn_t *c = malloc(sizeof *c);
    if (!c)
        die("malloc", "out of memory");
    conn_open(c, port);
    char first[128], path[512], cur[256], raw_cur[256];
    snprintf(first, sizeof first, "/api/v1/contact/%d/timeline?limit=%d", CUSTOMER, PAGE);
    if (get(c, first, token, body, sizeof body) != 200)
        die(first, body);
    if (count(body, "\"kind\":\"interaction\"") != PAGE)
        die(first, "the first page does not hold 50 interactions");
    /* Down the cursor to the deep page, as a client scrolling would. */
    snprintf(path, sizeof path, "%s", first);
    int depth = (int)(mine / 2 < DEEP ? mine / 2 : DEEP);
    for (int seen = 0; seen < depth; seen += PAGE) {
        if (get(c, path, token, body, sizeof body) != 200)
            die(path, body);
        next_cursor(body, cur, sizeof cur, raw_cur, sizeof raw_cur);
        snprintf(path, sizeof path, "%s&before=%s", first, cur);
    }
    char deep[512];
    snprintf(deep, sizeof deep, "%s", path);

    stats_t health = time_get(c, "/health", NULL);
    stats_t top = time_get(c, first, token);
    stats_t low = time_get(c, deep, token);
    if (count(body, "\"kind\":\"interaction\"") != PAGE)
        die(deep, "the deep page does not hold 50 interactions");
    close(c->fd);
    free(c);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);

    /* The same two pages by raw SQLite: the cursor "at|0|id" bounds the deep range. */
    raw_t r;
    raw_open(&r);
    char lo[64], hi_top[64], hi_deep[160], at[64];
    snprintf(lo, sizeof lo, "contact:%d|", CUSTOMER);
    snprintf(hi_top, sizeof hi_top, "contact:%d|~", CUSTOMER);
    snprintf(at, sizeof at, "%.*s", (int)strcspn(raw_cur, "|"), raw_cur);
    const char *idp = strrchr(raw_cur, '|');
    snprintf(hi_deep, sizeof hi_deep, "contact:%d|%s|%012lld", CUSTOMER, at,
             idp ? atoll(idp + 1) : 0LL);
    stats_t rtop = time_raw(&r, lo, hi_top);
    stats_t rlow = time_raw(&r, lo, hi_deep);
    sqlite3_finalize(r.links);
    sqlite3_finalize(r.rows);
    sqlite3_close(r.d);

    printf("timeline of a customer with %ld interactions among %ld, page of %d, %d GETs each "
           "on one keep-alive connection:\n", mine, n, PAGE, REPS);
    report("floor: GET /health", health, health, "/health");
    report("floor: raw SQLite, first page", rtop, rtop, "raw");
    report("floor: raw SQLite, deep page", rlow, rlow, "raw");
    report("GET timeline, first page", top, health, "/health");
    printf("   %-40s p50 %5.1f x raw SQLite\n", "", top.p50 / rtop.p50);
    char what[64];
    snprintf(what, sizeof what, "GET timeline, %d items down", depth);
    report(what, low, health, "/health");
    printf("   %-40s p50 %5.1f x raw SQLite\n", "", low.p50 / rlow.p50);
    printf("timeline p99: first page %.2f ms, deep page %.2f ms (target < 10 ms): %s\n",
           top.p99, low.p99, top.p99 < 10 && low.p99 < 10 ? "met" : "MISSED");
    if (getenv("BENCH_KEEP")) {
        printf("kept: %s (token %s)\n", db, token);
        return 0;
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
