/*
 * sched.h — time: one clock (real, or virtual for tests), durable jobs (keyed, claimed
 * atomically, retried with backoff, dead-lettered), cron schedules, and the engine loop that
 * runs due jobs and hands new events to subscribers, on libuv.
 */
#ifndef RAPPORT_SCHED_H
#define RAPPORT_SCHED_H

#include "rapport/events.h"
#include "rapport/log.h"

/** A job as its handler sees it. Borrowed: valid until the handler returns. */
typedef struct rp_job {
    int64_t id;          /**< The job's id in rp_jobs. */
    const char *name;    /**< The handler's name. */
    const char *key;     /**< The job's key, or NULL. */
    const char *payload; /**< JSON text (an object); never NULL. */
    int64_t due_ms;      /**< When it fell due. */
    int attempts;        /**< Runs so far, this one included (1 on the first run). */
} rp_job_t;

/**
 * A job handler: does the work and returns 0, or returns non-zero with @p err filled to have the
 * job retried. Its writes (made with @p ctx) commit together with the job's completion, so a
 * crash mid-run leaves neither.
 */
typedef int (*rp_job_fn)(rp_store_t *s, const rp_job_t *job, const rp_ctx_t *ctx, void *ud,
                         rp_error_t *err);

/* ---- durable jobs (work with or without a running engine) ------------------------------- */

/**
 * Schedules job @p name with @p payload (a JSON object, borrowed; NULL for {}) to run at
 * @p due_ms. With @p key, scheduling replaces the pending job of that key (idempotent; it moves
 * a deadline) and rp_jobs_cancel() can remove it. *id_out may be NULL. A job's id is never
 * used twice, and follows its due time so that the rows of jobs due together are neighbours:
 * a later due, a larger id, and one millisecond's jobs in the order scheduled; a job due in
 * the past takes an id of the present, and a retry keeps its id. Ids are not an order of
 * creation; they stay below 2^53 (unless a job due after 2159 was scheduled). A rolled back
 * schedule gives its id back.
 */
int rp_jobs_schedule(rp_store_t *s, const rp_ctx_t *ctx, const char *name, json_t *payload,
                     int64_t due_ms, const char *key, int64_t *id_out, rp_error_t *err);

/** Cancels the pending job of @p key: RP_ENOTFOUND when there is none. */
int rp_jobs_cancel(rp_store_t *s, const char *key, rp_error_t *err);

/**
 * Lists jobs in @p state ("pending", "running", "dead", or NULL for all), oldest due first:
 * a new array (owned) of {"id","name","key","due_at","state","attempts","error","payload"}.
 */
int rp_jobs_list(rp_store_t *s, const char *state, json_t **out, rp_error_t *err);

/** Puts dead job @p id back to pending, due now, with its attempts reset. */
int rp_jobs_retry(rp_store_t *s, int64_t id, rp_error_t *err);

/**
 * Lists the cron schedules: a new array (owned) of {"name","cron","tz","job","payload","next_at",
 * "last_at"} by name.
 */
int rp_schedules_list(rp_store_t *s, json_t **out, rp_error_t *err);

/** Removes schedule @p name (its pending job stays): RP_ENOTFOUND when there is none. */
int rp_schedules_remove(rp_store_t *s, const char *name, rp_error_t *err);

/* ---- the engine --------------------------------------------------------------------------- */

/** The engine's loop state. One per store. */
typedef struct rp_sched rp_sched_t;

/** Options for rp_sched_new(). Zero-initialise, then set what you need. */
typedef struct rp_sched_opts {
    bool virtual_clock;   /**< A clock that only rp_sched_advance() moves (tests). */
    int64_t start_ms;     /**< The virtual clock's start (0 = the real time now). */
    /** How long a claimed job is ours before an engine that cannot judge us by our pid may run
     *  it again (30000). Only the time from the claim to the run's start needs covering: the run
     *  holds SQLite's write lock, and a dead owner of this machine is found by its pid at once. */
    int64_t lease_ms;
    rp_retry_t retry;     /**< Retry rules for jobs and subscribers (5 attempts, 1 s doubling). */
    rp_log_fn log;        /**< Where notable things are said (NULL: nowhere). */
    void *log_ud;
    /** This engine's name in job claims. The default, "<host>:<pid>:<start>:<boot>:<pidns>",
     *  lets another engine of this machine tell at once that we are gone (no process with that
     *  pid and start time) and put our jobs back; any other name is judged by its lease. */
    const char *owner;
    /** The write-ahead log's size in pages past which rp_sched_serve() starts it over (0:
     *  16384, 64 MB of 4 KB pages). Under a steady stream of writes SQLite never starts it over
     *  by itself; a smaller figure keeps the file smaller at the cost of more frequent, equally
     *  short pauses of the loop. */
    int wal_restart_pages;
} rp_sched_opts_t;

/**
 * Makes the engine for @p s (borrowed; it must outlive the engine) and points the store's clock
 * at the engine's. Returns NULL only when out of memory. Free with rp_sched_free().
 */
rp_sched_t *rp_sched_new(rp_store_t *s, const rp_sched_opts_t *opts);

/** This engine's name in job claims (borrowed: valid until rp_sched_free()). */
const char *rp_sched_owner(const rp_sched_t *e);

