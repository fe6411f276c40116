/*
 * test_crash.c — crash safety of the store: a child process writes committed batches and
 * reports them through a pipe, the parent kills it with SIGKILL at a random moment, reopens the
 * database and checks that nothing reported was lost and nothing was written half.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "fts.h"
#include "internal.h"
#include "rapport/events.h"
#include "rapport/store.h"

/*
 * Durability under test. The store runs SQLite in WAL mode. With synchronous=NORMAL a commit
 * that has returned is in the WAL file, i.e. in the operating system's page cache: it survives
 * the death of the process (SIGKILL, a crash) but not a power loss or a kernel panic, which
 * only synchronous=FULL (an fsync per commit) covers. Killing the writer is exactly the
 * process-crash case, so every commit the child reported must be there under both settings.
 */

#define ENTITY "lead"
#define MAX_BATCH 50
#define ROUNDS_NORMAL 24
#define ROUNDS_FULL 3
/* Record tokens of round r are r * TOK_ROUND + k, so rounds never reuse a word or a code. */
#define TOK_ROUND 10000000u

static const rp_ctx_t crash_ctx = {.actor = "user:crash", .origin = "test"};

static const char *lead_spec =
    "{\"fields\": {"
    "\"name\": {\"type\": \"text\", \"required\": true, \"searchable\": true},"
    "\"code\": {\"type\": \"text\", \"unique\": true},"
    "\"amount\": {\"type\": \"integer\", \"indexed\": true},"
    "\"note\": {\"type\": \"text\"}}}";

/* ---- what the parent believes is in the database ---------------------------------------- */

/** The state of one record: everything its fields are derived from. */
typedef struct rec {
    int64_t version;
    int64_t amount;
    uint32_t name_tok, code_tok, note_tok;
    bool exists, deleted;
} rec_t;

/** Records by id (ids are small and dense, so an array indexed by id is enough). */
typedef struct model {
    rec_t *v;
    int64_t cap; /* Valid ids are 1 .. cap-1. */
} model_t;

static rec_t *model_at(model_t *m, int64_t id)
{
    if (id >= m->cap) {
        int64_t cap = m->cap ? m->cap : 1024;
        while (cap <= id)
            cap *= 2;
        rec_t *nv = realloc(m->v, (size_t)cap * sizeof *nv);
        if (!nv)
            return NULL;
        memset(nv + m->cap, 0, (size_t)(cap - m->cap) * sizeof *nv);
        m->v = nv;
        m->cap = cap;
    }
    return &m->v[id];
}

/* ---- the pipe protocol ------------------------------------------------------------------- */

enum { MSG_INTENT = 1, MSG_COMMIT = 2 };
enum { OP_CREATE = 1, OP_UPDATE = 2, OP_DELETE = 3 };

/** One write of a batch, carrying the whole state of the record after it. */
typedef struct op {
    int64_t id, version, amount;
    uint32_t kind, name_tok, code_tok, note_tok;
} op_t;

/** A message header; an intent is followed by nops op_t. */
typedef struct msg {
    uint32_t kind, batch, nops, pad;
} msg_t;

/* The child writes each message with one write(2); a pipe write of at most PIPE_BUF bytes is
 * atomic, so a kill never leaves half a message for the parent to misread. */
_Static_assert(sizeof(msg_t) + MAX_BATCH * sizeof(op_t) <= PIPE_BUF,
               "a batch message must fit in one atomic pipe write");

/* ---- small helpers ------------------------------------------------------------------------ */

