/*
 * test_mail_build.c — outgoing mail built (mail_out.c: cm_mime_build, cm_message_id): messages
 * read back with GMime's parser (Persian subject, names and file names decoding to exactly what
 * was given, also checked with Python's email package), their structure, threading and list
 * headers, CRLF everywhere, every refusal; Message-IDs. Sending is test_smtp.c's.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkstemp, popen */
#endif

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mail_out_helpers.h"

static const char *FA_FILE = "فاکتور شماره ۱۲.pdf";

/* ---- helpers ------------------------------------------------------------------------------ */

/* Every line ends in CRLF, no CR or LF stands alone, the message ends with CRLF, no line is
 * longer than RFC 5322's 998 characters, and the first line is a header. */
static void assert_wire_form(const char *s, size_t n)
{
    size_t line = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
            fail_msg("bare LF at byte %zu", i);
        if (s[i] == '\r' && (i + 1 >= n || s[i + 1] != '\n'))
            fail_msg("bare CR at byte %zu", i);
        if (s[i] == '\r' || s[i] == '\n') {
            line = 0;
        } else if (++line > 998) {
            fail_msg("a line longer than 998 characters at byte %zu", i);
        }
    }
    assert_true(n >= 2 && memcmp(s + n - 2, "\r\n", 2) == 0);
    size_t name = strcspn(s, ":\r\n ");
    assert_true(name > 0 && s[name] == ':');
}

/* The header block only (up to the first empty line), NUL-ended; g_free it. */
static char *header_block(const char *s)
{
    const char *end = strstr(s, "\r\n\r\n");
    assert_non_null(end);
    return g_strndup(s, (gsize)(end - s + 2));
}

/* The raw value of header @p name in the block, unfolded (CRLF before a blank removed), or
 * NULL; g_free it. */
static char *raw_header(const char *block, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = block; *p;) {
        if (g_ascii_strncasecmp(p, name, n) == 0 && p[n] == ':') {
            GString *v = g_string_new(NULL);
            const char *q = p + n + 1;
            while (*q == ' ')
                q++;
            for (;;) {
                size_t k = strcspn(q, "\r");
                g_string_append_len(v, q, (gssize)k);
                q += k + 2;
                if (*q != ' ' && *q != '\t')
                    break;
            }
            return g_string_free(v, FALSE);
        }
        const char *nl = strstr(p, "\r\n");
        if (!nl)
            break;
        p = nl + 2;
    }
    return NULL;
}

static int count_headers(const char *block, const char *name)
{
    int c = 0;
    size_t n = strlen(name);
    for (const char *p = block; p && *p; p = strstr(p, "\r\n") ? strstr(p, "\r\n") + 2 : NULL)
        if (g_ascii_strncasecmp(p, name, n) == 0 && p[n] == ':')
            c++;
    return c;
}

/* The decoded bytes of a leaf part; g_byte_array_unref it. */
static GByteArray *part_bytes(GMimePart *part)
{
    GByteArray *a = g_byte_array_new();
    GMimeStream *mem = g_mime_stream_mem_new_with_byte_array(a);
    g_mime_stream_mem_set_owner((GMimeStreamMem *)mem, FALSE);
    assert_true(g_mime_data_wrapper_write_to_stream(g_mime_part_get_content(part), mem) >= 0);
    g_object_unref(mem);
    return a;
}

static const char *content_type(GMimeObject *o)
{
    static char buf[128];
    char *t = g_mime_content_type_get_mime_type(g_mime_object_get_content_type(o));
    snprintf(buf, sizeof buf, "%s", t);
    g_free(t);
    return buf;
}

/* Writes @p bytes to a temporary file and asks Python's email package (policy.default, which
 * decodes RFC 2047 words and RFC 2231 parameters) for the subject, the From display name and
 * the attachments' file names, one a line. An independent reader: GMime reading its own
 * output back could agree with itself about a mistake. g_free the answer. */
