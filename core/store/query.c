/*
 * query.c — finding records: the filter tree compiled to a WHERE clause over registry names
 * with bound values, sorting, offset and keyset pagination, and counting. Full-text search is
 * search.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "rapport/text.h"

#define MAX_DEPTH 32   /* Nesting of and/or/not. */
#define MAX_IN 1000    /* Values of one in / not_in. */
#define MAX_ORDER 8    /* Sort keys. */

/* The columns every record has, typed so filters and cursors treat them like fields. */
static rp__field_t sys_fields[] = {
    {.name = "id", .type = RP_T_INTEGER},           {.name = "created_at", .type = RP_T_DATETIME},
    {.name = "updated_at", .type = RP_T_DATETIME},  {.name = "version", .type = RP_T_INTEGER},
    {.name = "created_by", .type = RP_T_TEXT},      {.name = "updated_by", .type = RP_T_TEXT},
    {.name = "deleted_at", .type = RP_T_DATETIME},
};

static rp__field_t *any_field(rp__entity_t *e, const char *name)
{
    for (size_t i = 0; i < sizeof sys_fields / sizeof *sys_fields; i++)
        if (strcmp(sys_fields[i].name, name) == 0)
            return &sys_fields[i];
    return rp__field(e, name);
}

static int no_field(rp__entity_t *e, const char *name, rp_error_t *err)
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

typedef struct {
    const rp__field_t *f; /* Bind through the field's codec; NULL binds v's text or integer. */
    json_t *v;            /* Owned reference. */
} bindv_t;

typedef struct {
    char *sql;
    size_t len, cap;
    bindv_t *b;
    int nb, capb;
    int nconds;  /* field conditions compiled, against RP_FILTER_MAX_CONDITIONS */
    bool oom;
} qb_t;

