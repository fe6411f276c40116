/*
 * text.h — folding UTF-8 text so that what users read as the same word compares equal: case,
 * Latin accents, and the Arabic/Persian letter, digit and joiner variants. Search (the FTS5
 * tokenizer) and duplicate detection both fold through here, so they agree on "the same".
 */
#ifndef RAPPORT_TEXT_H
#define RAPPORT_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/** The most code points rp_text_fold_cp() writes for one input code point. */
#define RP_TEXT_FOLD_MAX 3

/**
 * Folds one code point.
 *
 * What folds:
 * - case: ASCII, Latin-1, Latin Extended-A and -B, Latin Extended Additional, Greek
 *   (U+0370–U+03FF), Cyrillic (U+0400–U+052F), and fullwidth ASCII (U+FF01–U+FF5E, folded to
 *   ASCII); other scripts (Armenian, Georgian, polytonic Greek, …) are not case-folded yet;
 * - Latin diacritics: every letter of U+00C0–U+017F becomes ASCII (é→e, ñ→n, ü→u, ç→c, ø→o,
 *   ð→d, ł→l, ß→ss, æ→ae, œ→oe, þ→th, ĳ→ij), as do the decomposable letters of Latin
 *   Extended-B (Pinyin ǎ, Romanian ș ț, Vietnamese ơ ư) and Latin Extended Additional
 *   (Vietnamese ế ữ …); letters whose hook or stroke makes another letter (ɓ ɛ ƙ) only lose
 *   their case;
 * - Greek tonos and dialytika (ά→α, ϊ→ι) and final sigma (ς→σ); Russian ё→е (and ѐ→е, ѝ→и);
 *   й, ї, ў and the other Cyrillic letters stay distinct (but typed in NFD, as и + U+0306,
 *   they lose the mark like any combining mark below);
 * - Arabic/Persian: ي ى ئ → ی, ك → ک, ة ۀ → ه, أ إ آ ٱ → ا, ؤ → و; Arabic-Indic (U+0660–0669)
 *   and Persian (U+06F0–06F9) digits → ASCII 0–9; presentation forms (U+FB50–U+FBFF,
 *   U+FE70–U+FEFC) → their letters, folded as above;
 * - dropped (0 code points): tatweel U+0640, harakat U+064B–U+065F, U+0670, the other Arabic
 *   marks (U+0610–061A, U+06D6–06ED), Hebrew points, combining diacritical marks (U+0300–036F,
 *   U+1AB0–1AFF, U+1DC0–1DFF, U+20D0–20FF, U+FE20–FE2F), and the invisible format characters
 *   soft hyphen U+00AD, ZWNJ U+200C, ZWJ U+200D, LRM/RLM U+200E–200F, bidi controls
 *   U+202A–202E and U+2066–2069, word joiner U+2060 and BOM U+FEFF;
 * - every white-space character, U+200B (zero-width space) and every other C0/C1 control
 *   (NUL included) → U+0020, so that they separate words;
 * - a surrogate or a value above U+10FFFF → U+FFFD.
 * Anything else is written unchanged.
 *
 * Every code point written is a fixed point (it folds to itself), so folding is idempotent.
 *
 * @param cp   The code point to fold.
 * @param out  Receives the folded code points (caller's array).
 * @return how many code points were written to @p out: 0 (dropped) to RP_TEXT_FOLD_MAX.
 */
int rp_text_fold_cp(unsigned cp, unsigned out[RP_TEXT_FOLD_MAX]);

/**
 * Folds the UTF-8 text @p s of @p len bytes into the caller's buffer, like snprintf: each code
 * point goes through rp_text_fold_cp(), then leading and trailing white space is removed and
 * every run of white space becomes one U+0020. Invalid UTF-8 is not dropped: each maximal
 * ill-formed subsequence (Unicode §3.9, as WHATWG decodes) becomes one U+FFFD, so the result is
 * always valid UTF-8 without NUL bytes.
 *
 * @param s    The text (borrowed); may be NULL when @p len is 0. Need not be NUL-terminated.
 * @param len  Its length in bytes.
 * @param out  Receives at most @p cap - 1 bytes and a NUL; only whole code points are written,
 *             so a truncated result is still valid UTF-8. May be NULL when @p cap is 0.
 * @param cap  The size of @p out in bytes.
 * @return the length of the whole folded text in bytes, without the NUL; a value ≥ @p cap means
 *         @p out holds a truncated prefix and a buffer of (return value + 1) bytes is needed.
 */
size_t rp_text_fold_into(const char *s, size_t len, char *out, size_t cap);

/**
 * Folds the UTF-8 text @p s of @p len bytes, as rp_text_fold_into() does, into a new string.
 *
 * @param s       The text (borrowed); may be NULL when @p len is 0. Need not be NUL-terminated.
 * @param len     Its length in bytes.
 * @param outlen  If not NULL, receives the length of the result in bytes, without the NUL.
 * @return the folded, NUL-terminated text, owned by the caller (free with free()); NULL when
 *         out of memory.
 */
char *rp_text_fold(const char *s, size_t len, size_t *outlen);

/**
 * A copy of text @p s safe to write to a terminal: every control character a terminal would
 * act on — C0 (below 0x20, but tab and newline when @p keep_lines), DEL, and C1 (U+0080 to
 * U+009F, which some terminals read as escape sequences) — written as a three-digit Lua escape
 * ("\027", "\194\155"), so a stored value cannot move the cursor, retitle the window or fake
 * lines. Everything else, valid or invalid UTF-8, is copied as it is.
 *
 * @return the new text, owned by the caller (free()); NULL when out of memory or @p s is NULL.
 */
char *rp_text_printable(const char *s, bool keep_lines);

#endif
