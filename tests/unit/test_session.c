/*
 * test_session.c — browser sessions: the secret shown once and kept only as a hash, the CSRF
 * token derived from it, idle and absolute ends on the engine's clock, revocation one by one,
 * by secret and by user, disabled users, and events that never carry the secret; a record's
 * session (a contact through the portal), which never stands for a user.
 */
#include "helpers.h"

#include "rapport/access.h"
#include "rapport/auth.h"
#include "rapport/db.h"
#include "rapport/session.h"
#include "rapport/store.h"

static char *open_session(rp_store_t *s, const char *user, int64_t max_ms, int64_t *id)
{
    rp_error_t err = {0};
    char *secret = NULL;
    if (rp_sessions_create(s, &test_ctx, "user", user, NULL, max_ms, "127.0.0.1", &secret, id,
                           &err))
        fail_msg("sessions_create %s: %s", user, err.msg);
    return secret;
}

/* Whether @p needle is in any text cell of the sessions' or the events' table. */
static bool stored(rp_store_t *s, const char *needle)
{
    static const char *const tables[] = {"rp_sessions", "rp_events", NULL};
    bool found = false;
    for (int t = 0; tables[t] && !found; t++) {
        char sql[64];
        snprintf(sql, sizeof sql, "SELECT * FROM %s", tables[t]);
        rp_db_stmt_t *st;
        assert_non_null(st = rp_db_prepare(rp_store_db(s), sql, NULL));
        while (!found && rp_db_step(st) == RP_DB_ROW)
            for (int c = 0; c < rp_db_col_count(st) && !found; c++)
                found = rp_db_col_text(st, c) && strstr(rp_db_col_text(st, c), needle);
        rp_db_finalize(st);
    }
    return found;
}

static void check_fails(rp_store_t *s, const char *secret, int64_t idle_ms, const char *why)
{
    rp_error_t err = {0};
    json_t *who = NULL;
    assert_int_equal(rp_sessions_check(s, secret, idle_ms, &who, &err), RP_EINVAL);
    assert_null(who);
    if (!strstr(err.msg, why))
        fail_msg("wanted \"%s\", got: %s", why, err.msg);
    assert_non_null(strstr(err.msg, "RP-E1901"));
}

static void test_sessions(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    rp_error_t err = {0};
    assert_int_equal(rp_users_add(s, &test_ctx, "ana", "admin", NULL, "correct horse", &err), 0);
    assert_int_equal(rp_users_add(s, &test_ctx, "bob", "agent", "north", "battery staple", &err),
                     0);
    int64_t id = 0;
    char *a = open_session(s, "ana", 3600000, &id);
    assert_true(id > 0);
    assert_memory_equal(a, RP_SESSION_PREFIX, strlen(RP_SESSION_PREFIX));
    assert_false(stored(s, a));

    json_t *who = NULL;
    assert_int_equal(rp_sessions_check(s, a, 0, &who, &err), 0);
    assert_string_equal(json_string_value(json_object_get(who, "user")), "ana");
    assert_string_equal(json_string_value(json_object_get(who, "role")), "admin");
    assert_string_equal(json_string_value(json_object_get(who, "kind")), "user");
    assert_int_equal(json_integer_value(json_object_get(who, "session_id")), id);
    json_decref(who);

    /* The CSRF token: a function of the secret alone, never stored, compared whole. */
    char csrf[RP_SESSION_CSRF_LEN + 1], again[RP_SESSION_CSRF_LEN + 1];
    rp_session_csrf(a, csrf);
    rp_session_csrf(a, again);
    assert_string_equal(csrf, again);
    assert_int_equal(strlen(csrf), RP_SESSION_CSRF_LEN);
    assert_true(rp_session_csrf_ok(a, csrf));
    assert_false(rp_session_csrf_ok(a, NULL));
    assert_false(rp_session_csrf_ok(a, ""));
    again[10] = again[10] == '0' ? '1' : '0';
    assert_false(rp_session_csrf_ok(a, again));
    assert_false(stored(s, csrf));
    char *b = open_session(s, "bob", 3600000, NULL);
    char other[RP_SESSION_CSRF_LEN + 1];
    rp_session_csrf(b, other);
    assert_string_not_equal(csrf, other);
    assert_false(rp_session_csrf_ok(b, csrf));

    /* Unknown and malformed secrets; a refused kind or principal. */
    check_fails(s, "rps_nothing", 0, "unknown session");
    check_fails(s, "rpt_atoken", 0, "not a Rapport session");
    char *none = NULL;
    assert_int_equal(rp_sessions_create(s, &test_ctx, "record", "contact:1", "portal", 1000, NULL,
                                        &none, NULL, &err), RP_EINVAL);
    assert_int_equal(rp_sessions_create(s, &test_ctx, "user", "nobody", NULL, 1000, NULL, &none,
                                        NULL, &err), RP_ENOTFOUND);
    assert_int_equal(rp_sessions_create(s, &test_ctx, "user", "ana", NULL, 0, NULL, &none, NULL,
                                        &err), RP_EINVAL);
    assert_null(none);

    /* Idle: unused longer than the limit, on the engine's clock; a use keeps it alive. */
    test_clock_ms += 50000;
    assert_int_equal(rp_sessions_check(s, a, 60000, &who, &err), 0);
    json_decref(who);
    test_clock_ms += 50000;
    assert_int_equal(rp_sessions_check(s, a, 60000, &who, &err), 0);
    json_decref(who);
    test_clock_ms += 61000;
    check_fails(s, a, 60000, "idle too long");
    /* Absolute: past its end whatever its use. */
    test_clock_ms += 3600000;
    check_fails(s, a, 0, "expired");
    test_clock_ms -= 3600000 + 161000;

    /* Revocation: by id, by secret (sign-out), by user; each once. */
    assert_int_equal(rp_sessions_revoke(s, &test_ctx, id, &err), 0);
    check_fails(s, a, 0, "ended");
    assert_int_equal(rp_sessions_revoke(s, &test_ctx, id, &err), RP_ENOTFOUND);
    assert_int_equal(rp_sessions_revoke_secret(s, &test_ctx, b, &err), 0);
    check_fails(s, b, 0, "ended");
    assert_int_equal(rp_sessions_revoke_secret(s, &test_ctx, b, &err), RP_ENOTFOUND);
    char *b2 = open_session(s, "bob", 3600000, NULL);
    char *b3 = open_session(s, "bob", 3600000, NULL);
    char *a2 = open_session(s, "ana", 3600000, NULL);
    int n = -1;
    assert_int_equal(rp_sessions_revoke_principal(s, &test_ctx, "user", "bob", &n, &err), 0);
    assert_int_equal(n, 2);
    check_fails(s, b2, 0, "ended");
    check_fails(s, b3, 0, "ended");
    assert_int_equal(rp_sessions_check(s, a2, 0, &who, &err), 0);
    json_decref(who);
    assert_int_equal(rp_sessions_revoke_principal(s, &test_ctx, "user", "bob", &n, &err), 0);
    assert_int_equal(n, 0);

    /* A disabled user's sessions stop, and no new one opens. */
    assert_int_equal(rp_users_disable(s, &test_ctx, "ana", &err), 0);
    check_fails(s, a2, 0, "disabled");
    assert_int_equal(rp_sessions_create(s, &test_ctx, "user", "ana", NULL, 1000, NULL, &none,
                                        NULL, &err), RP_EINVAL);

    /* The list: live ones by default, all with live false; no secret in it. */
    json_t *rows = NULL;
    assert_int_equal(rp_sessions_list(s, true, &rows, &err), 0);
    assert_int_equal(json_array_size(rows), 1); /* a2: its user is disabled, not the session */
    json_decref(rows);
    assert_int_equal(rp_sessions_list(s, false, &rows, &err), 0);
    assert_int_equal(json_array_size(rows), 5);
    char *text = json_dumps(rows, 0);
    assert_null(strstr(text, RP_SESSION_PREFIX));
    free(text);
    json_decref(rows);
    assert_false(stored(s, a2));
    assert_false(stored(s, b3));

    free(a);
    free(b);
    free(b2);
    free(b3);
    free(a2);
    rp_store_close(s);
}

