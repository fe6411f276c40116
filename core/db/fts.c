/*
 * fts.c — the "rapport" FTS5 tokenizer: unicode61 splits the words, rp_text_fold_cp() folds
 * each one, and the original offsets go on to FTS5 so snippets show the text as written.
 */
#include "fts.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "rapport/text.h"

/*
 * The arguments for the wrapped unicode61. Marks (Mn, Mc) are token characters so that harakat
 * and combining accents stay inside their word for rp_text_fold_cp() to drop; so are the
 * invisible format characters it drops, since a ZWNJ inside a Persian word (می‌خواهم) or a
 * soft hyphen inside a name must not split it. The tokenchars bytes are, in UTF-8: U+00AD soft
 * hyphen, U+200C ZWNJ, U+200D ZWJ, U+200E LRM, U+200F RLM, U+202A..U+202E bidi embeddings and
 * overrides, U+2060 word joiner, U+2066..U+2069 bidi isolates, U+FEFF BOM.
 */
/* clang-format off */
static const char *const inner_args[] = {
    "remove_diacritics", "2",
    "categories", "L* N* Co Mn Mc",
    "tokenchars",
    "\xC2\xAD"
    "\xE2\x80\x8C\xE2\x80\x8D\xE2\x80\x8E\xE2\x80\x8F"
    "\xE2\x80\xAA\xE2\x80\xAB\xE2\x80\xAC\xE2\x80\xAD\xE2\x80\xAE"
    "\xE2\x81\xA0"
    "\xE2\x81\xA6\xE2\x81\xA7\xE2\x81\xA8\xE2\x81\xA9"
    "\xEF\xBB\xBF",
};
/* clang-format on */

/* Long enough for nearly every word; longer tokens are folded into a heap buffer. */
#define TOKEN_STACK 256

/* One "rapport" tokenizer instance: the unicode61 instance it wraps and that one's methods. */
typedef struct fts_tokenizer {
    fts5_tokenizer inner_api;
    Fts5Tokenizer *inner;
} fts_tokenizer_t;

/* What the token callback needs to hand folded tokens on to FTS5. */
typedef struct fts_call {
    void *ctx;
    int (*token)(void *ctx, int tflags, const char *tok, int ntok, int start, int end);
} fts_call_t;

static int tok_create(void *api_ptr, const char **args, int nargs, Fts5Tokenizer **out)
{
    fts5_api *api = api_ptr;
    fts_tokenizer_t *t;
    void *inner_ctx = NULL;
    int rc;

    (void)args;
    *out = NULL;
    /* Accepting unicode61 options here would let one table fold differently from the rest. */
    if (nargs != 0)
        return SQLITE_ERROR;
    t = sqlite3_malloc(sizeof *t);
    if (t == NULL)
        return SQLITE_NOMEM;
    memset(t, 0, sizeof *t);
    rc = api->xFindTokenizer(api, "unicode61", &inner_ctx, &t->inner_api);
    if (rc == SQLITE_OK)
        rc = t->inner_api.xCreate(inner_ctx, (const char **)inner_args,
                                  (int)(sizeof inner_args / sizeof inner_args[0]), &t->inner);
    if (rc != SQLITE_OK) {
        sqlite3_free(t);
        return rc;
    }
    *out = (Fts5Tokenizer *)t;
    return SQLITE_OK;
}

static void tok_delete(Fts5Tokenizer *tok)
{
    fts_tokenizer_t *t = (fts_tokenizer_t *)tok;

    if (t == NULL)
        return;
    t->inner_api.xDelete(t->inner);
    sqlite3_free(t);
}

static int on_token(void *call_ptr, int tflags, const char *tok, int ntok, int start, int end)
{
    fts_call_t *call = call_ptr;
    char stack[TOKEN_STACK], *buf = stack;
    size_t n;
    int rc = SQLITE_OK;

    if (ntok <= 0)
        return SQLITE_OK;
    n = rp_text_fold_into(tok, (size_t)ntok, stack, sizeof stack);
    if (n > INT_MAX)
        return SQLITE_TOOBIG;
    if (n >= sizeof stack) {
        buf = sqlite3_malloc64(n + 1);
        if (buf == NULL)
            return SQLITE_NOMEM;
        rp_text_fold_into(tok, (size_t)ntok, buf, n + 1);
    }
    /* A token of only tatweel, harakat or joiners folds to nothing; an empty term would match
     * nothing useful and only bloat the index. */
    if (n > 0)
        rc = call->token(call->ctx, tflags, buf, (int)n, start, end);
    if (buf != stack)
        sqlite3_free(buf);
    return rc;
}

