/*
 * account.c — what a signed-in customer does about themselves: their consent (email and SMS
 * marketing, the mailing lists an administrator made public), asking to be forgotten (a task
 * for staff, once), and the privacy policy anyone may read. Their own details they edit
 * through the JSON API (PATCH /api/v1/contact/ID): the role says which fields; the hook below
 * checks the language they choose.
 *
 * The portal role cannot express consent (a customer may join a public list, not a private
 * one, and every change needs its time and source), so these routes check as the caller that
 * the contact is theirs, then write as the plugin only what the customer asked for.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb.h"
#include "portal.h"

/* What the consent's records and events say they came from. */
#define SOURCE "portal"
/* The subject of the task a "forget me" opens: how a second request finds the open one. */
#define FORGET_SUBJECT "Forget me: erase this contact's personal data (asked on the portal)"
/* How many lists one change may name, and how many the page is offered. */
enum { LISTS_MAX = 200, POLICY_MAX = 256 * 1024 };

static int answer(const rapport_api *api, int *status, char **body, int code, json_t *j)
{
    *status = code;
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    *body = text ? api->strdup(text) : NULL;
    free(text);
    return text || !j ? 0 : RAPPORT_ENOMEM;
}

/* The contact a record session acts as, or 0 (a staff user, a token). */
static int64_t customer_of(const rapport_request *req)
{
    const char *s = req->subject;
    if (!s || strncmp(s, "contact:", 8) != 0)
        return 0;
    char *end = NULL;
    long long id = strtoll(s + 8, &end, 10);
    return end && !*end && id > 0 ? id : 0;
}

/* The JSON answer of a host call (owned), or NULL. */
static json_t *parsed(char *text)
{
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    pt_api->free(text);
    return j;
}

/* @p j (stolen) as compact JSON text (owned, free()), or NULL. */
static char *dump(json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return text;
}

/* find as whoever acts now: {"where": where (stolen), "limit": limit} -> data (owned). */
static json_t *find(rapport_host *h, const char *entity, json_t *where, int limit)
{
    json_t *q = json_pack("{s:o,s:i,s:s}", "where", where, "limit", limit, "order", "id");
    char *qs = q ? json_dumps(q, JSON_COMPACT) : NULL;
    json_decref(q);
    json_t *ans = qs ? parsed(pt_api->find(h, entity, qs)) : NULL;
    free(qs);
    json_t *data = json_incref(json_object_get(ans, "data"));
    json_decref(ans);
    return data;
}

/* A route's own path only: consent/anything is no page. */
static bool exact(const rapport_request *req, char *err, size_t errlen)
{
    if (req->rest && *req->rest) {
        pt_fail(err, errlen, RAPPORT_ENOTFOUND, "no such path: %.80s", req->path);
        return false;
    }
    return true;
}

/* The caller's own contact, read as the caller: their role must reach it ("self"). NULL with
 * @p err filled when the request is no customer's or the role does not reach the record. */
static json_t *own_contact(rapport_host *h, const rapport_request *req, int64_t *id, int *rc,
                           char *err, size_t errlen)
{
    *id = customer_of(req);
    *rc = RAPPORT_ENOTFOUND;
    if (!exact(req, err, errlen))
        return NULL;
    *rc = RAPPORT_EPERM;
    if (!*id) {
        pt_fail(err, errlen, RAPPORT_EPERM, "this is for a customer signed in to the portal");
        return NULL;
    }
    json_t *c = parsed(pt_api->get(h, "contact", *id));
    if (!c)
        pt_fail(err, errlen, RAPPORT_EPERM, "contact %" PRId64 ": %s", *id,
                pt_api->last_error(h));
    else
        *rc = 0;
    return c;
}

/* The event @p type about contact @p id with @p payload (stolen), as the plugin. */
static int event(rapport_host *h, const char *type, int64_t id, json_t *payload)
{
    char *text = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
    json_decref(payload);
    int rc = text ? pt_api->emit(h, type, "contact", id, text) : RAPPORT_ENOMEM;
    free(text);
    return rc;
}

