/*
 * sales.c — deals moving through pipelines, and leads turned into customers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "operational.h"

/* The pipeline a fresh install has. */
static const char default_pipelines[] =
    "{\"default\": [{\"name\": \"new\", \"probability\": 10, \"kind\": \"open\"},"
    " {\"name\": \"qualified\", \"probability\": 25, \"kind\": \"open\"},"
    " {\"name\": \"proposal\", \"probability\": 50, \"kind\": \"open\"},"
    " {\"name\": \"negotiation\", \"probability\": 75, \"kind\": \"open\"},"
    " {\"name\": \"won\", \"probability\": 100, \"kind\": \"won\"},"
    " {\"name\": \"lost\", \"probability\": 0, \"kind\": \"lost\"}]}";

/* Every pipeline (owned): the setting, else the default. */
static json_t *pipelines(rapport_host *h)
{
    json_t *p = op_config(h, "pipelines");
    if (json_is_object(p))
        return p;
    json_decref(p);
    return json_loads(default_pipelines, 0, NULL);
}

/* "a, b, c": the names in @p arr (objects with "name") or the keys of @p obj. */
static void names_of(json_t *v, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    const char *k;
    json_t *x;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach(v, k, x) {
            n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s", n ? ", " : "", k);
        }
    } else {
        json_array_foreach(v, i, x) {
            n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s", n ? ", " : "",
                                  op_str(x, "name") ? op_str(x, "name") : "?");
        }
    }
}

/* The stage @p name of @p stages, or NULL. */
static json_t *stage_of(json_t *stages, const char *name)
{
    size_t i;
    json_t *st;
    json_array_foreach(stages, i, st) {
        const char *n = op_str(st, "name");
        if (n && name && strcmp(n, name) == 0)
            return st;
    }
    return NULL;
}

/* Before-hook on deals: the pipeline and stage must exist; a new deal starts at the first
 * stage; a stage change sets the probability and the time, records when (and, if lost, why) a
 * deal closed, and appends deal.stage_changed. */
static int deal_hook(rapport_host *h, const rapport_api *api, rapport_change *c, void *ud,
                     char *err, size_t errlen)
{
    (void)ud;
    int act = api->change_action(c);
    json_t *all = pipelines(h), *pv = op_change_get(c, "pipeline"), *sv = op_change_get(c, "stage");
    json_t *old = NULL;
    char list[512];
    int rc = 0;
    const char *pname = json_string_value(pv) ? json_string_value(pv) : "default";
    json_t *stages = json_object_get(all, pname);
    if (!json_is_array(stages) || json_array_size(stages) == 0) {
        names_of(all, list, sizeof list);
        rc = op_fail(err, errlen, "deal: no pipeline named \"%s\" (pipelines: %s)", pname, list);
        goto out;
    }
    const char *sname = json_string_value(sv);
    if (!sname) {
        if (act == RAPPORT_UPDATE) {
            rc = op_fail(err, errlen, "deal: the stage cannot be emptied");
            goto out;
        }
        sname = op_str(json_array_get(stages, 0), "name");
        op_change_set(c, "stage", json_string(sname));
    }
    json_t *st = stage_of(stages, sname);
    if (!st) {
        names_of(stages, list, sizeof list);
        rc = op_fail(err, errlen, "deal: stage \"%s\" is not in pipeline \"%s\" (stages: %s)",
                     sname, pname, list);
        goto out;
    }
    const char *from = NULL;
    if (act == RAPPORT_UPDATE) {
        old = op_get(h, "deal", api->change_id(c));
        from = op_str(old, "stage");
        const char *oldp = op_str(old, "pipeline");
        if (from && strcmp(from, sname) == 0 && oldp && strcmp(oldp, pname) == 0)
            goto out; /* no stage change */
    }
    const char *kind = op_str(st, "kind") ? op_str(st, "kind") : "open";
    char now[32];
    op_fmt_time(api->now_ms(h), now);
    json_t *explicit_p = json_object_get(old, "probability");
    (void)explicit_p;
    if (json_is_integer(json_object_get(st, "probability")))
        op_change_set(c, "probability", json_incref(json_object_get(st, "probability")));
    op_change_set(c, "stage_changed_at", json_string(now));
    if (strcmp(kind, "won") == 0 || strcmp(kind, "lost") == 0) {
        json_t *reason = op_change_get(c, "close_reason");
        const char *r = json_string_value(reason);
        bool has_reason = r && *r;
        json_decref(reason);
        if (strcmp(kind, "lost") == 0 && !has_reason) {
            rc = op_fail(err, errlen, "deal: a lost deal needs its close_reason (why it was lost)");
            goto out;
        }
        op_change_set(c, "closed_at", json_string(now));
    } else if (act == RAPPORT_UPDATE && json_is_string(json_object_get(old, "closed_at"))) {
        /* Reopened: it is no longer closed, nor for that reason. */
        op_change_set(c, "closed_at", json_null());
        op_change_set(c, "close_reason", json_null());
    }
    if (act == RAPPORT_UPDATE) {
        json_t *p = json_pack("{s:s?,s:s,s:s,s:s,s:O?}", "from", from, "to", sname, "pipeline",
                              pname, "kind", kind, "probability",
                              json_object_get(st, "probability"));
        char *t = json_dumps(p, JSON_COMPACT);
        json_decref(p);
        if (api->emit(h, "deal.stage_changed", "deal", api->change_id(c), t))
            rc = op_fail(err, errlen, "deal: %s", api->last_error(h));
        free(t);
    }
out:
    json_decref(all);
    json_decref(pv);
    json_decref(sv);
    json_decref(old);
    return rc;
}

