/*
 * declare.c — a declared entity: the specification a script or plugin states at every start
 * is compared with the registry; what it gained is applied, and what the store cannot change
 * by itself is refused, before anything is written, with the migration that would do it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* What a declaration would do, planned before anything is written. */
typedef struct plan {
    rp_store_t *s;
    const char *entity, *owner;
    json_t *adds;      /* [[name, spec]]: fields the registry lacks */
    json_t *changes;   /* [[name, spec]]: fields whose flags, default or values change */
    json_t *drops;     /* [name]: the owner's empty fields the spec no longer names */
    const char *label; /* the new label, or NULL */
    int refused;
    char field[64];    /* the first field refused */
    char why[440];     /* why, and the migration to write */
    char others[200];  /* the fields refused after it */
} plan_t;

int rp__count_sql(rp_store_t *s, const char *sql, const char *text, int64_t *out,
                  rp_error_t *err)
{
    rp_db_stmt_t *st = rp_db_prepare(s->db, sql, err);
    if (!st)
        return err ? err->code : RP_EIO;
    if (text)
        rp_db_bind_text(st, 1, text, -1);
    int rc = rp_db_step(st);
    *out = rc == RP_DB_ROW ? rp_db_col_int(st, 0) : 0;
    rp_db_finalize(st);
    return rc == RP_DB_ROW ? 0 : rp__dberr(s, rc, "cannot count the records", err);
}

/* Counts the rows of @p entity where field @p f meets @p cond (a fixed SQL text with "%s" for
 * the column; the names come from the registry). */
static int count_rows(rp_store_t *s, const char *entity, const char *f, const char *cond,
                      const char *text, int64_t *out, rp_error_t *err)
{
    char where[256], sql[400];
    snprintf(where, sizeof where, cond, f);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\" WHERE %s", entity, where);
    return rp__count_sql(s, sql, text, out, err);
}

