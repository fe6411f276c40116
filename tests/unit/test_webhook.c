/*
 * test_webhook.c — outgoing webhooks without the network: the signature (checked against
 * vectors computed with `openssl dgst -sha256 -hmac`), URL and event-filter checks, and the
 * subscriptions: add, list, pause, resume, remove, their events (never the secret), their
 * subscribers, dead letters and the delivery log. Deliveries over HTTP are tests/e2e's.
 */
#include "helpers.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "rapport/db.h"

#include "rapport/db.h"
#include "rapport/store.h"
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

/* The verdict on one address written as the socket layer reads it (inet_aton's forms for IPv4,
 * as getaddrinfo takes them); NULL when allowed, else its class. */
static const char *class_of(const char *text, char *why, size_t cap)
{
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(text, NULL, &hints, &res) != 0)
        fail_msg("%s is no address to getaddrinfo", text);
    bool denied = rp_webhook_addr_denied(res->ai_addr, why, cap);
    freeaddrinfo(res);
    return denied ? why : NULL;
}

static void denied_as(const char *text, const char *cls)
{
    char why[128];
    const char *got = class_of(text, why, sizeof why);
    if (!got)
        fail_msg("%s is allowed; wanted \"%s\"", text, cls);
    if (!strstr(got, cls))
        fail_msg("%s is \"%s\"; wanted \"%s\"", text, got, cls);
}

static void test_addr_classes(void **state)
{
    (void)state;
    static const char *const denied[][2] = {
        /* IPv4, also in the notations inet_aton and libcurl take */
        {"127.0.0.1", "loopback"}, {"127.255.255.254", "loopback"},
        {"2130706433", "loopback"}, {"0177.0.0.1", "loopback"}, {"0x7f000001", "loopback"},
        {"0x7f.0.0.1", "loopback"}, {"127.1", "loopback"}, {"0177.1", "loopback"},
        {"0.0.0.0", "unspecified"}, {"0", "unspecified"}, {"0.1.2.3", "unspecified"},
        {"10.0.0.1", "private"}, {"012.1.2.3", "private"}, {"167772161", "private"},
        {"172.16.0.1", "private"}, {"172.31.255.255", "private"},
        {"192.168.1.1", "private"}, {"0xc0a80101", "private"},
        {"100.64.0.1", "carrier-grade NAT"}, {"100.127.255.255", "carrier-grade NAT"},
        {"169.254.169.254", "link-local"}, {"2852039166", "link-local"},
        {"0xa9.0xfe.0xa9.0xfe", "link-local"}, {"169.254.0.1", "link-local"},
        {"192.0.0.192", "IETF protocol"}, {"192.0.2.1", "documentation"},
        {"198.51.100.7", "documentation"}, {"203.0.113.9", "documentation"},
        {"198.18.0.1", "benchmarking"}, {"192.88.99.1", "6to4 relay"},
        {"224.0.0.1", "multicast"}, {"239.255.255.250", "multicast"},
        {"240.0.0.1", "reserved"}, {"255.255.255.255", "broadcast"},
        {"4294967295", "broadcast"},
        /* IPv6 */
        {"::", "unspecified"}, {"::1", "loopback"}, {"0:0:0:0:0:0:0:1", "loopback"},
        {"fe80::1", "link-local"}, {"febf::1", "link-local"}, {"fec0::1", "site-local"},
        {"fc00::1", "unique-local"}, {"fd12:3456::1", "unique-local"},
        {"ff02::1", "multicast"}, {"2001:db8::1", "documentation"},
        {"3fff::1", "documentation"}, {"2001::1", "IETF protocol"}, {"100::1", "discard"},
        {"64:ff9b:1::a00:1", "NAT64 local-use"}, {"4000::1", "reserved"},
        /* IPv4 carried in IPv6: mapped, compatible, translated, NAT64, 6to4 */
        {"::ffff:127.0.0.1", "loopback address, as IPv4-mapped 127.0.0.1"},
        {"::ffff:7f00:1", "loopback address, as IPv4-mapped"},
        {"::ffff:169.254.169.254", "link-local address, as IPv4-mapped"},
        {"::ffff:10.0.0.1", "private address, as IPv4-mapped"},
        {"::ffff:0.0.0.0", "unspecified address, as IPv4-mapped"},
        {"::127.0.0.1", "loopback address, as IPv4-compatible"},
        {"::8.8.8.8", "reserved address, as IPv4-compatible 8.8.8.8"},
        {"::ffff:0:127.0.0.1", "loopback address, as IPv4-translated"},
        {"64:ff9b::127.0.0.1", "loopback address, as NAT64 127.0.0.1"},
        {"64:ff9b::a9fe:a9fe", "link-local address, as NAT64 169.254.169.254"},
        {"64:ff9b::192.168.0.1", "private address, as NAT64"},
        {"2002:7f00:1::1", "loopback address, as 6to4 127.0.0.1"},
        {"2002:a9fe:a9fe::", "link-local address, as 6to4"},
    };
    for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++)
        denied_as(denied[i][0], denied[i][1]);
    /* Public addresses, also just outside the ranges refused. No traffic goes to any. */
    static const char *const allowed[] = {
        "8.8.8.8", "1.1.1.1", "134744072", "0x08080808", "11.0.0.1", "9.255.255.255",
        "172.15.255.255", "172.32.0.1", "192.167.255.255", "192.169.0.1", "100.63.255.255",
        "100.128.0.1", "169.253.255.255", "169.255.0.1", "126.255.255.255", "128.0.0.1",
        "223.255.255.255", "198.20.0.1", "2001:4860::1", "2001:4860:4860::8888",
        "2606:4700::1111", "2a00:1450::1", "::ffff:8.8.8.8", "64:ff9b::8.8.8.8",
        "2002:808:808::1", "2001:200::1",
    };
    char why[128];
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        if (class_of(allowed[i], why, sizeof why))
            fail_msg("%s is refused as \"%s\"", allowed[i], why);
    /* No other family gets through. */
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    assert_true(rp_webhook_addr_denied((struct sockaddr *)&un, why, sizeof why));
    assert_true(rp_webhook_addr_denied(NULL, NULL, 0));
}

