/*
 * fuzz_strmatch.c — libFuzzer target for the sandbox's own pattern matcher (core/lua/strmatch.c):
 * any pattern and subject give the same answer, or the same refusal, from string.find, match,
 * gmatch and gsub as from Lua's own string library. The first byte picks the function and its
 * start position; the rest is "pattern\x01subject" (a pattern of at most 48 bytes and a subject
 * of at most 64, with at most three quantifiers, so that Lua's own matcher, which has no
 * budget, stays quick).
 * With -DRP_FUZZ_STANDALONE it gets a main() that runs each file named on the command line once.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "rapport/lua.h"
#include "rapport/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Calls string.<fn>(s, p, init[, repl]) and renders every value returned, or "error". */
static const char render[] =
    "local fn, s, p, init = ...\n"
    "local function ser(...)\n"
    "  local t = {}\n"
    "  for i = 1, select('#', ...) do\n"
    "    local v = select(i, ...)\n"
    "    t[#t + 1] = type(v) == 'string' and string.format('%q', v) or tostring(v)\n"
    "  end\n"
    "  return table.concat(t, '|')\n"
    "end\n"
    "local ok, r = pcall(function()\n"
    "  if fn == 'gmatch' then\n"
    "    local out = {}\n"
    "    for a, b in string.gmatch(s, p, init) do\n"
    "      out[#out + 1] = ser(a, b)\n"
    "      if #out > 40 then break end\n"
    "    end\n"
    "    return table.concat(out, ';')\n"
    "  elseif fn == 'gsub' then\n"
    "    return ser(string.gsub(s, p, '<%0>', init))\n"
    "  elseif fn == 'gsubf' then\n"
    "    return ser(string.gsub(s, p, function(a, b) return b and tostring(b) or nil end))\n"
    "  end\n"
    "  return ser(string[fn](s, p, init))\n"
    "end)\n"
    "return ok and r or 'error'\n";

static rp_store_t *store;
static rp_lua_t *ours;
static lua_State *theirs;
static int render_ours, render_theirs; /* the compiled render chunk, in each registry */

static int compile(lua_State *L)
{
    if (luaL_loadbuffer(L, render, sizeof render - 1, "=render") != LUA_OK)
        abort();
    return luaL_ref(L, LUA_REGISTRYINDEX);
}

static void setup(void)
{
    rp_error_t err = {0};
    if (rp_store_open(":memory:", NULL, &store, &err) != 0)
        abort();
    rp_lua_opts_t o = {.sandbox = true};
    if (!(ours = rp_lua_new(store, NULL, &o, &err)))
        abort();
    theirs = luaL_newstate();
    luaL_openlibs(theirs);
    render_ours = compile(rp_lua_state(ours));
    render_theirs = compile(theirs);
}

/* The rendering of one call on @p L; owned. */
static char *call(lua_State *L, int fnref, const char *fn, const char *s, size_t sl,
                  const char *p, size_t pl, lua_Integer init)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, fnref);
    lua_pushstring(L, fn);
    lua_pushlstring(L, s, sl);
    lua_pushlstring(L, p, pl);
    lua_pushinteger(L, init);
    if (lua_pcall(L, 4, 1, 0) != LUA_OK)
        abort();
    size_t n;
    const char *r = lua_tolstring(L, -1, &n);
    char *out = malloc(n + 1);
    memcpy(out, r, n);
    out[n] = '\0';
    lua_pop(L, 1);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const fns[] = {"find", "match", "gmatch", "gsub", "gsubf"};
    if (size < 2)
        return 0;
    if (!store)
        setup();
    const char *fn = fns[data[0] % 5];
    lua_Integer init = (lua_Integer)(data[0] / 5 % 8) - 2; /* -2 … 5 */
    if (init == 0)
        init = 1;
    const char *rest = (const char *)data + 1;
    size_t n = size - 1;
    const char *sep = memchr(rest, 1, n);
    size_t pl = sep ? (size_t)(sep - rest) : n;
    const char *s = sep ? sep + 1 : "";
    size_t sl = sep ? n - pl - 1 : 0;
    if (pl > 48 || sl > 64)
        return 0;
    /* Neither matcher bounds itself here (the limits act only inside a script's call), and k
     * quantifiers over n bytes cost up to n^(k+1) steps: three at most keep an input quick. */
    int quantifiers = 0;
    for (size_t i = 0; i < pl; i++)
        quantifiers += rest[i] == '*' || rest[i] == '+' || rest[i] == '-' || rest[i] == '?';
    if (quantifiers > 3)
        return 0;
    char *a = call(rp_lua_state(ours), render_ours, fn, s, sl, rest, pl, init);
    char *b = call(theirs, render_theirs, fn, s, sl, rest, pl, init);
    if (strcmp(a, b) != 0)
        __builtin_trap(); /* the matchers disagree */
    free(a);
    free(b);
    return 0;
}

#ifdef RP_FUZZ_STANDALONE
#include "standalone.h"
#endif
