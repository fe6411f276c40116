/*
 * serve.c — the engine on its loop: due jobs, cron schedules, event dispatch, script reloads,
 * the HTTP API and webhook deliveries, until a signal stops it.
 */
#include <stdio.h>
#include <string.h>

#include "rapport/http.h"
#include "rapport/settings.h"
#include "rapport/webhook.h"

#include "private.h"

static void reload_scripts(void *ud)
{
    rp_scripts_reload(ud);
}

/* The engine room's view of the plugins and scripts (rp_http_set_engine). */
static json_t *describe(void *ud, bool reload)
{
    rp_engine_t *en = ud;
    if (reload)
        rp_scripts_reload(en->sc);
    json_t *dirs = json_array();
    const char *const *d = rp_scripts_dirs(en->sc);
    for (int i = 0; d && d[i]; i++)
        json_array_append_new(dirs, json_string(d[i]));
    json_t *given = json_array();
    for (int i = 0; en->o.script_dirs && en->o.script_dirs[i]; i++)
        json_array_append_new(given, json_string(en->o.script_dirs[i]));
    return json_pack("{s:o,s:o,s:o,s:o}", "plugins", rp_plugins_describe(en->pl), "scripts",
                     rp_scripts_describe(en->sc), "script_dirs", dirs, "given_dirs", given);
}

static void say(const rp_engine_t *en, const char *level, const char *component, const char *msg)
{
    if (en->o.log)
        en->o.log(en->o.log_ud, level, component, msg);
}

/* The HTTP API, when there is an address: the given one, else the http.listen setting. */
static int start_http(rp_engine_t *en, const char *listen, rp_http_t **out, rp_error_t *err)
{
    *out = NULL;
    json_t *conf = NULL;
    if (!listen && rp_setting_get(en->s, "http.listen", &conf, NULL) == 0) {
        listen = json_string_value(conf);
        if (!listen) {
            json_decref(conf);
            return rp_error_field(err, "listen",
                                  rp_error_set(err, RP_EINVAL, RP_C_TYPE,
                                               "the setting http.listen needs HOST:PORT text "
                                               "(such as \"127.0.0.1:8080\")"));
        }
    }
    int rc = 0;
    if (listen) {
        rp_store_t *s = en->s;
        rp_log_fn log = en->o.log;
        void *ud = en->o.log_ud;
        rp_http_opts_t ho = {.listen = listen, .log = log, .log_ud = ud};
        ho.max_body = (size_t)rp_setting_int(s, "http.max_body_bytes", 1 << 20, log, ud);
        ho.req_timeout_ms = (int)rp_setting_int(s, "http.request_timeout_ms", 10000, log, ud);
        ho.auth_fails = (int)rp_setting_int(s, "http.auth_failures", 5, log, ud);
        ho.auth_window_s = (int)rp_setting_int(s, "http.auth_window_s", 60, log, ud);
        ho.budget_ms = (int)rp_setting_int(s, "http.request_budget_ms", 100, log, ud);
        ho.max_bulk = (int)rp_setting_int(s, "http.max_bulk_items", 1000, log, ud);
        ho.session_idle_s = (int)rp_setting_int(s, "http.session_idle_s", 1800, log, ud);
        ho.session_max_s = (int)rp_setting_int(s, "http.session_max_s", 43200, log, ud);
        ho.cookie_secure = rp_setting_int(s, "http.cookie_secure", 0, log, ud) != 0;
        ho.heartbeat_ms = (int)rp_setting_int(s, "http.live_heartbeat_ms", 15000, log, ud);
        if ((rc = rp_http_new(s, en->e, &ho, out, err)))
            rc = rp_error_field(err, "listen", rc);
        else {
            rp_http_set_routes(*out, rp_plugins_route, en->pl);
            rp_http_set_route_docs(*out, rp_plugins_openapi, en->pl);
            rp_http_set_engine(*out, describe, en);
            rp_http_set_lua_ext(*out, rp_plugins_lua(en->pl));
            rp_plugins_serve_assets(en->pl, *out, log, ud);
        }
    }
    json_decref(conf);
    return rc;
}

