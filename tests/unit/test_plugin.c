/*
 * test_plugin.c — the plugin host against real fixture shared objects (tests/plugins): a
 * working plugin's registrations end to end, load order along a dependency chain and fini in
 * reverse, and each refusal with the plugin, its file and the reason named.
 */
#include <unistd.h>

#include "helpers.h"
#include "rapport/lua.h"
#include "rapport/plugin.h"

static char logbuf[8192];
static void capture(void *ud, const char *level, const char *component, const char *msg)
{
    size_t n = strlen(logbuf);
    snprintf(logbuf + n, sizeof logbuf - n, "%s %s %s\n", level, component, msg);
}

/* A folder holding links to the named fixtures ("good", "chain_b", …); removed by cleanup(). */
static char dir[64];
static const char *folder_with(const char *const *names)
{
    const char *built = getenv("RP_TEST_PLUGINS");
    if (!built)
        fail_msg("RP_TEST_PLUGINS is not set (run through ctest)");
    snprintf(dir, sizeof dir, "/tmp/rp_plug_XXXXXX");
    if (!mkdtemp(dir))
        fail_msg("mkdtemp");
    for (int i = 0; names[i]; i++) {
        char from[512], to[512];
        snprintf(from, sizeof from, "%s/%s.so", built, names[i]);
        snprintf(to, sizeof to, "%s/%s.so", dir, names[i]);
        if (symlink(from, to) != 0)
            fail_msg("symlink %s", from);
    }
    return dir;
}

static void cleanup(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fail_msg("cleanup");
}

static int load(rp_store_t *s, rp_sched_t *e, const char *const *names, bool skip,
                rp_plugins_t **out, rp_error_t *err)
{
    const char *dirs[] = {folder_with(names), NULL};
    rp_plugins_opts_t o = {.dirs = dirs, .skip_broken = skip, .log = capture};
    logbuf[0] = '\0';
    return rp_plugins_load(s, e, &o, out, err);
}

