/*
 * receive.c — one incoming email, as `rapport mail receive` is handed it: read with GMime
 * (mail_in.c), then dropped (a duplicate), recorded as a bounce (the address marked, the
 * message it answers marked bounced, never a ticket), or stored as an interaction on its
 * thread and its records. The thread is found by the per-thread reply address first, then by
 * In-Reply-To and References matched against Message-IDs this engine stored; a record id
 * written in the mail is never trusted. A reply on a ticket's thread lands on the ticket and
 * counts as the customer's answer (a ticket waiting on them opens again). An auto-reply is
 * stored but never answered, and automatic answers to one sender are capped per day.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "collaborative.h"
#include "mail.h"

/* The interaction that stored Message-ID @p mid (owned), or NULL. */
static json_t *by_message_id(rapport_host *h, const char *mid)
{
    if (!mid || !*mid)
        return NULL;
    char key[600];
    snprintf(key, sizeof key, "email:%s", mid);
    return cm_find_one(h, "interaction", "ext_key", json_string(key));
}

/* Whether the sender of @p m took part in the conversation of @p prev: its author, one it was
 * written to, or the thread's contact. */
static bool participant(rapport_host *h, const cm_incoming *m, json_t *prev, int64_t contact)
{
    const char *from = m->from_addr;
    const char *pf = json_string_value(json_object_get(prev, "from_addr"));
    const char *pt = json_string_value(json_object_get(prev, "to_addr"));
    if (from && ((pf && strcasecmp(pf, from) == 0) || (pt && strcasestr(pt, from))))
        return true;
    int64_t thread = json_integer_value(json_object_get(prev, "thread"));
    json_t *t = thread ? cm_json(cm_api->get(h, "thread", thread)) : NULL;
    int64_t tc = json_integer_value(json_object_get(t, "contact"));
    json_decref(t);
    return contact && tc == contact;
}

/*
 * The thread of @p m: by reply address (a secret token: whoever holds it may write to the
 * thread), then by the Message-ID chain — which anyone can copy into a header, so it counts
 * only when the sender took part in that conversation; 0 when new.
 */
static int64_t find_thread(rapport_host *h, const cm_incoming *m, int64_t contact,
                           json_t *report)
{
    char base[300];
    if (cm_config_text(h, "reply_to", NULL, base, sizeof base)) {
        char *at = strchr(base, '@');
        if (at) {
            *at = '\0';
            for (int i = 0; i < m->nto; i++) {
                char token[80];
                if (!cm_reply_token(m->to[i], base, at + 1, token, sizeof token))
                    continue;
                json_t *t = cm_find_one(h, "thread", "token", json_string(token));
                int64_t id = json_integer_value(json_object_get(t, "id"));
                json_decref(t);
                if (id)
                    return id;
            }
        }
    }
    /* In-Reply-To first, then References newest first: a client that dropped one still
     * kept the other. */
    json_t *prev = by_message_id(h, m->in_reply_to);
    for (int i = m->nrefs - 1; !prev && i >= 0; i--)
        prev = by_message_id(h, m->references[i]);
    int64_t id = json_integer_value(json_object_get(prev, "thread"));
    if (id && !participant(h, m, prev, contact)) {
        json_object_set_new(report, "thread_refused", json_string(
            "the message names another conversation its sender took no part in"));
        id = 0;
    }
    json_decref(prev);
    return id;
}

static int patch(rapport_host *h, const char *entity, int64_t id, json_t *p, char *err,
                 size_t errlen)
{
    char *t = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    int rc = t ? cm_api->update(h, entity, id, t, 0) : RAPPORT_ENOMEM;
    free(t);
    return rc ? cm_host_fail(h, rc, err, errlen) : 0;
}

/*
 * A bounce marks an address only when it answers a message this engine sent to that address
 * (its Message-ID is in the report): anyone can write a delivery report naming a customer's
 * address, and a forged one must not stop all mail to them.
 */
