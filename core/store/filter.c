/*
 * filter.c — the filter tree of a query compiled to a WHERE clause over registry names with
 * bound values, the SQL builder it writes into, and the read scope of a restricted user. Used
 * by finding and counting (query.c) and by aggregates (aggregate.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"

#define MAX_DEPTH 32   /* Nesting of and/or/not. */
#define MAX_IN 1000    /* Values of one in / not_in. */

/* The columns every record has, typed so filters and cursors treat them like fields. */
static rp__field_t sys_fields[] = {
    {.name = "id", .type = RP_T_INTEGER},           {.name = "created_at", .type = RP_T_DATETIME},
    {.name = "updated_at", .type = RP_T_DATETIME},  {.name = "version", .type = RP_T_INTEGER},
    {.name = "created_by", .type = RP_T_TEXT},      {.name = "updated_by", .type = RP_T_TEXT},
    {.name = "deleted_at", .type = RP_T_DATETIME},
};

rp__field_t *rp__any_field(rp__entity_t *e, const char *name)
{
    for (size_t i = 0; i < sizeof sys_fields / sizeof *sys_fields; i++)
        if (strcmp(sys_fields[i].name, name) == 0)
            return &sys_fields[i];
    return rp__field(e, name);
}

int rp__no_field(rp__entity_t *e, const char *name, rp_error_t *err)
{
    char known[600];
    int n = 0;
    for (int i = 0; i < e->nfields && n < (int)sizeof known - 60; i++)
        n += snprintf(known + n, sizeof known - (size_t)n, "%s%s", i ? ", " : "",
                      e->fields[i].name);
    if (n == 0)
        snprintf(known, sizeof known, "none besides the system fields");
    return rp_error_field(err, name, rp_error_set(err, RP_EINVAL, RP_C_NO_FIELD,
                        "unknown field \"%s\" on %s (fields: %s)", name, e->name, known));
}

/* ---- a small string builder and the list of values to bind ------------------------------ */



void rp__qb_put(rp__qb_t *q, const char *fmt, ...)
{
    if (q->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        /* No pointer arithmetic on the NULL of an empty builder (undefined, UBSan says). */
        int n = vsnprintf(q->sql ? q->sql + q->len : NULL, q->cap - q->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            q->oom = true;
            return;
        }
        if (q->len + (size_t)n < q->cap) {
            q->len += (size_t)n;
            return;
        }
        size_t ncap = (q->cap ? q->cap * 2 : 256) + (size_t)n;
        char *ns = realloc(q->sql, ncap);
        if (!ns) {
            q->oom = true;
            return;
        }
        q->sql = ns;
        q->cap = ncap;
    }
}

void rp__qb_put_str(rp__qb_t *q, const char *str)
{
    size_t n = strlen(str);
    if (q->oom)
        return;
    if (q->len + n + 1 > q->cap) {
        size_t ncap = (q->cap ? q->cap * 2 : 256) + n;
        char *ns = realloc(q->sql, ncap);
        if (!ns) {
            q->oom = true;
            return;
        }
        q->sql = ns;
        q->cap = ncap;
    }
    memcpy(q->sql + q->len, str, n + 1);
    q->len += n;
}

void rp__qb_bind_add(rp__qb_t *q, const rp__field_t *f, json_t *v)
{
    if (q->oom || !v) {
        q->oom = true;
        json_decref(v);
        return;
    }
    if (q->nb == q->capb) {
        int nc = q->capb ? q->capb * 2 : 8;
        rp__bindv_t *nb = realloc(q->b, sizeof *nb * (size_t)nc);
        if (!nb) {
            q->oom = true;
            json_decref(v);
            return;
        }
        q->b = nb;
        q->capb = nc;
    }
    q->b[q->nb].f = f;
    q->b[q->nb].v = v;
    q->nb++;
}

void rp__qb_free(rp__qb_t *q)
{
    for (int i = 0; i < q->nb; i++)
        json_decref(q->b[i].v);
    free(q->b);
    free(q->sql);
}

int rp__qb_bind(rp__qb_t *q, rp_db_stmt_t *st, int first)
{
    for (int i = 0; i < q->nb; i++) {
        int rc;
        if (q->b[i].f)
            rc = rp__value_bind(st, first + i, q->b[i].f, q->b[i].v);
        else if (json_is_integer(q->b[i].v))
            rc = rp_db_bind_int(st, first + i, json_integer_value(q->b[i].v));
        else
            rc = rp_db_bind_text_copy(st, first + i, json_string_value(q->b[i].v), -1);
        if (rc != RP_DB_OK)
            return rc;
    }
    return RP_DB_OK;
}

/* ---- the filter tree -------------------------------------------------------------------- */

