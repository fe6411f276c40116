/*
 * link.c — linked scopes: the records a record principal (a contact acting through the
 * portal, say) may reach by following ref fields, as SQL the store adds to its reads and asks
 * of single records. The path comes from the role (rp_link_t); every identifier in the SQL is
 * the registry's, every value bound.
 */
#include <string.h>

#include "filter.h"

static rp__field_t *ref_field(rp__entity_t *e, const char *name)
{
    for (int i = 0; i < e->nfields; i++)
        if (strcmp(e->fields[i].name, name) == 0)
            return e->fields[i].ref ? &e->fields[i] : NULL;
    return NULL;
}

/* The registry changed under a role (a field dropped, an entity renamed): refused, never
 * widened. */
static int link_broken(const rp_access_t *a, rp__entity_t *e, const char *step, rp_error_t *err)
{
    return rp__access_denied(err, a, e->name, RP_PERM_READ,
                             step ? step : "its link does not match the schema any more");
}

/* Record.path[0] → … → path[n-1] = the principal. */
static int clause_to(rp_store_t *s, rp__entity_t *e, const rp_access_t *a, const rp_link_t *l,
                     const char *pent, int64_t pid, rp__qb_t *q, rp_error_t *err)
{
    rp__entity_t *cur = e;
    for (int i = 0; i < l->npath; i++) {
        rp__field_t *f = ref_field(cur, l->path[i]);
        rp__entity_t *next = f ? rp__entity_req(s, f->ref, NULL) : NULL;
        if (!next || (i == l->npath - 1 && strcmp(f->ref, pent) != 0))
            return link_broken(a, e, NULL, err);
        if (i == l->npath - 1) {
            rp__qb_put(q, "\"%s\" = ?", f->name);
            rp__qb_bind_add(q, NULL, json_integer(pid));
        } else {
            rp__qb_put(q, "\"%s\" IN (SELECT id FROM \"%s\" WHERE deleted_at IS NULL AND ",
                       f->name, next->name);
        }
        cur = next;
    }
    for (int i = 0; i < l->npath - 1; i++)
        rp__qb_put(q, ")");
    return 0;
}

/* The principal → path[0] → … → path[m-1] = the record (m = 0: the principal itself). */
static int clause_from(rp_store_t *s, rp__entity_t *e, const rp_access_t *a, const rp_link_t *l,
                       const char *pent, int64_t pid, rp__qb_t *q, rp_error_t *err)
{
    rp__entity_t *chain[RP_LINK_MAX_HOPS + 1];
    rp__field_t *via[RP_LINK_MAX_HOPS];
    if (!(chain[0] = rp__entity_req(s, pent, NULL)))
        return link_broken(a, e, NULL, err);
    for (int i = 0; i < l->npath; i++) {
        via[i] = ref_field(chain[i], l->path[i]);
        if (!via[i] || !(chain[i + 1] = rp__entity_req(s, via[i]->ref, NULL)))
            return link_broken(a, e, NULL, err);
    }
    if (chain[l->npath] != e)
        return link_broken(a, e, NULL, err);
    /* Identifiers from the registry, never the role's text. */
    for (int i = l->npath; i > 0; i--)
        rp__qb_put(q, "id IN (SELECT \"%s\" FROM \"%s\" WHERE deleted_at IS NULL AND ",
                   via[i - 1]->name, chain[i - 1]->name);
    rp__qb_put(q, "id = ?");
    rp__qb_bind_add(q, NULL, json_integer(pid));
    for (int i = 0; i < l->npath; i++)
        rp__qb_put(q, ")");
    return 0;
}

/* Records whose ref field points to a record the principal reads by its entity's own link. */
static int clause_through(rp_store_t *s, rp__entity_t *e, const rp_access_t *a,
                          const rp_link_t *l, rp__qb_t *q, rp_error_t *err)
{
    rp__field_t *f = ref_field(e, l->path[0]);
    rp__entity_t *to = f ? rp__entity_req(s, f->ref, NULL) : NULL;
    const rp_link_t *tl = to ? rp__authorizer->link(a, to->name, RP_PERM_READ) : NULL;
    /* One level only: a through to a through could loop. */
    if (!tl || tl->through)
        return link_broken(a, e, NULL, err);
    rp__qb_put(q, "\"%s\" IN (SELECT id FROM \"%s\" WHERE deleted_at IS NULL", f->name,
               to->name);
    int rc = rp__link_clause(s, to, a, RP_PERM_READ, q, err);
    rp__qb_put(q, ")");
    return rc;
}

