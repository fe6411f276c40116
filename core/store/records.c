/*
 * records.c — the write path for new records (before-hooks, the row, the search index and the
 * event in one transaction), the checks every write shares, and reading a record back.
 * Changing stored records is change.c.
 */
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"


const char *rp__actor_of(const rp_ctx_t *ctx)
{
    return ctx && ctx->actor ? ctx->actor : "system";
}

/* ---- reading ---------------------------------------------------------------------------- */

static bool wanted(const char **fields, const char *name)
{
    if (!fields)
        return true;
    for (int i = 0; fields[i]; i++)
        if (strcmp(fields[i], name) == 0)
            return true;
    return false;
}

json_t *rp__record_from_row(rp__entity_t *e, rp_db_stmt_t *st, const char **fields)
{
    static const char *const sys[RP__NSYS] = {"id",         "created_at", "updated_at", "version",
                                          "created_by", "updated_by", "deleted_at"};
    json_t *r = json_object();
    if (!r)
        return NULL;
    /* id and version always travel with a record: callers need them to update it. */
    /* The store wrote only checked UTF-8 and registry names, so skip jansson's re-checks. */
    json_object_set_new_nocheck(r, "id", json_integer(rp_db_col_int(st, 0)));
    for (int i = 1; i < RP__NSYS; i++) {
        if (i != 3 && !wanted(fields, sys[i]))
            continue;
        if (i == 3)
            json_object_set_new_nocheck(r, sys[i], json_integer(rp_db_col_int(st, i)));
        else if (rp_db_col_type(st, i) == RP_DB_NULL)
            json_object_set_new_nocheck(r, sys[i], json_null());
        else
            json_object_set_new_nocheck(
                r, sys[i],
                json_stringn_nocheck(rp_db_col_text(st, i),
                                     (size_t)rp_db_col_bytes(st, i)));
    }
    for (int i = 0; i < e->nfields; i++)
        if (wanted(fields, e->fields[i].name))
            json_object_set_new_nocheck(r, e->fields[i].name,
                                        rp__value_column(st, RP__NSYS + i, &e->fields[i]));
    return r;
}

int rp__record_load(rp_store_t *s, rp__entity_t *e, int64_t id, const char **fields,
                    json_t **out, rp_error_t *err)
{
    *out = NULL;
    rp_db_stmt_t *st = rp__stmt(s, e->sql_get, err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_int(st, 1, id);
    int rc = rp_db_step(st);
    if (rc == RP_DB_DONE) {
        rp_db_reset(st);
        return rp_error_set(err, RP_ENOTFOUND, RP_C_NO_RECORD, "no %s with id %lld", e->name,
                            (long long)id);
    }
    if (rc != RP_DB_ROW) {
        rp_db_reset(st);
        return rp__dberr(s, rc, "cannot read the record", err);
    }
    *out = rp__record_from_row(e, st, fields);
    rp_db_reset(st);
    return *out ? 0 : rp_error_set(err, RP_ENOMEM, 0, "out of memory");
}

int rp_store_get(rp_store_t *s, const char *entity, int64_t id, json_t **out, rp_error_t *err)
{
    *out = NULL;
    rp__entity_t *e = rp__entity_req(s, entity, err);
    if (!e)
        return err ? err->code : RP_EIO;
    return rp__record_load(s, e, id, NULL, out, err);
}

/* ---- checks shared by every write -------------------------------------------------------- */

/* Refuses keys that are not writable fields of @p e. */
int rp_store_get_as(rp_store_t *s, const rp_ctx_t *ctx, const char *entity, int64_t id,
                    json_t **out, rp_error_t *err)
{
    int rc = rp_store_get(s, entity, id, out, err);
    const rp_access_t *a = RP__ACCESS(ctx);
    if (rc || !a)
        return rc;
    /* A linked scope: another's record is a missing one (link.c, rp__link_visible). */
    rc = rp__access_scope(a, entity, RP_PERM_READ) == RP_SCOPE_LINK
             ? rp__link_visible(s, a, entity, *out, err)
             : rp__access_record(s, a, entity, RP_PERM_READ, *out, err);
    if (rc) {
        json_decref(*out);
        *out = NULL;
        return rc;
    }
    rp__access_redact(a, entity, *out);
    return 0;
}

int rp__check_keys(rp__entity_t *e, json_t *fields, rp_error_t *err)
{
    if (!json_is_object(fields))
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE,
                            "%s: the fields of a record must be a JSON object", e->name);
    const char *k;
    json_t *v;
    json_object_foreach(fields, k, v) {
        if (rp__field(e, k))
            continue;
        if (rp__is_system_field(k))
            return rp_error_field(err, k, rp_error_set(err, RP_EINVAL, RP_C_READONLY,
                                "%s.%s is kept by the store and cannot be written", e->name, k));
        char known[600];
        int n = 0;
        known[0] = '\0';
        for (int i = 0; i < e->nfields && n < (int)sizeof known - 60; i++)
            n += snprintf(known + n, sizeof known - (size_t)n, "%s%s", i ? ", " : "",
                          e->fields[i].name);
        return rp_error_field(err, k, rp_error_set(err, RP_EINVAL, RP_C_NO_FIELD,
                            "unknown field \"%s\" on %s (fields: %s)", k, e->name,
                            n ? known : "none"));
    }
    return 0;
}

