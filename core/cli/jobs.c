/*
 * jobs.c — the engine and its jobs: `rapport serve` runs the engine (rapport/engine.h);
 * `rapport jobs` lists, retries, cancels, adds and schedules durable jobs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapport/engine.h"
#include "rapport/settings.h"

#include "cli.h"

/* Runs the engine until a signal stops it: rp_engine_serve() with the flags given. */
int cmd_serve(cli_t *c, int argc, char **argv)
{
    const char *poll = flag_value(&argc, argv, "--poll-ms", NULL);
    if (poll == FLAG_MISSING)
        return usage_error("serve", "serve: --poll-ms needs a number");
    const char *listen = flag_value(&argc, argv, "--listen", NULL);
    if (listen == FLAG_MISSING)
        return usage_error("serve", "serve: --listen needs HOST:PORT (such as 127.0.0.1:8080)");
    if (reject_unknown_flags("serve", argc, argv))
        return EXIT_USAGE;
    if (argc != 1)
        return usage_error("serve", "serve takes no operands");
    int64_t poll_ms = 100;
    if (poll && !parse_id(poll, &poll_ms))
        return usage_error("serve", "--poll-ms needs a positive integer, not %s", poll);
    env_t env;
    if (env_open(c, &env, log_line))
        return EXIT_FAIL;
    rp_engine_serve_opts_t so = {.listen = listen, .poll_ms = (int)poll_ms};
    rp_error_t err = {0};
    int rc = rp_engine_serve(env.engine, &so, &err);
    if (rc && !strcmp(err.field, "listen"))
        rc = usage_error("serve", "serve: --listen: %s", err.msg);
    else if (rc)
        rc = fail("%s", err.msg);
    env_close(&env);
    return rc;
}

static int jobs_add(cli_t *c, int argc, char **argv)
{
    const char *in = flag_value(&argc, argv, "--in", NULL);
    const char *key = flag_value(&argc, argv, "--key", NULL);
    const char *payload = flag_value(&argc, argv, "--payload", NULL);
    if (in == FLAG_MISSING || key == FLAG_MISSING || payload == FLAG_MISSING)
        return usage_error("jobs", "jobs add: an option is missing its value");
    if (reject_unknown_flags("jobs", argc, argv))
        return EXIT_USAGE;
    if (argc != 2)
        return usage_error("jobs", "jobs add needs a job name");
    rp_error_t err = {0};
    int64_t delay = 0;
    if (in && rp_parse_delay(in, &delay, &err))
        return usage_error("jobs", "jobs add: --in: %s", err.msg);
    json_t *p = payload ? json_arg("jobs add", "--payload", payload) : NULL;
    if (payload && !p)
        return EXIT_FAIL;
    rp_store_t *s;
    int rc = open_store(c, false, &s);
    if (!rc) {
        int64_t id;
        if (rp_jobs_schedule(s, &c->ctx, argv[1], p, rp_store_now(s) + delay, key, &id, &err))
            rc = fail("%s", err.msg);
        else
            printf("scheduled job %lld (%s)\n", (long long)id, argv[1]);
        close_store(c, s);
    }
    json_decref(p);
    return rc;
}

