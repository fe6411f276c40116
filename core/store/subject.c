/*
 * subject.c — everything the engine holds about one record, as one JSON document: the record,
 * the records that refer to it (and those that refer to them), and the events of all of them.
 * What a "download my data" page serves; read through the caller's access like any read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* A cap on the records one document gathers, so a subject with a vast history cannot make a
 * read without end; the document says when it was reached. */
#define SUBJECT_MAX_RECORDS 50000

typedef struct subject {
    rp_store_t *s;
    const rp_ctx_t *ctx;
    json_t *related; /* {entity: [records]} */
    json_t *events;  /* [events] in sequence order per record */
    int64_t count;
    bool truncated;
} subject_t;

/* The records of @p entity whose ref field @p field names @p id, every page of them, appended
 * to the document's list for @p entity; their ids into @p ids. */
static int gather(subject_t *x, const char *entity, const char *field, int64_t id, json_t *ids,
                  rp_error_t *err)
{
    json_t *where = json_pack("{sI}", field, (json_int_t)id);
    json_t *list = json_object_get(x->related, entity);
    char *after = NULL;
    int rc = 0;
    do {
        rp_query_t q = {.entity = entity, .where = where, .limit = 1000, .after = after,
                        .with_deleted = true, .access = x->ctx ? x->ctx->access : NULL};
        json_t *page = NULL;
        char *next = NULL;
        rc = rp_store_find(x->s, &q, &page, &next, err);
        free(after);
        after = next;
        size_t i;
        json_t *r;
        json_array_foreach(page, i, r) {
            if (x->count >= SUBJECT_MAX_RECORDS) {
                x->truncated = true;
                break;
            }
            if (!list)
                json_object_set_new(x->related, entity, list = json_array());
            json_array_append(list, r);
            json_array_append_new(ids, json_copy(json_object_get(r, "id")));
            x->count++;
        }
        json_decref(page);
    } while (!rc && after && !x->truncated);
    free(after);
    json_decref(where);
    return rc;
}

/* The ref fields that point at @p target and that the caller may read, as [entity, field]
 * pairs: taken as names first, since a read may reload the registry under its pointers. */
static json_t *refs_to(subject_t *x, const char *target, const char *skip, int depth)
{
    json_t *out = json_array();
    const rp_access_t *a = x->ctx ? x->ctx->access : NULL;
    for (int i = 0; i < x->s->nents; i++) {
        rp__entity_t *e = x->s->ents[i];
        if ((skip && strcmp(e->name, skip) == 0) ||
            (strcmp(e->name, target) == 0 && depth < 2) ||
            rp__access_scope(a, e->name, RP_PERM_READ) == RP_SCOPE_NONE)
            continue;
        for (int j = 0; j < e->nfields; j++) {
            rp__field_t *f = &e->fields[j];
            if (f->type == RP_T_REF && strcmp(f->ref, target) == 0 &&
                !rp__access_hidden(a, e->name, f->name))
                json_array_append_new(out, json_pack("[ss]", e->name, f->name));
        }
    }
    return out;
}

/* The records that refer to record @p id of @p target through any ref field, and (when
 * @p depth allows) those that refer to them; @p skip is the entity one level up, not walked
 * back into. */
static int walk(subject_t *x, const char *target, int64_t id, const char *skip, int depth,
                rp_error_t *err)
{
    json_t *refs = refs_to(x, target, skip, depth);
    size_t i;
    json_t *r;
    int rc = 0;
    json_array_foreach(refs, i, r) {
        if (rc || x->truncated)
            break;
        const char *ename = json_string_value(json_array_get(r, 0));
        json_t *ids = json_array();
        rc = gather(x, ename, json_string_value(json_array_get(r, 1)), id, ids, err);
        size_t k;
        json_t *v;
        json_array_foreach(ids, k, v) {
            if (!rc && depth > 1)
                rc = walk(x, ename, json_integer_value(v), target, depth - 1, err);
        }
        json_decref(ids);
    }
    json_decref(refs);
    return rc;
}

