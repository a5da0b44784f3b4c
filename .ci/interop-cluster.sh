#!/usr/bin/env bash
# Interop: two reference servers on one PostgreSQL database behind HAProxy
# (Debian haproxy) with the PROXY protocol (README "Behind a load
# balancer", "The reference server on PostgreSQL").
#  0. HAProxy's checks pass on both nodes: "option smtpchk" on SMTP,
#     "option httpchk GET /healthz" (which asks the store, so the shared
#     database) on IMAP.
#  1. swaks, bound to 127.0.0.5, submits two messages through HAProxy
#     (round robin: one lands on each node); an imaplib client in IDLE on
#     the other node reports each within 1 s of the 250 (the LISTEN/NOTIFY
#     change feed).
#  2. The stored Received fields and the accepting node's log name
#     127.0.0.5, not HAProxy's 127.0.0.1; a PROXY header sent directly
#     from an untrusted address (127.0.0.6) is refused.
#  3. 10,000 messages through HAProxy (.ci/cluster_send.py: concurrent
#     sessions that record every 250) while node 2 is killed with SIGKILL
#     and restarted three times: every acknowledged message is in the
#     mailbox exactly once (by Message-ID), and `mailserver check` finds
#     nothing wrong.
#  4. 2,000 messages for a relay domain queued through both nodes while
#     the next hop (Postfix's smtp-sink) is down; once it is up both nodes
#     deliver, and node 1 is killed with SIGKILL mid-delivery and not
#     restarted: node 2 takes node 1's claims when their lease ends. Every
#     message reaches the sink; none twice before the kill (the nodes
#     never attempt one recipient both), and after it only the attempts
#     node 1 had in flight may come twice (at-least-once: the sink's 250
#     without node 1's record of it).
# Ports CLUSTER_PORT_BASE..+50 on 127.0.0.1 (default 21000); database
# cluster_<pid>.
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh
begin=$(date +%s)
for c in swaks smtp-sink psql python3; do
  command -v "$c" >/dev/null || bash .ci/peers.sh >/dev/null
