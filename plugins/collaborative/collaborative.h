/*
 * collaborative.h — what the files of the collaborative plugin share: the host's table, the
 * JSON helpers, interactions (one conversation on one channel, linked to several records),
 * notifications, and each channel's registration.
 *
 * Every read and write goes through the host, so the caller's role applies on every door (a
 * route acts as its user; a command as `--as`; a job or a gateway's public route as the plugin).
 */
#ifndef COLLABORATIVE_H
#define COLLABORATIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "rapport_plugin.h"

/** The engine's table, set by init. */
extern const rapport_api *cm_api;

/** Writes a message into @p err and returns @p code. */
int cm_fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/** RAPPORT_EPERM with a message when the engine is offline (a replay, a schema diff, a dry
 *  run: nothing may reach a server, since nothing done there is kept), else 0. @p what names
 *  the work refused ("poll_mail"). Call it before any outside effect. */
int cm_refuse_offline(rapport_host *h, const char *what, char *err, size_t errlen);
/** Copies the host's last error into @p err and returns @p rc (or RAPPORT_EINVAL for 0). */
int cm_host_fail(rapport_host *h, int rc, char *err, size_t errlen);
/** Parses JSON text the host returned, and frees the text. NULL for NULL or bad text. */
json_t *cm_json(char *text);
/** JSON @p j as text made with api->strdup (for results handed back). Steals @p j. */
char *cm_dump(json_t *j);
/** The plugin's setting @p key ("/mail.from" for an engine-wide one) as JSON (owned), or
 *  NULL. */
json_t *cm_config(rapport_host *h, const char *key);
/** A text setting, or @p def (borrowed from a static buffer of @p out, @p cap bytes). */
const char *cm_config_text(rapport_host *h, const char *key, const char *def, char *out,
                           size_t cap);
/** The engine's clock as the store's UTC text into @p out (RAPPORT_TIME_LEN bytes). */
void cm_now_text(rapport_host *h, char *out);
/** Runs query @p q (stolen) on @p entity; the rows (owned array) or NULL with @p err. */
json_t *cm_find(rapport_host *h, const char *entity, json_t *q, char *err, size_t errlen);
/** The first record of @p entity where @p field equals @p value (stolen, so a fresh
 *  json_string(…) may be passed), as an owned object, or NULL. */
json_t *cm_find_one(rapport_host *h, const char *entity, const char *field, json_t *value);

/** Takes "--name VALUE" out of a command's argv: the value, or NULL when absent (with *bad
 *  set when the option is there without its value). */
const char *cm_take_opt(int *argc, char **argv, const char *name, bool *bad);
/** Takes the flag @p name out of argv: whether it was there. */
bool cm_take_flag(int *argc, char **argv, const char *name);

/* ---- interactions (interactions.c) ---------------------------------------------------- */

/** Record types an interaction links to: "contact:42". */
#define CM_TARGET_LEN 96

/**
 * Stores interaction @p fields (an interaction's fields; stolen) linked to the records of
 * @p links ([["contact", 42], ["ticket", 7]]; stolen; may be NULL): a contact's account is
 * linked too, so an account's timeline holds its people's conversations. When the channel's
 * external_id was seen before, nothing is stored and *dup is set with *id the earlier one.
 * Followers of each linked record (but the author) are notified. In one transaction.
 */
int cm_interaction_add(rapport_host *h, json_t *fields, json_t *links, int64_t *id, bool *dup,
                       char *err, size_t errlen);

/** The records interaction @p id links to, as [["contact", 42], …] (owned). */
json_t *cm_interaction_links(rapport_host *h, int64_t id);

/** Notifies user @p user (@p kind: mention, follow, digest, …) about @p entity @p id. */
int cm_notify(rapport_host *h, const char *user, const char *kind, const char *entity,
              int64_t id, int64_t interaction, const char *text, char *err, size_t errlen);

/** Parses "contact:42" or "contact/42" or ("contact", "42") into @p entity and *id. */
int cm_parse_target(const char *text, char *entity, size_t cap, int64_t *id);

/** The acting user's name ("" for the plugin itself or a local command without --as). */
const char *cm_actor_user(rapport_host *h, const rapport_request *req, char *out, size_t cap);

int cm_interactions_init(rapport_host *h, char *err, size_t errlen);
/* erase.c: a contact's erasure takes its interactions' attachments with it. */
int cm_erase_init(rapport_host *h, char *err, size_t errlen);

/* ---- the timeline (timeline.c) --------------------------------------------------------- */

/**
 * The timeline of @p entity @p id, newest first: @p opts {"before": cursor, "limit": n,
 * "kinds": ["interaction", "activity", "ticket", "order", "stage", "change"]}. Returns
 * {"data": [items], "next": cursor|null} (owned) or NULL with @p err and *@p code (may be
 * NULL) the status. A source the caller's role may not read is left out, not an error.
 */
json_t *cm_timeline(rapport_host *h, const char *entity, int64_t id, json_t *opts, int *code,
                    char *err, size_t errlen);
int cm_timeline_init(rapport_host *h, char *err, size_t errlen);

/* ---- mail (mail.c, receive.c) ----------------------------------------------------------- */

