/*
 * handlers.c — the HTTP API's routes on records: list, create, read, patch, delete, restore,
 * bulk, history, explain, search, health, and a plugin's own routes.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <h2o.h>
#include <uv.h>

#include "rapport/access.h"
#include "rapport/auth.h"
#include "rapport/events.h"
#include "rapport/http.h"
#include "rapport/jsontext.h"

#include "http_internal.h"

#define MAX_FIELDS 64

/* ---- the handlers --------------------------------------------------------------------- */

static void wrote(call_t *c)
{
    rp_sched_kick(c->h->e);
}

/* The typed value of filter text @p v for field @p name of @p fields (the entity's schema). */
static json_t *typed_value(rp_store_t *s, const char *entity, const char *name, const char *v)
{
    int type = RP_T_TEXT;
    if (rp_store_field_type(s, entity, name, &type) &&
        (type == RP_T_INTEGER || type == RP_T_REF || type == RP_T_REAL || type == RP_T_BOOLEAN)) {
        json_t *j = json_loads(v, JSON_DECODE_ANY, NULL);
        if (j && (json_is_number(j) || json_is_boolean(j)))
            return j;
        json_decref(j);
    }
    if (strcmp(v, "null") == 0)
        return json_null();
    return json_string(v);
}

/* The filter of a read: the JSON of ?where= and every other parameter not in @p reserved as
 * field=value (typed by the entity's schema). 0 with *out (owned, NULL for none), or the
 * problem already answered. */
static int query_where(call_t *c, const char *entity, const char *const *reserved, json_t **out)
{
    *out = NULL;
    rp_error_t err = {0};
    if (!rp_store_has_entity(c->h->s, entity)) {
        /* Not known here: defined by another process since (the schema reads it again), or
         * not at all (its problem answered). */
        json_t *schema = rp_store_schema(c->h->s, entity, &err);
        if (!schema) {
            rp__http_store_problem(c, &err, true);
            return -1;
        }
        json_decref(schema);
    }
    json_t *where = json_object();
    const char *wtext = rp__http_param(c, "where");
    if (wtext) {
        json_error_t je;
        json_t *w = json_loads(wtext, 0, &je);
        if (!json_is_object(w)) {
            json_decref(w);
            json_decref(where);
            rp__http_problemf(c, 400, "where",
                              "where must be a JSON object filter (column %d: %s)", je.column,
                              w ? "not an object" : je.text);
            return -1;
        }
        json_object_update(where, w);
        json_decref(w);
    }
    const char *k;
    json_t *v;
    json_object_foreach(c->params, k, v) {
        bool skip = strcmp(k, "where") == 0;
        for (int i = 0; reserved[i]; i++)
            skip |= strcmp(k, reserved[i]) == 0;
        if (!skip)
            json_object_set_new(where, k, typed_value(c->h->s, entity, k, json_string_value(v)));
    }
    if (json_object_size(where))
        *out = where;
    else
        json_decref(where);
    return 0;
}

static int with_deleted(call_t *c, bool *out)
{
    const char *wd = rp__http_param(c, "with_deleted");
    if (wd && strcmp(wd, "true") && strcmp(wd, "false")) {
        rp__http_problem(c, 400, "with_deleted must be true or false", "with_deleted");
        return -1;
    }
    *out = wd && strcmp(wd, "true") == 0;
    return 0;
}

