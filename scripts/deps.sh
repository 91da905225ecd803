#!/usr/bin/env bash
# Installs what Outpost builds against on a Debian 12 machine, and builds the two libraries
# Debian 12 cannot give us: mbedTLS 3.6 (LTS, TLS 1.3) and libwebsockets 4.3 on that mbedTLS.
#
# Both come from Debian 13 ("trixie") source packages fetched with a private apt configuration
# that leaves the machine's own apt sources untouched; apt checks the archive's signature on the
# Sources index and each tarball's hash against it. Only the upstream .orig tarballs are used.
#
# The built libraries are cached outside the build tree, keyed by version and patch level, so a
# warm build skips all of this. Prints the install prefix on its last line.
#
#   scripts/deps.sh              install packages (if missing) and build the cache (if missing)
#   scripts/deps.sh --arch ARCH  the same for a cross build of the device side (ARCH is armhf or
#                                arm64): installs the cross compiler and qemu-user, fetches the
#                                target's Debian libraries into a sysroot inside the cache entry,
#                                cross-builds mbedTLS and lws from the same tarballs with the same
#                                patches and flags, and writes the CMake toolchain file
#                                PREFIX/toolchain.cmake (docs/arm.md)
#   OUTPOST_DEPS_DIR=DIR         where the cache lives (default: $XDG_CACHE_HOME or ~/.cache)
set -euo pipefail

MBEDTLS_VERSION=3.6.6
LWS_VERSION=4.3.5
PATCH_LEVEL=3   # bump when cmake/patches or the build flags below change
here=$(cd "$(dirname "$0")/.." && pwd)
cache_root=${OUTPOST_DEPS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/outpost}
prefix=$cache_root/mbedtls-$MBEDTLS_VERSION-lws-$LWS_VERSION-p$PATCH_LEVEL
jobs=$(nproc 2>/dev/null || echo 2)

arch=
case "${1:-}" in
    --arch) arch=${2:?"--arch needs armhf or arm64"} ;;
    "") ;;
    *) printf 'usage: %s [--arch armhf|arm64]\n' "$0" >&2; exit 2 ;;
esac
# The cross targets: Debian architecture -> GNU triplet, CMake processor, qemu-user binary.
case "$arch" in
    "") ;;
    armhf) triplet=arm-linux-gnueabihf cpu=arm qemu=qemu-arm ;;
    arm64) triplet=aarch64-linux-gnu cpu=aarch64 qemu=qemu-aarch64 ;;
    *) printf 'deps: unknown architecture %s (armhf or arm64)\n' "$arch" >&2; exit 2 ;;
esac
# A cross build's cache entry is the host's key plus the architecture and CROSS_LEVEL.
CROSS_LEVEL=3   # bump when the cross setup (the sysroot, cmake/cross-toolchain.cmake) changes
[ -z "$arch" ] || prefix=$prefix-$arch-x$CROSS_LEVEL

log() { printf 'deps: %s\n' "$*" >&2; }
# Runs a build step quietly; shows its output only when it fails.
quiet() { "$@" > "$work/step.log" 2>&1 || { cat "$work/step.log" >&2; return 1; }; }

# --- Debian packages --------------------------------------------------------------------------
packages=(build-essential cmake pkg-config git ca-certificates dpkg-dev bzip2 xz-utils
          libsqlite3-dev sqlite3 libmsgpack-dev zlib1g-dev libcmocka-dev libcap-dev
          libinih-dev libargon2-dev libqrencode-dev libjansson-dev openssl
          curl file lintian systemd clang
          libpq-dev postgresql-15)
missing=()
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
# A cross build also needs the cross compiler, its C library and qemu-user to run what it built.
[ -z "$arch" ] || packages+=(qemu-user "gcc-$triplet" "libc6-dev-$arch-cross")
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    # A mirror mid-sync can fail one index ("Some index files failed to download") while
    # everything needed still resolves: the install below is what decides.
    as_root apt-get update -qq >&2 || log "apt-get update failed for some index; trying the install"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >&2
fi

if [ -f "$prefix/.complete" ]; then
    echo "$prefix"
    exit 0
fi

# --- Fetch the trixie source tarballs ---------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/outpost-deps.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/dl" "$work/src"
# The machine's own Debian archive (deb822 "URIs:" or one-line "deb URI" form), security excluded.
archive_uri=$( { sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null
                 sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\).*/\2/p' \
                     /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null; } |
               tr ' ' '\n' | grep -E '^https?://.*/debian/?$' | head -n1 || true)
