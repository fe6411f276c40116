/*
 * query.c — finding records: sorting, offset and keyset pagination, and counting, over the
 * filters of filter.c. Aggregates are aggregate.c, full-text search search.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "rapport/decimal.h"
#include "rapport/jsontext.h"

#define MAX_ORDER 8    /* Sort keys. */

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
            rp__field_t *f = rp__any_field(e, name);
            if (!f)
                return rp__no_field(e, name, err);
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
        keys[(*nkeys)++] = (okey_t){rp__any_field(e, "id"), false};
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
                        int nkeys, rp__qb_t *q, rp_error_t *err)
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
    rp__qb_put(q, " AND (");
    for (int i = 0; i < nkeys; i++) {
        rp__qb_put(q, i ? " OR (" : "(");
        for (int j = 0; j < i; j++) {
            rp__qb_put(q, "\"%s\" IS ? AND ", keys[j].f->name);
            json_t *cv = NULL;
            if ((rc = rp__value_canon(e->name, keys[j].f, json_array_get(k, (size_t)j), &cv,
                                      err)))
                goto bad;
            rp__qb_bind_add(q, keys[j].f, cv);
        }
        json_t *v = json_array_get(k, (size_t)i);
        const char *col = keys[i].f->name;
        if (json_is_null(v)) {
            rp__qb_put(q, keys[i].desc ? "0" : "\"%s\" IS NOT NULL", col);
        } else {
            if (keys[i].desc)
                rp__qb_put(q, "(\"%s\" < ? OR \"%s\" IS NULL)", col, col);
            else
                rp__qb_put(q, "\"%s\" > ?", col);
            json_t *cv = NULL;
            if ((rc = rp__value_canon(e->name, keys[i].f, v, &cv, err)))
                goto bad;
            rp__qb_bind_add(q, keys[i].f, cv);
        }
        rp__qb_put(q, ")");
    }
    rp__qb_put(q, ")");
    goto out;
bad:
    rc = rp_error_set(err, RP_EINVAL, RP_C_CURSOR, "cursor on %s holds values that do not fit "
                      "its fields", e->name);
out:
    json_decref(c);
    return rc;
}


/* ---- rows written as JSON text ----------------------------------------------------------- */

static const char *const sys_names[RP__NSYS] = {"id",         "created_at", "updated_at", "version",
                                                "created_by", "updated_by", "deleted_at"};

/* A page's columns, each with its key written once: ',"name":' (the first without its comma). */
typedef struct {
    int col;
    const rp__field_t *f; /* NULL for a system column */
    unsigned char klen;
    char key[72];
} tcol_t;

#define KEY_COPY 64 /* Bytes of a key text_key copies: the longest key a plan takes. */

typedef struct {
    int n;
    tcol_t c[];
} tplan_t;

/* Which columns a page shows @p a, as rp__record_from_row and rp__access_redact together would
 * leave them: the names of a record with every column, put through the redaction itself, so
 * the two ways agree whatever the rules. NULL when a record principal reads: its actors are
 * masked per record, so its page goes through the records. */
