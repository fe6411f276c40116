/*
 * registry.c — the entity registry: its copy in memory (entities, fields, the SQL texts made
 * from them), reading it from the file, and defining entities and adding fields.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---------------------------------------------------------------------------------------- */
/* The registry in memory                                                                    */

void rp__field_free(rp__field_t *f)
{
    free(f->name);
    free(f->ref);
    free(f->owner);
    json_decref(f->def);
    json_decref(f->values);
}

static void entity_free(rp__entity_t *e)
{
    if (!e)
        return;
    for (int i = 0; i < e->nfields; i++)
        rp__field_free(&e->fields[i]);
    free(e->fields);
    free(e->name);
    free(e->label);
    free(e->owner);
    rp_db_finalize(e->st_insert);
    free(e->sql_insert);
    free(e->sql_select);
    free(e->sql_get);
    free(e);
}

rp__entity_t *rp__entity(const rp_store_t *s, const char *name)
{
    if (!name)
        return NULL;
    for (int i = 0; i < s->nents; i++)
        if (strcmp(s->ents[i]->name, name) == 0)
            return s->ents[i];
    return NULL;
}

rp__entity_t *rp__entity_req(const rp_store_t *s, const char *name, rp_error_t *err)
{
    rp__entity_t *e = rp__entity(s, name);
    if (!e)
        rp_error_set(err, RP_ENOTFOUND, RP_C_NO_ENTITY, "unknown entity \"%s\"",
                     name ? name : "(null)");
    return e;
}

rp__field_t *rp__field(const rp__entity_t *e, const char *name)
{
    for (int i = 0; i < e->nfields; i++)
        if (strcmp(e->fields[i].name, name) == 0)
            return &e->fields[i];
    return NULL;
}

bool rp_store_has_entity(const rp_store_t *s, const char *name)
{
    return rp__entity(s, name) != NULL;
}

bool rp_store_has_field(const rp_store_t *s, const char *entity, const char *field)
{
    rp__entity_t *e = rp__entity(s, entity);
    return e && field && (rp__field(e, field) || rp__is_system_field(field));
}

bool rp_store_field_type(const rp_store_t *s, const char *entity, const char *field, int *type)
{
    rp__entity_t *e = rp__entity(s, entity);
    const rp__field_t *f = e && field ? rp__field(e, field) : NULL;
    if (f)
        *type = (int)f->type;
    else if (e && field && rp__is_system_field(field))
        *type = strcmp(field, "id") == 0 || strcmp(field, "version") == 0 ? RP_T_INTEGER
                                                                          : RP_T_TEXT;
    else
        return false;
    return true;
}

static const char *const type_names[] = {"text", "integer", "real",  "decimal", "boolean",
                                          "date", "datetime", "enum", "ref",     "json",
                                          "email", "phone",   "url"};

const char *rp_ftype_name(rp_ftype_t t)
{
    return (unsigned)t < sizeof type_names / sizeof *type_names ? type_names[t] : "?";
}

static int ftype_parse(const char *s)
{
    for (unsigned i = 0; i < sizeof type_names / sizeof *type_names; i++)
        if (strcmp(type_names[i], s) == 0)
            return (int)i;
    return -1;
}

static const char *sql_type(rp_ftype_t t)
{
    switch (t) {
    case RP_T_INTEGER: case RP_T_DECIMAL: case RP_T_BOOLEAN: case RP_T_REF: return "INTEGER";
    case RP_T_REAL: return "REAL";
    default: return "TEXT";
    }
}

/* Rebuilds the SQL texts that depend on an entity's field list. Identifiers come from the
 * registry, where rp__ident_ok() admitted only [a-z0-9_]; values are always bound. */
