/*
 * kb.c — the portal's knowledge base: articles in Markdown (libcmark, safe mode, addresses
 * checked again on the tree), found through text folded as the engine folds it, read and
 * voted on without signing in.
 *
 *       GET  articles?q=&category=&lang=&after=&limit=   published articles, newest first
 *       GET  articles/<slug>                             one, with its body as HTML
 *       POST articles/<slug>/helpful  {"yes": bool}      one vote per client per article
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cmark.h>
#include <jansson.h>

#include "kb.h"

/** The longest search text, category and slug taken from a request. */
#define KB_MAX_Q 256
#define KB_MAX_WORDS 8
#define KB_MAX_SLUG 96
#define KB_MAX_CATEGORY 100
/** A page of the list, by default and at most. */
#define KB_PAGE 20
#define KB_PAGE_MAX 50

static const char *const ARTICLE_SPEC =
    "{\"fields\": {"
    "\"title\": {\"type\": \"text\", \"required\": true, \"searchable\": true}, "
    "\"slug\": {\"type\": \"text\", \"unique\": true, \"indexed\": true}, "
    "\"body\": {\"type\": \"text\", \"searchable\": true}, "
    "\"category\": {\"type\": \"text\", \"indexed\": true}, "
    "\"language\": {\"type\": \"text\", \"indexed\": true, \"default\": \"en\"}, "
    "\"published\": {\"type\": \"boolean\", \"indexed\": true, \"default\": false}, "
    "\"helpful_yes\": {\"type\": \"integer\", \"default\": 0}, "
    "\"helpful_no\": {\"type\": \"integer\", \"default\": 0}, "
    "\"revised_at\": {\"type\": \"datetime\", \"indexed\": true}, "
    "\"search_text\": {\"type\": \"text\"}}}";

/* One row per vote: the unique voter key ("<article id>/<client address>") is what makes a
 * second vote from the same client on the same article a conflict, atomically. */
static const char *const FEEDBACK_SPEC =
    "{\"fields\": {"
    "\"article\": {\"type\": \"ref\", \"ref\": \"article\", \"required\": true, "
    "\"indexed\": true}, "
    "\"voter\": {\"type\": \"text\", \"required\": true, \"unique\": true, \"personal\": true}, "
    "\"helpful\": {\"type\": \"boolean\", \"required\": true}}}";

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return code;
}

/* ---- rendering ---------------------------------------------------------------------------- */

/* Whether @p url may stay in a link or an image: http(s), mailto, or a relative address (one
 * that does not start with a scheme). cmark's safe mode already drops javascript:, vbscript:
 * and file:, but keeps data:image/…; here nothing else gets through either. The scheme is read
 * as a browser reads it (WHATWG URL): leading controls and spaces skipped, tabs and newlines
 * inside ignored, then a letter and letters, digits, '+', '-' or '.' up to a ':'. */
