/*
 * fuzz_json_text.c — libFuzzer target for the engine's JSON writer (core/text/jsontext.c):
 * whatever jansson reads (any value, NUL in strings allowed) is written byte for byte as
 * json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) writes it, and the first eight bytes read as a
 * double are written as jansson writes that real. The HTTP API's answers and the list pages
 * written straight from rows depend on the two agreeing.
 * With -DRP_FUZZ_STANDALONE it gets a main() that runs each file named on the command line once.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "rapport/jsontext.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const json_t *v, const char *what)
{
    char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    size_t n = 0;
    char *got = rp_json_text(v, &n);
    if (!want || !got || strcmp(want, got) != 0 || n != strlen(want)) {
        fprintf(stderr, "fuzz_json_text: %s differs:\n  jansson %s\n  ours    %s\n", what,
                want ? want : "(null)", got ? got : "(null)");
        abort();
    }
    free(want);
    free(got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= sizeof(double)) {
        double d;
        memcpy(&d, data, sizeof d);
        json_t *r = json_real(d); /* NULL for a value that is not finite */
        if (r)
            same(r, "a real");
        json_decref(r);
    }
    json_t *v = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (v)
        same(v, "a value");
    json_decref(v);
    return 0;
}

#ifdef RP_FUZZ_STANDALONE
#include "standalone.h"
#endif
