/*
 * test_store.c — the store: opening and migrations, the registry, every field type, bad input,
 * records' life cycle, versions, nested transactions, bulk writes and before-hooks.
 */
#include <sqlite3.h> /* another writer, tampering with the file */

#include "rapport/db.h"
#include <unistd.h>

#include "helpers.h"
#include "rapport/sched.h"

/* Linking a module is what gives a file its tables: the scheduler's (its job ids' table is a
 * step of the release-wide schema version) as the engine links it. */
__attribute__((used)) static const void *const linked[] = {(const void *)rp_sched_new};

static int64_t count_of(rp_store_t *s, const char *entity)
{
    int64_t n = -1;
    rp_error_t err = {0};
    assert_int_equal(rp_store_count(s, entity, NULL, true, &n, &err), 0);
    return n;
}

/* ---- opening ------------------------------------------------------------------------------ */

static void test_open_file_and_newer_schema_refused(void **state)
{
    (void)state;
    char dir[64], path[256];
    test_tmpdb(dir, path, "a.db");
    rp_store_t *s = NULL;
    rp_error_t err = {0};
    rp_store_opts_t must = {.must_exist = true};
    assert_int_equal(rp_store_open(path, &must, &s, &err), RP_ENOTFOUND);
    assert_contains(err.msg, "rapport init");
    assert_int_equal(rp_store_open(path, NULL, &s, &err), 0);
    assert_int_equal(rp_store_schema_version_found(s), 0);
    rp_store_close(s);
    assert_int_equal(rp_store_open(path, NULL, &s, &err), 0);
    assert_int_equal(rp_store_schema_version_found(s), RP_STORE_SCHEMA_VERSION);
    rp_store_close(s);

    /* A database from the future is refused with both versions named. */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), RP_DB_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE rp_meta SET value = '99' WHERE key = "
                                      "'schema_version'", NULL, NULL, NULL), RP_DB_OK);
    sqlite3_close(db);
    assert_int_equal(rp_store_open(path, NULL, &s, &err), RP_EVERSION);
    assert_null(s);
    assert_contains(err.msg, "99");
    char upto[64];
    snprintf(upto, sizeof upto, "up to version %d", RP_STORE_SCHEMA_VERSION);
    assert_contains(err.msg, upto);

    /* Not a database at all. */
    char junk[256];
    snprintf(junk, sizeof junk, "%s/junk.db", dir);
    FILE *f = fopen(junk, "w");
    fputs("this is not sqlite, just text that goes on for a while........................", f);
    fclose(f);
    assert_int_not_equal(rp_store_open(junk, NULL, &s, &err), 0);
    assert_contains(err.msg, "junk.db");

    test_rmdir(dir);
}

/* ---- the registry ------------------------------------------------------------------------- */

static void test_define_and_schema(void **state)
{
    (void)state;
    rp_store_t *s = test_open_crm();
    assert_true(rp_store_has_entity(s, "contact"));
    rp_error_t err = {0};
    json_t *sch = rp_store_schema(s, "contact", &err);
    assert_non_null(sch);
    json_t *fields = json_object_get(sch, "fields");
    assert_string_equal(json_string_value(json_object_get(json_object_get(fields, "balance"),
                                                          "type")), "decimal");
    assert_true(json_is_true(json_object_get(json_object_get(fields, "email"), "unique")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(fields, "account"),
                                                          "ref")), "account");
    json_decref(sch);
    assert_null(rp_store_schema(s, "nope", &err));
    assert_int_equal(err.code, RP_ENOTFOUND);

    /* Defining is an event too. */
    rp_event_t ev[4];
    int n = rp_events_list(s, 0, false, ev, 4, &err);
    assert_int_equal(n, 2);
    assert_string_equal(ev[0].type, "schema.entity_defined");
    assert_string_equal(ev[1].entity, "contact");
    for (int i = 0; i < n; i++)
        rp_event_clear(&ev[i]);
    rp_store_close(s);
}

static void expect_define_error(rp_store_t *s, const char *name, const char *spec, int code,
                                const char *needle)
{
    json_t *j = J(spec);
    rp_error_t err = {0};
    int rc = rp_store_define(s, &test_ctx, name, j, "test", &err);
    json_decref(j);
    if (rc != code)
        fail_msg("define %s %s: expected %d, got %d (%s)", name, spec, code, rc, err.msg);
    assert_contains(err.msg, needle);
}

