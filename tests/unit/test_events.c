/*
 * test_events.c — the event log: what every write appends, custom events, subscribers with
 * checkpoints across a reopen, retries with backoff, dead letters and replay, the chain-depth
 * limit, and explain.
 */
#include "helpers.h"

static void test_every_write_appends_one_event(void **state)
{
    (void)state;
    rp_store_t *s = test_open_crm();
    int64_t base = rp_events_last_seq(s);
    rp_ctx_t api = {.actor = "user:7", .origin = "api"};
    rp_error_t err = {0};
    int64_t id = 0;
    json_t *f = J("{\"last_name\": \"Curie\", \"age\": 66}");
    assert_int_equal(rp_store_create(s, &api, "contact", f, &id, &err), 0);
    json_decref(f);
    f = J("{\"age\": 67}");
    assert_int_equal(rp_store_update(s, &api, "contact", id, f, 0, NULL, &err), 0);
    json_decref(f);
    assert_int_equal(rp_store_delete(s, &api, "contact", id, &err), 0);
    assert_int_equal(rp_store_restore(s, &api, "contact", id, &err), 0);
    assert_int_equal(rp_store_purge(s, &api, "contact", id, &err), 0);

    rp_event_t ev[8];
    int n = rp_events_list(s, base, false, ev, 8, &err);
    assert_int_equal(n, 5);
    const char *types[] = {"contact.created", "contact.updated", "contact.deleted",
                           "contact.restored", "contact.purged"};
    for (int i = 0; i < n; i++) {
        assert_string_equal(ev[i].type, types[i]);
        assert_string_equal(ev[i].actor, "user:7");
        assert_string_equal(ev[i].origin, "api");
        assert_string_equal(ev[i].entity, "contact");
        assert_int_equal(ev[i].record_id, id);
        assert_int_equal(strlen(ev[i].uid), 26);
        assert_int_equal(ev[i].depth, 0);
        if (i)
            assert_true(ev[i].seq > ev[i - 1].seq);
        if (i)
            assert_true(strcmp(ev[i].uid, ev[i - 1].uid) > 0); /* time-ordered ids */
    }
    assert_contains(ev[0].changes, "\"age\":[null,66]");
    assert_contains(ev[1].changes, "\"age\":[66,67]");
    assert_contains(ev[2].changes, "\"deleted_at\":[null,\"2026-");
    assert_contains(ev[4].changes, "\"last_name\":[\"Curie\",null]");
    json_t *j = rp_event_json(&ev[1]);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(
                         json_object_get(j, "changes"), "age"), 1)), 67);
    json_decref(j);
    for (int i = 0; i < n; i++)
        rp_event_clear(&ev[i]);

    /* The newest few, oldest first. */
    n = rp_events_list(s, 0, true, ev, 2, &err);
    assert_int_equal(n, 2);
    assert_string_equal(ev[1].type, "contact.purged");
    assert_string_equal(ev[0].type, "contact.restored");
    for (int i = 0; i < n; i++)
        rp_event_clear(&ev[i]);
    rp_store_close(s);
}

static void test_custom_events(void **state)
{
    (void)state;
    rp_store_t *s = test_open_crm();
    rp_error_t err = {0};
    json_t *p = J("{\"template\": \"welcome\"}");
    int64_t seq = 0;
    assert_int_equal(rp_events_emit(s, &test_ctx, "mail.sent", "contact", 0, p, &seq, &err), 0);
    assert_true(seq > 0);
    assert_int_equal(rp_events_emit(s, &test_ctx, "Mail Sent", NULL, 0, p, NULL, &err),
                     RP_EINVAL);
    assert_contains(err.msg, "not a valid event type");
    assert_int_equal(rp_events_emit(s, &test_ctx, "mail.", NULL, 0, p, NULL, &err), RP_EINVAL);
    assert_int_equal(rp_events_emit(s, &test_ctx, "x.y", "ghost", 0, p, NULL, &err),
                     RP_ENOTFOUND);
    json_decref(p);
    p = J("[1]");
    assert_int_equal(rp_events_emit(s, &test_ctx, "x.y", NULL, 0, p, NULL, &err), RP_EINVAL);
    json_decref(p);
    assert_int_equal(rp_events_last_seq(s), seq);
    rp_store_close(s);
}

/* ---- subscribers ------------------------------------------------------------------------ */

typedef struct {
    int calls;
    int fail_until; /* fail while calls <= this */
    int64_t seen[64];
    int nseen;
} probe_t;

