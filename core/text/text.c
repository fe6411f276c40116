/*
 * text.c — folds UTF-8 text for search and duplicate detection: one code point at a time
 * through fixed tables (no locale, no ICU), then white space is trimmed and collapsed.
 */
#include "rapport/text.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLACEMENT 0xFFFDu

/*
 * U+00C0..U+024F folded to ASCII, "" where the letter stays as it is. Derived from Unicode 14:
 * the compatibility decomposition without its combining marks, lower-cased; letters with no
 * decomposition get the usual transliteration (æ ae, ð d, ø o, þ th, ß ss, đ d, ħ h, ı i, ĸ q,
 * ŀ l, ł l, ŉ n, ŋ n, œ oe, ŧ t, ǣ ǽ ae, ǿ o). Latin Extended-B letters without a decomposition
 * (ƀ, ɓ, ǝ, …) are not made ASCII: in the alphabets that use them the stroke or hook makes
 * another letter; latin_b_map only lower-cases their capitals.
 */
/* clang-format off */
static const char latin[0x250 - 0xC0][3] = {
    "a", "a", "a", "a", "a", "a", "ae", "c", /* U+00C0 */
    "e", "e", "e", "e", "i", "i", "i", "i", /* U+00C8 */
    "d", "n", "o", "o", "o", "o", "o", "", /* U+00D0 */
    "o", "u", "u", "u", "u", "y", "th", "ss", /* U+00D8 */
    "a", "a", "a", "a", "a", "a", "ae", "c", /* U+00E0 */
    "e", "e", "e", "e", "i", "i", "i", "i", /* U+00E8 */
    "d", "n", "o", "o", "o", "o", "o", "", /* U+00F0 */
    "o", "u", "u", "u", "u", "y", "th", "y", /* U+00F8 */
    "a", "a", "a", "a", "a", "a", "c", "c", /* U+0100 */
    "c", "c", "c", "c", "c", "c", "d", "d", /* U+0108 */
    "d", "d", "e", "e", "e", "e", "e", "e", /* U+0110 */
    "e", "e", "e", "e", "g", "g", "g", "g", /* U+0118 */
    "g", "g", "g", "g", "h", "h", "h", "h", /* U+0120 */
    "i", "i", "i", "i", "i", "i", "i", "i", /* U+0128 */
    "i", "i", "ij", "ij", "j", "j", "k", "k", /* U+0130 */
    "q", "l", "l", "l", "l", "l", "l", "l", /* U+0138 */
    "l", "l", "l", "n", "n", "n", "n", "n", /* U+0140 */
    "n", "n", "n", "n", "o", "o", "o", "o", /* U+0148 */
    "o", "o", "oe", "oe", "r", "r", "r", "r", /* U+0150 */
    "r", "r", "s", "s", "s", "s", "s", "s", /* U+0158 */
    "s", "s", "t", "t", "t", "t", "t", "t", /* U+0160 */
    "u", "u", "u", "u", "u", "u", "u", "u", /* U+0168 */
    "u", "u", "u", "u", "w", "w", "y", "y", /* U+0170 */
    "y", "z", "z", "z", "z", "z", "z", "s", /* U+0178 */
    "", "", "", "", "", "", "", "", /* U+0180 */
    "", "", "", "", "", "", "", "", /* U+0188 */
    "", "", "", "", "", "", "", "", /* U+0190 */
    "", "", "", "", "", "", "", "", /* U+0198 */
    "o", "o", "", "", "", "", "", "", /* U+01A0 */
    "", "", "", "", "", "", "", "u", /* U+01A8 */
    "u", "", "", "", "", "", "", "", /* U+01B0 */
    "", "", "", "", "", "", "", "", /* U+01B8 */
    "", "", "", "", "dz", "dz", "dz", "lj", /* U+01C0 */
    "lj", "lj", "nj", "nj", "nj", "a", "a", "i", /* U+01C8 */
    "i", "o", "o", "u", "u", "u", "u", "u", /* U+01D0 */
    "u", "u", "u", "u", "u", "", "a", "a", /* U+01D8 */
    "a", "a", "ae", "ae", "", "", "g", "g", /* U+01E0 */
    "k", "k", "o", "o", "o", "o", "", "", /* U+01E8 */
    "j", "dz", "dz", "dz", "g", "g", "", "", /* U+01F0 */
    "n", "n", "a", "a", "ae", "ae", "o", "o", /* U+01F8 */
    "a", "a", "a", "a", "e", "e", "e", "e", /* U+0200 */
    "i", "i", "i", "i", "o", "o", "o", "o", /* U+0208 */
    "r", "r", "r", "r", "u", "u", "u", "u", /* U+0210 */
    "s", "s", "t", "t", "", "", "h", "h", /* U+0218 */
    "", "", "", "", "", "", "a", "a", /* U+0220 */
    "e", "e", "o", "o", "o", "o", "o", "o", /* U+0228 */
    "o", "o", "y", "y", "", "", "", "", /* U+0230 */
    "", "", "", "", "", "", "", "", /* U+0238 */
    "", "", "", "", "", "", "", "", /* U+0240 */
    "", "", "", "", "", "", "", "", /* U+0248 */
};

