/*
 * main.c — the `rapport` command line: global options, the table of subcommands, how every
 * command opens the engine (rapport/engine.h), and the rule that errors go to stderr as
 * "rapport: <what went wrong>" with exit status 1 (failed) or 2 (bad usage).
 */
#include <errno.h>
#include <pwd.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rapport/engine.h"
#include "rapport/log.h"
#include "rapport/plugin.h"
#include "rapport/store.h"

#include "cli.h"

int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("rapport: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return EXIT_FAIL;
}

static const command_t *find_command(const char *name);

int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("rapport: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    const command_t *c = cmd ? find_command(cmd) : NULL;
    if (c)
        fprintf(stderr, "usage: rapport %s\n", c->usage);
    else
        fprintf(stderr, "run `rapport --help` for the commands\n");
    return EXIT_USAGE;
}

void print_json(json_t *j, bool pretty)
{
    char *d = json_dumps(j, JSON_ENCODE_ANY | (pretty ? JSON_INDENT(2) : JSON_COMPACT));
    if (d) {
        puts(d);
        free(d);
    }
}

/* Parses @p text as JSON, naming the argument and the line and column when it is not. */
json_t *json_arg(const char *cmd, const char *what, const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
    if (!j)
        fail("%s: %s is not valid JSON: line %d, column %d: %s", cmd, what, je.line, je.column,
             je.text);
    return j;
}

bool parse_id(const char *s, int64_t *id)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v <= 0)
        return false;
    *id = v;
    return true;
}

/* Leaves only the operands in argv after getopt-style "--name value" flags of one command. */
const char *flag_value(int *argc, char **argv, const char *flag, bool *present)
{
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], flag) != 0)
            continue;
        const char *v = NULL;
        int take = 1;
        if (present) {
            *present = true;
        } else {
            if (i + 1 >= *argc)
                return (const char *)-1;
            v = argv[i + 1];
            take = 2;
        }
        memmove(&argv[i], &argv[i + take], sizeof *argv * (size_t)(*argc - i - take + 1));
        *argc -= take;
        return v ? v : flag;
    }
    return NULL;
}


int reject_unknown_flags(const char *cmd, int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '-' && argv[i][1] != '\0' && !(argv[i][1] >= '0' && argv[i][1] <= '9'))
            return usage_error(cmd, "%s: unknown option %s", cmd, argv[i]);
    return 0;
}

/* One line per notable thing: "time level component message key=value…". */
void log_line(void *ud, const char *level, const char *component, const char *msg)
{
    (void)ud;
    rp_log_write(level, component, msg);
}

/* One-shot commands say only what went wrong; `serve` says everything notable. */
void log_quiet(void *ud, const char *level, const char *component, const char *msg)
{
    if (strcmp(level, "info") != 0)
        log_line(ud, level, component, msg);
}

/* ---- the engine as every command that writes or runs Lua opens it ------------------- */

/* The engine options of this run: its database, folders and user. */
rp_engine_opts_t engine_opts(cli_t *c, rp_log_fn log)
{
    return (rp_engine_opts_t){.db = c->db, .sync_full = c->sync_full,
                              .builtin_plugins = c->plugin_dirs[0],
                              .plugin_dirs = c->plugin_dirs + 1, .script_dirs = c->script_dirs,
                              .skip_broken = c->skip_broken, .user = c->as_user,
                              .role = c->as_role, .log = log};
}

/* Says why an engine did not open, with the way round a broken plugin or script. */
static int engine_failed(cli_t *c, const rp_error_t *err, rp_log_fn log)
{
    if (!strcmp(err->field, "user"))
        return fail("--as %s: %s", c->as_user, err->msg);
    if (!strcmp(err->field, "scripts")) {
        if (log != log_line)
            return fail("a script failed to load; run with --skip-broken to go on without it, "
                        "or see the error above");
        return fail("%s; start with --skip-broken to run without them", err->msg);
    }
    fail("%s", err->msg);
    if (!strcmp(err->field, "plugins"))
        fprintf(stderr, "rapport: (start without the broken plugin with --skip-broken)\n");
    return EXIT_FAIL;
}

