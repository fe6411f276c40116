/*
 * change.c — changing records already stored: update (one, or many in one transaction) with the
 * version check, delete, restore and purge; each through the before-hooks, the row, the search
 * index and the event, in one transaction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- update ----------------------------------------------------------------------------- */

/* Applies @p patch (past the hooks) to the record @p old. In the open transaction. */
static int update_one(rp_store_t *s, const rp_ctx_t *ctx, rp__entity_t *e, json_t *old,
                      json_t *patch, int64_t *version_out, rp_error_t *err)
{
    int64_t id = json_integer_value(json_object_get(old, "id"));
    int64_t version = json_integer_value(json_object_get(old, "version"));
    int rc = rp__check_keys(e, patch, err);
    if (rc)
        return rc;
    json_t *changes = json_object(), *canon = json_object();
    rp__field_t **set = calloc((size_t)e->nfields + 1, sizeof *set);
    int nset = 0;
    char *sql = NULL;
    if (!changes || !canon || !set) {
        rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        goto out;
    }
    const char *k;
    json_t *in;
    json_object_foreach(patch, k, in) {
        rp__field_t *f = rp__field(e, k);
        json_t *v = NULL;
        if ((rc = rp__value_canon(e->name, f, in, &v, err)))
            goto out;
        json_t *was = json_object_get(old, k);
        if (json_equal(was, v)) {
            json_decref(v);
            continue;
        }
        if (json_is_null(v) && f->required) {
            json_decref(v);
            rc = rp_error_field(err, f->name, rp_error_set(err, RP_EINVAL, RP_C_REQUIRED,
                              "%s.%s is required and cannot be cleared", e->name, f->name));
            goto out;
        }
        if (f->type == RP_T_REF && (rc = rp__check_ref(s, e, f, v, err))) {
            json_decref(v);
            goto out;
        }
        json_object_set_new(changes, k, json_pack("[OO]", was ? was : json_null(), v));
        json_object_set_new(canon, k, v);
        set[nset++] = f;
    }
    if (nset == 0) {
        if (version_out)
            *version_out = version;
        goto out;
    }
    size_t cap = 160 + (size_t)nset * 56;
    if (!(sql = malloc(cap))) {
        rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        goto out;
    }
    int n = snprintf(sql, cap, "UPDATE \"%s\" SET updated_at = ?, updated_by = ?,"
                               " version = version + 1", e->name);
    for (int i = 0; i < nset; i++)
        n += snprintf(sql + n, cap - (size_t)n, ", \"%s\" = ?", set[i]->name);
    snprintf(sql + n, cap - (size_t)n, " WHERE id = ? AND version = ?");
    rp_db_stmt_t *st = rp__stmt(s, sql, err);
    if (!st) {
        rc = err ? err->code : RP_EIO;
        goto out;
    }
    char now[32];
    rp__fmt_time(rp_store_now(s), now);
    rp_db_bind_text_copy(st, 1, now, -1);
    rp_db_bind_text(st, 2, rp__actor_of(ctx), -1);
    for (int i = 0; i < nset; i++)
        rp__value_bind(st, 3 + i, set[i], json_object_get(canon, set[i]->name));
    rp_db_bind_int(st, 3 + nset, id);
    rp_db_bind_int(st, 4 + nset, version);
    int src = rp_db_step(st);
    rp_db_reset(st);
    if (src != RP_DB_DONE) {
        rc = rp__write_error(s, src, e, canon, err);
        goto out;
    }
    if (rp_db_changes(s->db) != 1) {
        rc = rp_error_set(err, RP_ECONFLICT, RP_C_STALE,
                          "%s %lld was changed by someone else while this update ran", e->name,
                          (long long)id);
        goto out;
    }
    bool reindex = false;
    for (int i = 0; i < nset; i++)
        reindex = reindex || set[i]->searchable;
    if (reindex) {
        json_t *now_rec = json_copy(old);
        json_object_update(now_rec, canon);
        rc = rp__fts_drop(s, e, id, err);
        if (!rc)
            rc = rp__fts_put(s, e, id, now_rec, err);
        json_decref(now_rec);
        if (rc)
            goto out;
    }
    char type[80];
    snprintf(type, sizeof type, "%s.updated", e->name);
    if ((rc = rp__event_append(s, ctx, type, e->name, id, changes, NULL, err)))
        goto out;
    if (version_out)
        *version_out = version + 1;
out:
    json_decref(changes);
    json_decref(canon);
    free(set);
    free(sql);
    return rc;
}