int rp__http_list(call_t *c, const char *entity)
{
    rp_query_t q = {.entity = entity, .limit = 50, .access = c->access};
    if (rp__http_param_int(c, "limit", 1000, &q.limit))
        return 0;
    q.after = rp__http_param(c, "after");
    q.order = rp__http_param(c, "order");
    if (with_deleted(c, &q.with_deleted))
        return 0;
    static const char *const reserved[] = {"limit", "after", "order", "fields", "with_deleted",
                                           NULL};
    json_t *where = NULL;
    if (query_where(c, entity, reserved, &where))
        return 0;
    char *fbuf = NULL;
    const char *flist[MAX_FIELDS + 1];
    const char *ftext = rp__http_param(c, "fields");
    if (ftext) {
        fbuf = strdup(ftext);
        int n = 0;
        for (char *save = NULL, *t = strtok_r(fbuf, ",", &save); t;
             t = strtok_r(NULL, ",", &save)) {
            if (n == MAX_FIELDS)
                break;
            flist[n++] = t;
        }
        flist[n] = NULL;
        q.fields = flist;
    }
    q.where = where;
    /* The page is written straight from the rows: {"data": [...], "next": cursor-or-null}. */
    rp_jtext_t page = {0};
    rp_jt_lit(&page, "{\"data\":");
    char *next = NULL;
    rp_error_t err = {0};
    int rc = rp_store_find_text(c->h->s, &q, &page, &next, &err);
    free(fbuf);
    json_decref(where);
    if (rc) {
        rp_jt_free(&page);
        free(next);
        return rp__http_store_problem(c, &err, true);
    }
    rp_jt_lit(&page, ",\"next\":");
    if (next)
        rp_jt_str(&page, next, strlen(next));
    else
        rp_jt_lit(&page, "null");
    rp_jt_lit(&page, "}");
    free(next);
    size_t n = 0;
    char *body = rp_jt_take(&page, &n);
    if (!body)
        return rp__http_problem(c, 500, "out of memory", NULL);
    return rp__http_send_owned(c, 200, "application/json", body, n);
}

/* Splits the comma list @p text (copied into @p buf) into @p out, NULL-terminated; more than
 * @p max items keeps max + 1, so the store names its cap. */
static void split_list(const char *text, char *buf, size_t cap, const char **out, int max)
{
    int n = 0;
    out[0] = NULL;
    if (!text)
        return;
    snprintf(buf, cap, "%s", text);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t && n <= max;
         t = strtok_r(NULL, ",", &save))
        out[n++] = t;
    out[n] = NULL;
}

int rp__http_aggregate(call_t *c, const char *entity)
{
    rp_aggregate_t q = {.entity = entity, .limit = 1000, .access = c->access};
    const char *off = rp__http_param(c, "offset");
    if (rp__http_param_int(c, "limit", 10000, &q.limit) ||
        (off && strcmp(off, "0") && rp__http_param_int(c, "offset", INT64_MAX, &q.offset)) ||
        with_deleted(c, &q.with_deleted))
        return 0;
    q.order = rp__http_param(c, "order");
    q.zone = rp__http_param(c, "zone");
    static const char *const reserved[] = {"limit", "offset", "order", "zone", "group_by",
                                           "measures", "with_deleted", NULL};
    char gbuf[1024], mbuf[2048];
    const char *groups[RP_AGG_MAX_GROUPS + 2], *measures[RP_AGG_MAX_MEASURES + 2];
    split_list(rp__http_param(c, "group_by"), gbuf, sizeof gbuf, groups, RP_AGG_MAX_GROUPS);
    split_list(rp__http_param(c, "measures"), mbuf, sizeof mbuf, measures,
               RP_AGG_MAX_MEASURES);
    q.group_by = groups;
    q.measures = measures;
    json_t *where = NULL;
    if (query_where(c, entity, reserved, &where))
        return 0;
    q.where = where;
    json_t *rows = NULL;
    rp_error_t err = {0};
    int rc = rp_store_aggregate(c->h->s, &q, &rows, &err);
    json_decref(where);
    if (rc)
        return rp__http_store_problem(c, &err, true);
    return rp__http_send_page(c, rows, NULL);
}

int rp__http_create(call_t *c, const char *entity)
{
    json_t *body = rp__http_body(c);
    if (!body)
        return 0;
    rp_error_t err = {0};
    json_t *rec = NULL;
    int rc = rp_store_create_record(c->h->s, &c->ctx, entity, body, &rec, &err);
    json_decref(body);
    if (rc)
        return rp__http_store_problem(c, &err, false);
    wrote(c);
    char loc[160];
    snprintf(loc, sizeof loc, "/api/v1/%s/%" JSON_INTEGER_FORMAT, entity,
             json_integer_value(json_object_get(rec, "id")));
    rp__http_add_header(c, H2O_TOKEN_LOCATION, loc);
    return rp__http_send_record(c, 201, rec);
}

/* Keeps only the fields the "fields" parameter names (and id, version). Returns the first
 * name that is not a field of @p rec, or NULL. */
