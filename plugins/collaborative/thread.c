/*
 * thread.c — a ticket's conversation as its customer and staff read it: the interactions linked
 * to the ticket in the order they happened, full text and attachments; the customer's answer
 * from the portal (an interaction like a mail's, linked as crm.collaborative.log links, with
 * its files); and an attachment downloaded by whoever may read its interaction.
 *
 * Every read is the caller's: the store's scope of their role decides which interactions and
 * attachments exist for them (the portal role: public interactions about their own contact,
 * attachments through those). The answer is checked as the caller (the ticket must be theirs
 * to read, and open to answers), then written as the plugin, which owes the customer that.
 *
 * HTTP: GET /api/v1/ticket/<id>/thread (also GET …/plugins/collaborative/thread/ticket/<id>)
 *       POST /api/v1/plugins/collaborative/thread/ticket/<id>
 *            {"text": "…", "attachments": [{"filename", "content_type", "data": base64}]}
 *       GET /api/v1/plugins/collaborative/attachments/<id>   (the file, as a download)
 * Settings: plugin.portal.attachment_max_bytes (5 MiB), attachment_max_count (5),
 *           answers_per_minute (10); http.max_body_bytes bounds a whole answer.
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "collaborative.h"

enum { TEXT_MAX = 20000, NAME_MAX_BYTES = 200, TYPE_MAX = 100, THREAD_MAX = 500 };

/* ---- the portal's bounds ------------------------------------------------------------------ */

typedef struct bounds {
    int64_t max_bytes, max_count, per_minute, body_max;
} bounds_t;

static int64_t positive(rapport_host *h, const char *key, int64_t def)
{
    int64_t v = cm_config_int(h, key, def);
    return v > 0 ? v : def;
}

static bounds_t bounds(rapport_host *h)
{
    return (bounds_t){positive(h, "/plugin.portal.attachment_max_bytes", 5 << 20),
                      positive(h, "/plugin.portal.attachment_max_count", 5),
                      positive(h, "/plugin.portal.answers_per_minute", 10),
                      positive(h, "/http.max_body_bytes", 1 << 20)};
}

/* Answers per customer in the current minute: a small table of the process, as the portal's
 * sign-in limiter (plugins/portal/limit.c); a full table gives way to its oldest minute. */
enum { SLOTS = 256, PROBE = 8 };
static struct {
    int64_t who, start_ms;
    int count;
} answers[SLOTS];

static bool over_rate(int64_t who, int64_t max, int64_t now_ms)
{
    size_t at = (size_t)(((uint64_t)who * 2654435761u) % SLOTS), use = at;
    for (size_t i = 0; i < PROBE; i++) {
        size_t k = (at + i) % SLOTS;
        if (answers[k].who == who) {
            use = k;
            break;
        }
        if (answers[k].start_ms < answers[use].start_ms || !answers[k].who)
            use = k;
    }
    if (answers[use].who != who || now_ms - answers[use].start_ms >= 60000) {
        answers[use].who = who;
        answers[use].start_ms = now_ms;
        answers[use].count = 0;
    }
    return ++answers[use].count > max;
}

/* ---- helpers ------------------------------------------------------------------------------ */

/* Answers 404 "@p fmt" as the route's own answer. A failed route whose read the caller's role
 * refused is a 403 (the host's rule), which would tell a customer that another's ticket or
 * file exists; a 404 tells nothing. */
static int not_found(int *status, char **body, const char *fmt, int64_t id)
{
    char detail[160];
    snprintf(detail, sizeof detail, fmt, id);
    *status = 404;
    *body = cm_dump(json_pack("{s:s,s:s,s:i,s:s}", "type", "about:blank", "title", "Not Found",
                              "status", 404, "detail", detail));
    return 0;
}

/* The contact a record session acts as ("contact:42"), or 0: not a customer. */
static int64_t customer_of(const rapport_request *req)
{
    const char *s = req->subject;
    if (!s || strncmp(s, "contact:", 8) != 0)
        return 0;
    char *end = NULL;
    long long id = strtoll(s + 8, &end, 10);
    return end && !*end && id > 0 ? id : 0;
}

