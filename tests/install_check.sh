#!/usr/bin/env bash
# liboutpost as an app developer installs and links it: `cmake --install` into a temporary
# prefix, then examples/app built out of tree against the installed files with pkg-config
# (shared) and with find_package(Outpost) (shared and static), and run.
#
#   tests/install_check.sh SOURCE_DIR BUILD_DIR
set -uo pipefail

src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
work=$build/install-check
prefix=$work/prefix
fail() { echo "install_check: $*" >&2; exit 1; }
run_quiet() { "$@" > "$work/step.log" 2>&1 || { cat "$work/step.log" >&2; fail "failed: $*"; }; }

rm -rf "$work"
mkdir -p "$work"
run_quiet cmake --install "$build" --prefix "$prefix"
lib=$(dirname "$(find "$prefix" -name 'liboutpost.so.*.*.*' | head -n1)")
[ -d "$lib" ] || fail "no liboutpost.so installed under $prefix"
for f in include/outpost.h include/outpost_sync.h include/outpost_version.h; do
    [ -f "$prefix/$f" ] || fail "$f not installed"
done
[ -f "$lib/liboutpost.a" ] || fail "liboutpost.a not installed"
[ -f "$lib/pkgconfig/outpost.pc" ] || fail "outpost.pc not installed"
[ -f "$lib/cmake/Outpost/OutpostConfig.cmake" ] || fail "OutpostConfig.cmake not installed"
[ -f "$lib/cmake/Outpost/OutpostConfigVersion.cmake" ] || fail "OutpostConfigVersion.cmake not installed"
grep -qE 'proto\.h|proto_|PROTO_' "$prefix"/include/outpost*.h && fail "the public headers still use the protocol's types"

# Only the public API is exported, under the soname.
soname=$(objdump -p "$lib"/liboutpost.so.*.*.* | awk '/SONAME/ {print $2}')
[ "$soname" = "liboutpost.so.1" ] || fail "soname is '$soname', want liboutpost.so.1"
others=$(nm -D --defined-only "$lib/liboutpost.so" | awk '{print $3}' | grep -v '^outpost_' || true)
[ -z "$others" ] || fail "exported beyond the API: $(echo $others | head -c 300)"
exported=$(nm -D --defined-only "$lib/liboutpost.so" | awk '{print $3}' | sort)
declared=$(grep -ho '^OUTPOST_API [^(]*(' "$prefix"/include/outpost*.h |
           sed 's/.*[ *]\(outpost_[a-z_0-9]*\)(/\1/' | sort)
[ "$exported" = "$declared" ] || fail "exported and declared differ: $(diff <(echo "$exported") <(echo "$declared") | tr '\n' ' ')"

# The static archive defines the API and otherwise only outpost_private_* names: the mbedTLS,
# libwebsockets (SSL_* included) and internal symbols inside it are renamed, so an app that also
# links OpenSSL or its own mbedTLS gets its own copy of every function.
defined=$(nm -g --defined-only --format=posix "$lib/liboutpost.a" |
          awk 'NF >= 2 && $1 !~ /:$/ && $1 !~ /^outpost_private_/ {print $1}' | sort -u)
[ "$defined" = "$declared" ] ||
    fail "liboutpost.a defines beyond the API: $(diff <(echo "$defined") <(echo "$declared") | tr '\n' ' ' | head -c 300)"

check_run() {  # check_run LABEL BINARY [env...]
    local label=$1 bin=$2 out
    shift 2
    mkdir -p "$work/run-$label"
    out=$(env "$@" "$bin" "$work/run-$label" 2>&1) || fail "$label: the example failed: $out"
    printf '%s\n' "$out" | grep -qx 'read back: hello from an installed liboutpost' ||
        fail "$label: unexpected output: $out"
    printf '%s\n' "$out" | grep -qx "liboutpost [0-9.]* (built against [0-9.]*)" ||
        fail "$label: no version line: $out"
}

# pkg-config, shared.
export PKG_CONFIG_PATH=$lib/pkgconfig
flags=$(pkg-config --cflags --libs outpost) || fail "pkg-config --cflags --libs outpost failed"
run_quiet cc -std=c11 -Wall -Werror -o "$work/example-pc" "$src/examples/app/main.c" $flags
check_run pkgconfig "$work/example-pc" LD_LIBRARY_PATH="$lib"

# find_package(Outpost), shared and static.
for kind in shared static; do
    static=OFF
    [ $kind = static ] && static=ON
    run_quiet cmake -S "$src/examples/app" -B "$work/cmake-$kind" -DCMAKE_PREFIX_PATH="$prefix" \
        -DOUTPOST_EXAMPLE_STATIC=$static
    run_quiet cmake --build "$work/cmake-$kind"
    check_run cmake-$kind "$work/cmake-$kind/outpost-example"
done
# ldd's output is taken whole before it is searched: with pipefail, `ldd | grep -q` fails
# whenever grep stops reading first and ldd dies of SIGPIPE (one CI run in a few).
static_deps=$(ldd "$work/cmake-static/outpost-example")
shared_deps=$(ldd "$work/cmake-shared/outpost-example")
grep -q liboutpost <<< "$static_deps" && fail "the static example still needs liboutpost.so"
grep -qF "liboutpost.so.1 => $lib/" <<< "$shared_deps" ||
    fail "the shared example does not use the installed liboutpost.so.1: $shared_deps"
rm -rf "$work"
echo "install_check: installed, linked with pkg-config and find_package (shared, static), ran"
