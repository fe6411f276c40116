/*
 * admin_eval.c — the rest of the engine room (admin.c checks who asks): a line of Lua run for
 * the admin, in crm.dry_run unless asked for real; the users, the tokens (a new one's secret
 * shown once, revocation) and the settings, read with what looks secret masked. Nothing here
 * answers a password hash, a token's secret or hash, or a webhook's secret.
 *
 * The Lua line runs in a sandboxed state of its own made for the request, with the caller's
 * access, under the sandbox's limits and the request's time budget (the store's deadline): it
 * cannot hold the loop longer than any other request. The state is freed with the answer, so
 * a crm.on or crm.job it registers is gone too.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "rapport/auth.h"
#include "rapport/events.h"
#include "rapport/lua.h"
#include "rapport/webhook.h"

#include "http_internal.h"

#define EVAL_MAX_CODE 4096 /* bytes of one line (a REPL line, not a script) */

/* The dry wrapper: the line is loaded as a chunk of its own (an expression if it is one, else
 * statements) and called inside crm.dry_run, so no text of the line can close the wrapper and
 * run outside it. The line reaches it as a global the wrapper takes and clears first; what the
 * wrapper calls afterwards it holds in locals, so a line that replaces `table` or `crm` cannot
 * change them. Answers the dry run's changes, then the line's results. */
static const char dry_wrapper[] =
    "local src, ld, dry, pack, unpack, fail = rp__line, load, crm.dry_run, table.pack, "
    "table.unpack, error\n"
    "rp__line = nil\n"
    "local f = ld('return ' .. src, '=console', 't')\n"
    "if not f then\n"
    "  local e\n"
    "  f, e = ld(src, '=console', 't')\n"
    "  if not f then fail(e, 0) end\n"
    "end\n"
    "local r, d = dry(function(...) return pack(f(...)) end)\n"
    "return d, unpack(r, 1, r.n)\n";

/* The records the events after @p seq0 changed, as the caller may see them: the shape of
 * crm.dry_run's "records" ({entity, id, action, changes}). */
static json_t *changes_since(call_t *c, int64_t seq0)
{
    json_t *records = json_array();
    rp_event_t evs[200];
    int n = rp_events_list(c->h->s, seq0, false, evs, 200, NULL);
    for (int i = 0; i < n; i++) {
        json_t *ev = rp_event_json(&evs[i]);
        if (ev && evs[i].record_id > 0 && rp_access_event(c->h->s, c->access, ev, NULL) == 1) {
            const char *action = strrchr(evs[i].type, '.');
            json_array_append_new(records, json_pack("{s:s,s:I,s:s,s:O}", "entity",
                                                     evs[i].entity, "id",
                                                     (json_int_t)evs[i].record_id, "action",
                                                     action ? action + 1 : "", "changes",
                                                     json_object_get(ev, "changes")));
        }
        json_decref(ev);
        rp_event_clear(&evs[i]);
    }
    return records;
}

/* POST admin/eval {"code": "...", "real": false}: {"dry": bool, "results": [text…],
 * "changes": {"records": [{entity, id, action, changes: {field: [old, new]}}], …}}. */