static uint64_t rng_next(uint64_t *x)
{
    /* splitmix64: tiny, and good enough to pick kill points and operations. */
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fmt_name(uint32_t tok, char *out, size_t cap)
{
    /* Fixed width, so that no word is a prefix of another and prefix search finds one record. */
    snprintf(out, cap, "Lead q%010" PRIu32 " crash", tok);
}

static void fmt_code(uint32_t tok, char *out, size_t cap)
{
    snprintf(out, cap, "C%010" PRIu32, tok);
}

/* A note of 1..200 characters, so that rows vary in size and pages split and overflow. */
static void fmt_note(uint32_t tok, char *out, size_t cap)
{
    size_t n = 1 + tok % 200;
    if (n >= cap)
        n = cap - 1;
    memset(out, 'a' + (int)(tok % 26), n);
    out[n] = '\0';
}

/* ---- the child: writes until killed ------------------------------------------------------ */

/* The child is a copy of the test runner: a cmocka assertion there would longjmp into the copy
 * and run the rest of the suite twice. It reports trouble on stderr and exits instead. */
static _Noreturn void child_die(const char *what, const rp_error_t *err)
{
    fprintf(stderr, "crash child %d: %s: %s\n", (int)getpid(), what, err ? err->msg : "");
    _exit(3);
}

static void child_send(int fd, const void *buf, size_t len)
{
    ssize_t n = write(fd, buf, len);
    if (n != (ssize_t)len)
        child_die("cannot write to the pipe", NULL);
}

/* Picks a live record of the model for an update or delete, or returns 0. */
static int64_t child_pick(model_t *m, int64_t max_id, uint64_t *rng)
{
    for (int tries = 0; tries < 8 && max_id > 0; tries++) {
        int64_t id = 1 + (int64_t)(rng_next(rng) % (uint64_t)max_id);
        if (id < m->cap && m->v[id].exists && !m->v[id].deleted)
            return id;
    }
    return 0;
}

static void child_create(rp_store_t *s, model_t *m, uint32_t tok, op_t *op)
{
    char name[64], code[32], note[256];
    fmt_name(tok, name, sizeof name);
    fmt_code(tok, code, sizeof code);
    fmt_note(tok, note, sizeof note);
    json_t *f = json_pack("{s:s,s:s,s:I,s:s}", "name", name, "code", code, "amount",
                          (json_int_t)tok, "note", note);
    rp_error_t err = {0};
    int64_t id = 0;
    if (!f || rp_store_create(s, &crash_ctx, ENTITY, f, &id, &err) != 0)
        child_die("create", &err);
    json_decref(f);
    rec_t *r = model_at(m, id);
    if (!r)
        child_die("out of memory", NULL);
    *r = (rec_t){.version = 1, .amount = tok, .name_tok = tok, .code_tok = tok,
                 .note_tok = tok, .exists = true};
    *op = (op_t){.kind = OP_CREATE, .id = id, .version = 1, .amount = tok, .name_tok = tok,
                 .code_tok = tok, .note_tok = tok};
}

static void child_update(rp_store_t *s, model_t *m, int64_t id, uint32_t tok, uint64_t *rng,
                         op_t *op)
{
    rec_t *r = &m->v[id];
    /* The amount always changes, so the update is never a no-op that writes no event. */
    json_t *patch = json_pack("{s:I}", "amount", (json_int_t)tok);
    r->amount = tok;
    uint64_t x = rng_next(rng);
    if (x % 3 == 0) {
        char name[64];
        fmt_name(tok, name, sizeof name);
        json_object_set_new(patch, "name", json_string(name));
        r->name_tok = tok;
    }
    if ((x >> 8) % 4 == 0) {
        char code[32];
        fmt_code(tok, code, sizeof code);
        json_object_set_new(patch, "code", json_string(code));
        r->code_tok = tok;
    }
    rp_error_t err = {0};
    int64_t version = 0;
    /* Checking the version makes a lost earlier write show up here as a conflict too. */
    if (rp_store_update(s, &crash_ctx, ENTITY, id, patch, r->version, &version, &err) != 0)
        child_die("update", &err);
    json_decref(patch);
    if (version != r->version + 1)
        child_die("update did not raise the version by one", NULL);
    r->version = version;
    *op = (op_t){.kind = OP_UPDATE, .id = id, .version = version, .amount = r->amount,
                 .name_tok = r->name_tok, .code_tok = r->code_tok, .note_tok = r->note_tok};
}

static void child_delete(rp_store_t *s, model_t *m, int64_t id, op_t *op)
{
    rec_t *r = &m->v[id];
    rp_error_t err = {0};
    if (rp_store_delete(s, &crash_ctx, ENTITY, id, &err) != 0)
        child_die("delete", &err);
    r->version++;
    r->deleted = true;
    *op = (op_t){.kind = OP_DELETE, .id = id, .version = r->version, .amount = r->amount,
                 .name_tok = r->name_tok, .code_tok = r->code_tok, .note_tok = r->note_tok};
}

/*
 * Runs in the forked child with its own connection (a SQLite connection must never cross a
 * fork). Each batch is announced (an "intent" listing its writes) before COMMIT and confirmed
 * after it, so the parent knows every batch that may be on disk: the confirmed ones must be,
 * and the one announced but unconfirmed must be there entirely or not at all.
 */
static _Noreturn void child_run(const char *path, bool sync_full, model_t *m, int round,
                                uint64_t seed, int fd)
{
    rp_store_opts_t o = {.sync_full = sync_full};
    rp_store_t *s = NULL;
    rp_error_t err = {0};
    if (rp_store_open(path, &o, &s, &err) != 0)
        child_die("open", &err);
    uint64_t rng = seed ^ 0xC0FFEEULL;
    uint32_t tok = (uint32_t)round * TOK_ROUND;
    int64_t max_id = m->cap - 1;
    struct {
        msg_t h;
        op_t ops[MAX_BATCH];
    } buf;
    for (uint32_t batch = 1;; batch++) {
        uint32_t n = 1 + (uint32_t)(rng_next(&rng) % MAX_BATCH);
        if (rp_store_begin(s, &err) != 0)
            child_die("begin", &err);
        for (uint32_t i = 0; i < n; i++) {
            uint64_t what = rng_next(&rng) % 100;
            int64_t id = what < 70 ? 0 : child_pick(m, max_id, &rng);
            tok++;
            if (id == 0) {
                child_create(s, m, tok, &buf.ops[i]);
                if (buf.ops[i].id > max_id)
                    max_id = buf.ops[i].id;
            } else if (what < 90) {
                child_update(s, m, id, tok, &rng, &buf.ops[i]);
            } else {
                child_delete(s, m, id, &buf.ops[i]);
            }
        }
        buf.h = (msg_t){.kind = MSG_INTENT, .batch = batch, .nops = n};
        child_send(fd, &buf, sizeof buf.h + n * sizeof buf.ops[0]);
        if (rp_store_commit(s, &err) != 0)
            child_die("commit", &err);
        msg_t done = {.kind = MSG_COMMIT, .batch = batch};
        child_send(fd, &done, sizeof done);
    }
}

/* ---- the parent: kill, read the reports ---------------------------------------------------- */

typedef struct bytes {
    char *p;
    size_t len, cap;
} bytes_t;

/* Reads what is available on @p fd; returns false at end of file. */
static bool read_some(int fd, bytes_t *b)
{
    if (b->cap - b->len < 65536) {
        b->cap = b->cap ? b->cap * 2 : 1 << 20;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    ssize_t n = read(fd, b->p + b->len, b->cap - b->len);
    if (n < 0 && errno == EINTR)
        return true;
    if (n < 0)
        fail_msg("reading the child's pipe: %s", strerror(errno));
    b->len += (size_t)n;
    return n > 0;
}

/* Drains the pipe for @p delay_ms (so the child never blocks on a full pipe), kills the child,
 * then reads what it wrote before it died. */
static void run_and_kill(pid_t pid, int fd, int delay_ms, bytes_t *b)
{
    int64_t deadline = mono_ms() + delay_ms;
    bool open = true;
    for (int64_t left; open && (left = deadline - mono_ms()) > 0;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r > 0)
            open = read_some(fd, b);
    }
    /* A child that closed its end before the deadline has died by itself; waitpid says how. */
    if (open)
        kill(pid, SIGKILL);
    while (open && read_some(fd, b))
        ;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
        fail_msg("the writer stopped by itself before it was killed (status 0x%x); its error is "
                 "above",
                 status);
}

/** A batch announced but not confirmed: it may or may not have committed. */
typedef struct doubt {
    uint32_t batch, nops;
    op_t ops[MAX_BATCH];
} doubt_t;

static void apply_ops(model_t *m, const op_t *ops, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        rec_t *r = model_at(m, ops[i].id);
        assert_non_null(r);
        *r = (rec_t){.version = ops[i].version, .amount = ops[i].amount,
                     .name_tok = ops[i].name_tok, .code_tok = ops[i].code_tok,
                     .note_tok = ops[i].note_tok, .exists = true,
                     .deleted = r->deleted || ops[i].kind == OP_DELETE};
    }
}

