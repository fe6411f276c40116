/*
 * imap.c — the optional IMAP poller: mail that waits in mailboxes (a support@ address hosted
 * elsewhere) is taken in as `rapport mail receive` takes a message from an MTA. The network part
 * runs off the event loop (api->offload), the store part on it; a message is marked \Seen only
 * once it is handled, so a crash in between fetches it again and the duplicate check drops it.
 *
 * A poll of one mailbox is a chain of rounds, each one offload: the work (a worker thread, one
 * libcurl handle kept across the rounds so the login is done once) marks \Seen what the last
 * round handled, searches (first round: UID SEARCH UNSEEN, oldest first, at most max_per_poll),
 * and fetches the next messages with BODY.PEEK[] (which leaves \Seen alone), up to
 * max_message_bytes a round; the done (the loop) hands each to cm_mail_receive. The chain ends
 * with a round that fetched nothing, which closes the connection on its worker (LOGOUT may
 * block: never on the loop). This file is the loop's side; the worker's (the IMAP commands and
 * the reading of their answers) is imap_wire.c, and imap.h the box the two pass between them.
 *
 * What is marked \Seen: a message stored, or dropped as a duplicate, an auto-reply (stored) or a
 * bounce (recorded). A message the store refuses as it is (not a message, a field past a limit)
 * stays unseen, is logged, and is skipped by this process; a store failure stays unseen and ends
 * the mailbox's poll. A message without a Message-ID is given one from its place on the server
 * (<imap.NAME.UIDVALIDITY.UID@rapport.invalid>), so a second fetch finds it a duplicate too.
 *
 * CLI:  rapport mail poll [NAME] [--json]
 * Lua:  crm.collaborative.poll_mail([name]) -> [{mailbox, fetched, stored, …}]
 * Job:  collaborative.imap_poll, on the cron imap_cron ("* * * * *"), and every imap_every
 *       ("2s") when set, chained with api->schedule under the key collaborative.imap_poll:every
 *
 * Settings (plugin.collaborative.*):
 *   imap       [{"name", "url" (imaps://host/INBOX, or imap:// with STARTTLS tried), "user",
 *                "password" (a secret), "every" ("5m": at most this often), "max_per_poll" (50)}]
 *   imap.<name>.password   the password kept apart (a key naming a password is masked in the
 *                          event log; the imap list is not)
 *   imap_cron, imap_every, imap_timeout_ms (60000 per IMAP command), max_message_bytes (25 MiB)
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
#include <sodium.h>

#include "collaborative.h"
#include "imap.h"

#define POLL_JOB "collaborative.imap_poll"
#define CHAIN_KEY "collaborative.imap_poll:every"
/** Mailboxes one setting may list (the in-flight table below has a slot for each). */
#define MAX_MAILBOXES 32
#define MAX_PER_POLL 1000

/* ---- polls in flight ---------------------------------------------------------------------- */

/*
 * Which mailboxes have a poll in flight in this process, when each was last polled, and which
 * of its messages the store refused. Kept in memory, not in the store: an offload belongs to
 * the process that started it (its done never outlives it), so after a restart nothing is in
 * flight, every mailbox is due, and a refused message is tried again (a new version may take
 * it). Touched only on the event loop (job handler and done callbacks), or on the one thread of
 * a command; a poll works on its own copy of the refused list.
 */
static struct inflight {
    char name[40];
    bool busy;
    int64_t last_ms;
    refused_t refused;
} inflight[MAX_MAILBOXES];

/* The slot of mailbox @p name: its own, a free one, or the one polled longest ago that is not
 * busy (a renamed mailbox leaves its slot behind); NULL when all are busy. */
static struct inflight *slot_of(const char *name)
{
    struct inflight *free_slot = NULL, *oldest = NULL;
    for (int i = 0; i < MAX_MAILBOXES; i++) {
        struct inflight *s = &inflight[i];
        if (strcmp(s->name, name) == 0)
            return s;
        if (!s->name[0] && !free_slot)
            free_slot = s;
        if (!s->busy && (!oldest || s->last_ms < oldest->last_ms))
            oldest = s;
    }
    struct inflight *s = free_slot ? free_slot : oldest;
    if (s) {
        memset(s, 0, sizeof *s);
        snprintf(s->name, sizeof s->name, "%s", name);
    }
    return s;
}

