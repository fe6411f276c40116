/*
 * rules.c — the rules a script registers through the `crm` table: before-hooks (crm.before),
 * event handlers (crm.on, crm.emit), jobs and schedules (crm.job, crm.after, crm.every,
 * crm.cancel). A registration made by a chunk is pending until the chunk succeeds, then applied
 * to the store and the scheduler; it is undone when the state goes.
 */
#include <ctype.h>
#include <fnmatch.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "lua_internal.h"
#include "rapport/access.h"
#include "rapport/cron.h"
#include "rapport/time.h"

static rp__reg_t *new_reg(lua_State *L, rp_lua_t *l, reg_kind_t kind, int fn_idx)
{
    rp__reg_t *r = calloc(1, sizeof *r);
    if (!r)
        luaL_error(L, "out of memory");
    r->l = l;
    r->kind = kind;
    lua_pushvalue(L, fn_idx);
    lua_Debug ar;
    lua_pushvalue(L, fn_idx);
    r->nargs = lua_getinfo(L, ">u", &ar) && !ar.isvararg ? ar.nparams : 255;
    r->fnref = luaL_ref(L, LUA_REGISTRYINDEX);
    return r;
}

static void free_reg(rp_lua_t *l, rp__reg_t *r)
{
    if (l->L)
        luaL_unref(l->L, LUA_REGISTRYINDEX, r->fnref);
    json_decref(r->payload);
    free(r);
}

/* Appends to the pending list (applied when the chunk succeeds) or applies at once when no
 * chunk is loading (a registration from the REPL, or from inside a handler). */
static void add_reg(lua_State *L, rp_lua_t *l, rp__reg_t *r)
{
    rp__reg_t **tail = &l->pending;
    while (*tail)
        tail = &(*tail)->next;
    *tail = r;
    if (l->pending_depth == 0) {
        rp_error_t err = {0};
        if (rp__lua_pending_apply(l, &err))
            luaL_error(L, "%s", err.msg);
    }
}

/* Makes @p fields hold what the record table on top of the stack holds after a hook ran,
 * editing it in place: text the hook left alone is not converted again (most hooks change one
 * field of many). A field the hook set to nil disappears from the table: on update that means
 * "leave it", so only keys present stay. On failure *why says what the table held (NULL: not a
 * table of fields), and @p fields may be half edited: the caller vetoes the write. */
static int read_back(lua_State *L, json_t *fields, const char **why)
{
    if (!lua_istable(L, -1) || lua_rawlen(L, -1) != 0)
        return -1;
    size_t before = json_object_size(fields), kept = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        size_t klen, vlen;
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &klen) : NULL;
        if (!k || strlen(k) != klen) { /* a NUL would match a shorter field's name */
            *why = k ? "a table with a key that holds a NUL byte"
                     : "a table whose keys are neither a list nor strings";
            lua_pop(L, 2);
            return -1;
        }
        json_t *old = json_object_get(fields, k), *v;
        kept += old != NULL;
        const char *t = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &vlen) : NULL;
        if (t && json_is_string(old) && vlen == json_string_length(old) &&
            memcmp(t, json_string_value(old), vlen) == 0) {
            lua_pop(L, 1);
            continue;
        }
        if (!(v = rp__lua_to_json(L, -1, why))) {
            lua_pop(L, 2);
            return -1;
        }
        lua_pop(L, 1);
        /* A key already there is known to be good text; a new one is checked. */
        if (rp__lua_json_set(fields, k, klen, v, old != NULL, why)) {
            lua_pop(L, 1);
            return -1;
        }
    }
    if (kept < before) {
        const char *k;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(fields, tmp, k, v) {
            lua_pushstring(L, k);
            bool gone = lua_rawget(L, -2) == LUA_TNIL;
            lua_pop(L, 1);
            if (gone)
                json_object_del(fields, k);
        }
    }
    return 0;
}

