/*
 * access.h — roles and what they grant, enforced by the store for whoever acts.
 *
 * A role is a setting "roles.<name>" holding its grants:
 *
 *   {"entities": {"contact": {"read": "all", "create": true, "update": "own", "delete": "none"},
 *                 "*":       {"read": "team"}},
 *    "fields":   {"contact.email": "hidden", "deal.amount": "read_only"}}
 *
 * Per entity ("*" for every entity not named): read, update and delete take a scope, "none",
 * "own" (records whose owner is the user; where an entity has no owner field, those the user
 * created), "team" (owned by a user of the same team) or "all"; create is true or false. A
 * permission not given is "none". A field is "hidden" (never shown, never written, never
 * filtered, sorted or searched on) or "read_only" (shown, never written). An entity's grant
 * may list the only fields the role writes, "writable": ["first_name", …]: any other field of
 * the entity (one added later included) is read-only for the role, on create and update; the
 * "fields" rules still apply to the listed ones. The names are checked against the registry
 * when the role is set (system fields are not fields to list), and a list is not given for
 * "*". The role "admin" grants everything unless a setting "roles.admin" says otherwise.
 *
 * Linked scopes, for record principals. A role may say which entity's records act with it,
 * "principal": "contact", and then give a scope that follows ref fields to that record:
 *
 *   {"principal": "contact",
 *    "entities": {"contact": {"read": "self", "update": "self"},
 *                 "account": {"read": {"link": "self.account"}},
 *                 "ticket":  {"read": {"link": "contact"}, "create": true,
 *                             "update": {"link": "contact"}},
 *                 "invoice": {"read": {"link": "order.contact"}},
 *                 "interaction": {"read": {"link": "contact",
 *                                          "where": {"visibility": "customer"}}}},
 *    "fields": {"contact.account": "read_only"}}
 *
 * {"link": "a.b"}: records whose ref field a points to a record whose ref field b points to
 * the principal (at most 4 fields; intermediate records deleted break the link). "self": the
 * principal's own record; {"link": "self.account"}: the record the principal's ref field
 * account points to. "where" adds a filter in crm.find's language that the record must also
 * match. {"through": "interaction"} (one ref field): records whose field points to a record
 * the principal reads by that entity's own read link (an interaction's links, exactly as far as
 * the interactions are readable; one level, never through a through). Links are checked
 * against the registry when the role is set (a field that is not
 * there or not a ref, a path that ends elsewhere than at the principal), not given for "*",
 * and reach nothing for a user. The store enforces them on every read (find, count, get,
 * search, aggregate, events) and write: a record updated must be linked before and after (a
 * ticket may not be re-pointed to another contact), a record created must be linked within
 * the read scope, and where the read link is one field ("link": "contact"), a record created
 * without that field gets the principal. A record principal may update the fields that make
 * its own links (its contact's account) unless the role makes them read_only: the default
 * portal role does.
 *
 * A context (rp_ctx_t) whose access is NULL is unrestricted: the engine itself, plugins, the
 * local command line run by the installation's owner. The HTTP API, and the command line with
 * --as USER, act with the access of a user.
 */
#ifndef RAPPORT_ACCESS_H
#define RAPPORT_ACCESS_H

#include <stdbool.h>

#include <jansson.h>

#include "rapport/store.h"

/* rp_scope_t and rp_perm_t are the store's words (rapport/store.h): it asks this room about
 * them through the authorizer that access.c installs. */

/**
 * The access of user @p user (with team @p team, may be NULL) acting with role @p role, read
 * from the settings now. RP_EINVAL (RP-E1903) when the role is not defined or its grants are
 * malformed (the message says where). *out is owned: rp_access_free().
 */
int rp_access_load(rp_store_t *s, const char *user, const char *role, const char *team,
                   rp_access_t **out, rp_error_t *err);

/**
 * Keeps role @p name's grants @p grants (borrowed; NULL removes the role) in the setting
 * roles.<name>, only if they read back as a role: the check and the write are one transaction,
 * so a malformed role is refused with the message rp_access_load() gives and nothing is kept.
 * Every path that sets a role goes through here (`roles set`, `config set roles.X`, Lua).
 */
int rp_access_role_set(rp_store_t *s, const rp_ctx_t *ctx, const char *name, json_t *grants,
                       rp_error_t *err);

/**
 * The access of record @p id of @p entity acting with role @p role (a record principal: a
 * contact through the portal). Its user name is "ENTITY:ID" (user names have no ':'), it has
 * no team, and the role must name @p entity as its "principal". RP_EPERM when the record does
 * not exist or is deleted, or the role is not for records of @p entity. *out is owned.
 */
int rp_access_load_subject(rp_store_t *s, const char *role, const char *entity, int64_t id,
                           rp_access_t **out, rp_error_t *err);

/** rp_access_load_subject() of @p subject written "ENTITY:ID" (e.g. "contact:42"). */
int rp_access_of_subject(rp_store_t *s, const char *subject, const char *role,
                         rp_access_t **out, rp_error_t *err);

/** The entity of the record @p a acts as (its id in *id, may be NULL), or NULL for a user. */
const char *rp_access_subject(const rp_access_t *a, int64_t *id);

/** The access of the enabled user @p name, with that user's role and team. */
int rp_access_of_user(rp_store_t *s, const char *name, rp_access_t **out, rp_error_t *err);

void rp_access_free(rp_access_t *a);

/** The user, role and team of @p a. */
const char *rp_access_user(const rp_access_t *a);
const char *rp_access_role(const rp_access_t *a);
const char *rp_access_team(const rp_access_t *a);

/** The scope @p a has for @p perm on @p entity (create: NONE or ALL). */
rp_scope_t rp_access_scope(const rp_access_t *a, const char *entity, rp_perm_t perm);

/** Whether @p field of @p entity is hidden from / read-only for @p a (NULL @p a: no). */
bool rp_access_hidden(const rp_access_t *a, const char *entity, const char *field);
bool rp_access_read_only(const rp_access_t *a, const char *entity, const char *field);

/**
 * Removes the fields of @p entity hidden from @p a from @p obj (a record, or an event's
 * changes {field: [old, new]}) in place.
 */
void rp_access_redact(const rp_access_t *a, const char *entity, json_t *obj);

/**
 * Whether event @p ev (rp_event_json()'s form) may be shown to @p a: 0 when not (the record
 * is outside the user's read scope, or the entity is not readable, or it is an update that
 * changed hidden fields only), 1 when it may, after its hidden fields were taken out of
 * "changes" in place. Events about no entity (security and
 * custom events) are shown only to a role that reads "*" with scope "all". < 0 on a store
 * error.
 */
int rp_access_event(rp_store_t *s, const rp_access_t *a, json_t *ev, rp_error_t *err);

#endif
