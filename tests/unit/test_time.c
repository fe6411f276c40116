/*
 * test_time.c — the one time codec (core/text/time.c, rapport/time.h): formatting, dates and
 * date-times read back with offsets and fractions, and the delay parser, at their edges.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "rapport/time.h"

static void check_fmt(int64_t ms, const char *want)
{
    char out[RP_TIME_LEN];
    rp_time_format(ms, out);
    assert_string_equal(out, want);
}

static void check_parse(const char *in, int64_t want)
{
    int64_t ms = 12345;
    rp_error_t err = {0};
    assert_int_equal(rp_time_parse(in, &ms, &err), 0);
    assert_true(ms == want);
}

static void check_bad(const char *in)
{
    int64_t ms = 0;
    rp_error_t err = {0};
    assert_int_equal(rp_time_parse(in, &ms, &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "is not an ISO-8601 date-time"));
    assert_non_null(strstr(err.msg, in));
}

static void test_format(void **state)
{
    (void)state;
    check_fmt(0, "1970-01-01T00:00:00.000Z");
    check_fmt(1767225600123, "2026-01-01T00:00:00.123Z");
    check_fmt(-1, "1969-12-31T23:59:59.999Z");
    check_fmt(951782400000, "2000-02-29T00:00:00.000Z");
    check_fmt(RP_TIME_MIN, "0000-01-01T00:00:00.000Z");
    check_fmt(RP_TIME_MAX, "9999-12-31T23:59:59.999Z");
    assert_true(rp_time_days_from_civil(1970, 1, 1) == 0);
    assert_true(rp_time_days_from_civil(2000, 3, 1) == 11017);
}

static void test_parse(void **state)
{
    (void)state;
    check_parse("2026-01-01T00:00:00.123Z", 1767225600123);
    check_parse("2026-01-01", 1767225600000);
    check_parse("2026-01-01T01:00+01:00", 1767225600000);
    check_parse("2026-01-01 01:30:00+0130", 1767225600000);
    check_parse("2025-12-31T19:00:00-05", 1767225600000);
    check_parse("2026-01-01t00:00:00,1239z", 1767225600123); /* past milliseconds: dropped */
    check_parse("1969-12-31T23:59:59.999Z", -1);
    /* Every written time reads back as itself. */
    for (int64_t step = 1; step <= RP_TIME_MAX; step = step * 3 + 7777) {
        int64_t both[] = {step, -step};
        for (int i = 0; i < 2; i++) {
            if (both[i] < RP_TIME_MIN)
                continue;
            char out[RP_TIME_LEN];
            rp_time_format(both[i], out);
            check_parse(out, both[i]);
        }
    }
}

static void test_parse_refuses(void **state)
{
    (void)state;
    check_bad("");
    check_bad("2026-02-29");         /* not a leap year */
    check_bad("2026-13-01");
    check_bad("2026-01-01Z");        /* a zone without a clock */
    check_bad("2026-01-01T24:00");
    check_bad("2026-01-01T10:00:00.");
    check_bad("2026-01-01T10:00+24:00");
    check_bad("2026-01-01T10:00:00Z junk");
    check_bad("0000-01-01");
    int64_t ms;
    rp_error_t err = {0};
    assert_int_equal(rp_time_parse(NULL, &ms, &err), RP_EINVAL);
    assert_int_equal(rp_time_parse("nope", &ms, NULL), RP_EINVAL);
}

static void test_parse_date(void **state)
{
    (void)state;
    int y = 0, m = 0, d = 0;
    assert_int_equal(rp_time_parse_date("2024-02-29", &y, &m, &d), 0);
    assert_int_equal(y * 10000 + m * 100 + d, 20240229);
    assert_int_equal(rp_time_parse_date("2023-02-29", &y, &m, &d), RP_EINVAL);
    assert_int_equal(rp_time_parse_date("2024-02-29T00:00", &y, &m, &d), RP_EINVAL);
    assert_int_equal(rp_time_parse_date("2024-2-29", &y, &m, &d), RP_EINVAL);
    assert_int_equal(rp_time_parse_date(NULL, &y, &m, &d), RP_EINVAL);
}

