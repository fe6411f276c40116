/*
 * lua.c — the Lua room: states with limits (CPU, wall time, memory, optionally an exact
 * instruction count) and the sandbox. Values crossing between Lua and JSON are values.c, the
 * `crm` API crm.c and the rules a script registers rules.c.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "lua_internal.h"
#include "rapport/time.h"

#define HOOK_EVERY 1000       /* instructions between two budget checks */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The state's own pointer lives in the extra space Lua keeps before every lua_State for this
 * purpose (copied into each coroutine): read on every crm call, it costs no table lookup. */
rp_lua_t *rp__lua_of(lua_State *L)
{
    return *(rp_lua_t **)lua_getextraspace(L);
}

/* ---- limits ------------------------------------------------------------------------------ */

static void limit_hook(lua_State *L, lua_Debug *ar);

/* Sets the one hook Lua has per thread to check the limits after @p count instructions. A
 * state that counts coverage keeps its line hook on through it: limit_hook does both jobs, so
 * neither can drop the other (safe in the ticker's signal handler: it only reads a field). */
static void arm(rp_lua_t *l, lua_State *L, int count)
{
    lua_sethook(L, limit_hook, LUA_MASKCOUNT | (l->o.coverage ? LUA_MASKLINE : 0), count);
}

/* Ends the limits' checks on @p L; a coverage count's line hook stays. */
static void disarm(rp_lua_t *l, lua_State *L)
{
    if (l->o.coverage)
        lua_sethook(L, limit_hook, LUA_MASKLINE, 0);
    else
        lua_sethook(L, NULL, 0, 0);
}

static void *l_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    rp_lua_t *l = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        l->mem_used -= old;
        return NULL;
    }
    if (l->limits_on && nsize > old && l->mem_used + (nsize - old) > l->o.max_memory) {
        /* Over the ceiling: trip the limit and arm the hook, so the call stops at its next
         * instruction with that instruction's file:line. Within a grace of an eighth of the
         * ceiling the allocation still succeeds (the stop itself needs a little memory);
         * beyond it, or for one huge allocation, Lua gets NULL and unwinds at once. */
        size_t grace = l->o.max_memory / 8;
        /* First refuse: Lua then runs an emergency full collection and asks again, and the
         * garbage of a call that just stopped is often all that is over. */
        if (!l->refused) {
            l->refused = true;
            return NULL;
        }
        l->refused = false;
        if (!l->tripped) {
            l->tripped = RP__TRIP_MEMORY;
            if (l->cur)
                arm(l, l->cur, 1);
        }
        l->mem_hit = true;
        if (l->mem_used + (nsize - old) > l->o.max_memory + grace)
            return NULL;
    }
    if (nsize > old)
        l->refused = false;
    void *np = realloc(ptr, nsize);
    if (np)
        l->mem_used = l->mem_used - old + nsize;
    return np;
}

/* How a sandboxed call is stopped. Lua 5.4 sends every instruction through luaG_traceexec
 * while any count hook is set, whatever its interval: a hook every 1,000 or every 1,000,000
 * instructions both cost about 2x on a tight loop (bench_lua c). So by default no hook is set
 * while a script runs. A per-thread timer on the thread's CPU clock raises a signal every
 * TICK_MS of CPU; its handler counts the tick against the running calls and arms a one-shot
 * hook on the running Lua thread (lua_sethook is safe in a signal handler: lua.c stops a
 * script on Ctrl-C the same way). The hook checks the CPU budget and the wall-time limit,
 * then disarms itself. An exact instruction budget (max_instructions > 0) keeps a count hook
 * on all the time, at that cost. */
#define TICK_MS 10

typedef struct {
    timer_t id;
    int refs;
    rp_lua_t *volatile running; /* The innermost sandboxed call on this thread, or NULL. */
} ticker_t;

static __thread ticker_t ticker __attribute__((tls_model("initial-exec")));
static pthread_once_t tick_once = PTHREAD_ONCE_INIT;
static int tick_installed;

static void on_tick(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)si;
    (void)uc;
    int saved = errno;
    rp_lua_t *l = ticker.running;
    for (rp_lua_t *x = l; x; x = x->tick_prev)
        x->ticks++;
    if (l && l->cur && !l->exact)
        arm(l, l->cur, 1);
    errno = saved;
}

