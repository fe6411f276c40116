/*
 * erase.c — the right to be forgotten: a record's personal fields (those whose specification
 * says "personal": true) emptied in the row, in the payloads of its events and in the search
 * index, in one transaction that ends with one "ENTITY.erased" event. The events stay, so the
 * history keeps its shape; only the personal values in them become null.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* What one erasure collects as it goes. */
typedef struct erase {
    rp_store_t *s;
    json_t *whole; /* Strings erased: an equal string anywhere in the record's events is nulled. */
    json_t *parts; /* Identifiers erased (email, phone, url): nulled or cut out of any event. */
    json_t *records; /* {entity: [ids]} of the records that refer to the subject, erased too. */
    int64_t events;  /* Events of the subject (and those records) whose payload changed. */
    int64_t others;  /* Events of other records whose payload named an erased identifier. */
} erase_t;

static const char marker[] = "[erased]";

/* Whether @p e has any personal field. */
static bool has_personal(const rp__entity_t *e)
{
    for (int i = 0; i < e->nfields; i++)
        if (e->fields[i].personal)
            return true;
    return false;
}

/* Appends @p v to @p arr unless it is there already. */
static void add_unique(json_t *arr, json_t *v)
{
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x) {
        if (json_equal(x, v))
            return;
    }
    json_array_append(arr, v);
}

/* @p text with every occurrence of @p needle replaced by the marker (new string), or NULL
 * when it holds none. */
static char *cut_out(const char *text, const char *needle)
{
    size_t n = strlen(needle), len = strlen(text), count = 0;
    if (!n)
        return NULL;
    for (const char *p = text; (p = strstr(p, needle)); p += n)
        count++;
    if (!count)
        return NULL;
    char *out = malloc(len + count * sizeof marker + 1), *o = out;
    if (!out)
        return NULL;
    for (const char *p = text, *q; *p; p = q + n) {
        if (!(q = strstr(p, needle))) {
            strcpy(o, p);
            return out;
        }
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, marker, sizeof marker - 1);
        o += sizeof marker - 1;
    }
    *o = '\0';
    return out;
}

/* The scrubbed form of a string: null when it equals an erased value, with the erased
 * identifiers cut out when it contains them, or NULL when it stays as it is. */
static json_t *scrub_string(const erase_t *x, json_t *v, bool own)
{
    size_t i;
    json_t *w;
    if (own)
        json_array_foreach(x->whole, i, w) {
            if (json_equal(v, w))
                return json_null();
        }
    char *text = strdup(json_string_value(v));
    bool cut = false;
    json_array_foreach(x->parts, i, w) {
        if (text && strcmp(text, json_string_value(w)) == 0) {
            free(text);
            return json_null();
        }
        char *t = text ? cut_out(text, json_string_value(w)) : NULL;
        if (t) {
            free(text);
            text = t;
            cut = true;
        }
    }
    json_t *r = cut && text ? json_string(text) : NULL;
    free(text);
    return r;
}

/* Scrubs @p v in place (its strings, at any depth); true when something changed. */
static bool scrub(const erase_t *x, json_t *v, bool own)
{
    bool changed = false;
    size_t i;
    const char *k;
    json_t *c, *n;
    if (json_is_array(v)) {
        json_array_foreach(v, i, c) {
            if (json_is_string(c) && (n = scrub_string(x, c, own))) {
                json_array_set_new(v, i, n);
                changed = true;
            } else if (!json_is_string(c)) {
                changed = scrub(x, c, own) || changed;
            }
        }
    } else if (json_is_object(v)) {
        json_object_foreach(v, k, c) {
            if (json_is_string(c) && (n = scrub_string(x, c, own))) {
                json_object_set_new(v, k, n);
                changed = true;
            } else if (!json_is_string(c)) {
                changed = scrub(x, c, own) || changed;
            }
        }
    }
    return changed;
}

/* Notes the string @p v of field @p f as erased: nulled where it appears whole in the record's
 * events, and cut out of any event when it is an identifier (email, phone, url). */
