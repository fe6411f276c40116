/*
 * mail_out.c — outgoing mail: a cm_outgoing checked field by field and built into an RFC 5322
 * message by GMime (never pasted together), Message-IDs from the kernel's random bytes, and
 * delivery of the built bytes to one recipient over SMTP with libcurl.
 */
#define _DEFAULT_SOURCE /* O_CLOEXEC, strncasecmp under -std=c11 */

#include "mail.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include <curl/curl.h>
#include <gmime/gmime.h>

/* Header lines are folded before a word that would pass this column (RFC 5322's "SHOULD"). */
#define FOLD_AT 78
/* Longest URL or id accepted in a header: one word cannot be folded, and a line may not pass
 * 998 characters (RFC 5322 2.1.1); this leaves room for the name and the brackets. */
#define MAX_WORD 900

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- checks on what the caller hands over ---------------------------------------------- */

static int has_line_break(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

/* True when @p s holds a control character (C0 or DEL), a line break included. */
static int has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

/* A text that goes into a header: UTF-8, and no CR or LF, which would end the header and let
 * the rest of the text be read as headers of its own. */
static int check_header_text(const char *field, const char *s, char *err, size_t errlen)
{
    if (!s)
        return 0;
    if (has_line_break(s))
        return fail(err, errlen,
                    "%s: contains a line break (CR or LF), refused so that no "
                    "header can be slipped in",
                    field);
    if (!g_utf8_validate(s, -1, NULL))
        return fail(err, errlen, "%s: not valid UTF-8", field);
    return 0;
}

/*
 * A bare address as SMTP and RFC 5322 take it without quoting: something, one '@', a domain;
 * no space, control or character that has a meaning around an address. A non-ASCII domain is
 * left to GMime (IDNA); a non-ASCII local part would need SMTPUTF8 end to end, so it is refused.
 */
static int check_addr(const char *field, const char *a, int required, char *err, size_t errlen)
{
    if (!a || !*a)
        return required ? fail(err, errlen, "%s: missing", field) : 0;
    if (has_line_break(a))
        return fail(err, errlen, "%s: contains a line break (CR or LF)", field);
    if (has_control(a))
        return fail(err, errlen, "%s: contains a control character", field);
    if (!g_utf8_validate(a, -1, NULL))
        return fail(err, errlen, "%s: not valid UTF-8", field);
    const char *bad = strpbrk(a, " \t<>()[],;:\"\\");
    if (bad)
        return fail(err, errlen, "%s: \"%.80s\" contains '%c', which a bare address cannot", field,
                    a, *bad);
    const char *at = strchr(a, '@');
    if (!at)
        return fail(err, errlen, "%s: \"%.80s\" has no '@'", field, a);
    if (strchr(at + 1, '@'))
        return fail(err, errlen, "%s: \"%.80s\" has more than one '@'", field, a);
    if (at == a || at[1] == '\0')
        return fail(err, errlen,
                    "%s: \"%.80s\" needs a local part before '@' and a domain after it", field, a);
    for (const char *p = a; p < at; p++)
        if ((unsigned char)*p >= 0x80)
            return fail(err, errlen,
                        "%s: \"%.80s\" has a non-ASCII local part, which needs "
                        "SMTPUTF8 (not supported)",
                        field, a);
    return 0;
}

/* One "<…>" id: printable ASCII inside, no space and no bracket. Ids read from other people's
 * mail are not always RFC 5322 ones (no '@', odd characters), and refusing them would make a
 * thread impossible to answer, so only what would break the header is refused. */
static int msgid_len(const char *s)
{
    if (s[0] != '<')
        return -1;
    int n = 1;
    while (s[n] && s[n] != '>') {
        unsigned char c = (unsigned char)s[n];
        if (c <= 0x20 || c >= 0x7f || c == '<')
            return -1;
        n++;
    }
    if (s[n] != '>' || n == 1 || n + 1 > MAX_WORD)
        return -1;
    return n + 1;
}

static int check_msgid(const char *field, const char *s, char *err, size_t errlen)
{
    if (!s)
        return 0;
    int n = msgid_len(s);
    if (n < 0 || s[n] != '\0')
        return fail(err, errlen,
                    "%s: must be one \"<id@domain>\" with no space, CR, LF or angle bracket inside",
                    field);
    return 0;
}

/* References: "<…>" ids separated by spaces or tabs. */
static int check_refs(const char *s, char *err, size_t errlen)
{
    if (!s)
        return 0;
    int count = 0;
    for (const char *p = s;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        int n = msgid_len(p);
        if (n < 0 || (p[n] && p[n] != ' ' && p[n] != '\t'))
            return fail(err, errlen,
                        "references: id %d is not one \"<id@domain>\" with no "
                        "space, CR, LF or bracket inside",
                        count + 1);
        p += n;
        count++;
    }
    if (count == 0)
        return fail(err, errlen, "references: empty (leave it NULL for none)");
    return 0;
}

/* A URL put between angle brackets in List-Unsubscribe: printable ASCII, no space, no
 * bracket or quote that would end it early. */
static int url_chars_ok(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '"')
            return 0;
    }
    return 1;
}

