/*
 * strmatch.c — string.find, match, gmatch and gsub for sandboxed scripts: Lua 5.4's pattern
 * language, matched by a backtracker of our own that counts its steps and asks the script's
 * limits between them. Lua's own matcher runs to the end inside one C call, where no hook
 * fires, so one `("a"):rep(1e5):find(".-.-.-b")` held the engine for minutes.
 */
#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "lua_internal.h"

#define ESC '%'
#define SPECIALS "^$*+?.([%-"
#define MAX_CAPTURES 32    /* as Lua's own matcher */
#define MAX_DEPTH 200      /* recursion of the matcher ("pattern too complex" beyond) */
#define CHECK_EVERY 4096   /* steps between two looks at the limits */
#define CAP_UNFINISHED (-1)
#define CAP_POSITION (-2)

typedef struct {
    lua_State *L;
    const char *src, *src_end; /* the subject */
    const char *pat_end;
    int level;                 /* captures open or closed */
    int depth;                 /* recursion left */
    unsigned steps;            /* since the last look at the limits */
    struct {
        const char *init;
        ptrdiff_t len;         /* or CAP_UNFINISHED, CAP_POSITION */
    } cap[MAX_CAPTURES];
} mstate_t;

/* Counts @p n steps of work; every CHECK_EVERY, the limits may stop the call here. */
static inline void tick(mstate_t *m, size_t n)
{
    m->steps += (unsigned)(n < CHECK_EVERY ? n : CHECK_EVERY);
    if (m->steps >= CHECK_EVERY) {
        rp__lua_check_limits(m->L, m->steps);
        m->steps = 0;
    }
}

static bool class_has(int c, int cl)
{
    bool r;
    switch (tolower(cl)) {
    case 'a': r = isalpha(c); break;
    case 'c': r = iscntrl(c); break;
    case 'd': r = isdigit(c); break;
    case 'g': r = isgraph(c); break;
    case 'l': r = islower(c); break;
    case 'p': r = ispunct(c); break;
    case 's': r = isspace(c); break;
    case 'u': r = isupper(c); break;
    case 'w': r = isalnum(c); break;
    case 'x': r = isxdigit(c); break;
    case 'z': r = c == 0; break; /* deprecated in Lua, still understood */
    default: return cl == c;
    }
    return isupper(cl) ? !r : r;
}

/* The end of the single-character class at @p p (one past it). */
static const char *class_end(mstate_t *m, const char *p)
{
    switch (*p++) {
    case ESC:
        if (p == m->pat_end)
            luaL_error(m->L, "malformed pattern (ends with '%%')");
        return p + 1;
    case '[':
        if (*p == '^')
            p++;
        do { /* the first character is taken as it is, so "[]]" is a set of "]" */
            if (p == m->pat_end)
                luaL_error(m->L, "malformed pattern (missing ']')");
            if (*(p++) == ESC && p < m->pat_end)
                p++;
        } while (*p != ']');
        return p + 1;
    default:
        return p;
    }
}

/* Whether @p c is in the set [p … ec], @p p at its '[' and @p ec at its ']'. */
static bool in_set(int c, const char *p, const char *ec)
{
    bool yes = true;
    if (p[1] == '^') {
        yes = false;
        p++;
    }
    while (++p < ec) {
        if (*p == ESC) {
            p++;
            if (class_has(c, (unsigned char)*p))
                return yes;
        } else if (p[1] == '-' && p + 2 < ec) {
            p += 2;
            if ((unsigned char)p[-2] <= c && c <= (unsigned char)*p)
                return yes;
        } else if ((unsigned char)*p == c) {
            return yes;
        }
    }
    return !yes;
}

static bool single(mstate_t *m, const char *s, const char *p, const char *ep)
{
    if (s >= m->src_end)
        return false;
    int c = (unsigned char)*s;
    switch (*p) {
    case '.': return true;
    case ESC: return class_has(c, (unsigned char)p[1]);
    case '[': return in_set(c, p, ep - 1);
    default: return (unsigned char)*p == c;
    }
}

static const char *do_match(mstate_t *m, const char *s, const char *p);

