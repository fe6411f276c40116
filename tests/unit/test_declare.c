/*
 * test_declare.c — declared entities (rp_store_declare: create, add, safe changes, refusals
 * with nothing stored, other owners' fields), the changes a migration makes (rename, retype,
 * drop a field, drop an entity) and the ledger of migrations.
 */
#include "helpers.h"

static const char *const PET =
    "{\"label\": \"Pet\", \"fields\": {\"name\": {\"type\": \"text\", \"searchable\": true},"
    " \"age\": {\"type\": \"text\"},"
    " \"kind\": {\"type\": \"enum\", \"values\": [\"cat\", \"dog\"]},"
    " \"chip\": {\"type\": \"text\"}}}";

static int declare(rp_store_t *s, const char *spec, const char *owner, json_t **done,
                   rp_error_t *err)
{
    json_t *j = J(spec);
    int rc = rp_store_declare(s, &test_ctx, "pet", j, owner, done, err);
    json_decref(j);
    return rc;
}

static void add_pet(rp_store_t *s, const char *fields)
{
    json_t *j = J(fields);
    rp_error_t err = {0};
    if (rp_store_create(s, &test_ctx, "pet", j, NULL, &err))
        fail_msg("create %s: %s", fields, err.msg);
    json_decref(j);
}

static json_t *field_spec(rp_store_t *s, const char *field)
{
    json_t *sch = rp_store_schema(s, "pet", NULL);
    json_t *f = json_incref(json_object_get(json_object_get(sch, "fields"), field));
    json_decref(sch);
    return f;
}

static int64_t searched(rp_store_t *s, const char *text)
{
    json_t *hits = NULL;
    rp_error_t err = {0};
    assert_int_equal(rp_store_search(s, text, "pet", 10, &hits, &err), 0);
    int64_t id = json_array_size(hits) ? json_integer_value(json_object_get(
                                             json_array_get(hits, 0), "id"))
                                       : 0;
    json_decref(hits);
    return id;
}

/* A new spec with @p from replaced by @p to in PET. */
static char *pet_with(const char *from, const char *to)
{
    static char buf[1024];
    const char *at = strstr(PET, from);
    assert_non_null(at);
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - PET), PET, to, at + strlen(from));
    return buf;
}

static void test_declare_creates_then_writes_nothing(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    rp_error_t err = {0};
    json_t *done = NULL;
    assert_int_equal(declare(s, PET, "script:pets.lua", &done, &err), 0);
    assert_string_equal(json_string_value(json_array_get(done, 0)), "created pet");
    json_decref(done);
    add_pet(s, "{\"name\": \"Rex\", \"age\": \"3\", \"kind\": \"dog\"}");
    int64_t seq = rp_events_last_seq(s);
    uint64_t gen = rp_store_schema_generation(s);
    assert_int_equal(declare(s, PET, "script:pets.lua", &done, &err), 0);
    assert_int_equal(json_array_size(done), 0);
    json_decref(done);
    assert_int_equal(rp_events_last_seq(s), seq);
    assert_true(rp_store_schema_generation(s) == gen);

    /* A field the spec gained is added, with its one event. */
    assert_int_equal(declare(s, pet_with("\"chip\"", "\"color\": {\"type\": \"text\"}, \"chip\""),
                             "script:pets.lua", &done, &err), 0);
    assert_int_equal(json_array_size(done), 1);
    assert_string_equal(json_string_value(json_array_get(done, 0)), "added pet.color");
    json_decref(done);
    assert_int_equal(rp_events_last_seq(s), seq + 1);
    assert_true(rp_store_has_field(s, "pet", "color"));
    rp_store_close(s);
}