/* jobs every NAME CRON JOB [--tz ZONE] [--payload JSON]; jobs schedules; jobs unschedule NAME */
static int jobs_every(cli_t *c, int argc, char **argv)
{
    const char *tz = flag_value(&argc, argv, "--tz", NULL);
    const char *payload = flag_value(&argc, argv, "--payload", NULL);
    if (tz == FLAG_MISSING || payload == FLAG_MISSING)
        return usage_error("jobs", "jobs every: an option is missing its value");
    if (reject_unknown_flags("jobs", argc, argv))
        return EXIT_USAGE;
    if (argc != 4)
        return usage_error("jobs", "jobs every needs a schedule name, a cron expression and a job "
                                   "name");
    if (!tz)
        tz = getenv("RAPPORT_TZ");
    if (tz && !*tz)
        tz = NULL;
    json_t *p = payload ? json_arg("jobs every", "--payload", payload) : NULL;
    if (payload && !p)
        return EXIT_FAIL;
    rp_store_t *s;
    int rc = open_store(c, false, &s);
    json_t *zone = NULL;
    if (!rc && !tz && rp_setting_get(s, "timezone", &zone, NULL) == 0)
        tz = json_string_value(zone); /* the installation's configured zone */
    if (!rc) {
        rp_error_t err = {0};
        rp_sched_t *e = rp_sched_new(s, NULL);
        if (!e || rp_sched_every(e, argv[1], argv[2], tz, argv[3], p, &err)) {
            rc = fail("%s", e ? err.msg : "out of memory");
        } else {
            json_t *all = NULL;
            if (rp_schedules_list(s, &all, &err) == 0) {
                size_t i;
                json_t *j;
                json_array_foreach(all, i, j) {
                    if (strcmp(json_string_value(json_object_get(j, "name")), argv[1]) == 0)
                        printf("schedule %s (%s %s) runs %s next at %s\n", argv[1], argv[2],
                               json_string_value(json_object_get(j, "tz")), argv[3],
                               json_string_value(json_object_get(j, "next_at")));
                }
            }
            json_decref(all);
        }
        rp_sched_free(e);
        close_store(c, s);
    }
    json_decref(zone);
    json_decref(p);
    return rc;
}

int cmd_jobs(cli_t *c, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "list";
    if (strcmp(sub, "add") == 0)
        return jobs_add(c, argc - 1, argv + 1);
    if (strcmp(sub, "every") == 0)
        return jobs_every(c, argc - 1, argv + 1);
    if (strcmp(sub, "schedules") == 0 || strcmp(sub, "unschedule") == 0) {
        bool list = sub[0] == 's';
        if (argc != (list ? 2 : 3))
            return usage_error("jobs", list ? "jobs schedules takes no arguments"
                                            : "jobs unschedule needs a schedule name");
        rp_store_t *s;
        if (open_store(c, false, &s))
            return EXIT_FAIL;
        rp_error_t err = {0};
        json_t *all = NULL;
        int rc = 0;
        if (list ? rp_schedules_list(s, &all, &err) : rp_schedules_remove(s, argv[2], &err))
            rc = fail("%s", err.msg);
        else if (list) {
            size_t i;
            json_t *j;
            json_array_foreach(all, i, j) print_json(j, false);
        } else
            printf("removed schedule %s\n", argv[2]);
        json_decref(all);
        close_store(c, s);
        return rc;
    }
    if (strcmp(sub, "list") && strcmp(sub, "dead") && strcmp(sub, "retry") &&
        strcmp(sub, "cancel"))
        return usage_error("jobs", "jobs: unknown subcommand \"%s\" (list, dead, retry, cancel, "
                                   "add, every, schedules, unschedule)", sub);
    bool takes_arg = !strcmp(sub, "retry") || !strcmp(sub, "cancel");
    if (argc != (takes_arg ? 3 : argc > 1 ? 2 : 1))
        return usage_error("jobs", "jobs %s %s", sub,
                           takes_arg ? "needs one argument" : "takes no arguments");
    int64_t id = 0;
    if (!strcmp(sub, "retry") && !parse_id(argv[2], &id))
        return usage_error("jobs", "jobs retry needs a job id");
    rp_store_t *s;
    if (open_store(c, false, &s))
        return EXIT_FAIL;
    rp_error_t err = {0};
    int rc = 0;
    if (!strcmp(sub, "retry")) {
        if (rp_jobs_retry(s, id, &err))
            rc = fail("%s", err.msg);
        else
            printf("job %lld is pending again\n", (long long)id);
    } else if (!strcmp(sub, "cancel")) {
        if (rp_jobs_cancel(s, argv[2], &err))
            rc = fail("%s", err.msg);
        else
            printf("cancelled the pending job with key %s\n", argv[2]);
    } else {
        json_t *jobs = NULL;
        if (rp_jobs_list(s, !strcmp(sub, "dead") ? "dead" : NULL, &jobs, &err)) {
            rc = fail("%s", err.msg);
        } else {
            size_t i;
            json_t *j;
            json_array_foreach(jobs, i, j) print_json(j, false);
        }
        json_decref(jobs);
    }
    close_store(c, s);
    return rc;
}
