/*
 * test_query.c — queries: every filter operator, and/or/not, sorting, offset and keyset
 * pagination, field subsets, deleted records, counting, and full-text search.
 */
#include <math.h>
#include <time.h>

#include "helpers.h"
#include "rapport/db.h"

/* Ids of the records matching @p where, as "1,2,3". */
static const char *ids_where(rp_store_t *s, const char *where, const char *order)
{
    static char out[4096];
    json_t *w = where ? J(where) : NULL;
    rp_query_t q = {.entity = "contact", .where = w, .order = order, .limit = 1000};
    json_t *rows = NULL;
    rp_error_t err = {0};
    if (rp_store_find(s, &q, &rows, NULL, &err) != 0)
        fail_msg("find %s: %s", where ? where : "(all)", err.msg);
    size_t i, n = 0;
    json_t *r;
    out[0] = '\0';
    json_array_foreach(rows, i, r)
        n += (size_t)snprintf(out + n, sizeof out - n, "%s%lld", i ? "," : "",
                              (long long)json_integer_value(json_object_get(r, "id")));
    json_decref(rows);
    json_decref(w);
    return out;
}

static int find_error(rp_store_t *s, const char *where, const char *order, rp_error_t *err)
{
    json_t *w = where ? J(where) : NULL;
    rp_query_t q = {.entity = "contact", .where = w, .order = order};
    json_t *rows = NULL;
    rp_error_clear(err);
    int rc = rp_store_find(s, &q, &rows, NULL, err);
    json_decref(rows);
    json_decref(w);
    return rc;
}

static rp_store_t *sample(void)
{
    rp_store_t *s = test_open_crm();
    create(s, "contact", "{\"first_name\": \"Ada\", \"last_name\": \"Lovelace\", \"age\": 36,"
                         " \"balance\": \"100.00\", \"stage\": \"won\", \"email\": \"ada@x.org\"}");
    create(s, "contact", "{\"first_name\": \"Alan\", \"last_name\": \"Turing\", \"age\": 41,"
                         " \"balance\": \"99.99\", \"stage\": \"lost\"}");
    create(s, "contact", "{\"first_name\": \"Grace\", \"last_name\": \"Hopper\", \"age\": 85,"
                         " \"balance\": \"1000.50\", \"stage\": \"won\", \"vip\": true}");
    create(s, "contact", "{\"last_name\": \"Nobody\", \"balance\": \"-5\"}");
    create(s, "contact", "{\"first_name\": \"50%_off\", \"last_name\": \"Sale\", \"age\": 36}");
    return s;
}

static void test_filter_operators(void **state)
{
    (void)state;
    rp_store_t *s = sample();
    assert_string_equal(ids_where(s, "{\"stage\": \"won\"}", NULL), "1,3");
    assert_string_equal(ids_where(s, "{\"stage\": {\"ne\": \"won\"}}", NULL), "2,4,5");
    assert_string_equal(ids_where(s, "{\"age\": {\"gt\": 36}}", NULL), "2,3");
    assert_string_equal(ids_where(s, "{\"age\": {\"ge\": 36, \"lt\": 85}}", NULL), "1,2,5");
    assert_string_equal(ids_where(s, "{\"age\": {\"le\": 36}}", NULL), "1,5");
    /* Decimals compare as numbers, not as text: "99.99" < "100.00". */
    assert_string_equal(ids_where(s, "{\"balance\": {\"gt\": \"99.99\"}}", NULL), "1,3");
    assert_string_equal(ids_where(s, "{\"balance\": {\"lt\": 0}}", NULL), "4");
    assert_string_equal(ids_where(s, "{\"balance\": {\"between\": [\"99\", 100]}}", NULL), "1,2");
    assert_string_equal(ids_where(s, "{\"stage\": {\"in\": [\"won\", \"lost\"]}}", NULL),
                        "1,2,3");
    assert_string_equal(ids_where(s, "{\"stage\": {\"not_in\": [\"won\", \"lost\"]}}", NULL),
                        "4,5");
    assert_string_equal(ids_where(s, "{\"stage\": {\"in\": []}}", NULL), "");
    assert_string_equal(ids_where(s, "{\"first_name\": {\"contains\": \"a\"}}", NULL), "1,2,3");
    assert_string_equal(ids_where(s, "{\"first_name\": {\"starts_with\": \"Al\"}}", NULL), "2");
    /* LIKE wildcards in the user's text are literal. */
    assert_string_equal(ids_where(s, "{\"first_name\": {\"contains\": \"%_\"}}", NULL), "5");
    assert_string_equal(ids_where(s, "{\"first_name\": {\"starts_with\": \"_\"}}", NULL), "");
    assert_string_equal(ids_where(s, "{\"first_name\": {\"is_null\": true}}", NULL), "4");
    assert_string_equal(ids_where(s, "{\"first_name\": null}", NULL), "4");
    assert_string_equal(ids_where(s, "{\"age\": {\"is_null\": false}}", NULL), "1,2,3,5");
    assert_string_equal(ids_where(s, "{\"vip\": true}", NULL), "3");
    assert_string_equal(ids_where(s, "{\"id\": {\"in\": [2, 4]}}", NULL), "2,4");
    assert_string_equal(ids_where(s, "{\"created_by\": \"user:test\", \"version\": 1}", NULL),
                        "1,2,3,4,5");
    assert_string_equal(ids_where(s, "{\"created_at\": {\"ge\": \"2026-01-01T00:00:00Z\"}}", NULL),
                        "1,2,3,4,5");
    /* and / or / not, nested. */
    assert_string_equal(ids_where(s, "{\"or\": [{\"stage\": \"lost\"}, {\"age\": 85}]}", NULL),
                        "2,3");
    assert_string_equal(ids_where(s, "{\"stage\": \"won\", \"or\": [{\"age\": 36}, {\"vip\": "
                                     "true}], \"not\": {\"first_name\": \"Ada\"}}", NULL), "3");
    assert_string_equal(ids_where(s, "{\"and\": [{\"age\": {\"gt\": 30}}, {\"not\": {\"or\": "
                                     "[{\"stage\": \"won\"}, {\"stage\": \"lost\"}]}}]}", NULL),
                        "5");
    assert_string_equal(ids_where(s, "{}", NULL), "1,2,3,4,5");
    assert_string_equal(ids_where(s, "{\"or\": []}", NULL), "");
    rp_store_close(s);
}

