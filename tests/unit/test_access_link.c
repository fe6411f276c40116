/*
 * test_access_link.c — linked scopes and record principals, tried as an attacker would: a
 * customer acting as their own record tries every read and write to reach another customer's
 * records (by id, filter, order, search, aggregate, events, re-pointing a link, creating for
 * someone else, moving their own record), and roles whose links do not fit the registry are
 * refused when set, with a message that says where.
 */
#include "helpers.h"

#include "rapport/access.h"
#include "rapport/events.h"
#include "rapport/store.h"

/* A small world in neutral nouns: the core knows none of them. */
static void world(rp_store_t *s)
{
    define(s, "acct", "{\"fields\": {\"name\": {\"type\": \"text\", \"searchable\": true}}}");
    define(s, "person", "{\"fields\": {\"name\": {\"type\": \"text\", \"searchable\": true},"
                        " \"acct\": {\"type\": \"ref\", \"ref\": \"acct\"},"
                        " \"tier\": {\"type\": \"text\"}}}");
    define(s, "order", "{\"fields\": {\"person\": {\"type\": \"ref\", \"ref\": \"person\"},"
                       " \"total\": {\"type\": \"integer\"}, \"margin\": {\"type\": \"integer\"},"
                       " \"label\": {\"type\": \"text\", \"searchable\": true}}}");
    define(s, "invoice", "{\"fields\": {\"order\": {\"type\": \"ref\", \"ref\": \"order\"},"
                         " \"total\": {\"type\": \"integer\"}}}");
    define(s, "note", "{\"fields\": {\"person\": {\"type\": \"ref\", \"ref\": \"person\"},"
                      " \"shown\": {\"type\": \"text\"},"
                      " \"body\": {\"type\": \"text\", \"searchable\": true}}}");
    define(s, "tag", "{\"fields\": {\"note\": {\"type\": \"ref\", \"ref\": \"note\"},"
                     " \"label\": {\"type\": \"text\"}}}");
}

static const char portal[] =
    "{\"principal\": \"person\","
    " \"entities\": {\"person\": {\"read\": \"self\", \"update\": \"self\"},"
    "  \"acct\": {\"read\": {\"link\": \"self.acct\"}},"
    "  \"order\": {\"read\": {\"link\": \"person\"}},"
    "  \"invoice\": {\"read\": {\"link\": \"order.person\"}},"
    "  \"note\": {\"read\": {\"link\": \"person\", \"where\": {\"shown\": \"yes\"}},"
    "            \"create\": true, \"update\": {\"link\": \"person\"},"
    "            \"delete\": {\"link\": \"person\"}},"
    "  \"tag\": {\"read\": {\"through\": \"note\"}}},"
    " \"fields\": {\"order.margin\": \"hidden\", \"person.acct\": \"read_only\"}}";

static int set_role(rp_store_t *s, const char *name, const char *grants, rp_error_t *err)
{
    json_t *g = J(grants);
    rp_error_clear(err);
    int rc = rp_access_role_set(s, &test_ctx, name, g, err);
    json_decref(g);
    return rc;
}

typedef struct ids {
    int64_t acct, person, order, invoice, note_shown, note_internal;
} ids_t;

static ids_t customer(rp_store_t *s, const char *who)
{
    ids_t r;
    char buf[256];
    snprintf(buf, sizeof buf, "{\"name\": \"Acct %s\"}", who);
    r.acct = create(s, "acct", buf);
    snprintf(buf, sizeof buf, "{\"name\": \"Person %s\", \"acct\": %lld}", who, (long long)r.acct);
    r.person = create(s, "person", buf);
    snprintf(buf, sizeof buf, "{\"person\": %lld, \"total\": 10, \"margin\": 3, \"label\": "
             "\"parcel%s\"}", (long long)r.person, who);
    r.order = create(s, "order", buf);
    snprintf(buf, sizeof buf, "{\"order\": %lld, \"total\": 10}", (long long)r.order);
    r.invoice = create(s, "invoice", buf);
    snprintf(buf, sizeof buf, "{\"person\": %lld, \"shown\": \"yes\", \"body\": \"hello%s\"}",
             (long long)r.person, who);
    r.note_shown = create(s, "note", buf);
    snprintf(buf, sizeof buf, "{\"person\": %lld, \"shown\": \"no\", \"body\": \"secret%s\"}",
             (long long)r.person, who);
    r.note_internal = create(s, "note", buf);
    snprintf(buf, sizeof buf, "{\"note\": %lld, \"label\": \"on shown\"}",
             (long long)r.note_shown);
    create(s, "tag", buf);
    snprintf(buf, sizeof buf, "{\"note\": %lld, \"label\": \"on internal\"}",
             (long long)r.note_internal);
    create(s, "tag", buf);
    return r;
}

