/*
 * test_client_key.c — the key the portal counts a client by (its limits, an article's vote):
 * an IPv4 address as it is, an IPv6 address by its /64, since one host is given a whole /64
 * and could otherwise take a fresh address for every try or vote.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kb.h"

static void key_is(const char *client, const char *want)
{
    char out[64];
    portal_client_key(client, out, sizeof out);
    assert_string_equal(out, want);
}

static void test_ipv4_whole(void **state)
{
    (void)state;
    key_is("127.0.0.1", "127.0.0.1");
    key_is("203.0.113.7", "203.0.113.7");
    key_is("::ffff:203.0.113.7", "::ffff:203.0.113.7"); /* mapped: one IPv4 client */
}

static void test_ipv6_by_64(void **state)
{
    (void)state;
    key_is("2001:db8:1:2::1", "2001:0db8:0001:0002::/64");
    key_is("2001:db8:1:2:ffff:eeee:dddd:1", "2001:0db8:0001:0002::/64");
    key_is("2001:DB8:1:2::abcd", "2001:0db8:0001:0002::/64");
    key_is("2001:db8:1:3::1", "2001:0db8:0001:0003::/64");
    key_is("::1", "0000:0000:0000:0000::/64");
}

static void test_other_text(void **state)
{
    (void)state;
    key_is("unknown", "unknown");
    key_is("", "?");
    key_is(NULL, "?");
    key_is("fe80::1%eth0", "fe80::1%eth0"); /* a zone: not parsed, kept whole */
    char small[8];
    portal_client_key("2001:db8:1:2::1", small, sizeof small);
    assert_int_equal(strlen(small), 7); /* cut, never overrun */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4_whole),
        cmocka_unit_test(test_ipv6_by_64),
        cmocka_unit_test(test_other_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