static void now_text(rapport_host *h, char out[RAPPORT_TIME_LEN])
{
    if (pt_api->time_format(h, pt_api->now_ms(h), out))
        snprintf(out, RAPPORT_TIME_LEN, "1970-01-01T00:00:00.000Z");
}

/* ---- consent ------------------------------------------------------------------------------ */

/* The public lists with this contact's membership of each: [{id, name, description,
 * subscribed, opted_in_at, source, opted_out_at, opt_out_source}] (owned), read as the plugin
 * (the role reads neither lists nor memberships). */
static json_t *lists_of(rapport_host *h, int64_t contact)
{
    json_t *lists = find(h, "mailing_list", json_pack("{s:b}", "public", 1), LISTS_MAX);
    json_t *mine = find(h, "list_member", json_pack("{s:I}", "contact", (json_int_t)contact),
                        1000);
    json_t *out = json_array();
    size_t i, k;
    json_t *l, *m;
    json_array_foreach(lists, i, l) {
        json_t *row = json_pack("{s:O,s:O,s:O,s:b,s:n,s:n,s:n,s:n}", "id",
                                json_object_get(l, "id"), "name", json_object_get(l, "name"),
                                "description", json_object_get(l, "description") ?: json_null(),
                                "subscribed", 0, "opted_in_at", "source", "opted_out_at",
                                "opt_out_source");
        json_array_foreach(mine, k, m) {
            if (!json_equal(json_object_get(m, "list"), json_object_get(l, "id")))
                continue;
            bool out_now = json_is_string(json_object_get(m, "opted_out_at"));
            json_object_set_new(row, "subscribed", json_boolean(!out_now));
            const char *keys[] = {"opted_in_at", "source", "opted_out_at", "opt_out_source"};
            for (size_t j = 0; j < 4; j++)
                json_object_set(row, keys[j], json_object_get(m, keys[j]) ?: json_null());
        }
        json_array_append_new(out, row);
    }
    json_decref(lists);
    json_decref(mine);
    return out;
}

static json_t *consent_state(rapport_host *h, json_t *contact, int64_t id)
{
    return json_pack("{s:b,s:b,s:O,s:o}", "email_opt_out",
                     json_is_true(json_object_get(contact, "email_opt_out")), "sms_opt_out",
                     json_is_true(json_object_get(contact, "sms_opt_out")), "sms_opt_out_at",
                     json_object_get(contact, "sms_opt_out_at") ?: json_null(), "lists",
                     lists_of(h, id));
}

/* GET consent: the customer's channel consent and the public lists. */
static int route_consent_get(rapport_host *h, const rapport_api *api, const rapport_request *req,
                             int *status, char **body, void *ud, char *err, size_t errlen)
{
    (void)ud;
    int64_t id;
    int rc = 0;
    json_t *c = own_contact(h, req, &id, &rc, err, errlen);
    if (!c)
        return rc;
    int was = api->as_plugin(h, 1);
    json_t *state = consent_state(h, c, id);
    api->as_plugin(h, was);
    json_decref(c);
    return rc ? rc : answer(api, status, body, 200, state);
}

/* One list's wanted state, checked: a public list's id, subscribed true or false. */
typedef struct {
    int64_t list;
    bool on;
} want_t;

/* Reads body.lists into @p w (room for LISTS_MAX): each {"list": id, "subscribed": bool}, the
 * list public. Returns how many, or -1 with @p err naming the member that is wrong. */
