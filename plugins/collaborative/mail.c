/*
 * mail.c — email as a channel: queuing a message (an interaction and a durable job), sending it
 * off the event loop, and taking one in (`rapport mail receive`, as an MTA hands it over):
 * matched to a contact by address, threaded by the per-thread reply address and the
 * Message-ID chain (never by a record id written in the mail), a reply on a ticket's thread
 * landing on the ticket; auto-replies stored but never answered; bounces marking the address.
 *
 * Settings: mail.smtp.url, mail.smtp.user, mail.smtp.password (a secret), mail.from
 * ("Support <support@example.com>" or an address); plugin.collaborative.reply_to (a base
 * address, "reply@example.com": each thread gets reply+TOKEN@example.com), unknown_sender
 * ("lead" default, "contact", "none"), open_tickets (true: a new conversation opens a ticket),
 * acknowledge (true: answer a new ticket automatically), auto_answer_cap (3 a day per sender),
 * max_message_bytes (25 MiB), max_attachment_bytes (10 MiB), send_attempts (8), retry_base
 * ("1m": the first retry's wait, doubled each time), smtp_timeout_ms (30000).
 *
 * Sending is at least once: the job marks the message "sending" before it hands it to SMTP and
 * "sent" after; a crash between the two leaves it "sending", and the recovery job sends it
 * again with the same Message-ID (a receiver that saw it once can tell).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "collaborative.h"
#include "mail.h"

enum { EX_DATAERR = 65, EX_TEMPFAIL = 75 };

/* ---- settings ----------------------------------------------------------------------------- */

/* mail.from as a name and an address. */
static int from_setting(rapport_host *h, char *name, size_t ncap, char *addr, size_t acap,
                        char *err, size_t errlen)
{
    char buf[200];
    if (!cm_config_text(h, "/mail.from", NULL, buf, sizeof buf) || !strchr(buf, '@'))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "mail.from is not set: `rapport config set "
                       "mail.from '\"Support <support@example.com>\"'`");
    char *lt = strchr(buf, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    if (lt && gt) {
        *gt = '\0';
        snprintf(addr, acap, "%s", lt + 1);
        *lt = '\0';
        char *e = lt;
        while (e > buf && isspace((unsigned char)e[-1]))
            *--e = '\0';
        char *s = buf;
        if (*s == '"' && e > s + 1 && e[-1] == '"')
            s++, e[-1] = '\0';
        snprintf(name, ncap, "%s", s);
    } else {
        snprintf(addr, acap, "%s", buf);
        name[0] = '\0';
    }
    return 0;
}

static const char *domain_of(const char *addr)
{
    const char *at = strrchr(addr, '@');
    return at ? at + 1 : "localhost";
}

int64_t cm_config_int(rapport_host *h, const char *key, int64_t def)
{
    json_t *v = cm_config(h, key);
    int64_t n = json_is_integer(v) ? json_integer_value(v) : def;
    json_decref(v);
    return n;
}

bool cm_config_bool(rapport_host *h, const char *key, bool def)
{
    json_t *v = cm_config(h, key);
    bool b = json_is_boolean(v) ? json_is_true(v) : def;
    json_decref(v);
    return b;
}

/* The reply address of thread @p token ("reply+TOKEN@domain") into @p out, or "". */
static void reply_address(rapport_host *h, const char *token, char *out, size_t cap)
{
    char base[300];
    out[0] = '\0';
    if (!token || !*token || !cm_config_text(h, "reply_to", NULL, base, sizeof base))
        return;
    char *at = strchr(base, '@');
    if (!at)
        return;
    *at = '\0';
    snprintf(out, cap, "%s+%s@%s", base, token, at + 1);
}

/* ---- threads ------------------------------------------------------------------------------ */