static void test_delay(void **state)
{
    (void)state;
    int64_t ms = 0;
    rp_error_t err = {0};
    assert_int_equal(rp_parse_delay("1h30m", &ms, &err), 0);
    assert_true(ms == 5400000);
    assert_int_equal(rp_parse_delay("500ms", &ms, &err), 0);
    assert_true(ms == 500);
    assert_int_equal(rp_parse_delay("2w1d", &ms, &err), 0);
    assert_true(ms == 15 * INT64_C(86400000));
    assert_int_equal(rp_parse_delay("3x", &ms, &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "delay \"3x\" at position 1: \"3\" needs a unit"));
    assert_int_equal(rp_parse_delay("-1h", &ms, &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "expected a number"));
    assert_int_equal(rp_parse_delay("", &ms, &err), RP_EINVAL);
    assert_int_equal(rp_parse_delay("99999999999999999w", &ms, &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "is too long"));
}


static int64_t at(const char *iso)
{
    int64_t ms;
    assert_int_equal(rp_time_parse(iso, &ms, NULL), 0);
    return ms;
}

/* Offsets checked against the published rules: Berlin CET/CEST (last Sunday of March and
 * October, 01:00 UTC), New York EST/EDT (second Sunday of March 07:00 UTC, first Sunday of
 * November 06:00 UTC), Kolkata +05:30 without DST, Tehran +03:30. */
static void test_zone_offsets(void **state)
{
    (void)state;
    rp_zone_t *z = NULL;
    assert_int_equal(rp_zone_open("Europe/Berlin", &z, NULL), 0);
    assert_string_equal(rp_zone_name(z), "Europe/Berlin");
    assert_int_equal(rp_zone_offset(z, at("2026-01-15T12:00:00Z")), 3600);
    assert_int_equal(rp_zone_offset(z, at("2026-03-29T00:59:59Z")), 3600);
    assert_int_equal(rp_zone_offset(z, at("2026-03-29T01:00:00Z")), 7200);
    assert_int_equal(rp_zone_offset(z, at("2026-10-25T00:59:59Z")), 7200);
    assert_int_equal(rp_zone_offset(z, at("2026-10-25T01:00:00Z")), 3600);
    rp_zone_close(z);
    assert_int_equal(rp_zone_open("America/New_York", &z, NULL), 0);
    assert_int_equal(rp_zone_offset(z, at("2026-03-08T06:59:59Z")), -5 * 3600);
    assert_int_equal(rp_zone_offset(z, at("2026-03-08T07:00:00Z")), -4 * 3600);
    assert_int_equal(rp_zone_offset(z, at("2026-11-01T05:59:59Z")), -4 * 3600);
    assert_int_equal(rp_zone_offset(z, at("2026-11-01T06:00:00Z")), -5 * 3600);
    rp_zone_close(z);
    assert_int_equal(rp_zone_open("Asia/Kolkata", &z, NULL), 0);
    assert_int_equal(rp_zone_offset(z, at("2026-06-01T00:00:00Z")), 5 * 3600 + 1800);
    rp_zone_close(z);
    assert_int_equal(rp_zone_open("Asia/Tehran", &z, NULL), 0);
    assert_int_equal(rp_zone_offset(z, at("2025-01-01T00:00:00Z")), 3 * 3600 + 1800);
    rp_zone_close(z);
    const char *utc[] = {NULL, "", "UTC", "Etc/UTC"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(rp_zone_open(utc[i], &z, NULL), 0);
        assert_string_equal(rp_zone_name(z), "UTC");
        assert_int_equal(rp_zone_offset(z, at("2026-07-01T00:00:00Z")), 0);
        rp_zone_close(z);
    }
    assert_int_equal(rp_zone_offset(NULL, 0), 0);
}

