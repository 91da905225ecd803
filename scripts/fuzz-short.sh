#!/bin/sh
# A short, real libFuzzer run of every fuzz target, as a ctest beside the corpus replays
# (tests/zz_proof.cmake registers it as fuzz_short in the plain build). Builds the targets with
# clang (-fsanitize=fuzzer,address,undefined) in BUILD_DIR/fuzz-clang, then fuzzes each for
# SECONDS (default 5) on a copy of its checked-in corpus. A crash fails the test, and its
# reproducer is written into tests/fuzz/corpus/<corpus>/ so that the replay tests keep it once
# the bug is fixed. Longer runs: scripts/fuzz.sh.
#
#   scripts/fuzz-short.sh SOURCE_DIR BUILD_DIR [SECONDS]
# Exit 77 (skipped) when clang with libFuzzer is missing (Debian package clang).
set -eu
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)/fuzz-clang
seconds=${3:-5}
if ! command -v clang >/dev/null 2>&1; then
    echo "fuzz-short: clang is missing (Debian package clang): no fuzzing run" >&2
    exit 77
fi
prefix=$(cat "$src/.deps-prefix" 2>/dev/null || true)
prefix=${OUTPOST_DEPS_PREFIX:-$prefix}
CC=clang cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOUTPOST_FUZZ=ON \
    -DOUTPOST_WERROR=OFF -DOUTPOST_DEPS_PREFIX="$prefix" >/dev/null
status=0
for t in fuzz_proto:proto fuzz_server:server fuzz_pull_apply:pull_apply; do
    target=${t%%:*}
    corpus=${t#*:}
    cmake --build "$build" --target "$target" -j 2 >/dev/null
    work=$build/corpus-$corpus
    rm -rf "$work"
    mkdir -p "$work"
    cp "$src/tests/fuzz/corpus/$corpus/"* "$work/"
    echo "== $target: $seconds s"
    log=$build/$target.log
    if (cd "$build" && ./tests/$target -max_total_time="$seconds" -max_len=8192 \
            -print_final_stats=1 -artifact_prefix="$src/tests/fuzz/corpus/$corpus/" \
            "$work" >"$log" 2>&1); then
        grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units)' "$log" || true
    else
        tail -n 40 "$log"
        echo "fuzz-short: $target crashed; its reproducer is in tests/fuzz/corpus/$corpus/" >&2
        status=1
    fi
done
exit $status
