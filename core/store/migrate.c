/*
 * migrate.c — the schema changes a migration makes (rename, drop and retype a field, drop an
 * entity), each in one transaction level with its event and with indexes, unique constraints
 * and the search index kept in step; and the ledger of the migrations that ran.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The column a retyped field's values are written to before it takes the field's place; no
 * field can be named so (rp_ is reserved). */
#define NEW_COLUMN "rp_new_value"

static int field_req(rp_store_t *s, const char *entity, const char *field, rp__entity_t **e,
                     rp__field_t **f, rp_error_t *err)
{
    if (!(*e = rp__entity_req(s, entity, err)))
        return err ? err->code : RP_ENOTFOUND;
    if (!field || !(*f = rp__field(*e, field)))
        return rp_error_field(err, field,
                              rp_error_set(err, RP_ENOTFOUND, RP_C_NO_FIELD,
                                           "%s has no field \"%s\"", entity,
                                           field ? field : "(null)"));
    return 0;
}

/* Opens the level a schema change runs in. */
static int change_begin(rp_store_t *s, rp_error_t *err)
{
    int rc = rp_store_begin(s, err);
    if (!rc) {
        rp__schema_touched(s);
    }
    return rc;
}

/* Ends it: commits, or rolls back and reads the registry back from the file. */
static int change_end(rp_store_t *s, int rc, rp_error_t *err)
{
    if (!rc && !(rc = rp_store_commit(s, err)))
        return 0;
    if (rc && rp_store_txn_depth(s) > 0)
        rp_store_rollback(s, NULL);
    rp__registry_reload(s);
    return rc;
}

static int drop_index(rp_store_t *s, const char *entity, const char *field, rp_error_t *err)
{
    char sql[200];
    snprintf(sql, sizeof sql, "DROP INDEX IF EXISTS \"rp_ix_%s_%s\"", entity, field);
    return rp__exec(s, sql, err);
}

static int event(rp_store_t *s, const rp_ctx_t *ctx, const char *type, const char *entity,
                 json_t *desc, rp_error_t *err)
{
    int rc = desc ? rp__event_append(s, ctx, type, entity, 0, desc, NULL, err)
                  : rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    json_decref(desc);
    return rc;
}

int rp_store_rename_field(rp_store_t *s, const rp_ctx_t *ctx, const char *entity,
                          const char *from, const char *to, rp_error_t *err)
{
    if (rp__schema_allowed(ctx, "rename_field", err))
        return RP_EPERM;
    rp__entity_t *e;
    rp__field_t *f;
    int rc = field_req(s, entity, from, &e, &f, err);
    if (rc)
        return rc;
    if (!rp__ident_ok(to) || rp__is_system_field(to))
        return rp_error_set(err, RP_EINVAL, RP_C_IDENT,
                            "\"%s\" is not a valid field name for \"%s\" (lower-case letters, "
                            "digits and _, starting with a letter, at most 48, not a system field)",
                            to ? to : "(null)", entity);
    if (rp__field(e, to))
        return rp_error_set(err, RP_ECONFLICT, RP_C_DUP_FIELD,
                            "cannot rename %s.%s to \"%s\": %s already has a field \"%s\"", entity,
                            from, to, entity, to);
    rp__field_t moved = *f;
    moved.name = (char *)to;
    char sql[300];
    if ((rc = change_begin(s, err)))
        return rc;
    snprintf(sql, sizeof sql, "ALTER TABLE \"%s\" RENAME COLUMN \"%s\" TO \"%s\"", entity, from,
             to);
    if (!(rc = drop_index(s, entity, from, err)) && !(rc = rp__exec(s, sql, err)))
        rc = rp__field_index(s, entity, &moved, err);
    rp_db_stmt_t *st = NULL;
    if (!rc && !(st = rp__stmt(s, "UPDATE rp_fields SET name = ? WHERE entity = ? AND name = ?",
                               err)))
        rc = err ? err->code : RP_EIO;
    if (!rc) {
        rp_db_bind_text(st, 1, to, -1);
        rp_db_bind_text(st, 2, entity, -1);
        rp_db_bind_text(st, 3, from, -1);
        rc = rp__step_done(s, st, "cannot record the field", err);
    }
    if (!rc)
        rc = event(s, ctx, "schema.field_renamed", entity,
                   json_pack("{s:s,s:s}", "field", to, "from", from), err);
    if (!rc)
        rp__registry_reload(s);
    /* The search index holds values, not names: it stays as it is. */
    return change_end(s, rc, err);
}

