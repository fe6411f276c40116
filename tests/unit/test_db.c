/*
 * test_db.c — the database room's whole-file operations (rapport/db.h, "whole files"): a copy
 * of a live store taken while another connection writes, checked and read back; the lock that
 * restore takes; the refusals of each call; a read snapshot and the write that ends it.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "rapport/db.h"

/* A second connection that creates contacts until told to stop. */
typedef struct writer {
    const char *path;
    atomic_int written;
    atomic_bool stop;
    char error[600];
} writer_t;

static void *write_contacts(void *ud)
{
    writer_t *w = ud;
    rp_store_opts_t o = {.now_ms = test_now};
    rp_store_t *s = NULL;
    rp_error_t err = {0};
    if (rp_store_open(w->path, &o, &s, &err) != 0) {
        snprintf(w->error, sizeof w->error, "writer open: %s", err.msg);
        atomic_store(&w->stop, true);
        return NULL;
    }
    json_t *f = json_pack("{s:s}", "last_name", "Writer");
    while (!atomic_load(&w->stop)) {
        if (rp_store_create(s, &test_ctx, "contact", f, NULL, &err) != 0) {
            snprintf(w->error, sizeof w->error, "writer create: %s", err.msg);
            break;
        }
        atomic_fetch_add(&w->written, 1);
    }
    json_decref(f);
    rp_store_close(s);
    return NULL;
}

/* Counts the events of the store at @p path and checks that they run 1..n without a gap, the
 * mark of one snapshot; returns n. */
static int64_t events_in(const char *path)
{
    rp_db_t *db = NULL;
    rp_error_t err = {0};
    assert_int_equal(rp_db_open_file(path, false, &db, &err), 0);
    rp_db_stmt_t *st =
        rp_db_prepare(db,
                      "SELECT count(*), coalesce(min(seq), 1), coalesce(max(seq), 0) "
                      "FROM rp_events",
                      &err);
    assert_non_null(st);
    assert_int_equal(rp_db_step(st), RP_DB_ROW);
    int64_t n = rp_db_col_int(st, 0);
    assert_int_equal(rp_db_col_int(st, 1), 1);
    assert_int_equal(rp_db_col_int(st, 2), n);
    rp_db_finalize(st);
    rp_db_close(db);
    return n;
}

/* 8 MB of rows beside the records, so that a copy takes several steps of 1024 pages. */
static void add_bulk(rp_store_t *s)
{
    rp_error_t err = {0};
    assert_int_equal(rp_db_exec(rp_store_db(s),
                                "CREATE TABLE test_bulk(x BLOB);"
                                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                                "WHERE i < 2000) INSERT INTO test_bulk SELECT randomblob(4000) "
                                "FROM n",
                                &err),
                     0);
}

static void test_copy_of_a_live_store(void **state)
{
    (void)state;
    char dir[64], path[256], copy[300];
    test_tmpdb(dir, path, "live.db");
    snprintf(copy, sizeof copy, "%s/copy.db", dir);
    rp_store_opts_t o = {.now_ms = test_now};
    rp_store_t *s = NULL;
    rp_error_t err = {0};
    assert_int_equal(rp_store_open(path, &o, &s, &err), 0);
    define(s, "account", account_spec);
    define(s, "contact", contact_spec);
    for (int i = 0; i < 20; i++)
        create(s, "contact", "{\"last_name\": \"Before\"}");
    add_bulk(s);
    int64_t before = rp_events_last_seq(s);

    writer_t w = {.path = path};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, write_contacts, &w), 0);
    while (atomic_load(&w.written) < 5 && !atomic_load(&w.stop))
        usleep(1000);

    /* Copy until one copy has seen the writer commit while it ran (the first, nearly always);
     * every copy must be whole and consistent. */
    bool overlapped = false;
    int64_t pages = 0, copied = 0;
    for (int i = 0; i < 20 && !overlapped && !w.error[0]; i++) {
        int at_start = atomic_load(&w.written);
        assert_int_equal(rp_db_copy(rp_store_db(s), copy, &pages, &err), 0);
        overlapped = atomic_load(&w.written) > at_start;
        copied = events_in(copy);
        assert_true(copied >= before + at_start);
    }
    atomic_store(&w.stop, true);
    pthread_join(t, NULL);
    if (w.error[0])
        fail_msg("%s", w.error);
    assert_true(overlapped);
    if (pages <= 1024)
        fail_msg("the copy took %lld pages, not several steps", (long long)pages);

    /* One self-contained file: no log beside it, and it checks whole. */
    char side[320];
    struct stat sb;
    snprintf(side, sizeof side, "%s-wal", copy);
    assert_int_not_equal(stat(side, &sb), 0);
    rp_db_t *db = NULL;
    assert_int_equal(rp_db_open_file(copy, false, &db, &err), 0);
    assert_int_equal(rp_db_verify(db, &err), 0);
    int64_t n = 0, size = 0;
    assert_int_equal(rp_db_size(db, &n, &size, &err), 0);
    assert_int_equal(n, pages);
    assert_int_equal(size, 4096);
    assert_int_equal(stat(copy, &sb), 0);
    assert_int_equal(sb.st_size, n * size);
    rp_db_close(db);
    rp_store_close(s);

    /* The copy opens as a store, and its events read back as written. */
    assert_int_equal(rp_store_open(copy, &o, &s, &err), 0);
    assert_int_equal(rp_events_last_seq(s), copied);
    /* What the writer committed before the snapshot follows the first twenty creates. */
    rp_event_t ev[4];
    int got = rp_events_list(s, before, false, ev, 4, &err);
    assert_int_equal(got, 4);
    for (int i = 0; i < got; i++) {
        assert_int_equal(ev[i].seq, before + 1 + i);
        assert_string_equal(ev[i].type, "contact.created");
        rp_event_clear(&ev[i]);
    }
    got = rp_events_list(s, 0, true, ev, 1, &err);
    assert_int_equal(got, 1);
    assert_int_equal(ev[0].seq, copied);
    assert_string_equal(ev[0].type, "contact.created");
    rp_event_clear(&ev[0]);
    rp_store_close(s);
    test_rmdir(dir);
}

