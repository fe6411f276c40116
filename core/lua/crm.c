/*
 * crm.c — the `crm` table scripts see: records, queries, search, transactions and dry runs,
 * the clock, explain, logs, JSON and settings (the rules a script registers are in rules.c).
 * Every function checks its arguments before taking resources (a Lua error is a longjmp).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lualib.h>

#include "lua_internal.h"
#include "rapport/access.h"
#include "rapport/cron.h"
#include "rapport/time.h"
#include "rapport/settings.h"

int rp__lua_raise(lua_State *L, rp_error_t *err)
{
    rp__lua_raise_if_tripped(L);
    return luaL_error(L, "%s", err->msg[0] ? err->msg : "failed");
}

void rp__lua_push_owned(lua_State *L, json_t *j)
{
    rp__lua_push_json(L, j);
    json_decref(j);
}

static int64_t check_id(lua_State *L, int idx, const char *fname)
{
    int isnum = 0;
    lua_Integer id = lua_tointegerx(L, idx, &isnum);
    if (!isnum || id <= 0)
        return luaL_error(L, "%s: argument %d must be a record id (a positive integer)", fname,
                          idx);
    return id;
}

/* ---- records ----------------------------------------------------------------------------- */

static int get_and_push(lua_State *L, rp_lua_t *l, const char *entity, int64_t id)
{
    rp_error_t err = {0};
    json_t *r = NULL;
    if (rp_store_get_as(l->s, &l->ctx, entity, id, &r, &err))
        return rp__lua_raise(L, &err);
    rp__lua_push_owned(L, r);
    return 1;
}

static int crm_create(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    const char *entity = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    json_t *f = rp__lua_check_json(L, 2, "crm.create", "the fields");
    rp_error_t err = {0};
    json_t *stored = NULL;
    rp_created_t c;
    int rc = rp_store_create_fields(l->s, &l->ctx, entity, f, &stored, &c, &err);
    json_decref(f);
    if (rc)
        return rp__lua_raise(L, &err);
    /* The record table built directly: the same as crm.get returns, without a JSON record
     * between (a third of what crm.create cost beside the store's own work). */
    lua_createtable(L, 0, (int)json_object_size(stored) + 6);
    lua_pushinteger(L, c.id);
    lua_setfield(L, -2, "id");
    lua_pushstring(L, c.at);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "created_at");
    lua_setfield(L, -2, "updated_at");
    lua_pushinteger(L, 1);
    lua_setfield(L, -2, "version");
    lua_pushstring(L, c.actor);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "created_by");
    lua_setfield(L, -2, "updated_by");
    const char *k;
    json_t *v;
    json_object_foreach(stored, k, v) {
        if (json_is_null(v))
            continue;
        rp__lua_push_json(L, v);
        lua_setfield(L, -2, k);
    }
    json_decref(stored);
    return 1;
}

