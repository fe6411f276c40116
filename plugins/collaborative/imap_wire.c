/*
 * imap_wire.c — the IMAP poller's exchange with a server, on a worker thread: one libcurl handle
 * per mailbox's poll, the SEARCH, FETCH and STORE commands, and the reading of what comes back
 * (SELECT's counts, SEARCH's UIDs, a FETCH's literal, the server's refusal), with the password
 * scrubbed from every error. It knows nothing of the store or the loop: imap.c hands it a box.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "imap.h"

/*
 * libcurl 7.88 (Debian 12) passes a custom command's answer to the header callback line by line
 * (and only its "* " lines to the write callback: a literal's lines are not among them). Two
 * limits follow, both measured here against Dovecot: a line longer than half the buffer is cut
 * (the largest buffer, 512 KiB, keeps lines of 256 KiB), and an answer of more than 300 KiB in
 * all fails ("Too large response headers: 393358 > 307200"), where libcurl counts up to twice
 * the bytes it hands over (a 128 KiB part counted 262,287). So a message is fetched in parts of
 * FETCH_PART bytes (counted at most 196,750; a 25 MiB message is 267 commands on one
 * connection), and the unseen messages are searched SEARCH_WINDOW sequence numbers at a time
 * (10,000 UIDs of up to 11 characters: 110 KB). Both still work when a later libcurl writes the
 * literal as the body.
 */
#define CURL_BUFFER (512 * 1024L)
#define FETCH_PART (96 * 1024)
#define SEARCH_WINDOW 10000
/** What a server says around a part (the FETCH line, the closing parenthesis, the tagged
 *  answer) is far less than this. */
#define RESPONSE_SLACK 65536
/** The most an answer to SELECT, SEARCH or STORE may be. */
#define ANSWER_MAX (1u << 20)

static int buf_add(buf_t *b, const char *p, size_t n)
{
    if (n > b->max - b->n) {
        b->over = true;
        return -1;
    }
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q)
            return -1;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

static size_t on_bytes(char *p, size_t size, size_t n, void *ud)
{
    return buf_add(ud, p, size * n) ? 0 : size * n;
}

/* Replaces every occurrence of @p secret in @p s by "***" (by as many stars as it has
 * characters when it is shorter: the text never grows). */
static void scrub(char *s, const char *secret)
{
    size_t n = secret ? strlen(secret) : 0, stars = n < 3 ? n : 3;
    if (n == 0)
        return;
    for (char *hit = strstr(s, secret); hit; hit = strstr(hit + stars, secret)) {
        memset(hit, '*', stars);
        memmove(hit + stars, hit + n, strlen(hit + n) + 1);
    }
}

/* Whether the line @p p (@p n bytes) is a tagged refusal ("A004 NO …", "A004 BAD …": libcurl's
 * tags are a letter and digits) or "* BYE …"; a message's own lines are neither. */
static bool refusal_line(const char *p, size_t n)
{
    if (n > 6 && strncmp(p, "* BYE ", 6) == 0)
        return true;
    size_t t = 1;
    if (n < 6 || !isupper((unsigned char)p[0]))
        return false;
    while (t < n && isdigit((unsigned char)p[t]))
        t++;
    return t > 1 && t + 4 < n && (!strncmp(p + t, " NO ", 4) || !strncmp(p + t, " BAD ", 5));
}