/* "/ticket/7" (what follows the route's path) as the ticket's id, else 0. */
static int64_t ticket_of(const char *rest)
{
    char entity[64];
    int64_t id;
    if (cm_parse_target(rest[0] == '/' ? rest + 1 : rest, entity, sizeof entity, &id) ||
        strcmp(entity, "ticket") != 0)
        return 0;
    return id;
}

static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* @p name without any folder, control character, cut at a whole letter within
 * NAME_MAX_BYTES (owned), or NULL when nothing is left. jansson's strings are UTF-8. */
static char *clean_name(const char *name)
{
    const char *base = name;
    for (const char *p = name; *p; p++)
        if (*p == '/' || *p == '\\')
            base = p + 1;
    char *out = malloc(NAME_MAX_BYTES + 1);
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)base; out && *p; p++) {
        if (*p < 0x20 || *p == 0x7F)
            continue;
        if (n >= NAME_MAX_BYTES) {
            if ((*p & 0xC0) == 0x80) { /* cut inside a letter: its first bytes go too */
                while (n > 0 && ((unsigned char)out[n - 1] & 0xC0) == 0x80)
                    n--;
                if (n > 0)
                    n--;
            }
            break;
        }
        out[n++] = (char)*p;
    }
    if (out)
        out[n] = '\0';
    if (out && (n == 0 || !strcmp(out, ".") || !strcmp(out, ".."))) {
        free(out);
        return NULL;
    }
    return out;
}

/* A media type as "type/subtype" of plain characters, else application/octet-stream. */
static const char *clean_type(const char *t)
{
    if (!t || !*t || strlen(t) > TYPE_MAX || !strchr(t, '/'))
        return "application/octet-stream";
    for (const char *p = t; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("/+-.;= _", *p)))
            return "application/octet-stream";
    return t;
}

/* ---- reading ------------------------------------------------------------------------------ */