/* Folds the confirmed batches of @p b into @p m; leaves the unconfirmed one in @p d. Returns the
 * number of confirmed batches. */
static int parse_reports(const bytes_t *b, model_t *m, doubt_t *d)
{
    size_t at = 0;
    int confirmed = 0;
    d->nops = 0;
    d->batch = 0;
    while (at < b->len) {
        msg_t h;
        if (b->len - at < sizeof h)
            fail_msg("a torn message at byte %zu of the pipe", at);
        memcpy(&h, b->p + at, sizeof h);
        at += sizeof h;
        if (h.kind == MSG_INTENT) {
            size_t need = h.nops * sizeof(op_t);
            if (h.nops == 0 || h.nops > MAX_BATCH || b->len - at < need)
                fail_msg("a torn or malformed intent at byte %zu of the pipe", at);
            d->batch = h.batch;
            d->nops = h.nops;
            memcpy(d->ops, b->p + at, need);
            at += need;
        } else if (h.kind == MSG_COMMIT && h.batch == d->batch && d->nops) {
            apply_ops(m, d->ops, d->nops);
            d->nops = 0;
            confirmed++;
        } else {
            fail_msg("unexpected message %u (batch %u) from the child", h.kind, h.batch);
        }
    }
    return confirmed;
}

/* ---- checks after the crash -------------------------------------------------------------- */

