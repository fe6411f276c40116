/*
 * log.c — the one log (rapport/log.h): how a line is cleaned and formatted, the process's sink
 * and level, and the functions every room says things through.
 */
#include <ctype.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "rapport/log.h"
#include "rapport/time.h"

#define MSG_MAX 4096 /* a message, before and after cleaning */
#define LINE_CAP (MSG_MAX + 256)

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* The process's sink and level: set once, before the threads that log start (log.h). The level
 * is atomic because a thread may read it while the command line sets it. */
static rp_log_fn sink = rp_log_stderr;
static void *sink_ud;
static atomic_int min_level = RP_LOG_INFO;

/* ---- cleaning and formatting --------------------------------------------------------------- */

const char *rp_log_level_name(rp_log_level_t level)
{
    if ((int)level < RP_LOG_DEBUG || level > RP_LOG_ERROR)
        return "info";
    return level_names[level];
}

int rp_log_level_of(const char *name)
{
    for (int i = RP_LOG_DEBUG; name && i <= RP_LOG_ERROR; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

static bool key_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.';
}

/* Whether the key of @p n bytes at @p key names a secret. */
static bool secret_key(const char *key, size_t n)
{
    static const char *const marks[] = {"secret", "password", "passwd", "token", "api_key",
                                        "apikey", "credential", "private_key", NULL};
    char low[64];
    if (n == 0 || n >= sizeof low)
        return false;
    for (size_t i = 0; i < n; i++)
        low[i] = (char)tolower((unsigned char)key[i]);
    low[n] = '\0';
    for (int i = 0; marks[i]; i++)
        if (strstr(low, marks[i]))
            return true;
    return false;
}

/* The length of the value at @p v: a quoted string with its quotes, or up to a space or a
 * separator. */
static size_t value_len(const char *v)
{
    size_t n = 0;
    if (v[0] == '"') {
        for (n = 1; v[n] && v[n] != '"'; n++)
            if (v[n] == '\\' && v[n + 1])
                n++;
        return v[n] ? n + 1 : n;
    }
    while (v[n] && !isspace((unsigned char)v[n]) && !strchr(",;&)", v[n]))
        n++;
    return n;
}

/* The length of the credential in a URL's authority at @p p (just after "://"): the bytes
 * between the first ':' and the '@' of "user:password@", or 0 when there is none. */
static size_t url_password(const char *p, size_t *skip)
{
    size_t i = 0, colon = 0;
    for (; p[i] && p[i] != '@' && p[i] != '/' && !isspace((unsigned char)p[i]); i++)
        if (p[i] == ':' && !colon)
            colon = i + 1;
    if (p[i] != '@' || !colon)
        return 0;
    *skip = colon;
    return i - colon;
}

typedef struct {
    char *out;
    size_t cap, len;
} buf_t;

static void put(buf_t *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n && b->len + 1 < b->cap; i++)
        b->out[b->len++] = (s[i] == '\n' || s[i] == '\r') ? ' ' : s[i];
    b->out[b->len] = '\0';
}

size_t rp_log_clean(const char *msg, char *out, size_t cap)
{
    buf_t b = {out, cap, 0};
    out[0] = '\0';
    if (!msg)
        return 0;
    size_t key = 0; /* where the key=value's key being read started */
    for (size_t i = 0; msg[i];) {
        const char *p = msg + i;
        size_t skip = 0, n;
        if (p[0] == '=' && secret_key(msg + key, i - key)) {
            put(&b, "=[secret]", 9);
            i += 1 + value_len(p + 1);
        } else if (strncasecmp(p, "bearer ", 7) == 0 && (i == 0 || !key_char(p[-1])) &&
                   p[7] && !isspace((unsigned char)p[7])) {
            put(&b, p, 7);
            put(&b, "[secret]", 8);
            i += 7 + value_len(p + 7);
        } else if (strncmp(p, "://", 3) == 0 && (n = url_password(p + 3, &skip)) > 0) {
            put(&b, p, 3 + skip);
            put(&b, "[secret]", 8);
            i += 3 + skip + n;
        } else {
            put(&b, p, 1);
            i++;
        }
        if (!key_char(msg[i - 1]) || i == 0)
            key = i;
    }
    return b.len;
}

size_t rp_log_format(char *out, size_t cap, int64_t ms, const char *level, const char *component,
                     const char *msg)
{
    char clean[MSG_MAX];
    rp_log_clean(msg, clean, sizeof clean);
    char when[RP_TIME_LEN];
    rp_time_format(ms, when);
    int n = snprintf(out, cap, "%s %s %s %s\n", when, level ? level : "info",
                     component ? component : "-", clean);
    return n < 0 ? 0 : (size_t)n;
}

/* ---- the sink ------------------------------------------------------------------------------ */

void rp_log_stderr(void *ud, const char *level, const char *component, const char *msg)
{
    (void)ud;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char line[LINE_CAP];
    size_t n = rp_log_format(line, sizeof line, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
                             level, component, msg);
    if (n >= sizeof line) { /* cut short: still one whole line */
        n = sizeof line - 1;
        line[n - 1] = '\n';
    }
    /* One write per line, so lines from several threads never interleave. */
    fwrite(line, 1, n, stderr);
    fflush(stderr);
}

void rp_log_set_sink(rp_log_fn fn, void *ud)
{
    sink = fn ? fn : rp_log_stderr;
    sink_ud = fn ? ud : NULL;
}

void rp_log_set_level(rp_log_level_t min)
{
    atomic_store(&min_level, (int)min);
}

int rp_log_enabled(rp_log_level_t level)
{
    return (int)level >= atomic_load(&min_level);
}

static bool level_enabled(const char *level)
{
    int lv = rp_log_level_of(level);
    return rp_log_enabled(lv < 0 ? RP_LOG_INFO : (rp_log_level_t)lv);
}

/* ---- saying things -------------------------------------------------------------------------- */

void rp_log_write(const char *level, const char *component, const char *msg)
{
    rp_log_to(NULL, NULL, level, component, "%s", msg ? msg : "");
}

void rp_log_vto(rp_log_fn fn, void *ud, const char *level, const char *component,
                const char *fmt, va_list ap)
{
    if (!level_enabled(level))
        return;
    char msg[MSG_MAX], clean[MSG_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    rp_log_clean(msg, clean, sizeof clean);
    if (fn)
        fn(ud, level, component, clean);
    else
        sink(sink_ud, level, component, clean);
}

void rp_log_to(rp_log_fn fn, void *ud, const char *level, const char *component,
               const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rp_log_vto(fn, ud, level, component, fmt, ap);
    va_end(ap);
}

void rp_log(rp_log_level_t level, const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rp_log_vto(NULL, NULL, rp_log_level_name(level), component, fmt, ap);
    va_end(ap);
}