static const char *select_fields(call_t *c, json_t *rec)
{
    const char *ftext = rp__http_param(c, "fields");
    if (!ftext || !json_is_object(rec))
        return NULL;
    static char unknown[64];
    for (const char *t = ftext; *t;) {
        size_t n = strcspn(t, ",");
        snprintf(unknown, sizeof unknown, "%.*s", (int)(n < 63 ? n : 63), t);
        if (n && !json_object_get(rec, unknown))
            return unknown;
        t += n + (t[n] == ',');
    }
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(rec, tmp, k, v) {
        size_t n = strlen(k);
        bool keep = !strcmp(k, "id") || !strcmp(k, "version");
        for (const char *q = ftext; !keep && (q = strstr(q, k)); q += n)
            keep = (q == ftext || q[-1] == ',') && (q[n] == ',' || q[n] == '\0');
        if (!keep)
            json_object_del(rec, k);
    }
    return NULL;
}

int rp__http_get(call_t *c, const char *entity, int64_t id)
{
    rp_error_t err = {0};
    json_t *rec = NULL;
    const char *ftext = rp__http_param(c, "fields");
    if (ftext && c->access) {
        /* As a list does: a hidden field named in "fields" is refused, not passed over. */
        char *buf = strdup(ftext);
        for (char *save = NULL, *t = buf ? strtok_r(buf, ",", &save) : NULL; t;
             t = strtok_r(NULL, ",", &save))
            if (rp_access_hidden(c->access, entity, t)) {
                rp_error_set(&err, RP_EPERM, RP_C_DENIED, "role %s may not read %s.%s: it is "
                             "hidden (missing: read %s.%s)", rp_access_role(c->access), entity,
                             t, entity, t);
                rp_error_field(&err, t, 0);
                free(buf);
                return rp__http_store_problem(c, &err, true);
            }
        free(buf);
    }
    if (rp_store_get_as(c->h->s, &c->ctx, entity, id, &rec, &err))
        return rp__http_store_problem(c, &err, false);
    const char *unknown = select_fields(c, rec);
    if (unknown) {
        json_decref(rec);
        return rp__http_problemf(c, 400, unknown, "unknown field \"%s\" on %s", unknown, entity);
    }
    return rp__http_send_record(c, 200, rec);
}

/* The version an If-Match header asks for: 0 when absent or "*" (any version will do),
 * -1 when it was answered (400 malformed; 412 for a weak tag, which If-Match never matches). */
static int64_t if_match(call_t *c)
{
    const char *v = rp__http_header(c, H2O_TOKEN_IF_MATCH);
    if (!v || strcmp(v, "*") == 0)
        return 0;
    if (strncmp(v, "W/", 2) == 0) {
        rp__http_problemf(c, 412, NULL,
                          "If-Match compares strongly: a weak tag (%s) never matches; send "
                          "the ETag as given (\"3\")",
                          v);
        return -1;
    }
    char *endp;
    long long n = strtoll(v + (*v == '"'), &endp, 10);
    if (n < 1 || (*v == '"' ? strcmp(endp, "\"") != 0 : *endp != '\0')) {
        rp__http_problemf(c, 400, NULL,
                          "If-Match must be the record's version as its ETag gives it "
                          "(\"3\"), not %s",
                          v);
        return -1;
    }
    return n;
}

/* For DELETE and restore, which the store does not version: 0 when If-Match is absent or
 * matches the record as it is now (in the same transaction as the write that follows); -1
 * when it was answered (412, or 404). */
static int check_if_match(call_t *c, const char *entity, int64_t id)
{
    int64_t expect = if_match(c);
    if (expect <= 0)
        return (int)expect;
    rp_error_t err = {0};
    json_t *rec = NULL;
    if (rp_store_get_as(c->h->s, &c->ctx, entity, id, &rec, &err))
        return rp__http_store_problem(c, &err, false) - 1;
    int64_t have = json_integer_value(json_object_get(rec, "version"));
    json_decref(rec);
    if (have == expect)
        return 0;
    return rp__http_problemf(c, 412, NULL,
                             "%s %" PRId64 ": version %" PRId64 " was read but the record "
                             "is now at version %" PRId64 "; read it again",
                             entity, id, expect, have) -
           1;
}

