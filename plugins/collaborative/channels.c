/*
 * channels.c — SMS, phone and social conversations: SMS sent through a gateway (Twilio's form
 * API or a plain JSON one) as a durable job off the event loop, delivery receipts, inbound SMS
 * with STOP/START, call events from a phone system, and posts and reviews from social
 * platforms. Each becomes an interaction on the timeline of the contact its number or handle
 * names.
 *
 * CLI:  rapport sms send --to NUMBER --body TEXT [--related ENTITY:ID]
 *                        [--purpose service|marketing] [--now]
 * Lua:  crm.collaborative.send_sms{to =, body =, related = {"contact", 7} | "contact:7",
 *                                  purpose =} -> {id =, status =}
 * Job:  collaborative.sms_send {interaction: id}, key "sms:<id>" (one pending job per message)
 * HTTP, public (no token; each request signed as the engine signs its own webhooks: the header
 *       X-Rapport-Timestamp holds Unix seconds, X-Rapport-Signature "sha256=<hex>", the
 *       HMAC-SHA256 of "<timestamp>.<raw body>" keyed with the channel's secret; a timestamp
 *       more than 5 minutes from now is refused as a replay):
 *       POST sms/status    Twilio form (MessageSid, MessageStatus) or JSON {id, status}
 *       POST sms/inbound   Twilio form (From, To, Body, MessageSid) or JSON {from, to, text, id}
 *       POST phone/call    JSON {id, from, to, direction, duration, recording, status}
 *       POST social/post   JSON {id, platform, handle, email, text, link, rating, kind}
 *
 * Settings (rapport config set plugin.collaborative.<key> JSON):
 *   sms     {"url", "shape": "twilio"|"json", "user", "password" (a secret: never logged nor
 *            put in an error), "from", "secret" (signs what the gateway sends here),
 *            "id_field" (JSON shape: where the gateway's answer holds the message id, "id" or
 *            a dotted path "message.id"), "status_callback" (Twilio: where receipts go),
 *            "create_lead" (an unknown number that writes in becomes a lead),
 *            "timeout_ms" (15000), "retry_base_ms" (30000: 30 s, 1 min, 2 min, 4 min)}
 *   phone   {"secret"}      social  {"secret"}
 * A route whose channel has no secret refuses every request (403): nothing unsigned is taken.
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
#include <strings.h>

#include <curl/curl.h>
#include <sodium.h>

#include "collaborative.h"

/** The longest SMS body taken: Twilio's limit for a concatenated message. */
#define SMS_MAX_BODY 1600
/** The longest post or review taken. */
#define SOCIAL_MAX_TEXT 20000
/** Sends of one message before it is given up. */
#define SMS_MAX_ATTEMPTS 5
/** How far a signature's timestamp may be from now (seconds). */
#define SIG_WINDOW_S 300
/** The most of a gateway's answer kept (its id and its error message are near the start). */
#define RESP_MAX 65536
/** Contacts looked at for one number. */
#define MAX_MATCHES 20

enum { SHAPE_TWILIO, SHAPE_JSON };

/* ---- small helpers ------------------------------------------------------------------------ */

