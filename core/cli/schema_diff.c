/*
 * schema_diff.c — `rapport schema diff`: opens the engine as every command does (plugins,
 * scripts, their declarations and migrations) inside one transaction that is rolled back,
 * and says what that would have changed and what was refused; the file stays as it was.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapport/events.h"

#include "cli.h"

/* Exit statuses besides 0 (nothing would change), 1 (failed) and 2 (usage). */
#define EXIT_PENDING 3
#define EXIT_REFUSED 4

typedef struct {
    json_t *refused;  /* what failed to load: a script or plugin, with its message */
    json_t *warnings;
} said_t;

/* The log of the dry open: failures are refusals, warnings are kept, the rest is quiet. */
static void collect(void *ud, const char *level, const char *component, const char *msg)
{
    said_t *s = ud;
    (void)component;
    if (strcmp(level, "error") == 0)
        json_array_append_new(s->refused, json_string(msg));
    else if (strcmp(level, "warn") == 0)
        json_array_append_new(s->warnings, json_string(msg));
}

/* One line for a schema event; NULL for the other kinds. */
static char *describe(const char *type, const char *entity, json_t *ch)
{
    char line[1024];
    const char *field = json_string_value(json_object_get(ch, "field"));
    char *to = json_dumps(json_object_get(ch, "to"), JSON_COMPACT | JSON_ENCODE_ANY);
    char *from = json_dumps(json_object_get(ch, "from"), JSON_COMPACT | JSON_ENCODE_ANY);
    char *spec = json_dumps(json_object_get(ch, "spec"), JSON_COMPACT | JSON_ENCODE_ANY);
    bool known = true;
    if (!strcmp(type, "schema.entity_defined")) {
        int n = snprintf(line, sizeof line, "create entity %s (fields:", entity);
        const char *name;
        json_t *x;
        json_object_foreach(json_object_get(ch, "fields"), name, x) {
            if (n > 0 && (size_t)n < sizeof line)
                n += snprintf(line + n, sizeof line - (size_t)n, " %s", name);
        }
        if (n > 0 && (size_t)n < sizeof line)
            snprintf(line + n, sizeof line - (size_t)n, ")");
    }
    else if (!strcmp(type, "schema.field_added"))
        snprintf(line, sizeof line, "add field %s.%s %s", entity, field, spec ? spec : "");
    else if (!strcmp(type, "schema.field_changed"))
        snprintf(line, sizeof line, "change field %s.%s: %s -> %s", entity, field,
                 from ? from : "", to ? to : "");
    else if (!strcmp(type, "schema.field_type_changed"))
        snprintf(line, sizeof line, "change the type of %s.%s: %s -> %s (%lld records)", entity,
                 field, from ? from : "", to ? to : "",
                 (long long)json_integer_value(json_object_get(ch, "records")));
    else if (!strcmp(type, "schema.field_renamed"))
        snprintf(line, sizeof line, "rename field %s.%s to %s", entity, from ? from : "", field);
    else if (!strcmp(type, "schema.field_dropped"))
        snprintf(line, sizeof line, "drop field %s.%s (%lld values)", entity, field,
                 (long long)json_integer_value(json_object_get(ch, "values")));
    else if (!strcmp(type, "schema.entity_changed"))
        snprintf(line, sizeof line, "change the label of %s", entity);
    else if (!strcmp(type, "schema.entity_dropped"))
        snprintf(line, sizeof line, "drop entity %s (%lld records)", entity,
                 (long long)json_integer_value(json_object_get(ch, "records")));
    else if (!strcmp(type, "schema.migration_ran"))
        snprintf(line, sizeof line, "run migration %s (%s)",
                 json_string_value(json_object_get(ch, "id")),
                 json_string_value(json_object_get(ch, "script")));
    else
        known = false;
    free(to);
    free(from);
    free(spec);
    return known ? strdup(line) : NULL;
}

