/*
 * test_schema.c — the database room's schema registry (each module's own versioned tables, and
 * files of the release-wide numbering opening and migrating) and the store's authorizer.
 */
#include <sqlite3.h> /* another program, rewinding a file to what an older release wrote */
#include <unistd.h>

#include "helpers.h"
#include "rapport/access.h"
#include "rapport/db.h"
#include "rapport/sched.h"
#include "rapport/webhook.h"

/* Linking a module is what gives a file its tables: this test links the scheduler and the
 * webhooks (whose files hold sched.c's and webhook.c's schemas) as the engine does. */
__attribute__((used)) static const void *const linked[] = {(const void *)rp_sched_new,
                                                            (const void *)rp_webhook_check_url};

static void raw(const char *path, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

static bool has_table(rp_store_t *s, const char *name)
{
    rp_db_stmt_t *st = rp_db_prepare(rp_store_db(s), "SELECT 1 FROM sqlite_master WHERE name = ?",
                                     NULL);
    assert_non_null(st);
    rp_db_bind_text(st, 1, name, -1);
    bool yes = rp_db_step(st) == RP_DB_ROW;
    rp_db_finalize(st);
    return yes;
}

static void temp_path(char *out, size_t n)
{
    snprintf(out, n, "/tmp/rp_schema_%d.db", (int)getpid());
    unlink(out);
}

/* A file of release-wide version 2 (before users and webhooks) gains the auth and webhook
 * tables, keeps its data, and each module's version is written down. */
static void test_legacy_file_migrates(void **state)
{
    (void)state;
    char path[64];
    temp_path(path, sizeof path);
    rp_error_t err = {0};
    rp_store_t *s;
    assert_int_equal(rp_store_open(path, NULL, &s, &err), 0);
    assert_int_equal(rp_store_schema_version_found(s), 0); /* a new file */
    assert_int_equal(rp_db_schema_found(rp_store_db(s), "auth"), 0);
    assert_int_equal(rp_db_schema_version(rp_store_db(s), "auth"), 2);
    json_t *spec = json_loads("{\"fields\": {\"name\": {\"type\": \"text\"}}}", 0, NULL);
    assert_int_equal(rp_store_define(s, &test_ctx, "thing", spec, "test", &err), 0);
    json_decref(spec);
    rp_store_close(s);

    raw(path, "DROP TABLE rp_tokens; DROP TABLE rp_users; DROP TABLE rp_webhooks;"
              " DROP TABLE rp_webhook_deliveries; DROP TABLE rp_migrations;"
              " DELETE FROM rp_meta WHERE key LIKE 'schema.%';"
              " UPDATE rp_meta SET value = '2' WHERE key = 'schema_version'");
    assert_int_equal(rp_store_open(path, NULL, &s, &err), 0);
    assert_int_equal(rp_store_schema_version_found(s), 2);
    assert_int_equal(rp_db_schema_found(rp_store_db(s), "store"), 1);
    assert_int_equal(rp_db_schema_found(rp_store_db(s), "sched"), 1);
    assert_int_equal(rp_db_schema_found(rp_store_db(s), "auth"), 0);
    assert_int_equal(rp_db_schema_found(rp_store_db(s), "webhook"), 0);
    assert_true(has_table(s, "rp_users") && has_table(s, "rp_webhooks"));
    assert_true(rp_store_has_entity(s, "thing"));
    assert_int_equal(rp_db_schema_version(rp_store_db(s), "webhook"), 1);
    rp_store_close(s);

    /* A file of release-wide version 5 (users with an email) without the modules' keys has
     * every table but the migrations' ledger: opening it adds only that. */
    raw(path, "DELETE FROM rp_meta WHERE key LIKE 'schema.%'; DROP TABLE rp_migrations;"
              " UPDATE rp_meta SET value = '5' WHERE key = 'schema_version'");
    assert_int_equal(rp_store_open(path, NULL, &s, &err), 0);
    assert_int_equal(rp_db_schema_found(rp_store_db(s), "webhook"), 1);
    assert_int_equal(rp_db_schema_found(rp_store_db(s), "store"), 1);
    assert_int_equal(rp_db_schema_version(rp_store_db(s), "store"), 2);
    assert_true(has_table(s, "rp_migrations") && rp_store_has_entity(s, "thing"));
    rp_store_close(s);

    /* A file that keeps each module's version, made by a program that did not link the
     * webhooks: the module is new there, whatever the release-wide number says. */
    raw(path, "DELETE FROM rp_meta WHERE key LIKE 'schema.%';"
              " INSERT INTO rp_meta(key, value) VALUES('schema.store', '2'),"
              " ('schema.events', '1'), ('schema.sched', '1'), ('schema.auth', '2'),"
              " ('schema.settings', '1');"
              " DROP TABLE rp_webhooks; DROP TABLE rp_webhook_deliveries");
    assert_int_equal(rp_store_open(path, NULL, &s, &err), 0);
    assert_int_equal(rp_db_schema_found(rp_store_db(s), "webhook"), 0);
    assert_true(has_table(s, "rp_webhooks"));
    rp_store_close(s);
    unlink(path);
}

/* One module newer than this build: the file is refused, naming the module. */
static void test_newer_module_refused(void **state)
{
    (void)state;
    char path[64];
    temp_path(path, sizeof path);
    rp_error_t err = {0};
    rp_store_t *s;
    assert_int_equal(rp_store_open(path, NULL, &s, &err), 0);
    rp_store_close(s);
    raw(path, "UPDATE rp_meta SET value = '7' WHERE key = 'schema.sched'");
    assert_int_equal(rp_store_open(path, NULL, &s, &err), RP_EVERSION);
    assert_non_null(strstr(err.msg, "version 7 of the sched tables"));
    unlink(path);
}

/* Without an authorizer, the store refuses every restricted context and serves the engine. */
static void test_no_authorizer_refuses(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    json_t *spec = json_loads("{\"fields\": {\"name\": {\"type\": \"text\"}}}", 0, NULL);
    rp_error_t err = {0};
    assert_int_equal(rp_store_define(s, &test_ctx, "thing", spec, "test", &err), 0);
    json_decref(spec);
    rp_access_t *a = NULL;
    assert_int_equal(rp_access_load(s, "ana", "admin", NULL, &a, &err), 0);
    int64_t n = -1;
    assert_int_equal(rp_store_count_as(s, a, "thing", NULL, false, &n, &err), 0);
    const rp_authorizer_t *was = rp_store_set_authorizer(NULL);
    assert_non_null(was);
    assert_int_equal(rp_store_count_as(s, a, "thing", NULL, false, &n, &err), RP_EPERM);
    rp_ctx_t as = {.actor = "user:ana", .origin = "test", .access = a};
    json_t *rec = json_pack("{s:s}", "name", "x");
    assert_int_equal(rp_store_create(s, &as, "thing", rec, NULL, &err), RP_EPERM);
    assert_int_equal(rp_store_create(s, &test_ctx, "thing", rec, NULL, &err), 0);
    json_decref(rec);
    rp_store_set_authorizer(was);
    assert_int_equal(rp_store_count_as(s, a, "thing", NULL, false, &n, &err), 0);
    assert_int_equal(n, 1);
    rp_access_free(a);
    rp_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_legacy_file_migrates),
        cmocka_unit_test(test_newer_module_refused),
        cmocka_unit_test(test_no_authorizer_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
