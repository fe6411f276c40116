/*
 * aggregate.c — grouped aggregates (rp_store_aggregate): groups by fields and calendar buckets,
 * count, sum, avg, min, max and count of distinct values, in one GROUP BY statement over the
 * same filters and read scope as a find. The SQL is the standard kind both dialects run:
 * groups and order by position, buckets through rapport_bucket() (rapport/db.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "rapport/decimal.h"
#include "rapport/settings.h"
#include "rapport/time.h"

enum { M_COUNT, M_COUNT_F, M_DISTINCT, M_SUM, M_AVG, M_MIN, M_MAX };

static const char *const m_names[] = {"count", "count", "count_distinct", "sum", "avg", "min",
                                      "max"};

typedef struct {
    const rp__field_t *f; /* NULL for count */
    int kind;
    int unit;             /* a group's bucket, or -1 */
    int col;              /* its first column in the row */
    char key[96];         /* its name in the result row */
} part_t;

typedef struct {
    rp__entity_t *e;
    part_t g[RP_AGG_MAX_GROUPS];
    int ng;
    part_t m[RP_AGG_MAX_MEASURES];
    int nm;
    int ncols;
} plan_t;

static int agg_err(rp_error_t *err, rp__entity_t *e, const char *field, const char *fmt,
                   const char *a, const char *b)
{
    char m[300];
    snprintf(m, sizeof m, fmt, a, b);
    rp_error_set(err, RP_EINVAL, RP_C_AGGREGATE, "aggregate of %s: %s", e->name, m);
    return field ? rp_error_field(err, field, RP_EINVAL) : RP_EINVAL;
}

static bool is_numeric(const rp__field_t *f)
{
    return f->type == RP_T_INTEGER || f->type == RP_T_REAL || f->type == RP_T_DECIMAL;
}

/* Finds field @p name for a group or measure, refusing what @p a may not see. */
static int find_field(rp__entity_t *e, const rp_access_t *a, const char *name,
                      const rp__field_t **out, rp_error_t *err)
{
    const rp__field_t *f = rp__any_field(e, name);
    if (!f)
        return rp__no_field(e, name, err);
    if (rp__access_hidden(a, e->name, f->name) || rp__access_masked(a, f->name))
        return rp_error_field(err, f->name,
                              rp__access_denied(err, a, e->name, RP_PERM_READ,
                                                "an aggregate names a hidden field"));
    *out = f;
    return 0;
}

static int plan_group(plan_t *p, const rp_access_t *a, const char *spec, rp_error_t *err)
{
    part_t *g = &p->g[p->ng];
    char name[80];
    const char *colon = strchr(spec, ':');
    size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
    if (n == 0 || n >= sizeof name)
        return agg_err(err, p->e, NULL, "\"%s\" is not a group (a field, or field:unit)%s",
                       spec, "");
    memcpy(name, spec, n);
    name[n] = '\0';
    int rc = find_field(p->e, a, name, &g->f, err);
    if (rc)
        return rc;
    g->unit = -1;
    if (colon) {
        g->unit = rp_time_bucket_unit(colon + 1);
        if (g->unit < 0)
            return agg_err(err, p->e, name,
                           "unknown bucket \"%s\" of %s (buckets: day, week, month, quarter, "
                           "year)", colon + 1, name);
        if (g->f->type != RP_T_DATE && g->f->type != RP_T_DATETIME)
            return agg_err(err, p->e, name,
                           "%s is not a date or date-time, so it has no \"%s\" buckets", name,
                           colon + 1);
        snprintf(g->key, sizeof g->key, "%s_%s", name, colon + 1);
    } else {
        if (g->f->type == RP_T_JSON)
            return agg_err(err, p->e, name, "%s holds JSON, which cannot be grouped by%s", name,
                           "");
        snprintf(g->key, sizeof g->key, "%s", name);
    }
    p->ng++;
    return 0;
}

