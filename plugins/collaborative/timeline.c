/*
 * timeline.c — one record's history, newest first, from every source at once: its
 * interactions (through their links; an account's include its people's), its activities,
 * tickets and orders, and its own stage and field changes from the event log.
 *
 * Each source is read through the host as the caller, so the reader's role decides what shows:
 * an interaction, a ticket or a change outside its scope is not on its timeline, and a hidden
 * field is not in a change. Items are ordered by (at, kind, id), descending; a page's cursor is
 * the last item's triple, so paging neither repeats nor skips an item however many share a
 * time. Each source reads at most a page past the cursor from an index (an interaction's links
 * carry one sortable key "target|at|id"), so a page costs the same on the ten-thousandth item.
 *
 * CLI: rapport timeline ENTITY ID [--json] [--before CURSOR] [--limit N] [--kind K,K…]
 * Lua: crm.timeline(entity, id [, {before, limit, kinds}]) (also crm.collaborative.timeline)
 * HTTP: GET /api/v1/<entity>/<id>/timeline?before=&limit=&kinds=
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collaborative.h"

enum { K_INTERACTION, K_ACTIVITY, K_TICKET, K_ORDER, K_STAGE, K_CHANGE, NKINDS };
static const char *const kind_names[NKINDS] = {"interaction", "activity", "ticket", "order",
                                               "stage", "change"};

enum { MAX_LIMIT = 200, DEFAULT_LIMIT = 50, EVENT_SCAN = 2000 };

/* Where the page starts: items strictly older than (at, kind, id); at "" means the newest. */
typedef struct cursor {
    char at[RAPPORT_TIME_LEN + 8];
    int kind;
    int64_t id;
} cursor_t;

static int cursor_parse(const char *text, cursor_t *c)
{
    memset(c, 0, sizeof *c);
    if (!text || !*text)
        return 0;
    const char *bar = strchr(text, '|');
    if (!bar || (size_t)(bar - text) >= sizeof c->at || bar == text)
        return -1;
    memcpy(c->at, text, (size_t)(bar - text));
    char *end;
    long k = strtol(bar + 1, &end, 10);
    if (*end != '|' || k < 0 || k >= NKINDS)
        return -1;
    long long id = strtoll(end + 1, &end, 10);
    if (*end || id < 0)
        return -1;
    c->kind = (int)k;
    c->id = id;
    return 0;
}

/* Whether (at, kind, id) comes after @p c, newest first (so belongs to the page). */
static bool older(const cursor_t *c, const char *at, int kind, int64_t id)
{
    if (!c->at[0])
        return true;
    int d = strcmp(at, c->at);
    if (d != 0)
        return d < 0;
    if (kind != c->kind)
        return kind < c->kind;
    return id < c->id;
}

/* The filter of a source of kind @p kind ordered by (@p field, id): older than the cursor. */
static json_t *before_filter(const cursor_t *c, int kind, const char *field)
{
    if (!c->at[0])
        return NULL;
    if (kind < c->kind)
        return json_pack("{s:{s:s}}", field, "le", c->at);
    if (kind > c->kind)
        return json_pack("{s:{s:s}}", field, "lt", c->at);
    return json_pack("{s:[{s:{s:s}},{s:[{s:s},{s:{s:I}}]}]}", "or", field, "lt", c->at, "and",
                     field, c->at, "id", "lt", (json_int_t)c->id);
}

typedef struct page {
    json_t *items; /* candidates, any order */
    cursor_t cur;
    int limit;
    char *err;
    size_t errlen;
} page_t;

static void add_item(page_t *p, int kind, const char *at, int64_t id, json_t *item)
{
    json_object_set_new(item, "kind", json_string(kind_names[kind]));
    json_object_set_new(item, "at", json_string(at));
    json_object_set_new(item, "_k", json_integer(kind));
    json_object_set_new(item, "_id", json_integer(id));
    json_array_append_new(p->items, item);
}

