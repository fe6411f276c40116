/*
 * store.h — the store: an entity registry, records with exact types, queries, full-text
 * search and nested transactions over one database file. Every write takes one path
 * (before-hooks, row, event, search index) in one transaction; write.h says how others join
 * that path (hooks, emit), events.h how the log is read.
 * No SQLite type crosses this interface, so another driver can take its place.
 */
#ifndef RAPPORT_STORE_H
#define RAPPORT_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "rapport/error.h"

/** The schema version of the core's own tables this build writes and understands. */
#define RP_STORE_SCHEMA_VERSION 7

/** The store: one open database. Not thread-safe; one per thread. */
typedef struct rp_store rp_store_t;

/** Options for rp_store_open(). Zero-initialise, then set what you need. */
typedef struct rp_store_opts {
    bool sync_full;      /**< synchronous=FULL (every commit fsyncs the WAL); default NORMAL. */
    int busy_timeout_ms; /**< How long to wait for another writer; 0 means 5000. */
    /** The engine's clock in milliseconds since the epoch (UTC); NULL means real time. */
    int64_t (*now_ms)(void *ud);
    void *now_ud;        /**< Passed to now_ms. */
    int max_depth;       /**< Longest allowed chain of caused changes; 0 means 16. */
    bool must_exist;     /**< Refuse (RP_ENOTFOUND) instead of creating a missing file. */
} rp_store_opts_t;

/**
 * Opens (creating if needed) the database at @p path (":memory:" for a private one),
 * applies pending migrations of the core's tables and loads the entity registry.
 * A database written by a newer Rapport is refused (RP_EVERSION) naming both versions.
 * @p opts may be NULL. On success *out is owned: close with rp_store_close().
 */
int rp_store_open(const char *path, const rp_store_opts_t *opts, rp_store_t **out,
                  rp_error_t *err);

/** Closes the store, rolling back any transaction left open. NULL is ignored. */
void rp_store_close(rp_store_t *s);

/** The database connection under @p s (rapport/db.h), for the rooms that keep tables of their
 *  own (events' subscribers, jobs, users, webhooks). Borrowed: it lives as long as @p s. */
struct rp_db *rp_store_db(rp_store_t *s);

/**
 * Arms a savepoint that the next rp_store_begin() opens only if a write happens, so that an
 * event handler that merely reads costs no statement. rp_store_lazy_end() disarms it and says
 * whether it was opened (then the caller ends that level with commit or rollback).
 */
void rp_store_lazy_begin(rp_store_t *s);
/** See rp_store_lazy_begin(). */
bool rp_store_lazy_end(rp_store_t *s);

/** The schema version found in the file when it was opened (before migrations). */
int rp_store_schema_version_found(const rp_store_t *s);

/**
 * Lets the database keep up to @p mb megabytes of pages in memory (SQLite's default is 2 MB): a
 * bulk load that touches many index pages then writes each once instead of spilling and
 * reading them back. Memory is taken only as pages are used. It also keeps the connection's
 * statement journals in memory: a batch written under a savepoint copies each page it first
 * touches there, and on disk that copy cost a bulk load of 1M contacts 10 GB of writes to a
 * temporary file (measured: in memory, the load's system time fell from 9.9 s to 5.4 s and
 * its peak memory rose by 7 MB).
 */
int rp_store_set_cache_mb(rp_store_t *s, int mb, rp_error_t *err);

/**
 * Until @p mono_deadline_ms (CLOCK_MONOTONIC milliseconds; 0 for none), a wait for another
 * writer gives up at that time rather than after the whole busy timeout: a script's call with
 * a wall-time limit sets it. Returns the deadline it replaces, to put back.
 */
int64_t rp_store_set_deadline(rp_store_t *s, int64_t mono_deadline_ms);

/** A number that moves whenever the entity registry is read or changed: whoever keeps
 *  something derived from the registry (the OpenAPI document) makes it again when it moves. */
uint64_t rp_store_schema_generation(const rp_store_t *s);

/**
 * The deadline set with rp_store_set_deadline(), or 0. The same deadline bounds every read:
 * a query, count or search still running at that time is stopped between two of its steps
 * and fails with RP_ELIMIT (RP-E1704), so that no caller with a budget (a request, a script)
 * is held by one statement. A statement that writes is never stopped half-way (SQLite would
 * roll the caller's whole transaction back): writes are bounded by their size instead.
 */
int64_t rp_store_deadline(const rp_store_t *s);

/**
 * RP_ELIMIT (RP-E1704, with @p err) when the deadline has passed or the interrupt function
 * says stop; else 0. For loops above the store that work on what it read (an API answer made
 * of many events), so that they stop at the same budget.
 */
int rp_store_over_budget(rp_store_t *s, rp_error_t *err);

/** Asked between steps of a long read, with @p ud: nonzero stops the read (RP_ELIMIT). */
typedef int (*rp_store_interrupt_fn)(void *ud);

/**
 * Sets the function asked between steps of a long read besides the deadline (a script's CPU
 * budget), or none with NULL. @p *was_fn and @p *was_ud (may be NULL) receive the one it
 * replaces, to put back.
 */