/* Makes and starts this thread's timer. */
static bool ticker_start(void)
{
    struct sigevent sev = {0};
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIGRTMIN + RP_LUA_TICK_SIGNAL;
    sev._sigev_un._tid = gettid();
    if (timer_create(CLOCK_THREAD_CPUTIME_ID, &sev, &ticker.id) != 0)
        return false;
    struct itimerspec it = {{0, TICK_MS * 1000000L}, {0, TICK_MS * 1000000L}};
    if (timer_settime(ticker.id, 0, &it, NULL) != 0) {
        timer_delete(ticker.id);
        return false;
    }
    return true;
}

/* A forked child has no timers: the thread that forked gets its ticker back, so the states
 * it carries over stay watched. */
static void ticker_after_fork(void)
{
    if (ticker.refs > 0 && !ticker_start())
        ticker.refs = 0;
}

static void tick_install(void)
{
    struct sigaction sa = {0};
    sa.sa_sigaction = on_tick;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    tick_installed = sigaction(SIGRTMIN + RP_LUA_TICK_SIGNAL, &sa, NULL) == 0 &&
                     pthread_atfork(NULL, NULL, ticker_after_fork) == 0;
}

/* Starts this thread's ticker for one more sandboxed state; false if the system refused. */
static bool ticker_ref(void)
{
    if (ticker.refs > 0) {
        ticker.refs++;
        return true;
    }
    pthread_once(&tick_once, tick_install);
    if (!tick_installed || !ticker_start())
        return false;
    ticker.refs = 1;
    return true;
}

static void ticker_unref(void)
{
    if (ticker.refs > 0 && --ticker.refs == 0)
        timer_delete(ticker.id);
}

/* The limit that stopped the running call, as "wall-time limit of 5000 ms". */
static const char *tripped_limit(rp_lua_t *l, char *what, size_t cap)
{
    switch (l->tripped) {
    case RP__TRIP_WALL:
        if (l->deadline_inherited)
            snprintf(what, cap, "time budget of the call it ran in (%lld ms were left when it "
                     "started)", (long long)l->budget_ms);
        else
            snprintf(what, cap, "wall-time limit of %lld ms", (long long)l->o.max_wall_ms);
        break;
    case RP__TRIP_CPU:
        snprintf(what, cap, "CPU budget of %lld ms", (long long)l->o.max_cpu_ms);
        break;
    case RP__TRIP_MEMORY:
        snprintf(what, cap, "memory ceiling of %zu bytes", l->o.max_memory);
        break;
    case RP__TRIP_INSTRUCTIONS:
        snprintf(what, cap, "instruction budget of %lld instructions",
                 (long long)l->o.max_instructions);
        break;
    default:
        return NULL;
    }
    return what;
}

/* Trips the first limit the running call is over, if any; true when one is tripped. */
static bool over_limits(rp_lua_t *l)
{
    if (!l->tripped) {
        /* At the deadline, as the store judges it: a read stopped there names this limit. */
        if (mono_ms() >= l->deadline)
            l->tripped = RP__TRIP_WALL;
        else if ((int64_t)l->ticks * TICK_MS > l->o.max_cpu_ms)
            l->tripped = RP__TRIP_CPU;
        else if (l->exact && l->instructions > l->o.max_instructions)
            l->tripped = RP__TRIP_INSTRUCTIONS;
    }
    return l->tripped != 0;
}

/* Writes the stop's message once, at the position @p ar (of thread @p L) names, and makes the
 * stop stick: the limit stays tripped until the call unwinds, checked at every instruction,
 * so a script that catches the error with pcall meets it again at its very next step outside
 * the pcall — with the message of the first stop, whose line is the script's, not that of
 * the code that caught it. */
static void trip(rp_lua_t *l, lua_State *L, lua_Debug *ar)
{
    char what[128];
    tripped_limit(l, what, sizeof what);
    arm(l, L, 1);
    if (!l->trip_msg[0]) {
        if (ar)
            lua_getinfo(L, "Sl", ar);
        /* Stopped inside the sandbox's own Lua (table.sort's comparison): name the script's
         * line that called it, when the stack still holds it (a tail call may have left). */
        lua_Debug up;
        for (int level = 1; ar && strcmp(ar->short_src, "sandbox") == 0; level++) {
            if (!lua_getstack(L, level, &up))
                break;
            lua_getinfo(L, "Sl", &up);
            if (up.currentline > 0 && strcmp(up.short_src, "sandbox") != 0)
                ar = &up;
        }
        snprintf(l->trip_msg, sizeof l->trip_msg,
                 "%s:%d: RP-E1701: script %s stopped: over its %s", ar ? ar->short_src : "?",
                 ar ? ar->currentline : 0, l->name, what);
    }
}