static void test_declare_safe_changes(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    rp_error_t err = {0};
    json_t *done = NULL;
    assert_int_equal(declare(s, PET, "me", NULL, &err), 0);
    add_pet(s, "{\"name\": \"Rex\", \"age\": \"3\", \"kind\": \"dog\", \"chip\": \"c1\"}");
    add_pet(s, "{\"name\": \"Tom\", \"age\": \"5\", \"kind\": \"cat\", \"chip\": \"c2\"}");
    assert_int_equal(searched(s, "c1"), 0);
    /* unique over distinct values, searchable, an enum gaining a value, a new label */
    const char *spec =
        "{\"label\": \"Pets\", \"fields\": {\"name\": {\"type\": \"text\", \"searchable\": true},"
        " \"age\": {\"type\": \"text\", \"indexed\": true},"
        " \"kind\": {\"type\": \"enum\", \"values\": [\"cat\", \"dog\", \"eel\"]},"
        " \"chip\": {\"type\": \"text\", \"unique\": true, \"searchable\": true}}}";
    int64_t seq = rp_events_last_seq(s);
    assert_int_equal(declare(s, spec, "me", &done, &err), 0);
    assert_int_equal(json_array_size(done), 4); /* age, kind, chip, the label */
    json_decref(done);
    assert_int_equal(rp_events_last_seq(s), seq + 4);
    assert_int_equal(searched(s, "c1"), 1);
    json_t *rec = J("{\"name\": \"Max\", \"chip\": \"c2\"}");
    assert_int_equal(rp_store_create(s, &test_ctx, "pet", rec, NULL, &err), RP_ECONFLICT);
    json_decref(rec);
    add_pet(s, "{\"name\": \"Eli\", \"kind\": \"eel\"}");
    /* and back: the enum loses a value no record holds, chip stops being unique */
    assert_int_equal(declare(s, PET, "me", &done, &err), RP_EINVAL); /* eel is held */
    assert_non_null(strstr(err.msg, "no longer lists \"eel\""));
    json_decref(done);
    rp_store_close(s);
}

static void test_declare_refusals_store_nothing(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    rp_error_t err = {0};
    assert_int_equal(declare(s, PET, "me", NULL, &err), 0);
    add_pet(s, "{\"name\": \"Rex\", \"age\": \"3\", \"kind\": \"dog\", \"chip\": \"c1\"}");
    add_pet(s, "{\"name\": \"Rex\", \"age\": \"x\", \"kind\": \"dog\", \"chip\": \"c1\"}");
    add_pet(s, "{\"age\": \"4\", \"kind\": \"cat\"}");
    int64_t seq = rp_events_last_seq(s);

    assert_int_equal(declare(s, pet_with("\"age\": {\"type\": \"text\"}",
                                         "\"age\": {\"type\": \"integer\"}"), "me", NULL, &err),
                     RP_EINVAL);
    assert_string_equal(err.field, "age");
    assert_non_null(strstr(err.msg, "RP-E1105: cannot declare pet: field \"age\" is text in the "
                                    "store but declared integer (3 records hold a value)"));
    assert_non_null(strstr(err.msg, "crm.schema.migration(\"pet-age-integer\", function() "
                                    "crm.schema.change_type(\"pet\", \"age\", {type=\"integer\"}, "
                                    "function(v) return tonumber(v) end) end)"));
    assert_int_equal(declare(s, pet_with("\"name\": {\"type\": \"text\",",
                                         "\"name\": {\"type\": \"text\", \"required\": true,"),
                             "me", NULL, &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "field \"name\" is declared required but 1 live records "
                                    "hold no value"));
    assert_int_equal(declare(s, pet_with("\"chip\": {\"type\": \"text\"}",
                                         "\"chip\": {\"type\": \"text\", \"unique\": true}"),
                             "me", NULL, &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "field \"chip\" is declared unique but 2 records"));
    assert_int_equal(declare(s, pet_with("[\"cat\", \"dog\"]", "[\"dog\"]"), "me", NULL, &err),
                     RP_EINVAL);
    assert_non_null(strstr(err.msg, "no longer lists \"cat\" (among others, perhaps), which 1 "
                                    "live records hold"));
    assert_int_equal(declare(s, pet_with(", \"chip\": {\"type\": \"text\"}", ""), "me", NULL,
                             &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "field \"chip\" holds values in 2 records"));
    assert_non_null(strstr(err.msg, "crm.schema.drop_field(\"pet\", \"chip\")"));
    /* Two at once: counted before the first one's migration. A good addition beside them is
     * not applied either. */
    assert_int_equal(declare(s,
                             "{\"fields\": {\"name\": {\"type\": \"integer\"}, \"age\": {\"type\":"
                             " \"real\"}, \"kind\": {\"type\": \"enum\", \"values\": [\"cat\","
                             " \"dog\"]}, \"chip\": {\"type\": \"text\"}, \"new\": {\"type\":"
                             " \"text\"}}}",
                             "me", NULL, &err), RP_EINVAL);
    assert_non_null(
        strstr(err.msg, "cannot declare pet (2 fields refused; besides \"name\": age)"));
    assert_false(rp_store_has_field(s, "pet", "new"));
    assert_int_equal(rp_events_last_seq(s), seq);
    json_t *age = field_spec(s, "age");
    assert_string_equal(json_string_value(json_object_get(age, "type")), "text");
    json_decref(age);
    rp_store_close(s);
}