int rp__check_ref(rp_store_t *s, rp__entity_t *e, rp__field_t *f, json_t *v, rp_error_t *err)
{
    if (json_is_null(v))
        return 0;
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT deleted_at IS NULL FROM \"%s\" WHERE id = ?", f->ref);
    rp_db_stmt_t *st = rp__stmt(s, sql, err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_int(st, 1, json_integer_value(v));
    int rc = rp_db_step(st);
    int live = rc == RP_DB_ROW ? (int)rp_db_col_int(st, 0) : -1;
    rp_db_reset(st);
    if (rc != RP_DB_ROW && rc != RP_DB_DONE)
        return rp__dberr(s, rc, "cannot check a reference", err);
    if (live < 0)
        return rp_error_field(err, f->name, rp_error_set(err, RP_EINVAL, RP_C_REF,
                            "%s.%s: there is no %s with id %lld", e->name, f->name, f->ref,
                            (long long)json_integer_value(v)));
    if (live == 0)
        return rp_error_field(err, f->name, rp_error_set(err, RP_EINVAL, RP_C_REF,
                            "%s.%s: %s %lld is deleted", e->name, f->name, f->ref,
                            (long long)json_integer_value(v)));
    return 0;
}

/* Turns a failed step into a message naming the entity, the field and the value. */
int rp__write_error(rp_store_t *s, int rc, rp__entity_t *e, json_t *canon, rp_error_t *err)
{
    const char *msg = rp_db_errmsg(s->db);
    if (rc == RP_DB_UNIQUE) {
        const char *dot = strrchr(msg, '.');
        const char *fname = dot ? dot + 1 : "?";
        char ex[80] = "the value";
        json_t *v = canon ? json_object_get(canon, fname) : NULL;
        if (v) {
            char *d = json_dumps(v, JSON_ENCODE_ANY);
            if (d) {
                snprintf(ex, sizeof ex, "%.70s", d);
                free(d);
            }
        }
        return rp_error_field(err, fname, rp_error_set(err, RP_ECONFLICT, RP_C_UNIQUE,
                            "%s.%s: %s is already used by another %s (the field is unique)",
                            e->name, fname, ex, e->name));
    }
    if (rc == RP_DB_FOREIGN)
        return rp_error_set(err, RP_ECONFLICT, RP_C_REFERENCED,
                            "%s: the change would break a reference between records", e->name);
    return rp__dberr(s, rc, "cannot write the record", err);
}

/* ---- the search index ------------------------------------------------------------------- */

static int64_t fts_rowid(const rp__entity_t *e, int64_t id)
{
    return (e->no << RP__FTS_SHIFT) | id;
}

/* Writes the searchable text of @p rec (canonical values by field name) for record @p id. */
int rp__fts_put(rp_store_t *s, rp__entity_t *e, int64_t id, json_t *rec, rp_error_t *err)
{
    size_t cap = 256, len = 0;
    char *body = malloc(cap);
    if (!body)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    for (int i = 0; i < e->nfields; i++) {
        if (!e->fields[i].searchable)
            continue;
        char buf[64];
        const char *t = rp__value_text(json_object_get(rec, e->fields[i].name), buf, sizeof buf);
        if (!t)
            continue;
        size_t n = strlen(t);
        if (len + n + 2 > cap) {
            while (len + n + 2 > cap)
                cap *= 2;
            char *nb = realloc(body, cap);
            if (!nb) {
                free(body);
                return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
            }
            body = nb;
        }
        if (len)
            body[len++] = '\n';
        memcpy(body + len, t, n);
        len += n;
    }
    if (len == 0) {
        free(body);
        return 0;
    }
    if (len > INT_MAX) {
        free(body);
        return rp_error_set(err, RP_ELIMIT, RP_C_CAP, "%s %lld: its searchable text is too long",
                            e->name, (long long)id);
    }
    return rp__fts_hold(s, fts_rowid(e, id), body, (int)len, err);
}

