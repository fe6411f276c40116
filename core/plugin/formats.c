/*
 * formats.c — the import/export formats plugins register (api->format), found by name or by a
 * file's ending, and the two ways through them: a reader that hands records to an import, and
 * a writer called for the head, each record and the tail of an export.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "host.h"

/* The engine's own formats (core/cli/io.c): no plugin may take their names. */
static const char *const builtin[] = {"csv", "jsonl", NULL};

static int refuse_format(rapport_host *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int refuse_format(rapport_host *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->last_error, sizeof h->last_error, fmt, ap);
    va_end(ap);
    return RAPPORT_EINVAL;
}

static const reg_t *find_format(const rp_plugins_t *P, const char *name)
{
    for (const reg_t *r = P ? P->regs : NULL; r; r = r->next)
        if (r->kind == 7 && strcmp(r->name, name) == 0)
            return r;
    return NULL;
}

static bool name_ok(const char *n)
{
    if (!n || !*n || strlen(n) > 32)
        return false;
    for (const char *p = n; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
            return false;
    return true;
}

int rp__plugin_format(rapport_host *h, const rapport_format *f, void *ud)
{
    if (!f || !name_ok(f->name))
        return refuse_format(h, "a format needs a name of lower-case letters and digits (got "
                                "\"%s\")", f && f->name ? f->name : "");
    if (!f->reader && !f->writer)
        return refuse_format(h, "format %s needs a reader, a writer or both", f->name);
    if (f->extensions && strlen(f->extensions) >= sizeof ((reg_t *)0)->exts)
        return refuse_format(h, "format %s: the file endings \"%s\" are too long", f->name,
                             f->extensions);
    for (int i = 0; builtin[i]; i++)
        if (strcmp(builtin[i], f->name) == 0)
            return refuse_format(h, "format %s is the engine's own", f->name);
    const reg_t *dup = find_format(h->P, f->name);
    if (dup)
        return refuse_format(h, "format %s is already registered by plugin %s", f->name,
                             dup->h->desc->name);
    reg_t *r = rp__plugin_reg(h, 7, ud, f->name);
    if (!r)
        return refuse_format(h, "out of memory");
    r->reader = f->reader;
    r->writer = f->writer;
    snprintf(r->exts, sizeof r->exts, "%s", f->extensions ? f->extensions : "");
    snprintf(r->help, sizeof r->help, "%s", f->description ? f->description : "");
    json_array_append_new(h->formats, json_sprintf("%s (%s%s%s)", f->name,
                                                   f->reader ? "import" : "",
                                                   f->reader && f->writer ? ", " : "",
                                                   f->writer ? "export" : ""));
    return 0;
}

/* Whether @p path ends in one of the space-separated endings of @p exts, in any case. */
static bool ends_in(const char *path, const char *exts)
{
    size_t n = strlen(path);
    for (const char *e = exts; *e;) {
        while (*e == ' ')
            e++;
        size_t l = strcspn(e, " ");
        if (l && l < n && strncasecmp(path + n - l, e, l) == 0)
            return true;
        e += l;
    }
    return false;
}

static bool fits(const reg_t *r, bool for_import)
{
    return for_import ? r->reader != NULL : r->writer != NULL;
}

const char *rp_plugins_format(const rp_plugins_t *P, const char *name, const char *path,
                              bool for_import)
{
    if (name) {
        const reg_t *r = find_format(P, name);
        return r && fits(r, for_import) ? r->name : NULL;
    }
    for (const reg_t *r = P && path ? P->regs : NULL; r; r = r->next)
        if (r->kind == 7 && fits(r, for_import) && ends_in(path, r->exts))
            return r->name;
    return NULL;
}

void rp_plugins_format_names(const rp_plugins_t *P, bool for_import, char *buf, size_t cap)
{
    const char *names[32];
    int n = 0;
    /* In the order the plugins registered them (the list is newest first). */
    for (const reg_t *r = P ? P->regs : NULL; r && n < 32; r = r->next)
        if (r->kind == 7 && fits(r, for_import))
            names[n++] = r->name;
    size_t len = 0;
    buf[0] = '\0';
    for (int i = n - 1; i >= 0 && len < cap; i--)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i == 0 ? " and " : ", ", names[i]);
}