/* Whether the caller may read record @p id now. */
static bool readable(call_t *c, const char *entity, int64_t id)
{
    json_t *rec = NULL;
    bool ok = rp_store_get_as(c->h->s, &c->ctx, entity, id, &rec, NULL) == 0;
    json_decref(rec);
    return ok;
}

/* The record as a write left it, for its writer, without the fields hidden from them: whole
 * when they could read it before the write (@p could_read) or can after it (handing one's
 * record to another team still answers with what was written); else only its id and version,
 * so that a write the role allows is not a way to read what it does not. */
static int send_written(call_t *c, const char *entity, int64_t id, bool could_read)
{
    rp_error_t err = {0};
    json_t *rec = NULL;
    if (rp_store_get(c->h->s, entity, id, &rec, &err))
        return rp__http_store_problem(c, &err, false);
    if (!could_read && !readable(c, entity, id)) {
        json_t *small = json_pack("{s:O,s:O}", "id", json_object_get(rec, "id"), "version",
                                  json_object_get(rec, "version"));
        json_decref(rec);
        rec = small;
    }
    rp_access_redact(c->access, entity, rec);
    return rp__http_send_record(c, 200, rec);
}

int rp__http_patch(call_t *c, const char *entity, int64_t id)
{
    int64_t expect = if_match(c);
    if (expect < 0)
        return 0;
    json_t *body = rp__http_body(c);
    if (!body)
        return 0;
    rp_error_t err = {0};
    bool could_read = c->access ? readable(c, entity, id) : true;
    int rc = rp_store_update(c->h->s, &c->ctx, entity, id, body, expect, NULL, &err);
    json_decref(body);
    if (rc)
        return rp__http_store_problem(c, &err, false);
    wrote(c);
    return send_written(c, entity, id, could_read);
}

int rp__http_delete(call_t *c, const char *entity, int64_t id)
{
    if (check_if_match(c, entity, id))
        return 0;
    rp_error_t err = {0};
    if (rp_store_delete(c->h->s, &c->ctx, entity, id, &err))
        return rp__http_store_problem(c, &err, false);
    wrote(c);
    return rp__http_send_body(c, 204, NULL, "", 0);
}

int rp__http_restore(call_t *c, const char *entity, int64_t id)
{
    if (check_if_match(c, entity, id))
        return 0;
    rp_error_t err = {0};
    bool could_read = c->access ? readable(c, entity, id) : true;
    if (rp_store_restore(c->h->s, &c->ctx, entity, id, &err))
        return rp__http_store_problem(c, &err, false);
    wrote(c);
    return send_written(c, entity, id, could_read);
}

/* {"create": [records], "update": [patches with id (and version)]}: all or nothing. */
int rp__http_bulk(call_t *c, const char *entity)
{
    json_t *body = rp__http_body(c);
    if (!body)
        return 0;
    json_t *cr = json_object_get(body, "create"), *up = json_object_get(body, "update");
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v) {
        if (strcmp(k, "create") && strcmp(k, "update")) {
            rp__http_problemf(c, 422, k, "a bulk body has \"create\" and \"update\" arrays, not "
                     "\"%s\"", k);
            json_decref(body); /* after: k is the body's */
            return 0;
        }
        if (!json_is_array(v)) {
            rp__http_problemf(c, 422, k, "\"%s\" must be an array", k);
            json_decref(body);
            return 0;
        }
    }
    size_t nc = json_array_size(cr);
    if (nc + json_array_size(up) > (size_t)c->h->o.max_bulk) {
        size_t n = nc + json_array_size(up);
        json_decref(body);
        return rp__http_problemf(c, 400, NULL,
                                 "RP-E%d: a bulk request of %zu records; the limit is %d "
                                 "(http.max_bulk_items): send them in several requests",
                                 RP_C_CAP, n, c->h->o.max_bulk);
    }
    if (nc + json_array_size(up) == 0) {
        json_decref(body);
        return rp__http_problem(c, 422, "a bulk body needs records in \"create\" or \"update\"",
                                NULL);
    }
    rp_store_t *s = c->h->s;
    rp_error_t err = {0};
    int64_t *ids = calloc(nc ? nc : 1, sizeof *ids);
    size_t failed = 0;
    const char *part = "create";
    int rc = ids ? rp_store_begin(s, &err) : rp_error_set(&err, RP_ENOMEM, 0, "out of memory");
    if (!rc && nc)
        rc = rp_store_create_many(s, &c->ctx, entity, cr, ids, &failed, &err);
    if (!rc && json_array_size(up)) {
        part = "update";
        rc = rp_store_update_many(s, &c->ctx, entity, up, &failed, &err);
    }
    if (!rc)
        rc = rp_store_commit(s, &err);
    else
        rp_store_rollback(s, NULL);
    if (rc) {
        json_decref(body);
        free(ids);
        /* "field" points into the body: /create/17/email. */
        char where[160];
        snprintf(where, sizeof where, "/%s/%zu%s%s", part, failed, err.field[0] ? "/" : "",
                 err.field);
        return rp__http_problem(c, rp__http_status_of(&err, false), err.msg, where);
    }
    wrote(c);
    json_t *created = json_array();
    for (size_t i = 0; i < nc; i++)
        json_array_append_new(created, json_integer(ids[i]));
    free(ids);
    json_t *out = json_pack("{s:o,s:I}", "created", created, "updated",
                            (json_int_t)json_array_size(up));
    json_decref(body);
    return rp__http_send_json(c, 200, out);
}

