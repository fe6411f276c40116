/*
 * test_access_writable.c — an entity's "writable" list in a role: what the document may say
 * (and the message when not, at load and when set against the registry), how it combines with
 * the "fields" rules, and the store refusing a field left out of it on create and update (a
 * field added later included) with nothing stored.
 */
#include "helpers.h"

#include "rapport/access.h"
#include "rapport/auth.h"
#include "rapport/store.h"

static const char person_spec[] =
    "{\"fields\": {\"name\": {\"type\": \"text\"}, \"phone\": {\"type\": \"text\"}, "
    "\"tier\": {\"type\": \"text\"}, \"owner\": {\"type\": \"text\", \"indexed\": true}}}";

/* Sets role @p name to @p grants as `roles set` does; the code, the message in @p err. */
static int set_role(rp_store_t *s, const char *name, const char *grants, rp_error_t *err)
{
    json_t *g = J(grants);
    int rc = rp_access_role_set(s, &test_ctx, name, g, err);
    json_decref(g);
    return rc;
}

static void test_the_list_is_checked(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    define(s, "contact", person_spec);
    rp_error_t err = {0};
    static const struct {
        const char *grants, *says;
    } bad[] = {
        {"{\"entities\": {\"contact\": {\"writable\": \"name\"}}}",
         "roles.r: entities.contact.writable must be a list of field names"},
        {"{\"entities\": {\"contact\": {\"writable\": [\"name\", 7]}}}",
         "roles.r: entities.contact.writable: 7 is not a field name"},
        {"{\"entities\": {\"contact\": {\"writable\": [\"no such\"]}}}",
         "roles.r: entities.contact.writable: \"no such\" is not a field name"},
        {"{\"entities\": {\"*\": {\"writable\": [\"name\"]}}}",
         "roles.r: entities.*.writable: the list names fields, so it is given per entity"},
        /* Against the registry, when set. */
        {"{\"entities\": {\"contact\": {\"update\": \"all\", \"writable\": [\"name\", \"nope\"]}}}",
         "roles.r: entities.contact.writable: \"nope\" is not a field of contact"},
        {"{\"entities\": {\"contact\": {\"writable\": [\"id\"]}}}",
         "roles.r: entities.contact.writable: \"id\" is not a field of contact"},
        {"{\"entities\": {\"ghost\": {\"writable\": [\"name\"]}}}",
         "roles.r: entities.ghost.writable: there is no entity \"ghost\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(set_role(s, "r", bad[i].grants, &err), RP_EINVAL);
        if (!strstr(err.msg, bad[i].says))
            fail_msg("%s: %s", bad[i].grants, err.msg);
        json_t *kept = NULL;
        assert_int_not_equal(rp_config_get(s, "roles.r", &kept, NULL), 0); /* nothing kept */
        json_decref(kept);
    }
    /* A list, a rule beside it: unlisted and ruled fields are read-only, listed ones not. */
    assert_int_equal(set_role(s, "r", "{\"entities\": {\"contact\": {\"update\": \"all\", "
                                      "\"writable\": [\"name\", \"phone\"]}}, \"fields\": "
                                      "{\"contact.phone\": \"read_only\"}}", &err), 0);
    rp_access_t *a = NULL;
    assert_int_equal(rp_access_load(s, "u", "r", NULL, &a, &err), 0);
    assert_false(rp_access_read_only(a, "contact", "name"));
    assert_true(rp_access_read_only(a, "contact", "phone")); /* the rule wins over the list */
    assert_true(rp_access_read_only(a, "contact", "tier"));  /* not listed */
    assert_false(rp_access_hidden(a, "contact", "tier"));
    assert_false(rp_access_read_only(a, "note", "tier")); /* another entity: no list */
    rp_access_free(a);

    /* A listed field dropped since (drop-field, a plugin's spec no longer naming it): the
     * role still loads and is set again with it (a plugin's next offer must not fail), but a
     * name not listed before is checked. */
    assert_int_equal(set_role(s, "r", "{\"entities\": {\"contact\": {\"update\": \"all\", "
                                      "\"writable\": [\"tier\"]}}}", &err), 0);
    assert_int_equal(rp_store_drop_field(s, &test_ctx, "contact", "tier", &err), 0);
    assert_false(rp_store_has_field(s, "contact", "tier"));
    assert_int_equal(set_role(s, "r", "{\"entities\": {\"contact\": {\"update\": \"all\", "
                                      "\"writable\": [\"name\", \"tier\"]}}}", &err), 0);
    assert_int_equal(set_role(s, "r", "{\"entities\": {\"contact\": {\"update\": \"all\", "
                                      "\"writable\": [\"name\", \"tier\", \"rank\"]}}}", &err),
                     RP_EINVAL);
    assert_non_null(strstr(err.msg, "\"rank\" is not a field of contact"));
    assert_int_equal(rp_access_load(s, "u", "r", NULL, &a, &err), 0);
    assert_true(rp_access_read_only(a, "contact", "phone"));
    rp_access_free(a);
    rp_store_close(s);
}

static void test_the_store_refuses_unlisted_fields(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    define(s, "contact", person_spec);
    rp_error_t err = {0};
    assert_int_equal(set_role(s, "clerk", "{\"entities\": {\"contact\": {\"read\": \"all\", "
                                          "\"create\": true, \"update\": \"all\", "
                                          "\"writable\": [\"name\", \"phone\"]}}}", &err), 0);
    assert_int_equal(rp_users_add(s, &test_ctx, "cleo", "clerk", NULL, "a long password", &err),
                     0);
    rp_access_t *a = NULL;
    assert_int_equal(rp_access_of_user(s, "cleo", &a, &err), 0);
    rp_ctx_t ctx = {.actor = "user:cleo", .origin = "test", .access = a};

    /* create: listed fields only; an unlisted one refuses the record, naming the field. */
    int64_t id = 0;
    json_t *r = J("{\"name\": \"Ana\", \"phone\": \"1\", \"tier\": \"gold\"}");
    assert_int_equal(rp_store_create(s, &ctx, "contact", r, &id, &err), RP_EPERM);
    assert_string_equal(err.field, "tier");
    assert_non_null(strstr(err.msg, "contact.tier is read-only for role clerk (missing: tier "
                                    "in entities.contact.writable)"));
    json_decref(r);
    int64_t n = -1;
    assert_int_equal(rp_store_count(s, "contact", NULL, false, &n, &err), 0);
    assert_int_equal(n, 0);
    r = J("{\"name\": \"Ana\", \"phone\": \"1\"}");
    assert_int_equal(rp_store_create(s, &ctx, "contact", r, &id, &err), 0);
    json_decref(r);

    /* update: the same; the owner field is a field like any other. */
    json_t *p = J("{\"tier\": \"gold\"}");
    assert_int_equal(rp_store_update(s, &ctx, "contact", id, p, 0, NULL, &err), RP_EPERM);
    assert_string_equal(err.field, "tier");
    json_decref(p);
    p = J("{\"owner\": \"cleo\"}");
    assert_int_equal(rp_store_update(s, &ctx, "contact", id, p, 0, NULL, &err), RP_EPERM);
    assert_string_equal(err.field, "owner");
    json_decref(p);
    p = J("{\"name\": \"Ana B\"}");
    assert_int_equal(rp_store_update(s, &ctx, "contact", id, p, 0, NULL, &err), 0);
    json_decref(p);

    /* A field added later is not the role's to write; the engine's own context still is. */
    json_t *spec = J("{\"type\": \"integer\"}");
    assert_int_equal(rp_store_add_field(s, &test_ctx, "contact", "shoe_size", spec, "admin",
                                        &err), 0);
    json_decref(spec);
    p = J("{\"shoe_size\": 42}");
    assert_int_equal(rp_store_update(s, &ctx, "contact", id, p, 0, NULL, &err), RP_EPERM);
    assert_non_null(strstr(err.msg, "contact.shoe_size is read-only for role clerk"));
    assert_int_equal(rp_store_update(s, &test_ctx, "contact", id, p, 0, NULL, &err), 0);
    json_decref(p);
    json_t *rec = NULL;
    assert_int_equal(rp_store_get(s, "contact", id, &rec, &err), 0);
    assert_string_equal(json_string_value(json_object_get(rec, "name")), "Ana B");
    assert_null(json_string_value(json_object_get(rec, "tier")));
    assert_int_equal(json_integer_value(json_object_get(rec, "shoe_size")), 42);
    json_decref(rec);
    rp_access_free(a);
    rp_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_list_is_checked),
        cmocka_unit_test(test_the_store_refuses_unlisted_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
