/*
 * cli.h — what the files of the command line share: the options every command sees, the
 * engine as commands open it, and the helpers that print errors the one way.
 */
#ifndef RAPPORT_CLI_H
#define RAPPORT_CLI_H

#include <stdbool.h>

#include <jansson.h>

#include "rapport/engine.h"
#include "rapport/lua.h"
#include "rapport/plugin.h"
#include "rapport/sched.h"
#include "rapport/store.h"

#define EXIT_FAIL 1
#define EXIT_USAGE 2

typedef struct cli {
    const char *db;
    bool sync_full;
    const char *script_dirs[17]; /* the default folder, then each --scripts DIR; NULL-ended */
    int nscripts;
    const char *plugin_dirs[33]; /* built-in, $RAPPORT_PLUGIN_PATH, then each --plugins DIR */
    int nplugins;
    bool skip_broken;
    char *plugin_path;           /* owned copy of $RAPPORT_PLUGIN_PATH, split in place */
    rp_ctx_t ctx;
    char actor[96];
    const char *as_user; /* --as NAME: act with that user's permissions */
    const char *as_role; /* --role NAME: the role of a record acting (--as contact:42) */
    rp_access_t *access; /* theirs, while an engine is open (the engine's) */
    rp_engine_t *engine; /* the bare engine open_store() opened, or NULL */
} cli_t;

typedef struct command {
    const char *name;
    int (*run)(cli_t *c, int argc, char **argv);
    const char *usage;
    const char *help;
} command_t;


typedef struct env {
    rp_engine_t *engine; /* what the fields below are borrowed from */
    rp_store_t *s;
    rp_sched_t *e;
    rp_plugins_t *pl;
    rp_scripts_t *sc;
    const rp_lua_ext_t *ext;
    rp_lua_opts_t limits; /* the scripts' limits, from the settings */
} env_t;

/** Prints "rapport: <message>" to stderr; returns EXIT_FAIL. */
int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** As fail(), then the usage of @p cmd; returns EXIT_USAGE. */
int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Opens the database named by the options: a bare engine (the store and the --as user). */
int open_store(cli_t *c, bool create, rp_store_t **s);
/** Closes what open_store() opened (@p s is its store; anything else is ignored). */
void close_store(cli_t *c, rp_store_t *s);
/** Prints @p j on one line (or indented). */
void print_json(json_t *j, bool pretty);
/** Parses a JSON argument, naming it and the line and column when it is not JSON. */
json_t *json_arg(const char *cmd, const char *what, const char *text);
/** A positive record id. */
bool parse_id(const char *s, int64_t *id);
/** Takes "--flag value" (or "--flag" with @p present) out of argv; FLAG_MISSING if the value
 *  is missing, NULL if the flag is absent. */
const char *flag_value(int *argc, char **argv, const char *flag, bool *present);
#define FLAG_MISSING ((const char *)-1)
/** Refuses any option left in argv after the command took its own. */
int reject_unknown_flags(const char *cmd, int argc, char **argv);
/** The log of `serve`: one line per notable thing, "time level component message…". */
void log_line(void *ud, const char *level, const char *component, const char *msg);
/** The log of one-shot commands: warnings and errors only. */
void log_quiet(void *ud, const char *level, const char *component, const char *msg);
/** The engine options of this run: its database, folders, user and @p log. */
rp_engine_opts_t engine_opts(cli_t *c, rp_log_fn log);
/** The engine of this run: the store, the scheduler on the real clock, the plugins and the
 *  scripts; says what failed and returns EXIT_FAIL when it does not open. */
int env_open(cli_t *c, env_t *env, rp_log_fn log);
/** Closes the engine env_open() opened. */
void env_close(env_t *env);

/* records.c: init, schema, find and count, search; and the record commands (define,
 * add-field, create, get, update, delete, restore, purge, explain) through one runner. */
int cmd_init(cli_t *c, int argc, char **argv);
int cmd_schema(cli_t *c, int argc, char **argv);
int cmd_find(cli_t *c, int argc, char **argv);
int cmd_search(cli_t *c, int argc, char **argv);
int cmd_aggregate(cli_t *c, int argc, char **argv);
int cmd_record(cli_t *c, int argc, char **argv);

/* schema_diff.c: what loading the scripts and plugins would change, changing nothing. */
int cmd_schema_diff(cli_t *c, int argc, char **argv);

/* events.c */
int cmd_events(cli_t *c, int argc, char **argv);

/* jobs.c */
int cmd_serve(cli_t *c, int argc, char **argv);
int cmd_jobs(cli_t *c, int argc, char **argv);

/* lua.c */
int cmd_eval(cli_t *c, int argc, char **argv);
int cmd_run(cli_t *c, int argc, char **argv);
int cmd_repl(cli_t *c, int argc, char **argv);
int cmd_test(cli_t *c, int argc, char **argv);

/* replay.c */
int cmd_replay(cli_t *c, int argc, char **argv);

/* config.c */
int cmd_config(cli_t *c, int argc, char **argv);
int cmd_plugins(cli_t *c, int argc, char **argv);
int cmd_plugin(cli_t *c, int argc, char **argv);
/** Prints one plugin of rp_plugins_describe() as `rapport plugins` does. */
void print_plugin(json_t *p);

/* users.c */
int cmd_users(cli_t *c, int argc, char **argv);
int cmd_tokens(cli_t *c, int argc, char **argv);
/** `rapport sessions`: the HTTP API's browser sessions (sessions.c). */
int cmd_sessions(cli_t *c, int argc, char **argv);
int cmd_roles(cli_t *c, int argc, char **argv);

/* webhooks.c */
int cmd_webhooks(cli_t *c, int argc, char **argv);

/* backup.c */
int cmd_backup(cli_t *c, int argc, char **argv);
/** Whether `restore` was given one operand (a backup FILE) rather than ENTITY ID. */
bool restore_is_database(int argc, char **argv);
int cmd_restore_database(cli_t *c, int argc, char **argv);

/* io.c */
int cmd_import(cli_t *c, int argc, char **argv);
int cmd_export(cli_t *c, int argc, char **argv);
/* erase.c: a person's data — erase it, or export it as one document. */
int cmd_erase(cli_t *c, int argc, char **argv);
int cmd_export_subject(cli_t *c, int argc, char **argv);

#endif
