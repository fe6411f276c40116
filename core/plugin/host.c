/*
 * host.c — the plugin host: discovery, ABI and dependency checks, init in dependency order
 * inside a transaction (so a failing init leaves no entity, hook or handler behind), the host
 * function table, and the trampolines from the core's callbacks to the plugins' JSON-text ABI.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rapport/log.h"
#include "rapport/store.h"
#include "rapport/plugin.h"
#include "rapport/text.h"
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
    char last_error[512];
    int last_rc;                /* the code of the last host call (a route reads it) */
    bool inited;
    int order;                  /* position in init order */
    /* What it registered, for `rapport plugins` and for undoing. */
    json_t *entities, *hooks, *handlers, *jobs, *schedules, *lua, *commands, *routes;
};

/* A registration whose callback comes back through the host. */
struct reg {
    reg_t *next;
    rapport_host *h;
    int kind; /* 0 hook, 1 batch hook, 2 event, 3 job, 4 lua, 5 command, 6 route */
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
};

static const rapport_api api_table;

static int64_t fail_host(rapport_host *h, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int64_t fail_host(rapport_host *h, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->last_error, sizeof h->last_error, fmt, ap);
    va_end(ap);
    return code;
}

static int from_err(rapport_host *h, int rc, const rp_error_t *err)
{
    h->last_rc = rc;
    if (rc)
        snprintf(h->last_error, sizeof h->last_error, "%s", err->msg);
    else
        h->last_error[0] = '\0';
    return rc;
}