int rp_store_drop_field(rp_store_t *s, const rp_ctx_t *ctx, const char *entity,
                        const char *field, rp_error_t *err)
{
    if (rp__schema_allowed(ctx, "drop_field", err))
        return RP_EPERM;
    rp__entity_t *e;
    rp__field_t *f;
    int rc = field_req(s, entity, field, &e, &f, err);
    if (rc)
        return rc;
    if (f->type == RP_T_REF)
        return rp_error_field(err, field,
                              rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                                           "cannot drop %s.%s: a ref field keeps a foreign key "
                                           "the database does not let go of by itself",
                                           entity, field));
    bool searchable = f->searchable;
    json_t *spec = rp__field_spec_json(f);
    char sql[300];
    int64_t held = 0;
    snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\" WHERE \"%s\" IS NOT NULL", entity,
             field);
    if ((rc = rp__count_sql(s, sql, NULL, &held, err)) || (rc = change_begin(s, err))) {
        json_decref(spec);
        return rc;
    }
    snprintf(sql, sizeof sql, "ALTER TABLE \"%s\" DROP COLUMN \"%s\"", entity, field);
    if (!(rc = drop_index(s, entity, field, err)))
        rc = rp__exec(s, sql, err);
    rp_db_stmt_t *st = NULL;
    if (!rc && !(st = rp__stmt(s, "DELETE FROM rp_fields WHERE entity = ? AND name = ?", err)))
        rc = err ? err->code : RP_EIO;
    if (!rc) {
        rp_db_bind_text(st, 1, entity, -1);
        rp_db_bind_text(st, 2, field, -1);
        rc = rp__step_done(s, st, "cannot forget the field", err);
    }
    if (!rc)
        rc = event(s, ctx, "schema.field_dropped", entity,
                   json_pack("{s:s,s:O,s:I}", "field", field, "spec", spec, "values",
                             (json_int_t)held),
                   err);
    json_decref(spec);
    if (!rc) {
        rp__registry_reload(s);
        if (searchable)
            rc = rp__reindex(s, rp__entity(s, entity), err);
    }
    return change_end(s, rc, err);
}

/* ---- change_type ------------------------------------------------------------------------- */

/* Every record's id and value of @p f, read before any is written. */
static json_t *read_values(rp_store_t *s, const char *entity, const rp__field_t *f,
                           rp_error_t *err)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT id, \"%s\" FROM \"%s\" ORDER BY id", f->name, entity);
    rp_db_stmt_t *st = rp_db_prepare(s->db, sql, err);
    if (!st)
        return NULL;
    json_t *rows = json_array();
    int rc;
    while ((rc = rp_db_step(st)) == RP_DB_ROW)
        json_array_append_new(rows, json_pack("[Io]", (json_int_t)rp_db_col_int(st, 0),
                                              rp__value_column(st, 1, f)));
    rp_db_finalize(st);
    if (rc != RP_DB_DONE) {
        json_decref(rows);
        rp__dberr(s, rc, "cannot read the values", err);
        return NULL;
    }
    return rows;
}