archive_uri=${archive_uri:-http://deb.debian.org/debian}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
echo "deb-src [signed-by=$keyring] $archive_uri trixie main" > "$work/sources.list"
apt_private=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
             -o "Dir::State::Lists=$work/lists" -o Debug::NoLocking=1
             -o APT::Sandbox::User=root)
log "fetching mbedtls $MBEDTLS_VERSION and libwebsockets $LWS_VERSION sources (trixie)"
quiet apt-get "${apt_private[@]}" update
# The Debian diff of libwebsockets has answered 404 while its .orig tarball arrived: only the
# .orig tarballs matter, so a failed download of anything else is not fatal.
(cd "$work/dl" && apt-get "${apt_private[@]}" source --download-only \
    "mbedtls/trixie" "libwebsockets/trixie" > "$work/fetch.log" 2>&1) || true
mbedtls_tar=$(ls "$work"/dl/mbedtls_"$MBEDTLS_VERSION".orig.tar.* 2>/dev/null | head -n1)
lws_tar=$(ls "$work"/dl/libwebsockets_"$LWS_VERSION".orig.tar.* 2>/dev/null | head -n1)
if [ -z "$mbedtls_tar" ] || [ -z "$lws_tar" ]; then
    cat "$work/fetch.log" >&2
    log "the mbedtls $MBEDTLS_VERSION or libwebsockets $LWS_VERSION source tarball did not arrive"
    exit 1
fi
tar -C "$work/src" -xf "$mbedtls_tar"
tar -C "$work/src" -xf "$lws_tar"
mbedtls_src=$work/src/mbedtls-$MBEDTLS_VERSION
lws_src=$work/src/libwebsockets-$LWS_VERSION

staging=$prefix.tmp
rm -rf "$staging"
mkdir -p "$staging"

# --- The target's Debian libraries (cross builds only) -----------------------------------------
# Fetched with a private apt configuration for the target architecture and unpacked into
# PREFIX/sysroot: the machine's own dpkg state is never touched. (Multiarch installs, armhf
# packages beside the host's, fail whenever a host package such as libssl3 or linux-libc-dev is at
# a version the target's index lacks, which a security update or a mirror mid-sync brings about.)
# What the device side links: SQLite, msgpack-c, zlib, jansson (forms and watch rules), cmocka,
# libcap (lws), libargon2.
cross_libs=(libsqlite3-0 libsqlite3-dev libmsgpackc2 libmsgpack-dev zlib1g zlib1g-dev
            libjansson4 libjansson-dev libcmocka0 libcmocka-dev libcap2 libcap-dev libargon2-1
            libargon2-dev)
