/*
 * events.c — the event log: appending in the writer's transaction with the cause chain
 * checked, reading, before-hooks, subscribers with checkpoints, retries and dead letters, and
 * explaining how a field came to hold its value.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../store/internal.h"

/* ---- appending -------------------------------------------------------------------------- */

/* Describes the chain of causes ending at @p seq as "a#1 (actor) → b#2 (actor) → …". */
static void chain_text(rp_store_t *s, int64_t seq, char *out, size_t cap)
{
    int64_t chain[40];
    int n = 0;
    sqlite3_stmt *st = rp__stmt(s, "SELECT cause FROM rp_events WHERE seq = ?", NULL);
    while (st && seq > 0 && n < 40) {
        chain[n++] = seq;
        sqlite3_bind_int64(st, 1, seq);
        seq = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_reset(st);
    }
    size_t len = 0;
    out[0] = '\0';
    st = rp__stmt(s, "SELECT type, actor FROM rp_events WHERE seq = ?", NULL);
    for (int i = n - 1; st && i >= 0 && len + 80 < cap; i--) {
        sqlite3_bind_int64(st, 1, chain[i]);
        if (sqlite3_step(st) == SQLITE_ROW)
            len += (size_t)snprintf(out + len, cap - len, "%s%s#%lld (%s)", i == n - 1 ? "" : " → ",
                                    (const char *)sqlite3_column_text(st, 0), (long long)chain[i],
                                    (const char *)sqlite3_column_text(st, 1));
        sqlite3_reset(st);
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
    sqlite3_stmt *st = rp__stmt_held(s, &s->held[RP__HELD_EVENT],
                                     "INSERT INTO rp_events(uid, type, entity, record_id, actor,"
                                     " origin, at, changes, cause, depth)"
                                     " VALUES(?,?,?,?,?,?,?,?,?,?)", err);
    if (!st) {
        free(text);
        return err ? err->code : RP_EIO;
    }
    char uid[27];
    rp__uid(s, uid);
    sqlite3_bind_text(st, 1, uid, 26, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, entity ? entity : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, record_id);
    sqlite3_bind_text(st, 5, c.actor ? c.actor : "system", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, c.origin ? c.origin : "core", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, rp_store_now(s));
    sqlite3_bind_text(st, 8, text, -1, free);
    sqlite3_bind_int64(st, 9, c.cause);
    sqlite3_bind_int(st, 10, c.depth);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return rp__dberr(s, rc, "cannot append the event", err);
    if (seq_out)
        *seq_out = sqlite3_last_insert_rowid(s->db);
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
                            "their own (e.g. survey.answered)", rp_access_role(a), type, first);
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

/* ---- reading ---------------------------------------------------------------------------- */

#define EVENT_COLS "seq, uid, type, entity, record_id, actor, origin, at, changes, cause, depth"

/* One allocation holds every string of an event (uid first, so freeing uid frees all): events
 * are read by the thousand and each would otherwise cost eight mallocs. */
static void event_from_row(sqlite3_stmt *st, rp_event_t *ev)
{
    static const int cols[6] = {1, 2, 3, 5, 6, 8};
    size_t len[6], total = 32;
    for (int i = 0; i < 6; i++) {
        len[i] = (size_t)sqlite3_column_bytes(st, cols[i]);
        total += len[i] + 1;
    }
    memset(ev, 0, sizeof *ev);
    char *arena = malloc(total);
    if (!arena)
        return;
    char **dst[6] = {&ev->uid, &ev->type, &ev->entity, &ev->actor, &ev->origin, &ev->changes};
    char *p = arena;
    for (int i = 0; i < 6; i++) {
        const unsigned char *t = sqlite3_column_text(st, cols[i]);
        if (len[i])
            memcpy(p, t, len[i]);
        p[len[i]] = '\0';
        *dst[i] = p;
        p += len[i] + 1;
    }
    ev->at = p;
    ev->seq = sqlite3_column_int64(st, 0);
    ev->record_id = sqlite3_column_int64(st, 4);
    ev->at_ms = sqlite3_column_int64(st, 7);
    rp__fmt_time(ev->at_ms, ev->at);
    ev->cause = sqlite3_column_int64(st, 9);
    ev->depth = sqlite3_column_int(st, 10);
}

void rp_event_clear(rp_event_t *ev)
{
    if (!ev)
        return;
    free(ev->uid);
    memset(ev, 0, sizeof *ev);
}

json_t *rp_event_json(const rp_event_t *ev)
{
    json_t *ch = json_loads(ev->changes ? ev->changes : "{}", 0, NULL);
    return json_pack("{s:I,s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:o,s:I,s:i}", "seq", (json_int_t)ev->seq,
                     "uid", ev->uid ? ev->uid : "", "type", ev->type ? ev->type : "", "entity",
                     ev->entity ? ev->entity : "", "record_id", (json_int_t)ev->record_id,
                     "actor", ev->actor ? ev->actor : "", "origin", ev->origin ? ev->origin : "",
                     "at", ev->at ? ev->at : "", "changes", ch ? ch : json_object(), "cause",
                     (json_int_t)ev->cause, "depth", ev->depth);
}

static int read_rows(rp_store_t *s, sqlite3_stmt *st, rp_event_t *out, int max, rp_error_t *err)
{
    int n = 0, rc = SQLITE_DONE;
    sqlite3_stmt *was_reading = rp__reading(s, st);
    while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        event_from_row(st, &out[n++]);
        if (n % 16 == 0 && (rc = rp__over_budget(s, err)))
            break;
    }
    rp__reading(s, was_reading);
    if (rc < 0 || (n < max && rc != SQLITE_DONE)) {
        sqlite3_reset(st);
        for (int i = 0; i < n; i++)
            rp_event_clear(&out[i]);
        return rc < 0 ? rc : rp__dberr(s, rc, "cannot read events", err);
    }
    sqlite3_reset(st);
    return n;
}