static const char *str_of(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static int64_t id_of(json_t *o)
{
    return json_integer_value(json_object_get(o, "id"));
}

/* Writes JSON @p j (stolen) as text into a malloc'd string; NULL when out of memory. */
static char *dump_free(json_t *j)
{
    char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return t;
}

/* Updates @p entity @p id with @p patch (stolen). */
static int patch_record(rapport_host *h, const char *entity, int64_t id, json_t *patch,
                        char *err, size_t errlen)
{
    char *t = dump_free(patch);
    int rc = t ? cm_api->update(h, entity, id, t, 0) : RAPPORT_ENOMEM;
    free(t);
    if (rc)
        return cm_fail(err, errlen, rc, "%s %" PRId64 ": %s", entity, id,
                       t ? cm_api->last_error(h) : "out of memory");
    return 0;
}

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

/* ---- phone numbers ------------------------------------------------------------------------ */

/*
 * The calling code of plugin.operational.default_country ("98"), or "". The operational plugin
 * writes every contact's phone in one form with it ("+989123456789"); a plugin cannot call
 * another's C, so numbers from a gateway are put in the same form here, by the same rule, and
 * then found with a plain equality filter on the indexed field.
 */
static void default_cc(rapport_host *h, char cc[8])
{
    static const struct {
        const char *iso, *code;
    } countries[] = {
        {"US", "1"},  {"CA", "1"},   {"GB", "44"},  {"DE", "49"},  {"FR", "33"},  {"IR", "98"},
        {"IN", "91"}, {"AE", "971"}, {"SA", "966"}, {"NL", "31"},  {"ES", "34"},  {"IT", "39"},
        {"AU", "61"}, {"TR", "90"},  {"BR", "55"},  {"JP", "81"},  {"CN", "86"},  {"SE", "46"},
        {"CH", "41"}, {"AT", "43"},  {"BE", "32"},  {"IE", "353"}, {"PL", "48"},  {"PT", "351"},
        {"MX", "52"}, {"AF", "93"},  {"TJ", "992"}, {"IQ", "964"}, {"PK", "92"},  {"EG", "20"},
        {"RU", "7"},  {"KR", "82"},  {"NO", "47"},  {"DK", "45"},  {"FI", "358"}, {"NZ", "64"},
    };
    cc[0] = '\0';
    json_t *j = cm_config(h, "/plugin.operational.default_country");
    const char *v = json_string_value(j);
    if (v && v[0] == '+') {
        size_t n = strspn(v + 1, "0123456789");
        if (n >= 1 && n <= 4 && !v[1 + n])
            snprintf(cc, 8, "%s", v + 1);
    } else if (v) {
        for (size_t i = 0; i < sizeof countries / sizeof *countries; i++)
            if (strcasecmp(v, countries[i].iso) == 0)
                snprintf(cc, 8, "%s", countries[i].code);
    }
    json_decref(j);
}

/* @p in as "+<digits>" (or bare digits without a default country) into @p out, as the
 * operational plugin stores phones; -1 with the reason in @p why when it is not a number. */
static int norm_number(const char *in, const char *cc, char *out, size_t cap, char *why,
                       size_t wlen)
{
    char digits[40];
    size_t n = 0;
    bool plus = false, any = false;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        int d;
        if (*p >= '0' && *p <= '9')
            d = *p - '0';
        else if (p[0] == 0xDB && p[1] >= 0xB0 && p[1] <= 0xB9) /* Persian digits */
            d = p[1] - 0xB0, p++;
        else if (p[0] == 0xD9 && p[1] >= 0xA0 && p[1] <= 0xA9) /* Arabic-Indic digits */
            d = p[1] - 0xA0, p++;
        else if (*p == '+' && !any && !plus) {
            plus = true;
            continue;
        } else if (strchr(" -.()/\t", *p)) {
            continue;
        } else {
            snprintf(why, wlen, "\"%.40s\" is not a phone number", in);
            return -1;
        }
        any = true;
        if (n + 1 >= sizeof digits) {
            snprintf(why, wlen, "\"%.40s\" has too many digits for a phone number", in);
            return -1;
        }
        digits[n++] = (char)('0' + d);
    }
    digits[n] = '\0';
    const char *d = digits;
    if (!plus && strncmp(d, "00", 2) == 0) { /* the international prefix */
        plus = true;
        d += 2;
    }
    if (plus)
        snprintf(out, cap, "+%s", d);
    else if (cc && *cc)
        snprintf(out, cap, "+%s%s", cc, *d == '0' ? d + 1 : d); /* the trunk prefix goes */
    else
        snprintf(out, cap, "%s", d);
    size_t total = strlen(out + (out[0] == '+'));
    if (total < 4 || total > 15) {
        snprintf(why, wlen, "\"%.40s\" is not a phone number (%zu digits; 4 to 15 expected)", in,
                 total);
        return -1;
    }
    return 0;
}

/* The contacts whose phone or mobile is @p number (normalised), oldest first (owned array),
 * or NULL with @p err. */
