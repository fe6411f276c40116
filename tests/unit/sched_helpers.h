/*
 * sched_helpers.h — what the scheduler's unit tests share: an engine on a virtual clock, a job
 * scheduled with payload {"n": N}, a handler that logs the jobs it runs, and one that counts
 * the jobs claimed while it runs.
 */
#ifndef RP_TEST_SCHED_HELPERS_H
#define RP_TEST_SCHED_HELPERS_H

#include "helpers.h"
#include "rapport/sched.h"

#ifndef RP_UNUSED
#define RP_UNUSED __attribute__((unused))
#endif

static const int64_t H RP_UNUSED = 3600000;

RP_UNUSED static rp_sched_t *engine(rp_store_t *s, int64_t start)
{
    rp_sched_opts_t o = {.virtual_clock = true, .start_ms = start,
                         .retry = {.max_attempts = 3, .base_ms = 1000}};
    rp_sched_t *e = rp_sched_new(s, &o);
    assert_non_null(e);
    return e;
}

/* A job handler that appends its name and payload "n" to a log. */
static char run_log[4096] RP_UNUSED;
RP_UNUSED static int log_job(rp_store_t *s, const rp_job_t *job, const rp_ctx_t *ctx, void *ud,
                             rp_error_t *err)
{
    json_t *p = json_loads(job->payload, 0, NULL);
    size_t n = strlen(run_log);
    snprintf(run_log + n, sizeof run_log - n, "%s%s:%lld", n ? "," : "", job->name,
             (long long)json_integer_value(json_object_get(p, "n")));
    json_decref(p);
    return 0;
}

RP_UNUSED static void schedule(rp_store_t *s, const char *name, int n, int64_t due,
                               const char *key)
{
    json_t *p = json_pack("{s:i}", "n", n);
    rp_error_t err = {0};
    if (rp_jobs_schedule(s, &test_ctx, name, p, due, key, NULL, &err))
        fail_msg("schedule %s: %s", name, err.msg);
    json_decref(p);
}

/* Counts the claimed (running) jobs while a job runs. */
static int most_running RP_UNUSED;
RP_UNUSED static int count_running(rp_store_t *s, const rp_job_t *job, const rp_ctx_t *ctx,
                                   void *ud, rp_error_t *err)
{
    json_t *jobs = NULL;
    if (rp_jobs_list(s, "running", &jobs, err))
        return -1;
    if ((int)json_array_size(jobs) > most_running)
        most_running = (int)json_array_size(jobs);
    json_decref(jobs);
    return 0;
}

#endif
