/*
 * fts_queue.c — the search index's writes, held until the outermost commit of the transaction
 * that made them, or until something reads or writes the index directly.
 *
 * Why: FTS5 writes the terms it holds in memory out to a new segment of the index at every
 * SAVEPOINT and RELEASE (its xSavepoint and xRelease), and the HTTP server's group commit gives
 * each request a savepoint of its own: each created record cost a segment of its own, and the
 * merges after (16 % of a POST's CPU in perf). Held here, a group's writes reach FTS5 at once,
 * just before its COMMIT, where no savepoint is open.
 *
 * A write is kept with its level (the transaction depth that made it). A commit of a savepoint
 * hands its writes to the level below; a rollback drops those of the levels it undoes. A flush
 * (the outermost commit, a read of the index, or too many writes held) runs the held writes in
 * their order at the present depth. One made at that depth is done with; one made at a lower
 * level is kept, marked with the depth it ran at: when that savepoint is rolled back, its
 * effect on the index is undone with it, and the write is held again, so the index always ends
 * as if every write had run where it was made.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Writes held at most before they are run at the present depth (a bulk write of a million
 * records holds no more than this many texts). */
#define RP__FTS_HOLD_MAX 1024

struct rp__fts_op {
    int64_t rowid;
    char *body; /* NULL: remove the row */
    int len;
    int level; /* the depth that made it */
    int ran;   /* 0 held; else the depth it ran at (> level: it can still be undone) */
};

/* Drops the ops that are done with (ran where they were made), keeping the order. */
static void compact(rp_store_t *s)
{
    size_t k = 0;
    for (size_t i = 0; i < s->nfq; i++) {
        rp__fts_op_t *op = &s->fq[i];
        if (op->level <= 0) {
            free(op->body);
            continue;
        }
        s->fq[k++] = *op;
    }
    s->nfq = k;
}

/* Runs @p op at the present depth. */
static int run(rp_store_t *s, const rp__fts_op_t *op, rp_error_t *err)
{
    rp_db_stmt_t *st = rp__stmt(s, op->body ? "INSERT INTO rp_search(rowid, body) VALUES(?, ?)"
                                            : "DELETE FROM rp_search WHERE rowid = ?",
                                err);
    if (!st)
        return err ? err->code : RP_EIO;
    rp_db_bind_int(st, 1, op->rowid);
    if (op->body)
        rp_db_bind_text(st, 2, op->body, op->len);
    int rc = rp_db_step(st);
    rp_db_reset(st);
    if (rc == RP_DB_DONE)
        return 0;
    return rp__dberr(s, rc, op->body ? "cannot index the record for search"
                                     : "cannot update the search index", err);
}

int rp__fts_flush(rp_store_t *s, rp_error_t *err)
{
    if (!s->fq_held)
        return 0;
    int depth = rp_db_depth(s->db), rc = 0;
    for (size_t i = 0; i < s->nfq && !rc; i++) {
        rp__fts_op_t *op = &s->fq[i];
        if (op->ran)
            continue;
        if ((rc = run(s, op, err)))
            break;
        s->fq_held--;
        op->ran = depth;
        if (depth > s->fq_top)
            s->fq_top = depth;
        if (op->ran <= op->level)
            op->level = 0; /* ran where it was made: done with */
    }
    compact(s);
    return rc;
}

int rp__fts_hold(rp_store_t *s, int64_t rowid, char *body, int len, rp_error_t *err)
{
    int depth = rp_db_depth(s->db);
    rp__fts_op_t op = {.rowid = rowid, .body = body, .len = len, .level = depth};
    if (depth == 0) {
        /* No transaction: nothing to hold it for. */
        int rc = run(s, &op, err);
        free(body);
        return rc;
    }
    if (s->nfq == s->capfq) {
        size_t cap = s->capfq ? s->capfq * 2 : 64;
        rp__fts_op_t *n = realloc(s->fq, cap * sizeof *n);
        if (!n) {
            free(body);
            return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        }
        s->fq = n;
        s->capfq = cap;
    }
    s->fq[s->nfq++] = op;
    s->fq_held++;
    if (depth > s->fq_top)
        s->fq_top = depth;
    return s->fq_held > RP__FTS_HOLD_MAX ? rp__fts_flush(s, err) : 0;
}

/* Whether any op was made or ran deeper than @p depth: else a commit or rollback to it leaves
 * the ops as they are, and every savepoint of a bulk write costs no walk over them. */
static bool deeper(rp_store_t *s, int depth)
{
    if (s->fq_top <= depth)
        return false;
    s->fq_top = depth;
    return true;
}

void rp__fts_committed(rp_store_t *s)
{
    int depth = rp_db_depth(s->db);
    if (!deeper(s, depth))
        return;
    for (size_t i = 0; i < s->nfq; i++) {
        rp__fts_op_t *op = &s->fq[i];
        if (op->level > depth)
            op->level = depth;
        if (op->ran > depth)
            op->ran = depth;
        if (op->ran && op->ran <= op->level)
            op->level = 0;
    }
    compact(s);
}

void rp__fts_rolled_back(rp_store_t *s)
{
    int depth = rp_db_depth(s->db);
    if (!deeper(s, depth))
        return;
    for (size_t i = 0; i < s->nfq; i++) {
        rp__fts_op_t *op = &s->fq[i];
        if (op->level > depth) {
            if (!op->ran)
                s->fq_held--;
            op->level = 0; /* its own level is undone */
        } else if (op->ran > depth) {
            op->ran = 0; /* what it did to the index is undone: hold it again */
            s->fq_held++;
        }
    }
    compact(s);
}

void rp__fts_hold_free(rp_store_t *s)
{
    for (size_t i = 0; i < s->nfq; i++)
        free(s->fq[i].body);
    free(s->fq);
    s->fq = NULL;
    s->nfq = s->capfq = s->fq_held = 0;
    s->fq_top = 0;
}