/* A new thread (a random token of 24 letters and digits); its id into *id. */
int cm_thread_new(rapport_host *h, const char *subject, const char *channel, int64_t contact,
                  const char *root, int64_t *id, char *err, size_t errlen)
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    char token[25];
    unsigned char r[24];
    randombytes_buf(r, sizeof r);
    for (int i = 0; i < 24; i++)
        token[i] = alnum[r[i] % 36];
    token[24] = '\0';
    json_t *t = json_pack("{s:s,s:s,s:s,s:s?}", "subject", subject ? subject : "", "token", token,
                          "channel", channel, "root_message_id", root);
    if (contact > 0)
        json_object_set_new(t, "contact", json_integer(contact));
    char *text = json_dumps(t, JSON_COMPACT);
    json_decref(t);
    int rc = cm_api->create(h, "thread", text, id);
    free(text);
    return rc ? cm_host_fail(h, rc, err, errlen) : 0;
}

/* ---- sending ------------------------------------------------------------------------------ */

int cm_mail_queue(rapport_host *h, json_t *o, int64_t *id, char *msgid, size_t mcap, char *err,
                  size_t errlen)
{
    const char *to = json_string_value(json_object_get(o, "to"));
    if (!to || !strchr(to, '@'))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "to: an email address");
    /* The contact it goes to, by address; a template is filled in its language. */
    json_t *c = cm_find_one(h, "contact", "email", json_string(to));
    json_t *empty = json_object();
    int trc = cm_template_apply(h, o, c ? c : empty, err, errlen);
    json_decref(empty);
    if (trc) {
        json_decref(c);
        return trc;
    }
    const char *subject = json_string_value(json_object_get(o, "subject"));
    const char *body = json_string_value(json_object_get(o, "body"));
    const char *html = json_string_value(json_object_get(o, "html"));
    const char *purpose = json_string_value(json_object_get(o, "purpose"));
    if (!purpose)
        purpose = "service";
    int rc = 0;
    if (!subject)
        rc = cm_fail(err, errlen, RAPPORT_EINVAL, "subject: a message needs a subject");
    else if (!body && !html)
        rc = cm_fail(err, errlen, RAPPORT_EINVAL, "body: a message needs a text or html body");
    else if (strcmp(purpose, "service") && strcmp(purpose, "marketing"))
        rc = cm_fail(err, errlen, RAPPORT_EINVAL, "purpose: service or marketing");
    char fname[200], faddr[200];
    if (!rc)
        rc = from_setting(h, fname, sizeof fname, faddr, sizeof faddr, err, errlen);
    if (rc) {
        json_decref(c);
        return rc;
    }
    json_t *links = json_incref(json_object_get(o, "related"));
    if (!links)
        links = json_array();
    json_t *fields = json_pack("{s:s,s:s,s:s,s:s,s:s?,s:s?,s:s,s:s}", "channel", "email",
                               "direction", "out", "from_addr", faddr, "to_addr", to, "subject",
                               subject, "body", body ? body : "", "purpose", purpose, "status",
                               "queued");
    if (html)
        json_object_set_new(fields, "html", json_string(html));
    if ((rc = cm_mail_secret_redact(o, fields, err, errlen))) {
        json_decref(fields);
        json_decref(links);
        json_decref(c);
        return rc;
    }
    const char *lang = json_string_value(json_object_get(o, "language"));
    if (lang)
        json_object_set_new(fields, "language", json_string(lang));
    json_t *camp = json_object_get(o, "campaign");
    if (json_is_integer(camp))
        json_object_set(fields, "campaign", camp);
    const char *author = json_string_value(json_object_get(o, "author"));
    if (author && *author)
        json_object_set_new(fields, "author", json_string(author));
    if (c) {
        json_object_set(fields, "contact", json_object_get(c, "id"));
        char why[256];
        int ok = cm_consent(h, c, "email", purpose, why, sizeof why);
        if (ok != 1) {
            /* The refusal is recorded, and the caller told. */
            json_object_set_new(fields, "status", json_string("refused"));
            json_object_set_new(fields, "error", json_string(why));
            bool dup;
            int64_t rid;
            int arc = cm_interaction_add(h, fields, links, &rid, &dup, err, errlen);
            json_decref(c);
            if (arc)
                return arc;
            *id = rid;
            return cm_fail(err, errlen, RAPPORT_EVETO, "not sent to %s: %s (interaction %" PRId64
                           ")", to, why, rid);
        }
    }
    json_decref(c);
    if ((rc = cm_api->begin(h))) {
        json_decref(fields);
        json_decref(links);
        return cm_host_fail(h, rc, err, errlen);
    }
    /* A reply continues its thread: In-Reply-To and References from the message answered. */
    int64_t thread = 0;
    json_t *re = json_object_get(o, "reply_to");
    json_t *prev = json_is_integer(re) ? cm_json(cm_api->get(h, "interaction",
                                                             json_integer_value(re)))
                                       : NULL;
    if (json_is_integer(re) && !prev) {
        rc = cm_fail(err, errlen, RAPPORT_ENOTFOUND, "reply_to: %s", cm_api->last_error(h));
    } else if (prev) {
        thread = json_integer_value(json_object_get(prev, "thread"));
        const char *pm = json_string_value(json_object_get(prev, "external_id"));
        const char *pr = json_string_value(json_object_get(prev, "references"));
        if (pm && *pm) {
            char refs[4096];
            snprintf(refs, sizeof refs, "%s%s%s", pr && *pr ? pr : "", pr && *pr ? " " : "", pm);
            json_object_set_new(fields, "in_reply_to", json_string(pm));
            json_object_set_new(fields, "references", json_string(refs));
        }
        json_t *pl = cm_interaction_links(h, json_integer_value(re));
        size_t i;
        json_t *l;
        json_array_foreach(pl, i, l) json_array_append(links, l);
        json_decref(pl);
    }
    char mid[160];
    if (!rc && cm_message_id(domain_of(faddr), mid, sizeof mid))
        rc = cm_fail(err, errlen, RAPPORT_EINVAL, "mail.from: \"%s\" has no domain a "
                     "Message-ID can use", faddr);
    if (!rc && !thread)
        rc = cm_thread_new(h, subject, "email", json_integer_value(json_object_get(fields,
                                                                                "contact")),
                        mid, &thread, err, errlen);
    if (!rc) {
        json_object_set_new(fields, "thread", json_integer(thread));
        json_object_set_new(fields, "external_id", json_string(mid));
        bool dup;
        rc = cm_interaction_add(h, json_incref(fields), json_incref(links), id, &dup, err,
                                errlen);
    }
    if (!rc)
        rc = cm_mail_secret_keep(h, o, *id, err, errlen);
    if (!rc) {
        char payload[64], key[64];
        snprintf(payload, sizeof payload, "{\"interaction\": %" PRId64 "}", *id);
        snprintf(key, sizeof key, "mail:%" PRId64, *id);
        if ((rc = cm_api->schedule(h, "collaborative.mail_send", payload, 0, key)))
            rc = cm_host_fail(h, rc, err, errlen);
    }
    json_decref(prev);
    json_decref(fields);
    json_decref(links);
    if (rc) {
        cm_api->rollback(h);
        return rc;
    }
    if ((rc = cm_api->commit(h)))
        return cm_host_fail(h, rc, err, errlen);
    snprintf(msgid, mcap, "%s", mid);
    return 0;
}

