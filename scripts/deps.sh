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
#   scripts/deps.sh            install packages (if missing) and build the cache (if missing)
#   OUTPOST_DEPS_DIR=DIR       where the cache lives (default: $XDG_CACHE_HOME or ~/.cache)
set -euo pipefail

MBEDTLS_VERSION=3.6.6
LWS_VERSION=4.3.5
PATCH_LEVEL=2   # bump when cmake/patches or the build flags below change
here=$(cd "$(dirname "$0")/.." && pwd)
cache_root=${OUTPOST_DEPS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/outpost}
prefix=$cache_root/mbedtls-$MBEDTLS_VERSION-lws-$LWS_VERSION-p$PATCH_LEVEL
jobs=$(nproc 2>/dev/null || echo 2)

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
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq >&2
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

# --- mbedTLS ----------------------------------------------------------------------------------
# Threading on: the client library encrypts pages on the app's threads while its sync thread
# speaks TLS, and PSA crypto is shared between them.
cfg=$mbedtls_src/include/mbedtls/mbedtls_config.h
sed -i -e 's|^//#define MBEDTLS_THREADING_C$|#define MBEDTLS_THREADING_C|' \
       -e 's|^//#define MBEDTLS_THREADING_PTHREAD$|#define MBEDTLS_THREADING_PTHREAD|' "$cfg"
grep -q '^#define MBEDTLS_THREADING_PTHREAD' "$cfg" || { log "could not enable threading"; exit 1; }
log "building mbedtls $MBEDTLS_VERSION"
quiet cmake -S "$mbedtls_src" -B "$work/build-mbedtls" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$staging" -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
    -DENABLE_PROGRAMS=OFF -DENABLE_TESTING=OFF -DUSE_SHARED_MBEDTLS_LIBRARY=OFF \
    -DUSE_STATIC_MBEDTLS_LIBRARY=ON -DMBEDTLS_FATAL_WARNINGS=OFF
quiet cmake --build "$work/build-mbedtls" -j "$jobs"
quiet cmake --install "$work/build-mbedtls"

# --- libwebsockets ----------------------------------------------------------------------------
# Each patch says at its top why it exists (README "Why libwebsockets carries patches").
log "building libwebsockets $LWS_VERSION"
for p in "$here"/cmake/patches/lws-"$LWS_VERSION"-*.patch; do
    patch -d "$lws_src" -p1 --quiet < "$p"
done
quiet cmake -S "$lws_src" -B "$work/build-lws" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$staging" -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
    -DLWS_WITH_MBEDTLS=ON -DLWS_WITH_SHARED=OFF -DLWS_WITH_STATIC=ON \
    -DLWS_WITHOUT_TESTAPPS=ON -DLWS_WITH_MINIMAL_EXAMPLES=OFF -DLWS_WITH_SYS_SMD=OFF \
    -DLWS_WITHOUT_EXTENSIONS=ON -DLWS_WITH_LIBUV=OFF -DLWS_WITH_LIBEV=OFF \
    -DLWS_WITH_LIBEVENT=OFF -DLWS_WITH_GLIB=OFF -DLWS_IPV6=ON -DDISABLE_WERROR=ON \
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
