/*
 * session.c — browser sessions (rapport/session.h): the secret only as its BLAKE2b hash, a
 * principal of a kind ("user", or "record" for a record acting with a role), an idle and an
 * absolute end, revocation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "rapport/access.h"
#include "rapport/db.h"
#include "rapport/session.h"
#include "rapport/time.h"
#include "rapport/write.h"

/* Sessions have their own module of tables, so the users' and tokens' steps stay as they are.
 * principal_kind/principal/role hold "user ana (her role)" now and "record contact:42, role
 * portal" later without a new table. Times are milliseconds of the store's clock. */
static const rp_db_step_t session_steps[] = {
    {1,
     "CREATE TABLE rp_sessions(id INTEGER PRIMARY KEY AUTOINCREMENT, hash TEXT NOT NULL UNIQUE,"
     " principal_kind TEXT NOT NULL, principal TEXT NOT NULL, role TEXT, client TEXT,"
     " created_at INTEGER NOT NULL, last_seen_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,"
     " revoked_at INTEGER);"
     "CREATE INDEX rp_sessions_principal ON rp_sessions(principal_kind, principal);",
     NULL},
};
static const rp_db_schema_t session_schema = {"session", session_steps, 1, NULL, 0};
RP_DB_SCHEMA(session_schema)

/* How often a live session's last use is written at most: a write per request would cost
 * more than the request; an idle limit is checked against this granularity. */
#define SEEN_EVERY_MS 5000

static void secret_hash(const char *secret, char out[65])
{
    unsigned char h[32];
    crypto_generichash(h, sizeof h, (const unsigned char *)secret, strlen(secret), NULL, 0);
    sodium_bin2hex(out, 65, h, sizeof h);
}

void rp_session_csrf(const char *secret, char out[RP_SESSION_CSRF_LEN + 1])
{
    /* A keyed hash under a fixed key of its own: not the stored hash (which a copy of the
     * database shows), and nothing to store or to lose on a restart. */
    static const unsigned char key[16] = "rapport-csrf-v1";
    unsigned char h[32];
    crypto_generichash(h, sizeof h, (const unsigned char *)secret, strlen(secret), key,
                       sizeof key);
    sodium_bin2hex(out, RP_SESSION_CSRF_LEN + 1, h, sizeof h);
}

bool rp_session_csrf_ok(const char *secret, const char *token)
{
    char want[RP_SESSION_CSRF_LEN + 1];
    rp_session_csrf(secret, want);
    return token && strlen(token) == RP_SESSION_CSRF_LEN &&
           sodium_memcmp(want, token, RP_SESSION_CSRF_LEN) == 0;
}

static int emit(rp_store_t *s, const rp_ctx_t *ctx, const char *type, int64_t id, json_t *payload,
                rp_error_t *err)
{
    int rc = rp_events_emit(s, ctx, type, NULL, id, payload, NULL, err);
    json_decref(payload);
    return rc;
}

/* The user @p name as {user_id, role, team, disabled}: 0, or RP_ENOTFOUND. */
static int user_row(rp_store_t *s, const char *name, int64_t *uid, char *role, size_t rlen,
                    char *team, size_t tlen, bool *disabled, rp_error_t *err)
{
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s),
                                  "SELECT id, role, team, disabled FROM rp_users WHERE name = ?",
                                  err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_text(st, 1, name, -1);
    int src = rp_db_step(st);
    if (src == RP_DB_ROW) {
        *uid = rp_db_col_int(st, 0);
        snprintf(role, rlen, "%s", rp_db_col_text(st, 1));
        snprintf(team, tlen, "%s", rp_db_col_text(st, 2) ? rp_db_col_text(st, 2) : "");
        *disabled = rp_db_col_int(st, 3) != 0;
    }
    rp_db_reset(st);
    if (src == RP_DB_ROW)
        return 0;
    return src == RP_DB_DONE ? rp_error_set(err, RP_ENOTFOUND, RP_C_USER, "no user named %s", name)
                             : rp_db_error(rp_store_db(s), src, "cannot read the user", err);
}

/* A user who may open a session (exists, enabled): 0, or the reason. */
static int user_ok(rp_store_t *s, const char *name, char *role, size_t rlen, char *team,
                   size_t tlen, rp_error_t *err)
{
    int64_t uid = 0;
    bool disabled = false;
    int rc = user_row(s, name, &uid, role, rlen, team, tlen, &disabled, err);
    if (rc)
        return rc;
    return disabled ? rp_error_set(err, RP_EINVAL, RP_C_USER,
                                   "user %s is disabled: no new sessions", name)
                    : 0;
}

/* A record principal ("contact:42") that acts with @p role: the record exists and the role is
 * for records of its entity (what every request of the session will check again). */
