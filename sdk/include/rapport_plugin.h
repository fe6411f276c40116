/*
 * rapport_plugin.h — the whole plugin ABI of Rapport, self-contained.
 *
 * A plugin is a shared object that exports one function, rapport_plugin_entry(), returning a
 * static descriptor. The engine calls the descriptor's init() with a table of host functions
 * (rapport_api); the plugin reaches the engine only through that table, so it resolves no host
 * symbol by name and needs no library but libc. Values cross as JSON text (UTF-8, NUL-ended),
 * so no JSON library's types are part of the ABI.
 *
 * Stability: within one RAPPORT_PLUGIN_ABI, functions are only ever appended to rapport_api,
 * never removed, reordered or changed; api->size tells which exist (RAPPORT_HAS). Structures
 * handed to the plugin only grow at their end. A new ABI number means a plugin must be rebuilt.
 */
#ifndef RAPPORT_PLUGIN_H
#define RAPPORT_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The ABI this header describes. The engine refuses a plugin built for another. */
#define RAPPORT_PLUGIN_ABI 1

/** The name of the one function a plugin exports. */
#define RAPPORT_PLUGIN_ENTRY_NAME "rapport_plugin_entry"

/** Marks the entry function exported (plugins build with -fvisibility=hidden). */
#define RAPPORT_EXPORT __attribute__((visibility("default")))

/** Status codes: 0 is success, negatives are failures (the same classes as the core's). */
enum {
    RAPPORT_OK = 0,
    RAPPORT_EINVAL = -1,    /**< Bad input. */
    RAPPORT_ENOTFOUND = -2, /**< No such entity, field or record. */
    RAPPORT_ECONFLICT = -3, /**< Stale version or duplicate unique value. */
    RAPPORT_EVETO = -4,     /**< A before-hook refused the change. */
    RAPPORT_EIO = -5,       /**< The database failed. */
    RAPPORT_ENOMEM = -6,    /**< Out of memory. */
    RAPPORT_EPERM = -10,    /**< In a route: the calling user's role does not allow it. */
};

/** Log levels for rapport_api.log. */
enum { RAPPORT_LOG_INFO = 0, RAPPORT_LOG_WARN = 1, RAPPORT_LOG_ERROR = 2 };

/** What a write does (for before-hooks). */
enum {
    RAPPORT_CREATE = 0, RAPPORT_UPDATE = 1, RAPPORT_DELETE = 2, RAPPORT_RESTORE = 3,
    RAPPORT_PURGE = 4,
    RAPPORT_ERASE = 5, /**< `rapport erase`: the record's personal fields are being emptied. */
};

/** The engine's handle for one loaded plugin. Opaque. */
typedef struct rapport_host rapport_host;

/** A record being written, as a before-hook sees it. Opaque; read and edit it through the API. */
typedef struct rapport_change rapport_change;

/** A plugin this one needs, with the oldest version that will do ("1.2.0"). */
typedef struct rapport_dep {
    const char *name;        /**< The plugin's name; NULL ends the list. */
    const char *min_version; /**< Semantic version, or NULL for any. */
} rapport_dep;

typedef struct rapport_api rapport_api;

/** One file a plugin serves (api->serve_assets): its path under the prefix ("index.html",
 *  "app/main.js"; [A-Za-z0-9_.-] and single slashes, no segment starting with a dot), its
 *  bytes. */
typedef struct rapport_asset {
    const char *path;
    const unsigned char *data;
    size_t len;
} rapport_asset;

/** The static descriptor a plugin's entry function returns. */
typedef struct rapport_plugin {
    uint32_t abi;              /**< RAPPORT_PLUGIN_ABI at build time. */
    const char *name;          /**< A lower-case identifier: the plugin's name everywhere. */
    const char *version;       /**< Semantic version "MAJOR.MINOR.PATCH". */
    const char *description;   /**< One line. */
    const rapport_dep *requires; /**< Plugins needed first, ended by {NULL, NULL}; may be NULL. */
    /**
     * Registers what the plugin brings. Return 0, or a negative status with a message written
     * into @p err (at most @p errlen bytes): everything registered so far is then undone.
     */
    int (*init)(rapport_host *h, const rapport_api *api, char *err, size_t errlen);
    /** Releases what init made. Called in the reverse order of init. May be NULL. */
    void (*fini)(rapport_host *h, const rapport_api *api);
} rapport_plugin;

/** The type of the entry function: `RAPPORT_EXPORT const rapport_plugin *rapport_plugin_entry(void)`. */
typedef const rapport_plugin *(*rapport_entry_fn)(void);