static void test_filter_errors(void **state)
{
    (void)state;
    rp_store_t *s = sample();
    rp_error_t err = {0};
    assert_int_equal(find_error(s, "{\"emial\": \"x\"}", NULL, &err), RP_EINVAL);
    assert_contains(err.msg, "unknown field \"emial\" on contact");
    assert_int_equal(find_error(s, "{\"age\": {\"gte\": 3}}", NULL, &err), RP_EINVAL);
    assert_contains(err.msg, "unknown operator \"gte\"");
    assert_int_equal(find_error(s, "{\"age\": {\"gt\": \"old\"}}", NULL, &err), RP_EINVAL);
    assert_contains(err.msg, "contact.age");
    assert_int_equal(find_error(s, "{\"stage\": \"dormant\"}", NULL, &err), RP_EINVAL);
    assert_int_equal(find_error(s, "{\"age\": {\"contains\": \"3\"}}", NULL, &err), RP_EINVAL);
    assert_contains(err.msg, "text fields only");
    assert_int_equal(find_error(s, "{\"age\": {\"between\": [1]}}", NULL, &err), RP_EINVAL);
    assert_int_equal(find_error(s, "{\"age\": {\"in\": 3}}", NULL, &err), RP_EINVAL);
    assert_int_equal(find_error(s, "{\"or\": {\"age\": 3}}", NULL, &err), RP_EINVAL);
    assert_int_equal(find_error(s, "[1]", NULL, &err), RP_EINVAL);
    assert_int_equal(find_error(s, "{\"1=1; DROP TABLE contact; --\": 1}", NULL, &err),
                     RP_EINVAL);
    assert_contains(err.msg, "unknown field");
    assert_int_equal(find_error(s, NULL, "age,-nope", &err), RP_EINVAL);
    assert_contains(err.msg, "unknown field \"nope\"");
    assert_int_equal(find_error(s, NULL, "age;DROP TABLE contact", &err), RP_EINVAL);
    assert_int_equal(find_error(s, NULL, "extra", &err), RP_EINVAL);
    /* Too deep a tree is refused rather than recursing without end. */
    char deep[4096] = "";
    size_t n = 0;
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(deep + n, sizeof deep - n, "{\"not\": ");
    n += (size_t)snprintf(deep + n, sizeof deep - n, "{\"age\": 1}");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(deep + n, sizeof deep - n, "}");
    assert_int_equal(find_error(s, deep, NULL, &err), RP_EINVAL);
    assert_contains(err.msg, "nested deeper");
    assert_string_equal(ids_where(s, NULL, NULL), "1,2,3,4,5");
    rp_store_close(s);
}

