/*
 * auth.c — users and API tokens (libsodium: argon2id for passwords, BLAKE2b for tokens).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "rapport/db.h"
#include "rapport/store.h"
#include "rapport/time.h"

/* The tables this file reads (tables.c): linking this file links them. */
extern const rp_db_schema_t rp__auth_schema;
__attribute__((used)) static const rp_db_schema_t *const needs_tables = &rp__auth_schema;
#include "rapport/auth.h"
#include "rapport/write.h"

static int ready(rp_error_t *err)
{
    if (sodium_init() < 0)
        return rp_error_set(err, RP_EIO, RP_C_USER, "libsodium cannot start");
    return 0;
}

/* The hex BLAKE2b-256 hash of @p token: what the database keeps instead of it. */
static void token_hash(const char *token, char out[65])
{
    unsigned char h[32];
    crypto_generichash(h, sizeof h, (const unsigned char *)token, strlen(token), NULL, 0);
    sodium_bin2hex(out, 65, h, sizeof h);
}

static int security_event(rp_store_t *s, const rp_ctx_t *ctx, const char *type, int64_t id,
                          json_t *payload, rp_error_t *err)
{
    int rc = rp_events_emit(s, ctx, type, NULL, id, payload, NULL, err);
    json_decref(payload);
    return rc;
}

/* The id of user @p name, 0 when there is none; *disabled and *role (may be NULL) too. */
static int64_t user_id(rp_store_t *s, const char *name, bool *disabled, char *role, size_t rlen,
                       char *team, size_t tlen)
{
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "SELECT id, disabled, role, team FROM rp_users WHERE name = ?",
                                NULL);
    if (!st)
        return 0;
    rp_db_bind_text(st, 1, name, -1);
    int64_t id = 0;
    if (rp_db_step(st) == RP_DB_ROW) {
        id = rp_db_col_int(st, 0);
        if (disabled)
            *disabled = (int)rp_db_col_int(st, 1) != 0;
        if (role)
            snprintf(role, rlen, "%s", rp_db_col_text(st, 2));
        if (team)
            snprintf(team, tlen, "%s",
                     rp_db_col_text(st, 3) ? rp_db_col_text(st, 3) : "");
    }
    rp_db_reset(st);
    return id;
}

int rp_users_add(rp_store_t *s, const rp_ctx_t *ctx, const char *name, const char *role,
                 const char *team, const char *password, rp_error_t *err)
{
    int rc = ready(err);
    if (rc)
        return rc;
    if (!rp_store_name_ok(name))
        return rp_error_set(err, RP_EINVAL, RP_C_IDENT, "\"%s\" is not a user name (lower-case "
                            "letters, digits and _, starting with a letter)", name ? name : "");
    if (!rp_store_name_ok(role))
        return rp_error_set(err, RP_EINVAL, RP_C_IDENT, "\"%s\" is not a role name (lower-case "
                            "letters, digits and _)", role ? role : "");
    if (team && *team && !rp_store_name_ok(team))
        return rp_error_set(err, RP_EINVAL, RP_C_IDENT, "\"%s\" is not a team name", team);
    if (!password || strlen(password) < 8)
        return rp_error_set(err, RP_EINVAL, RP_C_USER, "a password needs at least 8 characters");
    if (user_id(s, name, NULL, NULL, 0, NULL, 0))
        return rp_error_set(err, RP_ECONFLICT, RP_C_USER, "there is a user named %s already",
                            name);
    char hash[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str(hash, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory hashing the password");
    if ((rc = rp_store_begin(s, err)))
        return rc;
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "INSERT INTO rp_users(name, role, team, password_hash,"
                                   " created_at, created_by) VALUES(?, ?, ?, ?, ?, ?)", err);
    if (!st) {
        rp_store_rollback(s, NULL);
        return err ? err->code : RP_EIO;
    }
    char now[32];
    rp_time_format(rp_store_now(s), now);
    rp_db_bind_text(st, 1, name, -1);
    rp_db_bind_text(st, 2, role, -1);
    if (team && *team)
        rp_db_bind_text(st, 3, team, -1);
    rp_db_bind_text(st, 4, hash, -1);
    rp_db_bind_text(st, 5, now, -1);
    rp_db_bind_text(st, 6, ctx && ctx->actor ? ctx->actor : "system", -1);
    int src = rp_db_step(st);
    rp_db_reset(st);
    sodium_memzero(hash, sizeof hash);
    if (src != RP_DB_DONE) {
        rc = rp_db_error(rp_store_db(s), src, "cannot add the user", err);
        rp_store_rollback(s, NULL);
        return rc;
    }
    int64_t id = rp_db_last_id(rp_store_db(s));
    if ((rc = security_event(s, ctx, "user.added", id,
                             json_pack("{s:s,s:s,s:s?}", "name", name, "role", role, "team",
                                       team && *team ? team : NULL), err))) {
        rp_store_rollback(s, NULL);
        return rc;
    }
    return rp_store_commit(s, err);
}

/* One row of rp_users (id, name, role, team, email, disabled, created_at) as JSON. */
static json_t *user_row(rp_db_stmt_t *st)
{
    return json_pack("{s:I,s:s,s:s,s:s?,s:b,s:s,s:s?}", "id", (json_int_t)rp_db_col_int(st, 0),
                     "name", rp_db_col_text(st, 1), "role", rp_db_col_text(st, 2), "team",
                     rp_db_col_text(st, 3), "disabled", (int)rp_db_col_int(st, 5), "created_at",
                     rp_db_col_text(st, 6), "email", rp_db_col_text(st, 4));
}

#define USER_COLS "id, name, role, team, email, disabled, created_at"

int rp_users_list(rp_store_t *s, json_t **out, rp_error_t *err)
{
    *out = NULL;
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "SELECT " USER_COLS
                                   " FROM rp_users ORDER BY name", err);
    if (!st)
        return err ? err->code : RP_EIO;
    json_t *a = json_array();
    int rc;
    while ((rc = rp_db_step(st)) == RP_DB_ROW)
        json_array_append_new(a, user_row(st));
    rp_db_reset(st);
    if (rc != RP_DB_DONE) {
        json_decref(a);
        return rp_db_error(rp_store_db(s), rc, "cannot list the users", err);
    }
    *out = a;
    return 0;
}

