/*
 * test_lua.c — the Lua room's sandbox and limits: the sandbox's exact set of globals and what
 * it takes away, each limit (instructions, wall time, CPU, memory, recursion) with what it
 * leaves behind, error values, coroutines, and limits no script can catch. Scripts at work
 * (hooks, handlers, jobs, schedules, dry runs): test_lua_rules.c.
 */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lua_helpers.h"

/* ---- the sandbox ------------------------------------------------------------------------- */

static bool allowed(const char *name)
{
    for (int i = 0; rp__lua_sandbox_globals[i]; i++)
        if (strcmp(rp__lua_sandbox_globals[i], name) == 0)
            return true;
    return false;
}

static void test_sandbox_exact_globals(void **state)
{
    (void)state;
    world_t w;
    world_open(&w, &(rp_lua_opts_t){.sandbox = true, .name = "rules.lua"});
    json_t *res = eval_ok(w.l, "globals.lua",
                          "local names = {}\n"
                          "for k in pairs(_G) do names[#names + 1] = tostring(k) end\n"
                          "return names");
    json_t *names = json_array_get(res, 0);
    size_t i;
    json_t *v;
    json_array_foreach(names, i, v) {
        if (!allowed(json_string_value(v)))
            fail_msg("a sandboxed script sees the global \"%s\", which is not in "
                     "rp__lua_sandbox_globals", json_string_value(v));
    }
    for (int k = 0; rp__lua_sandbox_globals[k]; k++) {
        bool found = false;
        json_array_foreach(names, i, v) found = found ||
                                               strcmp(json_string_value(v),
                                                      rp__lua_sandbox_globals[k]) == 0;
        if (!found)
            fail_msg("the allowed global \"%s\" is missing from the sandbox",
                     rp__lua_sandbox_globals[k]);
    }
    json_decref(res);
    world_close(&w);
}

/* Bytecode made by a plain Lua state, so the sandbox is offered a real binary chunk. */
typedef struct bytes {
    char data[4096];
    size_t n;
} bytes_t;

static int dump_writer(lua_State *L, const void *p, size_t n, void *ud)
{
    (void)L;
    bytes_t *b = ud;
    if (b->n + n > sizeof b->data)
        return 1;
    memcpy(b->data + b->n, p, n);
    b->n += n;
    return 0;
}

