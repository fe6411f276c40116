/*
 * test_cron.c — cron expressions (core/sched/cron.c): parsing into bitsets, refusing malformed
 * input with a field and a position, next-fire times across month ends, leap years and daylight
 * saving, and catch-up after downtime. Every expected time was checked outside this code, with
 * python3 zoneinfo and `TZ=... date`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rapport/cron.h"

/* "2026-03-29T01:00:00Z" or "2026-01-01T00:00:30.500Z" as ms since the epoch. */
static int64_t ms(const char *iso)
{
    struct tm tm = {0};
    int frac = 0;

    if (sscanf(iso, "%d-%d-%dT%d:%d:%d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &frac) < 6)
        fail_msg("bad ISO time in test: %s", iso);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + frac;
}

/* The reverse of ms(), whole seconds, for failure messages. */
static const char *iso(char *buf, size_t cap, int64_t t)
{
    time_t s = (time_t)(t / 1000);
    struct tm tm;

    gmtime_r(&s, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

static rp_cron_t parse_ok(const char *expr, const char *tz)
{
    rp_cron_t c;
    rp_error_t err = {0};

    if (rp_cron_parse(expr, tz, &c, &err) != 0)
        fail_msg("parse \"%s\": %s", expr, err.msg);
    return c;
}

/* One row: the fires that follow one another from @p from. */
typedef struct next_case {
    const char *expr;
    const char *tz;
    const char *from;
    const char *want[6]; /* successive fire times, up to a NULL */
} next_case_t;

static const next_case_t next_cases[] = {
    /* Lists, ranges and steps. */
    {"*/15 * * * *",
     NULL,
     "2026-01-01T00:00:00Z",
     {"2026-01-01T00:15:00Z", "2026-01-01T00:30:00Z", "2026-01-01T00:45:00Z",
      "2026-01-01T01:00:00Z"}},
    {"10-50/20 * * * *",
     NULL,
     "2026-01-01T00:00:00Z",
     {"2026-01-01T00:10:00Z", "2026-01-01T00:30:00Z", "2026-01-01T00:50:00Z",
      "2026-01-01T01:10:00Z"}},
    {"1,5 * * * *",
     NULL,
     "2026-01-01T00:03:00Z",
     {"2026-01-01T00:05:00Z", "2026-01-01T01:01:00Z", "2026-01-01T01:05:00Z"}},
    {"0 9-17/4 * * *",
     NULL,
     "2026-01-01T00:00:00Z",
     {"2026-01-01T09:00:00Z", "2026-01-01T13:00:00Z", "2026-01-01T17:00:00Z",
      "2026-01-02T09:00:00Z"}},
    {"0,30 8-9,17 * * *",
     "",
     "2026-01-01T08:15:00Z",
     {"2026-01-01T08:30:00Z", "2026-01-01T09:00:00Z", "2026-01-01T09:30:00Z",
      "2026-01-01T17:00:00Z", "2026-01-01T17:30:00Z", "2026-01-02T08:00:00Z"}},
    /* Strictly after, to the millisecond. */
    {"* * * * *",
     "UTC",
     "2026-01-01T00:00:30.500Z",
     {"2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z"}},
    {"* * * * *", NULL, "2026-01-01T00:00:59.999Z", {"2026-01-01T00:01:00Z"}},
    /* Names, any case. */
    {"0 12 1 jan,Jul *",
     NULL,
     "2026-01-15T00:00:00Z",
     {"2026-07-01T12:00:00Z", "2027-01-01T12:00:00Z", "2027-07-01T12:00:00Z"}},
    {"30 8 * * mon-FRI",
     NULL,
     "2026-01-02T09:00:00Z", /* a Friday, after 08:30 */
     {"2026-01-05T08:30:00Z", "2026-01-06T08:30:00Z", "2026-01-07T08:30:00Z",
      "2026-01-08T08:30:00Z", "2026-01-09T08:30:00Z", "2026-01-12T08:30:00Z"}},
    {"0 0 1 feb-apr/2 *",
     NULL,
     "2026-01-01T00:00:00Z",
     {"2026-02-01T00:00:00Z", "2026-04-01T00:00:00Z", "2027-02-01T00:00:00Z"}},
    /* Sunday is 0, 7 and SUN; a weekday range may end in 7 or SUN. */
    {"0 0 * * 0", NULL, "2026-01-01T00:00:00Z", {"2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"}},
    {"0 0 * * 7", NULL, "2026-01-01T00:00:00Z", {"2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"}},
    {"0 0 * * sun", NULL, "2026-01-01T00:00:00Z", {"2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"}},
    {"0 0 * * 5-7",
     NULL,
     "2026-01-01T00:00:00Z",
     {"2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z",
      "2026-01-09T00:00:00Z"}},
    {"0 0 * * FRI-SUN",
     NULL,
     "2026-01-01T00:00:00Z",
     {"2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z",
      "2026-01-09T00:00:00Z"}},
    /* Macros. */
    {"@hourly", NULL, "2026-01-01T00:00:00.001Z", {"2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z"}},
    {"@daily", NULL, "2026-01-01T00:00:00Z", {"2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"}},
    {"  @midnight ", NULL, "2026-01-01T00:00:00Z", {"2026-01-02T00:00:00Z"}},
    {"@weekly", NULL, "2026-01-01T00:00:00Z", {"2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"}},
    {"@monthly", NULL, "2026-01-01T00:00:00Z", {"2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"}},
    {"@yearly", NULL, "2026-01-01T00:00:00Z", {"2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"}},
    {"@ANNUALLY", NULL, "2026-01-01T00:00:00Z", {"2027-01-01T00:00:00Z"}},
    /* Vixie: both day fields restricted → either matches (2026-01-13 is a Tuesday). */
    {"0 0 13 * FRI",
     NULL,
     "2026-01-01T00:00:00Z",
     {"2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z", "2026-01-13T00:00:00Z",
      "2026-01-16T00:00:00Z"}},
    {"0 0 13 * *", NULL, "2026-01-01T00:00:00Z", {"2026-01-13T00:00:00Z", "2026-02-13T00:00:00Z"}},
    {"0 0 * * fri", NULL, "2026-01-01T00:00:00Z", {"2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z"}},
    /* …and "*\/2" counts as '*', so both must match: odd days that are Fridays. */
    {"0 0 */2 * FRI",
     NULL,
     "2026-01-01T00:00:00Z",
     {"2026-01-09T00:00:00Z", "2026-01-23T00:00:00Z", "2026-02-13T00:00:00Z",
      "2026-02-27T00:00:00Z"}},
    /* Month ends and leap years. */
    {"0 0 31 * *",
     NULL,
     "2026-01-31T00:00:00Z",
     {"2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z",
      "2026-08-31T00:00:00Z", "2026-10-31T00:00:00Z", "2026-12-31T00:00:00Z"}},
    {"0 0 30 * *", NULL, "2026-01-30T00:00:00Z", {"2026-03-30T00:00:00Z"}},
    {"59 23 31 12 *",
     NULL,
     "2026-06-01T00:00:00Z",
     {"2026-12-31T23:59:00Z", "2027-12-31T23:59:00Z"}},
    {"0 0 29 2 *", NULL, "2025-01-01T00:00:00Z", {"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"}},
    {"0 0 29 2 *", NULL, "2096-03-01T00:00:00Z", {"2104-02-29T00:00:00Z"}}, /* 2100 is no leap */
    {"0 0 29 2 *", NULL, "2000-01-01T00:00:00Z", {"2000-02-29T00:00:00Z"}}, /* 2000 is */

    /* Europe/Berlin spring-forward 2026-03-29: 02:00 CET → 03:00 CEST at 01:00Z. 02:30 does
     * not exist and fires at 03:00 CEST; the day after it is 02:30 CEST = 00:30Z. */
    {"30 2 * * *",
     "Europe/Berlin",
     "2026-03-28T00:00:00Z",
     {"2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"}},
    {"0,30 2 * * *",
     "Europe/Berlin",
     "2026-03-29T00:00:00Z", /* two skipped slots, one fire */
     {"2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z", "2026-03-30T00:30:00Z"}},
    {"0 3 * * *",
     "Europe/Berlin",
     "2026-03-28T12:00:00Z", /* 03:00 is the first after the gap */
     {"2026-03-29T01:00:00Z", "2026-03-30T01:00:00Z"}},
    /* Fall-back 2026-10-25: 03:00 CEST → 02:00 CET at 01:00Z; 02:30 fires only as CEST. */
    {"30 2 * * *",
     "Europe/Berlin",
     "2026-10-24T00:00:00Z",
     {"2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"}},
    {"30 2 * * *", "Europe/Berlin", "2026-10-25T00:30:00Z", {"2026-10-26T01:30:00Z"}},
    {"30 2 * * *",
     "Europe/Berlin",
     "2026-10-25T01:15:00Z", /* inside the repeated hour */
     {"2026-10-26T01:30:00Z"}},
    /* America/New_York fall-back 2026-11-01: 01:30 fires once, as EDT (05:30Z). */
    {"30 1 * * *",
     "America/New_York",
     "2026-10-31T00:00:00Z",
     {"2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"}},
    /* …and spring-forward 2026-03-08: 02:00 does not exist, fires at 03:00 EDT (07:00Z). */
    {"0 2 * * *",
     "America/New_York",
     "2026-03-07T12:00:00Z",
     {"2026-03-08T07:00:00Z", "2026-03-09T06:00:00Z"}},
    /* Hourly across both Berlin transitions: every real hour in spring, no second 02:00 in
     * autumn. */
    {"0 * * * *",
     "Europe/Berlin",
     "2026-03-28T22:30:00Z",
     {"2026-03-28T23:00:00Z", "2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z",
      "2026-03-29T02:00:00Z"}},
    {"0 * * * *",
     "Europe/Berlin",
     "2026-10-24T23:30:00Z",
     {"2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z", "2026-10-25T03:00:00Z"}},
    {"0 * * * *",
     "America/New_York",
     "2026-11-01T04:30:00Z",
     {"2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z", "2026-11-01T08:00:00Z"}},
    {"*/15 * * * *",
     "Europe/Berlin",
     "2026-03-29T00:30:00Z",
     {"2026-03-29T00:45:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:15:00Z"}},
    /* Hourly-style gap slots are dropped, not caught up: 01:30 CET, then 03:30 CEST. */
    {"30 * * * *",
     "Europe/Berlin",
     "2026-03-29T00:00:00Z",
     {"2026-03-29T00:30:00Z", "2026-03-29T01:30:00Z"}},
    {"*/30 * * * *",
     "Europe/Berlin",
     "2026-10-25T00:00:00Z",
     {"2026-10-25T00:30:00Z", "2026-10-25T02:00:00Z", "2026-10-25T02:30:00Z"}},
    {"0 0 * * *",
     "Europe/Berlin",
     "2026-01-01T00:00:00Z",
     {"2026-01-01T23:00:00Z", "2026-01-02T23:00:00Z"}},
    /* Asia/Tehran: no DST since 2022, +03:30 all year (it had +04:30 in summer 2021). */
    {"0 9 * * *",
     "Asia/Tehran",
     "2026-03-20T00:00:00Z",
     {"2026-03-20T05:30:00Z", "2026-03-21T05:30:00Z", "2026-03-22T05:30:00Z"}},
    {"0 9 * * *", "Asia/Tehran", "2026-06-30T12:00:00Z", {"2026-07-01T05:30:00Z"}},
    {"0 9 * * *", "Asia/Tehran", "2021-06-30T12:00:00Z", {"2021-07-01T04:30:00Z"}},
    /* Australia/Lord_Howe moves 30 minutes (02:00 → 02:30 at 2026-10-03T15:30Z). */
    {"15 2 * * *",
     "Australia/Lord_Howe",
     "2026-10-03T00:00:00Z",
     {"2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z"}},
    /* America/Santiago changes at midnight: 2026-09-06 00:00 → 01:00 (04:00Z), and
     * 2026-04-05 00:00 → 2026-04-04 23:00 (03:00Z), so 23:30 on 04-04 happens twice. */
    {"0 0 * * *",
     "America/Santiago",
     "2026-09-05T12:00:00Z",
     {"2026-09-06T04:00:00Z", "2026-09-07T03:00:00Z"}},
    {"30 23 * * *",
     "America/Santiago",
     "2026-04-04T12:00:00Z",
     {"2026-04-05T02:30:00Z", "2026-04-06T03:30:00Z"}},
    /* Pacific/Apia skipped 2011-12-30 altogether: 24:00 on the 29th (-10) was 00:00 on the 31st
     * (+14), at 2011-12-30T10:00Z. */
    {"0 12 30 12 *",
     "Pacific/Apia",
     "2011-12-29T00:00:00Z",
     {"2011-12-30T10:00:00Z", "2012-12-29T22:00:00Z"}},
};

static void test_next_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof next_cases / sizeof next_cases[0]; i++) {
        const next_case_t *k = &next_cases[i];
        rp_cron_t c = parse_ok(k->expr, k->tz);
        int64_t t = ms(k->from);

        for (int j = 0; j < 6 && k->want[j] != NULL; j++) {
            rp_error_t err = {0};
            int64_t next = 0;
            char got[32];

            if (rp_cron_next(&c, t, &next, &err) != 0)
                fail_msg("\"%s\" %s from %s: %s", k->expr, k->tz ? k->tz : "UTC", k->from, err.msg);
            if (next != ms(k->want[j]))
                fail_msg("\"%s\" %s from %s, fire %d: got %s, want %s", k->expr,
                         k->tz ? k->tz : "UTC", k->from, j + 1, iso(got, sizeof got, next),
                         k->want[j]);
            t = next;
        }
    }
}

static void test_bitsets(void **state)
{
    rp_cron_t c;

    (void)state;
    c = parse_ok(" 0,30\t9-17/4 1,15 JAN-mar mon-fri ", NULL);
    assert_true(c.minute == ((UINT64_C(1) << 0) | (UINT64_C(1) << 30)));
    assert_int_equal(c.hour, (1u << 9) | (1u << 13) | (1u << 17));
    assert_int_equal(c.mday, (1u << 1) | (1u << 15));
    assert_int_equal(c.month, 0xE);
    assert_int_equal(c.wday, 0x3E);
    assert_false(c.mday_star);
    assert_false(c.wday_star);
    assert_string_equal(c.tz, "");
    assert_string_equal(c.expr, " 0,30\t9-17/4 1,15 JAN-mar mon-fri ");

    c = parse_ok("* * */2 * 7", "UTC");
    assert_true(c.minute == (UINT64_C(1) << 60) - 1);
    assert_int_equal(c.hour, 0xFFFFFF);
    assert_int_equal(c.mday, 0xAAAAAAAA); /* 1, 3, …, 31 */
    assert_int_equal(c.month, 0x1FFE);
    assert_int_equal(c.wday, 0x01); /* 7 is Sunday, bit 0 */
    assert_true(c.mday_star);
    assert_false(c.wday_star);
    assert_string_equal(c.tz, "");

    c = parse_ok("@weekly", "Europe/Berlin");
    assert_true(c.minute == 1);
    assert_int_equal(c.hour, 1);
    assert_int_equal(c.mday, 0xFFFFFFFE);
    assert_int_equal(c.wday, 1);
    assert_true(c.mday_star);
    assert_false(c.wday_star);
    assert_string_equal(c.tz, "Europe/Berlin");
    assert_string_equal(c.expr, "@weekly");

    c = parse_ok("0 0 * * 0-7", NULL);
    assert_int_equal(c.wday, 0x7F);
    c = parse_ok("0 0 * * */3", NULL); /* over 0–7: 0, 3, 6 */
    assert_int_equal(c.wday, (1u << 0) | (1u << 3) | (1u << 6));
}

/* One malformed expression and where the message must point. */
typedef struct bad_case {
    const char *expr;
    int field; /* 1–5, or 0 when the message names no field */
    int pos;   /* 1-based */
} bad_case_t;

static const bad_case_t bad_cases[] = {
    {"*/0 * * * *", 1, 1},
    {"60 * * * *", 1, 1},
    {"* 24 * * *", 2, 3},
    {"* * 0 * *", 3, 5},
    {"* * 32 * *", 3, 5},
    {"* * * 13 *", 4, 7},
    {"* * * 0 *", 4, 7},
    {"* * * * 8", 5, 9},
    {"99999999999999999999 * * * *", 1, 1},
    {"* * * *", 5, 8},
    {"*", 2, 2},
    {"* * * * * *", 0, 11},
    {"* * * * * 2026", 0, 11},
    {"", 0, 1},
    {"   \t", 0, 1},
    {"1,,2 * * * *", 1, 3},
    {"1, * * * *", 1, 3},
    {",1 * * * *", 1, 1},
    {"5-1 * * * *", 1, 1},
    {"1-2-3 * * * *", 1, 4},
    {"*/ * * * *", 1, 3},
    {"*/x * * * *", 1, 3},
    {"*/61 * * * *", 1, 1},
    {"5/15 * * * *", 1, 1},
    {"*/5x * * * *", 1, 4},
    {"** * * * *", 1, 2},
    {"1.5 * * * *", 1, 2},
    {"-1 * * * *", 1, 1},
    {"a * * * *", 1, 1},
    {"* * * JANUARY *", 4, 7},
    {"* * * JAN-MON *", 4, 11},
    {"* * * * MON-FOO", 5, 13},
    {"* * * * SUN-MON/9", 5, 9},
    {"* * * * FRI-MON", 5, 9},
    {"* * mon * *", 3, 5},
    {"* * * * 1\n", 5, 10},
    {"* * * * 1;", 5, 10},
    {"@reboot", 0, 1},
    {"@daily x", 0, 8},
    {"@daily0", 0, 1},
    {"@", 0, 1},
};

static void check_bad(const char *expr, int field, int pos)
{
    rp_cron_t c;
    rp_error_t err = {0};
    char want[64];

    if (rp_cron_parse(expr, NULL, &c, &err) != RP_EINVAL)
        fail_msg("\"%s\" was accepted", expr);
    assert_int_equal(err.code, RP_EINVAL);
    assert_int_equal(err.msgcode, RP_C_CRON);
    assert_true(strncmp(err.msg, "RP-E1601: cron \"", 16) == 0);
    snprintf(want, sizeof want, " at position %d: ", pos);
    if (strstr(err.msg, want) == NULL)
        fail_msg("\"%s\": want%s got %s", expr, want, err.msg);
    if (field > 0) {
        snprintf(want, sizeof want, "\": field %d (", field);
        if (strstr(err.msg, want) == NULL)
            fail_msg("\"%s\": want field %d, got %s", expr, field, err.msg);
    } else if (strstr(err.msg, ": field ") != NULL) {
        fail_msg("\"%s\": want no field, got %s", expr, err.msg);
    }
}

static void test_malformed(void **state)
{
    rp_cron_t c;
    rp_error_t err = {0};
    char long_expr[300];

    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++)
        check_bad(bad_cases[i].expr, bad_cases[i].field, bad_cases[i].pos);

    assert_int_equal(rp_cron_parse("*/0 * * * *", NULL, &c, &err), RP_EINVAL);
    assert_string_equal(err.msg, "RP-E1601: cron \"*/0 * * * *\": field 1 (minute) at "
                                 "position 1: step must be at least 1");
    assert_int_equal(rp_cron_parse("* * * * * *", NULL, &c, &err), RP_EINVAL);
    assert_string_equal(err.msg, "RP-E1601: cron \"* * * * * *\" at position 11: unexpected "
                                 "text after the five fields");

    /* 256 characters are fine; 257 are refused at position 257. */
    memset(long_expr, ' ', sizeof long_expr);
    memcpy(long_expr, "* * * * *", 9);
    long_expr[256] = '\0';
    assert_int_equal(rp_cron_parse(long_expr, NULL, &c, &err), 0);
    long_expr[256] = ' ';
    long_expr[257] = '\0';
    check_bad(long_expr, 0, 257);
    assert_int_equal(rp_cron_parse(long_expr, NULL, &c, &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "longer than 256 characters"));

    assert_int_equal(rp_cron_parse(NULL, NULL, &c, &err), RP_EINVAL);
}

static void test_time_zones(void **state)
{
    static const char *const bad[] = {
        "Europe/Berln",
        "Mars/Olympus",
        "Europe",
        "Europe/",
        "/etc/passwd",
        "../../etc/passwd",
        "Europe/../../../etc/passwd",
        "right/UTC",
        "zone.tab",
        "Europe/Berlin\n",
        "Europe/Berlin_With_A_Name_Far_Too_Long_To_Be_Any_Zone_Under_The_Sun_At_All",
    };
    rp_cron_t c;
    rp_error_t err = {0};

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (rp_cron_parse("0 0 * * *", bad[i], &c, &err) != RP_EINVAL)
            fail_msg("time zone \"%s\" was accepted", bad[i]);
        assert_int_equal(err.msgcode, RP_C_CRON);
        assert_non_null(strstr(err.msg, "time zone"));
    }
    assert_int_equal(rp_cron_parse("0 0 * * *", "Europe/Berln", &c, &err), RP_EINVAL);
    assert_string_equal(err.msg, "RP-E1601: cron time zone \"Europe/Berln\" is unknown (no zone "
                                 "file /usr/share/zoneinfo/Europe/Berln)");

    c = parse_ok("0 0 * * *", "America/Argentina/Buenos_Aires");
    assert_string_equal(c.tz, "America/Argentina/Buenos_Aires");
    c = parse_ok("0 0 * * *", "Etc/GMT+5"); /* POSIX sign: UTC−5 */
    int64_t next = 0;
    assert_int_equal(rp_cron_next(&c, ms("2026-01-01T00:00:00Z"), &next, &err), 0);
    assert_true(next == ms("2026-01-01T05:00:00Z"));
}

