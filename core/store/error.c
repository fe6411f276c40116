/*
 * error.c — filling rp_error_t: a class, a stable RP-E number and one sentence.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rapport/error.h"

int rp_error_set(rp_error_t *err, int code, int msgcode, const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    err->msgcode = msgcode;
    err->field[0] = '\0';
    int n = 0;
    if (msgcode > 0)
        n = snprintf(err->msg, sizeof err->msg, "RP-E%d: ", msgcode);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg + n, sizeof err->msg - (size_t)n, fmt, ap);
    va_end(ap);
    return code;
}

int rp_error_field(rp_error_t *err, const char *field, int code)
{
    if (err)
        snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    return code;
}

void rp_error_clear(rp_error_t *err)
{
    if (!err)
        return;
    err->code = 0;
    err->msgcode = 0;
    err->msg[0] = '\0';
    err->field[0] = '\0';
}

const char *rp_strerror(int code)
{
    switch (code) {
    case RP_OK: return "ok";
    case RP_EINVAL: return "invalid input";
    case RP_ENOTFOUND: return "not found";
    case RP_ECONFLICT: return "conflict";
    case RP_EVETO: return "vetoed";
    case RP_EIO: return "database error";
    case RP_ENOMEM: return "out of memory";
    case RP_EVERSION: return "newer database";
    case RP_ELOOP: return "change chain too deep";
    case RP_ESTATE: return "wrong state";
    case RP_EPERM: return "permission denied";
    case RP_ELIMIT: return "over a limit";
    default: return "unknown error";
    }
}