/** An event as a handler sees it. Borrowed: valid until the handler returns. */
typedef struct rapport_event {
    int64_t seq;          /**< Position in the log. */
    const char *type;     /**< "contact.created", "deal.stage_changed", … */
    const char *entity;   /**< The entity, or "". */
    int64_t record_id;    /**< The record, or 0. */
    const char *actor;    /**< Who acted. */
    const char *at;       /**< UTC "YYYY-MM-DDTHH:MM:SS.sssZ". */
    const char *changes;  /**< JSON object: {field: [old, new]}, or a custom event's payload. */
    int depth;            /**< How many handlers deep this change was caused. */
} rapport_event;

/** A job as its handler sees it. Borrowed: valid until the handler returns. */
typedef struct rapport_job {
    int64_t id;           /**< The job's id. */
    const char *name;     /**< The handler's name. */
    const char *key;      /**< Its key, or NULL. */
    const char *payload;  /**< JSON object. */
    int attempts;         /**< Runs so far, this one included. */
} rapport_job;

/** A before-hook: edit or veto @p c; return non-zero with @p err filled to veto. */
typedef int (*rapport_hook_fn)(rapport_host *h, const rapport_api *api, rapport_change *c,
                               void *ud, char *err, size_t errlen);
/** An event handler: return non-zero with @p err filled to have the event retried. */
typedef int (*rapport_event_fn)(rapport_host *h, const rapport_api *api, const rapport_event *ev,
                                void *ud, char *err, size_t errlen);
/** A job handler: return non-zero with @p err filled to have the job retried. */
typedef int (*rapport_job_fn)(rapport_host *h, const rapport_api *api, const rapport_job *job,
                              void *ud, char *err, size_t errlen);
/**
 * A Lua function crm.<plugin>.<name>: @p args is a JSON array of the arguments; set *result to
 * JSON text made with api->strdup (or leave it NULL for nil). Non-zero with @p err to raise.
 */
typedef int (*rapport_lua_fn)(rapport_host *h, const rapport_api *api, const char *args,
                              char **result, void *ud, char *err, size_t errlen);
/** A command `rapport <plugin> <name> ARGS…`: prints what it likes; returns the exit status. */
/**
 * A request to one of the plugin's HTTP routes (api->route), borrowed for the call. The caller
 * has shown a valid token: @p user and @p role say who, and while the route runs the host's
 * functions act as that user, with that role's permissions.
 */
typedef struct rapport_request {
    const char *method;  /**< "GET", "POST", "PATCH", "DELETE", … */
    const char *path;    /**< The whole path: "/api/v1/plugins/loyalty/balance/42". */
    const char *rest;    /**< What follows the route's own path: "/42", or "". */
    const char *query;   /**< The query string as sent (without "?"), or "". */
    const char *body;    /**< The body, NUL-ended, or NULL when there is none. */
    size_t body_len;
    const char *user;    /**< The token's user ("" on a public route). */
    const char *role;    /**< The role it acts with ("" on a public route). */
    /* Appended with public_route: test RAPPORT_HAS(api, public_route) before reading these. */
    int nheaders;                     /**< The request's headers: */
    const char *const *header_names;  /**< lower-case names, */
    const char *const *header_values; /**< and their values as sent. */
    const char *client;               /**< The peer's address ("127.0.0.1"). */
    /* Appended with session_start: test RAPPORT_HAS(api, session_start) before reading it. */
    const char *subject; /**< The record a record session acts as ("contact:42"), or NULL. */
} rapport_request;

/**
 * Answers a request: set *status (the host starts it at 200) and *body to JSON text allocated
 * with api->strdup (or leave it NULL for no body). A negative return (with an error message
 * in @p err) is answered as application/problem+json with the status that fits the code
 * (RAPPORT_EINVAL 422, RAPPORT_ENOTFOUND 404, RAPPORT_ECONFLICT 409, …).
 */
typedef int (*rapport_route_fn)(rapport_host *h, const rapport_api *api,
                                const rapport_request *req, int *status, char **body, void *ud,
                                char *err, size_t errlen);

/** A value of an aggregate's row (api->aggregate_cells). Borrowed for the call. */
typedef struct rapport_cell {
    int type;       /**< RAPPORT_CELL_NULL, _INT, _REAL, _TEXT or _DECIMAL. */
    int scale;      /**< _DECIMAL: digits after the point of i ("12.50" is i 1250, scale 2). */
    int64_t i;      /**< _INT (booleans 0 and 1) and _DECIMAL. */
    double d;       /**< _REAL. */
    const char *s;  /**< _TEXT: dates, times and bucket labels as the store writes them. */
} rapport_cell;

enum { RAPPORT_CELL_NULL, RAPPORT_CELL_INT, RAPPORT_CELL_REAL, RAPPORT_CELL_TEXT,
       RAPPORT_CELL_DECIMAL };

/** Bytes api->time_format writes: "YYYY-MM-DDTHH:MM:SS.sssZ" and its NUL. */
#define RAPPORT_TIME_LEN 25

