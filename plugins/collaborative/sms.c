/*
 * sms.c — SMS out: a message stored as an interaction on the timeline of the contact its
 * number names (consent asked first; a refused send is stored too) and sent through a gateway
 * (Twilio's form API or a plain JSON one) as a durable job off the event loop, retried with
 * backoff, its outcome written back. What the gateway sends here (delivery receipts, messages,
 * STOP and START) is sms_in.c's.
 *
 * CLI:  rapport sms send --to NUMBER --body TEXT [--related ENTITY:ID]
 *                        [--purpose service|marketing] [--now]
 * Lua:  crm.collaborative.send_sms{to =, body =, related = {"contact", 7} | "contact:7",
 *                                  purpose =} -> {id =, status =}
 * Job:  collaborative.sms_send {interaction: id}, key "sms:<id>" (one pending job per message)
 *
 * Settings (rapport config set plugin.collaborative.<key> JSON):
 *   sms     {"url", "shape": "twilio"|"json", "user", "password" (a secret: never logged nor
 *            put in an error), "from", "secret" (signs what the gateway sends here),
 *            "id_field" (JSON shape: where the gateway's answer holds the message id, "id" or
 *            a dotted path "message.id"), "status_callback" (Twilio: where receipts go),
 *            "create_lead" (an unknown number that writes in becomes a lead),
 *            "timeout_ms" (15000), "retry_base_ms" (30000: 30 s, 1 min, 2 min, 4 min)}
 *   ("secret" and "create_lead" are read by sms_in.c, when the gateway writes here)
 *
 * Consent: STOP (and STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT) opts the number out of every
 * SMS, service included, as carriers require; START or UNSTOP opts it back in. Marketing is
 * sent only to a number a contact holds. A refused send is stored (status refused, the reason
 * in error) and reported to the caller as an error.
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <sodium.h>

#include "channels.h"

/** Sends of one message before it is given up. */
#define SMS_MAX_ATTEMPTS 5
/** The most of a gateway's answer kept (its id and its error message are near the start). */
#define RESP_MAX 65536

enum { SHAPE_TWILIO, SHAPE_JSON };

/* ---- small helpers ------------------------------------------------------------------------ */

/* Whether @p s is empty or all blanks. */
static bool blank(const char *s)
{
    for (; s && *s; s++)
        if (!isspace((unsigned char)*s))
            return false;
    return true;
}

/* The scheme, host and port of @p url, without any user or password, into @p out: what an
 * error may say about a gateway. */
static const char *url_host(const char *url, char *out, size_t cap)
{
    const char *p = strstr(url, "://");
    const char *start = p ? p + 3 : url;
    size_t n = strcspn(start, "/?#");
    const char *at = memchr(start, '@', n);
    if (at) {
        n -= (size_t)(at + 1 - start);
        start = at + 1;
    }
    snprintf(out, cap, "%.*s%.*s", p ? (int)(p + 3 - url) : 0, url, (int)n, start);
    return out;
}

/* Replaces every copy of @p secret in @p text (of @p cap bytes) by "[secret]", so a gateway
 * that echoes a credential back cannot put it into a stored error or a log line. */
