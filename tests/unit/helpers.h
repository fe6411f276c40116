/*
 * helpers.h — what the unit tests share: cmocka, a store on a virtual clock, a sample schema.
 */
#ifndef RP_TEST_HELPERS_H
#define RP_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rapport/events.h"
#include "rapport/store.h"

/** A virtual clock the tests move by hand. */
static int64_t test_clock_ms = 1767225600000; /* 2026-01-01T00:00:00Z */
__attribute__((unused)) static int64_t test_now(void *ud)
{
    (void)ud;
    return test_clock_ms;
}

static const rp_ctx_t test_ctx = {.actor = "user:test", .origin = "test"};

/** Opens a private in-memory store on the virtual clock. */
__attribute__((unused)) static rp_store_t *test_open(void)
{
    rp_store_opts_t o = {.now_ms = test_now};
    rp_store_t *s = NULL;
    rp_error_t err = {0};
    if (rp_store_open(":memory:", &o, &s, &err) != 0)
        fail_msg("open: %s", err.msg);
    return s;
}

/** Parses JSON or fails the test. Owned. */
__attribute__((unused)) static json_t *J(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!j)
        fail_msg("bad JSON in test: %s (%s)", text, je.text);
    return j;
}

/** Defines entity @p name from JSON text or fails. */
__attribute__((unused)) static void define(rp_store_t *s, const char *name, const char *spec)
{
    json_t *j = J(spec);
    rp_error_t err = {0};
    if (rp_store_define(s, &test_ctx, name, j, "test", &err) != 0)
        fail_msg("define %s: %s", name, err.msg);
    json_decref(j);
}

/** Creates a record from JSON text or fails; returns its id. */
__attribute__((unused)) static int64_t create(rp_store_t *s, const char *entity, const char *fields)
{
    json_t *j = J(fields);
    rp_error_t err = {0};
    int64_t id = 0;
    if (rp_store_create(s, &test_ctx, entity, j, &id, &err) != 0)
        fail_msg("create %s %s: %s", entity, fields, err.msg);
    json_decref(j);
    return id;
}

/** Tries to create; returns the code and leaves the message in @p err. */
__attribute__((unused)) static int try_create(rp_store_t *s, const char *entity, const char *fields, rp_error_t *err)
{
    json_t *j = J(fields);
    rp_error_clear(err);
    int rc = rp_store_create(s, &test_ctx, entity, j, NULL, err);
    json_decref(j);
    return rc;
}

/** A field of record (entity, id) as compact JSON text (owned static buffer). */
__attribute__((unused)) static const char *field_of(rp_store_t *s, const char *entity, int64_t id, const char *field)
{
    static char buf[1024];
    json_t *r = NULL;
    rp_error_t err = {0};
    if (rp_store_get(s, entity, id, &r, &err) != 0)
        fail_msg("get %s %lld: %s", entity, (long long)id, err.msg);
    char *d = json_dumps(json_object_get(r, field), JSON_ENCODE_ANY | JSON_COMPACT);
    snprintf(buf, sizeof buf, "%s", d ? d : "(absent)");
    free(d);
    json_decref(r);
    return buf;
}

/**
 * Makes a fresh folder under /tmp (its name into @p dir, at least 64 bytes) and puts the path
 * of database @p file inside it into @p path (at least 256 bytes). Remove it with test_rmdir().
 */
__attribute__((unused)) static void test_tmpdb(char *dir, char *path, const char *file)
{
    snprintf(dir, 64, "/tmp/rp_test_XXXXXX");
    if (!mkdtemp(dir))
        fail_msg("mkdtemp failed");
    snprintf(path, 256, "%s/%s", dir, file);
}

/** Removes a folder made by test_tmpdb(). */
__attribute__((unused)) static void test_rmdir(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fail_msg("cannot remove %s", dir);
}

/** Asserts that @p haystack contains @p needle, printing both when not. */
#define assert_contains(haystack, needle)                                                      \
    do {                                                                                       \
        if (!strstr((haystack), (needle)))                                                     \
            fail_msg("expected \"%s\" in \"%s\"", (needle), (haystack));                       \
    } while (0)

static const char *contact_spec =
    "{\"fields\": {"
    "\"first_name\": {\"type\": \"text\", \"searchable\": true},"
    "\"last_name\": {\"type\": \"text\", \"required\": true, \"searchable\": true},"
    "\"email\": {\"type\": \"email\", \"unique\": true, \"searchable\": true},"
    "\"phone\": {\"type\": \"phone\"},"
    "\"website\": {\"type\": \"url\"},"
    "\"age\": {\"type\": \"integer\", \"indexed\": true},"
    "\"score\": {\"type\": \"real\"},"
    "\"balance\": {\"type\": \"decimal\", \"scale\": 2},"
    "\"vip\": {\"type\": \"boolean\", \"default\": false},"
    "\"birthday\": {\"type\": \"date\"},"
    "\"last_seen\": {\"type\": \"datetime\"},"
    "\"stage\": {\"type\": \"enum\", \"values\": [\"new\", \"qualified\", \"won\", \"lost\"],"
    " \"default\": \"new\"},"
    "\"account\": {\"type\": \"ref\", \"ref\": \"account\"},"
    "\"extra\": {\"type\": \"json\"}}}";

static const char *account_spec =
    "{\"fields\": {\"name\": {\"type\": \"text\", \"required\": true, \"searchable\": true},"
    " \"domain\": {\"type\": \"text\", \"unique\": true}}}";

/** A store with "account" and "contact" defined. */
__attribute__((unused)) static rp_store_t *test_open_crm(void)
{
    rp_store_t *s = test_open();
    define(s, "account", account_spec);
    define(s, "contact", contact_spec);
    return s;
}

#endif
