/*
 * test_text.c — text folding (core/text) and the "rapport" FTS5 tokenizer built on it
 * (core/store/fts.c): the folding tables, invalid UTF-8, and search through SQLite.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "fts.h"
#include "rapport/text.h"

/* Folds @p len bytes of @p in and checks the result is @p want, with the length it reports. */
static void check_fold_n(const char *in, size_t len, const char *want)
{
    size_t outlen = 12345;
    char *out = rp_text_fold(in, len, &outlen);

    assert_non_null(out);
    assert_string_equal(out, want);
    assert_int_equal(outlen, strlen(want));
    free(out);
}

static void check_fold(const char *in, const char *want)
{
    check_fold_n(in, strlen(in), want);
}

/* Checks that @p a and @p b fold to the same text. */
static void check_same(const char *a, const char *b)
{
    char *fa = rp_text_fold(a, strlen(a), NULL);
    char *fb = rp_text_fold(b, strlen(b), NULL);

    assert_non_null(fa);
    assert_non_null(fb);
    assert_string_equal(fa, fb);
    free(fa);
    free(fb);
}

static void test_ascii_and_space(void **state)
{
    (void)state;
    check_fold("Hello World", "hello world");
    check_fold("  Hello \t\n  World \r\n", "hello world");
    check_fold("ACME-Corp_42 (Ltd.)", "acme-corp_42 (ltd.)");
    check_fold("", "");
    check_fold("   \t\n ", "");
    /* No-break, ideographic and zero-width spaces separate words like a space. */
    check_fold("a\xC2\xA0\xC2\xA0"
               "b\xE3\x80\x80"
               "c\xE2\x80\x8B"
               "d",
               "a b c d");
    /* A lone ZWNJ between spaces vanishes without leaving two spaces behind. */
    check_fold("a \xE2\x80\x8C b", "a b");
    /* Controls, NUL included, become separators, so the result stays a C string. */
    check_fold_n("a\0b\x01"
                 "c\x7F",
                 6, "a b c");
}

static void test_latin(void **state)
{
    (void)state;
    check_fold("José", "jose");
    check_fold("JOSÉ Müller", "jose muller");
    check_fold("Crème Brûlée à la façon", "creme brulee a la facon");
    check_fold("Ñandú", "nandu");
    check_fold("Straße", "strasse");
    check_fold("STRASSE", "strasse");
    check_fold("Ærøskøbing", "aeroskobing");
    check_fold("Œuvre", "oeuvre");
    check_fold("Þór Ðað", "thor dad");
    check_fold("Łódź Kraków", "lodz krakow");
    check_fold("Çağrı İstanbul", "cagri istanbul");
    check_fold("Dvořák Šťastný", "dvorak stastny");
    check_fold("Ĳsselmeer", "ijsselmeer");
    check_fold("Ștefan Țiriac", "stefan tiriac");
    check_fold("Nguyễn Thị Phương", "nguyen thi phuong");
    check_fold("Ǆ Ǉ", "dz lj");
    check_fold("ẞ", "ss");
    check_fold("ＡＢＣ１２３", "abc123");
    check_fold("Ɛwe Ɓ", "ɛwe ɓ");
    /* Decomposed (NFD) text folds like the composed form. */
    check_same("Jose\xCC\x81", "José");
    check_same("Mu\xCC\x88ller", "Müller");
}

/* Every letter of Latin-1 and Latin Extended-A folds to one or two lower-case ASCII letters. */
static void test_latin_tables_are_ascii(void **state)
{
    (void)state;
    for (unsigned cp = 0xC0; cp < 0x180; cp++) {
        unsigned out[RP_TEXT_FOLD_MAX];
        int n = rp_text_fold_cp(cp, out);

        if (cp == 0xD7 || cp == 0xF7) {
            assert_int_equal(n, 1);
            assert_int_equal(out[0], cp);
            continue;
        }
        assert_true(n >= 1 && n <= 2);
        for (int i = 0; i < n; i++)
            assert_true(out[i] >= 'a' && out[i] <= 'z');
    }
}

static void test_greek(void **state)
{
    (void)state;
    check_fold("ΑΘΗΝΑ", "αθηνα");
    check_fold("Αθήνα", "αθηνα");
    check_fold("ΟΔΟΣ", "οδοσ");
    check_same("οδός", "ΟΔΟΣ");
    check_same("Ελλάδα", "ΕΛΛΑΔΑ");
    check_same("ϊ ΐ Ϊ", "ι ι ι");
    check_fold("µ", "μ"); /* Micro sign. */
}

