/*
 * erase.c — when a contact is erased, the files its conversations carried go too: the
 * attachments of its interactions (and their parts) are two refs away from the contact, out of
 * the store's one-level reach, so this before-hook erases them in the same transaction.
 */
#include <stdio.h>
#include <stdlib.h>

#include "collaborative.h"

/* The ids of the records of @p entity whose @p field is @p id (soft-deleted ones too), every
 * page of them; NULL with last_error set when a read fails. */
static json_t *ids_of(rapport_host *h, const rapport_api *api, const char *entity,
                      const char *field, int64_t id)
{
    json_t *ids = json_array();
    json_t *q = json_pack("{s:{s:I},s:i,s:[s],s:b}", "where", field, (json_int_t)id, "limit",
                          1000, "fields", "id", "deleted", 1);
    for (;;) {
        char *text = json_dumps(q, JSON_COMPACT);
        json_t *page = text ? cm_json(api->find(h, entity, text)) : NULL;
        free(text);
        if (!page) {
            json_decref(ids);
            ids = NULL;
            break;
        }
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(page, "data"), i, r)
            json_array_append(ids, json_object_get(r, "id"));
        json_t *next = json_object_get(page, "next");
        bool more = json_is_string(next);
        if (more)
            json_object_set(q, "after", next);
        json_decref(page);
        if (!more)
            break;
    }
    json_decref(q);
    return ids;
}

static int erase_attachments(rapport_host *h, const rapport_api *api, rapport_change *c,
                             void *ud, char *err, size_t errlen)
{
    (void)ud;
    int64_t contact = api->change_id(c);
    json_t *inter = ids_of(h, api, "interaction", "contact", contact);
    int rc = inter ? 0 : RAPPORT_EINVAL;
    char reason[80];
    snprintf(reason, sizeof reason, "contact %lld was erased", (long long)contact);
    size_t i, j;
    json_t *v, *w;
    json_array_foreach(inter, i, v) {
        /* A message still waiting with a secret (mail_secret.c) must not outlive its contact. */
        if (!rc)
            cm_mail_secret_drop(h, json_integer_value(v));
        json_t *att =
            rc ? NULL : ids_of(h, api, "attachment", "interaction", json_integer_value(v));
        if (!rc && !att)
            rc = RAPPORT_EINVAL;
        json_array_foreach(att, j, w) {
            if (!rc)
                rc = api->erase(h, "attachment", json_integer_value(w), reason);
        }
        json_decref(att);
    }
    json_decref(inter);
    if (rc)
        snprintf(err, errlen, "cannot erase the attachments of contact %lld: %s",
                 (long long)contact, api->last_error(h));
    return rc;
}

int cm_erase_init(rapport_host *h, char *err, size_t errlen)
{
    if (!RAPPORT_HAS(cm_api, erase))
        return 0;
    if (cm_api->hook(h, "contact", RAPPORT_ERASE, 0, erase_attachments, NULL))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "%s", cm_api->last_error(h));
    return 0;
}
