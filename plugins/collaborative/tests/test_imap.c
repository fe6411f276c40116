/*
 * test_imap.c — the parts of the IMAP poller (imap.c, imap_wire.c) that read what a server and
 * libcurl hand over, without a server: a message's literal in the header stream of libcurl 7.88
 * and in the body stream of later versions (a message holding IMAP-looking lines, a part cut
 * short, a literal past the end), SEARCH and SELECT answers, the Message-ID check, the server's
 * refusal picked out of an answer without a message's lines, the password scrubbed from errors,
 * the refused list, and the setting's checks naming entry and field. The end-to-end behaviour
 * against Dovecot is tests/e2e/test_imap.sh.
 *
 * imap.c and imap_wire.c are included whole, so their file-local functions are reached; the few
 * functions of the plugin they call are stubs below, and the host table has only what the checks
 * use.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../imap.c"
#include "../imap_wire.c"

/* ---- stubs of the plugin and the host ------------------------------------------------------ */

static json_t *settings; /* plugin.collaborative.* as the test sets them */

static int fake_delay_parse(rapport_host *h, const char *text, int64_t *ms)
{
    (void)h;
    char *end;
    long long v = strtoll(text, &end, 10);
    if (end == text || v < 0)
        return RAPPORT_EINVAL;
    if (!strcmp(end, "ms"))
        *ms = v;
    else if (!strcmp(end, "s"))
        *ms = v * 1000;
    else if (!strcmp(end, "m"))
        *ms = v * 60000;
    else
        return RAPPORT_EINVAL;
    return 0;
}

static const rapport_api fake_api = {.delay_parse = fake_delay_parse};
const rapport_api *cm_api = &fake_api;

int cm_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return code;
}

json_t *cm_config(rapport_host *h, const char *key)
{
    (void)h;
    return json_deep_copy(json_object_get(settings, key));
}

const char *cm_config_text(rapport_host *h, const char *key, const char *def, char *out,
                           size_t cap)
{
    json_t *v = cm_config(h, key);
    const char *r = json_is_string(v) ? out : def ? out : NULL;
    snprintf(out, cap, "%s", json_is_string(v) ? json_string_value(v) : def ? def : "");
    json_decref(v);
    return r;
}

int64_t cm_config_int(rapport_host *h, const char *key, int64_t def)
{
    (void)h;
    json_t *v = json_object_get(settings, key);
    return json_is_integer(v) ? json_integer_value(v) : def;
}

/* The engine is never offline here: the poll is driven against a server this test runs. */
int cm_refuse_offline(rapport_host *h, const char *what, char *err, size_t errlen)
{
    (void)h, (void)what, (void)err, (void)errlen;
    return 0;
}

char *cm_dump(json_t *j)
{
    char *t = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return t;
}

int cm_mail_receive(rapport_host *h, const char *msg, size_t len, json_t **report, char *err,
                    size_t errlen)
{
    (void)h, (void)msg, (void)len, (void)err, (void)errlen;
    *report = json_object();
    return 0;
}

/* ---- the literal of a FETCH answer ---------------------------------------------------------- */

/* A message whose lines look like IMAP: none of them may be taken for the server's. */
static const char tricky[] = "Subject: x\r\n\r\n* 2 FETCH (UID 9 BODY[] {3}\r\nA004 NO stop\r\n)\r\n";

static void test_literal_header_stream(void **state)
{
    (void)state;
    /* libcurl 7.88: every line of the answer in the header stream, SELECT's before it. */
    char s[512];
    int n = snprintf(s, sizeof s,
                     "* OK [UIDVALIDITY 17] UIDs valid\r\nA003 OK [READ-WRITE] Select done\r\n"
                     "* 4 EXISTS\r\n* 1 FETCH (UID 7 BODY[]<0> {%zu}\r\n%s)\r\n"
                     "A004 OK Fetch completed\r\n", strlen(tricky), tricky);
    const char *msg = NULL;
    size_t len = 0;
    assert_int_equal(find_literal(s, (size_t)n, &msg, &len), 0);
    assert_int_equal(len, strlen(tricky));
    assert_memory_equal(msg, tricky, len);
}

