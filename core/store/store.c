/*
 * store.c — opening a store on the database room, the store's own tables, transactions with
 * their lazy savepoint, the budget, ids and time, the authorizer, and configuration.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* The store's own tables. Never edit a released step; append one. legacy: files of the
 * release-wide numbering had all of these from version 1. */
static const rp_db_step_t store_steps[] = {
    {1,
     "CREATE TABLE rp_entities(no INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, label TEXT,"
     " owner TEXT NOT NULL, created_at TEXT NOT NULL);"
     "CREATE TABLE rp_fields(entity TEXT NOT NULL REFERENCES rp_entities(name), name TEXT NOT NULL,"
     " position INTEGER NOT NULL, spec TEXT NOT NULL, owner TEXT NOT NULL,"
     " created_at TEXT NOT NULL, PRIMARY KEY(entity, name)) WITHOUT ROWID;"
     "CREATE TABLE rp_events(seq INTEGER PRIMARY KEY AUTOINCREMENT, uid TEXT NOT NULL,"
     " type TEXT NOT NULL, entity TEXT NOT NULL, record_id INTEGER NOT NULL, actor TEXT NOT NULL,"
     " origin TEXT NOT NULL, at INTEGER NOT NULL, changes TEXT NOT NULL,"
     " cause INTEGER NOT NULL, depth INTEGER NOT NULL);"
     "CREATE INDEX rp_events_record ON rp_events(entity, record_id);"
     /* Prefix indexes for 2 and 3 characters: a short prefix then reads one index entry
      * instead of every term it starts (measured: p99 of a 3-letter count over 1M rows 4.0 ms
      * to 1.5 ms, for about 5% more index and no measurable cost on writes). */
     "CREATE VIRTUAL TABLE rp_search USING fts5(body, tokenize='rapport', prefix='2 3');",
     NULL},
    /* The schema migrations that ran (crm.schema.migration), each once (migrate.c). */
    {2,
     "CREATE TABLE rp_migrations(id TEXT PRIMARY KEY, checksum TEXT NOT NULL,"
     " ran_at TEXT NOT NULL, ran_by TEXT NOT NULL, script TEXT NOT NULL) WITHOUT ROWID;",
     NULL},
};
/* A file of release-wide version 5 or older has the store's first step only. */
static const int store_legacy[] = {1, 1, 1, 1, 1};
static const rp_db_schema_t store_schema = {"store", store_steps, 2, store_legacy, 5};
RP_DB_SCHEMA(store_schema)

/* Configuration lives in the database, so a copy of the file is a copy of the install. */
static const rp_db_step_t settings_steps[] = {
    {1,
     "CREATE TABLE rp_settings(key TEXT PRIMARY KEY, value TEXT NOT NULL,"
     " updated_at TEXT NOT NULL, updated_by TEXT NOT NULL) WITHOUT ROWID;",
     NULL},
};
static const int settings_legacy[] = {0, 1, 1, 1};
static const rp_db_schema_t settings_schema = {"settings", settings_steps, 1, settings_legacy, 4};
RP_DB_SCHEMA(settings_schema)

