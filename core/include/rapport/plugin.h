/*
 * plugin.h — the plugin host: finds shared objects in the plugin folders, checks their ABI,
 * names and dependencies, runs init in dependency order (and fini in reverse), hands them the
 * host table of sdk/include/rapport_plugin.h, and undoes whatever a failing init registered.
 */
#ifndef RAPPORT_PLUGIN_HOST_H
#define RAPPORT_PLUGIN_HOST_H

#include "rapport/http.h"
#include "rapport/lua.h"
#include "rapport/sched.h"

/** The loaded plugins of one engine. */
typedef struct rp_plugins rp_plugins_t;

/** Options for rp_plugins_load(). */
typedef struct rp_plugins_opts {
    const char *const *dirs; /**< Folders to search, NULL-terminated (borrowed). */
    /** Plugin files to load besides the folders' ones, NULL-terminated (borrowed), or NULL
     *  (`rapport plugin check`): a plugin of the same name found in a folder is left out, the
     *  file standing in for it. */
    const char *const *files;
    bool skip_broken;        /**< Start without a broken plugin (and say so) instead of failing. */
    rp_log_fn log;           /**< Where skipped plugins and plugin logs are said (NULL: the
                                  sink of rapport/log.h). */
    void *log_ud;
} rp_plugins_opts_t;

/**
 * Loads every plugin found in the folders: a `*.so` in a folder, or `<name>/<name>.so` in a
 * sub-folder (whose `scripts/` then ship with it). Each refusal names the plugin, its file and
 * the reason. Without skip_broken the first refusal fails the whole load (RP_EINVAL) and
 * nothing stays loaded. *out is owned: rp_plugins_unload(). @p e may be NULL (no jobs, handlers).
 */
int rp_plugins_load(rp_store_t *s, rp_sched_t *e, const rp_plugins_opts_t *opts,
                    rp_plugins_t **out, rp_error_t *err);

/** Runs fini in reverse order, removes every registration and unloads. NULL is ignored. */
void rp_plugins_unload(rp_plugins_t *p);

/** How many plugins are loaded. */
int rp_plugins_count(const rp_plugins_t *p);

/**
 * What `rapport plugins` shows: an array (owned) of {"name","version","abi","file",
 * "description","requires","entities","hooks","handlers","jobs","schedules","lua","commands",
 * "routes","formats"}.
 */
json_t *rp_plugins_describe(const rp_plugins_t *p);

/** The Lua functions the plugins added (for rp_lua_opts_t.ext). Borrowed; may be NULL. */
const rp_lua_ext_t *rp_plugins_lua(const rp_plugins_t *p);

/** The `scripts/` folders the plugins ship (NULL-terminated, borrowed). */
const char *const *rp_plugins_script_dirs(const rp_plugins_t *p);

/**
 * Runs `rapport <plugin> ARGS…`: argv[0] is the plugin's name. Returns the command's exit
 * status, or -1 with @p err filled when the plugin or its command does not exist.
 */
int rp_plugins_command(rp_plugins_t *p, int argc, char **argv, rp_error_t *err);

/** As rp_plugins_command(), for @p caller: when it carries a user's access (`--as`), the
 *  command acts as that user, with that user's permissions. */
int rp_plugins_command_as(rp_plugins_t *p, const rp_ctx_t *caller, int argc, char **argv,
                          rp_error_t *err);

/**
 * Hands the files the plugins registered with api->serve_assets to @p http, each bundle under
 * its prefix; one that cannot be served (its prefix is taken) is said on @p log and left out.
 * Returns how many bundles are served.
 */
int rp_plugins_serve_assets(rp_plugins_t *p, rp_http_t *http, rp_log_fn log, void *log_ud);

/**
 * Serves a plugin's HTTP route (an rp_http_route_fn; @p ud is the rp_plugins_t): the route of
 * plugin @p name whose method fits and whose path is the longest prefix of req->sub, run with
 * the host acting as the caller (req->ctx). RP_ENOTFOUND (no message) when none fits.
 */
int rp_plugins_route(void *ud, const char *name, const rp_http_request_t *req, int *status,
                     char **body, rp_error_t *err);

/**
 * Adds the routes of the plugins to @p paths, the "paths" object of an OpenAPI document (an
 * rp_http_docs_fn; @p ud is the rp_plugins_t): each as its plugin documented it
 * (api->route_doc), else with a summary saying it is not documented; public routes need no
 * security.
 */
void rp_plugins_openapi(void *ud, json_t *paths);

/* ---- import and export formats the plugins registered ---------------------------------- */

/**
 * The name of the format plugins registered as @p name, or, when @p name is NULL, the one whose
 * file endings match @p path ("cards.VCF" -> "vcf"); with @p for_import, only formats that
 * read, else only those that write. Borrowed (valid until rp_plugins_unload), or NULL.
 */
const char *rp_plugins_format(const rp_plugins_t *p, const char *name, const char *path,
                              bool for_import);

/**
 * Writes the names of the formats that read (@p for_import) or write into @p buf as a list
 * to append to the engine's own: ", vcf and ics" (or "" when there are none).
 */
void rp_plugins_format_names(const rp_plugins_t *p, bool for_import, char *buf, size_t cap);

/** Takes one record an import format read (owned by the caller); non-zero stops the read. */
typedef int (*rp_format_sink_fn)(void *ud, json_t *record, long line);

/**
 * Reads the @p len bytes of @p text (NUL-ended) with format @p format for an import into
 * @p entity, handing each record to @p sink. RP_EINVAL with the format's message ("line 1: …").
 */
int rp_plugins_import(rp_plugins_t *p, const char *format, const char *entity,
                      const char *text, size_t len, rp_format_sink_fn sink, void *ud,
                      rp_error_t *err);

/** One export through a plugin's format, between rp_plugins_export_begin() and _end(). */
typedef struct rp_export rp_export_t;

/**
 * Starts exporting @p entity (whose visible @p fields are given, borrowed) with @p format:
 * *head gets the text to write first (owned, free(); may be NULL). @p filtered says the caller
 * chose the records. RP_EINVAL when the format refuses the entity; then *x is NULL.
 */
int rp_plugins_export_begin(rp_plugins_t *p, const char *format, const char *entity,
                            json_t *fields, bool filtered, rp_export_t **x, char **head,
                            rp_error_t *err);

/** The text of @p record (owned, free()), or *text NULL when the format leaves it out. */
int rp_plugins_export_record(rp_export_t *x, json_t *record, char **text, rp_error_t *err);

/**
 * Ends the export and frees @p x: *tail gets the text to write last (owned, free(); NULL when
 * @p failed, the export having stopped early).
 */
int rp_plugins_export_end(rp_export_t *x, bool failed, char **tail, rp_error_t *err);

#endif