/* The messages this process is sending (handed off the loop, or waiting their turn there):
 * the recovery job must not send them again. Touched on the loop only. */
enum { FLIGHT_MAX = 4096 };
static int64_t flight[FLIGHT_MAX];
static int nflight;

static bool in_flight(int64_t id)
{
    for (int i = 0; i < nflight; i++)
        if (flight[i] == id)
            return true;
    return false;
}

static void flight_end(int64_t id)
{
    for (int i = 0; i < nflight; i++)
        if (flight[i] == id) {
            flight[i] = flight[--nflight];
            return;
        }
}

/* One send handed off the loop: everything it needs, copied. */
typedef struct send {
    int64_t interaction, campaign;
    int attempts;
    cm_smtp smtp;
    char *url, *user, *password, *from, *rcpt, *msg;
    size_t len;
    int rc, permanent;
    char err[600];
} send_t;

static void send_free(send_t *s)
{
    if (s->password)
        sodium_memzero(s->password, strlen(s->password));
    free(s->url);
    free(s->user);
    free(s->password);
    free(s->from);
    free(s->rcpt);
    if (s->msg)
        sodium_memzero(s->msg, s->len); /* it may hold a secret (mail_secret.c) */
    free(s->msg);
    free(s);
}

static void send_work(void *ud)
{
    send_t *s = ud;
    s->rc = cm_smtp_send(&s->smtp, s->from, s->rcpt, s->msg, s->len, &s->permanent, s->err,
                         sizeof s->err);
}