/* The server's last refusal in b->head, printable ASCII only, into @p out ("" when none). */
static void last_refusal(const box_t *b, char *out, size_t cap)
{
    const char *p = b->head.p ? b->head.p : "", *line = NULL;
    size_t llen = 0, k = 0;
    while (*p) {
        size_t n = strcspn(p, "\r\n");
        if (refusal_line(p, n))
            line = p, llen = n;
        p += n;
        while (*p == '\r' || *p == '\n')
            p++;
    }
    for (size_t i = 0; line && i < llen && k + 1 < cap; i++) {
        unsigned char c = (unsigned char)line[i];
        out[k++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    out[k] = '\0';
}

/* Records the mailbox's failure: what failed, libcurl's reason and the server's last refusal,
 * the password never. */
static void box_fail(box_t *b, const char *what, CURLcode cc)
{
    char said[240];
    last_refusal(b, said, sizeof said);
    const char *why = b->curl_err[0] ? b->curl_err : curl_easy_strerror(cc);
    /* The command is named when the server or the network failed it; a failure to connect,
     * log in or select the mailbox (libcurl's part, before any command) speaks for itself. */
    bool before = cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_COULDNT_CONNECT ||
                  cc == CURLE_LOGIN_DENIED || cc == CURLE_USE_SSL_FAILED ||
                  cc == CURLE_SSL_CONNECT_ERROR || cc == CURLE_PEER_FAILED_VERIFICATION ||
                  cc == CURLE_REMOTE_FILE_NOT_FOUND || cc == CURLE_WEIRD_SERVER_REPLY;
    char text[1200];
    snprintf(text, sizeof text, "%s: %s%s%s%s%s%s", b->shown, before ? "" : what,
             before ? "" : ": ", why, said[0] ? " (" : "", said, said[0] ? ")" : "");
    /* Scrubbed whole, then cut: a cut can never leave part of the password behind. */
    scrub(text, b->password);
    size_t n = strlen(text) < sizeof b->err ? strlen(text) : sizeof b->err - 1;
    memcpy(b->err, text, n);
    b->err[n] = '\0';
}

static CURLcode open_handle(box_t *b)
{
    if (!(b->curl = curl_easy_init()))
        return CURLE_OUT_OF_MEMORY;
    CURL *c = b->curl;
    CURLcode rc;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if ((rc = curl_easy_setopt(c, opt, val)) != CURLE_OK)                                      \
            return rc;                                                                             \
    } while (0)
    SET(CURLOPT_ERRORBUFFER, b->curl_err);
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "imap,imaps");
#else
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_IMAP | CURLPROTO_IMAPS));
#endif
    SET(CURLOPT_USERNAME, b->user);
    SET(CURLOPT_PASSWORD, b->password);
    /* imap:// upgrades with STARTTLS when the server offers it; imaps:// is TLS from the start. */
    SET(CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
    SET(CURLOPT_TIMEOUT_MS, b->timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, b->timeout_ms < 15000 ? b->timeout_ms : 15000L);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_BUFFERSIZE, CURL_BUFFER);
    SET(CURLOPT_WRITEFUNCTION, on_bytes);
    SET(CURLOPT_WRITEDATA, &b->body);
    SET(CURLOPT_HEADERFUNCTION, on_bytes);
    SET(CURLOPT_HEADERDATA, &b->head);
#undef SET
    return CURLE_OK;
}

/* Runs IMAP command @p cmd on the mailbox (selected by libcurl, and checked against the
 * UIDVALIDITY the first search saw). What came back is in b->body (the untagged lines libcurl
 * hands over) and b->head (every line the server sent, literals included). */
static CURLcode command(box_t *b, const char *cmd, size_t max)
{
    char url[SHOWN_URL + 48];
    if (b->uidvalidity[0])
        snprintf(url, sizeof url, "%s;UIDVALIDITY=%s", b->url, b->uidvalidity);
    else
        snprintf(url, sizeof url, "%s", b->url);
    b->body.n = b->head.n = 0;
    b->body.over = b->head.over = false;
    b->body.max = b->head.max = max;
    b->curl_err[0] = '\0';
    CURLcode rc = curl_easy_setopt(b->curl, CURLOPT_URL, url);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(b->curl, CURLOPT_CUSTOMREQUEST, cmd);
    return rc == CURLE_OK ? curl_easy_perform(b->curl) : rc;
}

static int cmp_uid(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* A growing list of UIDs. */
typedef struct uids {
    uint32_t *v;
    size_t n, cap;
} uids_t;

static int uids_add(uids_t *l, uint32_t uid)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        uint32_t *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = uid;
    return 0;
}