/* A record principal's session: only for an existing record and a role made for its entity;
 * checked, it says the record and the role and no user; revoked by the record, not by a user
 * of the same name. */
static void test_record_sessions(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    rp_error_t err = {0};
    define(s, "member", "{\"fields\": {\"name\": {\"type\": \"text\"}}}");
    json_t *role = json_loads("{\"principal\": \"member\", \"entities\": {\"member\": "
                              "{\"read\": \"self\"}}}", 0, NULL);
    assert_int_equal(rp_access_role_set(s, &test_ctx, "club", role, &err), 0);
    json_decref(role);
    assert_int_equal(create(s, "member", "{\"name\": \"Sara\"}"), 1);
    char *secret = NULL;
    int64_t id = 0;
    /* No role, no record, a role for users, a principal that is not ENTITY:ID: refused. */
    assert_int_equal(rp_sessions_create(s, &test_ctx, "record", "member:1", NULL, 60000, NULL,
                                        &secret, &id, &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "needs a role"));
    assert_int_not_equal(rp_sessions_create(s, &test_ctx, "record", "member:99", "club", 60000,
                                            NULL, &secret, &id, &err), 0);
    assert_int_not_equal(rp_sessions_create(s, &test_ctx, "record", "member:1", "admin", 60000,
                                            NULL, &secret, &id, &err), 0);
    assert_int_equal(rp_sessions_create(s, &test_ctx, "record", "sara", "club", 60000, NULL,
                                        &secret, &id, &err), RP_EINVAL);
    assert_int_equal(rp_sessions_create(s, &test_ctx, "robot", "member:1", "club", 60000, NULL,
                                        &secret, &id, &err), RP_EINVAL);
    assert_null(secret);
    assert_int_equal(rp_sessions_create(s, &test_ctx, "record", "member:1", "club", 60000,
                                        "10.0.0.1", &secret, &id, &err), 0);
    json_t *who = NULL;
    assert_int_equal(rp_sessions_check(s, secret, 0, &who, &err), 0);
    assert_string_equal(json_string_value(json_object_get(who, "kind")), "record");
    assert_string_equal(json_string_value(json_object_get(who, "principal")), "member:1");
    assert_string_equal(json_string_value(json_object_get(who, "role")), "club");
    assert_null(json_object_get(who, "user"));
    json_decref(who);
    /* A user's revocation does not reach a record's session, whatever the name. */
    int n = -1;
    assert_int_equal(rp_sessions_revoke_principal(s, &test_ctx, "user", "member:1", &n, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(rp_sessions_revoke_principal(s, &test_ctx, "record", "member:1", &n, &err),
                     0);
    assert_int_equal(n, 1);
    check_fails(s, secret, 0, "ended");
    assert_false(stored(s, secret));
    free(secret);
    rp_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sessions),
        cmocka_unit_test(test_record_sessions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
