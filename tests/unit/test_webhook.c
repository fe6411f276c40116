/*
 * test_webhook.c — outgoing webhooks without the network: the signature (checked against
 * vectors computed with `openssl dgst -sha256 -hmac`), URL and event-filter checks, and the
 * subscriptions: add, list, pause, resume, remove, their events (never the secret), their
 * subscribers, dead letters and the delivery log. Deliveries over HTTP are tests/e2e's.
 */
#include "helpers.h"

#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "internal.h"
#include "rapport/auth.h"
#include "rapport/webhook.h"

static void test_sign(void **state)
{
    (void)state;
    char sig[RP_WEBHOOK_SIG_SIZE];
    const char *body = "{\"a\":1}";
    assert_int_equal(rp_webhook_sign("whsec_test_secret_0123", 1767225600, body, strlen(body),
                                     sig), 0);
    assert_string_equal(sig, "sha256=fea2c6c019e0a3106ce382989a3e388c9f7e8e08d6e4eecf300e15587cf"
                             "48636");
    /* An empty body signs "<timestamp>." alone. */
    assert_int_equal(rp_webhook_sign("sixteen chars ok", 0, "", 0, sig), 0);
    assert_string_equal(sig, "sha256=ec35ee5ae293dddc1e2d6d2de0b812b77e2fd1fe278657940701a64643b"
                             "64d84");
    /* A key longer than SHA-256's block is hashed first, as HMAC says. */
    char key[101];
    memset(key, 'k', 100);
    key[100] = '\0';
    assert_int_equal(rp_webhook_sign(key, 42, "body", 4, sig), 0);
    assert_string_equal(sig, "sha256=223f2501de0aa237f5d24c2198117830bb359779c7f7dfb4fda6d5f3b08"
                             "e8d79");
    /* Only the given length of the body counts. */
    char other[RP_WEBHOOK_SIG_SIZE];
    assert_int_equal(rp_webhook_sign(key, 42, "body and more", 4, other), 0);
    assert_string_equal(sig, other);
    assert_int_equal(rp_webhook_sign(key, 43, "body", 4, other), 0);
    assert_string_not_equal(sig, other);
}

static void url_refused(const char *url, const char *needle)
{
    rp_error_t err = {0};
    assert_int_equal(rp_webhook_check_url(url, &err), RP_EINVAL);
    if (!strstr(err.msg, needle))
        fail_msg("%s: \"%s\" lacks \"%s\"", url ? url : "(null)", err.msg, needle);
    assert_non_null(strstr(err.msg, "RP-E2001"));
}

static void test_check_url(void **state)
{
    (void)state;
    rp_error_t err = {0};
    static const char *const good[] = {
        "http://127.0.0.1:8080/hook", "https://example.com/webhooks/rapport?tenant=7",
        "HTTPS://Example.COM", "http://[::1]:9000/x", "https://user:pass@hooks.example.org/a/b",
        NULL};
    for (int i = 0; good[i]; i++)
        if (rp_webhook_check_url(good[i], &err))
            fail_msg("%s refused: %s", good[i], err.msg);
    url_refused(NULL, "needs a URL");
    url_refused("", "needs a URL");
    url_refused("ftp://example.com/x", "not an http:// or https:// URL");
    url_refused("file:///etc/passwd", "not an http:// or https:// URL");
    url_refused("example.com/hook", "not an http:// or https:// URL");
    url_refused("javascript:alert(1)", "not an http:// or https:// URL");
    url_refused("http://exa mple.com/", "space or a control character at position 11");
    url_refused("http://example.com/\n", "control character");
    url_refused("http://", "http://");
    url_refused("http:///path", "http:///path");
    char long_url[2100] = "https://example.com/";
    memset(long_url + 20, 'a', 2060);
    long_url[2080] = '\0';
    url_refused(long_url, "at most 2048");
}