/* Adds @p n to campaign @p id's counter @p field. */
void cm_campaign_count(rapport_host *h, int64_t id, const char *field, int n)
{
    if (id <= 0)
        return;
    json_t *c = cm_json(cm_api->get(h, "campaign", id));
    if (!c)
        return;
    char patch[120];
    snprintf(patch, sizeof patch, "{\"%s\": %lld}", field,
             (long long)(json_integer_value(json_object_get(c, field)) + n));
    json_decref(c);
    if (cm_api->update(h, "campaign", id, patch, 0))
        cm_api->log(h, RAPPORT_LOG_WARN, "campaign %" PRId64 ": cannot count %s: %s", id, field,
                    cm_api->last_error(h));
}

static void send_done(rapport_host *h, const rapport_api *api, void *ud)
{
    send_t *s = ud;
    flight_end(s->interaction);
    char now[RAPPORT_TIME_LEN];
    cm_now_text(h, now);
    json_t *patch;
    int64_t max = cm_config_int(h, "send_attempts", 8);
    bool retry = s->rc && !s->permanent && s->attempts < max;
    if (!s->rc)
        patch = json_pack("{s:s,s:s,s:n}", "status", "sent", "sent_at", now, "error");
    else
        patch = json_pack("{s:s,s:s}", "status", retry ? "queued" : "failed", "error", s->err);
    char *pt = json_dumps(patch, JSON_COMPACT);
    json_decref(patch);
    if (api->update(h, "interaction", s->interaction, pt, 0))
        api->log(h, RAPPORT_LOG_ERROR, "interaction %" PRId64 ": cannot record the send: %s",
                 s->interaction, api->last_error(h));
    free(pt);
    if (!retry)
        cm_mail_secret_drop(h, s->interaction);
    if (!s->rc) {
        cm_campaign_count(h, s->campaign, "sent_count", 1);
    } else if (retry) {
        /* retry_base (a minute), doubled each attempt, at most 64 of them. */
        char base[32];
        int64_t unit = 60000;
        cm_config_text(h, "retry_base", "1m", base, sizeof base);
        if (api->delay_parse(h, base, &unit) || unit <= 0)
            unit = 60000;
        int64_t delay = unit << (s->attempts - 1 < 6 ? s->attempts - 1 : 6);
        char payload[64], key[64];
        snprintf(payload, sizeof payload, "{\"interaction\": %" PRId64 "}", s->interaction);
        snprintf(key, sizeof key, "mail:%" PRId64, s->interaction);
        if (api->schedule(h, "collaborative.mail_send", payload, delay, key))
            api->log(h, RAPPORT_LOG_ERROR, "interaction %" PRId64 ": cannot retry: %s",
                     s->interaction, api->last_error(h));
        api->log(h, RAPPORT_LOG_WARN, "mail %" PRId64 " not sent (attempt %d, again in %llds): "
                 "%s", s->interaction, s->attempts, (long long)(delay / 1000), s->err);
    } else {
        cm_campaign_count(h, s->campaign, "failed_count", 1);
        api->log(h, RAPPORT_LOG_WARN, "mail %" PRId64 " failed for good: %s", s->interaction,
                 s->err);
    }
    send_free(s);
}

