/*
 * test_erase.c — the personal flag (parsed, shown, declared), rp_store_erase (the record, its
 * events, the search index, referring records, copied identifiers, its one event, a veto, a
 * purged record, a second erase, a user refused) and rp_store_subject (two levels of refs).
 */
#include "helpers.h"

#include "rapport/db.h"
#include "rapport/write.h"

static const char person_spec[] =
    "{\"fields\": {\"name\": {\"type\": \"text\", \"searchable\": true, \"personal\": true},"
    " \"email\": {\"type\": \"email\", \"personal\": true}, \"tier\": {\"type\": \"text\"}}}";
static const char visit_spec[] =
    "{\"fields\": {\"person\": {\"type\": \"ref\", \"ref\": \"person\"},"
    " \"remark\": {\"type\": \"text\", \"personal\": true, \"searchable\": true},"
    " \"code\": {\"type\": \"text\"}}}";
static const char step_spec[] =
    "{\"fields\": {\"visit\": {\"type\": \"ref\", \"ref\": \"visit\"},"
    " \"what\": {\"type\": \"text\"}}}";

static rp_store_t *setup(void)
{
    rp_store_t *s = test_open();
    define(s, "person", person_spec);
    define(s, "visit", visit_spec);
    define(s, "step", step_spec);
    return s;
}

/* How many events hold @p text anywhere in their payload. */
static int64_t events_holding(rp_store_t *s, const char *text)
{
    rp_db_stmt_t *st =
        rp_db_stmt(rp_store_db(s), "SELECT count(*) FROM rp_events WHERE instr(changes, ?)", NULL);
    assert_non_null(st);
    rp_db_bind_text(st, 1, text, -1);
    assert_int_equal(rp_db_step(st), RP_DB_ROW);
    int64_t n = rp_db_col_int(st, 0);
    rp_db_reset(st);
    return n;
}

static const char *last_payload(rp_store_t *s, const char *type)
{
    static char buf[1024];
    rp_db_stmt_t *st = rp_db_stmt(
        rp_store_db(s), "SELECT changes FROM rp_events WHERE type = ? ORDER BY seq DESC", NULL);
    rp_db_bind_text(st, 1, type, -1);
    buf[0] = '\0';
    if (rp_db_step(st) == RP_DB_ROW)
        snprintf(buf, sizeof buf, "%s", rp_db_col_text(st, 0));
    rp_db_reset(st);
    return buf;
}

static int64_t hits(rp_store_t *s, const char *text)
{
    json_t *out = NULL;
    rp_error_t err = {0};
    assert_int_equal(rp_store_search(s, text, NULL, 10, &out, &err), 0);
    int64_t n = (int64_t)json_array_size(out);
    json_decref(out);
    return n;
}

static void test_personal_flag(void **state)
{
    (void)state;
    rp_store_t *s = setup();
    rp_error_t err = {0};
    json_t *sch = rp_store_schema(s, "person", &err);
    assert_true(json_is_true(json_object_get(
        json_object_get(json_object_get(sch, "fields"), "email"), "personal")));
    assert_null(json_object_get(json_object_get(json_object_get(sch, "fields"), "tier"),
                                "personal"));
    json_decref(sch);
    json_t *bad = J("{\"type\": \"text\", \"personal\": \"yes\"}");
    assert_int_equal(rp_store_add_field(s, &test_ctx, "person", "nick", bad, "test", &err),
                     RP_EINVAL);
    assert_non_null(strstr(err.msg, "\"personal\" must be true or false"));
    json_decref(bad);
    /* Declaring a field personal later is a safe change. */
    json_t *spec = J("{\"fields\": {\"name\": {\"type\": \"text\", \"searchable\": true,"
                     " \"personal\": true}, \"email\": {\"type\": \"email\", \"personal\": true},"
                     " \"tier\": {\"type\": \"text\", \"personal\": true}}}");
    json_t *changes = NULL;
    assert_int_equal(rp_store_declare(s, &test_ctx, "person", spec, "test", &changes, &err), 0);
    assert_int_equal(json_array_size(changes), 1);
    assert_string_equal(json_string_value(json_array_get(changes, 0)), "changed person.tier");
    json_decref(changes);
    json_decref(spec);
    rp_store_close(s);
}

