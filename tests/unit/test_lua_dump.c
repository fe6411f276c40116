/*
 * test_lua_dump.c — the coverage denominator (core/lua/dump.c): the lines it reads from a
 * chunk's dump are exactly Lua's own activelines over every function of the chunk, called or
 * not; and bytes that are not a whole, unstripped 5.4 dump are refused with a reason.
 */
#include <lauxlib.h>
#include <lualib.h>

#include "../../core/lua/dump.h"
#include "helpers.h"

/* Every function of the chunk is put in `fns`, so the test can hold each one and ask Lua. */
static const char chunk[] =
    "fns = {}\n"
    "local function never(x)\n"
    "  local y = x * 2\n"
    "  if y > 3 then\n"
    "    return y\n"
    "  end\n"
    "  return 0\n"
    "end\n"
    "fns[#fns + 1] = never\n"
    "local function va(...)\n"
    "  local n = select('#', ...)\n"
    "  return function() return n end\n"
    "end\n"
    "fns[#fns + 1] = va\n"
    "fns[#fns + 1] = va(1, 2)\n"
    "%s" /* a long stretch of blank lines, so the line info needs absolute entries */
    "fns[#fns + 1] = function(t)\n"
    "  local s = 0\n"
    "%s" /* a long function: more than 128 instructions, another absolute entry */
    "  return s\n"
    "end\n";

static lua_State *new_state(void)
{
    lua_State *L = luaL_newstate();
    assert_non_null(L);
    luaL_openlibs(L);
    return L;
}

typedef struct {
    char *p;
    size_t n;
} out_t;

static int writer(lua_State *L, const void *p, size_t sz, void *ud)
{
    (void)L;
    out_t *o = ud;
    o->p = realloc(o->p, o->n + sz);
    memcpy(o->p + o->n, p, sz);
    o->n += sz;
    return 0;
}

/* The chunk compiled and dumped (stripped or not), as a Lua string on top of @p L. */
static void dump_of(lua_State *L, const char *src, int strip)
{
    assert_int_equal(luaL_loadbufferx(L, src, strlen(src), "@chunk.lua", "t"), LUA_OK);
    out_t o = {0};
    assert_int_equal(lua_dump(L, writer, &o, strip), 0);
    lua_pop(L, 1);
    lua_pushlstring(L, o.p, o.n);
    free(o.p);
}

static char *make_chunk(void)
{
    static char blanks[400], body[40 * 200];
    memset(blanks, '\n', 300);
    blanks[300] = '\0';
    body[0] = '\0';
    for (int i = 0; i < 150; i++)
        strcat(body, "  s = s + t[1] * 2 - t[2]\n");
    size_t n = sizeof chunk + strlen(blanks) + strlen(body);
    char *src = malloc(n);
    snprintf(src, n, chunk, blanks, body);
    return src;
}