static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void summarize(json_t *item, const char *text)
{
    if (!text)
        return;
    char s[161];
    size_t n = strlen(text);
    if (n > 150) {
        n = 150;
        while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
            n--; /* not in the middle of a letter */
    }
    memcpy(s, text, n);
    s[n] = '\0';
    for (char *q = s; *q; q++)
        if (*q == '\n' || *q == '\r' || *q == '\t')
            *q = ' ';
    json_object_set_new(item, "summary", json_string(s));
}

/* ---- the sources -------------------------------------------------------------------------- */

/* Whether the last failure was the caller's role not reading an entity: that source is then
 * simply not on its timeline. */
static bool not_readable(const char *err)
{
    return strstr(err, "may not read") != NULL;
}

static int src_interactions(rapport_host *h, page_t *p, const char *target)
{
    /* Keys "target|at|id": the page is one index range, read backwards. */
    char lo[CM_TARGET_LEN + 2], hi[CM_TARGET_LEN + 64];
    snprintf(lo, sizeof lo, "%s|", target);
    const cursor_t *c = &p->cur;
    const char *op = "lt";
    if (!c->at[0])
        snprintf(hi, sizeof hi, "%s|~", target);
    else if (K_INTERACTION < c->kind)
        snprintf(hi, sizeof hi, "%s|%s|~", target, c->at), op = "le";
    else if (K_INTERACTION > c->kind)
        snprintf(hi, sizeof hi, "%s|%s|", target, c->at);
    else
        snprintf(hi, sizeof hi, "%s|%s|%012" PRId64, target, c->at, c->id);
    json_t *links = cm_find(h, "interaction_link",
                            json_pack("{s:{s:{s:s,s:s}},s:s,s:i,s:[s]}", "where", "key", "ge", lo,
                                      op, hi, "order", "-key", "limit", p->limit + 1, "fields",
                                      "interaction"),
                            p->err, p->errlen);
    if (!links)
        return not_readable(p->err) ? 0 : RAPPORT_EIO;
    json_t *ids = json_array();
    size_t i;
    json_t *l;
    json_array_foreach(links, i, l) json_array_append(ids, json_object_get(l, "interaction"));
    json_decref(links);
    if (json_array_size(ids) == 0) {
        json_decref(ids);
        return 0;
    }
    /* Read as the caller: what its role may not see is not returned. */
    json_t *rows = cm_find(h, "interaction",
                           json_pack("{s:{s:{s:o}},s:i}", "where", "id", "in", ids, "limit",
                                     p->limit + 1),
                           p->err, p->errlen);
    if (!rows)
        return not_readable(p->err) ? 0 : RAPPORT_EIO;
    json_t *r;
    json_array_foreach(rows, i, r) {
        const char *at = str(r, "at") ? str(r, "at") : str(r, "created_at");
        json_t *item = json_pack("{s:s,s:O,s:s?,s:s?,s:s?,s:s?,s:s?,s:O?,s:O?}", "entity",
                                 "interaction", "id", json_object_get(r, "id"), "channel",
                                 str(r, "channel"), "direction", str(r, "direction"), "status",
                                 str(r, "status"), "subject", str(r, "subject"), "author",
                                 str(r, "author"), "contact", json_object_get(r, "contact"),
                                 "thread", json_object_get(r, "thread"));
        summarize(item, str(r, "body"));
        add_item(p, K_INTERACTION, at, json_integer_value(json_object_get(r, "id")), item);
    }
    json_decref(rows);
    return 0;
}

/* Records of @p entity whose @p where matches, by their creation time. */
static int src_records(rapport_host *h, page_t *p, int kind, const char *entity, json_t *where,
                       const char *subject_field)
{
    if (!cm_api->has_entity(h, entity)) {
        json_decref(where);
        return 0;
    }
    json_t *bf = before_filter(&p->cur, kind, "created_at");
    if (bf)
        where = json_pack("{s:[o,o]}", "and", where, bf);
    json_t *rows = cm_find(h, entity, json_pack("{s:o,s:s,s:i}", "where", where, "order",
                                                "-created_at,-id", "limit", p->limit + 1),
                           p->err, p->errlen);
    if (!rows)
        return not_readable(p->err) ? 0 : RAPPORT_EIO;
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) {
        json_t *item = json_pack("{s:s,s:O,s:s?,s:s?}", "entity", entity, "id",
                                 json_object_get(r, "id"), "subject", str(r, subject_field),
                                 "status", str(r, "status"));
        if (kind == K_ACTIVITY)
            json_object_set(item, "activity", json_object_get(r, "kind"));
        if (kind == K_ORDER) {
            char s[120];
            snprintf(s, sizeof s, "order %lld: %s %s, %s",
                     (long long)json_integer_value(json_object_get(r, "id")),
                     str(r, "total") ?: "", str(r, "currency") ?: "", str(r, "status") ?: "");
            summarize(item, s);
        } else {
            summarize(item, str(r, "description"));
        }
        add_item(p, kind, str(r, "created_at"), json_integer_value(json_object_get(r, "id")),
                 item);
    }
    json_decref(rows);
    return 0;
}