static void test_define_bad_input(void **state)
{
    (void)state;
    rp_store_t *s = test_open_crm();
    const char *ok = "{\"fields\": {\"a\": {\"type\": \"text\"}}}";
    expect_define_error(s, "contact", ok, RP_ECONFLICT, "already defined");
    expect_define_error(s, "Contact", ok, RP_EINVAL, "not a valid entity name");
    expect_define_error(s, "1abc", ok, RP_EINVAL, "not a valid entity name");
    expect_define_error(s, "rp_events", ok, RP_EINVAL, "not a valid entity name");
    expect_define_error(s, "x; DROP TABLE contact; --", ok, RP_EINVAL, "not a valid entity name");
    expect_define_error(s, "sqlite_master", ok, RP_EINVAL, "not a valid entity name");
    expect_define_error(s, "t", "{\"fields\": {\"a\": {\"type\": \"money\"}}}", RP_EINVAL,
                        "type must be one of");
    expect_define_error(s, "t", "{\"fields\": {\"a\": {\"type\": \"text\", \"colour\": 1}}}",
                        RP_EINVAL, "unknown option \"colour\"");
    expect_define_error(s, "t", "{\"fields\": {\"a\": {\"type\": \"enum\"}}}", RP_EINVAL,
                        "needs \"values\"");
    expect_define_error(s, "t", "{\"fields\": {\"a\": {\"type\": \"enum\", \"values\": [\"x\","
                                " \"x\"]}}}", RP_EINVAL, "listed twice");
    expect_define_error(s, "t", "{\"fields\": {\"a\": {\"type\": \"ref\", \"ref\": \"ghost\"}}}",
                        RP_EINVAL, "ghost");
    expect_define_error(s, "t", "{\"fields\": {\"a\": {\"type\": \"text\", \"scale\": 2}}}",
                        RP_EINVAL, "scale");
    expect_define_error(s, "t", "{\"fields\": {\"version\": {\"type\": \"text\"}}}", RP_EINVAL,
                        "not a valid field name");
    expect_define_error(s, "t", "{\"fields\": {\"a\\\" TEXT); DROP TABLE contact; --\": "
                                "{\"type\": \"text\"}}}", RP_EINVAL, "not a valid field name");
    expect_define_error(s, "t", "{\"fields\": {\"n\": {\"type\": \"integer\", \"default\": "
                                "\"many\"}}}", RP_EINVAL, "t.n");
    expect_define_error(s, "t", "{\"fields\": {\"r\": {\"type\": \"boolean\", \"required\": "
                                "\"yes\"}}}", RP_EINVAL, "true or false");
    /* Nothing of the refused definitions was kept; the tables are intact. */
    assert_false(rp_store_has_entity(s, "t"));
    create(s, "contact", "{\"last_name\": \"Still here\"}");
    rp_store_close(s);
}

static void test_add_field_on_populated_table(void **state)
{
    (void)state;
    rp_store_t *s = test_open_crm();
    json_t *batch = json_array();
    for (int i = 0; i < 500; i++)
        json_array_append_new(batch, json_pack("{s:s}", "last_name", i % 2 ? "Odd" : "Even"));
    rp_error_t err = {0};
    assert_int_equal(rp_store_create_many(s, &test_ctx, "contact", batch, NULL, NULL, &err), 0);
    json_decref(batch);

    json_t *spec = J("{\"type\": \"integer\", \"default\": 7, \"indexed\": true}");
    assert_int_equal(rp_store_add_field(s, &test_ctx, "contact", "tier", spec, "admin", &err), 0);
    json_decref(spec);
    assert_string_equal(field_of(s, "contact", 1, "tier"), "7");
    spec = J("{\"type\": \"text\", \"default\": \"EMEA\"}");
    assert_int_equal(rp_store_add_field(s, &test_ctx, "contact", "region", spec, "admin", &err),
                     0);
    json_decref(spec);
    assert_string_equal(field_of(s, "contact", 500, "region"), "\"EMEA\"");
    spec = J("{\"type\": \"decimal\", \"default\": \"1.5\", \"scale\": 3}");
    assert_int_equal(rp_store_add_field(s, &test_ctx, "contact", "ratio", spec, "admin", &err),
                     0);
    json_decref(spec);
    assert_string_equal(field_of(s, "contact", 3, "ratio"), "\"1.500\"");
    /* A searchable field with a default is searchable on the rows that predate it. */
    spec = J("{\"type\": \"text\", \"default\": \"Zanzibar\", \"searchable\": true}");
    assert_int_equal(rp_store_add_field(s, &test_ctx, "contact", "island", spec, "admin", &err),
                     0);
    json_decref(spec);
    json_t *hits = NULL;
    assert_int_equal(rp_store_search(s, "zanzi", "contact", 1000, &hits, &err), 0);
    assert_int_equal(json_array_size(hits), 500);
    json_decref(hits);

    /* The new field is queryable like any other. */
    json_t *w = J("{\"tier\": 7, \"last_name\": \"Odd\"}");
    int64_t n = 0;
    assert_int_equal(rp_store_count(s, "contact", w, false, &n, &err), 0);
    assert_int_equal(n, 250);
    json_decref(w);

    /* Required without a default cannot be added to a table that holds rows. */
    spec = J("{\"type\": \"text\", \"required\": true}");
    assert_int_equal(rp_store_add_field(s, &test_ctx, "contact", "must", spec, "admin", &err),
                     RP_EINVAL);
    assert_contains(err.msg, "give the field a default");
    /* Unique over rows that already share the default is refused, and nothing stays. */
    json_decref(spec);
    spec = J("{\"type\": \"text\", \"unique\": true, \"default\": \"same\"}");
    assert_int_equal(rp_store_add_field(s, &test_ctx, "contact", "code", spec, "admin", &err),
                     RP_ECONFLICT);
    json_decref(spec);
    json_t *sch = rp_store_schema(s, "contact", &err);
    assert_null(json_object_get(json_object_get(sch, "fields"), "code"));
    json_decref(sch);
    create(s, "contact", "{\"last_name\": \"After\", \"tier\": 1}");
    /* Duplicates are refused. */
    spec = J("{\"type\": \"text\"}");
    assert_int_equal(rp_store_add_field(s, &test_ctx, "contact", "tier", spec, "admin", &err),
                     RP_ECONFLICT);
    json_decref(spec);
    rp_store_close(s);
}

/* ---- values ------------------------------------------------------------------------------- */