static void redact(char *text, size_t cap, const char *secret)
{
    static const char mark[] = "[secret]";
    size_t n = secret ? strlen(secret) : 0;
    if (n < 4 || cap == 0 || !strstr(text, secret))
        return; /* shorter ones would blank ordinary words */
    char *out = malloc(cap);
    if (!out) {
        snprintf(text, cap, "(the message held a secret)");
        return;
    }
    size_t o = 0;
    for (const char *p = text; *p && o + 1 < cap;) {
        if (strncmp(p, secret, n) == 0) {
            size_t m = sizeof mark - 1 < cap - 1 - o ? sizeof mark - 1 : cap - 1 - o;
            memcpy(out + o, mark, m);
            o += m;
            p += n;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    memcpy(text, out, o + 1);
    free(out);
}

/* ---- settings ----------------------------------------------------------------------------- */

/** The SMS gateway as the settings describe it. The strings are borrowed from @p conf. */
typedef struct sms_conf {
    json_t *conf;          /* plugin.collaborative.sms (owned) */
    const char *url, *user, *password, *from, *id_field, *status_callback;
    int shape;
    long timeout_ms;
    int64_t retry_base_ms;
} sms_conf_t;

static void sms_conf_free(sms_conf_t *c)
{
    json_decref(c->conf);
    c->conf = NULL;
}

/* Reads plugin.collaborative.sms; -1 with what is missing or wrong in @p err. */
static int sms_conf_read(rapport_host *h, sms_conf_t *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->conf = cm_config(h, "sms");
    if (!json_is_object(c->conf))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "SMS is not set up: set "
                       "plugin.collaborative.sms to {\"url\": …, \"from\": …, \"user\": …, "
                       "\"password\": …}");
    c->url = str_of(c->conf, "url");
    c->user = str_of(c->conf, "user");
    c->password = str_of(c->conf, "password");
    c->from = str_of(c->conf, "from");
    c->id_field = str_of(c->conf, "id_field");
    c->status_callback = str_of(c->conf, "status_callback");
    const char *shape = str_of(c->conf, "shape");
    json_t *t = json_object_get(c->conf, "timeout_ms");
    json_t *b = json_object_get(c->conf, "retry_base_ms");
    c->timeout_ms = json_is_integer(t) ? (long)json_integer_value(t) : 15000;
    c->retry_base_ms = json_is_integer(b) ? json_integer_value(b) : 30000;
    if (!c->id_field || !*c->id_field)
        c->id_field = "id";
    if (!c->url || (strncmp(c->url, "https://", 8) != 0 && strncmp(c->url, "http://", 7) != 0))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "plugin.collaborative.sms.url: the "
                       "gateway's http:// or https:// URL is not set");
    if (!c->from || blank(c->from))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "plugin.collaborative.sms.from: the "
                       "number (or sender name) messages come from is not set");
    if (!shape || strcmp(shape, "twilio") == 0)
        c->shape = SHAPE_TWILIO;
    else if (strcmp(shape, "json") == 0)
        c->shape = SHAPE_JSON;
    else
        return cm_fail(err, errlen, RAPPORT_EINVAL, "plugin.collaborative.sms.shape: \"%.40s\" "
                       "is neither \"twilio\" nor \"json\"", shape);
    if (c->timeout_ms < 100 || c->timeout_ms > 300000)
        return cm_fail(err, errlen, RAPPORT_EINVAL, "plugin.collaborative.sms.timeout_ms: 100 "
                       "to 300000");
    if (c->retry_base_ms < 10 || c->retry_base_ms > 3600000)
        return cm_fail(err, errlen, RAPPORT_EINVAL, "plugin.collaborative.sms.retry_base_ms: "
                       "10 to 3600000");
    return 0;
}

/* ---- SMS out: queueing ---------------------------------------------------------------------- */

/* Bytes of the UTF-8 text @p s counted as characters. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* Whether @p number's own last word was STOP (1), START (0) or nothing (-1), from the SMS it
 * sent in: the consent of a number no contact holds. */
static int number_opted_out(rapport_host *h, const char *number, char *err, size_t errlen)
{
    json_t *rows = cm_find(h, "interaction",
                           json_pack("{s:{s:s,s:s,s:s,s:{s:[s,s]}},s:s,s:i}", "where", "channel",
                                     "sms", "direction", "in", "from_addr", number, "subject",
                                     "in", "SMS opt-out", "SMS opt-in", "order", "-id", "limit",
                                     1),
                           err, errlen);
    if (!rows)
        return -2;
    const char *last = str_of(json_array_get(rows, 0), "subject");
    int r = !last ? -1 : strcmp(last, "SMS opt-out") == 0;
    json_decref(rows);
    return r;
}

/* Reads a "related" argument ("contact:7" or ["contact", 7]) into links (owned, may be
 * empty); *contact gets its id when it names a contact. NULL with @p err. */
static json_t *related_links(json_t *rel, int64_t *contact, char *err, size_t errlen)
{
    char entity[64];
    int64_t id = 0;
    *contact = 0;
    if (!rel || json_is_null(rel))
        return json_array();
    if (json_is_string(rel)) {
        if (cm_parse_target(json_string_value(rel), entity, sizeof entity, &id))
            id = 0;
    } else if (json_is_array(rel) && json_array_size(rel) == 2 &&
               json_is_string(json_array_get(rel, 0))) {
        snprintf(entity, sizeof entity, "%s", json_string_value(json_array_get(rel, 0)));
        json_t *jid = json_array_get(rel, 1);
        id = json_is_integer(jid) ? json_integer_value(jid) : 0;
        if (json_is_string(jid)) {
            char *end;
            long long v = strtoll(json_string_value(jid), &end, 10);
            id = *end ? 0 : v;
        }
    }
    if (id <= 0)
        return cm_fail(err, errlen, RAPPORT_EINVAL, "related: \"entity:id\" or {entity, id} "
                       "expected"), NULL;
    if (strcmp(entity, "contact") == 0)
        *contact = id;
    return json_pack("[[s,I]]", entity, (json_int_t)id);
}

/* Whether the contacts in @p who (and a number no contact holds) may be sent @p purpose: 1
 * yes, 0 no with the reason in @p why, < 0 on a failed read (@p why holds it). */