static void note_value(erase_t *x, const rp__field_t *f, json_t *v)
{
    if (!json_is_string(v) || !json_string_length(v))
        return;
    add_unique(x->whole, v);
    if ((f->type == RP_T_EMAIL || f->type == RP_T_PHONE || f->type == RP_T_URL) &&
        json_string_length(v) >= 5)
        add_unique(x->parts, v);
}

/* Notes every personal value one event payload holds (an earlier email, a purged record's
 * last values). */
static void note_payload(erase_t *x, const rp__entity_t *e, json_t *changes)
{
    for (int i = 0; i < e->nfields; i++) {
        json_t *v = e->fields[i].personal ? json_object_get(changes, e->fields[i].name) : NULL;
        if (json_is_array(v))
            for (size_t j = 0; j < json_array_size(v); j++)
                note_value(x, &e->fields[i], json_array_get(v, j));
        else if (v)
            note_value(x, &e->fields[i], v);
    }
}

/* Empties the personal keys of one event payload {field: [old, new]} or {field: value}: each
 * value (or each member of the pair) becomes null, the key stays. */
static bool null_personal(const rp__entity_t *e, json_t *changes)
{
    bool changed = false;
    for (int i = 0; i < e->nfields; i++) {
        if (!e->fields[i].personal)
            continue;
        json_t *v = json_object_get(changes, e->fields[i].name);
        if (!v || json_is_null(v))
            continue;
        if (json_is_array(v)) {
            for (size_t j = 0; j < json_array_size(v); j++) {
                changed = changed || !json_is_null(json_array_get(v, j));
                json_array_set_new(v, j, json_null());
            }
        } else {
            json_object_set_new(changes, e->fields[i].name, json_null());
            changed = true;
        }
    }
    return changed;
}

/* Reads the seq and payload of the events chosen by @p st (bound) into an array of [seq,
 * payload] pairs: read first, rewritten after, so no write runs under the SELECT. */
static int read_events(rp_store_t *s, rp_db_stmt_t *st, json_t **out, rp_error_t *err)
{
    json_t *rows = json_array();
    int rc;
    while ((rc = rp_db_step(st)) == RP_DB_ROW) {
        json_t *changes = json_loads(rp_db_col_text(st, 1), 0, NULL);
        if (changes)
            json_array_append_new(rows, json_pack("[Io]", (json_int_t)rp_db_col_int(st, 0),
                                                  changes));
    }
    rp_db_reset(st);
    if (rc != RP_DB_DONE) {
        json_decref(rows);
        return rp__dberr(s, rc, "cannot read the event log", err);
    }
    *out = rows;
    return 0;
}

static int write_event(rp_store_t *s, int64_t seq, json_t *changes, rp_error_t *err)
{
    rp_db_stmt_t *st = rp__stmt(s, "UPDATE rp_events SET changes = ? WHERE seq = ?", err);
    char *text = json_dumps(changes, JSON_COMPACT);
    if (!st || !text) {
        free(text);
        return st ? rp_error_set(err, RP_ENOMEM, 0, "out of memory") : err ? err->code : RP_EIO;
    }
    rp_db_bind_text_owned(st, 1, text, -1);
    rp_db_bind_int(st, 2, seq);
    return rp__step_done(s, st, "cannot rewrite an event", err);
}

