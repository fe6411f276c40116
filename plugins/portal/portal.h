/*
 * portal.h — what the portal plugin's files share: the host's table, settings, the attempt
 * limiter and the sign-in routes.
 */
#ifndef PORTAL_H
#define PORTAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "rapport_plugin.h"

/** The host's table, set by init. */
extern const rapport_api *pt_api;

/** The role a signed-in customer acts with. */
#define PT_ROLE "portal"

/** Fills @p err with @p fmt and returns @p code. */
int pt_fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** Setting plugin.portal.@p key as an integer (a delay text such as "15m" is read as ms when
 *  @p delay), else @p def. */
int64_t pt_setting_int(rapport_host *h, const char *key, int64_t def, bool delay);

/** Setting plugin.portal.@p key as text into @p out; false when unset. */
bool pt_setting_text(rapport_host *h, const char *key, char *out, size_t cap);

/** The contact with portal access whose email is @p email (lower case): its id, or 0 when
 *  there is none, or more than one (the address says no one). *lang (may be NULL) gets its
 *  language, *name its first name (either may be NULL). */
int64_t pt_contact_by_email(rapport_host *h, const char *email, char *lang, size_t lcap,
                            char *name, size_t ncap);

/** Whether contact @p id exists and has portal access. */
bool pt_has_access(rapport_host *h, int64_t id);

/* ---- limit.c: attempts counted per key (a client's address, an email address) ---------- */

/** Whether @p key has used up @p max attempts in the window of @p window_ms. */
bool pt_limited(const char *key, int max, int64_t window_ms, int64_t now_ms);

/** Counts one attempt against @p key. */
void pt_count(const char *key, int64_t window_ms, int64_t now_ms);

/** Forgets @p key's attempts (a successful sign-in for the address). */
void pt_forget(const char *key);

/** Takes back one attempt counted against @p key (a password that was right). */
void pt_uncount(const char *key);

/* ---- login.c: the sign-in routes ------------------------------------------------------- */

/** Registers the sign-in routes and the link-mail job. */
int pt_login_init(rapport_host *h, char *err, size_t errlen);
/* Drops the password checks still waiting for a worker (the plugin's fini). */
void pt_login_fini(void);

/* ---- account.c: consent, forget me, the privacy policy ----------------------------------- */

/** Registers the consent, forget and privacy routes, mailing_list.public and the contact's
 *  language check. */
int pt_account_init(rapport_host *h, char *err, size_t errlen);

/* ---- search.c, docs.c -------------------------------------------------------------------- */

/** Registers GET search (one search over the caller's orders, tickets and the articles). */
int pt_search_init(rapport_host *h, char *err, size_t errlen);

/** Documents the portal's routes in the engine's OpenAPI document (api->route_doc). */
int pt_docs_init(rapport_host *h);

#endif
