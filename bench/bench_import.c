/*
 * bench_import.c — the operational figures, each against its raw floor in the same run:
 *   a. `rapport import contact FILE.csv` of N generated contacts with the built-in plugin and
 *      the default rules on (hooks, events, search index), vs. its identical-storage floor: a
 *      database the engine prepared (the same tables, indexes and search index), filled by
 *      plain SQLite in one transaction: the file parsed with the same CSV library into a
 *      temporary table, then `INSERT … SELECT` into the contacts, one event a record with its
 *      changes, and the search text through the engine's own tokenizer. Also, for the record,
 *      the sqlite3 shell's `.import` of the file into a bare table. The time ratios, and the
 *      import's peak memory;
 *   b. `rapport duplicates contact` over those N contacts: seconds and peak memory.
 * Usage: bench_import [N] (default 1,000,000). Runs the real binaries as a user would.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <csv.h>
#include <sqlite3.h>

#include "fts.h" /* the floor registers the engine's tokenizer on its raw connection */

extern char **environ;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_import: %s: %s\n", what, msg);
    exit(1);
}

/* Runs @p argv with stdout to @p out (or /dev/null); returns seconds, *maxrss_kb its peak. */
static double run(char *const argv[], const char *out, long *maxrss_kb)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out ? out : "/dev/null",
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    double t0 = now_s();
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc)
        die(argv[0], strerror(rc));
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0)
        die("wait4", strerror(errno));
    double secs = now_s() - t0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench_import: %s %s exited with %d\n", argv[0], argv[1],
                WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        exit(1);
    }
    if (maxrss_kb)
        *maxrss_kb = ru.ru_maxrss;
    return secs;
}

static const char *const firsts[] = {"Ada", "Grace", "Alan", "Sara", "Reza", "Maryam", "Omid",
                                     "Leila", "Jon", "Emma", "Noah", "Olivia", "Zoë", "Mateo",
                                     "Sofía", "Yuki", "Amara", "Kwame", "Ingrid", "Priya"};
static const char *const lasts[] = {"Lovelace", "Hopper", "Turing", "Rahimi", "Karimi", "Smith",
                                    "García", "Müller", "Rossi", "Nakamura", "Okafor", "Patel",
                                    "Haddad", "Novak", "Dubois", "Nguyen", "Silva", "O'Neil"};

/* N contacts, the kind a CRM export holds; about 1 in 200 shares an email with an earlier one
 * (the duplicates a scan should find). */
static void write_csv(const char *path, long n)
{
    FILE *f = fopen(path, "w");
    if (!f)
        die(path, strerror(errno));
    fputs("first_name,last_name,email,phone,title\n", f);
    uint64_t s = 42;
    for (long i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        unsigned r = (unsigned)(s >> 33);
        long who = (i % 200 == 199) ? i - 7 : i;
        fprintf(f, "%s,%s,%s.%ld@mail.example,+1 415 %03u %04u,\"%s, %s\"\n",
                firsts[r % 20], lasts[(r >> 8) % 18], lasts[(who * 7) % 18], who,
                200 + (r >> 12) % 800, (unsigned)(i % 10000), r % 3 ? "Buyer" : "Engineer",
                r % 2 ? "EMEA" : "Americas");
    }
    if (fclose(f))
        die(path, strerror(errno));
}

/* ---- the identical-storage floor ---------------------------------------------------------- */

static void sql_check(sqlite3 *db, int rc, const char *what)
{
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        die(what, sqlite3_errmsg(db));
}

static void sql_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        die(sql, msg ? msg : "error");
}

typedef struct {
    sqlite3 *db;
    sqlite3_stmt *ins;
    int col;
    long row;
} floor_csv_t;

static void floor_field(void *text, size_t len, void *ud)
{
    floor_csv_t *f = ud;
    if (f->row > 0 && f->col < 5)
        sql_check(f->db, sqlite3_bind_text(f->ins, f->col + 1, text, (int)len, SQLITE_TRANSIENT),
                  "bind");
    f->col++;
}

static void floor_row(int c, void *ud)
{
    (void)c;
    floor_csv_t *f = ud;
    if (f->row++ > 0) {
        sql_check(f->db, sqlite3_step(f->ins), "the staging row");
        sqlite3_reset(f->ins);
    }
    f->col = 0;
}

