#!/usr/bin/env bash
# Whole-system benchmark: CalDAV/CardDAV, ours vs Radicale, side by side in
# one run on this machine (issue 14; results in bench/README.md, "DAV").
#
#   bash bench/dav.sh
#
# Both servers get the same accounts (FB_USERS+1, one password), the same
# generated data and the same client, bench/davload (raw HTTP, the same
# request bytes; every answer checked against the generated data):
#   put               PUT of EVENTS events (RECURRING of them weekly) by
#                     CLIENTS concurrent clients
#   calendar_query    one month (June 2026) of that calendar
#   full_report       calendar-query for all EVENTS objects (memory)
#   sync_collection   after 100 changes (SYNC_ROUNDS rounds)
#   put_vcard         CONTACTS vCards by CLIENTS clients
#   addressbook_query FN text-match over CONTACTS contacts (10 match)
#   freebusy          FB_USERS users x FB_EVENTS events, one week: one
#                     schedule-outbox POST (RFC 6638) where the server
#                     has it, else one calendar-query per user calendar
#                     (Radicale 3.1.8 has no free/busy: its free-busy-query
#                     answers an empty multistatus)
# Query phases stop after QUERIES answers or PHASE_TIME, whichever first.
# Latency is the HTTP exchange (request sent to the answer's last byte
# read); davload parses and checks every answer after its clock stops,
# and a one-client phase's ops/s is 1 / its mean latency.
#
#  (a) Radicale (Debian's radicale): a private instance on 127.0.0.1, the
#      filesystem storage in a temp dir, htpasswd auth with plain passwords
#      (no hashing cost per request; ours caches verified credentials,
#      dav.DefaultAuthCacheTTL), rights "authenticated" (so one account can
#      read the others' calendars for the query-mode free/busy), logging
#      at warning, its defaults otherwise (threaded WSGI server, one
#      process).
#  (b) ours: examples/mailserver built from this tree, fresh data dir, the
#      [dav] listener on 127.0.0.1 with its self-signed certificate (HTTPS:
#      ours pays TLS, Radicale does not).
#  Memory: the server's peak RSS (VmHWM) after the run, and its RSS
#      sampled every 50 ms during full_report.
#
# Environment (all optional):
#   EVENTS=10000 RECURRING=1000 CLIENTS=10 CONTACTS=10000 FB_USERS=50
#   FB_EVENTS=100 SYNC_ROUNDS=10 QUERIES=200 PHASE_TIME=30
#   RADICALE_PUT_MAX=1000 Radicale's PUT phases send (and time) the first
#                         N events and N contacts only; davload writes the
#                         rest, and the free/busy calendars, as files into
#                         its collections (-put-max/-seed-fs), because its
#                         PUT re-reads the collection and slows down as it
#                         grows (10,000 events would take hours). Its put
#                         figures are then those of an almost empty
#                         collection, its best case. 0: PUT everything.
#                         Ours always gets every object by PUT.
#   ONLY=ours|radicale    run one side only
#   KEEP_WORK=1           keep the temp dir
#   PORT_BASE=N           listen on ports N..N+5 instead of free ones
#
# Writes bench/out/dav-<UTC time>/ (logs, summary.md) and prints the table
# for bench/README.md. Exits non-zero when a side that was asked for could
# not be measured or reported errors.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
EVENTS=${EVENTS:-10000}
RECURRING=${RECURRING:-1000}
CLIENTS=${CLIENTS:-10}
CONTACTS=${CONTACTS:-10000}
FB_USERS=${FB_USERS:-50}
FB_EVENTS=${FB_EVENTS:-100}
SYNC_ROUNDS=${SYNC_ROUNDS:-10}
QUERIES=${QUERIES:-200}
PHASE_TIME=${PHASE_TIME:-30}
RADICALE_PUT_MAX=${RADICALE_PUT_MAX:-1000}
ONLY=${ONLY:-}
KEEP_WORK=${KEEP_WORK:-}
case "$ONLY" in "" | ours | radicale) ;; *) echo "ONLY must be ours or radicale" >&2; exit 2 ;; esac
for v in EVENTS RECURRING CLIENTS CONTACTS FB_USERS FB_EVENTS SYNC_ROUNDS QUERIES PHASE_TIME RADICALE_PUT_MAX; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be a number, got '${!v}'" >&2; exit 2; }
done
. .ci/lib.sh

