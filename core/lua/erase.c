/*
 * erase.c — crm.erase and crm.subject: a person's data from Lua, erased (the installation's
 * scripts only) or gathered into one document (through the caller's access).
 */
#include <string.h>

#include <lauxlib.h>

#include "lua_internal.h"

/* crm.erase(entity, id [, reason]) -> {erased, fields, records, events, other_events} */
static int crm_erase(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    const char *entity = luaL_checkstring(L, 1);
    lua_Integer id = luaL_checkinteger(L, 2);
    const char *reason = luaL_optstring(L, 3, NULL);
    if (id <= 0)
        return luaL_error(L, "crm.erase: argument 2 must be a record id (a positive integer)");
    rp_error_t err = {0};
    json_t *res = NULL;
    if (rp_store_erase(l->s, &l->ctx, entity, id, reason, &res, &err))
        return rp__lua_raise(L, &err);
    rp__lua_push_owned(L, res);
    return 1;
}

/* crm.subject(entity, id) -> {record, related, events, …} as the caller may read them */
static int crm_subject(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    const char *entity = luaL_checkstring(L, 1);
    lua_Integer id = luaL_checkinteger(L, 2);
    if (id <= 0)
        return luaL_error(L, "crm.subject: argument 2 must be a record id (a positive integer)");
    rp_error_t err = {0};
    json_t *doc = NULL;
    if (rp_store_subject(l->s, &l->ctx, entity, id, &doc, &err))
        return rp__lua_raise(L, &err);
    rp__lua_push_owned(L, doc);
    return 1;
}

void rp__lua_open_erase(lua_State *L)
{
    static const luaL_Reg fns[] = {{"erase", crm_erase}, {"subject", crm_subject}, {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
