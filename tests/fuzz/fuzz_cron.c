/*
 * fuzz_cron.c — libFuzzer target for rp_cron_parse() and rp_cron_next(): any bytes either parse
 * into in-range, non-empty bitsets or are refused with RP-E1601 and a position inside the input;
 * and from a few fixed instants the next fire is strictly later, lands on a minute whose UTC
 * fields the bitsets allow, has no matching minute before it, and agrees with rp_cron_missed().
 * Build with clang -fsanitize=fuzzer,address; with -DRP_FUZZ_STANDALONE it instead gets a main()
 * that runs each file named on the command line once (for compilers without libFuzzer).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rapport/cron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MIN_MS 60000LL
#define DAY_MS 86400000LL

/* Whether the UTC day containing @p ms is allowed, by Vixie's rule, written afresh here. */
static int day_allowed(const rp_cron_t *c, int64_t ms)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    int dom, dow;

    gmtime_r(&s, &tm);
    if (!(c->month >> (tm.tm_mon + 1) & 1))
        return 0;
    dom = c->mday >> tm.tm_mday & 1;
    dow = c->wday >> tm.tm_wday & 1;
    return (c->mday_star || c->wday_star) ? dom && dow : dom || dow;
}

/* Whether the UTC minute starting at @p ms matches every field. */
static int minute_allowed(const rp_cron_t *c, int64_t ms)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&s, &tm);
    return (c->minute >> tm.tm_min & 1) && (c->hour >> tm.tm_hour & 1) && day_allowed(c, ms);
}

/* Checks a refusal: RP_EINVAL, RP-E1601, and a 1-based position within the input + 1. */
static void check_refusal(int rc, const rp_error_t *err, size_t len)
{
    const char *close, *at;
    long pos;

    if (rc != RP_EINVAL || err->code != RP_EINVAL || err->msgcode != RP_C_CRON)
        __builtin_trap();
    if (strncmp(err->msg, "RP-E1601: cron \"", 16) != 0)
        __builtin_trap();
    /* The quoted expression has its '"' replaced, so the first one closes it. */
    close = strchr(err->msg + 16, '"');
    if (close == NULL || (at = strstr(close, " at position ")) == NULL)
        __builtin_trap();
    pos = strtol(at + 13, NULL, 10);
    if (pos < 1 || (size_t)pos > (len < RP_CRON_MAX_LEN ? len : RP_CRON_MAX_LEN) + 1)
        __builtin_trap();
}

/* Checks the parsed bitsets: each non-empty and inside its field's values. */
static void check_bitsets(const rp_cron_t *c)
{
    if (c->minute == 0 || c->minute >> 60 != 0)
        __builtin_trap();
    if (c->hour == 0 || c->hour >> 24 != 0)
        __builtin_trap();
    if (c->mday == 0 || (c->mday & 1) != 0)
        __builtin_trap();
    if (c->month == 0 || (c->month & 1) != 0 || c->month >> 13 != 0)
        __builtin_trap();
    if (c->wday == 0 || c->wday >> 7 != 0)
        __builtin_trap();
    if (c->tz[0] != '\0')
        __builtin_trap();
}

/* Checks rp_cron_next() from @p after on a UTC schedule against a brute-force walk. */
static void check_utc(const rp_cron_t *c, int64_t after)
{
    rp_error_t err = {0};
    int64_t next = 0, fire = 0, t;
    int rc = rp_cron_next(c, after, &next, &err);

    if (rc == RP_ENOTFOUND) {
        /* Then no later day of the coming year may match (on the day of @p after, only
         * minutes already past might). */
        for (t = after - after % DAY_MS + DAY_MS; t < after + 366 * DAY_MS; t += DAY_MS)
            if (day_allowed(c, t))
                __builtin_trap();
        return;
    }
    if (rc != 0 || next <= after || next % MIN_MS != 0 || !minute_allowed(c, next))
        __builtin_trap();
    /* Nothing matches in between: walk the minutes, skipping days that do not match. */
    if (next - after <= 2 * DAY_MS) {
        for (t = after - after % MIN_MS + MIN_MS; t < next; t += MIN_MS) {
            if (!day_allowed(c, t)) {
                t = t - t % DAY_MS + DAY_MS - MIN_MS;
                continue;
            }
            if (minute_allowed(c, t))
                __builtin_trap();
        }
    }
    if (rp_cron_missed(c, after, next, &fire, &err) != 1 || fire != next)
        __builtin_trap();
    if (next - 1 > after && rp_cron_missed(c, after, next - 1, &fire, &err) != 0)
        __builtin_trap();
}

/* Checks what holds in any zone: strictly later, stable, and what catch-up reports. */
static void check_zoned(const rp_cron_t *c, int64_t after)
{
    int64_t next = 0, again = 0, fire = 0;
    int rc = rp_cron_next(c, after, &next, NULL);

    if (rc == RP_ENOTFOUND)
        return;
    if (rc != 0 || next <= after || next % 1000 != 0)
        __builtin_trap();
    /* Slots are whole seconds, so none lies in (next - 1 ms, next). */
    if (rp_cron_next(c, next - 1, &again, NULL) != 0 || again != next)
        __builtin_trap();
    if (rp_cron_missed(c, after, next, &fire, NULL) != 1 || fire != next)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int64_t instants[] = {
        1767225600000LL, /* 2026-01-01T00:00:00Z */
        1709164770500LL, /* 2024-02-28T23:59:30.500Z */
        946684799999LL,  /* 1999-12-31T23:59:59.999Z */
        4102401600000LL, /* 2099-12-31T12:00:00Z */
    };
    static const int64_t berlin[] = {
        1774743000000LL, /* 2026-03-29T00:10:00Z, 50 minutes before spring-forward */
        1792886400000LL, /* 2026-10-25T00:00:00Z, an hour before fall-back */
    };
    rp_error_t err = {0};
    rp_cron_t c;
    char *expr = malloc(size + 1);
    int rc;

    if (expr == NULL)
        return 0;
    memcpy(expr, data, size);
    expr[size] = '\0';

    rc = rp_cron_parse(expr, NULL, &c, &err);
    if (rc != 0) {
        check_refusal(rc, &err, strlen(expr));
        free(expr);
        return 0;
    }
    check_bitsets(&c);
    for (size_t i = 0; i < sizeof instants / sizeof instants[0]; i++)
        check_utc(&c, instants[i]);

    if (rp_cron_parse(expr, "Europe/Berlin", &c, &err) != 0)
        __builtin_trap();
    for (size_t i = 0; i < sizeof berlin / sizeof berlin[0]; i++)
        check_zoned(&c, berlin[i]);
    free(expr);
    return 0;
}

#ifdef RP_FUZZ_STANDALONE
#include "standalone.h"
#endif