/* Loads a record a batch of updates touches and checks that @p a (NULL: anyone) may update it,
 * then its state and version: in that order, so that a user learns nothing of a record outside
 * their scope, not even its version. */
static int load_for_update(rp_store_t *s, rp__entity_t *e, const rp_access_t *a, int64_t id,
                           int64_t expect, json_t **old, rp_error_t *err)
{
    int rc = rp__record_load(s, e, id, NULL, old, err);
    if (rc)
        return rc;
    if (a && (rc = rp__access_record(s, a, e->name, RP_PERM_UPDATE, *old, err))) {
        /* Under a linked scope a record the principal cannot even read is a missing one
         * (rp__link_visible): the refusal must not tell that it is there. */
        if (rc == RP_EPERM && rp__access_scope(a, e->name, RP_PERM_READ) == RP_SCOPE_LINK) {
            rp_error_t seen = {0};
            if (rp__link_visible(s, a, e->name, *old, &seen) == RP_ENOTFOUND) {
                if (err)
                    *err = seen;
                rc = RP_ENOTFOUND;
            }
        }
        return rc;
    }
    if (!json_is_null(json_object_get(*old, "deleted_at")))
        return rp_error_set(err, RP_ESTATE, RP_C_DELETED,
                            "%s %lld is deleted; restore it before changing it", e->name,
                            (long long)id);
    int64_t have = json_integer_value(json_object_get(*old, "version"));
    if (expect > 0 && have != expect)
        return rp_error_set(err, RP_ECONFLICT, RP_C_STALE,
                            "%s %lld: version %lld was read but the record is now at version "
                            "%lld; read it again and reapply the change",
                            e->name, (long long)id, (long long)expect, (long long)have);
    return 0;
}

/* Whether @p patch leaves the owner as @p old has it (absent, or the same value). */
static bool owner_same(json_t *patch, json_t *old)
{
    json_t *v = json_object_get(patch, "owner"), *was = json_object_get(old, "owner");
    if (!v)
        return true;
    const char *a = json_string_value(v), *b = json_string_value(was);
    if ((json_is_null(v) || (a && !*a)) && (!was || json_is_null(was) || (b && !*b)))
        return true;
    return a && b && strcmp(a, b) == 0;
}

/* The shared body of single and bulk updates: @p batch holds the patches (mutable copies),
 * @p ids and @p expect the record ids and expected versions. */
