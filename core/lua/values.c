/*
 * values.c — values crossing between Lua and JSON: tables to objects and arrays (within the
 * state's limits, so a huge or cyclic table cannot hold the loop), JSON to Lua, crm.null, and
 * the text a result is shown as.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "lua_internal.h"

/* The address whose light userdata is crm.null. */
static const char null_marker = 0;
void *const rp__lua_null = (void *)&null_marker;

int rp__lua_json_set(json_t *obj, const char *key, size_t klen, json_t *v, bool known,
                     const char **why)
{
    /* jansson refuses a key that is not UTF-8 (and would cut one at a NUL): say so rather
     * than drop the field. */
    if (strlen(key) != klen) {
        json_decref(v);
        *why = "a table with a key that holds a NUL byte";
        return -1;
    }
    if (known ? json_object_set_new_nocheck(obj, key, v) : json_object_set_new(obj, key, v)) {
        *why = "a table with a key that is not valid UTF-8 text"; /* v is released either way */
        return -1;
    }
    return 0;
}

json_t *rp__lua_to_json(lua_State *L, int idx, const char **why)
{
    static const char *dummy;
    if (!why)
        why = &dummy;
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
    case LUA_TNONE:
        return json_null();
    case LUA_TLIGHTUSERDATA:
        /* crm.null: a value that is there and null, where nil would mean "absent". */
        if (lua_touserdata(L, idx) == rp__lua_null)
            return json_null();
        *why = "a userdata";
        return NULL;
    case LUA_TBOOLEAN:
        return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            return json_integer(lua_tointeger(L, idx));
        return json_real(lua_tonumber(L, idx));
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        rp_lua_t *owner = rp__lua_of(L);
        if (owner)
            owner->c_text += n;
        json_t *j = json_stringn(s, n);
        if (!j)
            *why = "a string that is not valid UTF-8";
        return j;
    }
    case LUA_TTABLE:
        break;
    default:
        *why = lua_typename(L, lua_type(L, idx));
        return NULL;
    }
    if (!lua_checkstack(L, 4) || lua_gettop(L) > 200) {
        *why = "a table nested too deeply (or a cycle)";
        return NULL;
    }
    /* A sequence 1..n becomes an array; string keys an object; an empty table an object. */
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    json_t *out = n > 0 ? json_array() : json_object();
    rp_lua_t *l = rp__lua_of(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        json_t *v = NULL;
        /* A table of millions of values is one C call: the limits are asked as it goes (without
         * raising here, where the JSON made so far would leak; the caller raises). */
        if (l && ++l->c_steps % 4096 == 0 && rp__lua_limits_hit(L, 4096)) {
            *why = "a value so large that converting it went over the script's limits";
            goto bad;
        }
        if (n > 0) {
            if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 1 || lua_tointeger(L, -2) > n) {
                *why = "a table mixing a list with other keys";
                goto bad;
            }
        } else if (lua_type(L, -2) != LUA_TSTRING) {
            *why = "a table whose keys are neither a list nor strings";
            goto bad;
        }
        if (!(v = rp__lua_to_json(L, -1, why)))
            goto bad;
        if (n > 0) {
            /* lua_next walks in no particular order: place by index. */
            lua_Integer k = lua_tointeger(L, -2);
            while ((lua_Integer)json_array_size(out) < k)
                json_array_append_new(out, json_null());
            json_array_set_new(out, (size_t)k - 1, v);
        } else {
            size_t klen;
            const char *key = lua_tolstring(L, -2, &klen);
            if (l)
                l->c_text += klen;
            if (rp__lua_json_set(out, key, klen, v, false, why))
                goto bad;
        }
        lua_pop(L, 1);
    }
    return out;
bad:
    lua_pop(L, 2);
    json_decref(out);
    return NULL;
}

void rp__lua_push_json(lua_State *L, json_t *j)
{
    luaL_checkstack(L, 4, "nested too deeply");
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        lua_createtable(L, 0, (int)json_object_size(j));
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) {
            if (json_is_null(v))
                continue; /* absent and null are the same to a script */
            rp__lua_push_json(L, v);
            lua_setfield(L, -2, k);
        }
        return;
    }
    case JSON_ARRAY: {
        lua_createtable(L, (int)json_array_size(j), 0);
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) {
            rp__lua_push_json(L, v);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        return;
    }
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(j), json_string_length(j));
        return;
    case JSON_INTEGER:
        lua_pushinteger(L, (lua_Integer)json_integer_value(j));
        return;
    case JSON_REAL:
        lua_pushnumber(L, json_real_value(j));
        return;
    case JSON_TRUE:
        lua_pushboolean(L, 1);
        return;
    case JSON_FALSE:
        lua_pushboolean(L, 0);
        return;
    default:
        lua_pushnil(L);
    }
}

json_t *rp__lua_check_json(lua_State *L, int idx, const char *fname, const char *what)
{
    const char *why = "an unsupported value";
    rp_lua_t *l = rp__lua_of(L);
    if (l)
        l->c_text = 0;
    json_t *j = rp__lua_to_json(L, idx, &why);
    if (!j) {
        rp__lua_raise_if_tripped(L);
        luaL_error(L, "%s: %s must be plain data, not %s", fname, what, why);
    }
    /* What crosses into the engine is written as JSON in one C call (an event, a record):
     * its text is bounded, as crm.json.encode's is, more widely. */
    if (l && l->c_text > RP_LUA_MAX_VALUE) {
        size_t n = l->c_text;
        json_decref(j);
        luaL_error(L, "%s: RP-E%d: %s holds %I bytes of text; the limit is %d", fname, RP_C_CAP,
                   what, (lua_Integer)n, RP_LUA_MAX_VALUE);
    }
    return j;
}

char *rp_lua_render(json_t *v)
{
    if (!v || json_is_null(v))
        return strdup("nil");
    if (json_is_string(v))
        return strdup(json_string_value(v));
    return json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
}
