#!/bin/sh
# Runs the protocol decoder's libFuzzer target for a while (default 300 s) on a copy of the
# checked-in seed corpus. Needs clang. New interesting inputs stay in the build directory; copy
# any crash reproducer into tests/fuzz/corpus/proto/ once it is fixed.
#
#   scripts/fuzz-proto.sh [SECONDS]
set -eu
seconds=${1:-300}
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-proto-fuzz
prefix=${OUTPOST_DEPS_PREFIX:-$(cat "$root/.deps-prefix" 2>/dev/null || true)}
CC=clang cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOUTPOST_FUZZ=ON \
    -DOUTPOST_PARTS=protocol -DOUTPOST_DEPS_PREFIX="$prefix" >/dev/null
cmake --build "$build" --target fuzz_proto -j 2
mkdir -p "$build/fuzz-corpus-proto"
cp "$root"/tests/fuzz/corpus/proto/* "$build/fuzz-corpus-proto/"
cd "$build"
exec ./tests/fuzz_proto -max_total_time="$seconds" -max_len=4096 \
    -artifact_prefix="$build/" "$build/fuzz-corpus-proto"