/* ---- settings ----------------------------------------------------------------------------- */

static bool has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32)
        return false;
    for (; *s; s++)
        if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '_' && *s != '-')
            return false;
    return true;
}

/* Checks @p url for entry @p i: imap:// or imaps://, a host, a mailbox, nothing libcurl would
 * read as a command of its own (";UID=", "?SEARCH"), and no user or password in it. */
static int check_url(const char *url, int i, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    if (!u)
        return cm_fail(err, errlen, RAPPORT_ENOMEM, "out of memory");
    char *scheme = NULL, *user = NULL, *pass = NULL, *host = NULL, *path = NULL, *query = NULL,
         *frag = NULL;
    int rc = 0;
    CURLUcode uc = strlen(url) > 256 ? CURLUE_MALFORMED_INPUT : curl_url_set(u, CURLUPART_URL,
                                                                              url, 0);
    /* The text is not echoed when it does not parse: it may hold a password. */
    if (uc != CURLUE_OK) {
        rc = cm_fail(err, errlen, RAPPORT_EINVAL, "plugin.collaborative.imap[%d].url: not a URL "
                     "of at most 256 characters (%s); imaps://host/INBOX", i,
                     curl_url_strerror(uc));
        goto out;
    }
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    curl_url_get(u, CURLUPART_USER, &user, 0);
    curl_url_get(u, CURLUPART_PASSWORD, &pass, 0);
    curl_url_get(u, CURLUPART_HOST, &host, 0);
    curl_url_get(u, CURLUPART_PATH, &path, 0);
    curl_url_get(u, CURLUPART_QUERY, &query, 0);
    curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0);
    if (user || pass)
        rc = cm_fail(err, errlen, RAPPORT_EINVAL, "plugin.collaborative.imap[%d].url: holds a "
                     "user or password; put them in \"user\" and \"password\"", i);
    else if (!scheme || (strcasecmp(scheme, "imap") && strcasecmp(scheme, "imaps")))
        rc = cm_fail(err, errlen, RAPPORT_EINVAL, "plugin.collaborative.imap[%d].url: \"%.200s\" "
                     "is neither imaps:// nor imap://", i, url);
    else if (!host || !*host)
        rc = cm_fail(err, errlen, RAPPORT_EINVAL, "plugin.collaborative.imap[%d].url: \"%.200s\" "
                     "names no host", i, url);
    else if (!path || strlen(path) < 2)
        rc = cm_fail(err, errlen, RAPPORT_EINVAL, "plugin.collaborative.imap[%d].url: \"%.200s\" "
                     "names no mailbox (imaps://%s/INBOX)", i, url, host);
    else if (query || frag || strchr(path, ';') || has_control(url) || strchr(url, ' '))
        rc = cm_fail(err, errlen, RAPPORT_EINVAL, "plugin.collaborative.imap[%d].url: \"%.200s\" "
                     "may hold only the server and the mailbox (no ';', '?', '#' or spaces)", i,
                     url);
out:
    curl_free(scheme);
    curl_free(user);
    curl_free(pass);
    curl_free(host);
    curl_free(path);
    curl_free(query);
    curl_free(frag);
    curl_url_cleanup(u);
    return rc;
}

/* Checks entry @p i (@p e) and returns it as {name, url, user, password, every_ms,
 * max_per_poll} (owned), or NULL with @p err naming the entry and the field. */
