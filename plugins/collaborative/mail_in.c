/*
 * mail_in.c — incoming mail as plain C data (mail.h: cm_mime_parse, cm_reply_token). GMime reads
 * the bytes; this file picks the addresses, the body and the attachments out of its tree and says
 * whether the message is a customer's, an auto-reply or a bounce.
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "mail.h"

/*
 * Caps, so that a hostile message cannot make the result grow past what a person could have
 * written. What GMime itself holds is bounded by the input (it copies the bytes once and points
 * into them); decoded attachments are never longer than their encoded form.
 */
enum {
    IN_MAX_ATT = 64,       /* attachments kept; later ones are dropped */
    IN_MAX_BODY = 4 << 20, /* bytes kept of the text and of the HTML, each */
    IN_MAX_DEPTH = 32,     /* MIME nesting walked; real mail stays under 10 */
    IN_MAX_OBJECTS = 2048, /* MIME objects looked at in one message */
    IN_MAX_ADDRS = 256,    /* To + Cc addresses, and bounced recipients */
    IN_MAX_REFS = 128,     /* References kept: the thread's root and the newest ones */
    IN_MAX_ID = 998,       /* a Message-ID longer than a header line is not one */
    IN_MAX_WHY = 200,      /* bytes of a header value quoted in `why` */
    IN_MAX_DSN = 1 << 20,  /* bytes of a delivery-status part read */
};

/* What one cm_mime_parse call carries while it walks the tree. */
typedef struct in_ctx {
    cm_incoming *out;
    GMimeParserOptions *opts; /* header decoding: the body's charset tried first */
    GMimeTextPart *plain;     /* first inline text/plain (borrowed from the message) */
    GMimeTextPart *html;      /* first inline text/html */
    GMimePart *dsn;           /* message/delivery-status directly under the top part */
    GMimePart *returned_hdrs; /* text/rfc822-headers directly under the top part */
    GMimeMessage *returned;   /* message/rfc822 directly under the top part */
    int report;               /* the top part is multipart/report */
    int objects;              /* MIME objects walked so far */
    int oom;                  /* an allocation failed: the whole parse fails */
} in_ctx;

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
static char *own_utf8(const char *s, size_t len, int line)
{
    /* Valid text (the usual case) is copied as it is; only broken text can grow, by 3 bytes for
     * each bad byte at most. */
    int valid = len == 0 || g_utf8_validate(s, (gssize)len, NULL);
    char *out = malloc(valid ? len + 1 : len * 3 + 1), *shrunk;
    size_t n = 0, i = 0;

    if (out == NULL)
        return NULL;
    if (valid) {
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

/* own_utf8 of a NUL-ended string, recording a failed allocation in @p c; NULL stays NULL. */
static char *own(in_ctx *c, const char *s, int line)
{
    char *r;

    if (s == NULL)
        return NULL;
    if ((r = own_utf8(s, strlen(s), line)) == NULL)
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
static void push(in_ctx *c, char ***arr, int *n, char *s)
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

static int contains(char **arr, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (strcmp(arr[i], s) == 0)
            return 1;
    return 0;
}

/* True when @p s starts with @p prefix, ignoring ASCII case. */
static int starts_ci(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- addresses and ids -------------------------------------------------------------------- */

/*
 * A mailbox's address as we hand it over: lower-cased, valid UTF-8, with an '@' and no space or
 * control character (what a reply could be sent to). NULL when it is not one.
 */
static char *bare_address(in_ctx *c, const char *addr)
{
    char *a = own(c, addr, 1);

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
    if ((a = bare_address(s->c, internet_address_mailbox_get_addr(mb))) == NULL)
        return;
    if (contains(*s->arr, *s->n, a))
        free(a);
    else
        push(s->c, s->arr, s->n, a);
}

/* Adds the mailboxes of every header @p name of @p o to @p arr (decoded with c->opts). */
static void collect_addresses(in_ctx *c, GMimeObject *o, const char *name, char ***arr, int *n)
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

    if (f->done || (a = bare_address(f->c, internet_address_mailbox_get_addr(mb))) == NULL)
        return;
    f->done = 1;
    f->c->out->from_addr = a;
    if (name != NULL && name[0] != '\0') {
        f->c->out->from_name = own(f->c, name, 1);
        if (f->c->out->from_name != NULL && f->c->out->from_name[0] == '\0') {
            free(f->c->out->from_name);
            f->c->out->from_name = NULL;
        }
    }
}

/* The raw value of the first header @p name of @p o, or NULL. */
static const char *raw_header(GMimeObject *o, const char *name)
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
static char *first_id(in_ctx *c, const char *v)
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
    push(c, &m->references, &m->nrefs, id);
    return 0;
}

/*
 * The id on the first "Message-ID:" line of @p text (folded continuation lines joined), or NULL:
 * how a bounce that quotes the returned message's headers as text names that message.
 */
static char *scan_message_id(in_ctx *c, const char *text, size_t len)
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
            char *id = first_id(c, v);
            free(v);
            return id;
        }
        p = stop + 1;
    }
    return NULL;
}

