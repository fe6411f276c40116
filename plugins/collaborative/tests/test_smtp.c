/*
 * test_smtp.c — outgoing mail sent (mail_out.c: cm_smtp_send) to real aiosmtpd servers the test
 * starts on 127.0.0.1: delivered into a Maildir and read back, server down, recipient refused
 * (550 and 450; tests/smtp_refuse.py is the refusing server), TLS required where none is
 * offered, addresses and URLs refused before connecting, a silent server timed out, and no
 * secret in any error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkdtemp, nftw, setenv */
#endif

#include <arpa/inet.h>
#include <dirent.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mail_out_helpers.h"

/* Where smtp_refuse.py lives: $CM_TESTS_DIR, else given by the build, else beside this file
 * (as the compiler was told its path). */
#ifndef CM_TESTS_DIR
#define CM_TESTS_DIR ""
#endif

typedef struct server {
    pid_t pid;
    int port;
    char dir[64];     /* a private folder */
    char maildir[80]; /* dir/md: the Mailbox handler creates it with new/, cur/ and tmp/ */
} server;

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static int accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

static const char *tests_dir(void)
{
    static char dir[1024];
    const char *env = getenv("CM_TESTS_DIR");
    if (env && *env) {
        snprintf(dir, sizeof dir, "%s", env);
    } else if (CM_TESTS_DIR[0]) {
        snprintf(dir, sizeof dir, "%s", CM_TESTS_DIR);
    } else {
        snprintf(dir, sizeof dir, "%s", __FILE__);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        else
            strcpy(dir, ".");
    }
    return dir;
}

/* Starts aiosmtpd with @p handler (and its argument @p arg, or NULL) and waits until it
 * accepts connections. */
static void server_start(server *s, const char *handler, const char *arg)
{
    s->port = free_port();
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", s->port);
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        FILE *null = freopen("/dev/null", "w", stdout);
        null = null ? freopen("/dev/null", "w", stderr) : NULL;
        (void)null;
        setenv("PYTHONPATH", tests_dir(), 1);
        execl("/usr/bin/python3", "python3", "-m", "aiosmtpd", "-n", "-l", listen, "-c", handler,
              arg, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 300; i++) { /* 15 s */
        if (accepts(s->port))
            return;
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid)
            fail_msg("aiosmtpd (%s) exited before accepting", handler);
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fail_msg("aiosmtpd (%s) did not accept on port %d", handler, s->port);
}