/* Appends to @p out (@p cap bytes, *@p n used so far) what @p fmt says, cutting at the end. */
static void put(char *out, size_t cap, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void put(char *out, size_t cap, size_t *n, const char *fmt, ...)
{
    if (*n + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(out + *n, cap - *n, fmt, ap);
    va_end(ap);
    if (w > 0)
        *n = *n + (size_t)w < cap ? *n + (size_t)w : cap - 1;
}

/* A JSON value as a Lua literal, for the migration a refusal suggests: strings quoted with
 * their quotes, backslashes and control characters escaped, so the text pastes as Lua. */
static void lua_literal(json_t *v, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        put(out, cap, &n, "{");
        bool first = true;
        json_object_foreach(v, k, x) {
            char inner[256];
            lua_literal(x, inner, sizeof inner);
            put(out, cap, &n, "%s%s=%s", first ? "" : ", ", k, inner);
            first = false;
        }
        put(out, cap, &n, "}");
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        put(out, cap, &n, "{");
        json_array_foreach(v, i, x) {
            char inner[128];
            lua_literal(x, inner, sizeof inner);
            put(out, cap, &n, "%s%s", i ? ", " : "", inner);
        }
        put(out, cap, &n, "}");
    } else if (json_is_string(v)) {
        put(out, cap, &n, "\"");
        for (const unsigned char *c = (const unsigned char *)json_string_value(v); *c; c++) {
            if (*c == '"' || *c == '\\')
                put(out, cap, &n, "\\%c", *c);
            else if (*c < 0x20)
                put(out, cap, &n, "\\%03u", *c);
            else
                put(out, cap, &n, "%c", *c);
        }
        put(out, cap, &n, "\"");
    } else {
        char *d = json_dumps(v, JSON_ENCODE_ANY);
        put(out, cap, &n, "%s", d ? d : "nil");
        free(d);
    }
}

/* "text", "decimal (scale 2)", "ref to contact": a field's type as a refusal names it. */
static void type_text(const rp__field_t *f, char *out, size_t cap)
{
    if (f->type == RP_T_REF)
        snprintf(out, cap, "ref to %s", f->ref);
    else if (f->type == RP_T_DECIMAL)
        snprintf(out, cap, "decimal (scale %d)", f->scale);
    else
        snprintf(out, cap, "%s", rp_ftype_name(f->type));
}

static bool same_type(const rp__field_t *a, const rp__field_t *b)
{
    return a->type == b->type && (a->type != RP_T_REF || strcmp(a->ref, b->ref) == 0) &&
           (a->type != RP_T_DECIMAL || a->scale == b->scale);
}

static void refuse(plan_t *p, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void refuse(plan_t *p, const char *field, const char *fmt, ...)
{
    if (p->refused++) {
        size_t n = strlen(p->others);
        snprintf(p->others + n, sizeof p->others - n, "%s%s", n ? ", " : "", field);
        return;
    }
    snprintf(p->field, sizeof p->field, "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->why, sizeof p->why, fmt, ap);
    va_end(ap);
}

static int plan_type(plan_t *p, const rp__field_t *f, const rp__field_t *d, rp_error_t *err)
{
    int64_t held;
    int rc = count_rows(p->s, p->entity, f->name, "\"%s\" IS NOT NULL", NULL, &held, err);
    if (rc)
        return rc;
    char was[80], now[80], lit[256];
    type_text(f, was, sizeof was);
    type_text(d, now, sizeof now);
    json_t *spec = rp__field_spec_json(d);
    lua_literal(spec, lit, sizeof lit);
    json_decref(spec);
    bool num = d->type == RP_T_INTEGER || d->type == RP_T_REAL || d->type == RP_T_DECIMAL;
    bool text = d->type == RP_T_TEXT || d->type == RP_T_EMAIL || d->type == RP_T_PHONE ||
                d->type == RP_T_URL;
    char whose[128] = "";
    if (strcmp(f->owner, p->owner) != 0)
        snprintf(whose, sizeof whose, ", owned by %.100s,", f->owner);
    refuse(p, f->name,
           "field \"%s\"%s is %s in the store but declared %s (%lld records hold a value); "
           "the store does not convert values by itself: write a migration: "
           "crm.schema.migration(\"%s-%s-%s\", function() crm.schema.change_type(\"%s\", \"%s\", "
           "%s, function(v) return %s end) end)",
           f->name, whose, was, now, (long long)held, p->entity,
           f->name, rp_ftype_name(d->type), p->entity, f->name, lit,
           num ? "tonumber(v)" : text ? "tostring(v)" : "v");
    return 0;
}

/* The enum values of @p f that @p d no longer lists and live records hold. */
static int plan_values(plan_t *p, const rp__field_t *f, const rp__field_t *d, bool *ok,
                       rp_error_t *err)
{
    size_t i, j;
    json_t *a, *b;
    int64_t total = 0;
    const char *example = NULL;
    json_array_foreach(f->values, i, a) {
        bool kept = false;
        json_array_foreach(d->values, j, b) kept = kept || json_equal(a, b);
        if (kept)
            continue;
        int64_t n;
        int rc = count_rows(p->s, p->entity, f->name, "\"%s\" = ? AND deleted_at IS NULL",
                            json_string_value(a), &n, err);
        if (rc)
            return rc;
        if (n && !example)
            example = json_string_value(a);
        total += n;
    }
    *ok = total == 0;
    if (total)
        refuse(p, f->name,
               "enum field \"%s\" no longer lists \"%s\" (among others, perhaps), which %lld "
               "live records hold: write a migration that moves them before this declaration: "
               "crm.schema.migration(\"%s-%s-values\", function() for _, r in ipairs(crm.find("
               "\"%s\", {where={%s=\"%s\"}, limit=10000})) do crm.update(\"%s\", r.id, {%s=NEW}) "
               "end end)",
               f->name, example, (long long)total, p->entity, f->name, p->entity, f->name,
               example, p->entity, f->name);
    return 0;
}

/* A field both the registry and the spec have, of the same type. */
static int plan_change(plan_t *p, const rp__field_t *f, const rp__field_t *d, json_t *dspec,
                       rp_error_t *err)
{
    bool ok = true;
    int rc = 0;
    int64_t n = 0;
    if (d->required && !f->required) {
        if ((rc = count_rows(p->s, p->entity, f->name, "\"%s\" IS NULL AND deleted_at IS NULL",
                             NULL, &n, err)))
            return rc;
        if (n) {
            ok = false;
            refuse(p, f->name,
                   "field \"%s\" is declared required but %lld live records hold no value: write "
                   "a migration that fills them before this declaration: crm.schema.migration("
                   "\"%s-%s-filled\", function() for _, r in ipairs(crm.find(\"%s\", {where={%s="
                   "{is_null=true}}, limit=10000})) do crm.update(\"%s\", r.id, {%s=VALUE}) end "
                   "end)",
                   f->name, (long long)n, p->entity, f->name, p->entity, f->name, p->entity,
                   f->name);
        }
    }
    if (d->unique && !f->unique) {
        char sql[400];
        snprintf(sql, sizeof sql,
                 "SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM \"%s\" WHERE \"%s\""
                 " IS NOT NULL GROUP BY \"%s\" HAVING count(*) > 1)",
                 p->entity, f->name, f->name);
        if ((rc = rp__count_sql(p->s, sql, NULL, &n, err)))
            return rc;
        if (n) {
            ok = false;
            refuse(p, f->name,
                   "field \"%s\" is declared unique but %lld records (soft-deleted ones "
                   "included) share their value with another: write a migration that makes "
                   "them distinct before this declaration: crm.schema.migration(\"%s-%s-"
                   "distinct\", function() --[[ crm.update or crm.purge the records that share "
                   "a %s ]] end)",
                   f->name, (long long)n, p->entity, f->name, f->name);
        }
    }
    if (d->type == RP_T_ENUM) {
        bool vok;
        if ((rc = plan_values(p, f, d, &vok, err)))
            return rc;
        ok = ok && vok;
    }
    json_t *had = rp__field_spec_json(f), *want = rp__field_spec_json(d);
    bool same = json_equal(had, want);
    json_decref(had);
    json_decref(want);
    if (ok && !same)
        json_array_append_new(p->changes, json_pack("[sO]", f->name, dspec));
    return 0;
}

static int plan_field(plan_t *p, const rp__entity_t *e, const char *name, json_t *fspec,
                      rp_error_t *err)
{
    rp__field_t d = {0};
    d.name = strdup(name);
    d.owner = strdup(p->owner);
    if (!d.name || !d.owner) {
        rp__field_free(&d);
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    }
    int rc = rp__field_parse(p->s, p->entity, p->entity, &d, fspec, err);
    const rp__field_t *f = rc ? NULL : rp__field(e, name);
    if (rc) {
        /* a malformed spec is the caller's mistake, said as it is */
    } else if (!f) {
        int64_t live = 0;
        if (d.required && !d.def &&
            !(rc = count_rows(p->s, p->entity, "deleted_at", "%s IS NULL", NULL, &live, err)) &&
            live)
            refuse(p, name,
                   "new field \"%s\" is required without a default but %lld live records would "
                   "have no value: give it a default, or declare it optional, fill it in a "
                   "migration (crm.schema.migration(\"%s-%s-filled\", function() … end)) and "
                   "then declare it required",
                   name, (long long)live, p->entity, name);
        else if (!rc)
            json_array_append_new(p->adds, json_pack("[sO]", name, fspec));
    } else if (!same_type(f, &d)) {
        rc = plan_type(p, f, &d, err);
    } else if (strcmp(f->owner, p->owner) == 0) {
        rc = plan_change(p, f, &d, fspec, err);
    }
    /* A field another owner added keeps its owner's flags: only its type was checked. */
    rp__field_free(&d);
    return rc;
}

/* The owner's fields the spec no longer names: dropped when empty, refused when not. */
static int plan_missing(plan_t *p, const rp__entity_t *e, json_t *fields, rp_error_t *err)
{
    for (int i = 0; i < e->nfields; i++) {
        const rp__field_t *f = &e->fields[i];
        if (strcmp(f->owner, p->owner) != 0 || json_object_get(fields, f->name))
            continue;
        int64_t n;
        int rc = count_rows(p->s, p->entity, f->name, "\"%s\" IS NOT NULL", NULL, &n, err);
        if (rc)
            return rc;
        if (!n) {
            json_array_append_new(p->drops, json_string(f->name));
            continue;
        }
        refuse(p, f->name,
               "field \"%s\" holds values in %lld records (soft-deleted ones included) but the "
               "declaration no longer names it: declare it again, or write a migration: "
               "crm.schema.migration(\"%s-drop-%s\", function() crm.schema.drop_field(\"%s\", "
               "\"%s\") end) (or crm.schema.rename_field(\"%s\", \"%s\", \"NEW_NAME\") if it was "
               "renamed)",
               f->name, (long long)n, p->entity, f->name, p->entity, f->name, p->entity,
               f->name);
    }
    return 0;
}

/* Changes a field's flags, default or values in place: its index follows, its row in rp_fields
 * and the search index too. The registry is read back afterwards. */
static int change_field(rp_store_t *s, const rp_ctx_t *ctx, const char *entity,
                        const char *name, json_t *fspec, rp_error_t *err)
{
    rp__entity_t *e = rp__entity_req(s, entity, err);
    rp__field_t *f = e ? rp__field(e, name) : NULL;
    if (!f)
        return e ? rp_error_set(err, RP_ENOTFOUND, RP_C_NO_FIELD, "%s has no field \"%s\"",
                                entity, name)
                 : (err ? err->code : RP_ENOTFOUND);
    rp__field_t d = {0};
    d.name = strdup(name);
    d.owner = strdup(f->owner);
    int rc = d.name && d.owner ? rp__field_parse(s, entity, entity, &d, fspec, err)
                               : rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    json_t *from = rp__field_spec_json(f), *to = rp__field_spec_json(&d);
    bool had = f->unique || f->indexed || f->type == RP_T_REF;
    bool want = d.unique || d.indexed || d.type == RP_T_REF;
    bool research = f->searchable != d.searchable;
    char sql[256];
    if (!rc && had && (!want || f->unique != d.unique)) {
        snprintf(sql, sizeof sql, "DROP INDEX IF EXISTS \"rp_ix_%s_%s\"", entity, name);
        rc = rp__exec(s, sql, err);
    }
    if (!rc && want && (!had || f->unique != d.unique))
        rc = rp__field_index(s, entity, &d, err);
    rp_db_stmt_t *st = NULL;
    if (!rc && !(st = rp__stmt(s, "UPDATE rp_fields SET spec = ? WHERE entity = ? AND name = ?",
                               err)))
        rc = err ? err->code : RP_EIO;
    if (!rc) {
        rp_db_bind_text_owned(st, 1, json_dumps(to, JSON_COMPACT), -1);
        rp_db_bind_text(st, 2, entity, -1);
        rp_db_bind_text(st, 3, name, -1);
        rc = rp__step_done(s, st, "cannot record the field", err);
    }
    if (!rc) {
        json_t *desc = json_pack("{s:s,s:O,s:O}", "field", name, "from", from, "to", to);
        rc = rp__event_append(s, ctx, "schema.field_changed", entity, 0, desc, NULL, err);
        json_decref(desc);
    }
    json_decref(from);
    json_decref(to);
    rp__field_free(&d);
    if (rc)
        return rc;
    rp__registry_reload(s);
    return research ? rp__reindex(s, rp__entity(s, entity), err) : 0;
}

static int change_label(rp_store_t *s, const rp_ctx_t *ctx, const char *entity,
                        const char *label, rp_error_t *err)
{
    rp__entity_t *e = rp__entity_req(s, entity, err);
    if (!e)
        return err ? err->code : RP_ENOTFOUND;
    rp_db_stmt_t *st = rp__stmt(s, "UPDATE rp_entities SET label = ? WHERE name = ?", err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_text(st, 1, label, -1);
    rp_db_bind_text(st, 2, entity, -1);
    int rc = rp__step_done(s, st, "cannot record the label", err);
    if (rc)
        return rc;
    json_t *desc = json_pack("{s:[s?s]}", "label", e->label, label);
    rc = rp__event_append(s, ctx, "schema.entity_changed", entity, 0, desc, NULL, err);
    json_decref(desc);
    if (!rc)
        rp__registry_reload(s);
    return rc;
}

static int apply(plan_t *p, const rp_ctx_t *ctx, json_t *done, rp_error_t *err)
{
    rp_store_t *s = p->s;
    int rc = rp_store_begin(s, err);
    if (rc)
        return rc;
    rp__schema_touched(s);
    size_t i;
    json_t *x;
    char line[160];
    json_array_foreach(p->changes, i, x) {
        const char *name = json_string_value(json_array_get(x, 0));
        if ((rc = change_field(s, ctx, p->entity, name, json_array_get(x, 1), err)))
            goto fail;
        snprintf(line, sizeof line, "changed %s.%s", p->entity, name);
        json_array_append_new(done, json_string(line));
    }
    json_array_foreach(p->adds, i, x) {
        const char *name = json_string_value(json_array_get(x, 0));
        if ((rc = rp_store_add_field(s, ctx, p->entity, name, json_array_get(x, 1), p->owner,
                                     err)))
            goto fail;
        snprintf(line, sizeof line, "added %s.%s", p->entity, name);
        json_array_append_new(done, json_string(line));
    }
    json_array_foreach(p->drops, i, x) {
        if ((rc = rp_store_drop_field(s, ctx, p->entity, json_string_value(x), err)))
            goto fail;
        snprintf(line, sizeof line, "dropped %s.%s (it held no value)", p->entity,
                 json_string_value(x));
        json_array_append_new(done, json_string(line));
    }
    if (p->label) {
        if ((rc = change_label(s, ctx, p->entity, p->label, err)))
            goto fail;
        snprintf(line, sizeof line, "labelled %s", p->entity);
        json_array_append_new(done, json_string(line));
    }
    if ((rc = rp_store_commit(s, err)))
        rp__registry_reload(s);
    return rc;
fail:
    rp_store_rollback(s, NULL);
    rp__registry_reload(s);
    return rc;
}

static int plan_entity(plan_t *p, const rp__entity_t *e, json_t *spec, rp_error_t *err)
{
    json_t *fields = json_object_get(spec, "fields");
    if (fields && !json_is_object(fields))
        return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                            "entity \"%s\": \"fields\" must be an object of field specifications",
                            p->entity);
    json_t *label = json_object_get(spec, "label");
    if (label && !json_is_string(label))
        return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC, "entity \"%s\": label must be text",
                            p->entity);
    if (label && strcmp(e->owner, p->owner) == 0 &&
        (!e->label || strcmp(e->label, json_string_value(label)) != 0))
        p->label = json_string_value(label);
    const char *name;
    json_t *fspec;
    json_object_foreach(fields, name, fspec) {
        if (!rp__ident_ok(name) || rp__is_system_field(name))
            return rp_error_set(err, RP_EINVAL, RP_C_IDENT,
                                "entity \"%s\": \"%s\" is not a valid field name (lower-case "
                                "letters, digits and _, starting with a letter, at most 48, not "
                                "a system field)",
                                p->entity, name);
        int rc = plan_field(p, e, name, fspec, err);
        if (rc)
            return rc;
    }
    json_t *none = json_object();
    int rc = plan_missing(p, e, fields ? fields : none, err);
    json_decref(none);
    return rc;
}

int rp_store_declare(rp_store_t *s, const rp_ctx_t *ctx, const char *name, json_t *spec,
                     const char *owner, json_t **changes, rp_error_t *err)
{
    if (rp__schema_allowed(ctx, "declare", err))
        return RP_EPERM;
    if (changes)
        *changes = NULL;
    if (!json_is_object(spec))
        return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                            "entity \"%s\": the specification must be an object {\"fields\": …}",
                            name ? name : "(null)");
    json_t *done = json_array();
    if (!done)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    owner = owner ? owner : "admin";
    rp__entity_t *e = rp__entity(s, name);
    int rc = 0;
    if (!e) {
        if (!(rc = rp_store_define(s, ctx, name, spec, owner, err))) {
            char line[96];
            snprintf(line, sizeof line, "created %s", name);
            json_array_append_new(done, json_string(line));
        }
        goto out;
    }
    plan_t p = {.s = s, .entity = name, .owner = owner, .adds = json_array(),
                .changes = json_array(), .drops = json_array()};
    rc = plan_entity(&p, e, spec, err);
    if (!rc && p.refused) {
        /* The count comes first, so that a long migration text cut at the end loses nothing
         * of it. */
        char more[320] = "";
        if (p.refused > 1)
            snprintf(more, sizeof more, " (%d fields refused; besides \"%.60s\": %.200s)",
                     p.refused, p.field, p.others);
        rc = rp_error_field(err, p.field, rp_error_set(err, RP_EINVAL, RP_C_DECLARE,
                                                       "cannot declare %s%s: %s", name, more,
                                                       p.why));
    } else if (!rc && (json_array_size(p.adds) || json_array_size(p.changes) ||
                       json_array_size(p.drops) || p.label)) {
        rc = apply(&p, ctx, done, err);
    }
    json_decref(p.adds);
    json_decref(p.changes);
    json_decref(p.drops);
out:
    if (!rc && changes)
        *changes = json_incref(done);
    json_decref(done);
    return rc;
}
