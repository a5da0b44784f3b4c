#!/usr/bin/env bash
# Interop: Exchange to Mailyard end to end through the binaries (issue 17
# "Must show", second point). ewsd (internal/ewstest) plays Exchange with
# alice's mailbox of 2,000 messages, 500 calendar items (100 recurring
# series with a deleted and a moved occurrence, in three time zones) and
# 300 contacts (ewstest.Generate; zones Europe/Berlin, Europe/Moscow,
# America/New_York); examples/mailserver serves IMAP and CalDAV/CardDAV.
# 1. `migrate ews sync` copies the mailbox while the server runs; it is
#    SIGKILLed twice mid-run (early, while the calendar is being copied,
#    then half-way through the mail) and rerun to completion; one more
#    run then copies nothing.
# 2. .ci/ewsmigrate_check.py: the instances of every event over two years
#    read back over CalDAV equal Exchange's, every message is in INBOX
#    over IMAP once with its flags, every contact once over CardDAV.
# 3. `migrate ews subscribe --two-way` over the migrated calendar:
#    .ci/ewssync_scenario.py makes and edits an event on each side and sees
#    it on the other within 10 s, then checks that nothing changes any more
#    (no edit loop). `migrate` is stopped with SIGINT (exit 130) and
#    `ews conflicts` reads an empty conflict log.
# Ports: EWSSYNC_PORT_BASE..+6 when set, else free loopback ports.
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
# One go build links the three binaries in parallel (half the time of
# three builds on a loaded machine), or .ci/interop.sh's are copied.
build_bin "$work" ./examples/mailserver ./internal/ewstest/cmd/ewsd ./examples/migrate

if [ -n "${EWSSYNC_PORT_BASE:-}" ]; then
  read -r smtp sub subs http imap dav ews < <(seq "$EWSSYNC_PORT_BASE" $((EWSSYNC_PORT_BASE + 6)) | xargs)
else
  smtp=$(free_port); sub=$(free_port); subs=$(free_port); http=$(free_port); imap=$(free_port); dav=$(free_port); ews=$(free_port)
fi

# ewsd generates the mailbox while the mail server is set up.
# The generator's calendar starts on this Monday; the instances are
# compared over the two years from it (ewstest.Generate).
first=2026-01-05
cat >"$work/seed.json" <<JSON
{"users": [
  {"login": "svc", "password": "correct horse", "smtp": "svc@example.test", "impersonate": true},
  {"login": "alice", "password": "correct horse", "smtp": "alice@example.test",
   "generate": {"messages": 2000, "calendar_items": 500, "recurring": 100, "contacts": 300, "start": "${first}T00:00:00Z"}}
]}
JSON
"$work/ewsd" -listen "127.0.0.1:$ews" -seed "$work/seed.json" >"$work/ewsd.log" 2>&1 &
ewspid=$!

# The mail server with DAV over TLS, its certificate from a private CA
# the CalDAV client trusts.
make_server_cert "$work" interop-ewssync-ca
write_config "$work/cfg.toml" "$work/data" "$smtp" "$sub" "$subs" "$http" "$imap" "" "$dav"
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
# The binary itself in the background, not the function (a subshell
# whose pid would leave the server running after cleanup's kill).
"$work/mailserver" -config "$work/cfg.toml" serve >"$work/server.log" 2>&1 &
pid=$!

wait_port 127.0.0.1 "$dav" 20 || fail "no DAV listener"
wait_port 127.0.0.1 "$imap" 20 || fail "no IMAP listener"
wait_port 127.0.0.1 "$ews" 60 || fail "ewsd did not start (it generates the mailbox first)"
echo "correct horse" >"$work/svc.pw"
endpoint="http://127.0.0.1:$ews/EWS/Exchange.asmx"
mig() { "$work/migrate" -data "$work/data" -allow 127.0.0.1 "$@"; }