static void test_events_filter(void **state)
{
    (void)state;
    rp_error_t err = {0};
    assert_int_equal(rp_webhook_check_events(NULL, &err), 0);
    assert_int_equal(rp_webhook_check_events("*", &err), 0);
    assert_int_equal(rp_webhook_check_events("contact.*,deal.stage_changed,*.purged", &err), 0);
    assert_int_equal(rp_webhook_check_events("Contact.*", &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "'C' at position 1"));
    assert_int_equal(rp_webhook_check_events("contact.*,,deal.*", &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "empty part"));
    assert_int_equal(rp_webhook_check_events("deal.*,", &err), RP_EINVAL);
    assert_int_equal(rp_webhook_check_events("deal.*; drop table", &err), RP_EINVAL);
    char big[200];
    memset(big, 'a', 150);
    big[150] = '\0';
    assert_int_equal(rp_webhook_check_events(big, &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "longer than 120"));

    assert_true(rp_webhook_events_match(NULL, "contact.created"));
    assert_true(rp_webhook_events_match("*", "contact.created"));
    assert_true(rp_webhook_events_match("contact.*", "contact.created"));
    assert_false(rp_webhook_events_match("contact.*", "deal.created"));
    assert_true(rp_webhook_events_match("deal.won,contact.*", "contact.updated"));
    assert_true(rp_webhook_events_match("deal.won,contact.*", "deal.won"));
    assert_false(rp_webhook_events_match("deal.won,contact.*", "deal.lost"));
    /* "*" crosses dots, as the subscribers' GLOB does. */
    assert_true(rp_webhook_events_match("*.created", "plugin.thing.created"));
    assert_true(rp_webhook_events_match("deal.?on", "deal.won"));
}

static void add_user(rp_store_t *s, const char *name)
{
    rp_error_t err = {0};
    if (rp_users_add(s, &test_ctx, name, "admin", NULL, "a long password", &err))
        fail_msg("users_add: %s", err.msg);
}

/* Whether @p needle is in any text cell of table @p table. */
static bool in_table(rp_store_t *s, const char *table, const char *needle)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT * FROM %s", table);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(s->db, sql, -1, &st, NULL), SQLITE_OK);
    bool found = false;
    while (!found && sqlite3_step(st) == SQLITE_ROW)
        for (int c = 0; c < sqlite3_column_count(st); c++) {
            const char *v = (const char *)sqlite3_column_text(st, c);
            if (v && strstr(v, needle))
                found = true;
        }
    sqlite3_finalize(st);
    return found;
}

