/*
 * cron.h — five-field cron expressions: parsing them into bitsets, and finding when a schedule
 * next fires (or last fell due during downtime) in its own time zone, across daylight saving.
 */
#ifndef RAPPORT_CRON_H
#define RAPPORT_CRON_H

#include <stdbool.h>
#include <stdint.h>

#include "rapport/error.h"


/** The longest expression rp_cron_parse() accepts, in bytes (without the NUL). */
#define RP_CRON_MAX_LEN 256

/** The earliest instant rp_cron_next() and rp_cron_missed() accept: 1900-01-01T00:00:00Z. */
#define RP_CRON_MIN_MS (-2208988800000LL)

/** The latest instant they accept: 9999-12-31T23:59:59.999Z. */
#define RP_CRON_MAX_MS 253402300799999LL

/**
 * How far rp_cron_next() looks ahead (and rp_cron_missed() looks back), in days: eight years,
 * the longest gap between two 29 Februaries (2096-02-29 to 2104-02-29, as 2100 is no leap year).
 * A schedule with no slot in that window, such as "0 0 30 2 *", never fires.
 */
#define RP_CRON_HORIZON_DAYS (8 * 366 + 2)

/**
 * A parsed cron schedule. Plain data: copy it freely; it owns no memory.
 *
 * Bit v of a set means the field matches the value v. Every set holds at least one bit.
 */
typedef struct rp_cron {
    uint64_t minute; /**< Minutes 0–59: bits 0–59. */
    uint32_t hour;   /**< Hours 0–23: bits 0–23. */
    uint32_t mday;   /**< Days of the month 1–31: bits 1–31 (bit 0 is never set). */
    uint16_t month;  /**< Months 1–12 (January = 1): bits 1–12 (bit 0 is never set). */
    uint8_t wday;    /**< Days of the week, 0 = Sunday … 6 = Saturday: bits 0–6. The value 7
                          (also Sunday) is stored as bit 0. */
    bool mday_star;  /**< The day-of-month field was written starting with '*' ("*", "*\/2"). */
    bool wday_star;  /**< The day-of-week field was written starting with '*'. */
    char tz[64];     /**< The IANA zone the schedule runs in ("Europe/Berlin"), or "" for UTC. */
    char expr[RP_CRON_MAX_LEN + 1]; /**< The expression as given, for messages. */
} rp_cron_t;

/**
 * Parses the cron expression @p expr for the time zone @p tz into @p out.
 *
 * The expression has five fields separated by spaces or tabs — minute (0–59), hour (0–23),
 * day of the month (1–31), month (1–12 or JAN–DEC) and day of the week (0–7 or SUN–SAT, where
 * both 0 and 7 mean Sunday) — or is one of the macros @hourly ("0 * * * *"), @daily and
 * @midnight ("0 0 * * *"), @weekly ("0 0 * * 0"), @monthly ("0 0 1 * *"), @yearly and @annually
 * ("0 0 1 1 *"). Blanks before and after are ignored; names and macros are case-insensitive.
 *
 * Each field is a comma-separated list of items; an item is "*", a value "5", or a range "1-5",
 * and "*" or a range may take a step: "*\/15", "10-50/5", "MON-FRI/2". A range must not run
 * backwards, except that a day-of-week range may end in SUN ("FRI-SUN" is FRI-SAT plus Sunday).
 * A step applies to a range or "*" only: "5/15" is refused (write "5-59/15").
 *
 * The days follow Vixie cron: when the day-of-month and day-of-week fields both restrict the
 * day (neither is written starting with '*'), a day matches when EITHER matches ("0 0 13 * FRI"
 * fires on every 13th and on every Friday); otherwise a day must match both. As in Vixie cron,
 * a field written "*\/2" counts as starting with '*', so "0 0 *\/2 * FRI" means odd-numbered
 * days that are Fridays.
 *
 * @param expr  The expression (borrowed; read during the call only), at most RP_CRON_MAX_LEN
 *              bytes.
 * @param tz    NULL, "" or "UTC" for UTC; otherwise an IANA zone name such as "Europe/Berlin",
 *              which must exist as a zone file under /usr/share/zoneinfo (Debian's tzdata).
 *              Names under "right/" (clocks that count leap seconds) are refused.
 * @param out   Receives the schedule; left unspecified on failure.
 * @param err   Receives the detail on failure (may be NULL).
 * @return 0, or RP_EINVAL with @p err naming the field and the 1-based character position
 *         ("RP-E1601: cron "*\/0 * * * *": field 1 (minute) at position 1: step must be at
 *         least 1"), or the unknown time zone.
 */
