/*
 * bench_lua.c — the Lua room's figures, each against its raw floor measured in the same run:
 *   a. events per second handled by a trivial Lua handler (crm.on) read from the event log with
 *      checkpoints by rp_sched_run_due, vs. a prepared SELECT over the same rows with one
 *      lua_pcall per row and a fresh table argument, its changes decoded as a script gets them;
 *   b. the whole write path — crm.create with one Lua before-hook, its event, one Lua
 *      after-handler — committing every 1,000, vs. raw SQLite and raw lua_pcall doing the same;
 *   c. the sandbox's limits on a CPU-bound script vs. the same script in plain Lua, beside what
 *      an exact instruction count would cost.
 * Usage: bench_lua [N [FIGURES]]: N events for a, records for b (default 200,000); FIGURES picks
 * some of "abc" (default all), to profile one at a time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <sqlite3.h>
#include <jansson.h>

#include "rapport/engine.h"
#include "rapport/lua.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_lua: %s: %s\n", what, msg);
    exit(1);
}

/* The engine as every door opens it (rapport/engine.h): the store and its scheduler, here
 * with no plugins and no scripts, so the figure is the core's. */
static rp_engine_t *open_engine(const char *path)
{
    rp_engine_opts_t o = {.db = path, .create = true};
    rp_engine_t *en = NULL;
    rp_error_t err = {0};
    if (rp_engine_open(&o, &en, &err))
        die("open", err.msg);
    return en;
}

static void eval(rp_lua_t *l, const char *code)
{
    rp_error_t err = {0};
    if (rp_lua_eval(l, code, "bench", NULL, &err))
        die("lua", err.msg);
}

static long eval_long(rp_lua_t *l, const char *code)
{
    rp_error_t err = {0};
    json_t *res = NULL;
    if (rp_lua_eval(l, code, "bench", &res, &err))
        die("lua", err.msg);
    long v = (long)json_integer_value(json_array_get(res, 0));
    json_decref(res);
    return v;
}

static lua_State *raw_state(const char *code)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    if (luaL_dostring(L, code))
        die("raw lua", lua_tostring(L, -1));
    return L;
}

static sqlite3 *raw_open(const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        die("sqlite3_open", sqlite3_errmsg(db));
    /* The store's own settings, so the floor pays what the store pays for durability. */
    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, NULL);
    return db;
}

static void exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        die(sql, msg);
}