static void test_subscriptions(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    rp_error_t err = {0};
    add_user(s, "ana");
    int64_t before = rp_events_last_seq(s);

    /* A generated secret, handed back once. */
    rp_webhook_spec_t spec = {.url = "https://hooks.example.com/path/SECRETPATH?key=abc",
                              .events = "contact.*,deal.won", .user = "ana"};
    int64_t id = 0;
    char *secret = NULL;
    assert_int_equal(rp_webhook_add(s, &test_ctx, &spec, &id, &secret, &err), 0);
    assert_int_equal(id, 1);
    assert_non_null(secret);
    assert_int_equal(strncmp(secret, RP_WEBHOOK_SECRET_PREFIX, 6), 0);
    assert_int_equal(strlen(secret), 6 + 32);
    /* Kept to sign with, but never in an event, nor the URL's path and query. */
    assert_true(in_table(s, "rp_webhooks", secret));
    assert_false(in_table(s, "rp_events", secret));
    assert_false(in_table(s, "rp_events", "SECRETPATH"));
    assert_true(in_table(s, "rp_events", "https://hooks.example.com"));
    free(secret);

    /* The event of its making, and a subscriber that starts after it. */
    rp_event_t ev;
    assert_int_equal(rp_events_list(s, before, false, &ev, 1, &err), 1);
    assert_string_equal(ev.type, "webhook.added");
    assert_int_equal(ev.record_id, 1);
    int64_t checkpoint = -1;
    assert_int_equal(rp_events_checkpoint(s, "webhook:1", &checkpoint, &err), 0);
    assert_int_equal(checkpoint, ev.seq);
    rp_event_clear(&ev);

    /* A given secret; one glob goes to the subscriber as its filter. */
    spec = (rp_webhook_spec_t){.url = "http://127.0.0.1:9/x", .events = "deal.*",
                               .user = "ana", .secret = "0123456789abcdef"};
    secret = NULL;
    assert_int_equal(rp_webhook_add(s, &test_ctx, &spec, &id, &secret, &err), 0);
    assert_int_equal(id, 2);
    assert_string_equal(secret, "0123456789abcdef");
    free(secret);
    rp_events_emit(s, &test_ctx, "contact.noted", NULL, 0, NULL, NULL, &err);
    rp_event_t got[4];
    assert_int_equal(rp_events_read(s, "webhook:2", got, 4, NULL, &err), 0);

    /* Refusals, each naming what is wrong; nothing is stored. */
    rp_webhook_spec_t bad = {.url = "gopher://x", .events = "*", .user = "ana"};
    assert_int_equal(rp_webhook_add(s, &test_ctx, &bad, NULL, NULL, &err), RP_EINVAL);
    bad = (rp_webhook_spec_t){.url = "http://x", .events = "a,,b", .user = "ana"};
    assert_int_equal(rp_webhook_add(s, &test_ctx, &bad, NULL, NULL, &err), RP_EINVAL);
    bad = (rp_webhook_spec_t){.url = "http://x", .user = "ana", .secret = "too short"};
    assert_int_equal(rp_webhook_add(s, &test_ctx, &bad, NULL, NULL, &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "16 to 256 characters"));
    bad = (rp_webhook_spec_t){.url = "http://x", .user = "ana",
                              .secret = "has a\ttab inside it"};
    assert_int_equal(rp_webhook_add(s, &test_ctx, &bad, NULL, NULL, &err), RP_EINVAL);
    bad = (rp_webhook_spec_t){.url = "http://x"};
    assert_int_equal(rp_webhook_add(s, &test_ctx, &bad, NULL, NULL, &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "needs an owner"));

    /* The list: no secret; the filter as given. */
    json_t *list = NULL;
    assert_int_equal(rp_webhook_list(s, &list, &err), 0);
    assert_int_equal(json_array_size(list), 2);
    json_t *w = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(w, "events")), "contact.*,deal.won");
    assert_string_equal(json_string_value(json_object_get(w, "user")), "ana");
    assert_true(json_is_true(json_object_get(w, "active")));
    assert_null(json_object_get(w, "secret"));
    char *text = json_dumps(list, 0);
    assert_null(strstr(text, "0123456789abcdef"));
    free(text);
    json_decref(list);

    /* Pause and resume, each once. */
    assert_int_equal(rp_webhook_set_active(s, &test_ctx, 2, false, &err), 0);
    assert_int_equal(rp_webhook_set_active(s, &test_ctx, 2, false, &err), RP_ECONFLICT);
    assert_non_null(strstr(err.msg, "paused already"));
    assert_int_equal(rp_webhook_set_active(s, &test_ctx, 2, true, &err), 0);
    assert_int_equal(rp_webhook_set_active(s, &test_ctx, 9, true, &err), RP_ENOTFOUND);

    /* Dead letters: a webhook's are listed with its id; another subscriber's are not. */
    rp_events_subscribe(s, "other", NULL, false, &err);
    assert_int_equal(rp_events_fail(s, "other", 1, "no", &(rp_retry_t){.max_attempts = 1}, NULL,
                                    &err), 0);
    int64_t seq = rp_events_last_seq(s);
    assert_int_equal(rp_events_fail(s, "webhook:2", seq, "HTTP 410",
                                    &(rp_retry_t){.max_attempts = 1}, NULL, &err), 0);
    json_t *dead = NULL;
    assert_int_equal(rp_webhook_dead(s, 0, &dead, &err), 0);
    assert_int_equal(json_array_size(dead), 1);
    json_t *d0 = json_array_get(dead, 0);
    assert_int_equal(json_integer_value(json_object_get(d0, "webhook")), 2);
    assert_string_equal(json_string_value(json_object_get(d0, "error")), "HTTP 410");
    int64_t dead_id = json_integer_value(json_object_get(d0, "id"));
    json_decref(dead);
    assert_int_equal(rp_webhook_dead(s, 1, &dead, &err), 0);
    assert_int_equal(json_array_size(dead), 0);
    json_decref(dead);
    assert_int_equal(rp_webhook_dead(s, 7, &dead, &err), RP_ENOTFOUND);
    /* Replay: only a webhook's dead letter. */
    assert_int_equal(rp_webhook_replay(s, dead_id - 1, &err), RP_ENOTFOUND);
    assert_non_null(strstr(err.msg, "no webhook dead letter"));
    assert_int_equal(rp_webhook_replay(s, dead_id, &err), 0);
    assert_int_equal(rp_events_read(s, "webhook:2", got, 4, NULL, &err), 1);
    assert_true(got[0].replay);
    rp_event_clear(&got[0]);

    /* The delivery log, newest N in order, filtered by webhook. */
    assert_int_equal(rp__exec(s, "INSERT INTO rp_webhook_deliveries(webhook_id, seq, attempt,"
                                 " status, error, duration_ms, at, outcome) VALUES"
                                 " (2, 1, 1, 500, 'HTTP 500', 12, 1767225600000, 'retry'),"
                                 " (1, 1, 1, NULL, 'refused', 0, 1767225601000, 'retry'),"
                                 " (2, 1, 2, 200, NULL, 7, 1767225602000, 'delivered')", &err),
                     0);
    json_t *log = NULL;
    assert_int_equal(rp_webhook_deliveries(s, 2, 0, &log, &err), 0);
    assert_int_equal(json_array_size(log), 2);
    json_t *first = json_array_get(log, 0), *second = json_array_get(log, 1);
    assert_int_equal(json_integer_value(json_object_get(first, "status")), 500);
    assert_string_equal(json_string_value(json_object_get(first, "outcome")), "retry");
    assert_string_equal(json_string_value(json_object_get(first, "at")),
                        "2026-01-01T00:00:00.000Z");
    assert_true(json_is_null(json_object_get(second, "error")));
    assert_int_equal(json_integer_value(json_object_get(second, "attempt")), 2);
    json_decref(log);
    assert_int_equal(rp_webhook_deliveries(s, 0, 1, &log, &err), 0);
    assert_int_equal(json_array_size(log), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(log, 0), "outcome")),
                        "delivered");
    json_decref(log);
    assert_int_equal(rp_webhook_deliveries(s, 1, 0, &log, &err), 0);
    assert_true(json_is_null(json_object_get(json_array_get(log, 0), "status")));
    json_decref(log);

    /* Removing takes the subscriber and its dead letters; the log stays. */
    assert_int_equal(rp_webhook_remove(s, &test_ctx, 2, &err), 0);
    assert_int_equal(rp_webhook_remove(s, &test_ctx, 2, &err), RP_ENOTFOUND);
    assert_non_null(strstr(err.msg, "no webhook 2"));
    assert_int_equal(rp_events_checkpoint(s, "webhook:2", &checkpoint, &err), RP_ENOTFOUND);
    assert_int_equal(rp_webhook_deliveries(s, 2, 0, &log, &err), 0);
    assert_int_equal(json_array_size(log), 2);
    json_decref(log);
    assert_int_equal(rp_events_list(s, rp_events_last_seq(s) - 1, false, &ev, 1, &err), 1);
    assert_string_equal(ev.type, "webhook.removed");
    rp_event_clear(&ev);
    rp_store_close(s);
}

