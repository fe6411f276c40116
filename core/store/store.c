/*
 * store.c — opening the database, the core's migrations, transactions, the statement cache
 * and the entity registry (define, add a field, describe).
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

/* Ordered migrations of the core's own tables: entry i takes the schema from version i to i+1.
 * Never edit a released entry; append a new one and raise RP_STORE_SCHEMA_VERSION. */
static const char *const migrations[RP_STORE_SCHEMA_VERSION] = {
    "CREATE TABLE rp_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
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
    "CREATE TABLE rp_subscribers(name TEXT PRIMARY KEY, checkpoint INTEGER NOT NULL,"
    " types TEXT NOT NULL DEFAULT '*', created_at INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE rp_retries(subscriber TEXT NOT NULL, seq INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL, next_at INTEGER NOT NULL, error TEXT NOT NULL,"
    " PRIMARY KEY(subscriber, seq)) WITHOUT ROWID;"
    "CREATE TABLE rp_dead(id INTEGER PRIMARY KEY AUTOINCREMENT, subscriber TEXT NOT NULL,"
    " seq INTEGER NOT NULL, attempts INTEGER NOT NULL, error TEXT NOT NULL, at INTEGER NOT NULL,"
    " replay INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX rp_dead_sub ON rp_dead(subscriber, replay, id);"
    /* Prefix indexes for 2 and 3 characters: a short prefix then reads one index entry
     * instead of every term it starts (measured: p99 of a 3-letter count over 1M rows 4.0 ms
     * to 1.5 ms, for about 5% more index and no measurable cost on writes). */
    "CREATE VIRTUAL TABLE rp_search USING fts5(body, tokenize='rapport', prefix='2 3');",
    /* 2: durable jobs and cron schedules (core/sched). */
    "CREATE TABLE rp_jobs(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, key TEXT,"
    " payload TEXT NOT NULL, due_at INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'pending',"
    " attempts INTEGER NOT NULL DEFAULT 0, lease_until INTEGER, owner TEXT, error TEXT,"
    " created_at INTEGER NOT NULL, created_by TEXT NOT NULL);"
    "CREATE UNIQUE INDEX rp_jobs_key ON rp_jobs(key) WHERE key IS NOT NULL AND state = 'pending';"
    "CREATE INDEX rp_jobs_due ON rp_jobs(state, due_at);"
    "CREATE TABLE rp_schedules(name TEXT PRIMARY KEY, cron TEXT NOT NULL, tz TEXT NOT NULL,"
    " job TEXT NOT NULL, payload TEXT NOT NULL, next_at INTEGER NOT NULL, last_at INTEGER)"
    " WITHOUT ROWID;"
    /* Configuration lives in the database, so a copy of the file is a copy of the install. */
    "CREATE TABLE rp_settings(key TEXT PRIMARY KEY, value TEXT NOT NULL,"
    " updated_at TEXT NOT NULL, updated_by TEXT NOT NULL) WITHOUT ROWID;",
    /* 3: users and API tokens (core/auth): a password only as its argon2id hash, a token only
     * as its BLAKE2b hash. */
    "CREATE TABLE rp_users(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,"
    " role TEXT NOT NULL, team TEXT, password_hash TEXT NOT NULL,"
    " disabled INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, created_by TEXT NOT NULL);"
    "CREATE TABLE rp_tokens(id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " user_id INTEGER NOT NULL REFERENCES rp_users(id), hash TEXT NOT NULL UNIQUE,"
    " prefix TEXT NOT NULL, role TEXT, created_at TEXT NOT NULL, expires_at INTEGER,"
    " revoked_at TEXT, last_used_at INTEGER);",
    /* 4: outgoing webhooks (core/webhook). The secret is kept as itself: it signs every
     * delivery. One row per delivery attempt in the log. */
    "CREATE TABLE rp_webhooks(id INTEGER PRIMARY KEY AUTOINCREMENT, url TEXT NOT NULL,"
    " events TEXT NOT NULL, secret TEXT NOT NULL, owner TEXT NOT NULL,"
    " active INTEGER NOT NULL DEFAULT 1, created_at TEXT NOT NULL, created_by TEXT NOT NULL);"
    "CREATE TABLE rp_webhook_deliveries(id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " webhook_id INTEGER NOT NULL, seq INTEGER NOT NULL, attempt INTEGER NOT NULL,"
    " status INTEGER, error TEXT, duration_ms INTEGER NOT NULL, at INTEGER NOT NULL,"
    " outcome TEXT NOT NULL);"
    "CREATE INDEX rp_webhook_deliveries_hook ON rp_webhook_deliveries(webhook_id, id);",
};

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
    return s->schema_found;
}

/* ---------------------------------------------------------------------------------------- */
/* Small shared helpers                                                                      */

int rp__dberr(rp_store_t *s, int rc, const char *what, rp_error_t *err)
{
    if (rc == SQLITE_INTERRUPT && s->interrupted) {
        s->interrupted = false;
        return rp_error_set(err, RP_ELIMIT, RP_C_BUDGET, "%s: stopped at the time budget of "
                            "the call it ran in", what);
    }
    int code = (rc == SQLITE_NOMEM) ? RP_ENOMEM : RP_EIO;
    return rp_error_set(err, code, RP_C_SQL, "%s: %s", what, sqlite3_errmsg(s->db));
}

int rp__exec(rp_store_t *s, const char *sql, rp_error_t *err)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return rp__dberr(s, rc, "database statement failed", err);
    return 0;
}

/* FNV-1a over the length, the first 48 and the last 48 bytes: the statements differ there
 * (their verb and table up front, their column lists and filters at the end), and hashing
 * every byte of a long INSERT was half of the lookup. strcmp decides equality. */