static void test_order_offset_fields_deleted(void **state)
{
    (void)state;
    rp_store_t *s = sample();
    /* Nulls sort first ascending; id breaks ties. */
    assert_string_equal(ids_where(s, NULL, "age"), "4,1,5,2,3");
    assert_string_equal(ids_where(s, NULL, "-age"), "3,2,1,5,4");
    assert_string_equal(ids_where(s, NULL, "age,-id"), "4,5,1,2,3");
    assert_string_equal(ids_where(s, NULL, "-balance"), "3,1,2,4,5");
    assert_string_equal(ids_where(s, NULL, "stage, first_name"), "2,4,5,1,3");

    rp_error_t err = {0};
    json_t *rows = NULL;
    rp_query_t q = {.entity = "contact", .order = "id", .limit = 2, .offset = 2};
    assert_int_equal(rp_store_find(s, &q, &rows, NULL, &err), 0);
    assert_int_equal(json_array_size(rows), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "id")), 3);
    json_decref(rows);

    const char *fields[] = {"last_name", "age", NULL};
    rp_query_t qf = {.entity = "contact", .fields = fields};
    assert_int_equal(rp_store_find(s, &qf, &rows, NULL, &err), 0);
    json_t *r0 = json_array_get(rows, 0);
    assert_non_null(json_object_get(r0, "last_name"));
    assert_non_null(json_object_get(r0, "id"));
    assert_non_null(json_object_get(r0, "version"));
    assert_null(json_object_get(r0, "first_name"));
    assert_null(json_object_get(r0, "created_at"));
    json_decref(rows);
    const char *badf[] = {"passwd", NULL};
    rp_query_t qb = {.entity = "contact", .fields = badf};
    assert_int_equal(rp_store_find(s, &qb, &rows, NULL, &err), RP_EINVAL);

    assert_int_equal(rp_store_delete(s, &test_ctx, "contact", 2, &err), 0);
    assert_string_equal(ids_where(s, NULL, NULL), "1,3,4,5");
    rp_query_t qd = {.entity = "contact", .with_deleted = true,
                     .where = J("{\"deleted_at\": {\"is_null\": false}}")};
    assert_int_equal(rp_store_find(s, &qd, &rows, NULL, &err), 0);
    assert_int_equal(json_array_size(rows), 1);
    json_decref(rows);
    json_decref(qd.where);
    int64_t n = 0;
    assert_int_equal(rp_store_count(s, "contact", NULL, false, &n, &err), 0);
    assert_int_equal(n, 4);
    assert_int_equal(rp_store_count(s, "contact", NULL, true, &n, &err), 0);
    assert_int_equal(n, 5);
    rp_store_close(s);
}

/* Walks every page with a cursor and checks the concatenation equals one big sorted read. */
static void walk_pages(rp_store_t *s, const char *order, int page)
{
    rp_error_t err = {0};
    json_t *all = NULL;
    rp_query_t q = {.entity = "contact", .order = order, .limit = 10000};
    assert_int_equal(rp_store_find(s, &q, &all, NULL, &err), 0);
    char *cursor = NULL;
    size_t seen = 0;
    for (int guard = 0; guard < 10000; guard++) {
        rp_query_t p = {.entity = "contact", .order = order, .limit = page, .after = cursor};
        json_t *rows = NULL;
        char *next = NULL;
        if (rp_store_find(s, &p, &rows, &next, &err) != 0)
            fail_msg("page %d of %s: %s", guard, order, err.msg);
        size_t i;
        json_t *r;
        json_array_foreach(rows, i, r) {
            json_t *want = json_array_get(all, seen++);
            if (json_integer_value(json_object_get(r, "id")) !=
                json_integer_value(json_object_get(want, "id")))
                fail_msg("order %s: row %zu differs", order, seen - 1);
        }
        json_decref(rows);
        free(cursor);
        cursor = next;
        if (!cursor)
            break;
    }
    assert_int_equal(seen, json_array_size(all));
    json_decref(all);
}