static void test_copy_refusals(void **state)
{
    (void)state;
    char dir[64], path[256], copy[300];
    test_tmpdb(dir, path, "live.db");
    rp_store_opts_t o = {.now_ms = test_now};
    rp_store_t *s = NULL;
    rp_error_t err = {0};
    assert_int_equal(rp_store_open(path, &o, &s, &err), 0);
    rp_db_t *db = rp_store_db(s);

    assert_int_equal(rp_db_copy(db, "", NULL, &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "rp_db_copy needs the path of a file"));
    assert_int_equal(rp_db_copy(NULL, "x.db", NULL, &err), RP_EINVAL);
    assert_int_equal(rp_db_verify(NULL, &err), RP_EINVAL);
    assert_int_equal(rp_db_size(NULL, NULL, NULL, &err), RP_EINVAL);

    /* A copy holds a snapshot of its own: not inside the caller's transaction. */
    snprintf(copy, sizeof copy, "%s/copy.db", dir);
    assert_int_equal(rp_db_begin(db, &err), 0);
    assert_int_equal(rp_db_copy(db, copy, NULL, &err), RP_ESTATE);
    assert_non_null(strstr(err.msg, "inside an open transaction"));
    assert_int_equal(rp_db_rollback(db, &err), 0);
    struct stat sb;
    assert_int_not_equal(stat(copy, &sb), 0);

    /* A copy that cannot be made leaves nothing behind. */
    snprintf(copy, sizeof copy, "%s/no/such/folder/copy.db", dir);
    assert_int_equal(rp_db_copy(db, copy, NULL, &err), RP_EIO);
    assert_non_null(strstr(err.msg, "copy.db is not a SQLite database"));
    assert_int_not_equal(stat(copy, &sb), 0);
    rp_store_close(s);

    /* A file that is no database says so by name. */
    snprintf(copy, sizeof copy, "%s/garbage.db", dir);
    FILE *f = fopen(copy, "w");
    assert_non_null(f);
    for (int i = 0; i < 200; i++)
        fputs("not a database at all, ", f);
    fclose(f);
    rp_db_t *g = NULL;
    assert_int_equal(rp_db_open_file(copy, false, &g, &err), RP_EIO);
    assert_null(g);
    assert_non_null(strstr(err.msg, "garbage.db is not a SQLite database"));
    assert_int_equal(rp_db_open_file("", false, &g, &err), RP_EINVAL);
    test_rmdir(dir);
}

static void test_lock_file(void **state)
{
    (void)state;
    char dir[64], path[256], garbage[300];
    test_tmpdb(dir, path, "live.db");
    rp_store_opts_t o = {.now_ms = test_now};
    rp_store_t *s = NULL;
    rp_error_t err = {0};
    assert_int_equal(rp_store_open(path, &o, &s, &err), 0);
    define(s, "account", account_spec);
    define(s, "contact", contact_spec);
    create(s, "contact", "{\"last_name\": \"Held\"}");

    /* Refused while another connection has the file open. */
    rp_db_t *lock = NULL;
    assert_int_equal(rp_db_lock_file(path, &lock, &err), RP_ESTATE);
    assert_null(lock);
    assert_non_null(strstr(err.msg, "live.db is open in another connection"));
    rp_store_close(s);

    /* Taken once it is closed; the file then opens as a store again. */
    assert_int_equal(rp_db_lock_file(path, &lock, &err), 0);
    assert_non_null(lock);
    rp_db_close(lock);
    assert_int_equal(rp_store_open(path, &o, &s, &err), 0);
    rp_store_close(s);

    /* A file that is no database has nothing to lock. */
    snprintf(garbage, sizeof garbage, "%s/garbage.db", dir);
    FILE *f = fopen(garbage, "w");
    assert_non_null(f);
    for (int i = 0; i < 200; i++)
        fputs("not a database at all, ", f);
    fclose(f);
    lock = (rp_db_t *)&err;
    assert_int_equal(rp_db_lock_file(garbage, &lock, &err), 0);
    assert_null(lock);
    assert_int_equal(rp_db_lock_file(NULL, &lock, &err), RP_EINVAL);

    /* rp_db_remove takes the file with its log and journal. */
    rp_db_remove(path);
    struct stat sb;
    char side[320];
    snprintf(side, sizeof side, "%s-wal", path);
    assert_int_not_equal(stat(path, &sb), 0);
    assert_int_not_equal(stat(side, &sb), 0);
    test_rmdir(dir);
}