/* ---- lead conversion --------------------------------------------------------------------- */

/* Copies @p field of @p from into @p to as @p as, when it has a value. */
static void carry(json_t *to, const char *as, json_t *from, const char *field)
{
    json_t *v = json_object_get(from, field);
    if (v && !json_is_null(v) && !(json_is_string(v) && !*json_string_value(v)))
        json_object_set(to, as, v);
}

/* Creates @p rec (owned) as an @p entity; *id gets its id. */
static int create(rapport_host *h, const char *entity, json_t *rec, int64_t *id, char *err,
                  size_t errlen)
{
    char *t = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    int rc = op_api->create(h, entity, t, id);
    free(t);
    if (rc)
        op_fail(err, errlen, "%s", op_api->last_error(h));
    return rc;
}

/*
 * Turns lead @p lead_id into a contact, an account (the one given, else the one named like the
 * lead's company, else a new one) and, when @p opts asks ({"deal": true | "name" | {fields}}),
 * a deal, in one transaction; marks the lead converted with links to what it became. Returns
 * {"contact": …, "account": …|null, "deal": …|null} (owned), or NULL with @p err.
 */
static json_t *convert_lead(rapport_host *h, int64_t lead_id, json_t *opts, char *err,
                            size_t errlen)
{
    const rapport_api *api = op_api;
    json_t *lead = op_get(h, "lead", lead_id), *result = NULL;
    if (!lead) {
        op_fail(err, errlen, "convert_lead: %s", api->last_error(h));
        return NULL;
    }
    if (json_is_string(json_object_get(lead, "deleted_at"))) {
        op_fail(err, errlen, "convert_lead: lead %lld is deleted", (long long)lead_id);
        json_decref(lead);
        return NULL;
    }
    const char *status = op_str(lead, "status");
    if (status && strcmp(status, "converted") == 0) {
        json_t *into = json_object_get(lead, "converted_contact");
        op_fail(err, errlen, "convert_lead: lead %lld was already converted (at %s, into contact "
                             "%lld); a lead converts once",
                (long long)lead_id,
                op_str(lead, "converted_at") ? op_str(lead, "converted_at") : "?",
                (long long)json_integer_value(into));
        json_decref(lead);
        return NULL;
    }
    if (api->begin(h)) {
        op_fail(err, errlen, "convert_lead: %s", api->last_error(h));
        json_decref(lead);
        return NULL;
    }
    int64_t account = 0, contact = 0, deal = 0;
    json_t *want = json_object_get(opts, "account");
    const char *company = op_str(lead, "company");
    if (json_is_integer(want)) {
        account = json_integer_value(want);
        json_t *a = op_get(h, "account", account);
        if (!a) {
            op_fail(err, errlen, "convert_lead: %s", api->last_error(h));
            goto fail;
        }
        json_decref(a);
    } else if (company && *company) {
        /* An account named like the company is that company: no duplicate. */
        json_t *q = json_pack("{s:{s:s},s:i}", "where", "name", company, "limit", 1);
        char *qt = json_dumps(q, JSON_COMPACT);
        json_decref(q);
        json_t *found = op_json(api->find(h, "account", qt));
        free(qt);
        json_t *first = json_array_get(json_object_get(found, "data"), 0);
        if (first)
            account = json_integer_value(json_object_get(first, "id"));
        json_decref(found);
        if (!account) {
            json_t *a = json_pack("{s:s}", "name", company);
            carry(a, "owner", lead, "owner");
            carry(a, "phone", lead, "phone");
            if (create(h, "account", a, &account, err, errlen))
                goto fail;
        }
    }
    json_t *c = json_pack("{s:I}", "lead", (json_int_t)lead_id);
    static const char *const same[] = {"first_name", "last_name", "email", "phone", "title",
                                       "owner", NULL};
    for (int i = 0; same[i]; i++)
        carry(c, same[i], lead, same[i]);
    carry(c, "source", lead, "source");
    if (account)
        json_object_set_new(c, "account", json_integer(account));
    if (create(h, "contact", c, &contact, err, errlen))
        goto fail;
    json_t *dopt = json_object_get(opts, "deal");
    if (dopt && !json_is_false(dopt) && !json_is_null(dopt)) {
        json_t *d = json_is_object(dopt) ? json_deep_copy(dopt) : json_object();
        if (json_is_string(dopt))
            json_object_set(d, "name", dopt);
        if (!json_object_get(d, "name")) {
            char name[200];
            snprintf(name, sizeof name, "%s", company && *company ? company
                                              : op_str(lead, "last_name") ? op_str(lead, "last_name")
                                                                          : "deal");
            json_object_set_new(d, "name", json_string(name));
        }
        json_object_set_new(d, "contact", json_integer(contact));
        json_object_set_new(d, "lead", json_integer(lead_id));
        if (account)
            json_object_set_new(d, "account", json_integer(account));
        if (!json_object_get(d, "owner"))
            carry(d, "owner", lead, "owner");
        if (create(h, "deal", d, &deal, err, errlen))
            goto fail;
    }
    char now[32];
    op_fmt_time(api->now_ms(h), now);
    json_t *patch = json_pack("{s:s,s:s,s:I}", "status", "converted", "converted_at", now,
                              "converted_contact", (json_int_t)contact);
    if (account)
        json_object_set_new(patch, "converted_account", json_integer(account));
    if (deal)
        json_object_set_new(patch, "converted_deal", json_integer(deal));
    char *pt = json_dumps(patch, JSON_COMPACT);
    json_decref(patch);
    int rc = api->update(h, "lead", lead_id, pt, 0);
    free(pt);
    if (rc) {
        op_fail(err, errlen, "convert_lead: %s", api->last_error(h));
        goto fail;
    }
    if (api->commit(h)) {
        op_fail(err, errlen, "convert_lead: %s", api->last_error(h));
        json_decref(lead);
        return NULL;
    }
    result = json_pack("{s:o,s:o,s:o}", "contact", op_get(h, "contact", contact), "account",
                       account ? op_get(h, "account", account) : json_null(), "deal",
                       deal ? op_get(h, "deal", deal) : json_null());
    json_decref(lead);
    return result;
fail:
    api->rollback(h);
    json_decref(lead);
    return NULL;
}

