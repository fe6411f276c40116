/*
 * import_harness.h — what the import fuzz targets (fuzz_csv.c, fuzz_import_map.c) share: they
 * include core/cli/io.c itself, so its CSV reader and column mapping run as `rapport import`
 * runs them, into a real in-memory store, and a refusal can be checked for its message. The
 * command line's own helpers that io.c calls (in main.c, beside main()) are given here: fail()
 * keeps its message instead of printing it; the ones only the commands use trap.
 */
#ifndef RP_FUZZ_IMPORT_HARNESS_H
#define RP_FUZZ_IMPORT_HARNESS_H

#include "io.c"

static char failed_msg[1024];

int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(failed_msg, sizeof failed_msg, fmt, ap);
    va_end(ap);
    return EXIT_FAIL;
}

int usage_error(const char *cmd, const char *fmt, ...)
{
    (void)cmd;
    (void)fmt;
    __builtin_trap();
}

int open_store(cli_t *c, bool create, rp_store_t **s) { __builtin_trap(); }
void close_store(cli_t *c, rp_store_t *s) { __builtin_trap(); }
json_t *json_arg(const char *cmd, const char *what, const char *text) { __builtin_trap(); }
const char *flag_value(int *argc, char **argv, const char *flag, bool *present)
{
    __builtin_trap();
}
int reject_unknown_flags(const char *cmd, int argc, char **argv) { __builtin_trap(); }
void log_quiet(void *ud, const char *level, const char *component, const char *msg) {}
int env_open(cli_t *c, env_t *env, rp_log_fn log) { __builtin_trap(); }
void env_close(env_t *env) { __builtin_trap(); }

/* The entity rows are imported into: a field of each kind a cell can fill. */
static const char person_spec[] =
    "{\"fields\": {"
    "\"first_name\": {\"type\": \"text\"}, \"last_name\": {\"type\": \"text\", \"required\": true},"
    "\"email\": {\"type\": \"email\", \"unique\": true}, \"age\": {\"type\": \"integer\"},"
    "\"balance\": {\"type\": \"decimal\"}, \"vip\": {\"type\": \"boolean\"},"
    "\"birthday\": {\"type\": \"date\"}, \"extra\": {\"type\": \"json\"},"
    "\"stage\": {\"type\": \"enum\", \"values\": [\"new\", \"won\"], \"default\": \"new\"}}}";

static void must(int rc)
{
    if (rc != 0)
        __builtin_trap();
}

/* The store, opened once; each import is rolled back. */
static rp_store_t *store(void)
{
    static rp_store_t *s;
    rp_error_t err = {0};

    if (s == NULL) {
        json_t *j = json_loads(person_spec, 0, NULL);

        must(rp_store_open(":memory:", NULL, &s, &err));
        must(rp_store_define(s, NULL, "person", j, "fuzz", &err));
        json_decref(j);
    }
    return s;
}

/* What an import is asked: --map (NULL: none), --upsert-by (NULL: none), --strict. */
typedef struct {
    json_t *map;
    const char *upsert_by;
    bool strict;
} import_opts_t;

/* Imports the @p len bytes at @p csv as `rapport import person FILE --skip-bad` would, in a
 * transaction rolled back after, and checks the outcome: refused whole with a message, or
 * every row either stored or reported bad with its reason counted, and the store holding
 * exactly the rows it says it created. */
static void import_csv(const import_opts_t *o, const uint8_t *csv, size_t len)
{
    rp_store_t *s = store();
    env_t env = {.s = s};
    char *copy = malloc(len + 1), *rejects = NULL;
    size_t rejects_len = 0;
    rp_error_t err = {0};
    json_t *schema, *v;
    imp_t *im;
    FILE *f;
    int rc;

    if (copy == NULL)
        return;
    memcpy(copy, csv, len);
    copy[len] = '\0';
    f = len ? fmemopen(copy, len, "r") : fopen("/dev/null", "r");
    im = calloc(1, sizeof *im);
    if (f == NULL || im == NULL)
        __builtin_trap();
    im->env = &env;
    im->ctx.origin = "import";
    im->entity = "person";
    im->path = "fuzz.csv";
    im->format = "csv";
    im->map = o->map;
    im->upsert_by = o->upsert_by;
    im->skip_bad = true;
    im->strict = o->strict;
    im->file = f;
    im->reasons = json_object();
    im->rejects = open_memstream(&rejects, &rejects_len);
    schema = rp_store_schema(s, "person", &err);
    im->fields = json_incref(json_object_get(schema, "fields"));
    json_decref(schema);
    failed_msg[0] = '\0';

    must(rp_store_begin(s, &err));
    rc = read_csv(im, f);
    if (!im->fatal)
        flush(im);
    if (rc != 0) {
        /* Refused whole, and said why, naming the file. */
        if (!im->fatal || strncmp(failed_msg, "fuzz.csv:", 9) != 0 || strlen(failed_msg) < 20)
            __builtin_trap();
    } else {
        int64_t n = -1;
        long counted = 0;
        const char *k;

        if (im->fatal || im->rows != im->created + im->updated + im->bad)
            __builtin_trap();
        json_object_foreach(im->reasons, k, v)
            counted += (long)json_integer_value(v);
        if (counted != im->bad)
            __builtin_trap();
        must(rp_store_count(s, "person", NULL, false, &n, &err));
        if (n != im->created)
            __builtin_trap();
    }
    must(rp_store_rollback(s, &err));

    fclose(im->rejects);
    free(rejects);
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
    free(im);
    fclose(f);
    free(copy);
}

#endif