static void set_int(lua_State *L, const char *k, sqlite3_int64 v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

static void set_text(lua_State *L, sqlite3_stmt *st, int col, const char *k)
{
    lua_pushlstring(L, (const char *)sqlite3_column_text(st, col),
                    (size_t)sqlite3_column_bytes(st, col));
    lua_setfield(L, -2, k);
}

/* Pushes JSON value @p j as plain Lua values (a null inside an object is left out). */
static void push_plain(lua_State *L, json_t *j)
{
    const char *k;
    json_t *v;
    size_t i;
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        lua_createtable(L, 0, (int)json_object_size(j));
        json_object_foreach(j, k, v) {
            if (json_is_null(v))
                continue;
            push_plain(L, v);
            lua_setfield(L, -2, k);
        }
        return;
    case JSON_ARRAY:
        lua_createtable(L, (int)json_array_size(j), 0);
        json_array_foreach(j, i, v) {
            push_plain(L, v);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        return;
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
    case JSON_FALSE:
        lua_pushboolean(L, json_is_true(j));
        return;
    default:
        lua_pushnil(L);
    }
}

/* Pushes a fresh table of one rp_events row (seq, uid, type, entity, record_id, actor, origin,
 * at, changes, cause, depth), as the floor's handler argument. `changes` is decoded into tables,
 * as the engine must: an event reaches a script as plain data it can walk and encode. */
static void push_event_row(lua_State *L, sqlite3_stmt *st)
{
    lua_createtable(L, 0, 11);
    set_int(L, "seq", sqlite3_column_int64(st, 0));
    set_text(L, st, 1, "uid");
    set_text(L, st, 2, "type");
    set_text(L, st, 3, "entity");
    set_int(L, "record_id", sqlite3_column_int64(st, 4));
    set_text(L, st, 5, "actor");
    set_text(L, st, 6, "origin");
    set_int(L, "at", sqlite3_column_int64(st, 7));
    json_t *changes = json_loadb((const char *)sqlite3_column_text(st, 8),
                                 (size_t)sqlite3_column_bytes(st, 8), 0, NULL);
    if (!changes)
        die("raw", "an event's changes are not JSON");
    push_plain(L, changes);
    json_decref(changes);
    lua_setfield(L, -2, "changes");
    set_int(L, "cause", sqlite3_column_int64(st, 9));
    set_int(L, "depth", sqlite3_column_int64(st, 10));
}

/* Calls the function in global "handler" once per event after @p *last; returns how many. */
static long raw_deliver(lua_State *L, sqlite3_stmt *st, sqlite3_int64 *last)
{
    long n = 0;
    for (;;) {
        sqlite3_bind_int64(st, 1, *last);
        int got = 0;
        while (sqlite3_step(st) == SQLITE_ROW) {
            *last = sqlite3_column_int64(st, 0);
            lua_getglobal(L, "handler");
            push_event_row(L, st);
            if (lua_pcall(L, 1, 0, 0) != LUA_OK)
                die("raw handler", lua_tostring(L, -1));
            got++;
        }
        sqlite3_reset(st);
        n += got;
        if (got == 0)
            return n;
    }
}

static const char select_events[] =
    "SELECT seq, uid, type, entity, record_id, actor, origin, at, changes, cause, depth"
    " FROM rp_events WHERE seq > ? ORDER BY seq LIMIT 1000";

/* ---- a. events handled by a Lua handler -------------------------------------------------- */

static void bench_events(const char *dir, long n)
{
    char path[256];
    snprintf(path, sizeof path, "%s/events.db", dir);
    rp_engine_t *en = open_engine(path);
    rp_store_t *s = rp_engine_store(en);
    rp_error_t err = {0};
    if (rp_store_begin(s, &err))
        die("begin", err.msg);
    json_t *p = json_pack("{s:[s,s],s:[i,i]}", "stage", "new", "won", "amount", 10, 20);
    for (long i = 0; i < n; i++)
        if (rp_events_emit(s, NULL, "deal.updated", NULL, i + 1, p, NULL, &err))
            die("emit", err.msg);
    json_decref(p);
    if (rp_store_commit(s, &err))
        die("commit", err.msg);

    /* The floor: the same rows, one pcall per row with a fresh table, in one transaction. */
    sqlite3 *db = raw_open(path);
    lua_State *L = raw_state("n = 0 function handler(ev) n = n + 1 end");
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, select_events, -1, &st, NULL) != SQLITE_OK)
        die("prepare", sqlite3_errmsg(db));
    sqlite3_int64 last = 0;
    double t0 = now_s();
    exec(db, "BEGIN");
    long rows = raw_deliver(L, st, &last);
    exec(db, "COMMIT");
    double raw = (double)rows / (now_s() - t0);
    lua_getglobal(L, "n");
    if (lua_tointeger(L, -1) != n || rows != n)
        die("raw", "the floor did not see every event");
    sqlite3_finalize(st);
    sqlite3_close(db);
    lua_close(L);

    /* Ours: a sandboxed script's crm.on handler, fed by the engine from its checkpoint. */
    rp_sched_t *e = rp_engine_sched(en);
    rp_lua_t *l = rp_lua_new(s, e, &(rp_lua_opts_t){.sandbox = true, .name = "bench.lua"}, &err);
    if (!l)
        die("lua", err.msg);
    eval(l, "n = 0\n"
            "crm.on('deal.updated', function(ev) n = n + 1 end,\n"
            "       {name = 'bench', from_start = true})");
    t0 = now_s();
    int did = 0;
    do {
        if (rp_sched_run_due(e, &did, &err))
            die("run", err.msg);
    } while (did > 0);
    double secs = now_s() - t0;
    long handled = eval_long(l, "return n");
    if (handled != n)
        die("events", "the Lua handler did not see every event");
    double ours = (double)handled / secs;
    printf("a. events: %.0f events/s to a trivial Lua crm.on handler, floor (SELECT + lua_pcall "
           "with a fresh table per row, its changes decoded) %.0f/s, ratio %.2f (target >= 0.5; %ld events)\n",
           ours, raw, ours / raw, handled);
    rp_lua_free(l);
    rp_engine_close(en);
}

/* ---- b. the whole write path -------------------------------------------------------------- */

static const char hook_lua[] =
    "function(r)\n"
    "  if not r.last_name then error('a contact needs a last name') end\n"
    "  r.email = string.lower(r.email)\n"
    "end";

enum { WRITE_BATCH = 1000 };