static unsigned hash_str(const char *p)
{
    size_t n = strlen(p);
    unsigned h = 2166136261u ^ (unsigned)n;
    size_t head = n < 96 ? n : 48;
    for (size_t i = 0; i < head; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    for (size_t i = n < 96 ? n : n - 48; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

/* Without this check a write after SQLite rolled back by itself would run in autocommit mode
 * and commit on its own. */
static sqlite3_stmt *aborted_error(rp_error_t *err)
{
    rp_error_set(err, RP_EIO, RP_C_SQL,
                 "the database rolled the transaction back after an error; nothing more runs "
                 "until it is unwound");
    return NULL;
}

sqlite3_stmt *rp__stmt(rp_store_t *s, const char *sql, rp_error_t *err)
{
    if (s->aborted)
        return aborted_error(err);
    unsigned h = hash_str(sql) % RP__STMT_CACHE;
    for (unsigned i = 0; i < RP__STMT_CACHE; i++) {
        unsigned k = (h + i) % RP__STMT_CACHE;
        if (!s->cache[k].sql)
            break;
        if (strcmp(s->cache[k].sql, sql) == 0) {
            sqlite3_reset(s->cache[k].st);
            sqlite3_clear_bindings(s->cache[k].st);
            return s->cache[k].st;
        }
    }
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK) {
        rp__dberr(s, rc, "cannot prepare a statement", err);
        return NULL;
    }
    /* A free slot on the probe path, else an idle statement's slot: a statement that is
     * still stepping (a caller's loop) is never finalized under it. Only filter shapes vary
     * without bound, so evicting is rare. */
    unsigned victim = RP__STMT_CACHE;
    for (unsigned i = 0; i < RP__STMT_CACHE; i++) {
        unsigned k = (h + i) % RP__STMT_CACHE;
        if (!s->cache[k].sql) {
            victim = k;
            break;
        }
        if (victim == RP__STMT_CACHE && !sqlite3_stmt_busy(s->cache[k].st))
            victim = k;
    }
    char *copy = victim < RP__STMT_CACHE ? strdup(sql) : NULL;
    if (!copy) {
        sqlite3_finalize(st);
        rp_error_set(err, RP_ENOMEM, 0, "statement cache failure");
        return NULL;
    }
    if (s->cache[victim].sql) {
        sqlite3_finalize(s->cache[victim].st);
        free(s->cache[victim].sql);
    }
    s->cache[victim].sql = copy;
    s->cache[victim].st = st;
    return st;
}

sqlite3_stmt *rp__stmt_held(rp_store_t *s, sqlite3_stmt **slot, const char *sql,
                            rp_error_t *err)
{
    if (s->aborted)
        return aborted_error(err);
    if (*slot) {
        /* No clear_bindings: a held statement's caller binds every parameter. */
        sqlite3_reset(*slot);
        return *slot;
    }
    int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL);
    if (rc != SQLITE_OK) {
        *slot = NULL;
        rp__dberr(s, rc, "cannot prepare a statement", err);
        return NULL;
    }
    return *slot;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* SQLite's wait for another writer: up to busy_ms, in short sleeps, and never past the
 * deadline of the call that waits (a script's wall-time limit), so a script blocked on a lock
 * stops on time instead of at the end of the whole wait. */
static int busy_wait(void *ud, int count)
{
    rp_store_t *s = ud;
    int64_t now = mono_ms();
    if (count == 0)
        s->busy_since = now;
    if (now - s->busy_since >= s->busy_ms || (s->deadline_ms && now >= s->deadline_ms))
        return 0;
    struct timespec nap = {0, (count < 10 ? 1 : 5) * 1000000L};
    nanosleep(&nap, NULL);
    return 1;
}

int64_t rp_store_set_deadline(rp_store_t *s, int64_t mono_deadline_ms)
{
    int64_t was = s->deadline_ms;
    s->deadline_ms = mono_deadline_ms;
    return was;
}

int64_t rp_store_deadline(const rp_store_t *s)
{
    return s->deadline_ms;
}

void rp_store_set_interrupt(rp_store_t *s, rp_store_interrupt_fn fn, void *ud,
                            rp_store_interrupt_fn *was_fn, void **was_ud)
{
    if (was_fn)
        *was_fn = s->interrupt;
    if (was_ud)
        *was_ud = s->interrupt_ud;
    s->interrupt = fn;
    s->interrupt_ud = ud;
}

int rp__over_budget(rp_store_t *s, rp_error_t *err)
{
    if (!s->deadline_ms && !s->interrupt)
        return 0;
    if ((s->interrupt && s->interrupt(s->interrupt_ud)) ||
        (s->deadline_ms && mono_ms() >= s->deadline_ms))
        return rp_error_set(err, RP_ELIMIT, RP_C_BUDGET, "the batch was stopped at the time "
                            "budget of the call it ran in; nothing of it was stored");
    return 0;
}

int rp_store_over_budget(rp_store_t *s, rp_error_t *err)
{
    return rp__over_budget(s, err);
}

sqlite3_stmt *rp__reading(rp_store_t *s, sqlite3_stmt *st)
{
    sqlite3_stmt *was = s->reading;
    s->reading = st;
    return was;
}

/* Whether the store's marked read is the only statement running. Anything else busy may be
 * a write, which SQLite answers being cut by rolling back the whole transaction (the group
 * commit's other requests with it), or FTS5's own statements flushing its index (measured:
 * a commit cut there left the index malformed): those are never stopped. */
static bool only_the_read(rp_store_t *s)
{
    if (!s->reading)
        return false;
    for (sqlite3_stmt *st = sqlite3_next_stmt(s->db, NULL); st; st = sqlite3_next_stmt(s->db, st))
        if (st != s->reading && sqlite3_stmt_busy(st))
            return false;
    return sqlite3_stmt_readonly(s->reading);
}

/* SQLite's progress handler, every PROGRESS_OPS virtual-machine steps (about 20 µs): stops the
 * store's marked read (rp__reading) when it runs past the caller's deadline or the caller's
 * own check refuses it. */
#define PROGRESS_OPS 2000
static int progress(void *ud)
{
    rp_store_t *s = ud;
    if (!s->reading || (!s->deadline_ms && !s->interrupt))
        return 0;
    /* The caller's check first: it can say which of its limits stopped the read. The walk over
     * the running statements only once the time is up. */
    bool stop = (s->interrupt && s->interrupt(s->interrupt_ud)) ||
                (s->deadline_ms && mono_ms() >= s->deadline_ms);
    if (!stop || !only_the_read(s))
        return 0;
    s->interrupted = true;
    return 1;
}

int rp_store_set_cache_mb(rp_store_t *s, int mb, rp_error_t *err)
{
    if (mb < 1 || mb > 4096)
        return rp_error_set(err, RP_EINVAL, 0, "a page cache of %d MB: 1 to 4096 MB", mb);
    char sql[80];
    /* A number of our own, never user text. */
    snprintf(sql, sizeof sql, "PRAGMA cache_size = -%d; PRAGMA temp_store = MEMORY", mb * 1024);
    return rp__exec(s, sql, err);
}

void rp__stmt_flush(rp_store_t *s)
{
    for (int i = 0; i < RP__HELD_N; i++) {
        sqlite3_finalize(s->held[i]);
        s->held[i] = NULL;
    }
    for (int i = 0; i < s->nents; i++) {
        sqlite3_finalize(s->ents[i]->st_insert);
        s->ents[i]->st_insert = NULL;
    }
    for (int i = 0; i < RP__STMT_CACHE; i++) {
        if (s->cache[i].sql) {
            sqlite3_finalize(s->cache[i].st);
            free(s->cache[i].sql);
            s->cache[i].sql = NULL;
            s->cache[i].st = NULL;
        }
    }
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
    return true;
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
/* The registry in memory                                                                    */

static void field_free(rp__field_t *f)
{
    free(f->name);
    free(f->ref);
    free(f->owner);
    json_decref(f->def);
    json_decref(f->values);
}

static void entity_free(rp__entity_t *e)
{
    if (!e)
        return;
    for (int i = 0; i < e->nfields; i++)
        field_free(&e->fields[i]);
    free(e->fields);
    free(e->name);
    free(e->label);
    free(e->owner);
    sqlite3_finalize(e->st_insert);
    free(e->sql_insert);
    free(e->sql_select);
    free(e->sql_get);
    free(e);
}

rp__entity_t *rp__entity(const rp_store_t *s, const char *name)
{
    if (!name)
        return NULL;
    for (int i = 0; i < s->nents; i++)
        if (strcmp(s->ents[i]->name, name) == 0)
            return s->ents[i];
    return NULL;
}

rp__entity_t *rp__entity_req(const rp_store_t *s, const char *name, rp_error_t *err)
{
    rp__entity_t *e = rp__entity(s, name);
    if (!e)
        rp_error_set(err, RP_ENOTFOUND, RP_C_NO_ENTITY, "unknown entity \"%s\"",
                     name ? name : "(null)");
    return e;
}

rp__field_t *rp__field(const rp__entity_t *e, const char *name)
{
    for (int i = 0; i < e->nfields; i++)
        if (strcmp(e->fields[i].name, name) == 0)
            return &e->fields[i];
    return NULL;
}

bool rp_store_has_entity(const rp_store_t *s, const char *name)
{
    return rp__entity(s, name) != NULL;
}

static const char *const type_names[] = {"text", "integer", "real",  "decimal", "boolean",
                                          "date", "datetime", "enum", "ref",     "json",
                                          "email", "phone",   "url"};

const char *rp_ftype_name(rp_ftype_t t)
{
    return (unsigned)t < sizeof type_names / sizeof *type_names ? type_names[t] : "?";
}

static int ftype_parse(const char *s)
{
    for (unsigned i = 0; i < sizeof type_names / sizeof *type_names; i++)
        if (strcmp(type_names[i], s) == 0)
            return (int)i;
    return -1;
}

static const char *sql_type(rp_ftype_t t)
{
    switch (t) {
    case RP_T_INTEGER: case RP_T_DECIMAL: case RP_T_BOOLEAN: case RP_T_REF: return "INTEGER";
    case RP_T_REAL: return "REAL";
    default: return "TEXT";
    }
}

/* Rebuilds the SQL texts that depend on an entity's field list. Identifiers come from the
 * registry, where rp__ident_ok() admitted only [a-z0-9_]; values are always bound. */
static int entity_build_sql(rp__entity_t *e)
{
    size_t cap = 256 + (size_t)e->nfields * 64;
    char *ins = malloc(cap), *sel = malloc(cap);
    if (!ins || !sel) {
        free(ins);
        free(sel);
        return RP_ENOMEM;
    }
    int n = snprintf(ins, cap, "INSERT INTO \"%s\"(created_at,updated_at,version,created_by,"
                               "updated_by", e->name);
    int m = snprintf(sel, cap, "SELECT id,created_at,updated_at,version,created_by,updated_by,"
                               "deleted_at");
    for (int i = 0; i < e->nfields; i++) {
        n += snprintf(ins + n, cap - (size_t)n, ",\"%s\"", e->fields[i].name);
        m += snprintf(sel + m, cap - (size_t)m, ",\"%s\"", e->fields[i].name);
    }
    n += snprintf(ins + n, cap - (size_t)n, ") VALUES(?,?,1,?,?");
    for (int i = 0; i < e->nfields; i++)
        n += snprintf(ins + n, cap - (size_t)n, ",?");
    snprintf(ins + n, cap - (size_t)n, ")");
    snprintf(sel + m, cap - (size_t)m, " FROM \"%s\"", e->name);
    size_t glen = strlen(sel) + 20;
    char *get = malloc(glen);
    if (!get) {
        free(ins);
        free(sel);
        return RP_ENOMEM;
    }
    snprintf(get, glen, "%s WHERE id = ?", sel);
    sqlite3_finalize(e->st_insert);
    e->st_insert = NULL;
    free(e->sql_insert);
    free(e->sql_select);
    free(e->sql_get);
    e->sql_insert = ins;
    e->sql_select = sel;
    e->sql_get = get;
    return 0;
}

/* Parses one field specification into @p f (whose name is set). @p self is the entity being
 * defined, so a ref may point at it. */
static int field_parse(rp_store_t *s, const char *entity, const char *self, rp__field_t *f,
                       json_t *spec, rp_error_t *err)
{
    if (!json_is_object(spec))
        return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                            "field \"%s\" of \"%s\": the specification must be an object",
                            f->name, entity);
    const char *key;
    json_t *v;
    json_object_foreach(spec, key, v) {
        static const char *const known[] = {"type",  "required", "unique", "indexed", "searchable",
                                            "default", "values", "ref",    "scale",   "label",
                                            NULL};
        bool ok = false;
        for (int i = 0; known[i]; i++)
            ok = ok || strcmp(known[i], key) == 0;
        if (!ok)
            return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                                "field \"%s\" of \"%s\": unknown option \"%s\" (known: type, "
                                "required, unique, indexed, searchable, default, values, ref, "
                                "scale, label)",
                                f->name, entity, key);
    }
    json_t *jt = json_object_get(spec, "type");
    int t = json_is_string(jt) ? ftype_parse(json_string_value(jt)) : -1;
    if (t < 0)
        return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                            "field \"%s\" of \"%s\": type must be one of text, integer, real, "
                            "decimal, boolean, date, datetime, enum, ref, json, email, phone, url",
                            f->name, entity);
    f->type = (rp_ftype_t)t;
    static const char *const flags[] = {"required", "unique", "indexed", "searchable"};
    bool *dst[] = {&f->required, &f->unique, &f->indexed, &f->searchable};
    for (int i = 0; i < 4; i++) {
        json_t *b = json_object_get(spec, flags[i]);
        if (b && !json_is_boolean(b))
            return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                                "field \"%s\" of \"%s\": \"%s\" must be true or false", f->name,
                                entity, flags[i]);
        *dst[i] = json_is_true(b);
    }
    json_t *vals = json_object_get(spec, "values");
    if (f->type == RP_T_ENUM) {
        if (!json_is_array(vals) || json_array_size(vals) == 0)
            return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                                "enum field \"%s\" of \"%s\" needs \"values\": a non-empty array "
                                "of strings",
                                f->name, entity);
        size_t i, j;
        json_t *a, *b;
        json_array_foreach(vals, i, a) {
            if (!json_is_string(a) || json_string_length(a) == 0)
                return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                                    "enum field \"%s\" of \"%s\": value %zu is not a non-empty "
                                    "string",
                                    f->name, entity, i + 1);
            json_array_foreach(vals, j, b) {
                if (j < i && json_equal(a, b))
                    return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                                        "enum field \"%s\" of \"%s\": value \"%s\" is listed twice",
                                        f->name, entity, json_string_value(a));
            }
        }
        f->values = json_incref(vals);
    } else if (vals) {
        return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                            "field \"%s\" of \"%s\": \"values\" is only for enum fields", f->name,
                            entity);
    }
    json_t *ref = json_object_get(spec, "ref");
    if (f->type == RP_T_REF) {
        const char *target = json_string_value(ref);
        if (!target || (!rp__entity(s, target) && !(self && strcmp(self, target) == 0)))
            return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                                "ref field \"%s\" of \"%s\" needs \"ref\": the name of a defined "
                                "entity (got %s%s%s)",
                                f->name, entity, target ? "\"" : "", target ? target : "none",
                                target ? "\"" : "");
        f->ref = strdup(target);
    } else if (ref) {
        return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                            "field \"%s\" of \"%s\": \"ref\" is only for ref fields", f->name,
                            entity);
    }
    json_t *scale = json_object_get(spec, "scale");
    f->scale = 2;
    if (scale) {
        if (f->type != RP_T_DECIMAL || !json_is_integer(scale) || json_integer_value(scale) < 0 ||
            json_integer_value(scale) > 9)
            return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                                "field \"%s\" of \"%s\": \"scale\" is an integer 0..9, for "
                                "decimal fields only",
                                f->name, entity);
        f->scale = (int)json_integer_value(scale);
    }
    json_t *def = json_object_get(spec, "default");
    if (def && !json_is_null(def)) {
        if (f->type == RP_T_REF)
            return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                                "ref field \"%s\" of \"%s\" cannot have a default", f->name,
                                entity);
        json_t *canon = NULL;
        int rc = rp__value_canon(entity, f, def, &canon, err);
        if (rc)
            return rc;
        f->def = canon;
    }
    return 0;
}