/* "stage: qualified → proposal" or "email: a@x → b@y, phone: …" of an event's changes. */
static void change_text(json_t *changes, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    const char *k;
    json_t *v;
    json_object_foreach(changes, k, v) {
        if (n >= cap - 1)
            break;
        char *a = json_dumps(json_array_get(v, 0), JSON_ENCODE_ANY);
        char *b = json_dumps(json_array_get(v, 1), JSON_ENCODE_ANY);
        int w = snprintf(out + n, cap - n, "%s%s: %.60s → %.60s", n ? ", " : "", k,
                         a ? a : "null", b ? b : "null");
        free(a);
        free(b);
        if (w < 0)
            break;
        n += (size_t)w;
        if (n >= cap)
            n = cap - 1;
    }
}

static int src_events(rapport_host *h, page_t *p, const char *entity, int64_t id, bool stage,
                      bool change)
{
    /* Paging past an event: the log is read from it on, not from its newest again. */
    int64_t before = p->cur.at[0] && (p->cur.kind == K_STAGE || p->cur.kind == K_CHANGE)
                         ? p->cur.id
                         : 0;
    int found = 0, scanned = 0;
    while (found <= p->limit && scanned < EVENT_SCAN) {
        char q[80];
        snprintf(q, sizeof q, "{\"before\": %" PRId64 ", \"limit\": 200}", before);
        json_t *page = cm_json(cm_api->events(h, entity, id, q));
        if (!page)
            return cm_fail(p->err, p->errlen, RAPPORT_EIO, "%s", cm_api->last_error(h));
        json_t *data = json_object_get(page, "data");
        size_t i;
        json_t *ev;
        json_array_foreach(data, i, ev) {
            scanned++;
            const char *type = str(ev, "type") ? str(ev, "type") : "";
            const char *dot = strrchr(type, '.');
            bool is_stage = dot && strcmp(dot, ".stage_changed") == 0;
            int kind = is_stage ? K_STAGE : K_CHANGE;
            if ((is_stage && !stage) || (!is_stage && !change))
                continue;
            const char *at = str(ev, "at");
            int64_t seq = json_integer_value(json_object_get(ev, "seq"));
            if (!at || !older(&p->cur, at, kind, seq))
                continue;
            char text[400];
            change_text(json_object_get(ev, "changes"), text, sizeof text);
            json_t *item = json_pack("{s:s,s:I,s:s,s:s?}", "entity", "event", "id",
                                     (json_int_t)seq, "event", type, "actor", str(ev, "actor"));
            summarize(item, text[0] ? text : type);
            add_item(p, kind, at, seq, item);
            found++;
        }
        json_t *next = json_object_get(page, "next");
        before = json_is_integer(next) ? json_integer_value(next) : 0;
        json_decref(page);
        if (!before)
            break;
    }
    return 0;
}

static int by_time_desc(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int d = strcmp(str(y, "at"), str(x, "at"));
    if (d)
        return d;
    int64_t kx = json_integer_value(json_object_get(x, "_k"));
    int64_t ky = json_integer_value(json_object_get(y, "_k"));
    if (kx != ky)
        return kx < ky ? 1 : -1;
    int64_t ix = json_integer_value(json_object_get(x, "_id"));
    int64_t iy = json_integer_value(json_object_get(y, "_id"));
    return (ix < iy) - (ix > iy);
}