static int eval(call_t *c)
{
    json_t *body = rp__http_body(c);
    if (!body)
        return -1;
    json_t *jcode = json_object_get(body, "code"), *jreal = json_object_get(body, "real");
    const char *code = json_string_value(jcode);
    if (!code || !*code) {
        json_decref(body);
        return rp__http_problem(c, 422, "code must be a line of Lua (a string)", "code");
    }
    if (strlen(code) > EVAL_MAX_CODE) {
        json_decref(body);
        return rp__http_problemf(c, 422, "code", "code is %zu bytes; a line takes at most %d",
                                 strlen(code), EVAL_MAX_CODE);
    }
    if (jreal && !json_is_boolean(jreal)) {
        json_decref(body);
        return rp__http_problem(c, 422, "real must be true or false", "real");
    }
    bool real = json_is_true(jreal);
    rp_error_t err = {0};
    rp_lua_opts_t o = {.sandbox = true, .max_cpu_ms = 250, .max_wall_ms = 1000,
                       .max_memory = 32u << 20, .actor = c->actor, .access = c->access,
                       .name = "console", .ext = c->h->lua_ext};
    rp_lua_t *l = rp_lua_new(c->h->s, c->h->e, &o, &err);
    if (!l) {
        json_decref(body);
        return rp__http_problemf(c, 503, NULL, "cannot make a Lua state: %s", err.msg);
    }
    if (!real) {
        lua_State *L = rp_lua_state(l);
        lua_pushstring(L, code);
        lua_setglobal(L, "rp__line");
    }
    int64_t seq0 = rp_events_last_seq(c->h->s);
    json_t *all = NULL;
    /* For real, the line is all or nothing: a line that fails half-way keeps none of its
     * writes (a savepoint within the request's group). */
    int rc = real ? rp_store_begin(c->h->s, &err) : 0;
    if (!rc) {
        rc = rp_lua_eval(l, real ? code : dry_wrapper, "console", &all, &err);
        if (real && rc)
            rp_store_rollback(c->h->s, NULL);
        else if (real && (rc = rp_store_commit(c->h->s, &err)))
            rp_store_rollback(c->h->s, NULL);
    }
    json_decref(body);
    if (rc) {
        rp_lua_free(l);
        json_decref(all);
        return rp__http_problemf(c, 422, "code", "%s", err.msg);
    }
    json_t *changes = real ? json_pack("{s:o}", "records", changes_since(c, seq0))
                           : json_incref(json_array_get(all, 0));
    json_t *results = json_array();
    for (size_t i = real ? 0 : 1; i < json_array_size(all); i++) {
        char *text = rp_lua_render(json_array_get(all, i));
        json_array_append_new(results, json_string(text ? text : "?"));
        free(text);
    }
    json_decref(all);
    rp_lua_free(l);
    return rp__http_send_json(c, 200, json_pack("{s:b,s:o,s:o*}", "dry", !real, "results",
                                                results, "changes", changes));
}

/* ---- users, tokens, settings --------------------------------------------------------- */

/* GET admin/settings: every setting, what is secret in it masked as the event log masks it. */
static int settings(call_t *c)
{
    json_t *all = NULL;
    rp_error_t err = {0};
    if (rp_config_list(c->h->s, &all, &err))
        return rp__http_store_problem(c, &err, false);
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(all, k, v) json_object_set_new(out, k, rp_config_redacted(k, v));
    json_decref(all);
    return rp__http_send_json(c, 200, json_pack("{s:o}", "data", out));
}

/* POST admin/settings {"key", "value"}: sets it (null: unsets it), checked as `rapport config
 * set` checks it: a role's grants as a role, the webhooks' allow list as one. */
static int setting_set(call_t *c)
{
    json_t *body = rp__http_body(c);
    if (!body)
        return -1;
    const char *key = json_string_value(json_object_get(body, "key"));
    json_t *value = json_object_get(body, "value");
    const char *bad = NULL, *field = NULL;
    if (!key || !*key)
        bad = "key must name a setting", field = "key";
    else if (!value)
        bad = "value is needed (null unsets the setting)", field = "value";
    if (bad) {
        json_decref(body);
        return rp__http_problem(c, 422, bad, field);
    }
    rp_error_t err = {0};
    int rc = 0;
    if (strcmp(key, RP_WEBHOOK_ALLOW_SETTING) == 0 && !json_is_null(value)) {
        rp_webhook_allow_t *a = NULL;
        rc = rp_webhook_allow_json(value, &a, &err);
        rp_webhook_allow_free(a);
    }
    if (!rc)
        rc = strncmp(key, "roles.", 6) == 0
                 ? rp_access_role_set(c->h->s, &c->ctx, key + 6,
                                      json_is_null(value) ? NULL : value, &err)
                 : rp_config_set(c->h->s, &c->ctx, key, json_is_null(value) ? NULL : value,
                                 &err);
    if (rc) {
        int status = rp__http_status_of(&err, false);
        rc = status == 503 || status == 500
                 ? rp__http_store_problem(c, &err, false)
                 : rp__http_problem(c, status == 404 ? 404 : 422, err.msg,
                                    err.code == RP_EINVAL && strstr(err.msg, "setting name")
                                        ? "key" : "value");
        json_decref(body);
        return rc;
    }
    json_t *ans = json_pack("{s:s,s:o}", "key", key, "value", rp_config_redacted(key, value));
    json_decref(body);
    return rp__http_send_json(c, 200, ans);
}