/* The caller's TZ (or its absence) is what it was after a zoned call. */
static void test_tz_restored(void **state)
{
    rp_cron_t c = parse_ok("30 2 * * *", "Europe/Berlin");
    rp_error_t err = {0};
    int64_t next, fire;

    (void)state;
    setenv("TZ", "America/Chicago", 1);
    tzset();
    assert_int_equal(rp_cron_next(&c, ms("2026-03-28T00:00:00Z"), &next, &err), 0);
    assert_string_equal(getenv("TZ"), "America/Chicago");
    assert_int_equal(rp_cron_missed(&c, 0, ms("2026-03-28T00:00:00Z"), &fire, &err), 1);
    assert_string_equal(getenv("TZ"), "America/Chicago");

    unsetenv("TZ");
    tzset();
    assert_int_equal(rp_cron_next(&c, ms("2026-03-28T00:00:00Z"), &next, &err), 0);
    assert_null(getenv("TZ"));
}

static void test_never(void **state)
{
    static const char *const never[] = {"0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 31 feb *"};
    rp_error_t err = {0};
    int64_t next = 42, fire = 42;

    (void)state;
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++) {
        rp_cron_t c = parse_ok(never[i], "Europe/Berlin");

        assert_int_equal(rp_cron_next(&c, ms("2026-01-01T00:00:00Z"), &next, &err), RP_ENOTFOUND);
        assert_int_equal(err.msgcode, RP_C_CRON);
        assert_non_null(strstr(err.msg, "never fires"));
        assert_int_equal(
            rp_cron_missed(&c, ms("2020-01-01T00:00:00Z"), ms("2026-01-01T00:00:00Z"), &fire, &err),
            0);
    }
    assert_true(next == 42 && fire == 42);
    /* Vixie OR rescues a day that never comes: every Monday of February instead. */
    rp_cron_t c = parse_ok("0 0 30 2 mon", NULL);
    assert_int_equal(rp_cron_next(&c, ms("2026-01-01T00:00:00Z"), &next, &err), 0);
    assert_true(next == ms("2026-02-02T00:00:00Z")); /* February only */
}

