/*
 * standalone.h — a main() for fuzz targets built without libFuzzer (-DRP_FUZZ_STANDALONE):
 * runs LLVMFuzzerTestOneInput once on each file named on the command line, so ctest can run
 * every target over its seed corpus. Include it at the end of a target.
 */
#ifndef RP_FUZZ_STANDALONE_H
#define RP_FUZZ_STANDALONE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Reads the whole file @p path into a new buffer (free with free()); NULL on failure. */
static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        *len = (size_t)n;
    } else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        size_t len;
        uint8_t *buf = read_file(argv[i], &len);

        if (buf == NULL) {
            fprintf(stderr, "%s: cannot read\n", argv[i]);
            return 1;
        }
        LLVMFuzzerTestOneInput(buf, len);
        free(buf);
    }
    return 0;
}

#endif