static json_t *parse(rapport_host *h, const char *text, const char *what)
{
    if (!text) {
        fail_host(h, RAPPORT_EINVAL, "%s is missing", what);
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
    if (!j)
        fail_host(h, RAPPORT_EINVAL, "%s is not valid JSON: line %d, column %d: %s", what,
                  je.line, je.column, je.text);
    return j;
}

static char *dump(json_t *j)
{
    char *d = j ? json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    json_decref(j);
    return d;
}

/* ---- the host table: basics and records ------------------------------------------------- */

static const char *h_last_error(rapport_host *h)
{
    return h->last_error;
}

static void h_free(void *p)
{
    free(p);
}

static char *h_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void h_log(rapport_host *h, int level, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *lv = level == RAPPORT_LOG_ERROR ? "error" : level == RAPPORT_LOG_WARN ? "warn"
                                                                                        : "info";
    char comp[96];
    snprintf(comp, sizeof comp, "plugin:%s", h->desc->name);
    rp_log_to(h->P->o.log, h->P->o.log_ud, lv, comp, "%s", msg);
}

static int64_t h_now(rapport_host *h)
{
    return rp_store_now(h->P->s);
}

static char *h_config(rapport_host *h, const char *key)
{
    char full[256];
    snprintf(full, sizeof full, "plugin.%s.%s", h->desc->name, key ? key : "");
    json_t *v = NULL;
    rp_error_t err = {0};
    if (rp_config_get(h->P->s, full, &v, &err))
        return NULL;
    return dump(v);
}

static const char *h_dir(rapport_host *h)
{
    return h->dir;
}

static int h_define(rapport_host *h, const char *entity, const char *spec)
{
    json_t *j = parse(h, spec, "the entity specification");
    if (!j)
        return RAPPORT_EINVAL;
    rp_error_t err = {0};
    int rc = rp_store_define(h->P->s, &h->ctx, entity, j, h->owner, &err);
    json_decref(j);
    if (!rc)
        json_array_append_new(h->entities, json_string(entity));
    return from_err(h, rc, &err);
}

static int h_add_field(rapport_host *h, const char *entity, const char *field, const char *spec)
{
    json_t *j = parse(h, spec, "the field specification");
    if (!j)
        return RAPPORT_EINVAL;
    rp_error_t err = {0};
    int rc = rp_store_add_field(h->P->s, &h->ctx, entity, field, j, h->owner, &err);
    json_decref(j);
    return from_err(h, rc, &err);
}

static int h_has_entity(rapport_host *h, const char *entity)
{
    return entity && rp_store_has_entity(h->P->s, entity);
}

static int h_create(rapport_host *h, const char *entity, const char *fields, int64_t *id)
{
    json_t *j = parse(h, fields, "the fields");
    if (!j)
        return RAPPORT_EINVAL;
    rp_error_t err = {0};
    int rc = rp_store_create(h->P->s, &h->ctx, entity, j, id, &err);
    json_decref(j);
    return from_err(h, rc, &err);
}

static char *h_get(rapport_host *h, const char *entity, int64_t id)
{
    json_t *r = NULL;
    rp_error_t err = {0};
    /* In a route, as the calling user: their scope, without the fields hidden from them. */
    from_err(h, rp_store_get_as(h->P->s, &h->ctx, entity, id, &r, &err), &err);
    return dump(r);
}

static int h_update(rapport_host *h, const char *entity, int64_t id, const char *patch,
                    int64_t version)
{
    json_t *j = parse(h, patch, "the changes");
    if (!j)
        return RAPPORT_EINVAL;
    rp_error_t err = {0};
    int rc = rp_store_update(h->P->s, &h->ctx, entity, id, j, version, NULL, &err);
    json_decref(j);
    return from_err(h, rc, &err);
}

static int h_remove(rapport_host *h, const char *entity, int64_t id)
{
    rp_error_t err = {0};
    return from_err(h, rp_store_delete(h->P->s, &h->ctx, entity, id, &err), &err);
}

static char *h_find(rapport_host *h, const char *entity, const char *query)
{
    json_t *q = query ? parse(h, query, "the query") : json_object();
    if (!q)
        return NULL;
    const char *fields[65] = {0};
    json_t *jf = json_object_get(q, "fields");
    for (size_t i = 0; json_is_array(jf) && i < json_array_size(jf) && i < 64; i++)
        fields[i] = json_string_value(json_array_get(jf, i));
    rp_query_t rq = {.entity = entity,
                     .where = json_object_get(q, "where"),
                     .order = json_string_value(json_object_get(q, "order")),
                     .limit = json_integer_value(json_object_get(q, "limit")),
                     .offset = json_integer_value(json_object_get(q, "offset")),
                     .after = json_string_value(json_object_get(q, "after")),
                     .fields = json_is_array(jf) ? fields : NULL,
                     .with_deleted = json_is_true(json_object_get(q, "deleted")),
                     .access = h->ctx.access};
    json_t *rows = NULL;
    char *next = NULL;
    rp_error_t err = {0};
    int rc = rp_store_find(h->P->s, &rq, &rows, &next, &err);
    json_decref(q);
    if (from_err(h, rc, &err))
        return NULL;
    json_t *out = json_pack("{s:o,s:s?}", "data", rows, "next", next);
    free(next);
    return dump(out);
}

static int h_count(rapport_host *h, const char *entity, const char *where, int64_t *n)
{
    json_t *w = where ? parse(h, where, "the filter") : NULL;
    if (where && !w)
        return RAPPORT_EINVAL;
    rp_error_t err = {0};
    int rc = rp_store_count_as(h->P->s, h->ctx.access, entity, w, false, n, &err);
    json_decref(w);
    return from_err(h, rc, &err);
}

static int h_emit(rapport_host *h, const char *type, const char *entity, int64_t id,
                  const char *payload)
{
    json_t *p = payload ? parse(h, payload, "the payload") : NULL;
    if (payload && !p)
        return RAPPORT_EINVAL;
    rp_error_t err = {0};
    int rc = rp_events_emit(h->P->s, &h->ctx, type, entity, id, p, NULL, &err);
    json_decref(p);
    return from_err(h, rc, &err);
}

/* ---- registrations and their trampolines -------------------------------------------------- */

static reg_t *new_reg(rapport_host *h, int kind, void *ud, const char *name)
{
    reg_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->h = h;
    r->kind = kind;
    r->ud = ud;
    snprintf(r->name, sizeof r->name, "%s", name ? name : "");
    r->next = h->P->regs;
    h->P->regs = r;
    return r;
}

/* A before-hook's view of one write or a batch. */
struct rapport_change {
    const char *entity;
    rp_action_t action;
    json_t *batch;        /* array of field objects (create/update), or NULL */
    const int64_t *ids;
    json_t **olds;
    json_t *single_old;
    int64_t single_id;
    int count;
    int failed; /* the record a batch hook refused (change_refuse) */
};

static const char *c_entity(rapport_change *c)
{
    return c->entity;
}
static int c_action(rapport_change *c)
{
    return (int)c->action;
}
static int64_t c_id(rapport_change *c)
{
    return c->ids ? c->ids[0] : c->single_id;
}
static int c_count(rapport_change *c)
{
    return c->count;
}

static char *c_get(rapport_change *c, int i, const char *field)
{
    if (i < 0 || i >= c->count || !field)
        return NULL;
    json_t *f = c->batch ? json_array_get(c->batch, (size_t)i) : NULL;
    json_t *v = f ? json_object_get(f, field) : NULL;
    if (!v) {
        json_t *old = c->olds ? c->olds[i] : c->single_old;
        v = old ? json_object_get(old, field) : NULL;
    }
    return v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
}

static int c_set(rapport_change *c, int i, const char *field, const char *text)
{
    json_t *f = c->batch ? json_array_get(c->batch, (size_t)i) : NULL;
    if (!f || !field)
        return RAPPORT_EINVAL;
    if (!text)
        return json_object_del(f, field) == 0 ? 0 : RAPPORT_ENOTFOUND;
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    if (!v)
        return RAPPORT_EINVAL;
    return json_object_set_new(f, field, v) == 0 ? 0 : RAPPORT_ENOMEM;
}

/* Runs a plugin callback with the writer's context, so its writes join the cause chain. */
#define WITH_CTX(h, c, call)                                                                  \
    do {                                                                                      \
        rp_ctx_t saved__ = (h)->ctx;                                                          \
        if (c)                                                                                \
            (h)->ctx = *(c);                                                                  \
        call;                                                                                 \
        (h)->ctx = saved__;                                                                   \
    } while (0)

static int veto_from(rapport_host *h, int rc, const char *msg, rp_error_t *err)
{
    return rp_error_set(err, rc < 0 && rc != RAPPORT_EINVAL ? rc : RP_EVETO, RP_C_VETO,
                        "%s (plugin %s)", msg[0] ? msg : "refused the change", h->desc->name);
}

static int hook_tramp(rp_store_t *s, rp_change_t *ch, void *ud, rp_error_t *err)
{
    reg_t *r = ud;
    json_t *batch = NULL;
    if (ch->fields) {
        batch = json_array();
        json_array_append(batch, ch->fields);
    }
    rapport_change c = {.entity = ch->entity, .action = ch->action, .batch = batch,
                        .single_old = ch->old, .single_id = ch->id, .count = 1};
    char msg[512] = "";
    int rc = 0;
    WITH_CTX(r->h, ch->ctx, rc = r->fn.hook(r->h, &api_table, &c, r->ud, msg, sizeof msg));
    json_decref(batch);
    return rc ? veto_from(r->h, rc, msg, err) : 0;
}

static int batch_tramp(rp_store_t *s, const char *entity, rp_action_t action, json_t *batch,
                       const int64_t *ids, const rp_ctx_t *ctx, void *ud, size_t *failed,
                       rp_error_t *err)
{
    reg_t *r = ud;
    rapport_change c = {.entity = entity, .action = action, .batch = batch, .ids = ids,
                        .count = (int)json_array_size(batch)};
    char msg[512] = "";
    int rc = 0;
    WITH_CTX(r->h, ctx, rc = r->fn.hook(r->h, &api_table, &c, r->ud, msg, sizeof msg));
    *failed = (size_t)c.failed;
    return rc ? veto_from(r->h, rc, msg, err) : 0;
}

static int event_tramp(rp_store_t *s, const rp_event_t *ev, const rp_ctx_t *ctx, void *ud,
                       rp_error_t *err)
{
    reg_t *r = ud;
    rapport_event pe = {.seq = ev->seq, .type = ev->type, .entity = ev->entity,
                        .record_id = ev->record_id, .actor = ev->actor, .at = ev->at,
                        .changes = ev->changes, .depth = ev->depth};
    char msg[512] = "";
    int rc = 0;
    WITH_CTX(r->h, ctx, rc = r->fn.event(r->h, &api_table, &pe, r->ud, msg, sizeof msg));
    if (rc)
        return rp_error_set(err, RP_EINVAL, 0, "%s (plugin %s)", msg[0] ? msg : "failed",
                            r->h->desc->name);
    return 0;
}

static int job_tramp(rp_store_t *s, const rp_job_t *job, const rp_ctx_t *ctx, void *ud,
                     rp_error_t *err)
{
    reg_t *r = ud;
    rapport_job pj = {.id = job->id, .name = job->name, .key = job->key, .payload = job->payload,
                      .attempts = job->attempts};
    char msg[512] = "";
    int rc = 0;
    WITH_CTX(r->h, ctx, rc = r->fn.job(r->h, &api_table, &pj, r->ud, msg, sizeof msg));
    if (rc)
        return rp_error_set(err, RP_EINVAL, 0, "%s (plugin %s)", msg[0] ? msg : "failed",
                            r->h->desc->name);
    return 0;
}

/* The context a plugin acts with for @p caller: its own, unless the caller acts for a user
 * (`--as`, a user's Lua), whose actor and permissions it then takes on. */
static rp_ctx_t as_caller(const rapport_host *h, const rp_ctx_t *caller)
{
    rp_ctx_t c = h->ctx;
    if (caller && caller->access) {
        c.actor = caller->actor;
        c.access = caller->access;
    }
    return c;
}

static int lua_tramp(void *ud, const rp_ctx_t *caller, const char *args, char **result,
                     char *err, size_t errlen)
{
    reg_t *r = ud;
    rp_ctx_t saved = r->h->ctx;
    r->h->ctx = as_caller(r->h, caller);
    int rc = r->fn.lua(r->h, &api_table, args, result, r->ud, err, errlen);
    r->h->ctx = saved;
    return rc;
}

static int action_ok(rapport_host *h, int action)
{
    if (action < RAPPORT_CREATE || action > RAPPORT_PURGE)
        return (int)fail_host(h, RAPPORT_EINVAL, "unknown action %d", action);
    return 0;
}

static int h_hook(rapport_host *h, const char *entity, int action, int priority,
                  rapport_hook_fn fn, void *ud)
{
    if (action_ok(h, action) || !fn)
        return fn ? RAPPORT_EINVAL : (int)fail_host(h, RAPPORT_EINVAL, "a hook needs a function");
    reg_t *r = new_reg(h, 0, ud, entity);
    if (!r)
        return (int)fail_host(h, RAPPORT_ENOMEM, "out of memory");
    r->fn.hook = fn;
    rp_error_t err = {0};
    int id = rp_hook_add(h->P->s, entity, (rp_action_t)action, priority, hook_tramp, r, h->owner,
                         &err);
    if (id < 0)
        return from_err(h, id, &err);
    static const char *const acts[] = {"create", "update", "delete", "restore", "purge"};
    json_array_append_new(h->hooks, json_sprintf("%s.%s", entity, acts[action]));
    return 0;
}

static int h_batch_hook(rapport_host *h, const char *entity, int action, int priority,
                        rapport_hook_fn fn, void *ud)
{
    if (action_ok(h, action) || !fn)
        return fn ? RAPPORT_EINVAL : (int)fail_host(h, RAPPORT_EINVAL, "a hook needs a function");
    reg_t *r = new_reg(h, 1, ud, entity);
    if (!r)
        return (int)fail_host(h, RAPPORT_ENOMEM, "out of memory");
    r->fn.hook = fn;
    rp_error_t err = {0};
    int id = rp_hook_add_batch(h->P->s, entity, (rp_action_t)action, priority, batch_tramp, r,
                               h->owner, &err);
    if (id < 0)
        return from_err(h, id, &err);
    json_array_append_new(h->hooks, json_sprintf("%s.%s (batch)", entity,
                                                 action == RAPPORT_CREATE ? "create" : "update"));
    return 0;
}

static int need_engine(rapport_host *h)
{
    return h->P->e ? 0 : (int)fail_host(h, RAPPORT_EINVAL, "this engine runs no scheduler");
}

static int h_on(rapport_host *h, const char *name, const char *types, rapport_event_fn fn,
                void *ud)
{
    if (need_engine(h) || !fn)
        return RAPPORT_EINVAL;
    char full[160];
    snprintf(full, sizeof full, "%s.%s", h->desc->name, name ? name : "");
    reg_t *r = new_reg(h, 2, ud, full);
    if (!r)
        return (int)fail_host(h, RAPPORT_ENOMEM, "out of memory");
    r->fn.event = fn;
    rp_error_t err = {0};
    int rc = rp_sched_subscribe(h->P->e, full, types, true, event_tramp, r, h->owner, &err);
    if (!rc)
        json_array_append_new(h->handlers, json_sprintf("%s (%s)", full, types ? types : "*"));
    return from_err(h, rc, &err);
}

static int h_job(rapport_host *h, const char *name, rapport_job_fn fn, void *ud)
{
    if (need_engine(h) || !fn)
        return RAPPORT_EINVAL;
    reg_t *r = new_reg(h, 3, ud, name);
    if (!r)
        return (int)fail_host(h, RAPPORT_ENOMEM, "out of memory");
    r->fn.job = fn;
    rp_error_t err = {0};
    int rc = rp_sched_handler(h->P->e, name, job_tramp, r, h->owner, &err);
    if (!rc)
        json_array_append_new(h->jobs, json_string(name));
    return from_err(h, rc, &err);
}

static int h_schedule(rapport_host *h, const char *name, const char *payload, int64_t delay_ms,
                      const char *key)
{
    json_t *p = payload ? parse(h, payload, "the payload") : NULL;
    if (payload && !p)
        return RAPPORT_EINVAL;
    rp_error_t err = {0};
    int rc = rp_jobs_schedule(h->P->s, &h->ctx, name, p, rp_store_now(h->P->s) + delay_ms, key,
                              NULL, &err);
    json_decref(p);
    return from_err(h, rc, &err);
}

static int h_cancel(rapport_host *h, const char *key)
{
    rp_error_t err = {0};
    return from_err(h, rp_jobs_cancel(h->P->s, key, &err), &err);
}

static int h_every(rapport_host *h, const char *schedule, const char *cron, const char *tz,
                   const char *job, const char *payload)
{
    if (need_engine(h))
        return RAPPORT_EINVAL;
    json_t *p = payload ? parse(h, payload, "the payload") : NULL;
    if (payload && !p)
        return RAPPORT_EINVAL;
    json_t *zone = NULL;
    if (!tz && rp_config_get(h->P->s, "timezone", &zone, NULL) == 0)
        tz = json_string_value(zone);
    rp_error_t err = {0};
    int rc = rp_sched_every(h->P->e, schedule, cron, tz, job, p, &err);
    json_decref(p);
    if (!rc)
        json_array_append_new(h->schedules, json_sprintf("%s (%s) -> %s", schedule, cron, job));
    json_decref(zone);
    return from_err(h, rc, &err);
}

static int h_lua_function(rapport_host *h, const char *name, rapport_lua_fn fn, void *ud)
{
    if (!fn || !name || !*name)
        return (int)fail_host(h, RAPPORT_EINVAL, "a Lua function needs a name and a function");
    reg_t *r = new_reg(h, 4, ud, name);
    if (!r)
        return (int)fail_host(h, RAPPORT_ENOMEM, "out of memory");
    r->fn.lua = fn;
    r->ext = (rp_lua_ext_t){.ns = h->desc->name, .name = r->name, .fn = lua_tramp, .ud = r,
                            .next = h->P->ext_head};
    h->P->ext_head = &r->ext;
    char full[160];
    snprintf(full, sizeof full, "crm.%s.%s", h->desc->name, name);
    json_array_append_new(h->lua, json_string(full));
    return 0;
}

static int h_command(rapport_host *h, const char *name, const char *help, rapport_command_fn fn,
                     void *ud)
{
    if (!fn || !name || !*name)
        return (int)fail_host(h, RAPPORT_EINVAL, "a command needs a name and a function");
    reg_t *r = new_reg(h, 5, ud, name);
    if (!r)
        return (int)fail_host(h, RAPPORT_ENOMEM, "out of memory");
    r->fn.command = fn;
    snprintf(r->help, sizeof r->help, "%s", help ? help : "");
    json_array_append_new(h->commands, json_sprintf("%s %s", h->desc->name, name));
    return 0;
}

static int h_route(rapport_host *h, const char *method, const char *path, rapport_route_fn fn,
                   void *ud)
{
    if (!fn || !method || !*method || !path || strlen(method) > 15)
        return (int)fail_host(h, RAPPORT_EINVAL, "a route needs a method, a path and a function");
    while (*path == '/')
        path++;
    for (const char *p = path; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' ||
              (*p == '/' && p[1] && p[1] != '/')))
            return (int)fail_host(h, RAPPORT_EINVAL, "route path \"%s\": lower-case words "
                                  "(a-z, 0-9, _ and -) joined by /", path);
    reg_t *r = new_reg(h, 6, ud, path);
    if (!r)
        return (int)fail_host(h, RAPPORT_ENOMEM, "out of memory");
    r->fn.route = fn;
    snprintf(r->help, sizeof r->help, "%s", method);
    json_array_append_new(h->routes, json_sprintf("%s /api/v1/plugins/%s%s%s", method,
                                                  h->desc->name, *path ? "/" : "", path));
    return 0;
}

