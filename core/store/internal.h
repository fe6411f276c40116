/*
 * internal.h — what the store's and the event log's files share: the store object, the
 * in-memory registry, the statement cache and the value codec. Not installed; plugins and the
 * CLI never include it.
 */
#ifndef RAPPORT_STORE_INTERNAL_H
#define RAPPORT_STORE_INTERNAL_H

#include <sqlite3.h>

#include "rapport/events.h"
#include "rapport/access.h"
#include "rapport/store.h"
#include "rapport/time.h"

/** Record ids live in the low 40 bits of a search-index rowid; the entity number above. */
#define RP__FTS_SHIFT 40

/** One field of the registry. */
typedef struct rp__field {
    char *name;
    rp_ftype_t type;
    bool required, unique, indexed, searchable;
    json_t *def;    /* Canonical default, or NULL. */
    json_t *values; /* Enum values (array of strings), or NULL. */
    char *ref;      /* Target entity of a ref, or NULL. */
    int scale;      /* Decimal places of a decimal. */
    char *owner;
} rp__field_t;

/** One entity of the registry, with its prepared SQL texts. */
typedef struct rp__entity {
    char *name, *label, *owner;
    int64_t no; /* Its number in rp_entities: the high bits of its search rowids. */
    rp__field_t *fields;
    int nfields;
    int nsearch;     /* How many searchable fields. */
    char *sql_insert; /* INSERT of every column, fields in registry order. */
    char *sql_select; /* SELECT of every column, without WHERE. */
    char *sql_get;    /* sql_select WHERE id = ?. */
    sqlite3_stmt *st_insert; /* sql_insert prepared, held (rp__stmt_held). */
} rp__entity_t;

/** A hook registration. */
typedef struct rp__hook {
    int id;
    char *entity; /* "*" for all. */
    rp_action_t action;
    int priority;
    rp_hook_fn fn;
    rp_batch_hook_fn bfn;
    void *ud;
    char *owner;
} rp__hook_t;

#define RP__STMT_CACHE 256
#define RP__SP_HELD 8 /* savepoint levels whose SAVEPOINT and RELEASE are held */

/** The statements of the hottest paths, held by slot rather than looked up by text. */
enum { RP__HELD_EVENT, RP__HELD_SP, RP__HELD_RELEASE = RP__HELD_SP + RP__SP_HELD,
       RP__HELD_N = RP__HELD_RELEASE + RP__SP_HELD };

struct rp_store {
    sqlite3 *db;
    rp__entity_t **ents;
    int nents;
    int txn_depth;
    int64_t (*now_fn)(void *ud);
    void *now_ud;
    int max_depth;
    int schema_found;
    bool schema_dirty; /* The registry changed in the open transaction. */
    uint64_t schema_gen; /* Moves whenever the registry is read or changed. */
    int seen_schema;   /* SQLite's schema_version when the registry was last read */
    /* A savepoint that rp_store_begin() opens only if a write happens: event handlers that
     * merely read cost no statement. lazy_open says whether it was opened. */
    bool lazy_sp, lazy_open;
    /* SQLite rolled the whole transaction back by itself (disk full, I/O error) while levels
     * were open: every statement fails until the outermost level has unwound. */
    bool aborted;
    rp__hook_t *hooks;
    int nhooks, caphooks, next_hook_id;
    struct {
        char *sql;
        sqlite3_stmt *st;
    } cache[RP__STMT_CACHE];
    sqlite3_stmt *held[RP__HELD_N];
    int busy_ms;             /* how long to wait for another writer */
    int64_t busy_since;      /* when the current wait began (monotonic ms) */
    int64_t deadline_ms;     /* no wait past this (monotonic ms), 0 for none */
    int (*interrupt)(void *ud); /* asked between steps of a long read: stop it? (or NULL) */
    void *interrupt_ud;
    bool interrupted;        /* the last statement was stopped by the budget */
    sqlite3_stmt *reading;   /* the read the budget may stop (rp__reading), or NULL */
    int64_t uid_last_ms;
    uint64_t uid_hi, uid_lo, rng;
};

