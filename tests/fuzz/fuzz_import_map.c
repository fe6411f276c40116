/*
 * fuzz_import_map.c — libFuzzer target for the column mapping of `rapport import` (--map,
 * --upsert-by, --strict; setup_columns and the rows it shapes in core/cli/io.c): the input's
 * first byte picks the options (bit 0: --strict; bits 1-2: --upsert-by none, email or id), the
 * rest of its first line is the --map file and the lines after it the CSV. A map that is not a
 * JSON object is refused as `rapport import` refuses it, with the line and column; any other
 * imports as import_harness.h checks: refused whole with a message, or each row stored or
 * reported bad, and the store holding exactly what was reported created.
 * Build with clang -fsanitize=fuzzer,address; with -DRP_FUZZ_STANDALONE it instead gets a main()
 * that runs each file named on the command line once (for compilers without libFuzzer).
 */
#include <stddef.h>
#include <stdint.h>

#include "import_harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const upsert[] = {NULL, "email", "id", NULL};
    import_opts_t o = {0};
    const uint8_t *nl;
    json_error_t je;
    size_t n;

    if (size == 0)
        return 0;
    o.strict = data[0] & 1;
    o.upsert_by = upsert[data[0] >> 1 & 3];
    nl = memchr(data + 1, '\n', size - 1);
    n = nl ? (size_t)(nl - data - 1) : size - 1;
    o.map = json_loadb((const char *)data + 1, n, 0, &je);
    if (!json_is_object(o.map)) {
        if (o.map == NULL && (je.line < 1 || je.text[0] == '\0'))
            __builtin_trap();
        json_decref(o.map);
        return 0;
    }
    n = nl ? (size_t)(nl - data + 1) : size;
    import_csv(&o, data + n, size - n);
    json_decref(o.map);
    return 0;
}

#ifdef RP_FUZZ_STANDALONE
#include "standalone.h"
#endif
