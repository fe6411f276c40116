/*
 * calls.c — phone calls and social posts: call events from a phone system, and posts,
 * comments and reviews from social platforms, each a signed request (channels.h) stored as an
 * interaction on the timeline of the contact its number, handle or address names.
 *
 *       POST phone/call    JSON {id, from, to, direction, duration, recording, status}
 *       POST social/post   JSON {id, platform, handle, email, text, link, rating, kind}
 *
 * Settings: plugin.collaborative.phone {"secret"} and plugin.collaborative.social {"secret"}.
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "channels.h"

/** The longest post or review taken. */
#define SOCIAL_MAX_TEXT 20000

/* ---- phone -------------------------------------------------------------------------------- */

/** A call event (borrowed from the body). */
typedef struct call {
    const char *id, *from, *to, *direction, *status, *recording;
    json_int_t duration; /**< Seconds, or -1 when not given. */
} call_t;

/* Whether @p url is an absolute http(s) URL (what the store's url fields hold). */
static bool web_url(const char *url)
{
    return url && (strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0) &&
           !strchr(url, ' ');
}

static int call_read(json_t *b, call_t *c, char *err, size_t errlen)
{
    int rc = cm_text_field(b, "id", true, 200, false, &c->id, err, errlen);
    if (!rc)
        rc = cm_text_field(b, "from", true, 64, false, &c->from, err, errlen);
    if (!rc)
        rc = cm_text_field(b, "to", true, 64, false, &c->to, err, errlen);
    if (!rc)
        rc = cm_text_field(b, "direction", true, 8, false, &c->direction, err, errlen);
    if (!rc)
        rc = cm_text_field(b, "status", false, 16, false, &c->status, err, errlen);
    if (!rc)
        rc = cm_text_field(b, "recording", false, 2048, false, &c->recording, err, errlen);
    if (rc)
        return rc;
    if (strcmp(c->direction, "in") != 0 && strcmp(c->direction, "out") != 0)
        return cm_fail(err, errlen, RAPPORT_EINVAL, "direction: \"in\" or \"out\", not \"%s\"",
                       c->direction);
    if (!c->status)
        c->status = "answered";
    if (strcmp(c->status, "answered") != 0 && strcmp(c->status, "missed") != 0 &&
        strcmp(c->status, "voicemail") != 0)
        return cm_fail(err, errlen, RAPPORT_EINVAL, "status: \"answered\", \"missed\" or "
                       "\"voicemail\", not \"%s\"", c->status);
    if (c->recording && !web_url(c->recording))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "recording: an http:// or https:// URL "
                       "expected");
    json_t *d = json_object_get(b, "duration");
    c->duration = json_is_integer(d) ? json_integer_value(d) : -1;
    if ((d && !json_is_null(d) && !json_is_integer(d)) || (json_is_integer(d) &&
                                                           (c->duration < 0 ||
                                                            c->duration > 7 * 86400)))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "duration: whole seconds, 0 to 604800");
    return 0;
}

/* What the timeline says of call @p c: "Incoming call (3 min 20 s)", "Missed call" … */
static void call_subject(const call_t *c, char *out, size_t cap)
{
    bool in = strcmp(c->direction, "in") == 0;
    char len[40] = "";
    if (c->duration > 0)
        snprintf(len, sizeof len, " (%lld min %lld s)", (long long)(c->duration / 60),
                 (long long)(c->duration % 60));
    if (strcmp(c->status, "answered") == 0)
        snprintf(out, cap, "%s call%s", in ? "Incoming" : "Outgoing", len);
    else if (strcmp(c->status, "voicemail") == 0)
        snprintf(out, cap, "%s%s", in ? "Voicemail" : "Outgoing call, left a voicemail", len);
    else
        snprintf(out, cap, "%s", in ? "Missed call" : "Outgoing call, not answered");
}