/** Writes @p a then @p b into @p out (of @p cap bytes), cut to fit: a snprintf("%s%s")
 * for the write path, where printf's parsing showed in the profile. */
static inline void rp__cat(char *out, size_t cap, const char *a, const char *b)
{
    size_t n = 0;
    for (; *a && n + 1 < cap; a++)
        out[n++] = *a;
    for (; b && *b && n + 1 < cap; b++)
        out[n++] = *b;
    out[n] = '\0';
}

/* --- store.c ------------------------------------------------------------------------------ */

/** A cached prepared statement for @p sql (reset, bindings cleared). NULL with err filled. */
sqlite3_stmt *rp__stmt(rp_store_t *s, const char *sql, rp_error_t *err);
/**
 * As rp__stmt() for a statement kept in @p *slot (prepared on first use): for the few
 * statements every write runs, where looking the text up cost as much as running them. Its
 * bindings are not cleared: the caller binds every parameter.
 */
sqlite3_stmt *rp__stmt_held(rp_store_t *s, sqlite3_stmt **slot, const char *sql,
                            rp_error_t *err);
/** Forgets every cached and held statement (after a schema change). */
void rp__stmt_flush(rp_store_t *s);
/** Fills @p err from the database's last error, naming @p what. Returns the RP_E* code. */
/** RP_ELIMIT (RP-E1704) when the caller's deadline has passed or its check says stop: asked
 *  between the records of a batch write, where stopping is clean (a statement cut half-way
 *  would roll the whole transaction back). */
int rp__over_budget(rp_store_t *s, rp_error_t *err);
/** Marks @p st as the read the caller's budget may stop between two of its steps (NULL: none;
 *  returns the mark it replaces). Only a read-only statement, and only while nothing else
 *  runs (no write, no FTS5 flush), is ever stopped: see progress() in store.c. */
sqlite3_stmt *rp__reading(rp_store_t *s, sqlite3_stmt *st);
int rp__dberr(rp_store_t *s, int rc, const char *what, rp_error_t *err);
/** Executes @p sql (no parameters) once. */
int rp__exec(rp_store_t *s, const char *sql, rp_error_t *err);
/** The registry entry of @p name, or NULL. */
rp__entity_t *rp__entity(const rp_store_t *s, const char *name);
/** Like rp__entity() but fills @p err with an "unknown entity" message when missing. */
rp__entity_t *rp__entity_req(const rp_store_t *s, const char *name, rp_error_t *err);
/** The field @p name of @p e, or NULL. */
rp__field_t *rp__field(const rp__entity_t *e, const char *name);
/** Whether @p name is a valid lower-case identifier (and not reserved when @p field). */
bool rp__ident_ok(const char *name);
/** Whether @p name is one of the columns every record has (id, version, …). */
bool rp__is_system_field(const char *name);
/** Formats @p ms as UTC "YYYY-MM-DDTHH:MM:SS.sssZ" into @p out (rapport/time.h). */
#define rp__fmt_time(ms, out) rp_time_format((ms), (out))
/** Days from 1970-01-01 to the civil date y-m-d (rapport/time.h). */
#define rp__days_from_civil(y, m, d) rp_time_days_from_civil((y), (m), (d))
/** A fresh time-ordered unique id (26 characters + NUL) into @p out. */
void rp__uid(rp_store_t *s, char out[27]);
/** A random 64-bit number from the store's generator. */
uint64_t rp__rand(rp_store_t *s);

/* --- values.c ----------------------------------------------------------------------------- */

/**
 * Checks @p in against field @p f and returns its canonical JSON form (new reference) in *out
 * (JSON null for null). For decimals the canonical form is a string with exactly f->scale
 * decimals. Fills @p err naming @p entity, the field and the value on failure.
 */
int rp__value_canon(const char *entity, const rp__field_t *f, json_t *in, json_t **out,
                    rp_error_t *err);