int rp_events_list(rp_store_t *s, int64_t after_seq, bool newest, rp_event_t *out, int max,
                   rp_error_t *err)
{
    if (max <= 0)
        return 0;
    const char *sql = newest ? "SELECT * FROM (SELECT " EVENT_COLS " FROM rp_events WHERE seq > ?"
                               " ORDER BY seq DESC LIMIT ?) ORDER BY seq"
                             : "SELECT " EVENT_COLS " FROM rp_events WHERE seq > ? ORDER BY seq"
                               " LIMIT ?";
    sqlite3_stmt *st = rp__stmt(s, sql, err);
    if (!st)
        return err ? err->code : RP_EIO;
    sqlite3_bind_int64(st, 1, after_seq);
    sqlite3_bind_int(st, 2, max);
    return read_rows(s, st, out, max, err);
}

int rp_events_for_record(rp_store_t *s, const char *entity, int64_t record_id, int64_t after_seq,
                         rp_event_t *out, int max, rp_error_t *err)
{
    if (max <= 0)
        return 0;
    sqlite3_stmt *st = rp__stmt(s,
                                "SELECT " EVENT_COLS " FROM rp_events WHERE entity = ?"
                                " AND record_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                                err);
    if (!st)
        return err ? err->code : RP_EIO;
    sqlite3_bind_text(st, 1, entity, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, record_id);
    sqlite3_bind_int64(st, 3, after_seq);
    sqlite3_bind_int(st, 4, max);
    return read_rows(s, st, out, max, err);
}

int64_t rp_events_last_seq(rp_store_t *s)
{
    sqlite3_stmt *st = rp__stmt(s, "SELECT coalesce(max(seq), 0) FROM rp_events", NULL);
    if (!st)
        return 0;
    int64_t seq = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return seq;
}

/* ---- before-hooks ----------------------------------------------------------------------- */

static int hook_add(rp_store_t *s, const char *entity, rp_action_t action, int priority,
                    rp_hook_fn fn, rp_batch_hook_fn bfn, void *ud, const char *owner,
                    rp_error_t *err)
{
    /* The entity need not exist yet: a rule may be loaded before an admin defines what it
     * guards, and applies from then on. */
    if (!entity || (strcmp(entity, "*") != 0 && !rp__ident_ok(entity)))
        return rp_error_set(err, RP_EINVAL, RP_C_IDENT,
                            "a hook needs an entity name or \"*\" (got \"%s\")",
                            entity ? entity : "(null)");
    if ((unsigned)action > RP_ACT_PURGE)
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE, "unknown action %d for a hook", action);
    if (bfn && action != RP_ACT_CREATE && action != RP_ACT_UPDATE)
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE,
                            "batch hooks run on create and update only");
    if (s->nhooks == s->caphooks) {
        int nc = s->caphooks ? s->caphooks * 2 : 8;
        rp__hook_t *nh = realloc(s->hooks, sizeof *nh * (size_t)nc);
        if (!nh)
            return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        s->hooks = nh;
        s->caphooks = nc;
    }
    rp__hook_t h = {.id = s->next_hook_id++, .entity = strdup(entity), .action = action,
                    .priority = priority, .fn = fn, .bfn = bfn, .ud = ud,
                    .owner = strdup(owner ? owner : "")};
    if (!h.entity || !h.owner) {
        free(h.entity);
        free(h.owner);
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    }
    /* Keep the list sorted by priority, stable for equal priorities. */
    int at = s->nhooks;
    while (at > 0 && s->hooks[at - 1].priority > priority)
        at--;
    memmove(&s->hooks[at + 1], &s->hooks[at], sizeof *s->hooks * (size_t)(s->nhooks - at));
    s->hooks[at] = h;
    s->nhooks++;
    return h.id;
}