static int check_unsubscribe(const cm_outgoing *m, char *err, size_t errlen)
{
    const char *u = m->list_unsubscribe, *mt = m->list_unsubscribe_mailto;
    if (u) {
        size_t skip = strncasecmp(u, "https://", 8) == 0  ? 8
                      : strncasecmp(u, "http://", 7) == 0 ? 7
                                                          : 0;
        if (skip == 0)
            return fail(err, errlen, "list_unsubscribe: must start with https:// (or http://)");
        if (!url_chars_ok(u) || u[skip] == '\0' || u[skip] == '/')
            return fail(err, errlen,
                        "list_unsubscribe: not a URL that can go in a header "
                        "(a host, then printable ASCII with no space, quote or angle bracket)");
        if (strlen(u) > MAX_WORD)
            return fail(err, errlen, "list_unsubscribe: longer than %d characters", MAX_WORD);
    }
    if (mt) {
        const char *a = strncasecmp(mt, "mailto:", 7) == 0 ? mt + 7 : mt;
        if (!url_chars_ok(mt) || !strchr(a, '@') || *a == '@')
            return fail(err, errlen,
                        "list_unsubscribe_mailto: not an address or mailto: URL "
                        "(printable ASCII with an '@', no space, quote or angle bracket)");
        if (strlen(mt) > MAX_WORD)
            return fail(err, errlen, "list_unsubscribe_mailto: longer than %d characters",
                        MAX_WORD);
    }
    return 0;
}

/* A language tag (RFC 5646), or a comma-separated list of them as Content-Language allows. */
static int check_language(const char *s, char *err, size_t errlen)
{
    if (!s)
        return 0;
    size_t n = strlen(s);
    int ok = n > 0 && n <= 64 && isalpha((unsigned char)s[0]);
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == ',' || s[i] == ' ';
    if (!ok)
        return fail(err, errlen, "language: not a language tag like \"fa\" or \"en-GB\"");
    return 0;
}

static int is_token_char(char c)
{
    return isalnum((unsigned char)c) || (c && strchr("!#$&-^_.+", c));
}

