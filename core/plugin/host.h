/*
 * host.h — what the plugin host's two files share (core/plugin/ only): one loaded plugin, one
 * registration whose callback comes back through the host, and the set of loaded plugins.
 */
#ifndef RP_PLUGIN_HOST_H
#define RP_PLUGIN_HOST_H

#include <stdbool.h>

#include "rapport/log.h"
#include "rapport/store.h"
#include "rapport/plugin.h"
#include "rapport_plugin.h"

typedef struct reg reg_t;

/* One loaded (or loading) plugin. */
struct rapport_host {
    rp_plugins_t *P;
    void *dl;
    const rapport_plugin *desc;
    char *file, *dir, *scripts;
    char owner[96];
    char actor[96];
    rp_ctx_t ctx;
    rp_ctx_t outer;             /* the caller's context while api->as_plugin is on */
    bool as_plugin;
    char last_error[512];
    int last_rc;                /* the code of the last host call (a route reads it) */
    bool inited;
    bool given;                 /* named in the options' files: a folder's namesake gives way */
    int order;                  /* position in init order */
    const rp_http_request_t *http; /* the HTTP request a route of it answers, else NULL */
    /* What it registered, for `rapport plugins` and for undoing. */
    json_t *entities, *hooks, *handlers, *jobs, *schedules, *lua, *commands, *routes, *formats;
    json_t *docs; /* api->route_doc: {OpenAPI path: {method: operation}} (docs.c) */
};

/* A registration whose callback comes back through the host. */
struct reg {
    reg_t *next;
    rapport_host *h;
    int kind; /* 0 hook, 1 batch hook, 2 event, 3 job, 4 lua, 5 command, 6 route, 7 format,
              8 public route, 9 record route (its name; the route itself is a kind 6),
              10 files served (name: the prefix; ud: the plugin's table) */
    union {
        rapport_hook_fn hook;
        rapport_event_fn event;
        rapport_job_fn job;
        rapport_lua_fn lua;
        rapport_command_fn command;
        rapport_route_fn route;
    } fn;
    void *ud;
    char name[160];
    char help[160];
    rp_lua_ext_t ext; /* for kind 4 */
    /* For kind 7, a file format: its reader and writer, and its file endings. */
    rapport_import_fn reader;
    rapport_export_fn writer;
    char exts[96];
};

struct rp_plugins {
    rp_store_t *s;
    rp_sched_t *e;
    rp_plugins_opts_t o;
    rapport_host **list;
    int n;
    reg_t *regs;
    const char **script_dirs;
    rp_lua_ext_t *ext_head;
    /* Work the plugins handed off the loop: how much runs, and what waits its turn. */
    int off_running;
    struct offload *off_head, *off_tail;
};

/** The host function table every plugin gets (api.c). */
extern const rapport_api rp__plugin_api;

/**
 * The context a plugin acts with for @p caller: its own, unless the caller acts for a user
 * (`--as`, a user's Lua), whose actor and permissions it then takes on.
 */
rp_ctx_t rp__plugin_as_caller(const rapport_host *h, const rp_ctx_t *caller);

/** A new registration of @p h, linked into its plugin set (api.c). NULL when out of memory. */
reg_t *rp__plugin_reg(rapport_host *h, int kind, void *ud, const char *name);

/** api->public_route, record_route, events, user, offload and header (reach.c). */
int rp__plugin_public_route(rapport_host *h, const char *method, const char *path,
                            rapport_route_fn fn, void *ud);
int rp__plugin_record_route(rapport_host *h, const char *name, rapport_route_fn fn, void *ud);
char *rp__plugin_events(rapport_host *h, const char *entity, int64_t id, const char *query);
char *rp__plugin_user(rapport_host *h, const char *name);
int rp__plugin_offload(rapport_host *h, void (*work)(void *ud),
                       void (*done)(rapport_host *h, const rapport_api *api, void *ud), void *ud);
const char *rp__plugin_header(const rapport_request *req, const char *name);
int rp__plugin_as_plugin(rapport_host *h, int on);
/** api->role_default (roles.c). */
int rp__plugin_role_default(rapport_host *h, const char *role, const char *grants);
/** api->session_start and api->session_end (session.c). */
int rp__plugin_session_start(rapport_host *h, const rapport_request *req, const char *entity,
                             int64_t id, const char *role, char *csrf);
int rp__plugin_session_end(rapport_host *h, const rapport_request *req, const char *entity,
                           int64_t id);
/** api->reply_bytes (reply.c). */
int rp__plugin_reply_bytes(rapport_host *h, const char *content_type, const char *filename,
                           const void *data, size_t len);

/** api->secret_put and api->secret_take (secrets.c). */
int rp__plugin_secret_put(rapport_host *h, const char *name, const char *value, int64_t ttl_ms);
char *rp__plugin_secret_take(rapport_host *h, const char *name, int remove);
/** api->serve_assets (assets.c). */
int rp__plugin_serve_assets(rapport_host *h, const char *prefix, const rapport_asset *files);

/** Registers route @p fn for @p method on @p path as @p kind (6, or 8 public): api.c. */
int rp__plugin_add_route(rapport_host *h, int kind, const char *method, const char *path,
                         rapport_route_fn fn, void *ud);

/** Sets @p h's last error (code and message) and returns @p code: api.c. */
int64_t rp__plugin_fail(rapport_host *h, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** api->route_doc and api->search (docs.c). */
int rp__plugin_route_doc(rapport_host *h, const char *method, const char *path, const char *op);
char *rp__plugin_search(rapport_host *h, const char *text, const char *entity, int limit);

/** api->find and api->find_rows (find.c). */
char *rp__plugin_find(rapport_host *h, const char *entity, const char *query);
int rp__plugin_find_rows(rapport_host *h, const char *entity, const char *query,
                         int (*row)(void *ud, int n, const char *const *values,
                                    const size_t *lens),
                         void *ud, char **next);

/** api->format (formats.c). */
int rp__plugin_format(rapport_host *h, const rapport_format *f, void *ud);

#endif