int rp_hook_add(rp_store_t *s, const char *entity, rp_action_t action, int priority,
                rp_hook_fn fn, void *ud, const char *owner, rp_error_t *err)
{
    if (!fn)
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE, "a hook needs a function");
    return hook_add(s, entity, action, priority, fn, NULL, ud, owner, err);
}

int rp_hook_add_batch(rp_store_t *s, const char *entity, rp_action_t action, int priority,
                      rp_batch_hook_fn fn, void *ud, const char *owner, rp_error_t *err)
{
    if (!fn)
        return rp_error_set(err, RP_EINVAL, RP_C_TYPE, "a hook needs a function");
    return hook_add(s, entity, action, priority, NULL, fn, ud, owner, err);
}

static void hook_drop(rp_store_t *s, int i)
{
    free(s->hooks[i].entity);
    free(s->hooks[i].owner);
    memmove(&s->hooks[i], &s->hooks[i + 1], sizeof *s->hooks * (size_t)(s->nhooks - i - 1));
    s->nhooks--;
}

int rp_hook_remove(rp_store_t *s, int id)
{
    for (int i = 0; i < s->nhooks; i++) {
        if (s->hooks[i].id == id) {
            hook_drop(s, i);
            return 0;
        }
    }
    return RP_ENOTFOUND;
}

int rp_hooks_remove_owner(rp_store_t *s, const char *owner)
{
    int n = 0;
    for (int i = s->nhooks - 1; i >= 0; i--) {
        if (strcmp(s->hooks[i].owner, owner ? owner : "") == 0) {
            hook_drop(s, i);
            n++;
        }
    }
    return n;
}

void rp__hooks_free(rp_store_t *s)
{
    while (s->nhooks)
        hook_drop(s, s->nhooks - 1);
    free(s->hooks);
    s->hooks = NULL;
    s->caphooks = 0;
}

static bool hook_matches(const rp__hook_t *h, const rp__entity_t *e, rp_action_t action)
{
    return h->action == action && (h->entity[0] == '*' || strcmp(h->entity, e->name) == 0);
}

bool rp__hooks_any(rp_store_t *s, const rp__entity_t *e, rp_action_t action)
{
    for (int i = 0; i < s->nhooks; i++)
        if (hook_matches(&s->hooks[i], e, action))
            return true;
    return false;
}

/* A veto reaches the caller with the hook's message, or a plain one if it gave none. */
static int veto(rp_error_t *err, const char *owner, const char *entity)
{
    if (!err)
        return RP_EVETO;
    if (err->msg[0] == '\0' || err->code >= 0)
        rp_error_set(err, RP_EVETO, RP_C_VETO,
                     "%s%sa before-hook of %s (registered by %s) refused the change",
                     err->msg, err->msg[0] ? ": " : "", entity, owner[0] ? owner : "no one");
    return err ? err->code : RP_EIO;
}

int rp__hooks_run(rp_store_t *s, rp__entity_t *e, rp_action_t action, json_t *batch,
                  const int64_t *ids, json_t **olds, const rp_ctx_t *ctx, size_t *failed,
                  rp_error_t *err)
{
    size_t n = json_array_size(batch);
    /* Snapshot the matching hooks (already in priority order): a hook may add or remove
     * hooks while it runs, and the change applies from the next write on. */
    int nmatch = 0;
    for (int i = 0; i < s->nhooks; i++)
        nmatch += hook_matches(&s->hooks[i], e, action);
    if (nmatch == 0)
        return 0;
    int small[16];
    int *snap = nmatch <= 16 ? small : malloc(sizeof *snap * (size_t)nmatch);
    if (!snap)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    int k = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < s->nhooks; i++)
            if (hook_matches(&s->hooks[i], e, action) && (pass == 0) == (s->hooks[i].bfn != NULL))
                snap[k++] = s->hooks[i].id;
    char ename[64], owner[128];
    rp__cat(ename, sizeof ename, e->name, NULL);
    int rc = 0;
    /* Hooks are the business rules: they run as the engine, with the actor and cause of the
     * write but none of its user's limits (the store checked those at its door). A rule that
     * sums an order's lines must see every line, not the acting user's own. */
    rp_ctx_t rule_ctx = ctx ? *ctx : (rp_ctx_t){0};
    rule_ctx.access = NULL;
    ctx = &rule_ctx;
    for (int j = 0; j < nmatch && !rc; j++) {
        rp__hook_t h = {0};
        for (int i = 0; i < s->nhooks && !h.id; i++)
            if (s->hooks[i].id == snap[j])
                h = s->hooks[i];
        if (!h.id)
            continue; /* Removed by an earlier hook of this run. */
        rp__cat(owner, sizeof owner, h.owner, NULL);
        if (err)
            rp_error_clear(err);
        if (h.bfn) {
            size_t bad = 0;
            if (h.bfn(s, ename, action, batch, ids, ctx, h.ud, &bad, err)) {
                *failed = bad;
                rc = veto(err, owner, ename);
            }
            continue;
        }
        for (size_t i = 0; i < n && !rc; i++) {
            rp_change_t ch = {.entity = ename, .action = action, .id = ids ? ids[i] : 0,
                              .fields = (action == RP_ACT_CREATE || action == RP_ACT_UPDATE)
                                            ? json_array_get(batch, i) : NULL,
                              .old = olds ? olds[i] : NULL, .ctx = ctx};
            if (h.fn(s, &ch, h.ud, err)) {
                *failed = i;
                rc = veto(err, owner, ename);
            }
        }
    }
    if (snap != small)
        free(snap);
    return rc;
}