int rp__fts_drop(rp_store_t *s, rp__entity_t *e, int64_t id, rp_error_t *err)
{
    return rp__fts_hold(s, fts_rowid(e, id), NULL, 0, err);
}

int rp__reindex(rp_store_t *s, rp__entity_t *e, rp_error_t *err)
{
    /* Rows are read first, then indexed: the index writes must not run under the SELECT. */
    size_t len = strlen(e->sql_select) + 32;
    char *sql = malloc(len);
    if (!sql)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    snprintf(sql, len, "%s WHERE deleted_at IS NULL", e->sql_select);
    rp_db_stmt_t *st = NULL;
    st = rp_db_prepare(s->db, sql, err);
    free(sql);
    if (!st)
        return err ? err->code : RP_EIO;
    json_t *rows = json_array();
    while (rp_db_step(st) == RP_DB_ROW)
        json_array_append_new(rows, rp__record_from_row(e, st, NULL));
    rp_db_finalize(st);
    int rc = 0;
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) {
        int64_t id = json_integer_value(json_object_get(r, "id"));
        if ((rc = rp__fts_drop(s, e, id, err)) || (rc = rp__fts_put(s, e, id, r, err)))
            break;
    }
    json_decref(rows);
    return rc;
}

/* ---- create ----------------------------------------------------------------------------- */

/* Stores one record whose fields have passed the hooks. In the open transaction. */
/* A growing text buffer for the changes of a create, written directly: jansson's dump of
 * an object of small arrays cost a quarter of a create (it tracks every container). */
typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
} tbuf_t;