static int plan_measure(plan_t *p, const rp_access_t *a, const char *spec, rp_error_t *err)
{
    part_t *m = &p->m[p->nm];
    const char *colon = strchr(spec, ':');
    size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
    m->kind = -1;
    static const struct {
        const char *name;
        int kind;
    } fns[] = {{"count", M_COUNT_F}, {"count_distinct", M_DISTINCT}, {"sum", M_SUM},
               {"avg", M_AVG},       {"min", M_MIN},                {"max", M_MAX}};
    for (size_t i = 0; i < sizeof fns / sizeof *fns; i++)
        if (strlen(fns[i].name) == n && strncmp(spec, fns[i].name, n) == 0)
            m->kind = fns[i].kind;
    if (m->kind < 0)
        return agg_err(err, p->e, NULL,
                       "unknown measure \"%s\" (measures: count, count:F, count_distinct:F, "
                       "sum:F, avg:F, min:F, max:F)%s", spec, "");
    if (!colon) {
        if (m->kind != M_COUNT_F)
            return agg_err(err, p->e, NULL, "measure \"%s\" needs a field (%s:FIELD)", spec,
                           spec);
        m->kind = M_COUNT;
        m->f = NULL;
        snprintf(m->key, sizeof m->key, "count");
    } else {
        int rc = find_field(p->e, a, colon + 1, &m->f, err);
        if (rc)
            return rc;
        if ((m->kind == M_SUM || m->kind == M_AVG) && !is_numeric(m->f))
            return agg_err(err, p->e, m->f->name,
                           "%s is not a number, so it has no %s (sum and avg take integer, "
                           "real and decimal fields)", m->f->name, m_names[m->kind]);
        if (m->f->type == RP_T_JSON && m->kind != M_COUNT_F)
            return agg_err(err, p->e, m->f->name, "%s holds JSON, which has no %s", m->f->name,
                           m_names[m->kind]);
        snprintf(m->key, sizeof m->key, "%s_%s", m_names[m->kind], m->f->name);
    }
    for (int i = 0; i < p->nm; i++)
        if (strcmp(p->m[i].key, m->key) == 0)
            return agg_err(err, p->e, NULL, "measure %s is asked for twice%s", m->key, "");
    p->nm++;
    return 0;
}

static int plan(plan_t *p, const rp_aggregate_t *q, rp_error_t *err)
{
    const rp_access_t *a = q->access;
    for (int i = 0; q->group_by && q->group_by[i]; i++) {
        if (p->ng == RP_AGG_MAX_GROUPS)
            return rp_error_set(err, RP_ELIMIT, RP_C_CAP,
                                "aggregate of %s: more than %d groups (the limit of one "
                                "aggregate)", p->e->name, RP_AGG_MAX_GROUPS);
        int rc = plan_group(p, a, q->group_by[i], err);
        if (rc)
            return rc;
    }
    static const char *const count_only[] = {"count", NULL};
    const char *const *ms = q->measures && q->measures[0] ? q->measures : count_only;
    for (int i = 0; ms[i]; i++) {
        if (p->nm == RP_AGG_MAX_MEASURES)
            return rp_error_set(err, RP_ELIMIT, RP_C_CAP,
                                "aggregate of %s: more than %d measures (the limit of one "
                                "aggregate)", p->e->name, RP_AGG_MAX_MEASURES);
        int rc = plan_measure(p, a, ms[i], err);
        if (rc)
            return rc;
    }
    for (int i = 0; i < p->ng; i++)
        for (int j = 0; j < p->nm; j++)
            if (strcmp(p->g[i].key, p->m[j].key) == 0)
                return agg_err(err, p->e, NULL, "the group and the measure are both named %s%s",
                               p->g[i].key, "");
    return 0;
}

/* The position (1-based) of the output key @p key among the row's columns, for ORDER BY. */
static int key_col(const plan_t *p, const char *key, size_t n)
{
    for (int i = 0; i < p->ng; i++)
        if (strlen(p->g[i].key) == n && strncmp(p->g[i].key, key, n) == 0)
            return p->g[i].col + 1;
    for (int i = 0; i < p->nm; i++)
        if (strlen(p->m[i].key) == n && strncmp(p->m[i].key, key, n) == 0)
            return p->m[i].col + 1;
    return 0;
}