static int sms_allowed(rapport_host *h, json_t *who, const char *number, const char *purpose,
                       char *why, size_t cap)
{
    size_t i;
    json_t *c;
    json_array_foreach(who, i, c) {
        int ok = cm_consent(h, c, "sms", purpose, why, cap);
        if (ok <= 0)
            return ok;
    }
    if (json_array_size(who))
        return 1;
    if (strcmp(purpose, "marketing") == 0) {
        snprintf(why, cap, "no contact has the number %s: marketing is sent only to a known "
                 "contact's number", number);
        return 0;
    }
    int out = number_opted_out(h, number, why, cap);
    if (out < -1)
        return -1;
    if (out == 1) {
        snprintf(why, cap, "%s opted out of SMS (it sent STOP)", number);
        return 0;
    }
    return 1;
}

/** What a send asks for (all borrowed). */
typedef struct sms_ask {
    const char *to, *body, *purpose;
    json_t *related; /**< "entity:id", [entity, id], or NULL. */
} sms_ask_t;

/* Checks @p a's text and purpose; the number normalised into @p number. */
static int sms_ask_check(rapport_host *h, const sms_ask_t *a, char *number, size_t cap,
                         char *err, size_t errlen)
{
    char why[160], cc[8];
    if (!a->to || !*a->to)
        return cm_fail(err, errlen, RAPPORT_EINVAL, "to: the number to send to is required");
    cm_default_cc(h, cc);
    if (cm_norm_number(a->to, cc, number, cap, why, sizeof why))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "to: %s", why);
    if (!a->body || blank(a->body))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "body: the text to send is required");
    json_t *t = json_string(a->body);
    json_decref(t);
    if (!t)
        return cm_fail(err, errlen, RAPPORT_EINVAL, "body: not UTF-8 text");
    if (utf8_chars(a->body) > CM_SMS_MAX_BODY)
        return cm_fail(err, errlen, RAPPORT_EINVAL, "body: at most %d characters (this has %zu)",
                       CM_SMS_MAX_BODY, utf8_chars(a->body));
    if (strcmp(a->purpose, "service") != 0 && strcmp(a->purpose, "marketing") != 0)
        return cm_fail(err, errlen, RAPPORT_EINVAL, "purpose: \"service\" or \"marketing\", not "
                       "\"%.40s\"", a->purpose);
    return 0;
}

static int sms_attempt(rapport_host *h, int64_t id, char *err, size_t errlen);

/*
 * Stores the SMS @p a asks for as an interaction and, unless consent refuses it, queues its
 * send as job collaborative.sms_send (or, with @p now, sends it at once). *id gets the
 * interaction. A refused send is stored too (status refused) and returns RAPPORT_EVETO with
 * the reason.
 */
static int sms_queue(rapport_host *h, const sms_ask_t *a, bool now, int64_t *id, char *err,
                     size_t errlen)
{
    sms_conf_t conf;
    char number[48], why[300];
    int64_t rel_contact;
    *id = 0;
    /* Refused before anything is stored: a sync send that cannot send must not queue either. */
    if (now && cm_refuse_offline(h, "sending an SMS now", err, errlen))
        return RAPPORT_EPERM;
    int rc = sms_conf_read(h, &conf, err, errlen);
    if (!rc)
        rc = sms_ask_check(h, a, number, sizeof number, err, errlen);
    json_t *links = rc ? NULL : related_links(a->related, &rel_contact, err, errlen);
    json_t *who = links ? cm_contacts_by_number(h, number, err, errlen) : NULL;
    if (!links || !who) {
        json_decref(links);
        sms_conf_free(&conf);
        return rc ? rc : RAPPORT_EINVAL;
    }
    /* The related contact is asked too: a message about them must not reach them unasked. */
    json_t *rel = rel_contact ? cm_json(cm_api->get(h, "contact", rel_contact)) : NULL;
    if (rel)
        json_array_append_new(who, rel);
    int ok = sms_allowed(h, who, number, a->purpose, why, sizeof why);
    int64_t contact = rel_contact ? rel_contact : id_of(json_array_get(who, 0));
    json_t *f = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "channel", "sms", "direction", "out",
                          "status", ok == 1 ? "queued" : "refused", "to_addr", number,
                          "from_addr", conf.from, "body", a->body, "purpose", a->purpose);
    if (f && contact > 0)
        json_object_set_new(f, "contact", json_integer(contact));
    if (!rel_contact)
        cm_number_shared(f, who);
    if (f && ok == 0)
        json_object_set_new(f, "error", json_string(why));
    json_decref(who);
    sms_conf_free(&conf);
    if (ok < 0) {
        json_decref(f);
        json_decref(links);
        return cm_fail(err, errlen, RAPPORT_EIO, "cannot read consent: %s", why);
    }
    bool dup;
    if ((rc = cm_api->begin(h)))
        return json_decref(f), json_decref(links), cm_host_fail(h, rc, err, errlen);
    rc = cm_interaction_add(h, f, links, id, &dup, err, errlen);
    if (!rc && ok == 1 && !now) {
        char key[40], payload[64];
        snprintf(key, sizeof key, "sms:%" PRId64, *id);
        snprintf(payload, sizeof payload, "{\"interaction\": %" PRId64 "}", *id);
        if ((rc = cm_api->schedule(h, "collaborative.sms_send", payload, 0, key)))
            rc = cm_host_fail(h, rc, err, errlen);
    }
    if (rc) {
        cm_api->rollback(h);
        return rc;
    }
    if ((rc = cm_api->commit(h)))
        return cm_host_fail(h, rc, err, errlen);
    if (ok == 0)
        return cm_fail(err, errlen, RAPPORT_EVETO, "SMS to %s refused: %s (stored as "
                       "interaction %" PRId64 ")", number, why, *id);
    return now ? sms_attempt(h, *id, err, errlen) : 0;
}