enum { F_STAGE, F_RECORDS, F_EVENTS, F_SEARCH, F_COMMIT, F_PARTS };

/* Fills @p path, which the engine prepared (its tables, indexes and search index, no
 * contact yet), with the contacts of @p csv doing the storage work the import does, and
 * nothing else: @p t gets the seconds of each part, from opening the file to the database
 * closed (the WAL checkpointed, as the engine's close does). */
static void storage_floor(const char *path, const char *csv, double t[F_PARTS])
{
    double t0 = now_s();
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        die(path, sqlite3_errmsg(db));
    sql_check(db, rp__fts_register(db), "cannot register the tokenizer");
    /* The engine's connection (core/db/sqlite.c) and the import's page cache (core/cli/io.c). */
    sql_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
                 " PRAGMA secure_delete=FAST; PRAGMA cache_size=-98304; PRAGMA temp_store=MEMORY");
    sql_exec(db, "BEGIN IMMEDIATE; CREATE TEMP TABLE staging(first_name, last_name, email, phone,"
                 " title)");
    floor_csv_t f = {.db = db};
    sql_check(db, sqlite3_prepare_v2(db, "INSERT INTO staging VALUES(?, ?, ?, ?, ?)", -1, &f.ins,
                                     NULL), "prepare");
    FILE *in = fopen(csv, "r");
    if (!in)
        die(csv, strerror(errno));
    struct csv_parser p;
    if (csv_init(&p, CSV_APPEND_NULL))
        die("csv_init", "out of memory");
    char buf[65536];
    for (size_t n; (n = fread(buf, 1, sizeof buf, in)) > 0;)
        if (csv_parse(&p, buf, n, floor_field, floor_row, &f) != n)
            die(csv, csv_strerror(csv_error(&p)));
    csv_fini(&p, floor_field, floor_row, &f);
    csv_free(&p);
    fclose(in);
    sqlite3_finalize(f.ins);
    double t1 = now_s();
    t[F_STAGE] = t1 - t0;
    /* The record as the engine stores it (the phone in its canonical form, the booleans the
     * plugins default), its contact.created event with the same changes, its search text. */
    sql_exec(db,
             "INSERT INTO contact(created_at, updated_at, version, created_by, updated_by,"
             " do_not_contact, email, email_opt_out, first_name, last_name, phone, title,"
             " churn_risk, email_bouncing, sms_opt_out, portal_access)"
             " SELECT strftime('%Y-%m-%dT%H:%M:%fZ'), strftime('%Y-%m-%dT%H:%M:%fZ'), 1,"
             " 'local:root', 'local:root', 0, email, 0, first_name, last_name,"
             " replace(phone, ' ', ''), title, 0, 0, 0, 0 FROM staging ORDER BY rowid");
    t[F_RECORDS] = now_s() - t1;
    t1 = now_s();
    sql_exec(db,
             "INSERT INTO rp_events(uid, type, entity, record_id, actor, origin, at, changes,"
             " cause, depth)"
             " SELECT hex(randomblob(13)), 'contact.created', 'contact', id, 'local:root',"
             " 'import', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER),"
             " json_object("
             "'do_not_contact', json('[null,false]'), 'email', json_array(NULL, email),"
             " 'email_opt_out', json('[null,false]'), 'first_name', json_array(NULL, first_name),"
             " 'last_name', json_array(NULL, last_name), 'phone', json_array(NULL, phone),"
             " 'title', json_array(NULL, title), 'churn_risk', json('[null,false]'),"
             " 'email_bouncing', json('[null,false]'), 'sms_opt_out', json('[null,false]'),"
             " 'portal_access', json('[null,false]')), 0, 0 FROM contact ORDER BY id");
    t[F_EVENTS] = now_s() - t1;
    t1 = now_s();
    sql_exec(db,
             "INSERT INTO rp_search(rowid, body)"
             " SELECT ((SELECT no FROM rp_entities WHERE name = 'contact') << 40) | id,"
             " email || char(10) || first_name || char(10) || last_name FROM contact ORDER BY id");
    t[F_SEARCH] = now_s() - t1;
    t1 = now_s();
    sql_exec(db, "COMMIT");
    if (sqlite3_close(db) != SQLITE_OK)
        die(path, "cannot close");
    t[F_COMMIT] = now_s() - t1;
}

/* Runs storage_floor(@p a, @p b, @p t) in a forked child; returns its seconds as the child
 * measured them, *maxrss_kb the child's peak. */