/* "type/subtype", then parameters (printable ASCII) for GMime to parse. */
static int check_content_type(int i, const char *ct, char *err, size_t errlen)
{
    if (!ct)
        return 0;
    size_t head = strcspn(ct, ";"), slash = strcspn(ct, "/");
    int ok = slash > 0 && slash + 1 < head;
    for (size_t k = 0; ok && k < head; k++)
        ok = k == slash || is_token_char(ct[k]);
    for (const char *p = ct + head; ok && *p; p++)
        ok = (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f;
    if (!ok)
        return fail(err, errlen,
                    "att[%d].content_type: not a type/subtype like \"application/pdf\"", i);
    /* RFC 2046 5.1.1 and 5.2.1: multipart and message parts may not be base64-encoded. */
    if (strncasecmp(ct, "multipart/", 10) == 0 || strncasecmp(ct, "message/", 8) == 0)
        return fail(err, errlen,
                    "att[%d].content_type: \"%.*s\" cannot be sent base64-encoded; "
                    "attach it as application/octet-stream",
                    i, (int)head, ct);
    return 0;
}

static int check_attachments(const cm_outgoing *m, char *err, size_t errlen)
{
    if (m->natt < 0 || (m->natt > 0 && !m->att))
        return fail(err, errlen, "att: %d attachments announced but %s", m->natt,
                    m->natt < 0 ? "the count is negative" : "none given");
    for (int i = 0; i < m->natt; i++) {
        const cm_attachment *a = &m->att[i];
        char field[48];
        snprintf(field, sizeof field, "att[%d].filename", i);
        if (check_header_text(field, a->filename, err, errlen) != 0)
            return -1;
        if (a->filename && has_control(a->filename))
            return fail(err, errlen, "%s: contains a control character", field);
        if (!a->data && a->len > 0)
            return fail(err, errlen, "att[%d].data: NULL with a length of %zu", i, a->len);
        if (check_content_type(i, a->content_type, err, errlen) != 0)
            return -1;
    }
    return 0;
}

/* Every check runs before GMime is touched, so a refusal costs nothing and says which field. */
static int check_outgoing(const cm_outgoing *m, char *err, size_t errlen)
{
    if (check_addr("from_addr", m->from_addr, 1, err, errlen) != 0 ||
        check_addr("to_addr", m->to_addr, 1, err, errlen) != 0 ||
        check_addr("reply_to", m->reply_to, 0, err, errlen) != 0 ||
        check_header_text("from_name", m->from_name, err, errlen) != 0 ||
        check_header_text("to_name", m->to_name, err, errlen) != 0 ||
        check_header_text("subject", m->subject, err, errlen) != 0 ||
        check_msgid("message_id", m->message_id, err, errlen) != 0 ||
        check_msgid("in_reply_to", m->in_reply_to, err, errlen) != 0 ||
        check_refs(m->references, err, errlen) != 0 || check_unsubscribe(m, err, errlen) != 0 ||
        check_language(m->language, err, errlen) != 0 || check_attachments(m, err, errlen) != 0)
        return -1;
    if (!m->text && !m->html)
        return fail(err, errlen, "text, html: a message needs a text or an html body");
    if (m->text && !g_utf8_validate(m->text, -1, NULL))
        return fail(err, errlen, "text: not valid UTF-8");
    if (m->html && !g_utf8_validate(m->html, -1, NULL))
        return fail(err, errlen, "html: not valid UTF-8");
    if (m->auto_submitted != CM_AUTO_NO && m->auto_submitted != CM_AUTO_GENERATED &&
        m->auto_submitted != CM_AUTO_REPLIED)
        return fail(err, errlen,
                    "auto_submitted: %d is none of CM_AUTO_NO, CM_AUTO_GENERATED "
                    "and CM_AUTO_REPLIED",
                    m->auto_submitted);
    return 0;
}

/* ---- building with GMime --------------------------------------------------------------- */

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void gmime_start(void)
{
    g_mime_init();
}

/*
 * Sets header @p name on @p obj to @p value exactly, folded at its spaces only. GMime's default
 * formatter would rewrite it: an ASCII word of 78 characters or more (a real unsubscribe URL
 * with its token) becomes an encoded word "=?us-ascii?Q?…?=" that no client takes for a URL.
 * Folding with a single space keeps the unfolded value identical to @p value.
 */
static void set_raw_header(GMimeObject *obj, const char *name, const char *value)
{
    GString *raw = g_string_new(NULL);
    size_t col = strlen(name) + 1;
    for (const char *p = value; *p;) {
        size_t n = strcspn(p, " ");
        if (raw->len > 0 && col + 1 + n > FOLD_AT) {
            g_string_append(raw, "\n");
            col = 0;
        }
        g_string_append_c(raw, ' ');
        g_string_append_len(raw, p, (gssize)n);
        col += 1 + n;
        p += n;
        while (*p == ' ')
            p++;
    }
    g_string_append_c(raw, '\n');

    g_mime_object_set_header(obj, name, value, NULL);
    GMimeHeader *h = g_mime_header_list_get_header(g_mime_object_get_header_list(obj), name);
    if (h)
        g_mime_header_set_raw_value(h, raw->str);
    g_string_free(raw, TRUE);
}

/* References with its ids one space apart, whatever blanks the caller put between them. */
static char *normalise_refs(const char *s)
{
    GString *out = g_string_new(NULL);
    for (const char *p = s; *p;) {
        while (*p == ' ' || *p == '\t')
            p++;
        size_t n = strcspn(p, " \t");
        if (n == 0)
            break;
        if (out->len > 0)
            g_string_append_c(out, ' ');
        g_string_append_len(out, p, (gssize)n);
        p += n;
    }
    return g_string_free(out, FALSE);
}

static void add_mailbox(GMimeMessage *msg, GMimeAddressType type, const char *name,
                        const char *addr)
{
    InternetAddress *ia = internet_address_mailbox_new(name && *name ? name : NULL, addr);
    /* Forced, or GMime would pick the smallest charset that fits (ISO-8859-x for some names);
     * every reader decodes UTF-8, and it is what the caller gave. */
    internet_address_set_charset(ia, "utf-8");
    internet_address_list_add(g_mime_message_get_addresses(msg, type), ia);
    g_object_unref(ia);
}

static int set_date(GMimeMessage *msg, int64_t date_ms, char *err, size_t errlen)
{
    /* RFC 5322 requires a Date; a caller that left it at 0 gets the time of building. */
    int64_t secs = date_ms / 1000 - (date_ms % 1000 < 0); /* floor, for dates before 1970 */
    if (date_ms == 0)
        secs = g_get_real_time() / G_USEC_PER_SEC;
    GDateTime *dt = g_date_time_new_from_unix_utc(secs);
    if (!dt)
        return fail(err, errlen, "date_ms: %lld is outside the years 1 to 9999",
                    (long long)date_ms);
    g_mime_message_set_date(msg, dt);
    g_date_time_unref(dt);
    return 0;
}

static void set_headers(GMimeMessage *msg, const cm_outgoing *m)
{
    GMimeObject *obj = (GMimeObject *)msg;

    add_mailbox(msg, GMIME_ADDRESS_TYPE_FROM, m->from_name, m->from_addr);
    if (m->reply_to && *m->reply_to)
        add_mailbox(msg, GMIME_ADDRESS_TYPE_REPLY_TO, NULL, m->reply_to);
    add_mailbox(msg, GMIME_ADDRESS_TYPE_TO, m->to_name, m->to_addr);
    if (m->subject)
        g_mime_message_set_subject(msg, m->subject, "utf-8");
    /* GMime's Message-Id formatter writes the value as it is; it was checked above. */
    if (m->message_id)
        g_mime_object_set_header(obj, "Message-ID", m->message_id, NULL);
    if (m->in_reply_to)
        set_raw_header(obj, "In-Reply-To", m->in_reply_to);
    if (m->references) {
        char *refs = normalise_refs(m->references);
        set_raw_header(obj, "References", refs);
        g_free(refs);
    }
    if (m->auto_submitted != CM_AUTO_NO) {
        set_raw_header(obj, "Auto-Submitted",
                       m->auto_submitted == CM_AUTO_REPLIED ? "auto-replied" : "auto-generated");
        /* Exchange's and Outlook's own switch for out-of-office replies and the like. */
        set_raw_header(obj, "X-Auto-Response-Suppress", "All");
    }
    if (m->list_unsubscribe || m->list_unsubscribe_mailto) {
        GString *v = g_string_new(NULL);
        if (m->list_unsubscribe)
            g_string_append_printf(v, "<%s>", m->list_unsubscribe);
        if (m->list_unsubscribe_mailto) {
            int bare = strncasecmp(m->list_unsubscribe_mailto, "mailto:", 7) != 0;
            g_string_append_printf(v, "%s<%s%s>", v->len ? ", " : "", bare ? "mailto:" : "",
                                   m->list_unsubscribe_mailto);
        }
        set_raw_header(obj, "List-Unsubscribe", v->str);
        g_string_free(v, TRUE);
        /* RFC 8058 one-click needs the https (or http) URL to POST to; a mailto alone has
         * none. Precedence: bulk keeps vacation responders from answering list mail (RFC 3834
         * 2 asks them to honour it); mail to one person, automatic or not, does not get it. */
        if (m->list_unsubscribe) {
            set_raw_header(obj, "List-Unsubscribe-Post", "List-Unsubscribe=One-Click");
            set_raw_header(obj, "Precedence", "bulk");
        }
    }
}

/* A copy of @p s with CRLF and lone CR turned into LF, which the writer turns into CRLF. A lone
 * CR left in would go out bare in a 7bit part (RFC 5322 forbids it) and as "=0D", not a line
 * end, in a quoted-printable one. */
static char *lf_only(const char *s, size_t *n)
{
    size_t len = strlen(s), j = 0;
    char *out = g_malloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\r') {
            out[j++] = '\n';
            if (s[i + 1] == '\n')
                i++;
        } else {
            out[j++] = s[i];
        }
    }
    out[j] = '\0';
    *n = j;
    return out;
}