static void test_a_working_plugin(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    rp_sched_opts_t so = {.virtual_clock = true, .start_ms = 1767225600000};
    rp_sched_t *e = rp_sched_new(s, &so);
    const char *names[] = {"good", NULL};
    rp_plugins_t *p = NULL;
    rp_error_t err = {0};
    assert_int_equal(load(s, e, names, false, &p, &err), 0);
    assert_int_equal(rp_plugins_count(p), 1);
    assert_true(rp_store_has_entity(s, "good_item"));
    assert_contains(logbuf, "info plugin:good init good");

    /* Its hook edits the record, and vetoes with its message. */
    int64_t id = create(s, "good_item", "{\"name\": \"widget\"}");
    assert_string_equal(field_of(s, "good_item", id, "name"), "\"Widget\"");
    assert_string_equal(field_of(s, "good_item", id, "points"), "1");
    rp_error_t verr = {0};
    assert_int_equal(try_create(s, "good_item", "{\"name\": \"forbidden\"}", &verr), RP_EVETO);
    assert_contains(verr.msg, "the name \"forbidden\" is not allowed (plugin good)");
    /* Text read without JSON: a name longer than the hook's buffer is read again whole; one
     * that starts with no lower-case letter is left alone; a string that is not UTF-8 is
     * refused by change_set_text. */
    id = create(s, "good_item", "{\"name\": \"a name longer than eight bytes\"}");
    assert_string_equal(field_of(s, "good_item", id, "name"), "\"A name longer than eight bytes\"");
    assert_int_equal(try_create(s, "good_item", "{\"name\": \"not utf-8\"}", &verr), RP_EVETO);
    assert_contains(verr.msg, "change_set_text of a lone 0xff said -1");
    /* A bulk write goes through the same hook. */
    json_t *batch = J("[{\"name\": \"alpha\"}, {\"name\": \"beta\", \"points\": 5}]");
    assert_int_equal(rp_store_create_many(s, &test_ctx, "good_item", batch, NULL, NULL, &err), 0);
    json_decref(batch);
    assert_string_equal(field_of(s, "good_item", 4, "name"), "\"Beta\"");
    assert_string_equal(field_of(s, "good_item", 4, "points"), "5");

    /* Its event handler and its job run on the engine, writing as the plugin. */
    assert_int_equal(rp_sched_run_due(e, NULL, &err), 0);
    json_t *w = J("{}");
    int64_t n = 0;
    rp_event_t ev[8];
    int k = rp_events_list(s, 0, true, ev, 8, &err);
    int seen = 0;
    for (int i = 0; i < k; i++) {
        if (strcmp(ev[i].type, "good.seen") == 0) {
            seen++;
            assert_string_equal(ev[i].actor, "subscriber:good.seen");
            assert_true(ev[i].depth == 1 && ev[i].cause > 0);
        }
        rp_event_clear(&ev[i]);
    }
    assert_int_equal(seen, 4);
    json_decref(w);
    json_t *payload = J("{\"n\": 7}");
    assert_int_equal(rp_jobs_schedule(s, &test_ctx, "good.tick", payload, rp_sched_now(e) + 1000,
                                      NULL, NULL, &err), 0);
    json_decref(payload);
    assert_int_equal(rp_sched_advance(e, 2000, &err), 0);
    k = rp_events_list(s, 0, true, ev, 1, &err);
    assert_int_equal(k, 1);
    assert_string_equal(ev[0].type, "good.ticked");
    assert_string_equal(ev[0].changes, "{\"n\":7}");
    rp_event_clear(&ev[0]);
    (void)n;

    /* Its Lua function is crm.good.double in every state made with the plugins' list. */
    rp_lua_opts_t lo = {.ext = rp_plugins_lua(p)};
    rp_lua_t *l = rp_lua_new(s, e, &lo, &err);
    assert_non_null(l);
    json_t *res = NULL;
    assert_int_equal(rp_lua_eval(l, "crm.good.double(21)", "t", &res, &err), 0);
    assert_int_equal(json_integer_value(json_array_get(res, 0)), 42);
    json_decref(res);
    assert_int_equal(rp_lua_eval(l, "crm.good.double('x')", "t", &res, &err), RP_EINVAL);
    assert_contains(err.msg, "t:1: crm.good.double: double needs one integer");
    /* find_rows: every good_item as the text of its fields, two a page along the cursor (the
     * points an integer's text, a null as "-"), in the order asked for; a query that is not
     * JSON, or names a field the entity lacks, is refused with the host's words. */
    assert_int_equal(rp_lua_eval(l, "return crm.good.rows(\"{'limit': 2, 'fields': ['name', "
                                    "'points'], 'order': 'name'}\")", "t", &res, &err), 0);
    char *rows_text = json_dumps(json_array_get(res, 0), JSON_COMPACT);
    assert_string_equal(rows_text, "[\"A name longer than eight bytes|1\",\"Alpha|1\","
                                   "\"Beta|5\",\"Widget|1\"]");
    free(rows_text);
    json_decref(res);
    assert_int_equal(rp_lua_eval(l, "return crm.good.rows('{oops')", "t", &res, &err),
                     RP_EINVAL);
    assert_contains(err.msg, "the query is not valid JSON");
    assert_int_equal(rp_lua_eval(l, "return crm.good.rows(\"{'fields': ['nope']}\")", "t", &res,
                                 &err), RP_EINVAL);
    assert_contains(err.msg, "nope");
    assert_int_equal(rp_lua_eval(l, "return crm.good.rows(\"{'fields': [\" .. "
                                    "string.rep(\"'id', \", 64) .. \"'id']}\")", "t", &res, &err),
                     RP_EINVAL);
    assert_contains(err.msg, "1 to 64 fields, not 65");
    rp_lua_free(l);

    /* Its command, and a command it lacks. */
    char *argv1[] = {"good", "hello", "world", NULL};
    assert_int_equal(rp_plugins_command(p, 3, argv1, &err), 0);
    char *argv2[] = {"good", "nope", NULL};
    assert_int_equal(rp_plugins_command(p, 2, argv2, &err), -1);
    assert_contains(err.msg, "rapport good hello  say hello");

    /* What `rapport plugins` shows. */
    json_t *d = rp_plugins_describe(p);
    json_t *g = json_array_get(d, 0);
    assert_string_equal(json_string_value(json_object_get(g, "version")), "1.2.0");
    assert_int_equal(json_integer_value(json_object_get(g, "abi")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(g, "entities"), 0)),
                        "good_item");
    assert_string_equal(json_string_value(json_array_get(json_object_get(g, "hooks"), 0)),
                        "good_item.create");
    assert_string_equal(json_string_value(json_array_get(json_object_get(g, "lua"), 0)),
                        "crm.good.double");
    assert_int_equal(json_array_size(json_object_get(g, "jobs")), 1);
    assert_int_equal(json_array_size(json_object_get(g, "handlers")), 1);
    json_decref(d);

    rp_plugins_unload(p);
    assert_contains(logbuf, "info plugin:good fini good");
    /* After unloading, its hook no longer applies. */
    id = create(s, "good_item", "{\"name\": \"lower\"}");
    assert_string_equal(field_of(s, "good_item", id, "name"), "\"lower\"");
    /* Loaded again on the same file, its declaration finds everything in place: nothing is
     * written; a field an admin added to its entity stays. */
    json_t *extra = J("{\"type\": \"text\"}");
    assert_int_equal(rp_store_add_field(s, &test_ctx, "good_item", "note", extra, "admin", &err),
                     0);
    json_decref(extra);
    int64_t last = rp_events_last_seq(s);
    cleanup();
    assert_int_equal(load(s, e, names, false, &p, &err), 0);
    assert_int_equal(rp_events_last_seq(s), last);
    assert_true(rp_store_has_field(s, "good_item", "note"));
    rp_plugins_unload(p);
    rp_sched_free(e);
    rp_store_close(s);
    cleanup();
}

