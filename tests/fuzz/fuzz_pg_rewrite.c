/*
 * fuzz_pg_rewrite.c — libFuzzer target for the PostgreSQL driver's parameter rewrite
 * (core/db/pg.c): any text, SQLite's `?`, `?N`, `:name` and `@name` written as `$N`, with string
 * literals (also E'…' and $tag$…$tag$), quoted names, comments, casts and slices left alone.
 * Checks: no memory error; a text with no parameter mark comes back unchanged; the output is
 * no longer than each mark grown by five characters; there are no more parameters than marks,
 * and never more than PostgreSQL's 65,535.
 * With -DRP_FUZZ_STANDALONE it gets a main() that runs each file named on the command line once.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *sql = malloc(size + 1);
    if (!sql)
        return 0;
    memcpy(sql, data, size);
    sql[size] = '\0';
    size_t len = strlen(sql), marks = 0;
    for (size_t i = 0; i < len; i++)
        marks += sql[i] == '?' || sql[i] == ':' || sql[i] == '@';
    int n = -1;
    char *out = rp__pg_rewrite(sql, &n);
    if (out) {
        size_t olen = strlen(out);
        if (olen > len + marks * 5 || n < 0 || (size_t)n > marks || n > 65535 ||
            (marks == 0 && strcmp(out, sql) != 0)) {
            fprintf(stderr, "fuzz_pg_rewrite: %zu marks, %d parameters, %zu -> %zu bytes:\n"
                            "  in  %s\n  out %s\n", marks, n, len, olen, sql, out);
            abort();
        }
        free(out);
    } else if (marks == 0) {
        fprintf(stderr, "fuzz_pg_rewrite: a text with no parameter refused: %s\n", sql);
        abort();
    }
    free(sql);
    return 0;
}

#ifdef RP_FUZZ_STANDALONE
#include "standalone.h"
#endif