static int record_ok(rp_store_t *s, const char *principal, const char *role, rp_error_t *err)
{
    if (!strchr(principal, ':'))
        return rp_error_set(err, RP_EINVAL, RP_C_USER,
                            "a record's session names it ENTITY:ID, not \"%s\"", principal);
    rp_access_t *a = NULL;
    int rc = rp_access_of_subject(s, principal, role, &a, err);
    rp_access_free(a);
    return rc;
}

int rp_sessions_create(rp_store_t *s, const rp_ctx_t *ctx, const char *kind, const char *principal,
                       const char *role, int64_t max_ms, const char *client, char **secret,
                       int64_t *id_out, rp_error_t *err)
{
    *secret = NULL;
    if (sodium_init() < 0)
        return rp_error_set(err, RP_EIO, RP_C_USER, "libsodium cannot start");
    bool record = kind && strcmp(kind, "record") == 0;
    if (!kind || (strcmp(kind, "user") != 0 && !record))
        return rp_error_set(err, RP_EINVAL, RP_C_USER,
                            "a session is for a principal of kind \"user\" or \"record\", "
                            "not \"%s\"", kind ? kind : "(none)");
    if (!principal || !*principal)
        return rp_error_set(err, RP_EINVAL, RP_C_USER, "a session needs a principal");
    if (max_ms <= 0)
        return rp_error_set(err, RP_EINVAL, RP_C_USER, "a session must end in the future");
    if (role && !rp_store_name_ok(role))
        return rp_error_set(err, RP_EINVAL, RP_C_IDENT, "\"%s\" is not a role name", role);
    if (record && !role)
        return rp_error_set(err, RP_EINVAL, RP_C_USER, "a record's session needs a role");
    char urole[64] = "", team[64];
    int rc = record ? record_ok(s, principal, role, err)
                    : user_ok(s, principal, urole, sizeof urole, team, sizeof team, err);
    if (rc)
        return rc;
    unsigned char raw[32];
    char b64[64], hash[65];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    size_t tlen = strlen(RP_SESSION_PREFIX) + strlen(b64) + 1;
    char *t = malloc(tlen);
    if (!t)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    snprintf(t, tlen, "%s%s", RP_SESSION_PREFIX, b64);
    sodium_memzero(b64, sizeof b64);
    secret_hash(t, hash);
    int64_t now = rp_store_now(s), id = 0;
    if ((rc = rp_store_begin(s, err)))
        goto out;
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s),
                                  "INSERT INTO rp_sessions(hash, principal_kind, principal, role,"
                                  " client, created_at, last_seen_at, expires_at)"
                                  " VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
                                  err);
    int src = RP_DB_ERROR;
    if (st) {
        rp_db_bind_text(st, 1, hash, -1);
        rp_db_bind_text(st, 2, kind, -1);
        rp_db_bind_text(st, 3, principal, -1);
        if (role)
            rp_db_bind_text(st, 4, role, -1);
        if (client)
            rp_db_bind_text(st, 5, client, -1);
        rp_db_bind_int(st, 6, now);
        rp_db_bind_int(st, 7, now);
        rp_db_bind_int(st, 8, now + max_ms);
        src = rp_db_step(st);
        rp_db_reset(st);
    }
    if (src != RP_DB_DONE)
        rc = st ? rp_db_error(rp_store_db(s), src, "cannot keep the session", err)
                : (err ? err->code : RP_EIO);
    else {
        id = rp_db_last_id(rp_store_db(s));
        rc = emit(s, ctx, "session.created", id,
                  json_pack("{s:I,s:s,s:s,s:s,s:s?}", "id", (json_int_t)id, "kind", kind,
                            "principal", principal, "role", role ? role : urole, "client", client),
                  err);
    }
    if (rc)
        rp_store_rollback(s, NULL);
    else
        rc = rp_store_commit(s, err);
out:
    if (rc) {
        sodium_memzero(t, tlen);
        free(t);
        return rc;
    }
    if (id_out)
        *id_out = id;
    *secret = t;
    return 0;
}

/* Writes @p id's last use as @p now (outside any answer: a failure is only logged by the
 * caller's error). */
static int touch(rp_store_t *s, int64_t id, int64_t now, rp_error_t *err)
{
    int rc = rp_store_begin(s, err);
    if (rc)
        return rc;
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s),
                                  "UPDATE rp_sessions SET last_seen_at = ? WHERE id = ?", err);
    int src = RP_DB_ERROR;
    if (st) {
        rp_db_bind_int(st, 1, now);
        rp_db_bind_int(st, 2, id);
        src = rp_db_step(st);
        rp_db_reset(st);
    }
    if (src != RP_DB_DONE) {
        rc = st ? rp_db_error(rp_store_db(s), src, "cannot record the session's use", err)
                : (err ? err->code : RP_EIO);
        rp_store_rollback(s, NULL);
        return rc;
    }
    return rp_store_commit(s, err);
}

