/*
 * purchases.c — the purchase fact table's own rule: a purchase names its customer by contact
 * id or by the key another system knows them by (contact.external_id), and a key nobody has
 * yet becomes a minimal contact, so a bare purchase history (a shop's transaction log) loads
 * as it is. A batch hook: an import looks its keys up a batch at a time.
 *
 * customer may be: a contact id (a JSON integer, or "#123" in a CSV cell), or any other text,
 * which is an external_id (text starting "#" that is not "#" and a number is refused).
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytical.h"

#define LOOKUP_CHUNK 500

/* "#123" -> 123; 0 when @p s is not that form. */
static int64_t hash_id(const char *s)
{
    if (s[0] != '#' || !s[1])
        return 0;
    char *end;
    long long v = strtoll(s + 1, &end, 10);
    return *end || v <= 0 ? 0 : v;
}

/* Looks up the ids of the external ids in @p keys (an object key -> null), filling them in. */
static int lookup(rapport_host *h, const rapport_api *api, json_t *keys, char *err,
                  size_t errlen)
{
    json_t *batch = json_array();
    const char *k;
    json_t *v;
    void *it = json_object_iter(keys);
    int rc = 0;
    while (it || json_array_size(batch)) {
        if (it) {
            k = json_object_iter_key(it);
            json_array_append_new(batch, json_string(k));
            it = json_object_iter_next(keys, it);
        }
        if (json_array_size(batch) < LOOKUP_CHUNK && it)
            continue;
        json_t *q = json_pack("{s:{s:{s:O}},s:[s,s],s:i,s:b}", "where", "external_id", "in",
                              batch, "fields", "id", "external_id", "limit", LOOKUP_CHUNK,
                              "deleted", 1);
        char *qt = json_dumps(q, JSON_COMPACT);
        json_decref(q);
        json_t *page = an_json(api->find(h, "contact", qt));
        free(qt);
        if (!page) {
            rc = an_fail(err, errlen, "purchase.customer: cannot look the customers up: %s",
                         api->last_error(h));
            break;
        }
        size_t i;
        json_array_foreach(json_object_get(page, "data"), i, v) {
            const char *ext = json_string_value(json_object_get(v, "external_id"));
            if (ext)
                json_object_set(keys, ext, json_object_get(v, "id"));
        }
        json_decref(page);
        json_array_clear(batch);
    }
    json_decref(batch);
    return rc;
}

/* A minimal contact for an external id nobody has: its key is all that is known. */
static int make_contact(rapport_host *h, const rapport_api *api, const char *key, int64_t *id,
                        char *err, size_t errlen)
{
    json_t *c = json_pack("{s:s+,s:s,s:s}", "last_name", "Customer ", key, "external_id", key,
                          "source", "purchase");
    char *t = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    int rc = t ? api->create(h, "contact", t, id) : RAPPORT_ENOMEM;
    free(t);
    if (rc)
        return an_fail(err, errlen, "purchase.customer \"%s\": cannot make its contact: %s", key,
                       api->last_error(h));
    return 0;
}

static int resolve(rapport_host *h, const rapport_api *api, rapport_change *c, void *ud,
                   char *err, size_t errlen)
{
    (void)ud;
    int n = api->change_count(c);
    json_t *keys = json_object();  /* external id -> its contact id, or null */
    json_t *rows = json_array();   /* [row, key] of each row that names a key */
    int rc = 0;
    for (int r = 0; r < n && !rc; r++) {
        char *t = api->change_get(c, r, "customer");
        json_t *v = t ? json_loads(t, JSON_DECODE_ANY, NULL) : NULL;
        api->free(t);
        const char *s = json_string_value(v);
        if (s) {
            while (isspace((unsigned char)*s))
                s++;
            size_t len = strlen(s);
            while (len && isspace((unsigned char)s[len - 1]))
                len--;
            char key[256];
            if (len == 0 || len >= sizeof key) {
                api->change_refuse(c, r);
                rc = an_fail(err, errlen, "purchase.customer: \"%s\" is not a contact id or an "
                             "external id (1 to 255 characters)", len ? "…" : "");
            } else {
                memcpy(key, s, len);
                key[len] = '\0';
                int64_t id = hash_id(key);
                if (!id && key[0] == '#') {
                    /* "#12x" was meant as an id: it is not taken for somebody's key. */
                    api->change_refuse(c, r);
                    rc = an_fail(err, errlen, "purchase.customer: \"%s\" is not a contact id "
                                 "(#, then a positive number)", key);
                } else if (id) {
                    char num[24];
                    snprintf(num, sizeof num, "%lld", (long long)id);
                    api->change_set(c, r, "customer", num);
                } else {
                    if (!json_object_get(keys, key))
                        json_object_set_new(keys, key, json_null());
                    json_array_append_new(rows, json_pack("[i,s]", r, key));
                }
            }
        }
        json_decref(v);
    }
    if (!rc && json_object_size(keys))
        rc = lookup(h, api, keys, err, errlen);
    size_t i;
    json_t *rk;
    json_array_foreach(rows, i, rk) {
        if (rc)
            break;
        const char *key = json_string_value(json_array_get(rk, 1));
        json_t *idv = json_object_get(keys, key);
        int64_t id = json_integer_value(idv);
        if (!json_is_integer(idv)) {
            if ((rc = make_contact(h, api, key, &id, err, errlen))) {
                api->change_refuse(c, (int)json_integer_value(json_array_get(rk, 0)));
                break;
            }
            json_object_set_new(keys, key, json_integer(id));
        }
        char num[24];
        snprintf(num, sizeof num, "%lld", (long long)id);
        api->change_set(c, (int)json_integer_value(json_array_get(rk, 0)), "customer", num);
    }
    json_decref(rows);
    json_decref(keys);
    return rc;
}

int an_purchases_init(rapport_host *h, char *err, size_t errlen)
{
    /* Before the store checks the reference (priority 5: early among the hooks). */
    for (int act = RAPPORT_CREATE; act <= RAPPORT_UPDATE; act++)
        if (an_api->batch_hook(h, "purchase", act, 5, resolve, NULL))
            return an_fail(err, errlen, "%s", an_api->last_error(h));
    return 0;
}