static int h_begin(rapport_host *h)
{
    rp_error_t err = {0};
    return from_err(h, rp_store_begin(h->P->s, &err), &err);
}

static int h_commit(rapport_host *h)
{
    rp_error_t err = {0};
    return from_err(h, rp_store_commit(h->P->s, &err), &err);
}

static int h_rollback(rapport_host *h)
{
    rp_error_t err = {0};
    return from_err(h, rp_store_rollback(h->P->s, &err), &err);
}

static void c_refuse(rapport_change *c, int i)
{
    if (i >= 0 && i < c->count)
        c->failed = i;
}

static char *h_schema(rapport_host *h, const char *entity)
{
    rp_error_t err = {0};
    json_t *j = rp_store_schema(h->P->s, entity, &err);
    from_err(h, j ? 0 : (err.code ? err.code : RP_ENOTFOUND), &err);
    return dump(j);
}

static char *h_fold(rapport_host *h, const char *text)
{
    (void)h;
    return text ? rp_text_fold(text, strlen(text), NULL) : NULL;
}

static const rapport_api api_table = {
    .size = sizeof(rapport_api),
    .abi = RAPPORT_PLUGIN_ABI,
    .host_version = RP_VERSION,
    .last_error = h_last_error,
    .free = h_free,
    .strdup = h_strdup,
    .log = h_log,
    .now_ms = h_now,
    .config = h_config,
    .dir = h_dir,
    .define_entity = h_define,
    .add_field = h_add_field,
    .has_entity = h_has_entity,
    .create = h_create,
    .get = h_get,
    .update = h_update,
    .remove = h_remove,
    .find = h_find,
    .count = h_count,
    .emit = h_emit,
    .hook = h_hook,
    .batch_hook = h_batch_hook,
    .on = h_on,
    .job = h_job,
    .schedule = h_schedule,
    .cancel = h_cancel,
    .every = h_every,
    .lua_function = h_lua_function,
    .command = h_command,
    .change_entity = c_entity,
    .change_action = c_action,
    .change_id = c_id,
    .change_count = c_count,
    .change_get = c_get,
    .change_set = c_set,
    .begin = h_begin,
    .commit = h_commit,
    .rollback = h_rollback,
    .schema = h_schema,
    .fold = h_fold,
    .change_refuse = c_refuse,
    .route = h_route,
};

