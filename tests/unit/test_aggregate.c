/*
 * test_aggregate.c — grouped aggregates (rp_store_aggregate): each measure against sums
 * worked by hand, calendar buckets in a zone, order and paging, the filters, the caps and the
 * refusals, and the read scope and hidden fields of a restricted user.
 */
#include "helpers.h"

#include "rapport/access.h"
#include "rapport/auth.h"
#include "rapport/store.h"

static const char sale_spec[] =
    "{\"fields\": {\"customer\": {\"type\": \"text\", \"indexed\": true}, \"owner\": {\"type\": "
    "\"text\"}, \"at\": {\"type\": \"datetime\"}, \"day\": {\"type\": \"date\"}, \"amount\": "
    "{\"type\": \"decimal\", \"scale\": 2}, \"qty\": {\"type\": \"integer\"}, \"score\": "
    "{\"type\": \"real\"}, \"ref\": {\"type\": \"text\"}, \"margin\": {\"type\": \"decimal\", "
    "\"scale\": 2}, \"meta\": {\"type\": \"json\"}}}";

static rp_store_t *fill(void)
{
    rp_store_t *s = test_open();
    define(s, "sale", sale_spec);
    /* ann: 3 rows (2 refs + 1 without), bob: 2 rows, cy: 1 row with nulls. */
    create(s, "sale", "{\"customer\": \"ann\", \"owner\": \"sam\", \"at\": "
                      "\"2026-01-01T02:30:00Z\", \"day\": \"2026-01-01\", \"amount\": \"10.10\", "
                      "\"qty\": 1, \"score\": 0.5, \"ref\": \"o1\", \"margin\": \"1.00\"}");
    create(s, "sale", "{\"customer\": \"ann\", \"owner\": \"sam\", \"at\": "
                      "\"2026-01-20T12:00:00Z\", \"day\": \"2026-01-20\", \"amount\": \"5.05\", "
                      "\"qty\": 2, \"score\": 1.5, \"ref\": \"o1\", \"margin\": \"2.00\"}");
    create(s, "sale", "{\"customer\": \"ann\", \"owner\": \"zoe\", \"at\": "
                      "\"2026-04-02T09:00:00Z\", \"day\": \"2026-04-02\", \"amount\": \"-3.00\", "
                      "\"qty\": 3, \"score\": 2.5, \"margin\": \"3.00\"}");
    create(s, "sale", "{\"customer\": \"bob\", \"owner\": \"zoe\", \"at\": "
                      "\"2025-12-31T23:00:00Z\", \"day\": \"2025-12-31\", \"amount\": \"0.01\", "
                      "\"qty\": 4, \"score\": 3.5, \"ref\": \"o2\", \"margin\": \"4.00\"}");
    create(s, "sale", "{\"customer\": \"bob\", \"owner\": \"zoe\", \"at\": "
                      "\"2026-02-15T00:00:00Z\", \"day\": \"2026-02-15\", \"amount\": \"0.02\", "
                      "\"qty\": 5, \"score\": 4.5, \"ref\": \"o3\", \"margin\": \"5.00\"}");
    create(s, "sale", "{\"customer\": \"cy\", \"owner\": \"sam\"}");
    return s;
}

static json_t *agg(rp_store_t *s, rp_aggregate_t *q)
{
    json_t *out = NULL;
    rp_error_t err = {0};
    if (!q->entity)
        q->entity = "sale";
    if (rp_store_aggregate(s, q, &out, &err))
        fail_msg("aggregate: %s", err.msg);
    json_decref(q->where);
    return out;
}

static void expect(json_t *got, const char *want)
{
    json_t *w = J(want);
    if (!json_equal(got, w)) {
        char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
        fail_msg("aggregate gave %s, not %s", g, want);
    }
    json_decref(w);
    json_decref(got);
}

