/*
 * api.c — the host function table a plugin reaches the engine through (rapport_plugin.h): the
 * basics and records, the registrations, and the trampolines from the core's callbacks to the
 * plugins' JSON-text ABI.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "rapport/decimal.h"
#include "rapport/jsontext.h"
#include "rapport/text.h"
#include "rapport/time.h"

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

int64_t rp__plugin_fail(rapport_host *h, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->last_error, sizeof h->last_error, fmt, ap);
    va_end(ap);
    h->last_rc = code;
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
    /* "/mail.from": an engine-wide setting, which several plugins share. */
    if (key && key[0] == '/')
        snprintf(full, sizeof full, "%s", key + 1);
    else
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

static int h_offline(rapport_host *h)
{
    return rp_store_offline(h->P->s);
}

static int h_declare(rapport_host *h, const char *entity, const char *spec)
{
    json_t *j = parse(h, spec, "the entity specification");
    if (!j)
        return RAPPORT_EINVAL;
    rp_error_t err = {0};
    int rc = rp_store_declare(h->P->s, &h->ctx, entity, j, h->owner, NULL, &err);
    json_decref(j);
    bool listed = rc != 0;
    size_t i;
    json_t *x;
    json_array_foreach(h->entities, i, x)
        listed = listed || strcmp(json_string_value(x), entity) == 0;
    if (!listed)
        json_array_append_new(h->entities, json_string(entity));
    return from_err(h, rc, &err);
}