done
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || bash .ci/peers.sh >/dev/null
haproxy=$(command -v haproxy || echo /usr/sbin/haproxy)
work=$(mktemp -d)
chmod 755 "$work"
sinkdir=$(mktemp -d) # smtp-sink drops root privileges: its dumps live apart
chmod 777 "$sinkdir"
db="cluster_$$"
pg() { psql -h 127.0.0.1 -U postgres -Atq "$@"; }
pid1= pid2= hapid= sinkpid= sendpid=
cleanup() {
  for p in $sendpid $hapid $sinkpid $pid1 $pid2; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null
  pg -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" 2>/dev/null || true
  if [ -n "${KEEP_WORK:-}" ]; then echo "work dirs kept: $work $sinkdir"; else rm -rf "$work" "$sinkdir"; fi
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  for n in 1 2; do [ -f "$work/node$n.log" ] && { echo "--- node $n log"; tail -25 "$work/node$n.log"; }; done
  [ -f "$work/haproxy.log" ] && { echo "--- haproxy log"; tail -15 "$work/haproxy.log"; }
  exit 1
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

# Node n listens on base+n1..base+n5; HAProxy on base+4x; the sink on
# base+50.
pb=${CLUSTER_PORT_BASE:-21000}
fe_smtp=$((pb + 41)) fe_sub=$((pb + 42)) fe_imap1=$((pb + 45)) fe_imap2=$((pb + 46)) sink=$((pb + 50))
port() { echo $((pb + 10 * $1 + $2)); } # port NODE 1..5: smtp sub subs http imap
pg -d postgres -c "CREATE DATABASE $db" || fail "cannot create database $db on 127.0.0.1:5432"
dsn="postgres://postgres@127.0.0.1:5432/$db?sslmode=disable"
build_mailserver "$work"
for n in 1 2; do
  cfg="$work/cfg$n.toml"
  write_config "$cfg" "$work/data$n" "$(port $n 1)" "$(port $n 2)" "$(port $n 3)" "$(port $n 4)" "$(port $n 5)"
  for s in smtp submission imap; do sed -i "/^\[$s\]\$/a proxy_protocol = true" "$cfg"; done
  sed -i '/^\[imap\]$/a allow_insecure_auth = true' "$cfg"
  cat >>"$cfg" <<CFG
[proxy]
trusted = ["127.0.0.1/32"]
header_timeout = "2s"
[store]
backend = "postgres"
dsn = "$dsn"
pool_size = 8
[auth_checks]
enabled = false
[queue]
retry_min = "1s"
retry_max = "2s"
delay_warning = "0s"
lease = "10s"
[[routing.relay_domain]]
domain = "sink.test"
next_hop = "[127.0.0.1]:$sink"
CFG
done
ms() { "$work/mailserver" -config "$work/cfg1.toml" "$@"; }
ms init >/dev/null
ms domain add example.test >/dev/null
ms user add alice@example.test -password 'correct horse' >/dev/null
ms user add bob@example.test -password 'battery staple' >/dev/null
ms user add bulk@example.test -password 'bulk bulk' >/dev/null

start_node() { # start_node N
  "$work/mailserver" -config "$work/cfg$1.toml" serve >>"$work/node$1.log" 2>&1 &
  eval "pid$1=$!"
  wait_port 127.0.0.1 "$(port "$1" 1)" 30 || fail "node $1 did not start"
  wait_port 127.0.0.1 "$(port "$1" 5)" 30 || fail "node $1 IMAP did not start"
}
kill_node() { # kill_node N: SIGKILL
  local p
  p=$(eval echo "\$pid$1")
  kill -9 "$p"
  wait "$p" 2>/dev/null || true
  eval "pid$1="
}
start_node 1
start_node 2

cat >"$work/haproxy.cfg" <<CFG
global
  stats socket $work/haproxy.sock mode 600 level admin
defaults
  mode tcp
  log stdout format short daemon
  option redispatch
  retries 3
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  timeout check 2s
frontend smtp_in
  bind 127.0.0.1:$fe_smtp
  default_backend smtp_nodes
backend smtp_nodes
  balance roundrobin
  option smtpchk EHLO haproxy.example.test
  server node1 127.0.0.1:$(port 1 1) check inter 500ms fall 2 rise 2 send-proxy-v2
  server node2 127.0.0.1:$(port 2 1) check inter 500ms fall 2 rise 2 send-proxy-v2
frontend submission_in
  bind 127.0.0.1:$fe_sub
  default_backend submission_nodes
backend submission_nodes
  balance roundrobin
  server node1 127.0.0.1:$(port 1 2) check inter 500ms send-proxy
  server node2 127.0.0.1:$(port 2 2) check inter 500ms send-proxy
frontend imap_node1
  bind 127.0.0.1:$fe_imap1
  default_backend imap1
backend imap1
  option httpchk GET /healthz
  http-check expect string ok
  server node1 127.0.0.1:$(port 1 5) check port $(port 1 4) inter 500ms fall 2 rise 2 send-proxy-v2
frontend imap_node2
  bind 127.0.0.1:$fe_imap2
  default_backend imap2
backend imap2
  option httpchk GET /healthz
  http-check expect string ok
  server node2 127.0.0.1:$(port 2 5) check port $(port 2 4) inter 500ms fall 2 rise 2 send-proxy-v2
CFG
"$haproxy" -c -q -f "$work/haproxy.cfg" || fail "haproxy rejects its config"
"$haproxy" -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
hapid=$!
wait_port 127.0.0.1 "$fe_smtp"
# all_up: HAProxy's checks pass on both nodes: smtpchk on the MX and
# submission backends, and /healthz (each node's store answers: the
# shared database) on the IMAP ones.
all_up() {
  python3 - "$work/haproxy.sock" <<'PY'
import csv, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"show stat\n"); out = b""
while chunk := s.recv(65536): out += chunk
rows = [r for r in csv.DictReader(out.decode().lstrip("# ").splitlines()) if r["pxname"] in ("smtp_nodes", "submission_nodes", "imap1", "imap2") and r["svname"].startswith("node")]
sys.exit(0 if len(rows) == 6 and all(r["status"] == "UP" for r in rows) else 1)
PY
}
wait_for 20 "HAProxy's checks to pass on both nodes" all_up

echo "-- 1. swaks through HAProxy, IDLE on the other node"
python3 - "$work" "$fe_sub" "$fe_imap1" "$fe_imap2" <<'PY' || fail "IDLE on the other node"
import imaplib, subprocess, sys, threading, time
work, fe_sub, imap_fe = sys.argv[1], int(sys.argv[2]), {1: int(sys.argv[3]), 2: int(sys.argv[4])}
events = {1: [], 2: []}  # per node: (time, line) of untagged EXISTS

def idle(node, ready):
    m = imaplib.IMAP4("127.0.0.1", imap_fe[node], timeout=30)
    m.login("bob@example.test", "battery staple")
    m.select("INBOX")
    m.send(b"i1 IDLE\r\n")
    assert m.readline().startswith(b"+"), "no IDLE continuation"
    ready.set()
    m.sock.settimeout(60)  # the thread is a daemon: the script ends it
    while len(events[node]) < 2:
        line = m.readline()
        if line.endswith(b"EXISTS\r\n"):
            events[node].append((time.time(), line.strip().decode()))