/* ---- SMS out: the send, off the loop ------------------------------------------------------- */

/** One send in flight: what the work needs (copied: the work may not call the host) and what
 *  it found. */
typedef struct sms_send {
    int64_t id;
    int attempt, shape;
    char *url, *host, *user, *password, *payload, *id_field;
    long timeout_ms;
    int64_t retry_base_ms;
    /* Written by the work. */
    CURLcode cc;
    long http;
    int64_t retry_after_s;
    char *resp;
    size_t resp_len;
    char curl_err[CURL_ERROR_SIZE];
} sms_send_t;

static void sms_send_free(sms_send_t *s)
{
    if (!s)
        return;
    if (s->password) {
        sodium_memzero(s->password, strlen(s->password));
        free(s->password);
    }
    free(s->url);
    free(s->host);
    free(s->user);
    free(s->payload);
    free(s->id_field);
    free(s->resp);
    free(s);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Appends @p s percent-encoded (as application/x-www-form-urlencoded) to @p out. */
static void form_add(char *out, size_t *len, const char *name, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *o = out + *len;
    if (*len)
        *o++ = '&';
    o += sprintf(o, "%s=", name);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    *len = (size_t)(o - out);
}

/* The request body for interaction @p i on gateway @p c (malloc'd), or NULL. */
static char *sms_payload(const sms_conf_t *c, json_t *i)
{
    const char *to = str_of(i, "to_addr"), *text = str_of(i, "body");
    if (!to || !text)
        return NULL;
    if (c->shape == SHAPE_JSON) {
        char ref[24];
        snprintf(ref, sizeof ref, "%" PRId64, id_of(i));
        return cm_dump_free(json_pack("{s:s,s:s,s:s,s:s}", "to", to, "from", c->from, "text", text,
                                      "reference", ref));
    }
    const char *cb = c->status_callback;
    size_t need = 3 * (strlen(to) + strlen(c->from) + strlen(text) + (cb ? strlen(cb) : 0)) + 64;
    char *out = malloc(need);
    size_t len = 0;
    if (!out)
        return NULL;
    out[0] = '\0';
    form_add(out, &len, "To", to);
    form_add(out, &len, "From", c->from);
    form_add(out, &len, "Body", text);
    if (cb && *cb)
        form_add(out, &len, "StatusCallback", cb);
    return out;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    sms_send_t *s = ud;
    size_t take = size * n;
    if (s->resp_len + take > RESP_MAX)
        take = RESP_MAX - s->resp_len;
    if (take) {
        char *r = realloc(s->resp, s->resp_len + take + 1);
        if (!r)
            return 0; /* curl stops with CURLE_WRITE_ERROR: a temporary failure */
        memcpy(r + s->resp_len, data, take);
        s->resp = r;
        s->resp_len += take;
        r[s->resp_len] = '\0';
    }
    return size * n;
}

/* The POST itself, on a worker thread: no host call here. */
static void sms_work(void *ud)
{
    sms_send_t *s = ud;
    struct curl_slist *hdrs = NULL, *x;
    char *bearer = NULL;
    CURL *c = curl_easy_init();
    s->cc = CURLE_FAILED_INIT;
    if (!c)
        return;
    x = curl_slist_append(hdrs, s->shape == SHAPE_JSON
                                    ? "Content-Type: application/json"
                                    : "Content-Type: application/x-www-form-urlencoded");
    hdrs = x ? x : hdrs;
    if (x && (x = curl_slist_append(hdrs, "Accept: application/json")))
        hdrs = x;
    if (x && (x = curl_slist_append(hdrs, "Expect:")))
        hdrs = x;
    if (x && s->shape == SHAPE_JSON && s->password && *s->password) {
        size_t n = strlen(s->password) + 32;
        if ((bearer = malloc(n))) {
            snprintf(bearer, n, "Authorization: Bearer %s", s->password);
            if ((x = curl_slist_append(hdrs, bearer)))
                hdrs = x;
        }
    }
    if (!x || (s->shape == SHAPE_JSON && s->password && *s->password && !bearer))
        goto out;
    curl_easy_setopt(c, CURLOPT_URL, s->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, s->payload);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(s->payload));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, s->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, s->timeout_ms < 5000 ? s->timeout_ms : 5000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, s->curl_err);
    if (s->shape == SHAPE_TWILIO && s->user && *s->user) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, s->user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, s->password ? s->password : "");
    }
    s->cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &s->http);
    curl_off_t ra = 0;
    if (curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
        s->retry_after_s = (int64_t)ra;
out:
    if (bearer) {
        sodium_memzero(bearer, strlen(bearer));
        free(bearer);
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
}

/* The value at dotted @p path ("message.id", "messages.0.id") of @p j, as text into @p out;
 * false when there is none or it is not a short printable string or a number. */
static bool value_at(json_t *j, const char *path, char *out, size_t cap)
{
    char seg[64];
    while (j && *path) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof seg)
            return false;
        memcpy(seg, path, n);
        seg[n] = '\0';
        path += n + (path[n] == '.');
        if (json_is_array(j) && n && strspn(seg, "0123456789") == n)
            j = json_array_get(j, (size_t)strtoul(seg, NULL, 10));
        else
            j = json_object_get(j, seg);
    }
    if (json_is_integer(j))
        snprintf(out, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
    else if (json_is_string(j) && json_string_length(j) > 0 && json_string_length(j) < cap)
        snprintf(out, cap, "%s", json_string_value(j));
    else
        return false;
    for (const char *p = out; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return false;
    return true;
}

/* What the gateway said was wrong, from its answer, into @p out. */
static void gateway_message(const sms_send_t *s, char *out, size_t cap)
{
    json_t *j = s->resp ? json_loadb(s->resp, s->resp_len, 0, NULL) : NULL;
    const char *m = str_of(j, "message") ? str_of(j, "message")
                    : str_of(j, "error")  ? str_of(j, "error")
                    : str_of(json_object_get(j, "error"), "message")
                        ? str_of(json_object_get(j, "error"), "message")
                        : str_of(j, "detail");
    if (m)
        snprintf(out, cap, "%.200s", m);
    else
        snprintf(out, cap, "%.120s", s->resp ? s->resp : "");
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < ' ' || *p == 0x7f)
            *p = ' ';
    json_decref(j);
}