static void limit_hook(lua_State *L, lua_Debug *ar)
{
    rp_lua_t *l = rp__lua_of(L);
    if (ar->event == LUA_HOOKLINE) {
        /* Only a coverage count sets the line mask; the limits are the count events' job. */
        if (l && l->o.coverage)
            rp__lua_cov_line(l->o.coverage, L, ar);
        return;
    }
    if (!l || !l->limits_on) {
        if (l && !l->exact)
            disarm(l, L);
        return;
    }
    if (l->exact)
        l->instructions += HOOK_EVERY;
    if (!over_limits(l)) {
        if (!l->exact)
            disarm(l, L); /* the one-shot check is done */
        return;
    }
    trip(l, L, ar);
    /* Not luaL_error: in a hook it would add the caller's position in front of this one. */
    lua_pushstring(L, l->trip_msg);
    lua_error(L);
}

/* The nearest Lua function on @p L's stack (the C function running was called by it, maybe
 * through pcall), for a stop's position; level 0 when there is none. */
static lua_Debug *caller_of_c(lua_State *L, lua_Debug *ar)
{
    for (int level = 1; lua_getstack(L, level, ar); level++) {
        lua_getinfo(L, "l", ar);
        if (ar->currentline > 0)
            return ar;
    }
    return lua_getstack(L, 0, ar) ? ar : NULL;
}

bool rp__lua_limits_hit(lua_State *L, unsigned steps)
{
    rp_lua_t *l = rp__lua_of(L);
    if (!l || !l->limits_on)
        return false;
    if (l->exact)
        l->instructions += steps;
    if (!over_limits(l))
        return false;
    lua_Debug ar;
    trip(l, L, caller_of_c(L, &ar));
    return true;
}

void rp__lua_check_limits(lua_State *L, unsigned steps)
{
    if (!rp__lua_limits_hit(L, steps))
        return;
    lua_pushstring(L, rp__lua_of(L)->trip_msg);
    lua_error(L);
}

/* The store's question between steps of a long read made for this state (crm.find, search,
 * count): stop it? It trips the limit without raising, since SQLite is on the C stack; the
 * crm call raises the stop's message when the store returns. */
static int store_interrupt(void *ud)
{
    rp_lua_t *l = ud;
    if (!l->limits_on || !over_limits(l))
        return 0;
    if (l->cur && !l->trip_msg[0]) {
        lua_Debug ar;
        trip(l, l->cur, caller_of_c(l->cur, &ar));
    }
    return 1;
}

void rp__lua_raise_if_tripped(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    if (!l || !l->limits_on || !l->tripped || !l->trip_msg[0])
        return;
    arm(l, L, 1);
    lua_pushstring(L, l->trip_msg);
    lua_error(L);
}

/* coroutine.resume for scripts: the ticker must arm the thread that runs, and a limit that
 * stopped a coroutine stops its resumer too. */
static int safe_resume(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
    lua_State *co = lua_tothread(L, 1);
    luaL_argexpected(L, co, 1, "coroutine");
    lua_State *prev = l->cur;
    if (l->limits_on && l->exact && !l->tripped)
        arm(l, co, HOOK_EVERY);
    l->cur = co;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    int rc = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
    l->cur = prev;
    if (l->limits_on && l->tripped) {
        arm(l, L, 1);
        lua_pushstring(L, l->trip_msg);
        return lua_error(L);
    }
    if (rc != LUA_OK)
        return lua_error(L);
    return lua_gettop(L);
}

/* The message handler of every call into Lua: makes sure the message is a string that carries
 * file:line, whatever was thrown (error({…}), error(nil), error(42)). */
/* Whether @p msg already starts with a position "chunk:line:". */
static bool has_position(const char *msg)
{
    const char *c = strchr(msg, ':');
    if (!c || c == msg || !(c[1] >= '0' && c[1] <= '9'))
        return false;
    c++;
    while (*c >= '0' && *c <= '9')
        c++;
    return *c == ':';
}