static int64_t count(rp_store_t *s, const rp_access_t *a, const char *entity, const char *where)
{
    json_t *w = where ? J(where) : NULL;
    int64_t n = -1;
    rp_error_t err = {0};
    if (rp_store_count_as(s, a, entity, w, false, &n, &err))
        fail_msg("count %s: %s", entity, err.msg);
    json_decref(w);
    return n;
}

static void test_link_documents(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    world(s);
    rp_error_t err = {0};
    static const struct {
        const char *grants, *says;
    } bad[] = {
        {"{\"entities\": {\"order\": {\"read\": {\"link\": \"person\"}}}}",
         "entities.order.read: a link needs the role's \"principal\""},
        {"{\"principal\": \"ghost\", \"entities\": {\"order\": {\"read\": {\"link\": "
         "\"person\"}}}}", "principal: there is no entity \"ghost\""},
        {"{\"principal\": \"person\", \"entities\": {\"invoice\": {\"read\": {\"link\": "
         "\"order.customer\"}}}}", "entities.invoice.read: link: \"customer\" is not a field of "
                                   "order"},
        {"{\"principal\": \"person\", \"entities\": {\"invoice\": {\"read\": {\"link\": "
         "\"total\"}}}}", "link: invoice.total is not a ref"},
        {"{\"principal\": \"person\", \"entities\": {\"invoice\": {\"read\": {\"link\": "
         "\"order\"}}}}", "the path ends at order, not at the principal person"},
        {"{\"principal\": \"person\", \"entities\": {\"order\": {\"read\": \"self\"}}}",
         "the path from the principal's person ends at person, not at order"},
        {"{\"principal\": \"person\", \"entities\": {\"order\": {\"read\": {\"link\": "
         "\"self.acct\"}}}}", "ends at acct, not at order"},
        {"{\"principal\": \"person\", \"entities\": {\"*\": {\"read\": {\"link\": "
         "\"person\"}}}}", "it is given per entity"},
        {"{\"principal\": \"person\", \"entities\": {\"note\": {\"read\": {\"link\": "
         "\"person\", \"where\": {\"colour\": \"red\"}}}}}", "entities.note.read: where: "},
        {"{\"principal\": \"person\", \"entities\": {\"note\": {\"read\": {\"link\": "
         "\"person\", \"where\": [1]}}}}", "entities.note.read.where must be a filter object"},
        {"{\"principal\": \"person\", \"entities\": {\"note\": {\"read\": {\"link\": "
         "\"person\", \"when\": 1}}}}", "entities.note.read.when is not known"},
        {"{\"principal\": \"person\", \"entities\": {\"invoice\": {\"read\": {\"link\": "
         "\"order..person\"}}}}", "is not a"},
        {"{\"principal\": \"person\", \"entities\": {\"invoice\": {\"read\": {\"link\": "
         "\"a.b.c.d.e\"}}}}", "a path follows at most 4 ref fields"},
        {"{\"principal\": \"person\", \"entities\": {\"invoice\": {\"read\": {\"link\": "
         "\"order;drop table person\"}}}}", "is not a field name"},
        {"{\"principal\": 7}", "\"principal\" must name the entity"},
        {"{\"principal\": \"person\", \"entities\": {\"tag\": {\"read\": {\"through\": "
         "\"note\"}}}}", "through: tag.note points to note, which this role does not read by a "
                         "link of its own"},
        {"{\"principal\": \"person\", \"entities\": {\"note\": {\"read\": {\"link\": "
         "\"person\"}}, \"tag\": {\"read\": {\"through\": \"note.person\"}}}}",
         "entities.tag.read.through: \"note.person\" must be one ref field"},
        {"{\"principal\": \"person\", \"entities\": {\"tag\": {\"read\": {\"through\": "
         "\"label\"}}}}", "through: tag.label is not a ref"},
        {"{\"principal\": \"person\", \"entities\": {\"tag\": {\"read\": {\"through\": "
         "\"note\", \"link\": \"note.person\"}}}}", "must be \"none\""},
        {"{\"principal\": \"person\", \"entities\": {\"note\": {\"read\": {\"through\": "
         "\"person\"}}, \"person\": {\"read\": \"self\"}, \"tag\": {\"read\": {\"through\": "
         "\"note\"}}}}", "tag.note points to note, which this role does not read by a link"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(set_role(s, "p", bad[i].grants, &err), RP_EINVAL);
        if (!strstr(err.msg, "roles.p: ") || !strstr(err.msg, bad[i].says))
            fail_msg("%s: %s", bad[i].grants, err.msg);
        /* Refused means not kept. */
        json_t *v = NULL;
        assert_int_equal(rp_config_get(s, "roles.p", &v, NULL), RP_ENOTFOUND);
    }
    assert_int_equal(set_role(s, "portal", portal, &err), 0);
    rp_store_close(s);
}

static void test_subjects(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    world(s);
    rp_error_t err = {0};
    assert_int_equal(set_role(s, "portal", portal, &err), 0);
    assert_int_equal(set_role(s, "staff", "{\"entities\": {\"*\": {\"read\": \"all\"}}}", &err),
                     0);
    ids_t a = customer(s, "a");
    rp_access_t *x = NULL;
    assert_int_equal(rp_access_of_subject(s, "person:1", "portal", &x, &err), 0);
    int64_t id = 0;
    assert_string_equal(rp_access_subject(x, &id), "person");
    assert_int_equal(id, a.person);
    assert_string_equal(rp_access_user(x), "person:1");
    assert_string_equal(rp_access_team(x), "");
    rp_access_free(x);
    /* A record never acts with a staff role, nor with admin's everything. */
    assert_int_equal(rp_access_of_subject(s, "person:1", "staff", &x, &err), RP_EPERM);
    assert_contains(err.msg, "role staff is not for records of person");
    assert_int_equal(rp_access_of_subject(s, "person:1", "admin", &x, &err), RP_EPERM);
    assert_int_equal(rp_access_of_subject(s, "acct:1", "portal", &x, &err), RP_EPERM);
    assert_null(x);
    static const char *const malformed[] = {"person", "person:", "person:x", ":1", "person:0",
                                            "person:-1", "person:1x", "person:99999999999999999999"};
    for (size_t i = 0; i < sizeof malformed / sizeof *malformed; i++) {
        assert_int_equal(rp_access_of_subject(s, malformed[i], "portal", &x, &err), RP_EINVAL);
        assert_contains(err.msg, "is not a record (ENTITY:ID");
    }
    assert_int_equal(rp_access_of_subject(s, "ghost:1", "portal", &x, &err), RP_EINVAL);
    assert_int_equal(rp_access_of_subject(s, "person:42", "portal", &x, &err), RP_EPERM);
    assert_contains(err.msg, "person 42 does not exist");
    assert_int_equal(rp_store_delete(s, &test_ctx, "person", a.person, &err), 0);
    assert_int_equal(rp_access_of_subject(s, "person:1", "portal", &x, &err), RP_EPERM);
    assert_contains(err.msg, "person 1 is deleted");
    assert_null(x);
    /* A user given a role with links reaches nothing through them. */
    assert_int_equal(rp_access_load(s, "sam", "portal", NULL, &x, &err), 0);
    assert_int_equal(count(s, x, "order", NULL), 0);
    assert_int_equal(count(s, x, "person", NULL), 0);
    rp_access_free(x);
    rp_store_close(s);
}

static void test_reads(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    world(s);
    rp_error_t err = {0};
    assert_int_equal(set_role(s, "portal", portal, &err), 0);
    ids_t a = customer(s, "a"), b = customer(s, "b");
    rp_access_t *x = NULL;
    char who[32];
    snprintf(who, sizeof who, "person:%lld", (long long)a.person);
    assert_int_equal(rp_access_of_subject(s, who, "portal", &x, &err), 0);
    rp_ctx_t ctx = {.actor = who, .origin = "test", .access = x};

    /* count and find: A's only, one hop, two hops, self and self.acct; the where holds. */
    assert_int_equal(count(s, x, "person", NULL), 1);
    assert_int_equal(count(s, x, "acct", NULL), 1);
    assert_int_equal(count(s, x, "order", NULL), 1);
    assert_int_equal(count(s, x, "invoice", NULL), 1);
    assert_int_equal(count(s, x, "note", NULL), 1);
    /* through: the tag on A's shown note; not the one on A's internal note, nor B's. */
    assert_int_equal(count(s, x, "tag", NULL), 1);
    assert_int_equal(count(s, x, "tag", "{\"label\": \"on internal\"}"), 0);
    /* A filter can only narrow: asking for B's by id, or for the internal note, finds none. */
    char w[96];
    snprintf(w, sizeof w, "{\"person\": %lld}", (long long)b.person);
    assert_int_equal(count(s, x, "order", w), 0);
    assert_int_equal(count(s, x, "note", "{\"or\": [{\"shown\": \"no\"}, {\"shown\": \"yes\"}]}"),
                     1);
    assert_int_equal(count(s, x, "invoice", "{\"or\": [{\"id\": 1}, {\"id\": 2}]}"), 1);
    const char *entities[] = {"person", "acct", "order", "invoice", "note"};
    int64_t mine[] = {a.person, a.acct, a.order, a.invoice, a.note_shown};
    int64_t theirs[] = {b.person, b.acct, b.order, b.invoice, b.note_shown};
    for (int i = 0; i < 5; i++) {
        rp_query_t q = {.entity = entities[i], .access = x, .limit = 100};
        json_t *rows = NULL;
        assert_int_equal(rp_store_find(s, &q, &rows, NULL, &err), 0);
        assert_int_equal(json_array_size(rows), 1);
        assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "id")),
                         mine[i]);
        json_decref(rows);
        json_t *r = NULL;
        assert_int_equal(rp_store_get_as(s, &ctx, entities[i], mine[i], &r, &err), 0);
        json_decref(r);
        /* Another's record is a missing one: not even its existence is told. */
        assert_int_equal(rp_store_get_as(s, &ctx, entities[i], theirs[i], &r, &err),
                         RP_ENOTFOUND);
        assert_null(r);
        assert_contains(err.msg, "with id");
    }
    json_t *r = NULL;
    assert_int_equal(rp_store_get_as(s, &ctx, "note", a.note_internal, &r, &err),
                     RP_ENOTFOUND);
    /* Hidden stays hidden: no filtering, ordering or field list on it. */
    json_t *wf = J("{\"margin\": {\"gt\": 0}}");
    int64_t n = 0;
    assert_int_equal(rp_store_count_as(s, x, "order", wf, false, &n, &err), RP_EPERM);
    json_decref(wf);
    rp_query_t qo = {.entity = "order", .order = "-margin", .access = x};
    json_t *rows = NULL;
    assert_int_equal(rp_store_find(s, &qo, &rows, NULL, &err), RP_EPERM);
    assert_int_equal(rp_store_get_as(s, &ctx, "order", a.order, &r, &err), 0);
    assert_null(json_object_get(r, "margin"));
    json_decref(r);

    /* aggregate: sums only A's. */
    const char *meas[] = {"count", "sum:total", NULL};
    rp_aggregate_t ag = {.entity = "invoice", .measures = meas, .access = x};
    json_t *out = NULL;
    assert_int_equal(rp_store_aggregate(s, &ag, &out, &err), 0);
    char *d = json_dumps(out, JSON_COMPACT);
    assert_contains(d, "\"count\":1");
    free(d);
    json_decref(out);
    const char *gm[] = {"margin", NULL};
    rp_aggregate_t ah = {.entity = "order", .group_by = gm, .access = x};
    assert_int_equal(rp_store_aggregate(s, &ah, &out, &err), RP_EPERM);

    /* search: B's words and A's internal note find nothing. */
    json_t *hits = NULL;
    assert_int_equal(rp_store_search_as(s, x, "parcelb", NULL, 10, &hits, &err), 0);
    assert_int_equal(json_array_size(hits), 0);
    json_decref(hits);
    assert_int_equal(rp_store_search_as(s, x, "secreta", NULL, 10, &hits, &err), 0);
    assert_int_equal(json_array_size(hits), 0);
    json_decref(hits);
    assert_int_equal(rp_store_search_as(s, x, "parcela", NULL, 10, &hits, &err), 0);
    assert_int_equal(json_array_size(hits), 1);
    json_decref(hits);

    /* events: about A's records yes, B's no, A's internal note no. */
    json_t *ev = json_pack("{s:s,s:I,s:{}}", "entity", "order", "record_id",
                           (json_int_t)a.order, "changes");
    assert_int_equal(rp_access_event(s, x, ev, &err), 1);
    json_object_set_new(ev, "record_id", json_integer(b.order));
    assert_int_equal(rp_access_event(s, x, ev, &err), 0);
    json_object_set_new(ev, "entity", json_string("note"));
    json_object_set_new(ev, "record_id", json_integer(a.note_internal));
    assert_int_equal(rp_access_event(s, x, ev, &err), 0);
    json_object_del(ev, "entity");
    assert_int_equal(rp_access_event(s, x, ev, &err), 0); /* no entity: not for a customer */
    json_decref(ev);
    /* An update of hidden fields only is not shown at all (who made it would still tell
     * that something changed); one with a visible change is, without the hidden ones. */
    json_t *up = json_pack("{s:s,s:s,s:I,s:{s:[ii]}}", "type", "order.updated", "entity",
                           "order", "record_id", (json_int_t)a.order, "changes", "margin", 3, 4);
    assert_int_equal(rp_access_event(s, x, up, &err), 0);
    json_object_set_new(json_object_get(up, "changes"), "margin", json_pack("[ii]", 3, 4));
    json_object_set_new(json_object_get(up, "changes"), "total", json_pack("[ii]", 10, 11));
    assert_int_equal(rp_access_event(s, x, up, &err), 1);
    assert_null(json_object_get(json_object_get(up, "changes"), "margin"));
    assert_non_null(json_object_get(json_object_get(up, "changes"), "total"));
    json_decref(up);

    /* A link through a deleted record is broken: A's invoice goes with A's order. */
    assert_int_equal(rp_store_delete(s, &test_ctx, "order", a.order, &err), 0);
    assert_int_equal(count(s, x, "invoice", NULL), 0);
    rp_access_free(x);
    rp_store_close(s);
}