/* crm.operational.convert_lead(lead_id [, {account = id, deal = true | "name" | {…}}]) */
static int lua_convert(rapport_host *h, const rapport_api *api, const char *args, char **result,
                       void *ud, char *err, size_t errlen)
{
    (void)ud;
    json_t *a = json_loads(args, 0, NULL);
    json_t *id = json_array_get(a, 0), *opts = json_array_get(a, 1);
    if (!json_is_integer(id)) {
        json_decref(a);
        return op_fail(err, errlen, "convert_lead(lead_id [, opts]): lead_id must be an integer");
    }
    if (opts && !json_is_object(opts) && !json_is_null(opts)) {
        json_decref(a);
        return op_fail(err, errlen, "convert_lead: opts must be a table ({account = id, deal = "
                                    "true})");
    }
    json_t *r = convert_lead(h, json_integer_value(id), opts, err, errlen);
    json_decref(a);
    if (!r)
        return RAPPORT_EINVAL;
    char *t = json_dumps(r, JSON_COMPACT);
    json_decref(r);
    *result = api->strdup(t);
    free(t);
    return 0;
}

/* rapport convert-lead ID [--account ID] [--deal [NAME]] [--amount X] */
static int cmd_convert(rapport_host *h, const rapport_api *api, int argc, char **argv, void *ud)
{
    (void)ud;
    (void)api;
    json_t *opts = json_object(), *deal = NULL;
    int64_t id = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--account") == 0 && i + 1 < argc) {
            json_object_set_new(opts, "account", json_integer(strtoll(argv[++i], NULL, 10)));
        } else if (strcmp(argv[i], "--deal") == 0) {
            if (!deal)
                deal = json_object();
            if (i + 1 < argc && argv[i + 1][0] != '-')
                json_object_set_new(deal, "name", json_string(argv[++i]));
        } else if (strcmp(argv[i], "--amount") == 0 && i + 1 < argc) {
            if (!deal)
                deal = json_object();
            json_object_set_new(deal, "amount", json_string(argv[++i]));
        } else if (!id && argv[i][0] != '-') {
            char *end;
            id = strtoll(argv[i], &end, 10);
            if (*end || id <= 0)
                id = -1;
        } else {
            id = -1;
        }
    }
    if (id <= 0) {
        fprintf(stderr, "usage: rapport convert-lead LEAD_ID [--account ID] [--deal [NAME]] "
                        "[--amount X]\n");
        json_decref(opts);
        json_decref(deal);
        return 2;
    }
    if (deal)
        json_object_set_new(opts, "deal", deal);
    char err[512];
    json_t *r = convert_lead(h, id, opts, err, sizeof err);
    json_decref(opts);
    if (!r) {
        fprintf(stderr, "rapport: %s\n", err);
        return 1;
    }
    char *t = json_dumps(r, JSON_COMPACT);
    printf("%s\n", t);
    free(t);
    json_decref(r);
    return 0;
}