/* A before-hook's third argument: what is being done, to what, by whom. */
static void push_hook_ctx(lua_State *L, const rp_change_t *ch)
{
    lua_createtable(L, 0, 5);
    lua_pushstring(L, ch->entity);
    lua_setfield(L, -2, "entity");
    static const char *const acts[] = {"create",  "update", "delete",
                                       "restore", "purge",  "erase"};
    _Static_assert(sizeof acts / sizeof *acts == RP_ACT_ERASE + 1, "a name for every action");
    lua_pushstring(L, acts[ch->action]);
    lua_setfield(L, -2, "action");
    lua_pushinteger(L, ch->id);
    lua_setfield(L, -2, "id");
    lua_pushstring(L, ch->ctx && ch->ctx->actor ? ch->ctx->actor : "system");
    lua_setfield(L, -2, "actor");
    lua_pushstring(L, ch->ctx && ch->ctx->origin ? ch->ctx->origin : "core");
    lua_setfield(L, -2, "origin");
}

static int hook_tramp(rp_store_t *s, rp_change_t *ch, void *ud, rp_error_t *err)
{
    rp__reg_t *r = ud;
    rp_lua_t *l = r->l;
    lua_State *L = l->L;
    bool fields = ch->action == RP_ACT_CREATE || ch->action == RP_ACT_UPDATE;
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->fnref);
    rp__lua_push_json(L, fields ? ch->fields : ch->old);
    lua_pushvalue(L, -1); /* keep the record table to read the hook's edits back */
    lua_insert(L, -3);
    /* The old record and the context only for a function that names them: most hooks take
     * the record alone, and making the context table was a tenth of a hook's cost. */
    int nargs = r->nargs >= 3 ? 3 : r->nargs == 2 ? 2 : 1;
    if (nargs >= 2) {
        if (ch->old)
            rp__lua_push_json(L, ch->old);
        else
            lua_pushnil(L);
    }
    if (nargs >= 3)
        push_hook_ctx(L, ch);
    rp_ctx_t saved = l->ctx;
    if (ch->ctx)
        l->ctx = *ch->ctx;
    rp_error_t perr = {0};
    int rc = rp__lua_pcall(l, nargs, 1, &perr);
    l->ctx = saved;
    if (rc) {
        lua_pop(L, 1);
        return rp_error_set(err, RP_EVETO, RP_C_VETO, "%s", perr.msg);
    }
    /* The hook may edit the table it was given, or return a new one. */
    if (lua_istable(L, -1))
        lua_replace(L, -2);
    else
        lua_pop(L, 1);
    if (fields) {
        const char *why = NULL;
        if (read_back(L, ch->fields, &why)) {
            lua_pop(L, 1);
            return rp_error_set(err, RP_EVETO, RP_C_VETO,
                                "before-hook of %s in %s left the record as %s", ch->entity,
                                l->name, why ? why : "something that is not a table");
        }
    }
    lua_pop(L, 1);
    return 0;
}

/*
 * An event reaches Lua as plain data: strings, numbers, booleans and tables, with no metatable
 * and no key a script cannot name, so a handler may walk it with pairs(), store it, forward it
 * or encode it (crm.json.encode) and get back what it was given. `changes` is decoded here,
 * always: an event whose changes were lazily decoded could not be encoded or compared whole.
 */
static void push_event(lua_State *L, const rp_event_t *ev)
{
    lua_createtable(L, 0, 12);
    lua_pushinteger(L, ev->seq);
    lua_setfield(L, -2, "seq");
    lua_pushstring(L, ev->uid);
    lua_setfield(L, -2, "uid");
    lua_pushstring(L, ev->type);
    lua_setfield(L, -2, "type");
    lua_pushstring(L, ev->entity);
    lua_setfield(L, -2, "entity");
    lua_pushinteger(L, ev->record_id);
    lua_setfield(L, -2, "record_id");
    lua_pushinteger(L, ev->record_id);
    lua_setfield(L, -2, "id");
    lua_pushstring(L, ev->actor);
    lua_setfield(L, -2, "actor");
    lua_pushstring(L, ev->origin);
    lua_setfield(L, -2, "origin");
    lua_pushstring(L, ev->at);
    lua_setfield(L, -2, "at");
    lua_pushinteger(L, ev->cause);
    lua_setfield(L, -2, "cause");
    lua_pushinteger(L, ev->depth);
    lua_setfield(L, -2, "depth");
    json_t *changes = ev->changes ? json_loads(ev->changes, 0, NULL) : NULL;
    rp__lua_push_owned(L, changes && json_is_object(changes) ? json_incref(changes)
                                                             : json_object());
    json_decref(changes);
    lua_setfield(L, -2, "changes");
}