static void test_measures(void **state)
{
    (void)state;
    rp_store_t *s = fill();
    /* No group: one row over everything; count alone by default. */
    expect(agg(s, &(rp_aggregate_t){0}), "[{\"count\": 6}]");
    const char *ms[] = {"count", "count:ref", "count_distinct:ref", "sum:amount", "avg:amount",
                        "min:amount", "max:amount", "sum:qty", "avg:qty", "sum:score",
                        "min:at", "max:day", NULL};
    const char *by[] = {"customer", NULL};
    /* ann: amounts 10.10 + 5.05 - 3.00 = 12.15, avg 4.05; qty 6, avg 2.0; score 4.5.
     * bob: 0.03, avg 0.015 -> 0.02 (half away from zero); cy: no values, so nulls. */
    expect(agg(s, &(rp_aggregate_t){.group_by = by, .measures = ms}),
           "[{\"customer\": \"ann\", \"count\": 3, \"count_ref\": 2, \"count_distinct_ref\": 1, "
           "\"sum_amount\": \"12.15\", \"avg_amount\": \"4.05\", \"min_amount\": \"-3.00\", "
           "\"max_amount\": \"10.10\", \"sum_qty\": 6, \"avg_qty\": 2.0, \"sum_score\": 4.5, "
           "\"min_at\": \"2026-01-01T02:30:00.000Z\", \"max_day\": \"2026-04-02\"},"
           "{\"customer\": \"bob\", \"count\": 2, \"count_ref\": 2, \"count_distinct_ref\": 2, "
           "\"sum_amount\": \"0.03\", \"avg_amount\": \"0.02\", \"min_amount\": \"0.01\", "
           "\"max_amount\": \"0.02\", \"sum_qty\": 9, \"avg_qty\": 4.5, \"sum_score\": 8.0, "
           "\"min_at\": \"2025-12-31T23:00:00.000Z\", \"max_day\": \"2026-02-15\"},"
           "{\"customer\": \"cy\", \"count\": 1, \"count_ref\": 0, \"count_distinct_ref\": 0, "
           "\"sum_amount\": null, \"avg_amount\": null, \"min_amount\": null, "
           "\"max_amount\": null, \"sum_qty\": null, \"avg_qty\": null, \"sum_score\": null, "
           "\"min_at\": null, \"max_day\": null}]");
    /* A negative average rounds away from zero too: -3.00 and 0.01 -> -1.495 -> -1.50. */
    const char *avg[] = {"avg:amount", NULL};
    expect(agg(s, &(rp_aggregate_t){.measures = avg,
                                    .where = J("{\"qty\": {\"in\": [3, 4]}}")}),
           "[{\"avg_amount\": \"-1.50\"}]");
    rp_store_close(s);
}

static void test_buckets_and_zone(void **state)
{
    (void)state;
    rp_store_t *s = fill();
    const char *by[] = {"at:month", NULL};
    const char *ms[] = {"count", "sum:amount", NULL};
    /* In UTC: 2025-12 (bob's), 2026-01 (ann's two), 2026-02, 2026-04, and cy's null. */
    expect(agg(s, &(rp_aggregate_t){.group_by = by, .measures = ms,
                                    .where = J("{\"at\": {\"is_null\": false}}")}),
           "[{\"at_month\": \"2025-12\", \"count\": 1, \"sum_amount\": \"0.01\"},"
           "{\"at_month\": \"2026-01\", \"count\": 2, \"sum_amount\": \"15.15\"},"
           "{\"at_month\": \"2026-02\", \"count\": 1, \"sum_amount\": \"0.02\"},"
           "{\"at_month\": \"2026-04\", \"count\": 1, \"sum_amount\": \"-3.00\"}]");
    /* In Tokyo (+09:00) bob's 23:00 UTC on New Year's Eve is already January; in New York
     * ann's 02:30 UTC on New Year's Day is still December. */
    expect(agg(s, &(rp_aggregate_t){.group_by = by, .zone = "Asia/Tokyo",
                                    .where = J("{\"at\": {\"is_null\": false}}")}),
           "[{\"at_month\": \"2026-01\", \"count\": 3}, {\"at_month\": \"2026-02\", \"count\": 1},"
           "{\"at_month\": \"2026-04\", \"count\": 1}]");
    expect(agg(s, &(rp_aggregate_t){.group_by = by, .zone = "America/New_York",
                                    .where = J("{\"at\": {\"is_null\": false}}")}),
           "[{\"at_month\": \"2025-12\", \"count\": 2}, {\"at_month\": \"2026-01\", \"count\": 1},"
           "{\"at_month\": \"2026-02\", \"count\": 1}, {\"at_month\": \"2026-04\", \"count\": 1}]");
    /* The `timezone` setting is the default zone. */
    rp_error_t err = {0};
    json_t *tz = json_string("Asia/Tokyo");
    assert_int_equal(rp_config_set(s, &test_ctx, "timezone", tz, &err), 0);
    json_decref(tz);
    const char *q[] = {"at:quarter", NULL};
    expect(agg(s, &(rp_aggregate_t){.group_by = q, .where = J("{\"at\": {\"is_null\": false}}")}),
           "[{\"at_quarter\": \"2026-Q1\", \"count\": 4}, {\"at_quarter\": \"2026-Q2\", "
           "\"count\": 1}]");
    /* Dates have no zone; weeks start on Monday; two groups. */
    const char *wk[] = {"day:week", "customer", NULL};
    expect(agg(s, &(rp_aggregate_t){.group_by = wk, .where = J("{\"day\": {\"is_null\": false}}")}),
           "[{\"day_week\": \"2025-12-29\", \"customer\": \"ann\", \"count\": 1},"
           "{\"day_week\": \"2025-12-29\", \"customer\": \"bob\", \"count\": 1},"
           "{\"day_week\": \"2026-01-19\", \"customer\": \"ann\", \"count\": 1},"
           "{\"day_week\": \"2026-02-09\", \"customer\": \"bob\", \"count\": 1},"
           "{\"day_week\": \"2026-03-30\", \"customer\": \"ann\", \"count\": 1}]");
    const char *yr[] = {"created_at:year", NULL};
    expect(agg(s, &(rp_aggregate_t){.group_by = yr}), "[{\"created_at_year\": \"2026\", "
                                                      "\"count\": 6}]");
    rp_store_close(s);
}

