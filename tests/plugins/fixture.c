/*
 * fixture.c — the fixture plugins of the test suite, one shared object per FIXTURE value, each
 * built to be loaded or refused for one reason (see tests/plugins/CMakeLists.txt).
 */
#include <stdio.h>
#include <string.h>

#include "rapport_plugin.h"

#if FIXTURE_GOOD || FIXTURE_INITFAIL
/* Upper-cases the first letter of a good_item's name and gives it 1 point when it has none. */
static int capitalise(rapport_host *h, const rapport_api *api, rapport_change *c, void *ud,
                      char *err, size_t errlen)
{
    for (int i = 0; i < api->change_count(c); i++) {
        char *name = api->change_get(c, i, "name");
        if (name && strcmp(name, "\"forbidden\"") == 0) {
            api->free(name);
            snprintf(err, errlen, "good_item %d: the name \"forbidden\" is not allowed", i);
            return RAPPORT_EVETO;
        }
        if (name && name[0] == '"' && name[1] >= 'a' && name[1] <= 'z') {
            name[1] = (char)(name[1] - 'a' + 'A');
            api->change_set(c, i, "name", name);
        }
        api->free(name);
        char *pts = api->change_get(c, i, "points");
        if (!pts)
            api->change_set(c, i, "points", "1");
        api->free(pts);
    }
    return 0;
}

static int seen(rapport_host *h, const rapport_api *api, const rapport_event *ev, void *ud,
                char *err, size_t errlen)
{
    char payload[128];
    snprintf(payload, sizeof payload, "{\"item\": %lld}", (long long)ev->record_id);
    return api->emit(h, "good.seen", ev->entity, ev->record_id, payload);
}

static int tick(rapport_host *h, const rapport_api *api, const rapport_job *job, void *ud,
                char *err, size_t errlen)
{
    return api->emit(h, "good.ticked", NULL, 0, job->payload);
}

static int twice(rapport_host *h, const rapport_api *api, const char *args, char **result,
                 void *ud, char *err, size_t errlen)
{
    long long n = 0;
    if (sscanf(args, "[%lld]", &n) != 1) {
        snprintf(err, errlen, "double needs one integer, got %s", args);
        return RAPPORT_EINVAL;
    }
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", 2 * n);
    *result = api->strdup(buf);
    return 0;
}

static int hello(rapport_host *h, const rapport_api *api, int argc, char **argv, void *ud)
{
    printf("hello from %s with %d argument%s\n", "good", argc - 1, argc == 2 ? "" : "s");
    return 0;
}
#endif

#if FIXTURE_GOOD
static int good_init(rapport_host *h, const rapport_api *api, char *err, size_t errlen)
{
    api->log(h, RAPPORT_LOG_INFO, "init good");
    if (!api->has_entity(h, "good_item") &&
        api->define_entity(h, "good_item", "{\"fields\": {\"name\": {\"type\": \"text\", "
                                           "\"searchable\": true}, \"points\": {\"type\": "
                                           "\"integer\"}}}"))
        goto fail;
    if (api->hook(h, "good_item", RAPPORT_CREATE, 0, capitalise, NULL) ||
        api->on(h, "seen", "good_item.created", seen, NULL) ||
        api->job(h, "good.tick", tick, NULL) || api->lua_function(h, "double", twice, NULL) ||
        api->command(h, "hello", "say hello", hello, NULL))
        goto fail;
    return 0;
fail:
    snprintf(err, errlen, "%s", api->last_error(h));
    return RAPPORT_EINVAL;
}
static void good_fini(rapport_host *h, const rapport_api *api)
{
    api->log(h, RAPPORT_LOG_INFO, "fini good");
}
static const rapport_plugin desc = {RAPPORT_PLUGIN_ABI, "good", "1.2.0", "a plugin that works",
                                    NULL, good_init, good_fini};
#endif

#if FIXTURE_CHAIN_B
#define FIXTURE_NAME "chainb"
#elif FIXTURE_CHAIN_C
#define FIXTURE_NAME "chainc"
#endif

