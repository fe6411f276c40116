/*
 * repl_page.c — the next page of a list: the REPL notes the entity and query of each crm.find
 * an input calls, so the cursor a page ends with is shown as the call that fetches the next one
 * (and :next runs it); and Lua values written back as Lua, for that call and for :explain.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "repl.h"

#define LITERAL_DEPTH 32      /* a filter nests at most 32 deep (RP-E1301) */
#define LITERAL_MAX (1 << 20) /* bytes: a table shared many times over is not written out */

/* ---- Lua values as Lua ------------------------------------------------------------------- */

static bool lit(lua_State *L, int idx, buf_t *b, int depth, const char *skip);

static bool lit_string(buf_t *b, const char *s, size_t n)
{
    bool ok = repl_buf_str(b, "\"");
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            snprintf(esc, sizeof esc, "\\%c", c);
            ok = repl_buf_str(b, esc);
        } else if (c == '\n') {
            ok = repl_buf_str(b, "\\n");
        } else if (c < 0x20 || c == 0x7F) {
            /* Three digits, so a digit that follows cannot join the escape. */
            snprintf(esc, sizeof esc, "\\%03u", c);
            ok = repl_buf_str(b, esc);
        } else {
            ok = repl_buf_add(b, (const char *)&s[i], 1);
        }
    }
    return ok && repl_buf_str(b, "\"");
}

static bool lit_number(lua_State *L, int idx, buf_t *b)
{
    char t[64];
    if (lua_isinteger(L, idx)) {
        snprintf(t, sizeof t, "%lld", (long long)lua_tointeger(L, idx));
        return repl_buf_str(b, t);
    }
    double d = lua_tonumber(L, idx);
    if (isnan(d))
        return repl_buf_str(b, "(0/0)");
    if (isinf(d))
        return repl_buf_str(b, d > 0 ? "math.huge" : "-math.huge");
    /* The shortest of two forms that reads back as the same double. */
    snprintf(t, sizeof t, "%.14g", d);
    if (strtod(t, NULL) != d)
        snprintf(t, sizeof t, "%.17g", d);
    /* Still a float when read back: 2.0 is not the integer 2. */
    if (!strpbrk(t, ".eEn"))
        strcat(t, ".0");
    return repl_buf_str(b, t);
}

static bool is_name(const char *s)
{
    static const char *const reserved[] = {
        "and", "break", "do",  "else", "elseif", "end",    "false", "for",  "function", "goto", "if",
        "in",  "local", "nil", "not",  "or",     "repeat", "return", "then", "true",     "until",
        "while", NULL};
    if (!*s || (*s >= '0' && *s <= '9'))
        return false;
    for (const char *p = s; *p; p++)
        if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9')))
            return false;
    for (int i = 0; reserved[i]; i++)
        if (strcmp(s, reserved[i]) == 0)
            return false;
    return true;
}

/* Keys sort by name, `after` last: the hint reads as the call was typed, cursor at the end. */
static int cmp_key(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    bool xa = strcmp(x, "after") == 0, ya = strcmp(y, "after") == 0;
    if (xa != ya)
        return xa ? 1 : -1;
    return strcmp(x, y);
}

/* The fields of the table at @p idx, "k = v, …" in braces: the list part first, then other
 * keys, then names sorted; the key @p skip (or none, NULL) is left out. */
static bool lit_table(lua_State *L, int idx, buf_t *b, int depth, const char *skip)
{
    if (depth > LITERAL_DEPTH || b->n > LITERAL_MAX || !lua_checkstack(L, 8))
        return false;
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    const char **names = NULL;
    size_t nn = 0, cap = 0;
    bool ok = repl_buf_str(b, "{"), first = true;
    for (lua_Integer i = 1; ok && i <= n; i++, first = false) {
        lua_rawgeti(L, idx, i);
        ok = (first || repl_buf_str(b, ", ")) && lit(L, -1, b, depth + 1, NULL);
        lua_pop(L, 1);
    }
    int top = lua_gettop(L);
    lua_pushnil(L);
    while (ok && lua_next(L, idx)) {
        if (lua_type(L, -2) == LUA_TSTRING) {
            /* The name stays alive as a key of the table while it is written. */
            const char *k = lua_tostring(L, -2);
            if (!(skip && strcmp(k, skip) == 0)) {
                if (nn == cap) {
                    cap = cap ? cap * 2 : 16;
                    const char **p = realloc(names, cap * sizeof *p);
                    ok = p != NULL;
                    names = p ? p : names;
                }
                if (ok)
                    names[nn++] = k;
            }
        } else if (!(lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1 &&
                     lua_tointeger(L, -2) <= n)) {
            ok = (first || repl_buf_str(b, ", ")) && repl_buf_str(b, "[") &&
                 lit(L, -2, b, depth + 1, NULL) && repl_buf_str(b, "] = ") &&
                 lit(L, -1, b, depth + 1, NULL);
            first = false;
        }
        lua_pop(L, 1);
    }
    lua_settop(L, top); /* the key left when the walk was cut short */
    if (nn)
        qsort(names, nn, sizeof *names, cmp_key);
    for (size_t i = 0; ok && i < nn; i++, first = false) {
        ok = first || repl_buf_str(b, ", ");
        if (ok && is_name(names[i]))
            ok = repl_buf_str(b, names[i]) && repl_buf_str(b, " = ");
        else if (ok)
            ok = repl_buf_str(b, "[") && lit_string(b, names[i], strlen(names[i])) &&
                 repl_buf_str(b, "] = ");
        lua_pushstring(L, names[i]);
        lua_rawget(L, idx);
        ok = ok && lit(L, -1, b, depth + 1, NULL);
        lua_pop(L, 1);
    }
    free(names);
    return ok && repl_buf_str(b, "}");
}