char *cm_attachment_bytes(rapport_host *h, json_t *att, size_t *len, char *err, size_t errlen)
{
    int64_t aid = json_integer_value(json_object_get(att, "id"));
    int64_t size = json_integer_value(json_object_get(att, "size"));
    json_t *parts = NULL;
    if (json_integer_value(json_object_get(att, "parts")) > 0) {
        /* Read as the plugin: the caller could read the attachment, and its parts are it. */
        int was = cm_api->as_plugin(h, 1);
        parts = cm_find(h, "attachment_part", json_pack("{s:{s:I},s:s,s:i}", "where",
                        "attachment", (json_int_t)aid, "order", "seq", "limit", 1000), err,
                        errlen);
        cm_api->as_plugin(h, was);
        if (!parts)
            return NULL;
    } else {
        parts = json_pack("[{s:O}]", "data", json_object_get(att, "data"));
    }
    if (size > (int64_t)1 << 30) { /* no file this engine stores is that large */
        json_decref(parts);
        cm_fail(err, errlen, RAPPORT_EIO, "attachment %" PRId64 ": a size of %" PRId64
                " bytes is not one it was stored with", aid, size);
        return NULL;
    }
    size_t cap = size > 0 ? (size_t)size : 0, n = 0;
    char *out = malloc(cap + 1);
    bool ok = out != NULL;
    size_t i;
    json_t *p;
    json_array_foreach(parts, i, p) {
        const char *b64 = str(p, "data");
        size_t got = 0;
        if (!ok || !b64)
            continue;
        if (sodium_base642bin((unsigned char *)out + n, cap - n, b64, strlen(b64), NULL, &got,
                              NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
            ok = false;
        n += got;
    }
    json_decref(parts);
    if (!ok || n != cap) {
        free(out);
        cm_fail(err, errlen, RAPPORT_EIO, "attachment %" PRId64 ": its stored data does not "
                "read back as its %" PRId64 " bytes", aid, size);
        return NULL;
    }
    *len = n;
    return out;
}

/* The interactions linked to ticket @p tid that the caller may read, oldest first. For a
 * record session (@p outsider) only public ones, and for a customer only their own: the
 * store's scope says so already; this says it again. */
static json_t *thread_items(rapport_host *h, int64_t tid, bool outsider, int64_t customer,
                            char *err, size_t errlen)
{
    char target[CM_TARGET_LEN];
    snprintf(target, sizeof target, "ticket:%" PRId64, tid);
    json_t *links = cm_find(h, "interaction_link",
                            json_pack("{s:{s:s},s:s,s:i,s:[s]}", "where", "target", target,
                                      "order", "key", "limit", THREAD_MAX, "fields",
                                      "interaction"), err, errlen);
    if (!links) /* a role that reads no interaction has a thread of nothing */
        return strstr(err, "may not read") ? json_array() : NULL;
    json_t *ids = json_array();
    size_t i;
    json_t *l;
    json_array_foreach(links, i, l) json_array_append(ids, json_object_get(l, "interaction"));
    json_decref(links);
    json_t *items = json_array();
    if (json_array_size(ids) == 0) {
        json_decref(ids);
        return items;
    }
    json_t *rows = cm_find(h, "interaction",
                           json_pack("{s:{s:{s:O}},s:s,s:i}", "where", "id", "in", ids, "order",
                                     "at,id", "limit", THREAD_MAX), err, errlen);
    json_t *files = rows ? cm_find(h, "attachment",
                                   json_pack("{s:{s:{s:O}},s:s,s:i,s:[s,s,s,s,s]}", "where",
                                             "interaction", "in", ids, "order", "id", "limit",
                                             THREAD_MAX * 5, "fields", "id", "interaction",
                                             "filename", "content_type", "size"), err, errlen)
                         : NULL;
    json_decref(ids);
    if (!rows && strstr(err, "may not read"))
        rows = json_array();
    if (!files && rows && strstr(err, "may not read"))
        files = json_array(); /* a role that reads no attachment sees none */
    if (!rows || !files) {
        json_decref(rows);
        json_decref(items);
        return NULL;
    }
    json_t *r;
    json_array_foreach(rows, i, r) {
        const char *vis = str(r, "visibility"), *dir = str(r, "direction");
        int64_t contact = json_integer_value(json_object_get(r, "contact"));
        if (outsider && ((vis && strcmp(vis, "public") != 0) || contact != customer))
            continue;
        int64_t iid = json_integer_value(json_object_get(r, "id"));
        json_t *att = json_array();
        size_t k;
        json_t *f;
        json_array_foreach(files, k, f) {
            if (json_integer_value(json_object_get(f, "interaction")) != iid)
                continue;
            json_t *a = json_pack("{s:O,s:s?,s:s?,s:O?}", "id", json_object_get(f, "id"),
                                  "filename", str(f, "filename"), "content_type",
                                  str(f, "content_type"), "size", json_object_get(f, "size"));
            json_object_set_new(a, "url", json_sprintf("/api/v1/plugins/collaborative/"
                                "attachments/%" PRId64,
                                (int64_t)json_integer_value(json_object_get(f, "id"))));
            json_array_append_new(att, a);
        }
        bool in = dir && strcmp(dir, "in") == 0;
        json_t *item = json_pack("{s:I,s:s?,s:s,s:s?,s:s?,s:s?,s:s?,s:o}", "id", (json_int_t)iid,
                                 "at", str(r, "at"), "from", in ? "customer" : "staff",
                                 "channel", str(r, "channel"), "direction", dir, "subject",
                                 str(r, "subject"), "text", str(r, "body"), "attachments",
                                 att);
        if (!outsider) { /* staff see what kind and by whom */
            json_object_set_new(item, "visibility", json_string(vis ? vis : "public"));
            json_object_set(item, "author", json_object_get(r, "author"));
        }
        json_array_append_new(items, item);
    }
    json_decref(rows);
    json_decref(files);
    return items;
}

/* GET /api/v1/ticket/<id>/thread */
static int route_thread_get(rapport_host *h, const rapport_request *req, int *status,
                            char **body, char *err, size_t errlen)
{
    int64_t tid = ticket_of(req->rest);
    if (!tid)
        return cm_fail(err, errlen, RAPPORT_ENOTFOUND, "a thread is a ticket's: GET "
                       "/api/v1/ticket/<id>/thread");
    /* The ticket as the caller may see it: no thread of one they cannot read. */
    json_t *tk = cm_json(cm_api->get(h, "ticket", tid));
    if (!tk)
        return not_found(status, body, "no ticket %" PRId64, tid);
    json_t *items = thread_items(h, tid, req->subject != NULL, customer_of(req), err, errlen);
    if (!items) {
        json_decref(tk);
        return RAPPORT_EIO;
    }
    bounds_t b = bounds(h);
    *status = 200;
    *body = cm_dump(json_pack("{s:{s:I,s:s?,s:o,s:{s:I,s:I,s:I,s:I}}}", "data", "ticket",
                              (json_int_t)tid, "status", str(tk, "status"), "items", items,
                              "limits", "text_max_bytes", (json_int_t)TEXT_MAX,
                              "attachment_max_bytes", (json_int_t)b.max_bytes,
                              "attachment_max_count", (json_int_t)b.max_count, "body_max_bytes",
                              (json_int_t)b.body_max));
    json_decref(tk);
    return 0;
}

/* ---- answering ---------------------------------------------------------------------------- */

typedef struct upload {
    char *name;
    const char *type;
    unsigned char *data;
    size_t len;
} upload_t;

static void uploads_free(upload_t *u, size_t n)
{
    for (size_t i = 0; u && i < n; i++) {
        free(u[i].name);
        free(u[i].data);
    }
    free(u);
}

/* The body's attachments, checked and decoded into *@p out (*@p n of them); nothing is
 * stored yet, so a refusal leaves nothing behind. */
static int read_uploads(json_t *list, const bounds_t *b, upload_t **out, size_t *n, char *err,
                        size_t errlen)
{
    *out = NULL;
    *n = 0;
    if (!list || json_is_null(list))
        return 0;
    if (!json_is_array(list))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "attachments: a list of {filename, "
                       "content_type, data (base64)}");
    size_t count = json_array_size(list);
    if ((int64_t)count > b->max_count)
        return cm_fail(err, errlen, RAPPORT_EINVAL, "attachments: %zu files; at most %" PRId64
                       " go with one message (plugin.portal.attachment_max_count)", count,
                       b->max_count);
    upload_t *u = calloc(count ? count : 1, sizeof *u);
    if (!u)
        return cm_fail(err, errlen, RAPPORT_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < count && !rc; i++) {
        json_t *a = json_array_get(list, i);
        const char *fn = str(a, "filename"), *data = str(a, "data");
        json_t *ct = json_object_get(a, "content_type");
        const char *key;
        json_t *v;
        if (!json_is_object(a))
            rc = cm_fail(err, errlen, RAPPORT_EINVAL, "attachments[%zu]: an object {filename, "
                         "content_type, data}", i + 1);
        json_object_foreach(a, key, v) {
            if (!rc && strcmp(key, "filename") && strcmp(key, "content_type") &&
                strcmp(key, "data"))
                rc = cm_fail(err, errlen, RAPPORT_EINVAL, "attachments[%zu].%s: not a field "
                             "of an attachment (filename, content_type, data)", i + 1, key);
        }
        if (!rc && !fn)
            rc = cm_fail(err, errlen, RAPPORT_EINVAL, "attachments[%zu].filename: the file's "
                         "name is needed", i + 1);
        if (!rc && ct && !json_is_string(ct))
            rc = cm_fail(err, errlen, RAPPORT_EINVAL, "attachments[%zu].content_type: a text "
                         "such as \"image/png\"", i + 1);
        if (!rc && !data)
            rc = cm_fail(err, errlen, RAPPORT_EINVAL, "attachments[%zu].data: the file's bytes "
                         "in base64", i + 1);
        if (rc)
            break;
        if (!(u[i].name = clean_name(fn))) {
            rc = cm_fail(err, errlen, RAPPORT_EINVAL, "attachments[%zu].filename: \"%.80s\" "
                         "leaves no name once its folders and control characters are out",
                         i + 1, fn);
            break;
        }
        u[i].type = clean_type(json_string_value(ct));
        size_t b64 = strlen(data);
        /* Refused before decoding: base64 is 4 bytes per 3. */
        if (b64 / 4 * 3 > (size_t)b->max_bytes + 3) {
            rc = cm_fail(err, errlen, RAPPORT_EINVAL, "attachments[%zu].data: \"%s\" is larger "
                         "than %" PRId64 " bytes (plugin.portal.attachment_max_bytes)", i + 1,
                         u[i].name, b->max_bytes);
            break;
        }
        u[i].data = malloc(b64 / 4 * 3 + 3);
        if (!u[i].data ||
            sodium_base642bin(u[i].data, b64 / 4 * 3 + 3, data, b64, " \r\n", &u[i].len, NULL,
                              sodium_base64_VARIANT_ORIGINAL) != 0) {
            rc = cm_fail(err, errlen, RAPPORT_EINVAL, "attachments[%zu].data: not base64",
                         i + 1);
            break;
        }
        if ((int64_t)u[i].len > b->max_bytes)
            rc = cm_fail(err, errlen, RAPPORT_EINVAL, "attachments[%zu].data: \"%s\" is larger "
                         "than %" PRId64 " bytes (plugin.portal.attachment_max_bytes)", i + 1,
                         u[i].name, b->max_bytes);
    }
    if (rc) {
        uploads_free(u, count);
        return rc;
    }
    *out = u;
    *n = count;
    return 0;
}

/* The answer's text and files, checked: unknown keys refused, the text within TEXT_MAX. */
static int read_answer(const rapport_request *req, const bounds_t *b, const char **text,
                       json_t **body, upload_t **u, size_t *nu, char *err, size_t errlen)
{
    json_error_t je;
    *body = req->body ? json_loadb(req->body, req->body_len, 0, &je) : NULL;
    if (!json_is_object(*body))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "the body must be a JSON object {text, "
                       "attachments}");
    const char *key;
    json_t *v;
    json_object_foreach(*body, key, v) {
        if (strcmp(key, "text") && strcmp(key, "attachments"))
            return cm_fail(err, errlen, RAPPORT_EINVAL, "%s: an answer has only text and "
                           "attachments", key);
    }
    json_t *jt = json_object_get(*body, "text");
    if (jt && !json_is_string(jt))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "text: the answer's words, as text");
    *text = json_string_value(jt);
    if (*text && strlen(*text) > TEXT_MAX)
        return cm_fail(err, errlen, RAPPORT_EINVAL, "text: %zu bytes; an answer holds at most "
                       "%d", strlen(*text), TEXT_MAX);
    int rc = read_uploads(json_object_get(*body, "attachments"), b, u, nu, err, errlen);
    if (rc)
        return rc;
    bool words = *text && strspn(*text, " \t\r\n") < strlen(*text);
    if (!words && *nu == 0)
        return cm_fail(err, errlen, RAPPORT_EINVAL, "text: an answer needs words or a file");
    return 0;
}