/* ---- import ----------------------------------------------------------------------------- */

typedef struct sink {
    rp_format_sink_fn fn;
    void *ud;
    const char *entity;
} sink_t;

static int to_sink(void *ud, const char *record, long line)
{
    sink_t *k = ud;
    json_t *j = record ? json_loads(record, 0, NULL) : NULL;
    if (!json_is_object(j)) {
        json_decref(j);
        return 1; /* a reader that hands no object is broken: stop it */
    }
    return k->fn(k->ud, j, line);
}

int rp_plugins_import(rp_plugins_t *P, const char *format, const char *entity,
                      const char *text, size_t len, rp_format_sink_fn sink, void *ud,
                      rp_error_t *err)
{
    const reg_t *r = format ? find_format(P, format) : NULL;
    if (!r || !r->reader)
        return rp_error_set(err, RP_ENOTFOUND, RP_C_PLUGIN, "no plugin reads format \"%s\"",
                            format ? format : "");
    sink_t k = {sink, ud, entity};
    char msg[512] = "";
    int rc = r->reader(r->h, &rp__plugin_api, entity, text, len, to_sink, &k, r->ud, msg,
                       sizeof msg);
    if (rc)
        return rp_error_set(err, rc < 0 ? rc : RP_EINVAL, 0, "%s",
                            msg[0] ? msg : "the file is not in this format");
    return 0;
}

/* ---- export ----------------------------------------------------------------------------- */

struct rp_export {
    const reg_t *r;
    rapport_export x;
    char *fields;
};

/* One call of the writer; *out gets its text (owned). */
static int write_part(rp_export_t *e, int phase, const char *record, char **out,
                      rp_error_t *err)
{
    char msg[512] = "";
    e->x.phase = phase;
    e->x.record = record;
    *out = NULL;
    int rc = e->r->writer(e->r->h, &rp__plugin_api, &e->x, out, e->r->ud, msg, sizeof msg);
    if (rc) {
        free(*out);
        *out = NULL;
        return rp_error_set(err, rc < 0 ? rc : RP_EINVAL, 0, "%s",
                            msg[0] ? msg : "the format could not write the record");
    }
    return 0;
}

int rp_plugins_export_begin(rp_plugins_t *P, const char *format, const char *entity,
                            json_t *fields, bool filtered, rp_export_t **x, char **head,
                            rp_error_t *err)
{
    *x = NULL;
    *head = NULL;
    const reg_t *r = format ? find_format(P, format) : NULL;
    if (!r || !r->writer)
        return rp_error_set(err, RP_ENOTFOUND, RP_C_PLUGIN, "no plugin writes format \"%s\"",
                            format ? format : "");
    rp_export_t *e = calloc(1, sizeof *e);
    if (!e)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    e->r = r;
    e->fields = json_dumps(fields, JSON_COMPACT);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    e->x = (rapport_export){.entity = entity, .fields = e->fields ? e->fields : "{}",
                            .filtered = filtered,
                            .now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000};
    int rc = write_part(e, RAPPORT_EXPORT_BEGIN, NULL, head, err);
    if (rc) {
        free(e->fields);
        free(e);
        return rc;
    }
    *x = e;
    return 0;
}

int rp_plugins_export_record(rp_export_t *x, json_t *record, char **text, rp_error_t *err)
{
    char *rec = json_dumps(record, JSON_COMPACT);
    if (!rec) {
        *text = NULL;
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    }
    int rc = write_part(x, RAPPORT_EXPORT_RECORD, rec, text, err);
    free(rec);
    return rc;
}

int rp_plugins_export_end(rp_export_t *x, bool failed, char **tail, rp_error_t *err)
{
    *tail = NULL;
    if (!x)
        return 0;
    x->x.failed = failed;
    int rc = write_part(x, RAPPORT_EXPORT_END, NULL, tail, err);
    if (failed) {
        free(*tail);
        *tail = NULL;
    }
    free(x->fields);
    free(x);
    return failed ? 0 : rc;
}
