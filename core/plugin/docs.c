/*
 * docs.c — what the plugins' routes are, told to the world: api->route_doc keeps an OpenAPI
 * operation for a route, and rp_plugins_openapi() lists every route (documented or not) in the
 * engine's OpenAPI document. Also api->search, the store's full-text search as a route's caller.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "rapport/plugin.h"

/* The keys of an OpenAPI 3 operation object a plugin may give (callbacks, servers and
 * security are the engine's to say). */
static const char *const op_keys[] = {"summary", "description", "operationId", "parameters",
                                      "requestBody", "responses", "tags", "deprecated",
                                      "externalDocs", NULL};

static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", NULL};

/* @p method in lower case into @p out (room for 16). */
static void lower_case(const char *method, char out[16])
{
    int i = 0;
    for (; method[i] && i < 15; i++)
        out[i] = (char)tolower((unsigned char)method[i]);
    out[i] = '\0';
}

/* Whether @p h serves record view @p name (/api/v1/<entity>/<id>/<name>). */
static bool is_record_view(const rapport_host *h, const char *name)
{
    for (reg_t *r = h->P->regs; r; r = r->next)
        if (r->h == h && r->kind == 9 && strcmp(r->name, name) == 0)
            return true;
    return false;
}

/* The route of @p h answering @p method that @p path falls under (its own path, or it and
 * more segments): the longest that fits, or NULL. */
static reg_t *route_of(const rapport_host *h, const char *method, const char *path)
{
    reg_t *best = NULL;
    size_t best_len = 0;
    for (reg_t *r = h->P->regs; r; r = r->next) {
        if (r->h != h || (r->kind != 6 && r->kind != 8) ||
            (strcmp(r->help, "*") != 0 && strcmp(r->help, method) != 0))
            continue;
        size_t n = strlen(r->name);
        bool fits = strncmp(path, r->name, n) == 0 && (!path[n] || path[n] == '/' || !n);
        if (fits && (!best || n > best_len))
            best = r, best_len = n;
    }
    return best;
}

/* Checks the segments of @p path: words of [a-z0-9_-] or "{name}"; names the first bad one. */
static int check_path(rapport_host *h, const char *path)
{
    for (const char *s = path; *s;) {
        size_t n = strcspn(s, "/");
        bool ok = n > 0;
        if (ok && s[0] == '{') {
            ok = n > 2 && s[n - 1] == '}' && (islower((unsigned char)s[1]) || s[1] == '_');
            for (size_t i = 1; ok && i < n - 1; i++)
                ok = islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_';
        } else {
            for (size_t i = 0; ok && i < n; i++)
                ok = islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) ||
                     s[i] == '_' || s[i] == '-';
        }
        if (!ok)
            return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "route_doc path \"%s\": segment "
                                        "\"%.*s\" is neither a word (a-z, 0-9, _ and -) nor a "
                                        "parameter (\"{name}\")", path, (int)n, s);
        s += n;
        s += *s == '/';
    }
    return 0;
}

/* Checks @p op, an operation a plugin gave, naming the first thing wrong. */
static int check_op(rapport_host *h, const char *where, json_t *op)
{
    if (!json_is_object(op))
        return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "route_doc %s: the operation must be a "
                                    "JSON object ({\"summary\": …})", where);
    const char *k;
    json_t *v;
    json_object_foreach(op, k, v) {
        int i = 0;
        while (op_keys[i] && strcmp(op_keys[i], k) != 0)
            i++;
        if (!op_keys[i])
            return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "route_doc %s: \"%s\" is not a key "
                                        "of an operation a plugin gives (summary, description, "
                                        "operationId, parameters, requestBody, responses, tags, "
                                        "deprecated, externalDocs)", where, k);
    }
    const char *sum = json_string_value(json_object_get(op, "summary"));
    if (!sum || !*sum)
        return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "route_doc %s: \"summary\" must be a "
                                    "non-empty string", where);
    json_t *resp = json_object_get(op, "responses"), *params = json_object_get(op, "parameters"),
           *tags = json_object_get(op, "tags");
    if (resp && (!json_is_object(resp) || !json_object_size(resp)))
        return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "route_doc %s: \"responses\" must be an "
                                    "object of at least one status ({\"200\": {\"description\": "
                                    "…}})", where);
    if (params && !json_is_array(params))
        return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "route_doc %s: \"parameters\" must be an "
                                    "array", where);
    size_t i;
    json_t *t;
    if (tags && !json_is_array(tags))
        return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "route_doc %s: \"tags\" must be an array "
                                    "of strings", where);
    json_array_foreach(tags, i, t) if (!json_is_string(t))
        return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "route_doc %s: \"tags\" must be an array "
                                    "of strings", where);
    return 0;
}

