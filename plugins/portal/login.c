/*
 * login.c — how a customer signs in to the portal: a one-time link mailed to the address of a
 * contact with portal access, or a password (argon2id, checked off the event loop); signing
 * out; setting a password; who is signed in. Every answer to "who is this address?" is the
 * same whether or not the address is known.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "kb.h"
#include "portal.h"

/* Longest password taken (argon2id reads it all) and longest address. */
enum { PASSWORD_MAX = 1024, EMAIL_MAX = 254, TOKEN_MAX = 100 };

/* ---- helpers ------------------------------------------------------------------------------ */

/* The JSON object of @p req's body (owned), or NULL with @p err filled. */
static json_t *body_of(const rapport_request *req, char *err, size_t errlen)
{
    json_error_t je;
    json_t *b = req->body ? json_loadb(req->body, req->body_len, 0, &je) : NULL;
    if (!json_is_object(b)) {
        json_decref(b);
        pt_fail(err, errlen, RAPPORT_EINVAL, "the body must be a JSON object%s%s",
                req->body ? ": " : "", req->body ? je.text : "");
        return NULL;
    }
    return b;
}

/* Member @p key of @p b as text of 1 to @p max bytes, or NULL with @p err naming it. */
static const char *text_of(json_t *b, const char *key, size_t max, char *err, size_t errlen)
{
    json_t *v = json_object_get(b, key);
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max) {
        pt_fail(err, errlen, RAPPORT_EINVAL, "%s: a text of 1 to %zu bytes is needed", key, max);
        return NULL;
    }
    return json_string_value(v);
}

/* @p email in lower case into @p out; false when it is no address. */
static bool email_key(const char *email, char *out, size_t cap)
{
    size_t n = strlen(email);
    const char *at = strchr(email, '@');
    if (n >= cap || !at || at == email || !at[1] || strchr(at + 1, '@'))
        return false;
    for (size_t i = 0; i <= n; i++)
        out[i] = (char)((email[i] >= 'A' && email[i] <= 'Z') ? email[i] + 32 : email[i]);
    return true;
}

/* The key a secret @p raw is kept under: @p prefix and its BLAKE2b hash in hex. */
static void secret_name(const char *prefix, const char *raw, char *out, size_t cap)
{
    unsigned char h[32];
    char hex[65];
    crypto_generichash(h, sizeof h, (const unsigned char *)raw, strlen(raw), NULL, 0);
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    snprintf(out, cap, "%s%s", prefix, hex);
}