/* GET admin/webhooks?limit=N: the webhooks (never a secret, a URL without its password) and
 * the newest delivery attempts. A failed one is redelivered by replaying its dead letter. */
static int webhooks(call_t *c)
{
    int64_t limit = 50;
    if (rp__http_param_int(c, "limit", 500, &limit))
        return -1;
    json_t *list = NULL, *log = NULL;
    rp_error_t err = {0};
    if (rp_webhook_list(c->h->s, &list, &err) ||
        rp_webhook_deliveries(c->h->s, 0, (int)limit, &log, &err)) {
        json_decref(list);
        return rp__http_store_problem(c, &err, false);
    }
    return rp__http_send_json(c, 200, json_pack("{s:o,s:o}", "data", list, "deliveries", log));
}

static int users(call_t *c)
{
    json_t *out = NULL;
    rp_error_t err = {0};
    if (rp_users_list(c->h->s, &out, &err))
        return rp__http_store_problem(c, &err, false);
    return rp__http_send_json(c, 200, json_pack("{s:o}", "data", out));
}

/* GET admin/roles: each role kept in the settings (roles.<name>) with its grants, and admin
 * when no setting narrows it (it then grants everything). */
static int roles(call_t *c)
{
    json_t *all = NULL;
    rp_error_t err = {0};
    if (rp_config_list(c->h->s, &all, &err))
        return rp__http_store_problem(c, &err, false);
    json_t *out = json_array();
    const char *k;
    json_t *v;
    bool admin = false;
    json_object_foreach(all, k, v) {
        if (strncmp(k, "roles.", 6) != 0 || !k[6])
            continue;
        admin |= strcmp(k + 6, "admin") == 0;
        json_array_append_new(out, json_pack("{s:s,s:O}", "role", k + 6, "grants", v));
    }
    if (!admin)
        json_array_append_new(out, json_pack("{s:s,s:n,s:s}", "role", "admin", "grants", "note",
                                             "no setting roles.admin: it grants everything"));
    json_decref(all);
    return rp__http_send_json(c, 200, json_pack("{s:o}", "data", out));
}

static int tokens_list(call_t *c)
{
    json_t *out = NULL;
    rp_error_t err = {0};
    if (rp_tokens_list(c->h->s, rp__http_param(c, "user"), &out, &err))
        return rp__http_store_problem(c, &err, true);
    size_t i;
    json_t *t;
    json_array_foreach(out, i, t) {
        json_object_del(t, "hash"); /* rp_tokens_list answers none; never let one through */
    }
    return rp__http_send_json(c, 200, json_pack("{s:o}", "data", out));
}

/* POST admin/tokens {"user", "role"?, "expires_days"?}: 201 {id, user, token} — the only time
 * the secret is shown. */