/* ---- subscribers ------------------------------------------------------------------------ */

static bool subscriber_name_ok(const char *n)
{
    if (!n || !*n || strlen(n) > 64)
        return false;
    for (const char *p = n; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '.' || *p == '-' || *p == ':'))
            return false;
    return true;
}

static int no_subscriber(const char *name, rp_error_t *err)
{
    return rp_error_set(err, RP_ENOTFOUND, RP_C_SUBSCRIBER, "no subscriber named \"%s\"",
                        name ? name : "(null)");
}

int rp_events_subscribe(rp_store_t *s, const char *name, const char *types, bool from_now,
                        rp_error_t *err)
{
    if (!subscriber_name_ok(name))
        return rp_error_set(err, RP_EINVAL, RP_C_IDENT,
                            "\"%s\" is not a valid subscriber name (letters, digits, _ . - :, at "
                            "most 64)",
                            name ? name : "(null)");
    sqlite3_stmt *st = rp__stmt(s,
                                "INSERT INTO rp_subscribers(name, checkpoint, types, created_at)"
                                " VALUES(?1, CASE WHEN ?2 THEN (SELECT coalesce(max(seq), 0)"
                                " FROM rp_events) ELSE 0 END, ?3, ?4)"
                                " ON CONFLICT(name) DO UPDATE SET types = excluded.types",
                                err);
    if (!st)
        return err ? err->code : RP_EIO;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, from_now);
    sqlite3_bind_text(st, 3, types && *types ? types : "*", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, rp_store_now(s));
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : rp__dberr(s, rc, "cannot create the subscriber", err);
}

int rp_events_unsubscribe(rp_store_t *s, const char *name, rp_error_t *err)
{
    static const char *const sql[] = {"DELETE FROM rp_retries WHERE subscriber = ?",
                                      "DELETE FROM rp_dead WHERE subscriber = ?",
                                      "DELETE FROM rp_subscribers WHERE name = ?"};
    int rc = rp_store_begin(s, err);
    if (rc)
        return rc;
    for (int i = 0; i < 3; i++) {
        sqlite3_stmt *st = rp__stmt(s, sql[i], err);
        if (!st) {
            rc = err ? err->code : RP_EIO;
            break;
        }
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        int src = sqlite3_step(st);
        sqlite3_reset(st);
        if (src != SQLITE_DONE) {
            rc = rp__dberr(s, src, "cannot remove the subscriber", err);
            break;
        }
        if (i == 2 && sqlite3_changes(s->db) == 0)
            rc = no_subscriber(name, err);
    }
    if (rc) {
        rp_store_rollback(s, NULL);
        return rc;
    }
    return rp_store_commit(s, err);
}

/* Reads the checkpoint and type glob of @p name. */
static int sub_state(rp_store_t *s, const char *name, int64_t *checkpoint, char *types,
                     size_t cap, rp_error_t *err)
{
    sqlite3_stmt *st = rp__stmt(s, "SELECT checkpoint, types FROM rp_subscribers WHERE name = ?",
                                err);
    if (!st)
        return err ? err->code : RP_EIO;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *checkpoint = sqlite3_column_int64(st, 0);
        if (types)
            snprintf(types, cap, "%s", (const char *)sqlite3_column_text(st, 1));
    }
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return no_subscriber(name, err);
    return rc == SQLITE_ROW ? 0 : rp__dberr(s, rc, "cannot read the subscriber", err);
}

int rp_events_checkpoint(rp_store_t *s, const char *name, int64_t *seq, rp_error_t *err)
{
    return sub_state(s, name, seq, NULL, 0, err);
}

#define SKIP_WRITE 256

static int exec_bound(rp_store_t *s, const char *sql, const char *name, int64_t a, int64_t b,
                      const char *text, rp_error_t *err);