/* A new random secret as URL-safe text (43 characters). */
static void random_text(char out[64])
{
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(out, 64, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
}

static int answer(const rapport_api *api, int *status, char **body, int code, json_t *j)
{
    *status = code;
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    *body = text ? api->strdup(text) : NULL;
    free(text);
    return 0;
}

/* The event @p type about contact @p id with @p payload (stolen), as the plugin itself: the
 * portal's role need not be allowed to write the log. */
static void event(rapport_host *h, const char *type, int64_t id, json_t *payload)
{
    char *text = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
    json_decref(payload);
    int was = pt_api->as_plugin(h, 1);
    if (pt_api->emit(h, type, "contact", id, text ? text : "{}"))
        pt_api->log(h, RAPPORT_LOG_ERROR, "cannot log %s for contact %" PRId64 ": %s", type, id,
                    pt_api->last_error(h));
    pt_api->as_plugin(h, was);
    free(text);
}

/* The contact a record session acts as, or 0 (not a customer's session). */
static int64_t customer_of(const rapport_request *req)
{
    const char *s = req->subject;
    if (!s || strncmp(s, "contact:", 8) != 0)
        return 0;
    char *end = NULL;
    long long id = strtoll(s + 8, &end, 10);
    return end && !*end && id > 0 ? id : 0;
}

/* Whether @p key (of a client or an address) is over the limit: counts the attempt. */
typedef struct {
    int max_failures;
    int link_requests;
    int64_t window_ms;
} limits_t;

static limits_t limits(rapport_host *h)
{
    return (limits_t){(int)pt_setting_int(h, "max_failures", 5, false),
                      (int)pt_setting_int(h, "link_requests", 5, false),
                      pt_setting_int(h, "window", 15 * 60 * 1000, true)};
}

static int too_many(const rapport_api *api, int *status, char **body, int64_t window_ms)
{
    return answer(api, status, body, 429,
                  json_pack("{s:s,s:I}", "detail", "too many attempts from this client or for "
                            "this address; try again later", "retry_after_s",
                            (json_int_t)(window_ms / 1000)));
}

/* ---- a link by mail ----------------------------------------------------------------------- */

/* The subject and text of the link's mail in @p lang (en, else fa). */
static void link_mail(const char *lang, const char *name, const char *url, int64_t minutes,
                      char *subject, size_t scap, char *text, size_t tcap)
{
    if (lang && strcmp(lang, "fa") == 0) {
        snprintf(subject, scap, "پیوند ورود به درگاه مشتریان");
        snprintf(text, tcap,
                 "سلام %s،\n\n"
                 "با این پیوند وارد درگاه مشتریان شوید. "
                 "پیوند تا %" PRId64 " دقیقه و فقط یک بار کار می‌کند:\n\n%s\n\n"
                 "اگر آن را درخواست نکرده‌اید، "
                 "این پیام را نادیده بگیرید.\n",
                 name, minutes, url);
        return;
    }
    snprintf(subject, scap, "Your sign-in link to the customer portal");
    snprintf(text, tcap,
             "Hello %s,\n\nSign in to the customer portal with this link. It works once, for "
             "%" PRId64 " minutes:\n\n%s\n\nIf you did not ask for it, ignore this message.\n",
             name, minutes, url);
}

/* Keeps the link's token (hashed) and queues its mail, in one transaction. */
static int send_link(rapport_host *h, int64_t id, const char *email, const char *lang,
                     const char *name, const char *client)
{
    char base[512];
    if (!pt_setting_text(h, "url", base, sizeof base)) {
        pt_api->log(h, RAPPORT_LOG_ERROR, "a sign-in link for contact %" PRId64 " was not sent: "
                    "set plugin.portal.url to the portal's address (https://crm.example.com)",
                    id);
        return 0;
    }
    int64_t ttl = pt_setting_int(h, "link_ttl", 15 * 60 * 1000, true);
    char token[64], key[80], value[48], url[700], subject[200], text[2000];
    /* The text says {{secret}} where the link goes: the collaborative plugin keeps the mail
     * with a note there and the link only until it is sent (its mail_secret.c). */
    random_text(token);
    secret_name("link:", token, key, sizeof key);
    snprintf(value, sizeof value, "contact:%" PRId64, id);
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/')
        base[--bl] = '\0';
    snprintf(url, sizeof url, "%s/portal/#token=%s", base, token);
    link_mail(lang, name[0] ? name : email, "{{secret}}", (ttl + 59999) / 60000, subject,
              sizeof subject, text, sizeof text);
    json_t *job = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "to", email, "subject", subject,
                            "body", text, "related", value, "secret", url, "ttl_s",
                            (json_int_t)((ttl + 999) / 1000));
    char *payload = job ? json_dumps(job, JSON_COMPACT) : NULL;
    json_decref(job);
    sodium_memzero(token, sizeof token);
    int rc = payload ? pt_api->begin(h) : RAPPORT_ENOMEM;
    if (!rc) {
        rc = pt_api->secret_put(h, key, value, ttl);
        if (!rc)
            rc = pt_api->schedule(h, "portal.send_link", payload, 0, NULL);
        if (rc)
            pt_api->rollback(h);
        else
            rc = pt_api->commit(h);
    }
    if (payload)
        sodium_memzero(payload, strlen(payload));
    free(payload);
    sodium_memzero(url, sizeof url);
    sodium_memzero(text, sizeof text);
    if (rc) {
        pt_api->log(h, RAPPORT_LOG_ERROR, "a sign-in link for contact %" PRId64 " was not sent: "
                    "%s", id, pt_api->last_error(h));
        return 0;
    }
    event(h, "portal.link_sent", id, json_pack("{s:s}", "client", client));
    return 0;
}