static void test_erase_record_events_index(void **state)
{
    (void)state;
    rp_store_t *s = setup();
    rp_error_t err = {0};
    int64_t p = create(s, "person", "{\"name\": \"Ofelia Zanzibarr\", \"email\": \"of@ex.org\","
                                    " \"tier\": \"gold\"}");
    int64_t keep = create(s, "person", "{\"name\": \"Kept Person\", \"email\": \"k@ex.org\"}");
    json_t *patch = J("{\"email\": \"of2@ex.org\"}");
    assert_int_equal(rp_store_update(s, &test_ctx, "person", p, patch, 0, NULL, &err), 0);
    json_decref(patch);
    char v[160];
    snprintf(v, sizeof v, "{\"person\": %lld, \"remark\": \"Ofelia was late\", \"code\": \"A1\"}",
             (long long)p);
    int64_t visit = create(s, "visit", v);
    json_t *payload = J("{\"to\": \"of2@ex.org\", \"text\": \"mail to of@ex.org sent\"}");
    assert_int_equal(rp_events_emit(s, &test_ctx, "mail.sent", NULL, 0, payload, NULL, &err), 0);
    json_decref(payload);
    assert_int_equal(hits(s, "Zanzibarr"), 1);
    int64_t before = rp_events_last_seq(s);

    json_t *res = NULL;
    assert_int_equal(rp_store_erase(s, &test_ctx, "person", p, "asked", &res, &err), 0);
    assert_true(json_is_true(json_object_get(res, "erased")));
    assert_int_equal(json_array_size(json_object_get(res, "fields")), 2);
    assert_int_equal(json_integer_value(json_object_get(res, "other_events")), 1);
    json_decref(res);
    assert_string_equal(field_of(s, "person", p, "name"), "null");
    assert_string_equal(field_of(s, "person", p, "email"), "null");
    assert_string_equal(field_of(s, "person", p, "tier"), "\"gold\"");
    assert_string_equal(field_of(s, "visit", visit, "remark"), "null");
    assert_string_equal(field_of(s, "visit", visit, "code"), "\"A1\"");
    assert_string_equal(field_of(s, "person", keep, "email"), "\"k@ex.org\"");
    assert_int_equal(events_holding(s, "Ofelia"), 0);
    assert_int_equal(events_holding(s, "of@ex.org"), 0);
    assert_int_equal(events_holding(s, "of2@ex.org"), 0);
    assert_int_equal(events_holding(s, "k@ex.org"), 1);
    assert_int_equal(hits(s, "Zanzibarr"), 0);
    assert_int_equal(hits(s, "Ofelia"), 0);
    assert_int_equal(hits(s, "Kept"), 1);
    /* The keys stay, the values are null; the copied identifier is cut out. */
    assert_string_equal(last_payload(s, "person.updated"), "{\"email\":[null,null]}");
    assert_string_equal(last_payload(s, "mail.sent"),
                        "{\"to\":null,\"text\":\"mail to [erased] sent\"}");
    assert_int_equal(rp_events_last_seq(s), before + 1);
    const char *ev = last_payload(s, "person.erased");
    assert_true(strstr(ev, "\"fields\":[\"name\",\"email\"]") ||
                strstr(ev, "\"fields\":[\"email\",\"name\"]"));
    assert_non_null(strstr(ev, "\"reason\":\"asked\""));
    assert_non_null(strstr(ev, "\"visit\":["));
    /* Again: nothing left, nothing written. */
    assert_int_equal(rp_store_erase(s, &test_ctx, "person", p, NULL, &res, &err), 0);
    assert_false(json_is_true(json_object_get(res, "erased")));
    json_decref(res);
    assert_int_equal(rp_events_last_seq(s), before + 1);
    rp_store_close(s);
}

static int veto(rp_store_t *s, rp_change_t *c, void *ud, rp_error_t *err)
{
    (void)s;
    (*(int *)ud)++;
    assert_int_equal(c->action, RP_ACT_ERASE);
    assert_string_equal(json_string_value(json_object_get(c->old, "tier")), "hold");
    return rp_error_set(err, RP_EVETO, RP_C_VETO, "%s %lld is under a legal hold", c->entity,
                        (long long)c->id);
}