int rp__http_events(call_t *c, const char *entity, int64_t id)
{
    rp_error_t err = {0};
    json_t *rec = NULL;
    if (rp_store_get_as(c->h->s, &c->ctx, entity, id, &rec, &err))
        return rp__http_store_problem(c, &err, false);
    json_decref(rec);
    int64_t limit = 100, after = 0;
    if (rp__http_param_int(c, "limit", 1000, &limit))
        return 0;
    const char *a = rp__http_param(c, "after");
    if (a) {
        char *endp;
        after = strtoll(a, &endp, 10);
        if (*endp || endp == a || after < 0)
            return rp__http_problemf(c, 400, "after", "after must be an event's seq, not \"%s\"",
                                     a);
    }
    rp_event_t *evs = calloc((size_t)limit, sizeof *evs);
    if (!evs)
        return rp__http_problem(c, 500, "out of memory", NULL);
    int n = rp_events_for_record(c->h->s, entity, id, after, evs, (int)limit, &err);
    if (n < 0) {
        free(evs);
        return rp__http_store_problem(c, &err, true);
    }
    json_t *data = json_array();
    for (int i = 0; i < n; i++) {
        /* Events with big changes cost their parsing here: the budget holds over it too. */
        if (i % 8 == 7 && rp_store_over_budget(c->h->s, &err)) {
            for (int k = i; k < n; k++)
                rp_event_clear(&evs[k]);
            free(evs);
            json_decref(data);
            return rp__http_store_problem(c, &err, true);
        }
        json_t *ev = rp_event_json(&evs[i]);
        /* The user's view of it: hidden fields out of its changes. */
        if (ev && rp_access_event(c->h->s, c->access, ev, NULL) == 1)
            json_array_append_new(data, ev);
        else
            json_decref(ev);
        if (i < n - 1)
            rp_event_clear(&evs[i]);
    }
    int64_t last_seq = n ? evs[n - 1].seq : 0;
    if (n)
        rp_event_clear(&evs[n - 1]);
    char *next = NULL;
    if (n == limit && asprintf(&next, "%" PRId64, last_seq) < 0)
        next = NULL;
    free(evs);
    return rp__http_send_page(c, data, next);
}

int rp__http_explain(call_t *c, const char *entity, int64_t id, const char *field)
{
    rp_error_t err = {0};
    json_t *out = NULL;
    if (rp_events_explain_as(c->h->s, &c->ctx, entity, id, field, &out, &err))
        return rp__http_store_problem(c, &err, false);
    return rp__http_send_json(c, 200, json_pack("{s:o}", "data", out));
}

/* GET /api/v1/<entity>/<id>/subject: everything the store holds about the record, read with
 * the caller's scopes (a portal customer gets their own contact and nothing of anyone else's),
 * as a file to save: the "download my data" link. */
