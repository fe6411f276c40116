/*
 * replay_int.h — what the two files of `rapport replay` share: the run's state. Only
 * core/engine/replay*.c include it.
 */
#ifndef RAPPORT_REPLAY_INT_H
#define RAPPORT_REPLAY_INT_H

#include <jansson.h>

#include "rapport/engine.h"
#include "rapport/replay.h"

/** The defaults of the settings replay.max_job_runs, replay.max_job_runs_per_event and
 *  replay.max_report_mb (see README, "What would this rule have done?"). */
#define RP_REPLAY_MAX_JOB_RUNS 100000
#define RP_REPLAY_MAX_JOB_RUNS_PER_EVENT 1000
#define RP_REPLAY_MAX_REPORT_MB 64
/** The default of replay.max_events_per_event. */
#define RP_REPLAY_MAX_EVENTS_PER_EVENT 10000

typedef struct replay {
    const rp_replay_opts_t *o;
    char dir[4096];  /* the private folder of the copy ("" once removed) */
    char path[4200]; /* the copy */
    rp_engine_t *en; /* the engine on the copy */
    rp_store_t *s;   /* borrowed from en */
    rp_sched_t *e;
    rp_lua_t *l;       /* the script */
    int64_t start_seq; /* the window: events start_seq < seq <= end_seq */
    int64_t end_seq;
    int64_t first_at, last_at; /* the times of the window's first and last events */
    int64_t mark;              /* the copy's events up to here are accounted for */
    int64_t undone, fed, skipped;
    json_t *report; /* the report being made (owned) */
    json_t *fwd;    /* "entity:recorded id" -> the id in the copy */
    json_t *rev;    /* "entity:copy id" -> the recorded id */
    json_t *refs;   /* entity -> {ref field: target entity} */
    json_t *by;     /* the recorded event being replayed, as the report names it */
    json_t *news;   /* "entity:copy id" -> N, for the records the script created (new#N) */
    json_t *nnew;   /* entity -> how many records the script created */
    json_t *seqs;   /* "copy seq" -> the recorded seq of the replayed write it is */
    int64_t pin_at; /* while a recorded write is applied again: its recorded time */
    int64_t max_runs, max_event_runs; /* the caps on job runs (replay_bounds.c) */
    int64_t max_events;               /* the cap on the events one recorded event causes */
    size_t bytes, max_bytes;          /* the report's size as JSON so far, and its cap */
} replay_t;

/** Makes the empty report and the maps. */
int rp__replay_init(replay_t *r, rp_error_t *err);
/** Frees what rp__replay_init() made. */
void rp__replay_free(replay_t *r);
/** Adds a sentence to the report's notes (what the copy could not reconstruct). */
void rp__replay_note(replay_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Says one line of the trace, when there is one. */
void rp__replay_trace(replay_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Re-applies recorded event @p ev (an object of the feed's columns) as the write it was,
 *  then runs what falls due, and collects what the script did. Returns 1 for an event of the
 *  engine's own (schema, settings, users), which is not replayed. */
int rp__replay_apply(replay_t *r, json_t *ev, rp_error_t *err);
/** Takes the copy's events after r->mark (but @p own, the replayed write's own) into the
 *  report, with the handlers' and jobs' failures; @p jobs: they came from jobs run as the
 *  clock moved. */
int rp__replay_collect(replay_t *r, int64_t own, bool jobs, rp_error_t *err);
/** Says in @p out how the report names the copy's record @p id of @p entity: its recorded id,
 *  or "new#N" for the script's own. */
void rp__replay_id_text(replay_t *r, const char *entity, int64_t id, char *out, size_t cap);
/** Says in @p out how the report names the copy's event @p seq: "#12" for the recorded event
 *  it replays, else "seq 80 (the replay's own)". */
void rp__replay_seq_text(replay_t *r, int64_t seq, char *out, size_t cap);
/** Adds the jobs scheduled during the run to the report and puts it in its final order. */
int rp__replay_finish(replay_t *r, rp_error_t *err);

/** Reads the caps and sets the count of job runs on the copy (after the script loaded). */
int rp__replay_bounds_init(replay_t *r, rp_error_t *err);
/** Turns @p rc, the failure of a scheduler's pass, into the error of the cap it hit, naming
 *  the job and the event that scheduled it; other failures are returned as they are. */
int rp__replay_jobs_err(replay_t *r, int rc, rp_error_t *err);
/** Starts the count of the events caused by a new recorded event (or a move of the clock). */
int rp__replay_events_reset(replay_t *r, rp_error_t *err);
/** RP_ELIMIT when the count passed replay.max_events_per_event, naming the event (or, with
 *  @p jobs, the move of the clock) that caused them. */
int rp__replay_events_err(replay_t *r, bool jobs, rp_error_t *err);
/** Adds @p item's size to the report's. */
void rp__replay_count(replay_t *r, json_t *item);
/** RP_ELIMIT once the report is over replay.max_report_mb, naming where it got there. */
int rp__replay_size_err(replay_t *r, rp_error_t *err);

#endif
