/*
 * mail_in.c — incoming mail as plain C data (mail.h: cm_mime_parse, cm_reply_token). GMime reads
 * the bytes; this file picks the addresses, the body and the attachments out of its tree.
 * Whether the message is a customer's, an auto-reply or a bounce is mail_classify.c's to say;
 * an HTML-only body is made text by html_text.c. mail_in.h holds what they share.
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "mail_in.h"

static pthread_once_t in_once = PTHREAD_ONCE_INIT;

static void in_init(void)
{
    g_mime_init();
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- strings ------------------------------------------------------------------------------ */

/*
 * Copies @p len bytes of @p s into a new malloc'd string that is valid UTF-8: a byte that does not
 * begin a well-formed sequence becomes U+FFFD and NULs are dropped. With @p line, every other
 * control character (CR and LF too) becomes a space and the ends are trimmed, for header values.
 * NULL when out of memory.
 */
char *in_own_utf8(const char *s, size_t len, int line)
{
    /* Valid text (the usual case) is copied as it is; only broken text can grow, by 3 bytes for
     * each bad byte at most. */
    int valid = len == 0 || g_utf8_validate(s, (gssize)len, NULL);
    char *out = malloc(valid ? len + 1 : len * 3 + 1), *shrunk;
    size_t n = 0, i = 0;

    if (out == NULL)
        return NULL;
    if (valid && len > 0) {
        memcpy(out, s, len);
        n = i = len;
    }
    while (i < len) {
        const char *end;
        g_utf8_validate(s + i, (gssize)(len - i), &end);
        memcpy(out + n, s + i, (size_t)(end - (s + i)));
        n += (size_t)(end - (s + i));
        i = (size_t)(end - s);
        if (i < len) {
            if (s[i] != '\0') {
                memcpy(out + n, "\xEF\xBF\xBD", 3);
                n += 3;
            }
            i++;
        }
    }
    out[n] = '\0';
    if (line) {
        size_t a = 0;
        for (size_t k = 0; k < n; k++)
            if ((unsigned char)out[k] < 0x20 || out[k] == 0x7F)
                out[k] = ' ';
        while (a < n && out[a] == ' ')
            a++;
        while (n > a && out[n - 1] == ' ')
            n--;
        memmove(out, out + a, n - a);
        n -= a;
        out[n] = '\0';
    }
    shrunk = realloc(out, n + 1);
    return shrunk != NULL ? shrunk : out;
}

/* in_own_utf8 of a NUL-ended string, recording a failed allocation in @p c; NULL stays NULL. */
char *in_own(in_ctx *c, const char *s, int line)
{
    char *r;

    if (s == NULL)
        return NULL;
    if ((r = in_own_utf8(s, strlen(s), line)) == NULL)
        c->oom = 1;
    return r;
}