static void test_literal_body_stream(void **state)
{
    (void)state;
    /* A later libcurl: the FETCH line and exactly the literal, nothing after. */
    char s[512];
    int n = snprintf(s, sizeof s, "* 1 FETCH (UID 7 BODY[]<0> {%zu}\r\n%s", strlen(tricky),
                     tricky);
    const char *msg = NULL;
    size_t len = 0;
    assert_int_equal(find_literal(s, (size_t)n, &msg, &len), 0);
    assert_memory_equal(msg, tricky, strlen(tricky));
    /* And the body stream of libcurl 7.88, which holds the "* " lines only: short. */
    n = snprintf(s, sizeof s, "* 1 FETCH (UID 7 BODY[]<0> {%zu}\r\n* 2 FETCH (UID 9 BODY[] "
                 "{3}\r\n", strlen(tricky));
    assert_int_equal(find_literal(s, (size_t)n, &msg, &len), -1);
}

static void test_literal_refused(void **state)
{
    (void)state;
    const char *msg;
    size_t len;
    /* Short: libcurl cut a line. */
    const char *short_ = "* 1 FETCH (BODY[] {50}\r\nonly this)\r\nA1 OK\r\n";
    assert_int_equal(find_literal(short_, strlen(short_), &msg, &len), -1);
    /* The bytes after the literal are not the rest of the FETCH: a line was cut before. */
    const char *shifted = "* 1 FETCH (BODY[] {4}\r\nabcdefgh)\r\nA1 OK\r\n";
    assert_int_equal(find_literal(shifted, strlen(shifted), &msg, &len), -1);
    /* No FETCH line at all: the message went. */
    const char *gone = "A1 OK Fetch completed\r\n";
    assert_int_equal(find_literal(gone, strlen(gone), &msg, &len), 1);
    assert_int_equal(find_literal(NULL, 0, &msg, &len), 1);
    /* Not a number between the braces. */
    const char *bad = "* 1 FETCH (BODY[] {4x}\r\nabcd)\r\n";
    assert_int_equal(find_literal(bad, strlen(bad), &msg, &len), -1);
    /* Past the end of the message, a server answers {0}: an empty part. */
    const char *empty = "* 1 FETCH (UID 7 BODY[]<98304> {0}\r\n)\r\nA1 OK\r\n";
    assert_int_equal(find_literal(empty, strlen(empty), &msg, &len), 0);
    assert_int_equal(len, 0);
}

/* ---- SEARCH and SELECT ---------------------------------------------------------------------- */

static void test_search_answers(void **state)
{
    (void)state;
    uids_t l = {0};
    assert_int_equal(add_search_uids("* SEARCH 10 3 5 3\r\nA1 OK\r\n", &l), 0);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.v[0], 3);
    assert_int_equal(l.v[1], 5);
    assert_int_equal(l.v[2], 10);
    /* A second window appends; an empty answer adds nothing; junk is skipped. */
    assert_int_equal(add_search_uids("* SEARCH\r\n", &l), 0);
    assert_int_equal(add_search_uids(NULL, &l), 0);
    assert_int_equal(add_search_uids("* SEARCH 12 x 11 0 99999999999\r\n", &l), 0);
    assert_int_equal(l.n, 5);
    assert_int_equal(l.v[3], 11);
    assert_int_equal(l.v[4], 12);
    free(l.v);

    const char *select = "* FLAGS (\\Seen)\r\n* 42 EXISTS\r\n* 0 RECENT\r\n"
                         "* OK [UIDVALIDITY 1796590630] UIDs valid\r\n* 43 EXISTS\r\n";
    assert_int_equal(read_exists(select), 43);
    assert_int_equal(read_exists("A1 OK\r\n"), -1);
    char v[24] = "";
    read_uidvalidity(select, v, sizeof v);
    assert_string_equal(v, "1796590630");
    char w[24] = "";
    read_uidvalidity("* OK [UIDVALIDITY 12x] no\r\n", w, sizeof w);
    assert_string_equal(w, "");
}

/* ---- the message and the errors ------------------------------------------------------------- */