int rp__entity_build_sql(rp__entity_t *e)
{
    size_t cap = 256 + (size_t)e->nfields * 64;
    char *ins = malloc(cap), *sel = malloc(cap);
    if (!ins || !sel) {
        free(ins);
        free(sel);
        return RP_ENOMEM;
    }
    int n = snprintf(ins, cap, "INSERT INTO \"%s\"(created_at,updated_at,version,created_by,"
                               "updated_by", e->name);
    int m = snprintf(sel, cap, "SELECT id,created_at,updated_at,version,created_by,updated_by,"
                               "deleted_at");
    for (int i = 0; i < e->nfields; i++) {
        n += snprintf(ins + n, cap - (size_t)n, ",\"%s\"", e->fields[i].name);
        m += snprintf(sel + m, cap - (size_t)m, ",\"%s\"", e->fields[i].name);
    }
    n += snprintf(ins + n, cap - (size_t)n, ") VALUES(?,?,1,?,?");
    for (int i = 0; i < e->nfields; i++)
        n += snprintf(ins + n, cap - (size_t)n, ",?");
    snprintf(ins + n, cap - (size_t)n, ")");
    snprintf(sel + m, cap - (size_t)m, " FROM \"%s\"", e->name);
    size_t glen = strlen(sel) + 20;
    char *get = malloc(glen);
    if (!get) {
        free(ins);
        free(sel);
        return RP_ENOMEM;
    }
    snprintf(get, glen, "%s WHERE id = ?", sel);
    rp_db_finalize(e->st_insert);
    e->st_insert = NULL;
    free(e->sql_insert);
    free(e->sql_select);
    free(e->sql_get);
    e->sql_insert = ins;
    e->sql_select = sel;
    e->sql_get = get;
    return 0;
}

/* Parses one field specification into @p f (whose name is set). @p self is the entity being
 * defined, so a ref may point at it. */
int rp__field_parse(rp_store_t *s, const char *entity, const char *self, rp__field_t *f,
                       json_t *spec, rp_error_t *err)
{
    if (!json_is_object(spec))
        return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                            "field \"%s\" of \"%s\": the specification must be an object",
                            f->name, entity);
    const char *key;
    json_t *v;
    json_object_foreach(spec, key, v) {
        static const char *const known[] = {"type",  "required", "unique", "indexed", "searchable",
                                            "default", "values", "ref",    "scale",   "label",
                                            "personal", NULL};
        bool ok = false;
        for (int i = 0; known[i]; i++)
            ok = ok || strcmp(known[i], key) == 0;
        if (!ok)
            return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                                "field \"%s\" of \"%s\": unknown option \"%s\" (known: type, "
                                "required, unique, indexed, searchable, personal, default, "
                                "values, ref, scale, label)",
                                f->name, entity, key);
    }
    json_t *jt = json_object_get(spec, "type");
    int t = json_is_string(jt) ? ftype_parse(json_string_value(jt)) : -1;
    if (t < 0)
        return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                            "field \"%s\" of \"%s\": type must be one of text, integer, real, "
                            "decimal, boolean, date, datetime, enum, ref, json, email, phone, url",
                            f->name, entity);
    f->type = (rp_ftype_t)t;
    static const char *const flags[] = {"required", "unique", "indexed", "searchable",
                                        "personal"};
    bool *dst[] = {&f->required, &f->unique, &f->indexed, &f->searchable, &f->personal};
    for (int i = 0; i < 5; i++) {
        json_t *b = json_object_get(spec, flags[i]);
        if (b && !json_is_boolean(b))
            return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                                "field \"%s\" of \"%s\": \"%s\" must be true or false", f->name,
                                entity, flags[i]);
        *dst[i] = json_is_true(b);
    }
    json_t *vals = json_object_get(spec, "values");
    if (f->type == RP_T_ENUM) {
        if (!json_is_array(vals) || json_array_size(vals) == 0)
            return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                                "enum field \"%s\" of \"%s\" needs \"values\": a non-empty array "
                                "of strings",
                                f->name, entity);
        size_t i, j;
        json_t *a, *b;
        json_array_foreach(vals, i, a) {
            if (!json_is_string(a) || json_string_length(a) == 0)
                return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                                    "enum field \"%s\" of \"%s\": value %zu is not a non-empty "
                                    "string",
                                    f->name, entity, i + 1);
            json_array_foreach(vals, j, b) {
                if (j < i && json_equal(a, b))
                    return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                                        "enum field \"%s\" of \"%s\": value \"%s\" is listed twice",
                                        f->name, entity, json_string_value(a));
            }
        }
        f->values = json_incref(vals);
    } else if (vals) {
        return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                            "field \"%s\" of \"%s\": \"values\" is only for enum fields", f->name,
                            entity);
    }
    json_t *ref = json_object_get(spec, "ref");
    if (f->type == RP_T_REF) {
        const char *target = json_string_value(ref);
        if (!target || (!rp__entity(s, target) && !(self && strcmp(self, target) == 0)))
            return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                                "ref field \"%s\" of \"%s\" needs \"ref\": the name of a defined "
                                "entity (got %s%s%s)",
                                f->name, entity, target ? "\"" : "", target ? target : "none",
                                target ? "\"" : "");
        f->ref = strdup(target);
    } else if (ref) {
        return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                            "field \"%s\" of \"%s\": \"ref\" is only for ref fields", f->name,
                            entity);
    }
    json_t *scale = json_object_get(spec, "scale");
    f->scale = 2;
    if (scale) {
        if (f->type != RP_T_DECIMAL || !json_is_integer(scale) || json_integer_value(scale) < 0 ||
            json_integer_value(scale) > 9)
            return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                                "field \"%s\" of \"%s\": \"scale\" is an integer 0..9, for "
                                "decimal fields only",
                                f->name, entity);
        f->scale = (int)json_integer_value(scale);
    }
    json_t *def = json_object_get(spec, "default");
    if (def && !json_is_null(def)) {
        if (f->type == RP_T_REF)
            return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                                "ref field \"%s\" of \"%s\" cannot have a default", f->name,
                                entity);
        json_t *canon = NULL;
        int rc = rp__value_canon(entity, f, def, &canon, err);
        if (rc)
            return rc;
        f->def = canon;
    }
    return 0;
}

