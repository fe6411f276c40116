/*
 * fuzz_csv.c — libFuzzer target for the CSV reader of `rapport import` (read_csv in
 * core/cli/io.c, over libcsv): any bytes as a CSV file of people either are refused whole with
 * a message naming the file and line (a quote in the wrong place, a field never closed, an empty
 * file, a header that fills no required field), or every row is stored or reported bad with
 * its reason, and the store holds exactly the rows reported created. See import_harness.h.
 * Build with clang -fsanitize=fuzzer,address; with -DRP_FUZZ_STANDALONE it instead gets a main()
 * that runs each file named on the command line once (for compilers without libFuzzer).
 */
#include <stddef.h>
#include <stdint.h>

#include "import_harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    import_opts_t o = {0};

    import_csv(&o, data, size);
    return 0;
}

#ifdef RP_FUZZ_STANDALONE
#include "standalone.h"
#endif
