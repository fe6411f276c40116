/*
 * search.c — GET /api/v1/plugins/portal/search?q=…&lang=…: one search box over what the caller
 * may see. Orders, tickets (and invoices) come from the store's search and finds run as the
 * caller, so a customer's scope is the store's and never this file's; the knowledge base's
 * published articles, which anyone may read, come from kb.c as the plugin.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb.h"
#include "portal.h"

/** The longest search text taken, as the knowledge base's. */
#define PT_SEARCH_MAX_Q 256
/** Results of each kind at most. */
#define PT_SEARCH_KIND_MAX 20

static const char *const order_statuses[] = {"placed", "paid", "shipped", "delivered",
                                             "cancelled", NULL};

/* The answer's groups. */
typedef struct found {
    json_t *orders, *tickets, *invoices, *articles;
} found_t;

/* Adds record @p rec of @p entity to its group (once: an order found by its number and its
 * status is listed one time). */
static void add_record(found_t *f, const char *entity, json_t *rec, const char *snippet)
{
    json_t *group = !strcmp(entity, "order")    ? f->orders
                    : !strcmp(entity, "ticket") ? f->tickets
                                                : f->invoices;
    json_int_t id = json_integer_value(json_object_get(rec, "id"));
    size_t i;
    json_t *g;
    json_array_foreach(group, i, g) if (json_integer_value(json_object_get(g, "id")) == id)
        return;
    if (json_array_size(group) >= PT_SEARCH_KIND_MAX)
        return;
    json_t *o = json_pack("{sIss}", "id", id, "href", "");
    if (!o)
        return;
    json_object_set_new(o, "href", json_sprintf("#%s/%" JSON_INTEGER_FORMAT, entity, id));
    static const char *const fields[] = {"status", "subject", "number", "total", "currency",
                                         "placed_at", "issued_at", "created_at",
                                         "tracking_number", NULL};
    for (int k = 0; fields[k]; k++) {
        json_t *v = json_object_get(rec, fields[k]);
        if (v && !json_is_null(v))
            json_object_set(o, fields[k], v);
    }
    if (snippet && *snippet)
        json_object_set_new(o, "snippet", json_string(snippet));
    json_array_append_new(group, o);
}

/* Record @p id of @p entity as the caller reads it (owned), or NULL when they may not. */
static json_t *read_as_caller(rapport_host *h, const char *entity, int64_t id)
{
    char *text = pt_api->get(h, entity, id);
    json_t *rec = text ? json_loads(text, 0, NULL) : NULL;
    pt_api->free(text);
    return rec;
}

/* The store's full-text search as the caller: their tickets (subject, description) and
 * whatever else of theirs is searchable and has a page in the portal. */
static int search_records(rapport_host *h, const char *q, found_t *f, char *err, size_t errlen)
{
    char *text = pt_api->search(h, q, NULL, 60);
    if (!text)
        return pt_fail(err, errlen, RAPPORT_EINVAL, "q: %s", pt_api->last_error(h));
    json_t *ans = json_loads(text, 0, NULL);
    pt_api->free(text);
    size_t i;
    json_t *hit;
    json_array_foreach(json_object_get(ans, "data"), i, hit) {
        const char *entity = json_string_value(json_object_get(hit, "entity"));
        int64_t id = json_integer_value(json_object_get(hit, "id"));
        if (!entity || (strcmp(entity, "ticket") && strcmp(entity, "order") &&
                        strcmp(entity, "invoice")))
            continue;
        /* The search ran in the caller's scope; reading the record again does too. */
        json_t *rec = read_as_caller(h, entity, id);
        if (rec)
            add_record(f, entity, rec, json_string_value(json_object_get(hit, "snippet")));
        json_decref(rec);
    }
    json_decref(ans);
    return 0;
}

/* The caller's orders matching @p where, found as the caller. */
static void find_orders(rapport_host *h, json_t *where, found_t *f)
{
    json_t *query = json_pack("{s:o,s:s,s:i}", "where", where, "order", "-id", "limit",
                              PT_SEARCH_KIND_MAX);
    char *qs = query ? json_dumps(query, JSON_COMPACT) : NULL;
    json_decref(query);
    char *text = qs ? pt_api->find(h, "order", qs) : NULL;
    free(qs);
    json_t *page = text ? json_loads(text, 0, NULL) : NULL;
    pt_api->free(text);
    size_t i;
    json_t *rec;
    json_array_foreach(json_object_get(page, "data"), i, rec)
        add_record(f, "order", rec, NULL);
    json_decref(page);
}

/* @p q as an order's number ("12", "#12", Persian or Arabic-Indic digits), or 0. */
static int64_t order_number(const char *q)
{
    const unsigned char *p = (const unsigned char *)q;
    if (*p == '#')
        p++;
    int64_t n = 0;
    int digits = 0;
    for (; *p; p++, digits++) {
        int d;
        if (*p >= '0' && *p <= '9')
            d = *p - '0';
        else if (p[0] == 0xDB && p[1] >= 0xB0 && p[1] <= 0xB9) /* Persian digits */
            d = p[1] - 0xB0, p++;
        else if (p[0] == 0xD9 && p[1] >= 0xA0 && p[1] <= 0xA9) /* Arabic-Indic digits */
            d = p[1] - 0xA0, p++;
        else
            return 0;
        if (digits >= 15)
            return 0;
        n = n * 10 + d;
    }
    return n;
}

/* Orders by their number, their status word or their tracking number (none of which is
 * full-text searchable). */