static void set_content(GMimePart *part, const char *bytes, size_t len)
{
    GMimeStream *s = g_mime_stream_mem_new_with_buffer(bytes, len);
    GMimeDataWrapper *w = g_mime_data_wrapper_new_with_stream(s, GMIME_CONTENT_ENCODING_DEFAULT);
    g_object_unref(s);
    g_mime_part_set_content(part, w);
    g_object_unref(w);
}

/* A text/plain or text/html part in UTF-8, in the transfer encoding GMime finds best for it
 * within 7 bits (7bit for short ASCII lines, else quoted-printable or base64). Not
 * g_mime_text_part_set_text, which would label Latin-1 text ISO-8859-1. */
static GMimeObject *text_part(const char *subtype, const char *text, const char *language)
{
    size_t n;
    char *lf = lf_only(text, &n);
    GMimePart *part = (GMimePart *)g_mime_text_part_new_with_subtype(subtype);
    g_mime_object_set_content_type_parameter((GMimeObject *)part, "charset", "utf-8");
    set_content(part, lf, n);
    g_free(lf);
    g_mime_part_set_content_encoding(
        part, g_mime_part_get_best_content_encoding(part, GMIME_ENCODING_CONSTRAINT_7BIT));
    if (language)
        set_raw_header((GMimeObject *)part, "Content-Language", language);
    return (GMimeObject *)part;
}