stamp=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$ROOT/bench/out/dav-$stamp
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/mailyard-bench-dav.XXXXXX)
pid=
sampler=
cleanup() {
  local rc=$?
  set +e
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null
  [ -n "$pid" ] && { kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
  if [ -n "$KEEP_WORK" ]; then echo "work dir kept: $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "[$(date +%H:%M:%S)] $*"; }
# port I: PORT_BASE+I when PORT_BASE is set, else a free port.
port() { if [ -n "${PORT_BASE:-}" ]; then echo $((PORT_BASE + $1)); else free_port; fi; }

pass=bench-password
users=("user0@bench.test")
for ((i = 1; i <= FB_USERS; i++)); do users+=("user$i@bench.test"); done

BUILT=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!bench/README.md' || echo +) # what the binaries are built from
log "building bench/davload and examples/mailserver at $BUILT"
go build -o "$WORK/davload" ./bench/davload
[ "$ONLY" = radicale ] || build_mailserver "$WORK"
LOAD=(-password "$pass" -events "$EVENTS" -recurring "$RECURRING" -clients "$CLIENTS" -contacts "$CONTACTS"
  -fb-users "$FB_USERS" -fb-events "$FB_EVENTS" -sync-rounds "$SYNC_ROUNDS" -queries "$QUERIES" -phase-time "${PHASE_TIME}s")

# measure NAME URL [davload flags...]: runs davload against the server in
# $pid, samples its RSS, writes $OUT/NAME.txt.
measure() {
  local name=$1 url=$2
  shift 2
  (while kill -0 "$pid" 2>/dev/null; do
    echo "$(date +%s.%N) $(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")"
    sleep 0.05
  done) >"$OUT/$name-rss.txt" 2>/dev/null &
  sampler=$!
  local rc=0
  "$WORK/davload" -url "$url" "${LOAD[@]}" "$@" >"$OUT/$name.txt" 2>&1 || rc=$?
  awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" >"$OUT/$name-hwm.txt"
  kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true; sampler=
  cat "$OUT/$name.txt"
  return $rc
}

failed=0
if [ "$ONLY" != ours ]; then
  port=$(port 0)
  mkdir -p "$WORK/radicale"
  for u in "${users[@]}"; do echo "$u:$pass"; done >"$WORK/radicale/users"
  cat >"$WORK/radicale/config" <<CFG
[server]
hosts = 127.0.0.1:$port
[auth]
type = htpasswd
htpasswd_filename = $WORK/radicale/users
htpasswd_encryption = plain
[rights]
type = authenticated
[storage]
filesystem_folder = $WORK/radicale/collections
[logging]
level = warning
CFG
  cp "$WORK/radicale/config" "$OUT/radicale.config"
  radicale --config "$WORK/radicale/config" >"$OUT/radicale.log" 2>&1 &
  pid=$!
  wait_port 127.0.0.1 "$port" || { echo "Radicale did not start"; cat "$OUT/radicale.log"; exit 1; }
  log "Radicale $(radicale --version) on 127.0.0.1:$port"
  seed=()
  [ "$RADICALE_PUT_MAX" -gt 0 ] && seed=(-put-max "$RADICALE_PUT_MAX" -seed-fs "$WORK/radicale/collections")
  measure radicale "http://127.0.0.1:$port/" "${seed[@]}" || { failed=1; log "Radicale run reported errors"; }
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=
fi
if [ "$ONLY" != radicale ]; then
  port=$(port 1)
  ms() { "$WORK/mailserver" -config "$WORK/cfg.toml" "$@"; }
  write_config "$WORK/cfg.toml" "$WORK/data" "$(port 2)" "$(port 3)" "$(port 4)" "$(port 5)" "" "" "$port"
  cat >>"$WORK/cfg.toml" <<CFG
[auth_checks]
enabled = false
CFG
  ms init >/dev/null
  ms domain add bench.test >/dev/null
  for u in "${users[@]}"; do ms user add "$u" -password "$pass" >/dev/null; done
  "$WORK/mailserver" -config "$WORK/cfg.toml" serve >"$OUT/ours.log" 2>&1 &
  pid=$!
  wait_port 127.0.0.1 "$port" || { echo "our DAV listener did not start"; tail "$OUT/ours.log"; exit 1; }
  log "ours (built at $BUILT) on 127.0.0.1:$port"
  measure ours "https://127.0.0.1:$port/" -insecure || { failed=1; log "our run reported errors"; }
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=
fi

# The table: one row per op, both sides and the ratio (ours/Radicale for
# ops/s, Radicale/ours for latency: above 1 means ours is faster).
field() { sed -n "s/^RESULT op=$2 .*$3=\([^ ]*\).*/\1/p" "$OUT/$1.txt" 2>/dev/null || true; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.1fx", a / b }'; }
{
  echo "| op | Radicale ops/s | ours ops/s | ratio | Radicale p50 / p99 ms | ours p50 / p99 ms | p99 ratio |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for op in put calendar_query full_report sync_collection put_vcard addressbook_query freebusy; do
    r_ops=$(field radicale $op ops_s) o_ops=$(field ours $op ops_s)
    r50=$(field radicale $op p50_ms) r99=$(field radicale $op p99_ms)
    o50=$(field ours $op p50_ms) o99=$(field ours $op p99_ms)
    echo "| $op | ${r_ops:-n/a} | ${o_ops:-n/a} | $(ratio "$o_ops" "$r_ops") | ${r50:-n/a} / ${r99:-n/a} | ${o50:-n/a} / ${o99:-n/a} | $(ratio "$r99" "$o99") |"
  done
  for side in radicale ours; do
    [ -f "$OUT/$side-hwm.txt" ] || continue
    peak=$(sort -k2 -n "$OUT/$side-rss.txt" | tail -1 | cut -d' ' -f2)
    echo
    echo "$side: peak RSS (VmHWM) $(($(cat "$OUT/$side-hwm.txt") / 1024)) MiB; largest sampled RSS $((${peak:-0} / 1024)) MiB; detail: $(sed -n 's/^RESULT op=\([a-z_]*\) .*detail=\(.*\)/\1: \2/p' "$OUT/$side.txt" | tr '\n' ';')"
  done
  echo
  echo "machine: $(nproc) cores, $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), load average $(cut -d' ' -f1 /proc/loadavg) at the end; EVENTS=$EVENTS RECURRING=$RECURRING CLIENTS=$CLIENTS CONTACTS=$CONTACTS FB_USERS=$FB_USERS FB_EVENTS=$FB_EVENTS SYNC_ROUNDS=$SYNC_ROUNDS QUERIES=$QUERIES PHASE_TIME=$PHASE_TIME RADICALE_PUT_MAX=$RADICALE_PUT_MAX"
} | tee "$OUT/summary.md"
log "results in $OUT"
exit $failed
