#!/usr/bin/env bash
# Whole-system benchmark: durable inbound SMTP throughput, ours vs Postfix,
# side by side in one run on this machine (see TESTING.md,
# "Benchmarks", and bench/README.md for recorded results).
#
#   bash bench/smtp-inbound.sh
#
# Load: Postfix's smtp-source, SESSIONS parallel sessions, MESSAGES messages
# of SIZE bytes of body each, one local recipient, a new connection per
# message (smtp-source's default; SOURCE_OPTS=-d reuses connections).
#
#  (a) ours: examples/mailserver, built from this tree. It stores before it
#      says 250, so its rate = MESSAGES / smtp-source's wall time. Afterwards
#      the stored count is checked with `mailserver mail list`.
#  (b) Postfix: a private instance (own config, queue and data directories
#      under a temp dir, smtpd on 127.0.0.1:<free port> only) with virtual
#      delivery to a Maildir. Postfix says 250 once its queue file is
#      fsynced and delivers afterwards, so two rates: accepted (smtp-source's
#      wall time) and delivered (from the start of smtp-source until all
#      MESSAGES files are in Maildir new/).
#  Memory: IDLE_CONNS idle connections (greeting read, nothing sent) to our
#      server; VmRSS after minus before, per connection. For reference, the
#      same for Postfix with PF_IDLE_CONNS connections (one smtpd process
#      each) as summed PSS of the instance's processes.
#
# Environment (all optional):
#   MESSAGES=20000 SESSIONS=20 SIZE=4096   the load
#   IDLE_CONNS=1000 PF_IDLE_CONNS=50       idle-connection memory tests
#   ONLY=ours|postfix                      run one side only
#   SOURCE_OPTS=""                         extra smtp-source flags (e.g. -d)
#   TIMEOUT=600                            seconds for each load run / delivery
#   KEEP_WORK=1                            keep the temp dir (printed) for a look
#   PORT_BASE=n                            listen only on 127.0.0.1:n..n+99 (a
#                                          shared machine's port block)
#   MAILSERVER=path                        use this binary instead of building one
#   BACKEND=sqlite|postgres                our store (bench/pgbackend.sh: a fresh
#                                          PostgreSQL database per run)
#   SETTLE=60                              seconds to wait, after sync, before each
#                                          side: a file system mounted with online
#                                          discard is still trimming the files a
#                                          previous run deleted (bench/README.md,
#                                          "Session 14"); 0 skips the wait
#   PPROF=0                                n > 0: a CPU profile of our server for
#                                          the load run's first n seconds
#                                          ([http] pprof; ours-cpu.pprof in the
#                                          run's directory)
#
# CPU: our server's user+sys over the load run (the process is started
# for it), and with BACKEND=postgres that of the PostgreSQL backends
# serving the run's database (read before our server stops, while its
# pool's connections are open), per message: unlike the rates, these do
# not depend on how loaded the machine is.
#
# Writes bench/out/smtp-inbound-<UTC time>/ (logs, summary.txt, row.md) and
# prints a summary and a bench/README.md table row. Exits non-zero when a
# side that was asked for could not be measured or lost mail.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD

MESSAGES=${MESSAGES:-20000}
SESSIONS=${SESSIONS:-20}
SIZE=${SIZE:-4096}
IDLE_CONNS=${IDLE_CONNS:-1000}
PF_IDLE_CONNS=${PF_IDLE_CONNS:-50}
ONLY=${ONLY:-}
SOURCE_OPTS=${SOURCE_OPTS:-}
TIMEOUT=${TIMEOUT:-600}
KEEP_WORK=${KEEP_WORK:-}
MAILSERVER=${MAILSERVER:-}
PPROF=${PPROF:-0}
SETTLE=${SETTLE:-60}
RCPT=user@bench.test
. "$ROOT/bench/pgbackend.sh"
SENDER=sender@remote.test

case "$ONLY" in "" | ours | postfix) ;; *) echo "ONLY must be ours or postfix" >&2; exit 2 ;; esac
for v in MESSAGES SESSIONS SIZE IDLE_CONNS PF_IDLE_CONNS TIMEOUT PPROF SETTLE; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be a number, got '${!v}'" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "run as root: the private Postfix instance needs it" >&2; exit 2; }