static int msgh(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TSTRING) {
        /* Errors from the C API (a yield outside a coroutine) or error(msg, 0) come without a
         * position: add the line of the Lua code that was running. */
        if (!has_position(lua_tostring(L, 1))) {
            for (int level = 1; level < 8; level++) {
                lua_Debug ar;
                if (!lua_getstack(L, level, &ar))
                    break;
                lua_getinfo(L, "Sl", &ar);
                if (ar.currentline > 0) {
                    lua_pushfstring(L, "%s:%d: %s", ar.short_src, ar.currentline,
                                    lua_tostring(L, 1));
                    return 1;
                }
            }
        }
        return 1;
    }
    /* Level 1 is error() itself (a C function, no line); level 2 is the code that called it. */
    luaL_where(L, 2);
    if (luaL_getmetafield(L, 1, "__tostring") != LUA_TNIL) {
        lua_pop(L, 1);
        luaL_tolstring(L, 1, NULL); /* the object says what it is */
        lua_concat(L, 2);
        return 1;
    }
    json_t *j = NULL;
    const char *why = NULL;
    if (lua_type(L, 1) == LUA_TTABLE)
        j = rp__lua_to_json(L, 1, &why);
    char *d = j ? json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    json_decref(j);
    if (d) {
        lua_pushfstring(L, "error object %s", d);
        free(d);
    } else if (lua_type(L, 1) == LUA_TTABLE) {
        /* Never "table: 0x55…": an address says nothing to whoever reads it, and tells an
         * attacker where the heap is. */
        lua_pushfstring(L, "error object is a table that is not plain data (%s)",
                        why ? why : "it cannot be shown");
    } else if (lua_type(L, 1) == LUA_TNUMBER || lua_type(L, 1) == LUA_TBOOLEAN ||
               lua_isnil(L, 1)) {
        luaL_tolstring(L, 1, NULL);
        lua_pushstring(L, " (error object is not a string)");
        lua_concat(L, 2);
    } else {
        lua_pushfstring(L, "error object is a %s value, not a message",
                        luaL_typename(L, 1));
    }
    lua_concat(L, 2);
    return 1;
}