static void test_range_and_null(void **state)
{
    rp_cron_t c = parse_ok("@daily", NULL);
    rp_error_t err = {0};
    int64_t t;

    (void)state;
    assert_int_equal(rp_cron_next(&c, RP_CRON_MAX_MS + 1, &t, &err), RP_EINVAL);
    assert_int_equal(rp_cron_next(&c, RP_CRON_MIN_MS - 1, &t, &err), RP_EINVAL);
    assert_int_equal(rp_cron_next(NULL, 0, &t, &err), RP_EINVAL);
    assert_int_equal(rp_cron_next(&c, 0, NULL, &err), RP_EINVAL);
    assert_int_equal(rp_cron_missed(&c, 0, RP_CRON_MAX_MS + 1, &t, &err), RP_EINVAL);
    assert_int_equal(rp_cron_next(&c, RP_CRON_MIN_MS, &t, NULL), 0);
    assert_true(t == ms("1900-01-02T00:00:00Z"));
    assert_int_equal(rp_cron_next(&c, RP_CRON_MAX_MS, &t, NULL), 0);
    assert_true(t == ms("9999-12-31T23:59:59Z") + 1000); /* 10000-01-01 */
}

/* One catch-up case: the latest slot in (last, now], or NULL for none. */
typedef struct missed_case {
    const char *expr;
    const char *tz;
    const char *last;
    const char *now;
    const char *want;
} missed_case_t;