/* Whether @p params declares path parameter @p name. */
static bool has_param(json_t *params, const char *name, size_t n)
{
    size_t i;
    json_t *p;
    json_array_foreach(params, i, p) {
        const char *pn = json_string_value(json_object_get(p, "name"));
        const char *in = json_string_value(json_object_get(p, "in"));
        if (pn && in && !strcmp(in, "path") && strlen(pn) == n && !strncmp(pn, name, n))
            return true;
    }
    return false;
}

/* Adds to @p op the "{name}" parameters of @p path it does not declare (OpenAPI needs them). */
static void add_path_params(json_t *op, const char *path)
{
    json_t *params = json_object_get(op, "parameters");
    for (const char *s = strchr(path, '{'); s; s = strchr(s + 1, '{')) {
        size_t n = strcspn(s + 1, "}");
        if (has_param(params, s + 1, n))
            continue;
        if (!params) {
            params = json_array();
            json_object_set_new(op, "parameters", params);
        }
        json_array_append_new(params, json_pack("{s:s%,s:s,s:b,s:{s:s}}", "name", s + 1, n, "in",
                                                "path", "required", 1, "schema", "type",
                                                "string"));
    }
}

/* The path of the OpenAPI document route @p r's @p rest falls under: a record view's (a GET
 * route named as one: a POST route of the same name stays the plugin's), or the plugin's
 * own. */
static void openapi_path(const rapport_host *h, const reg_t *r, const char *rest, char *out,
                         size_t cap)
{
    if (r->kind == 6 && strcmp(r->help, "GET") == 0 && is_record_view(h, r->name))
        snprintf(out, cap, "/api/v1/{entity}/{id}/%s", rest);
    else
        snprintf(out, cap, "/api/v1/plugins/%s%s%s", h->desc->name, *rest ? "/" : "", rest);
}

int rp__plugin_route_doc(rapport_host *h, const char *method, const char *path,
                         const char *op_json)
{
    while (path && *path == '/')
        path++;
    if (!method || !path || !op_json)
        return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "route_doc needs a method, a path and "
                                    "an operation");
    int m = 0;
    while (methods[m] && strcmp(methods[m], method) != 0)
        m++;
    if (!methods[m])
        return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "route_doc method \"%s\": one of GET, "
                                    "POST, PUT, PATCH or DELETE", method);
    int rc = check_path(h, path);
    if (rc)
        return rc;
    reg_t *r = route_of(h, method, path);
    if (!r)
        return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "route_doc %s %s: plugin %s has no such "
                                    "route (register it first, with route, public_route or "
                                    "record_route)", method, path, h->desc->name);
    char where[240];
    snprintf(where, sizeof where, "%s %s", method, path);
    json_error_t je;
    json_t *op = json_loads(op_json, 0, &je);
    if (!op)
        return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "route_doc %s: the operation is not "
                                    "valid JSON: line %d, column %d: %s", where, je.line,
                                    je.column, je.text);
    if ((rc = check_op(h, where, op))) {
        json_decref(op);
        return rc;
    }
    if (!json_object_get(op, "responses"))
        json_object_set_new(op, "responses", json_pack("{s:{s:s}}", "200", "description", "ok"));
    if (!json_object_get(op, "tags"))
        json_object_set_new(op, "tags", json_pack("[s]", h->desc->name));
    if (r->kind == 8) /* answered before any token is asked for */
        json_object_set_new(op, "security", json_array());
    char full[512];
    openapi_path(h, r, path, full, sizeof full);
    add_path_params(op, full);
    if (!h->docs)
        h->docs = json_object();
    json_t *at = json_object_get(h->docs, full);
    if (!at)
        json_object_set_new(h->docs, full, at = json_object());
    char lower[16];
    lower_case(method, lower);
    json_object_set_new(at, lower, op);
    return 0;
}