static int order_by(const plan_t *p, const char *order, rp__qb_t *q, rp_error_t *err)
{
    if (!order || !*order) {
        for (int i = 0; i < p->ng; i++)
            rp__qb_put(q, "%s%d", i ? ", " : " ORDER BY ", p->g[i].col + 1);
        return 0;
    }
    bool first = true;
    for (const char *s = order; *s;) {
        const char *end = strchr(s, ',');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        bool desc = n && *s == '-';
        int col = key_col(p, s + desc, n - desc);
        if (!col) {
            char k[100];
            snprintf(k, sizeof k, "%.*s", (int)(n - desc), s + desc);
            return rp_error_set(err, RP_EINVAL, RP_C_ORDER,
                                "order of the aggregate of %s: \"%s\" is none of the row's "
                                "groups and measures", p->e->name, k);
        }
        rp__qb_put(q, "%s%d%s", first ? " ORDER BY " : ", ", col, desc ? " DESC" : "");
        first = false;
        if (!end)
            break;
        s = end + 1;
    }
    /* The groups break ties, so paging with offset is stable. */
    for (int i = 0; i < p->ng; i++)
        rp__qb_put(q, ", %d", p->g[i].col + 1);
    return 0;
}

static void select_list(plan_t *p, const char *zone, rp__qb_t *q)
{
    int col = 0;
    rp__qb_put(q, "SELECT ");
    for (int i = 0; i < p->ng; i++) {
        part_t *g = &p->g[i];
        g->col = col++;
        if (g->unit >= 0) {
            rp__qb_put(q, "%srapport_bucket(\"%s\", ?, ?)", i ? ", " : "", g->f->name);
            rp__qb_bind_add(q, NULL, json_integer(g->unit));
            rp__qb_bind_add(q, NULL, json_string(zone));
        } else {
            rp__qb_put(q, "%s\"%s\"", i ? ", " : "", g->f->name);
        }
    }
    for (int i = 0; i < p->nm; i++) {
        part_t *m = &p->m[i];
        const char *sep = col ? ", " : "";
        m->col = col++;
        const char *fn = m->f ? m->f->name : "";
        switch (m->kind) {
        case M_COUNT:
            rp__qb_put(q, "%scount(*)", sep);
            break;
        case M_COUNT_F:
            rp__qb_put(q, "%scount(\"%s\")", sep, fn);
            break;
        case M_DISTINCT:
            rp__qb_put(q, "%scount(DISTINCT \"%s\")", sep, fn);
            break;
        case M_AVG:
            /* Exact for decimals: the sum and the count, divided here. */
            if (m->f->type == RP_T_DECIMAL) {
                rp__qb_put(q, "%ssum(\"%s\"), count(\"%s\")", sep, fn, fn);
                col++;
            } else {
                rp__qb_put(q, "%savg(\"%s\")", sep, fn);
            }
            break;
        default:
            rp__qb_put(q, "%s%s(\"%s\")", sep, m_names[m->kind], fn);
        }
    }
    p->ncols = col;
}

/* The average of @p n values summing to @p sum (at the field's scale), rounded half away from
 * zero to that scale. */
static int64_t dec_avg(int64_t sum, int64_t n)
{
    int64_t qt = sum / n, r = sum % n;
    if (2 * (r < 0 ? -r : r) >= n)
        qt += sum < 0 ? -1 : 1;
    return qt;
}

static json_t *measure_value(const part_t *m, rp_db_stmt_t *st)
{
    int c = m->col;
    if (m->kind == M_COUNT || m->kind == M_COUNT_F || m->kind == M_DISTINCT)
        return json_integer(rp_db_col_int(st, c));
    if (rp_db_col_type(st, c) == RP_DB_NULL)
        return json_null();
    if (m->f->type == RP_T_DECIMAL && (m->kind == M_SUM || m->kind == M_AVG)) {
        int64_t v = rp_db_col_int(st, c);
        if (m->kind == M_AVG)
            v = dec_avg(v, rp_db_col_int(st, c + 1));
        char buf[RP_DEC_LEN];
        rp_dec_format(v, m->f->scale, buf, sizeof buf);
        return json_string(buf);
    }
    if (m->kind == M_AVG)
        return json_real(rp_db_col_float(st, c));
    if (m->kind == M_SUM)
        return m->f->type == RP_T_REAL ? json_real(rp_db_col_float(st, c))
                                       : json_integer(rp_db_col_int(st, c));
    return rp__value_column(st, c, m->f); /* min, max: the field's own value */
}

static json_t *row_of(const plan_t *p, rp_db_stmt_t *st)
{
    json_t *row = json_object();
    for (int i = 0; row && i < p->ng; i++) {
        const part_t *g = &p->g[i];
        json_t *v = g->unit >= 0 ? (rp_db_col_type(st, g->col) == RP_DB_NULL
                                        ? json_null()
                                        : json_string(rp_db_col_text(st, g->col)))
                                 : rp__value_column(st, g->col, g->f);
        json_object_set_new_nocheck(row, g->key, v);
    }
    for (int i = 0; row && i < p->nm; i++)
        json_object_set_new_nocheck(row, p->m[i].key, measure_value(&p->m[i], st));
    return row;
}