static void search_orders(rapport_host *h, const char *q, found_t *f)
{
    int64_t n = order_number(q);
    if (n > 0) {
        json_t *rec = read_as_caller(h, "order", n);
        if (rec)
            add_record(f, "order", rec, NULL);
        json_decref(rec);
    }
    char low[PT_SEARCH_MAX_Q + 1];
    size_t len = 0;
    for (; q[len] && len < PT_SEARCH_MAX_Q; len++)
        low[len] = (char)tolower((unsigned char)q[len]);
    low[len] = '\0';
    for (int i = 0; order_statuses[i]; i++)
        if (!strcmp(low, order_statuses[i]))
            find_orders(h, json_pack("{s:s}", "status", low), f);
    if (!strchr(q, ' '))
        find_orders(h, json_pack("{s:s}", "tracking_number", q), f);
}

/* The published articles matching @p q_raw (still %-encoded) in @p lang_raw: public, so read
 * as the plugin. */
static int search_articles(rapport_host *h, const char *q_raw, const char *lang_raw, found_t *f,
                           char *err, size_t errlen)
{
    char query[3 * PT_SEARCH_MAX_Q + 64];
    snprintf(query, sizeof query, "limit=%d&q=%s%s%s", PT_SEARCH_KIND_MAX, q_raw,
             lang_raw ? "&lang=" : "", lang_raw ? lang_raw : "");
    char *body = NULL;
    int was = pt_api->as_plugin(h, 1);
    int rc = portal_kb_list(h, pt_api, query, &body, err, errlen);
    pt_api->as_plugin(h, was);
    if (rc)
        return rc;
    json_t *page = json_loads(body, 0, NULL);
    pt_api->free(body);
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(page, "data"), i, a) {
        const char *slug = json_string_value(json_object_get(a, "slug"));
        if (!slug)
            continue;
        json_t *o = json_pack("{s:O,s:O?,s:O?,s:O?,s:o}", "slug", json_object_get(a, "slug"),
                              "title", json_object_get(a, "title"), "category",
                              json_object_get(a, "category"), "language",
                              json_object_get(a, "language"), "href",
                              json_sprintf("#article/%s", slug));
        if (o)
            json_array_append_new(f->articles, o);
    }
    json_decref(page);
    return 0;
}

/* Splits the query string @p qs (a copy, cut in place) into q and lang, still encoded. */
static int read_query(char *qs, char **q_raw, char **lang_raw, char *err, size_t errlen)
{
    char *save = NULL;
    for (char *kv = strtok_r(qs, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
        char *v = strchr(kv, '=');
        if (!v)
            continue;
        *v++ = '\0';
        if (!strcmp(kv, "q"))
            *q_raw = v;
        else if (!strcmp(kv, "lang"))
            *lang_raw = *v ? v : NULL;
    }
    if (!*q_raw || !**q_raw)
        return pt_fail(err, errlen, RAPPORT_EINVAL, "q: give the words to search for "
                       "(?q=…)");
    if (strlen(*q_raw) > 3 * PT_SEARCH_MAX_Q)
        return pt_fail(err, errlen, RAPPORT_EINVAL, "q: at most %d bytes", PT_SEARCH_MAX_Q);
    if (*lang_raw && strlen(*lang_raw) > 16)
        return pt_fail(err, errlen, RAPPORT_EINVAL, "lang: a language tag (en, fa)");
    return 0;
}

static int route_search(rapport_host *h, const rapport_api *api, const rapport_request *req,
                        int *status, char **body, void *ud, char *err, size_t errlen)
{
    (void)status, (void)ud;
    char *qs = strdup(req->query ? req->query : ""), *q_raw = NULL, *lang_raw = NULL;
    char q[3 * PT_SEARCH_MAX_Q + 1];
    found_t f = {json_array(), json_array(), json_array(), json_array()};
    int rc = !qs || !f.orders || !f.tickets || !f.invoices || !f.articles
                 ? pt_fail(err, errlen, RAPPORT_ENOMEM, "out of memory")
                 : read_query(qs, &q_raw, &lang_raw, err, errlen);
    if (!rc) {
        snprintf(q, sizeof q, "%s", q_raw);
        if (!portal_url_decode(q))
            rc = pt_fail(err, errlen, RAPPORT_EINVAL, "q: a broken %%-escape");
        else if (strlen(q) > PT_SEARCH_MAX_Q)
            rc = pt_fail(err, errlen, RAPPORT_EINVAL, "q: at most %d bytes", PT_SEARCH_MAX_Q);
    }
    /* The articles first: they check q's words and lang as the public list does. */
    if (!rc)
        rc = search_articles(h, q_raw, lang_raw, &f, err, errlen);
    if (!rc)
        rc = search_records(h, q, &f, err, errlen);
    if (!rc)
        search_orders(h, q, &f);
    free(qs);
    json_t *out = rc ? NULL
                     : json_pack("{s:s,s:O,s:O,s:O,s:O}", "q", q, "orders", f.orders,
                                 "tickets", f.tickets, "invoices", f.invoices, "articles",
                                 f.articles);
    json_decref(f.orders), json_decref(f.tickets), json_decref(f.invoices);
    json_decref(f.articles);
    if (rc)
        return rc;
    char *text = out ? json_dumps(out, JSON_COMPACT) : NULL;
    json_decref(out);
    *body = text ? api->strdup(text) : NULL;
    free(text);
    return *body ? 0 : pt_fail(err, errlen, RAPPORT_ENOMEM, "out of memory");
}

int pt_search_init(rapport_host *h, char *err, size_t errlen)
{
    if (!RAPPORT_HAS(pt_api, search))
        return 0; /* an older engine: no search as the caller, so no search route */
    if (pt_api->route(h, "GET", "search", route_search, NULL))
        return pt_fail(err, errlen, RAPPORT_EINVAL, "search: %s", pt_api->last_error(h));
    return 0;
}