/* Writes the answer (as the plugin): the interaction, its files, the ticket open again. */
static int store_answer(rapport_host *h, int64_t tid, int64_t customer, json_t *tk,
                        const char *text, upload_t *u, size_t nu, json_t *saved, int64_t *iid,
                        char *err, size_t errlen)
{
    char subject[300];
    snprintf(subject, sizeof subject, "Re: %.280s", str(tk, "subject") ? str(tk, "subject") : "");
    json_t *f = json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:s}", "channel", "portal", "direction",
                          "in", "status", "received", "visibility", "public", "contact",
                          (json_int_t)customer, "subject", subject, "body", text ? text : "");
    bool dup;
    int rc = cm_interaction_add(h, f, json_pack("[[s,I],[s,I]]", "ticket", (json_int_t)tid,
                                                "contact", (json_int_t)customer), iid, &dup,
                                err, errlen);
    for (size_t i = 0; !rc && i < nu; i++) {
        rc = cm_attachment_store(h, *iid, u[i].name, u[i].type, (const char *)u[i].data,
                                 u[i].len, err, errlen);
        if (!rc)
            json_array_append_new(saved, json_pack("{s:s,s:I}", "filename", u[i].name, "size",
                                                   (json_int_t)u[i].len));
    }
    /* The customer answered: a ticket waiting on them, or thought done, is open again (as a
     * mail's answer opens it, receive.c). */
    const char *st = str(tk, "status");
    if (!rc && st && (strcmp(st, "pending") == 0 || strcmp(st, "resolved") == 0) &&
        (rc = cm_api->update(h, "ticket", tid, "{\"status\": \"open\"}", 0)))
        rc = cm_host_fail(h, rc, err, errlen);
    return rc;
}

