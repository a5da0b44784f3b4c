#!/usr/bin/env bash
# Whole-system benchmark: IMAP, ours vs Dovecot, side by side in one run on
# this machine (see TESTING.md, "Benchmarks", and bench/README.md, "IMAP",
# for recorded results).
#
#   bash bench/imap.sh
#
# Both servers get the same USERS accounts and, by APPEND, the same SEED
# generated messages per account (bench/imapload -seed-messages; the bytes
# depend only on the account and message number). Then bench/imapload runs
# the same mix against each, CLIENTS connections for DURATION seconds:
# LOGIN, SELECT INBOX, ROUNDS x (header fetch of a 20-message window,
# BODY.PEEK[] of 3 messages, STORE +/-\Seen, APPEND, STORE \Deleted +
# UID EXPUNGE of the appended message), LOGOUT. Plain LOGIN without TLS on
# loopback for both (Dovecot: ssl = no; ours: the [imap] loopback key).
#
#  (a) Dovecot: a private instance (.ci/dovecot.sh: own config, base_dir,
#      log and Maildirs under a temp dir, 127.0.0.1:<free port> only),
#      passwd-file passdb with the passwords hashed exactly as our
#      directory hashes them (argon2id m=19456,t=2,p=1, via imapload
#      -dovecot-passwd; DV_PASSWD=plain for {PLAIN}), static userdb,
#      maildir; Dovecot's defaults otherwise (one login process and one imap
#      process per connection, mail_fsync = optimized, no auth cache).
#  (b) ours: examples/mailserver built from this tree, fresh data dir,
#      [imap] listener on 127.0.0.1:<free port>.
#  Memory: IDLE_CONNS logged-in connections sitting in IDLE against ours
#      (a freshly started process): VmRSS before, when all are set up, and
#      IDLE_SETTLE seconds later, per connection; Go heap in use and
#      goroutines from /metrics. For reference, DV_IDLE_CONNS against Dovecot (one imap
#      process per connection): summed PSS of the instance's processes.
#
#  Probe (issue 16): bench/imapload -probe, one client on the first
#      account, PROBE_N rounds of every command kind on its own (LOGIN of
#      a fresh connection, SELECT, LIST, STATUS, FETCH FLAGS / ENVELOPE /
#      BODY.PEEK[HEADER] / BODY.PEEK[], SEARCH, STORE, COPY, APPEND,
#      STORE \Deleted, EXPUNGE, NOOP): p50 and p99 per kind.
#  Mix (issue 16): bench/imapload -mix, MIX_CLIENTS connections that log
#      in once (LOGIN counted apart) and run imaptest's default profile
#      for MIX_DURATION seconds over the INBOXes of MIX_ACCOUNTS accounts
#      shared between them: commands/s.
#  Dovecot runs probe and mix twice: with its default mail_fsync =
#  optimized, then restarted on the same Maildirs with mail_fsync = always
#  (acknowledged writes durable, as ours are).
#
# Environment (all optional):
#   USERS=50 CLIENTS=50 DURATION=60 SEED=100 ROUNDS=5   the login-per-session load
#   OLD_LOAD=1                                          0 skips that load
#   PROBE_N=200 MIX_CLIENTS=50 MIX_DURATION=60 MIX_ACCOUNTS=5  probe and mix
#   DV_ALWAYS=1                                         0 skips Dovecot's mail_fsync = always run
#   IDLE_CONNS=10000 DV_IDLE_CONNS=200 IDLE_SETTLE=30   idle-connection memory
#   IDLE_TLS=0                                          1: our idle connections over implicit TLS
#                                                       (the [imaps] listener), to measure a TLS session's memory
#   DV_PASSWD=argon2id|plain                            Dovecot's password scheme
#   ONLY=ours|dovecot                                   run one side only
#   KEEP_WORK=1                                         keep the temp dir
#   PORT_BASE=n                                         listen only on 127.0.0.1:n..n+99
#   MAILSERVER=path                                     prebuilt server binary
#   PPROF=1                                             serve /debug/pprof/ on ours' [http] listener
#   PERF=1                                              perf record -a -g over each side's mix (needs perf)
#   SETTLE=90                                           seconds to wait (after sync) before each
#                                                       side: a file system mounted with online discard
#                                                       is still trimming a previous run's deleted files,
#                                                       which slowed Dovecot (Maildir) to 930-1,187
#                                                       commands/s in runs started right after another,
#                                                       against 1,649-1,958 after a pause (bench/README.md,
#                                                       "Session 14"); 0 skips the wait
#   BACKEND=sqlite|postgres                             our store (bench/pgbackend.sh:
#                                                       a fresh PostgreSQL database per run)
#
# Writes bench/out/imap-<UTC time>/ (logs, summary.txt, row.md) and prints
# a summary and a bench/README.md table row. Exits non-zero when a side that
# was asked for could not be measured or reported errors.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD

