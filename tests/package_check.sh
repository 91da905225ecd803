#!/usr/bin/env bash
# `make package` checked as a Debian administrator would: the four packages build, lintian
# finds no errors, systemd-analyze verify accepts the unit, and outpostd from the packages
# (extracted into a throwaway root) starts with the unit's command line and the packaged
# config (its paths moved into that root) far enough to answer /healthz.
#
#   tests/package_check.sh SOURCE_DIR BUILD_DIR
set -uo pipefail

src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
work=$build/package-check
root=$work/root
fail() { echo "package_check: $*" >&2; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; exit 1; }

rm -rf "$work"
mkdir -p "$root"
"$src/scripts/package.sh" "$build" "$work/debs" > "$work/package.log" 2>&1 ||
    fail "scripts/package.sh failed: $(cat "$work/package.log")"
for p in liboutpost1 liboutpost-dev outpost outpostd; do
    ls "$work/debs/${p}_"*.deb >/dev/null 2>&1 || fail "no $p package"
done

# lintian: no errors (warnings are listed in the log).
lintian "$work"/debs/*.deb > "$work/lintian.log" 2>&1
errors=$(grep '^E:' "$work/lintian.log" || true)
[ -z "$errors" ] || fail "lintian errors: $errors"

for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$root"; done
unit=$root/lib/systemd/system/outpostd.service
[ -f "$unit" ] || fail "the unit is not in the outpostd package"
for want in 'User=outpost' 'ProtectSystem=strict' 'NoNewPrivileges=yes' 'PrivateTmp=yes' \
            'StateDirectory=outpost' 'StateDirectoryMode=0700' \
            'ExecStart=/usr/sbin/outpostd --config /etc/outpost/outpostd.ini'; do
    grep -qx "$want" "$unit" || fail "the unit lacks $want"
done
# The unit's binary is the packaged one, moved into the throwaway root.
sed "s|/usr/sbin/outpostd|$root/usr/sbin/outpostd|" "$unit" > "$work/outpostd.service"
systemd-analyze verify "$work/outpostd.service" > "$work/verify.log" 2>&1 ||
    fail "systemd-analyze verify: $(cat "$work/verify.log")"

for bin in usr/sbin/outpostd usr/sbin/outpost-admin usr/bin/outpost; do
    "$root/$bin" --version > /dev/null || fail "$bin --version failed"
done

# The packaged config, its /etc/outpost and /var/lib/outpost moved into the root, on a free
# loopback port; certificates and a store as docs/operations.md's install section makes them.
mkdir -p "$root/var/lib/outpost"
chmod 0700 "$root/var/lib/outpost"
sh "$src/certs-example/make-dev-certs.sh" "$root/etc/outpost" > /dev/null 2>&1 ||
    fail "make-dev-certs.sh failed"
sed -e "s|/etc/outpost|$root/etc/outpost|g" -e "s|/var/lib/outpost|$root/var/lib/outpost|g" \
    -e 's/^listen = .*/listen = 127.0.0.1/' -e 's/^port = .*/port = 0/' \
    "$root/etc/outpost/outpostd.ini" > "$work/outpostd.ini"
"$root/usr/sbin/outpost-admin" --store "$root/var/lib/outpost/central.db" init \
    --schema "$src/examples/outreach/schema.sql" --policy "$src/examples/outreach/policy" \
    > "$work/admin.log" 2>&1 || fail "outpost-admin init: $(cat "$work/admin.log")"
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
cmd=${exec_start//\/usr\/sbin\/outpostd/$root/usr/sbin/outpostd}
cmd=${cmd//\/etc\/outpost\/outpostd.ini/$work/outpostd.ini}
$cmd > "$work/outpostd.log" 2>&1 &
pid=$!
port=
for _ in $(seq 1 100); do
    port=$(sed -n 's/.*outpostd listening .*port=\([0-9]*\).*/\1/p' "$work/outpostd.log" | head -n1)
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || fail "outpostd exited: $(cat "$work/outpostd.log")"
    sleep 0.1
done
[ -n "$port" ] || fail "outpostd did not start: $(cat "$work/outpostd.log")"
health=$(curl -s --cacert "$root/etc/outpost/ca.pem" --resolve "localhost:$port:127.0.0.1" \
         "https://localhost:$port/healthz")
[ "$(printf '%s\n' "$health" | head -n1)" = ok ] || fail "/healthz answered: $health"
kill "$pid"
wait "$pid" 2>/dev/null
pid=
rm -rf "$work"
echo "package_check: 4 packages, lintian without errors, unit verified, outpostd healthy"