/* The canonical specification of a field, as stored in rp_fields and shown by the schema. */
json_t *rp__field_spec_json(const rp__field_t *f)
{
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string(rp_ftype_name(f->type)));
    if (f->required) json_object_set_new(o, "required", json_true());
    if (f->unique) json_object_set_new(o, "unique", json_true());
    if (f->indexed) json_object_set_new(o, "indexed", json_true());
    if (f->searchable) json_object_set_new(o, "searchable", json_true());
    if (f->personal) json_object_set_new(o, "personal", json_true());
    if (f->def) json_object_set(o, "default", f->def);
    if (f->values) json_object_set(o, "values", f->values);
    if (f->ref) json_object_set_new(o, "ref", json_string(f->ref));
    if (f->type == RP_T_DECIMAL) json_object_set_new(o, "scale", json_integer(f->scale));
    return o;
}

int rp__registry_load(rp_store_t *s, rp_error_t *err)
{
    s->schema_gen++;
    rp_db_stmt_t *q = NULL, *qf = NULL;
    int rc = 0;
    if (!(q = rp_db_prepare(s->db, "SELECT no, name, label, owner FROM rp_entities"
                                   " ORDER BY no", err)) ||
        !(qf = rp_db_prepare(s->db, "SELECT name, spec, owner FROM rp_fields WHERE entity = ?"
                                    " ORDER BY position", err))) {
        rc = err ? err->code : RP_EIO;
        goto out;
    }
    while (rp_db_step(q) == RP_DB_ROW) {
        rp__entity_t *e = calloc(1, sizeof *e);
        rp__entity_t **grown = realloc(s->ents, sizeof *s->ents * (size_t)(s->nents + 1));
        if (!e || !grown) {
            free(e);
            if (grown)
                s->ents = grown;
            rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
            goto out;
        }
        s->ents = grown;
        s->ents[s->nents++] = e;
        e->no = rp_db_col_int(q, 0);
        e->name = strdup(rp_db_col_text(q, 1));
        e->label = rp_db_col_text(q, 2) ? strdup(rp_db_col_text(q, 2))
                                             : NULL;
        e->owner = strdup(rp_db_col_text(q, 3));
        rp_db_reset(qf);
        rp_db_bind_text(qf, 1, e->name, -1);
        while (rp_db_step(qf) == RP_DB_ROW) {
            rp__field_t *nf = realloc(e->fields, sizeof *nf * (size_t)(e->nfields + 1));
            if (!nf) {
                rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
                goto out;
            }
            e->fields = nf;
            rp__field_t *f = &e->fields[e->nfields++];
            memset(f, 0, sizeof *f);
            f->name = strdup(rp_db_col_text(qf, 0));
            f->owner = strdup(rp_db_col_text(qf, 2));
            json_t *spec = json_loads(rp_db_col_text(qf, 1), 0, NULL);
            /* The ref target may be defined later in the file; the table was checked when
             * the field was made, so accept the stored name as is. */
            rc = spec ? rp__field_parse(s, e->name, json_string_value(json_object_get(spec, "ref")),
                                    f, spec, err)
                      : rp_error_set(err, RP_EIO, RP_C_SQL,
                                     "the registry entry of %s.%s is not valid JSON", e->name,
                                     f->name);
            json_decref(spec);
            if (rc)
                goto out;
            if (f->searchable)
                e->nsearch++;
        }
        if (rp__entity_build_sql(e)) {
            rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
            goto out;
        }
    }
out:
    rp_db_finalize(q);
    rp_db_finalize(qf);
    return rc;
}