int rp_sessions_check(rp_store_t *s, const char *secret, int64_t idle_ms, json_t **who,
                      rp_error_t *err)
{
    *who = NULL;
    if (sodium_init() < 0)
        return rp_error_set(err, RP_EIO, RP_C_AUTH, "libsodium cannot start");
    if (!secret || strncmp(secret, RP_SESSION_PREFIX, strlen(RP_SESSION_PREFIX)) != 0)
        return rp_error_set(err, RP_EINVAL, RP_C_AUTH, "not a Rapport session");
    char hash[65];
    secret_hash(secret, hash);
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s),
                                  "SELECT id, principal_kind, principal, role, last_seen_at,"
                                  " expires_at, revoked_at FROM rp_sessions WHERE hash = ?",
                                  err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_text(st, 1, hash, -1);
    int src = rp_db_step(st);
    if (src != RP_DB_ROW) {
        rp_db_reset(st);
        return src == RP_DB_DONE ? rp_error_set(err, RP_EINVAL, RP_C_AUTH, "unknown session")
                                 : rp_db_error(rp_store_db(s), src, "cannot check the session",
                                               err);
    }
    int64_t now = rp_store_now(s), id = rp_db_col_int(st, 0), seen = rp_db_col_int(st, 4);
    char kind[32], principal[128], role[64] = "";
    snprintf(kind, sizeof kind, "%s", rp_db_col_text(st, 1));
    snprintf(principal, sizeof principal, "%s", rp_db_col_text(st, 2));
    if (rp_db_col_type(st, 3) != RP_DB_NULL)
        snprintf(role, sizeof role, "%s", rp_db_col_text(st, 3));
    int rc = 0;
    if (rp_db_col_type(st, 6) != RP_DB_NULL)
        rc = rp_error_set(err, RP_EINVAL, RP_C_AUTH, "the session was ended; sign in again");
    else if (rp_db_col_int(st, 5) <= now)
        rc = rp_error_set(err, RP_EINVAL, RP_C_AUTH, "the session has expired; sign in again");
    else if (idle_ms > 0 && now - seen > idle_ms)
        rc = rp_error_set(err, RP_EINVAL, RP_C_AUTH,
                          "the session was idle too long (http.session_idle_s); sign in again");
    rp_db_reset(st);
    if (rc)
        return rc;
    int64_t every = idle_ms > 0 && idle_ms / 4 < SEEN_EVERY_MS ? idle_ms / 4 : SEEN_EVERY_MS;
    if (strcmp(kind, "record") == 0) {
        /* The record and its role are checked where the request's access is loaded
         * (rp_access_of_subject): a deleted record lets no request in. */
        if (!role[0])
            return rp_error_set(err, RP_EINVAL, RP_C_AUTH, "the record's session has no role");
        if (now - seen >= every && (rc = touch(s, id, now, err)))
            return rc;
        *who = json_pack("{s:s,s:s,s:s,s:I}", "kind", kind, "principal", principal, "role",
                         role, "session_id", (json_int_t)id);
        return *who ? 0 : rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    }
    if (strcmp(kind, "user") != 0)
        return rp_error_set(err, RP_EINVAL, RP_C_AUTH,
                            "a session of kind \"%s\" is not served here", kind);
    int64_t uid = 0;
    char urole[64], team[64];
    bool disabled = false;
    if ((rc = user_row(s, principal, &uid, urole, sizeof urole, team, sizeof team, &disabled,
                       err)))
        return rc == RP_ENOTFOUND
                   ? rp_error_set(err, RP_EINVAL, RP_C_AUTH, "the session's user is gone")
                   : rc;
    if (disabled)
        return rp_error_set(err, RP_EINVAL, RP_C_AUTH, "the session's user is disabled");
    if (now - seen >= every && (rc = touch(s, id, now, err)))
        return rc;
    *who = json_pack("{s:s,s:s,s:s,s:I,s:s,s:s?,s:I}", "kind", kind, "principal", principal,
                     "user", principal, "user_id", (json_int_t)uid, "role",
                     role[0] ? role : urole, "team", team[0] ? team : NULL, "session_id",
                     (json_int_t)id);
    return *who ? 0 : rp_error_set(err, RP_ENOMEM, 0, "out of memory");
}