/* Takes the user the engine acts as (--as NAME) into the context of every call. */
static void act_as(cli_t *c, rp_engine_t *en)
{
    c->access = rp_engine_access(en);
    c->ctx.access = c->access;
    /* A record acts as "record:contact:42", as its browser session does; a user as
     * "user:NAME". */
    if (c->as_user)
        snprintf(c->actor, sizeof c->actor, "%s%s", strchr(c->as_user, ':') ? "record:" : "user:",
                 c->as_user);
}

int open_store(cli_t *c, bool create, rp_store_t **s)
{
    rp_engine_opts_t o = engine_opts(c, log_quiet);
    o.create = create;
    o.bare = true;
    rp_error_t err = {0};
    if (c->engine)
        return fail("the database is already open (a second open_store())");
    if (rp_engine_open(&o, &c->engine, &err))
        return engine_failed(c, &err, log_quiet);
    act_as(c, c->engine);
    *s = rp_engine_store(c->engine);
    return 0;
}

void close_store(cli_t *c, rp_store_t *s)
{
    if (c->engine && rp_engine_store(c->engine) == s) {
        rp_engine_close(c->engine);
        c->engine = NULL;
        c->access = NULL;
        c->ctx.access = NULL;
    }
}

/* The store, a scheduler on the real clock, the plugins and the scripts, as `serve` has them:
 * every command that writes or runs Lua opens this, so hooks apply whatever the door. */
int env_open(cli_t *c, env_t *env, rp_log_fn log)
{
    memset(env, 0, sizeof *env);
    rp_engine_opts_t o = engine_opts(c, log);
    rp_error_t err = {0};
    if (rp_engine_open(&o, &env->engine, &err))
        return engine_failed(c, &err, log);
    act_as(c, env->engine);
    env->s = rp_engine_store(env->engine);
    env->e = rp_engine_sched(env->engine);
    env->pl = rp_engine_plugins(env->engine);
    env->sc = rp_engine_scripts(env->engine);
    env->limits = rp_engine_lua_opts(env->engine);
    env->ext = env->limits.ext;
    return 0;
}

void env_close(env_t *env)
{
    rp_engine_close(env->engine);
    memset(env, 0, sizeof *env);
}