USERS=${USERS:-50}
CLIENTS=${CLIENTS:-50}
DURATION=${DURATION:-60}
SEED=${SEED:-100}
ROUNDS=${ROUNDS:-5}
IDLE_CONNS=${IDLE_CONNS:-10000}
DV_IDLE_CONNS=${DV_IDLE_CONNS:-200}
IDLE_SETTLE=${IDLE_SETTLE:-30}
IDLE_TLS=${IDLE_TLS:-0}
DV_PASSWD=${DV_PASSWD:-argon2id}
ONLY=${ONLY:-}
KEEP_WORK=${KEEP_WORK:-}
MAILSERVER=${MAILSERVER:-}
PPROF=${PPROF:-}
PERF=${PERF:-}
SETTLE=${SETTLE:-90}
OLD_LOAD=${OLD_LOAD:-1}
PROBE_N=${PROBE_N:-200}
MIX_CLIENTS=${MIX_CLIENTS:-50}
MIX_DURATION=${MIX_DURATION:-60}
MIX_ACCOUNTS=${MIX_ACCOUNTS:-5}
DV_ALWAYS=${DV_ALWAYS:-1}
. "$ROOT/bench/pgbackend.sh"

case "$ONLY" in "" | ours | dovecot) ;; *) echo "ONLY must be ours or dovecot" >&2; exit 2 ;; esac
case "$DV_PASSWD" in argon2id | plain) ;; *) echo "DV_PASSWD must be argon2id or plain" >&2; exit 2 ;; esac
for v in USERS CLIENTS DURATION SEED ROUNDS IDLE_CONNS DV_IDLE_CONNS IDLE_SETTLE SETTLE IDLE_TLS OLD_LOAD PROBE_N MIX_CLIENTS MIX_DURATION MIX_ACCOUNTS DV_ALWAYS; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be a number, got '${!v}'" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "run as root: the private Dovecot instance needs it" >&2; exit 2; }

stamp=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$ROOT/bench/out/imap-$stamp
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/mailyard-bench-imap.XXXXXX)
chmod 755 "$WORK"

ms_pid=
idle_pid=
dv_dir=$WORK/dovecot
dovecot_pid=
. "$ROOT/.ci/dovecot.sh"

log() { echo "[$(date +%H:%M:%S)] $*"; }

