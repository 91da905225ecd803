#!/usr/bin/env bash
# Builds one configuration of the tree from a checkout path longer than 150 characters, with
# warnings as errors: a path of the checkout that ends up in a fixed-size buffer (a compiled-in
# path literal in an snprintf, say) breaks this build before it breaks a user's.
#
#   scripts/longpath-build.sh SOURCE_DIR WORK_DIR DEPS_PREFIX
# Copies the tracked (and untracked, not ignored) files of SOURCE_DIR under WORK_DIR at a long
# path, configures RelWithDebInfo with -Werror and builds it with -j2. Exit status 0 when it built.
set -euo pipefail

src=$(cd "$1" && pwd)
mkdir -p "$2"
work=$(cd "$2" && pwd)
deps=$3

# 8 levels of 20 characters plus WORK_DIR: well over 150 characters whatever WORK_DIR is.
long=$work
for i in 1 2 3 4 5 6 7 8; do long=$long/a-long-checkout-pa$i; done
long=$long/outpost
rm -rf "$work"
mkdir -p "$long"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$src" && git ls-files -z --cached --others --exclude-standard) |
        (cd "$src" && xargs -0 tar -cf - --no-recursion) | tar -C "$long" -xf -
else
    tar -C "$src" --exclude='./build*' --exclude=./demo-run -cf - . | tar -C "$long" -xf -
fi
echo "longpath-build: building from $long (${#long} characters)"
log=$work/build.log
if ! { cmake -S "$long" -B "$long/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOUTPOST_WERROR=ON \
           -DOUTPOST_DEPS_PREFIX="$deps" &&
       cmake --build "$long/build" -j2 -- -k; } > "$log" 2>&1; then
    grep -E 'error:' "$log" | head -n 40
    echo "longpath-build: the build from a long path failed; full output in $log"
    exit 1
fi
echo "longpath-build: built from a ${#long}-character path"
rm -rf "$work"