static void test_dependency_order_and_fini_in_reverse(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    rp_sched_t *e = rp_sched_new(s, NULL);
    /* File names sort c, b, good: the host must still start good, then chainb, then chainc. */
    const char *names[] = {"chain_c", "chain_b", "good", NULL};
    rp_plugins_t *p = NULL;
    rp_error_t err = {0};
    assert_int_equal(load(s, e, names, false, &p, &err), 0);
    char *a = strstr(logbuf, "init good"), *b = strstr(logbuf, "init chainb"),
         *c = strstr(logbuf, "init chainc");
    assert_true(a && b && c && a < b && b < c);
    rp_plugins_unload(p);
    a = strstr(logbuf, "fini good");
    b = strstr(logbuf, "fini chainb");
    c = strstr(logbuf, "fini chainc");
    assert_true(a && b && c && c < b && b < a);
    rp_sched_free(e);
    rp_store_close(s);
    cleanup();
}

static void expect_refusal(const char *const *names, const char *needle1, const char *needle2)
{
    rp_store_t *s = test_open();
    rp_sched_t *e = rp_sched_new(s, NULL);
    rp_plugins_t *p = NULL;
    rp_error_t err = {0};
    int rc = load(s, e, names, false, &p, &err);
    if (rc == 0)
        fail_msg("expected a refusal containing \"%s\"", needle1);
    assert_null(p);
    assert_contains(err.msg, "RP-E1801");
    assert_contains(err.msg, needle1);
    if (needle2)
        assert_contains(err.msg, needle2);
    /* Nothing of the refused plugin stays. */
    assert_false(rp_store_has_entity(s, "doomed_thing"));
    rp_sched_free(e);
    rp_store_close(s);
    cleanup();
}

static void test_refusals(void **state)
{
    (void)state;
    const char *notso[] = {"broken", NULL};
    expect_refusal(notso, "broken.so is not a loadable shared object", NULL);
    const char *noentry[] = {"noentry", NULL};
    expect_refusal(noentry, "noentry.so has no entry function rapport_plugin_entry", NULL);
    const char *abi[] = {"abi", NULL};
    expect_refusal(abi, "plugin future (", "built for plugin ABI 99; this engine speaks ABI 1");
    const char *missing[] = {"missing", NULL};
    expect_refusal(missing, "plugin lonely (", "needs plugin ghost, which is not loaded");
    const char *old[] = {"good", "toold", NULL};
    expect_refusal(old, "plugin picky (", "needs plugin good >= 2.0.0, but good is version 1.2.0");
    const char *cycle[] = {"cycle1", "cycle2", NULL};
    expect_refusal(cycle, "dependency cycle: cycleone -> cycletwo -> cycleone", NULL);
    const char *dup[] = {"good", "dup", NULL};
    expect_refusal(dup, "has the same name as the plugin loaded from", "good.so");
    const char *fails[] = {"good", "initfail", NULL};
    expect_refusal(fails, "plugin doomed (", "the licence key is missing");
}