int rp__http_subject(call_t *c, const char *entity, int64_t id)
{
    rp_error_t err = {0};
    json_t *out = NULL;
    if (rp_store_subject(c->h->s, &c->ctx, entity, id, &out, &err))
        return rp__http_store_problem(c, &err, false);
    char disp[160];
    snprintf(disp, sizeof disp, "attachment; filename=\"%s-%" PRId64 ".json\"", entity, id);
    rp__http_add_header(c, H2O_TOKEN_CONTENT_DISPOSITION, disp);
    return rp__http_send_json(c, 200, out);
}

int rp__http_search(call_t *c)
{
    const char *q = rp__http_param(c, "q");
    if (!q || !*q)
        return rp__http_problem(c, 400,
                                "search needs q, the words to look for (/api/v1/search?q=…)", "q");
    int64_t limit = 20;
    if (rp__http_param_int(c, "limit", 1000, &limit))
        return 0;
    rp_error_t err = {0};
    json_t *out = NULL;
    if (rp_store_search_as(c->h->s, c->access, q, rp__http_param(c, "entity"), (int)limit, &out,
                           &err))
        return rp__http_store_problem(c, &err, true);
    return rp__http_send_json(c, 200, json_pack("{s:o}", "data", out));
}

/* Answered from memory, made once: a probe polling it costs no database read (the last
 * event's number it used to carry is for `rapport events` to tell). */
int rp__http_health(call_t *c)
{
    static const char body[] = "{\"status\":\"ok\",\"version\":\"" RP_VERSION "\"}";
    return rp__http_send_body(c, 200, "application/json", body, sizeof body - 1);
}

/* The record a record session acts as ("contact:42"), or NULL for a user. */
static const char *record_subject(call_t *c)
{
    const char *kind = json_string_value(json_object_get(c->who, "kind"));
    return kind && strcmp(kind, "record") == 0
               ? json_string_value(json_object_get(c->who, "principal"))
               : NULL;
}

static void reply_free(rp_http_reply_out_t *ro)
{
    free(ro->data);
    free(ro->ctype);
    free(ro->filename);
    memset(ro, 0, sizeof *ro);
}

/* A file a route answered with (api->reply_bytes), as a download that never runs: its name
 * percent-encoded (RFC 6266's filename*, so no byte of it can end the header), and a sandbox
 * policy beside the engine's own (a browser applies every policy it is given). */
static void send_file(call_t *c, const rp_http_reply_out_t *ro)
{
    static const char hex[] = "0123456789ABCDEF";
    char disp[64 + 3 * 200];
    size_t n = (size_t)snprintf(disp, sizeof disp, "attachment; filename*=UTF-8''");
    for (const unsigned char *p = (const unsigned char *)ro->filename; *p && n + 4 < sizeof disp;
         p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            strchr("!#$&+-.^_`|~", *p))
            disp[n++] = (char)*p;
        else {
            disp[n++] = '%';
            disp[n++] = hex[*p >> 4];
            disp[n++] = hex[*p & 15];
        }
    }
    disp[n] = '\0';
    rp__http_add_header(c, H2O_TOKEN_CONTENT_DISPOSITION, disp);
    h2o_add_header_by_str(&c->req->pool, &c->req->res.headers, "content-security-policy",
                          strlen("content-security-policy"), 1, NULL, "sandbox",
                          strlen("sandbox"));
    rp__http_send_body(c, 200, ro->ctype, ro->data, ro->len);
}

/*
 * A plugin's route: /api/v1/plugins/<name>/… acting as the caller (@p name a plugin, @p sub
 * what follows it), or a record's view (@p name "*", @p sub "/<view>/<entity>/<id>"). With
 * @p anonymous, before any token: only a public route answers, and 1 means none did (the
 * request goes on to the token check).
 */