void rp_store_set_interrupt(rp_store_t *s, rp_store_interrupt_fn fn, void *ud,
                            rp_store_interrupt_fn *was_fn, void **was_ud);

/**
 * Outside a transaction, reads the entity registry again if another process changed the
 * database's schema (an admin's `rapport define` or `add-field` while `rapport serve` runs).
 * Returns 1 when it did, 0 when nothing changed. A long-running caller calls it between units
 * of work (a request, a pass of the scheduler): registry pointers inside the store do not
 * survive it, so never during a call into the store.
 */
int rp_store_refresh(rp_store_t *s);

/** The store's clock: milliseconds since the epoch (real or the opener's clock). */
int64_t rp_store_now(const rp_store_t *s);
/** A random 64-bit number from the store's generator (seeded from the OS at open): ids,
 *  jitter. Not for secrets. */
uint64_t rp_store_random(rp_store_t *s);

/** Replaces the clock (e.g. with a virtual one). @p fn NULL restores real time. */
void rp_store_set_clock(rp_store_t *s, int64_t (*fn)(void *ud), void *ud);

/* ---------------------------------------------------------------------------------------- */
/* Who is writing                                                                            */

/**
 * The context every call carries: who acts, through which door, and which event's handler
 * caused the change. Borrowed for the duration of the call.
 */
typedef struct rp_access rp_access_t; /* rapport/access.h */

/** Scopes, widest last; then RP_SCOPE_LINK, records linked to a record principal by the
 *  path the role's grant names (rp_link_t), beside the others rather than wider or narrower. */
typedef enum rp_scope {
    RP_SCOPE_NONE,
    RP_SCOPE_OWN,
    RP_SCOPE_TEAM,
    RP_SCOPE_ALL,
    RP_SCOPE_LINK
} rp_scope_t;

/** How many ref fields a link's path may follow. */
#define RP_LINK_MAX_HOPS 4

/**
 * A linked scope (RP_SCOPE_LINK): which records are linked to the principal, the record a
 * restricted context acts as (rapport/access.h). Read from a role's grant and validated against
 * the registry there; the store turns it into SQL with the registry's identifiers only.
 *
 * Without self, path[0] is a ref field of the record, path[1] a ref field of the record that
 * one points to, …, and the last points to the principal: {"link": "order.contact"} on an
 * invoice. With self, the path starts at the principal's record and ends at the record:
 * "self" is the principal's own record, "self.account" the account it refers to.
 */
typedef struct rp_link {
    bool self;                             /**< The path starts at the principal's record. */
    bool through; /**< path[0] points to a record the principal may read by its entity's own
                       read link: {"through": "interaction"} on an interaction's links. */
    int npath;                             /**< Ref fields in path (0 only with self). */
    char path[RP_LINK_MAX_HOPS][64];       /**< The ref fields followed, in order. */
    json_t *where; /**< A further filter (crm.find's language) the record must match, or NULL;
                        owned by the access. */
} rp_link_t;

/** Permissions on an entity. */
typedef enum rp_perm { RP_PERM_READ, RP_PERM_CREATE, RP_PERM_UPDATE, RP_PERM_DELETE } rp_perm_t;

/**
 * The authorizer: what the store asks about whoever acts (a context's access, never NULL
 * here) before it reads or writes for them, the way SQLite asks its authorizer callback. The
 * store knows no roles, users or teams beyond these answers; core/auth (access.c) installs
 * the one the engine uses. While none is installed, every restricted context is refused.
 */
typedef struct rp_authorizer {
    const char *(*user)(const rp_access_t *a);
    const char *(*role)(const rp_access_t *a);
    const char *(*team)(const rp_access_t *a); /**< "" when the user has none */
    /** How far @p a may @p perm records of @p entity. */
    rp_scope_t (*scope)(const rp_access_t *a, const char *entity, rp_perm_t perm);
    /** Whether @p field of @p entity is hidden from @p a (never shown, filtered or searched). */
    bool (*hidden)(const rp_access_t *a, const char *entity, const char *field);
    /** Takes the fields hidden from @p a out of @p obj (a record or its changes). */
    void (*redact)(const rp_access_t *a, const char *entity, json_t *obj);
    /** Whether record @p rec is within @p scope for @p a. */
    bool (*in_scope)(rp_store_t *s, const rp_access_t *a, rp_scope_t scope, json_t *rec);
    /** RP_EPERM naming the permission @p perm on @p entity that @p a lacks, and @p why. */
    int (*denied)(rp_error_t *err, const rp_access_t *a, const char *entity, rp_perm_t perm,
                  const char *why);
    /** 0 when @p a may @p perm record @p rec of @p entity; else RP_EPERM saying why. */
    int (*record)(rp_store_t *s, const rp_access_t *a, const char *entity, rp_perm_t perm,
                  json_t *rec, rp_error_t *err);
    /** RP_EPERM when @p fields gives the record an owner @p a may not hand records to. */
    int (*owner)(rp_store_t *s, const rp_access_t *a, const char *entity, json_t *fields,
                 bool update, rp_error_t *err);
    /** RP_EPERM when @p fields names a field hidden from or read-only for @p a. */
    int (*fields)(const rp_access_t *a, const char *entity, json_t *fields, rp_error_t *err);
    /** SQL whose rows are the names (a column "name") of the users of one team, its one
     *  parameter: how a filter limits a read to "the team's records". */
    const char *team_users_sql;
    /** The link behind RP_SCOPE_LINK for @p perm on @p entity (borrowed, valid while @p a
     *  lives), or NULL when that scope is not a link. */
    const rp_link_t *(*link)(const rp_access_t *a, const char *entity, rp_perm_t perm);
    /** The entity of the record @p a acts as, its id in *id; NULL when @p a is a user's. */
    const char *(*principal)(const rp_access_t *a, int64_t *id);
    /** Shows the actor in @p obj's @p key ("actor", "updated_by") as @p a may know it: to a
     *  record principal, another actor only by its kind ("user"). */
    void (*actor)(const rp_access_t *a, json_t *obj, const char *key);
} rp_authorizer_t;

