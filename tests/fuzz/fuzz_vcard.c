/*
 * fuzz_vcard.c — libFuzzer target for the vCard reader (plugins/operational/vcard.c): any bytes either
 * parse into cards whose values are UTF-8 text, or are refused with a reason that starts with
 * the line ("line N: …"); and a card written out and read back is read the same way ever
 * after (one round of writing is a fixed point), with exactly one card each time.
 * Build with clang -fsanitize=fuzzer,address; with -DRP_FUZZ_STANDALONE it instead gets a main()
 * that runs each file named on the command line once (for compilers without libFuzzer).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vcard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    json_t *cards;
} got_t;

static int keep(void *ud, json_t *card, long line)
{
    got_t *g = ud;
    if (line < 1)
        __builtin_trap();
    const char *k;
    json_t *v;
    json_object_foreach(card, k, v) {
        if (!json_is_string(v) || json_string_length(v) == 0 || k[0] == '_')
            __builtin_trap();
    }
    json_array_append(g->cards, card);
    return 0;
}

/* Writes @p card and reads it back: exactly one card, no refusal. Owned result. */
static json_t *rewrite(json_t *card)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    op_vcard_write(f, card, "urn:fuzz:1");
    fclose(f);
    got_t g = {json_array()};
    char why[256];
    if (op_vcard_parse(text, len, keep, &g, why, sizeof why) != 0 ||
        json_array_size(g.cards) != 1)
        __builtin_trap();
    free(text);
    json_t *c = json_incref(json_array_get(g.cards, 0));
    json_decref(g.cards);
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    got_t g = {json_array()};
    char why[256] = "";
    int rc = op_vcard_parse((const char *)data, size, keep, &g, why, sizeof why);
    if (rc != 0 && strncmp(why, "line ", 5) != 0)
        __builtin_trap();
    size_t i;
    json_t *card;
    json_array_foreach(g.cards, i, card) {
        json_t *once = rewrite(card), *twice = rewrite(once);
        if (!json_equal(once, twice))
            __builtin_trap();
        json_decref(once);
        json_decref(twice);
    }
    json_decref(g.cards);
    return 0;
}

#ifdef RP_FUZZ_STANDALONE
#include "standalone.h"
#endif