static tplan_t *text_plan(rp__entity_t *e, const rp_access_t *a, const char **fields)
{
    int64_t pid = 0;
    if (a && (!rp__authorizer ||
              (rp__authorizer->principal && rp__authorizer->principal(a, &pid))))
        return NULL;
    int n = RP__NSYS + e->nfields;
    tplan_t *plan = calloc(1, sizeof *plan + (size_t)n * sizeof plan->c[0]);
    json_t *probe = json_object();
    if (!plan || !probe) {
        free(plan);
        json_decref(probe);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        const char *name = i < RP__NSYS ? sys_names[i] : e->fields[i - RP__NSYS].name;
        bool always = i == 0 || i == 3; /* id and version travel with every record */
        bool want = always || !fields;
        for (int k = 0; !want && fields[k]; k++)
            want = strcmp(fields[k], name) == 0;
        if (want)
            json_object_set_new_nocheck(probe, name, json_null());
    }
    rp__access_redact(a, e->name, probe);
    for (int i = 0; i < n; i++) {
        const char *name = i < RP__NSYS ? sys_names[i] : e->fields[i - RP__NSYS].name;
        if (!json_object_get(probe, name))
            continue;
        tcol_t *c = &plan->c[plan->n++];
        c->col = i;
        c->f = i < RP__NSYS ? NULL : &e->fields[i - RP__NSYS];
        /* Names are registry names ([a-z0-9_], 48 bytes at most): nothing to escape. A name
         * that does not fit sends the page through the records. */
        int k = snprintf(c->key, sizeof c->key, ",\"%s\":", name);
        if (k <= 0 || k > KEY_COPY) {
            json_decref(probe);
            free(plan);
            return NULL;
        }
        c->klen = (unsigned char)k;
    }
    json_decref(probe);
    return plan;
}

/* Column @p col of the row as rp__value_column's value would be written. */
static void text_value(rp_jtext_t *out, rp_db_stmt_t *st, int col, const rp__field_t *f)
{
    if (rp_db_col_type(st, col) == RP_DB_NULL) {
        rp_jt_raw(out, "null", 4);
        return;
    }
    switch (f ? f->type : RP_T_TEXT) {
    case RP_T_INTEGER:
    case RP_T_REF:
        rp_jt_int(out, rp_db_col_int(st, col));
        return;
    case RP_T_REAL:
        rp_jt_real(out, rp_db_col_float(st, col));
        return;
    case RP_T_BOOLEAN:
        rp_jt_raw(out, rp_db_col_int(st, col) ? "true" : "false",
                  rp_db_col_int(st, col) ? 4 : 5);
        return;
    case RP_T_DECIMAL: {
        char buf[40];
        rp_dec_format(rp_db_col_int(st, col), f->scale, buf, sizeof buf);
        rp_jt_str(out, buf, strlen(buf));
        return;
    }
    case RP_T_JSON: {
        /* Read and written again, as the record would be: whatever the column holds, the
         * page stays JSON. */
        json_t *v = rp__value_column(st, col, f);
        rp_jt_value(out, v);
        json_decref(v);
        return;
    }
    default:
        rp_jt_str(out, rp_db_col_text(st, col), (size_t)rp_db_col_bytes(st, col));
    }
}

/* Appends column @p c's key (without its comma when @p first). With room, KEY_COPY bytes of
 * its buffer are copied and the length counted: a copy of 64 bytes is four vector moves,
 * where one of klen bytes became `rep movsq`, a third of the page's own time (perf). A key
 * is at most 52 bytes (a registry name is 48; text_plan refuses a longer one), and the buffer
 * holds 72. */
static inline void text_key(rp_jtext_t *out, const tcol_t *c, int first)
{
    if (out->len + KEY_COPY < out->cap) {
        memcpy(out->p + out->len, c->key + first, KEY_COPY);
        out->len += (size_t)(c->klen - first);
    } else {
        rp_jt_raw(out, c->key + first, (size_t)(c->klen - first));
    }
}

static void text_row(rp_jtext_t *out, rp_db_stmt_t *st, const tplan_t *plan)
{
    rp_jt_raw(out, "{", 1);
    for (int i = 0; i < plan->n; i++) {
        const tcol_t *c = &plan->c[i];
        text_key(out, c, i == 0);
        if (c->col == 0 || c->col == 3)
            rp_jt_int(out, rp_db_col_int(st, c->col));
        else
            text_value(out, st, c->col, c->f);
    }
    rp_jt_raw(out, "}", 1);
}

/* ---- rows handed over as text (rp_store_find_rows) --------------------------------------- */

#define ROWS_MAX 64