static void test_field_types_canonical(void **state)
{
    (void)state;
    rp_store_t *s = test_open_crm();
    int64_t acc = create(s, "account", "{\"name\": \"Acme\"}");
    char buf[1024];
    snprintf(buf, sizeof buf,
             "{\"first_name\": \"José\", \"last_name\": \"Núñez\", \"email\": \" Jose@ACME.Example"
             " \", \"phone\": \"+1 (555) 010-2000 ext. 12\", \"website\": \"https://acme.example/"
             "x?y=1\", \"age\": \"42\", \"score\": 0.25, \"balance\": 19.99, \"vip\": \"yes\","
             " \"birthday\": \"2000-02-29\", \"last_seen\": \"2026-03-01T10:30:00+03:30\","
             " \"stage\": \"won\", \"account\": %lld, \"extra\": {\"tags\": [\"a\", 1]}}",
             (long long)acc);
    int64_t id = create(s, "contact", buf);
    assert_string_equal(field_of(s, "contact", id, "email"), "\"jose@acme.example\"");
    assert_string_equal(field_of(s, "contact", id, "age"), "42");
    assert_string_equal(field_of(s, "contact", id, "balance"), "\"19.99\"");
    assert_string_equal(field_of(s, "contact", id, "vip"), "true");
    assert_string_equal(field_of(s, "contact", id, "last_seen"), "\"2026-03-01T07:00:00.000Z\"");
    assert_string_equal(field_of(s, "contact", id, "extra"), "{\"tags\":[\"a\",1]}");
    assert_string_equal(field_of(s, "contact", id, "stage"), "\"won\"");
    assert_string_equal(field_of(s, "contact", id, "version"), "1");
    assert_string_equal(field_of(s, "contact", id, "created_by"), "\"user:test\"");
    assert_string_equal(field_of(s, "contact", id, "created_at"), "\"2026-01-01T00:00:00.000Z\"");

    /* A create that returns the record returns exactly what a read gives back. */
    json_t *fields = J("{\"last_name\": \"Same\", \"balance\": 2.5, \"extra\": {\"k\": [1, \"x\"]},"
                       " \"score\": 0.1, \"last_seen\": \"2026-01-02T03:04:05+01:00\"}");
    json_t *made = NULL, *read = NULL;
    rp_error_t err = {0};
    assert_int_equal(rp_store_create_record(s, &test_ctx, "contact", fields, &made, &err), 0);
    assert_int_equal(rp_store_get(s, "contact", json_integer_value(json_object_get(made, "id")),
                                  &read, &err), 0);
    assert_true(json_equal(made, read));
    json_decref(fields);
    json_decref(made);
    json_decref(read);

    /* Defaults apply when a field is absent. */
    id = create(s, "contact", "{\"last_name\": \"Default\"}");
    assert_string_equal(field_of(s, "contact", id, "stage"), "\"new\"");
    assert_string_equal(field_of(s, "contact", id, "vip"), "false");
    assert_string_equal(field_of(s, "contact", id, "first_name"), "null");

    /* Decimals are exact: strings, integers and short JSON numbers all land on the scale. */
    const char *money[][2] = {{"\"1234567890123.45\"", "\"1234567890123.45\""},
                              {"0.1", "\"0.10\""},
                              {"-3", "\"-3.00\""},
                              {"\"+.5\"", "\"0.50\""},
                              {"\"7.500\"", "\"7.50\""}};
    for (size_t i = 0; i < sizeof money / sizeof *money; i++) {
        snprintf(buf, sizeof buf, "{\"last_name\": \"M\", \"balance\": %s}", money[i][0]);
        id = create(s, "contact", buf);
        assert_string_equal(field_of(s, "contact", id, "balance"), money[i][1]);
    }
    rp_store_close(s);
}