int rp_sessions_list(rp_store_t *s, bool live, json_t **out, rp_error_t *err)
{
    *out = NULL;
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s),
                                  "SELECT id, principal_kind, principal, role, client, created_at,"
                                  " last_seen_at, expires_at, revoked_at FROM rp_sessions"
                                  " WHERE ?1 = 0 OR (revoked_at IS NULL AND expires_at > ?2)"
                                  " ORDER BY id DESC",
                                  err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_int(st, 1, live);
    rp_db_bind_int(st, 2, rp_store_now(s));
    json_t *a = json_array();
    int src;
    while (a && (src = rp_db_step(st)) == RP_DB_ROW) {
        char t[4][32];
        for (int i = 0; i < 4; i++) {
            t[i][0] = '\0';
            if (rp_db_col_type(st, 5 + i) != RP_DB_NULL)
                rp_time_format(rp_db_col_int(st, 5 + i), t[i]);
        }
        json_array_append_new(
            a, json_pack("{s:I,s:s,s:s,s:s?,s:s?,s:s,s:s,s:s,s:s?}", "id",
                         (json_int_t)rp_db_col_int(st, 0), "kind", rp_db_col_text(st, 1),
                         "principal", rp_db_col_text(st, 2), "role", rp_db_col_text(st, 3),
                         "client", rp_db_col_text(st, 4), "created_at", t[0], "last_seen_at",
                         t[1], "expires_at", t[2], "revoked_at", t[3][0] ? t[3] : NULL));
    }
    rp_db_reset(st);
    if (!a)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    if (src != RP_DB_DONE) {
        json_decref(a);
        return rp_db_error(rp_store_db(s), src, "cannot list the sessions", err);
    }
    *out = a;
    return 0;
}

/* Revokes the live sessions @p sql (an UPDATE … SET revoked_at = ?1 WHERE … with ?2 and ?3)
 * picks, and appends one event of @p type with @p payload (stolen). *n says how many. */
static int revoke(rp_store_t *s, const rp_ctx_t *ctx, const char *sql, int64_t id, const char *a,
                  const char *b, const char *type, json_t *payload, int *n, rp_error_t *err)
{
    int rc = rp_store_begin(s, err);
    if (rc) {
        json_decref(payload);
        return rc;
    }
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), sql, err);
    int src = RP_DB_ERROR;
    if (st) {
        rp_db_bind_int(st, 1, rp_store_now(s));
        if (a)
            rp_db_bind_text(st, 2, a, -1);
        else
            rp_db_bind_int(st, 2, id);
        if (b)
            rp_db_bind_text(st, 3, b, -1);
        src = rp_db_step(st);
        rp_db_reset(st);
    }
    if (src != RP_DB_DONE) {
        rc = st ? rp_db_error(rp_store_db(s), src, "cannot revoke the session", err)
                : (err ? err->code : RP_EIO);
        json_decref(payload);
    } else {
        *n = (int)rp_db_changes(rp_store_db(s));
        json_object_set_new(payload, "revoked", json_integer(*n));
        rc = *n ? emit(s, ctx, type, id, payload, err) : (json_decref(payload), 0);
    }
    if (rc) {
        rp_store_rollback(s, NULL);
        return rc;
    }
    return rp_store_commit(s, err);
}

int rp_sessions_revoke(rp_store_t *s, const rp_ctx_t *ctx, int64_t id, rp_error_t *err)
{
    int n = 0;
    int rc = revoke(s, ctx,
                    "UPDATE rp_sessions SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
                    id, NULL, NULL, "session.revoked", json_pack("{s:I}", "id", (json_int_t)id),
                    &n, err);
    if (!rc && n == 0)
        return rp_error_set(err, RP_ENOTFOUND, RP_C_USER, "no live session with id %lld",
                            (long long)id);
    return rc;
}

int rp_sessions_revoke_secret(rp_store_t *s, const rp_ctx_t *ctx, const char *secret,
                              rp_error_t *err)
{
    char hash[65];
    if (sodium_init() < 0)
        return rp_error_set(err, RP_EIO, RP_C_AUTH, "libsodium cannot start");
    secret_hash(secret ? secret : "", hash);
    int n = 0;
    int rc = revoke(s, ctx,
                    "UPDATE rp_sessions SET revoked_at = ?1 WHERE hash = ?2 AND revoked_at IS NULL",
                    0, hash, NULL, "session.ended", json_object(), &n, err);
    if (!rc && n == 0)
        return rp_error_set(err, RP_ENOTFOUND, RP_C_AUTH, "no live session to end");
    return rc;
}

int rp_sessions_revoke_principal(rp_store_t *s, const rp_ctx_t *ctx, const char *kind,
                                 const char *principal, int *n_out, rp_error_t *err)
{
    int n = 0;
    int rc = revoke(s, ctx,
                    "UPDATE rp_sessions SET revoked_at = ?1 WHERE principal_kind = ?2"
                    " AND principal = ?3 AND revoked_at IS NULL",
                    0, kind, principal, "session.revoked",
                    json_pack("{s:s,s:s}", "kind", kind, "principal", principal), &n, err);
    if (n_out)
        *n_out = n;
    return rc;
}