static int crm_create_many(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    const char *entity = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    json_t *batch = rp__lua_check_json(L, 2, "crm.create_many", "the records");
    if (json_is_object(batch) && json_object_size(batch) == 0) {
        json_decref(batch);
        batch = json_array();
    }
    size_t n = json_array_size(batch);
    int64_t *ids = calloc(n ? n : 1, sizeof *ids);
    rp_error_t err = {0};
    int rc = ids ? rp_store_create_many(l->s, &l->ctx, entity, batch, ids, NULL, &err)
                 : rp_error_set(&err, RP_ENOMEM, 0, "out of memory");
    json_decref(batch);
    if (rc) {
        free(ids);
        return rp__lua_raise(L, &err);
    }
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushinteger(L, ids[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    free(ids);
    return 1;
}

static int crm_get(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    const char *entity = luaL_checkstring(L, 1);
    int64_t id = check_id(L, 2, "crm.get");
    rp_error_t err = {0};
    json_t *r = NULL;
    int rc = rp_store_get_as(l->s, &l->ctx, entity, id, &r, &err);
    if (rc == RP_ENOTFOUND && err.msgcode == RP_C_NO_RECORD) {
        lua_pushnil(L);
        return 1;
    }
    if (rc)
        return rp__lua_raise(L, &err);
    rp__lua_push_owned(L, r);
    return 1;
}

static int crm_update(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    const char *entity = luaL_checkstring(L, 1);
    int64_t id = check_id(L, 2, "crm.update");
    luaL_checktype(L, 3, LUA_TTABLE);
    int64_t version = 0;
    if (!lua_isnoneornil(L, 4)) {
        luaL_checktype(L, 4, LUA_TTABLE);
        lua_getfield(L, 4, "version");
        if (!lua_isnil(L, -1)) {
            int isnum = 0;
            version = lua_tointegerx(L, -1, &isnum);
            if (!isnum || version <= 0)
                return luaL_error(L, "crm.update: opts.version must be a positive integer");
        }
        lua_pop(L, 1);
    }
    json_t *p = rp__lua_check_json(L, 3, "crm.update", "the changes");
    rp_error_t err = {0};
    int rc = rp_store_update(l->s, &l->ctx, entity, id, p, version, NULL, &err);
    json_decref(p);
    if (rc)
        return rp__lua_raise(L, &err);
    return get_and_push(L, l, entity, id);
}

static int lifecycle(lua_State *L, const char *fname,
                     int (*op)(rp_store_t *, const rp_ctx_t *, const char *, int64_t,
                               rp_error_t *))
{
    rp_lua_t *l = rp__lua_of(L);
    const char *entity = luaL_checkstring(L, 1);
    int64_t id = check_id(L, 2, fname);
    rp_error_t err = {0};
    if (op(l->s, &l->ctx, entity, id, &err))
        return rp__lua_raise(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

static int crm_delete(lua_State *L)
{
    return lifecycle(L, "crm.delete", rp_store_delete);
}
static int crm_restore(lua_State *L)
{
    return lifecycle(L, "crm.restore", rp_store_restore);
}
static int crm_purge(lua_State *L)
{
    return lifecycle(L, "crm.purge", rp_store_purge);
}

/* ---- queries ----------------------------------------------------------------------------- */

static int crm_find(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    const char *entity = luaL_checkstring(L, 1);
    rp_query_t q = {.entity = entity, .access = l->ctx.access};
    const char *fields[65] = {0};
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_getfield(L, 2, "order");
        q.order = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
        lua_getfield(L, 2, "limit");
        q.limit = lua_isnil(L, -1) ? 0 : luaL_checkinteger(L, -1);
        lua_getfield(L, 2, "offset");
        q.offset = lua_isnil(L, -1) ? 0 : luaL_checkinteger(L, -1);
        lua_getfield(L, 2, "after");
        q.after = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
        lua_getfield(L, 2, "deleted");
        q.with_deleted = lua_toboolean(L, -1);
        lua_getfield(L, 2, "fields");
        if (lua_istable(L, -1)) {
            int n = (int)lua_rawlen(L, -1);
            for (int i = 0; i < n && i < 64; i++) {
                lua_rawgeti(L, -1, i + 1);
                fields[i] = luaL_checkstring(L, -1);
                lua_pop(L, 1); /* the string stays alive in the fields table */
            }
            q.fields = fields;
        }
        lua_pop(L, 1);
        lua_getfield(L, 2, "where");
    } else {
        lua_pushnil(L);
    }
    json_t *where = lua_isnil(L, -1) ? NULL : rp__lua_check_json(L, -1, "crm.find", "where");
    q.where = where;
    json_t *rows = NULL;
    char *next = NULL;
    rp_error_t err = {0};
    int rc = rp_store_find(l->s, &q, &rows, &next, &err);
    json_decref(where);
    if (rc)
        return rp__lua_raise(L, &err);
    rp__lua_push_owned(L, rows);
    if (next)
        lua_pushstring(L, next);
    else
        lua_pushnil(L);
    free(next);
    return 2;
}

static int crm_count(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    const char *entity = luaL_checkstring(L, 1);
    json_t *where = lua_isnoneornil(L, 2) ? NULL : rp__lua_check_json(L, 2, "crm.count", "where");
    bool deleted = false;
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "deleted");
        deleted = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    int64_t n = 0;
    rp_error_t err = {0};
    int rc = rp_store_count_as(l->s, l->ctx.access, entity, where, deleted, &n, &err);
    json_decref(where);
    if (rc)
        return rp__lua_raise(L, &err);
    lua_pushinteger(L, n);
    return 1;
}

/* Strings at opts[key]: one string, or an array of them, into @p out (NULL-terminated; at
 * most @p max). The strings stay alive in the opts table. */
static void agg_list(lua_State *L, int opts, const char *key, const char **out, int max)
{
    lua_getfield(L, opts, key);
    if (lua_type(L, -1) == LUA_TSTRING) {
        out[0] = lua_tostring(L, -1);
    } else if (lua_istable(L, -1)) {
        int n = (int)lua_rawlen(L, -1);
        if (n > max)
            luaL_error(L, "crm.aggregate: %s has %d entries, more than %d", key, n, max);
        for (int i = 0; i < n; i++) {
            lua_rawgeti(L, -1, i + 1);
            if (lua_type(L, -1) != LUA_TSTRING)
                luaL_error(L, "crm.aggregate: %s[%d] must be a string", key, i + 1);
            out[i] = lua_tostring(L, -1);
            lua_pop(L, 1);
        }
    } else if (!lua_isnil(L, -1)) {
        luaL_error(L, "crm.aggregate: %s must be a string or an array of strings", key);
    }
    lua_pop(L, 1);
}

/* crm.aggregate(entity, {group_by=…, measures=…, where=…, zone=…, order=…, limit=…,
 * offset=…, deleted=…}) -> array of rows. At most 100,000 rows a call (1,000 unless limit
 * says), built in C before Lua sees them: page with offset beyond. */
static int crm_aggregate(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    rp_aggregate_t q = {.entity = luaL_checkstring(L, 1), .access = l->ctx.access,
                        .limit = 1000};
    const char *groups[RP_AGG_MAX_GROUPS + 2] = {0};
    const char *measures[RP_AGG_MAX_MEASURES + 2] = {0};
    json_t *where = NULL;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        /* One more than the cap, so the store says what the cap is. */
        agg_list(L, 2, "group_by", groups, RP_AGG_MAX_GROUPS + 1);
        agg_list(L, 2, "measures", measures, RP_AGG_MAX_MEASURES + 1);
        lua_getfield(L, 2, "zone");
        q.zone = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
        lua_getfield(L, 2, "order");
        q.order = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
        lua_getfield(L, 2, "limit");
        q.limit = lua_isnil(L, -1) ? 1000 : luaL_checkinteger(L, -1);
        lua_getfield(L, 2, "offset");
        q.offset = lua_isnil(L, -1) ? 0 : luaL_checkinteger(L, -1);
        lua_getfield(L, 2, "deleted");
        q.with_deleted = lua_toboolean(L, -1);
        lua_pop(L, 5);
        if (q.limit < 1 || q.limit > 100000)
            return luaL_error(L, "crm.aggregate: limit must be 1 to 100000 (page with offset)");
        lua_getfield(L, 2, "where");
        where = lua_isnil(L, -1) ? NULL : rp__lua_check_json(L, -1, "crm.aggregate", "where");
        lua_pop(L, 1);
    }
    q.group_by = groups;
    q.measures = measures;
    q.where = where;
    json_t *rows = NULL;
    rp_error_t err = {0};
    int rc = rp_store_aggregate(l->s, &q, &rows, &err);
    json_decref(where);
    if (rc)
        return rp__lua_raise(L, &err);
    rp__lua_push_owned(L, rows);
    return 1;
}

static int crm_search(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    const char *text = luaL_checkstring(L, 1);
    const char *entity = NULL;
    int limit = 20;
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "entity");
        entity = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
        lua_getfield(L, 2, "limit");
        limit = lua_isnil(L, -1) ? 20 : (int)luaL_checkinteger(L, -1);
    }
    json_t *hits = NULL;
    rp_error_t err = {0};
    if (rp_store_search_as(l->s, l->ctx.access, text, entity, limit, &hits, &err))
        return rp__lua_raise(L, &err);
    rp__lua_push_owned(L, hits);
    return 1;
}