typedef struct {
    rp_row_fn fn;
    void *ud;
    int n;
    bool records; /* a record principal reads: through the records, as rp_store_find */
    int col[ROWS_MAX];
    const rp__field_t *f[ROWS_MAX]; /* NULL for a system column */
    const char *v[ROWS_MAX];
    size_t len[ROWS_MAX], off[ROWS_MAX];
    rp_jtext_t scratch; /* the values written here (numbers, JSON), each NUL-terminated */
} rows_t;

/* Which column each field of @p fields is, for @p a's read. */
static void rows_plan(rows_t *R, rp__entity_t *e, const rp_access_t *a, const char **fields)
{
    int64_t pid = 0;
    R->records = a && (!rp__authorizer ||
                       (rp__authorizer->principal && rp__authorizer->principal(a, &pid)));
    for (R->n = 0; fields[R->n]; R->n++) {
        R->col[R->n] = -1;
        R->f[R->n] = NULL;
        for (int c = 0; c < RP__NSYS; c++)
            if (strcmp(sys_names[c], fields[R->n]) == 0)
                R->col[R->n] = c;
        for (int i = 0; R->col[R->n] < 0 && i < e->nfields; i++)
            if (strcmp(e->fields[i].name, fields[R->n]) == 0) {
                R->col[R->n] = RP__NSYS + i;
                R->f[R->n] = &e->fields[i];
            }
    }
}

/* Column @p c's value as text: in place when the column holds it, else into the scratch. */
static void rows_value(rows_t *R, int i, rp_db_stmt_t *st)
{
    int c = R->col[i];
    const rp__field_t *f = R->f[i];
    R->v[i] = NULL;
    R->len[i] = 0;
    R->off[i] = SIZE_MAX;
    if (rp_db_col_type(st, c) == RP_DB_NULL)
        return;
    rp_jtext_t *b = &R->scratch;
    size_t at = b->len;
    switch (f ? f->type : c == 0 || c == 3 ? RP_T_INTEGER : RP_T_TEXT) {
    case RP_T_INTEGER:
    case RP_T_REF:
        rp_jt_int(b, rp_db_col_int(st, c));
        break;
    case RP_T_REAL:
        rp_jt_real(b, rp_db_col_float(st, c));
        break;
    case RP_T_BOOLEAN:
        rp_jt_lit(b, rp_db_col_int(st, c) ? "true" : "false");
        break;
    case RP_T_DECIMAL: {
        char buf[40];
        rp_dec_format(rp_db_col_int(st, c), f->scale, buf, sizeof buf);
        rp_jt_lit(b, buf);
        break;
    }
    case RP_T_JSON: { /* as its record holds it: a string is handed over as its text */
        json_t *v = rp__value_column(st, c, f);
        if (json_is_string(v))
            rp_jt_raw(b, json_string_value(v), json_string_length(v));
        else if (!json_is_null(v))
            rp_jt_value(b, v);
        bool none = json_is_null(v);
        json_decref(v);
        if (none)
            return;
        break;
    }
    default:
        R->v[i] = rp_db_col_text(st, c);
        R->len[i] = (size_t)rp_db_col_bytes(st, c);
        return;
    }
    R->len[i] = b->len - at;
    R->off[i] = at;
    rp_jt_raw(b, "", 1);
}

