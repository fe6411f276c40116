/*
 * fixture.c — the fixture plugins of the test suite, one shared object per FIXTURE value, each
 * built to be loaded or refused for one reason (see tests/plugins/CMakeLists.txt).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapport_plugin.h"

#if FIXTURE_GOOD || FIXTURE_INITFAIL
/* Upper-cases the first letter of a good_item's name and gives it 1 point when it has none.
 * The name is read as text into a buffer too small for long ones (read again, whole). */
static int capitalise(rapport_host *h, const rapport_api *api, rapport_change *c, void *ud,
                      char *err, size_t errlen)
{
    for (int i = 0; i < api->change_count(c); i++) {
        char small[8], *name = small;
        long len = api->change_get_text(c, i, "name", small, sizeof small);
        if (len >= (long)sizeof small) {
            name = malloc((size_t)len + 1);
            if (!name || api->change_get_text(c, i, "name", name, (size_t)len + 1) != len) {
                free(name);
                snprintf(err, errlen, "good_item %d: the name read twice differs", i);
                return RAPPORT_EIO;
            }
        }
        int rc = 0;
        if (len >= 0 && strcmp(name, "forbidden") == 0) {
            snprintf(err, errlen, "good_item %d: the name \"forbidden\" is not allowed", i);
            rc = RAPPORT_EVETO;
        } else if (len >= 0 && strcmp(name, "not utf-8") == 0) {
            /* The host refuses to store a string that is not UTF-8, and says so. */
            snprintf(err, errlen, "good_item %d: change_set_text of a lone 0xff said %d", i,
                     api->change_set_text(c, i, "name", "\xff"));
            rc = RAPPORT_EVETO;
        } else if (len > 0 && name[0] >= 'a' && name[0] <= 'z') {
            name[0] = (char)(name[0] - 'a' + 'A');
            api->change_set_text(c, i, "name", name);
        }
        if (name != small)
            free(name);
        if (rc)
            return rc;
        /* Points: absent gets 1; a number is not text (the host says which). */
        long pts = api->change_get_text(c, i, "points", small, sizeof small);
        if (pts == RAPPORT_ENOTFOUND)
            api->change_set(c, i, "points", "1");
        else if (pts != RAPPORT_EINVAL) {
            snprintf(err, errlen, "good_item %d: points read as text gave %ld", i, pts);
            return RAPPORT_EVETO;
        }
    }
    return 0;
}

static int seen(rapport_host *h, const rapport_api *api, const rapport_event *ev, void *ud,
                char *err, size_t errlen)
{
    char payload[128];
    snprintf(payload, sizeof payload, "{\"item\": %lld}", (long long)ev->record_id);
    return api->emit(h, "good.seen", ev->entity, ev->record_id, payload);
}

static int tick(rapport_host *h, const rapport_api *api, const rapport_job *job, void *ud,
                char *err, size_t errlen)
{
    return api->emit(h, "good.ticked", NULL, 0, job->payload);
}

static int twice(rapport_host *h, const rapport_api *api, const char *args, char **result,
                 void *ud, char *err, size_t errlen)
{
    long long n = 0;
    if (sscanf(args, "[%lld]", &n) != 1) {
        snprintf(err, errlen, "double needs one integer, got %s", args);
        return RAPPORT_EINVAL;
    }
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", 2 * n);
    *result = api->strdup(buf);
    return 0;
}

static int hello(rapport_host *h, const rapport_api *api, int argc, char **argv, void *ud)
{
    printf("hello from %s with %d argument%s\n", "good", argc - 1, argc == 2 ? "" : "s");
    return 0;
}
#endif

#if FIXTURE_GOOD
/* crm.good.dec(op, …): the host's time and decimal functions, as a plugin calls them; a
 * refusal is raised with the host's message. Arguments come as a JSON array of scalars. */
static int raise(rapport_host *h, const rapport_api *api, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s", api->last_error(h));
    return RAPPORT_EINVAL;
}

