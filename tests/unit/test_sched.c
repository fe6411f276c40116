/*
 * test_sched.c — time: delays, durable jobs on a virtual clock (due order, keys, cancel,
 * backoff, dead letters), cron schedules and catch-up after downtime, event dispatch, two
 * engines claiming from one database, a SIGKILL in the middle of a job or a batch, the jobs
 * of a dead engine put back at once, handler writes that roll back, and the serve loop's log
 * kept bounded. How jobs are claimed and numbered: test_sched_batches.c.
 */
#include <limits.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "rapport/db.h"
#include "sched_helpers.h"

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

/* A pass that finds every subscriber idle lets the next skip them, until anything is committed
 * (here or by another connection) or one of their retries falls due: each of those is
 * delivered at the next pass all the same. */
static int quiet_seen, quiet_fail;
static int quiet_sub(rp_store_t *s, const rp_event_t *ev, const rp_ctx_t *ctx, void *ud,
                     rp_error_t *err)
{
    (void)s, (void)ev, (void)ctx, (void)ud;
    if (quiet_fail > 0) {
        quiet_fail--;
        snprintf(err->msg, sizeof err->msg, "not now");
        return -1;
    }
    quiet_seen++;
    return 0;
}

static void emit_one(rp_store_t *s, const char *type)
{
    rp_error_t err = {0};
    assert_int_equal(rp_store_begin(s, &err), 0);
    assert_int_equal(rp_events_emit(s, NULL, type, NULL, 1, NULL, NULL, &err), 0);
    assert_int_equal(rp_store_commit(s, &err), 0);
}

static void test_idle_subscribers_are_skipped_until_something_changes(void **state)
{
    (void)state;
    char dir[64], path[256];
    test_tmpdb(dir, path, "quiet.db");
    rp_store_t *s = NULL, *other = NULL;
    rp_error_t err = {0};
    assert_int_equal(rp_store_open(path, NULL, &s, &err), 0);
    assert_int_equal(rp_store_open(path, NULL, &other, &err), 0);
    int64_t t0 = 1767225600000;
    rp_sched_t *e = engine(s, t0);
    quiet_seen = quiet_fail = 0;
    assert_int_equal(rp_sched_subscribe(e, "quiet", "deal.*", false, quiet_sub, NULL, "test",
                                        &err), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(rp_sched_run_due(e, NULL, &err), 0);
        assert_true(rp_sched_next_due(e) == INT64_MAX);
    }
    /* Another connection's commit. */
    emit_one(other, "deal.updated");
    assert_int_equal(rp_sched_run_due(e, NULL, &err), 0);
    assert_int_equal(quiet_seen, 1);
    assert_true(rp_sched_next_due(e) == INT64_MAX);
    /* This connection's own; and one the subscriber does not take changes nothing for it. */
    emit_one(s, "contact.updated");
    assert_true(rp_sched_next_due(e) == INT64_MAX);
    emit_one(s, "deal.won");
    assert_int_equal(rp_sched_run_due(e, NULL, &err), 0);
    assert_int_equal(quiet_seen, 2);
    /* A failure's retry falls due while nothing is committed: it is delivered on time. */
    quiet_fail = 1;
    emit_one(other, "deal.lost");
    assert_int_equal(rp_sched_run_due(e, NULL, &err), 0);
    assert_int_equal(quiet_seen, 2);
    int64_t retry = rp_sched_next_due(e);
    assert_true(retry > t0 && retry < INT64_MAX);
    assert_int_equal(rp_sched_run_due(e, NULL, &err), 0);
    assert_true(rp_sched_next_due(e) == retry);
    assert_int_equal(rp_sched_advance(e, retry - t0, &err), 0);
    assert_int_equal(quiet_seen, 3);
    assert_true(rp_sched_next_due(e) == INT64_MAX);
    /* A subscriber added later starts from the beginning, quiet or not. */
    assert_int_equal(rp_sched_subscribe(e, "late", "deal.*", false, quiet_sub, NULL, "test",
                                        &err), 0);
    assert_int_equal(rp_sched_run_due(e, NULL, &err), 0);
    assert_int_equal(quiet_seen, 6);
    rp_sched_free(e);
    rp_store_close(other);
    rp_store_close(s);
    test_rmdir(dir);
}

