/*
 * assets.c — the files a plugin serves (api->serve_assets): kept as a registration of the
 * plugin until `rapport serve` starts its HTTP server, then handed to it as a bundle.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "rapport/http.h"

#include "host.h"

/* The plugin's table is the server's, as it is: the two structs are one layout. */
_Static_assert(sizeof(rapport_asset) == sizeof(rp_http_asset_t), "asset layouts differ");
_Static_assert(offsetof(rapport_asset, data) == offsetof(rp_http_asset_t, data) &&
                   offsetof(rapport_asset, len) == offsetof(rp_http_asset_t, len),
               "asset layouts differ");

#define ASSETS_KIND 10

int rp__plugin_serve_assets(rapport_host *h, const char *prefix, const rapport_asset *files)
{
    size_t plen = prefix ? strlen(prefix) : 0;
    if (plen < 3 || plen > 60 || prefix[0] != '/' || prefix[plen - 1] != '/' ||
        strspn(prefix + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
            plen - 2)
        return (int)rp__plugin_fail(h, RAPPORT_EINVAL,
                                    "serve_assets: the prefix \"%s\" must be /NAME/ (letters, "
                                    "digits, _ and -)", prefix ? prefix : "(none)");
    if (!files)
        return (int)rp__plugin_fail(h, RAPPORT_EINVAL, "serve_assets: no files for %s", prefix);
    for (reg_t *r = h->P->regs; r; r = r->next)
        if (r->kind == ASSETS_KIND && strcmp(r->name, prefix) == 0)
            return (int)rp__plugin_fail(h, RAPPORT_ECONFLICT,
                                        "serve_assets: plugin %s serves %s already",
                                        r->h->desc->name, prefix);
    reg_t *r = rp__plugin_reg(h, ASSETS_KIND, (void *)files, prefix);
    if (!r)
        return (int)rp__plugin_fail(h, RAPPORT_ENOMEM, "out of memory");
    json_array_append_new(h->routes, json_sprintf("GET %s… (files)", prefix));
    return 0;
}

int rp_plugins_serve_assets(rp_plugins_t *p, rp_http_t *http, rp_log_fn log, void *log_ud)
{
    int served = 0;
    for (reg_t *r = p ? p->regs : NULL; r; r = r->next) {
        if (r->kind != ASSETS_KIND)
            continue;
        const rp_http_asset_t *files = r->ud;
        int n = 0;
        while (files[n].path)
            n++;
        rp_error_t err = {0};
        if (rp_http_add_assets(http, r->name, files, n, r->h->desc->name, &err)) {
            if (log)
                rp_log_to(log, log_ud, "warn", "plugin", "plugin %s: its files are not served: %s",
                          r->h->desc->name, err.msg);
            continue;
        }
        served++;
    }
    return served;
}