/** Bytes enough for any text api->dec_format writes. */
#define RAPPORT_DEC_LEN 24

/** Where an export stands when its format's writer is called. */
enum { RAPPORT_EXPORT_BEGIN = 0, RAPPORT_EXPORT_RECORD = 1, RAPPORT_EXPORT_END = 2 };

/** One call of an export's writer. Borrowed: valid for the call. */
typedef struct rapport_export {
    int phase;          /**< RAPPORT_EXPORT_BEGIN, _RECORD or _END. */
    const char *entity; /**< What is exported. */
    const char *fields; /**< JSON object {field: spec}: the fields the caller may see. */
    const char *record; /**< At RAPPORT_EXPORT_RECORD, the record as JSON; else NULL. */
    int filtered;       /**< Non-zero when the caller chose the records (`--where`). */
    int failed;         /**< At RAPPORT_EXPORT_END: the export stopped early; write nothing. */
    int64_t now_ms;     /**< The wall clock when the export began (for stamps such as DTSTAMP). */
    void *state;        /**< The writer's own: NULL at BEGIN, kept across calls; free it at END. */
} rapport_export;

/**
 * Writes one part of an export into *out (text made with api->strdup or malloc; the host frees
 * it): at BEGIN the head, or a negative status with a message in @p err when the entity does
 * not fit the format ("vCard is for people: product has no last_name field"); at RECORD the
 * record's text ("" counts it without writing, for a writer that builds its file whole at
 * END), or *out left NULL to leave the record out (it is then not counted); at END the tail.
 * END comes once after a successful BEGIN, also when the export failed.
 */
typedef int (*rapport_export_fn)(rapport_host *h, const rapport_api *api, rapport_export *x,
                                 char **out, void *ud, char *err, size_t errlen);

/**
 * Takes one record an import format read: @p record is a JSON object named by the entity's
 * fields (fields the entity lacks are left out by the host), @p line where it starts in the
 * file. Returns non-zero when the import stops: read no further.
 */
typedef int (*rapport_sink_fn)(void *sink, const char *record, long line);

/**
 * Reads the @p len bytes of @p text (a whole file, NUL-ended) for an import into @p entity and
 * hands each record to @p sink with @p sink_ud. Returns 0, or a negative status with a message
 * that starts with the line ("line 3: BEGIN:VCARD without END:VCARD") in @p err.
 */
typedef int (*rapport_import_fn)(rapport_host *h, const rapport_api *api, const char *entity,
                                 const char *text, size_t len, rapport_sink_fn sink,
                                 void *sink_ud, void *ud, char *err, size_t errlen);

/** A file format for `rapport import` and `rapport export` (api->format). */
typedef struct rapport_format {
    const char *name;        /**< The `--format` name: lower-case letters and digits ("vcf"). */
    const char *extensions;  /**< File endings that choose it, space-separated (".vcf .vcard"),
                                  or NULL. */
    const char *description; /**< One line ("vCard 4.0 for people"), or NULL. */
    rapport_import_fn reader; /**< Reads files for import; NULL when it only exports. */
    rapport_export_fn writer; /**< Writes files for export; NULL when it only imports. */
} rapport_format;

typedef int (*rapport_command_fn)(rapport_host *h, const rapport_api *api, int argc, char **argv,
                                  void *ud);

/**
 * The host's functions. Every function that can fail returns 0 or a negative status and leaves
 * a message for api->last_error(h). Strings the host returns are owned by the caller: free them
 * with api->free. JSON arguments are borrowed.
 */
struct rapport_api {
    uint32_t size;            /**< sizeof(rapport_api) in the host: test with RAPPORT_HAS. */
    uint32_t abi;             /**< The host's RAPPORT_PLUGIN_ABI. */
    const char *host_version; /**< The engine's version. */

