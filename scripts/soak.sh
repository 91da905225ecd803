#!/bin/sh
# Soak: the convergence oracle over many seeds (default 1,000, about 1.5 s each on two cores),
# in batches of 200 so that a failure names its seed early. Builds the plain tree first. A failing seed prints itself;
# replay it with OUTPOST_SEED=N build/tests/test_convergence.
#
#   scripts/soak.sh [SEEDS] [FIRST_SEED]          e.g. scripts/soak.sh 20000 100000
set -eu
seeds=${1:-1000}
first=${2:-1000001}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
prefix=${OUTPOST_DEPS_PREFIX:-$(cat "$root/.deps-prefix" 2>/dev/null || true)}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOUTPOST_DEPS_PREFIX="$prefix" \
    >/dev/null
cmake --build "$build" --target test_convergence -j 2 >/dev/null
done_seeds=0
start=$(date +%s)
while [ "$done_seeds" -lt "$seeds" ]; do
    batch=200
    [ $((seeds - done_seeds)) -lt $batch ] && batch=$((seeds - done_seeds))
    base=$((first - 1 + done_seeds))
    if ! (cd "$build/tests" && OUTPOST_SOURCE_DIR="$root" OUTPOST_SEED_BASE=$base \
          OUTPOST_SEEDS=$batch ./test_convergence); then
        echo "soak: FAILED after $done_seeds seeds (see the seed above)" >&2
        exit 1
    fi
    done_seeds=$((done_seeds + batch))
done
echo "soak: $seeds seeds passed in $(( $(date +%s) - start )) s"