static int on_bounce(rapport_host *h, const cm_incoming *m, json_t *report, char *err,
                     size_t errlen)
{
    char now[RAPPORT_TIME_LEN];
    cm_now_text(h, now);
    json_t *marked = json_array();
    int rc = 0;
    json_t *orig = by_message_id(h, m->bounced_message_id);
    const char *dir = json_string_value(json_object_get(orig, "direction"));
    const char *sent_to = json_string_value(json_object_get(orig, "to_addr"));
    bool ours = orig && dir && strcmp(dir, "out") == 0 && sent_to;
    for (int i = 0; ours && i < m->nbounced && !rc && m->bounce_permanent; i++) {
        if (strcasecmp(m->bounced[i], sent_to) != 0)
            continue; /* not who that message went to */
        json_t *cs = cm_find(h, "contact", json_pack("{s:{s:s},s:i}", "where", "email",
                                                     m->bounced[i], "limit", 100), err, errlen);
        size_t k;
        json_t *c;
        json_array_foreach(cs, k, c) {
            int64_t cid = json_integer_value(json_object_get(c, "id"));
            if (!rc && !json_is_true(json_object_get(c, "email_bouncing")))
                rc = patch(h, "contact", cid, json_pack("{s:b,s:s}", "email_bouncing", 1,
                                                        "email_bounced_at", now), err, errlen);
            json_array_append_new(marked, json_integer(cid));
        }
        json_decref(cs);
    }
    if (!rc && ours) {
        int64_t oid = json_integer_value(json_object_get(orig, "id"));
        const char *st = json_string_value(json_object_get(orig, "status"));
        if (m->bounce_permanent && st && strcmp(st, "bounced") != 0) {
            char why[200];
            snprintf(why, sizeof why, "bounced: %s", m->bounce_status ? m->bounce_status : "");
            rc = patch(h, "interaction", oid, json_pack("{s:s,s:s}", "status", "bounced",
                                                        "error", why), err, errlen);
            if (!rc)
                cm_campaign_count(h, json_integer_value(json_object_get(orig, "campaign")),
                                  "bounce_count", 1);
        }
        json_object_set_new(report, "interaction", json_integer(oid));
    } else if (!ours) {
        json_object_set_new(report, "unverified", json_string(
            "the report names no message this engine sent: no address marked"));
    }
    json_decref(orig);
    json_object_set_new(report, "dropped", json_string("bounce"));
    json_object_set_new(report, "bounced_message_id", m->bounced_message_id
                                                          ? json_string(m->bounced_message_id)
                                                          : json_null());
    json_object_set_new(report, "permanent", json_boolean(m->bounce_permanent));
    json_object_set_new(report, "status", m->bounce_status ? json_string(m->bounce_status)
                                                           : json_null());
    json_object_set_new(report, "contacts_marked", marked);
    return rc;
}

/* Who the sender is: a contact, else (per unknown_sender) a new lead or contact, else none. */
static int match_sender(rapport_host *h, const cm_incoming *m, json_t *links, int64_t *contact,
                        json_t *report, char *err, size_t errlen)
{
    *contact = 0;
    if (!m->from_addr)
        return 0;
    json_t *c = cm_find_one(h, "contact", "email", json_string(m->from_addr));
    if (c) {
        *contact = json_integer_value(json_object_get(c, "id"));
        json_decref(c);
        return 0;
    }
    char mode[32];
    cm_config_text(h, "unknown_sender", "lead", mode, sizeof mode);
    if (strcmp(mode, "lead") && strcmp(mode, "contact"))
        return 0;
    json_t *l = strcmp(mode, "lead") == 0 ? cm_find_one(h, "lead", "email",
                                                        json_string(m->from_addr))
                                          : NULL;
    int64_t id = json_integer_value(json_object_get(l, "id"));
    json_decref(l);
    if (!id) {
        /* A name from the display name, else the address's local part. */
        char name[200];
        snprintf(name, sizeof name, "%s", m->from_name && *m->from_name ? m->from_name
                                                                        : m->from_addr);
        char *at = m->from_name && *m->from_name ? NULL : strchr(name, '@');
        if (at)
            *at = '\0';
        json_t *f = json_pack("{s:s,s:s,s:s}", "last_name", name, "email", m->from_addr,
                              "source", "email");
        char *t = json_dumps(f, JSON_COMPACT);
        json_decref(f);
        int rc = cm_api->create(h, mode, t, &id);
        free(t);
        if (rc)
            return cm_host_fail(h, rc, err, errlen);
        json_object_set_new(report, "created", json_pack("[s,I]", mode, (json_int_t)id));
    }
    if (strcmp(mode, "contact") == 0)
        *contact = id;
    else
        json_array_append_new(links, json_pack("[s,I]", "lead", (json_int_t)id));
    return 0;
}