static void test_keyset_cursor(void **state)
{
    (void)state;
    rp_store_t *s = test_open_crm();
    json_t *batch = json_array();
    for (int i = 0; i < 237; i++) {
        json_t *r = json_pack("{s:s}", "last_name", i % 3 ? "Same" : "Other");
        if (i % 5)
            json_object_set_new(r, "age", json_integer(i % 17));
        if (i % 7)
            json_object_set_new(r, "first_name", json_string(i % 2 ? "b" : "a"));
        char bal[32];
        snprintf(bal, sizeof bal, "%d.%02d", (i * 37) % 50, i % 100);
        json_object_set_new(r, "balance", json_string(bal));
        json_array_append_new(batch, r);
    }
    rp_error_t err = {0};
    assert_int_equal(rp_store_create_many(s, &test_ctx, "contact", batch, NULL, NULL, &err), 0);
    json_decref(batch);
    const char *orders[] = {NULL, "age", "-age", "last_name,-age", "-first_name,age,-balance",
                            "-id", "balance"};
    for (size_t i = 0; i < sizeof orders / sizeof *orders; i++) {
        walk_pages(s, orders[i], 10);
        walk_pages(s, orders[i], 1);
    }

    /* A cursor is tied to its order; garbage is refused. */
    rp_query_t q = {.entity = "contact", .order = "age", .limit = 5};
    json_t *rows = NULL;
    char *next = NULL;
    assert_int_equal(rp_store_find(s, &q, &rows, &next, &err), 0);
    json_decref(rows);
    assert_non_null(next);
    rp_query_t other = {.entity = "contact", .order = "-age", .after = next};
    assert_int_equal(rp_store_find(s, &other, &rows, NULL, &err), RP_EINVAL);
    assert_contains(err.msg, "was made for the order \"age\"");
    free(next);
    rp_query_t junk = {.entity = "contact", .after = "not a cursor!"};
    assert_int_equal(rp_store_find(s, &junk, &rows, NULL, &err), RP_EINVAL);
    assert_contains(err.msg, "cursor");
    rp_query_t junk2 = {.entity = "contact", .after = "eyJvIjoiIiwiayI6WyJ4Il19"};
    assert_int_equal(rp_store_find(s, &junk2, &rows, NULL, &err), RP_EINVAL);
    rp_store_close(s);
}

static int hits_count(rp_store_t *s, const char *text, const char *entity)
{
    json_t *hits = NULL;
    rp_error_t err = {0};
    if (rp_store_search(s, text, entity, 50, &hits, &err) != 0)
        fail_msg("search %s: %s", text, err.msg);
    int n = (int)json_array_size(hits);
    json_decref(hits);
    return n;
}

static void test_search(void **state)
{
    (void)state;
    rp_store_t *s = test_open_crm();
    create(s, "account", "{\"name\": \"Smithson Industries\"}");
    int64_t a = create(s, "contact", "{\"first_name\": \"John\", \"last_name\": \"Smith\","
                                     " \"email\": \"john@smith.example\"}");
    create(s, "contact", "{\"first_name\": \"José\", \"last_name\": \"Álvarez\"}");
    create(s, "contact", "{\"first_name\": \"علي\", \"last_name\": \"رضايي\"}");
    create(s, "contact", "{\"first_name\": \"Joanna\", \"last_name\": \"Smyth\"}");

    assert_int_equal(hits_count(s, "smith", NULL), 2);   /* John Smith, Smithson */
    assert_int_equal(hits_count(s, "smith", "contact"), 1);
    assert_int_equal(hits_count(s, "jo smi", NULL), 1);  /* all words, by prefix */
    assert_int_equal(hits_count(s, "jo", NULL), 3);
    assert_int_equal(hits_count(s, "JOSE alvarez", NULL), 1);
    assert_int_equal(hits_count(s, "علی", NULL), 1);     /* Persian ی finds Arabic ي */
    assert_int_equal(hits_count(s, "رضایی", NULL), 1);
    /* FTS syntax in the user's text is just text. */
    assert_int_equal(hits_count(s, "\"smith", NULL), 2);
    assert_int_equal(hits_count(s, "smith OR jo*", NULL), 0);
    assert_int_equal(hits_count(s, "NEAR( ) ^ * :", NULL), 0);
    json_t *hits = NULL;
    rp_error_t err = {0};
    assert_int_equal(rp_store_search(s, "   ", NULL, 10, &hits, &err), RP_EINVAL);
    assert_int_equal(rp_store_search(s, "x", "ghost", 10, &hits, &err), RP_ENOTFOUND);

    assert_int_equal(rp_store_search(s, "john", NULL, 10, &hits, &err), 0);
    json_t *h = json_array_get(hits, 0);
    assert_string_equal(json_string_value(json_object_get(h, "entity")), "contact");
    assert_int_equal(json_integer_value(json_object_get(h, "id")), a);
    assert_contains(json_string_value(json_object_get(h, "snippet")), "[John]");
    json_decref(hits);

    /* The index follows updates in the same transaction. */
    json_t *p = J("{\"last_name\": \"Doe\", \"email\": \"john@doe.example\"}");
    assert_int_equal(rp_store_update(s, &test_ctx, "contact", a, p, 0, NULL, &err), 0);
    json_decref(p);
    assert_int_equal(hits_count(s, "smith", "contact"), 0);
    assert_int_equal(hits_count(s, "doe", NULL), 1);
    /* Non-searchable fields are not indexed. */
    p = J("{\"phone\": \"+44 20 7946 0000\"}");
    assert_int_equal(rp_store_update(s, &test_ctx, "contact", a, p, 0, NULL, &err), 0);
    json_decref(p);
    assert_int_equal(hits_count(s, "7946", NULL), 0);
    rp_store_close(s);
}

