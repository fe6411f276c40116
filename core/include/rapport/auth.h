/*
 * auth.h — who may use the engine: users with argon2id-hashed passwords, and API tokens that
 * are shown once, kept only as a hash, expire, and can be revoked.
 *
 * Every change here is a security event in the event log (user.added, user.disabled,
 * token.created, token.revoked), without the secret. Roles and their grants are the HTTP and
 * permissions issue's; here a user and a token carry a role's name.
 */
#ifndef RAPPORT_AUTH_H
#define RAPPORT_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "rapport/store.h"

/** The prefix of every token, so a leaked one is recognisable ("rpt_…"). */
#define RP_TOKEN_PREFIX "rpt_"

/**
 * Adds user @p name (an identifier) with @p role (an identifier) and optional @p team, whose
 * password (at least 8 characters) is kept as an argon2id hash. A taken name is RP_ECONFLICT.
 */
int rp_users_add(rp_store_t *s, const rp_ctx_t *ctx, const char *name, const char *role,
                 const char *team, const char *password, rp_error_t *err);

/** Every user as [{id, name, role, team, email, disabled, created_at}] (owned); no hash. */
int rp_users_list(rp_store_t *s, json_t **out, rp_error_t *err);

/** User @p name as {id, name, role, team, email, disabled} into *out (owned); RP_ENOTFOUND. */
int rp_users_get(rp_store_t *s, const char *name, json_t **out, rp_error_t *err);

/**
 * Sets user @p name's email address (where the engine writes to them); "" or NULL clears it.
 * An address without one '@' or with spaces or control characters is RP_EINVAL.
 */
int rp_users_set_email(rp_store_t *s, const rp_ctx_t *ctx, const char *name, const char *email,
                       rp_error_t *err);

/** Disables user @p name: its password and tokens stop working. RP_ENOTFOUND if none. */
int rp_users_disable(rp_store_t *s, const rp_ctx_t *ctx, const char *name, rp_error_t *err);

/**
 * Checks @p password against user @p name's hash. 0 when it matches an enabled user; else
 * RP_EINVAL with RP-E1901, the same message whether the user exists or not.
 */
int rp_users_check_password(rp_store_t *s, const char *name, const char *password,
                            rp_error_t *err);

/**
 * The same check in two halves, so a server can run the slow one (argon2id, tens of
 * milliseconds by design) off its loop: rp_users_password_begin() reads what the check needs
 * on the thread that uses the store (NULL when out of memory); rp_password_check_run() checks,
 * on any thread, true when the password is right for an enabled user (an unknown user takes
 * as long); rp_password_check_free() wipes and frees.
 */
typedef struct rp_password_check rp_password_check_t;
rp_password_check_t *rp_users_password_begin(rp_store_t *s, const char *name,
                                             const char *password);
bool rp_password_check_run(rp_password_check_t *pc);
void rp_password_check_free(rp_password_check_t *pc);

/**
 * Creates a token for user @p user acting with @p role (NULL: the user's), expiring
 * @p expires_in_ms from now (0: never). *token (owned, free()) is the secret, shown once: only
 * its hash is kept. *id (may be NULL) is its id.
 */
int rp_tokens_create(rp_store_t *s, const rp_ctx_t *ctx, const char *user, const char *role,
                     int64_t expires_in_ms, char **token, int64_t *id, rp_error_t *err);

/** Tokens as [{id, user, role, prefix, created_at, expires_at, revoked_at, last_used_at}]
 *  (owned), all or those of @p user. */
int rp_tokens_list(rp_store_t *s, const char *user, json_t **out, rp_error_t *err);

/** Revokes token @p id. RP_ENOTFOUND if there is no such live token. */
int rp_tokens_revoke(rp_store_t *s, const rp_ctx_t *ctx, int64_t id, rp_error_t *err);

/**
 * Who @p token is: *who (owned) {user, user_id, role, team, token_id, expires_at (the store's ms,
 * 0: never)} for a live token of an
 * enabled user; otherwise RP_EINVAL with RP-E1901 and a message that says which (unknown,
 * expired, revoked, user disabled) without echoing the token.
 */
int rp_tokens_check(rp_store_t *s, const char *token, json_t **who, rp_error_t *err);

/**
 * Records that token @p id was used from @p client (an address, may be NULL): sets its
 * last_used_at and appends "token.used" {token_id, user, client}. The HTTP server calls it once
 * a minute per token at most, so the log says who used the API without growing per request.
 */
int rp_tokens_used(rp_store_t *s, const rp_ctx_t *ctx, int64_t id, const char *client,
                   rp_error_t *err);

#endif
