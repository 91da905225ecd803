#!/usr/bin/env bash
# `make package`: Debian packages from a built tree, with dpkg-deb.
#
#   scripts/package.sh BUILD_DIR OUT_DIR
#
# Makes, for this machine's architecture:
#   liboutpostN      the shared library (soname liboutpost.so.N, N the ABI version)
#   liboutpost-dev   headers, liboutpost.so, liboutpost.a, outpost.pc, OutpostConfig.cmake
#   outpost          the outpost CLI (field laptops, scripts)
#   outpostd         outpostd and outpost-admin, the systemd unit (own system user, hardened,
#                    state in /var/lib/outpost 0700, config in /etc/outpost)
# Files come from `cmake --install --component` of BUILD_DIR; packaging/debian/ has the rest.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)
pkg=$here/packaging/debian
version=$("$build/server/outpostd" --version | awk '{print $2}')
arch=$(dpkg --print-architecture)
# The package is named after the soname (Debian policy 8.1), so two ABIs install side by side.
abi=$(objdump -p "$build/client-lib/liboutpost.so" | awk '/SONAME/ {sub(/^liboutpost\.so\./, "", $2); print $2}')
[ -n "$abi" ] || { echo "package: no soname in $build/client-lib/liboutpost.so" >&2; exit 1; }
libpkg=liboutpost$abi
maintainer="Outpost maintainers <outpost@example.org>"
stage=$(mktemp -d "${TMPDIR:-/tmp}/outpost-package.XXXXXX")
trap 'rm -rf "$stage"' EXIT

# install_component ROOT COMPONENT: the component's files under ROOT/usr, binaries stripped.
install_component() {
    cmake --install "$build" --prefix /usr --component "$2" >/dev/null \
        || { echo "package: cmake --install --component $2 failed" >&2; exit 1; }
}

# docs ROOT PACKAGE: copyright and changelog, as Debian policy wants them.
docs() {
    local d=$1/usr/share/doc/$2
    install -d -m 0755 "$d"
    install -m 0644 "$pkg/copyright" "$d/copyright"
    printf '%s (%s) unstable; urgency=medium\n\n  * Release %s.\n\n -- %s  %s\n' \
        "$2" "$version" "$version" "$maintainer" "$(date -R -d @0)" | gzip -9n > "$d/changelog.gz"
    chmod 0644 "$d/changelog.gz"
}

# control ROOT PACKAGE SECTION DEPENDS DESCRIPTION...: DEBIAN/control.
control() {
    local root=$1 name=$2 section=$3 depends=$4
    shift 4
    install -d -m 0755 "$root/DEBIAN"
    {
        echo "Package: $name"
        echo "Version: $version"
        echo "Architecture: $arch"
        echo "Maintainer: $maintainer"
        echo "Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)"
        [ -n "$depends" ] && echo "Depends: $depends"
        echo "Section: $section"
        echo "Priority: optional"
        echo "Homepage: https://example.org/outpost"
        echo "Description: $1"
        shift
        for line in "$@"; do echo " $line"; done
    } > "$root/DEBIAN/control"
}

build_deb() {
    local root=$1 name=$2
    find "$root" -type d -exec chmod 0755 {} +
    (cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z |
        xargs -0 -r md5sum > DEBIAN/md5sums)
    chmod 0644 "$root/DEBIAN/md5sums"
    dpkg-deb --root-owner-group -Zxz --build "$root" "$out/${name}_${version}_${arch}.deb" >/dev/null
    echo "package: $out/${name}_${version}_${arch}.deb"
}

strip_elves() {
    find "$1" -type f \( -perm -u+x -o -name '*.so*' -o -name '*.a' \) -print0 |
        while IFS= read -r -d '' f; do
            if [ "${f%.a}" != "$f" ]; then strip --strip-debug "$f"
            elif file -b "$f" | grep -q ELF; then strip --strip-unneeded --remove-section=.comment --remove-section=.note "$f"
            fi
        done
}