static int sub_tramp(rp_store_t *s, const rp_event_t *ev, const rp_ctx_t *ctx, void *ud,
                     rp_error_t *err)
{
    rp__reg_t *r = ud;
    rp_lua_t *l = r->l;
    lua_rawgeti(l->L, LUA_REGISTRYINDEX, r->fnref);
    push_event(l->L, ev);
    rp_ctx_t saved = l->ctx;
    l->ctx = *ctx;
    int rc = rp__lua_pcall(l, 1, 0, err);
    l->ctx = saved;
    return rc;
}

static int job_tramp(rp_store_t *s, const rp_job_t *job, const rp_ctx_t *ctx, void *ud,
                     rp_error_t *err)
{
    rp__reg_t *r = ud;
    rp_lua_t *l = r->l;
    lua_State *L = l->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->fnref);
    json_t *p = json_loads(job->payload, 0, NULL);
    rp__lua_push_owned(L, p ? p : json_object());
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, job->id);
    lua_setfield(L, -2, "id");
    lua_pushstring(L, job->name);
    lua_setfield(L, -2, "name");
    if (job->key) {
        lua_pushstring(L, job->key);
        lua_setfield(L, -2, "key");
    }
    lua_pushinteger(L, job->attempts);
    lua_setfield(L, -2, "attempts");
    rp_ctx_t saved = l->ctx;
    l->ctx = *ctx;
    int rc = rp__lua_pcall(l, 2, 0, err);
    l->ctx = saved;
    return rc;
}

void rp__lua_pending_begin(rp_lua_t *l)
{
    l->pending_depth++;
}

void rp__lua_pending_discard(rp_lua_t *l)
{
    if (l->pending_depth > 0 && --l->pending_depth > 0)
        return;
    while (l->pending) {
        rp__reg_t *r = l->pending;
        l->pending = r->next;
        free_reg(l, r);
    }
}

int rp__lua_pending_apply(rp_lua_t *l, rp_error_t *err)
{
    if (l->pending_depth > 0 && --l->pending_depth > 0)
        return 0;
    int rc = 0;
    while (l->pending && !rc) {
        rp__reg_t *r = l->pending;
        l->pending = r->next;
        switch (r->kind) {
        case REG_HOOK: {
            int id = rp_hook_add(l->s, r->name, r->action, r->priority, hook_tramp, r, l->owner,
                                 err);
            rc = id < 0 ? id : 0;
            break;
        }
        case REG_SUB:
            rc = rp_sched_subscribe(l->e, r->name, r->types, r->from_now, sub_tramp, r, l->owner,
                                    err);
            break;
        case REG_JOB:
            rc = rp_sched_handler(l->e, r->name, job_tramp, r, l->owner, err);
            break;
        case REG_EVERY:
            rc = rp_sched_every(l->e, r->name, r->types, r->tz[0] ? r->tz : NULL, r->extra,
                                r->payload, err);
            break;
        }
        r->next = l->regs;
        l->regs = r;
    }
    if (rc)
        rp__lua_pending_discard(l);
    return rc;
}

void rp__lua_unregister_all(rp_lua_t *l)
{
    rp_hooks_remove_owner(l->s, l->owner);
    if (l->e)
        rp_sched_unregister_owner(l->e, l->owner);
    l->pending_depth = 1;
    rp__lua_pending_discard(l);
    while (l->regs) {
        rp__reg_t *r = l->regs;
        l->regs = r->next;
        free_reg(l, r);
    }
}

static rp_sched_t *need_engine(lua_State *L, rp_lua_t *l, const char *fname)
{
    if (!l->e)
        luaL_error(L, "%s needs the engine, which this state was made without", fname);
    return l->e;
}