/* Hands the row under @p st to the caller (see rp_row_fn). */
static int rows_emit(rows_t *R, rp__entity_t *e, const rp_access_t *a, rp_db_stmt_t *st,
                     const char **fields)
{
    R->scratch.len = 0;
    json_t *rec = NULL;
    if (R->records) {
        rec = rp__record_from_row(e, st, fields);
        rp__access_redact(a, e->name, rec);
    }
    for (int i = 0; i < R->n; i++) {
        if (!rec) {
            rows_value(R, i, st);
            continue;
        }
        json_t *v = json_object_get(rec, fields[i]);
        R->v[i] = json_string_value(v);
        R->len[i] = json_string_length(v);
        R->off[i] = SIZE_MAX;
        if (v && !json_is_null(v) && !json_is_string(v)) {
            R->off[i] = R->scratch.len;
            rp_jt_value(&R->scratch, v);
            R->len[i] = R->scratch.len - R->off[i];
            rp_jt_raw(&R->scratch, "", 1);
        }
    }
    if (R->scratch.oom) {
        json_decref(rec);
        return RP_ENOMEM;
    }
    for (int i = 0; i < R->n; i++)
        if (R->off[i] != SIZE_MAX)
            R->v[i] = R->scratch.p + R->off[i];
    int rc = R->fn(R->ud, R->n, R->v, R->len);
    json_decref(rec);
    return rc;
}

