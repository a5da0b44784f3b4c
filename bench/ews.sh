#!/usr/bin/env bash
# Whole-system benchmark: migration from Exchange over EWS, ours vs
# python3-exchangelib, side by side in one run against the same server (see
# bench/README.md, "ews", for results).
#
#   bash bench/ews.sh                      # 20,000 messages, 5,000 calendar items, 3 runs
#   MESSAGES=2000 EVENTS=500 RUNS=1 bash bench/ews.sh   # a quick run
#
# The EWS test server (internal/ewstest, run as internal/ewstest/cmd/ewsd,
# as .ci/interop-ews.sh runs it) is filled from a JSON seed through its own
# API (ewstest.Server.Generate, deterministic for a SEED): one mailbox
# alice@example.test with MESSAGES messages in the inbox (bodies of
# pseudo-random words, MESSAGE_BYTES on average: between half and one and
# a half of it; every third read, every fifth flagged) and EVENTS calendar
# items in three time zones, a fifth of them recurring series (six
# patterns, three ranges) each with a deleted and a modified occurrence;
# a service account svc with the impersonation right. Plain HTTP on
# 127.0.0.1, Basic authentication, no throttling. The server stays up for
# all runs; both sides only read from it. Then RUNS times, alternating which
# side goes first:
#
#  (a) exchangelib (Debian python3-exchangelib, bench/ews_export.py): svc
#      impersonating alice reads every message's MIME content, read state
#      and received time (FindItem pages of PAGE, GetItem batches of CHUNK
#      over CONNS connections), every calendar item with all its fields
#      and every modified occurrence (GetItem batches of CHUNK), and sums
#      the bytes (an export to /dev/null).
#  (b) ours: examples/migrate `ews sync` (svc, Basic, impersonation) into
#      a fresh data directory of the reference server with alice created
#      by `mailserver user add`: every message appended durably with flags
#      and INTERNALDATE, every series and single event stored as an
#      iCalendar object with its exceptions, checkpoints per page.
#
# Each side is timed from start to exit with /usr/bin/time (elapsed, peak
# RSS, user and system CPU), after a sync(1); ewsd's own CPU seconds
# (/proc/PID/stat) are read before and after each side, so the rows show
# what each side cost the shared server as well as its own CPU per 1,000
# items (counts that the machine's load changes less than elapsed time).
# Afterwards the counts are checked: exchangelib must report MESSAGES
# messages and EVENTS calendar items; our target's
# INBOX must list MESSAGES messages (`mailserver mail list`) and the run's
# history must say it copied MESSAGES messages and EVENTS events.
#
# Environment (optional): MESSAGES=20000 EVENTS=5000 MESSAGE_BYTES=4096
# SEED=1 RUNS=3 PAGE=1000 CHUNK=100 CONNS=4 (exchangelib's settings)
# PORT_BASE=21500 (ewsd listens on PORT_BASE, the unused listeners of our
# config take the next five) ONLY=ours|exchangelib KEEP_WORK=1
# OURS_WRAP (a command put before ours, e.g. for profiling)
# PPROF=1 (Go CPU profiles: ours-N.pprof of each of our runs, and
# ewsd.pprof of the server over all runs of both sides, so use it with
# ONLY= to see one side's cost to the server; `go tool pprof -top FILE`).
#
# Writes bench/out/ews-<UTC time>/ (logs, summary.txt, rows.md).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD

MESSAGES=${MESSAGES:-20000}
EVENTS=${EVENTS:-5000}
MESSAGE_BYTES=${MESSAGE_BYTES:-4096}
SEED=${SEED:-1}
RUNS=${RUNS:-3}
PORT_BASE=${PORT_BASE:-21500}
ONLY=${ONLY:-}
KEEP_WORK=${KEEP_WORK:-}
PPROF=${PPROF:-}
export PAGE=${PAGE:-1000} CHUNK=${CHUNK:-100} CONNS=${CONNS:-4}
case "$ONLY" in "" | ours | exchangelib) ;; *) echo "ONLY must be ours or exchangelib" >&2; exit 2 ;; esac
for v in MESSAGES EVENTS MESSAGE_BYTES SEED RUNS PORT_BASE; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be a number" >&2; exit 2; }
done
py=/usr/bin/python3 # Debian's, which has python3-exchangelib (see TESTING.md)
$py -c 'import exchangelib' 2>/dev/null || { echo "python3-exchangelib missing (bash .ci/peers.sh installs it)" >&2; exit 2; }
[ -x /usr/bin/time ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -q time >/dev/null

. "$ROOT/.ci/lib.sh"

stamp=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$ROOT/bench/out/ews-$stamp
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/mailyard-bench-ews.XXXXXX)
ews_pid=