static const command_t commands[] = {
    {"init", cmd_init, "init", "Create the database (or bring its schema up to date)."},
    {"schema", cmd_schema, "schema [ENTITY] [--json] | schema diff [--json]",
     "Show the entity registry; diff: what loading the scripts and plugins would change "
     "(exit 0: nothing, 3: changes pending, 4: something refused), changing nothing."},
    {"define", cmd_record, "define ENTITY SPEC_JSON",
     "Define an entity: '{\"fields\": {\"name\": {\"type\": \"text\", \"required\": true}}}'."},
    {"add-field", cmd_record, "add-field ENTITY FIELD FIELD_SPEC_JSON",
     "Add a custom field: '{\"type\": \"integer\", \"indexed\": true}'."},
    {"create", cmd_record, "create ENTITY RECORD_JSON|ARRAY_JSON",
     "Create one record, or many in one transaction; prints them."},
    {"get", cmd_record, "get ENTITY ID", "Print one record."},
    {"update", cmd_record, "update ENTITY ID CHANGES_JSON [--if-version N]",
     "Change some fields; with --if-version, only if nobody changed the record since."},
    {"delete", cmd_record, "delete ENTITY ID", "Soft-delete a record (restorable)."},
    {"restore", cmd_record, "restore ENTITY ID | restore FILE [--force]",
     "Restore a soft-deleted record; or put backup FILE in place of the database (not in use)."},
    {"purge", cmd_record, "purge ENTITY ID", "Remove a record for good (kept in its event)."},
    {"erase", cmd_erase, "erase ENTITY ID [--reason TEXT] [--json]",
     "Erase a person's data: the record's personal fields emptied, in its events too, and in "
     "the search index; the records that refer to it lose theirs (one level)."},
    {"export-subject", cmd_export_subject, "export-subject ENTITY ID [--pretty]",
     "Everything held about one record as one JSON document: it, the records that refer to it "
     "(two levels) and all their events; read with --as's permissions."},
    {"find", cmd_find,
     "find ENTITY [--where JSON] [--order F,-G] [--limit N] [--offset N] [--after CURSOR] "
     "[--fields A,B] [--deleted]",
     "Query records; prints JSON lines, and the next page's cursor on stderr."},
    {"count", cmd_find, "count ENTITY [--where JSON] [--deleted]", "Count matching records."},
    {"aggregate", cmd_aggregate,
     "aggregate ENTITY [--group-by F,G:month] [--measures count,sum:F,avg:F,min:F,max:F,"
     "count_distinct:F] [--where JSON] [--zone TZ] [--order K,-K] [--limit N] [--offset N] "
     "[--deleted] [--json|--csv]",
     "Grouped aggregates (buckets: day, week, month, quarter, year), as a table, JSON or CSV."},
    {"search", cmd_search, "search WORDS… [--entity E] [--limit N]",
     "Full-text search over the searchable fields of every entity."},
    {"explain", cmd_record, "explain ENTITY ID FIELD",
     "Show how a field came to hold its value: every change, who made it and why."},
    {"events", cmd_events, "events tail [-n N] [--follow] | events dead [SUBSCRIBER] | events "
                           "replay ID",
     "Read the event log (JSON lines), list dead letters, replay one."},
    {"serve", cmd_serve, "serve [--listen HOST:PORT] [--poll-ms N]",
     "Run the engine: due jobs, cron schedules, event dispatch and, with --listen, the HTTP API."},
    {"jobs", cmd_jobs, "jobs [list] | jobs dead | jobs retry ID | jobs cancel KEY | jobs add NAME "
                       "[--in DELAY] [--key KEY] [--payload JSON] | jobs every SCHEDULE CRON JOB "
                       "[--tz ZONE] [--payload JSON] | jobs schedules | jobs unschedule SCHEDULE",
     "Durable jobs and cron schedules: list, retry dead ones, cancel by key, add, schedule."},
    {"eval", cmd_eval, "eval [--sandbox] 'CHUNK'",
     "Run Lua against the database (scripts loaded); print the results."},
    {"run", cmd_run, "run [--sandbox] FILE [ARGS…]", "Run a Lua script file against the database."},
    {"repl", cmd_repl, "repl",
     "Lua at a prompt on the live database: history, completion, tables, :dry on, :help."},
    {"test", cmd_test, "test [FILE|DIR…] [--coverage [--lcov FILE]]",
     "Run *_test.lua files: each test on a fresh in-memory database with a virtual clock; "
     "--coverage reports the script lines run (and writes coverage.lcov or FILE)."},
    {"replay", cmd_replay,
     "replay SCRIPT [--from DATE] [--to DATE] [--entity E] [--event SEQ] [--trace] "
     "[--against OLD_SCRIPT] [--json]",
     "What SCRIPT would have done over the recorded history, on a private copy: nothing is "
     "written or sent."},
    {"config", cmd_config, "config [list] | config get KEY | config set KEY VALUE | config unset KEY",
     "Settings kept in the database (timezone, lua.max_cpu_ms, plugin.<name>.<key>, …)."},
    {"import", cmd_import,
     "import ENTITY FILE [--format csv|jsonl|vcf] [--map MAP.json] [--dry-run] [--skip-bad "
     "[--rejects FILE]] [--upsert-by FIELD] [--strict] [--quiet]",
     "Load records from CSV, JSON lines or vCard, through the business rules: all or nothing, "
     "or the good rows with --skip-bad."},
    {"export", cmd_export,
     "export ENTITY [--format csv|jsonl|vcf|ics] [--where JSON] [--deleted] [--keep-formulas] [-o FILE]",
     "Write records as CSV, JSON lines, vCard (people) or iCalendar (meetings)."},
    {"users", cmd_users,
     "users add NAME --role ROLE [--team TEAM] [--password-stdin] | users list | "
     "users email NAME [ADDRESS] | users disable NAME", "Users who may use the engine; passwords kept as argon2id hashes."},
    {"tokens", cmd_tokens,
     "tokens create --user NAME [--role ROLE] [--expires 30d] | tokens list [--user NAME] | "
     "tokens revoke ID",
     "API tokens: shown once, kept hashed, expiring and revocable."},
    {"sessions", cmd_sessions,
     "sessions [list [--all]] | sessions revoke ID | sessions revoke-user NAME | sessions "
     "revoke-record ENTITY:ID",
     "Browser sessions of the HTTP API: who is signed in, and ending their sessions."},
    {"roles", cmd_roles,
     "roles [list] | roles show NAME | roles set NAME GRANTS | roles remove NAME",
     "Roles: per entity read/create/update/delete scopes, hidden and read-only fields."},
    {"webhooks", cmd_webhooks,
     "webhooks add URL --events TYPES --user NAME [--secret S | --secret-stdin] | webhooks list | "
     "webhooks remove|pause|resume ID | webhooks deliveries [ID] [-n N] | webhooks dead [ID] | "
     "webhooks replay DEAD_ID",
     "Outgoing webhooks: signed POSTs of events, retried, with a delivery log (sent while serve "
     "runs)."},
    {"backup", cmd_backup, "backup FILE [--force]",
     "Copy the database, live, to FILE (SQLite's online backup API), checked whole."},
    {"plugins", cmd_plugins, "plugins [--json]",
     "List the loaded plugins: name, version, ABI, file, and what each registered."},
    {"plugin", cmd_plugin, "plugin new NAME [DIR] | plugin check FILE.so [--json]",
     "Start a plugin from the SDK's skeleton; load a built one in a scratch engine and say what "
     "it registers, or why it is refused."},
    {NULL, NULL, NULL, NULL},
};