/* POST /api/v1/plugins/collaborative/thread/ticket/<id> {text, attachments} */
static int route_thread_post(rapport_host *h, const rapport_request *req, int *status,
                             char **body, char *err, size_t errlen)
{
    int64_t tid = ticket_of(req->rest), customer = customer_of(req);
    if (!tid)
        return cm_fail(err, errlen, RAPPORT_ENOTFOUND, "POST thread/ticket/<id>");
    if (!customer)
        return cm_fail(err, errlen, RAPPORT_EPERM, "a ticket's thread is answered here by its "
                       "customer signed in to the portal; staff answer by email "
                       "(crm.collaborative.send_email) or a note");
    /* As the caller first: a ticket they cannot read does not exist for them. */
    json_t *tk = cm_json(cm_api->get(h, "ticket", tid));
    if (!tk || json_integer_value(json_object_get(tk, "contact")) != customer) {
        json_decref(tk);
        return not_found(status, body, "no ticket %" PRId64, tid);
    }
    bounds_t b = bounds(h);
    if (over_rate(customer, b.per_minute, cm_api->now_ms(h))) {
        json_decref(tk);
        *status = 429;
        *body = cm_dump(json_pack("{s:s,s:i}", "detail", "too many answers in a minute; try "
                                  "again shortly", "retry_after_s", 60));
        return 0;
    }
    if (str(tk, "status") && strcmp(str(tk, "status"), "closed") == 0) {
        json_decref(tk);
        return cm_fail(err, errlen, RAPPORT_ECONFLICT, "ticket %" PRId64 " is closed: it takes "
                       "no more answers; open a new ticket", tid);
    }
    const char *text = NULL;
    json_t *in = NULL;
    upload_t *u = NULL;
    size_t nu = 0;
    int rc = read_answer(req, &b, &text, &in, &u, &nu, err, errlen);
    json_t *saved = json_array();
    int64_t iid = 0;
    if (!rc) {
        /* The plugin writes what it owes the customer, all or nothing. */
        int was = cm_api->as_plugin(h, 1);
        rc = cm_api->begin(h) ? cm_host_fail(h, RAPPORT_EIO, err, errlen) : 0;
        if (!rc && (rc = store_answer(h, tid, customer, tk, text, u, nu, saved, &iid, err,
                                      errlen)))
            cm_api->rollback(h);
        else if (!rc && cm_api->commit(h))
            rc = cm_host_fail(h, RAPPORT_EIO, err, errlen);
        cm_api->as_plugin(h, was);
    }
    uploads_free(u, nu);
    json_decref(in);
    json_decref(tk);
    if (rc) {
        json_decref(saved);
        return rc;
    }
    json_t *now = cm_json(cm_api->get(h, "ticket", tid));
    *status = 201;
    *body = cm_dump(json_pack("{s:{s:I,s:I,s:s?,s:o}}", "data", "id", (json_int_t)iid, "ticket",
                              (json_int_t)tid, "status", str(now, "status"), "attachments",
                              saved));
    json_decref(now);
    return 0;
}