/* ---- loading ----------------------------------------------------------------------------- */

static void host_free(rapport_host *h)
{
    if (!h)
        return;
    if (h->dl)
        dlclose(h->dl);
    free(h->file);
    free(h->dir);
    free(h->scripts);
    json_decref(h->entities);
    json_decref(h->hooks);
    json_decref(h->handlers);
    json_decref(h->jobs);
    json_decref(h->schedules);
    json_decref(h->lua);
    json_decref(h->commands);
    json_decref(h->routes);
    free(h);
}

/* Removes every registration of @p h (after a failed init, or at unload). */
static void unregister(rp_plugins_t *P, rapport_host *h)
{
    rp_hooks_remove_owner(P->s, h->owner);
    if (P->e)
        rp_sched_unregister_owner(P->e, h->owner);
    rp_lua_ext_t **link = &P->ext_head;
    for (reg_t **rp = &P->regs; *rp;) {
        reg_t *r = *rp;
        if (r->h != h) {
            rp = &r->next;
            continue;
        }
        *rp = r->next;
        free(r);
    }
    /* Rebuild the Lua list from what is left. */
    *link = NULL;
    for (reg_t *r = P->regs; r; r = r->next) {
        if (r->kind == 4) {
            r->ext.next = P->ext_head;
            P->ext_head = &r->ext;
        }
    }
}