static void test_cyrillic(void **state)
{
    (void)state;
    check_fold("МОСКВА", "москва");
    check_fold("Ёлка", "елка");
    check_same("ёж", "ЕЖ");
    check_fold("ЙОШКАР-ОЛА", "йошкар-ола"); /* й stays a letter of its own. */
    check_fold("ЄВРО ЇЖАК ЎЗБЕК", "євро їжак ўзбек");
    check_fold("ҐАНОК Ѣ", "ґанок ѣ");
    check_fold("Ӂ Ӑ Ԁ", "ӂ ӑ ԁ");
}

static void test_persian_arabic(void **state)
{
    (void)state;
    /* Arabic yeh and alef maksura against Persian yeh. */
    check_same("علي", "علی");
    check_same("على", "علی");
    check_fold("علي", "علی");
    /* Arabic kaf against Persian keheh. */
    check_same("كتاب", "کتاب");
    check_fold("كتاب", "کتاب");
    /* ZWNJ (and ZWJ) inside a word. */
    check_same("می\xE2\x80\x8Cخواهم", "میخواهم");
    check_same("می\xE2\x80\x8Dخواهم", "میخواهم");
    /* Persian and Arabic-Indic digits. */
    check_fold("۱۲۳", "123");
    check_fold("١٢٣", "123");
    check_fold("۰۹۱۲ ٤٥٦ ۷۸۹۰", "0912 456 7890");
    /* Tatweel. */
    check_fold("كـتـاب", "کتاب");
    check_fold("ـــ", "");
    /* Harakat, superscript alef and shadda. */
    check_same("عَلِیّ", "علی");
    check_same("رحمٰن", "رحمن");
    check_same("كِتَابٌ", "کتاب");
    /* Teh marbuta and the alefs with hamza or madda. */
    check_same("مدرسة", "مدرسه");
    check_same("أحمد", "احمد");
    check_same("إبراهيم", "ابراهیم");
    check_same("آرش", "ارش");
    /* Hamza seats fold like their NFD form with the hamza dropped. */
    check_same("پائیز", "پاییز");
    check_same("مسؤول", "مسوول");
    check_same("خانۀ", "خانه");
    check_same("خانهٔ", "خانه");
    /* Bidi marks that editors insert around Persian text. */
    check_same("\xE2\x80\x8Fعلی\xE2\x80\x8E", "علی");
    /* Presentation forms, as text copied out of a PDF has them. */
    check_same("\xEF\xBB\x8B\xEF\xBB\xA0\xEF\xBB\xB2", "علی"); /* ﻋﻠﻲ */
    check_same("\xEF\xBB\xBB", "لا");                          /* ﻻ */
    check_same("\xEF\xAE\x8F\xEF\xBA\x98", "کت");              /* ﮏﺘ */
}

/* Every code point folds to at most RP_TEXT_FOLD_MAX code points that each fold to themselves,
 * which is what makes rp_text_fold() idempotent. */
static void test_fold_cp_fixed_points(void **state)
{
    static const unsigned beyond[] = {0x110000, 0x7FFFFFFF, 0xFFFFFFFF};

    (void)state;
    for (unsigned cp = 0; cp <= 0x10FFFF; cp++) {
        unsigned out[RP_TEXT_FOLD_MAX], again[RP_TEXT_FOLD_MAX];
        int n = rp_text_fold_cp(cp, out);

        assert_true(n >= 0 && n <= RP_TEXT_FOLD_MAX);
        for (int i = 0; i < n; i++) {
            assert_true(out[i] <= 0x10FFFF);
            assert_false(out[i] >= 0xD800 && out[i] <= 0xDFFF);
            assert_int_equal(rp_text_fold_cp(out[i], again), 1);
            assert_int_equal(again[0], out[i]);
        }
    }
    for (size_t i = 0; i < sizeof beyond / sizeof beyond[0]; i++) {
        unsigned out[RP_TEXT_FOLD_MAX];

        assert_int_equal(rp_text_fold_cp(beyond[i], out), 1);
        assert_int_equal(out[0], 0xFFFD);
    }
}