static int filter_err(rp__entity_t *e, rp_error_t *err, const char *fmt, const char *a,
                      const char *b)
{
    char m[300];
    snprintf(m, sizeof m, fmt, a, b);
    return rp_error_set(err, RP_EINVAL, RP_C_FILTER, "filter on %s: %s", e->name, m);
}

/* A value compared with field @p f, canonicalised by the field's own rules. */
static int value_for(rp__entity_t *e, const rp__field_t *f, json_t *v, rp__qb_t *q, rp_error_t *err)
{
    json_t *c = NULL;
    int rc = rp__value_canon(e->name, f, v, &c, err);
    if (rc)
        return rc;
    if (f->type == RP_T_JSON) {
        /* JSON columns hold compact text; compare with the same text. */
        char *d = json_dumps(c, JSON_ENCODE_ANY | JSON_COMPACT);
        json_decref(c);
        rp__qb_bind_add(q, NULL, d ? json_string(d) : NULL);
        free(d);
        return 0;
    }
    rp__qb_bind_add(q, f, c);
    return 0;
}

static bool is_textual(const rp__field_t *f)
{
    return f->type == RP_T_TEXT || f->type == RP_T_EMAIL || f->type == RP_T_PHONE ||
           f->type == RP_T_URL || f->type == RP_T_ENUM || f->type == RP_T_JSON;
}

/* LIKE pattern for contains / starts_with: the user's text with %, _ and \ escaped. */
static json_t *like_pattern(const char *s, bool leading)
{
    size_t n = strlen(s);
    char *p = malloc(2 * n + 3), *o = p;
    if (!p)
        return NULL;
    if (leading)
        *o++ = '%';
    for (; *s; s++) {
        if (*s == '%' || *s == '_' || *s == '\\')
            *o++ = '\\';
        *o++ = *s;
    }
    *o++ = '%';
    *o = '\0';
    json_t *j = json_string(p);
    free(p);
    return j;
}

/* RP_ELIMIT when the filter compiled so far is over a published cap: thousands of terms would
 * build an expression SQLite refuses (or takes long to plan) and say so in its own words. */
static int over_cap(rp__entity_t *e, rp__qb_t *q, rp_error_t *err)
{
    if (q->nconds > RP_FILTER_MAX_CONDITIONS)
        return rp_error_set(err, RP_ELIMIT, RP_C_CAP, "filter on %s: more than %d conditions "
                            "(the limit of one filter)", e->name, RP_FILTER_MAX_CONDITIONS);
    if (q->nb > RP_FILTER_MAX_VALUES)
        return rp_error_set(err, RP_ELIMIT, RP_C_CAP, "filter on %s: more than %d values in "
                            "all (the limit of one filter)", e->name, RP_FILTER_MAX_VALUES);
    return 0;
}

static int compile_op(rp__entity_t *e, const rp__field_t *f, const char *op, json_t *v, rp__qb_t *q,
                      rp_error_t *err)
{
    const char *col = f->name;
    q->nconds++;
    int rc = over_cap(e, q, err);
    if (rc)
        return rc;
    static const struct {
        const char *name, *sql;
    } cmp[] = {{"eq", "="}, {"ne", "IS NOT"}, {"lt", "<"}, {"le", "<="}, {"gt", ">"}, {"ge", ">="}};
    for (size_t i = 0; i < sizeof cmp / sizeof *cmp; i++) {
        if (strcmp(op, cmp[i].name) != 0)
            continue;
        if (json_is_null(v)) {
            if (i > 1)
                return filter_err(e, err, "%s.%s cannot compare with null", col, op);
            rp__qb_put(q, "\"%s\" IS %s", col, i == 0 ? "NULL" : "NOT NULL");
            return 0;
        }
        rp__qb_put(q, "\"%s\" %s ?", col, cmp[i].sql);
        return value_for(e, f, v, q, err);
    }
    if (strcmp(op, "in") == 0 || strcmp(op, "not_in") == 0) {
        bool neg = op[0] == 'n';
        /* An empty list from Lua arrives as an empty object: it is the empty list. */
        if (json_is_object(v) && json_object_size(v) == 0) {
            rp__qb_put(q, neg ? "1" : "0");
            return 0;
        }
        if (!json_is_array(v) || json_array_size(v) > MAX_IN)
            return filter_err(e, err, "%s.%s needs an array of at most 1000 values", col, op);
        if (json_array_size(v) == 0) {
            rp__qb_put(q, neg ? "1" : "0");
            return 0;
        }
        rp__qb_put(q, neg ? "(\"%s\" IS NULL OR \"%s\" NOT IN (" : "(\"%s\" IN (", col, col);
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            rp__qb_put(q, i ? ",?" : "?");
            if ((rc = value_for(e, f, x, q, err)))
                return rc;
        }
        rp__qb_put(q, "))");
        return over_cap(e, q, err);
    }
    if (strcmp(op, "contains") == 0 || strcmp(op, "starts_with") == 0) {
        if (!is_textual(f))
            return filter_err(e, err, "%s.%s works on text fields only", col, op);
        if (!json_is_string(v))
            return filter_err(e, err, "%s.%s needs a text value", col, op);
        /* The pattern as an expression, not a bare parameter: SQLite would plan the LIKE by
         * the bound value and prepare the cached statement again for every other value, for
         * an index it cannot use here (LIKE folds case; the indexes do not). */
        rp__qb_put(q, "\"%s\" LIKE CAST(? AS TEXT) ESCAPE '\\'", col);
        rp__qb_bind_add(q, NULL, like_pattern(json_string_value(v), op[0] == 'c'));
        return 0;
    }
    if (strcmp(op, "is_null") == 0) {
        if (!json_is_boolean(v))
            return filter_err(e, err, "%s.%s needs true or false", col, op);
        rp__qb_put(q, "\"%s\" IS %s", col, json_is_true(v) ? "NULL" : "NOT NULL");
        return 0;
    }
    if (strcmp(op, "between") == 0) {
        if (!json_is_array(v) || json_array_size(v) != 2)
            return filter_err(e, err, "%s.%s needs an array of two values [low, high]", col, op);
        rp__qb_put(q, "\"%s\" BETWEEN ? AND ?", col);
        rc = value_for(e, f, json_array_get(v, 0), q, err);
        return rc ? rc : value_for(e, f, json_array_get(v, 1), q, err);
    }
    return filter_err(e, err,
                      "unknown operator \"%s\" on field %s (operators: eq, ne, lt, le, gt, ge, "
                      "in, not_in, contains, starts_with, is_null, between)",
                      op, col);
}