static int semver_cmp(const char *a, const char *b)
{
    for (int i = 0; i < 3; i++) {
        long x = a ? strtol(a, (char **)&a, 10) : 0, y = b ? strtol(b, (char **)&b, 10) : 0;
        if (x != y)
            return x < y ? -1 : 1;
        if (a && *a == '.')
            a++;
        if (b && *b == '.')
            b++;
    }
    return 0;
}

static bool semver_ok(const char *v)
{
    int parts = 0;
    const char *p = v;
    if (!p)
        return false;
    while (*p) {
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
        parts++;
        if (*p == '.')
            p++;
        else if (*p == '-' || *p == '+')
            break; /* pre-release or build metadata */
        else if (*p)
            return false;
    }
    return parts == 3;
}

/* Opens one file and checks its descriptor; NULL with @p err filled when it is refused. */
static rapport_host *open_one(rp_plugins_t *P, const char *file, rp_error_t *err)
{
    rapport_host *h = calloc(1, sizeof *h);
    if (!h) {
        rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        return NULL;
    }
    h->P = P;
    h->file = strdup(file);
    h->dl = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    if (!h->dl) {
        rp_error_set(err, RP_EINVAL, RP_C_PLUGIN, "plugin file %s is not a loadable shared object: %s",
                     file, dlerror());
        goto fail;
    }
    rapport_entry_fn entry = (rapport_entry_fn)dlsym(h->dl, RAPPORT_PLUGIN_ENTRY_NAME);
    if (!entry) {
        rp_error_set(err, RP_EINVAL, RP_C_PLUGIN,
                     "plugin file %s has no entry function %s (export it with RAPPORT_EXPORT)",
                     file, RAPPORT_PLUGIN_ENTRY_NAME);
        goto fail;
    }
    h->desc = entry();
    if (!h->desc) {
        rp_error_set(err, RP_EINVAL, RP_C_PLUGIN, "plugin file %s: its entry function returned "
                     "no descriptor", file);
        goto fail;
    }
    const char *name = h->desc->name ? h->desc->name : "(unnamed)";
    if (h->desc->abi != RAPPORT_PLUGIN_ABI) {
        rp_error_set(err, RP_EINVAL, RP_C_PLUGIN,
                     "plugin %s (%s) was built for plugin ABI %u; this engine speaks ABI %d: "
                     "rebuild it against this engine's rapport_plugin.h",
                     name, file, h->desc->abi, RAPPORT_PLUGIN_ABI);
        goto fail;
    }
    if (!rp_store_name_ok(name) || !semver_ok(h->desc->version) || !h->desc->init) {
        rp_error_set(err, RP_EINVAL, RP_C_PLUGIN,
                     "plugin %s (%s) has a bad descriptor: it needs a lower-case name, a version "
                     "MAJOR.MINOR.PATCH (got %s) and an init function",
                     name, file, h->desc->version ? h->desc->version : "none");
        goto fail;
    }
    snprintf(h->owner, sizeof h->owner, "plugin:%s", name);
    snprintf(h->actor, sizeof h->actor, "plugin:%s", name);
    h->ctx = (rp_ctx_t){.actor = h->actor, .origin = name};
    char dir[4096];
    const char *slash = strrchr(file, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - file) : 1, slash ? file : ".");
    h->dir = strdup(dir);
    char scripts[4200];
    snprintf(scripts, sizeof scripts, "%s/scripts", dir);
    struct stat st;
    if (stat(scripts, &st) == 0 && S_ISDIR(st.st_mode))
        h->scripts = strdup(scripts);
    h->entities = json_array();
    h->hooks = json_array();
    h->handlers = json_array();
    h->jobs = json_array();
    h->schedules = json_array();
    h->lua = json_array();
    h->commands = json_array();
    h->routes = json_array();
    return h;
