/*
 * write.h — the store's write path as others join it: the before-hooks that may change or veto
 * a write, and appending a custom event in the writer's transaction. The store (core/store/)
 * implements all of it; reading the log is rapport/events.h.
 */
#ifndef RAPPORT_WRITE_H
#define RAPPORT_WRITE_H

#include "rapport/store.h"

/* ---------------------------------------------------------------------------------------- */
/* Before-hooks                                                                              */

/** What a write does. */
typedef enum rp_action {
    RP_ACT_CREATE, RP_ACT_UPDATE, RP_ACT_DELETE, RP_ACT_RESTORE, RP_ACT_PURGE,
    RP_ACT_ERASE, /**< rp_store_erase: the record's personal data is being erased. */
} rp_action_t;

/** The change a record hook sees. Borrowed: valid until the hook returns. */
typedef struct rp_change {
    const char *entity;   /**< The entity written. */
    rp_action_t action;   /**< What is done. */
    int64_t id;           /**< The record id (0 on create). */
    json_t *fields;       /**< Create: the new fields; update: the patch. Mutable: a hook may set,
                               change or remove keys. NULL for delete/restore/purge. */
    json_t *old;          /**< The record before (update/delete/restore/purge), else NULL. */
    const rp_ctx_t *ctx;  /**< Who writes. */
} rp_change_t;

/**
 * A record hook: validate, normalise (edit change->fields) or veto by returning non-zero with
 * @p err filled (rp_error_set). Runs inside the writer's transaction.
 */
typedef int (*rp_hook_fn)(rp_store_t *s, rp_change_t *change, void *ud, rp_error_t *err);

/**
 * A batch hook: sees every record of a bulk create or update at once (@p batch is an array of
 * the mutable field objects; @p ids their ids, all 0 on create). A single write is a batch of
 * one. On veto, set *failed_index to the offending record.
 */
typedef int (*rp_batch_hook_fn)(rp_store_t *s, const char *entity, rp_action_t action,
                                json_t *batch, const int64_t *ids, const rp_ctx_t *ctx, void *ud,
                                size_t *failed_index, rp_error_t *err);

/**
 * Registers a record hook on @p entity ("*" for every entity) for @p action. Hooks run by
 * ascending @p priority, then in registration order. @p owner names who registered it so
 * rp_hooks_remove_owner() can take it back. Returns a hook id (> 0) or a negative code.
 */
int rp_hook_add(rp_store_t *s, const char *entity, rp_action_t action, int priority,
                rp_hook_fn fn, void *ud, const char *owner, rp_error_t *err);

/** Registers a batch hook (create or update only); as rp_hook_add() otherwise. */
int rp_hook_add_batch(rp_store_t *s, const char *entity, rp_action_t action, int priority,
                      rp_batch_hook_fn fn, void *ud, const char *owner, rp_error_t *err);

/** Removes hook @p id. Returns 0, or RP_ENOTFOUND. */
int rp_hook_remove(rp_store_t *s, int id);

/** Removes every hook registered by @p owner; returns how many. */
int rp_hooks_remove_owner(rp_store_t *s, const char *owner);

/* ---------------------------------------------------------------------------------------- */
/* Events a writer appends                                                                   */

/**
 * Appends a custom event of @p type (a dotted identifier such as "invoice.sent") about record
 * @p record_id of @p entity (NULL and 0 when about none) with @p payload (borrowed JSON object,
 * may be NULL), in the caller's transaction (or its own). *seq_out may be NULL.
 */
int rp_events_emit(rp_store_t *s, const rp_ctx_t *ctx, const char *type, const char *entity,
                   int64_t record_id, json_t *payload, int64_t *seq_out, rp_error_t *err);

/**
 * Whether a user's own code (@p ctx carries their access) may emit @p type about @p entity
 * record @p id (NULL and 0: about none): only a type of its own, not one whose first word is an
 * entity's ("deal.stage_changed") or the engine's ("auth.", "config.", "token.", …), which
 * rules trust as the store's and the engine's word; and only about a record that exists and
 * that the user may read. 0, or RP_EPERM / RP_ENOTFOUND / RP_EINVAL with @p err filled. The
 * engine's own events, written for a user (token.used), do not ask.
 */
int rp_events_user_may_emit(rp_store_t *s, const rp_ctx_t *ctx, const char *type,
                            const char *entity, int64_t id, rp_error_t *err);

#endif
