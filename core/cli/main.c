/*
 * main.c — the `rapport` command line: global options, subcommands, and the rule that errors
 * go to stderr as "rapport: <what went wrong>" with exit status 1 (failed) or 2 (bad usage).
 */
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rapport/access.h"
#include "rapport/engine.h"
#include "rapport/events.h"
#include "rapport/http.h"
#include "rapport/lua.h"
#include "rapport/plugin.h"
#include "rapport/sched.h"
#include "rapport/settings.h"
#include "rapport/store.h"
#include "rapport/webhook.h"

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
static void log_line(void *ud, const char *level, const char *component, const char *msg)
{
    (void)ud;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ %s %s %s\n", when, ts.tv_nsec / 1000000, level, component, msg);
    fflush(stderr);
}

/* One-shot commands say only what went wrong; `serve` says everything notable. */
void log_quiet(void *ud, const char *level, const char *component, const char *msg)
{
    if (strcmp(level, "info") != 0)
        log_line(ud, level, component, msg);
}

/* ---- the engine as every command that writes or runs Lua opens it ------------------- */

/* The engine options of this run: its database, folders and user. */
static rp_engine_opts_t engine_opts(cli_t *c, rp_log_fn log)
{
    return (rp_engine_opts_t){.db = c->db, .sync_full = c->sync_full,
                              .builtin_plugins = c->plugin_dirs[0],
                              .plugin_dirs = c->plugin_dirs + 1, .script_dirs = c->script_dirs,
                              .skip_broken = c->skip_broken, .user = c->as_user, .log = log};
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
    if (c->as_user)
        snprintf(c->actor, sizeof c->actor, "user:%s", c->as_user);
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

/* ---- commands --------------------------------------------------------------------------- */

static int cmd_init(cli_t *c, int argc, char **argv)
{
    if (argc != 1)
        return usage_error("init", "init takes no arguments");
    (void)argv;
    rp_store_t *s;
    if (open_store(c, true, &s))
        return EXIT_FAIL;
    int found = rp_store_schema_version_found(s);
    if (found == 0)
        printf("initialised %s (schema version %d)\n", c->db, RP_STORE_SCHEMA_VERSION);
    else if (found < RP_STORE_SCHEMA_VERSION)
        printf("upgraded %s from schema version %d to %d\n", c->db, found,
               RP_STORE_SCHEMA_VERSION);
    else
        printf("%s is up to date (schema version %d)\n", c->db, found);
    close_store(c, s);
    return 0;
}

static void print_schema_text(const char *name, json_t *d)
{
    printf("%s", name);
    if (json_object_get(d, "label"))
        printf(" (%s)", json_string_value(json_object_get(d, "label")));
    printf("  [owner: %s]\n", json_string_value(json_object_get(d, "owner")));
    printf("  %-20s %-10s %s\n", "id", "integer", "system");
    const char *fname;
    json_t *spec;
    json_object_foreach(json_object_get(d, "fields"), fname, spec) {
        char opts[512] = "";
        int n = 0;
        static const char *const flags[] = {"required", "unique", "indexed", "searchable"};
        for (int i = 0; i < 4; i++)
            if (json_is_true(json_object_get(spec, flags[i])))
                n += snprintf(opts + n, sizeof opts - (size_t)n, "%s%s", n ? ", " : "", flags[i]);
        json_t *x;
        if ((x = json_object_get(spec, "ref")))
            n += snprintf(opts + n, sizeof opts - (size_t)n, "%s-> %s", n ? ", " : "",
                          json_string_value(x));
        if ((x = json_object_get(spec, "values"))) {
            char *v = json_dumps(x, JSON_COMPACT);
            n += snprintf(opts + n, sizeof opts - (size_t)n, "%svalues %s", n ? ", " : "",
                          v ? v : "");
            free(v);
        }
        if ((x = json_object_get(spec, "default"))) {
            char *v = json_dumps(x, JSON_ENCODE_ANY | JSON_COMPACT);
            n += snprintf(opts + n, sizeof opts - (size_t)n, "%sdefault %s", n ? ", " : "",
                          v ? v : "");
            free(v);
        }
        if (json_object_get(spec, "scale"))
            snprintf(opts + n, sizeof opts - (size_t)n, "%sscale %lld", n ? ", " : "",
                     (long long)json_integer_value(json_object_get(spec, "scale")));
        printf("  %-20s %-10s %s\n", fname, json_string_value(json_object_get(spec, "type")),
               opts);
    }
    printf("  system fields: created_at, updated_at, deleted_at (datetime), version (integer),"
           " created_by, updated_by (text)\n");
}

static int cmd_schema(cli_t *c, int argc, char **argv)
{
    bool as_json = false;
    flag_value(&argc, argv, "--json", &as_json);
    if (reject_unknown_flags("schema", argc, argv))
        return EXIT_USAGE;
    if (argc > 2)
        return usage_error("schema", "schema takes at most one entity");
    rp_store_t *s;
    if (open_store(c, false, &s))
        return EXIT_FAIL;
    rp_error_t err = {0};
    json_t *sch = rp_store_schema(s, argc == 2 ? argv[1] : NULL, &err);
    int rc = 0;
    if (!sch) {
        rc = fail("%s", err.msg);
    } else if (as_json) {
        print_json(sch, true);
    } else if (argc == 2) {
        print_schema_text(argv[1], sch);
    } else if (json_object_size(sch) == 0) {
        printf("no entities defined yet (define one with `rapport define`)\n");
    } else {
        const char *name;
        json_t *d;
        json_object_foreach(sch, name, d) print_schema_text(name, d);
    }
    json_decref(sch);
    close_store(c, s);
    return rc;
}

static int cmd_define(cli_t *c, int argc, char **argv)
{
    if (reject_unknown_flags("define", argc, argv))
        return EXIT_USAGE;
    if (argc != 3)
        return usage_error("define", "define needs an entity name and a JSON specification");
    json_t *spec = json_arg("define", "the specification", argv[2]);
    if (!spec)
        return EXIT_FAIL;
    env_t env;
    int rc = env_open(c, &env, log_quiet);
    if (!rc) {
        rp_store_t *s = env.s;
        rp_error_t err = {0};
        if (rp_store_define(s, &c->ctx, argv[1], spec, "admin", &err))
            rc = fail("%s", err.msg);
        else
            printf("defined %s\n", argv[1]);
        env_close(&env);
    }
    json_decref(spec);
    return rc;
}

static int cmd_add_field(cli_t *c, int argc, char **argv)
{
    if (reject_unknown_flags("add-field", argc, argv))
        return EXIT_USAGE;
    if (argc != 4)
        return usage_error("add-field", "add-field needs an entity, a field name and a JSON "
                                        "field specification");
    json_t *spec = json_arg("add-field", "the field specification", argv[3]);
    if (!spec)
        return EXIT_FAIL;
    env_t env;
    int rc = env_open(c, &env, log_quiet);
    if (!rc) {
        rp_store_t *s = env.s;
        rp_error_t err = {0};
        if (rp_store_add_field(s, &c->ctx, argv[1], argv[2], spec, "admin", &err))
            rc = fail("%s", err.msg);
        else
            printf("added %s.%s\n", argv[1], argv[2]);
        env_close(&env);
    }
    json_decref(spec);
    return rc;
}

static int cmd_create(cli_t *c, int argc, char **argv)
{
    if (reject_unknown_flags("create", argc, argv))
        return EXIT_USAGE;
    if (argc != 3)
        return usage_error("create", "create needs an entity and a JSON object (or an array of "
                                     "them)");
    json_t *in = json_arg("create", "the record", argv[2]);
    if (!in)
        return EXIT_FAIL;
    env_t env;
    int rc = env_open(c, &env, log_quiet);
    if (!rc) {
        rp_store_t *s = env.s;
        rp_error_t err = {0};
        json_t *batch = json_is_array(in) ? json_incref(in) : json_pack("[O]", in);
        size_t n = json_array_size(batch);
        int64_t *ids = calloc(n ? n : 1, sizeof *ids);
        if (rp_store_create_many(s, &c->ctx, argv[1], batch, ids, NULL, &err)) {
            rc = fail("%s", err.msg);
        } else {
            for (size_t i = 0; i < n; i++) {
                json_t *r = NULL;
                if (rp_store_get_as(s, &c->ctx, argv[1], ids[i], &r, &err) == 0)
                    print_json(r, false);
                json_decref(r);
            }
        }
        free(ids);
        json_decref(batch);
        env_close(&env);
    }
    json_decref(in);
    return rc;
}

static int cmd_get(cli_t *c, int argc, char **argv)
{
    if (reject_unknown_flags("get", argc, argv))
        return EXIT_USAGE;
    int64_t id;
    if (argc != 3 || !parse_id(argv[2], &id))
        return usage_error("get", "get needs an entity and a record id (a positive integer)");
    rp_store_t *s;
    if (open_store(c, false, &s))
        return EXIT_FAIL;
    rp_error_t err = {0};
    json_t *r = NULL;
    int rc = 0;
    if (rp_store_get_as(s, &c->ctx, argv[1], id, &r, &err))
        rc = fail("%s", err.msg);
    else
        print_json(r, true);
    json_decref(r);
    close_store(c, s);
    return rc;
}

static int cmd_update(cli_t *c, int argc, char **argv)
{
    const char *ver = flag_value(&argc, argv, "--if-version", NULL);
    if (ver == FLAG_MISSING)
        return usage_error("update", "update: --if-version needs a version number");
    if (reject_unknown_flags("update", argc, argv))
        return EXIT_USAGE;
    int64_t id, version = 0;
    if (argc != 4 || !parse_id(argv[2], &id))
        return usage_error("update", "update needs an entity, a record id and a JSON object");
    if (ver && !parse_id(ver, &version))
        return usage_error("update", "update: --if-version needs a positive integer, not %s",
                           ver);
    json_t *patch = json_arg("update", "the changes", argv[3]);
    if (!patch)
        return EXIT_FAIL;
    env_t env;
    int rc = env_open(c, &env, log_quiet);
    if (!rc) {
        rp_store_t *s = env.s;
        rp_error_t err = {0};
        json_t *r = NULL;
        if (rp_store_update(s, &c->ctx, argv[1], id, patch, version, NULL, &err) ||
            rp_store_get_as(s, &c->ctx, argv[1], id, &r, &err))
            rc = fail("%s", err.msg);
        else
            print_json(r, false);
        json_decref(r);
        env_close(&env);
    }
    json_decref(patch);
    return rc;
}

static int lifecycle(cli_t *c, int argc, char **argv,
                     int (*op)(rp_store_t *, const rp_ctx_t *, const char *, int64_t,
                               rp_error_t *),
                     const char *done)
{
    if (reject_unknown_flags(argv[0], argc, argv))
        return EXIT_USAGE;
    int64_t id;
    if (argc != 3 || !parse_id(argv[2], &id))
        return usage_error(argv[0], "%s needs an entity and a record id", argv[0]);
    env_t env;
    if (env_open(c, &env, log_quiet))
        return EXIT_FAIL;
    rp_store_t *s = env.s;
    rp_error_t err = {0};
    int rc = 0;
    if (op(s, &c->ctx, argv[1], id, &err))
        rc = fail("%s", err.msg);
    else
        printf("%s %s %lld\n", done, argv[1], (long long)id);
    env_close(&env);
    return rc;
}

static int cmd_delete(cli_t *c, int argc, char **argv)
{
    return lifecycle(c, argc, argv, rp_store_delete, "deleted");
}
static int cmd_restore(cli_t *c, int argc, char **argv)
{
    if (restore_is_database(argc, argv))
        return cmd_restore_database(c, argc, argv);
    return lifecycle(c, argc, argv, rp_store_restore, "restored");
}
static int cmd_purge(cli_t *c, int argc, char **argv)
{
    return lifecycle(c, argc, argv, rp_store_purge, "purged");
}

static int cmd_find(cli_t *c, int argc, char **argv)
{
    const char *where = flag_value(&argc, argv, "--where", NULL);
    const char *order = flag_value(&argc, argv, "--order", NULL);
    const char *limit = flag_value(&argc, argv, "--limit", NULL);
    const char *offset = flag_value(&argc, argv, "--offset", NULL);
    const char *after = flag_value(&argc, argv, "--after", NULL);
    const char *fields = flag_value(&argc, argv, "--fields", NULL);
    bool deleted = false, count_only = !strcmp(argv[0], "count");
    flag_value(&argc, argv, "--deleted", &deleted);
    const char *vals[] = {where, order, limit, offset, after, fields};
    for (int i = 0; i < 6; i++)
        if (vals[i] == FLAG_MISSING)
            return usage_error(argv[0], "%s: an option is missing its value", argv[0]);
    if (reject_unknown_flags(argv[0], argc, argv))
        return EXIT_USAGE;
    if (argc != 2)
        return usage_error(argv[0], "%s needs one entity", argv[0]);
    int64_t lim = 0, off = 0;
    if (limit && !parse_id(limit, &lim))
        return usage_error(argv[0], "--limit needs a positive integer, not %s", limit);
    if (offset && strcmp(offset, "0") != 0 && !parse_id(offset, &off))
        return usage_error(argv[0], "--offset needs a non-negative integer, not %s", offset);
    json_t *w = where ? json_arg(argv[0], "--where", where) : NULL;
    if (where && !w)
        return EXIT_FAIL;
    char *fcopy = fields ? strdup(fields) : NULL;
    const char *flist[65] = {0};
    if (fcopy) {
        int n = 0;
        for (char *tok = strtok(fcopy, ","); tok && n < 64; tok = strtok(NULL, ","))
            flist[n++] = tok;
    }
    rp_store_t *s;
    int rc = open_store(c, false, &s);
    if (!rc) {
        rp_error_t err = {0};
        if (count_only) {
            int64_t n;
            if (rp_store_count_as(s, c->access, argv[1], w, deleted, &n, &err))
                rc = fail("%s", err.msg);
            else
                printf("%lld\n", (long long)n);
        } else {
            rp_query_t q = {.entity = argv[1], .where = w, .order = order, .limit = lim, .access = c->access,
                            .offset = off, .after = after, .fields = fcopy ? flist : NULL,
                            .with_deleted = deleted};
            json_t *rows = NULL;
            char *next = NULL;
            if (rp_store_find(s, &q, &rows, &next, &err)) {
                rc = fail("%s", err.msg);
            } else {
                size_t i;
                json_t *r;
                json_array_foreach(rows, i, r) print_json(r, false);
                if (next)
                    fprintf(stderr, "next page: --after %s\n", next);
            }
            json_decref(rows);
            free(next);
        }
        close_store(c, s);
    }
    free(fcopy);
    json_decref(w);
    return rc;
}

static int cmd_search(cli_t *c, int argc, char **argv)
{
    const char *entity = flag_value(&argc, argv, "--entity", NULL);
    const char *limit = flag_value(&argc, argv, "--limit", NULL);
    if (entity == FLAG_MISSING || limit == FLAG_MISSING)
        return usage_error("search", "search: an option is missing its value");
    if (reject_unknown_flags("search", argc, argv))
        return EXIT_USAGE;
    int64_t lim = 20;
    if (limit && !parse_id(limit, &lim))
        return usage_error("search", "--limit needs a positive integer, not %s", limit);
    if (argc < 2)
        return usage_error("search", "search needs some words to look for");
    char text[2048];
    size_t n = 0;
    text[0] = '\0';
    for (int i = 1; i < argc && n < sizeof text - 1; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "%s%s", i > 1 ? " " : "", argv[i]);
    rp_store_t *s;
    if (open_store(c, false, &s))
        return EXIT_FAIL;
    rp_error_t err = {0};
    json_t *hits = NULL;
    int rc = 0;
    if (rp_store_search_as(s, c->access, text, entity, (int)lim, &hits, &err)) {
        rc = fail("%s", err.msg);
    } else {
        size_t i;
        json_t *h;
        json_array_foreach(hits, i, h) print_json(h, false);
    }
    json_decref(hits);
    close_store(c, s);
    return rc;
}

static int cmd_explain(cli_t *c, int argc, char **argv)
{
    if (reject_unknown_flags("explain", argc, argv))
        return EXIT_USAGE;
    int64_t id;
    if (argc != 4 || !parse_id(argv[2], &id))
        return usage_error("explain", "explain needs an entity, a record id and a field");
    rp_store_t *s;
    if (open_store(c, false, &s))
        return EXIT_FAIL;
    rp_error_t err = {0};
    json_t *h = NULL;
    int rc = 0;
    if (rp_events_explain_as(s, &c->ctx, argv[1], id, argv[3], &h, &err)) {
        rc = fail("%s", err.msg);
    } else if (json_array_size(h) == 0) {
        printf("%s %lld: no recorded change of %s\n", argv[1], (long long)id, argv[3]);
    } else {
        size_t i;
        json_t *r;
        json_array_foreach(h, i, r) {
            char *o = json_dumps(json_object_get(r, "old"), JSON_ENCODE_ANY);
            char *nv = json_dumps(json_object_get(r, "new"), JSON_ENCODE_ANY);
            printf("%s  #%lld %-22s %s -> %s  by %s via %s\n",
                   json_string_value(json_object_get(r, "at")),
                   (long long)json_integer_value(json_object_get(r, "seq")),
                   json_string_value(json_object_get(r, "type")), o ? o : "?", nv ? nv : "?",
                   json_string_value(json_object_get(r, "actor")),
                   json_string_value(json_object_get(r, "origin")));
            free(o);
            free(nv);
            size_t j;
            json_t *cz;
            json_array_foreach(json_object_get(r, "causes"), j, cz)
                printf("      caused by #%lld %s of %s %lld (by %s)\n",
                       (long long)json_integer_value(json_object_get(cz, "seq")),
                       json_string_value(json_object_get(cz, "type")),
                       json_string_value(json_object_get(cz, "entity")),
                       (long long)json_integer_value(json_object_get(cz, "record_id")),
                       json_string_value(json_object_get(cz, "actor")));
        }
    }
    json_decref(h);
    close_store(c, s);
    return rc;
}

static volatile sig_atomic_t stop_following;
static void on_stop(int sig)
{
    (void)sig;
    stop_following = 1;
}

static int events_tail(cli_t *c, int argc, char **argv)
{
    const char *nval = flag_value(&argc, argv, "-n", NULL);
    bool follow = false;
    flag_value(&argc, argv, "--follow", &follow);
    flag_value(&argc, argv, "-f", &follow);
    if (nval == FLAG_MISSING)
        return usage_error("events", "events tail: -n needs a number");
    if (reject_unknown_flags("events", argc, argv))
        return EXIT_USAGE;
    if (argc != 1)
        return usage_error("events", "events tail takes no operands");
    int64_t n = 10;
    if (nval && strcmp(nval, "0") != 0 && !parse_id(nval, &n))
        return usage_error("events", "events tail: -n needs a non-negative integer, not %s",
                           nval);
    if (nval && strcmp(nval, "0") == 0)
        n = 0;
    rp_store_t *s;
    if (open_store(c, false, &s))
        return EXIT_FAIL;
    enum { PAGE = 256 };
    rp_event_t evs[PAGE];
    rp_error_t err = {0};
    int64_t last = 0;
    int rc = 0;
    if (n > 0) {
        /* The newest n, oldest first, read in pages so n may be large. */
        int64_t start = rp_events_last_seq(s) - n;
        last = start > 0 ? start : 0;
    } else {
        last = rp_events_last_seq(s);
    }
    int64_t remaining = n;
    while (remaining > 0) {
        int got = rp_events_list(s, last, false, evs, remaining < PAGE ? (int)remaining : PAGE,
                                 &err);
        if (got < 0) {
            rc = fail("%s", err.msg);
            break;
        }
        for (int i = 0; i < got; i++) {
            json_t *j = rp_event_json(&evs[i]);
            if (rp_access_event(s, c->access, j, NULL) == 1) /* --as: that user's view */
                print_json(j, false);
            json_decref(j);
            last = evs[i].seq;
            rp_event_clear(&evs[i]);
        }
        remaining -= got;
        if (got == 0)
            break;
    }
    fflush(stdout);
    if (follow && !rc) {
        last = last > rp_events_last_seq(s) ? last : (n == 0 ? rp_events_last_seq(s) : last);
        signal(SIGINT, on_stop);
        signal(SIGTERM, on_stop);
        signal(SIGPIPE, on_stop);
        while (!stop_following) {
            int got = rp_events_list(s, last, false, evs, PAGE, &err);
            if (got < 0) {
                rc = fail("%s", err.msg);
                break;
            }
            for (int i = 0; i < got; i++) {
                json_t *j = rp_event_json(&evs[i]);
                if (rp_access_event(s, c->access, j, NULL) == 1)
                    print_json(j, false);
                json_decref(j);
                last = evs[i].seq;
                rp_event_clear(&evs[i]);
            }
            if (fflush(stdout) != 0)
                break;
            if (got == 0) {
                struct timespec ts = {0, 200 * 1000 * 1000};
                nanosleep(&ts, NULL);
            }
        }
    }
    close_store(c, s);
    return rc;
}

static int events_dead(cli_t *c, int argc, char **argv)
{
    if (argc > 2)
        return usage_error("events", "events dead takes at most a subscriber name");
    rp_store_t *s;
    if (open_store(c, false, &s))
        return EXIT_FAIL;
    rp_error_t err = {0};
    json_t *d = NULL;
    int rc = 0;
    if (rp_events_dead(s, argc == 2 ? argv[1] : NULL, &d, &err)) {
        rc = fail("%s", err.msg);
    } else {
        size_t i;
        json_t *r;
        json_array_foreach(d, i, r) print_json(r, false);
    }
    json_decref(d);
    close_store(c, s);
    return rc;
}

static int events_replay(cli_t *c, int argc, char **argv)
{
    int64_t id;
    if (argc != 2 || !parse_id(argv[1], &id))
        return usage_error("events", "events replay needs a dead letter id");
    rp_store_t *s;
    if (open_store(c, false, &s))
        return EXIT_FAIL;
    rp_error_t err = {0};
    int rc = 0;
    if (rp_events_replay(s, id, &err))
        rc = fail("%s", err.msg);
    else
        printf("dead letter %lld queued for replay\n", (long long)id);
    close_store(c, s);
    return rc;
}

static int cmd_events(cli_t *c, int argc, char **argv)
{
    if (argc < 2)
        return usage_error("events", "events needs a subcommand: tail, dead or replay");
    if (strcmp(argv[1], "tail") == 0)
        return events_tail(c, argc - 1, argv + 1);
    if (strcmp(argv[1], "dead") == 0)
        return events_dead(c, argc - 1, argv + 1);
    if (strcmp(argv[1], "replay") == 0)
        return events_replay(c, argc - 1, argv + 1);
    return usage_error("events", "events: unknown subcommand \"%s\" (tail, dead, replay)",
                       argv[1]);
}


/* ---- the engine and its jobs ------------------------------------------------------------- */

static int cmd_serve(cli_t *c, int argc, char **argv)
{
    const char *poll = flag_value(&argc, argv, "--poll-ms", NULL);
    if (poll == FLAG_MISSING)
        return usage_error("serve", "serve: --poll-ms needs a number");
    const char *listen = flag_value(&argc, argv, "--listen", NULL);
    if (listen == FLAG_MISSING)
        return usage_error("serve", "serve: --listen needs HOST:PORT (such as 127.0.0.1:8080)");
    if (reject_unknown_flags("serve", argc, argv))
        return EXIT_USAGE;
    if (argc != 1)
        return usage_error("serve", "serve takes no operands");
    int64_t poll_ms = 100;
    if (poll && !parse_id(poll, &poll_ms))
        return usage_error("serve", "--poll-ms needs a positive integer, not %s", poll);
    env_t env;
    if (env_open(c, &env, log_line))
        return EXIT_FAIL;
    rp_engine_serve_opts_t so = {.listen = listen, .poll_ms = (int)poll_ms};
    rp_error_t err = {0};
    int rc = rp_engine_serve(env.engine, &so, &err);
    if (rc && !strcmp(err.field, "listen"))
        rc = usage_error("serve", "serve: --listen: %s", err.msg);
    else if (rc)
        rc = fail("%s", err.msg);
    env_close(&env);
    return rc;
}

static int jobs_add(cli_t *c, int argc, char **argv)
{
    const char *in = flag_value(&argc, argv, "--in", NULL);
    const char *key = flag_value(&argc, argv, "--key", NULL);
    const char *payload = flag_value(&argc, argv, "--payload", NULL);
    if (in == FLAG_MISSING || key == FLAG_MISSING || payload == FLAG_MISSING)
        return usage_error("jobs", "jobs add: an option is missing its value");
    if (reject_unknown_flags("jobs", argc, argv))
        return EXIT_USAGE;
    if (argc != 2)
        return usage_error("jobs", "jobs add needs a job name");
    rp_error_t err = {0};
    int64_t delay = 0;
    if (in && rp_parse_delay(in, &delay, &err))
        return usage_error("jobs", "jobs add: --in: %s", err.msg);
    json_t *p = payload ? json_arg("jobs add", "--payload", payload) : NULL;
    if (payload && !p)
        return EXIT_FAIL;
    rp_store_t *s;
    int rc = open_store(c, false, &s);
    if (!rc) {
        int64_t id;
        if (rp_jobs_schedule(s, &c->ctx, argv[1], p, rp_store_now(s) + delay, key, &id, &err))
            rc = fail("%s", err.msg);
        else
            printf("scheduled job %lld (%s)\n", (long long)id, argv[1]);
        close_store(c, s);
    }
    json_decref(p);
    return rc;
}

/* jobs every NAME CRON JOB [--tz ZONE] [--payload JSON]; jobs schedules; jobs unschedule NAME */
static int jobs_every(cli_t *c, int argc, char **argv)
{
    const char *tz = flag_value(&argc, argv, "--tz", NULL);
    const char *payload = flag_value(&argc, argv, "--payload", NULL);
    if (tz == FLAG_MISSING || payload == FLAG_MISSING)
        return usage_error("jobs", "jobs every: an option is missing its value");
    if (reject_unknown_flags("jobs", argc, argv))
        return EXIT_USAGE;
    if (argc != 4)
        return usage_error("jobs", "jobs every needs a schedule name, a cron expression and a job "
                                   "name");
    if (!tz)
        tz = getenv("RAPPORT_TZ");
    if (tz && !*tz)
        tz = NULL;
    json_t *p = payload ? json_arg("jobs every", "--payload", payload) : NULL;
    if (payload && !p)
        return EXIT_FAIL;
    rp_store_t *s;
    int rc = open_store(c, false, &s);
    json_t *zone = NULL;
    if (!rc && !tz && rp_setting_get(s, "timezone", &zone, NULL) == 0)
        tz = json_string_value(zone); /* the installation's configured zone */
    if (!rc) {
        rp_error_t err = {0};
        rp_sched_t *e = rp_sched_new(s, NULL);
        if (!e || rp_sched_every(e, argv[1], argv[2], tz, argv[3], p, &err)) {
            rc = fail("%s", e ? err.msg : "out of memory");
        } else {
            json_t *all = NULL;
            if (rp_schedules_list(s, &all, &err) == 0) {
                size_t i;
                json_t *j;
                json_array_foreach(all, i, j) {
                    if (strcmp(json_string_value(json_object_get(j, "name")), argv[1]) == 0)
                        printf("schedule %s (%s %s) runs %s next at %s\n", argv[1], argv[2],
                               json_string_value(json_object_get(j, "tz")), argv[3],
                               json_string_value(json_object_get(j, "next_at")));
                }
            }
            json_decref(all);
        }
        rp_sched_free(e);
        close_store(c, s);
    }
    json_decref(zone);
    json_decref(p);
    return rc;
}

static int cmd_jobs(cli_t *c, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "list";
    if (strcmp(sub, "add") == 0)
        return jobs_add(c, argc - 1, argv + 1);
    if (strcmp(sub, "every") == 0)
        return jobs_every(c, argc - 1, argv + 1);
    if (strcmp(sub, "schedules") == 0 || strcmp(sub, "unschedule") == 0) {
        bool list = sub[0] == 's';
        if (argc != (list ? 2 : 3))
            return usage_error("jobs", list ? "jobs schedules takes no arguments"
                                            : "jobs unschedule needs a schedule name");
        rp_store_t *s;
        if (open_store(c, false, &s))
            return EXIT_FAIL;
        rp_error_t err = {0};
        json_t *all = NULL;
        int rc = 0;
        if (list ? rp_schedules_list(s, &all, &err) : rp_schedules_remove(s, argv[2], &err))
            rc = fail("%s", err.msg);
        else if (list) {
            size_t i;
            json_t *j;
            json_array_foreach(all, i, j) print_json(j, false);
        } else
            printf("removed schedule %s\n", argv[2]);
        json_decref(all);
        close_store(c, s);
        return rc;
    }
    if (strcmp(sub, "list") && strcmp(sub, "dead") && strcmp(sub, "retry") &&
        strcmp(sub, "cancel"))
        return usage_error("jobs", "jobs: unknown subcommand \"%s\" (list, dead, retry, cancel, "
                                   "add, every, schedules, unschedule)", sub);
    bool takes_arg = !strcmp(sub, "retry") || !strcmp(sub, "cancel");
    if (argc != (takes_arg ? 3 : argc > 1 ? 2 : 1))
        return usage_error("jobs", "jobs %s %s", sub,
                           takes_arg ? "needs one argument" : "takes no arguments");
    int64_t id = 0;
    if (!strcmp(sub, "retry") && !parse_id(argv[2], &id))
        return usage_error("jobs", "jobs retry needs a job id");
    rp_store_t *s;
    if (open_store(c, false, &s))
        return EXIT_FAIL;
    rp_error_t err = {0};
    int rc = 0;
    if (!strcmp(sub, "retry")) {
        if (rp_jobs_retry(s, id, &err))
            rc = fail("%s", err.msg);
        else
            printf("job %lld is pending again\n", (long long)id);
    } else if (!strcmp(sub, "cancel")) {
        if (rp_jobs_cancel(s, argv[2], &err))
            rc = fail("%s", err.msg);
        else
            printf("cancelled the pending job with key %s\n", argv[2]);
    } else {
        json_t *jobs = NULL;
        if (rp_jobs_list(s, !strcmp(sub, "dead") ? "dead" : NULL, &jobs, &err)) {
            rc = fail("%s", err.msg);
        } else {
            size_t i;
            json_t *j;
            json_array_foreach(jobs, i, j) print_json(j, false);
        }
        json_decref(jobs);
    }
    close_store(c, s);
    return rc;
}


/* ---- Lua --------------------------------------------------------------------------------- */

/* The store, an engine on the real clock, and the scripts, as `serve` has them. */
static void print_results(json_t *results)
{
    size_t i;
    json_t *v;
    json_array_foreach(results, i, v) {
        char *r = rp_lua_render(v);
        if (r)
            puts(r);
        free(r);
    }
}

static int run_lua(cli_t *c, const char *cmd, bool sandbox, const char *code, const char *file,
                   int argc, char **argv)
{
    env_t env;
    if (env_open(c, &env, log_quiet))
        return EXIT_FAIL;
    rp_lua_opts_t o = env.limits;
    o.sandbox = sandbox;
    o.name = file ? file : "eval";
    o.actor = sandbox ? NULL : c->actor;
    o.access = c->access;
    rp_error_t err = {0};
    int rc = 0;
    rp_lua_t *l = rp_lua_new(env.s, env.e, &o, &err);
    json_t *results = NULL;
    if (!l)
        rc = fail("%s", err.msg);
    else if (file ? rp_lua_run_file(l, file, argc, argv, &results, &err)
                  : rp_lua_eval(l, code, "eval", &results, &err))
        rc = fail("%s", err.msg);
    else
        print_results(results);
    json_decref(results);
    /* Work the chunk caused now (events for handlers, jobs due at once) is left to `serve`. */
    rp_lua_free(l);
    env_close(&env);
    (void)cmd;
    return rc;
}

static int cmd_eval(cli_t *c, int argc, char **argv)
{
    bool sandbox = false;
    flag_value(&argc, argv, "--sandbox", &sandbox);
    if (argc != 2)
        return usage_error("eval", "eval needs one chunk of Lua");
    return run_lua(c, "eval", sandbox, argv[1], NULL, 0, NULL);
}

static int cmd_run(cli_t *c, int argc, char **argv)
{
    bool sandbox = false;
    /* Options stop at the file: what follows belongs to the script. */
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--sandbox") == 0)
            sandbox = true;
        else
            return usage_error("run", "run: unknown option %s", argv[i]);
    }
    if (i >= argc)
        return usage_error("run", "run needs a script file");
    return run_lua(c, "run", sandbox, NULL, argv[i], argc - i - 1, argv + i + 1);
}

