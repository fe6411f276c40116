/*
 * records.c — the commands on the registry and on records: init, schema, define, add-field,
 * create, get, update, delete, restore, purge, find, count, search and explain.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapport/events.h"

#include "cli.h"

int cmd_init(cli_t *c, int argc, char **argv)
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
        static const char *const flags[] = {"required", "unique", "indexed", "searchable",
                                            "personal"};
        for (int i = 0; i < 5; i++)
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

int cmd_schema(cli_t *c, int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "diff") == 0)
        return cmd_schema_diff(c, argc - 1, argv + 1);
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

int cmd_find(cli_t *c, int argc, char **argv)
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

int cmd_search(cli_t *c, int argc, char **argv)
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

/* ---- the record commands: one runner, one row each ---------------------------------- */

/* What one record command was given: its entity, id, JSON operand and --if-version. */
typedef struct record_args {
    char **argv;
    const char *entity;
    int64_t id;      /* when the command takes one */
    json_t *json;    /* the JSON operand, when it takes one (owned by the runner) */
    int64_t version; /* --if-version, or 0 */
    const struct record_op *op;
} record_args_t;

/* One record command: the operands it takes, whether it writes (then the whole engine opens,
 * so the plugins' and scripts' hooks apply whatever the door) and the store call that does it
 * and prints what it did. */
typedef struct record_op {
    const char *name;
    int argc;              /* with the verb: "get ENTITY ID" is 3 */
    bool has_id;           /* argv[2] is a record id */
    int json_at;           /* which operand is JSON, or 0 */
    const char *json_what; /* its name, when it is not JSON */
    bool writes;
    bool if_version;       /* takes --if-version N */
    const char *needs;     /* the usage error when the operands do not fit */
    int (*run)(cli_t *c, rp_store_t *s, const record_args_t *a, rp_error_t *err);
    int (*life)(rp_store_t *, const rp_ctx_t *, const char *, int64_t, rp_error_t *);
    const char *done;      /* what a lifecycle command says it did */
} record_op_t;

static int run_define(cli_t *c, rp_store_t *s, const record_args_t *a, rp_error_t *err)
{
    int rc = rp_store_define(s, &c->ctx, a->entity, a->json, "admin", err);
    if (!rc)
        printf("defined %s\n", a->entity);
    return rc;
}

static int run_add_field(cli_t *c, rp_store_t *s, const record_args_t *a, rp_error_t *err)
{
    int rc = rp_store_add_field(s, &c->ctx, a->entity, a->argv[2], a->json, "admin", err);
    if (!rc)
        printf("added %s.%s\n", a->entity, a->argv[2]);
    return rc;
}

static int run_create(cli_t *c, rp_store_t *s, const record_args_t *a, rp_error_t *err)
{
    json_t *batch = json_is_array(a->json) ? json_incref(a->json) : json_pack("[O]", a->json);
    size_t n = json_array_size(batch);
    int64_t *ids = calloc(n ? n : 1, sizeof *ids);
    int rc = !batch || !ids ? rp_error_set(err, RP_ENOMEM, 0, "out of memory")
                            : rp_store_create_many(s, &c->ctx, a->entity, batch, ids, NULL, err);
    for (size_t i = 0; !rc && i < n; i++) {
        json_t *r = NULL;
        if (rp_store_get_as(s, &c->ctx, a->entity, ids[i], &r, err) == 0)
            print_json(r, false);
        json_decref(r);
    }
    free(ids);
    json_decref(batch);
    return rc;
}

static int run_get(cli_t *c, rp_store_t *s, const record_args_t *a, rp_error_t *err)
{
    json_t *r = NULL;
    int rc = rp_store_get_as(s, &c->ctx, a->entity, a->id, &r, err);
    if (!rc)
        print_json(r, true);
    json_decref(r);
    return rc;
}

static int run_update(cli_t *c, rp_store_t *s, const record_args_t *a, rp_error_t *err)
{
    json_t *r = NULL;
    int rc = rp_store_update(s, &c->ctx, a->entity, a->id, a->json, a->version, NULL, err);
    if (!rc)
        rc = rp_store_get_as(s, &c->ctx, a->entity, a->id, &r, err);
    if (!rc)
        print_json(r, false);
    json_decref(r);
    return rc;
}

/* delete, restore, purge */
static int run_lifecycle(cli_t *c, rp_store_t *s, const record_args_t *a, rp_error_t *err)
{
    int rc = a->op->life(s, &c->ctx, a->entity, a->id, err);
    if (!rc)
        printf("%s %s %lld\n", a->op->done, a->entity, (long long)a->id);
    return rc;
}

