/*
 * channels.h — what the channel files of the collaborative plugin share (channels.c, sms.c,
 * sms_in.c, calls.c), and nobody else includes: the checks and readers of the signed public
 * routes, phone numbers put in the operational plugin's one form, and each file's registration.
 *
 * HTTP, public (no token; each request signed as the engine signs its own webhooks: the header
 *       X-Rapport-Timestamp holds Unix seconds, X-Rapport-Signature "sha256=<hex>", the
 *       HMAC-SHA256 of "<timestamp>.<raw body>" keyed with the channel's secret; a timestamp
 *       more than 5 minutes from now is refused as a replay):
 *       POST sms/status    Twilio form (MessageSid, MessageStatus) or JSON {id, status}
 *       POST sms/inbound   Twilio form (From, To, Body, MessageSid) or JSON {from, to, text, id}
 *       POST phone/call    JSON {id, from, to, direction, duration, recording, status}
 *       POST social/post   JSON {id, platform, handle, email, text, link, rating, kind}
 * The first two are sms_in.c's, the last two calls.c's; the secrets are the settings
 * plugin.collaborative.sms.secret, .phone.secret and .social.secret. A route whose channel has
 * no secret refuses every request (403): nothing unsigned is taken.
 */
#ifndef CM_CHANNELS_H
#define CM_CHANNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collaborative.h"

/** The longest SMS body taken: Twilio's limit for a concatenated message. */
#define CM_SMS_MAX_BODY 1600

/** Text member @p key of object @p o (borrowed from @p o), or NULL. */
static inline const char *str_of(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/** The "id" member of record @p o, or 0. */
static inline int64_t id_of(json_t *o)
{
    return json_integer_value(json_object_get(o, "id"));
}

/* ---- records ------------------------------------------------------------------------------ */

/** JSON @p j (stolen) as text in a malloc'd string (free it); NULL when out of memory. */
char *cm_dump_free(json_t *j);

/** Updates @p entity @p id with @p patch (stolen); a failure names the record in @p err. */
int cm_patch_record(rapport_host *h, const char *entity, int64_t id, json_t *patch, char *err,
                    size_t errlen);

/* ---- phone numbers ------------------------------------------------------------------------ */

/** The calling code of plugin.operational.default_country ("98") into @p cc, or "". */
void cm_default_cc(rapport_host *h, char cc[8]);

/**
 * @p in as "+<digits>" (or bare digits without a default country @p cc) into @p out, as the
 * operational plugin stores phones; -1 with the reason in @p why when it is not a number.
 */
int cm_norm_number(const char *in, const char *cc, char *out, size_t cap, char *why,
                   size_t wlen);

/** The contacts whose phone or mobile is @p number (normalised), oldest first (owned array),
 *  or NULL with @p err. */
json_t *cm_contacts_by_number(rapport_host *h, const char *number, char *err, size_t errlen);

/** Marks message or call @p f "internal" when several contacts of @p who (cm_contacts_by_number's
 *  answer) share its number: a customer changes their own numbers in the portal, so a shared
 *  one does not say whose it is. Staff see it on each contact it is linked to (and the rules
 *  act on the first); no customer reads it in the portal. */
static inline void cm_number_shared(json_t *f, json_t *who)
{
    if (f && json_array_size(who) > 1)
        json_object_set_new(f, "visibility", json_string("internal"));
}

/* ---- signed requests ---------------------------------------------------------------------- */

/**
 * Checks the signature of @p req with the secret of setting @p channel ("sms", "phone",
 * "social"): 1 when it holds; 0 when it does not, with the answer (401, or 403 when the channel
 * has no secret) written into *status and *body (owned).
 */
int cm_signed_ok(rapport_host *h, const rapport_request *req, const char *channel, int *status,
                 char **body);

/**
 * The body of @p req as a JSON object (owned): a form when its Content-Type says so (Twilio's
 * shape, *form_out set; only where @p form_out is not NULL), else JSON. NULL with @p err.
 */
json_t *cm_body_fields(const rapport_request *req, bool *form_out, char *err, size_t errlen);

/**
 * Reads text field @p key of @p o into *out (borrowed from @p o; NULL when absent, null or
 * ""): a string, or a whole number taken as its text (an id), of at most @p max bytes, with no
 * control character but line breaks and tabs where @p lines. -1 with @p err naming the field.
 */
int cm_text_field(json_t *o, const char *key, bool required, size_t max, bool lines,
                  const char **out, char *err, size_t errlen);

/** Answers a stored inbound interaction @p id: 201 when new, 200 for a repeat (@p dup). */
int cm_answer_stored(int *status, char **body, int64_t id, bool dup, int64_t contact);

/** Links @p rows (records of @p entity) as [[entity, id], …] (owned). */
json_t *cm_links_of(const char *entity, json_t *rows);

/* ---- registration (called by cm_channels_init) -------------------------------------------- */

/** The SMS send job, crm.collaborative.send_sms and `rapport sms` (sms.c). */
int cm_sms_init(rapport_host *h, char *err, size_t errlen);
/** POST sms/status and sms/inbound (sms_in.c). */
int cm_sms_in_init(rapport_host *h, char *err, size_t errlen);
/** POST phone/call and social/post (calls.c). */
int cm_calls_init(rapport_host *h, char *err, size_t errlen);

#endif