static int compile_node(rp__entity_t *e, json_t *node, int depth, rp__qb_t *q, rp_error_t *err)
{
    if (depth > MAX_DEPTH)
        return rp_error_set(err, RP_EINVAL, RP_C_FILTER, "filter on %s: nested deeper than %d",
                            e->name, MAX_DEPTH);
    if (!json_is_object(node))
        return rp_error_set(err, RP_EINVAL, RP_C_FILTER,
                            "filter on %s: expected an object of conditions", e->name);
    q->nconds++;
    int crc = over_cap(e, q, err);
    if (crc)
        return crc;
    if (json_object_size(node) == 0) {
        rp__qb_put(q, "1");
        return 0;
    }
    const char *k;
    json_t *v;
    bool first = true;
    rp__qb_put(q, "(");
    json_object_foreach(node, k, v) {
        if (!first)
            rp__qb_put(q, " AND ");
        first = false;
        int rc = 0;
        if (strcmp(k, "and") == 0 || strcmp(k, "or") == 0) {
            if (!json_is_array(v))
                return filter_err(e, err, "\"%s\" needs an array of conditions%s", k, "");
            if (json_array_size(v) == 0) {
                rp__qb_put(q, k[0] == 'a' ? "1" : "0");
                continue;
            }
            rp__qb_put(q, "(");
            size_t i;
            json_t *x;
            json_array_foreach(v, i, x) {
                if (i)
                    rp__qb_put(q, k[0] == 'a' ? " AND " : " OR ");
                if ((rc = compile_node(e, x, depth + 1, q, err)))
                    return rc;
            }
            rp__qb_put(q, ")");
        } else if (strcmp(k, "not") == 0) {
            rp__qb_put(q, "NOT ");
            if ((rc = compile_node(e, v, depth + 1, q, err)))
                return rc;
        } else {
            rp__field_t *f = rp__any_field(e, k);
            if (!f)
                return rp__no_field(e, k, err);
            if (json_is_object(v)) {
                if (json_object_size(v) == 0)
                    return filter_err(e, err, "field %s has an empty set of operators%s", k, "");
                const char *op;
                json_t *ov;
                bool firstop = true;
                rp__qb_put(q, "(");
                json_object_foreach(v, op, ov) {
                    if (!firstop)
                        rp__qb_put(q, " AND ");
                    firstop = false;
                    if ((rc = compile_op(e, f, op, ov, q, err)))
                        return rc;
                }
                rp__qb_put(q, ")");
            } else if ((rc = compile_op(e, f, "eq", v, q, err))) {
                return rc;
            }
        }
    }
    rp__qb_put(q, ")");
    return 0;
}

int rp__filter_node(rp__entity_t *e, json_t *node, rp__qb_t *q, rp_error_t *err)
{
    return compile_node(e, node, 0, q, err);
}

/* ---- what a user may read ---------------------------------------------------------------- */