static void test_deliverer_needs_a_file(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    rp_error_t err = {0};
    rp_webhook_deliverer_t *d = NULL;
    assert_int_equal(rp_webhook_deliverer_start(s, NULL, &d, &err), RP_EINVAL);
    assert_null(d);
    assert_non_null(strstr(err.msg, "not from memory"));
    rp_webhook_deliverer_stop(NULL);
    rp_store_close(s);
}

static int64_t count_rows(rp_store_t *s, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(s->db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* Started and stopped on a file with nothing to deliver: the thread comes and goes cleanly,
 * and meanwhile drops the delivery log's rows past their age. */
static void test_deliverer_start_stop(void **state)
{
    (void)state;
    char path[] = "/tmp/rp_webhook_test_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    rp_store_t *s = NULL;
    rp_error_t err = {0};
    assert_int_equal(rp_store_open(path, NULL, &s, &err), 0);
    char sql[512];
    int64_t now = rp_store_now(s), day = 86400000;
    snprintf(sql, sizeof sql, "INSERT INTO rp_webhook_deliveries(webhook_id, seq, attempt,"
             " duration_ms, at, outcome) VALUES (1, 1, 1, 0, %lld, 'retry'),"
             " (1, 1, 2, 0, %lld, 'retry'), (1, 1, 3, 0, %lld, 'delivered')",
             (long long)(now - 40 * day), (long long)(now - 31 * day), (long long)(now - day));
    assert_int_equal(rp__exec(s, sql, &err), 0);
    rp_webhook_deliverer_t *d = NULL;
    rp_webhook_opts_t o = {.poll_ms = 10, .log_keep_ms = 30 * day};
    assert_int_equal(rp_webhook_deliverer_start(s, &o, &d, &err), 0);
    assert_non_null(d);
    struct timespec ts = {0, 20 * 1000 * 1000};
    for (int i = 0; i < 250 && count_rows(s, "SELECT count(*) FROM rp_webhook_deliveries") > 1;
         i++)
        nanosleep(&ts, NULL);
    rp_webhook_deliverer_stop(d);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM rp_webhook_deliveries"), 1);
    assert_int_equal(count_rows(s, "SELECT attempt FROM rp_webhook_deliveries"), 3);
    rp_store_close(s);
    char side[64];
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign),
        cmocka_unit_test(test_check_url),
        cmocka_unit_test(test_events_filter),
        cmocka_unit_test(test_subscriptions),
        cmocka_unit_test(test_deliverer_needs_a_file),
        cmocka_unit_test(test_deliverer_start_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