static const char *balance(mstate_t *m, const char *s, const char *p)
{
    if (p >= m->pat_end - 1)
        luaL_error(m->L, "malformed pattern (missing arguments to '%%b')");
    if (s >= m->src_end || *s != *p)
        return NULL;
    int open = *p, close = p[1], depth = 1;
    const char *from = s;
    while (++s < m->src_end) {
        if (*s == close) {
            if (--depth == 0) {
                tick(m, (size_t)(s - from));
                return s + 1;
            }
        } else if (*s == open) {
            depth++;
        }
    }
    tick(m, (size_t)(s - from));
    return NULL;
}

static const char *max_expand(mstate_t *m, const char *s, const char *p, const char *ep)
{
    ptrdiff_t i = 0;
    while (single(m, s + i, p, ep))
        i++;
    tick(m, (size_t)i);
    /* The longest run first, one shorter at each failure. */
    for (; i >= 0; i--) {
        const char *r = do_match(m, s + i, ep + 1);
        if (r)
            return r;
    }
    return NULL;
}

static const char *min_expand(mstate_t *m, const char *s, const char *p, const char *ep)
{
    for (;;) {
        const char *r = do_match(m, s, ep + 1);
        if (r)
            return r;
        if (!single(m, s, p, ep))
            return NULL;
        s++;
    }
}

static const char *start_capture(mstate_t *m, const char *s, const char *p, ptrdiff_t what)
{
    if (m->level >= MAX_CAPTURES)
        luaL_error(m->L, "too many captures");
    m->cap[m->level].init = s;
    m->cap[m->level].len = what;
    m->level++;
    const char *r = do_match(m, s, p);
    if (!r)
        m->level--;
    return r;
}

static const char *end_capture(mstate_t *m, const char *s, const char *p)
{
    int l = m->level - 1;
    while (l >= 0 && m->cap[l].len != CAP_UNFINISHED)
        l--;
    if (l < 0)
        luaL_error(m->L, "invalid pattern capture");
    m->cap[l].len = s - m->cap[l].init;
    const char *r = do_match(m, s, p);
    if (!r)
        m->cap[l].len = CAP_UNFINISHED;
    return r;
}

/* The index of closed capture "%<digit>" (its digit @p d). */
static int closed_capture(mstate_t *m, int d)
{
    int l = d - '1';
    if (l < 0 || l >= m->level || m->cap[l].len == CAP_UNFINISHED)
        luaL_error(m->L, "invalid capture index %%%d", l + 1);
    return l;
}

static const char *back_reference(mstate_t *m, const char *s, int d)
{
    int l = closed_capture(m, d);
    size_t len = (size_t)m->cap[l].len; /* a position capture is huge here: no match */
    if ((size_t)(m->src_end - s) >= len && memcmp(m->cap[l].init, s, len) == 0) {
        tick(m, len);
        return s + len;
    }
    return NULL;
}

/* The end of the match of pattern @p p at subject position @p s, or NULL. */
static const char *do_match(mstate_t *m, const char *s, const char *p)
{
    if (m->depth-- == 0)
        luaL_error(m->L, "pattern too complex");
    tick(m, 1);
    while (p != m->pat_end) {
        switch (*p) {
        case '(':
            s = p[1] == ')' ? start_capture(m, s, p + 2, CAP_POSITION)
                            : start_capture(m, s, p + 1, CAP_UNFINISHED);
            goto out;
        case ')':
            s = end_capture(m, s, p + 1);
            goto out;
        case '$':
            if (p + 1 != m->pat_end)
                goto item;
            s = s == m->src_end ? s : NULL;
            goto out;
        case ESC:
            if (p[1] == 'b') {
                if (!(s = balance(m, s, p + 2)))
                    goto out;
                p += 4;
                continue;
            }
            if (p[1] == 'f') {
                p += 2;
                if (*p != '[')
                    luaL_error(m->L, "missing '[' after '%%f' in pattern");
                const char *ep = class_end(m, p);
                int prev = s == m->src ? '\0' : (unsigned char)s[-1];
                int cur = s < m->src_end ? (unsigned char)*s : '\0';
                if (in_set(prev, p, ep - 1) || !in_set(cur, p, ep - 1)) {
                    s = NULL;
                    goto out;
                }
                p = ep;
                continue;
            }
            if (isdigit((unsigned char)p[1])) {
                if (!(s = back_reference(m, s, (unsigned char)p[1])))
                    goto out;
                p += 2;
                continue;
            }
            goto item;
        default:
        item: {
            const char *ep = class_end(m, p);
            if (!single(m, s, p, ep)) {
                if (*ep == '*' || *ep == '?' || *ep == '-') { /* may match empty */
                    p = ep + 1;
                    continue;
                }
                s = NULL;
                goto out;
            }
            switch (*ep) {
            case '?': {
                const char *r = do_match(m, s + 1, ep + 1);
                if (r) {
                    s = r;
                    goto out;
                }
                p = ep + 1;
                continue;
            }
            case '+': s = max_expand(m, s + 1, p, ep); goto out;
            case '*': s = max_expand(m, s, p, ep); goto out;
            case '-': s = min_expand(m, s, p, ep); goto out;
            default:
                s++;
                p = ep;
                continue;
            }
        }
        }
    }
out:
    m->depth++;
    return s;
}