/* Builds interaction @p id's message and hands it to SMTP (off the loop in serve). */
int cm_mail_send_now(rapport_host *h, int64_t id, char *err, size_t errlen)
{
    int off = cm_refuse_offline(h, "sending mail now", err, errlen);
    if (off)
        return off;
    if (in_flight(id))
        return 0; /* being sent by this process already */
    if (nflight == FLIGHT_MAX)
        return cm_fail(err, errlen, RAPPORT_EIO, "%d messages are being sent: this one waits",
                       FLIGHT_MAX);
    json_t *it = cm_json(cm_api->get(h, "interaction", id));
    if (!it)
        return cm_fail(err, errlen, RAPPORT_ENOTFOUND, "%s", cm_api->last_error(h));
    const char *status = json_string_value(json_object_get(it, "status"));
    if (!status || (strcmp(status, "queued") && strcmp(status, "sending"))) {
        json_decref(it); /* sent, failed or refused already: nothing to do twice */
        return 0;
    }
    char fname[200], faddr[200], url[400], user[200], reply[400] = "";
    int rc = from_setting(h, fname, sizeof fname, faddr, sizeof faddr, err, errlen);
    if (!rc && !cm_config_text(h, "/mail.smtp.url", NULL, url, sizeof url))
        rc = cm_fail(err, errlen, RAPPORT_EINVAL, "mail.smtp.url is not set (smtp://host:port "
                     "or smtps://host:port)");
    if (rc) {
        json_decref(it);
        return rc;
    }
    cm_config_text(h, "/mail.smtp.user", "", user, sizeof user);
    json_t *pw = cm_config(h, "/mail.smtp.password");
    int64_t thread = json_integer_value(json_object_get(it, "thread"));
    json_t *th = thread ? cm_json(cm_api->get(h, "thread", thread)) : NULL;
    reply_address(h, json_string_value(json_object_get(th, "token")), reply, sizeof reply);
    json_decref(th);
    const char *purpose = json_string_value(json_object_get(it, "purpose"));
    int64_t campaign = json_integer_value(json_object_get(it, "campaign"));
    char unsub[600] = "";
    if (purpose && strcmp(purpose, "marketing") == 0)
        cm_unsubscribe_url(h, id, unsub, sizeof unsub);
    const char *at = json_string_value(json_object_get(it, "at"));
    int64_t date = 0;
    if (at)
        cm_api->time_parse(h, at, &date);
    cm_outgoing m = {
        .from_name = fname[0] ? fname : NULL, .from_addr = faddr,
        .reply_to = reply[0] ? reply : NULL,
        .to_addr = json_string_value(json_object_get(it, "to_addr")),
        .subject = json_string_value(json_object_get(it, "subject")),
        .text = json_string_value(json_object_get(it, "body")),
        .html = json_string_value(json_object_get(it, "html")),
        .message_id = json_string_value(json_object_get(it, "external_id")),
        .in_reply_to = json_string_value(json_object_get(it, "in_reply_to")),
        .references = json_string_value(json_object_get(it, "references")),
        .date_ms = date ? date : cm_api->now_ms(h),
        .list_unsubscribe = unsub[0] ? unsub : NULL,
        .language = json_string_value(json_object_get(it, "language")),
    };
    if (m.text && !*m.text && m.html)
        m.text = NULL;
    /* The engine's own mail: an answer to a message is auto-replied, the rest (a digest)
     * auto-generated (RFC 3834), so other robots do not answer it. */
    const char *author = json_string_value(json_object_get(it, "author"));
    if (author && strcmp(author, "rapport:auto") == 0)
        m.auto_submitted = CM_AUTO_REPLIED;
    else if (author && strncmp(author, "rapport:", 8) == 0)
        m.auto_submitted = CM_AUTO_GENERATED;
    send_t *s = calloc(1, sizeof *s);
    char *msg = NULL, *ftext = NULL, *fhtml = NULL;
    size_t len = 0;
    if (!s)
        rc = cm_fail(err, errlen, RAPPORT_ENOMEM, "out of memory");
    if (!rc)
        rc = cm_mail_secret_fill(h, id, &m.text, &m.html, &ftext, &fhtml, err, errlen);
    if (!rc)
        rc = cm_mime_build(&m, &msg, &len, err, errlen);
    cm_mail_secret_wipe(ftext, fhtml);
    if (rc) {
        free(s);
        cm_mail_secret_drop(h, id);
        json_decref(pw);
        json_decref(it);
        /* A message that cannot be built never will be: it fails for good. */
        char patch[700];
        json_t *pj = json_pack("{s:s,s:s}", "status", "failed", "error", err);
        char *t = json_dumps(pj, JSON_COMPACT);
        json_decref(pj);
        snprintf(patch, sizeof patch, "%s", t ? t : "{}");
        free(t);
        cm_api->update(h, "interaction", id, patch, 0);
        return RAPPORT_EINVAL;
    }
    s->interaction = id;
    s->campaign = campaign;
    s->attempts = (int)json_integer_value(json_object_get(it, "attempts")) + 1;
    s->url = strdup(url);
    s->user = user[0] ? strdup(user) : NULL;
    s->password = json_is_string(pw) ? strdup(json_string_value(pw)) : NULL;
    s->from = strdup(faddr);
    s->rcpt = strdup(m.to_addr ? m.to_addr : "");
    s->msg = msg;
    s->len = len;
    s->smtp = (cm_smtp){.url = s->url, .user = s->user, .password = s->password,
                        .timeout_ms = cm_config_int(h, "smtp_timeout_ms", 30000)};
    json_decref(pw);
    json_decref(it);
    char patch[120];
    snprintf(patch, sizeof patch, "{\"status\": \"sending\", \"attempts\": %d}", s->attempts);
    if ((rc = cm_api->update(h, "interaction", id, patch, 0))) {
        send_free(s);
        return cm_host_fail(h, rc, err, errlen);
    }
    flight[nflight++] = id;
    if ((rc = cm_api->offload(h, send_work, send_done, s))) {
        flight_end(id);
        send_free(s);
        return cm_host_fail(h, rc, err, errlen);
    }
    return 0;
}