/* crm.operational.pipelines() -> {name = {stages…}} */
static int lua_pipelines(rapport_host *h, const rapport_api *api, const char *args,
                         char **result, void *ud, char *err, size_t errlen)
{
    (void)args;
    (void)ud;
    (void)err;
    (void)errlen;
    json_t *p = pipelines(h);
    char *t = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    *result = api->strdup(t);
    free(t);
    return 0;
}

/* GET /api/v1/plugins/operational/pipelines: {name: [stages…]}, what a pipeline board draws
 * its columns from (an empty stage is a column too). Not a secret: any signed-in caller. */
static int route_pipelines(rapport_host *h, const rapport_api *api, const rapport_request *req,
                           int *status, char **body, void *ud, char *err, size_t errlen)
{
    (void)ud;
    if (req->rest[0] && strcmp(req->rest, "/") != 0) {
        op_fail(err, errlen, "GET /api/v1/plugins/operational/pipelines: nothing follows the "
                             "path (got \"%.60s\")", req->rest);
        return RAPPORT_ENOTFOUND;
    }
    json_t *p = pipelines(h);
    char *t = p ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    if (!t)
        return op_fail(err, errlen, "pipelines: out of memory");
    *body = api->strdup(t);
    free(t);
    if (!*body)
        return op_fail(err, errlen, "pipelines: out of memory");
    *status = 200;
    return 0;
}

static const char pipelines_doc[] =
    "{\"summary\": \"The deal pipelines in force and their stages\", "
    "\"description\": \"The setting plugin.operational.pipelines, else the default pipeline: "
    "{name: [{name, probability (0-100), kind (open, won or lost)}, ...]}, stages in order.\", "
    "\"responses\": {\"200\": {\"description\": \"the pipelines\"}, "
    "\"404\": {\"description\": \"a path below the route\"}}}";

/* Before-hook on leads: a converted lead stays converted. */
static int lead_hook(rapport_host *h, const rapport_api *api, rapport_change *c, void *ud,
                     char *err, size_t errlen)
{
    (void)ud;
    json_t *old = op_get(h, "lead", api->change_id(c)), *now = op_change_get(c, "status");
    int rc = 0;
    const char *was = op_str(old, "status"), *is = json_string_value(now);
    if (was && strcmp(was, "converted") == 0 && (!is || strcmp(is, "converted") != 0))
        rc = op_fail(err, errlen, "lead %lld was converted: its status stays \"converted\"",
                     (long long)api->change_id(c));
    json_decref(old);
    json_decref(now);
    return rc;
}

int op_sales_init(rapport_host *h, char *err, size_t errlen)
{
    const rapport_api *api = op_api;
    if (api->hook(h, "deal", RAPPORT_CREATE, 20, deal_hook, NULL) ||
        api->hook(h, "deal", RAPPORT_UPDATE, 20, deal_hook, NULL) ||
        api->hook(h, "lead", RAPPORT_UPDATE, 20, lead_hook, NULL) ||
        api->lua_function(h, "convert_lead", lua_convert, NULL) ||
        api->lua_function(h, "pipelines", lua_pipelines, NULL) ||
        api->route(h, "GET", "pipelines", route_pipelines, NULL) ||
        (RAPPORT_HAS(api, route_doc) &&
         api->route_doc(h, "GET", "pipelines", pipelines_doc)) ||
        api->command(h, "convert-lead", "turn a lead into a contact, an account and a deal: "
                                        "convert-lead ID [--account ID] [--deal [NAME]] "
                                        "[--amount X]",
                     cmd_convert, NULL))
        return op_fail(err, errlen, "%s", api->last_error(h));
    return 0;
}