static bool url_allowed(const char *url)
{
    while (*url && (unsigned char)*url <= ' ')
        url++;
    char scheme[8];
    size_t n = 0;
    for (const char *p = url;; p++) {
        if (*p == '\t' || *p == '\n' || *p == '\r')
            continue;
        if (*p == ':')
            break;
        if (!(isalpha((unsigned char)*p) ||
              (n && (isdigit((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.'))))
            return true; /* No scheme: relative. */
        if (n < sizeof scheme - 1)
            scheme[n] = (char)tolower((unsigned char)*p);
        n++;
    }
    scheme[n < sizeof scheme - 1 ? n : sizeof scheme - 1] = '\0';
    return !strcmp(scheme, "http") || !strcmp(scheme, "https") || !strcmp(scheme, "mailto");
}

/* Empties the address of every link and image whose address is not allowed. */
static void strip_urls(cmark_node *doc)
{
    cmark_iter *it = cmark_iter_new(doc);
    if (!it)
        return;
    cmark_event_type ev;
    while ((ev = cmark_iter_next(it)) != CMARK_EVENT_DONE) {
        if (ev != CMARK_EVENT_ENTER)
            continue;
        cmark_node *n = cmark_iter_get_node(it);
        cmark_node_type t = cmark_node_get_type(n);
        if (t != CMARK_NODE_LINK && t != CMARK_NODE_IMAGE)
            continue;
        const char *url = cmark_node_get_url(n);
        if (url && !url_allowed(url))
            cmark_node_set_url(n, "");
    }
    cmark_iter_free(it);
}

char *portal_kb_render(const char *md, size_t len)
{
    if (len > PORTAL_KB_MAX_BODY)
        len = PORTAL_KB_MAX_BODY;
    /* Safe mode (the default since cmark 0.29, asked for anyway): raw HTML left out. */
    int opts = CMARK_OPT_SAFE | CMARK_OPT_VALIDATE_UTF8;
    cmark_node *doc = cmark_parse_document(md ? md : "", md ? len : 0, opts);
    if (!doc)
        return NULL;
    strip_urls(doc);
    char *html = cmark_render_html(doc, opts);
    cmark_node_free(doc);
    return html;
}

/* crm.<plugin>.kb_render(markdown) → HTML text, for a preview before publishing. */
static int lua_render(rapport_host *h, const rapport_api *api, const char *args, char **result,
                      void *ud, char *err, size_t errlen)
{
    (void)h, (void)ud;
    json_t *a = json_loads(args, JSON_ALLOW_NUL, NULL);
    json_t *md = json_array_get(a, 0);
    int rc = 0;
    if (!json_is_string(md) || json_array_size(a) != 1) {
        rc = fail(err, errlen, RAPPORT_EINVAL, "kb_render(markdown): one text argument expected");
    } else if (json_string_length(md) > PORTAL_KB_MAX_BODY) {
        rc = fail(err, errlen, RAPPORT_EINVAL, "kb_render: the text is %zu bytes, at most %d",
                  json_string_length(md), PORTAL_KB_MAX_BODY);
    } else {
        char *html = portal_kb_render(json_string_value(md), json_string_length(md));
        json_t *v = html ? json_string(html) : NULL;
        char *out = v ? json_dumps(v, JSON_ENCODE_ANY) : NULL;
        json_decref(v);
        *result = out ? api->strdup(out) : NULL;
        rc = *result ? 0 : fail(err, errlen, RAPPORT_ENOMEM, "kb_render: out of memory");
        free(out);
        free(html);
    }
    json_decref(a);
    return rc;
}

/* ---- the article hook --------------------------------------------------------------------- */

/* A field of the change as a string (owned), or NULL when absent, null or not a string. */
static char *change_text(const rapport_api *api, rapport_change *c, const char *field)
{
    char *j = api->change_get(c, 0, field);
    json_t *v = j ? json_loads(j, JSON_DECODE_ANY, NULL) : NULL;
    api->free(j);
    char *s = json_is_string(v) ? strdup(json_string_value(v)) : NULL;
    json_decref(v);
    return s;
}

static bool slug_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > KB_MAX_SLUG || s[0] == '-')
        return false;
    for (; *s; s++)
        if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '-')
            return false;
    return true;
}

/* A slug made of @p title's ASCII letters and digits; "article-<hash of the title>" when it
 * has none (a Persian title), so a staff member need not invent one, and the same title twice
 * is the unique slug's conflict rather than a silent second copy. */
static void slug_from(const char *title, char *out)
{
    size_t n = 0;
    bool dash = false;
    for (const char *p = title; *p && n < KB_MAX_SLUG - 1; p++) {
        unsigned char ch = (unsigned char)*p;
        if (isalnum(ch) && ch < 0x80) {
            if (dash && n)
                out[n++] = '-';
            out[n++] = (char)tolower(ch);
            dash = false;
        } else {
            dash = true;
        }
    }
    out[n] = '\0';
    if (!n) {
        uint32_t hash = 2166136261u; /* FNV-1a */
        for (const char *p = title; *p; p++)
            hash = (hash ^ (unsigned char)*p) * 16777619u;
        snprintf(out, KB_MAX_SLUG + 1, "article-%08x", (unsigned)hash);
    }
}

static bool language_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 2 || n > 8)
        return false;
    for (; *s; s++)
        if (!islower((unsigned char)*s) && *s != '-')
            return false;
    return true;
}

/* The fields whose change is a new revision for the reader (a vote is not). */
static const char *const CONTENT[] = {"title", "body", "category", "language", "slug",
                                      "published", NULL};

/* Whether the write @p c changes what a reader sees: a new article, or an update whose
 * content fields differ from the stored record's. */
static bool content_changed(rapport_host *h, const rapport_api *api, rapport_change *c)
{
    if (api->change_action(c) != RAPPORT_UPDATE)
        return true;
    char *old = api->get(h, "article", api->change_id(c));
    json_t *rec = old ? json_loads(old, 0, NULL) : NULL;
    api->free(old);
    bool changed = !rec || json_is_null(json_object_get(rec, "revised_at"));
    for (int i = 0; CONTENT[i] && !changed; i++) {
        char *j = api->change_get(c, 0, CONTENT[i]);
        json_t *now = j ? json_loads(j, JSON_DECODE_ANY, NULL) : json_null();
        json_t *was = json_object_get(rec, CONTENT[i]);
        changed = !json_equal(now, was ? was : json_null()) &&
                  !(json_is_null(now) && !was);
        json_decref(now);
        api->free(j);
    }
    json_decref(rec);
    return changed;
}

static int set_text(const rapport_api *api, rapport_change *c, const char *field, const char *s)
{
    json_t *v = json_string(s);
    char *j = v ? json_dumps(v, JSON_ENCODE_ANY) : NULL;
    json_decref(v);
    int rc = j ? api->change_set(c, 0, field, j) : RAPPORT_ENOMEM;
    free(j);
    return rc;
}

/* Checks an article before it is written, fills its slug when none was given, and keeps the
 * folded text that the public search matches. */
static int article_hook(rapport_host *h, const rapport_api *api, rapport_change *c, void *ud,
                        char *err, size_t errlen)
{
    (void)ud;
    char *title = change_text(api, c, "title");
    char *body = change_text(api, c, "body");
    char *slug = change_text(api, c, "slug");
    char *lang = change_text(api, c, "language");
    char *cat = change_text(api, c, "category");
    char *text = NULL, *folded = NULL;
    int rc = 0;
    if (body && strlen(body) > PORTAL_KB_MAX_BODY) {
        rc = fail(err, errlen, RAPPORT_EINVAL, "article.body: %zu bytes, at most %d",
                  strlen(body), PORTAL_KB_MAX_BODY);
        goto out;
    }
    if (lang && !language_valid(lang)) {
        rc = fail(err, errlen, RAPPORT_EINVAL,
                  "article.language: \"%s\" is not a language tag (en, fa, pt-br)", lang);
        goto out;
    }
    if (cat && strlen(cat) > KB_MAX_CATEGORY) {
        rc = fail(err, errlen, RAPPORT_EINVAL, "article.category: at most %d bytes",
                  KB_MAX_CATEGORY);
        goto out;
    }
    if (slug && *slug && !slug_valid(slug)) {
        rc = fail(err, errlen, RAPPORT_EINVAL, "article.slug: \"%s\" must be 1 to %d of a-z, 0-9 "
                  "and -, not starting with -", slug, KB_MAX_SLUG);
        goto out;
    }
    if (!slug || !*slug) {
        char made[KB_MAX_SLUG + 1];
        slug_from(title ? title : "", made);
        if ((rc = set_text(api, c, "slug", made)))
            goto out;
    }
    size_t tl = title ? strlen(title) : 0, bl = body ? strlen(body) : 0;
    if (!(text = malloc(tl + bl + 2))) {
        rc = fail(err, errlen, RAPPORT_ENOMEM, "article: out of memory");
        goto out;
    }
    snprintf(text, tl + bl + 2, "%s\n%s", title ? title : "", body ? body : "");
    if (!(folded = api->fold(h, text)) || (rc = set_text(api, c, "search_text", folded))) {
        rc = fail(err, errlen, RAPPORT_ENOMEM, "article: out of memory");
        goto out;
    }
    /* updated_at moves with every vote; the public date is that of the last edit. */
    char at[RAPPORT_TIME_LEN];
    if (content_changed(h, api, c) &&
        (api->time_format(h, api->now_ms(h), at) || (rc = set_text(api, c, "revised_at", at))))
        rc = fail(err, errlen, rc ? rc : RAPPORT_EINVAL, "article.revised_at: %s",
                  api->last_error(h));
out:
    free(title), free(body), free(slug), free(lang), free(cat), free(text);
    api->free(folded);
    return rc;
}

/* ---- the public routes -------------------------------------------------------------------- */

/* Decodes %XX and '+' of a query string value in place; false when an escape is broken or
 * decodes to NUL. */
static bool url_decode(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == '+') {
            *w++ = ' ';
        } else if (*r == '%') {
            if (!isxdigit((unsigned char)r[1]) || !isxdigit((unsigned char)r[2]))
                return false;
            char hex[3] = {r[1], r[2], 0};
            long v = strtol(hex, NULL, 16);
            if (!v)
                return false;
            *w++ = (char)v;
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return true;
}

/* Sets @p o[@p key] to @p v (taken), or says that memory ran out. */
static int put(json_t *o, const char *key, json_t *v, char *err, size_t errlen)
{
    return json_object_set_new(o, key, v) ? fail(err, errlen, RAPPORT_ENOMEM, "out of memory")
                                          : 0;
}

/* Adds to @p and one condition per word of @p q: each must appear in the folded title and
 * body, folded the same way (so ي finds ی, ك finds ک, and diacritics do not count). */
static int search_words(rapport_host *h, const rapport_api *api, const char *q, json_t *and,
                        char *err, size_t errlen)
{
    if (strlen(q) > KB_MAX_Q)
        return fail(err, errlen, RAPPORT_EINVAL, "q: at most %d bytes", KB_MAX_Q);
    char *f = api->fold(h, q);
    if (!f)
        return fail(err, errlen, RAPPORT_ENOMEM, "out of memory");
    int rc = 0, words = 0;
    char *save = NULL;
    static const char *const space = " \t\r\n";
    for (char *w = strtok_r(f, space, &save); w && !rc; w = strtok_r(NULL, space, &save)) {
        if (++words > KB_MAX_WORDS)
            rc = fail(err, errlen, RAPPORT_EINVAL, "q: at most %d words", KB_MAX_WORDS);
        else if (json_array_append_new(and, json_pack("{s{ss}}", "search_text", "contains", w)))
            rc = fail(err, errlen, RAPPORT_ENOMEM, "out of memory");
    }
    api->free(f);
    return rc;
}

/* One parameter of the list's query string (@p v decoded) into @p find. */
static int list_param(rapport_host *h, const rapport_api *api, const char *k, const char *v,
                      json_t *find, char *err, size_t errlen)
{
    json_t *where = json_object_get(find, "where");
    if (!*v)
        return 0;
    if (!strcmp(k, "category"))
        return strlen(v) > KB_MAX_CATEGORY
                   ? fail(err, errlen, RAPPORT_EINVAL, "category: at most %d bytes",
                          KB_MAX_CATEGORY)
                   : put(where, "category", json_string(v), err, errlen);
    if (!strcmp(k, "lang"))
        return !language_valid(v) ? fail(err, errlen, RAPPORT_EINVAL,
                                         "lang: \"%.16s\" is not a language tag (en, fa)", v)
                                  : put(where, "language", json_string(v), err, errlen);
    if (!strcmp(k, "after"))
        return put(find, "after", json_string(v), err, errlen);
    if (!strcmp(k, "limit")) {
        char *end;
        long n = strtol(v, &end, 10);
        return *end || n < 1 || n > KB_PAGE_MAX
                   ? fail(err, errlen, RAPPORT_EINVAL, "limit: 1 to %d", KB_PAGE_MAX)
                   : put(find, "limit", json_integer(n), err, errlen);
    }
    if (!strcmp(k, "q"))
        return search_words(h, api, v, json_object_get(where, "and"), err, errlen);
    return 0; /* Others (a cache-buster) are no business of the list's. */
}

/* The list's query string, read into the find query @p find. */
static int list_filters(rapport_host *h, const rapport_api *api, const char *query, json_t *find,
                        char *err, size_t errlen)
{
    char *qs = strdup(query ? query : "");
    if (!qs)
        return fail(err, errlen, RAPPORT_ENOMEM, "out of memory");
    int rc = 0;
    char *save = NULL;
    for (char *kv = strtok_r(qs, "&", &save); kv && !rc; kv = strtok_r(NULL, "&", &save)) {
        char *v = strchr(kv, '=');
        if (v)
            *v++ = '\0';
        else
            v = kv + strlen(kv);
        rc = url_decode(v) ? list_param(h, api, kv, v, find, err, errlen)
                           : fail(err, errlen, RAPPORT_EINVAL, "query %.32s: a broken %%-escape",
                                  kv);
    }
    free(qs);
    return rc;
}

/* The public view of an article: never its search text, id or authors. */
static json_t *article_public(json_t *rec, bool with_html)
{
    json_t *o = json_pack("{sO?sO?sO?sO?sO?sO?sO?}", "slug", json_object_get(rec, "slug"),
                          "title", json_object_get(rec, "title"), "category",
                          json_object_get(rec, "category"), "language",
                          json_object_get(rec, "language"), "updated_at",
                          json_object_get(rec, "revised_at"), "helpful_yes",
                          json_object_get(rec, "helpful_yes"), "helpful_no",
                          json_object_get(rec, "helpful_no"));
    if (!o || !with_html)
        return o;
    const char *md = json_string_value(json_object_get(rec, "body"));
    char *html = portal_kb_render(md ? md : "", md ? strlen(md) : 0);
    if (!html || json_object_set_new(o, "html", json_string(html))) {
        json_decref(o);
        o = NULL;
    }
    free(html);
    return o;
}

/* *body = @p v as JSON text made with api->strdup; takes @p v. */
static int answer(const rapport_api *api, json_t *v, char **body, char *err, size_t errlen)
{
    char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    *body = s ? api->strdup(s) : NULL;
    free(s);
    return *body ? 0 : fail(err, errlen, RAPPORT_ENOMEM, "out of memory");
}

static int route_list(rapport_host *h, const rapport_api *api, const rapport_request *req,
                      char **body, char *err, size_t errlen)
{
    json_t *find = json_pack("{s{sbs[]}sssi}", "where", "published", 1, "and", "order",
                             "-revised_at,-id", "limit", KB_PAGE);
    if (!find)
        return fail(err, errlen, RAPPORT_ENOMEM, "out of memory");
    int rc = list_filters(h, api, req->query, find, err, errlen);
    if (!json_array_size(json_object_get(json_object_get(find, "where"), "and")))
        json_object_del(json_object_get(find, "where"), "and");
    char *q = rc ? NULL : json_dumps(find, JSON_COMPACT);
    json_decref(find);
    if (rc)
        return rc;
    if (!q)
        return fail(err, errlen, RAPPORT_ENOMEM, "out of memory");
    /* A bad cursor (after=) is the store's to name. */
    char *res = api->find(h, "article", q);
    free(q);
    if (!res)
        return fail(err, errlen, RAPPORT_EINVAL, "articles: %s", api->last_error(h));
    json_t *page = json_loads(res, 0, NULL);
    api->free(res);
    json_t *data = json_array(), *in = json_object_get(page, "data"), *rec;
    size_t i;
    json_array_foreach(in, i, rec) {
        if (json_array_append_new(data, article_public(rec, false)))
            break;
    }
    json_t *out = data && json_array_size(data) == json_array_size(in)
                      ? json_pack("{sOsO?}", "data", data, "next", json_object_get(page, "next"))
                      : NULL;
    json_decref(data);
    json_decref(page);
    return answer(api, out, body, err, errlen);
}

/* The published article with slug @p slug (owned), or NULL with a 404's error: an unpublished
 * one is not told apart from one that does not exist. */
static json_t *article_by_slug(rapport_host *h, const rapport_api *api, const char *slug,
                               int *rc, char *err, size_t errlen)
{
    if (!slug_valid(slug)) {
        *rc = fail(err, errlen, RAPPORT_ENOTFOUND, "no such article");
        return NULL;
    }
    json_t *find = json_pack("{s{ssso}si}", "where", "slug", slug, "published", json_true(),
                             "limit", 1);
    char *q = find ? json_dumps(find, JSON_COMPACT) : NULL;
    json_decref(find);
    char *res = q ? api->find(h, "article", q) : NULL;
    free(q);
    if (!res) {
        *rc = fail(err, errlen, RAPPORT_EIO, "article: %s", api->last_error(h));
        return NULL;
    }
    json_t *page = json_loads(res, 0, NULL);
    api->free(res);
    json_t *rec = json_incref(json_array_get(json_object_get(page, "data"), 0));
    json_decref(page);
    if (!rec)
        *rc = fail(err, errlen, RAPPORT_ENOTFOUND, "no article \"%s\"", slug);
    return rec;
}

/* Adds one to @p count of article @p id; *now gets the counts after it (owned). */
static int bump(rapport_host *h, const rapport_api *api, json_int_t id, const char *count,
                json_t **now, char *err, size_t errlen)
{
    char *cur = api->get(h, "article", id);
    json_t *rec = cur ? json_loads(cur, 0, NULL) : NULL;
    api->free(cur);
    if (!rec)
        return fail(err, errlen, RAPPORT_EIO, "helpful: %s", api->last_error(h));
    json_int_t n = json_integer_value(json_object_get(rec, count)) + 1;
    json_object_set_new(rec, count, json_integer(n));
    json_t *patch = json_pack("{sI}", count, n);
    char *pj = patch ? json_dumps(patch, JSON_COMPACT) : NULL;
    json_decref(patch);
    int rc = pj ? api->update(h, "article", id, pj, 0) : RAPPORT_ENOMEM;
    free(pj);
    if (rc)
        fail(err, errlen, rc, "helpful: %s", rc == RAPPORT_ENOMEM ? "out of memory"
                                                                   : api->last_error(h));
    else if (!(*now = json_pack("{sOsO}", "helpful_yes", json_object_get(rec, "helpful_yes"),
                                "helpful_no", json_object_get(rec, "helpful_no"))))
        rc = fail(err, errlen, RAPPORT_ENOMEM, "out of memory");
    json_decref(rec);
    return rc;
}

static int route_vote(rapport_host *h, const rapport_api *api, const rapport_request *req,
                      json_t *rec, char **body, char *err, size_t errlen)
{
    json_t *b = req->body ? json_loadb(req->body, req->body_len, 0, NULL) : NULL;
    json_t *yes = json_object_get(b, "yes");
    if (!json_is_boolean(yes) || json_object_size(b) != 1) {
        json_decref(b);
        return fail(err, errlen, RAPPORT_EINVAL, "body: {\"yes\": true} or {\"yes\": false}");
    }
    bool helpful = json_is_true(yes);
    json_decref(b);
    json_int_t id = json_integer_value(json_object_get(rec, "id"));
    char voter[128], who[64];
    portal_client_key(req->client, who, sizeof who);
    snprintf(voter, sizeof voter, "%lld/%s", (long long)id, who);
    const char *count = helpful ? "helpful_yes" : "helpful_no";
    json_t *vote = json_pack("{sIsssb}", "article", id, "voter", voter, "helpful", helpful);
    char *vj = vote ? json_dumps(vote, JSON_COMPACT) : NULL;
    json_decref(vote);
    if (!vj)
        return fail(err, errlen, RAPPORT_ENOMEM, "out of memory");
    /* The vote and the count go in together, or neither does; the count is read again inside
     * the transaction, so a vote from another process in between is not lost. */
    int rc = api->begin(h);
    json_t *now = NULL;
    if (rc) {
        fail(err, errlen, rc, "helpful: %s", api->last_error(h));
    } else {
        rc = api->create(h, "article_feedback", vj, NULL);
        if (rc == RAPPORT_ECONFLICT)
            fail(err, errlen, rc, "this article already has your vote");
        else if (rc)
            fail(err, errlen, rc, "helpful: %s", api->last_error(h));
        else
            rc = bump(h, api, id, count, &now, err, errlen);
        if (rc)
            api->rollback(h);
        else if ((rc = api->commit(h)))
            fail(err, errlen, rc, "helpful: %s", api->last_error(h));
    }
    free(vj);
    if (rc) {
        json_decref(now);
        return rc;
    }
    return answer(api, now, body, err, errlen);
}

/* articles, articles/<slug>, articles/<slug>/helpful. */
static int route_articles(rapport_host *h, const rapport_api *api, const rapport_request *req,
                          int *status, char **body, void *ud, char *err, size_t errlen)
{
    (void)ud;
    bool get = !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD");
    const char *rest = req->rest ? req->rest : "";
    if (!*rest || !strcmp(rest, "/")) {
        if (get)
            return route_list(h, api, req, body, err, errlen);
        *status = 405;
        return answer(api, json_pack("{ss}", "error", "articles: GET only"), body, err, errlen);
    }
    char slug[KB_MAX_SLUG + 2];
    size_t n = strcspn(rest + 1, "/");
    const char *tail = rest + 1 + n;
    if (n > KB_MAX_SLUG)
        return fail(err, errlen, RAPPORT_ENOTFOUND, "no such article");
    memcpy(slug, rest + 1, n);
    slug[n] = '\0';
    bool vote = !strcmp(tail, "/helpful");
    if (*tail && !vote)
        return fail(err, errlen, RAPPORT_ENOTFOUND, "no such path under articles/%s", slug);
    if (vote != !strcmp(req->method, "POST") || (!vote && !get)) {
        *status = 405;
        return answer(api, json_pack("{ss}", "error", vote ? "helpful: POST only" : "GET only"),
                      body, err, errlen);
    }
    int rc = 0;
    json_t *rec = article_by_slug(h, api, slug, &rc, err, errlen);
    if (!rec)
        return rc;
    rc = vote ? route_vote(h, api, req, rec, body, err, errlen)
              : answer(api, article_public(rec, true), body, err, errlen);
    json_decref(rec);
    return rc;
}

int portal_kb_init(rapport_host *h, const rapport_api *api)
{
    if (!RAPPORT_HAS(api, declare))
        return RAPPORT_EINVAL;
    int rc;
    if ((rc = api->declare(h, "article", ARTICLE_SPEC)) ||
        (rc = api->declare(h, "article_feedback", FEEDBACK_SPEC)) ||
        (rc = api->hook(h, "article", RAPPORT_CREATE, 0, article_hook, NULL)) ||
        (rc = api->hook(h, "article", RAPPORT_UPDATE, 0, article_hook, NULL)) ||
        (rc = api->public_route(h, "*", "articles", route_articles, NULL)) ||
        (rc = api->lua_function(h, "kb_render", lua_render, NULL)))
        return rc;
    return 0;
}

/* ---- for the portal's search (search.c) --------------------------------------------------- */

int portal_kb_list(rapport_host *h, const rapport_api *api, const char *query, char **body,
                   char *err, size_t errlen)
{
    rapport_request rq = {.method = "GET", .query = query};
    return route_list(h, api, &rq, body, err, errlen);
}

bool portal_url_decode(char *s)
{
    return url_decode(s);
}

void portal_client_key(const char *client, char *out, size_t cap)
{
    unsigned char b[16];
    if (client && inet_pton(AF_INET6, client, b) == 1 &&
        memcmp(b, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) != 0)
        snprintf(out, cap, "%02x%02x:%02x%02x:%02x%02x:%02x%02x::/64", b[0], b[1], b[2], b[3],
                 b[4], b[5], b[6], b[7]);
    else
        snprintf(out, cap, "%s", client && *client ? client : "?");
}