static void test_bad_values_rejected_and_nothing_stored(void **state)
{
    (void)state;
    rp_store_t *s = test_open_crm();
    create(s, "contact", "{\"last_name\": \"Taken\", \"email\": \"taken@example.com\"}");
    int64_t before_rows = count_of(s, "contact");
    int64_t before_events = rp_events_last_seq(s);
    static const struct {
        const char *fields, *needle;
        int code;
    } cases[] = {
        {"{\"last_name\": \"X\", \"emial\": \"x@y.z\"}", "unknown field \"emial\" on contact", RP_EINVAL},
        {"{\"first_name\": \"No last name\"}", "contact.last_name is required", RP_EINVAL},
        {"{\"last_name\": null}", "contact.last_name is required", RP_EINVAL},
        {"{\"last_name\": \"X\", \"age\": \"forty\"}", "contact.age: \"forty\" is not an integer", RP_EINVAL},
        {"{\"last_name\": \"X\", \"age\": 1.5}", "contact.age", RP_EINVAL},
        {"{\"last_name\": \"X\", \"score\": \"high\"}", "contact.score", RP_EINVAL},
        {"{\"last_name\": \"X\", \"balance\": \"12.345\"}", "at most 2 decimal places", RP_EINVAL},
        {"{\"last_name\": \"X\", \"balance\": \"1e3\"}", "contact.balance", RP_EINVAL},
        {"{\"last_name\": \"X\", \"balance\": \"99999999999999999999\"}", "in range", RP_EINVAL},
        {"{\"last_name\": \"X\", \"balance\": 0.1234567890123456789}", "exact decimal", RP_EINVAL},
        {"{\"last_name\": \"X\", \"vip\": \"maybe\"}", "contact.vip", RP_EINVAL},
        {"{\"last_name\": \"X\", \"birthday\": \"2001-02-29\"}", "a date (YYYY-MM-DD)", RP_EINVAL},
        {"{\"last_name\": \"X\", \"birthday\": \"29/02/2000\"}", "contact.birthday", RP_EINVAL},
        {"{\"last_name\": \"X\", \"last_seen\": \"yesterday\"}", "contact.last_seen", RP_EINVAL},
        {"{\"last_name\": \"X\", \"last_seen\": \"2026-01-01T25:00:00Z\"}", "contact.last_seen", RP_EINVAL},
        {"{\"last_name\": \"X\", \"stage\": \"dormant\"}", "one of \"new\", \"qualified\"", RP_EINVAL},
        {"{\"last_name\": \"X\", \"email\": \"not-an-email\"}", "an email address", RP_EINVAL},
        {"{\"last_name\": \"X\", \"email\": \"a@b@c.com\"}", "an email address", RP_EINVAL},
        {"{\"last_name\": \"X\", \"email\": \"TAKEN@example.com\"}", "contact.email", RP_ECONFLICT},
        {"{\"last_name\": \"X\", \"phone\": \"call me\"}", "a phone number", RP_EINVAL},
        {"{\"last_name\": \"X\", \"phone\": \"12\"}", "a phone number", RP_EINVAL},
        {"{\"last_name\": \"X\", \"website\": \"javascript alert(1)\"}", "a URL", RP_EINVAL},
        {"{\"last_name\": \"X\", \"account\": 999}", "there is no account with id 999", RP_EINVAL},
        {"{\"last_name\": \"X\", \"account\": \"abc\"}", "a record id", RP_EINVAL},
        {"{\"last_name\": \"X\", \"id\": 5}", "kept by the store", RP_EINVAL},
        {"{\"last_name\": \"X\", \"version\": 5}", "kept by the store", RP_EINVAL},
        {"{\"last_name\": \"X\", \"x\\\" = 1; DROP TABLE contact; --\": 1}", "unknown field", RP_EINVAL},
        {"{\"last_name\": [\"not\", \"text\"]}", "contact.last_name", RP_EINVAL},
        {"{\"last_name\": \"nul\\u0000inside\"}", "without NUL", RP_EINVAL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        rp_error_t err = {0};
        int rc = try_create(s, "contact", cases[i].fields, &err);
        if (rc != cases[i].code)
            fail_msg("case %zu %s: expected %d, got %d (%s)", i, cases[i].fields, cases[i].code,
                     rc, err.msg);
        if (!strstr(err.msg, cases[i].needle))
            fail_msg("case %zu: expected \"%s\" in \"%s\"", i, cases[i].needle, err.msg);
        assert_true(strncmp(err.msg, "RP-E", 4) == 0);
    }
    rp_error_t err = {0};
    assert_int_equal(try_create(s, "ghost", "{}", &err), RP_ENOTFOUND);
    assert_contains(err.msg, "unknown entity \"ghost\"");
    assert_int_equal(try_create(s, "contact", "[1, 2]", &err), RP_EINVAL);
    /* Nothing of any refused write was stored: no row, no event. */
    assert_int_equal(count_of(s, "contact"), before_rows);
    assert_int_equal(rp_events_last_seq(s), before_events);
    rp_store_close(s);
}

static void test_sql_looking_text_is_data(void **state)
{
    (void)state;
    rp_store_t *s = test_open_crm();
    const char *evil = "{\"last_name\": \"Robert'); DROP TABLE contact; --\","
                       " \"first_name\": \"\\\" OR 1=1 --\"}";
    int64_t id = create(s, "contact", evil);
    assert_string_equal(field_of(s, "contact", id, "last_name"),
                        "\"Robert'); DROP TABLE contact; --\"");
    json_t *w = J("{\"first_name\": \"\\\" OR 1=1 --\"}");
    int64_t n = 0;
    rp_error_t err = {0};
    assert_int_equal(rp_store_count(s, "contact", w, false, &n, &err), 0);
    assert_int_equal(n, 1);
    json_decref(w);
    create(s, "contact", "{\"last_name\": \"Other\"}");
    assert_int_equal(count_of(s, "contact"), 2);
    rp_store_close(s);
}

/* ---- life cycle --------------------------------------------------------------------------- */

static void test_update_versions_and_conflicts(void **state)
{
    (void)state;
    rp_store_t *s = test_open_crm();
    int64_t id = create(s, "contact", "{\"last_name\": \"Lovelace\", \"age\": 36}");
    rp_error_t err = {0};
    int64_t v = 0;
    test_clock_ms += 60000;
    json_t *p = J("{\"age\": 37, \"first_name\": \"Ada\"}");
    assert_int_equal(rp_store_update(s, &test_ctx, "contact", id, p, 1, &v, &err), 0);
    json_decref(p);
    assert_int_equal(v, 2);
    assert_string_equal(field_of(s, "contact", id, "age"), "37");
    assert_string_equal(field_of(s, "contact", id, "last_name"), "\"Lovelace\"");
    assert_string_equal(field_of(s, "contact", id, "updated_at"), "\"2026-01-01T00:01:00.000Z\"");

    /* A stale version is a conflict and changes nothing. */
    int64_t seq = rp_events_last_seq(s);
    p = J("{\"age\": 99}");
    assert_int_equal(rp_store_update(s, &test_ctx, "contact", id, p, 1, NULL, &err), RP_ECONFLICT);
    assert_contains(err.msg, "version 1 was read but the record is now at version 2");
    json_decref(p);
    assert_string_equal(field_of(s, "contact", id, "age"), "37");
    assert_int_equal(rp_events_last_seq(s), seq);

    /* An update that changes nothing writes nothing. */
    p = J("{\"age\": 37}");
    assert_int_equal(rp_store_update(s, &test_ctx, "contact", id, p, 0, &v, &err), 0);
    json_decref(p);
    assert_int_equal(v, 2);
    assert_int_equal(rp_events_last_seq(s), seq);

    /* The update event carries old and new values. */
    rp_event_t ev;
    assert_int_equal(rp_events_for_record(s, "contact", id, 0, &ev, 1, &err), 1);
    rp_event_clear(&ev);
    assert_int_equal(rp_events_list(s, seq - 1, false, &ev, 1, &err), 1);
    assert_string_equal(ev.type, "contact.updated");
    json_t *ch = json_loads(ev.changes, 0, NULL);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(ch, "age"), 0)), 36);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(ch, "age"), 1)), 37);
    json_decref(ch);
    rp_event_clear(&ev);

    /* Clearing a required field, unknown fields, missing records. */
    p = J("{\"last_name\": null}");
    assert_int_equal(rp_store_update(s, &test_ctx, "contact", id, p, 0, NULL, &err), RP_EINVAL);
    assert_contains(err.msg, "required");
    json_decref(p);
    p = J("{\"nope\": 1}");
    assert_int_equal(rp_store_update(s, &test_ctx, "contact", id, p, 0, NULL, &err), RP_EINVAL);
    json_decref(p);
    p = J("{\"age\": 1}");
    assert_int_equal(rp_store_update(s, &test_ctx, "contact", 4242, p, 0, NULL, &err),
                     RP_ENOTFOUND);
    assert_contains(err.msg, "no contact with id 4242");
    json_decref(p);
    rp_store_close(s);
}

