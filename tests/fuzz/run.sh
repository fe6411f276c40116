#!/usr/bin/env bash
# run.sh — builds the libFuzzer targets (clang, -DRP_FUZZ=ON: the core instrumented for coverage
# under ASan + UBSan) into build-fuzz/ and runs each for a fixed time from its seed corpus in
# tests/fuzz/corpus/<target>/, then prints per target the inputs run, the rate and the coverage
# (libFuzzer's cov: edges and ft: features). Exits 1 if any target crashes, leaks, hangs or
# fails a check; the input that did it is left in build-fuzz/fuzz-artifacts/.
#
#   FUZZ_SECONDS=60   the budget of each target, in seconds
#   FUZZ_TARGETS=…    the targets to run (space-separated names; default: all fuzz_*.c)
#   FUZZ_MERGE=1      afterwards, merge the new inputs that add coverage into the seed corpus
#   FUZZ_BUILD=…      the build folder (default build-fuzz); JOBS for the build
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${FUZZ_SECONDS:-60}
build=${FUZZ_BUILD:-build-fuzz}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
targets=${FUZZ_TARGETS:-$(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//' | tr '\n' ' ')}

if ! command -v clang >/dev/null; then
    echo "run.sh: clang is missing: install the packages of debian-packages.txt (make deps)" >&2
    exit 1
fi
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DRP_FUZZ=ON >/dev/null
cmake --build "$build" -j "$jobs" --target fuzz

artifacts="$build/fuzz-artifacts"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$artifacts"
rm -f "$artifacts"/*
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

failed=""
summary=""
for t in $targets; do
    bin="$build/tests/fuzz/$t"
    seeds="tests/fuzz/corpus/$t"
    new="$scratch/$t"
    log="$artifacts/$t.log"
    mkdir -p "$new"
    echo "== $t: ${seconds}s from $(ls "$seeds" | wc -l) seeds"
    # New inputs go to the first folder (scratch); the seeds are only read. The targets print
    # (a bad import row goes to stderr): -close_fd_mask=2 keeps that out of the log, while
    # libFuzzer and the sanitizers still report.
    status=0
    "$bin" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 -close_fd_mask=2 \
        -artifact_prefix="$artifacts/$t-" "$new" "$seeds" > "$log" 2>&1 || status=$?
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")
    if [ "$status" != 0 ]; then
        failed="$failed $t"
        echo "FAIL: $t exited $status; the log is $log:" >&2
        grep -E 'ERROR|SUMMARY|Test unit written|deadly signal|runtime error' "$log" >&2 || tail -20 "$log" >&2
    fi
    summary+=$(printf '%-18s %10s execs %8s exec/s  cov: %-6s ft: %-6s %s' "$t" "${execs:-?}" \
        "${rate:-?}" "${cov:-?}" "${ft:-?}" "$([ "$status" = 0 ] && echo ok || echo FAILED)")$'\n'
    if [ "${FUZZ_MERGE:-0}" = 1 ] && [ "$status" = 0 ]; then
        "$bin" -merge=1 -close_fd_mask=2 "$seeds" "$new" >> "$log" 2>&1
        echo "   merged: $(ls "$seeds" | wc -l) inputs in $seeds"
    fi
done

echo
echo "fuzzing, ${seconds}s per target:"
printf '%s' "$summary"
if [ -n "$failed" ]; then
    echo "run.sh: failed:$failed" >&2
    exit 1
fi