/* Both parameters in UTF-8 (RFC 2231 filename*=utf-8''…), not the smallest charset. */
static void filename_utf8(GMimeObject *obj)
{
    GMimeContentDisposition *d = g_mime_object_get_content_disposition(obj);
    GMimeParam *p = d ? g_mime_param_list_get_parameter(
                            g_mime_content_disposition_get_parameters(d), "filename")
                      : NULL;
    if (p)
        g_mime_param_set_charset(p, "utf-8");
    p = g_mime_param_list_get_parameter(
        g_mime_content_type_get_parameters(g_mime_object_get_content_type(obj)), "name");
    if (p)
        g_mime_param_set_charset(p, "utf-8");
}

static GMimeObject *attachment_part(const cm_attachment *a)
{
    GMimePart *part = g_mime_part_new();
    GMimeContentType *ct = g_mime_content_type_parse(
        NULL, a->content_type ? a->content_type : "application/octet-stream");
    g_mime_object_set_content_type((GMimeObject *)part, ct);
    g_object_unref(ct);
    set_content(part, a->data ? a->data : "", a->len);
    g_mime_part_set_content_encoding(part, GMIME_CONTENT_ENCODING_BASE64);
    g_mime_object_set_disposition((GMimeObject *)part, GMIME_DISPOSITION_ATTACHMENT);
    if (a->filename && *a->filename) {
        g_mime_part_set_filename(part, a->filename);
        filename_utf8((GMimeObject *)part);
    }
    return (GMimeObject *)part;
}

/* text, html, or both as multipart/alternative (plainest first, as RFC 2046 5.1.4 orders);
 * inside multipart/mixed when there are attachments. */
static GMimeObject *build_body(const cm_outgoing *m)
{
    GMimeObject *body;
    if (m->text && m->html) {
        GMimeMultipart *alt = g_mime_multipart_new_with_subtype("alternative");
        GMimeObject *t = text_part("plain", m->text, m->language);
        GMimeObject *h = text_part("html", m->html, m->language);
        g_mime_multipart_add(alt, t);
        g_mime_multipart_add(alt, h);
        g_object_unref(t);
        g_object_unref(h);
        body = (GMimeObject *)alt;
    } else {
        body = text_part(m->text ? "plain" : "html", m->text ? m->text : m->html, m->language);
    }
    if (m->natt == 0)
        return body;

    GMimeMultipart *mixed = g_mime_multipart_new_with_subtype("mixed");
    g_mime_multipart_add(mixed, body);
    g_object_unref(body);
    for (int i = 0; i < m->natt; i++) {
        GMimeObject *a = attachment_part(&m->att[i]);
        g_mime_multipart_add(mixed, a);
        g_object_unref(a);
    }
    return (GMimeObject *)mixed;
}

/* Writes @p msg with CRLF line ends into a malloc'd buffer ending in CRLF. */
static int serialise(GMimeMessage *msg, char **out, size_t *len, char *err, size_t errlen)
{
    GMimeFormatOptions *fo = g_mime_format_options_new();
    g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_DOS);
    GByteArray *bytes = g_byte_array_new();
    GMimeStream *mem = g_mime_stream_mem_new_with_byte_array(bytes);
    int rc = -1;

    if (g_mime_object_write_to_stream((GMimeObject *)msg, fo, mem) < 0 ||
        g_mime_stream_flush(mem) != 0) {
        fail(err, errlen, "cm_mime_build: GMime could not write the message");
        goto out;
    }
    /* A body that does not end in a line end would leave the last line open. */
    int open = bytes->len < 2 || memcmp(bytes->data + bytes->len - 2, "\r\n", 2) != 0;
    size_t n = bytes->len + (open ? 2 : 0);
    char *buf = malloc(n + 1);
    if (!buf) {
        fail(err, errlen, "cm_mime_build: out of memory for a message of %zu bytes", n);
        goto out;
    }
    memcpy(buf, bytes->data, bytes->len);
    if (open)
        memcpy(buf + bytes->len, "\r\n", 2);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    rc = 0;
