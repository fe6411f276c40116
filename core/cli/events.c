/*
 * events.c — `rapport events`: the event log's tail (and --follow), dead letters, and replaying
 * one.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rapport/access.h"
#include "rapport/events.h"

#include "cli.h"

static volatile sig_atomic_t stop_following;
static void on_stop(int sig)
{
    (void)sig;
    stop_following = 1;
}

static int events_tail(cli_t *c, int argc, char **argv)
{
    const char *nval = flag_value(&argc, argv, "-n", NULL);
    bool follow = false;
    flag_value(&argc, argv, "--follow", &follow);
    flag_value(&argc, argv, "-f", &follow);
    if (nval == FLAG_MISSING)
        return usage_error("events", "events tail: -n needs a number");
    if (reject_unknown_flags("events", argc, argv))
        return EXIT_USAGE;
    if (argc != 1)
        return usage_error("events", "events tail takes no operands");
    int64_t n = 10;
    if (nval && strcmp(nval, "0") != 0 && !parse_id(nval, &n))
        return usage_error("events", "events tail: -n needs a non-negative integer, not %s",
                           nval);
    if (nval && strcmp(nval, "0") == 0)
        n = 0;
    rp_store_t *s;
    if (open_store(c, false, &s))
        return EXIT_FAIL;
    enum { PAGE = 256 };
    rp_event_t evs[PAGE];
    rp_error_t err = {0};
    int64_t last = 0;
    int rc = 0;
    if (n > 0) {
        /* The newest n, oldest first, read in pages so n may be large. */
        int64_t start = rp_events_last_seq(s) - n;
        last = start > 0 ? start : 0;
    } else {
        last = rp_events_last_seq(s);
    }
    int64_t remaining = n;
    while (remaining > 0) {
        int got = rp_events_list(s, last, false, evs, remaining < PAGE ? (int)remaining : PAGE,
                                 &err);
        if (got < 0) {
            rc = fail("%s", err.msg);
            break;
        }
        for (int i = 0; i < got; i++) {
            json_t *j = rp_event_json(&evs[i]);
            if (rp_access_event(s, c->access, j, NULL) == 1) /* --as: that user's view */
                print_json(j, false);
            json_decref(j);
            last = evs[i].seq;
            rp_event_clear(&evs[i]);
        }
        remaining -= got;
        if (got == 0)
            break;
    }
    fflush(stdout);
    if (follow && !rc) {
        last = last > rp_events_last_seq(s) ? last : (n == 0 ? rp_events_last_seq(s) : last);
        signal(SIGINT, on_stop);
        signal(SIGTERM, on_stop);
        signal(SIGPIPE, on_stop);
        while (!stop_following) {
            int got = rp_events_list(s, last, false, evs, PAGE, &err);
            if (got < 0) {
                rc = fail("%s", err.msg);
                break;
            }
            for (int i = 0; i < got; i++) {
                json_t *j = rp_event_json(&evs[i]);
                if (rp_access_event(s, c->access, j, NULL) == 1)
                    print_json(j, false);
                json_decref(j);
                last = evs[i].seq;
                rp_event_clear(&evs[i]);
            }
            if (fflush(stdout) != 0)
                break;
            if (got == 0) {
                struct timespec ts = {0, 200 * 1000 * 1000};
                nanosleep(&ts, NULL);
            }
        }
    }
    close_store(c, s);
    return rc;
}

static int events_dead(cli_t *c, int argc, char **argv)
{
    if (argc > 2)
        return usage_error("events", "events dead takes at most a subscriber name");
    rp_store_t *s;
    if (open_store(c, false, &s))
        return EXIT_FAIL;
    rp_error_t err = {0};
    json_t *d = NULL;
    int rc = 0;
    if (rp_events_dead(s, argc == 2 ? argv[1] : NULL, &d, &err)) {
        rc = fail("%s", err.msg);
    } else {
        size_t i;
        json_t *r;
        json_array_foreach(d, i, r) print_json(r, false);
    }
    json_decref(d);
    close_store(c, s);
    return rc;
}

static int events_replay(cli_t *c, int argc, char **argv)
{
    int64_t id;
    if (argc != 2 || !parse_id(argv[1], &id))
        return usage_error("events", "events replay needs a dead letter id");
    rp_store_t *s;
    if (open_store(c, false, &s))
        return EXIT_FAIL;
    rp_error_t err = {0};
    int rc = 0;
    if (rp_events_replay(s, id, &err))
        rc = fail("%s", err.msg);
    else
        printf("dead letter %lld queued for replay\n", (long long)id);
    close_store(c, s);
    return rc;
}

int cmd_events(cli_t *c, int argc, char **argv)
{
    if (argc < 2)
        return usage_error("events", "events needs a subcommand: tail, dead or replay");
    if (strcmp(argv[1], "tail") == 0)
        return events_tail(c, argc - 1, argv + 1);
    if (strcmp(argv[1], "dead") == 0)
        return events_dead(c, argc - 1, argv + 1);
    if (strcmp(argv[1], "replay") == 0)
        return events_replay(c, argc - 1, argv + 1);
    return usage_error("events", "events: unknown subcommand \"%s\" (tail, dead, replay)",
                       argv[1]);
}