/* The store keeps at most a mebibyte in one text value: longer text is cut at a letter's
 * boundary (and kept whole as an attachment), a large file is kept in parts. */
enum { TEXT_MAX = 1000000, PART_RAW = 786000 /* a multiple of 3: the parts' base64 joins */,
       DESCRIPTION_MAX = 60000, SUBJECT_MAX = 2000 };

/* The length of @p s cut to at most @p max bytes, not inside a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* A copy of @p s cut to @p max bytes with @p note after the cut (when cut). */
static char *cut_copy(const char *s, size_t max, const char *note)
{
    size_t n = utf8_cut(s ? s : "", max);
    bool cut = s && n < strlen(s);
    char *out = malloc(n + (cut ? strlen(note) : 0) + 1);
    if (!out)
        return NULL;
    memcpy(out, s ? s : "", n);
    out[n] = '\0';
    if (cut)
        strcat(out, note);
    return out;
}

int cm_attachment_store(rapport_host *h, int64_t id, const char *filename, const char *type,
                        const char *data, size_t len, char *err, size_t errlen)
{
    bool parts = len > PART_RAW;
    size_t first = parts ? 0 : len;
    size_t b64 = sodium_base64_encoded_len(parts ? PART_RAW : len, sodium_base64_VARIANT_ORIGINAL);
    char *enc = malloc(b64);
    if (!enc)
        return cm_fail(err, errlen, RAPPORT_ENOMEM, "out of memory");
    sodium_bin2base64(enc, b64, (const unsigned char *)data, first,
                      sodium_base64_VARIANT_ORIGINAL);
    json_t *f = json_pack("{s:I,s:s?,s:s?,s:I,s:I}", "interaction", (json_int_t)id, "filename",
                          filename, "content_type", type, "size", (json_int_t)len, "parts",
                          (json_int_t)(parts ? (len + PART_RAW - 1) / PART_RAW : 0));
    if (!parts)
        json_object_set_new(f, "data", json_string(enc));
    char *t = json_dumps(f, JSON_COMPACT);
    json_decref(f);
    int64_t aid = 0;
    int rc = t ? cm_api->create(h, "attachment", t, &aid) : RAPPORT_ENOMEM;
    free(t);
    for (size_t off = 0, seq = 1; !rc && parts && off < len; off += PART_RAW, seq++) {
        size_t n = len - off < PART_RAW ? len - off : PART_RAW;
        sodium_bin2base64(enc, b64, (const unsigned char *)data + off, n,
                          sodium_base64_VARIANT_ORIGINAL);
        json_t *p = json_pack("{s:I,s:I,s:s}", "attachment", (json_int_t)aid, "seq",
                              (json_int_t)seq, "data", enc);
        char *pt = json_dumps(p, JSON_COMPACT);
        json_decref(p);
        rc = pt ? cm_api->create(h, "attachment_part", pt, NULL) : RAPPORT_ENOMEM;
        free(pt);
    }
    free(enc);
    return rc ? cm_host_fail(h, rc, err, errlen) : 0;
}

/* Stores the message's attachments (each within max_attachment_bytes), and its text and HTML
 * whole when they were too long for the interaction. */
