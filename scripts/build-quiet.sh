#!/usr/bin/env bash
# Builds what `make demo` runs, one line per part, with the full compiler output in a log file
# that the first line names; on a failure, the end of the log and its path.
#
#   scripts/build-quiet.sh BUILD_DIR [CMAKE_ARGS...]
# CMAKE_ARGS go to the configure step (none: keep the build directory's cache as it is).
set -euo pipefail

build=$1
shift
mkdir -p "$build"
log=$(cd "$build" && pwd)/build.log
: > "$log"
echo "build: full output in $log"

# part LABEL COMMAND...: runs COMMAND with its output in the log, prints one line.
part() {
    local label=$1 start=$SECONDS
    shift
    printf 'build: %-40s' "$label"
    echo "=== $label: $*" >> "$log"
    if "$@" >> "$log" 2>&1; then
        printf 'ok (%d s)\n' $((SECONDS - start))
    else
        printf 'FAILED\n'
        tail -n 30 "$log" | sed 's/^/    /' >&2
        echo "build: $label failed; the whole output is in $log" >&2
        exit 1
    fi
}

jobs=$(nproc 2>/dev/null || echo 2)
part "configure (cmake)" cmake -S "$(dirname "$0")/.." -B "$build" "$@"
part "protocol" cmake --build "$build" -j "$jobs" --target outpost_proto
part "liboutpost and the outpost CLI" cmake --build "$build" -j "$jobs" --target outpost outpost_cli
part "outpostd and outpost-admin" cmake --build "$build" -j "$jobs" --target outpostd outpost-admin