static int dec(rapport_host *h, const rapport_api *api, const char *args, char **result,
               void *ud, char *err, size_t errlen)
{
    char op[16] = "", a[64] = "", b[64] = "", out[64];
    int x = 0, y = 0, z = 0;
    int64_t p = 0, q = 0, r = 0;
    if (sscanf(args, "[\"%15[^\"]\",\"%63[^\"]\",%d,\"%63[^\"]\",%d,%d]", op, a, &x, b, &y,
               &z) == 6 && strcmp(op, "mul") == 0) {
        if (api->dec_parse(h, a, x, &p) || api->dec_parse(h, b, y, &q) ||
            api->dec_mul(h, p, x, q, y, z, &r) || api->dec_format(h, r, z, out, sizeof out))
            return raise(h, api, err, errlen);
    } else if (sscanf(args, "[\"%15[^\"]\",\"%63[^\"]\",\"%63[^\"]\",%d]", op, a, b, &x) == 4 &&
               strcmp(op, "add") == 0) {
        if (api->dec_parse(h, a, x, &p) || api->dec_parse(h, b, x, &q) ||
            api->dec_add(h, p, q, &r) || api->dec_format(h, r, x, out, sizeof out))
            return raise(h, api, err, errlen);
    } else if (sscanf(args, "[\"%15[^\"]\",\"%63[^\"]\",%d,\"%63[^\"]\",%d]", op, a, &x, b,
                      &y) == 5 && strcmp(op, "cmp") == 0) {
        if (api->dec_parse(h, a, x, &p) || api->dec_parse(h, b, y, &q))
            return raise(h, api, err, errlen);
        snprintf(out, sizeof out, "%d", api->dec_cmp(p, x, q, y));
        *result = api->strdup(out);
        return 0;
    } else if (sscanf(args, "[\"%15[^\"]\",\"%63[^\"]\",%d]", op, a, &x) == 3 &&
               strcmp(op, "parse") == 0) {
        if (api->dec_parse(h, a, x, &p) || api->dec_format(h, p, x, out, sizeof out))
            return raise(h, api, err, errlen);
    } else if (sscanf(args, "[\"%15[^\"]\",\"%63[^\"]\"]", op, a) == 2 &&
               strcmp(op, "time") == 0) {
        if (api->time_parse(h, a, &p) || api->time_format(h, p, out))
            return raise(h, api, err, errlen);
    } else if (sscanf(args, "[\"%15[^\"]\",\"%63[^\"]\"]", op, a) == 2 &&
               strcmp(op, "delay") == 0) {
        if (api->delay_parse(h, a, &p))
            return raise(h, api, err, errlen);
        snprintf(out, sizeof out, "%lld", (long long)p);
        *result = api->strdup(out);
        return 0;
    } else if (sscanf(args, "[\"%15[^\"]\",%lld]", op, (long long *)&p) == 2 &&
               strcmp(op, "fmt") == 0) {
        if (api->time_format(h, p, out))
            return raise(h, api, err, errlen);
    } else {
        snprintf(err, errlen, "dec: unknown call %s", args);
        return RAPPORT_EINVAL;
    }
    char json[80];
    snprintf(json, sizeof json, "\"%s\"", out);
    *result = api->strdup(json);
    return 0;
}

/* Format "goodlist" (files ending .good): one good_item name a line. */
static int goodlist_write(rapport_host *h, const rapport_api *api, rapport_export *x,
                          char **out, void *ud, char *err, size_t errlen)
{
    if (x->phase == RAPPORT_EXPORT_BEGIN) {
        if (!strstr(x->fields, "\"name\":")) {
            snprintf(err, errlen, "goodlist is for things with a name: %s has none", x->entity);
            return RAPPORT_EINVAL;
        }
        *out = api->strdup("# goodlist\n");
    } else if (x->phase == RAPPORT_EXPORT_RECORD) {
        const char *n = strstr(x->record, "\"name\":\"");
        if (!n)
            return 0; /* left out */
        n += 8;
        size_t len = strcspn(n, "\"");
        char *line = malloc(len + 2);
        memcpy(line, n, len);
        memcpy(line + len, "\n", 2);
        *out = line;
    } else if (!x->failed) {
        *out = api->strdup("# end\n");
    }
    return 0;
}

