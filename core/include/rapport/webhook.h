/*
 * webhook.h — outgoing webhooks: subscriptions that deliver events, as their owner may see
 * them, by signed HTTP POST; retried with backoff, dead-lettered after the last try, and every
 * attempt written to a delivery log.
 *
 * Each webhook reads the event log through a durable subscriber of its own, "webhook:<id>"
 * (events.h), so deliveries are in order per webhook, at least once, and survive a restart; its
 * dead letters are the subscriber's (rp_events_dead(), rp_events_replay()).
 *
 * A delivery is `POST <url>` with the event as JSON (rp_event_json()'s form, hidden fields of
 * the owner's role taken out by rp_access_event()) and the headers
 *
 *   Content-Type: application/json
 *   X-Rapport-Event: <type>
 *   X-Rapport-Delivery: <event uid>                  the same on every retry: dedupe on it
 *   X-Rapport-Timestamp: <unix seconds>              when this attempt was signed
 *   X-Rapport-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed with the secret>
 *
 * A 2xx answer is delivered. A 5xx, 408 or 429 answer, a timeout or a connection failure is
 * retried with the subscriber's backoff; any other answer (a 3xx, another 4xx) goes to the dead
 * letters at once. Events the owner may not see are acknowledged without a delivery.
 */
#ifndef RAPPORT_WEBHOOK_H
#define RAPPORT_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "rapport/error.h"
#include "rapport/events.h"
#include "rapport/sched.h"
#include "rapport/store.h"

/** Room for a signature header value: "sha256=" + 64 hex digits + NUL. */
#define RP_WEBHOOK_SIG_SIZE 72

/** The prefix of a generated secret ("whsec_…"). */
#define RP_WEBHOOK_SECRET_PREFIX "whsec_"

/** What rp_webhook_add() makes. Borrowed strings. */
typedef struct rp_webhook_spec {
    const char *url;    /**< Where to POST: an http:// or https:// URL (rp_webhook_check_url). */
    const char *events; /**< Which event types: globs joined by commas ("contact.*,deal.won");
                             NULL or "" is "*". */
    const char *user;   /**< The owner: an enabled user whose role decides what is delivered. */
    const char *secret; /**< The signing key (16 to 256 printable ASCII characters), or NULL
                             to have one generated. */
} rp_webhook_spec_t;

/**
 * Checks that @p url can receive webhooks: http or https, a host, at most 2048 characters, no
 * spaces or control characters. RP_EINVAL (RP-E2001) saying what is wrong.
 */
int rp_webhook_check_url(const char *url, rp_error_t *err);

/**
 * Checks an event filter: comma-separated globs of lower-case letters, digits, "_", ".", "*"
 * and "?", at most 120 characters in all. RP_EINVAL (RP-E2001) naming the bad part.
 */
int rp_webhook_check_events(const char *events, rp_error_t *err);

/** Whether event type @p type matches filter @p events (as checked above; NULL is "*"). */
bool rp_webhook_events_match(const char *events, const char *type);

/**
 * Signs a delivery: writes "sha256=<hex HMAC-SHA256 of '<timestamp>.<body>'>", keyed with the
 * bytes of @p secret, into @p out. Returns 0, or RP_EIO when libsodium cannot start.
 */
int rp_webhook_sign(const char *secret, int64_t timestamp, const char *body, size_t len,
                    char out[RP_WEBHOOK_SIG_SIZE]);

/**
 * Adds a webhook. It receives the events appended from now on. *id (may be NULL) is its id;
 * *secret_out (may be NULL; owned, free()) is its secret, the one chance to show a generated
 * one. Emits "webhook.added" {id, url (scheme, host and port only), events, user} — never the
 * secret. RP_EINVAL for a bad URL, filter or secret; RP_ENOTFOUND when there is no such user.
 */
int rp_webhook_add(rp_store_t *s, const rp_ctx_t *ctx, const rp_webhook_spec_t *spec,
                   int64_t *id, char **secret_out, rp_error_t *err);