/* The canonical specification of a field, as stored in rp_fields and shown by the schema. */
static json_t *field_spec_json(const rp__field_t *f)
{
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string(rp_ftype_name(f->type)));
    if (f->required) json_object_set_new(o, "required", json_true());
    if (f->unique) json_object_set_new(o, "unique", json_true());
    if (f->indexed) json_object_set_new(o, "indexed", json_true());
    if (f->searchable) json_object_set_new(o, "searchable", json_true());
    if (f->def) json_object_set(o, "default", f->def);
    if (f->values) json_object_set(o, "values", f->values);
    if (f->ref) json_object_set_new(o, "ref", json_string(f->ref));
    if (f->type == RP_T_DECIMAL) json_object_set_new(o, "scale", json_integer(f->scale));
    return o;
}

static int registry_load(rp_store_t *s, rp_error_t *err)
{
    s->schema_gen++;
    sqlite3_stmt *q = NULL, *qf = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT no, name, label, owner FROM rp_entities ORDER BY no", -1,
                           &q, NULL) ||
        sqlite3_prepare_v2(s->db,
                           "SELECT name, spec, owner FROM rp_fields WHERE entity = ?"
                           " ORDER BY position",
                           -1, &qf, NULL)) {
        rc = rp__dberr(s, SQLITE_ERROR, "cannot read the entity registry", err);
        goto out;
    }
    while (sqlite3_step(q) == SQLITE_ROW) {
        rp__entity_t *e = calloc(1, sizeof *e);
        rp__entity_t **grown = realloc(s->ents, sizeof *s->ents * (size_t)(s->nents + 1));
        if (!e || !grown) {
            free(e);
            if (grown)
                s->ents = grown;
            rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
            goto out;
        }
        s->ents = grown;
        s->ents[s->nents++] = e;
        e->no = sqlite3_column_int64(q, 0);
        e->name = strdup((const char *)sqlite3_column_text(q, 1));
        e->label = sqlite3_column_text(q, 2) ? strdup((const char *)sqlite3_column_text(q, 2))
                                             : NULL;
        e->owner = strdup((const char *)sqlite3_column_text(q, 3));
        sqlite3_reset(qf);
        sqlite3_bind_text(qf, 1, e->name, -1, SQLITE_STATIC);
        while (sqlite3_step(qf) == SQLITE_ROW) {
            rp__field_t *nf = realloc(e->fields, sizeof *nf * (size_t)(e->nfields + 1));
            if (!nf) {
                rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
                goto out;
            }
            e->fields = nf;
            rp__field_t *f = &e->fields[e->nfields++];
            memset(f, 0, sizeof *f);
            f->name = strdup((const char *)sqlite3_column_text(qf, 0));
            f->owner = strdup((const char *)sqlite3_column_text(qf, 2));
            json_t *spec = json_loads((const char *)sqlite3_column_text(qf, 1), 0, NULL);
            /* The ref target may be defined later in the file; the table was checked when
             * the field was made, so accept the stored name as is. */
            rc = spec ? field_parse(s, e->name, json_string_value(json_object_get(spec, "ref")),
                                    f, spec, err)
                      : rp_error_set(err, RP_EIO, RP_C_SQL,
                                     "the registry entry of %s.%s is not valid JSON", e->name,
                                     f->name);
            json_decref(spec);
            if (rc)
                goto out;
            if (f->searchable)
                e->nsearch++;
        }
        if (entity_build_sql(e)) {
            rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
            goto out;
        }
    }
