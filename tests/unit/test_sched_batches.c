/*
 * test_sched_batches.c — how jobs are claimed and numbered: the jobs due now claimed together
 * and run in one transaction, ids that follow due time and are never handed out twice (also
 * when milliseconds are full), and batches that leave keyed jobs alone and keep time.
 */
#include <sqlite3.h>
#include <unistd.h>

#include "rapport/db.h"
#include "sched_helpers.h"

/* The jobs due now are claimed together, 64 at most (sched.c's RP__JOB_BATCH), and run in one
 * transaction; a job not yet due is neither claimed nor charged an attempt. */
static void test_due_jobs_are_claimed_in_batches(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    int64_t t0 = 1767225600000;
    rp_sched_t *e = engine(s, t0);
    rp_error_t err = {0};
    assert_int_equal(rp_sched_handler(e, "count", count_running, NULL, "test", &err), 0);
    for (int i = 0; i < 70; i++)
        schedule(s, "count", i, t0, NULL);
    schedule(s, "count", 99, t0 + H, NULL);
    most_running = 0;
    int did = 0;
    assert_int_equal(rp_sched_run_due(e, &did, &err), 0);
    assert_int_equal(did, 70);
    assert_int_equal(most_running, 64);
    json_t *jobs = NULL;
    assert_int_equal(rp_jobs_list(s, "pending", &jobs, &err), 0);
    assert_int_equal(json_array_size(jobs), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(jobs, 0), "attempts")), 0);
    json_decref(jobs);
    assert_int_equal(rp_jobs_list(s, "running", &jobs, &err), 0);
    assert_int_equal(json_array_size(jobs), 0);
    json_decref(jobs);
    rp_sched_free(e);
    rp_store_close(s);
}

/* A job's id follows when it is due, so the rows a batch claims and deletes are neighbours
 * in the table: earlier due, smaller id, whatever the order of scheduling; one millisecond's
 * jobs in the order they were scheduled; a crowded millisecond lends its ids to the next;
 * dues before 2020 or in a far future still get an id a JavaScript client reads exactly. */
static int64_t due_id(rp_store_t *s, int64_t due)
{
    int64_t id = 0;
    rp_error_t err = {0};
    if (rp_jobs_schedule(s, &test_ctx, "count", NULL, due, NULL, &id, &err))
        fail_msg("schedule: %s", err.msg);
    return id;
}

static void test_job_ids_follow_due_time(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    int64_t t0 = 1767225600000;
    int64_t late = due_id(s, t0 + 10000), early = due_id(s, t0 + 5000),
            twin = due_id(s, t0 + 5000);
    assert_true(early < late);
    assert_int_equal(twin, early + 1);
    /* 2050 jobs in one millisecond, then one due the millisecond after: all distinct, in
     * order, and every one of them runs. */
    int64_t prev = 0;
    for (int i = 0; i < 2050; i++) {
        int64_t id = due_id(s, t0 + H);
        assert_true(id > prev);
        prev = id;
    }
    int64_t next_ms = due_id(s, t0 + H + 1);
    assert_true(next_ms > prev);
    assert_true(due_id(s, t0 + H + 2) > next_ms);
    int64_t far = due_id(s, INT64_MAX / 2);
    assert_true(far > prev && far <= (1LL << 53));
    rp_sched_t *e = engine(s, t0);
    rp_error_t err = {0};
    /* Due in the past (before 2020, or before now): an id of the present, after those handed
     * out for now. */
    int64_t now_id = due_id(s, t0), old = due_id(s, 0);
    assert_true(old > now_id && old < early);
    assert_int_equal(rp_sched_handler(e, "count", count_running, NULL, "test", &err), 0);
    assert_int_equal(rp_sched_advance(e, 2 * H, &err), 0);
    json_t *jobs = NULL;
    assert_int_equal(rp_jobs_list(s, "pending", &jobs, &err), 0);
    assert_int_equal(json_array_size(jobs), 1); /* the far one */
    assert_int_equal(json_integer_value(json_object_get(json_array_get(jobs, 0), "id")), far);
    json_decref(jobs);
    /* No id is used twice: not after the jobs of a millisecond ran (a job due then now takes an
     * id of the present), not when a keyed job is moved to the same time or cancelled. */
    int64_t again = due_id(s, t0 + H);
    assert_true(again > next_ms);
    int64_t k1 = 0, k2 = 0, k3 = 0;
    int64_t when = rp_store_now(s) + 5 * H;
    assert_int_equal(rp_jobs_schedule(s, &test_ctx, "count", NULL, when, "k", &k1, &err), 0);
    assert_int_equal(rp_jobs_schedule(s, &test_ctx, "count", NULL, when, "k", &k2, &err), 0);
    assert_int_equal(rp_jobs_cancel(s, "k", &err), 0);
    assert_int_equal(rp_jobs_schedule(s, &test_ctx, "count", NULL, when, "k", &k3, &err), 0);
    assert_true(k1 < k2 && k2 < k3);
    rp_sched_free(e);
    rp_store_close(s);
}