static int goodlist_read(rapport_host *h, const rapport_api *api, const char *entity,
                         const char *text, size_t len, rapport_sink_fn sink, void *sink_ud,
                         void *ud, char *err, size_t errlen)
{
    long line = 0;
    for (const char *p = text; p < text + len; p += strcspn(p, "\n") + 1) {
        line++;
        size_t n = strcspn(p, "\n");
        if (*p == '#' || n == 0)
            continue;
        if (n > 200 || memchr(p, '"', n)) {
            snprintf(err, errlen, "line %ld: not a name", line);
            return RAPPORT_EINVAL;
        }
        char rec[256];
        snprintf(rec, sizeof rec, "{\"name\": \"%.*s\", \"colour\": \"red\"}", (int)n, p);
        if (sink(sink_ud, rec, line))
            break;
    }
    return 0;
}

static const rapport_format goodlist = {"goodlist", ".good .goods", "one name a line",
                                        goodlist_read, goodlist_write};
#endif

#if FIXTURE_GOOD
/* The files the good plugin serves at /good/ (api->serve_assets), and a bundle that asks for
 * the engine's own /console/, which the server refuses when it starts. */
static const unsigned char good_page[] = "<!doctype html><title>good</title><p>the good page</p>";
static const unsigned char good_js[] = "document.title = 'good';";
static const rapport_asset good_files[] = {
    {"index.html", good_page, sizeof good_page - 1},
    {"app/good.js", good_js, sizeof good_js - 1},
    {NULL, NULL, 0},
};

/* GET items (and items/<id>), POST hook (public): routes for the OpenAPI entries. */
static int good_route(rapport_host *h, const rapport_api *api, const rapport_request *req,
                      int *status, char **body, void *ud, char *err, size_t errlen)
{
    *body = api->strdup("{}");
    return 0;
}

/* The operations crm.good.doc documents a route with, by number: one fit, the others each
 * wrong in one way. */
static const char *const good_ops[] = {
    "{\"summary\": \"Items, or one item\", \"responses\": {\"200\": {\"description\": \"items\"}}}",
    "{\"summary\": \"A gateway's callback\"}",
    "{\"summary\": \"s\", \"servers\": []}",
    "{\"description\": \"no summary\"}",
    "{\"summary\": ",
    "{\"summary\": \"s\", \"responses\": []}",
    "{\"summary\": \"s\", \"tags\": [1]}",
    "[]",
};

/* crm.good.doc(method, path, n): api->route_doc with operation good_ops[n], its refusal
 * raised with the host's message. */
static int doc(rapport_host *h, const rapport_api *api, const char *args, char **result,
               void *ud, char *err, size_t errlen)
{
    char method[16], path[64];
    int n = -1;
    if (sscanf(args, " [ \"%15[^\"]\" , \"%63[^\"]\" , %d ]", method, path, &n) != 3 || n < 0 ||
        n >= (int)(sizeof good_ops / sizeof *good_ops)) {
        snprintf(err, errlen, "doc(method, path, n): got %s", args);
        return RAPPORT_EINVAL;
    }
    if (api->route_doc(h, method, path, good_ops[n])) {
        snprintf(err, errlen, "%s", api->last_error(h));
        return RAPPORT_EINVAL;
    }
    *result = api->strdup("true");
    return 0;
}

/* crm.good.rows(query): the records find_rows hands over, each as "v1|v2|…" ("-" for a null),
 * page after page along the cursor; the query is find's JSON text, in single quotes. */
typedef struct {
    char out[2048];
    size_t len;
} rows_out_t;

static int one_row(void *ud, int n, const char *const *v, const size_t *lens)
{
    rows_out_t *o = ud;
    if (o->len + 512 > sizeof o->out)
        return 1; /* more than this test holds */
    o->len += (size_t)snprintf(o->out + o->len, sizeof o->out - o->len, "%s\"", o->len > 1 ? "," : "");
    for (int i = 0; i < n && o->len + 100 < sizeof o->out; i++)
        o->len += (size_t)snprintf(o->out + o->len, sizeof o->out - o->len, "%s%.*s",
                                   i ? "|" : "", v[i] ? (int)(lens[i] < 60 ? lens[i] : 60) : 1,
                                   v[i] ? v[i] : "-");
    o->len += (size_t)snprintf(o->out + o->len, sizeof o->out - o->len, "\"");
    return 0;
}