static double in_child(const char *a, const char *b, double t[F_PARTS], long *maxrss_kb)
{
    int fd[2];
    if (pipe(fd))
        die("pipe", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        die("fork", strerror(errno));
    size_t len = sizeof(double) * F_PARTS;
    if (pid == 0) {
        close(fd[0]);
        storage_floor(a, b, t);
        _exit(write(fd[1], t, len) == (ssize_t)len ? 0 : 1);
    }
    close(fd[1]);
    ssize_t got = read(fd[0], t, len);
    close(fd[0]);
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        got != (ssize_t)len)
        die("the floor", "its child failed");
    *maxrss_kb = ru.ru_maxrss;
    double sum = 0;
    for (int k = 0; k < F_PARTS; k++)
        sum += t[k];
    return sum;
}

static long count_rows(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
        die(path, sqlite3_errmsg(db));
    long n = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    if (n <= 0)
        die("usage", "bench_import [N]");
    char dir[] = "/tmp/rp_bench_import_XXXXXX";
    if (!mkdtemp(dir))
        die("mkdtemp", strerror(errno));
    char csv[256], raw[256], db[256], sql[512];
    snprintf(csv, sizeof csv, "%s/contacts.csv", dir);
    snprintf(raw, sizeof raw, "%s/raw.db", dir);
    snprintf(db, sizeof db, "%s/crm.db", dir);
    write_csv(csv, n);
    /* The floor: the sqlite3 shell's .import into a bare table, in WAL like the store. */
    snprintf(sql, sizeof sql, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
    char *floor_init[] = {"sqlite3", raw, sql, NULL};
    run(floor_init, NULL, NULL);
    char *floor[] = {"sqlite3", raw, "-cmd", ".mode csv", ".import contacts.csv contacts", NULL};
    char imp[300];
    snprintf(imp, sizeof imp, ".import %s contacts", csv);
    floor[4] = imp;
    long floor_rss = 0;
    double t_floor = run(floor, NULL, &floor_rss);
    /* Ours: a fresh database, the built-in plugin and the default rules on. */
    char *init[] = {RP_RAPPORT_BIN, "--db", db, "init", NULL};
    run(init, NULL, NULL);
    char *import[] = {RP_RAPPORT_BIN, "--db", db, "import", "contact", csv, "--quiet", NULL};
    long rss = 0;
    double t_ours = run(import, NULL, &rss);
    /* The identical-storage floor: a database the engine prepared the same way (an import of
     * the header alone creates the plugins' tables), filled by plain SQLite. */
    char fdb[256], header[256];
    snprintf(fdb, sizeof fdb, "%s/floor.db", dir);
    snprintf(header, sizeof header, "%s/header.csv", dir);
    FILE *hf = fopen(header, "w");
    if (!hf || fputs("first_name,last_name,email,phone,title\n", hf) < 0 || fclose(hf))
        die(header, strerror(errno));
    char *finit[] = {RP_RAPPORT_BIN, "--db", fdb, "init", NULL};
    run(finit, NULL, NULL);
    char *fprep[] = {RP_RAPPORT_BIN, "--db", fdb, "import", "contact", header, "--quiet", NULL};
    run(fprep, NULL, NULL);
    /* In a child of its own: the floor's page cache and staging table must not count in the
     * peak memory of the commands spawned after it (a spawned child starts from this
     * process's pages). */
    long storage_rss = 0;
    double parts[F_PARTS];
    double t_storage = in_child(fdb, csv, parts, &storage_rss);
    static const char *const counts[] = {
        "SELECT count(*) FROM contact", "SELECT count(*) FROM rp_events WHERE type = "
        "'contact.created'", "SELECT count(*) FROM rp_search_docsize"};
    for (int k = 0; k < 3; k++) {
        long a = count_rows(db, counts[k]), b = count_rows(fdb, counts[k]);
        if (a != n || b != n) {
            fprintf(stderr, "bench_import: %s: the import has %ld, the floor %ld, not %ld\n",
                    counts[k], a, b, n);
            return 1;
        }
    }
    /* Where the time goes: the same file into the bare core (no plugin, no rules), first an
     * entity of plain text fields (the write path: JSON, record, event), then with the
     * plugin's indexes and search fields but none of its hooks. */
    static const char *const specs[] = {
        "{\"fields\": {\"first_name\": {\"type\": \"text\"}, \"last_name\": {\"type\": "
        "\"text\"}, \"email\": {\"type\": \"text\"}, \"phone\": {\"type\": \"text\"}, "
        "\"title\": {\"type\": \"text\"}}}",
        "{\"fields\": {\"first_name\": {\"type\": \"text\", \"searchable\": true}, "
        "\"last_name\": {\"type\": \"text\", \"searchable\": true}, \"email\": {\"type\": "
        "\"email\", \"searchable\": true, \"indexed\": true}, \"phone\": {\"type\": "
        "\"phone\", \"indexed\": true}, \"title\": {\"type\": \"text\"}}}"};
    double t_bare[2];
    setenv("RAPPORT_PLUGINS_BUILTIN", "0", 1);
    setenv("RAPPORT_SCRIPTS", dir, 1); /* no default rules */
    for (int k = 0; k < 2; k++) {
        char bdb[256];
        snprintf(bdb, sizeof bdb, "%s/bare%d.db", dir, k);
        char *binit[] = {RP_RAPPORT_BIN, "--db", bdb, "init", NULL};
        run(binit, NULL, NULL);
        char *bdef[] = {RP_RAPPORT_BIN, "--db", bdb, "define", "contact", (char *)specs[k], NULL};
        run(bdef, NULL, NULL);
        char *bimp[] = {RP_RAPPORT_BIN, "--db", bdb, "import", "contact", csv, "--quiet", NULL};
        t_bare[k] = run(bimp, NULL, NULL);
    }
    unsetenv("RAPPORT_PLUGINS_BUILTIN");
    unsetenv("RAPPORT_SCRIPTS");
    char *dups[] = {RP_RAPPORT_BIN, "--db", db, "duplicates", "contact", NULL};
    char groups[300];
    snprintf(groups, sizeof groups, "%s/groups.jsonl", dir);
    long dup_rss = 0;
    double t_dups = run(dups, groups, &dup_rss);
    long lines = 0;
    FILE *g = fopen(groups, "r");
    for (int c; g && (c = fgetc(g)) != EOF;)
        lines += c == '\n';
    if (g)
        fclose(g);
    printf("a. import: %ld contacts in %.2f s (%.0f rows/s) with the plugin's hooks, the default "
           "rules, events and the search index; the identical-storage floor (the same database "
           "filled by INSERT ... SELECT) %.2f s: ratio %.2f (target <= 1.2); peak memory %.1f MB "
           "(target < 200); for the record, sqlite3 .import into a bare table %.2f s: ratio "
           "%.2f (the floor's own: %.2f)\n",
           n, t_ours, (double)n / t_ours, t_storage, t_ours / t_storage, (double)rss / 1024.0,
           t_floor, t_ours / t_floor, t_storage / t_floor);
    /* The two stored the same: their sizes say so (a page count after the WAL went in). */
    long pages_ours = count_rows(db, "PRAGMA page_count"), pages_floor = count_rows(fdb,
                                                                              "PRAGMA page_count");
    long page = count_rows(db, "PRAGMA page_size");
    printf("   the two databases: the import's %.1f MB, the floor's %.1f MB; the floor's peak "
           "memory %.1f MB\n", (double)pages_ours * page / 1048576.0,
           (double)pages_floor * page / 1048576.0, (double)storage_rss / 1024.0);
    printf("   the floor's parts: the file into a staging table %.2f s, the records %.2f s, "
           "the events %.2f s, the search index %.2f s, the commit and checkpoint %.2f s\n",
           parts[F_STAGE], parts[F_RECORDS], parts[F_EVENTS], parts[F_SEARCH], parts[F_COMMIT]);
    printf("   where the time goes, against the identical-storage floor: the bare write path "
           "(JSON, record, event) %.2f s (ratio %.2f); + 2 indexes and 3 search fields %.2f s "
           "(%.2f); + the plugin (its hooks, 21 fields, 4 indexes) and the default rules %.2f s "
           "(%.2f)\n",
           t_bare[0], t_bare[0] / t_storage, t_bare[1], t_bare[1] / t_storage, t_ours,
           t_ours / t_storage);
    printf("b. duplicates: a scan of %ld contacts in %.2f s (target < 5 s), %ld groups, peak "
           "memory %.1f MB (target < 150)\n", n, t_dups, lines, (double)dup_rss / 1024.0);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
