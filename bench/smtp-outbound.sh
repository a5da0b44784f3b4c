#!/usr/bin/env bash
# Whole-system benchmark: outbound relaying throughput, ours vs Postfix,
# side by side in one run, both relaying to the same kind of next hop
# (Postfix's smtp-sink on a loopback port). See bench/README.md.
#
#   bash bench/smtp-outbound.sh
#
# Load: smtp-source, SESSIONS parallel sessions, MESSAGES messages of SIZE
# bytes, one recipient in a relay domain whose next hop is smtp-sink.
# Rate = MESSAGES / (time from the start of smtp-source until smtp-sink
# has seen every message). Both servers fsync their queue before the 250
# and deliver over reused connections; TLS is off on both sides (the sink
# offers none).
#
# Environment: MESSAGES=5000 SESSIONS=10 SIZE=4096 TIMEOUT=300 ONLY=ours|postfix
# Writes bench/out/smtp-outbound-<UTC time>/ and prints a README row.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. .ci/lib.sh

MESSAGES=${MESSAGES:-5000}
SESSIONS=${SESSIONS:-10}
SIZE=${SIZE:-4096}
TIMEOUT=${TIMEOUT:-300}
ONLY=${ONLY:-}
[ "$(id -u)" = 0 ] || { echo "run as root: the private Postfix instance needs it" >&2; exit 2; }
for c in smtp-source smtp-sink postfix python3; do
  command -v "$c" >/dev/null || { echo "missing: $c (bash .ci/peers.sh)" >&2; exit 2; }
done