static json_t *check_entry(rapport_host *h, json_t *e, int i, json_t *seen, char *err,
                           size_t errlen)
{
    static const char *const known[] = {"name", "url", "user", "password", "every",
                                        "max_per_poll", NULL};
    if (!json_is_object(e)) {
        cm_fail(err, errlen, RAPPORT_EINVAL, "plugin.collaborative.imap[%d]: an object {\"name\", "
                "\"url\", \"user\", \"password\"}", i);
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach(e, k, v) {
        int j = 0;
        while (known[j] && strcmp(known[j], k))
            j++;
        if (!known[j]) {
            cm_fail(err, errlen, RAPPORT_EINVAL, "plugin.collaborative.imap[%d].%.60s: not a "
                    "field of a mailbox (name, url, user, password, every, max_per_poll)", i, k);
            return NULL;
        }
    }
    const char *name = json_string_value(json_object_get(e, "name"));
    const char *url = json_string_value(json_object_get(e, "url"));
    const char *user = json_string_value(json_object_get(e, "user"));
    json_t *every = json_object_get(e, "every"), *max = json_object_get(e, "max_per_poll");
    if (!name || !name_ok(name)) {
        cm_fail(err, errlen, RAPPORT_EINVAL, "plugin.collaborative.imap[%d].name: 1 to 32 "
                "lower-case letters, digits, '_' or '-'", i);
        return NULL;
    }
    if (json_object_get(seen, name)) {
        cm_fail(err, errlen, RAPPORT_EINVAL, "plugin.collaborative.imap[%d].name: \"%s\" names "
                "two mailboxes", i, name);
        return NULL;
    }
    if (!url) {
        cm_fail(err, errlen, RAPPORT_EINVAL, "plugin.collaborative.imap[%d].url: missing "
                "(imaps://host/INBOX)", i);
        return NULL;
    }
    if (check_url(url, i, err, errlen))
        return NULL;
    if (!user || !*user || has_control(user)) {
        cm_fail(err, errlen, RAPPORT_EINVAL, "plugin.collaborative.imap[%d].user: %s", i,
                user && *user ? "holds a control character" : "missing");
        return NULL;
    }
    /* The password: in the entry, else under its own key (which the event log masks). */
    json_t *pw = json_incref(json_object_get(e, "password"));
    if (!pw) {
        char key[80];
        snprintf(key, sizeof key, "imap.%s.password", name);
        pw = cm_config(h, key);
    }
    const char *pass = json_string_value(pw);
    if (!pass || !*pass || has_control(pass)) {
        cm_fail(err, errlen, RAPPORT_EINVAL, "plugin.collaborative.imap[%d].password: %s", i,
                pass && *pass ? "holds a control character"
                              : "missing (or set plugin.collaborative.imap.<name>.password)");
        json_decref(pw);
        return NULL;
    }
    int64_t every_ms = 0;
    if (every && (!json_is_string(every) ||
                  cm_api->delay_parse(h, json_string_value(every), &every_ms) || every_ms < 1000)) {
        cm_fail(err, errlen, RAPPORT_EINVAL, "plugin.collaborative.imap[%d].every: a delay of a "
                "second or more (\"30s\", \"5m\")", i);
        json_decref(pw);
        return NULL;
    }
    if (max && (!json_is_integer(max) || json_integer_value(max) < 1 ||
                json_integer_value(max) > MAX_PER_POLL)) {
        cm_fail(err, errlen, RAPPORT_EINVAL, "plugin.collaborative.imap[%d].max_per_poll: a "
                "number from 1 to %d", i, MAX_PER_POLL);
        json_decref(pw);
        return NULL;
    }
    json_object_set_new(seen, name, json_true());
    return json_pack("{s:s,s:s,s:s,s:o,s:I,s:I}", "name", name, "url", url, "user", user,
                     "password", pw, "every_ms", (json_int_t)every_ms, "max_per_poll",
                     (json_int_t)(max ? json_integer_value(max) : 50));
}

/* The mailboxes of plugin.collaborative.imap, checked (an owned array, empty when the setting
 * is not set), or NULL with @p err. */
static json_t *mailboxes(rapport_host *h, char *err, size_t errlen)
{
    json_t *list = cm_config(h, "imap");
    if (!list)
        return json_array();
    if (!json_is_array(list) || json_array_size(list) > MAX_MAILBOXES) {
        json_decref(list);
        cm_fail(err, errlen, RAPPORT_EINVAL, "plugin.collaborative.imap: a list of at most %d "
                "mailboxes [{\"name\", \"url\", \"user\", \"password\", \"every\"}]",
                MAX_MAILBOXES);
        return NULL;
    }
    json_t *out = json_array(), *seen = json_object();
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) {
        json_t *m = check_entry(h, e, (int)i, seen, err, errlen);
        if (!m) {
            json_decref(out);
            out = NULL;
            break;
        }
        json_array_append_new(out, m);
    }
    json_decref(seen);
    json_decref(list);
    return out;
}

