/*
 * docs.c — the collaborative plugin's routes as the engine's OpenAPI document shows them
 * (api->route_doc), so a client other than the console and the portal can be written against
 * them. The public routes (channels' callbacks, unsubscribe) are marked by the engine as
 * needing no token; their signature is described here.
 */
#include <string.h>

#include "collaborative.h"

#define SIGNED                                                                                \
    "\"description\": \"Public: no token, but signed as the engine signs its webhooks "      \
    "(X-Rapport-Timestamp, X-Rapport-Signature: sha256=HMAC(secret, timestamp.body)), five "  \
    "minutes of tolerance; 401 otherwise.\""

static const struct {
    const char *method, *path, *op;
} docs[] = {
    {"POST", "notes",
     "{\"summary\": \"An internal note on a record; each @user named in it is notified\", "
     "\"requestBody\": {\"required\": true, \"content\": {\"application/json\": {\"schema\": "
     "{\"type\": \"object\", \"required\": [\"entity\", \"id\", \"text\"]}}}}, "
     "\"responses\": {\"201\": {\"description\": \"the note\"}}}"},
    {"GET", "notifications",
     "{\"summary\": \"The caller's unread notifications, newest first (?all=1: every one)\"}"},
    {"POST", "notifications/read",
     "{\"summary\": \"Marks the caller's notification {id} read, or {\\\"id\\\": \\\"all\\\"}\"}"},
    {"POST", "follow", "{\"summary\": \"The caller follows record {entity, id}\"}"},
    {"DELETE", "follow", "{\"summary\": \"The caller stops following record {entity, id}\"}"},
    {"GET", "timeline",
     "{\"summary\": \"A record's timeline, newest first: its interactions and changes as the "
     "caller may see them (served at /api/v1/{entity}/{id}/timeline)\", \"parameters\": ["
     "{\"name\": \"before\", \"in\": \"query\", \"schema\": {\"type\": \"string\"}}, "
     "{\"name\": \"limit\", \"in\": \"query\", \"schema\": {\"type\": \"integer\"}}, "
     "{\"name\": \"kinds\", \"in\": \"query\", \"schema\": {\"type\": \"string\"}}]}"},
    {"GET", "thread",
     "{\"summary\": \"A ticket's conversation, oldest first, with each message's files "
     "(served at /api/v1/ticket/{id}/thread); 404 to whoever may not read the ticket\"}"},
    {"POST", "thread/{entity}/{id}",
     "{\"summary\": \"A customer's answer on their ticket (thread/ticket/{id}): {text, "
     "attachments: [{filename, content_type, data (base64)}]}\", \"responses\": {"
     "\"201\": {\"description\": \"the answer\"}, \"404\": {\"description\": \"not the "
     "caller's ticket\"}, \"409\": {\"description\": \"the ticket is closed\"}, "
     "\"413\": {\"description\": \"over http.max_body_bytes\"}, \"422\": {\"description\": "
     "\"a bad field, named\"}, \"429\": {\"description\": \"too many answers a minute\"}}}"},
    {"GET", "attachments/{id}",
     "{\"summary\": \"A file to whoever may read its interaction, as a "
     "download (Content-Disposition: attachment; a type a browser does not run)\", "
     "\"responses\": {\"200\": {\"description\": \"the file's bytes\"}, \"404\": "
     "{\"description\": \"not the caller's to read\"}}}"},
    {"POST", "unsubscribe",
     "{\"summary\": \"One-click unsubscribe (RFC 8058) from a campaign's signed link "
     "(?t=ID.SIGNATURE)\"}"},
    {"GET", "unsubscribe",
     "{\"summary\": \"The unsubscribe link opened in a browser: says to POST (a mail scanner's "
     "GET unsubscribes no one)\"}"},
    {"POST", "sms/status", "{\"summary\": \"An SMS gateway's delivery receipt\", " SIGNED "}"},
    {"POST", "sms/inbound",
     "{\"summary\": \"An inbound SMS (STOP opts the number out, START back in)\", " SIGNED "}"},
    {"POST", "phone/call", "{\"summary\": \"A phone system's call event\", " SIGNED "}"},
    {"POST", "social/post",
     "{\"summary\": \"A social post or review (rated 2 or less: a ticket)\", " SIGNED "}"},
};

int cm_docs_init(rapport_host *h, char *err, size_t errlen)
{
    if (!RAPPORT_HAS(cm_api, route_doc))
        return 0; /* an older engine: no OpenAPI entries from plugins */
    for (size_t i = 0; i < sizeof docs / sizeof *docs; i++)
        if (cm_api->route_doc(h, docs[i].method, docs[i].path, docs[i].op))
            return cm_fail(err, errlen, RAPPORT_EINVAL, "the OpenAPI entry of %s %s: %s",
                           docs[i].method, docs[i].path, cm_api->last_error(h));
    return 0;
}