static void test_failed_init_is_rolled_back(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    rp_sched_t *e = rp_sched_new(s, NULL);
    const char *names[] = {"initfail", "good", NULL};
    rp_plugins_t *p = NULL;
    rp_error_t err = {0};
    /* With skip_broken the engine starts without it, says so, and keeps the good one. */
    assert_int_equal(load(s, e, names, true, &p, &err), 0);
    assert_int_equal(rp_plugins_count(p), 1);
    assert_contains(logbuf, "warn plugins skipping broken plugin: RP-E1801: plugin doomed");
    assert_contains(logbuf, "everything it registered was removed");
    assert_false(rp_store_has_entity(s, "doomed_thing"));
    /* Its "*" create hook is gone: a good_item is changed only by good's own hook. */
    rp_lua_opts_t lo = {.ext = rp_plugins_lua(p)};
    rp_lua_t *l = rp_lua_new(s, e, &lo, &err);
    json_t *res = NULL;
    assert_int_equal(rp_lua_eval(l, "crm.doomed == nil, crm.good.double(2)", "t", &res, &err), 0);
    assert_true(json_is_true(json_array_get(res, 0)));
    json_decref(res);
    rp_lua_free(l);
    json_t *d = rp_plugins_describe(p);
    assert_int_equal(json_array_size(d), 1);
    json_decref(d);
    char *argv1[] = {"doomed", "hello", NULL};
    assert_int_equal(rp_plugins_command(p, 2, argv1, &err), -1);
    rp_plugins_unload(p);

    /* Skipping a broken dependency skips what needs it too. */
    const char *chain[] = {"chain_b", "chain_c", NULL};
    assert_int_equal(load(s, e, chain, true, &p, &err), 0);
    assert_int_equal(rp_plugins_count(p), 0);
    assert_contains(logbuf, "plugin chainb (");
    assert_contains(logbuf, "needs plugin good >= 1.0.0, which is not loaded");
    assert_contains(logbuf, "plugin chainc (");
    rp_plugins_unload(p);
    rp_sched_free(e);
    rp_store_close(s);
    cleanup();
}

/* Evaluates @p code and checks it gives the JSON @p want (or fails with @p want in its message). */
static void check_eval(rp_lua_t *l, const char *code, const char *want, bool fails)
{
    json_t *res = NULL;
    rp_error_t err = {0};
    int rc = rp_lua_eval(l, code, "t", &res, &err);
    if (fails) {
        assert_int_equal(rc, RP_EINVAL);
        assert_contains(err.msg, want);
        return;
    }
    if (rc)
        fail_msg("%s: %s", code, err.msg);
    char *got = json_dumps(json_array_get(res, 0), JSON_ENCODE_ANY);
    assert_string_equal(got, want);
    free(got);
    json_decref(res);
}