static void lower_ascii(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* Appends the owned string @p s to the array @p *arr of @p *n; frees it when it cannot. */
void in_push(in_ctx *c, char ***arr, int *n, char *s)
{
    char **grown;

    if (s == NULL)
        return;
    if ((grown = realloc(*arr, sizeof **arr * (size_t)(*n + 1))) == NULL) {
        free(s);
        c->oom = 1;
        return;
    }
    *arr = grown;
    grown[(*n)++] = s;
}

int in_contains(char **arr, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (strcmp(arr[i], s) == 0)
            return 1;
    return 0;
}

/* True when @p s starts with @p prefix, ignoring ASCII case. */
int in_starts_ci(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Finds @p what (ASCII, any case) in [p, end); NULL when absent. */
const char *in_find_ci(const char *p, const char *end, const char *what)
{
    size_t n = strlen(what);

    for (; (size_t)(end - p) >= n; p++)
        if (strncasecmp(p, what, n) == 0)
            return p;
    return NULL;
}

/* ---- addresses and ids -------------------------------------------------------------------- */

/*
 * A mailbox's address as we hand it over: lower-cased, valid UTF-8, with an '@' and no space or
 * control character (what a reply could be sent to). NULL when it is not one.
 */
char *in_bare_address(in_ctx *c, const char *addr)
{
    char *a = in_own(c, addr, 1);

    if (a == NULL)
        return NULL;
    lower_ascii(a);
    if (a[0] == '\0' || a[0] == '@' || strchr(a, '@') == NULL || strchr(a, ' ') != NULL) {
        free(a);
        return NULL;
    }
    return a;
}

/*
 * Calls @p fn for every mailbox in @p list, groups flattened (RFC 5322 groups do not nest; the
 * depth check keeps a parser that let them from recursing far).
 */
static void each_mailbox(InternetAddressList *list, int depth,
                         void (*fn)(InternetAddressMailbox *, void *), void *ud)
{
    int n = list != NULL ? internet_address_list_length(list) : 0;

    for (int i = 0; i < n; i++) {
        InternetAddress *ia = internet_address_list_get_address(list, i);
        if (INTERNET_ADDRESS_IS_MAILBOX(ia))
            fn((InternetAddressMailbox *)ia, ud);
        else if (INTERNET_ADDRESS_IS_GROUP(ia) && depth < 4)
            each_mailbox(internet_address_group_get_members((InternetAddressGroup *)ia), depth + 1,
                         fn, ud);
    }
}

/* A list of addresses being collected, deduplicated and capped. */
typedef struct addr_sink {
    in_ctx *c;
    char ***arr;
    int *n;
} addr_sink;

static void sink_mailbox(InternetAddressMailbox *mb, void *ud)
{
    addr_sink *s = ud;
    char *a;

    if (*s->n >= IN_MAX_ADDRS)
        return;
    if ((a = in_bare_address(s->c, internet_address_mailbox_get_addr(mb))) == NULL)
        return;
    if (in_contains(*s->arr, *s->n, a))
        free(a);
    else
        in_push(s->c, s->arr, s->n, a);
}

/* Adds the mailboxes of every header @p name of @p o to @p arr (decoded with c->opts). */
void in_collect_addresses(in_ctx *c, GMimeObject *o, const char *name, char ***arr, int *n)
{
    GMimeHeaderList *hl = g_mime_object_get_header_list(o);
    int count = g_mime_header_list_get_count(hl);
    addr_sink sink = {c, arr, n};

    for (int i = 0; i < count; i++) {
        GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
        const char *raw = g_mime_header_get_raw_value(h);
        if (raw == NULL || g_ascii_strcasecmp(g_mime_header_get_name(h), name) != 0)
            continue;
        InternetAddressList *list = internet_address_list_parse(c->opts, raw);
        each_mailbox(list, 0, sink_mailbox, &sink);
        if (list != NULL)
            g_object_unref(list);
    }
}

typedef struct first_from {
    in_ctx *c;
    int done;
} first_from;

static void take_from(InternetAddressMailbox *mb, void *ud)
{
    first_from *f = ud;
    const char *name = internet_address_get_name((InternetAddress *)mb);
    char *a;

    if (f->done || (a = in_bare_address(f->c, internet_address_mailbox_get_addr(mb))) == NULL)
        return;
    f->done = 1;
    f->c->out->from_addr = a;
    if (name != NULL && name[0] != '\0') {
        f->c->out->from_name = in_own(f->c, name, 1);
        if (f->c->out->from_name != NULL && f->c->out->from_name[0] == '\0') {
            free(f->c->out->from_name);
            f->c->out->from_name = NULL;
        }
    }
}

/* The raw value of the first header @p name of @p o, or NULL. */
const char *in_raw_header(GMimeObject *o, const char *name)
{
    GMimeHeader *h = g_mime_header_list_get_header(g_mime_object_get_header_list(o), name);

    return h != NULL ? g_mime_header_get_raw_value(h) : NULL;
}

/*
 * Turns one message id (@p len bytes of @p s; @p bare when it was written without angle
 * brackets) into "<id>" as a new malloc'd string. NULL (and no allocation failure) when what is
 * left is empty, too long, or holds a space, a control character or an angle bracket: such an id
 * could not be written back into a References header, so it is not one we can thread on. A bare
 * id must have an '@', so that words ("In-Reply-To: your message of Monday") are not taken for
 * one.
 */
static char *one_id(in_ctx *c, const char *s, size_t len, int bare)
{
    char *raw, *dec, *r = NULL;

    if (len > IN_MAX_ID + 2)
        return NULL;
    if ((raw = strndup(s, len)) == NULL) {
        c->oom = 1;
        return NULL;
    }
    dec = g_mime_utils_decode_message_id(raw);
    free(raw);
    if (dec == NULL)
        return NULL;
    size_t n = strlen(dec);
    int bad = n == 0 || n > IN_MAX_ID || !g_utf8_validate(dec, -1, NULL) ||
              (bare && strchr(dec, '@') == NULL);
    for (size_t i = 0; i < n && !bad; i++)
        bad = (unsigned char)dec[i] <= 0x20 || dec[i] == 0x7F || dec[i] == '<' || dec[i] == '>';
    if (!bad && (r = malloc(n + 3)) == NULL)
        c->oom = 1;
    else if (!bad)
        snprintf(r, n + 3, "<%s>", dec);
    g_free(dec);
    return r;
}

/*
 * Calls @p fn for each "<…>" in @p v, in order; when @p v holds none, for @p v whole (a bare id).
 * Done by hand rather than with g_mime_references_parse, which stops at the first comma some
 * clients put between ids. Stops when @p fn returns nonzero.
 */
static void each_id(in_ctx *c, const char *v, int (*fn)(in_ctx *, char *, void *), void *ud)
{
    const char *p = v, *lt, *gt;
    int any = 0;

    if (v == NULL)
        return;
    while ((lt = strchr(p, '<')) != NULL && (gt = strchr(lt, '>')) != NULL) {
        const char *inner = lt + 1;
        const char *again = memchr(inner, '<', (size_t)(gt - inner));
        if (again != NULL) { /* "<<a@b>": start from the last '<' */
            p = again;
            continue;
        }
        any = 1;
        char *id = one_id(c, lt, (size_t)(gt - lt + 1), 0);
        if (id != NULL && fn(c, id, ud))
            return;
        p = gt + 1;
    }
    if (!any) {
        char *id = one_id(c, v, strlen(v), 1);
        if (id != NULL)
            fn(c, id, ud);
    }
}

static int take_first(in_ctx *c, char *id, void *ud)
{
    (void)c;
    *(char **)ud = id;
    return 1;
}

/* The first id of @p v as "<…>" (owned), or NULL. */
char *in_first_id(in_ctx *c, const char *v)
{
    char *id = NULL;

    each_id(c, v, take_first, &id);
    return id;
}

/* Keeps the first reference (the thread's root) and the newest IN_MAX_REFS - 1. */
static int take_ref(in_ctx *c, char *id, void *ud)
{
    cm_incoming *m = ud;

    if (m->nrefs == IN_MAX_REFS) {
        free(m->references[1]);
        memmove(m->references + 1, m->references + 2, sizeof(char *) * (IN_MAX_REFS - 2));
        m->nrefs--;
    }
    in_push(c, &m->references, &m->nrefs, id);
    return 0;
}

/*
 * The id on the first "Message-ID:" line of @p text (folded continuation lines joined), or NULL:
 * how a bounce that quotes the returned message's headers as text names that message.
 */
char *in_scan_message_id(in_ctx *c, const char *text, size_t len)
{
    const char *end;

    if (text == NULL || len == 0) /* an empty part has no bytes at all */
        return NULL;
    end = text + len;
    for (const char *p = text; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl != NULL ? nl : end;
        if ((size_t)(stop - p) > 11 && strncasecmp(p, "Message-ID:", 11) == 0) {
            /* Take the rest of the field: this line and any continuation lines. */
            while (stop < end && stop + 1 < end && (stop[1] == ' ' || stop[1] == '\t')) {
                const char *next = memchr(stop + 1, '\n', (size_t)(end - stop - 1));
                stop = next != NULL ? next : end;
            }
            char *v = strndup(p + 11, (size_t)(stop - p - 11));
            if (v == NULL) {
                c->oom = 1;
                return NULL;
            }
            for (char *q = v; *q; q++)
                if (*q == '\r' || *q == '\n' || *q == '\t')
                    *q = ' ';
            char *id = in_first_id(c, v);
            free(v);
            return id;
        }
        p = stop + 1;
    }
    return NULL;
}

/* ---- parts -------------------------------------------------------------------------------- */

/* The decoded content of @p part (transfer encoding undone), as a new GByteArray, or NULL. */
GByteArray *in_part_bytes(GMimePart *part)
{
    GMimeDataWrapper *w = g_mime_part_get_content(part);
    GMimeStream *ms = g_mime_stream_mem_new();
    GByteArray *ba = NULL;

    if (w == NULL || g_mime_data_wrapper_write_to_stream(w, ms) >= 0) {
        GByteArray *held = g_mime_stream_mem_get_byte_array((GMimeStreamMem *)ms);
        /* Take the array from the stream so that unref'ing it does not free the bytes. */
        g_mime_stream_mem_set_owner((GMimeStreamMem *)ms, FALSE);
        ba = held;
    }
    g_object_unref(ms);
    return ba;
}

/* A filename as handed over: UTF-8, its folders cut off (it is a name, never a path). */
static char *file_name(in_ctx *c, const char *name)
{
    const char *slash = name != NULL ? strrchr(name, '/') : NULL;
    const char *back = name != NULL ? strrchr(name, '\\') : NULL;
    char *r;

    if (slash != NULL)
        name = slash + 1;
    if (back != NULL && back + 1 > name)
        name = back + 1;
    if ((r = in_own(c, name, 1)) != NULL &&
        (r[0] == '\0' || strcmp(r, ".") == 0 || strcmp(r, "..") == 0)) {
        free(r);
        r = NULL;
    }
    return r;
}

/* Adds an attachment of @p len bytes (copied) to the result, unless IN_MAX_ATT are kept. */
static void add_att(in_ctx *c, GMimeObject *o, const char *filename, const guint8 *data, size_t len)
{
    cm_incoming *m = c->out;
    cm_in_attachment *grown, *a;
    char *type;

    if (m->natt >= IN_MAX_ATT)
        return;
    if ((grown = realloc(m->att, sizeof *grown * (size_t)(m->natt + 1))) == NULL) {
        c->oom = 1;
        return;
    }
    m->att = grown;
    a = &grown[m->natt++];
    memset(a, 0, sizeof *a);
    type = g_mime_content_type_get_mime_type(g_mime_object_get_content_type(o));
    a->content_type = in_own(c, type != NULL ? type : "application/octet-stream", 1);
    g_free(type);
    if (a->content_type != NULL)
        lower_ascii(a->content_type);
    a->filename = file_name(c, filename);
    if ((a->data = malloc(len + 1)) == NULL) {
        c->oom = 1;
        return;
    }
    if (len > 0)
        memcpy(a->data, data, len);
    a->data[len] = '\0';
    a->len = len;
}

static void add_part_att(in_ctx *c, GMimePart *part)
{
    GByteArray *ba;

    if (c->out->natt >= IN_MAX_ATT)
        return;
    if ((ba = in_part_bytes(part)) == NULL) { /* kept, empty, as add_message_att does */
        add_att(c, (GMimeObject *)part, g_mime_part_get_filename(part), NULL, 0);
        return;
    }
    add_att(c, (GMimeObject *)part, g_mime_part_get_filename(part), ba->data, ba->len);
    g_byte_array_unref(ba);
}

/* An attached message (message/rfc822) is kept whole: a forwarded mail is the customer's. */
static void add_message_att(in_ctx *c, GMimeMessagePart *mp)
{
    GMimeMessage *inner = g_mime_message_part_get_message(mp);
    GMimeObject *o = (GMimeObject *)mp;
    GMimeStream *ms;
    GByteArray *ba;

    if (c->out->natt >= IN_MAX_ATT || inner == NULL)
        return;
    ms = g_mime_stream_mem_new();
    ba = g_mime_stream_mem_get_byte_array((GMimeStreamMem *)ms);
    /* Kept even when it cannot be written out: its name still tells that a message came. */
    if (g_mime_object_write_to_stream((GMimeObject *)inner, NULL, ms) < 0)
        g_byte_array_set_size(ba, 0);
    add_att(c, o, g_mime_object_get_content_disposition_parameter(o, "filename"), ba->data,
            ba->len);
    g_object_unref(ms);
}

static int is_type(GMimeObject *o, const char *type, const char *subtype)
{
    return g_mime_content_type_is_type(g_mime_object_get_content_type(o), type, subtype);
}

/* A detached signature says nothing to a person reading the message. */
static int is_signature(GMimeObject *o)
{
    return is_type(o, "application", "pgp-signature") ||
           is_type(o, "application", "pkcs7-signature") ||
           is_type(o, "application", "x-pkcs7-signature");
}

/* The parts of a delivery report that a report's reader consumes (RFC 3464, RFC 6533). */
static int take_report_part(in_ctx *c, GMimePart *part)
{
    GMimeObject *o = (GMimeObject *)part;

    if (is_type(o, "message", "delivery-status") ||
        is_type(o, "message", "global-delivery-status")) {
        if (c->dsn == NULL)
            c->dsn = part;
        return 1;
    }
    if (is_type(o, "text", "rfc822-headers") || is_type(o, "message", "global-headers")) {
        if (c->returned_hdrs == NULL)
            c->returned_hdrs = part;
        return 1;
    }
    return 0;
}

/*
 * A leaf part: the first inline text/plain is the text, the first inline text/html the HTML;
 * anything else the sender meant to send (a named file, an image without a name, a PDF) is an
 * attachment. Later inline text parts are alternatives or signatures of the first and dropped.
 */
static void walk_part(in_ctx *c, GMimePart *part, int depth)
{
    GMimeObject *o = (GMimeObject *)part;
    int attached = g_mime_part_is_attachment(part) || g_mime_part_get_filename(part) != NULL;

    if (depth == 1 && c->report && take_report_part(c, part))
        return;
    if (!attached && GMIME_IS_TEXT_PART(part) && is_type(o, "text", "plain")) {
        if (c->plain == NULL)
            c->plain = (GMimeTextPart *)part;
        return;
    }
    if (!attached && GMIME_IS_TEXT_PART(part) && is_type(o, "text", "html")) {
        if (c->html == NULL)
            c->html = (GMimeTextPart *)part;
        return;
    }
    if (!is_signature(o))
        add_part_att(c, part);
}

/* Walks the MIME tree under @p o depth-first, in order, within IN_MAX_DEPTH and IN_MAX_OBJECTS. */
static void walk(in_ctx *c, GMimeObject *o, int depth)
{
    if (o == NULL || depth > IN_MAX_DEPTH || c->objects >= IN_MAX_OBJECTS || c->oom)
        return;
    c->objects++;
    if (GMIME_IS_MULTIPART(o)) {
        GMimeMultipart *mp = (GMimeMultipart *)o;
        int n = g_mime_multipart_get_count(mp);
        for (int i = 0; i < n; i++)
            walk(c, g_mime_multipart_get_part(mp, i), depth + 1);
    } else if (GMIME_IS_MESSAGE_PART(o)) {
        GMimeMessagePart *mp = (GMimeMessagePart *)o;
        if (depth == 1 && c->returned == NULL)
            c->returned = g_mime_message_part_get_message(mp);
        add_message_att(c, mp);
    } else if (GMIME_IS_PART(o)) {
        walk_part(c, (GMimePart *)o, depth);
    }
}

/* ---- text --------------------------------------------------------------------------------- */

/* Makes CRLF and lone CR line ends "\n", in place: what the wire needs, a reader does not. */
void in_lf_only(char *s)
{
    char *w = s;

    for (const char *r = s; *r; r++) {
        if (*r != '\r')
            *w++ = *r;
        else if (r[1] != '\n')
            *w++ = '\n';
    }
    *w = '\0';
}

/*
 * The text of @p part as a new malloc'd UTF-8 string, at most IN_MAX_BODY bytes. GMime converts
 * from the declared charset; when nothing was declared (or the declaration lied) and the bytes are
 * not UTF-8, they are read in the first fallback charset that fits them. Line ends are "\n".
 */
static char *part_text(in_ctx *c, GMimeTextPart *part)
{
    char *t = g_mime_text_part_get_text(part), *r;
    size_t n;

    if (t == NULL)
        return in_own(c, "", 0);
    if (!g_utf8_validate(t, -1, NULL)) {
        char *d = g_mime_utils_decode_8bit(c->opts, t, strlen(t));
        g_free(t);
        if ((t = d) == NULL)
            return in_own(c, "", 0);
    }
    /* Cut before copying, on a character boundary (t is UTF-8 by now). */
    if ((n = strlen(t)) > IN_MAX_BODY) {
        n = IN_MAX_BODY;
        while (n > 0 && ((unsigned char)t[n] & 0xC0) == 0x80)
            n--;
    }
    if ((r = in_own_utf8(t, n, 0)) == NULL)
        c->oom = 1;
    else
        in_lf_only(r);
    g_free(t);
    return r;
}

static void read_body(in_ctx *c)
{
    cm_incoming *m = c->out;

    if (c->html != NULL)
        m->html = part_text(c, c->html);
    if (c->plain != NULL)
        m->text = part_text(c, c->plain);
    else if (m->html != NULL && (m->text = in_html_to_text(m->html, strlen(m->html))) == NULL)
        c->oom = 1;
}

/* ---- headers ------------------------------------------------------------------------------ */

/*
 * Options for reading the headers: a header written in raw 8-bit bytes is most likely in the
 * charset the sender's client declared for the body, so that one is tried first, then UTF-8,
 * then windows-1256 (Persian and Arabic clients), then ISO-8859-1, which takes any byte.
 */
static GMimeParserOptions *header_options(const char *body_charset)
{
    const char *list[] = {"utf-8", "windows-1256", "iso-8859-1", NULL, NULL};
    GMimeParserOptions *o = g_mime_parser_options_new();

    if (body_charset != NULL && g_ascii_strcasecmp(body_charset, "utf-8") != 0 &&
        g_ascii_strcasecmp(body_charset, "us-ascii") != 0 && strlen(body_charset) < 64) {
        memmove(list + 1, list, sizeof list[0] * 3);
        list[0] = body_charset;
    }
    g_mime_parser_options_set_fallback_charsets(o, list);
    return o;
}

/* The length of the RFC 2047 encoded word at @p s ("=?cs?B?…?="), or 0 when none is there. */
static size_t encoded_word(const char *s)
{
    if (s[0] != '=' || s[1] != '?')
        return 0;
    const char *q = strchr(s + 2, '?'); /* after the charset */
    if (!q || !strchr("BbQq", q[1]) || q[1] == '\0' || q[2] != '?')
        return 0;
    const char *end = strstr(q + 3, "?=");
    if (!end)
        return 0;
    for (const char *p = s; p < end; p++)
        if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
            return 0;
    return (size_t)(end + 2 - s);
}

/*
 * Decodes @p text's encoded words one at a time (owned, g_free): GMime 3.2.13 (Debian 12) stops
 * at the first base64 word that ends in '=' padding when another word follows, and loses the
 * rest — a long Persian subject arrived cut (fixed in GMime 3.2.14, upstream issue 133). The
 * space between two encoded words is not text (RFC 2047 §6.2); any other text is kept.
 */
static char *decode_words(in_ctx *c, const char *text)
{
    GString *out = g_string_new(NULL);
    const char *p = text;
    bool after_word = false;
    while (*p) {
        size_t n = encoded_word(p);
        if (n) {
            char *w = g_strndup(p, n);
            char *d = g_mime_utils_header_decode_text(c->opts, w);
            g_string_append(out, d ? d : w);
            g_free(d);
            g_free(w);
            p += n;
            after_word = true;
            continue;
        }
        size_t sp = strspn(p, " \t\r\n");
        if (sp && after_word && encoded_word(p + sp)) {
            p += sp; /* between two encoded words: nothing */
            continue;
        }
        /* Plain text up to the next encoded word (decoded by GMime for its raw 8-bit). */
        const char *next = p + (sp ? sp : 1);
        while (*next && !encoded_word(next))
            next++;
        char *t = g_strndup(p, (size_t)(next - p));
        char *d = g_mime_utils_header_decode_text(c->opts, t);
        g_string_append(out, d ? d : t);
        g_free(d);
        g_free(t);
        p = next;
        after_word = false;
    }
    return g_string_free(out, FALSE);
}

static void read_subject(in_ctx *c, GMimeObject *msg)
{
    const char *raw = in_raw_header(msg, "Subject");
    char *unfolded, *dec;

    if (raw == NULL) {
        c->out->subject = in_own(c, "", 1);
        return;
    }
    unfolded = g_mime_utils_header_unfold(raw);
    dec = decode_words(c, unfolded);
    c->out->subject = in_own(c, dec != NULL ? dec : "", 1);
    g_free(unfolded);
    g_free(dec);
}

static void read_headers(in_ctx *c, GMimeMessage *msg)
{
    GMimeObject *o = (GMimeObject *)msg;
    cm_incoming *m = c->out;
    InternetAddressList *from = NULL;
    const char *raw = in_raw_header(o, "From");
    first_from ff = {c, 0};
    GDateTime *date;

    if (raw != NULL && (from = internet_address_list_parse(c->opts, raw)) != NULL) {
        each_mailbox(from, 0, take_from, &ff);
        g_object_unref(from);
    }
    in_collect_addresses(c, o, "To", &m->to, &m->nto);
    in_collect_addresses(c, o, "Cc", &m->to, &m->nto);
    read_subject(c, o);
    m->message_id = in_first_id(c, in_raw_header(o, "Message-ID"));
    m->in_reply_to = in_first_id(c, in_raw_header(o, "In-Reply-To"));
    each_id(c, in_raw_header(o, "References"), take_ref, m);
    if ((date = g_mime_message_get_date(msg)) != NULL)
        m->date_ms =
            (int64_t)g_date_time_to_unix(date) * 1000 + g_date_time_get_microsecond(date) / 1000;
}

/* ---- the entry points --------------------------------------------------------------------- */

/* True when @p msg has at least one header a message must have (RFC 5322 3.6). */
static int has_message_header(GMimeMessage *msg)
{
    static const char *const names[] = {"From", "To", "Subject", "Date", "Message-ID", NULL};
    GMimeHeaderList *hl = g_mime_object_get_header_list((GMimeObject *)msg);

    for (const char *const *n = names; *n; n++)
        if (g_mime_header_list_contains(hl, *n))
            return 1;
    return 0;
}

/* Parses @p len bytes with @p opts; NULL when GMime finds no message in them. */
static GMimeMessage *gmime_parse(const char *bytes, size_t len, GMimeParserOptions *opts)
{
    GMimeStream *st = g_mime_stream_mem_new_with_buffer(bytes, len);
    GMimeParser *p = g_mime_parser_new_with_stream(st);
    GMimeMessage *msg = g_mime_parser_construct_message(p, opts);

    g_object_unref(p);
    g_object_unref(st);
    return msg;
}

/* The charset the sender's client declared for the body, or NULL. */
static const char *body_charset(in_ctx *c)
{
    GMimeObject *o = c->plain != NULL ? (GMimeObject *)c->plain : (GMimeObject *)c->html;

    return o != NULL ? g_mime_object_get_content_type_parameter(o, "charset") : NULL;
}

int cm_mime_parse(const char *bytes, size_t len, cm_incoming *out, char *err, size_t errlen)
{
    in_ctx c = {0};
    GMimeParserOptions *opts;
    GMimeMessage *msg;

    if (out == NULL || (bytes == NULL && len > 0)) {
        set_err(err, errlen, "cm_mime_parse: no message or no result given");
        return -1;
    }
    memset(out, 0, sizeof *out);
    pthread_once(&in_once, in_init);
    opts = header_options(NULL);
    msg = gmime_parse(bytes != NULL ? bytes : "", len, opts);
    g_mime_parser_options_free(opts);
    if (msg == NULL || !has_message_header(msg)) {
        set_err(err, errlen,
                "not a mail message: no header block (From, To, Subject, Date or Message-ID) "
                "at the start of the %zu bytes read",
                len);
        if (msg != NULL)
            g_object_unref(msg);
        return -1;
    }
    GMimeObject *top = g_mime_message_get_mime_part(msg);
    c.out = out;
    c.report = top != NULL && is_type(top, "multipart", "report");
    walk(&c, top, 0);
    c.opts = header_options(body_charset(&c));
    read_headers(&c, msg);
    read_body(&c);
    if (out->text == NULL && !c.oom)
        out->text = in_own(&c, "", 0);
    if (!c.oom)
        in_classify(&c, msg);
    g_mime_parser_options_free(c.opts);
    g_object_unref(msg);
    if (c.oom) {
        cm_incoming_free(out);
        set_err(err, errlen, "out of memory reading a mail message of %zu bytes", len);
        return -1;
    }
    return 0;
}

static void free_list(char **arr, int n)
{
    for (int i = 0; i < n; i++)
        free(arr[i]);
    free(arr);
}

void cm_incoming_free(cm_incoming *m)
{
    if (m == NULL)
        return;
    free(m->from_addr);
    free(m->from_name);
    free_list(m->to, m->nto);
    free(m->subject);
    free(m->message_id);
    free(m->in_reply_to);
    free_list(m->references, m->nrefs);
    free(m->text);
    free(m->html);
    free(m->why);
    free_list(m->bounced, m->nbounced);
    free(m->bounce_status);
    free(m->bounced_message_id);
    for (int i = 0; i < m->natt; i++) {
        free(m->att[i].filename);
        free(m->att[i].content_type);
        free(m->att[i].data);
    }
    free(m->att);
    memset(m, 0, sizeof *m);
}

int cm_reply_token(const char *addr, const char *prefix, const char *domain, char *out, size_t cap)
{
    size_t plen;
    const char *at, *tok;

    if (addr == NULL || prefix == NULL || domain == NULL || out == NULL)
        return 0;
    plen = strlen(prefix);
    if ((at = strchr(addr, '@')) == NULL || g_ascii_strcasecmp(at + 1, domain) != 0)
        return 0;
    /* Addresses come lower-cased out of cm_mime_parse, so the prefix is compared in any case. */
    if ((size_t)(at - addr) <= plen + 1 || strncasecmp(addr, prefix, plen) != 0 ||
        addr[plen] != '+')
        return 0;
    tok = addr + plen + 1;
    size_t n = (size_t)(at - tok);
    if (n < 8 || n > 64 || n + 1 > cap)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!g_ascii_isalnum(tok[i]))
            return 0;
    memcpy(out, tok, n);
    out[n] = '\0';
    return 1;
}
