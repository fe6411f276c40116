/*
 * fuzz_text_fold.c — libFuzzer target for rp_text_fold(): any bytes fold to valid UTF-8 without
 * NUL, with white space trimmed and collapsed, and folding the result again changes nothing.
 * Build with clang -fsanitize=fuzzer,address; with -DRP_FUZZ_STANDALONE it instead gets a main()
 * that runs each file named on the command line once (for compilers without libFuzzer).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rapport/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Strict UTF-8: shortest forms only, no surrogates, nothing above U+10FFFF, no NUL. */
static int valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned c = s[i], lo = 0x80, hi = 0xBF;
        size_t need;

        if (c == 0)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            lo = c == 0xE0 ? 0xA0 : 0x80;
            hi = c == 0xED ? 0x9F : 0xBF;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            lo = c == 0xF0 ? 0x90 : 0x80;
            hi = c == 0xF4 ? 0x8F : 0xBF;
        } else {
            return 0;
        }
        if (n - i <= need)
            return 0;
        for (size_t k = 1; k <= need; k++) {
            if (s[i + k] < lo || s[i + k] > hi)
                return 0;
            lo = 0x80;
            hi = 0xBF;
        }
        i += need + 1;
    }
    return 1;
}

/* Checks what rp_text_fold_into() stores in a small buffer: a whole-code-point prefix. */
static void check_truncated(const uint8_t *data, size_t size, const char *full, size_t fulllen)
{
    char small[16];
    size_t n = rp_text_fold_into((const char *)data, size, small, sizeof small);
    size_t kept = strlen(small);

    if (n != fulllen || kept >= sizeof small || memcmp(small, full, kept) != 0)
        __builtin_trap();
    if (!valid_utf8((const unsigned char *)small, kept))
        __builtin_trap();
    if (n < sizeof small && kept != n)
        __builtin_trap();
    /* Stopping early is only allowed when the next code point (≤ 4 bytes) and the NUL would
     * not have fit. */
    if (kept < n && kept + 4 < sizeof small)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n1, n2;
    char *once, *twice;

    once = rp_text_fold((const char *)data, size, &n1);
    if (once == NULL)
        return 0; /* Out of memory is a documented result, not a bug. */
    if (strlen(once) != n1 || !valid_utf8((const unsigned char *)once, n1))
        __builtin_trap();
    if (n1 > 0 && (once[0] == ' ' || once[n1 - 1] == ' '))
        __builtin_trap();
    if (strstr(once, "  ") != NULL)
        __builtin_trap();

    twice = rp_text_fold(once, n1, &n2);
    if (twice == NULL) {
        free(once);
        return 0;
    }
    if (n2 != n1 || memcmp(once, twice, n1) != 0)
        __builtin_trap();

    check_truncated(data, size, once, n1);
    free(once);
    free(twice);
    return 0;
}

#ifdef RP_FUZZ_STANDALONE
#include "standalone.h"
#endif