/* POST login/link {email}: 202 whatever the address. */
static int route_link(rapport_host *h, const rapport_api *api, const rapport_request *req,
                      int *status, char **body, void *ud, char *err, size_t errlen)
{
    (void)ud;
    json_t *b = body_of(req, err, errlen);
    const char *email = b ? text_of(b, "email", EMAIL_MAX, err, errlen) : NULL;
    char addr[EMAIL_MAX + 1];
    if (email && !email_key(email, addr, sizeof addr))
        email = NULL, pt_fail(err, errlen, RAPPORT_EINVAL, "email: not an email address");
    json_decref(b);
    if (!email)
        return RAPPORT_EINVAL;
    limits_t lim = limits(h);
    int64_t now = api->now_ms(h);
    char ck[200], ak[300], who[64];
    portal_client_key(req->client, who, sizeof who);
    snprintf(ck, sizeof ck, "link-client:%s", who);
    snprintf(ak, sizeof ak, "link-address:%s", addr);
    if (pt_limited(ck, lim.link_requests * 4, lim.window_ms, now) ||
        pt_limited(ak, lim.link_requests, lim.window_ms, now))
        return too_many(api, status, body, lim.window_ms);
    pt_count(ck, lim.window_ms, now);
    pt_count(ak, lim.window_ms, now);
    char lang[16], name[128];
    int64_t id = pt_contact_by_email(h, addr, lang, sizeof lang, name, sizeof name);
    if (id)
        send_link(h, id, addr, lang, name, req->client);
    return answer(api, status, body, 202,
                  json_pack("{s:s,s:s}", "status", "accepted", "detail",
                            "if this address belongs to a customer with portal access, a "
                            "sign-in link is on its way"));
}

/* Signs contact @p id in on @p req: the cookie on the answer, 200 {principal, csrf}. */
static int sign_in(rapport_host *h, const rapport_api *api, const rapport_request *req,
                   int64_t id, const char *method, int *status, char **body, char *err,
                   size_t errlen)
{
    char csrf[65] = "";
    int rc = api->session_start(h, req, "contact", id, PT_ROLE, csrf);
    if (rc)
        return pt_fail(err, errlen, rc, "%s", api->last_error(h));
    event(h, "portal.signed_in", id, json_pack("{s:s,s:s}", "method", method, "client",
                                                req->client));
    char principal[48];
    snprintf(principal, sizeof principal, "contact:%" PRId64, id);
    return answer(api, status, body, 200,
                  json_pack("{s:s,s:s,s:s}", "principal", principal, "role", PT_ROLE, "csrf",
                            csrf));
}

/* POST login/token {token}: the link's token, once, before it expires. */
static int route_token(rapport_host *h, const rapport_api *api, const rapport_request *req,
                       int *status, char **body, void *ud, char *err, size_t errlen)
{
    (void)ud;
    json_t *b = body_of(req, err, errlen);
    const char *token = b ? text_of(b, "token", TOKEN_MAX, err, errlen) : NULL;
    char key[80];
    if (token)
        secret_name("link:", token, key, sizeof key);
    json_decref(b);
    if (!token)
        return RAPPORT_EINVAL;
    limits_t lim = limits(h);
    int64_t now = api->now_ms(h);
    char ck[200], client[64];
    portal_client_key(req->client, client, sizeof client);
    snprintf(ck, sizeof ck, "token-client:%s", client);
    if (pt_limited(ck, lim.max_failures * 2, lim.window_ms, now))
        return too_many(api, status, body, lim.window_ms);
    char *who = api->secret_take(h, key, 1);
    int64_t id = who && strncmp(who, "contact:", 8) == 0 ? strtoll(who + 8, NULL, 10) : 0;
    api->free(who);
    if (id <= 0 || !pt_has_access(h, id)) {
        pt_count(ck, lim.window_ms, now);
        return answer(api, status, body, 401,
                      json_pack("{s:s}", "detail", "this sign-in link does not hold: it was "
                                "used already, has expired, or access was taken away; ask for "
                                "a new one"));
    }
    return sign_in(h, api, req, id, "link", status, body, err, errlen);
}