static int read_lists(rapport_host *h, json_t *v, want_t *w, char *err, size_t errlen)
{
    if (!json_is_array(v) || json_array_size(v) > LISTS_MAX)
        return pt_fail(err, errlen, -1, "lists: an array of at most %d {\"list\": id, "
                       "\"subscribed\": true|false} is needed", LISTS_MAX);
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
        json_t *l = json_object_get(e, "list"), *on = json_object_get(e, "subscribed");
        if (!json_is_object(e) || json_object_size(e) != 2 || !json_is_integer(l) ||
            json_integer_value(l) <= 0 || !json_is_boolean(on))
            return pt_fail(err, errlen, -1, "lists[%zu]: {\"list\": a list's id, "
                           "\"subscribed\": true|false} is needed, nothing else", i);
        /* A private list is refused as one that does not exist: the customer learns nothing
         * of the lists they are not offered. */
        json_t *found = parsed(pt_api->get(h, "mailing_list", json_integer_value(l)));
        bool offered = json_is_true(json_object_get(found, "public")) &&
                       !json_is_string(json_object_get(found, "deleted_at"));
        json_decref(found);
        if (!offered)
            return pt_fail(err, errlen, -1, "lists[%zu].list: %" JSON_INTEGER_FORMAT " is not a "
                           "list offered on the portal", i, json_integer_value(l));
        for (size_t k = 0; k < i; k++)
            if (w[k].list == json_integer_value(l))
                return pt_fail(err, errlen, -1, "lists[%zu].list: list %" JSON_INTEGER_FORMAT
                               " is named twice", i, json_integer_value(l));
        w[i] = (want_t){json_integer_value(l), json_is_true(on)};
    }
    return (int)json_array_size(v);
}

/* Sets channel flag @p field of contact @p id to @p out when it differs; the SMS flag keeps
 * its time too. One consent event per change. */
static int set_channel(rapport_host *h, json_t *c, int64_t id, const char *field, bool out,
                       const char *now, const char *client)
{
    if (json_is_true(json_object_get(c, field)) == out)
        return 0; /* already so: no write, no event */
    bool sms = strcmp(field, "sms_opt_out") == 0;
    json_t *p = json_pack("{s:b}", field, out);
    if (sms)
        json_object_set_new(p, "sms_opt_out_at", out ? json_string(now) : json_null());
    char *text = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    int rc = text ? pt_api->update(h, "contact", id, text, 0) : RAPPORT_ENOMEM;
    free(text);
    return rc ? rc
              : event(h, "portal.consent_changed", id,
                      json_pack("{s:s,s:s,s:s,s:s,s:s}", "channel", sms ? "sms" : "email",
                                "consent", out ? "out" : "in", "source", SOURCE, "at", now,
                                "client", client ? client : ""));
}

/* Subscribes contact @p id to list @p list or takes them off, when that changes anything: a
 * new membership, a new opt-in after an opt-out, or an opt-out, each with time and source. */
static int set_list(rapport_host *h, int64_t id, const want_t *w, const char *now,
                    const char *client)
{
    json_t *ms = find(h, "list_member", json_pack("{s:I,s:I}", "list", (json_int_t)w->list,
                                                  "contact", (json_int_t)id), 1);
    json_t *m = json_array_get(ms, 0);
    bool in = m && !json_is_string(json_object_get(m, "opted_out_at"));
    int rc = 0;
    if (in == w->on)
        goto done;
    char *text = NULL;
    if (!m) {
        text = dump(json_pack("{s:I,s:I,s:s,s:s}", "list", (json_int_t)w->list, "contact",
                              (json_int_t)id, "source", SOURCE, "opted_in_at", now));
        int64_t nid = 0;
        rc = text ? pt_api->create(h, "list_member", text, &nid) : RAPPORT_ENOMEM;
    } else {
        json_t *p = w->on ? json_pack("{s:s,s:s,s:n,s:n}", "opted_in_at", now, "source", SOURCE,
                                      "opted_out_at", "opt_out_source")
                          : json_pack("{s:s,s:s}", "opted_out_at", now, "opt_out_source", SOURCE);
        text = json_dumps(p, JSON_COMPACT);
        json_decref(p);
        rc = text ? pt_api->update(h, "list_member", json_integer_value(json_object_get(m, "id")),
                                   text, 0)
                  : RAPPORT_ENOMEM;
    }
    free(text);
    if (!rc)
        rc = event(h, "portal.consent_changed", id,
                   json_pack("{s:s,s:I,s:s,s:s,s:s,s:s}", "channel", "list", "list",
                             (json_int_t)w->list, "consent", w->on ? "in" : "out", "source",
                             SOURCE, "at", now, "client", client ? client : ""));
done:
    json_decref(ms);
    return rc;
}

