/*
 * test_query_text.c — a page written as text straight from the rows (rp_store_find_text) is
 * byte for byte the page of records (rp_store_find) dumped by jansson, with the same cursor,
 * and a page handed over row by row (rp_store_find_rows) holds the same values:
 * every field type, text that needs escaping, a field list, deleted records, a role hiding
 * fields (for one entity and for all), and a record principal, whose page goes through the
 * records.
 */
#include <locale.h>

#include "helpers.h"
#include "rapport/access.h"
#include "rapport/jsontext.h"

/* What rp_store_find_rows hands over, held against the records of the same page. */
typedef struct {
    json_t *want; /* the page of records */
    size_t at;
    const char **fields;
    int nf, stop_at; /* stop_at > 0: stop after that many rows */
} rows_check_t;

static int check_row(void *ud, int n, const char *const *v, const size_t *lens)
{
    rows_check_t *c = ud;
    json_t *rec = json_array_get(c->want, c->at++);
    if (!rec)
        fail_msg("find_rows handed over more rows than find has");
    assert_int_equal(n, c->nf);
    for (int i = 0; i < n; i++) {
        json_t *x = json_object_get(rec, c->fields[i]);
        char *dumped = NULL;
        const char *w = json_string_value(x);
        if (x && !json_is_null(x) && !w)
            w = dumped = json_dumps(x, JSON_ENCODE_ANY | JSON_COMPACT);
        if ((w == NULL) != (v[i] == NULL) || (w && (strcmp(w, v[i]) != 0 || strlen(w) != lens[i])))
            fail_msg("row %zu, %s: find_rows gave %s, find %s", c->at - 1, c->fields[i],
                     v[i] ? v[i] : "NULL", w ? w : "NULL");
        free(dumped);
    }
    return c->stop_at > 0 && (int)c->at == c->stop_at ? 7 : 0;
}

/* rp_store_find_rows of @p q (its fields, else every field @p rows' first record has) gives
 * the page @p rows, value for value, and the cursor @p next. */
static void rows_agree(rp_store_t *s, const rp_query_t *q, json_t *rows, const char *next)
{
    const char *names[70] = {0};
    rp_query_t rq = *q;
    int nf = 0;
    if (q->fields) {
        while (q->fields[nf])
            nf++;
    } else {
        const char *k;
        json_t *v;
        json_object_foreach(json_array_get(rows, 0), k, v) names[nf++] = k;
        if (!nf)
            names[nf++] = "id";
        rq.fields = names;
    }
    rows_check_t c = {.want = rows, .fields = rq.fields, .nf = nf};
    char *next3 = NULL;
    rp_error_t err = {0};
    if (rp_store_find_rows(s, &rq, check_row, &c, &next3, &err))
        fail_msg("find_rows %s: %s", q->entity, err.msg);
    assert_int_equal(c.at, json_array_size(rows));
    assert_true((next == NULL) == (next3 == NULL));
    if (next)
        assert_string_equal(next, next3);
    free(next3);
    /* A row function that says stop ends the read there, with its own code. */
    if (json_array_size(rows) > 1) {
        rows_check_t c2 = {.want = rows, .fields = rq.fields, .nf = nf, .stop_at = 1};
        assert_int_equal(rp_store_find_rows(s, &rq, check_row, &c2, &next3, &err), 7);
        assert_int_equal(c2.at, 1);
        assert_null(next3);
    }
}

/* Finds @p q both ways and checks the two agree, and find_rows with them; returns the page's
 * cursor (owned) or NULL. */