/* ---- a password --------------------------------------------------------------------------- */

/* A password check under way: its ticket's hash, and how it went. Checks are slow (argon2id),
 * so the sign-in answers 202 with a ticket and the page asks again with it (login/finish). */
enum { CHECKS = 128, CHECK_TTL_MS = 60000 };
enum { CHECK_FREE = 0, CHECK_PENDING, CHECK_OK, CHECK_FAILED };

typedef struct work work_t;

typedef struct {
    char key[80];     /* "ticket:" and the hash of the ticket */
    int state;
    unsigned gen;     /* bumped when the slot is reused, so a late worker finds it gone */
    int64_t id;       /* the contact, or 0 for an address that signs no one in */
    int64_t at_ms;
    char client_key[200], address_key[300];
    uint64_t client;  /* a hash of client_key, for the turns below */
    uint64_t tag;     /* its turn: checks start in the order of their tags */
    work_t *waiting;  /* the check, while it waits for a worker (NULL once it is handed on) */
} check_t;

static check_t checks[CHECKS]; /* touched on the loop only */

struct work {
    int slot;
    unsigned gen;
    char hash[crypto_pwhash_STRBYTES]; /* "" when the address has no password */
    char *password;
    size_t len;
    bool ok;
};

/* Checks take turns by client, not by arrival (start-time fair queueing): a check's tag is one
 * past the later of the last tag handed to a worker and its client's own last tag, and the
 * waiting check with the lowest tag goes next. A flood from a few clients fills the queue with
 * their tags; a customer arriving behind it waits for about one check per flooding client, not
 * for the whole flood. At most RUNNING checks are with the workers at once, so the engine's
 * shared pool stays free for the other plugins' work (the mail) however long the queue. */
enum { RUNNING = 2 };
static int running;
static uint64_t vtime; /* the tag of the last check handed to a worker */
static bool stopped;

static uint64_t client_hash(const char *key)
{
    uint64_t x = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        x = (x ^ *p) * 1099511628211ull;
    return x;
}

/* The tag of a new check from @p client: its client's checks still held go first. */
static uint64_t next_tag(uint64_t client)
{
    uint64_t t = vtime;
    for (int i = 0; i < CHECKS; i++)
        if (checks[i].state != CHECK_FREE && checks[i].client == client && checks[i].tag > t)
            t = checks[i].tag;
    return t + 1;
}

