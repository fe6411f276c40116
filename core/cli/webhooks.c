/*
 * webhooks.c — `rapport webhooks add|list|remove|pause|resume|deliveries|dead|replay`. The
 * deliveries themselves happen while `rapport serve` runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rapport/settings.h"
#include "rapport/webhook.h"

static void print_rows(json_t *rows)
{
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) print_json(r, false);
}

/* The first line of standard input, without its line end. Owned, or NULL with a message. */
static char *read_secret(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n <= 0) {
        free(line);
        fail("webhooks add: --secret-stdin: nothing on standard input");
        return NULL;
    }
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    return line;
}

static int webhooks_add(cli_t *c, int argc, char **argv, const char *events, const char *user,
                        const char *secret, bool secret_stdin)
{
    if (argc != 3 || !user || !events)
        return usage_error("webhooks", "webhooks add needs a URL, --events TYPES (such as "
                                       "'contact.*,deal.won', or '*') and --user NAME");
    if (secret && secret_stdin)
        return usage_error("webhooks", "webhooks add: --secret or --secret-stdin, not both");
    rp_error_t err = {0};
    if (rp_webhook_check_url(argv[2], &err) || rp_webhook_check_events(events, &err))
        return usage_error("webhooks", "webhooks add: %s", err.msg);
    char *typed = secret_stdin ? read_secret() : NULL;
    if (secret_stdin && !typed)
        return EXIT_FAIL;
    rp_store_t *s;
    int rc = open_store(c, false, &s);
    if (rc) {
        free(typed);
        return rc;
    }
    rp_webhook_spec_t spec = {.url = argv[2], .events = events, .user = user,
                              .secret = typed ? typed : secret,
                              .allow_networks = rp_setting_override(RP_WEBHOOK_ALLOW_SETTING)};
    int64_t id = 0;
    char *made = NULL;
    if (rp_webhook_add(s, &c->ctx, &spec, &id, spec.secret ? NULL : &made, &err)) {
        rc = fail("%s", err.msg);
    } else {
        char shown[2100];
        rp_webhook_url_redact(argv[2], shown, sizeof shown);
        printf("webhook %lld added: %s (events %s, as %s)\n", (long long)id, shown, events,
               user);
        if (made) {
            /* The generated secret, this once: the receiver needs it to check signatures. */
            printf("secret: %s\n", made);
            fprintf(stderr, "rapport: the secret is shown this once; give it to the receiver "
                            "now (it verifies X-Rapport-Signature)\n");
        }
    }
    if (made) {
        memset(made, 0, strlen(made));
        free(made);
    }
    if (typed) {
        memset(typed, 0, strlen(typed));
        free(typed);
    }
    close_store(c, s);
    return rc;
}

int cmd_webhooks(cli_t *c, int argc, char **argv)
{
    const char *events = flag_value(&argc, argv, "--events", NULL);
    const char *user = flag_value(&argc, argv, "--user", NULL);
    const char *secret = flag_value(&argc, argv, "--secret", NULL);
    const char *nval = flag_value(&argc, argv, "-n", NULL);
    bool secret_stdin = false;
    flag_value(&argc, argv, "--secret-stdin", &secret_stdin);
    if (events == FLAG_MISSING || user == FLAG_MISSING || secret == FLAG_MISSING ||
        nval == FLAG_MISSING)
        return usage_error("webhooks", "webhooks: an option lacks its value");
    if (reject_unknown_flags("webhooks", argc, argv))
        return EXIT_USAGE;
    const char *verb = argc > 1 ? argv[1] : "list";
    bool adding = strcmp(verb, "add") == 0;
    if (!adding && (events || user || secret || secret_stdin))
        return usage_error("webhooks", "webhooks %s: --events, --user and --secret belong to "
                                       "webhooks add", verb);
    if (nval && strcmp(verb, "deliveries") != 0)
        return usage_error("webhooks", "webhooks %s: -n belongs to webhooks deliveries", verb);
    if (adding)
        return webhooks_add(c, argc, argv, events, user, secret, secret_stdin);

    /* The other verbs take at most one id. */
    bool is_list = strcmp(verb, "list") == 0;
    bool optional_id = strcmp(verb, "deliveries") == 0 || strcmp(verb, "dead") == 0;
    bool needs_id = strcmp(verb, "remove") == 0 || strcmp(verb, "pause") == 0 ||
                    strcmp(verb, "resume") == 0 || strcmp(verb, "replay") == 0;
    if (!is_list && !optional_id && !needs_id)
        return usage_error("webhooks", "webhooks: unknown subcommand \"%s\"", verb);
    int64_t id = 0, n = 20;
    if (is_list && argc > 2)
        return usage_error("webhooks", "webhooks list takes no operands");
    if (needs_id && argc != 3)
        return usage_error("webhooks", "webhooks %s needs one %s", verb,
                           strcmp(verb, "replay") == 0 ? "dead letter id (see webhooks dead)"
                                                       : "webhook id (see webhooks list)");
    if (optional_id && argc > 3)
        return usage_error("webhooks", "webhooks %s takes at most a webhook id", verb);
    if (argc == 3 && !parse_id(argv[2], &id))
        return usage_error("webhooks", "webhooks %s: \"%s\" is not an id", verb, argv[2]);
    if (nval && !parse_id(nval, &n))
        return usage_error("webhooks", "webhooks deliveries: -n needs a positive number, not %s",
                           nval);
    if (n > 100000)
        n = 100000;
    rp_store_t *s;
    if (open_store(c, false, &s))
        return EXIT_FAIL;
    rp_error_t err = {0};
    json_t *rows = NULL;
    int rc = 0;
    if (is_list) {
        rc = rp_webhook_list(s, &rows, &err);
    } else if (strcmp(verb, "deliveries") == 0) {
        rc = rp_webhook_deliveries(s, id, (int)n, &rows, &err);
    } else if (strcmp(verb, "dead") == 0) {
        rc = rp_webhook_dead(s, id, &rows, &err);
    } else if (strcmp(verb, "remove") == 0) {
        if (!(rc = rp_webhook_remove(s, &c->ctx, id, &err)))
            printf("webhook %lld removed (its delivery log stays)\n", (long long)id);
    } else if (strcmp(verb, "replay") == 0) {
        if (!(rc = rp_webhook_replay(s, id, &err)))
            printf("dead letter %lld queued: it is delivered again while rapport serve runs\n",
                   (long long)id);
    } else {
        bool resume = strcmp(verb, "resume") == 0;
        if (!(rc = rp_webhook_set_active(s, &c->ctx, id, resume, &err)))
            printf("webhook %lld %s\n", (long long)id,
                   resume ? "resumed: it delivers what it missed, then new events"
                          : "paused: events wait for it until it resumes");
    }
    if (rc)
        rc = fail("%s", err.msg);
    else
        print_rows(rows);
    json_decref(rows);
    close_store(c, s);
    return rc;
}
