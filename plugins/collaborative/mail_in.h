/*
 * mail_in.h — what the three files of the incoming-mail reader share, and nobody else includes:
 * mail_in.c (the parse and the walk over GMime's tree: addresses, ids, parts, text),
 * mail_classify.c (auto-replies and bounces, delivery reports read) and html_text.c (HTML made
 * text). The reader's interface is mail.h's cm_mime_parse; these names are its insides.
 */
#ifndef CM_MAIL_IN_H
#define CM_MAIL_IN_H

#include <stddef.h>

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

/* ---- strings (mail_in.c) ------------------------------------------------------------------ */

/** @p len bytes of @p s as a new malloc'd valid UTF-8 string (bad bytes U+FFFD, NULs dropped;
 *  with @p line, controls made spaces and the ends trimmed); NULL when out of memory. */
char *in_own_utf8(const char *s, size_t len, int line);
/** in_own_utf8 of a NUL-ended string, a failed allocation recorded in @p c; NULL stays NULL. */
char *in_own(in_ctx *c, const char *s, int line);
/** Appends the owned string @p s to the array *@p arr of *@p n; frees it when it cannot. */
void in_push(in_ctx *c, char ***arr, int *n, char *s);
/** True when @p s is one of the @p n strings of @p arr. */
int in_contains(char **arr, int n, const char *s);
/** True when @p s starts with @p prefix, ignoring ASCII case. */
int in_starts_ci(const char *s, const char *prefix);
/** Finds @p what (ASCII, any case) in [p, end); NULL when absent. */
const char *in_find_ci(const char *p, const char *end, const char *what);
/** Makes CRLF and lone CR line ends "\n", in place. */
void in_lf_only(char *s);

/* ---- addresses, ids and parts (mail_in.c) ------------------------------------------------- */

/** A mailbox's address lower-cased and checked (an '@', no space or control), owned, or NULL. */
char *in_bare_address(in_ctx *c, const char *addr);
/** Adds the mailboxes of every header @p name of @p o to @p arr (deduplicated, capped). */
void in_collect_addresses(in_ctx *c, GMimeObject *o, const char *name, char ***arr, int *n);
/** The raw value of the first header @p name of @p o (borrowed), or NULL. */
const char *in_raw_header(GMimeObject *o, const char *name);
/** The first message id of header value @p v as "<…>" (owned), or NULL. */
char *in_first_id(in_ctx *c, const char *v);
/** The id on the first "Message-ID:" line of @p text (@p len bytes) (owned), or NULL. */
char *in_scan_message_id(in_ctx *c, const char *text, size_t len);
/** The decoded content of @p part as a new GByteArray (unref it), or NULL. */
GByteArray *in_part_bytes(GMimePart *part);

/* ---- the other two files ------------------------------------------------------------------ */

/** HTML made readable text (html_text.c): @p len bytes of UTF-8 in; a new malloc'd string,
 *  never longer than the input, or NULL when out of memory. */
char *in_html_to_text(const char *h, size_t len);
/** Sets c->out's kind, why and bounce fields (mail_classify.c): bounces first, then
 *  auto-replies; a customer's message otherwise. */
void in_classify(in_ctx *c, GMimeMessage *msg);

#endif