enum { SENT, TEMPORARY, PERMANENT };

/* Judges the answer of send @p s: SENT (*pid the gateway's id, or "" when it gave none),
 * TEMPORARY (worth another try) or PERMANENT, with what happened in @p why. */
static int sms_outcome(const sms_send_t *s, char *pid, size_t pcap, char *why, size_t cap)
{
    char msg[240];
    pid[0] = '\0';
    if (s->cc != CURLE_OK) {
        snprintf(why, cap, "could not reach %s: %s", s->host,
                 s->curl_err[0] ? s->curl_err : curl_easy_strerror(s->cc));
        return s->cc == CURLE_URL_MALFORMAT || s->cc == CURLE_UNSUPPORTED_PROTOCOL ? PERMANENT
                                                                                 : TEMPORARY;
    }
    if (s->http >= 200 && s->http < 300) {
        json_t *j = s->resp ? json_loadb(s->resp, s->resp_len, 0, NULL) : NULL;
        const char *path = s->shape == SHAPE_TWILIO ? "sid" : s->id_field;
        if (!value_at(j, path, pid, pcap))
            snprintf(why, cap, "%s took it (HTTP %ld) but its answer has no message id at "
                     "\"%s\": delivery receipts cannot be matched", s->host, s->http, path);
        json_decref(j);
        return SENT;
    }
    gateway_message(s, msg, sizeof msg);
    snprintf(why, cap, "%s answered HTTP %ld%s%s", s->host, s->http, msg[0] ? ": " : "", msg);
    return s->http == 429 || s->http == 408 || s->http >= 500 ? TEMPORARY : PERMANENT;
}

/* Cancels the pending job of message @p id (its watchdog or retry), if any. */
static void cancel_job(rapport_host *h, int64_t id)
{
    char key[40];
    snprintf(key, sizeof key, "sms:%" PRId64, id);
    cm_api->cancel(h, key); /* RAPPORT_ENOTFOUND when there is none: nothing to do */
}