fail:
    host_free(h);
    return NULL;
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n > m && strcmp(s + n - m, suf) == 0;
}

/* Collects the plugin files of a folder: *.so, and <sub>/<sub>.so. */
static int find_files(const char *dir, char ***files, int *n)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            snprintf(path, sizeof path, "%s/%s/%s.so", dir, de->d_name, de->d_name);
            if (stat(path, &st) != 0)
                continue;
        } else if (!has_suffix(de->d_name, ".so")) {
            continue;
        }
        char **grown = realloc(*files, sizeof **files * (size_t)(*n + 1));
        if (!grown)
            break;
        *files = grown;
        (*files)[(*n)++] = strdup(path);
    }
    closedir(d);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static rapport_host *by_name(rp_plugins_t *P, const char *name)
{
    for (int i = 0; i < P->n; i++)
        if (P->list[i] && strcmp(P->list[i]->desc->name, name) == 0)
            return P->list[i];
    return NULL;
}

/* Refuses or skips a plugin: with skip_broken it is dropped and said; else the load fails. */
static int refuse(rp_plugins_t *P, int i, rp_error_t *why, rp_error_t *err)
{
    if (!P->o.skip_broken) {
        *err = *why;
        return RP_EINVAL;
    }
    if (P->o.log) {
        char msg[600];
        snprintf(msg, sizeof msg, "skipping broken plugin: %s", why->msg);
        P->o.log(P->o.log_ud, "warn", "plugins", msg);
    }
    if (i >= 0) {
        host_free(P->list[i]);
        P->list[i] = NULL;
    }
    return 0;
}

/* Dependency check and init order (a depth-first topological sort that names a cycle). */
static int visit(rp_plugins_t *P, rapport_host *h, int *mark, rapport_host **order, int *norder,
                 rapport_host **stack, int depth, rp_error_t *err)
{
    int i = 0;
    while (P->list[i] != h)
        i++;
    if (mark[i] == 2)
        return 0;
    if (mark[i] == 1) {
        char chain[512];
        int n = 0, start = 0;
        while (stack[start] != h)
            start++;
        for (int k = start; k < depth && n < (int)sizeof chain - 80; k++)
            n += snprintf(chain + n, sizeof chain - (size_t)n, "%s -> ", stack[k]->desc->name);
        snprintf(chain + n, sizeof chain - (size_t)n, "%s", h->desc->name);
        return rp_error_set(err, RP_EINVAL, RP_C_PLUGIN,
                            "plugin %s (%s) is part of a dependency cycle: %s", h->desc->name,
                            h->file, chain);
    }
    mark[i] = 1;
    stack[depth] = h;
    for (const rapport_dep *d = h->desc->requires; d && d->name; d++) {
        rapport_host *dep = by_name(P, d->name);
        if (!dep)
            return rp_error_set(err, RP_EINVAL, RP_C_PLUGIN,
                                "plugin %s (%s) needs plugin %s%s%s, which is not loaded",
                                h->desc->name, h->file, d->name, d->min_version ? " >= " : "",
                                d->min_version ? d->min_version : "");
        if (d->min_version && semver_cmp(dep->desc->version, d->min_version) < 0)
            return rp_error_set(err, RP_EINVAL, RP_C_PLUGIN,
                                "plugin %s (%s) needs plugin %s >= %s, but %s is version %s (%s)",
                                h->desc->name, h->file, d->name, d->min_version, d->name,
                                dep->desc->version, dep->file);
        int rc = visit(P, dep, mark, order, norder, stack, depth + 1, err);
        if (rc)
            return rc;
    }
    mark[i] = 2;
    order[(*norder)++] = h;
    return 0;
}

static int init_one(rp_plugins_t *P, rapport_host *h, rp_error_t *err)
{
    rp_error_t e2 = {0};
    int rc = rp_store_begin(P->s, &e2);
    if (rc) {
        *err = e2;
        return rc;
    }
    char msg[512] = "";
    rc = h->desc->init(h, &api_table, msg, sizeof msg);
    if (rc) {
        /* Undo it all: its writes (entities, fields) with the transaction, the rest by owner. */
        rp_store_rollback(P->s, NULL);
        unregister(P, h);
        return rp_error_set(err, RP_EINVAL, RP_C_PLUGIN,
                            "plugin %s (%s) failed to start: %s; everything it registered was "
                            "removed",
                            h->desc->name, h->file,
                            msg[0] ? msg : h->last_error[0] ? h->last_error : "init returned an error");
    }
    if ((rc = rp_store_commit(P->s, &e2))) {
        unregister(P, h);
        *err = e2;
        return rc;
    }
    h->inited = true;
    return 0;
}