static void test_idempotent(void **state)
{
    static const char *const samples[] = {
        "  José  Müller\t",
        "Straße ẞ",
        "ΟΔΟΣ",
        "Ёлка",
        "كـتـاب عَلِي ۱۲۳",
        "\xEF\xBB\xBB \xE2\x80\x8C x",
        "\xff\xfe a \xC3",
        "ǅ Ǳ",
    };

    (void)state;
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        size_t n1, n2;
        char *once = rp_text_fold(samples[i], strlen(samples[i]), &n1);
        char *twice;

        assert_non_null(once);
        twice = rp_text_fold(once, n1, &n2);
        assert_non_null(twice);
        assert_int_equal(n1, n2);
        assert_memory_equal(once, twice, n1);
        free(once);
        free(twice);
    }
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    /* One U+FFFD per maximal ill-formed subsequence. */
    check_fold("\xff", "\xEF\xBF\xBD");
    check_fold("a\xC3", "a\xEF\xBF\xBD");
    check_fold("\xC3(", "\xEF\xBF\xBD(");
    check_fold("\xE2\x82", "\xEF\xBF\xBD");
    check_fold("\xE2\x82x", "\xEF\xBF\xBDx");
    check_fold("\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD");                 /* overlong '/' */
    check_fold("\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"); /* surrogate */
    check_fold("\xF4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    check_fold("\xF0\x9F\x98\x80", "\xF0\x9F\x98\x80"); /* a valid 4-byte emoji stays */
    check_fold("\x80\x80 JOSÉ", "\xEF\xBF\xBD\xEF\xBF\xBD jose");
}

static void test_fold_into(void **state)
{
    char buf[8];
    size_t n;

    (void)state;
    n = rp_text_fold_into("Müller", 7, buf, sizeof buf);
    assert_int_equal(n, 6);
    assert_string_equal(buf, "muller");

    /* Truncation keeps whole code points and reports the full length. */
    n = rp_text_fold_into("ααααα", 10, buf, sizeof buf);
    assert_int_equal(n, 10);
    assert_string_equal(buf, "ααα");

    n = rp_text_fold_into("ß", 2, buf, 2);
    assert_int_equal(n, 2);
    assert_string_equal(buf, "s");

    assert_int_equal(rp_text_fold_into("abc", 3, NULL, 0), 3);
    assert_int_equal(rp_text_fold_into(NULL, 0, buf, sizeof buf), 0);
    assert_string_equal(buf, "");
}

static void test_fold_grows(void **state)
{
    /* Invalid bytes triple in size, past the first guess of rp_text_fold(). */
    char in[300];
    size_t n;
    char *out;

    (void)state;
    memset(in, 0xff, sizeof in);
    out = rp_text_fold(in, sizeof in, &n);
    assert_non_null(out);
    assert_int_equal(n, 3 * sizeof in);
    assert_int_equal(strlen(out), n);
    free(out);

    out = rp_text_fold(NULL, 0, &n);
    assert_non_null(out);
    assert_int_equal(n, 0);
    assert_string_equal(out, "");
    free(out);
}

/* ---- FTS5 ---- */

static const char *const rows[] = {
    /* 1 */ "José Müller bought a car",
    /* 2 */ "علي رضایی",
    /* 3 */ "كتاب فروشی",
    /* 4 */ "می\xE2\x80\x8Cخواهم بخرم",
    /* 5 */ "۱۲۳ تومان",
    /* 6 */ "Straße in Ελλάδα",
    /* 7 */ "كـتـاب عَلِيّ",
};

static int fts_setup(void **state)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc;

    if (sqlite3_open(":memory:", &db) != SQLITE_OK)
        goto fail;
    if (rp__fts_register(db) != SQLITE_OK ||
        sqlite3_exec(db, "CREATE VIRTUAL TABLE t USING fts5(body, tokenize='rapport')", NULL, NULL,
                     NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO t(rowid, body) VALUES (?1, ?2)", -1, &st, NULL) !=
            SQLITE_OK)
        goto fail;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)(i + 1));
        sqlite3_bind_text(st, 2, rows[i], -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            goto fail;
    }
    sqlite3_finalize(st);
    *state = db;
    return 0;
fail:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return -1;
}

static int fts_teardown(void **state)
{
    return sqlite3_close(*state) == SQLITE_OK ? 0 : -1;
}

#define ROW(n) (UINT64_C(1) << (n))
#define SQL_FAILED ROW(63)

