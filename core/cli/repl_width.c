/*
 * repl_width.c — how much room text takes on a terminal, and how wide the terminal is, so the
 * REPL's tables fit it: UTF-8 read character by character, Persian and Arabic marks taking no
 * column, CJK taking two; the system's wcwidth() is not used, as it depends on the locale.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "repl.h"

#define ELLIPSIS "…" /* one column wide, three bytes */

typedef struct range {
    uint32_t lo, hi;
} range_t;

/* Marks that combine with the character before, joiners and direction marks: no column. */
static const range_t zero_width[] = {
    {0x0300, 0x036F},   {0x0483, 0x0489},   {0x0591, 0x05BD}, {0x05BF, 0x05BF},
    {0x05C1, 0x05C2},   {0x05C4, 0x05C5},   {0x05C7, 0x05C7}, {0x0610, 0x061A},
    {0x061C, 0x061C},   {0x064B, 0x065F},   {0x0670, 0x0670}, {0x06D6, 0x06DC},
    {0x06DF, 0x06E4},   {0x06E7, 0x06E8},   {0x06EA, 0x06ED}, {0x08D3, 0x08FF},
    {0x1AB0, 0x1AFF},   {0x1DC0, 0x1DFF},   {0x200B, 0x200F}, {0x202A, 0x202E},
    {0x2060, 0x2064},   {0x2066, 0x2069},   {0x20D0, 0x20FF}, {0xFE00, 0xFE0F},
    {0xFE20, 0xFE2F},   {0xFEFF, 0xFEFF},   {0xE0100, 0xE01EF},
};

/* East Asian wide and fullwidth characters, and the emoji blocks terminals draw wide. */
static const range_t double_width[] = {
    {0x1100, 0x115F},   {0x231A, 0x231B},   {0x2E80, 0x303E},   {0x3041, 0x33FF},
    {0x3400, 0x4DBF},   {0x4E00, 0x9FFF},   {0xA000, 0xA4CF},   {0xAC00, 0xD7A3},
    {0xF900, 0xFAFF},   {0xFE30, 0xFE4F},   {0xFF00, 0xFF60},   {0xFFE0, 0xFFE6},
    {0x1F300, 0x1F64F}, {0x1F900, 0x1F9FF}, {0x20000, 0x2FFFD}, {0x30000, 0x3FFFD},
};

static bool in(const range_t *r, size_t n, uint32_t c)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < r[mid].lo)
            hi = mid;
        else if (c > r[mid].hi)
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

/* The character at @p s: its length in bytes (1 for a byte that starts no valid sequence,
 * which then counts as one column) and its code point. */
static size_t decode(const unsigned char *s, uint32_t *cp)
{
    size_t n = 0;
    if (s[0] < 0x80)
        n = 1;
    else if ((s[0] & 0xE0) == 0xC0)
        n = 2;
    else if ((s[0] & 0xF0) == 0xE0)
        n = 3;
    else if ((s[0] & 0xF8) == 0xF0)
        n = 4;
    if (n == 0) {
        *cp = 0xFFFD;
        return 1;
    }
    uint32_t c = n == 1 ? s[0] : s[0] & (0x7F >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return 1;
        }
        c = c << 6 | (s[i] & 0x3F);
    }
    *cp = c;
    return n;
}

static size_t char_width(uint32_t c)
{
    if (in(zero_width, sizeof zero_width / sizeof *zero_width, c))
        return 0;
    if (in(double_width, sizeof double_width / sizeof *double_width, c))
        return 2;
    return 1;
}

size_t repl_text_width(const char *s)
{
    size_t w = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t c;
        p += decode(p, &c);
        w += char_width(c);
    }
    return w;
}

char *repl_text_cut(const char *s, size_t width)
{
    if (repl_text_width(s) <= width)
        return strdup(s);
    if (width == 0)
        return strdup("");
    /* Room for the mark; marks that combine with the last character kept stay with it. */
    size_t w = 0, keep = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (p[keep]) {
        uint32_t c;
        size_t n = decode(p + keep, &c), cw = char_width(c);
        if (w + cw > width - 1)
            break;
        w += cw;
        keep += n;
    }
    char *t = malloc(keep + sizeof ELLIPSIS);
    if (!t)
        return NULL;
    memcpy(t, s, keep);
    memcpy(t + keep, ELLIPSIS, sizeof ELLIPSIS);
    return t;
}

int repl_term_width(void)
{
    struct winsize ws;
    if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    const char *env = getenv("COLUMNS");
    char *end;
    long n = env ? strtol(env, &end, 10) : 0;
    if (env && *env && *end == '\0' && n > 0 && n <= 10000)
        return (int)n;
    return 80;
}
