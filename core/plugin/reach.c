/*
 * reach.c — the host functions that let a plugin reach past its own routes: public routes a
 * gateway calls without a token, a view on every record (/api/v1/<entity>/<id>/<view>), a
 * record's events as the caller may see them, the users it writes to, and work handed off the
 * event loop (a network send) with its result brought back onto it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <uv.h>

#include "host.h"
#include "rapport/access.h"
#include "rapport/auth.h"
#include "rapport/events.h"
#include "rapport/sched.h"

int rp__plugin_public_route(rapport_host *h, const char *method, const char *path,
                            rapport_route_fn fn, void *ud)
{
    /* A public route answers before any token is asked for: it must name its own path, and
     * never one of the plugin's token routes, which it would answer for. */
    while (path && *path == '/')
        path++;
    if (!path || !*path)
        return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "a public route needs a path of its own");
    size_t n = strlen(path);
    for (reg_t *r = h->P->regs; r; r = r->next) {
        size_t m = strlen(r->name);
        bool nested = (r->kind == 6 || r->kind == 8) && r->h == h &&
                      ((!strncmp(r->name, path, m) && (path[m] == '/' || !path[m])) ||
                       (!strncmp(r->name, path, n) && (r->name[n] == '/' || !r->name[n])));
        if (nested)
            return (int)rp__plugin_fail(h, RAPPORT_ECONFLICT, "public route \"%s\" and route "
                                        "\"%s\" would answer for each other's paths", path,
                                        r->name);
    }
    return rp__plugin_add_route(h, 8, method, path, fn, ud);
}

/* The engine's own views of a record, which no plugin may take. */
static const char *const own_views[] = {"events", "explain", "restore", "aggregate", "bulk",
                                        "subject", NULL};

int rp__plugin_record_route(rapport_host *h, const char *name, rapport_route_fn fn, void *ud)
{
    if (!name || !*name || strchr(name, '/'))
        return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "a record route needs a name of one word");
    for (int i = 0; own_views[i]; i++)
        if (strcmp(name, own_views[i]) == 0)
            return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "\"%s\" is the engine's own view of "
                                        "a record", name);
    for (reg_t *r = h->P->regs; r; r = r->next)
        if (r->kind == 9 && strcmp(r->name, name) == 0)
            return (int)rp__plugin_fail(h, RAPPORT_ECONFLICT, "plugin %s serves the record view "
                                        "\"%s\" already", r->h->desc->name, name);
    int rc = rp__plugin_add_route(h, 6, "GET", name, fn, ud);
    if (rc)
        return rc;
    reg_t *r = rp__plugin_reg(h, 9, ud, name);
    if (!r)
        return (int)rp__plugin_fail(h, RAPPORT_ENOMEM, "out of memory");
    json_array_append_new(h->routes, json_sprintf("GET /api/v1/<entity>/<id>/%s", name));
    return 0;
}

char *rp__plugin_events(rapport_host *h, const char *entity, int64_t id, const char *query)
{
    json_error_t je;
    json_t *q = query && *query ? json_loads(query, 0, &je) : json_object();
    if (!json_is_object(q)) {
        json_decref(q);
        rp__plugin_fail(h, RAPPORT_EINVAL, "the events query must be a JSON object {before, "
                        "limit}");
        return NULL;
    }
    json_t *jb = json_object_get(q, "before"), *jl = json_object_get(q, "limit");
    int64_t before = json_is_integer(jb) ? json_integer_value(jb) : 0;
    int64_t limit = json_is_integer(jl) ? json_integer_value(jl) : 50;
    bool bad = (jb && !json_is_null(jb) && (!json_is_integer(jb) || before < 0)) ||
               (jl && (!json_is_integer(jl) || limit < 1 || limit > 1000));
    json_decref(q);
    if (bad) {
        rp__plugin_fail(h, RAPPORT_EINVAL, "events: before must be an event's seq and limit a "
                        "number from 1 to 1000");
        return NULL;
    }
    rp_store_t *s = h->P->s;
    if (!entity || !rp_store_has_entity(s, entity)) {
        rp__plugin_fail(h, RAPPORT_ENOTFOUND, "there is no entity \"%s\"", entity ? entity : "");
        return NULL;
    }
    rp_event_t *evs = calloc((size_t)limit, sizeof *evs);
    if (!evs) {
        rp__plugin_fail(h, RAPPORT_ENOMEM, "out of memory");
        return NULL;
    }
    rp_error_t err = {0};
    int n = rp_events_for_record_before(s, entity, id, before, evs, (int)limit, &err);
    if (n < 0) {
        free(evs);
        rp__plugin_fail(h, n, "%s", err.msg);
        return NULL;
    }
    json_t *data = json_array();
    int rc = 0;
    for (int i = 0; i < n; i++) {
        json_t *ev = rc ? NULL : rp_event_json(&evs[i]);
        /* The caller's view: nothing outside its scope, its hidden fields out of the changes. */
        int ok = ev ? rp_access_event(s, h->ctx.access, ev, &err) : 0;
        if (ok < 0)
            rc = ok;
        if (ok == 1)
            json_array_append_new(data, ev);
        else
            json_decref(ev);
    }
    int64_t last = n ? evs[n - 1].seq : 0;
    for (int i = 0; i < n; i++)
        rp_event_clear(&evs[i]);
    free(evs);
    if (rc) {
        json_decref(data);
        rp__plugin_fail(h, rc, "%s", err.msg);
        return NULL;
    }
    json_t *out = json_pack("{s:o,s:o}", "data", data, "next",
                            n == limit ? json_integer(last) : json_null());
    char *text = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    return text;
}