int rp_users_get(rp_store_t *s, const char *name, json_t **out, rp_error_t *err)
{
    *out = NULL;
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "SELECT " USER_COLS
                                   " FROM rp_users WHERE name = ?", err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_text(st, 1, name ? name : "", -1);
    int rc = rp_db_step(st);
    if (rc == RP_DB_ROW)
        *out = user_row(st);
    rp_db_reset(st);
    if (rc == RP_DB_ROW)
        return 0;
    if (rc != RP_DB_DONE)
        return rp_db_error(rp_store_db(s), rc, "cannot read the user", err);
    return rp_error_set(err, RP_ENOTFOUND, RP_C_USER, "no user named %s", name ? name : "(none)");
}

/* Whether @p e looks like one mail address: text@text, no spaces or control characters. */
static bool email_ok(const char *e)
{
    const char *at = strchr(e, '@');
    if (!at || at == e || !at[1] || strchr(at + 1, '@') || strlen(e) > 254)
        return false;
    for (const unsigned char *p = (const unsigned char *)e; *p; p++)
        if (*p <= ' ' || *p == 0x7f || *p == '<' || *p == '>' || *p == ',' || *p == '"')
            return false;
    return true;
}

int rp_users_set_email(rp_store_t *s, const rp_ctx_t *ctx, const char *name, const char *email,
                       rp_error_t *err)
{
    int64_t id = name ? user_id(s, name, NULL, NULL, 0, NULL, 0) : 0;
    if (!id)
        return rp_error_set(err, RP_ENOTFOUND, RP_C_USER, "no user named %s",
                            name ? name : "(none)");
    if (email && *email && !email_ok(email))
        return rp_error_field(err, "email", rp_error_set(err, RP_EINVAL, RP_C_USER,
                              "\"%.80s\" is not an email address (name@domain, no spaces)",
                              email));
    int rc = rp_store_begin(s, err);
    if (rc)
        return rc;
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "UPDATE rp_users SET email = ? WHERE id = ?", err);
    if (!st) {
        rp_store_rollback(s, NULL);
        return err ? err->code : RP_EIO;
    }
    if (email && *email)
        rp_db_bind_text(st, 1, email, -1);
    else
        rp_db_bind_null(st, 1);
    rp_db_bind_int(st, 2, id);
    int src = rp_db_step(st);
    rp_db_reset(st);
    if (src != RP_DB_DONE) {
        rc = rp_db_error(rp_store_db(s), src, "cannot set the user's email", err);
        rp_store_rollback(s, NULL);
        return rc;
    }
    if ((rc = security_event(s, ctx, "user.email_changed", id, json_pack("{s:s}", "name", name),
                             err))) {
        rp_store_rollback(s, NULL);
        return rc;
    }
    return rp_store_commit(s, err);
}