static int store_attachments(rapport_host *h, const cm_incoming *m, int64_t id, json_t *report,
                             char *err, size_t errlen)
{
    size_t max = (size_t)cm_config_int(h, "max_attachment_bytes", 10 << 20);
    json_t *skipped = json_array();
    int rc = 0;
    for (int i = 0; i < m->natt && !rc; i++) {
        const cm_in_attachment *a = &m->att[i];
        if (a->len > max)
            json_array_append_new(skipped, json_string(a->filename ? a->filename : "?"));
        else
            rc = cm_attachment_store(h, id, a->filename, a->content_type, a->data, a->len, err,
                                     errlen);
    }
    if (!rc && m->text && strlen(m->text) > TEXT_MAX)
        rc = cm_attachment_store(h, id, "message.txt", "text/plain; charset=utf-8", m->text,
                        strlen(m->text), err, errlen);
    if (!rc && m->html && strlen(m->html) > TEXT_MAX)
        rc = cm_attachment_store(h, id, "message.html", "text/html; charset=utf-8", m->html,
                        strlen(m->html), err, errlen);
    if (json_array_size(skipped))
        json_object_set_new(report, "attachments_too_large", skipped);
    else
        json_decref(skipped);
    return rc;
}

/* A new ticket for a new conversation (open_tickets), its thread pointed at it. */
static int open_ticket(rapport_host *h, const cm_incoming *m, int64_t contact, int64_t thread,
                       int64_t *ticket, char *err, size_t errlen)
{
    /* The ticket says what it is about; the whole message is its interaction. */
    char *subject = cut_copy(*m->subject ? m->subject : "(no subject)", SUBJECT_MAX, "…");
    char *desc = cut_copy(m->text, DESCRIPTION_MAX, "\n[…]");
    json_t *f = json_pack("{s:s?,s:s?}", "subject", subject, "description", desc);
    free(subject);
    free(desc);
    if (contact)
        json_object_set_new(f, "contact", json_integer(contact));
    char *t = json_dumps(f, JSON_COMPACT);
    json_decref(f);
    int rc = t ? cm_api->create(h, "ticket", t, ticket) : RAPPORT_ENOMEM;
    free(t);
    if (rc)
        return cm_host_fail(h, rc, err, errlen);
    return patch(h, "thread", thread, json_pack("{s:I}", "ticket", (json_int_t)*ticket), err,
                 errlen);
}

/* Whether @p addr may get another automatic answer today (auto_answer_cap a day). */
static bool under_cap(rapport_host *h, const char *addr)
{
    char since[RAPPORT_TIME_LEN];
    cm_api->time_format(h, cm_api->now_ms(h) - 86400000LL, since);
    json_t *w = json_pack("{s:s,s:s,s:s,s:{s:s}}", "channel", "email", "to_addr", addr, "author",
                          "rapport:auto", "created_at", "ge", since);
    char *wt = json_dumps(w, JSON_COMPACT);
    json_decref(w);
    int64_t n = 0;
    cm_api->count(h, "interaction", wt, &n);
    free(wt);
    return n < cm_config_int(h, "auto_answer_cap", 3);
}

/* Acknowledges a new ticket to its sender (acknowledge), within the cap, as an auto-reply. */
static void acknowledge(rapport_host *h, const cm_incoming *m, int64_t ticket, int64_t in_id,
                        json_t *report)
{
    if (!cm_config_bool(h, "acknowledge", false) || !m->from_addr)
        return;
    if (!under_cap(h, m->from_addr)) {
        json_object_set_new(report, "acknowledged", json_string("capped"));
        return;
    }
    char subject[400], body[600], err[400], mid[160];
    snprintf(subject, sizeof subject, "Re: %s [ticket %" PRId64 "]", m->subject, ticket);
    snprintf(body, sizeof body, "We received your message and opened ticket %" PRId64 ". "
             "Reply to this email to add to it.", ticket);
    json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:s,s:[[s,I]]}", "to", m->from_addr, "subject",
                          subject, "body", body, "reply_to", (json_int_t)in_id, "author",
                          "rapport:auto", "related", "ticket", (json_int_t)ticket);
    int64_t id;
    if (cm_mail_queue(h, o, &id, mid, sizeof mid, err, sizeof err) == 0)
        json_object_set_new(report, "acknowledged", json_integer(id));
    else
        cm_api->log(h, RAPPORT_LOG_WARN, "ticket %" PRId64 ": no acknowledgement: %s", ticket,
                    err);
    json_decref(o);
}