/* Converts and writes every value into the new column. */
static int convert_all(rp_store_t *s, const char *entity, const rp__field_t *nf, json_t *rows,
                       rp_convert_fn convert, void *ud, rp_error_t *err)
{
    char sql[200];
    snprintf(sql, sizeof sql, "UPDATE \"%s\" SET " NEW_COLUMN " = ? WHERE id = ?", entity);
    rp_db_stmt_t *st = rp_db_prepare(s->db, sql, err);
    if (!st)
        return err ? err->code : RP_EIO;
    size_t i;
    json_t *row;
    int rc = 0;
    json_array_foreach(rows, i, row) {
        int64_t id = json_integer_value(json_array_get(row, 0));
        json_t *old = json_array_get(row, 1), *val = NULL, *canon = NULL;
        char shown[64];
        char *d = json_dumps(old, JSON_ENCODE_ANY);
        snprintf(shown, sizeof shown, "%s", d ? d : "?");
        free(d);
        if (convert)
            rc = convert(ud, id, old, &val, err);
        else
            val = json_incref(old);
        if (!rc && !val)
            val = json_null();
        if (!rc)
            rc = rp__value_canon(entity, nf, val, &canon, err);
        if (!rc && nf->required && json_is_null(canon))
            rc = rp_error_set(err, RP_EINVAL, RP_C_REQUIRED, "%s.%s is required",
                              entity, nf->name);
        /* Looked up again for each record: a conversion may call the store. */
        if (!rc && nf->type == RP_T_REF && !json_is_null(canon))
            rc = rp__check_ref(s, rp__entity(s, entity), (rp__field_t *)nf, canon, err);
        if (!rc) {
            rp_db_reset(st);
            rp__value_bind(st, 1, nf, canon);
            rp_db_bind_int(st, 2, id);
            int src = rp_db_step(st);
            rc = src == RP_DB_DONE ? 0 : rp__dberr(s, src, "cannot write the value", err);
        }
        json_decref(val);
        json_decref(canon);
        if (rc) {
            char why[sizeof err->msg];
            const char *inner = err ? err->msg : "";
            if (strncmp(inner, "RP-E", 4) == 0 && strstr(inner, ": "))
                inner = strstr(inner, ": ") + 2; /* one code in front is enough */
            snprintf(why, sizeof why, "%s", inner);
            rp_error_set(err, rc, RP_C_TYPE, "record %lld of %s: value %s of \"%s\" does not "
                         "become %s: %s", (long long)id, entity, shown, nf->name,
                         rp_ftype_name(nf->type), why);
            break;
        }
    }
    rp_db_finalize(st);
    return rc;
}