int rp_users_disable(rp_store_t *s, const rp_ctx_t *ctx, const char *name, rp_error_t *err)
{
    bool already = false;
    int64_t id = name ? user_id(s, name, &already, NULL, 0, NULL, 0) : 0;
    if (!id)
        return rp_error_set(err, RP_ENOTFOUND, RP_C_USER, "no user named %s",
                            name ? name : "(none)");
    if (already)
        return rp_error_set(err, RP_ECONFLICT, RP_C_USER, "user %s is disabled already", name);
    int rc = rp_store_begin(s, err);
    if (rc)
        return rc;
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "UPDATE rp_users SET disabled = 1 WHERE id = ?", err);
    if (!st) {
        rp_store_rollback(s, NULL);
        return err ? err->code : RP_EIO;
    }
    rp_db_bind_int(st, 1, id);
    int src = rp_db_step(st);
    rp_db_reset(st);
    if (src != RP_DB_DONE) {
        rc = rp_db_error(rp_store_db(s), src, "cannot disable the user", err);
        rp_store_rollback(s, NULL);
        return rc;
    }
    if ((rc = security_event(s, ctx, "user.disabled", id, json_pack("{s:s}", "name", name),
                             err))) {
        rp_store_rollback(s, NULL);
        return rc;
    }
    return rp_store_commit(s, err);
}

struct rp_password_check {
    char hash[crypto_pwhash_STRBYTES]; /* "" when there is no such user */
    bool disabled;
    bool ok;
    char *password;
    size_t len;
};

rp_password_check_t *rp_users_password_begin(rp_store_t *s, const char *name,
                                             const char *password)
{
    if (sodium_init() < 0)
        return NULL;
    rp_password_check_t *pc = calloc(1, sizeof *pc);
    const char *pw = password ? password : "";
    if (!pc || !(pc->password = strdup(pw))) {
        free(pc);
        return NULL;
    }
    pc->len = strlen(pw);
    pc->disabled = true;
    rp_db_stmt_t *st = name ? rp_db_stmt(rp_store_db(s), "SELECT password_hash, disabled FROM rp_users"
                                          " WHERE name = ?", NULL)
                            : NULL;
    if (st) {
        rp_db_bind_text(st, 1, name, -1);
        if (rp_db_step(st) == RP_DB_ROW) {
            snprintf(pc->hash, sizeof pc->hash, "%s", rp_db_col_text(st, 0));
            pc->disabled = (int)rp_db_col_int(st, 1) != 0;
        }
        rp_db_reset(st);
    }
    return pc;
}