static void prepare(mstate_t *m, lua_State *L, const char *s, size_t ls, const char *p,
                    size_t lp)
{
    m->L = L;
    m->src = s;
    m->src_end = s + ls;
    m->pat_end = p + lp;
    m->steps = 0;
}

static void restart(mstate_t *m)
{
    m->level = 0;
    m->depth = MAX_DEPTH;
}

/* Pushes capture @p i (the whole match [s, e) when there are none and i is 0). */
static void push_capture(mstate_t *m, int i, const char *s, const char *e)
{
    if (i >= m->level) {
        if (i != 0)
            luaL_error(m->L, "invalid capture index %%%d", i + 1);
        lua_pushlstring(m->L, s, (size_t)(e - s));
        return;
    }
    ptrdiff_t len = m->cap[i].len;
    if (len == CAP_UNFINISHED)
        luaL_error(m->L, "unfinished capture");
    if (len == CAP_POSITION)
        lua_pushinteger(m->L, (m->cap[i].init - m->src) + 1);
    else
        lua_pushlstring(m->L, m->cap[i].init, (size_t)len);
}

/* Pushes every capture, or the whole match when there are none and @p s is given. */
static int push_captures(mstate_t *m, const char *s, const char *e)
{
    int n = (m->level == 0 && s) ? 1 : m->level;
    luaL_checkstack(m->L, n, "too many captures");
    for (int i = 0; i < n; i++)
        push_capture(m, i, s, e);
    return n;
}

/* Lua's reading of a start position: 1-based, negative from the end, clamped at 1. */
static size_t start_at(lua_Integer pos, size_t len)
{
    if (pos > 0)
        return (size_t)pos;
    if (pos == 0 || pos < -(lua_Integer)len)
        return 1;
    return len + (size_t)pos + 1;
}

static bool no_specials(const char *p, size_t lp)
{
    for (size_t i = 0; i < lp; i++)
        if (p[i] && strchr(SPECIALS, p[i]))
            return false;
    return true;
}

static int find_or_match(lua_State *L, bool find)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = start_at(luaL_optinteger(L, 3, 1), ls) - 1;
    if (init > ls) {
        luaL_pushfail(L);
        return 1;
    }
    if (find && (lua_toboolean(L, 4) || no_specials(p, lp))) {
        /* memmem is linear; a naive search is quadratic on "aaaa…" against "aa…ab". */
        const char *at = memmem(s + init, ls - init, p, lp);
        if (at) {
            lua_pushinteger(L, (at - s) + 1);
            lua_pushinteger(L, (lua_Integer)((at - s) + (ptrdiff_t)lp));
            return 2;
        }
        luaL_pushfail(L);
        return 1;
    }
    mstate_t m;
    bool anchor = lp > 0 && *p == '^';
    if (anchor) {
        p++;
        lp--;
    }
    prepare(&m, L, s, ls, p, lp);
    const char *from = s + init;
    do {
        restart(&m);
        const char *e = do_match(&m, from, p);
        if (e) {
            if (!find)
                return push_captures(&m, from, e);
            lua_pushinteger(L, (from - s) + 1);
            lua_pushinteger(L, e - s);
            return push_captures(&m, NULL, NULL) + 2;
        }
        tick(&m, 1);
    } while (from++ < m.src_end && !anchor);
    luaL_pushfail(L);
    return 1;
}

static int str_find(lua_State *L)
{
    return find_or_match(L, true);
}

static int str_match(lua_State *L)
{
    return find_or_match(L, false);
}

typedef struct {
    const char *src, *p, *last;
    mstate_t m;
} gmatch_t;