out:
    g_object_unref(mem); /* owns and frees the byte array */
    g_mime_format_options_free(fo);
    return rc;
}

int cm_mime_build(const cm_outgoing *m, char **out, size_t *len, char *err, size_t errlen)
{
    if (err && errlen > 0)
        err[0] = '\0';
    if (!out || !len)
        return fail(err, errlen, "cm_mime_build: nowhere to put the message");
    *out = NULL;
    *len = 0;
    if (!m)
        return fail(err, errlen, "cm_mime_build: no message given");
    if (check_outgoing(m, err, errlen) != 0)
        return -1;

    pthread_once(&gmime_once, gmime_start);
    GMimeMessage *msg = g_mime_message_new(FALSE);
    int rc = -1;
    if (set_date(msg, m->date_ms, err, errlen) != 0)
        goto out;
    set_headers(msg, m);
    GMimeObject *body = build_body(m);
    /* Each text part says its language; the top part too, where a reader looks first. */
    if (m->language && GMIME_IS_MULTIPART(body))
        set_raw_header(body, "Content-Language", m->language);
    g_mime_message_set_mime_part(msg, body);
    g_object_unref(body);
    rc = serialise(msg, out, len, err, errlen);
out:
    g_object_unref(msg);
    return rc;
}

/* ---- Message-ID ------------------------------------------------------------------------- */

static int random_bytes(unsigned char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(buf + got, n - got, 0);
        if (r > 0) {
            got += (size_t)r;
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else if (r < 0 && errno == ENOSYS) {
            break; /* a kernel older than 3.17: read the device below */
        } else {
            return -1;
        }
    }
    if (got == n)
        return 0;

    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r > 0)
            got += (size_t)r;
        else if (!(r < 0 && errno == EINTR))
            break;
    }
    close(fd);
    return got == n ? 0 : -1;
}

/* A host name: letters, digits, '-' and '.', no empty label. */
static int domain_ok(const char *d, size_t n)
{
    if (n == 0 || n > 253 || d[0] == '.' || d[n - 1] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)d[i]) && d[i] != '-' && d[i] != '.')
            return 0;
        if (d[i] == '.' && d[i + 1] == '.')
            return 0;
    }
    return 1;
}

int cm_message_id(const char *domain, char *out, size_t cap)
{
    if (!out)
        return -1;
    if (cap > 0)
        out[0] = '\0';
    size_t n = domain ? strlen(domain) : 0;
    /* '<', 32 hex digits, '@', the domain, '>', NUL. */
    if (!domain || !domain_ok(domain, n) || cap < n + 36)
        return -1;
    unsigned char r[16];
    if (random_bytes(r, sizeof r) != 0)
        return -1;
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    *p++ = '<';
    for (size_t i = 0; i < sizeof r; i++) {
        *p++ = hex[r[i] >> 4];
        *p++ = hex[r[i] & 15];
    }
    *p++ = '@';
    memcpy(p, domain, n);
    p += n;
    *p++ = '>';
    *p = '\0';
    return 0;
}

/* ---- SMTP -------------------------------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_start(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* The bytes still to upload. */
typedef struct upload {
    const char *p;
    size_t left;
} upload;

static size_t read_body(char *buf, size_t size, size_t nitems, void *ud)
{
    upload *u = ud;
    size_t n = size * nitems < u->left ? size * nitems : u->left;
    memcpy(buf, u->p, n);
    u->p += n;
    u->left -= n;
    return n;
}

/* What the server said: the answer being read, and the last one that said no (4xx or 5xx),
 * kept apart because libcurl's QUIT after a failure draws a "221 Bye" after it. Lines of one
 * answer are joined by spaces. */
typedef struct answer {
    char cur[512];
    size_t n;
    int complete; /* the last line was "ddd text": the next line starts a new answer */
    char refusal[512];
} answer;

