/*
 * openapi.c — the OpenAPI 3 document of the JSON API, made from the entity registry, so that
 * the fields an admin adds are documented the moment they exist. server.c serves it (and keeps
 * it until the registry moves).
 */
#include <string.h>

#include "http_internal.h"

static json_t *field_schema(json_t *spec)
{
    const char *t = json_string_value(json_object_get(spec, "type"));
    t = t ? t : "text";
    json_t *s;
    if (!strcmp(t, "integer") || !strcmp(t, "ref"))
        s = json_pack("{s:s,s:s}", "type", "integer", "format", "int64");
    else if (!strcmp(t, "real"))
        s = json_pack("{s:s}", "type", "number");
    else if (!strcmp(t, "boolean"))
        s = json_pack("{s:s}", "type", "boolean");
    else if (!strcmp(t, "json"))
        s = json_object();
    else if (!strcmp(t, "date"))
        s = json_pack("{s:s,s:s}", "type", "string", "format", "date");
    else if (!strcmp(t, "datetime"))
        s = json_pack("{s:s,s:s}", "type", "string", "format", "date-time");
    else if (!strcmp(t, "email"))
        s = json_pack("{s:s,s:s}", "type", "string", "format", "email");
    else if (!strcmp(t, "url"))
        s = json_pack("{s:s,s:s}", "type", "string", "format", "uri");
    else if (!strcmp(t, "decimal"))
        s = json_pack("{s:s,s:s}", "type", "string", "format", "decimal");
    else
        s = json_pack("{s:s}", "type", "string");
    if (!strcmp(t, "enum") && json_is_array(json_object_get(spec, "values")))
        json_object_set(s, "enum", json_object_get(spec, "values"));
    if (!strcmp(t, "ref") && json_is_string(json_object_get(spec, "ref")))
        json_object_set_new(s, "description",
                            json_sprintf("the id of a %s", json_string_value(json_object_get(
                                                               spec, "ref"))));
    if (json_is_string(json_object_get(spec, "label")))
        json_object_set(s, "title", json_object_get(spec, "label"));
    if (!json_is_true(json_object_get(spec, "required")))
        json_object_set_new(s, "nullable", json_true());
    return s;
}

static json_t *op(const char *summary, const char *tag, json_t *responses)
{
    return json_pack("{s:s,s:[s],s:o}", "summary", summary, "tags", tag, "responses", responses);
}

/* Sets paths[@p path][@p method] to an operation whose 200 answer is described by @p desc. */
static void plain_op(json_t *paths, const char *path, const char *method, const char *summary,
                     const char *tag, const char *desc)
{
    json_object_set_new(paths, path,
                        json_pack("{s:o}", method,
                                  op(summary, tag, json_pack("{s:{s:s}}", "200", "description",
                                                             desc))));
}

static json_t *ref_resp(const char *desc, const char *ref)
{
    char r[160];
    snprintf(r, sizeof r, "#/components/schemas/%s", ref);
    return json_pack("{s:s,s:{s:{s:{s:s}}}}", "description", desc, "content", "application/json",
                     "schema", "$ref", r);
}

/* The browser's routes: a session opened with a password, who is asking, signing out. */
static void session_paths(json_t *paths)
{
    json_t *open = op("Sign in with a password into a session: sets the HttpOnly, SameSite=Strict "
                      "cookie rp_session and answers the CSRF token every write with it carries "
                      "in X-CSRF-Token (no token needed)",
                      "auth",
                      json_pack("{s:{s:s},s:{s:s},s:{s:s}}", "201", "description",
                                "{user, role, csrf, session_id, expires_in_s, idle_s}", "401",
                                "description", "wrong user name or password", "429",
                                "description", "too many failed sign-ins"));
    json_object_set_new(open, "security", json_array());
    json_object_set_new(open, "requestBody",
                        json_pack("{s:b,s:{s:{s:{s:s,s:[ss],s:{s:{s:s},s:{s:s}}}}}}", "required",
                                  1, "content", "application/json", "schema", "type", "object",
                                  "required", "user", "password", "properties", "user", "type",
                                  "string", "password", "type", "string"));
    json_t *end = op("Sign out: ends the request's session on the server and drops its cookie "
                     "(needs X-CSRF-Token)",
                     "auth",
                     json_pack("{s:{s:s},s:{s:s},s:{s:s}}", "204", "description", "signed out",
                               "400", "description", "not signed in with a session cookie",
                               "403", "description", "no or a wrong X-CSRF-Token"));
    json_object_set_new(paths, "/api/v1/auth/session",
                        json_pack("{s:o,s:o}", "post", open, "delete", end));
    json_object_set_new(paths, "/api/v1/auth/me",
                        json_pack("{s:o}", "get",
                                  op("Who is asking: {user, role, team, via: session|token}, and "
                                     "a session's csrf and session_id",
                                     "auth",
                                     json_pack("{s:{s:s},s:{s:s}}", "200", "description",
                                               "{user, role, team, via, csrf?, session_id?}",
                                               "401", "description", "not signed in"))));
}

