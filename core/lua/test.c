/*
 * test.c — `rapport test`: runs *_test.lua files, each test on a fresh in-memory database with
 * the scripts loaded and a virtual clock, with assertions that say what was expected.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>

#include "lua_internal.h"

/* The test vocabulary, defined in every test file's state before the file runs. */
static const char prelude[] =
    "local tests = {}\n"
    "rawset(_G, '__rapport_tests', tests)\n"
    "local function show(v)\n"
    "  if type(v) == 'string' then return string.format('%q', v) end\n"
    "  if type(v) == 'table' then\n"
    "    local ok, s = pcall(crm.json.encode, v)\n"
    "    return ok and s or tostring(v)\n"
    "  end\n"
    "  return tostring(v)\n"
    "end\n"
    "local function same(a, b)\n"
    "  if a == b then return true end\n"
    "  if type(a) ~= 'table' or type(b) ~= 'table' then return false end\n"
    "  for k, v in pairs(a) do if not same(v, b[k]) then return false end end\n"
    "  for k in pairs(b) do if a[k] == nil then return false end end\n"
    "  return true\n"
    "end\n"
    "local function prefix(msg) return msg and (tostring(msg) .. ': ') or '' end\n"
    "function test(name, fn)\n"
    "  if type(name) ~= 'string' or type(fn) ~= 'function' then\n"
    "    error('test(name, function() ... end) needs a name and a function', 2)\n"
    "  end\n"
    "  tests[#tests + 1] = {name = name, fn = fn}\n"
    "end\n"
    "function assert_eq(actual, expected, msg)\n"
    "  if not same(actual, expected) then\n"
    "    error(prefix(msg) .. 'expected ' .. show(expected) .. ', got ' .. show(actual), 2)\n"
    "  end\n"
    "end\n"
    "function assert_true(v, msg)\n"
    "  if not v then error(prefix(msg) .. 'expected a true value, got ' .. show(v), 2) end\n"
    "  return v\n"
    "end\n"
    "function assert_error(fn, pattern)\n"
    "  local ok, e = pcall(fn)\n"
    "  if ok then\n"
    "    error('expected an error' .. (pattern and (' matching ' .. show(pattern)) or '') ..\n"
    "          ', but the function returned', 2)\n"
    "  end\n"
    "  if pattern and not string.find(tostring(e), pattern) then\n"
    "    error('expected an error matching ' .. show(pattern) .. ', got ' .. show(tostring(e)), 2)\n"
    "  end\n"
    "  return e\n"
    "end\n"
    "function assert(v, msg, ...)\n"
    "  if not v then error(msg or 'assertion failed!', 2) end\n"
    "  return v, msg, ...\n"
    "end\n";

#define TEST_EPOCH 1767225600000LL /* 2026-01-01T00:00:00Z: tests see the same clock every run */

typedef struct {
    rp_test_world_t tw;
    rp_lua_t *l;
    const rp_test_setup_t *setup; /* NULL until the world is open */
} world_t;

static void world_free(world_t *w)
{
    rp_lua_free(w->l);
    if (w->setup)
        w->setup->close(w->setup->ud, &w->tw);
}

static void quiet(void *ud, const char *level, const char *component, const char *msg)
{
    FILE *out = ud;
    if (strcmp(level, "info") != 0)
        fprintf(out, "    %s %s %s\n", level, component, msg);
}

/* A fresh world (database, scheduler on the virtual clock, scripts) and the test file loaded:
 * its tests collected. */
static int world_new(world_t *w, const char *path, const char *const *dirs,
                     const rp_test_setup_t *setup, FILE *out, rp_error_t *err)
{
    memset(w, 0, sizeof *w);
    int rc = setup->open(setup->ud, dirs, TEST_EPOCH, quiet, out, &w->tw, err);
    if (rc)
        return rc;
    w->setup = setup;
    const char *base = strrchr(path, '/');
    /* A test that loops stops, named, and the run goes on: generous limits, but limits
     * (10 s of CPU per test, or $RAPPORT_TEST_MAX_CPU_MS). */
    const char *cpu = getenv("RAPPORT_TEST_MAX_CPU_MS");
    int64_t cpu_ms = cpu && atoll(cpu) > 0 ? atoll(cpu) : 10000;
    rp_lua_opts_t lo = {.name = base ? base + 1 : path, .actor = "test", .ext = w->tw.ext,
                        .limits = true, .max_cpu_ms = cpu_ms, .max_wall_ms = 3 * cpu_ms,
                        .max_memory = (size_t)1 << 30};
    w->l = rp_lua_new(w->tw.s, w->tw.e, &lo, err);
    if (!w->l)
        return err ? err->code : RP_EIO;
    rp_lua_set_log(w->l, quiet, out);
    if ((rc = rp_lua_eval(w->l, prelude, "rapport.test", NULL, err)))
        return rc;
    return rp_lua_run_file(w->l, path, 0, NULL, NULL, err);
}

