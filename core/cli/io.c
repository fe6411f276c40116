/*
 * io.c — `rapport import`: CSV (RFC 4180, through libcsv), JSON lines, and the formats plugins
 * register (the operational plugin's vCard); the format helpers export shares (io.h).
 *
 * An import goes through the store's one write path, in batches, so the before-hooks (batch
 * hooks included), the events and the search index all apply, as for any other write. The
 * whole file is one transaction: it goes in whole, or (with --skip-bad) its good rows go in and
 * the bad ones go to a reject file with their reasons; a bad row is never dropped silently.
 * Memory stays bounded: rows are read, stored and let go a batch at a time.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <csv.h>

#include "cli.h"
#include "io.h"
#include "rapport/access.h"

#define BATCH 1000
#define SHOW_ERRORS 20 /* bad rows printed one by one; the rest are counted */

static const char *const system_cols[] = {"id",         "created_at", "updated_at", "version",
                                          "created_by", "updated_by", "deleted_at", NULL};

bool is_system(const char *name)
{
    for (int i = 0; system_cols[i]; i++)
        if (strcmp(system_cols[i], name) == 0)
            return true;
    return false;
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the import ------------------------------------------------------------------------- */

typedef struct row {
    json_t *rec; /* the fields by name */
    long line;   /* where the row starts in the file */
    char *raw;   /* the row as read (for the reject file), owned */
} row_t;

typedef struct imp {
    env_t *env;
    rp_ctx_t ctx;
    const char *entity, *path, *format, *upsert_by;
    json_t *fields; /* the entity's field specs by name */
    json_t *map;    /* column -> field (or null: left out), from --map */
    bool dry_run, skip_bad, strict, progress;
    /* CSV columns: the header, and the field each column fills (NULL: left out). */
    char **cols;
    const char **col_field;
    int ncols;
    /* The batch being read. */
    row_t batch[BATCH];
    int nbatch;
    /* What happened. */
    long rows, created, updated, bad;
    json_t *reasons; /* "RP-E1205" -> count */
    FILE *rejects;
    char rejects_path[4096];
    bool fatal;      /* a failure that is not a row's: stop */
    FILE *file;      /* what is read, and its size (0: unknown, a pipe) for the progress bar */
    long size;
    double t0, last_shown;
} imp_t;

/* The column a field came from (for messages), or the field itself. */
static const char *column_of(imp_t *im, const char *field)
{
    for (int i = 0; i < im->ncols; i++)
        if (im->col_field[i] && strcmp(im->col_field[i], field) == 0)
            return im->cols[i];
    return field;
}

/* Writes @p s as one CSV field (quoted when it must be). */
void csv_out(FILE *f, const char *s)
{
    if (!s)
        return;
    if (strpbrk(s, ",\"\r\n") || (*s && (s[0] == ' ' || s[strlen(s) - 1] == ' ')))
        csv_fwrite(f, s, strlen(s));
    else
        fputs(s, f);
}

/* Reports a bad row: on stderr (the first few), counted by reason, and into the reject file. */
static void row_bad(imp_t *im, const row_t *r, const char *msg)
{
    im->bad++;
    /* "RP-E1205: contact.email: …" -> the reason's code and, where it names one, the field. */
    const char *code = strstr(msg, "RP-E");
    char key[16] = "other";
    if (code)
        snprintf(key, sizeof key, "%.8s", code);
    json_t *n = json_object_get(im->reasons, key);
    json_object_set_new(im->reasons, key, json_integer(json_integer_value(n) + 1));
    char where[256] = "";
    char prefix[96];
    snprintf(prefix, sizeof prefix, "%s.", im->entity);
    const char *f = strstr(msg, prefix);
    if (f) {
        char field[64];
        size_t k = 0;
        f += strlen(prefix);
        while (k < sizeof field - 1 && (isalnum((unsigned char)f[k]) || f[k] == '_'))
            field[k] = f[k], k++;
        field[k] = '\0';
        if (k && json_object_get(im->fields, field))
            snprintf(where, sizeof where, " column \"%s\":", column_of(im, field));
    }
    if (im->bad <= SHOW_ERRORS)
        fprintf(stderr, "%s:%ld:%s %s\n", im->path, r->line, where, msg);
    else if (im->bad == SHOW_ERRORS + 1)
        fprintf(stderr, "%s: more bad rows: counted in the summary%s\n", im->path,
                im->rejects ? " and written to the reject file" : "");
    if (im->rejects) {
        fprintf(im->rejects, "%ld,", r->line);
        csv_out(im->rejects, msg);
        fputc(',', im->rejects);
        /* The row as it was, so it can be fixed and imported again: a CSV row as it is, a
         * JSON line or a card as one quoted field. */
        if (strcmp(im->format, "csv") == 0)
            fputs(r->raw ? r->raw : "", im->rejects);
        else
            csv_fwrite(im->rejects, r->raw ? r->raw : "", r->raw ? strlen(r->raw) : 0);
        fputc('\n', im->rejects);
    }
}

/* On a terminal: a bar of how much of the file is read (when its size is known), the rows
 * so far and the rate, redrawn at most five times a second. */
static void show_progress(imp_t *im, bool done)
{
    if (!im->progress)
        return;
    double now = mono();
    if (!done && now - im->last_shown < 0.2)
        return;
    im->last_shown = now;
    double secs = now - im->t0;
    char bar[64] = "";
    if (im->size > 0) {
        long pos = im->file ? ftell(im->file) : -1;
        double part = done ? 1.0 : pos >= 0 ? (double)pos / (double)im->size : 0.0;
        int full = (int)(part * 20 + 0.5);
        if (full > 20)
            full = 20;
        snprintf(bar, sizeof bar, "[%.*s%.*s] %3d%% ", full, "####################", 20 - full,
                 "....................", (int)(part * 100 + 0.5) > 100 ? 100
                                                                         : (int)(part * 100 + 0.5));
    }
    fprintf(stderr, "\r%s%s: %ld rows, %ld stored, %ld bad (%.0f rows/s)%s", bar, im->path,
            im->rows, im->created + im->updated, im->bad,
            secs > 0 ? (double)im->rows / secs : 0.0, done ? "\n" : "");
    fflush(stderr);
}

/* Strips the "record N: " a batch write puts in front of the message. */
static const char *plain_msg(const char *m)
{
    if (strncmp(m, "record ", 7) == 0) {
        const char *c = strstr(m, ": ");
        if (c)
            return c + 2;
    }
    return m;
}

/* One record by the --upsert-by field: updated when one record has that value, created when
 * none has, refused when several have. */
static void upsert_one(imp_t *im, row_t *r)
{
    rp_store_t *s = im->env->s;
    rp_error_t err = {0};
    json_t *key = json_object_get(r->rec, im->upsert_by);
    if (!key || json_is_null(key)) {
        char m[256];
        snprintf(m, sizeof m, "the row has no value for %s.%s, the --upsert-by field", im->entity,
                 im->upsert_by);
        row_bad(im, r, m);
        return;
    }
    int64_t id = 0;
    if (strcmp(im->upsert_by, "id") == 0) {
        id = json_is_integer(key) ? json_integer_value(key)
             : json_is_string(key) ? strtoll(json_string_value(key), NULL, 10) : 0;
        json_t *got = NULL;
        if (id <= 0 || rp_store_get_as(s, &im->ctx, im->entity, id, &got, NULL) != 0)
            id = 0;
        json_decref(got);
        json_object_del(r->rec, "id");
    } else {
        /* The key as the rules would store it (an email lower-cased, a phone in its one
         * form), whether the row is whole or only the fields to change. */
        json_t *stored = NULL;
        rp_error_t e0 = {0};
        if (rp_store_stored_value(s, &im->ctx, im->entity, r->rec, im->upsert_by, &stored,
                                  &e0) == 0 &&
            stored && !json_is_null(stored))
            key = stored;
        json_t *where = json_pack("{s:O}", im->upsert_by, key), *found = NULL;
        json_decref(stored);
        rp_query_t q = {.entity = im->entity, .where = where, .limit = 2, .access = im->ctx.access};
        const char *only[] = {"id", NULL};
        q.fields = only;
        int rc = rp_store_find(s, &q, &found, NULL, &err);
        json_decref(where);
        if (rc) {
            json_decref(found);
            row_bad(im, r, err.msg);
            return;
        }
        if (json_array_size(found) > 1) {
            json_decref(found);
            char m[256];
            snprintf(m, sizeof m, "several %s records have this %s: --upsert-by needs a field "
                                  "that names one record", im->entity, im->upsert_by);
            row_bad(im, r, m);
            return;
        }
        id = json_integer_value(json_object_get(json_array_get(found, 0), "id"));
        json_decref(found);
    }
    int rc = id ? rp_store_update(s, &im->ctx, im->entity, id, r->rec, 0, NULL, &err)
                : rp_store_create(s, &im->ctx, im->entity, r->rec, NULL, &err);
    if (rc == RP_EIO || rc == RP_ENOMEM) {
        fail("%s:%ld: %s", im->path, r->line, err.msg);
        im->fatal = true;
    } else if (rc) {
        row_bad(im, r, err.msg);
    } else if (id) {
        im->updated++;
    } else {
        im->created++;
    }
}

/* Stores the batch: all of it in one write; a refused record is reported, taken out, and the
 * rest written again (a bad row costs a retry, good files go at batch speed). */
static void flush(imp_t *im)
{
    int n = im->nbatch;
    if (n == 0)
        return;
    if (im->upsert_by) {
        for (int i = 0; i < n && !im->fatal; i++)
            upsert_one(im, &im->batch[i]);
    } else {
        int from = 0;
        while (from < n && !im->fatal) {
            json_t *arr = json_array();
            for (int i = from; i < n; i++)
                json_array_append(arr, im->batch[i].rec);
            size_t failed = 0;
            rp_error_t err = {0};
            int rc = rp_store_create_many(im->env->s, &im->ctx, im->entity, arr, NULL, &failed,
                                          &err);
            json_decref(arr);
            if (rc == 0) {
                im->created += n - from;
                break;
            }
            if (rc == RP_EIO || rc == RP_ENOMEM) {
                fail("%s:%ld: %s", im->path, im->batch[from].line, err.msg);
                im->fatal = true;
                break;
            }
            if (failed >= (size_t)(n - from) || (failed == 0 && n - from > 1 &&
                                                 !strstr(err.msg, "record 0: "))) {
                /* The write did not say which record (a batch hook that names none): one by
                 * one, so the bad ones are found and only they are reported. */
                for (int i = from; i < n && !im->fatal; i++) {
                    rp_error_t e3 = {0};
                    int r3 = rp_store_create(im->env->s, &im->ctx, im->entity, im->batch[i].rec,
                                             NULL, &e3);
                    if (r3 == RP_EIO || r3 == RP_ENOMEM) {
                        fail("%s:%ld: %s", im->path, im->batch[i].line, e3.msg);
                        im->fatal = true;
                    } else if (r3) {
                        row_bad(im, &im->batch[i], plain_msg(e3.msg));
                    } else {
                        im->created++;
                    }
                }
                break;
            }
            /* Those before the bad one are good: keep them, then go on after it. */
            int bad = from + (int)failed;
            if (bad > from) {
                json_t *good = json_array();
                for (int i = from; i < bad; i++)
                    json_array_append(good, im->batch[i].rec);
                rp_error_t e2 = {0};
                size_t f2 = 0;
                int rc2 = rp_store_create_many(im->env->s, &im->ctx, im->entity, good, NULL, &f2,
                                               &e2);
                json_decref(good);
                if (rc2) { /* a hook that depends on the whole batch: go one by one */
                    for (int i = from; i < bad; i++) {
                        rp_error_t e3 = {0};
                        if (rp_store_create(im->env->s, &im->ctx, im->entity, im->batch[i].rec,
                                            NULL, &e3))
                            row_bad(im, &im->batch[i], plain_msg(e3.msg));
                        else
                            im->created++;
                    }
                } else {
                    im->created += bad - from;
                }
            }
            row_bad(im, &im->batch[bad], plain_msg(err.msg));
            from = bad + 1;
        }
    }
    for (int i = 0; i < n; i++) {
        json_decref(im->batch[i].rec);
        free(im->batch[i].raw);
    }
    im->nbatch = 0;
    show_progress(im, false);
}

/* Takes one row (its record owned) into the batch. */
static void add_row(imp_t *im, json_t *rec, long line, char *raw)
{
    im->rows++;
    im->batch[im->nbatch++] = (row_t){rec, line, raw};
    if (im->nbatch == BATCH)
        flush(im);
}

/* Turns the text of a cell into the value its field takes: empty is absent, a json field's
 * text is parsed; the store checks and converts the rest. NULL with @p why when it cannot. */
/* Whether text @p s would be read as a formula by a spreadsheet: it starts with = + - @, a
 * tab or a carriage return (OWASP's list) and is not simply a number, such as -12.50. */
static bool formula_like(const char *s)
{
    if (!*s || !strchr("=+-@\t\r", *s))
        return false;
    char *end;
    errno = 0;
    (void)strtod(s, &end);
    return *end != '\0' || end == s;
}

/* Whether export guards @p s: a formula, or a formula behind quotes of its own ("'=1+1"), which
 * gets one quote more so that import, taking one off, gives it back as it was. */
bool guarded(const char *s)
{
    while (*s == '\'')
        s++;
    return formula_like(s);
}

static json_t *cell_value(imp_t *im, const char *field, const char *text, size_t len,
                          const char **why)
{
    const char *type = json_string_value(json_object_get(json_object_get(im->fields, field),
                                                         "type"));
    if (type && strcmp(type, "json") == 0) {
        json_error_t je;
        json_t *j = json_loadb(text, len, JSON_DECODE_ANY, &je);
        if (!j)
            *why = "is not JSON";
        return j;
    }
    /* What export guarded against spreadsheets ("'=SUM(…)") comes back as it was. */
    if (len > 1 && text[0] == '\'' && strlen(text) == len && guarded(text + 1)) {
        text++;
        len--;
    }
    json_t *s = json_stringn(text, len);
    if (!s)
        *why = "is not valid UTF-8 text";
    return s;
}

/* ---- columns ---------------------------------------------------------------------------- */

/* "First Name" -> "first_name". */
static void normalise_name(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    for (; *in && n + 1 < cap; in++) {
        unsigned char c = (unsigned char)*in;
        if (c == ' ' || c == '-' || c == '.')
            c = '_';
        out[n++] = (char)tolower(c);
    }
    out[n] = '\0';
}

/* Maps the header onto the entity's fields: by --map, else by name (exactly, or as
 * "First Name" for first_name). Columns of the record's own bookkeeping (id, created_at, …)
 * are left out; so are unknown columns, said once (refused with --strict). A required field no
 * column fills is refused here, before any row. */
static int setup_columns(imp_t *im, char **names, int n)
{
    im->ncols = n;
    im->cols = calloc((size_t)n + 1, sizeof *im->cols);
    im->col_field = calloc((size_t)n + 1, sizeof *im->col_field);
    char unknown[1024] = "";
    size_t ul = 0;
    for (int i = 0; i < n; i++) {
        char *h = names[i];
        if (i == 0 && strncmp(h, "\xEF\xBB\xBF", 3) == 0)
            memmove(h, h + 3, strlen(h + 3) + 1); /* a byte order mark */
        im->cols[i] = strdup(h);
        json_t *m = im->map ? json_object_get(im->map, h) : NULL;
        const char *field = NULL;
        char norm[128];
        normalise_name(h, norm, sizeof norm);
        if (m) {
            if (json_is_null(m))
                continue;
            field = json_string_value(m);
            if (!field || !json_object_get(im->fields, field))
                return fail("%s: the map sends column \"%s\" to \"%s\", which is not a field of "
                            "%s", im->path, h, field ? field : "?", im->entity);
        } else if (json_object_get(im->fields, h)) {
            field = json_object_iter_key(json_object_iter_at(im->fields, h));
        } else if (json_object_get(im->fields, norm)) {
            field = json_object_iter_key(json_object_iter_at(im->fields, norm));
        } else if (is_system(norm)) {
            if (im->upsert_by && strcmp(norm, "id") == 0 && strcmp(im->upsert_by, "id") == 0)
                field = "id";
            else
                continue;
        }
        if (!field) {
            /* The list is cut when full: a pointer past the buffer is undefined even for a
             * write of nothing. */
            if (ul < sizeof unknown - 1) {
                int w = snprintf(unknown + ul, sizeof unknown - ul, "%s\"%s\"", ul ? ", " : "",
                                 h);
                ul = w < 0 ? ul : ul + (size_t)w;
                if (ul >= sizeof unknown)
                    ul = sizeof unknown - 1;
            }
            continue;
        }
        for (int j = 0; j < i; j++)
            if (im->col_field[j] && strcmp(im->col_field[j], field) == 0)
                return fail("%s:1: columns \"%s\" and \"%s\" both fill %s.%s: map one of them "
                            "away with --map", im->path, im->cols[j], h, im->entity, field);
        im->col_field[i] = field;
    }
    if (ul) {
        if (im->strict)
            return fail("%s:1: columns %s match no field of %s (--strict): map them with --map "
                        "FILE, a JSON object {\"column\": \"field\" or null}", im->path, unknown,
                        im->entity);
        fprintf(stderr, "rapport: %s:1: leaving out columns %s: no field of %s has their name "
                        "(map them with --map)\n", im->path, unknown, im->entity);
    }
    const char *k;
    json_t *spec;
    json_object_foreach(im->fields, k, spec) {
        if (!json_is_true(json_object_get(spec, "required")) || json_object_get(spec, "default"))
            continue;
        bool filled = false;
        for (int i = 0; i < n; i++)
            filled |= im->col_field[i] && strcmp(im->col_field[i], k) == 0;
        if (!filled && !im->upsert_by)
            return fail("%s:1: no column fills %s.%s, which is required (columns: the header "
                        "line; rename one or map it with --map)", im->path, im->entity, k);
    }
    return 0;
}

/* ---- CSV -------------------------------------------------------------------------------- */

typedef struct csvst {
    imp_t *im;
    char **cells;
    size_t *lens;
    int n, cap;
    bool row_done, header_done;
    char *raw; /* the physical lines of the row being read */
    size_t raw_len, raw_cap;
    long row_line;
} csvst_t;

static void csv_cell(void *s, size_t len, void *ud)
{
    csvst_t *c = ud;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 32;
        c->cells = realloc(c->cells, sizeof *c->cells * (size_t)c->cap);
        c->lens = realloc(c->lens, sizeof *c->lens * (size_t)c->cap);
    }
    c->cells[c->n] = malloc(len + 1);
    memcpy(c->cells[c->n], s ? s : "", s ? len : 0);
    c->cells[c->n][s ? len : 0] = '\0';
    c->lens[c->n++] = s ? len : 0;
}