static void test_sandbox_takes_away_the_outside(void **state)
{
    (void)state;
    world_t w;
    world_open(&w, &(rp_lua_opts_t){.sandbox = true, .name = "rules.lua"});
    static const char *const gone[] = {
        "io",          "os",         "debug",          "package", "dofile",
        "loadfile",    "require",    "collectgarbage", "warn",    "string.dump",
        "(\"\").dump", "loadstring", "module",         "setfenv", NULL};
    for (int i = 0; gone[i]; i++) {
        char code[128];
        snprintf(code, sizeof code, "return %s == nil", gone[i]);
        if (strcmp(eval1(w.l, code), "true") != 0)
            fail_msg("%s is reachable from the sandbox", gone[i]);
    }

    /* A real binary chunk is refused, whatever mode the script asks for. */
    lua_State *raw = luaL_newstate();
    assert_int_equal(luaL_loadstring(raw, "return 42"), LUA_OK);
    bytes_t bc = {.n = 0};
    assert_int_equal(lua_dump(raw, dump_writer, &bc, 0), 0);
    lua_close(raw);
    assert_true(bc.n > 4 && bc.data[0] == '\033');
    lua_pushlstring(w.l->L, bc.data, bc.n);
    lua_setglobal(w.l->L, "bytecode");
    json_t *res = eval_ok(w.l, "bin.lua",
                          "local f1, e1 = load(bytecode)\n"
                          "local f2, e2 = load(bytecode, 'x', 'b')\n"
                          "local f3 = load(bytecode, 'x', 'bt', {})\n"
                          "return f1 == nil and f2 == nil and f3 == nil, e1, e2");
    assert_true(json_is_true(json_array_get(res, 0)));
    assert_contains(json_string_value(json_array_get(res, 1)), "binary chunk");
    assert_contains(json_string_value(json_array_get(res, 2)), "binary chunk");
    json_decref(res);

    /* Text chunks still load, and an environment given to load() is all they see. */
    assert_string_equal(eval1(w.l, "return load('return 6 * 7')()"), "42");
    assert_string_equal(eval1(w.l, "return load('return x', 'c', 't', {x = 7})()"), "7");
    assert_string_equal(eval1(w.l, "return load('return crm', 'c', 't', {})() == nil"), "true");
    /* A name and a mode without an env: the chunk sees the sandbox's globals (it once got itself
     * as its _ENV, the fourth slot of the stack being the chunk just loaded). */
    assert_string_equal(eval1(w.l, "return load('return type(crm)', '=c', 't')()"), "table");
    assert_string_equal(eval1(w.l, "return load('return type(string)', '=c')()"), "table");
    /* The sandbox's own setmetatable and xpcall behave as the base library's do. */
    assert_string_equal(eval1(w.l, "return getmetatable(setmetatable({}, {__index = {a = 1}}))"
                                   ".__index.a"),
                        "1");
    assert_string_equal(eval1(w.l, "local t = setmetatable({}, {__metatable = 'locked'})\n"
                                   "return select(2, pcall(setmetatable, t, {}))"),
                        "cannot change a protected metatable");
    assert_string_equal(eval1(w.l, "return select(2, xpcall(function() error('x', 0) end,"
                                   " function(e) return 'handled ' .. e end))"),
                        "handled x");
    assert_string_equal(eval1(w.l, "return select(2, xpcall(function(a, b) return a + b end,"
                                   " print, 2, 3))"),
                        "5");
    assert_string_equal(eval1(w.l, "local co = coroutine.wrap(function()\n"
                                   "  return xpcall(function() coroutine.yield(1) return 2 end,"
                                   " print)\n"
                                   "end)\n"
                                   "local a = co()\n"
                                   "local ok, b = co()\n"
                                   "return a .. ' ' .. tostring(ok) .. ' ' .. b"),
                        "1 true 2");
    /* print goes to the log, never to stdout, its values joined by spaces and nothing else. */
    eval_do(w.l, "print.lua", "print('hello', 42)");
    eval_do(w.l, "log.lua", "crm.log.warn('careful', 7, true)");
    assert_string_equal(last_log, "warn script:rules.lua careful 7 true");
    world_close(&w);
}

/* ---- limits ------------------------------------------------------------------------------ */

static void test_limit_instructions(void **state)
{
    (void)state;
    world_t w;
    world_open(&w, &(rp_lua_opts_t){.sandbox = true, .name = "rules.lua",
                                    .max_instructions = 1000000});
    const char *m = eval_fail(w.l, "loop.lua", "local n = 0\n\nwhile true do n = n + 1 end\n");
    assert_contains(m, "loop.lua:3: ");
    assert_contains(m, "RP-E1701");
    assert_contains(m, "script rules.lua");
    assert_contains(m, "instruction budget of 1000000 instructions");
    /* The position is the line that ran, once, even when the loop sits in a called function. */
    m = eval_fail(w.l, "spin.lua", "local function spin()\n  while true do end\nend\n\nspin()\n");
    if (strncmp(m, "spin.lua:2: RP-E1701", 20) != 0)
        fail_msg("expected the message to start with \"spin.lua:2: RP-E1701\": %s", m);
    /* The budget is per call: ten calls of a fifth of it each all finish. */
    for (int i = 0; i < 10; i++)
        assert_string_equal(eval1(w.l, "local n = 0 for i = 1, 50000 do n = n + i end return n"),
                            "1250025000");
    world_close(&w);
}

static void test_limit_wall_time(void **state)
{
    (void)state;
    world_t w;
    world_open(&w, &(rp_lua_opts_t){.sandbox = true, .name = "rules.lua", .max_wall_ms = 50,
                                    .max_instructions = INT64_C(1) << 50});
    int64_t t = mono_ms();
    const char *m = eval_fail(w.l, "busy.lua", "local x = 0\nwhile true do x = x + 1 end\n");
    t = mono_ms() - t;
    assert_contains(m, "busy.lua:2: ");
    assert_contains(m, "script rules.lua");
    assert_contains(m, "wall-time limit of 50 ms");
    if (t > 3000)
        fail_msg("a 50 ms wall-time limit stopped the script only after %lld ms", (long long)t);
    assert_string_equal(eval1(w.l, "return 'still serving'"), "still serving");
    world_close(&w);
}