static int update_batch(rp_store_t *s, const rp_ctx_t *ctx, rp__entity_t *e, json_t *batch,
                        int64_t *ids, int64_t *expect, int64_t *version_out, size_t *failed,
                        rp_error_t *err)
{
    size_t n = json_array_size(batch);
    json_t **olds = calloc(n ? n : 1, sizeof *olds);
    if (!olds)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    int rc = rp_store_begin(s, err);
    if (rc) {
        free(olds);
        return rc;
    }
    size_t i = 0;
    const rp_access_t *a = RP__ACCESS(ctx);
    for (i = 0; i < n; i++)
        if ((rc = load_for_update(s, e, a, ids[i], expect[i], &olds[i], err)) ||
            (a && ((rc = rp__access_fields(a, e->name, json_array_get(batch, i), err)) ||
                   (!owner_same(json_array_get(batch, i), olds[i]) &&
                    (rc = rp__access_owner(s, a, e->name, json_array_get(batch, i), true,
                                           err))))))
            goto fail;
    if (rp__hooks_any(s, e, RP_ACT_UPDATE) &&
        (rc = rp__hooks_run(s, e, RP_ACT_UPDATE, batch, ids, olds, ctx, &i, err)))
        goto fail;
    for (i = 0; i < n; i++)
        if ((i % 64 == 63 && (rc = rp__over_budget(s, err))) ||
            (rc = update_one(s, ctx, e, olds[i], json_array_get(batch, i), version_out, err)))
            goto fail;
    /* A linked scope holds after the change too: a record may not be re-pointed away. */
    for (i = 0; a && rp__access_scope(a, e->name, RP_PERM_UPDATE) == RP_SCOPE_LINK && i < n; i++)
        if ((rc = rp__link_record(s, a, e->name, RP_PERM_UPDATE, olds[i], err)))
            goto fail;
    for (i = 0; i < n; i++)
        json_decref(olds[i]);
    free(olds);
    return rp_store_commit(s, err);
fail:
    *failed = i;
    if (n > 1)
        rp__name_record(err, i);
    for (size_t j = 0; j < n; j++)
        json_decref(olds[j]);
    free(olds);
    rp_store_rollback(s, NULL);
    return rc;
}

int rp_store_update(rp_store_t *s, const rp_ctx_t *ctx, const char *entity, int64_t id,
                    json_t *patch, int64_t expect_version, int64_t *version_out,
                    rp_error_t *err)
{
    rp__entity_t *e = rp__entity_req(s, entity, err);
    if (!e)
        return err ? err->code : RP_EIO;
    if (!json_is_object(patch))
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE, "%s: an update must be a JSON object",
                            entity);
    json_t *batch = json_array();
    json_array_append_new(batch, json_copy(patch));
    size_t failed;
    int rc = update_batch(s, ctx, e, batch, &id, &expect_version, version_out, &failed, err);
    json_decref(batch);
    return rc;
}

int rp_store_update_many(rp_store_t *s, const rp_ctx_t *ctx, const char *entity, json_t *patches,
                         size_t *failed_index, rp_error_t *err)
{
    rp__entity_t *e = rp__entity_req(s, entity, err);
    if (!e)
        return err ? err->code : RP_EIO;
    size_t failed = 0;
    json_t *batch = rp__batch_copy(e, patches, false, &failed, err);
    if (!batch) {
        if (failed_index)
            *failed_index = failed;
        return err ? err->code : RP_EIO;
    }
    size_t n = json_array_size(batch);
    int64_t *ids = calloc(n ? n : 1, sizeof *ids), *expect = calloc(n ? n : 1, sizeof *expect);
    int rc = 0;
    if (!ids || !expect) {
        rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_array_get(batch, i);
        json_t *jid = json_object_get(p, "id"), *jv = json_object_get(p, "version");
        if (!json_is_integer(jid) || json_integer_value(jid) <= 0 ||
            (jv && !json_is_integer(jv))) {
            failed = i;
            rc = rp_error_set(err, RP_EINVAL, RP_C_TYPE,
                              "record %zu: %s: each update needs an integer \"id\" (and an "
                              "integer \"version\" when given)",
                              i, entity);
            goto out;
        }
        ids[i] = json_integer_value(jid);
        expect[i] = jv ? json_integer_value(jv) : 0;
        for (size_t j = 0; j < i; j++) {
            if (ids[j] == ids[i]) {
                failed = i;
                rc = rp_error_set(err, RP_EINVAL, RP_C_TYPE,
                                  "record %zu: %s %lld is already updated by record %zu of this "
                                  "batch; merge the two changes",
                                  i, entity, (long long)ids[i], j);
                goto out;
            }
        }
        json_object_del(p, "id");
        json_object_del(p, "version");
    }
    rc = update_batch(s, ctx, e, batch, ids, expect, NULL, &failed, err);
out:
    if (rc && failed_index)
        *failed_index = failed;
    free(ids);
    free(expect);
    json_decref(batch);
    return rc;
}

