/*
 * replay.c — `rapport replay SCRIPT`: what a rule would have done over the recorded history,
 * shown for a person or as JSON, or as the difference between two versions of the rule. The
 * work is core/engine/replay.c's; this file reads the options and prints.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapport/replay.h"
#include "rapport/text.h"
#include "rapport/time.h"

#include "cli.h"

static const char *const sections[] = {"created", "changed",  "deleted", "restored",
                                       "emitted", "schema",   "hooks",   "jobs",
                                       "messages", "errors",  NULL};

/* The report's text is gathered here, then shown with its control characters escaped: a
 * record's value or a script's error message must not drive the terminal. */
static FILE *report_out;

static void outf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void outf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(report_out ? report_out : stdout, fmt, ap);
    va_end(ap);
}

/* Shows what @p print writes about @p rep, escaped for the terminal. */
static void show(void (*print)(json_t *), json_t *rep)
{
    char *buf = NULL;
    size_t len = 0;
    report_out = open_memstream(&buf, &len);
    print(rep); /* writes to stdout itself when the stream could not be made */
    if (report_out) {
        fclose(report_out);
        report_out = NULL;
        char *safe = rp_text_printable(buf, true);
        fputs(safe ? safe : "", stdout);
        free(safe);
    }
    free(buf);
}

static void trace_line(void *ud, const char *line)
{
    (void)ud;
    char *safe = rp_text_printable(line, false);
    printf("%s\n", safe ? safe : "");
    free(safe);
    fflush(stdout);
}

/* Reads --NAME DATE into *ms (0 when absent); a usage error names the option and the text. */
static int date_flag(int *argc, char **argv, const char *flag, int64_t *ms)
{
    const char *v = flag_value(argc, argv, flag, NULL);
    *ms = 0;
    if (!v)
        return 0;
    if (v == FLAG_MISSING)
        return usage_error("replay", "%s needs a date (YYYY-MM-DD or an ISO-8601 time)", flag);
    rp_error_t err = {0};
    if (rp_time_parse(v, ms, &err))
        return usage_error("replay", "%s: %s", flag, err.msg);
    return 0;
}

/* "#12 contact.created contact 7" */
static void by_text(json_t *by, char *out, size_t cap)
{
    if (json_object_get(by, "job"))
        snprintf(out, cap, "job %s at %s", json_string_value(json_object_get(by, "job")),
                 json_string_value(json_object_get(by, "at")));
    else if (json_is_object(by))
        snprintf(out, cap, "#%lld %s %s %lld",
                 (long long)json_integer_value(json_object_get(by, "seq")),
                 json_string_value(json_object_get(by, "type")),
                 json_string_value(json_object_get(by, "entity")),
                 (long long)json_integer_value(json_object_get(by, "id")));
    else
        snprintf(out, cap, "loading the script");
}