/* Adds the UIDs of the "* SEARCH" lines of @p s to @p l, sorted, each once. */
static int add_search_uids(const char *s, uids_t *l)
{
    size_t from = l->n;
    for (const char *p = s ? s : ""; *p;) {
        size_t len = strcspn(p, "\r\n");
        if (len > 9 && strncasecmp(p, "* SEARCH ", 9) == 0) {
            for (const char *q = p + 9, *end = p + len; q < end;) {
                char *e;
                unsigned long v = strtoul(q, &e, 10);
                if (e == q) {
                    q++;
                    continue;
                }
                if (v > 0 && v <= UINT32_MAX && uids_add(l, (uint32_t)v))
                    return -1;
                q = e;
            }
        }
        p += len;
        while (*p == '\r' || *p == '\n')
            p++;
    }
    if (l->n == from)
        return 0;
    qsort(l->v + from, l->n - from, sizeof *l->v, cmp_uid);
    size_t k = from;
    for (size_t i = from; i < l->n; i++)
        if (k == from || l->v[k - 1] != l->v[i])
            l->v[k++] = l->v[i];
    l->n = k;
    return 0;
}

/* The number in the last "* N EXISTS" line of @p s, or -1. */
static long read_exists(const char *s)
{
    long n = -1;
    for (const char *p = s ? s : ""; *p;) {
        size_t len = strcspn(p, "\r\n");
        char *e;
        long v = len > 9 && p[0] == '*' && p[1] == ' ' ? strtol(p + 2, &e, 10) : -1;
        if (v >= 0 && strncasecmp(e, " EXISTS", 7) == 0)
            n = v;
        p += len;
        while (*p == '\r' || *p == '\n')
            p++;
    }
    return n;
}

/* The UIDVALIDITY in what SELECT answered ("* OK [UIDVALIDITY 3857529045]"), into @p out. */
static void read_uidvalidity(const char *s, char *out, size_t cap)
{
    const char *p = s ? strstr(s, "[UIDVALIDITY ") : NULL;
    if (!p)
        return;
    p += 13;
    size_t n = strspn(p, "0123456789");
    if (n > 0 && n < cap && p[n] == ']')
        snprintf(out, cap, "%.*s", (int)n, p);
}

/* Takes the UIDs this process refused out of l->v[from…]. */
static void drop_refused(const box_t *b, uids_t *l, size_t from)
{
    const refused_t *r = &b->refused;
    if (r->n == 0 || strcmp(r->uidvalidity, b->uidvalidity))
        return;
    size_t k = from;
    for (size_t i = from; i < l->n; i++) {
        int j = 0;
        while (j < r->n && r->uid[j] != l->v[i])
            j++;
        if (j == r->n)
            l->v[k++] = l->v[i];
    }
    l->n = k;
}

/* The unseen messages to fetch (oldest first, at most max_per_poll of them, none larger than
 * max_message_bytes: those are counted and left unseen). */
