/*
 * time.h — the one codec for time as the engine writes it: milliseconds since the epoch shown
 * as UTC ISO-8601 ("2026-01-05T09:30:00.000Z"), ISO-8601 dates and date-times read back, and
 * delays written the way people say them ("90s", "24h", "1h30m"), time zones read from the
 * system's zone files, and the calendar buckets times are grouped into. No locale, no libc
 * calendar or TZ variable (timegm, strftime, localtime): the same text on every platform, and
 * safe on any thread.
 */
#ifndef RAPPORT_TIME_H
#define RAPPORT_TIME_H

#include <stdint.h>

#include "rapport/error.h"

/** Bytes rp_time_format() writes: "YYYY-MM-DDTHH:MM:SS.sssZ" and its NUL. */
#define RP_TIME_LEN 25

/** The first millisecond rp_time_format() shows as it is: 0000-01-01T00:00:00.000Z. */
#define RP_TIME_MIN INT64_C(-62167219200000)
/** The last millisecond rp_time_format() shows as it is: 9999-12-31T23:59:59.999Z. */
#define RP_TIME_MAX INT64_C(253402300799999)

/**
 * Formats @p ms (since 1970-01-01 UTC) as "YYYY-MM-DDTHH:MM:SS.sssZ" into @p out, which has
 * room for RP_TIME_LEN bytes. Times before the year 0 show as the year 0000, after 9999 modulo
 * 10000: check against RP_TIME_MIN and RP_TIME_MAX where that matters.
 */
void rp_time_format(int64_t ms, char *out);

/** Days from 1970-01-01 to the civil date @p y-@p m-@p d (proleptic Gregorian; m 1–12). */
int64_t rp_time_days_from_civil(int64_t y, unsigned m, unsigned d);

/**
 * Reads exactly a date "YYYY-MM-DD" (a real day of a year 0001–9999) into @p y, @p m, @p d.
 * @return 0, or RP_EINVAL for anything else (the outputs are then unspecified).
 */
int rp_time_parse_date(const char *text, int *y, int *m, int *d);

/**
 * Reads an ISO-8601 date-time into milliseconds since the epoch: "YYYY-MM-DD", then optionally
 * "THH:MM", ":SS", ".fraction" (T may be t or a space; milliseconds kept, finer digits
 * dropped), then optionally "Z" or an offset "+HH:MM", "+HHMM", "+HH". No offset means UTC.
 * @param err may be NULL; else filled with a sentence that quotes @p text.
 * @return 0, or RP_EINVAL.
 */
int rp_time_parse(const char *text, int64_t *ms, rp_error_t *err);

/**
 * Parses a delay such as "90s", "15m", "24h", "3d", "2w" or "500ms" (also combined: "1h30m")
 * into milliseconds. RP_EINVAL with the position of the bad part.
 */
int rp_parse_delay(const char *text, int64_t *ms, rp_error_t *err);

/* ---- time zones and calendar buckets --------------------------------------------------- */

/** A time zone, read once from its zone file. Opaque; free with rp_zone_close(). */
typedef struct rp_zone rp_zone_t;

/** The longest zone name accepted (bytes, with its NUL). */
#define RP_ZONE_NAME_MAX 64

/**
 * Opens zone @p name: an IANA name ("Europe/Berlin") read from Debian's tzdata
 * (/usr/share/zoneinfo, TZif), or NULL, "", "UTC", "Etc/UTC" for UTC. A name is only letters,
 * digits, "_", "+", "-" and "/" between parts (no path escapes the zone folder).
 * @param out receives the zone (owned: rp_zone_close()).
 * @return 0, or RP_EINVAL naming the unknown zone (and @p err filled), RP_ENOMEM.
 * Known limit: past a zone file's last transition the last offset holds (Debian's files list
 * transitions up to 2037).
 */
int rp_zone_open(const char *name, rp_zone_t **out, rp_error_t *err);

/** Frees @p z (NULL is fine). */
void rp_zone_close(rp_zone_t *z);

/** The zone's name as opened ("UTC" for UTC and for NULL). Borrowed from @p z. */
const char *rp_zone_name(const rp_zone_t *z);

/** Seconds east of UTC in zone @p z (NULL: UTC) at the instant @p ms. */
int32_t rp_zone_offset(const rp_zone_t *z, int64_t ms);

/** Calendar buckets: the values rp_time_bucket_unit() returns. */
#define RP_BUCKET_DAY 0
#define RP_BUCKET_WEEK 1
#define RP_BUCKET_MONTH 2
#define RP_BUCKET_QUARTER 3
#define RP_BUCKET_YEAR 4

/** Bytes a bucket label takes, with its NUL. */
#define RP_BUCKET_LEN 16

/** The bucket named @p name ("day", "week", "month", "quarter", "year"), or -1. */
int rp_time_bucket_unit(const char *name);

/**
 * Writes the label of the bucket @p unit that holds instant @p ms on the wall clock of @p z
 * (NULL: UTC) into @p out (RP_BUCKET_LEN bytes). Labels sort as the buckets do: a day
 * "2026-01-05", a week by its Monday "2026-01-05" (ISO weeks), a month "2026-01", a quarter
 * "2026-Q1", a year "2026". @return 0, or RP_EINVAL for a unit not known or a year past 9999.
 */
int rp_time_bucket(int64_t ms, int unit, const rp_zone_t *z, char *out);

/** As rp_time_bucket() for the civil day @p days since 1970-01-01 (a date, with no zone). */
int rp_time_bucket_days(int64_t days, int unit, char *out);

#endif