/* Schedules a send of message @p id in @p delay_ms. */
static int schedule_send(rapport_host *h, int64_t id, int64_t delay_ms, char *err, size_t errlen)
{
    char key[40], payload[64];
    snprintf(key, sizeof key, "sms:%" PRId64, id);
    snprintf(payload, sizeof payload, "{\"interaction\": %" PRId64 "}", id);
    int rc = cm_api->schedule(h, "collaborative.sms_send", payload, delay_ms, key);
    return rc ? cm_host_fail(h, rc, err, errlen) : 0;
}

/* Writes the outcome of send @p s onto its interaction (in the caller's transaction). */
static int sms_record(rapport_host *h, sms_send_t *s, char *err, size_t errlen)
{
    char pid[200], why[400], now[RAPPORT_TIME_LEN];
    int outcome = sms_outcome(s, pid, sizeof pid, why, sizeof why);
    redact(why, sizeof why, s->password);
    json_t *i = cm_json(cm_api->get(h, "interaction", s->id));
    const char *st = str_of(i, "status");
    bool open = st && (strcmp(st, "sending") == 0 || strcmp(st, "queued") == 0);
    json_decref(i);
    if (!open)
        return 0; /* deleted, or finished by another attempt meanwhile */
    cm_now_text(h, now);
    json_t *patch;
    int rc = 0;
    if (outcome == SENT) {
        patch = json_pack("{s:s,s:s,s:o,s:o}", "status", "sent", "sent_at", now, "error",
                          pid[0] ? json_null() : json_string(why), "external_id",
                          pid[0] ? json_string(pid) : json_null());
        if (patch && pid[0]) {
            char key[sizeof pid + 8];
            snprintf(key, sizeof key, "sms:%s", pid);
            json_object_set_new(patch, "ext_key", json_string(key));
        }
        if (patch && !pid[0])
            cm_api->log(h, RAPPORT_LOG_WARN, "sms %" PRId64 ": %s", s->id, why);
        cancel_job(h, s->id);
    } else if (outcome == TEMPORARY && s->attempt < SMS_MAX_ATTEMPTS) {
        int64_t delay = s->retry_base_ms;
        for (int k = 1; k < s->attempt && delay < 3600000; k++)
            delay *= 2;
        if (s->retry_after_s > 0 && s->retry_after_s * 1000 > delay)
            delay = s->retry_after_s * 1000; /* the gateway asked for a pause (429) */
        if (delay > 3600000)
            delay = 3600000;
        char msg[sizeof why + 80];
        snprintf(msg, sizeof msg, "attempt %d of %d: %s; next in %" PRId64 " s", s->attempt,
                 SMS_MAX_ATTEMPTS, why, (delay + 999) / 1000);
        patch = json_pack("{s:s,s:s}", "status", "queued", "error", msg);
        cm_api->log(h, RAPPORT_LOG_WARN, "sms %" PRId64 " %s", s->id, msg);
        rc = schedule_send(h, s->id, delay, err, errlen);
    } else {
        char msg[sizeof why + 40];
        snprintf(msg, sizeof msg, "%s%s", outcome == TEMPORARY ? "gave up after 5 attempts: "
                                                               : "", why);
        patch = json_pack("{s:s,s:s}", "status", "failed", "error", msg);
        cm_api->log(h, RAPPORT_LOG_WARN, "sms %" PRId64 " failed: %s", s->id, msg);
        cancel_job(h, s->id);
    }
    if (!patch)
        return cm_fail(err, errlen, RAPPORT_ENOMEM, "out of memory");
    if (rc) {
        json_decref(patch);
        return rc;
    }
    return cm_patch_record(h, "interaction", s->id, patch, err, errlen);
}

/* Back on the loop: the outcome is stored, in one transaction. */
static void sms_done(rapport_host *h, const rapport_api *api, void *ud)
{
    sms_send_t *s = ud;
    char err[512];
    int rc = api->begin(h);
    if (rc)
        cm_host_fail(h, rc, err, sizeof err);
    else if ((rc = sms_record(h, s, err, sizeof err)))
        api->rollback(h);
    else if ((rc = api->commit(h)))
        cm_host_fail(h, rc, err, sizeof err);
    /* The watchdog job left pending sends it again: at least once, never lost. */
    if (rc)
        api->log(h, RAPPORT_LOG_ERROR, "sms %" PRId64 ": the outcome of the send was not "
                 "stored: %s", s->id, err);
    sms_send_free(s);
}