/* "contact.create" → entity "contact", action create; "*.update" for every entity. */
/* Rules (hooks, handlers, jobs, schedules) run as the engine, unrestricted: a state run for a
 * user (`--as`) may not register one, or the user's code would run without their limits. */
static void no_rules_for_users(lua_State *L, rp_lua_t *l, const char *fn)
{
    if (l->o.access)
        luaL_error(L, "%s: a script run for a user (--as) cannot register rules: hooks, "
                   "handlers, jobs and schedules run as the engine; put them in scripts/",
                   fn);
}

static int crm_before(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    no_rules_for_users(L, l, "crm.before");
    const char *type = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    int priority = 0;
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "priority");
        priority = lua_isnil(L, -1) ? 0 : (int)luaL_checkinteger(L, -1);
        lua_pop(L, 1);
    }
    const char *dot = strrchr(type, '.');
    static const char *const acts[] = {"create",  "update", "delete",
                                       "restore", "purge",  "erase"};
    int action = -1;
    for (int i = 0; dot && i < 6; i++)
        if (strcmp(dot + 1, acts[i]) == 0)
            action = i;
    size_t elen = dot ? (size_t)(dot - type) : 0;
    if (action < 0 || elen == 0 || elen >= 64)
        return luaL_error(L, "crm.before: \"%s\" is not ENTITY.ACTION (ACTION: create, update, "
                             "delete, restore, purge, erase; ENTITY may be *)", type);
    char entity[64];
    memcpy(entity, type, elen);
    entity[elen] = '\0';
    rp__reg_t *r = new_reg(L, l, REG_HOOK, 2);
    snprintf(r->name, sizeof r->name, "%s", entity);
    r->action = (rp_action_t)action;
    r->priority = priority;
    add_reg(L, l, r);
    return 0;
}

static bool reg_name_taken(rp_lua_t *l, const char *name)
{
    for (int pass = 0; pass < 2; pass++)
        for (rp__reg_t *r = pass ? l->regs : l->pending; r; r = r->next)
            if (r->kind == REG_SUB && strcmp(r->name, name) == 0)
                return true;
    return false;
}

static int crm_on(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    const char *type = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    no_rules_for_users(L, l, "crm.on");
    need_engine(L, l, "crm.on");
    const char *name = NULL;
    bool from_start = false;
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "name");
        name = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
        lua_getfield(L, 3, "from_start");
        from_start = lua_toboolean(L, -1);
        lua_pop(L, 2);
    }
    if (!*type || strlen(type) > 90)
        return luaL_error(L, "crm.on: \"%s\" is not an event type or pattern", type);
    rp__reg_t *r = new_reg(L, l, REG_SUB, 2);
    if (name) {
        snprintf(r->name, sizeof r->name, "%s", name);
    } else {
        /* A stable default name, so the checkpoint survives restarts: script + event type. */
        char base[160];
        snprintf(base, sizeof base, "%s:%s", l->name, type);
        for (char *p = base; *p; p++)
            if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '.' || *p == '-' || *p == ':'))
                *p = '_';
        snprintf(r->name, sizeof r->name, "%s", base);
        for (int k = 2; reg_name_taken(l, r->name); k++)
            snprintf(r->name, sizeof r->name, "%.140s:%d", base, k);
    }
    snprintf(r->types, sizeof r->types, "%s", type);
    r->from_now = !from_start;
    add_reg(L, l, r);
    lua_pushstring(L, r->name);
    return 1;
}