int rp__link_clause(rp_store_t *s, rp__entity_t *e, const rp_access_t *a, rp_perm_t perm,
                    rp__qb_t *q, rp_error_t *err)
{
    const rp_link_t *l = rp__authorizer && rp__authorizer->link
                             ? rp__authorizer->link(a, e->name, perm) : NULL;
    int64_t pid = 0;
    const char *pent = l && rp__authorizer->principal ? rp__authorizer->principal(a, &pid)
                                                      : NULL;
    /* A user (no record to link to) reaches nothing through a link. */
    if (!l || !pent) {
        rp__qb_put(q, " AND 0");
        return 0;
    }
    rp__qb_put(q, " AND (");
    int rc = l->through ? clause_through(s, e, a, l, q, err)
             : l->self  ? clause_from(s, e, a, l, pent, pid, q, err)
                        : clause_to(s, e, a, l, pent, pid, q, err);
    if (rc)
        return rc;
    if (l->where) {
        rp__qb_put(q, " AND (");
        if ((rc = rp__filter_node(e, l->where, q, err)))
            return rc;
        rp__qb_put(q, ")");
    }
    rp__qb_put(q, ")");
    return 0;
}

int rp__link_holds(rp_store_t *s, rp__entity_t *e, const rp_access_t *a, rp_perm_t perm,
                   int64_t id, rp_error_t *err)
{
    rp__qb_t q = {0};
    rp__qb_put(&q, "SELECT 1 FROM \"%s\" WHERE id = ?", e->name);
    int rc = rp__link_clause(s, e, a, perm, &q, err);
    if (rc)
        goto out;
    if (q.oom) {
        rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        goto out;
    }
    rp_db_stmt_t *st = rp__stmt(s, q.sql, err);
    if (!st) {
        rc = err ? err->code : RP_EIO;
        goto out;
    }
    rp_db_bind_int(st, 1, id);
    int src = rp__qb_bind(&q, st, 2);
    if (src == RP_DB_OK)
        src = rp_db_step(st);
    rp_db_reset(st);
    if (src == RP_DB_ROW)
        rc = 1;
    else if (src == RP_DB_DONE)
        rc = 0;
    else
        rc = rp_db_error(s->db, src, "cannot check a linked scope", err);
out:
    rp__qb_free(&q);
    return rc;
}

int rp__link_record(rp_store_t *s, const rp_access_t *a, const char *entity, rp_perm_t perm,
                    json_t *rec, rp_error_t *err)
{
    rp__entity_t *e = rp__entity_req(s, entity, err);
    if (!e)
        return err ? err->code : RP_EIO;
    int64_t id = json_integer_value(json_object_get(rec, "id"));
    int in = rp__link_holds(s, e, a, perm, id, err);
    if (in < 0)
        return in;
    if (in)
        return 0;
    char why[160];
    snprintf(why, sizeof why, "%s %lld is not linked to %s", entity, (long long)id,
             rp__access_user(a));
    return rp__access_denied(err, a, entity, perm, why);
}

int rp__link_visible(rp_store_t *s, const rp_access_t *a, const char *entity, json_t *rec,
                     rp_error_t *err)
{
    rp__entity_t *e = rp__entity_req(s, entity, err);
    if (!e)
        return err ? err->code : RP_EIO;
    int64_t id = json_integer_value(json_object_get(rec, "id"));
    int in = rp__link_holds(s, e, a, RP_PERM_READ, id, err);
    if (in < 0) /* a store error, or a link the schema no longer has: said as it is */
        return in;
    return in ? 0 : rp_error_set(err, RP_ENOTFOUND, RP_C_NO_RECORD, "no %s with id %lld",
                                 entity, (long long)id);
}