stamp=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$ROOT/bench/out/smtp-inbound-$stamp
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/mailyard-bench.XXXXXX)
# Postfix daemons run as the postfix user and must reach the queue below.
chmod 755 "$WORK"

ms_pid=
pf_etc=$WORK/pf/etc
pf_started=

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

pf_master_pid() { cat "$WORK/pf/queue/pid/master.pid" 2>/dev/null | tr -d ' ' || true; }

stop_postfix() {
  [ -n "$pf_started" ] || return 0
  local mp i
  mp=$(pf_master_pid)
  postfix -c "$pf_etc" stop >/dev/null 2>&1 || true
  if [ -n "$mp" ]; then
    for ((i = 0; i < 150; i++)); do kill -0 "$mp" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$mp" 2>/dev/null; then
      echo "private postfix master $mp did not stop; killing it" >&2
      kill -KILL "$mp" 2>/dev/null || true
    fi
  fi
  pf_started=
}

cleanup() {
  local rc=$?
  set +e
  [ -n "$ms_pid" ] && stop_pid "$ms_pid" 10
  ms_pid=
  stop_postfix
  backend_drop
  [ -f "$WORK/pf/maillog" ] && cp "$WORK/pf/maillog" "$OUT/postfix-maillog.txt"
  if [ -n "$KEEP_WORK" ]; then echo "work dir kept: $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. "$ROOT/bench/ports.sh"

wait_port() { # wait_port PORT SECONDS [PID]: until 127.0.0.1:PORT accepts.
  local port=$1 secs=$2 pid=${3:-} i
  for ((i = 0; i < secs * 10; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    sleep 0.1
  done
  return 1
}

now() { date +%s.%N; }
rate() { awk -v n="$1" -v t="$2" 'BEGIN { if (t > 0) printf "%.0f", n / t; else print "n/a" }'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# count_until DIR N TIMEOUT: waits until DIR holds N entries; prints the count.
count_until() {
  python3 - "$1" "$2" "$3" <<'PY'
import os, sys, time
d, n, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
end = time.monotonic() + limit
c = 0
while True:
    try:
        c = sum(1 for _ in os.scandir(d))
    except FileNotFoundError:
        c = 0
    if c >= n or time.monotonic() > end:
        break
    time.sleep(0.05)
print(c)
PY
}

# ---------------------------------------------------------------- peers
if ! command -v smtp-source >/dev/null || ! command -v postfix >/dev/null; then
  log "installing postfix (smtp-source, private instance)"
  export DEBIAN_FRONTEND=noninteractive
  echo "postfix postfix/main_mailer_type select Local only" | debconf-set-selections
  echo "postfix postfix/mailname string localhost" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postfix >/dev/null
fi
for c in smtp-source postfix postconf python3 awk timeout; do
  command -v "$c" >/dev/null || { echo "missing: $c" >&2; exit 2; }
done
pf_version=$(postconf -d -h mail_version)
mem_gib=$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
machine="$(nproc) cores, ${mem_gib} GiB"
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null | head -1)" ] && commit="$commit+dirty"
fs=$(df -T "$WORK" | awk 'NR == 2 { print $2 }')
# How long one 4 KiB write + fsync takes in the work dir: both servers pay it.
fsync_ms=$(python3 - "$WORK" <<'PY'
import os, sys, time
p = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o600)
t = time.monotonic()
for _ in range(100):
    os.write(fd, b"x" * 4096)
    os.fsync(fd)
print("%.2f" % ((time.monotonic() - t) * 10))
os.close(fd)
os.unlink(p)
PY
)

load="smtp-source -s $SESSIONS -l $SIZE -m $MESSAGES${SOURCE_OPTS:+ $SOURCE_OPTS} -f $SENDER -t $RCPT"
log "load: $load"
log "machine: $machine ($cpu), work dir on $fs (write+fsync ${fsync_ms} ms), Postfix $pf_version, commit $commit"

# run_source PORT LOGNAME: runs the load against 127.0.0.1:PORT; sets
# src_start, src_end, src_rc.
# cpu_ms PID...: the processes' user+sys CPU so far, in ms (gone ones
# count 0).
cpu_ms() {
  local tck pid sum=0 t
  tck=$(getconf CLK_TCK)
  for pid in "$@"; do
    # Fields 14 and 15 (utime, stime) counted after the ")" that ends
    # the command name, which may hold spaces.
    t=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{ print $12 + $13 }') || t=0
    sum=$((sum + ${t:-0}))
  done
  echo $((sum * 1000 / tck))
}

# per_msg MS: MS over MESSAGES, "n/a" for n/a.
per_msg() {
  [[ $1 =~ ^[0-9]+$ ]] || { echo n/a; return; }
  awk -v ms="$1" -v n="$MESSAGES" 'BEGIN { printf "%.2f", ms / n }'
}

run_source() {
  local port=$1 name=$2
  sync
  src_start=$(now)
  # shellcheck disable=SC2086 # SOURCE_OPTS is a list of flags
  if timeout "$TIMEOUT" smtp-source -s "$SESSIONS" -l "$SIZE" -m "$MESSAGES" $SOURCE_OPTS \
    -M client.remote.test -f "$SENDER" -t "$RCPT" "127.0.0.1:$port" >"$OUT/$name.log" 2>&1; then
    src_rc=0
  else
    src_rc=$?
  fi
  src_end=$(now)
}

# ---------------------------------------------------------------- Postfix
pf_accept=n/a pf_deliver=n/a pf_accept_s=n/a pf_deliver_s=n/a pf_delivered=0
pf_idle=n/a pf_note=
ours_cpu=n/a pg_cpu=n/a
pf_ok=

run_postfix() {
  local port q mail mp maildir count
  port=$(free_port)
  q=$WORK/pf/queue mail=$WORK/pf/mail
  mkdir -p "$pf_etc" "$q" "$WORK/pf/data" "$mail"
  chown nobody:nogroup "$mail"
  chown postfix "$WORK/pf/data"
  echo "$RCPT bench.test/user/" >"$pf_etc/vmailbox"
  cat >"$pf_etc/main.cf" <<CF
# Private benchmark instance; nothing here touches the system Postfix.
compatibility_level = 3.6
queue_directory = $q
data_directory = $WORK/pf/data
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-bench
maillog_file = $WORK/pf/maillog
maillog_file_prefixes = $WORK/pf
myhostname = pf.bench.test
mydomain = pf.bench.test
myorigin = \$myhostname
mydestination = localhost
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost =
alias_maps =
alias_database =
biff = no
append_dot_mydomain = no
# No DNS at all (Postfix 3.x spelling of disable_dns_lookups).
smtp_dns_support_level = disabled
smtp_host_lookup = native
lmtp_host_lookup = native
smtpd_peername_lookup = no
smtpd_tls_security_level = none
smtp_tls_security_level = none
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
# Virtual delivery to Maildir (trailing slash in the map).
virtual_mailbox_domains = bench.test
virtual_mailbox_base = $mail
virtual_mailbox_maps = texthash:$pf_etc/vmailbox
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
# Nothing throttles a local benchmark.
default_process_limit = 100
in_flow_delay = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_connection_count_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
smtpd_client_new_tls_session_rate_limit = 0
CF
  cat >"$pf_etc/master.cf" <<CF
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:$port inet n  -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
CF
  cp "$pf_etc/main.cf" "$pf_etc/master.cf" "$OUT/"
  if ! postfix -c "$pf_etc" check >"$OUT/postfix-check.log" 2>&1; then
    pf_note="postfix check failed: $(tail -3 "$OUT/postfix-check.log" "$WORK/pf/maillog" 2>/dev/null | tr '\n' ' ')"
    return 1
  fi
  if [ -s "$OUT/postfix-check.log" ]; then
    log "postfix check printed:"; sed 's/^/  /' "$OUT/postfix-check.log"
  fi
  log "postfix: starting private instance on 127.0.0.1:$port"
  pf_started=1
  if ! postfix -c "$pf_etc" start >"$OUT/postfix-start.log" 2>&1 || ! wait_port "$port" 30; then
    pf_note="private postfix did not start: $(tail -3 "$OUT/postfix-start.log" "$WORK/pf/maillog" 2>/dev/null | tr '\n' ' ')"
    return 1
  fi
  mp=$(pf_master_pid)

  if [ "$PF_IDLE_CONNS" -gt 0 ] && [ -n "$mp" ]; then
    log "postfix: $PF_IDLE_CONNS idle connections (PSS of master + children)"
    if python3 "$ROOT/bench/idle_conns.py" --port "$port" --count "$PF_IDLE_CONNS" \
      --pss-tree "$mp" --settle 2 >"$OUT/postfix-idle.txt" 2>&1; then
      pf_idle=$(sed -n 's/^bytes_per_conn=//p' "$OUT/postfix-idle.txt")
    else
      log "postfix idle test incomplete:"; sed 's/^/  /' "$OUT/postfix-idle.txt"
    fi
    sleep 1
  fi

  maildir=$mail/bench.test/user/new
  log "postfix: $MESSAGES messages"
  run_source "$port" postfix-smtp-source
  if [ "$src_rc" != 0 ]; then
    pf_note="smtp-source exited $src_rc: $(tail -3 "$OUT/postfix-smtp-source.log" | tr '\n' ' ')"
  fi
  pf_accept_s=$(secs "$src_start" "$src_end")
  count=$(count_until "$maildir" "$MESSAGES" "$TIMEOUT")
  pf_deliver_s=$(secs "$src_start" "$(now)")
  pf_delivered=$count
  pf_accept=$(rate "$MESSAGES" "$pf_accept_s")
  if [ "$count" -ge "$MESSAGES" ]; then
    pf_deliver=$(rate "$MESSAGES" "$pf_deliver_s")
  else
    pf_note="${pf_note:+$pf_note; }only $count of $MESSAGES in Maildir after ${TIMEOUT}s"
  fi
  log "postfix: accepted in ${pf_accept_s}s ($pf_accept msg/s), $count in Maildir after ${pf_deliver_s}s ($pf_deliver msg/s)"
  postqueue -c "$pf_etc" -p >"$OUT/postfix-queue.txt" 2>&1 || true
  stop_postfix
  [ "$src_rc" = 0 ] && [ "$count" -ge "$MESSAGES" ] && pf_ok=1
  return 0
}

# ---------------------------------------------------------------- ours
ours_rate=n/a ours_s=n/a ours_stored=n/a ours_idle=n/a ours_note=
ours_ok=
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
  local p2 p3 p4
  if [ -n "$MAILSERVER" ]; then
    log "ours: using prebuilt $MAILSERVER"
    cp "$MAILSERVER" "$MS"
  else
    log "ours: go build ./examples/mailserver"
    if ! go build -o "$MS" ./examples/mailserver >"$OUT/ours-build.log" 2>&1; then
      ours_note="build failed: $(head -3 "$OUT/ours-build.log" | tr '\n' ' ')"
      return 1
    fi
  fi
  ours_port=$(free_port) p2=$(free_port) p3=$(free_port) p4=$(free_port)
  mkdir -p "$WORK/ours"
  if ! backend_setup >"$OUT/ours-backend.log" 2>&1; then
    ours_note="store backend: $(tail -3 "$OUT/ours-backend.log" | tr '\n' ' ')"
    return 1
  fi
  log "ours: store $backend_desc"
  cat >"$CFG" <<CFG
hostname = "mx.bench.test"
data_dir = "$WORK/ours/data"
[smtp]
listen = "127.0.0.1:$ours_port"
[submission]
listen = "127.0.0.1:$p2"
[submissions]
listen = "127.0.0.1:$p3"
[http]
listen = "127.0.0.1:$p4"
pprof = $([ "$PPROF" -gt 0 ] && echo true || echo false)
# IMAP plays no part here; off, so nothing listens beyond loopback.
[imap]
listen = ""
[imaps]
listen = ""
[dav]
listen = ""
[limits]
max_conns_per_ip = 200
# Like for like with Postfix, which verifies nothing by default:
# AUTH_CHECKS=true turns DKIM/SPF/DMARC on (DNS on a dead loopback port,
# so lookups fail fast and nothing leaves the machine).
[auth_checks]
enabled = ${AUTH_CHECKS:-false}
[dns]
server = "127.0.0.1:1"
timeout = "1s"
$STORE_TOML
CFG
  cp "$CFG" "$OUT/ours-mailserver.toml"
  if ! { ms init && ms domain add bench.test && ms user add "$RCPT" -password bench-password; } >"$OUT/ours-setup.log" 2>&1; then
    ours_note="setup failed: $(tail -3 "$OUT/ours-setup.log" | tr '\n' ' ')"
    return 1
  fi

  # Idle connections on a fresh process, so freed heap from the load run
  # cannot hide their cost.
  if [ "$IDLE_CONNS" -gt 0 ]; then
    log "ours: starting on 127.0.0.1:$ours_port for the idle-connection test"
    start_ours ours-server.log || return 1
    log "ours: $IDLE_CONNS idle connections (VmRSS of pid $ms_pid)"
    if python3 "$ROOT/bench/idle_conns.py" --port "$ours_port" --count "$IDLE_CONNS" \
      --pid "$ms_pid" >"$OUT/ours-idle.txt" 2>&1; then
      ours_idle=$(sed -n 's/^bytes_per_conn=//p' "$OUT/ours-idle.txt")
    else
      log "ours: idle test incomplete:"; sed 's/^/  /' "$OUT/ours-idle.txt"
      ours_note="idle test: $(grep -E '^idle_(greeted|refused|still_open|first_refusal)=' "$OUT/ours-idle.txt" | tr '\n' ' ')"
      # Bytes per connection over the ones that were greeted, if any.
      ours_idle=$(sed -n 's/^bytes_per_conn=//p' "$OUT/ours-idle.txt")
      [[ $ours_idle =~ ^[0-9]+$ ]] && ours_idle="$ours_idle (partial)" || ours_idle=n/a
    fi
    kill -0 "$ms_pid" 2>/dev/null || { ours_note="server died during the idle test"; ms_pid=; return 1; }
    echo "--- restart for the load run" >>"$OUT/ours-server.log"
    stop_pid "$ms_pid" 30; ms_pid=
  fi

  log "ours: starting on 127.0.0.1:$ours_port for the load run"
  start_ours ours-server.log || return 1
  log "ours: $MESSAGES messages"
  local cpu0 prof_pid=
  cpu0=$(cpu_ms "$ms_pid")
  if [ "$PPROF" -gt 0 ]; then
    curl -s -o "$OUT/ours-cpu.pprof" "http://127.0.0.1:$p4/debug/pprof/profile?seconds=$PPROF" &
    prof_pid=$!
  fi
  run_source "$ours_port" ours-smtp-source
  ours_cpu=$(($(cpu_ms "$ms_pid") - cpu0))
  if [ -n "$pg_db" ]; then
    # shellcheck disable=SC2046 # a list of PIDs
    pg_cpu=$(cpu_ms $(psql -X -At "$PG_ADMIN_URL" -c "SELECT pid FROM pg_stat_activity WHERE datname = '$pg_db'"))
  fi
  [ -n "$prof_pid" ] && wait "$prof_pid"
  ours_s=$(secs "$src_start" "$src_end")
  ours_rate=$(rate "$MESSAGES" "$ours_s")
  if [ "$src_rc" != 0 ]; then
    ours_note="${ours_note:+$ours_note; }smtp-source exited $src_rc: $(tail -3 "$OUT/ours-smtp-source.log" | tr '\n' ' ')"
  fi
  kill -0 "$ms_pid" 2>/dev/null || ours_note="${ours_note:+$ours_note; }server died under load"
  stop_pid "$ms_pid" 60; ms_pid=
  if ms mail list "$RCPT" INBOX >"$OUT/ours-mail-list.txt" 2>"$OUT/ours-mail-list.err"; then
    ours_stored=$(tail -n +2 "$OUT/ours-mail-list.txt" | wc -l)
  else
    ours_note="${ours_note:+$ours_note; }mail list failed: $(head -2 "$OUT/ours-mail-list.err" | tr '\n' ' ')"
  fi
  log "ours: $MESSAGES in ${ours_s}s ($ours_rate msg/s), stored: $ours_stored"
  if [ "$ours_stored" != "$MESSAGES" ]; then
    ours_note="${ours_note:+$ours_note; }stored $ours_stored of $MESSAGES"
  fi
  [ "$src_rc" = 0 ] && [ "$ours_stored" = "$MESSAGES" ] && ours_ok=1
  return 0
}

# settle: let the disk finish trimming what was deleted before (a
# previous run's spools and Maildirs, or the side before) so that each
# side is measured on a quiet disk.
settle() {
  [ "$SETTLE" -gt 0 ] || return 0
  log "settling: sync, then ${SETTLE}s (SETTLE=0 skips)"
  sync
  sleep "$SETTLE"
}
if [ "$ONLY" != ours ]; then settle; run_postfix || log "postfix: $pf_note"; fi
if [ "$ONLY" != postfix ]; then settle; run_ours || log "ours: $ours_note"; fi

# ---------------------------------------------------------------- report
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.2f", a / b; else print "n/a" }'; }
kib() { [[ $1 =~ ^[0-9]+ ]] && awk -v b="${1%% *}" -v rest="${1#"${1%% *}"}" 'BEGIN { printf "%.1f KiB%s", b / 1024, rest }' || echo "$1"; }
r_deliv=$(ratio "$ours_rate" "$pf_deliver")
r_accept=$(ratio "$ours_rate" "$pf_accept")
[ "$ONLY" = postfix ] && ours_rate="not measured" && ours_idle="not measured" && r_deliv=n/a
[ -z "$ours_ok" ] && [ "$ONLY" != postfix ] && [ "$ours_rate" = n/a ] && ours_rate="not measured"

# Our server's complaints under load, for the report.
ours_log_issues=0
if [ -f "$OUT/ours-server.log" ]; then
  ours_log_issues=$(grep -ciE 'level=(warn|error)|"level":"(warn|error)"|panic|fatal' "$OUT/ours-server.log" || true)
fi
pf_log_issues=0
if [ -f "$WORK/pf/maillog" ]; then
  pf_log_issues=$(grep -ciE 'warning:|error:|fatal:|panic:' "$WORK/pf/maillog" || true)
fi

{
  echo "== smtp-inbound  $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine:   $machine, $cpu; work dir on $fs, 4 KiB write+fsync ${fsync_ms} ms"
  echo "commit:    $commit"
  echo "store:     ours on $backend_desc"
  echo "postfix:   $pf_version"
  echo "load:      $load (new connection per message${SOURCE_OPTS:+ unless -d})"
  echo
  printf '%-42s %s\n' "ours (250 = stored)" "$ours_rate msg/s  (${ours_s}s, stored $ours_stored)"
  printf '%-42s %s\n' "postfix accepted (250 = queue fsynced)" "$pf_accept msg/s  (${pf_accept_s}s)"
  printf '%-42s %s\n' "postfix delivered to Maildir" "$pf_deliver msg/s  (${pf_deliver_s}s, $pf_delivered in new/)"
  printf '%-42s %s\n' "ours, CPU per message (user+sys)" "$(per_msg "$ours_cpu") ms server, $(per_msg "$pg_cpu") ms PostgreSQL backends"
  printf '%-42s %s\n' "ratio ours / postfix delivered" "$r_deliv"
  printf '%-42s %s\n' "ratio ours / postfix accepted" "$r_accept"
  printf '%-42s %s\n' "ours, memory per idle connection" "$(kib "$ours_idle") over $IDLE_CONNS conns (target < 64 KiB)"
  printf '%-42s %s\n' "postfix smtpd, PSS per idle connection" "$(kib "$pf_idle") over $PF_IDLE_CONNS conns (one process each)"
  [ -n "$ours_note" ] && echo "ours NOTE:    $ours_note"
  [ -n "$pf_note" ] && echo "postfix NOTE: $pf_note"
  echo "warnings/errors in logs: ours $ours_log_issues, postfix $pf_log_issues (see $OUT)"
  if [ "${ours_log_issues:-0}" -gt 0 ]; then
    echo "first lines from our server's log:"
    grep -iE 'level=(warn|error)|"level":"(warn|error)"|panic|fatal' "$OUT/ours-server.log" | head -5 | sed 's/^/  /'
  fi
} | tee "$OUT/summary.txt"

backend_col=; [ "$BACKEND" = postgres ] && backend_col=" (postgres)"
row="| $(date -u +%Y-%m-%d) | $commit${backend_col} | $machine | $pf_version | ${MESSAGES}×${SIZE} B, ${SESSIONS} sessions | $ours_rate | $pf_accept | $pf_deliver | $r_deliv | $(kib "$ours_idle") | $(kib "$pf_idle") |"
echo "$row" >"$OUT/row.md"
echo
echo "bench/README.md row:"
echo "$row"
echo "(results in $OUT)"

status=0
if [ "$ONLY" != ours ] && [ -z "$pf_ok" ]; then status=1; fi
if [ "$ONLY" != postfix ] && [ -z "$ours_ok" ]; then status=1; fi
exit "$status"
