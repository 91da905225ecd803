#!/bin/sh
# Runs a browser test in headless Chromium: the dashboard's (dashboard.test.mjs, the default)
# or another one of this folder (field.test.mjs: the field app).
#
#   tests/browser/run.sh SOURCE_DIR BUILD_DIR [TEST.mjs]
#
# Installs what a fresh machine lacks: Debian's chromium (apt-get; playwright never downloads a
# browser) and playwright-core from package-lock.json (npm ci, into BUILD_DIR/tests/browser so
# that the source tree keeps no node_modules). Screenshots go to BUILD_DIR/tests/artifacts/.
set -eu

src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
work=$build/tests/browser
test=${3:-dashboard.test.mjs}

missing=
[ -x /usr/bin/chromium ] || missing="chromium"
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
if [ -n "$missing" ]; then
    echo "run.sh: installing Debian's$missing" >&2
    sudo=
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq >&2
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >&2
fi

mkdir -p "$work" "$build/tests/artifacts"
if ! cmp -s "$src/tests/browser/package-lock.json" "$work/package-lock.json" ||
   [ ! -d "$work/node_modules/playwright-core" ]; then
    cp "$src/tests/browser/package.json" "$src/tests/browser/package-lock.json" "$work/"
    (cd "$work" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
cp "$src/tests/browser/$test" "$src/tests/browser/harness.mjs" "$src/tests/browser/watch.steps.mjs" \
   "$src/tests/browser/field-dashboard.steps.mjs" "$work/"
cd "$work"
OUTPOST_SOURCE_DIR=$src OUTPOST_BUILD_DIR=$build \
    OUTPOST_ARTIFACTS=$build/tests/artifacts exec node "$test"