/* rp_webhook_check_dest() with allow list @p allow (NULL: empty): @p code, with @p needle (may
 * be NULL) in the message. */
static void dest_is(const char *url, const char *allow, int code, const char *needle)
{
    rp_webhook_allow_t *a = NULL;
    rp_error_t err = {0};
    if (rp_webhook_allow_parse(allow, &a, &err))
        fail_msg("allow list %s: %s", allow, err.msg);
    int rc = rp_webhook_check_dest(url, a, &err);
    rp_webhook_allow_free(a);
    if (rc != code)
        fail_msg("%s with allow list \"%s\": %d (%s); wanted %d", url, allow ? allow : "", rc,
                 err.msg, code);
    if (needle && !strstr(err.msg, needle))
        fail_msg("%s: \"%s\" lacks \"%s\"", url, err.msg, needle);
}

/* URLs as libcurl reads them, with literal hosts (and localhost): nothing is sent. */
static void test_check_dest(void **state)
{
    (void)state;
    static const char *const inside[][2] = {
        {"http://127.0.0.1:8080/hook", "127.0.0.1 (a loopback address)"},
        {"http://2130706433/", "127.0.0.1 (a loopback address)"},
        {"http://0177.0.0.1/", "127.0.0.1 (a loopback"},
        {"http://0x7f000001/", "127.0.0.1 (a loopback"},
        {"http://0x7f.1/", "127.0.0.1 (a loopback"},
        {"http://127.1/", "127.0.0.1 (a loopback"},
        {"http://[::1]:9000/x", "::1 (a loopback address)"},
        {"http://[::ffff:127.0.0.1]/", "IPv4-mapped 127.0.0.1"},
        {"http://[::ffff:7f00:1]/", "IPv4-mapped 127.0.0.1"},
        {"http://[64:ff9b::7f00:1]/", "NAT64 127.0.0.1"},
        {"http://169.254.169.254/latest/meta-data/", "169.254.169.254 (a link-local"},
        {"http://2852039166/latest/meta-data/", "169.254.169.254 (a link-local"},
        {"http://[fe80::1%25eth0]/", "fe80::1 (a link-local"},
        {"http://[fd00:ec2::254]/", "fd00:ec2::254 (a unique-local"},
        {"http://0/", "0.0.0.0 (an unspecified"},
        {"http://[::]/", ":: (an unspecified"},
        {"http://10.1.2.3/", "(a private"},
        {"http://172.16.0.1/", "(a private"},
        {"http://192.168.0.1/", "(a private"},
        {"http://100.100.100.200/", "carrier-grade NAT"},
        {"https://user:pass@127.0.0.1/", "127.0.0.1 (a loopback"},
    };
    for (size_t i = 0; i < sizeof inside / sizeof inside[0]; i++) {
        dest_is(inside[i][0], NULL, RP_EPERM, inside[i][1]);
        dest_is(inside[i][0], NULL, RP_EPERM, "RP-E2002");
        dest_is(inside[i][0], NULL, RP_EPERM, "webhooks.allow_networks");
    }
    dest_is("http://127.0.0.1/", NULL, RP_EPERM,
            "rapport config set webhooks.allow_networks 127.0.0.1/32");
    dest_is("http://[::1]/", NULL, RP_EPERM, "webhooks.allow_networks ::1/128");
    /* Public destinations pass, in any notation. */
    static const char *const outside[] = {"http://8.8.8.8/hook", "https://134744072/",
                                          "http://[2001:4860::1]:8080/",
                                          "http://[::ffff:8.8.8.8]/",
                                          "http://[64:ff9b::808:808]/"};
    for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++)
        dest_is(outside[i], NULL, 0, NULL);
    /* The allow list lets ranges, addresses and host names through, in every notation. */
    dest_is("http://127.0.0.1:8080/", "127.0.0.1/32", 0, NULL);
    dest_is("http://2130706433/", "127.0.0.0/8", 0, NULL);
    dest_is("http://[::ffff:127.0.0.1]/", "127.0.0.1", 0, NULL);
    dest_is("http://[::1]/", "127.0.0.1/32", RP_EPERM, "::1");
    dest_is("http://[::1]/", "::1", 0, NULL);
    dest_is("http://10.9.8.7/", "10.0.0.0/8, 192.168.0.0/16", 0, NULL);
    dest_is("http://192.168.0.1/", "10.0.0.0/8", RP_EPERM, "192.168.0.1");
    dest_is("http://[fd00::5]/", "fd00::/8", 0, NULL);
    dest_is("http://169.254.169.254/", "0.0.0.0/0", 0, NULL);
    /* A host name allowed is not even looked up. */
    dest_is("https://Hooks.Internal./x", "hooks.internal", 0, NULL);
    dest_is("https://hooks.internal/x", "HOOKS.internal.", 0, NULL);
    /* A name that resolves only inside is refused, naming the host. */
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo("localhost", NULL, &hints, &res) == 0) {
        freeaddrinfo(res);
        dest_is("http://localhost:9/", NULL, RP_EPERM, "host localhost leads only where");
        dest_is("http://localhost:9/", NULL, RP_EPERM, "(a loopback address)");
        dest_is("http://localhost:9/", "localhost", 0, NULL);
        dest_is("http://localhost:9/", "127.0.0.0/8,::1", 0, NULL);
    }
    dest_is("http://", NULL, RP_EINVAL, "names no host");
}

