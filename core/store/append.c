/*
 * append.c — the store's end of the event log: appending an event in the writer's
 * transaction with its cause chain checked, and the events a caller emits itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- appending -------------------------------------------------------------------------- */

/* Describes the chain of causes ending at @p seq as "a#1 (actor) → b#2 (actor) → …". */
static void chain_text(rp_store_t *s, int64_t seq, char *out, size_t cap)
{
    int64_t chain[40];
    int n = 0;
    rp_db_stmt_t *st = rp__stmt(s, "SELECT cause FROM rp_events WHERE seq = ?", NULL);
    while (st && seq > 0 && n < 40) {
        chain[n++] = seq;
        rp_db_bind_int(st, 1, seq);
        seq = rp_db_step(st) == RP_DB_ROW ? rp_db_col_int(st, 0) : 0;
        rp_db_reset(st);
    }
    size_t len = 0;
    out[0] = '\0';
    st = rp__stmt(s, "SELECT type, actor FROM rp_events WHERE seq = ?", NULL);
    for (int i = n - 1; st && i >= 0 && len + 80 < cap; i--) {
        rp_db_bind_int(st, 1, chain[i]);
        if (rp_db_step(st) == RP_DB_ROW)
            len += (size_t)snprintf(out + len, cap - len, "%s%s#%lld (%s)", i == n - 1 ? "" : " → ",
                                    rp_db_col_text(st, 0), (long long)chain[i],
                                    rp_db_col_text(st, 1));
        rp_db_reset(st);
    }
}

int rp__event_append(rp_store_t *s, const rp_ctx_t *ctx, const char *type, const char *entity,
                     int64_t record_id, json_t *changes, int64_t *seq_out, rp_error_t *err)
{
    char *text = changes ? json_dumps(changes, JSON_COMPACT) : strdup("{}");
    if (!text)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    return rp__event_append_text(s, ctx, type, entity, record_id, text, seq_out, err);
}

int rp__event_append_text(rp_store_t *s, const rp_ctx_t *ctx, const char *type,
                          const char *entity, int64_t record_id, char *text, int64_t *seq_out,
                          rp_error_t *err)
{
    rp_ctx_t c = ctx ? *ctx : (rp_ctx_t){0};
    if (c.depth > s->max_depth) {
        free(text);
        char chain[400];
        chain_text(s, c.cause, chain, sizeof chain);
        return rp_error_set(err, RP_ELOOP, RP_C_LOOP,
                            "a chain of %d caused changes (limit %d) stopped before %s: %s", c.depth,
                            s->max_depth, type, chain);
    }
    rp_db_stmt_t *st = rp__stmt_held(s, &s->held[RP__HELD_EVENT],
                                     "INSERT INTO rp_events(uid, type, entity, record_id, actor,"
                                     " origin, at, changes, cause, depth)"
                                     " VALUES(?,?,?,?,?,?,?,?,?,?)", err);
    if (!st) {
        free(text);
        return err ? err->code : RP_EIO;
    }
    char uid[27];
    rp__uid(s, uid);
    rp_db_bind_text_copy(st, 1, uid, 26);
    rp_db_bind_text(st, 2, type, -1);
    rp_db_bind_text(st, 3, entity ? entity : "", -1);
    rp_db_bind_int(st, 4, record_id);
    rp_db_bind_text(st, 5, c.actor ? c.actor : "system", -1);
    rp_db_bind_text(st, 6, c.origin ? c.origin : "core", -1);
    rp_db_bind_int(st, 7, rp_store_now(s));
    rp_db_bind_text_owned(st, 8, text, -1);
    rp_db_bind_int(st, 9, c.cause);
    rp_db_bind_int(st, 10, c.depth);
    int rc = rp_db_step(st);
    rp_db_reset(st);
    if (rc != RP_DB_DONE)
        return rp__dberr(s, rc, "cannot append the event", err);
    if (seq_out)
        *seq_out = rp_db_last_id(s->db);
    return 0;
}

static bool event_type_ok(const char *t)
{
    /* Dotted identifiers: "invoice.sent", "deal.stage_changed". */
    if (!t || !*t || strlen(t) > 64)
        return false;
    bool start = true;
    for (const char *p = t; *p; p++) {
        if (*p == '.') {
            if (start)
                return false;
            start = true;
            continue;
        }
        if (start && !(*p >= 'a' && *p <= 'z'))
            return false;
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
        start = false;
    }
    return !start;
}

/* The first segments of the types the engine writes itself: a user who could emit them could
 * forge a sign-in, a settings change or a record's history for the rules that react to them. */
static const char *const engine_types[] = {"auth", "access", "token", "user", "config", "schema",
                                           "webhook", "job", "role", "plugin", "script", NULL};

int rp_events_user_may_emit(rp_store_t *s, const rp_ctx_t *ctx, const char *type,
                            const char *entity, int64_t id, rp_error_t *err)
{
    const rp_access_t *a = RP__ACCESS(ctx);
    size_t n = strcspn(type, ".");
    char first[64];
    snprintf(first, sizeof first, "%.*s", (int)(n < 63 ? n : 63), type);
    bool taken = rp_store_has_entity(s, first);
    for (int i = 0; engine_types[i] && !taken; i++)
        taken = strcmp(first, engine_types[i]) == 0;
    if (taken)
        return rp_error_set(err, RP_EPERM, RP_C_DENIED, "role %s may not emit %s: \"%s.\" events "
                            "are written by the engine itself; a user's events need a type of "
                            "their own (e.g. survey.answered)", rp__access_role(a), type, first);
    if ((!entity || !*entity) && id)
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE, "event %s names record %lld but no "
                            "entity", type, (long long)id);
    if (!entity || !*entity)
        return 0;
    if (id <= 0)
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE, "event %s about %s needs the id of one "
                            "of its records", type, entity);
    json_t *rec = NULL;
    int rc = rp_store_get_as(s, ctx, entity, id, &rec, err);
    json_decref(rec);
    return rc;
}

int rp_events_emit(rp_store_t *s, const rp_ctx_t *ctx, const char *type, const char *entity,
                   int64_t record_id, json_t *payload, int64_t *seq_out, rp_error_t *err)
{
    if (!event_type_ok(type))
        return rp_error_set(err, RP_EINVAL, RP_C_IDENT,
                            "\"%s\" is not a valid event type (dotted lower-case identifiers, "
                            "e.g. invoice.sent)",
                            type ? type : "(null)");
    if (payload && !json_is_object(payload))
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE,
                            "the payload of event %s must be a JSON object", type);
    if (entity && *entity && !rp__entity_req(s, entity, err))
        return err ? err->code : RP_EIO;
    int rc = rp_store_begin(s, err);
    if (rc)
        return rc;
    if ((rc = rp__event_append(s, ctx, type, entity, record_id, payload, seq_out, err))) {
        rp_store_rollback(s, NULL);
        return rc;
    }
    return rp_store_commit(s, err);
}

