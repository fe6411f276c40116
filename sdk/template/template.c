/*
 * template.c — the smallest useful Rapport plugin, to copy: a descriptor, an init that defines
 * one entity and adds one Lua function, and a fini. It sees the engine only through the table
 * of functions init is given (rapport_plugin.h), so it links nothing but libc.
 */
#include <stdio.h>

#include "rapport_plugin.h"

/* The entity's specification, as `rapport define` takes it. */
static const char note_spec[] = "{\"fields\": {"
                                "\"text\": {\"type\": \"text\", \"required\": true, "
                                "\"searchable\": true}, "
                                "\"pinned\": {\"type\": \"boolean\", \"default\": false}}}";

/* Whether JSON text @p a is @p b, ignoring white space (enough for arrays of literals). */
static int is_json(const char *a, const char *b)
{
    for (;; a++, b++) {
        while (*a == ' ' || *a == '\t' || *a == '\n' || *a == '\r')
            a++;
        if (*a != *b)
            return 0;
        if (!*a)
            return 1;
    }
}

/* crm.template.notes([pinned]): how many notes there are, or how many are (not) pinned. */
static int notes(rapport_host *h, const rapport_api *api, const char *args, char **result, void *ud,
                 char *err, size_t errlen)
{
    (void)ud;
    /* args is the JSON array of the Lua arguments. */
    const char *where = NULL;
    if (is_json(args, "[true]")) {
        where = "{\"pinned\": true}";
    } else if (is_json(args, "[false]")) {
        where = "{\"pinned\": false}";
    } else if (!is_json(args, "[]")) {
        /* The engine prefixes "crm.template.notes: " to the message. */
        snprintf(err, errlen, "takes one boolean (pinned) or nothing, got %s", args);
        return RAPPORT_EINVAL;
    }
    int64_t n = 0;
    int rc = api->count(h, "template_note", where, &n);
    if (rc) {
        snprintf(err, errlen, "%s", api->last_error(h));
        return rc;
    }
    char text[32];
    snprintf(text, sizeof text, "%lld", (long long)n);
    *result = api->strdup(text);
    return *result ? 0 : RAPPORT_ENOMEM;
}

static int template_init(rapport_host *h, const rapport_api *api, char *err, size_t errlen)
{
    /* The entity lives in the database: define it only the first time the plugin meets it. */
    if (!api->has_entity(h, "template_note") && api->define_entity(h, "template_note", note_spec))
        goto fail;
    if (api->lua_function(h, "notes", notes, NULL))
        goto fail;
    return 0;
fail:
    /* Whatever was registered before the failure is undone by the engine. */
    snprintf(err, errlen, "%s", api->last_error(h));
    return RAPPORT_EINVAL;
}

static void template_fini(rapport_host *h, const rapport_api *api)
{
    /* Registrations are removed by the engine; free here only what init allocated itself. */
    (void)h;
    (void)api;
}

static const rapport_plugin descriptor = {
    .abi = RAPPORT_PLUGIN_ABI,
    .name = "template",
    .version = "0.1.0",
    .description = "a skeleton plugin: one entity and one Lua function",
    .requires = NULL,
    .init = template_init,
    .fini = template_fini,
};

RAPPORT_EXPORT const rapport_plugin *rapport_plugin_entry(void)
{
    return &descriptor;
}