static void server_stop(server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int smtp_teardown(void **state)
{
    server *s = *state;
    server_stop(s);
    if (s->dir[0])
        nftw(s->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(s);
    return 0;
}

static int smtp_setup(void **state)
{
    server *s = calloc(1, sizeof *s);
    assert_non_null(s);
    snprintf(s->dir, sizeof s->dir, "/tmp/test_mail_out_md_XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    snprintf(s->maildir, sizeof s->maildir, "%s/md", s->dir);
    *state = s;
    return 0;
}

/* Reads the one file in @p dir/new; g_free it. */
static char *maildir_message(const char *dir, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/new", dir);
    DIR *d = opendir(path);
    assert_non_null(d);
    struct dirent *e;
    char *found = NULL;
    int count = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        count++;
        g_free(found);
        found = g_strdup_printf("%s/%s", path, e->d_name);
    }
    closedir(d);
    assert_int_equal(count, 1);
    char *bytes = NULL;
    gsize n = 0;
    assert_true(g_file_get_contents(found, &bytes, &n, NULL));
    g_free(found);
    *len = n;
    return bytes;
}

static void test_smtp_delivers(void **state)
{
    server *s = *state;
    server_start(s, "aiosmtpd.handlers.Mailbox", s->maildir);

    cm_outgoing m = sample();
    m.html = "<p>سلام</p>";
    /* Lines of dots go out 7bit as they are: SMTP's dot-stuffing is libcurl's to do. */
    m.text = "Hello Ana,\n.\n..two dots\n.end\n";
    size_t n;
    char *msg = build(&m, &n);
    assert_non_null(strstr(msg, "\r\n.\r\n..two dots\r\n.end\r\n"));
    char url[64], err[512] = "";
    snprintf(url, sizeof url, "smtp://127.0.0.1:%d", s->port);
    cm_smtp conf = {.url = url, .timeout_ms = 10000};
    int permanent = -1;
    if (cm_smtp_send(&conf, "bounces@shop.example", "ana@example.com", msg, n, &permanent, err,
                     sizeof err) != 0)
        fail_msg("cm_smtp_send: %s", err);
    assert_int_equal(permanent, 0);
    free(msg);

    size_t len;
    char *got = maildir_message(s->maildir, &len);
    GMimeMessage *rx = parse(got, len);
    assert_string_equal(g_mime_message_get_subject(rx), FA_SUBJECT);
    InternetAddress *ia = internet_address_list_get_address(g_mime_message_get_from(rx), 0);
    assert_string_equal(internet_address_get_name(ia), FA_NAME);
    assert_string_equal(g_mime_object_get_header((GMimeObject *)rx, "X-MailFrom"),
                        "bounces@shop.example");
    assert_string_equal(g_mime_object_get_header((GMimeObject *)rx, "X-RcptTo"), "ana@example.com");
    GMimeObject *alt = g_mime_message_get_mime_part(rx);
    char *t = part_text(g_mime_multipart_get_part((GMimeMultipart *)alt, 0));
    assert_string_equal(t, m.text);
    g_free(t);
    g_object_unref(rx);
    g_free(got);

    /* The server gone: a failure worth retrying, naming the host; the password (and user) in
     * no error. */
    server_stop(s);
    msg = build(&m, &n);
    conf.user = "shop-user";
    conf.password = "S3cret-pw!";
    permanent = -1;
    assert_int_equal(cm_smtp_send(&conf, "bounces@shop.example", "ana@example.com", msg, n,
                                  &permanent, err, sizeof err),
                     -1);
    assert_int_equal(permanent, 0);
    assert_non_null(strstr(err, "127.0.0.1"));
    assert_null(strstr(err, "S3cret-pw!"));
    assert_null(strstr(err, "shop-user"));
    free(msg);
}

static void test_smtp_refused_recipient(void **state)
{
    server *s = *state;
    server_start(s, "smtp_refuse.Refuse", NULL);
    cm_outgoing m = sample();
    size_t n;
    char *msg = build(&m, &n);
    char url[64], err[512] = "";
    snprintf(url, sizeof url, "smtp://127.0.0.1:%d", s->port);
    cm_smtp conf = {.url = url, .timeout_ms = 10000};

    int permanent = -1;
    assert_int_equal(cm_smtp_send(&conf, "bounces@shop.example", "nobody@example.com", msg, n,
                                  &permanent, err, sizeof err),
                     -1);
    assert_int_equal(permanent, 1);
    assert_non_null(strstr(err, "550"));
    if (!strstr(err, "no such user"))
        fail_msg("%s", err);
    assert_non_null(strstr(err, url));

    /* A 4xx is worth retrying. */
    permanent = -1;
    assert_int_equal(cm_smtp_send(&conf, "bounces@shop.example", "busy@example.com", msg, n,
                                  &permanent, err, sizeof err),
                     -1);
    assert_int_equal(permanent, 0);
    assert_non_null(strstr(err, "450 4.2.1 mailbox busy"));

    /* The same server takes other recipients, with a null envelope sender too. */
    permanent = -1;
    if (cm_smtp_send(&conf, NULL, "ana@example.com", msg, n, &permanent, err, sizeof err) != 0)
        fail_msg("cm_smtp_send: %s", err);

    /* It offers no STARTTLS: fine by default, a failure when TLS is required (not the
     * server's refusal, so not permanent). */
    conf.require_tls = 1;
    permanent = -1;
    assert_int_equal(
        cm_smtp_send(&conf, NULL, "ana@example.com", msg, n, &permanent, err, sizeof err), -1);
    assert_int_equal(permanent, 0);
    assert_non_null(strstr(err, url));
    conf.require_tls = 0;

    /* Credentials in the URL itself never reach the error text. */
    snprintf(url, sizeof url, "smtp://url-user:url-pass-42@127.0.0.1:%d", s->port);
    assert_int_equal(cm_smtp_send(&conf, "bounces@shop.example", "nobody@example.com", msg, n,
                                  &permanent, err, sizeof err),
                     -1);
    assert_null(strstr(err, "url-user"));
    assert_null(strstr(err, "url-pass-42"));
    assert_non_null(strstr(err, "550"));
    free(msg);
}

static void test_smtp_refusals_without_connecting(void **state)
{
    (void)state;
    const char *msg = "Subject: x\r\n\r\nbody\r\n";
    size_t n = strlen(msg);
    char err[512];
    int permanent;
    /* A bad URL may be fixed in the settings (retry: not permanent); a bad address or no
     * message never goes (permanent). */
    struct {
        const char *url, *from, *rcpt, *needle;
        int permanent;
    } cases[] = {
        {"http://127.0.0.1:1", "a@b.c", "d@e.f", "url:", 0},
        {"file:///etc/passwd", "a@b.c", "d@e.f", "url:", 0},
        {"imap://u:hunter2@127.0.0.1", "a@b.c", "d@e.f", "url:", 0},
        {NULL, "a@b.c", "d@e.f", "url: missing", 0},
        {"smtp://127.0.0.1:1", "a@b.c", "d@e.f\r\nRCPT TO:<x@y.z>", "rcpt:", 1},
        {"smtp://127.0.0.1:1", "a@b.c\r\nRSET", "d@e.f", "mail_from:", 1},
        {"smtp://127.0.0.1:1", "a@b.c", "no-at-sign", "rcpt:", 1},
        {"smtp://127.0.0.1:1", "a@b.c", NULL, "rcpt: missing", 1},
        {"smtp://127.0.0.1 :1", "a@b.c", "d@e.f", "url:", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cm_smtp conf = {.url = cases[i].url, .password = "hunter2"};
        permanent = -1;
        err[0] = '\0';
        assert_int_equal(
            cm_smtp_send(&conf, cases[i].from, cases[i].rcpt, msg, n, &permanent, err, sizeof err),
            -1);
        assert_int_equal(permanent, cases[i].permanent);
        if (!strstr(err, cases[i].needle))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].needle);
        assert_null(strstr(err, "hunter2"));
        assert_null(strpbrk(err, "\r\n"));
    }
    /* No message at all. */
    cm_smtp conf = {.url = "smtp://127.0.0.1:1"};
    assert_int_equal(cm_smtp_send(&conf, "a@b.c", "d@e.f", NULL, 0, &permanent, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "no message"));
    assert_int_equal(permanent, 1);
}

/* Nothing listens on the port: a retryable failure naming the host, and the password nowhere
 * in the error, whatever its length, even in a short buffer that cuts the text. */
static void test_smtp_wrong_port_hides_password(void **state)
{
    (void)state;
    int port = free_port();
    char url[64];
    snprintf(url, sizeof url, "smtps://127.0.0.1:%d", port);
    const char *msg = "Subject: x\r\n\r\nbody\r\n";
    const char *pw[] = {"p4ssw0rd-very-secret", "127.0.0.1"};
    for (size_t i = 0; i < 2; i++) {
        cm_smtp conf = {.url = url,
                        .user = "mailer@shop.example",
                        .password = pw[i],
                        .timeout_ms = 5000,
                        .require_tls = 1};
        char err[512];
        int permanent = -1;
        assert_int_equal(cm_smtp_send(&conf, "a@shop.example", "d@example.com", msg, strlen(msg),
                                      &permanent, err, sizeof err),
                         -1);
        assert_int_equal(permanent, 0);
        assert_null(strstr(err, pw[i]));
        assert_null(strstr(err, "mailer@shop.example"));
        if (i == 0) {
            assert_non_null(strstr(err, "127.0.0.1"));
            char short_err[24];
            assert_int_equal(cm_smtp_send(&conf, "a@shop.example", "d@example.com", msg,
                                          strlen(msg), &permanent, short_err, sizeof short_err),
                             -1);
            assert_int_equal(strlen(short_err), sizeof short_err - 1);
        }
    }
}

/* A server that takes the connection and never says a word: the timeout ends the wait. */
static void test_smtp_silent_server_times_out(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 4), 0);
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    char url[64], err[512];
    snprintf(url, sizeof url, "smtp://127.0.0.1:%d", ntohs(sa.sin_port));
    cm_smtp conf = {.url = url, .timeout_ms = 300};
    const char *msg = "Subject: x\r\n\r\nbody\r\n";
    int permanent = -1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(cm_smtp_send(&conf, "a@shop.example", "d@example.com", msg, strlen(msg),
                                  &permanent, err, sizeof err),
                     -1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    close(fd);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    assert_int_equal(permanent, 0);
    assert_true(ms >= 250 && ms < 5000);
    if (!strstr(err, "timed out") && !strstr(err, "Timeout"))
        fail_msg("no timeout in \"%s\"", err);
}

int main(void)
{
    g_mime_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_smtp_delivers, smtp_setup, smtp_teardown),
        cmocka_unit_test_setup_teardown(test_smtp_refused_recipient, smtp_setup, smtp_teardown),
        cmocka_unit_test(test_smtp_refusals_without_connecting),
        cmocka_unit_test(test_smtp_wrong_port_hides_password),
        cmocka_unit_test(test_smtp_silent_server_times_out),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    g_mime_shutdown();
    return rc;
}