static int send_job(rapport_host *h, const rapport_api *api, const rapport_job *job, void *ud,
                    char *err, size_t errlen)
{
    (void)ud;
    (void)api;
    json_t *p = json_loads(job->payload, 0, NULL);
    int64_t id = json_integer_value(json_object_get(p, "interaction"));
    json_decref(p);
    if (id <= 0)
        return 0; /* nothing any retry could send */
    int rc = cm_mail_send_now(h, id, err, errlen);
    /* A message that cannot be built was marked failed: retrying the job will not help. */
    return rc == RAPPORT_EINVAL || rc == RAPPORT_ENOTFOUND ? 0 : rc;
}

/* Messages a crash left "sending" for more than ten minutes go out again (not those this
 * process is still sending: a slow relay, or a queue behind one). */
static int recover_job(rapport_host *h, const rapport_api *api, const rapport_job *job, void *ud,
                       char *err, size_t errlen)
{
    (void)ud;
    (void)job;
    char cut[RAPPORT_TIME_LEN];
    api->time_format(h, api->now_ms(h) - 600000, cut);
    json_t *rows = cm_find(h, "interaction", json_pack("{s:{s:s,s:s,s:{s:s}},s:i}", "where",
                                                       "channel", "email", "status", "sending",
                                                       "updated_at", "lt", cut, "limit", 500),
                           err, errlen);
    if (!rows)
        return RAPPORT_EIO;
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) {
        int64_t id = json_integer_value(json_object_get(r, "id"));
        char payload[64], key[64];
        snprintf(payload, sizeof payload, "{\"interaction\": %" PRId64 "}", id);
        snprintf(key, sizeof key, "mail:%" PRId64, id);
        if (api->schedule(h, "collaborative.mail_send", payload, 0, key) &&
            !strstr(api->last_error(h), "already"))
            api->log(h, RAPPORT_LOG_WARN, "mail %" PRId64 ": %s", id, api->last_error(h));
    }
    json_decref(rows);
    return 0;
}

/* ---- doors -------------------------------------------------------------------------------- */

