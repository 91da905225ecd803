#!/usr/bin/env bash
# `make demo` as its user meets it: the build is one line per part with the full output in a
# log file it names, and the demo ends with nothing of it left running.
#
#   tests/demo_check.sh SOURCE_DIR BUILD_DIR
# Runs the two scripts `make demo` runs (scripts/build-quiet.sh, on the already built tree, and
# scripts/demo.sh, in BUILD_DIR/demo-check/).
set -uo pipefail

src=$1
build=$2
run=$build/demo-check
fail() { echo "demo_check: $*" >&2; exit 1; }

out=$("$src/scripts/build-quiet.sh" "$build") || fail "build-quiet.sh failed: $out"
log=$(cd "$build" && pwd)/build.log
[ "$(printf '%s\n' "$out" | head -n1)" = "build: full output in $log" ] ||
    fail "the first line does not name the log: $(printf '%s\n' "$out" | head -n1)"
[ -s "$log" ] || fail "the log $log is missing or empty"
parts=$(printf '%s\n' "$out" | tail -n +2)
[ "$(printf '%s\n' "$parts" | wc -l)" -eq 4 ] || fail "want 4 part lines, got: $parts"
bad=$(printf '%s\n' "$parts" | grep -Ev '^build: .+ ok \([0-9]+ s\)$' || true)
[ -z "$bad" ] || fail "not a one-line part result: $bad"

rm -rf "$run"
OUTPOST_DEMO_RUN=$run "$src/scripts/demo.sh" "$build" > "$build/demo-check.out" 2>&1 ||
    fail "the demo failed: $(tail -n 20 "$build/demo-check.out")"
grep -q '^== Done: nothing lost' "$build/demo-check.out" || fail "the demo did not finish its story"
# Every program the demo starts names a file in its run directory on its command line.
left=$(ps -eo pid=,args= | grep -F "$run/" | grep -v -e grep -e demo_check || true)
[ -z "$left" ] || fail "left running after the demo: $left"
rm -rf "$run" "$build/demo-check.out"
echo "demo_check: the build in 4 lines, nothing left running"
