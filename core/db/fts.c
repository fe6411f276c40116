/*
 * fts.c — the "rapport" FTS5 tokenizer: unicode61 splits the words, rp_text_fold_cp() folds
 * each one, and the original offsets go on to FTS5 so snippets show the text as written.
 */
#include "fts.h"

#include <limits.h>
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
    return api->xCreateTokenizer(api, RP__FTS_TOKENIZER, api, &methods, NULL);
}