static void csv_row_end(int term, void *ud)
{
    (void)term;
    csvst_t *c = ud;
    imp_t *im = c->im;
    c->row_done = true;
    if (im->fatal) {
        /* nothing more */
    } else if (!c->header_done) {
        c->header_done = true;
        if (setup_columns(im, c->cells, c->n))
            im->fatal = true;
    } else {
        char *raw = strndup(c->raw ? c->raw : "", c->raw_len);
        while (raw[0] && (raw[strlen(raw) - 1] == '\n' || raw[strlen(raw) - 1] == '\r'))
            raw[strlen(raw) - 1] = '\0';
        row_t r = {NULL, c->row_line, raw};
        char m[512];
        if (c->n > im->ncols) {
            snprintf(m, sizeof m, "the row has %d fields, the header %d", c->n, im->ncols);
            row_bad(im, &r, m);
            im->rows++;
            free(raw);
        } else {
            json_t *rec = json_object();
            const char *why = NULL;
            int bad_col = -1;
            for (int i = 0; i < c->n; i++) {
                const char *f = im->col_field[i];
                if (!f || c->lens[i] == 0)
                    continue;
                json_t *v = cell_value(im, f, c->cells[i], c->lens[i], &why);
                if (!v) {
                    bad_col = i;
                    break;
                }
                json_object_set_new(rec, f, v);
            }
            if (bad_col >= 0) {
                snprintf(m, sizeof m, "column \"%s\" (%s.%s) %s", im->cols[bad_col], im->entity,
                         im->col_field[bad_col], why);
                row_bad(im, &r, m);
                im->rows++;
                json_decref(rec);
                free(raw);
            } else {
                add_row(im, rec, c->row_line, raw);
            }
        }
    }
    for (int i = 0; i < c->n; i++)
        free(c->cells[i]);
    c->n = 0;
}