/** Frees the engine and gives the store back its real clock. */
void rp_sched_free(rp_sched_t *e);

/** The engine's time in ms since the epoch. */
int64_t rp_sched_now(const rp_sched_t *e);

/**
 * Registers the handler of jobs named @p name (an identifier, dots allowed). Re-registering a
 * name replaces its handler. @p owner names who registered it (a plugin, "core").
 */
int rp_sched_handler(rp_sched_t *e, const char *name, rp_job_fn fn, void *ud, const char *owner,
                     rp_error_t *err);

/** Whether a handler for jobs named @p name is registered. */
bool rp_sched_has_handler(rp_sched_t *e, const char *name);

/**
 * Registers subscriber @p name with handler @p fn for the events whose type matches @p types
 * (a glob; NULL for all). The subscriber is durable: its checkpoint lives in the database.
 * A new subscriber starts at the end of the log when @p from_now is true.
 */
int rp_sched_subscribe(rp_sched_t *e, const char *name, const char *types, bool from_now,
                       rp_event_fn fn, void *ud, const char *owner, rp_error_t *err);

/**
 * Forgets the job handlers and subscribers registered by @p owner (their durable checkpoints
 * and pending jobs stay in the database). Returns how many were removed.
 */
int rp_sched_unregister_owner(rp_sched_t *e, const char *owner);

/** Whether the engine runs on a virtual clock. */
bool rp_sched_is_virtual(const rp_sched_t *e);

/**
 * Makes schedule @p name run job @p job with @p payload (borrowed, may be NULL) at every time
 * matching the five-field cron expression @p cron in zone @p tz (NULL for UTC). Durable: kept in
 * the database. Registering the same schedule again keeps its next fire time, so a slot missed
 * while the engine was down fires once on start, not once per missed slot.
 */
int rp_sched_every(rp_sched_t *e, const char *name, const char *cron, const char *tz,
                   const char *job, json_t *payload, rp_error_t *err);

/**
 * One pass: puts back the jobs of engines that died holding them (on the first pass, then at
 * most once a second), fires due cron schedules, claims and runs due jobs one at a time, delivers
 * pending events.
 * *did (may be NULL) is how many jobs and events were handled. A failing job or handler is
 * retried later and logged; only a store failure returns non-zero.
 */
int rp_sched_run_due(rp_sched_t *e, int *did, rp_error_t *err);

/**
 * The earliest time anything is due (a job, a schedule, a subscriber's retry), or INT64_MAX.
 * Now or earlier means there is work at once.
 */
int64_t rp_sched_next_due(rp_sched_t *e);

/**
 * Virtual clock only: moves time forward by @p ms, stopping at every due time in order and
 * running what fell due there, so `advance(25h)` fires everything in due order,
 * deterministically. RP_ESTATE on a real clock.
 */
int rp_sched_advance(rp_sched_t *e, int64_t ms, rp_error_t *err);

/**
 * Runs the engine on a libuv loop until rp_sched_stop() or SIGTERM/SIGINT (which finish the
 * running handler, commit, and return 0). SIGHUP calls @p on_hup (may be NULL). New events and
 * jobs written by other processes are picked up within @p poll_ms (0 = 100).
 */
int rp_sched_serve(rp_sched_t *e, int poll_ms, void (*on_hup)(void *ud), void *hup_ud,
                   rp_error_t *err);

/**
 * Makes rp_sched_serve() call @p fn every @p every_ms milliseconds (e.g. to notice edited
 * scripts). One such callback per engine; @p fn NULL removes it.
 */
void rp_sched_on_interval(rp_sched_t *e, void (*fn)(void *ud), void *ud, int every_ms);

/**
 * Makes rp_sched_serve() call @p fn after each of its passes: at once after a commit of this
 * process (rp_sched_kick), and at the poll that notices other processes' writes, so a reader
 * of the log (a live view of it) wakes when events may have been written, without a poll of
 * its own. One such callback per engine; @p fn NULL removes it.
 */
void rp_sched_on_pass(rp_sched_t *e, void (*fn)(void *ud), void *ud);
struct uv_loop_s;

/**
 * Lets another part of the program run on rp_sched_serve()'s loop (the HTTP server): @p start
 * is called with the loop once it is set up (a failure stops the serve before it begins, with
 * @p start's error); @p stop is called after the loop has stopped, before its handles are
 * closed, and must close every handle it opened. One such part per engine; NULL removes it.
 */
/** The loop while rp_sched_serve() runs it (for work handed to its thread pool), else NULL. */
struct uv_loop_s *rp_sched_loop(const rp_sched_t *e);

void rp_sched_attach(rp_sched_t *e, int (*start)(void *ud, struct uv_loop_s *loop, rp_error_t *err),
                     void (*stop)(void *ud, struct uv_loop_s *loop), void *ud);

/**
 * Tells a running rp_sched_serve() that new events or jobs were written in this process, so it
 * dispatches them on the loop's next turn instead of at the next poll. Does nothing otherwise.
 */
void rp_sched_kick(rp_sched_t *e);

/** Asks a running rp_sched_serve() to return after the current handler. Safe from a handler. */
void rp_sched_stop(rp_sched_t *e);

/* rp_parse_delay() lives in rapport/time.h. */
#include "rapport/time.h"

#endif