static json_t *contacts_by_number(rapport_host *h, const char *number, char *err, size_t errlen)
{
    json_t *q = json_pack("{s:{s:[{s:s},{s:s}]},s:s,s:i}", "where", "or", "phone", number,
                          "mobile", number, "order", "id", "limit", MAX_MATCHES);
    return q ? cm_find(h, "contact", q, err, errlen)
             : (cm_fail(err, errlen, RAPPORT_ENOMEM, "out of memory"), NULL);
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

/* ---- signatures --------------------------------------------------------------------------- */

/* Writes a problem document for @p status with @p detail as the route's answer. */
static int refuse(int *status, char **body, int code, const char *detail)
{
    *status = code;
    *body = cm_dump(json_pack("{s:s,s:s,s:i,s:s}", "type", "about:blank", "title",
                              code == 401 ? "Unauthorized" : "Forbidden", "status", code,
                              "detail", detail));
    return 0;
}

/*
 * Checks the signature of @p req with the secret of setting @p channel ("sms", "phone",
 * "social"): 1 when it holds; 0 when it does not, with the answer (401, or 403 when the channel
 * has no secret) written into *status and *body. Computed over the raw body, before anything
 * reads it, and compared in constant time.
 */
static int signed_ok(rapport_host *h, const rapport_request *req, const char *channel,
                     int *status, char **body)
{
    json_t *conf = cm_config(h, channel);
    const char *secret = str_of(conf, "secret");
    int ok = 0;
    char detail[200];
    const char *ts = cm_api->header(req, "x-rapport-timestamp");
    const char *sig = cm_api->header(req, "x-rapport-signature");
    unsigned char given[crypto_auth_hmacsha256_BYTES], mac[crypto_auth_hmacsha256_BYTES];
    size_t glen = 0;
    char *end = NULL;
    long long t = ts ? strtoll(ts, &end, 10) : 0;
    int64_t now = cm_api->now_ms(h) / 1000;
    if (!secret || !*secret) {
        snprintf(detail, sizeof detail, "plugin.collaborative.%s.secret is not set: this route "
                 "takes nothing until it is", channel);
        refuse(status, body, 403, detail);
    } else if (!ts || !sig) {
        refuse(status, body, 401, "the request is not signed: X-Rapport-Timestamp and "
               "X-Rapport-Signature are required");
    } else if (!*ts || *end || strspn(ts, "0123456789") != strlen(ts)) {
        refuse(status, body, 401, "X-Rapport-Timestamp: Unix seconds expected");
    } else if (t > now + SIG_WINDOW_S || t < now - SIG_WINDOW_S) {
        refuse(status, body, 401, "X-Rapport-Timestamp: more than 5 minutes from now (a "
               "replayed or delayed request)");
    } else if (strncmp(sig, "sha256=", 7) != 0 || strlen(sig + 7) != 2 * sizeof given ||
               sodium_hex2bin(given, sizeof given, sig + 7, strlen(sig + 7), NULL, &glen,
                              NULL) != 0 ||
               glen != sizeof given) {
        refuse(status, body, 401, "X-Rapport-Signature: \"sha256=\" and 64 hex digits expected");
    } else {
        char tsdot[32];
        int n = snprintf(tsdot, sizeof tsdot, "%s.", ts);
        crypto_auth_hmacsha256_state st;
        crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)tsdot,
                                      (unsigned long long)n);
        if (req->body)
            crypto_auth_hmacsha256_update(&st, (const unsigned char *)req->body,
                                          (unsigned long long)req->body_len);
        crypto_auth_hmacsha256_final(&st, mac);
        sodium_memzero(&st, sizeof st);
        ok = sodium_memcmp(mac, given, sizeof mac) == 0;
        if (!ok)
            refuse(status, body, 401, "X-Rapport-Signature does not match the body: check the "
                   "shared secret");
    }
    if (!ok)
        cm_api->log(h, RAPPORT_LOG_WARN, "refused an unsigned or badly signed %s %s from %s "
                    "(%d)", req->method, req->path, req->client ? req->client : "?", *status);
    json_decref(conf);
    return ok;
}