/* The default bound: CPU time, sampled every 10 ms without a hook on every instruction. */
static void test_limit_cpu(void **state)
{
    (void)state;
    world_t w;
    world_open(&w, &(rp_lua_opts_t){.sandbox = true, .name = "rules.lua", .max_cpu_ms = 50});
    int64_t t = mono_ms();
    const char *m = eval_fail(w.l, "loop.lua", "local n = 0\n\nwhile true do n = n + 1 end\n");
    t = mono_ms() - t;
    assert_contains(m, "loop.lua:3: RP-E1701: script rules.lua stopped: over its CPU budget of "
                       "50 ms");
    if (t > 3000)
        fail_msg("a 50 ms CPU budget stopped the script only after %lld ms", (long long)t);
    /* Time spent in the engine on the script's behalf counts too. */
    m = eval_fail(w.l, "writes.lua",
                  "for i = 1, 1e9 do crm.count('account', {name = 'x' .. i}) end\n");
    assert_contains(m, "writes.lua:1: RP-E1701");
    assert_contains(m, "CPU budget of 50 ms");
    /* Per call: ten calls of a few ms each all finish. */
    for (int i = 0; i < 10; i++)
        assert_string_equal(eval1(w.l, "local n = 0 for i = 1, 50000 do n = n + i end return n"),
                            "1250025000");
    /* A coroutine made in one call and resumed in a later one is watched there too. */
    eval_do(w.l, "keep.lua", "spinner = coroutine.create(function() while true do end end)");
    m = eval_fail(w.l, "later.lua", "return coroutine.resume(spinner)");
    assert_contains(m, "keep.lua:1: RP-E1701: script rules.lua stopped: over its CPU budget");
    /* Sampled too: the wall-time limit. */
    rp_lua_t *slow = new_state(&w, &(rp_lua_opts_t){.sandbox = true, .name = "slow.lua",
                                                     .max_wall_ms = 40, .max_cpu_ms = 100000});
    m = eval_fail(slow, "busy.lua", "local x = 0\nwhile true do x = x + 1 end\n");
    assert_contains(m, "busy.lua:2: RP-E1701: script slow.lua stopped: over its wall-time limit "
                       "of 40 ms");
    rp_lua_free(slow);
    world_close(&w);
}

/* A script waiting on another writer's lock stops at its wall-time limit, not at the end of
 * the store's whole busy wait (5 s). */
static void test_limit_wall_time_while_blocked(void **state)
{
    (void)state;
    char dir[64], path[256];
    test_tmpdb(dir, path, "locked.db");
    rp_store_t *a = NULL, *b = NULL;
    rp_error_t err = {0};
    assert_int_equal(rp_store_open(path, NULL, &a, &err), 0);
    define(a, "account", account_spec);
    assert_int_equal(rp_store_open(path, NULL, &b, &err), 0);
    assert_int_equal(rp_store_begin(b, &err), 0); /* b holds the write lock */
    rp_lua_t *l = rp_lua_new(a, NULL, &(rp_lua_opts_t){.sandbox = true, .name = "rules.lua",
                                                       .max_wall_ms = 300}, &err);
    assert_non_null(l);
    int64_t t = mono_ms();
    assert_int_not_equal(rp_lua_eval(l, "crm.create('account', {name = 'Blocked'})", "w.lua",
                                     NULL, &err), 0);
    t = mono_ms() - t;
    assert_contains(err.msg, "locked");
    if (t > 2000)
        fail_msg("a 300 ms wall-time limit waited %lld ms on the lock", (long long)t);
    /* Outside a script the store waits as long as it always did: the deadline is gone. */
    assert_int_equal(rp_store_rollback(b, &err), 0);
    json_t *rec = json_pack("{s:s}", "name", "Free");
    assert_int_equal(rp_store_create(a, NULL, "account", rec, NULL, &err), 0);
    json_decref(rec);
    rp_lua_free(l);
    rp_store_close(a);
    rp_store_close(b);
    test_rmdir(dir);
}

