/*
 * test_undo.c — rp_store_undo: each recorded change taken back out of its record, newest first,
 * leaves the record (values, version, deletion, search index) as it was before it; the ids a
 * copy gives next follow what is stored (rp_store_reset_ids).
 */
#include "helpers.h"

/* Undoes every event after @p after, newest first. */
static void undo_after(rp_store_t *s, int64_t after)
{
    rp_event_t evs[64];
    rp_error_t err = {0};
    int n = rp_events_list(s, after, false, evs, 64, &err);
    assert_true(n >= 0);
    for (int i = n - 1; i >= 0; i--) {
        int rc = rp_store_undo(s, evs[i].seq, evs[i].type, evs[i].entity, evs[i].record_id,
                               evs[i].changes, &err);
        if (rc < 0)
            fail_msg("undo of %s: %s", evs[i].type, err.msg);
    }
    for (int i = 0; i < n; i++)
        rp_event_clear(&evs[i]);
}

static json_t *get(rp_store_t *s, int64_t id)
{
    json_t *r = NULL;
    rp_store_get(s, "item", id, &r, NULL);
    return r;
}

static int64_t hits(rp_store_t *s, const char *text)
{
    json_t *out = NULL;
    rp_error_t err = {0};
    assert_int_equal(rp_store_search(s, text, "item", 10, &out, &err), 0);
    int64_t n = (int64_t)json_array_size(out);
    json_decref(out);
    return n;
}

static void test_undo_each_change(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    define(s, "item",
           "{\"fields\": {\"name\": {\"type\": \"text\", \"searchable\": true},"
           " \"price\": {\"type\": \"decimal\"}, \"n\": {\"type\": \"integer\"}}}");
    int64_t keep = create(s, "item", "{\"name\": \"kept\", \"price\": \"1.50\", \"n\": 1}");
    int64_t gone = create(s, "item", "{\"name\": \"purged\", \"price\": \"2.00\"}");
    int64_t mark = rp_events_last_seq(s);
    rp_error_t err = {0};
    json_t *p = J("{\"name\": \"renamed\", \"price\": \"9.99\", \"n\": null}");
    rp_ctx_t other = {.actor = "user:other", .origin = "test"};
    test_clock_ms += 60000;
    assert_int_equal(rp_store_update(s, &other, "item", keep, p, 0, NULL, &err), 0);
    json_decref(p);
    assert_int_equal(rp_store_delete(s, &other, "item", keep, &err), 0);
    assert_int_equal(rp_store_restore(s, &test_ctx, "item", keep, &err), 0);
    assert_int_equal(rp_store_delete(s, &test_ctx, "item", keep, &err), 0);
    assert_int_equal(rp_store_purge(s, &test_ctx, "item", gone, &err), 0);
    int64_t made = create(s, "item", "{\"name\": \"later\"}");
    assert_int_equal(hits(s, "later"), 1);

    undo_after(s, mark);
    json_t *r = get(s, keep);
    assert_non_null(r);
    assert_string_equal(json_string_value(json_object_get(r, "name")), "kept");
    assert_string_equal(json_string_value(json_object_get(r, "price")), "1.50");
    assert_int_equal(json_integer_value(json_object_get(r, "n")), 1);
    assert_int_equal(json_integer_value(json_object_get(r, "version")), 1);
    assert_true(json_is_null(json_object_get(r, "deleted_at")));
    assert_string_equal(json_string_value(json_object_get(r, "updated_at")),
                        json_string_value(json_object_get(r, "created_at")));
    assert_string_equal(json_string_value(json_object_get(r, "updated_by")), "user:test");
    json_decref(r);
    r = get(s, gone);
    assert_non_null(r);
    assert_string_equal(json_string_value(json_object_get(r, "price")), "2.00");
    assert_int_equal(json_integer_value(json_object_get(r, "version")), 1);
    json_decref(r);
    assert_null(get(s, made));
    assert_int_equal(hits(s, "later"), 0);
    assert_int_equal(hits(s, "kept"), 1);
    assert_int_equal(hits(s, "purged"), 1);

    /* The next record takes the id after the largest stored, not after the largest given. */
    assert_int_equal(rp_store_reset_ids(s, &err), 0);
    assert_int_equal(create(s, "item", "{\"name\": \"next\"}"), gone + 1);
    rp_store_close(s);
}

static void test_undo_other_events(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    define(s, "item", "{\"fields\": {\"name\": {\"type\": \"text\"}}}");
    rp_error_t err = {0};
    /* Not a record change: nothing to take back, said with 1. */
    assert_int_equal(rp_store_undo(s, 1, "schema.entity_defined", "item", 0, "{}", &err), 1);
    assert_int_equal(rp_store_undo(s, 1, "survey.answered", "", 0, "{}", &err), 1);
    assert_int_equal(rp_store_undo(s, 1, "item.updated", "item", 1, "not json", &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "item 1 (item.updated)"));
    rp_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_undo_each_change),
        cmocka_unit_test(test_undo_other_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
