/*
 * crm.c — the `crm` table scripts see: records, queries, search, transactions and dry runs,
 * before-hooks, event handlers, jobs and schedules, the clock, explain, logs and JSON.
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

static int raise(lua_State *L, rp_error_t *err)
{
    rp__lua_raise_if_tripped(L);
    return luaL_error(L, "%s", err->msg[0] ? err->msg : "failed");
}

/* Pushes a fresh JSON value to Lua and drops the reference. */
static void push_owned(lua_State *L, json_t *j)
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
        return raise(L, &err);
    push_owned(L, r);
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
        return raise(L, &err);
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
        return raise(L, &err);
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
        return raise(L, &err);
    push_owned(L, r);
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
        return raise(L, &err);
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
        return raise(L, &err);
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
        return raise(L, &err);
    push_owned(L, rows);
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
        return raise(L, &err);
    lua_pushinteger(L, n);
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
        return raise(L, &err);
    push_owned(L, hits);
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
        return raise(L, &err);
    push_owned(L, h);
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
        return raise(L, &err);
    }
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        json_t *ev = rp_event_json(&evs[i]);
        /* Run for a user: the events of records in their scope, without hidden fields. */
        if (ev && rp_access_event(l->s, l->ctx.access, ev, NULL) == 1)
            json_array_append_new(arr, ev);
        else
            json_decref(ev);
        rp_event_clear(&evs[i]);
    }
    free(evs);
    push_owned(L, arr);
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
        return raise(L, &err);
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
        return raise(L, &err);
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
        return raise(L, &err);
    push_owned(L, sch);
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
        return raise(L, &err);
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
        return raise(L, &err);
    (void)fname;
    return lua_gettop(L) - base;
}

static int crm_transaction(lua_State *L)
{
    return call_fn_in_txn(L, rp__lua_of(L), true, "crm.transaction");
}

static int64_t max_job_id(rp_store_t *s)
{
    json_t *jobs = NULL;
    int64_t max = 0;
    if (rp_jobs_list(s, NULL, &jobs, NULL) == 0) {
        size_t i;
        json_t *j;
        json_array_foreach(jobs, i, j) {
            int64_t id = json_integer_value(json_object_get(j, "id"));
            max = id > max ? id : max;
        }
    }
    json_decref(jobs);
    return max;
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
    int64_t seq0 = rp_events_last_seq(l->s), job0 = max_job_id(l->s);
    rp_error_t err = {0};
    /* The pending jobs before: those gone after were cancelled (or moved, by their key). */
    json_t *before = NULL;
    if (rp_jobs_list(l->s, NULL, &before, &err))
        return raise(L, &err);
    if (rp_store_begin(l->s, &err)) {
        json_decref(before);
        return raise(L, &err);
    }
    lua_pushvalue(L, 1);
    int rc = pcall_here(L, l, 0, 1, &err);
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
        json_array_foreach(all, i, j) {
            if (json_integer_value(json_object_get(j, "id")) <= job0)
                continue;
            json_array_append(jobs, j);
            if (l->ctx.access) /* for a user: that a job is due, not what rules put in it */
                json_object_del(j, "payload");
        }
        json_array_foreach(before, k, b) {
            const char *st = json_string_value(json_object_get(b, "state"));
            if (!st || strcmp(st, "pending") != 0)
                continue;
            bool still = false;
            json_array_foreach(all, i, j) {
                if (json_equal(json_object_get(j, "id"), json_object_get(b, "id"))) {
                    const char *now = json_string_value(json_object_get(j, "state"));
                    still = now && strcmp(now, "pending") == 0;
                    break;
                }
            }
            if (!still) {
                json_array_append(cancelled, b);
                if (l->ctx.access)
                    json_object_del(b, "payload");
            }
        }
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
    push_owned(L, changes);
    return 2; /* the function's result, then what it would have changed */
}

/* ---- registrations ----------------------------------------------------------------------- */

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
    static const char *const acts[] = {"create", "update", "delete", "restore", "purge"};
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

