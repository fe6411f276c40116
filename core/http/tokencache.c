/*
 * tokencache.c — the bearer tokens the server has checked, with their user and access, so a
 * read does not look the token up and load the role again on every request.
 *
 * An entry stands only for the database state it was read in: it is used only inside a read
 * snapshot (rp_db_read_begin) whose data version equals the one it was read at. Any commit to
 * the file — a token revoked, a role or user changed, by this process or another — moves the
 * version, so the next request checks again from the tables. The expiry is checked against the
 * clock on each use. The token itself is not kept, only its BLAKE2b.
 */
#include <string.h>

#include <sodium.h>

#include "rapport/access.h"
#include "rapport/db.h"
#include "rapport/store.h"

#include "http_internal.h"

static void token_key(const char *token, unsigned char key[32])
{
    crypto_generichash(key, 32, (const unsigned char *)token, strlen(token), NULL, 0);
}

static void forget(known_token_t *k)
{
    json_decref(k->who);
    rp_access_free(k->access);
    memset(k, 0, sizeof *k);
}

bool rp__http_known_token(call_t *c, const char *token)
{
    rp_http_t *h = c->h;
    uint32_t version;
    if (!rp_db_snapshot_version(rp_store_db(h->s), &version))
        return false;
    unsigned char key[32];
    token_key(token, key);
    known_token_t *k = &h->known[key[0] % KNOWN_N];
    if (!k->live || k->version != version || sodium_memcmp(k->key, key, sizeof key) != 0)
        return false;
    if (k->expires_at && k->expires_at <= rp_store_now(h->s))
        return false; /* checked again, and refused as expired, from the table */
    c->who = json_incref(k->who);
    c->access = k->access;
    c->access_kept = true;
    return true;
}

void rp__http_know_token(call_t *c, const char *token)
{
    rp_http_t *h = c->h;
    uint32_t version;
    /* Only what one snapshot read: a write since (the token's use) ended it, and the version
     * the next snapshot has tells whether anything changed. */
    if (!c->access || c->access_kept || !rp_db_snapshot_version(rp_store_db(h->s), &version))
        return;
    unsigned char key[32];
    token_key(token, key);
    known_token_t *k = &h->known[key[0] % KNOWN_N];
    /* The slot's previous entry is no request's: each request that used it has ended. */
    forget(k);
    memcpy(k->key, key, sizeof key);
    k->version = version;
    k->expires_at = json_integer_value(json_object_get(c->who, "expires_at"));
    k->who = json_incref(c->who);
    k->access = c->access;
    k->live = true;
    c->access_kept = true;
}

void rp__http_known_free(rp_http_t *h)
{
    for (int i = 0; i < KNOWN_N; i++)
        forget(&h->known[i]);
}