static const missed_case_t missed_cases[] = {
    /* Three daily slots missed (01-02, 01-03, 01-04 at 03:00): one fire, the latest. */
    {"0 3 * * *", NULL, "2026-01-01T03:00:00Z", "2026-01-04T12:00:00Z", "2026-01-04T03:00:00Z"},
    {"0 3 * * *", NULL, "2026-01-04T03:00:00Z", "2026-01-04T12:00:00Z", NULL},
    {"0 3 * * *", NULL, "2026-01-04T02:00:00Z", "2026-01-04T03:00:00Z", "2026-01-04T03:00:00Z"},
    {"0 3 * * *", NULL, "2026-01-04T03:00:00Z", "2026-01-04T03:00:00Z", NULL},
    {"0 3 * * *", NULL, "2026-01-05T00:00:00Z", "2026-01-04T00:00:00Z", NULL},
    /* A year down on an every-minute schedule: the minute just begun. */
    {"* * * * *", NULL, "2025-01-01T00:00:00Z", "2026-01-01T12:34:56.789Z", "2026-01-01T12:34:00Z"},
    {"0 0 29 2 *", NULL, "2020-03-01T00:00:00Z", "2026-01-01T00:00:00Z", "2024-02-29T00:00:00Z"},
    {"0 0 29 2 *", NULL, "2024-03-01T00:00:00Z", "2026-01-01T00:00:00Z", NULL},
    /* Zoned: the Berlin fall-back day, present inside the repeated hour. */
    {"30 2 * * *", "Europe/Berlin", "2026-10-22T00:30:00Z", "2026-10-25T01:45:00Z",
     "2026-10-25T00:30:00Z"},
    {"*/15 * * * *", "Europe/Berlin", "2026-10-25T00:10:00Z", "2026-10-25T01:20:00Z",
     "2026-10-25T00:45:00Z"},
    {"30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z",
     "2026-03-29T01:00:00Z"},
    {"30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", "2026-03-29T00:59:59.999Z", NULL},
    {"30 1 * * *", "America/New_York", "2026-10-01T00:00:00Z", "2026-11-01T06:59:00Z",
     "2026-11-01T05:30:00Z"},
};