static char *both(rp_store_t *s, const rp_query_t *q)
{
    json_t *rows = NULL;
    char *next1 = NULL, *next2 = NULL;
    rp_error_t err = {0};
    if (rp_store_find(s, q, &rows, &next1, &err))
        fail_msg("find %s: %s", q->entity, err.msg);
    char *want = json_dumps(rows, JSON_COMPACT);
    rp_jtext_t t = {0};
    if (rp_store_find_text(s, q, &t, &next2, &err))
        fail_msg("find_text %s: %s", q->entity, err.msg);
    char *got = rp_jt_take(&t, NULL);
    if (!want || !got || strcmp(want, got) != 0)
        fail_msg("the two pages differ:\n records %s\n text    %s", want, got);
    assert_true((next1 == NULL) == (next2 == NULL));
    if (next1)
        assert_string_equal(next1, next2);
    rows_agree(s, q, rows, next1);
    json_decref(rows);
    free(want);
    free(got);
    free(next2);
    return next1;
}

static void test_every_type(void **state)
{
    (void)state;
    rp_store_t *s = test_open_crm();
    int64_t acct = create(s, "account", "{\"name\": \"Acme\"}");
    char buf[1024];
    snprintf(buf, sizeof buf,
             "{\"first_name\": \"Ada \\\"the\\\" \\\\ first\\n\\ttab \\u0001\\u001f é فارسی 𝄞\","
             " \"last_name\": \"Lovelace\", \"email\": \"ada@x.org\", \"phone\": \"+44 20 1234\","
             " \"website\": \"https://x.org/a?b=c\", \"age\": -36, \"score\": 0.1,"
             " \"balance\": \"-1234.50\", \"vip\": true, \"birthday\": \"1815-12-10\","
             " \"last_seen\": \"2026-01-02T03:04:05.678Z\", \"stage\": \"won\","
             " \"account\": %lld, \"extra\": {\"a\": [1, 2.5e-7, \"x\\\"y\", null, true],"
             " \"b\": {}}}", (long long)acct);
    create(s, "contact", buf);
    create(s, "contact", "{\"last_name\": \"Nobody\"}");
    create(s, "contact", "{\"last_name\": \"Big\", \"score\": 1e300, \"age\": 9007199254740993,"
                         " \"extra\": 3, \"vip\": false}");
    int64_t gone = create(s, "contact", "{\"last_name\": \"Gone\", \"extra\": \"text\"}");
    rp_error_t err = {0};
    assert_int_equal(rp_store_delete(s, &test_ctx, "contact", gone, &err), 0);

    free(both(s, &(rp_query_t){.entity = "contact", .limit = 50}));
    free(both(s, &(rp_query_t){.entity = "contact", .limit = 50, .with_deleted = true}));
    free(both(s, &(rp_query_t){.entity = "contact", .limit = 50, .order = "-score,last_name"}));
    const char *fields[] = {"last_name", "created_by", "extra", NULL};
    free(both(s, &(rp_query_t){.entity = "contact", .limit = 50, .fields = fields}));
    /* Paged two at a time: the cursors agree, and so does the page after each. */
    char *cur = both(s, &(rp_query_t){.entity = "contact", .limit = 2, .order = "last_name"});
    assert_non_null(cur);
    char *after = both(s, &(rp_query_t){.entity = "contact", .limit = 2, .order = "last_name",
                                        .after = cur});
    assert_null(after);
    free(cur);
    /* An empty page. */
    json_t *w = J("{\"last_name\": \"nobody by that name\"}");
    free(both(s, &(rp_query_t){.entity = "contact", .where = w}));
    json_decref(w);
    rp_store_close(s);
}