/** A number or boolean setting of the plugin, or @p def. */
int64_t cm_config_int(rapport_host *h, const char *key, int64_t def);
bool cm_config_bool(rapport_host *h, const char *key, bool def);

/**
 * Queues an email: @p o {to, subject, body, html, related: [[entity, id]…], purpose
 * ("service"|"marketing"), reply_to (an interaction answered), campaign, author}. The contact
 * is found by address and its consent checked (a refusal is stored as a "refused" interaction
 * and returned as RAPPORT_EVETO). *id gets the interaction, @p msgid its Message-ID.
 */
int cm_mail_queue(rapport_host *h, json_t *o, int64_t *id, char *msgid, size_t mcap, char *err,
                  size_t errlen);
/** A new conversation thread (with a random reply token); *id its id. */
int cm_thread_new(rapport_host *h, const char *subject, const char *channel, int64_t contact,
                  const char *root, int64_t *id, char *err, size_t errlen);
/**
 * Fills @p o's subject, body and html from its mail template (o.template: a name; o.record:
 * [entity, id] or "entity:id", else @p contact), in @p contact's language; sets o.language.
 * Nothing when @p o names no template.
 */
int cm_template_apply(rapport_host *h, json_t *o, json_t *contact, char *err, size_t errlen);
/**
 * mail_secret.c. With o.secret (a text of at most 2,000 bytes), replaces every {{secret}} of
 * @p fields' body and html by o.secret_note ("[a secret, not kept]" unless given), so the
 * interaction and its events never hold the secret. Nothing without o.secret.
 */
int cm_mail_secret_redact(json_t *o, json_t *fields, char *err, size_t errlen);
/** Keeps o.secret for interaction @p id (api->secret_put, o.secret_ttl or a day), in the
 * caller's transaction. Nothing without o.secret. */
int cm_mail_secret_keep(rapport_host *h, json_t *o, int64_t id, char *err, size_t errlen);
/**
 * Puts interaction @p id's kept secret back in place of its note: *text and *html then point
 * to *owned_text and *owned_html (free with cm_mail_secret_wipe). Nothing when it has none;
 * RAPPORT_EINVAL when it expired (the message must fail, not go out with the note).
 */
int cm_mail_secret_fill(rapport_host *h, int64_t id, const char **text, const char **html,
                        char **owned_text, char **owned_html, char *err, size_t errlen);
/** Zeroes and frees what cm_mail_secret_fill made (NULLs allowed). */
void cm_mail_secret_wipe(char *owned_text, char *owned_html);
/** Removes interaction @p id's secret, if any: once sent, failed for good, or erased. */
void cm_mail_secret_drop(rapport_host *h, int64_t id);
/** Sends queued interaction @p id (off the loop in serve; at once elsewhere). */
int cm_mail_send_now(rapport_host *h, int64_t id, char *err, size_t errlen);
/** Takes in one message: *report says what was done with it (owned). */
/** Stores one file of interaction @p id (@p len bytes of @p data, borrowed) as the caller:
 *  an attachment, inline when small, else in attachment_parts of 786,000 bytes (receive.c). */
int cm_attachment_store(rapport_host *h, int64_t id, const char *filename, const char *type,
                        const char *data, size_t len, char *err, size_t errlen);

/** The bytes of attachment record @p att (its inline data, else its parts read as the
 *  plugin, in order) as an owned buffer (free()) and *len; NULL with @p err (thread.c). */
char *cm_attachment_bytes(rapport_host *h, json_t *att, size_t *len, char *err,
                          size_t errlen);

int cm_mail_receive(rapport_host *h, const char *msg, size_t len, json_t **report, char *err,
                    size_t errlen);
/**
 * `rapport mail poll [NAME] [--json]` (imap.c): polls the IMAP mailboxes of
 * plugin.collaborative.imap at once and prints what each did; the exit status.
 */
int cm_imap_command(rapport_host *h, int argc, char **argv);
/** Adds @p n to campaign @p id's counter @p field (0 ids are ignored). */
void cm_campaign_count(rapport_host *h, int64_t id, const char *field, int n);
/** The one-click unsubscribe URL of marketing interaction @p id into @p out ("" when the
 *  plugin's unsubscribe_url or unsubscribe_secret is not set). */
void cm_unsubscribe_url(rapport_host *h, int64_t id, char *out, size_t cap);

/* ---- channels ---------------------------------------------------------------------------- */

int cm_mail_init(rapport_host *h, char *err, size_t errlen);     /* mail.c */
int cm_imap_init(rapport_host *h, char *err, size_t errlen);     /* imap.c */
int cm_channels_init(rapport_host *h, char *err, size_t errlen); /* channels.c */
int cm_campaigns_init(rapport_host *h, char *err, size_t errlen); /* campaigns.c */
int cm_thread_init(rapport_host *h, char *err, size_t errlen);    /* thread.c */
int cm_docs_init(rapport_host *h, char *err, size_t errlen);      /* docs.c */

/**
 * Whether contact @p contact may be sent @p purpose ("marketing" or "service") on @p channel
 * ("email", "sms"): 1 yes, 0 no with the reason in @p why; < 0 on a failed read.
 */
int cm_consent(rapport_host *h, json_t *contact, const char *channel, const char *purpose,
               char *why, size_t cap);

#endif