out:
    sqlite3_finalize(q);
    sqlite3_finalize(qf);
    return rc;
}

/* SQLite's count of schema changes to the file, by any connection. */
static int schema_cookie(rp_store_t *s)
{
    sqlite3_stmt *st = rp__stmt(s, "PRAGMA schema_version", NULL);
    int v = st && sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    if (st)
        sqlite3_reset(st);
    return v;
}

static void registry_free(rp_store_t *s)
{
    for (int i = 0; i < s->nents; i++)
        entity_free(s->ents[i]);
    free(s->ents);
    s->ents = NULL;
    s->nents = 0;
}

/* After a failed schema change the in-memory registry may be ahead of the rolled-back file:
 * reload it from the file. */
uint64_t rp_store_schema_generation(const rp_store_t *s)
{
    return s->schema_gen;
}

static void registry_reload(rp_store_t *s)
{
    rp__stmt_flush(s);
    registry_free(s);
    rp_error_t ignored;
    registry_load(s, &ignored);
    s->seen_schema = schema_cookie(s);
}

int rp_store_refresh(rp_store_t *s)
{
    if (s->txn_depth > 0)
        return 0;
    int v = schema_cookie(s);
    if (v < 0 || v == s->seen_schema)
        return 0;
    registry_reload(s);
    return 1;
}

/* ---------------------------------------------------------------------------------------- */
/* Opening and migrations                                                                    */