/* The rowids (< 63) that match @p query as a bit set, row n as bit n; bit 63 on an SQL error. */
static uint64_t match(sqlite3 *db, const char *query)
{
    sqlite3_stmt *st;
    uint64_t set = 0;
    int rc;

    if (sqlite3_prepare_v2(db, "SELECT rowid FROM t WHERE t MATCH ?1", -1, &st, NULL) != SQLITE_OK)
        return SQL_FAILED;
    sqlite3_bind_text(st, 1, query, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        set |= ROW(sqlite3_column_int(st, 0));
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? set : SQL_FAILED;
}

/* The first result of @p sql with @p query bound to ?1, copied (free with free()). */
static char *query_text(sqlite3 *db, const char *sql, const char *query)
{
    sqlite3_stmt *st;
    char *out = NULL;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return NULL;
    sqlite3_bind_text(st, 1, query, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL) {
        size_t n = (size_t)sqlite3_column_bytes(st, 0);

        out = malloc(n + 1);
        if (out != NULL)
            memcpy(out, sqlite3_column_text(st, 0), n + 1);
    }
    sqlite3_finalize(st);
    return out;
}

static void test_fts_latin(void **state)
{
    sqlite3 *db = *state;

    assert_int_equal(match(db, "Jose"), ROW(1));
    assert_int_equal(match(db, "josé"), ROW(1));
    assert_int_equal(match(db, "JOSE"), ROW(1));
    assert_int_equal(match(db, "muller"), ROW(1));
    assert_int_equal(match(db, "MÜLLER"), ROW(1));
    assert_int_equal(match(db, "strasse"), ROW(6));
    assert_int_equal(match(db, "Straße"), ROW(6));
    assert_int_equal(match(db, "ελλαδα"), ROW(6));
    assert_int_equal(match(db, "jos*"), ROW(1));
    assert_int_equal(match(db, "nobody"), 0);
}

static void test_fts_persian(void **state)
{
    sqlite3 *db = *state;

    /* Row 2 has علي with Arabic yeh, row 7 عَلِيّ with harakat and Arabic yeh. */
    assert_int_equal(match(db, "علی"), ROW(2) | ROW(7));
    assert_int_equal(match(db, "علي"), ROW(2) | ROW(7));
    /* Row 3 has كتاب with Arabic kaf, row 7 كـتـاب with tatweel. */
    assert_int_equal(match(db, "کتاب"), ROW(3) | ROW(7));
    assert_int_equal(match(db, "کتا*"), ROW(3) | ROW(7));
    assert_int_equal(match(db, "كتا*"), ROW(3) | ROW(7));
    assert_int_equal(match(db, "کـتـا*"), ROW(3) | ROW(7));
    /* ZWNJ does not split the word, and matches it typed without. */
    assert_int_equal(match(db, "میخواهم"), ROW(4));
    assert_int_equal(match(db, "می\xE2\x80\x8Cخواهم"), ROW(4));
    assert_int_equal(match(db, "می"), 0);
    /* Persian, Arabic-Indic and ASCII digits are one. */
    assert_int_equal(match(db, "123"), ROW(5));
    assert_int_equal(match(db, "١٢٣"), ROW(5));
    assert_int_equal(match(db, "۱۲۳"), ROW(5));
    assert_int_equal(match(db, "\"علی رضایی\""), ROW(2));
}

static void test_fts_snippet_is_original(void **state)
{
    sqlite3 *db = *state;
    char *s;

    s = query_text(db, "SELECT snippet(t, 0, '[', ']', '...', 8) FROM t WHERE t MATCH ?1", "jose");
    assert_non_null(s);
    assert_string_equal(s, "[José] Müller bought a car");
    free(s);

    s = query_text(db, "SELECT highlight(t, 0, '[', ']') FROM t WHERE t MATCH ?1 AND rowid = 2",
                   "علی");
    assert_non_null(s);
    assert_string_equal(s, "[علي] رضایی");
    free(s);

    s = query_text(db, "SELECT highlight(t, 0, '[', ']') FROM t WHERE t MATCH ?1 AND rowid = 7",
                   "کتاب");
    assert_non_null(s);
    assert_string_equal(s, "[كـتـاب] عَلِيّ");
    free(s);

    s = query_text(db, "SELECT highlight(t, 0, '[', ']') FROM t WHERE t MATCH ?1", "میخواهم");
    assert_non_null(s);
    assert_string_equal(s, "[می\xE2\x80\x8Cخواهم] بخرم");
    free(s);
}

/* Exercises the heap path of the token callback: a word folded past its stack buffer. */
static void test_fts_long_token(void **state)
{
    sqlite3 *db = *state;
    char word[2 * 300 + 1], plain[300 + 1];
    sqlite3_stmt *st;

    for (int i = 0; i < 300; i++) {
        memcpy(word + 2 * i, "\xC3\x89", 2); /* É */
        plain[i] = 'e';
    }
    word[600] = '\0';
    plain[300] = '\0';
    assert_int_equal(
        sqlite3_prepare_v2(db, "INSERT INTO t(rowid, body) VALUES (40, ?1)", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_text(st, 1, word, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    assert_int_equal(match(db, plain), ROW(40));
    assert_int_equal(match(db, word), ROW(40));
}

static void test_fts_odd_input(void **state)
{
    static const char bad[] =
        "\xff\xfe J\xC3 \xED\xA0\x80 \xE2\x80\x8C \xD9\x80 \xD9\x8E x\xC0\xAF";
    sqlite3 *db = *state;
    sqlite3_stmt *st;

    /* Invalid UTF-8 and tokens that fold to nothing (ZWNJ, tatweel, a lone fatha) index and
     * search without error. */
    assert_int_equal(
        sqlite3_prepare_v2(db, "INSERT INTO t(rowid, body) VALUES (41, ?1)", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_text(st, 1, bad, (int)sizeof bad - 1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    assert_int_not_equal(match(db, "\"\xD9\x80\""), SQL_FAILED);
    assert_int_not_equal(match(db, "\"\xff\xfe\""), SQL_FAILED);
    assert_int_equal(match(db, "x*"), ROW(41));
    assert_int_equal(
        sqlite3_exec(db, "INSERT INTO t(t) VALUES ('integrity-check')", NULL, NULL, NULL),
        SQLITE_OK);
}

static void test_fts_rejects_arguments(void **state)
{
    sqlite3 *db = *state;

    assert_int_not_equal(sqlite3_exec(db,
                                      "CREATE VIRTUAL TABLE u USING fts5(b, "
                                      "tokenize='rapport remove_diacritics 0')",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
}

static void test_fts_register_twice(void **state)
{
    sqlite3 *db = *state;

    /* Registering again replaces the tokenizer; existing tables keep working. */
    assert_int_equal(rp__fts_register(db), SQLITE_OK);
    assert_int_equal(match(db, "Jose"), ROW(1));
}

/* Text written to a terminal: a stored value's escape sequences are shown, never acted on. */
static void test_printable(void **state)
{
    (void)state;
    char *t = rp_text_printable("E" "\x1b]0;PWNED\x07\x1b[31mRED\r\nx\ty\x7f", false);
    assert_string_equal(t, "E\\027]0;PWNED\\007\\027[31mRED\\013\\010x\\009y\\127");
    free(t);
    t = rp_text_printable("line\nnext\tcol\rback", true);
    assert_string_equal(t, "line\nnext\tcol\\013back");
    free(t);
    /* C1 controls (U+009B is a CSI on some terminals) are escaped; other UTF-8 stays whole. */
    t = rp_text_printable("a\xc2\x9b" "2J \xd8\xb3\xd9\x84\xd8\xa7\xd9\x85 \xc2\xa9 \xc2", false);
    assert_string_equal(t, "a\\194\\155" "2J \xd8\xb3\xd9\x84\xd8\xa7\xd9\x85 \xc2\xa9 \xc2");
    free(t);
    t = rp_text_printable("", false);
    assert_string_equal(t, "");
    free(t);
    assert_null(rp_text_printable(NULL, false));
}

/* rp_topk: 1 for a row among the best k shown so far (rank lower first, then the higher
 * rowid); every row of the final best k is among them when it comes, whatever the order. */
static void test_fts_topk(void **state)
{
    sqlite3 *db = *state;
    char *got = query_text(db, "SELECT group_concat(rp_topk(column2, column1, 2), '') FROM (VALUES"
                               " (10, 5.0), (9, 4.0), (8, 6.0), (7, 1.0), (6, 4.0), (5, 0.5))",
                           "");
    assert_non_null(got);
    assert_string_equal(got, "110101");
    free(got);
    assert_int_equal(sqlite3_exec(db, "CREATE TEMP TABLE r(id INTEGER PRIMARY KEY, r REAL)", NULL,
                                  NULL, NULL), SQLITE_OK);
    uint64_t x = 7;
    for (int i = 1; i <= 500; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        char sql[96];
        snprintf(sql, sizeof sql, "INSERT INTO r VALUES(%d, %d)", i, (int)((x >> 33) % 40));
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    }
    for (int k = 1; k <= 64; k *= 4) {
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM (SELECT id, rp_topk(r, id, %d) AS a FROM r ORDER BY id DESC)"
                 " WHERE a AND id IN (SELECT id FROM r ORDER BY r, id DESC LIMIT %d)", k, k);
        got = query_text(db, sql, "");
        char want[16];
        snprintf(want, sizeof want, "%d", k);
        assert_non_null(got);
        assert_string_equal(got, want);
        free(got);
    }
    got = query_text(db, "SELECT rp_topk(1.0, 1, 0) || rp_topk(1.0, 1, -3)", "");
    assert_string_equal(got, "00");
    free(got);
}

/* rp_bm25: the row's length read from its docsize blob or, without it, looked up: the same
 * rank either way, below zero for every match (one word, several, none matching). */
static void test_fts_bm25(void **state)
{
    sqlite3 *db = *state;
    static const char *const queries[] = {"s*", "jose", "ka* s*", "ελλαδα"};
    static const int matches[] = {1, 1, 0, 1};
    static const char *const sql[2] = {
        "SELECT rp_bm25(t, d.sz), t.rowid FROM t JOIN t_docsize d ON d.id = t.rowid"
        " WHERE t MATCH ?1 ORDER BY t.rowid",
        "SELECT rp_bm25(t), rowid FROM t WHERE t MATCH ?1 ORDER BY rowid"};
    for (size_t q = 0; q < sizeof queries / sizeof queries[0]; q++) {
        double rank[2][8];
        int n[2] = {0, 0};
        for (int k = 0; k < 2; k++) {
            sqlite3_stmt *st = NULL;
            assert_int_equal(sqlite3_prepare_v2(db, sql[k], -1, &st, NULL), SQLITE_OK);
            sqlite3_bind_text(st, 1, queries[q], -1, SQLITE_STATIC);
            int rc;
            while ((rc = sqlite3_step(st)) == SQLITE_ROW && n[k] < 8)
                rank[k][n[k]++] = sqlite3_column_double(st, 0);
            sqlite3_finalize(st);
            assert_int_equal(rc, SQLITE_DONE);
            assert_int_equal(n[k], matches[q]);
        }
        for (int i = 0; i < n[0]; i++) {
            assert_true(rank[0][i] < 0);
            assert_true(rank[0][i] == rank[1][i]);
        }
    }
    /* The formula's value itself is held in test_query (test_search_ranking). */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ascii_and_space),
        cmocka_unit_test(test_latin),
        cmocka_unit_test(test_latin_tables_are_ascii),
        cmocka_unit_test(test_greek),
        cmocka_unit_test(test_cyrillic),
        cmocka_unit_test(test_persian_arabic),
        cmocka_unit_test(test_fold_cp_fixed_points),
        cmocka_unit_test(test_idempotent),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_fold_into),
        cmocka_unit_test(test_fold_grows),
        cmocka_unit_test(test_printable),
        cmocka_unit_test_setup_teardown(test_fts_latin, fts_setup, fts_teardown),
        cmocka_unit_test_setup_teardown(test_fts_persian, fts_setup, fts_teardown),
        cmocka_unit_test_setup_teardown(test_fts_snippet_is_original, fts_setup, fts_teardown),
        cmocka_unit_test_setup_teardown(test_fts_long_token, fts_setup, fts_teardown),
        cmocka_unit_test_setup_teardown(test_fts_odd_input, fts_setup, fts_teardown),
        cmocka_unit_test_setup_teardown(test_fts_rejects_arguments, fts_setup, fts_teardown),
        cmocka_unit_test_setup_teardown(test_fts_register_twice, fts_setup, fts_teardown),
        cmocka_unit_test_setup_teardown(test_fts_topk, fts_setup, fts_teardown),
        cmocka_unit_test_setup_teardown(test_fts_bm25, fts_setup, fts_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