static int token_create(call_t *c)
{
    json_t *body = rp__http_body(c);
    if (!body)
        return -1;
    const char *user = json_string_value(json_object_get(body, "user"));
    json_t *jrole = json_object_get(body, "role"), *jdays = json_object_get(body, "expires_days");
    const char *bad = NULL, *field = NULL;
    if (!user || !*user)
        bad = "user must name the user the token acts for", field = "user";
    else if (jrole && !json_is_null(jrole) && !json_is_string(jrole))
        bad = "role must be a role's name", field = "role";
    else if (jdays && !json_is_null(jdays) &&
             (!json_is_integer(jdays) || json_integer_value(jdays) < 1 ||
              json_integer_value(jdays) > 3650))
        bad = "expires_days must be a whole number from 1 to 3650", field = "expires_days";
    if (bad) {
        json_decref(body);
        return rp__http_problem(c, 422, bad, field);
    }
    rp_error_t err = {0};
    json_t *u = NULL;
    if (rp_users_get(c->h->s, user, &u, &err)) {
        int rc = err.code == RP_ENOTFOUND
                     ? rp__http_problemf(c, 422, "user", "there is no user \"%.64s\"", user)
                     : rp__http_store_problem(c, &err, false);
        json_decref(body);
        return rc;
    }
    json_decref(u);
    char *secret = NULL;
    int64_t id = 0;
    int64_t ms = json_is_integer(jdays) ? json_integer_value(jdays) * 86400000LL : 0;
    int rc = rp_tokens_create(c->h->s, &c->ctx, user, json_string_value(jrole), ms, &secret, &id,
                          &err);
    if (rc) {
        json_decref(body);
        return rp__http_store_problem(c, &err, false);
    }
    json_t *ans = json_pack("{s:I,s:s,s:s}", "id", (json_int_t)id, "user", user, "token", secret);
    json_decref(body);
    free(secret);
    return rp__http_send_json(c, 201, ans);
}

static int token_revoke(call_t *c, const char *sid)
{
    char *end;
    long long id = strtoll(sid, &end, 10);
    if (!*sid || *end || id <= 0)
        return rp__http_problemf(c, 404, NULL, "\"%s\" is not a token's id", sid);
    rp_error_t err = {0};
    if (rp_tokens_revoke(c->h->s, &c->ctx, id, &err))
        return rp__http_store_problem(c, &err, false);
    return rp__http_send_json(c, 200, json_pack("{s:I,s:b}", "id", (json_int_t)id, "revoked", 1));
}

int rp__http_admin_more(call_t *c, char **seg, int n)
{
    bool get = rp__http_method_is(c->req, "GET") || rp__http_method_is(c->req, "HEAD");
    bool post = rp__http_method_is(c->req, "POST");
    const char *what = n > 0 ? seg[0] : "";
    const char *allow = NULL;
    if (n == 1 && strcmp(what, "eval") == 0) {
        if (post)
            return eval(c);
        allow = "POST";
    } else if (n == 1 && strcmp(what, "settings") == 0) {
        if (get)
            return settings(c);
        if (post)
            return setting_set(c);
        allow = "GET, POST";
    } else if (n == 1 && strcmp(what, "webhooks") == 0) {
        if (get)
            return webhooks(c);
        allow = "GET";
    } else if (n == 1 && strcmp(what, "users") == 0) {
        if (get)
            return users(c);
        allow = "GET";
    } else if (n == 1 && strcmp(what, "roles") == 0) {
        if (get)
            return roles(c);
        allow = "GET";
    } else if (n == 1 && strcmp(what, "tokens") == 0) {
        if (get)
            return tokens_list(c);
        if (post)
            return token_create(c);
        allow = "GET, POST";
    } else if (n == 3 && strcmp(what, "tokens") == 0 && strcmp(seg[2], "revoke") == 0) {
        if (post)
            return token_revoke(c, seg[1]);
        allow = "POST";
    }
    if (!allow)
        return rp__http_problem(c, 404, "no such path under /api/v1/admin/ (events, "
                                "events/stream, engine, scripts/reload, scripts/test, jobs, "
                                "dead, eval, settings, webhooks, users, roles, tokens)", NULL);
    rp__http_add_header(c, H2O_TOKEN_ALLOW, allow);
    return rp__http_problemf(c, 405, NULL, "this path answers %s", allow);
}
