/*
 * test_sched.c — time: delays, durable jobs on a virtual clock (due order, keys, cancel,
 * backoff, dead letters), cron schedules and catch-up after downtime, event dispatch, two
 * engines claiming from one database, and a SIGKILL in the middle of a job.
 */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "rapport/sched.h"

static const int64_t H = 3600000;

static rp_sched_t *engine(rp_store_t *s, int64_t start)
{
    rp_sched_opts_t o = {.virtual_clock = true, .start_ms = start,
                         .retry = {.max_attempts = 3, .base_ms = 1000}};
    rp_sched_t *e = rp_sched_new(s, &o);
    assert_non_null(e);
    return e;
}

static void test_delays(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t ms;
    } ok[] = {{"90s", 90000}, {"15m", 900000}, {"24h", 86400000}, {"3d", 259200000},
              {"2w", 1209600000}, {"500ms", 500}, {"1h30m", 5400000}, {"0s", 0}};
    rp_error_t err = {0};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        int64_t ms = -1;
        assert_int_equal(rp_parse_delay(ok[i].text, &ms, &err), 0);
        assert_int_equal(ms, ok[i].ms);
    }
    int64_t ms;
    assert_int_equal(rp_parse_delay("10", &ms, &err), RP_EINVAL);
    assert_contains(err.msg, "needs a unit");
    assert_int_equal(rp_parse_delay("h", &ms, &err), RP_EINVAL);
    assert_contains(err.msg, "position 1");
    assert_int_equal(rp_parse_delay("5x", &ms, &err), RP_EINVAL);
    assert_int_equal(rp_parse_delay("", &ms, &err), RP_EINVAL);
    assert_int_equal(rp_parse_delay("99999999999999999999d", &ms, &err), RP_EINVAL);
}

/* A job handler that appends its name and payload "n" to a log. */
static char run_log[4096];
static int log_job(rp_store_t *s, const rp_job_t *job, const rp_ctx_t *ctx, void *ud,
                   rp_error_t *err)
{
    json_t *p = json_loads(job->payload, 0, NULL);
    size_t n = strlen(run_log);
    snprintf(run_log + n, sizeof run_log - n, "%s%s:%lld", n ? "," : "", job->name,
             (long long)json_integer_value(json_object_get(p, "n")));
    json_decref(p);
    return 0;
}

static void schedule(rp_store_t *s, const char *name, int n, int64_t due, const char *key)
{
    json_t *p = json_pack("{s:i}", "n", n);
    rp_error_t err = {0};
    if (rp_jobs_schedule(s, &test_ctx, name, p, due, key, NULL, &err))
        fail_msg("schedule %s: %s", name, err.msg);
    json_decref(p);
}

static void test_jobs_due_order_keys_cancel(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    int64_t t0 = 1767225600000;
    rp_sched_t *e = engine(s, t0);
    rp_error_t err = {0};
    assert_int_equal(rp_sched_handler(e, "remind", log_job, NULL, "test", &err), 0);
    run_log[0] = '\0';
    schedule(s, "remind", 3, t0 + 3 * H, NULL);
    schedule(s, "remind", 1, t0 + 1 * H, NULL);
    schedule(s, "remind", 2, t0 + 2 * H, NULL);
    schedule(s, "remind", 9, t0 + 30 * H, NULL);
    /* A key makes scheduling idempotent: the second schedule moves the first. */
    schedule(s, "remind", 24, t0 + 24 * H, "sla:ticket:7");
    schedule(s, "remind", 5, t0 + 5 * H, "sla:ticket:7");
    schedule(s, "remind", 6, t0 + 6 * H, "cancel-me");
    assert_int_equal(rp_jobs_cancel(s, "cancel-me", &err), 0);
    assert_int_equal(rp_jobs_cancel(s, "cancel-me", &err), RP_ENOTFOUND);
    json_t *jobs = NULL;
    assert_int_equal(rp_jobs_list(s, "pending", &jobs, &err), 0);
    assert_int_equal(json_array_size(jobs), 5);
    json_decref(jobs);

    assert_int_equal(rp_sched_advance(e, 25 * H, &err), 0);
    assert_string_equal(run_log, "remind:1,remind:2,remind:3,remind:5");
    assert_int_equal(rp_sched_now(e), t0 + 25 * H);
    assert_int_equal(rp_store_now(s), t0 + 25 * H); /* one clock for everything */
    assert_int_equal(rp_sched_advance(e, 5 * H, &err), 0);
    assert_string_equal(run_log, "remind:1,remind:2,remind:3,remind:5,remind:9");
    assert_int_equal(rp_jobs_list(s, NULL, &jobs, &err), 0);
    assert_int_equal(json_array_size(jobs), 0);
    json_decref(jobs);

    /* Bad input is refused clearly. */
    json_t *arr = J("[1]");
    assert_int_equal(rp_jobs_schedule(s, &test_ctx, "Bad Name", NULL, 0, NULL, NULL, &err),
                     RP_EINVAL);
    assert_int_equal(rp_jobs_schedule(s, &test_ctx, "ok", arr, 0, NULL, NULL, &err), RP_EINVAL);
    assert_contains(err.msg, "must be a JSON object");
    json_decref(arr);
    assert_int_equal(rp_jobs_list(s, "sleeping", &jobs, &err), RP_EINVAL);
    assert_int_equal(rp_sched_handler(e, "Nope!", log_job, NULL, "test", &err), RP_EINVAL);
    rp_sched_free(e);
    rp_store_close(s);
}