int rp__lua_pcall(rp_lua_t *l, int nargs, int nres, rp_error_t *err)
{
    lua_State *L = l->L;
    int base = lua_gettop(L) - nargs;
    /* Under the message handler, the function called: a memory error unwinds without a
     * message handler, and is then placed at the function. */
    lua_pushvalue(L, base);
    lua_pushcfunction(L, msgh);
    lua_rotate(L, base, 2);
    base++;
    bool outer = l->depth++ == 0;
    if (outer && l->o.limits) {
        l->instructions = 0;
        l->tripped = 0;
        l->trip_msg[0] = '\0';
        l->ticks = 0;
        /* A caller with a budget of its own (an HTTP request, an enclosing call) that ends
         * sooner than the wall-time limit sets the deadline. */
        int64_t now = mono_ms(), outer_deadline = rp_store_deadline(l->s);
        l->deadline = now + l->o.max_wall_ms;
        l->deadline_inherited = outer_deadline && outer_deadline < l->deadline;
        if (l->deadline_inherited) {
            l->deadline = outer_deadline;
            l->budget_ms = outer_deadline > now ? outer_deadline - now : 0;
        }
        l->mem_hit = false;
        l->refused = false;
        l->limits_on = true;
        l->cur = L;
        if (l->exact)
            arm(l, L, HOOK_EVERY);
        l->tick_prev = ticker.running;
        ticker.running = l;
    }
    /* A nested call (a hook this state's own write runs) runs on the main thread even when
     * the outer one is in a coroutine: that is the thread the ticker must arm meanwhile. */
    lua_State *was_cur = l->cur;
    int64_t was_deadline = 0;
    rp_store_interrupt_fn was_fn = NULL;
    void *was_ud = NULL;
    if (l->o.limits) {
        l->cur = L;
        /* A lock the call waits on, or a read it makes, lasts no longer than its wall-time
         * limit (nor an enclosing call's, when that is earlier); a read also stops at its CPU
         * budget. */
        was_deadline = rp_store_set_deadline(l->s, l->deadline);
        if (was_deadline && was_deadline < l->deadline)
            rp_store_set_deadline(l->s, was_deadline);
        rp_store_set_interrupt(l->s, store_interrupt, l, &was_fn, &was_ud);
    }
    int rc = lua_pcall(L, nargs, nres, base);
    if (rc == LUA_OK && outer && l->o.limits && l->tripped && l->trip_msg[0]) {
        /* The script caught the stop and returned at once (`return pcall(f)`, a tail call, has
         * no instruction left to stop at): the call still failed. */
        lua_settop(L, base);
        lua_pushstring(L, l->trip_msg);
        rc = LUA_ERRRUN;
    }
    if (l->o.limits) {
        l->cur = was_cur;
        rp_store_set_deadline(l->s, was_deadline);
        rp_store_set_interrupt(l->s, was_fn, was_ud, NULL, NULL);
    }
    if (--l->depth == 0) {
        l->limits_on = false;
        if (l->o.limits) {
            ticker.running = l->tick_prev;
            l->tick_prev = NULL;
            l->cur = NULL;
            /* A call stopped at the memory ceiling leaves its garbage: collect it now, so the
             * next call starts with the memory back (lauxlib's buffers get no emergency
             * collection when an allocation is refused). */
            if (l->mem_hit)
                lua_gc(L, LUA_GCCOLLECT);
        }
    }
    lua_remove(L, base); /* the message handler */
    if (rc == LUA_OK) {
        lua_remove(L, base - 1);
        return 0;
    }
    const char *msg = lua_tostring(L, -1);
    if (rc == LUA_ERRMEM || (l->mem_hit && !(msg && strstr(msg, "RP-E1701")))) {
        /* Stopped by a refused allocation, before any hook could name the line. */
        lua_Debug ar;
        char where[200] = "";
        lua_pushvalue(L, base - 1);
        if (lua_getinfo(L, ">S", &ar) && ar.linedefined > 0)
            snprintf(where, sizeof where, "%s:%d: ", ar.short_src, ar.linedefined);
        else if (ar.source[0] == '=' || ar.source[0] == '@')
            snprintf(where, sizeof where, "%s:1: ", ar.short_src);
        rp_error_set(err, RP_EINVAL, 0,
                     "%sRP-E%d: script %s stopped: over its memory ceiling of %zu bytes%s", where,
                     RP_C_LIMIT, l->name, l->o.max_memory,
                     ar.linedefined > 0 ? " (in the function that starts there)" : "");
        if (err)
            err->msgcode = RP_C_LIMIT;
    } else {
        rp_error_set(err, RP_EINVAL, 0, "%s", msg ? msg : "?");
    }
    lua_pop(L, 2);
    return RP_EINVAL;
}

/* ---- the sandbox ------------------------------------------------------------------------- */

/* load() for scripts: text chunks only, run in the sandbox unless an env is given. */
static int safe_load(lua_State *L)
{
    size_t n;
    /* load(chunk [, name [, mode [, env]]]): the env is the fourth argument only when it was
     * given (once the chunk is pushed, index 4 is the chunk itself for a shorter call). */
    bool has_env = lua_gettop(L) >= 4 && !lua_isnil(L, 4);
    const char *s = luaL_checklstring(L, 1, &n);
    const char *name = luaL_optstring(L, 2, "=(load)");
    /* Lua's parser runs a chunk in one C call, at some 30 MB/s: a chunk is capped so that
     * the call stays within a few tens of milliseconds. */
    if (n > RP_LUA_MAX_CHUNK)
        return luaL_error(L, "load: RP-E%d: a chunk of %I bytes; the limit is %d",
                          RP_C_CAP, (lua_Integer)n, RP_LUA_MAX_CHUNK);
    if (luaL_loadbufferx(L, s, n, name, "t") != LUA_OK) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    if (has_env) {
        lua_pushvalue(L, 4);
        if (!lua_setupvalue(L, -2, 1))
            lua_pop(L, 1);
    }
    return 1;
}

static int script_print(lua_State *L)
{
    rp_lua_t *l = rp__lua_of(L);
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
    rp__lua_log(l, "info", lua_tostring(L, -1));
    return 0;
}

/* The exact set of globals a sandboxed script sees (the sandbox test walks it). */
const char *const rp__lua_sandbox_globals[] = {
    "_G", "_VERSION", "assert", "error", "getmetatable", "ipairs", "load", "next", "pairs",
    "pcall", "print", "rawequal", "rawget", "rawlen", "rawset", "select", "setmetatable",
    "tonumber", "tostring", "type", "xpcall", "string", "table", "math", "utf8", "coroutine",
    "crm", NULL};