static int run_explain(cli_t *c, rp_store_t *s, const record_args_t *a, rp_error_t *err);

static const record_op_t record_ops[] = {
    {.name = "define", .argc = 3, .json_at = 2, .json_what = "the specification", .writes = true,
     .needs = "define needs an entity name and a JSON specification", .run = run_define},
    {.name = "add-field", .argc = 4, .json_at = 3, .json_what = "the field specification",
     .writes = true,
     .needs = "add-field needs an entity, a field name and a JSON field specification",
     .run = run_add_field},
    {.name = "create", .argc = 3, .json_at = 2, .json_what = "the record", .writes = true,
     .needs = "create needs an entity and a JSON object (or an array of them)",
     .run = run_create},
    {.name = "get", .argc = 3, .has_id = true,
     .needs = "get needs an entity and a record id (a positive integer)", .run = run_get},
    {.name = "update", .argc = 4, .has_id = true, .json_at = 3, .json_what = "the changes",
     .writes = true, .if_version = true,
     .needs = "update needs an entity, a record id and a JSON object", .run = run_update},
    {.name = "delete", .argc = 3, .has_id = true, .writes = true,
     .needs = "delete needs an entity and a record id", .run = run_lifecycle,
     .life = rp_store_delete, .done = "deleted"},
    {.name = "restore", .argc = 3, .has_id = true, .writes = true,
     .needs = "restore needs an entity and a record id", .run = run_lifecycle,
     .life = rp_store_restore, .done = "restored"},
    {.name = "purge", .argc = 3, .has_id = true, .writes = true,
     .needs = "purge needs an entity and a record id", .run = run_lifecycle,
     .life = rp_store_purge, .done = "purged"},
    {.name = "explain", .argc = 4, .has_id = true,
     .needs = "explain needs an entity, a record id and a field", .run = run_explain},
    {.name = NULL},
};

/* Opens what the command needs (the whole engine to write, the store to read), runs it, says
 * what failed, and closes. */
static int run_record(cli_t *c, record_args_t *a)
{
    env_t env;
    rp_store_t *s = NULL;
    int rc = a->op->writes ? env_open(c, &env, log_quiet) : open_store(c, false, &s);
    if (rc)
        return EXIT_FAIL;
    rp_error_t err = {0};
    if (a->op->run(c, a->op->writes ? env.s : s, a, &err))
        rc = fail("%s", err.msg);
    if (a->op->writes)
        env_close(&env);
    else
        close_store(c, s);
    return rc;
}

/* Every record command: checks its flags and operands, parses its JSON, then runs it. */
int cmd_record(cli_t *c, int argc, char **argv)
{
    const record_op_t *op = record_ops;
    while (op->name && strcmp(op->name, argv[0]) != 0)
        op++;
    if (!op->name)
        return usage_error(NULL, "unknown command \"%s\"", argv[0]);
    if (!strcmp(op->name, "restore") && restore_is_database(argc, argv))
        return cmd_restore_database(c, argc, argv);
    const char *ver = op->if_version ? flag_value(&argc, argv, "--if-version", NULL) : NULL;
    if (ver == FLAG_MISSING)
        return usage_error(op->name, "%s: --if-version needs a version number", op->name);
    if (reject_unknown_flags(op->name, argc, argv))
        return EXIT_USAGE;
    record_args_t a = {.argv = argv, .entity = argv[1], .op = op};
    if (argc != op->argc || (op->has_id && !parse_id(argv[2], &a.id)))
        return usage_error(op->name, "%s", op->needs);
    if (ver && !parse_id(ver, &a.version))
        return usage_error(op->name, "%s: --if-version needs a positive integer, not %s",
                           op->name, ver);
    if (op->json_at && !(a.json = json_arg(op->name, op->json_what, argv[op->json_at])))
        return EXIT_FAIL;
    int rc = run_record(c, &a);
    json_decref(a.json);
    return rc;
}

static int run_explain(cli_t *c, rp_store_t *s, const record_args_t *a, rp_error_t *err)
{
    char **argv = a->argv;
    int64_t id = a->id;
    json_t *h = NULL;
    int rc = rp_events_explain_as(s, &c->ctx, argv[1], id, argv[3], &h, err);
    if (rc) {
        /* said by the runner */
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
    return rc;
}