static void put(qb_t *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(qb_t *q, const char *fmt, ...)
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

static void put_str(qb_t *q, const char *str)
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

static void bind_add(qb_t *q, const rp__field_t *f, json_t *v)
{
    if (q->oom || !v) {
        q->oom = true;
        json_decref(v);
        return;
    }
    if (q->nb == q->capb) {
        int nc = q->capb ? q->capb * 2 : 8;
        bindv_t *nb = realloc(q->b, sizeof *nb * (size_t)nc);
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

static void qb_free(qb_t *q)
{
    for (int i = 0; i < q->nb; i++)
        json_decref(q->b[i].v);
    free(q->b);
    free(q->sql);
}

static int qb_bind(qb_t *q, rp_db_stmt_t *st, int first)
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
static int value_for(rp__entity_t *e, const rp__field_t *f, json_t *v, qb_t *q, rp_error_t *err)
{
    json_t *c = NULL;
    int rc = rp__value_canon(e->name, f, v, &c, err);
    if (rc)
        return rc;
    if (f->type == RP_T_JSON) {
        /* JSON columns hold compact text; compare with the same text. */
        char *d = json_dumps(c, JSON_ENCODE_ANY | JSON_COMPACT);
        json_decref(c);
        bind_add(q, NULL, d ? json_string(d) : NULL);
        free(d);
        return 0;
    }
    bind_add(q, f, c);
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
static int over_cap(rp__entity_t *e, qb_t *q, rp_error_t *err)
{
    if (q->nconds > RP_FILTER_MAX_CONDITIONS)
        return rp_error_set(err, RP_ELIMIT, RP_C_CAP, "filter on %s: more than %d conditions "
                            "(the limit of one filter)", e->name, RP_FILTER_MAX_CONDITIONS);
    if (q->nb > RP_FILTER_MAX_VALUES)
        return rp_error_set(err, RP_ELIMIT, RP_C_CAP, "filter on %s: more than %d values in "
                            "all (the limit of one filter)", e->name, RP_FILTER_MAX_VALUES);
    return 0;
}

static int compile_op(rp__entity_t *e, const rp__field_t *f, const char *op, json_t *v, qb_t *q,
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
            put(q, "\"%s\" IS %s", col, i == 0 ? "NULL" : "NOT NULL");
            return 0;
        }
        put(q, "\"%s\" %s ?", col, cmp[i].sql);
        return value_for(e, f, v, q, err);
    }
    if (strcmp(op, "in") == 0 || strcmp(op, "not_in") == 0) {
        bool neg = op[0] == 'n';
        /* An empty list from Lua arrives as an empty object: it is the empty list. */
        if (json_is_object(v) && json_object_size(v) == 0) {
            put(q, neg ? "1" : "0");
            return 0;
        }
        if (!json_is_array(v) || json_array_size(v) > MAX_IN)
            return filter_err(e, err, "%s.%s needs an array of at most 1000 values", col, op);
        if (json_array_size(v) == 0) {
            put(q, neg ? "1" : "0");
            return 0;
        }
        put(q, neg ? "(\"%s\" IS NULL OR \"%s\" NOT IN (" : "(\"%s\" IN (", col, col);
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            put(q, i ? ",?" : "?");
            if ((rc = value_for(e, f, x, q, err)))
                return rc;
        }
        put(q, "))");
        return over_cap(e, q, err);
    }
    if (strcmp(op, "contains") == 0 || strcmp(op, "starts_with") == 0) {
        if (!is_textual(f))
            return filter_err(e, err, "%s.%s works on text fields only", col, op);
        if (!json_is_string(v))
            return filter_err(e, err, "%s.%s needs a text value", col, op);
        put(q, "\"%s\" LIKE ? ESCAPE '\\'", col);
        bind_add(q, NULL, like_pattern(json_string_value(v), op[0] == 'c'));
        return 0;
    }
    if (strcmp(op, "is_null") == 0) {
        if (!json_is_boolean(v))
            return filter_err(e, err, "%s.%s needs true or false", col, op);
        put(q, "\"%s\" IS %s", col, json_is_true(v) ? "NULL" : "NOT NULL");
        return 0;
    }
    if (strcmp(op, "between") == 0) {
        if (!json_is_array(v) || json_array_size(v) != 2)
            return filter_err(e, err, "%s.%s needs an array of two values [low, high]", col, op);
        put(q, "\"%s\" BETWEEN ? AND ?", col);
        rc = value_for(e, f, json_array_get(v, 0), q, err);
        return rc ? rc : value_for(e, f, json_array_get(v, 1), q, err);
    }
    return filter_err(e, err,
                      "unknown operator \"%s\" on field %s (operators: eq, ne, lt, le, gt, ge, "
                      "in, not_in, contains, starts_with, is_null, between)",
                      op, col);
}

static int compile_node(rp__entity_t *e, json_t *node, int depth, qb_t *q, rp_error_t *err)
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
        put(q, "1");
        return 0;
    }
    const char *k;
    json_t *v;
    bool first = true;
    put(q, "(");
    json_object_foreach(node, k, v) {
        if (!first)
            put(q, " AND ");
        first = false;
        int rc = 0;
        if (strcmp(k, "and") == 0 || strcmp(k, "or") == 0) {
            if (!json_is_array(v))
                return filter_err(e, err, "\"%s\" needs an array of conditions%s", k, "");
            if (json_array_size(v) == 0) {
                put(q, k[0] == 'a' ? "1" : "0");
                continue;
            }
            put(q, "(");
            size_t i;
            json_t *x;
            json_array_foreach(v, i, x) {
                if (i)
                    put(q, k[0] == 'a' ? " AND " : " OR ");
                if ((rc = compile_node(e, x, depth + 1, q, err)))
                    return rc;
            }
            put(q, ")");
        } else if (strcmp(k, "not") == 0) {
            put(q, "NOT ");
            if ((rc = compile_node(e, v, depth + 1, q, err)))
                return rc;
        } else {
            rp__field_t *f = any_field(e, k);
            if (!f)
                return no_field(e, k, err);
            if (json_is_object(v)) {
                if (json_object_size(v) == 0)
                    return filter_err(e, err, "field %s has an empty set of operators%s", k, "");
                const char *op;
                json_t *ov;
                bool firstop = true;
                put(q, "(");
                json_object_foreach(v, op, ov) {
                    if (!firstop)
                        put(q, " AND ");
                    firstop = false;
                    if ((rc = compile_op(e, f, op, ov, q, err)))
                        return rc;
                }
                put(q, ")");
            } else if ((rc = compile_op(e, f, "eq", v, q, err))) {
                return rc;
            }
        }
    }
    put(q, ")");
    return 0;
}

/* ---- sorting and cursors ---------------------------------------------------------------- */

typedef struct {
    const rp__field_t *f;
    bool desc;
} okey_t;