static char *python_reads(const char *bytes, size_t len)
{
    char path[] = "/tmp/test_mail_out_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, bytes, len), (ssize_t)len);
    close(fd);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "PYTHONIOENCODING=utf-8 /usr/bin/python3 -c \"import sys, email, email.policy\n"
             "m = email.message_from_binary_file(open(sys.argv[1], 'rb'), "
             "policy=email.policy.default)\nprint(m['subject'])\n"
             "print(m['from'].addresses[0].display_name)\n"
             "for a in m.iter_attachments(): print(a.get_filename())\n\" %s",
             path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    GString *out = g_string_new(NULL);
    char buf[512];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
        g_string_append_len(out, buf, (gssize)n);
    int st = pclose(p);
    unlink(path);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return g_string_free(out, FALSE);
}

/* ---- building ------------------------------------------------------------------------------ */

static void test_persian_subject_and_name_round_trip(void **state)
{
    (void)state;
    cm_outgoing m = sample();
    size_t n;
    char *out = build(&m, &n);
    assert_wire_form(out, n);
    char *hb = header_block(out);

    /* On the wire: ASCII only, as RFC 2047 encoded words in UTF-8. */
    for (const char *p = hb; *p; p++)
        assert_true((unsigned char)*p < 0x80);
    char *subj = raw_header(hb, "Subject"), *from = raw_header(hb, "From");
    assert_true(g_ascii_strncasecmp(subj, "=?utf-8?", 8) == 0);
    assert_true(g_ascii_strncasecmp(from, "=?utf-8?", 8) == 0);
    assert_non_null(strstr(from, "<support@shop.example>"));

    GMimeMessage *msg = parse(out, n);
    assert_string_equal(g_mime_message_get_subject(msg), FA_SUBJECT);
    InternetAddressList *fl = g_mime_message_get_from(msg);
    assert_int_equal(internet_address_list_length(fl), 1);
    InternetAddress *ia = internet_address_list_get_address(fl, 0);
    assert_string_equal(internet_address_get_name(ia), FA_NAME);
    assert_string_equal(internet_address_mailbox_get_addr((InternetAddressMailbox *)ia),
                        "support@shop.example");
    InternetAddress *to = internet_address_list_get_address(g_mime_message_get_to(msg), 0);
    assert_string_equal(internet_address_get_name(to), "Ana Silva");
    assert_string_equal(internet_address_mailbox_get_addr((InternetAddressMailbox *)to),
                        "ana@example.com");

    /* The body: text/plain in UTF-8, decoding to the text given. */
    GMimeObject *body = g_mime_message_get_mime_part(msg);
    assert_string_equal(content_type(body), "text/plain");
    assert_string_equal(g_mime_object_get_content_type_parameter(body, "charset"), "utf-8");
    char *text = part_text(body);
    assert_string_equal(text, m.text);

    char *py = python_reads(out, n);
    char *want = g_strdup_printf("%s\n%s\n", FA_SUBJECT, FA_NAME);
    assert_string_equal(py, want);

    g_free(want);
    g_free(py);
    g_free(text);
    g_object_unref(msg);
    g_free(subj);
    g_free(from);
    g_free(hb);
    free(out);
}

/*
 * Long subjects and names, mixed scripts and an emoji: folded into several encoded words, none
 * cutting a character, every header line within 78 columns. Read back by Python only: GMime
 * 3.2.13 (Debian 12) loses the text after a base64 word that ends in '=' padding when another
 * word follows (its issue #133, fixed in 3.2.14), which says nothing about what was written.
 */
static void test_long_mixed_subject_round_trips(void **state)
{
    (void)state;
    GString *s = g_string_new("Order #12 — ");
    for (int i = 0; i < 12; i++)
        g_string_append(s, "سفارش شما ارسال شد 😀 ");
    g_string_append(s, "(tracking: 1Z999AA10123456784)");
    cm_outgoing m = sample();
    m.subject = s->str;
    m.from_name = "فروشگاه «پارسی» — Support, Team";
    size_t n;
    char *out = build(&m, &n);
    assert_wire_form(out, n);
    char *hb = header_block(out);
    size_t longest = 0, col = 0;
    for (const char *p = hb; *p; p++) {
        col = *p == '\r' || *p == '\n' ? 0 : col + 1;
        longest = col > longest ? col : longest;
        assert_true((unsigned char)*p < 0x80);
    }
    assert_true(longest <= 78);
    char *py = python_reads(out, n);
    char *want = g_strdup_printf("%s\n%s\n", s->str, m.from_name);
    assert_string_equal(py, want);
    g_free(want);
    g_free(py);
    g_free(hb);
    free(out);
    g_string_free(s, TRUE);
}