static bool lit(lua_State *L, int idx, buf_t *b, int depth, const char *skip)
{
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TNONE:
    case LUA_TNIL:
        return repl_buf_str(b, "nil");
    case LUA_TBOOLEAN:
        return repl_buf_str(b, lua_toboolean(L, idx) ? "true" : "false");
    case LUA_TNUMBER:
        return lit_number(L, idx, b);
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        return lit_string(b, s, n);
    }
    case LUA_TTABLE:
        return lit_table(L, idx, b, depth, skip);
    default:
        return false;
    }
}

bool repl_lua_literal(lua_State *L, int idx, buf_t *b)
{
    return lit(L, idx, b, 0, NULL);
}

/* ---- following crm.find ------------------------------------------------------------------ */

void repl_page_reset(repl_t *r)
{
    free(r->find_entity);
    free(r->find_query);
    r->find_entity = r->find_query = NULL;
}

/* Notes the entity and query of a crm.find call (arguments 1 and 2 of @p L). A call it cannot
 * write down (a query that is not plain data) is simply not offered for paging. */
static void note_find(repl_t *r, lua_State *L)
{
    repl_page_reset(r);
    if (lua_type(L, 1) != LUA_TSTRING || !(lua_isnoneornil(L, 2) || lua_istable(L, 2)))
        return;
    buf_t e = {0}, q = {0};
    int top = lua_gettop(L);
    bool ok = lit(L, 1, &e, 0, NULL) &&
              (lua_istable(L, 2) ? lit(L, 2, &q, 0, "after") : repl_buf_str(&q, "{}"));
    lua_settop(L, top);
    if (!ok) {
        free(e.p);
        free(q.p);
        return;
    }
    /* Without its braces: the cursor joins the fields. */
    q.p[q.n - 1] = '\0';
    memmove(q.p, q.p + 1, q.n - 1);
    r->find_entity = e.p;
    r->find_query = q.p;
}

/* crm.find, as the session sees it: notes the call, then calls the engine's (upvalue 2). It is
 * a C function so that a tail call into it (`return crm.find(…)`, every expression typed)
 * keeps the caller's frame: an error is placed at the caller's line, as crm.find places it,
 * and named 'find' (called from C, the engine's function cannot know its name). */
static int find_wrapper(lua_State *L)
{
    note_find(lua_touserdata(L, lua_upvalueindex(1)), L);
    int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_insert(L, 1);
    int rc = lua_pcall(L, n, LUA_MULTRET, 0);
    if (rc == LUA_OK)
        return lua_gettop(L);
    if (rc != LUA_ERRRUN || lua_type(L, -1) != LUA_TSTRING)
        return lua_error(L);
    const char *msg = lua_tostring(L, -1);
    static const char anon[] = " to '?' (";
    const char *q = strncmp(msg, "bad argument #", 14) == 0 ? strstr(msg, anon) : NULL;
    luaL_where(L, 1);
    if (q) {
        lua_pushlstring(L, msg, (size_t)(q - msg));
        lua_pushstring(L, " to 'find' (");
        lua_pushstring(L, q + sizeof anon - 1);
        lua_concat(L, 4);
    } else {
        lua_pushvalue(L, -2);
        lua_concat(L, 2);
    }
    return lua_error(L);
}

int repl_page_setup(repl_t *r)
{
    lua_State *L = r->L;
    int top = lua_gettop(L);
    int rc = -1;
    if (lua_getglobal(L, "crm") == LUA_TTABLE && lua_getfield(L, -1, "find") == LUA_TFUNCTION) {
        lua_pushlightuserdata(L, r);
        lua_insert(L, -2);
        lua_pushcclosure(L, find_wrapper, 2);
        lua_pushstring(L, "find");
        lua_insert(L, -2);
        lua_rawset(L, -3);
        rc = 0;
    }
    lua_settop(L, top);
    return rc;
}

bool repl_page_hint(repl_t *r, const char *cursor)
{
    if (!r->find_entity)
        return false;
    buf_t code = {0};
    bool ok = repl_buf_str(&code, "crm.find(") && repl_buf_str(&code, r->find_entity) &&
              repl_buf_str(&code, ", {") && repl_buf_str(&code, r->find_query) &&
              repl_buf_str(&code, *r->find_query ? ", after = " : "after = ") &&
              lit_string(&code, cursor, strlen(cursor)) && repl_buf_str(&code, "})");
    /* Whole when it fits (it is Lua to copy), else with the query left out; :wide shows it. */
    static const char head[] = "-- more (:next): ";
    size_t room = r->wide ? SIZE_MAX : (size_t)repl_term_width();
    buf_t line = {0};
    ok = ok && repl_buf_str(&line, head) && repl_buf_str(&line, code.p);
    if (ok && repl_text_width(line.p) > room) {
        line.n = 0;
        ok = repl_buf_str(&line, head) && repl_buf_str(&line, "crm.find(") &&
             repl_buf_str(&line, r->find_entity) &&
             repl_buf_str(&line, *r->find_query ? ", {…, after = " : ", {after = ") &&
             lit_string(&line, cursor, strlen(cursor)) && repl_buf_str(&line, "})");
    }
    if (!ok) {
        free(code.p);
        free(line.p);
        return false;
    }
    free(r->next_code);
    r->next_code = code.p;
    char *cut = repl_text_width(line.p) > room ? repl_text_cut(line.p, room) : NULL;
    puts(cut ? cut : line.p);
    free(cut);
    free(line.p);
    return true;
}
