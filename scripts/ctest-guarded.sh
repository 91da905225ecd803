#!/bin/sh
# Runs ctest in a build directory and then refuses results that only look green:
#   - a cmocka group setup or teardown that failed (cmocka 1.1.5 still exits 0 after
#     "[  FAILED  ] GROUP TEARDOWN"), found in ctest's record of every test's output;
#   - a skipped test, either a ctest skip (exit 77, SKIP_RETURN_CODE) or a cmocka
#     "[  SKIPPED ]" case, unless OUTPOST_ALLOW_SKIPS=1 (for a machine that lacks a tool a test
#     needs: say so where you set it).
#
#   scripts/ctest-guarded.sh BUILD_DIR [ctest arguments...]
#
# Exit status: ctest's when it failed, 1 when the guard refused the run, 0 otherwise.
set -u

build=$1
shift
cd "$build" || exit 2
console=Testing/ctest-console.log
mkdir -p Testing
# ctest's console is the only place a ctest-level skip is named (LastTest.log says "Passed").
status_file=Testing/ctest-status
{ ctest "$@" 2>&1; echo $? > "$status_file"; } | tee "$console"
rc=$(cat "$status_file")
[ "$rc" -eq 0 ] || exit "$rc"

bad=0
log=Testing/Temporary/LastTest.log
if grep -n -E '\[  (FAILED|ERROR) +\] GROUP (SETUP|TEARDOWN)' "$log" "$console"; then
    echo "ctest-guarded: a cmocka group setup or teardown failed (the program still exited 0)" >&2
    bad=1
fi
skips=$( (grep -E '\(Skipped\)|\*\*\*Skipped' "$console"; grep -E '\[  SKIPPED \]' "$log") \
         | sort -u)
if [ -n "$skips" ]; then
    echo "$skips"
    if [ "${OUTPOST_ALLOW_SKIPS:-0}" = 1 ]; then
        echo "ctest-guarded: skips allowed by OUTPOST_ALLOW_SKIPS=1" >&2
    else
        echo "ctest-guarded: tests were skipped; install what they need (scripts/deps.sh) or" \
             "set OUTPOST_ALLOW_SKIPS=1 to accept it" >&2
        bad=1
    fi
fi
exit $bad