static void test_erase_refused(void **state)
{
    (void)state;
    rp_store_t *s = setup();
    rp_error_t err = {0};
    int64_t p = create(s, "person", "{\"name\": \"Held\", \"email\": \"held@ex.org\","
                                    " \"tier\": \"hold\"}");
    int64_t before = rp_events_last_seq(s);
    /* A user's context, whatever its role, may not erase. */
    int dummy = 0;
    rp_ctx_t user = {.actor = "user:u", .access = (const rp_access_t *)&dummy};
    assert_int_equal(rp_store_erase(s, &user, "person", p, NULL, NULL, &err), RP_EPERM);
    assert_non_null(strstr(err.msg, "may not erase personal data"));
    /* A hook vetoes: nothing stored. */
    int calls = 0;
    assert_true(rp_hook_add(s, "person", RP_ACT_ERASE, 0, veto, &calls, "test", &err) > 0);
    assert_int_equal(rp_store_erase(s, &test_ctx, "person", p, NULL, NULL, &err), RP_EVETO);
    assert_int_equal(calls, 1);
    assert_non_null(strstr(err.msg, "legal hold"));
    assert_string_equal(field_of(s, "person", p, "email"), "\"held@ex.org\"");
    assert_int_equal(rp_events_last_seq(s), before);
    assert_int_equal(events_holding(s, "held@ex.org"), 1);
    rp_hooks_remove_owner(s, "test");
    /* An entity without personal fields, a missing record. */
    assert_int_equal(rp_store_erase(s, &test_ctx, "step", 1, NULL, NULL, &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "step has no personal field"));
    assert_int_equal(rp_store_erase(s, &test_ctx, "person", 999, NULL, NULL, &err),
                     RP_ENOTFOUND);
    assert_int_equal(rp_store_erase(s, &test_ctx, "ghost", 1, NULL, NULL, &err), RP_ENOTFOUND);
    rp_store_close(s);
}

static void test_erase_purged(void **state)
{
    (void)state;
    rp_store_t *s = setup();
    rp_error_t err = {0};
    int64_t p = create(s, "person", "{\"name\": \"Gone Already\", \"email\": \"gone@ex.org\"}");
    assert_int_equal(rp_store_purge(s, &test_ctx, "person", p, &err), 0);
    assert_int_equal(events_holding(s, "gone@ex.org"), 2);
    json_t *res = NULL;
    assert_int_equal(rp_store_erase(s, &test_ctx, "person", p, NULL, &res, &err), 0);
    assert_true(json_is_true(json_object_get(res, "erased")));
    json_decref(res);
    assert_int_equal(events_holding(s, "gone@ex.org"), 0);
    assert_int_equal(events_holding(s, "Gone Already"), 0);
    rp_store_close(s);
}

static void test_subject(void **state)
{
    (void)state;
    rp_store_t *s = setup();
    rp_error_t err = {0};
    int64_t p = create(s, "person", "{\"name\": \"Sub Ject\", \"email\": \"s@ex.org\"}");
    create(s, "person", "{\"name\": \"Someone Else\"}");
    char v[160];
    snprintf(v, sizeof v, "{\"person\": %lld, \"code\": \"V\"}", (long long)p);
    int64_t visit = create(s, "visit", v);
    create(s, "visit", "{\"code\": \"not theirs\"}");
    snprintf(v, sizeof v, "{\"visit\": %lld, \"what\": \"walked\"}", (long long)visit);
    create(s, "step", v);
    json_t *doc = NULL;
    assert_int_equal(rp_store_subject(s, &test_ctx, "person", p, &doc, &err), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(doc, "record"),
                                                          "email")),
                        "s@ex.org");
    json_t *rel = json_object_get(doc, "related");
    assert_int_equal(json_array_size(json_object_get(rel, "visit")), 1);
    assert_int_equal(json_array_size(json_object_get(rel, "step")), 1);
    assert_null(json_object_get(rel, "person"));
    /* person.created, visit.created, step.created */
    assert_int_equal(json_array_size(json_object_get(doc, "events")), 3);
    assert_false(json_is_true(json_object_get(doc, "truncated")));
    json_decref(doc);
    assert_int_equal(rp_store_subject(s, &test_ctx, "person", 999, &doc, &err), RP_ENOTFOUND);
    rp_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_personal_flag),
        cmocka_unit_test(test_erase_record_events_index),
        cmocka_unit_test(test_erase_refused),
        cmocka_unit_test(test_erase_purged),
        cmocka_unit_test(test_subject),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