static void test_writes(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    world(s);
    rp_error_t err = {0};
    assert_int_equal(set_role(s, "portal", portal, &err), 0);
    ids_t a = customer(s, "a"), b = customer(s, "b");
    rp_access_t *x = NULL;
    assert_int_equal(rp_access_load_subject(s, "portal", "person", a.person, &x, &err), 0);
    rp_ctx_t ctx = {.actor = "person:1", .origin = "test", .access = x};
    char buf[128];

    /* create: for B refused, nothing stored; without the link field, A's. */
    int64_t before = 0;
    assert_int_equal(rp_store_count(s, "note", NULL, false, &before, &err), 0);
    snprintf(buf, sizeof buf, "{\"person\": %lld, \"shown\": \"yes\"}", (long long)b.person);
    json_t *f = J(buf);
    assert_int_equal(rp_store_create(s, &ctx, "note", f, NULL, &err), RP_EPERM);
    assert_contains(err.msg, "would not be linked");
    json_decref(f);
    /* One good record and one for B: the batch stores nothing. */
    snprintf(buf, sizeof buf, "[{\"shown\": \"yes\"}, {\"person\": %lld, \"shown\": \"yes\"}]",
             (long long)b.person);
    f = J(buf);
    assert_int_equal(rp_store_create_many(s, &ctx, "note", f, NULL, NULL, &err), RP_EPERM);
    json_decref(f);
    int64_t after = 0;
    assert_int_equal(rp_store_count(s, "note", NULL, false, &after, &err), 0);
    assert_int_equal(after, before);
    /* An internal note for oneself is outside the read scope too. */
    f = J("{\"shown\": \"no\"}");
    assert_int_equal(rp_store_create(s, &ctx, "note", f, NULL, &err), RP_EPERM);
    json_decref(f);
    f = J("{\"shown\": \"yes\", \"body\": \"mine\"}");
    int64_t id = 0;
    assert_int_equal(rp_store_create(s, &ctx, "note", f, &id, &err), 0);
    assert_string_equal(field_of(s, "note", id, "person"), "1");
    assert_string_equal(field_of(s, "note", id, "created_by"), "\"person:1\"");
    json_decref(f);

    /* update: B's refused; A's re-pointed to B refused and unchanged; A's own change kept. */
    f = J("{\"body\": \"mine now\"}");
    assert_int_equal(rp_store_update(s, &ctx, "note", b.note_shown, f, 0, NULL, &err),
                     RP_ENOTFOUND);
    json_decref(f);
    snprintf(buf, sizeof buf, "{\"person\": %lld}", (long long)b.person);
    f = J(buf);
    assert_int_equal(rp_store_update(s, &ctx, "note", a.note_shown, f, 0, NULL, &err), RP_EPERM);
    assert_string_equal(field_of(s, "note", a.note_shown, "person"), "1");
    json_decref(f);
    f = J("{\"body\": \"edited\"}");
    assert_int_equal(rp_store_update(s, &ctx, "note", a.note_shown, f, 0, NULL, &err), 0);
    json_decref(f);
    /* The internal note is outside the update link: its where holds for writes too? No: the
     * update grant has no where, so only the person counts. */
    f = J("{\"body\": \"x\"}");
    assert_int_equal(rp_store_update(s, &ctx, "note", a.note_internal, f, 0, NULL, &err), 0);
    json_decref(f);

    /* delete: B's refused, still there. */
    assert_int_equal(rp_store_delete(s, &ctx, "note", b.note_shown, &err), RP_EPERM);
    assert_string_equal(field_of(s, "note", b.note_shown, "deleted_at"), "null");

    /* self: may rename itself, may not move to B's acct (read-only), nor touch B. */
    f = J("{\"name\": \"A renamed\"}");
    assert_int_equal(rp_store_update(s, &ctx, "person", a.person, f, 0, NULL, &err), 0);
    assert_int_equal(rp_store_update(s, &ctx, "person", b.person, f, 0, NULL, &err),
                     RP_ENOTFOUND);
    json_decref(f);
    snprintf(buf, sizeof buf, "{\"acct\": %lld}", (long long)b.acct);
    f = J(buf);
    assert_int_equal(rp_store_update(s, &ctx, "person", a.person, f, 0, NULL, &err), RP_EPERM);
    assert_string_equal(err.field, "acct");
    json_decref(f);
    assert_int_equal(count(s, x, "acct", NULL), 1);
    /* No grant, no write: orders are read-only to the customer. */
    f = J("{\"total\": 0}");
    assert_int_equal(rp_store_update(s, &ctx, "order", a.order, f, 0, NULL, &err), RP_EPERM);
    json_decref(f);
    rp_access_free(x);
    rp_store_close(s);
}

