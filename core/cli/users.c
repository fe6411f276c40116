/*
 * users.c — `rapport users add|list|disable` and `rapport tokens create|list|revoke`.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "rapport/access.h"
#include "rapport/auth.h"

/* The terminal as it was, put back if Ctrl-C ends the prompt (else echo would stay off). */
static struct termios saved_tty;

static void restore_tty(int sig)
{
    tcsetattr(0, TCSAFLUSH, &saved_tty);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* A password from standard input (--password-stdin: the first line), or asked at a terminal
 * without echo. Owned, or NULL with a message printed. */
static char *read_password(bool from_stdin)
{
    char *line = NULL;
    size_t cap = 0;
    struct termios old, quiet;
    bool tty = !from_stdin && isatty(0) && tcgetattr(0, &old) == 0;
    if (!from_stdin && !tty) {
        fail("users add: give the password on standard input with --password-stdin, or run at "
             "a terminal to be asked for it");
        return NULL;
    }
    void (*was_int)(int) = SIG_DFL, (*was_term)(int) = SIG_DFL;
    if (tty) {
        fputs("password: ", stderr);
        saved_tty = old;
        was_int = signal(SIGINT, restore_tty);
        was_term = signal(SIGTERM, restore_tty);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(0, TCSAFLUSH, &quiet);
    }
    ssize_t n = getline(&line, &cap, stdin);
    if (tty) {
        tcsetattr(0, TCSAFLUSH, &old);
        signal(SIGINT, was_int);
        signal(SIGTERM, was_term);
        fputc('\n', stderr);
    }
    if (n <= 0) {
        free(line);
        fail("users add: no password given");
        return NULL;
    }
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (strlen(line) != (size_t)n) {
        memset(line, 0, (size_t)n);
        free(line);
        fail("users add: the password holds a NUL byte");
        return NULL;
    }
    return line;
}

static void print_rows(json_t *rows)
{
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) print_json(r, false);
}

int cmd_users(cli_t *c, int argc, char **argv)
{
    bool from_stdin = false;
    flag_value(&argc, argv, "--password-stdin", &from_stdin);
    const char *role = flag_value(&argc, argv, "--role", NULL);
    const char *team = flag_value(&argc, argv, "--team", NULL);
    if (role == FLAG_MISSING || team == FLAG_MISSING)
        return usage_error("users", "users: an option lacks its value");
    if (reject_unknown_flags("users", argc, argv))
        return EXIT_USAGE;
    const char *verb = argc > 1 ? argv[1] : "list";
    rp_store_t *s = NULL;
    rp_error_t err = {0};
    int rc = 0;
    if (strcmp(verb, "add") == 0) {
        if (argc != 3 || !role)
            return usage_error("users", "users add needs a NAME and --role ROLE");
        char *pw = read_password(from_stdin);
        if (!pw)
            return EXIT_FAIL;
        if (open_store(c, false, &s)) {
            free(pw);
            return EXIT_FAIL;
        }
        rc = rp_users_add(s, &c->ctx, argv[2], role, team, pw, &err);
        memset(pw, 0, strlen(pw));
        free(pw);
        if (rc)
            rc = fail("%s", err.msg);
        else
            printf("user %s added (role %s)\n", argv[2], role);
    } else if (strcmp(verb, "list") == 0 && argc <= 2) {
        if (open_store(c, false, &s))
            return EXIT_FAIL;
        json_t *rows = NULL;
        if (rp_users_list(s, &rows, &err))
            rc = fail("%s", err.msg);
        print_rows(rows);
        json_decref(rows);
    } else if (strcmp(verb, "disable") == 0 && argc == 3) {
        if (open_store(c, false, &s))
            return EXIT_FAIL;
        if (rp_users_disable(s, &c->ctx, argv[2], &err))
            rc = fail("%s", err.msg);
        else
            printf("user %s disabled: its password and tokens no longer work\n", argv[2]);
    } else if (strcmp(verb, "email") == 0 && (argc == 3 || argc == 4)) {
        if (open_store(c, false, &s))
            return EXIT_FAIL;
        const char *email = argc == 4 ? argv[3] : "";
        if (rp_users_set_email(s, &c->ctx, argv[2], email, &err))
            rc = fail("%s", err.msg);
        else if (*email)
            printf("user %s: email %s\n", argv[2], email);
        else
            printf("user %s: no email address\n", argv[2]);
    } else {
        return usage_error("users", "users: add NAME --role ROLE | list | disable NAME | "
                                    "email NAME [ADDRESS]");
    }
    close_store(c, s);
    return rc;
}