def accepted(node):
    return sum("message accepted" in l and "listener=submission" in l for l in open("%s/node%d.log" % (work, node)))

threads = []
for node in (1, 2):
    ready = threading.Event()
    t = threading.Thread(target=idle, args=(node, ready), daemon=True)
    t.start(); threads.append(t)
    assert ready.wait(30), "IDLE did not start on node %d" % node
seen = set()
for k in (1, 2):
    before = {n: accepted(n) for n in (1, 2)}
    r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(fe_sub), "--local-interface", "127.0.0.5",
                        "--tls", "--auth", "PLAIN", "--auth-user", "alice@example.test", "--auth-password", "correct horse",
                        "--from", "alice@example.test", "--to", "bob@example.test", "--header", "Subject: cluster %d" % k],
                       capture_output=True, text=True)
    done = time.time()
    assert r.returncode == 0, r.stdout + r.stderr
    node = [n for n in (1, 2) if accepted(n) > before[n]]
    assert len(node) == 1, "accepted by %s" % node
    other = 3 - node[0]
    seen.add(node[0])
    deadline = done + 10
    while len(events[other]) < k and time.time() < deadline:
        time.sleep(0.01)
    assert len(events[other]) >= k, "node %d never reported message %d" % (other, k)
    at, line = events[other][k - 1]
    print("message %d: accepted by node %d; IDLE on node %d: '%s' %+.0f ms after swaks ended" % (k, node[0], other, line, (at - done) * 1000))
    assert at - done <= 1.0, "node %d reported it %.2fs after the 250" % (other, at - done)
assert seen == {1, 2}, "both messages went to node %s (HAProxy round robin?)" % seen
PY

echo "-- 2. the client's address through HAProxy; untrusted PROXY headers refused"
for uid in 1 2; do
  ms mail cat bob@example.test INBOX "$uid" >"$work/msg$uid.eml"
  check_received "$work/msg$uid.eml"
done
for n in 1 2; do
  grep "message accepted" "$work/node$n.log" | grep "listener=submission " | grep -q "remote=127.0.0.5 " \
    || fail "node $n log does not show remote=127.0.0.5"
done
python3 - "$(port 1 1)" "$(port 2 5)" <<'PY' || fail "untrusted PROXY header"
import socket, sys
sys.path.insert(0, ".ci")
from proxy_probe import talk
g, out = talk(int(sys.argv[1]), b"PROXY TCP4 203.0.113.9 127.0.0.1 4000 25\r\nEHLO spoof\r\nQUIT\r\n")
assert g.startswith(b"220 ") and b"250" not in out and b"<timeout>" not in out, (g, out)
sig = b"\r\n\r\n\x00\r\nQUIT\n"
hdr = sig + bytes([0x21, 0x11, 0, 12]) + socket.inet_aton("203.0.113.9") + socket.inet_aton("127.0.0.1") + (4000).to_bytes(2, "big") + (143).to_bytes(2, "big")
g, out = talk(int(sys.argv[2]), hdr + b"a1 CAPABILITY\r\n")
assert g.startswith(b"* OK") and b"a1 OK" not in out and b"<timeout>" not in out, (g, out)
print("PROXY v1 to node 1's MX and v2 to node 2's IMAP from 127.0.0.6: refused")
PY
for n in 1 2; do
  grep 'PROXY header from an untrusted source' "$work/node$n.log" | grep -q 'remote=127.0.0.6 ' \
    || fail "node $n: no log line for the untrusted header"
done

echo "-- 3. 10,000 messages through HAProxy; node 2 killed (SIGKILL) and restarted 3 times"
mkdir -p "$work/load"
python3 .ci/cluster_send.py 127.0.0.1 "$fe_smtp" "${LOAD:-10000}" 8 bulk@example.test load "$work/load" 127.0.0.5 >"$work/load.out" 2>&1 &
sendpid=$!
acks() { cat "$work/load/progress" 2>/dev/null || echo 0; }
for at in 2000 4500 7000; do
  at=$((at * ${LOAD:-10000} / 10000))
  reached() { [ "$(acks)" -ge "$at" ] || ! kill -0 "$sendpid" 2>/dev/null; }
  wait_for 300 "$at acknowledged messages" reached
  kill -0 "$sendpid" 2>/dev/null || break
  kill_node 2
  echo "   node 2 killed at $(acks) acknowledged"
  sleep 1
  start_node 2
done
wait "$sendpid" || { cat "$work/load.out"; fail "the sender"; }
sendpid=
cat "$work/load.out"
python3 - "$fe_imap1" "$work/load" <<'PY' || fail "acknowledged messages in the mailbox"
import collections, imaplib, re, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]), timeout=120)
m.login("bulk@example.test", "bulk bulk")
typ, data = m.select("INBOX")
typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
assert typ == "OK", (typ, data[:1])
ids = collections.Counter()
for item in data:
    if isinstance(item, tuple):
        mm = re.search(rb"<[^>]+>", item[1])
        ids[mm.group(0).decode() if mm else None] += 1