fetch_sysroot() {
    local sysroot=$1 codename
    codename=$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release)
    codename=${codename:-bookworm}
    mkdir -p "$work/x-lists/partial" "$work/x-cache/archives/partial" "$work/x-debs" "$sysroot"
    : > "$work/x-status"
    printf 'deb [arch=%s signed-by=%s] %s %s main\n' "$arch" "$keyring" "$archive_uri" \
        "$codename" "$arch" "$keyring" "$archive_uri" "$codename-updates" > "$work/x-sources.list"
    local apt_cross=(-o "Dir::Etc::SourceList=$work/x-sources.list"
                     -o Dir::Etc::SourceParts=/dev/null
                     -o "Dir::State::Lists=$work/x-lists" -o "Dir::State::status=$work/x-status"
                     -o "Dir::Cache=$work/x-cache" -o Debug::NoLocking=1
                     -o "APT::Architecture=$arch" -o "APT::Architectures=$arch"
                     -o APT::Sandbox::User=root)
    log "fetching the $arch libraries ($codename): ${cross_libs[*]}"
    # An index that fails to download is not fatal by itself: the download below decides.
    quiet apt-get "${apt_cross[@]}" update || log "apt-get update failed for some $arch index"
    (cd "$work/x-debs" && quiet apt-get "${apt_cross[@]}" download "${cross_libs[@]}")
    local deb
    for deb in "$work"/x-debs/*.deb; do
        dpkg-deb -x "$deb" "$sysroot"
    done
    # One library directory: what a package put in /lib/TRIPLET moves to /usr/lib/TRIPLET, and
    # a link naming an absolute path is made relative to the directory it sits in.
    local libdir=$sysroot/usr/lib/$triplet link target
    if [ -d "$sysroot/lib/$triplet" ]; then
        mv "$sysroot/lib/$triplet"/* "$libdir"/
        rm -rf "${sysroot:?}/lib"
    fi
    for link in "$libdir"/*; do
        [ -L "$link" ] || continue
        target=$(readlink "$link")
        case "$target" in /*) ln -sf "$(basename "$target")" "$link" ;; esac
    done
}

# The toolchain file of a cross build: the target's settings, then cmake/cross-toolchain.cmake.
write_toolchain() {
    { printf '# Written by scripts/deps.sh --arch %s.\n' "$arch"
      printf 'set(OUTPOST_CROSS_ARCH %s)\nset(OUTPOST_CROSS_TRIPLET %s)\n' "$arch" "$triplet"
      printf 'set(OUTPOST_CROSS_CPU %s)\nset(OUTPOST_CROSS_QEMU %s)\n' "$cpu" "$qemu"
      cat "$here/cmake/cross-toolchain.cmake"; } > "$1/toolchain.cmake"
}

cross=()
if [ -n "$arch" ]; then
    fetch_sysroot "$staging/sysroot"
    write_toolchain "$staging"
    cross=(-DCMAKE_TOOLCHAIN_FILE="$staging/toolchain.cmake")
fi

# --- mbedTLS ----------------------------------------------------------------------------------
# Threading on: the client library encrypts pages on the app's threads while its sync thread
# speaks TLS, and PSA crypto is shared between them.
cfg=$mbedtls_src/include/mbedtls/mbedtls_config.h
sed -i -e 's|^//#define MBEDTLS_THREADING_C$|#define MBEDTLS_THREADING_C|' \
       -e 's|^//#define MBEDTLS_THREADING_PTHREAD$|#define MBEDTLS_THREADING_PTHREAD|' "$cfg"
grep -q '^#define MBEDTLS_THREADING_PTHREAD' "$cfg" || { log "could not enable threading"; exit 1; }
# The flags of both libraries live here once; the host and every cross build use them as they are.
mbedtls_flags=(-DCMAKE_BUILD_TYPE=Release -DCMAKE_POSITION_INDEPENDENT_CODE=ON
    -DENABLE_PROGRAMS=OFF -DENABLE_TESTING=OFF -DUSE_SHARED_MBEDTLS_LIBRARY=OFF
    -DUSE_STATIC_MBEDTLS_LIBRARY=ON -DMBEDTLS_FATAL_WARNINGS=OFF)
log "building mbedtls $MBEDTLS_VERSION${arch:+ for $arch}"
quiet cmake -S "$mbedtls_src" -B "$work/build-mbedtls" "${mbedtls_flags[@]}" "${cross[@]}" \
    -DCMAKE_INSTALL_PREFIX="$staging"
quiet cmake --build "$work/build-mbedtls" -j "$jobs"
quiet cmake --install "$work/build-mbedtls"

# --- libwebsockets ----------------------------------------------------------------------------
# Each patch says at its top why it exists (README "Why libwebsockets carries patches").
log "building libwebsockets $LWS_VERSION${arch:+ for $arch}"
for p in "$here"/cmake/patches/lws-"$LWS_VERSION"-*.patch; do
    patch -d "$lws_src" -p1 --quiet < "$p"
done
lws_flags=(-DCMAKE_BUILD_TYPE=Release -DCMAKE_POSITION_INDEPENDENT_CODE=ON
    -DLWS_WITH_MBEDTLS=ON -DLWS_WITH_SHARED=OFF -DLWS_WITH_STATIC=ON
    -DLWS_WITHOUT_TESTAPPS=ON -DLWS_WITH_MINIMAL_EXAMPLES=OFF -DLWS_WITH_SYS_SMD=OFF
    -DLWS_WITHOUT_EXTENSIONS=ON -DLWS_WITH_LIBUV=OFF -DLWS_WITH_LIBEV=OFF
    -DLWS_WITH_LIBEVENT=OFF -DLWS_WITH_GLIB=OFF -DLWS_IPV6=ON -DDISABLE_WERROR=ON)
quiet cmake -S "$lws_src" -B "$work/build-lws" "${lws_flags[@]}" "${cross[@]}" \
    -DCMAKE_INSTALL_PREFIX="$staging" \
    -DLWS_MBEDTLS_INCLUDE_DIRS="$staging/include" -DMBEDTLS_INCLUDE_DIRS="$staging/include" \
    -DMBEDTLS_LIBRARY="$staging/lib/libmbedtls.a" \
    -DMBEDX509_LIBRARY="$staging/lib/libmbedx509.a" \
    -DMBEDCRYPTO_LIBRARY="$staging/lib/libmbedcrypto.a"
quiet cmake --build "$work/build-lws" -j "$jobs"
quiet cmake --install "$work/build-lws"

touch "$staging/.complete"
rm -rf "$prefix"
mv "$staging" "$prefix"
log "dependencies ready in $prefix"
echo "$prefix"