/*
 * Latin Extended-B capitals with no decomposition, lower-cased (Ɓ→ɓ, Ɛ→ɛ, Ʒ→ʒ), and ǯ/Ǯ to ʒ as
 * their NFD form would fold. Sorted, for lookup().
 */
/* clang-format on */
static const uint16_t latin_b_map[][2] = {
    {0x181, 0x0253}, {0x182, 0x0183}, {0x184, 0x0185}, {0x186, 0x0254}, {0x187, 0x0188},
    {0x189, 0x0256}, {0x18A, 0x0257}, {0x18B, 0x018C}, {0x18E, 0x01DD}, {0x18F, 0x0259},
    {0x190, 0x025B}, {0x191, 0x0192}, {0x193, 0x0260}, {0x194, 0x0263}, {0x196, 0x0269},
    {0x197, 0x0268}, {0x198, 0x0199}, {0x19C, 0x026F}, {0x19D, 0x0272}, {0x19F, 0x0275},
    {0x1A2, 0x01A3}, {0x1A4, 0x01A5}, {0x1A6, 0x0280}, {0x1A7, 0x01A8}, {0x1A9, 0x0283},
    {0x1AC, 0x01AD}, {0x1AE, 0x0288}, {0x1B1, 0x028A}, {0x1B2, 0x028B}, {0x1B3, 0x01B4},
    {0x1B5, 0x01B6}, {0x1B7, 0x0292}, {0x1B8, 0x01B9}, {0x1BC, 0x01BD}, {0x1E4, 0x01E5},
    {0x1EE, 0x0292}, {0x1EF, 0x0292}, {0x1F6, 0x0195}, {0x1F7, 0x01BF}, {0x21C, 0x021D},
    {0x220, 0x019E}, {0x222, 0x0223}, {0x224, 0x0225}, {0x23A, 0x2C65}, {0x23B, 0x023C},
    {0x23D, 0x019A}, {0x23E, 0x2C66}, {0x241, 0x0242}, {0x243, 0x0180}, {0x244, 0x0289},
    {0x245, 0x028C}, {0x246, 0x0247}, {0x248, 0x0249}, {0x24A, 0x024B}, {0x24C, 0x024D},
    {0x24E, 0x024F},
};

/* U+1E00..U+1EFF (Latin Extended Additional, mostly Vietnamese) folded the same way. */
/* clang-format off */
static const char latin_add[0x1F00 - 0x1E00][3] = {
    "a", "a", "b", "b", "b", "b", "b", "b", /* U+1E00 */
    "c", "c", "d", "d", "d", "d", "d", "d", /* U+1E08 */
    "d", "d", "d", "d", "e", "e", "e", "e", /* U+1E10 */
    "e", "e", "e", "e", "e", "e", "f", "f", /* U+1E18 */
    "g", "g", "h", "h", "h", "h", "h", "h", /* U+1E20 */
    "h", "h", "h", "h", "i", "i", "i", "i", /* U+1E28 */
    "k", "k", "k", "k", "k", "k", "l", "l", /* U+1E30 */
    "l", "l", "l", "l", "l", "l", "m", "m", /* U+1E38 */
    "m", "m", "m", "m", "n", "n", "n", "n", /* U+1E40 */
    "n", "n", "n", "n", "o", "o", "o", "o", /* U+1E48 */
    "o", "o", "o", "o", "p", "p", "p", "p", /* U+1E50 */
    "r", "r", "r", "r", "r", "r", "r", "r", /* U+1E58 */
    "s", "s", "s", "s", "s", "s", "s", "s", /* U+1E60 */
    "s", "s", "t", "t", "t", "t", "t", "t", /* U+1E68 */
    "t", "t", "u", "u", "u", "u", "u", "u", /* U+1E70 */
    "u", "u", "u", "u", "v", "v", "v", "v", /* U+1E78 */
    "w", "w", "w", "w", "w", "w", "w", "w", /* U+1E80 */
    "w", "w", "x", "x", "x", "x", "y", "y", /* U+1E88 */
    "z", "z", "z", "z", "z", "z", "h", "t", /* U+1E90 */
    "w", "y", "a", "s", "", "", "ss", "", /* U+1E98 */
    "a", "a", "a", "a", "a", "a", "a", "a", /* U+1EA0 */
    "a", "a", "a", "a", "a", "a", "a", "a", /* U+1EA8 */
    "a", "a", "a", "a", "a", "a", "a", "a", /* U+1EB0 */
    "e", "e", "e", "e", "e", "e", "e", "e", /* U+1EB8 */
    "e", "e", "e", "e", "e", "e", "e", "e", /* U+1EC0 */
    "i", "i", "i", "i", "o", "o", "o", "o", /* U+1EC8 */
    "o", "o", "o", "o", "o", "o", "o", "o", /* U+1ED0 */
    "o", "o", "o", "o", "o", "o", "o", "o", /* U+1ED8 */
    "o", "o", "o", "o", "u", "u", "u", "u", /* U+1EE0 */
    "u", "u", "u", "u", "u", "u", "u", "u", /* U+1EE8 */
    "u", "u", "y", "y", "y", "y", "y", "y", /* U+1EF0 */
    "y", "y", "", "", "", "", "", "", /* U+1EF8 */
};