/* Checks body @p b: only email_opt_out, sms_opt_out (booleans) and lists. */
static int read_change(rapport_host *h, json_t *b, want_t *w, int *nw, char *err, size_t errlen)
{
    const char *k;
    json_t *v;
    *nw = 0;
    json_object_foreach(b, k, v) {
        if (strcmp(k, "email_opt_out") && strcmp(k, "sms_opt_out") && strcmp(k, "lists"))
            return pt_fail(err, errlen, RAPPORT_EINVAL, "%s: not a consent (email_opt_out, "
                           "sms_opt_out, lists)", k);
        if (strcmp(k, "lists") && !json_is_boolean(v))
            return pt_fail(err, errlen, RAPPORT_EINVAL, "%s: true or false is needed", k);
    }
    json_t *l = json_object_get(b, "lists");
    if (l && (*nw = read_lists(h, l, w, err, errlen)) < 0)
        return RAPPORT_EINVAL;
    return 0;
}

/* POST consent {"email_opt_out": bool, "sms_opt_out": bool, "lists": [{"list": id,
 * "subscribed": bool}]} (each optional): all of it or, on any error, nothing. */
static int route_consent_post(rapport_host *h, const rapport_api *api,
                              const rapport_request *req, int *status, char **body, void *ud,
                              char *err, size_t errlen)
{
    (void)ud;
    int64_t id;
    int rc = 0;
    json_t *c = own_contact(h, req, &id, &rc, err, errlen);
    if (!c)
        return rc;
    json_error_t je;
    json_t *b = req->body ? json_loadb(req->body, req->body_len, 0, &je) : NULL;
    want_t *w = calloc(LISTS_MAX, sizeof *w);
    int nw = 0;
    int was = api->as_plugin(h, 1);
    if (!w)
        rc = pt_fail(err, errlen, RAPPORT_ENOMEM, "out of memory");
    else if (!json_is_object(b))
        rc = pt_fail(err, errlen, RAPPORT_EINVAL, "the body must be a JSON object%s%s",
                     req->body ? ": " : "", req->body ? je.text : "");
    else
        rc = read_change(h, b, w, &nw, err, errlen);
    if (rc)
        goto done;
    char now[RAPPORT_TIME_LEN];
    now_text(h, now);
    if ((rc = api->begin(h))) {
        pt_fail(err, errlen, rc, "%s", api->last_error(h));
        goto done;
    }
    const char *const flags[] = {"email_opt_out", "sms_opt_out"};
    for (int i = 0; i < 2 && !rc; i++)
        if (json_object_get(b, flags[i]))
            rc = set_channel(h, c, id, flags[i], json_is_true(json_object_get(b, flags[i])), now,
                             req->client);
    for (int i = 0; i < nw && !rc; i++)
        rc = set_list(h, id, &w[i], now, req->client);
    if (rc) {
        pt_fail(err, errlen, rc, "%s", api->last_error(h));
        api->rollback(h);
    } else if ((rc = api->commit(h))) {
        pt_fail(err, errlen, rc, "%s", api->last_error(h));
        api->rollback(h);
    }
    if (!rc) {
        json_t *fresh = parsed(api->get(h, "contact", id));
        rc = answer(api, status, body, 200, consent_state(h, fresh, id));
        json_decref(fresh);
    }
done:
    api->as_plugin(h, was);
    free(w);
    json_decref(b);
    json_decref(c);
    return rc;
}