int rp__http_plugin(call_t *c, const char *name, const char *sub, bool anonymous)
{
    h2o_req_t *req = c->req;
    char path[512], method[16], *body = NULL;
    snprintf(path, sizeof path, "%.*s", (int)req->path_normalized.len, req->path_normalized.base);
    snprintf(method, sizeof method, "%.*s", (int)req->method.len, req->method.base);
    if (strcmp(method, "HEAD") == 0)
        snprintf(method, sizeof method, "GET"); /* h2o leaves out the body */
    /* The headers as the plugin sees them: h2o keeps their names in lower case. */
    enum { MAX_HEADERS = 64 };
    char *hn[MAX_HEADERS], *hv[MAX_HEADERS];
    int nh = 0;
    for (size_t i = 0; i < req->headers.size && nh < MAX_HEADERS; i++) {
        const h2o_header_t *x = &req->headers.entries[i];
        hn[nh] = strndup(x->name->base, x->name->len);
        hv[nh] = strndup(x->value.base, x->value.len);
        if (!hn[nh] || !hv[nh]) {
            free(hn[nh]);
            free(hv[nh]);
            break;
        }
        nh++;
    }
    rp_http_session_out_t so = {0};
    rp_http_reply_out_t ro = {0};
    const char *query = req->query_at == SIZE_MAX ? "" : NULL;
    char *q = query ? NULL : strndup(req->path.base + req->query_at + 1,
                                     req->path.len - req->query_at - 1);
    char *b = req->entity.base ? strndup(req->entity.base, req->entity.len) : NULL;
    rp_http_request_t r = {.method = method, .path = path, .sub = sub,
                           .query = q ? q : "", .body = b, .body_len = b ? req->entity.len : 0,
                           .user = anonymous ? "" : json_string_value(json_object_get(c->who, "user")),
                           .role = anonymous ? "" : json_string_value(json_object_get(c->who, "role")),
                           .ctx = &c->ctx, .anonymous = anonymous, .nheaders = nh,
                           .header_names = (const char *const *)hn,
                           .header_values = (const char *const *)hv, .client = c->client,
                           .subject = anonymous ? NULL : record_subject(c),
                           .session = !anonymous && c->session[0] ? c->session : NULL,
                           .session_max_s = c->h->o.session_max_s, .session_out = &so,
                           .reply_out = &ro};
    int status = 200;
    rp_error_t err = {0};
    int depth = rp_store_txn_depth(c->h->s);
    int64_t seq = rp_events_last_seq(c->h->s);
    int rc = c->h->routes(c->h->routes_ud, name, &r, &status, &body, &err);
    if (rp_store_txn_depth(c->h->s) > depth) {
        /* A route that began and did not end: undo what it left open, answer 500. */
        while (rp_store_txn_depth(c->h->s) > depth)
            rp_store_rollback(c->h->s, NULL);
        rp__http_say(c->h, "error", "plugin %s left a transaction open in %s %s: undone", name,
                     method, path);
        if (!rc)
            rc = rp_error_set(&err, RP_ESTATE, RP_C_TXN, "plugin %s left a transaction open; "
                              "what it wrote was undone", name);
    }
    free(q);
    free(b);
    for (int i = 0; i < nh; i++) {
        free(hn[i]);
        free(hv[i]);
    }
    if (rc == RP_ENOTFOUND && !err.msg[0] && anonymous)
        return 1;
    if (!rc && so.secret)
        rp__http_session_set_cookie(c, so.secret, so.max_s);
    else if (!rc && so.clear)
        rp__http_session_clear_cookie(c);
    free(so.secret);
    if (rc || !ro.data)
        reply_free(&ro);
    if (rc) {
        free(body);
        if (rc == RP_ENOTFOUND && !err.msg[0] && strcmp(name, "*") == 0)
            return rp__http_problemf(c, 404, NULL, "no such path: %s (no plugin serves that "
                                     "view of a record)", path);
        return rc == RP_ENOTFOUND && !err.msg[0]
                   ? rp__http_problemf(c, 404, NULL, "plugin %s has no route %s %s", name, method,
                              sub)
                   : rp__http_store_problem(c, &err, false);
    }
    if (status < 200 || status > 599)
        status = 500;
    /* A route may write whatever its method; a GET that wrote nothing (a timeline) need not
     * wake the scheduler. */
    if (strcmp(method, "GET") != 0 || rp_events_last_seq(c->h->s) != seq)
        wrote(c);
    if (ro.data) {
        free(body); /* the file is the answer */
        send_file(c, &ro);
        reply_free(&ro);
        return 0;
    }
    rp__http_send_body(c, status, body ? "application/json" : NULL, body ? body : "",
              body ? strlen(body) : 0);
    free(body);
    return 0;
}
