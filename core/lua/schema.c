/*
 * schema.c — the schema calls of the crm API that scripts make at every start:
 * crm.schema.declare, and the versioned migrations (crm.schema.migration) with the changes a
 * migration makes (rename_field, change_type, drop_field, drop_entity).
 */
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "lua_internal.h"

static int crm_schema_declare(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    const char *entity = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    json_t *spec = rp__lua_check_json(L, 2, "crm.schema.declare", "the specification");
    rp_error_t err = {0};
    json_t *done = NULL;
    int rc = rp_store_declare(l->s, &l->ctx, entity, spec, l->actor, &done, &err);
    json_decref(spec);
    if (rc)
        return rp__lua_raise(L, &err);
    rp__lua_push_owned(L, done);
    return 1;
}

static int crm_schema_rename_field(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    const char *entity = luaL_checkstring(L, 1);
    const char *from = luaL_checkstring(L, 2);
    const char *to = luaL_checkstring(L, 3);
    rp_error_t err = {0};
    if (rp_store_rename_field(l->s, &l->ctx, entity, from, to, &err))
        return rp__lua_raise(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

static int crm_schema_drop_field(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    const char *entity = luaL_checkstring(L, 1);
    const char *field = luaL_checkstring(L, 2);
    rp_error_t err = {0};
    if (rp_store_drop_field(l->s, &l->ctx, entity, field, &err))
        return rp__lua_raise(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

static int crm_schema_drop_entity(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    const char *entity = luaL_checkstring(L, 1);
    rp_error_t err = {0};
    if (rp_store_drop_entity(l->s, &l->ctx, entity, &err))
        return rp__lua_raise(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

/* The Lua function at stack index 4 of change_type, called with each value and record id. */
static int convert_lua(void *ud, int64_t id, json_t *value, json_t **out, rp_error_t *err)
{
    lua_State *L = ud;
    lua_pushvalue(L, 4);
    rp__lua_push_json(L, value);
    lua_pushinteger(L, (lua_Integer)id);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
        rp_error_set(err, RP_EINVAL, RP_C_TYPE, "the conversion failed: %s",
                     lua_tostring(L, -1) ? lua_tostring(L, -1) : "(an error that is no text)");
        lua_pop(L, 1);
        return RP_EINVAL;
    }
    /* nil for a value is what tonumber("abc") answers: a value lost by mistake, so it fails;
     * crm.null empties a value on purpose. */
    if (lua_isnil(L, -1) && !json_is_null(value)) {
        lua_pop(L, 1);
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE, "the conversion returned nil (return "
                            "crm.null to empty a value on purpose)");
    }
    const char *why = NULL;
    *out = lua_isnil(L, -1) ? json_null() : rp__lua_to_json(L, -1, &why);
    lua_pop(L, 1);
    if (!*out)
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE, "the conversion returned %s",
                            why ? why : "a value that is no JSON");
    return 0;
}

static int crm_schema_change_type(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    const char *entity = luaL_checkstring(L, 1);
    const char *field = luaL_checkstring(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    if (!lua_isnoneornil(L, 4))
        luaL_checktype(L, 4, LUA_TFUNCTION);
    bool fn = lua_isfunction(L, 4);
    lua_settop(L, 4);
    json_t *spec = rp__lua_check_json(L, 3, "crm.schema.change_type", "the field specification");
    rp_error_t err = {0};
    int rc = rp_store_change_type(l->s, &l->ctx, entity, field, spec, fn ? convert_lua : NULL,
                                  L, &err);
    json_decref(spec);
    if (rc)
        return rp__lua_raise(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

/* ---- migrations -------------------------------------------------------------------------- */

typedef struct {
    uint64_t h;
} fnv_t;

static int fnv_writer(lua_State *L, const void *p, size_t n, void *ud)
{
    (void)L;
    fnv_t *f = ud;
    for (size_t i = 0; i < n; i++) {
        f->h ^= ((const unsigned char *)p)[i];
        f->h *= 0x100000001b3ULL;
    }
    return 0;
}

/* The checksum of the function at @p idx: a 64-bit FNV-1a hash of its bytecode without debug
 * information, so moving a migration in its file or editing its comments changes nothing,
 * while a change to what it does is seen. */
static void checksum(lua_State *L, int idx, char out[17])
{
    fnv_t f = {0xcbf29ce484222325ULL};
    lua_pushvalue(L, idx);
    lua_dump(L, fnv_writer, &f, 1);
    lua_pop(L, 1);
    snprintf(out, 17, "%016llx", (unsigned long long)f.h);
}

static int crm_schema_migration(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    const char *id = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    if (lua_iscfunction(L, 2))
        return luaL_error(L, "crm.schema.migration: argument 2 must be a Lua function");
    lua_settop(L, 2);
    /* Refused before the function runs, as the store refuses each schema change it would make:
     * a migration's data changes belong to the installation, not to a user's role. */
    if (l->ctx.access)
        return luaL_error(L, "crm.schema.migration: RP-E%d: a script run for a user (--as) may "
                          "not run migration \"%s\"; migrations run with the scripts the engine "
                          "loads", RP_C_DENIED, id);
    char sum[17], had[65], when[32];
    checksum(L, 2, sum);
    rp_error_t err = {0};
    int ran = rp_store_migration_ran(l->s, id, had, when, &err);
    if (ran < 0)
        return rp__lua_raise(L, &err);
    if (ran) {
        if (strcmp(had, sum) != 0) {
            char msg[400];
            snprintf(msg, sizeof msg, "migration \"%s\" changed since it ran on %s (checksum %s, "
                     "now %s): it does not run again; write a new migration for a further "
                     "change", id, when, had, sum);
            rp__lua_log(l, "warn", msg);
        }
        lua_pushboolean(L, 0);
        return 1;
    }
    if (rp_store_begin(l->s, &err))
        return rp__lua_raise(L, &err);
    lua_pushvalue(L, 2);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        char why[400];
        snprintf(why, sizeof why, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "an error");
        lua_pop(L, 1);
        rp_store_rollback(l->s, NULL);
        rp__lua_raise_if_tripped(L);
        return luaL_error(L, "crm.schema.migration: RP-E%d: migration \"%s\" failed and was "
                          "rolled back: %s", RP_C_MIGRATION, id, why);
    }
    if (rp_store_migration_record(l->s, &l->ctx, id, sum, l->name, &err)) {
        rp_store_rollback(l->s, NULL);
        return rp__lua_raise(L, &err);
    }
    if (rp_store_commit(l->s, &err))
        return rp__lua_raise(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

void rp__lua_open_schema(lua_State *L)
{
    static const luaL_Reg fns[] = {{"declare", crm_schema_declare},
                                   {"migration", crm_schema_migration},
                                   {"rename_field", crm_schema_rename_field},
                                   {"drop_field", crm_schema_drop_field},
                                   {"change_type", crm_schema_change_type},
                                   {"drop_entity", crm_schema_drop_entity},
                                   {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
