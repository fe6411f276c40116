/*
 * test_auth.c — users and tokens: passwords kept only as argon2id hashes, tokens shown once and
 * kept only as hashes, expiry on the engine's clock, revocation, disabled users, and the
 * security events, which never carry a secret.
 */
#include "helpers.h"

#include "rapport/db.h"

#include "rapport/db.h"
#include "rapport/store.h"
#include "rapport/auth.h"
#include "rapport/events.h"

static void add(rp_store_t *s, const char *name, const char *role, const char *pw)
{
    rp_error_t err = {0};
    if (rp_users_add(s, &test_ctx, name, role, NULL, pw, &err))
        fail_msg("users_add %s: %s", name, err.msg);
}

/* Whether @p needle appears in any text cell of any table of the database. */
static bool stored_anywhere(rp_store_t *s, const char *needle)
{
    static const char *const tables[] = {"rp_users", "rp_tokens", "rp_events", NULL};
    for (int t = 0; tables[t]; t++) {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT * FROM %s", tables[t]);
        rp_db_stmt_t *st;
        assert_non_null(st = rp_db_prepare(rp_store_db(s), sql, NULL));
        while (rp_db_step(st) == RP_DB_ROW)
            for (int c = 0; c < rp_db_col_count(st); c++) {
                const char *v = rp_db_col_text(st, c);
                if (v && strstr(v, needle)) {
                    rp_db_finalize(st);
                    return true;
                }
            }
        rp_db_finalize(st);
    }
    return false;
}

static void test_users_and_passwords(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    rp_error_t err = {0};
    add(s, "ana", "admin", "correct horse");
    assert_int_equal(rp_users_add(s, &test_ctx, "ana", "agent", NULL, "another pass", &err),
                     RP_ECONFLICT);
    assert_int_equal(rp_users_add(s, &test_ctx, "Bad Name", "agent", NULL, "longenough", &err),
                     RP_EINVAL);
    assert_int_equal(rp_users_add(s, &test_ctx, "bob", "agent", NULL, "short", &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "at least 8 characters"));
    /* The password is kept as an argon2id hash, never as itself. */
    assert_false(stored_anywhere(s, "correct horse"));
    assert_true(stored_anywhere(s, "$argon2id$"));
    assert_int_equal(rp_users_check_password(s, "ana", "correct horse", &err), 0);
    assert_int_equal(rp_users_check_password(s, "ana", "wrong horse", &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "RP-E1901: wrong user name or password"));
    /* An unknown user gets the very same answer. */
    char wrong[512];
    snprintf(wrong, sizeof wrong, "%s", err.msg);
    assert_int_equal(rp_users_check_password(s, "nobody", "correct horse", &err), RP_EINVAL);
    assert_string_equal(err.msg, wrong);
    json_t *list = NULL;
    assert_int_equal(rp_users_list(s, &list, &err), 0);
    assert_int_equal(json_array_size(list), 1);
    assert_null(json_object_get(json_array_get(list, 0), "password_hash"));
    json_decref(list);
    assert_int_equal(rp_users_disable(s, &test_ctx, "ana", &err), 0);
    assert_int_equal(rp_users_check_password(s, "ana", "correct horse", &err), RP_EINVAL);
    assert_int_equal(rp_users_disable(s, &test_ctx, "nobody", &err), RP_ENOTFOUND);
    rp_store_close(s);
}

static void test_tokens(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    rp_error_t err = {0};
    add(s, "ana", "admin", "correct horse");
    add(s, "bob", "agent", "battery staple");
    char *forever = NULL, *day = NULL;
    int64_t id_forever = 0, id_day = 0;
    assert_int_equal(rp_tokens_create(s, &test_ctx, "ana", NULL, 0, &forever, &id_forever, &err),
                     0);
    assert_int_equal(rp_tokens_create(s, &test_ctx, "bob", "viewer", 86400000, &day, &id_day,
                                      &err), 0);
    assert_int_equal(strncmp(forever, RP_TOKEN_PREFIX, strlen(RP_TOKEN_PREFIX)), 0);
    assert_true(strlen(forever) >= 40);
    assert_string_not_equal(forever, day);
    /* Kept only as a hash: the secret is nowhere in the database, events included. */
    assert_false(stored_anywhere(s, forever + 12));
    assert_false(stored_anywhere(s, day + 12));
    json_t *who = NULL;
    assert_int_equal(rp_tokens_check(s, forever, &who, &err), 0);
    assert_string_equal(json_string_value(json_object_get(who, "user")), "ana");
    assert_string_equal(json_string_value(json_object_get(who, "role")), "admin");
    json_decref(who);
    assert_int_equal(rp_tokens_check(s, day, &who, &err), 0);
    assert_string_equal(json_string_value(json_object_get(who, "role")), "viewer");
    json_decref(who);
    /* Expiry follows the engine's clock. */
    test_clock_ms += 86400000;
    assert_int_equal(rp_tokens_check(s, day, &who, &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "expired"));
    assert_null(who);
    test_clock_ms -= 86400000;
    /* Unknown, altered, or not a token at all. */
    char altered[128];
    snprintf(altered, sizeof altered, "%s", forever);
    altered[strlen(altered) - 1] ^= 1;
    assert_int_equal(rp_tokens_check(s, altered, &who, &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "unknown token"));
    assert_int_equal(rp_tokens_check(s, "Bearer nonsense", &who, &err), RP_EINVAL);
    /* Revoked, then its user disabled. */
    assert_int_equal(rp_tokens_revoke(s, &test_ctx, id_forever, &err), 0);
    assert_int_equal(rp_tokens_check(s, forever, &who, &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "revoked"));
    assert_int_equal(rp_tokens_revoke(s, &test_ctx, id_forever, &err), RP_ENOTFOUND);
    assert_int_equal(rp_users_disable(s, &test_ctx, "bob", &err), 0);
    assert_int_equal(rp_tokens_check(s, day, &who, &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "disabled"));
    char *none = NULL;
    assert_int_equal(rp_tokens_create(s, &test_ctx, "bob", NULL, 0, &none, NULL, &err),
                     RP_EINVAL);
    assert_int_equal(rp_tokens_create(s, &test_ctx, "nobody", NULL, 0, &none, NULL, &err),
                     RP_ENOTFOUND);
    assert_null(none);
    json_t *list = NULL;
    assert_int_equal(rp_tokens_list(s, NULL, &list, &err), 0);
    assert_int_equal(json_array_size(list), 2);
    assert_non_null(json_object_get(json_array_get(list, 0), "revoked_at"));
    assert_null(json_object_get(json_array_get(list, 0), "hash"));
    json_decref(list);
    /* The security events, in order, without secrets. */
    rp_event_t evs[16];
    int n = rp_events_list(s, 0, false, evs, 16, &err);
    const char *want[] = {"user.added", "user.added", "token.created", "token.created",
                          "token.revoked", "user.disabled"};
    assert_int_equal(n, 6);
    for (int i = 0; i < n; i++) {
        assert_string_equal(evs[i].type, want[i]);
        assert_string_equal(evs[i].actor, "user:test");
        rp_event_clear(&evs[i]);
    }
    free(forever);
    free(day);
    rp_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_users_and_passwords),
        cmocka_unit_test(test_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