/* ---- request bodies ----------------------------------------------------------------------- */

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                        : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decodes one form component of @p n bytes into a new string (owned); NULL with @p err. */
static char *form_decode(const char *s, size_t n, char *err, size_t errlen)
{
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return cm_fail(err, errlen, RAPPORT_ENOMEM, "out of memory"), NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            *o++ = ' ';
            continue;
        }
        if (s[i] == '\0') {
            free(out);
            return cm_fail(err, errlen, RAPPORT_EINVAL, "the form holds a NUL byte"), NULL;
        }
        if (s[i] != '%') {
            *o++ = s[i];
            continue;
        }
        /* Both digits must lie inside the component. */
        int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
        int lo = hi >= 0 ? hexval((unsigned char)s[i + 2]) : -1;
        /* A NUL would cut the text short where the signature covered it whole. */
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            return cm_fail(err, errlen, RAPPORT_EINVAL, "the form has a bad %%-escape (or an "
                           "encoded NUL) at byte %zu of a field", i + 1), NULL;
        }
        *o++ = (char)(hi * 16 + lo);
        i += 2;
    }
    *o = '\0';
    return out;
}

/* Adds @p k = @p v (both owned, freed here) to form @p o; -1 with @p err. */
static int form_put(json_t *o, char *k, char *v, char *err, size_t errlen)
{
    json_t *jk = json_string(k), *jv = json_string(v);
    int rc = 0;
    if (!jk || !jv)
        rc = cm_fail(err, errlen, RAPPORT_EINVAL, "%.60s: not UTF-8 text", jk ? k : "a name");
    else if (json_object_get(o, k))
        rc = cm_fail(err, errlen, RAPPORT_EINVAL, "%.60s: given twice", k);
    else if (json_object_set(o, k, jv))
        rc = cm_fail(err, errlen, RAPPORT_ENOMEM, "out of memory");
    json_decref(jk);
    json_decref(jv);
    free(k);
    free(v);
    return rc;
}

/* Reads an application/x-www-form-urlencoded body into a JSON object of strings (owned), or
 * NULL with @p err. */
static json_t *form_parse(const char *body, size_t len, char *err, size_t errlen)
{
    json_t *o = json_object();
    if (!o)
        return cm_fail(err, errlen, RAPPORT_ENOMEM, "out of memory"), NULL;
    for (size_t i = 0; i < len;) {
        size_t n = 0;
        while (i + n < len && body[i + n] != '&')
            n++;
        if (n) {
            const char *eq = memchr(body + i, '=', n);
            size_t kn = eq ? (size_t)(eq - (body + i)) : n;
            char *k = form_decode(body + i, kn, err, errlen);
            char *v = !k ? NULL : eq ? form_decode(eq + 1, n - kn - 1, err, errlen) : strdup("");
            if (!k || !v) {
                free(k);
                json_decref(o);
                return NULL;
            }
            if (form_put(o, k, v, err, errlen)) {
                json_decref(o);
                return NULL;
            }
        }
        i += n + 1;
    }
    return o;
}

/* The body of @p req as a JSON object (owned): a form when its Content-Type says so (Twilio's
 * shape, *form set; only where @p form is not NULL), else JSON. NULL with @p err. */
static json_t *body_fields(const rapport_request *req, bool *form_out, char *err, size_t errlen)
{
    const char *ct = cm_api->header(req, "content-type");
    bool form = ct && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0;
    bool allow_form = form_out != NULL;
    if (form_out)
        *form_out = form;
    if (!req->body || req->body_len == 0)
        return cm_fail(err, errlen, RAPPORT_EINVAL, "the body is empty: a JSON object%s was "
                       "expected", allow_form ? " (or Twilio's form)" : ""), NULL;
    if (form && !allow_form)
        return cm_fail(err, errlen, RAPPORT_EINVAL, "this route takes a JSON object, not a "
                       "form"), NULL;
    if (form)
        return form_parse(req->body, req->body_len, err, errlen);
    json_error_t je;
    json_t *o = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(o)) {
        cm_fail(err, errlen, RAPPORT_EINVAL, "the body is not a JSON object%s%s",
                o ? "" : ": ", o ? "" : je.text);
        json_decref(o);
        return NULL;
    }
    return o;
}

