/*
 * sessions.c — `rapport sessions list [--all] | revoke ID | revoke-user NAME |
 * revoke-record ENTITY:ID`: the browser
 * sessions the HTTP API opened, seen and ended from the command line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rapport/session.h"

#define SESSIONS_USAGE                                                                    \
    "sessions [list [--all]] | sessions revoke ID | sessions revoke-user NAME | sessions "   \
    "revoke-record ENTITY:ID"

int cmd_sessions(cli_t *c, int argc, char **argv)
{
    bool all = false;
    flag_value(&argc, argv, "--all", &all);
    if (reject_unknown_flags("sessions", argc, argv))
        return EXIT_USAGE;
    const char *verb = argc > 1 ? argv[1] : "list";
    bool list = strcmp(verb, "list") == 0 && argc <= 2;
    bool one = strcmp(verb, "revoke") == 0 && argc == 3;
    bool user = strcmp(verb, "revoke-user") == 0 && argc == 3;
    bool record = strcmp(verb, "revoke-record") == 0 && argc == 3;
    int64_t id = 0;
    if (!list && !one && !user && !record)
        return usage_error("sessions", "sessions: %s", SESSIONS_USAGE);
    if (one && !parse_id(argv[2], &id))
        return usage_error("sessions", "sessions revoke needs a session id (see sessions list), "
                                       "not \"%s\"", argv[2]);
    /* A record is ENTITY:ID and a user name has no ':': the two kinds never mix. */
    const char *colon = record ? strchr(argv[2], ':') : NULL;
    if (record && (!colon || colon == argv[2] || !parse_id(colon + 1, &id)))
        return usage_error("sessions", "sessions revoke-record needs a record as ENTITY:ID "
                                       "(contact:42), not \"%s\"", argv[2]);
    if (all && !list)
        return usage_error("sessions", "sessions: --all goes with list");
    rp_store_t *s = NULL;
    if (open_store(c, false, &s))
        return EXIT_FAIL;
    rp_error_t err = {0};
    int rc = 0;
    if (list) {
        json_t *rows = NULL;
        if (rp_sessions_list(s, !all, &rows, &err))
            rc = fail("%s", err.msg);
        size_t i;
        json_t *r;
        json_array_foreach(rows, i, r) print_json(r, false);
        json_decref(rows);
    } else if (one) {
        if (rp_sessions_revoke(s, &c->ctx, id, &err))
            rc = fail("%s", err.msg);
        else
            printf("session %lld revoked\n", (long long)id);
    } else {
        int n = 0;
        const char *kind = record ? "record" : "user";
        if (rp_sessions_revoke_principal(s, &c->ctx, kind, argv[2], &n, &err))
            rc = fail("%s", err.msg);
        else
            printf("%d session%s of %s %s revoked\n", n, n == 1 ? "" : "s", kind, argv[2]);
    }
    close_store(c, s);
    return rc;
}