static void test_limit_memory(void **state)
{
    (void)state;
    world_t w;
    world_open(&w, &(rp_lua_opts_t){.sandbox = true, .name = "rules.lua",
                                    .max_memory = 8u << 20});
    static const char *const bombs[] = {
        "local s = 'x'\nwhile true do s = s .. s end",
        "return string.rep('x', 1 << 30)",
        "return string.rep('ab', 1000000, string.rep('c', 1000))",
        "local t = {}\nfor i = 1, 1e9 do t[i] = i end",
        "local t = {}\nfor i = 1, 1e9 do t[#t + 1] = {i} end",
        "local parts = {}\nfor i = 1, 64 do parts[i] = string.rep('z', 1 << 20) end",
        NULL};
    for (int i = 0; bombs[i]; i++) {
        const char *m = eval_fail(w.l, "bomb.lua", bombs[i]);
        if (!strstr(m, "memory ceiling of 8388608 bytes") || !strstr(m, "script rules.lua") ||
            !strstr(m, "RP-E1701"))
            fail_msg("bomb %d did not stop naming the memory ceiling and the script: %s", i, m);
        /* It says where: the line that ran, or (for one allocation too big to make at all)
         * the chunk. */
        if (strncmp(m, "bomb.lua:", 9) != 0)
            fail_msg("bomb %d stopped without file:line: %s", i, m);
        /* The state is usable at once, and a fair allocation still fits under the ceiling. */
        assert_string_equal(eval1(w.l, "return #string.rep('y', 1 << 20)"), "1048576");
    }
    /* A loop that grows memory stops at its line, even when it catches errors. */
    assert_contains(eval_fail(w.l, "grow.lua",
                              "local t = {}\n"
                              "for i = 1, 1e9 do\n"
                              "  pcall(function() t[#t + 1] = string.rep('q', 1000) .. i end)\n"
                              "end\n"),
                    "grow.lua:3: RP-E1701: script rules.lua stopped: over its memory ceiling");
    /* In a hook, a refused allocation names the hook's function. */
    eval_do(w.l, "rules.lua", "crm.before('account.create', function(r)\n"
                              "  r.name = string.rep('x', 1 << 30)\n"
                              "end)\n");
    rp_error_t err = {0};
    json_t *acc = json_pack("{s:s}", "name", "A");
    assert_int_not_equal(rp_store_create(w.s, NULL, "account", acc, NULL, &err), 0);
    json_decref(acc);
    assert_contains(err.msg, "rules.lua:1: RP-E1701: script rules.lua stopped: over its memory "
                             "ceiling of 8388608 bytes (in the function that starts there)");
    world_close(&w);
}

static void test_limit_recursion(void **state)
{
    (void)state;
    world_t w;
    world_open(&w, &(rp_lua_opts_t){.sandbox = true, .name = "rules.lua"});
    const char *m = eval_fail(w.l, "deep.lua",
                              "local function f(n)\n"
                              "  return 1 + f(n + 1)\n"
                              "end\n"
                              "return f(1)\n");
    assert_contains(m, "deep.lua:2: ");
    assert_contains(m, "stack overflow");
    /* Through C: a metamethod calling itself, and transactions nested without end. */
    m = eval_fail(w.l, "meta.lua",
                  "local t = setmetatable({}, {__index = function(t, k) return t[k] end})\n"
                  "return t.x\n");
    assert_contains(m, "meta.lua:1: ");
    assert_contains(m, "stack overflow");
    m = eval_fail(w.l, "nest.lua",
                  "local function f()\n"
                  "  crm.transaction(f)\n"
                  "end\n"
                  "f()\n");
    assert_contains(m, "nest.lua:2: ");
    assert_contains(m, "stack overflow");
    assert_int_equal(rp_store_txn_depth(w.s), 0);
    assert_string_equal(eval1(w.l, "return crm.create('account', {name = 'After'}).name"),
                        "After");
    world_close(&w);
}

