/*
 * subject.c — record principals (a record, not a user, acting with a role: a contact through
 * the portal) and the check that a role's links fit the registry.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access_int.h"

static const char *const perm_key[4] = {"read", "create", "update", "delete"};

static int link_err(rp_error_t *err, const rp_access_t *a, const char *ent, int perm,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int link_err(rp_error_t *err, const rp_access_t *a, const char *ent, int perm,
                    const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return rp_error_set(err, RP_EINVAL, RP_C_ROLE, "roles.%s: entities.%s.%s: %s", a->role, ent,
                        perm_key[perm], msg);
}

/* The ref target of field @p field of @p entity into @p to; a message (0 on success). */
static int hop(rp_store_t *s, const char *entity, const char *field, char *to, size_t n,
               char *why, size_t wn)
{
    json_t *d = rp_store_schema(s, entity, NULL);
    json_t *f = json_object_get(json_object_get(d, "fields"), field);
    const char *type = json_string_value(json_object_get(f, "type"));
    const char *ref = json_string_value(json_object_get(f, "ref"));
    int rc = -1;
    if (!f)
        snprintf(why, wn, "link: \"%s\" is not a field of %s", field, entity);
    else if (!type || strcmp(type, "ref") || !ref)
        snprintf(why, wn, "link: %s.%s is not a ref (it is %s)", entity, field,
                 type ? type : "?");
    else
        rc = 0, snprintf(to, n, "%s", ref);
    json_decref(d);
    return rc;
}

static int check_where(rp_store_t *s, const rp_access_t *a, const char *ent, int p, json_t *where,
                       rp_error_t *err);

/* {"through": field}: a ref to an entity this role reads by a link of its own (not another
 * through: one level, so a role cannot loop). */
static int check_through(rp_store_t *s, const rp_access_t *a, const char *ent, int p,
                         const rp_link_t *l, rp_error_t *err)
{
    char to[NAME_MAX_LEN], why[300];
    if (hop(s, ent, l->path[0], to, sizeof to, why, sizeof why))
        return link_err(err, a, ent, p, "through: %s", why + strlen("link: "));
    for (int i = 0; i < a->nents; i++)
        if (strcmp(a->ents[i].entity, to) == 0 && a->ents[i].scope[RP_PERM_READ] == RP_SCOPE_LINK
            && !a->ents[i].link[RP_PERM_READ].through)
            return l->where ? check_where(s, a, ent, p, l->where, err) : 0;
    return link_err(err, a, ent, p, "through: %s.%s points to %s, which this role does not "
                    "read by a link of its own (give entities.%s.read a link)", ent,
                    l->path[0], to, to);
}

static int check_one(rp_store_t *s, const rp_access_t *a, const char *ent, int p,
                     const rp_link_t *l, rp_error_t *err)
{
    if (!a->principal[0])
        return link_err(err, a, ent, p, "a link needs the role's \"principal\": the entity "
                        "whose records act with it");
    if (!rp_store_has_field(s, a->principal, "id"))
        return rp_error_set(err, RP_EINVAL, RP_C_ROLE, "roles.%s: principal: there is no "
                            "entity \"%s\"", a->role, a->principal);
    if (!rp_store_has_field(s, ent, "id"))
        return link_err(err, a, ent, p, "there is no entity \"%s\"", ent);
    char cur[NAME_MAX_LEN], why[300];
    if (l->through)
        return check_through(s, a, ent, p, l, err);
    snprintf(cur, sizeof cur, "%s", l->self ? a->principal : ent);
    for (int i = 0; i < l->npath; i++)
        if (hop(s, cur, l->path[i], cur, sizeof cur, why, sizeof why))
            return link_err(err, a, ent, p, "%s", why);
    if (l->self && strcmp(cur, ent) != 0)
        return link_err(err, a, ent, p, "link: the path from the principal's %s ends at %s, "
                        "not at %s", a->principal, cur, ent);
    if (!l->self && strcmp(cur, a->principal) != 0)
        return link_err(err, a, ent, p, "link: the path ends at %s, not at the principal %s",
                        cur, a->principal);
    return l->where ? check_where(s, a, ent, p, l->where, err) : 0;
}

static int check_where(rp_store_t *s, const rp_access_t *a, const char *ent, int p, json_t *where,
                       rp_error_t *err)
{
    /* Compiled the way a read compiles it, on no record: a bad filter says what is wrong. */
    json_t *probe = json_pack("{s:[O,{s:i}]}", "and", where, "id", 0);
    int64_t n = 0;
    rp_error_t e2 = {0};
    int rc = probe ? rp_store_count(s, ent, probe, false, &n, &e2) : RP_ENOMEM;
    json_decref(probe);
    if (rc)
        return link_err(err, a, ent, p, "where: %s", probe ? e2.msg : "out of memory");
    return 0;
}

