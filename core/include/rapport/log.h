/*
 * log.h — the one log: a line per notable thing, "time level component message key=value…",
 * plain enough to grep, written to one sink the program sets (standard error by default).
 *
 * Every room says what it has to say here, never on stderr itself. A room that was handed a
 * log function (rp_sched_opts_t.log, rp_http_opts_t.log, …) says it there; one that was not
 * says it to the sink (rp_log_to with a NULL function). Whichever way, the message is made one
 * line and no line carries a secret: the value of a key=value whose key names a secret
 * (password, token, secret, api_key, credential, private_key), a "Bearer" credential and the
 * password of a URL are written as [secret].
 *
 * The sink and the level are the process's, not an engine's: set them once, before any thread
 * that logs starts (the command line does, in main).
 */
#ifndef RAPPORT_LOG_H
#define RAPPORT_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/** How much a line matters; lines below the level set (rp_log_set_level) are dropped. */
typedef enum rp_log_level {
    RP_LOG_DEBUG = 0, /**< "debug": for whoever is chasing a problem. */
    RP_LOG_INFO,      /**< "info": notable things (a server started, a job ran late). */
    RP_LOG_WARN,      /**< "warn": something went wrong and was handled. */
    RP_LOG_ERROR,     /**< "error": something failed. */
} rp_log_level_t;

/**
 * Where a line goes: @p level is "debug", "info", "warn" or "error"; @p component names the
 * room ("http", "sched", "script:<name>", "plugin:<name>"); @p msg is one line, no newline, its
 * secrets masked already. All three are borrowed for the call.
 */
typedef void (*rp_log_fn)(void *ud, const char *level, const char *component, const char *msg);

/** The name of @p level ("debug", "info", "warn", "error"); "info" for a value out of range. */
const char *rp_log_level_name(rp_log_level_t level);

/** The level named @p name (as rp_log_level_name says it), or -1 when @p name is none. */
int rp_log_level_of(const char *name);

/**
 * Copies @p msg into the @p cap bytes at @p out (@p cap > 0; always NUL-ended, cut short when
 * too long) as one line with its secrets masked: each CR or LF becomes a space, and the value
 * of a key=value whose key names a secret, the credential after "Bearer " and the password in a
 * URL's "user:password@" become "[secret]". Returns the length written.
 */
size_t rp_log_clean(const char *msg, char *out, size_t cap);

/**
 * Formats the line "<time> <level> <component> <msg>\n" into the @p cap bytes at @p out, with
 * @p ms (milliseconds since 1970, UTC) as "2026-01-31T09:15:02.123Z" and @p msg cleaned
 * (rp_log_clean). Returns the length of the whole line, which is >= @p cap when it was cut
 * short (as snprintf), NUL-ended whenever @p cap > 0.
 */
size_t rp_log_format(char *out, size_t cap, int64_t ms, const char *level, const char *component,
                     const char *msg);

/** The default sink: writes the formatted line, stamped with the real time, to stderr. */
void rp_log_stderr(void *ud, const char *level, const char *component, const char *msg);

/** Sends every line from now on to @p sink with @p ud; NULL: back to rp_log_stderr. */
void rp_log_set_sink(rp_log_fn sink, void *ud);

/** Drops the lines below @p min from now on (the default is RP_LOG_INFO). */
void rp_log_set_level(rp_log_level_t min);

/** Whether a line at @p level is written (at or above the level set). */
int rp_log_enabled(rp_log_level_t level);

/**
 * Writes @p msg at @p level (a level name; an unknown one counts as "info") from @p component
 * to the sink, cleaned (rp_log_clean), unless the level set drops it.
 */
void rp_log_write(const char *level, const char *component, const char *msg);

/** Writes the message made from @p fmt at @p level from @p component to the sink. */
void rp_log(rp_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/**
 * Says the message made from @p fmt, cleaned, at @p level from @p component to @p fn with
 * @p ud, or to the sink when @p fn is NULL; the level set drops it in both cases.
 */
void rp_log_to(rp_log_fn fn, void *ud, const char *level, const char *component,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/** rp_log_to() with a va_list. */
void rp_log_vto(rp_log_fn fn, void *ud, const char *level, const char *component,
                const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

#endif
