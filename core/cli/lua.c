/*
 * lua.c — the Lua commands: eval and run against the database with the scripts loaded, the
 * REPL, and `rapport test`, whose every test world is an engine of its own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapport/engine.h"
#include "rapport/lua.h"

#include "cli.h"
#include "repl.h"

/* Each value a chunk returned, rendered as the REPL shows it, one per line. */
static void print_results(json_t *results)
{
    size_t i;
    json_t *v;
    json_array_foreach(results, i, v) {
        char *r = rp_lua_render(v);
        if (r)
            puts(r);
        free(r);
    }
}

static int run_lua(cli_t *c, const char *cmd, bool sandbox, const char *code, const char *file,
                   int argc, char **argv)
{
    env_t env;
    if (env_open(c, &env, log_quiet))
        return EXIT_FAIL;
    rp_lua_opts_t o = env.limits;
    o.sandbox = sandbox;
    o.name = file ? file : "eval";
    o.actor = sandbox ? NULL : c->actor;
    o.access = c->access;
    rp_error_t err = {0};
    int rc = 0;
    rp_lua_t *l = rp_lua_new(env.s, env.e, &o, &err);
    json_t *results = NULL;
    if (!l)
        rc = fail("%s", err.msg);
    else if (file ? rp_lua_run_file(l, file, argc, argv, &results, &err)
                  : rp_lua_eval(l, code, "eval", &results, &err))
        rc = fail("%s", err.msg);
    else
        print_results(results);
    json_decref(results);
    /* Work the chunk caused now (events for handlers, jobs due at once) is left to `serve`. */
    rp_lua_free(l);
    env_close(&env);
    (void)cmd;
    return rc;
}

int cmd_eval(cli_t *c, int argc, char **argv)
{
    bool sandbox = false;
    flag_value(&argc, argv, "--sandbox", &sandbox);
    if (argc != 2)
        return usage_error("eval", "eval needs one chunk of Lua");
    return run_lua(c, "eval", sandbox, argv[1], NULL, 0, NULL);
}

int cmd_run(cli_t *c, int argc, char **argv)
{
    bool sandbox = false;
    /* Options stop at the file: what follows belongs to the script. */
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--sandbox") == 0)
            sandbox = true;
        else
            return usage_error("run", "run: unknown option %s", argv[i]);
    }
    if (i >= argc)
        return usage_error("run", "run needs a script file");
    return run_lua(c, "run", sandbox, NULL, argv[i], argc - i - 1, argv + i + 1);
}

int cmd_repl(cli_t *c, int argc, char **argv)
{
    if (reject_unknown_flags("repl", argc, argv))
        return EXIT_USAGE;
    if (argc != 1)
        return usage_error("repl", "repl takes no operands");
    env_t env;
    if (env_open(c, &env, log_quiet))
        return EXIT_FAIL;
    rp_lua_opts_t o = {.name = "repl", .actor = c->actor, .ext = env.ext, .access = c->access};
    rp_error_t err = {0};
    rp_lua_t *l = rp_lua_new(env.s, env.e, &o, &err);
    int rc = l ? rp_cli_repl(env.s, l, c->db) : fail("%s", err.msg);
    rp_lua_free(l);
    env_close(&env);
    return rc;
}

/* Every test world is an engine of its own: a fresh in-memory database on the test's virtual
 * clock, with the plugins and the scripts, opened the way every command opens it. */
typedef struct {
    cli_t *c;
    rp_lua_cov_t *cov; /* --coverage: the count every world's scripts add to, or NULL */
} test_run_t;

static int test_open(void *ud, const char *const *script_dirs, int64_t start_ms, rp_log_fn log,
                     void *log_ud, rp_test_world_t *w, rp_error_t *err)
{
    test_run_t *run = ud;
    cli_t *c = run->c;
    rp_engine_opts_t o = engine_opts(c, log);
    o.coverage = run->cov;
    o.db = ":memory:";
    o.create = true;
    o.user = NULL;
    o.script_dirs = script_dirs;
    o.broken_scripts_ok = true;
    o.virtual_clock = true;
    o.start_ms = start_ms;
    o.log_ud = log_ud;
    rp_engine_t *en = NULL;
    int rc = rp_engine_open(&o, &en, err);
    if (rc)
        return rc;
    *w = (rp_test_world_t){.s = rp_engine_store(en), .e = rp_engine_sched(en),
                           .ext = rp_engine_lua_opts(en).ext, .state = en};
    return 0;
}

static void test_close(void *ud, rp_test_world_t *w)
{
    (void)ud;
    rp_engine_close(w->state);
}

int cmd_test(cli_t *c, int argc, char **argv)
{
    bool coverage = false;
    flag_value(&argc, argv, "--coverage", &coverage);
    const char *lcov = flag_value(&argc, argv, "--lcov", NULL);
    if (lcov == (const char *)-1)
        return usage_error("test", "test: --lcov needs a file name");
    if (lcov && !coverage)
        return usage_error("test", "test: --lcov FILE goes with --coverage");
    if (reject_unknown_flags("test", argc, argv))
        return EXIT_USAGE;
    test_run_t run = {c, NULL};
    if (coverage && !(run.cov = rp_lua_cov_new()))
        return fail("out of memory");
    const char *paths[16];
    int n = 0;
    for (int i = 1; i < argc && n < 16; i++)
        paths[n++] = argv[i];
    if (n == 0)
        for (int i = 0; c->script_dirs[i] && n < 16; i++)
            paths[n++] = c->script_dirs[i];
    int passed = 0, failed = 0, rc = 0;
    rp_test_setup_t setup = {test_open, test_close, &run};
    for (int i = 0; i < n; i++) {
        rp_error_t err = {0};
        if (rp_lua_test_path(paths[i], c->script_dirs, &setup, stdout, &passed, &failed, &err))
            rc = fail("%s", err.msg);
    }
    printf("%d passed, %d failed\n", passed, failed);
    rp_error_t err = {0};
    if (run.cov && rp_lua_cov_report(run.cov, stdout, lcov ? lcov : "coverage.lcov", &err))
        rc = fail("%s", err.msg);
    rp_lua_cov_free(run.cov);
    return rc ? rc : failed ? EXIT_FAIL : 0;
}