int rp_plugins_load(rp_store_t *s, rp_sched_t *e, const rp_plugins_opts_t *opts,
                    rp_plugins_t **out, rp_error_t *err)
{
    *out = NULL;
    rp_plugins_t *P = calloc(1, sizeof *P);
    if (!P)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    P->s = s;
    P->e = e;
    P->o = opts ? *opts : (rp_plugins_opts_t){0};
    char **files = NULL;
    int nfiles = 0, rc = 0;
    for (int i = 0; P->o.dirs && P->o.dirs[i]; i++) {
        int first = nfiles;
        find_files(P->o.dirs[i], &files, &nfiles);
        if (nfiles - first > 1)
            qsort(files + first, (size_t)(nfiles - first), sizeof *files, cmp_str);
    }
    P->list = calloc((size_t)nfiles + 1, sizeof *P->list);
    for (int i = 0; i < nfiles && !rc; i++) {
        rp_error_t why = {0};
        rapport_host *h = open_one(P, files[i], &why);
        if (!h) {
            rc = refuse(P, -1, &why, err);
            continue;
        }
        rapport_host *dup = by_name(P, h->desc->name);
        if (dup) {
            rp_error_set(&why, RP_EINVAL, RP_C_PLUGIN,
                         "plugin %s (%s) has the same name as the plugin loaded from %s",
                         h->desc->name, h->file, dup->file);
            host_free(h);
            rc = refuse(P, -1, &why, err);
            continue;
        }
        P->list[P->n++] = h;
    }
    for (int i = 0; i < nfiles; i++)
        free(files[i]);
    free(files);
    /* Order by dependencies, dropping (with skip_broken) what cannot be satisfied, until stable. */
    rapport_host **order = calloc((size_t)P->n + 1, sizeof *order);
    rapport_host **stack = calloc((size_t)P->n + 1, sizeof *stack);
    int *mark = calloc((size_t)P->n + 1, sizeof *mark);
    int norder = 0;
    for (bool again = true; again && !rc;) {
        again = false;
        norder = 0;
        memset(mark, 0, sizeof *mark * (size_t)(P->n + 1));
        for (int i = 0; i < P->n && !rc; i++) {
            if (!P->list[i] || mark[i] == 2)
                continue;
            rp_error_t why = {0};
            if (visit(P, P->list[i], mark, order, &norder, stack, 0, &why)) {
                rc = refuse(P, i, &why, err);
                again = !rc;
                break;
            }
        }
    }
    for (int i = 0; i < norder && !rc; i++) {
        rp_error_t why = {0};
        if (init_one(P, order[i], &why) == 0) {
            order[i]->order = i;
            continue;
        }
        int idx = 0;
        while (P->list[idx] != order[i])
            idx++;
        rc = refuse(P, idx, &why, err);
        memmove(&order[i], &order[i + 1], sizeof *order * (size_t)(norder - i - 1));
        norder--;
        i--;
        /* A plugin that needed the one just dropped cannot start either. */
        for (int j = i + 1; j >= 0 && j < norder && !rc; j++) {
            for (const rapport_dep *d = order[j]->desc->requires; d && d->name; d++) {
                if (!by_name(P, d->name)) {
                    int k = 0;
                    while (k < P->n && P->list[k] != order[j])
                        k++;
                    rp_error_t w2 = {0};
                    rp_error_set(&w2, RP_EINVAL, RP_C_PLUGIN,
                                 "plugin %s (%s) needs plugin %s, which failed to start",
                                 order[j]->desc->name, order[j]->file, d->name);
                    rc = refuse(P, k, &w2, err);
                    order[j] = NULL;
                    break;
                }
            }
        }
        for (int j = i + 1; j < norder; j++)
            if (!order[j]) {
                memmove(&order[j], &order[j + 1], sizeof *order * (size_t)(norder - j - 1));
                norder--;
                j--;
            }
    }
    /* Keep the list in init order (fini walks it backwards), also when the load failed: the
     * plugins that did start are then finalized dependents first. */
    if (!rc) {
        for (int i = 0; i < norder; i++)
            P->list[i] = order[i];
        for (int i = norder; i < P->n; i++)
            P->list[i] = NULL;
        P->n = norder;
    } else {
        rapport_host **sorted = calloc((size_t)P->n + 1, sizeof *sorted);
        int k = 0;
        for (int i = 0; sorted && i < norder; i++)
            if (order[i] && order[i]->inited)
                sorted[k++] = order[i];
        for (int i = 0; sorted && i < P->n; i++)
            if (P->list[i] && !P->list[i]->inited)
                sorted[k++] = P->list[i];
        if (sorted) {
            free(P->list);
            P->list = sorted;
            P->n = k;
        }
    }
    free(order);
    free(stack);
    free(mark);
    if (rc) {
        rp_plugins_unload(P);
        return rc;
    }
    P->script_dirs = calloc((size_t)P->n + 1, sizeof *P->script_dirs);
    int k = 0;
    for (int i = 0; i < P->n; i++)
        if (P->list[i]->scripts)
            P->script_dirs[k++] = P->list[i]->scripts;
    *out = P;
    return 0;
}

void rp_plugins_unload(rp_plugins_t *P)
{
    if (!P)
        return;
    for (int i = P->n - 1; i >= 0; i--) {
        rapport_host *h = P->list[i];
        if (!h)
            continue;
        if (h->inited && h->desc->fini)
            h->desc->fini(h, &api_table);
        unregister(P, h);
        host_free(h);
    }
    free(P->list);
    free(P->script_dirs);
    free(P);
}

int rp_plugins_count(const rp_plugins_t *P)
{
    return P ? P->n : 0;
}

json_t *rp_plugins_describe(const rp_plugins_t *P)
{
    json_t *arr = json_array();
    for (int i = 0; P && i < P->n; i++) {
        rapport_host *h = P->list[i];
        json_t *req = json_array();
        for (const rapport_dep *d = h->desc->requires; d && d->name; d++)
            json_array_append_new(req, json_sprintf("%s%s%s", d->name,
                                                    d->min_version ? " >= " : "",
                                                    d->min_version ? d->min_version : ""));
        /* The entities it owns, whether defined in this run or an earlier one. */
        json_t *sch = rp_store_schema(P->s, NULL, NULL);
        const char *ename;
        json_t *edesc;
        json_object_foreach(sch, ename, edesc) {
            const char *owner = json_string_value(json_object_get(edesc, "owner"));
            bool listed = false;
            size_t k;
            json_t *x;
            json_array_foreach(h->entities, k, x) listed = listed || !strcmp(json_string_value(x), ename);
            if (owner && !strcmp(owner, h->owner) && !listed)
                json_array_append_new(h->entities, json_string(ename));
        }
        json_decref(sch);
        json_array_append_new(
            arr, json_pack("{s:s,s:s,s:i,s:s,s:s,s:o,s:O,s:O,s:O,s:O,s:O,s:O,s:O,s:O}", "name",
                           h->desc->name, "version", h->desc->version, "abi", (int)h->desc->abi,
                           "file", h->file, "description",
                           h->desc->description ? h->desc->description : "", "requires", req,
                           "entities", h->entities, "hooks", h->hooks, "handlers", h->handlers,
                           "jobs", h->jobs, "schedules", h->schedules, "lua", h->lua, "commands",
                           h->commands, "routes", h->routes));
    }
    return arr;
}