/* RP_EPERM when filter @p node names a field hidden from @p a. */
static int filter_hidden(const rp_access_t *a, rp__entity_t *e, json_t *node, rp_error_t *err)
{
    if (json_is_array(node)) {
        for (size_t i = 0; i < json_array_size(node); i++) {
            int rc = filter_hidden(a, e, json_array_get(node, i), err);
            if (rc)
                return rc;
        }
        return 0;
    }
    const char *k;
    json_t *v;
    json_object_foreach(json_is_object(node) ? node : NULL, k, v) {
        int rc = 0;
        if (!strcmp(k, "and") || !strcmp(k, "or") || !strcmp(k, "not"))
            rc = filter_hidden(a, e, v, err);
        else if (rp__access_hidden(a, e->name, k))
            rc = rp_error_field(err, k, rp__access_denied(err, a, e->name, RP_PERM_READ,
                                                          "a filter names a hidden field"));
        else if (rp__access_masked(a, k))
            rc = rp_error_field(err, k, rp__access_denied(err, a, e->name, RP_PERM_READ,
                                                          "a filter names a field you see "
                                                          "masked"));
        if (rc)
            return rc;
    }
    return 0;
}

static bool has_owner(rp__entity_t *e)
{
    for (int i = 0; i < e->nfields; i++)
        if (strcmp(e->fields[i].name, "owner") == 0)
            return true;
    return false;
}

/* Limits @p q to the records @p a may read, or refuses (scope none, a hidden field named). */
int rp__scope_clause(rp_store_t *s, rp__entity_t *e, const rp_access_t *a, json_t *where,
                     rp__qb_t *q, rp_error_t *err)
{
    if (!a)
        return 0;
    rp_scope_t sc = rp__access_scope(a, e->name, RP_PERM_READ);
    if (sc == RP_SCOPE_NONE)
        return rp__access_denied(err, a, e->name, RP_PERM_READ, NULL);
    int rc = filter_hidden(a, e, where, err);
    if (rc || sc == RP_SCOPE_ALL)
        return rc;
    if (sc == RP_SCOPE_LINK)
        return rp__link_clause(s, e, a, RP_PERM_READ, q, err);
    char actor[80];
    snprintf(actor, sizeof actor, "user:%s", rp__access_user(a));
    bool team = sc == RP_SCOPE_TEAM && rp__access_team(a)[0];
    /* A record is the user's (or the team's) by its owner, or where it has none, its creator. */
    if (has_owner(e)) {
        if (team) {
            rp__qb_put(q, " AND (\"owner\" IN (");
            rp__qb_put_str(q, rp__authorizer->team_users_sql);
            rp__qb_put(q, ") OR (coalesce(\"owner\", '') = '' AND created_by IN (SELECT 'user:' || name"
                   " FROM (");
            rp__qb_put_str(q, rp__authorizer->team_users_sql);
            rp__qb_put(q, ") AS t)))");
        } else {
            rp__qb_put(q, " AND (\"owner\" = ? OR (coalesce(\"owner\", '') = '' AND created_by = ?))");
        }
        rp__qb_bind_add(q, NULL, json_string(team ? rp__access_team(a) : rp__access_user(a)));
        rp__qb_bind_add(q, NULL, json_string(team ? rp__access_team(a) : actor));
    } else {
        if (team) {
            rp__qb_put(q, " AND created_by IN (SELECT 'user:' || name FROM (");
            rp__qb_put_str(q, rp__authorizer->team_users_sql);
            rp__qb_put(q, ") AS t)");
        } else {
            rp__qb_put(q, " AND created_by = ?");
        }
        rp__qb_bind_add(q, NULL, json_string(team ? rp__access_team(a) : actor));
    }
    return 0;
}

/* ---- find and count --------------------------------------------------------------------- */

int rp__where_clause(rp__entity_t *e, json_t *where, bool with_deleted, rp__qb_t *q,
                        rp_error_t *err)
{
    rp__qb_put(q, " WHERE %s", with_deleted ? "1" : "deleted_at IS NULL");
    if (where && !json_is_null(where)) {
        rp__qb_put(q, " AND ");
        int rc = compile_node(e, where, 0, q, err);
        if (rc)
            return rc;
    }
    return 0;
}
int rp__where_scoped(rp_store_t *s, rp__entity_t *e, const rp_access_t *a, json_t *where,
                     bool with_deleted, rp__qb_t *q, rp_error_t *err)
{
    /* An entity the reader may not read at all is refused before its filter is looked at. */
    if (a && rp__access_scope(a, e->name, RP_PERM_READ) == RP_SCOPE_NONE)
        return rp__scope_clause(s, e, a, where, q, err);
    int rc = a ? filter_hidden(a, e, where, err) : 0;
    if (!rc)
        rc = rp__where_clause(e, where, with_deleted, q, err);
    if (!rc)
        rc = rp__scope_clause(s, e, a, where, q, err);
    return rc;
}