/*
 * Reads text field @p key of @p o into *out (borrowed from @p o; NULL when absent, null or
 * ""): a string, or a whole number taken as its text (an id), of at most @p max bytes, with no
 * control character but line breaks and tabs where @p lines. -1 with @p err naming the field.
 */
static int text_field(json_t *o, const char *key, bool required, size_t max, bool lines,
                      const char **out, char *err, size_t errlen)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (json_is_integer(v)) {
        json_object_set_new(o, key, json_sprintf("%" JSON_INTEGER_FORMAT,
                                                 json_integer_value(v)));
        v = json_object_get(o, key);
    }
    if (v && !json_is_null(v) && !json_is_string(v))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "%s: text expected", key);
    const char *s = json_string_value(v);
    if (!s || !*s)
        return required ? cm_fail(err, errlen, RAPPORT_EINVAL, "%s: required", key) : 0;
    size_t n = json_string_length(v);
    if (n > max)
        return cm_fail(err, errlen, RAPPORT_EINVAL, "%s: at most %zu bytes (this has %zu)", key,
                       max, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && !(lines && (c == '\n' || c == '\r' || c == '\t'))) || c == 0x7f)
            return cm_fail(err, errlen, RAPPORT_EINVAL, "%s: holds a control character "
                           "(0x%02x) at byte %zu", key, c, i + 1);
    }
    *out = s;
    return 0;
}

/* @p b when only it is in @p o, else @p a: Twilio's two names of one field (MessageSid and the
 * older SmsSid), an error naming the current one. */
static const char *pick(json_t *o, const char *a, const char *b)
{
    return json_object_get(o, b) && !json_object_get(o, a) ? b : a;
}

/* Answers a stored inbound interaction: 201 when new, 200 for a repeat. */
static int answer_stored(int *status, char **body, int64_t id, bool dup, int64_t contact)
{
    *status = dup ? 200 : 201;
    json_t *d = json_pack("{s:I,s:b}", "id", (json_int_t)id, "duplicate", dup);
    if (d && contact > 0)
        json_object_set_new(d, "contact", json_integer(contact));
    *body = cm_dump(json_pack("{s:o}", "data", d));
    return 0;
}