static int crm_emit(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    const char *type = luaL_checkstring(L, 1);
    /* The options first: reading them may raise (an __index that errors), and nothing owned
     * may be held then. */
    const char *entity = NULL;
    int64_t id = 0;
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "entity");
        entity = lua_isnil(L, -1) ? NULL : lua_tostring(L, -1);
        lua_getfield(L, 3, "id");
        id = lua_isnil(L, -1) ? 0 : lua_tointeger(L, -1);
    }
    json_t *payload = lua_isnoneornil(L, 2) ? NULL
                                            : rp__lua_check_json(L, 2, "crm.emit", "the payload");
    if (payload && json_is_object(payload) == 0 && !(json_is_array(payload) &&
                                                     json_array_size(payload) == 0)) {
        json_decref(payload);
        return luaL_error(L, "crm.emit: the payload must be a table of named values");
    }
    if (json_is_array(payload)) {
        json_decref(payload);
        payload = json_object();
    }
    rp_error_t err = {0};
    int64_t seq = 0;
    int rc = l->ctx.access ? rp_events_user_may_emit(l->s, &l->ctx, type, entity, id, &err) : 0;
    if (!rc)
        rc = rp_events_emit(l->s, &l->ctx, type, entity, id, payload, &seq, &err);
    json_decref(payload);
    if (rc)
        return rp__lua_raise(L, &err);
    lua_pushinteger(L, seq);
    return 1;
}

static int crm_job(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    const char *name = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    no_rules_for_users(L, l, "crm.job");
    need_engine(L, l, "crm.job");
    rp__reg_t *r = new_reg(L, l, REG_JOB, 2);
    snprintf(r->name, sizeof r->name, "%s", name);
    add_reg(L, l, r);
    return 0;
}

static int crm_after(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    /* A job runs as the engine, unrestricted: scheduling one is a rule. */
    no_rules_for_users(L, l, "crm.after");
    const char *delay = luaL_checkstring(L, 1);
    const char *name = luaL_checkstring(L, 2);
    const char *key = NULL; /* before the payload is taken: reading it may raise */
    if (lua_istable(L, 4)) {
        lua_getfield(L, 4, "key");
        key = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
    }
    json_t *payload = lua_isnoneornil(L, 3) ? NULL
                                            : rp__lua_check_json(L, 3, "crm.after", "the payload");
    if (json_is_array(payload) && json_array_size(payload) == 0) {
        json_decref(payload);
        payload = json_object();
    }
    rp_error_t err = {0};
    int64_t ms = 0, id = 0;
    int rc = rp_parse_delay(delay, &ms, &err);
    if (!rc)
        rc = rp_jobs_schedule(l->s, &l->ctx, name, payload, rp_store_now(l->s) + ms, key, &id,
                              &err);
    json_decref(payload);
    if (rc)
        return rp__lua_raise(L, &err);
    lua_pushinteger(L, id);
    return 1;
}

static int crm_every(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    const char *cron = luaL_checkstring(L, 1);
    const char *job = luaL_checkstring(L, 2);
    no_rules_for_users(L, l, "crm.every");
    need_engine(L, l, "crm.every");
    const char *name = job, *tz = NULL;
    json_t *payload = NULL;
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "name");
        name = lua_isnil(L, -1) ? job : luaL_checkstring(L, -1);
        lua_getfield(L, 3, "tz");
        tz = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
        lua_getfield(L, 3, "payload");
        if (!lua_isnil(L, -1))
            payload = rp__lua_check_json(L, -1, "crm.every", "the payload");
    }
    json_t *zone = NULL;
    if (!tz && rp_config_get(l->s, "timezone", &zone, NULL) == 0 && json_is_string(zone))
        tz = json_string_value(zone); /* the installation's configured zone */
    rp_cron_t c;
    rp_error_t err = {0};
    if (rp_cron_parse(cron, tz, &c, &err)) {
        json_decref(payload);
        json_decref(zone);
        return rp__lua_raise(L, &err);
    }
    rp__reg_t *r = new_reg(L, l, REG_EVERY, 2);
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->types, sizeof r->types, "%s", cron);
    snprintf(r->extra, sizeof r->extra, "%s", job);
    snprintf(r->tz, sizeof r->tz, "%s", tz ? tz : "");
    json_decref(zone);
    r->payload = payload;
    add_reg(L, l, r);
    return 0;
}

static int crm_cancel(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    /* Jobs are the engine's (an SLA deadline): a user's script may not take one away. */
    no_rules_for_users(L, l, "crm.cancel");
    const char *key = luaL_checkstring(L, 1);
    rp_error_t err = {0};
    int rc = rp_jobs_cancel(l->s, key, &err);
    if (rc && rc != RP_ENOTFOUND)
        return rp__lua_raise(L, &err);
    lua_pushboolean(L, rc == 0);
    return 1;
}

