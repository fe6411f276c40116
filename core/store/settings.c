/*
 * settings.c — the one settings reader: $RAPPORT_<KEY> for one run, else the database's
 * setting, else the caller's default.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapport/settings.h"

int rp_setting_env_name(const char *key, char *buf, size_t cap)
{
    if (cap == 0)
        return RP_EINVAL;
    size_t n = (size_t)snprintf(buf, cap, "RAPPORT_");
    if (n >= cap)
        return RP_EINVAL;
    for (const char *p = key; *p; p++) {
        if (n >= cap - 1) {
            buf[n] = '\0';
            return RP_EINVAL;
        }
        buf[n++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
    }
    buf[n] = '\0';
    return 0;
}

const char *rp_setting_override(const char *key)
{
    char name[128];
    if (!key || rp_setting_env_name(key, name, sizeof name))
        return NULL;
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

int rp_setting_get(rp_store_t *s, const char *key, json_t **out, rp_error_t *err)
{
    *out = NULL;
    if (!key)
        return rp_error_set(err, RP_EINVAL, RP_C_IDENT, "a setting needs a name (NULL given)");
    const char *over = rp_setting_override(key);
    if (over) {
        json_t *j = json_loads(over, JSON_DECODE_ANY, NULL);
        *out = j ? j : json_string(over);
        if (!*out)
            return rp_error_set(err, RP_EINVAL, RP_C_TYPE,
                                "the override of the setting %s is not valid UTF-8", key);
        return 0;
    }
    return rp_config_get(s, key, out, err);
}

int64_t rp_setting_int(rp_store_t *s, const char *key, int64_t def, rp_log_fn log, void *log_ud)
{
    json_t *j = NULL;
    if (rp_setting_get(s, key, &j, NULL) != 0)
        return def;
    int64_t v = json_is_integer(j) ? json_integer_value(j) : 0;
    if (v <= 0) {
        if (log) {
            char name[128], msg[512];
            const char *over = rp_setting_override(key);
            rp_setting_env_name(key, name, sizeof name);
            snprintf(msg, sizeof msg, "%s = %s is not a positive number: the default applies",
                     over ? name : key, over ? over : "the setting");
            log(log_ud, "warn", "settings", msg);
        }
        v = def;
    }
    json_decref(j);
    return v;
}

bool rp_setting_bool(rp_store_t *s, const char *key, bool def)
{
    json_t *j = NULL;
    if (rp_setting_get(s, key, &j, NULL) != 0)
        return def;
    static const char *const no[] = {"0", "off", "false", "no"};
    bool yes = !(json_is_false(j) || (json_is_integer(j) && json_integer_value(j) == 0));
    for (int i = 0; yes && json_is_string(j) && i < 4; i++)
        yes = strcmp(json_string_value(j), no[i]) != 0;
    json_decref(j);
    return yes;
}