static int h_erase(rapport_host *h, const char *entity, int64_t id, const char *reason)
{
    rp_error_t err = {0};
    return from_err(h, rp_store_erase(h->P->s, &h->ctx, entity, id, reason, NULL, &err), &err);
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

/* The strings of @p arr (a JSON array, or one string) into @p out, NULL-terminated; more than
 * @p max keeps max + 1, so the store names its cap. Borrowed from @p arr. */
static void str_list(json_t *arr, const char **out, int max)
{
    int n = 0;
    if (json_is_string(arr))
        out[n++] = json_string_value(arr);
    for (size_t i = 0; json_is_array(arr) && i < json_array_size(arr) && n <= max; i++)
        if (json_is_string(json_array_get(arr, i)))
            out[n++] = json_string_value(json_array_get(arr, i));
    out[n] = NULL;
}

typedef struct {
    rapport_host *h;
    int (*row)(void *ud, const char *json);
    void *ud;
} agg_pass_t;

static int agg_row(json_t *row, void *ud)
{
    agg_pass_t *p = ud;
    char *text = json_dumps(row, JSON_COMPACT);
    if (!text)
        return RP_ENOMEM;
    int rc = p->row(p->ud, text);
    free(text);
    return rc;
}

/* The query of api->aggregate / aggregate_cells as rp_aggregate_t, borrowing from @p q. */
static rp_aggregate_t agg_query(rapport_host *h, const char *entity, json_t *q,
                                const char **groups, const char **measures)
{
    str_list(json_object_get(q, "group_by"), groups, RP_AGG_MAX_GROUPS);
    str_list(json_object_get(q, "measures"), measures, RP_AGG_MAX_MEASURES);
    return (rp_aggregate_t){.entity = entity,
                            .where = json_object_get(q, "where"),
                            .group_by = groups,
                            .measures = measures,
                            .zone = json_string_value(json_object_get(q, "zone")),
                            .order = json_string_value(json_object_get(q, "order")),
                            .limit = json_integer_value(json_object_get(q, "limit")),
                            .offset = json_integer_value(json_object_get(q, "offset")),
                            .with_deleted = json_is_true(json_object_get(q, "deleted")),
                            .access = h->ctx.access};
}

static int h_aggregate(rapport_host *h, const char *entity, const char *query,
                       int (*row)(void *ud, const char *json), void *ud)
{
    if (!row)
        return (int)fail_host(h, RAPPORT_EINVAL, "aggregate needs a row function");
    json_t *q = query ? parse(h, query, "the query") : json_object();
    if (!q)
        return RAPPORT_EINVAL;
    const char *groups[RP_AGG_MAX_GROUPS + 2], *measures[RP_AGG_MAX_MEASURES + 2];
    rp_aggregate_t rq = agg_query(h, entity, q, groups, measures);
    agg_pass_t pass = {h, row, ud};
    rp_error_t err = {0};
    int rc = rp_store_aggregate_each(h->P->s, &rq, agg_row, &pass, &err);
    json_decref(q);
    /* A stop the plugin's own function asked for is its own code, returned as it is. */
    if (rc && !err.msg[0])
        return rc;
    return from_err(h, rc, &err);
}

_Static_assert((int)RAPPORT_CELL_NULL == (int)RP_AGG_NULL &&
                   (int)RAPPORT_CELL_INT == (int)RP_AGG_INT &&
                   (int)RAPPORT_CELL_REAL == (int)RP_AGG_REAL &&
                   (int)RAPPORT_CELL_TEXT == (int)RP_AGG_TEXT &&
                   (int)RAPPORT_CELL_DECIMAL == (int)RP_AGG_DECIMAL,
               "the ABI's cell types are the store's");

typedef struct {
    int (*row)(void *ud, int n, const char *const *names, const rapport_cell *cells);
    void *ud;
} cells_pass_t;

static int cells_row(void *ud, int n, const char *const *names, const rp_agg_cell_t *cells)
{
    cells_pass_t *p = ud;
    rapport_cell out[RP_AGG_MAX_GROUPS + RP_AGG_MAX_MEASURES];
    /* The same values, in the ABI's own struct (the core's may grow; this one may not). */
    for (int i = 0; i < n; i++)
        out[i] = (rapport_cell){.type = cells[i].type, .scale = cells[i].scale,
                                .i = cells[i].i, .d = cells[i].d, .s = cells[i].s};
    return p->row(p->ud, n, names, out);
}

static int h_aggregate_cells(rapport_host *h, const char *entity, const char *query,
                             int (*row)(void *ud, int n, const char *const *names,
                                        const rapport_cell *cells),
                             void *ud)
{
    if (!row)
        return (int)fail_host(h, RAPPORT_EINVAL, "aggregate_cells needs a row function");
    json_t *q = query ? parse(h, query, "the query") : json_object();
    if (!q)
        return RAPPORT_EINVAL;
    const char *groups[RP_AGG_MAX_GROUPS + 2], *measures[RP_AGG_MAX_MEASURES + 2];
    rp_aggregate_t rq = agg_query(h, entity, q, groups, measures);
    cells_pass_t pass = {row, ud};
    rp_error_t err = {0};
    int rc = rp_store_aggregate_cells(h->P->s, &rq, cells_row, &pass, &err);
    json_decref(q);
    if (rc && !err.msg[0])
        return rc;
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

reg_t *rp__plugin_reg(rapport_host *h, int kind, void *ud, const char *name)
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

/* The field as c_get finds it, borrowed. */
static json_t *c_field(rapport_change *c, int i, const char *field)
{
    json_t *f = c->batch ? json_array_get(c->batch, (size_t)i) : NULL;
    json_t *v = f ? json_object_get(f, field) : NULL;
    if (!v) {
        json_t *old = c->olds ? c->olds[i] : c->single_old;
        v = old ? json_object_get(old, field) : NULL;
    }
    return v;
}

static char *c_get(rapport_change *c, int i, const char *field)
{
    if (i < 0 || i >= c->count || !field)
        return NULL;
    json_t *v = c_field(c, i, field);
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

static long c_get_text(rapport_change *c, int i, const char *field, char *buf, size_t cap)
{
    if (i < 0 || i >= c->count || !field)
        return RAPPORT_EINVAL;
    json_t *v = c_field(c, i, field);
    if (!v || json_is_null(v))
        return RAPPORT_ENOTFOUND;
    if (!json_is_string(v))
        return RAPPORT_EINVAL;
    size_t n = json_string_length(v);
    if (buf && cap) {
        size_t k = n < cap ? n : cap - 1;
        memcpy(buf, json_string_value(v), k);
        buf[k] = '\0';
    }
    return n > (size_t)LONG_MAX ? LONG_MAX : (long)n;
}

static int c_set_text(rapport_change *c, int i, const char *field, const char *text)
{
    json_t *f = c->batch && i >= 0 && i < c->count ? json_array_get(c->batch, (size_t)i) : NULL;
    json_t *v = f && field && text ? json_string(text) : NULL; /* NULL: not UTF-8 */
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
    WITH_CTX(r->h, ch->ctx, rc = r->fn.hook(r->h, &rp__plugin_api, &c, r->ud, msg, sizeof msg));
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
    WITH_CTX(r->h, ctx, rc = r->fn.hook(r->h, &rp__plugin_api, &c, r->ud, msg, sizeof msg));
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
    WITH_CTX(r->h, ctx, rc = r->fn.event(r->h, &rp__plugin_api, &pe, r->ud, msg, sizeof msg));
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
    WITH_CTX(r->h, ctx, rc = r->fn.job(r->h, &rp__plugin_api, &pj, r->ud, msg, sizeof msg));
    if (rc)
        return rp_error_set(err, RP_EINVAL, 0, "%s (plugin %s)", msg[0] ? msg : "failed",
                            r->h->desc->name);
    return 0;
}

/* The context a plugin acts with for @p caller: its own, unless the caller acts for a user
 * (`--as`, a user's Lua), whose actor and permissions it then takes on. */
rp_ctx_t rp__plugin_as_caller(const rapport_host *h, const rp_ctx_t *caller)
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
    r->h->ctx = rp__plugin_as_caller(r->h, caller);
    int rc = r->fn.lua(r->h, &rp__plugin_api, args, result, r->ud, err, errlen);
    r->h->ctx = saved;
    return rc;
}

static int action_ok(rapport_host *h, int action)
{
    if (action < RAPPORT_CREATE || action > RAPPORT_ERASE)
        return (int)fail_host(h, RAPPORT_EINVAL, "unknown action %d", action);
    return 0;
}

static int h_hook(rapport_host *h, const char *entity, int action, int priority,
                  rapport_hook_fn fn, void *ud)
{
    if (action_ok(h, action) || !fn)
        return fn ? RAPPORT_EINVAL : (int)fail_host(h, RAPPORT_EINVAL, "a hook needs a function");
    reg_t *r = rp__plugin_reg(h, 0, ud, entity);
    if (!r)
        return (int)fail_host(h, RAPPORT_ENOMEM, "out of memory");
    r->fn.hook = fn;
    rp_error_t err = {0};
    int id = rp_hook_add(h->P->s, entity, (rp_action_t)action, priority, hook_tramp, r, h->owner,
                         &err);
    if (id < 0)
        return from_err(h, id, &err);
    static const char *const acts[] = {"create",  "update", "delete",
                                       "restore", "purge",  "erase"};
    _Static_assert(sizeof acts / sizeof *acts == RAPPORT_ERASE + 1, "a name for every action");
    json_array_append_new(h->hooks, json_sprintf("%s.%s", entity, acts[action]));
    return 0;
}

static int h_batch_hook(rapport_host *h, const char *entity, int action, int priority,
                        rapport_hook_fn fn, void *ud)
{
    if (action_ok(h, action) || !fn)
        return fn ? RAPPORT_EINVAL : (int)fail_host(h, RAPPORT_EINVAL, "a hook needs a function");
    reg_t *r = rp__plugin_reg(h, 1, ud, entity);
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
    reg_t *r = rp__plugin_reg(h, 2, ud, full);
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
    reg_t *r = rp__plugin_reg(h, 3, ud, name);
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
    if (!fn || !name || !*name || !strcmp(name, "/"))
        return (int)fail_host(h, RAPPORT_EINVAL, "a Lua function needs a name and a function");
    /* "/timeline": crm.timeline itself, for a function every script reaches as the engine's. */
    bool top = name[0] == '/';
    if (top)
        for (reg_t *o = h->P->regs; o; o = o->next)
            if (o->kind == 4 && o->ext.ns && !*o->ext.ns && !strcmp(o->name, name + 1))
                return (int)fail_host(h, RAPPORT_ECONFLICT, "plugin %s has crm.%s already",
                                      o->h->desc->name, name + 1);
    reg_t *r = rp__plugin_reg(h, 4, ud, top ? name + 1 : name);
    if (!r)
        return (int)fail_host(h, RAPPORT_ENOMEM, "out of memory");
    r->fn.lua = fn;
    r->ext = (rp_lua_ext_t){.ns = top ? "" : h->desc->name, .name = r->name, .fn = lua_tramp,
                            .ud = r, .next = h->P->ext_head};
    h->P->ext_head = &r->ext;
    char full[200];
    if (top)
        snprintf(full, sizeof full, "crm.%s", r->name);
    else
        snprintf(full, sizeof full, "crm.%s.%s", h->desc->name, name);
    json_array_append_new(h->lua, json_string(full));
    return 0;
}

static int h_command(rapport_host *h, const char *name, const char *help, rapport_command_fn fn,
                     void *ud)
{
    if (!fn || !name || !*name)
        return (int)fail_host(h, RAPPORT_EINVAL, "a command needs a name and a function");
    reg_t *r = rp__plugin_reg(h, 5, ud, name);
    if (!r)
        return (int)fail_host(h, RAPPORT_ENOMEM, "out of memory");
    r->fn.command = fn;
    snprintf(r->help, sizeof r->help, "%s", help ? help : "");
    json_array_append_new(h->commands, json_sprintf("%s %s", h->desc->name, name));
    return 0;
}

int rp__plugin_add_route(rapport_host *h, int kind, const char *method, const char *path,
                         rapport_route_fn fn, void *ud)
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
    reg_t *r = rp__plugin_reg(h, kind, ud, path);
    if (!r)
        return (int)fail_host(h, RAPPORT_ENOMEM, "out of memory");
    r->fn.route = fn;
    snprintf(r->help, sizeof r->help, "%s", method);
    json_array_append_new(h->routes, json_sprintf("%s /api/v1/plugins/%s%s%s%s", method,
                                                  h->desc->name, *path ? "/" : "", path,
                                                  kind == 8 ? " (public: signed)" : ""));
    return 0;
}

static int h_route(rapport_host *h, const char *method, const char *path, rapport_route_fn fn,
                   void *ud)
{
    return rp__plugin_add_route(h, 6, method, path, fn, ud);
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

/* ---- time and exact decimals ------------------------------------------------------------ */

/* The result of a core call that may fail, kept for last_error when there is a host. */
static int kept(rapport_host *h, int rc, const rp_error_t *err)
{
    return h ? from_err(h, rc, err) : rc;
}

static int h_time_format(rapport_host *h, int64_t ms, char *out)
{
    if (!out)
        return h ? (int)fail_host(h, RAPPORT_EINVAL, "time_format needs a buffer")
                 : RAPPORT_EINVAL;
    if (ms < RP_TIME_MIN || ms > RP_TIME_MAX) {
        out[0] = '\0';
        return h ? (int)fail_host(h, RAPPORT_EINVAL, "%lld ms is outside the years 0 to 9999",
                                  (long long)ms)
                 : RAPPORT_EINVAL;
    }
    rp_time_format(ms, out);
    return 0;
}

static int h_time_parse(rapport_host *h, const char *text, int64_t *ms)
{
    rp_error_t err = {0};
    return kept(h, ms ? rp_time_parse(text, ms, &err) : RP_EINVAL, &err);
}

static int h_delay_parse(rapport_host *h, const char *text, int64_t *ms)
{
    rp_error_t err = {0};
    return kept(h, ms ? rp_parse_delay(text, ms, &err) : RP_EINVAL, &err);
}

static int h_dec_parse(rapport_host *h, const char *text, int scale, int64_t *out)
{
    rp_error_t err = {0};
    return kept(h, out ? rp_dec_parse(text, scale, out, &err) : RP_EINVAL, &err);
}

static int h_dec_format(rapport_host *h, int64_t v, int scale, char *out, size_t cap)
{
    if (rp_dec_format(v, scale, out, cap) == 0)
        return 0;
    return h ? (int)fail_host(h, RAPPORT_EINVAL, "dec_format: scale %d is not between 0 and %d, "
                              "or %zu bytes are too few", scale, RP_DEC_MAX_SCALE, cap)
             : RAPPORT_EINVAL;
}

static int h_dec_add(rapport_host *h, int64_t a, int64_t b, int64_t *out)
{
    rp_error_t err = {0};
    return kept(h, out ? rp_dec_add(a, b, out, &err) : RP_EINVAL, &err);
}

static int h_dec_mul(rapport_host *h, int64_t a, int ascale, int64_t b, int bscale, int scale,
                     int64_t *out)
{
    rp_error_t err = {0};
    return kept(h, out ? rp_dec_mul(a, ascale, b, bscale, scale, out, &err) : RP_EINVAL, &err);
}

const rapport_api rp__plugin_api = {
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
    .find = rp__plugin_find,
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
    .time_format = h_time_format,
    .time_parse = h_time_parse,
    .delay_parse = h_delay_parse,
    .dec_parse = h_dec_parse,
    .dec_format = h_dec_format,
    .dec_add = h_dec_add,
    .dec_mul = h_dec_mul,
    .dec_cmp = rp_dec_cmp,
    .format = rp__plugin_format,
    .aggregate = h_aggregate,
    .aggregate_cells = h_aggregate_cells,
    .public_route = rp__plugin_public_route,
    .record_route = rp__plugin_record_route,
    .events = rp__plugin_events,
    .user = rp__plugin_user,
    .offload = rp__plugin_offload,
    .header = rp__plugin_header,
    .as_plugin = rp__plugin_as_plugin,
    .declare = h_declare,
    .role_default = rp__plugin_role_default,
    .serve_assets = rp__plugin_serve_assets,
    .erase = h_erase,
    .offline = h_offline,
    .session_start = rp__plugin_session_start,
    .session_end = rp__plugin_session_end,
    .secret_put = rp__plugin_secret_put,
    .secret_take = rp__plugin_secret_take,
    .reply_bytes = rp__plugin_reply_bytes,
    .route_doc = rp__plugin_route_doc,
    .search = rp__plugin_search,
    .change_get_text = c_get_text,
    .change_set_text = c_set_text,
    .find_rows = rp__plugin_find_rows,
};