static int64_t contacts(rp_store_t *s)
{
    int64_t n = -1;
    rp_error_t err = {0};
    assert_int_equal(rp_store_count(s, "contact", NULL, false, &n, &err), 0);
    return n;
}

/* A read snapshot (rp_db_read_begin) sees one state until it ends; the first write level ends
 * it, so the write sees, and works on, what another connection committed meanwhile. */
static void test_read_snapshot(void **state)
{
    (void)state;
    char dir[64], path[256];
    test_tmpdb(dir, path, "snap.db");
    rp_store_opts_t o = {.now_ms = test_now};
    rp_store_t *s = NULL, *other = NULL;
    rp_error_t err = {0};
    assert_int_equal(rp_store_open(path, &o, &s, &err), 0);
    define(s, "account", account_spec);
    define(s, "contact", contact_spec);
    create(s, "contact", "{\"last_name\": \"One\"}");
    assert_int_equal(rp_store_open(path, &o, &other, &err), 0);
    rp_db_t *db = rp_store_db(s);

    assert_int_equal(rp_db_read_begin(db, &err), 0);
    assert_int_equal(rp_db_read_begin(db, &err), 0); /* already open: nothing */
    assert_int_equal(contacts(s), 1);
    create(other, "contact", "{\"last_name\": \"Two\"}");
    assert_int_equal(contacts(s), 1); /* the snapshot's state */
    rp_db_read_end(db);
    assert_int_equal(contacts(s), 2);

    /* A write inside a snapshot ends it first: it sees the other's record and commits. */
    assert_int_equal(rp_db_read_begin(db, &err), 0);
    assert_int_equal(contacts(s), 2);
    create(other, "contact", "{\"last_name\": \"Three\"}");
    create(s, "contact", "{\"last_name\": \"Four\"}");
    assert_int_equal(rp_db_depth(db), 0);
    assert_int_equal(contacts(s), 4);
    rp_db_read_end(db); /* ended already: nothing */
    assert_int_equal(contacts(other), 4);

    /* The snapshot's version moves with another connection's commits and with this one's,
     * and only then. */
    uint32_t v1 = 0, v2 = 0, v3 = 0, v4 = 0;
    assert_false(rp_db_snapshot_version(db, &v1)); /* none open */
    assert_int_equal(rp_db_read_begin(db, &err), 0);
    assert_true(rp_db_snapshot_version(db, &v1));
    rp_db_read_end(db);
    create(other, "contact", "{\"last_name\": \"Five\"}");
    assert_int_equal(rp_db_read_begin(db, &err), 0);
    assert_true(rp_db_snapshot_version(db, &v2));
    assert_int_not_equal(v1, v2);
    create(s, "contact", "{\"last_name\": \"Six\"}"); /* ends the snapshot */
    assert_false(rp_db_snapshot_version(db, &v3));
    assert_int_equal(rp_db_read_begin(db, &err), 0);
    assert_true(rp_db_snapshot_version(db, &v3));
    assert_int_not_equal(v2, v3);
    rp_db_read_end(db);
    assert_int_equal(rp_db_read_begin(db, &err), 0);
    assert_true(rp_db_snapshot_version(db, &v4));
    assert_int_equal(v3, v4);
    rp_db_read_end(db);

    /* Inside a level, a snapshot is not opened (the level's transaction is the snapshot). */
    assert_int_equal(rp_db_begin(db, &err), 0);
    assert_int_equal(rp_db_read_begin(db, &err), 0);
    assert_false(rp_db_snapshot_version(db, &v4));
    rp_db_read_end(db);
    assert_int_equal(rp_db_depth(db), 1);
    assert_int_equal(rp_db_commit(db, &err), 0);

    rp_store_close(other);
    rp_store_close(s);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_of_a_live_store),
        cmocka_unit_test(test_copy_refusals),
        cmocka_unit_test(test_lock_file),
        cmocka_unit_test(test_read_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