m.logout()
acked = open(sys.argv[2] + "/acked").read().split()
tried = set(open(sys.argv[2] + "/tried").read().split())
missing = [a for a in acked if ids[a] == 0]
twice = [i for i, n in ids.items() if n > 1]
stray = [i for i in ids if i not in tried]
extra = sum(ids.values()) - len(acked)
print("mailbox: %d messages, %d distinct; %d acknowledged; %d stored without the client seeing the 250"
      % (sum(ids.values()), len(ids), len(acked), extra))
assert not missing, "%d acknowledged messages missing, e.g. %s" % (len(missing), missing[:5])
assert not twice, "%d messages stored twice, e.g. %s" % (len(twice), twice[:5])
assert not stray, "unknown messages: %s" % stray[:5]
PY
ms check >"$work/check.out" 2>&1 || { cat "$work/check.out"; fail "mailserver check"; }
grep -q 'store ok' "$work/check.out" || { cat "$work/check.out"; fail "mailserver check did not say store ok"; }
echo "   mailserver check: $(tr '\n' ' ' <"$work/check.out")"

echo "-- 4. 2,000 queued messages to smtp-sink from two nodes; node 1 killed mid-delivery"
mkdir -p "$work/relay"
python3 .ci/cluster_send.py 127.0.0.1 "$fe_smtp" "${RELAY:-2000}" 8 'rcpt%d@sink.test' relay "$work/relay" >"$work/relay.out" 2>&1 \
  || { cat "$work/relay.out"; fail "queueing through HAProxy"; }
cat "$work/relay.out"
for n in 1 2; do echo "   node $n queued $(grep -c 'message queued' "$work/node$n.log" || true)"; done
user=()
[ "$(id -u)" = 0 ] && user=(-u nobody)
smtp-sink "${user[@]}" -d "$sinkdir/m." "127.0.0.1:$sink" 256 &
sinkpid=$!
wait_port 127.0.0.1 "$sink"
at_sink() { grep -l '^Message-ID: <relay-' "$sinkdir"/m.* 2>/dev/null | wc -l; }
some() { [ "$(at_sink)" -ge $((${RELAY:-2000} / 4)) ]; }
wait_for 120 "a quarter of the messages at the sink" some
kill_node 1
killed_at=$(date +%s.%N)
echo "   node 1 killed with $(at_sink) messages at the sink"
drained() { [ -z "$("$work/mailserver" -config "$work/cfg2.toml" queue list | sed 1d)" ]; }
wait_for 120 "node 2 to drain the queue (node 1's claims after their lease)" drained
python3 - "$sinkdir" "$work/relay/acked" "$killed_at" <<'PY' || fail "hand-over to the sink"
import collections, glob, os, re, sys
sinkdir, acked, killed_at = sys.argv[1], open(sys.argv[2]).read().split(), float(sys.argv[3])
seen, before = collections.Counter(), collections.Counter()
for f in glob.glob(sinkdir + "/m.*"):
    data = open(f, "rb").read()
    for mid in re.findall(rb"^Message-ID: (<relay-[^>]+>)\r?$", data, re.M):
        seen[mid.decode()] += 1
        if os.path.getmtime(f) < killed_at:
            before[mid.decode()] += 1
missing = [a for a in acked if seen[a] == 0]
twice_before = [m for m, n in before.items() if n > 1]
twice = [m for m, n in seen.items() if n > 1]
print("sink: %d messages, %d distinct, of %d acknowledged; %d twice (all after the kill)" % (sum(seen.values()), len(seen), len(acked), len(twice)))
assert not missing, "%d never reached the sink, e.g. %s" % (len(missing), missing[:5])
assert not twice_before, "handed over twice while both nodes ran: %s" % twice_before[:5]
# Node 1 had at most per_destination (8) attempts in flight to the sink.
assert len(twice) <= 8, "%d handed over twice; node 1 had at most 8 in flight" % len(twice)
PY
grep -q 'msg=delivered' "$work/node2.log" || fail "node 2 delivered nothing"
echo "   node 1 delivered $(grep -c 'msg=delivered' "$work/node1.log" || true), node 2 $(grep -c 'msg=delivered' "$work/node2.log" || true)"
ms check >"$work/check.out" 2>&1 || { cat "$work/check.out"; fail "mailserver check after the queue"; }

kill -TERM "$pid2"; wait "$pid2" || true; pid2=
echo "interop-cluster: ok ($(($(date +%s) - begin))s)"