stop_pid() { # stop_pid PID SECONDS: TERM, wait, then KILL.
  local p=$1 secs=${2:-30} i
  kill -TERM "$p" 2>/dev/null || return 0
  for ((i = 0; i < secs * 10; i++)); do
    kill -0 "$p" 2>/dev/null || { wait "$p" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  echo "pid $p did not stop in ${secs}s; killing it" >&2
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  set +e
  [ -n "$idle_pid" ] && stop_pid "$idle_pid" 20
  [ -n "$ms_pid" ] && stop_pid "$ms_pid" 10
  if [ -n "$dovecot_pid" ]; then dovecot_stop "$dv_dir"; wait "$dovecot_pid" 2>/dev/null; fi
  backend_drop
  [ -f "$dv_dir/dovecot.log" ] && cp "$dv_dir/dovecot.log" "$OUT/dovecot.log"
  if [ -n "$KEEP_WORK" ]; then echo "work dir kept: $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. "$ROOT/bench/ports.sh"

wait_port() { # wait_port PORT SECONDS [PID]
  local port=$1 secs=$2 pid=${3:-} i
  for ((i = 0; i < secs * 10; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null && return 1
    sleep 0.1
  done
  return 1
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# cpu_ticks PID: user + system CPU time of the process, in clock ticks.
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
# Summed PSS (KiB) of the given pids: shared pages split fairly.
pss_kib() {
  local p t=0 v
  for p in "$@"; do
    v=$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null) || continue
    t=$((t + ${v:-0}))
  done
  echo "$t"
}

# ---------------------------------------------------------------- setup
if ! [ -x /usr/sbin/dovecot ] || ! [ -x /usr/lib/dovecot/imap ]; then
  log "installing dovecot-imapd (private instance only; the system service is not started)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends dovecot-imapd >/dev/null
fi
dv_version=$(/usr/sbin/dovecot --version | awk '{print $1}')
mem_gib=$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
machine="$(nproc) cores, ${mem_gib} GiB"
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null | head -1)" ] && commit="$commit+dirty"
load1=$(cut -d' ' -f1 /proc/loadavg)

# Both the load generator and our server hold one descriptor per
# connection (Go raises its soft limit to the hard one by itself).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
need_fds=$((IDLE_CONNS + 1000))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need_fds" ]; then
  ulimit -Hn "$need_fds" 2>/dev/null && ulimit -n "$need_fds" 2>/dev/null ||
    log "note: open-file limit $(ulimit -n) < $need_fds; the idle test may fall short"
fi

log "building bench/imapload"
go build -o "$WORK/imapload" ./bench/imapload
for ((i = 1; i <= USERS; i++)); do echo "user$i@bench.test bench-password-$i"; done >"$WORK/accounts"
if [ "$DV_PASSWD" = argon2id ]; then
  "$WORK/imapload" -users "$WORK/accounts" -dovecot-passwd >"$WORK/dovecot-accounts"
else
  cp "$WORK/accounts" "$WORK/dovecot-accounts"
fi
LOAD_ARGS=(-users "$WORK/accounts" -clients "$CLIENTS" -duration "${DURATION}s" -rounds "$ROUNDS")
load_desc="$CLIENTS clients, ${DURATION}s, $USERS accounts × $SEED msgs, $ROUNDS rounds/login"
log "load: $load_desc"
log "machine: $machine ($cpu), load average $load1, Dovecot $dv_version, commit $commit"
if [ "$SETTLE" -gt 0 ]; then
  log "settling: sync, then ${SETTLE}s for the file system (SETTLE=0 skips)"
  sync
  sleep "$SETTLE"
fi

# parse_run FILE PREFIX: sets PREFIX_cps, PREFIX_errs and PREFIX_p99[kind].
declare -A ours_p99 dv_p99 ours_p50 dv_p50
ours_cps=n/a dv_cps=n/a ours_errs=n/a dv_errs=n/a
parse_run() {
  local f=$1 side=$2 kind p50 p99
  while read -r kind p50 p99; do
    if [ "$side" = ours ]; then ours_p99[$kind]=$p99 ours_p50[$kind]=$p50; else dv_p99[$kind]=$p99 dv_p50[$kind]=$p50; fi
  done < <(sed -n 's/^RESULT kind=\([a-z_]*\) count=[0-9]* p50_ms=\([0-9.]*\) p99_ms=\([0-9.]*\).*/\1 \2 \3/p' "$f")
  if [ "$side" = ours ]; then
    ours_cps=$(sed -n 's/^TOTAL .*commands_per_s=\([0-9.]*\).*/\1/p' "$f"); ours_cps=${ours_cps:-n/a}
    ours_errs=$(sed -n 's/^TOTAL .*errors=\([0-9]*\).*/\1/p' "$f"); ours_errs=${ours_errs:-n/a}
  else
    dv_cps=$(sed -n 's/^TOTAL .*commands_per_s=\([0-9.]*\).*/\1/p' "$f"); dv_cps=${dv_cps:-n/a}
    dv_errs=$(sed -n 's/^TOTAL .*errors=\([0-9]*\).*/\1/p' "$f"); dv_errs=${dv_errs:-n/a}
  fi
}

# idle_test PORT NAME CONNS [IMAPLOAD FLAGS...]: starts imapload -idle in
# the background and waits until it has set up its connections; sets
# idle_open. The caller measures memory, then calls idle_end.
idle_open=0 idle_still=n/a
idle_test() {
  local port=$1 name=$2 conns=$3 i
  shift 3
  "$WORK/imapload" -addr "127.0.0.1:$port" -users "$WORK/accounts" -idle "$conns" -timeout 600s -dial-parallel 16 "$@" \
    >"$OUT/$name-idle.txt" 2>&1 &
  idle_pid=$!
  for ((i = 0; i < 6000; i++)); do
    grep -q '^idle_ready' "$OUT/$name-idle.txt" && break
    kill -0 "$idle_pid" 2>/dev/null || break
    sleep 0.1
  done
  idle_open=$(sed -n 's/^idle_open=\([0-9]*\).*/\1/p' "$OUT/$name-idle.txt")
  idle_open=${idle_open:-0}
  sleep 3 # IDLE acknowledged everywhere
}
idle_end() {
  [ -n "$idle_pid" ] || return 0
  kill -TERM "$idle_pid" 2>/dev/null || true
  wait "$idle_pid" 2>/dev/null || true
  idle_pid=
  idle_still=$(sed -n 's/^idle_still_open=//p' "$OUT/$1-idle.txt")
  idle_still=${idle_still:-n/a}
}

# probe_and_mix PORT SIDE: the latency probe and the stay-logged-in mix
# against 127.0.0.1:PORT; sets PR_P50[SIDE:kind], PR_P99[SIDE:kind],
# MIX_CPS[SIDE], MIX_ERRS[SIDE] and PM_OK[SIDE] (1 when both ran clean).
declare -A PR_P50 PR_P99 MIX_CPS MIX_ERRS PM_OK MIX_P50 MIX_P99
probe_and_mix() {
  local port=$1 side=$2 kind p50 p99 ok=1
  log "$side: probe ($PROBE_N rounds)"
  "$WORK/imapload" -addr "127.0.0.1:$port" -users "$WORK/accounts" -probe -probe-n "$PROBE_N" \
    >"$OUT/$side-probe.txt" 2>&1 || ok=
  while read -r kind p50 p99; do PR_P50[$side:$kind]=$p50 PR_P99[$side:$kind]=$p99; done \
    < <(sed -n 's/^RESULT kind=\([a-z_0-9]*\) count=[0-9]* p50_ms=\([0-9.]*\) p99_ms=\([0-9.]*\).*/\1 \2 \3/p' "$OUT/$side-probe.txt")
  log "$side: mix ($MIX_CLIENTS clients, ${MIX_DURATION}s, $MIX_ACCOUNTS shared INBOXes)"
  local prof_pid=
  if [ -n "$PPROF" ] && [ "$side" = ours ]; then
    # A CPU profile of the server over the middle of the mix.
    (sleep 3; curl -s -o "$OUT/ours-mix-cpu.prof" \
      "http://127.0.0.1:$http_port/debug/pprof/profile?seconds=$(( MIX_DURATION > 10 ? MIX_DURATION - 6 : 4 ))") &
    prof_pid=$!
  fi
  local perf_pid=
  if [ -n "$PERF" ]; then
    # A whole-machine profile (perf record -a -g) over the middle of the
    # mix: how the CPU splits between the server, its database and the
    # load generator. Read it with perf report -i FILE --sort comm.
    (sleep 3; perf record -a -g -F 299 -o "$OUT/$side-mix.perf" -- sleep $(( MIX_DURATION > 10 ? MIX_DURATION - 6 : 4 )) >/dev/null 2>&1) &
    perf_pid=$!
  fi
  "$WORK/imapload" -addr "127.0.0.1:$port" -users "$WORK/accounts" -mix -clients "$MIX_CLIENTS" \
    -duration "${MIX_DURATION}s" -mix-accounts "$MIX_ACCOUNTS" >"$OUT/$side-mix.txt" 2>&1 || ok=
  [ -z "$prof_pid" ] || wait "$prof_pid" || true
  [ -z "$perf_pid" ] || wait "$perf_pid" || true
  while read -r kind p50 p99; do MIX_P50[$side:$kind]=$p50 MIX_P99[$side:$kind]=$p99; done \
    < <(sed -n 's/^RESULT kind=\([a-z_0-9]*\) count=[0-9]* p50_ms=\([0-9.]*\) p99_ms=\([0-9.]*\).*/\1 \2 \3/p' "$OUT/$side-mix.txt")
  MIX_CPS[$side]=$(sed -n 's/^TOTAL .*commands_per_s=\([0-9.]*\).*/\1/p' "$OUT/$side-mix.txt")
  MIX_ERRS[$side]=$(sed -n 's/^TOTAL .* errors=\([0-9]*\).*/\1/p' "$OUT/$side-mix.txt")
  MIX_CPS[$side]=${MIX_CPS[$side]:-n/a} MIX_ERRS[$side]=${MIX_ERRS[$side]:-n/a}
  [ "${MIX_ERRS[$side]}" = 0 ] || ok=
  PM_OK[$side]=$ok
  log "$side: probe $(grep -c '^RESULT' "$OUT/$side-probe.txt") kinds; mix ${MIX_CPS[$side]} commands/s, ${MIX_ERRS[$side]} errors"
}

# ---------------------------------------------------------------- Dovecot
dv_note= dv_ok= dv_idle_kib=n/a dv_idle_total=n/a
run_dovecot() {
  local port
  port=$(free_port)
  log "dovecot: private instance on 127.0.0.1:$port"
  # Enough processes for the idle test (one imap process per connection).
  if ! dovecot_start "$dv_dir" "$port" "$WORK/dovecot-accounts" "default_process_limit = $((DV_IDLE_CONNS + CLIENTS + 100))
default_client_limit = $((2 * (DV_IDLE_CONNS + CLIENTS) + 1000))
default_vsz_limit = 1G"; then
    dv_note="did not start"; return 1
  fi
  cp "$dv_dir/dovecot.conf" "$OUT/dovecot.conf"
  log "dovecot: seeding $USERS × $SEED messages"
  if ! "$WORK/imapload" -addr "127.0.0.1:$port" -users "$WORK/accounts" -seed-messages "$SEED" -seed-only \
    >"$OUT/dovecot-seed.txt" 2>&1; then
    dv_note="seed failed: $(tail -2 "$OUT/dovecot-seed.txt" | tr '\n' ' ')"; return 1
  fi
  log "dovecot: $(cat "$OUT/dovecot-seed.txt")"
  sync
  if [ "$OLD_LOAD" != 0 ]; then
    log "dovecot: load run"
    "$WORK/imapload" -addr "127.0.0.1:$port" "${LOAD_ARGS[@]}" >"$OUT/dovecot-load.txt" 2>&1 || true
    parse_run "$OUT/dovecot-load.txt" dovecot
    log "dovecot: $dv_cps commands/s, $dv_errs errors"
    [ "$dv_cps" != n/a ] && [ "$dv_errs" = 0 ] && dv_ok=1
  else
    dv_ok=1
  fi
  probe_and_mix "$port" dovecot
  [ -n "${PM_OK[dovecot]}" ] || dv_ok=

  if [ "$DV_IDLE_CONNS" -gt 0 ]; then
    local before after
    sleep 2
    before=$(pss_kib $(dovecot_pids "$dv_dir"))
    log "dovecot: $DV_IDLE_CONNS idle connections (summed PSS of the instance)"
    idle_test "$port" dovecot "$DV_IDLE_CONNS"
    after=$(pss_kib $(dovecot_pids "$dv_dir"))
    idle_end dovecot
    if [ "$idle_open" -gt 0 ]; then
      dv_idle_kib=$(awk -v a="$after" -v b="$before" -v n="$idle_open" 'BEGIN { printf "%.1f", (a - b) / n }')
      dv_idle_total=$(awk -v a="$after" 'BEGIN { printf "%.1f", a / 1024 }')
    fi
    log "dovecot: $idle_open of $DV_IDLE_CONNS open, PSS ${before} KiB -> ${after} KiB, $dv_idle_kib KiB per connection"
  fi
  dovecot_stop "$dv_dir"; wait "$dovecot_pid" 2>/dev/null || true; dovecot_pid=
  if [ "$DV_ALWAYS" != 0 ]; then
    port=$(free_port)
    log "dovecot: restarted with mail_fsync = always on 127.0.0.1:$port"
    if ! dovecot_start "$dv_dir" "$port" "$WORK/dovecot-accounts" "default_process_limit = $((CLIENTS + MIX_CLIENTS + 100))
default_client_limit = $((2 * (CLIENTS + MIX_CLIENTS) + 1000))
default_vsz_limit = 1G
mail_fsync = always"; then
      dv_note="did not start with mail_fsync = always"; dv_ok=; return 1
    fi
    cp "$dv_dir/dovecot.conf" "$OUT/dovecot-always.conf"
    probe_and_mix "$port" dovecot_always
    [ -n "${PM_OK[dovecot_always]}" ] || dv_ok=
    dovecot_stop "$dv_dir"; wait "$dovecot_pid" 2>/dev/null || true; dovecot_pid=
  fi
}

# ---------------------------------------------------------------- ours
ours_cpu=n/a ours_mix_cpu=n/a
ours_note= ours_ok= ours_idle_kib=n/a ours_idle_rss=n/a ours_idle_base=n/a ours_idle_open=n/a ours_idle_still=n/a
ours_idle_rss0=n/a ours_idle_kib0=n/a ours_heap0=n/a ours_heap=n/a ours_gor0=n/a ours_gor=n/a ours_idle_secs=n/a
# metric NAME: one value from our /metrics.
metric() {
  python3 - "$http_port" "$1" <<'PY' 2>/dev/null || echo n/a
import sys, urllib.request
body = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=10).read().decode()
for line in body.splitlines():
    if line.split(" ")[0] == sys.argv[2]:
        print(int(float(line.split()[-1])))
        break
else:
    print("n/a")
PY
}
MS=$WORK/mailserver
CFG=$WORK/ours/mailserver.toml
ms() { timeout 120 "$MS" -config "$CFG" "$@"; }
start_ours() { # start_ours LOGNAME
  "$MS" -config "$CFG" serve >>"$OUT/$1" 2>&1 &
  ms_pid=$!
  if ! wait_port "$ours_port" 60 "$ms_pid"; then
    ours_note="server did not listen on 127.0.0.1:$ours_port: $(tail -3 "$OUT/$1" | tr '\n' ' ')"
    return 1
  fi
}

run_ours() {
  local p1 p2 p3 p4 p5 i
  if [ -n "$MAILSERVER" ]; then
    cp "$MAILSERVER" "$MS"
  else
    log "ours: go build ./examples/mailserver"
    if ! go build -o "$MS" ./examples/mailserver >"$OUT/ours-build.log" 2>&1; then
      ours_note="build failed: $(head -3 "$OUT/ours-build.log" | tr '\n' ' ')"; return 1
    fi
  fi
  ours_port=$(free_port) p1=$(free_port) p2=$(free_port) p3=$(free_port) p4=$(free_port) p5=$(free_port)
  http_port=$p4 imaps_port=$p5
  mkdir -p "$WORK/ours"
  if ! backend_setup >"$OUT/ours-backend.log" 2>&1; then
    ours_note="store backend: $(tail -3 "$OUT/ours-backend.log" | tr '\n' ' ')"; return 1
  fi
  log "ours: store $backend_desc"
  cat >"$CFG" <<CFG
hostname = "imap.bench.test"
data_dir = "$WORK/ours/data"
[smtp]
listen = "127.0.0.1:$p1"
[submission]
listen = "127.0.0.1:$p2"
[submissions]
listen = "127.0.0.1:$p3"
[http]
listen = "127.0.0.1:$p4"
pprof = $([ -n "$PPROF" ] && echo true || echo false)
[limits]
max_conns_per_ip = $((IDLE_CONNS + CLIENTS + 100))
max_conns = $((IDLE_CONNS + CLIENTS + 100))
[dns]
server = "127.0.0.1:1"
timeout = "1s"
# Plain LOGIN on loopback, like the Dovecot instance (ssl = no).
[imap]
listen = "127.0.0.1:$ours_port"
allow_insecure_auth = true
[imaps]
listen = "127.0.0.1:$p5"
[dav]
listen = ""
$STORE_TOML
CFG
  cp "$CFG" "$OUT/ours-mailserver.toml"
  log "ours: domain and $USERS users"
  if ! {
    ms init
    ms domain add bench.test
    while read -r u p; do ms user add "$u" -password "$p" || exit 1; done <"$WORK/accounts"
  } >"$OUT/ours-setup.log" 2>&1; then
    ours_note="setup failed: $(tail -3 "$OUT/ours-setup.log" | tr '\n' ' ')"; return 1
  fi

  log "ours: seeding $USERS × $SEED messages"
  start_ours ours-server.log || return 1
  if ! "$WORK/imapload" -addr "127.0.0.1:$ours_port" -users "$WORK/accounts" -seed-messages "$SEED" -seed-only \
    >"$OUT/ours-seed.txt" 2>&1; then
    ours_note="seed failed: $(tail -2 "$OUT/ours-seed.txt" | tr '\n' ' ')"; return 1
  fi
  log "ours: $(cat "$OUT/ours-seed.txt")"
  echo "--- restart for the load run" >>"$OUT/ours-server.log"
  stop_pid "$ms_pid" 30; ms_pid=
  sync

  start_ours ours-server.log || return 1
  local c0 c1
  if [ "$OLD_LOAD" != 0 ]; then
  log "ours: load run"
  c0=$(cpu_ticks "$ms_pid")
  "$WORK/imapload" -addr "127.0.0.1:$ours_port" "${LOAD_ARGS[@]}" >"$OUT/ours-load.txt" 2>&1 || true
  c1=$(cpu_ticks "$ms_pid" 2>/dev/null || echo "$c0")
  parse_run "$OUT/ours-load.txt" ours
  ours_cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$(getconf CLK_TCK)" -v f="$OUT/ours-load.txt" 'BEGIN {
    while ((getline l < f) > 0) if (l ~ /^TOTAL /) { split(l, kv, /[ =]/); for (i in kv) if (kv[i] == "commands") n = kv[i + 1]; if (kv[i] == "secs") {} }
    s = (b - a) / hz; if (n > 0) printf "%.1f s CPU, %.0f us per command", s, s * 1e6 / n; else printf "%.1f s CPU", s }')
  log "ours: server CPU during the load run: $ours_cpu"
  log "ours: $ours_cps commands/s, $ours_errs errors"
  kill -0 "$ms_pid" 2>/dev/null || ours_note="server died under load"
  [ "$ours_cps" != n/a ] && [ "$ours_errs" = 0 ] && kill -0 "$ms_pid" 2>/dev/null && ours_ok=1
  else
    ours_ok=1
  fi
  c0=$(cpu_ticks "$ms_pid")
  probe_and_mix "$ours_port" ours
  c1=$(cpu_ticks "$ms_pid" 2>/dev/null || echo "$c0")
  ours_mix_cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f s", (b - a) / hz }')
  log "ours: server CPU during probe and mix: $ours_mix_cpu"
  [ -n "${PM_OK[ours]}" ] && kill -0 "$ms_pid" 2>/dev/null || ours_ok=
  echo "--- restart for the idle test" >>"$OUT/ours-server.log"
  stop_pid "$ms_pid" 30; ms_pid=

  if [ "$IDLE_CONNS" -gt 0 ]; then
    # A fresh process, so freed heap from the load run cannot hide the
    # connections' cost.
    start_ours ours-server.log || return 1
    sleep 2
    ours_idle_base=$(rss_kib "$ms_pid") ours_heap0=$(metric go_memstats_heap_inuse_bytes) ours_gor0=$(metric go_goroutines)
    log "ours: $IDLE_CONNS idle connections in IDLE (VmRSS of pid $ms_pid, before: $ours_idle_base KiB)"
    local t0=$SECONDS
    if [ "$IDLE_TLS" = 1 ]; then
      log "ours: over implicit TLS ([imaps] on 127.0.0.1:$imaps_port, its self-signed certificate)"
      idle_test "$imaps_port" ours "$IDLE_CONNS" -tls -insecure
    else
      idle_test "$ours_port" ours "$IDLE_CONNS"
    fi
    ours_idle_secs=$((SECONDS - t0))
    ours_idle_open=$idle_open
    if kill -0 "$ms_pid" 2>/dev/null; then
      ours_idle_rss0=$(rss_kib "$ms_pid")
      log "ours: $idle_open open after ${ours_idle_secs}s, VmRSS $ours_idle_rss0 KiB; settling ${IDLE_SETTLE}s"
      sleep "$IDLE_SETTLE"
    fi
    if kill -0 "$ms_pid" 2>/dev/null; then
      ours_idle_rss=$(rss_kib "$ms_pid") ours_heap=$(metric go_memstats_heap_inuse_bytes) ours_gor=$(metric go_goroutines)
      if [ "$idle_open" -gt 0 ]; then
        ours_idle_kib0=$(awk -v a="$ours_idle_rss0" -v b="$ours_idle_base" -v n="$idle_open" 'BEGIN { printf "%.1f", (a - b) / n }')
        ours_idle_kib=$(awk -v a="$ours_idle_rss" -v b="$ours_idle_base" -v n="$idle_open" 'BEGIN { printf "%.1f", (a - b) / n }')
      fi
    else
      ours_note="${ours_note:+$ours_note; }server died during the idle test"
    fi
    idle_end ours
    ours_idle_still=$idle_still
    log "ours: $ours_idle_open of $IDLE_CONNS open (still open at the end: $ours_idle_still), VmRSS $ours_idle_base -> $ours_idle_rss KiB, $ours_idle_kib KiB per connection; heap in use $ours_heap0 -> $ours_heap B, goroutines $ours_gor0 -> $ours_gor"
    if [ "$ours_idle_open" != "$IDLE_CONNS" ]; then
      ours_note="${ours_note:+$ours_note; }idle: $(grep -E '^idle_(open|first_error)' "$OUT/ours-idle.txt" | tr '\n' ' ')"
    fi
    stop_pid "$ms_pid" 30; ms_pid=
  fi
  return 0
}

if [ "$ONLY" != ours ]; then run_dovecot || log "dovecot: $dv_note"; fi
if [ "$ONLY" != dovecot ]; then
  if [ "$ONLY" != ours ] && [ "$SETTLE" -gt 0 ]; then
    # Dovecot's expunges were unlinks: let their trimming end before
    # ours is measured, as before Dovecot's side.
    log "settling before ours: sync, then ${SETTLE}s"
    sync
    sleep "$SETTLE"
  fi
  run_ours || log "ours: $ours_note"
fi

# ---------------------------------------------------------------- report
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.2f", a / b; else print "n/a" }'; }
ours_log_issues=0
[ -f "$OUT/ours-server.log" ] && ours_log_issues=$(grep -ciE 'level=(warn|error)|"level":"(warn|error)"|panic|fatal' "$OUT/ours-server.log" || true)
dv_log_issues=0
[ -f "$dv_dir/dovecot.log" ] && dv_log_issues=$(grep -iE ': (warning|error|panic|fatal):' "$dv_dir/dovecot.log" | grep -vc 'Killed with signal 15' || true)
r_cps=$(ratio "$ours_cps" "$dv_cps")
kinds="connect login select fetch_headers fetch_body store append expunge logout"

{
  echo "== imap  $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine:   $machine, $cpu; load average at start $load1"
  echo "commit:    $commit"
  echo "store:     ours on $backend_desc"
  echo "dovecot:   $dv_version (passwords: $DV_PASSWD)"
  echo "load:      bench/imapload -users accounts -clients $CLIENTS -duration ${DURATION}s -rounds $ROUNDS, after -seed-messages $SEED ($load_desc)"
  echo
  printf '%-16s %12s %12s %12s %12s %10s\n' "" "ours p50 ms" "dovecot p50" "ours p99 ms" "dovecot p99" "p99 o/d"
  for k in $kinds; do
    printf '%-16s %12s %12s %12s %12s %10s\n' "$k" "${ours_p50[$k]:-n/a}" "${dv_p50[$k]:-n/a}" \
      "${ours_p99[$k]:-n/a}" "${dv_p99[$k]:-n/a}" "$(ratio "${ours_p99[$k]:-}" "${dv_p99[$k]:-}")"
  done
  echo
  printf '%-40s %s\n' "commands/s ours" "$ours_cps (errors: $ours_errs)"
  printf '%-40s %s\n' "commands/s dovecot" "$dv_cps (errors: $dv_errs)"
  printf '%-40s %s\n' "ratio ours / dovecot (commands/s)" "$r_cps"
  printf '%-40s %s\n' "ours, server CPU during the load run" "$ours_cpu"
  if [ "$IDLE_CONNS" -gt 0 ] && [ "$ONLY" != dovecot ]; then
    printf '%-40s %s\n' "ours, $IDLE_CONNS idle (IDLE) connections" "open $ours_idle_open (set up in ${ours_idle_secs}s), still open at end $ours_idle_still"
    printf '%-40s %s\n' "  VmRSS before / all open / +${IDLE_SETTLE}s" "$ours_idle_base / $ours_idle_rss0 / $ours_idle_rss KiB: $ours_idle_kib0 / $ours_idle_kib KiB per connection"
    printf '%-40s %s\n' "  Go heap in use, goroutines" "$ours_heap0 -> $ours_heap B ($(awk -v a="$ours_heap" -v b="$ours_heap0" -v n="$ours_idle_open" 'BEGIN { if (n > 0 && a ~ /^[0-9]+$/) printf "%.1f KiB", (a - b) / n / 1024; else print "n/a" }') per connection), $ours_gor0 -> $ours_gor"
  fi
  if [ "$DV_IDLE_CONNS" -gt 0 ] && [ "$ONLY" != ours ]; then
    printf '%-40s %s\n' "dovecot, $DV_IDLE_CONNS idle connections" "summed PSS ${dv_idle_total} MiB; $dv_idle_kib KiB per connection"
  fi
  echo
  echo "probe: one client, $PROBE_N rounds, every command on its own (bench/imapload -probe); ms"
  printf '%-16s %10s %10s %10s %10s %10s %10s %9s %9s\n' "" "ours p50" "dv p50" "dvAlw p50" "ours p99" "dv p99" "dvAlw p99" "p50 o/d" "p50 o/dA"
  for k in login select list status fetch_flags fetch_envelope fetch_header fetch_body search store copy append store_deleted expunge noop; do
    printf '%-16s %10s %10s %10s %10s %10s %10s %9s %9s\n' "$k" "${PR_P50[ours:$k]:-n/a}" "${PR_P50[dovecot:$k]:-n/a}" "${PR_P50[dovecot_always:$k]:-n/a}" \
      "${PR_P99[ours:$k]:-n/a}" "${PR_P99[dovecot:$k]:-n/a}" "${PR_P99[dovecot_always:$k]:-n/a}" \
      "$(ratio "${PR_P50[ours:$k]:-}" "${PR_P50[dovecot:$k]:-}")" "$(ratio "${PR_P50[ours:$k]:-}" "${PR_P50[dovecot_always:$k]:-}")"
  done
  echo
  echo "mix: $MIX_CLIENTS clients logged in once, ${MIX_DURATION}s, imaptest default profile over $MIX_ACCOUNTS shared INBOXes (bench/imapload -mix)"
  printf '%-40s %s\n' "commands/s ours" "${MIX_CPS[ours]:-n/a} (errors: ${MIX_ERRS[ours]:-n/a}; server CPU in probe+mix $ours_mix_cpu)"
  printf '%-40s %s\n' "commands/s dovecot (fsync optimized)" "${MIX_CPS[dovecot]:-n/a} (errors: ${MIX_ERRS[dovecot]:-n/a})"
  printf '%-40s %s\n' "commands/s dovecot (fsync always)" "${MIX_CPS[dovecot_always]:-n/a} (errors: ${MIX_ERRS[dovecot_always]:-n/a})"
  printf '%-40s %s\n' "ratio ours / dovecot optimized" "$(ratio "${MIX_CPS[ours]:-}" "${MIX_CPS[dovecot]:-}")"
  printf '%-40s %s\n' "ratio ours / dovecot always" "$(ratio "${MIX_CPS[ours]:-}" "${MIX_CPS[dovecot_always]:-}")"
  printf '%-16s %10s %10s %10s %10s %10s %10s\n' "mix kind" "ours p50" "dv p50" "dvAlw p50" "ours p99" "dv p99" "dvAlw p99"
  for k in login select fetch fetch2 list status copy store store_deleted expunge append; do
    printf '%-16s %10s %10s %10s %10s %10s %10s\n' "$k" "${MIX_P50[ours:$k]:-n/a}" "${MIX_P50[dovecot:$k]:-n/a}" "${MIX_P50[dovecot_always:$k]:-n/a}" \
      "${MIX_P99[ours:$k]:-n/a}" "${MIX_P99[dovecot:$k]:-n/a}" "${MIX_P99[dovecot_always:$k]:-n/a}"
  done
  [ -n "$ours_note" ] && echo "ours NOTE:    $ours_note"
  [ -n "$dv_note" ] && echo "dovecot NOTE: $dv_note"
  { grep -h '^ERROR' "$OUT/ours-load.txt" 2>/dev/null || true; } | head -5 | sed 's/^/ours /'
  { grep -h '^ERROR' "$OUT/dovecot-load.txt" 2>/dev/null || true; } | head -5 | sed 's/^/dovecot /'
  echo "warnings/errors in logs: ours $ours_log_issues, dovecot $dv_log_issues (see $OUT)"
  if [ "${ours_log_issues:-0}" -gt 0 ]; then
    echo "first lines from our server's log:"
    grep -iE 'level=(warn|error)|"level":"(warn|error)"|panic|fatal' "$OUT/ours-server.log" | head -5 | sed 's/^/  /'
  fi
} | tee "$OUT/summary.txt"

op99=$(for k in login fetch_headers fetch_body store append expunge; do printf '%s/' "${ours_p99[$k]:-n/a}"; done)
dp99=$(for k in login fetch_headers fetch_body store append expunge; do printf '%s/' "${dv_p99[$k]:-n/a}"; done)
ours_idle_col="not measured"
if [ "$IDLE_CONNS" -gt 0 ] && [ "$ours_idle_rss" != n/a ]; then
  ours_idle_col="$ours_idle_open open: VmRSS $((ours_idle_rss / 1024)) MiB, $ours_idle_kib KiB/conn (heap $(awk -v a="$ours_heap" -v b="$ours_heap0" -v n="$ours_idle_open" 'BEGIN { if (n > 0 && a ~ /^[0-9]+$/) printf "%.1f", (a - b) / n / 1024; else print "n/a" }') KiB/conn)"
fi
dv_idle_col="not measured"
[ "$DV_IDLE_CONNS" -gt 0 ] && [ "$dv_idle_kib" != n/a ] && dv_idle_col="$DV_IDLE_CONNS open: $dv_idle_kib KiB/conn (PSS)"
backend_col=; [ "$BACKEND" = postgres ] && backend_col=" (postgres)"
row="| $(date -u +%Y-%m-%d) | $commit$backend_col | $machine, load $load1 | $dv_version | $load_desc | $ours_cps | $dv_cps | **$r_cps** | ${op99%/} | ${dp99%/} | $ours_idle_col | $dv_idle_col |"
echo "$row" >"$OUT/row.md"
echo
echo "bench/README.md row:"
echo "$row"
echo "(results in $OUT)"

status=0
if [ "$ONLY" != ours ] && [ -z "$dv_ok" ]; then status=1; fi
if [ "$ONLY" != dovecot ] && [ -z "$ours_ok" ]; then status=1; fi
exit "$status"