static void test_zone_refuses(void **state)
{
    (void)state;
    const char *bad[] = {"../../etc/passwd", "/etc/localtime", "Europe/../../etc/passwd",
                         "Europe//Berlin", "Europe/", ".hidden", "Mars/Olympus_Mons",
                         "Europe/Berlin\n", "zone.tab", "-Foo", NULL};
    for (int i = 0; bad[i]; i++) {
        rp_zone_t *z = (rp_zone_t *)1;
        rp_error_t err = {0};
        assert_int_equal(rp_zone_open(bad[i], &z, &err), RP_EINVAL);
        assert_null(z);
        assert_non_null(strstr(err.msg, "zone"));
    }
}

static void test_buckets(void **state)
{
    (void)state;
    char b[RP_BUCKET_LEN];
    assert_int_equal(rp_time_bucket_unit("month"), RP_BUCKET_MONTH);
    assert_int_equal(rp_time_bucket_unit("fortnight"), -1);
    int64_t t = at("2026-01-01T02:30:00Z"); /* a Thursday */
    assert_int_equal(rp_time_bucket(t, RP_BUCKET_DAY, NULL, b), 0);
    assert_string_equal(b, "2026-01-01");
    assert_int_equal(rp_time_bucket(t, RP_BUCKET_WEEK, NULL, b), 0);
    assert_string_equal(b, "2025-12-29");
    assert_int_equal(rp_time_bucket(t, RP_BUCKET_MONTH, NULL, b), 0);
    assert_string_equal(b, "2026-01");
    assert_int_equal(rp_time_bucket(t, RP_BUCKET_QUARTER, NULL, b), 0);
    assert_string_equal(b, "2026-Q1");
    assert_int_equal(rp_time_bucket(t, RP_BUCKET_YEAR, NULL, b), 0);
    assert_string_equal(b, "2026");
    /* In New York it is still New Year's Eve of 2025. */
    rp_zone_t *ny = NULL;
    assert_int_equal(rp_zone_open("America/New_York", &ny, NULL), 0);
    assert_int_equal(rp_time_bucket(t, RP_BUCKET_YEAR, ny, b), 0);
    assert_string_equal(b, "2025");
    assert_int_equal(rp_time_bucket(t, RP_BUCKET_QUARTER, ny, b), 0);
    assert_string_equal(b, "2025-Q4");
    assert_int_equal(rp_time_bucket(t, RP_BUCKET_DAY, ny, b), 0);
    assert_string_equal(b, "2025-12-31");
    rp_zone_close(ny);
    /* Weeks start on Monday, including a Monday itself and a Sunday. */
    assert_int_equal(rp_time_bucket(at("2026-01-05T00:00:00Z"), RP_BUCKET_WEEK, NULL, b), 0);
    assert_string_equal(b, "2026-01-05");
    assert_int_equal(rp_time_bucket(at("2026-01-11T23:59:59Z"), RP_BUCKET_WEEK, NULL, b), 0);
    assert_string_equal(b, "2026-01-05");
    assert_int_equal(rp_time_bucket(at("1969-12-31T23:00:00Z"), RP_BUCKET_WEEK, NULL, b), 0);
    assert_string_equal(b, "1969-12-29");
    assert_int_equal(rp_time_bucket_days(rp_time_days_from_civil(2024, 2, 29), RP_BUCKET_QUARTER,
                                         b), 0);
    assert_string_equal(b, "2024-Q1");
    assert_int_equal(rp_time_bucket(t, 9, NULL, b), RP_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_refuses),
        cmocka_unit_test(test_parse_date),
        cmocka_unit_test(test_delay),
        cmocka_unit_test(test_zone_offsets),
        cmocka_unit_test(test_zone_refuses),
        cmocka_unit_test(test_buckets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