static void test_ascii_subject_stays_plain(void **state)
{
    (void)state;
    cm_outgoing m = sample();
    m.subject = "Your order has shipped";
    m.from_name = "Shop Support";
    m.text = "Hello Ana,\nyour order has shipped.\n";
    size_t n;
    char *out = build(&m, &n);
    assert_wire_form(out, n);
    assert_non_null(strstr(out, "\r\nSubject: Your order has shipped\r\n"));
    assert_non_null(strstr(out, "\r\nFrom: Shop Support <support@shop.example>\r\n"));
    assert_null(strstr(out, "=?"));
    /* Short ASCII lines need no transfer encoding. */
    assert_null(strstr(out, "quoted-printable"));
    assert_null(strstr(out, "base64"));
    assert_non_null(strstr(out, "\r\n\r\nHello Ana,\r\nyour order has shipped.\r\n"));
    GMimeMessage *msg = parse(out, n);
    assert_string_equal(g_mime_message_get_subject(msg), "Your order has shipped");
    g_object_unref(msg);
    free(out);
}

static void test_headers_basic(void **state)
{
    (void)state;
    cm_outgoing m = sample();
    m.reply_to = "reply+a1b2c3d4e5@shop.example";
    m.language = "fa";
    size_t n;
    char *out = build(&m, &n);
    char *hb = header_block(out);
    char *v;
    assert_string_equal(v = raw_header(hb, "Date"), "Thu, 01 Jan 2026 00:00:00 +0000");
    g_free(v);
    assert_string_equal(v = raw_header(hb, "Message-ID"), "<0123456789abcdef@shop.example>");
    g_free(v);
    assert_string_equal(v = raw_header(hb, "Reply-To"), "reply+a1b2c3d4e5@shop.example");
    g_free(v);
    assert_string_equal(v = raw_header(hb, "MIME-Version"), "1.0");
    g_free(v);
    assert_string_equal(v = raw_header(hb, "Content-Language"), "fa");
    g_free(v);
    assert_string_equal(v = raw_header(hb, "Content-Type"), "text/plain; charset=utf-8");
    g_free(v);
    /* Mail to one person, not automatic: none of the list or automatic headers. */
    assert_null(raw_header(hb, "Auto-Submitted"));
    assert_null(raw_header(hb, "X-Auto-Response-Suppress"));
    assert_null(raw_header(hb, "Precedence"));
    assert_null(raw_header(hb, "List-Unsubscribe"));
    assert_null(raw_header(hb, "In-Reply-To"));
    assert_null(raw_header(hb, "References"));
    assert_int_equal(count_headers(hb, "From"), 1);
    assert_int_equal(count_headers(hb, "To"), 1);

    GMimeMessage *msg = parse(out, n);
    GDateTime *d = g_mime_message_get_date(msg);
    assert_non_null(d);
    assert_int_equal(g_date_time_to_unix(d), 1767225600);
    assert_string_equal(g_mime_message_get_message_id(msg), "0123456789abcdef@shop.example");
    g_object_unref(msg);
    g_free(hb);
    free(out);

    /* A date before 1970 is floored to its second, not rounded towards zero. */
    m.date_ms = -1500;
    out = build(&m, &n);
    hb = header_block(out);
    assert_string_equal(v = raw_header(hb, "Date"), "Wed, 31 Dec 1969 23:59:58 +0000");
    g_free(v);
    g_free(hb);
    free(out);
}