/* The key under which an event table keeps its changes as JSON text until they are read. */
static const char changes_key = 0;

/* __index of event tables: decodes `changes` on first use. Most handlers look at the type and
 * the record only, and decoding every event's JSON was a third of the cost of delivering it. */
static int event_index(lua_State *L)
{
    if (lua_type(L, 2) != LUA_TSTRING || strcmp(lua_tostring(L, 2), "changes") != 0)
        return 0;
    lua_rawgetp(L, 1, &changes_key);
    size_t n;
    const char *text = lua_tolstring(L, -1, &n);
    json_t *j = text ? json_loadb(text, n, 0, NULL) : NULL;
    push_owned(L, j ? j : json_object());
    lua_pushvalue(L, -1);
    lua_setfield(L, 1, "changes"); /* decoded once; later reads are plain field reads */
    return 1;
}

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
    lua_pushstring(L, ev->changes ? ev->changes : "{}");
    lua_rawsetp(L, -2, &changes_key);
    if (luaL_newmetatable(L, "rapport.event")) {
        lua_pushcfunction(L, event_index);
        lua_setfield(L, -2, "__index");
        lua_pushboolean(L, 0); /* shared by every event: scripts may not reach or change it */
        lua_setfield(L, -2, "__metatable");
    }
    lua_setmetatable(L, -2);
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
    push_owned(L, p ? p : json_object());
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
    static const char *const acts[] = {"create", "update", "delete", "restore", "purge"};
    int action = -1;
    for (int i = 0; dot && i < 5; i++)
        if (strcmp(dot + 1, acts[i]) == 0)
            action = i;
    size_t elen = dot ? (size_t)(dot - type) : 0;
    if (action < 0 || elen == 0 || elen >= 64)
        return luaL_error(L, "crm.before: \"%s\" is not ENTITY.ACTION (ACTION: create, update, "
                             "delete, restore, purge; ENTITY may be *)", type);
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
        return raise(L, &err);
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
        return raise(L, &err);
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
        return raise(L, &err);
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
        return raise(L, &err);
    lua_pushboolean(L, rc == 0);
    return 1;
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
        return raise(L, &err);
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
        return raise(L, &err);
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
    push_owned(L, j);
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
        return raise(L, &err);
    push_owned(L, v);
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
            return luaL_error(L, "crm.%s.%s: argument %d must be plain data, not %s", x->ns,
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
        return luaL_error(L, "crm.%s.%s: %s", x->ns, x->name, msg[0] ? msg : "failed");
    }
    if (!result)
        return 0;
    json_error_t je;
    json_t *j = json_loads(result, JSON_DECODE_ANY, &je);
    free(result);
    if (!j)
        return luaL_error(L, "crm.%s.%s returned text that is not JSON: %s", x->ns, x->name,
                          je.text);
    push_owned(L, j);
    return 1;
}

static void open_ext(lua_State *L, const rp_lua_ext_t *x)
{
    for (; x; x = x->next) {
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
                                               "users.", "tokens.", NULL};

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
        return raise(L, &err);
    return 0;
}

int rp__lua_open_crm(rp_lua_t *l, rp_error_t *err)
{
    lua_State *L = l->L;
    static const luaL_Reg top[] = {
        {"create", crm_create},   {"create_many", crm_create_many}, {"get", crm_get},
        {"update", crm_update},   {"delete", crm_delete},           {"restore", crm_restore},
        {"purge", crm_purge},     {"find", crm_find},               {"count", crm_count},
        {"search", crm_search},   {"explain", crm_explain},         {"history", crm_history},
        {"transaction", crm_transaction}, {"dry_run", crm_dry_run}, {"before", crm_before},
        {"on", crm_on},           {"emit", crm_emit},               {"job", crm_job},
        {"after", crm_after},     {"every", crm_every},             {"cancel", crm_cancel},
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
    luaL_newlib(L, schema);
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