static int store_message(rapport_host *h, const cm_incoming *m, json_t *report, int64_t *in_id,
                         int64_t *ticket_out, char *err, size_t errlen)
{
    json_t *links = json_array();
    int64_t contact = 0, ticket = 0;
    int rc = match_sender(h, m, links, &contact, report, err, errlen);
    int64_t thread = rc ? 0 : find_thread(h, m, contact, report);
    json_t *th = thread ? cm_json(cm_api->get(h, "thread", thread)) : NULL;
    if (!rc && thread) {
        ticket = json_integer_value(json_object_get(th, "ticket"));
        /* A thread's records: its ticket; the rest come from the message answered. */
        if (ticket)
            json_array_append_new(links, json_pack("[s,I]", "ticket", (json_int_t)ticket));
    } else if (!rc) {
        rc = cm_api->begin(h) ? cm_host_fail(h, RAPPORT_EIO, err, errlen) : 0;
        if (!rc) {
            char *mid = m->message_id;
            rc = cm_thread_new(h, m->subject, "email", contact, mid, &thread, err, errlen);
            if (!rc && m->kind == CM_IN_MESSAGE && cm_config_bool(h, "open_tickets", true))
                rc = open_ticket(h, m, contact, thread, &ticket, err, errlen);
            if (!rc && ticket)
                json_array_append_new(links, json_pack("[s,I]", "ticket", (json_int_t)ticket));
            if (rc)
                cm_api->rollback(h);
            else if (cm_api->commit(h))
                rc = cm_host_fail(h, RAPPORT_EIO, err, errlen);
        }
    }
    json_decref(th);
    if (rc) {
        json_decref(links);
        return rc;
    }
    char to[600] = "";
    for (int i = 0, n = 0; i < m->nto; i++)
        n += snprintf(to + n, sizeof to - (size_t)n, "%s%s", i ? ", " : "", m->to[i]),
            n = n < (int)sizeof to ? n : (int)sizeof to - 1;
    char refs[4096] = "";
    for (int i = 0, n = 0; i < m->nrefs; i++)
        n += snprintf(refs + n, sizeof refs - (size_t)n, "%s%s", i ? " " : "", m->references[i]),
            n = n < (int)sizeof refs ? n : (int)sizeof refs - 1;
    char *subject = cut_copy(m->subject, SUBJECT_MAX, "…");
    char *body = cut_copy(m->text, TEXT_MAX, "\n[… cut here: the whole text is the attachment "
                                             "message.txt]");
    json_t *f = json_pack("{s:s,s:s,s:s,s:s?,s:s?,s:s,s:I}", "channel", "email", "direction",
                          "in", "status", "received", "subject", subject, "body", body, "to_addr",
                          to, "thread", (json_int_t)thread);
    free(subject);
    free(body);
    if (m->from_addr) {
        json_object_set_new(f, "from_addr", json_string(m->from_addr));
        json_object_set_new(f, "author", json_string(m->from_addr));
    }
    if (m->html && strlen(m->html) <= TEXT_MAX)
        json_object_set_new(f, "html", json_string(m->html)); /* else kept as message.html */
    if (m->message_id)
        json_object_set_new(f, "external_id", json_string(m->message_id));
    if (m->in_reply_to)
        json_object_set_new(f, "in_reply_to", json_string(m->in_reply_to));
    if (refs[0])
        json_object_set_new(f, "references", json_string(refs));
    if (m->date_ms > 0) {
        char at[RAPPORT_TIME_LEN];
        if (cm_api->time_format(h, m->date_ms, at) == 0 && m->date_ms <= cm_api->now_ms(h))
            json_object_set_new(f, "at", json_string(at));
    }
    if (contact)
        json_object_set_new(f, "contact", json_integer(contact));
    bool dup;
    rc = cm_api->begin(h) ? cm_host_fail(h, RAPPORT_EIO, err, errlen) : 0;
    if (!rc)
        rc = cm_interaction_add(h, f, json_incref(links), in_id, &dup, err, errlen);
    else
        json_decref(f);
    if (!rc)
        rc = store_attachments(h, m, *in_id, report, err, errlen);
    if (!rc && thread) {
        char now[RAPPORT_TIME_LEN];
        cm_now_text(h, now);
        rc = patch(h, "thread", thread, json_pack("{s:s}", "last_at", now), err, errlen);
    }
    /* The customer answered: a ticket waiting on them is open again. */
    json_t *tk = !rc && ticket ? cm_json(cm_api->get(h, "ticket", ticket)) : NULL;
    const char *st = json_string_value(json_object_get(tk, "status"));
    if (!rc && st && m->kind == CM_IN_MESSAGE && strcmp(st, "pending") == 0)
        rc = patch(h, "ticket", ticket, json_pack("{s:s}", "status", "open"), err, errlen);
    json_decref(tk);
    if (rc)
        cm_api->rollback(h);
    else if (cm_api->commit(h))
        rc = cm_host_fail(h, RAPPORT_EIO, err, errlen);
    if (!rc) {
        json_object_set_new(report, "interaction", json_integer(*in_id));
        json_object_set_new(report, "contact", contact ? json_integer(contact) : json_null());
        json_object_set_new(report, "thread", json_integer(thread));
        json_object_set_new(report, "linked", cm_interaction_links(h, *in_id));
    }
    json_decref(links);
    *ticket_out = ticket;
    return rc;
}