/* ---- two engines, one database ------------------------------------------------------------ */

/* A store at @p path with the entity "run" that record_run writes, one per job run (job_id is
 * unique: a second run of a job fails instead of adding a row). */
static rp_store_t *run_store(const char *path)
{
    rp_store_t *s = NULL;
    rp_error_t err = {0};
    if (rp_store_open(path, NULL, &s, &err))
        fail_msg("open %s: %s", path, err.msg);
    define(s, "run", "{\"fields\": {\"job_id\": {\"type\": \"integer\", \"unique\": true},"
                     " \"runner\": {\"type\": \"text\"}}}");
    return s;
}

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
    rp_store_t *s = run_store(path);
    rp_error_t err = {0};
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

/* Runs the due jobs at @p path in a child engine (owner @p owner, NULL for this machine's, and
 * a lease of @p lease_ms), job @p job handled by @p fn with "doomed" as its data; @p fn writes a
 * byte to descriptor 3 once it is mid-run, and the child is killed with SIGKILL then. Returns the
 * dead child's pid. */
static pid_t kill_mid_job(const char *path, const char *owner, int64_t lease_ms, const char *job,
                          rp_job_fn fn)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
        close(fds[0]);
        dup2(fds[1], 3);
        rp_store_t *cs = NULL;
        rp_error_t cerr = {0};
        if (rp_store_open(path, NULL, &cs, &cerr))
            _exit(10);
        rp_sched_opts_t o = {.owner = owner, .lease_ms = lease_ms};
        rp_sched_t *e = rp_sched_new(cs, &o);
        rp_sched_handler(e, job, fn, "doomed", "test", &cerr);
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
    return pid;
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
    rp_store_t *s = run_store(path);
    rp_error_t err = {0};
    int64_t t0 = rp_store_now(s);
    schedule(s, "charge", 1, t0, "charge:invoice:1");
    rp_store_close(s);

    kill_mid_job(path, "doomed", 60000, "charge", hang_after_write);

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

/* A batch of first tries whose third job kills the engine: every job of the batch is charged
 * one attempt and runs again alone, once in effect; none is dead-lettered for the other's
 * sake. */
static int batch_attempts[8];
static int hang_on_third(rp_store_t *s, const rp_job_t *job, const rp_ctx_t *ctx, void *ud,
                         rp_error_t *err)
{
    json_t *p = json_loads(job->payload, 0, NULL);
    int n = (int)json_integer_value(json_object_get(p, "n"));
    json_decref(p);
    if (n >= 0 && n < 8)
        batch_attempts[n] = job->attempts;
    int rc = record_run(s, job, ctx, ud, err);
    if (rc)
        return rc;
    if (strcmp(ud, "doomed") == 0 && n == 2) {
        if (write(3, "x", 1) != 1)
            _exit(12);
        for (;;)
            pause();
    }
    return count_running(s, job, ctx, NULL, err);
}