/*
 * Arabic presentation forms, U+FB50..U+FBFF and U+FE70..U+FEFF: the letters each stands for
 * (its compatibility decomposition without the space of the isolated harakat), 0 where none.
 * They reach a CRM through text copied out of PDFs and old systems; the letters are folded
 * again, so ﻳ becomes ی like ي does.
 */
static const uint16_t arabic_pf_a[0xFC00 - 0xFB50][2] = {
    {0x0671, 0x0000}, {0x0671, 0x0000}, {0x067B, 0x0000}, {0x067B, 0x0000}, /* U+FB50 */
    {0x067B, 0x0000}, {0x067B, 0x0000}, {0x067E, 0x0000}, {0x067E, 0x0000}, /* U+FB54 */
    {0x067E, 0x0000}, {0x067E, 0x0000}, {0x0680, 0x0000}, {0x0680, 0x0000}, /* U+FB58 */
    {0x0680, 0x0000}, {0x0680, 0x0000}, {0x067A, 0x0000}, {0x067A, 0x0000}, /* U+FB5C */
    {0x067A, 0x0000}, {0x067A, 0x0000}, {0x067F, 0x0000}, {0x067F, 0x0000}, /* U+FB60 */
    {0x067F, 0x0000}, {0x067F, 0x0000}, {0x0679, 0x0000}, {0x0679, 0x0000}, /* U+FB64 */
    {0x0679, 0x0000}, {0x0679, 0x0000}, {0x06A4, 0x0000}, {0x06A4, 0x0000}, /* U+FB68 */
    {0x06A4, 0x0000}, {0x06A4, 0x0000}, {0x06A6, 0x0000}, {0x06A6, 0x0000}, /* U+FB6C */
    {0x06A6, 0x0000}, {0x06A6, 0x0000}, {0x0684, 0x0000}, {0x0684, 0x0000}, /* U+FB70 */
    {0x0684, 0x0000}, {0x0684, 0x0000}, {0x0683, 0x0000}, {0x0683, 0x0000}, /* U+FB74 */
    {0x0683, 0x0000}, {0x0683, 0x0000}, {0x0686, 0x0000}, {0x0686, 0x0000}, /* U+FB78 */
    {0x0686, 0x0000}, {0x0686, 0x0000}, {0x0687, 0x0000}, {0x0687, 0x0000}, /* U+FB7C */
    {0x0687, 0x0000}, {0x0687, 0x0000}, {0x068D, 0x0000}, {0x068D, 0x0000}, /* U+FB80 */
    {0x068C, 0x0000}, {0x068C, 0x0000}, {0x068E, 0x0000}, {0x068E, 0x0000}, /* U+FB84 */
    {0x0688, 0x0000}, {0x0688, 0x0000}, {0x0698, 0x0000}, {0x0698, 0x0000}, /* U+FB88 */
    {0x0691, 0x0000}, {0x0691, 0x0000}, {0x06A9, 0x0000}, {0x06A9, 0x0000}, /* U+FB8C */
    {0x06A9, 0x0000}, {0x06A9, 0x0000}, {0x06AF, 0x0000}, {0x06AF, 0x0000}, /* U+FB90 */
    {0x06AF, 0x0000}, {0x06AF, 0x0000}, {0x06B3, 0x0000}, {0x06B3, 0x0000}, /* U+FB94 */
    {0x06B3, 0x0000}, {0x06B3, 0x0000}, {0x06B1, 0x0000}, {0x06B1, 0x0000}, /* U+FB98 */
    {0x06B1, 0x0000}, {0x06B1, 0x0000}, {0x06BA, 0x0000}, {0x06BA, 0x0000}, /* U+FB9C */
    {0x06BB, 0x0000}, {0x06BB, 0x0000}, {0x06BB, 0x0000}, {0x06BB, 0x0000}, /* U+FBA0 */
    {0x06C0, 0x0000}, {0x06C0, 0x0000}, {0x06C1, 0x0000}, {0x06C1, 0x0000}, /* U+FBA4 */
    {0x06C1, 0x0000}, {0x06C1, 0x0000}, {0x06BE, 0x0000}, {0x06BE, 0x0000}, /* U+FBA8 */
    {0x06BE, 0x0000}, {0x06BE, 0x0000}, {0x06D2, 0x0000}, {0x06D2, 0x0000}, /* U+FBAC */
    {0x06D3, 0x0000}, {0x06D3, 0x0000}, {0x0000, 0x0000}, {0x0000, 0x0000}, /* U+FBB0 */
    {0x0000, 0x0000}, {0x0000, 0x0000}, {0x0000, 0x0000}, {0x0000, 0x0000}, /* U+FBB4 */
    {0x0000, 0x0000}, {0x0000, 0x0000}, {0x0000, 0x0000}, {0x0000, 0x0000}, /* U+FBB8 */
    {0x0000, 0x0000}, {0x0000, 0x0000}, {0x0000, 0x0000}, {0x0000, 0x0000}, /* U+FBBC */
    {0x0000, 0x0000}, {0x0000, 0x0000}, {0x0000, 0x0000}, {0x0000, 0x0000}, /* U+FBC0 */
    {0x0000, 0x0000}, {0x0000, 0x0000}, {0x0000, 0x0000}, {0x0000, 0x0000}, /* U+FBC4 */
    {0x0000, 0x0000}, {0x0000, 0x0000}, {0x0000, 0x0000}, {0x0000, 0x0000}, /* U+FBC8 */
    {0x0000, 0x0000}, {0x0000, 0x0000}, {0x0000, 0x0000}, {0x0000, 0x0000}, /* U+FBCC */
    {0x0000, 0x0000}, {0x0000, 0x0000}, {0x0000, 0x0000}, {0x06AD, 0x0000}, /* U+FBD0 */
    {0x06AD, 0x0000}, {0x06AD, 0x0000}, {0x06AD, 0x0000}, {0x06C7, 0x0000}, /* U+FBD4 */
    {0x06C7, 0x0000}, {0x06C6, 0x0000}, {0x06C6, 0x0000}, {0x06C8, 0x0000}, /* U+FBD8 */
    {0x06C8, 0x0000}, {0x0677, 0x0000}, {0x06CB, 0x0000}, {0x06CB, 0x0000}, /* U+FBDC */
    {0x06C5, 0x0000}, {0x06C5, 0x0000}, {0x06C9, 0x0000}, {0x06C9, 0x0000}, /* U+FBE0 */
    {0x06D0, 0x0000}, {0x06D0, 0x0000}, {0x06D0, 0x0000}, {0x06D0, 0x0000}, /* U+FBE4 */
    {0x0649, 0x0000}, {0x0649, 0x0000}, {0x0626, 0x0627}, {0x0626, 0x0627}, /* U+FBE8 */
    {0x0626, 0x06D5}, {0x0626, 0x06D5}, {0x0626, 0x0648}, {0x0626, 0x0648}, /* U+FBEC */
    {0x0626, 0x06C7}, {0x0626, 0x06C7}, {0x0626, 0x06C6}, {0x0626, 0x06C6}, /* U+FBF0 */
    {0x0626, 0x06C8}, {0x0626, 0x06C8}, {0x0626, 0x06D0}, {0x0626, 0x06D0}, /* U+FBF4 */
    {0x0626, 0x06D0}, {0x0626, 0x0649}, {0x0626, 0x0649}, {0x0626, 0x0649}, /* U+FBF8 */
    {0x06CC, 0x0000}, {0x06CC, 0x0000}, {0x06CC, 0x0000}, {0x06CC, 0x0000}, /* U+FBFC */
};
static const uint16_t arabic_pf_b[0xFF00 - 0xFE70][2] = {
    {0x064B, 0x0000}, {0x0640, 0x064B}, {0x064C, 0x0000}, {0x0000, 0x0000}, /* U+FE70 */
    {0x064D, 0x0000}, {0x0000, 0x0000}, {0x064E, 0x0000}, {0x0640, 0x064E}, /* U+FE74 */
    {0x064F, 0x0000}, {0x0640, 0x064F}, {0x0650, 0x0000}, {0x0640, 0x0650}, /* U+FE78 */
    {0x0651, 0x0000}, {0x0640, 0x0651}, {0x0652, 0x0000}, {0x0640, 0x0652}, /* U+FE7C */
    {0x0621, 0x0000}, {0x0622, 0x0000}, {0x0622, 0x0000}, {0x0623, 0x0000}, /* U+FE80 */
    {0x0623, 0x0000}, {0x0624, 0x0000}, {0x0624, 0x0000}, {0x0625, 0x0000}, /* U+FE84 */
    {0x0625, 0x0000}, {0x0626, 0x0000}, {0x0626, 0x0000}, {0x0626, 0x0000}, /* U+FE88 */
    {0x0626, 0x0000}, {0x0627, 0x0000}, {0x0627, 0x0000}, {0x0628, 0x0000}, /* U+FE8C */
    {0x0628, 0x0000}, {0x0628, 0x0000}, {0x0628, 0x0000}, {0x0629, 0x0000}, /* U+FE90 */
    {0x0629, 0x0000}, {0x062A, 0x0000}, {0x062A, 0x0000}, {0x062A, 0x0000}, /* U+FE94 */
    {0x062A, 0x0000}, {0x062B, 0x0000}, {0x062B, 0x0000}, {0x062B, 0x0000}, /* U+FE98 */
    {0x062B, 0x0000}, {0x062C, 0x0000}, {0x062C, 0x0000}, {0x062C, 0x0000}, /* U+FE9C */
    {0x062C, 0x0000}, {0x062D, 0x0000}, {0x062D, 0x0000}, {0x062D, 0x0000}, /* U+FEA0 */
    {0x062D, 0x0000}, {0x062E, 0x0000}, {0x062E, 0x0000}, {0x062E, 0x0000}, /* U+FEA4 */
    {0x062E, 0x0000}, {0x062F, 0x0000}, {0x062F, 0x0000}, {0x0630, 0x0000}, /* U+FEA8 */
    {0x0630, 0x0000}, {0x0631, 0x0000}, {0x0631, 0x0000}, {0x0632, 0x0000}, /* U+FEAC */
    {0x0632, 0x0000}, {0x0633, 0x0000}, {0x0633, 0x0000}, {0x0633, 0x0000}, /* U+FEB0 */
    {0x0633, 0x0000}, {0x0634, 0x0000}, {0x0634, 0x0000}, {0x0634, 0x0000}, /* U+FEB4 */
    {0x0634, 0x0000}, {0x0635, 0x0000}, {0x0635, 0x0000}, {0x0635, 0x0000}, /* U+FEB8 */
    {0x0635, 0x0000}, {0x0636, 0x0000}, {0x0636, 0x0000}, {0x0636, 0x0000}, /* U+FEBC */
    {0x0636, 0x0000}, {0x0637, 0x0000}, {0x0637, 0x0000}, {0x0637, 0x0000}, /* U+FEC0 */
    {0x0637, 0x0000}, {0x0638, 0x0000}, {0x0638, 0x0000}, {0x0638, 0x0000}, /* U+FEC4 */
    {0x0638, 0x0000}, {0x0639, 0x0000}, {0x0639, 0x0000}, {0x0639, 0x0000}, /* U+FEC8 */
    {0x0639, 0x0000}, {0x063A, 0x0000}, {0x063A, 0x0000}, {0x063A, 0x0000}, /* U+FECC */
    {0x063A, 0x0000}, {0x0641, 0x0000}, {0x0641, 0x0000}, {0x0641, 0x0000}, /* U+FED0 */
    {0x0641, 0x0000}, {0x0642, 0x0000}, {0x0642, 0x0000}, {0x0642, 0x0000}, /* U+FED4 */
    {0x0642, 0x0000}, {0x0643, 0x0000}, {0x0643, 0x0000}, {0x0643, 0x0000}, /* U+FED8 */
    {0x0643, 0x0000}, {0x0644, 0x0000}, {0x0644, 0x0000}, {0x0644, 0x0000}, /* U+FEDC */
    {0x0644, 0x0000}, {0x0645, 0x0000}, {0x0645, 0x0000}, {0x0645, 0x0000}, /* U+FEE0 */
    {0x0645, 0x0000}, {0x0646, 0x0000}, {0x0646, 0x0000}, {0x0646, 0x0000}, /* U+FEE4 */
    {0x0646, 0x0000}, {0x0647, 0x0000}, {0x0647, 0x0000}, {0x0647, 0x0000}, /* U+FEE8 */
    {0x0647, 0x0000}, {0x0648, 0x0000}, {0x0648, 0x0000}, {0x0649, 0x0000}, /* U+FEEC */
    {0x0649, 0x0000}, {0x064A, 0x0000}, {0x064A, 0x0000}, {0x064A, 0x0000}, /* U+FEF0 */
    {0x064A, 0x0000}, {0x0644, 0x0622}, {0x0644, 0x0622}, {0x0644, 0x0623}, /* U+FEF4 */
    {0x0644, 0x0623}, {0x0644, 0x0625}, {0x0644, 0x0625}, {0x0644, 0x0627}, /* U+FEF8 */
    {0x0644, 0x0627}, {0x0000, 0x0000}, {0x0000, 0x0000}, {0x0000, 0x0000}, /* U+FEFC */
};
/* clang-format on */