static void test_declare_leaves_other_owners_fields(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    rp_error_t err = {0};
    json_t *done = NULL;
    assert_int_equal(declare(s, PET, "me", NULL, &err), 0);
    json_t *f = J("{\"type\": \"integer\"}");
    assert_int_equal(rp_store_add_field(s, &test_ctx, "pet", "points", f, "plugin:loyalty", &err),
                     0);
    json_decref(f);
    add_pet(s, "{\"name\": \"Rex\", \"points\": 4}");
    int64_t seq = rp_events_last_seq(s);
    /* not named: left alone; named with other flags: the owner's flags stay */
    assert_int_equal(declare(s, PET, "me", &done, &err), 0);
    assert_int_equal(json_array_size(done), 0);
    json_decref(done);
    assert_int_equal(declare(s, pet_with("\"chip\"", "\"points\": {\"type\": \"integer\", "
                                                      "\"indexed\": true}, \"chip\""),
                             "me", &done, &err), 0);
    assert_int_equal(json_array_size(done), 0);
    json_decref(done);
    assert_int_equal(rp_events_last_seq(s), seq);
    /* named with another type: refused, naming the owner */
    assert_int_equal(declare(s, pet_with("\"chip\"", "\"points\": {\"type\": \"text\"}, \"chip\""),
                             "me", NULL, &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "field \"points\", owned by plugin:loyalty, is integer"));
    /* an empty field of the declarer's that the spec no longer names is dropped */
    assert_int_equal(declare(s, pet_with(", \"chip\": {\"type\": \"text\"}", ""), "me", &done,
                             &err), 0);
    assert_string_equal(json_string_value(json_array_get(done, 0)),
                        "dropped pet.chip (it held no value)");
    json_decref(done);
    assert_false(rp_store_has_field(s, "pet", "chip"));
    assert_true(rp_store_has_field(s, "pet", "points"));
    rp_store_close(s);
}

/* ---- the changes a migration makes ------------------------------------------------------- */

static int to_integer(void *ud, int64_t id, json_t *v, json_t **out, rp_error_t *err)
{
    (void)ud;
    if (json_is_null(v)) {
        *out = json_null();
        return 0;
    }
    char *end;
    long long n = strtoll(json_string_value(v), &end, 10);
    if (*end)
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE, "not a number (record %lld)",
                            (long long)id);
    *out = json_integer(n);
    return 0;
}

static void test_change_type(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    rp_error_t err = {0};
    assert_int_equal(declare(s, PET, "me", NULL, &err), 0);
    add_pet(s, "{\"name\": \"Rex\", \"age\": \"3\"}");
    add_pet(s, "{\"name\": \"Tom\", \"age\": \"x7\"}");
    add_pet(s, "{\"name\": \"Eve\"}");
    int64_t seq = rp_events_last_seq(s);
    json_t *spec = J("{\"type\": \"integer\", \"unique\": true, \"searchable\": true}");
    assert_int_equal(rp_store_change_type(s, &test_ctx, "pet", "age", spec, to_integer, NULL,
                                          &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "record 2 of pet: value \"x7\" of \"age\" does not become "
                                    "integer: not a number"));
    assert_int_equal(rp_events_last_seq(s), seq);
    json_t *rec = NULL;
    assert_int_equal(rp_store_get(s, "pet", 1, &rec, &err), 0);
    assert_string_equal(json_string_value(json_object_get(rec, "age")), "3");
    json_decref(rec);

    json_t *fix = J("{\"age\": \"7\"}");
    assert_int_equal(rp_store_update(s, &test_ctx, "pet", 2, fix, 0, NULL, &err), 0);
    json_decref(fix);
    assert_int_equal(rp_store_change_type(s, &test_ctx, "pet", "age", spec, to_integer, NULL,
                                          &err), 0);
    json_decref(spec);
    assert_int_equal(rp_store_get(s, "pet", 2, &rec, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(rec, "age")), 7);
    assert_int_equal(json_integer_value(json_object_get(rec, "version")), 2);
    json_decref(rec);
    assert_int_equal(searched(s, "7"), 2);
    json_t *dup = J("{\"name\": \"Max\", \"age\": 3}");
    assert_int_equal(rp_store_create(s, &test_ctx, "pet", dup, NULL, &err), RP_ECONFLICT);
    json_decref(dup);
    rp_store_close(s);
}