struct rp__retired {
    rp__entity_t **ents;
    int nents;
    struct rp__retired *next;
};

static void ents_free(rp__entity_t **ents, int n)
{
    for (int i = 0; i < n; i++)
        entity_free(ents[i]);
    free(ents);
}

void rp__registry_free(rp_store_t *s)
{
    ents_free(s->ents, s->nents);
    s->ents = NULL;
    s->nents = 0;
    rp__registry_retired_free(s);
}

void rp__registry_retired_free(rp_store_t *s)
{
    while (s->retired) {
        struct rp__retired *r = s->retired;
        s->retired = r->next;
        ents_free(r->ents, r->nents);
        free(r);
    }
}

/* After a failed schema change the in-memory registry may be ahead of the rolled-back file:
 * reload it from the file. */
uint64_t rp_store_schema_generation(const rp_store_t *s)
{
    return s->schema_gen;
}

void rp__registry_reload(rp_store_t *s)
{
    rp__stmt_flush(s);
    struct rp__retired *r = rp_db_depth(s->db) > 0 ? malloc(sizeof *r) : NULL;
    if (r) {
        /* A write that ran the change (a hook's) may still use the entity it holds. */
        *r = (struct rp__retired){s->ents, s->nents, s->retired};
        s->retired = r;
        s->ents = NULL;
        s->nents = 0;
    } else {
        ents_free(s->ents, s->nents);
        s->ents = NULL;
        s->nents = 0;
    }
    rp_error_t ignored;
    rp__registry_load(s, &ignored);
    s->seen_schema = rp_db_schema_cookie(s->db);
}

int rp_store_refresh(rp_store_t *s)
{
    if (rp_db_depth(s->db) > 0)
        return 0;
    int v = rp_db_schema_cookie(s->db);
    if (v < 0 || v == s->seen_schema)
        return 0;
    rp__registry_reload(s);
    return 1;
}

/* ---------------------------------------------------------------------------------------- */
/* Defining entities and fields                                                              */

static int store_field_row(rp_store_t *s, const char *entity, const rp__field_t *f, int pos,
                           const char *now, rp_error_t *err)
{
    rp_db_stmt_t *st = rp__stmt(s,
                                "INSERT INTO rp_fields(entity, name, position, spec, owner,"
                                " created_at) VALUES(?,?,?,?,?,?)",
                                err);
    if (!st)
        return err ? err->code : RP_EIO;
    json_t *spec = rp__field_spec_json(f);
    char *text = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(spec);
    if (!text)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    rp_db_bind_text(st, 1, entity, -1);
    rp_db_bind_text(st, 2, f->name, -1);
    rp_db_bind_int(st, 3, pos);
    rp_db_bind_text_owned(st, 4, text, -1);
    rp_db_bind_text(st, 5, f->owner, -1);
    rp_db_bind_text(st, 6, now, -1);
    return rp__step_done(s, st, "cannot record the field", err);
}