int rp_cron_parse(const char *expr, const char *tz, rp_cron_t *out, rp_error_t *err);

/**
 * Finds the first time @p c fires strictly after @p after_ms.
 *
 * The fields are matched against the wall clock of the schedule's zone; daylight saving is
 * handled so that a wall-clock minute fires at most once:
 * - A local time skipped by a spring-forward transition (02:30 on 2026-03-29 in Europe/Berlin)
 *   fires once, at the first instant after the gap (03:00 CEST, 01:00Z); several skipped slots
 *   (02:00 and 02:30) make one firing.
 * - A local time that occurs twice on a fall-back day (01:30 on 2026-11-01 in America/New_York,
 *   02:30 on 2026-10-25 in Europe/Berlin) fires once, at its first occurrence (the summer-time
 *   one).
 * - Hourly-style schedules — those whose hour field matches all 24 hours ("0 * * * *",
 *   "*\/15 * * * *") — simply follow real elapsed time: a slot skipped by spring-forward is
 *   dropped rather than caught up, since the next slot comes as the clock moves on (so
 *   "30 * * * *" fires at 01:30 CET and then 03:30 CEST, one real hour later). In the repeated
 *   hour of a fall-back day they obey the rule above, so a wall-clock minute does not fire a
 *   second time: "0 * * * *" in Berlin fires at 02:00 CEST and next at 03:00 CET.
 *
 * Thread safety: for a schedule with a time zone this sets the process's TZ environment
 * variable for the duration of the call (to read the zone through glibc's localtime_r) and
 * restores the previous value (or its absence) before returning. It is therefore not
 * thread-safe: no other thread may call it, rp_cron_missed(), getenv/setenv, tzset, localtime
 * or mktime at the same time. UTC schedules touch no global state and are thread-safe.
 *
 * @param c         The schedule (borrowed).
 * @param after_ms  The instant to search after, in milliseconds since the Unix epoch, between
 *                  RP_CRON_MIN_MS and RP_CRON_MAX_MS.
 * @param next_ms   Receives the firing instant (a whole second; milliseconds since the epoch).
 * @param err       Receives the detail on failure (may be NULL).
 * @return 0; RP_ENOTFOUND when the schedule has no slot within RP_CRON_HORIZON_DAYS (as
 *         "0 0 30 2 *"); RP_EINVAL for a NULL argument or an instant out of range; RP_ENOMEM
 *         when the TZ value cannot be saved.
 */
int rp_cron_next(const rp_cron_t *c, int64_t after_ms, int64_t *next_ms, rp_error_t *err);

/**
 * Catch-up after downtime: finds the LATEST slot of @p c in (@p last_ms, @p now_ms], so that a
 * schedule which fell due several times while the engine was down runs once on start, not once
 * per missed slot. Slots are those rp_cron_next() would return, with the same daylight saving
 * rules and the same thread-safety caveat. Cost does not grow with the length of the downtime.
 *
 * @param c        The schedule (borrowed).
 * @param last_ms  When it last fired (or was created), ms since the epoch; in range as for
 *                 rp_cron_next().
 * @param now_ms   The present, ms since the epoch; in range. Nothing is due if it is not after
 *                 @p last_ms.
 * @param fire_ms  Receives the latest slot when one fell due; untouched otherwise.
 * @param err      Receives the detail on failure (may be NULL).
 * @return 1 when a slot fell due, 0 when none did (including a schedule that never fires), or
 *         a negative RP_E* code as for rp_cron_next().
 */
int rp_cron_missed(const rp_cron_t *c, int64_t last_ms, int64_t now_ms, int64_t *fire_ms,
                   rp_error_t *err);

#endif
