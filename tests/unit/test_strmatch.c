/*
 * test_strmatch.c — the limits of a script inside one call into C: the sandbox's string.find,
 * match, gmatch and gsub (the same answers as Lua's own on known and on random patterns, and
 * stopped by the script's limits), and a read the engine makes for the script.
 */
#include <time.h>

#include <lauxlib.h>
#include <lualib.h>

#include "helpers.h"
#include "rapport/lua.h"

/* Calls string.<fn> with the case's arguments and renders what came back, or "error". */
static const char render[] =
    "local fn, s, p, a, b = ...\n"
    "local function ser(...)\n"
    "  local t = {}\n"
    "  for i = 1, select('#', ...) do\n"
    "    local v = select(i, ...)\n"
    "    t[#t + 1] = math.type(v) or type(v)\n"
    "    t[#t + 1] = type(v) == 'string' and string.format('%q', v) or tostring(v)\n"
    "  end\n"
    "  return table.concat(t, '|')\n"
    "end\n"
    "local ok, r = pcall(function()\n"
    "  if fn == 'gmatch' then\n"
    "    local out = {}\n"
    "    for x, y, z in string.gmatch(s, p, a) do\n"
    "      out[#out + 1] = ser(x, y, z)\n"
    "      if #out > 50 then break end\n"
    "    end\n"
    "    return table.concat(out, ';')\n"
    "  elseif fn == 'gsub_f' then\n"
    "    return ser(string.gsub(s, p, function(x, y) return y and (x .. '/' .. tostring(y)) or"
    "      (#x % 2 == 0 and x:upper() or nil) end, a))\n"
    "  elseif fn == 'gsub_t' then\n"
    "    return ser(string.gsub(s, p, {a = 'A', ab = false, [''] = 'E'}, a))\n"
    "  end\n"
    "  return ser(string[fn](s, p, a, b))\n"
    "end)\n"
    "return ok and r or 'error'\n";

static char *call(lua_State *L, const char *fn, const char *s, size_t sl, const char *p,
                  size_t pl, const char *a, const char *b)
{
    if (luaL_loadbuffer(L, render, sizeof render - 1, "=render") != LUA_OK)
        fail_msg("%s", lua_tostring(L, -1));
    lua_pushstring(L, fn);
    lua_pushlstring(L, s, sl);
    lua_pushlstring(L, p, pl);
    if (a)
        luaL_loadstring(L, a) == LUA_OK ? lua_call(L, 0, 1) : lua_error(L);
    else
        lua_pushnil(L);
    if (b)
        luaL_loadstring(L, b) == LUA_OK ? lua_call(L, 0, 1) : lua_error(L);
    else
        lua_pushnil(L);
    if (lua_pcall(L, 5, 1, 0) != LUA_OK)
        fail_msg("render: %s", lua_tostring(L, -1));
    char *out = strdup(lua_tostring(L, -1));
    lua_pop(L, 1);
    return out;
}

typedef struct {
    rp_store_t *s;
    rp_lua_t *l;
    lua_State *ours, *theirs;
} pair_t;

static void pair_open(pair_t *p)
{
    p->s = test_open();
    rp_lua_opts_t o = {.sandbox = true};
    rp_error_t err = {0};
    p->l = rp_lua_new(p->s, NULL, &o, &err);
    if (!p->l)
        fail_msg("rp_lua_new: %s", err.msg);
    p->ours = rp_lua_state(p->l);
    p->theirs = luaL_newstate();
    luaL_openlibs(p->theirs);
}

static void pair_close(pair_t *p)
{
    lua_close(p->theirs);
    rp_lua_free(p->l);
    rp_store_close(p->s);
}

static void same(pair_t *p, const char *fn, const char *s, size_t sl, const char *pat, size_t pl,
                 const char *a, const char *b)
{
    char *x = call(p->ours, fn, s, sl, pat, pl, a, b);
    char *y = call(p->theirs, fn, s, sl, pat, pl, a, b);
    if (strcmp(x, y) != 0)
        fail_msg("string.%s(%.*s, %.*s, %s, %s): ours %s, Lua's %s", fn, (int)sl, s, (int)pl, pat,
                 a ? a : "nil", b ? b : "nil", x, y);
    free(x);
    free(y);
}