static int tok_tokenize(Fts5Tokenizer *tok, void *ctx, int flags, const char *text, int ntext,
                        int (*token)(void *, int, const char *, int, int, int))
{
    fts_tokenizer_t *t = (fts_tokenizer_t *)tok;
    fts_call_t call = {ctx, token};

    /* The flags (document, query, prefix, aux) mean the same to unicode61, so they pass on. */
    return t->inner_api.xTokenize(t->inner, &call, flags, text, ntext, on_token);
}

/* The first SQLite varint of the @p n bytes at @p p (FTS5's %_docsize holds one per column);
 * -1 when the bytes end inside it. */
static int64_t first_varint(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n && i < 9; i++) {
        if (i == 8)
            return (int64_t)((v << 8) | p[i]);
        v = (v << 7) | (p[i] & 0x7f);
        if (!(p[i] & 0x80))
            return (int64_t)v;
    }
    return -1;
}

#define BM25_K1 1.2
#define BM25_B 0.75
#define BM25_PHRASES 64 /* Phrases counted on the stack; a search has at most 32 words. */

/* What rp_bm25 keeps for one query: the index's average length, and the last row it scored. */
typedef struct bm25_query {
    double avgdl, score;
    sqlite3_int64 rowid;
    bool scored;
} bm25_query_t;

/*
 * rp_bm25(table, sz): minus the BM25 score (k1 1.2, b 0.75, FTS5's own) of the current row,
 * lower first as FTS5's rank. Two things differ from FTS5's bm25(), both for speed:
 *  - Every phrase weighs alike: FTS5 finds each phrase's weight by walking its whole doclist
 *    (every record a word or prefix matches: 100,000 entries for a word every contact has, in
 *    each query), and every hit of a search holds every phrase anyway.
 *  - The row's length in tokens comes from @p sz, its %_docsize blob, which the query joins
 *    for it (one seek in the statement); FTS5's xColumnSize runs a statement of its own per
 *    row, twice as slow. Without sz (NULL or absent) xColumnSize is asked.
 * It is the formula of search.c's visible_score(), which ranks for a reader who sees part of a
 * record (there the average length is the hits', here the whole index's).
 */
static void bm25_fn(const Fts5ExtensionApi *x, Fts5Context *c, sqlite3_context *ctx, int nv,
                    sqlite3_value **v)
{
    int nphrase = x->xPhraseCount(c), ninst = 0, rc;
    int stack[BM25_PHRASES], *tf = stack;
    if (nphrase > BM25_PHRASES && !(tf = sqlite3_malloc64(sizeof *tf * (size_t)nphrase))) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    memset(tf, 0, sizeof *tf * (size_t)(nphrase > 0 ? nphrase : 0));
    bm25_query_t *q = x->xGetAuxdata(c, 0);
    if (!q) {
        sqlite3_int64 rows = 0, total = 0;
        if ((rc = x->xRowCount(c, &rows)) != SQLITE_OK ||
            (rc = x->xColumnTotalSize(c, -1, &total)) != SQLITE_OK)
            goto fail;
        if (!(q = sqlite3_malloc64(sizeof *q))) {
            rc = SQLITE_NOMEM;
            goto fail;
        }
        q->avgdl = rows > 0 && total > 0 ? (double)total / (double)rows : 1.0;
        q->scored = false;
        if ((rc = x->xSetAuxdata(c, q, sqlite3_free)) != SQLITE_OK)
            goto fail;
    }
    /* Asked twice for one row (its rank, then whether it earns a snippet): the same answer. */
    sqlite3_int64 rowid = x->xRowid(c);
    if (q->scored && q->rowid == rowid) {
        if (tf != stack)
            sqlite3_free(tf);
        sqlite3_result_double(ctx, q->score);
        return;
    }
    int64_t dl = -1;
    if (nv >= 1 && sqlite3_value_type(v[0]) == SQLITE_BLOB)
        dl = first_varint(sqlite3_value_blob(v[0]), sqlite3_value_bytes(v[0]));
    if (dl < 0) {
        int n = 0;
        if ((rc = x->xColumnSize(c, -1, &n)) != SQLITE_OK)
            goto fail;
        dl = n;
    }
    if ((rc = x->xInstCount(c, &ninst)) != SQLITE_OK)
        goto fail;
    for (int i = 0; i < ninst; i++) {
        int ph, col, off;
        if ((rc = x->xInst(c, i, &ph, &col, &off)) != SQLITE_OK)
            goto fail;
        if (ph >= 0 && ph < nphrase)
            tf[ph]++;
    }
    double norm = BM25_K1 * (1 - BM25_B + BM25_B * (double)dl / q->avgdl), score = 0;
    for (int p = 0; p < nphrase; p++)
        score += tf[p] * (BM25_K1 + 1) / (tf[p] + norm);
    if (tf != stack)
        sqlite3_free(tf);
    q->scored = true;
    q->rowid = rowid;
    q->score = -score;
    sqlite3_result_double(ctx, -score);
    return;
fail:
    if (tf != stack)
        sqlite3_free(tf);
    sqlite3_result_error_code(ctx, rc);
}