static int probe(rp_store_t *s, const rp_event_t *ev, const rp_ctx_t *ctx, void *ud,
                 rp_error_t *err)
{
    probe_t *p = ud;
    p->calls++;
    if (p->calls <= p->fail_until)
        return rp_error_set(err, RP_EINVAL, 0, "smtp down (call %d)", p->calls);
    if (p->nseen < 64)
        p->seen[p->nseen++] = ev->seq;
    return 0;
}

static void test_subscriber_checkpoint_survives_reopen(void **state)
{
    (void)state;
    char dir[64], path[256];
    test_tmpdb(dir, path, "e.db");
    rp_store_opts_t o = {.now_ms = test_now};
    rp_store_t *s = NULL;
    rp_error_t err = {0};
    assert_int_equal(rp_store_open(path, &o, &s, &err), 0);
    define(s, "account", account_spec);
    define(s, "contact", contact_spec);
    assert_int_equal(rp_events_subscribe(s, "mailer", "contact.*", false, &err), 0);
    assert_int_equal(rp_events_subscribe(s, "late", NULL, true, &err), 0);
    assert_int_equal(rp_events_subscribe(s, "bad name!", NULL, true, &err), RP_EINVAL);
    for (int i = 0; i < 5; i++)
        create(s, "contact", "{\"last_name\": \"Sub\"}");
    create(s, "account", "{\"name\": \"Not for the mailer\"}");

    probe_t p = {0};
    assert_int_equal(rp_events_deliver(s, "mailer", probe, &p, 3, NULL, &err), 3);
    rp_store_close(s);

    /* After a reopen the subscriber resumes after its checkpoint. */
    assert_int_equal(rp_store_open(path, &o, &s, &err), 0);
    assert_int_equal(rp_events_deliver(s, "mailer", probe, &p, 100, NULL, &err), 2);
    assert_int_equal(p.nseen, 5);
    for (int i = 1; i < p.nseen; i++)
        assert_true(p.seen[i] > p.seen[i - 1]);
    int64_t cp = 0;
    assert_int_equal(rp_events_checkpoint(s, "mailer", &cp, &err), 0);
    assert_int_equal(cp, p.seen[4]);
    /* "late" started at the end of the log: it sees only what came after. */
    probe_t q = {0};
    assert_int_equal(rp_events_deliver(s, "late", probe, &q, 100, NULL, &err), 6);
    assert_int_equal(rp_events_deliver(s, "ghost", probe, &q, 100, NULL, &err), RP_ENOTFOUND);
    assert_int_equal(rp_events_unsubscribe(s, "late", &err), 0);
    assert_int_equal(rp_events_unsubscribe(s, "late", &err), RP_ENOTFOUND);
    rp_store_close(s);
    test_rmdir(dir);
}

static void test_subscriber_skips_what_it_does_not_want(void **state)
{
    (void)state;
    char dir[64], path[256];
    test_tmpdb(dir, path, "e.db");
    rp_store_opts_t o = {.now_ms = test_now};
    rp_store_t *s = NULL;
    rp_error_t err = {0};
    assert_int_equal(rp_store_open(path, &o, &s, &err), 0);
    define(s, "account", account_spec);
    assert_int_equal(rp_events_subscribe(s, "leads", "lead.*", false, &err), 0);
    /* A stream of events it does not want: once enough are behind it, its checkpoint moves
     * past them, so later reads do not scan them again. */
    for (int i = 0; i < 300; i++)
        create(s, "account", "{\"name\": \"Skipped\"}");
    rp_event_t ev;
    assert_int_equal(rp_events_read(s, "leads", &ev, 1, NULL, &err), 0);
    int64_t cp = -1;
    assert_int_equal(rp_events_checkpoint(s, "leads", &cp, &err), 0);
    assert_int_equal(cp, rp_events_last_seq(s));
    /* A few more: not worth a write yet; and what it wants is still delivered. */
    create(s, "account", "{\"name\": \"One more\"}");
    assert_int_equal(rp_events_read(s, "leads", &ev, 1, NULL, &err), 0);
    int64_t cp2 = -1;
    assert_int_equal(rp_events_checkpoint(s, "leads", &cp2, &err), 0);
    assert_int_equal(cp2, cp);
    assert_int_equal(rp_events_emit(s, NULL, "lead.scored", NULL, 0, NULL, NULL, &err), 0);
    assert_int_equal(rp_events_read(s, "leads", &ev, 1, NULL, &err), 1);
    assert_string_equal(ev.type, "lead.scored");
    rp_event_clear(&ev);
    rp_store_close(s);
    test_rmdir(dir);
}