/* Adds the activelines of the function on top of @p L (popped) to @p want. */
static void add_active(lua_State *L, unsigned char *want, int cap)
{
    lua_Debug ar;
    assert_true(lua_getinfo(L, ">L", &ar));
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_Integer line = lua_tointeger(L, -2);
        assert_true(line > 0 && line < cap);
        want[line] = 1;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static void test_lines_are_lua_activelines(void **state)
{
    (void)state;
    char *src = make_chunk();
    lua_State *L = new_state();
    dump_of(L, src, 0);
    size_t n;
    const unsigned char *d = (const unsigned char *)lua_tolstring(L, -1, &n);
    unsigned char *lines;
    int nlines;
    char why[200];
    assert_int_equal(rp__lua_dump_lines(d, n, &lines, &nlines, why, sizeof why), 0);

    enum { CAP = 1000 };
    unsigned char want[CAP] = {0};
    assert_int_equal(luaL_loadbufferx(L, src, strlen(src), "@chunk.lua", "t"), LUA_OK);
    lua_pushvalue(L, -1);
    add_active(L, want, CAP);
    assert_int_equal(lua_pcall(L, 0, 0, 0), LUA_OK);
    lua_getglobal(L, "fns");
    int nf = (int)lua_rawlen(L, -1);
    assert_int_equal(nf, 4);
    for (int i = 1; i <= nf; i++) {
        lua_rawgeti(L, -1, i);
        add_active(L, want, CAP);
    }
    int last = 0;
    for (int k = 0; k < CAP; k++)
        if (want[k])
            last = k;
    assert_true(last > 450); /* the long function came after the blank stretch */
    assert_int_equal(nlines, last);
    for (int k = 0; k <= nlines; k++)
        if (want[k] != lines[k])
            fail_msg("line %d: activelines says %d, the dump %d", k, want[k], lines[k]);
    assert_int_equal(lines[3], 1); /* inside the function never called */
    assert_int_equal(lines[2], 0); /* `local function never(x)` holds no instruction */
    free(lines);
    lua_close(L);
    free(src);
}

static void refused(const unsigned char *d, size_t n, const char *needle)
{
    unsigned char *lines = (unsigned char *)"untouched";
    int nlines = 7;
    char why[200];
    assert_int_equal(rp__lua_dump_lines(d, n, &lines, &nlines, why, sizeof why), -1);
    assert_null(lines);
    assert_int_equal(nlines, 0);
    assert_true(why[0] != '\0');
    if (!strstr(why, needle))
        fail_msg("wanted \"%s\" in: %s", needle, why);
}

static void test_bad_dumps_are_refused(void **state)
{
    (void)state;
    lua_State *L = new_state();
    dump_of(L, "local a = 1\nreturn function(b) return a + b end\n", 0);
    size_t n;
    const unsigned char *d = (const unsigned char *)lua_tolstring(L, -1, &n);
    /* Every cut short is refused, never read past its end (ASan watches the copy). */
    for (size_t k = 0; k < n; k++) {
        unsigned char *cut = malloc(k ? k : 1);
        memcpy(cut, d, k);
        refused(cut, k, k < 32 ? "Lua" : "");
        free(cut);
    }
    unsigned char *more = malloc(n + 1);
    memcpy(more, d, n);
    more[n] = 0;
    refused(more, n + 1, "1 bytes follow the end");
    more[4] = 0x53;
    refused(more, n, "Lua version 5.3");
    memcpy(more, d, n);
    more[12] = 8;
    refused(more, n, "another machine");
    more[0] = 'x';
    refused(more, n, "no \\x1bLua signature");
    free(more);
    refused(NULL, 0, "no dump");
    dump_of(L, "local a = 1\nreturn a\n", 1);
    d = (const unsigned char *)lua_tolstring(L, -1, &n);
    refused(d, n, "stripped");
    lua_close(L);
}

/* Random damage to a real dump: either read (within the line bound) or refused. */
static void test_damaged_dumps_never_crash(void **state)
{
    (void)state;
    char *src = make_chunk();
    lua_State *L = new_state();
    dump_of(L, src, 0);
    size_t n;
    const unsigned char *d = (const unsigned char *)lua_tolstring(L, -1, &n);
    unsigned char *copy = malloc(n);
    srand(16);
    for (int round = 0; round < 3000; round++) {
        memcpy(copy, d, n);
        for (int j = 0; j < 1 + round % 4; j++)
            copy[(size_t)rand() % n] = (unsigned char)rand();
        unsigned char *lines;
        int nlines;
        char why[200];
        if (rp__lua_dump_lines(copy, n, &lines, &nlines, why, sizeof why) == 0) {
            assert_true(nlines >= 0 && nlines <= RP_DUMP_MAX_LINE);
            free(lines);
        } else {
            assert_true(why[0] != '\0');
        }
    }
    free(copy);
    lua_close(L);
    free(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_are_lua_activelines),
        cmocka_unit_test(test_bad_dumps_are_refused),
        cmocka_unit_test(test_damaged_dumps_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