/** What the previous round saw of the event log, so this one can check nothing vanished. */
typedef struct logmark {
    int64_t last_seq;
    int64_t count;
} logmark_t;

/* The version of record @p id on disk, 0 when there is no such row. */
static int64_t disk_version(rp_store_t *s, int64_t id)
{
    json_t *r = NULL;
    rp_error_t err = {0};
    int rc = rp_store_get(s, ENTITY, id, &r, &err);
    if (rc != 0 && rc != RP_ENOTFOUND)
        fail_msg("get %s %" PRId64 ": %s", ENTITY, id, err.msg);
    int64_t v = r ? json_integer_value(json_object_get(r, "version")) : 0;
    json_decref(r);
    return v;
}

/* The version record @p id has after the batch @p d, which touches it. */
static int64_t doubt_version(const doubt_t *d, int64_t id)
{
    int64_t v = 0;
    for (uint32_t i = 0; i < d->nops; i++)
        if (d->ops[i].id == id)
            v = d->ops[i].version;
    return v;
}

/*
 * Settles the unconfirmed batch: its COMMIT may or may not have reached the WAL, but it must
 * have reached it whole. Its first record says which; every record it touches must then agree
 * before the batch is folded into the model.
 */
static bool settle_doubt(rp_store_t *s, model_t *m, const doubt_t *d)
{
    if (!d->nops)
        return false;
    bool applied = disk_version(s, d->ops[0].id) == doubt_version(d, d->ops[0].id);
    for (uint32_t i = 0; i < d->nops; i++) {
        int64_t id = d->ops[i].id;
        int64_t before = id < m->cap && m->v[id].exists ? m->v[id].version : 0;
        int64_t want = applied ? doubt_version(d, id) : before, got = disk_version(s, id);
        if (got != want)
            fail_msg("batch %u (unconfirmed) is on disk only in part: %s %" PRId64 " has version"
                     " %" PRId64 " where %s %" PRId64 " (first write %s, %s %" PRId64 ")",
                     d->batch, ENTITY, id, got, applied ? "the batch gives" : "before it was",
                     want, applied ? "present" : "absent", ENTITY, d->ops[0].id);
    }
    if (applied)
        apply_ops(m, d->ops, d->nops);
    return applied;
}

