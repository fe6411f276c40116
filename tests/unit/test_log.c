/*
 * test_log.c — the one log (core/text/log.c): the line's format, the masking of secrets, the
 * level filter and the sink; and that rooms with no log function of their own (a Lua state,
 * the script loader) say things through the sink, never on stderr themselves.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rapport/log.h"
#include "rapport/lua.h"
#include "rapport/store.h"

/* What a test sink received. */
typedef struct {
    int n;
    char level[16], component[64], msg[512];
} seen_t;

static void capture(void *ud, const char *level, const char *component, const char *msg)
{
    seen_t *s = ud;
    s->n++;
    snprintf(s->level, sizeof s->level, "%s", level);
    snprintf(s->component, sizeof s->component, "%s", component);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
}

static int reset(void **state)
{
    (void)state;
    rp_log_set_sink(NULL, NULL);
    rp_log_set_level(RP_LOG_INFO);
    return 0;
}

/* Cleans @p in and checks the result is @p want. */
static void check_clean(const char *in, const char *want)
{
    char out[256];
    size_t n = rp_log_clean(in, out, sizeof out);
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
}

static void test_format(void **state)
{
    (void)state;
    char line[128];
    /* 2026-01-01T00:00:00.123Z */
    size_t n = rp_log_format(line, sizeof line, 1767225600123LL, "warn", "http", "slow client");
    assert_string_equal(line, "2026-01-01T00:00:00.123Z warn http slow client\n");
    assert_int_equal(n, strlen(line));
    /* The message is cleaned on the way: one line, no secret. */
    rp_log_format(line, sizeof line, 5, "error", "sched", "a\nb password=x");
    assert_string_equal(line, "1970-01-01T00:00:00.005Z error sched a b password=[secret]\n");
    /* Cut short as snprintf is: the whole length is returned, the text stays NUL-ended. */
    char small[10];
    n = rp_log_format(small, sizeof small, 0, "info", "x", "hello");
    assert_int_equal(n, strlen("1970-01-01T00:00:00.000Z info x hello\n"));
    assert_string_equal(small, "1970-01-0");
}

static void test_levels(void **state)
{
    (void)state;
    assert_string_equal(rp_log_level_name(RP_LOG_DEBUG), "debug");
    assert_string_equal(rp_log_level_name(RP_LOG_ERROR), "error");
    assert_string_equal(rp_log_level_name((rp_log_level_t)42), "info");
    assert_int_equal(rp_log_level_of("warn"), RP_LOG_WARN);
    assert_int_equal(rp_log_level_of("info"), RP_LOG_INFO);
    assert_int_equal(rp_log_level_of("loud"), -1);
    assert_int_equal(rp_log_level_of(NULL), -1);
}

static void test_clean(void **state)
{
    (void)state;
    check_clean("nothing to hide: count=3 key=value", "nothing to hide: count=3 key=value");
    check_clean("two\nlines\r\nhere", "two lines  here");
    check_clean("login failed password=hunter2 user=ann",
                "login failed password=[secret] user=ann");
    check_clean("smtp_password=\"a b c\", port=25", "smtp_password=[secret], port=25");
    check_clean("API_KEY=abc;next", "API_KEY=[secret];next");
    check_clean("plugin.mail.client_secret=s3 done", "plugin.mail.client_secret=[secret] done");
    check_clean("Authorization: Bearer rp_abc.def refused",
                "Authorization: Bearer [secret] refused");
    check_clean("post to https://bob:pa55@example.com/hook failed",
                "post to https://bob:[secret]@example.com/hook failed");
    check_clean("post to https://example.com/a:b@c", "post to https://example.com/a:b@c");
    check_clean("token 42 was used", "token 42 was used");
    check_clean("", "");
    char out[8];
    assert_int_equal(rp_log_clean("abcdefghij", out, sizeof out), 7);
    assert_string_equal(out, "abcdefg");
}