/* The best k rows met so far by rp_topk: rank (lower first) and rowid (higher first on a tie). */
typedef struct topk {
    int k, n;
    struct {
        double rank;
        sqlite3_int64 rowid;
    } e[];
} topk_t;

/* Whether (rank, rowid) goes before entry @p i of @p t. */
static bool topk_before(const topk_t *t, int i, double rank, sqlite3_int64 rowid)
{
    return rank < t->e[i].rank || (rank == t->e[i].rank && rowid > t->e[i].rowid);
}

/*
 * rp_topk(rank, rowid, k): 1 when the row is among the best k of the rows this statement has
 * shown it so far (rank lower first, then rowid higher first), else 0. A search asks it
 * before making a row's snippet, so that of the 256 rows it ranks only those that can end in
 * its first k get one: a row of the final k is among the best k of every set of rows that
 * holds it, so it always gets its snippet, whatever went before (even if SQLite drops the
 * state, which it may: it is kept as the auxiliary data of the constant argument k).
 */
static void topk_fn(sqlite3_context *ctx, int nv, sqlite3_value **v)
{
    (void)nv;
    int k = sqlite3_value_int(v[2]);
    if (k <= 0 || k > 100000) {
        sqlite3_result_int(ctx, 0);
        return;
    }
    topk_t *t = sqlite3_get_auxdata(ctx, 2);
    if (!t) {
        t = sqlite3_malloc64(sizeof *t + sizeof t->e[0] * (size_t)k);
        if (!t) {
            /* A snippet too many costs time only; the search goes on. */
            sqlite3_result_int(ctx, 1);
            return;
        }
        t->k = k;
        t->n = 0;
        sqlite3_set_auxdata(ctx, 2, t, sqlite3_free);
        /* set_auxdata frees it at once when it cannot keep it: ask again. */
        if (!(t = sqlite3_get_auxdata(ctx, 2))) {
            sqlite3_result_int(ctx, 1);
            return;
        }
    }
    double rank = sqlite3_value_double(v[0]);
    sqlite3_int64 rowid = sqlite3_value_int64(v[1]);
    int at;
    if (t->n < t->k) {
        at = t->n++;
    } else {
        /* The worst kept: replaced when this row goes before it. */
        at = 0;
        for (int i = 1; i < t->n; i++)
            if (topk_before(t, i, t->e[at].rank, t->e[at].rowid))
                at = i;
        if (!topk_before(t, at, rank, rowid)) {
            sqlite3_result_int(ctx, 0);
            return;
        }
    }
    t->e[at].rank = rank;
    t->e[at].rowid = rowid;
    sqlite3_result_int(ctx, 1);
}

static const char get_api_sql[] = "SELECT fts5(?1)";

/* Fetches the connection's fts5_api; fails with SQLITE_ERROR ("no such function") when the
 * library was built without FTS5. */
static int get_fts5_api(sqlite3 *db, fts5_api **api)
{
    sqlite3_stmt *stmt = NULL;
    int rc;

    *api = NULL;
    rc = sqlite3_prepare_v2(db, get_api_sql, -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_bind_pointer(stmt, 1, (void *)api, "fts5_api_ptr", NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(stmt);
        rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    sqlite3_finalize(stmt);
    return rc;
}

int rp__fts_register(sqlite3 *db)
{
    fts5_tokenizer methods = {tok_create, tok_delete, tok_tokenize};
    fts5_api *api;
    int rc;

    if (db == NULL)
        return SQLITE_MISUSE;
    rc = get_fts5_api(db, &api);
    if (rc != SQLITE_OK)
        return rc;
    /* xCreateTokenizer and xFindTokenizer are in every version; 2 is what SQLite 3.40 has. */
    if (api == NULL || api->iVersion < 2)
        return SQLITE_ERROR;
    /* FTS5 copies the methods; the api pointer, our creation context, lives with the db. */
    rc = api->xCreateTokenizer(api, RP__FTS_TOKENIZER, api, &methods, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = api->xCreateFunction(api, RP__FTS_BM25, NULL, bm25_fn, NULL);
    if (rc != SQLITE_OK)
        return rc;
    return sqlite3_create_function(db, RP__FTS_TOPK, 3, SQLITE_UTF8 | SQLITE_INNOCUOUS, NULL,
                                   topk_fn, NULL, NULL);
}
