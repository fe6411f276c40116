/*
 * config.c — what the installation is set to and what it loaded: `rapport config` (the
 * settings kept in the database) and `rapport plugins`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapport/access.h"
#include "rapport/webhook.h"

#include "cli.h"

/* The allow list of webhooks is checked before it is stored: one that does not parse would
 * leave deliveries to public addresses only, and say so only in serve's log. */
static int check_allow_networks(json_t **value, const char *typed)
{
    /* "127.1" parses as a JSON number; the list is text (or an array of texts). */
    if (!json_is_string(*value) && !json_is_array(*value)) {
        json_decref(*value);
        if (!(*value = json_string(typed)))
            return fail("config set: the value is not valid UTF-8");
    }
    rp_webhook_allow_t *a = NULL;
    rp_error_t err = {0};
    if (rp_webhook_allow_json(*value, &a, &err))
        return fail("config set: %s", err.msg);
    rp_webhook_allow_free(a);
    return 0;
}

int cmd_config(cli_t *c, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "list";
    bool get = !strcmp(sub, "get"), set = !strcmp(sub, "set"), list = !strcmp(sub, "list"),
         unset = !strcmp(sub, "unset");
    if (!get && !set && !list && !unset)
        return usage_error("config", "config: unknown subcommand \"%s\" (get, set, unset, list)",
                           sub);
    if (argc != (set ? 4 : list ? (argc > 1 ? 2 : 1) : 3))
        return usage_error("config", "config %s: wrong number of arguments", sub);
    json_t *value = NULL;
    if (set) {
        /* A value is JSON when it parses as JSON, else plain text: `set timezone Europe/Paris`. */
        value = json_loads(argv[3], JSON_DECODE_ANY, NULL);
        if (!value)
            value = json_string(argv[3]);
        if (!value)
            return fail("config set: the value is not valid UTF-8");
    }
    rp_store_t *s;
    if (open_store(c, false, &s)) {
        json_decref(value);
        return EXIT_FAIL;
    }
    rp_error_t err = {0};
    int rc = 0;
    json_t *out = NULL;
    if (list) {
        if (rp_config_list(s, &out, &err))
            rc = fail("%s", err.msg);
        const char *k;
        json_t *v;
        json_object_foreach(out, k, v) {
            char *d = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            printf("%s = %s\n", k, d ? d : "?");
            free(d);
        }
    } else if (get) {
        if (rp_config_get(s, argv[2], &out, &err))
            rc = fail("%s", err.msg);
        else
            print_json(out, false);
    } else if (set && !strcmp(argv[2], RP_WEBHOOK_ALLOW_SETTING) &&
               (rc = check_allow_networks(&value, argv[3]))) {
        /* refused, said */
    } else if (strncmp(argv[2], "roles.", 6) == 0
                   ? rp_access_role_set(s, &c->ctx, argv[2] + 6, value, &err) /* checked as a role */
                   : rp_config_set(s, &c->ctx, argv[2], value, &err)) {
        rc = fail("%s", err.msg);
    } else {
        printf("%s %s\n", set ? "set" : "unset", argv[2]);
    }
    json_decref(out);
    json_decref(value);
    close_store(c, s);
    return rc;
}

/* One plugin of rp_plugins_describe(), as `rapport plugins` shows it. */
void print_plugin(json_t *p)
{
    printf("%s %s (ABI %lld) — %s\n  file: %s\n", json_string_value(json_object_get(p, "name")),
           json_string_value(json_object_get(p, "version")),
           (long long)json_integer_value(json_object_get(p, "abi")),
           json_string_value(json_object_get(p, "description")),
           json_string_value(json_object_get(p, "file")));
    static const char *const parts[] = {"requires", "entities", "hooks", "handlers",
                                        "jobs", "schedules", "lua", "commands",
                                        "routes", "formats"};
    for (int k = 0; k < 10; k++) {
        json_t *list = json_object_get(p, parts[k]);
        if (json_array_size(list) == 0)
            continue;
        printf("  %s:", parts[k]);
        size_t j;
        json_t *x;
        json_array_foreach(list, j, x) printf("%s %s", j ? "," : "", json_string_value(x));
        printf("\n");
    }
}

int cmd_plugins(cli_t *c, int argc, char **argv)
{
    bool as_json = false;
    flag_value(&argc, argv, "--json", &as_json);
    if (reject_unknown_flags("plugins", argc, argv))
        return EXIT_USAGE;
    if (argc != 1)
        return usage_error("plugins", "plugins takes no operands");
    env_t env;
    if (env_open(c, &env, log_quiet))
        return EXIT_FAIL;
    json_t *d = rp_plugins_describe(env.pl);
    if (as_json) {
        print_json(d, true);
    } else if (json_array_size(d) == 0) {
        printf("no plugins loaded (folders:");
        for (int i = 0; c->plugin_dirs[i]; i++)
            printf(" %s", c->plugin_dirs[i]);
        printf(")\n");
    } else {
        size_t i;
        json_t *p;
        json_array_foreach(d, i, p) print_plugin(p);
    }
    json_decref(d);
    env_close(&env);
    return 0;
}