static const command_t *find_command(const char *name)
{
    for (int i = 0; commands[i].name; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* `rapport <plugin> <command> …`, or an unknown command. */
static int plugin_command(cli_t *c, int argc, char **argv)
{
    const char *user = getenv("USER");
    snprintf(c->actor, sizeof c->actor, "local:%s", user && *user ? user : "unknown");
    c->ctx = (rp_ctx_t){.actor = c->actor, .origin = "cli"};
    struct stat st;
    if (stat(c->db, &st) != 0)
        return usage_error(NULL, "unknown command \"%s\"", argv[0]);
    env_t env;
    if (env_open(c, &env, log_quiet))
        return EXIT_FAIL;
    rp_error_t err = {0};
    int rc = rp_plugins_command_as(env.pl, &c->ctx, argc, argv, &err);
    env_close(&env);
    if (rc < 0) {
        if (err.code == RP_ENOTFOUND && strstr(err.msg, "no plugin named"))
            return usage_error(NULL, "unknown command \"%s\"", argv[0]);
        return usage_error(NULL, "%s", err.msg);
    }
    return rc;
}

/* Whether this binary runs from its install prefix (then it uses the installed folders). */
static bool running_installed(void)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return false;
    exe[n] = '\0';
    const char *bin = RP_INSTALL_PREFIX "/bin/";
    return strncmp(exe, bin, strlen(bin)) == 0;
}

static void print_help(FILE *f)
{
    fprintf(f, "rapport %s — a CRM engine: customer data, events and time, scripted in Lua.\n\n"
               "usage: rapport [--db PATH] [--scripts DIR]… [--plugins DIR]… [--skip-broken]\n"
               "               [--sync-full] [--as USER] COMMAND [ARGS…]\n"
               "       rapport COMMAND --help | rapport --version\n\n"
               "options:\n"
               "  --db PATH     the database file (default: $RAPPORT_DB, else ./rapport.db)\n"
               "  --scripts DIR load the Lua scripts of DIR too (repeatable; the default rules\n"
               "                come from $RAPPORT_SCRIPTS, else " RP_DEFAULT_SCRIPTS ")\n"
               "  --plugins DIR load the plugins of DIR too (repeatable; also $RAPPORT_PLUGIN_PATH,\n"
               "                a colon-separated list, and the built-in plugin folder)\n"
               "  --skip-broken start without a plugin that is refused, and say so\n"
               "  --sync-full   fsync every commit (synchronous=FULL) instead of the WAL default\n"
               "  --as USER     read and write records with USER's role: its scopes, hidden and\n"
               "                read-only fields apply to get, find, count, search, explain, events,\n"
               "                export, import, Lua and plugin commands (not to administration)\n"
               "  --as ENTITY:ID act as that record (e.g. contact:42) with --role ROLE (default\n"
               "                portal), a role whose \"principal\" is ENTITY: the customer's view\n\n"
               "commands:\n",
            RP_VERSION);
    for (int i = 0; commands[i].name; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nPlugins add commands of their own (`rapport plugins` lists them); the built-in\n"
               "operational plugin adds demo-data, convert-lead, duplicates and merge.\n");
    fprintf(f, "\nexit status: 0 done, 1 the operation failed, 2 bad usage.\n");
}

int main(int argc, char **argv)
{
    cli_t c = {0};
    /* An installed binary uses the installed folders; one in the build tree uses the tree's. */
    bool installed = running_installed();
    /* The default rules first, then each --scripts folder in the order given. */
    const char *defaults = getenv("RAPPORT_SCRIPTS");
    c.script_dirs[c.nscripts++] =
        defaults && *defaults ? defaults : installed ? RP_INSTALLED_SCRIPTS : RP_DEFAULT_SCRIPTS;
    /* Plugins: the built-in folder, then $RAPPORT_PLUGIN_PATH, then each --plugins folder. */
    c.plugin_dirs[c.nplugins++] = installed ? RP_INSTALLED_PLUGINS : RP_PLUGIN_DIR;
    const char *ppath = getenv("RAPPORT_PLUGIN_PATH");
    if (ppath && *ppath && (c.plugin_path = strdup(ppath))) {
        for (char *tok = strtok(c.plugin_path, ":"); tok && c.nplugins < 16;
             tok = strtok(NULL, ":"))
            c.plugin_dirs[c.nplugins++] = tok;
    }
    c.db = getenv("RAPPORT_DB");
    if (!c.db || !*c.db)
        c.db = "./rapport.db";
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("rapport %s (schema %d)\n", RP_VERSION, RP_STORE_SCHEMA_VERSION);
            return 0;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_help(stdout);
            return 0;
        } else if (strcmp(argv[i], "--db") == 0) {
            if (++i >= argc)
                return usage_error(NULL, "--db needs a path");
            c.db = argv[i];
        } else if (strncmp(argv[i], "--db=", 5) == 0) {
            c.db = argv[i] + 5;
        } else if (strcmp(argv[i], "--plugins") == 0) {
            if (++i >= argc)
                return usage_error(NULL, "--plugins needs a folder");
            if (c.nplugins == 32)
                return usage_error(NULL, "too many plugin folders");
            c.plugin_dirs[c.nplugins++] = argv[i];
        } else if (strcmp(argv[i], "--skip-broken") == 0) {
            c.skip_broken = true;
        } else if (strcmp(argv[i], "--scripts") == 0) {
            if (++i >= argc)
                return usage_error(NULL, "--scripts needs a folder");
            if (c.nscripts == 16)
                return usage_error(NULL, "at most 15 --scripts folders");
            c.script_dirs[c.nscripts++] = argv[i];
        } else if (strcmp(argv[i], "--sync-full") == 0) {
            c.sync_full = true;
        } else if (strcmp(argv[i], "--as") == 0) {
            if (++i >= argc)
                return usage_error(NULL, "--as needs a user name");
            c.as_user = argv[i];
        } else if (strcmp(argv[i], "--role") == 0) {
            if (++i >= argc)
                return usage_error(NULL, "--role needs a role name");
            c.as_role = argv[i];
        } else {
            return usage_error(NULL, "unknown option %s", argv[i]);
        }
    }
    if (c.as_role && (!c.as_user || !strchr(c.as_user, ':')))
        return usage_error(NULL, "--role goes with --as ENTITY:ID (a user acts with their own "
                           "role)");
    if (i >= argc) {
        print_help(stderr);
        return EXIT_USAGE;
    }
    const command_t *cmd = find_command(argv[i]);
    if (!cmd) {
        int rc = plugin_command(&c, argc - i, argv + i);
        free(c.plugin_path);
        return rc;
    }
    for (int j = i + 1; j < argc; j++) {
        if (strcmp(argv[j], "--help") == 0 || strcmp(argv[j], "-h") == 0) {
            printf("usage: rapport %s\n\n%s\n", cmd->usage, cmd->help);
            return 0;
        }
    }
    const char *user = getenv("USER");
    if (!user || !*user) {
        struct passwd *pw = getpwuid(getuid());
        user = pw ? pw->pw_name : NULL;
    }
    snprintf(c.actor, sizeof c.actor, "local:%s", user && *user ? user : "unknown");
    c.ctx = (rp_ctx_t){.actor = c.actor, .origin = "cli"};
    int rc = cmd->run(&c, argc - i, argv + i);
    free(c.plugin_path);
    return rc;
}