/* ---- forget me ---------------------------------------------------------------------------- */

/* POST forget: opens a task for staff to erase the contact (`rapport erase contact ID`), once:
 * while one is open a second request answers with it and opens nothing. */
static int route_forget(rapport_host *h, const rapport_api *api, const rapport_request *req,
                        int *status, char **body, void *ud, char *err, size_t errlen)
{
    (void)ud;
    int64_t id;
    int rc = 0;
    json_t *c = own_contact(h, req, &id, &rc, err, errlen);
    if (!c)
        return rc;
    json_decref(c);
    int was = api->as_plugin(h, 1);
    json_t *open = find(h, "activity", json_pack("{s:s,s:s,s:s,s:I,s:b}", "kind", "task",
                                                 "subject", FORGET_SUBJECT, "related_entity",
                                                 "contact", "related_id", (json_int_t)id,
                                                 "done", 0), 1);
    int64_t task = 0;
    char now[RAPPORT_TIME_LEN];
    now_text(h, now);
    if (!open) {
        rc = pt_fail(err, errlen, RAPPORT_EIO, "%s", api->last_error(h));
    } else if (json_array_size(open)) {
        task = json_integer_value(json_object_get(json_array_get(open, 0), "id"));
        rc = answer(api, status, body, 200, json_pack("{s:I,s:s,s:s}", "task", (json_int_t)task,
                                                      "status", "already_requested", "detail",
                                                      "your request is with our staff"));
    } else {
        char desc[512];
        snprintf(desc, sizeof desc, "Contact %" PRId64 " asked on the portal at %s to be "
                 "forgotten. Check what must be kept by law (invoices), then run `rapport erase "
                 "contact %" PRId64 "` and mark this task done.", id, now, id);
        char *text = dump(json_pack("{s:s,s:s,s:s,s:I,s:s}", "kind", "task", "subject",
                                    FORGET_SUBJECT, "related_entity", "contact", "related_id",
                                    (json_int_t)id, "description", desc));
        /* The task and its event together, or neither. */
        rc = text ? api->begin(h) : RAPPORT_ENOMEM;
        bool open_tx = text && !rc;
        if (!rc && !(rc = api->create(h, "activity", text, &task)))
            rc = event(h, "portal.forget_requested", id,
                       json_pack("{s:I,s:s,s:s}", "task", (json_int_t)task, "at", now, "client",
                                 req->client ? req->client : ""));
        if (!rc && !(rc = api->commit(h)))
            rc = answer(api, status, body, 202,
                        json_pack("{s:I,s:s,s:s}", "task", (json_int_t)task, "status",
                                  "requested", "detail", "your request is with our staff"));
        else {
            pt_fail(err, errlen, rc, "%s", api->last_error(h));
            if (open_tx)
                api->rollback(h);
        }
        free(text);
    }
    json_decref(open);
    api->as_plugin(h, was);
    return rc;
}

/* ---- closing a ticket --------------------------------------------------------------------- */

/* POST tickets/<id>/close: the customer closes their own ticket. The portal role reads
 * ticket.status and cannot write it: a status the customer set would be staff's word
 * ("open" stamps the first response, "resolved" the resolution, so the SLA counts an answer
 * no one gave). Closing is the one move that is theirs; it is checked as the caller, written
 * as the plugin, and logged as portal.ticket_closed about the contact. */
