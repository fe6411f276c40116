/*
 * lua.h — Lua 5.4 for business rules and power users: the `crm` API over the store, the event
 * log and the scheduler; sandboxed script states with an instruction budget, a wall-time limit
 * and a memory ceiling; loading and reloading script files; and `rapport test`'s runner.
 * The store knows nothing of Lua; this room sits above it.
 */
#ifndef RAPPORT_LUA_H
#define RAPPORT_LUA_H

#include "rapport/sched.h"

/** A Lua state bound to one store and engine. */
typedef struct rp_lua rp_lua_t;

/** Line coverage gathered from Lua states while tests run (rp_lua_cov_new()). */
typedef struct rp_lua_cov rp_lua_cov_t;

/**
 * A function added to the `crm` table under a namespace (crm.<ns>.<name>), e.g. by a plugin.
 * It gets its arguments as a JSON array and sets *result to JSON text (malloc'd; NULL for nil);
 * non-zero with @p err filled raises a Lua error. @p caller is the calling state's context:
 * when it carries a user's access (a script run for a user), the function acts as that user.
 */
typedef int (*rp_lua_ext_fn)(void *ud, const rp_ctx_t *caller, const char *args, char **result,
                             char *err, size_t errlen);

/** One such function in a list (borrowed by every state made with it; keep it alive). */
typedef struct rp_lua_ext {
    const char *ns;              /**< Namespace: crm.<ns>; "" for crm.<name> itself (never in
                                      place of one of the engine's own). */
    const char *name;            /**< Function name. */
    rp_lua_ext_fn fn;
    void *ud;
    const struct rp_lua_ext *next;
} rp_lua_ext_t;

/** Options for rp_lua_new(). Zero-initialise; zero fields take the defaults shown. */
typedef struct rp_lua_opts {
    bool sandbox;          /**< A script's sandbox (no io, os, debug, package, binary chunks). */
    bool limits;           /**< The limits below without the sandbox (a sandbox has them). */
    int64_t max_cpu_ms;    /**< CPU time per call into Lua (default 1000), checked every 10 ms. */
    int64_t max_wall_ms;   /**< Per call into Lua (default 5000). */
    /** An exact count of Lua instructions per call (default 0: none). Counting costs about 2x
     * on Lua-bound code (Lua 5.4 traps every instruction while a count hook is set), so the
     * CPU budget is the default bound; set this where a deterministic stop matters. */
    int64_t max_instructions;
    size_t max_memory;     /**< Ceiling for the whole state in bytes (default 64 MiB). */
    const char *actor;     /**< Who the script acts as (default "script:<name>"). */
    /** Whose permissions the script's reads and writes obey (rapport/access.h; borrowed, must
     *  outlive the state), or NULL for none: a script run for a user (`rapport --as NAME run`)
     *  sees and changes only what that user may. Hooks and handlers it registers run with it
     *  too. */
    const rp_access_t *access;
    const char *name;      /**< The script's name in messages and registrations. */
    const rp_lua_ext_t *ext; /**< Functions to add under crm.<ns> (borrowed), or NULL. */
    /** Count the lines of script files this state runs into @p coverage (borrowed; must
     *  outlive the state), or NULL. Only `rapport test --coverage` sets it: a hook on every
     *  line makes a tight Lua loop some 9x slower than plain Lua (bench_lua c); without it no
     *  line hook is ever set, and the limits cost what they did (within noise, same bench). */
    rp_lua_cov_t *coverage;
} rp_lua_opts_t;

/**
 * Makes a Lua state with the `crm` API over @p s and @p e (both borrowed; they must outlive
 * it). NULL with @p err filled on failure. Free with rp_lua_free().
 */
rp_lua_t *rp_lua_new(rp_store_t *s, rp_sched_t *e, const rp_lua_opts_t *opts, rp_error_t *err);

/** Removes everything the state registered (hooks, handlers, jobs) and frees it. */
void rp_lua_free(rp_lua_t *l);

/**
 * Runs the chunk @p code named @p chunkname (used as the file in "file:line: message") and
 * stores its results as a JSON array in *results (owned; may be NULL to drop them). Errors
 * come back as RP_EINVAL with "file:line: message" in @p err. Registrations the chunk makes
 * (crm.before, crm.on, crm.job, crm.every) take effect only when it succeeds.
 */
int rp_lua_eval(rp_lua_t *l, const char *code, const char *chunkname, json_t **results,
                rp_error_t *err);

/** The largest chunk load() takes in the sandbox and the largest script file run: Lua's
 *  parser takes a chunk in one C call, kept to tens of milliseconds. */
#define RP_LUA_MAX_CHUNK (1 << 20)

/** Runs the file @p path as rp_lua_eval() does; @p args become the global `arg` table. A
 *  folder or a device is refused (RP_EINVAL), and so is a file longer than RP_LUA_MAX_CHUNK. */
int rp_lua_run_file(rp_lua_t *l, const char *path, int argc, char **argv, json_t **results,
                    rp_error_t *err);

struct lua_State;