/* The page of @p qq, as records into @p arr, as text into @p text, or row by row to @p rows. */
static int find(rp_store_t *s, const rp_query_t *qq, json_t *arr, rp_jtext_t *text,
                rows_t *rows, char **next, rp_error_t *err)
{
    if (next)
        *next = NULL;
    rp__entity_t *e = rp__entity_req(s, qq->entity, err);
    if (!e)
        return err ? err->code : RP_EIO;
    const rp_access_t *a = qq->access;
    if (qq->fields)
        for (int i = 0; qq->fields[i]; i++) {
            if (!rp__any_field(e, qq->fields[i]))
                return rp__no_field(e, qq->fields[i], err);
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
        if (rp__access_hidden(a, e->name, keys[i].f->name) ||
            rp__access_masked(a, keys[i].f->name))
            return rp_error_field(err, keys[i].f->name,
                                  rp__access_denied(err, a, e->name, RP_PERM_READ,
                                                    "the order names a hidden field"));
    int64_t limit = qq->limit <= 0 ? 100 : qq->limit > 10000 ? 10000 : qq->limit;
    rp__qb_t q = {0};
    rp__qb_put_str(&q, e->sql_select);
    if ((rc = rp__where_scoped(s, e, a, qq->where, qq->with_deleted, &q, err)))
        goto out;
    if (qq->after && (rc = cursor_where(e, qq->after, qq->order, keys, nkeys, &q, err)))
        goto out;
    rp__qb_put(&q, " ORDER BY ");
    for (int i = 0; i < nkeys; i++)
        rp__qb_put(&q, "%s\"%s\"%s", i ? ", " : "", keys[i].f->name, keys[i].desc ? " DESC" : "");
    /* Bound, so every page of a query shares one cached statement. */
    rp__qb_put(&q, " LIMIT ? OFFSET ?");
    if (q.oom) {
        rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        goto out;
    }
    rp_db_stmt_t *st = rp__stmt(s, q.sql, err);
    if (!st) {
        rc = err ? err->code : RP_EIO;
        goto out;
    }
    if (rp__qb_bind(&q, st, 1) != RP_DB_OK ||
        rp_db_bind_int(st, q.nb + 1, limit + 1) != RP_DB_OK ||
        rp_db_bind_int(st, q.nb + 2, qq->offset > 0 && !qq->after ? qq->offset : 0) !=
            RP_DB_OK) {
        rc = rp__dberr(s, RP_DB_ERROR, "cannot bind the query", err);
        rp_db_reset(st);
        goto out;
    }
    /* Text: written straight from the rows where the plan allows, else through the records. */
    tplan_t *plan = text ? text_plan(e, a, qq->fields) : NULL;
    if (rows)
        rows_plan(rows, e, a, qq->fields);
    int stop = 0;
    if (text) {
        rp_jt_reserve(text, (size_t)(limit < 64 ? limit : 64) * 1024);
        rp_jt_raw(text, "[", 1);
    }
    int64_t count = 0, last_id = 0;
    json_t *last = NULL; /* the last record built, for the cursor */
    bool more = false;
    int src;
    rp_db_stmt_t *was_reading = rp__reading(s, st);
    while ((src = rp_db_step(st)) == RP_DB_ROW) {
        if (count == limit) {
            more = true; /* one row more than asked for: there is a next page */
            break;
        }
        if (text && count)
            rp_jt_raw(text, ",", 1);
        last_id = rp_db_col_int(st, 0);
        if (rows) {
            /* The cursor reads the last record whole once the page is done. */
            if ((stop = rows_emit(rows, e, a, st, qq->fields)))
                break;
        } else if (plan) {
            text_row(text, st, plan);
        } else {
            json_t *rec = rp__record_from_row(e, st, qq->fields);
            rp__access_redact(a, e->name, rec);
            if (text)
                rp_jt_value(text, rec);
            json_decref(last);
            last = json_incref(rec);
            if (arr)
                json_array_append(arr, rec);
            json_decref(rec);
        }
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
    free(plan);
    if (text)
        rp_jt_raw(text, "]", 1);
    if (stop) {
        rc = stop == RP_ENOMEM ? rp_error_set(err, RP_ENOMEM, 0, "out of memory") : stop;
        json_decref(last);
        goto out;
    }
    if (src == RP_DB_ROW)
        src = RP_DB_DONE;
    if (src == RP_DB_DONE && more && next) {
        /* After the reset: reading the last row whole may prepare another statement. */
        json_t *full = qq->fields || a || !last ? NULL : json_incref(last);
        if (!full)
            rp__record_load(s, e, last_id, NULL, &full, NULL);
        *next = full ? make_cursor(qq->order, keys, nkeys, full) : NULL;
        json_decref(full);
    }
    json_decref(last);
    if (src != RP_DB_DONE) {
        rc = rp__dberr(s, src, "query failed", err);
        goto out;
    }
    if (text && text->oom)
        rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
out:
    rp__qb_free(&q);
    return rc;
}

int rp_store_find(rp_store_t *s, const rp_query_t *qq, json_t **out, char **next, rp_error_t *err)
{
    json_t *arr = json_array();
    *out = NULL;
    if (!arr) {
        if (next)
            *next = NULL;
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    }
    int rc = find(s, qq, arr, NULL, NULL, next, err);
    if (rc)
        json_decref(arr);
    else
        *out = arr;
    return rc;
}

int rp_store_find_text(rp_store_t *s, const rp_query_t *qq, rp_jtext_t *out, char **next,
                       rp_error_t *err)
{
    return find(s, qq, NULL, out, NULL, next, err);
}

int rp_store_find_rows(rp_store_t *s, const rp_query_t *qq, rp_row_fn fn, void *ud, char **next,
                       rp_error_t *err)
{
    int n = 0;
    while (qq->fields && qq->fields[n])
        n++;
    if (n < 1 || n > ROWS_MAX) {
        if (next)
            *next = NULL;
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE, "a read of rows names 1 to %d fields, "
                            "not %d", ROWS_MAX, n);
    }
    rows_t *R = calloc(1, sizeof *R);
    if (!R) {
        if (next)
            *next = NULL;
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    }
    R->fn = fn;
    R->ud = ud;
    int rc = find(s, qq, NULL, NULL, R, next, err);
    rp_jt_free(&R->scratch);
    free(R);
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
    rp__qb_t q = {0};
    rp__qb_put(&q, "SELECT count(*) FROM \"%s\"", e->name);
    int rc = rp__where_scoped(s, e, a, where, with_deleted, &q, err);
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
    rp__qb_bind(&q, st, 1);
    rp_db_stmt_t *was_reading = rp__reading(s, st);
    int src = rp_db_step(st);
    rp__reading(s, was_reading);
    if (src == RP_DB_ROW)
        *count = rp_db_col_int(st, 0);
    else
        rc = rp__dberr(s, src, "count failed", err);
    rp_db_reset(st);
out:
    rp__qb_free(&q);
    return rc;
}