/* imap_every as milliseconds, 0 when not set, -1 when it does not read. */
static int64_t every_setting(rapport_host *h)
{
    char text[64];
    int64_t ms = 0;
    if (!cm_config_text(h, "imap_every", NULL, text, sizeof text))
        return 0;
    return cm_api->delay_parse(h, text, &ms) || ms < 500 ? -1 : ms;
}

/* ---- one poll of one mailbox, on the loop ------------------------------------------------- */

/* A poll of several mailboxes: who started it waits for none, each box reports when done. */
struct poll {
    int refs;       /* the starter's, and one per box in flight */
    bool log;       /* each box logs its outcome (a job, or a start that returned first) */
    json_t *reports; /* one object per box finished */
};

static void poll_unref(poll_t *p)
{
    if (--p->refs == 0) {
        json_decref(p->reports);
        free(p);
    }
}

static void free_got(box_t *b)
{
    for (size_t i = 0; i < b->ngot; i++)
        free(b->got[i].data);
    free(b->got);
    b->got = NULL;
    b->ngot = 0;
}

static void box_free(box_t *b)
{
    if (!b)
        return;
    if (b->curl)
        curl_easy_cleanup(b->curl);
    if (b->password)
        sodium_memzero(b->password, strlen(b->password));
    free(b->password);
    free(b->name);
    free(b->url);
    free(b->user);
    free(b->body.p);
    free(b->head.p);
    free(b->todo);
    free(b->mark);
    free_got(b);
    free(b);
}

/* Adds @p uid to @p r (under @p uidvalidity), forgetting the oldest when it is full. */
static void remember_refused(refused_t *r, const char *uidvalidity, uint32_t uid)
{
    if (strcmp(r->uidvalidity, uidvalidity)) {
        memset(r, 0, sizeof *r);
        snprintf(r->uidvalidity, sizeof r->uidvalidity, "%s", uidvalidity);
    }
    if (r->n == MAX_REFUSED)
        memmove(r->uid, r->uid + 1, --r->n * sizeof *r->uid);
    r->uid[r->n++] = uid;
}

/* Whether @p msg starts as a message does (a header field: a name of printable characters, then
 * ':') and has no Message-ID in its header block. */
static bool lacks_message_id(const char *msg, size_t len)
{
    size_t name = 0;
    while (name < len && msg[name] > ' ' && msg[name] < 0x7f && msg[name] != ':')
        name++;
    if (name == 0 || name == len || msg[name] != ':')
        return false; /* not a message: left for cm_mail_receive to refuse as it is */
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(msg + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - msg) : len;
        size_t ll = end - i - (end > i && msg[end - 1] == '\r');
        if (ll == 0)
            break; /* the blank line: the headers ended without one */
        if (ll > 11 && strncasecmp(msg + i, "Message-ID:", 11) == 0)
            return false;
        i = end + 1;
    }
    return true;
}

static void add_mark(box_t *b, uint32_t uid)
{
    uint32_t *m = realloc(b->mark, (b->nmark + 1) * sizeof *m);
    if (!m)
        return; /* not marked: fetched again next poll, and dropped as a duplicate */
    b->mark = m;
    b->mark[b->nmark++] = uid;
}