int rp__access_check_links(rp_store_t *s, const rp_access_t *a, rp_error_t *err)
{
    for (int i = 0; a && i < a->nents; i++)
        for (int p = 0; p < 4; p++) {
            if (a->ents[i].scope[p] != RP_SCOPE_LINK)
                continue;
            int rc = check_one(s, a, a->ents[i].entity, p, &a->ents[i].link[p], err);
            if (rc)
                return rc;
        }
    return 0;
}

int rp_access_load_subject(rp_store_t *s, const char *role, const char *entity, int64_t id,
                           rp_access_t **out, rp_error_t *err)
{
    *out = NULL;
    if (!entity || !rp_store_has_field(s, entity, "id"))
        return rp_error_set(err, RP_EINVAL, RP_C_USER, "there is no entity \"%s\" to act as "
                            "a record of", entity ? entity : "");
    json_t *rec = NULL;
    int rc = rp_store_get(s, entity, id, &rec, err);
    if (rc == RP_ENOTFOUND)
        return rp_error_set(err, RP_EPERM, RP_C_USER, "%s %" PRId64 " does not exist, so it "
                            "cannot act", entity, id);
    if (rc)
        return rc;
    bool gone = !json_is_null(json_object_get(rec, "deleted_at"));
    json_decref(rec);
    if (gone)
        return rp_error_set(err, RP_EPERM, RP_C_USER, "%s %" PRId64 " is deleted, so it "
                            "cannot act", entity, id);
    char user[NAME_MAX_LEN];
    snprintf(user, sizeof user, "%s:%" PRId64, entity, id);
    rp_access_t *a = NULL;
    if ((rc = rp_access_load(s, user, role, NULL, &a, err)))
        return rc;
    /* A role without a principal is a staff role: a record never acts with it. */
    if (a->all || strcmp(a->principal, entity) != 0) {
        rc = rp_error_set(err, RP_EPERM, RP_C_USER, "role %s is not for records of %s (its "
                          "\"principal\" is %s)", a->role, entity,
                          a->principal[0] ? a->principal : "not set: a staff role");
        rp_access_free(a);
        return rc;
    }
    snprintf(a->subject, sizeof a->subject, "%s", entity);
    a->subject_id = id;
    *out = a;
    return 0;
}

int rp_access_of_subject(rp_store_t *s, const char *subject, const char *role,
                         rp_access_t **out, rp_error_t *err)
{
    *out = NULL;
    const char *colon = subject ? strchr(subject, ':') : NULL;
    char entity[NAME_MAX_LEN];
    char *end = NULL;
    errno = 0;
    long long id = colon ? strtoll(colon + 1, &end, 10) : 0;
    if (!colon || colon == subject || colon - subject >= NAME_MAX_LEN || !end || *end ||
        end == colon + 1 || errno || id <= 0)
        return rp_error_set(err, RP_EINVAL, RP_C_USER, "\"%s\" is not a record (ENTITY:ID, "
                            "e.g. contact:42)", subject ? subject : "");
    snprintf(entity, sizeof entity, "%.*s", (int)(colon - subject), subject);
    return rp_access_load_subject(s, role, entity, (int64_t)id, out, err);
}

const char *rp_access_subject(const rp_access_t *a, int64_t *id)
{
    if (!a || !a->subject[0])
        return NULL;
    if (id)
        *id = a->subject_id;
    return a->subject;
}

/* Whether @p field is in the "writable" list of @p entity in role document @p doc. */
static bool listed_in(json_t *doc, const char *entity, const char *field)
{
    json_t *list = json_object_get(json_object_get(json_object_get(doc, "entities"), entity),
                                   "writable");
    size_t i;
    json_t *x;
    json_array_foreach(json_is_array(list) ? list : NULL, i, x)
        if (json_is_string(x) && strcmp(json_string_value(x), field) == 0)
            return true;
    return false;
}

int rp__access_check_writable(rp_store_t *s, const rp_access_t *a, json_t *before,
                              rp_error_t *err)
{
    for (int i = 0; a && i < a->nents; i++) {
        const ent_grant_t *g = &a->ents[i];
        if (!g->writable)
            continue;
        json_t *d = rp_store_schema(s, g->entity, NULL);
        json_t *fields = json_object_get(d, "fields");
        if (!fields) {
            json_decref(d);
            return rp_error_set(err, RP_EINVAL, RP_C_ROLE, "roles.%s: entities.%s.writable: "
                                "there is no entity \"%s\"", a->role, g->entity, g->entity);
        }
        size_t j;
        json_t *x;
        json_array_foreach(g->writable, j, x) {
            const char *f = json_string_value(x);
            if (json_object_get(fields, f) || listed_in(before, g->entity, f))
                continue;
            /* System fields (id, created_at, …) are not in the schema's fields: the store
             * writes them, never a role. */
            int rc = rp_error_set(err, RP_EINVAL, RP_C_ROLE, "roles.%s: entities.%s.writable: "
                                  "\"%s\" is not a field of %s", a->role, g->entity, f,
                                  g->entity);
            json_decref(d);
            return rc;
        }
        json_decref(d);
    }
    return 0;
}