/* CREATE INDEX for a unique or indexed field. */
int rp__field_index(rp_store_t *s, const char *entity, const rp__field_t *f, rp_error_t *err)
{
    char sql[256];
    if (f->unique || f->indexed || f->type == RP_T_REF) {
        snprintf(sql, sizeof sql, "CREATE %sINDEX \"rp_ix_%s_%s\" ON \"%s\"(\"%s\")",
                 f->unique ? "UNIQUE " : "", entity, f->name, entity, f->name);
        rp_db_stmt_t *st = rp_db_prepare(s->db, sql, err);
        if (!st)
            return err ? err->code : RP_EIO;
        int rc = rp_db_step(st);
        rp_db_finalize(st);
        if (rc != RP_DB_DONE) {
            if ((rc & 0xff) == RP_DB_CONSTRAINT)
                return rp_error_set(err, RP_ECONFLICT, RP_C_UNIQUE,
                                    "cannot make %s.%s unique: existing records share a value",
                                    entity, f->name);
            return rp__dberr(s, rc, "cannot index the field", err);
        }
    }
    return 0;
}

void rp__column_def(const char *entity, const rp__field_t *f, char *out, size_t cap)
{
    int n = snprintf(out, cap, "\"%s\" %s", f->name, sql_type(f->type));
    if (f->type == RP_T_REF)
        snprintf(out + n, cap - (size_t)n, " REFERENCES \"%s\"(id)", f->ref);
    (void)entity;
}

static int spec_fields_check(json_t *fields, const char *name, rp_error_t *err)
{
    if (!json_is_object(fields))
        return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                            "entity \"%s\": \"fields\" must be an object of field specifications",
                            name);
    const char *fname;
    json_t *v;
    json_object_foreach(fields, fname, v) {
        if (!rp__ident_ok(fname) || rp__is_system_field(fname))
            return rp_error_set(err, RP_EINVAL, RP_C_IDENT,
                                "entity \"%s\": \"%s\" is not a valid field name (lower-case "
                                "letters, digits and _, starting with a letter, at most 48, not "
                                "one of id, version, created_at, updated_at, created_by, "
                                "updated_by, deleted_at)",
                                name, fname);
    }
    return 0;
}

int rp__schema_allowed(const rp_ctx_t *ctx, const char *what, rp_error_t *err)
{
    if (!ctx || !ctx->access)
        return 0;
    return rp_error_set(err, RP_EPERM, RP_C_DENIED,
                        "%s: user \"%s\" (role \"%s\") may not change the schema; an "
                        "administrator does, with the scripts the engine loads or `rapport "
                        "define` / `rapport add-field`",
                        what, rp__access_user(ctx->access), rp__access_role(ctx->access));
}