static int parse_order(rp__entity_t *e, const char *order, okey_t *keys, int *nkeys,
                       rp_error_t *err)
{
    *nkeys = 0;
    bool has_id = false;
    if (order && *order) {
        const char *p = order;
        while (*p) {
            const char *end = strchr(p, ',');
            size_t n = end ? (size_t)(end - p) : strlen(p);
            char name[64];
            bool desc = false;
            while (n && *p == ' ')
                p++, n--;
            while (n && p[n - 1] == ' ')
                n--;
            if (n && (*p == '-' || *p == '+')) {
                desc = *p == '-';
                p++, n--;
            }
            if (n == 0 || n >= sizeof name)
                return rp_error_set(err, RP_EINVAL, RP_C_ORDER,
                                    "order on %s: \"%s\" is not a list of fields like "
                                    "\"name,-amount\"",
                                    e->name, order);
            memcpy(name, p, n);
            name[n] = '\0';
            rp__field_t *f = any_field(e, name);
            if (!f)
                return no_field(e, name, err);
            if (f->type == RP_T_JSON)
                return rp_error_set(err, RP_EINVAL, RP_C_ORDER,
                                    "order on %s: json field %s cannot be sorted on", e->name,
                                    name);
            if (*nkeys == MAX_ORDER - 1)
                return rp_error_set(err, RP_EINVAL, RP_C_ORDER,
                                    "order on %s: at most %d sort fields", e->name, MAX_ORDER - 1);
            keys[(*nkeys)++] = (okey_t){f, desc};
            has_id = has_id || strcmp(name, "id") == 0;
            if (!end)
                break;
            p = end + 1;
        }
    }
    /* The id breaks ties, so every order is total and cursors never skip or repeat. */
    if (!has_id)
        keys[(*nkeys)++] = (okey_t){&sys_fields[0], false};
    return 0;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *b64_encode(const char *in, size_t n)
{
    char *out = malloc(n / 3 * 4 + 5), *o = out;
    if (!out)
        return NULL;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 |
                     (unsigned char)in[i + 2];
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = b64[(v >> 6) & 63];
        *o++ = b64[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned char)in[i] << 16 | (i + 1 < n ? (unsigned char)in[i + 1] << 8 : 0);
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        if (i + 1 < n)
            *o++ = b64[(v >> 6) & 63];
    }
    *o = '\0';
    return out;
}

