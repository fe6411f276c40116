/*
 * coverage.c — `rapport test --coverage`: counts the lines of script files that run while
 * tests run (a line hook, set only on states made with a coverage count), and reports them
 * against the lines that hold code, read from each file's compiled chunk (dump.c).
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "dump.h"
#include "lua_internal.h"

typedef struct {
    char *path;       /* the file, as its chunk names it (after the '@') */
    uint32_t *hits;   /* hits[k]: how many times line k ran */
    int cap;
} cov_file_t;

struct rp_lua_cov {
    cov_file_t *files;
    int n, cap;
    int last;         /* the file the previous line was in: most lines follow one of theirs */
    bool oom;
};

rp_lua_cov_t *rp_lua_cov_new(void)
{
    rp_lua_cov_t *c = calloc(1, sizeof *c);
    if (c)
        c->last = -1;
    return c;
}

void rp_lua_cov_free(rp_lua_cov_t *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n; i++) {
        free(c->files[i].path);
        free(c->files[i].hits);
    }
    free(c->files);
    free(c);
}

static cov_file_t *file_of(rp_lua_cov_t *c, const char *path)
{
    if (c->last >= 0 && strcmp(c->files[c->last].path, path) == 0)
        return &c->files[c->last];
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->files[i].path, path) == 0)
            return &c->files[c->last = i];
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 8;
        cov_file_t *grown = realloc(c->files, sizeof *grown * (size_t)cap);
        if (!grown)
            return NULL;
        c->files = grown;
        c->cap = cap;
    }
    char *copy = strdup(path);
    if (!copy)
        return NULL;
    c->files[c->n] = (cov_file_t){.path = copy};
    return &c->files[c->last = c->n++];
}

void rp__lua_cov_line(rp_lua_cov_t *c, lua_State *L, lua_Debug *ar)
{
    int line = ar->currentline;
    /* Only files: "=sandbox", the test prelude and load()'s strings are no script's lines. */
    if (line <= 0 || line > RP_DUMP_MAX_LINE || !lua_getinfo(L, "S", ar) || ar->source[0] != '@')
        return;
    cov_file_t *f = file_of(c, ar->source + 1);
    if (!f) {
        c->oom = true;
        return;
    }
    if (line >= f->cap) {
        int cap = f->cap ? f->cap : 256;
        while (cap <= line)
            cap *= 2;
        uint32_t *grown = realloc(f->hits, sizeof *grown * (size_t)cap);
        if (!grown) {
            c->oom = true;
            return;
        }
        memset(grown + f->cap, 0, sizeof *grown * (size_t)(cap - f->cap));
        f->hits = grown;
        f->cap = cap;
    }
    if (f->hits[line] < UINT32_MAX)
        f->hits[line]++;
}

/* ---- the report ---------------------------------------------------------------------------- */

typedef struct {
    unsigned char *p;
    size_t n, cap;
} buf_t;

static int writer(lua_State *L, const void *p, size_t sz, void *ud)
{
    (void)L;
    buf_t *b = ud;
    if (b->n + sz > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + sz)
            cap *= 2;
        unsigned char *grown = realloc(b->p, cap);
        if (!grown)
            return 1;
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, sz);
    b->n += sz;
    return 0;
}

/* The lines of @p path that hold code: the file compiled afresh in a plain state (as the
 * loader compiles it: text, named "@path") and its dump read back. */
static int code_lines(const char *path, unsigned char **lines, int *nlines, rp_error_t *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return rp_error_set(err, RP_ENOTFOUND, 0, "cannot read %s again: %s", path,
                            strerror(errno));
    buf_t src = {0};
    char chunk[8192];
    size_t got;
    int rc = 0;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (writer(NULL, chunk, got, &src)) {
            rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
            break;
        }
    fclose(f);
    lua_State *L = rc ? NULL : luaL_newstate();
    if (!rc && !L)
        rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    if (rc) {
        free(src.p);
        return rc;
    }
    char name[PATH_MAX + 2];
    snprintf(name, sizeof name, "@%s", path);
    buf_t dump = {0};
    if (luaL_loadbufferx(L, src.p ? (char *)src.p : "", src.n, name, "t") != LUA_OK)
        rc = rp_error_set(err, RP_EINVAL, 0, "%s no longer compiles: %s", path,
                          lua_tostring(L, -1));
    else if (lua_dump(L, writer, &dump, 0) != 0)
        rc = rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    lua_close(L);
    free(src.p);
    char why[200];
    if (!rc && rp__lua_dump_lines(dump.p, dump.n, lines, nlines, why, sizeof why))
        rc = rp_error_set(err, RP_EINVAL, 0, "the compiled chunk of %s: %s", path, why);
    free(dump.p);
    return rc;
}

