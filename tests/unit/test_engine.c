/*
 * test_engine.c — the engine object: opened and closed twice in one process on one file, bare
 * and whole, with real fixture plugins and script folders; the one settings reader and its
 * environment override, as the engine's limits and as crm.config see it; and serve, with a
 * real HTTP request on loopback before a SIGTERM stops it.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "rapport/engine.h"
#include "rapport/settings.h"

static char dir[64];
static char db[128];
static char logbuf[16384];

static void capture(void *ud, const char *level, const char *component, const char *msg)
{
    (void)ud;
    size_t n = strlen(logbuf);
    snprintf(logbuf + n, sizeof logbuf - n, "%s %s %s\n", level, component, msg);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        fail_msg("cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/rp_engine_XXXXXX");
    if (!mkdtemp(dir))
        fail_msg("mkdtemp");
    snprintf(db, sizeof db, "%s/engine.db", dir);
    logbuf[0] = '\0';
    unsetenv("RAPPORT_LUA_MAX_INSTRUCTIONS");
    unsetenv("RAPPORT_PLUGINS_BUILTIN");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fail_msg("cleanup");
    unsetenv("RAPPORT_LUA_MAX_INSTRUCTIONS");
    unsetenv("RAPPORT_PLUGINS_BUILTIN");
    return 0;
}

/* A folder of the given fixture plugins (symbolic links to the built ones). */
static const char *plugin_folder(const char *name)
{
    const char *built = getenv("RP_TEST_PLUGINS");
    if (!built)
        fail_msg("RP_TEST_PLUGINS is not set (run through ctest)");
    static char folder[128];
    snprintf(folder, sizeof folder, "%s/plugins", dir);
    mkdir(folder, 0755);
    char from[512], to[512];
    snprintf(from, sizeof from, "%s/%s.so", built, name);
    snprintf(to, sizeof to, "%s/%s.so", folder, name);
    if (symlink(from, to) != 0)
        fail_msg("symlink %s", from);
    return folder;
}

/* A folder holding one script with @p text. */
static const char *script_folder(const char *name, const char *text)
{
    static char folder[2][128];
    static int next;
    char *f = folder[next++ % 2];
    snprintf(f, sizeof folder[0], "%s/%s", dir, name);
    mkdir(f, 0755);
    char path[256];
    snprintf(path, sizeof path, "%s/rule.lua", f);
    write_file(path, text);
    return f;
}

static void test_open_close_twice(void **state)
{
    (void)state;
    const char *scripts[] = {script_folder("rules", "crm.on('note.created', function() end)\n"),
                             NULL};
    const char *plugins[] = {plugin_folder("good"), NULL};
    rp_engine_opts_t o = {.db = db, .create = true, .script_dirs = scripts,
                          .plugin_dirs = plugins, .log = capture};
    rp_error_t err = {0};
    rp_engine_t *en = NULL;
    /* Once to make the file and a record, once more in the same process to find it again. */
    for (int round = 0; round < 2; round++) {
        assert_int_equal(rp_engine_open(&o, &en, &err), 0);
        assert_non_null(rp_engine_sched(en));
        assert_int_equal(rp_plugins_count(rp_engine_plugins(en)), 1);
        assert_int_equal(rp_scripts_count(rp_engine_scripts(en)), 1);
        assert_null(rp_engine_access(en));
        rp_store_t *s = rp_engine_store(en);
        if (round == 0) {
            define(s, "note", "{\"fields\": {\"body\": {\"type\": \"text\"}}}");
            json_t *rec = J("{\"body\": \"kept\"}");
            int64_t id = 0;
            assert_int_equal(rp_store_create(s, &test_ctx, "note", rec, &id, &err), 0);
            json_decref(rec);
        } else {
            json_t *r = NULL;
            assert_int_equal(rp_store_get(s, "note", 1, &r, &err), 0);
            assert_string_equal(json_string_value(json_object_get(r, "body")), "kept");
            json_decref(r);
        }
        rp_engine_close(en);
        o.create = false;
    }
}

