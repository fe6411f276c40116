/*
 * portal.c — the customer portal plugin: which contacts may sign in (contact.portal_access,
 * `rapport portal grant|revoke`, crm.portal.grant/revoke), their sessions ended when access is
 * taken away or the contact erased, and the plugin's init (the sign-in routes are login.c's;
 * the knowledge base, kb.c, is wired in at the marked place).
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb.h"
#include "portal.h"

const rapport_api *pt_api;

int pt_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return code;
}

/* Setting plugin.portal.@p key as JSON (owned), or NULL. */
static json_t *setting(rapport_host *h, const char *key)
{
    char *text = pt_api->config(h, key);
    json_t *v = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    pt_api->free(text);
    return v;
}

int64_t pt_setting_int(rapport_host *h, const char *key, int64_t def, bool delay)
{
    json_t *v = setting(h, key);
    int64_t out = def, ms = 0;
    if (json_is_integer(v) && json_integer_value(v) > 0)
        out = json_integer_value(v);
    else if (delay && json_is_string(v) && pt_api->delay_parse(h, json_string_value(v), &ms) == 0
             && ms > 0)
        out = ms;
    else if (v)
        pt_api->log(h, RAPPORT_LOG_WARN, "plugin.portal.%s: not a positive %s; %" PRId64
                    " is used", key, delay ? "delay (\"15m\")" : "number", def);
    json_decref(v);
    return out;
}

bool pt_setting_text(rapport_host *h, const char *key, char *out, size_t cap)
{
    json_t *v = setting(h, key);
    bool ok = json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) < cap;
    if (ok)
        snprintf(out, cap, "%s", json_string_value(v));
    json_decref(v);
    return ok;
}

int64_t pt_contact_by_email(rapport_host *h, const char *email, char *lang, size_t lcap,
                            char *name, size_t ncap)
{
    /* Two live records sharing the address: neither is signed in by it, since the mail could
     * not say which one the reader is. */
    json_t *q = json_pack("{s:{s:s},s:i}", "where", "email", email, "limit", 2);
    char *qs = q ? json_dumps(q, JSON_COMPACT) : NULL;
    json_decref(q);
    char *text = qs ? pt_api->find(h, "contact", qs) : NULL;
    free(qs);
    json_t *ans = text ? json_loads(text, 0, NULL) : NULL;
    pt_api->free(text);
    json_t *data = json_object_get(ans, "data");
    json_t *c = json_array_size(data) == 1 ? json_array_get(data, 0) : NULL;
    int64_t id = c && json_is_true(json_object_get(c, "portal_access"))
                     ? json_integer_value(json_object_get(c, "id"))
                     : 0;
    const char *l = json_string_value(json_object_get(c, "language"));
    const char *n = json_string_value(json_object_get(c, "first_name"));
    if (lang)
        snprintf(lang, lcap, "%s", l ? l : "");
    if (name)
        snprintf(name, ncap, "%s", n ? n : "");
    json_decref(ans);
    return id;
}

bool pt_has_access(rapport_host *h, int64_t id)
{
    char *text = pt_api->get(h, "contact", id);
    json_t *c = text ? json_loads(text, 0, NULL) : NULL;
    pt_api->free(text);
    bool ok = json_is_true(json_object_get(c, "portal_access")) &&
              !json_is_true(json_object_get(c, "deleted"));
    json_decref(c);
    return ok;
}

/* ---- access: granted, taken away ---------------------------------------------------------- */

/* Switches contact @p id's portal access; taking it away ends its sessions in the same write
 * (the before-hook below). */
static int set_access(rapport_host *h, int64_t id, bool on, char *err, size_t errlen)
{
    char patch[64];
    snprintf(patch, sizeof patch, "{\"portal_access\": %s}", on ? "true" : "false");
    int rc = pt_api->update(h, "contact", id, patch, 0);
    if (rc)
        return pt_fail(err, errlen, rc, "contact %" PRId64 ": %s", id, pt_api->last_error(h));
    return 0;
}

/* Before a contact's update: portal_access turned off (by staff, a rule or `portal revoke`)
 * ends the contact's sessions at once, in the same transaction. */
static int access_hook(rapport_host *h, const rapport_api *api, rapport_change *c, void *ud,
                       char *err, size_t errlen)
{
    (void)ud;
    char *v = api->change_get(c, 0, "portal_access");
    bool off = !v || strcmp(v, "true") != 0;
    api->free(v);
    if (off && api->session_end(h, NULL, "contact", api->change_id(c)))
        return pt_fail(err, errlen, RAPPORT_EIO, "portal: %s", api->last_error(h));
    return 0;
}

/* `rapport erase contact N`: the password's hash goes with the person, and their sessions. */
static int erase_hook(rapport_host *h, const rapport_api *api, rapport_change *c, void *ud,
                      char *err, size_t errlen)
{
    (void)ud;
    char name[64];
    snprintf(name, sizeof name, "password:contact:%" PRId64, api->change_id(c));
    if (api->secret_put(h, name, NULL, 0) ||
        api->session_end(h, NULL, "contact", api->change_id(c)))
        return pt_fail(err, errlen, RAPPORT_EIO, "portal: %s", api->last_error(h));
    return 0;
}

/* A contact id from text: a positive integer, nothing else. */
static bool parse_id(const char *s, int64_t *id)
{
    char *end = NULL;
    long long v = s && isdigit((unsigned char)*s) ? strtoll(s, &end, 10) : 0;
    if (v <= 0 || !end || *end)
        return false;
    *id = v;
    return true;
}