/** Runs the REPL on stdin over @p s with @p l (both borrowed); returns the exit status. */
int rp_cli_repl(rp_store_t *s, rp_lua_t *l, const char *db);

static int cmd_repl(cli_t *c, int argc, char **argv)
{
    if (reject_unknown_flags("repl", argc, argv))
        return EXIT_USAGE;
    if (argc != 1)
        return usage_error("repl", "repl takes no operands");
    env_t env;
    if (env_open(c, &env, log_quiet))
        return EXIT_FAIL;
    rp_lua_opts_t o = {.name = "repl", .actor = c->actor, .ext = env.ext, .access = c->access};
    rp_error_t err = {0};
    rp_lua_t *l = rp_lua_new(env.s, env.e, &o, &err);
    int rc = l ? rp_cli_repl(env.s, l, c->db) : fail("%s", err.msg);
    rp_lua_free(l);
    env_close(&env);
    return rc;
}

/* Every test world is an engine of its own: a fresh in-memory database on the test's virtual
 * clock, with the plugins and the scripts, opened the way every command opens it. */
static int test_open(void *ud, const char *const *script_dirs, int64_t start_ms, rp_log_fn log,
                     void *log_ud, rp_test_world_t *w, rp_error_t *err)
{
    cli_t *c = ud;
    rp_engine_opts_t o = engine_opts(c, log);
    o.db = ":memory:";
    o.create = true;
    o.user = NULL;
    o.script_dirs = script_dirs;
    o.broken_scripts_ok = true;
    o.virtual_clock = true;
    o.start_ms = start_ms;
    o.log_ud = log_ud;
    rp_engine_t *en = NULL;
    int rc = rp_engine_open(&o, &en, err);
    if (rc)
        return rc;
    *w = (rp_test_world_t){.s = rp_engine_store(en), .e = rp_engine_sched(en),
                           .ext = rp_engine_lua_opts(en).ext, .state = en};
    return 0;
}