/* Marks interaction @p id failed for @p why (a setting missing, the attempts spent). */
static int sms_give_up(rapport_host *h, int64_t id, const char *why, char *err, size_t errlen)
{
    cancel_job(h, id);
    cm_api->log(h, RAPPORT_LOG_WARN, "sms %" PRId64 " failed: %s", id, why);
    return cm_patch_record(h, "interaction", id,
                           json_pack("{s:s,s:s}", "status", "failed", "error", why), err, errlen);
}

/* Builds the send of interaction @p i (status already checked) from @p c. */
static sms_send_t *sms_send_new(const sms_conf_t *c, json_t *i, int attempt)
{
    sms_send_t *s = calloc(1, sizeof *s);
    char host[256];
    if (!s)
        return NULL;
    s->id = id_of(i);
    s->attempt = attempt;
    s->shape = c->shape;
    s->timeout_ms = c->timeout_ms;
    s->retry_base_ms = c->retry_base_ms;
    s->url = strdup(c->url);
    s->host = strdup(url_host(c->url, host, sizeof host));
    s->user = dup_or_null(c->user);
    s->password = dup_or_null(c->password);
    s->id_field = strdup(c->id_field);
    s->payload = sms_payload(c, i);
    if (!s->url || !s->host || !s->id_field || !s->payload || (c->user && !s->user) ||
        (c->password && !s->password)) {
        sms_send_free(s);
        return NULL;
    }
    return s;
}

/*
 * One attempt at sending interaction @p id: marks it sending, leaves a watchdog job (a server
 * that dies mid-send sends it again when it restarts: at least once), and hands the POST to a
 * worker; its outcome is written when it comes back. A message already sent, or refused, is
 * left alone, so a repeated job does nothing.
 */
static int sms_attempt(rapport_host *h, int64_t id, char *err, size_t errlen)
{
    int off = cm_refuse_offline(h, "sending an SMS", err, errlen);
    if (off)
        return off;
    json_t *i = cm_json(cm_api->get(h, "interaction", id));
    const char *st = str_of(i, "status");
    if (!i || strcmp(str_of(i, "channel") ?: "", "sms") != 0 ||
        strcmp(str_of(i, "direction") ?: "", "out") != 0) {
        json_decref(i);
        return cm_fail(err, errlen, RAPPORT_ENOTFOUND, "no outgoing SMS with id %" PRId64, id);
    }
    if (!st || (strcmp(st, "queued") != 0 && strcmp(st, "sending") != 0)) {
        json_decref(i);
        return 0;
    }
    int attempt = (int)json_integer_value(json_object_get(i, "attempts")) + 1;
    sms_conf_t conf = {0};
    char why[400];
    int rc;
    if (attempt > SMS_MAX_ATTEMPTS) {
        snprintf(why, sizeof why, "gave up after %d attempts (the last was cut short)",
                 SMS_MAX_ATTEMPTS);
        rc = sms_give_up(h, id, why, err, errlen);
    } else if (sms_conf_read(h, &conf, why, sizeof why)) {
        rc = sms_give_up(h, id, why, err, errlen);
    } else {
        sms_send_t *s = sms_send_new(&conf, i, attempt);
        rc = s ? 0 : cm_fail(err, errlen, RAPPORT_ENOMEM, "sms %" PRId64 ": out of memory", id);
        if (!rc)
            rc = cm_patch_record(h, "interaction", id,
                                 json_pack("{s:s,s:i}", "status", "sending", "attempts", attempt),
                                 err, errlen);
        if (!rc)
            rc = schedule_send(h, id, conf.timeout_ms + 60000, err, errlen);
        if (!rc && (rc = cm_api->offload(h, sms_work, sms_done, s)))
            rc = cm_host_fail(h, rc, err, errlen);
        else if (!rc)
            s = NULL; /* sms_done frees it */
        sms_send_free(s);
    }
    sms_conf_free(&conf);
    json_decref(i);
    return rc;
}

/* The job collaborative.sms_send {interaction: id}. */
static int job_sms_send(rapport_host *h, const rapport_api *api, const rapport_job *job,
                        void *ud, char *err, size_t errlen)
{
    (void)ud;
    (void)api;
    json_t *p = json_loads(job->payload, 0, NULL);
    json_t *jid = json_object_get(p, "interaction");
    int64_t id = json_is_integer(jid) ? json_integer_value(jid) : 0;
    json_decref(p);
    if (id <= 0) {
        cm_api->log(h, RAPPORT_LOG_ERROR, "job %" PRId64 ": collaborative.sms_send needs "
                    "{\"interaction\": id}; dropped", job->id);
        return 0;
    }
    int rc = sms_attempt(h, id, err, errlen);
    if (rc == RAPPORT_ENOTFOUND) {
        cm_api->log(h, RAPPORT_LOG_WARN, "%s; its job is dropped", err);
        return 0;
    }
    return rc;
}

