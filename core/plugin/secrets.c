/*
 * secrets.c — api->secret_put and api->secret_take: what a plugin keeps that no one else may
 * read (a customer's password hash, a sign-in link's hash), in a table of the installation's
 * database that no API, role, export or event shows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "rapport/db.h"

/* Keyed by the plugin's name, so one plugin never reads another's. Never in the event log:
 * a secret's change is not a record's. expires_at is of the store's clock (ms), NULL: never. */
static const rp_db_step_t secret_steps[] = {
    {1,
     "CREATE TABLE rp_plugin_secrets(plugin TEXT NOT NULL, name TEXT NOT NULL,"
     " value TEXT NOT NULL, expires_at INTEGER, PRIMARY KEY(plugin, name));",
     NULL},
};
static const rp_db_schema_t secret_schema = {"plugin_secret", secret_steps, 1, NULL, 0};
RP_DB_SCHEMA(secret_schema)

/* Longest name and value kept: a key and a hash, not documents. */
enum { NAME_MAX_BYTES = 200, VALUE_MAX_BYTES = 4096 };

/* Runs @p sql (?1 plugin, ?2 name, ?3 value, ?4 expires_at or NULL) in a transaction of its
 * own, or of the caller's. */
static int write_one(rapport_host *h, const char *sql, const char *name, const char *value,
                     int64_t expires_at)
{
    rp_store_t *s = h->P->s;
    rp_error_t err = {0};
    if (rp_store_begin(s, &err))
        return (int)rp__plugin_fail(h, err.code, "secret_put: %s", err.msg);
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s), sql, &err);
    int src = RP_DB_ERROR;
    if (st) {
        rp_db_bind_text(st, 1, h->desc->name, -1);
        rp_db_bind_text(st, 2, name, -1);
        if (value)
            rp_db_bind_text(st, 3, value, -1);
        if (expires_at > 0)
            rp_db_bind_int(st, 4, expires_at);
        src = rp_db_step(st);
        rp_db_reset(st);
    }
    if (src != RP_DB_DONE) {
        int rc = st ? rp_db_error(rp_store_db(s), src, "cannot keep the secret", &err)
                    : (err.code ? err.code : RP_EIO);
        rp_store_rollback(s, NULL);
        return (int)rp__plugin_fail(h, rc, "secret_put %s: %s", name, err.msg);
    }
    if (rp_store_commit(s, &err))
        return (int)rp__plugin_fail(h, err.code, "secret_put %s: %s", name, err.msg);
    return 0;
}

static bool name_ok(const char *name)
{
    return name && *name && strlen(name) <= NAME_MAX_BYTES;
}

int rp__plugin_secret_put(rapport_host *h, const char *name, const char *value, int64_t ttl_ms)
{
    if (!name_ok(name))
        return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "secret_put: a secret needs a name of "
                                    "1 to %d bytes", NAME_MAX_BYTES);
    if (value && strlen(value) > VALUE_MAX_BYTES)
        return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "secret_put %s: a value of at most %d "
                                    "bytes", name, VALUE_MAX_BYTES);
    if (ttl_ms < 0)
        return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "secret_put %s: ttl_ms must be 0 "
                                    "(never) or positive", name);
    if (!value)
        return write_one(h, "DELETE FROM rp_plugin_secrets WHERE plugin = ?1 AND name = ?2",
                         name, NULL, 0);
    int64_t at = ttl_ms ? rp_store_now(h->P->s) + ttl_ms : 0;
    return write_one(h,
                     "INSERT INTO rp_plugin_secrets(plugin, name, value, expires_at)"
                     " VALUES(?1, ?2, ?3, ?4) ON CONFLICT(plugin, name) DO UPDATE"
                     " SET value = excluded.value, expires_at = excluded.expires_at",
                     name, value, at);
}

char *rp__plugin_secret_take(rapport_host *h, const char *name, int remove)
{
    if (!name_ok(name)) {
        rp__plugin_fail(h, RAPPORT_EINVAL, "secret_take: a secret needs a name of 1 to %d bytes",
                        NAME_MAX_BYTES);
        return NULL;
    }
    rp_store_t *s = h->P->s;
    rp_error_t err = {0};
    rp_db_stmt_t *st = rp_db_stmt(rp_store_db(s),
                                  "SELECT value, expires_at FROM rp_plugin_secrets"
                                  " WHERE plugin = ? AND name = ?",
                                  &err);
    if (!st) {
        rp__plugin_fail(h, err.code ? err.code : RP_EIO, "secret_take %s: %s", name, err.msg);
        return NULL;
    }
    rp_db_bind_text(st, 1, h->desc->name, -1);
    rp_db_bind_text(st, 2, name, -1);
    int src = rp_db_step(st);
    char *value = NULL;
    bool expired = false;
    if (src == RP_DB_ROW) {
        expired = rp_db_col_type(st, 1) != RP_DB_NULL &&
                  rp_db_col_int(st, 1) <= rp_store_now(s);
        value = expired ? NULL : strdup(rp_db_col_text(st, 0));
    }
    rp_db_reset(st);
    if (src != RP_DB_ROW && src != RP_DB_DONE) {
        int rc = rp_db_error(rp_store_db(s), src, "cannot read the secret", &err);
        rp__plugin_fail(h, rc, "secret_take %s: %s", name, err.msg);
        return NULL;
    }
    if (src == RP_DB_ROW && !expired && !value) {
        rp__plugin_fail(h, RAPPORT_ENOMEM, "out of memory");
        return NULL;
    }
    /* An expired secret is gone as if taken; a taken one is deleted before it is handed out,
     * so two requests racing for a single-use secret cannot both have it. */
    if ((expired || (value && remove)) &&
        write_one(h, "DELETE FROM rp_plugin_secrets WHERE plugin = ?1 AND name = ?2", name,
                  NULL, 0)) {
        free(value);
        return NULL;
    }
    if (!value)
        rp__plugin_fail(h, RAPPORT_ENOTFOUND, "no secret %s%s", name,
                        expired ? " (it has expired)" : "");
    return value;
}