/* Webhooks are delivered on a thread of their own, so a slow receiver never holds up the loop
 * that serves requests and runs handlers. A deliverer that cannot start is said, not fatal. */
static rp_webhook_deliverer_t *start_webhooks(rp_engine_t *en, int poll_ms)
{
    rp_store_t *s = en->s;
    rp_log_fn log = en->o.log;
    void *ud = en->o.log_ud;
    rp_webhook_opts_t wo = {.poll_ms = poll_ms, .log = log, .log_ud = ud};
    wo.timeout_ms = (int)rp_setting_int(s, "webhooks.timeout_ms", 5000, log, ud);
    wo.retry.max_attempts = (int)rp_setting_int(s, "webhooks.max_attempts", 5, log, ud);
    wo.retry.base_ms = rp_setting_int(s, "webhooks.retry_base_ms", 1000, log, ud);
    int64_t keep_days = rp_setting_int(s, "webhooks.log_days", 30, log, ud);
    wo.log_keep_ms = (keep_days < 36500 ? keep_days : 36500) * 86400000;
    wo.allow_networks = rp_setting_override(RP_WEBHOOK_ALLOW_SETTING);
    rp_webhook_deliverer_t *hooks = NULL;
    rp_error_t err = {0};
    if (rp_webhook_deliverer_start(s, &wo, &hooks, &err))
        say(en, "warn", "webhook", err.msg);
    return hooks;
}

/* A server lives long and writes: a page cache of db.cache_mb (64 MB unless set, 1 to 4096)
 * keeps the index pages a create touches, where SQLite's default 2 MB read them back from the
 * file (bench_http: a POST create took 123-147 us of server CPU with it, 190-205 us without).
 * The one-shot commands keep the default. */
#define SERVE_CACHE_MB 64

static int serve_cache(rp_engine_t *en)
{
    int64_t mb = rp_setting_int(en->s, "db.cache_mb", SERVE_CACHE_MB, en->o.log, en->o.log_ud);
    rp_error_t err = {0};
    if (mb < 1 || mb > 4096 || rp_store_set_cache_mb(en->s, (int)mb, &err)) {
        char msg[300];
        if (mb < 1 || mb > 4096)
            snprintf(msg, sizeof msg, "db.cache_mb: %lld is not 1 to 4096 (MB); keeping %d",
                     (long long)mb, SERVE_CACHE_MB);
        else
            snprintf(msg, sizeof msg, "db.cache_mb: cannot set %lld MB (%.200s); keeping %d",
                     (long long)mb, err.msg, SERVE_CACHE_MB);
        say(en, "warn", "engine", msg);
        mb = rp_store_set_cache_mb(en->s, SERVE_CACHE_MB, NULL) ? 2 : SERVE_CACHE_MB;
    }
    return (int)mb;
}

int rp_engine_serve(rp_engine_t *en, const rp_engine_serve_opts_t *o, rp_error_t *err)
{
    if (!en->e)
        return rp_error_set(err, RP_ESTATE, 0,
                            "the engine of %s was opened bare: it has nothing to serve", en->o.db);
    int poll_ms = o && o->poll_ms > 0 ? o->poll_ms : 100;
    int cache_mb = serve_cache(en);
    char msg[512];
    snprintf(msg, sizeof msg, "serving db=%s version=%s plugins=%d scripts=%d cache_mb=%d",
             en->o.db, RP_VERSION, rp_plugins_count(en->pl), rp_scripts_count(en->sc), cache_mb);
    say(en, "info", "engine", msg);
    /* Edited scripts are noticed within a second; SIGHUP reloads at once. */
    rp_sched_on_interval(en->e, reload_scripts, en->sc, 1000);
    rp_http_t *http = NULL;
    int rc = start_http(en, o ? o->listen : NULL, &http, err);
    if (rc) {
        rp_sched_on_interval(en->e, NULL, NULL, 0);
        return rc;
    }
    rp_webhook_deliverer_t *hooks = start_webhooks(en, poll_ms);
    rc = rp_sched_serve(en->e, poll_ms, reload_scripts, en->sc, err);
    rp_webhook_deliverer_stop(hooks);
    rp_http_free(http);
    rp_sched_on_interval(en->e, NULL, NULL, 0);
    return rc;
}
