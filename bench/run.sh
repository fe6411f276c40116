#!/usr/bin/env bash
# Runs every benchmark program built in $RAPPORT_BENCH_DIR (default build-release/bench), then
# the shell ones here (bench_*.sh), and prints what each reports. BENCH_N (or the first argument)
# is passed on as the record count, so a quick check can run small: BENCH_N=20000 bash bench/run.sh
set -euo pipefail

dir="${RAPPORT_BENCH_DIR:-build-release/bench}"
n="${1:-${BENCH_N:-}}"

if [ ! -d "$dir" ]; then
    echo "run.sh: no benchmark directory $dir (build with \`make bench\`)" >&2
    exit 1
fi

found=0
status=0
for prog in "$dir"/bench_*; do
    # CMake leaves other files beside the programs; only run executables.
    [ -f "$prog" ] && [ -x "$prog" ] || continue
    found=1
    echo "== $(basename "$prog")${n:+ (N=$n)}"
    if ! "$prog" ${n:+"$n"}; then
        echo "run.sh: $(basename "$prog") failed" >&2
        status=1
    fi
done

# The benchmarks written in shell (bench_mail.sh) live beside this file, not in the build folder;
# they run the binary the programs were built with.
for script in "$(dirname "$0")"/bench_*.sh; do
    [ -f "$script" ] || continue
    echo "== $(basename "$script")${n:+ (N=$n)}"
    if ! RAPPORT="${RAPPORT:-$dir/../rapport}" bash "$script" ${n:+"$n"}; then
        echo "run.sh: $(basename "$script") failed" >&2
        status=1
    fi
done

if [ "$found" = 0 ]; then
    echo "run.sh: no bench_* programs in $dir" >&2
    exit 1
fi
exit "$status"