/** Binds the canonical value @p v of field @p f at parameter @p idx. */
int rp__value_bind(sqlite3_stmt *st, int idx, const rp__field_t *f, json_t *v);
/** Reads column @p col of @p st as the canonical JSON value of field @p f (new reference). */
json_t *rp__value_column(sqlite3_stmt *st, int col, const rp__field_t *f);
/** Parses an ISO-8601 date-time (any offset, or none for UTC) into ms (rapport/time.h). */
#define rp__parse_datetime(s, ms) rp_time_parse((s), (ms), NULL)
/** The search-index text of a canonical value (strings as is, others formatted), or NULL. */
const char *rp__value_text(json_t *v, char *buf, size_t cap);

/* --- records.c ---------------------------------------------------------------------------- */

/** Reads record @p id of @p e as JSON into *out (RP_ENOTFOUND when absent). */
int rp__record_load(rp_store_t *s, rp__entity_t *e, int64_t id, const char **fields,
                    json_t **out, rp_error_t *err);
/** Rewrites the search index rows of every live record of @p e (after a searchable field
 *  was added with a default to existing rows). */
int rp__reindex(rp_store_t *s, rp__entity_t *e, rp_error_t *err);
/** Builds a record's JSON from a row of e->sql_select (columns: 7 system, then fields). */
json_t *rp__record_from_row(rp__entity_t *e, sqlite3_stmt *st, const char **fields);

/* --- events.c ----------------------------------------------------------------------------- */

/**
 * Appends an event (in the open transaction). @p changes is a JSON object (borrowed; NULL is
 * stored as {}). Checks the chain depth of @p ctx.
 */
int rp__event_append(rp_store_t *s, const rp_ctx_t *ctx, const char *type, const char *entity,
                     int64_t record_id, json_t *changes, int64_t *seq_out, rp_error_t *err);
/** As rp__event_append() with the changes already as JSON text (owned: freed here). */
int rp__event_append_text(rp_store_t *s, const rp_ctx_t *ctx, const char *type,
                          const char *entity, int64_t record_id, char *text, int64_t *seq_out,
                          rp_error_t *err);
/** Runs the batch then record hooks of @p action on @p batch (array of field objects). */
int rp__hooks_run(rp_store_t *s, rp__entity_t *e, rp_action_t action, json_t *batch,
                  const int64_t *ids, json_t **olds, const rp_ctx_t *ctx, size_t *failed,
                  rp_error_t *err);
/** Whether any hook is registered for @p e and @p action. */
bool rp__hooks_any(rp_store_t *s, const rp__entity_t *e, rp_action_t action);
/** Frees every hook registration. */
void rp__hooks_free(rp_store_t *s);

/* --- fts.c -------------------------------------------------------------------------------- */
#include "fts.h"

/* ---- access (core/auth/access.c): the checks the store makes for a context's user ---------- */

/** Whether record @p rec is within @p scope for @p a (its owner, or creator, is the user, or
 *  of the user's team). */
bool rp__access_in_scope(rp_store_t *s, const rp_access_t *a, rp_scope_t scope, json_t *rec);
/** RP_EPERM naming the permission @p perm on @p entity that @p a lacks, and @p why. */
int rp__access_denied(rp_error_t *err, const rp_access_t *a, const char *entity, rp_perm_t perm,
                      const char *why);
/** 0 when @p a may @p perm record @p rec of @p entity; else RP_EPERM saying why. */
int rp__access_record(rp_store_t *s, const rp_access_t *a, const char *entity, rp_perm_t perm,
                      json_t *rec, rp_error_t *err);
/** RP_EPERM when @p fields gives the record an owner @p a may not hand records to: the user
 *  may always name themselves, a team mate with update scope team, anyone with scope all. */
int rp__access_owner(rp_store_t *s, const rp_access_t *a, const char *entity, json_t *fields,
                     bool update, rp_error_t *err);
/** RP_EPERM when @p fields (an object) names a field hidden from or read-only for @p a. */
int rp__access_fields(const rp_access_t *a, const char *entity, json_t *fields, rp_error_t *err);
/** The access of @p ctx, or NULL (unrestricted). */
#define RP__ACCESS(ctx) ((ctx) ? (ctx)->access : NULL)

#endif
