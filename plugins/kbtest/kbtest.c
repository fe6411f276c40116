/*
 * kbtest.c — throw-away entry (branch h-kb only) that loads the portal's knowledge base alone,
 * as the plugin portal, until the real portal plugin calls portal_kb_init itself.
 */
#include <stdio.h>

#include "kb.h"

static int kbtest_init(rapport_host *h, const rapport_api *api, char *err, size_t errlen)
{
    if (portal_kb_init(h, api)) {
        snprintf(err, errlen, "%s", api->last_error(h));
        return RAPPORT_EINVAL;
    }
    return 0;
}

static const rapport_plugin kbtest = {
    .abi = RAPPORT_PLUGIN_ABI,
    .name = "portal",
    .version = "0.1.0",
    .description = "the portal's knowledge base alone (test wrapper)",
    .init = kbtest_init,
};

RAPPORT_EXPORT const rapport_plugin *rapport_plugin_entry(void)
{
    return &kbtest;
}