/** Installs @p auth (static storage) for every store of the process (NULL removes it) and
 *  returns the one it replaces. */
const rp_authorizer_t *rp_store_set_authorizer(const rp_authorizer_t *auth);

typedef struct rp_ctx {
    const char *actor;  /**< "user:42", "plugin:loyalty", "script:rules.lua", "system"; NULL = "system". */
    const char *origin; /**< "api", "cli", "script", "import", a plugin name; NULL = "core". */
    int64_t cause;      /**< Sequence number of the event whose handler acts, or 0. */
    int depth;          /**< Chain depth: 0 for a direct change, the cause's depth + 1 otherwise. */
    const rp_access_t *access; /**< Whose permissions apply (rapport/access.h); NULL: none. */
} rp_ctx_t;

/* ---------------------------------------------------------------------------------------- */
/* The entity registry                                                                       */

/** Field types. */
typedef enum rp_ftype {
    RP_T_TEXT, RP_T_INTEGER, RP_T_REAL, RP_T_DECIMAL, RP_T_BOOLEAN, RP_T_DATE, RP_T_DATETIME,
    RP_T_ENUM, RP_T_REF, RP_T_JSON, RP_T_EMAIL, RP_T_PHONE, RP_T_URL,
} rp_ftype_t;

/** The name of a field type ("text", "decimal", …). */
const char *rp_ftype_name(rp_ftype_t t);

/**
 * Defines entity @p name (a lower-case identifier) with the fields of @p spec, a JSON object
 * {"fields": {name: field_spec, …}, "label": "…"} where field_spec is
 * {"type": "text"|"integer"|…, "required": bool, "unique": bool, "indexed": bool,
 *  "searchable": bool, "default": value, "values": [..] (enum), "ref": "entity" (ref),
 *  "scale": 0..9 (decimal, default 2)}. @p owner names who defines it ("admin", a plugin).
 * Emits "schema.entity_defined". Borrowed arguments.
 */
int rp_store_define(rp_store_t *s, const rp_ctx_t *ctx, const char *name, json_t *spec,
                    const char *owner, rp_error_t *err);

/**
 * Adds field @p field to entity @p entity with @p fspec (as in rp_store_define). Existing
 * rows read the default (or null); this is a constant-time change whatever the table size,
 * except that "unique" and "indexed" build an index. A required field without a default
 * is refused on a table that has rows. Emits "schema.field_added".
 */
int rp_store_add_field(rp_store_t *s, const rp_ctx_t *ctx, const char *entity, const char *field,
                       json_t *fspec, const char *owner, rp_error_t *err);

/**
 * Declares entity @p name with @p spec (as rp_store_define's), safe to call at every start:
 * creates the entity when missing, adds the fields the spec gained, and applies the changes
 * that are safe by themselves — the entity's label (when @p owner owns it); a field becoming
 * optional, indexed or not, unique (over distinct values), searchable or not (the search
 * index is rebuilt), required (when no live record lacks a value); a new default; an enum
 * gaining values, or losing values no record holds; a field of @p owner's that the spec no
 * longer names and that holds no value is dropped. When the registry already matches, nothing
 * is written and no event is appended. Fields that another owner added (a plugin, `rapport
 * add-field`) and the spec does not name are left alone; one the spec names keeps its
 * owner's flags, only its type is checked.
 *
 * What the store cannot do by itself is refused (RP_EINVAL, RP-E1105) with nothing stored: a
 * type change (also of a ref's target or a decimal's scale), a field the spec dropped that
 * holds values, required over records lacking a value, unique over shared values, an enum
 * losing values records hold, a new required field without a default over records. The
 * message names the entity, the field, stored against declared, how many records are in the
 * way, and the migration to write (crm.schema.migration(…) with the call that does it); a
 * refusal of more than one field names the first and counts the others.
 *
 * Each change appends its event: schema.entity_defined, schema.field_added,
 * schema.field_changed ({"field", "from": spec, "to": spec}), schema.field_dropped,
 * schema.entity_changed. *@p changes (may be NULL) receives a new array (owned) of one line per
 * change made ("created pet", "added pet.age", …): empty when nothing changed.
 */
int rp_store_declare(rp_store_t *s, const rp_ctx_t *ctx, const char *name, json_t *spec,
                     const char *owner, json_t **changes, rp_error_t *err);