static int read_csv(imp_t *im, FILE *f)
{
    struct csv_parser p;
    if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0)
        return fail("out of memory");
    csvst_t c = {.im = im};
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long lineno = 0;
    int rc = 0;
    while (!im->fatal && (got = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (c.raw_len == 0)
            c.row_line = lineno;
        if (c.raw_len + (size_t)got + 1 > c.raw_cap) {
            c.raw_cap = (c.raw_len + (size_t)got + 1) * 2;
            c.raw = realloc(c.raw, c.raw_cap);
        }
        memcpy(c.raw + c.raw_len, line, (size_t)got);
        c.raw_len += (size_t)got;
        c.row_done = false;
        if (csv_parse(&p, line, (size_t)got, csv_cell, csv_row_end, &c) != (size_t)got) {
            rc = fail("%s:%ld: %s (a quote opens or closes in the wrong place)", im->path,
                      c.row_line, csv_strerror(csv_error(&p)));
            im->fatal = true;
            break;
        }
        if (p.pstate == 0)
            c.raw_len = 0; /* between rows: the row ended on this line, or it was empty */
    }
    if (!im->fatal && csv_fini(&p, csv_cell, csv_row_end, &c) != 0) {
        rc = fail("%s:%ld: %s (a quoted field never closes)", im->path, c.row_line,
                  csv_strerror(csv_error(&p)));
        im->fatal = true;
    }
    if (!im->fatal && !c.header_done) {
        rc = fail("%s: the file is empty: a CSV import needs a header line naming the columns",
                  im->path);
        im->fatal = true;
    }
    for (int i = 0; i < c.n; i++)
        free(c.cells[i]);
    free(c.cells);
    free(c.lens);
    free(c.raw);
    free(line);
    csv_free(&p);
    return rc ? rc : im->fatal ? EXIT_FAIL : 0;
}