/* crm.collaborative.send_email{to, subject, body, html, related, purpose, reply_to}
 * -> {id, message_id} */
static int lua_send_email(rapport_host *h, const rapport_api *api, const char *args,
                          char **result, void *ud, char *err, size_t errlen)
{
    (void)api;
    (void)ud;
    json_t *a = json_loads(args, 0, NULL);
    json_t *o = json_incref(json_array_get(a, 0));
    json_decref(a);
    if (!json_is_object(o)) {
        json_decref(o);
        return cm_fail(err, errlen, RAPPORT_EINVAL, "send_email{to=, subject=, body=, html=, "
                       "related=, purpose=, reply_to=}");
    }
    /* related = "contact:7", {"contact", 7} or a list of them. */
    json_t *rel = json_object_get(o, "related"), *links = json_array();
    if (json_is_string(rel)) {
        char e[64];
        int64_t rid;
        if (cm_parse_target(json_string_value(rel), e, sizeof e, &rid) == 0)
            json_array_append_new(links, json_pack("[s,I]", e, (json_int_t)rid));
    } else if (json_is_array(rel) && json_is_string(json_array_get(rel, 0))) {
        json_array_append(links, rel);
    } else if (json_is_array(rel)) {
        json_array_extend(links, rel);
    }
    json_object_set_new(o, "related", links);
    int64_t id = 0;
    char mid[160];
    int rc = cm_mail_queue(h, o, &id, mid, sizeof mid, err, errlen);
    json_decref(o);
    if (!rc)
        *result = cm_dump(json_pack("{s:I,s:s}", "id", (json_int_t)id, "message_id", mid));
    return rc;
}

