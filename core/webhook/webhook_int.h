/*
 * webhook_int.h — what the webhook room's files share (subscriptions and the deliverer). Not
 * installed; nothing outside core/webhook/ includes it.
 */
#ifndef RAPPORT_WEBHOOK_INT_H
#define RAPPORT_WEBHOOK_INT_H

#include <stddef.h>
#include <stdint.h>

#include "rapport/db.h"

#include "rapport/error.h"
#include "rapport/store.h"

/** The prefix of a webhook's subscriber name. */
#define SUB_PREFIX "webhook:"

/** The subscriber name of webhook @p id: "webhook:<id>". */
void rp__webhook_sub_name(int64_t id, char out[32]);

/**
 * "scheme://host[:port]" of @p url into @p out: what events and log lines say of a URL, whose
 * path, query or user part may carry a credential. "(unparsable)" when libcurl cannot read it.
 */
void rp__webhook_url_origin(const char *url, char *out, size_t cap);

/** Steps @p st once and resets it: 0 when done, else the database's error as "@p what: …". */
int rp__webhook_step_done(rp_store_t *s, rp_db_stmt_t *st, const char *what, rp_error_t *err);

#endif