static int rows(rapport_host *h, const rapport_api *api, const char *args, char **result,
                void *ud, char *err, size_t errlen)
{
    char query[512];
    if (sscanf(args, "[\"%500[^\"]\"]", query) != 1 || strchr(query, '\\')) {
        snprintf(err, errlen, "rows needs the query as text, got %s", args);
        return RAPPORT_EINVAL;
    }
    for (char *q = query; *q; q++)
        if (*q == '\'')
            *q = '"'; /* the test writes the query with single quotes */
    rows_out_t o = {.out = "[", .len = 1};
    char *next = NULL, page[600];
    int rc = api->find_rows(h, "good_item", query, one_row, &o, &next);
    size_t qlen = strlen(query);
    while (qlen && query[qlen - 1] != '}')
        qlen--;
    while (rc == 0 && next && qlen) { /* the same query, after the cursor */
        snprintf(page, sizeof page, "%.*s, \"after\": \"%s\"}", (int)qlen - 1, query, next);
        api->free(next);
        next = NULL;
        rc = api->find_rows(h, "good_item", page, one_row, &o, &next);
    }
    api->free(next);
    if (rc) {
        snprintf(err, errlen, "%s", rc > 0 ? "more rows than the test holds" : api->last_error(h));
        return rc > 0 ? RAPPORT_EINVAL : rc;
    }
    snprintf(o.out + o.len, sizeof o.out - o.len, "]");
    *result = api->strdup(o.out);
    return 0;
}

static int good_init(rapport_host *h, const rapport_api *api, char *err, size_t errlen)
{
    api->log(h, RAPPORT_LOG_INFO, "init good");
    static const char spec[] = "{\"fields\": {\"name\": {\"type\": \"text\", "
                               "\"searchable\": true}, \"points\": {\"type\": \"integer\"}}}";
    /* Declared at every init where the host can; defined once where it is older. */
    if (RAPPORT_HAS(api, declare) ? api->declare(h, "good_item", spec)
                                  : !api->has_entity(h, "good_item") &&
                                        api->define_entity(h, "good_item", spec))
        goto fail;
    if (api->hook(h, "good_item", RAPPORT_CREATE, 0, capitalise, NULL) ||
        api->on(h, "seen", "good_item.created", seen, NULL) ||
        api->job(h, "good.tick", tick, NULL) || api->lua_function(h, "double", twice, NULL) ||
        api->command(h, "hello", "say hello", hello, NULL) ||
        api->lua_function(h, "dec", dec, NULL))
        goto fail;
    if (RAPPORT_HAS(api, find_rows) && api->lua_function(h, "rows", rows, NULL))
        goto fail;
    if (RAPPORT_HAS(api, format) && api->format(h, &goodlist, NULL))
        goto fail;
    if (RAPPORT_HAS(api, route_doc) &&
        (api->route(h, "GET", "items", good_route, NULL) ||
         api->route(h, "POST", "items", good_route, NULL) ||
         api->route(h, "*", "any", good_route, NULL) ||
         api->public_route(h, "POST", "hook", good_route, NULL) ||
         api->lua_function(h, "doc", doc, NULL)))
        goto fail;
    if (RAPPORT_HAS(api, serve_assets) && (api->serve_assets(h, "/good/", good_files) ||
                                           api->serve_assets(h, "/console/", good_files)))
        goto fail;
    return 0;
fail:
    snprintf(err, errlen, "%s", api->last_error(h));
    return RAPPORT_EINVAL;
}
static void good_fini(rapport_host *h, const rapport_api *api)
{
    api->log(h, RAPPORT_LOG_INFO, "fini good");
}
static const rapport_plugin desc = {RAPPORT_PLUGIN_ABI, "good", "1.2.0", "a plugin that works",
                                    NULL, good_init, good_fini};
#endif

#if FIXTURE_CHAIN_B
#define FIXTURE_NAME "chainb"
#elif FIXTURE_CHAIN_C
#define FIXTURE_NAME "chainc"
#endif