static int search(box_t *b)
{
    /* NOOP first: the SELECT libcurl sends before it says how many messages there are (a
     * window past the last is an error on some servers) and the UIDVALIDITY. */
    CURLcode cc = command(b, "NOOP", ANSWER_MAX);
    if (cc != CURLE_OK) {
        box_fail(b, "connect, log in and SELECT", cc);
        return -1;
    }
    read_uidvalidity(b->head.p, b->uidvalidity, sizeof b->uidvalidity);
    long exists = read_exists(b->head.p);
    uids_t todo = {0}, large = {0};
    char cmd[128];
    int rc = 0;
    /* Without a count (a libcurl that keeps SELECT's lines to itself), one search for all. */
    for (long lo = 1; !rc && todo.n < b->max_n && (exists < 0 ? lo == 1 : lo <= exists);
         lo += SEARCH_WINDOW) {
        long hi = exists < 0 || lo + SEARCH_WINDOW - 1 < exists ? lo + SEARCH_WINDOW - 1 : exists;
        if (exists < 0)
            snprintf(cmd, sizeof cmd, "UID SEARCH UNSEEN SMALLER %zu", b->max_bytes + 1);
        else
            snprintf(cmd, sizeof cmd, "UID SEARCH UNSEEN SMALLER %zu %ld:%ld", b->max_bytes + 1,
                     lo, hi);
        size_t from = todo.n;
        if ((cc = command(b, cmd, ANSWER_MAX)) != CURLE_OK)
            rc = -1, box_fail(b, "UID SEARCH", cc);
        else if (add_search_uids(b->body.p, &todo))
            rc = -1, snprintf(b->err, sizeof b->err, "%s: out of memory", b->shown);
        else
            drop_refused(b, &todo, from);
    }
    /* Messages too large are few (each is over max_message_bytes): one search finds them. */
    snprintf(cmd, sizeof cmd, "UID SEARCH UNSEEN LARGER %zu", b->max_bytes);
    if (!rc && exists != 0 && (cc = command(b, cmd, ANSWER_MAX)) != CURLE_OK)
        rc = -1, box_fail(b, "UID SEARCH", cc);
    else if (!rc && exists != 0 && add_search_uids(b->body.p, &large))
        rc = -1, snprintf(b->err, sizeof b->err, "%s: out of memory", b->shown);
    b->too_large = (int)large.n;
    for (size_t i = 0; i < large.n && b->nlarge < 8; i++)
        b->large[b->nlarge++] = large.v[i];
    free(large.v);
    b->todo = todo.v;
    b->ntodo = todo.n < b->max_n ? todo.n : b->max_n;
    return rc;
}

/*
 * Finds the message in the answer to UID FETCH BODY.PEEK[]: the line "* n FETCH (… BODY[]
 * {size}" and the size bytes after it. 0 with *msg and *len; 1 when there is no such line (the
 * message went meanwhile); -1 when the bytes are short or what follows them is not the rest of
 * the FETCH (a line libcurl cut).
 */
static int find_literal(const char *s, size_t n, const char **msg, size_t *len)
{
    size_t i = 0;
    while (s && i < n) {
        const char *nl = memchr(s + i, '\n', n - i);
        if (!nl)
            return 1;
        size_t end = (size_t)(nl - s), le = end;
        if (le > i && s[le - 1] == '\r')
            le--;
        const char *line = s + i, *brace = NULL;
        size_t ll = le - i;
        if (ll > 4 && line[0] == '*' && line[1] == ' ' && line[ll - 1] == '}' &&
            memmem(line, ll, " FETCH ", 7) && memmem(line, ll, "BODY[]", 6))
            for (const char *q = line + ll - 1; q > line && !brace; q--)
                if (*q == '{')
                    brace = q;
        if (brace) {
            char *e;
            unsigned long long size = strtoull(brace + 1, &e, 10);
            if (e != line + ll - 1 || size > n)
                return -1;
            size_t start = end + 1;
            if (size > n - start)
                return -1;
            if (start + size < n && s[start + size] != ')' && s[start + size] != ' ')
                return -1;
            *msg = s + start;
            *len = (size_t)size;
            return 0;
        }
        i = end + 1;
    }
    return 1;
}

/* The part of message @p uid from @p off: 0 with *part and *len (0 past the end); 1 when the
 * message is gone; 3 when the answer does not read; -1 the mailbox failed (b->err). */
static int fetch_part(box_t *b, uint32_t uid, size_t off, const char **part, size_t *len)
{
    char cmd[96];
    snprintf(cmd, sizeof cmd, "UID FETCH %" PRIu32 " BODY.PEEK[]<%zu.%d>", uid, off, FETCH_PART);
    CURLcode cc = command(b, cmd, FETCH_PART + RESPONSE_SLACK);
    if (cc != CURLE_OK) {
        box_fail(b, cmd, cc);
        return -1;
    }
    /* libcurl 7.88 hands a custom FETCH's literal only to the header callback; later versions
     * write it as the body. Whichever holds it whole is the part. */
    int h = find_literal(b->head.p, b->head.n, part, len);
    int r = h == 0 ? 0 : find_literal(b->body.p, b->body.n, part, len);
    if (r == 0)
        return *len <= FETCH_PART ? 0 : 3;
    if (h == 1 && r == 1) {
        /* No literal: the message went, or (past its end) the server said "" for none. */
        *len = 0;
        return off == 0 ? 1 : 0;
    }
    return 3;
}

