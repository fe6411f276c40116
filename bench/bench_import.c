/*
 * bench_import.c — the operational figures, each against its raw floor in the same run:
 *   a. `rapport import contact FILE.csv` of N generated contacts with the built-in plugin and
 *      the default rules on (hooks, events, search index), vs. the sqlite3 shell's own
 *      `.import` of the same file into a bare table: the time ratio, and the import's peak
 *      memory;
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
           "rules, events and the search index; sqlite3 .import into a bare table %.2f s: "
           "ratio %.2f (target <= 4); peak memory %.1f MB (target < 200)\n",
           n, t_ours, (double)n / t_ours, t_floor, t_ours / t_floor, (double)rss / 1024.0);
    printf("   where the time goes: the bare write path (JSON, record, event) %.2f s (ratio "
           "%.2f); + 2 indexes and 3 search fields %.2f s (%.2f); + the plugin (its hooks, 21 "
           "fields, 4 indexes) and the default rules %.2f s (%.2f)\n",
           t_bare[0], t_bare[0] / t_floor, t_bare[1], t_bare[1] / t_floor, t_ours,
           t_ours / t_floor);
    printf("b. duplicates: a scan of %ld contacts in %.2f s (target < 5 s), %ld groups, peak "
           "memory %.1f MB (target < 150)\n", n, t_dups, lines, (double)dup_rss / 1024.0);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
