/*
 * smtp_floor.c — the floor of bench_mail.sh's sending figure: libcurl alone delivering N
 * messages of the plugin's shape (its headers, a 250-byte text body, CRLF) to one SMTP server,
 * one connection per message (a fresh easy handle each, as mail_out.c's deliver does), from
 * T threads at once (the engine sends from libuv's pool, 4 threads unless UV_THREADPOOL_SIZE
 * says otherwise). The messages are made before the clock starts; what is timed is SMTP only.
 * Prints "<seconds> <sent> <failed>".
 * Usage: smtp_floor URL N THREADS   (built and run by bench_mail.sh)
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

static const char *url;
static char **msgs;
static long n, next_msg, failed;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct upload {
    const char *p;
    size_t left;
} upload;

static size_t read_body(char *buf, size_t size, size_t nitems, void *ud)
{
    upload *u = ud;
    size_t k = size * nitems < u->left ? size * nitems : u->left;
    memcpy(buf, u->p, k);
    u->p += k;
    u->left -= k;
    return k;
}

/* Message @p i as the plugin builds one (GMime's header order, an answer address per thread). */
static char *make(long i)
{
    static const char body[] =
        "Hello,\r\n\r\nyour order left our warehouse today and should arrive within three "
        "working days.\r\nYou can follow it on the carrier page.\r\n\r\nThank you for shopping "
        "with us.\r\nSupport\r\n";
    char *m = malloc(2048);
    if (!m)
        return NULL;
    snprintf(m, 2048,
             "Date: Sun, 06 Dec 2026 20:51:04 +0000\r\n"
             "From: Support <support@example.com>\r\n"
             "Reply-To: reply+%024ld@example.com\r\n"
             "To: customer%ld@example.org\r\n"
             "Subject: Your order %ld has shipped\r\n"
             "Message-ID: <%032ld@example.com>\r\n"
             "MIME-Version: 1.0\r\n"
             "Content-Type: text/plain; charset=utf-8\r\n\r\n%s",
             i, i % 100 + 1, i, i, body);
    return m;
}

/* One exchange on its own connection; 0 when the server took it. */
static int send_one(long i)
{
    CURL *h = curl_easy_init();
    if (!h)
        return -1;
    char rcpt[64];
    snprintf(rcpt, sizeof rcpt, "customer%ld@example.org", i % 100 + 1);
    struct curl_slist *to = curl_slist_append(NULL, rcpt);
    upload up = {msgs[i], strlen(msgs[i])};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, "support@example.com");
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, to);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, read_body);
    curl_easy_setopt(h, CURLOPT_READDATA, &up);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)up.left);
    curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(to);
    curl_easy_cleanup(h);
    return rc == CURLE_OK ? 0 : -1;
}

static void *worker(void *ud)
{
    (void)ud;
    for (;;) {
        pthread_mutex_lock(&lock);
        long i = next_msg < n ? next_msg++ : -1;
        pthread_mutex_unlock(&lock);
        if (i < 0)
            return NULL;
        if (send_one(i)) {
            pthread_mutex_lock(&lock);
            failed++;
            pthread_mutex_unlock(&lock);
        }
    }
}

int main(int argc, char **argv)
{
    if (argc != 4 || (n = atol(argv[2])) <= 0 || atoi(argv[3]) <= 0 || atoi(argv[3]) > 64) {
        fprintf(stderr, "usage: smtp_floor URL N THREADS\n");
        return 2;
    }
    url = argv[1];
    int nt = atoi(argv[3]);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(msgs = calloc((size_t)n,
                                                                            sizeof *msgs))) {
        fprintf(stderr, "smtp_floor: cannot start\n");
        return 1;
    }
    for (long i = 0; i < n; i++)
        if (!(msgs[i] = make(i))) {
            fprintf(stderr, "smtp_floor: out of memory\n");
            return 1;
        }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    pthread_t t[64];
    for (int i = 0; i < nt; i++)
        if (pthread_create(&t[i], NULL, worker, NULL) != 0) {
            fprintf(stderr, "smtp_floor: cannot start thread %d\n", i);
            return 1;
        }
    for (int i = 0; i < nt; i++)
        pthread_join(t[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.3f %ld %ld\n", (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9,
           n - failed, failed);
    for (long i = 0; i < n; i++)
        free(msgs[i]);
    free(msgs);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