/* Rewrites the events of record @p id of @p e: personal keys nulled, erased values gone. */
static int erase_events(erase_t *x, rp__entity_t *e, int64_t id, rp_error_t *err)
{
    rp_store_t *s = x->s;
    rp_db_stmt_t *st = rp__stmt(s, "SELECT seq, changes FROM rp_events"
                                   " WHERE entity = ? AND record_id = ? ORDER BY seq", err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_text(st, 1, e->name, -1);
    rp_db_bind_int(st, 2, id);
    json_t *rows;
    int rc = read_events(s, st, &rows, err);
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
        note_payload(x, e, json_array_get(r, 1));
    json_array_foreach(rows, i, r) {
        if (rc)
            break;
        json_t *changes = json_array_get(r, 1);
        bool a = null_personal(e, changes);
        bool b = scrub(x, changes, true);
        if (a || b) {
            rc = write_event(s, json_integer_value(json_array_get(r, 0)), changes, err);
            x->events++;
        }
    }
    json_decref(rows);
    return rc;
}

/* The events of other records that still name an erased identifier (an email copied into a
 * custom event's payload): those identifiers are cut out there too. */
static int erase_elsewhere(erase_t *x, rp_error_t *err)
{
    size_t i;
    json_t *w;
    int rc = 0;
    json_array_foreach(x->parts, i, w) {
        /* The needle as the payload's JSON text spells it (escapes included). */
        char *enc = json_dumps(w, JSON_ENCODE_ANY | JSON_COMPACT);
        if (!enc)
            return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        rp_db_stmt_t *st = rp__stmt(x->s, "SELECT seq, changes FROM rp_events"
                                          " WHERE instr(changes, ?) > 0", err);
        if (!st) {
            free(enc);
            return err ? err->code : RP_EIO;
        }
        size_t n = strlen(enc);
        rp_db_bind_text_copy(st, 1, enc + 1, (int)(n - 2));
        free(enc);
        json_t *rows;
        if ((rc = read_events(x->s, st, &rows, err)))
            return rc;
        size_t j;
        json_t *r;
        json_array_foreach(rows, j, r) {
            if (rc)
                break;
            if (scrub(x, json_array_get(r, 1), false)) {
                rc = write_event(x->s, json_integer_value(json_array_get(r, 0)),
                                 json_array_get(r, 1), err);
                x->others++;
            }
        }
        json_decref(rows);
        if (rc)
            return rc;
    }
    return 0;
}

/* Empties the personal fields of record @p rec (as loaded; NULL when purged) of @p e, its
 * search text and its events. *@p fields (may be NULL) receives the names of the fields that
 * held a value. */
static int erase_record(erase_t *x, rp__entity_t *e, int64_t id, json_t *rec, json_t *fields,
                        const rp_ctx_t *ctx, bool *changed, rp_error_t *err)
{
    int64_t events_before = x->events;
    rp_store_t *s = x->s;
    int rc = 0, n = 0;
    bool research = false;
    char *sql = NULL;
    size_t cap = 160 + (size_t)e->nfields * 56, len;
    for (int i = 0; rec && i < e->nfields; i++) {
        rp__field_t *f = &e->fields[i];
        json_t *v = json_object_get(rec, f->name);
        if (!f->personal || !v || json_is_null(v))
            continue;
        note_value(x, f, v);
        if (fields)
            json_array_append_new(fields, json_string(f->name));
        research = research || f->searchable;
        n++;
    }
    if (n) {
        if (!(sql = malloc(cap)))
            return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        len = (size_t)snprintf(sql, cap, "UPDATE \"%s\" SET updated_at = ?, updated_by = ?,"
                                         " version = version + 1", e->name);
        for (int i = 0; i < e->nfields; i++)
            if (e->fields[i].personal && !json_is_null(json_object_get(rec, e->fields[i].name)))
                len += (size_t)snprintf(sql + len, cap - len, ", \"%s\" = NULL",
                                        e->fields[i].name);
        snprintf(sql + len, cap - len, " WHERE id = ?");
        rp_db_stmt_t *st = rp__stmt(s, sql, err);
        free(sql);
        if (!st)
            return err ? err->code : RP_EIO;
        char now[32];
        rp__fmt_time(rp_store_now(s), now);
        rp_db_bind_text_copy(st, 1, now, -1);
        rp_db_bind_text(st, 2, rp__actor_of(ctx), -1);
        rp_db_bind_int(st, 3, id);
        if ((rc = rp__step_done(s, st, "cannot erase the record", err)))
            return rc;
        for (int i = 0; i < e->nfields; i++)
            if (e->fields[i].personal)
                json_object_set_new(rec, e->fields[i].name, json_null());
    }
    if (research && (rc = rp__fts_drop(s, e, id, err)))
        return rc;
    if (research && json_is_null(json_object_get(rec, "deleted_at")) &&
        (rc = rp__fts_put(s, e, id, rec, err)))
        return rc;
    if ((rc = erase_events(x, e, id, err)))
        return rc;
    *changed = n > 0 || x->events > events_before;
    return 0;
}

/* Erases the records that refer to the subject through a ref field, when their entity has
 * personal fields: an order's delivery address, an interaction's text are the subject's too. */
static int erase_referring(erase_t *x, rp__entity_t *subject, int64_t id, const rp_ctx_t *ctx,
                           rp_error_t *err)
{
    rp_store_t *s = x->s;
    for (int i = 0; i < s->nents; i++) {
        rp__entity_t *e = s->ents[i];
        if (!has_personal(e) || e == subject)
            continue;
        for (int j = 0; j < e->nfields; j++) {
            rp__field_t *f = &e->fields[j];
            if (f->type != RP_T_REF || strcmp(f->ref, subject->name) != 0)
                continue;
            char sql[200];
            snprintf(sql, sizeof sql, "SELECT id FROM \"%s\" WHERE \"%s\" = ? ORDER BY id",
                     e->name, f->name);
            rp_db_stmt_t *st = rp__stmt(s, sql, err);
            if (!st)
                return err ? err->code : RP_EIO;
            rp_db_bind_int(st, 1, id);
            json_t *ids = json_array();
            int rc;
            while ((rc = rp_db_step(st)) == RP_DB_ROW)
                json_array_append_new(ids, json_integer(rp_db_col_int(st, 0)));
            rp_db_reset(st);
            rc = rc == RP_DB_DONE ? 0 : rp__dberr(s, rc, "cannot find referring records", err);
            size_t k;
            json_t *v;
            json_array_foreach(ids, k, v) {
                json_t *rec = NULL;
                bool changed = false;
                if (!rc && !(rc = rp__record_load(s, e, json_integer_value(v), NULL, &rec, err)))
                    rc = erase_record(x, e, json_integer_value(v), rec, NULL, ctx, &changed,
                                      err);
                json_decref(rec);
                if (!rc && changed) {
                    json_t *had = json_object_get(x->records, e->name);
                    if (!had)
                        json_object_set_new(x->records, e->name, had = json_array());
                    json_array_append(had, v);
                }
            }
            json_decref(ids);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* Whether any event names record @p id of @p e (a purged record is known by its events). */
static int has_events(rp_store_t *s, rp__entity_t *e, int64_t id, bool *out, rp_error_t *err)
{
    rp_db_stmt_t *st = rp__stmt(s, "SELECT 1 FROM rp_events WHERE entity = ? AND record_id = ?"
                                   " LIMIT 1", err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_text(st, 1, e->name, -1);
    rp_db_bind_int(st, 2, id);
    int rc = rp_db_step(st);
    rp_db_reset(st);
    *out = rc == RP_DB_ROW;
    return rc == RP_DB_ROW || rc == RP_DB_DONE ? 0 : rp__dberr(s, rc, "cannot read events", err);
}

/* The erasure proper, in the open transaction. */
static int erase_all(erase_t *x, rp__entity_t *e, int64_t id, const char *reason,
                     const rp_ctx_t *ctx, json_t *result, rp_error_t *err)
{
    rp_store_t *s = x->s;
    json_t *rec = NULL, *fields = json_array();
    int rc = rp__record_load(s, e, id, NULL, &rec, err);
    if (rc == RP_ENOTFOUND) {
        bool any = false;
        if ((rc = has_events(s, e, id, &any, err)))
            goto out;
        if (!any) {
            rc = rp_error_set(err, RP_ENOTFOUND, RP_C_NO_RECORD,
                              "%s %lld not found (no record and no event names it)", e->name,
                              (long long)id);
            goto out;
        }
    } else if (rc) {
        goto out;
    }
    if (rec && rp__hooks_any(s, e, RP_ACT_ERASE)) {
        json_t *batch = json_pack("[{}]");
        size_t failed;
        rc = rp__hooks_run(s, e, RP_ACT_ERASE, batch, &id, &rec, ctx, &failed, err);
        json_decref(batch);
        if (rc)
            goto out;
    }
    bool changed = false;
    if ((rc = erase_record(x, e, id, rec, fields, ctx, &changed, err)))
        goto out;
    if (rec && (rc = erase_referring(x, e, id, ctx, err)))
        goto out;
    if ((rc = erase_elsewhere(x, err)))
        goto out;
    bool any = json_array_size(fields) || x->events || x->others || json_object_size(x->records);
    json_object_set_new(result, "erased", json_boolean(any));
    json_object_set(result, "fields", fields);
    json_object_set(result, "records", x->records);
    json_object_set_new(result, "events", json_integer(x->events));
    json_object_set_new(result, "other_events", json_integer(x->others));
    if (!any)
        goto out;
    /* Merging the search index's segments is what takes the erased words out of its pages: a
     * delete alone only adds a tombstone beside them (SQLite before 3.42 has no secure-delete
     * for FTS5). */
    if ((rc = rp__fts_flush(s, err)) ||
        (rc = rp__exec(s, "INSERT INTO rp_search(rp_search) VALUES('optimize')", err)))
        goto out;
    json_t *desc = json_pack("{s:O,s:O,s:I,s:I}", "fields", fields, "records", x->records,
                             "events", (json_int_t)x->events, "other_events",
                             (json_int_t)x->others);
    json_object_set_new(desc, "reason", reason ? json_string(reason) : json_null());
    char type[80];
    snprintf(type, sizeof type, "%s.erased", e->name);
    rc = rp__event_append(s, ctx, type, e->name, id, desc, NULL, err);
    json_decref(desc);
out:
    json_decref(rec);
    json_decref(fields);
    return rc;
}

/* The value of PRAGMA secure_delete, or -1. */
static int secure_delete(rp_store_t *s, int set)
{
    char sql[40];
    snprintf(sql, sizeof sql, set < 0 ? "PRAGMA secure_delete" : "PRAGMA secure_delete = %d",
             set);
    rp_db_stmt_t *st = rp_db_prepare(s->db, sql, NULL);
    if (!st)
        return -1;
    int v = rp_db_step(st) == RP_DB_ROW ? (int)rp_db_col_int(st, 0) : -1;
    rp_db_finalize(st);
    return v;
}

int rp_store_erase(rp_store_t *s, const rp_ctx_t *ctx, const char *entity, int64_t id,
                   const char *reason, json_t **result, rp_error_t *err)
{
    if (result)
        *result = NULL;
    if (ctx && ctx->access)
        return rp_error_set(err, RP_EPERM, RP_C_DENIED,
                            "erase %s %lld: user \"%s\" (role \"%s\") may not erase personal "
                            "data; the installation does, with `rapport erase` or its own scripts",
                            entity ? entity : "(null)", (long long)id,
                            rp__access_user(ctx->access), rp__access_role(ctx->access));
    rp__entity_t *e = rp__entity_req(s, entity, err);
    if (!e)
        return err ? err->code : RP_ENOTFOUND;
    if (!has_personal(e))
        return rp_error_set(err, RP_EINVAL, RP_C_BAD_SPEC,
                            "erase %s %lld: %s has no personal field (mark them with "
                            "\"personal\": true in its specification)",
                            e->name, (long long)id, e->name);
    if (id <= 0)
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE, "erase %s: id must be positive (got %lld)",
                            e->name, (long long)id);
    if (reason && strlen(reason) > 1000)
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE,
                            "erase %s %lld: the reason is %zu bytes long (at most 1000)", e->name,
                            (long long)id, strlen(reason));
    /* Freed and rewritten cells are zeroed, so the erased bytes do not linger in free space. */
    int was = secure_delete(s, -1);
    secure_delete(s, 1);
    erase_t x = {.s = s, .whole = json_array(), .parts = json_array(), .records = json_object()};
    json_t *res = json_pack("{s:s,s:I}", "entity", e->name, "id", (json_int_t)id);
    int rc = x.whole && x.parts && x.records && res
                 ? rp_store_begin(s, err)
                 : rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    if (!rc) {
        /* Looked up again: opening the transaction may have read the registry back. */
        rc = (e = rp__entity_req(s, entity, err)) ? erase_all(&x, e, id, reason, ctx, res, err)
                                                  : (err ? err->code : RP_ENOTFOUND);
        if (rc)
            rp_store_rollback(s, NULL);
        else
            rc = rp_store_commit(s, err);
    }
    if (was >= 0)
        secure_delete(s, was);
    json_decref(x.whole);
    json_decref(x.parts);
    json_decref(x.records);
    if (!rc && result)
        *result = res;
    else
        json_decref(res);
    return rc;
}
