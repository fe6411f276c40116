/*
 * test_access.c — roles and grants: what a role document may say (and the message when it is
 * wrong), scopes by owner, creator and team, hidden and read-only fields, and the store's
 * checks on get, find (filters, order, field lists, cursors), count, search, writes and events.
 */
#include "helpers.h"

#include "rapport/db.h"
#include "rapport/store.h"
#include "rapport/access.h"
#include "rapport/auth.h"
#include "rapport/events.h"

static void role(rp_store_t *s, const char *name, const char *grants)
{
    char key[64];
    snprintf(key, sizeof key, "roles.%s", name);
    rp_error_t err = {0};
    json_t *g = J(grants);
    if (rp_config_set(s, &test_ctx, key, g, &err))
        fail_msg("config_set %s: %s", key, err.msg);
    json_decref(g);
}

static void user(rp_store_t *s, const char *name, const char *r, const char *team)
{
    rp_error_t err = {0};
    if (rp_users_add(s, &test_ctx, name, r, team, "a long password", &err))
        fail_msg("users_add %s: %s", name, err.msg);
}

static void test_role_documents(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    rp_error_t err = {0};
    rp_access_t *a = NULL;
    static const struct {
        const char *grants, *says;
    } bad[] = {
        {"[]", "must be an object"},
        {"{\"entities\": []}", "\"entities\" must be an object"},
        {"{\"entities\": {\"contact\": {\"read\": \"most\"}}}", "entities.contact.read must be"},
        {"{\"entities\": {\"contact\": {\"create\": \"yes\"}}}", "create must be true or false"},
        {"{\"entities\": {\"contact\": {\"fly\": \"all\"}}}", "not a permission"},
        {"{\"fields\": {\"email\": \"hidden\"}}", "is not entity.field"},
        {"{\"fields\": {\"contact.email\": \"secret\"}}", "must be \"hidden\" or \"read_only\""},
        {"{\"colour\": 1}", "\"colour\" is not known"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        role(s, "r", bad[i].grants);
        assert_int_equal(rp_access_load(s, "u", "r", NULL, &a, &err), RP_EINVAL);
        assert_null(a);
        assert_non_null(strstr(err.msg, "RP-E1903: roles.r: "));
        if (!strstr(err.msg, bad[i].says))
            fail_msg("%s: %s", bad[i].grants, err.msg);
    }
    assert_int_equal(rp_access_load(s, "u", "ghost", NULL, &a, &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "role \"ghost\" is not defined"));
    /* admin without a setting grants everything; with one, what it says. */
    assert_int_equal(rp_access_load(s, "u", "admin", NULL, &a, &err), 0);
    assert_int_equal(rp_access_scope(a, "anything", RP_PERM_DELETE), RP_SCOPE_ALL);
    rp_access_free(a);
    role(s, "admin", "{\"entities\": {\"*\": {\"read\": \"all\"}}}");
    assert_int_equal(rp_access_load(s, "u", "admin", NULL, &a, &err), 0);
    assert_int_equal(rp_access_scope(a, "contact", RP_PERM_READ), RP_SCOPE_ALL);
    assert_int_equal(rp_access_scope(a, "contact", RP_PERM_DELETE), RP_SCOPE_NONE);
    rp_access_free(a);
    /* A named entity's grants replace "*" for it; an unnamed permission is none. */
    role(s, "r", "{\"entities\": {\"*\": {\"read\": \"all\", \"update\": \"all\"}, \"deal\": "
                 "{\"read\": \"own\"}}, \"fields\": {\"deal.amount\": \"read_only\", "
                 "\"*.secret\": \"hidden\"}}");
    assert_int_equal(rp_access_load(s, "u", "r", "t", &a, &err), 0);
    assert_int_equal(rp_access_scope(a, "contact", RP_PERM_UPDATE), RP_SCOPE_ALL);
    assert_int_equal(rp_access_scope(a, "deal", RP_PERM_READ), RP_SCOPE_OWN);
    assert_int_equal(rp_access_scope(a, "deal", RP_PERM_UPDATE), RP_SCOPE_NONE);
    assert_int_equal(rp_access_scope(a, "deal", RP_PERM_CREATE), RP_SCOPE_NONE);
    assert_true(rp_access_read_only(a, "deal", "amount"));
    assert_false(rp_access_hidden(a, "deal", "amount"));
    assert_true(rp_access_hidden(a, "contact", "secret"));
    assert_true(rp_access_read_only(a, "contact", "secret"));
    assert_string_equal(rp_access_team(a), "t");
    rp_access_free(a);
    rp_store_close(s);
}

static const char person_spec[] =
    "{\"fields\": {\"name\": {\"type\": \"text\", \"searchable\": true}, \"email\": {\"type\": "
    "\"email\", \"searchable\": true, \"unique\": true}, \"owner\": {\"type\": \"text\", "
    "\"indexed\": true}, \"tier\": {\"type\": \"text\"}}}";

static void test_the_store_checks(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    rp_error_t err = {0};
    define(s, "contact", person_spec);
    define(s, "note", "{\"fields\": {\"body\": {\"type\": \"text\"}}}");
    role(s, "sales", "{\"entities\": {\"contact\": {\"read\": \"team\", \"create\": true, "
                     "\"update\": \"own\"}, \"note\": {\"read\": \"own\", \"create\": true}}, "
                     "\"fields\": {\"contact.email\": \"hidden\", \"contact.tier\": "
                     "\"read_only\"}}");
    user(s, "sam", "sales", "north");
    user(s, "tim", "sales", "north");
    user(s, "zoe", "sales", "south");
    int64_t c_sam = create(s, "contact", "{\"name\": \"Sam's\", \"email\": \"hid-s@x.io\", "
                                         "\"owner\": \"sam\"}");
    int64_t c_tim = create(s, "contact", "{\"name\": \"Tim's\", \"email\": \"hid-t@x.io\", "
                                         "\"owner\": \"tim\"}");
    int64_t c_zoe = create(s, "contact", "{\"name\": \"Zoe's\", \"email\": \"hid-z@x.io\", "
                                         "\"owner\": \"zoe\"}");
    rp_access_t *a = NULL;
    assert_int_equal(rp_access_of_user(s, "sam", &a, &err), 0);
    rp_ctx_t ctx = {.actor = "user:sam", .origin = "test", .access = a};

    /* get: the team's records, without the hidden field; another team's is refused. */
    json_t *r = NULL;
    assert_int_equal(rp_store_get_as(s, &ctx, "contact", c_tim, &r, &err), 0);
    assert_null(json_object_get(r, "email"));
    json_decref(r);
    assert_int_equal(rp_store_get_as(s, &ctx, "contact", c_zoe, &r, &err), RP_EPERM);
    assert_non_null(strstr(err.msg, "missing: contact.read"));
    assert_null(r);

    /* find, count: the scope; a page at a time still only the scope; hidden fields refused. */
    rp_query_t q = {.entity = "contact", .order = "-id", .limit = 1, .access = a};
    json_t *rows = NULL;
    char *next = NULL;
    assert_int_equal(rp_store_find(s, &q, &rows, &next, &err), 0);
    assert_int_equal(json_array_size(rows), 1);
    assert_non_null(next);
    json_decref(rows);
    q.after = next;
    assert_int_equal(rp_store_find(s, &q, &rows, NULL, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "id")), c_sam);
    assert_null(json_object_get(json_array_get(rows, 0), "email"));
    json_decref(rows);
    free(next);
    int64_t n = 0;
    assert_int_equal(rp_store_count_as(s, a, "contact", NULL, false, &n, &err), 0);
    assert_int_equal(n, 2);
    json_t *w = J("{\"or\": [{\"name\": \"x\"}, {\"not\": {\"email\": \"hid-z@x.io\"}}]}");
    assert_int_equal(rp_store_count_as(s, a, "contact", w, false, &n, &err), RP_EPERM);
    assert_string_equal(err.field, "email");
    json_decref(w);
    rp_query_t qo = {.entity = "contact", .order = "email", .access = a};
    assert_int_equal(rp_store_find(s, &qo, &rows, NULL, &err), RP_EPERM);
    const char *fl[] = {"name", "email", NULL};
    rp_query_t qf = {.entity = "contact", .fields = fl, .access = a};
    assert_int_equal(rp_store_find(s, &qf, &rows, NULL, &err), RP_EPERM);

    /* search: not through the hidden field, nor another team's record. */
    json_t *hits = NULL;
    assert_int_equal(rp_store_search_as(s, a, "hid", NULL, 10, &hits, &err), 0);
    assert_int_equal(json_array_size(hits), 0);
    json_decref(hits);
    assert_int_equal(rp_store_search_as(s, a, "zoe", NULL, 10, &hits, &err), 0);
    assert_int_equal(json_array_size(hits), 0);
    json_decref(hits);
    assert_int_equal(rp_store_search_as(s, a, "tim", NULL, 10, &hits, &err), 0);
    assert_int_equal(json_array_size(hits), 1);
    assert_null(strstr(json_string_value(json_object_get(json_array_get(hits, 0), "snippet")),
                       "hid-"));
    json_decref(hits);

    /* A narrow scope among many matches still finds its own: the search asks again, wider. */
    rp_access_t *za = NULL;
    assert_int_equal(rp_access_of_user(s, "zoe", &za, &err), 0);
    for (int i = 0; i < 120; i++)
        create(s, "contact", "{\"name\": \"Commonname\", \"owner\": \"tim\"}");
    assert_int_equal(rp_store_search_as(s, za, "zoe", NULL, 5, &hits, &err), 0);
    assert_int_equal(json_array_size(hits), 1);
    json_decref(hits);
    int64_t zc = create(s, "contact", "{\"name\": \"Commonname Zed\", \"owner\": \"zoe\"}");
    for (int i = 0; i < 120; i++)
        create(s, "contact", "{\"name\": \"Commonname\", \"owner\": \"tim\"}");
    assert_int_equal(rp_store_search_as(s, za, "commonname", NULL, 5, &hits, &err), 0);
    assert_int_equal(json_array_size(hits), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(hits, 0), "id")), zc);
    json_decref(hits);
    rp_access_free(za);

    /* writes: own only; hidden and read-only fields refused, naming the field. */
    json_t *p = J("{\"name\": \"Renamed\"}");
    assert_int_equal(rp_store_update(s, &ctx, "contact", c_tim, p, 0, NULL, &err), RP_EPERM);
    assert_non_null(strstr(err.msg, "missing: contact.update"));
    assert_int_equal(rp_store_update(s, &ctx, "contact", c_sam, p, 0, NULL, &err), 0);
    json_decref(p);
    p = J("{\"tier\": \"gold\"}");
    assert_int_equal(rp_store_update(s, &ctx, "contact", c_sam, p, 0, NULL, &err), RP_EPERM);
    assert_string_equal(err.field, "tier");
    json_decref(p);
    p = J("[{\"name\": \"ok\"}, {\"name\": \"no\", \"email\": \"n@x.io\"}]");
    size_t failed = 99;
    assert_int_equal(rp_store_create_many(s, &ctx, "contact", p, NULL, &failed, &err), RP_EPERM);
    assert_int_equal(failed, 1);
    assert_string_equal(err.field, "email");
    json_decref(p);
    assert_int_equal(rp_store_delete(s, &ctx, "contact", c_sam, &err), RP_EPERM);
    assert_non_null(strstr(err.msg, "missing: contact.delete"));
    p = J("{\"body\": \"mine\"}");
    assert_int_equal(rp_store_create(s, &ctx, "note", p, NULL, &err), 0);
    json_decref(p);

    /* An entity without an owner field: own means created by the user. */
    int64_t other_note = create(s, "note", "{\"body\": \"not mine\"}");
    assert_int_equal(rp_store_get_as(s, &ctx, "note", other_note, &r, &err), RP_EPERM);
    assert_int_equal(rp_store_count_as(s, a, "note", NULL, false, &n, &err), 0);
    assert_int_equal(n, 1);

    /* events: another team's record's are not shown, the hidden field is taken out. */
    rp_event_t evs[16];
    int ne = rp_events_list(s, 0, false, evs, 16, &err);
    assert_true(ne > 3);
    int shown = 0;
    for (int i = 0; i < ne; i++) {
        json_t *ev = rp_event_json(&evs[i]);
        int rc = rp_access_event(s, a, ev, &err);
        assert_true(rc == 0 || rc == 1);
        if (rc == 1) {
            shown++;
            char *d = json_dumps(ev, 0);
            assert_null(strstr(d, "hid-"));
            free(d);
        } else if (evs[i].record_id == c_zoe) {
            /* expected */
        }
        json_decref(ev);
        rp_event_clear(&evs[i]);
    }
    assert_true(shown >= 3 && shown < ne);
    /* A change caused by an event on a record the user may not read: explain shows that
     * there was a cause, not what it was. */
    rp_event_t zev;
    assert_int_equal(rp_events_for_record(s, "contact", c_zoe, 0, &zev, 1, &err), 1);
    rp_ctx_t caused = {.actor = "system", .origin = "test", .cause = zev.seq, .depth = 1};
    rp_event_clear(&zev);
    json_t *cp = J("{\"name\": \"Caused\"}");
    assert_int_equal(rp_store_update(s, &caused, "contact", c_sam, cp, 0, NULL, &err), 0);
    json_decref(cp);
    json_t *ex = NULL;
    assert_int_equal(rp_events_explain_as(s, &ctx, "contact", c_sam, "name", &ex, &err), 0);
    json_t *last = json_array_get(ex, json_array_size(ex) - 1);
    json_t *cz = json_array_get(json_object_get(last, "causes"), 0);
    assert_true(json_is_true(json_object_get(cz, "hidden")));
    assert_null(json_object_get(cz, "entity"));
    json_decref(ex);
    assert_int_equal(rp_events_explain(s, "contact", c_sam, "name", &ex, &err), 0);
    last = json_array_get(ex, json_array_size(ex) - 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(last, "causes"), 0), "entity")),
                        "contact");
    json_decref(ex);
    assert_int_equal(rp_events_explain_as(s, &ctx, "contact", c_sam, "email", &ex, &err),
                     RP_EPERM);
    assert_int_equal(rp_events_explain_as(s, &ctx, "contact", c_sam, "name", &ex, &err), 0);
    json_decref(ex);
    rp_access_free(a);
    rp_store_close(s);
}

