/*
 * bench_add_field.c — adding a custom field to an entity that already holds N rows (default
 * 1,000,000), against raw SQLite's ALTER TABLE ADD COLUMN on an identical table in the same run.
 * Prints seconds and the ratio; a figure, not a test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "rapport/store.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_add_field: %s: %s\n", what, msg);
    exit(1);
}

/* Fills entity "contact" with n rows through the bulk API. */
static void fill(rp_store_t *s, long n)
{
    rp_error_t err = {0};
    json_t *spec = json_pack("{s:{s:{s:s},s:{s:s},s:{s:s}}}", "fields", "first_name", "type",
                             "text", "last_name", "type", "text", "city", "type", "text");
    if (rp_store_define(s, NULL, "contact", spec, "bench", &err))
        die("define", err.msg);
    json_decref(spec);
    for (long done = 0; done < n; done += 1000) {
        json_t *batch = json_array();
        for (long i = done; i < done + 1000 && i < n; i++)
            json_array_append_new(batch, json_pack("{s:s,s:s,s:s}", "first_name", "Ada",
                                                   "last_name", i % 2 ? "Lovelace" : "Byron",
                                                   "city", "London"));
        if (rp_store_create_many(s, NULL, "contact", batch, NULL, NULL, &err))
            die("create", err.msg);
        json_decref(batch);
    }
}

static double add_field(rp_store_t *s, const char *name, const char *spec_text)
{
    rp_error_t err = {0};
    json_t *spec = json_loads(spec_text, 0, NULL);
    double t0 = now_s();
    if (rp_store_add_field(s, NULL, "contact", name, spec, "admin", &err))
        die("add_field", err.msg);
    double t = now_s() - t0;
    json_decref(spec);
    return t;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    char dir[] = "/tmp/rp_bench_XXXXXX";
    if (!mkdtemp(dir))
        die("mkdtemp", "failed");
    char path[256];
    snprintf(path, sizeof path, "%s/add.db", dir);
    rp_store_t *s = NULL;
    rp_error_t err = {0};
    if (rp_store_open(path, NULL, &s, &err))
        die("open", err.msg);
    fill(s, n);

    /* Raw: the same ALTER TABLE on the same table, without the registry and its event. */
    sqlite3 *db;
    sqlite3_open(path, &db);
    double t0 = now_s();
    if (sqlite3_exec(db, "ALTER TABLE contact ADD COLUMN raw_probe INTEGER DEFAULT 0", NULL, NULL,
                     NULL) != SQLITE_OK)
        die("raw alter", sqlite3_errmsg(db));
    double raw = now_s() - t0;
    sqlite3_close(db);
    /* The store's registry does not know raw_probe; reopen so statements see the new table. */
    rp_store_close(s);
    if (rp_store_open(path, NULL, &s, &err))
        die("reopen", err.msg);

    double t_int = add_field(s, "score", "{\"type\": \"integer\", \"default\": 0}");
    double t_dec = add_field(s, "ltv", "{\"type\": \"decimal\", \"default\": \"0\"}");
    double t_txt = add_field(s, "segment", "{\"type\": \"text\"}");
    double t_idx = add_field(s, "tier", "{\"type\": \"integer\", \"indexed\": true}");
    double t_tdef = add_field(s, "region", "{\"type\": \"text\", \"default\": \"EMEA\"}");
    printf("add_field over %ld rows: integer with default %.4f s, decimal with default %.4f s, "
           "text %.4f s (raw ALTER TABLE %.4f s, ratio %.2f)\n",
           n, t_int, t_dec, t_txt, raw, raw > 0 ? t_int / raw : 0);
    printf("add_field over %ld rows: indexed integer %.3f s (builds the index), text with a "
           "default %.3f s (writes every row)\n",
           n, t_idx, t_tdef);

    /* The new field is queryable at once. */
    json_t *w = json_pack("{s:i}", "score", 0);
    int64_t cnt = 0;
    t0 = now_s();
    if (rp_store_count(s, "contact", w, false, &cnt, &err))
        die("count", err.msg);
    printf("count where score = 0: %lld rows in %.3f s\n", (long long)cnt, now_s() - t0);
    json_decref(w);
    rp_store_close(s);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return 0;
}