/**
 * Renames field @p from of @p entity to @p to (a free, valid field name), keeping its values,
 * its index or unique constraint and the search index. Emits "schema.field_renamed"
 * {"field": to, "from": from}. Rules and roles that name the old field are not rewritten.
 */
int rp_store_rename_field(rp_store_t *s, const rp_ctx_t *ctx, const char *entity,
                          const char *from, const char *to, rp_error_t *err);

/**
 * Drops field @p field of @p entity with its values and index; the search index is rebuilt
 * when it was searchable. Emits "schema.field_dropped" {"field", "spec", "values": n}. A ref
 * field cannot be dropped (the database keeps its foreign key): RP_EINVAL.
 */
int rp_store_drop_field(rp_store_t *s, const rp_ctx_t *ctx, const char *entity,
                        const char *field, rp_error_t *err);

/**
 * Converts one value for rp_store_change_type(): @p value (borrowed; JSON null when empty) is
 * the value of record @p id as stored; *@p out receives the new value (a new reference; JSON
 * null or NULL for empty). Returns 0, or a negative code with @p err saying why.
 */
typedef int (*rp_convert_fn)(void *ud, int64_t id, json_t *value, json_t **out,
                             rp_error_t *err);

/**
 * Gives field @p field of @p entity the specification @p fspec (borrowed; any type), every
 * record's value (soft-deleted ones too) passed through @p convert (NULL: the value as it is)
 * and checked as the new field's. A value that does not convert fails the whole change,
 * naming the record id and the value; nothing is stored. Indexes, the unique constraint and
 * the search index follow the new specification. Records keep their version and updated_at:
 * one "schema.field_type_changed" event {"field", "from", "to", "records": n} says what
 * happened to all of them.
 */
int rp_store_change_type(rp_store_t *s, const rp_ctx_t *ctx, const char *entity,
                         const char *field, json_t *fspec, rp_convert_fn convert, void *ud,
                         rp_error_t *err);

/**
 * Drops entity @p entity with all its records and their search rows. Refused while a field of
 * another entity refers to it. Emits "schema.entity_dropped" {"records": n}.
 */
int rp_store_drop_entity(rp_store_t *s, const rp_ctx_t *ctx, const char *entity,
                         rp_error_t *err);

/**
 * Whether migration @p id has run: 1 (with its checksum into @p checksum and when into
 * @p ran_at, each may be NULL), 0 when it has not, or a negative code.
 */
int rp_store_migration_ran(rp_store_t *s, const char *id, char checksum[65], char ran_at[32],
                           rp_error_t *err);

/**
 * Records that migration @p id (1 to 128 printable characters) ran, with @p checksum (of its
 * code) and @p script (where it is written), in the open transaction. Emits
 * "schema.migration_ran" {"id", "checksum", "script"}. RP_ECONFLICT when it is recorded already.
 */
int rp_store_migration_record(rp_store_t *s, const rp_ctx_t *ctx, const char *id,
                              const char *checksum, const char *script, rp_error_t *err);

/** Whether entity @p name is defined. */
bool rp_store_has_entity(const rp_store_t *s, const char *name);
/** Whether @p name is an identifier the registry accepts: [a-z][a-z0-9_]*, 48 bytes at most,
 *  not starting with rp_ or sqlite, not rowid or oid. */
bool rp_store_name_ok(const char *name);
/** Whether @p entity is defined and has a field @p field (system fields included). */
bool rp_store_has_field(const rp_store_t *s, const char *entity, const char *field);
/** The type of field @p field of @p entity into *type (id and version: integer; the other
 *  system fields: text); false when there is no such field. */
bool rp_store_field_type(const rp_store_t *s, const char *entity, const char *field,
                         int *type);

/**
 * The registry as JSON: {entity: {"label":…, "owner":…, "fields": {name: field_spec}}} for all
 * entities, or only @p entity's description when @p entity is not NULL.
 * Returns a new reference (owned: json_decref), or NULL with @p err filled.
 */
json_t *rp_store_schema(rp_store_t *s, const char *entity, rp_error_t *err);

/* ---------------------------------------------------------------------------------------- */
/* Transactions                                                                              */

/**
 * Opens a transaction, or a savepoint nested in the open one. Every begin is matched by one
 * commit or rollback. Writes outside an explicit transaction run in their own.
 */
int rp_store_begin(rp_store_t *s, rp_error_t *err);
/** Commits the innermost level (the outermost commits to disk). */
int rp_store_commit(rp_store_t *s, rp_error_t *err);
/** Rolls back the innermost level: its writes, events and index changes are gone. */
int rp_store_rollback(rp_store_t *s, rp_error_t *err);
/** The nesting depth of open transactions (0 when none). */
int rp_store_txn_depth(const rp_store_t *s);

/* ---------------------------------------------------------------------------------------- */
/* Records                                                                                   */