/* Without person.acct read-only, a customer could move into another account: the after-check
 * is on the record's own link, so self still holds and the role must guard the field. This
 * is why the default portal role makes the link fields read-only. */
static void test_role_must_guard_self(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    world(s);
    rp_error_t err = {0};
    assert_int_equal(set_role(s, "loose", "{\"principal\": \"person\", \"entities\": {\"person\": "
                     "{\"read\": \"self\", \"update\": \"self\"}, \"acct\": {\"read\": "
                     "{\"link\": \"self.acct\"}}}}", &err), 0);
    ids_t a = customer(s, "a"), b = customer(s, "b");
    rp_access_t *x = NULL;
    assert_int_equal(rp_access_load_subject(s, "loose", "person", a.person, &x, &err), 0);
    rp_ctx_t ctx = {.actor = "person:1", .origin = "test", .access = x};
    char buf[64];
    snprintf(buf, sizeof buf, "{\"acct\": %lld}", (long long)b.acct);
    json_t *f = J(buf);
    assert_int_equal(rp_store_update(s, &ctx, "person", a.person, f, 0, NULL, &err), 0);
    json_decref(f);
    json_t *r = NULL;
    assert_int_equal(rp_store_get_as(s, &ctx, "acct", b.acct, &r, &err), 0);
    json_decref(r);
    rp_access_free(x);
    rp_store_close(s);
}

