/*
 * test_mail_in.c — incoming mail (mail_in.c): every file of the corpus in tests/mail/ read into
 * exactly the fields it should give (windows-1256 and base64 Persian as UTF-8, HTML made text,
 * bounces with their recipient, status and returned id, auto-replies with what decided), the
 * classification rules one header at a time, the caps, hostile inputs, and cm_reply_token.
 * The corpus folder is argv[1], else CM_MAIL_CORPUS (a compile definition).
 */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>

#include "../mail.h"

#ifndef CM_MAIL_CORPUS
#define CM_MAIL_CORPUS "plugins/collaborative/tests/mail"
#endif

static const char *corpus = CM_MAIL_CORPUS;

/* ---- helpers ------------------------------------------------------------------------------ */

/* Reads corpus file @p name whole; *len its length. Owned (free). */
static char *slurp(const char *name, size_t *len)
{
    char path[1024];
    FILE *f;
    char *buf;
    long n;

    snprintf(path, sizeof path, "%s/%s", corpus, name);
    f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Parses corpus file @p name into @p m, which must succeed. */
static void parse_file(const char *name, cm_incoming *m)
{
    size_t len;
    char *buf = slurp(name, &len), err[256] = "";

    if (cm_mime_parse(buf, len, m, err, sizeof err) != 0)
        fail_msg("%s: %s", name, err);
    free(buf);
}

/* Parses the NUL-ended message @p text, which must succeed. */
static void parse_str(const char *text, cm_incoming *m)
{
    char err[256] = "";

    if (cm_mime_parse(text, strlen(text), m, err, sizeof err) != 0)
        fail_msg("%s", err);
}

/* Checks the fields every parsed message has, whatever it is. */
static void check_shape(const cm_incoming *m)
{
    assert_non_null(m->subject);
    assert_non_null(m->text);
    assert_true(g_utf8_validate(m->subject, -1, NULL));
    assert_true(g_utf8_validate(m->text, -1, NULL));
    assert_true(m->kind == CM_IN_MESSAGE || m->kind == CM_IN_AUTO_REPLY || m->kind == CM_IN_BOUNCE);
    assert_true((m->why == NULL) == (m->kind == CM_IN_MESSAGE));
    for (int i = 0; i < m->nto; i++)
        assert_non_null(strchr(m->to[i], '@'));
    for (int i = 0; i < m->natt; i++) {
        assert_non_null(m->att[i].content_type);
        assert_non_null(m->att[i].data);
        assert_int_equal(m->att[i].data[m->att[i].len], '\0');
    }
}

/* Parses @p headers followed by a short body and returns the kind; *why a copy or NULL. */
static int kind_of(const char *headers, char *why, size_t cap)
{
    char msg[4096];
    cm_incoming m;
    int kind;

    snprintf(msg, sizeof msg,
             "From: Someone <someone@example.com>\r\nTo: support@rapport.example\r\n%s"
             "Content-Type: text/plain\r\n\r\nHello.\r\n",
             headers);
    parse_str(msg, &m);
    check_shape(&m);
    kind = m.kind;
    snprintf(why, cap, "%s", m.why != NULL ? m.why : "");
    cm_incoming_free(&m);
    return kind;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- the corpus --------------------------------------------------------------------------- */

static const char plain_text[] =
    "Hello,\n\nThe invoice I got last week lists two licences, but we only ordered one.\n"
    "Could you check and send a corrected copy?\n\nThanks,\nAna\n";

static void test_plain(void **state)
{
    cm_incoming m;

    (void)state;
    parse_file("plain.eml", &m);
    check_shape(&m);
    assert_string_equal(m.from_addr, "ana.silva@example.com");
    assert_string_equal(m.from_name, "Ana Silva");
    assert_int_equal(m.nto, 3);
    assert_string_equal(m.to[0], "support@rapport.example");
    assert_string_equal(m.to[1], "billing@rapport.example");
    assert_string_equal(m.to[2], "ana@home.example");
    assert_string_equal(m.subject, "Question about my last invoice");
    assert_string_equal(m.message_id, "<20261201091530.4821@mail.example.com>");
    assert_null(m.in_reply_to);
    assert_int_equal(m.nrefs, 0);
    assert_int_equal(m.date_ms, 1796112930000LL); /* 2026-12-01T08:15:30Z */
    assert_string_equal(m.text, plain_text);
    assert_null(m.html);
    assert_int_equal(m.kind, CM_IN_MESSAGE);
    assert_null(m.why);
    assert_int_equal(m.nbounced, 0);
    assert_null(m.bounce_status);
    assert_null(m.bounced_message_id);
    assert_int_equal(m.natt, 0);
    cm_incoming_free(&m);
    cm_incoming_free(&m); /* a freed result is empty and may be freed again */
}

/* Adjacent base64 words, the first with '=' padding: GMime 3.2.13 alone loses what follows. */
static void test_padded_encoded_words(void **state)
{
    (void)state;
    cm_incoming m;
    parse_str("From: a@x.org\r\nTo: s@example.com\r\n"
              "Subject: =?UTF-8?B?2LPZhNin2YU=?=\r\n =?UTF-8?B?2K/ZiNiz2Kog2LnYstuM2LIg2YXZhg==?="
              " and =?UTF-8?Q?caf=C3=A9?=\r\nMessage-ID: <w@x.org>\r\n\r\nhi\r\n", &m);
    assert_string_equal(m.subject, "سلامدوست عزیز من and café");
    cm_incoming_free(&m);
}

static void test_duplicate(void **state)
{
    cm_incoming a, b;

    (void)state;
    parse_file("plain.eml", &a);
    parse_file("duplicate.eml", &b);
    assert_string_equal(a.message_id, b.message_id);
    assert_string_equal(a.text, b.text);
    cm_incoming_free(&a);
    cm_incoming_free(&b);
}

static void test_multipart(void **state)
{
    static const char pdf[] = "%PDF-1.4\n% hand-made test file, not a real PDF\n"
                              "1 0 obj << >> endobj\n%%EOF\n";
    cm_incoming m;

    (void)state;
    parse_file("multipart.eml", &m);
    check_shape(&m);
    assert_string_equal(m.from_addr, "bruno@example.org");
    assert_string_equal(m.from_name, "Bruno Costa");
    assert_string_equal(m.text, "Hi,\n\nAttached is the signed order form. Delivery to "
                                "S\xC3\xA3o Paulo, please.\n\nBruno");
    assert_non_null(m.html);
    assert_non_null(strstr(m.html, "<b>S\xC3\xA3o Paulo</b>"));
    assert_int_equal(m.natt, 1);
    assert_string_equal(m.att[0].filename, "order-form.pdf");
    assert_string_equal(m.att[0].content_type, "application/pdf");
    assert_int_equal(m.att[0].len, sizeof pdf - 1);
    assert_memory_equal(m.att[0].data, pdf, sizeof pdf - 1);
    assert_int_equal(m.kind, CM_IN_MESSAGE);
    cm_incoming_free(&m);
}

static void test_html_only(void **state)
{
    cm_incoming m;

    (void)state;
    parse_file("html_only.eml", &m);
    check_shape(&m);
    /* Title, style, script and comment gone; entities decoded; ISO-8859-1 read as such. */
    assert_string_equal(m.text, "Hello team,\n"
                                "I can't log in since Monday & the reset link says \"expired\".\n"
                                "Caf\xC3\xA9 <3 \xE2\x98\xBA \xE2\x98\x83 thanks\n"
                                "Carla");
    assert_non_null(m.html);
    assert_non_null(strstr(m.html, "<script>"));
    assert_int_equal(m.natt, 0);
    cm_incoming_free(&m);
}

static void test_windows1256(void **state)
{
    cm_incoming m;

    (void)state;
    parse_file("windows1256.eml", &m);
    check_shape(&m);
    /* The file holds windows-1256 bytes (quoted-printable body, =?windows-1256?B?…?= subject,
     * =?windows-1256?Q?…?= name); this source file is UTF-8. */
    assert_string_equal(m.subject, "پيگيري سفارش 1234");
    assert_string_equal(m.from_name, "ژاله رضايي");
    assert_string_equal(m.from_addr, "zhaleh@example.ir");
    assert_string_equal(m.text, "سلام، سفارش شماره 1234 من هنوز نرسيده است.\n"
                                "لطفاً پيگيري کنيد.\n\n"
                                "با تشکر، ژاله\n");
    assert_int_equal(m.date_ms, 1796367600000LL); /* 10:30 at +03:30 */
    cm_incoming_free(&m);
}

static void test_persian_utf8(void **state)
{
    cm_incoming m;

    (void)state;
    parse_file("persian_utf8.eml", &m);
    check_shape(&m);
    assert_string_equal(m.subject, "فاکتور آذر ۱۴۰۵");
    assert_string_equal(m.from_name, "مریم احمدی");
    assert_string_equal(m.text, "سلام! فاکتور ماه آذر را دریافت کردم. ممنون از پیگیری شما.\n"
                                "مریم");
    cm_incoming_free(&m);
}

static void test_raw_8bit_headers(void **state)
{
    cm_incoming m;

    (void)state;
    /* Raw ISO-8859-1 bytes in Subject: read in the body's declared charset, not in the
     * windows-1256 fallback (which would make Arabic letters of them). */
    parse_file("raw8bit_latin1.eml", &m);
    check_shape(&m);
    assert_string_equal(m.subject, "Factura de diciembre: a\xC3\xB1o, Se\xC3\xB1or");
    assert_string_equal(m.from_name, "Jos\xC3\xA9");
    assert_string_equal(m.text, "La factura del a\xC3\xB1o pasado est\xC3\xA1 bien.\n");
    cm_incoming_free(&m);
}

static void test_autoreply(void **state)
{
    cm_incoming m;

    (void)state;
    parse_file("autoreply.eml", &m);
    check_shape(&m);
    assert_int_equal(m.kind, CM_IN_AUTO_REPLY);
    assert_string_equal(m.why, "Auto-Submitted: auto-replied");
    assert_string_equal(m.in_reply_to, "<quote-2026-118@rapport.example>");
    assert_int_equal(m.nrefs, 1);
    assert_string_equal(m.references[0], "<quote-2026-118@rapport.example>");
    assert_int_equal(m.nbounced, 0);
    cm_incoming_free(&m);
}

static void test_ooo(void **state)
{
    cm_incoming m;

    (void)state;
    parse_file("ooo.eml", &m);
    check_shape(&m);
    assert_int_equal(m.kind, CM_IN_AUTO_REPLY);
    assert_string_equal(m.why, "X-Auto-Response-Suppress: All");
    assert_string_equal(m.from_addr, "erin.walsh@contoso.example");
    assert_string_equal(m.message_id, "<e5c1f0a9b8d74e2f9a1b@CONTOSO.example>");
    assert_non_null(m.html);
    assert_non_null(strstr(m.text, "out of the office until Monday 14 December"));
    cm_incoming_free(&m);
}

static void test_bounce(void **state)
{
    cm_incoming m;

    (void)state;
    parse_file("bounce.eml", &m);
    check_shape(&m);
    /* A bounce although it also says Auto-Submitted. */
    assert_int_equal(m.kind, CM_IN_BOUNCE);
    assert_non_null(strstr(m.why, "report-type=delivery-status"));
    assert_int_equal(m.nbounced, 1);
    assert_string_equal(m.bounced[0], "nobody@example.com");
    assert_string_equal(m.bounce_status, "5.1.1");
    assert_int_equal(m.bounce_permanent, 1);
    /* From text/rfc822-headers, where the id is on a folded line. */
    assert_string_equal(m.bounced_message_id, "<newsletter-2026-12.77@rapport.example>");
    /* The report parts are read, not attached. */
    assert_int_equal(m.natt, 0);
    cm_incoming_free(&m);
}

static void test_bounce_delayed(void **state)
{
    cm_incoming m;

    (void)state;
    parse_file("bounce_delayed.eml", &m);
    check_shape(&m);
    assert_int_equal(m.kind, CM_IN_BOUNCE);
    assert_int_equal(m.bounce_permanent, 0);
    assert_int_equal(m.nbounced, 1);
    assert_string_equal(m.bounced[0], "frank@slow.example");
    assert_string_equal(m.bounce_status, "4.4.1");
    /* From the whole returned message (message/rfc822), which is also kept as a file. */
    assert_string_equal(m.bounced_message_id, "<quote-delay-31@rapport.example>");
    assert_int_equal(m.natt, 1);
    assert_string_equal(m.att[0].content_type, "message/rfc822");
    assert_non_null(strstr(m.att[0].data, "Hello Frank"));
    cm_incoming_free(&m);
}

static void test_classic_bounce(void **state)
{
    cm_incoming m;

    (void)state;
    parse_file("classic_bounce.eml", &m);
    check_shape(&m);
    assert_int_equal(m.kind, CM_IN_BOUNCE);
    assert_string_equal(m.why, "X-Failed-Recipients");
    assert_int_equal(m.nbounced, 1);
    assert_string_equal(m.bounced[0], "ivan@gone.example");
    assert_int_equal(m.bounce_permanent, 1);
    assert_null(m.bounce_status);
    /* Quoted in the text after the explanation. */
    assert_string_equal(m.bounced_message_id, "<ticket-91-1@rapport.example>");
    cm_incoming_free(&m);
}

static void test_reply_no_refs(void **state)
{
    cm_incoming m;
    char tok[65];

    (void)state;
    parse_file("reply_no_refs.eml", &m);
    check_shape(&m);
    assert_int_equal(m.kind, CM_IN_MESSAGE);
    /* The comment after the id is not part of it. */
    assert_string_equal(m.in_reply_to, "<ticket-88-3@rapport.example>");
    assert_int_equal(m.nrefs, 0);
    assert_int_equal(m.nto, 1);
    assert_string_equal(m.to[0], "reply+7f3a9c2e41b04d5e@rapport.example");
    assert_int_equal(cm_reply_token(m.to[0], "reply", "rapport.example", tok, sizeof tok), 1);
    assert_string_equal(tok, "7f3a9c2e41b04d5e");
    cm_incoming_free(&m);
}

static void test_no_message_id(void **state)
{
    cm_incoming m;

    (void)state;
    parse_file("no_message_id.eml", &m);
    check_shape(&m);
    assert_null(m.message_id);
    assert_string_equal(m.subject, "No id on this one");
    cm_incoming_free(&m);
}

static void test_garbage(void **state)
{
    size_t len;
    char *buf = slurp("garbage.eml", &len), err[256] = "";
    cm_incoming m;

    (void)state;
    assert_int_equal(cm_mime_parse(buf, len, &m, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a mail message"));
    assert_null(m.subject); /* the result is left empty */
    cm_incoming_free(&m);
    free(buf);
}

/* ---- classification, one rule at a time --------------------------------------------------- */

static void test_auto_rules(void **state)
{
    char why[256];

    (void)state;
    assert_int_equal(kind_of("Subject: Hello\r\n", why, sizeof why), CM_IN_MESSAGE);
    assert_int_equal(kind_of("Auto-Submitted: no\r\n", why, sizeof why), CM_IN_MESSAGE);
    assert_int_equal(kind_of("Auto-Submitted: No (a person)\r\n", why, sizeof why), CM_IN_MESSAGE);
    assert_int_equal(kind_of("Auto-Submitted: auto-generated\r\n", why, sizeof why),
                     CM_IN_AUTO_REPLY);
    assert_string_equal(why, "Auto-Submitted: auto-generated");
    assert_int_equal(kind_of("X-Autoreply: yes\r\n", why, sizeof why), CM_IN_AUTO_REPLY);
    assert_string_equal(why, "X-Autoreply: yes");
    assert_int_equal(kind_of("X-Autorespond: 1\r\n", why, sizeof why), CM_IN_AUTO_REPLY);
    assert_int_equal(kind_of("X-Autoresponder: vacation\r\n", why, sizeof why), CM_IN_AUTO_REPLY);
    assert_int_equal(kind_of("Precedence: bulk\r\n", why, sizeof why), CM_IN_AUTO_REPLY);
    assert_string_equal(why, "Precedence: bulk");
    assert_int_equal(kind_of("Precedence: junk\r\n", why, sizeof why), CM_IN_AUTO_REPLY);
    assert_int_equal(kind_of("Precedence: auto_reply\r\n", why, sizeof why), CM_IN_AUTO_REPLY);
    /* Somebody writing to a list is somebody writing. */
    assert_int_equal(
        kind_of("Precedence: list\r\nList-Id: <users.lists.example>\r\n", why, sizeof why),
        CM_IN_MESSAGE);
    assert_int_equal(kind_of("X-Auto-Response-Suppress: DR, OOF\r\n", why, sizeof why),
                     CM_IN_AUTO_REPLY);
    assert_int_equal(kind_of("X-Auto-Response-Suppress: RN, NRN\r\n", why, sizeof why),
                     CM_IN_MESSAGE);
    /* The prefixes mail clients put on their own replies decide alone; a person answering
     * one does not. */
    assert_int_equal(kind_of("Subject: Automatic reply: Your order\r\n", why, sizeof why),
                     CM_IN_AUTO_REPLY);
    assert_string_equal(why, "Subject: Automatic reply:");
    assert_int_equal(kind_of("Subject: OUT OF OFFICE: back Monday\r\n", why, sizeof why),
                     CM_IN_AUTO_REPLY);
    assert_int_equal(kind_of("Subject: Autosvar: Faktura\r\n", why, sizeof why), CM_IN_AUTO_REPLY);
    assert_int_equal(kind_of("Subject: Re: Automatic reply: Your order\r\n", why, sizeof why),
                     CM_IN_MESSAGE);
    assert_int_equal(kind_of("Subject: Auto: insurance question\r\n", why, sizeof why),
                     CM_IN_MESSAGE);
}

static void test_daemon_rules(void **state)
{
    cm_incoming m;

    (void)state;
    /* A mailer daemon's bounce subject without a report: a bounce, no recipient known. */
    parse_str("From: MAILER-DAEMON@mx.example.com\r\nTo: a@rapport.example\r\n"
              "Subject: Delivery Status Notification (Failure)\r\n\r\nIt failed.\r\n",
              &m);
    check_shape(&m);
    assert_int_equal(m.kind, CM_IN_BOUNCE);
    assert_int_equal(m.bounce_permanent, 1);
    assert_int_equal(m.nbounced, 0);
    cm_incoming_free(&m);
    /* Anything else from a mailer daemon is automatic. */
    parse_str("From: mailer-daemon@mx.example.com\r\nSubject: Quota warning\r\n\r\nx\r\n", &m);
    assert_int_equal(m.kind, CM_IN_AUTO_REPLY);
    cm_incoming_free(&m);
    /* A postmaster is a person unless the subject says bounce. */
    parse_str("From: postmaster@customer.example\r\nSubject: Your mail server\r\n\r\nx\r\n", &m);
    assert_int_equal(m.kind, CM_IN_MESSAGE);
    cm_incoming_free(&m);
    parse_str("From: postmaster@mx.example.com\r\nSubject: Delayed Mail (still being retried)"
              "\r\n\r\nx\r\n",
              &m);
    assert_int_equal(m.kind, CM_IN_BOUNCE);
    assert_int_equal(m.bounce_permanent, 0);
    cm_incoming_free(&m);
}

/* A delivery report with the recipient blocks @p blocks. */
static void parse_report(const char *report_type, const char *blocks, cm_incoming *m)
{
    char msg[4096];

    snprintf(msg, sizeof msg,
             "From: mailer-daemon@mx.example.com\r\nTo: a@rapport.example\r\n"
             "Subject: Delivery report\r\n"
             "Content-Type: multipart/report; report-type=%s; boundary=r\r\n\r\n"
             "--r\r\nContent-Type: text/plain\r\n\r\nSee the report.\r\n"
             "--r\r\nContent-Type: message/%s\r\n\r\n"
             "Reporting-MTA: dns; mx.example.com\r\n\r\n%s\r\n--r--\r\n",
             report_type,
             strcmp(report_type, "delivery-status") == 0 ? "delivery-status"
                                                         : "disposition-notification",
             blocks);
    parse_str(msg, m);
    check_shape(m);
}

static void test_report_rules(void **state)
{
    cm_incoming m;

    (void)state;
    /* Failed outranks delayed: only the failed recipients are listed, with their status. */
    parse_report("delivery-status",
                 "Final-Recipient: rfc822; late@example.com\r\nAction: delayed\r\n"
                 "Status: 4.4.7\r\n\r\n"
                 "Final-Recipient: rfc822;<Gone@Example.com>\r\nAction: failed\r\n"
                 "Status: 5.2.1 (mailbox disabled)\r\n\r\n"
                 "Final-Recipient: rfc822; also@example.com\r\nStatus: 5.1.10\r\n",
                 &m);
    assert_int_equal(m.kind, CM_IN_BOUNCE);
    assert_int_equal(m.bounce_permanent, 1);
    assert_int_equal(m.nbounced, 2);
    assert_string_equal(m.bounced[0], "gone@example.com");
    assert_string_equal(m.bounced[1], "also@example.com");
    assert_string_equal(m.bounce_status, "5.2.1");
    assert_null(m.bounced_message_id);
    cm_incoming_free(&m);
    /* A report that everything was delivered is automatic mail, not a bounce. */
    parse_report("delivery-status",
                 "Final-Recipient: rfc822; ok@example.com\r\nAction: delivered\r\n"
                 "Status: 2.0.0\r\n",
                 &m);
    assert_int_equal(m.kind, CM_IN_AUTO_REPLY);
    assert_int_equal(m.nbounced, 0);
    cm_incoming_free(&m);
    /* An empty delivery-status part (the fuzzer's first find: no bytes at all to read). */
    parse_report("delivery-status", "", &m);
    assert_int_equal(m.kind, CM_IN_AUTO_REPLY);
    assert_int_equal(m.nbounced, 0);
    cm_incoming_free(&m);
    parse_str("From: a@b.example\r\nContent-Type: multipart/report; report-type=delivery-status; "
              "boundary=r\r\n\r\n--r\r\nContent-Type: message/delivery-status\r\n\r\n--r--\r\n",
              &m);
    check_shape(&m);
    cm_incoming_free(&m);
    /* A read receipt. */
    parse_report("disposition-notification", "Final-Recipient: rfc822; r@example.com\r\n", &m);
    assert_int_equal(m.kind, CM_IN_AUTO_REPLY);
    assert_non_null(strstr(m.why, "disposition-notification"));
    cm_incoming_free(&m);
}

/* ---- fields ------------------------------------------------------------------------------- */

static void test_addresses_and_ids(void **state)
{
    cm_incoming m;

    (void)state;
    parse_str("From: undisclosed-recipients:;\r\n"
              "To: Team: A@X.example, \"B, b\" <b@y.example>;, c@z.example\r\n"
              "Cc: a@x.example, not-an-address, D@Z.EXAMPLE\r\nTo: e@w.example\r\n"
              "Message-ID: bare-id@host.example\r\n"
              "In-Reply-To: <first@host> <second@host>\r\n"
              "References: <r1@h>,<r2@h>\r\n <r3@h> junk <<r4@h>\r\n"
              "Date: not a date\r\n\r\nbody\r\n",
              &m);
    check_shape(&m);
    assert_null(m.from_addr); /* a group with no mailbox */
    assert_null(m.from_name);
    assert_int_equal(m.nto, 5);
    assert_string_equal(m.to[0], "a@x.example");
    assert_string_equal(m.to[1], "b@y.example");
    assert_string_equal(m.to[2], "c@z.example");
    assert_string_equal(m.to[3], "e@w.example"); /* every To header, then Cc */
    assert_string_equal(m.to[4], "d@z.example");
    assert_string_equal(m.message_id, "<bare-id@host.example>");
    assert_string_equal(m.in_reply_to, "<first@host>");
    assert_int_equal(m.nrefs, 4);
    assert_string_equal(m.references[0], "<r1@h>");
    assert_string_equal(m.references[3], "<r4@h>");
    assert_int_equal(m.date_ms, 0);
    assert_string_equal(m.subject, "");
    cm_incoming_free(&m);
    /* Words where an id should be are not an id; an id with a space cannot be threaded on. */
    parse_str("From: a@b.example\r\nIn-Reply-To: your message of Monday\r\n"
              "Message-ID: <has space@host>\r\nReferences: <ok@host> <bad id@host>\r\n\r\nx",
              &m);
    assert_null(m.in_reply_to);
    assert_null(m.message_id);
    assert_int_equal(m.nrefs, 1);
    assert_string_equal(m.references[0], "<ok@host>");
    cm_incoming_free(&m);
}

static void test_references_capped(void **state)
{
    GString *s = g_string_new("Subject: long thread\r\nReferences:");
    cm_incoming m;

    (void)state;
    for (int i = 0; i < 500; i++)
        g_string_append_printf(s, " <ref%d@h.example>", i);
    g_string_append(s, "\r\n\r\nx\r\n");
    parse_str(s->str, &m);
    /* The root and the newest are what threading needs. */
    assert_int_equal(m.nrefs, 128);
    assert_string_equal(m.references[0], "<ref0@h.example>");
    assert_string_equal(m.references[1], "<ref373@h.example>");
    assert_string_equal(m.references[127], "<ref499@h.example>");
    cm_incoming_free(&m);
    g_string_free(s, TRUE);
}

static void test_attachments(void **state)
{
    GString *s = g_string_new("Subject: files\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
                              "--b\r\nContent-Type: text/plain\r\n\r\nSee the files.\r\n"
                              "--b\r\nContent-Type: text/plain\r\n\r\nsecond inline text\r\n"
                              "--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: "
                              "base64\r\n\r\niVBORw0K\r\n"
                              "--b\r\nContent-Type: text/plain; name=\"..\\\\..\\\\evil.bat\"\r\n"
                              "Content-Disposition: attachment; filename=\"../../etc/passwd\"\r\n"
                              "\r\nroot\r\n"
                              "--b\r\nContent-Type: application/pgp-signature\r\n\r\nsig\r\n");
    cm_incoming m;

    (void)state;
    for (int i = 0; i < 100; i++)
        g_string_append_printf(s,
                               "--b\r\nContent-Type: text/csv\r\nContent-Disposition: "
                               "attachment; filename=f%d.csv\r\n\r\na,b\r\n",
                               i);
    g_string_append(s, "--b--\r\n");
    parse_str(s->str, &m);
    check_shape(&m);
    assert_string_equal(m.text, "See the files.");
    /* A picture without a name is kept; the signature is not. */
    assert_int_equal(m.natt, 64);
    assert_null(m.att[0].filename);
    assert_string_equal(m.att[0].content_type, "image/png");
    assert_int_equal(m.att[0].len, 6);
    assert_memory_equal(m.att[0].data, "\x89PNG\r\n", 6);
    /* A name, never a path. */
    assert_string_equal(m.att[1].filename, "passwd");
    assert_string_equal(m.att[1].data, "root");
    assert_string_equal(m.att[2].filename, "f0.csv");
    assert_string_equal(m.att[63].filename, "f61.csv");
    cm_incoming_free(&m);
    g_string_free(s, TRUE);
}

static void test_body_capped(void **state)
{
    size_t n = (5u << 20) + 1;
    GString *s = g_string_new("Subject: big\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
    cm_incoming m;

    (void)state;
    for (size_t i = 0; i < n / 2; i++)
        g_string_append(s, "\xC3\xA9"); /* é: the cut must not split it */
    parse_str(s->str, &m);
    check_shape(&m);
    assert_int_equal(strlen(m.text), 4u << 20);
    cm_incoming_free(&m);
    g_string_free(s, TRUE);
}

/* ---- hostile input ------------------------------------------------------------------------ */

static void test_refused(void **state)
{
    cm_incoming m;
    char err[256];

    (void)state;
    err[0] = '\0';
    assert_int_equal(cm_mime_parse(NULL, 0, &m, err, sizeof err), -1);
    assert_true(err[0] != '\0');
    assert_int_equal(cm_mime_parse("", 0, &m, err, sizeof err), -1);
    assert_int_equal(cm_mime_parse("hello world\r\n", 13, &m, err, sizeof err), -1);
    assert_int_equal(cm_mime_parse("\r\n\r\nbody only\r\n", 15, &m, err, sizeof err), -1);
    /* Headers, but none a message has. */
    assert_int_equal(cm_mime_parse("X-Foo: bar\r\n\r\nx", 15, &m, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a mail message"));
    assert_int_equal(cm_mime_parse(NULL, 5, &m, err, sizeof err), -1);
    assert_int_equal(cm_mime_parse("x", 1, NULL, err, sizeof err), -1);
    /* No error buffer is fine too. */
    assert_int_equal(cm_mime_parse("", 0, &m, NULL, 0), -1);
}

static void test_header_only(void **state)
{
    cm_incoming m;

    (void)state;
    parse_str("Subject: just this", &m);
    check_shape(&m);
    assert_string_equal(m.subject, "just this");
    assert_string_equal(m.text, "");
    assert_null(m.html);
    cm_incoming_free(&m);
    /* Not NUL-ended, with NULs and invalid UTF-8 in the body. */
    static const char odd[] = "From: a@b.example\r\n\r\nab\0cd\xFF\xFE\xC3";
    char err[256];
    assert_int_equal(cm_mime_parse(odd, sizeof odd - 1, &m, err, sizeof err), 0);
    check_shape(&m);
    cm_incoming_free(&m);
}

/* @p n multiparts, each inside the one before. */
static GString *nested_multiparts(int n)
{
    GString *s =
        g_string_new("From: a@b.example\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n");

    for (int i = 0; i < n; i++)
        g_string_append_printf(s, "--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n", i,
                               i + 1);
    g_string_append_printf(s, "--b%d\r\nContent-Type: text/plain\r\n\r\ndeep\r\n", n);
    for (int i = n; i >= 0; i--)
        g_string_append_printf(s, "--b%d--\r\n", i);
    return s;
}

/* @p n messages, each attached to the one before. */
static GString *nested_messages(int n)
{
    GString *s = g_string_new("");

    for (int i = 0; i < n; i++)
        g_string_append(s, "From: a@b.example\r\nContent-Type: message/rfc822\r\n\r\n");
    g_string_append(s, "From: a@b.example\r\nSubject: inner\r\n\r\ninnermost\r\n");
    return s;
}

static void test_deep_nesting(void **state)
{
    GString *multi = nested_multiparts(10000), *msgs = nested_messages(2000);
    cm_incoming m;
    char err[256];
    double t0 = now_s(), t1, t2;

    (void)state;
    /* Parsed or refused, never a crash; and in bounded time (measured: 0.4 s without the
     * sanitizers, the 10,000 levels; the cap below leaves room for a loaded machine). */
    if (cm_mime_parse(multi->str, multi->len, &m, err, sizeof err) == 0) {
        check_shape(&m);
        assert_string_equal(m.text, ""); /* deeper than what is walked */
        cm_incoming_free(&m);
    }
    t1 = now_s();
    if (cm_mime_parse(msgs->str, msgs->len, &m, err, sizeof err) == 0) {
        check_shape(&m);
        assert_true(m.natt <= 1);
        cm_incoming_free(&m);
    }
    t2 = now_s();
    print_message("10,000 nested multiparts: %.2f s; 2,000 nested messages: %.2f s\n", t1 - t0,
                  t2 - t1);
    assert_true(t1 - t0 < 30.0);
    assert_true(t2 - t1 < 30.0);
    g_string_free(multi, TRUE);
    g_string_free(msgs, TRUE);
}

static void test_many_parts(void **state)
{
    GString *s =
        g_string_new("From: a@b.example\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n");
    cm_incoming m;
    double t0 = now_s();

    (void)state;
    for (int i = 0; i < 50000; i++)
        g_string_append(s, "--b\r\nContent-Type: application/octet-stream\r\n\r\nx\r\n");
    g_string_append(s, "--b--\r\n");
    parse_str(s->str, &m);
    assert_int_equal(m.natt, 64);
    cm_incoming_free(&m);
    print_message("50,000 sibling parts: %.2f s\n", now_s() - t0);
    assert_true(now_s() - t0 < 30.0);
    g_string_free(s, TRUE);
}

static void test_hostile_html(void **state)
{
    cm_incoming m;

    (void)state;
    /* A '<' not starting a tag is text; a '>' in a quoted attribute does not end the tag;
     * bad numeric entities are U+FFFD; unknown or unended ones stay as written; an unended
     * <style> hides the rest, as in a browser. */
    parse_str("Subject: h\r\nContent-Type: text/html\r\n\r\n"
              "a < b &#0;&#xD800;&#99999999; &bogus; &amp &#x; x<3<p title='>'>e"
              "<script>never</script >f<style>g",
              &m);
    check_shape(&m);
    assert_string_equal(m.text, "a < b \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD &bogus; &amp &#x; "
                                "x<3\nef");
    cm_incoming_free(&m);
}

/* ---- cm_reply_token ----------------------------------------------------------------------- */

static void test_reply_token(void **state)
{
    char tok[65], small[8];

    (void)state;
    assert_int_equal(
        cm_reply_token("reply+abcdEF12@mail.example", "reply", "mail.example", tok, sizeof tok), 1);
    assert_string_equal(tok, "abcdEF12");
    /* The domain and the prefix in any case (parsed addresses are lower-cased). */
    assert_int_equal(
        cm_reply_token("Reply+abcdef12@MAIL.Example", "reply", "mail.example", tok, sizeof tok), 1);
    assert_int_equal(
        cm_reply_token("reply+abcdef12@mail.example", "Reply", "Mail.Example", tok, sizeof tok), 1);
    /* Wrong prefix, domain or shape. */
    assert_int_equal(
        cm_reply_token("replies+abcdef12@mail.example", "reply", "mail.example", tok, sizeof tok),
        0);
    assert_int_equal(
        cm_reply_token("xreply+abcdef12@mail.example", "reply", "mail.example", tok, sizeof tok),
        0);
    assert_int_equal(
        cm_reply_token("reply-abcdef12@mail.example", "reply", "mail.example", tok, sizeof tok), 0);
    assert_int_equal(
        cm_reply_token("reply+abcdef12@mail.example.org", "reply", "mail.example", tok, sizeof tok),
        0);
    assert_int_equal(
        cm_reply_token("reply+abcdef12@sub.mail.example", "reply", "mail.example", tok, sizeof tok),
        0);
    assert_int_equal(cm_reply_token("reply+abcdef12", "reply", "mail.example", tok, sizeof tok), 0);
    /* 8 to 64 letters and digits. */
    assert_int_equal(
        cm_reply_token("reply+abcdef1@mail.example", "reply", "mail.example", tok, sizeof tok), 0);
    char addr[128];
    snprintf(addr, sizeof addr, "reply+%s@mail.example",
             "0123456789012345678901234567890123456789012345678901234567890123");
    assert_int_equal(cm_reply_token(addr, "reply", "mail.example", tok, sizeof tok), 1);
    assert_int_equal(strlen(tok), 64);
    snprintf(addr, sizeof addr, "reply+%s@mail.example",
             "01234567890123456789012345678901234567890123456789012345678901234");
    assert_int_equal(cm_reply_token(addr, "reply", "mail.example", tok, sizeof tok), 0);
    assert_int_equal(
        cm_reply_token("reply+abcd-ef12@mail.example", "reply", "mail.example", tok, sizeof tok),
        0);
    assert_int_equal(
        cm_reply_token("reply+abcd.ef12@mail.example", "reply", "mail.example", tok, sizeof tok),
        0);
    assert_int_equal(cm_reply_token("reply+abcd\xC3\xA9"
                                    "f12@mail.example",
                                    "reply", "mail.example", tok, sizeof tok),
                     0);
    assert_int_equal(
        cm_reply_token("reply+abcdef12+x@mail.example", "reply", "mail.example", tok, sizeof tok),
        0);
    assert_int_equal(
        cm_reply_token("reply+@mail.example", "reply", "mail.example", tok, sizeof tok), 0);
    /* Too small a buffer, or nothing given. */
    assert_int_equal(
        cm_reply_token("reply+abcdef12@mail.example", "reply", "mail.example", small, sizeof small),
        0);
    assert_int_equal(cm_reply_token(NULL, "reply", "mail.example", tok, sizeof tok), 0);
    assert_int_equal(
        cm_reply_token("reply+abcdef12@mail.example", NULL, "mail.example", tok, sizeof tok), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_duplicate),
        cmocka_unit_test(test_padded_encoded_words),
        cmocka_unit_test(test_multipart),
        cmocka_unit_test(test_html_only),
        cmocka_unit_test(test_windows1256),
        cmocka_unit_test(test_persian_utf8),
        cmocka_unit_test(test_raw_8bit_headers),
        cmocka_unit_test(test_autoreply),
        cmocka_unit_test(test_ooo),
        cmocka_unit_test(test_bounce),
        cmocka_unit_test(test_bounce_delayed),
        cmocka_unit_test(test_classic_bounce),
        cmocka_unit_test(test_reply_no_refs),
        cmocka_unit_test(test_no_message_id),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_auto_rules),
        cmocka_unit_test(test_daemon_rules),
        cmocka_unit_test(test_report_rules),
        cmocka_unit_test(test_addresses_and_ids),
        cmocka_unit_test(test_references_capped),
        cmocka_unit_test(test_attachments),
        cmocka_unit_test(test_body_capped),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_header_only),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_many_parts),
        cmocka_unit_test(test_hostile_html),
        cmocka_unit_test(test_reply_token),
    };

    if (argc > 1)
        corpus = argv[1];
    return cmocka_run_group_tests(tests, NULL, NULL);
}