/* Ours: records per second through crm.create, into a fresh database in @p dir. */
static double writes_ours(const char *dir, int round, long n)
{
    const int batch = WRITE_BATCH;
    char path[256];
    snprintf(path, sizeof path, "%s/writes%d.db", dir, round);
    rp_engine_t *en = open_engine(path);
    rp_store_t *s = rp_engine_store(en);
    rp_sched_t *e = rp_engine_sched(en);
    rp_error_t err = {0};
    rp_lua_t *app = rp_lua_new(s, e, &(rp_lua_opts_t){.name = "app"}, &err);
    rp_lua_t *rules = rp_lua_new(s, e, &(rp_lua_opts_t){.sandbox = true, .name = "rules.lua"},
                                 &err);
    if (!app || !rules)
        die("lua", err.msg);
    eval(app, "crm.schema.define('contact', {fields = {first_name = {type = 'text'},"
              " last_name = {type = 'text', required = true}, email = {type = 'text'}}})");
    char code[1024];
    snprintf(code, sizeof code,
             "n = 0\n"
             "crm.before('contact.create', %s)\n"
             "crm.on('contact.created', function(ev) n = n + 1 end, {name = 'after'})\n",
             hook_lua);
    eval(rules, code);
    eval(app, "function batch(from, k)\n"
              "  crm.transaction(function()\n"
              "    for i = from, from + k - 1 do\n"
              "      crm.create('contact', {first_name = 'Ada', last_name = 'Lovelace ' .. i,\n"
              "                             email = 'ADA' .. i .. '@Example.com'})\n"
              "    end\n"
              "  end)\n"
              "end");
    double t0 = now_s();
    for (long i = 0; i < n; i += batch) {
        snprintf(code, sizeof code, "batch(%ld, %ld)", i, n - i < batch ? n - i : (long)batch);
        eval(app, code);
        int did = 0;
        do {
            if (rp_sched_run_due(e, &did, &err))
                die("run", err.msg);
        } while (did > 0);
    }
    double secs = now_s() - t0;
    long handled = eval_long(rules, "return n");
    if (handled != n)
        die("writes", "the after-handler did not see every record");
    rp_lua_free(rules);
    rp_lua_free(app);
    rp_engine_close(en);
    return (double)n / secs;
}

/* The floor: the same hook and handler as raw pcalls, the row and an event row as raw prepared
 * INSERTs, the handler fed from a SELECT after each commit of 1,000. */
static double writes_raw(const char *dir, int round, long n)
{
    const int batch = WRITE_BATCH;
    char path[256], code[1024];
    snprintf(path, sizeof path, "%s/raw%d.db", dir, round);
    sqlite3 *db = raw_open(path);
    /* The same storage work as the store's: ids never reused (AUTOINCREMENT) and the event
     * log's index by record, which the history of a record reads. */
    exec(db, "CREATE TABLE contact(id INTEGER PRIMARY KEY AUTOINCREMENT, first_name TEXT,"
             " last_name TEXT, email TEXT, version INTEGER, created_at INTEGER,"
             " updated_at INTEGER, created_by TEXT, updated_by TEXT, deleted_at TEXT);"
             "CREATE TABLE rp_events(seq INTEGER PRIMARY KEY AUTOINCREMENT, uid TEXT, type TEXT,"
             " entity TEXT, record_id INTEGER, actor TEXT, origin TEXT, at INTEGER,"
             " changes TEXT, cause INTEGER, depth INTEGER);"
             "CREATE INDEX rp_events_record ON rp_events(entity, record_id);");
    snprintf(code, sizeof code, "n = 0 hook = %s function handler(ev) n = n + 1 end", hook_lua);
    lua_State *L = raw_state(code);
    sqlite3_stmt *ins, *ev, *sel;
    if (sqlite3_prepare_v2(db, "INSERT INTO contact(first_name, last_name, email, version,"
                               " created_at, updated_at, created_by, updated_by)"
                               " VALUES (?1, ?2, ?3, 1, ?4, ?4, 'app', 'app')", -1, &ins,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO rp_events(uid, type, entity, record_id, actor,"
                               " origin, at, changes, cause, depth)"
                               " VALUES (?1, 'contact.created', 'contact', ?2, 'app', 'script',"
                               " ?3, ?4, 0, 0)", -1, &ev, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, select_events, -1, &sel, NULL) != SQLITE_OK)
        die("prepare", sqlite3_errmsg(db));
    sqlite3_int64 last = 0;
    long delivered = 0;
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        if (i % batch == 0)
            exec(db, "BEGIN");
        char last_name[64], email[64], changes[256], uid[32];
        snprintf(last_name, sizeof last_name, "Lovelace %ld", i);
        snprintf(email, sizeof email, "ADA%ld@Example.com", i);
        lua_getglobal(L, "hook");
        lua_createtable(L, 0, 3);
        lua_pushstring(L, "Ada");
        lua_setfield(L, -2, "first_name");
        lua_pushstring(L, last_name);
        lua_setfield(L, -2, "last_name");
        lua_pushstring(L, email);
        lua_setfield(L, -2, "email");
        lua_pushvalue(L, -1);
        lua_insert(L, -3);
        if (lua_pcall(L, 1, 0, 0) != LUA_OK)
            die("raw hook", lua_tostring(L, -1));
        lua_getfield(L, -1, "email");
        const char *low = lua_tostring(L, -1);
        sqlite3_int64 at = (sqlite3_int64)(now_s() * 1000);
        sqlite3_bind_text(ins, 1, "Ada", -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, last_name, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 3, low, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 4, at);
        if (sqlite3_step(ins) != SQLITE_DONE)
            die("insert", sqlite3_errmsg(db));
        sqlite3_reset(ins);
        sqlite3_int64 id = sqlite3_last_insert_rowid(db);
        snprintf(changes, sizeof changes,
                 "{\"first_name\":[null,\"Ada\"],\"last_name\":[null,\"%s\"],\"email\":[null,"
                 "\"%s\"]}", last_name, low);
        snprintf(uid, sizeof uid, "%020lld", (long long)id);
        lua_pop(L, 2);
        sqlite3_bind_text(ev, 1, uid, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ev, 2, id);
        sqlite3_bind_int64(ev, 3, at);
        sqlite3_bind_text(ev, 4, changes, -1, SQLITE_STATIC);
        if (sqlite3_step(ev) != SQLITE_DONE)
            die("insert event", sqlite3_errmsg(db));
        sqlite3_reset(ev);
        if (i % batch == batch - 1 || i == n - 1) {
            exec(db, "COMMIT");
            exec(db, "BEGIN");
            delivered += raw_deliver(L, sel, &last);
            exec(db, "COMMIT");
        }
    }
    double raw = (double)n / (now_s() - t0);
    lua_getglobal(L, "n");
    if (lua_tointeger(L, -1) != n || delivered != n)
        die("raw", "the floor's handler did not see every record");
    sqlite3_finalize(ins);
    sqlite3_finalize(ev);
    sqlite3_finalize(sel);
    sqlite3_close(db);
    lua_close(L);
    return raw;
}