/*
 * A record crosses this interface as a JSON object: its fields by name plus "id",
 * "version", "created_at", "updated_at", "created_by", "updated_by", "deleted_at".
 * Values: text kinds as strings; integer as integer; real as real; decimal as a string of
 * exactly the field's scale ("1234.50"; on input a string, an integer, or a JSON number of at
 * most 15 significant digits); boolean as true/false; date "YYYY-MM-DD"; datetime as UTC
 * "YYYY-MM-DDTHH:MM:SS.sssZ" (input may carry any offset); json as the JSON value; ref as the
 * referenced record's id. Absent or null fields are null.
 */

/**
 * Creates a record of @p entity from @p fields (borrowed; before-hooks may change a copy).
 * On success *id_out (may be NULL) is the new id.
 */
int rp_store_create(rp_store_t *s, const rp_ctx_t *ctx, const char *entity, json_t *fields,
                    int64_t *id_out, rp_error_t *err);

/**
 * As rp_store_create(), returning the record as stored (*record: a new reference, owned) rather
 * than its id, without reading it back.
 */
int rp_store_create_record(rp_store_t *s, const rp_ctx_t *ctx, const char *entity,
                           json_t *fields, json_t **record, rp_error_t *err);

/** The columns every record has, as a create wrote them (version 1, not deleted). */
typedef struct rp_created {
    int64_t id;
    char at[32];       /**< created_at and updated_at, ISO-8601 UTC with milliseconds. */
    const char *actor; /**< created_by and updated_by (the context's actor, or "system"). */
} rp_created_t;

/**
 * As rp_store_create_record(), for a caller that builds its own form of the record (the Lua
 * API): *stored (owned) holds every field of the entity by name with the value as stored (null
 * where empty), and @p cols the columns. @p fields (borrowed) is not copied: the before-hooks
 * edit it in place, so pass an object you do not keep.
 */
int rp_store_create_fields(rp_store_t *s, const rp_ctx_t *ctx, const char *entity,
                           json_t *fields, json_t **stored, rp_created_t *cols, rp_error_t *err);

/**
 * The value @p field of a record made of @p fields (borrowed, not changed) would be stored
 * with: after the create before-hooks (run in a savepoint that is undone, so nothing of theirs
 * stays) and the field's own canonical form. For comparing a key typed by a person (an
 * import's --upsert-by) with the stored ones. *value is owned (null when absent).
 */
int rp_store_stored_value(rp_store_t *s, const rp_ctx_t *ctx, const char *entity,
                          json_t *fields, const char *field, json_t **value, rp_error_t *err);

/**
 * Fetches record @p id of @p entity. *out is a new reference (owned), or NULL when there is no
 * such record (returns RP_ENOTFOUND). Soft-deleted records are returned (deleted_at set).
 */
int rp_store_get(rp_store_t *s, const char *entity, int64_t id, json_t **out, rp_error_t *err);

/**
 * As rp_store_get(), for @p ctx's user (rapport/access.h): RP_EPERM when the record is outside
 * the user's read scope, and the fields hidden from the user left out. A @p ctx (or its
 * access) of NULL reads as rp_store_get().
 */
int rp_store_get_as(rp_store_t *s, const rp_ctx_t *ctx, const char *entity, int64_t id,
                    json_t **out, rp_error_t *err);

/**
 * Applies the partial update @p patch (borrowed) to record @p id. When @p expect_version > 0 the
 * update happens only if the record's version is still that one, else RP_ECONFLICT and nothing
 * changes. A patch that changes nothing writes nothing and emits no event.
 * *version_out (may be NULL) receives the record's version afterwards.
 */
int rp_store_update(rp_store_t *s, const rp_ctx_t *ctx, const char *entity, int64_t id,
                    json_t *patch, int64_t expect_version, int64_t *version_out,
                    rp_error_t *err);

/** Soft-deletes record @p id (sets deleted_at; leaves search results). */
int rp_store_delete(rp_store_t *s, const rp_ctx_t *ctx, const char *entity, int64_t id,
                    rp_error_t *err);
/** Restores a soft-deleted record. */
int rp_store_restore(rp_store_t *s, const rp_ctx_t *ctx, const char *entity, int64_t id,
                     rp_error_t *err);
/**
 * Removes record @p id for good; its last values are kept in the "purged" event. Refused while
 * another record refers to it.
 */
int rp_store_purge(rp_store_t *s, const rp_ctx_t *ctx, const char *entity, int64_t id,
                   rp_error_t *err);

/**
 * Erases the personal data of record @p id of @p entity (the right to be forgotten), in one
 * transaction: the record's personal fields ("personal": true) become null; in every event
 * about it the personal keys stay with null values ([old, new] becomes [null, null]) and any
 * other string equal to an erased value becomes null; the search index is rebuilt without the
 * erased words (its segments merged); the records that refer to it through a ref field (one
 * level) lose their personal fields the same way; the erased email, phone and url values are
 * cut out ("[erased]") of every other event's payload. Record hooks of RP_ACT_ERASE run first
 * (one may veto: a legal hold). Ends with one "ENTITY.erased" event {"fields", "records",
 * "events", "other_events", "reason"} that holds no erased value. The record keeps its id and
 * other fields; a purged record (known by its events) has its events erased.
 *
 * Only an unrestricted context may erase (a user's context: RP_EPERM). RP_EINVAL when the
 * entity has no personal field; RP_ENOTFOUND when neither the record nor an event of it
 * exists. *@p result (may be NULL; owned) receives {"entity", "id", "erased": bool, "fields",
 * "records", "events", "other_events"}: "erased" false (and no event) when nothing was left to
 * erase. @p reason (may be NULL) is kept in the event.
 */