static void test_sigkill_mid_batch_charges_each_once(void **state)
{
    (void)state;
    char dir[64], path[256];
    test_tmpdb(dir, path, "batch.db");
    rp_store_t *s = run_store(path);
    rp_error_t err = {0};
    int64_t t0 = rp_store_now(s);
    for (int i = 0; i < 5; i++)
        schedule(s, "step", i, t0, NULL);
    rp_store_close(s);
    /* This machine's owner (NULL): judged by its pid. */
    kill_mid_job(path, NULL, 60000, "step", hang_on_third);

    assert_int_equal(rp_store_open(path, NULL, &s, &err), 0);
    int64_t n = -1;
    assert_int_equal(rp_store_count(s, "run", NULL, true, &n, &err), 0);
    assert_int_equal(n, 0); /* the batch's writes died with it, the first two jobs' too */
    rp_sched_t *e = engine(s, t0 + 30000);
    assert_int_equal(rp_sched_handler(e, "step", hang_on_third, "survivor", "test", &err), 0);
    most_running = 0;
    memset(batch_attempts, 0, sizeof batch_attempts);
    /* The dead engine's jobs are put back at once (its pid is gone), then run. */
    assert_int_equal(rp_sched_run_due(e, NULL, &err), 0);
    assert_int_equal(rp_store_count(s, "run", NULL, true, &n, &err), 0);
    assert_int_equal(n, 5);
    assert_int_equal(most_running, 1); /* tried before: each alone now */
    for (int i = 0; i < 5; i++)
        assert_int_equal(batch_attempts[i], 2); /* charged once for the batch, once now */
    json_t *jobs = NULL;
    assert_int_equal(rp_jobs_list(s, NULL, &jobs, &err), 0);
    assert_int_equal(json_array_size(jobs), 0); /* none dead, none left */
    json_decref(jobs);
    rp_sched_free(e);
    rp_store_close(s);
    test_rmdir(dir);
}

/* ---- engines that died holding jobs --------------------------------------------------------- */

/* Log lines of an engine, kept for the assertions. */
static char said[8192];
static void keep_log(void *ud, const char *level, const char *component, const char *msg)
{
    size_t n = strlen(said);
    snprintf(said + n, sizeof said - n, "%s %s %s\n", level, component, msg);
}

static void test_sigkill_with_default_owner_is_reclaimed_at_once(void **state)
{
    (void)state;
    char dir[64], path[256];
    test_tmpdb(dir, path, "killed.db");
    rp_store_t *s = run_store(path);
    rp_error_t err = {0};
    int64_t t0 = rp_store_now(s), id = 0;
    assert_int_equal(rp_jobs_schedule(s, &test_ctx, "charge", NULL, t0, "charge:invoice:1", &id,
                                      &err), 0);
    rp_store_close(s);

    /* The default owner, and a lease of an hour: only the pid can free the job early. */
    pid_t pid = kill_mid_job(path, NULL, H, "charge", hang_after_write);

    assert_int_equal(rp_store_open(path, NULL, &s, &err), 0);
    said[0] = '\0';
    rp_sched_opts_t o = {.virtual_clock = true, .start_ms = t0, .log = keep_log};
    rp_sched_t *e = rp_sched_new(s, &o);
    assert_int_equal(rp_sched_handler(e, "charge", hang_after_write, "survivor", "test", &err),
                     0);
    /* No time passes: the first pass finds the owner gone and runs the job. */
    assert_int_equal(rp_sched_run_due(e, NULL, &err), 0);
    int64_t n = -1;
    assert_int_equal(rp_store_count(s, "run", NULL, true, &n, &err), 0);
    assert_int_equal(n, 1);
    char want[64];
    snprintf(want, sizeof want, ":%ld:", (long)pid);
    assert_contains(said, "warn sched reclaimed the jobs of a stopped engine owner=");
    assert_contains(said, want);
    snprintf(want, sizeof want, "jobs=%lld:charge", (long long)id);
    assert_contains(said, want);
    json_t *jobs = NULL;
    assert_int_equal(rp_jobs_list(s, NULL, &jobs, &err), 0);
    assert_int_equal(json_array_size(jobs), 0);
    json_decref(jobs);
    assert_int_equal(rp_sched_advance(e, 2 * H, &err), 0);
    assert_int_equal(rp_store_count(s, "run", NULL, true, &n, &err), 0);
    assert_int_equal(n, 1); /* once, not twice */
    rp_sched_free(e);
    rp_store_close(s);
    test_rmdir(dir);
}