static int test_count(rp_lua_t *l)
{
    lua_getglobal(l->L, "__rapport_tests");
    int n = (int)lua_rawlen(l->L, -1);
    lua_pop(l->L, 1);
    return n;
}

static int run_file(const char *path, const char *const *given, const rp_test_setup_t *setup,
                    FILE *out, int *passed, int *failed, rp_error_t *err)
{
    /* The scripts beside a test are the ones it tests: load its folder too. */
    char folder[4096];
    const char *slash = strrchr(path, '/');
    snprintf(folder, sizeof folder, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    const char *dirs[20];
    int nd = 0;
    bool have = false;
    for (int i = 0; given && given[i] && nd < 18; i++) {
        dirs[nd++] = given[i];
        have = have || strcmp(given[i], folder) == 0;
    }
    if (!have)
        dirs[nd++] = folder;
    dirs[nd] = NULL;
    world_t w;
    int rc = world_new(&w, path, dirs, setup, out, err);
    int n = rc ? 0 : test_count(w.l);
    world_free(&w);
    if (rc) {
        fprintf(out, "FAIL %s: the file does not load\n    %s\n", path, err->msg);
        (*failed)++;
        return 0;
    }
    if (n == 0)
        fprintf(out, "note %s: no test(...) in this file\n", path);
    for (int i = 1; i <= n; i++) {
        rp_error_t terr = {0};
        if ((rc = world_new(&w, path, dirs, setup, out, &terr))) {
            fprintf(out, "FAIL %s: the file does not load\n    %s\n", path, terr.msg);
            (*failed)++;
            world_free(&w);
            continue;
        }
        lua_State *L = w.l->L;
        lua_getglobal(L, "__rapport_tests");
        lua_rawgeti(L, -1, i);
        lua_getfield(L, -1, "name");
        char name[256];
        snprintf(name, sizeof name, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
        lua_pop(L, 1);
        lua_getfield(L, -1, "fn");
        lua_remove(L, -2);
        lua_remove(L, -2);
        if (rp__lua_pcall(w.l, 0, 0, &terr) == 0) {
            (*passed)++;
        } else {
            (*failed)++;
            fprintf(out, "FAIL %s: %s\n    %s\n", path, name, terr.msg);
        }
        world_free(&w);
    }
    return 0;
}

static bool is_test_file(const char *name)
{
    size_t n = strlen(name);
    return n > 9 && strcmp(name + n - 9, "_test.lua") == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int rp_lua_test_path(const char *path, const char *const *dirs, const rp_test_setup_t *setup,
                     FILE *out, int *passed, int *failed, rp_error_t *err)
{
    if (!setup || !setup->open || !setup->close)
        return rp_error_set(err, RP_EINVAL, 0, "running the tests of %s needs a way to open "
                            "their worlds (an rp_test_setup_t with open and close)", path);
    struct stat st;
    if (stat(path, &st) != 0)
        return rp_error_set(err, RP_ENOTFOUND, 0, "no such file or folder: %s", path);
    if (!S_ISDIR(st.st_mode))
        return run_file(path, dirs, setup, out, passed, failed, err);
    DIR *d = opendir(path);
    if (!d)
        return rp_error_set(err, RP_EIO, 0, "cannot read folder %s", path);
    char **names = NULL;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char **grown = realloc(names, sizeof *names * (size_t)(n + 1));
        if (!grown)
            break;
        names = grown;
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    if (n > 1)
        qsort(names, (size_t)n, sizeof *names, cmp_str);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", path, names[i]);
        struct stat sst;
        if (!rc && stat(sub, &sst) == 0 && (S_ISDIR(sst.st_mode) || is_test_file(names[i])))
            rc = rp_lua_test_path(sub, dirs, setup, out, passed, failed, err);
        free(names[i]);
    }
    free(names);
    return rc;
}