/* ---- JSON lines ------------------------------------------------------------------------- */

static int read_jsonl(imp_t *im, FILE *f)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long lineno = 0;
    while (!im->fatal && (got = getline(&line, &cap, f)) > 0) {
        lineno++;
        while (got && (line[got - 1] == '\n' || line[got - 1] == '\r'))
            line[--got] = '\0';
        size_t lead = strspn(line, " \t");
        if (line[lead] == '\0')
            continue;
        json_error_t je;
        json_t *j = json_loadb(line, (size_t)got, 0, &je);
        row_t r = {NULL, lineno, strdup(line)};
        char m[512];
        if (!j || !json_is_object(j)) {
            if (j)
                snprintf(m, sizeof m, "each line must be a JSON object, not this");
            else
                snprintf(m, sizeof m, "not JSON: column %d: %s", je.column, je.text);
            json_decref(j);
            im->rows++;
            row_bad(im, &r, m);
            free(r.raw);
            continue;
        }
        /* The record's own bookkeeping (id, version, …) is the store's to set. */
        for (int i = 0; system_cols[i]; i++)
            if (!(im->upsert_by && strcmp(system_cols[i], "id") == 0 &&
                  strcmp(im->upsert_by, "id") == 0))
                json_object_del(j, system_cols[i]);
        add_row(im, j, lineno, r.raw);
    }
    free(line);
    return im->fatal ? EXIT_FAIL : 0;
}