static void test_known_cases(void **state)
{
    (void)state;
    pair_t p;
    pair_open(&p);
    static const struct {
        const char *s, *p;
    } cases[] = {
        {"  hello  ", "^%s*(.-)%s*$"}, {"hello world", "o"}, {"hello world", "(o)(r)"},
        {"key=val", "(%w+)=(%w+)"}, {"THE (quick) fox", "%f[%a]%a+"}, {"f(a(b)c)d", "%b()"},
        {"abc", ""}, {"abc", "()"}, {"abc", "()b()"}, {"aaa", "a-"}, {"aaa", "a-$"},
        {"aaab", "a*b"}, {"ab", "a?b"}, {"b", "a?b"}, {"xyzzy", "(z)%1"}, {"[]]", "[]]"},
        {"a]b", "[^]]"}, {"a-b", "[a%-]+"}, {"a.b", "%."}, {"x^y", "x^y"}, {"$", "$"},
        {"a$b", "a$b"}, {"2024-01-31", "(%d+)-(%d+)-(%d+)"}, {"A1 b2", "%u%d"},
        {"tab\there", "%c"}, {"under_score", "[%w_]+"}, {"αβγ", "[\x80-\xff]+"},
        {"(", "("}, {"a", "%"}, {"a", "[a"}, {"a", "%1"}, {"a", "(()"}, {"a", ")"},
        {"a", "%f"}, {"a", "%b"}, {"a", "%g"}, {"end", "d$"}, {"hello", "l+"},
        {"one two  three", "%S+"}, {"a,b,,c", "([^,]*)"}, {"x", "%0"},
    };
    static const char *const fns[] = {"find", "match", "gmatch", "gsub_f", "gsub_t"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (size_t f = 0; f < sizeof fns / sizeof *fns; f++) {
            same(&p, fns[f], cases[i].s, strlen(cases[i].s), cases[i].p, strlen(cases[i].p),
                 NULL, NULL);
            same(&p, fns[f], cases[i].s, strlen(cases[i].s), cases[i].p, strlen(cases[i].p),
                 "return 2", NULL);
            same(&p, fns[f], cases[i].s, strlen(cases[i].s), cases[i].p, strlen(cases[i].p),
                 "return -3", NULL);
        }
    /* gsub's string replacements and limits, find's plain search and start positions. */
    static const char *const repls[] = {"return '<%0>'", "return '%1-%1'", "return '%%'",
                                        "return '%'", "return '%x'", "return 7", "return '%2'"};
    for (size_t r = 0; r < sizeof repls / sizeof *repls; r++)
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
            same(&p, "gsub", cases[i].s, strlen(cases[i].s), cases[i].p, strlen(cases[i].p),
                 repls[r], i % 3 ? "return 1" : NULL);
    same(&p, "find", "a.b.c", 5, ".", 1, "return 1", "return true");
    same(&p, "find", "a.b.c", 5, ".", 1, "return 3", "return true");
    same(&p, "find", "abc", 3, "", 0, "return 10", NULL);
    same(&p, "find", "abc", 3, "", 0, "return 4", NULL);
    same(&p, "find", "abc", 3, "c", 1, "return -100", NULL);
    same(&p, "match", "a\0b", 3, "%z", 2, NULL, NULL);
    same(&p, "find", "a\0b", 3, "\0", 1, NULL, NULL);
    same(&p, "match", "a\0b", 3, "a%zb", 4, NULL, NULL);
    same(&p, "find", "a\0b", 3, "[\0]", 3, NULL, NULL);
    pair_close(&p);
}

/* Random patterns over a small alphabet, against Lua's own matcher: every answer and every
 * refusal the same. */
static void test_random_patterns(void **state)
{
    (void)state;
    pair_t p;
    pair_open(&p);
    static const char *const pieces[] = {
        "a", "b", ".", "%a", "%d", "%s", "%w", "%p", "[ab]", "[^a]", "[a-c]", "[%d%s]", "(", ")",
        "()", "%1", "%2", "*", "+", "-", "?", "^", "$", "%b()", "%f[%w]", "%f[%W]", "%", "[",
        "]", "x", " ", "%%", "%.", "[]", "[^]a]", "%z", "%S", "%U"};
    static const char subj_chars[] = "aab b(x)1 2.%[]-^$c";
    unsigned seed = 20261206;
    const int rounds = 6000;
    char pat[64], subj[24];
    for (int i = 0; i < rounds; i++) {
        size_t pl = 0;
        int n = 1 + (int)(rand_r(&seed) % 6);
        for (int k = 0; k < n; k++) {
            const char *pc = pieces[rand_r(&seed) % (sizeof pieces / sizeof *pieces)];
            size_t m = strlen(pc);
            if (pl + m >= sizeof pat)
                break;
            memcpy(pat + pl, pc, m);
            pl += m;
        }
        pat[pl] = '\0';
        size_t sl = rand_r(&seed) % 16;
        for (size_t k = 0; k < sl; k++)
            subj[k] = subj_chars[rand_r(&seed) % (sizeof subj_chars - 1)];
        subj[sl] = '\0';
        static const char *const fns[] = {"find", "match", "gmatch", "gsub_f", "gsub_t"};
        same(&p, fns[i % 5], subj, sl, pat, pl, i % 7 == 0 ? "return 2" : NULL, NULL);
    }
    pair_close(&p);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A pattern that backtracks for minutes is stopped at the script's limit, inside the call. */
static void test_limits_hold_inside_matching(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    static const char *const scripts[] = {
        "return string.find(string.rep('a', 1e5), '.-.-.-.-.-b')",
        "return (' a' .. (' '):rep(1e5) .. 'b'):match('^%s*(.-)%s*$') and"
        "  ('a' .. (' '):rep(1e5) .. 'b' .. (' '):rep(1e5) .. 'c'):match('^%s*(.-)%s*$')",
        "for x in string.gmatch(('a'):rep(1e5), '.-.-.-.-b') do end",
        "return string.gsub(('a'):rep(1e5), '(a*)*b', '')",
        "return pcall(string.find, ('a'):rep(1e5), '.-.-.-.-.-b')",
    };
    for (size_t i = 0; i < sizeof scripts / sizeof *scripts; i++) {
        rp_lua_opts_t o = {.sandbox = true, .max_cpu_ms = 200, .max_wall_ms = 300};
        rp_error_t err = {0};
        rp_lua_t *l = rp_lua_new(s, NULL, &o, &err);
        assert_non_null(l);
        int64_t t0 = now_ms();
        int rc = rp_lua_eval(l, scripts[i], "limits", NULL, &err);
        int64_t took = now_ms() - t0;
        if (rc == 0 || !strstr(err.msg, "RP-E1701"))
            fail_msg("script %zu was not stopped: rc %d, %s", i, rc, err.msg);
        if (took > 1500)
            fail_msg("script %zu held its call %lld ms (limit 300 ms)", i, (long long)took);
        assert_non_null(strstr(err.msg, "limits:1:"));
        /* The state serves the next call. */
        json_t *res = NULL;
        assert_int_equal(rp_lua_eval(l, "return ('x y'):match('(%a) (%a)')", "next", &res, &err),
                         0);
        assert_string_equal(json_string_value(json_array_get(res, 0)), "x");
        json_decref(res);
        rp_lua_free(l);
    }
    /* An exact instruction budget counts the matcher's steps too. */
    rp_lua_opts_t o = {.sandbox = true, .max_instructions = 1000000};
    rp_error_t err = {0};
    rp_lua_t *l = rp_lua_new(s, NULL, &o, &err);
    assert_non_null(l);
    assert_int_not_equal(rp_lua_eval(l, scripts[0], "exact", NULL, &err), 0);
    assert_non_null(strstr(err.msg, "instruction budget"));
    rp_lua_free(l);
    rp_store_close(s);
}

/* A read the engine makes for a script (crm.count with a filter that scans) is stopped at the
 * script's limits between two steps of the database, and the script sees its limit named. */
static void test_limits_hold_inside_store_reads(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    define(s, "item", "{\"fields\": {\"name\": {\"type\": \"text\"}}}");
    json_t *many = json_array();
    for (int i = 0; i < 20000; i++)
        json_array_append_new(many, json_pack("{s:s}", "name", "row"));
    rp_error_t err = {0};
    assert_int_equal(rp_store_create_many(s, &test_ctx, "item", many, NULL, NULL, &err), 0);
    json_decref(many);
    static const char script[] =
        "local any = {}\n"
        "for i = 1, 120 do any[i] = {name = {contains = 'zq' .. i}} end\n"
        "return crm.count('item', {['or'] = any})\n";
    for (int wall = 0; wall < 2; wall++) {
        rp_lua_opts_t o = {.sandbox = true, .max_cpu_ms = wall ? 5000 : 40,
                           .max_wall_ms = wall ? 40 : 5000};
        rp_lua_t *l = rp_lua_new(s, NULL, &o, &err);
        assert_non_null(l);
        int64_t t0 = now_ms();
        int rc = rp_lua_eval(l, script, "reads", NULL, &err);
        int64_t took = now_ms() - t0;
        if (rc == 0 || !strstr(err.msg, "reads:3: RP-E1701"))
            fail_msg("the read was not stopped at the limit: rc %d, %s", rc, err.msg);
        assert_non_null(strstr(err.msg, wall ? "wall-time limit of 40 ms" : "CPU budget of 40"));
        if (took > 1000)
            fail_msg("the read held its call %lld ms", (long long)took);
        rp_lua_free(l);
    }
    rp_store_close(s);
}

/* The other library calls that run long in one C call: a big table.sort compares through Lua,
 * where the limits hold (and still sorts right); load() and crm.json.decode take bounded text;
 * a table converted to JSON asks the limits as it goes. */
static void test_limits_hold_inside_library_calls(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    rp_error_t err = {0};
    /* 400 ms: what is checked is the size limits, which must come before the CPU budget; at
     * 60 ms, under ASan with the suite beside it, building a 2 MB string ran out of CPU first. */
    rp_lua_opts_t o = {.sandbox = true, .max_cpu_ms = 400, .max_wall_ms = 2000};
    rp_lua_t *l = rp_lua_new(s, NULL, &o, &err);
    assert_non_null(l);
    json_t *res = NULL;
    assert_int_equal(rp_lua_eval(l, "local t = {} for i = 1, 20000 do t[i] = (i * 7919) % 10007 "
                                    "end table.sort(t) for i = 2, #t do assert(t[i - 1] <= t[i]) "
                                    "end local u = {'b', 'a'} table.sort(u) return u[1], t[1]",
                                 "sorts", &res, &err),
                     0);
    assert_string_equal(json_string_value(json_array_get(res, 0)), "a");
    assert_int_equal(json_integer_value(json_array_get(res, 1)), 0);
    json_decref(res);
    static const struct {
        const char *code, *want;
    } cases[] = {
        {"return load(string.rep(' ', 2 << 20))", "RP-E1703: a chunk of 2097152 bytes"},
        {"return crm.json.decode('[' .. string.rep('1,', 1 << 20) .. '1]')",
         "RP-E1703: a text of 2097155 bytes"},
        {"return crm.json.encode({s = string.rep('\\1', 2 << 20)})",
         "RP-E1703: a value holding 2097153 bytes of text"},
        {"return table.move({}, 1, 3e9, 2)", "RP-E1701"},

    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int64_t t0 = now_ms();
        int rc = rp_lua_eval(l, cases[i].code, "big", NULL, &err);
        int64_t took = now_ms() - t0;
        if (rc == 0 || !strstr(err.msg, cases[i].want))
            fail_msg("case %zu: rc %d, %s (wanted %s)", i, rc, err.msg, cases[i].want);
        if (took > 2500)
            fail_msg("case %zu held its call %lld ms", i, (long long)took);
    }
    rp_lua_free(l);
    /* Converting a big table to JSON: stopped inside the conversion, not after it. */
    rp_lua_opts_t roomy = {.sandbox = true, .max_cpu_ms = 400, .max_wall_ms = 4000};
    l = rp_lua_new(s, NULL, &roomy, &err);
    assert_non_null(l);
    int64_t t0 = now_ms();
    int erc = rp_lua_eval(l, "local t = {} for i = 1, 5e4 do t[i] = {a = i, b = {i}} end\n"
                             "for k = 1, 1000 do crm.json.encode(t) end", "big", NULL, &err);
    if (erc == 0 || !strstr(err.msg, "big:2: RP-E1701") || now_ms() - t0 > 4000)
        fail_msg("a big encode was not stopped: rc %d, %s", erc, err.msg);
    /* Keys are text too: four keys of 3 MiB are over the cap of any value handed over. */
    erc = rp_lua_eval(l, "local s = string.rep('\\1', 3 << 20) local t = {} "
                         "for i = 1, 4 do t[s .. i] = 1 end return crm.json.encode(t)",
                      "big", NULL, &err);
    if (erc == 0 || !strstr(err.msg, "the value holds 12582916 bytes of text; the limit is 8388608"))
        fail_msg("big keys were not capped: rc %d, %s", erc, err.msg);
    rp_lua_free(l);
    /* An exact instruction budget that the filling fits in and the sort does not: Lua's own
     * sort would finish unseen, in C. */
    rp_lua_opts_t exact = {.sandbox = true, .max_instructions = 5000000};
    l = rp_lua_new(s, NULL, &exact, &err);
    assert_non_null(l);
    int rc = rp_lua_eval(l, "local t = {} for i = 1, 2e5 do t[i] = (i * 7919) % 1000003 end\n"
                            "table.sort(t)", "big", NULL, &err);
    if (rc == 0 || !strstr(err.msg, "big:2: RP-E1701") || !strstr(err.msg, "instruction"))
        fail_msg("a big sort was not stopped inside: rc %d, %s", rc, err.msg);
    /* …and with a comparison that is a C function. */
    rc = rp_lua_eval(l, "local t = {} for i = 1, 2e5 do t[i] = (i * 7919) % 1000003 end\n"
                        "table.sort(t, math.ult)", "big", NULL, &err);
    if (rc == 0 || !strstr(err.msg, "big:2: RP-E1701") || !strstr(err.msg, "instruction"))
        fail_msg("a big sort by a C comparison was not stopped inside: rc %d, %s", rc, err.msg);
    rp_lua_free(l);
    rp_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_cases),
        cmocka_unit_test(test_random_patterns),
        cmocka_unit_test(test_limits_hold_inside_matching),
        cmocka_unit_test(test_limits_hold_inside_store_reads),
        cmocka_unit_test(test_limits_hold_inside_library_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
