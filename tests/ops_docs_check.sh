#!/usr/bin/env bash
# docs/operations.md followed as written: every ```sh block of its "Installing" and "Upgrading"
# sections runs, in order, against the packages of this build, in a throwaway root. Only what
# a test cannot do for real is stood in for: `apt install ./PKG_*.deb` unpacks PKG's package of
# this build into the root, `systemctl` starts and stops that outpostd on a free loopback port
# (8443 in the text becomes that port), `sudo -u outpost` runs the command as is, `chgrp` does
# nothing (there is no outpost group here), and /etc/outpost and /var/lib/outpost move into the
# root. Any command that fails fails the check (curl -sf on /healthz among them).
#
#   tests/ops_docs_check.sh SOURCE_DIR BUILD_DIR
set -uo pipefail

src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
work=$build/ops-docs-check
fail() { echo "ops_docs_check: $*" >&2; exit 1; }

rm -rf "$work"
mkdir -p "$work/root/etc/outpost" "$work/root/var/lib/outpost" "$work/cwd"
"$src/scripts/package.sh" "$build" "$work/debs" > "$work/package.log" 2>&1 ||
    fail "scripts/package.sh failed: $(cat "$work/package.log")"
# What the operator has in hand: certificates, the schema, policy and watch rules files.
sh "$src/certs-example/make-dev-certs.sh" "$work/cwd" > /dev/null 2>&1 || fail "certificates"
cp "$src/examples/outreach/schema.sql" "$work/cwd/schema.sql"
cp "$src/examples/outreach/policy" "$work/cwd/schema.policy"
cp "$src/examples/outreach/watch.json" "$work/cwd/watch.json"

blocks=$(awk '
    /^## / { section = $0 }
    section ~ /^## (Installing|Upgrading)$/ && /^```sh$/ { inside = 1; n++; print "# --- block " n; next }
    inside && /^```$/ { inside = 0; next }
    inside { print }
' "$src/docs/operations.md")
[ "$(printf '%s\n' "$blocks" | grep -c '^# --- block')" -ge 3 ] ||
    fail "expected the install, upgrade and rollback blocks in docs/operations.md"
printf '%s\n' "$blocks" |
    sed -e "s|/etc/outpost|\$ROOT/etc/outpost|g" -e "s|/var/lib/outpost|\$ROOT/var/lib/outpost|g" \
        -e 's|https://localhost:8443|--resolve localhost:$PORT:127.0.0.1 https://localhost:$PORT|g' \
        > "$work/blocks.sh"

cat > "$work/steps.sh" <<'STEPS'
set -euo pipefail
export PATH=$ROOT/usr/sbin:$ROOT/usr/bin:$PATH
apt() {
    [ "$1" = install ] || return 1
    shift
    for deb in "$@"; do
        local name=${deb#./}
        name=${name%%_*}
        dpkg-deb -x "$(ls "$DEBS/${name}"_*.deb | head -n1)" "$ROOT"
    done
}
sudo() { [ "$1" = -u ] && shift 2; "$@"; }
chgrp() { :; }
systemctl() {
    case "$1 ${2:-}" in
    "enable --now"|"start outpostd")
        sed -e "s|/etc/outpost|$ROOT/etc/outpost|g" -e "s|/var/lib/outpost|$ROOT/var/lib/outpost|g" \
            -e 's/^listen = .*/listen = 127.0.0.1/' -e 's/^port = .*/port = 0/' \
            "$ROOT/etc/outpost/outpostd.ini" > "$WORK/run.ini"
        : > "$WORK/outpostd.log"
        "$ROOT/usr/sbin/outpostd" --config "$WORK/run.ini" >> "$WORK/outpostd.log" 2>&1 &
        echo $! > "$WORK/outpostd.pid"
        PORT=
        for _ in $(seq 1 100); do
            PORT=$(sed -n 's/.*outpostd listening .*port=\([0-9]*\).*/\1/p' "$WORK/outpostd.log")
            [ -n "$PORT" ] && return 0
            sleep 0.1
        done
        echo "outpostd did not start: $(cat "$WORK/outpostd.log")" >&2
        return 1 ;;
    "stop outpostd")
        kill "$(cat "$WORK/outpostd.pid")" && wait "$(cat "$WORK/outpostd.pid")" || true ;;
    *) echo "systemctl stand-in: $* not handled" >&2; return 1 ;;
    esac
}
trap 'systemctl stop outpostd 2>/dev/null || true' EXIT
STEPS
cat "$work/blocks.sh" >> "$work/steps.sh"
echo 'echo "ops_docs_check: every block ran"' >> "$work/steps.sh"

(cd "$work/cwd" && ROOT=$work/root DEBS=$work/debs WORK=$work bash "$work/steps.sh") \
    > "$work/run.log" 2>&1 || fail "a documented step failed:
$(tail -n 20 "$work/run.log")
outpostd log: $(tail -n 5 "$work/outpostd.log" 2>/dev/null)"
grep -q 'schema unchanged' "$work/run.log" || fail "the upgrade step did not run: $(cat "$work/run.log")"
[ -f "$work/root/var/lib/outpost/central-before-upgrade.db" ] || fail "no backup was taken"
rm -rf "$work"
echo "ops_docs_check: install, upgrade and rollback ran as docs/operations.md says"