static void test_retry_backoff_dead_letter_and_replay(void **state)
{
    (void)state;
    rp_store_t *s = test_open_crm();
    rp_error_t err = {0};
    assert_int_equal(rp_events_subscribe(s, "flaky", "contact.created", false, &err), 0);
    assert_int_equal(rp_events_subscribe(s, "steady", "contact.created", false, &err), 0);
    create(s, "contact", "{\"last_name\": \"One\"}");
    create(s, "contact", "{\"last_name\": \"Two\"}");
    rp_retry_t r = {.max_attempts = 3, .base_ms = 1000, .max_delay_ms = 60000};

    probe_t p = {.fail_until = 3};
    /* First failure: nothing handled, a retry is scheduled within [500, 1000] ms. */
    assert_int_equal(rp_events_deliver(s, "flaky", probe, &p, 10, &r, &err), 0);
    rp_event_t ev[4];
    int64_t retry_at = 0;
    assert_int_equal(rp_events_read(s, "flaky", ev, 4, &retry_at, &err), 0);
    assert_true(retry_at >= test_clock_ms + 500 && retry_at <= test_clock_ms + 1000);
    /* A failing subscriber holds back only itself. */
    probe_t ok = {0};
    assert_int_equal(rp_events_deliver(s, "steady", probe, &ok, 10, &r, &err), 2);

    /* Second failure after the first delay; the next delay doubles: within [1000, 2000]. */
    test_clock_ms += 1000;
    assert_int_equal(rp_events_read(s, "flaky", ev, 1, &retry_at, &err), 1);
    assert_int_equal(ev[0].attempts, 1);
    rp_event_clear(&ev[0]);
    assert_int_equal(rp_events_deliver(s, "flaky", probe, &p, 10, &r, &err), 0);
    assert_int_equal(rp_events_read(s, "flaky", ev, 4, &retry_at, &err), 0);
    assert_true(retry_at >= test_clock_ms + 1000 && retry_at <= test_clock_ms + 2000);

    /* Third failure: the last attempt, so the event goes to the dead letters and the
     * subscriber moves on to the next event. */
    test_clock_ms += 2000;
    assert_int_equal(rp_events_deliver(s, "flaky", probe, &p, 10, &r, &err), 1);
    assert_int_equal(p.calls, 4);
    json_t *dead = NULL;
    assert_int_equal(rp_events_dead(s, "flaky", &dead, &err), 0);
    assert_int_equal(json_array_size(dead), 1);
    json_t *d0 = json_array_get(dead, 0);
    assert_contains(json_string_value(json_object_get(d0, "error")), "smtp down (call 3)");
    assert_int_equal(json_integer_value(json_object_get(d0, "attempts")), 3);
    assert_string_equal(json_string_value(json_object_get(d0, "type")), "contact.created");
    int64_t dead_id = json_integer_value(json_object_get(d0, "id"));
    int64_t dead_seq = json_integer_value(json_object_get(d0, "seq"));
    json_decref(dead);

    /* Replay: the dead letter is read again first; success resolves it. */
    assert_int_equal(rp_events_replay(s, dead_id, &err), 0);
    assert_int_equal(rp_events_replay(s, 999, &err), RP_ENOTFOUND);
    assert_int_equal(rp_events_read(s, "flaky", ev, 4, NULL, &err), 1);
    assert_true(ev[0].replay);
    assert_int_equal(ev[0].seq, dead_seq);
    rp_event_clear(&ev[0]);
    assert_int_equal(rp_events_deliver(s, "flaky", probe, &p, 10, &r, &err), 1);
    assert_int_equal(rp_events_dead(s, NULL, &dead, &err), 0);
    assert_int_equal(json_array_size(dead), 0);
    json_decref(dead);
    rp_store_close(s);
}

/* A handler that writes, then fails: its write must not survive. */
static int write_then_fail(rp_store_t *s, const rp_event_t *ev, const rp_ctx_t *ctx, void *ud,
                           rp_error_t *err)
{
    json_t *f = J("{\"name\": \"Half-done\"}");
    int rc = rp_store_create(s, ctx, "account", f, NULL, err);
    json_decref(f);
    if (rc)
        return rc;
    return rp_error_set(err, RP_EINVAL, 0, "failed after writing");
}