static void check_string(json_t *rec, const char *field, const char *want, int64_t id)
{
    const char *got = json_string_value(json_object_get(rec, field));
    if (!got || strcmp(got, want) != 0)
        fail_msg("%s %" PRId64 ": %s is \"%s\", reported \"%s\"", ENTITY, id, field,
                 got ? got : "(null)", want);
}

/* Compares one row with the model. */
static void check_row(model_t *m, json_t *row)
{
    int64_t id = json_integer_value(json_object_get(row, "id"));
    if (id <= 0 || id >= m->cap || !m->v[id].exists)
        fail_msg("%s %" PRId64 " is in the table but no batch reported it", ENTITY, id);
    rec_t *r = &m->v[id];
    char buf[256];
    int64_t version = json_integer_value(json_object_get(row, "version"));
    if (version != r->version)
        fail_msg("%s %" PRId64 " is at version %" PRId64 " on disk; the batches reported %" PRId64
                 " (a write was lost, or one that no batch announced is there)",
                 ENTITY, id, version, r->version);
    fmt_name(r->name_tok, buf, sizeof buf);
    check_string(row, "name", buf, id);
    fmt_code(r->code_tok, buf, sizeof buf);
    check_string(row, "code", buf, id);
    fmt_note(r->note_tok, buf, sizeof buf);
    check_string(row, "note", buf, id);
    assert_int_equal(json_integer_value(json_object_get(row, "amount")), r->amount);
    bool deleted = !json_is_null(json_object_get(row, "deleted_at"));
    if (deleted != r->deleted)
        fail_msg("%s %" PRId64 " is %sdeleted, reported %sdeleted", ENTITY, id,
                 deleted ? "" : "not ", r->deleted ? "" : "not ");
}

/* Walks the whole table and compares it with the model, both ways. Returns the row count. */
static int64_t check_rows(rp_store_t *s, model_t *m, int64_t *versions)
{
    int64_t rows = 0, expected = 0;
    *versions = 0;
    char *after = NULL;
    do {
        rp_query_t q = {.entity = ENTITY, .order = "id", .limit = 10000, .after = after,
                        .with_deleted = true};
        json_t *page = NULL;
        char *next = NULL;
        rp_error_t err = {0};
        if (rp_store_find(s, &q, &page, &next, &err) != 0)
            fail_msg("find: %s", err.msg);
        free(after);
        after = next;
        size_t i;
        json_t *row;
        json_array_foreach(page, i, row)
        {
            check_row(m, row);
            *versions += json_integer_value(json_object_get(row, "version"));
            rows++;
        }
        json_decref(page);
    } while (after);
    for (int64_t id = 1; id < m->cap; id++)
        expected += m->v[id].exists;
    if (rows != expected)
        fail_msg("the table has %" PRId64 " rows; the batches reported %" PRId64, rows,
                 expected);
    return rows;
}

/*
 * Every write of a record adds one to its version and appends one event in the same
 * transaction, so a record's events are exactly: created, then (version - 1) more, and a
 * deleted record ends with its "deleted" event. A change without its event, or an event of a
 * change that was rolled back, breaks the count.
 */