static void allow_refused(const char *text, const char *needle)
{
    rp_webhook_allow_t *a = NULL;
    rp_error_t err = {0};
    assert_int_equal(rp_webhook_allow_parse(text, &a, &err), RP_EINVAL);
    assert_null(a);
    if (!strstr(err.msg, needle) || !strstr(err.msg, "webhooks.allow_networks"))
        fail_msg("%s: \"%s\" lacks \"%s\"", text, err.msg, needle);
}

static void test_allow_list(void **state)
{
    (void)state;
    rp_webhook_allow_t *a = NULL;
    rp_error_t err = {0};
    assert_int_equal(rp_webhook_allow_parse(NULL, &a, &err), 0);
    rp_webhook_allow_free(a);
    assert_int_equal(rp_webhook_allow_parse(" 10.0.0.0/8 ,fd00::/8,hooks.lan,192.168.1.7 ", &a,
                                            &err), 0);
    assert_true(rp_webhook_allow_host(a, "hooks.lan"));
    assert_true(rp_webhook_allow_host(a, "HOOKS.LAN."));
    assert_false(rp_webhook_allow_host(a, "evil.hooks.lan"));
    assert_false(rp_webhook_allow_host(a, "hooks.la"));
    struct sockaddr_in in = {.sin_family = AF_INET};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET, "10.200.0.1", &in.sin_addr);
    assert_true(rp_webhook_allow_addr(a, (struct sockaddr *)&in));
    inet_pton(AF_INET, "192.168.1.8", &in.sin_addr);
    assert_false(rp_webhook_allow_addr(a, (struct sockaddr *)&in));
    inet_pton(AF_INET, "192.168.1.7", &in.sin_addr);
    assert_true(rp_webhook_allow_addr(a, (struct sockaddr *)&in));
    inet_pton(AF_INET6, "::ffff:10.1.1.1", &in6.sin6_addr);
    assert_true(rp_webhook_allow_addr(a, (struct sockaddr *)&in6));
    inet_pton(AF_INET6, "fdff::1", &in6.sin6_addr);
    assert_true(rp_webhook_allow_addr(a, (struct sockaddr *)&in6));
    inet_pton(AF_INET6, "fe80::1", &in6.sin6_addr);
    assert_false(rp_webhook_allow_addr(a, (struct sockaddr *)&in6));
    char why[160];
    assert_true(rp_webhook_dest_refused(a, (struct sockaddr *)&in6, why, sizeof why));
    assert_string_equal(why, "fe80::1 (a link-local address)");
    rp_webhook_allow_free(a);
    /* From a setting's value: a text or an array of texts. */
    json_t *v = J("[\"127.0.0.1/32\", \"::1\"]");
    assert_int_equal(rp_webhook_allow_json(v, &a, &err), 0);
    inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
    assert_false(rp_webhook_dest_refused(a, (struct sockaddr *)&in, why, sizeof why));
    inet_pton(AF_INET, "127.0.0.2", &in.sin_addr);
    assert_true(rp_webhook_dest_refused(a, (struct sockaddr *)&in, why, sizeof why));
    assert_string_equal(why, "127.0.0.2 (a loopback address)");
    rp_webhook_allow_free(a);
    json_decref(v);
    v = J("[\"10.0.0.0/8\", 7]");
    assert_int_equal(rp_webhook_allow_json(v, &a, &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "item 2"));
    json_decref(v);
    v = J("127.1");
    assert_int_equal(rp_webhook_allow_json(v, &a, &err), RP_EINVAL);
    json_decref(v);
    /* Each wrong entry named. */
    allow_refused("10.0.0.0/8,,fd00::/8", "empty part");
    allow_refused("10.0.0.0/8,", "ends with a comma");
    allow_refused("10.0.0.0/33", "not 0 to 32");
    allow_refused("fd00::/129", "not 0 to 128");
    allow_refused("10.0.0.0/x", "not 0 to 32");
    allow_refused("10.0.0.0/-1", "not 0 to 32");
    allow_refused("127.0.0.1/8", "bits set past its prefix length");
    allow_refused("fd00::1/8", "bits set past its prefix length");
    allow_refused("127.1", "short or numeric form");
    allow_refused("2130706433", "short or numeric form");
    allow_refused("0x7f000001", "short or numeric form");
    allow_refused("[::1]", "bracketed");
    allow_refused("10.0.0.0/8 10.1.0.0/16", "prefix length");
    allow_refused("hooks.lan/24", "is not an address range");
    allow_refused("hooks lan", "neither an address nor a host name");
    allow_refused("http://hooks.lan/", "is not an address range");
    allow_refused("hooks.lan:8080", "neither an address nor a host name");
    allow_refused("a..b", "neither an address nor a host name");
}