static void test_handler_writes_are_all_or_nothing(void **state)
{
    (void)state;
    rp_store_t *s = test_open_crm();
    rp_error_t err = {0};
    assert_int_equal(rp_events_subscribe(s, "half", "contact.*", false, &err), 0);
    create(s, "contact", "{\"last_name\": \"Trigger\"}");
    assert_int_equal(rp_events_deliver(s, "half", write_then_fail, NULL, 10, NULL, &err), 0);
    int64_t n = -1;
    assert_int_equal(rp_store_count(s, "account", NULL, true, &n, &err), 0);
    assert_int_equal(n, 0);
    int64_t cp = -1;
    assert_int_equal(rp_events_checkpoint(s, "half", &cp, &err), 0);
    assert_int_equal(cp, 0);
    rp_store_close(s);
}

/* Each delivery bumps the contact's age: a handler that triggers itself without end. */
static int bump(rp_store_t *s, const rp_event_t *ev, const rp_ctx_t *ctx, void *ud,
                rp_error_t *err)
{
    json_t *r = NULL;
    if (rp_store_get(s, "contact", ev->record_id, &r, err))
        return err->code;
    json_t *f = json_pack("{s:I}", "age", json_integer_value(json_object_get(r, "age")) + 1);
    json_decref(r);
    int rc = rp_store_update(s, ctx, "contact", ev->record_id, f, 0, NULL, err);
    json_decref(f);
    return rc;
}

static void test_loop_control_and_explain(void **state)
{
    (void)state;
    rp_store_t *s = test_open_crm();
    rp_error_t err = {0};
    assert_int_equal(rp_events_subscribe(s, "bumper", "contact.*", false, &err), 0);
    int64_t id = create(s, "contact", "{\"last_name\": \"Loop\", \"age\": 0}");
    rp_retry_t r = {.max_attempts = 1};
    for (int round = 0; round < 40; round++)
        rp_events_deliver(s, "bumper", bump, NULL, 100, &r, &err);
    /* The default limit of 16 stopped the chain: 1 direct change + 16 caused ones. */
    assert_string_equal(field_of(s, "contact", id, "age"), "16");
    json_t *dead = NULL;
    assert_int_equal(rp_events_dead(s, "bumper", &dead, &err), 0);
    assert_int_equal(json_array_size(dead), 1);
    const char *why = json_string_value(json_object_get(json_array_get(dead, 0), "error"));
    assert_contains(why, "RP-E1402");
    assert_contains(why, "limit 16");
    assert_contains(why, "contact.created#");
    assert_contains(why, "contact.updated#");
    assert_contains(why, "(subscriber:bumper)");
    json_decref(dead);

    /* Explain: every value of age, who set it, and the chain that led there. */
    json_t *h = NULL;
    assert_int_equal(rp_events_explain(s, "contact", id, "age", &h, &err), 0);
    assert_int_equal(json_array_size(h), 17);
    json_t *first = json_array_get(h, 0), *third = json_array_get(h, 2);
    assert_string_equal(json_string_value(json_object_get(first, "type")), "contact.created");
    assert_string_equal(json_string_value(json_object_get(first, "actor")), "user:test");
    assert_int_equal(json_array_size(json_object_get(first, "causes")), 0);
    assert_int_equal(json_integer_value(json_object_get(third, "old")), 1);
    assert_int_equal(json_integer_value(json_object_get(third, "new")), 2);
    assert_string_equal(json_string_value(json_object_get(third, "actor")), "subscriber:bumper");
    json_t *causes = json_object_get(third, "causes");
    assert_int_equal(json_array_size(causes), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(causes, 1), "type")),
                        "contact.created");
    json_decref(h);
    assert_int_equal(rp_events_explain(s, "contact", id, "nope", &h, &err), RP_EINVAL);
    assert_int_equal(rp_events_explain(s, "ghost", id, "age", &h, &err), RP_ENOTFOUND);
    rp_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_write_appends_one_event),
        cmocka_unit_test(test_custom_events),
        cmocka_unit_test(test_subscriber_checkpoint_survives_reopen),
        cmocka_unit_test(test_subscriber_skips_what_it_does_not_want),
        cmocka_unit_test(test_retry_backoff_dead_letter_and_replay),
        cmocka_unit_test(test_handler_writes_are_all_or_nothing),
        cmocka_unit_test(test_loop_control_and_explain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