#if FIXTURE_CHAIN_B || FIXTURE_CHAIN_C
static int chain_init(rapport_host *h, const rapport_api *api, char *err, size_t errlen)
{
    api->log(h, RAPPORT_LOG_INFO, "init %s", FIXTURE_NAME);
    return 0;
}
static void chain_fini(rapport_host *h, const rapport_api *api)
{
    api->log(h, RAPPORT_LOG_INFO, "fini %s", FIXTURE_NAME);
}
#endif

#if FIXTURE_CHAIN_B
static const rapport_dep deps[] = {{"good", "1.0.0"}, {NULL, NULL}};
static const rapport_plugin desc = {RAPPORT_PLUGIN_ABI, "chainb", "1.0.0", "needs good", deps,
                                    chain_init, chain_fini};
#endif

#if FIXTURE_CHAIN_C
static const rapport_dep deps[] = {{"chainb", NULL}, {NULL, NULL}};
static const rapport_plugin desc = {RAPPORT_PLUGIN_ABI, "chainc", "0.1.0", "needs chainb", deps,
                                    chain_init, chain_fini};
#endif

#if FIXTURE_ABI || FIXTURE_MISSING || FIXTURE_TOOLD || FIXTURE_CYCLE1 || FIXTURE_CYCLE2
static int nop_init(rapport_host *h, const rapport_api *api, char *err, size_t errlen)
{
    return 0;
}
#endif

#if FIXTURE_ABI
static const rapport_plugin desc = {99, "future", "9.0.0", "built for another ABI", NULL,
                                    nop_init, NULL};
#endif
#if FIXTURE_MISSING
static const rapport_dep deps[] = {{"ghost", NULL}, {NULL, NULL}};
static const rapport_plugin desc = {RAPPORT_PLUGIN_ABI, "lonely", "1.0.0", "needs ghost", deps,
                                    nop_init, NULL};
#endif
#if FIXTURE_TOOLD
static const rapport_dep deps[] = {{"good", "2.0.0"}, {NULL, NULL}};
static const rapport_plugin desc = {RAPPORT_PLUGIN_ABI, "picky", "1.0.0", "needs good 2", deps,
                                    nop_init, NULL};
#endif
#if FIXTURE_CYCLE1
static const rapport_dep deps[] = {{"cycletwo", NULL}, {NULL, NULL}};
static const rapport_plugin desc = {RAPPORT_PLUGIN_ABI, "cycleone", "1.0.0", "cycle", deps,
                                    nop_init, NULL};
#endif
#if FIXTURE_CYCLE2
static const rapport_dep deps[] = {{"cycleone", NULL}, {NULL, NULL}};
static const rapport_plugin desc = {RAPPORT_PLUGIN_ABI, "cycletwo", "1.0.0", "cycle", deps,
                                    nop_init, NULL};
#endif
#if FIXTURE_DUP
static int dup_init(rapport_host *h, const rapport_api *api, char *err, size_t errlen)
{
    return 0;
}
static const rapport_plugin desc = {RAPPORT_PLUGIN_ABI, "good", "1.0.0", "a second good",
                                    NULL, dup_init, NULL};
#endif

#if FIXTURE_INITFAIL
/* Registers a little of everything, then fails: the host must take all of it back. */
static int fail_init(rapport_host *h, const rapport_api *api, char *err, size_t errlen)
{
    api->define_entity(h, "doomed_thing", "{\"fields\": {\"name\": {\"type\": \"text\"}}}");
    api->hook(h, "*", RAPPORT_CREATE, 0, capitalise, NULL);
    api->on(h, "seen", "*", seen, NULL);
    api->job(h, "doomed.tick", tick, NULL);
    api->lua_function(h, "double", twice, NULL);
    api->command(h, "hello", "say hello", hello, NULL);
    snprintf(err, errlen, "the licence key is missing (set plugin.doomed.key)");
    return RAPPORT_EINVAL;
}
static const rapport_plugin desc = {RAPPORT_PLUGIN_ABI, "doomed", "1.0.0", "fails to start",
                                    NULL, fail_init, NULL};
#endif

#if !FIXTURE_NOENTRY
RAPPORT_EXPORT const rapport_plugin *rapport_plugin_entry(void)
{
    return &desc;
}
#else
/* Exports a function, but not the entry function. */
RAPPORT_EXPORT int something_else(void)
{
    return 42;
}
#endif