static bool is_test_file(const char *path)
{
    size_t n = strlen(path);
    return n >= 9 && strcmp(path + n - 9, "_test.lua") == 0;
}

static int cmp_file(const void *a, const void *b)
{
    return strcmp(((const cov_file_t *)a)->path, ((const cov_file_t *)b)->path);
}

static uint32_t hits_at(const cov_file_t *f, int line)
{
    return line < f->cap ? f->hits[line] : 0;
}

/* "7-9, 14": runs of missed lines, a run going on over lines that hold no code. */
static void missed_ranges(const cov_file_t *f, const unsigned char *code, int n, FILE *out)
{
    int from = 0, to = 0;
    const char *sep = "";
    for (int k = 1; k <= n; k++) {
        if (!code[k])
            continue;
        if (hits_at(f, k) == 0) {
            from = from ? from : k;
            to = k;
        } else if (from) {
            fprintf(out, from == to ? "%s%d" : "%s%d-%d", sep, from, to);
            sep = ", ";
            from = 0;
        }
    }
    if (from)
        fprintf(out, from == to ? "%s%d" : "%s%d-%d", sep, from, to);
}

static void lcov_record(FILE *lc, const cov_file_t *f, const unsigned char *code, int n,
                        int hit, int total)
{
    char real[PATH_MAX];
    fprintf(lc, "TN:\nSF:%s\n", realpath(f->path, real) ? real : f->path);
    for (int k = 1; k <= n; k++)
        if (code[k])
            fprintf(lc, "DA:%d,%u\n", k, hits_at(f, k));
    fprintf(lc, "LF:%d\nLH:%d\nend_of_record\n", total, hit);
}

int rp_lua_cov_report(rp_lua_cov_t *c, FILE *summary, const char *lcov_path, rp_error_t *err)
{
    if (c->oom)
        return rp_error_set(err, RP_ENOMEM, 0, "coverage: out of memory while counting lines");
    FILE *lc = NULL;
    if (lcov_path && !(lc = fopen(lcov_path, "w")))
        return rp_error_set(err, RP_EIO, 0, "coverage: cannot write %s: %s", lcov_path,
                            strerror(errno));
    if (c->n > 1)
        qsort(c->files, (size_t)c->n, sizeof *c->files, cmp_file);
    c->last = -1;
    int all = 0, all_hit = 0, shown = 0;
    fprintf(summary, "coverage: lines run of the lines that hold code\n");
    for (int i = 0; i < c->n; i++) {
        const cov_file_t *f = &c->files[i];
        unsigned char *code = NULL;
        int n = 0, total = 0, hit = 0;
        if (is_test_file(f->path))
            continue;
        rp_error_t why = {0};
        if (code_lines(f->path, &code, &n, &why)) {
            /* A file gone or changed since it ran (or a load() chunk named like a file): said,
             * and the other files are still reported. */
            fprintf(summary, "  %s  not measured: %s\n", f->path, why.msg);
            continue;
        }
        for (int k = 1; k <= n; k++)
            if (code[k]) {
                total++;
                hit += hits_at(f, k) > 0;
            }
        fprintf(summary, "  %s  %d/%d  %.1f%%", f->path, hit, total,
                total ? 100.0 * hit / total : 100.0);
        if (hit < total) {
            fprintf(summary, "  missed ");
            missed_ranges(f, code, n, summary);
        }
        fputc('\n', summary);
        if (lc)
            lcov_record(lc, f, code, n, hit, total);
        all += total;
        all_hit += hit;
        shown++;
        free(code);
    }
    fprintf(summary, "  total  %d/%d  %.1f%% in %d file%s\n", all_hit, all,
            all ? 100.0 * all_hit / all : 100.0, shown, shown == 1 ? "" : "s");
    if (lc && fclose(lc) != 0)
        return rp_error_set(err, RP_EIO, 0, "coverage: cannot write %s", lcov_path);
    if (lcov_path)
        fprintf(summary, "lcov tracefile: %s\n", lcov_path);
    return 0;
}