int rp_store_define(rp_store_t *s, const rp_ctx_t *ctx, const char *name, json_t *spec,
                    const char *owner, rp_error_t *err)
{
    if (rp__schema_allowed(ctx, "define", err))
        return RP_EPERM;
    if (!rp__ident_ok(name))
        return rp_error_set(err, RP_EINVAL, RP_C_IDENT,
                            "\"%s\" is not a valid entity name (lower-case letters, digits and _, "
                            "starting with a letter, at most 48 characters, not starting with "
                            "rp_ or sqlite, not rowid or oid)",
                            name ? name : "(null)");
    if (rp__entity(s, name))
        return rp_error_set(err, RP_ECONFLICT, RP_C_DUP_ENTITY, "entity \"%s\" is already defined",
                            name);
    json_t *fields = json_is_object(spec) ? json_object_get(spec, "fields") : NULL;
    if (!json_is_object(spec))
        return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                            "entity \"%s\": the specification must be an object {\"fields\": …}",
                            name);
    if (!fields)
        fields = json_object_get(spec, "fields"); /* may stay NULL: an entity without fields */
    if (fields && spec_fields_check(fields, name, err))
        return err ? err->code : RP_EIO;
    json_t *label = json_object_get(spec, "label");
    if (label && !json_is_string(label))
        return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC, "entity \"%s\": label must be text",
                            name);

    rp__entity_t *e = calloc(1, sizeof *e);
    if (!e)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    e->name = strdup(name);
    e->label = label ? strdup(json_string_value(label)) : NULL;
    e->owner = strdup(owner ? owner : "admin");
    size_t nf = fields ? json_object_size(fields) : 0;
    e->fields = calloc(nf ? nf : 1, sizeof *e->fields);
    int rc = 0;
    char *sql = NULL;
    size_t cap = 512 + nf * 160;
    bool began = false;
    if (!e->name || !e->owner || !e->fields || !(sql = malloc(cap))) {
        rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        goto fail;
    }
    /* Registry order is alphabetical by field name: JSON objects carry no order we can trust
     * across languages, and a stable order keeps exports and schema output predictable. */
    const char **names = calloc(nf ? nf : 1, sizeof *names);
    if (!names) {
        rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        goto fail;
    }
    {
        size_t k = 0;
        const char *fname;
        json_t *v;
        json_object_foreach(fields, fname, v) names[k++] = fname;
        for (size_t i = 1; i < nf; i++)
            for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
                const char *t = names[j];
                names[j] = names[j - 1];
                names[j - 1] = t;
            }
    }
    for (size_t i = 0; i < nf; i++) {
        rp__field_t *f = &e->fields[e->nfields++];
        f->name = strdup(names[i]);
        f->owner = strdup(e->owner);
        if ((rc = rp__field_parse(s, name, name, f, json_object_get(fields, names[i]), err)))
            break;
        if (f->searchable)
            e->nsearch++;
    }
    free(names);
    if (rc)
        goto fail;

    int n = snprintf(sql, cap,
                     "CREATE TABLE \"%s\"(id INTEGER PRIMARY KEY AUTOINCREMENT,"
                     " created_at TEXT NOT NULL, updated_at TEXT NOT NULL,"
                     " version INTEGER NOT NULL, created_by TEXT NOT NULL,"
                     " updated_by TEXT NOT NULL, deleted_at TEXT",
                     name);
    for (int i = 0; i < e->nfields; i++) {
        char col[160];
        rp__column_def(name, &e->fields[i], col, sizeof col);
        n += snprintf(sql + n, cap - (size_t)n, ", %s", col);
    }
    snprintf(sql + n, cap - (size_t)n, ")");

    if ((rc = rp_store_begin(s, err)))
        goto fail;
    began = true;
    rp__schema_touched(s);
    if ((rc = rp__exec(s, sql, err)))
        goto fail;
    for (int i = 0; i < e->nfields; i++)
        if ((rc = rp__field_index(s, name, &e->fields[i], err)))
            goto fail;
    char now[32];
    rp__fmt_time(rp_store_now(s), now);
    rp_db_stmt_t *st = rp__stmt(s,
                                "INSERT INTO rp_entities(name, label, owner, created_at)"
                                " VALUES(?,?,?,?)",
                                err);
    if (!st) {
        rc = err ? err->code : RP_EIO;
        goto fail;
    }
    rp_db_bind_text(st, 1, name, -1);
    if (e->label)
        rp_db_bind_text(st, 2, e->label, -1);
    rp_db_bind_text(st, 3, e->owner, -1);
    rp_db_bind_text(st, 4, now, -1);
    if ((rc = rp__step_done(s, st, "cannot record the entity", err)))
        goto fail;
    e->no = rp_db_last_id(s->db);
    for (int i = 0; i < e->nfields; i++)
        if ((rc = store_field_row(s, name, &e->fields[i], i, now, err)))
            goto fail;
    if ((rc = rp__entity_build_sql(e)) != 0) {
        rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        goto fail;
    }
    json_t *desc = json_object();
    json_t *fdesc = json_object();
    for (int i = 0; i < e->nfields; i++)
        json_object_set_new(fdesc, e->fields[i].name, rp__field_spec_json(&e->fields[i]));
    json_object_set_new(desc, "fields", fdesc);
    rc = rp__event_append(s, ctx, "schema.entity_defined", name, 0, desc, NULL, err);
    json_decref(desc);
    if (rc)
        goto fail;
    rp__entity_t **grown = realloc(s->ents, sizeof *s->ents * (size_t)(s->nents + 1));
    if (!grown) {
        rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        goto fail;
    }
    s->ents = grown;
    s->ents[s->nents++] = e;
    if ((rc = rp_store_commit(s, err))) {
        began = false;
        rp__registry_reload(s);
        free(sql);
        return rc;
    }
    free(sql);
    return 0;