#if FIXTURE_CHAIN_B || FIXTURE_CHAIN_C
static int chain_init(rapport_host *h, const rapport_api *api, char *err, size_t errlen)
{
    api->log(h, RAPPORT_LOG_INFO, "init %s", FIXTURE_NAME);
    return 0;
}
static void chain_fini(rapport_host *h, const rapport_api *api)
{
    api->log(h, RAPPORT_LOG_INFO, "fini %s", FIXTURE_NAME);
}
#endif

#if FIXTURE_CHAIN_B
static const rapport_dep deps[] = {{"good", "1.0.0"}, {NULL, NULL}};
static const rapport_plugin desc = {RAPPORT_PLUGIN_ABI, "chainb", "1.0.0", "needs good", deps,
                                    chain_init, chain_fini};
#endif

#if FIXTURE_CHAIN_C
static const rapport_dep deps[] = {{"chainb", NULL}, {NULL, NULL}};
static const rapport_plugin desc = {RAPPORT_PLUGIN_ABI, "chainc", "0.1.0", "needs chainb", deps,
                                    chain_init, chain_fini};
#endif

#if FIXTURE_ABI || FIXTURE_MISSING || FIXTURE_TOOLD || FIXTURE_CYCLE1 || FIXTURE_CYCLE2
static int nop_init(rapport_host *h, const rapport_api *api, char *err, size_t errlen)
{
    return 0;
}
#endif

#if FIXTURE_ABI
static const rapport_plugin desc = {99, "future", "9.0.0", "built for another ABI", NULL,
                                    nop_init, NULL};
#endif
#if FIXTURE_MISSING
static const rapport_dep deps[] = {{"ghost", NULL}, {NULL, NULL}};
static const rapport_plugin desc = {RAPPORT_PLUGIN_ABI, "lonely", "1.0.0", "needs ghost", deps,
                                    nop_init, NULL};
#endif
#if FIXTURE_TOOLD
static const rapport_dep deps[] = {{"good", "2.0.0"}, {NULL, NULL}};
static const rapport_plugin desc = {RAPPORT_PLUGIN_ABI, "picky", "1.0.0", "needs good 2", deps,
                                    nop_init, NULL};
#endif
#if FIXTURE_CYCLE1
static const rapport_dep deps[] = {{"cycletwo", NULL}, {NULL, NULL}};
static const rapport_plugin desc = {RAPPORT_PLUGIN_ABI, "cycleone", "1.0.0", "cycle", deps,
                                    nop_init, NULL};
#endif
#if FIXTURE_CYCLE2
static const rapport_dep deps[] = {{"cycleone", NULL}, {NULL, NULL}};
static const rapport_plugin desc = {RAPPORT_PLUGIN_ABI, "cycletwo", "1.0.0", "cycle", deps,
                                    nop_init, NULL};
#endif
#if FIXTURE_DUP
static int dup_init(rapport_host *h, const rapport_api *api, char *err, size_t errlen)
{
    return 0;
}
static const rapport_plugin desc = {RAPPORT_PLUGIN_ABI, "good", "1.0.0", "a second good",
                                    NULL, dup_init, NULL};
#endif

#if FIXTURE_INITFAIL
/* Registers a little of everything, then fails: the host must take all of it back. */
static int fail_init(rapport_host *h, const rapport_api *api, char *err, size_t errlen)
{
    api->define_entity(h, "doomed_thing", "{\"fields\": {\"name\": {\"type\": \"text\"}}}");
    api->hook(h, "*", RAPPORT_CREATE, 0, capitalise, NULL);
    api->on(h, "seen", "*", seen, NULL);
    api->job(h, "doomed.tick", tick, NULL);
    api->lua_function(h, "double", twice, NULL);
    api->command(h, "hello", "say hello", hello, NULL);
    snprintf(err, errlen, "the licence key is missing (set plugin.doomed.key)");
    return RAPPORT_EINVAL;
}
static const rapport_plugin desc = {RAPPORT_PLUGIN_ABI, "doomed", "1.0.0", "fails to start",
                                    NULL, fail_init, NULL};
#endif

#if !FIXTURE_NOENTRY
RAPPORT_EXPORT const rapport_plugin *rapport_plugin_entry(void)
{
    return &desc;
}
#else
/* Exports a function, but not the entry function. */
RAPPORT_EXPORT int something_else(void)
{
    return 42;
}
#endif
