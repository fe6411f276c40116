/*
 * webhook_receiver.c — a webhook receiver for the end-to-end tests: listens on a free loopback
 * port, keeps each request's head and body in files, and answers as a script says.
 *
 *   webhook_receiver DIR SCRIPT
 *
 * SCRIPT is a comma-separated list of answers, one per request in order, the last repeated:
 * an HTTP status ("500,500,200") or "hang" (read the request, never answer). The port goes to
 * DIR/port once listening; request N goes to DIR/N.head and DIR/N.body, and then the line
 * "N STATUS" (or "N hang") is appended to DIR/log. It runs until killed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_REQ (1 << 20)

static const char *dir;

static void write_file(const char *name, const char *data, size_t len)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(tmp);
        exit(1);
    }
    /* Whole or not at all, so a test that sees the file sees all of it. */
    rename(tmp, path);
}

/* The answer for request @p n (1-based): the n-th item of the script, or its last. */
static void answer_of(const char *script, int n, char *out, size_t cap)
{
    const char *p = script;
    for (int i = 1; i < n; i++) {
        const char *comma = strchr(p, ',');
        if (!comma)
            break;
        p = comma + 1;
    }
    size_t len = strcspn(p, ",");
    if (len >= cap)
        len = cap - 1;
    memcpy(out, p, len);
    out[len] = '\0';
}

/* Reads one request; returns its total length or -1. *head_len is where the body starts. */
static ssize_t read_request(int fd, char *buf, size_t cap, size_t *head_len)
{
    size_t have = 0, need = 0;
    *head_len = 0;
    for (;;) {
        if (have == cap)
            return -1;
        ssize_t n = read(fd, buf + have, cap - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        have += (size_t)n;
        if (!*head_len) {
            buf[have < cap ? have : cap - 1] = '\0';
            char *end = NULL;
            for (size_t i = 0; i + 3 < have; i++)
                if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
                    end = buf + i;
                    break;
                }
            if (!end)
                continue;
            *head_len = (size_t)(end - buf) + 4;
            size_t clen = 0;
            for (char *line = buf; line < end;) {
                char *eol = strstr(line, "\r\n");
                if (strncasecmp(line, "content-length:", 15) == 0)
                    clen = strtoul(line + 15, NULL, 10);
                line = eol + 2;
            }
            need = *head_len + clen;
        }
        if (have >= need)
            return (ssize_t)need;
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: webhook_receiver DIR SCRIPT\n");
        return 2;
    }
    dir = argv[1];
    const char *script = argv[2];
    signal(SIGPIPE, SIG_IGN);
    int srv = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(srv, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (bind(srv, (struct sockaddr *)&a, sizeof a) != 0 || listen(srv, 16) != 0 ||
        getsockname(srv, (struct sockaddr *)&a, &alen) != 0) {
        perror("webhook_receiver: listen");
        return 1;
    }
    char port[16];
    int plen = snprintf(port, sizeof port, "%d\n", ntohs(a.sin_port));
    write_file("port", port, (size_t)plen);
    static char buf[MAX_REQ + 1];
    for (int n = 1;; n++) {
        int fd = accept(srv, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR) {
                n--;
                continue;
            }
            perror("webhook_receiver: accept");
            return 1;
        }
        size_t head = 0;
        ssize_t len = read_request(fd, buf, MAX_REQ, &head);
        if (len < 0) {
            close(fd); /* a client that went away before sending a whole request */
            n--;
            continue;
        }
        char name[32], what[16], line[64];
        snprintf(name, sizeof name, "%d.head", n);
        write_file(name, buf, head);
        snprintf(name, sizeof name, "%d.body", n);
        write_file(name, buf + head, (size_t)len - head);
        answer_of(script, n, what, sizeof what);
        snprintf(line, sizeof line, "%d %s\n", n, what);
        FILE *log = NULL;
        char path[4096];
        snprintf(path, sizeof path, "%s/log", dir);
        if ((log = fopen(path, "a"))) {
            fputs(line, log);
            fclose(log);
        }
        if (strcmp(what, "hang") == 0)
            continue; /* never answered: the socket stays open until the client gives up */
        int status = atoi(what);
        char resp[256];
        const char *body = status >= 200 && status < 300 ? "ok" : "scripted failure";
        int rlen = snprintf(resp, sizeof resp,
                            "HTTP/1.1 %d Scripted\r\nContent-Type: text/plain\r\n"
                            "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                            status, strlen(body), body);
        if (write(fd, resp, (size_t)rlen) < 0)
            perror("webhook_receiver: write");
        close(fd);
    }
}
