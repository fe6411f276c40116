/*
 * sms_in.c — what an SMS gateway sends here, signed (channels.h): delivery receipts that move
 * a sent message forward (never back), and messages in, stored on the timeline of the contact
 * whose number wrote (or of a new lead, with plugin.collaborative.sms.create_lead). STOP (and
 * STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT) opts the number out of every SMS, START or UNSTOP
 * back in, each said with an event.
 *
 *       POST sms/status    Twilio form (MessageSid, MessageStatus) or JSON {id, status}
 *       POST sms/inbound   Twilio form (From, To, Body, MessageSid) or JSON {from, to, text, id}
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "channels.h"

/* @p b when only it is in @p o, else @p a: Twilio's two names of one field (MessageSid and the
 * older SmsSid), an error naming the current one. */
static const char *pick(json_t *o, const char *a, const char *b)
{
    return json_object_get(o, b) && !json_object_get(o, a) ? b : a;
}

/* ---- SMS in: delivery receipts ------------------------------------------------------------ */

/* How far along a message is: a receipt only moves it forward (a late "sent" after
 * "delivered" changes nothing). */
static int rank_of(const char *status)
{
    static const char *const order[] = {"queued", "sending", "sent", "delivered", "failed"};
    for (int i = 0; i < 5; i++)
        if (status && strcmp(status, order[i]) == 0)
            return i < 4 ? i : 3;
    return 99; /* refused, or anything else: never changed by a receipt */
}

/* The interaction status a gateway's word means; NULL for a word that moves nothing (queued,
 * accepted …), "" for one this route does not know. */
static const char *receipt_status(const char *word)
{
    static const struct {
        const char *word, *status;
    } map[] = {
        {"delivered", "delivered"}, {"read", "delivered"},  {"failed", "failed"},
        {"undelivered", "failed"},  {"canceled", "failed"}, {"sent", "sent"},
        {"queued", NULL},           {"accepted", NULL},     {"sending", NULL},
        {"scheduled", NULL},
    };
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (strcasecmp(word, map[i].word) == 0)
            return map[i].status;
    return "";
}

/* Applies receipt @p word (with the gateway's @p error, may be NULL) to the SMS the gateway
 * calls @p pid; *id gets the interaction, @p status (16 bytes) its status after. */
static int apply_receipt(rapport_host *h, const char *pid, const char *word, const char *error,
                         int64_t *id, char status[16], char *err, size_t errlen)
{
    char key[256];
    snprintf(key, sizeof key, "sms:%s", pid);
    json_t *i = cm_find_one(h, "interaction", "ext_key", json_string(key));
    if (!i)
        return cm_fail(err, errlen, RAPPORT_ENOTFOUND, "no SMS was sent with the gateway's id "
                       "\"%.100s\"", pid);
    *id = id_of(i);
    const char *was = str_of(i, "status");
    const char *to = receipt_status(word);
    snprintf(status, 16, "%s", was ? was : "");
    int rc = 0;
    if (to && rank_of(to) > rank_of(was)) {
        json_t *patch = json_pack("{s:s}", "status", to);
        if (patch && strcmp(to, "failed") == 0)
            json_object_set_new(patch, "error", json_sprintf("the gateway reports %s%s%.200s",
                                                             word, error ? ": " : "",
                                                             error ? error : ""));
        rc = cm_patch_record(h, "interaction", *id, patch, err, errlen);
        if (!rc)
            snprintf(status, 16, "%s", to);
    }
    json_decref(i);
    return rc;
}

/* POST sms/status: Twilio's form (MessageSid, MessageStatus, ErrorCode) or JSON {id, status,
 * error}. */