/* A column as a cell, read the way field @p f (NULL: a bucket label) stores it. */
static rp_agg_cell_t col_cell(rp_db_stmt_t *st, int col, const rp__field_t *f)
{
    rp_agg_cell_t c = {0};
    if (rp_db_col_type(st, col) == RP_DB_NULL)
        return c;
    switch (f ? f->type : RP_T_TEXT) {
    case RP_T_INTEGER:
    case RP_T_REF:
    case RP_T_BOOLEAN:
        c.type = RP_AGG_INT;
        c.i = rp_db_col_int(st, col);
        break;
    case RP_T_REAL:
        c.type = RP_AGG_REAL;
        c.d = rp_db_col_float(st, col);
        break;
    case RP_T_DECIMAL:
        c.type = RP_AGG_DECIMAL;
        c.i = rp_db_col_int(st, col);
        c.scale = f->scale;
        break;
    default:
        c.type = RP_AGG_TEXT;
        c.s = (const char *)rp_db_col_text(st, col);
    }
    return c;
}

static rp_agg_cell_t measure_cell(const part_t *m, rp_db_stmt_t *st)
{
    int c = m->col;
    rp_agg_cell_t v = {0};
    if (m->kind == M_COUNT || m->kind == M_COUNT_F || m->kind == M_DISTINCT)
        return (rp_agg_cell_t){.type = RP_AGG_INT, .i = rp_db_col_int(st, c)};
    if (rp_db_col_type(st, c) == RP_DB_NULL)
        return v;
    if (m->f->type == RP_T_DECIMAL && (m->kind == M_SUM || m->kind == M_AVG)) {
        int64_t x = rp_db_col_int(st, c);
        if (m->kind == M_AVG)
            x = dec_avg(x, rp_db_col_int(st, c + 1));
        return (rp_agg_cell_t){.type = RP_AGG_DECIMAL, .i = x, .scale = m->f->scale};
    }
    if (m->kind == M_AVG || (m->kind == M_SUM && m->f->type == RP_T_REAL))
        return (rp_agg_cell_t){.type = RP_AGG_REAL, .d = rp_db_col_float(st, c)};
    if (m->kind == M_SUM)
        return (rp_agg_cell_t){.type = RP_AGG_INT, .i = rp_db_col_int(st, c)};
    return col_cell(st, c, m->f);
}

/* The zone buckets are cut in: the caller's, else the `timezone` setting, else UTC. Checked
 * here, so a bad name is the caller's error and not a failure inside the statement. */
static int zone_of(rp_store_t *s, const rp_aggregate_t *q, char *out, size_t cap,
                   rp_error_t *err)
{
    json_t *set = NULL;
    const char *name = q->zone;
    if (!name && rp_setting_get(s, "timezone", &set, NULL) == 0 && json_is_string(set))
        name = json_string_value(set);
    rp_zone_t *z = NULL;
    int rc = rp_zone_open(name, &z, err);
    if (rc == 0)
        snprintf(out, cap, "%s", strcmp(rp_zone_name(z), "UTC") ? rp_zone_name(z) : "");
    else if (q->zone)
        rp_error_field(err, "zone", rc);
    rp_zone_close(z);
    json_decref(set);
    return rc;
}

