/*
 * channels.c — the ground the channel routes share: the signature every public request of a
 * channel must carry (checked over the raw body, in constant time), its body read as JSON or
 * as Twilio's form, text fields checked, phone numbers put in one form and the contacts that
 * hold them found, and the answer to a stored message. cm_channels_init registers the SMS
 * (sms.c, sms_in.c), phone and social (calls.c) doors; channels.h lists the routes.
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "channels.h"

/** How far a signature's timestamp may be from now (seconds). */
#define SIG_WINDOW_S 300
/** Contacts looked at for one number. */
#define MAX_MATCHES 20

/* ---- records ------------------------------------------------------------------------------ */

/* Writes JSON @p j (stolen) as text into a malloc'd string; NULL when out of memory. */
char *cm_dump_free(json_t *j)
{
    char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return t;
}

/* Updates @p entity @p id with @p patch (stolen). */
int cm_patch_record(rapport_host *h, const char *entity, int64_t id, json_t *patch,
                    char *err, size_t errlen)
{
    char *t = cm_dump_free(patch);
    int rc = t ? cm_api->update(h, entity, id, t, 0) : RAPPORT_ENOMEM;
    free(t);
    if (rc)
        return cm_fail(err, errlen, rc, "%s %" PRId64 ": %s", entity, id,
                       t ? cm_api->last_error(h) : "out of memory");
    return 0;
}

/* ---- phone numbers ------------------------------------------------------------------------ */

/*
 * The calling code of plugin.operational.default_country ("98"), or "". The operational plugin
 * writes every contact's phone in one form with it ("+989123456789"); a plugin cannot call
 * another's C, so numbers from a gateway are put in the same form here, by the same rule, and
 * then found with a plain equality filter on the indexed field.
 */
void cm_default_cc(rapport_host *h, char cc[8])
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
int cm_norm_number(const char *in, const char *cc, char *out, size_t cap, char *why,
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
json_t *cm_contacts_by_number(rapport_host *h, const char *number, char *err, size_t errlen)
{
    json_t *q = json_pack("{s:{s:[{s:s},{s:s}]},s:s,s:i}", "where", "or", "phone", number,
                          "mobile", number, "order", "id", "limit", MAX_MATCHES);
    return q ? cm_find(h, "contact", q, err, errlen)
             : (cm_fail(err, errlen, RAPPORT_ENOMEM, "out of memory"), NULL);
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
int cm_signed_ok(rapport_host *h, const rapport_request *req, const char *channel,
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
json_t *cm_body_fields(const rapport_request *req, bool *form_out, char *err, size_t errlen)
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
int cm_text_field(json_t *o, const char *key, bool required, size_t max, bool lines,
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

/* Answers a stored inbound interaction: 201 when new, 200 for a repeat. */
int cm_answer_stored(int *status, char **body, int64_t id, bool dup, int64_t contact)
{
    *status = dup ? 200 : 201;
    json_t *d = json_pack("{s:I,s:b}", "id", (json_int_t)id, "duplicate", dup);
    if (d && contact > 0)
        json_object_set_new(d, "contact", json_integer(contact));
    *body = cm_dump(json_pack("{s:o}", "data", d));
    return 0;
}

/* Links @p rows (records of @p entity) as [[entity, id], …] (owned). */
json_t *cm_links_of(const char *entity, json_t *rows)
{
    json_t *links = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
        json_array_append_new(links, json_pack("[s,I]", entity, (json_int_t)id_of(r)));
    return links;
}

int cm_channels_init(rapport_host *h, char *err, size_t errlen)
{
    int rc;
    if (sodium_init() < 0)
        return cm_fail(err, errlen, RAPPORT_EIO, "libsodium could not start");
    if ((rc = cm_sms_init(h, err, errlen)) || (rc = cm_sms_in_init(h, err, errlen)) ||
        (rc = cm_calls_init(h, err, errlen)))
        return rc;
    return 0;
}