int rp_store_change_type(rp_store_t *s, const rp_ctx_t *ctx, const char *entity,
                         const char *field, json_t *fspec, rp_convert_fn convert, void *ud,
                         rp_error_t *err)
{
    if (rp__schema_allowed(ctx, "change_type", err))
        return RP_EPERM;
    rp__entity_t *e;
    rp__field_t *f;
    int rc = field_req(s, entity, field, &e, &f, err);
    if (rc)
        return rc;
    rp__field_t nf = {0}, tmp;
    nf.name = strdup(field);
    nf.owner = strdup(f->owner);
    if (!nf.name || !nf.owner) {
        rp__field_free(&nf);
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    }
    if ((rc = rp__field_parse(s, entity, entity, &nf, fspec, err))) {
        rp__field_free(&nf);
        return rc;
    }
    if (f->type == RP_T_REF) {
        rp__field_free(&nf);
        return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                            "cannot change the type of %s.%s: a ref field keeps a foreign key the "
                            "database does not let go of by itself", entity, field);
    }
    bool searchable = f->searchable || nf.searchable;
    json_t *from = rp__field_spec_json(f), *to = rp__field_spec_json(&nf);
    json_t *rows = NULL;
    char col[200], sql[400];
    /* The values are read inside the level, which holds the write lock: no record written by
     * another process in between is left without its converted value. */
    if ((rc = change_begin(s, err)))
        goto out;
    if (!(rows = read_values(s, entity, f, err))) {
        rc = err ? err->code : RP_EIO;
        goto end;
    }
    tmp = nf;
    tmp.name = NEW_COLUMN;
    rp__column_def(entity, &tmp, col, sizeof col);
    snprintf(sql, sizeof sql, "ALTER TABLE \"%s\" ADD COLUMN %s", entity, col);
    if ((rc = rp__exec(s, sql, err)) ||
        (rc = convert_all(s, entity, &nf, rows, convert, ud, err)) ||
        (rc = drop_index(s, entity, field, err)))
        goto end;
    snprintf(sql, sizeof sql, "ALTER TABLE \"%s\" DROP COLUMN \"%s\"", entity, field);
    if ((rc = rp__exec(s, sql, err)))
        goto end;
    snprintf(sql, sizeof sql, "ALTER TABLE \"%s\" RENAME COLUMN " NEW_COLUMN " TO \"%s\"", entity,
             field);
    if ((rc = rp__exec(s, sql, err)) || (rc = rp__field_index(s, entity, &nf, err)))
        goto end;
    rp_db_stmt_t *st = rp__stmt(s, "UPDATE rp_fields SET spec = ? WHERE entity = ? AND name = ?",
                                err);
    if (!st) {
        rc = err ? err->code : RP_EIO;
        goto end;
    }
    rp_db_bind_text_owned(st, 1, json_dumps(to, JSON_COMPACT), -1);
    rp_db_bind_text(st, 2, entity, -1);
    rp_db_bind_text(st, 3, field, -1);
    if ((rc = rp__step_done(s, st, "cannot record the field", err)))
        goto end;
    rc = event(s, ctx, "schema.field_type_changed", entity,
               json_pack("{s:s,s:O,s:O,s:I}", "field", field, "from", from, "to", to, "records",
                         (json_int_t)json_array_size(rows)),
               err);
    if (!rc) {
        rp__registry_reload(s);
        if (searchable)
            rc = rp__reindex(s, rp__entity(s, entity), err);
    }
end:
    rc = change_end(s, rc, err);
out:
    json_decref(rows);
    json_decref(from);
    json_decref(to);
    rp__field_free(&nf);
    return rc;
}

/* ---- drop_entity ------------------------------------------------------------------------- */

int rp_store_drop_entity(rp_store_t *s, const rp_ctx_t *ctx, const char *entity,
                         rp_error_t *err)
{
    if (rp__schema_allowed(ctx, "drop_entity", err))
        return RP_EPERM;
    rp__entity_t *e = rp__entity_req(s, entity, err);
    if (!e)
        return err ? err->code : RP_ENOTFOUND;
    for (int i = 0; i < s->nents; i++)
        for (int j = 0; s->ents[i] != e && j < s->ents[i]->nfields; j++)
            if (s->ents[i]->fields[j].type == RP_T_REF &&
                strcmp(s->ents[i]->fields[j].ref, entity) == 0)
                return rp_error_set(err, RP_ECONFLICT, RP_C_REFERENCED,
                                    "cannot drop %s: field %s.%s refers to it (drop that field "
                                    "or its entity first)",
                                    entity, s->ents[i]->name, s->ents[i]->fields[j].name);
    int64_t no = e->no, n = 0;
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\"", entity);
    int rc = rp__count_sql(s, sql, NULL, &n, err);
    if (rc || (rc = change_begin(s, err)))
        return rc;
    /* Writes held for the index run first, so that none lands after the clearing. */
    rc = rp__fts_flush(s, err);
    rp_db_stmt_t *st =
        rc ? NULL : rp__stmt(s, "DELETE FROM rp_search WHERE rowid >= ? AND rowid < ?", err);
    if (!rc && !st) {
        rc = err ? err->code : RP_EIO;
    } else if (st) {
        rp_db_bind_int(st, 1, no << RP__FTS_SHIFT);
        rp_db_bind_int(st, 2, (no + 1) << RP__FTS_SHIFT);
        rc = rp__step_done(s, st, "cannot clear the search index", err);
    }
    snprintf(sql, sizeof sql, "DROP TABLE \"%s\"", entity);
    if (!rc)
        rc = rp__exec(s, sql, err);
    static const char *const forget[] = {"DELETE FROM rp_fields WHERE entity = ?",
                                         "DELETE FROM rp_entities WHERE name = ?"};
    for (int i = 0; i < 2 && !rc; i++) {
        if (!(st = rp__stmt(s, forget[i], err))) {
            rc = err ? err->code : RP_EIO;
            break;
        }
        rp_db_bind_text(st, 1, entity, -1);
        rc = rp__step_done(s, st, "cannot forget the entity", err);
    }
    if (!rc)
        rc = event(s, ctx, "schema.entity_dropped", entity,
                   json_pack("{s:I}", "records", (json_int_t)n), err);
    if (!rc)
        rp__registry_reload(s);
    return change_end(s, rc, err);
}