static void test_close(void *ud, rp_test_world_t *w)
{
    (void)ud;
    rp_engine_close(w->state);
}

static int cmd_test(cli_t *c, int argc, char **argv)
{
    if (reject_unknown_flags("test", argc, argv))
        return EXIT_USAGE;
    const char *paths[16];
    int n = 0;
    for (int i = 1; i < argc && n < 16; i++)
        paths[n++] = argv[i];
    if (n == 0)
        for (int i = 0; c->script_dirs[i] && n < 16; i++)
            paths[n++] = c->script_dirs[i];
    int passed = 0, failed = 0, rc = 0;
    rp_test_setup_t setup = {test_open, test_close, c};
    for (int i = 0; i < n; i++) {
        rp_error_t err = {0};
        if (rp_lua_test_path(paths[i], c->script_dirs, &setup, stdout, &passed, &failed, &err))
            rc = fail("%s", err.msg);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return rc ? rc : failed ? EXIT_FAIL : 0;
}

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

static int cmd_config(cli_t *c, int argc, char **argv)
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

static int cmd_plugins(cli_t *c, int argc, char **argv)
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
        json_array_foreach(d, i, p) {
            printf("%s %s (ABI %lld) — %s\n  file: %s\n",
                   json_string_value(json_object_get(p, "name")),
                   json_string_value(json_object_get(p, "version")),
                   (long long)json_integer_value(json_object_get(p, "abi")),
                   json_string_value(json_object_get(p, "description")),
                   json_string_value(json_object_get(p, "file")));
            static const char *const parts[] = {"requires", "entities", "hooks", "handlers",
                                                "jobs", "schedules", "lua", "commands",
                                                "routes"};
            for (int k = 0; k < 9; k++) {
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
    }
    json_decref(d);
    env_close(&env);
    return 0;
}

static const command_t commands[] = {
    {"init", cmd_init, "init", "Create the database (or bring its schema up to date)."},
    {"schema", cmd_schema, "schema [ENTITY] [--json]", "Show the entity registry."},
    {"define", cmd_define, "define ENTITY SPEC_JSON",
     "Define an entity: '{\"fields\": {\"name\": {\"type\": \"text\", \"required\": true}}}'."},
    {"add-field", cmd_add_field, "add-field ENTITY FIELD FIELD_SPEC_JSON",
     "Add a custom field: '{\"type\": \"integer\", \"indexed\": true}'."},
    {"create", cmd_create, "create ENTITY RECORD_JSON|ARRAY_JSON",
     "Create one record, or many in one transaction; prints them."},
    {"get", cmd_get, "get ENTITY ID", "Print one record."},
    {"update", cmd_update, "update ENTITY ID CHANGES_JSON [--if-version N]",
     "Change some fields; with --if-version, only if nobody changed the record since."},
    {"delete", cmd_delete, "delete ENTITY ID", "Soft-delete a record (restorable)."},
    {"restore", cmd_restore, "restore ENTITY ID | restore FILE [--force]",
     "Restore a soft-deleted record; or put backup FILE in place of the database (not in use)."},
    {"purge", cmd_purge, "purge ENTITY ID", "Remove a record for good (kept in its event)."},
    {"find", cmd_find,
     "find ENTITY [--where JSON] [--order F,-G] [--limit N] [--offset N] [--after CURSOR] "
     "[--fields A,B] [--deleted]",
     "Query records; prints JSON lines, and the next page's cursor on stderr."},
    {"count", cmd_find, "count ENTITY [--where JSON] [--deleted]", "Count matching records."},
    {"search", cmd_search, "search WORDS… [--entity E] [--limit N]",
     "Full-text search over the searchable fields of every entity."},
    {"explain", cmd_explain, "explain ENTITY ID FIELD",
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
    {"test", cmd_test, "test [FILE|DIR…]",
     "Run *_test.lua files: each test on a fresh in-memory database with a virtual clock."},
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
     "users add NAME --role ROLE [--team TEAM] [--password-stdin] | users list | users disable "
     "NAME", "Users who may use the engine; passwords kept as argon2id hashes."},
    {"tokens", cmd_tokens,
     "tokens create --user NAME [--role ROLE] [--expires 30d] | tokens list [--user NAME] | "
     "tokens revoke ID",
     "API tokens: shown once, kept hashed, expiring and revocable."},
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
               "                export, import, Lua and plugin commands (not to administration)\n\n"
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
        } else {
            return usage_error(NULL, "unknown option %s", argv[i]);
        }
    }
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