/* The rank a reader gets for record @p id among @p hits, or 0 when it is not there. */
static double rank_of(json_t *hits, int64_t id)
{
    size_t i;
    json_t *h;
    json_array_foreach(hits, i, h)
        if (json_integer_value(json_object_get(h, "id")) == id)
            return json_real_value(json_object_get(h, "rank"));
    return 0;
}

/* Search ranks speak only of what the reader sees: two records alike in their visible fields
 * rank alike, whatever their hidden field holds (a word of the query, many of them, or a long
 * text), while the reader who sees everything gets the index's own ranks. */
static void test_search_ranks_only_what_is_visible(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    rp_error_t err = {0};
    define(s, "lead", "{\"fields\": {\"name\": {\"type\": \"text\", \"searchable\": true}, "
                      "\"notes\": {\"type\": \"text\", \"searchable\": true}}}");
    role(s, "clerk", "{\"entities\": {\"lead\": {\"read\": \"all\"}}, "
                     "\"fields\": {\"lead.notes\": \"hidden\"}}");
    user(s, "cleo", "clerk", NULL);
    int64_t plain = create(s, "lead", "{\"name\": \"Acme fraud desk\"}");
    int64_t word = create(s, "lead", "{\"name\": \"Acme fraud desk\", \"notes\": \"fraud fraud "
                                     "fraud fraud\"}");
    int64_t longer = create(s, "lead", "{\"name\": \"Acme fraud desk\", \"notes\": \"a b c d e f "
                                       "g h i j k l m n o p q r s t u v w x y z\"}");
    int64_t shorter = create(s, "lead", "{\"name\": \"Acme fraud\"}");
    rp_access_t *a = NULL;
    assert_int_equal(rp_access_of_user(s, "cleo", &a, &err), 0);
    json_t *hits = NULL;
    assert_int_equal(rp_store_search_as(s, a, "fraud", NULL, 10, &hits, &err), 0);
    assert_int_equal(json_array_size(hits), 4);
    double r_plain = rank_of(hits, plain), r_word = rank_of(hits, word);
    double r_long = rank_of(hits, longer), r_short = rank_of(hits, shorter);
    assert_true(r_plain < 0);
    assert_true(r_plain == r_word);
    assert_true(r_plain == r_long);
    /* What the reader sees still ranks: the shorter visible text is the better match, first. */
    assert_true(r_short < r_plain);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(hits, 0), "id")),
                     shorter);
    json_decref(hits);
    /* Which hits are kept, and the order of those the reader sees alike, owe nothing to the
     * hidden text: of two alike, the newer comes first, wherever the hidden word is. */
    int64_t older = create(s, "lead", "{\"name\": \"zulu desk\", \"notes\": \"zulu zulu zulu\"}");
    int64_t newer = create(s, "lead", "{\"name\": \"zulu desk\"}");
    assert_int_equal(rp_store_search_as(s, a, "zulu", NULL, 1, &hits, &err), 0);
    assert_int_equal(json_array_size(hits), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(hits, 0), "id")), newer);
    json_decref(hits);
    older = create(s, "lead", "{\"name\": \"yank desk\"}");
    newer = create(s, "lead", "{\"name\": \"yank desk\", \"notes\": \"yank yank yank\"}");
    assert_int_equal(rp_store_search_as(s, a, "yank", NULL, 1, &hits, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(hits, 0), "id")), newer);
    json_decref(hits);
    (void)older;
    /* The index's own ranks (for whoever sees all) do tell the hidden text apart. */
    assert_int_equal(rp_store_search(s, "fraud", NULL, 10, &hits, &err), 0);
    assert_true(rank_of(hits, plain) != rank_of(hits, word));
    json_decref(hits);
    /* Snippets are made after the cut, each hit its own: the index's for an entity with
     * nothing hidden, the visible text for one with a hidden field. */
    define(s, "memo", "{\"fields\": {\"body\": {\"type\": \"text\", \"searchable\": true}}}");
    role(s, "clerk", "{\"entities\": {\"lead\": {\"read\": \"all\"}, \"memo\": {\"read\": "
                     "\"all\"}}, \"fields\": {\"lead.notes\": \"hidden\"}}");
    rp_access_free(a);
    assert_int_equal(rp_access_of_user(s, "cleo", &a, &err), 0);
    create(s, "memo", "{\"body\": \"call the Xeno desk\"}");
    create(s, "lead", "{\"name\": \"Xeno desk\", \"notes\": \"xenon secret\"}");
    assert_int_equal(rp_store_search_as(s, a, "xeno", NULL, 10, &hits, &err), 0);
    assert_int_equal(json_array_size(hits), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *h = json_array_get(hits, i);
        const char *en = json_string_value(json_object_get(h, "entity"));
        assert_string_equal(json_string_value(json_object_get(h, "snippet")),
                            strcmp(en, "memo") == 0 ? "call the [Xeno] desk" : "Xeno desk");
    }
    json_decref(hits);
    rp_access_free(a);
    rp_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_role_documents),
        cmocka_unit_test(test_the_store_checks),
        cmocka_unit_test(test_search_ranks_only_what_is_visible),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
