#!/usr/bin/env bash
# Interop: two-way calendar sync through the binaries (issue 17 "Must
# show"). ewsd (internal/ewstest) plays Exchange, examples/mailserver
# serves CalDAV, and `migrate ews subscribe` syncs alice's calendar
# between them, opening the server's data directory while it runs.
# python3-exchangelib and python3-caldav (.ci/ewssync_scenario.py) make
# and edit an event on each side and see it on the other within 10 s,
# then check that nothing changes any more (no edit loop). Then
# `migrate` is stopped with SIGINT (exit 130) and `ews conflicts` reads
# an empty conflict log. Ports are free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh
start=$(date +%s)
work=$(mktemp -d)
pid= ewspid= syncpid=
cleanup() {
  for p in $syncpid $ewspid $pid; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP_WORK:-}" ]; then echo "work dir kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
py=/usr/bin/python3 # Debian's, with python3-exchangelib and python3-caldav (see TESTING.md)
$py -c 'import exchangelib, caldav' 2>/dev/null || fail "python3-exchangelib or python3-caldav missing (bash .ci/peers.sh installs them)"
build_mailserver "$work"
go build -o "$work/ewsd" ./internal/ewstest/cmd/ewsd
go build -o "$work/migrate" ./examples/migrate

# The mail server with DAV over TLS, its certificate from a private CA
# the CalDAV client trusts.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=interop-ewssync-ca \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
  -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null || fail "making the test CA"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
  -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null || fail "making the server key"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$work/ext.cnf"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial -days 2 \
  -extfile "$work/ext.cnf" -out "$work/server.pem" 2>/dev/null || fail "signing the server certificate"
smtp=$(free_port); sub=$(free_port); subs=$(free_port); http=$(free_port); dav=$(free_port); ews=$(free_port)
write_config "$work/cfg.toml" "$work/data" "$smtp" "$sub" "$subs" "$http" "" "" "$dav"
cat >>"$work/cfg.toml" <<CFG
[tls]
cert_file = "$work/server.pem"
key_file = "$work/server.key"
[auth_checks]
enabled = false
CFG
ms() { "$work/mailserver" -config "$work/cfg.toml" "$@"; }
ms init >/dev/null
ms domain add example.test >/dev/null
ms user add alice@example.test -password 'correct horse' >/dev/null
ms serve >"$work/server.log" 2>&1 &
pid=$!

cat >"$work/seed.json" <<'JSON'
{"users": [
  {"login": "svc", "password": "correct horse", "smtp": "svc@example.test", "impersonate": true},
  {"login": "alice", "password": "correct horse", "smtp": "alice@example.test"}
]}
JSON
"$work/ewsd" -listen "127.0.0.1:$ews" -seed "$work/seed.json" >"$work/ewsd.log" 2>&1 &
ewspid=$!
wait_port 127.0.0.1 "$dav" 20 || fail "no DAV listener"
wait_port 127.0.0.1 "$ews" 20 || fail "ewsd did not start"

echo "correct horse" >"$work/svc.pw"
"$work/migrate" -data "$work/data" -allow 127.0.0.1 ews subscribe --endpoint "http://127.0.0.1:$ews/EWS/Exchange.asmx" \
  --user svc --auth basic --password-file "$work/svc.pw" --impersonate --two-way alice@example.test \
  --poll 300ms --interval 2s alice@example.test >"$work/sync.log" 2>"$work/sync.err" &
syncpid=$!
for _ in $(seq 100); do grep -q "syncing the calendars" "$work/sync.log" 2>/dev/null && break; sleep 0.1; done
grep -q "syncing the calendars of 1 mailboxes (1 two-way, 0 one-way)" "$work/sync.log" || {
  cat "$work/sync.log" "$work/sync.err"; fail "migrate ews subscribe did not start"; }

echo "-- exchangelib (ewsd) <-> migrate ews subscribe <-> CalDAV (mailserver)"
timeout 120 $py .ci/ewssync_scenario.py "http://127.0.0.1:$ews/EWS/Exchange.asmx" "https://localhost:$dav/" \
  "$work/ca.pem" "$work/sync.log" || { echo "--- sync log"; cat "$work/sync.log" "$work/sync.err"; fail "ews sync scenario"; }

kill -INT "$syncpid"
rc=0; wait "$syncpid" || rc=$?
syncpid=
[ "$rc" = 130 ] || { cat "$work/sync.log" "$work/sync.err"; fail "migrate ews subscribe exited $rc after SIGINT, want 130"; }
grep -q "run the same command again to resume" "$work/sync.log" || fail "no resume notice"
"$work/migrate" -data "$work/data" ews conflicts alice@example.test | grep -q "no conflicts for alice@example.test" ||
  fail "ews conflicts"
echo "   stopped by SIGINT (130); ews conflicts: none"
echo "interop-ewssync: ok in $(($(date +%s) - start))s"