static void check_record_events(rp_store_t *s, int64_t id, const rec_t *r)
{
    rp_event_t ev[32];
    int64_t after = 0, n = 0;
    char want[64];
    for (;;) {
        rp_error_t err = {0};
        int got = rp_events_for_record(s, ENTITY, id, after, ev, 32, &err);
        if (got < 0)
            fail_msg("events of %s %" PRId64 ": %s", ENTITY, id, err.msg);
        for (int i = 0; i < got; i++, n++) {
            const char *kind = n == 0                                ? "created"
                               : n == r->version - 1 && r->deleted ? "deleted"
                                                                     : "updated";
            snprintf(want, sizeof want, "%s.%s", ENTITY, kind);
            if (ev[i].seq <= after)
                fail_msg("events of %s %" PRId64 " out of order", ENTITY, id);
            if (n < r->version && strcmp(ev[i].type, want) != 0)
                fail_msg("event %d of %s %" PRId64 " is %s, expected %s", (int)n, ENTITY, id,
                         ev[i].type, want);
            after = ev[i].seq;
            rp_event_clear(&ev[i]);
        }
        if (got < 32)
            break;
    }
    if (n != r->version)
        fail_msg("%s %" PRId64 " is at version %" PRId64 " but has %" PRId64 " events", ENTITY,
                 id, r->version, n);
}

/* Walks the whole log: strictly increasing seqs, no event about a missing record, one
 * "created" per row, and nothing from an earlier round gone. */
static void check_log(rp_store_t *s, model_t *m, int64_t rows, int64_t versions, logmark_t *mark)
{
    rp_event_t ev[512];
    int64_t after = 0, created = 0, about = 0, total = 0, before_mark = 0;
    for (;;) {
        rp_error_t err = {0};
        int got = rp_events_list(s, after, false, ev, 512, &err);
        if (got < 0)
            fail_msg("events: %s", err.msg);
        for (int i = 0; i < got; i++) {
            rp_event_t *e = &ev[i];
            if (e->seq <= after)
                fail_msg("event seq %" PRId64 " follows %" PRId64, e->seq, after);
            after = e->seq;
            total++;
            before_mark += e->seq <= mark->last_seq;
            if (e->record_id != 0) {
                if (strcmp(e->entity, ENTITY) != 0 || e->record_id >= m->cap ||
                    !m->v[e->record_id].exists)
                    fail_msg("event %" PRId64 " (%s) is about %s %" PRId64 ", which does not "
                             "exist",
                             e->seq, e->type, e->entity, e->record_id);
                about++;
                size_t tl = strlen(e->type);
                created += tl > 8 && strcmp(e->type + tl - 8, ".created") == 0;
            } else if (strncmp(e->type, "schema.", 7) != 0) {
                fail_msg("event %" PRId64 " (%s) is about no record", e->seq, e->type);
            }
            rp_event_clear(e);
        }
        if (got < 512)
            break;
    }
    if (created != rows)
        fail_msg("%" PRId64 " *.created events for %" PRId64 " rows", created, rows);
    if (about != versions)
        fail_msg("%" PRId64 " record events for a total of %" PRId64 " versions", about,
                 versions);
    if (before_mark != mark->count)
        fail_msg("the log had %" PRId64 " events up to seq %" PRId64 " before; now %" PRId64,
                 mark->count, mark->last_seq, before_mark);
    assert_int_equal(rp_events_last_seq(s), after);
    mark->last_seq = after;
    mark->count = total;
}

/* Search finds a sample of live records by their word, and no longer finds deleted ones. */
static void check_search(rp_store_t *s, model_t *m, uint64_t *rng)
{
    int live = 0, dead = 0;
    for (int tries = 0; tries < 400 && (live < 16 || dead < 4) && m->cap > 1; tries++) {
        int64_t id = 1 + (int64_t)(rng_next(rng) % (uint64_t)(m->cap - 1));
        rec_t *r = &m->v[id];
        if (!r->exists || (r->deleted ? dead >= 4 : live >= 16))
            continue;
        char word[32];
        snprintf(word, sizeof word, "q%010" PRIu32, r->name_tok);
        json_t *hits = NULL;
        rp_error_t err = {0};
        if (rp_store_search(s, word, ENTITY, 10, &hits, &err) != 0)
            fail_msg("search %s: %s", word, err.msg);
        bool found = false;
        size_t i;
        json_t *h;
        json_array_foreach(hits, i, h) found |= json_integer_value(json_object_get(h, "id")) == id;
        json_decref(hits);
        if (found == r->deleted)
            fail_msg("search for \"%s\" %s %s %" PRId64 " (%s)", word,
                     found ? "finds" : "does not find", ENTITY, id,
                     r->deleted ? "deleted" : "live");
        *(r->deleted ? &dead : &live) += 1;
    }
}