static int read_schema_version(rp_store_t *s, int *version, rp_error_t *err)
{
    sqlite3_stmt *st;
    *version = 0;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='rp_meta'",
                                -1, &st, NULL);
    if (rc)
        return rp__dberr(s, rc, "cannot read the database", err);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW)
        return rp__dberr(s, rc, "cannot read the database", err);
    rc = sqlite3_prepare_v2(s->db, "SELECT value FROM rp_meta WHERE key='schema_version'", -1,
                            &st, NULL);
    if (rc)
        return rp__dberr(s, rc, "cannot read the schema version", err);
    if (sqlite3_step(st) == SQLITE_ROW)
        *version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return 0;
}

static int migrate(rp_store_t *s, rp_error_t *err)
{
    int found;
    int rc = read_schema_version(s, &found, err);
    if (rc)
        return rc;
    s->schema_found = found;
    if (found > RP_STORE_SCHEMA_VERSION)
        return rp_error_set(err, RP_EVERSION, RP_C_NEWER,
                            "this database has schema version %d, written by a newer Rapport; "
                            "this build (" RP_VERSION ") understands up to version %d",
                            found, RP_STORE_SCHEMA_VERSION);
    if (found == RP_STORE_SCHEMA_VERSION)
        return 0;
    if ((rc = rp__exec(s, "BEGIN IMMEDIATE", err)))
        return rc;
    for (int v = found; v < RP_STORE_SCHEMA_VERSION; v++)
        if ((rc = rp__exec(s, migrations[v], err)))
            goto fail;
    sqlite3_stmt *st;
    rc = sqlite3_prepare_v2(s->db,
                            "INSERT INTO rp_meta(key, value) VALUES('schema_version', ?1),"
                            " ('written_by', ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                            -1, &st, NULL);
    if (rc) {
        rc = rp__dberr(s, rc, "cannot record the schema version", err);
        goto fail;
    }
    sqlite3_bind_int(st, 1, RP_STORE_SCHEMA_VERSION);
    sqlite3_bind_text(st, 2, "rapport " RP_VERSION, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        rc = rp__dberr(s, rc, "cannot record the schema version", err);
        goto fail;
    }
    return rp__exec(s, "COMMIT", err);
fail:
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

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
    /* Memory statistics cost a mutex on every allocation and nothing here reads them. The call
     * only takes effect before SQLite is first initialised, and is harmless after. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    rp_store_t *s = calloc(1, sizeof *s);
    if (!s)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    s->now_fn = o.now_ms ? o.now_ms : real_now;
    s->now_ud = o.now_ud;
    s->max_depth = o.max_depth > 0 ? o.max_depth : 16;
    s->rng = os_seed();
    s->next_hook_id = 1;
    int rc = sqlite3_open_v2(path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = rp_error_set(err, RP_EIO, RP_C_OPEN, "cannot open database %s: %s", path,
                          s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    s->busy_ms = o.busy_timeout_ms > 0 ? o.busy_timeout_ms : 5000;
    sqlite3_busy_handler(s->db, busy_wait, s);
    sqlite3_progress_handler(s->db, PROGRESS_OPS, progress, s);
    if ((rc = rp__fts_register(s->db)) != SQLITE_OK) {
        rc = rp__dberr(s, rc, "cannot register the search tokenizer", err);
        goto fail;
    }
    /* journal_mode answers with a row; run it through exec and check the result. */
    const char *pragmas = o.sync_full ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                                        " PRAGMA foreign_keys=ON;"
                                      : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                                        " PRAGMA foreign_keys=ON;";
    if (sqlite3_exec(s->db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) != SQLITE_OK) {
        rc = rp_error_set(err, RP_EIO, RP_C_OPEN, "%s is not a Rapport database (or is damaged): "
                          "%s", path, sqlite3_errmsg(s->db));
        goto fail;
    }
    if ((rc = rp__exec(s, pragmas, err)))
        goto fail;
    if (!(rc = migrate(s, err)) && !(rc = registry_load(s, err)))
        s->seen_schema = schema_cookie(s);
    if (rc)
        goto fail;
    *out = s;
    return 0;
fail:
    rp_store_close(s);
    return rc;
}

void rp_store_close(rp_store_t *s)
{
    if (!s)
        return;
    if (s->txn_depth > 0 && s->db)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    rp__stmt_flush(s);
    rp__hooks_free(s);
    registry_free(s);
    if (s->db)
        sqlite3_close_v2(s->db);
    free(s);
}

/* ---------------------------------------------------------------------------------------- */
/* Transactions                                                                              */

/* Writes "<prefix><depth>" into @p out: savepoint names, made often, so without printf. */
static const char *level_sql(char *out, const char *prefix, int depth)
{
    size_t n = strlen(prefix);
    memcpy(out, prefix, n);
    char digits[12];
    int k = 0;
    do {
        digits[k++] = (char)('0' + depth % 10);
        depth /= 10;
    } while (depth && k < 11);
    while (k)
        out[n++] = digits[--k];
    out[n] = '\0';
    return out;
}

int rp_store_begin(rp_store_t *s, rp_error_t *err)
{
    if (s->lazy_sp) {
        s->lazy_sp = false;
        int rc = rp_store_begin(s, err);
        if (rc)
            return rc;
        s->lazy_open = true;
    }
    char buf[40];
    const char *sql = s->txn_depth == 0 ? "BEGIN IMMEDIATE"
                                         : level_sql(buf, "SAVEPOINT rp_sp", s->txn_depth);
    sqlite3_stmt *st = s->txn_depth > 0 && s->txn_depth <= RP__SP_HELD
                           ? rp__stmt_held(s, &s->held[RP__HELD_SP + s->txn_depth - 1], sql, err)
                           : rp__stmt(s, sql, err);
    if (!st)
        return err ? err->code : RP_EIO;
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return rp__dberr(s, rc, "cannot begin a transaction", err);
    s->txn_depth++;
    return 0;
}

int rp_store_commit(rp_store_t *s, rp_error_t *err)
{
    if (s->txn_depth == 0)
        return rp_error_set(err, RP_ESTATE, RP_C_TXN, "commit without an open transaction");
    if (s->aborted || sqlite3_get_autocommit(s->db))
        return rp_store_rollback(s, err); /* nothing is left to commit: say so */
    char buf[40];
    int level = s->txn_depth - 1;
    const char *sql = level == 0 ? "COMMIT" : level_sql(buf, "RELEASE rp_sp", level);
    sqlite3_stmt *st = level > 0 && level <= RP__SP_HELD
                           ? rp__stmt_held(s, &s->held[RP__HELD_RELEASE + level - 1], sql, err)
                           : rp__stmt(s, sql, err);
    if (!st)
        return err ? err->code : RP_EIO;
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        int code = rp__dberr(s, rc, "cannot commit", err);
        /* A failed COMMIT leaves the transaction open: roll it back so nothing half-done
         * lingers and the depth stays true. */
        rp_store_rollback(s, NULL);
        return code;
    }
    s->txn_depth--;
    if (s->txn_depth == 0 && s->schema_dirty) {
        /* A nested rollback may have undone part of the schema: read it back once, here. */
        registry_reload(s);
        s->schema_dirty = false;
    }
    return 0;
}