static void test_hidden_fields(void **state)
{
    (void)state;
    rp_store_t *s = test_open_crm();
    create(s, "contact", "{\"first_name\": \"Ada\", \"last_name\": \"Lovelace\","
                         " \"email\": \"ada@x.org\", \"balance\": \"10.00\"}");
    create(s, "contact", "{\"first_name\": \"Alan\", \"last_name\": \"Turing\", \"age\": 41}");
    rp_error_t err = {0};
    json_t *g = J("{\"entities\": {\"*\": {\"read\": \"all\"}},"
                  " \"fields\": {\"contact.email\": \"hidden\", \"contact.balance\": \"hidden\","
                  " \"contact.age\": \"read_only\", \"*.updated_by\": \"hidden\"}}");
    assert_int_equal(rp_access_role_set(s, &test_ctx, "narrow", g, &err), 0);
    json_decref(g);
    rp_access_t *a = NULL;
    assert_int_equal(rp_access_load(s, "u", "narrow", NULL, &a, &err), 0);
    char *next = both(s, &(rp_query_t){.entity = "contact", .limit = 1, .access = a});
    assert_non_null(next);
    free(both(s, &(rp_query_t){.entity = "contact", .limit = 1, .access = a, .after = next}));
    free(next);
    /* And the text carries none of what is hidden. */
    rp_jtext_t t = {0};
    assert_int_equal(rp_store_find_text(s, &(rp_query_t){.entity = "contact", .access = a}, &t,
                                        NULL, &err), 0);
    char *text = rp_jt_take(&t, NULL);
    assert_null(strstr(text, "ada@x.org"));
    assert_null(strstr(text, "\"balance\""));
    assert_null(strstr(text, "\"updated_by\""));
    assert_non_null(strstr(text, "\"age\":41"));
    free(text);
    rp_access_free(a);
    rp_store_close(s);
}

static void test_record_principal(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    define(s, "person", "{\"fields\": {\"name\": {\"type\": \"text\"}}}");
    define(s, "order", "{\"fields\": {\"person\": {\"type\": \"ref\", \"ref\": \"person\"},"
                       " \"margin\": {\"type\": \"integer\"}, \"label\": {\"type\": \"text\"}}}");
    rp_error_t err = {0};
    json_t *g = J("{\"principal\": \"person\", \"entities\": {\"person\": {\"read\": \"self\"},"
                  " \"order\": {\"read\": {\"link\": \"person\"}}},"
                  " \"fields\": {\"order.margin\": \"hidden\"}}");
    assert_int_equal(rp_access_role_set(s, &test_ctx, "customer", g, &err), 0);
    json_decref(g);
    int64_t p = create(s, "person", "{\"name\": \"P\"}");
    int64_t other = create(s, "person", "{\"name\": \"Q\"}");
    char buf[128];
    for (int i = 0; i < 3; i++) {
        snprintf(buf, sizeof buf, "{\"person\": %lld, \"margin\": 3, \"label\": \"o%d\"}",
                 (long long)(i == 1 ? other : p), i);
        create(s, "order", buf);
    }
    rp_access_t *a = NULL;
    snprintf(buf, sizeof buf, "person:%lld", (long long)p);
    assert_int_equal(rp_access_of_subject(s, buf, "customer", &a, &err), 0);
    /* Its actors masked ("local", not the test's user), its margin hidden, B's order absent. */
    char *next = both(s, &(rp_query_t){.entity = "order", .limit = 1, .access = a});
    free(both(s, &(rp_query_t){.entity = "order", .limit = 1, .access = a, .after = next}));
    free(next);
    rp_jtext_t t = {0};
    assert_int_equal(rp_store_find_text(s, &(rp_query_t){.entity = "order", .access = a}, &t,
                                        NULL, &err), 0);
    char *text = rp_jt_take(&t, NULL);
    assert_null(strstr(text, "margin"));
    assert_null(strstr(text, "\"o1\""));
    assert_non_null(strstr(text, "\"o2\""));
    free(text);
    /* Who did it is masked for a customer: sorting, filtering or grouping by it would tell
     * (a page's cursor carries the sort key's value). */
    json_t *rows = NULL;
    assert_int_equal(rp_store_find(s, &(rp_query_t){.entity = "order", .limit = 1, .access = a,
                                                    .order = "created_by"}, &rows, NULL, &err),
                     RP_EPERM);
    assert_null(rows);
    json_t *w = J("{\"updated_by\": \"user:test\"}");
    assert_int_equal(rp_store_find(s, &(rp_query_t){.entity = "order", .access = a, .where = w},
                                   &rows, NULL, &err), RP_EPERM);
    json_decref(w);
    const char *groups[] = {"created_by", NULL};
    rp_aggregate_t agg = {.entity = "order", .group_by = groups, .access = a};
    assert_int_equal(rp_store_aggregate(s, &agg, &rows, &err), RP_EPERM);
    /* Staff sort by it as before. */
    assert_int_equal(rp_store_find(s, &(rp_query_t){.entity = "order", .order = "created_by"},
                                   &rows, NULL, &err), 0);
    json_decref(rows);
    rp_access_free(a);
    rp_store_close(s);
}

