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
 *
 * Destinations: webhooks refuse addresses that lead inside — loopback, unspecified, private,
 * shared (CGNAT), link-local (cloud metadata), unique-local, multicast, broadcast, reserved and
 * documentation ranges, and the IPv6 forms that carry such an IPv4 address (IPv4-mapped and
 * -compatible, NAT64, 6to4) — unless the setting webhooks.allow_networks allows them. The
 * address is judged as the socket layer holds it, whatever notation the URL used: when a
 * webhook is added (after resolving its host) and again for every connection the deliverer
 * opens or reuses, so a name that resolves elsewhere later (DNS rebinding) is caught. A refused
 * delivery goes to the dead letters at once. Redirects are not followed, and no proxy from the
 * environment is used (it would connect in the webhook's stead, unchecked).
 */
#ifndef RAPPORT_WEBHOOK_H
#define RAPPORT_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct sockaddr;

#include "rapport/error.h"
#include "rapport/events.h"
#include "rapport/sched.h"
#include "rapport/store.h"

/** Room for a signature header value: "sha256=" + 64 hex digits + NUL. */
#define RP_WEBHOOK_SIG_SIZE 72

/** The prefix of a generated secret ("whsec_…"). */
#define RP_WEBHOOK_SECRET_PREFIX "whsec_"

/**
 * The setting that allows destinations refused by default: CIDR ranges ("10.0.0.0/8",
 * "fd00::/8"), single addresses and host names, joined by commas (or a JSON array of them).
 * Unset or empty by default: only public addresses.
 */
#define RP_WEBHOOK_ALLOW_SETTING "webhooks.allow_networks"

/** What rp_webhook_add() makes. Borrowed strings. */
typedef struct rp_webhook_spec {
    const char *url;    /**< Where to POST: an http:// or https:// URL (rp_webhook_check_url). */
    const char *events; /**< Which event types: globs joined by commas ("contact.*,deal.won");
                             NULL or "" is "*". */
    const char *user;   /**< The owner: an enabled user whose role decides what is delivered. */
    const char *secret; /**< The signing key (16 to 256 printable ASCII characters), or NULL
                             to have one generated. */
    const char *allow_networks; /**< The allow list to judge the URL by, as the setting is
                                     written, instead of webhooks.allow_networks (NULL: the
                                     setting). */
} rp_webhook_spec_t;

/**
 * Checks that @p url can receive webhooks: http or https, a host, at most 2048 characters, no
 * spaces or control characters. RP_EINVAL (RP-E2001) saying what is wrong.
 */
int rp_webhook_check_url(const char *url, rp_error_t *err);

/** The allow list of webhooks.allow_networks, parsed. */
typedef struct rp_webhook_allow rp_webhook_allow_t;

/**
 * Parses an allow list: entries joined by commas, each a CIDR range or a single address (IPv4
 * as four decimal numbers, IPv6 without brackets) or a host name, which then allows whatever
 * that name resolves to. NULL or "" is the empty list. *out is owned (rp_webhook_allow_free).
 * RP_EINVAL (RP-E2002) naming the entry that is wrong.
 */
int rp_webhook_allow_parse(const char *text, rp_webhook_allow_t **out, rp_error_t *err);

/** As rp_webhook_allow_parse(), from a setting's value: a string, an array of them, or NULL. */
int rp_webhook_allow_json(const json_t *value, rp_webhook_allow_t **out, rp_error_t *err);

/**
 * The allow list in force: @p override (the text of RAPPORT_WEBHOOKS_ALLOW_NETWORKS, say) when
 * not NULL, else the setting webhooks.allow_networks of @p s (unset: empty).
 */
int rp_webhook_allow_load(rp_store_t *s, const char *override, rp_webhook_allow_t **out,
                          rp_error_t *err);

/** Frees an allow list (NULL is fine). */
void rp_webhook_allow_free(rp_webhook_allow_t *a);

/** Whether @p a (NULL: empty) names host @p host (case and a final dot do not count). */
bool rp_webhook_allow_host(const rp_webhook_allow_t *a, const char *host);

/**
 * Whether @p a (NULL: empty) holds address @p sa; an IPv6 form of an IPv4 address (mapped,
 * NAT64, …) is also looked up as that IPv4 address.
 */
bool rp_webhook_allow_addr(const rp_webhook_allow_t *a, const struct sockaddr *sa);

/**
 * Whether webhooks refuse address @p sa by default (an AF_INET or AF_INET6 socket address; any
 * other family is refused). When refused, @p why (may be NULL) gets its class: "a loopback
 * address", "a link-local address", "a loopback address, as IPv4-mapped 127.0.0.1", …
 */
bool rp_webhook_addr_denied(const struct sockaddr *sa, char *why, size_t cap);

/**
 * Whether address @p sa is refused with allow list @p a (NULL: empty) in force; when it is,
 * @p why gets the address and its class: "169.254.169.254 (a link-local address)".
 */
bool rp_webhook_dest_refused(const rp_webhook_allow_t *a, const struct sockaddr *sa, char *why,
                             size_t cap);

/**
 * Checks where @p url leads: resolves its host (this blocks) and refuses it when every address
 * is refused with @p allow in force, unless @p allow names the host. RP_EPERM (RP-E2002) naming
 * the addresses, their class and the setting that would allow them; RP_EINVAL for a URL without
 * a host. A name that does not resolve passes: it is judged again at each delivery.
 */
int rp_webhook_check_dest(const char *url, const rp_webhook_allow_t *allow, rp_error_t *err);

/**
 * The host of @p url as libcurl reads it (IPv4 in any notation made dotted decimal, IPv6
 * without brackets) into @p out. RP_EINVAL when it names none or it does not fit in @p cap.
 */
int rp_webhook_url_host(const char *url, char *out, size_t cap, rp_error_t *err);

/**
 * Writes @p url into @p out (@p cap bytes, cut to fit) with the user and password it may carry
 * replaced by three asterisks (what stands before the "@" of the authority). What any listing
 * or message shows of a URL.
 */
void rp_webhook_url_redact(const char *url, char *out, size_t cap);

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
 * secret. RP_EINVAL for a bad URL, filter or secret, or an allow list that does not parse;
 * RP_ENOTFOUND when there is no such user; RP_EPERM when the URL leads only where webhooks do
 * not deliver (rp_webhook_check_dest(): its host is resolved, which blocks).
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
 * "created_at", "created_by", "checkpoint", "dead"} by id; never a secret, and the URL without
 * the user and password it may carry (rp_webhook_url_redact()).
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
    /** The allow list instead of the setting webhooks.allow_networks (NULL: the setting, read
     *  again every second). Borrowed: valid until rp_webhook_deliverer_stop(). */
    const char *allow_networks;
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