static void test_sink_and_filter(void **state)
{
    (void)state;
    seen_t s = {0};
    rp_log_set_sink(capture, &s);
    rp_log(RP_LOG_INFO, "engine", "serving on %s:%d", "127.0.0.1", 8080);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.level, "info");
    assert_string_equal(s.component, "engine");
    assert_string_equal(s.msg, "serving on 127.0.0.1:8080");

    rp_log(RP_LOG_DEBUG, "engine", "dropped at the default level");
    assert_int_equal(s.n, 1);

    rp_log_set_level(RP_LOG_WARN);
    assert_false(rp_log_enabled(RP_LOG_INFO));
    assert_true(rp_log_enabled(RP_LOG_ERROR));
    rp_log_write("info", "engine", "dropped");
    rp_log_write("loud", "engine", "an unknown level counts as info: dropped");
    assert_int_equal(s.n, 1);
    rp_log_write("error", "db", "disk full\ntoken=abc");
    assert_int_equal(s.n, 2);
    assert_string_equal(s.level, "error");
    assert_string_equal(s.msg, "disk full token=[secret]");

    /* A room's own function gets the line instead of the sink, filtered and cleaned alike. */
    seen_t own = {0};
    rp_log_to(capture, &own, "info", "http", "dropped");
    rp_log_to(capture, &own, "warn", "http", "client %s: %d failures, secret=%s", "::1", 5, "x");
    assert_int_equal(own.n, 1);
    assert_string_equal(own.msg, "client ::1: 5 failures, secret=[secret]");
    assert_int_equal(s.n, 2);
    /* No function: the sink. */
    rp_log_to(NULL, NULL, "warn", "http", "to the sink");
    assert_int_equal(s.n, 3);
    assert_string_equal(s.msg, "to the sink");
}

/* The default sink writes one formatted line to stderr. */
static void test_stderr_sink(void **state)
{
    (void)state;
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), 2) >= 0);
    rp_log_set_sink(NULL, NULL);
    rp_log_write("error", "test", "to stderr\npassword=x");
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char line[256] = "";
    rewind(tmp);
    assert_non_null(fgets(line, sizeof line, tmp));
    fclose(tmp);
    /* "YYYY-MM-DDTHH:MM:SS.mmmZ error test to stderr password=[secret]\n" */
    assert_int_equal(strlen(line), 24 + strlen(" error test to stderr password=[secret]\n"));
    assert_int_equal(line[10], 'T');
    assert_int_equal(line[19], '.');
    assert_int_equal(line[23], 'Z');
    assert_string_equal(line + 24, " error test to stderr password=[secret]\n");
}

/* A Lua state with no log function of its own: print() goes to the sink, not to stderr. */
static void test_lua_says_through_the_sink(void **state)
{
    (void)state;
    seen_t s = {0};
    rp_log_set_sink(capture, &s);
    rp_store_t *st = NULL;
    rp_error_t err = {0};
    assert_int_equal(rp_store_open(":memory:", NULL, &st, &err), 0);
    rp_lua_t *l = rp_lua_new(st, NULL, &(rp_lua_opts_t){.sandbox = true, .name = "say.lua"}, &err);
    assert_non_null(l);
    assert_int_equal(rp_lua_eval(l, "print('hello', 42)", "say.lua", NULL, &err), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.level, "info");
    assert_string_equal(s.component, "script:say.lua");
    assert_string_equal(s.msg, "hello 42");
    rp_lua_free(l);
    rp_store_close(st);
}

/* The script loader with no log function: a broken script is reported through the sink. */
static void test_scripts_say_through_the_sink(void **state)
{
    (void)state;
    char dir[] = "/tmp/rp_test_log_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/broken.lua", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("this is not lua\n", f);
    fclose(f);

    seen_t s = {0};
    rp_log_set_sink(capture, &s);
    rp_store_t *st = NULL;
    rp_error_t err = {0};
    assert_int_equal(rp_store_open(":memory:", NULL, &st, &err), 0);
    const char *dirs[] = {dir, NULL};
    rp_scripts_t *sc = rp_scripts_load(st, NULL, dirs, NULL, NULL, NULL);
    assert_non_null(sc);
    assert_int_equal(rp_scripts_broken(sc), 1);
    assert_true(s.n >= 1);
    assert_string_equal(s.component, "scripts");
    assert_non_null(strstr(s.msg, "broken.lua"));
    rp_scripts_free(sc);
    rp_store_close(st);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_format, reset),
        cmocka_unit_test_teardown(test_levels, reset),
        cmocka_unit_test_teardown(test_clean, reset),
        cmocka_unit_test_teardown(test_sink_and_filter, reset),
        cmocka_unit_test_teardown(test_stderr_sink, reset),
        cmocka_unit_test_teardown(test_lua_says_through_the_sink, reset),
        cmocka_unit_test_teardown(test_scripts_say_through_the_sink, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