char *rp__plugin_user(rapport_host *h, const char *name)
{
    json_t *u = NULL;
    rp_error_t err = {0};
    int rc = rp_users_get(h->P->s, name, &u, &err);
    if (rc) {
        rp__plugin_fail(h, rc, "%s", err.msg);
        return NULL;
    }
    /* Only what a plugin needs to reach a colleague: no ids, no dates. */
    json_object_del(u, "id");
    json_object_del(u, "created_at");
    char *text = json_dumps(u, JSON_COMPACT);
    json_decref(u);
    return text;
}

/* ---- work off the loop ----------------------------------------------------------------- */

/* Plugins' work in flight at once. libuv's pool has four threads, which the engine's own
 * work (a sign-in's password hash, the database checkpoint) needs too: a stalled SMTP relay
 * must not hold them all. The rest waits its turn, in order. */
enum { OFFLOAD_MAX = 2 };

typedef struct offload {
    uv_work_t w;
    uv_loop_t *loop;
    rapport_host *h;
    void (*work)(void *ud);
    void (*done)(rapport_host *h, const rapport_api *api, void *ud);
    void *ud;
    struct offload *next;
} offload_t;

static void off_work(uv_work_t *w)
{
    offload_t *o = w->data;
    o->work(o->ud);
}

static int off_start(offload_t *o);

static void off_done(uv_work_t *w, int status)
{
    offload_t *o = w->data;
    rp_plugins_t *P = o->h->P;
    P->off_running--;
    /* Cancelled work never ran: its done is not called (the plugin recovers it). */
    if (status == 0)
        o->done(o->h, &rp__plugin_api, o->ud);
    free(o);
    /* The next in line, on the same loop: also while the server stops, which waits for it. */
    while (P->off_head && P->off_running < OFFLOAD_MAX) {
        offload_t *n = P->off_head;
        P->off_head = n->next;
        if (!P->off_head)
            P->off_tail = NULL;
        if (off_start(n) != 0) {
            rp__plugin_fail(n->h, RAPPORT_EIO, "cannot hand the work to a worker thread");
            free(n);
        }
    }
}

static int off_start(offload_t *o)
{
    o->w.data = o;
    if (uv_queue_work(o->loop, &o->w, off_work, off_done) != 0)
        return -1;
    o->h->P->off_running++;
    return 0;
}

int rp__plugin_offload(rapport_host *h, void (*work)(void *ud),
                       void (*done)(rapport_host *h, const rapport_api *api, void *ud), void *ud)
{
    if (!work || !done)
        return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "offload needs work and done functions");
    /* Work off the loop is the network's (mail, SMS): never while nothing may reach out. */
    if (rp_store_offline(h->P->s))
        return (int)rp__plugin_fail(h, RAPPORT_EPERM,
                                    "offline: nothing may reach a server here (a replay, a "
                                    "schema diff or a dry run), so the work is not started");
    uv_loop_t *loop = rp_sched_loop(h->P->e);
    if (!loop) {
        work(ud);
        done(h, &rp__plugin_api, ud);
        return 0;
    }
    offload_t *o = calloc(1, sizeof *o);
    if (!o)
        return (int)rp__plugin_fail(h, RAPPORT_ENOMEM, "out of memory");
    *o = (offload_t){.loop = loop, .h = h, .work = work, .done = done, .ud = ud};
    rp_plugins_t *P = h->P;
    /* In turn: work handed over from a done callback waits behind what is queued already,
     * so one plugin that offloads again as its work ends cannot keep the others out. */
    if (P->off_running >= OFFLOAD_MAX || P->off_head) {
        if (P->off_tail)
            P->off_tail->next = o;
        else
            P->off_head = o;
        P->off_tail = o;
        return 0;
    }
    if (off_start(o) != 0) {
        free(o);
        return (int)rp__plugin_fail(h, RAPPORT_EIO, "cannot hand the work to a worker thread");
    }
    return 0;
}

const char *rp__plugin_header(const rapport_request *req, const char *name)
{
    if (!req || !name)
        return NULL;
    for (int i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->header_names[i], name) == 0)
            return req->header_values[i];
    return NULL;
}

int rp__plugin_as_plugin(rapport_host *h, int on)
{
    int was = h->as_plugin;
    if (on && !was) {
        h->outer = h->ctx;
        h->ctx = (rp_ctx_t){.actor = h->actor, .origin = h->ctx.origin};
        h->as_plugin = true;
    } else if (!on && was) {
        h->ctx = h->outer;
        h->as_plugin = false;
    }
    return was;
}