static int64_t schedule_id(rp_store_t *s, const char *name, int n, int64_t due, const char *key)
{
    json_t *p = json_pack("{s:i}", "n", n);
    rp_error_t err = {0};
    int64_t id = 0;
    if (rp_jobs_schedule(s, &test_ctx, name, p, due, key, &id, &err))
        fail_msg("schedule %s: %s", name, err.msg);
    json_decref(p);
    return id;
}

/* Marks job @p id claimed by @p owner until @p lease_until, on a connection of its own. */
static void fake_claim(const char *path, int64_t id, const char *owner, int64_t lease_until,
                       int attempts)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_prepare_v2(db, "UPDATE rp_jobs SET state = 'running', owner = ?,"
                                            " lease_until = ?, attempts = ? WHERE id = ?",
                                        -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, lease_until);
    sqlite3_bind_int(st, 3, attempts);
    sqlite3_bind_int64(st, 4, id);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    assert_int_equal(sqlite3_changes(db), 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* @p self with its pid (and start time) replaced: "<host>:<pid>:<start>:<rest>". */
static void owner_with(char *out, size_t cap, const char *self, long pid, const char *start)
{
    const char *c1 = strchr(self, ':'), *c2 = strchr(c1 + 1, ':'), *c3 = strchr(c2 + 1, ':');
    if (start)
        snprintf(out, cap, "%.*s:%ld:%s%s", (int)(c1 - self), self, pid, start, c3);
    else
        snprintf(out, cap, "%.*s:%ld%s", (int)(c1 - self), self, pid, c2);
}

static const char *job_state(rp_store_t *s, int64_t id, const char **error)
{
    static char buf[64], ebuf[512];
    json_t *jobs = NULL;
    rp_error_t err = {0};
    assert_int_equal(rp_jobs_list(s, NULL, &jobs, &err), 0);
    snprintf(buf, sizeof buf, "gone");
    ebuf[0] = '\0';
    size_t i;
    json_t *j;
    json_array_foreach(jobs, i, j) {
        if (json_integer_value(json_object_get(j, "id")) != id)
            continue;
        snprintf(buf, sizeof buf, "%s", json_string_value(json_object_get(j, "state")));
        const char *e = json_string_value(json_object_get(j, "error"));
        snprintf(ebuf, sizeof ebuf, "%s", e ? e : "");
    }
    json_decref(jobs);
    if (error)
        *error = ebuf;
    return buf;
}

static void test_owners_are_judged_by_pid_here_and_by_lease_elsewhere(void **state)
{
    (void)state;
    char dir[64], path[256];
    test_tmpdb(dir, path, "owners.db");
    rp_store_t *s = NULL;
    rp_error_t err = {0};
    assert_int_equal(rp_store_open(path, NULL, &s, &err), 0);
    int64_t t0 = rp_store_now(s);
    said[0] = '\0';
    rp_sched_opts_t o = {.virtual_clock = true, .start_ms = t0, .log = keep_log,
                         .retry = {.max_attempts = 3, .base_ms = 1000}};
    rp_sched_t *e = rp_sched_new(s, &o);
    assert_int_equal(rp_sched_handler(e, "remind", log_job, NULL, "test", &err), 0);
    const char *self = rp_sched_owner(e);

    /* A pid that was ours a moment ago and is no more. */
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    waitpid(dead, NULL, 0);
    /* A live engine of this machine: a child that tells its owner name and waits. */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t live = fork();
    if (live == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
        close(fds[0]);
        rp_store_t *cs = NULL;
        if (rp_store_open(":memory:", NULL, &cs, NULL))
            _exit(10);
        rp_sched_t *ce = rp_sched_new(cs, NULL);
        const char *me = rp_sched_owner(ce);
        if (write(fds[1], me, strlen(me) + 1) != (ssize_t)strlen(me) + 1)
            _exit(11);
        for (;;)
            pause();
    }
    close(fds[1]);
    char live_owner[200] = "";
    assert_true(read(fds[0], live_owner, sizeof live_owner - 1) > 0);
    close(fds[0]);

    char gone_owner[200], recycled[200], legacy[64];
    owner_with(gone_owner, sizeof gone_owner, self, (long)dead, NULL);
    owner_with(recycled, sizeof recycled, self, (long)getpid(), "12345");
    snprintf(legacy, sizeof legacy, "pid:%ld", (long)dead);
    const char *remote = "elsewhere:4242:918273:0badcafe:4026531836";
    int64_t lease = t0 + H;
    int64_t a = schedule_id(s, "remind", 1, t0 - 5000, NULL);
    int64_t b = schedule_id(s, "remind", 2, t0 - 4000, NULL);
    int64_t c = schedule_id(s, "remind", 3, t0 - 3000, NULL);
    int64_t d = schedule_id(s, "remind", 4, t0 - 2000, NULL);
    int64_t l = schedule_id(s, "remind", 5, t0 - 1000, NULL);
    int64_t f = schedule_id(s, "remind", 6, t0 - 500, NULL);
    int64_t g = schedule_id(s, "remind", 7, t0 - 400, "follow:7");
    fake_claim(path, a, gone_owner, lease, 1);
    fake_claim(path, b, recycled, lease, 1);
    fake_claim(path, c, live_owner, lease, 1);
    fake_claim(path, d, remote, lease, 1);
    fake_claim(path, l, legacy, lease, 1);
    fake_claim(path, f, gone_owner, lease, 3); /* its last attempt killed its engine */
    fake_claim(path, g, gone_owner, lease, 1);
    int64_t g2 = schedule_id(s, "remind", 8, t0 + 1000, "follow:7"); /* moved meanwhile */

    run_log[0] = '\0';
    assert_int_equal(rp_sched_run_due(e, NULL, &err), 0);
    /* The dead pid's and the recycled pid's jobs ran at once, in due order; nothing else. */
    assert_string_equal(run_log, "remind:1,remind:2");
    assert_string_equal(job_state(s, c, NULL), "running");
    assert_string_equal(job_state(s, d, NULL), "running");
    assert_string_equal(job_state(s, l, NULL), "running");
    const char *why = NULL;
    assert_string_equal(job_state(s, f, &why), "dead");
    assert_contains(why, "stopped while running it (attempt 3)");
    assert_string_equal(job_state(s, g, NULL), "gone");    /* superseded by g2 */
    assert_string_equal(job_state(s, g2, NULL), "pending");
    char want[300];
    snprintf(want, sizeof want, "reclaimed the jobs of a stopped engine owner=%s jobs=%lld:remind",
             gone_owner, (long long)a);
    assert_contains(said, want);
    snprintf(want, sizeof want, "superseded=%lld:remind", (long long)g);
    assert_contains(said, want);
    snprintf(want, sizeof want, "error sched job dead: its engine stopped while running it on its "
             "last attempt owner=%s jobs=%lld:remind", gone_owner, (long long)f);
    assert_contains(said, want);
    rp_sched_free(e);

    /* The live engine dies: the next engine to start runs its job at once. */
    kill(live, SIGKILL);
    waitpid(live, NULL, 0);
    e = rp_sched_new(s, &o);
    assert_int_equal(rp_sched_handler(e, "remind", log_job, NULL, "test", &err), 0);
    run_log[0] = '\0';
    assert_int_equal(rp_sched_run_due(e, NULL, &err), 0);
    assert_string_equal(run_log, "remind:3");
    /* Owners judged from afar wait for their lease. */
    assert_int_equal(rp_sched_advance(e, H + 1, &err), 0);
    assert_string_equal(run_log, "remind:3,remind:8,remind:4,remind:5");
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

/* The serve loop's log: each job writes a record with 2 KB of text, a steady stream of writes
 * (1,000 a second for 3 s); the last job stops the serve. */
typedef struct {
    int ran, want;
    rp_sched_t *e;
} stream_t;

static int write_text(rp_store_t *s, const rp_job_t *job, const rp_ctx_t *ctx, void *ud,
                      rp_error_t *err)
{
    stream_t *st = ud;
    char text[2049];
    memset(text, 'x', 2048);
    text[2048] = 0;
    json_t *f = json_pack("{s:I,s:s}", "job_id", (json_int_t)job->id, "runner", text);
    int rc = rp_store_create(s, ctx, "run", f, NULL, err);
    json_decref(f);
    if (++st->ran >= st->want)
        rp_sched_stop(st->e);
    return rc;
}

/* Serves that stream; gives the size of the -wal file at the end and how many times the log
 * was started over (the checkpoint sequence in its header, bytes 12-15, counts each). */
static void serve_stream(const char *path, int restart_pages, long *size, unsigned *restarts)
{
    rp_store_t *s = run_store(path);
    rp_error_t err = {0};
    rp_sched_opts_t o = {.wal_restart_pages = restart_pages};
    rp_sched_t *e = rp_sched_new(s, &o);
    stream_t st = {.want = 3000, .e = e};
    assert_int_equal(rp_sched_handler(e, "text", write_text, &st, "test", &err), 0);
    int64_t now = rp_sched_now(e);
    assert_int_equal(rp_store_begin(s, &err), 0);
    for (int i = 0; i < st.want; i++)
        assert_int_equal(rp_jobs_schedule(s, NULL, "text", NULL, now + i, NULL, NULL, &err), 0);
    assert_int_equal(rp_store_commit(s, &err), 0);
    assert_int_equal(rp_sched_serve(e, 1, NULL, NULL, &err), 0);
    assert_int_equal(st.ran, st.want);
    char wal[300];
    snprintf(wal, sizeof wal, "%s-wal", path);
    unsigned char head[16] = {0};
    FILE *f = fopen(wal, "rb");
    assert_non_null(f);
    assert_int_equal(fread(head, 1, sizeof head, f), sizeof head);
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    fclose(f);
    *restarts = (unsigned)head[12] << 24 | (unsigned)head[13] << 16 | (unsigned)head[14] << 8 |
                head[15];
    rp_sched_free(e);
    rp_store_close(s);
}

/* Under a steady stream of writes SQLite never starts its log over by itself: the serve loop
 * does, past wal_restart_pages, so the file stays near that size instead of holding every
 * write since the serve began. */
static void test_serve_keeps_the_log_bounded(void **state)
{
    (void)state;
    char dir[64], a[256], b[256];
    test_tmpdb(dir, a, "never.db");
    snprintf(b, sizeof b, "%s/bounded.db", dir);
    long never = 0, bounded = 0;
    unsigned never_restarts = 0, restarts = 0;
    serve_stream(a, INT_MAX, &never, &never_restarts);
    serve_stream(b, 256, &bounded, &restarts);
    print_message("log after 3,000 writes of 2 KB: %ld bytes and %u restarts left alone, %ld "
                  "bytes and %u restarts started over past 256 pages\n", never, never_restarts,
                  bounded, restarts);
    /* How large the file grows between two restarts depends on how fast this machine is at
     * the moment (a starved worker copies slowly), within twice the limit and one pass's
     * writes; that they happen does not (ASan and two CPU-bound processes beside: 8 MB and
     * 13 restarts against 42 MB and none). */
    assert_true(never > 8L << 20);
    assert_true(restarts >= 3);
    assert_true(bounded * 2 < never);
    test_rmdir(dir);
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
        cmocka_unit_test(test_idle_subscribers_are_skipped_until_something_changes),
        cmocka_unit_test(test_two_engines_never_run_a_job_twice),
        cmocka_unit_test(test_sigkill_mid_job_runs_again_once),
        cmocka_unit_test(test_sigkill_with_default_owner_is_reclaimed_at_once),
        cmocka_unit_test(test_owners_are_judged_by_pid_here_and_by_lease_elsewhere),
        cmocka_unit_test(test_sigkill_mid_batch_charges_each_once),
        cmocka_unit_test(test_handler_writes_roll_back_and_names_are_owned),
        cmocka_unit_test(test_serve_keeps_the_log_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
