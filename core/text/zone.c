/*
 * zone.c — time zones read from the system's zone files (TZif, RFC 8536, Debian's tzdata under
 * /usr/share/zoneinfo), and the calendar buckets an aggregate groups times into. Thread-safe:
 * nothing here touches TZ, tzset or localtime.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapport/time.h"

#define ZONE_DIR "/usr/share/zoneinfo/"
#define ZONE_MAX_BYTES (1 << 20)

struct rp_zone {
    char name[RP_ZONE_NAME_MAX];
    int n;             /* transitions */
    int64_t *at;       /* transition instants, seconds since the epoch, ascending */
    int32_t *off;      /* the UTC offset in seconds from at[i] on */
    int32_t before;    /* the offset before the first transition (or always, with none) */
};

static int64_t be(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = v << 8 | p[i];
    if (bytes == 4)
        return (int32_t)(uint32_t)v;
    return (int64_t)v;
}

static bool name_ok(const char *name)
{
    /* A zone name is a path below the zone folder: letters, digits, "_+-" and single slashes
     * between parts, no part starting with a dot ("../../etc/passwd" is not a zone). */
    size_t n = strlen(name);
    if (n == 0 || n >= RP_ZONE_NAME_MAX || name[0] == '/' || name[n - 1] == '/')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool part_start = i == 0 || name[i - 1] == '/';
        if (c == '/' ? part_start
                     : !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                         (c >= '0' && c <= '9') || c == '_' || c == '+' ||
                         (c == '-' && !part_start)))
            return false;
    }
    return true;
}

static bool is_utc(const char *name)
{
    return !name || !*name || !strcmp(name, "UTC") || !strcmp(name, "Etc/UTC") ||
           !strcmp(name, "Z");
}

/* Reads the TZif data in @p b (@p len bytes) into @p z; false when it is not TZif. */
static bool parse(rp_zone_t *z, const unsigned char *b, size_t len)
{
    if (len < 44 || memcmp(b, "TZif", 4) != 0)
        return false;
    int tb = 4; /* bytes of a transition time */
    const unsigned char *h = b;
    int64_t cnt[6];
    for (int i = 0; i < 6; i++)
        cnt[i] = be(h + 20 + 4 * i, 4);
    /* cnt: isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt */
    if (b[4] >= '2') {
        /* Skip the 32-bit block for the 64-bit one after it. */
        size_t skip = 44 + (size_t)cnt[3] * 5 + (size_t)cnt[4] * 6 + (size_t)cnt[5] +
                      (size_t)cnt[2] * 8 + (size_t)cnt[1] + (size_t)cnt[0];
        if (skip + 44 > len || memcmp(b + skip, "TZif", 4) != 0)
            return false;
        h = b + skip;
        for (int i = 0; i < 6; i++)
            cnt[i] = be(h + 20 + 4 * i, 4);
        tb = 8;
    }
    for (int i = 0; i < 6; i++)
        if (cnt[i] < 0 || cnt[i] > 100000)
            return false;
    if (cnt[4] < 1)
        return false;
    const unsigned char *p = h + 44;
    size_t need = (size_t)cnt[3] * (size_t)(tb + 1) + (size_t)cnt[4] * 6;
    if ((size_t)(p - b) + need > len)
        return false;
    const unsigned char *times = p, *idx = p + cnt[3] * tb, *types = idx + cnt[3];
    z->n = (int)cnt[3];
    z->at = malloc(sizeof *z->at * (size_t)(z->n ? z->n : 1));
    z->off = malloc(sizeof *z->off * (size_t)(z->n ? z->n : 1));
    if (!z->at || !z->off)
        return false;
    for (int i = 0; i < z->n; i++) {
        if (idx[i] >= cnt[4])
            return false;
        z->at[i] = be(times + (size_t)i * (size_t)tb, tb);
        if (i && z->at[i] <= z->at[i - 1])
            return false;
        z->off[i] = (int32_t)be(types + (size_t)idx[i] * 6, 4);
    }
    /* RFC 8536 §3.2: local time before the first transition is type 0. */
    z->before = (int32_t)be(types, 4);
    return true;
}