/* The engine room (admin.c, admin_eval.c, admin_rules.c): every route answers 403 to anyone
 * but a user whose role is admin. */
static void admin_paths(json_t *paths)
{
    static const struct {
        const char *path, *method, *summary, *answer;
    } routes[] = {
        {"/api/v1/admin/events", "get", "The event log as the admin may see it (after, limit "
         "1-500; without after: the newest)", "{data: [events], last_seq}"},
        {"/api/v1/admin/events/stream", "get", "The live event log: text/event-stream, one "
         "\"id: SEQ\" and \"data: EVENT\" per event after ?after=SEQ (default: from now), a "
         "heartbeat comment every 15 s; at most 8 open (503 beyond)", "an event stream"},
        {"/api/v1/admin/engine", "get", "The plugins and the scripts served (a broken script "
         "with why)", "{plugins, scripts: [{file, running, error}], script_dirs, given_dirs}"},
        {"/api/v1/admin/scripts/reload", "post", "Reload the edited scripts now (the server also "
         "does within a second of an edit)", "as GET /api/v1/admin/engine"},
        {"/api/v1/admin/scripts/test", "post", "Run the scripts' tests (rapport test, in a child "
         "process; 409 while a run is under way)",
         "{ok, exit, passed, failed, output, timed_out}"},
        {"/api/v1/admin/jobs", "get", "Jobs (state: pending, running or dead)", "{data: [jobs]}"},
        {"/api/v1/admin/jobs/{id}/retry", "post", "Put a dead job back to run now",
         "{id, queued}"},
        {"/api/v1/admin/dead", "get", "The subscribers' dead letters (subscriber)",
         "{data: [letters]}"},
        {"/api/v1/admin/dead/{id}/replay", "post", "Queue a dead letter for replay (a webhook's: "
         "redelivered)", "{id, queued}"},
        {"/api/v1/admin/eval", "post", "Run a line of Lua {code, real}: in crm.dry_run unless "
         "real is true, in the sandbox with the admin's access and the request's budget",
         "{dry, results: [text], changes: {records: [{entity, id, action, changes}]}}"},
        {"/api/v1/admin/settings", "get", "Every setting, what is secret masked",
         "{data: {key: value}}"},
        {"/api/v1/admin/settings", "post", "Set a setting {key, value} (null unsets it), "
         "checked as rapport config set checks it", "{key, value}"},
        {"/api/v1/admin/webhooks", "get", "The webhooks (never a secret) and the newest "
         "deliveries (limit)", "{data: [webhooks], deliveries: [attempts]}"},
        {"/api/v1/admin/users", "get", "The users (no password hash)", "{data: [users]}"},
        {"/api/v1/admin/roles", "get", "The roles and their grants, as the settings keep them "
         "(admin without a setting grants everything)", "{data: [{role, grants}]}"},
        {"/api/v1/admin/tokens", "get", "The tokens (no secret, no hash; user)",
         "{data: [tokens]}"},
        {"/api/v1/admin/tokens", "post", "Create a token {user, role?, expires_days?}: its "
         "secret is answered this once (201)", "{id, user, token}"},
        {"/api/v1/admin/tokens/{id}/revoke", "post", "Revoke a token", "{id, revoked}"},
    };
    for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
        json_t *item = json_object_get(paths, routes[i].path);
        if (!item) {
            item = json_object();
            json_object_set_new(paths, routes[i].path, item);
        }
        json_object_set_new(item, routes[i].method,
                            op(routes[i].summary, "admin",
                               json_pack("{s:{s:s},s:{s:s}}", "200", "description",
                                         routes[i].answer, "403", "description",
                                         "not an admin")));
    }
}

/* Whether @p params (an array, or NULL) declares path parameter @p name (@p n bytes). */
static bool declares(json_t *params, const char *name, size_t n)
{
    size_t i;
    json_t *x;
    json_array_foreach(params, i, x) {
        const char *pn = json_string_value(json_object_get(x, "name"));
        const char *in = json_string_value(json_object_get(x, "in"));
        if (pn && in && strlen(pn) == n && !strncmp(pn, name, n) && !strcmp(in, "path"))
            return true;
    }
    return false;
}

/* OpenAPI wants every {name} of a path declared: at the path's level, for those that neither
 * it nor its operations declare ({id} an integer, others text). */