static void bench_writes(const char *dir, long n)
{
    /* Three rounds, ours and the floor in turn, each on a fresh database; the best of each,
     * so a slow moment of this shared machine falls on neither side alone. */
    double ours = 0, raw = 0;
    for (int round = 0; round < 3; round++) {
        double o = writes_ours(dir, round, n), r = writes_raw(dir, round, n);
        ours = o > ours ? o : ours;
        raw = r > raw ? r : raw;
    }
    printf("b. writes: %.0f records/s through crm.create + a Lua before-hook + its event + a Lua "
           "after-handler, floor (raw SQLite + raw lua_pcall) %.0f/s, ratio %.2f "
           "(target >= 0.5; %ld records, commit every %d, best of 3 rounds each)\n",
           ours, raw, ours / raw, n, WRITE_BATCH);
}

/* ---- c. the instruction hook -------------------------------------------------------------- */

static const char cpu_chunk[] =
    "local s = 0\n"
    "for i = 1, 30000000 do s = s + i % 7 end\n"
    "return s";

static double best_of(int runs, lua_State *plain, rp_lua_t *l)
{
    double best = 1e9;
    const char *code = cpu_chunk;
    for (int r = 0; r < runs; r++) {
        double t0 = now_s();
        if (plain) {
            if (luaL_dostring(plain, code))
                die("plain", lua_tostring(plain, -1));
            lua_pop(plain, 1);
        } else {
            eval(l, code);
        }
        double t = now_s() - t0;
        best = t < best ? t : best;
    }
    return best;
}

/* A plain state with a count hook every @p every instructions that does nothing: what any
 * exact instruction count costs, whatever its interval. */
static void noop_hook(lua_State *L, lua_Debug *ar)
{
    (void)L;
    (void)ar;
}

static double best_counted(lua_State *L, int every)
{
    lua_sethook(L, noop_hook, LUA_MASKCOUNT, every);
    double t = best_of(1, L, NULL);
    lua_sethook(L, NULL, 0, 0);
    return t;
}

/* What `rapport test --coverage` costs: the same loop run from a file (only files' lines are
 * counted) in a sandboxed state that carries the line hook, against plain Lua's @p base. */