static char *dump(json_t *j)
{
    return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

/* One item of a section, on one line. */
static void print_item(const char *section, json_t *it, const char *sign)
{
    char by[300];
    by_text(json_object_get(it, "by"), by, sizeof by);
    const char *entity = json_string_value(json_object_get(it, "entity"));
    /* A recorded id, or "new#N" for a record the script created. */
    json_t *idv = json_object_get(it, "id");
    char id[48];
    if (json_is_string(idv))
        snprintf(id, sizeof id, "%s", json_string_value(idv));
    else
        snprintf(id, sizeof id, "%lld", (long long)json_integer_value(idv));
    char *x = NULL;
    outf("  %s", sign);
    if (!strcmp(section, "created")) {
        x = dump(json_object_get(it, "fields"));
        outf("%s %s %s (by %s): %s\n", entity, id,
               json_string_value(json_object_get(it, "actor")), by, x);
    } else if (!strcmp(section, "changed")) {
        outf("%s %s (by %s):", entity, id, by);
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(it, "changes"), k, v) {
            char *o = dump(json_array_get(v, 0)), *n = dump(json_array_get(v, 1));
            outf(" %s: %s → %s;", k, o, n);
            free(o);
            free(n);
        }
        outf("\n");
    } else if (!strcmp(section, "deleted") || !strcmp(section, "restored")) {
        outf("%s %s%s (by %s)\n", entity, id,
               json_is_true(json_object_get(it, "purged")) ? " purged" : "", by);
    } else if (!strcmp(section, "emitted") || !strcmp(section, "schema")) {
        x = dump(json_object_get(it, "payload"));
        outf("%s (by %s): %s\n", json_string_value(json_object_get(it, "type")), by, x);
    } else if (!strcmp(section, "hooks")) {
        json_t *ch = json_object_get(it, "changed");
        if (ch) {
            x = dump(ch);
            outf("%s: a hook changed the write {field: [recorded, now]}: %s\n", by, x);
        } else {
            const char *how = json_object_get(it, "vetoed") ? "vetoed" : "refused";
            outf("%s: %s: %s\n", by, how, json_string_value(json_object_get(it, how)));
        }
    } else if (!strcmp(section, "jobs") || !strcmp(section, "messages")) {
        x = dump(json_object_get(it, "payload"));
        outf("%s due %s, %s%s (by %s): %s\n", json_string_value(json_object_get(it, "name")),
               json_string_value(json_object_get(it, "due")),
               json_string_value(json_object_get(it, "status")),
               !strcmp(section, "messages") ? ", not sent" : "", by, x);
    } else if (!strcmp(section, "errors")) {
        json_t *h = json_object_get(it, "handler");
        outf("%s: %s %s: %s\n", by, h ? "handler" : "job",
               json_string_value(h ? h : json_object_get(it, "job")),
               json_string_value(json_object_get(it, "error")));
    }
    free(x);
}

static void print_window(json_t *rep)
{
    json_t *w = json_object_get(rep, "window");
    outf("Replay of %s over events #%lld to #%lld",
           json_string_value(json_object_get(rep, "script")),
           (long long)json_integer_value(json_object_get(w, "first_seq")),
           (long long)json_integer_value(json_object_get(w, "last_seq")));
    const char *from = json_string_value(json_object_get(w, "from"));
    const char *to = json_string_value(json_object_get(w, "to"));
    if (from || to) {
        outf(" (");
        if (from)
            outf("from %s", from);
        if (to)
            outf("%sbefore %s", from ? " " : "", to);
        outf(")");
    }
    outf(": %lld events fed, %lld skipped. Nothing was written to the database or sent.\n",
           (long long)json_integer_value(json_object_get(w, "events")),
           (long long)json_integer_value(json_object_get(w, "skipped")));
}

static void print_report(json_t *rep)
{
    print_window(rep);
    for (int i = 0; sections[i]; i++) {
        json_t *items = json_object_get(rep, sections[i]);
        outf("%s (%zu)%s\n", sections[i], json_array_size(items),
               json_array_size(items) ? ":" : "");
        size_t j;
        json_t *it;
        json_array_foreach(items, j, it) print_item(sections[i], it, "");
    }
    json_t *notes = json_object_get(rep, "notes");
    size_t j;
    json_t *n;
    json_array_foreach(notes, j, n) outf("note: %s\n", json_string_value(n));
}

/* The items of @p a's section that @p b's lacks (compared as sorted JSON text). */
static json_t *only_in(json_t *a, json_t *b)
{
    json_t *out = json_array();
    size_t i, j;
    json_t *x, *y;
    json_array_foreach(a, i, x) {
        bool found = false;
        json_array_foreach(b, j, y) {
            if (json_equal(x, y)) {
                found = true;
                break;
            }
        }
        if (!found)
            json_array_append(out, x);
    }
    return out;
}

static json_t *difference(json_t *now, json_t *old)
{
    json_t *d = json_pack("{s:O,s:O,s:O,s:{},s:{}}", "script", json_object_get(now, "script"),
                          "against", json_object_get(old, "script"), "window",
                          json_object_get(now, "window"), "only_new", "only_old");
    for (int i = 0; sections[i]; i++) {
        json_t *a = json_object_get(now, sections[i]), *b = json_object_get(old, sections[i]);
        json_object_set_new(json_object_get(d, "only_new"), sections[i], only_in(a, b));
        json_object_set_new(json_object_get(d, "only_old"), sections[i], only_in(b, a));
    }
    return d;
}

