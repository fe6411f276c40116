/*
 * roles.c — api->role_default: a plugin that owns entities offers the grants a built-in role
 * (the portal's) has on them, kept in the role's setting unless an administrator said
 * otherwise. The core names no entity; the plugins that know the nouns do.
 */
#include <string.h>

#include "host.h"
#include "rapport/access.h"

/* An entity's "writable" list offered (@p offer, the offer's grant on the entity) into the
 * grant @p cur the role has already: the names it lacks are added, so each plugin lists the
 * fields it brings (operational contact's names, collaborative its language) and the list is
 * their union. A grant without a list gets one only from an offer that also says what the
 * role may do with the records ("create" or "update": the entity's owner), so that a plugin
 * adding one field to another's entity does not make every other field read-only. A list only
 * narrows what the role writes, so adding one to an administrator's grant widens nothing; an
 * administrator keeps a field out of it with a "read_only" rule, which wins over the list. */
static int merge_writable(json_t *cur, json_t *offer)
{
    json_t *add = json_object_get(offer, "writable");
    if (!json_is_array(add) || !json_is_object(cur))
        return 0;
    json_t *list = json_object_get(cur, "writable");
    if (!list) {
        if (!json_object_get(offer, "create") && !json_object_get(offer, "update"))
            return 0;
        return json_object_set(cur, "writable", add);
    }
    if (!json_is_array(list))
        return 0; /* not a list: the check of the role says so */
    size_t i, j;
    json_t *x, *y;
    json_array_foreach(add, i, x) {
        bool there = false;
        json_array_foreach(list, j, y)
            there = there || json_equal(x, y);
        if (!there && json_array_append(list, x))
            return -1;
    }
    return 0;
}

/* The grant @p g offered for an entity the role has none for, as it is kept (a new reference):
 * without "create" or "update" it is not the entity's owner's, so its "writable" list (a
 * field it adds to another's entity) waits for the owner's grant to join (merge_writable()). */
static json_t *owners_grant(json_t *g)
{
    if (!json_is_object(g) || !json_object_get(g, "writable") || json_object_get(g, "create") ||
        json_object_get(g, "update"))
        return json_incref(g);
    json_t *c = json_copy(g);
    if (c)
        json_object_del(c, "writable");
    return c;
}

/* Adds to @p have the keys of @p offer it lacks, one level down for "entities" and "fields"
 * (and the names of an entity's "writable" list, merge_writable()): what is there (an
 * administrator's choice, an earlier plugin's) stays. */
static int merge(json_t *have, json_t *offer)
{
    const char *k;
    json_t *v;
    json_object_foreach(offer, k, v) {
        bool ents = strcmp(k, "entities") == 0;
        json_t *cur = json_object_get(have, k);
        if (!cur && ents && json_is_object(v)) {
            /* Entity by entity below, so that an offer's grant goes through owners_grant(). */
            if (json_object_set_new(have, k, json_object()))
                return -1;
            cur = json_object_get(have, k);
        } else if (!cur) {
            if (json_object_set(have, k, v))
                return -1;
            continue;
        }
        if ((!ents && strcmp(k, "fields")) || !json_is_object(cur) || !json_is_object(v))
            continue;
        const char *k2;
        json_t *v2;
        json_object_foreach(v, k2, v2) {
            json_t *there = json_object_get(cur, k2);
            if (there) {
                if (ents && merge_writable(there, v2))
                    return -1;
                continue;
            }
            json_t *keep = ents ? owners_grant(v2) : json_incref(v2);
            int rc = !keep ? -1 : json_object_size(keep) || !ents ? json_object_set(cur, k2, keep)
                                                                    : 0;
            json_decref(keep);
            if (rc)
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