static int count_row(void *ud, int n, const char *const *v, const size_t *lens)
{
    (void)n, (void)v, (void)lens;
    ++*(int *)ud;
    return 0;
}

/* find_rows needs a field list of 1 to 64 names, each a field the reader may see. */
static void test_rows_refusals(void **state)
{
    (void)state;
    rp_store_t *s = test_open_crm();
    create(s, "contact", "{\"last_name\": \"Lovelace\", \"email\": \"ada@x.org\"}");
    rp_error_t err = {0};
    int seen = 0;
    char *next = NULL;
    assert_int_equal(rp_store_find_rows(s, &(rp_query_t){.entity = "contact"}, count_row, &seen,
                                        &next, &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "1 to 64 fields"));
    const char *many[66];
    for (int i = 0; i < 65; i++)
        many[i] = "id";
    many[65] = NULL;
    assert_int_equal(rp_store_find_rows(s, &(rp_query_t){.entity = "contact", .fields = many},
                                        count_row, &seen, &next, &err), RP_EINVAL);
    const char *nope[] = {"id", "no_such_field", NULL};
    assert_int_equal(rp_store_find_rows(s, &(rp_query_t){.entity = "contact", .fields = nope},
                                        count_row, &seen, &next, &err), RP_EINVAL);
    json_t *g = J("{\"entities\": {\"*\": {\"read\": \"all\"}},"
                  " \"fields\": {\"contact.email\": \"hidden\"}}");
    assert_int_equal(rp_access_role_set(s, &test_ctx, "narrow", g, &err), 0);
    json_decref(g);
    rp_access_t *a = NULL;
    assert_int_equal(rp_access_load(s, "u", "narrow", NULL, &a, &err), 0);
    const char *hidden[] = {"id", "email", NULL};
    assert_int_equal(rp_store_find_rows(s, &(rp_query_t){.entity = "contact", .fields = hidden,
                                                          .access = a},
                                        count_row, &seen, &next, &err), RP_EPERM);
    assert_int_equal(seen, 0);
    const char *fine[] = {"id", "last_name", NULL};
    assert_int_equal(rp_store_find_rows(s, &(rp_query_t){.entity = "contact", .fields = fine,
                                                          .access = a},
                                        count_row, &seen, &next, &err), 0);
    assert_int_equal(seen, 1);
    assert_null(next);
    rp_access_free(a);
    rp_store_close(s);
}

/* Under a locale with a decimal comma (when one is installed) a real is still "1.5". */
static void test_decimal_comma_locale(void **state)
{
    (void)state;
    static const char *const names[] = {"de_DE.UTF-8", "de_DE.utf8",  "fr_FR.UTF-8",
                                        "fr_FR.utf8",  "ru_RU.UTF-8", "nl_NL.UTF-8"};
    const char *got = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !got; i++)
        got = setlocale(LC_NUMERIC, names[i]);
    char probe[16];
    snprintf(probe, sizeof probe, "%.1f", 1.5);
    if (!got || strcmp(probe, "1,5") != 0) {
        setlocale(LC_NUMERIC, "C");
        skip(); /* no decimal-comma locale here (try LOCPATH with one made by localedef) */
    }
    json_t *v = json_pack("[f,f,f]", 1.5, 2.0, 0.25);
    char *text = rp_json_text(v, NULL);
    setlocale(LC_NUMERIC, "C");
    assert_string_equal(text, "[1.5,2.0,0.25]");
    free(text);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_type),
        cmocka_unit_test(test_hidden_fields),
        cmocka_unit_test(test_record_principal),
        cmocka_unit_test(test_rows_refusals),
        cmocka_unit_test(test_decimal_comma_locale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