/* ---- delete, restore, purge ------------------------------------------------------------- */

/* Runs the record hooks of a delete, restore or purge (no field object). */
static int lifecycle_hooks(rp_store_t *s, const rp_ctx_t *ctx, rp__entity_t *e, rp_action_t act,
                           int64_t id, json_t *old, rp_error_t *err)
{
    if (!rp__hooks_any(s, e, act))
        return 0;
    json_t *batch = json_array();
    json_array_append_new(batch, json_object());
    size_t failed;
    int rc = rp__hooks_run(s, e, act, batch, &id, &old, ctx, &failed, err);
    json_decref(batch);
    return rc;
}

static int set_deleted(rp_store_t *s, const rp_ctx_t *ctx, const char *entity, int64_t id,
                       bool del, rp_error_t *err)
{
    rp__entity_t *e = rp__entity_req(s, entity, err);
    if (!e)
        return err ? err->code : RP_EIO;
    int rc = rp_store_begin(s, err);
    if (rc)
        return rc;
    json_t *old = NULL, *changes = NULL;
    if ((rc = rp__record_load(s, e, id, NULL, &old, err)) ||
        (rc = rp__access_record(s, RP__ACCESS(ctx), entity, RP_PERM_DELETE, old, err)))
        goto fail;
    json_t *was = json_object_get(old, "deleted_at");
    if (del != json_is_null(was)) {
        rc = rp_error_set(err, RP_ESTATE, RP_C_DELETED, del ? "%s %lld is already deleted"
                                                            : "%s %lld is not deleted",
                          entity, (long long)id);
        goto fail;
    }
    if ((rc = lifecycle_hooks(s, ctx, e, del ? RP_ACT_DELETE : RP_ACT_RESTORE, id, old, err)))
        goto fail;
    char now[32], sql[200];
    rp__fmt_time(rp_store_now(s), now);
    snprintf(sql, sizeof sql,
             "UPDATE \"%s\" SET deleted_at = ?, updated_at = ?, updated_by = ?,"
             " version = version + 1 WHERE id = ?",
             entity);
    rp_db_stmt_t *st = rp__stmt(s, sql, err);
    if (!st) {
        rc = err ? err->code : RP_EIO;
        goto fail;
    }
    if (del)
        rp_db_bind_text_copy(st, 1, now, -1);
    rp_db_bind_text_copy(st, 2, now, -1);
    rp_db_bind_text(st, 3, rp__actor_of(ctx), -1);
    rp_db_bind_int(st, 4, id);
    int src = rp_db_step(st);
    rp_db_reset(st);
    if (src != RP_DB_DONE) {
        rc = rp__write_error(s, src, e, NULL, err);
        goto fail;
    }
    /* A deleted record leaves the search index; a restored one comes back. */
    if (e->nsearch && (rc = del ? rp__fts_drop(s, e, id, err) : rp__fts_put(s, e, id, old, err)))
        goto fail;
    changes = del ? json_pack("{s:[ns]}", "deleted_at", now)
                  : json_pack("{s:[On]}", "deleted_at", was);
    char type[80];
    snprintf(type, sizeof type, "%s.%s", entity, del ? "deleted" : "restored");
    if ((rc = rp__event_append(s, ctx, type, entity, id, changes, NULL, err)))
        goto fail;
    json_decref(old);
    json_decref(changes);
    return rp_store_commit(s, err);
fail:
    json_decref(old);
    json_decref(changes);
    rp_store_rollback(s, NULL);
    return rc;
}

int rp_store_delete(rp_store_t *s, const rp_ctx_t *ctx, const char *entity, int64_t id,
                    rp_error_t *err)
{
    return set_deleted(s, ctx, entity, id, true, err);
}