/* setmetatable() for scripts: no __gc, since Lua runs finalizers with hooks off, so a
 * finalizer would run outside every limit. */
static int safe_setmetatable(lua_State *L)
{
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "__gc");
        bool gc = !lua_isnil(L, -1);
        lua_pop(L, 1);
        if (gc)
            return luaL_error(L, "setmetatable: __gc metamethods are not allowed in scripts "
                                 "(a finalizer would run outside the script's limits)");
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* coroutine.resume tells the limits which Lua thread runs; wrap goes through it. */
static void watch_coroutines(lua_State *L)
{
    lua_getglobal(L, "coroutine");
    lua_getfield(L, -1, "resume");
    lua_pushcclosure(L, safe_resume, 1);
    lua_setfield(L, -2, "resume");
    lua_pop(L, 1);
    static const char safe_wrap[] =
        "local create, resume, pack, unpack = coroutine.create, coroutine.resume, table.pack,"
        " table.unpack\n"
        "coroutine.wrap = function(f)\n"
        "  local co = create(f)\n"
        "  return function(...)\n"
        "    local r = pack(resume(co, ...))\n"
        "    if r[1] then return unpack(r, 2, r.n) end\n"
        "    error(r[2], 0)\n"
        "  end\n"
        "end\n";
    if (luaL_loadbufferx(L, safe_wrap, sizeof safe_wrap - 1, "=sandbox", "t") == LUA_OK)
        lua_call(L, 0, 0);
}

static void open_sandbox(lua_State *L)
{
    static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},      {LUA_STRLIBNAME, luaopen_string},
                                    {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
                                    {LUA_UTF8LIBNAME, luaopen_utf8}, {LUA_COLIBNAME, luaopen_coroutine},
                                    {NULL, NULL}};
    for (const luaL_Reg *lib = libs; lib->func; lib++) {
        luaL_requiref(L, lib->name, lib->func, 1);
        lua_pop(L, 1);
    }
    /* Take away what reaches outside the sandbox, or loads bytecode. */
    static const char *const gone[] = {"dofile", "loadfile", "collectgarbage", "require",
                                       "loadstring", "warn", NULL};
    for (int i = 0; gone[i]; i++) {
        lua_pushnil(L);
        lua_setglobal(L, gone[i]);
    }
    lua_pushcfunction(L, safe_load);
    lua_setglobal(L, "load");
    lua_pushcfunction(L, script_print);
    lua_setglobal(L, "print");
    lua_getglobal(L, "setmetatable");
    lua_pushcclosure(L, safe_setmetatable, 1);
    lua_setglobal(L, "setmetatable");
    /* Lua runs a message handler with hooks off when the error came from a hook (a limit), so
     * a looping handler would escape every limit. The sandbox's xpcall calls the handler after
     * the stack has unwound instead, where the hooks hold. */
    static const char safe_xpcall[] =
        "local pcall, pack, unpack = pcall, table.pack, table.unpack\n"
        "xpcall = function(f, h, ...)\n"
        "  local r = pack(pcall(f, ...))\n"
        "  if r[1] then return unpack(r, 1, r.n) end\n"
        "  local ok, v = pcall(h, r[2])\n"
        "  if ok then return false, v end\n"
        "  return false, 'error in error handling'\n"
        "end\n";
    if (luaL_loadbufferx(L, safe_xpcall, sizeof safe_xpcall - 1, "=sandbox", "t") == LUA_OK)
        lua_call(L, 0, 0);
    /* table.sort compares in C when given no function, where no hook fires: a big table is
     * sorted through a Lua comparison, so that the limits hold while it sorts. */
    /* The same for a comparison that is itself a C function (math.ult, rawequal), and for
     * table.move of a long range, which runs in chunks with the limits looked at between. */
    static const char safe_sort[] =
        "local sort, move, lt = table.sort, table.move, function(a, b) return a < b end\n"
        "local min, max, rawequal, type = math.min, math.max, rawequal, type\n"
        "local tointeger = function(v) return type(v) == 'number' and math.tointeger(v) end\n"
        "table.sort = function(t, cmp)\n"
        "  if type(t) == 'table' and #t > 4096 then\n"
        "    if cmp == nil then cmp = lt\n"
        "    else local c = cmp cmp = function(a, b) return c(a, b) end end\n"
        "  end\n"
        "  return sort(t, cmp)\n"
        "end\n"
        "table.move = function(a1, f0, e0, t0, a2)\n"
        "  if a2 == nil then a2 = a1 end\n"
        "  local f, e, t = tointeger(f0), tointeger(e0), tointeger(t0)\n"
        "  if not (f and e and t) or e - f < 4096 then return move(a1, f0, e0, t0, a2) end\n"
        "  if t > e or t <= f or not rawequal(a1, a2) then\n"
        "    local i = f\n"
        "    while i <= e do local j = min(i + 4095, e) move(a1, i, j, t + (i - f), a2) i = j + 1 end\n"
        "  else\n"
        "    local j = e\n"
        "    while j >= f do local i = max(j - 4095, f) move(a1, i, j, t + (i - f), a2) j = i - 1 end\n"
        "  end\n"
        "  return a2\n"
        "end\n";
    if (luaL_loadbufferx(L, safe_sort, sizeof safe_sort - 1, "=sandbox", "t") == LUA_OK)
        lua_call(L, 0, 0);
    /* string.dump hands out bytecode, which the sandbox never loads anyway; drop it too. */
    lua_getglobal(L, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
}

