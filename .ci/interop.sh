#!/usr/bin/env bash
# Runs every .ci/interop-*.sh, INTEROP_JOBS of them at a time (default 2),
# and fails if any fails. Each script's output is printed whole when it
# ends, with its time; the failures are listed again at the end.
#
# Side by side is safe because the scripts share nothing but the
# machine's peers: each has its own work directory, its own PostgreSQL
# database, and its own ports. The scripts with fixed ports use ranges of
# their own (cluster 21000, proxy 21100, imapcompress 21300, ews 21400,
# schedule 21800, geo 22300, walkthrough the README's defaults); every
# other port comes from free_port (lib.sh), which under this runner hands
# each of the scripts running at once its own INTEROP_PORT_SPAN ports from
# INTEROP_PORT_BASE up (default 100 from 23000 per slot), below the
# kernel's ephemeral range.
#
# The commands the scripts run are linked once, here, into INTEROP_BIN
# (build_bin in lib.sh copies them), instead of once per script.
#
# The longest scripts start first, so that the short ones fill the other
# slot beside them: bruteforce attacks for 120 s, imapload loads for 60
# s, and cluster, storecopy and ewssync move thousands of messages; the
# rest are in the order of their times in bench/README.md ("CI time"). A
# script not listed runs last. Arguments (bruteforce smtp ...) run only
# the scripts named.
#
# Scripts in solo run first, alone: bruteforce counts the victim's
# logins in a fixed interval while 20 attackers run, and a second heavy
# script beside it on 2 cores made it miss its count (load 60; all the
# victim's logins succeeded, fewer fitted in).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${INTEROP_JOBS:-2}
port_base=${INTEROP_PORT_BASE:-23000}
port_span=${INTEROP_PORT_SPAN:-100}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

order=(
  bruteforce cluster storecopy ewssync dav imapload geo migrate walkthrough
  ews imap dkim queue smtp schedule milter proxy imapcompress literal
)
solo=(bruteforce)
scripts=()
for n in "${order[@]}"; do
  [ -f ".ci/interop-$n.sh" ] && scripts+=(".ci/interop-$n.sh")
done
for s in .ci/interop-*.sh; do
  [[ " ${scripts[*]} " == *" $s "* ]] || scripts+=("$s")
done
if (($#)); then
  all=("${scripts[@]}") scripts=()
  for s in "${all[@]}"; do
    for n in "$@"; do [ "$s" = ".ci/interop-$n.sh" ] && scripts+=("$s"); done
  done
  ((${#scripts[@]} == $#)) || { echo "no such script among: $*" >&2; exit 2; }
fi

export INTEROP_BIN="$out/bin"
go build -o "$INTEROP_BIN/" ./examples/mailserver ./examples/migrate ./internal/ewstest/cmd/ewsd \
  ./dkim/internal/dkiminterop ./bench/imapload

start=$(date +%s)
# run_one SLOT SCRIPT runs it on the ports of SLOT and prints its log, its
# time and the CPU time it and its children used, when it ends.
run_one() {
  local slot=$1 s=$2 name t0 rc=0 cpu
  name=$(basename "$s" .sh)
  t0=$(date +%s)
  local TIMEFORMAT='%U s user, %S s sys'
  { time { (
    export INTEROP_PORTS="$((port_base + slot * port_span)) $((port_base + (slot + 1) * port_span)) $out/$name.port"
    # The full 300 s brute-force run is recorded in bench/README.md; CI
    # keeps it lean.
    case "$name" in interop-bruteforce) export DURATION=${BRUTEFORCE_DURATION:-120} ;; esac
    bash "$s"
  ) >"$out/$name.log" 2>&1 </dev/null; }; } 2>"$out/$name.cpu" || rc=$?
  cpu=$(tail -1 "$out/$name.cpu")
  echo "$rc" >"$out/$name.rc"
  flock "$out/print.lock" bash -c 'echo; echo "== $1: $([ "$2" = 0 ] && echo ok || echo "FAILED ($2)") in $3 s (done at $4 s; CPU $6)"; cat "$5"' _ \
    "$s" "$rc" "$(($(date +%s) - t0))" "$(($(date +%s) - start))" "$out/$name.log" "$cpu"
}

# A slot is free again once its script's result file exists (run_one
# writes it when the script has ended), not when some wait returns.
declare -A slot_of=() name_of=() # pid of a running run_one -> its slot, script
free_slots=()
for ((k = jobs - 1; k >= 0; k--)); do free_slots+=("$k"); done
is_solo() { [[ " ${solo[*]} " == *" $(basename "$1" .sh | sed 's/^interop-//') "* ]]; }
for s in "${scripts[@]}"; do
  is_solo "$s" && run_one 0 "$s"
done
for s in "${scripts[@]}"; do
  is_solo "$s" && continue
  while ((${#free_slots[@]} == 0)); do
    wait -n 2>/dev/null || sleep 1
    for p in "${!slot_of[@]}"; do
      if [ -e "$out/${name_of[$p]}.rc" ]; then
        free_slots+=("${slot_of[$p]}")
        unset "slot_of[$p]" "name_of[$p]"
      fi
    done
  done
  slot=${free_slots[-1]}
  unset "free_slots[-1]"
  free_slots=("${free_slots[@]}")
  run_one "$slot" "$s" &
  slot_of[$!]=$slot
  name_of[$!]=$(basename "$s" .sh)
done
wait || true

failed=()
for s in "${scripts[@]}"; do
  rc=$(cat "$out/$(basename "$s" .sh).rc" 2>/dev/null || echo "no result")
  [ "$rc" = 0 ] || failed+=("$s ($rc)")
done
echo
echo "interop: ${#scripts[@]} scripts, $jobs at a time, $(($(date +%s) - start)) s"
if ((${#failed[@]})); then
  printf 'FAILED: %s\n' "${failed[@]}"
  exit 1
fi