int rp_store_rollback(rp_store_t *s, rp_error_t *err)
{
    if (s->txn_depth == 0)
        return rp_error_set(err, RP_ESTATE, RP_C_TXN, "rollback without an open transaction");
    if (s->aborted || sqlite3_get_autocommit(s->db)) {
        /* SQLite already rolled everything back by itself (disk full, I/O error): each level
         * unwinds with an error, and nothing runs meanwhile (see rp__stmt). */
        s->aborted = --s->txn_depth > 0;
        if (s->txn_depth == 0 && s->schema_dirty) {
            registry_reload(s);
            s->schema_dirty = false;
        }
        return rp_error_set(err, RP_EIO, RP_C_SQL,
                            "the database rolled the whole transaction back after an error");
    }
    s->txn_depth--;
    int rc = 0;
    if (s->txn_depth == 0) {
        /* SQLite may already have rolled back by itself (e.g. after SQLITE_FULL). */
        if (!sqlite3_get_autocommit(s->db) &&
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
            rc = rp__dberr(s, SQLITE_ERROR, "cannot roll back", err);
    } else {
        char buf[40];
        const char *steps[2] = {level_sql(buf, "ROLLBACK TO rp_sp", s->txn_depth), NULL};
        for (int i = 0; i < 2 && !rc; i++) {
            if (i == 1)
                steps[1] = level_sql(buf, "RELEASE rp_sp", s->txn_depth);
            sqlite3_stmt *st = rp__stmt(s, steps[i], err);
            int src = st ? sqlite3_step(st) : SQLITE_ERROR;
            if (st)
                sqlite3_reset(st);
            if (src != SQLITE_DONE)
                rc = rp__dberr(s, src, "cannot roll back to a savepoint", err);
        }
    }
    /* A schema change undone by the rollback must leave the registry in memory too; but only
     * at the outermost level, since callers below hold pointers into the registry. */
    if (s->schema_dirty && s->txn_depth == 0) {
        registry_reload(s);
        s->schema_dirty = false;
    }
    return rc;
}

int rp_store_txn_depth(const rp_store_t *s)
{
    return s->txn_depth;
}

/* ---------------------------------------------------------------------------------------- */
/* Defining entities and fields                                                              */

static int step_done(rp_store_t *s, sqlite3_stmt *st, const char *what, rp_error_t *err)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : rp__dberr(s, rc, what, err);
}

static int store_field_row(rp_store_t *s, const char *entity, const rp__field_t *f, int pos,
                           const char *now, rp_error_t *err)
{
    sqlite3_stmt *st = rp__stmt(s,
                                "INSERT INTO rp_fields(entity, name, position, spec, owner,"
                                " created_at) VALUES(?,?,?,?,?,?)",
                                err);
    if (!st)
        return err ? err->code : RP_EIO;
    json_t *spec = field_spec_json(f);
    char *text = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(spec);
    if (!text)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    sqlite3_bind_text(st, 1, entity, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, f->name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, pos);
    sqlite3_bind_text(st, 4, text, -1, free);
    sqlite3_bind_text(st, 5, f->owner, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, now, -1, SQLITE_STATIC);
    return step_done(s, st, "cannot record the field", err);
}

/* CREATE INDEX for a unique or indexed field. */
static int field_index(rp_store_t *s, const char *entity, const rp__field_t *f, rp_error_t *err)
{
    char sql[256];
    if (f->unique || f->indexed || f->type == RP_T_REF) {
        snprintf(sql, sizeof sql, "CREATE %sINDEX \"rp_ix_%s_%s\" ON \"%s\"(\"%s\")",
                 f->unique ? "UNIQUE " : "", entity, f->name, entity, f->name);
        int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            if ((rc & 0xff) == SQLITE_CONSTRAINT)
                return rp_error_set(err, RP_ECONFLICT, RP_C_UNIQUE,
                                    "cannot make %s.%s unique: existing records share a value",
                                    entity, f->name);
            return rp__dberr(s, rc, "cannot index the field", err);
        }
    }
    return 0;
}

static void column_def(const char *entity, const rp__field_t *f, char *out, size_t cap)
{
    int n = snprintf(out, cap, "\"%s\" %s", f->name, sql_type(f->type));
    if (f->type == RP_T_REF)
        snprintf(out + n, cap - (size_t)n, " REFERENCES \"%s\"(id)", f->ref);
    (void)entity;
}

static int spec_fields_check(json_t *fields, const char *name, rp_error_t *err)
{
    if (!json_is_object(fields))
        return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                            "entity \"%s\": \"fields\" must be an object of field specifications",
                            name);
    const char *fname;
    json_t *v;
    json_object_foreach(fields, fname, v) {
        if (!rp__ident_ok(fname) || rp__is_system_field(fname))
            return rp_error_set(err, RP_EINVAL, RP_C_IDENT,
                                "entity \"%s\": \"%s\" is not a valid field name (lower-case "
                                "letters, digits and _, starting with a letter, at most 48, not "
                                "one of id, version, created_at, updated_at, created_by, "
                                "updated_by, deleted_at)",
                                name, fname);
    }
    return 0;
}