int rp_store_erase(rp_store_t *s, const rp_ctx_t *ctx, const char *entity, int64_t id,
                   const char *reason, json_t **result, rp_error_t *err);

/**
 * Everything the store holds about record @p id of @p entity, as one document (what a
 * "download my data" page serves): *@p out (owned) is {"exported_at", "entity", "id",
 * "record", "related": {entity: [records]}, "events": [{"seq", "type", "entity", "record_id",
 * "actor", "origin", "at", "changes"}], "truncated"}. "related" holds the records that refer to
 * it through a ref field and those that refer to them (two levels: a contact's orders and the
 * orders' lines), soft-deleted ones included; "events" the events of all of them, in sequence
 * order. Read through @p ctx's access: records outside the user's read scope and hidden fields
 * are left out (RP_EPERM when the record itself is out of scope). At most 50,000 related
 * records ("truncated" then true).
 */
int rp_store_subject(rp_store_t *s, const rp_ctx_t *ctx, const char *entity, int64_t id,
                     json_t **out, rp_error_t *err);

/**
 * Creates every record of the JSON array @p records (borrowed) in one transaction. Batch hooks
 * see the whole array once, record hooks each record. Either all are stored or none: on failure
 * @p err names the index of the failing record ("record 17: …") and *failed_index (may be NULL)
 * is set to it. @p ids_out, when not NULL, must hold json_array_size(records) ids.
 */
int rp_store_create_many(rp_store_t *s, const rp_ctx_t *ctx, const char *entity, json_t *records,
                         int64_t *ids_out, size_t *failed_index, rp_error_t *err);

/**
 * Updates many records in one transaction: @p patches is an array of objects each with "id"
 * (and optionally "version" to check) plus the fields to change. All or nothing, like
 * rp_store_create_many().
 */
int rp_store_update_many(rp_store_t *s, const rp_ctx_t *ctx, const char *entity, json_t *patches,
                         size_t *failed_index, rp_error_t *err);

/* ---------------------------------------------------------------------------------------- */
/* Queries                                                                                   */

/**
 * A query. The filter @p where is a JSON object (borrowed) whose keys are field names mapped to
 * a value (equality) or to an object of operators, plus the keys "and" / "or" (arrays of such
 * objects) and "not" (one such object); several keys are and-ed:
 *   {"stage": "won", "amount": {"gt": "1000"}, "or": [{"owner": "u1"}, {"owner": "u2"}]}
 * Operators: eq ne lt le gt ge (a value), in not_in (an array), contains starts_with (text),
 * is_null (a boolean), between (an array of two values). Any field is allowed, including
 * id, version, created_at, updated_at, created_by, updated_by, deleted_at.
 */
/** The published caps of a filter (RP_ELIMIT, RP-E1703, beyond them): conditions in all (each
 *  object of conditions and each field operator counts one), and values bound in all (an `in`
 *  list counts its values). Nesting is capped at 32 and one `in` list at 1000 values (RP-E1301). */
#define RP_FILTER_MAX_CONDITIONS 256
#define RP_FILTER_MAX_VALUES 4000

/** The published caps of a search text (RP_ELIMIT, RP-E1703, beyond them): a prefix query of
 *  thousands of words costs seconds inside SQLite's full-text index, where no budget can stop
 *  it, so the words are counted before it runs. */
#define RP_SEARCH_MAX_WORDS 32
#define RP_SEARCH_MAX_BYTES 1024

typedef struct rp_query {
    const char *entity;   /**< Required. */
    json_t *where;        /**< Filter, or NULL for all. */
    const char *order;    /**< "field,-other" (a minus sorts descending); id breaks ties. */
    int64_t limit;        /**< At most this many (0 = 100; capped at 10000). */
    int64_t offset;       /**< Skip this many (ignored with a cursor). */
    const char *after;    /**< A cursor from the previous page, or NULL. */
    const char **fields;  /**< NULL-terminated subset of fields to return, or NULL for all. */
    bool with_deleted;    /**< Include soft-deleted records. */
    const rp_access_t *access; /**< Whose read permissions apply (NULL: none): only records in
                                    the user's read scope, hidden fields left out, and a filter,
                                    order or field list naming a hidden field refused. */
} rp_query_t;

/**
 * Runs @p q. *out receives a new array of records (owned); *next (may be NULL) receives a
 * cursor for the following page (owned: free()) or NULL when this page was the last.
 */
int rp_store_find(rp_store_t *s, const rp_query_t *q, json_t **out, char **next, rp_error_t *err);
/**
 * As rp_store_find, but the page is written into @p out as JSON text — the array of records,
 * byte for byte what json_dumps(JSON_COMPACT) of rp_store_find's array gives — straight from
 * the rows, without building the records (an unrestricted read or a user's: a record
 * principal's, whose actors are masked, goes through the records). On an error @p out may hold
 * part of a page: the caller throws it away.
 */