static sqlite3_stmt *raw_prepare(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("prepare %s: %s", sql, sqlite3_errmsg(db));
    return st;
}

/*
 * Below the API, on a raw connection: SQLite's own integrity check, FTS5's check that its index
 * matches its content, and that the search index holds exactly the live records with their
 * current names (the index is written in the record's transaction, so it must agree).
 */
static void check_raw(const char *path, model_t *m)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        fail_msg("raw open %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
    assert_int_equal(rp__fts_register(db), SQLITE_OK);

    sqlite3_stmt *st = raw_prepare(db, "PRAGMA integrity_check");
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const char *ok = (const char *)sqlite3_column_text(st, 0);
    if (!ok || strcmp(ok, "ok") != 0)
        fail_msg("integrity_check: %s", ok ? ok : "(null)");
    sqlite3_finalize(st);

    char *msg = NULL;
    if (sqlite3_exec(db, "INSERT INTO rp_search(rp_search) VALUES('integrity-check')", NULL,
                     NULL, &msg) != SQLITE_OK)
        fail_msg("search index integrity-check: %s", msg ? msg : sqlite3_errmsg(db));

    st = raw_prepare(db, "SELECT no FROM rp_entities WHERE name = '" ENTITY "'");
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t no = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);

    int64_t lo = no << RP__FTS_SHIFT, hi = ((no + 1) << RP__FTS_SHIFT) - 1, indexed = 0;
    st = raw_prepare(db, "SELECT rowid, body FROM rp_search WHERE rowid BETWEEN ? AND ?");
    sqlite3_bind_int64(st, 1, lo);
    sqlite3_bind_int64(st, 2, hi);
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0) - lo;
        const char *body = (const char *)sqlite3_column_text(st, 1);
        char want[64];
        if (id <= 0 || id >= m->cap || !m->v[id].exists || m->v[id].deleted)
            fail_msg("the search index holds %s %" PRId64 ", which is not a live record",
                     ENTITY, id);
        fmt_name(m->v[id].name_tok, want, sizeof want);
        if (!body || strcmp(body, want) != 0)
            fail_msg("the search index has \"%s\" for %s %" PRId64 ", the record \"%s\"",
                     body ? body : "(null)", ENTITY, id, want);
        indexed++;
    }
    sqlite3_finalize(st);
    int64_t live = 0;
    for (int64_t id = 1; id < m->cap; id++)
        live += m->v[id].exists && !m->v[id].deleted;
    if (indexed != live)
        fail_msg("the search index holds %" PRId64 " records; %" PRId64 " are live", indexed,
                 live);
    sqlite3_close(db);
}

/* Everything after a crash: reopen (which recovers the WAL), settle, compare. */
static void check_after_crash(const char *path, model_t *m, const doubt_t *d, logmark_t *mark,
                              uint64_t seed, int64_t *rows_out, bool *doubt_applied)
{
    rp_store_t *s = NULL;
    rp_error_t err = {0};
    rp_store_opts_t o = {.must_exist = true};
    if (rp_store_open(path, &o, &s, &err) != 0)
        fail_msg("reopen after the crash: %s", err.msg);
    assert_true(rp_store_has_entity(s, ENTITY));
    *doubt_applied = settle_doubt(s, m, d);
    int64_t versions = 0;
    int64_t rows = check_rows(s, m, &versions);
    for (int64_t id = 1; id < m->cap; id++)
        if (m->v[id].exists)
            check_record_events(s, id, &m->v[id]);
    check_log(s, m, rows, versions, mark);
    uint64_t rng = seed ^ 0x5EA4C4ULL;
    check_search(s, m, &rng);
    rp_store_close(s);
    check_raw(path, m);
    *rows_out = rows;
}

/* ---- the rounds --------------------------------------------------------------------------- */

typedef struct crash_dir {
    char dir[64];
    char db[96];
} crash_dir_t;