cleanup() {
  [ -n "$ews_pid" ] && kill "$ews_pid" 2>/dev/null
  wait 2>/dev/null || true
  [ -n "$KEEP_WORK" ] && echo "work dir kept: $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT

log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$OUT/summary.txt"; }

commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!bench/README.md' || echo +dirty)
log "machine: $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg), commit $commit, exchangelib $($py -c 'import exchangelib; print(exchangelib.__version__)')"

go build -o "$WORK/ewsd" ./internal/ewstest/cmd/ewsd
go build -o "$WORK/mailserver" ./examples/mailserver
go build -o "$WORK/migrate" ./examples/migrate

recurring=$((EVENTS / 5))
cat >"$WORK/seed.json" <<JSON
{"users": [
  {"login": "svc", "password": "bench-svc-pw", "smtp": "svc@example.test", "impersonate": true},
  {"login": "alice", "password": "bench-alice-pw", "smtp": "alice@example.test",
   "generate": {"messages": $MESSAGES, "calendar_items": $EVENTS, "recurring": $recurring,
                "message_bytes": $MESSAGE_BYTES, "seed": $SEED}}
]}
JSON
ews_port=$PORT_BASE
endpoint=http://127.0.0.1:$ews_port/EWS/Exchange.asmx
log "ewsd on 127.0.0.1:$ews_port: $MESSAGES messages (~$MESSAGE_BYTES B), $EVENTS calendar items ($recurring series), seed $SEED"
t0=$(date +%s.%N)
"$WORK/ewsd" -listen "127.0.0.1:$ews_port" -seed "$WORK/seed.json" ${PPROF:+-cpuprofile "$OUT/ewsd.pprof"} >"$OUT/ewsd.log" 2>&1 &
ews_pid=$!
for _ in $(seq 6000); do grep -q 'ewsd: serving' "$OUT/ewsd.log" && break; kill -0 "$ews_pid" 2>/dev/null || break; sleep 0.1; done
grep -q 'ewsd: serving' "$OUT/ewsd.log" && wait_port 127.0.0.1 "$ews_port" 10 || { cat "$OUT/ewsd.log"; log "ewsd did not start"; exit 1; }
log "ewsd filled and listening after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s"
echo "bench-svc-pw" >"$WORK/svc.pw"

tpl='elapsed_s=%e max_rss_kib=%M user_s=%U sys_s=%S'
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" "$2" | tail -1; }
items=$((MESSAGES + EVENTS))
# ewsd_cpu: the server's user+system CPU seconds so far (fields 14 and 15
# of /proc/PID/stat, in clock ticks; the command name before them has no
# spaces).
ewsd_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$ews_pid/stat"; }
# per1k: CPU seconds (user + sys of a .time file) per 1,000 items.
per1k() { awk -v u="$(field user_s "$1")" -v s="$(field sys_s "$1")" -v n="$items" 'BEGIN { printf "%.2f", (u + s) * 1000 / n }'; }

run_exchangelib() { # $1: run number
  local r=$1
  sync
  log "run $r exchangelib: export (PAGE=$PAGE CHUNK=$CHUNK CONNS=$CONNS)"
  local c0
  c0=$(ewsd_cpu)
  /usr/bin/time -f "$tpl" -o "$OUT/exchangelib-$r.time" $py "$ROOT/bench/ews_export.py" "$endpoint" svc bench-svc-pw \
    alice@example.test "$MESSAGES" "$EVENTS" >"$OUT/exchangelib-$r.log" 2>&1 ||
    { tail -20 "$OUT/exchangelib-$r.log"; log "exchangelib failed"; exit 1; }
  ex_srv[$r]=$(awk -v a="$c0" -v b="$(ewsd_cpu)" 'BEGIN { printf "%.1f", b - a }')
  ex_secs[$r]=$(field elapsed_s "$OUT/exchangelib-$r.time") ex_rss[$r]=$(field max_rss_kib "$OUT/exchangelib-$r.time")
  ex_cpu[$r]=$(per1k "$OUT/exchangelib-$r.time")
  log "run $r exchangelib: ${ex_secs[$r]}s, peak RSS ${ex_rss[$r]} KiB, ${ex_cpu[$r]} CPU s per 1,000 items, ewsd ${ex_srv[$r]} CPU s, load average $(cut -d' ' -f1 /proc/loadavg): $(tail -1 "$OUT/exchangelib-$r.log")"
}

run_ours() { # $1: run number
  local r=$1 cfg=$WORK/ours-$1.toml data=$WORK/data-$1
  write_config "$cfg" "$data" $((PORT_BASE + 1)) $((PORT_BASE + 2)) $((PORT_BASE + 3)) $((PORT_BASE + 4))
  printf '[migration]\nsecret_key_file = "%s"\n' "$WORK/migration.key" >>"$cfg"
  "$WORK/mailserver" -config "$cfg" init >/dev/null
  "$WORK/mailserver" -config "$cfg" domain add example.test >/dev/null
  "$WORK/mailserver" -config "$cfg" user add alice@example.test -password "target-pw-123" >/dev/null
  sync
  log "run $r ours: migrate ews sync"
  local c0
  c0=$(ewsd_cpu)
  /usr/bin/time -f "$tpl" -o "$OUT/ours-$r.time" ${OURS_WRAP:-} "$WORK/migrate" -config "$cfg" -allow 127.0.0.1 \
    ${PPROF:+-cpuprofile "$OUT/ours-$r.pprof"} \
    ews sync --endpoint "$endpoint" --user svc --auth basic --password-file "$WORK/svc.pw" --impersonate \
    --progress-every 10s alice@example.test >"$OUT/ours-$r.log" 2>&1 ||
    { tail -20 "$OUT/ours-$r.log"; log "migrate failed"; exit 1; }
  ours_srv[$r]=$(awk -v a="$c0" -v b="$(ewsd_cpu)" 'BEGIN { printf "%.1f", b - a }')
  ours_secs[$r]=$(field elapsed_s "$OUT/ours-$r.time") ours_rss[$r]=$(field max_rss_kib "$OUT/ours-$r.time")
  ours_cpu[$r]=$(per1k "$OUT/ours-$r.time")
  "$WORK/migrate" -config "$cfg" history 1 >"$OUT/ours-history-$r.txt"
  local count
  count=$(($("$WORK/mailserver" -config "$cfg" mail list alice@example.test INBOX | wc -l) - 1))
  log "run $r ours: ${ours_secs[$r]}s, peak RSS ${ours_rss[$r]} KiB, ${ours_cpu[$r]} CPU s per 1,000 items, ewsd ${ours_srv[$r]} CPU s, load average $(cut -d' ' -f1 /proc/loadavg), $count messages in the target; $(grep -o 'copied [0-9]* messages[^|]*' "$OUT/ours-history-$r.txt" | head -1)"
  [ "$count" = "$MESSAGES" ] || { log "ours copied $count of $MESSAGES messages"; exit 1; }
  grep -q "copied $MESSAGES messages.*$EVENTS events" "$OUT/ours-history-$r.txt" ||
    { cat "$OUT/ours-history-$r.txt"; log "ours: the history does not say $MESSAGES messages and $EVENTS events"; exit 1; }
  [ -n "$KEEP_WORK" ] || rm -rf "$data"
}

declare -a ex_secs ex_rss ex_cpu ex_srv ours_secs ours_rss ours_cpu ours_srv
for r in $(seq 1 "$RUNS"); do
  if [ $((r % 2)) = 1 ]; then
    [ "$ONLY" = ours ] || run_exchangelib "$r"
    [ "$ONLY" = exchangelib ] || run_ours "$r"
  else
    [ "$ONLY" = exchangelib ] || run_ours "$r"
    [ "$ONLY" = ours ] || run_exchangelib "$r"
  fi
done

rate() { awk -v n="$items" -v s="$1" 'BEGIN { printf "%.0f", n / s }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
load=$(cut -d' ' -f1 /proc/loadavg)
: >"$OUT/rows.md"
ratios=()
for r in $(seq 1 "$RUNS"); do
  o=${ours_secs[$r]:-} e=${ex_secs[$r]:-}
  ratio=n/a
  [ -n "$o" ] && [ -n "$e" ] && ratio=$(awk -v a="$e" -v b="$o" 'BEGIN { printf "%.2f", a / b }') && ratios+=("$ratio")
  echo "| $(date -u +%Y-%m-%d) | $commit | run $r | ${o:-—}s, $([ -n "$o" ] && rate "$o" || echo —) items/s, $((${ours_rss[$r]:-0} / 1024)) MiB, ${ours_cpu[$r]:-—} CPU s/1k, ewsd ${ours_srv[$r]:-—} s | ${e:-—}s, $([ -n "$e" ] && rate "$e" || echo —) items/s, $((${ex_rss[$r]:-0} / 1024)) MiB, ${ex_cpu[$r]:-—} CPU s/1k, ewsd ${ex_srv[$r]:-—} s | **$ratio** |" >>"$OUT/rows.md"
done
med=n/a
[ ${#ratios[@]} -gt 0 ] && med=$(median "${ratios[@]}")
log "ratios (exchangelib time / ours time): ${ratios[*]:-n/a}; median $med; load average now $load"
echo
echo "bench/README.md rows ($MESSAGES messages of ~$MESSAGE_BYTES B + $EVENTS calendar items):"
cat "$OUT/rows.md"
echo "(results in $OUT)"