/* Appends the events of record @p id of @p e, with the fields hidden from the caller left out
 * of their changes. */
static int events_of(subject_t *x, const char *entity, int64_t id, rp_error_t *err)
{
    rp_db_stmt_t *st = rp__stmt(x->s, "SELECT seq, type, actor, origin, at, changes"
                                      " FROM rp_events WHERE entity = ? AND record_id = ?"
                                      " ORDER BY seq", err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_text(st, 1, entity, -1);
    rp_db_bind_int(st, 2, id);
    int rc;
    while ((rc = rp_db_step(st)) == RP_DB_ROW) {
        char at[32];
        rp__fmt_time(rp_db_col_int(st, 4), at);
        json_t *changes = json_loads(rp_db_col_text(st, 5), 0, NULL);
        if (!changes)
            changes = json_object();
        rp__access_redact(x->ctx ? x->ctx->access : NULL, entity, changes);
        json_t *ev = json_pack("{sI,ss,ss,sI,ss,ss,ss,so}", "seq",
                               (json_int_t)rp_db_col_int(st, 0), "type", rp_db_col_text(st, 1),
                               "entity", entity, "record_id", (json_int_t)id, "actor",
                               rp_db_col_text(st, 2), "origin", rp_db_col_text(st, 3), "at", at,
                               "changes", changes);
        rp__access_actor(x->ctx ? x->ctx->access : NULL, ev, "actor");
        json_array_append_new(x->events, ev);
    }
    rp_db_reset(st);
    return rc == RP_DB_DONE ? 0 : rp__dberr(x->s, rc, "cannot read the event log", err);
}

static int by_seq(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "seq"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "seq"));
    return (x > y) - (x < y);
}

/* The events in the order they happened, whichever record they are about. */
static json_t *in_order(json_t *events)
{
    size_t n = json_array_size(events);
    json_t **v = malloc((n ? n : 1) * sizeof *v), *out = json_array();
    if (!v || !out) {
        free(v);
        json_decref(out);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(events, i);
    qsort(v, n, sizeof *v, by_seq);
    for (size_t i = 0; i < n; i++)
        json_array_append(out, v[i]);
    free(v);
    return out;
}

int rp_store_subject(rp_store_t *s, const rp_ctx_t *ctx, const char *entity, int64_t id,
                     json_t **out, rp_error_t *err)
{
    *out = NULL;
    rp__entity_t *e = rp__entity_req(s, entity, err);
    if (!e)
        return err ? err->code : RP_ENOTFOUND;
    json_t *rec = NULL;
    int rc = rp_store_get_as(s, ctx, e->name, id, &rec, err);
    if (rc)
        return rc;
    subject_t x = {.s = s, .ctx = ctx, .related = json_object(), .events = json_array()};
    if (!x.related || !x.events) {
        rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        goto out;
    }
    if ((rc = walk(&x, entity, id, NULL, 2, err)))
        goto out;
    if ((rc = events_of(&x, entity, id, err)))
        goto out;
    const char *name;
    json_t *list;
    json_object_foreach(x.related, name, list) {
        size_t i;
        json_t *r;
        json_array_foreach(list, i, r) {
            if (!rc)
                rc = events_of(&x, name, json_integer_value(json_object_get(r, "id")), err);
        }
    }
    json_t *sorted = rc ? NULL : in_order(x.events);
    if (!rc && !sorted)
        rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    if (rc)
        goto out;
    json_decref(x.events);
    x.events = sorted;
    char now[32];
    rp__fmt_time(rp_store_now(s), now);
    *out = json_pack("{ss,ss,sI,sO,sO,sO,sb}", "exported_at", now, "entity", entity, "id",
                     (json_int_t)id, "record", rec, "related", x.related, "events", x.events,
                     "truncated", x.truncated);
out:
    json_decref(rec);
    json_decref(x.related);
    json_decref(x.events);
    return rc;
}