/* Stores call @p c, linked to the contact its other party's number names. */
static int call_store(rapport_host *h, const call_t *c, int64_t *id, bool *dup, int64_t *contact,
                      char *err, size_t errlen)
{
    bool in = strcmp(c->direction, "in") == 0;
    char from[48], to[48], why[160], cc[8], subject[80];
    cm_default_cc(h, cc);
    bool from_ok = cm_norm_number(c->from, cc, from, sizeof from, why, sizeof why) == 0;
    bool to_ok = cm_norm_number(c->to, cc, to, sizeof to, why, sizeof why) == 0;
    /* The customer is the caller of a call in, the callee of a call out. */
    bool known = in ? from_ok : to_ok;
    json_t *who = known ? cm_contacts_by_number(h, in ? from : to, err, errlen) : json_array();
    if (!who)
        return RAPPORT_EIO;
    /* A call out is a record of what happened; a call in is taken or missed (voicemail too:
     * nobody answered, the message waits). */
    const char *st = !in ? "logged" : strcmp(c->status, "answered") == 0 ? "received" : "missed";
    call_subject(c, subject, sizeof subject);
    *contact = id_of(json_array_get(who, 0));
    json_t *f = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "channel", "phone", "direction",
                          c->direction, "status", st, "from_addr", from_ok ? from : c->from,
                          "to_addr", to_ok ? to : c->to, "external_id", c->id, "subject",
                          subject);
    if (f && c->duration >= 0)
        json_object_set_new(f, "duration", json_integer(c->duration));
    if (f && c->recording)
        json_object_set_new(f, "recording", json_string(c->recording));
    if (f && *contact)
        json_object_set_new(f, "contact", json_integer(*contact));
    cm_number_shared(f, who);
    json_t *links = cm_links_of("contact", who);
    json_decref(who);
    if (!f) {
        json_decref(links);
        return cm_fail(err, errlen, RAPPORT_ENOMEM, "out of memory");
    }
    return cm_interaction_add(h, f, links, id, dup, err, errlen);
}

/* POST phone/call {id, from, to, direction, duration, recording, status}. */
static int route_phone_call(rapport_host *h, const rapport_api *api, const rapport_request *req,
                            int *status, char **body, void *ud, char *err, size_t errlen)
{
    (void)ud;
    (void)api;
    if (!cm_signed_ok(h, req, "phone", status, body))
        return 0;
    json_t *b = cm_body_fields(req, NULL, err, errlen);
    if (!b)
        return RAPPORT_EINVAL;
    call_t c;
    int64_t id = 0, contact = 0;
    bool dup = false;
    int rc = call_read(b, &c, err, errlen);
    if (!rc)
        rc = call_store(h, &c, &id, &dup, &contact, err, errlen);
    json_decref(b);
    return rc ? rc : cm_answer_stored(status, body, id, dup, contact);
}

/* ---- social ------------------------------------------------------------------------------- */

/** A post, comment or review (borrowed from the body). */
typedef struct post {
    const char *id, *platform, *handle, *email, *text, *link, *kind;
    json_int_t rating; /**< 1 to 5, or 0 when not given. */
} post_t;

static int post_read(json_t *b, post_t *p, char *err, size_t errlen)
{
    int rc = cm_text_field(b, "id", true, 200, false, &p->id, err, errlen);
    if (!rc)
        rc = cm_text_field(b, "platform", true, 40, false, &p->platform, err, errlen);
    if (!rc)
        rc = cm_text_field(b, "handle", false, 200, false, &p->handle, err, errlen);
    if (!rc)
        rc = cm_text_field(b, "email", false, 254, false, &p->email, err, errlen);
    if (!rc)
        rc = cm_text_field(b, "text", false, SOCIAL_MAX_TEXT, true, &p->text, err, errlen);
    if (!rc)
        rc = cm_text_field(b, "link", false, 2048, false, &p->link, err, errlen);
    if (!rc)
        rc = cm_text_field(b, "kind", false, 16, false, &p->kind, err, errlen);
    if (rc)
        return rc;
    if (!p->kind)
        p->kind = "post";
    if (strcmp(p->kind, "post") != 0 && strcmp(p->kind, "review") != 0 &&
        strcmp(p->kind, "comment") != 0)
        return cm_fail(err, errlen, RAPPORT_EINVAL, "kind: \"post\", \"review\" or \"comment\", "
                       "not \"%s\"", p->kind);
    if (p->email && (!strchr(p->email, '@') || strchr(p->email, ' ')))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "email: \"%.60s\" is not an address",
                       p->email);
    if (p->link && !web_url(p->link))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "link: an http:// or https:// URL expected");
    json_t *r = json_object_get(b, "rating");
    p->rating = json_is_integer(r) ? json_integer_value(r) : 0;
    if (r && !json_is_null(r) && (!json_is_integer(r) || p->rating < 1 || p->rating > 5))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "rating: a whole number from 1 to 5");
    if (p->rating && strcmp(p->kind, "review") != 0)
        return cm_fail(err, errlen, RAPPORT_EINVAL, "rating: only a review has one (kind is "
                       "\"%s\")", p->kind);
    if (!p->text && !p->rating)
        return cm_fail(err, errlen, RAPPORT_EINVAL, "text: required (a review may give only a "
                       "rating)");
    return 0;
}