static void test_api_time_and_decimals(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    rp_sched_opts_t so = {.virtual_clock = true, .start_ms = 1767225600000};
    rp_sched_t *e = rp_sched_new(s, &so);
    const char *names[] = {"good", NULL};
    rp_plugins_t *p = NULL;
    rp_error_t err = {0};
    assert_int_equal(load(s, e, names, false, &p, &err), 0);
    rp_lua_opts_t lo = {.ext = rp_plugins_lua(p)};
    rp_lua_t *l = rp_lua_new(s, e, &lo, &err);
    assert_non_null(l);
    /* Decimals round trip exactly, negative ones and trailing zeros past the scale too. */
    check_eval(l, "crm.good.dec('parse', '12.5', 2)", "\"12.50\"", false);
    check_eval(l, "crm.good.dec('parse', '-0.07', 2)", "\"-0.07\"", false);
    check_eval(l, "crm.good.dec('parse', '-.5', 3)", "\"-0.500\"", false);
    check_eval(l, "crm.good.dec('parse', '+7.1000', 1)", "\"7.1\"", false);
    check_eval(l, "crm.good.dec('parse', '-9223372036854775807', 0)", "\"-9223372036854775807\"",
               false);
    check_eval(l, "crm.good.dec('parse', '92233720368547758.07', 2)", "\"92233720368547758.07\"",
               false);
    /* What is refused says why. */
    check_eval(l, "crm.good.dec('parse', '1.234', 2)", "decimal \"1.234\" has more than 2 decimal "
                                                       "places", true);
    check_eval(l, "crm.good.dec('parse', '92233720368547758.08', 2)",
               "decimal \"92233720368547758.08\" is out of range at scale 2", true);
    check_eval(l, "crm.good.dec('parse', '99999999999999999999', 0)", "is out of range", true);
    check_eval(l, "crm.good.dec('parse', '1.', 2)", "\"1.\" is not a decimal number", true);
    check_eval(l, "crm.good.dec('parse', '1e3', 2)", "\"1e3\" is not a decimal number", true);
    check_eval(l, "crm.good.dec('parse', '5', 19)", "scale 19 is not between 0 and 18", true);
    /* Products round half away from zero; sums and products that overflow are refused. */
    check_eval(l, "crm.good.dec('mul', '1.005', 3, '1', 0, 2)", "\"1.01\"", false);
    check_eval(l, "crm.good.dec('mul', '-1.005', 3, '1', 0, 2)", "\"-1.01\"", false);
    check_eval(l, "crm.good.dec('mul', '2.5', 3, '19.99', 2, 2)", "\"49.98\"", false);
    check_eval(l, "crm.good.dec('mul', '3', 0, '0.5', 1, 3)", "\"1.500\"", false);
    check_eval(l, "crm.good.dec('mul', '9223372036854775807', 0, '2', 0, 0)",
               "the product is out of range", true);
    check_eval(l, "crm.good.dec('add', '0.10', '0.20', 2)", "\"0.30\"", false);
    check_eval(l, "crm.good.dec('add', '-5', '3.25', 2)", "\"-1.75\"", false);
    check_eval(l, "crm.good.dec('add', '92233720368547758.07', '0.01', 2)",
               "the sum is out of range", true);
    check_eval(l, "crm.good.dec('cmp', '1.50', 2, '1.5', 1)", "0", false);
    check_eval(l, "crm.good.dec('cmp', '-2', 0, '-1.999', 3)", "-1", false);
    check_eval(l, "crm.good.dec('cmp', '0.001', 3, '0', 0)", "1", false);
    /* Times: any ISO-8601 offset in, the store's UTC form out; delays. */
    check_eval(l, "crm.good.dec('time', '2026-01-01T01:30+01:30')", "\"2026-01-01T00:00:00.000Z\"",
               false);
    check_eval(l, "crm.good.dec('time', '2024-02-29')", "\"2024-02-29T00:00:00.000Z\"", false);
    check_eval(l, "crm.good.dec('time', '2023-02-29')", "\"2023-02-29\" is not an ISO-8601", true);
    check_eval(l, "crm.good.dec('fmt', -1)", "\"1969-12-31T23:59:59.999Z\"", false);
    check_eval(l, "crm.good.dec('fmt', 253402300800000)", "outside the years 0 to 9999", true);
    check_eval(l, "crm.good.dec('delay', '1h30m')", "5400000", false);
    check_eval(l, "crm.good.dec('delay', '3 days')", "delay \"3 days\" at position 1", true);
    rp_lua_free(l);
    rp_plugins_unload(p);
    rp_sched_free(e);
    rp_store_close(s);
    cleanup();
}