int rp_store_define(rp_store_t *s, const rp_ctx_t *ctx, const char *name, json_t *spec,
                    const char *owner, rp_error_t *err)
{
    if (!rp__ident_ok(name))
        return rp_error_set(err, RP_EINVAL, RP_C_IDENT,
                            "\"%s\" is not a valid entity name (lower-case letters, digits and _, "
                            "starting with a letter, at most 48 characters, not starting with "
                            "rp_ or sqlite)",
                            name ? name : "(null)");
    if (rp__entity(s, name))
        return rp_error_set(err, RP_ECONFLICT, RP_C_DUP_ENTITY, "entity \"%s\" is already defined",
                            name);
    json_t *fields = json_is_object(spec) ? json_object_get(spec, "fields") : NULL;
    if (!json_is_object(spec))
        return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                            "entity \"%s\": the specification must be an object {\"fields\": …}",
                            name);
    if (!fields)
        fields = json_object_get(spec, "fields"); /* may stay NULL: an entity without fields */
    if (fields && spec_fields_check(fields, name, err))
        return err ? err->code : RP_EIO;
    json_t *label = json_object_get(spec, "label");
    if (label && !json_is_string(label))
        return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC, "entity \"%s\": label must be text",
                            name);

    rp__entity_t *e = calloc(1, sizeof *e);
    if (!e)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    e->name = strdup(name);
    e->label = label ? strdup(json_string_value(label)) : NULL;
    e->owner = strdup(owner ? owner : "admin");
    size_t nf = fields ? json_object_size(fields) : 0;
    e->fields = calloc(nf ? nf : 1, sizeof *e->fields);
    int rc = 0;
    char *sql = NULL;
    size_t cap = 512 + nf * 160;
    bool began = false;
    if (!e->name || !e->owner || !e->fields || !(sql = malloc(cap))) {
        rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        goto fail;
    }
    /* Registry order is alphabetical by field name: JSON objects carry no order we can trust
     * across languages, and a stable order keeps exports and schema output predictable. */
    const char **names = calloc(nf ? nf : 1, sizeof *names);
    if (!names) {
        rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        goto fail;
    }
    {
        size_t k = 0;
        const char *fname;
        json_t *v;
        json_object_foreach(fields, fname, v) names[k++] = fname;
        for (size_t i = 1; i < nf; i++)
            for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
                const char *t = names[j];
                names[j] = names[j - 1];
                names[j - 1] = t;
            }
    }
    for (size_t i = 0; i < nf; i++) {
        rp__field_t *f = &e->fields[e->nfields++];
        f->name = strdup(names[i]);
        f->owner = strdup(e->owner);
        if ((rc = field_parse(s, name, name, f, json_object_get(fields, names[i]), err)))
            break;
        if (f->searchable)
            e->nsearch++;
    }
    free(names);
    if (rc)
        goto fail;

    int n = snprintf(sql, cap,
                     "CREATE TABLE \"%s\"(id INTEGER PRIMARY KEY AUTOINCREMENT,"
                     " created_at TEXT NOT NULL, updated_at TEXT NOT NULL,"
                     " version INTEGER NOT NULL, created_by TEXT NOT NULL,"
                     " updated_by TEXT NOT NULL, deleted_at TEXT",
                     name);
    for (int i = 0; i < e->nfields; i++) {
        char col[160];
        column_def(name, &e->fields[i], col, sizeof col);
        n += snprintf(sql + n, cap - (size_t)n, ", %s", col);
    }
    snprintf(sql + n, cap - (size_t)n, ")");

    if ((rc = rp_store_begin(s, err)))
        goto fail;
    began = true;
    s->schema_dirty = true;
    s->schema_gen++;
    if ((rc = rp__exec(s, sql, err)))
        goto fail;
    for (int i = 0; i < e->nfields; i++)
        if ((rc = field_index(s, name, &e->fields[i], err)))
            goto fail;
    char now[32];
    rp__fmt_time(rp_store_now(s), now);
    sqlite3_stmt *st = rp__stmt(s,
                                "INSERT INTO rp_entities(name, label, owner, created_at)"
                                " VALUES(?,?,?,?)",
                                err);
    if (!st) {
        rc = err ? err->code : RP_EIO;
        goto fail;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (e->label)
        sqlite3_bind_text(st, 2, e->label, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, e->owner, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, now, -1, SQLITE_STATIC);
    if ((rc = step_done(s, st, "cannot record the entity", err)))
        goto fail;
    e->no = sqlite3_last_insert_rowid(s->db);
    for (int i = 0; i < e->nfields; i++)
        if ((rc = store_field_row(s, name, &e->fields[i], i, now, err)))
            goto fail;
    if ((rc = entity_build_sql(e)) != 0) {
        rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        goto fail;
    }
    json_t *desc = json_object();
    json_t *fdesc = json_object();
    for (int i = 0; i < e->nfields; i++)
        json_object_set_new(fdesc, e->fields[i].name, field_spec_json(&e->fields[i]));
    json_object_set_new(desc, "fields", fdesc);
    rc = rp__event_append(s, ctx, "schema.entity_defined", name, 0, desc, NULL, err);
    json_decref(desc);
    if (rc)
        goto fail;
    rp__entity_t **grown = realloc(s->ents, sizeof *s->ents * (size_t)(s->nents + 1));
    if (!grown) {
        rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        goto fail;
    }
    s->ents = grown;
    s->ents[s->nents++] = e;
    if ((rc = rp_store_commit(s, err))) {
        began = false;
        registry_reload(s);
        free(sql);
        return rc;
    }
    free(sql);
    return 0;
fail:
    if (began)
        rp_store_rollback(s, NULL);
    entity_free(e);
    free(sql);
    return rc;
}

static int table_has_rows(rp_store_t *s, const char *entity, bool *has, rp_error_t *err)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT EXISTS(SELECT 1 FROM \"%s\")", entity);
    sqlite3_stmt *st = rp__stmt(s, sql, err);
    if (!st)
        return err ? err->code : RP_EIO;
    if (sqlite3_step(st) != SQLITE_ROW)
        return rp__dberr(s, SQLITE_ERROR, "cannot read the table", err);
    *has = sqlite3_column_int(st, 0) != 0;
    sqlite3_reset(st);
    return 0;
}

