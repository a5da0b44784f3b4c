#!/usr/bin/env bash
# Memory of the IMAP server while clients fetch large messages (issue 12,
# item 8; bench/README.md, "fetchmem").
#
#   bash bench/fetchmem.sh
#
# Starts examples/mailserver (built from this tree, or MAILSERVER=path) on
# a fresh data dir with one account, APPENDs MESSAGES different messages
# of SIZE bytes each (a multipart whose first part is nearly all of it),
# restarts the server so that the appends' memory is not counted, then
# runs MESSAGES clients at once, each fetching BODY.PEEK[] and then
# BODY.PEEK[1] of its own message (bench/fetchmem). The server's VmRSS is
# sampled every 10 ms; the peak minus the VmRSS before the fetches is the
# figure.
#
# Environment: MESSAGES=20 SIZE=52428800 MAILSERVER=path KEEP_WORK=1
# Writes bench/out/fetchmem-<UTC time>/ and prints a summary line.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
MESSAGES=${MESSAGES:-20}
SIZE=${SIZE:-52428800}
MAILSERVER=${MAILSERVER:-}
KEEP_WORK=${KEEP_WORK:-}

stamp=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$ROOT/bench/out/fetchmem-$stamp
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/mailyard-bench-fetchmem.XXXXXX)
ms_pid=

log() { echo "[$(date +%H:%M:%S)] $*"; }

stop_server() {
  [ -n "$ms_pid" ] || return 0
  kill -TERM "$ms_pid" 2>/dev/null || true
  wait "$ms_pid" 2>/dev/null || true
  ms_pid=
}

cleanup() {
  local rc=$?
  set +e
  stop_server
  if [ -n "$KEEP_WORK" ]; then echo "work dir kept: $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_port() { # wait_port PORT SECONDS PID
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

MS=$WORK/mailserver
CFG=$WORK/mailserver.toml
if [ -n "$MAILSERVER" ]; then
  cp "$MAILSERVER" "$MS"
else
  log "go build ./examples/mailserver"
  go build -o "$MS" ./examples/mailserver
fi
go build -o "$WORK/fetchmem" ./bench/fetchmem

port=$(free_port)
cat >"$CFG" <<CFG
hostname = "imap.bench.test"
data_dir = "$WORK/data"
[smtp]
listen = "127.0.0.1:$(free_port)"
[submission]
listen = "127.0.0.1:$(free_port)"
[submissions]
listen = "127.0.0.1:$(free_port)"
[http]
listen = "127.0.0.1:$(free_port)"
[limits]
max_message_bytes = $((SIZE + (1 << 20)))
max_conns_per_ip = $((MESSAGES + 10))
[dns]
server = "127.0.0.1:1"
timeout = "1s"
# Plain LOGIN on loopback.
[imap]
listen = "127.0.0.1:$port"
allow_insecure_auth = true
[imaps]
listen = "127.0.0.1:$(free_port)"
[dav]
listen = ""
CFG
cp "$CFG" "$OUT/mailserver.toml"
"$MS" -config "$CFG" domain add bench.test >"$OUT/setup.log" 2>&1
"$MS" -config "$CFG" user add user@bench.test -password bench-password >>"$OUT/setup.log" 2>&1

start_server() {
  "$MS" -config "$CFG" serve >>"$OUT/server.log" 2>&1 &
  ms_pid=$!
  wait_port "$port" 60 "$ms_pid" || { echo "server did not start: $(tail -3 "$OUT/server.log")" >&2; exit 1; }
}
ARGS=(-addr "127.0.0.1:$port" -user user@bench.test -password bench-password -messages "$MESSAGES" -size "$SIZE")

log "appending $MESSAGES messages of $SIZE bytes"
start_server
"$WORK/fetchmem" "${ARGS[@]}" -pid "$ms_pid" -seed >"$OUT/seed.txt"
stop_server
echo "--- restart" >>"$OUT/server.log"
start_server
log "$MESSAGES clients fetching BODY[] and BODY[1] at once"
"$WORK/fetchmem" "${ARGS[@]}" -pid "$ms_pid" | tee "$OUT/result.txt"
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null | head -1)" ] && commit="$commit+dirty"
echo "commit=$commit messages=$MESSAGES size=$SIZE server=${MAILSERVER:-tree}" | tee -a "$OUT/result.txt"