/**
 * Removes webhook @p id with its subscriber: its checkpoint, pending retries and dead letters.
 * Its delivery log stays. Emits "webhook.removed". RP_ENOTFOUND when there is none.
 */
int rp_webhook_remove(rp_store_t *s, const rp_ctx_t *ctx, int64_t id, rp_error_t *err);

/**
 * Pauses (@p active false) or resumes webhook @p id. A paused webhook keeps its place: on
 * resuming it delivers what was appended meanwhile. Emits "webhook.paused"/"webhook.resumed".
 */
int rp_webhook_set_active(rp_store_t *s, const rp_ctx_t *ctx, int64_t id, bool active,
                          rp_error_t *err);

/**
 * The webhooks as a new array (owned) of {"id", "url", "events", "user", "active",
 * "created_at", "created_by", "checkpoint", "dead"} by id; never a secret.
 */
int rp_webhook_list(rp_store_t *s, json_t **out, rp_error_t *err);

/**
 * The delivery log: the @p limit newest attempts (0 = 20), of webhook @p id or of all when 0,
 * oldest first, as a new array (owned) of {"id", "webhook", "seq", "event", "type", "attempt",
 * "status" (the HTTP status, or null when none came), "error" (null when delivered),
 * "duration_ms", "at", "outcome" ("delivered", "retry" or "dead")}.
 */
int rp_webhook_deliveries(rp_store_t *s, int64_t id, int limit, json_t **out, rp_error_t *err);

/**
 * The dead letters of webhook @p id, or of every webhook when 0, as rp_events_dead() gives
 * them plus "webhook" (the id). RP_ENOTFOUND when @p id names no webhook.
 */
int rp_webhook_dead(rp_store_t *s, int64_t id, json_t **out, rp_error_t *err);

/**
 * Queues dead letter @p dead_id of a webhook to be delivered again, first, before newer events.
 * It is tried once: if that fails it is a dead letter again. RP_ENOTFOUND when it is not a
 * webhook's dead letter.
 */
int rp_webhook_replay(rp_store_t *s, int64_t dead_id, rp_error_t *err);

/* ---- delivery ------------------------------------------------------------------------------ */

/** The deliverer: a thread of its own, off the engine's loop. */
typedef struct rp_webhook_deliverer rp_webhook_deliverer_t;

/** Options for the deliverer. Zero-initialise, then set what you need. */
typedef struct rp_webhook_opts {
    int timeout_ms;   /**< One attempt's whole time limit, connecting included (0 = 5000). */
    int poll_ms;      /**< How often an idle webhook looks for new events (0 = 100). */
    rp_retry_t retry; /**< Attempts and backoff (events.h defaults: 5 attempts, 1 s doubling). */
    int64_t log_keep_ms; /**< Delivery log rows older than this are dropped (0: kept for ever). */
    /** Where notable things are said (may be NULL). Called on the deliverer's thread. */
    rp_log_fn log;
    void *log_ud;
} rp_webhook_opts_t;

/**
 * Starts delivering the webhooks of the database @p s is open on, on a thread with its own
 * connection (@p s is only read for its file name and may be closed afterwards). Webhooks
 * added, resumed or removed while it runs are noticed within a second; a pause applies from
 * the next batch of events a webhook reads. RP_EINVAL for an
 * in-memory database, which no second connection can see. *out is owned: stop it with
 * rp_webhook_deliverer_stop().
 */
int rp_webhook_deliverer_start(rp_store_t *s, const rp_webhook_opts_t *o,
                               rp_webhook_deliverer_t **out, rp_error_t *err);

/**
 * Stops the deliverer and frees it (NULL is fine). An attempt in flight is abandoned without a
 * record, so its event is delivered again on the next start.
 */
void rp_webhook_deliverer_stop(rp_webhook_deliverer_t *d);

#endif