/* Hands one message to cm_mail_receive, on the loop, and counts what it did. */
static void receive_one(rapport_host *h, box_t *b, fetched_t *f)
{
    b->fetched++;
    char *msg = f->data, *with_id = NULL;
    size_t len = f->len;
    /* A message without a Message-ID gets one from its place on the server, so that fetching
     * it again (a crash before \Seen) finds it stored: nothing twice. */
    if (lacks_message_id(f->data, f->len)) {
        char head[200];
        int hn = snprintf(head, sizeof head, "Message-ID: <imap.%s.%s.%" PRIu32
                          "@rapport.invalid>\r\n", b->name,
                          b->uidvalidity[0] ? b->uidvalidity : "0", f->uid);
        if ((with_id = malloc((size_t)hn + f->len + 1))) {
            memcpy(with_id, head, (size_t)hn);
            memcpy(with_id + hn, f->data, f->len + 1);
            msg = with_id;
            len = (size_t)hn + f->len;
        }
    }
    json_t *report = NULL;
    char err[700];
    int rc = cm_mail_receive(h, msg, len, &report, err, sizeof err);
    free(with_id);
    if (rc == 0) {
        const char *dropped = json_string_value(json_object_get(report, "dropped"));
        if (dropped && strcmp(dropped, "duplicate") == 0)
            b->duplicates++;
        else if (dropped && strcmp(dropped, "bounce") == 0)
            b->bounces++;
        else
            b->stored++;
        if (json_object_get(report, "auto_reply"))
            b->auto_replies++;
        add_mark(b, f->uid);
    } else if (rc == RAPPORT_EINVAL) {
        /* Refused as it is (not a message, or a field past the store's limits): fetching it
         * again cannot help, and it is not handled, so it stays unseen for a person, and this
         * process skips it from now on (one warning, no place taken in every poll). */
        b->refused_n++;
        remember_refused(&b->refused, b->uidvalidity, f->uid);
        cm_api->log(h, RAPPORT_LOG_WARN, "imap %s: UID %" PRIu32 " refused (%s): left unseen on "
                    "the server, and not fetched again by this process", b->name, f->uid, err);
    } else {
        /* The store failed: the message stays unseen and comes again next poll. */
        b->store_failures++;
        b->stop = true;
        cm_api->log(h, RAPPORT_LOG_ERROR, "imap %s: UID %" PRIu32 " not stored (%s): left "
                    "unseen, fetched again next poll", b->name, f->uid, err);
    }
    json_decref(report);
}

static json_t *box_report(const box_t *b)
{
    json_t *r = json_pack("{s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i}", "mailbox", b->name,
                          "fetched", b->fetched, "stored", b->stored, "duplicates",
                          b->duplicates, "auto_replies", b->auto_replies, "bounces", b->bounces,
                          "refused", b->refused_n, "store_failures", b->store_failures,
                          "too_large", b->too_large, "unreadable", b->unreadable,
                          "marked_seen", b->marked);
    if (r && b->err[0])
        json_object_set_new(r, "error", json_string(b->err));
    return r;
}

/* The one-line summary of @p r: "fetched 3, stored 2, …". */
static void summary(json_t *r, char *out, size_t cap)
{
    snprintf(out, cap, "fetched %d, stored %d, duplicates %d, auto-replies %d, bounces %d, "
             "refused %d, store failures %d, too large %d, unreadable %d, marked seen %d",
             (int)json_integer_value(json_object_get(r, "fetched")),
             (int)json_integer_value(json_object_get(r, "stored")),
             (int)json_integer_value(json_object_get(r, "duplicates")),
             (int)json_integer_value(json_object_get(r, "auto_replies")),
             (int)json_integer_value(json_object_get(r, "bounces")),
             (int)json_integer_value(json_object_get(r, "refused")),
             (int)json_integer_value(json_object_get(r, "store_failures")),
             (int)json_integer_value(json_object_get(r, "too_large")),
             (int)json_integer_value(json_object_get(r, "unreadable")),
             (int)json_integer_value(json_object_get(r, "marked_seen")));
}

static void box_finish(rapport_host *h, box_t *b)
{
    json_t *r = box_report(b);
    poll_t *p = b->poll;
    /* A poll that found nothing says nothing: the job may tick every few seconds. */
    if (p->log && b->err[0] && !b->fetched) {
        cm_api->log(h, RAPPORT_LOG_WARN, "imap %s: failed: %s", b->name, b->err);
    } else if (p->log && (b->err[0] || b->fetched || b->unreadable)) {
        char line[400];
        summary(r, line, sizeof line);
        cm_api->log(h, b->err[0] ? RAPPORT_LOG_WARN : RAPPORT_LOG_INFO, "imap %s: %s%s%s",
                    b->name, line, b->err[0] ? "; failed: " : "", b->err);
    }
    if (p->log && b->too_large) {
        char uids[120] = "";
        for (int i = 0, n = 0; i < b->nlarge && n < (int)sizeof uids; i++)
            n += snprintf(uids + n, sizeof uids - (size_t)n, "%s%" PRIu32, i ? ", " : "",
                          b->large[i]);
        cm_api->log(h, RAPPORT_LOG_WARN, "imap %s: %d unseen messages larger than "
                    "max_message_bytes (%zu) left on the server (UIDs %s%s)", b->name,
                    b->too_large, b->max_bytes, uids, b->too_large > b->nlarge ? ", …" : "");
    }
    if (r)
        json_array_append_new(p->reports, r);
    if (b->slot) {
        b->slot->busy = false;
        b->slot->refused = b->refused;
    }
    box_free(b);
    poll_unref(p);
}

