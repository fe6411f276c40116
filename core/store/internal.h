/*
 * internal.h — what the store's and the event log's files share: the store object, the
 * in-memory registry, the statement cache and the value codec. Not installed; plugins and the
 * CLI never include it.
 */
#ifndef RAPPORT_STORE_INTERNAL_H
#define RAPPORT_STORE_INTERNAL_H

#include <string.h>

#include "rapport/write.h"
#include "rapport/db.h"
#include "rapport/store.h"
#include "rapport/time.h"

/** The system columns every record has: id, created_at, updated_at, version, created_by,
 *  updated_by, deleted_at. */
#define RP__NSYS 7

/** Record ids live in the low 40 bits of a search-index rowid; the entity number above. */
#define RP__FTS_SHIFT 40

/** One field of the registry. */
typedef struct rp__field {
    char *name;
    rp_ftype_t type;
    bool required, unique, indexed, searchable;
    bool personal;  /* Holds personal data: emptied by rp_store_erase (erase.c). */
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
    rp_db_stmt_t *st_insert; /* sql_insert prepared, held (rp__stmt_held). */
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
/** The statements of the hottest paths, held by slot rather than looked up by text. */
enum { RP__HELD_EVENT, RP__HELD_N };

typedef struct rp__fts_op rp__fts_op_t;

struct rp_store {
    rp_db_t *db;
    rp__entity_t **ents;
    int nents;
    int64_t (*now_fn)(void *ud);
    void *now_ud;
    int max_depth;
    bool schema_dirty; /* The registry changed in the open transaction. */
    /* The deepest level that may hold a schema change not yet committed below it (0: none).
     * A rollback of that level reads the registry back (rp__schema_touched). */
    int schema_top;
    /* Registries read back inside a transaction: a write below may still hold pointers into
     * them, so they are freed once the transaction has ended (rp__registry_reload). */
    struct rp__retired *retired;
    uint64_t schema_gen; /* Moves whenever the registry is read or changed. */
    int seen_schema;   /* the database's schema cookie when the registry was last read */
    /* A savepoint that rp_store_begin() opens only if a write happens: event handlers that
     * merely read cost no statement. lazy_open says whether it was opened. */
    bool lazy_sp, lazy_open;
    rp__hook_t *hooks;
    int nhooks, caphooks, next_hook_id;
    rp_db_stmt_t *held[RP__HELD_N];
    int64_t uid_last_ms;
    uint64_t uid_hi, uid_lo, rng;
    bool offline; /* no outside effects: see rp_store_set_offline() */
    /* The search index's writes held to the outermost commit (fts_queue.c). */
    rp__fts_op_t *fq;
    size_t nfq, capfq, fq_held;
    int fq_top; /* no op was made or ran deeper than this */
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
static inline rp_db_stmt_t *rp__stmt(rp_store_t *s, const char *sql, rp_error_t *err)
{
    return rp_db_stmt(s->db, sql, err);
}
/** As rp__stmt() for a statement kept in @p *slot (see rp_db_stmt_held). */
static inline rp_db_stmt_t *rp__stmt_held(rp_store_t *s, rp_db_stmt_t **slot, const char *sql,
                                          rp_error_t *err)
{
    return rp_db_stmt_held(s->db, slot, sql, err);
}
/** Forgets every cached and held statement (after a schema change). */
void rp__stmt_flush(rp_store_t *s);
/** RP_ELIMIT (RP-E1704) when the caller's deadline has passed or its check says stop: asked
 *  between the records of a batch write, where stopping is clean (a statement cut half-way
 *  would roll the whole transaction back). */
int rp__over_budget(rp_store_t *s, rp_error_t *err);
/** Marks @p st as the read the caller's budget may stop (see rp_db_reading). */
static inline rp_db_stmt_t *rp__reading(rp_store_t *s, rp_db_stmt_t *st)
{
    return rp_db_reading(s->db, st);
}
/** Fills @p err from the database's result @p rc (see rp_db_error). */
static inline int rp__dberr(rp_store_t *s, int rc, const char *what, rp_error_t *err)
{
    return rp_db_error(s->db, rc, what, err);
}
/** Executes @p sql (no parameters) once. */
static inline int rp__exec(rp_store_t *s, const char *sql, rp_error_t *err)
{
    return rp_db_exec(s->db, sql, err);
}
/** Runs @p st, which returns no rows, and resets it: 0 or the error of @p what. */
static inline int rp__step_done(rp_store_t *s, rp_db_stmt_t *st, const char *what,
                                rp_error_t *err)
{
    int rc = rp_db_step(st);
    rp_db_reset(st);
    return rc == RP_DB_DONE ? 0 : rp__dberr(s, rc, what, err);
}
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

/* --- registry.c --------------------------------------------------------------------------- */

/** Reads the registry from the file into @p s (empty before). */
int rp__registry_load(rp_store_t *s, rp_error_t *err);
/** Frees the registry in memory. */
void rp__registry_free(rp_store_t *s);
/** Frees the registries read back inside the transaction that has now ended. */
void rp__registry_retired_free(rp_store_t *s);
/** Reads the registry back from the file (after a schema change was undone, or another process
 *  changed it), forgetting every statement made from the old one. */
void rp__registry_reload(rp_store_t *s);
/** Marks a schema change made at the present level: the registry is read back if the level
 *  is rolled back, and at the outermost commit. */
void rp__schema_touched(rp_store_t *s);
/** Parses field specification @p spec into @p f (whose name and owner are set) for @p entity;
 *  @p self names the entity being defined, so a ref may point at it. */
int rp__field_parse(rp_store_t *s, const char *entity, const char *self, rp__field_t *f,
                    json_t *spec, rp_error_t *err);
/** Frees what @p f holds (not @p f itself). */
void rp__field_free(rp__field_t *f);
/** The canonical specification of @p f, as rp_fields keeps it (new reference). */
json_t *rp__field_spec_json(const rp__field_t *f);
/** Creates the index "rp_ix_<entity>_<field>" a unique, indexed or ref field has. */
int rp__field_index(rp_store_t *s, const char *entity, const rp__field_t *f, rp_error_t *err);
/** The column definition of @p f ("name" TYPE [REFERENCES …]) into @p out. */
void rp__column_def(const char *entity, const rp__field_t *f, char *out, size_t cap);
/** Rebuilds the SQL texts that depend on @p e's field list. */
int rp__entity_build_sql(rp__entity_t *e);

/* --- declare.c ---------------------------------------------------------------------------- */

/** Runs @p sql (a count, with @p text bound as its one parameter when not NULL) into *out. */
int rp__count_sql(rp_store_t *s, const char *sql, const char *text, int64_t *out,
                  rp_error_t *err);

/* --- values.c ----------------------------------------------------------------------------- */

/**
 * Checks @p in against field @p f and returns its canonical JSON form (new reference) in *out
 * (JSON null for null). For decimals the canonical form is a string with exactly f->scale
 * decimals. Fills @p err naming @p entity, the field and the value on failure.
 */
int rp__value_canon(const char *entity, const rp__field_t *f, json_t *in, json_t **out,
                    rp_error_t *err);
/** Binds the canonical value @p v of field @p f at parameter @p idx. */
int rp__value_bind(rp_db_stmt_t *st, int idx, const rp__field_t *f, json_t *v);
/** Reads column @p col of @p st as the canonical JSON value of field @p f (new reference). */
json_t *rp__value_column(rp_db_stmt_t *st, int col, const rp__field_t *f);
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
/** The actor of @p ctx, "system" when none. */
const char *rp__actor_of(const rp_ctx_t *ctx);
/** RP_EINVAL when @p fields (an object) names a field @p e lacks or a system field. */
int rp__check_keys(rp__entity_t *e, json_t *fields, rp_error_t *err);
/** RP_EINVAL unless ref value @p v of field @p f names a live record of its target. */
int rp__check_ref(rp_store_t *s, rp__entity_t *e, rp__field_t *f, json_t *v, rp_error_t *err);
/** Turns a failed step @p rc into a message naming the entity, the field and the value. */
int rp__write_error(rp_store_t *s, int rc, rp__entity_t *e, json_t *canon, rp_error_t *err);
/** Writes the searchable text of @p rec (canonical values by field name) for record @p id. */
int rp__fts_put(rp_store_t *s, rp__entity_t *e, int64_t id, json_t *rec, rp_error_t *err);
/** Removes record @p id from the search index. */
int rp__fts_drop(rp_store_t *s, rp__entity_t *e, int64_t id, rp_error_t *err);
/** Shallow copies of the records of @p in, so hooks may edit them without touching the
 *  caller's objects; with @p take, @p in itself. */
json_t *rp__batch_copy(rp__entity_t *e, json_t *in, bool take, size_t *failed, rp_error_t *err);
/** Prefixes err's message with "record N: " so a bulk caller knows which record failed. */
void rp__name_record(rp_error_t *err, size_t i);
/** Builds a record's JSON from a row of e->sql_select (columns: 7 system, then fields). */
json_t *rp__record_from_row(rp__entity_t *e, rp_db_stmt_t *st, const char **fields);

/* --- fts_queue.c: the search index's writes, held to the outermost commit ---------------- */

/** Holds a write of the search index made at the present depth: @p body (owned; NULL removes
 *  the row) for @p rowid. Run at once outside a transaction. */
int rp__fts_hold(rp_store_t *s, int64_t rowid, char *body, int len, rp_error_t *err);
/** Runs the writes held, in order, at the present depth: before the outermost commit, and
 *  before anything reads or writes rp_search itself. */
int rp__fts_flush(rp_store_t *s, rp_error_t *err);
/** After a level was committed (its writes go to the level below) or rolled back (its writes
 *  are dropped, and those it ran for a lower level are held again). */
void rp__fts_committed(rp_store_t *s);
void rp__fts_rolled_back(rp_store_t *s);
void rp__fts_hold_free(rp_store_t *s);

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

/* ---- the authorizer (rp_store_set_authorizer): every check the store makes for a restricted
 * context goes through these; with none installed, a restricted context is refused ---------- */

extern const rp_authorizer_t *rp__authorizer;

static inline rp_scope_t rp__access_scope(const rp_access_t *a, const char *entity, rp_perm_t p)
{
    return !a ? RP_SCOPE_ALL : rp__authorizer ? rp__authorizer->scope(a, entity, p)
                                              : RP_SCOPE_NONE;
}
static inline bool rp__access_hidden(const rp_access_t *a, const char *entity, const char *f)
{
    return a && (!rp__authorizer || rp__authorizer->hidden(a, entity, f));
}
/* Whether @p a sees field @p f only masked: a record principal (a portal's customer) reads
 * another actor as its kind alone ("user"), so it may not filter, sort or group by who did
 * it either — the answer (or a page's cursor) would tell what the mask hides. */
static inline bool rp__access_masked(const rp_access_t *a, const char *f)
{
    int64_t pid = 0;
    return a && rp__authorizer && rp__authorizer->principal &&
           (strcmp(f, "created_by") == 0 || strcmp(f, "updated_by") == 0) &&
           rp__authorizer->principal(a, &pid) != NULL;
}
static inline void rp__access_redact(const rp_access_t *a, const char *entity, json_t *obj)
{
    if (a && rp__authorizer)
        rp__authorizer->redact(a, entity, obj);
}
static inline void rp__access_actor(const rp_access_t *a, json_t *obj, const char *key)
{
    if (a && rp__authorizer && rp__authorizer->actor)
        rp__authorizer->actor(a, obj, key);
}
static inline const char *rp__access_user(const rp_access_t *a)
{
    return rp__authorizer ? rp__authorizer->user(a) : "";
}
static inline const char *rp__access_role(const rp_access_t *a)
{
    return rp__authorizer ? rp__authorizer->role(a) : "(no authorizer)";
}
static inline const char *rp__access_team(const rp_access_t *a)
{
    return rp__authorizer ? rp__authorizer->team(a) : "";
}
/**
 * 0 when @p ctx may change the schema (@p what names the change for the message): only an
 * unrestricted context may — the engine, plugins, the installation's own command line and the
 * scripts it loads. A user's context (the API, --as) is refused with RP_EPERM whatever its
 * role: a role grants records, and the schema is the installation's.
 */
int rp__schema_allowed(const rp_ctx_t *ctx, const char *what, rp_error_t *err);
/** RP_EPERM: no authorizer answers for a restricted context. */
int rp__access_unanswered(rp_error_t *err);
/** 0 when record @p rec of @p entity is linked to @p a's principal for @p perm (link.c); else
 *  RP_EPERM saying so, or a store error. */
int rp__link_record(rp_store_t *s, const rp_access_t *a, const char *entity, rp_perm_t perm,
                    json_t *rec, rp_error_t *err);
/** As rp__link_record for reading, but a record not linked to @p a's principal is answered
 *  as a missing one (RP_ENOTFOUND "no ENTITY with id N"): a record principal (a portal's
 *  customer) learns nothing of a record outside its links, not even that it is there — ids
 *  are counted, so "not linked" would tell how many tickets or orders a business has. */
int rp__link_visible(rp_store_t *s, const rp_access_t *a, const char *entity, json_t *rec,
                     rp_error_t *err);
static inline bool rp__access_in_scope(rp_store_t *s, const rp_access_t *a, const char *entity,
                                       rp_scope_t scope, json_t *rec)
{
    if (a && scope == RP_SCOPE_LINK)
        return rp__link_record(s, a, entity, RP_PERM_READ, rec, NULL) == 0;
    return !a || (rp__authorizer && rp__authorizer->in_scope(s, a, scope, rec));
}
static inline int rp__access_denied(rp_error_t *err, const rp_access_t *a, const char *entity,
                                    rp_perm_t perm, const char *why)
{
    return rp__authorizer ? rp__authorizer->denied(err, a, entity, perm, why)
                          : rp__access_unanswered(err);
}
static inline int rp__access_record(rp_store_t *s, const rp_access_t *a, const char *entity,
                                    rp_perm_t perm, json_t *rec, rp_error_t *err)
{
    if (a && rp__authorizer && rp__authorizer->scope(a, entity, perm) == RP_SCOPE_LINK)
        return rp__link_record(s, a, entity, perm, rec, err);
    return !a ? 0 : rp__authorizer ? rp__authorizer->record(s, a, entity, perm, rec, err)
                                   : rp__access_unanswered(err);
}
static inline int rp__access_owner(rp_store_t *s, const rp_access_t *a, const char *entity,
                                   json_t *fields, bool update, rp_error_t *err)
{
    return !a ? 0 : rp__authorizer ? rp__authorizer->owner(s, a, entity, fields, update, err)
                                   : rp__access_unanswered(err);
}
static inline int rp__access_fields(const rp_access_t *a, const char *entity, json_t *fields,
                                    rp_error_t *err)
{
    return !a ? 0 : rp__authorizer ? rp__authorizer->fields(a, entity, fields, err)
                                   : rp__access_unanswered(err);
}
/** The access of @p ctx, or NULL (unrestricted). */
#define RP__ACCESS(ctx) ((ctx) ? (ctx)->access : NULL)

#endif