static void test_missed(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof missed_cases / sizeof missed_cases[0]; i++) {
        const missed_case_t *k = &missed_cases[i];
        rp_cron_t c = parse_ok(k->expr, k->tz);
        rp_error_t err = {0};
        int64_t fire = -1;
        char got[32];
        int rc = rp_cron_missed(&c, ms(k->last), ms(k->now), &fire, &err);

        if (rc < 0)
            fail_msg("\"%s\": %s", k->expr, err.msg);
        if (k->want == NULL && rc != 0)
            fail_msg("\"%s\" (%s, %s]: got %s, want none", k->expr, k->last, k->now,
                     iso(got, sizeof got, fire));
        if (k->want != NULL && (rc != 1 || fire != ms(k->want)))
            fail_msg("\"%s\" (%s, %s]: got %s, want %s", k->expr, k->last, k->now,
                     rc == 1 ? iso(got, sizeof got, fire) : "none", k->want);
    }
}

/* rp_cron_missed() agrees with stepping rp_cron_next() slot by slot, for presents spread over
 * the Berlin and New York fall-back days. */
static void test_missed_matches_next(void **state)
{
    static const char *const exprs[] = {"*/7 * * * *", "0 * * * *", "30 2 * * *", "0,30 1-3 * * *",
                                        "45 23 * * SUN"};
    static const char *const zones[] = {"", "Europe/Berlin", "America/New_York"};
    const int64_t start = ms("2026-10-24T20:00:00Z"), end = start + 36 * 3600000LL;

    (void)state;
    for (size_t i = 0; i < sizeof exprs / sizeof exprs[0]; i++) {
        for (size_t j = 0; j < sizeof zones / sizeof zones[0]; j++) {
            rp_cron_t c = parse_ok(exprs[i], zones[j]);
            int64_t slots[400], t = start;
            int n = 0, k = 0;

            while (n < 400 && rp_cron_next(&c, t, &t, NULL) == 0 && t <= end)
                slots[n++] = t;
            assert_true(n < 400);
            for (int64_t now = start; now < end; now += 17 * 60000 + 1234) {
                int64_t fire = -1;
                int rc = rp_cron_missed(&c, start, now, &fire, NULL);

                while (k < n && slots[k] <= now)
                    k++;
                assert_int_equal(rc, k > 0 ? 1 : 0);
                if (k > 0 && fire != slots[k - 1])
                    fail_msg("\"%s\" %s up to %lld: got %lld, want %lld", exprs[i], zones[j],
                             (long long)now, (long long)fire, (long long)slots[k - 1]);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_next_table),          cmocka_unit_test(test_bitsets),
        cmocka_unit_test(test_malformed),           cmocka_unit_test(test_time_zones),
        cmocka_unit_test(test_tz_restored),         cmocka_unit_test(test_never),
        cmocka_unit_test(test_range_and_null),      cmocka_unit_test(test_missed),
        cmocka_unit_test(test_missed_matches_next),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