static void test_redact(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"https://user:pass@hooks.example.com/a?b=c", "https://***@hooks.example.com/a?b=c"},
        {"http://user@127.0.0.1:8080/x", "http://***@127.0.0.1:8080/x"},
        {"http://a:b@c@host/", "http://***@host/"},
        {"http://:@host", "http://***@host"},
        {"https://hooks.example.com/p@th?m=a@b#x@y", "https://hooks.example.com/p@th?m=a@b#x@y"},
        {"http://host?x=u:p@y", "http://host?x=u:p@y"},
        {"http://[::1]:9/", "http://[::1]:9/"},
        {"", ""},
    };
    char out[128];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rp_webhook_url_redact(cases[i][0], out, sizeof out);
        assert_string_equal(out, cases[i][1]);
    }
    rp_webhook_url_redact("https://user:pass@host/", out, 12);
    assert_string_equal(out, "https://***");
    /* The check of a URL does not repeat its password either. */
    rp_error_t err = {0};
    assert_int_equal(rp_webhook_check_url("ftp://u:hunter22@example.com/", &err), RP_EINVAL);
    assert_null(strstr(err.msg, "hunter22"));
    assert_non_null(strstr(err.msg, "ftp://***@example.com/"));
    assert_int_equal(rp_webhook_check_url("http://u:hunter22@exa mple.com/", &err), RP_EINVAL);
    assert_null(strstr(err.msg, "hunter22"));
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
    rp_db_stmt_t *st;
    assert_non_null(st = rp_db_prepare(rp_store_db(s), sql, NULL));
    bool found = false;
    while (!found && rp_db_step(st) == RP_DB_ROW)
        for (int c = 0; c < rp_db_col_count(st); c++) {
            const char *v = rp_db_col_text(st, c);
            if (v && strstr(v, needle))
                found = true;
        }
    rp_db_finalize(st);
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
    /* Allowed by name, so the test resolves nothing. */
    rp_webhook_spec_t spec = {.url = "https://hooks.example.com/path/SECRETPATH?key=abc",
                              .events = "contact.*,deal.won", .user = "ana",
                              .allow_networks = "hooks.example.com"};
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
                               .user = "ana", .secret = "0123456789abcdef",
                               .allow_networks = "127.0.0.1/32"};
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
    assert_int_equal(rp_db_exec(rp_store_db(s), "INSERT INTO rp_webhook_deliveries(webhook_id, seq, attempt,"
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

/* Offline (a replay's copy holds the live queue): never started, said. */
static void test_deliverer_not_offline(void **state)
{
    (void)state;
    rp_store_t *s = test_open();
    rp_error_t err = {0};
    rp_webhook_deliverer_t *d = NULL;
    assert_false(rp_store_set_offline(s, true));
    assert_true(rp_store_offline(s));
    assert_int_equal(rp_webhook_deliverer_start(s, NULL, &d, &err), RP_EPERM);
    assert_null(d);
    assert_non_null(strstr(err.msg, "not delivered offline"));
    assert_true(rp_store_set_offline(s, false));
    rp_store_close(s);
}

static int64_t count_rows(rp_store_t *s, const char *sql)
{
    rp_db_stmt_t *st;
    assert_non_null(st = rp_db_prepare(rp_store_db(s), sql, NULL));
    assert_int_equal(rp_db_step(st), RP_DB_ROW);
    int64_t n = rp_db_col_int(st, 0);
    rp_db_finalize(st);
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
    assert_int_equal(rp_db_exec(rp_store_db(s), sql, &err), 0);
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
        cmocka_unit_test(test_addr_classes),
        cmocka_unit_test(test_check_dest),
        cmocka_unit_test(test_allow_list),
        cmocka_unit_test(test_redact),
        cmocka_unit_test(test_events_filter),
        cmocka_unit_test(test_subscriptions),
        cmocka_unit_test(test_deliverer_needs_a_file),
        cmocka_unit_test(test_deliverer_not_offline),
        cmocka_unit_test(test_deliverer_start_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