static int one(unsigned cp, unsigned out[RP_TEXT_FOLD_MAX])
{
    out[0] = cp;
    return 1;
}

/* Writes the ASCII string @p s (at most RP_TEXT_FOLD_MAX letters) as code points. */
static int ascii(const char *s, unsigned out[RP_TEXT_FOLD_MAX])
{
    int n = 0;

    while (s[n] != '\0' && n < RP_TEXT_FOLD_MAX) {
        out[n] = (unsigned char)s[n];
        n++;
    }
    return n;
}

/* The target of @p cp in a sorted pair table of @p n rows, or 0 when it is not there. */
static unsigned lookup(const uint16_t (*map)[2], size_t n, unsigned cp)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (map[mid][0] == cp)
            return map[mid][1];
        if (map[mid][0] < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

#define LOOKUP(map, cp) lookup((map), sizeof(map) / sizeof((map)[0]), (cp))

static int fold_ascii(unsigned cp, unsigned out[RP_TEXT_FOLD_MAX])
{
    /* Controls, NUL included, separate words: a C string cannot hold NUL, and a stray control
     * byte inside a name is noise, not a letter. */
    if (cp < 0x20 || cp == 0x7F)
        return one(' ', out);
    if (cp >= 'A' && cp <= 'Z')
        return one(cp + ('a' - 'A'), out);
    return one(cp, out);
}

/* U+0080..U+024F. */
static int fold_latin(unsigned cp, unsigned out[RP_TEXT_FOLD_MAX])
{
    unsigned to;

    if (cp <= 0xA0)
        return one(' ', out); /* C1 controls (NEL among them) and the no-break space. */
    if (cp == 0xAD)
        return 0; /* Soft hyphen: invisible, may sit inside any word. */
    if (cp == 0xB5)
        return one(0x3BC, out); /* Micro sign, as Unicode case folding: Greek mu. */
    if (cp >= 0xC0 && latin[cp - 0xC0][0] != '\0')
        return ascii(latin[cp - 0xC0], out);
    if (cp >= 0x180 && (to = LOOKUP(latin_b_map, cp)) != 0)
        return one(to, out);
    return one(cp, out);
}

/* Greek letters that do not fold by the +0x20 / odd-even rules of fold_greek(), sorted. */
static const uint16_t greek_map[][2] = {
    {0x37F, 0x3F3}, {0x386, 0x3B1}, {0x388, 0x3B5}, {0x389, 0x3B7}, {0x38A, 0x3B9}, {0x38C, 0x3BF},
    {0x38E, 0x3C5}, {0x38F, 0x3C9}, {0x390, 0x3B9}, {0x3AA, 0x3B9}, {0x3AB, 0x3C5}, {0x3AC, 0x3B1},
    {0x3AD, 0x3B5}, {0x3AE, 0x3B7}, {0x3AF, 0x3B9}, {0x3B0, 0x3C5}, {0x3C2, 0x3C3}, {0x3CA, 0x3B9},
    {0x3CB, 0x3C5}, {0x3CC, 0x3BF}, {0x3CD, 0x3C5}, {0x3CE, 0x3C9}, {0x3CF, 0x3D7}, {0x3D0, 0x3B2},
    {0x3D1, 0x3B8}, {0x3D2, 0x3C5}, {0x3D3, 0x3C5}, {0x3D4, 0x3C5}, {0x3D5, 0x3C6}, {0x3D6, 0x3C0},
    {0x3F0, 0x3BA}, {0x3F1, 0x3C1}, {0x3F4, 0x3B8}, {0x3F5, 0x3B5}, {0x3F7, 0x3F8}, {0x3F9, 0x3F2},
    {0x3FA, 0x3FB}, {0x3FD, 0x37B}, {0x3FE, 0x37C}, {0x3FF, 0x37D},
};

/*
 * U+0370..U+03FF: lower case without tonos or dialytika, since Greek users search unaccented,
 * and final sigma as σ, since "ΟΔΟΣ" lower-cases to σ where typed text has ς.
 */
static int fold_greek(unsigned cp, unsigned out[RP_TEXT_FOLD_MAX])
{
    unsigned to = LOOKUP(greek_map, cp);

    if (to != 0)
        return one(to, out);
    if (cp == 0x370 || cp == 0x372 || cp == 0x376)
        return one(cp + 1, out);
    /* U+03A2 is unassigned; shifting it would make it ς, which is not a fixed point. */
    if (cp >= 0x391 && cp <= 0x3A9 && cp != 0x3A2)
        return one(cp + 0x20, out);
    if (cp >= 0x3D8 && cp <= 0x3EF && (cp & 1) == 0)
        return one(cp + 1, out);
    return one(cp, out);
}

/* U+0400..U+052F. */
static int fold_cyrillic(unsigned cp, unsigned out[RP_TEXT_FOLD_MAX])
{
    /* Russian writes ё as е more often than not; ѐ and ѝ are е and и with a stress mark. */
    if (cp == 0x400 || cp == 0x401 || cp == 0x450 || cp == 0x451)
        return one(0x435, out);
    if (cp == 0x40D || cp == 0x45D)
        return one(0x438, out);
    if (cp < 0x410)
        return one(cp + 0x50, out);
    if (cp < 0x430)
        return one(cp + 0x20, out);
    if (cp >= 0x483 && cp <= 0x489)
        return 0; /* Combining titlo and other marks. */
    if ((cp >= 0x460 && cp <= 0x481) || (cp >= 0x48A && cp <= 0x4BF) || cp >= 0x4D0)
        return one(cp + ((cp & 1) == 0), out);
    if (cp == 0x4C0)
        return one(0x4CF, out);
    if (cp >= 0x4C1 && cp <= 0x4CE)
        return one(cp + (cp & 1), out);
    return one(cp, out);
}

/* U+0590..U+05FF: Hebrew points and cantillation go, as harakat do. */
static int fold_hebrew(unsigned cp, unsigned out[RP_TEXT_FOLD_MAX])
{
    if ((cp >= 0x591 && cp <= 0x5BD) || cp == 0x5BF || cp == 0x5C1 || cp == 0x5C2 || cp == 0x5C4 ||
        cp == 0x5C5 || cp == 0x5C7)
        return 0;
    return one(cp, out);
}

/*
 * U+0600..U+06FF. Persian and Arabic keyboards produce different code points for the same
 * letter (ي/ی, ك/ک), and writers vary in hamza seats, ta marbuta and diacritics; all of these
 * fold to the Persian form. A letter with hamza folds like its NFD form would, since the hamza
 * (U+0654/U+0655) is among the harakat that are dropped.
 */
static const uint16_t arabic_map[][2] = {
    {0x622, 0x627}, /* آ alef with madda above → ا */
    {0x623, 0x627}, /* أ alef with hamza above → ا */
    {0x624, 0x648}, /* ؤ waw with hamza above → و */
    {0x625, 0x627}, /* إ alef with hamza below → ا */
    {0x626, 0x6CC}, /* ئ yeh with hamza above → ی */
    {0x629, 0x647}, /* ة teh marbuta → ه */
    {0x643, 0x6A9}, /* ك Arabic kaf → ک */
    {0x649, 0x6CC}, /* ى alef maksura → ی */
    {0x64A, 0x6CC}, /* ي Arabic yeh → ی */
    {0x671, 0x627}, /* ٱ alef wasla → ا */
    {0x672, 0x627}, /* ٲ alef with wavy hamza above → ا */
    {0x673, 0x627}, /* ٳ alef with wavy hamza below → ا */
    {0x675, 0x627}, /* ٵ high hamza alef → ا */
    {0x6C0, 0x647}, /* ۀ heh with yeh above → ه */
    {0x6C2, 0x6C1}, /* ۂ heh goal with hamza above → ہ */
    {0x6D3, 0x6D2}, /* ۓ yeh barree with hamza above → ے */
};

static int fold_arabic(unsigned cp, unsigned out[RP_TEXT_FOLD_MAX])
{
    unsigned to = LOOKUP(arabic_map, cp);

    if (to != 0)
        return one(to, out);
    if (cp >= 0x660 && cp <= 0x669)
        return one('0' + (cp - 0x660), out);
    if (cp >= 0x6F0 && cp <= 0x6F9)
        return one('0' + (cp - 0x6F0), out);
    /* Tatweel only stretches a joined letter; the rest are harakat and Quranic marks. */
    if (cp == 0x640 || cp == 0x670 || (cp >= 0x610 && cp <= 0x61A) ||
        (cp >= 0x64B && cp <= 0x65F) || (cp >= 0x6D6 && cp <= 0x6DC) ||
        (cp >= 0x6DF && cp <= 0x6E4) || (cp >= 0x6E7 && cp <= 0x6E8) ||
        (cp >= 0x6EA && cp <= 0x6ED))
        return 0;
    return one(cp, out);
}

/* Folds the (at most two) letters a presentation form stands for. */
static int fold_pair(const uint16_t pair[2], unsigned cp, unsigned out[RP_TEXT_FOLD_MAX])
{
    unsigned tmp[RP_TEXT_FOLD_MAX];
    int n = 0;

    if (pair[0] == 0)
        return one(cp, out);
    for (int i = 0; i < 2 && pair[i] != 0; i++) {
        /* Arabic letters fold to at most one code point each, so two always fit. */
        int k = rp_text_fold_cp(pair[i], tmp);
        for (int j = 0; j < k && n < RP_TEXT_FOLD_MAX; j++)
            out[n++] = tmp[j];
    }
    return n;
}

/* White space and the invisible format characters of U+1680..U+206F. */
static int fold_punct(unsigned cp, unsigned out[RP_TEXT_FOLD_MAX])
{
    if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200B) || cp == 0x2028 || cp == 0x2029 ||
        cp == 0x202F || cp == 0x205F)
        return one(' ', out);
    /* Joiners, direction marks and bidi controls change how text looks, never what it says:
     * some people type the ZWNJ inside می‌خواهم, some do not. */
    if ((cp >= 0x200C && cp <= 0x200F) || (cp >= 0x202A && cp <= 0x202E) || cp == 0x2060 ||
        (cp >= 0x2066 && cp <= 0x2069))
        return 0;
    return one(cp, out);
}