fail:
    if (began)
        rp_store_rollback(s, NULL);
    entity_free(e);
    free(sql);
    return rc;
}

static int table_has_rows(rp_store_t *s, const char *entity, bool *has, rp_error_t *err)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT EXISTS(SELECT 1 FROM \"%s\")", entity);
    rp_db_stmt_t *st = rp__stmt(s, sql, err);
    if (!st)
        return err ? err->code : RP_EIO;
    if (rp_db_step(st) != RP_DB_ROW)
        return rp__dberr(s, RP_DB_ERROR, "cannot read the table", err);
    *has = (int)rp_db_col_int(st, 0) != 0;
    rp_db_reset(st);
    return 0;
}

int rp_store_add_field(rp_store_t *s, const rp_ctx_t *ctx, const char *entity, const char *field,
                       json_t *fspec, const char *owner, rp_error_t *err)
{
    if (rp__schema_allowed(ctx, "add_field", err))
        return RP_EPERM;
    rp__entity_t *e = rp__entity_req(s, entity, err);
    if (!e)
        return err ? err->code : RP_EIO;
    if (!rp__ident_ok(field) || rp__is_system_field(field))
        return rp_error_set(err, RP_EINVAL, RP_C_IDENT,
                            "\"%s\" is not a valid field name for \"%s\" (lower-case letters, "
                            "digits and _, starting with a letter, at most 48, not a system field)",
                            field ? field : "(null)", entity);
    if (rp__field(e, field))
        return rp_error_set(err, RP_ECONFLICT, RP_C_DUP_FIELD,
                            "field \"%s\" is already defined on \"%s\"", field, entity);
    rp__field_t f = {0};
    f.name = strdup(field);
    f.owner = strdup(owner ? owner : "admin");
    int rc = rp__field_parse(s, entity, entity, &f, fspec, err);
    bool began = false;
    if (rc)
        goto fail;
    if ((rc = rp_store_begin(s, err)))
        goto fail;
    began = true;
    rp__schema_touched(s);
    bool has_rows = false;
    if ((rc = table_has_rows(s, entity, &has_rows, err)))
        goto fail;
    if (f.required && !f.def && has_rows) {
        rc = rp_error_set(err, RP_EINVAL, RP_C_REQUIRED,
                          "cannot add required field \"%s\" to \"%s\": it holds records, so give "
                          "the field a default",
                          field, entity);
        goto fail;
    }
    char col[160], sql[400];
    rp__column_def(entity, &f, col, sizeof col);
    /* A numeric default becomes the column's DEFAULT, so existing rows read it at no cost;
     * its literal is printed from a number we parsed, never from the caller's text. A text
     * default is written to the existing rows with a bound UPDATE instead. */
    char lit[64] = "";
    bool numeric_def = false;
    if (f.def && (f.type == RP_T_INTEGER || f.type == RP_T_BOOLEAN)) {
        snprintf(lit, sizeof lit, " DEFAULT %lld",
                 (long long)(json_is_boolean(f.def) ? json_is_true(f.def)
                                                    : json_integer_value(f.def)));
        numeric_def = true;
    } else if (f.def && f.type == RP_T_REAL) {
        snprintf(lit, sizeof lit, " DEFAULT %.17g", json_real_value(f.def));
        numeric_def = true;
    } else if (f.def && f.type == RP_T_DECIMAL) {
        rp_db_stmt_t *tmp;
        /* Reuse the codec: bind the canonical string into a SELECT to get the scaled integer. */
        if ((tmp = rp_db_prepare(s->db, "SELECT ?", NULL))) {
            rp__value_bind(tmp, 1, &f, f.def);
            if (rp_db_step(tmp) == RP_DB_ROW)
                snprintf(lit, sizeof lit, " DEFAULT %lld",
                         (long long)rp_db_col_int(tmp, 0));
            rp_db_finalize(tmp);
        }
        numeric_def = true;
        if (!lit[0]) {
            rc = rp_error_set(err, RP_EIO, RP_C_SQL, "cannot compute the default of %s.%s",
                              entity, field);
            goto fail;
        }
    }
    snprintf(sql, sizeof sql, "ALTER TABLE \"%s\" ADD COLUMN %s%s", entity, col, lit);
    if ((rc = rp__exec(s, sql, err)))
        goto fail;
    if (f.def && !numeric_def && has_rows) {
        snprintf(sql, sizeof sql, "UPDATE \"%s\" SET \"%s\" = ?", entity, field);
        rp_db_stmt_t *st;
        if (!(st = rp_db_prepare(s->db, sql, err))) {
            rc = err ? err->code : RP_EIO;
            goto fail;
        }
        rp__value_bind(st, 1, &f, f.def);
        int src = rp_db_step(st);
        rp_db_finalize(st);
        if (src != RP_DB_DONE) {
            rc = rp__dberr(s, src, "cannot fill the default", err);
            goto fail;
        }
    }
    if ((rc = rp__field_index(s, entity, &f, err)))
        goto fail;
    char now[32];
    rp__fmt_time(rp_store_now(s), now);
    if ((rc = store_field_row(s, entity, &f, e->nfields, now, err)))
        goto fail;
    json_t *desc = json_object();
    json_object_set_new(desc, "field", json_string(field));
    json_object_set_new(desc, "spec", rp__field_spec_json(&f));
    rc = rp__event_append(s, ctx, "schema.field_added", entity, 0, desc, NULL, err);
    json_decref(desc);
    if (rc)
        goto fail;
    rp__field_t *nf = realloc(e->fields, sizeof *nf * (size_t)(e->nfields + 1));
    if (!nf) {
        rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        goto fail;
    }
    e->fields = nf;
    e->fields[e->nfields++] = f;
    if (f.searchable)
        e->nsearch++;
    if (rp__entity_build_sql(e)) {
        e->nfields--;
        rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        goto fail;
    }
    rp__stmt_flush(s);
    /* Existing rows now hold the default: a searchable one must be findable too. */
    if (f.searchable && f.def && has_rows && (rc = rp__reindex(s, e, err))) {
        e->nsearch--;
        e->nfields--;
        rp__entity_build_sql(e);
        goto fail;
    }
    if ((rc = rp_store_commit(s, err))) {
        rp__registry_reload(s);
        return rc;
    }
    return 0;
fail:
    if (began)
        rp_store_rollback(s, NULL);
    rp__field_free(&f);
    return rc;
}

json_t *rp_store_schema(rp_store_t *s, const char *entity, rp_error_t *err)
{
    json_t *all = json_object();
    for (int i = 0; i < s->nents; i++) {
        rp__entity_t *e = s->ents[i];
        if (entity && strcmp(entity, e->name) != 0)
            continue;
        json_t *d = json_object();
        if (e->label)
            json_object_set_new(d, "label", json_string(e->label));
        json_object_set_new(d, "owner", json_string(e->owner));
        json_t *fs = json_object();
        for (int j = 0; j < e->nfields; j++)
            json_object_set_new(fs, e->fields[j].name, rp__field_spec_json(&e->fields[j]));
        json_object_set_new(d, "fields", fs);
        if (entity) {
            json_decref(all);
            return d;
        }
        json_object_set_new(all, e->name, d);
    }
    if (entity) {
        json_decref(all);
        rp_error_set(err, RP_ENOTFOUND, RP_C_NO_ENTITY, "unknown entity \"%s\"", entity);
        return NULL;
    }
    return all;
}