static void test_order_paging_filters(void **state)
{
    (void)state;
    rp_store_t *s = fill();
    const char *by[] = {"customer", NULL};
    const char *ms[] = {"count", "sum:qty", NULL};
    expect(agg(s, &(rp_aggregate_t){.group_by = by, .measures = ms, .order = "-sum_qty"}),
           "[{\"customer\": \"bob\", \"count\": 2, \"sum_qty\": 9},"
           "{\"customer\": \"ann\", \"count\": 3, \"sum_qty\": 6},"
           "{\"customer\": \"cy\", \"count\": 1, \"sum_qty\": null}]");
    expect(agg(s, &(rp_aggregate_t){.group_by = by, .order = "-count", .limit = 1, .offset = 1}),
           "[{\"customer\": \"bob\", \"count\": 2}]");
    expect(agg(s, &(rp_aggregate_t){.group_by = by, .where = J("{\"owner\": \"zoe\"}")}),
           "[{\"customer\": \"ann\", \"count\": 1}, {\"customer\": \"bob\", \"count\": 2}]");
    /* Deleted records count only when asked. */
    rp_error_t err = {0};
    assert_int_equal(rp_store_delete(s, &test_ctx, "sale", 6, &err), 0);
    expect(agg(s, &(rp_aggregate_t){0}), "[{\"count\": 5}]");
    expect(agg(s, &(rp_aggregate_t){.with_deleted = true}), "[{\"count\": 6}]");
    rp_store_close(s);
}

static void refused(rp_store_t *s, rp_aggregate_t q, int code, const char *says,
                    const char *field)
{
    json_t *out = (json_t *)1;
    rp_error_t err = {0};
    if (!q.entity)
        q.entity = "sale";
    assert_int_equal(rp_store_aggregate(s, &q, &out, &err), code);
    assert_null(out);
    if (!strstr(err.msg, says))
        fail_msg("expected \"%s\" in: %s", says, err.msg);
    if (field)
        assert_string_equal(err.field, field);
    json_decref((json_t *)q.where);
}

static void test_refusals(void **state)
{
    (void)state;
    rp_store_t *s = fill();
    refused(s, (rp_aggregate_t){.entity = "ghost"}, RP_ENOTFOUND, "ghost", NULL);
    refused(s, (rp_aggregate_t){.group_by = (const char *[]){"nope", NULL}}, RP_EINVAL,
            "unknown field \"nope\" on sale", "nope");
    refused(s, (rp_aggregate_t){.group_by = (const char *[]){"at:fortnight", NULL}}, RP_EINVAL,
            "RP-E1305: aggregate of sale: unknown bucket \"fortnight\"", "at");
    refused(s, (rp_aggregate_t){.group_by = (const char *[]){"qty:month", NULL}}, RP_EINVAL,
            "qty is not a date or date-time", "qty");
    refused(s, (rp_aggregate_t){.group_by = (const char *[]){"meta", NULL}}, RP_EINVAL,
            "holds JSON", "meta");
    refused(s, (rp_aggregate_t){.measures = (const char *[]){"sum:ref", NULL}}, RP_EINVAL,
            "ref is not a number, so it has no sum", "ref");
    refused(s, (rp_aggregate_t){.measures = (const char *[]){"median:qty", NULL}}, RP_EINVAL,
            "unknown measure \"median:qty\"", NULL);
    refused(s, (rp_aggregate_t){.measures = (const char *[]){"sum", NULL}}, RP_EINVAL,
            "needs a field", NULL);
    refused(s, (rp_aggregate_t){.measures = (const char *[]){"count", "count", NULL}}, RP_EINVAL,
            "asked for twice", NULL);
    refused(s, (rp_aggregate_t){.group_by = (const char *[]){"customer", NULL}, .order = "qty"},
            RP_EINVAL, "\"qty\" is none of the row's groups and measures", NULL);
    refused(s, (rp_aggregate_t){.group_by = (const char *[]){"at:day", NULL},
                                .zone = "../../etc/passwd"},
            RP_EINVAL, "is not a time zone name", "zone");
    refused(s, (rp_aggregate_t){.group_by = (const char *[]){"at:day", NULL},
                                .zone = "Mars/Base"},
            RP_EINVAL, "unknown time zone \"Mars/Base\"", "zone");
    refused(s, (rp_aggregate_t){.where = J("{\"qty\": {\"near\": 3}}")}, RP_EINVAL,
            "unknown operator", NULL);
    const char *nine[] = {"customer", "owner", "ref", "qty", "day", "at", "score", "amount",
                          "margin", NULL};
    refused(s, (rp_aggregate_t){.group_by = nine}, RP_ELIMIT, "more than 8 groups", NULL);
    /* A sum past the 64-bit range is an error, not a wrapped number. */
    define(s, "big", "{\"fields\": {\"n\": {\"type\": \"integer\"}}}");
    create(s, "big", "{\"n\": 9223372036854775807}");
    create(s, "big", "{\"n\": 1}");
    refused(s, (rp_aggregate_t){.entity = "big", .measures = (const char *[]){"sum:n", NULL}},
            RP_EINVAL, "past the range of 64-bit integers", NULL);
    rp_store_close(s);
}