json_t *cm_timeline(rapport_host *h, const char *entity, int64_t id, json_t *opts, int *code,
                    char *err, size_t errlen)
{
    if (code)
        *code = RAPPORT_EINVAL;
    page_t p = {.limit = DEFAULT_LIMIT, .err = err, .errlen = errlen};
    json_t *jl = json_object_get(opts, "limit"), *jb = json_object_get(opts, "before");
    json_t *jk = json_object_get(opts, "kinds");
    if (jl && (!json_is_integer(jl) || json_integer_value(jl) < 1 ||
               json_integer_value(jl) > MAX_LIMIT)) {
        cm_fail(err, errlen, RAPPORT_EINVAL, "limit: a number from 1 to %d", MAX_LIMIT);
        return NULL;
    }
    if (jl)
        p.limit = (int)json_integer_value(jl);
    if ((jb && !json_is_null(jb) && !json_is_string(jb)) ||
        cursor_parse(json_string_value(jb), &p.cur)) {
        cm_fail(err, errlen, RAPPORT_EINVAL, "before: not a cursor this timeline gave");
        return NULL;
    }
    bool want[NKINDS];
    for (int k = 0; k < NKINDS; k++)
        want[k] = !jk;
    size_t i;
    json_t *v;
    if (jk && !json_is_array(jk)) {
        cm_fail(err, errlen, RAPPORT_EINVAL, "kinds: a list of interaction, activity, ticket, "
                "order, stage, change");
        return NULL;
    }
    json_array_foreach(jk, i, v) {
        int k = 0;
        while (k < NKINDS && (!json_is_string(v) || strcmp(json_string_value(v), kind_names[k])))
            k++;
        if (k == NKINDS) {
            cm_fail(err, errlen, RAPPORT_EINVAL, "kinds: \"%s\" is not one of interaction, "
                    "activity, ticket, order, stage, change",
                    json_is_string(v) ? json_string_value(v) : "?");
            return NULL;
        }
        want[k] = true;
    }
    /* The record itself, as the caller may see it: no timeline of what it cannot read. */
    json_t *rec = cm_json(cm_api->get(h, entity, id));
    if (!rec) {
        cm_fail(err, errlen, RAPPORT_ENOTFOUND, "%s", cm_api->last_error(h));
        if (code)
            *code = RAPPORT_ENOTFOUND;
        return NULL;
    }
    json_decref(rec);
    char target[CM_TARGET_LEN];
    snprintf(target, sizeof target, "%s:%" PRId64, entity, id);
    p.items = json_array();
    int rc = 0;
    bool person = strcmp(entity, "contact") == 0 || strcmp(entity, "account") == 0;
    if (!rc && want[K_INTERACTION])
        rc = src_interactions(h, &p, target);
    if (!rc && want[K_ACTIVITY])
        rc = src_records(h, &p, K_ACTIVITY, "activity",
                         json_pack("{s:s,s:I}", "related_entity", entity, "related_id",
                                   (json_int_t)id), "subject");
    if (!rc && want[K_TICKET] && person)
        rc = src_records(h, &p, K_TICKET, "ticket", json_pack("{s:I}", entity, (json_int_t)id),
                         "subject");
    if (!rc && want[K_ORDER] && person)
        rc = src_records(h, &p, K_ORDER, "order", json_pack("{s:I}", entity, (json_int_t)id),
                         "status");
    if (!rc && (want[K_STAGE] || want[K_CHANGE]))
        rc = src_events(h, &p, entity, id, want[K_STAGE], want[K_CHANGE]);
    if (rc) {
        json_decref(p.items);
        return NULL;
    }
    size_t n = json_array_size(p.items);
    json_t **all = calloc(n ? n : 1, sizeof *all);
    for (i = 0; i < n; i++)
        all[i] = json_array_get(p.items, i);
    qsort(all, n, sizeof *all, by_time_desc);
    json_t *data = json_array();
    size_t keep = n < (size_t)p.limit ? n : (size_t)p.limit;
    for (i = 0; i < keep; i++)
        json_array_append(data, all[i]);
    json_t *next = json_null();
    if (n > keep && keep > 0) {
        json_t *last = all[keep - 1];
        next = json_sprintf("%s|%lld|%lld", str(last, "at"),
                            (long long)json_integer_value(json_object_get(last, "_k")),
                            (long long)json_integer_value(json_object_get(last, "_id")));
    }
    json_array_foreach(data, i, v) {
        json_object_del(v, "_k");
        json_object_del(v, "_id");
    }
    free(all);
    json_decref(p.items);
    return json_pack("{s:o,s:o}", "data", data, "next", next);
}

