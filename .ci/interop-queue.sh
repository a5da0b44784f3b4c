#!/usr/bin/env bash
# Interop: the outbound queue against Postfix's smtp-sink as the next hop.
#  1. A message for a relay domain, accepted on the MX from anyone, arrives
#     at smtp-sink with its envelope.
#  2. A next hop that is down: the queue retries (queue list shows the
#     attempts and the error), then bounces; the RFC 3464 DSN lands in the
#     sender's INBOX.
#  3. SIGKILL of the server with a full queue (sink down, 60 messages
#     acknowledged), restart, sink up: every message arrives exactly once.
#  4. SIGKILL while deliveries are in flight: every message arrives
#     (at least once).
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh
work=$(mktemp -d)
# smtp-sink drops root privileges: its dump directory lives apart.
sinkdir=$(mktemp -d)
chmod 777 "$sinkdir"
pid=
sinkpid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  [ -n "$sinkpid" ] && kill "$sinkpid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work" "$sinkdir"
}
trap cleanup EXIT
begin=$(date +%s)

build_mailserver "$work"
ms() { "$work/mailserver" -config "$work/cfg.toml" "$@"; }
smtp=$(free_port); sub=$(free_port); subs=$(free_port); http=$(free_port)
sink=$(free_port); down=$(free_port)
write_config "$work/cfg.toml" "$work/data" "$smtp" "$sub" "$subs" "$http"
cat >>"$work/cfg.toml" <<CFG
[queue]
retry_min = "500ms"
retry_max = "1s"
delay_warning = "0s"
expiry = "5s"
[[routing.relay_domain]]
domain = "sink.test"
next_hop = "[127.0.0.1]:$sink"
[[routing.relay_domain]]
domain = "down.test"
next_hop = "[127.0.0.1]:$down"
CFG

ms init
ms domain add example.test
ms user add alice@example.test -password 'correct horse' >/dev/null

start_server() {
  "$work/mailserver" -config "$work/cfg.toml" serve >>"$work/server.log" 2>&1 &
  pid=$!
  wait_port 127.0.0.1 "$smtp"
}
start_sink() {
  local user=()
  [ "$(id -u)" = 0 ] && user=(-u nobody)
  smtp-sink "${user[@]}" -d "$sinkdir/m." "127.0.0.1:$sink" 256 &
  sinkpid=$!
  wait_port 127.0.0.1 "$sink"
}
stop_sink() { kill "$sinkpid"; wait "$sinkpid" 2>/dev/null || true; sinkpid=; }
fail() { echo "FAIL: $*"; echo "--- server log"; tail -40 "$work/server.log"; exit 1; }
# subjects prints the Subject of every message smtp-sink dumped.
subjects() { cat "$sinkdir"/m.* 2>/dev/null | tr -d '\r' | sed -n 's/^Subject: //p'; }
# send_many PORT PREFIX N sends N messages to sink.test over one session.
send_many() {
  python3 - "$1" "$2" "$3" <<'PY'
import smtplib, sys
port, prefix, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
with smtplib.SMTP("127.0.0.1", port) as s:
    for i in range(n):
        s.sendmail("sender@remote.test", ["rcpt%d@sink.test" % i],
                   "From: <sender@remote.test>\r\nSubject: %s-%d\r\n\r\nbody %d\r\n" % (prefix, i, i))
PY
}
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local secs=$1 what=$2 i
  shift 2
  for ((i = 0; i < secs * 10; i++)); do
    if "$@"; then return 0; fi
    sleep 0.1
  done
  fail "timed out after ${secs}s waiting for $what"
}

start_sink
start_server

echo "-- 1. relay domain: swaks to the MX, smtp-sink receives it"
swaks --server 127.0.0.1 --port "$smtp" --from sender@remote.test --to bob@sink.test \
  --header 'Subject: relay-1' >"$work/swaks1.log" 2>&1 || { cat "$work/swaks1.log"; fail "swaks relay"; }
relayed() { [ "$(subjects)" = relay-1 ]; }
wait_for 20 "the relayed message at smtp-sink" relayed
grep -q 'bob@sink.test' "$sinkdir"/m.* || fail "sink dump lacks the recipient"