static int route_sms_status(rapport_host *h, const rapport_api *api, const rapport_request *req,
                            int *status, char **body, void *ud, char *err, size_t errlen)
{
    (void)api;
    (void)ud;
    if (!cm_signed_ok(h, req, "sms", status, body))
        return 0;
    bool form;
    json_t *b = cm_body_fields(req, &form, err, errlen);
    if (!b)
        return RAPPORT_EINVAL;
    const char *kid = form ? pick(b, "MessageSid", "SmsSid") : "id";
    const char *kst = form ? pick(b, "MessageStatus", "SmsStatus") : "status";
    const char *kerr = form ? (json_object_get(b, "ErrorMessage") ? "ErrorMessage" : "ErrorCode")
                            : "error";
    const char *pid, *word, *error;
    int64_t id = 0;
    char now[16] = "";
    int rc = cm_text_field(b, kid, true, 200, false, &pid, err, errlen);
    if (!rc)
        rc = cm_text_field(b, kst, true, 40, false, &word, err, errlen);
    if (!rc)
        rc = cm_text_field(b, kerr, false, 500, false, &error, err, errlen);
    if (!rc && receipt_status(word) && !*receipt_status(word))
        rc = cm_fail(err, errlen, RAPPORT_EINVAL, "%s: \"%.40s\" is not a status this route "
                     "knows (delivered, failed, undelivered, sent …)", kst, word);
    if (!rc)
        rc = apply_receipt(h, pid, word, error, &id, now, err, errlen);
    json_decref(b);
    if (rc)
        return rc;
    *body = cm_dump(json_pack("{s:{s:I,s:s}}", "data", "id", (json_int_t)id, "status", now));
    return 0;
}

/* ---- SMS in: messages --------------------------------------------------------------------- */

/* 1 for an opt-out word, 2 for an opt-in, 0 for an ordinary message: the whole text, trimmed,
 * in any case (what carriers recognise). */
static int keyword_of(const char *text)
{
    static const char *const stop[] = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"};
    static const char *const start[] = {"START", "UNSTOP"};
    while (text && isspace((unsigned char)*text))
        text++;
    size_t n = text ? strlen(text) : 0;
    while (n && isspace((unsigned char)text[n - 1]))
        n--;
    for (size_t i = 0; i < sizeof stop / sizeof *stop; i++)
        if (n == strlen(stop[i]) && strncasecmp(text, stop[i], n) == 0)
            return 1;
    for (size_t i = 0; i < sizeof start / sizeof *start; i++)
        if (n == strlen(start[i]) && strncasecmp(text, start[i], n) == 0)
            return 2;
    return 0;
}

/* Opts the contacts of @p who out of SMS (@p out) or back in, and says so with an event
 * (contact.sms_opted_out / contact.sms_opted_in {number, source: "sms"}); one event about no
 * record when no contact has the number, so a rule still learns of it. */
static int set_opt_out(rapport_host *h, json_t *who, const char *number, bool out, char *err,
                       size_t errlen)
{
    const char *type = out ? "contact.sms_opted_out" : "contact.sms_opted_in";
    char *payload = cm_dump_free(json_pack("{s:s,s:s}", "number", number, "source", "sms"));
    char now[RAPPORT_TIME_LEN];
    int rc = payload ? 0 : cm_fail(err, errlen, RAPPORT_ENOMEM, "out of memory");
    cm_now_text(h, now);
    size_t i;
    json_t *c;
    json_array_foreach(who, i, c) {
        if (rc || json_is_true(json_object_get(c, "sms_opt_out")) == out)
            continue; /* already so: no second event */
        rc = cm_patch_record(h, "contact", id_of(c),
                             out ? json_pack("{s:b,s:s}", "sms_opt_out", 1, "sms_opt_out_at", now)
                                 : json_pack("{s:b,s:n}", "sms_opt_out", 0, "sms_opt_out_at"),
                             err, errlen);
        if (!rc && (rc = cm_api->emit(h, type, "contact", id_of(c), payload)))
            rc = cm_host_fail(h, rc, err, errlen);
    }
    if (!rc && json_array_size(who) == 0 && (rc = cm_api->emit(h, type, NULL, 0, payload)))
        rc = cm_host_fail(h, rc, err, errlen);
    free(payload);
    return rc;
}

/* A lead for @p number, an unknown number that wrote in (plugin.collaborative.sms.create_lead):
 * the one that has it, or a new one. Links it in @p links. */
static int lead_for(rapport_host *h, const char *number, json_t *links, char *err, size_t errlen)
{
    json_t *was = cm_find_one(h, "lead", "phone", json_string(number));
    int64_t id = id_of(was);
    json_decref(was);
    if (!id) {
        char *f = cm_dump_free(json_pack("{s:s,s:s,s:s}", "last_name", number, "phone", number,
                                         "source", "sms"));
        int rc = f ? cm_api->create(h, "lead", f, &id) : RAPPORT_ENOMEM;
        free(f);
        if (rc)
            return cm_fail(err, errlen, rc, "lead for %s: %s", number, cm_api->last_error(h));
    }
    json_array_append_new(links, json_pack("[s,I]", "lead", (json_int_t)id));
    return 0;
}

/** An inbound SMS, as read from either shape (borrowed from the body). */
typedef struct sms_in {
    const char *from, *to, *text, *id;
} sms_in_t;