runtime_depends="libc6 (>= 2.36), libsqlite3-0 (>= 3.40), libmsgpackc2 (>= 4.0), libargon2-1, libjansson4, libcap2"

# liboutpostN
root=$stage/$libpkg
DESTDIR=$root install_component "$root" lib
strip_elves "$root"
docs "$root" "$libpkg"
control "$root" "$libpkg" libs "$runtime_depends" \
    "Outpost device library: an offline encrypted SQLite replica that syncs" \
    "liboutpost keeps an app's records in a local SQLite replica encrypted at" \
    "rest, captures every committed write into an outbox, and syncs it with an" \
    "Outpost server by itself."
echo "liboutpost $abi $libpkg (>= $version)" > "$root/DEBIAN/shlibs"
echo "activate-noawait ldconfig" > "$root/DEBIAN/triggers"
chmod 0644 "$root/DEBIAN/shlibs" "$root/DEBIAN/triggers"
build_deb "$root" "$libpkg"

# liboutpost-dev
root=$stage/liboutpost-dev
DESTDIR=$root install_component "$root" dev
strip_elves "$root"
install -d -m 0755 "$root/usr/share/doc/liboutpost-dev/examples"
install -m 0644 "$here/examples/app/main.c" "$here/examples/app/CMakeLists.txt" \
    "$root/usr/share/doc/liboutpost-dev/examples/"
docs "$root" liboutpost-dev
control "$root" liboutpost-dev libdevel \
    "$libpkg (= $version), libsqlite3-dev (>= 3.40), libmsgpack-dev, libargon2-dev, libcap-dev" \
    "Outpost device library: development files" \
    "Headers, the static library, outpost.pc and the CMake package" \
    "(find_package(Outpost)) for building apps on liboutpost."
build_deb "$root" liboutpost-dev

# outpost (CLI)
root=$stage/outpost
DESTDIR=$root install_component "$root" cli
strip_elves "$root"
docs "$root" outpost
control "$root" outpost utils "$runtime_depends" \
    "command line for Outpost devices" \
    "The outpost command: enroll a device, write and query its encrypted" \
    "replica, and sync it with an Outpost server, for field laptops and scripts."
build_deb "$root" outpost

# outpostd (with outpost-admin)
root=$stage/outpostd
DESTDIR=$root install_component "$root" server
strip_elves "$root"
install -d -m 0755 "$root/lib/systemd/system" "$root/etc/outpost"
install -m 0644 "$pkg/outpostd.service" "$root/lib/systemd/system/outpostd.service"
install -m 0644 "$pkg/outpostd.ini" "$root/etc/outpost/outpostd.ini"
docs "$root" outpostd
install -m 0644 "$here/docs/operations.md" "$root/usr/share/doc/outpostd/operations.md"
install -m 0644 "$here/server/outpostd.example.ini" "$root/usr/share/doc/outpostd/outpostd.example.ini"
control "$root" outpostd net \
    "adduser, libc6 (>= 2.36), libsqlite3-0 (>= 3.40), libmsgpackc2 (>= 4.0), libinih1, libargon2-1, libqrencode4, libjansson4, libcap2, libpq5 (>= 15)" \
    "Outpost sync server and its admin tool" \
    "outpostd serves Outpost devices over TLS WebSockets, merges their changes" \
    "into a central SQLite store and serves the supervisors' dashboard;" \
    "outpost-admin manages the store. Runs as the outpost system user under a" \
    "hardened systemd unit."
install -d -m 0755 "$root/usr/share/lintian/overrides"
install -m 0644 "$pkg/outpostd.lintian-overrides" "$root/usr/share/lintian/overrides/outpostd"
echo "/etc/outpost/outpostd.ini" > "$root/DEBIAN/conffiles"
chmod 0644 "$root/DEBIAN/conffiles"
for s in postinst prerm postrm; do install -m 0755 "$pkg/outpostd.$s" "$root/DEBIAN/$s"; done
build_deb "$root" outpostd
