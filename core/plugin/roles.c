/*
 * roles.c — api->role_default: a plugin that owns entities offers the grants a built-in role
 * (the portal's) has on them, kept in the role's setting unless an administrator said
 * otherwise. The core names no entity; the plugins that know the nouns do.
 */
#include <string.h>

#include "host.h"
#include "rapport/access.h"

/* Adds to @p have the keys of @p offer it lacks, one level down for "entities" and "fields":
 * what is there (an administrator's choice, an earlier plugin's) stays. */
static int merge(json_t *have, json_t *offer)
{
    const char *k;
    json_t *v;
    json_object_foreach(offer, k, v) {
        json_t *cur = json_object_get(have, k);
        if (!cur) {
            if (json_object_set(have, k, v))
                return -1;
            continue;
        }
        if ((strcmp(k, "entities") && strcmp(k, "fields")) || !json_is_object(cur) ||
            !json_is_object(v))
            continue;
        const char *k2;
        json_t *v2;
        json_object_foreach(v, k2, v2) {
            if (!json_object_get(cur, k2) && json_object_set(cur, k2, v2))
                return -1;
        }
    }
    return 0;
}

int rp__plugin_role_default(rapport_host *h, const char *role, const char *grants)
{
    if (!role || !rp_store_name_ok(role))
        return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "role_default: \"%s\" is not a role name",
                                    role ? role : "(null)");
    json_error_t je;
    json_t *offer = grants ? json_loads(grants, 0, &je) : NULL;
    if (!json_is_object(offer)) {
        json_decref(offer);
        return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "role_default: the grants of role %s "
                                    "must be a JSON object", role);
    }
    char key[96];
    snprintf(key, sizeof key, "roles.%s", role);
    json_t *have = NULL;
    int rc = rp_config_get(h->P->s, key, &have, NULL);
    if (rc || !json_is_object(have)) {
        json_decref(have);
        have = json_object();
    }
    json_t *before = json_deep_copy(have);
    rp_error_t err = {0};
    if (!have || !before || merge(have, offer)) {
        rc = rp__plugin_fail(h, RAPPORT_ENOMEM, "out of memory");
    } else if (json_equal(have, before)) {
        rc = 0; /* nothing new: no write, no event */
    } else if ((rc = rp_access_role_set(h->P->s, &h->ctx, role, have, &err))) {
        rp__plugin_fail(h, rc, "role_default: %s", err.msg);
    }
    json_decref(before);
    json_decref(have);
    json_decref(offer);
    if (!rc)
        h->last_rc = 0;
    return rc;
}