int cmd_tokens(cli_t *c, int argc, char **argv)
{
    const char *user = flag_value(&argc, argv, "--user", NULL);
    const char *role = flag_value(&argc, argv, "--role", NULL);
    const char *expires = flag_value(&argc, argv, "--expires", NULL);
    if (user == FLAG_MISSING || role == FLAG_MISSING || expires == FLAG_MISSING)
        return usage_error("tokens", "tokens: an option lacks its value");
    if (reject_unknown_flags("tokens", argc, argv))
        return EXIT_USAGE;
    const char *verb = argc > 1 ? argv[1] : "list";
    rp_store_t *s = NULL;
    rp_error_t err = {0};
    int rc = 0;
    if (strcmp(verb, "create") == 0 && argc == 2) {
        if (!user)
            return usage_error("tokens", "tokens create needs --user NAME");
        int64_t ms = 0;
        if (expires && rp_parse_delay(expires, &ms, &err))
            return usage_error("tokens", "tokens create --expires: %s", err.msg);
        if (expires && ms <= 0)
            return usage_error("tokens", "tokens create --expires %s: a token that expires does "
                                         "so after some time; leave --expires out for one that "
                                         "never does", expires);
        if (open_store(c, false, &s))
            return EXIT_FAIL;
        char *token = NULL;
        int64_t id = 0;
        if (rp_tokens_create(s, &c->ctx, user, role, ms, &token, &id, &err)) {
            rc = fail("%s", err.msg);
        } else {
            /* The secret, once: only its hash is kept. */
            printf("%s\n", token);
            fprintf(stderr, "rapport: token %lld for %s%s%s: shown this once, keep it now\n",
                    (long long)id, user, expires ? ", expiring in " : "", expires ? expires : "");
            memset(token, 0, strlen(token));
            free(token);
        }
    } else if (strcmp(verb, "list") == 0 && argc == 2) {
        if (open_store(c, false, &s))
            return EXIT_FAIL;
        json_t *rows = NULL;
        if (rp_tokens_list(s, user, &rows, &err))
            rc = fail("%s", err.msg);
        print_rows(rows);
        json_decref(rows);
    } else if (strcmp(verb, "revoke") == 0 && argc == 3) {
        int64_t id;
        if (!parse_id(argv[2], &id))
            return usage_error("tokens", "tokens revoke needs a token id (see tokens list)");
        if (open_store(c, false, &s))
            return EXIT_FAIL;
        if (rp_tokens_revoke(s, &c->ctx, id, &err))
            rc = fail("%s", err.msg);
        else
            printf("token %lld revoked\n", (long long)id);
    } else {
        return usage_error("tokens", "tokens: create --user NAME [--role ROLE] [--expires 30d] | "
                                     "list [--user NAME] | revoke ID");
    }
    close_store(c, s);
    return rc;
}

/* `rapport roles list | show NAME | set NAME GRANTS | remove NAME`: roles live in the settings
 * (roles.<name>), checked before they are kept. */
int cmd_roles(cli_t *c, int argc, char **argv)
{
    if (reject_unknown_flags("roles", argc, argv))
        return EXIT_USAGE;
    const char *sub = argc > 1 ? argv[1] : "list";
    bool list = strcmp(sub, "list") == 0, show = strcmp(sub, "show") == 0;
    bool set = strcmp(sub, "set") == 0, rm = strcmp(sub, "remove") == 0;
    if (!list && !show && !set && !rm)
        return usage_error("roles", "roles: unknown subcommand \"%s\"", sub);
    if ((list && argc > 2) || ((show || rm) && argc != 3) || (set && argc != 4))
        return usage_error("roles", "roles %s: wrong number of operands", sub);
    json_t *grants = set ? json_arg("roles set", "GRANTS", argv[3]) : NULL;
    if (set && !grants)
        return EXIT_FAIL;
    rp_store_t *s;
    int rc = open_store(c, false, &s);
    if (rc) {
        json_decref(grants);
        return rc;
    }
    rp_error_t err = {0};
    char key[128];
    if (list) {
        json_t *all = NULL;
        if (rp_config_list(s, &all, &err))
            rc = fail("%s", err.msg);
        const char *k;
        json_t *v;
        json_object_foreach(all, k, v) {
            if (strncmp(k, "roles.", 6) != 0)
                continue;
            json_t *line = json_pack("{s:s,s:O}", "role", k + 6, "grants", v);
            print_json(line, false);
            json_decref(line);
        }
        json_decref(all);
    } else if (show) {
        snprintf(key, sizeof key, "roles.%s", argv[2]);
        json_t *v = NULL;
        if (rp_config_get(s, key, &v, &err))
            rc = fail("role \"%s\" is not defined%s", argv[2],
                      strcmp(argv[2], "admin") == 0 ? " (admin, without a setting, grants "
                                                      "everything)" : "");
        else
            print_json(v, true);
        json_decref(v);
    } else if (rp_access_role_set(s, &c->ctx, argv[2], set ? grants : NULL, &err)) {
        rc = fail("roles %s: %s", sub, err.msg);
    } else {
        fprintf(stderr, "rapport: role %s %s\n", argv[2], set ? "set" : "removed");
    }
    json_decref(grants);
    close_store(c, s);
    return rc;
}
