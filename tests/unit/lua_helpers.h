/*
 * lua_helpers.h — what the Lua room's unit tests share: a world (a store with "account" and
 * "contact", an engine on a virtual clock, one Lua state), chunks run and their results or
 * errors, the last line logged, and a few clocks and counts.
 */
#ifndef RP_TEST_LUA_HELPERS_H
#define RP_TEST_LUA_HELPERS_H

#include <time.h>

#include <lauxlib.h>
#include <lualib.h>

#include "helpers.h"
#include "rapport/lua.h"
#include "rapport/sched.h"

#include "../../core/lua/lua_internal.h"

#ifndef RP_UNUSED
#define RP_UNUSED __attribute__((unused))
#endif

#define T0 INT64_C(1767225600000) /* 2026-01-01T00:00:00Z, the virtual clock's start */
#define DAY INT64_C(86400000)

/* The last line the engine or a script logged, so a test can check what a failure said. */
static char last_log[2048] RP_UNUSED;

RP_UNUSED static void capture(void *ud, const char *level, const char *component, const char *msg)
{
    (void)ud;
    if (strcmp(level, "info") != 0)
        snprintf(last_log, sizeof last_log, "%s %s %s", level, component, msg);
}

/* A store with "account" and "contact", an engine on a virtual clock, and one Lua state. */
typedef struct world {
    rp_store_t *s;
    rp_sched_t *e;
    rp_lua_t *l;
} world_t;

RP_UNUSED static rp_sched_t *virtual_engine(rp_store_t *s, int64_t start)
{
    rp_sched_opts_t o = {.virtual_clock = true, .start_ms = start, .log = capture,
                         .retry = {.max_attempts = 2, .base_ms = 1000}};
    rp_sched_t *e = rp_sched_new(s, &o);
    assert_non_null(e);
    return e;
}

RP_UNUSED static rp_lua_t *new_state(world_t *w, const rp_lua_opts_t *o)
{
    rp_error_t err = {0};
    rp_lua_t *l = rp_lua_new(w->s, w->e, o, &err);
    if (!l)
        fail_msg("rp_lua_new: %s", err.msg);
    rp_lua_set_log(l, capture, NULL);
    return l;
}

RP_UNUSED static void world_open(world_t *w, const rp_lua_opts_t *o)
{
    last_log[0] = '\0';
    w->s = test_open_crm();
    w->e = virtual_engine(w->s, T0);
    w->l = new_state(w, o);
}

RP_UNUSED static void world_close(world_t *w)
{
    rp_lua_free(w->l);
    rp_sched_free(w->e);
    rp_store_close(w->s);
}

/* Runs @p code as chunk @p chunk and fails the test if it errs. Owned array of results. */
RP_UNUSED static json_t *eval_ok(rp_lua_t *l, const char *chunk, const char *code)
{
    json_t *res = NULL;
    rp_error_t err = {0};
    if (rp_lua_eval(l, code, chunk, &res, &err) != 0)
        fail_msg("%s failed: %s\n--- code:\n%s", chunk, err.msg, code);
    return res;
}

/* Runs @p code for its effects, failing the test if it errs. */
RP_UNUSED static void eval_do(rp_lua_t *l, const char *chunk, const char *code)
{
    json_decref(eval_ok(l, chunk, code));
}

/* The first result of @p code as `rapport eval` prints it (a static buffer). */
RP_UNUSED static const char *eval1(rp_lua_t *l, const char *code)
{
    static char buf[4096];
    json_t *res = eval_ok(l, "eval", code);
    char *r = rp_lua_render(json_array_get(res, 0));
    snprintf(buf, sizeof buf, "%s", r ? r : "(null)");
    free(r);
    json_decref(res);
    return buf;
}

/* Runs @p code, which must fail; returns the message (a static buffer). */
RP_UNUSED static const char *eval_fail(rp_lua_t *l, const char *chunk, const char *code)
{
    static char buf[sizeof ((rp_error_t *)0)->msg];
    rp_error_t err = {0};
    json_t *res = NULL;
    int rc = rp_lua_eval(l, code, chunk, &res, &err);
    if (rc == 0) {
        char *r = json_dumps(res, JSON_COMPACT | JSON_ENCODE_ANY);
        fail_msg("%s should have failed but returned %s\n--- code:\n%s", chunk, r, code);
    }
    assert_int_equal(rc, RP_EINVAL);
    snprintf(buf, sizeof buf, "%s", err.msg);
    return buf;
}

RP_UNUSED static int64_t count_of(rp_store_t *s, const char *entity)
{
    int64_t n = -1;
    rp_error_t err = {0};
    if (rp_store_count(s, entity, NULL, false, &n, &err) != 0)
        fail_msg("count %s: %s", entity, err.msg);
    return n;
}

RP_UNUSED static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
#endif
