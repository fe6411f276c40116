/*
 * fuzz_where.c — libFuzzer target for the `where` filter of a query (core/store/query.c), with
 * the order and the page cursor beside it: against an in-memory store holding a few contacts of
 * every field type, any bytes that are a JSON object filter either run, returning no more than
 * the records there are, or are refused with RP_EINVAL or RP_EPERM and an "RP-Ennnn: " sentence;
 * rp_store_find and rp_store_count agree on which, and counting finds as many as a page lists.
 * The same filter runs again as a user of a role that reads only the team's records and not
 * one hidden field. Whatever the bytes, as an order or as a cursor, they run or are refused
 * the same way.
 * Build with clang -fsanitize=fuzzer,address; with -DRP_FUZZ_STANDALONE it instead gets a main()
 * that runs each file named on the command line once (for compilers without libFuzzer).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "rapport/access.h"
#include "rapport/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RECORDS 4

static const char contact_spec[] =
    "{\"fields\": {"
    "\"first_name\": {\"type\": \"text\", \"searchable\": true},"
    "\"last_name\": {\"type\": \"text\", \"required\": true},"
    "\"email\": {\"type\": \"email\", \"unique\": true},"
    "\"phone\": {\"type\": \"phone\"}, \"website\": {\"type\": \"url\"},"
    "\"age\": {\"type\": \"integer\", \"indexed\": true}, \"score\": {\"type\": \"real\"},"
    "\"balance\": {\"type\": \"decimal\", \"scale\": 2},"
    "\"vip\": {\"type\": \"boolean\", \"default\": false},"
    "\"birthday\": {\"type\": \"date\"}, \"last_seen\": {\"type\": \"datetime\"},"
    "\"stage\": {\"type\": \"enum\", \"values\": [\"new\", \"won\", \"lost\"]},"
    "\"account\": {\"type\": \"ref\", \"ref\": \"account\"}, \"extra\": {\"type\": \"json\"},"
    "\"owner\": {\"type\": \"text\"}, \"secret\": {\"type\": \"text\"}}}";

static const char *const records[RECORDS] = {
    "{\"first_name\": \"Ada\", \"last_name\": \"Lovelace\", \"email\": \"ada@x.org\", \"age\": 36,"
    " \"balance\": \"100.00\", \"stage\": \"won\", \"birthday\": \"1815-12-10\", \"account\": 1,"
    " \"owner\": \"u\", \"extra\": {\"a\": [1, 2]}}",
    "{\"first_name\": \"50%_off\", \"last_name\": \"Sale\", \"score\": 0.5, \"vip\": true,"
    " \"last_seen\": \"2026-01-02T03:04:05Z\", \"website\": \"https://x.org\"}",
    "{\"last_name\": \"Nobody\", \"balance\": \"-5\", \"phone\": \"+442079460958\","
    " \"secret\": \"s\"}",
    "{\"first_name\": \"Zoë\", \"last_name\": \"Ünal\", \"age\": -1, \"stage\": \"new\"}",
};

typedef struct {
    rp_store_t *s;
    rp_access_t *rep;
} fixture_t;

static void must(int rc)
{
    if (rc != 0)
        __builtin_trap();
}

/* The store, opened once: the filters only read it. */
static fixture_t *fixture(void)
{
    static fixture_t f;
    rp_error_t err = {0};
    json_t *j;

    if (f.s != NULL)
        return &f;
    must(rp_store_open(":memory:", NULL, &f.s, &err));
    j = json_loads("{\"fields\": {\"name\": {\"type\": \"text\", \"required\": true}}}", 0, NULL);
    must(rp_store_define(f.s, NULL, "account", j, "fuzz", &err));
    json_decref(j);
    j = json_loads(contact_spec, 0, NULL);
    must(rp_store_define(f.s, NULL, "contact", j, "fuzz", &err));
    json_decref(j);
    j = json_loads("{\"name\": \"Acme\"}", 0, NULL);
    must(rp_store_create(f.s, NULL, "account", j, NULL, &err));
    json_decref(j);
    for (int i = 0; i < RECORDS; i++) {
        j = json_loads(records[i], 0, NULL);
        must(rp_store_create(f.s, NULL, "contact", j, NULL, &err));
        json_decref(j);
    }
    j = json_loads("{\"entities\": {\"*\": {\"read\": \"team\"}}, \"fields\": "
                   "{\"contact.secret\": \"hidden\"}}", 0, NULL);
    must(rp_config_set(f.s, NULL, "roles.rep", j, &err));
    json_decref(j);
    must(rp_access_load(f.s, "u", "rep", "t", &f.rep, &err));
    return &f;
}

/* Checks a refusal: an input's fault, said in a coded sentence. */
static void check_refusal(int rc, const rp_error_t *err, int also)
{
    if ((rc != RP_EINVAL && rc != also) || err->code != rc || strncmp(err->msg, "RP-E", 4) != 0 ||
        strlen(err->msg) < 12)
        __builtin_trap();
}

/* Runs @p q as a page and as a count; they agree. Returns the page's result code. */
static int run(fixture_t *f, rp_query_t *q, int also)
{
    rp_error_t err = {0}, cerr = {0};
    json_t *rows = NULL;
    char *next = NULL;
    int64_t n = -1;
    int rc = rp_store_find(f->s, q, &rows, &next, &err);
    int crc;

    if (rc != 0) {
        check_refusal(rc, &err, also);
        if (rows != NULL || next != NULL)
            __builtin_trap();
    } else if (!json_is_array(rows) || json_array_size(rows) > RECORDS) {
        __builtin_trap();
    }
    if (q->after == NULL && q->order == NULL) {
        crc = rp_store_count_as(f->s, q->access, q->entity, q->where, q->with_deleted, &n, &cerr);
        if ((crc == 0) != (rc == 0))
            __builtin_trap();
        if (crc != 0)
            check_refusal(crc, &cerr, also);
        else if (n != (int64_t)json_array_size(rows))
            __builtin_trap();
    }
    json_decref(rows);
    free(next);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fixture_t *f = fixture();
    rp_query_t q = {.entity = "contact", .limit = 1000};
    json_t *where = json_loadb((const char *)data, size, 0, NULL);
    char *text;

    if (json_is_object(where)) {
        q.where = where;
        q.with_deleted = size & 1;
        run(f, &q, 0);
        q.access = f->rep;
        run(f, &q, RP_EPERM);
    }
    json_decref(where);

    /* The bytes as an order and as a cursor (an order, a cursor and a filter come from the
     * query string as text). */
    text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    q = (rp_query_t){.entity = "contact", .order = text, .limit = 2};
    run(f, &q, 0);
    q = (rp_query_t){.entity = "contact", .after = text, .limit = 2};
    run(f, &q, 0);
    q.order = "-age,first_name";
    run(f, &q, 0);
    free(text);
    return 0;
}

#ifdef RP_FUZZ_STANDALONE
#include "standalone.h"
#endif