# 1. The migration, killed twice with SIGKILL and rerun. A kill comes
# once the progress line shows at least $2 messages copied.
killed_at() {
  local log="$work/sync-$1.log" n=0 rc=0 spid
  # The binary itself, not a function (a subshell): SIGKILL must reach it.
  "$work/migrate" -data "$work/data" -allow 127.0.0.1 ews sync --endpoint "$endpoint" --user svc --auth basic \
    --password-file "$work/svc.pw" --impersonate --progress-every 100ms alice@example.test >"$log" 2>&1 &
  spid=$!
  while kill -0 "$spid" 2>/dev/null; do
    n=$(sed -n 's/^progress: [0-9]*\/[0-9]* mailboxes, \([0-9]*\)\/.*/\1/p' "$log" | tail -1)
    [ "${n:-0}" -ge "$2" ] && break
    sleep 0.05
  done
  kill -KILL "$spid" 2>/dev/null || true
  { wait "$spid"; } 2>/dev/null || rc=$?
  [ "$rc" = 137 ] && ! grep -q "completed" "$log" || { cat "$log"; fail "migrate ews sync finished before the kill (exit $rc)"; }
  echo "   SIGKILL $1: the target holds $($py .ci/ewsmigrate_check.py count "$imap" "https://localhost:$dav/" "$work/ca.pem")"
}
el() { echo "$(($(date +%s) - start))s"; }
echo "-- $(el) migrate ews sync: 2,000 messages, 500 events (100 series), 300 contacts"
killed_at 1 1
killed_at 2 1000
mig ews sync --endpoint "$endpoint" --user svc --auth basic --password-file "$work/svc.pw" --impersonate \
  alice@example.test >"$work/sync-3.log" 2>&1 || { cat "$work/sync-3.log"; fail "the rerun of migrate ews sync"; }
grep "alice@example.test: ok" "$work/sync-3.log" | sed "s/^/   $(el) rerun: /"
grep -q "run [0-9]* completed: 1 mailboxes, 1 ok" "$work/sync-3.log" || { cat "$work/sync-3.log"; fail "the rerun did not complete"; }
# Once complete, a further run finds nothing to copy.
mig ews sync --endpoint "$endpoint" --user svc --auth basic --password-file "$work/svc.pw" --impersonate \
  alice@example.test >"$work/sync-4.log" 2>&1 || { cat "$work/sync-4.log"; fail "the last run of migrate ews sync"; }
grep -q "alice@example.test: ok: copied 0 messages (0 B) in 5 folders, 0 events, 0 contacts" "$work/sync-4.log" ||
  { cat "$work/sync-4.log"; fail "a run after the complete one copied something"; }
echo "   $(el) one more run: copied 0 messages, 0 events, 0 contacts"

# 2. What real clients read from the mail server against the source.
echo "-- $(el) ewsd's EWS answers against IMAP, CalDAV and CardDAV (mailserver)"
timeout 120 $py .ci/ewsmigrate_check.py check "$endpoint" "$imap" "https://localhost:$dav/" "$work/ca.pem" "$first" ||
  fail "the migrated mailbox differs from the source"

# 3. Two-way sync of the migrated calendar; its first pass must write
# nothing on either side (the snapshot is every ChangeKey and ETag).
$py .ci/ewssync_scenario.py "$endpoint" "https://localhost:$dav/" "$work/ca.pem" snapshot "$work/snapshot.json" ||
  fail "snapshot of the calendars"
"$work/migrate" -data "$work/data" -allow 127.0.0.1 ews subscribe --endpoint "$endpoint" \
  --user svc --auth basic --password-file "$work/svc.pw" --impersonate --two-way alice@example.test \
  --poll 300ms --interval 2s alice@example.test >"$work/sync.log" 2>"$work/sync.err" &
syncpid=$!
for _ in $(seq 100); do grep -q "syncing the calendars" "$work/sync.log" 2>/dev/null && break; sleep 0.1; done
grep -q "syncing the calendars of 1 mailboxes (1 two-way, 0 one-way)" "$work/sync.log" || {
  cat "$work/sync.log" "$work/sync.err"; fail "migrate ews subscribe did not start"; }

echo "-- $(el) exchangelib (ewsd) <-> migrate ews subscribe --two-way <-> CalDAV (mailserver)"
timeout 120 $py .ci/ewssync_scenario.py "$endpoint" "https://localhost:$dav/" \
  "$work/ca.pem" "$work/sync.log" "$work/snapshot.json" || { echo "--- sync log"; cat "$work/sync.log" "$work/sync.err"; fail "ews sync scenario"; }

kill -INT "$syncpid"
rc=0; wait "$syncpid" || rc=$?
syncpid=
[ "$rc" = 130 ] || { cat "$work/sync.log" "$work/sync.err"; fail "migrate ews subscribe exited $rc after SIGINT, want 130"; }
grep -q "run the same command again to resume" "$work/sync.log" || fail "no resume notice"
"$work/migrate" -data "$work/data" ews conflicts alice@example.test | grep -q "no conflicts for alice@example.test" ||
  fail "ews conflicts"
echo "   stopped by SIGINT (130); ews conflicts: none"
echo "interop-ewssync: ok in $(($(date +%s) - start))s"
