/*
 * repl_cmd.c — the REPL's ":commands": help, dry runs, wide tables, the next page of a list,
 * why a field has its value (explain), and timing an input. One table lists them, so :help
 * and the parser never disagree.
 */
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "repl.h"

#define ARG_MAX 256 /* the longest entity or field name :explain takes */

/* Says what is wrong with a command on stderr, after what was printed so far. */
__attribute__((format(printf, 1, 2))) static void complain(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fflush(stdout);
    fputs("repl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- :dry and :wide ---------------------------------------------------------------------- */

/* An on/off switch: no argument toggles (or, for @p show_only, says how it is). */
static bool switch_arg(const char *cmd, const char *arg, bool *flag, bool show_only)
{
    if (!*arg) {
        if (!show_only)
            *flag = !*flag;
    } else if (strcmp(arg, "on") == 0) {
        *flag = true;
    } else if (strcmp(arg, "off") == 0) {
        *flag = false;
    } else {
        complain(":%s takes on or off, not \"%s\"", cmd, arg);
        return false;
    }
    return true;
}

static bool cmd_dry(repl_t *r, const char *arg)
{
    if (switch_arg("dry", arg, &r->dry, true))
        printf("dry run is %s%s\n", r->dry ? "on" : "off",
               r->dry ? ": every input runs inside crm.dry_run and nothing is saved" : "");
    return true;
}

static bool cmd_wide(repl_t *r, const char *arg)
{
    if (switch_arg("wide", arg, &r->wide, false))
        printf("wide is %s: %s\n", r->wide ? "on" : "off",
               r->wide ? "tables show every value whole"
                       : "tables are cut with … to fit the terminal");
    return true;
}

/* ---- :next and :time --------------------------------------------------------------------- */

static bool cmd_next(repl_t *r, const char *arg)
{
    if (*arg) {
        complain(":next takes nothing; \"%s\" is extra", arg);
        return true;
    }
    if (!r->next_code) {
        complain(":next: there is no next page: the last list shown was whole or its last "
                 "page");
        return true;
    }
    /* The run replaces next_code with the following page's, or clears it. */
    char *code = strdup(r->next_code);
    if (!code) {
        complain("out of memory");
        return true;
    }
    repl_run_chunk(r, code, NULL);
    free(code);
    return true;
}

/* 1234567 → "1,234,567", so a count reads at a glance. */
static void group_digits(long long n, char *out, size_t cap)
{
    char raw[32];
    int len = snprintf(raw, sizeof raw, "%lld", n);
    size_t o = 0;
    for (int i = 0; i < len && o + 2 < cap; i++) {
        if (i > 0 && raw[i - 1] != '-' && (len - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = raw[i];
    }
    out[o] = '\0';
}

static bool cmd_time(repl_t *r, const char *arg)
{
    if (!*arg) {
        complain(":time needs an input to time, e.g. :time crm.count(\"contact\")");
        return true;
    }
    repl_timing_t t = {0};
    repl_run_chunk(r, arg, &t);
    char n[40];
    group_digits(t.instructions, n, sizeof n);
    if (t.instructions < REPL_COUNT_STEP)
        printf("time: %.3f ms wall, fewer than %d Lua instructions%s\n", t.wall_ms,
               REPL_COUNT_STEP, r->dry ? " (dry run)" : "");
    else
        printf("time: %.3f ms wall, about %s Lua instructions%s\n", t.wall_ms, n,
               r->dry ? " (dry run)" : "");
    fflush(stdout);
    return true;
}

/* ---- :explain ---------------------------------------------------------------------------- */

/* A string field of the table at the top of @p L, copied. Owned; NULL when absent. */
static char *str_field(lua_State *L, const char *k)
{
    lua_getfield(L, -1, k);
    char *v = lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER
                  ? strdup(lua_tostring(L, -1))
                  : NULL;
    lua_pop(L, 1);
    return v;
}

/* A field of the table at the top of @p L written as Lua ("nil" when absent). Owned. */
static char *lit_field(lua_State *L, const char *k)
{
    buf_t b = {0};
    lua_getfield(L, -1, k);
    if (!repl_lua_literal(L, -1, &b)) {
        free(b.p);
        b.p = strdup("?");
    }
    lua_pop(L, 1);
    return b.p;
}

/* What caused a change, nearest first: "#3 deal.updated deal 4 by x ← #1 …". Owned. */
static char *causes_text(lua_State *L)
{
    buf_t b = {0};
    repl_buf_str(&b, "");
    lua_getfield(L, -1, "causes");
    lua_Integer n = lua_istable(L, -1) ? (lua_Integer)lua_rawlen(L, -1) : 0;
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        char *seq = str_field(L, "seq"), *type = str_field(L, "type");
        char *entity = str_field(L, "entity"), *id = str_field(L, "record_id");
        char *actor = str_field(L, "actor");
        char line[1024];
        snprintf(line, sizeof line, "%s#%s %s%s%s%s%s by %s", i > 1 ? " ← " : "",
                 seq ? seq : "?", type ? type : "?", entity ? " " : "", entity ? entity : "",
                 id && strcmp(id, "0") != 0 ? " " : "", id && strcmp(id, "0") != 0 ? id : "",
                 actor ? actor : "?");
        repl_buf_str(&b, line);
        free(seq);
        free(type);
        free(entity);
        free(id);
        free(actor);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return b.p;
}

#define EXPLAIN_COLS 9

/* Prints the history crm.explain left at the top of @p L as a table, oldest first. */
static void print_history(repl_t *r, lua_State *L, const char *entity, const char *id,
                          const char *field)
{
    size_t n = lua_istable(L, -1) ? lua_rawlen(L, -1) : 0;
    if (n == 0) {
        printf("%s %s: no recorded change of %s\n", entity, id, field);
        return;
    }
    static const char *const head[EXPLAIN_COLS] = {"seq", "at",  "change", "old",      "",
                                                   "new", "by",  "via",    "caused by"};
    char **cells = calloc((n + 1) * EXPLAIN_COLS, sizeof *cells);
    if (!cells) {
        complain(":explain: out of memory");
        return;
    }
    for (int c = 0; c < EXPLAIN_COLS; c++)
        cells[c] = strdup(head[c]);
    for (size_t i = 1; i <= n; i++) {
        char **row = cells + i * EXPLAIN_COLS;
        lua_rawgeti(L, -1, (lua_Integer)i);
        row[0] = str_field(L, "seq");
        row[1] = str_field(L, "at");
        row[2] = str_field(L, "type");
        row[3] = lit_field(L, "old");
        row[4] = strdup("→");
        row[5] = lit_field(L, "new");
        row[6] = str_field(L, "actor");
        row[7] = str_field(L, "origin");
        row[8] = causes_text(L);
        lua_pop(L, 1);
    }
    printf("%s %s %s: %zu recorded change%s, oldest first; the last one set its value\n", entity,
           id, field, n, n == 1 ? "" : "s");
    /* The last column says what caused a change; when nothing did, it is left out. */
    bool caused = false;
    for (size_t i = 1; i <= n; i++)
        caused = caused || (cells[i * EXPLAIN_COLS + 8] && cells[i * EXPLAIN_COLS + 8][0]);
    size_t ncols = EXPLAIN_COLS;
    if (!caused) {
        for (size_t i = 0; i <= n; i++) {
            free(cells[i * EXPLAIN_COLS + 8]);
            cells[i * EXPLAIN_COLS + 8] = NULL;
        }
        ncols = EXPLAIN_COLS - 1;
        for (size_t i = 0, o = 0; i < (n + 1) * EXPLAIN_COLS; i++)
            if (i % EXPLAIN_COLS != 8)
                cells[o++] = cells[i];
        for (size_t i = (n + 1) * ncols; i < (n + 1) * EXPLAIN_COLS; i++)
            cells[i] = NULL;
    }
    repl_print_grid(r, cells, n + 1, ncols);
    for (size_t i = 0; i < (n + 1) * EXPLAIN_COLS; i++)
        free(cells[i]);
    free(cells);
}

static bool cmd_explain(repl_t *r, const char *arg)
{
    char entity[ARG_MAX] = "", id[32] = "", field[ARG_MAX] = "", extra[2] = "";
    int n = sscanf(arg, "%255s %31s %255s %1s", entity, id, field, extra);
    if (n != 3) {
        complain(":explain needs ENTITY ID FIELD%s, e.g. :explain contact 1 stage",
                 n > 3 ? " and nothing more" : "");
        return true;
    }
    char *end;
    errno = 0;
    long long v = strtoll(id, &end, 10);
    if (*end || v <= 0 || errno == ERANGE) {
        complain(":explain: the id must be a positive whole number, not \"%s\"", id);
        return true;
    }
    /* Through the session's crm.explain, so it sees what the session's user may see. */
    lua_State *L = r->L;
    int top = lua_gettop(L);
    lua_getglobal(L, "crm");
    if (lua_istable(L, -1))
        lua_getfield(L, -1, "explain");
    if (!lua_isfunction(L, -1)) {
        complain(":explain: crm.explain is not a function in this session");
        lua_settop(L, top);
        return true;
    }
    lua_pushstring(L, entity);
    lua_pushinteger(L, (lua_Integer)v);
    lua_pushstring(L, field);
    if (lua_pcall(L, 3, 1, 0) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        complain(":explain: %s", msg ? msg : "failed");
    } else {
        print_history(r, L, entity, id, field);
    }
    lua_settop(L, top);
    fflush(stdout);
    return true;
}

/* ---- the table --------------------------------------------------------------------------- */

static bool cmd_help(repl_t *r, const char *arg);

static bool cmd_quit(repl_t *r, const char *arg)
{
    (void)r;
    if (*arg) {
        complain(":quit takes nothing; \"%s\" is extra", arg);
        return true;
    }
    return false;
}

typedef struct command {
    const char *name, *alias, *args, *what;
    bool (*run)(repl_t *r, const char *arg);
} command_t;

static const command_t commands[] = {
    {"help", NULL, "", "this text", cmd_help},
    {"dry", NULL, "on|off", "on: run each input inside crm.dry_run, save nothing, and show\n"
                            "what it would change (entity, id, field, old → new)", cmd_dry},
    {"wide", NULL, "[on|off]", "show tables whole, not cut to the terminal (toggles)", cmd_wide},
    {"next", NULL, "", "fetch the next page of the last list crm.find returned", cmd_next},
    {"explain", NULL, "ENTITY ID FIELD", "why the field has its value: each change, by whom,\n"
                                         "and what caused it", cmd_explain},
    {"time", NULL, "INPUT", "run INPUT; show its wall time and Lua instructions", cmd_time},
    {"quit", "q", "", "leave (Ctrl-D and :exit do too)", cmd_quit},
    {"exit", NULL, NULL, NULL, cmd_quit},
};

#define NCOMMANDS (sizeof commands / sizeof *commands)

static const char help_intro[] =
    "Type Lua; the crm API is at hand (crm.find, crm.create, crm.update, crm.schema.get, …).\n"
    "An expression prints its value: a record as field = value lines, a list of records as a\n"
    "table cut to fit the terminal, anything else as `rapport eval` prints it; when crm.find\n"
    "has more, a \"-- more:\" line shows the call that fetches the next page. A chunk that is\n"
    "not finished (a function without its end) continues on the next line at the \"...\"\n"
    "prompt. Errors never end the session. Writes are saved at once, as `rapport eval` does.\n"
    "\n";

static const char help_outro[] =
    "\n"
    "Tab completes globals and the crm API (crm.sch → crm.schema.), and entity and field names\n"
    "inside quotes. History is kept in $RAPPORT_HISTORY, else ~/.rapport_history.\n";

static bool cmd_help(repl_t *r, const char *arg)
{
    (void)r;
    (void)arg;
    fputs(help_intro, stdout);
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (!commands[i].what)
            continue;
        char use[64];
        snprintf(use, sizeof use, ":%s%s%s", commands[i].name, *commands[i].args ? " " : "",
                 commands[i].args);
        printf("  %-25s ", use);
        for (const char *p = commands[i].what; *p; p++) {
            putchar(*p);
            if (*p == '\n')
                printf("%28s", "");
        }
        putchar('\n');
    }
    fputs(help_outro, stdout);
    return true;
}

bool repl_command(repl_t *r, const char *line)
{
    while (*line == ' ' || *line == '\t')
        line++;
    line++; /* the ':' */
    size_t n = strcspn(line, " \t");
    const char *arg = line + n;
    while (*arg == ' ' || *arg == '\t')
        arg++;
    /* Trailing blanks are no argument. */
    char rest[4096];
    size_t an = strlen(arg);
    if (an >= sizeof rest) {
        complain("the command line is too long (over %zu bytes of arguments)", sizeof rest - 1);
        return true;
    }
    memcpy(rest, arg, an + 1);
    while (an > 0 && (rest[an - 1] == ' ' || rest[an - 1] == '\t'))
        rest[--an] = '\0';
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const command_t *c = &commands[i];
        if ((strlen(c->name) == n && strncmp(c->name, line, n) == 0) ||
            (c->alias && strlen(c->alias) == n && strncmp(c->alias, line, n) == 0)) {
            bool go_on = c->run(r, rest);
            fflush(stdout);
            return go_on;
        }
    }
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(n < 60 ? n : 60), line);
    complain("unknown command \":%s\" (:help lists them: %s)", name,
             ":help :dry :wide :next :explain :time :quit");
    return true;
}
