#!/usr/bin/env bash
# Whole-system benchmark of a distributed installation (package geo,
# issue 18; results in bench/README.md, "geo"):
#
#   bash bench/geo.sh
#
# Three reference servers (examples/mailserver built from this tree) are
# sites a, b and c, each with its own data directory (SQLite) and
# embedded NATS, linked all-to-all over loopback with mutual TLS; a
# fourth, d, is linked to a only and started for the snapshot phase.
# Site a's directory holds FILL users before it starts (bench/geobench
# fill). Once b and c hold them all, each of RUNS rounds measures:
#   lag       CHANGES changes on a, one at a time, alternately a new user
#             and the deletion of the user made just before: written to
#             a's directory in its data directory and announced over a's
#             control socket as the admin commands do (the per-entry
#             notice); timed from the directory's commit until both b and
#             c locate the address at a (or, deleted, nowhere), polled
#             over their control sockets every 0.5 ms.
#   snapshot  d starts with an empty data directory and reads a's stream
#             from the start (FILL + the site record + the changes' last
#             state): timed from d's process start until d locates the
#             last address made on a (a stream arrives in order), then
#             FILL users sampled; d's peak RSS (VmHWM) after. d's data is
#             removed after each round, so each round is a new link.
#   freebusy  FB_QUERIES free/busy queries asked of site c for a user of
#             site b (c asks b over NATS request/reply, b answers with
#             dav.FreeBusy over FB_EVENTS events that day), one after
#             another, each through c's control socket (what `mailserver
#             geo freebusy` does); every answer must show busy time.
# The periodic reconcile stays on (reconcile_interval 30 s, the default)
# and runs during the rounds, as it does in service.
#
# Environment (all optional):
#   FILL=50000 CHANGES=10000 RUNS=3 FB_QUERIES=1000 FB_EVENTS=20
#   KEEP_WORK=1    keep the temp dir
#
# Ports 21750-21785. Writes bench/out/geo-<UTC time>/ (logs, summary.md)
# and prints the table for bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FILL=${FILL:-50000}
CHANGES=${CHANGES:-10000}
RUNS=${RUNS:-3}
FB_QUERIES=${FB_QUERIES:-1000}
FB_EVENTS=${FB_EVENTS:-20}
. .ci/lib.sh
out="$ROOT/bench/out/geo-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
work=$(mktemp -d)
declare -A pids=()
cleanup() {
  for s in "${!pids[@]}"; do kill "${pids[$s]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP_WORK:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  for s in a b c d; do [ -f "$work/$s/server.log" ] && { echo "--- site $s"; tail -20 "$work/$s/server.log"; }; done
  exit 1
}

go build -o "$work/mailserver" ./examples/mailserver
go build -o "$work/geobench" ./bench/geobench
sites=(a b c d)
base() { case $1 in a) echo 21750 ;; b) echo 21760 ;; c) echo 21770 ;; d) echo 21780 ;; esac; }
smtp() { base "$1"; }
davp() { echo $(($(base "$1") + 4)); }
nats() { echo $(($(base "$1") + 5)); }
peers() { case $1 in a) echo b c d ;; b) echo a c ;; c) echo a b ;; d) echo a ;; esac; }
ms() { local s=$1; shift; "$work/mailserver" -config "$work/$s/cfg.toml" "$@"; }
sock() { echo "$work/$1/data/geo.sock"; }

make_geo_certs "$work" "${sites[@]}"
for s in "${sites[@]}"; do
  b=$(base "$s")
  write_config "$work/$s/cfg.toml" "$work/$s/data" "$b" $((b + 1)) $((b + 2)) $((b + 3)) "" "" $((b + 4))
  sed -i -e "s/^hostname = .*/hostname = \"mx-$s.example.test\"/" \
    -e 's/^\[dav\]$/[dav]\ninsecure_http = true/' "$work/$s/cfg.toml"
  cat >>"$work/$s/cfg.toml" <<CFG
[log]
level = "warn"
[geo]
site = "$s"
mx = "127.0.0.1:$(smtp "$s")"
nats_listen = "127.0.0.1:$(nats "$s")"
cert_file = "$work/$s/geo.pem"
key_file = "$work/$s/geo.key"
ca_file = "$work/ca.pem"
CFG
  for p in $(peers "$s"); do
    printf '[[geo.link]]\nsite = "%s"\nnats = ["tls://127.0.0.1:%s"]\nmx = "127.0.0.1:%s"\nallow = ["127.0.0.1"]\n' \
      "$p" "$(nats "$p")" "$(smtp "$p")" >>"$work/$s/cfg.toml"
  done
done

# init_site SITE: a new data directory with the domain.
init_site() {
  ms "$1" init >/dev/null
  ms "$1" domain add example.test >/dev/null
}
start_site() {
  "$work/mailserver" -config "$work/$1/cfg.toml" serve >>"$work/$1/server.log" 2>&1 &
  pids[$1]=$!
  wait_port 127.0.0.1 "$(smtp "$1")" 60 || fail "site $1 did not start"
  for ((i = 0; i < 300; i++)); do [ -S "$(sock "$1")" ] && return 0; sleep 0.1; done
  fail "site $1 has no control socket"
}
stop_site() {
  kill "${pids[$1]}" 2>/dev/null || true
  wait "${pids[$1]}" 2>/dev/null || true
  unset "pids[$1]"
}