static void test_error_values_carry_file_line(void **state)
{
    (void)state;
    world_t w;
    world_open(&w, &(rp_lua_opts_t){.sandbox = true, .name = "rules.lua"});
    assert_string_equal(eval_fail(w.l, "vals.lua", "error({code = 7})"),
                        "vals.lua:1: error object {\"code\":7}");
    assert_string_equal(eval_fail(w.l, "vals.lua", "error(nil)"),
                        "vals.lua:1: nil (error object is not a string)");
    assert_string_equal(eval_fail(w.l, "vals.lua", "error(42)"),
                        "vals.lua:1: 42 (error object is not a string)");
    assert_string_equal(eval_fail(w.l, "vals.lua", "local function f()\n  error(false)\nend\nf()"),
                        "vals.lua:2: false (error object is not a string)");
    /* No heap address, whatever the object. */
    assert_string_equal(eval_fail(w.l, "vals.lua", "error({f = function() end})"),
                        "vals.lua:1: error object is a table that is not plain data (function)");
    assert_string_equal(eval_fail(w.l, "vals.lua", "error(print)"),
                        "vals.lua:1: error object is a function value, not a message");
    assert_null(strstr(eval_fail(w.l, "vals.lua", "local t = {} t.t = t error(t)"), "0x"));
    assert_string_equal(eval_fail(w.l, "vals.lua", "error(setmetatable({}, {__tostring = "
                                                   "function() return 'mine' end}))"),
                        "vals.lua:1: mine");
    assert_contains(eval_fail(w.l, "vals.lua", "error('plain')"), "vals.lua:1: plain");
    /* Level 0 asks Lua to leave the position out; the engine puts it back. */
    assert_contains(eval_fail(w.l, "vals.lua", "\nerror('no position', 0)"),
                    "vals.lua:2: no position");
    /* An error raised by the crm API names the script line that called it. */
    assert_contains(eval_fail(w.l, "api.lua", "\n\ncrm.get('ghost', 1)"), "api.lua:3: ");
    world_close(&w);
}

static void test_yield_at_the_wrong_place(void **state)
{
    (void)state;
    world_t w;
    world_open(&w, &(rp_lua_opts_t){.sandbox = true, .name = "rules.lua"});
    const char *m = eval_fail(w.l, "co.lua", "\ncoroutine.yield(1)\n");
    assert_contains(m, "attempt to yield from outside a coroutine");
    assert_contains(m, "co.lua:2: ");

    /* A yield across crm.transaction fails inside the coroutine, and the writes roll back. */
    json_t *res = eval_ok(w.l, "co.lua",
                          "local co = coroutine.create(function()\n"
                          "  crm.transaction(function()\n"
                          "    crm.create('account', {name = 'Half'})\n"
                          "    coroutine.yield(1)\n"
                          "  end)\n"
                          "end)\n"
                          "local ok, e = coroutine.resume(co)\n"
                          "return ok, e, crm.count('account')\n");
    assert_true(json_is_false(json_array_get(res, 0)));
    assert_contains(json_string_value(json_array_get(res, 1)), "attempt to yield across");
    assert_contains(json_string_value(json_array_get(res, 1)), "co.lua:4: ");
    assert_int_equal(json_integer_value(json_array_get(res, 2)), 0);
    json_decref(res);
    m = eval_fail(w.l, "wrap.lua",
                  "local f = coroutine.wrap(function()\n"
                  "  crm.dry_run(function() coroutine.yield() end)\n"
                  "end)\n"
                  "f()\n");
    assert_contains(m, "attempt to yield across");
    assert_int_equal(rp_store_txn_depth(w.s), 0);
    /* Coroutines that stay inside Lua work as usual, crm calls included. */
    assert_string_equal(eval1(w.l, "local co = coroutine.wrap(function()\n"
                                   "  coroutine.yield(crm.count('account'))\n"
                                   "  return 'done'\n"
                                   "end)\n"
                                   "return co() .. ' ' .. co()"),
                        "0 done");

    /* A handler that yields fails like any other handler: logged with its line, retried. */
    eval_do(w.l, "handler.lua",
            "crm.on('account.created', function(ev)\n"
            "  coroutine.yield()\n"
            "end, {name = 'yielder'})\n");
    create(w.s, "account", "{\"name\": \"A\"}");
    rp_error_t err = {0};
    assert_int_equal(rp_sched_advance(w.e, 1000, &err), 0);
    assert_contains(last_log, "subscriber=yielder");
    assert_contains(last_log, "attempt to yield from outside a coroutine");
    assert_contains(last_log, "handler.lua:2: ");
    assert_string_equal(eval1(w.l, "return crm.count('account')"), "1");
    world_close(&w);
}

