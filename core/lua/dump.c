/*
 * dump.c — reads a Lua 5.4 binary chunk (ldump.c's format) far enough to know which lines
 * hold code: the line info of the main function and of every function nested in it. The bytes
 * are not trusted: every size is checked against what is left before it is used.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dump.h"

#define ABSLINEINFO (-0x80) /* lineinfo's "see abslineinfo" mark (ldebug.h) */
#define MAX_DEPTH 200       /* Lua's own limit on nested functions (LUAI_MAXCCALLS) */

/* Constant tags (lobject.h's makevariant of lua.h's basic types). */
enum { K_NIL = 0x00, K_FALSE = 0x01, K_TRUE = 0x11, K_INT = 0x03, K_FLT = 0x13,
       K_SHRSTR = 0x04, K_LNGSTR = 0x14 };

typedef struct {
    const unsigned char *p, *end;
    unsigned char *lines; /* lines[k]: line k holds code */
    int cap;              /* entries in lines */
    int max;              /* the highest line marked */
    char *why;
    size_t whycap;
} rd_t;

static int bad(rd_t *r, const char *fmt, ...)
{
    if (r->why && r->whycap && !r->why[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->why, r->whycap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static size_t left(const rd_t *r)
{
    return (size_t)(r->end - r->p);
}

static int take(rd_t *r, size_t n, const char *what)
{
    if (n > left(r))
        return bad(r, "the dump ends inside %s", what);
    r->p += n;
    return 0;
}

static int byte(rd_t *r, unsigned char *b, const char *what)
{
    if (left(r) < 1)
        return bad(r, "the dump ends inside %s", what);
    *b = *r->p++;
    return 0;
}

/* ldump.c's dumpSize: 7 bits a byte, most significant first, the last byte marked 0x80. */
static int size(rd_t *r, size_t limit, size_t *out, const char *what)
{
    size_t x = 0;
    unsigned char b = 0;
    do {
        if (byte(r, &b, what))
            return -1;
        if (x >= (limit >> 7))
            return bad(r, "%s is too large", what);
        x = (x << 7) | (b & 0x7f);
    } while (!(b & 0x80));
    *out = x;
    return 0;
}

static int integer(rd_t *r, int *out, const char *what)
{
    size_t x = 0;
    if (size(r, INT_MAX, &x, what))
        return -1;
    *out = (int)x;
    return 0;
}

/* A count of items of at least @p each bytes: more than the bytes left is a lie. */
static int count(rd_t *r, size_t each, int *out, const char *what)
{
    if (integer(r, out, what))
        return -1;
    if ((size_t)*out > left(r) / each)
        return bad(r, "%s says %d, more than the %zu bytes left hold", what, *out, left(r));
    return 0;
}

static int string(rd_t *r, const char *what)
{
    size_t n = 0;
    if (size(r, SIZE_MAX, &n, what))
        return -1;
    return n == 0 ? 0 : take(r, n - 1, what);
}

static int mark(rd_t *r, int line)
{
    if (line < 0 || line > RP_DUMP_MAX_LINE)
        return bad(r, "the line info names line %d", line);
    if (line >= r->cap) {
        int cap = r->cap ? r->cap : 256;
        while (cap <= line)
            cap *= 2;
        unsigned char *grown = realloc(r->lines, (size_t)cap);
        if (!grown)
            return bad(r, "out of memory");
        memset(grown + r->cap, 0, (size_t)(cap - r->cap));
        r->lines = grown;
        r->cap = cap;
    }
    r->lines[line] = 1;
    if (line > r->max)
        r->max = line;
    return 0;
}

static int constants(rd_t *r)
{
    int n = 0;
    if (count(r, 1, &n, "the constants' count"))
        return -1;
    for (int i = 0; i < n; i++) {
        unsigned char tt = 0;
        if (byte(r, &tt, "a constant"))
            return -1;
        int rc = 0;
        switch (tt) {
        case K_NIL: case K_FALSE: case K_TRUE:
            break;
        case K_INT: case K_FLT:
            rc = take(r, 8, "a number constant");
            break;
        case K_SHRSTR: case K_LNGSTR:
            rc = string(r, "a string constant");
            break;
        default:
            return bad(r, "constant %d has an unknown type tag 0x%02x", i, tt);
        }
        if (rc)
            return -1;
    }
    return 0;
}

typedef struct { int pc, line; } absline_t;

/* Marks the lines of one function's instructions, as ldebug.c's collectvalidlines walks them. */
static int walk_lines(rd_t *r, int linedefined, bool vararg, const signed char *li, int n,
                      const absline_t *abs, int nabs)
{
    int cur = linedefined, a = 0;
    for (int pc = 0; pc < n; pc++) {
        if (li[pc] != ABSLINEINFO) {
            cur += li[pc];
        } else {
            while (a < nabs && abs[a].pc < pc)
                a++;
            if (a == nabs || abs[a].pc != pc)
                return bad(r, "instruction %d points at an absolute line that is not there", pc);
            cur = abs[a].line;
        }
        /* A vararg function's first instruction (OP_VARARGPREP) raises no line event. */
        if ((pc > 0 || !vararg) && cur != 0 && mark(r, cur))
            return -1;
    }
    return 0;
}

static int function(rd_t *r, int depth);

static int protos(rd_t *r, int depth)
{
    int n = 0;
    if (count(r, 1, &n, "the nested functions' count"))
        return -1;
    for (int i = 0; i < n; i++)
        if (function(r, depth + 1))
            return -1;
    return 0;
}

static int function(rd_t *r, int depth)
{
    if (depth > MAX_DEPTH)
        return bad(r, "functions nest deeper than %d", MAX_DEPTH);
    int linedefined = 0, lastline = 0, ncode = 0, nup = 0, nli = 0, nabs = 0, n = 0;
    unsigned char hdr[3] = {0};
    if (string(r, "the source name") || integer(r, &linedefined, "the first line") ||
        integer(r, &lastline, "the last line") || byte(r, &hdr[0], "the header") ||
        byte(r, &hdr[1], "the header") || byte(r, &hdr[2], "the header"))
        return -1;
    if (count(r, 4, &ncode, "the code size") || take(r, (size_t)ncode * 4, "the code") ||
        constants(r) || count(r, 3, &nup, "the upvalues' count") ||
        take(r, (size_t)nup * 3, "the upvalues") || protos(r, depth) ||
        count(r, 1, &nli, "the line info's size"))
        return -1;
    if (ncode > 0 && nli == 0)
        return bad(r, "the dump is stripped of its line info");
    if (nli != ncode)
        return bad(r, "line info for %d instructions, but %d instructions", nli, ncode);
    const signed char *li = (const signed char *)r->p;
    r->p += nli;
    if (count(r, 2, &nabs, "the absolute line info's count"))
        return -1;
    absline_t *abs = nabs ? malloc(sizeof *abs * (size_t)nabs) : NULL;
    if (nabs && !abs)
        return bad(r, "out of memory");
    int rc = 0;
    for (int i = 0; i < nabs && !rc; i++)
        rc = integer(r, &abs[i].pc, "an absolute line's instruction") ||
             integer(r, &abs[i].line, "an absolute line");
    if (!rc)
        rc = walk_lines(r, linedefined, hdr[1] != 0, li, nli, abs, nabs);
    free(abs);
    if (rc || count(r, 3, &n, "the local variables' count"))
        return -1;
    for (int i = 0; i < n; i++) {
        int pc = 0;
        if (string(r, "a local's name") || integer(r, &pc, "a local's start") ||
            integer(r, &pc, "a local's end"))
            return -1;
    }
    if (count(r, 1, &n, "the upvalue names' count"))
        return -1;
    for (int i = 0; i < n; i++)
        if (string(r, "an upvalue's name"))
            return -1;
    return 0;
}

/* The header lundump.c checks: signature, version, format, the conversion-check bytes, and
 * the sizes and encodings of instructions, integers and floats. */
static int header(rd_t *r)
{
    static const unsigned char want[] = {0x1b, 'L', 'u', 'a', 0x54, 0, 0x19, 0x93, '\r', '\n',
                                         0x1a, '\n', 4, 8, 8};
    if (left(r) < sizeof want + 16 + 1)
        return bad(r, "%zu bytes are too few for a Lua 5.4 dump", left(r));
    if (memcmp(r->p, want, 4) != 0)
        return bad(r, "not a Lua binary chunk (no \\x1bLua signature)");
    if (r->p[4] != 0x54 || r->p[5] != 0)
        return bad(r, "a dump of Lua version %d.%d, format %d; this reads 5.4, format 0",
                   r->p[4] >> 4, r->p[4] & 15, r->p[5]);
    if (memcmp(r->p, want, sizeof want) != 0)
        return bad(r, "a dump made for another machine (its check bytes or sizes differ)");
    r->p += sizeof want;
    long long i;
    double d;
    memcpy(&i, r->p, 8);
    memcpy(&d, r->p + 8, 8);
    if (i != 0x5678 || d != 370.5)
        return bad(r, "a dump made for another machine (its integer or float format differs)");
    r->p += 16;
    r->p++; /* the main function's upvalue count */
    return 0;
}

int rp__lua_dump_lines(const unsigned char *buf, size_t n, unsigned char **lines, int *nlines,
                       char *why, size_t cap)
{
    rd_t r = {.p = buf, .end = buf + n, .why = why, .whycap = cap};
    if (why && cap)
        why[0] = '\0';
    *lines = NULL;
    *nlines = 0;
    if (!buf)
        return bad(&r, "no dump to read");
    if (header(&r) || function(&r, 0)) {
        free(r.lines);
        return -1;
    }
    if (r.p != r.end) {
        free(r.lines);
        return bad(&r, "%zu bytes follow the end of the dump", left(&r));
    }
    if (!r.lines && !(r.lines = calloc(1, 1))) /* an empty chunk: an array all the same */
        return bad(&r, "out of memory");
    *lines = r.lines;
    *nlines = r.max;
    return 0;
}