/* The restricted user, as an attacker would use the aggregate: to read what a find hides. */
static void test_roles(void **state)
{
    (void)state;
    rp_store_t *s = fill();
    rp_error_t err = {0};
    json_t *g = J("{\"entities\": {\"sale\": {\"read\": \"own\"}}, \"fields\": {\"sale.margin\": "
                  "\"hidden\"}}");
    assert_int_equal(rp_config_set(s, &test_ctx, "roles.rep", g, &err), 0);
    json_decref(g);
    assert_int_equal(rp_users_add(s, &test_ctx, "sam", "rep", NULL, "a long password", &err), 0);
    rp_access_t *a = NULL;
    assert_int_equal(rp_access_of_user(s, "sam", &a, &err), 0);
    /* Only sam's own records count: ann's first two and cy's. */
    const char *by[] = {"customer", NULL};
    const char *ms[] = {"count", "sum:amount", NULL};
    expect(agg(s, &(rp_aggregate_t){.group_by = by, .measures = ms, .access = a}),
           "[{\"customer\": \"ann\", \"count\": 2, \"sum_amount\": \"15.15\"},"
           "{\"customer\": \"cy\", \"count\": 1, \"sum_amount\": null}]");
    /* A hidden field can be neither measured, grouped by, nor filtered on. */
    const char *const attempts[][2] = {{"sum:margin", NULL}, {"max:margin", NULL},
                                       {"count_distinct:margin", NULL}};
    for (size_t i = 0; i < sizeof attempts / sizeof *attempts; i++)
        refused(s, (rp_aggregate_t){.measures = (const char **)attempts[i], .access = a},
                RP_EPERM, "hidden field", "margin");
    refused(s, (rp_aggregate_t){.group_by = (const char *[]){"margin", NULL}, .access = a},
            RP_EPERM, "hidden field", "margin");
    refused(s, (rp_aggregate_t){.where = J("{\"margin\": {\"gt\": \"2\"}}"), .access = a},
            RP_EPERM, "hidden field", "margin");
    /* A role without read on the entity gets nothing at all. */
    g = J("{\"entities\": {}}");
    assert_int_equal(rp_config_set(s, &test_ctx, "roles.none", g, &err), 0);
    json_decref(g);
    assert_int_equal(rp_users_add(s, &test_ctx, "nia", "none", NULL, "a long password", &err), 0);
    rp_access_t *none = NULL;
    assert_int_equal(rp_access_of_user(s, "nia", &none, &err), 0);
    refused(s, (rp_aggregate_t){.access = none}, RP_EPERM, "sale.read", NULL);
    rp_access_free(none);
    rp_access_free(a);
    rp_store_close(s);
}

static int stop_at_two(json_t *row, void *ud)
{
    (void)row;
    return ++*(int *)ud == 2 ? 42 : 0;
}

static void test_each_stops(void **state)
{
    (void)state;
    rp_store_t *s = fill();
    int n = 0;
    const char *by[] = {"customer", NULL};
    rp_aggregate_t q = {.entity = "sale", .group_by = by};
    assert_int_equal(rp_store_aggregate_each(s, &q, stop_at_two, &n, NULL), 42);
    assert_int_equal(n, 2);
    /* The statement was reset: the next call reads from the start. */
    json_t *out = NULL;
    assert_int_equal(rp_store_aggregate(s, &q, &out, NULL), 0);
    assert_int_equal(json_array_size(out), 3);
    json_decref(out);
    rp_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_measures),      cmocka_unit_test(test_buckets_and_zone),
        cmocka_unit_test(test_order_paging_filters), cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_roles),         cmocka_unit_test(test_each_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