/* The rank of hit @p i of @p hits, and its snippet. */
static double hit_rank(json_t *hits, size_t i)
{
    return json_real_value(json_object_get(json_array_get(hits, i), "rank"));
}

static const char *hit_snippet(json_t *hits, size_t i)
{
    return json_string_value(json_object_get(json_array_get(hits, i), "snippet"));
}

/* Ranking: more hits of the words first, then the shorter text, then the newer record; ranks
 * are BM25 with every word weighing alike (no weight from how many records hold a word). Past
 * the window the newest matches are the ones ranked. Every hit has the snippet of its own
 * record, also when two entities share an id (test_access: a restricted reader's). */
static void test_search_ranking(void **state)
{
    (void)state;
    rp_store_t *s = test_open_crm();
    int64_t acct = create(s, "account", "{\"name\": \"Quinta Holdings of Leeds\"}");
    int64_t one = create(s, "contact", "{\"first_name\": \"Ann\", \"last_name\": \"Quint\"}");
    int64_t two = create(s, "contact", "{\"first_name\": \"Quinn\", \"last_name\": \"Quint\"}");
    int64_t longer = create(s, "contact", "{\"first_name\": \"Ann Marie Louise\", "
                                          "\"last_name\": \"Quint\"}");
    int64_t same = create(s, "contact", "{\"first_name\": \"Bob\", \"last_name\": \"Quint\"}");
    assert_int_equal(acct, one); /* two entities, one id: each keeps its own snippet */
    json_t *hits = NULL;
    rp_error_t err = {0};
    assert_int_equal(rp_store_search(s, "qui", NULL, 10, &hits, &err), 0);
    assert_int_equal(json_array_size(hits), 5);
    /* "Quinn Quint": two words match. */
    assert_int_equal(json_integer_value(json_object_get(json_array_get(hits, 0), "id")), two);
    assert_string_equal(hit_snippet(hits, 0), "[Quinn]\n[Quint]");
    /* The ranks are BM25's (k1 1.2, b 0.75) with every word weighing alike: for "Quinn Quint"
     * two hits in a text of 2 words, where the five texts average 14 / 5 words. */
    assert_true(fabs(hit_rank(hits, 0) + 4.4 / (2 + 1.2 * (0.25 + 0.75 * 2 / 2.8))) < 1e-9);
    assert_true(fabs(hit_rank(hits, 1) + 2.2 / (1 + 1.2 * (0.25 + 0.75 * 2 / 2.8))) < 1e-9);
    /* Then the short ones, alike: the newer first, the same rank. */
    json_t *h1 = json_array_get(hits, 1), *h2 = json_array_get(hits, 2);
    assert_true(hit_rank(hits, 0) < hit_rank(hits, 1));
    assert_true(hit_rank(hits, 1) == hit_rank(hits, 2));
    assert_int_equal(json_integer_value(json_object_get(h1, "id")), same);
    assert_string_equal(hit_snippet(hits, 1), "Bob\n[Quint]");
    assert_int_equal(json_integer_value(json_object_get(h2, "id")), one);
    assert_string_equal(json_string_value(json_object_get(h2, "entity")), "contact");
    assert_string_equal(hit_snippet(hits, 2), "Ann\n[Quint]");
    /* Then the account and the contact with the long first name (four words each): after the
     * short ones. */
    for (size_t i = 3; i < 5; i++) {
        json_t *h = json_array_get(hits, i);
        int64_t id = json_integer_value(json_object_get(h, "id"));
        const char *en = json_string_value(json_object_get(h, "entity"));
        assert_true(hit_rank(hits, 2) < hit_rank(hits, i));
        if (strcmp(en, "account") == 0)
            assert_string_equal(hit_snippet(hits, i), "[Quinta] Holdings of Leeds");
        else
            assert_true(id == longer && strcmp(hit_snippet(hits, i), "Ann Marie Louise\n[Quint]") == 0);
    }
    json_decref(hits);
    /* Past 256 matches, the newest 256 are ranked: the two-word match among them first. */
    json_t *many = json_array();
    for (int i = 0; i < 300; i++)
        json_array_append_new(many, json_pack("{s:s,s:s}", "first_name", "Bob", "last_name",
                                              i == 150 ? "Quint Quintessa" : "Quint"));
    assert_int_equal(rp_store_create_many(s, &test_ctx, "contact", many, NULL, NULL, &err), 0);
    json_decref(many);
    assert_int_equal(rp_store_search(s, "quint", "contact", 3, &hits, &err), 0);
    assert_int_equal(json_array_size(hits), 3);
    assert_string_equal(hit_snippet(hits, 0), "Bob\n[Quint] [Quintessa]");
    assert_true(hit_rank(hits, 0) < hit_rank(hits, 1));
    /* The newest "Bob Quint" is next. */
    assert_true(json_integer_value(json_object_get(json_array_get(hits, 1), "id")) > same + 299);
    json_decref(hits);
    rp_store_close(s);
}

