/*
 * settings.h — the one settings reader: a setting is $RAPPORT_<KEY> for one run when that is
 * set, else the database's value (`rapport config`), else the caller's default. Every door
 * (the CLI, `crm.config`, the engine's limits and servers) reads settings through it.
 */
#ifndef RAPPORT_SETTINGS_H
#define RAPPORT_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "rapport/error.h"
#include "rapport/log.h"
#include "rapport/store.h"

/**
 * Writes the name of the environment variable that overrides @p key into @p buf (of @p cap
 * bytes): "RAPPORT_" then the key upper-cased, dots as underscores ("http.listen" gives
 * "RAPPORT_HTTP_LISTEN"). Returns 0, or RP_EINVAL when it does not fit (the name is cut).
 */
int rp_setting_env_name(const char *key, char *buf, size_t cap);

/**
 * The text of the variable that overrides @p key for this run, or NULL when it is unset or
 * empty (an empty variable overrides nothing). Borrowed: valid until the environment changes.
 */
const char *rp_setting_override(const char *key);

/**
 * Reads the setting @p key: its override's text (as JSON when it parses as JSON, else as a
 * string), else the value stored in @p s. *out is owned (json_decref()). Returns 0,
 * RP_ENOTFOUND when neither has it (the caller's default applies), or another code with @p err
 * filled when the database fails.
 */
int rp_setting_get(rp_store_t *s, const char *key, json_t **out, rp_error_t *err);

/**
 * A positive whole-number setting, or @p def when it is unset. One that is not a positive
 * whole number keeps @p def and says so through @p log (a warning naming the variable or the
 * key, and the value).
 */
int64_t rp_setting_int(rp_store_t *s, const char *key, int64_t def, rp_log_fn log, void *log_ud);

/**
 * A yes/no setting, or @p def when it is unset: false, 0, "0", "off", "false" and "no" are
 * no; any other value is yes.
 */
bool rp_setting_bool(rp_store_t *s, const char *key, bool def);

#endif