/* api->route_doc: what a plugin may document and how; every route in the OpenAPI paths. */
static void test_route_docs(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    rp_sched_opts_t so = {.virtual_clock = true, .start_ms = 1767225600000};
    rp_sched_t *e = rp_sched_new(s, &so);
    const char *names[] = {"good", NULL};
    rp_plugins_t *p = NULL;
    rp_error_t err = {0};
    assert_int_equal(load(s, e, names, false, &p, &err), 0);
    rp_lua_opts_t lo = {.ext = rp_plugins_lua(p)};
    rp_lua_t *l = rp_lua_new(s, e, &lo, &err);
    assert_non_null(l);
    /* Before any documentation: every route listed, saying it is not documented. */
    json_t *paths = json_object();
    rp_plugins_openapi(p, paths);
    const char *sum = json_string_value(json_object_get(json_object_get(json_object_get(
        paths, "/api/v1/plugins/good/items"), "get"), "summary"));
    assert_non_null(sum);
    assert_contains(sum, "does not document");
    json_t *any = json_object_get(paths, "/api/v1/plugins/good/any");
    assert_non_null(json_object_get(any, "get"));
    assert_non_null(json_object_get(any, "post"));
    json_t *hook = json_object_get(json_object_get(paths, "/api/v1/plugins/good/hook"), "post");
    assert_true(json_is_array(json_object_get(hook, "security")) &&
                json_array_size(json_object_get(hook, "security")) == 0);
    json_decref(paths);

    check_eval(l, "crm.good.doc('GET', 'items/{id}', 0)", "true", false);
    check_eval(l, "crm.good.doc('POST', 'hook', 1)", "true", false);
    check_eval(l, "crm.good.doc('DELETE', 'any', 1)", "true", false);
    /* Two routes on one path, by method: each documented on its own, and one documented
     * leaves the other listed as undocumented. */
    paths = json_object();
    rp_plugins_openapi(p, paths);
    sum = json_string_value(json_object_get(json_object_get(json_object_get(
        paths, "/api/v1/plugins/good/items"), "post"), "summary"));
    assert_non_null(sum);
    assert_contains(sum, "does not document");
    json_decref(paths);
    check_eval(l, "crm.good.doc('POST', 'items', 1)", "true", false);
    /* Refusals name what is wrong. */
    check_eval(l, "crm.good.doc('PUT', 'items', 1)", "route_doc PUT items: plugin good has no "
                                                    "such route", true);
    check_eval(l, "crm.good.doc('GET', 'elsewhere', 1)", "has no such route", true);
    check_eval(l, "crm.good.doc('FETCH', 'items', 1)", "method \"FETCH\": one of GET", true);
    check_eval(l, "crm.good.doc('GET', 'items/{Id}', 1)", "segment \"{Id}\" is neither", true);
    check_eval(l, "crm.good.doc('GET', 'items//x', 1)", "segment \"\" is neither", true);
    check_eval(l, "crm.good.doc('GET', 'items', 2)", "\"servers\" is not a key", true);
    check_eval(l, "crm.good.doc('GET', 'items', 3)", "\"summary\" must be a non-empty", true);
    check_eval(l, "crm.good.doc('GET', 'items', 4)", "the operation is not valid JSON", true);
    check_eval(l, "crm.good.doc('GET', 'items', 5)", "\"responses\" must be an object", true);
    check_eval(l, "crm.good.doc('GET', 'items', 6)", "\"tags\" must be an array of strings",
               true);
    check_eval(l, "crm.good.doc('GET', 'items', 7)", "must be a JSON object", true);

    paths = json_object();
    rp_plugins_openapi(p, paths);
    /* The documented paths replace the undocumented entry, {id} declared. */
    assert_null(json_object_get(json_object_get(paths, "/api/v1/plugins/good/items"), "get"));
    json_t *op = json_object_get(json_object_get(paths, "/api/v1/plugins/good/items/{id}"),
                                 "get");
    assert_string_equal(json_string_value(json_object_get(op, "summary")), "Items, or one item");
    json_t *param = json_array_get(json_object_get(op, "parameters"), 0);
    assert_string_equal(json_string_value(json_object_get(param, "name")), "id");
    assert_string_equal(json_string_value(json_object_get(param, "in")), "path");
    assert_true(json_is_true(json_object_get(param, "required")));
    assert_string_equal(json_string_value(json_array_get(json_object_get(op, "tags"), 0)), "good");
    op = json_object_get(json_object_get(paths, "/api/v1/plugins/good/items"), "post");
    assert_string_equal(json_string_value(json_object_get(op, "summary")), "A gateway's callback");
    assert_null(json_object_get(op, "security"));
    hook = json_object_get(json_object_get(paths, "/api/v1/plugins/good/hook"), "post");
    assert_string_equal(json_string_value(json_object_get(hook, "summary")),
                        "A gateway's callback");
    assert_int_equal(json_array_size(json_object_get(hook, "security")), 0);
    assert_non_null(json_object_get(json_object_get(hook, "responses"), "200"));
    any = json_object_get(paths, "/api/v1/plugins/good/any");
    assert_non_null(json_object_get(any, "delete"));
    assert_null(json_object_get(any, "get"));
    json_decref(paths);
    rp_lua_free(l);
    rp_plugins_unload(p);
    rp_sched_free(e);
    rp_store_close(s);
    cleanup();
}

