/*
 * time.h — the one codec for time as the engine writes it: milliseconds since the epoch shown
 * as UTC ISO-8601 ("2026-01-05T09:30:00.000Z"), ISO-8601 dates and date-times read back, and
 * delays written the way people say them ("90s", "24h", "1h30m"). No locale, no time zone
 * database, no libc calendar (timegm, strftime): the same text on every platform.
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

#endif