/* Reads @p b, Twilio's form when @p form, else JSON. */
static int sms_in_read(json_t *b, bool form, sms_in_t *m, char *err, size_t errlen)
{
    int rc = cm_text_field(b, form ? "From" : "from", true, 64, false, &m->from, err, errlen);
    if (!rc)
        rc = cm_text_field(b, form ? "To" : "to", false, 64, false, &m->to, err, errlen);
    if (!rc)
        rc = cm_text_field(b, form ? "Body" : "text", false, CM_SMS_MAX_BODY * 4, true, &m->text,
                           err, errlen);
    if (!rc)
        rc = cm_text_field(b, form ? pick(b, "MessageSid", "SmsSid") : "id", true, 200, false,
                           &m->id, err, errlen);
    return rc;
}

/* Stores inbound SMS @p m (in the caller's transaction); STOP and START act on the number. */
static int sms_in_store(rapport_host *h, const sms_in_t *m, int64_t *id, bool *dup,
                        int64_t *contact, char *err, size_t errlen)
{
    char number[48], why[160], cc[8];
    cm_default_cc(h, cc);
    /* A sender that is not a number (an alphanumeric sender id) is stored as it came. */
    bool known = cm_norm_number(m->from, cc, number, sizeof number, why, sizeof why) == 0;
    json_t *who = known ? cm_contacts_by_number(h, number, err, errlen) : json_array();
    if (!who)
        return RAPPORT_EIO;
    int kw = keyword_of(m->text);
    json_t *links = cm_links_of("contact", who);
    *contact = id_of(json_array_get(who, 0));
    json_t *f = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "channel", "sms", "direction", "in",
                          "status", "received", "from_addr", known ? number : m->from, "body",
                          m->text ? m->text : "", "external_id", m->id);
    if (f && m->to)
        json_object_set_new(f, "to_addr", json_string(m->to));
    if (f && kw)
        json_object_set_new(f, "subject", json_string(kw == 1 ? "SMS opt-out" : "SMS opt-in"));
    if (f && *contact)
        json_object_set_new(f, "contact", json_integer(*contact));
    cm_number_shared(f, who);
    json_t *create_lead = known && !*contact ? cm_config(h, "sms") : NULL;
    int rc = json_is_true(json_object_get(create_lead, "create_lead"))
                 ? lead_for(h, number, links, err, errlen)
                 : 0;
    json_decref(create_lead);
    if (rc || !f) {
        json_decref(f);
        json_decref(links);
        json_decref(who);
        return rc ? rc : cm_fail(err, errlen, RAPPORT_ENOMEM, "out of memory");
    }
    rc = cm_interaction_add(h, f, links, id, dup, err, errlen);
    /* A repeated STOP (the gateway retried) was acted on the first time. */
    if (!rc && !*dup && kw && known)
        rc = set_opt_out(h, who, number, kw == 1, err, errlen);
    json_decref(who);
    return rc;
}

/* POST sms/inbound: Twilio's form (From, To, Body, MessageSid) or JSON {from, to, text, id}. */
static int route_sms_inbound(rapport_host *h, const rapport_api *api,
                             const rapport_request *req, int *status, char **body, void *ud,
                             char *err, size_t errlen)
{
    (void)ud;
    if (!cm_signed_ok(h, req, "sms", status, body))
        return 0;
    bool form;
    json_t *b = cm_body_fields(req, &form, err, errlen);
    if (!b)
        return RAPPORT_EINVAL;
    sms_in_t m;
    int64_t id = 0, contact = 0;
    bool dup = false;
    int rc = sms_in_read(b, form, &m, err, errlen);
    if (!rc && (rc = api->begin(h)))
        rc = cm_host_fail(h, rc, err, errlen);
    else if (!rc) {
        if ((rc = sms_in_store(h, &m, &id, &dup, &contact, err, errlen)))
            api->rollback(h);
        else if ((rc = api->commit(h)))
            rc = cm_host_fail(h, rc, err, errlen);
    }
    json_decref(b);
    return rc ? rc : cm_answer_stored(status, body, id, dup, contact);
}

int cm_sms_in_init(rapport_host *h, char *err, size_t errlen)
{
    const rapport_api *api = cm_api;
    if (api->public_route(h, "POST", "sms/status", route_sms_status, NULL) ||
        api->public_route(h, "POST", "sms/inbound", route_sms_inbound, NULL))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "%s", api->last_error(h));
    return 0;
}