int rp_store_add_field(rp_store_t *s, const rp_ctx_t *ctx, const char *entity, const char *field,
                       json_t *fspec, const char *owner, rp_error_t *err)
{
    rp__entity_t *e = rp__entity_req(s, entity, err);
    if (!e)
        return err ? err->code : RP_EIO;
    if (!rp__ident_ok(field) || rp__is_system_field(field))
        return rp_error_set(err, RP_EINVAL, RP_C_IDENT,
                            "\"%s\" is not a valid field name for \"%s\" (lower-case letters, "
                            "digits and _, starting with a letter, at most 48, not a system field)",
                            field ? field : "(null)", entity);
    if (rp__field(e, field))
        return rp_error_set(err, RP_ECONFLICT, RP_C_DUP_FIELD,
                            "field \"%s\" is already defined on \"%s\"", field, entity);
    rp__field_t f = {0};
    f.name = strdup(field);
    f.owner = strdup(owner ? owner : "admin");
    int rc = field_parse(s, entity, entity, &f, fspec, err);
    bool began = false;
    if (rc)
        goto fail;
    if ((rc = rp_store_begin(s, err)))
        goto fail;
    began = true;
    s->schema_dirty = true;
    s->schema_gen++;
    bool has_rows = false;
    if ((rc = table_has_rows(s, entity, &has_rows, err)))
        goto fail;
    if (f.required && !f.def && has_rows) {
        rc = rp_error_set(err, RP_EINVAL, RP_C_REQUIRED,
                          "cannot add required field \"%s\" to \"%s\": it holds records, so give "
                          "the field a default",
                          field, entity);
        goto fail;
    }
    char col[160], sql[400];
    column_def(entity, &f, col, sizeof col);
    /* A numeric default becomes the column's DEFAULT, so existing rows read it at no cost;
     * its literal is printed from a number we parsed, never from the caller's text. A text
     * default is written to the existing rows with a bound UPDATE instead. */
    char lit[64] = "";
    bool numeric_def = false;
    if (f.def && (f.type == RP_T_INTEGER || f.type == RP_T_BOOLEAN)) {
        snprintf(lit, sizeof lit, " DEFAULT %lld",
                 (long long)(json_is_boolean(f.def) ? json_is_true(f.def)
                                                    : json_integer_value(f.def)));
        numeric_def = true;
    } else if (f.def && f.type == RP_T_REAL) {
        snprintf(lit, sizeof lit, " DEFAULT %.17g", json_real_value(f.def));
        numeric_def = true;
    } else if (f.def && f.type == RP_T_DECIMAL) {
        sqlite3_stmt *tmp;
        /* Reuse the codec: bind the canonical string into a SELECT to get the scaled integer. */
        if (sqlite3_prepare_v2(s->db, "SELECT ?", -1, &tmp, NULL) == SQLITE_OK) {
            rp__value_bind(tmp, 1, &f, f.def);
            if (sqlite3_step(tmp) == SQLITE_ROW)
                snprintf(lit, sizeof lit, " DEFAULT %lld",
                         (long long)sqlite3_column_int64(tmp, 0));
            sqlite3_finalize(tmp);
        }
        numeric_def = true;
        if (!lit[0]) {
            rc = rp_error_set(err, RP_EIO, RP_C_SQL, "cannot compute the default of %s.%s",
                              entity, field);
            goto fail;
        }
    }
    snprintf(sql, sizeof sql, "ALTER TABLE \"%s\" ADD COLUMN %s%s", entity, col, lit);
    if ((rc = rp__exec(s, sql, err)))
        goto fail;
    if (f.def && !numeric_def && has_rows) {
        snprintf(sql, sizeof sql, "UPDATE \"%s\" SET \"%s\" = ?", entity, field);
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
            rc = rp__dberr(s, SQLITE_ERROR, "cannot fill the default", err);
            goto fail;
        }
        rp__value_bind(st, 1, &f, f.def);
        int src = sqlite3_step(st);
        sqlite3_finalize(st);
        if (src != SQLITE_DONE) {
            rc = rp__dberr(s, src, "cannot fill the default", err);
            goto fail;
        }
    }
    if ((rc = field_index(s, entity, &f, err)))
        goto fail;
    char now[32];
    rp__fmt_time(rp_store_now(s), now);
    if ((rc = store_field_row(s, entity, &f, e->nfields, now, err)))
        goto fail;
    json_t *desc = json_object();
    json_object_set_new(desc, "field", json_string(field));
    json_object_set_new(desc, "spec", field_spec_json(&f));
    rc = rp__event_append(s, ctx, "schema.field_added", entity, 0, desc, NULL, err);
    json_decref(desc);
    if (rc)
        goto fail;
    rp__field_t *nf = realloc(e->fields, sizeof *nf * (size_t)(e->nfields + 1));
    if (!nf) {
        rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        goto fail;
    }
    e->fields = nf;
    e->fields[e->nfields++] = f;
    if (f.searchable)
        e->nsearch++;
    if (entity_build_sql(e)) {
        e->nfields--;
        rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        goto fail;
    }
    rp__stmt_flush(s);
    /* Existing rows now hold the default: a searchable one must be findable too. */
    if (f.searchable && f.def && has_rows && (rc = rp__reindex(s, e, err))) {
        e->nsearch--;
        e->nfields--;
        entity_build_sql(e);
        goto fail;
    }
    if ((rc = rp_store_commit(s, err))) {
        registry_reload(s);
        return rc;
    }
    return 0;
fail:
    if (began)
        rp_store_rollback(s, NULL);
    field_free(&f);
    return rc;
}

json_t *rp_store_schema(rp_store_t *s, const char *entity, rp_error_t *err)
{
    json_t *all = json_object();
    for (int i = 0; i < s->nents; i++) {
        rp__entity_t *e = s->ents[i];
        if (entity && strcmp(entity, e->name) != 0)
            continue;
        json_t *d = json_object();
        if (e->label)
            json_object_set_new(d, "label", json_string(e->label));
        json_object_set_new(d, "owner", json_string(e->owner));
        json_t *fs = json_object();
        for (int j = 0; j < e->nfields; j++)
            json_object_set_new(fs, e->fields[j].name, field_spec_json(&e->fields[j]));
        json_object_set_new(d, "fields", fs);
        if (entity) {
            json_decref(all);
            return d;
        }
        json_object_set_new(all, e->name, d);
    }
    if (entity) {
        json_decref(all);
        rp_error_set(err, RP_ENOTFOUND, RP_C_NO_ENTITY, "unknown entity \"%s\"", entity);
        return NULL;
    }
    return all;
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
    sqlite3_stmt *st = rp__stmt(s, "SELECT value FROM rp_settings WHERE key = ?", err);
    if (!st)
        return err ? err->code : RP_EIO;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *value = json_loads((const char *)sqlite3_column_text(st, 0), JSON_DECODE_ANY, NULL);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return rp_error_set(err, RP_ENOTFOUND, RP_C_NO_RECORD, "setting \"%s\" is not set", key);
    return rc == SQLITE_ROW ? 0 : rp__dberr(s, rc, "cannot read the setting", err);
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
    sqlite3_stmt *st = rp__stmt(s, value ? "INSERT INTO rp_settings(key, value, updated_at,"
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
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        if (text)
            sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, ctx && ctx->actor ? ctx->actor : "system", -1, SQLITE_STATIC);
        rc = step_done(s, st, "cannot save the setting", err);
    } else {
        rc = err ? err->code : RP_EIO;
    }
    if (!rc) {
        /* A setting that holds a secret (its name says so) is logged as changed, not shown:
         * the event log is read by handlers, webhooks and anyone who may read events. */
        bool secret = false;
        static const char *const marks[] = {"secret", "password", "token", "api_key",
                                            "apikey", "credential", "private_key", NULL};
        for (int i = 0; marks[i] && !secret; i++)
            secret = strstr(key, marks[i]) != NULL;
        json_t *hid = json_string("[secret]");
        json_t *ch = json_pack("{s:[OO]}", key,
                               old ? (secret ? hid : old) : json_null(),
                               value ? (secret ? hid : value) : json_null());
        json_decref(hid);
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
    sqlite3_stmt *st = rp__stmt(s, "SELECT key, value FROM rp_settings ORDER BY key", err);
    if (!st)
        return err ? err->code : RP_EIO;
    json_t *all = json_object();
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_t *v = json_loads((const char *)sqlite3_column_text(st, 1), JSON_DECODE_ANY, NULL);
        json_object_set_new(all, (const char *)sqlite3_column_text(st, 0), v ? v : json_null());
    }
    sqlite3_reset(st);
    *out = all;
    return 0;
}