/* `rapport portal grant|revoke CONTACT_ID` (@p ud non-NULL: grant) */
static int cmd_access(rapport_host *h, const rapport_api *api, int argc, char **argv, void *ud)
{
    (void)api;
    bool grant = ud != NULL;
    int64_t id = 0;
    if (argc != 2 || !parse_id(argv[1], &id)) {
        fprintf(stderr, "usage: rapport portal %s CONTACT_ID (a contact's id%s%s%s)\n",
                grant ? "grant" : "revoke", argc >= 2 ? ", not \"" : "",
                argc >= 2 ? argv[1] : "", argc >= 2 ? "\"" : "");
        return 2;
    }
    char err[512];
    if (set_access(h, id, grant, err, sizeof err)) {
        fprintf(stderr, "rapport portal %s: %s\n", grant ? "grant" : "revoke", err);
        return 1;
    }
    printf("contact %" PRId64 ": portal access %s\n", id, grant ? "granted" : "revoked");
    return 0;
}

/* crm.portal.grant(id) / crm.portal.revoke(id) -> true */
static int lua_access(rapport_host *h, const rapport_api *api, const char *args, char **result,
                      void *ud, char *err, size_t errlen)
{
    bool grant = ud != NULL;
    json_t *a = json_loads(args, 0, NULL);
    json_t *j = json_array_get(a, 0);
    int64_t id = json_is_integer(j) ? json_integer_value(j) : 0;
    bool ok = json_array_size(a) == 1 && id > 0;
    json_decref(a);
    if (!ok)
        return pt_fail(err, errlen, RAPPORT_EINVAL, "argument 1 must be a contact's id (a "
                       "positive integer)");
    int rc = set_access(h, id, grant, err, errlen);
    if (!rc)
        *result = api->strdup("true");
    return rc;
}

/* ---- the plugin -------------------------------------------------------------------------- */

/* The customer's own switch is not theirs to flip: read-only to the portal role. Their email
 * address is who signs in: changed by staff, not by whoever holds a session (account.c). The
 * consent flags change through the consent route, which records time and source; the
 * customer reads their own memberships (so "download my data" holds them) and writes none.
 * A ticket's status is staff's word (it stamps the SLA's milestones): the customer closes
 * their ticket through POST tickets/<id>/close (account.c), and sets no other status. */
static const char portal_role[] = "{\"principal\": \"contact\","
                                  " \"entities\": {\"list_member\": {\"read\": {\"link\": "
                                  "\"contact\"}}}, \"fields\": "
                                  "{\"contact.portal_access\": \"read_only\","
                                  " \"contact.email\": \"read_only\","
                                  " \"contact.email_opt_out\": \"read_only\","
                                  " \"contact.sms_opt_out\": \"read_only\","
                                  " \"contact.sms_opt_out_at\": \"read_only\","
                                  " \"ticket.status\": \"read_only\"}}";

static int init(rapport_host *h, const rapport_api *api, char *err, size_t errlen)
{
    pt_api = api;
    if (!RAPPORT_HAS(api, secret_take))
        return pt_fail(err, errlen, RAPPORT_EINVAL, "this engine (%s) lacks what portal needs "
                       "(session_start, secret_put): it needs a newer engine", api->host_version);
    /* Staff or a rule grants access: having an email address is not enough. */
    if (api->add_field(h, "contact", "portal_access",
                       "{\"type\": \"boolean\", \"default\": false, \"indexed\": true}") &&
        !strstr(api->last_error(h), "already defined"))
        return pt_fail(err, errlen, RAPPORT_EINVAL, "contact.portal_access: %s",
                       api->last_error(h));
    if (api->role_default(h, PT_ROLE, portal_role) ||
        api->hook(h, "contact", RAPPORT_UPDATE, 0, access_hook, NULL) ||
        api->hook(h, "contact", RAPPORT_ERASE, 0, erase_hook, NULL) ||
        api->command(h, "grant", "portal grant CONTACT_ID: the contact may sign in to the "
                     "customer portal", cmd_access, (void *)1) ||
        api->command(h, "revoke", "portal revoke CONTACT_ID: the contact may no longer sign "
                     "in; their sessions end", cmd_access, NULL) ||
        api->lua_function(h, "grant", lua_access, (void *)1) ||
        api->lua_function(h, "revoke", lua_access, NULL))
        return pt_fail(err, errlen, RAPPORT_EINVAL, "%s", api->last_error(h));
    int rc = pt_login_init(h, err, errlen);
    if (rc || (rc = pt_account_init(h, err, errlen)))
        return rc;
    /* The knowledge base (kb.c): articles, their public routes and votes. */
    if (portal_kb_init(h, api))
        return pt_fail(err, errlen, RAPPORT_EINVAL, "the knowledge base: %s",
                       api->last_error(h));
    /* One search over the customer's records and the articles (search.c), and the routes in
     * the OpenAPI document (docs.c). */
    if ((rc = pt_search_init(h, err, errlen)))
        return rc;
    if (pt_docs_init(h))
        return pt_fail(err, errlen, RAPPORT_EINVAL, "route docs: %s", api->last_error(h));
    return 0;
}

static void fini(rapport_host *h, const rapport_api *api)
{
    (void)h, (void)api;
    pt_login_fini();
}

static const rapport_dep deps[] = {{"operational", "0.2.0"}, {"collaborative", NULL}, {NULL, NULL}};

static const rapport_plugin descriptor = {
    .abi = RAPPORT_PLUGIN_ABI,
    .name = "portal",
    .version = "0.1.0",
    .description = "the customer portal: contacts signing in by a mailed link or a password",
    .requires = deps,
    .init = init,
    .fini = fini,
};

RAPPORT_EXPORT const rapport_plugin *rapport_plugin_entry(void)
{
    return &descriptor;
}
