/*
 * mail_classify.c — what an incoming message is: a customer's, an auto-reply (RFC 3834 and the
 * headers auto-responders write, read receipts) or a bounce (a delivery report per RFC 3464,
 * or a mailer daemon's plain mail), and for a bounce the recipients that failed, their status
 * and the returned message's id. Works on the tree mail_in.c has walked.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "mail_in.h"

/* Sets the kind and a `why` made from @p fmt; a header value in it is cut to IN_MAX_WHY bytes. */
static void verdict(in_ctx *c, int kind, const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    c->out->kind = kind;
    free(c->out->why);
    c->out->why = in_own(c, buf, 1);
}

/* Copies the decoded value of header @p name into @p buf (@p cap bytes), cut on a character
 * boundary, controls made spaces, for quoting in `why`. Returns @p buf, or NULL when absent. */
static const char *header_value(GMimeObject *o, const char *name, char *buf, size_t cap)
{
    const char *v = g_mime_object_get_header(o, name);
    size_t n;

    if (v == NULL)
        return NULL;
    if ((n = strlen(v)) >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)v[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(buf, v, n);
    buf[n] = '\0';
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    return buf;
}

/* True when the comma- or space-separated @p list holds one of @p words (any case). */
static int has_word(const char *list, const char *const *words)
{
    char *copy = g_strdup(list), *save = NULL;
    int found = 0;

    for (char *w = strtok_r(copy, ", \t;", &save); w != NULL && !found;
         w = strtok_r(NULL, ", \t;", &save))
        for (const char *const *k = words; *k && !found; k++)
            found = g_ascii_strcasecmp(w, *k) == 0;
    g_free(copy);
    return found;
}

/* One recipient block of a delivery-status part, as far as it has been read. */
typedef struct dsn_rcpt {
    char *addr;
    char status[16];
    int failed, delayed;
} dsn_rcpt;

/* "rfc822; Ana@Example.com" → "ana@example.com" (owned), or NULL. */
static char *dsn_address(in_ctx *c, const char *v)
{
    const char *semi = strchr(v, ';');
    char *a, *r;

    v = semi != NULL ? semi + 1 : v;
    if ((a = in_own(c, v, 1)) == NULL)
        return NULL;
    size_t n = strlen(a);
    if (n >= 2 && a[0] == '<' && a[n - 1] == '>') {
        a[n - 1] = '\0';
        memmove(a, a + 1, n - 1);
    }
    r = in_bare_address(c, a);
    free(a);
    return r;
}

/* Reads one "Name: value" field of a recipient block into @p r. */
static void dsn_field(in_ctx *c, dsn_rcpt *r, const char *line)
{
    const char *colon = strchr(line, ':'), *v;

    if (colon == NULL)
        return;
    for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
        ;
    size_t n = (size_t)(colon - line);
    if (n == 15 && strncasecmp(line, "Final-Recipient", n) == 0) {
        free(r->addr);
        r->addr = dsn_address(c, v);
    } else if (n == 18 && strncasecmp(line, "Original-Recipient", n) == 0 && r->addr == NULL) {
        r->addr = dsn_address(c, v);
    } else if (n == 6 && strncasecmp(line, "Action", n) == 0) {
        r->failed |= in_starts_ci(v, "failed");
        r->delayed |= in_starts_ci(v, "delayed");
    } else if (n == 6 && strncasecmp(line, "Status", n) == 0) {
        size_t k = strspn(v, "0123456789.");
        if (k > 0 && k < sizeof r->status && (v[0] == '2' || v[0] == '4' || v[0] == '5') &&
            v[1] == '.') {
            memcpy(r->status, v, k);
            r->status[k] = '\0';
        }
    }
}

/*
 * Ends a recipient block: a failed recipient (Action failed, or a 5.x.x status) outranks a
 * delayed one (Action delayed, or 4.x.x), so `bounced` lists the failed recipients when there
 * are any, else the delayed ones, and bounce_permanent says which. Delivered and relayed
 * recipients are not listed.
 */
static void dsn_end(in_ctx *c, dsn_rcpt *r, int *level)
{
    cm_incoming *m = c->out;
    int l = r->failed || r->status[0] == '5' ? 2 : r->delayed || r->status[0] == '4' ? 1 : 0;

    if (r->addr != NULL && l > 0 && l >= *level) {
        if (l > *level) {
            for (int i = 0; i < m->nbounced; i++)
                free(m->bounced[i]);
            m->nbounced = 0;
            free(m->bounce_status);
            m->bounce_status = NULL;
            *level = l;
        }
        if (m->bounce_status == NULL && r->status[0] != '\0')
            m->bounce_status = in_own(c, r->status, 1);
        if (m->nbounced < IN_MAX_ADDRS && !in_contains(m->bounced, m->nbounced, r->addr)) {
            in_push(c, &m->bounced, &m->nbounced, r->addr);
            r->addr = NULL;
        }
    }
    free(r->addr);
    memset(r, 0, sizeof *r);
}

/*
 * Reads a message/delivery-status part (RFC 3464): blocks of fields separated by blank lines,
 * folded lines joined. Fills bounced, bounce_status and bounce_permanent; returns the level
 * reached (2 failed, 1 delayed, 0 nothing failed).
 */
static int read_dsn(in_ctx *c, GMimePart *part)
{
    GByteArray *ba = in_part_bytes(part);
    dsn_rcpt r = {0};
    int level = 0;

    if (ba == NULL)
        return 0;
    size_t len = ba->len < IN_MAX_DSN ? ba->len : IN_MAX_DSN;
    char *text = in_own_utf8((const char *)ba->data, len, 0);
    g_byte_array_unref(ba);
    if (text == NULL) {
        c->oom = 1;
        return 0;
    }
    /* Unfold, then read line by line; an empty line ends a block. */
    in_lf_only(text);
    for (char *q = strchr(text, '\n'); q != NULL; q = strchr(q + 1, '\n'))
        if (q[1] == ' ' || q[1] == '\t')
            *q = ' ';
    for (char *line = text, *next; line != NULL; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        char *field = g_strstrip(line);
        if (field[0] == '\0')
            dsn_end(c, &r, &level);
        else
            dsn_field(c, &r, field);
    }
    dsn_end(c, &r, &level);
    free(text);
    c->out->bounce_permanent = level == 2;
    return level;
}

/* The returned message's id: from the attached message, its headers, or quoted headers. */
static void read_returned_id(in_ctx *c)
{
    cm_incoming *m = c->out;
    GByteArray *ba;

    if (c->returned != NULL)
        m->bounced_message_id =
            in_first_id(c, in_raw_header((GMimeObject *)c->returned, "Message-ID"));
    if (m->bounced_message_id == NULL && c->returned_hdrs != NULL &&
        (ba = in_part_bytes(c->returned_hdrs)) != NULL) {
        size_t len = ba->len < IN_MAX_DSN ? ba->len : IN_MAX_DSN;
        m->bounced_message_id = in_scan_message_id(c, (const char *)ba->data, len);
        g_byte_array_unref(ba);
    }
    if (m->bounced_message_id == NULL && m->text != NULL)
        m->bounced_message_id = in_scan_message_id(c, m->text, strlen(m->text));
}

/*
 * A standard delivery report (RFC 3464) at the top: a bounce when a recipient failed or was
 * delayed; a report that only says "delivered" is automatic mail, not a bounce. A read receipt
 * (RFC 8098) is automatic mail too. Returns 1 when it decided.
 */
static int classify_report(in_ctx *c, GMimeObject *top)
{
    const char *type = g_mime_object_get_content_type_parameter(top, "report-type");

    if (!c->report)
        return 0;
    if (type != NULL && g_ascii_strcasecmp(type, "disposition-notification") == 0) {
        verdict(c, CM_IN_AUTO_REPLY,
                "Content-Type: multipart/report; "
                "report-type=disposition-notification");
        return 1;
    }
    if (c->dsn == NULL)
        return 0;
    int level = read_dsn(c, c->dsn);
    if (level > 0)
        read_returned_id(c);
    verdict(c, level > 0 ? CM_IN_BOUNCE : CM_IN_AUTO_REPLY,
            "Content-Type: multipart/report; report-type=delivery-status (%s)",
            level == 2   ? "failed"
            : level == 1 ? "delayed"
                         : "no failed recipient");
    return 1;
}

/* Subjects of the bounces mail servers write without a delivery report (case-insensitive). */
static const char *const bounce_subjects[] = {"Undelivered Mail Returned to Sender", /* Postfix */
                                              "Delivery Status Notification (Failure)", /* Gmail */
                                              "Delivery Status Notification (Delay)",
                                              "Mail delivery failed", /* Exim */
                                              "Undeliverable:",       /* Exchange */
                                              "Undeliverable mail",
                                              "Returned mail:", /* Sendmail */
                                              "failure notice", /* qmail */
                                              "Delivery Failure",
                                              "Delayed Mail", /* Postfix, still retrying */
                                              "Warning: could not send message",
                                              NULL};

/* A bounce written as plain mail: X-Failed-Recipients, or a mailer daemon's known subject. */
static int classify_classic_bounce(in_ctx *c, GMimeObject *o)
{
    cm_incoming *m = c->out;
    const char *failed = in_raw_header(o, "X-Failed-Recipients");
    const char *at = m->from_addr != NULL ? strchr(m->from_addr, '@') : NULL;
    int daemon =
        at != NULL && ((at - m->from_addr == 13 && in_starts_ci(m->from_addr, "mailer-daemon")) ||
                       (at - m->from_addr == 10 && in_starts_ci(m->from_addr, "postmaster")));
    const char *const *s = bounce_subjects;

    while (daemon && *s != NULL && !in_starts_ci(m->subject, *s))
        s++;
    if (failed == NULL && (!daemon || *s == NULL))
        return 0;
    in_collect_addresses(c, o, "X-Failed-Recipients", &m->bounced, &m->nbounced);
    const char *subj_end = m->subject + strlen(m->subject);
    m->bounce_permanent = in_find_ci(m->subject, subj_end, "delay") == NULL &&
                          in_find_ci(m->subject, subj_end, "warning") == NULL;
    read_returned_id(c);
    if (failed != NULL)
        verdict(c, CM_IN_BOUNCE, "X-Failed-Recipients");
    else
        verdict(c, CM_IN_BOUNCE, "From: %s, Subject: %s", m->from_addr, *s);
    return 1;
}

/*
 * RFC 3834 and the headers auto-responders write. Headers decide; a subject alone decides only
 * for the prefixes mail clients put on their own out-of-office replies. List mail
 * (Precedence: list) is somebody writing, not an auto-reply.
 */
static int classify_auto(in_ctx *c, GMimeObject *o)
{
    static const char *const flags[] = {"X-Autoreply", "X-Autorespond", "X-Autoresponder", NULL};
    static const char *const precedence[] = {"bulk", "junk", "auto_reply", NULL};
    static const char *const suppress[] = {"All", "OOF", "AutoReply", NULL};
    static const char *const subjects[] = {"Automatic reply:",
                                           "Out of Office:",
                                           "Out of office reply:",
                                           "Out of Office AutoReply:",
                                           "Auto-Reply:",
                                           "Autoreply:",
                                           "Autosvar:",
                                           NULL};
    cm_incoming *m = c->out;
    char v[IN_MAX_WHY + 1];
    const char *at = m->from_addr != NULL ? strchr(m->from_addr, '@') : NULL;

    /* "no" is the one value that means a person wrote it; it may carry parameters. */
    if (header_value(o, "Auto-Submitted", v, sizeof v) != NULL &&
        !(strcspn(g_strstrip(v), " \t;(") == 2 && in_starts_ci(v, "no"))) {
        verdict(c, CM_IN_AUTO_REPLY, "Auto-Submitted: %s", v);
        return 1;
    }
    for (const char *const *f = flags; *f; f++)
        if (header_value(o, *f, v, sizeof v) != NULL && g_ascii_strcasecmp(g_strstrip(v), "no")) {
            verdict(c, CM_IN_AUTO_REPLY, "%s: %s", *f, v);
            return 1;
        }
    if (header_value(o, "Precedence", v, sizeof v) != NULL && has_word(v, precedence)) {
        verdict(c, CM_IN_AUTO_REPLY, "Precedence: %s", g_strstrip(v));
        return 1;
    }
    if (header_value(o, "X-Auto-Response-Suppress", v, sizeof v) != NULL && has_word(v, suppress)) {
        verdict(c, CM_IN_AUTO_REPLY, "X-Auto-Response-Suppress: %s", g_strstrip(v));
        return 1;
    }
    if (at != NULL && at - m->from_addr == 13 && in_starts_ci(m->from_addr, "mailer-daemon")) {
        verdict(c, CM_IN_AUTO_REPLY, "From: %s", m->from_addr);
        return 1;
    }
    for (const char *const *s = subjects; *s; s++)
        if (in_starts_ci(m->subject, *s)) {
            verdict(c, CM_IN_AUTO_REPLY, "Subject: %s", *s);
            return 1;
        }
    return 0;
}

/* Bounces first (a bounce often carries Auto-Submitted too), then auto-replies. */
void in_classify(in_ctx *c, GMimeMessage *msg)
{
    GMimeObject *o = (GMimeObject *)msg;
    GMimeObject *top = g_mime_message_get_mime_part(msg);

    c->out->kind = CM_IN_MESSAGE;
    if (top != NULL && classify_report(c, top))
        return;
    if (classify_classic_bounce(c, o))
        return;
    classify_auto(c, o);
}
