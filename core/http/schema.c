/*
 * schema.c — GET /api/v1/schema: the registry as the caller may use it. A page that lists and
 * edits records of any entity (the console) reads it to know which entities and fields there
 * are, so a field an admin adds appears at once: it is read from the registry on every request,
 * never cached. What the caller's role does not let it read is absent (entities it cannot read,
 * hidden fields), so the answer says nothing the records would not; a field the role makes
 * read-only is marked "read_only". The store still checks every read and write: this only tells
 * a page what to offer.
 */
#include <string.h>

#include <jansson.h>

#include "rapport/access.h"
#include "rapport/store.h"

#include "http_internal.h"

/* What every record has beside its entity's fields; the store writes them, never a caller. */
static const char *const system_fields[] = {"id",         "version",    "created_at", "updated_at",
                                            "created_by", "updated_by", "deleted_at", NULL};

/* Whether @p a may do @p perm on @p entity in some scope. */
static bool may(const rp_access_t *a, const char *entity, rp_perm_t perm)
{
    return rp_access_scope(a, entity, perm) != RP_SCOPE_NONE;
}

/* Entity @p name's description @p ent as @p a may use it, into @p data under @p name; nothing
 * when @p a may not read the entity. -1 when out of memory. */
static int entity_for(const rp_access_t *a, const char *name, json_t *ent, json_t *data)
{
    if (!may(a, name, RP_PERM_READ))
        return 0;
    json_t *fields = json_object(), *sys = json_array();
    if (!fields || !sys)
        goto oom;
    const char *fname;
    json_t *spec;
    json_object_foreach(json_object_get(ent, "fields"), fname, spec) {
        if (rp_access_hidden(a, name, fname))
            continue;
        json_t *f = json_deep_copy(spec);
        if (!f)
            goto oom;
        if (json_object_set_new(f, "read_only",
                                json_boolean(rp_access_read_only(a, name, fname)))) {
            json_decref(f);
            goto oom;
        }
        if (json_object_set_new(fields, fname, f)) /* takes f, even when it fails */
            goto oom;
    }
    for (int i = 0; system_fields[i]; i++)
        if (json_array_append_new(sys, json_string(system_fields[i])))
            goto oom;
    /* json_pack steals fields and sys even when it fails. */
    json_t *out = json_pack("{s:O?,s:o,s:o,s:{s:b,s:b,s:b,s:b}}", "label",
                            json_object_get(ent, "label"), "fields", fields, "system", sys,
                            "may", "read", 1, "create", may(a, name, RP_PERM_CREATE), "update",
                            may(a, name, RP_PERM_UPDATE), "delete",
                            may(a, name, RP_PERM_DELETE));
    return out && json_object_set_new(data, name, out) == 0 ? 0 : -1;
oom:
    json_decref(fields);
    json_decref(sys);
    return -1;
}

int rp__http_schema(call_t *c)
{
    const char *only = rp__http_param(c, "entity");
    if (json_object_size(c->params) > (only ? 1u : 0u)) {
        const char *k;
        json_t *v;
        json_object_foreach(c->params, k, v) {
            if (strcmp(k, "entity") != 0)
                return rp__http_problemf(c, 400, k,
                                         "unknown parameter \"%s\" (the schema takes entity)",
                                         k);
        }
    }
    if (only && (!rp_store_has_entity(c->h->s, only) ||
                 !may(c->access, only, RP_PERM_READ)))
        return rp__http_problemf(c, 404, "entity", "there is no entity \"%s\" you may read",
                                 only);
    rp_error_t err = {0};
    json_t *reg = rp_store_schema(c->h->s, NULL, &err);
    if (!reg)
        return rp__http_store_problem(c, &err, false);
    json_t *data = json_object();
    if (!data) {
        json_decref(reg);
        return rp__http_problem(c, 500, "out of memory", NULL);
    }
    const char *name;
    json_t *ent;
    json_object_foreach(reg, name, ent) {
        if (only && strcmp(name, only) != 0)
            continue;
        if (entity_for(c->access, name, ent, data)) {
            json_decref(data);
            json_decref(reg);
            return rp__http_problem(c, 500, "out of memory", NULL);
        }
    }
    json_decref(reg);
    return rp__http_send_json(c, 200, json_pack("{s:o,s:s?}", "data", data, "role",
                                                rp_access_role(c->access)));
}
