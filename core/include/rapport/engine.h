/*
 * engine.h — the engine object: one rp_engine_t holds the store, the scheduler and its clock,
 * the plugins, the scripts and the user a run acts as. Every front door (the CLI, `rapport
 * test`, the benches, the HTTP server) opens it the same way: rp_engine_open(), then
 * rp_engine_serve() to run it on the loop, then rp_engine_close().
 *
 * Settings are read once, when the engine opens, through the one settings reader
 * (rapport/settings.h: $RAPPORT_<KEY>, else the database, else the default). Nothing here
 * prints: failures come back in an rp_error_t, notable things go to the log function.
 */
#ifndef RAPPORT_ENGINE_H
#define RAPPORT_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "rapport/access.h"
#include "rapport/error.h"
#include "rapport/lua.h"
#include "rapport/plugin.h"
#include "rapport/sched.h"
#include "rapport/store.h"

/** An open engine. Owned by whoever opened it: rp_engine_close(). */
typedef struct rp_engine rp_engine_t;

/** What to open. Every pointer is borrowed and must outlive the engine. */
typedef struct rp_engine_opts {
    const char *db;        /**< The database file, or ":memory:"; required. */
    bool create;           /**< Create the database (or bring its schema up to date) when it is
                                not there; otherwise a missing file is an error. */
    bool sync_full;        /**< fsync every commit (synchronous=FULL). */
    bool bare;             /**< Only the store (and the user's access): no scheduler, plugins
                                or scripts, for commands that read or administer. */
    const char *builtin_plugins;     /**< The built-in plugin folder (may be NULL); skipped
                                          when the setting plugins.builtin says no. */
    const char *const *plugin_dirs;  /**< More plugin folders, NULL-ended (may be NULL). */
    const char *const *plugin_files; /**< Plugin files to load too, NULL-ended (may be NULL):
                                          each stands in for a folder plugin of its name. */
    const char *const *script_dirs;  /**< Script folders, NULL-ended (may be NULL); the
                                          plugins' own script folders load after them. */
    bool skip_broken;      /**< Start without a plugin that is refused (and say so). */
    bool broken_scripts_ok; /**< A script that fails to load is only logged (`rapport test`);
                                 otherwise it fails the open, unless skip_broken. */
    bool virtual_clock;    /**< A clock only rp_sched_advance() moves (`rapport test`). */
    int64_t start_ms;      /**< The virtual clock's start (0 = now). */
    const char *user;      /**< Act as this user: their role's scopes and hidden fields apply
                                through rp_engine_access(); NULL = no restriction. A
                                record written ENTITY:ID ("contact:42") acts as a record
                                principal with role @c role (rp_access_of_subject()). */
    const char *role;      /**< The role of a record principal; NULL = "portal". */
    rp_log_fn log;         /**< Where notable things are said (may be NULL). */
    void *log_ud;
    bool dry_run;          /**< Open a transaction right after the store, before the scheduler,
                                plugins and scripts, that rp_engine_close() rolls back: what
                                opening would write is seen inside it, and none of it stays
                                (`rapport schema diff`). */
    bool offline;          /**< No outside effects: plugins refuse to reach a server (mail,
                                SMS, webhooks) because nothing the engine does is kept
                                (`rapport replay`); implied by dry_run. See
                                rp_store_set_offline(). */
    rp_lua_cov_t *coverage; /**< Count the scripts' lines here (`rapport test --coverage`), or
                                 NULL. */
} rp_engine_opts_t;

/**
 * Opens the database of @p o, then (unless bare) the scheduler on its clock, the plugins and
 * the scripts with the limits of the lua.* settings. On failure nothing stays open and @p err
 * says what failed; its field is "user" when o->user cannot be used, "plugins" when a plugin
 * was refused, "scripts" when a script failed to load. *out is owned: rp_engine_close().
 */
int rp_engine_open(const rp_engine_opts_t *o, rp_engine_t **out, rp_error_t *err);

/** Closes the scripts, the plugins, the scheduler and the store, in that order. NULL is ignored. */
void rp_engine_close(rp_engine_t *en);

/** What rp_engine_serve() runs. */
typedef struct rp_engine_serve_opts {
    const char *listen;    /**< "HOST:PORT" of the HTTP API; NULL: the http.listen setting
                                (or $RAPPORT_HTTP_LISTEN); neither: no HTTP. */
    int poll_ms;           /**< How soon work written by other processes is noticed (0 = 100). */
} rp_engine_serve_opts_t;

/**
 * Runs the engine until SIGTERM or SIGINT: due jobs, cron schedules, event dispatch, script
 * reloads (every second, and at SIGHUP), the HTTP API when there is an address to listen on
 * (its limits from the http.* settings), and webhook deliveries on a thread of their own
 * (webhooks.* settings). Returns 0 after a graceful stop; RP_EINVAL with the field "listen"
 * for an address that cannot be served; RP_ESTATE for a bare engine.
 */
int rp_engine_serve(rp_engine_t *en, const rp_engine_serve_opts_t *o, rp_error_t *err);

/** The store (borrowed: valid until rp_engine_close()). */
rp_store_t *rp_engine_store(const rp_engine_t *en);

/** The scheduler, or NULL for a bare engine (borrowed). */
rp_sched_t *rp_engine_sched(const rp_engine_t *en);

/** The plugins, or NULL for a bare engine (borrowed). */
rp_plugins_t *rp_engine_plugins(const rp_engine_t *en);

/** The scripts, or NULL for a bare engine (borrowed). */
rp_scripts_t *rp_engine_scripts(const rp_engine_t *en);

/** For a dry_run engine, the last event's seq before anything was opened on the store: the
 *  events after it are what opening did. 0 otherwise. */
int64_t rp_engine_dry_since(const rp_engine_t *en);

/** The access of the user the engine acts as, or NULL for no restriction (borrowed). */
rp_access_t *rp_engine_access(const rp_engine_t *en);

/**
 * The options a Lua state of this engine starts from: the script limits of the lua.*
 * settings and the plugins' Lua functions (ext); the caller sets name, sandbox and actor.
 */
rp_lua_opts_t rp_engine_lua_opts(const rp_engine_t *en);

#endif