static void check_work(void *ud)
{
    work_t *w = ud;
    if (w->hash[0]) {
        w->ok = crypto_pwhash_str_verify(w->hash, w->password, w->len) == 0;
    } else {
        /* As long as a real check, so the answer's time does not say whether the address is
         * a customer's. */
        char dummy[crypto_pwhash_STRBYTES];
        if (crypto_pwhash_str(dummy, w->password, w->len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
            dummy[0] = '\0';
        w->ok = false;
    }
    sodium_memzero(w->password, w->len);
}

static void work_free(work_t *w)
{
    sodium_memzero(w->password, w->len);
    free(w->password);
    sodium_memzero(w, sizeof *w);
    free(w);
}

static void pump(rapport_host *h, const rapport_api *api);

static void check_done(rapport_host *h, const rapport_api *api, void *ud)
{
    work_t *w = ud;
    check_t *c = &checks[w->slot];
    if (c->gen == w->gen && c->state == CHECK_PENDING)
        c->state = w->ok && c->id ? CHECK_OK : CHECK_FAILED;
    work_free(w);
    running--;
    pump(h, api);
}

/* Hands waiting checks to the workers, lowest tag first, while fewer than RUNNING are there.
 * A check the pool refuses is answered as failed (its page asks again and is told). */
static void pump(rapport_host *h, const rapport_api *api)
{
    while (!stopped && running < RUNNING) {
        check_t *next = NULL;
        for (int i = 0; i < CHECKS; i++)
            if (checks[i].waiting && (!next || checks[i].tag < next->tag))
                next = &checks[i];
        if (!next)
            return;
        work_t *w = next->waiting;
        next->waiting = NULL;
        if (next->tag > vtime)
            vtime = next->tag;
        running++;
        if (api->offload(h, check_work, check_done, w)) {
            running--;
            next->state = CHECK_FAILED;
            work_free(w);
        }
    }
}

void pt_login_fini(void)
{
    stopped = true;
    for (int i = 0; i < CHECKS; i++)
        if (checks[i].waiting) {
            work_free(checks[i].waiting);
            checks[i].waiting = NULL;
        }
}

/* A free slot (or one whose check is long over); when every slot is taken, the oldest finished
 * check whose page has not come for its answer gives way, so the finished checks of a flood
 * (each client within its limits) do not lock everyone out for CHECK_TTL_MS. -1 when all are
 * under way. */
static int check_slot(int64_t now)
{
    int oldest = -1;
    for (int i = 0; i < CHECKS; i++) {
        if (checks[i].state == CHECK_FREE ||
            (checks[i].state != CHECK_PENDING && now - checks[i].at_ms > CHECK_TTL_MS))
            return i;
        if (checks[i].state != CHECK_PENDING &&
            (oldest < 0 || checks[i].at_ms < checks[oldest].at_ms))
            oldest = i;
    }
    return oldest;
}

/* POST login/password {email, password}: 202 {ticket}; login/finish says how it went. */
static int route_password_login(rapport_host *h, const rapport_api *api,
                                const rapport_request *req, int *status, char **body, void *ud,
                                char *err, size_t errlen)
{
    (void)ud;
    json_t *b = body_of(req, err, errlen);
    const char *email = b ? text_of(b, "email", EMAIL_MAX, err, errlen) : NULL;
    const char *password = email ? text_of(b, "password", PASSWORD_MAX, err, errlen) : NULL;
    char addr[EMAIL_MAX + 1];
    if (password && !email_key(email, addr, sizeof addr))
        password = NULL, pt_fail(err, errlen, RAPPORT_EINVAL, "email: not an email address");
    if (!password) {
        json_decref(b);
        return RAPPORT_EINVAL;
    }
    limits_t lim = limits(h);
    int64_t now = api->now_ms(h);
    int slot = check_slot(now);
    check_t *c = slot >= 0 ? &checks[slot] : NULL;
    char ck[200], ak[300], who[64];
    portal_client_key(req->client, who, sizeof who);
    snprintf(ck, sizeof ck, "password-client:%s", who);
    snprintf(ak, sizeof ak, "password-address:%s", addr);
    if (pt_limited(ck, lim.max_failures * 4, lim.window_ms, now) ||
        pt_limited(ak, lim.max_failures, lim.window_ms, now)) {
        json_decref(b);
        return too_many(api, status, body, lim.window_ms);
    }
    if (!c) {
        /* Not this client's doing: every slot holds a check under way. */
        json_decref(b);
        return answer(api, status, body, 503,
                      json_pack("{s:s,s:i}", "detail", "too many sign-ins are being checked "
                                "right now; try again in a moment", "retry_ms", 1000));
    }
    work_t *w = calloc(1, sizeof *w);
    char *pw = w ? strdup(password) : NULL;
    json_decref(b);
    if (!pw) {
        free(w);
        return pt_fail(err, errlen, RAPPORT_ENOMEM, "out of memory");
    }
    int64_t id = pt_contact_by_email(h, addr, NULL, 0, NULL, 0);
    char key[64];
    snprintf(key, sizeof key, "password:contact:%" PRId64, id);
    char *hash = id ? api->secret_take(h, key, 0) : NULL;
    bool has = hash && strlen(hash) < sizeof w->hash;
    char ticket[64];
    random_text(ticket);
    uint64_t client = client_hash(ck);
    uint64_t tag = next_tag(client);
    *c = (check_t){.state = CHECK_PENDING, .gen = c->gen + 1, .id = has ? id : 0, .at_ms = now,
                   .client = client, .tag = tag, .waiting = w};
    secret_name("ticket:", ticket, c->key, sizeof c->key);
    snprintf(c->client_key, sizeof c->client_key, "%s", ck);
    snprintf(c->address_key, sizeof c->address_key, "%s", ak);
    *w = (work_t){.slot = slot, .gen = c->gen, .password = pw, .len = strlen(pw)};
    if (has)
        snprintf(w->hash, sizeof w->hash, "%s", hash);
    api->free(hash);
    pump(h, api);
    /* Counted now, taken back when the password was right (login/finish): a check takes
     * tens of milliseconds, and a burst sent before the first ended must not get more tries
     * than the limit. */
    pt_count(ck, lim.window_ms, now);
    pt_count(ak, lim.window_ms, now);
    return answer(api, status, body, 202,
                  json_pack("{s:s,s:i}", "ticket", ticket, "retry_ms", 200));
}

/* POST login/finish {ticket}: 202 while the check runs, then 200 with the session or 401. */
static int route_finish(rapport_host *h, const rapport_api *api, const rapport_request *req,
                        int *status, char **body, void *ud, char *err, size_t errlen)
{
    (void)ud;
    json_t *b = body_of(req, err, errlen);
    const char *ticket = b ? text_of(b, "ticket", TOKEN_MAX, err, errlen) : NULL;
    char key[80];
    if (ticket)
        secret_name("ticket:", ticket, key, sizeof key);
    json_decref(b);
    if (!ticket)
        return RAPPORT_EINVAL;
    int64_t now = api->now_ms(h);
    check_t *c = NULL;
    for (int i = 0; i < CHECKS && !c; i++)
        /* A check still waiting or running is found however long its queue took. */
        if (checks[i].state != CHECK_FREE &&
            (checks[i].state == CHECK_PENDING || now - checks[i].at_ms <= CHECK_TTL_MS) &&
            sodium_memcmp(checks[i].key, key, strlen(key) + 1) == 0)
            c = &checks[i];
    if (c && c->state == CHECK_PENDING)
        return answer(api, status, body, 202,
                      json_pack("{s:b,s:i}", "pending", 1, "retry_ms", 200));
    int state = c ? c->state : CHECK_FAILED;
    int64_t id = c ? c->id : 0;
    char address_key[300] = "", client_key[200] = "";
    if (c) {
        snprintf(address_key, sizeof address_key, "%s", c->address_key);
        snprintf(client_key, sizeof client_key, "%s", c->client_key);
        c->state = CHECK_FREE; /* a ticket is used once */
    }
    if (state != CHECK_OK || !pt_has_access(h, id))
        return answer(api, status, body, 401,
                      json_pack("{s:s}", "detail", "the email address or the password is "
                                "wrong"));
    pt_forget(address_key);
    pt_uncount(client_key);
    return sign_in(h, api, req, id, "password", status, body, err, errlen);
}

/* ---- signed in: a password, signing out, who ---------------------------------------------- */

typedef struct {
    int64_t id;
    char *password;
    size_t len;
    char hash[crypto_pwhash_STRBYTES];
    bool ok;
} hash_work_t;

static void hash_work(void *ud)
{
    hash_work_t *w = ud;
    w->ok = crypto_pwhash_str(w->hash, w->password, w->len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE) == 0;
    sodium_memzero(w->password, w->len);
}

static void hash_done(rapport_host *h, const rapport_api *api, void *ud)
{
    hash_work_t *w = ud;
    char key[64];
    snprintf(key, sizeof key, "password:contact:%" PRId64, w->id);
    if (!w->ok)
        api->log(h, RAPPORT_LOG_ERROR, "contact %" PRId64 ": the password could not be hashed "
                 "(out of memory?); it was not changed", w->id);
    else if (api->secret_put(h, key, w->hash, 0))
        api->log(h, RAPPORT_LOG_ERROR, "contact %" PRId64 ": the password was not kept: %s",
                 w->id, api->last_error(h));
    else
        event(h, "portal.password_changed", w->id, json_object());
    free(w->password);
    sodium_memzero(w, sizeof *w);
    free(w);
}

/* Characters (not bytes) in UTF-8 text @p s. */
static size_t chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static int not_customer(char *err, size_t errlen)
{
    return pt_fail(err, errlen, RAPPORT_EPERM, "this is for a customer signed in to the portal "
                   "(a staff user's token or session is not one)");
}

/* POST password {password}: sets or changes the customer's password; 202, kept a moment
 * later (argon2id runs off the event loop). Every other session of the customer ends with it
 * (one opened with the old password, or a link someone else followed): this one is opened
 * again, its new cookie and CSRF token on the answer. */
static int route_password(rapport_host *h, const rapport_api *api, const rapport_request *req,
                          int *status, char **body, void *ud, char *err, size_t errlen)
{
    (void)ud;
    int64_t id = customer_of(req);
    if (!id)
        return not_customer(err, errlen);
    json_t *b = body_of(req, err, errlen);
    const char *pw = b ? text_of(b, "password", PASSWORD_MAX, err, errlen) : NULL;
    int64_t min = pt_setting_int(h, "min_password", 10, false);
    if (pw && (int64_t)chars(pw) < min)
        pw = NULL, pt_fail(err, errlen, RAPPORT_EINVAL, "password: at least %" PRId64
                           " characters (plugin.portal.min_password)", min);
    hash_work_t *w = pw ? calloc(1, sizeof *w) : NULL;
    if (w) {
        w->id = id;
        w->password = strdup(pw);
        w->len = w->password ? strlen(w->password) : 0;
    }
    json_decref(b);
    if (!pw)
        return RAPPORT_EINVAL;
    if (!w || !w->password) {
        free(w);
        return pt_fail(err, errlen, RAPPORT_ENOMEM, "out of memory");
    }
    char csrf[65] = "";
    if (api->session_end(h, NULL, "contact", id) ||
        api->session_start(h, req, "contact", id, PT_ROLE, csrf)) {
        sodium_memzero(w->password, w->len);
        free(w->password);
        free(w);
        return pt_fail(err, errlen, RAPPORT_EIO, "%s", api->last_error(h));
    }
    if (api->offload(h, hash_work, hash_done, w)) {
        sodium_memzero(w->password, w->len);
        free(w->password);
        free(w);
        return pt_fail(err, errlen, RAPPORT_EIO, "%s", api->last_error(h));
    }
    return answer(api, status, body, 202,
                  json_pack("{s:s,s:s}", "status", "accepted", "csrf", csrf));
}

/* POST logout: ends the customer's session; the cookie is removed. */
static int route_logout(rapport_host *h, const rapport_api *api, const rapport_request *req,
                        int *status, char **body, void *ud, char *err, size_t errlen)
{
    (void)ud;
    (void)body;
    int64_t id = customer_of(req);
    if (!id)
        return not_customer(err, errlen);
    int rc = api->session_end(h, req, NULL, 0);
    if (rc)
        return pt_fail(err, errlen, rc, "%s", api->last_error(h));
    event(h, "portal.signed_out", id, json_pack("{s:s}", "client", req->client));
    *status = 204;
    return 0;
}

/* GET me: the signed-in customer, as their role reads them. */
static int route_me(rapport_host *h, const rapport_api *api, const rapport_request *req,
                    int *status, char **body, void *ud, char *err, size_t errlen)
{
    (void)ud;
    int64_t id = customer_of(req);
    if (!id)
        return not_customer(err, errlen);
    char *text = api->get(h, "contact", id);
    json_t *c = text ? json_loads(text, 0, NULL) : NULL;
    api->free(text);
    if (!c)
        return pt_fail(err, errlen, RAPPORT_ENOTFOUND, "%s", api->last_error(h));
    json_t *ans = json_pack("{s:s,s:I,s:O?,s:O?,s:O?,s:O?}", "principal", req->subject, "id",
                            (json_int_t)id, "first_name", json_object_get(c, "first_name"),
                            "last_name", json_object_get(c, "last_name"), "email",
                            json_object_get(c, "email"), "language",
                            json_object_get(c, "language"));
    json_decref(c);
    return answer(api, status, body, 200, ans);
}

/* A colour as #rgb or #rrggbb, nothing else: the page sets it as a CSS variable. */
static bool is_color(const char *s)
{
    size_t n = strlen(s);
    if (s[0] != '#' || (n != 4 && n != 7))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* A logo the page's Content-Security-Policy lets it show (img-src 'self' data:): a path on
 * this server ("/x", not "//host") or a data: image. */
static bool is_logo(const char *s)
{
    return (s[0] == '/' && s[1] != '/' && s[1] != '\\') || strncmp(s, "data:image/", 11) == 0;
}

/* plugin.portal.messages: {"fa": {"orders.title": "…"}, …}, the catalogue's additions and
 * changes an administrator made; null when unset or not that shape (a warning says where). */
static json_t *messages(rapport_host *h)
{
    char *text = pt_api->config(h, "messages");
    json_t *v = text ? json_loads(text, 0, NULL) : NULL;
    pt_api->free(text);
    const char *lang, *key;
    json_t *cat, *msg;
    if (v && !json_is_object(v)) {
        pt_api->log(h, RAPPORT_LOG_WARN, "plugin.portal.messages: not an object of languages "
                    "({\"fa\": {\"key\": \"text\"}}); the setting is ignored");
        goto bad;
    }
    json_object_foreach(v, lang, cat) {
        if (!json_is_object(cat)) {
            pt_api->log(h, RAPPORT_LOG_WARN, "plugin.portal.messages.%s: not an object of "
                        "texts; the setting is ignored", lang);
            goto bad;
        }
        json_object_foreach(cat, key, msg) {
            if (!json_is_string(msg)) {
                pt_api->log(h, RAPPORT_LOG_WARN, "plugin.portal.messages.%s.%s: not a text; "
                            "the setting is ignored", lang, key);
                goto bad;
            }
        }
    }
    return v ? v : json_null();
bad:
    json_decref(v);
    return json_null();
}

/* GET brand (public): the business's name, logo and colour from plugin.portal.brand_*, each
 * null when unset or unusable (a warning in the log says which setting and why). */
static int route_brand(rapport_host *h, const rapport_api *api, const rapport_request *req,
                       int *status, char **body, void *ud, char *err, size_t errlen)
{
    (void)req, (void)ud, (void)err, (void)errlen;
    char name[201], logo[8192], color[256];
    bool has_name = pt_setting_text(h, "brand_name", name, sizeof name);
    bool has_logo = pt_setting_text(h, "brand_logo", logo, sizeof logo);
    bool has_color = pt_setting_text(h, "brand_color", color, sizeof color);
    if (has_logo && !is_logo(logo)) {
        api->log(h, RAPPORT_LOG_WARN, "plugin.portal.brand_logo: not a path on this server "
                 "(\"/logo.png\") nor a data:image/ address; no logo is shown");
        has_logo = false;
    }
    if (has_color && !is_color(color)) {
        api->log(h, RAPPORT_LOG_WARN, "plugin.portal.brand_color: \"%s\" is not #rgb or "
                 "#rrggbb; the default colour is used", color);
        has_color = false;
    }
    json_t *ans = json_pack("{s:s?,s:s?,s:s?}", "name", has_name ? name : NULL, "logo",
                            has_logo ? logo : NULL, "color", has_color ? color : NULL);
    if (ans)
        json_object_set_new(ans, "messages", messages(h));
    return answer(api, status, body, 200, ans);
}

int pt_login_init(rapport_host *h, char *err, size_t errlen)
{
    if (sodium_init() < 0)
        return pt_fail(err, errlen, RAPPORT_EIO, "libsodium cannot start");
    stopped = false;
    const rapport_api *api = pt_api;
    if (api->public_route(h, "POST", "login/link", route_link, NULL) ||
        api->public_route(h, "POST", "login/token", route_token, NULL) ||
        api->public_route(h, "POST", "login/password", route_password_login, NULL) ||
        api->public_route(h, "POST", "login/finish", route_finish, NULL) ||
        api->route(h, "POST", "password", route_password, NULL) ||
        api->route(h, "POST", "logout", route_logout, NULL) ||
        api->route(h, "GET", "me", route_me, NULL) ||
        api->public_route(h, "GET", "brand", route_brand, NULL))
        return pt_fail(err, errlen, RAPPORT_EINVAL, "%s", api->last_error(h));
    return 0;
}