static int crm_explain(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    const char *entity = luaL_checkstring(L, 1);
    int64_t id = check_id(L, 2, "crm.explain");
    const char *field = luaL_checkstring(L, 3);
    json_t *h = NULL;
    rp_error_t err = {0};
    if (rp_events_explain_as(l->s, &l->ctx, entity, id, field, &h, &err))
        return rp__lua_raise(L, &err);
    rp__lua_push_owned(L, h);
    return 1;
}

static int crm_history(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    const char *entity = luaL_checkstring(L, 1);
    int64_t id = check_id(L, 2, "crm.history");
    enum { MAX = 1000 };
    rp_event_t *evs = malloc(sizeof *evs * MAX);
    if (!evs)
        return luaL_error(L, "out of memory");
    rp_error_t err = {0};
    int n = rp_events_for_record(l->s, entity, id, 0, evs, MAX, &err);
    if (n < 0) {
        free(evs);
        return rp__lua_raise(L, &err);
    }
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        json_t *ev = rp_event_json(&evs[i]);
        if (ev) /* the record's id also as `id`, as in the table a handler gets */
            json_object_set_new(ev, "id", json_integer(evs[i].record_id));
        /* Run for a user: the events of records in their scope, without hidden fields. */
        if (ev && rp_access_event(l->s, l->ctx.access, ev, NULL) == 1)
            json_array_append_new(arr, ev);
        else
            json_decref(ev);
        rp_event_clear(&evs[i]);
    }
    free(evs);
    rp__lua_push_owned(L, arr);
    return 1;
}