/* ---- the state --------------------------------------------------------------------------- */

void rp__lua_log(rp_lua_t *l, const char *level, const char *msg)
{
    char comp[160];
    snprintf(comp, sizeof comp, "script:%s", l->name);
    rp_log_to(l->log, l->log_ud, level, comp, "%s", msg);
}

void rp_lua_fmt_now(rp_lua_t *l, char out[32])
{
    rp_time_format(rp_store_now(l->s), out);
}

rp_lua_t *rp_lua_new(rp_store_t *s, rp_sched_t *e, const rp_lua_opts_t *opts, rp_error_t *err)
{
    rp_lua_t *l = calloc(1, sizeof *l);
    if (!l) {
        rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        return NULL;
    }
    l->o = opts ? *opts : (rp_lua_opts_t){0};
    if (l->o.max_instructions < 0)
        l->o.max_instructions = 0;
    if (l->o.max_cpu_ms <= 0)
        l->o.max_cpu_ms = 1000;
    if (l->o.max_wall_ms <= 0)
        l->o.max_wall_ms = 5000;
    if (l->o.max_memory == 0)
        l->o.max_memory = 64u << 20;
    l->s = s;
    l->e = e;
    static int generation;
    snprintf(l->name, sizeof l->name, "%s", l->o.name ? l->o.name : "eval");
    snprintf(l->actor, sizeof l->actor, "%s", l->o.actor ? l->o.actor : "");
    if (!l->actor[0])
        snprintf(l->actor, sizeof l->actor, "script:%s", l->name);
    snprintf(l->owner, sizeof l->owner, "script:%s#%d", l->name, ++generation);
    l->ctx = (rp_ctx_t){.actor = l->actor, .origin = "script", .access = opts ? opts->access : NULL};
    l->L = lua_newstate(l_alloc, l);
    if (!l->L) {
        free(l);
        rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        return NULL;
    }
    lua_State *L = l->L;
    /* Generational: hooks and handlers make many short-lived tables (a record, an event) per
     * call, which the young generation collects cheaply (bench_lua a and b). */
    lua_gc(L, LUA_GCGEN, 0, 0);
    *(rp_lua_t **)lua_getextraspace(L) = l;
    if (l->o.sandbox)
        open_sandbox(L);
    else
        luaL_openlibs(L);
    /* No hook here: a sandboxed state's calls are watched by this thread's ticker, or carry
     * a count hook when an exact instruction budget is asked for (rp__lua_pcall). If the
     * system gives no timer, the exact budget stands in, at its default. */
    if (l->o.sandbox)
        l->o.limits = true;
    if (l->o.limits) {
        watch_coroutines(L);
        rp__lua_open_strmatch(L);
        l->ticked = ticker_ref();
        l->exact = l->o.max_instructions > 0 || !l->ticked;
        if (l->exact && l->o.max_instructions == 0)
            l->o.max_instructions = 100000000;
    }
    if (rp__lua_open_crm(l, err)) {
        rp_lua_free(l);
        return NULL;
    }
    /* Coroutines the scripts make inherit it (lua_newthread copies the hook). */
    if (l->o.coverage)
        disarm(l, L);
    return l;
}

