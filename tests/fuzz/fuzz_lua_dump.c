/*
 * fuzz_lua_dump.c — libFuzzer target for rp__lua_dump_lines() (core/lua/dump.c), the reader of
 * Lua 5.4 binary chunks behind `rapport test --coverage`: any bytes are either read into a
 * line array within its bound or refused with a reason, nothing allocated; and bytes that
 * compile as Lua text give a dump that is always read, with a line for every line that Lua
 * says holds code in the main function.
 * Build with clang -fsanitize=fuzzer,address; with -DRP_FUZZ_STANDALONE it instead gets a main()
 * that runs each file named on the command line once (for compilers without libFuzzer).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "../../core/lua/dump.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The lines of @p data, checked whichever way it goes; 1 when read. */
static int read_lines(const uint8_t *data, size_t size, unsigned char **out, int *nout)
{
    unsigned char *lines = (unsigned char *)"x";
    int n = -1;
    char why[200];
    if (rp__lua_dump_lines(data, size, &lines, &n, why, sizeof why) != 0) {
        if (lines != NULL || n != 0 || why[0] == '\0')
            abort();
        return 0;
    }
    if (n < 0 || n > RP_DUMP_MAX_LINE || (n > 0 && lines[n] != 1))
        abort();
    unsigned sum = 0;
    for (int k = 0; k <= n; k++) /* every byte of the array is readable (ASan) */
        sum += lines[k];
    if (n > 0 && sum == 0)
        abort();
    if (out) {
        *out = lines;
        *nout = n;
    } else {
        free(lines);
    }
    return 1;
}

typedef struct {
    uint8_t *p;
    size_t n;
} out_t;

static int writer(lua_State *L, const void *p, size_t sz, void *ud)
{
    (void)L;
    out_t *o = ud;
    uint8_t *grown = realloc(o->p, o->n + sz);
    if (!grown)
        return 1;
    memcpy(grown + o->n, p, sz);
    o->p = grown;
    o->n += sz;
    return 0;
}

static void check_compiled(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return;
    lua_State *L = luaL_newstate();
    if (!L)
        return;
    out_t o = {0};
    if (luaL_loadbufferx(L, (const char *)data, size, "@fuzz.lua", "t") == LUA_OK &&
        lua_dump(L, writer, &o, 0) == 0) {
        unsigned char *lines;
        int n;
        if (!read_lines(o.p, o.n, &lines, &n))
            abort(); /* Lua's own dump refused */
        lua_Debug ar;
        lua_getinfo(L, ">L", &ar);
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_Integer line = lua_tointeger(L, -2);
            if (line < 0 || line > n || !lines[line])
                abort(); /* a line of the main function is missing */
            lua_pop(L, 1);
        }
        free(lines);
    }
    free(o.p);
    lua_close(L);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    read_lines(data, size, NULL, NULL);
    check_compiled(data, size);
    return 0;
}

#ifdef RP_FUZZ_STANDALONE
#include "standalone.h"
#endif