static int route_thread(rapport_host *h, const rapport_api *api, const rapport_request *req,
                        int *status, char **body, void *ud, char *err, size_t errlen)
{
    (void)api;
    (void)ud;
    return strcmp(req->method, "POST") == 0
               ? route_thread_post(h, req, status, body, err, errlen)
               : route_thread_get(h, req, status, body, err, errlen);
}

/* ---- downloading -------------------------------------------------------------------------- */

/* GET /api/v1/plugins/collaborative/attachments/<id>: the file, if the caller may read it. */
static int route_attachment(rapport_host *h, const rapport_api *api, const rapport_request *req,
                            int *status, char **body, void *ud, char *err, size_t errlen)
{
    (void)ud;
    char *end = NULL;
    const char *s = req->rest[0] == '/' ? req->rest + 1 : req->rest;
    long long aid = *s >= '1' && *s <= '9' ? strtoll(s, &end, 10) : 0;
    if (aid <= 0 || !end || *end)
        return cm_fail(err, errlen, RAPPORT_ENOTFOUND, "GET attachments/<id>");
    if (!RAPPORT_HAS(api, reply_bytes))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "this engine (%s) cannot answer with a "
                       "file", api->host_version);
    /* As the caller: the store's scope decides (the portal role: through a public
     * interaction about the customer). */
    json_t *att = cm_json(api->get(h, "attachment", aid));
    int64_t customer = customer_of(req);
    json_t *it = att ? cm_json(api->get(h, "interaction", json_integer_value(json_object_get(
                                       att, "interaction"))))
                     : NULL;
    bool ok = att && it;
    if (ok && req->subject) /* said again for a customer: a public interaction about them */
        ok = json_integer_value(json_object_get(it, "contact")) == customer &&
             str(it, "visibility") && strcmp(str(it, "visibility"), "public") == 0;
    json_decref(it);
    if (!ok) {
        json_decref(att);
        return not_found(status, body, "no attachment %" PRId64, (int64_t)aid);
    }
    /* Its bytes are hidden from the portal's role (a file is downloaded, never read as a
     * field): read them as the plugin, now that the caller may have the file. */
    int was = api->as_plugin(h, 1);
    json_t *full = cm_json(api->get(h, "attachment", aid));
    api->as_plugin(h, was);
    size_t len = 0;
    char *data = full ? cm_attachment_bytes(h, full, &len, err, errlen) : NULL;
    json_decref(full);
    int rc = data ? api->reply_bytes(h, str(att, "content_type"), str(att, "filename"), data,
                                     len)
                  : RAPPORT_EIO;
    if (data && rc)
        cm_host_fail(h, rc, err, errlen);
    free(data);
    json_decref(att);
    *status = 200;
    return rc;
}

/* The portal's customer reads the attachments of the interactions they read. */
static const char portal_role[] =
    "{\"principal\": \"contact\","
    " \"entities\": {\"attachment\": {\"read\": {\"through\": \"interaction\"}}},"
    " \"fields\": {\"attachment.data\": \"hidden\"}}";

int cm_thread_init(rapport_host *h, char *err, size_t errlen)
{
    if (cm_api->record_route(h, "thread", route_thread, NULL) ||
        cm_api->route(h, "POST", "thread", route_thread, NULL) ||
        cm_api->route(h, "GET", "attachments", route_attachment, NULL))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "%s", cm_api->last_error(h));
    if (RAPPORT_HAS(cm_api, role_default) && cm_api->role_default(h, "portal", portal_role))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "the portal role: %s",
                       cm_api->last_error(h));
    return 0;
}
