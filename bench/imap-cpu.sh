#!/usr/bin/env bash
# CPU per IMAP command: runs bench/imap.sh's mix against our server alone
# (ONLY=ours) and reads, over MIX_WINDOW seconds of the mix, the user+system
# time of the PostgreSQL processes, our server and imapload from
# /proc/PID/stat, divided by the commands the mix counted in that time
# (bench/README.md, "Session 17"). On a machine whose speed moves from run
# to run, the ratio of the server's CPU to imapload's (whose work per
# command is fixed) compares two binaries better than commands/s does.
#
#   MAILSERVER=/tmp/ms BACKEND=postgres bash bench/imap-cpu.sh
#
# Every setting of bench/imap.sh applies (defaults here: SETTLE=20
# OLD_LOAD=0 IDLE_CONNS=0 PROBE_N=100 MIX_DURATION=40 PORT_BASE=21800).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${MAILSERVER:?set MAILSERVER to a built examples/mailserver}"
export MAILSERVER ONLY=ours BACKEND=${BACKEND:-postgres} SETTLE=${SETTLE:-20} OLD_LOAD=${OLD_LOAD:-0} \
  IDLE_CONNS=${IDLE_CONNS:-0} DV_IDLE_CONNS=${DV_IDLE_CONNS:-0} PROBE_N=${PROBE_N:-100} \
  MIX_DURATION=${MIX_DURATION:-40} PORT_BASE=${PORT_BASE:-21800}
window=$((MIX_DURATION > 4 ? MIX_DURATION - 2 : 2))
log=$(mktemp)
trap 'rm -f "$log"' EXIT
bash bench/imap.sh >"$log" 2>&1 &
run=$!
# ticks PGREP-ARGS...: the CPU ticks of the processes pgrep finds.
ticks() {
  local t=0 p f
  for p in $(pgrep "$@"); do
    f=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    set -- ${f#*) }
    t=$((t + ${12} + ${13}))
  done
  echo "$t"
}
for _ in $(seq 3000); do grep -q "ours: mix" "$log" && break; sleep 0.2; done
pg0=$(ticks -x postgres) ms0=$(ticks -f "mailserver -config") il0=$(ticks -x imapload)
sleep "$window"
pg1=$(ticks -x postgres) ms1=$(ticks -f "mailserver -config") il1=$(ticks -x imapload)
wait "$run" || { cat "$log"; exit 1; }
out=$(sed -n 's/^(results in \(.*\))$/\1/p' "$log" | tail -1)
read -r cmds secs < <(sed -n 's/^TOTAL commands=\([0-9]*\) secs=\([0-9.]*\).*/\1 \2/p' "$out/ours-mix.txt")
awk -v n="$cmds" -v secs="$secs" -v w="$window" -v hz="$(getconf CLK_TCK)" \
  -v pg=$((pg1 - pg0)) -v ms=$((ms1 - ms0)) -v il=$((il1 - il0)) -v out="$out" 'BEGIN {
  r = n / secs; c = r * w
  printf "commands/s %.1f; CPU per command over %d s of the mix, ms: postgres %.3f, ours %.3f, imapload %.3f; (postgres+ours)/imapload %.2f (%s)\n",
    r, w, pg * 1000 / hz / c, ms * 1000 / hz / c, il * 1000 / hz / c, (il > 0 ? (pg + ms) / il : 0), out }'
