/*
 * dump.h — which lines of a Lua 5.4 chunk hold code, read from its binary dump (lua_dump,
 * not stripped): every nested function's line info, including functions never called, which
 * the debug API's activelines sees only for a function in hand. Coverage's denominator.
 */
#ifndef RAPPORT_LUA_DUMP_H
#define RAPPORT_LUA_DUMP_H

#include <stddef.h>

/** The largest line number a dump may name (a script of 16 million lines is not a script). */
#define RP_DUMP_MAX_LINE (1 << 24)

/**
 * Reads the dump @p buf (@p n bytes) of a Lua 5.4 chunk and marks the lines that hold code, as
 * Lua's own activelines does for each function (the varargs preparation of a vararg function
 * is not a line of its own). *lines gets a malloc'd array of *nlines + 1 flags, lines[k] = 1
 * when line k holds code (owned: free()). Returns 0, or -1 with a sentence in @p why (@p cap
 * bytes) when the bytes are not such a dump (another version or number format, stripped,
 * truncated, or inconsistent); nothing is allocated then.
 */
int rp__lua_dump_lines(const unsigned char *buf, size_t n, unsigned char **lines, int *nlines,
                       char *why, size_t cap);

#endif