int rp_text_fold_cp(unsigned cp, unsigned out[RP_TEXT_FOLD_MAX])
{
    if (cp < 0x80)
        return fold_ascii(cp, out);
    if (cp < 0x250)
        return fold_latin(cp, out);
    if (cp < 0x300)
        return one(cp, out);
    if (cp < 0x370)
        return 0; /* Combining diacritical marks: text in NFD folds like NFC. */
    if (cp < 0x400)
        return fold_greek(cp, out);
    if (cp < 0x530)
        return fold_cyrillic(cp, out);
    if (cp >= 0x590 && cp < 0x600)
        return fold_hebrew(cp, out);
    if (cp >= 0x600 && cp < 0x700)
        return fold_arabic(cp, out);
    if ((cp >= 0x1AB0 && cp <= 0x1AFF) || (cp >= 0x1DC0 && cp <= 0x1DFF) ||
        (cp >= 0x20D0 && cp <= 0x20FF) || (cp >= 0xFE20 && cp <= 0xFE2F))
        return 0; /* The other blocks of combining diacritical marks. */
    if (cp >= 0x1E00 && cp < 0x1F00 && latin_add[cp - 0x1E00][0] != '\0')
        return ascii(latin_add[cp - 0x1E00], out);
    if (cp >= 0x1EFA && cp <= 0x1EFF)
        return one(cp | 1, out); /* Middle Welsh ll, v and y with loop: case only. */
    if (cp >= 0x1680 && cp < 0x2070)
        return fold_punct(cp, out);
    if (cp == 0x2126)
        return one(0x3C9, out); /* Ohm sign, canonically Ω. */
    if (cp == 0x212A || cp == 0x212B)
        return one(cp == 0x212A ? 'k' : 'a', out); /* Kelvin and Ångström signs. */
    if (cp == 0x3000)
        return one(' ', out);
    if (cp >= 0xD800 && cp <= 0xDFFF)
        return one(REPLACEMENT, out);
    if (cp >= 0xFB50 && cp < 0xFC00)
        return fold_pair(arabic_pf_a[cp - 0xFB50], cp, out);
    if (cp == 0xFEFF)
        return 0; /* Byte order mark, or the old zero-width no-break space. */
    if (cp >= 0xFE70 && cp < 0xFF00) {
        /* The isolated and medial harakat (U+FE70..U+FE7F) stand for marks that are dropped;
         * the unassigned U+FE75 and the tail fragment U+FE73 have no letters and stay. */
        return fold_pair(arabic_pf_b[cp - 0xFE70], cp, out);
    }
    if (cp >= 0xFF01 && cp <= 0xFF5E)
        return fold_ascii(cp - 0xFEE0, out); /* Fullwidth ASCII, as CJK keyboards type it. */
    if (cp > 0x10FFFF)
        return one(REPLACEMENT, out);
    return one(cp, out);
}