int rp_events_read(rp_store_t *s, const char *name, rp_event_t *out, int max,
                   int64_t *retry_at_ms, rp_error_t *err)
{
    if (retry_at_ms)
        *retry_at_ms = 0;
    int64_t checkpoint;
    char types[128];
    int rc = sub_state(s, name, &checkpoint, types, sizeof types, err);
    if (rc || max <= 0)
        return rc;
    /* Dead letters queued for replay go first. */
    sqlite3_stmt *st = rp__stmt(s,
                                "SELECT e.seq, e.uid, e.type, e.entity, e.record_id, e.actor,"
                                " e.origin, e.at, e.changes, e.cause, e.depth, d.attempts"
                                " FROM rp_dead d JOIN rp_events e ON e.seq = d.seq"
                                " WHERE d.subscriber = ? AND d.replay = 1 ORDER BY d.id LIMIT ?",
                                err);
    if (!st)
        return err ? err->code : RP_EIO;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, max);
    int n = 0;
    while (n < max && sqlite3_step(st) == SQLITE_ROW) {
        event_from_row(st, &out[n]);
        out[n].attempts = sqlite3_column_int(st, 11);
        out[n].replay = true;
        n++;
    }
    sqlite3_reset(st);
    if (n > 0)
        return n;
    /* A pending retry of the head event holds the subscriber back until it is due. */
    st = rp__stmt(s, "SELECT seq, attempts, next_at FROM rp_retries WHERE subscriber = ?"
                     " ORDER BY seq LIMIT 1", err);
    if (!st)
        return err ? err->code : RP_EIO;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int64_t rseq = 0, rnext = 0;
    int rattempts = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        rseq = sqlite3_column_int64(st, 0);
        rattempts = sqlite3_column_int(st, 1);
        rnext = sqlite3_column_int64(st, 2);
    }
    sqlite3_reset(st);
    if (rseq && rnext > rp_store_now(s)) {
        if (retry_at_ms)
            *retry_at_ms = rnext;
        return 0;
    }
    st = rp__stmt(s, "SELECT " EVENT_COLS " FROM rp_events WHERE seq > ? AND type GLOB ?"
                     " ORDER BY seq LIMIT ?", err);
    if (!st)
        return err ? err->code : RP_EIO;
    sqlite3_bind_int64(st, 1, checkpoint);
    sqlite3_bind_text(st, 2, types, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 3, max);
    n = read_rows(s, st, out, max, err);
    for (int i = 0; i < n; i++)
        if (out[i].seq == rseq)
            out[i].attempts = rattempts;
    /* Nothing for this subscriber since its checkpoint: move the checkpoint past what was
     * read, or every later read scans the same events again (a subscriber to lead.* under a
     * stream of contact.created scanned all of them on every pass: quadratic, and 73% of an
     * API server's time). Every event up to the newest visible one is committed and no later
     * commit can take a lower seq, so nothing is skipped. Written once per SKIP_WRITE events,
     * not on every empty read. */
    if (n == 0 && !rseq) {
        int64_t last = rp_events_last_seq(s);
        if (last - checkpoint >= SKIP_WRITE) {
            int rc2 = exec_bound(s, "UPDATE rp_subscribers SET checkpoint = max(checkpoint, ?2)"
                                    " WHERE name = ?1 AND ?3 = ?3", name, last, 0, NULL, err);
            if (rc2)
                return rc2;
        }
    }
    return n;
}

static int exec_bound(rp_store_t *s, const char *sql, const char *name, int64_t a, int64_t b,
                      const char *text, rp_error_t *err)
{
    sqlite3_stmt *st = rp__stmt(s, sql, err);
    if (!st)
        return err ? err->code : RP_EIO;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, a);
    sqlite3_bind_int64(st, 3, b);
    if (text)
        sqlite3_bind_text(st, 4, text, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : rp__dberr(s, rc, "cannot update the subscriber", err);
}

int rp_events_ack(rp_store_t *s, const char *name, int64_t seq, rp_error_t *err)
{
    int rc = rp_store_begin(s, err);
    if (rc)
        return rc;
    if ((rc = exec_bound(s, "DELETE FROM rp_dead WHERE subscriber = ?1 AND seq = ?2 AND replay = 1"
                            " AND ?3 = ?3", name, seq, 0, NULL, err)))
        goto fail;
    if (sqlite3_changes(s->db) == 0) {
        if ((rc = exec_bound(s, "UPDATE rp_subscribers SET checkpoint = max(checkpoint, ?2)"
                                " WHERE name = ?1 AND ?3 = ?3", name, seq, 0, NULL, err)))
            goto fail;
        if (sqlite3_changes(s->db) == 0) {
            rc = no_subscriber(name, err);
            goto fail;
        }
        if ((rc = exec_bound(s, "DELETE FROM rp_retries WHERE subscriber = ?1 AND seq <= ?2"
                                " AND ?3 = ?3", name, seq, 0, NULL, err)))
            goto fail;
    }
    return rp_store_commit(s, err);
fail:
    rp_store_rollback(s, NULL);
    return rc;
}