static void tput(tbuf_t *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = (b->cap ? b->cap * 2 : 256) + n;
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* A JSON string literal of the UTF-8 text @p t: the escapes RFC 8259 requires, nothing more
 * (the store's text is valid UTF-8, checked on the way in). */
static void tput_string(tbuf_t *b, const char *t, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    tput(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        tput(b, t + run, i - run);
        run = i + 1;
        char esc[7] = {'\\', (char)c, 0};
        size_t len = 2;
        if (c == '\n')
            esc[1] = 'n';
        else if (c == '\t')
            esc[1] = 't';
        else if (c == '\r')
            esc[1] = 'r';
        else if (c < 0x20) {
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            len = 6;
        }
        tput(b, esc, len);
    }
    tput(b, t + run, n - run);
    tput(b, "\"", 1);
}

static void tput_value(tbuf_t *b, json_t *v)
{
    char num[32];
    if (json_is_integer(v)) {
        int n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        tput(b, num, (size_t)n);
        return;
    }
    if (json_is_string(v)) {
        tput_string(b, json_string_value(v), json_string_length(v));
        return;
    }
    char *d = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (!d) {
        b->oom = true;
        return;
    }
    tput(b, d, strlen(d));
    free(d);
}

/* Stores one record whose fields have passed the hooks. In the open transaction. With
 * @p stored, hands back the canonical fields (owned) and the columns. */
static int create_one(rp_store_t *s, const rp_ctx_t *ctx, rp__entity_t *e, json_t *fields,
                      int64_t *id_out, json_t **stored, rp_created_t *cols, rp_error_t *err)
{
    int rc = rp__check_keys(e, fields, err);
    if (rc)
        return rc;
    json_t *canon = json_object();
    tbuf_t changes = {0};
    rp_db_stmt_t *st = NULL;
    tput(&changes, "{", 1);
    if (!canon) {
        rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        goto out;
    }
    char now[32];
    rp__fmt_time(rp_store_now(s), now);
    const char *actor = rp__actor_of(ctx);
    for (int i = 0; i < e->nfields; i++) {
        rp__field_t *f = &e->fields[i];
        json_t *in = json_object_get(fields, f->name), *v = NULL;
        if ((!in || json_is_null(in)) && f->def)
            in = f->def;
        if ((rc = rp__value_canon(e->name, f, in, &v, err)))
            goto out;
        json_object_set_new_nocheck(canon, f->name, v);
        if (json_is_null(v)) {
            if (f->required) {
                rc = rp_error_field(err, f->name, rp_error_set(err, RP_EINVAL, RP_C_REQUIRED,
                                  "%s.%s is required", e->name, f->name));
                goto out;
            }
            continue;
        }
        if (f->type == RP_T_REF && (rc = rp__check_ref(s, e, f, v, err)))
            goto out;
        /* Field names are registry identifiers: no escaping needed. */
        tput(&changes, changes.len > 1 ? ",\"" : "\"", changes.len > 1 ? 2 : 1);
        tput(&changes, f->name, strlen(f->name));
        tput(&changes, "\":[null,", 8);
        tput_value(&changes, v);
        tput(&changes, "]", 1);
    }
    tput(&changes, "}", 1);
    if (changes.oom) {
        rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        goto out;
    }
    if (!(st = rp__stmt_held(s, &e->st_insert, e->sql_insert, err))) {
        rc = err ? err->code : RP_EIO;
        goto out;
    }
    rp_db_bind_text_copy(st, 1, now, -1);
    rp_db_bind_text_copy(st, 2, now, -1);
    rp_db_bind_text(st, 3, actor, -1);
    rp_db_bind_text(st, 4, actor, -1);
    for (int i = 0; i < e->nfields; i++)
        rp__value_bind(st, 5 + i, &e->fields[i], json_object_get(canon, e->fields[i].name));
    int src = rp_db_step(st);
    rp_db_reset(st);
    if (src != RP_DB_DONE) {
        rc = rp__write_error(s, src, e, canon, err);
        goto out;
    }
    int64_t id = rp_db_last_id(s->db);
    if (e->nsearch && (rc = rp__fts_put(s, e, id, canon, err)))
        goto out;
    char type[80];
    rp__cat(type, sizeof type, e->name, ".created");
    rc = rp__event_append_text(s, ctx, type, e->name, id, changes.p, NULL, err);
    changes.p = NULL;
    if (rc)
        goto out;
    if (id_out)
        *id_out = id;
    if (stored) {
        /* The record as stored, without reading it back. */
        *stored = json_incref(canon);
        cols->id = id;
        memcpy(cols->at, now, sizeof cols->at);
        cols->actor = actor;
    }
out:
    json_decref(canon);
    free(changes.p);
    return rc;
}

/* Shallow copies of the records of @p in, so hooks may edit them without touching the
 * caller's objects; with @p take, @p in itself (its caller lets the hooks edit it). */
json_t *rp__batch_copy(rp__entity_t *e, json_t *in, bool take, size_t *failed,
                          rp_error_t *err)
{
    if (!json_is_array(in)) {
        rp_error_set(err, RP_EINVAL, RP_C_TYPE, "%s: a batch must be a JSON array of records",
                     e->name);
        return NULL;
    }
    json_t *batch = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(in, i, r) {
        if (!json_is_object(r)) {
            if (failed)
                *failed = i;
            rp_error_set(err, RP_EINVAL, RP_C_TYPE, "record %zu: %s: not a JSON object", i,
                         e->name);
            json_decref(batch);
            return NULL;
        }
        json_array_append_new(batch, take ? json_incref(r) : json_copy(r));
    }
    return batch;
}

/* Prefixes err's message with "record N: " so a bulk caller knows which record failed. */
void rp__name_record(rp_error_t *err, size_t i)
{
    if (!err)
        return;
    char prefix[32];
    size_t p = (size_t)snprintf(prefix, sizeof prefix, "record %zu: ", i);
    size_t len = strnlen(err->msg, sizeof err->msg - 1);
    if (len + p >= sizeof err->msg)
        len = sizeof err->msg - 1 - p;
    memmove(err->msg + p, err->msg, len);
    memcpy(err->msg, prefix, p);
    err->msg[p + len] = '\0';
}

/* A record created by a principal whose read scope is a link must land within it: a portal
 * user may not open a ticket for somebody else. */
static int landed(rp_store_t *s, const rp_access_t *a, rp__entity_t *e, int64_t id,
                  rp_error_t *err)
{
    if (!a || rp__access_scope(a, e->name, RP_PERM_READ) != RP_SCOPE_LINK)
        return 0;
    json_t *rec = json_pack("{s:I}", "id", (json_int_t)id);
    if (!rec)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    int rc = rp__link_record(s, a, e->name, RP_PERM_READ, rec, err);
    json_decref(rec);
    if (rc == RP_EPERM)
        rc = rp__access_denied(err, a, e->name, RP_PERM_CREATE,
                               "the new record would not be linked to it");
    return rc;
}

/* Where a principal's read grant links a record straight to it by one ref field (a ticket's
 * contact), a new record that leaves the field out gets the principal: what the portal means
 * by "open a ticket". Any other value is left for landed() to judge. */
static int fill_link(const rp_access_t *a, rp__entity_t *e, json_t *batch, rp_error_t *err)
{
    if (!a || !rp__authorizer || !rp__authorizer->link || !rp__authorizer->principal ||
        rp__access_scope(a, e->name, RP_PERM_READ) != RP_SCOPE_LINK)
        return 0;
    const rp_link_t *l = rp__authorizer->link(a, e->name, RP_PERM_READ);
    int64_t pid = 0;
    if (!l || l->self || l->through || l->npath != 1 || !rp__authorizer->principal(a, &pid))
        return 0;
    for (size_t i = 0; i < json_array_size(batch); i++) {
        json_t *v = json_object_get(json_array_get(batch, i), l->path[0]);
        if (v && !json_is_null(v))
            continue;
        /* A copy: the batch may hold the caller's own object. */
        json_t *r = json_copy(json_array_get(batch, i));
        if (!r || json_object_set_new(r, l->path[0], json_integer(pid))) {
            json_decref(r);
            return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        }
        if (json_array_set_new(batch, i, r)) /* takes r, even when it fails */
            return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    }
    return 0;
}

static int create_many(rp_store_t *s, const rp_ctx_t *ctx, const char *entity, json_t *records,
                       int64_t *ids_out, json_t **stored, rp_created_t *cols,
                       size_t *failed_index, rp_error_t *err);

int rp_store_create_many(rp_store_t *s, const rp_ctx_t *ctx, const char *entity, json_t *records,
                         int64_t *ids_out, size_t *failed_index, rp_error_t *err)
{
    return create_many(s, ctx, entity, records, ids_out, NULL, NULL, failed_index, err);
}

int rp_store_create_fields(rp_store_t *s, const rp_ctx_t *ctx, const char *entity,
                           json_t *fields, json_t **stored, rp_created_t *cols, rp_error_t *err)
{
    *stored = NULL;
    json_t *one = json_array();
    json_array_append(one, fields);
    int rc = create_many(s, ctx, entity, one, NULL, stored, cols, NULL, err);
    json_decref(one);
    /* What the user gets back is what the user may see: defaults and values rules set in
     * hidden fields stay out of it. */
    if (!rc)
        rp__access_redact(RP__ACCESS(ctx), entity, *stored);
    return rc;
}

int rp_store_create_record(rp_store_t *s, const rp_ctx_t *ctx, const char *entity,
                           json_t *fields, json_t **record, rp_error_t *err)
{
    *record = NULL;
    json_t *stored = NULL, *copy = json_is_object(fields) ? json_copy(fields) : NULL;
    rp_created_t c;
    int rc = rp_store_create_fields(s, ctx, entity, copy ? copy : fields, &stored, &c, err);
    json_decref(copy);
    if (rc)
        return rc;
    /* The columns first, in the order a read returns them, then the fields. */
    json_t *r = json_pack("{s:I,s:s,s:s,s:i,s:s,s:s,s:n}", "id", (json_int_t)c.id,
                          "created_at", c.at, "updated_at", c.at, "version", 1, "created_by",
                          c.actor, "updated_by", c.actor, "deleted_at");
    if (!r || json_object_update(r, stored)) {
        json_decref(r);
        json_decref(stored);
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    }
    json_decref(stored);
    *record = r;
    return 0;
}

static int create_many(rp_store_t *s, const rp_ctx_t *ctx, const char *entity, json_t *records,
                       int64_t *ids_out, json_t **stored, rp_created_t *cols,
                       size_t *failed_index, rp_error_t *err)
{
    rp__entity_t *e = rp__entity_req(s, entity, err);
    if (!e)
        return err ? err->code : RP_EIO;
    size_t failed = 0;
    const rp_access_t *a = RP__ACCESS(ctx);
    if (a) {
        if (rp__access_scope(a, entity, RP_PERM_CREATE) != RP_SCOPE_ALL)
            return rp__access_denied(err, a, entity, RP_PERM_CREATE, NULL);
        for (size_t i = 0; i < json_array_size(records); i++) {
            int rc = rp__access_fields(a, entity, json_array_get(records, i), err);
            if (!rc)
                rc = rp__access_owner(s, a, entity, json_array_get(records, i), false, err);
            if (rc) {
                if (failed_index)
                    *failed_index = i;
                if (json_array_size(records) > 1)
                    rp__name_record(err, i);
                return rc;
            }
        }
    }
    json_t *batch = rp__batch_copy(e, records, stored != NULL, &failed, err);
    if (!batch) {
        if (failed_index)
            *failed_index = failed;
        return err ? err->code : RP_EIO;
    }
    int rc = fill_link(a, e, batch, err);
    if (!rc)
        rc = rp_store_begin(s, err);
    if (rc) {
        json_decref(batch);
        return rc;
    }
    size_t n = json_array_size(batch);
    if (rp__hooks_any(s, e, RP_ACT_CREATE) &&
        (rc = rp__hooks_run(s, e, RP_ACT_CREATE, batch, NULL, NULL, ctx, &failed, err)))
        goto fail;
    for (size_t i = 0; i < n; i++) {
        int64_t id = 0;
        if ((i % 64 == 63 && (rc = rp__over_budget(s, err))) ||
            (rc = create_one(s, ctx, e, json_array_get(batch, i), &id, i == 0 ? stored : NULL,
                             cols, err))) {
            failed = i;
            if (n > 1)
                rp__name_record(err, i);
            goto fail;
        }
        if (ids_out)
            ids_out[i] = id;
        if ((rc = landed(s, a, e, id, err))) {
            failed = i;
            if (n > 1)
                rp__name_record(err, i);
            goto fail;
        }
    }
    json_decref(batch);
    if (!(rc = rp_store_commit(s, err)))
        return 0;
    goto gone;
fail:
    json_decref(batch);
    rp_store_rollback(s, NULL);
    if (failed_index)
        *failed_index = failed;
gone:
    if (stored) {
        json_decref(*stored);
        *stored = NULL;
    }
    return rc;
}

int rp_store_stored_value(rp_store_t *s, const rp_ctx_t *ctx, const char *entity,
                          json_t *fields, const char *field, json_t **value, rp_error_t *err)
{
    *value = NULL;
    rp__entity_t *e = rp__entity_req(s, entity, err);
    if (!e)
        return err ? err->code : RP_EIO;
    rp__field_t *f = field ? rp__field(e, field) : NULL;
    if (!f)
        return rp_error_field(err, field, rp_error_set(err, RP_EINVAL, RP_C_NO_FIELD,
                            "unknown field \"%s\" on %s", field ? field : "", entity));
    if (!json_is_object(fields))
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE, "%s: a record must be a JSON object",
                            entity);
    json_t *batch = json_array();
    json_array_append_new(batch, json_deep_copy(fields));
    int rc = rp_store_begin(s, err);
    if (rc) {
        json_decref(batch);
        return rc;
    }
    size_t failed = 0;
    if (rp__hooks_any(s, e, RP_ACT_CREATE))
        rc = rp__hooks_run(s, e, RP_ACT_CREATE, batch, NULL, NULL, ctx, &failed, err);
    /* Made before the rollback: a hook that changed the schema leaves e and f read back. */
    if (!rc)
        rc = rp__value_canon(e->name, f, json_object_get(json_array_get(batch, 0), field), value,
                             err);
    rp_store_rollback(s, NULL);
    json_decref(batch);
    return rc;
}

int rp_store_create(rp_store_t *s, const rp_ctx_t *ctx, const char *entity, json_t *fields,
                    int64_t *id_out, rp_error_t *err)
{
    json_t *one = json_array();
    json_array_append(one, fields);
    int rc = rp_store_create_many(s, ctx, entity, one, id_out, NULL, err);
    json_decref(one);
    return rc;
}