/* The contact post @p p is from: by social_handle (exactly), else by email. Owned, or NULL. */
static json_t *post_author(rapport_host *h, const post_t *p)
{
    json_t *c = p->handle ? cm_find_one(h, "contact", "social_handle", json_string(p->handle))
                          : NULL;
    if (!c && p->email) {
        /* The store keeps addresses in lower case. */
        char lower[256];
        size_t n = 0;
        for (; p->email[n] && n + 1 < sizeof lower; n++)
            lower[n] = (char)tolower((unsigned char)p->email[n]);
        lower[n] = '\0';
        c = cm_find_one(h, "contact", "email", json_string(lower));
    }
    return c;
}

/* POST social/post {id, platform, handle, email, text, link, rating, kind}. */
static int route_social_post(rapport_host *h, const rapport_api *api, const rapport_request *req,
                             int *status, char **body, void *ud, char *err, size_t errlen)
{
    (void)ud;
    (void)api;
    if (!cm_signed_ok(h, req, "social", status, body))
        return 0;
    json_t *b = cm_body_fields(req, NULL, err, errlen);
    if (!b)
        return RAPPORT_EINVAL;
    post_t p;
    int64_t id = 0, contact = 0;
    bool dup = false;
    int rc = post_read(b, &p, err, errlen);
    if (!rc) {
        json_t *who = post_author(h, &p);
        contact = id_of(who);
        json_decref(who);
        char subject[120], ext[260];
        /* "Review on trustpilot (2/5)"; the platform is also where it was said (to_addr),
         * which the default rules read. */
        snprintf(subject, sizeof subject, "%c%s on %s", toupper((unsigned char)p.kind[0]),
                 p.kind + 1, p.platform);
        if (p.rating)
            snprintf(subject + strlen(subject), sizeof subject - strlen(subject), " (%d/5)",
                     (int)p.rating);
        /* Two platforms may use the same ids. */
        snprintf(ext, sizeof ext, "%s:%s", p.platform, p.id);
        json_t *f = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s?}", "channel", "social", "direction",
                              "in", "status", "received", "external_id", ext, "to_addr",
                              p.platform, "subject", subject, "body", p.text);
        const char *from = p.handle ? p.handle : p.email;
        if (f && from)
            json_object_set_new(f, "from_addr", json_string(from));
        if (f && p.handle)
            json_object_set_new(f, "handle", json_string(p.handle));
        if (f && p.link)
            json_object_set_new(f, "link", json_string(p.link));
        if (f && p.rating)
            json_object_set_new(f, "rating", json_integer(p.rating));
        if (f && contact)
            json_object_set_new(f, "contact", json_integer(contact));
        rc = f ? cm_interaction_add(h, f, NULL, &id, &dup, err, errlen)
               : cm_fail(err, errlen, RAPPORT_ENOMEM, "out of memory");
    }
    json_decref(b);
    return rc ? rc : cm_answer_stored(status, body, id, dup, contact);
}

int cm_calls_init(rapport_host *h, char *err, size_t errlen)
{
    const rapport_api *api = cm_api;
    if (api->public_route(h, "POST", "phone/call", route_phone_call, NULL) ||
        api->public_route(h, "POST", "social/post", route_social_post, NULL))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "%s", api->last_error(h));
    return 0;
}