static void print_difference(json_t *d)
{
    json_t *n = json_object_get(d, "only_new"), *o = json_object_get(d, "only_old");
    outf(
        "Difference between %s (+) and %s (-) over events #%lld to #%lld:\n",
        json_string_value(json_object_get(d, "script")),
        json_string_value(json_object_get(d, "against")),
        (long long)json_integer_value(json_object_get(json_object_get(d, "window"), "first_seq")),
        (long long)json_integer_value(json_object_get(json_object_get(d, "window"), "last_seq")));
    int shown = 0;
    for (int i = 0; sections[i]; i++) {
        json_t *a = json_object_get(n, sections[i]), *b = json_object_get(o, sections[i]);
        if (!json_array_size(a) && !json_array_size(b))
            continue;
        outf("%s:\n", sections[i]);
        size_t j;
        json_t *it;
        json_array_foreach(a, j, it) print_item(sections[i], it, "+ ");
        json_array_foreach(b, j, it) print_item(sections[i], it, "- ");
        shown++;
    }
    if (!shown)
        outf("no difference\n");
}

static int run_one(cli_t *c, rp_replay_opts_t *o, const char *script, json_t **rep)
{
    o->script = script;
    rp_error_t err = {0};
    if (rp_replay_run(o, rep, &err))
        return fail("replay %s: %s", script, err.msg);
    return 0;
    (void)c;
}

int cmd_replay(cli_t *c, int argc, char **argv)
{
    bool json = false, trace = false;
    flag_value(&argc, argv, "--json", &json);
    flag_value(&argc, argv, "--trace", &trace);
    rp_replay_opts_t o = {
        .db = c->db, .builtin_plugins = c->plugin_dirs[0], .plugin_dirs = c->plugin_dirs + 1};
    if (date_flag(&argc, argv, "--from", &o.from_ms) || date_flag(&argc, argv, "--to", &o.to_ms))
        return EXIT_USAGE;
    const char *entity = flag_value(&argc, argv, "--entity", NULL);
    const char *event = flag_value(&argc, argv, "--event", NULL);
    const char *against = flag_value(&argc, argv, "--against", NULL);
    if (entity == FLAG_MISSING || event == FLAG_MISSING || against == FLAG_MISSING)
        return usage_error("replay", "--entity, --event and --against each need a value");
    if (reject_unknown_flags("replay", argc, argv))
        return EXIT_USAGE;
    /* It reads the whole history, every record and setting, whatever a role may see: an
     * administrator's tool, not one to narrow to a user's scope. */
    if (c->as_user)
        return usage_error("replay",
                           "replay reads the whole recorded history (every record, field and "
                           "setting): not with --as %s; run it without --as",
                           c->as_user);
    if (argc != 2)
        return usage_error("replay", "replay needs one script file");
    if (o.from_ms && o.to_ms && o.to_ms <= o.from_ms)
        return usage_error("replay", "--to must be after --from");
    if (entity && !rp_store_name_ok(entity))
        return usage_error("replay", "--entity %s: not an entity name", entity);
    if (event && (!parse_id(event, &o.event_seq)))
        return usage_error("replay", "--event %s: not an event number (see rapport events tail)",
                           event);
    if (event && (o.from_ms || o.to_ms))
        return usage_error("replay", "--event replays one event: no --from or --to with it");
    if (trace && (json || against))
        return usage_error("replay", "--trace prints as it goes: not with --json or --against");
    o.entity = entity;
    if (trace)
        o.trace = trace_line;
    json_t *rep = NULL, *old = NULL;
    if (run_one(c, &o, argv[1], &rep))
        return EXIT_FAIL;
    o.trace = NULL;
    if (against && run_one(c, &o, against, &old)) {
        json_decref(rep);
        return EXIT_FAIL;
    }
    json_t *out = against ? difference(rep, old) : json_incref(rep);
    if (json) {
        char *text = json_dumps(out, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (text)
            puts(text);
        free(text);
    } else if (against) {
        show(print_difference, out);
    } else {
        show(print_report, out);
    }
    json_decref(out);
    json_decref(rep);
    json_decref(old);
    return 0;
}