    /* -- basics -- */
    /** The message of the last failure of a call made through @p h ("" if none). */
    const char *(*last_error)(rapport_host *h);
    /** Frees a string the host returned. */
    void (*free)(void *p);
    /** Copies @p s into memory api->free can release (for results handed to the host). */
    char *(*strdup)(const char *s);
    /** Logs one line, printf-style, under the plugin's name. */
    void (*log)(rapport_host *h, int level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
    /** The engine's clock, in milliseconds since the epoch (virtual in tests). */
    int64_t (*now_ms)(rapport_host *h);
    /** The plugin's setting @p key ("plugin.<name>.<key>" in `rapport config`), as JSON text,
     *  or NULL when it is not set. Owned. A key that starts with '/' names an engine-wide
     *  setting that several plugins share ("/mail.from"). */
    char *(*config)(rapport_host *h, const char *key);
    /** The folder the plugin was loaded from (its scripts live in <dir>/scripts). Borrowed. */
    const char *(*dir)(rapport_host *h);

    /* -- the registry -- */
    /** Defines an entity: @p spec as in `rapport define` ({"fields": {…}}). */
    int (*define_entity)(rapport_host *h, const char *entity, const char *spec);
    /** Adds a field to an entity. */
    int (*add_field)(rapport_host *h, const char *entity, const char *field, const char *spec);
    /** Whether an entity is defined (1) or not (0). */
    int (*has_entity)(rapport_host *h, const char *entity);

    /* -- records -- */
    /** Creates a record from the JSON object @p fields; *id (may be NULL) gets its id. */
    int (*create)(rapport_host *h, const char *entity, const char *fields, int64_t *id);
    /** The record as JSON text (owned), or NULL (see last_error; not found is not an error
     *  message of its own: last_error says "no <entity> with id N"). */
    char *(*get)(rapport_host *h, const char *entity, int64_t id);
    /** Applies the JSON object @p patch; @p version > 0 checks the version first. */
    int (*update)(rapport_host *h, const char *entity, int64_t id, const char *patch,
                  int64_t version);
    /** Soft-deletes a record. */
    int (*remove)(rapport_host *h, const char *entity, int64_t id);
    /**
     * Runs a query: @p query is {"where": …, "order": "f,-g", "limit": n, "after": cursor,
     * "fields": [..], "deleted": bool}. Returns {"data": [...], "next": cursor|null} (owned).
     */
    char *(*find)(rapport_host *h, const char *entity, const char *query);
    /** Counts the records matching @p where (JSON, or NULL for all) into *n. */
    int (*count)(rapport_host *h, const char *entity, const char *where, int64_t *n);
    /** Appends a custom event of @p type with the JSON object @p payload (may be NULL). */
    int (*emit)(rapport_host *h, const char *type, const char *entity, int64_t record_id,
                const char *payload);

    /* -- registrations (each removed again if init fails, and when the plugin unloads) -- */
    /** A before-hook on @p entity ("*" for all) and @p action (RAPPORT_CREATE…). */
    int (*hook)(rapport_host *h, const char *entity, int action, int priority, rapport_hook_fn fn,
                void *ud);
    /** A batch before-hook on create or update: sees a bulk write once (see batch_*). */
    int (*batch_hook)(rapport_host *h, const char *entity, int action, int priority,
                      rapport_hook_fn fn, void *ud);
    /** A durable event handler named "<plugin>.<name>" for the types matching @p types. */
    int (*on)(rapport_host *h, const char *name, const char *types, rapport_event_fn fn,
              void *ud);
    /** The handler of jobs named @p name (use "<plugin>.<verb>"). */
    int (*job)(rapport_host *h, const char *name, rapport_job_fn fn, void *ud);
    /** Schedules job @p name in @p delay_ms with a JSON @p payload and an optional @p key. */
    int (*schedule)(rapport_host *h, const char *name, const char *payload, int64_t delay_ms,
                    const char *key);
    /** Cancels the pending job of @p key (RAPPORT_ENOTFOUND when there is none). */
    int (*cancel)(rapport_host *h, const char *key);
    /** Runs job @p job on the cron expression @p cron in zone @p tz (NULL: the configured one). */
    int (*every)(rapport_host *h, const char *schedule, const char *cron, const char *tz,
                 const char *job, const char *payload);
    /** Adds crm.<plugin>.<name> to every Lua state; a @p name written "/name" adds crm.<name>
     *  itself (one plugin each; never in place of one of the engine's own functions). */
    int (*lua_function)(rapport_host *h, const char *name, rapport_lua_fn fn, void *ud);
    /** Adds `rapport <plugin> <name>` with a one-line @p help. */
    int (*command)(rapport_host *h, const char *name, const char *help, rapport_command_fn fn,
                   void *ud);

    /* -- inside a before-hook -- */
    /** The entity of the change. Borrowed. */
    const char *(*change_entity)(rapport_change *c);
    /** The action (RAPPORT_CREATE…). */
    int (*change_action)(rapport_change *c);
    /** The record's id (0 on create). */
    int64_t (*change_id)(rapport_change *c);
    /** For a batch hook: how many records; for a record hook: 1. */
    int (*change_count)(rapport_change *c);
    /** Record @p i's field as JSON text (owned), or NULL when absent. On update, a field not in
     *  the patch is read from the record as it was. */
    char *(*change_get)(rapport_change *c, int i, const char *field);
    /** Sets record @p i's field from JSON text (NULL removes it from the write). */
    int (*change_set)(rapport_change *c, int i, const char *field, const char *json);

    /* -- transactions (since 0.2.0: test with RAPPORT_HAS) -- */
    /**
     * Opens a transaction, or a savepoint inside the caller's (a Lua function or a command
     * that makes several records as one: a lead conversion). Every begin is closed by one
     * commit or one rollback, in the same call into the plugin.
     */
    int (*begin)(rapport_host *h);
    /** Commits what the matching begin opened (into the caller's transaction, if any). */
    int (*commit)(rapport_host *h);
    /** Undoes everything since the matching begin. */
    int (*rollback)(rapport_host *h);

    /* -- the registry and text (since 0.2.0) -- */
    /** The registry as JSON (owned): {entity: {"fields": {name: spec}, …}} for every entity,
     *  or one entity's description when @p entity is not NULL. NULL when there is no such
     *  entity (see last_error). */
    char *(*schema)(rapport_host *h, const char *entity);
    /** @p text folded as search and duplicate checks compare it (case, accents, the
     *  Arabic/Persian letter variants, digits), owned. */
    char *(*fold)(rapport_host *h, const char *text);
    /** In a batch hook that vetoes: the record @p i that is wrong, so a bulk write (an import)
     *  names the right one (without it, the first). */
    void (*change_refuse)(rapport_change *c, int i);

    /* -- the HTTP API (since the API: test with RAPPORT_HAS) -- */
    /**
     * Serves @p method ("GET", … or "*" for any) on /api/v1/plugins/<plugin>/@p path and on
     * every path below it (the rest reaches the route as req->rest). Requests need a token;
     * the route's store calls obey the caller's role.
     */
    int (*route)(rapport_host *h, const char *method, const char *path, rapport_route_fn fn,
                 void *ud);

    /* -- time and exact decimals (appended after route: test with RAPPORT_HAS) -- */
    /* @p h may be NULL in these: the message of a failure is then not kept for last_error. */
    /** Writes @p ms (since the epoch) as UTC "YYYY-MM-DDTHH:MM:SS.sssZ" into @p out, which has
     *  room for RAPPORT_TIME_LEN bytes. RAPPORT_EINVAL outside the years 0 to 9999. */
    int (*time_format)(rapport_host *h, int64_t ms, char *out);
    /** Reads an ISO-8601 date-time ("2026-01-05T09:30:00.000Z", any offset, "T09:30" without
     *  seconds) or a date ("2026-01-05", at midnight UTC) into *ms. RAPPORT_EINVAL. */
    int (*time_parse)(rapport_host *h, const char *text, int64_t *ms);
    /** Reads a delay ("90s", "15m", "24h", "3d", "2w", "500ms", "1h30m") into *ms. */
    int (*delay_parse)(rapport_host *h, const char *text, int64_t *ms);
    /** Reads a decimal ("-12.50") as an integer scaled by 10^@p scale (0–18) into *out:
     *  "12.5" at scale 2 is 1250. Refused: not a decimal, more than @p scale decimals (unless
     *  zeros), out of range. */
    int (*dec_parse)(rapport_host *h, const char *text, int scale, int64_t *out);
    /** Writes @p v at @p scale as text ("-12.50") into @p out of @p cap bytes (RAPPORT_DEC_LEN
     *  is enough). */
    int (*dec_format)(rapport_host *h, int64_t v, int scale, char *out, size_t cap);
    /** *out = @p a + @p b (the same scale); RAPPORT_EINVAL when it leaves the range. */
    int (*dec_add)(rapport_host *h, int64_t a, int64_t b, int64_t *out);
    /** *out = @p a (at @p ascale) × @p b (at @p bscale) at @p scale, rounded half away from
     *  zero (1.005 × 1 at scale 2 is 1.01); RAPPORT_EINVAL when it leaves the range. */
    int (*dec_mul)(rapport_host *h, int64_t a, int ascale, int64_t b, int bscale, int scale,
                   int64_t *out);
    /** -1, 0 or 1 as @p a (at @p ascale) is less than, equal to or more than @p b. */
    int (*dec_cmp)(int64_t a, int ascale, int64_t b, int bscale);

    /* -- file formats (appended after dec_cmp: test with RAPPORT_HAS) -- */
    /**
     * Adds an import/export format (`rapport import|export --format NAME`, or chosen by a
     * file's ending). @p f is copied; @p ud reaches its reader and writer. A name another
     * plugin (or the engine: csv, jsonl) has is refused.
     */
    int (*format)(rapport_host *h, const rapport_format *f, void *ud);

    /* -- aggregates (appended after format: test with RAPPORT_HAS) -- */
    /**
     * A grouped aggregate of @p entity, computed by the store in one statement: @p query is
     * {"group_by": ["field", "at:month", …], "measures": ["count", "sum:amount", "avg:F",
     * "min:F", "max:F", "count:F", "count_distinct:F"], "where": filter, "zone": "Europe/Berlin",
     * "order": "-sum_amount", "limit": n, "offset": n, "deleted": bool} (all optional).
     * @p row is called with each row as a JSON object (text borrowed during the call), keyed
     * as the README's `rapport aggregate` says; a non-zero return stops and is returned as it
     * is. The caller's role applies (a route's request). @return 0, or an error (last_error).
     */
    int (*aggregate)(rapport_host *h, const char *entity, const char *query,
                     int (*row)(void *ud, const char *json), void *ud);
    /**
     * As aggregate, each row as @p n typed cells (groups, then measures, named by @p names),
     * with no JSON in between: for an analysis that reads a million groups. All borrowed for
     * the call. (Appended after aggregate: test with RAPPORT_HAS.)
     */
    int (*aggregate_cells)(rapport_host *h, const char *entity, const char *query,
                           int (*row)(void *ud, int n, const char *const *names,
                                      const rapport_cell *cells),
                           void *ud);

    /* -- channels (appended after aggregate_cells: test with RAPPORT_HAS) -- */
    /**
     * As route, but served without a token: for a caller that cannot hold one (an SMS gateway's
     * delivery receipt, a phone system's call event). The route must check the request itself
     * (a signature over the body with a shared secret: api->header reads it) and answer 401
     * when it does not hold. The host acts as the plugin while it runs (its own actor, no
     * role's limits), so what it writes is the plugin's doing.
     */
    int (*public_route)(rapport_host *h, const char *method, const char *path, rapport_route_fn fn,
                        void *ud);
    /**
     * Serves GET /api/v1/<entity>/<id>/@p name for every entity (a record's timeline): the
     * route @p fn is also the plugin's GET route @p name, and req->rest is "/<entity>/<id>".
     * One plugin per name; the engine's own (events, explain, restore, subject) cannot be taken.
     */
    int (*record_route)(rapport_host *h, const char *name, rapport_route_fn fn, void *ud);
    /**
     * The events of record @p id of @p entity, newest first, as the caller may see them (the
     * fields hidden from its role taken out, nothing outside its read scope): @p query is
     * {"before": seq, "limit": n (1–1000, default 50)}. Returns {"data": [event, …],
     * "next": seq|null} (owned; each event as GET /api/v1/<entity>/<id>/events has it).
     */
    char *(*events)(rapport_host *h, const char *entity, int64_t id, const char *query);
    /** User @p name as {"name", "role", "team", "email", "disabled"} (owned), or NULL
     *  (RAPPORT_ENOTFOUND) when there is none. */
    char *(*user)(rapport_host *h, const char *name);
    /**
     * Runs @p work(@p ud) off the event loop (on a worker thread: it may block on the network,
     * and must not call the host), then @p done on the loop, where the host may be called again
     * (acting as the plugin). Outside `rapport serve` both run at once, in turn. At most two
     * plugins' works run at a time (the engine's own work needs the pool too); the rest wait
     * their turn, in order, and a stopping server waits for them. A crash loses what was in
     * flight: keep what must not be lost in the store before, and recover it (a job that
     * finds it unfinished).
     */
    int (*offload)(rapport_host *h, void (*work)(void *ud),
                   void (*done)(rapport_host *h, const rapport_api *api, void *ud), void *ud);
    /** The value of header @p name (any case) of @p req, or NULL. Borrowed. */
    const char *(*header)(const rapport_request *req, const char *name);
    /**
     * With @p on non-zero, the host's functions act as the plugin itself (its own actor, no
     * role's limits) instead of the caller a route, command or Lua function runs for; with 0,
     * as the caller again. Returns the previous state. For a write the plugin owes the caller
     * whatever the caller's role (a notification to a colleague): turn it off right after.
     * (Appended after header: test with RAPPORT_HAS.)
     */
    int (*as_plugin)(rapport_host *h, int on);
    /**
     * Declares entity @p entity with @p spec (as define_entity's), safe to call at every init:
     * creates the entity when missing, adds the fields the spec gained and applies the changes
     * that are safe by themselves (flags, defaults, enum values gained); when the registry
     * already matches it writes nothing. What the store cannot change by itself (a type
     * change, a dropped field holding values, required over empty values, unique over shared
     * ones, an enum losing values records hold) is refused with RAPPORT_EINVAL and nothing
     * stored; last_error names the entity, the field, the difference and the migration to
     * write. Fields that others added (admins, other plugins) are left alone.
     * (Appended after as_plugin: test with RAPPORT_HAS.)
     */
    int (*declare)(rapport_host *h, const char *entity, const char *spec);
    /**
     * Offers the grants @p grants (a role's JSON, see `rapport roles`) of role @p role, for
     * the entities the plugin owns: the keys the setting roles.<role> lacks are added (its
     * "principal", an entity's grant, a field's rule), what is there already stays, so an
     * administrator's choice wins (to take a grant away, set it to {"read": "none"}). An
     * entity's "writable" list (the only fields the role writes) merges by union: its names
     * are added to the role's list; an offer without "create" or "update" for the entity only
     * adds to a list, never starts one (keep a listed field from the role with a "read_only"
     * rule: it wins over the list). The
     * result is checked as a role; RAPPORT_EINVAL and nothing kept when it does not read back
     * (last_error says where). Safe at every init: when nothing is new nothing is written.
     * The portal's role is made this way by the plugins owning its entities.
     * (Appended after declare: test with RAPPORT_HAS.)
     */
    int (*role_default)(rapport_host *h, const char *role, const char *grants);
    /**
     * Serves @p files (a table ended by an entry whose path is NULL; borrowed for as long as
     * the plugin is loaded: static data, such as the table sdk/cmake/embed_assets.cmake makes
     * from a folder) under @p prefix ("/shop/": a slash, a name of [A-Za-z0-9_-], a slash) from
     * `rapport serve`, as the engine serves its own pages: GET and HEAD, to anyone, the type
     * from the file's extension, an ETag (304), the security headers (a Content-Security-Policy
     * without inline script), PREFIX's index.html, and 404 for any other path. A prefix taken by
     * the engine (/console/, /portal/, /shared/, /api/) or another plugin is refused when the
     * server starts, and said in its log. (Appended after role_default: test with RAPPORT_HAS.)
     */
    int (*serve_assets)(rapport_host *h, const char *prefix, const rapport_asset *files);
    /**
     * Erases the personal data of record @p id of @p entity, as `rapport erase` does (its
     * personal fields emptied in the row, its events and the search index; the records that
     * refer to it too; one "<entity>.erased" event with @p reason, may be NULL). For a before-hook
     * on RAPPORT_ERASE that erases what only the plugin links to the record, in the same
     * transaction. Refused for a user's context. (Appended after serve_assets: test with RAPPORT_HAS.)
     */
    int (*erase)(rapport_host *h, const char *entity, int64_t id, const char *reason);
    /**
     * Non-zero when nothing may reach the outside: what the engine runs now is not kept
     * (`rapport replay`, `rapport schema diff`, inside crm.dry_run), so a mail fetched and
     * marked seen, a message sent or a request made could not be taken back. A plugin then
     * refuses such work with RAPPORT_EPERM and a message saying why; api->offload() refuses too.
     * (Appended after erase: test with RAPPORT_HAS.)
     */
    int (*offline)(rapport_host *h);
    /**
     * Signs record @p id of @p entity in as a browser session acting with role @p role (one
     * whose "principal" is @p entity: the portal's contact): the answer to @p req, the request
     * a route of the plugin is answering, sets the session cookie (rp_session, HttpOnly,
     * SameSite=Strict, as a user's), and @p csrf (room for 65 bytes, may be NULL) gets the
     * session's CSRF token, which the page sends as X-CSRF-Token on writes. Only trusted code
     * opens such a session: the staff sign-in never does, and a record's session never acts
     * as a user (every request loads the role's record-linked access). RAPPORT_EINVAL outside
     * a route or for a role that is not for records of @p entity; RAPPORT_EPERM for a record
     * that does not exist. "session.created" is in the log. (Appended after offline: test with
     * RAPPORT_HAS.)
     */
    int (*session_start)(rapport_host *h, const rapport_request *req, const char *entity,
                         int64_t id, const char *role, char *csrf);
    /**
     * With @p req, ends the session whose cookie let @p req in (signing out; the answer
     * removes the cookie): RAPPORT_EINVAL when it came without one. With @p req NULL, ends
     * every live session of record @p id of @p entity (access taken away), none being no
     * error. "session.revoked"/"session.ended" are in the log. (Appended after session_start:
     * test with RAPPORT_HAS.)
     */
    int (*session_end)(rapport_host *h, const rapport_request *req, const char *entity,
                       int64_t id);
    /**
     * Keeps @p value under @p name (1–200 bytes; the value at most 4,096) for the plugin alone:
     * in the installation's database but in no record, event, export or API answer, for
     * what must never be read back (a password's hash, a one-time link's hash). @p ttl_ms > 0
     * makes it expire; 0 keeps it. A NULL @p value deletes it (none is not an error). Hash
     * what you keep: a copy of the database is a copy of these. (Appended after session_end:
     * test with RAPPORT_HAS.)
     */
    int (*secret_put)(rapport_host *h, const char *name, const char *value, int64_t ttl_ms);
    /**
     * The value kept under @p name (owned: api->free), or NULL with RAPPORT_ENOTFOUND when
     * there is none or it has expired. With @p remove non-zero it is deleted as it is read
     * (a single-use secret: of two readers, one has it). (Appended with secret_put.)
     */
    char *(*secret_take)(rapport_host *h, const char *name, int remove);
    /**
     * Inside a route: answers the request with @p len bytes of @p data (copied) as a file to
     * download instead of the route's JSON body (which, if set, is dropped): status 200,
     * `Content-Disposition: attachment; filename*=UTF-8''…` of @p filename (its path, control
     * characters and bytes that are not UTF-8 taken out, at most 200 bytes; "download" when
     * nothing is left), `Content-Security-Policy: sandbox` beside the engine's own headers
     * (nosniff among them), and @p content_type only when it is one that a browser does not
     * run (image/png, image/jpeg, image/gif, image/webp, application/pdf, text/plain; its
     * parameters dropped), else application/octet-stream. At most 64 MiB. RAPPORT_EINVAL
     * outside a route answering a request over HTTP, or a second time in one request.
     * (Appended after secret_take: test with RAPPORT_HAS.)
     */
    int (*reply_bytes)(rapport_host *h, const char *content_type, const char *filename,
                       const void *data, size_t len);
    /**
     * Documents route @p method @p path of this plugin in the engine's OpenAPI document
     * (GET /openapi.json): @p path is the route's own ("login/link", as given to route,
     * public_route or record_route), or it followed by more segments, of which "{name}" ones
     * are path parameters ("articles/{slug}"); @p method is one the route answers (GET, POST,
     * PUT, PATCH or DELETE; any of them for a route registered with "*"). @p openapi_operation_json
     * is an OpenAPI 3 operation object: "summary" (required), and optionally "description",
     * "parameters", "requestBody", "responses" (default: 200), "tags" (default: the plugin's
     * name), "deprecated", "operationId". A public route's operation is marked as needing no
     * security; "{name}" parameters not declared are added. Every route is listed even when
     * undocumented, with a summary saying so. Call it after registering the route, in init.
     * RAPPORT_EINVAL names what is wrong. (Appended after reply_bytes: test with RAPPORT_HAS.)
     */
    int (*route_doc)(rapport_host *h, const char *method, const char *path,
                     const char *openapi_operation_json);
    /**
     * Full-text search as the caller (a route's: the signed-in user's or portal customer's
     * scope, hidden fields not searched): @p text's words match by prefix, with case, accents
     * and Arabic/Persian letter variants folded; @p entity (may be NULL: every entity) narrows
     * it; @p limit 1..100 (0: 20). Returns {"data": [{"entity", "id", "rank", "snippet"}]}
     * (owned: api->free), best first, or NULL with last_error (a text of more than 32 words or
     * 1,024 bytes is refused). (Appended with route_doc.)
     */
    char *(*search)(rapport_host *h, const char *text, const char *entity, int limit);
    /**
     * Inside a before-hook: record @p i's field @p field when it is a string, copied into
     * @p buf (@p cap bytes, NUL-terminated, cut to fit). Returns the string's length in bytes
     * (a length of @p cap or more says it was cut: call again with length + 1 bytes),
     * RAPPORT_ENOTFOUND when the field is absent or null, RAPPORT_EINVAL when it holds another
     * type (read that with change_get) or @p i is not a record of the change. On update, a
     * field not in the patch is read from the record as it was, as change_get does. No JSON
     * and nothing to free: for hooks that read every row of a large import. (Appended after
     * search: test with RAPPORT_HAS.)
     */
    long (*change_get_text)(rapport_change *c, int i, const char *field, char *buf, size_t cap);
    /**
     * Inside a before-hook: sets record @p i's field to the string @p text (copied).
     * RAPPORT_EINVAL when @p text is not valid UTF-8 or @p i is not a record of the change
     * (nothing is set). (Appended with change_get_text.)
     */
    int (*change_set_text)(rapport_change *c, int i, const char *field, const char *text);
    /**
     * Reads a page of @p entity's records as find does, without JSON: @p query_json is find's
     * ("where", "order", "limit" up to 10,000, "after", "deleted"), with "fields" required (1
     * to 64 names). @p row is called once per record: @p values[i] is the text of the i-th
     * field named, NULL when null: a value find's JSON holds as a string as it is (a decimal
     * "12.50", a date-time, a JSON field that holds a string), any other as its JSON text (42,
     * 2.5, true, {"a":1}); @p lens[i] is its length. Both are valid during the call only. A non-zero return from @p row stops the
     * read and is returned as it is. Otherwise 0, and *@p next is the cursor of the following
     * page (owned: api->free), NULL after the last; or an error with last_error. The caller's
     * role and field security apply as to find. For a scan of a whole table: the duplicate
     * scan of a million contacts spent 38 % of its time parsing find's JSON. (Appended with
     * change_get_text.)
     */
    int (*find_rows)(rapport_host *h, const char *entity, const char *query_json,
                     int (*row)(void *ud, int n, const char *const *values, const size_t *lens),
                     void *ud, char **next);
};

/** Whether @p api has function @p fn (so a plugin can run on an older host). */
#define RAPPORT_HAS(api, fn) \
    ((api)->size >= offsetof(rapport_api, fn) + sizeof((api)->fn) && (api)->fn != NULL)

#ifdef __cplusplus
}
#endif

#endif