/* The schema moves under a role (a link's field renamed): reads are refused, never widened. */
static void test_schema_moves_under_a_role(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    world(s);
    rp_error_t err = {0};
    assert_int_equal(set_role(s, "portal", portal, &err), 0);
    ids_t a = customer(s, "a");
    customer(s, "b");
    rp_access_t *x = NULL;
    assert_int_equal(rp_access_load_subject(s, "portal", "person", a.person, &x, &err), 0);
    assert_int_equal(count(s, x, "invoice", NULL), 1);
    assert_int_equal(rp_store_rename_field(s, &test_ctx, "order", "person", "buyer", &err), 0);
    int64_t n = -1;
    assert_int_equal(rp_store_count_as(s, x, "invoice", NULL, false, &n, &err), RP_EPERM);
    assert_contains(err.msg, "does not match the schema");
    assert_int_equal(rp_store_count_as(s, x, "order", NULL, false, &n, &err), RP_EPERM);
    rp_ctx_t ctx = {.actor = "person:1", .origin = "test", .access = x};
    json_t *r = NULL;
    assert_int_equal(rp_store_get_as(s, &ctx, "order", a.order, &r, &err), RP_EPERM);
    assert_null(r);
    rp_access_free(x);
    rp_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_link_documents),
        cmocka_unit_test(test_subjects),
        cmocka_unit_test(test_reads),
        cmocka_unit_test(test_writes),
        cmocka_unit_test(test_role_must_guard_self),
        cmocka_unit_test(test_schema_moves_under_a_role),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