static void test_rename_and_drop(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    rp_error_t err = {0};
    assert_int_equal(declare(s, pet_with("\"chip\": {\"type\": \"text\"}",
                                         "\"chip\": {\"type\": \"text\", \"unique\": true}"),
                             "me", NULL, &err), 0);
    add_pet(s, "{\"name\": \"Rex\", \"chip\": \"c1\"}");
    assert_int_equal(rp_store_rename_field(s, &test_ctx, "pet", "chip", "name", &err),
                     RP_ECONFLICT);
    assert_int_equal(rp_store_rename_field(s, &test_ctx, "pet", "chip", "microchip", &err), 0);
    assert_int_equal(rp_store_rename_field(s, &test_ctx, "pet", "name", "title", &err), 0);
    assert_false(rp_store_has_field(s, "pet", "chip"));
    assert_int_equal(searched(s, "rex"), 1);
    json_t *dup = J("{\"title\": \"Max\", \"microchip\": \"c1\"}");
    assert_int_equal(rp_store_create(s, &test_ctx, "pet", dup, NULL, &err), RP_ECONFLICT);
    json_decref(dup);
    assert_int_equal(rp_store_drop_field(s, &test_ctx, "pet", "title", &err), 0);
    assert_int_equal(searched(s, "rex"), 0);
    assert_int_equal(rp_store_drop_field(s, &test_ctx, "pet", "title", &err), RP_ENOTFOUND);

    /* An entity another refers to stays; once alone, it goes with its records. */
    define(s, "visit", "{\"fields\": {\"pet\": {\"type\": \"ref\", \"ref\": \"pet\"}}}");
    assert_int_equal(rp_store_drop_entity(s, &test_ctx, "pet", &err), RP_ECONFLICT);
    assert_non_null(strstr(err.msg, "visit.pet refers to it"));
    assert_int_equal(rp_store_drop_field(s, &test_ctx, "visit", "pet", &err), RP_EINVAL);
    assert_int_equal(rp_store_drop_entity(s, &test_ctx, "visit", &err), 0);
    assert_int_equal(rp_store_drop_entity(s, &test_ctx, "pet", &err), 0);
    assert_false(rp_store_has_entity(s, "pet"));
    rp_store_close(s);
}

static void test_migration_ledger(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    rp_error_t err = {0};
    char sum[65], when[32];
    assert_int_equal(rp_store_migration_ran(s, "m1", sum, when, &err), 0);
    assert_int_equal(rp_store_migration_record(s, &test_ctx, "m1", "abc", "a.lua", &err), 0);
    assert_int_equal(rp_store_migration_ran(s, "m1", sum, when, &err), 1);
    assert_string_equal(sum, "abc");
    assert_string_equal(when, "2026-01-01T00:00:00.000Z");
    assert_int_equal(rp_store_migration_record(s, &test_ctx, "m1", "abc", "a.lua", &err),
                     RP_ECONFLICT);
    assert_int_equal(rp_store_migration_record(s, &test_ctx, "", "abc", "a.lua", &err),
                     RP_EINVAL);
    /* A migration recorded in a transaction that rolls back never ran. */
    assert_int_equal(rp_store_begin(s, &err), 0);
    assert_int_equal(rp_store_migration_record(s, &test_ctx, "m2", "x", "a.lua", &err), 0);
    assert_int_equal(rp_store_rollback(s, &err), 0);
    assert_int_equal(rp_store_migration_ran(s, "m2", NULL, NULL, &err), 0);
    rp_store_close(s);
}