/*
 * Decodes one code point from @p s (@p n ≥ 1 bytes). A maximal ill-formed subsequence (a lead
 * byte and the continuation bytes that could still have belonged to it) becomes one U+FFFD.
 * Returns the number of bytes consumed, at least 1.
 */
static size_t utf8_decode(const unsigned char *s, size_t n, unsigned *cp)
{
    unsigned c = s[0], v, lo = 0x80, hi = 0xBF;
    size_t need;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        v = c & 0x0F;
        /* No overlong forms below U+0800, no surrogates. */
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        v = c & 0x07;
        /* No overlong forms below U+10000, nothing above U+10FFFF. */
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        *cp = REPLACEMENT;
        return 1;
    }
    for (size_t i = 1; i <= need; i++) {
        if (i >= n || s[i] < lo || s[i] > hi) {
            *cp = REPLACEMENT;
            return i;
        }
        v = (v << 6) | (s[i] & 0x3Fu);
        lo = 0x80;
        hi = 0xBF;
    }
    *cp = v;
    return need + 1;
}

static size_t utf8_encode(unsigned cp, char buf[4])
{
    if (cp < 0x80) {
        buf[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        buf[0] = (char)(0xC0 | (cp >> 6));
        buf[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        buf[0] = (char)(0xE0 | (cp >> 12));
        buf[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    buf[0] = (char)(0xF0 | (cp >> 18));
    buf[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    buf[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    buf[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The output side of rp_text_fold_into(): counts every byte, stores those that fit. */
typedef struct sink {
    char *out;
    size_t cap;
    size_t len;  /* Bytes of folded text so far, stored or not. */
    size_t kept; /* Bytes stored in out. */
} sink_t;

static void sink_put(sink_t *k, unsigned cp)
{
    char buf[4];
    size_t n = utf8_encode(cp, buf);

    /* Once one code point did not fit, nothing after it is stored either, so what is stored
     * is always a prefix of whole code points. */
    if (k->kept == k->len && k->cap > 0 && n < k->cap - k->kept) {
        memcpy(k->out + k->kept, buf, n);
        k->kept += n;
    }
    k->len += n;
}

size_t rp_text_fold_into(const char *s, size_t len, char *out, size_t cap)
{
    sink_t k = {out, cap, 0, 0};
    const unsigned char *p = (const unsigned char *)s;
    int owe_space = 0;

    for (size_t i = 0; i < len;) {
        unsigned cp, f[RP_TEXT_FOLD_MAX];
        int n;

        i += utf8_decode(p + i, len - i, &cp);
        n = rp_text_fold_cp(cp, f);
        for (int j = 0; j < n; j++) {
            /* A space is only written before the next letter, which trims both ends and
             * collapses runs, also across dropped characters such as a lone ZWNJ. */
            if (f[j] == ' ') {
                owe_space = k.len > 0;
                continue;
            }
            if (owe_space)
                sink_put(&k, ' ');
            owe_space = 0;
            sink_put(&k, f[j]);
        }
    }
    if (cap > 0)
        out[k.kept] = '\0';
    return k.len;
}

char *rp_text_fold(const char *s, size_t len, size_t *outlen)
{
    size_t cap, n;
    char *out, *bigger;

    if (len > SIZE_MAX - 16)
        return NULL;
    /* Folding seldom lengthens text (ß→ss and invalid bytes do), so one pass usually does. */
    cap = len + 16;
    out = malloc(cap);
    if (out == NULL)
        return NULL;
    n = rp_text_fold_into(s, len, out, cap);
    if (n >= cap) {
        bigger = realloc(out, n + 1);
        if (bigger == NULL) {
            free(out);
            return NULL;
        }
        out = bigger;
        rp_text_fold_into(s, len, out, n + 1);
    }
    if (outlen != NULL)
        *outlen = n;
    return out;
}

char *rp_text_printable(const char *s, bool keep_lines)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    /* At worst every byte becomes "\ddd" (C1's two bytes "\194\155": 8 for 2). */
    char *out = malloc(n * 4 + 1), *o = out;
    if (!out)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool c0 = *p < 0x20 && !(keep_lines && (*p == '\n' || *p == '\t'));
        bool c1 = *p == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F;
        if (c0 || *p == 0x7F) {
            o += sprintf(o, "\\%03u", *p);
        } else if (c1) {
            o += sprintf(o, "\\%03u\\%03u", p[0], p[1]);
            p++;
        } else {
            *o++ = (char)*p;
        }
    }
    *o = '\0';
    return out;
}
