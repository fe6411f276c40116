/*
 * cron.c — the cron room: a hand-written parser for five-field expressions, and the search for
 * the next (or latest missed) slot on the wall clock of a time zone, read through glibc.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* localtime_r, tm_gmtoff, setenv, strcasecmp under -std=c11 */
#endif

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "rapport/cron.h"

#define ZONEINFO_DIR "/usr/share/zoneinfo"
#define MIN_PER_DAY 1440
#define SEC_PER_DAY 86400

/* ---------------------------------------------------------------------------------------------
 * Parsing
 * -------------------------------------------------------------------------------------------*/

/* What one of the five fields accepts. */
typedef struct field_def {
    const char *name;         /* as messages call it */
    int lo, hi;               /* the values allowed, inclusive */
    const char *const *names; /* three-letter names for lo.., or NULL */
    int nnames;
} field_def_t;

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const wday_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

static const field_def_t fields[5] = {
    {"minute", 0, 59, NULL, 0},           {"hour", 0, 23, NULL, 0},
    {"day-of-month", 1, 31, NULL, 0},     {"month", 1, 12, month_names, 12},
    {"day-of-week", 0, 7, wday_names, 7},
};

/* The macros and the five fields each stands for. */
static const struct {
    const char *name;
    const char *fields;
} macros[] = {
    {"@hourly", "0 * * * *"},   {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
    {"@weekly", "0 0 * * 0"},   {"@monthly", "0 0 1 * *"}, {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
};

typedef struct parser {
    const char *s;     /* the expression being read */
    size_t pos;        /* 0-based index of the next byte */
    int field;         /* 0-based index of the field being read, or -1 */
    const char *shown; /* the expression as messages quote it */
    rp_error_t *err;
} parser_t;

static int is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

static int is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static int is_alpha(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* Copies @p n bytes of @p s for quoting in a message: bytes that would garble it (controls,
 * quotes, non-ASCII) become '?', since an expression is plain ASCII when it is valid. */
static void sanitize(char *dst, size_t cap, const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n && i + 1 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        dst[i] = (ch < 0x20 || ch >= 0x7f || ch == '"') ? '?' : (char)ch;
    }
    dst[i] = '\0';
}

/* Names the byte @p ch for a message: 'x', a blank, or its hex value when not printable. */
static const char *describe(char *buf, size_t cap, char ch)
{
    unsigned char u = (unsigned char)ch;

    if (u == 0)
        snprintf(buf, cap, "the end of the expression");
    else if (u == ' ')
        snprintf(buf, cap, "a blank");
    else if (u == '\t')
        snprintf(buf, cap, "a tab");
    else if (u > 0x20 && u < 0x7f)
        snprintf(buf, cap, "'%c'", ch);
    else
        snprintf(buf, cap, "byte 0x%02X", u);
    return buf;
}

/* Refuses the expression with a sentence naming the field (when inside one) and the 1-based
 * position @p at + 1. Returns RP_EINVAL. */
__attribute__((format(printf, 3, 4))) static int fail(parser_t *p, size_t at, const char *fmt, ...)
{
    char detail[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (p->field >= 0)
        return rp_error_set(p->err, RP_EINVAL, RP_C_CRON,
                            "cron \"%s\": field %d (%s) at position %zu: %s", p->shown,
                            p->field + 1, fields[p->field].name, at + 1, detail);
    return rp_error_set(p->err, RP_EINVAL, RP_C_CRON, "cron \"%s\" at position %zu: %s", p->shown,
                        at + 1, detail);
}

/* Refuses the unexpected byte at the current position. */
static int fail_unexpected(parser_t *p, const char *wanted)
{
    char what[40];

    return fail(p, p->pos, "expected %s, found %s", wanted,
                describe(what, sizeof what, p->s[p->pos]));
}

/* Reads one value — a number or, where the field allows, a three-letter name — into @p v. */
static int parse_value(parser_t *p, int *v, int *was_name)
{
    const field_def_t *f = &fields[p->field];
    size_t start = p->pos;
    const char *s = p->s;

    *was_name = 0;
    if (is_digit(s[p->pos])) {
        long n = 0;

        /* Saturate rather than overflow: anything past 999 is out of range anyway. */
        while (is_digit(s[p->pos])) {
            if (n < 1000)
                n = n * 10 + (s[p->pos] - '0');
            p->pos++;
        }
        if (n < f->lo || n > f->hi) {
            int digits = (int)(p->pos - start);
            return fail(p, start, "%.*s%s is out of range %d-%d", digits > 12 ? 12 : digits,
                        s + start, digits > 12 ? "..." : "", f->lo, f->hi);
        }
        *v = (int)n;
        return 0;
    }
    if (is_alpha(s[p->pos])) {
        char word[16];
        size_t len = 0;

        while (is_alpha(s[p->pos]))
            p->pos++;
        len = p->pos - start;
        sanitize(word, sizeof word, s + start, len < sizeof word - 1 ? len : sizeof word - 1);
        if (f->names == NULL)
            return fail(p, start, "unexpected name \"%s\"; the %s field takes numbers only", word,
                        f->name);
        for (int i = 0; len == 3 && i < f->nnames; i++) {
            if (strncasecmp(s + start, f->names[i], 3) == 0) {
                *v = f->lo + i;
                *was_name = 1;
                return 0;
            }
        }
        return fail(p, start, "unknown %s name \"%s\" (use %s-%s or %d-%d)", f->name, word,
                    f->names[0], f->names[f->nnames - 1], f->lo, f->hi);
    }
    return fail_unexpected(p, f->names ? "a number or a name" : "a number");
}

/* Reads one list item — "*", "v" or "a-b", then an optional "/step" — into @p bits. */
static int parse_item(parser_t *p, uint64_t *bits)
{
    const field_def_t *f = &fields[p->field];
    const char *s = p->s;
    size_t start = p->pos;
    int lo, hi, step = 1, single = 0, name;
    int rc;

    if (s[p->pos] == '*') {
        lo = f->lo;
        hi = f->hi;
        p->pos++;
    } else if (is_digit(s[p->pos]) || is_alpha(s[p->pos])) {
        if ((rc = parse_value(p, &lo, &name)) != 0)
            return rc;
        hi = lo;
        single = 1;
        if (s[p->pos] == '-') {
            p->pos++;
            if ((rc = parse_value(p, &hi, &name)) != 0)
                return rc;
            single = 0;
            /* "FRI-SUN": a weekday range may wrap to the Sunday that is also 7. */
            if (p->field == 4 && name && hi == 0 && lo > 0)
                hi = 7;
        }
    } else if (s[p->pos] == '\0' || is_blank(s[p->pos]) || s[p->pos] == ',') {
        return fail(p, p->pos, "empty list item");
    } else {
        return fail_unexpected(p, f->names ? "a number, a name or '*'" : "a number or '*'");
    }

    if (s[p->pos] == '/') {
        long n = 0;

        p->pos++;
        if (single)
            return fail(p, start, "a step needs '*' or a range before it (write %d-%d/...)", lo,
                        f->hi);
        if (!is_digit(s[p->pos]))
            return fail_unexpected(p, "a step number after '/'");
        while (is_digit(s[p->pos])) {
            if (n < 1000)
                n = n * 10 + (s[p->pos] - '0');
            p->pos++;
        }
        if (n < 1)
            return fail(p, start, "step must be at least 1");
        if (n > f->hi - f->lo + 1)
            return fail(p, start, "step %ld is larger than the %d values of the field", n,
                        f->hi - f->lo + 1);
        step = (int)n;
    }
    if (lo > hi)
        return fail(p, start, "range %d-%d runs backwards", lo, hi);

    for (int v = lo; v <= hi; v += step)
        *bits |= UINT64_C(1) << (p->field == 4 && v == 7 ? 0 : v);
    return 0;
}

/* Reads one field, a comma-separated list of items, up to the blank or end that closes it. */
static int parse_field(parser_t *p, uint64_t *bits, bool *star)
{
    int rc;

    *bits = 0;
    *star = p->s[p->pos] == '*';
    for (;;) {
        if ((rc = parse_item(p, bits)) != 0)
            return rc;
        if (p->s[p->pos] != ',')
            break;
        p->pos++;
    }
    if (p->s[p->pos] != '\0' && !is_blank(p->s[p->pos]))
        return fail_unexpected(p, "',' or a blank after the item");
    return 0;
}

static void skip_blanks(parser_t *p)
{
    while (is_blank(p->s[p->pos]))
        p->pos++;
}

/* Reads the five fields starting at the current position into @p out. */
static int parse_fields(parser_t *p, rp_cron_t *out)
{
    uint64_t bits[5];
    bool star[5];
    int rc;

    for (int i = 0; i < 5; i++) {
        p->field = i;
        if (p->s[p->pos] == '\0')
            return fail(p, p->pos,
                        "missing; a cron expression has five fields: minute hour "
                        "day-of-month month day-of-week");
        if ((rc = parse_field(p, &bits[i], &star[i])) != 0)
            return rc;
        skip_blanks(p);
    }
    p->field = -1;
    if (p->s[p->pos] != '\0')
        return fail(p, p->pos, "unexpected text after the five fields");

    out->minute = bits[0];
    out->hour = (uint32_t)bits[1];
    out->mday = (uint32_t)bits[2];
    out->month = (uint16_t)bits[3];
    out->wday = (uint8_t)bits[4];
    out->mday_star = star[2];
    out->wday_star = star[4];
    return 0;
}

/* Reads a macro ("@daily") starting at the current position into @p out. */
static int parse_macro(parser_t *p, rp_cron_t *out)
{
    size_t start = p->pos, len;
    char word[24];

    while (p->s[p->pos] != '\0' && !is_blank(p->s[p->pos]))
        p->pos++;
    len = p->pos - start;
    for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++) {
        if (strlen(macros[i].name) == len && strncasecmp(p->s + start, macros[i].name, len) == 0) {
            parser_t sub = {.s = macros[i].fields, .field = -1, .shown = p->shown, .err = p->err};

            skip_blanks(p);
            if (p->s[p->pos] != '\0')
                return fail(p, p->pos, "unexpected text after %s", macros[i].name);
            return parse_fields(&sub, out);
        }
    }
    sanitize(word, sizeof word, p->s + start, len < sizeof word - 1 ? len : sizeof word - 1);
    return fail(p, start,
                "unknown macro \"%s\" (use @hourly, @daily, @midnight, @weekly, @monthly, "
                "@yearly or @annually)",
                word);
}

/* Checks that @p name is a zone file under ZONEINFO_DIR. A name is only letters, digits and
 * "/_-+" (no dots), with no empty component, so it cannot leave the directory. */
static int check_zone(const char *name, rp_error_t *err)
{
    char shown[80], path[sizeof ZONEINFO_DIR + 64];
    size_t len = strlen(name);
    unsigned char magic[4];
    FILE *fp;
    int ok;

    sanitize(shown, sizeof shown, name, len < 64 ? len : 64);
    if (len >= sizeof((rp_cron_t *)0)->tz)
        return rp_error_set(err, RP_EINVAL, RP_C_CRON, "cron time zone \"%s\" is too long", shown);
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        int first = i == 0 || name[i - 1] == '/';

        if (!(is_alpha(ch) || is_digit(ch) || ch == '/' || ch == '_' || ch == '-' || ch == '+') ||
            (ch == '/' && first))
            return rp_error_set(err, RP_EINVAL, RP_C_CRON,
                                "cron time zone \"%s\" is not a zone name like "
                                "\"Europe/Berlin\"",
                                shown);
    }
    if (name[len - 1] == '/')
        return rp_error_set(err, RP_EINVAL, RP_C_CRON,
                            "cron time zone \"%s\" is not a zone name like \"Europe/Berlin\"",
                            shown);
    /* Those zones count leap seconds, which breaks "a minute is 60 seconds". */
    if (strncmp(name, "right/", 6) == 0)
        return rp_error_set(err, RP_EINVAL, RP_C_CRON,
                            "cron time zone \"%s\" counts leap seconds; use \"%s\"", shown,
                            shown + 6);
    snprintf(path, sizeof path, "%s/%s", ZONEINFO_DIR, name);
    fp = fopen(path, "rb");
    ok = fp != NULL && fread(magic, 1, 4, fp) == 4 && memcmp(magic, "TZif", 4) == 0;
    if (fp != NULL)
        fclose(fp);
    if (!ok)
        return rp_error_set(err, RP_EINVAL, RP_C_CRON,
                            "cron time zone \"%s\" is unknown (no zone file %s)", shown, path);
    return 0;
}

int rp_cron_parse(const char *expr, const char *tz, rp_cron_t *out, rp_error_t *err)
{
    parser_t p = {.s = expr, .field = -1, .err = err};
    char shown[RP_CRON_MAX_LEN + 1];
    size_t len;
    int rc;

    if (expr == NULL || out == NULL)
        return rp_error_set(err, RP_EINVAL, RP_C_CRON, "cron: %s is NULL",
                            expr == NULL ? "the expression" : "the output");
    /* Stop counting past the limit: the caller's string may be huge. */
    for (len = 0; len <= RP_CRON_MAX_LEN && expr[len] != '\0'; len++)
        ;
    if (len > RP_CRON_MAX_LEN) {
        sanitize(shown, 40, expr, 36);
        strcat(shown, "...");
        p.shown = shown;
        return fail(&p, RP_CRON_MAX_LEN, "the expression is longer than %d characters",
                    RP_CRON_MAX_LEN);
    }
    sanitize(shown, sizeof shown, expr, len);
    p.shown = shown;

    memset(out, 0, sizeof *out);
    skip_blanks(&p);
    if (expr[p.pos] == '\0')
        return fail(&p, 0, "the expression is empty");
    rc = expr[p.pos] == '@' ? parse_macro(&p, out) : parse_fields(&p, out);
    if (rc != 0)
        return rc;

    if (tz != NULL && tz[0] != '\0' && strcmp(tz, "UTC") != 0) {
        if ((rc = check_zone(tz, err)) != 0)
            return rc;
        strcpy(out->tz, tz);
    }
    memcpy(out->expr, expr, len + 1);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Calendar arithmetic on the proleptic Gregorian calendar (Howard Hinnant's civil_from_days),
 * so that days and minutes of the wall clock are plain integers.
 * -------------------------------------------------------------------------------------------*/

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* Writes @p ms as "YYYY-MM-DDTHH:MM:SSZ" for messages. */
static const char *iso(char *buf, size_t cap, int64_t ms)
{
    int64_t s = floor_div(ms, 1000), days = floor_div(s, SEC_PER_DAY), y;
    int64_t sod = s - days * SEC_PER_DAY;
    int m, d;

    civil_from_days(days, &y, &m, &d);
    snprintf(buf, cap, "%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long)y, m, d, (int)(sod / 3600),
             (int)(sod / 60 % 60), (int)(sod % 60));
    return buf;
}

/* Whether the schedule allows the day @p day (days since 1970-01-01), by Vixie's rule. */
static int day_ok(const rp_cron_t *c, int64_t day)
{
    int64_t y;
    int m, d, dom, dow;
    int wd = (int)(day + 4 - floor_div(day + 4, 7) * 7); /* 1970-01-01 was a Thursday */

    civil_from_days(day, &y, &m, &d);
    if (!(c->month >> m & 1))
        return 0;
    dom = (int)(c->mday >> d & 1);
    dow = (int)(c->wday >> wd & 1);
    return (c->mday_star || c->wday_star) ? dom && dow : dom || dow;
}

/* The lowest set bit of @p mask at or above @p from, or -1. */
static int next_bit(uint64_t mask, int from)
{
    if (from > 63)
        return -1;
    mask &= ~UINT64_C(0) << from;
    return mask ? __builtin_ctzll(mask) : -1;
}

/* The highest set bit of @p mask at or below @p from, or -1. */
static int prev_bit(uint64_t mask, int from)
{
    if (from < 0)
        return -1;
    if (from < 63)
        mask &= (UINT64_C(2) << from) - 1;
    return mask ? 63 - __builtin_clzll(mask) : -1;
}

/* Wall-clock minutes are counted from 1970-01-01T00:00 of the zone's calendar. Returns the
 * first one at or after @p l that the schedule matches, searching up to day @p last_day, and
 * 0 when there is none (with *out untouched). */
static int match_forward(const rp_cron_t *c, int64_t l, int64_t last_day, int64_t *out)
{
    int64_t day = floor_div(l, MIN_PER_DAY);
    int h = (int)(l - day * MIN_PER_DAY) / 60, m = (int)(l - day * MIN_PER_DAY) % 60;

    for (; day <= last_day; day++, h = 0, m = 0) {
        if (!day_ok(c, day))
            continue;
        int hh = next_bit(c->hour, h), mm = -1;
        if (hh == h)
            mm = next_bit(c->minute, m);
        if (mm < 0) {
            hh = next_bit(c->hour, h + 1);
            mm = next_bit(c->minute, 0);
        }
        if (hh >= 0) {
            *out = day * MIN_PER_DAY + hh * 60 + mm;
            return 1;
        }
    }
    return 0;
}

/* The mirror of match_forward(): the last matching minute at or before @p l, down to day
 * @p first_day. */
static int match_backward(const rp_cron_t *c, int64_t l, int64_t first_day, int64_t *out)
{
    int64_t day = floor_div(l, MIN_PER_DAY);
    int h = (int)(l - day * MIN_PER_DAY) / 60, m = (int)(l - day * MIN_PER_DAY) % 60;

    for (; day >= first_day; day--, h = 23, m = 59) {
        if (!day_ok(c, day))
            continue;
        int hh = prev_bit(c->hour, h), mm = -1;
        if (hh == h)
            mm = prev_bit(c->minute, m);
        if (mm < 0) {
            hh = prev_bit(c->hour, h - 1);
            mm = prev_bit(c->minute, 59);
        }
        if (hh >= 0) {
            *out = day * MIN_PER_DAY + hh * 60 + mm;
            return 1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * The zone: UTC offsets read through glibc with TZ pointed at the zone file for the duration
 * of one public call.
 * -------------------------------------------------------------------------------------------*/

typedef struct zone {
    int utc;     /* no zone: offsets are 0 and TZ is left alone */
    int had_tz;  /* TZ was set before the call */
    char *saved; /* its value then (malloc'd), restored on leave */
} zone_t;

static int zone_enter(const rp_cron_t *c, zone_t *z, rp_error_t *err)
{
    char value[sizeof ZONEINFO_DIR + 64 + 2];
    const char *old;

    memset(z, 0, sizeof *z);
    if (c->tz[0] == '\0') {
        z->utc = 1;
        return 0;
    }
    old = getenv("TZ");
    if (old != NULL) {
        z->had_tz = 1;
        if ((z->saved = strdup(old)) == NULL)
            return rp_error_set(err, RP_ENOMEM, RP_C_CRON, "cron \"%s\": out of memory saving TZ",
                                c->expr);
    }
    /* An absolute path makes glibc read exactly the file rp_cron_parse() checked, whatever
     * TZDIR says. */
    snprintf(value, sizeof value, ":%s/%.63s", ZONEINFO_DIR, c->tz);
    if (setenv("TZ", value, 1) != 0) {
        free(z->saved);
        return rp_error_set(err, RP_ENOMEM, RP_C_CRON, "cron \"%s\": cannot set TZ", c->expr);
    }
    tzset();
    return 0;
}

static void zone_leave(zone_t *z)
{
    if (z->utc)
        return;
    if (z->had_tz)
        setenv("TZ", z->saved, 1);
    else
        unsetenv("TZ");
    tzset();
    free(z->saved);
    z->saved = NULL;
}

/* The zone's UTC offset in seconds at the instant @p t (seconds since the epoch). */
static int64_t offset_at(const zone_t *z, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (z->utc || localtime_r(&tt, &tm) == NULL)
        return 0;
    return tm.tm_gmtoff;
}

/* The wall-clock reading, in seconds since 1970-01-01T00:00 local, at the instant @p t. */
static int64_t local_at(const zone_t *z, int64_t t)
{
    return t + offset_at(z, t);
}

/*
 * The instant (seconds since the epoch) at which wall-clock minute @p l fires, by the daylight
 * saving rules of rp_cron_next(): the first instant that reads @p l; or, when no instant reads
 * it (a spring-forward gap), the first instant after the gap — unless @p drop_gaps, in which
 * case 0 is returned and the slot does not fire. Returns 1 with *out set otherwise.
 *
 * Offsets are read a day on either side (no zone's offset exceeds 16 hours), and each candidate
 * is checked, so a transition anywhere near @p l is seen.
 */
static int slot_instant(const zone_t *z, int64_t l, int drop_gaps, int64_t *out)
{
    int64_t ls = l * 60, best = INT64_MAX, lo, hi;
    int64_t cand[4];
    int n = 0;

    if (z->utc) {
        *out = ls;
        return 1;
    }
    cand[n++] = ls - offset_at(z, ls - SEC_PER_DAY);
    cand[n++] = ls - offset_at(z, ls + SEC_PER_DAY);
    /* A third offset between those two would be the offset at a wrong candidate. */
    cand[n++] = ls - offset_at(z, cand[0]);
    cand[n++] = ls - offset_at(z, cand[1]);
    for (int i = 0; i < n; i++)
        if (cand[i] < best && local_at(z, cand[i]) == ls)
            best = cand[i];
    if (best != INT64_MAX) {
        *out = best;
        return 1;
    }
    if (drop_gaps)
        return 0;

    /* In a gap the wall clock jumps from below ls to above it at the transition; find that
     * second by bisection, keeping local(lo) < ls < local(hi). */
    lo = cand[0] < cand[1] ? cand[0] : cand[1];
    hi = cand[0] < cand[1] ? cand[1] : cand[0];
    if (!(local_at(z, lo) < ls && local_at(z, hi) > ls)) {
        lo = ls - 2 * SEC_PER_DAY;
        hi = ls + 2 * SEC_PER_DAY;
    }
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (local_at(z, mid) > ls)
            hi = mid;
        else
            lo = mid;
    }
    *out = hi;
    return 1;
}

/* Whether gap slots are dropped rather than caught up: the hour field allows every hour. */
static int hourly_style(const rp_cron_t *c)
{
    return (c->hour & 0xFFFFFFu) == 0xFFFFFFu;
}

/* The wall-clock minute in progress at @p ms. */
static int64_t local_minute(const zone_t *z, int64_t ms)
{
    return floor_div(local_at(z, floor_div(ms, 1000)), 60);
}

/*
 * The first slot strictly after @p after_ms, in ms; 0 or RP_ENOTFOUND (no message).
 *
 * The slot instant never decreases as the wall-clock minute grows, and every minute before the
 * one in progress at @p after_ms has already fired by then, so the search walks the matching
 * minutes from that one on and takes the first whose instant lies after @p after_ms. Only in the
 * repeated hour of a fall-back does it skip a few whose instant lies before.
 */
static int next_slot(const rp_cron_t *c, const zone_t *z, int64_t after_ms, int64_t *out)
{
    int64_t l = local_minute(z, after_ms), t;
    int64_t last_day = floor_div(l, MIN_PER_DAY) + RP_CRON_HORIZON_DAYS;
    int drop = hourly_style(c);

    while (match_forward(c, l, last_day, &l)) {
        if (slot_instant(z, l, drop, &t) && t * 1000 > after_ms) {
            *out = t * 1000;
            return 0;
        }
        l++;
    }
    return RP_ENOTFOUND;
}

/* The last slot at or before @p now_ms whose wall-clock minute is not after the one in
 * progress at @p now_ms; 0 or RP_ENOTFOUND. Slots of later minutes that fell due before
 * @p now_ms exist only in a fall-back's repeated hour; rp_cron_missed() walks those forward. */
static int prev_slot(const rp_cron_t *c, const zone_t *z, int64_t now_ms, int64_t *out)
{
    int64_t l = local_minute(z, now_ms), t;
    int64_t first_day = floor_div(l, MIN_PER_DAY) - RP_CRON_HORIZON_DAYS;
    int drop = hourly_style(c);

    while (match_backward(c, l, first_day, &l)) {
        if (slot_instant(z, l, drop, &t) && t * 1000 <= now_ms) {
            *out = t * 1000;
            return 0;
        }
        l--;
    }
    return RP_ENOTFOUND;
}

/* Checks the schedule pointer and an instant's range; fills @p err and returns RP_EINVAL. */
static int check_args(const rp_cron_t *c, const void *outp, int64_t ms, const char *what,
                      rp_error_t *err)
{
    if (c == NULL || outp == NULL)
        return rp_error_set(err, RP_EINVAL, RP_C_CRON, "cron: %s is NULL",
                            c == NULL ? "the schedule" : "the result pointer");
    if (ms < RP_CRON_MIN_MS || ms > RP_CRON_MAX_MS)
        return rp_error_set(err, RP_EINVAL, RP_C_CRON,
                            "cron \"%s\": %s %lld ms is outside the years 1900-9999", c->expr, what,
                            (long long)ms);
    return 0;
}

int rp_cron_next(const rp_cron_t *c, int64_t after_ms, int64_t *next_ms, rp_error_t *err)
{
    zone_t z;
    char when[32];
    int rc;

    if ((rc = check_args(c, next_ms, after_ms, "instant", err)) != 0)
        return rc;
    if ((rc = zone_enter(c, &z, err)) != 0)
        return rc;
    rc = next_slot(c, &z, after_ms, next_ms);
    zone_leave(&z);
    if (rc != 0)
        return rp_error_set(err, RP_ENOTFOUND, RP_C_CRON,
                            "cron \"%s\"%s%s never fires in the %d days after %s", c->expr,
                            c->tz[0] ? " in " : "", c->tz, RP_CRON_HORIZON_DAYS,
                            iso(when, sizeof when, after_ms));
    return 0;
}

int rp_cron_missed(const rp_cron_t *c, int64_t last_ms, int64_t now_ms, int64_t *fire_ms,
                   rp_error_t *err)
{
    int64_t best, t;
    zone_t z;
    int rc;

    if ((rc = check_args(c, fire_ms, last_ms, "last run", err)) != 0 ||
        (rc = check_args(c, fire_ms, now_ms, "present", err)) != 0)
        return rc;
    if (now_ms <= last_ms)
        return 0;
    if ((rc = zone_enter(c, &z, err)) != 0)
        return rc;
    /* Walking slot by slot from last_ms would cost as much as the downtime was long, so jump:
     * the first slot after last_ms shows whether any fell due, prev_slot() finds the latest
     * one up to the present wall-clock minute, and only a fall-back's repeated hour can hold a
     * few more, taken one by one. */
    if (next_slot(c, &z, last_ms, &best) != 0 || best > now_ms) {
        zone_leave(&z);
        return 0;
    }
    if (prev_slot(c, &z, now_ms, &t) == 0 && t > best)
        best = t;
    while (next_slot(c, &z, best, &t) == 0 && t <= now_ms)
        best = t;
    zone_leave(&z);
    *fire_ms = best;
    return 1;
}