void rp__http_openapi_path_params(json_t *paths)
{
    const char *path;
    json_t *item;
    json_object_foreach(paths, path, item) {
        for (const char *b = strchr(path, '{'); b; b = strchr(b + 1, '{')) {
            size_t n = strcspn(b + 1, "}");
            json_t *level = json_object_get(item, "parameters");
            bool all = true;
            const char *m;
            json_t *op;
            json_object_foreach(item, m, op) if (strcmp(m, "parameters") != 0 &&
                                                 !declares(json_object_get(op, "parameters"),
                                                           b + 1, n))
                all = false;
            if (all || declares(level, b + 1, n))
                continue;
            if (!level)
                json_object_set_new(item, "parameters", level = json_array());
            bool id = n == 2 && !strncmp(b + 1, "id", 2);
            json_array_append_new(level, json_pack("{s:s%,s:s,s:b,s:{s:s}}", "name", b + 1, n,
                                                   "in", "path", "required", 1, "schema",
                                                   "type", id ? "integer" : "string"));
        }
    }
}

json_t *rp__http_openapi(rp_store_t *s, rp_error_t *err)
{
    json_t *reg = rp_store_schema(s, NULL, err);
    if (!reg)
        return NULL;
    json_t *paths = json_object(), *schemas = json_object();
    json_object_set_new(schemas, "Problem",
                        json_pack("{s:s,s:{s:{s:s},s:{s:s},s:{s:s},s:{s:s},s:{s:s},s:{s:s}}}",
                                  "type", "object", "properties", "type", "type", "string",
                                  "title", "type", "string", "status", "type", "integer",
                                  "detail", "type", "string", "field", "type", "string", "code",
                                  "type", "string"));
    const char *name;
    json_t *ent;
    json_object_foreach(reg, name, ent) {
        json_t *props = json_pack(
            "{s:{s:s,s:b},s:{s:s,s:b},s:{s:s,s:s,s:b},s:{s:s,s:s,s:b},s:{s:s,s:b},s:{s:s,s:b},"
            "s:{s:s,s:s,s:b}}",
            "id", "type", "integer", "readOnly", 1, "version", "type", "integer", "readOnly", 1,
            "created_at", "type", "string", "format", "date-time", "readOnly", 1, "updated_at",
            "type", "string", "format", "date-time", "readOnly", 1, "created_by", "type",
            "string", "readOnly", 1, "updated_by", "type", "string", "readOnly", 1, "deleted_at",
            "type", "string", "format", "date-time", "readOnly", 1);
        json_t *req = json_array();
        const char *fname;
        json_t *spec;
        json_object_foreach(json_object_get(ent, "fields"), fname, spec) {
            json_object_set_new(props, fname, field_schema(spec));
            if (json_is_true(json_object_get(spec, "required")))
                json_array_append_new(req, json_string(fname));
        }
        json_t *sch = json_pack("{s:s,s:o,s:b}", "type", "object", "properties", props,
                                "additionalProperties", 0);
        if (json_is_string(json_object_get(ent, "label")))
            json_object_set(sch, "title", json_object_get(ent, "label"));
        if (json_array_size(req))
            json_object_set_new(sch, "required", req);
        else
            json_decref(req);
        json_object_set_new(schemas, name, sch);
        char list_ref[160];
        snprintf(list_ref, sizeof list_ref, "#/components/schemas/%s", name);
        json_t *page = json_pack("{s:s,s:{s:{s:s,s:{s:s}},s:{s:s,s:b}}}", "type", "object",
                                 "properties", "data", "type", "array", "items", "$ref",
                                 list_ref, "next", "type", "string", "nullable", 1);
        char p[200];
        snprintf(p, sizeof p, "/api/v1/%s", name);
        json_t *list = op("List records (filters: field=value, where=<JSON filter>; order, "
                          "limit, after, fields, with_deleted)", name,
                          json_pack("{s:{s:s,s:{s:{s:o}}}}", "200", "description", "a page",
                                    "content", "application/json", "schema", page));
        json_t *create = op("Create a record", name,
                            json_pack("{s:o}", "201", ref_resp("the record as stored", name)));
        json_object_set_new(create, "requestBody",
                            json_pack("{s:b,s:{s:{s:{s:s}}}}", "required", 1, "content",
                                      "application/json", "schema", "$ref", list_ref));
        json_object_set_new(paths, p, json_pack("{s:o,s:o}", "get", list, "post", create));
        snprintf(p, sizeof p, "/api/v1/%s/{id}", name);
        json_t *patch = op("Change some fields (If-Match: the ETag, else 412 when stale)", name,
                           json_pack("{s:o}", "200", ref_resp("the record", name)));
        json_object_set_new(patch, "requestBody",
                            json_pack("{s:b,s:{s:{s:{s:s}}}}", "required", 1, "content",
                                      "application/json", "schema", "$ref", list_ref));
        json_object_set_new(
            paths, p,
            json_pack("{s:[{s:s,s:s,s:b,s:{s:s}}],s:o,s:o,s:o}", "parameters", "name", "id",
                      "in", "path", "required", 1, "schema", "type", "integer", "get",
                      op("Read a record", name,
                         json_pack("{s:o}", "200", ref_resp("the record", name))),
                      "patch", patch, "delete",
                      op("Delete a record (it can be restored)", name,
                         json_pack("{s:{s:s}}", "204", "description", "deleted"))));
        snprintf(p, sizeof p, "/api/v1/%s/{id}/restore", name);
        json_object_set_new(paths, p,
                            json_pack("{s:o}", "post",
                                      op("Restore a deleted record", name,
                                         json_pack("{s:o}", "200",
                                                   ref_resp("the record", name)))));
        snprintf(p, sizeof p, "/api/v1/%s/{id}/events", name);
        plain_op(paths, p, "get", "The record's history", name, "{data: [events], next}");
        snprintf(p, sizeof p, "/api/v1/%s/{id}/explain/{field}", name);
        plain_op(paths, p, "get", "Why a field has its value", name,
                 "{data: [changes with their causes]}");
        snprintf(p, sizeof p, "/api/v1/%s/{id}/subject", name);
        plain_op(paths, p, "get", "Everything held about the record, as a file", name,
                 "{entity, id, exported_at, record, related, events, truncated}");
        snprintf(p, sizeof p, "/api/v1/%s/aggregate", name);
        plain_op(paths, p, "get",
                 "Grouped aggregates (group_by, measures, where, zone, order, limit, offset)",
                 name, "{data: [rows]}");
        snprintf(p, sizeof p, "/api/v1/%s/bulk", name);
        plain_op(paths, p, "post", "Create and update many, all or nothing", name,
                 "{created: [ids], updated: n}");
    }
    json_decref(reg);
    plain_op(paths, "/api/v1/search", "get", "Full-text search (q, entity, limit)", "search",
             "{data: [{entity, id, rank, snippet}]}");
    plain_op(paths, "/api/v1/schema", "get",
             "The entities and fields the caller may read (entity: only one), each field marked "
             "read_only as the caller's role makes it, and what the caller may do per entity",
             "schema", "{data: {entity: {label, fields: {name: spec + read_only}, system, "
             "may: {read, create, update, delete}}}, role}");
    json_t *login = op("Sign in with a password: a token for the user's role (no token needed)",
                       "auth", json_pack("{s:{s:s},s:{s:s},s:{s:s}}", "201", "description",
                                         "{token, token_id, expires_in_s}", "401",
                                         "description", "wrong user name or password", "429",
                                         "description", "too many failed sign-ins"));
    json_object_set_new(login, "security", json_array());
    json_object_set_new(login, "requestBody",
                        json_pack("{s:b,s:{s:{s:{s:s,s:[ss],s:{s:{s:s},s:{s:s},s:{s:s}}}}}}",
                                  "required", 1, "content", "application/json", "schema",
                                  "type", "object", "required", "user", "password",
                                  "properties", "user", "type", "string", "password", "type",
                                  "string", "expires", "type", "string"));
    json_object_set_new(paths, "/api/v1/auth/login", json_pack("{s:o}", "post", login));
    session_paths(paths);
    admin_paths(paths);
    rp__http_openapi_path_params(paths);
    json_object_set_new(paths, "/health",
                        json_pack("{s:{s:s,s:[],s:{s:{s:s}}}}", "get", "summary",
                                  "Is the engine up", "security", "responses", "200",
                                  "description", "ok"));
    return json_pack("{s:s,s:{s:s,s:s},s:o,s:{s:o,s:{s:{s:s,s:s},s:{s:s,s:s,s:s,s:s}}},"
                     "s:[{s:[]},{s:[]}]}",
                     "openapi", "3.0.3", "info", "title", "Rapport", "version", RP_VERSION,
                     "paths", paths, "components", "schemas", schemas, "securitySchemes",
                     "bearer", "type", "http", "scheme", "bearer", "session", "type", "apiKey",
                     "in", "cookie", "name", "rp_session", "description",
                     "A browser session (POST /api/v1/auth/session); every request but GET and "
                     "HEAD also sends the session's CSRF token in X-CSRF-Token",
                     "security", "bearer", "session");
}