int rp_events_fail(rp_store_t *s, const char *name, int64_t seq, const char *error,
                   const rp_retry_t *retry, bool *dead, rp_error_t *err)
{
    rp_retry_t r = retry ? *retry : (rp_retry_t){0};
    int max_attempts = r.max_attempts > 0 ? r.max_attempts : 5;
    int64_t base = r.base_ms > 0 ? r.base_ms : 1000;
    int64_t ceiling = r.max_delay_ms > 0 ? r.max_delay_ms : 3600000;
    const char *why = error && *error ? error : "the handler failed without a message";
    int64_t now = rp_store_now(s);
    if (dead)
        *dead = false;
    int rc = rp_store_begin(s, err);
    if (rc)
        return rc;
    /* A replayed dead letter that fails again goes back to the dead letters. */
    if ((rc = exec_bound(s, "UPDATE rp_dead SET replay = 0, attempts = attempts + 1, at = ?3,"
                            " error = ?4 WHERE subscriber = ?1 AND seq = ?2 AND replay = 1",
                         name, seq, now, why, err)))
        goto fail;
    if (sqlite3_changes(s->db) > 0) {
        if (dead)
            *dead = true;
        return rp_store_commit(s, err);
    }
    int64_t checkpoint;
    if ((rc = sub_state(s, name, &checkpoint, NULL, 0, err)))
        goto fail;
    sqlite3_stmt *st = rp__stmt(s, "SELECT attempts FROM rp_retries WHERE subscriber = ?"
                                   " AND seq = ?", err);
    if (!st) {
        rc = err ? err->code : RP_EIO;
        goto fail;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, seq);
    int attempts = (sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0) + 1;
    sqlite3_reset(st);
    if (attempts >= max_attempts) {
        sqlite3_stmt *ins = rp__stmt(s, "INSERT INTO rp_dead(subscriber, seq, attempts, at,"
                                        " error) VALUES(?,?,?,?,?)", err);
        if (!ins) {
            rc = err ? err->code : RP_EIO;
            goto fail;
        }
        sqlite3_bind_text(ins, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 2, seq);
        sqlite3_bind_int(ins, 3, attempts);
        sqlite3_bind_int64(ins, 4, now);
        sqlite3_bind_text(ins, 5, why, -1, SQLITE_STATIC);
        int src = sqlite3_step(ins);
        sqlite3_reset(ins);
        if (src != SQLITE_DONE) {
            rc = rp__dberr(s, src, "cannot record the dead letter", err);
            goto fail;
        }
        if ((rc = exec_bound(s, "DELETE FROM rp_retries WHERE subscriber = ?1 AND seq = ?2"
                                " AND ?3 = ?3", name, seq, 0, NULL, err)) ||
            (rc = exec_bound(s, "UPDATE rp_subscribers SET checkpoint = max(checkpoint, ?2)"
                                " WHERE name = ?1 AND ?3 = ?3", name, seq, 0, NULL, err)))
            goto fail;
        if (dead)
            *dead = true;
    } else {
        /* Exponential backoff with "equal jitter": half the delay fixed, half random, so
         * many failing subscribers do not retry in step. */
        int64_t delay = base;
        for (int i = 1; i < attempts && delay < ceiling; i++)
            delay *= 2;
        if (delay > ceiling)
            delay = ceiling;
        delay = delay / 2 + (int64_t)(rp__rand(s) % (uint64_t)(delay / 2 + 1));
        sqlite3_stmt *up = rp__stmt(s, "INSERT INTO rp_retries(subscriber, seq, attempts, next_at,"
                                       " error) VALUES(?,?,?,?,?) ON CONFLICT(subscriber, seq)"
                                       " DO UPDATE SET attempts = excluded.attempts,"
                                       " next_at = excluded.next_at, error = excluded.error", err);
        if (!up) {
            rc = err ? err->code : RP_EIO;
            goto fail;
        }
        sqlite3_bind_text(up, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(up, 2, seq);
        sqlite3_bind_int(up, 3, attempts);
        sqlite3_bind_int64(up, 4, now + delay);
        sqlite3_bind_text(up, 5, why, -1, SQLITE_STATIC);
        int src = sqlite3_step(up);
        sqlite3_reset(up);
        if (src != SQLITE_DONE) {
            rc = rp__dberr(s, src, "cannot record the retry", err);
            goto fail;
        }
    }
    return rp_store_commit(s, err);
fail:
    rp_store_rollback(s, NULL);
    return rc;
}

int rp_events_deliver(rp_store_t *s, const char *name, rp_event_fn fn, void *ud, int max,
                      const rp_retry_t *retry, rp_error_t *err)
{
    enum { BATCH = 1024 };
    rp_event_t *evs = malloc(sizeof *evs * BATCH);
    if (!evs)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    char actor[96];
    snprintf(actor, sizeof actor, "subscriber:%s", name ? name : "");
    int handled = 0, rc = 0;
    while (handled < max && rc >= 0) {
        int want = max - handled < BATCH ? max - handled : BATCH;
        int n = rp_events_read(s, name, evs, want, NULL, err);
        if (n <= 0) {
            rc = n < 0 ? n : 0;
            break;
        }
        /* A batch is one transaction and each event a savepoint in it: a handler's writes and
         * the checkpoint that covers them commit together, and a failing handler undoes only
         * its own event. */
        int failed = -1;
        int64_t last_ok = 0;
        rp_error_t herr = {0};
        if ((rc = rp_store_begin(s, err)))
            goto next;
        for (int i = 0; i < n; i++) {
            rp_ctx_t ctx = {.actor = actor, .origin = "handler", .cause = evs[i].seq,
                            .depth = evs[i].depth + 1};
            rp_error_clear(&herr);
            s->lazy_sp = true;
            s->lazy_open = false;
            int hrc = fn(s, &evs[i], &ctx, ud, &herr);
            s->lazy_sp = false;
            if (hrc != 0) {
                if (s->lazy_open)
                    rp_store_rollback(s, NULL);
                failed = i;
                break;
            }
            if (evs[i].replay && (rc = rp_events_ack(s, name, evs[i].seq, err))) {
                if (s->lazy_open)
                    rp_store_rollback(s, NULL);
                break;
            }
            if (s->lazy_open && (rc = rp_store_commit(s, err)))
                break;
            if (!evs[i].replay)
                last_ok = evs[i].seq;
            handled++;
        }
        if (!rc && last_ok)
            rc = rp_events_ack(s, name, last_ok, err);
        if (rc) {
            rp_store_rollback(s, NULL);
            goto next;
        }
        if ((rc = rp_store_commit(s, err)))
            goto next;
        if (failed >= 0) {
            const char *why = herr.msg[0] ? herr.msg : "the handler returned an error";
            bool dead = false;
            rc = rp_events_fail(s, name, evs[failed].seq, why, retry, &dead, err);
            /* A dead letter no longer holds the subscriber back: read on. A retry does. */
            if (!rc && !dead)
                rc = 1;
        }
    next:
        for (int j = 0; j < n; j++)
            rp_event_clear(&evs[j]);
    }
    free(evs);
    return rc < 0 ? rc : handled;
}

int rp_events_dead(rp_store_t *s, const char *name, json_t **out, rp_error_t *err)
{
    *out = NULL;
    sqlite3_stmt *st = rp__stmt(s,
                                "SELECT d.id, d.subscriber, d.seq, e.type, d.error, d.attempts,"
                                " d.at, d.replay FROM rp_dead d JOIN rp_events e ON e.seq = d.seq"
                                " WHERE ?1 IS NULL OR d.subscriber = ?1 ORDER BY d.id",
                                err);
    if (!st)
        return err ? err->code : RP_EIO;
    if (name)
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    json_t *arr = json_array();
    while (sqlite3_step(st) == SQLITE_ROW) {
        char at[32];
        rp__fmt_time(sqlite3_column_int64(st, 6), at);
        json_array_append_new(
            arr, json_pack("{s:I,s:s,s:I,s:s,s:s,s:i,s:s,s:b}", "id",
                           (json_int_t)sqlite3_column_int64(st, 0), "subscriber",
                           (const char *)sqlite3_column_text(st, 1), "seq",
                           (json_int_t)sqlite3_column_int64(st, 2), "type",
                           (const char *)sqlite3_column_text(st, 3), "error",
                           (const char *)sqlite3_column_text(st, 4), "attempts",
                           sqlite3_column_int(st, 5), "at", at, "replaying",
                           sqlite3_column_int(st, 7)));
    }
    sqlite3_reset(st);
    *out = arr;
    return 0;
}

int rp_events_replay(rp_store_t *s, int64_t id, rp_error_t *err)
{
    sqlite3_stmt *st = rp__stmt(s, "UPDATE rp_dead SET replay = 1 WHERE id = ?", err);
    if (!st)
        return err ? err->code : RP_EIO;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return rp__dberr(s, rc, "cannot queue the replay", err);
    if (sqlite3_changes(s->db) == 0)
        return rp_error_set(err, RP_ENOTFOUND, RP_C_SUBSCRIBER, "no dead letter with id %lld",
                            (long long)id);
    return 0;
}

/* ---- explain ---------------------------------------------------------------------------- */

static json_t *causes_of(rp_store_t *s, int64_t cause)
{
    json_t *arr = json_array();
    sqlite3_stmt *st = rp__stmt(s, "SELECT seq, type, entity, record_id, actor, origin, cause"
                                   " FROM rp_events WHERE seq = ?", NULL);
    for (int guard = 0; st && cause > 0 && guard < 64; guard++) {
        sqlite3_bind_int64(st, 1, cause);
        if (sqlite3_step(st) != SQLITE_ROW) {
            sqlite3_reset(st);
            break;
        }
        json_array_append_new(arr, json_pack("{s:I,s:s,s:s,s:I,s:s,s:s}", "seq",
                                             (json_int_t)sqlite3_column_int64(st, 0), "type",
                                             (const char *)sqlite3_column_text(st, 1), "entity",
                                             (const char *)sqlite3_column_text(st, 2), "record_id",
                                             (json_int_t)sqlite3_column_int64(st, 3), "actor",
                                             (const char *)sqlite3_column_text(st, 4), "origin",
                                             (const char *)sqlite3_column_text(st, 5)));
        cause = sqlite3_column_int64(st, 6);
        sqlite3_reset(st);
    }
    return arr;
}

int rp_events_explain(rp_store_t *s, const char *entity, int64_t id, const char *field,
                      json_t **out, rp_error_t *err)
{
    *out = NULL;
    rp__entity_t *e = rp__entity_req(s, entity, err);
    if (!e)
        return err ? err->code : RP_EIO;
    if (!field || (!rp__field(e, field) && strcmp(field, "deleted_at") != 0))
        return rp_error_set(err, RP_EINVAL, RP_C_NO_FIELD, "unknown field \"%s\" on %s",
                            field ? field : "(null)", entity);
    sqlite3_stmt *st = rp__stmt(s, "SELECT " EVENT_COLS " FROM rp_events WHERE entity = ?"
                                   " AND record_id = ? ORDER BY seq", err);
    if (!st)
        return err ? err->code : RP_EIO;
    sqlite3_bind_text(st, 1, entity, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, id);
    /* Collect first: causes_of() uses another cached statement while this one is open. */
    json_t *rows = json_array();
    int rc;
    sqlite3_stmt *was_reading = rp__reading(s, st);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        /* Each row's changes are parsed here, between the database's steps: a history of big
         * changes is stopped at the caller's budget, and says so rather than answer a part. */
        if ((rc = rp__over_budget(s, err)))
            break;
        json_t *ch = json_loads((const char *)sqlite3_column_text(st, 8), 0, NULL);
        json_t *pair = json_object_get(ch, field);
        if (json_is_array(pair) && json_array_size(pair) == 2) {
            char at[32];
            rp__fmt_time(sqlite3_column_int64(st, 7), at);
            json_array_append_new(
                rows, json_pack("{s:I,s:s,s:s,s:s,s:s,s:O,s:O,s:I}", "seq",
                                (json_int_t)sqlite3_column_int64(st, 0), "at", at, "type",
                                (const char *)sqlite3_column_text(st, 2), "actor",
                                (const char *)sqlite3_column_text(st, 5), "origin",
                                (const char *)sqlite3_column_text(st, 6), "old",
                                json_array_get(pair, 0), "new", json_array_get(pair, 1), "cause",
                                (json_int_t)sqlite3_column_int64(st, 9)));
        }
        json_decref(ch);
    }
    rp__reading(s, was_reading);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(rows);
        return rc < 0 ? rc : rp__dberr(s, rc, "cannot read the record's history", err);
    }
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) {
        json_object_set_new(r, "causes",
                            causes_of(s, json_integer_value(json_object_get(r, "cause"))));
        json_object_del(r, "cause");
    }
    *out = rows;
    return 0;
}