static int route_close(rapport_host *h, const rapport_api *api, const rapport_request *req,
                       int *status, char **body, void *ud, char *err, size_t errlen)
{
    (void)ud;
    int64_t id = customer_of(req);
    const char *rest = req->rest ? req->rest : "";
    char *end = NULL;
    long long tid = rest[0] == '/' && rest[1] >= '1' && rest[1] <= '9'
                        ? strtoll(rest + 1, &end, 10) : 0;
    if (tid <= 0 || !end || strcmp(end, "/close") != 0)
        return pt_fail(err, errlen, RAPPORT_ENOTFOUND, "no such path: %.80s (POST "
                       "tickets/<id>/close)", req->path);
    if (!id)
        return pt_fail(err, errlen, RAPPORT_EPERM, "this is for a customer signed in to the "
                       "portal");
    /* As the caller: a ticket they cannot read is no ticket of theirs, and says so no more
     * than a missing one (answered here: a route that fails after a refused read is a 403,
     * the host's rule, which would tell that the ticket exists). */
    json_t *t = parsed(api->get(h, "ticket", tid));
    if (!t || json_integer_value(json_object_get(t, "contact")) != id) {
        json_decref(t);
        char detail[64];
        snprintf(detail, sizeof detail, "no ticket %lld", tid);
        return answer(api, status, body, 404, json_pack("{s:s,s:s,s:i,s:s}", "type",
                      "about:blank", "title", "Not Found", "status", 404, "detail", detail));
    }
    const char *st = json_string_value(json_object_get(t, "status"));
    bool closed = st && strcmp(st, "closed") == 0;
    json_decref(t);
    int rc = 0;
    if (!closed) {
        char now[RAPPORT_TIME_LEN];
        now_text(h, now);
        int was = api->as_plugin(h, 1);
        rc = api->begin(h);
        bool open_tx = !rc;
        if (!rc)
            rc = api->update(h, "ticket", tid, "{\"status\": \"closed\"}", 0);
        if (!rc)
            rc = event(h, "portal.ticket_closed", id,
                       json_pack("{s:I,s:s,s:s}", "ticket", (json_int_t)tid, "at", now,
                                 "client", req->client ? req->client : ""));
        if (!rc)
            rc = api->commit(h);
        if (rc) {
            pt_fail(err, errlen, rc, "ticket %lld: %s", tid, api->last_error(h));
            if (open_tx)
                api->rollback(h);
        }
        api->as_plugin(h, was);
        if (rc)
            return rc;
    }
    return answer(api, status, body, 200, json_pack("{s:I,s:s}", "id", (json_int_t)tid,
                                                    "status", "closed"));
}

/* ---- the privacy policy ------------------------------------------------------------------- */

/* The language @p query asks for (lang=fa), into @p out; "" when none or not a plain tag. */
static void lang_param(const char *query, char *out, size_t cap)
{
    out[0] = '\0';
    for (const char *p = query; p && *p;) {
        if (strncmp(p, "lang=", 5) == 0) {
            size_t n = strcspn(p + 5, "&");
            bool ok = n > 0 && n < cap;
            for (size_t i = 0; ok && i < n; i++)
                ok = isalnum((unsigned char)p[5 + i]) || p[5 + i] == '-';
            if (ok)
                snprintf(out, cap, "%.*s", (int)n, p + 5);
            return;
        }
        p = strchr(p, '&');
        p = p ? p + 1 : NULL;
    }
}

/* GET privacy (public): plugin.portal.privacy_policy — Markdown, or {"en": …, "fa": …} — as
 * safe HTML in the language asked for (else English, else the first), rendered as the
 * knowledge base's articles are (kb.c). {"language": null, "html": null} when unset. */
static int route_privacy(rapport_host *h, const rapport_api *api, const rapport_request *req,
                         int *status, char **body, void *ud, char *err, size_t errlen)
{
    (void)ud;
    char want[36];
    lang_param(req->query, want, sizeof want);
    char *raw = api->config(h, "privacy_policy");
    json_t *v = raw ? json_loads(raw, JSON_DECODE_ANY, NULL) : NULL;
    api->free(raw);
    const char *lang = NULL, *md = NULL;
    if (json_is_string(v))
        md = json_string_value(v);
    else if (json_is_object(v)) {
        const char *k;
        json_t *t;
        json_object_foreach(v, k, t) {
            if (!json_is_string(t))
                continue;
            bool better = !md || strcmp(k, want) == 0 ||
                          (strcmp(k, "en") == 0 && strcmp(lang, want) != 0);
            if (better) {
                md = json_string_value(t);
                lang = k;
            }
        }
    } else if (v)
        api->log(h, RAPPORT_LOG_WARN, "plugin.portal.privacy_policy: not Markdown text nor "
                 "{\"en\": text, …}; no policy is shown");
    char *html = md ? portal_kb_render(md, strlen(md) < POLICY_MAX ? strlen(md) : POLICY_MAX)
                    : NULL;
    int rc = md && !html ? pt_fail(err, errlen, RAPPORT_ENOMEM, "out of memory")
                         : answer(api, status, body, 200,
                                  json_pack("{s:s?,s:s?}", "language", lang, "html", html));
    free(html);
    json_decref(v);
    return rc;
}