for s in a b c; do init_site "$s"; done
echo "=== fill: $FILL users on a"
"$work/geobench" fill -data "$work/a/data" -n "$FILL" | tee "$out/fill.txt"
# b's user with a busy day, for the free/busy phase.
ms b user add fb@example.test -password 'correct horse' >/dev/null
for s in a b c; do start_site "$s"; done
day=$(date -u -d tomorrow +%Y-%m-%d)
ymd=${day//-/}
bid=$(ms b user show fb@example.test -json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
curl -sf -o /dev/null -u 'fb@example.test:correct horse' -X MKCALENDAR \
  "http://127.0.0.1:$(davp b)/dav/calendars/$bid/work/" || fail "MKCALENDAR on b"
for ((e = 0; e < FB_EVENTS; e++)); do
  h=$((e % 20)) m=$(((e / 20) * 2))
  printf 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench-geo//EN\r\nBEGIN:VEVENT\r\nUID:fb-%d\r\nDTSTAMP:%sT000000Z\r\nDTSTART:%sT%02d%02d00Z\r\nDTEND:%sT%02d%02d00Z\r\nSUMMARY:busy %d\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n' \
    "$e" "$ymd" "$ymd" "$h" "$m" "$ymd" "$h" $((m + 30)) "$e" |
    curl -sf -o /dev/null -u 'fb@example.test:correct horse' -X PUT -H 'Content-Type: text/calendar' \
      --data-binary @- "http://127.0.0.1:$(davp b)/dav/calendars/$bid/work/fb-$e.ics" || fail "PUT of event $e on b"
done
echo "=== b and c read a's snapshot of $FILL users"
t0=$(date +%s)
"$work/geobench" snapshot -see "$(sock b)" -marker "fill$(printf %06d $((FILL - 1)))@example.test" -fill "$FILL" -sample 100 \
  -pid "${pids[b]}" -since "$(date +%s%N)" >/dev/null || fail "b did not read a's snapshot"
"$work/geobench" snapshot -see "$(sock c)" -marker "fill$(printf %06d $((FILL - 1)))@example.test" -fill "$FILL" -sample 100 \
  -pid "${pids[c]}" -since "$(date +%s%N)" >/dev/null || fail "c did not read a's snapshot"
echo "b and c caught up after $(($(date +%s) - t0)) s"

for ((r = 1; r <= RUNS; r++)); do
  echo "=== round $r"
  "$work/geobench" lag -data "$work/a/data" -a "$(sock a)" -see "$(sock b),$(sock c)" -n "$CHANGES" |
    tee -a "$out/lag.txt" || fail "lag round $r"
  # The last change made on a before d starts: d has it when it has all.
  marker="snap$r@example.test"
  ms a user add "$marker" -password "correct horse" >/dev/null
  rm -rf "$work/d"/data
  init_site d
  since=$(date +%s%N)
  start_site d
  "$work/geobench" snapshot -see "$(sock d)" -marker "$marker" -fill "$FILL" -sample 1000 -pid "${pids[d]}" -since "$since" |
    tee -a "$out/snapshot.txt" || fail "snapshot round $r"
  stop_site d
  "$work/geobench" freebusy -ask "$(sock c)" -address fb@example.test -day "$day" -n "$FB_QUERIES" |
    tee -a "$out/freebusy.txt" || fail "freebusy round $r"
done

# median FILE KEY: the median of KEY=value over the lines of FILE.
median() { grep -oE "(^| )$2=[0-9.]*" "$1" | cut -d= -f2 | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
all() { grep -oE "(^| )$2=[0-9.]*" "$1" | cut -d= -f2 | paste -sd' ' | sed 's/ /, /g'; }
{
  echo "| measure | target | median of $RUNS | runs |"
  echo "|---|---|---|---|"
  echo "| lag p50 ($CHANGES changes, $FILL+ users on a), ms | | $(median "$out/lag.txt" p50_ms) | $(all "$out/lag.txt" p50_ms) |"
  echo "| lag p99, ms | < 500 | $(median "$out/lag.txt" p99_ms) | $(all "$out/lag.txt" p99_ms) |"
  echo "| lag max, ms | | $(median "$out/lag.txt" max_ms) | $(all "$out/lag.txt" max_ms) |"
  echo "| snapshot of $FILL users to a new site, s | < 30 | $(median "$out/snapshot.txt" seconds) | $(all "$out/snapshot.txt" seconds) |"
  echo "| new site's peak RSS, MB | | $(median "$out/snapshot.txt" peak_rss_mb) | $(all "$out/snapshot.txt" peak_rss_mb) |"
  echo "| free/busy c -> b p50, ms | | $(median "$out/freebusy.txt" p50_ms) | $(all "$out/freebusy.txt" p50_ms) |"
  echo "| free/busy c -> b p99, ms | < 200 | $(median "$out/freebusy.txt" p99_ms) | $(all "$out/freebusy.txt" p99_ms) |"
} | tee "$out/summary.md"
echo "results in $out"
