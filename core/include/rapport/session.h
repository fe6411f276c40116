/*
 * session.h — browser sessions: a secret kept in an HttpOnly cookie, stored only as its hash,
 * standing for a principal ("user NAME", or a record, "record contact:42" with role portal,
 * which only a plugin opens: api->session_start) until it is revoked, goes idle or reaches its
 * absolute expiry.
 *
 * A session's CSRF token is not stored: it is a keyed hash of the session's secret
 * (rp_session_csrf), so only who holds the cookie's value can know it, and a page reads it from
 * the sign-in's answer or GET /api/v1/auth/me.
 */
#ifndef RAPPORT_SESSION_H
#define RAPPORT_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "rapport/error.h"
#include "rapport/store.h"

/** Prefix of a session secret (and of nothing else), so a log line that shows one is found. */
#define RP_SESSION_PREFIX "rps_"

/** Length of a CSRF token's text (hex), without the NUL. */
#define RP_SESSION_CSRF_LEN 64

/**
 * Opens a session for the principal @p kind / @p principal ("user" / "ana") acting with
 * @p role (NULL: the principal's own, read at every check), ending @p max_ms from now at the
 * latest, seen from @p client (may be NULL). *secret (owned, free()) is the cookie's value,
 * shown once; *id (may be NULL) its id. Appends "session.created". RP_ENOTFOUND for no such
 * user, RP_EINVAL for a disabled one or a kind this engine does not know. Kind "record" names
 * its principal "ENTITY:ID" and needs @p role, one made for records of ENTITY (checked with
 * rp_access_of_subject: RP_EPERM for a missing or deleted record).
 */
int rp_sessions_create(rp_store_t *s, const rp_ctx_t *ctx, const char *kind, const char *principal,
                       const char *role, int64_t max_ms, const char *client, char **secret,
                       int64_t *id, rp_error_t *err);

/**
 * Who the session of @p secret is: *who (owned) {kind, principal, user, user_id, role, team,
 * session_id} for a live user's session, {kind "record", principal, role, session_id} (no user)
 * for a record's, whose access the caller loads with rp_access_of_subject. Idle longer than @p idle_ms (0: no idle limit), past its
 * absolute end, revoked, of a disabled user or unknown: RP_EINVAL with RP-E1901 and a message
 * saying which. A live session's last use is recorded (at most every few seconds).
 */
int rp_sessions_check(rp_store_t *s, const char *secret, int64_t idle_ms, json_t **who,
                      rp_error_t *err);

/** The CSRF token of the session whose secret is @p secret, as hex text in @p out. */
void rp_session_csrf(const char *secret, char out[RP_SESSION_CSRF_LEN + 1]);

/** Whether @p token is the CSRF token of @p secret (compared in constant time). */
bool rp_session_csrf_ok(const char *secret, const char *token);

/** Sessions as [{id, kind, principal, role, client, created_at, last_seen_at, expires_at,
 *  revoked_at}] (owned), newest first; with @p live only those not revoked nor past their end. */
int rp_sessions_list(rp_store_t *s, bool live, json_t **out, rp_error_t *err);

/** Revokes session @p id ("session.revoked"). RP_ENOTFOUND if there is no such live session. */
int rp_sessions_revoke(rp_store_t *s, const rp_ctx_t *ctx, int64_t id, rp_error_t *err);

/** Revokes the session whose secret is @p secret (signing out). RP_ENOTFOUND if none is live. */
int rp_sessions_revoke_secret(rp_store_t *s, const rp_ctx_t *ctx, const char *secret,
                              rp_error_t *err);

/** Revokes every live session of principal @p kind / @p principal; *n (may be NULL) says how
 *  many. None is not an error. */
int rp_sessions_revoke_principal(rp_store_t *s, const rp_ctx_t *ctx, const char *kind,
                                 const char *principal, int *n, rp_error_t *err);

#endif
