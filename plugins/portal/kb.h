/*
 * kb.h — the portal's knowledge base: FAQ articles in Markdown, rendered safely to HTML,
 * searched with the engine's folding, readable without signing in.
 */
#ifndef PORTAL_KB_H
#define PORTAL_KB_H

#include <stdbool.h>
#include <stddef.h>

#include "rapport_plugin.h"

/** The longest Markdown body an article may hold, so rendering stays in milliseconds. */
#define PORTAL_KB_MAX_BODY (64 * 1024)

/**
 * Declares the entities article and article_feedback, the hook that checks an article and
 * keeps its slug and folded search text, the public routes articles, articles/<slug> and
 * articles/<slug>/helpful, and the Lua function crm.<plugin>.kb_render.
 * @return 0, or a negative RAPPORT_E* status (api->last_error says why).
 */
int portal_kb_init(rapport_host *h, const rapport_api *api);

/**
 * Renders @p len bytes of Markdown @p md to HTML that is safe to put in a page: raw HTML is
 * left out, and a link or image whose address is not http(s), mailto or relative loses it.
 * At most PORTAL_KB_MAX_BODY bytes are read. @return the HTML (owned: free with free()), or
 * NULL when out of memory.
 */
char *portal_kb_render(const char *md, size_t len);

/**
 * The published articles that query string @p query asks for ("q=…&lang=…&limit=…", %-encoded,
 * as the public list takes it), as the list answers: *body gets {"data": [{slug, title,
 * category, language, updated_at, …}], "next"} (owned: api->free). The caller's context reads
 * the articles: a route acting for a customer turns api->as_plugin on around it.
 * @return 0, or a RAPPORT_E* status with @p err naming the parameter.
 */
int portal_kb_list(rapport_host *h, const rapport_api *api, const char *query, char **body,
                   char *err, size_t errlen);

/** Decodes a query string value's %XX and '+' in place; false when an escape is broken or
 *  decodes to a NUL. */
bool portal_url_decode(char *s);

/**
 * The key client address @p client is counted by (the sign-in limits, an article's vote) into
 * @p out: an IPv6 address by its /64 ("2001:0db8:0001:0002::/64"), as the engine counts its
 * own sign-in failures, since one host has a whole /64 to pick fresh addresses from; anything
 * else (IPv4, IPv4-mapped, a zone) as it is, "?" for none. Cut to fit @p cap.
 */
void portal_client_key(const char *client, char *out, size_t cap);

#endif