static void answer_line(answer *a, const char *line, size_t len)
{
    if (a->complete) {
        a->n = 0;
        a->cur[0] = '\0';
    }
    if (a->n > 0 && a->n + 1 < sizeof a->cur)
        a->cur[a->n++] = ' ';
    /* Server text goes into logs and JSON: only printable ASCII is kept. */
    for (size_t i = 0; i < len && a->n + 1 < sizeof a->cur; i++) {
        unsigned char c = (unsigned char)line[i];
        a->cur[a->n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    a->cur[a->n] = '\0';
    a->complete = !(len >= 4 && line[3] == '-');
    if (a->complete && (a->cur[0] == '4' || a->cur[0] == '5'))
        memcpy(a->refusal, a->cur, a->n + 1);
}

/* libcurl's debug hook, used only to read what the server said (never what we sent, which
 * holds the AUTH exchange). */
static int on_debug(CURL *h, curl_infotype type, char *data, size_t size, void *ud)
{
    (void)h;
    if (type != CURLINFO_HEADER_IN)
        return 0;
    while (size > 0) {
        size_t len = 0;
        while (len < size && data[len] != '\n')
            len++;
        size_t next = len < size ? len + 1 : len;
        while (len > 0 && (data[len - 1] == '\r' || data[len - 1] == '\n'))
            len--;
        if (len > 0)
            answer_line(ud, data, len);
        data += next;
        size -= next;
    }
    return 0;
}

/* @p url as it may be shown: its userinfo ("user:password@") left out. */
static void url_for_messages(const char *url, char *out, size_t cap)
{
    const char *auth = strstr(url, "://");
    auth = auth ? auth + 3 : url;
    size_t alen = strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *p = auth; p < auth + alen; p++)
        if (*p == '@')
            at = p;
    if (at)
        snprintf(out, cap, "%.*s%.*s", (int)(auth - url), url, (int)(strlen(at + 1)), at + 1);
    else
        snprintf(out, cap, "%s", url);
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
}

/* Replaces every occurrence of @p secret in @p s (a buffer of @p cap bytes) by "***". */
static void scrub(char *s, size_t cap, const char *secret)
{
    size_t n = secret ? strlen(secret) : 0;
    if (n == 0 || cap < 4)
        return;
    char *hit;
    size_t from = 0;
    while ((hit = strstr(s + from, secret)) != NULL) {
        size_t at = (size_t)(hit - s), tail = strlen(hit + n);
        if (at + 3 >= cap) {
            s[at] = '\0';
            return;
        }
        if (at + 3 + tail >= cap)
            tail = cap - 1 - (at + 3);
        memmove(s + at + 3, hit + n, tail);
        memcpy(s + at, "***", 3);
        s[at + 3 + tail] = '\0';
        from = at + 3;
    }
}

/* An envelope address goes into an SMTP command: a CR or LF would end it and start another. */
static int check_envelope(const char *field, const char *a, int required, char *err, size_t errlen)
{
    if (!a || !*a)
        return required ? fail(err, errlen, "%s: missing", field) : 0;
    for (const char *p = a; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c == 0x7f || c == '<' || c == '>')
            return fail(err, errlen, "%s: contains a space, control character or angle bracket",
                        field);
    }
    if (!strchr(a, '@'))
        return fail(err, errlen, "%s: \"%.80s\" has no '@'", field, a);
    return 0;
}

static int check_smtp(const cm_smtp *s, const char *shown, char *err, size_t errlen)
{
    if (!s || !s->url || !*s->url)
        return fail(err, errlen, "url: missing");
    if (strncasecmp(s->url, "smtp://", 7) != 0 && strncasecmp(s->url, "smtps://", 8) != 0)
        return fail(err, errlen, "url: \"%.80s\" is neither smtp:// nor smtps://", shown);
    for (const char *p = s->url; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return fail(err, errlen, "url: \"%.80s\" contains a space or control character", shown);
    if ((s->user && has_line_break(s->user)) || (s->password && has_line_break(s->password)))
        return fail(err, errlen, "%s: the user or password contains a line break", shown);
    return 0;
}

/* Sets the options of one exchange; 0, or the first option libcurl refused. */
static CURLcode configure(CURL *h, const cm_smtp *s, const char *mail_from, struct curl_slist *rcpt,
                          upload *up, answer *ans, char *errbuf)
{
    long timeout = s->timeout_ms > 0 ? s->timeout_ms : 30000;
    long tls = s->require_tls ? (long)CURLUSESSL_ALL : (long)CURLUSESSL_TRY;
    CURLcode rc;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if ((rc = curl_easy_setopt(h, opt, val)) != CURLE_OK)                                      \
            return rc;                                                                             \
    } while (0)
    SET(CURLOPT_ERRORBUFFER, errbuf);
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "smtp,smtps");
#else
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_SMTP | CURLPROTO_SMTPS));
#endif
    SET(CURLOPT_URL, s->url);
    SET(CURLOPT_MAIL_FROM, mail_from ? mail_from : "");
    SET(CURLOPT_MAIL_RCPT, rcpt);
    SET(CURLOPT_UPLOAD, 1L);
    SET(CURLOPT_READFUNCTION, read_body);
    SET(CURLOPT_READDATA, up);
    SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)up->left);
    SET(CURLOPT_USE_SSL, tls);
    SET(CURLOPT_TIMEOUT_MS, timeout);
    SET(CURLOPT_NOSIGNAL, 1L);
    if (s->user && *s->user)
        SET(CURLOPT_USERNAME, s->user);
    if (s->password)
        SET(CURLOPT_PASSWORD, s->password);
    /* The hook first: verbose without it would print to stderr. */
    SET(CURLOPT_DEBUGFUNCTION, on_debug);
    SET(CURLOPT_DEBUGDATA, ans);
    SET(CURLOPT_VERBOSE, 1L);