/* A schema change a savepoint made and then rolled back is undone in the registry at once, not
 * only at the outermost end: the writes after it, in the same transaction, see the fields as
 * the file has them again (the search index's rows among them). */
static void test_schema_change_rolled_back_in_a_savepoint(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    rp_error_t err = {0};
    const char *chip_found = pet_with("\"chip\": {\"type\": \"text\"}",
                                      "\"chip\": {\"type\": \"text\", \"searchable\": true}");
    char chip_searchable[1024];
    snprintf(chip_searchable, sizeof chip_searchable, "%s", chip_found);
    assert_int_equal(declare(s, chip_searchable, "me", NULL, &err), 0);
    add_pet(s, "{\"name\": \"Rex\", \"chip\": \"c1\"}");
    assert_int_equal(searched(s, "c1"), 1);

    /* chip stops being searchable in a savepoint that is rolled back: it still is. */
    assert_int_equal(rp_store_begin(s, &err), 0);
    assert_int_equal(rp_store_begin(s, &err), 0);
    assert_int_equal(declare(s, PET, "me", NULL, &err), 0);
    json_t *f = field_spec(s, "chip");
    assert_null(json_object_get(f, "searchable"));
    json_decref(f);
    assert_int_equal(rp_store_rollback(s, &err), 0);
    f = field_spec(s, "chip");
    assert_true(json_is_true(json_object_get(f, "searchable")));
    json_decref(f);
    add_pet(s, "{\"name\": \"Tom\", \"chip\": \"c2\"}");
    assert_int_equal(searched(s, "c2"), 2);

    /* A field added in a savepoint that is rolled back is gone: a write naming it is refused. */
    assert_int_equal(rp_store_begin(s, &err), 0);
    json_t *spec = J("{\"type\": \"text\", \"searchable\": true}");
    assert_int_equal(rp_store_add_field(s, &test_ctx, "pet", "color", spec, "me", &err), 0);
    json_decref(spec);
    assert_true(rp_store_has_field(s, "pet", "color"));
    assert_int_equal(rp_store_rollback(s, &err), 0);
    assert_false(rp_store_has_field(s, "pet", "color"));
    json_t *rec = J("{\"name\": \"Max\", \"color\": \"red\"}");
    assert_int_equal(rp_store_create(s, &test_ctx, "pet", rec, NULL, &err), RP_EINVAL);
    json_decref(rec);

    /* A level with no schema change, rolled back, leaves the outer change in place. */
    assert_int_equal(declare(s, PET, "me", NULL, &err), 0);
    assert_int_equal(rp_store_begin(s, &err), 0);
    add_pet(s, "{\"name\": \"Bob\", \"chip\": \"c3\"}");
    assert_int_equal(rp_store_rollback(s, &err), 0);
    f = field_spec(s, "chip");
    assert_null(json_object_get(f, "searchable"));
    json_decref(f);
    add_pet(s, "{\"name\": \"Ann\", \"chip\": \"c4\"}");
    assert_int_equal(searched(s, "c4"), 0);
    assert_int_equal(rp_store_commit(s, &err), 0);

    /* Committed: chip is not searchable, Tom and Ann are there, Bob is not. */
    f = field_spec(s, "chip");
    assert_null(json_object_get(f, "searchable"));
    json_decref(f);
    assert_int_equal(searched(s, "Tom"), 2);
    assert_int_equal(searched(s, "Ann"), 3);
    assert_int_equal(searched(s, "Bob"), 0);
    assert_int_equal(searched(s, "c2"), 0);
    rp_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_declare_creates_then_writes_nothing),
        cmocka_unit_test(test_declare_safe_changes),
        cmocka_unit_test(test_declare_refusals_store_nothing),
        cmocka_unit_test(test_declare_leaves_other_owners_fields),
        cmocka_unit_test(test_change_type),
        cmocka_unit_test(test_rename_and_drop),
        cmocka_unit_test(test_migration_ledger),
        cmocka_unit_test(test_schema_change_rolled_back_in_a_savepoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
