/*
 * docs.c — the portal's routes as the engine's OpenAPI document shows them (api->route_doc):
 * what each takes and answers, so a client other than the embedded pages can be written
 * against them.
 */
#include <stdio.h>
#include <string.h>

#include "portal.h"

#define BODY(props, req)                                                                      \
    "\"requestBody\": {\"required\": true, \"content\": {\"application/json\": {\"schema\": " \
    "{\"type\": \"object\", \"required\": [" req "], \"properties\": {" props "}}}}}"
#define STR(name) "\"" name "\": {\"type\": \"string\"}"
#define R(code, text) "\"" code "\": {\"description\": \"" text "\"}"

static const struct {
    const char *method, *path, *op;
} docs[] = {
    {"POST", "login/link",
     "{\"summary\": \"Mails a one-time sign-in link to a contact with portal access\", "
     "\"description\": \"Answers 202 whatever the address, so it tells no one who is a "
     "customer; attempts are limited per client and per address.\", " BODY(STR("email"),
                                                                            "\"email\"")
     ", \"responses\": {" R("202", "accepted (mailed when the address has portal access)") ", "
     R("400", "no or a malformed email") ", " R("429", "too many attempts") "}}"},
    {"POST", "login/token",
     "{\"summary\": \"Signs in with the mailed link's token (once, before it expires)\", "
     BODY(STR("token"), "\"token\"") ", \"responses\": {" R("200", "{principal, role, csrf}: "
     "the session cookie is set") ", " R("401", "a used, expired or unknown token") ", "
     R("429", "too many attempts") "}}"},
    {"POST", "login/password",
     "{\"summary\": \"Starts a sign-in with an email address and a password\", "
     "\"description\": \"The password is checked off the event loop: poll login/finish with "
     "the ticket.\", " BODY(STR("email") ", " STR("password"), "\"email\", \"password\"")
     ", \"responses\": {" R("202", "{ticket, retry_ms}") ", " R("429", "too many attempts")
     ", " R("503", "{retry_ms}: every check slot is busy; not the client's doing") "}}"},
    {"POST", "login/finish",
     "{\"summary\": \"How a password sign-in went\", " BODY(STR("ticket"), "\"ticket\"")
     ", \"responses\": {" R("200", "{principal, role, csrf}: the session cookie is set") ", "
     R("202", "{pending, retry_ms}: still checking") ", "
     R("401", "the email address or the password is wrong") "}}"},
    {"POST", "password",
     "{\"summary\": \"Sets or changes the signed-in customer's password (10 characters or "
     "more)\", " BODY(STR("password"), "\"password\"") ", \"responses\": {"
     R("202", "kept a moment later") ", " R("400", "too short or too long") ", "
     R("403", "not a customer's session, or no X-CSRF-Token") "}}"},
    {"POST", "logout",
     "{\"summary\": \"Ends the customer's session and drops its cookie\", \"responses\": {"
     R("204", "signed out") "}}"},
    {"GET", "me",
     "{\"summary\": \"The signed-in customer: {id, first_name, last_name, email, language}\", "
     "\"responses\": {" R("200", "the customer") ", " R("403", "not a customer's session") "}}"},
    {"GET", "brand",
     "{\"summary\": \"The business's name, logo, colour and extra messages (the portal's "
     "theme)\", \"responses\": {" R("200", "{name, logo, color, messages}") "}}"},
    {"GET", "articles",
     "{\"summary\": \"Published knowledge-base articles, newest first\", \"parameters\": ["
     "{\"name\": \"q\", \"in\": \"query\", \"schema\": {\"type\": \"string\"}, \"description\": "
     "\"words, folded (case, accents, Persian/Arabic letter variants)\"}, "
     "{\"name\": \"lang\", \"in\": \"query\", \"schema\": {\"type\": \"string\"}}, "
     "{\"name\": \"category\", \"in\": \"query\", \"schema\": {\"type\": \"string\"}}, "
     "{\"name\": \"limit\", \"in\": \"query\", \"schema\": {\"type\": \"integer\"}}, "
     "{\"name\": \"after\", \"in\": \"query\", \"schema\": {\"type\": \"string\"}}], "
     "\"responses\": {" R("200", "{data: [{slug, title, category, language, updated_at}], "
     "next}") ", " R("400", "a bad parameter, named") "}}"},
    {"GET", "articles/{slug}",
     "{\"summary\": \"One published article, its Markdown rendered to safe HTML\", "
     "\"responses\": {" R("200", "{slug, title, html, category, language, updated_at, "
     "helpful_yes, helpful_no}") ", " R("404", "no such published article") "}}"},
    {"POST", "articles/{slug}/helpful",
     "{\"summary\": \"Was this article helpful: a vote (limited per client)\", "
     "\"requestBody\": {\"required\": true, \"content\": {\"application/json\": {\"schema\": "
     "{\"type\": \"object\", \"required\": [\"yes\"], \"properties\": {\"yes\": {\"type\": "
     "\"boolean\"}}}}}}, \"responses\": {" R("200", "{helpful_yes, helpful_no}") ", "
     R("429", "too many votes") "}}"},
    {"GET", "consent",
     "{\"summary\": \"The customer's channel consent and the public mailing lists: "
     "{email_opt_out, sms_opt_out, sms_opt_out_at, lists: [{list, name, subscribed, …}]}\", "
     "\"responses\": {" R("200", "the consent") ", " R("403", "not a customer's session") "}}"},
    {"POST", "consent",
     "{\"summary\": \"Changes the customer's consent, all of it or nothing (source portal, "
     "event portal.consent_changed)\", \"requestBody\": {\"required\": true, \"content\": "
     "{\"application/json\": {\"schema\": {\"type\": \"object\", \"properties\": {"
     "\"email_opt_out\": {\"type\": \"boolean\"}, \"sms_opt_out\": {\"type\": \"boolean\"}, "
     "\"lists\": {\"type\": \"array\", \"items\": {\"type\": \"object\", \"properties\": {"
     "\"list\": {\"type\": \"integer\"}, \"subscribed\": {\"type\": \"boolean\"}}}}}}}}}, "
     "\"responses\": {" R("200", "the consent as it now is") ", "
     R("422", "a bad value or a list not offered, named") "}}"},
    {"POST", "forget",
     "{\"summary\": \"Asks to be forgotten: one task for staff (event "
     "portal.forget_requested)\", \"responses\": {" R("202", "{task, status: requested}") ", "
     R("200", "{task, status: already_requested}") "}}"},
    {"POST", "tickets/{id}/close",
     "{\"summary\": \"Closes the caller's own ticket (event portal.ticket_closed); the "
     "portal role sets no status itself\", \"responses\": {" R("200", "{id, status: closed}")
     ", " R("404", "no ticket of the caller's") "}}"},
    {"GET", "privacy",
     "{\"summary\": \"The privacy policy as safe HTML in the language asked for\", "
     "\"parameters\": [{\"name\": \"lang\", \"in\": \"query\", \"schema\": {\"type\": "
     "\"string\"}}], \"responses\": {" R("200", "{language, html}, both null when unset")
     "}}"},
    {"GET", "search",
     "{\"summary\": \"One search over what the caller may see: their orders (by number, "
     "status or tracking number), tickets and invoices, and the published articles\", "
     "\"parameters\": [{\"name\": \"q\", \"in\": \"query\", \"required\": true, \"schema\": "
     "{\"type\": \"string\"}, \"description\": \"the words (at most 256 bytes, 8 words), "
     "folded\"}, {\"name\": \"lang\", \"in\": \"query\", \"schema\": {\"type\": \"string\"}, "
     "\"description\": \"the articles' language (en, fa)\"}], \"responses\": {"
     R("200", "{q, orders: [{id, status, total, href}], tickets: [{id, subject, status, "
     "snippet, href}], invoices: […], articles: [{slug, title, href}]}") ", "
     R("400", "no q, or a bad parameter, named") "}}"},
};

int pt_docs_init(rapport_host *h)
{
    if (!RAPPORT_HAS(pt_api, route_doc))
        return 0; /* an older engine: no OpenAPI entries from plugins */
    bool search = RAPPORT_HAS(pt_api, search);
    for (size_t i = 0; i < sizeof docs / sizeof *docs; i++)
        /* The search route is registered only where the engine can search as the caller. */
        if ((search || strcmp(docs[i].path, "search") != 0) &&
            pt_api->route_doc(h, docs[i].method, docs[i].path, docs[i].op))
            return RAPPORT_EINVAL;
    return 0;
}
