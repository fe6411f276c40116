/*
 * time.c — the engine's one time codec (rapport/time.h): UTC ISO-8601 written by hand from
 * civil-date arithmetic, ISO-8601 dates and date-times read back, and the delay parser.
 */
#include "rapport/time.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

/* ---- writing ---------------------------------------------------------------------------- */

/* Days from 1970-01-01 to the given civil date (Howard Hinnant's algorithm). */
int64_t rp_time_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void put_digits(char *p, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

void rp_time_format(int64_t ms, char *out)
{
    /* Hand-rolled rather than snprintf: every event read formats its time. */
    int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    int msec = (int)(ms - secs * 1000);
    int64_t z = (secs >= 0 ? secs : secs - 86399) / 86400;
    int sod = (int)(secs - z * 86400);
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = (int64_t)yoe + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned d = doy - (153 * mp + 2) / 5 + 1;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    if (y < 0)
        y = 0;
    memcpy(out, "0000-00-00T00:00:00.000Z", RP_TIME_LEN);
    put_digits(out, (unsigned)(y % 10000), 4);
    put_digits(out + 5, m, 2);
    put_digits(out + 8, d, 2);
    put_digits(out + 11, (unsigned)(sod / 3600), 2);
    put_digits(out + 14, (unsigned)((sod / 60) % 60), 2);
    put_digits(out + 17, (unsigned)(sod % 60), 2);
    put_digits(out + 20, (unsigned)msec, 3);
}

/* ---- reading ---------------------------------------------------------------------------- */

static int digits(const char *p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i]))
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

static bool date_ok(int y, int m, int d)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || m < 1 || m > 12 || d < 1)
        return false;
    int md = mdays[m - 1] + (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
    return d <= md;
}

/* The date at the head of @p s (what follows it is the caller's). */
static bool date_head(const char *s, int *y, int *m, int *d)
{
    if (strlen(s) < 10 || s[4] != '-' || s[7] != '-')
        return false;
    *y = digits(s, 4);
    *m = digits(s + 5, 2);
    *d = digits(s + 8, 2);
    return *y >= 0 && *m >= 0 && *d >= 0 && date_ok(*y, *m, *d);
}

int rp_time_parse_date(const char *text, int *y, int *m, int *d)
{
    return text && strlen(text) == 10 && date_head(text, y, m, d) ? 0 : RP_EINVAL;
}

/* The clock part after the date: "THH:MM[:SS[.frac]]", or nothing. -1 when malformed. */
static const char *clock_part(const char *p, int *hh, int *mi, int *ss, int *frac)
{
    if (*p != 'T' && *p != 't' && *p != ' ')
        return p;
    p++;
    *hh = digits(p, 2);
    if (*hh < 0 || *hh > 23 || p[2] != ':')
        return NULL;
    *mi = digits(p + 3, 2);
    if (*mi < 0 || *mi > 59)
        return NULL;
    p += 5;
    if (*p != ':')
        return p;
    *ss = digits(p + 1, 2);
    if (*ss < 0 || *ss > 59)
        return NULL;
    p += 3;
    if (*p != '.' && *p != ',')
        return p;
    p++;
    int n = 0;
    while (isdigit((unsigned char)*p)) {
        if (n < 3)
            *frac = *frac * 10 + (*p - '0');
        n++, p++;
    }
    if (n == 0)
        return NULL;
    for (; n < 3; n++)
        *frac *= 10;
    return p;
}

/* The zone part: "Z", "+HH:MM", "+HHMM", "+HH" or nothing, as minutes east of UTC. */
static const char *zone_part(const char *p, int *offset_min)
{
    if (*p == 'Z' || *p == 'z')
        return p + 1;
    if (*p != '+' && *p != '-')
        return p;
    int sign = *p == '-' ? -1 : 1;
    int oh = digits(p + 1, 2), om;
    if (oh < 0 || oh > 23)
        return NULL;
    if (p[3] == ':') {
        om = digits(p + 4, 2);
        p += 6;
    } else {
        om = isdigit((unsigned char)p[3]) ? digits(p + 3, 2) : 0;
        p += isdigit((unsigned char)p[3]) ? 5 : 3;
    }
    if (om < 0 || om > 59)
        return NULL;
    *offset_min = sign * (oh * 60 + om);
    return p;
}

int rp_time_parse(const char *text, int64_t *ms, rp_error_t *err)
{
    int y, mo, d, hh = 0, mi = 0, ss = 0, frac = 0, offset_min = 0;
    const char *p = NULL;
    if (text && date_head(text, &y, &mo, &d))
        p = clock_part(text + 10, &hh, &mi, &ss, &frac);
    /* A zone belongs to a clock: "2026-01-05Z" is no date-time. */
    if (p && p != text + 10)
        p = zone_part(p, &offset_min);
    if (!p || *p) {
        if (!text)
            return rp_error_set(err, RP_EINVAL, RP_C_TYPE, "a date-time is missing");
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE,
                            "\"%.60s\" is not an ISO-8601 date-time "
                            "(YYYY-MM-DD[THH:MM[:SS[.sss]]] with Z or an offset)",
                            text);
    }
    int64_t days = rp_time_days_from_civil(y, (unsigned)mo, (unsigned)d);
    *ms = ((days * 86400 + hh * 3600 + mi * 60 + ss) - (int64_t)offset_min * 60) * 1000 + frac;
    return 0;
}

/* ---- delays ----------------------------------------------------------------------------- */

int rp_parse_delay(const char *text, int64_t *ms, rp_error_t *err)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"ms", 1},         {"s", 1000},        {"m", 60000},
                 {"h", 3600000},    {"d", 86400000},    {"w", 604800000}};
    if (!text || !*text)
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE, "an empty delay (write e.g. 90s, 15m, "
                                                       "24h, 3d)");
    int64_t total = 0;
    const char *p = text;
    while (*p) {
        const char *start = p;
        if (!isdigit((unsigned char)*p))
            return rp_error_set(err, RP_EINVAL, RP_C_TYPE,
                                "delay \"%s\" at position %d: expected a number (write e.g. 90s, "
                                "15m, 24h, 3d, 1h30m)",
                                text, (int)(p - text) + 1);
        int64_t n = 0;
        while (isdigit((unsigned char)*p)) {
            if (n > INT64_MAX / 10 - 10)
                return rp_error_set(err, RP_EINVAL, RP_C_TYPE, "delay \"%s\" is too long", text);
            n = n * 10 + (*p++ - '0');
        }
        int64_t unit = 0;
        for (size_t i = 0; i < sizeof units / sizeof *units && !unit; i++) {
            size_t l = strlen(units[i].unit);
            /* "m" must not swallow the "m" of "ms". */
            if (strncmp(p, units[i].unit, l) == 0 && !(l == 1 && *p == 'm' && p[1] == 's')) {
                unit = units[i].ms;
                p += l;
            }
        }
        if (!unit)
            return rp_error_set(err, RP_EINVAL, RP_C_TYPE,
                                "delay \"%s\" at position %d: \"%.*s\" needs a unit: ms, s, m, h, "
                                "d or w",
                                text, (int)(start - text) + 1, (int)(p - start), start);
        if (n > (INT64_MAX - total) / unit)
            return rp_error_set(err, RP_EINVAL, RP_C_TYPE, "delay \"%s\" is too long", text);
        total += n * unit;
    }
    *ms = total;
    return 0;
}