/* The index's writes are held to the outermost commit (fts_queue.c): whatever the nesting of
 * savepoints, what is committed is searchable once, what is rolled back is not, and a search
 * inside the transaction sees its own writes. */
static void test_search_follows_transactions(void **state)
{
    (void)state;
    rp_store_t *s = test_open_crm();
    rp_error_t err = {0};
    /* A write held at level 1, run by a search inside a savepoint that is then rolled back:
     * held again, and committed. */
    assert_int_equal(rp_store_begin(s, &err), 0);
    create(s, "contact", "{\"last_name\": \"Aardvark\"}");
    assert_int_equal(rp_store_begin(s, &err), 0);
    assert_int_equal(hits_count(s, "aardvark", NULL), 1);
    create(s, "contact", "{\"last_name\": \"Aardwolf\"}");
    assert_int_equal(rp_store_rollback(s, &err), 0);
    assert_int_equal(hits_count(s, "aard", NULL), 1);
    assert_int_equal(rp_store_commit(s, &err), 0);
    assert_int_equal(hits_count(s, "aardvark", NULL), 1);
    assert_int_equal(hits_count(s, "aardwolf", NULL), 0);
    /* A savepoint's writes rolled back are never indexed. */
    assert_int_equal(rp_store_begin(s, &err), 0);
    assert_int_equal(rp_store_begin(s, &err), 0);
    int64_t b = create(s, "contact", "{\"last_name\": \"Bandicoot\"}");
    assert_int_equal(rp_store_rollback(s, &err), 0);
    assert_int_equal(rp_store_commit(s, &err), 0);
    assert_int_equal(hits_count(s, "bandicoot", NULL), 0);
    json_t *rec = NULL;
    assert_int_equal(rp_store_get(s, "contact", b, &rec, &err), RP_ENOTFOUND);
    /* An update (the old text out, the new in) run by a search two levels down, then
     * committed level by level: the new text only. */
    int64_t c = create(s, "contact", "{\"last_name\": \"Caracal\"}");
    assert_int_equal(rp_store_begin(s, &err), 0);
    json_t *p = J("{\"last_name\": \"Capybara\"}");
    assert_int_equal(rp_store_update(s, &test_ctx, "contact", c, p, 0, NULL, &err), 0);
    json_decref(p);
    assert_int_equal(rp_store_begin(s, &err), 0);
    assert_int_equal(rp_store_begin(s, &err), 0);
    assert_int_equal(hits_count(s, "capybara", NULL), 1);
    assert_int_equal(rp_store_commit(s, &err), 0);
    assert_int_equal(rp_store_rollback(s, &err), 0); /* the search's level: nothing of its own */
    assert_int_equal(hits_count(s, "capybara", NULL), 1);
    assert_int_equal(rp_store_commit(s, &err), 0);
    assert_int_equal(hits_count(s, "capybara", NULL), 1);
    assert_int_equal(hits_count(s, "caracal", NULL), 0);
    /* A whole transaction rolled back after a search ran its writes: gone from the index. */
    assert_int_equal(rp_store_begin(s, &err), 0);
    create(s, "contact", "{\"last_name\": \"Dugong\"}");
    assert_int_equal(hits_count(s, "dugong", NULL), 1);
    assert_int_equal(rp_store_rollback(s, &err), 0);
    assert_int_equal(hits_count(s, "dugong", NULL), 0);
    /* More writes than are held at once (1,024), each record in a savepoint of its own: all of
     * them, or none. */
    for (int keep = 0; keep < 2; keep++) {
        assert_int_equal(rp_store_begin(s, &err), 0);
        for (int i = 0; i < 1500; i++)
            create(s, "contact", keep ? "{\"last_name\": \"Echidna\"}"
                                      : "{\"last_name\": \"Ermine\"}");
        if (keep)
            assert_int_equal(rp_store_commit(s, &err), 0);
        else
            assert_int_equal(rp_store_rollback(s, &err), 0);
    }
    json_t *hits = NULL;
    assert_int_equal(rp_store_search(s, "ermine", NULL, 1000, &hits, &err), 0);
    assert_int_equal(json_array_size(hits), 0);
    json_decref(hits);
    int64_t n = 0;
    json_t *w = J("{\"last_name\": \"Echidna\"}");
    assert_int_equal(rp_store_count(s, "contact", w, false, &n, &err), 0);
    json_decref(w);
    assert_int_equal(n, 1500);
    /* Every one of them is in the index once: the newest 1,000 are found. */
    assert_int_equal(rp_store_search(s, "echidna", NULL, 1000, &hits, &err), 0);
    assert_int_equal(json_array_size(hits), 1000);
    json_decref(hits);
    /* The database rolls the transaction back by itself (as after a full disk, here by hand)
     * and the caller has not seen it: the next write is refused, where its savepoint would
     * have begun a transaction of its own and committed the record alone, without its index
     * row. */
    assert_int_equal(rp_store_begin(s, &err), 0);
    create(s, "contact", "{\"last_name\": \"Fossa\"}");
    assert_int_equal(rp_db_exec(rp_store_db(s), "ROLLBACK", &err), 0);
    json_t *f = J("{\"last_name\": \"Fennec\"}");
    int64_t id = 0;
    assert_int_not_equal(rp_store_create(s, &test_ctx, "contact", f, &id, &err), 0);
    json_decref(f);
    assert_int_not_equal(rp_store_rollback(s, &err), 0); /* says what happened */
    assert_int_equal(rp_store_txn_depth(s), 0);
    w = J("{\"last_name\": {\"in\": [\"Fossa\", \"Fennec\"]}}");
    assert_int_equal(rp_store_count(s, "contact", w, false, &n, &err), 0);
    json_decref(w);
    assert_int_equal(n, 0);
    assert_int_equal(hits_count(s, "fossa fennec", NULL), 0);
    rp_store_close(s);
}