/* ---- the ledger of migrations ------------------------------------------------------------ */

int rp_store_migration_ran(rp_store_t *s, const char *id, char checksum[65], char ran_at[32],
                           rp_error_t *err)
{
    rp_db_stmt_t *st = rp__stmt(s, "SELECT checksum, ran_at FROM rp_migrations WHERE id = ?",
                                err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_text(st, 1, id, -1);
    int rc = rp_db_step(st);
    if (rc == RP_DB_ROW) {
        if (checksum)
            snprintf(checksum, 65, "%s", rp_db_col_text(st, 0));
        if (ran_at)
            snprintf(ran_at, 32, "%s", rp_db_col_text(st, 1));
    }
    rp_db_reset(st);
    if (rc == RP_DB_ROW)
        return 1;
    return rc == RP_DB_DONE ? 0 : rp__dberr(s, rc, "cannot read the migrations", err);
}

static bool migration_id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)id[i] < 0x20 || id[i] == 0x7f)
            return false;
    return n >= 1 && n <= 128;
}

int rp_store_migration_record(rp_store_t *s, const rp_ctx_t *ctx, const char *id,
                              const char *checksum, const char *script, rp_error_t *err)
{
    if (rp__schema_allowed(ctx, "migration", err))
        return RP_EPERM;
    if (!migration_id_ok(id))
        return rp_error_set(err, RP_EINVAL, RP_C_MIGRATION,
                            "a migration id is 1 to 128 printable characters (got \"%s\")",
                            id ? id : "(null)");
    int rc = rp_store_migration_ran(s, id, NULL, NULL, err);
    if (rc < 0)
        return rc;
    if (rc)
        return rp_error_set(err, RP_ECONFLICT, RP_C_MIGRATION,
                            "migration \"%s\" is recorded already", id);
    if ((rc = rp_store_begin(s, err)))
        return rc;
    char now[32];
    rp__fmt_time(rp_store_now(s), now);
    rp_db_stmt_t *st = rp__stmt(s, "INSERT INTO rp_migrations(id, checksum, ran_at, ran_by,"
                                   " script) VALUES(?,?,?,?,?)", err);
    if (!st) {
        rc = err ? err->code : RP_EIO;
    } else {
        rp_db_bind_text(st, 1, id, -1);
        rp_db_bind_text(st, 2, checksum ? checksum : "", -1);
        rp_db_bind_text(st, 3, now, -1);
        rp_db_bind_text(st, 4, rp__actor_of(ctx), -1);
        rp_db_bind_text(st, 5, script ? script : "", -1);
        rc = rp__step_done(s, st, "cannot record the migration", err);
    }
    if (!rc)
        rc = event(s, ctx, "schema.migration_ran", "",
                   json_pack("{s:s,s:s,s:s}", "id", id, "checksum", checksum ? checksum : "",
                             "script", script ? script : ""),
                   err);
    if (rc) {
        rp_store_rollback(s, NULL);
        return rc;
    }
    return rp_store_commit(s, err);
}