/* Marks the 64 millisecond ranges from @p r0 full in rp_job_ids and, with @p seq > 0, makes it
 * the largest job id ever used. */
static void fill_ranges(rp_store_t *s, int64_t r0, int64_t seq)
{
    char sql[512], top[160] = "";
    if (seq > 0)
        snprintf(top, sizeof top, "DELETE FROM sqlite_sequence WHERE name = 'rp_jobs';"
                 " INSERT INTO sqlite_sequence(name, seq) VALUES('rp_jobs', %lld)",
                 (long long)seq);
    snprintf(sql, sizeof sql, "WITH RECURSIVE k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k"
             " WHERE n < 63) INSERT INTO rp_job_ids(ms, last) SELECT %lld + n,"
             " (%lld + n + 1) * 2048 + 2047 FROM k; %s", (long long)r0, (long long)r0, top);
    rp_error_t err = {0};
    assert_int_equal(rp_db_exec(rp_store_db(s), sql, &err), 0);
}

/* 64 full milliseconds in a row: the table picks the id (the largest ever used, plus one), the
 * caller is told that id, and its range's next id comes after it: in a range that held one
 * already (a job due an hour later), and in one new to the table. */
static void test_job_ids_when_milliseconds_are_full(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    int64_t t0 = 1767225600000;
    rp_sched_t *e = engine(s, t0);
    rp_error_t err = {0};
    int64_t r0 = t0 + 2 * H - 1577836800000LL;
    fill_ranges(s, r0, 0);
    int64_t later = due_id(s, t0 + 3 * H);
    int64_t picked = due_id(s, t0 + 2 * H);
    assert_true(picked == later + 1);
    assert_true(due_id(s, t0 + 3 * H) == picked + 1);
    json_t *jobs = NULL;
    assert_int_equal(rp_jobs_list(s, "pending", &jobs, &err), 0);
    assert_int_equal(json_array_size(jobs), 3);
    json_decref(jobs);
    rp_sched_free(e);
    rp_store_close(s);

    /* The largest id ever used is the last of the 64th full range: the pick opens the next. */
    s = test_open();
    e = engine(s, t0);
    int64_t last = (r0 + 64) * 2048 + 2047;
    fill_ranges(s, r0, last);
    int64_t opened = due_id(s, t0 + 2 * H);
    assert_true(opened == last + 1);
    assert_true(due_id(s, t0 + 2 * H + 64) == opened + 1);
    assert_int_equal(rp_jobs_list(s, "pending", &jobs, &err), 0);
    assert_int_equal(json_array_size(jobs), 2);
    assert_true(json_integer_value(json_object_get(json_array_get(jobs, 0), "id")) == opened);
    json_decref(jobs);
    rp_sched_free(e);
    rp_store_close(s);
}

/* A job's handler cancels a keyed job due at the same moment: it is found pending and never
 * runs (keyed jobs are not claimed with a batch). A batch that runs past its time hands the
 * jobs it has not begun back, their attempt taken back. */