bool rp_password_check_run(rp_password_check_t *pc)
{
    if (pc->hash[0]) {
        pc->ok = crypto_pwhash_str_verify(pc->hash, pc->password, pc->len) == 0 && !pc->disabled;
    } else {
        /* No such user: spend the same time, so timing does not tell names apart. */
        char dummy[crypto_pwhash_STRBYTES];
        if (crypto_pwhash_str(dummy, pc->password, pc->len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
            dummy[0] = '\0';
        pc->ok = false;
    }
    return pc->ok;
}

void rp_password_check_free(rp_password_check_t *pc)
{
    if (!pc)
        return;
    sodium_memzero(pc->password, pc->len);
    free(pc->password);
    sodium_memzero(pc->hash, sizeof pc->hash);
    free(pc);
}

int rp_users_check_password(rp_store_t *s, const char *name, const char *password,
                            rp_error_t *err)
{
    int rc = ready(err);
    if (rc)
        return rc;
    rp_password_check_t *pc = rp_users_password_begin(s, name, password);
    if (!pc)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    bool ok = rp_password_check_run(pc);
    rp_password_check_free(pc);
    return ok ? 0 : rp_error_set(err, RP_EINVAL, RP_C_AUTH, "wrong user name or password");
}

int rp_tokens_create(rp_store_t *s, const rp_ctx_t *ctx, const char *user, const char *role,
                     int64_t expires_in_ms, char **token, int64_t *id_out, rp_error_t *err)
{
    *token = NULL;
    int rc = ready(err);
    if (rc)
        return rc;
    bool disabled = false;
    char urole[64] = "";
    int64_t uid = user ? user_id(s, user, &disabled, urole, sizeof urole, NULL, 0) : 0;
    if (!uid)
        return rp_error_set(err, RP_ENOTFOUND, RP_C_USER, "no user named %s",
                            user ? user : "(none)");
    if (disabled)
        return rp_error_set(err, RP_EINVAL, RP_C_USER, "user %s is disabled: no new tokens",
                            user);
    if (role && !rp_store_name_ok(role))
        return rp_error_set(err, RP_EINVAL, RP_C_IDENT, "\"%s\" is not a role name", role);
    /* 0 means never; anything else is a real delay, of at most a hundred years. */
    if (expires_in_ms < 0)
        return rp_error_set(err, RP_EINVAL, RP_C_USER, "a token cannot expire in the past");
    if (expires_in_ms > INT64_C(100) * 366 * 86400000)
        return rp_error_set(err, RP_EINVAL, RP_C_USER, "a token expires within a hundred years "
                                                      "(leave the expiry out for one that never "
                                                      "does)");
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    char b64[64];
    sodium_bin2base64(b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    size_t tlen = strlen(RP_TOKEN_PREFIX) + strlen(b64) + 1;
    char *t = malloc(tlen);
    if (!t)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    snprintf(t, tlen, "%s%s", RP_TOKEN_PREFIX, b64);
    sodium_memzero(b64, sizeof b64);
    char hash[65], prefix[16], now[32];
    token_hash(t, hash);
    snprintf(prefix, sizeof prefix, "%.12s", t);
    rp_time_format(rp_store_now(s), now);
    if ((rc = rp_store_begin(s, err))) {
        sodium_memzero(t, tlen);
        free(t);
        return rc;
    }
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "INSERT INTO rp_tokens(user_id, hash, prefix, role,"
                                   " created_at, expires_at) VALUES(?, ?, ?, ?, ?, ?)", err);
    int src = RP_DB_ERROR;
    if (st) {
        rp_db_bind_int(st, 1, uid);
        rp_db_bind_text(st, 2, hash, -1);
        rp_db_bind_text(st, 3, prefix, -1);
        if (role)
            rp_db_bind_text(st, 4, role, -1);
        rp_db_bind_text(st, 5, now, -1);
        if (expires_in_ms > 0)
            rp_db_bind_int(st, 6, rp_store_now(s) + expires_in_ms);
        src = rp_db_step(st);
        rp_db_reset(st);
    }
    int64_t id = src == RP_DB_DONE ? rp_db_last_id(rp_store_db(s)) : 0;
    if (src != RP_DB_DONE)
        rc = st ? rp_db_error(rp_store_db(s), src, "cannot keep the token", err) : (err ? err->code : RP_EIO);
    else
        rc = security_event(s, ctx, "token.created", id,
                            json_pack("{s:s,s:s,s:s}", "user", user, "role",
                                      role ? role : urole, "prefix", prefix), err);
    if (rc)
        rp_store_rollback(s, NULL);
    else
        rc = rp_store_commit(s, err); /* a failed commit rolls back by itself */
    if (rc) {
        sodium_memzero(t, tlen);
        free(t);
        return rc;
    }
    if (id_out)
        *id_out = id;
    *token = t;
    return 0;
}

int rp_tokens_list(rp_store_t *s, const char *user, json_t **out, rp_error_t *err)
{
    *out = NULL;
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "SELECT t.id, u.name, coalesce(t.role, u.role), t.prefix,"
                                   " t.created_at, t.expires_at, t.revoked_at, t.last_used_at"
                                   " FROM rp_tokens t JOIN rp_users u ON u.id = t.user_id"
                                   " WHERE ?1 IS NULL OR u.name = ?1 ORDER BY t.id", err);
    if (!st)
        return err ? err->code : RP_EIO;
    if (user)
        rp_db_bind_text(st, 1, user, -1);
    json_t *a = json_array();
    int rc;
    while ((rc = rp_db_step(st)) == RP_DB_ROW) {
        char exp[32] = "", used[32] = "";
        if (rp_db_col_type(st, 5) != RP_DB_NULL)
            rp_time_format(rp_db_col_int(st, 5), exp);
        if (rp_db_col_type(st, 7) != RP_DB_NULL)
            rp_time_format(rp_db_col_int(st, 7), used);
        json_array_append_new(a, json_pack("{s:I,s:s,s:s,s:s,s:s,s:s?,s:s?,s:s?}", "id",
                                           (json_int_t)rp_db_col_int(st, 0), "user",
                                           rp_db_col_text(st, 1), "role",
                                           rp_db_col_text(st, 2), "prefix",
                                           rp_db_col_text(st, 3), "created_at",
                                           rp_db_col_text(st, 4), "expires_at",
                                           exp[0] ? exp : NULL, "revoked_at",
                                           rp_db_col_text(st, 6), "last_used_at",
                                           used[0] ? used : NULL));
    }
    rp_db_reset(st);
    if (rc != RP_DB_DONE) {
        json_decref(a);
        return rp_db_error(rp_store_db(s), rc, "cannot list the tokens", err);
    }
    *out = a;
    return 0;
}

int rp_tokens_revoke(rp_store_t *s, const rp_ctx_t *ctx, int64_t id, rp_error_t *err)
{
    int rc = rp_store_begin(s, err);
    if (rc)
        return rc;
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "UPDATE rp_tokens SET revoked_at = ?"
                                   " WHERE id = ? AND revoked_at IS NULL", err);
    if (!st) {
        rp_store_rollback(s, NULL);
        return err ? err->code : RP_EIO;
    }
    char now[32];
    rp_time_format(rp_store_now(s), now);
    rp_db_bind_text(st, 1, now, -1);
    rp_db_bind_int(st, 2, id);
    int src = rp_db_step(st);
    rp_db_reset(st);
    if (src != RP_DB_DONE) {
        rc = rp_db_error(rp_store_db(s), src, "cannot revoke the token", err);
    } else if (rp_db_changes(rp_store_db(s)) == 0) {
        rc = rp_error_set(err, RP_ENOTFOUND, RP_C_USER, "no live token with id %lld",
                          (long long)id);
    } else {
        rc = security_event(s, ctx, "token.revoked", id, json_pack("{s:I}", "id",
                                                                    (json_int_t)id), err);
    }
    if (rc) {
        rp_store_rollback(s, NULL);
        return rc;
    }
    return rp_store_commit(s, err);
}

