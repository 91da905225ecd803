#!/usr/bin/env bash
# `make demo`: Outpost's main job, start to finish, on one machine.
#
# An office server and three field devices (two workers in team A, one in team B). Contacts are
# recorded on a device while the server is down; the server comes back and they arrive by
# themselves: team A's other device receives them, team B's does not. Then two workers edit the
# same field of one record at the same time: one value wins, the other is kept in the conflict
# log for a supervisor. Everything runs in demo-run/ and nothing is left running.
#
#   scripts/demo.sh BUILD_DIR
#   OUTPOST_DEMO_RUN=DIR    where it runs (default: demo-run/ in the checkout)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
run=${OUTPOST_DEMO_RUN:-$here/demo-run}
shown_run=${run#"$here"/}
admin=$build/server/outpost-admin
outpostd=$build/server/outpostd
outpost=$build/client-lib/outpost

# Every background process is the program itself (never a shell around it), so these pids are
# the ones to stop: nothing is left running, whichever way the demo ends.
pids=()
server_pid=
cleanup() {
    for p in "${pids[@]}" $server_pid; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

bold=; plain=
if [ -t 1 ]; then bold=$(printf '\033[1m'); plain=$(printf '\033[0m'); fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
note() { printf '   %s\n' "$*"; }

# Polls a command until its output equals want, for at most 30 s.
wait_for() {
    local want=$1; shift
    for _ in $(seq 1 300); do
        [ "$("$@" 2>/dev/null)" = "$want" ] && return 0
        sleep 0.1
    done
    echo "demo: timed out waiting for: $* (wanted '$want', got '$("$@" 2>&1)')" >&2
    return 1
}

rm -rf "$run"
mkdir -p "$run"

say "The office sets up its server"
sh "$here/certs-example/make-dev-certs.sh" "$run/certs" >/dev/null 2>&1
note "development CA and server certificate made in $shown_run/certs (never for the field)"
"$admin" --store "$run/central.db" init --schema "$here/examples/outreach/schema.sql" \
    --policy "$here/examples/outreach/policy" >/dev/null
"$admin" --store "$run/central.db" team add team-a --name "Team A (north)" >/dev/null
"$admin" --store "$run/central.db" team add team-b --name "Team B (south)" >/dev/null
"$admin" --store "$run/central.db" worker add alice --team team-a >/dev/null
"$admin" --store "$run/central.db" worker add bob --team team-a >/dev/null
"$admin" --store "$run/central.db" worker add carol --team team-b >/dev/null
note "central store made from examples/outreach/schema.sql: contacts, missing-from-care"
note "episodes and referrals, each scoped by team"
note "teams: team-a (alice, bob), team-b (carol)"

cat > "$run/outpostd.ini" <<EOF
[server]
listen = 127.0.0.1
port = 0
cert = certs/server.pem
key = certs/server.key
ca = certs/ca.pem
[store]
path = central.db
[log]
level = info
EOF

start_server() {
    "$outpostd" --config "$run/outpostd.ini" >>"$run/outpostd.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 100); do
        port=$(sed -n 's/.*outpostd listening .*port=\([0-9]*\).*/\1/p' "$run/outpostd.log" | tail -n1)
        [ -n "$port" ] && grep -q "port=$port" "$run/outpostd.log" && break
        sleep 0.1
    done
    [ -n "${port:-}" ] || { echo "demo: outpostd did not start; see $run/outpostd.log" >&2; exit 1; }
}
stop_server() {
    kill "$server_pid" && wait "$server_pid" 2>/dev/null || true
    server_pid=
}

start_server
# Later restarts come back on the same port: devices keep the URL they enrolled with.
sed -i "s/^port = 0$/port = $port/" "$run/outpostd.ini"
url="wss://127.0.0.1:$port/sync"
note "outpostd listening on $url"

say "Three devices enroll with one-time codes"
for who in alice bob carol; do
    (umask 077 && head -c 32 /dev/urandom > "$run/$who.key")
    code=$("$admin" --store "$run/central.db" enroll "$who" | sed -n 's/^    \([0-9A-Z-]*\)$/\1/p' | head -n1)
    "$outpost" --db "$run/$who.db" --key-file "$run/$who.key" enroll "$url" "$code" \
        --ca "$run/certs/ca.pem" --name "$who's phone" >/dev/null
    note "$who's phone enrolled with code $code (its replica is encrypted with its own key)"
done
dev() { local who=$1; shift; "$outpost" --db "$run/$who.db" --key-file "$run/$who.key" "$@"; }
count() { dev "$1" query "SELECT count(*) FROM contacts" | tail -n1; }
pending() { dev "$1" status | sed -n 's/^pending entries: *//p'; }

say "The server goes down; alice records contacts with no signal"
stop_server
note "server stopped"
for i in 1 2 3; do
    id=$(cat /proc/sys/kernel/random/uuid)
    dev alice exec "INSERT INTO contacts (id, team_id, worker_id, contacted_at, location, alias,
        age_estimate, risk_indicators, risk_level, needs, provided)
        VALUES ('$id', 'team-a', 'alice', datetime('now'), 'bus station, platform $i', 'J$i',
        $((14 + i)), 'no_id_documents,older_partner', 'medium', 'shelter,food', 'food,toiletries')" \
        >/dev/null
done
note "alice's phone holds $(count alice) contacts; $(pending alice) wait in its outbox"

say "Every phone runs the sync engine; the server is still away"
for who in alice bob carol; do
    "$outpost" --db "$run/$who.db" --key-file "$run/$who.key" watch > "$run/$who.watch.log" 2>&1 &
    pids+=($!)
done
sleep 1
note "alice's phone: $(tail -n1 "$run/alice.watch.log" | cut -d' ' -f2-)"

say "The server comes back; nobody presses anything"
start_server
wait_for 3 count bob
note "bob's phone (team A) now holds $(count bob) contacts, received by itself"
wait_for 0 pending alice
note "alice's outbox: $(pending alice) pending"
sleep 1
note "carol's phone (team B) holds $(count carol) contacts: team A's records never reach it"
note "central store: $(sqlite3 "$run/central.db" 'SELECT count(*) FROM contacts') contacts"

say "Alice and bob edit the same field of one record at once"
target=$(dev alice query "SELECT id FROM contacts ORDER BY id LIMIT 1" | tail -n1)
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
wait "${pids[@]}" 2>/dev/null || true
pids=()
dev alice exec "UPDATE contacts SET risk_level = 'high' WHERE id = '$target'" >/dev/null
sleep 0.05
dev bob exec "UPDATE contacts SET risk_level = 'low' WHERE id = '$target'" >/dev/null
note "alice set risk_level = high; a moment later bob set it to low, both offline"
dev alice sync >/dev/null
dev bob sync >/dev/null
dev alice sync >/dev/null
note "after syncing, alice's phone shows: $(dev alice query "SELECT risk_level FROM contacts WHERE id = '$target'" | tail -n1)"
note "                bob's phone shows:   $(dev bob query "SELECT risk_level FROM contacts WHERE id = '$target'" | tail -n1)"
note "the later edit won; the central conflict log keeps the other value for a supervisor:"
sqlite3 -separator ' | ' "$run/central.db" \
    "SELECT 'column ' || c.name, 'lost: ' || k.losing_value, 'kept: ' || k.winning_value,
            'loser: ' || k.loser_worker
       FROM _outpost_conflicts k
       JOIN _outpost_columns c ON c.table_id = k.table_id AND c.idx = k.col" |
    sed 's/^/     /'

stop_server
password=$(head -c 12 /dev/urandom | base64 | tr -d '/+=')
printf '%s\n' "$password" | "$admin" --store "$run/central.db" user add sara --role supervisor \
    --team team-a --password-fd 0 >/dev/null
printf '%s\n' "$password" > "$run/sara.password"

say "Done: nothing lost, nothing shown to the wrong team, nothing silently overwritten"
note "everything is in $shown_run/ (central.db, outpostd.log, each phone's encrypted replica)"
note "to look at it as team A's supervisor, start the server again on the demo's store:"
note "    ${outpostd#"$here"/} --config $shown_run/outpostd.ini"
note "then open https://127.0.0.1:$port/dashboard/ and log in as sara, password $password"
note "(the browser warns about the development CA; the password is also in $shown_run/sara.password)"
