/*
 * mail.h — email in and out for the collaborative plugin, as plain C data: messages built and
 * read with GMime (never by pasting strings), sent over SMTP with libcurl. Nothing here touches
 * the store or the host API, so the units are tested and fuzzed alone (tests/test_mail_*.c,
 * tests/fuzz/fuzz_mail_in.c).
 *
 * Addresses are handed over as bare addresses ("ana@example.com"); names separately. Every
 * text is UTF-8. Functions that can fail return 0, or -1 with a message in @p err.
 */
#ifndef CM_MAIL_H
#define CM_MAIL_H

#include <stddef.h>
#include <stdint.h>

/* ---- out ---------------------------------------------------------------------------------- */

/** A file to attach (borrowed). */
typedef struct cm_attachment {
    const char *filename;     /**< UTF-8; encoded per RFC 2231 when not ASCII. */
    const char *content_type; /**< "application/pdf"; NULL: application/octet-stream. */
    const char *data;
    size_t len;
} cm_attachment;

/** What Auto-Submitted says (RFC 3834). */
enum { CM_AUTO_NO = 0, CM_AUTO_GENERATED = 1, CM_AUTO_REPLIED = 2 };

/** A message to build (all borrowed; NULL or 0 leaves a part out). */
typedef struct cm_outgoing {
    const char *from_name, *from_addr; /**< From; from_addr required. */
    const char *reply_to;              /**< Reply-To address (a thread's reply address). */
    const char *to_name, *to_addr;     /**< One recipient: a message per recipient. */
    const char *subject;               /**< RFC 2047 encoded words when not ASCII. */
    const char *text;                  /**< text/plain body. */
    const char *html;                  /**< text/html body: with text, multipart/alternative. */
    const char *message_id;            /**< "<id@domain>" (made with cm_message_id). */
    const char *in_reply_to;           /**< "<id@domain>" of the message answered. */
    const char *references;            /**< Space-separated "<…>" ids, oldest first. */
    int64_t date_ms;                   /**< Date (ms since the epoch, written in UTC). */
    const char *list_unsubscribe;      /**< An https URL: List-Unsubscribe with it, and
                                            List-Unsubscribe-Post: List-Unsubscribe=One-Click
                                            (RFC 8058). */
    const char *list_unsubscribe_mailto; /**< Optional mailto: address added to the list. */
    int auto_submitted;                /**< CM_AUTO_*: Auto-Submitted (and X-Auto-Response-
                                            Suppress: All) on automatic mail. */
    const char *language;              /**< Content-Language ("fa"); NULL for none. */
    const cm_attachment *att;
    int natt;
} cm_outgoing;

/**
 * Builds @p m as an RFC 5322 message with CRLF line ends (MIME-Version, Content-Type with
 * charset, transfer encodings chosen by GMime). *out is malloc'd (the caller frees), *len its
 * length. Refuses a missing from/to address, an address with CR/LF or no '@', a header value
 * with CR/LF, and a message with neither text nor html.
 */
int cm_mime_build(const cm_outgoing *m, char **out, size_t *len, char *err, size_t errlen);

/** Writes a new Message-ID "<32 random hex digits@domain>" into @p out (@p cap >= 128). */
int cm_message_id(const char *domain, char *out, size_t cap);

/** Where and how to send. */
typedef struct cm_smtp {
    const char *url;      /**< "smtp://host:port" or "smtps://host:port" (implicit TLS);
                               smtp:// uses STARTTLS when the server offers it
                               (CURLUSESSL_TRY), and require_tls makes it required. */
    const char *user, *password; /**< AUTH, or NULL. The password is never in @p err. */
    long timeout_ms;      /**< The whole exchange (connect included); 0: 30 s. */
    int require_tls;
} cm_smtp;

/**
 * Sends the message @p msg (as cm_mime_build made it) from envelope sender @p mail_from to
 * @p rcpt. Blocking: call it off the event loop. Returns 0 when the server accepted it; else
 * -1 with @p err ("smtp://…: 550 …", the server's answer when there was one) and *permanent
 * set to 1 when retrying cannot help (a 5xx answer), 0 when it may (down, timeout, 4xx).
 */
int cm_smtp_send(const cm_smtp *s, const char *mail_from, const char *rcpt, const char *msg,
                 size_t len, int *permanent, char *err, size_t errlen);

/* ---- in ----------------------------------------------------------------------------------- */

/** What an incoming message is. */
enum { CM_IN_MESSAGE = 0, CM_IN_AUTO_REPLY = 1, CM_IN_BOUNCE = 2 };

typedef struct cm_in_attachment {
    char *filename;     /**< UTF-8, or NULL. */
    char *content_type; /**< "image/png". */
    char *data;         /**< Decoded bytes (malloc'd; NUL-ended for convenience). */
    size_t len;
} cm_in_attachment;

/** A message read by cm_mime_parse (all owned; free with cm_incoming_free). */
typedef struct cm_incoming {
    char *from_addr;    /**< Lower-cased bare address, or NULL when it has none. */
    char *from_name;    /**< UTF-8 display name, or NULL. */
    char **to;          /**< To and Cc addresses, lower-cased bare. */
    int nto;
    char *subject;      /**< UTF-8, encoded words decoded; "" when absent. */
    char *message_id;   /**< "<…>" as written (angle brackets added when missing), or NULL. */
    char *in_reply_to;  /**< The first "<…>" of In-Reply-To, or NULL. */
    char **references;  /**< References' ids "<…>", oldest first. */
    int nrefs;
    int64_t date_ms;    /**< Date, or 0 when absent or unreadable. */
    char *text;         /**< UTF-8 text: the text/plain part (any charset: windows-1256,
                             ISO-8859-x, …), else the HTML part turned into text; "" if none. */
    char *html;         /**< The text/html part as UTF-8, or NULL (not sanitised: escape it
                             before showing it). */
    int kind;           /**< CM_IN_MESSAGE, CM_IN_AUTO_REPLY or CM_IN_BOUNCE. */
    char *why;          /**< For an auto-reply or bounce, which header or part said so
                             ("Auto-Submitted: auto-replied"), else NULL. */
    char **bounced;     /**< For a bounce, the recipients that failed (lower-cased); when
                             none failed, the delayed ones (bounce_permanent 0). */
    int nbounced;
    char *bounce_status; /**< The first failed recipient's Status ("5.1.1"), or NULL. */
    int bounce_permanent; /**< 1 when the status is 5.x.x (or the report says failed). */
    char *bounced_message_id; /**< Message-ID of the returned message, when included. */
    cm_in_attachment *att;
    int natt;
} cm_incoming;

/**
 * Reads the message in @p bytes (@p len; need not be NUL-ended). Refuses what is not a
 * message at all (no header block). Never trusts a record id written in the message.
 */
int cm_mime_parse(const char *bytes, size_t len, cm_incoming *out, char *err, size_t errlen);

void cm_incoming_free(cm_incoming *m);

/**
 * Splits @p addr ("reply+TOKEN@example.com") into the token of a thread's reply address when
 * its local part is @p prefix "+" TOKEN (TOKEN letters and digits, 8–64 of them) and its domain
 * is @p domain (prefix and domain in any case). Writes TOKEN into @p out (@p cap bytes) and
 * returns 1, else 0. cm_mime_parse lower-cases addresses: make tokens lower-case (hex).
 */
int cm_reply_token(const char *addr, const char *prefix, const char *domain, char *out,
                   size_t cap);

#endif