/* ---- the contact's language --------------------------------------------------------------- */

/* A language tag as the portal's menu writes it (en, fa, pt-BR): letters, then parts of
 * letters and digits after hyphens; 2 to 35 characters. */
static bool tag_valid(const char *s)
{
    size_t n = strlen(s), i = 0;
    while (i < n && isalpha((unsigned char)s[i]))
        i++;
    if (i < 2 || i > 3 || n > 35)
        return false;
    for (; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !(s[i] == '-' && s[i + 1] && s[i + 1] != '-'))
            return false;
    return true;
}

/* Whether an update leaves the stored language @p v as it was: a value from before this check
 * (an import's "English") does not block the record's other changes. */
static bool unchanged(rapport_host *h, rapport_change *c, json_t *v)
{
    if (pt_api->change_action(c) != RAPPORT_UPDATE)
        return false;
    int was = pt_api->as_plugin(h, 1);
    json_t *old = parsed(pt_api->get(h, "contact", pt_api->change_id(c)));
    pt_api->as_plugin(h, was);
    bool same = json_equal(json_object_get(old, "language"), v);
    json_decref(old);
    return same;
}

/* Before a contact's create or update: a language, when set, is a tag ("en", "fa"), so no
 * page nor mail is asked for a language named "<b>". */
static int language_hook(rapport_host *h, const rapport_api *api, rapport_change *c, void *ud,
                         char *err, size_t errlen)
{
    (void)h, (void)ud;
    char *v = api->change_get(c, 0, "language");
    json_t *j = v ? json_loads(v, JSON_DECODE_ANY, NULL) : NULL;
    api->free(v);
    int rc = 0;
    if (json_is_string(j) && !tag_valid(json_string_value(j)) && !unchanged(h, c, j))
        rc = pt_fail(err, errlen, RAPPORT_EINVAL, "language: \"%.40s\" is not a language tag "
                     "(en, fa, pt-BR)", json_string_value(j));
    json_decref(j);
    return rc;
}

int pt_account_init(rapport_host *h, char *err, size_t errlen)
{
    const rapport_api *api = pt_api;
    /* Which lists a customer is offered: an administrator marks them (false until then). */
    if (api->add_field(h, "mailing_list", "public",
                       "{\"type\": \"boolean\", \"default\": false, \"indexed\": true}") &&
        !strstr(api->last_error(h), "already defined"))
        return pt_fail(err, errlen, RAPPORT_EINVAL, "mailing_list.public: %s",
                       api->last_error(h));
    if (api->hook(h, "contact", RAPPORT_CREATE, 0, language_hook, NULL) ||
        api->hook(h, "contact", RAPPORT_UPDATE, 0, language_hook, NULL) ||
        api->route(h, "GET", "consent", route_consent_get, NULL) ||
        api->route(h, "POST", "consent", route_consent_post, NULL) ||
        api->route(h, "POST", "forget", route_forget, NULL) ||
        api->route(h, "POST", "tickets", route_close, NULL) ||
        api->public_route(h, "GET", "privacy", route_privacy, NULL))
        return pt_fail(err, errlen, RAPPORT_EINVAL, "%s", api->last_error(h));
    return 0;
}
