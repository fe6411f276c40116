/*
 * error.h — how the core reports failure: a negative RP_E* code returned, and a
 * human sentence with a stable "RP-Ennnn" code written into the caller's rp_error_t.
 */
#ifndef RAPPORT_ERROR_H
#define RAPPORT_ERROR_H

#include <stddef.h>

/** Error classes. Functions return 0 on success or one of these (always negative). */
enum {
    RP_OK = 0,
    RP_EINVAL = -1,    /**< Bad input: unknown name, wrong type, malformed value. */
    RP_ENOTFOUND = -2, /**< The entity, field or record does not exist. */
    RP_ECONFLICT = -3, /**< Stale version or duplicate unique value. */
    RP_EVETO = -4,     /**< A before-hook refused the change. */
    RP_EIO = -5,       /**< The database failed (disk, lock, corruption). */
    RP_ENOMEM = -6,    /**< Out of memory. */
    RP_EVERSION = -7,  /**< The database was written by a newer Rapport. */
    RP_ELOOP = -8,     /**< A chain of caused changes grew past the depth limit. */
    RP_ESTATE = -9,    /**< The call does not fit the current state (e.g. no open transaction). */
    RP_EPERM = -10,    /**< The actor lacks a permission (the message names it). */
    RP_ELIMIT = -11,   /**< Over a published cap or a time budget (the message names it). */
};

/** Stable message codes; a user can search for "RP-E1203". */
enum {
    RP_C_OPEN = 1001,        /**< Cannot open the database. */
    RP_C_NEWER = 1002,       /**< Database schema is newer than this build. */
    RP_C_SQL = 1003,         /**< The database reported an error. */
    RP_C_IDENT = 1101,       /**< Not a valid identifier. */
    RP_C_DUP_ENTITY = 1102,  /**< Entity already defined. */
    RP_C_DUP_FIELD = 1103,   /**< Field already defined. */
    RP_C_BAD_SPEC = 1104,    /**< Bad field specification. */
    RP_C_DECLARE = 1105,     /**< A declared schema the store cannot reach by itself. */
    RP_C_MIGRATION = 1106,   /**< A schema migration failed (and was rolled back). */
    RP_C_NO_ENTITY = 1201,   /**< Unknown entity. */
    RP_C_NO_RECORD = 1202,   /**< No such record. */
    RP_C_NO_FIELD = 1203,    /**< Unknown field. */
    RP_C_TYPE = 1204,        /**< Value of the wrong type or form. */
    RP_C_REQUIRED = 1205,    /**< Required field missing. */
    RP_C_ENUM = 1206,        /**< Value not among the enum's values. */
    RP_C_UNIQUE = 1207,      /**< Duplicate value of a unique field. */
    RP_C_REF = 1208,         /**< Reference to a missing record. */
    RP_C_STALE = 1209,       /**< Stale version. */
    RP_C_DELETED = 1210,     /**< Record is soft-deleted. */
    RP_C_REFERENCED = 1211,  /**< Record still referenced (purge refused). */
    RP_C_READONLY = 1212,    /**< Field cannot be written (system field). */
    RP_C_FILTER = 1301,      /**< Malformed filter. */
    RP_C_ORDER = 1302,       /**< Malformed sort order. */
    RP_C_CURSOR = 1303,      /**< Malformed or foreign cursor. */
    RP_C_SEARCH = 1304,      /**< Malformed search text. */
    RP_C_AGGREGATE = 1305,   /**< Malformed aggregate (a group or measure). */
    RP_C_VETO = 1401,        /**< A before-hook vetoed. */
    RP_C_LOOP = 1402,        /**< Change chain too deep. */
    RP_C_SUBSCRIBER = 1403,  /**< Unknown subscriber or dead letter. */
    RP_C_TXN = 1501,         /**< Transaction misuse. */
    RP_C_CRON = 1601,        /**< Malformed cron expression or unknown time zone. */
    RP_C_LIMIT = 1701,       /**< A script went over one of its limits. */
    RP_C_SCRIPT = 1702,      /**< A script failed (its message carries file:line). */
    RP_C_CAP = 1703,         /**< A request over a published cap (words, conditions, items). */
    RP_C_BUDGET = 1704,      /**< Work stopped at the time budget of the call it ran in. */
    RP_C_PLUGIN = 1801,      /**< A plugin was refused or failed. */
    RP_C_AUTH = 1901,        /**< A password or token that does not let one in. */
    RP_C_USER = 1902,        /**< A user or token that cannot be made as asked. */
    RP_C_ROLE = 1903,        /**< A role that is not defined or whose grants are malformed. */
    RP_C_DENIED = 1904,      /**< A permission the actor lacks. */
    RP_C_WEBHOOK = 2001,     /**< A webhook that cannot be made as asked, or is not there. */
    RP_C_WEBHOOK_DEST = 2002, /**< A webhook destination refused (webhooks.allow_networks). */
};

/** The detail of a failure. The caller owns it (usually on the stack). */
typedef struct rp_error {
    int code;       /**< The RP_E* class, or 0 when nothing failed. */
    int msgcode;    /**< The stable RP-E number, or 0. */
    char msg[512];  /**< A full sentence naming what was wrong; "" when nothing failed. */
    char field[64]; /**< The field the error is about, or "" (for callers that point at it). */
} rp_error_t;

/**
 * Fills @p err (which may be NULL) with @p code, the stable number @p msgcode and a
 * printf-style message prefixed with "RP-Ennnn: ". Returns @p code, so a caller can write
 * `return rp_error_set(err, RP_EINVAL, RP_C_TYPE, "...")`.
 */
int rp_error_set(rp_error_t *err, int code, int msgcode, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** Clears @p err to "no error". */
void rp_error_clear(rp_error_t *err);

/**
 * Names the field @p field (may be NULL) that @p err is about and returns @p code, so that it
 * wraps a call: return rp_error_field(err, name, rp_error_set(err, …)). rp_error_set() and
 * rp_error_clear() forget the field.
 */
int rp_error_field(rp_error_t *err, const char *field, int code);

/** A short constant name for an RP_E* code ("invalid input", "not found", …). */
const char *rp_strerror(int code);

#endif