int cm_mail_receive(rapport_host *h, const char *msg, size_t len, json_t **report, char *err,
                    size_t errlen)
{
    *report = NULL;
    cm_incoming m;
    if (cm_mime_parse(msg, len, &m, err, errlen))
        return RAPPORT_EINVAL;
    json_t *r = json_pack("{s:s?,s:s?}", "from", m.from_addr, "message_id", m.message_id);
    int rc = 0;
    json_t *was = by_message_id(h, m.message_id);
    if (was) {
        /* Delivered twice (an MTA's retry): stored once. */
        json_object_set_new(r, "dropped", json_string("duplicate"));
        json_object_set(r, "interaction", json_object_get(was, "id"));
        json_decref(was);
    } else if (m.kind == CM_IN_BOUNCE) {
        rc = on_bounce(h, &m, r, err, errlen);
    } else {
        int64_t id = 0, ticket = 0;
        /* One transaction: a store that fails half-way keeps no thread or ticket of it, so
         * the MTA's retry (exit 75) does not make them twice. */
        rc = cm_api->begin(h) ? cm_host_fail(h, RAPPORT_EIO, err, errlen) : 0;
        if (!rc) {
            rc = store_message(h, &m, r, &id, &ticket, err, errlen);
            if (rc)
                cm_api->rollback(h);
            else if (cm_api->commit(h))
                rc = cm_host_fail(h, RAPPORT_EIO, err, errlen);
        }
        if (!rc && m.kind == CM_IN_AUTO_REPLY) {
            json_object_set_new(r, "auto_reply", json_string(m.why ? m.why : "yes"));
            json_object_set_new(r, "answered", json_false()); /* never answered */
        } else if (!rc && ticket && !m.in_reply_to && m.nrefs == 0) {
            acknowledge(h, &m, ticket, id, r);
        }
    }
    cm_incoming_free(&m);
    if (rc) {
        json_decref(r);
        return rc;
    }
    *report = r;
    return 0;
}