/* Whether @p h documented method @p lower (any, for "*") at @p base or below it. */
static bool documented_under(const rapport_host *h, const char *base, const char *lower)
{
    size_t n = strlen(base);
    const char *k;
    json_t *v;
    json_object_foreach(h->docs, k, v) {
        if (strncmp(k, base, n) != 0 || (k[n] && k[n] != '/'))
            continue;
        if (!strcmp(lower, "*") || json_object_get(v, lower))
            return true;
    }
    return false;
}

/* An operation for a route its plugin did not document. */
static json_t *undocumented(const rapport_host *h, bool public)
{
    json_t *op = json_pack("{s:o,s:[s],s:{s:{s:s}}}", "summary",
                           json_sprintf("A route of plugin %s (it does not document it)",
                                        h->desc->name),
                           "tags", h->desc->name, "responses", "200", "description",
                           "see the plugin's README");
    if (op && public)
        json_object_set_new(op, "security", json_array());
    return op;
}

void rp_plugins_openapi(void *ud, json_t *paths)
{
    rp_plugins_t *P = ud;
    for (reg_t *r = P->regs; r; r = r->next) {
        if (r->kind != 6 && r->kind != 8)
            continue;
        char base[512], lower[16];
        openapi_path(r->h, r, r->name, base, sizeof base);
        lower_case(r->help, lower);
        if (documented_under(r->h, base, lower))
            continue;
        json_t *at = json_object_get(paths, base);
        if (!at)
            json_object_set_new(paths, base, at = json_object());
        bool any = strcmp(r->help, "*") == 0;
        /* A route answering any method is listed under the two a client most likely sends. */
        json_object_set_new(at, any ? "get" : lower, undocumented(r->h, r->kind == 8));
        if (any)
            json_object_set_new(at, "post", undocumented(r->h, r->kind == 8));
    }
    for (int i = 0; i < P->n; i++) {
        const char *path;
        json_t *ops;
        json_object_foreach(P->list[i]->docs, path, ops) {
            json_t *at = json_object_get(paths, path);
            if (!at)
                json_object_set_new(paths, path, at = json_object());
            json_object_update(at, ops);
        }
    }
}

char *rp__plugin_search(rapport_host *h, const char *text, const char *entity, int limit)
{
    if (!text || !*text) {
        rp__plugin_fail(h, RAPPORT_EINVAL, "search: the text is empty");
        return NULL;
    }
    if (limit < 0 || limit > 100) {
        rp__plugin_fail(h, RAPPORT_EINVAL, "search: limit %d is not between 1 and 100 (0: 20)",
                        limit);
        return NULL;
    }
    json_t *found = NULL;
    rp_error_t err = {0};
    int rc = rp_store_search_as(h->P->s, h->ctx.access, text, entity && *entity ? entity : NULL,
                                limit ? limit : 20, &found, &err);
    if (rc) {
        rp__plugin_fail(h, rc, "search: %s", err.msg);
        return NULL;
    }
    h->last_rc = 0;
    h->last_error[0] = '\0';
    json_t *out = json_pack("{s:o}", "data", found);
    char *text_out = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    if (!text_out)
        rp__plugin_fail(h, RAPPORT_ENOMEM, "search: out of memory");
    return text_out;
}