/* On the loop: the round's messages go in; another round marks them (and fetches more). */
static void round_done(rapport_host *h, const rapport_api *api, void *ud)
{
    box_t *b = ud;
    for (size_t i = 0; i < b->ngot; i++)
        receive_one(h, b, &b->got[i]);
    free_got(b);
    if (b->curl) {
        if (api->offload(h, cm_imap_round_work, round_done, b) == 0)
            return;
        snprintf(b->err, sizeof b->err, "%s: %s", b->shown, api->last_error(h));
        /* Rare (no worker to hand it to): LOGOUT then waits on the loop, once. */
    }
    box_finish(h, b);
}

static char *dup_of(json_t *m, const char *key)
{
    const char *s = json_string_value(json_object_get(m, key));
    return strdup(s ? s : "");
}

/* Starts the poll of mailbox @p m (checked); its outcome joins @p p's reports. */
static void box_start(rapport_host *h, poll_t *p, json_t *m, struct inflight *slot)
{
    box_t *b = calloc(1, sizeof *b);
    const char *name = json_string_value(json_object_get(m, "name"));
    if (b) {
        b->name = dup_of(m, "name");
        b->url = dup_of(m, "url");
        b->user = dup_of(m, "user");
        b->password = dup_of(m, "password");
    }
    if (!b || !b->name || !b->url || !b->user || !b->password) {
        box_free(b);
        json_array_append_new(p->reports, json_pack("{s:s,s:s}", "mailbox", name, "error",
                                                    "out of memory"));
        return;
    }
    snprintf(b->shown, sizeof b->shown, "%s", b->url);
    b->poll = p;
    b->slot = slot;
    b->timeout_ms = (long)cm_config_int(h, "imap_timeout_ms", 60000);
    if (b->timeout_ms < 1000)
        b->timeout_ms = 1000;
    int64_t max = cm_config_int(h, "max_message_bytes", 25 << 20);
    b->max_bytes = max > 0 ? (size_t)max : 25u << 20;
    b->max_n = (size_t)json_integer_value(json_object_get(m, "max_per_poll"));
    p->refs++;
    if (slot) {
        slot->busy = true;
        slot->last_ms = cm_api->now_ms(h);
        b->refused = slot->refused;
    }
    if (cm_api->offload(h, cm_imap_round_work, round_done, b)) {
        snprintf(b->err, sizeof b->err, "%s: %s", b->shown, cm_api->last_error(h));
        box_finish(h, b);
    }
}

/* ---- the doors ---------------------------------------------------------------------------- */

/*
 * Polls the mailboxes of @p list (checked), or only @p only. A mailbox whose last poll is in
 * flight is skipped, and from the job (@p job) one whose "every" has not passed. Returns one
 * object per mailbox (owned): its report when the poll finished before this returned (always
 * outside serve), else {mailbox, started: true} or {mailbox, busy: true}; NULL when out of
 * memory.
 */