/* The events the dry open appended, as changes (schema events) and a count of the others. */
static int read_changes(rp_store_t *s, int64_t since, json_t *changes, json_t *others,
                        rp_error_t *err)
{
    rp_event_t evs[256];
    for (;;) {
        int n = rp_events_list(s, since, false, evs, 256, err);
        if (n < 0)
            return n;
        for (int i = 0; i < n; i++) {
            json_error_t je;
            json_t *ch = json_loads(evs[i].changes ? evs[i].changes : "{}", 0, &je);
            char *line = describe(evs[i].type, evs[i].entity ? evs[i].entity : "", ch);
            if (line) {
                json_array_append_new(changes, json_pack("{s:s,s:s,s:s,s:o}", "type",
                                                         evs[i].type, "entity",
                                                         evs[i].entity ? evs[i].entity : "",
                                                         "change", line, "detail",
                                                         ch ? ch : json_object()));
                free(line);
            } else {
                json_decref(ch);
                json_int_t k = json_integer_value(json_object_get(others, evs[i].type));
                json_object_set_new(others, evs[i].type, json_integer(k + 1));
            }
            since = evs[i].seq;
            rp_event_clear(&evs[i]);
        }
        if (n < 256)
            return 0;
    }
}

static void print_text(json_t *changes, json_t *others, said_t *said)
{
    size_t i;
    json_t *x;
    json_array_foreach(changes, i, x)
        printf("%s\n", json_string_value(json_object_get(x, "change")));
    const char *type;
    json_object_foreach(others, type, x)
        printf("append %lld %s event(s)\n", (long long)json_integer_value(x), type);
    json_array_foreach(said->refused, i, x) printf("refused: %s\n", json_string_value(x));
    json_array_foreach(said->warnings, i, x) printf("warning: %s\n", json_string_value(x));
    size_t nch = json_array_size(changes) + json_object_size(others);
    if (!nch && !json_array_size(said->refused))
        printf("the database matches the scripts and plugins: nothing would change\n");
    else
        printf("%zu change(s) would be made, %zu refused; the database was not changed\n", nch,
               json_array_size(said->refused));
}

int cmd_schema_diff(cli_t *c, int argc, char **argv)
{
    bool json = false;
    flag_value(&argc, argv, "--json", &json);
    if (reject_unknown_flags("schema", argc, argv))
        return EXIT_USAGE;
    if (argc != 1)
        return usage_error("schema", "schema diff takes no operands");
    said_t said = {json_array(), json_array()};
    json_t *changes = json_array(), *others = json_object();
    rp_engine_opts_t o = engine_opts(c, collect);
    o.log_ud = &said;
    o.dry_run = true;
    o.offline = true; /* the scripts' top-level code runs: it must not reach a server */
    o.skip_broken = true;       /* a refused plugin is reported, not fatal */
    o.broken_scripts_ok = true; /* so is a script that fails to load */
    rp_engine_t *en = NULL;
    rp_error_t err = {0};
    int rc = rp_engine_open(&o, &en, &err);
    if (!rc)
        rc = read_changes(rp_engine_store(en), rp_engine_dry_since(en), changes, others, &err);
    /* Closing rolls the transaction back: nothing of the open stays. */
    rp_engine_close(en);
    int status = 0;
    if (rc) {
        status = fail("schema diff: %s", err.msg);
    } else {
        if (json) {
            json_t *out = json_pack("{s:O,s:O,s:O,s:O}", "changes", changes, "other_events",
                                    others, "refused", said.refused, "warnings", said.warnings);
            print_json(out, true);
            json_decref(out);
        } else {
            print_text(changes, others, &said);
        }
        status = json_array_size(said.refused) ? EXIT_REFUSED
                 : json_array_size(changes) || json_object_size(others) ? EXIT_PENDING
                                                                          : 0;
    }
    json_decref(changes);
    json_decref(others);
    json_decref(said.refused);
    json_decref(said.warnings);
    return status;
}