/* ---- Lua and the command line ------------------------------------------------------------- */

/* What interaction @p id is now, as {id, status[, error]} (owned). */
static json_t *sms_state(rapport_host *h, int64_t id)
{
    json_t *i = cm_json(cm_api->get(h, "interaction", id));
    json_t *out = json_pack("{s:I,s:s}", "id", (json_int_t)id, "status",
                            str_of(i, "status") ? str_of(i, "status") : "unknown");
    if (out && str_of(i, "error"))
        json_object_set_new(out, "error", json_string(str_of(i, "error")));
    if (out && str_of(i, "external_id"))
        json_object_set_new(out, "external_id", json_string(str_of(i, "external_id")));
    json_decref(i);
    return out;
}

/* crm.collaborative.send_sms{to =, body =, related =, purpose =} -> {id =, status =} */
static int lua_send_sms(rapport_host *h, const rapport_api *api, const char *args,
                        char **result, void *ud, char *err, size_t errlen)
{
    (void)api;
    (void)ud;
    json_t *a = json_loads(args, 0, NULL);
    json_t *o = json_array_get(a, 0);
    int rc = 0;
    int64_t id = 0;
    if (!json_is_object(o)) {
        rc = cm_fail(err, errlen, RAPPORT_EINVAL, "send_sms{to = NUMBER, body = TEXT [, related "
                     "= {entity, id}] [, purpose = \"service\"|\"marketing\"]}");
    } else {
        const char *purpose = str_of(o, "purpose");
        sms_ask_t ask = {.to = str_of(o, "to"), .body = str_of(o, "body"),
                         .purpose = purpose ? purpose : "service",
                         .related = json_object_get(o, "related")};
        rc = sms_queue(h, &ask, false, &id, err, errlen);
    }
    json_decref(a);
    if (!rc)
        *result = cm_dump(sms_state(h, id));
    return rc;
}

static const char sms_usage[] = "usage: rapport sms send --to NUMBER --body TEXT "
                                "[--related ENTITY:ID] [--purpose service|marketing] [--now]\n";

/* rapport sms send …: exit 0 when queued (or sent, with --now), 1 when refused or failed. */
static int cmd_sms(rapport_host *h, const rapport_api *api, int argc, char **argv, void *ud)
{
    (void)api;
    (void)ud;
    bool bad = false;
    const char *to = cm_take_opt(&argc, argv, "--to", &bad);
    const char *text = cm_take_opt(&argc, argv, "--body", &bad);
    const char *related = cm_take_opt(&argc, argv, "--related", &bad);
    const char *purpose = cm_take_opt(&argc, argv, "--purpose", &bad);
    bool now = cm_take_flag(&argc, argv, "--now");
    if (bad || argc != 2 || strcmp(argv[1], "send") != 0 || !to || !text) {
        fputs(sms_usage, stderr);
        return 2;
    }
    json_t *rel = related ? json_string(related) : NULL;
    sms_ask_t ask = {.to = to, .body = text, .purpose = purpose ? purpose : "service",
                     .related = rel};
    char err[600];
    int64_t id = 0;
    int rc = related && !rel ? cm_fail(err, sizeof err, RAPPORT_EINVAL, "related: not UTF-8")
                             : sms_queue(h, &ask, now, &id, err, sizeof err);
    json_decref(rel);
    if (rc) {
        fprintf(stderr, "rapport: sms: %s\n", err);
        return 1;
    }
    json_t *s = sms_state(h, id);
    const char *st = str_of(s, "status"), *why = str_of(s, "error");
    int code = 0;
    if (!now) {
        printf("sms %" PRId64 " queued: `rapport serve` sends it\n", id);
    } else if (st && strcmp(st, "sent") == 0) {
        printf("sms %" PRId64 " sent (gateway id %s)\n", id,
               str_of(s, "external_id") ? str_of(s, "external_id") : "none");
    } else {
        fprintf(stderr, "rapport: sms: sms %" PRId64 " is %s: %s\n", id, st ? st : "unknown",
                why ? why : "no reason given");
        code = 1;
    }
    json_decref(s);
    return code;
}

int cm_sms_init(rapport_host *h, char *err, size_t errlen)
{
    const rapport_api *api = cm_api;
    if (api->job(h, "collaborative.sms_send", job_sms_send, NULL) ||
        api->lua_function(h, "send_sms", lua_send_sms, NULL) ||
        api->command(h, "sms", "sms send --to NUMBER --body TEXT [--related ENTITY:ID] "
                     "[--purpose service|marketing] [--now]: an SMS through the gateway",
                     cmd_sms, NULL))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "%s", api->last_error(h));
    return 0;
}