static char *b64_decode(const char *in, size_t *outlen)
{
    size_t n = strlen(in);
    char *out = malloc(n * 3 / 4 + 3);
    if (!out)
        return NULL;
    unsigned v = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = strchr(b64, in[i]);
        if (!p || !in[i]) {
            free(out);
            return NULL;
        }
        v = (v << 6) | (unsigned)(p - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((v >> bits) & 0xFF);
        }
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

static char *make_cursor(const char *order, okey_t *keys, int nkeys, json_t *rec)
{
    json_t *k = json_array();
    for (int i = 0; i < nkeys; i++) {
        json_t *v = json_object_get(rec, keys[i].f->name);
        json_array_append(k, v ? v : json_null());
    }
    json_t *c = json_pack("{s:s,s:o}", "o", order ? order : "", "k", k);
    char *text = c ? json_dumps(c, JSON_COMPACT) : NULL;
    json_decref(c);
    char *cur = text ? b64_encode(text, strlen(text)) : NULL;
    free(text);
    return cur;
}

/* Adds the keyset condition "after the cursor's row" for @p keys. */
static int cursor_where(rp__entity_t *e, const char *cursor, const char *order, okey_t *keys,
                        int nkeys, qb_t *q, rp_error_t *err)
{
    size_t n;
    char *text = b64_decode(cursor, &n);
    json_t *c = text ? json_loadb(text, n, 0, NULL) : NULL;
    free(text);
    json_t *k = json_object_get(c, "k");
    const char *o = json_string_value(json_object_get(c, "o"));
    int rc = 0;
    if (!c || !json_is_array(k) || json_array_size(k) != (size_t)nkeys || !o) {
        rc = rp_error_set(err, RP_EINVAL, RP_C_CURSOR,
                          "cursor on %s is malformed or belongs to another query", e->name);
        goto out;
    }
    if (strcmp(o, order ? order : "") != 0) {
        rc = rp_error_set(err, RP_EINVAL, RP_C_CURSOR,
                          "cursor on %s was made for the order \"%s\", not \"%s\"", e->name, o,
                          order ? order : "");
        goto out;
    }
    /* (k1 > v1) OR (k1 = v1 AND k2 > v2) OR …, with NULL sorting first ascending. */
    put(q, " AND (");
    for (int i = 0; i < nkeys; i++) {
        put(q, i ? " OR (" : "(");
        for (int j = 0; j < i; j++) {
            put(q, "\"%s\" IS ? AND ", keys[j].f->name);
            json_t *cv = NULL;
            if ((rc = rp__value_canon(e->name, keys[j].f, json_array_get(k, (size_t)j), &cv,
                                      err)))
                goto bad;
            bind_add(q, keys[j].f, cv);
        }
        json_t *v = json_array_get(k, (size_t)i);
        const char *col = keys[i].f->name;
        if (json_is_null(v)) {
            put(q, keys[i].desc ? "0" : "\"%s\" IS NOT NULL", col);
        } else {
            if (keys[i].desc)
                put(q, "(\"%s\" < ? OR \"%s\" IS NULL)", col, col);
            else
                put(q, "\"%s\" > ?", col);
            json_t *cv = NULL;
            if ((rc = rp__value_canon(e->name, keys[i].f, v, &cv, err)))
                goto bad;
            bind_add(q, keys[i].f, cv);
        }
        put(q, ")");
    }
    put(q, ")");
    goto out;
bad:
    rc = rp_error_set(err, RP_EINVAL, RP_C_CURSOR, "cursor on %s holds values that do not fit "
                      "its fields", e->name);
out:
    json_decref(c);
    return rc;
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
static int scope_clause(rp__entity_t *e, const rp_access_t *a, json_t *where, qb_t *q,
                        rp_error_t *err)
{
    if (!a)
        return 0;
    rp_scope_t sc = rp__access_scope(a, e->name, RP_PERM_READ);
    if (sc == RP_SCOPE_NONE)
        return rp__access_denied(err, a, e->name, RP_PERM_READ, NULL);
    int rc = filter_hidden(a, e, where, err);
    if (rc || sc == RP_SCOPE_ALL)
        return rc;
    char actor[80];
    snprintf(actor, sizeof actor, "user:%s", rp__access_user(a));
    bool team = sc == RP_SCOPE_TEAM && rp__access_team(a)[0];
    /* A record is the user's (or the team's) by its owner, or where it has none, its creator. */
    if (has_owner(e)) {
        if (team) {
            put(q, " AND (\"owner\" IN (");
            put_str(q, rp__authorizer->team_users_sql);
            put(q, ") OR (coalesce(\"owner\", '') = '' AND created_by IN (SELECT 'user:' || name"
                   " FROM (");
            put_str(q, rp__authorizer->team_users_sql);
            put(q, ") AS t)))");
        } else {
            put(q, " AND (\"owner\" = ? OR (coalesce(\"owner\", '') = '' AND created_by = ?))");
        }
        bind_add(q, NULL, json_string(team ? rp__access_team(a) : rp__access_user(a)));
        bind_add(q, NULL, json_string(team ? rp__access_team(a) : actor));
    } else {
        if (team) {
            put(q, " AND created_by IN (SELECT 'user:' || name FROM (");
            put_str(q, rp__authorizer->team_users_sql);
            put(q, ") AS t)");
        } else {
            put(q, " AND created_by = ?");
        }
        bind_add(q, NULL, json_string(team ? rp__access_team(a) : actor));
    }
    return 0;
}

/* ---- find and count --------------------------------------------------------------------- */

static int where_clause(rp__entity_t *e, json_t *where, bool with_deleted, qb_t *q,
                        rp_error_t *err)
{
    put(q, " WHERE %s", with_deleted ? "1" : "deleted_at IS NULL");
    if (where && !json_is_null(where)) {
        put(q, " AND ");
        int rc = compile_node(e, where, 0, q, err);
        if (rc)
            return rc;
    }
    return 0;
}

int rp_store_find(rp_store_t *s, const rp_query_t *qq, json_t **out, char **next, rp_error_t *err)
{
    *out = NULL;
    if (next)
        *next = NULL;
    rp__entity_t *e = rp__entity_req(s, qq->entity, err);
    if (!e)
        return err ? err->code : RP_EIO;
    const rp_access_t *a = qq->access;
    if (qq->fields)
        for (int i = 0; qq->fields[i]; i++) {
            if (!any_field(e, qq->fields[i]))
                return no_field(e, qq->fields[i], err);
            if (rp__access_hidden(a, e->name, qq->fields[i]))
                return rp_error_field(err, qq->fields[i],
                                      rp__access_denied(err, a, e->name, RP_PERM_READ,
                                                        "the field list names a hidden field"));
        }
    okey_t keys[MAX_ORDER];
    int nkeys;
    int rc = parse_order(e, qq->order, keys, &nkeys, err);
    if (rc)
        return rc;
    for (int i = 0; a && i < nkeys; i++)
        if (rp__access_hidden(a, e->name, keys[i].f->name))
            return rp_error_field(err, keys[i].f->name,
                                  rp__access_denied(err, a, e->name, RP_PERM_READ,
                                                    "the order names a hidden field"));
    int64_t limit = qq->limit <= 0 ? 100 : qq->limit > 10000 ? 10000 : qq->limit;
    qb_t q = {0};
    put_str(&q, e->sql_select);
    if ((rc = where_clause(e, qq->where, qq->with_deleted, &q, err)) ||
        (rc = scope_clause(e, a, qq->where, &q, err)))
        goto out;
    if (qq->after && (rc = cursor_where(e, qq->after, qq->order, keys, nkeys, &q, err)))
        goto out;
    put(&q, " ORDER BY ");
    for (int i = 0; i < nkeys; i++)
        put(&q, "%s\"%s\"%s", i ? ", " : "", keys[i].f->name, keys[i].desc ? " DESC" : "");
    /* Bound, so every page of a query shares one cached statement. */
    put(&q, " LIMIT ? OFFSET ?");
    if (q.oom) {
        rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        goto out;
    }
    rp_db_stmt_t *st = rp__stmt(s, q.sql, err);
    if (!st) {
        rc = err ? err->code : RP_EIO;
        goto out;
    }
    if (qb_bind(&q, st, 1) != RP_DB_OK ||
        rp_db_bind_int(st, q.nb + 1, limit + 1) != RP_DB_OK ||
        rp_db_bind_int(st, q.nb + 2, qq->offset > 0 && !qq->after ? qq->offset : 0) !=
            RP_DB_OK) {
        rc = rp__dberr(s, RP_DB_ERROR, "cannot bind the query", err);
        rp_db_reset(st);
        goto out;
    }
    json_t *arr = json_array();
    int64_t count = 0;
    bool more = false;
    int src;
    rp_db_stmt_t *was_reading = rp__reading(s, st);
    while ((src = rp_db_step(st)) == RP_DB_ROW) {
        if (count == limit) {
            more = true; /* one row more than asked for: there is a next page */
            break;
        }
        json_t *rec = rp__record_from_row(e, st, qq->fields);
        rp__access_redact(a, e->name, rec);
        json_array_append_new(arr, rec);
        count++;
        /* Big records cost their conversion here, between the database's steps. */
        if (count % 32 == 0 && rp__over_budget(s, NULL)) {
            rp_db_stopped(s->db);
            src = RP_DB_INTERRUPT;
            break;
        }
    }
    rp__reading(s, was_reading);
    rp_db_reset(st);
    if (more && next) {
        /* After the reset: reading the last row whole may prepare another statement. */
        json_t *last = json_array_get(arr, (size_t)count - 1);
        json_t *full = qq->fields || a ? NULL : json_incref(last);
        if (!full)
            rp__record_load(s, e, json_integer_value(json_object_get(last, "id")), NULL, &full,
                            NULL);
        *next = full ? make_cursor(qq->order, keys, nkeys, full) : NULL;
        json_decref(full);
    }
    if (src == RP_DB_ROW)
        src = RP_DB_DONE;
    if (src != RP_DB_ROW && src != RP_DB_DONE) {
        json_decref(arr);
        if (next) {
            free(*next);
            *next = NULL;
        }
        rc = rp__dberr(s, src, "query failed", err);
        goto out;
    }
    *out = arr;
out:
    qb_free(&q);
    return rc;
}

int rp_store_count(rp_store_t *s, const char *entity, json_t *where, bool with_deleted,
                   int64_t *count, rp_error_t *err)
{
    return rp_store_count_as(s, NULL, entity, where, with_deleted, count, err);
}

int rp_store_count_as(rp_store_t *s, const rp_access_t *a, const char *entity, json_t *where,
                      bool with_deleted, int64_t *count, rp_error_t *err)
{
    rp__entity_t *e = rp__entity_req(s, entity, err);
    if (!e)
        return err ? err->code : RP_EIO;
    qb_t q = {0};
    put(&q, "SELECT count(*) FROM \"%s\"", e->name);
    int rc = where_clause(e, where, with_deleted, &q, err);
    if (!rc)
        rc = scope_clause(e, a, where, &q, err);
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
    qb_bind(&q, st, 1);
    rp_db_stmt_t *was_reading = rp__reading(s, st);
    int src = rp_db_step(st);
    rp__reading(s, was_reading);
    if (src == RP_DB_ROW)
        *count = rp_db_col_int(st, 0);
    else
        rc = rp__dberr(s, src, "count failed", err);
    rp_db_reset(st);
out:
    qb_free(&q);
    return rc;
}