static void test_delete_restore_purge(void **state)
{
    (void)state;
    rp_store_t *s = test_open_crm();
    int64_t acc = create(s, "account", "{\"name\": \"Globex\"}");
    char buf[128];
    snprintf(buf, sizeof buf, "{\"last_name\": \"Simpson\", \"account\": %lld}", (long long)acc);
    int64_t c = create(s, "contact", buf);
    rp_error_t err = {0};
    json_t *hits = NULL;

    assert_int_equal(rp_store_delete(s, &test_ctx, "account", acc, &err), 0);
    assert_string_not_equal(field_of(s, "account", acc, "deleted_at"), "null");
    assert_int_equal(rp_store_delete(s, &test_ctx, "account", acc, &err), RP_ESTATE);
    /* A deleted record is out of finds, counts and search, and cannot be referenced. */
    int64_t n = -1;
    assert_int_equal(rp_store_count(s, "account", NULL, false, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(rp_store_search(s, "globex", NULL, 10, &hits, &err), 0);
    assert_int_equal(json_array_size(hits), 0);
    json_decref(hits);
    assert_int_equal(try_create(s, "contact", buf, &err), RP_EINVAL);
    assert_contains(err.msg, "account 1 is deleted");
    json_t *p = J("{\"name\": \"x\"}");
    assert_int_equal(rp_store_update(s, &test_ctx, "account", acc, p, 0, NULL, &err), RP_ESTATE);
    json_decref(p);

    assert_int_equal(rp_store_restore(s, &test_ctx, "account", acc, &err), 0);
    assert_string_equal(field_of(s, "account", acc, "deleted_at"), "null");
    assert_int_equal(rp_store_search(s, "globex", NULL, 10, &hits, &err), 0);
    assert_int_equal(json_array_size(hits), 1);
    json_decref(hits);
    assert_int_equal(rp_store_restore(s, &test_ctx, "account", acc, &err), RP_ESTATE);

    /* Purge is refused while a contact points at the account. */
    assert_int_equal(rp_store_purge(s, &test_ctx, "account", acc, &err), RP_ECONFLICT);
    assert_contains(err.msg, "contact 1 refers to it through account");
    assert_int_equal(rp_store_purge(s, &test_ctx, "contact", c, &err), 0);
    assert_int_equal(rp_store_purge(s, &test_ctx, "account", acc, &err), 0);
    json_t *r = NULL;
    assert_int_equal(rp_store_get(s, "account", acc, &r, &err), RP_ENOTFOUND);
    /* The purged event keeps the last values. */
    rp_event_t ev[8];
    int k = rp_events_for_record(s, "account", acc, 0, ev, 8, &err);
    assert_true(k >= 4);
    assert_string_equal(ev[k - 1].type, "account.purged");
    assert_contains(ev[k - 1].changes, "\"name\":[\"Globex\",null]");
    for (int i = 0; i < k; i++)
        rp_event_clear(&ev[i]);
    /* Ids are never reused after a purge. */
    int64_t again = create(s, "account", "{\"name\": \"Initech\"}");
    assert_true(again > acc);
    rp_store_close(s);
}

/* ---- transactions and bulk --------------------------------------------------------------- */

static void test_nested_transactions(void **state)
{
    (void)state;
    rp_store_t *s = test_open_crm();
    rp_error_t err = {0};
    assert_int_equal(rp_store_begin(s, &err), 0);
    int64_t a = create(s, "contact", "{\"last_name\": \"Outer\"}");
    assert_int_equal(rp_store_begin(s, &err), 0);
    assert_int_equal(rp_store_txn_depth(s), 2);
    create(s, "contact", "{\"last_name\": \"Inner\"}");
    int64_t inner_seq = rp_events_last_seq(s);
    assert_int_equal(rp_store_rollback(s, &err), 0);
    /* A failed write inside the transaction undoes only itself. */
    assert_int_equal(try_create(s, "contact", "{\"first_name\": \"no last\"}", &err), RP_EINVAL);
    assert_int_equal(rp_store_commit(s, &err), 0);
    assert_int_equal(rp_store_txn_depth(s), 0);
    assert_int_equal(count_of(s, "contact"), 1);
    assert_string_equal(field_of(s, "contact", a, "last_name"), "\"Outer\"");
    assert_true(rp_events_last_seq(s) < inner_seq);
    json_t *hits = NULL;
    assert_int_equal(rp_store_search(s, "inner", NULL, 10, &hits, &err), 0);
    assert_int_equal(json_array_size(hits), 0);
    json_decref(hits);

    /* An outer rollback takes back everything, including a schema change. */
    assert_int_equal(rp_store_begin(s, &err), 0);
    create(s, "contact", "{\"last_name\": \"Gone\"}");
    define(s, "temp", "{\"fields\": {\"x\": {\"type\": \"text\"}}}");
    assert_int_equal(rp_store_rollback(s, &err), 0);
    assert_false(rp_store_has_entity(s, "temp"));
    assert_int_equal(count_of(s, "contact"), 1);
    assert_int_equal(rp_store_commit(s, &err), RP_ESTATE);
    assert_int_equal(rp_store_rollback(s, &err), RP_ESTATE);
    rp_store_close(s);
}

static void test_bulk_all_or_nothing(void **state)
{
    (void)state;
    rp_store_t *s = test_open_crm();
    rp_error_t err = {0};
    json_t *batch = json_array();
    for (int i = 0; i < 1000; i++) {
        char email[64];
        snprintf(email, sizeof email, "p%d@example.com", i);
        json_array_append_new(batch, json_pack("{s:s,s:s,s:i}", "last_name", "Bulk", "email",
                                               email, "age", i));
    }
    int64_t *ids = calloc(1000, sizeof *ids);
    assert_int_equal(rp_store_create_many(s, &test_ctx, "contact", batch, ids, NULL, &err), 0);
    assert_int_equal(ids[999], 1000);
    assert_int_equal(count_of(s, "contact"), 1000);

    /* One bad record in the middle: nothing of the batch is stored, and it is named. */
    json_t *bad = json_array();
    for (int i = 0; i < 20; i++)
        json_array_append_new(bad, json_pack("{s:s,s:i}", "last_name", "Again", "age", i));
    json_object_set_new(json_array_get(bad, 7), "stage", json_string("bogus"));
    size_t failed = 0;
    int64_t seq = rp_events_last_seq(s);
    assert_int_equal(rp_store_create_many(s, &test_ctx, "contact", bad, NULL, &failed, &err),
                     RP_EINVAL);
    assert_int_equal(failed, 7);
    assert_contains(err.msg, "record 7: ");
    assert_contains(err.msg, "bogus");
    assert_int_equal(count_of(s, "contact"), 1000);
    assert_int_equal(rp_events_last_seq(s), seq);
    json_decref(bad);

    /* A duplicate unique value inside one batch is caught too (emails compare without case). */
    bad = J("[{\"last_name\": \"A\", \"email\": \"dup@x.org\"},"
            " {\"last_name\": \"B\", \"email\": \"dup@X.ORG\"}]");
    assert_int_equal(rp_store_create_many(s, &test_ctx, "contact", bad, NULL, &failed, &err),
                     RP_ECONFLICT);
    assert_int_equal(failed, 1);
    assert_contains(err.msg, "\"dup@x.org\" is already used");
    json_decref(bad);

    /* Bulk update: all or nothing, with versions checked. */
    json_t *ups = J("[{\"id\": 1, \"age\": 500}, {\"id\": 2, \"version\": 1, \"age\": 501}]");
    assert_int_equal(rp_store_update_many(s, &test_ctx, "contact", ups, &failed, &err), 0);
    json_decref(ups);
    assert_string_equal(field_of(s, "contact", 2, "age"), "501");
    ups = J("[{\"id\": 3, \"age\": 600}, {\"id\": 2, \"version\": 1, \"age\": 601}]");
    assert_int_equal(rp_store_update_many(s, &test_ctx, "contact", ups, &failed, &err),
                     RP_ECONFLICT);
    assert_int_equal(failed, 1);
    assert_string_equal(field_of(s, "contact", 3, "age"), "2");
    json_decref(ups);
    ups = J("[{\"age\": 1}]");
    assert_int_equal(rp_store_update_many(s, &test_ctx, "contact", ups, &failed, &err), RP_EINVAL);
    assert_contains(err.msg, "integer \"id\"");
    json_decref(ups);
    free(ids);
    json_decref(batch);
    rp_store_close(s);
}

/* ---- before-hooks ------------------------------------------------------------------------- */

static int lower_email(rp_store_t *s, rp_change_t *ch, void *ud, rp_error_t *err)
{
    (void)s;
    (void)err;
    ++*(int *)ud;
    json_t *e = json_object_get(ch->fields, "email");
    if (json_is_string(e)) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", json_string_value(e));
        for (char *p = buf; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        json_object_set_new(ch->fields, "email", json_string(buf));
    }
    return 0;
}

static int no_spam(rp_store_t *s, rp_change_t *ch, void *ud, rp_error_t *err)
{
    (void)s;
    (void)ud;
    const char *e = json_string_value(json_object_get(ch->fields, "email"));
    if (e && strstr(e, "spam"))
        return rp_error_set(err, RP_EVETO, 0, "contact.email: %s is on the spam list", e);
    return 0;
}

static int order_log[8], order_n;
static int hook_first(rp_store_t *s, rp_change_t *ch, void *ud, rp_error_t *err)
{
    order_log[order_n++] = 1;
    return 0;
}
static int hook_second(rp_store_t *s, rp_change_t *ch, void *ud, rp_error_t *err)
{
    order_log[order_n++] = 2;
    return 0;
}

static int batch_calls, batch_size_seen;
static int count_batch(rp_store_t *s, const char *entity, rp_action_t action, json_t *batch,
                       const int64_t *ids, const rp_ctx_t *ctx, void *ud, size_t *failed,
                       rp_error_t *err)
{
    batch_calls++;
    batch_size_seen = (int)json_array_size(batch);
    /* A batch hook may set a field on every record at once. */
    size_t i;
    json_t *r;
    json_array_foreach(batch, i, r) json_object_set_new(r, "first_name", json_string("Batch"));
    return 0;
}

static int no_delete(rp_store_t *s, rp_change_t *ch, void *ud, rp_error_t *err)
{
    if (json_is_true(json_object_get(ch->old, "vip")))
        return rp_error_set(err, RP_EVETO, 0, "contact %lld is a VIP and cannot be deleted",
                            (long long)ch->id);
    return 0;
}

static void test_hooks_normalise_and_veto(void **state)
{
    (void)state;
    rp_store_t *s = test_open_crm();
    rp_error_t err = {0};
    int calls = 0;
    assert_true(rp_hook_add(s, "contact", RP_ACT_CREATE, 10, lower_email, &calls, "rules",
                            &err) > 0);
    assert_true(rp_hook_add(s, "contact", RP_ACT_CREATE, 20, no_spam, NULL, "rules", &err) > 0);
    assert_true(rp_hook_add(s, "contact", RP_ACT_DELETE, 0, no_delete, NULL, "rules", &err) > 0);
    assert_true(rp_hook_add(s, "Ghost!", RP_ACT_CREATE, 0, no_spam, NULL, "rules", &err) < 0);
    /* An entity defined later is guarded from then on. */
    assert_true(rp_hook_add(s, "later", RP_ACT_CREATE, 0, no_spam, NULL, "rules", &err) > 0);

    int64_t id = create(s, "contact", "{\"last_name\": \"Case\", \"email\": \"MiXeD@Example.COM\"}");
    assert_string_equal(field_of(s, "contact", id, "email"), "\"mixed@example.com\"");
    assert_int_equal(calls, 1);

    int64_t seq = rp_events_last_seq(s);
    assert_int_equal(try_create(s, "contact", "{\"last_name\": \"S\", \"email\": \"SPAM@x.com\"}",
                                &err), RP_EVETO);
    assert_contains(err.msg, "spam@x.com is on the spam list");
    assert_int_equal(count_of(s, "contact"), 1);
    assert_int_equal(rp_events_last_seq(s), seq);

    /* Hooks run by priority, whatever the order they were added in. */
    assert_true(rp_hook_add(s, "*", RP_ACT_UPDATE, 5, hook_second, NULL, "order", &err) > 0);
    assert_true(rp_hook_add(s, "*", RP_ACT_UPDATE, 1, hook_first, NULL, "order", &err) > 0);
    json_t *p = J("{\"age\": 3}");
    assert_int_equal(rp_store_update(s, &test_ctx, "contact", id, p, 0, NULL, &err), 0);
    json_decref(p);
    assert_int_equal(order_n, 2);
    assert_int_equal(order_log[0], 1);
    assert_int_equal(order_log[1], 2);
    assert_int_equal(rp_hooks_remove_owner(s, "order"), 2);

    /* A batch hook sees a bulk create once, whole. */
    assert_true(rp_hook_add_batch(s, "contact", RP_ACT_CREATE, 0, count_batch, NULL, "bulk",
                                  &err) > 0);
    json_t *batch = json_array();
    for (int i = 0; i < 100; i++)
        json_array_append_new(batch, json_pack("{s:s}", "last_name", "Many"));
    assert_int_equal(rp_store_create_many(s, &test_ctx, "contact", batch, NULL, NULL, &err), 0);
    json_decref(batch);
    assert_int_equal(batch_calls, 1);
    assert_int_equal(batch_size_seen, 100);
    assert_int_equal(calls, 102); /* once per record, the vetoed one included */
    assert_string_equal(field_of(s, "contact", 50, "first_name"), "\"Batch\"");
    assert_int_equal(rp_hooks_remove_owner(s, "bulk"), 1);

    /* Delete hooks see the old record and may veto. */
    p = J("{\"vip\": true}");
    assert_int_equal(rp_store_update(s, &test_ctx, "contact", id, p, 0, NULL, &err), 0);
    json_decref(p);
    assert_int_equal(rp_store_delete(s, &test_ctx, "contact", id, &err), RP_EVETO);
    assert_contains(err.msg, "is a VIP");
    assert_string_equal(field_of(s, "contact", id, "deleted_at"), "null");
    assert_int_equal(rp_hooks_remove_owner(s, "rules"), 4);
    assert_int_equal(rp_store_delete(s, &test_ctx, "contact", id, &err), 0);
    rp_store_close(s);
}

/* A hook that makes a schema change fail inside the write that runs it: the rollback of that
 * change must not free the entity the write is using (it did, under ASan). */
static int failing_schema_change(rp_store_t *s, rp_change_t *ch, void *ud, rp_error_t *err)
{
    json_t *spec = J("{\"type\": \"text\", \"required\": true}");
    rp_error_t inner = {0};
    rp_store_add_field(s, &test_ctx, "contact", "must_have", spec, "admin", &inner);
    json_decref(spec);
    return 0;
}

/* A hook whose own savepoint adds a field and is then rolled back: the registry is read back at
 * once, and the write that ran the hook keeps the entity it holds until the transaction ends. */
static int undone_schema_change(rp_store_t *s, rp_change_t *ch, void *ud, rp_error_t *err)
{
    (void)ch;
    (void)ud;
    (void)err;
    rp_error_t inner = {0};
    assert_int_equal(rp_store_begin(s, &inner), 0);
    json_t *spec = J("{\"type\": \"text\"}");
    assert_int_equal(rp_store_add_field(s, &test_ctx, "contact", "nickname", spec, "admin",
                                        &inner), 0);
    json_decref(spec);
    assert_true(rp_store_has_field(s, "contact", "nickname"));
    assert_int_equal(rp_store_rollback(s, &inner), 0);
    assert_false(rp_store_has_field(s, "contact", "nickname"));
    return 0;
}

static void test_failed_schema_change_inside_a_write(void **state)
{
    (void)state;
    rp_store_t *s = test_open_crm();
    create(s, "contact", "{\"last_name\": \"First\"}");
    rp_error_t err = {0};
    assert_true(rp_hook_add(s, "contact", RP_ACT_CREATE, 0, failing_schema_change, NULL, "t",
                            &err) > 0);
    int64_t id = create(s, "contact", "{\"last_name\": \"Second\"}");
    assert_string_equal(field_of(s, "contact", id, "last_name"), "\"Second\"");
    json_t *sch = rp_store_schema(s, "contact", &err);
    assert_null(json_object_get(json_object_get(sch, "fields"), "must_have"));
    json_decref(sch);
    assert_true(rp_hook_add(s, "contact", RP_ACT_CREATE, 0, undone_schema_change, NULL, "t2",
                            &err) > 0);
    assert_int_equal(rp_store_begin(s, &err), 0);
    id = create(s, "contact", "{\"last_name\": \"Third\"}");
    assert_string_equal(field_of(s, "contact", id, "last_name"), "\"Third\"");
    assert_int_equal(rp_store_commit(s, &err), 0);
    assert_false(rp_store_has_field(s, "contact", "nickname"));
    assert_string_equal(field_of(s, "contact", id, "last_name"), "\"Third\"");
    /* The same record twice in one bulk update is refused up front, clearly. */
    json_t *ups = J("[{\"id\": 1, \"age\": 1}, {\"id\": 1, \"age\": 2}]");
    size_t failed = 0;
    assert_int_equal(rp_store_update_many(s, &test_ctx, "contact", ups, &failed, &err), RP_EINVAL);
    assert_int_equal(failed, 1);
    assert_contains(err.msg, "is already updated by record 0");
    json_decref(ups);
    rp_store_close(s);
}

/* When SQLite rolls a transaction back by itself (here: the database is full), nothing may
 * run in autocommit mode behind the caller's back: later writes fail until it has unwound. */
static void test_database_abort_unwinds(void **state)
{
    (void)state;
    char dir[64], path[256];
    test_tmpdb(dir, path, "full.db");
    rp_store_t *s = NULL;
    rp_error_t err = {0};
    assert_int_equal(rp_store_open(path, NULL, &s, &err), 0);
    define(s, "note", "{\"fields\": {\"body\": {\"type\": \"text\"}}}");
    assert_int_equal(rp_db_exec(rp_store_db(s), "PRAGMA max_page_count = 60", NULL), 0);
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(rp_store_begin(s, &err), 0);
    int rc = 0;
    for (int i = 0; i < 500 && !rc; i++) {
        json_t *f = json_pack("{s:s}", "body", big);
        rc = rp_store_create(s, &test_ctx, "note", f, NULL, &err);
        json_decref(f);
    }
    assert_int_equal(rc, RP_EIO);
    assert_contains(err.msg, "full");
    json_t *f = json_pack("{s:s}", "body", "after the failure");
    assert_int_equal(rp_store_create(s, &test_ctx, "note", f, NULL, &err), RP_EIO);
    json_decref(f);
    assert_int_equal(rp_store_commit(s, &err), RP_EIO);
    assert_int_equal(rp_store_txn_depth(s), 0);
    /* Nothing of the transaction is there, not even the write that came after. */
    int64_t n = -1;
    assert_int_equal(rp_store_count(s, "note", NULL, true, &n, &err), 0);
    assert_int_equal(n, 0);
    rp_store_close(s);
    test_rmdir(dir);
}

static void test_config(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    rp_error_t err = {0};
    json_t *v = NULL;
    assert_int_equal(rp_config_get(s, "timezone", &v, &err), RP_ENOTFOUND);
    json_t *tz = json_string("Europe/Berlin");
    assert_int_equal(rp_config_set(s, &test_ctx, "timezone", tz, &err), 0);
    json_decref(tz);
    assert_int_equal(rp_config_get(s, "timezone", &v, &err), 0);
    assert_string_equal(json_string_value(v), "Europe/Berlin");
    json_decref(v);
    json_t *n = json_integer(5);
    assert_int_equal(rp_config_set(s, &test_ctx, "sla.retries", n, &err), 0);
    json_decref(n);
    json_t *all = NULL;
    assert_int_equal(rp_config_list(s, &all, &err), 0);
    assert_int_equal(json_object_size(all), 2);
    assert_int_equal(json_integer_value(json_object_get(all, "sla.retries")), 5);
    json_decref(all);
    /* Every change is an event: who changed the configuration, from what to what. */
    rp_event_t ev;
    assert_int_equal(rp_events_list(s, 0, true, &ev, 1, &err), 1);
    assert_string_equal(ev.type, "config.changed");
    assert_string_equal(ev.changes, "{\"sla.retries\":[null,5]}");
    rp_event_clear(&ev);
    assert_int_equal(rp_config_set(s, &test_ctx, "timezone", NULL, &err), 0);
    assert_int_equal(rp_config_get(s, "timezone", &v, &err), RP_ENOTFOUND);
    int64_t seq = rp_events_last_seq(s);
    assert_int_equal(rp_config_set(s, &test_ctx, "timezone", NULL, &err), RP_ENOTFOUND);
    assert_int_equal(rp_events_last_seq(s), seq); /* nothing changed, nothing said */
    assert_int_equal(rp_config_set(s, &test_ctx, "Bad Key", NULL, &err), RP_EINVAL);
    assert_contains(err.msg, "not a valid setting name");
    assert_int_equal(rp_config_get(s, "x'; DROP TABLE rp_settings; --", &v, &err), RP_EINVAL);
    rp_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_file_and_newer_schema_refused),
        cmocka_unit_test(test_define_and_schema),
        cmocka_unit_test(test_define_bad_input),
        cmocka_unit_test(test_add_field_on_populated_table),
        cmocka_unit_test(test_field_types_canonical),
        cmocka_unit_test(test_bad_values_rejected_and_nothing_stored),
        cmocka_unit_test(test_sql_looking_text_is_data),
        cmocka_unit_test(test_update_versions_and_conflicts),
        cmocka_unit_test(test_delete_restore_purge),
        cmocka_unit_test(test_nested_transactions),
        cmocka_unit_test(test_bulk_all_or_nothing),
        cmocka_unit_test(test_hooks_normalise_and_veto),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_database_abort_unwinds),
        cmocka_unit_test(test_failed_schema_change_inside_a_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