int rp_tokens_check(rp_store_t *s, const char *token, json_t **who, rp_error_t *err)
{
    *who = NULL;
    int rc = ready(err);
    if (rc)
        return rc;
    if (!token || strncmp(token, RP_TOKEN_PREFIX, strlen(RP_TOKEN_PREFIX)) != 0)
        return rp_error_set(err, RP_EINVAL, RP_C_AUTH, "not a Rapport token");
    char hash[65];
    token_hash(token, hash);
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "SELECT t.id, u.id, u.name, coalesce(t.role, u.role), u.team,"
                                   " t.expires_at, t.revoked_at, u.disabled"
                                   " FROM rp_tokens t JOIN rp_users u ON u.id = t.user_id"
                                   " WHERE t.hash = ?", err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_text(st, 1, hash, -1);
    int src = rp_db_step(st);
    if (src != RP_DB_ROW) {
        rp_db_reset(st);
        return src == RP_DB_DONE ? rp_error_set(err, RP_EINVAL, RP_C_AUTH, "unknown token")
                                  : rp_db_error(rp_store_db(s), src, "cannot check the token", err);
    }
    if (rp_db_col_type(st, 6) != RP_DB_NULL)
        rc = rp_error_set(err, RP_EINVAL, RP_C_AUTH, "the token was revoked");
    else if (rp_db_col_type(st, 5) != RP_DB_NULL &&
             rp_db_col_int(st, 5) <= rp_store_now(s))
        rc = rp_error_set(err, RP_EINVAL, RP_C_AUTH, "the token has expired");
    else if ((int)rp_db_col_int(st, 7))
        rc = rp_error_set(err, RP_EINVAL, RP_C_AUTH, "the token's user is disabled");
    else
        /* expires_at (0: never) lets a caller that keeps the answer stop at the expiry. */
        *who = json_pack("{s:s,s:I,s:s,s:s?,s:I,s:I}", "user", rp_db_col_text(st, 2),
                         "user_id", (json_int_t)rp_db_col_int(st, 1), "role",
                         rp_db_col_text(st, 3), "team", rp_db_col_text(st, 4),
                         "token_id", (json_int_t)rp_db_col_int(st, 0), "expires_at",
                         (json_int_t)(rp_db_col_type(st, 5) == RP_DB_NULL
                                          ? 0
                                          : rp_db_col_int(st, 5)));
    rp_db_reset(st);
    return rc;
}

int rp_tokens_used(rp_store_t *s, const rp_ctx_t *ctx, int64_t id, const char *client,
                   rp_error_t *err)
{
    int rc = rp_store_begin(s, err);
    if (rc)
        return rc;
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), "UPDATE rp_tokens SET last_used_at = ? WHERE id = ?", err);
    if (!st)
        rc = err ? err->code : RP_EIO;
    else {
        rp_db_bind_int(st, 1, rp_store_now(s));
        rp_db_bind_int(st, 2, id);
        int src = rp_db_step(st);
        rp_db_reset(st);
        if (src != RP_DB_DONE)
            rc = rp_db_error(rp_store_db(s), src, "cannot record the token's use", err);
    }
    if (!rc)
        rc = security_event(s, ctx, "token.used", id,
                            json_pack("{s:I,s:s?}", "token_id", (json_int_t)id, "client", client),
                            err);
    if (rc) {
        rp_store_rollback(s, NULL);
        return rc;
    }
    return rp_store_commit(s, err);
}