/* ---- parts -------------------------------------------------------------------------------- */

/* The decoded content of @p part (transfer encoding undone), as a new GByteArray, or NULL. */
static GByteArray *part_bytes(GMimePart *part)
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
    if ((r = own(c, name, 1)) != NULL &&
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
    a->content_type = own(c, type != NULL ? type : "application/octet-stream", 1);
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
    if ((ba = part_bytes(part)) == NULL) { /* kept, empty, as add_message_att does */
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

/* The output of html_to_text: a buffer of fixed capacity, and the breaks owed before the next
 * character (so that runs of white space and of breaks collapse). */
typedef struct obuf {
    char *p;
    size_t n, cap;
    int nl;    /* newlines owed before the next character (0–2) */
    int space; /* a space owed before the next character */
} obuf;

static void emit(obuf *b, const char *s, size_t len)
{
    if (b->n > 0 && b->nl > 0) {
        for (int i = 0; i < b->nl && b->n < b->cap; i++)
            b->p[b->n++] = '\n';
    } else if (b->n > 0 && b->space && b->n < b->cap) {
        b->p[b->n++] = ' ';
    }
    b->nl = b->space = 0;
    if (len > b->cap - b->n)
        len = b->cap - b->n;
    memcpy(b->p + b->n, s, len);
    b->n += len;
}

/* Writes code point @p cp as UTF-8 into @p out (4 bytes); returns the length. */
static size_t put_utf8(unsigned long cp, char *out)
{
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD;
    return (size_t)g_unichar_to_utf8((gunichar)cp, out);
}

/*
 * Decodes the entity at @p s (which starts with '&', @p len bytes available) into @p out.
 * Returns the bytes of input it took, or 0 when it is not one we know (the '&' is then text).
 * Sets *space for &nbsp;, which reads as a space once the HTML is text.
 */
static size_t entity(const char *s, size_t len, char *out, size_t *outlen, int *space)
{
    static const struct {
        const char *name, *text;
    } named[] = {{"amp;", "&"}, {"lt;", "<"}, {"gt;", ">"}, {"quot;", "\""}, {"apos;", "'"}};
    const char *semi = memchr(s, ';', len < 12 ? len : 12);

    *space = 0;
    if (semi == NULL)
        return 0;
    size_t n = (size_t)(semi - s) + 1;
    if (n == 6 && strncasecmp(s + 1, "nbsp;", 5) == 0) {
        *space = 1;
        *outlen = 0;
        return n;
    }
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        if (strlen(named[i].name) == n - 1 && strncmp(s + 1, named[i].name, n - 1) == 0) {
            *outlen = strlen(named[i].text);
            memcpy(out, named[i].text, *outlen);
            return n;
        }
    if (n < 4 || s[1] != '#')
        return 0;
    int hex = s[2] == 'x' || s[2] == 'X';
    const char *d = s + 2 + hex;
    unsigned long cp = 0;
    if (d == semi)
        return 0;
    for (; d < semi; d++) {
        if (!(hex ? isxdigit((unsigned char)*d) : isdigit((unsigned char)*d)))
            return 0;
        cp = cp * (hex ? 16 : 10) + (unsigned long)g_ascii_xdigit_value(*d);
    }
    *outlen = put_utf8(cp, out);
    return n;
}

/* Where the tag starting at @p s ('<') ends: just past its '>', quotes honoured; NULL if never. */
static const char *tag_end(const char *s, const char *end)
{
    char quote = 0;

    for (const char *p = s + 1; p < end; p++) {
        if (quote != 0 && *p == quote)
            quote = 0;
        else if (quote == 0 && (*p == '"' || *p == '\''))
            quote = *p;
        else if (quote == 0 && *p == '>')
            return p + 1;
    }
    return NULL;
}

/* Finds @p what (ASCII, any case) in [p, end); NULL when absent. */
static const char *find_ci(const char *p, const char *end, const char *what)
{
    size_t n = strlen(what);

    for (; (size_t)(end - p) >= n; p++)
        if (strncasecmp(p, what, n) == 0)
            return p;
    return NULL;
}

static int name_is(const char *name, size_t n, const char *const *list)
{
    for (; *list; list++)
        if (strlen(*list) == n && strncasecmp(name, *list, n) == 0)
            return 1;
    return 0;
}

/*
 * Acts on the tag [s, e): a line break or block asks for a newline, a table cell for a space,
 * and the content of script, style and title is skipped. Returns where reading goes on.
 */
static const char *on_tag(obuf *b, const char *s, const char *e, const char *end)
{
    static const char *const blocks[] = {
        "p",       "div",     "tr",      "li",     "ul",     "ol",     "table", "blockquote",
        "h1",      "h2",      "h3",      "h4",     "h5",     "h6",     "hr",    "pre",
        "address", "section", "article", "header", "footer", "center", NULL};
    static const char *const skipped[] = {"script", "style", "title", NULL};
    static const char *const cells[] = {"td", "th", NULL};
    int closing = s[1] == '/';
    const char *name = s + 1 + closing, *q = name;

    while (q < e && g_ascii_isalnum(*q))
        q++;
    size_t n = (size_t)(q - name);
    if (!closing && name_is(name, n, skipped)) {
        char close[16];
        snprintf(close, sizeof close, "</%.*s", (int)n, name);
        const char *at = find_ci(e, end, close), *after;
        if (at == NULL)
            return end;
        return (after = tag_end(at, end)) != NULL ? after : end;
    }
    if (n == 2 && strncasecmp(name, "br", 2) == 0)
        b->nl = b->nl < 2 ? b->nl + 1 : 2;
    else if (name_is(name, n, blocks))
        b->nl = b->nl < 1 ? 1 : b->nl;
    else if (name_is(name, n, cells))
        b->space = 1;
    return e;
}

/*
 * Turns HTML into readable text: tags dropped (script, style and title with their content),
 * comments dropped, the common entities decoded, runs of white space made one space, and line
 * breaks and block ends made newlines (a blank line at most). @p len bytes of UTF-8 in; a new
 * malloc'd string out, never longer than the input, or NULL when out of memory.
 */
static char *html_to_text(const char *h, size_t len)
{
    obuf b = {malloc(len + 1), 0, len, 0, 0};
    const char *p = h, *end = h + len;

    if (b.p == NULL)
        return NULL;
    while (p < end) {
        if (*p == '<' && end - p >= 4 && memcmp(p, "<!--", 4) == 0) {
            const char *close = find_ci(p + 4, end, "-->");
            p = close != NULL ? close + 3 : end;
        } else if (*p == '<' && p + 1 < end &&
                   (g_ascii_isalpha(p[1]) || p[1] == '/' || p[1] == '!' || p[1] == '?')) {
            const char *e = tag_end(p, end);
            p = e != NULL ? on_tag(&b, p, e, end) : end;
        } else if (*p == '&') {
            char out[8];
            size_t outlen = 0, took;
            int space;
            if ((took = entity(p, (size_t)(end - p), out, &outlen, &space)) == 0) {
                emit(&b, p++, 1);
            } else {
                if (space)
                    b.space = 1;
                else
                    emit(&b, out, outlen);
                p += took;
            }
        } else if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == '\f') {
            b.space = 1;
            p++;
        } else {
            emit(&b, p++, 1);
        }
    }
    b.p[b.n] = '\0';
    return b.p;
}

/* Makes CRLF and lone CR line ends "\n", in place: what the wire needs, a reader does not. */
static void lf_only(char *s)
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
        return own(c, "", 0);
    if (!g_utf8_validate(t, -1, NULL)) {
        char *d = g_mime_utils_decode_8bit(c->opts, t, strlen(t));
        g_free(t);
        if ((t = d) == NULL)
            return own(c, "", 0);
    }
    /* Cut before copying, on a character boundary (t is UTF-8 by now). */
    if ((n = strlen(t)) > IN_MAX_BODY) {
        n = IN_MAX_BODY;
        while (n > 0 && ((unsigned char)t[n] & 0xC0) == 0x80)
            n--;
    }
    if ((r = own_utf8(t, n, 0)) == NULL)
        c->oom = 1;
    else
        lf_only(r);
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
    else if (m->html != NULL && (m->text = html_to_text(m->html, strlen(m->html))) == NULL)
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

static void read_subject(in_ctx *c, GMimeObject *msg)
{
    const char *raw = raw_header(msg, "Subject");
    char *unfolded, *dec;

    if (raw == NULL) {
        c->out->subject = own(c, "", 1);
        return;
    }
    unfolded = g_mime_utils_header_unfold(raw);
    dec = g_mime_utils_header_decode_text(c->opts, unfolded);
    c->out->subject = own(c, dec != NULL ? dec : "", 1);
    g_free(unfolded);
    g_free(dec);
}

static void read_headers(in_ctx *c, GMimeMessage *msg)
{
    GMimeObject *o = (GMimeObject *)msg;
    cm_incoming *m = c->out;
    InternetAddressList *from = NULL;
    const char *raw = raw_header(o, "From");
    first_from ff = {c, 0};
    GDateTime *date;

    if (raw != NULL && (from = internet_address_list_parse(c->opts, raw)) != NULL) {
        each_mailbox(from, 0, take_from, &ff);
        g_object_unref(from);
    }
    collect_addresses(c, o, "To", &m->to, &m->nto);
    collect_addresses(c, o, "Cc", &m->to, &m->nto);
    read_subject(c, o);
    m->message_id = first_id(c, raw_header(o, "Message-ID"));
    m->in_reply_to = first_id(c, raw_header(o, "In-Reply-To"));
    each_id(c, raw_header(o, "References"), take_ref, m);
    if ((date = g_mime_message_get_date(msg)) != NULL)
        m->date_ms =
            (int64_t)g_date_time_to_unix(date) * 1000 + g_date_time_get_microsecond(date) / 1000;
}

/* ---- classification ----------------------------------------------------------------------- */

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
    c->out->why = own(c, buf, 1);
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
    if ((a = own(c, v, 1)) == NULL)
        return NULL;
    size_t n = strlen(a);
    if (n >= 2 && a[0] == '<' && a[n - 1] == '>') {
        a[n - 1] = '\0';
        memmove(a, a + 1, n - 1);
    }
    r = bare_address(c, a);
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
        r->failed |= starts_ci(v, "failed");
        r->delayed |= starts_ci(v, "delayed");
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
            m->bounce_status = own(c, r->status, 1);
        if (m->nbounced < IN_MAX_ADDRS && !contains(m->bounced, m->nbounced, r->addr)) {
            push(c, &m->bounced, &m->nbounced, r->addr);
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
    GByteArray *ba = part_bytes(part);
    dsn_rcpt r = {0};
    int level = 0;

    if (ba == NULL)
        return 0;
    size_t len = ba->len < IN_MAX_DSN ? ba->len : IN_MAX_DSN;
    char *text = own_utf8((const char *)ba->data, len, 0);
    g_byte_array_unref(ba);
    if (text == NULL) {
        c->oom = 1;
        return 0;
    }
    /* Unfold, then read line by line; an empty line ends a block. */
    lf_only(text);
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
        m->bounced_message_id = first_id(c, raw_header((GMimeObject *)c->returned, "Message-ID"));
    if (m->bounced_message_id == NULL && c->returned_hdrs != NULL &&
        (ba = part_bytes(c->returned_hdrs)) != NULL) {
        size_t len = ba->len < IN_MAX_DSN ? ba->len : IN_MAX_DSN;
        m->bounced_message_id = scan_message_id(c, (const char *)ba->data, len);
        g_byte_array_unref(ba);
    }
    if (m->bounced_message_id == NULL && m->text != NULL)
        m->bounced_message_id = scan_message_id(c, m->text, strlen(m->text));
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
    const char *failed = raw_header(o, "X-Failed-Recipients");
    const char *at = m->from_addr != NULL ? strchr(m->from_addr, '@') : NULL;
    int daemon =
        at != NULL && ((at - m->from_addr == 13 && starts_ci(m->from_addr, "mailer-daemon")) ||
                       (at - m->from_addr == 10 && starts_ci(m->from_addr, "postmaster")));
    const char *const *s = bounce_subjects;

    while (daemon && *s != NULL && !starts_ci(m->subject, *s))
        s++;
    if (failed == NULL && (!daemon || *s == NULL))
        return 0;
    collect_addresses(c, o, "X-Failed-Recipients", &m->bounced, &m->nbounced);
    const char *subj_end = m->subject + strlen(m->subject);
    m->bounce_permanent = find_ci(m->subject, subj_end, "delay") == NULL &&
                          find_ci(m->subject, subj_end, "warning") == NULL;
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
        !(strcspn(g_strstrip(v), " \t;(") == 2 && starts_ci(v, "no"))) {
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
    if (at != NULL && at - m->from_addr == 13 && starts_ci(m->from_addr, "mailer-daemon")) {
        verdict(c, CM_IN_AUTO_REPLY, "From: %s", m->from_addr);
        return 1;
    }
    for (const char *const *s = subjects; *s; s++)
        if (starts_ci(m->subject, *s)) {
            verdict(c, CM_IN_AUTO_REPLY, "Subject: %s", *s);
            return 1;
        }
    return 0;
}

/* Bounces first (a bounce often carries Auto-Submitted too), then auto-replies. */
static void classify(in_ctx *c, GMimeMessage *msg)
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
        out->text = own(&c, "", 0);
    if (!c.oom)
        classify(&c, msg);
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
