/*
 * fts.h — the store's full-text tokenizer: SQLite FTS5's unicode61 with every token folded by
 * rp_text_fold_cp(), so search agrees with duplicate detection on what "the same word" is.
 * Internal to core/store.
 */
#ifndef RAPPORT_STORE_FTS_H
#define RAPPORT_STORE_FTS_H

#include <sqlite3.h>

/** The name FTS5 tables give in `tokenize='rapport'` to use the tokenizer. */
#define RP__FTS_TOKENIZER "rapport"

/**
 * The name of the rank function registered beside the tokenizer:
 * `rp_bm25(table, sz)` is minus the BM25 score of the current row (lower first), every phrase
 * weighing alike, with the row's length read from @p sz, its `%_docsize` blob (join the table
 * for it; without it the function looks the length up itself).
 */
#define RP__FTS_BM25 "rp_bm25"

/**
 * The name of the SQL function registered beside them: `rp_topk(rank, rowid, k)` is 1 when the
 * row is among the best @p k of the rows the statement has shown it so far (rank lower first,
 * rowid higher first on a tie), else 0; so a statement makes a row's snippet only when the row
 * can still be in its first k. @p k must be a constant (a bound parameter): the rows are kept
 * as its auxiliary data.
 */
#define RP__FTS_TOPK "rp_topk"

/**
 * Registers the "rapport" FTS5 tokenizer, the rp_bm25() rank function and rp_topk() on @p db
 * (borrowed; the tokenizer lives as long as the connection). Call it once per connection,
 * before the first statement that touches an FTS5 table using it.
 *
 * The tokenizer wraps unicode61 (remove_diacritics 2, categories 'L* N* Co Mn Mc', and ZWNJ,
 * ZWJ and the other invisible format characters that rp_text_fold_cp() drops as token
 * characters, so none of them splits a word). Each token is folded by rp_text_fold_cp() and
 * reported with the byte offsets of the original text, so snippet() and highlight() show the
 * text as written. Tokens that fold to nothing (a lone tatweel or haraka) are not reported.
 * The tokenizer takes no arguments.
 *
 * @return SQLITE_OK, or the SQLite error code (SQLITE_ERROR if the library lacks FTS5).
 */
int rp__fts_register(sqlite3 *db);

#endif