static void test_message_id(void **state)
{
    (void)state;
    const char *with = "From: a@b\r\nMessage-Id: <1@b>\r\n\r\nbody";
    const char *without = "From: a@b\r\nSubject: x\r\n\r\nMessage-ID: <in the body>\r\n";
    const char *lf = "From: a@b\nSubject: x\n\nhi\n";
    const char *png = "\x89PNG\r\n\x1a\n";
    assert_false(lacks_message_id(with, strlen(with)));
    assert_true(lacks_message_id(without, strlen(without)));
    assert_true(lacks_message_id(lf, strlen(lf)));
    /* Not a message: left alone, for cm_mail_receive to refuse. */
    assert_false(lacks_message_id(png, strlen(png)));
    assert_false(lacks_message_id(": x\r\n", 5));
    assert_false(lacks_message_id("", 0));
}

static void test_refusal_and_scrub(void **state)
{
    (void)state;
    box_t b = {.password = "s3cret-pw"};
    char said[240];
    b.head.p = "* OK ready\r\nHello NO problem here\r\nA002 NO [AUTHENTICATIONFAILED] "
               "Authentication failed.\r\n";
    last_refusal(&b, said, sizeof said);
    assert_string_equal(said, "A002 NO [AUTHENTICATIONFAILED] Authentication failed.");
    b.head.p = "Dear team NO one answered\r\nA004 OK done\r\n";
    last_refusal(&b, said, sizeof said);
    assert_string_equal(said, "");
    b.head.p = "* BYE Server shutting down\r\n";
    last_refusal(&b, said, sizeof said);
    assert_string_equal(said, "* BYE Server shutting down");

    char t[128] = "imap://h/INBOX: s3cret-pw was refused: s3cret-pw";
    scrub(t, "s3cret-pw");
    assert_string_equal(t, "imap://h/INBOX: *** was refused: ***");
    char u[32] = "a ab abc";
    scrub(u, "ab");
    assert_string_equal(u, "a ** **c");
    char v[32] = "x *** y";
    scrub(v, "***"); /* a secret that looks like its mask ends */
    assert_string_equal(v, "x *** y");
}

static void test_refused_list(void **state)
{
    (void)state;
    box_t b = {0};
    snprintf(b.uidvalidity, sizeof b.uidvalidity, "17");
    for (uint32_t u = 1; u <= MAX_REFUSED + 2; u++)
        remember_refused(&b.refused, "17", u);
    /* Full: the oldest two were forgotten. */
    assert_int_equal(b.refused.n, MAX_REFUSED);
    assert_int_equal(b.refused.uid[0], 3);
    uids_t l = {0};
    assert_int_equal(add_search_uids("* SEARCH 1 2 3 70 66\r\n", &l), 0);
    drop_refused(&b, &l, 0);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.v[0], 1);
    assert_int_equal(l.v[1], 2);
    assert_int_equal(l.v[2], 70);
    /* Under another UIDVALIDITY the numbers name other messages: nothing is dropped. */
    snprintf(b.uidvalidity, sizeof b.uidvalidity, "18");
    assert_int_equal(add_search_uids("* SEARCH 3\r\n", &l), 0);
    drop_refused(&b, &l, 3);
    assert_int_equal(l.n, 4);
    free(l.v);
    remember_refused(&b.refused, "18", 5);
    assert_int_equal(b.refused.n, 1);
}

static void test_buffer_ceiling(void **state)
{
    (void)state;
    buf_t b = {.max = 10};
    assert_int_equal(on_bytes("12345", 1, 5, &b), 5);
    assert_int_equal(on_bytes("123456", 1, 6, &b), 0); /* stops the transfer */
    assert_true(b.over);
    assert_int_equal(b.n, 5);
    assert_string_equal(b.p, "12345");
    free(b.p);
}

/* ---- the setting ---------------------------------------------------------------------------- */

/* Sets plugin.collaborative.imap to @p json and returns what mailboxes() says ("" if fine). */
static const char *check(const char *json)
{
    static char err[700];
    json_object_set_new(settings, "imap", json_loads(json, 0, NULL));
    err[0] = '\0';
    json_t *l = mailboxes(NULL, err, sizeof err);
    json_decref(l);
    return err;
}

static void test_setting(void **state)
{
    (void)state;
    settings = json_object();
    assert_string_equal(check("[{\"name\": \"support\", \"url\": \"imaps://mail.example.com/INBOX\", "
                              "\"user\": \"ana\", \"password\": \"pw\", \"every\": \"5m\"}]"),
                        "");
    json_t *l = mailboxes(NULL, NULL, 0);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 0), "every_ms")), 300000);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 0), "max_per_poll")), 50);
    json_decref(l);
