#!/usr/bin/env bash
# Whole-system benchmark: what inbound message authentication (DKIM, SPF,
# DMARC, Authentication-Results) costs the MX, side by side in one run.
#
#   bash bench/inbound-auth.sh
#
# The same reference server binary takes the same load twice, from Postfix's
# smtp-source (SESSIONS parallel sessions, MESSAGES copies of one 4 KB
# message DKIM-signed rsa-sha256 by signed.test, sent with -F so that the
# signature stays valid):
#   off: [auth_checks] enabled = false
#   on:  enabled = true; DNS is a test server on 127.0.0.1 (dkiminterop dns)
#        serving signed.test's DKIM key, SPF (ip4:127.0.0.1) and DMARC
#        (p=reject), so every message is verified for real: dkim=pass,
#        spf=pass, dmarc=pass.
# Both rates and on/off are printed; the budget is on/off >= 0.90. A
# sample of stored messages is checked for the Authentication-Results
# verdicts, so a run that silently skipped verification cannot pass.
# RUNS=n repeats the off/on pair n times (each on a fresh server and data
# directory) and reports the medians. PARALLEL=1 runs the two servers of a
# pair at the same time, each with its own smtp-source: on a shared
# machine whose load changes from minute to minute, both then meet the
# same contention, where one after the other they can be several points
# apart for reasons that have nothing to do with them.
#
# Environment: MESSAGES=10000 SESSIONS=20 TIMEOUT=600 RUNS=1 PARALLEL=0.
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES=${MESSAGES:-10000}
SESSIONS=${SESSIONS:-20}
TIMEOUT=${TIMEOUT:-600}
RUNS=${RUNS:-1}
PARALLEL=${PARALLEL:-0}
command -v smtp-source >/dev/null || { echo "smtp-source missing: apt-get install postfix" >&2; exit 2; }

WORK=$(mktemp -d)
OUT=bench/out/inbound-auth-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_port() { for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

go build -o "$WORK/mailserver" ./examples/mailserver
go build -o "$WORK/dkiminterop" ./dkim/internal/dkiminterop

# The sender's key and signed message (LF line ends: smtp-source -F adds CRLF).
"$WORK/dkiminterop" keygen -store "$WORK/sender" -domain signed.test -selector r1 -alg rsa -pem "$WORK/r1.pem" -txt "$WORK/r1.txt" >/dev/null
body=$(python3 -c 'print("\r\n".join(["x" * 76] * 50))')
printf 'From: Sender <news@signed.test>\r\nTo: <user@bench.test>\r\nSubject: signed bench\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <bench@signed.test>\r\n\r\n%s\r\n' "$body" >"$WORK/msg.eml"
"$WORK/dkiminterop" sign -store "$WORK/sender" -domain signed.test <"$WORK/msg.eml" | tr -d '\r' >"$WORK/signed.txt"
echo 'v=spf1 ip4:127.0.0.1 -all' >"$WORK/spf.txt"
echo 'v=DMARC1; p=reject' >"$WORK/dmarc.txt"
dnsport=$(free_port)
"$WORK/dkiminterop" dns -listen "127.0.0.1:$dnsport" -txt r1._domainkey.signed.test="$WORK/r1.txt" \
  -txt signed.test="$WORK/spf.txt" -txt _dmarc.signed.test="$WORK/dmarc.txt" &
pids+=($!)

run() { # run on|off N -> prints messages/s
  local mode=$1 dir="$WORK/$1-$2" port p2 p3 p4 p5 p6 enabled=false
  [ "$mode" = on ] && enabled=true
  port=$(free_port) p2=$(free_port) p3=$(free_port) p4=$(free_port) p5=$(free_port) p6=$(free_port)
  mkdir -p "$dir"
  cat >"$dir/cfg.toml" <<CFG
hostname = "mx.bench.test"
data_dir = "$dir/data"
[smtp]
listen = "127.0.0.1:$port"
[submission]
listen = "127.0.0.1:$p2"
[submissions]
listen = "127.0.0.1:$p3"
[http]
listen = "127.0.0.1:$p4"
[imap]
listen = "127.0.0.1:$p5"
[imaps]
listen = "127.0.0.1:$p6"
[dav]
listen = ""
[limits]
max_conns_per_ip = 200
[log]
level = "warn"
[auth_checks]
enabled = $enabled
[dns]
server = "127.0.0.1:$dnsport"
timeout = "2s"
CFG
  ms() { "$WORK/mailserver" -config "$dir/cfg.toml" "$@"; }
  ms init >/dev/null
  ms domain add bench.test >/dev/null 2>&1
  ms user add user@bench.test -password x >/dev/null 2>&1
  "$WORK/mailserver" -config "$dir/cfg.toml" serve >"$OUT/server-$mode-$2.log" 2>&1 &
  local spid=$!
  pids+=("$spid")
  server_pid=$spid # not local: the EXIT trap of a PARALLEL subshell reads it
  trap 'kill "${server_pid:-}" 2>/dev/null || true' EXIT
  wait_port "$port"
  local t0 t1
  t0=$(date +%s.%N)
  timeout "$TIMEOUT" smtp-source -s "$SESSIONS" -m "$MESSAGES" -F "$WORK/signed.txt" \
    -f news@signed.test -t user@bench.test "127.0.0.1:$port" >"$OUT/source-$mode-$2.log" 2>&1
  t1=$(date +%s.%N)
  # Server CPU (user+system) for the whole run, in clock ticks.
  awk '{print $14 + $15}' "/proc/$spid/stat" >"$OUT/cpu-$mode-$2.ticks"
  kill -TERM "$spid"; wait "$spid" || true
  local n
  n=$(ms mail list user@bench.test INBOX | wc -l)
  [ "$n" = "$MESSAGES" ] || { echo "$mode: $n of $MESSAGES stored" >&2; exit 1; }
  if [ "$mode" = on ]; then
    for uid in 1 $((MESSAGES / 2)) "$MESSAGES"; do
      ms mail cat user@bench.test INBOX "$uid" | sed -n '1,12p' | tr -d '\r' | tr '\n' ' ' >"$OUT/ar-$2-$uid.txt"
      for v in dkim=pass spf=pass dmarc=pass; do
        grep -q "$v" "$OUT/ar-$2-$uid.txt" || { echo "message $uid lacks $v: $(cat "$OUT/ar-$2-$uid.txt")" >&2; exit 1; }
      done
    done
  fi
  awk -v n="$MESSAGES" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }'
}

