/*
 * undo.c — taking one recorded change back out of a record, from the old values its event
 * kept: how `rapport replay` brings a private copy of a database back to an earlier time. The
 * row is written directly (no hooks, no event): this is history being unwound, not a write.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The record verbs whose events carry what undoing them needs. */
typedef enum { U_NONE, U_CREATED, U_UPDATED, U_DELETED, U_RESTORED, U_PURGED } verb_t;

static verb_t verb_of(const char *type, const char *entity)
{
    size_t n = strlen(entity);
    if (!n || strncmp(type, entity, n) != 0 || type[n] != '.')
        return U_NONE;
    const char *v = type + n + 1;
    return !strcmp(v, "created")    ? U_CREATED
           : !strcmp(v, "updated")  ? U_UPDATED
           : !strcmp(v, "deleted")  ? U_DELETED
           : !strcmp(v, "restored") ? U_RESTORED
           : !strcmp(v, "purged")   ? U_PURGED
                                    : U_NONE;
}

/* Puts the record's search text back as its row now reads (or drops it when deleted). */
static int reindex(rp_store_t *s, rp__entity_t *e, int64_t id, rp_error_t *err)
{
    if (!e->nsearch)
        return 0;
    int rc = rp__fts_drop(s, e, id, err);
    json_t *rec = NULL;
    if (!rc && (rc = rp__record_load(s, e, id, NULL, &rec, err)) == RP_ENOTFOUND)
        return 0;
    if (!rc && json_is_null(json_object_get(rec, "deleted_at")))
        rc = rp__fts_put(s, e, id, rec, err);
    json_decref(rec);
    return rc;
}

/* UPDATE of the fields of @p changes back to their old values, one version down. */
static int undo_update(rp_store_t *s, rp__entity_t *e, int64_t id, json_t *changes, rp_error_t *err)
{
    size_t n = json_object_size(changes);
    size_t cap = 120 + n * 56;
    char *sql = malloc(cap);
    if (!sql)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    int len = snprintf(sql, cap, "UPDATE \"%s\" SET version = max(version - 1, 1)", e->name);
    const char *k;
    json_t *v;
    rp__field_t **set = calloc(n + 1, sizeof *set);
    int nset = 0;
    bool del = false;
    json_object_foreach(changes, k, v) {
        rp__field_t *f = rp__field(e, k);
        if (f) {
            set[nset++] = f;
            len += snprintf(sql + len, cap - (size_t)len, ", \"%s\" = ?", f->name);
        } else if (!strcmp(k, "deleted_at")) {
            del = true;
        }
    }
    if (del)
        len += snprintf(sql + len, cap - (size_t)len, ", deleted_at = ?");
    snprintf(sql + len, cap - (size_t)len, " WHERE id = ?");
    rp_db_stmt_t *st = rp__stmt(s, sql, err);
    free(sql);
    if (!st) {
        free(set);
        return err ? err->code : RP_EIO;
    }
    int i = 0;
    for (; i < nset; i++)
        rp__value_bind(st, 1 + i, set[i],
                       json_array_get(json_object_get(changes, set[i]->name), 0));
    if (del) {
        const char *was =
            json_string_value(json_array_get(json_object_get(changes, "deleted_at"), 0));
        if (was)
            rp_db_bind_text(st, 1 + i, was, -1);
        else
            rp_db_bind_null(st, 1 + i);
        i++;
    }
    rp_db_bind_int(st, 1 + i, id);
    free(set);
    return rp__step_done(s, st, "cannot undo the change", err);
}

/* Puts a purged record back from the last values its event kept. */
static int undo_purge(rp_store_t *s, rp__entity_t *e, int64_t id, json_t *changes, rp_error_t *err)
{
    size_t n = json_object_size(changes);
    size_t cap = 120 + n * 60;
    char *sql = malloc(cap), *vals = malloc(cap);
    rp__field_t **set = calloc(n + 1, sizeof *set);
    const char **sys = calloc(n + 1, sizeof *sys);
    int rc = 0;
    if (!sql || !vals || !set || !sys) {
        rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        goto out;
    }
    int len = snprintf(sql, cap, "INSERT INTO \"%s\"(id", e->name), vl = snprintf(vals, cap, "?");
    int nset = 0, nsys = 0;
    const char *k;
    json_t *v;
    json_object_foreach(changes, k, v) {
        rp__field_t *f = rp__field(e, k);
        if (f)
            set[nset++] = f;
        else if (rp__is_system_field(k) && strcmp(k, "id") != 0)
            sys[nsys++] = k; /* a system column's name, checked against the fixed list */
    }
    /* The columns in the order they are bound: the fields, then the system columns. */
    for (int i = 0; i < nset + nsys; i++) {
        len += snprintf(sql + len, cap - (size_t)len, ", \"%s\"",
                        i < nset ? set[i]->name : sys[i - nset]);
        vl += snprintf(vals + vl, cap - (size_t)vl, ", ?");
    }
    snprintf(sql + len, cap - (size_t)len, ") VALUES(%s)", vals);
    rp_db_stmt_t *st = rp__stmt(s, sql, err);
    if (!st) {
        rc = err ? err->code : RP_EIO;
        goto out;
    }
    rp_db_bind_int(st, 1, id);
    int i = 0;
    for (; i < nset; i++)
        rp__value_bind(st, 2 + i, set[i],
                       json_array_get(json_object_get(changes, set[i]->name), 0));
    for (int j = 0; j < nsys; j++, i++) {
        json_t *was = json_array_get(json_object_get(changes, sys[j]), 0);
        if (json_is_integer(was))
            rp_db_bind_int(st, 2 + i, json_integer_value(was));
        else if (json_is_string(was))
            rp_db_bind_text(st, 2 + i, json_string_value(was), -1);
        else
            rp_db_bind_null(st, 2 + i);
    }
    rc = rp__step_done(s, st, "cannot put the purged record back", err);
out:
    free(sql);
    free(vals);
    free(set);
    free(sys);
    return rc;
}

