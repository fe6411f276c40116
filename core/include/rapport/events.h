/*
 * events.h — the event log read from above the store: events as read, named subscribers that
 * read from their own checkpoints with retries and dead letters, and "explain", the history of
 * one field. How events are written (in the writer's transaction, and rp_events_emit()) and the
 * before-hooks are the store's write path: rapport/write.h, included here.
 */
#ifndef RAPPORT_EVENTS_H
#define RAPPORT_EVENTS_H

#include "rapport/store.h"
#include "rapport/write.h"

/** One event as read from the log. Owned by whoever read it: free with rp_event_clear(). */
typedef struct rp_event {
    int64_t seq;       /**< Position in the log; strictly increasing, never reused. */
    char *uid;         /**< A unique id (time-ordered, 26 characters). */
    char *type;        /**< "contact.created", "deal.stage_changed", … */
    char *entity;      /**< The entity changed, or "" for a custom event without one. */
    int64_t record_id; /**< The record changed, or 0. */
    char *actor;       /**< Who acted. */
    char *origin;      /**< Through which door. */
    char *at;          /**< When, as UTC "YYYY-MM-DDTHH:MM:SS.sssZ". */
    int64_t at_ms;     /**< The same, in milliseconds since the epoch. */
    char *changes;     /**< JSON: {field: [old, new]} for changes, the payload for custom events. */
    int64_t cause;     /**< The event whose handler caused this one, or 0. */
    int depth;         /**< Chain depth (0 = direct). */
    int attempts;      /**< For subscribers: failed deliveries so far. */
    bool replay;       /**< For subscribers: this is a dead letter being replayed. */
} rp_event_t;

/** Frees the strings of @p ev (not @p ev itself). */
void rp_event_clear(rp_event_t *ev);

/** The event as a JSON object (new reference, owned). */
json_t *rp_event_json(const rp_event_t *ev);

/**
 * Reads up to @p max events with sequence number greater than @p after_seq, oldest first
 * (or, when @p newest is true, the @p max newest, still oldest first). Returns the number read
 * (≥ 0) into @p out, or a negative RP_E* code.
 */
int rp_events_list(rp_store_t *s, int64_t after_seq, bool newest, rp_event_t *out, int max,
                   rp_error_t *err);

/**
 * Reads the events about one record, oldest first, after @p after_seq, up to @p max.
 * Returns the number read or a negative code.
 */
int rp_events_for_record(rp_store_t *s, const char *entity, int64_t record_id, int64_t after_seq,
                         rp_event_t *out, int max, rp_error_t *err);

/** As rp_events_for_record, newest first: the events of the record before @p before_seq
 *  (0: from the newest), at most @p max. */
int rp_events_for_record_before(rp_store_t *s, const char *entity, int64_t record_id,
                                int64_t before_seq, rp_event_t *out, int max, rp_error_t *err);

/** The sequence number of the newest event (0 when the log is empty). */
int64_t rp_events_last_seq(rp_store_t *s);

/* ---------------------------------------------------------------------------------------- */
/* Subscribers                                                                               */

/** Retry rules for a subscriber. Zero fields take the defaults shown. */
typedef struct rp_retry {
    int max_attempts;     /**< Deliveries before the dead letters (default 5). */
    int64_t base_ms;      /**< First retry delay (default 1000); doubles each attempt. */
    int64_t max_delay_ms; /**< Delay ceiling (default 3600000). */
} rp_retry_t;

/**
 * Creates subscriber @p name (an identifier, dots allowed) if it does not exist. A new
 * subscriber starts after the newest event when @p from_now is true, else at the beginning of
 * the log. @p types, when not NULL, is a glob over event types ("deal.*", "*.created") and the
 * subscriber reads only the events that match; an existing subscriber gets the new glob.
 */
int rp_events_subscribe(rp_store_t *s, const char *name, const char *types, bool from_now,
                        rp_error_t *err);

/** Removes subscriber @p name, its checkpoint, pending retries and dead letters. */
int rp_events_unsubscribe(rp_store_t *s, const char *name, rp_error_t *err);

/** The checkpoint of @p name: the last event it acknowledged (into *seq). */
int rp_events_checkpoint(rp_store_t *s, const char *name, int64_t *seq, rp_error_t *err);

/**
 * Reads up to @p max events for @p name: dead letters queued for replay first, then events
 * after its checkpoint. When the next event waits for a retry that is not yet due, nothing is
 * returned and *retry_at_ms (may be NULL) says when (else it is set to 0): a failing event holds
 * back only its own subscriber, in order. Returns the number read or a negative code.
 */
int rp_events_read(rp_store_t *s, const char *name, rp_event_t *out, int max,
                   int64_t *retry_at_ms, rp_error_t *err);

/**
 * Acknowledges event @p seq for @p name: the checkpoint moves to it (or, for a replayed dead
 * letter, the letter is resolved). Joins the caller's transaction, so a handler's writes and its
 * checkpoint commit together.
 */
int rp_events_ack(rp_store_t *s, const char *name, int64_t seq, rp_error_t *err);

/**
 * Records that delivering event @p seq to @p name failed with @p error. Before the last attempt
 * the event is retried after an exponential backoff with jitter; after it, the event goes to the
 * dead letters and the checkpoint moves past it. *dead (may be NULL) tells which happened.
 */
int rp_events_fail(rp_store_t *s, const char *name, int64_t seq, const char *error,
                   const rp_retry_t *retry, bool *dead, rp_error_t *err);

/**
 * A handler for rp_events_deliver(): returns 0 when @p ev is handled, else non-zero with
 * @p err filled. @p ctx is the context to write with (actor = the subscriber, cause = ev).
 */
typedef int (*rp_event_fn)(rp_store_t *s, const rp_event_t *ev, const rp_ctx_t *ctx, void *ud,
                           rp_error_t *err);

/**
 * Delivers up to @p max pending events to @p fn for subscriber @p name: each in its own
 * transaction with its checkpoint, so a crash never half-applies a handler. A failure rolls the
 * handler's writes back, is recorded with rp_events_fail() and stops this round.
 * Returns the number handled (≥ 0), or a negative code for a store failure.
 */
int rp_events_deliver(rp_store_t *s, const char *name, rp_event_fn fn, void *ud, int max,
                      const rp_retry_t *retry, rp_error_t *err);

/**
 * The dead letters, of @p name or of every subscriber when NULL: a new array (owned) of
 * {"id", "subscriber", "seq", "type", "error", "attempts", "at", "replaying"}.
 */
int rp_events_dead(rp_store_t *s, const char *name, json_t **out, rp_error_t *err);

/** Queues dead letter @p id for replay (it is read again, first, by its subscriber). */
int rp_events_replay(rp_store_t *s, int64_t id, rp_error_t *err);

/* ---------------------------------------------------------------------------------------- */
/* Explain                                                                                   */

/**
 * The history of @p field of record @p id: a new array (owned) of
 * {"seq", "at", "type", "actor", "origin", "old", "new", "causes": [{seq, type, entity,
 * record_id, actor, origin}, … nearest first]}, oldest first.
 */
int rp_events_explain(rp_store_t *s, const char *entity, int64_t id, const char *field,
                      json_t **out, rp_error_t *err);

/**
 * As rp_events_explain(), for @p ctx's user (rapport/access.h): RP_EPERM when the record is
 * outside the user's read scope or @p field is hidden from the user.
 */
int rp_events_explain_as(rp_store_t *s, const rp_ctx_t *ctx, const char *entity, int64_t id,
                         const char *field, json_t **out, rp_error_t *err);

#endif