static int fails_left;
static int flaky_job(rp_store_t *s, const rp_job_t *job, const rp_ctx_t *ctx, void *ud,
                     rp_error_t *err)
{
    /* It writes before failing: the write must not survive the failure. */
    json_t *f = J("{\"last_name\": \"From a job\"}");
    rp_store_create(s, ctx, "contact", f, NULL, err);
    json_decref(f);
    if (fails_left-- > 0)
        return rp_error_set(err, RP_EINVAL, 0, "gateway timeout (attempt %d)", job->attempts);
    return 0;
}

static void test_job_backoff_dead_and_retry(void **state)
{
    (void)state;
    rp_store_t *s = test_open_crm();
    int64_t t0 = 1767225600000;
    rp_sched_t *e = engine(s, t0);
    rp_error_t err = {0};
    assert_int_equal(rp_sched_handler(e, "flaky", flaky_job, NULL, "test", &err), 0);
    fails_left = 1;
    schedule(s, "flaky", 1, t0, NULL);
    int did = 0;
    assert_int_equal(rp_sched_run_due(e, &did, &err), 0);
    assert_int_equal(did, 0);
    json_t *jobs = NULL;
    assert_int_equal(rp_jobs_list(s, "pending", &jobs, &err), 0);
    json_t *j = json_array_get(jobs, 0);
    assert_int_equal(json_integer_value(json_object_get(j, "attempts")), 1);
    assert_contains(json_string_value(json_object_get(j, "error")), "gateway timeout");
    json_decref(jobs);
    int64_t n = -1;
    assert_int_equal(rp_store_count(s, "contact", NULL, true, &n, &err), 0);
    assert_int_equal(n, 0);
    /* The retry comes after the backoff (0.5–1 s for the first), not before. */
    assert_int_equal(rp_sched_advance(e, 400, &err), 0);
    assert_int_equal(rp_store_count(s, "contact", NULL, true, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(rp_sched_advance(e, 700, &err), 0);
    assert_int_equal(rp_store_count(s, "contact", NULL, true, &n, &err), 0);
    assert_int_equal(n, 1);

    /* Always failing: three attempts, then the dead letters; retry brings it back. */
    fails_left = 100;
    schedule(s, "flaky", 2, rp_sched_now(e), NULL);
    assert_int_equal(rp_sched_advance(e, 60000, &err), 0);
    assert_int_equal(rp_jobs_list(s, "dead", &jobs, &err), 0);
    assert_int_equal(json_array_size(jobs), 1);
    int64_t id = json_integer_value(json_object_get(json_array_get(jobs, 0), "id"));
    assert_int_equal(json_integer_value(json_object_get(json_array_get(jobs, 0), "attempts")), 3);
    json_decref(jobs);
    fails_left = 0;
    assert_int_equal(rp_jobs_retry(s, id, &err), 0);
    assert_int_equal(rp_jobs_retry(s, id, &err), RP_ENOTFOUND);
    assert_int_equal(rp_sched_run_due(e, &did, &err), 0);
    assert_int_equal(did, 1);
    assert_int_equal(rp_store_count(s, "contact", NULL, true, &n, &err), 0);
    assert_int_equal(n, 2);

    /* A job nobody handles fails with a message that names it. */
    schedule(s, "nobody.home", 0, rp_sched_now(e), NULL);
    assert_int_equal(rp_sched_advance(e, 60000, &err), 0);
    assert_int_equal(rp_jobs_list(s, "dead", &jobs, &err), 0);
    assert_contains(json_string_value(json_object_get(json_array_get(jobs, 0), "error")),
                    "no handler is registered for job \"nobody.home\"");
    json_decref(jobs);
    rp_sched_free(e);
    rp_store_close(s);
}

static void test_cron_and_catch_up(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    int64_t t0 = 1767225600000; /* 2026-01-01T00:00Z, a Thursday */
    rp_sched_t *e = engine(s, t0);
    rp_error_t err = {0};
    assert_int_equal(rp_sched_handler(e, "tick", log_job, NULL, "test", &err), 0);
    json_t *p = J("{\"n\": 0}");
    assert_int_equal(rp_sched_every(e, "hourly", "0 * * * *", NULL, "tick", p, &err), 0);
    assert_int_equal(rp_sched_every(e, "bad", "61 * * * *", NULL, "tick", p, &err), RP_EINVAL);
    assert_contains(err.msg, "minute");
    run_log[0] = '\0';
    assert_int_equal(rp_sched_advance(e, 5 * H + 1, &err), 0);
    assert_string_equal(run_log, "tick:0,tick:0,tick:0,tick:0,tick:0");
    rp_sched_free(e);

    /* Downtime: three days pass with no engine; on start the schedule fires once. */
    e = engine(s, t0 + 3 * 24 * H + 30 * 60000);
    assert_int_equal(rp_sched_handler(e, "tick", log_job, NULL, "test", &err), 0);
    assert_int_equal(rp_sched_every(e, "hourly", "0 * * * *", NULL, "tick", p, &err), 0);
    run_log[0] = '\0';
    assert_int_equal(rp_sched_run_due(e, NULL, &err), 0);
    assert_string_equal(run_log, "tick:0");
    assert_int_equal(rp_sched_advance(e, 29 * 60000, &err), 0);
    assert_string_equal(run_log, "tick:0");
    assert_int_equal(rp_sched_advance(e, 2 * 60000, &err), 0);
    assert_string_equal(run_log, "tick:0,tick:0");
    json_decref(p);
    rp_sched_free(e);
    rp_store_close(s);
}

/* ---- event dispatch ----------------------------------------------------------------------- */

static char seen_a[1024], seen_b[1024];
static int fail_b;
static int sub_a(rp_store_t *s, const rp_event_t *ev, const rp_ctx_t *ctx, void *ud,
                 rp_error_t *err)
{
    size_t n = strlen(seen_a);
    snprintf(seen_a + n, sizeof seen_a - n, "%s%lld", n ? "," : "", (long long)ev->record_id);
    return 0;
}
static int sub_b(rp_store_t *s, const rp_event_t *ev, const rp_ctx_t *ctx, void *ud,
                 rp_error_t *err)
{
    if (fail_b > 0) {
        fail_b--;
        return rp_error_set(err, RP_EINVAL, 0, "b is down");
    }
    size_t n = strlen(seen_b);
    snprintf(seen_b + n, sizeof seen_b - n, "%s%lld", n ? "," : "", (long long)ev->record_id);
    /* A handler may schedule work: a follow-up one day later. */
    json_t *p = json_pack("{s:I}", "n", (json_int_t)ev->record_id);
    int rc = rp_jobs_schedule(s, ctx, "follow_up", p, rp_store_now(s) + 24 * H, NULL, NULL, err);
    json_decref(p);
    return rc;
}

static void test_dispatch_in_order_and_isolated(void **state)
{
    (void)state;
    rp_store_t *s = test_open_crm();
    int64_t t0 = 1767225600000;
    rp_sched_t *e = engine(s, t0);
    rp_error_t err = {0};
    seen_a[0] = seen_b[0] = run_log[0] = '\0';
    assert_int_equal(rp_sched_subscribe(e, "a", "contact.created", false, sub_a, NULL, "test",
                                        &err), 0);
    assert_int_equal(rp_sched_subscribe(e, "b", "contact.created", false, sub_b, NULL, "test",
                                        &err), 0);
    assert_int_equal(rp_sched_handler(e, "follow_up", log_job, NULL, "test", &err), 0);
    fail_b = 2;
    for (int i = 0; i < 3; i++)
        create(s, "contact", "{\"last_name\": \"Dispatch\"}");
    assert_int_equal(rp_sched_run_due(e, NULL, &err), 0);
    /* a got everything in order; b failed and holds back only itself. */
    assert_string_equal(seen_a, "1,2,3");
    assert_string_equal(seen_b, "");
    assert_int_equal(rp_sched_advance(e, 10000, &err), 0);
    assert_string_equal(seen_b, "1,2,3");
    assert_string_equal(run_log, "");
    assert_int_equal(rp_sched_advance(e, 24 * H, &err), 0);
    assert_string_equal(run_log, "follow_up:1,follow_up:2,follow_up:3");
    rp_sched_free(e);
    rp_store_close(s);
}

/* ---- two engines, one database ------------------------------------------------------------ */

static int record_run(rp_store_t *s, const rp_job_t *job, const rp_ctx_t *ctx, void *ud,
                      rp_error_t *err)
{
    json_t *f = json_pack("{s:I,s:s}", "job_id", (json_int_t)job->id, "runner", (char *)ud);
    int rc = rp_store_create(s, ctx, "run", f, NULL, err);
    json_decref(f);
    return rc;
}

static void worker(const char *path, const char *name)
{
    rp_store_t *s = NULL;
    rp_error_t err = {0};
    if (rp_store_open(path, NULL, &s, &err))
        _exit(10);
    rp_sched_opts_t o = {.owner = name};
    rp_sched_t *e = rp_sched_new(s, &o);
    rp_sched_handler(e, "work", record_run, (void *)name, "test", &err);
    for (int idle = 0; idle < 20;) {
        int did = 0;
        if (rp_sched_run_due(e, &did, &err))
            _exit(11);
        idle = did ? 0 : idle + 1;
        usleep(1000);
    }
    rp_sched_free(e);
    rp_store_close(s);
    _exit(0);
}

static void test_two_engines_never_run_a_job_twice(void **state)
{
    (void)state;
    char dir[64], path[256];
    test_tmpdb(dir, path, "two.db");
    rp_store_t *s = NULL;
    rp_error_t err = {0};
    assert_int_equal(rp_store_open(path, NULL, &s, &err), 0);
    define(s, "run", "{\"fields\": {\"job_id\": {\"type\": \"integer\", \"unique\": true},"
                     " \"runner\": {\"type\": \"text\"}}}");
    int64_t now = rp_store_now(s);
    for (int i = 0; i < 400; i++)
        schedule(s, "work", i, now, NULL);
    rp_store_close(s);
    pid_t a = fork();
    if (a == 0)
        worker(path, "engine-a");
    pid_t b = fork();
    if (b == 0)
        worker(path, "engine-b");
    int sa, sb;
    waitpid(a, &sa, 0);
    waitpid(b, &sb, 0);
    assert_true(WIFEXITED(sa) && WEXITSTATUS(sa) == 0);
    assert_true(WIFEXITED(sb) && WEXITSTATUS(sb) == 0);
    assert_int_equal(rp_store_open(path, NULL, &s, &err), 0);
    int64_t n = 0, na = 0;
    assert_int_equal(rp_store_count(s, "run", NULL, true, &n, &err), 0);
    assert_int_equal(n, 400); /* job_id is unique: a second run would have failed, not added */
    json_t *w = J("{\"runner\": \"engine-a\"}");
    assert_int_equal(rp_store_count(s, "run", w, true, &na, &err), 0);
    json_decref(w);
    printf("engine-a ran %lld jobs, engine-b %lld\n", (long long)na, (long long)(n - na));
    json_t *jobs = NULL;
    assert_int_equal(rp_jobs_list(s, NULL, &jobs, &err), 0);
    assert_int_equal(json_array_size(jobs), 0);
    json_decref(jobs);
    rp_store_close(s);
    test_rmdir(dir);
}

/* ---- SIGKILL in the middle of a job ------------------------------------------------------- */

static int hang_after_write(rp_store_t *s, const rp_job_t *job, const rp_ctx_t *ctx, void *ud,
                            rp_error_t *err)
{
    int rc = record_run(s, job, ctx, ud, err);
    if (rc)
        return rc;
    if (ud && strcmp(ud, "doomed") == 0) {
        /* Tell the parent we are mid-job, then wait to be killed. */
        if (write(3, "x", 1) != 1)
            _exit(12);
        for (;;)
            pause();
    }
    return 0;
}

static void test_sigkill_mid_job_runs_again_once(void **state)
{
    (void)state;
    char dir[64], path[256];
    test_tmpdb(dir, path, "kill.db");
    rp_store_t *s = NULL;
    rp_error_t err = {0};
    assert_int_equal(rp_store_open(path, NULL, &s, &err), 0);
    define(s, "run", "{\"fields\": {\"job_id\": {\"type\": \"integer\", \"unique\": true},"
                     " \"runner\": {\"type\": \"text\"}}}");
    int64_t t0 = rp_store_now(s);
    schedule(s, "charge", 1, t0, "charge:invoice:1");
    rp_store_close(s);

    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 3);
        rp_store_t *cs = NULL;
        rp_error_t cerr = {0};
        if (rp_store_open(path, NULL, &cs, &cerr))
            _exit(10);
        rp_sched_opts_t o = {.owner = "doomed", .lease_ms = 60000};
        rp_sched_t *e = rp_sched_new(cs, &o);
        rp_sched_handler(e, "charge", hang_after_write, "doomed", "test", &cerr);
        rp_sched_run_due(e, NULL, &cerr);
        _exit(13);
    }
    close(fds[1]);
    char c;
    assert_int_equal(read(fds[0], &c, 1), 1); /* the job is mid-run */
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFSIGNALED(st));
    close(fds[0]);

    /* The job is still claimed by the dead engine; once its lease runs out another runs it. */
    assert_int_equal(rp_store_open(path, NULL, &s, &err), 0);
    int64_t n = -1;
    assert_int_equal(rp_store_count(s, "run", NULL, true, &n, &err), 0);
    assert_int_equal(n, 0); /* the half-run's write died with it */
    rp_sched_t *e = engine(s, t0 + 30000);
    assert_int_equal(rp_sched_handler(e, "charge", hang_after_write, "survivor", "test", &err),
                     0);
    assert_int_equal(rp_sched_run_due(e, NULL, &err), 0);
    assert_int_equal(rp_store_count(s, "run", NULL, true, &n, &err), 0);
    assert_int_equal(n, 0); /* lease not yet expired */
    assert_int_equal(rp_sched_advance(e, 31000, &err), 0);
    assert_int_equal(rp_store_count(s, "run", NULL, true, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(rp_sched_advance(e, 3600000, &err), 0);
    assert_int_equal(rp_store_count(s, "run", NULL, true, &n, &err), 0);
    assert_int_equal(n, 1); /* once, not twice */
    rp_sched_free(e);
    rp_store_close(s);
    test_rmdir(dir);
}

/* A handler that cancels a job and then fails: the cancel is undone with the rest. */
static int cancel_then_fail(rp_store_t *s, const rp_event_t *ev, const rp_ctx_t *ctx, void *ud,
                            rp_error_t *err)
{
    rp_jobs_cancel(s, "keep-me", NULL);
    return rp_error_set(err, RP_EINVAL, 0, "failed after cancelling");
}

static void test_handler_writes_roll_back_and_names_are_owned(void **state)
{
    (void)state;
    rp_store_t *s = test_open_crm();
    rp_sched_t *e = engine(s, 1767225600000);
    rp_error_t err = {0};
    schedule(s, "remind", 1, 1767225600000 + H, "keep-me");
    assert_int_equal(rp_sched_subscribe(e, "canceller", "contact.created", false,
                                        cancel_then_fail, NULL, "a", &err), 0);
    create(s, "contact", "{\"last_name\": \"X\"}");
    assert_int_equal(rp_sched_run_due(e, NULL, &err), 0);
    json_t *jobs = NULL;
    assert_int_equal(rp_jobs_list(s, "pending", &jobs, &err), 0);
    assert_int_equal(json_array_size(jobs), 1);
    json_decref(jobs);
    /* Another owner cannot take the subscriber or a job handler over. */
    assert_int_equal(rp_sched_subscribe(e, "canceller", NULL, false, cancel_then_fail, NULL,
                                        "b", &err), RP_ECONFLICT);
    assert_contains(err.msg, "already registered by a");
    assert_int_equal(rp_sched_handler(e, "remind", log_job, NULL, "a", &err), 0);
    assert_int_equal(rp_sched_handler(e, "remind", log_job, NULL, "b", &err), RP_ECONFLICT);
    assert_int_equal(rp_sched_handler(e, "remind", log_job, NULL, "a#2", &err), 0);
    rp_sched_free(e);
    rp_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delays),
        cmocka_unit_test(test_jobs_due_order_keys_cancel),
        cmocka_unit_test(test_job_backoff_dead_and_retry),
        cmocka_unit_test(test_cron_and_catch_up),
        cmocka_unit_test(test_dispatch_in_order_and_isolated),
        cmocka_unit_test(test_two_engines_never_run_a_job_twice),
        cmocka_unit_test(test_sigkill_mid_job_runs_again_once),
        cmocka_unit_test(test_handler_writes_roll_back_and_names_are_owned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