int rp_store_restore(rp_store_t *s, const rp_ctx_t *ctx, const char *entity, int64_t id,
                     rp_error_t *err)
{
    return set_deleted(s, ctx, entity, id, false, err);
}

/* Refuses when a record of any entity refers to (e, id). */
static int check_unreferenced(rp_store_t *s, rp__entity_t *e, int64_t id, rp_error_t *err)
{
    for (int i = 0; i < s->nents; i++) {
        rp__entity_t *o = s->ents[i];
        for (int j = 0; j < o->nfields; j++) {
            rp__field_t *f = &o->fields[j];
            if (f->type != RP_T_REF || strcmp(f->ref, e->name) != 0)
                continue;
            char sql[200];
            snprintf(sql, sizeof sql, "SELECT id FROM \"%s\" WHERE \"%s\" = ? LIMIT 1", o->name,
                     f->name);
            rp_db_stmt_t *st = rp__stmt(s, sql, err);
            if (!st)
                return err ? err->code : RP_EIO;
            rp_db_bind_int(st, 1, id);
            int rc = rp_db_step(st);
            int64_t by = rc == RP_DB_ROW ? rp_db_col_int(st, 0) : 0;
            rp_db_reset(st);
            if (rc == RP_DB_ROW)
                return rp_error_set(err, RP_ECONFLICT, RP_C_REFERENCED,
                                    "%s %lld cannot be purged: %s %lld refers to it through %s",
                                    e->name, (long long)id, o->name, (long long)by, f->name);
            if (rc != RP_DB_DONE)
                return rp__dberr(s, rc, "cannot check references", err);
        }
    }
    return 0;
}

int rp_store_purge(rp_store_t *s, const rp_ctx_t *ctx, const char *entity, int64_t id,
                   rp_error_t *err)
{
    rp__entity_t *e = rp__entity_req(s, entity, err);
    if (!e)
        return err ? err->code : RP_EIO;
    int rc = rp_store_begin(s, err);
    if (rc)
        return rc;
    json_t *old = NULL, *changes = json_object();
    if ((rc = rp__record_load(s, e, id, NULL, &old, err)) ||
        (rc = rp__access_record(s, RP__ACCESS(ctx), entity, RP_PERM_DELETE, old, err)) ||
        (rc = lifecycle_hooks(s, ctx, e, RP_ACT_PURGE, id, old, err)) ||
        (rc = check_unreferenced(s, e, id, err)))
        goto fail;
    char sql[160];
    snprintf(sql, sizeof sql, "DELETE FROM \"%s\" WHERE id = ?", entity);
    rp_db_stmt_t *st = rp__stmt(s, sql, err);
    if (!st) {
        rc = err ? err->code : RP_EIO;
        goto fail;
    }
    rp_db_bind_int(st, 1, id);
    int src = rp_db_step(st);
    rp_db_reset(st);
    if (src != RP_DB_DONE) {
        rc = rp__write_error(s, src, e, NULL, err);
        goto fail;
    }
    if (e->nsearch && (rc = rp__fts_drop(s, e, id, err)))
        goto fail;
    /* The purged event keeps every last value, so the audit trail loses nothing. */
    const char *k;
    json_t *v;
    json_object_foreach(old, k, v) {
        if (strcmp(k, "id") != 0 && !json_is_null(v))
            json_object_set_new(changes, k, json_pack("[On]", v));
    }
    char type[80];
    snprintf(type, sizeof type, "%s.purged", entity);
    if ((rc = rp__event_append(s, ctx, type, entity, id, changes, NULL, err)))
        goto fail;
    json_decref(old);
    json_decref(changes);
    return rp_store_commit(s, err);
fail:
    json_decref(old);
    json_decref(changes);
    rp_store_rollback(s, NULL);
    return rc;
}