static void test_formats(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    rp_sched_opts_t so = {.virtual_clock = true, .start_ms = 1767225600000};
    rp_sched_t *e = rp_sched_new(s, &so);
    const char *names[] = {"good", NULL};
    rp_plugins_t *p = NULL;
    rp_error_t err = {0};
    assert_int_equal(load(s, e, names, false, &p, &err), 0);
    /* Found by name, by a file's ending in any case, and listed after the engine's own. */
    assert_string_equal(rp_plugins_format(p, "goodlist", NULL, true), "goodlist");
    assert_string_equal(rp_plugins_format(p, NULL, "/x/names.GOODS", false), "goodlist");
    assert_null(rp_plugins_format(p, NULL, "names.txt", true));
    assert_null(rp_plugins_format(p, "vcf", NULL, true));
    char list[128];
    rp_plugins_format_names(p, false, list, sizeof list);
    assert_string_equal(list, " and goodlist");
    json_t *d = rp_plugins_describe(p);
    assert_string_equal(json_string_value(json_array_get(json_object_get(json_array_get(d, 0),
                                                                         "formats"), 0)),
                        "goodlist (import, export)");
    json_decref(d);
    /* An export: head, each record (or none), tail. */
    json_t *fields = J("{\"name\": {\"type\": \"text\"}}");
    rp_export_t *x = NULL;
    char *head = NULL, *text = NULL, *tail = NULL;
    assert_int_equal(rp_plugins_export_begin(p, "goodlist", "good_item", fields, false, &x, &head,
                                             &err), 0);
    assert_string_equal(head, "# goodlist\n");
    json_t *rec = J("{\"id\": 1, \"name\": \"Widget\"}");
    assert_int_equal(rp_plugins_export_record(x, rec, &text, &err), 0);
    assert_string_equal(text, "Widget\n");
    free(text);
    json_decref(rec);
    rec = J("{\"id\": 2}");
    assert_int_equal(rp_plugins_export_record(x, rec, &text, &err), 0);
    assert_null(text);
    json_decref(rec);
    assert_int_equal(rp_plugins_export_end(x, false, &tail, &err), 0);
    assert_string_equal(tail, "# end\n");
    free(head);
    free(tail);
    json_decref(fields);
    /* The format refuses an entity it does not fit, with its own words. */
    fields = J("{\"title\": {\"type\": \"text\"}}");
    assert_int_equal(rp_plugins_export_begin(p, "goodlist", "memo", fields, false, &x, &head,
                                             &err), RP_EINVAL);
    assert_null(x);
    assert_contains(err.msg, "goodlist is for things with a name: memo has none");
    json_decref(fields);
    assert_int_equal(rp_plugins_export_begin(p, "nope", "memo", NULL, false, &x, &head, &err),
                     RP_ENOTFOUND);
    assert_contains(err.msg, "no plugin writes format \"nope\"");
    rp_plugins_unload(p);
    rp_sched_free(e);
    rp_store_close(s);
    cleanup();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_working_plugin),
        cmocka_unit_test(test_dependency_order_and_fini_in_reverse),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_failed_init_is_rolled_back),
        cmocka_unit_test(test_api_time_and_decimals),
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_route_docs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