/* Fetches message @p uid without setting \Seen, part by part. 0 with *out filled; 1 gone; 2
 * larger than max_message_bytes; 3 not readable; -1 the mailbox failed (b->err). */
static int fetch_one(box_t *b, uint32_t uid, fetched_t *out)
{
    buf_t msg = {.max = b->max_bytes};
    size_t off = 0, len;
    int r;
    do {
        const char *part;
        r = fetch_part(b, uid, off, &part, &len);
        if (r == 0 && len && buf_add(&msg, part, len))
            r = msg.over ? 2 : -1;
        if (r == -1 && !b->err[0])
            snprintf(b->err, sizeof b->err, "%s: out of memory", b->shown);
        off += len;
    } while (r == 0 && len == FETCH_PART);
    if (r == 0 && msg.n == 0)
        r = 1; /* an empty message is none */
    if (r != 0) {
        free(msg.p);
        return r;
    }
    *out = (fetched_t){.uid = uid, .data = msg.p, .len = msg.n};
    return 0;
}

/* Marks the messages the last done handled \Seen. */
static int mark_seen(box_t *b)
{
    size_t cap = 64 + b->nmark * 11, n;
    char *cmd = malloc(cap);
    if (!cmd) {
        snprintf(b->err, sizeof b->err, "%s: out of memory", b->shown);
        return -1;
    }
    n = (size_t)snprintf(cmd, cap, "UID STORE ");
    for (size_t i = 0; i < b->nmark; i++)
        n += (size_t)snprintf(cmd + n, cap - n, "%s%" PRIu32, i ? "," : "", b->mark[i]);
    snprintf(cmd + n, cap - n, " +FLAGS.SILENT (\\Seen)");
    CURLcode cc = command(b, cmd, ANSWER_MAX);
    free(cmd);
    if (cc != CURLE_OK) {
        box_fail(b, "UID STORE +FLAGS (\\Seen)", cc);
        return -1;
    }
    b->marked += (int)b->nmark;
    b->nmark = 0;
    return 0;
}

/* Fetches the next messages, up to max_message_bytes in all (one at least). */
static void fetch_batch(box_t *b)
{
    size_t total = 0;
    while (b->next < b->ntodo && !b->stop && (b->ngot == 0 || total < b->max_bytes)) {
        uint32_t uid = b->todo[b->next++];
        fetched_t f = {0};
        int r = fetch_one(b, uid, &f);
        if (r < 0)
            return;
        if (r == 2)
            b->too_large++;
        if (r == 2 && b->nlarge < 8)
            b->large[b->nlarge++] = uid;
        if (r == 3)
            b->unreadable++;
        if (r != 0)
            continue;
        fetched_t *g = realloc(b->got, (b->ngot + 1) * sizeof *g);
        if (!g) {
            free(f.data);
            snprintf(b->err, sizeof b->err, "%s: out of memory", b->shown);
            return;
        }
        b->got = g;
        b->got[b->ngot++] = f;
        total += f.len;
    }
}

/* One round on a worker thread: mark what the last round handled, search (the first round),
 * fetch the next messages. The connection stays open only when there is more to do. */
void cm_imap_round_work(void *ud)
{
    box_t *b = ud;
    CURLcode cc;
    if (!b->curl && (cc = open_handle(b)) != CURLE_OK) {
        box_fail(b, "libcurl", cc);
        goto close;
    }
    if (b->nmark && mark_seen(b))
        goto close;
    if (!b->searched) {
        if (search(b))
            goto close;
        b->searched = true;
    }
    fetch_batch(b);
    if (b->ngot > 0 && !b->err[0])
        return;
close:
    if (b->curl)
        curl_easy_cleanup(b->curl);
    b->curl = NULL;
}