/* What each limit needs lowered to trip quickly, and a script that trips it. */
typedef struct limit_case {
    const char *name;
    rp_lua_opts_t opts;
    const char *bomb;
} limit_case_t;

static const limit_case_t limit_cases[] = {
    {"instruction budget", {.max_instructions = 1000000}, "while true do end"},
    {"CPU budget", {.max_cpu_ms = 30}, "while true do end"},
    {"wall-time limit", {.max_wall_ms = 30, .max_instructions = INT64_C(1) << 50},
     "while true do end"},
    {"memory ceiling", {.max_memory = 8u << 20}, "local s = 'x' while true do s = s .. s end"},
};

static void test_limits_roll_back_and_the_engine_serves_on(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof limit_cases / sizeof *limit_cases; i++) {
        const limit_case_t *c = &limit_cases[i];
        rp_lua_opts_t o = c->opts;
        o.sandbox = true;
        o.name = "rules.lua";
        world_t w;
        world_open(&w, &o);
        char code[512];

        /* The transaction the script opened is undone. */
        snprintf(code, sizeof code,
                 "crm.transaction(function()\n"
                 "  crm.create('account', {name = 'Doomed'})\n"
                 "  %s\n"
                 "end)\n", c->bomb);
        const char *m = eval_fail(w.l, "txn.lua", code);
        if (!strstr(m, c->name))
            fail_msg("over its %s, the script said: %s", c->name, m);
        assert_int_equal(count_of(w.s, "account"), 0);
        assert_int_equal(rp_store_txn_depth(w.s), 0);
        assert_string_equal(eval1(w.l, "return crm.create('account', {name = 'Next'}).name"),
                            "Next");

        /* A before-hook over the limit vetoes the write that ran it; the next write works. */
        snprintf(code, sizeof code,
                 "crm.before('contact.create', function(r)\n"
                 "  if r.last_name == 'Bomb' then %s end\n"
                 "end)\n", c->bomb);
        eval_do(w.l, "hook.lua", code);
        rp_error_t err = {0};
        assert_int_equal(try_create(w.s, "contact", "{\"last_name\": \"Bomb\"}", &err),
                         RP_EVETO);
        if (!strstr(err.msg, c->name))
            fail_msg("a hook over its %s vetoed with: %s", c->name, err.msg);
        assert_int_equal(count_of(w.s, "contact"), 0);
        create(w.s, "contact", "{\"last_name\": \"Fine\"}");
        assert_int_equal(count_of(w.s, "contact"), 1);

        /* A handler over the limit loses its writes, and other handlers keep receiving. */
        snprintf(code, sizeof code,
                 "crm.on('account.created', function(ev)\n"
                 "  if ev.changes.name[2] == 'Trigger' then\n"
                 "    crm.create('contact', {last_name = 'From handler'})\n"
                 "    %s\n"
                 "  end\n"
                 "end, {name = 'bomber'})\n", c->bomb);
        eval_do(w.l, "handler.lua", code);
        rp_lua_t *other = new_state(&w, &(rp_lua_opts_t){.sandbox = true, .name = "other.lua"});
        eval_do(other, "other.lua",
                "seen = 0\n"
                "crm.on('account.created', function() seen = seen + 1 end, {name = 'counter'})\n");
        create(w.s, "account", "{\"name\": \"Trigger\"}");
        assert_int_equal(rp_sched_advance(w.e, 10 * 60000, &err), 0);
        assert_int_equal(count_of(w.s, "contact"), 1);
        assert_string_equal(eval1(other, "return seen"), "1");
        json_t *dead = NULL;
        assert_int_equal(rp_events_dead(w.s, "bomber", &dead, &err), 0);
        assert_int_equal(json_array_size(dead), 1);
        assert_contains(json_string_value(json_object_get(json_array_get(dead, 0), "error")),
                        c->name);
        json_decref(dead);
        rp_lua_free(other);
        world_close(&w);
    }
}

/* Runs @p code in a child process (so a limit that fails to hold cannot hang the suite) and
 * checks that it stops within @p seconds with @p needle in its message. */