/* Review findings: search text that expands most, a full statement cache under a running
 * query, and spaces around commas in an order. */
static void test_review_regressions(void **state)
{
    (void)state;
    rp_store_t *s = sample();
    rp_error_t err = {0};
    json_t *hits = NULL;
    /* One-letter words and quotes expand the most when quoted for FTS5. */
    assert_int_equal(rp_store_search(s, "a b c d e f g h i j k l m n o p q r s t u v w x y z",
                                     NULL, 10, &hits, &err), 0);
    json_decref(hits);
    assert_int_equal(rp_store_search(s, "\"\"\"\"\"\"\"\"\"\"\"\" \"", NULL, 10, &hits, &err), 0);
    json_decref(hits);
    /* Fill the statement cache with 300 filter shapes, then page a projected query: reading
     * the page's last record must not finalize the query's own statement. */
    for (int k = 1; k <= 300; k++) {
        json_t *in = json_array();
        for (int i = 0; i < k; i++)
            json_array_append_new(in, json_integer(i));
        json_t *w = json_pack("{s:{s:o}}", "age", "in", in);
        int64_t n;
        assert_int_equal(rp_store_count(s, "contact", w, false, &n, &err), 0);
        json_decref(w);
    }
    const char *fields[] = {"last_name", NULL};
    rp_query_t q = {.entity = "contact", .fields = fields, .limit = 2, .order = "last_name"};
    json_t *rows = NULL;
    char *next = NULL;
    assert_int_equal(rp_store_find(s, &q, &rows, &next, &err), 0);
    assert_int_equal(json_array_size(rows), 2);
    assert_non_null(next);
    json_decref(rows);
    free(next);
    /* Spaces around commas do not drop sort keys. */
    assert_string_equal(ids_where(s, NULL, "age , -id"), "4,5,1,2,3");
    assert_string_equal(ids_where(s, NULL, " stage ,first_name "), "2,4,5,1,3");
    rp_store_close(s);
}

static int64_t mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int stop_asked;
static int stop_now(void *ud)
{
    (void)ud;
    return ++stop_asked > 3;
}

/* The published caps refuse before any work; a read still running at the caller's deadline is
 * stopped between two steps (RP_ELIMIT), as is one its caller's own check stops; a write is
 * never stopped half-way, and the transaction around the stopped read lives on. */