/* ---- doors -------------------------------------------------------------------------------- */

static int lua_timeline(rapport_host *h, const rapport_api *api, const char *args, char **result,
                        void *ud, char *err, size_t errlen)
{
    (void)api;
    (void)ud;
    json_t *a = json_loads(args, 0, NULL);
    const char *e = json_string_value(json_array_get(a, 0));
    json_t *jid = json_array_get(a, 1), *opts = json_array_get(a, 2);
    int rc = 0;
    if (!e || !json_is_integer(jid))
        rc = cm_fail(err, errlen, RAPPORT_EINVAL, "timeline(entity, id [, {before, limit, "
                     "kinds}])");
    else if (opts && !json_is_object(opts))
        rc = cm_fail(err, errlen, RAPPORT_EINVAL, "timeline: the options are a table");
    json_t *t = rc ? NULL : cm_timeline(h, e, json_integer_value(jid), opts, &rc, err, errlen);
    json_decref(a);
    if (!t)
        return rc;
    *result = cm_dump(t);
    return 0;
}

static int cmd_timeline(rapport_host *h, const rapport_api *api, int argc, char **argv,
                        void *ud)
{
    (void)api;
    (void)ud;
    json_t *opts = json_object();
    bool as_json = false, bad = false;
    const char *pos[2] = {NULL, NULL};
    int npos = 0;
    for (int i = 1; i < argc && !bad; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0)
            as_json = true;
        else if ((strcmp(a, "--before") == 0 || strcmp(a, "--limit") == 0 ||
                  strcmp(a, "--kind") == 0) && i + 1 < argc) {
            const char *v = argv[++i];
            if (a[2] == 'b')
                json_object_set_new(opts, "before", json_string(v));
            else if (a[2] == 'l') {
                char *end;
                long long n = strtoll(v, &end, 10);
                bad = *end || end == v;
                json_object_set_new(opts, "limit", json_integer(n));
            } else {
                json_t *kinds = json_array();
                char buf[200];
                snprintf(buf, sizeof buf, "%s", v);
                for (char *s, *t = strtok_r(buf, ",", &s); t; t = strtok_r(NULL, ",", &s))
                    json_array_append_new(kinds, json_string(t));
                json_object_set_new(opts, "kinds", kinds);
            }
        } else if (a[0] != '-' && npos < 2)
            pos[npos++] = a;
        else
            bad = true;
    }
    char *end = NULL;
    long long id = npos == 2 ? strtoll(pos[1], &end, 10) : 0;
    if (bad || npos != 2 || !end || *end || id <= 0) {
        json_decref(opts);
        fprintf(stderr, "usage: rapport timeline ENTITY ID [--json] [--before CURSOR] "
                        "[--limit N] [--kind K,K…]\n");
        return 2;
    }
    char err[512];
    json_t *t = cm_timeline(h, pos[0], id, opts, NULL, err, sizeof err);
    json_decref(opts);
    if (!t) {
        fprintf(stderr, "rapport: timeline: %s\n", err);
        return 1;
    }
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(t, "data"), i, it) {
        if (as_json) {
            char *s = json_dumps(it, JSON_COMPACT);
            printf("%s\n", s);
            free(s);
            continue;
        }
        const char *ch = str(it, "channel");
        printf("%.19s  %-11s %-6s %-8s %s%s%s\n", str(it, "at"), str(it, "kind"),
               ch ? ch : "", str(it, "direction") ? str(it, "direction") : "",
               str(it, "subject") ? str(it, "subject") : "",
               str(it, "subject") && str(it, "summary") ? " — " : "",
               str(it, "summary") ? str(it, "summary") : "");
    }
    json_t *next = json_object_get(t, "next");
    if (json_is_string(next))
        fprintf(as_json ? stderr : stdout, "more: --before '%s'\n", json_string_value(next));
    json_decref(t);
    return 0;
}