stamp=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$ROOT/bench/out/smtp-outbound-$stamp
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/mailyard-obench.XXXXXX)
chmod 755 "$WORK"
ms_pid= sink_pid= pf_etc=$WORK/pf/etc pf_started=
cleanup() {
  set +e
  [ -n "$ms_pid" ] && kill "$ms_pid" && wait "$ms_pid"
  [ -n "$sink_pid" ] && kill "$sink_pid" && wait "$sink_pid"
  [ -n "$pf_started" ] && postfix -c "$pf_etc" stop >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
log() { echo "[$(date +%H:%M:%S)] $*"; }
now() { date +%s.%N; }

# start_sink DIR: smtp-sink dumping one file per message into DIR.
start_sink() {
  mkdir -p "$1"
  chmod 777 "$1"
  sink_port=$(free_port)
  smtp-sink -u nobody -d "$1/m." "127.0.0.1:$sink_port" 1024 >"$OUT/sink.log" 2>&1 &
  sink_pid=$!
  wait_port 127.0.0.1 "$sink_port"
}
stop_sink() { kill "$sink_pid"; wait "$sink_pid" 2>/dev/null || true; sink_pid=; }

# measure PORT DIR NAME: runs the load, waits for the sink; prints seconds.
measure() {
  local port=$1 dir=$2 name=$3 start
  sync
  start=$(now)
  timeout "$TIMEOUT" smtp-source -s "$SESSIONS" -l "$SIZE" -m "$MESSAGES" -M client.remote.test \
    -f sender@remote.test -t user@relay.test "127.0.0.1:$port" >"$OUT/$name-source.log" 2>&1 ||
    { echo "$name: smtp-source failed: $(tail -n 2 "$OUT/$name-source.log")" >&2; exit 1; }
  python3 - "$dir" "$MESSAGES" "$TIMEOUT" <<'PY' >"$OUT/$name-count.txt"
import os, sys, time
d, n, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
end = time.monotonic() + limit
while True:
    c = sum(1 for _ in os.scandir(d))
    if c >= n or time.monotonic() > end:
        break
    time.sleep(0.02)
print(c)
PY
  awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'
}

ours_rate=n/a pf_rate=n/a ours_s=n/a pf_s=n/a
if [ "$ONLY" != postfix ]; then
  log "ours: building examples/mailserver"
  go build -o "$WORK/mailserver" ./examples/mailserver
  start_sink "$WORK/sink-ours"
  smtp=$(free_port)
  write_config "$WORK/cfg.toml" "$WORK/data" "$smtp" "$(free_port)" "$(free_port)" "$(free_port)"
  cat >>"$WORK/cfg.toml" <<CFG
[auth_checks]
enabled = false
[[routing.relay_domain]]
domain = "relay.test"
next_hop = "[127.0.0.1]:$sink_port"
tls = "none"
CFG
  sed -i 's/^level = .*//' "$WORK/cfg.toml"
  printf '[log]\nlevel = "warn"\n' >>"$WORK/cfg.toml"
  "$WORK/mailserver" -config "$WORK/cfg.toml" serve >"$OUT/ours-server.log" 2>&1 &
  ms_pid=$!
  wait_port 127.0.0.1 "$smtp"
  log "ours: $MESSAGES messages"
  ours_s=$(measure "$smtp" "$WORK/sink-ours" ours)
  got=$(cat "$OUT/ours-count.txt")
  [ "$got" -ge "$MESSAGES" ] || { echo "ours: sink got $got of $MESSAGES" >&2; exit 1; }
  ours_rate=$(awk -v n="$MESSAGES" -v t="$ours_s" 'BEGIN { printf "%.0f", n / t }')
  log "ours: ${ours_s}s, $ours_rate msg/s"
  kill "$ms_pid"; wait "$ms_pid" 2>/dev/null || true; ms_pid=
  stop_sink
fi

if [ "$ONLY" != ours ]; then
  start_sink "$WORK/sink-pf"
  port=$(free_port)
  mkdir -p "$pf_etc" "$WORK/pf/queue" "$WORK/pf/data"
  chown postfix "$WORK/pf/data"
  echo "relay.test relay:[127.0.0.1]:$sink_port" >"$pf_etc/transport"
  cat >"$pf_etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $WORK/pf/queue
data_directory = $WORK/pf/data
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-obench
maillog_file = $WORK/pf/maillog
maillog_file_prefixes = $WORK/pf
myhostname = pf.bench.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = relay.test
transport_maps = texthash:$pf_etc/transport
alias_maps =
alias_database =
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtpd_peername_lookup = no
smtpd_tls_security_level = none
smtp_tls_security_level = none
default_process_limit = 100
in_flow_delay = 0
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
CF
  cat >"$pf_etc/master.cf" <<CF
127.0.0.1:$port inet n  -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
CF
  postfix -c "$pf_etc" check >"$OUT/postfix-check.log" 2>&1
  pf_started=1
  postfix -c "$pf_etc" start >"$OUT/postfix-start.log" 2>&1
  wait_port 127.0.0.1 "$port"
  log "postfix: $MESSAGES messages"
  pf_s=$(measure "$port" "$WORK/sink-pf" postfix)
  got=$(cat "$OUT/postfix-count.txt")
  [ "$got" -ge "$MESSAGES" ] || { echo "postfix: sink got $got of $MESSAGES" >&2; cp "$WORK/pf/maillog" "$OUT/" 2>/dev/null; exit 1; }
  pf_rate=$(awk -v n="$MESSAGES" -v t="$pf_s" 'BEGIN { printf "%.0f", n / t }')
  log "postfix: ${pf_s}s, $pf_rate msg/s"
  postfix -c "$pf_etc" stop >/dev/null 2>&1; pf_started=
  stop_sink
fi

ratio=$(awk -v a="$ours_rate" -v b="$pf_rate" 'BEGIN { if (b + 0 > 0 && a + 0 > 0) printf "%.2f", a / b; else print "n/a" }')
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
row="| $(date -u +%Y-%m-%d) | $commit | $MESSAGES x $SIZE B, $SESSIONS sessions | $ours_rate msg/s (${ours_s}s) | $pf_rate msg/s (${pf_s}s) | $ratio |"
echo "$row" | tee "$OUT/row.md"