static int64_t real_now(void *ud)
{
    (void)ud;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t rp_store_now(const rp_store_t *s)
{
    return s->now_fn(s->now_ud);
}

void rp_store_set_clock(rp_store_t *s, int64_t (*fn)(void *ud), void *ud)
{
    s->now_fn = fn ? fn : real_now;
    s->now_ud = fn ? ud : NULL;
}

int rp_store_schema_version_found(const rp_store_t *s)
{
    return rp_db_schema_found(s->db, NULL);
}

/* ---------------------------------------------------------------------------------------- */
/* The budget and the statement cache, on the database room                                 */

int64_t rp_store_set_deadline(rp_store_t *s, int64_t mono_deadline_ms)
{
    return rp_db_set_deadline(s->db, mono_deadline_ms);
}

int64_t rp_store_deadline(const rp_store_t *s)
{
    return rp_db_deadline(s->db);
}

void rp_store_set_interrupt(rp_store_t *s, rp_store_interrupt_fn fn, void *ud,
                            rp_store_interrupt_fn *was_fn, void **was_ud)
{
    rp_db_set_interrupt(s->db, fn, ud, was_fn, was_ud);
}

int rp__over_budget(rp_store_t *s, rp_error_t *err)
{
    if (rp_db_over_budget(s->db))
        return rp_error_set(err, RP_ELIMIT, RP_C_BUDGET, "the batch was stopped at the time "
                            "budget of the call it ran in; nothing of it was stored");
    return 0;
}

int rp_store_over_budget(rp_store_t *s, rp_error_t *err)
{
    return rp__over_budget(s, err);
}

int rp_store_set_cache_mb(rp_store_t *s, int mb, rp_error_t *err)
{
    return rp_db_set_cache_mb(s->db, mb, err);
}

const rp_authorizer_t *rp__authorizer;

const rp_authorizer_t *rp_store_set_authorizer(const rp_authorizer_t *auth)
{
    const rp_authorizer_t *was = rp__authorizer;
    rp__authorizer = auth;
    return was;
}

int rp__access_unanswered(rp_error_t *err)
{
    return rp_error_set(err, RP_EPERM, RP_C_DENIED, "no authorizer is installed to answer for a "
                        "restricted user: access refused");
}

rp_db_t *rp_store_db(rp_store_t *s)
{
    return s->db;
}

void rp__stmt_flush(rp_store_t *s)
{
    for (int i = 0; i < RP__HELD_N; i++) {
        rp_db_finalize(s->held[i]);
        s->held[i] = NULL;
    }
    for (int i = 0; i < s->nents; i++) {
        rp_db_finalize(s->ents[i]->st_insert);
        s->ents[i]->st_insert = NULL;
    }
    rp_db_flush(s->db);
}

bool rp__ident_ok(const char *name)
{
    if (!name || !*name || strlen(name) > 48)
        return false;
    if (!(name[0] >= 'a' && name[0] <= 'z'))
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    if (strncmp(name, "rp_", 3) == 0 || strncmp(name, "sqlite", 6) == 0)
        return false;
    /* SQLite's names for a row's key: a column of that name would hide it. */
    if (strcmp(name, "rowid") == 0 || strcmp(name, "oid") == 0)
        return false;
    return true;
}

bool rp_store_name_ok(const char *name)
{
    return rp__ident_ok(name);
}

static const char *const system_fields[] = {"id",         "created_at", "updated_at", "version",
                                            "created_by", "updated_by", "deleted_at", NULL};

bool rp__is_system_field(const char *name)
{
    for (int i = 0; system_fields[i]; i++)
        if (strcmp(system_fields[i], name) == 0)
            return true;
    return false;
}

uint64_t rp__rand(rp_store_t *s)
{
    /* xorshift64*: good enough for ids and jitter, seeded from the OS at open. */
    uint64_t x = s->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

uint64_t rp_store_random(rp_store_t *s)
{
    return rp__rand(s);
}

void rp__uid(rp_store_t *s, char out[27])
{
    /* A ULID: 48 bits of milliseconds then 80 bits that grow within the same millisecond,
     * so ids sort by time and never repeat within one store. */
    static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    int64_t ms = rp_store_now(s);
    if (ms != s->uid_last_ms) {
        s->uid_last_ms = ms;
        s->uid_hi = rp__rand(s) & 0xFFFF;
        s->uid_lo = rp__rand(s) >> 1;
    } else if (++s->uid_lo == 0) {
        s->uid_hi++;
    }
    uint64_t t = (uint64_t)ms;
    for (int i = 9; i >= 0; i--) {
        out[i] = b32[t & 31];
        t >>= 5;
    }
    /* 80 random bits: 16 from hi, 64 from lo, written as 16 base-32 digits. */
    uint64_t lo = s->uid_lo, hi = s->uid_hi;
    for (int i = 25; i >= 10; i--) {
        out[i] = b32[lo & 31];
        lo = (lo >> 5) | ((hi & 31) << 59);
        hi >>= 5;
    }
    out[26] = '\0';
}

/* ---------------------------------------------------------------------------------------- */
/* Opening                                                                                   */

static uint64_t os_seed(void)
{
    uint64_t seed = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &seed, sizeof seed) != (ssize_t)sizeof seed)
            seed = 0;
        close(fd);
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    seed ^= (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ULL ^ (uint64_t)getpid();
    return seed ? seed : 0x853c49e6748fea9bULL;
}

int rp_store_open(const char *path, const rp_store_opts_t *opts, rp_store_t **out,
                  rp_error_t *err)
{
    rp_store_opts_t o = {0};
    if (opts)
        o = *opts;
    *out = NULL;
    if (!path || !*path)
        return rp_error_set(err, RP_EINVAL, RP_C_OPEN, "no database path given");
    if (o.must_exist && strcmp(path, ":memory:") != 0) {
        struct stat stt;
        if (stat(path, &stt) != 0)
            return rp_error_set(err, RP_ENOTFOUND, RP_C_OPEN,
                                "no database at %s (create it with `rapport init`)", path);
    }
    rp_store_t *s = calloc(1, sizeof *s);
    if (!s)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    s->now_fn = o.now_ms ? o.now_ms : real_now;
    s->now_ud = o.now_ud;
    s->max_depth = o.max_depth > 0 ? o.max_depth : 16;
    s->rng = os_seed();
    s->next_hook_id = 1;
    rp_db_opts_t dbo = {.sync_full = o.sync_full, .busy_timeout_ms = o.busy_timeout_ms};
    int rc = rp_db_open(path, &dbo, &s->db, err);
    if (!rc && !(rc = rp__registry_load(s, err)))
        s->seen_schema = rp_db_schema_cookie(s->db);
    if (rc) {
        rp_store_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void rp_store_close(rp_store_t *s)
{
    if (!s)
        return;
    if (s->db)
        rp__stmt_flush(s);
    rp__hooks_free(s);
    rp__fts_hold_free(s);
    rp__registry_free(s);
    rp_db_close(s->db);
    free(s);
}

/* ---------------------------------------------------------------------------------------- */
/* Transactions: the database room's levels, with a savepoint opened only if a write happens,
 * and the registry read back when a schema change was undone                                */

int rp_store_begin(rp_store_t *s, rp_error_t *err)
{
    if (s->lazy_sp) {
        s->lazy_sp = false;
        int rc = rp_store_begin(s, err);
        if (rc)
            return rc;
        s->lazy_open = true;
    }
    return rp_db_begin(s->db, err);
}

void rp_store_lazy_begin(rp_store_t *s)
{
    s->lazy_sp = true;
    s->lazy_open = false;
}

bool rp_store_lazy_end(rp_store_t *s)
{
    bool opened = s->lazy_open;
    s->lazy_sp = s->lazy_open = false;
    return opened;
}

void rp__schema_touched(rp_store_t *s)
{
    s->schema_dirty = true;
    s->schema_gen++;
    int d = rp_db_depth(s->db);
    if (d > s->schema_top)
        s->schema_top = d;
}

/* Level @p d has ended. Committed, its schema changes now belong to the level below; rolled
 * back, they are undone in the file, so the registry is read back from it at once, even inside
 * an outer transaction: a write there must see the fields as they are again. A write below that
 * holds the old entity keeps it until the transaction ends (rp__registry_reload). At the
 * outermost level the registry is read once more if anything changed. */
static void schema_settle(rp_store_t *s, int d, bool undone)
{
    if (d > 0 && s->schema_top >= d) {
        s->schema_top = d - 1;
        if (undone && d > 1)
            rp__registry_reload(s);
    }
    if (rp_db_depth(s->db) == 0 && s->schema_dirty) {
        rp__registry_reload(s);
        s->schema_dirty = false;
        s->schema_top = 0;
    }
    if (rp_db_depth(s->db) == 0)
        rp__registry_retired_free(s);
}

int rp_store_commit(rp_store_t *s, rp_error_t *err)
{
    /* The search index's held writes run before the outermost commit, with no savepoint open
     * (fts_queue.c); a failure there fails the commit, and nothing is kept. */
    if (rp_db_depth(s->db) == 1 && rp__fts_flush(s, err)) {
        int code = err ? err->code : RP_EIO;
        rp_store_rollback(s, NULL);
        return code;
    }
    int d = rp_db_depth(s->db);
    int rc = rp_db_commit(s->db, err);
    /* A failed commit rolled its level back. */
    if (rc)
        rp__fts_rolled_back(s);
    else
        rp__fts_committed(s);
    schema_settle(s, d, rc != 0);
    return rc;
}

int rp_store_rollback(rp_store_t *s, rp_error_t *err)
{
    int d = rp_db_depth(s->db);
    int rc = rp_db_rollback(s->db, err);
    rp__fts_rolled_back(s);
    schema_settle(s, d, true);
    return rc;
}

int rp_store_txn_depth(const rp_store_t *s)
{
    return rp_db_depth(s->db);
}

/* ---------------------------------------------------------------------------------------- */
/* Configuration                                                                             */

static bool config_key_ok(const char *k)
{
    if (!k || !*k || strlen(k) > 96 || !(k[0] >= 'a' && k[0] <= 'z'))
        return false;
    for (const char *p = k; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '.'))
            return false;
    return k[strlen(k) - 1] != '.';
}

int rp_config_get(rp_store_t *s, const char *key, json_t **value, rp_error_t *err)
{
    *value = NULL;
    if (!config_key_ok(key))
        return rp_error_set(err, RP_EINVAL, RP_C_IDENT,
                            "\"%s\" is not a valid setting name (lower-case words joined by . or _)",
                            key ? key : "(null)");
    rp_db_stmt_t *st = rp__stmt(s, "SELECT value FROM rp_settings WHERE key = ?", err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_text(st, 1, key, -1);
    int rc = rp_db_step(st);
    if (rc == RP_DB_ROW)
        *value = json_loads(rp_db_col_text(st, 0), JSON_DECODE_ANY, NULL);
    rp_db_reset(st);
    if (rc == RP_DB_DONE)
        return rp_error_set(err, RP_ENOTFOUND, RP_C_NO_RECORD, "setting \"%s\" is not set", key);
    return rc == RP_DB_ROW ? 0 : rp__dberr(s, rc, "cannot read the setting", err);
}

/* Whether a setting's or member's name @p key says it holds a secret. */
static bool secret_name(const char *key)
{
    static const char *const marks[] = {"secret", "password", "passwd", "token", "api_key",
                                        "apikey", "credential", "private_key", NULL};
    for (int i = 0; marks[i]; i++)
        if (strstr(key, marks[i]))
            return true;
    return false;
}

/* @p v as the event log may show it (owned): "[secret]" for a secret's value, at any depth of
 * an object or list. */
static json_t *redacted(const char *key, json_t *v)
{
    if (secret_name(key))
        return json_string("[secret]");
    if (json_is_object(v)) {
        json_t *out = json_object();
        const char *k;
        json_t *m;
        json_object_foreach(v, k, m) json_object_set_new(out, k, redacted(k, m));
        return out;
    }
    if (json_is_array(v)) {
        json_t *out = json_array();
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m) json_array_append_new(out, redacted("", m));
        return out;
    }
    /* A URL's user:password ("smtp://u:p@host") is a secret whatever the setting's name. */
    const char *t = json_string_value(v);
    const char *sep = t ? strstr(t, "://") : NULL;
    if (sep) {
        const char *host = sep + 3, *end = host + strcspn(host, "/?#");
        const char *at = memchr(host, '@', (size_t)(end - host));
        if (at)
            return json_sprintf("%.*s[secret]%s", (int)(host - t), t, at);
    }
    return json_incref(v);
}

json_t *rp_config_redacted(const char *key, json_t *value)
{
    return redacted(key, value);
}

int rp_config_set(rp_store_t *s, const rp_ctx_t *ctx, const char *key, json_t *value,
                  rp_error_t *err)
{
    if (!config_key_ok(key))
        return rp_error_set(err, RP_EINVAL, RP_C_IDENT,
                            "\"%s\" is not a valid setting name (lower-case words joined by . or _)",
                            key ? key : "(null)");
    json_t *old = NULL;
    rp_config_get(s, key, &old, NULL);
    if (!value && !old)
        return rp_error_set(err, RP_ENOTFOUND, RP_C_NO_RECORD, "setting \"%s\" is not set", key);
    int rc = rp_store_begin(s, err);
    if (rc) {
        json_decref(old);
        return rc;
    }
    rp_db_stmt_t *st = rp__stmt(s, value ? "INSERT INTO rp_settings(key, value, updated_at,"
                                           " updated_by) VALUES(?1, ?2, ?3, ?4) ON CONFLICT(key)"
                                           " DO UPDATE SET value = ?2, updated_at = ?3,"
                                           " updated_by = ?4"
                                         : "DELETE FROM rp_settings WHERE key = ?1 AND"
                                           " ?2 IS NULL AND ?3 IS NOT NULL AND ?4 IS NOT NULL",
                                err);
    char now[32];
    rp__fmt_time(rp_store_now(s), now);
    char *text = value ? json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    if (st) {
        rp_db_bind_text(st, 1, key, -1);
        if (text)
            rp_db_bind_text(st, 2, text, -1);
        rp_db_bind_text(st, 3, now, -1);
        rp_db_bind_text(st, 4, ctx && ctx->actor ? ctx->actor : "system", -1);
        rc = rp__step_done(s, st, "cannot save the setting", err);
    } else {
        rc = err ? err->code : RP_EIO;
    }
    if (!rc) {
        /* A setting that holds a secret (its name says so, or a member's name inside it:
         * {"url": …, "password": …}) is logged as changed, not shown: the event log is read
         * by handlers, webhooks and anyone who may read events. */
        json_t *o = old ? redacted(key, old) : json_null();
        json_t *v = value ? redacted(key, value) : json_null();
        json_t *ch = json_pack("{s:[oo]}", key, o, v);
        rc = rp__event_append(s, ctx, "config.changed", "", 0, ch, NULL, err);
        json_decref(ch);
    }
    free(text);
    json_decref(old);
    if (rc) {
        rp_store_rollback(s, NULL);
        return rc;
    }
    return rp_store_commit(s, err);
}

int rp_config_list(rp_store_t *s, json_t **out, rp_error_t *err)
{
    *out = NULL;
    rp_db_stmt_t *st = rp__stmt(s, "SELECT key, value FROM rp_settings ORDER BY key", err);
    if (!st)
        return err ? err->code : RP_EIO;
    json_t *all = json_object();
    while (rp_db_step(st) == RP_DB_ROW) {
        json_t *v = json_loads(rp_db_col_text(st, 1), JSON_DECODE_ANY, NULL);
        json_object_set_new(all, rp_db_col_text(st, 0), v ? v : json_null());
    }
    rp_db_reset(st);
    *out = all;
    return 0;
}