echo "-- 2. next hop down: retries, then a DSN in the sender's INBOX"
swaks --server 127.0.0.1 --port "$sub" --tls --auth PLAIN --auth-user alice@example.test \
  --auth-password 'correct horse' --from alice@example.test --to carol@down.test \
  --header 'Subject: to a dead host' >"$work/swaks2.log" 2>&1 || { cat "$work/swaks2.log"; fail "swaks submission"; }
retried() { ms queue list | awk '$5 == "carol@down.test" && $7 >= 2' | grep -q .; }
wait_for 10 "two failed attempts in queue list" retried
ms queue list | grep -q 'refused' || { ms queue list; fail "queue list shows no connection error"; }
has_dsn() { ms mail list alice@example.test INBOX | tail -n +2 | grep -q .; }
wait_for 20 "the DSN" has_dsn
ms mail cat alice@example.test INBOX 1 >"$work/dsn.eml"
for want in 'multipart/report; report-type=delivery-status' 'Final-Recipient: rfc822; carol@down.test' \
  'Action: failed' 'Status: 4.4.7' 'Subject: to a dead host'; do
  grep -qF "$want" "$work/dsn.eml" || { cat "$work/dsn.eml"; fail "DSN lacks: $want"; }
done
[ -z "$(ms queue list | sed 1d)" ] || fail "queue not empty after the bounce"

echo "-- 3. SIGKILL with a full queue (sink down), restart: nothing lost, nothing doubled"
stop_sink
send_many "$smtp" full 60
queued=$(ms queue list | sed 1d | wc -l)
[ "$queued" = 60 ] || fail "$queued recipients queued, want 60"
kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=
start_sink
start_server
all_full() { [ "$(subjects | grep -c '^full-' || true)" -ge 60 ]; }
wait_for 40 "60 messages at the sink" all_full
n=$(subjects | grep '^full-' | sort -u | wc -l || true)
total=$(subjects | grep -c '^full-' || true)
[ "$n" = 60 ] && [ "$total" = 60 ] || fail "sink has $n distinct / $total messages, want 60 / 60"
drained() { [ -z "$(ms queue list | sed 1d)" ]; }
wait_for 10 "an empty queue" drained

echo "-- 4. SIGKILL during deliveries: everything arrives (at least once)"
before=$(grep -c 'message queued' "$work/server.log" || true)
send_many "$smtp" flight 200 >/dev/null 2>&1 &
sender=$!
some_queued() { [ "$(grep -c 'message queued' "$work/server.log" || true)" -ge $((before + 30)) ]; }
wait_for 20 "30 messages acknowledged" some_queued
kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=
wait "$sender" 2>/dev/null || true # the session dies with the server
# Each 250 follows its "message queued" log line.
acked=$(( $(grep -c 'message queued' "$work/server.log") - before ))
start_server
# Every message the server acknowledged before the kill must arrive; the
# sender's log does not say which, so count those the sink saw and those
# still queued after the queue drains.
wait_for 40 "an empty queue after the restart" drained
n=$(subjects | grep '^flight-' | sort -u | wc -l || true)
total=$(subjects | grep -c '^flight-' || true)
[ "$n" -ge "$acked" ] || fail "only $n of the $acked messages queued before the kill arrived"
echo "   $acked queued before the kill; $n distinct messages arrived ($total with duplicates)"
python3 - "$sinkdir" <<'PY' || fail "a message acknowledged before the kill is missing"
import glob, re, sys
# The sender sends flight-0, flight-1, ... in order over one session; the
# server acknowledged a prefix of them. All of that prefix must be there.
got = set()
for f in glob.glob(sys.argv[1] + "/m.*"):
    m = re.search(rb"^Subject: flight-(\d+)\r?$", open(f, "rb").read(), re.M)
    if m:
        got.add(int(m.group(1)))
if got:
    missing = [i for i in range(max(got) + 1) if i not in got]
    assert not missing, missing
PY
echo "interop-queue: ok ($(( $(date +%s) - begin ))s)"
