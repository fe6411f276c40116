/*
 * export.c — `rapport export`: records as CSV (formula-like text guarded, as OWASP advises
 * against CSV injection), JSON lines, or a format a plugin registers (the operational plugin's
 * vCard and iCalendar). Fields the reader may not see are redacted as on every other read.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <csv.h>

#include "cli.h"
#include "io.h"
#include "rapport/access.h"

/* A value as CSV text: strings as they are, numbers and booleans as JSON writes them, json
 * fields as compact JSON, null as nothing. With @p guard, a text a spreadsheet would run as a
 * formula ("=HYPERLINK(…)") is written behind a single quote, which the spreadsheet shows as
 * text and `rapport import` takes off again. */
static void csv_value(FILE *out, json_t *v, bool guard)
{
    if (!v || json_is_null(v))
        return;
    if (json_is_string(v)) {
        const char *t = json_string_value(v);
        if (guard && guarded(t)) {
            char *q = malloc(strlen(t) + 2);
            if (q) {
                q[0] = '\'';
                strcpy(q + 1, t);
                csv_out(out, q);
                free(q);
                return;
            }
        }
        csv_out(out, t);
        return;
    }
    char *d = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    csv_out(out, d);
    free(d);
}

/* Writes @p text (owned; NULL writes nothing) to @p out. */
static void put_text(FILE *out, char *text)
{
    if (text)
        fputs(text, out);
    free(text);
}

int cmd_export(cli_t *c, int argc, char **argv)
{
    const char *fmt = flag_value(&argc, argv, "--format", NULL);
    const char *wheres = flag_value(&argc, argv, "--where", NULL);
    const char *outp = flag_value(&argc, argv, "--output", NULL);
    const char *outp2 = flag_value(&argc, argv, "-o", NULL);
    bool deleted = false, keep_formulas = false;
    flag_value(&argc, argv, "--deleted", &deleted);
    flag_value(&argc, argv, "--keep-formulas", &keep_formulas);
    if (fmt == FLAG_MISSING || wheres == FLAG_MISSING || outp == FLAG_MISSING ||
        outp2 == FLAG_MISSING)
        return usage_error("export", "export: an option lacks its value");
    if (reject_unknown_flags("export", argc, argv))
        return EXIT_USAGE;
    if (argc != 2)
        return usage_error("export", "export needs an entity");
    const char *entity = argv[1];
    if (!outp)
        outp = outp2;
    const char *format = fmt ? fmt : outp ? format_of(outp, NULL) : "csv";
    json_t *where = wheres ? json_arg("export", "--where", wheres) : NULL;
    if (wheres && !where)
        return EXIT_FAIL;
    /* The engine's own formats need only the store; the others, the plugins that write them. */
    rp_store_t *s = NULL;
    env_t env = {0};
    bool with_plugins = !builtin_format(format);
    if (with_plugins ? env_open(c, &env, log_quiet) : open_store(c, false, &s)) {
        json_decref(where);
        return EXIT_FAIL;
    }
    if (with_plugins) {
        s = env.s;
        const char *known = plugin_format_of(&env, format, outp, false);
        if (!known) {
            char list[256];
            format_list(&env, false, list, sizeof list);
            env_close(&env);
            json_decref(where);
            return usage_error("export", "export: format \"%s\" (%s are written)", format,
                               list);
        }
        format = known;
    }
    rp_error_t err = {0};
    int rc = 0;
    FILE *out = stdout;
    rp_export_t *x = NULL;
    json_t *schema = rp_store_schema(s, entity, &err);
    if (!schema) {
        rc = fail("%s", err.msg);
        goto done;
    }
    json_t *fields = json_object_get(schema, "fields");
    /* --as: the user's columns only. */
    rp_access_redact(c->access, entity, fields);
    char *head = NULL;
    if (!builtin_format(format) &&
        rp_plugins_export_begin(env.pl, format, entity, fields, where != NULL, &x, &head, &err)) {
        rc = fail("export: %s", err.msg);
        goto done;
    }
    if (outp && !(out = fopen(outp, "w"))) {
        free(head);
        rc = fail("%s: %s", outp, strerror(errno));
        out = stdout;
        goto done;
    }
    put_text(out, head);
    /* The columns: id, the fields in the registry's order, then the record's times. */
    const char *k;
    json_t *spec;
    if (strcmp(format, "csv") == 0) {
        fputs("id", out);
        json_object_foreach(fields, k, spec) {
            if (!is_system(k))
                fprintf(out, ",%s", k);
        }
        fputs(",created_at,updated_at\n", out);
    }
    char *after = NULL;
    long n = 0;
    for (;;) {
        rp_query_t q = {.entity = entity, .where = where, .limit = 1000, .after = after, .access = c->access,
                        .with_deleted = deleted};
        json_t *page = NULL;
        char *next = NULL;
        if (rp_store_find(s, &q, &page, &next, &err)) {
            rc = fail("%s", err.msg);
            free(after);
            goto done;
        }
        free(after);
        size_t i;
        json_t *r;
        json_array_foreach(page, i, r) {
            n++; /* (a plugin's format takes it back below for what it leaves out) */
            if (strcmp(format, "jsonl") == 0) {
                char *d = json_dumps(r, JSON_COMPACT);
                fprintf(out, "%s\n", d);
                free(d);
            } else if (strcmp(format, "csv") == 0) {
                fprintf(out, "%lld", (long long)json_integer_value(json_object_get(r, "id")));
                json_object_foreach(fields, k, spec) {
                    if (is_system(k))
                        continue;
                    fputc(',', out);
                    csv_value(out, json_object_get(r, k), !keep_formulas);
                }
                fputc(',', out);
                csv_value(out, json_object_get(r, "created_at"), false);
                fputc(',', out);
                csv_value(out, json_object_get(r, "updated_at"), false);
                fputc('\n', out);
            } else {
                char *text = NULL;
                if (rp_plugins_export_record(x, r, &text, &err)) {
                    json_decref(page);
                    free(next);
                    rc = fail("export: %s", err.msg);
                    goto done;
                }
                n -= text == NULL;
                put_text(out, text);
            }
        }
        json_decref(page);
        if (!next)
            break;
        after = next;
    }
    if (x) {
        char *tail = NULL;
        rp_export_t *ending = x;
        x = NULL;
        if (rp_plugins_export_end(ending, false, &tail, &err)) {
            rc = fail("export: %s", err.msg);
            goto done;
        }
        put_text(out, tail);
    }
    if (outp)
        fprintf(stderr, "rapport: %ld %s records written to %s\n", n, entity, outp);
done:
    if (x) {
        char *tail = NULL;
        rp_plugins_export_end(x, true, &tail, NULL);
    }
    if (out != stdout && fclose(out) != 0 && !rc)
        rc = fail("%s: %s", outp, strerror(errno));
    json_decref(schema);
    json_decref(where);
    if (with_plugins)
        env_close(&env);
    else
        close_store(c, s);
    return rc;
}