/* ---- formats plugins bring ------------------------------------------------------------- */

static int plugin_record(void *ud, json_t *rec, long line)
{
    imp_t *im = ud;
    json_t *row = json_object();
    const char *k;
    json_t *v;
    /* What the record says that the entity has a field for. */
    json_object_foreach(rec, k, v) {
        if (json_object_get(im->fields, k))
            json_object_set(row, k, v);
    }
    char *raw = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    add_row(im, row, line, raw);
    return im->fatal;
}

static int read_plugin_format(imp_t *im, FILE *f)
{
    /* The reader works on the whole text. */
    char *text = NULL;
    size_t len = 0, cap = 0, got;
    char chunk[65536];
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + got + 1 > cap) {
            cap = (len + got + 1) * 2;
            char *nt = realloc(text, cap);
            if (!nt) {
                free(text);
                return fail("out of memory");
            }
            text = nt;
        }
        memcpy(text + len, chunk, got);
        len += got;
    }
    rp_error_t err = {0};
    int rc = rp_plugins_import(im->env->pl, im->format, im->entity, text ? text : "", len,
                               plugin_record, im, &err);
    free(text);
    if (rc && !im->fatal) {
        im->fatal = true;
        return fail("%s: %s", im->path, err.msg);
    }
    return im->fatal ? EXIT_FAIL : 0;
}