static int run(rp_store_t *s, const rp_aggregate_t *q, rp_aggregate_fn fn,
               rp_aggregate_cells_fn cfn, void *ud, rp_error_t *err)
{
    plan_t p = {0};
    p.e = rp__entity_req(s, q->entity, err);
    if (!p.e)
        return err ? err->code : RP_EIO;
    int rc = plan(&p, q, err);
    if (rc)
        return rc;
    char zone[RP_ZONE_NAME_MAX] = "";
    bool buckets = false;
    for (int i = 0; i < p.ng; i++)
        buckets |= p.g[i].unit >= 0 && p.g[i].f->type == RP_T_DATETIME;
    if (buckets && (rc = zone_of(s, q, zone, sizeof zone, err)))
        return rc;
    rp__qb_t b = {0};
    select_list(&p, zone, &b);
    rp__qb_put(&b, " FROM \"%s\"", p.e->name);
    if ((rc = rp__where_scoped(s, p.e, q->access, q->where, q->with_deleted, &b, err)))
        goto out;
    for (int i = 0; i < p.ng; i++)
        rp__qb_put(&b, "%s%d", i ? ", " : " GROUP BY ", p.g[i].col + 1);
    if ((rc = order_by(&p, q->order, &b, err)))
        goto out;
    rp__qb_put(&b, " LIMIT ? OFFSET ?");
    if (b.oom) {
        rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        goto out;
    }
    rp_db_stmt_t *st = rp__stmt(s, b.sql, err);
    if (!st) {
        rc = err ? err->code : RP_EIO;
        goto out;
    }
    if (rp__qb_bind(&b, st, 1) != RP_DB_OK ||
        rp_db_bind_int(st, b.nb + 1, q->limit > 0 ? q->limit : INT64_MAX) != RP_DB_OK ||
        rp_db_bind_int(st, b.nb + 2, q->offset > 0 ? q->offset : 0) != RP_DB_OK) {
        rc = rp__dberr(s, RP_DB_ERROR, "cannot bind the aggregate", err);
        rp_db_reset(st);
        goto out;
    }
    rp_db_stmt_t *was_reading = rp__reading(s, st);
    int src;
    int64_t n = 0;
    const char *names[RP_AGG_MAX_GROUPS + RP_AGG_MAX_MEASURES];
    rp_agg_cell_t cells[RP_AGG_MAX_GROUPS + RP_AGG_MAX_MEASURES];
    for (int i = 0; i < p.ng; i++)
        names[i] = p.g[i].key;
    for (int i = 0; i < p.nm; i++)
        names[p.ng + i] = p.m[i].key;
    while ((src = rp_db_step(st)) == RP_DB_ROW) {
        if (cfn) {
            for (int i = 0; i < p.ng; i++)
                cells[i] = col_cell(st, p.g[i].col, p.g[i].unit >= 0 ? NULL : p.g[i].f);
            for (int i = 0; i < p.nm; i++)
                cells[p.ng + i] = measure_cell(&p.m[i], st);
            rc = cfn(ud, p.ng + p.nm, names, cells);
        } else {
            json_t *row = row_of(&p, st);
            if (!row) {
                rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
                break;
            }
            rc = fn(row, ud);
            json_decref(row);
        }
        if (rc)
            break;
        if (++n % 64 == 0 && rp__over_budget(s, NULL)) {
            rp_db_stopped(s->db);
            src = RP_DB_INTERRUPT;
            break;
        }
    }
    rp__reading(s, was_reading);
    rp_db_reset(st);
    if (!rc && src != RP_DB_DONE) {
        /* Both dialects refuse a sum past 64 bits rather than wrap it: the caller's error. */
        const char *m = rp_db_errmsg(s->db);
        if (src == RP_DB_ERROR && m && strstr(m, "overflow"))
            rc = rp_error_set(err, RP_EINVAL, RP_C_AGGREGATE,
                              "aggregate of %s: a sum is past the range of 64-bit integers "
                              "(narrow the filter or group finer)", p.e->name);
        else
            rc = rp__dberr(s, src, "aggregate failed", err);
    }
out:
    rp__qb_free(&b);
    return rc;
}

int rp_store_aggregate_each(rp_store_t *s, const rp_aggregate_t *q, rp_aggregate_fn fn, void *ud,
                            rp_error_t *err)
{
    return run(s, q, fn, NULL, ud, err);
}

int rp_store_aggregate_cells(rp_store_t *s, const rp_aggregate_t *q, rp_aggregate_cells_fn fn,
                             void *ud, rp_error_t *err)
{
    return run(s, q, NULL, fn, ud, err);
}

static int collect(json_t *row, void *ud)
{
    return json_array_append(ud, row) ? RP_ENOMEM : 0;
}

int rp_store_aggregate(rp_store_t *s, const rp_aggregate_t *q, json_t **out, rp_error_t *err)
{
    json_t *arr = json_array();
    *out = NULL;
    if (!arr)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    int rc = rp_store_aggregate_each(s, q, collect, arr, err);
    if (rc) {
        if (rc == RP_ENOMEM && err && !err->msg[0])
            rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}