/* Links @p rows (records of @p entity) as [[entity, id], …] (owned). */
static json_t *links_of(const char *entity, json_t *rows)
{
    json_t *links = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
        json_array_append_new(links, json_pack("[s,I]", entity, (json_int_t)id_of(r)));
    return links;
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
    default_cc(h, cc);
    if (norm_number(a->to, cc, number, cap, why, sizeof why))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "to: %s", why);
    if (!a->body || blank(a->body))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "body: the text to send is required");
    json_t *t = json_string(a->body);
    json_decref(t);
    if (!t)
        return cm_fail(err, errlen, RAPPORT_EINVAL, "body: not UTF-8 text");
    if (utf8_chars(a->body) > SMS_MAX_BODY)
        return cm_fail(err, errlen, RAPPORT_EINVAL, "body: at most %d characters (this has %zu)",
                       SMS_MAX_BODY, utf8_chars(a->body));
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
    int rc = sms_conf_read(h, &conf, err, errlen);
    if (!rc)
        rc = sms_ask_check(h, a, number, sizeof number, err, errlen);
    json_t *links = rc ? NULL : related_links(a->related, &rel_contact, err, errlen);
    json_t *who = links ? contacts_by_number(h, number, err, errlen) : NULL;
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
        return dump_free(json_pack("{s:s,s:s,s:s,s:s}", "to", to, "from", c->from, "text", text,
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
    return patch_record(h, "interaction", s->id, patch, err, errlen);
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
    return patch_record(h, "interaction", id,
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
            rc = patch_record(h, "interaction", id,
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
        rc = patch_record(h, "interaction", *id, patch, err, errlen);
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
    if (!signed_ok(h, req, "sms", status, body))
        return 0;
    bool form;
    json_t *b = body_fields(req, &form, err, errlen);
    if (!b)
        return RAPPORT_EINVAL;
    const char *kid = form ? pick(b, "MessageSid", "SmsSid") : "id";
    const char *kst = form ? pick(b, "MessageStatus", "SmsStatus") : "status";
    const char *kerr = form ? (json_object_get(b, "ErrorMessage") ? "ErrorMessage" : "ErrorCode")
                            : "error";
    const char *pid, *word, *error;
    int64_t id = 0;
    char now[16] = "";
    int rc = text_field(b, kid, true, 200, false, &pid, err, errlen);
    if (!rc)
        rc = text_field(b, kst, true, 40, false, &word, err, errlen);
    if (!rc)
        rc = text_field(b, kerr, false, 500, false, &error, err, errlen);
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
    char *payload = dump_free(json_pack("{s:s,s:s}", "number", number, "source", "sms"));
    char now[RAPPORT_TIME_LEN];
    int rc = payload ? 0 : cm_fail(err, errlen, RAPPORT_ENOMEM, "out of memory");
    cm_now_text(h, now);
    size_t i;
    json_t *c;
    json_array_foreach(who, i, c) {
        if (rc || json_is_true(json_object_get(c, "sms_opt_out")) == out)
            continue; /* already so: no second event */
        rc = patch_record(h, "contact", id_of(c),
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
        char *f = dump_free(json_pack("{s:s,s:s,s:s}", "last_name", number, "phone", number,
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
    int rc = text_field(b, form ? "From" : "from", true, 64, false, &m->from, err, errlen);
    if (!rc)
        rc = text_field(b, form ? "To" : "to", false, 64, false, &m->to, err, errlen);
    if (!rc)
        rc = text_field(b, form ? "Body" : "text", false, SMS_MAX_BODY * 4, true, &m->text, err,
                        errlen);
    if (!rc)
        rc = text_field(b, form ? pick(b, "MessageSid", "SmsSid") : "id", true, 200, false,
                        &m->id, err, errlen);
    return rc;
}

/* Stores inbound SMS @p m (in the caller's transaction); STOP and START act on the number. */
static int sms_in_store(rapport_host *h, const sms_in_t *m, int64_t *id, bool *dup,
                        int64_t *contact, char *err, size_t errlen)
{
    char number[48], why[160], cc[8];
    default_cc(h, cc);
    /* A sender that is not a number (an alphanumeric sender id) is stored as it came. */
    bool known = norm_number(m->from, cc, number, sizeof number, why, sizeof why) == 0;
    json_t *who = known ? contacts_by_number(h, number, err, errlen) : json_array();
    if (!who)
        return RAPPORT_EIO;
    int kw = keyword_of(m->text);
    json_t *links = links_of("contact", who);
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
    if (!signed_ok(h, req, "sms", status, body))
        return 0;
    bool form;
    json_t *b = body_fields(req, &form, err, errlen);
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
    return rc ? rc : answer_stored(status, body, id, dup, contact);
}

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
    int rc = text_field(b, "id", true, 200, false, &c->id, err, errlen);
    if (!rc)
        rc = text_field(b, "from", true, 64, false, &c->from, err, errlen);
    if (!rc)
        rc = text_field(b, "to", true, 64, false, &c->to, err, errlen);
    if (!rc)
        rc = text_field(b, "direction", true, 8, false, &c->direction, err, errlen);
    if (!rc)
        rc = text_field(b, "status", false, 16, false, &c->status, err, errlen);
    if (!rc)
        rc = text_field(b, "recording", false, 2048, false, &c->recording, err, errlen);
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
    default_cc(h, cc);
    bool from_ok = norm_number(c->from, cc, from, sizeof from, why, sizeof why) == 0;
    bool to_ok = norm_number(c->to, cc, to, sizeof to, why, sizeof why) == 0;
    /* The customer is the caller of a call in, the callee of a call out. */
    bool known = in ? from_ok : to_ok;
    json_t *who = known ? contacts_by_number(h, in ? from : to, err, errlen) : json_array();
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
    json_t *links = links_of("contact", who);
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
    if (!signed_ok(h, req, "phone", status, body))
        return 0;
    json_t *b = body_fields(req, NULL, err, errlen);
    if (!b)
        return RAPPORT_EINVAL;
    call_t c;
    int64_t id = 0, contact = 0;
    bool dup = false;
    int rc = call_read(b, &c, err, errlen);
    if (!rc)
        rc = call_store(h, &c, &id, &dup, &contact, err, errlen);
    json_decref(b);
    return rc ? rc : answer_stored(status, body, id, dup, contact);
}

/* ---- social ------------------------------------------------------------------------------- */

/** A post, comment or review (borrowed from the body). */
typedef struct post {
    const char *id, *platform, *handle, *email, *text, *link, *kind;
    json_int_t rating; /**< 1 to 5, or 0 when not given. */
} post_t;

static int post_read(json_t *b, post_t *p, char *err, size_t errlen)
{
    int rc = text_field(b, "id", true, 200, false, &p->id, err, errlen);
    if (!rc)
        rc = text_field(b, "platform", true, 40, false, &p->platform, err, errlen);
    if (!rc)
        rc = text_field(b, "handle", false, 200, false, &p->handle, err, errlen);
    if (!rc)
        rc = text_field(b, "email", false, 254, false, &p->email, err, errlen);
    if (!rc)
        rc = text_field(b, "text", false, SOCIAL_MAX_TEXT, true, &p->text, err, errlen);
    if (!rc)
        rc = text_field(b, "link", false, 2048, false, &p->link, err, errlen);
    if (!rc)
        rc = text_field(b, "kind", false, 16, false, &p->kind, err, errlen);
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
    if (!signed_ok(h, req, "social", status, body))
        return 0;
    json_t *b = body_fields(req, NULL, err, errlen);
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
    return rc ? rc : answer_stored(status, body, id, dup, contact);
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

/* Takes "--name VALUE" out of argv: the value, NULL when absent; *bad when it has none. */
static const char *take_opt(int *argc, char **argv, const char *name, bool *bad)
{
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], name) != 0)
            continue;
        if (i + 1 >= *argc) {
            *bad = true;
            return NULL;
        }
        const char *v = argv[i + 1];
        for (int k = i; k + 2 <= *argc; k++)
            argv[k] = argv[k + 2];
        *argc -= 2;
        return v;
    }
    return NULL;
}

static bool take_flag(int *argc, char **argv, const char *name)
{
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], name) == 0) {
            for (int k = i; k + 1 <= *argc; k++)
                argv[k] = argv[k + 1];
            (*argc)--;
            return true;
        }
    }
    return false;
}