static json_t *poll_mail(rapport_host *h, json_t *list, const char *only, bool job)
{
    poll_t *p = calloc(1, sizeof *p);
    json_t *started = json_array();
    if (!p || !started || !(p->reports = json_array())) {
        free(p);
        json_decref(started);
        return NULL;
    }
    p->refs = 1;
    p->log = job;
    int64_t now = cm_api->now_ms(h);
    size_t i;
    json_t *m;
    json_array_foreach(list, i, m) {
        const char *name = json_string_value(json_object_get(m, "name"));
        if (only && strcmp(name, only))
            continue;
        struct inflight *slot = slot_of(name);
        int64_t every = json_integer_value(json_object_get(m, "every_ms"));
        /* One poll of a mailbox at a time (a second would fetch the same messages). */
        if (slot && slot->busy && !job) {
            json_t *busy = json_pack("{s:s,s:b}", "mailbox", name, "busy", 1);
            json_array_append(started, busy);
            json_array_append_new(p->reports, busy);
        }
        /* A tick a little early still counts: cron and timers do not fire to the ms. */
        if (slot && (slot->busy || (job && every && slot->last_ms &&
                                    now - slot->last_ms < every - every / 10)))
            continue;
        json_array_append_new(started, json_pack("{s:s,s:b}", "mailbox", name, "started", 1));
        box_start(h, p, m, slot);
    }
    json_t *out;
    if (p->refs == 1) {
        /* Every poll ran to its end while this waited (outside serve). */
        out = json_incref(p->reports);
        json_decref(started);
    } else {
        p->log = true; /* they end after this returns: their outcome goes to the log */
        out = started;
    }
    poll_unref(p);
    return out;
}

/* The mailbox list for a door into *list (owned): checked, not empty, holding @p only when it
 * is given. */
static int mailboxes_for(rapport_host *h, const char *only, json_t **list, char *err,
                         size_t errlen)
{
    if (!(*list = mailboxes(h, err, errlen)))
        return RAPPORT_EINVAL;
    size_t i;
    json_t *m;
    json_array_foreach(*list, i, m) {
        if (!only || !strcmp(json_string_value(json_object_get(m, "name")), only))
            return 0;
    }
    bool none = json_array_size(*list) == 0;
    json_decref(*list);
    *list = NULL;
    if (none)
        return cm_fail(err, errlen, RAPPORT_ENOTFOUND, "plugin.collaborative.imap is not set: "
                       "`rapport config set plugin.collaborative.imap '[{\"name\": \"support\", "
                       "\"url\": \"imaps://mail.example.com/INBOX\", \"user\": \"…\", "
                       "\"password\": \"…\"}]'`");
    return cm_fail(err, errlen, RAPPORT_ENOTFOUND, "no mailbox named \"%s\" in "
                   "plugin.collaborative.imap", only);
}

/* Asks for the next tick imap_every from now, while mailboxes are set. */
static void chain(rapport_host *h, const rapport_api *api)
{
    int64_t ms = every_setting(h);
    if (ms < 0)
        api->log(h, RAPPORT_LOG_ERROR, "plugin.collaborative.imap_every: a delay of half a "
                 "second or more (\"2s\", \"30s\")");
    if (ms > 0 && api->schedule(h, POLL_JOB, "{}", ms, CHAIN_KEY))
        api->log(h, RAPPORT_LOG_WARN, "imap: the next poll could not be scheduled (the cron "
                 "starts the chain again): %s", api->last_error(h));
}

/* The job: starts the polls that are due and succeeds. A mailbox that fails is logged, not
 * retried as a job: its messages stay unseen, and the next tick comes anyway. */
static int poll_job(rapport_host *h, const rapport_api *api, const rapport_job *job, void *ud,
                    char *err, size_t errlen)
{
    (void)job;
    (void)ud;
    (void)err;
    (void)errlen;
    char why[700];
    json_t *list = mailboxes(h, why, sizeof why);
    if (!list) {
        api->log(h, RAPPORT_LOG_ERROR, "imap: %s", why);
        return 0;
    }
    /* No mailbox (the setting was removed): the chain stops; the cron stays, and ticks idle. */
    if (json_array_size(list) > 0) {
        json_decref(poll_mail(h, list, NULL, true));
        chain(h, api);
    }
    json_decref(list);
    return 0;
}