const rp_lua_ext_t *rp_plugins_lua(const rp_plugins_t *P)
{
    return P ? P->ext_head : NULL;
}

const char *const *rp_plugins_script_dirs(const rp_plugins_t *P)
{
    static const char *const none[] = {NULL};
    return P && P->script_dirs ? P->script_dirs : none;
}

static int run_command(reg_t *r, const rp_ctx_t *caller, int argc, char **argv)
{
    rp_ctx_t saved = r->h->ctx;
    r->h->ctx = as_caller(r->h, caller);
    int rc = r->fn.command(r->h, &api_table, argc, argv, r->ud);
    r->h->ctx = saved;
    return rc;
}

int rp_plugins_command(rp_plugins_t *P, int argc, char **argv, rp_error_t *err)
{
    return rp_plugins_command_as(P, NULL, argc, argv, err);
}

int rp_plugins_command_as(rp_plugins_t *P, const rp_ctx_t *caller, int argc, char **argv,
                          rp_error_t *err)
{
    rapport_host *h = argc > 0 ? by_name(P, argv[0]) : NULL;
    if (!h && argc > 0) {
        /* `rapport <command>`: a plugin command reached by its own name, when exactly one
         * plugin has it (`rapport demo-data`). */
        reg_t *found = NULL;
        int n = 0;
        for (reg_t *r = P->regs; r; r = r->next)
            if (r->kind == 5 && strcmp(r->name, argv[0]) == 0)
                found = r, n++;
        if (n == 1)
            return run_command(found, caller, argc, argv);
        if (n > 1) {
            rp_error_set(err, RP_EINVAL, RP_C_PLUGIN,
                         "several plugins have a command \"%s\": say which, as "
                         "`rapport <plugin> %s`", argv[0], argv[0]);
            return -1;
        }
    }
    if (!h) {
        rp_error_set(err, RP_ENOTFOUND, RP_C_PLUGIN, "no plugin named \"%s\"",
                     argc > 0 ? argv[0] : "");
        return -1;
    }
    for (reg_t *r = P->regs; r; r = r->next) {
        if (r->h == h && r->kind == 5 && argc > 1 && strcmp(r->name, argv[1]) == 0)
            return run_command(r, caller, argc - 1, argv + 1);
    }
    char list[512] = "";
    int n = 0;
    for (reg_t *r = P->regs; r; r = r->next)
        if (r->h == h && r->kind == 5 && n < (int)sizeof list - 100)
            n += snprintf(list + n, sizeof list - (size_t)n, "\n  rapport %s %s  %s",
                          h->desc->name, r->name, r->help);
    rp_error_set(err, RP_ENOTFOUND, RP_C_PLUGIN, "plugin %s has no command \"%s\"; it has:%s",
                 h->desc->name, argc > 1 ? argv[1] : "", n ? list : " none");
    return -1;
}

int rp_plugins_route(void *ud, const char *name, const rp_http_request_t *req, int *status,
                     char **body, rp_error_t *err)
{
    rp_plugins_t *P = ud;
    *body = NULL;
    rapport_host *h = by_name(P, name);
    if (!h)
        return rp_error_set(err, RP_ENOTFOUND, RP_C_PLUGIN, "no plugin named \"%s\"", name);
    const char *sub = req->sub[0] == '/' ? req->sub + 1 : req->sub;
    reg_t *best = NULL;
    size_t best_len = 0;
    for (reg_t *r = P->regs; r; r = r->next) {
        if (r->h != h || r->kind != 6)
            continue;
        size_t n = strlen(r->name);
        bool path_ok = strncmp(sub, r->name, n) == 0 && (sub[n] == '\0' || sub[n] == '/' || !n);
        bool method_ok = !strcmp(r->help, "*") || !strcmp(r->help, req->method);
        /* The longest path that fits wins. */
        if (path_ok && method_ok && (!best || n > best_len))
            best = r, best_len = n;
    }
    if (!best)
        return RP_ENOTFOUND;
    rapport_request rq = {.method = req->method, .path = req->path,
                          .rest = sub + best_len, .query = req->query, .body = req->body,
                          .body_len = req->body_len, .user = req->user, .role = req->role};
    /* The host's functions act as the caller while the route runs. */
    rp_ctx_t saved = h->ctx;
    h->ctx = (rp_ctx_t){.actor = req->ctx->actor, .origin = h->ctx.origin,
                        .access = req->ctx->access};
    char msg[512] = "";
    char *out = NULL;
    *status = 200;
    h->last_rc = 0;
    int rc = best->fn.route(h, &api_table, &rq, status, &out, best->ud, msg, sizeof msg);
    h->ctx = saved;
    /* A route that failed because the caller may not do what it asked is a 403, whatever
     * code the plugin chose. */
    if (rc && h->last_rc == RP_EPERM)
        rc = RP_EPERM;
    *body = out; /* api->strdup is the C library's: free() is its pair */
    if (rc) {
        free(*body);
        *body = NULL;
        return rp_error_set(err, rc, rc == RP_EPERM ? RP_C_DENIED : 0, "%s",
                            msg[0] ? msg : h->last_error[0] ? h->last_error : "the route failed");
    }
    return 0;
}