static void test_alternative_structure(void **state)
{
    (void)state;
    cm_outgoing m = sample();
    m.html = "<p dir=\"rtl\">سلام آنا،<br>سفارش شما ارسال شد.</p>\n";
    m.text = "سلام آنا،\r\nسفارش شما ارسال شد.\r\n"; /* CRLF given: the same on the wire */
    m.language = "fa";
    size_t n;
    char *out = build(&m, &n);
    assert_wire_form(out, n);
    GMimeMessage *msg = parse(out, n);
    GMimeObject *top = g_mime_message_get_mime_part(msg);
    assert_string_equal(content_type(top), "multipart/alternative");
    GMimeMultipart *alt = (GMimeMultipart *)top;
    assert_int_equal(g_mime_multipart_get_count(alt), 2);
    GMimeObject *t = g_mime_multipart_get_part(alt, 0), *h = g_mime_multipart_get_part(alt, 1);
    assert_string_equal(content_type(t), "text/plain");
    assert_string_equal(content_type(h), "text/html");
    assert_string_equal(g_mime_object_get_content_type_parameter(t, "charset"), "utf-8");
    assert_string_equal(g_mime_object_get_content_type_parameter(h, "charset"), "utf-8");
    assert_string_equal(g_mime_object_get_header(t, "Content-Language"), "fa");
    assert_string_equal(g_mime_object_get_header(top, "Content-Language"), "fa");
    /* 8-bit text goes out in an encoding that fits 7 bits, chosen by GMime. */
    GMimeContentEncoding e = g_mime_part_get_content_encoding((GMimePart *)t);
    assert_true(e == GMIME_CONTENT_ENCODING_BASE64 || e == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
    char *tt = part_text(t), *ht = part_text(h);
    assert_string_equal(tt, "سلام آنا،\nسفارش شما ارسال شد.\n");
    assert_string_equal(ht, m.html);
    g_free(tt);
    g_free(ht);
    g_object_unref(msg);
    free(out);

    /* html alone is a single text/html part. */
    m.text = NULL;
    out = build(&m, &n);
    msg = parse(out, n);
    assert_string_equal(content_type(g_mime_message_get_mime_part(msg)), "text/html");
    g_object_unref(msg);
    free(out);
}

/* A Latin-1 text is still labelled UTF-8 (GMime's own set_text would say ISO-8859-1), and a
 * mostly-ASCII text with a few accents goes out quoted-printable. */
static void test_latin_text_is_utf8_quoted_printable(void **state)
{
    (void)state;
    cm_outgoing m = sample();
    m.subject = "Café";
    m.text = "Olá Ana, a sua encomenda foi enviada hoje de manhã.\n";
    size_t n;
    char *out = build(&m, &n);
    assert_wire_form(out, n);
    assert_non_null(strstr(out, "charset=utf-8"));
    assert_non_null(strstr(out, "Content-Transfer-Encoding: quoted-printable"));
    GMimeMessage *msg = parse(out, n);
    assert_string_equal(g_mime_message_get_subject(msg), "Café");
    char *t = part_text(g_mime_message_get_mime_part(msg));
    assert_string_equal(t, m.text);
    g_free(t);
    g_object_unref(msg);
    free(out);
}

static void test_attachments_round_trip(void **state)
{
    (void)state;
    char bin[256 * 3];
    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (char)(i * 7 % 256); /* every byte value: NUL, CR, LF, 0xFF … */
    const char *pdf = "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n";
    cm_attachment att[3] = {
        {.filename = FA_FILE, .content_type = "application/pdf", .data = pdf, .len = strlen(pdf)},
        {.filename = "data \"v2\".bin", .content_type = NULL, .data = bin, .len = sizeof bin},
        {.filename = "empty.txt", .content_type = "text/plain", .data = NULL, .len = 0},
    };
    cm_outgoing m = sample();
    m.html = "<p>سلام</p>";
    m.att = att;
    m.natt = 3;
    size_t n;
    char *out = build(&m, &n);
    assert_wire_form(out, n);
    /* RFC 2231 for the Persian name; no raw 8-bit byte anywhere. */
    assert_non_null(strstr(out, "filename*0*=UTF-8''") ? out : strstr(out, "filename*=UTF-8''"));
    for (size_t i = 0; i < n; i++)
        assert_true((unsigned char)out[i] < 0x80);

    GMimeMessage *msg = parse(out, n);
    GMimeObject *top = g_mime_message_get_mime_part(msg);
    assert_string_equal(content_type(top), "multipart/mixed");
    GMimeMultipart *mixed = (GMimeMultipart *)top;
    assert_int_equal(g_mime_multipart_get_count(mixed), 4);
    assert_string_equal(content_type(g_mime_multipart_get_part(mixed, 0)), "multipart/alternative");
    const char *types[3] = {"application/pdf", "application/octet-stream", "text/plain"};
    for (int i = 0; i < 3; i++) {
        GMimePart *p = (GMimePart *)g_mime_multipart_get_part(mixed, i + 1);
        assert_string_equal(content_type((GMimeObject *)p), types[i]);
        assert_int_equal(g_mime_part_get_content_encoding(p), GMIME_CONTENT_ENCODING_BASE64);
        assert_true(g_mime_part_is_attachment(p));
        assert_string_equal(g_mime_part_get_filename(p), att[i].filename);
        GByteArray *b = part_bytes(p);
        assert_int_equal(b->len, att[i].len);
        if (att[i].len)
            assert_memory_equal(b->data, att[i].data, att[i].len);
        g_byte_array_unref(b);
    }
    char *py = python_reads(out, n);
    char *want = g_strdup_printf("%s\n%s\n%s\n%s\n%s\n", FA_SUBJECT, FA_NAME, FA_FILE,
                                 att[1].filename, att[2].filename);
    assert_string_equal(py, want);
    g_free(want);
    g_free(py);
    g_object_unref(msg);
    free(out);
}

static void test_threading_headers(void **state)
{
    (void)state;
    GString *refs = g_string_new(NULL);
    for (int i = 0; i < 30; i++)
        g_string_append_printf(refs, "%s<%d.thread-%d@mail.example.org>", i ? "  " : "", i, i);
    cm_outgoing m = sample();
    m.in_reply_to = "<29.thread-29@mail.example.org>";
    m.references = refs->str;
    size_t n;
    char *out = build(&m, &n);
    assert_wire_form(out, n);
    char *hb = header_block(out);
    char *irt = raw_header(hb, "In-Reply-To"), *rv = raw_header(hb, "References");
    assert_string_equal(irt, m.in_reply_to);
    /* Exactly the ids given, in order, one space apart once unfolded. */
    GString *w = g_string_new(NULL);
    for (int i = 0; i < 30; i++)
        g_string_append_printf(w, "%s<%d.thread-%d@mail.example.org>", i ? " " : "", i, i);
    assert_string_equal(rv, w->str);
    assert_true(count_headers(hb, "References") == 1);

    GMimeMessage *msg = parse(out, n);
    GMimeReferences *r =
        g_mime_references_parse(NULL, g_mime_object_get_header((GMimeObject *)msg, "References"));
    assert_int_equal(g_mime_references_length(r), 30);
    assert_string_equal(g_mime_references_get_message_id(r, 0), "0.thread-0@mail.example.org");
    assert_string_equal(g_mime_references_get_message_id(r, 29), "29.thread-29@mail.example.org");
    g_mime_references_free(r);
    g_object_unref(msg);

    /* An id from someone else's odd mail (no '@') is kept as it was written. */
    m.in_reply_to = "<4F1A.2B@>";
    m.references = "<legacy-id-without-at>";
    free(out);
    out = build(&m, &n);
    g_free(hb);
    hb = header_block(out);
    g_free(irt);
    g_free(rv);
    assert_string_equal(irt = raw_header(hb, "In-Reply-To"), "<4F1A.2B@>");
    assert_string_equal(rv = raw_header(hb, "References"), "<legacy-id-without-at>");
    g_free(irt);
    g_free(rv);
    g_free(hb);
    g_string_free(w, TRUE);
    g_string_free(refs, TRUE);
    free(out);
}

static void test_list_unsubscribe_and_auto(void **state)
{
    (void)state;
    /* A real unsubscribe URL is long: GMime's default formatter would turn it into an
     * encoded word. */
    const char *url = "https://shop.example/u/1?t=0123456789abcdef0123456789abcdef0123456789abcde"
                      "f0123456789abcdef&c=spring-sale-2026";
    cm_outgoing m = sample();
    m.list_unsubscribe = url;
    m.list_unsubscribe_mailto = "unsubscribe+t0123@shop.example";
    m.auto_submitted = CM_AUTO_GENERATED;
    size_t n;
    char *out = build(&m, &n);
    assert_wire_form(out, n);
    char *hb = header_block(out), *v;
    char *want = g_strdup_printf("<%s>, <mailto:unsubscribe+t0123@shop.example>", url);
    assert_string_equal(v = raw_header(hb, "List-Unsubscribe"), want);
    g_free(v);
    g_free(want);
    assert_string_equal(v = raw_header(hb, "List-Unsubscribe-Post"), "List-Unsubscribe=One-Click");
    g_free(v);
    assert_string_equal(v = raw_header(hb, "Auto-Submitted"), "auto-generated");
    g_free(v);
    assert_string_equal(v = raw_header(hb, "X-Auto-Response-Suppress"), "All");
    g_free(v);
    assert_string_equal(v = raw_header(hb, "Precedence"), "bulk");
    g_free(v);
    assert_null(strstr(hb, "=?us-ascii"));
    g_free(hb);
    free(out);

    /* An automatic answer to one person: Auto-Submitted, no list headers, no Precedence. A
     * mailto: URL given whole is kept whole. */
    m.list_unsubscribe = NULL;
    m.list_unsubscribe_mailto = NULL;
    m.auto_submitted = CM_AUTO_REPLIED;
    out = build(&m, &n);
    hb = header_block(out);
    assert_string_equal(v = raw_header(hb, "Auto-Submitted"), "auto-replied");
    g_free(v);
    assert_null(raw_header(hb, "Precedence"));
    assert_null(raw_header(hb, "List-Unsubscribe"));
    assert_null(raw_header(hb, "List-Unsubscribe-Post"));
    g_free(hb);
    free(out);

    /* mailto alone: listed, but no one-click (RFC 8058 needs an https URL to POST to). */
    m.auto_submitted = CM_AUTO_NO;
    m.list_unsubscribe_mailto = "mailto:leave@shop.example?subject=unsubscribe";
    out = build(&m, &n);
    hb = header_block(out);
    assert_string_equal(v = raw_header(hb, "List-Unsubscribe"),
                        "<mailto:leave@shop.example?subject=unsubscribe>");
    g_free(v);
    assert_null(raw_header(hb, "List-Unsubscribe-Post"));
    assert_null(raw_header(hb, "Auto-Submitted"));
    g_free(hb);
    free(out);
}

/* Refused with -1, *out left NULL, and an error that starts with the field's name. */
static void refused(const cm_outgoing *m, const char *field)
{
    char *out = (char *)"untouched", err[256] = "";
    size_t len = 99;
    if (cm_mime_build(m, &out, &len, err, sizeof err) != -1)
        fail_msg("built a message that should be refused for %s", field);
    assert_null(out);
    assert_int_equal(len, 0);
    if (strncmp(err, field, strlen(field)) != 0)
        fail_msg("error \"%s\" does not start with \"%s\"", err, field);
    /* The error itself is one line. */
    assert_null(strpbrk(err, "\r\n"));
}

static void test_refusals(void **state)
{
    (void)state;
    cm_outgoing m;
#define REFUSE(field, change)                                                                      \
    do {                                                                                           \
        m = sample();                                                                              \
        change;                                                                                    \
        refused(&m, field);                                                                        \
    } while (0)
    REFUSE("subject", m.subject = "Hi\r\nBcc: everyone@example.com");
    REFUSE("subject", m.subject = "Hi\nBcc: everyone@example.com");
    REFUSE("subject", m.subject = "Hi\rBcc: everyone@example.com");
    REFUSE("subject", m.subject = "bad \xff\xfe utf-8");
    REFUSE("from_name", m.from_name = "Ana\r\nX-Evil: 1");
    REFUSE("to_name", m.to_name = "Ana\n");
    REFUSE("from_addr", m.from_addr = NULL);
    REFUSE("from_addr", m.from_addr = "");
    REFUSE("to_addr", m.to_addr = NULL);
    REFUSE("to_addr", m.to_addr = "ana.example.com");
    REFUSE("to_addr", m.to_addr = "ana@example.com\r\nBcc: x@y.z");
    REFUSE("to_addr", m.to_addr = "Ana <ana@example.com>");
    REFUSE("to_addr", m.to_addr = "ana@x@example.com");
    REFUSE("to_addr", m.to_addr = "@example.com");
    REFUSE("to_addr", m.to_addr = "ana@");
    REFUSE("to_addr", m.to_addr = "آنا@example.com");
    REFUSE("reply_to", m.reply_to = "reply, other@example.com");
    REFUSE("text, html", (m.text = NULL, m.html = NULL));
    REFUSE("text", m.text = "\xc3\x28");
    REFUSE("html", (m.text = NULL, m.html = "\xe2\x82"));
    REFUSE("message_id", m.message_id = "0123@shop.example");
    REFUSE("message_id", m.message_id = "<a b@shop.example>");
    REFUSE("message_id", m.message_id = "<a@shop.example>\r\nBcc: x@y.z");
    REFUSE("message_id", m.message_id = "<a@b> <c@d>");
    REFUSE("message_id", m.message_id = "<>");
    REFUSE("in_reply_to", m.in_reply_to = "<a@b>\n");
    REFUSE("references", m.references = "<a@b> c@d");
    REFUSE("references", m.references = "<a@b>\r\n<c@d>");
    REFUSE("references", m.references = "  ");
    REFUSE("list_unsubscribe", m.list_unsubscribe = "javascript:alert(1)");
    REFUSE("list_unsubscribe", m.list_unsubscribe = "ftp://shop.example/u");
    REFUSE("list_unsubscribe", m.list_unsubscribe = "https://shop.example/u>, <https://evil");
    REFUSE("list_unsubscribe", m.list_unsubscribe = "https://shop.example/u\r\nBcc: x@y.z");
    REFUSE("list_unsubscribe", m.list_unsubscribe = "https://");
    REFUSE("list_unsubscribe_mailto", m.list_unsubscribe_mailto = "nobody");
    REFUSE("list_unsubscribe_mailto", m.list_unsubscribe_mailto = "a@b>\r\nX: y");
    REFUSE("language", m.language = "fa\r\nX-Evil: 1");
    REFUSE("language", m.language = "");
    REFUSE("auto_submitted", m.auto_submitted = 7);
    REFUSE("date_ms", m.date_ms = INT64_MAX);
    cm_attachment a = {
        .filename = "a.pdf", .content_type = "application/pdf", .data = "x", .len = 1};
    REFUSE("att", (m.att = NULL, m.natt = 1));
    REFUSE("att", (m.att = &a, m.natt = -1));
    cm_attachment b = a;
    b.filename = "a\r\nContent-Type: text/html";
    REFUSE("att[0].filename", (m.att = &b, m.natt = 1));
    b = a;
    b.content_type = "application/pdf\r\nX-Evil: 1";
    REFUSE("att[0].content_type", (m.att = &b, m.natt = 1));
    b.content_type = "pdf";
    REFUSE("att[0].content_type", (m.att = &b, m.natt = 1));
    b.content_type = "message/rfc822";
    REFUSE("att[0].content_type", (m.att = &b, m.natt = 1));
    b = a;
    b.data = NULL;
    REFUSE("att[0].data", (m.att = &b, m.natt = 1));
#undef REFUSE

    /* NULL arguments are refused, not crashed on. */
    char *out = NULL, err[128];
    size_t len;
    assert_int_equal(cm_mime_build(NULL, &out, &len, err, sizeof err), -1);
    m = sample();
    assert_int_equal(cm_mime_build(&m, NULL, &len, err, sizeof err), -1);
    assert_int_equal(cm_mime_build(&m, &out, &len, NULL, 0), 0);
    free(out);
}

/* What cannot be refused cannot slip a header in either: a subject that reads like a header,
 * names with quotes, commas and angle brackets. */
static void test_no_header_injection(void **state)
{
    (void)state;
    cm_outgoing m = sample();
    m.subject = "Bcc: everyone@example.com =?utf-8?q?X-Evil:_1?= \t tab";
    m.from_name = "Evil <evil@example.com>, \"Bcc\": x@y.z";
    m.to_name = "=?utf-8?q?Bcc=3A_x=40y=2Ez?=";
    size_t n;
    char *out = build(&m, &n);
    assert_wire_form(out, n);
    char *hb = header_block(out);
    assert_int_equal(count_headers(hb, "Bcc"), 0);
    assert_int_equal(count_headers(hb, "X-Evil"), 0);
    assert_int_equal(count_headers(hb, "From"), 1);
    GMimeMessage *msg = parse(out, n);
    InternetAddressList *from = g_mime_message_get_from(msg);
    assert_int_equal(internet_address_list_length(from), 1);
    InternetAddress *ia = internet_address_list_get_address(from, 0);
    assert_string_equal(internet_address_get_name(ia), m.from_name);
    assert_string_equal(internet_address_mailbox_get_addr((InternetAddressMailbox *)ia),
                        "support@shop.example");
    InternetAddressList *to = g_mime_message_get_to(msg);
    assert_int_equal(internet_address_list_length(to), 1);
    assert_string_equal(internet_address_mailbox_get_addr(
                            (InternetAddressMailbox *)internet_address_list_get_address(to, 0)),
                        "ana@example.com");
    assert_int_equal(internet_address_list_length(g_mime_message_get_bcc(msg)), 0);
    g_object_unref(msg);
    g_free(hb);
    free(out);
}

static void test_message_id(void **state)
{
    (void)state;
    char a[128], b[128];
    assert_int_equal(cm_message_id("shop.example", a, sizeof a), 0);
    assert_int_equal(cm_message_id("shop.example", b, sizeof b), 0);
    assert_int_equal(strlen(a), 1 + 32 + 1 + strlen("shop.example") + 1);
    assert_true(a[0] == '<' && a[33] == '@');
    for (int i = 1; i <= 32; i++)
        assert_non_null(strchr("0123456789abcdef", a[i]));
    assert_string_equal(a + 33, "@shop.example>");
    assert_string_not_equal(a, b);

    /* It is accepted by cm_mime_build as it stands. */
    cm_outgoing m = sample();
    m.message_id = a;
    char *out = build(&m, NULL);
    free(out);

    const char *bad[] = {"",      "shop example", "shop.example\r\n", "a@b",        "<x>",
                         ".shop", "shop.",        "shop..example",    "ünï.example"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        strcpy(b, "x");
        if (cm_message_id(bad[i], b, sizeof b) != -1)
            fail_msg("domain \"%s\" accepted", bad[i]);
        assert_string_equal(b, "");
    }
    assert_int_equal(cm_message_id(NULL, b, sizeof b), -1);
    assert_int_equal(cm_message_id("shop.example", NULL, 128), -1);
    /* Too small a buffer is refused, not overrun; just enough is fine. */
    assert_int_equal(cm_message_id("shop.example", b, 47), -1);
    assert_int_equal(cm_message_id("shop.example", b, 48), 0);
    assert_int_equal(strlen(b), 47);
}

int main(void)
{
    g_mime_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_persian_subject_and_name_round_trip),
        cmocka_unit_test(test_long_mixed_subject_round_trips),
        cmocka_unit_test(test_ascii_subject_stays_plain),
        cmocka_unit_test(test_headers_basic),
        cmocka_unit_test(test_alternative_structure),
        cmocka_unit_test(test_latin_text_is_utf8_quoted_printable),
        cmocka_unit_test(test_attachments_round_trip),
        cmocka_unit_test(test_threading_headers),
        cmocka_unit_test(test_list_unsubscribe_and_auto),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_no_header_injection),
        cmocka_unit_test(test_message_id),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    g_mime_shutdown();
    return rc;
}