static const char sms_usage[] = "usage: rapport sms send --to NUMBER --body TEXT "
                                "[--related ENTITY:ID] [--purpose service|marketing] [--now]\n";

/* rapport sms send …: exit 0 when queued (or sent, with --now), 1 when refused or failed. */
static int cmd_sms(rapport_host *h, const rapport_api *api, int argc, char **argv, void *ud)
{
    (void)api;
    (void)ud;
    bool bad = false;
    const char *to = take_opt(&argc, argv, "--to", &bad);
    const char *text = take_opt(&argc, argv, "--body", &bad);
    const char *related = take_opt(&argc, argv, "--related", &bad);
    const char *purpose = take_opt(&argc, argv, "--purpose", &bad);
    bool now = take_flag(&argc, argv, "--now");
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

int cm_channels_init(rapport_host *h, char *err, size_t errlen)
{
    const rapport_api *api = cm_api;
    if (sodium_init() < 0)
        return cm_fail(err, errlen, RAPPORT_EIO, "libsodium could not start");
    if (api->job(h, "collaborative.sms_send", job_sms_send, NULL) ||
        api->lua_function(h, "send_sms", lua_send_sms, NULL) ||
        api->command(h, "sms", "sms send --to NUMBER --body TEXT [--related ENTITY:ID] "
                     "[--purpose service|marketing] [--now]: an SMS through the gateway",
                     cmd_sms, NULL) ||
        api->public_route(h, "POST", "sms/status", route_sms_status, NULL) ||
        api->public_route(h, "POST", "sms/inbound", route_sms_inbound, NULL) ||
        api->public_route(h, "POST", "phone/call", route_phone_call, NULL) ||
        api->public_route(h, "POST", "social/post", route_social_post, NULL))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "%s", api->last_error(h));
    return 0;
}