void rp_lua_set_log(rp_lua_t *l, rp_log_fn log, void *ud)
{
    l->log = log;
    l->log_ud = ud;
}

void rp_lua_free(rp_lua_t *l)
{
    if (!l)
        return;
    rp__lua_unregister_all(l);
    if (l->L)
        lua_close(l->L);
    if (l->ticked)
        ticker_unref();
    free(l);
}

lua_State *rp_lua_state(rp_lua_t *l)
{
    return l->L;
}

/* Runs the chunk on top of the stack (already loaded) with @p nargs arguments under it. */
static int run_loaded(rp_lua_t *l, int nargs, json_t **results, rp_error_t *err)
{
    lua_State *L = l->L;
    int top = lua_gettop(L) - nargs - 1;
    rp__lua_pending_begin(l);
    int rc = rp__lua_pcall(l, nargs, LUA_MULTRET, err);
    if (rc) {
        rp__lua_pending_discard(l);
        lua_settop(L, top);
        return rc;
    }
    if ((rc = rp__lua_pending_apply(l, err))) {
        lua_settop(L, top);
        return rc;
    }
    if (results) {
        json_t *arr = json_array();
        for (int i = top + 1; i <= lua_gettop(L); i++) {
            const char *why = NULL;
            json_t *v = rp__lua_to_json(L, i, &why);
            json_array_append_new(arr, v ? v : json_sprintf("<%s>", why ? why : "value"));
        }
        *results = arr;
    }
    lua_settop(L, top);
    return 0;
}

int rp_lua_eval(rp_lua_t *l, const char *code, const char *chunkname, json_t **results,
                rp_error_t *err)
{
    if (results)
        *results = NULL;
    lua_State *L = l->L;
    char name[256];
    snprintf(name, sizeof name, "=%s", chunkname ? chunkname : "eval");
    size_t n = strlen(code);
    /* An expression is printed, as in the REPL: try "return <code>" first. */
    char *ret = malloc(n + 8);
    if (!ret)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    memcpy(ret, "return ", 7);
    memcpy(ret + 7, code, n + 1);
    int lrc = luaL_loadbufferx(L, ret, n + 7, name, "t");
    free(ret);
    if (lrc != LUA_OK) {
        lua_pop(L, 1);
        lrc = luaL_loadbufferx(L, code, n, name, "t");
    }
    if (lrc != LUA_OK) {
        int rc = rp_error_set(err, RP_EINVAL, 0, "%s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return rc;
    }
    return run_loaded(l, 0, results, err);
}

int rp_lua_run_file(rp_lua_t *l, const char *path, int argc, char **argv, json_t **results,
                    rp_error_t *err)
{
    if (results)
        *results = NULL;
    lua_State *L = l->L;
    FILE *f = fopen(path, "rb");
    if (!f)
        return rp_error_set(err, RP_ENOTFOUND, 0, "cannot open %s: %s", path, strerror(errno));
    /* A folder reads as nothing and a device never ends: neither is a script. A pipe is. */
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || S_ISDIR(st.st_mode) || S_ISCHR(st.st_mode) ||
        S_ISBLK(st.st_mode)) {
        fclose(f);
        return rp_error_set(err, RP_EINVAL, 0, "%s is not a script file (a folder or a device)",
                            path);
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n > RP_LUA_MAX_CHUNK) {
            free(buf);
            fclose(f);
            return rp_error_set(err, RP_EINVAL, RP_C_CAP,
                                "%s: longer than %d bytes, the largest script run", path,
                                RP_LUA_MAX_CHUNK);
        }
        if (n == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    fclose(f);
    if (!buf)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    char name[512];
    snprintf(name, sizeof name, "@%s", path);
    int lrc = luaL_loadbufferx(L, buf, n, name, "t");
    free(buf);
    if (lrc != LUA_OK) {
        int rc = rp_error_set(err, RP_EINVAL, 0, "%s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return rc;
    }
    lua_createtable(L, argc, 1);
    lua_pushstring(L, path);
    lua_rawseti(L, -2, 0);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setglobal(L, "arg");
    for (int i = 0; i < argc; i++)
        lua_pushstring(L, argv[i]);
    return run_loaded(l, argc, results, err);
}