static char *read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        cm_fail(err, errlen, RAPPORT_EINVAL, "%s: cannot be read", path);
        return NULL;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        if (n == cap) {
            if (cap > max) {
                free(buf);
                buf = NULL;
                cm_fail(err, errlen, RAPPORT_EINVAL, "%s: larger than %zu bytes", path, max);
                break;
            }
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (f != stdin)
        fclose(f);
    if (buf) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

static int cmd_mail_send(rapport_host *h, int argc, char **argv)
{
    json_t *o = json_object(), *links = json_array();
    bool now = false, bad = false;
    char err[700];
    char *html = NULL;
    for (int i = 2; i < argc && !bad; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (strcmp(a, "--now") == 0)
            now = true;
        else if (has && (!strcmp(a, "--to") || !strcmp(a, "--subject") || !strcmp(a, "--body") ||
                         !strcmp(a, "--purpose") || !strcmp(a, "--author") ||
                         !strcmp(a, "--template") || !strcmp(a, "--record")))
            json_object_set_new(o, a + 2, json_string(argv[++i]));
        else if (has && !strcmp(a, "--reply-to")) {
            char *end;
            long long r = strtoll(argv[++i], &end, 10);
            bad = *end || r <= 0;
            json_object_set_new(o, "reply_to", json_integer(r));
        } else if (has && !strcmp(a, "--html")) {
            size_t len;
            free(html);
            if (!(html = read_file(argv[++i], 10u << 20, &len, err, sizeof err))) {
                fprintf(stderr, "rapport: mail send: --html %s\n", err);
                json_decref(o);
                json_decref(links);
                return 1;
            }
            json_object_set_new(o, "html", json_string(html));
        } else if (has && !strcmp(a, "--related")) {
            char e[64];
            int64_t rid;
            bad = cm_parse_target(argv[++i], e, sizeof e, &rid) != 0;
            if (!bad)
                json_array_append_new(links, json_pack("[s,I]", e, (json_int_t)rid));
        } else
            bad = true;
    }
    free(html);
    json_object_set_new(o, "related", links);
    if (bad || !json_object_get(o, "to")) {
        json_decref(o);
        fprintf(stderr, "usage: rapport mail send --to ADDR (--subject TEXT --body TEXT "
                        "[--html FILE] | --template NAME [--record ENTITY:ID]) "
                        "[--related ENTITY:ID] [--purpose service|marketing] "
                        "[--reply-to INTERACTION] [--now]\n");
        return 2;
    }
    int64_t id = 0;
    char mid[160];
    int rc = cm_mail_queue(h, o, &id, mid, sizeof mid, err, sizeof err);
    json_decref(o);
    if (rc) {
        fprintf(stderr, "rapport: mail send: %s\n", err);
        return 1;
    }
    printf("interaction %" PRId64 " %s queued\n", id, mid);
    if (!now)
        return 0;
    char key[64];
    snprintf(key, sizeof key, "mail:%" PRId64, id);
    cm_api->cancel(h, key);
    if ((rc = cm_mail_send_now(h, id, err, sizeof err))) {
        fprintf(stderr, "rapport: mail send: %s\n", err);
        return 1;
    }
    json_t *it = cm_json(cm_api->get(h, "interaction", id));
    const char *st = json_string_value(json_object_get(it, "status"));
    int out = st && strcmp(st, "sent") == 0 ? 0 : 1;
    if (out)
        fprintf(stderr, "rapport: mail send: interaction %" PRId64 " is %s: %s\n", id,
                st ? st : "?", json_string_value(json_object_get(it, "error")) ?: "");
    else
        printf("interaction %" PRId64 " sent\n", id);
    json_decref(it);
    return out;
}

static int cmd_mail_receive(rapport_host *h, int argc, char **argv)
{
    (void)argv;
    if (argc != 2) {
        fprintf(stderr, "usage: rapport mail receive < MESSAGE\n");
        return 2;
    }
    char err[700];
    size_t len = 0;
    char *msg = read_file("-", (size_t)cm_config_int(h, "max_message_bytes", 25 << 20), &len,
                          err, sizeof err);
    if (!msg) {
        fprintf(stderr, "rapport: mail receive: %s\n", err);
        return EX_DATAERR;
    }
    json_t *report = NULL;
    int rc = cm_mail_receive(h, msg, len, &report, err, sizeof err);
    free(msg);
    if (rc) {
        fprintf(stderr, "rapport: mail receive: %s\n", err);
        /* A message we cannot read is the sender's; a store that failed is ours: try again. */
        return rc == RAPPORT_EINVAL ? EX_DATAERR : EX_TEMPFAIL;
    }
    char *t = json_dumps(report, JSON_COMPACT);
    printf("%s\n", t ? t : "{}");
    free(t);
    json_decref(report);
    return 0;
}

static int cmd_mail(rapport_host *h, const rapport_api *api, int argc, char **argv, void *ud)
{
    (void)api;
    (void)ud;
    if (argc >= 2 && strcmp(argv[1], "send") == 0)
        return cmd_mail_send(h, argc, argv);
    if (argc >= 2 && strcmp(argv[1], "receive") == 0)
        return cmd_mail_receive(h, argc, argv);
    if (argc >= 2 && strcmp(argv[1], "poll") == 0)
        return cm_imap_command(h, argc, argv);
    fprintf(stderr, "usage: rapport mail send --to ADDR --subject TEXT --body TEXT [--now] …\n"
                    "       rapport mail receive < MESSAGE\n"
                    "       rapport mail poll [NAME] [--json]\n");
    return 2;
}

int cm_mail_init(rapport_host *h, char *err, size_t errlen)
{
    const rapport_api *api = cm_api;
    if (sodium_init() < 0)
        return cm_fail(err, errlen, RAPPORT_EIO, "libsodium cannot start");
    if (api->lua_function(h, "send_email", lua_send_email, NULL) ||
        api->command(h, "mail", "mail send --to ADDR --subject TEXT --body TEXT [--now] | "
                                "mail receive < MESSAGE | mail poll [NAME]", cmd_mail, NULL) ||
        api->job(h, "collaborative.mail_send", send_job, NULL) ||
        api->job(h, "collaborative.mail_recover", recover_job, NULL) ||
        api->every(h, "collaborative.mail_recover", "*/5 * * * *", "UTC",
                   "collaborative.mail_recover", "{}"))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "%s", api->last_error(h));
    return 0;
}