struct rp_jtext;
int rp_store_find_text(rp_store_t *s, const rp_query_t *q, struct rp_jtext *out, char **next,
                       rp_error_t *err);

/**
 * One record of rp_store_find_rows(): @p values[i] is the i-th field of the query's list as
 * text, NULL when null. A value the record holds as a string is handed over as it is (a
 * decimal "12.50" and a date-time too, and a JSON field that holds a string); any other as its
 * JSON text (42, 2.5, true, {"a":1}). @p lens[i] is its length in bytes. Valid during the
 * call only. A non-zero return stops the read, and rp_store_find_rows() returns it.
 */
typedef int (*rp_row_fn)(void *ud, int n, const char *const *values, const size_t *lens);
/**
 * As rp_store_find(), but each record of the page is handed to @p fn as the text of the
 * fields @p q->fields names (required: 1 to 64 names), in that order, without building it:
 * for a scan of a whole table. The same reads, access and cursor as rp_store_find().
 */
int rp_store_find_rows(rp_store_t *s, const rp_query_t *q, rp_row_fn fn, void *ud, char **next,
                       rp_error_t *err);

/** Counts the records of @p entity matching @p where (NULL for all). */
int rp_store_count(rp_store_t *s, const char *entity, json_t *where, bool with_deleted,
                   int64_t *count, rp_error_t *err);

/** As rp_store_count(), counting only what @p a may read (NULL: everything). */
int rp_store_count_as(rp_store_t *s, const rp_access_t *a, const char *entity, json_t *where,
                      bool with_deleted, int64_t *count, rp_error_t *err);

/**
 * Full-text search over the searchable fields of every entity (or only @p entity when not NULL):
 * words match by prefix ("jo smi" finds "John Smith"; a word of one letter matches whole words
 * only), case, accents and Arabic/Persian letter
 * variants fold. *out is a new array of {"entity", "id", "rank", "snippet"} (best first, owned).
 * The rank is minus the BM25 score (k1 1.2, b 0.75) with every word weighing alike (all of them
 * are in every hit), lower first, ties to the later index row (within an entity, the newer
 * record); when more than 256 records (or
 * @p limit, if more) match, the newest that many are ranked. Deleted records are not found. A text of more than RP_SEARCH_MAX_WORDS words or
 * RP_SEARCH_MAX_BYTES bytes is refused (RP_ELIMIT).
 */
int rp_store_search(rp_store_t *s, const char *text, const char *entity, int limit, json_t **out,
                    rp_error_t *err);

/**
 * As rp_store_search(), for user @p a (NULL: everything): only records the user may read, and
 * where the user's role hides a searchable field, only records whose visible fields hold every
 * word, with a snippet made of those fields.
 */
int rp_store_search_as(rp_store_t *s, const rp_access_t *a, const char *text, const char *entity,
                       int limit, json_t **out, rp_error_t *err);

/* ---------------------------------------------------------------------------------------- */
/* Aggregates                                                                                */

/** The published caps of an aggregate (RP-E1305 beyond them). */
#define RP_AGG_MAX_GROUPS 8
#define RP_AGG_MAX_MEASURES 32

/**
 * A grouped aggregate, computed in one SQL statement (GROUP BY), never a loop over records.
 *
 * Groups, each "field" or "field:unit" where unit is day, week, month, quarter or year on a
 * date or date-time field (see rp_time_bucket() for the labels). Measures, each "count" (rows),
 * "count:F" (rows where F is not null), "count_distinct:F", "sum:F" and "avg:F" (integer,
 * real and decimal fields), "min:F" and "max:F" (any field but JSON).
 *
 * Each result row is an object: every group under its field name ("at_month" for a bucket),
 * then every measure under "count", "count_F", "count_distinct_F", "sum_F", "avg_F", "min_F",
 * "max_F". Sums of integers are integers; of decimals, exact decimals at the field's scale
 * (RP_EINVAL past the 64-bit range); an average of decimals is rounded half away from zero to
 * the field's scale; of integers and reals, a real. A measure over no values is null (count: 0).
 */
typedef struct rp_aggregate {
    const char *entity;        /**< Required. */
    json_t *where;             /**< Filter, as rp_query_t's, or NULL for all. */
    const char **group_by;     /**< NULL-terminated groups (at most RP_AGG_MAX_GROUPS), or NULL
                                    for one row over everything. */
    const char **measures;     /**< NULL-terminated measures (at most RP_AGG_MAX_MEASURES), or
                                    NULL for "count". */
    const char *zone;          /**< The IANA zone date-time buckets are cut in; NULL: the
                                    `timezone` setting, else UTC. Dates have no zone. */
    const char *order;         /**< "key,-key" over the row's keys (a minus: descending);
                                    NULL: the groups ascending. */
    int64_t limit;             /**< At most this many rows (0: no limit). */
    int64_t offset;            /**< Skip this many rows. */
    bool with_deleted;         /**< Count soft-deleted records too. */
    const rp_access_t *access; /**< Whose read permissions apply (NULL: none): only records in
                                    the user's read scope; a group, measure or filter naming a
                                    field hidden from the user is refused (RP_EPERM). */
} rp_aggregate_t;

/** Called with each row of an aggregate (borrowed: valid during the call). A non-zero return
 *  stops the aggregate, which returns it. */