static int cancelled_ran;
static int cancel_b(rp_store_t *s, const rp_job_t *job, const rp_ctx_t *ctx, void *ud,
                    rp_error_t *err)
{
    (void)ctx, (void)ud, (void)err;
    if (strcmp(job->name, "b") == 0) {
        cancelled_ran++;
        return 0;
    }
    return rp_jobs_cancel(s, "key-b", NULL) == 0 ? 0 : -1;
}

static int slow_attempts[4], slow_running[4];
static char slow_path[256];
static int slow(rp_store_t *s, const rp_job_t *job, const rp_ctx_t *ctx, void *ud,
                rp_error_t *err)
{
    (void)s, (void)ctx, (void)ud, (void)err;
    json_t *p = json_loads(job->payload, 0, NULL);
    int n = (int)json_integer_value(json_object_get(p, "n"));
    json_decref(p);
    if (n >= 0 && n < 4)
        slow_attempts[n] = job->attempts;
    /* What another connection sees committed: the jobs not yet done. */
    sqlite3 *other = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open_v2(slow_path, &other, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(other, "SELECT count(*) FROM rp_jobs", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && n >= 0 && n < 4)
        slow_running[n] = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(other);
    usleep(70 * 1000);
    return 0;
}

static void test_batches_leave_keyed_jobs_and_keep_time(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    int64_t t0 = 1767225600000;
    rp_sched_t *e = engine(s, t0);
    rp_error_t err = {0};
    assert_int_equal(rp_sched_handler(e, "a", cancel_b, NULL, "test", &err), 0);
    assert_int_equal(rp_sched_handler(e, "b", cancel_b, NULL, "test", &err), 0);
    schedule(s, "a", 1, t0, NULL);
    schedule(s, "b", 2, t0, "key-b");
    cancelled_ran = 0;
    assert_int_equal(rp_sched_run_due(e, NULL, &err), 0);
    assert_int_equal(cancelled_ran, 0);
    json_t *jobs = NULL;
    assert_int_equal(rp_jobs_list(s, NULL, &jobs, &err), 0);
    assert_int_equal(json_array_size(jobs), 0);
    json_decref(jobs);

    /* Due order holds across the kinds: a batch stops before a keyed job due earlier. */
    assert_int_equal(rp_sched_handler(e, "tick", log_job, NULL, "test", &err), 0);
    schedule(s, "tick", 1, t0 - 4, NULL);
    schedule(s, "tick", 2, t0 - 3, "keyed");
    schedule(s, "tick", 3, t0 - 2, NULL);
    schedule(s, "tick", 4, t0 - 2, NULL);
    run_log[0] = '\0';
    assert_int_equal(rp_sched_run_due(e, NULL, &err), 0);
    assert_string_equal(run_log, "tick:1,tick:2,tick:3,tick:4");

    rp_sched_free(e);
    rp_store_close(s);

    char dir[64];
    test_tmpdb(dir, slow_path, "slow.db");
    rp_store_opts_t o = {.now_ms = test_now};
    assert_int_equal(rp_store_open(slow_path, &o, &s, &err), 0);
    e = engine(s, t0);
    assert_int_equal(rp_sched_handler(e, "slow", slow, NULL, "test", &err), 0);
    for (int i = 0; i < 3; i++)
        schedule(s, "slow", i, t0, NULL);
    memset(slow_attempts, 0, sizeof slow_attempts);
    int did = 0;
    assert_int_equal(rp_sched_run_due(e, &did, &err), 0);
    assert_int_equal(did, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(slow_attempts[i], 1); /* the one handed back was charged once */
    assert_int_equal(slow_running[1], 3); /* one batch: nothing committed before the second, */
    assert_int_equal(slow_running[2], 1); /* the third handed back after 140 ms, a new batch */
    rp_sched_free(e);
    rp_store_close(s);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_due_jobs_are_claimed_in_batches),
        cmocka_unit_test(test_job_ids_follow_due_time),
        cmocka_unit_test(test_job_ids_when_milliseconds_are_full),
        cmocka_unit_test(test_batches_leave_keyed_jobs_and_keep_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