static void test_bare_and_refusals(void **state)
{
    (void)state;
    rp_error_t err = {0};
    rp_engine_t *en = NULL;
    /* A missing file without create is refused, and nothing stays open. */
    rp_engine_opts_t o = {.db = db, .bare = true};
    assert_int_not_equal(rp_engine_open(&o, &en, &err), 0);
    assert_null(en);
    assert_non_null(strstr(err.msg, db));
    o.create = true;
    assert_int_equal(rp_engine_open(&o, &en, &err), 0);
    assert_null(rp_engine_sched(en));
    assert_null(rp_engine_plugins(en));
    /* A bare engine has nothing to serve, and says so. */
    assert_int_equal(rp_engine_serve(en, NULL, &err), RP_ESTATE);
    assert_non_null(strstr(err.msg, "bare"));
    rp_engine_close(en);
    /* A user that is not there is named, with the field "user". */
    o.user = "nobody";
    assert_int_not_equal(rp_engine_open(&o, &en, &err), 0);
    assert_string_equal(err.field, "user");
    assert_non_null(strstr(err.msg, "nobody"));
    /* No path at all. */
    rp_engine_opts_t none = {0};
    assert_int_equal(rp_engine_open(&none, &en, &err), RP_EINVAL);
    assert_string_equal(err.field, "db");
}

static void test_broken_script(void **state)
{
    (void)state;
    const char *scripts[] = {script_folder("broken", "this is not Lua (\n"), NULL};
    rp_engine_opts_t o = {.db = db, .create = true, .script_dirs = scripts, .log = capture};
    rp_error_t err = {0};
    rp_engine_t *en = NULL;
    assert_int_equal(rp_engine_open(&o, &en, &err), RP_EINVAL);
    assert_null(en);
    assert_string_equal(err.field, "scripts");
    assert_non_null(strstr(logbuf, "rule.lua"));
    /* `rapport test` goes on without it. */
    o.broken_scripts_ok = true;
    assert_int_equal(rp_engine_open(&o, &en, &err), 0);
    assert_int_equal(rp_scripts_broken(rp_engine_scripts(en)), 1);
    /* The engine room's view of it: the file, not running, and why, with file:line. */
    json_t *d = rp_scripts_describe(rp_engine_scripts(en));
    assert_int_equal(json_array_size(d), 1);
    json_t *one = json_array_get(d, 0);
    assert_non_null(strstr(json_string_value(json_object_get(one, "file")), "rule.lua"));
    assert_true(json_is_false(json_object_get(one, "running")));
    assert_non_null(strstr(json_string_value(json_object_get(one, "error")), "rule.lua:1:"));
    json_decref(d);
    rp_engine_close(en);
}

/* The built-in plugin folder is skipped when plugins.builtin says no: the database's setting,
 * or the environment's for one run. */
static void test_builtin_setting(void **state)
{
    (void)state;
    rp_engine_opts_t o = {.db = db, .create = true, .builtin_plugins = plugin_folder("good")};
    rp_error_t err = {0};
    rp_engine_t *en = NULL;
    assert_int_equal(rp_engine_open(&o, &en, &err), 0);
    assert_int_equal(rp_plugins_count(rp_engine_plugins(en)), 1);
    json_t *off = json_false();
    assert_int_equal(rp_config_set(rp_engine_store(en), &test_ctx, "plugins.builtin", off, &err),
                     0);
    json_decref(off);
    rp_engine_close(en);
    assert_int_equal(rp_engine_open(&o, &en, &err), 0);
    assert_int_equal(rp_plugins_count(rp_engine_plugins(en)), 0);
    rp_engine_close(en);
    setenv("RAPPORT_PLUGINS_BUILTIN", "on", 1);
    assert_int_equal(rp_engine_open(&o, &en, &err), 0);
    assert_int_equal(rp_plugins_count(rp_engine_plugins(en)), 1);
    rp_engine_close(en);
}

/* One rule, read in one place: RAPPORT_<KEY> when set and not empty, else the database. The
 * engine's limits and crm.config agree. */