/* ---- the command ------------------------------------------------------------------------ */

/* The format @p given, or the engine's own a file's ending names; NULL when the ending is
 * another (a plugin's format may claim it: see plugin_format_of). */
const char *format_of(const char *path, const char *given)
{
    if (given)
        return given;
    const char *dot = strrchr(path, '.');
    if (dot && (strcasecmp(dot, ".jsonl") == 0 || strcasecmp(dot, ".ndjson") == 0))
        return "jsonl";
    return !dot || strcasecmp(dot, ".csv") == 0 ? "csv" : NULL;
}

bool builtin_format(const char *format)
{
    return format && (strcmp(format, "csv") == 0 || strcmp(format, "jsonl") == 0);
}

/* The format for @p path once the plugins are loaded: @p format, else the plugin format whose
 * ending @p path has, else CSV. NULL when @p format is nobody's. */
const char *plugin_format_of(env_t *env, const char *format, const char *path,
                                    bool for_import)
{
    if (builtin_format(format))
        return format;
    if (format)
        return rp_plugins_format(env->pl, format, NULL, for_import);
    const char *by_ending = rp_plugins_format(env->pl, NULL, path, for_import);
    return by_ending ? by_ending : "csv";
}

/* "csv, jsonl and vcf": the formats that read (or write). */
void format_list(env_t *env, bool for_import, char *buf, size_t cap)
{
    char more[200];
    rp_plugins_format_names(env ? env->pl : NULL, for_import, more, sizeof more);
    snprintf(buf, cap, "csv%s%s", more[0] ? ", jsonl" : " and jsonl", more);
}

