#!/bin/sh
# Runs the libFuzzer targets for a while each (default 300 s): the protocol decoder
# (fuzz_proto), the server's message handling (fuzz_server: decoded PUSH/PULL into store_push
# and store_pull) and the device's pull-apply (fuzz_pull_apply: ROWS into outpost_rows_apply).
# Needs clang. Each works on a copy of its checked-in seed corpus in the build directory; copy a
# crash reproducer into tests/fuzz/corpus/<target>/ once it is fixed, so that `make test`
# replays it from then on.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      e.g. scripts/fuzz.sh 600 fuzz_server
set -eu
seconds=${1:-300}
[ $# -gt 0 ] && shift
targets=${*:-fuzz_proto fuzz_server fuzz_pull_apply}
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-fuzz
prefix=${OUTPOST_DEPS_PREFIX:-$(cat "$root/.deps-prefix" 2>/dev/null || true)}
CC=clang cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOUTPOST_FUZZ=ON \
    -DOUTPOST_DEPS_PREFIX="$prefix" >/dev/null
for t in $targets; do
    cmake --build "$build" --target "$t" -j 2
done
for t in $targets; do
    case $t in
    fuzz_proto) corpus=proto ;;
    fuzz_server) corpus=server ;;
    fuzz_pull_apply) corpus=pull_apply ;;
    *) echo "unknown target $t" >&2; exit 2 ;;
    esac
    mkdir -p "$build/fuzz-corpus-$corpus"
    cp "$root"/tests/fuzz/corpus/$corpus/* "$build/fuzz-corpus-$corpus/"
    # The decoder corpus is good food for the server target too.
    [ "$t" = fuzz_server ] && cp "$root"/tests/fuzz/corpus/proto/msg-push* "$build/fuzz-corpus-$corpus/"
    echo "== $t for $seconds s"
    (cd "$build" && ./tests/$t -max_total_time="$seconds" -max_len=8192 \
        -artifact_prefix="$build/$t-" "$build/fuzz-corpus-$corpus")
done