static void test_caps_and_budget(void **state)
{
    (void)state;
    rp_store_t *s = sample();
    rp_error_t err = {0};
    /* Caps. */
    size_t cap = 64 + 40 * (RP_FILTER_MAX_CONDITIONS + 1);
    char *big = malloc(cap), *p = big;
    p += sprintf(p, "{\"or\": [");
    for (int i = 0; i <= RP_FILTER_MAX_CONDITIONS; i++)
        p += sprintf(p, "%s{\"age\": %d}", i ? "," : "", i);
    sprintf(p, "]}");
    assert_int_equal(find_error(s, big, NULL, &err), RP_ELIMIT);
    assert_int_equal(err.msgcode, RP_C_CAP);
    assert_non_null(strstr(err.msg, "conditions"));
    free(big);
    json_t *hits = NULL;
    char words[400] = "";
    for (int i = 0; i <= RP_SEARCH_MAX_WORDS; i++)
        strcat(words, "ab ");
    assert_int_equal(rp_store_search(s, words, NULL, 10, &hits, &err), RP_ELIMIT);
    assert_non_null(strstr(err.msg, "words; the limit is 32"));
    char *longtext = calloc(1, RP_SEARCH_MAX_BYTES + 2);
    memset(longtext, 'a', RP_SEARCH_MAX_BYTES + 1);
    assert_int_equal(rp_store_search(s, longtext, NULL, 10, &hits, &err), RP_ELIMIT);
    free(longtext);
    /* A slow read: every contact against many patterns, over a few thousand rows. */
    json_t *many = json_array();
    for (int i = 0; i < 20000; i++)
        json_array_append_new(many, json_pack("{s:s,s:s}", "first_name", "Bulk", "last_name",
                                              "Row"));
    assert_int_equal(rp_store_create_many(s, &test_ctx, "contact", many, NULL, NULL, &err), 0);
    json_decref(many);
    json_t *slow = json_pack("{s:[]}", "or");
    for (int i = 0; i < 120; i++)
        json_array_append_new(json_object_get(slow, "or"),
                              json_pack("{s:{s:s#}}", "last_name", "contains", "zq", (size_t)2));
    int64_t n = 0;
    assert_int_equal(rp_store_begin(s, &err), 0);
    create(s, "contact", "{\"last_name\": \"Inside\"}");
    rp_store_set_deadline(s, mono_now() + 30);
    int64_t t0 = mono_now();
    int rc = rp_store_count(s, "contact", slow, false, &n, &err);
    int64_t took = mono_now() - t0;
    rp_store_set_deadline(s, 0);
    assert_int_equal(rc, RP_ELIMIT);
    assert_int_equal(err.msgcode, RP_C_BUDGET);
    if (took > 1000)
        fail_msg("the read ran %lld ms past a 30 ms deadline", (long long)took);
    /* The caller's own check stops it too. */
    rp_store_set_interrupt(s, stop_now, NULL, NULL, NULL);
    assert_int_equal(rp_store_count(s, "contact", slow, false, &n, &err), RP_ELIMIT);
    rp_store_set_interrupt(s, NULL, NULL, NULL, NULL);
    /* The transaction is whole: its write is there, and it commits. */
    json_t *inside = J("{\"last_name\": \"Inside\"}");
    assert_int_equal(rp_store_count(s, "contact", inside, false, &n, &err), 0);
    assert_int_equal(n, 1);
    json_decref(inside);
    assert_int_equal(rp_store_commit(s, &err), 0);
    /* A write past the deadline is not stopped half-way; a batch stops between its records,
     * and nothing of it is stored. */
    rp_store_set_deadline(s, mono_now() - 1);
    create(s, "contact", "{\"last_name\": \"Late\"}");
    json_t *batch = json_array();
    for (int i = 0; i < 200; i++)
        json_array_append_new(batch, json_pack("{s:s}", "last_name", "Batch"));
    int64_t before = 0, after = 0;
    assert_int_equal(rp_store_count(s, "contact", NULL, false, &before, &err), RP_ELIMIT);
    rp_store_set_deadline(s, 0);
    assert_int_equal(rp_store_count(s, "contact", NULL, false, &before, &err), 0);
    rp_store_set_deadline(s, mono_now() - 1);
    assert_int_equal(rp_store_create_many(s, &test_ctx, "contact", batch, NULL, NULL, &err),
                     RP_ELIMIT);
    assert_int_equal(err.msgcode, RP_C_BUDGET);
    rp_store_set_deadline(s, 0);
    assert_int_equal(rp_store_count(s, "contact", NULL, false, &after, &err), 0);
    assert_int_equal(after, before);
    json_decref(batch);
    /* Without a deadline the same read runs to its end. */
    assert_int_equal(rp_store_count(s, "contact", slow, false, &n, &err), 0);
    assert_int_equal(n, 0);
    json_decref(slow);
    rp_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_operators),
        cmocka_unit_test(test_filter_errors),
        cmocka_unit_test(test_order_offset_fields_deleted),
        cmocka_unit_test(test_keyset_cursor),
        cmocka_unit_test(test_search),
        cmocka_unit_test(test_search_ranking),
        cmocka_unit_test(test_search_follows_transactions),
        cmocka_unit_test(test_review_regressions),
        cmocka_unit_test(test_caps_and_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