/* Reads "k=v&k=v" of the record view's query; unknown names are refused. */
static int query_opts(const char *q, json_t *opts, char *err, size_t errlen)
{
    char buf[1024];
    if (strlen(q) >= sizeof buf)
        return cm_fail(err, errlen, RAPPORT_EINVAL, "the query is too long");
    snprintf(buf, sizeof buf, "%s", q);
    for (char *s, *kv = strtok_r(buf, "&", &s); kv; kv = strtok_r(NULL, "&", &s)) {
        char *eq = strchr(kv, '=');
        if (!eq || !eq[1])
            return cm_fail(err, errlen, RAPPORT_EINVAL, "%s: a parameter needs a value", kv);
        *eq = '\0';
        /* Percent-decode the value ('|' of a cursor arrives as %7C). */
        char *v = eq + 1, *w = v;
        for (char *r = v; *r; r++) {
            if (*r == '%' && r[1] && r[2]) {
                char hex[3] = {r[1], r[2], 0};
                char *end;
                long c = strtol(hex, &end, 16);
                if (*end || c <= 0)
                    return cm_fail(err, errlen, RAPPORT_EINVAL, "%s: a bad %%-escape", kv);
                *w++ = (char)c;
                r += 2;
            } else {
                *w++ = *r == '+' ? ' ' : *r;
            }
        }
        *w = '\0';
        if (strcmp(kv, "before") == 0)
            json_object_set_new(opts, "before", json_string(v));
        else if (strcmp(kv, "limit") == 0) {
            char *end;
            long long n = strtoll(v, &end, 10);
            if (*end)
                return cm_fail(err, errlen, RAPPORT_EINVAL, "limit: a number");
            json_object_set_new(opts, "limit", json_integer(n));
        } else if (strcmp(kv, "kinds") == 0) {
            json_t *kinds = json_array();
            for (char *s2, *t = strtok_r(v, ",", &s2); t; t = strtok_r(NULL, ",", &s2))
                json_array_append_new(kinds, json_string(t));
            json_object_set_new(opts, "kinds", kinds);
        } else {
            return cm_fail(err, errlen, RAPPORT_EINVAL, "%s: the timeline takes before, limit "
                           "and kinds", kv);
        }
    }
    return 0;
}

static int route_timeline(rapport_host *h, const rapport_api *api, const rapport_request *req,
                          int *status, char **body, void *ud, char *err, size_t errlen)
{
    (void)api;
    (void)ud;
    char entity[64];
    int64_t id;
    if (cm_parse_target(req->rest[0] == '/' ? req->rest + 1 : req->rest, entity, sizeof entity,
                        &id))
        return cm_fail(err, errlen, RAPPORT_ENOTFOUND, "GET /api/v1/<entity>/<id>/timeline");
    json_t *opts = json_object();
    int rc = query_opts(req->query, opts, err, errlen);
    int code = rc;
    json_t *t = rc ? NULL : cm_timeline(h, entity, id, opts, &code, err, errlen);
    json_decref(opts);
    if (!t)
        return code;
    /* A customer (a record session) is told what happened, not which colleague did it: the
     * portal's role hides staff's names in the records (owner, author) too. */
    size_t i;
    json_t *it;
    json_array_foreach(req->subject ? json_object_get(t, "data") : NULL, i, it)
        json_object_del(it, "actor");
    *status = 200;
    *body = cm_dump(t);
    return 0;
}

int cm_timeline_init(rapport_host *h, char *err, size_t errlen)
{
    if (cm_api->lua_function(h, "timeline", lua_timeline, NULL) ||
        cm_api->lua_function(h, "/timeline", lua_timeline, NULL) ||
        cm_api->command(h, "timeline", "timeline ENTITY ID [--json] [--before CURSOR] "
                        "[--limit N] [--kind K,K…]: a record's history, newest first",
                        cmd_timeline, NULL) ||
        cm_api->record_route(h, "timeline", route_timeline, NULL))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "%s", cm_api->last_error(h));
    return 0;
}