static void bench_coverage(rp_store_t *s, double base)
{
    char path[] = "/tmp/rp_bench_cov_XXXXXX.lua";
    int fd = mkstemps(path, 4);
    if (fd < 0 || write(fd, cpu_chunk, sizeof cpu_chunk - 1) != (ssize_t)(sizeof cpu_chunk - 1))
        die("coverage", "cannot write the chunk's file");
    close(fd);
    rp_lua_cov_t *cov = rp_lua_cov_new();
    rp_error_t err = {0};
    rp_lua_t *l = rp_lua_new(s, NULL, &(rp_lua_opts_t){.sandbox = true, .name = "cpu.lua",
                             .max_cpu_ms = 3600000, .max_wall_ms = 3600000, .coverage = cov},
                             &err);
    if (!cov || !l)
        die("lua", err.msg);
    double best = 1e9;
    for (int round = 0; round < 2; round++) {
        double t0 = now_s();
        if (rp_lua_run_file(l, path, 0, NULL, NULL, &err))
            die("coverage", err.msg);
        double t = now_s() - t0;
        best = t < best ? t : best;
    }
    printf("   under `rapport test --coverage` (a line hook counting every line): %.3f s, %.1fx "
           "plain Lua; states made without a coverage count never carry the line hook\n",
           best, best / base);
    rp_lua_free(l);
    rp_lua_cov_free(cov);
    unlink(path);
}

static void bench_hook(void)
{
    lua_State *plain = luaL_newstate();
    luaL_openlibs(plain);
    rp_store_t *s = NULL;
    rp_error_t err = {0};
    if (rp_store_open(":memory:", NULL, &s, &err))
        die("open", err.msg);
    /* Limits far away, so the checks run all the way and never stop the loop. The default
     * sandbox: the CPU budget and the wall-time limit, checked by the ticker. */
    rp_lua_t *sandboxed = rp_lua_new(s, NULL, &(rp_lua_opts_t){.sandbox = true, .name = "cpu.lua",
                                     .max_cpu_ms = 3600000, .max_wall_ms = 3600000}, &err);
    /* The opt-in exact instruction budget: a count hook every 1,000 instructions. */
    rp_lua_t *exact = rp_lua_new(s, NULL, &(rp_lua_opts_t){.sandbox = true, .name = "cpu.lua",
                                 .max_cpu_ms = 3600000, .max_wall_ms = 3600000,
                                 .max_instructions = INT64_C(1) << 50}, &err);
    if (!sandboxed || !exact)
        die("lua", err.msg);
    /* Interleave the runs, so a slow moment of the machine falls on all sides alike. */
    static const int every[] = {1000, 100000, 10000000};
    double base = 1e9, hooked = 1e9, counted = 1e9, interval[3] = {1e9, 1e9, 1e9};
    for (int round = 0; round < 5; round++) {
        double b = best_of(1, plain, NULL), h = best_of(1, NULL, sandboxed);
        double c = best_of(1, NULL, exact);
        base = b < base ? b : base;
        hooked = h < hooked ? h : hooked;
        counted = c < counted ? c : counted;
        for (int i = 0; i < 3; i++) {
            double t = best_counted(plain, every[i]);
            interval[i] = t < interval[i] ? t : interval[i];
        }
    }
    printf("c. hook: a CPU-bound loop (30M iterations) takes %.3f s in a sandboxed state (CPU "
           "budget and wall-time limit checked every 10 ms of CPU), %.3f s in plain Lua: "
           "slowdown %.1f%% (target < 10%%)\n",
           hooked, base, 100.0 * (hooked / base - 1.0));
    printf("   an exact instruction budget (count hook every 1,000): %.3f s, %.1f%%; a count hook "
           "alone every 1,000 / 100,000 / 10,000,000 instructions: +%.0f%% / +%.0f%% / +%.0f%% "
           "(Lua 5.4 traps every instruction while any count hook is set)\n",
           counted, 100.0 * (counted / base - 1.0), 100.0 * (interval[0] / base - 1.0),
           100.0 * (interval[1] / base - 1.0), 100.0 * (interval[2] / base - 1.0));
    bench_coverage(s, base);
    rp_lua_free(sandboxed);
    rp_lua_free(exact);
    rp_store_close(s);
    lua_close(plain);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200000;
    const char *figures = argc > 2 ? argv[2] : "abc";
    if (n <= 0)
        die("usage", "bench_lua [N [FIGURES]]");
    char dir[] = "/tmp/rp_bench_lua_XXXXXX";
    if (!mkdtemp(dir))
        die("mkdtemp", "failed");
    if (strchr(figures, 'a'))
        bench_events(dir, n);
    if (strchr(figures, 'b'))
        bench_writes(dir, n);
    if (strchr(figures, 'c'))
        bench_hook();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