static void run_guarded(const rp_lua_opts_t *o, const char *code, const char *needle, int seconds)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm((unsigned)seconds);
        world_t w;
        world_open(&w, o);
        rp_error_t err = {0};
        int rc = rp_lua_eval(w.l, code, "escape.lua", NULL, &err);
        bool ok = rc != 0 && strstr(err.msg, needle);
        if (!ok)
            fprintf(stderr, "escape.lua: rc=%d message: %s\n", rc, err.msg);
        world_close(&w); /* closing runs finalizers: that must not hang either */
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        fail_msg("still running after %d s, so the limit did not hold:\n%s", seconds, code);
    if (WEXITSTATUS(status) != 0)
        fail_msg("stopped without \"%s\" in its message:\n%s", needle, code);
}

static void test_limits_cannot_be_caught(void **state)
{
    (void)state;
    rp_lua_opts_t budget = {.sandbox = true, .name = "rules.lua", .max_instructions = 1000000};
    rp_lua_opts_t wall = {.sandbox = true, .name = "rules.lua", .max_wall_ms = 50,
                          .max_instructions = INT64_C(1) << 50};
    const char *pcall_loop = "local f = function() while true do end end\n"
                             "while true do pcall(f) end\n";
    const char *goto_loop = "local f = function() while true do end end\n"
                            "::again:: pcall(f) goto again\n";
    const char *resume_loop = "while true do\n"
                              "  coroutine.resume(coroutine.create(function() while true do end "
                              "end))\n"
                              "end\n";
    const char *xpcall_loop = "while true do xpcall(function() while true do end end, "
                              "function(e) while true do end end) end\n";
    run_guarded(&budget, pcall_loop, "instruction budget", 10);
    run_guarded(&budget, goto_loop, "instruction budget", 10);
    run_guarded(&budget, resume_loop, "instruction budget", 10);
    run_guarded(&budget, xpcall_loop, "instruction budget", 10);
    run_guarded(&wall, pcall_loop, "wall-time limit", 10);
    /* The same escapes against the sampled CPU budget, and the coroutine ones it must follow:
     * the ticker arms whichever Lua thread runs. */
    rp_lua_opts_t cpu = {.sandbox = true, .name = "rules.lua", .max_cpu_ms = 50};
    run_guarded(&cpu, pcall_loop, "CPU budget", 10);
    run_guarded(&cpu, goto_loop, "CPU budget", 10);
    run_guarded(&cpu, resume_loop, "CPU budget", 10);
    run_guarded(&cpu, xpcall_loop, "CPU budget", 10);
    run_guarded(&cpu, "local co = coroutine.wrap(function() while true do end end)\n"
                      "while true do pcall(co) end\n", "CPU budget", 10);
    run_guarded(&cpu, "local co = coroutine.create(function()\n"
                      "  while true do pcall(coroutine.yield) end\n"
                      "end)\n"
                      "while true do pcall(coroutine.resume, co) end\n", "CPU budget", 10);
    run_guarded(&cpu, "local inner = coroutine.wrap(function() while true do end end)\n"
                      "local outer = coroutine.wrap(function() while true do pcall(inner) end end)\n"
                      "while true do pcall(outer) end\n", "CPU budget", 10);
    rp_lua_opts_t cpu_wall = {.sandbox = true, .name = "rules.lua", .max_wall_ms = 50,
                              .max_cpu_ms = 100000};
    run_guarded(&cpu_wall, resume_loop, "wall-time limit", 10);
    /* A finalizer runs with hooks off, so a script may not set one. */
    run_guarded(&budget,
                "setmetatable({}, {__gc = function() while true do end end})\n"
                "local t = {}\n"
                "for i = 1, 1e6 do t[i] = {} end\n",
                "__gc", 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sandbox_exact_globals),
        cmocka_unit_test(test_sandbox_takes_away_the_outside),
        cmocka_unit_test(test_limit_instructions),
        cmocka_unit_test(test_limit_wall_time),
        cmocka_unit_test(test_limit_cpu),
        cmocka_unit_test(test_limit_wall_time_while_blocked),
        cmocka_unit_test(test_limit_memory),
        cmocka_unit_test(test_limit_recursion),
        cmocka_unit_test(test_error_values_carry_file_line),
        cmocka_unit_test(test_yield_at_the_wrong_place),
        cmocka_unit_test(test_limits_roll_back_and_the_engine_serves_on),
        cmocka_unit_test(test_limits_cannot_be_caught),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