#define OK_BOX "{\"name\": \"a\", \"url\": \"imap://h/INBOX\", \"user\": \"u\", \"password\": \"p\"}"
    assert_non_null(strstr(check("{}"), "plugin.collaborative.imap: a list"));
    assert_non_null(strstr(check("[" OK_BOX ", 7]"), "imap[1]: an object"));
    assert_non_null(strstr(check("[" OK_BOX ", " OK_BOX "]"), "imap[1].name: \"a\" names two"));
    assert_non_null(strstr(check("[{\"name\": \"Big Box\"}]"), "imap[0].name: 1 to 32"));
    assert_non_null(strstr(check("[{\"name\": \"a\", \"pasword\": \"p\"}]"),
                           "imap[0].pasword: not a field"));
    assert_non_null(strstr(check("[{\"name\": \"a\", \"user\": \"u\"}]"), "imap[0].url: missing"));
    assert_non_null(strstr(check("[{\"name\": \"a\", \"url\": \"pop3://h/INBOX\"}]"),
                           "imap[0].url: \"pop3://h/INBOX\" is neither"));
    assert_non_null(strstr(check("[{\"name\": \"a\", \"url\": \"imap://h\"}]"),
                           "imap[0].url: \"imap://h\" names no mailbox"));
    assert_non_null(strstr(check("[{\"name\": \"a\", \"url\": \"imap://h/INBOX;UID=4\"}]"),
                           "may hold only the server and the mailbox"));
    assert_non_null(strstr(check("[{\"name\": \"a\", \"url\": \"imap://h/INBOX?ALL\"}]"),
                           "may hold only the server and the mailbox"));
    /* A password in the URL is refused and not repeated. */
    const char *e = check("[{\"name\": \"a\", \"url\": \"imap://u:hunter2@h/INBOX\"}]");
    assert_non_null(strstr(e, "imap[0].url: holds a user or password"));
    assert_null(strstr(e, "hunter2"));
    assert_non_null(strstr(check("[{\"name\": \"a\", \"url\": \"imap://h/INBOX\"}]"),
                           "imap[0].user: missing"));
    assert_non_null(strstr(check("[{\"name\": \"a\", \"url\": \"imap://h/INBOX\", \"user\": "
                                 "\"u\"}]"), "imap[0].password: missing"));
    assert_non_null(strstr(check("[{\"name\": \"a\", \"url\": \"imap://h/INBOX\", \"user\": "
                                 "\"u\", \"password\": \"a\\r\\nb\"}]"),
                           "imap[0].password: holds a control character"));
    assert_non_null(strstr(check("[{\"name\": \"a\", \"url\": \"imap://h/INBOX\", \"user\": "
                                 "\"u\", \"password\": \"p\", \"every\": \"100ms\"}]"),
                           "imap[0].every: a delay of a second or more"));
    assert_non_null(strstr(check("[{\"name\": \"a\", \"url\": \"imap://h/INBOX\", \"user\": "
                                 "\"u\", \"password\": \"p\", \"max_per_poll\": 0}]"),
                           "imap[0].max_per_poll: a number from 1 to 1000"));
    /* The password under its own key. */
    json_object_set_new(settings, "imap.a.password", json_string("kept-apart"));
    assert_string_equal(check("[{\"name\": \"a\", \"url\": \"imap://h/INBOX\", \"user\": \"u\"}]"),
                        "");
    l = mailboxes(NULL, NULL, 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "password")),
                        "kept-apart");
    json_decref(l);
    /* Not set: no mailbox, no error. */
    json_object_del(settings, "imap");
    l = mailboxes(NULL, NULL, 0);
    assert_int_equal(json_array_size(l), 0);
    json_decref(l);
    json_decref(settings);
#undef OK_BOX
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_header_stream),
        cmocka_unit_test(test_literal_body_stream),
        cmocka_unit_test(test_literal_refused),
        cmocka_unit_test(test_search_answers),
        cmocka_unit_test(test_message_id),
        cmocka_unit_test(test_refusal_and_scrub),
        cmocka_unit_test(test_refused_list),
        cmocka_unit_test(test_buffer_ceiling),
        cmocka_unit_test(test_setting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