hz=$(getconf CLK_TCK)
cpu() { awk -v t="$(cat "$OUT/cpu-$1-$2.ticks")" -v hz="$hz" -v n="$MESSAGES" 'BEGIN { printf "%.0f", t / hz / n * 1e6 }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
: >"$OUT/runs.txt"
for i in $(seq "$RUNS"); do
  if [ "$PARALLEL" = 1 ]; then
    (run off "$i" >"$OUT/rate-off-$i") &
    a=$!
    (run on "$i" >"$OUT/rate-on-$i") &
    b=$!
    wait "$a" && wait "$b" || { echo "run $i failed" >&2; exit 1; }
    off=$(cat "$OUT/rate-off-$i") on=$(cat "$OUT/rate-on-$i")
  else
    off=$(run off "$i")
    on=$(run on "$i")
  fi
  cpu_off=$(cpu off "$i") cpu_on=$(cpu on "$i")
  ratio=$(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.3f", a / b }')
  added=$(awk -v a="$cpu_on" -v b="$cpu_off" 'BEGIN { printf "%.1f", (a - b) / b * 100 }')
  echo "$off $on $ratio $cpu_off $cpu_on $added" >>"$OUT/runs.txt"
  echo "run $i: off $off msg/s, on $on msg/s, on/off $ratio; CPU/msg off $cpu_off us, on $cpu_on us (+$added%)" >&2
done
col() { awk -v c="$1" '{ print $c }' "$OUT/runs.txt" | median; }
off=$(col 1) on=$(col 2) ratio=$(col 3) cpu_off=$(col 4) cpu_on=$(col 5) added=$(col 6)
ratio=$(printf '%.2f' "$ratio") added=$(printf '%+.0f%%' "$added")
load="${MESSAGES}x4 KB signed, $SESSIONS sessions"
[ "$PARALLEL" = 1 ] && load="$load, off and on at once"
[ "$RUNS" -gt 1 ] && load="$load, median of $RUNS"
row="| $(date -u +%Y-%m-%d) | $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- 2>/dev/null || echo +dirty) | $(nproc) cores | $load | $off | $on | **$ratio** | $cpu_off | $cpu_on | $added |"
echo "auth checks off: $off msg/s; on: $on msg/s; on/off = $ratio (budget >= 0.90)"
echo "server CPU per message: off $cpu_off us, on $cpu_on us ($added)"
echo "$row" | tee "$OUT/row.md"