/* An option of crm.events' table: an integer ≥ 0, or @p dflt when absent. */
static int64_t events_opt_int(lua_State *L, const char *key, int64_t dflt, int64_t max)
{
    lua_getfield(L, 1, key);
    int64_t v = dflt;
    if (!lua_isnil(L, -1)) {
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0 || lua_tointeger(L, -1) > max)
            luaL_error(L, "crm.events: %s must be a whole number from 0 to %I", key,
                       (lua_Integer)max);
        v = lua_tointeger(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

static const char *events_opt_text(lua_State *L, const char *key)
{
    lua_getfield(L, 1, key);
    const char *v = NULL;
    if (!lua_isnil(L, -1) && !(v = lua_tostring(L, -1)))
        luaL_error(L, "crm.events: %s must be text", key);
    lua_pop(L, 1);
    return v; /* still referenced by the options table */
}

/*
 * crm.events([{after =, type =, entity =, limit =}]) → list, next: the event log oldest first
 * after sequence number `after`, keeping those whose type matches the glob `type` (as crm.on's)
 * and whose entity is `entity`, at most `limit` (100, at most 1,000). A call reads at most
 * 10,000 events of the log: `next` is where to go on from (the `after` of the next call), nil
 * when the log was read to its end. Run for a user, only the events rp_access_event shows,
 * without hidden fields. Each event is the table a handler gets.
 */
static int crm_events(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    static const char *const known[] = {"after", "type", "entity", "limit", NULL};
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        lua_pop(L, 1);
        int ok = 0;
        for (int i = 0; known[i] && lua_type(L, -1) == LUA_TSTRING; i++)
            ok |= strcmp(lua_tostring(L, -1), known[i]) == 0;
        if (!ok)
            return luaL_error(L, "crm.events: unknown option %s (after, type, entity, limit)",
                              luaL_tolstring(L, -1, NULL));
    }
    int64_t after = events_opt_int(L, "after", 0, INT64_MAX);
    int limit = (int)events_opt_int(L, "limit", 100, 1000);
    const char *type = events_opt_text(L, "type"), *entity = events_opt_text(L, "entity");
    enum { PAGE = 1000, PAGES = 10 };
    rp_event_t *evs = malloc(sizeof *evs * PAGE);
    if (!evs)
        return luaL_error(L, "crm.events: out of memory");
    json_t *out = json_array();
    bool end = false;
    rp_error_t err = {0};
    for (int page = 0; page < PAGES && !end && (int)json_array_size(out) < limit; page++) {
        int n = rp_events_list(l->s, after, false, evs, PAGE, &err);
        if (n < 0) {
            free(evs);
            json_decref(out);
            return rp__lua_raise(L, &err);
        }
        end = n < PAGE;
        int i = 0;
        for (; i < n && (int)json_array_size(out) < limit; i++) {
            after = evs[i].seq;
            if ((type && fnmatch(type, evs[i].type ? evs[i].type : "", 0) != 0) ||
                (entity && strcmp(entity, evs[i].entity ? evs[i].entity : "") != 0))
                continue;
            json_t *ev = rp_event_json(&evs[i]);
            if (ev)
                json_object_set_new(ev, "id", json_integer(evs[i].record_id));
            if (ev && rp_access_event(l->s, l->ctx.access, ev, NULL) == 1)
                json_array_append_new(out, ev);
            else
                json_decref(ev);
        }
        end = end && i == n;
        for (int j = 0; j < n; j++)
            rp_event_clear(&evs[j]);
    }
    free(evs);
    rp__lua_push_owned(L, out);
    if (end)
        lua_pushnil(L);
    else
        lua_pushinteger(L, after);
    return 2;
}

void rp__lua_open_rules(lua_State *L)
{
    static const luaL_Reg fns[] = {{"before", crm_before}, {"on", crm_on},
                                   {"emit", crm_emit},     {"job", crm_job},
                                   {"after", crm_after},   {"every", crm_every},
                                   {"cancel", crm_cancel}, {"events", crm_events},
                                   {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
