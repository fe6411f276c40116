/*
 * hooks.c — before-hooks: registering them by entity, action and priority, and running the
 * batch then record hooks of a write in its transaction (a veto stops the write).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

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
    if ((unsigned)action > RP_ACT_ERASE)
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