typedef int (*rp_aggregate_fn)(json_t *row, void *ud);

/**
 * Runs @p q and hands each row to @p fn, so a million groups never sit in memory at once.
 * A read under a deadline (rp_db_set_deadline) stops there with RP_ELIMIT, as find does.
 */
int rp_store_aggregate_each(rp_store_t *s, const rp_aggregate_t *q, rp_aggregate_fn fn, void *ud,
                            rp_error_t *err);

/** A value of an aggregate's row as it comes from the database, with no JSON in between. */
typedef struct rp_agg_cell {
    int type;          /**< RP_AGG_NULL, RP_AGG_INT, RP_AGG_REAL, RP_AGG_TEXT, RP_AGG_DECIMAL */
    int scale;         /**< RP_AGG_DECIMAL: the digits after the point of i */
    int64_t i;         /**< RP_AGG_INT (booleans 0 and 1), RP_AGG_DECIMAL (scaled) */
    double d;          /**< RP_AGG_REAL */
    const char *s;     /**< RP_AGG_TEXT: borrowed for the call (dates and times as stored) */
} rp_agg_cell_t;

enum { RP_AGG_NULL, RP_AGG_INT, RP_AGG_REAL, RP_AGG_TEXT, RP_AGG_DECIMAL };

/** Called with each row of an aggregate as @p n cells, in the order of the groups then the
 *  measures, named by @p names (the row keys of rp_store_aggregate_each()); all borrowed for
 *  the call. A non-zero return stops the aggregate, which returns it. */
typedef int (*rp_aggregate_cells_fn)(void *ud, int n, const char *const *names,
                                     const rp_agg_cell_t *cells);

/** As rp_store_aggregate_each(), row by row as cells: for a caller that reads a million groups
 *  and would spend more on building JSON than the database spends on grouping. */
int rp_store_aggregate_cells(rp_store_t *s, const rp_aggregate_t *q, rp_aggregate_cells_fn fn,
                             void *ud, rp_error_t *err);

/** As rp_store_aggregate_each(), collecting the rows into *out (a new array, owned). */
int rp_store_aggregate(rp_store_t *s, const rp_aggregate_t *q, json_t **out, rp_error_t *err);

/* ---------------------------------------------------------------------------------------- */
/* Configuration (kept in the database, so a copy of the file is a copy of the installation)  */

/**
 * Reads setting @p key (lower-case words joined by "." or "_") into *value (a new reference to
 * any JSON value). RP_ENOTFOUND when it is not set.
 */
int rp_config_get(rp_store_t *s, const char *key, json_t **value, rp_error_t *err);

/**
 * Sets @p key to @p value (borrowed; NULL removes the setting). Emits "config.changed" with the
 * old and new values, so the event log says who changed the configuration and when.
 */
int rp_config_set(rp_store_t *s, const rp_ctx_t *ctx, const char *key, json_t *value,
                  rp_error_t *err);

/** @p value of setting @p key as the event log shows it (owned): "[secret]" in place of what
 *  a name says is secret (a password, a token…, at any depth) and of a URL's user:password. */
json_t *rp_config_redacted(const char *key, json_t *value);

/** Every setting as one JSON object {key: value} (owned). */
int rp_config_list(rp_store_t *s, json_t **out, rp_error_t *err);

/* ---------------------------------------------------------------------------------------- */
/* Unwinding history (`rapport replay`, on a private copy)                                   */

/**
 * Takes the record change of event @p seq back out of its record, from the old values in
 * @p changes (the event's JSON {field: [old, new]}): a create removes the row, an update,
 * delete or restore puts the old values back one version down (updated_at and updated_by
 * from the record's event before @p seq, which events do not carry otherwise), a purge puts
 * the row back. The row is written directly: no hooks, no event, no access check. Undo the
 * events newest first. Returns 1 when @p type is no record change of @p entity (nothing to
 * undo), 0 when undone, or a negative code. Only for a copy that is about to be replayed: on
 * a live database it would rewrite history.
 */
int rp_store_undo(rp_store_t *s, int64_t seq, const char *type, const char *entity, int64_t id,
                  const char *changes, rp_error_t *err);

/** Lets the next new record of every entity take the id after the largest one now stored
 *  (rather than after the largest ever given), so a replayed copy numbers its new records the
 *  same way every time. */
int rp_store_reset_ids(rp_store_t *s, rp_error_t *err);

/** Seeds the store's generator (rp_store_random(), event uids): a replay that must give the
 *  same report twice makes the same "random" numbers. */
void rp_store_seed(rp_store_t *s, uint64_t seed);

/**
 * Says whether what runs on this store may reach the outside (a mail server, a gateway, a
 * webhook): with @p on, nothing should, because what it does is not kept (a replay, a schema
 * diff, a dry run) and an outside effect could not be taken back. Returns the previous state,
 * so a dry run can put it back. The store does nothing with it; plugins ask
 * rapport_api.offline() and refuse.
 */
bool rp_store_set_offline(rp_store_t *s, bool on);

/** Whether rp_store_set_offline() is on. */
bool rp_store_offline(const rp_store_t *s);

#endif
