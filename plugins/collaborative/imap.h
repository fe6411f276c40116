/*
 * imap.h — what the two rooms of the IMAP poller share, and nobody else includes: imap.c (the
 * settings, the poll chain and the job on the loop, `mail poll` and Lua, each message handed to
 * cm_mail_receive) and imap_wire.c (the IMAP exchange with libcurl on a worker thread and the
 * reading of what the server answers). The poller's interface is collaborative.h's
 * cm_imap_init and cm_imap_command; these names are its insides.
 */
#ifndef CM_IMAP_H
#define CM_IMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

/** Characters of a mailbox's URL kept to name it in messages. */
#define SHOWN_URL 300

/** Refused messages a mailbox remembers (the oldest forgotten first: fetched once more). */
#define MAX_REFUSED 64

/* The messages of one mailbox the store refused: skipped until the process restarts. */
typedef struct refused {
    char uidvalidity[24]; /* the UIDs below mean something only under this */
    uint32_t uid[MAX_REFUSED];
    int n;
} refused_t;

/* A growing byte buffer with a ceiling: what a server answers to one command. */
typedef struct buf {
    char *p;
    size_t n, cap, max;
    bool over; /* the answer passed max: the transfer was stopped */
} buf_t;

/* One message fetched: its UID and bytes (malloc'd). */
typedef struct fetched {
    uint32_t uid;
    char *data;
    size_t len;
} fetched_t;

/* The loop's own: a poll of several mailboxes, and a mailbox's slot in the in-flight table
 * (imap.c). The worker never looks inside them. */
typedef struct poll poll_t;
struct inflight;

/* One mailbox's poll, carried from round to round. The worker reads and writes it during a
 * work, the loop during a done; offload orders the two. */
typedef struct box {
    poll_t *poll;
    struct inflight *slot;
    char *name, *url, *user, *password;
    char shown[SHOWN_URL]; /* the URL as messages show it */
    long timeout_ms;
    size_t max_bytes;
    size_t max_n;
    CURL *curl; /* open from the first round to the last; NULL once closed */
    char curl_err[CURL_ERROR_SIZE];
    buf_t body, head; /* what the server answered to the last command */
    char uidvalidity[24];
    bool searched, stop;
    uint32_t *todo; /* unseen UIDs to fetch this poll, oldest first */
    size_t ntodo, next;
    fetched_t *got; /* this round's messages, for the done */
    size_t ngot;
    uint32_t *mark; /* handled in the last done: \Seen in the next round */
    size_t nmark;
    uint32_t large[8]; /* a few of the UIDs too large to fetch, for the log */
    int nlarge;
    refused_t refused; /* the slot's, copied in at the start and back at the end */
    int fetched, stored, duplicates, auto_replies, bounces, refused_n, store_failures, too_large,
        unreadable, marked;
    char err[700]; /* why the mailbox failed, or "" */
} box_t;

/**
 * One round of box @p ud (a box_t) on a worker thread, the work of an api->offload: marks \Seen
 * what the last round handled, searches (the first round), fetches the next messages into
 * b->got. The connection (b->curl) stays open only when there is more to do; a failure is in
 * b->err, without the password. Never touches the store, the host or the loop's state.
 */
void cm_imap_round_work(void *ud);

#endif