static int dir_setup(void **state)
{
    crash_dir_t *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    snprintf(c->dir, sizeof c->dir, "/tmp/rp_crash_XXXXXX");
    if (!mkdtemp(c->dir)) {
        free(c);
        return -1;
    }
    snprintf(c->db, sizeof c->db, "%s/crash.db", c->dir);
    *state = c;
    return 0;
}

static int dir_teardown(void **state)
{
    crash_dir_t *c = *state;
    /* RP_CRASH_KEEP=1 leaves the database behind for a post-mortem. */
    const char *keep = getenv("RP_CRASH_KEEP");
    if (keep && *keep && strcmp(keep, "0") != 0) {
        fprintf(stderr, "crash: database kept at %s\n", c->db);
    } else {
        static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
        for (size_t i = 0; i < sizeof suffix / sizeof *suffix; i++) {
            char p[128];
            snprintf(p, sizeof p, "%s%s", c->db, suffix[i]);
            unlink(p);
        }
        rmdir(c->dir);
    }
    free(c);
    return 0;
}

/* The base of the per-round seeds; RP_CRASH_SEED replays a run's operations and delays (not
 * its exact kill points, which also depend on how fast the machine is). */
static uint64_t base_seed(void)
{
    const char *env = getenv("RP_CRASH_SEED");
    return env && *env ? strtoull(env, NULL, 0) : 0x52415050ULL;
}

static void crash_rounds(crash_dir_t *c, bool sync_full, int rounds)
{
    rp_store_opts_t o = {.sync_full = sync_full};
    rp_store_t *s = NULL;
    rp_error_t err = {0};
    if (rp_store_open(c->db, &o, &s, &err) != 0)
        fail_msg("open %s: %s", c->db, err.msg);
    json_t *spec = json_loads(lead_spec, 0, NULL);
    assert_non_null(spec);
    if (rp_store_define(s, &crash_ctx, ENTITY, spec, "test", &err) != 0)
        fail_msg("define: %s", err.msg);
    json_decref(spec);
    /* The child must open its own connection: close ours before forking. */
    rp_store_close(s);

    model_t m = {0};
    logmark_t mark = {0};
    uint64_t base = base_seed() + (sync_full ? 1000 : 0);
    int64_t started = mono_ms();
    for (int round = 1; round <= rounds; round++) {
        uint64_t seed = base + (uint64_t)round, rng = seed;
        /* Every fourth round kills at once: during the child's open and WAL recovery, or its
         * first batch. */
        int delay = round % 4 == 1 ? (int)(rng_next(&rng) % 3)
                                   : 5 + (int)(rng_next(&rng) % 76);
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child_run(c->db, sync_full, &m, round, seed, fds[1]);
        }
        close(fds[1]);
        bytes_t b = {0};
        run_and_kill(pid, fds[0], delay, &b);
        close(fds[0]);

        doubt_t d;
        int confirmed = parse_reports(&b, &m, &d);
        free(b.p);
        int64_t rows = 0;
        bool applied = false;
        check_after_crash(c->db, &m, &d, &mark, seed, &rows, &applied);
        printf("crash %s round %2d seed 0x%" PRIx64 " kill after %2d ms: %4d batches confirmed,"
               " last batch %s, %" PRId64 " rows, %" PRId64 " events\n",
               sync_full ? "full  " : "normal", round, seed, delay, confirmed,
               d.nops ? (applied ? "unconfirmed but committed" : "unconfirmed, not committed")
               : confirmed ? "confirmed"
                           : "none reported",
               rows, mark.count);
    }
    printf("crash %s: %d rounds in %" PRId64 " ms\n", sync_full ? "full" : "normal", rounds,
           mono_ms() - started);
    free(m.v);
}

static void test_crash_normal(void **state)
{
    crash_rounds(*state, false, ROUNDS_NORMAL);
}

static void test_crash_full(void **state)
{
    crash_rounds(*state, true, ROUNDS_FULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crash_normal, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_crash_full, dir_setup, dir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