int cmd_import(cli_t *c, int argc, char **argv)
{
    bool dry = false, skip = false, strict = false, quiet = false;
    flag_value(&argc, argv, "--dry-run", &dry);
    flag_value(&argc, argv, "--skip-bad", &skip);
    flag_value(&argc, argv, "--strict", &strict);
    flag_value(&argc, argv, "--quiet", &quiet);
    const char *fmt = flag_value(&argc, argv, "--format", NULL);
    const char *mapf = flag_value(&argc, argv, "--map", NULL);
    const char *upsert = flag_value(&argc, argv, "--upsert-by", NULL);
    const char *rej = flag_value(&argc, argv, "--rejects", NULL);
    if (fmt == FLAG_MISSING || mapf == FLAG_MISSING || upsert == FLAG_MISSING ||
        rej == FLAG_MISSING)
        return usage_error("import", "import: an option lacks its value");
    if (reject_unknown_flags("import", argc, argv))
        return EXIT_USAGE;
    if (argc != 3)
        return usage_error("import", "import needs an entity and a file");
    const char *entity = argv[1], *path = argv[2];
    const char *format = format_of(path, fmt);
    if (rej && !skip)
        return usage_error("import", "import: --rejects goes with --skip-bad");
    json_t *map = NULL;
    if (mapf) {
        json_error_t je;
        map = json_load_file(mapf, 0, &je);
        if (!map || !json_is_object(map)) {
            json_decref(map);
            return fail("%s:%d:%d: the map must be a JSON object {\"column\": \"field\" or "
                        "null}%s%s", mapf, je.line, je.column, map ? "" : ": ",
                        map ? "" : je.text);
        }
    }
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f) {
        json_decref(map);
        return fail("%s: %s", path, strerror(errno));
    }
    env_t env;
    if (env_open(c, &env, log_quiet)) {
        if (f != stdin)
            fclose(f);
        json_decref(map);
        return EXIT_FAIL;
    }
    const char *known = plugin_format_of(&env, format, path, true);
    if (!known) {
        char list[256];
        format_list(&env, true, list, sizeof list);
        env_close(&env);
        if (f != stdin)
            fclose(f);
        json_decref(map);
        return usage_error("import", "import: format \"%s\" (%s are read)", format, list);
    }
    format = known;
    imp_t *im = calloc(1, sizeof *im);
    im->env = &env;
    im->ctx = c->ctx;
    im->ctx.origin = "import";
    im->entity = entity;
    im->path = path;
    im->format = format;
    im->map = map;
    im->upsert_by = upsert;
    im->dry_run = dry;
    im->skip_bad = skip;
    im->strict = strict;
    im->progress = !quiet && isatty(2);
    im->file = f;
    struct stat fst;
    if (fstat(fileno(f), &fst) == 0 && S_ISREG(fst.st_mode))
        im->size = (long)fst.st_size;
    im->reasons = json_object();
    im->t0 = mono();
    rp_error_t err = {0};
    json_t *schema = rp_store_schema(env.s, entity, &err);
    int rc = 0;
    if (!schema) {
        rc = fail("%s", err.msg);
        goto out;
    }
    im->fields = json_incref(json_object_get(schema, "fields"));
    json_decref(schema);
    if (upsert && strcmp(upsert, "id") != 0 && !json_object_get(im->fields, upsert)) {
        rc = usage_error("import", "import: --upsert-by %s: %s has no such field", upsert, entity);
        goto out;
    }
    if (skip && !dry) {
        if (rej)
            snprintf(im->rejects_path, sizeof im->rejects_path, "%s", rej);
        else
            snprintf(im->rejects_path, sizeof im->rejects_path, "%s.rejects.csv",
                     strcmp(path, "-") == 0 ? "stdin" : path);
        if (!(im->rejects = fopen(im->rejects_path, "w"))) {
            rc = fail("%s: %s", im->rejects_path, strerror(errno));
            goto out;
        }
        fputs("line,error,row\n", im->rejects);
    }
    /* A bulk load touches index pages all over: keep them in memory rather than spill. */
    rp_store_set_cache_mb(env.s, 96, NULL);
    /* One transaction: the file goes in whole, or its good rows (--skip-bad), or nothing. */
    if (rp_store_begin(env.s, &err)) {
        rc = fail("%s", err.msg);
        goto out;
    }
    rc = strcmp(format, "jsonl") == 0 ? read_jsonl(im, f)
         : strcmp(format, "csv") == 0 ? read_csv(im, f)
                                      : read_plugin_format(im, f);
    if (!im->fatal)
        flush(im);
    show_progress(im, true);
    bool keep = !im->fatal && !dry && (im->bad == 0 || skip);
    if (keep ? rp_store_commit(env.s, &err) : rp_store_rollback(env.s, &err)) {
        rc = fail("%s", err.msg);
        keep = false;
    }
    if (im->fatal) {
        rc = EXIT_FAIL;
        fprintf(stderr, "rapport: %s: nothing was imported\n", path);
        goto out;
    }
    /* The summary. */
    char reasons[512] = "";
    size_t rl = 0;
    const char *k;
    json_t *v;
    json_object_foreach(im->reasons, k, v) {
        rl += (size_t)snprintf(reasons + rl, rl < sizeof reasons ? sizeof reasons - rl : 0,
                               "%s%lld × %s", rl ? ", " : "", (long long)json_integer_value(v),
                               k);
    }
    if (dry) {
        printf("%s: dry run, nothing stored: %ld rows, %ld would be %s, %ld bad%s%s%s\n", path,
               im->rows, im->rows - im->bad, upsert ? "created or updated" : "created", im->bad,
               rl ? " (" : "", reasons, rl ? ")" : "");
        rc = im->bad ? EXIT_FAIL : 0;
    } else if (!keep) {
        printf("%s: nothing imported: %ld of %ld rows are bad (%s); fix them, or import the "
               "good ones with --skip-bad\n", path, im->bad, im->rows, reasons);
        rc = EXIT_FAIL;
    } else {
        printf("%s: %ld created, %ld updated, %ld skipped", path, im->created, im->updated,
               im->bad);
        if (im->bad)
            printf(" (%s; written to %s)", reasons, im->rejects_path);
        printf(" in %.1f s\n", mono() - im->t0);
    }
out:
    if (im->rejects) {
        fclose(im->rejects);
        if (im->bad == 0 || !skip || im->fatal)
            unlink(im->rejects_path);
    }
    for (int i = 0; i < im->nbatch; i++) {
        json_decref(im->batch[i].rec);
        free(im->batch[i].raw);
    }
    for (int i = 0; i < im->ncols; i++)
        free(im->cols[i]);
    free(im->cols);
    free(im->col_field);
    json_decref(im->fields);
    json_decref(im->reasons);
    json_decref(map);
    free(im);
    env_close(&env);
    if (f != stdin)
        fclose(f);
    return rc;
}