/* updated_at and updated_by as the record's event before @p seq left them: events do not carry
 * the columns, but each was written with its event's time and actor. */
static int restore_updated(rp_store_t *s, rp__entity_t *e, int64_t id, int64_t seq, rp_error_t *err)
{
    rp_db_stmt_t *st = rp__stmt(s,
                                "SELECT at, actor FROM rp_events WHERE entity = ?1 AND"
                                " record_id = ?2 AND seq < ?3 ORDER BY seq DESC LIMIT 1",
                                err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_text(st, 1, e->name, -1);
    rp_db_bind_int(st, 2, id);
    rp_db_bind_int(st, 3, seq);
    int src = rp_db_step(st);
    char at[32], actor[160];
    if (src == RP_DB_ROW) {
        rp__fmt_time(rp_db_col_int(st, 0), at);
        snprintf(actor, sizeof actor, "%s", rp_db_col_text(st, 1));
    }
    rp_db_reset(st);
    if (src == RP_DB_DONE)
        return 0; /* the earlier events were removed: the later values stay */
    if (src != RP_DB_ROW)
        return rp__dberr(s, src, "cannot read the record's earlier event", err);
    char sql[200];
    snprintf(sql, sizeof sql, "UPDATE \"%s\" SET updated_at = ?, updated_by = ? WHERE id = ?",
             e->name);
    if (!(st = rp__stmt(s, sql, err)))
        return err ? err->code : RP_EIO;
    rp_db_bind_text_copy(st, 1, at, -1);
    rp_db_bind_text_copy(st, 2, actor, -1);
    rp_db_bind_int(st, 3, id);
    return rp__step_done(s, st, "cannot undo the change", err);
}

int rp_store_undo(rp_store_t *s, int64_t seq, const char *type, const char *entity, int64_t id,
                  const char *changes, rp_error_t *err)
{
    rp__entity_t *e = entity && *entity ? rp__entity(s, entity) : NULL;
    verb_t verb = e ? verb_of(type, entity) : U_NONE;
    if (verb == U_NONE)
        return 1; /* not a record change: nothing of a record to take back */
    json_error_t jerr;
    json_t *ch = json_loads(changes ? changes : "{}", 0, &jerr);
    if (!json_is_object(ch)) {
        json_decref(ch);
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE,
                            "the changes of %s %lld (%s) are not a "
                            "JSON object: %s",
                            entity, (long long)id, type, jerr.text);
    }
    int rc = rp_store_begin(s, err);
    if (rc) {
        json_decref(ch);
        return rc;
    }
    if (verb == U_CREATED) {
        if (e->nsearch)
            rc = rp__fts_drop(s, e, id, err);
        char sql[160];
        snprintf(sql, sizeof sql, "DELETE FROM \"%s\" WHERE id = ?", e->name);
        rp_db_stmt_t *st = rc ? NULL : rp__stmt(s, sql, err);
        if (st) {
            rp_db_bind_int(st, 1, id);
            rc = rp__step_done(s, st, "cannot undo the create", err);
        } else if (!rc) {
            rc = err ? err->code : RP_EIO;
        }
    } else if (verb == U_PURGED) {
        rc = undo_purge(s, e, id, ch, err);
        if (!rc)
            rc = reindex(s, e, id, err);
    } else {
        rc = undo_update(s, e, id, ch, err);
        if (!rc)
            rc = restore_updated(s, e, id, seq, err);
        if (!rc)
            rc = reindex(s, e, id, err);
    }
    json_decref(ch);
    if (rc) {
        rp_store_rollback(s, NULL);
        return rc;
    }
    return rp_store_commit(s, err);
}

void rp_store_seed(rp_store_t *s, uint64_t seed)
{
    s->rng = seed ? seed : 0x853c49e6748fea9bULL;
}

bool rp_store_set_offline(rp_store_t *s, bool on)
{
    bool was = s->offline;
    s->offline = on;
    return was;
}

bool rp_store_offline(const rp_store_t *s)
{
    return s && s->offline;
}

int rp_store_reset_ids(rp_store_t *s, rp_error_t *err)
{
    /* Without this a new record's id would follow the largest id ever given, which moves as
     * the live database grows: the same history would replay with other ids. */
    for (int i = 0; i < s->nents; i++) {
        int rc = rp_db_restart_ids(s->db, s->ents[i]->name, err);
        if (rc)
            return rc;
    }
    return 0;
}