/**
 * The Lua state inside @p l, for a tool that drives it between chunks: the REPL asks the parser
 * whether an input is complete and walks the live `crm` table to complete names. Borrowed:
 * valid until rp_lua_free(). Code should still run through rp_lua_eval(), which applies the
 * limits and the deferred registrations; call nothing on the state while a chunk runs.
 */
struct lua_State *rp_lua_state(rp_lua_t *l);

/**
 * Renders a value the way `rapport eval` prints it: strings and numbers plainly, nil as "nil",
 * tables as JSON. Owned: free().
 */
char *rp_lua_render(json_t *value);

/* ---- script folders ---------------------------------------------------------------------- */

/** The scripts loaded from folders, each in its own sandboxed state. */
typedef struct rp_scripts rp_scripts_t;

/**
 * Loads every `*.lua` file (not `*_test.lua`) of each folder in @p dirs (NULL-terminated),
 * in name order, each in its own sandboxed state, so one broken script never stops the others.
 * A script that fails to load is reported through @p log (file:line; NULL: the sink of
 * rapport/log.h) and skipped.
 * Returns NULL only when out of memory.
 */
rp_scripts_t *rp_scripts_load(rp_store_t *s, rp_sched_t *e, const char *const *dirs,
                              const rp_lua_opts_t *opts, rp_log_fn log, void *log_ud);

/**
 * Reloads the scripts whose files changed since they were loaded (and loads new ones): a
 * script that now fails to load keeps its previous version running. Returns how many were
 * (re)loaded.
 */
int rp_scripts_reload(rp_scripts_t *sc);

/** How many scripts are loaded. */
int rp_scripts_count(const rp_scripts_t *sc);

/** How many script files failed to load and run no version at all (their rules are missing). */
int rp_scripts_broken(const rp_scripts_t *sc);

/**
 * The script files as a new array (owned) of {"file", "running" (a version of it runs),
 * "error" (why the file last failed to load: a broken script, or an edit that did not load
 * while the previous version runs; absent when it loaded)}, in load order.
 */
json_t *rp_scripts_describe(const rp_scripts_t *sc);

/** The folders @p sc loads from (NULL-terminated, borrowed). */
const char *const *rp_scripts_dirs(const rp_scripts_t *sc);

/** Unloads every script (removing its registrations) and frees @p sc. NULL is ignored. */
void rp_scripts_free(rp_scripts_t *sc);

/* ---- tests ------------------------------------------------------------------------------- */

/** One test's world, as rp_test_setup_t's open makes it. */
typedef struct rp_test_world {
    rp_store_t *s;            /**< A fresh database (borrowed until close). */
    rp_sched_t *e;            /**< Its scheduler, on the virtual clock asked for. */
    const rp_lua_ext_t *ext;  /**< Lua functions to add under crm.<ns> (plugins'), or NULL. */
    void *state;              /**< The opener's own (the engine), handed back to close. */
} rp_test_world_t;

/**
 * How a test world is made, for every test: @p open makes a fresh in-memory database with a
 * virtual clock starting at @p start_ms and the scripts of @p script_dirs (NULL-ended) loaded,
 * saying what is notable through @p log; @p close undoes it. The CLI opens an engine
 * (rapport/engine.h) here, so a test sees the plugins and scripts every command sees.
 */
typedef struct rp_test_setup {
    int (*open)(void *ud, const char *const *script_dirs, int64_t start_ms, rp_log_fn log,
                void *log_ud, rp_test_world_t *w, rp_error_t *err);
    void (*close)(void *ud, rp_test_world_t *w);
    void *ud;
} rp_test_setup_t;

/**
 * Runs the `*_test.lua` file @p path (or every such file under a folder): each `test(name, fn)`
 * on a fresh in-memory database with a virtual clock and the scripts of @p script_dirs loaded.
 * Prints one line per failure with file:line, expected and actual, to @p out. Adds to *passed
 * and *failed. Returns 0, or a negative code when a file cannot be run at all.
 */
int rp_lua_test_path(const char *path, const char *const *script_dirs,
                     const rp_test_setup_t *setup, FILE *out, int *passed, int *failed,
                     rp_error_t *err);

/* ---- coverage ---------------------------------------------------------------------------- */

/** A fresh coverage count, or NULL when out of memory. Free with rp_lua_cov_free(). */
rp_lua_cov_t *rp_lua_cov_new(void);

/** Frees @p c. NULL is ignored. */
void rp_lua_cov_free(rp_lua_cov_t *c);

/**
 * Reports what @p c counted for every script file that ran (not `*_test.lua` files): per file
 * the lines run of the lines that hold code — the lines of every function in the file, called
 * or not, read from the file's compiled chunk — with the missed lines as ranges, to
 * @p summary; and, unless @p lcov_path is NULL, an lcov tracefile there. A file that cannot
 * be read back and compiled is said in the summary ("not measured: …") and left out. Returns 0,
 * or a negative code with @p err filled (the tracefile cannot be written, or memory ran out).
 */
int rp_lua_cov_report(rp_lua_cov_t *c, FILE *summary, const char *lcov_path, rp_error_t *err);

#endif