/* ---- schema ------------------------------------------------------------------------------ */

static int crm_schema_define(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    const char *entity = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    json_t *spec = rp__lua_check_json(L, 2, "crm.schema.define", "the specification");
    rp_error_t err = {0};
    int rc = rp_store_define(l->s, &l->ctx, entity, spec, l->actor, &err);
    json_decref(spec);
    if (rc)
        return rp__lua_raise(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

static int crm_schema_add_field(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    const char *entity = luaL_checkstring(L, 1);
    const char *field = luaL_checkstring(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    json_t *spec = rp__lua_check_json(L, 3, "crm.schema.add_field", "the field specification");
    rp_error_t err = {0};
    int rc = rp_store_add_field(l->s, &l->ctx, entity, field, spec, l->actor, &err);
    json_decref(spec);
    if (rc)
        return rp__lua_raise(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

static int crm_schema_get(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    const char *entity = luaL_optstring(L, 1, NULL);
    rp_error_t err = {0};
    json_t *sch = rp_store_schema(l->s, entity, &err);
    if (!sch)
        return rp__lua_raise(L, &err);
    rp__lua_push_owned(L, sch);
    return 1;
}

/* ---- transactions and dry runs ------------------------------------------------------------ */

/* Calls the function on top of @p L with rp__lua_pcall(), which works on l->L: point that at
 * the thread that called us, since in a coroutine the function and its results are on the
 * coroutine's stack, not the main thread's. */
static int pcall_here(lua_State *L, rp_lua_t *l, int nargs, int nres, rp_error_t *err)
{
    lua_State *main = l->L;
    l->L = L;
    int rc = rp__lua_pcall(l, nargs, nres, err);
    l->L = main;
    return rc;
}

static int call_fn_in_txn(lua_State *L, rp_lua_t *l, bool keep, const char *fname)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_settop(L, 1);
    rp_error_t err = {0};
    if (rp_store_begin(l->s, &err))
        return rp__lua_raise(L, &err);
    int base = lua_gettop(L);
    lua_pushvalue(L, 1);
    int rc = pcall_here(L, l, 0, LUA_MULTRET, &err);
    if (rc || !keep) {
        rp_store_rollback(l->s, NULL);
        if (rc) {
            /* Pass the message on as it is: it already has file:line. */
            lua_pushstring(L, err.msg);
            return lua_error(L);
        }
        return lua_gettop(L) - base;
    }
    if (rp_store_commit(l->s, &err))
        return rp__lua_raise(L, &err);
    (void)fname;
    return lua_gettop(L) - base;
}

static int crm_transaction(lua_State *L)
{
    return call_fn_in_txn(L, rp__lua_of(L), true, "crm.transaction");
}

/* The jobs of a list from rp_jobs_list() by their id (borrowed references). */
static json_t *jobs_by_id(json_t *jobs)
{
    json_t *by = json_object();
    size_t i;
    json_t *j;
    json_array_foreach(jobs, i, j) {
        char key[24];
        snprintf(key, sizeof key, "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(j, "id")));
        json_object_set(by, key, j);
    }
    return by;
}

static json_t *job_by_id(json_t *by, json_t *job)
{
    char key[24];
    snprintf(key, sizeof key, "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(job, "id")));
    return json_object_get(by, key);
}

static bool is_write_action(const char *action)
{
    static const char *const writes[] = {"created", "updated", "deleted", "restored", "purged"};
    for (size_t i = 0; i < sizeof writes / sizeof *writes; i++)
        if (strcmp(action, writes[i]) == 0)
            return true;
    return false;
}

static int crm_dry_run(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_settop(L, 1);
    int64_t seq0 = rp_events_last_seq(l->s);
    rp_error_t err = {0};
    /* The jobs before: those gone after were cancelled (or moved, by their key), those new
     * after were scheduled. Ids are never an order of creation (they follow due time), but a
     * committed job's id is never reused. */
    json_t *before = NULL;
    if (rp_jobs_list(l->s, NULL, &before, &err))
        return rp__lua_raise(L, &err);
    if (rp_store_begin(l->s, &err)) {
        json_decref(before);
        return rp__lua_raise(L, &err);
    }
    lua_pushvalue(L, 1);
    /* Its writes are rolled back; a mail fetched or sent inside it could not be. */
    bool was_offline = rp_store_set_offline(l->s, true);
    int rc = pcall_here(L, l, 0, 1, &err);
    rp_store_set_offline(l->s, was_offline);
    /* What it would have changed, read inside the transaction before it is undone. */
    json_t *records = json_array(), *events = json_array(), *jobs = json_array();
    enum { MAX = 10000 };
    rp_event_t *evs = rc ? NULL : malloc(sizeof *evs * MAX);
    int n = evs ? rp_events_list(l->s, seq0, false, evs, MAX, NULL) : 0;
    for (int i = 0; i < n; i++) {
        json_t *ev = rp_event_json(&evs[i]);
        /* Run for a user: what the user may see of it (the records in their scope, without
         * hidden fields: a hook's change to one must not show through the dry run). */
        if (!ev || rp_access_event(l->s, l->ctx.access, ev, NULL) != 1) {
            json_decref(ev);
            rp_event_clear(&evs[i]);
            continue;
        }
        json_array_append(events, ev);
        const char *action = strrchr(evs[i].type, '.');
        action = action ? action + 1 : "";
        /* A custom event about a record (crm.emit with an id) is an event, not a change. */
        if (evs[i].record_id > 0 && is_write_action(action)) {
            json_array_append_new(records, json_pack("{s:s,s:I,s:s,s:O}", "entity",
                                                     evs[i].entity, "id",
                                                     (json_int_t)evs[i].record_id, "action",
                                                     action, "changes",
                                                     json_object_get(ev, "changes")));
        }
        json_decref(ev);
        rp_event_clear(&evs[i]);
    }
    free(evs);
    json_t *all = NULL, *cancelled = json_array();
    if (!rc && rp_jobs_list(l->s, NULL, &all, NULL) == 0) {
        size_t i, k;
        json_t *j, *b;
        json_t *was = jobs_by_id(before), *is = jobs_by_id(all);
        json_array_foreach(all, i, j) {
            if (job_by_id(was, j))
                continue;
            json_array_append(jobs, j);
            if (l->ctx.access) /* for a user: that a job is due, not what rules put in it */
                json_object_del(j, "payload");
        }
        json_array_foreach(before, k, b) {
            const char *st = json_string_value(json_object_get(b, "state"));
            if (!st || strcmp(st, "pending") != 0)
                continue;
            j = job_by_id(is, b);
            const char *now = j ? json_string_value(json_object_get(j, "state")) : NULL;
            if (!now || strcmp(now, "pending") != 0) {
                json_array_append(cancelled, b);
                if (l->ctx.access)
                    json_object_del(b, "payload");
            }
        }
        json_decref(was);
        json_decref(is);
    }
    json_decref(all);
    json_decref(before);
    rp_store_rollback(l->s, NULL);
    if (rc) {
        json_decref(records);
        json_decref(events);
        json_decref(jobs);
        json_decref(cancelled);
        lua_pushstring(L, err.msg);
        return lua_error(L);
    }
    json_t *changes = json_pack("{s:o,s:o,s:o,s:o}", "records", records, "events", events, "jobs",
                                jobs, "cancelled_jobs", cancelled);
    rp__lua_push_owned(L, changes);
    return 2; /* the function's result, then what it would have changed */
}

/* ---- time, logs, JSON --------------------------------------------------------------------- */

static int crm_now(lua_State *L)
{
    char buf[32];
    rp_lua_fmt_now(rp__lua_of(L), buf);
    lua_pushstring(L, buf);
    return 1;
}

static int crm_now_ms(lua_State *L)
{
    lua_pushinteger(L, rp_store_now(rp__lua_of(L)->s));
    return 1;
}

/* crm.time(ms) -> "YYYY-MM-DDTHH:MM:SS.sssZ" */
static int crm_time(lua_State *L)
{
    lua_Integer ms = luaL_checkinteger(L, 1);
    if (ms < RP_TIME_MIN || ms > RP_TIME_MAX)
        return luaL_error(L, "crm.time: %I ms is outside the years 0 to 9999", ms);
    char out[RP_TIME_LEN];
    rp_time_format(ms, out);
    lua_pushstring(L, out);
    return 1;
}

/* crm.time_ms("2026-01-01T10:00:00.000Z") -> milliseconds since the epoch (a time as the
 * store writes it, or a date "YYYY-MM-DD", taken at midnight UTC). */
static int crm_time_ms(lua_State *L)
{
    const char *t = luaL_checkstring(L, 1);
    int64_t ms;
    if (rp_time_parse(t, &ms, NULL))
        return luaL_error(L, "crm.time_ms: \"%s\" is not a time as the store writes it "
                             "(YYYY-MM-DDTHH:MM:SS.sssZ) nor a date (YYYY-MM-DD)", t);
    lua_pushinteger(L, (lua_Integer)ms);
    return 1;
}

/* crm.delay_ms("1h30m") -> 5400000 */
static int crm_delay_ms(lua_State *L)
{
    int64_t ms = 0;
    rp_error_t err = {0};
    if (rp_parse_delay(luaL_checkstring(L, 1), &ms, &err))
        return rp__lua_raise(L, &err);
    lua_pushinteger(L, ms);
    return 1;
}

static int crm_clock_advance(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    const char *delay = luaL_checkstring(L, 1);
    if (!l->e || !rp_sched_is_virtual(l->e))
        return luaL_error(L, "crm.clock.advance works only on a virtual clock (rapport test)");
    rp_error_t err = {0};
    int64_t ms = 0;
    if (rp_parse_delay(delay, &ms, &err) || rp_sched_advance(l->e, ms, &err))
        return rp__lua_raise(L, &err);
    return crm_now(L);
}

static int log_at(lua_State *L, const char *level)
{
    /* The count before luaL_buffinit, which may push a placeholder of its own. */
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, ' ');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    rp__lua_log(rp__lua_of(L), level, lua_tostring(L, -1));
    return 0;
}
static int crm_log_info(lua_State *L)
{
    return log_at(L, "info");
}
static int crm_log_warn(lua_State *L)
{
    return log_at(L, "warn");
}
static int crm_log_error(lua_State *L)
{
    return log_at(L, "error");
}

static int crm_json_encode(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    json_t *j = rp__lua_check_json(L, 1, "crm.json.encode", "the value");
    /* Writing JSON is one C call that may grow text sixfold (a control character becomes
     * \u0001): measured, 20 MB of them held a call 1.9 s. */
    if (l->c_text > RP_LUA_MAX_JSON) {
        json_decref(j);
        return luaL_error(L, "crm.json.encode: RP-E%d: a value holding %I bytes of text; the "
                          "limit is %d", RP_C_CAP, (lua_Integer)l->c_text, RP_LUA_MAX_JSON);
    }
    char *d = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
    json_decref(j);
    if (!d)
        return luaL_error(L, "crm.json.encode: out of memory");
    lua_pushstring(L, d);
    free(d);
    return 1;
}

static int crm_json_decode(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    if (n > RP_LUA_MAX_JSON)
        return luaL_error(L, "crm.json.decode: RP-E%d: a text of %I bytes; the limit is %d",
                          RP_C_CAP, (lua_Integer)n, RP_LUA_MAX_JSON);
    json_error_t je;
    json_t *j = json_loadb(s, n, JSON_DECODE_ANY, &je);
    if (!j)
        return luaL_error(L, "crm.json.decode: line %d, column %d: %s", je.line, je.column,
                          je.text);
    rp__lua_push_owned(L, j);
    return 1;
}

/* crm.config(key [, default]): a setting, through the one settings reader (settings.h):
 * RAPPORT_<KEY> in the environment for one run, else the database's value. */
static int crm_config(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    const char *key = luaL_checkstring(L, 1);
    json_t *v = NULL;
    rp_error_t err = {0};
    int rc = rp_setting_get(l->s, key, &v, &err);
    if (rc == RP_ENOTFOUND) {
        lua_settop(L, 2);
        return 1; /* the default, or nil */
    }
    if (rc)
        return rp__lua_raise(L, &err);
    rp__lua_push_owned(L, v);
    return 1;
}

/* Multi-step workflows: each step is a job named "<workflow>.<step>", the state between steps
 * travels in the job's payload, so a restart resumes at the right step. */
static const char prelude[] =
    "local crm = ...\n"
    "crm.workflow = setmetatable({}, {__call = function(_, name, steps)\n"
    "  if type(name) ~= 'string' or type(steps) ~= 'table' then\n"
    "    error('crm.workflow(name, {step = function(state, job) ... end, ...})', 2)\n"
    "  end\n"
    "  for step, fn in pairs(steps) do\n"
    "    crm.job(name .. '.' .. step, function(p, job)\n"
    "      local nxt, delay, state = fn(p.state or {}, job)\n"
    "      if nxt ~= nil then\n"
    "        if steps[nxt] == nil then error('workflow ' .. name .. ': no step ' .. tostring(nxt)) end\n"
    "        crm.after(delay or '0s', name .. '.' .. nxt, {state = state or p.state or {}},\n"
    "                  job.key and {key = job.key} or nil)\n"
    "      end\n"
    "    end)\n"
    "  end\n"
    "end})\n"
    "local has_job = crm.has_job\n"
    "crm.has_job = nil\n"
    "function crm.workflow.start(name, step, state, opts)\n"
    "  if type(name) ~= 'string' or type(step) ~= 'string' then\n"
    "    error('crm.workflow.start(name, step [, state [, opts]])', 2)\n"
    "  end\n"
    "  if has_job(name .. '.' .. step) == false then\n"
    "    error('workflow ' .. name .. ' has no step ' .. step .. ' (is the script that defines it'\n"
    "          .. ' loaded?)', 2)\n"
    "  end\n"
    "  local key = opts and opts.key\n"
    "  return crm.after(opts and opts.delay or '0s', name .. '.' .. step,\n"
    "                   {state = state or {}, key = key}, key and {key = key} or nil)\n"
    "end\n";

/* crm.<ns>.<name>(…) for an extension: arguments in as a JSON array, the result out as JSON. */
static int ext_call(lua_State *L)
{
    const rp_lua_ext_t *x = lua_touserdata(L, lua_upvalueindex(1));
    int n = lua_gettop(L);
    json_t *args = json_array();
    for (int i = 1; i <= n; i++) {
        const char *why = "an unsupported value";
        json_t *v = rp__lua_to_json(L, i, &why);
        if (!v) {
            json_decref(args);
            return luaL_error(L, "crm.%s%s%s: argument %d must be plain data, not %s", x->ns,
                              *x->ns ? "." : "",
                              x->name, i, why);
        }
        json_array_append_new(args, v);
    }
    char *text = json_dumps(args, JSON_COMPACT);
    json_decref(args);
    char *result = NULL, msg[512] = "";
    int rc = text ? x->fn(x->ud, &rp__lua_of(L)->ctx, text, &result, msg, sizeof msg) : RP_ENOMEM;
    free(text);
    if (rc) {
        free(result);
        return luaL_error(L, "crm.%s%s%s: %s", x->ns, *x->ns ? "." : "", x->name,
                          msg[0] ? msg : "failed");
    }
    if (!result)
        return 0;
    json_error_t je;
    json_t *j = json_loads(result, JSON_DECODE_ANY, &je);
    free(result);
    if (!j)
        return luaL_error(L, "crm.%s%s%s returned text that is not JSON: %s", x->ns,
                          *x->ns ? "." : "", x->name,
                          je.text);
    rp__lua_push_owned(L, j);
    return 1;
}

static void open_ext(lua_State *L, const rp_lua_ext_t *x)
{
    for (; x; x = x->next) {
        if (!x->ns || !*x->ns) {
            /* crm.<name> itself, never in place of one of the engine's own functions. */
            lua_getfield(L, -1, x->name);
            bool taken = !lua_isnil(L, -1);
            lua_pop(L, 1);
            if (!taken) {
                lua_pushlightuserdata(L, (void *)x);
                lua_pushcclosure(L, ext_call, 1);
                lua_setfield(L, -2, x->name);
            }
            continue;
        }
        lua_getfield(L, -1, x->ns);
        if (!lua_istable(L, -1)) {
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushvalue(L, -1);
            lua_setfield(L, -3, x->ns);
        }
        lua_pushlightuserdata(L, (void *)x);
        lua_pushcclosure(L, ext_call, 1);
        lua_setfield(L, -2, x->name);
        lua_pop(L, 1);
    }
}

/* Whether a job handler is registered: true/false, or nil without an engine. For the
 * prelude only (it takes the function away from the crm table). */
static int crm_has_job(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    if (!l->e)
        return 0;
    const char *name = luaL_checkstring(L, 1);
    bool has = rp_sched_has_handler(l->e, name);
    /* Or registered by the chunk that is running, applied when it ends. */
    for (rp__reg_t *r = l->pending; r && !has; r = r->next)
        has = r->kind == REG_JOB && strcmp(r->name, name) == 0;
    lua_pushboolean(L, has);
    return 1;
}

/* The settings that govern the sandbox, who may do what, and what the engine lets in or out:
 * a rule that could change them could lift its own limits for good, grant itself a role, or
 * open webhooks to the cloud's metadata address. Only an administrator sets them, at the
 * command line or the REPL. */
static const char *const guarded_settings[] = {"lua.", "roles.", "http.", "webhooks.",
                                               "auth.", "security.", "plugins.", "scripts.",
                                               "users.", "tokens.", "db.", NULL};

static const char *guarded_setting(const char *key)
{
    for (int i = 0; guarded_settings[i]; i++)
        if (strncmp(key, guarded_settings[i], strlen(guarded_settings[i])) == 0)
            return guarded_settings[i];
    return NULL;
}

/* crm.set_config(key, value): keeps a setting (nil unsets it); a config.changed event. */
static int crm_set_config(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    const char *key = luaL_checkstring(L, 1);
    /* A script run for a user changes no setting at all: settings steer the rules, which run
     * as the engine (rules.assignment.users names who owns new records). */
    if (l->o.access)
        return luaL_error(L, "crm.set_config: RP-E%d: a script run for a user (--as) may not "
                          "change settings; an administrator sets \"%s\" with `rapport config "
                          "set`", RP_C_DENIED, key);
    const char *guard = guarded_setting(key);
    if (guard && l->o.sandbox)
        return luaL_error(L, "crm.set_config: RP-E%d: \"%s\" is a %s* setting, which governs "
                          "the sandbox, permissions or security: a script may not change it; "
                          "an administrator sets it with `rapport config set`", RP_C_DENIED, key,
                          guard);
    json_t *v = lua_isnoneornil(L, 2) ? NULL : rp__lua_check_json(L, 2, "crm.set_config",
                                                                     "the value");
    rp_error_t err = {0};
    int rc = strncmp(key, "roles.", 6) == 0 ? rp_access_role_set(l->s, &l->ctx, key + 6, v, &err)
                                            : rp_config_set(l->s, &l->ctx, key, v, &err);
    json_decref(v);
    if (rc == RP_ENOTFOUND && !v)
        return 0; /* unsetting what is not set */
    if (rc)
        return rp__lua_raise(L, &err);
    return 0;
}

int rp__lua_open_crm(rp_lua_t *l, rp_error_t *err)
{
    lua_State *L = l->L;
    static const luaL_Reg top[] = {
        {"create", crm_create},   {"create_many", crm_create_many}, {"get", crm_get},
        {"update", crm_update},   {"delete", crm_delete},           {"restore", crm_restore},
        {"purge", crm_purge},     {"find", crm_find},               {"count", crm_count},
        {"aggregate", crm_aggregate},
        {"search", crm_search},   {"explain", crm_explain},         {"history", crm_history},
        {"transaction", crm_transaction}, {"dry_run", crm_dry_run},
        {"now", crm_now},         {"now_ms", crm_now_ms},           {"config", crm_config},
        {"set_config", crm_set_config}, {"has_job", crm_has_job}, {"time", crm_time},
        {"delay_ms", crm_delay_ms},       {"time_ms", crm_time_ms},         {NULL, NULL}};
    static const luaL_Reg schema[] = {{"define", crm_schema_define},
                                      {"add_field", crm_schema_add_field},
                                      {"get", crm_schema_get},
                                      {NULL, NULL}};
    static const luaL_Reg logs[] = {
        {"info", crm_log_info}, {"warn", crm_log_warn}, {"error", crm_log_error}, {NULL, NULL}};
    static const luaL_Reg json[] = {
        {"encode", crm_json_encode}, {"decode", crm_json_decode}, {NULL, NULL}};
    static const luaL_Reg clock[] = {{"advance", crm_clock_advance}, {NULL, NULL}};
    luaL_newlib(L, top);
    rp__lua_open_rules(L);
    rp__lua_open_erase(L);
    luaL_newlib(L, schema);
    rp__lua_open_schema(L);
    lua_setfield(L, -2, "schema");
    luaL_newlib(L, logs);
    lua_setfield(L, -2, "log");
    luaL_newlib(L, json);
    lua_setfield(L, -2, "json");
    luaL_newlib(L, clock);
    lua_setfield(L, -2, "clock");
    lua_pushlightuserdata(L, rp__lua_null);
    lua_setfield(L, -2, "null");
    open_ext(L, l->o.ext);
    lua_pushvalue(L, -1);
    lua_setglobal(L, "crm");
    if (luaL_loadbufferx(L, prelude, sizeof prelude - 1, "=crm.workflow", "t") != LUA_OK) {
        rp_error_set(err, RP_EINVAL, 0, "%s", lua_tostring(L, -1));
        lua_pop(L, 2);
        return RP_EINVAL;
    }
    lua_insert(L, -2);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        rp_error_set(err, RP_EINVAL, 0, "%s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return RP_EINVAL;
    }
    return 0;
}