/* crm.collaborative.poll_mail([name]) -> [{mailbox, fetched, stored, …} | {mailbox, started}] */
static int lua_poll_mail(rapport_host *h, const rapport_api *api, const char *args,
                         char **result, void *ud, char *err, size_t errlen)
{
    (void)api;
    (void)ud;
    json_t *a = json_loads(args, 0, NULL);
    json_t *n = json_array_get(a, 0);
    if (n && !json_is_string(n) && !json_is_null(n)) {
        json_decref(a);
        return cm_fail(err, errlen, RAPPORT_EINVAL, "poll_mail([name]): name is a mailbox's "
                       "name in plugin.collaborative.imap");
    }
    const char *only = json_string_value(n);
    json_t *list = NULL, *out = NULL;
    int rc = cm_refuse_offline(h, "crm.collaborative.poll_mail", err, errlen);
    if (!rc)
        rc = mailboxes_for(h, only, &list, err, errlen);
    if (!rc && !(out = poll_mail(h, list, only, false)))
        rc = cm_fail(err, errlen, RAPPORT_ENOMEM, "out of memory");
    json_decref(list);
    json_decref(a);
    if (!rc)
        *result = cm_dump(out);
    return rc;
}

int cm_imap_command(rapport_host *h, int argc, char **argv)
{
    const char *only = NULL;
    bool as_json = false, bad = false;
    for (int i = 2; i < argc && !bad; i++) {
        if (strcmp(argv[i], "--json") == 0)
            as_json = true;
        else if (argv[i][0] != '-' && !only)
            only = argv[i];
        else
            bad = true;
    }
    if (bad) {
        fprintf(stderr, "usage: rapport mail poll [NAME] [--json]\n");
        return 2;
    }
    char err[700];
    json_t *list = NULL;
    if (cm_refuse_offline(h, "mail poll", err, sizeof err) ||
        mailboxes_for(h, only, &list, err, sizeof err)) {
        fprintf(stderr, "rapport: mail poll: %s\n", err);
        return 1;
    }
    json_t *out = poll_mail(h, list, only, false);
    json_decref(list);
    if (!out) {
        fprintf(stderr, "rapport: mail poll: out of memory\n");
        return 1;
    }
    int status = 0;
    size_t i;
    json_t *r;
    json_array_foreach(out, i, r) {
        const char *e = json_string_value(json_object_get(r, "error"));
        status = e ? 1 : status;
        if (as_json) {
            char *t = json_dumps(r, JSON_COMPACT);
            printf("%s\n", t ? t : "{}");
            free(t);
            continue;
        }
        char line[400];
        summary(r, line, sizeof line);
        printf("%s: %s\n", json_string_value(json_object_get(r, "mailbox")), line);
        if (e)
            fprintf(stderr, "rapport: mail poll: %s: %s\n",
                    json_string_value(json_object_get(r, "mailbox")), e);
    }
    json_decref(out);
    return status;
}

int cm_imap_init(rapport_host *h, char *err, size_t errlen)
{
    const rapport_api *api = cm_api;
    /* Here, on the one thread that starts the plugin, before any worker uses libcurl. */
    CURLcode cc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (cc != CURLE_OK)
        return cm_fail(err, errlen, RAPPORT_EIO, "libcurl did not start: %s",
                       curl_easy_strerror(cc));
    if (api->job(h, POLL_JOB, poll_job, NULL) ||
        api->lua_function(h, "poll_mail", lua_poll_mail, NULL))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "%s", api->last_error(h));
    /* A setting that is wrong is said now, naming the entry and field, not at the first tick. */
    json_t *list = mailboxes(h, err, errlen);
    if (!list)
        return RAPPORT_EINVAL;
    size_t n = json_array_size(list);
    json_decref(list);
    int64_t every = every_setting(h);
    if (every < 0)
        return cm_fail(err, errlen, RAPPORT_EINVAL, "plugin.collaborative.imap_every: a delay "
                       "of half a second or more (\"2s\", \"30s\")");
    if (n == 0)
        return 0;
    char cron[100];
    cm_config_text(h, "imap_cron", "* * * * *", cron, sizeof cron);
    if (api->every(h, POLL_JOB, cron, NULL, POLL_JOB, "{}"))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "plugin.collaborative.imap_cron: %s",
                       api->last_error(h));
    /* The chain starts with the engine; the cron starts it again should it ever break. */
    if (every > 0 && api->schedule(h, POLL_JOB, "{}", 0, CHAIN_KEY))
        return cm_fail(err, errlen, RAPPORT_EINVAL, "plugin.collaborative.imap_every: %s",
                       api->last_error(h));
    return 0;
}