static void test_settings_override(void **state)
{
    (void)state;
    rp_engine_opts_t o = {.db = db, .create = true, .log = capture};
    rp_error_t err = {0};
    rp_engine_t *en = NULL;
    assert_int_equal(rp_engine_open(&o, &en, &err), 0);
    json_t *v = json_integer(5000);
    assert_int_equal(
        rp_config_set(rp_engine_store(en), &test_ctx, "lua.max_instructions", v, &err), 0);
    json_decref(v);
    rp_engine_close(en);

    char name[64];
    assert_int_equal(rp_setting_env_name("lua.max_instructions", name, sizeof name), 0);
    assert_string_equal(name, "RAPPORT_LUA_MAX_INSTRUCTIONS");
    assert_int_equal(rp_setting_env_name("lua.max_instructions", name, 8), RP_EINVAL);

    static const struct {
        const char *env; /* NULL: unset */
        int64_t limit;   /* what the engine takes */
        const char *lua; /* what crm.config returns, as JSON */
    } cases[] = {
        {NULL, 5000, "5000"},
        {"7", 7, "7"},
        {"", 5000, "5000"}, /* empty overrides nothing */
        {"many", 0, "\"many\""}, /* not a number: the default, said */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i].env)
            setenv("RAPPORT_LUA_MAX_INSTRUCTIONS", cases[i].env, 1);
        else
            unsetenv("RAPPORT_LUA_MAX_INSTRUCTIONS");
        logbuf[0] = '\0';
        assert_int_equal(rp_engine_open(&o, &en, &err), 0);
        rp_lua_opts_t lo = rp_engine_lua_opts(en);
        assert_int_equal(lo.max_instructions, cases[i].limit);
        if (cases[i].limit == 0)
            assert_non_null(strstr(logbuf, "RAPPORT_LUA_MAX_INSTRUCTIONS = many is not a "
                                           "positive number"));
        lo.name = "check";
        rp_lua_t *l = rp_lua_new(rp_engine_store(en), rp_engine_sched(en), &lo, &err);
        assert_non_null(l);
        json_t *res = NULL;
        assert_int_equal(rp_lua_eval(l, "return crm.config('lua.max_instructions')", "check",
                                     &res, &err),
                         0);
        char *got = json_dumps(json_array_get(res, 0), JSON_ENCODE_ANY);
        assert_string_equal(got, cases[i].lua);
        free(got);
        json_decref(res);
        rp_lua_free(l);
        rp_engine_close(en);
    }
}

/* ---- serve ------------------------------------------------------------------------------ */

static volatile int port;
static char status_line[128];

static void serve_log(void *ud, const char *level, const char *component, const char *msg)
{
    capture(ud, level, component, msg);
    const char *at = strstr(msg, "listening on 127.0.0.1:");
    if (at)
        port = atoi(at + strlen("listening on 127.0.0.1:"));
}

/* Waits for the server, asks it for /health, then stops it the way an operator would. */
static void *client(void *arg)
{
    (void)arg;
    for (int i = 0; i < 500 && !port; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (port) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
            const char req[] = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
            if (write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1)) {
                ssize_t n = read(fd, status_line, sizeof status_line - 1);
                status_line[n > 0 ? n : 0] = '\0';
            }
        }
        close(fd);
    }
    kill(getpid(), SIGTERM);
    return NULL;
}

static void test_serve(void **state)
{
    (void)state;
    rp_engine_opts_t o = {.db = db, .create = true, .log = serve_log};
    rp_error_t err = {0};
    rp_engine_t *en = NULL;
    assert_int_equal(rp_engine_open(&o, &en, &err), 0);
    /* An address that does not parse is the caller's mistake, named as "listen". */
    rp_engine_serve_opts_t bad = {.listen = "nowhere"};
    assert_int_equal(rp_engine_serve(en, &bad, &err), RP_EINVAL);
    assert_string_equal(err.field, "listen");
    port = 0;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, client, NULL), 0);
    rp_engine_serve_opts_t so = {.listen = "127.0.0.1:0", .poll_ms = 20};
    int rc = rp_engine_serve(en, &so, &err);
    pthread_join(t, NULL);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(status_line, "HTTP/1.1 200"));
    assert_non_null(strstr(logbuf, "serving db="));
    rp_engine_close(en);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_close_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bare_and_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broken_script, setup, teardown),
        cmocka_unit_test_setup_teardown(test_builtin_setting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settings_override, setup, teardown),
        cmocka_unit_test_setup_teardown(test_serve, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