static int gmatch_next(lua_State *L)
{
    gmatch_t *g = lua_touserdata(L, lua_upvalueindex(3));
    g->m.L = L; /* the thread that calls the iterator now */
    for (const char *from = g->src; from <= g->m.src_end; from++) {
        restart(&g->m);
        const char *e = do_match(&g->m, from, g->p);
        if (e && e != g->last) {
            g->src = g->last = e;
            return push_captures(&g->m, from, e);
        }
    }
    return 0;
}

static int str_gmatch(lua_State *L)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = start_at(luaL_optinteger(L, 3, 1), ls) - 1;
    lua_settop(L, 2); /* the strings stay alive as the closure's upvalues */
    gmatch_t *g = lua_newuserdatauv(L, sizeof *g, 0);
    if (init > ls)
        init = ls + 1;
    prepare(&g->m, L, s, ls, p, lp);
    g->src = s + init;
    g->p = p;
    g->last = NULL;
    lua_pushcclosure(L, gmatch_next, 3);
    return 1;
}

/* Appends replacement string (argument 3) for the match [s, e), its %0-%9 and %% read. */
static void add_string(mstate_t *m, luaL_Buffer *b, const char *s, const char *e)
{
    lua_State *L = m->L;
    size_t l;
    const char *news = lua_tolstring(L, 3, &l);
    const char *p;
    while ((p = memchr(news, ESC, l)) != NULL) {
        luaL_addlstring(b, news, (size_t)(p - news));
        p++;
        if (*p == ESC) {
            luaL_addchar(b, *p);
        } else if (*p == '0') {
            luaL_addlstring(b, s, (size_t)(e - s));
        } else if (isdigit((unsigned char)*p)) {
            push_capture(m, *p - '1', s, e);
            luaL_tolstring(L, -1, NULL);
            lua_remove(L, -2);
            luaL_addvalue(b);
        } else {
            luaL_error(L, "invalid use of '%c' in replacement string", ESC);
        }
        l -= (size_t)(p + 1 - news);
        news = p + 1;
    }
    luaL_addlstring(b, news, l);
}

/* Appends the replacement for the match [s, e); false when the original text was kept. */
static bool add_value(mstate_t *m, luaL_Buffer *b, const char *s, const char *e, int tr)
{
    lua_State *L = m->L;
    if (tr == LUA_TFUNCTION) {
        lua_pushvalue(L, 3);
        int n = push_captures(m, s, e);
        lua_call(L, n, 1);
    } else if (tr == LUA_TTABLE) {
        push_capture(m, 0, s, e);
        lua_gettable(L, 3);
    } else {
        add_string(m, b, s, e);
        return true;
    }
    if (!lua_toboolean(L, -1)) {
        lua_pop(L, 1);
        luaL_addlstring(b, s, (size_t)(e - s));
        return false;
    }
    if (!lua_isstring(L, -1))
        luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    luaL_addvalue(b);
    return true;
}

static int str_gsub(lua_State *L)
{
    size_t ls, lp;
    const char *src = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    const char *last = NULL;
    int tr = lua_type(L, 3);
    lua_Integer max = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
    luaL_argexpected(L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION ||
                            tr == LUA_TTABLE,
                     3, "string/function/table");
    bool anchor = lp > 0 && *p == '^';
    if (anchor) {
        p++;
        lp--;
    }
    mstate_t m;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    prepare(&m, L, src, ls, p, lp);
    lua_Integer n = 0;
    bool changed = false;
    while (n < max) {
        restart(&m);
        const char *e = do_match(&m, src, p);
        if (e && e != last) {
            n++;
            changed = add_value(&m, &b, src, e, tr) || changed;
            src = last = e;
        } else if (src < m.src_end) {
            luaL_addchar(&b, *src++);
        } else {
            break;
        }
        if (anchor)
            break;
        tick(&m, 1);
    }
    if (!changed) {
        lua_pushvalue(L, 1);
    } else {
        luaL_addlstring(&b, src, (size_t)(m.src_end - src));
        luaL_pushresult(&b);
    }
    lua_pushinteger(L, n);
    return 2;
}

void rp__lua_open_strmatch(lua_State *L)
{
    static const luaL_Reg fns[] = {{"find", str_find},     {"match", str_match},
                                   {"gmatch", str_gmatch}, {"gsub", str_gsub},
                                   {NULL, NULL}};
    lua_getglobal(L, "string");
    luaL_setfuncs(L, fns, 0);
    lua_pop(L, 1);
}