#undef SET
    return CURLE_OK;
}

/*
 * Runs one exchange; 0 when the server took the message, else -1 with @p why ("what went wrong",
 * the server's answer when it gave one) and *permanent.
 */
static int deliver(const cm_smtp *s, const char *mail_from, const char *rcpt, const char *msg,
                   size_t len, int *permanent, char *why, size_t cap)
{
    pthread_once(&curl_once, curl_start);
    if (curl_init_rc != CURLE_OK)
        return fail(why, cap, "libcurl did not start: %s", curl_easy_strerror(curl_init_rc));
    CURL *h = curl_easy_init();
    if (!h)
        return fail(why, cap, "libcurl could not make a handle");
    struct curl_slist *to = curl_slist_append(NULL, rcpt);
    upload up = {msg, len};
    answer ans = {.complete = 1, .refusal = ""};
    char errbuf[CURL_ERROR_SIZE] = "";
    int rc = -1;
    if (!to) {
        fail(why, cap, "out of memory");
        goto out;
    }
    CURLcode cc = configure(h, s, mail_from, to, &up, &ans, errbuf);
    if (cc != CURLE_OK) {
        fail(why, cap, "libcurl refused an option: %s", curl_easy_strerror(cc));
        goto out;
    }
    cc = curl_easy_perform(h);
    if (cc == CURLE_OK) {
        rc = 0;
        goto out;
    }
    long code = 0;
    if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK)
        code = 0;
    *permanent = code >= 500 && code <= 599;
    const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(cc);
    /* The server's own words when it said no; after a 2xx or 3xx the failure is ours or the
     * network's, and its last "250 OK" would only mislead. */
    if (code >= 400 && ans.refusal[0])
        fail(why, cap, "%s (%s)", ans.refusal, detail);
    else
        fail(why, cap, "%s", detail);
out:
    curl_slist_free_all(to);
    curl_easy_cleanup(h);
    return rc;
}

int cm_smtp_send(const cm_smtp *s, const char *mail_from, const char *rcpt, const char *msg,
                 size_t len, int *permanent, char *err, size_t errlen)
{
    int ignored;
    if (!permanent)
        permanent = &ignored;
    *permanent = 0;
    if (err && errlen > 0)
        err[0] = '\0';

    /* Each text is made whole here and scrubbed before it is cut to @p errlen, so a cut can
     * never leave part of a secret behind. */
    char shown[256], why[1024] = "", text[1400];
    url_for_messages(s && s->url ? s->url : "", shown, sizeof shown);
    int rc;
    if (check_smtp(s, shown, why, sizeof why) != 0) {
        rc = -1;
        snprintf(text, sizeof text, "%s", why);
    } else if (check_envelope("mail_from", mail_from, 0, why, sizeof why) != 0 ||
               check_envelope("rcpt", rcpt, 1, why, sizeof why) != 0 ||
               (!msg || len == 0 ? fail(why, sizeof why, "no message to send") : 0) != 0) {
        /* This message can never go as it is; a bad URL above may be fixed in the settings,
         * and then a retry works. */
        *permanent = 1;
        rc = -1;
        snprintf(text, sizeof text, "%s: %s", shown, why);
    } else {
        rc = deliver(s, mail_from, rcpt, msg, len, permanent, why, sizeof why);
        /* The user is masked in what the server and libcurl said only: the URL shown has no
         * userinfo, and a user such as "mail" must not eat the host's name. */
        scrub(why, sizeof why, s->user);
        snprintf(text, sizeof text, "%s: %s", shown, why);
    }
    if (rc == 0)
        return 0;
    if (s)
        scrub(text, sizeof text, s->password);
    if (err && errlen > 0)
        snprintf(err, errlen, "%s", text);
    return -1;
}