int rp_zone_open(const char *name, rp_zone_t **out, rp_error_t *err)
{
    *out = NULL;
    rp_zone_t *z = calloc(1, sizeof *z);
    if (!z)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    if (is_utc(name)) {
        snprintf(z->name, sizeof z->name, "UTC");
        *out = z;
        return 0;
    }
    if (!name_ok(name)) {
        free(z);
        return rp_error_set(err, RP_EINVAL, 0,
                            "\"%.80s\" is not a time zone name (an IANA name such as "
                            "\"Europe/Berlin\", or \"UTC\")",
                            name);
    }
    snprintf(z->name, sizeof z->name, "%s", name);
    char path[sizeof ZONE_DIR + RP_ZONE_NAME_MAX];
    snprintf(path, sizeof path, ZONE_DIR "%s", name);
    FILE *f = fopen(path, "rb");
    unsigned char *b = f ? malloc(ZONE_MAX_BYTES) : NULL;
    size_t len = b ? fread(b, 1, ZONE_MAX_BYTES, f) : 0;
    if (f)
        fclose(f);
    bool ok = b && parse(z, b, len);
    free(b);
    if (!ok) {
        rp_zone_close(z);
        return rp_error_set(err, RP_EINVAL, 0,
                            "unknown time zone \"%s\" (no zone file %s; the IANA names of "
                            "Debian's tzdata, such as \"Europe/Berlin\", are known)",
                            name, path);
    }
    *out = z;
    return 0;
}

void rp_zone_close(rp_zone_t *z)
{
    if (!z)
        return;
    free(z->at);
    free(z->off);
    free(z);
}

const char *rp_zone_name(const rp_zone_t *z)
{
    return z ? z->name : "UTC";
}

int32_t rp_zone_offset(const rp_zone_t *z, int64_t ms)
{
    if (!z || z->n == 0)
        return z ? z->before : 0;
    int64_t s = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    if (s < z->at[0])
        return z->before;
    int lo = 0, hi = z->n - 1;
    while (lo < hi) { /* the last transition at or before s */
        int mid = lo + (hi - lo + 1) / 2;
        if (z->at[mid] <= s)
            lo = mid;
        else
            hi = mid - 1;
    }
    return z->off[lo];
}

/* ---- calendar buckets ------------------------------------------------------------------- */

int rp_time_bucket_unit(const char *name)
{
    static const char *const units[] = {"day", "week", "month", "quarter", "year", NULL};
    for (int i = 0; name && units[i]; i++)
        if (strcmp(name, units[i]) == 0)
            return i;
    return -1;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

int rp_time_bucket_days(int64_t days, int unit, char *out)
{
    int64_t y;
    unsigned m, d;
    if (unit == RP_BUCKET_WEEK) {
        /* 1970-01-01 was a Thursday: the Monday on or before. */
        int64_t dow = ((days % 7) + 7 + 3) % 7; /* 0 = Monday */
        days -= dow;
    }
    civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999)
        return RP_EINVAL;
    /* By hand: the labels are made once per row of an aggregate. */
    char *p = out;
    for (int k = 3, v = (int)y; k >= 0; k--, v /= 10)
        p[k] = (char)('0' + v % 10);
    p += 4;
    switch (unit) {
    case RP_BUCKET_DAY:
    case RP_BUCKET_WEEK:
        *p++ = '-';
        *p++ = (char)('0' + m / 10);
        *p++ = (char)('0' + m % 10);
        *p++ = '-';
        *p++ = (char)('0' + d / 10);
        *p++ = (char)('0' + d % 10);
        break;
    case RP_BUCKET_MONTH:
        *p++ = '-';
        *p++ = (char)('0' + m / 10);
        *p++ = (char)('0' + m % 10);
        break;
    case RP_BUCKET_QUARTER:
        *p++ = '-';
        *p++ = 'Q';
        *p++ = (char)('1' + (m - 1) / 3);
        break;
    case RP_BUCKET_YEAR:
        break;
    default:
        return RP_EINVAL;
    }
    *p = '\0';
    return 0;
}

int rp_time_bucket(int64_t ms, int unit, const rp_zone_t *z, char *out)
{
    int64_t local = ms + (int64_t)rp_zone_offset(z, ms) * 1000;
    int64_t days = local >= 0 ? local / 86400000 : (local - 86399999) / 86400000;
    return rp_time_bucket_days(days, unit, out);
}