int rp_events_explain_as(rp_store_t *s, const rp_ctx_t *ctx, const char *entity, int64_t id,
                         const char *field, json_t **out, rp_error_t *err)
{
    const rp_access_t *a = RP__ACCESS(ctx);
    if (a) {
        *out = NULL;
        json_t *rec = NULL;
        int rc = rp_store_get_as(s, ctx, entity, id, &rec, err);
        json_decref(rec);
        if (rc)
            return rc;
        if (rp_access_hidden(a, entity, field))
            return rp_error_field(err, field, rp_error_set(err, RP_EPERM, RP_C_DENIED,
                                  "role %s may not read %s.%s: it is hidden (missing: read "
                                  "%s.%s)", rp_access_role(a), entity, field, entity, field));
    }
    int rc = rp_events_explain(s, entity, id, field, out, err);
    if (rc || !a)
        return rc;
    /* The causes are other records' events: the user sees those they may read, and where a
     * cause is not theirs to see, that there was one ({"seq", "hidden": true}). */
    size_t i;
    json_t *row;
    json_array_foreach(*out, i, row) {
        json_t *causes = json_object_get(row, "causes");
        size_t j;
        json_t *cz;
        json_array_foreach(causes, j, cz) {
            json_t *probe = json_pack("{s:O,s:O}", "entity", json_object_get(cz, "entity"),
                                      "record_id", json_object_get(cz, "record_id"));
            if (probe && rp_access_event(s, a, probe, NULL) != 1)
                json_array_set_new(causes, j, json_pack("{s:O,s:b}", "seq",
                                                        json_object_get(cz, "seq"), "hidden",
                                                        1));
            json_decref(probe);
        }
    }
    return 0;
}
