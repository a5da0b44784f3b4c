# Shared helpers for the interop scripts (sourced, not run).

. "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

# free_port prints a free TCP port on 127.0.0.1. Under .ci/interop.sh,
# which runs scripts side by side, INTEROP_PORTS="LO HI STATE" gives this
# script the ports LO..HI-1 to itself (range_port in ports.sh). A port
# the kernel picks for port 0 could be picked again for another script's
# listener, or an outgoing connection, before this script's server binds
# it; a range of its own cannot.
free_port() {
  if [ -n "${INTEROP_PORTS:-}" ]; then
    # shellcheck disable=SC2086 # three words: LO HI STATE
    range_port $INTEROP_PORTS
    return
  fi
  any_port
}

# wait_port HOST PORT [SECONDS] waits until something listens there.
wait_port() {
  local host=$1 port=$2 secs=${3:-30} i
  for ((i = 0; i < secs * 10; i++)); do
    if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on $host:$port after ${secs}s" >&2
  return 1
}

# build_bin DIR PKG... puts the commands PKG... (./examples/mailserver,
# ...) into DIR, named as go build names them. Under .ci/interop.sh they
# are copied from INTEROP_BIN, where it linked every script's commands
# once from this tree; otherwise one go build links them here.
build_bin() {
  local dir=$1 p
  shift
  if [ -n "${INTEROP_BIN:-}" ]; then
    for p in "$@"; do
      cp "$INTEROP_BIN/$(basename "$p")" "$dir/" || return 1
    done
    return
  fi
  go build -o "$dir/" "$@"
}

# build_mailserver DIR builds the reference server into DIR/mailserver.
build_mailserver() {
  build_bin "$1" ./examples/mailserver
}

# write_config FILE DATADIR SMTP SUB SUBS HTTP [IMAP IMAPS [DAV]] writes a
# loopback-only config. Without IMAP/IMAPS/DAV ports those listeners are
# off (their defaults would listen on every address).
write_config() {
  cat >"$1" <<CFG
hostname = "mx.example.test"
data_dir = "$2"
[smtp]
listen = "127.0.0.1:$3"
[submission]
listen = "127.0.0.1:$4"
[submissions]
listen = "127.0.0.1:$5"
[http]
listen = "127.0.0.1:$6"
[imap]
listen = "${7:+127.0.0.1:$7}"
[imaps]
listen = "${8:+127.0.0.1:$8}"
[dav]
listen = "${9:+127.0.0.1:$9}"
[limits]
max_conns_per_ip = 200
# DNS for DKIM/SPF/DMARC stays on loopback: a port where nothing answers
# gives quick temperror results and no traffic leaves the machine.
[dns]
server = "127.0.0.1:1"
timeout = "1s"
CFG
}

# start_example_server sets up the data directory of $work/cfg.toml with
# the domain example.test and its users alice ('correct horse') and bob
# ('battery staple'), then starts serve in the background, logging to
# $work/server.log, with its pid in $pid.
start_example_server() {
  local ms="$work/mailserver"
  "$ms" -config "$work/cfg.toml" init
  "$ms" -config "$work/cfg.toml" domain add example.test
  "$ms" -config "$work/cfg.toml" user add alice@example.test -password 'correct horse'
  "$ms" -config "$work/cfg.toml" user add bob@example.test -password 'battery staple'
  "$ms" -config "$work/cfg.toml" serve >"$work/server.log" 2>&1 &
  pid=$!
}

# fail MESSAGE prints it and the end of $work/server.log, and exits 1.
fail() {
  echo "FAIL: $*"
  if [ -f "$work/server.log" ]; then echo "--- server log"; tail -50 "$work/server.log"; fi
  exit 1
}

# check_received FILE checks that the stored message FILE's Received
# fields name the real client 127.0.0.5 and not the balancer's
# 127.0.0.1 (the PROXY protocol's address is the one recorded).
check_received() {
  local received
  received=$(python3 -c '
import sys
head = open(sys.argv[1], "rb").read().split(b"\r\n\r\n", 1)[0].decode()
print(" ".join(l.strip() for l in head.replace("\r\n\t", " ").splitlines() if l.startswith("Received:")))' "$1")
  echo "$(basename "$1"): $received"
  grep -q '\[127\.0\.0\.5\]' <<<"$received" || fail "$1: Received does not name 127.0.0.5"
  ! grep -q '\[127\.0\.0\.1\]' <<<"$received" || fail "$1: Received names HAProxy's address"
}

# mbsync_setup PORT USER PASSWORD writes $work/mbsyncrc, a channel that
# pulls USER's INBOX from 127.0.0.1:PORT into $work/maildir: STARTTLS
# when the server offers it, trusting exactly the certificate it presents
# (kept in $work/server.pem; self-signed on loopback), plain LOGIN
# otherwise. It sets $tls to the SSLType lines used. mbsync_run LOGNAME
# then syncs, failing with its log.
mbsync_setup() {
  local port=$1 user=$2 pass=$3
  tls="SSLType None"
  if openssl s_client -connect "127.0.0.1:$port" -starttls imap </dev/null 2>/dev/null |
    openssl x509 >"$work/server.pem" 2>/dev/null; then
    tls="SSLType STARTTLS
CertificateFile $work/server.pem"
  fi
  mkdir -p "$work/maildir"
  cat >"$work/mbsyncrc" <<RC
IMAPAccount acct
Host 127.0.0.1
Port $port
User $user
Pass "$pass"
AuthMechs LOGIN
$tls

IMAPStore far
Account acct

MaildirStore near
Path $work/maildir/
Inbox $work/maildir/INBOX
SubFolders Verbatim

Channel ch
Far :far:
Near :near:
Patterns INBOX
Create Near
Sync All
SyncState *
Expunge None
CopyArrivalDate yes
RC
}

mbsync_run() {
  if ! mbsync -c "$work/mbsyncrc" -V ch >"$work/$1.log" 2>&1; then
    cat "$work/$1.log"; fail "mbsync ($1)"
  fi
}

# make_geo_certs DIR SITE...: a private CA (DIR/ca.pem, DIR/ca.key) and
# for each SITE a key and certificate it signs (DIR/SITE/geo.key,
# DIR/SITE/geo.pem) named SITE and 127.0.0.1, for server and client
# authentication: the geo links' mutual TLS (.ci/interop-geo.sh,
# bench/geo.sh).
make_geo_certs() {
  local dir=$1 s
  shift
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=geo-ca -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  for s in "$@"; do
    mkdir -p "$dir/$s"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$s" \
      -keyout "$dir/$s/geo.key" -out "$dir/$s/geo.csr" 2>/dev/null
    printf 'subjectAltName=DNS:%s,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature\n' "$s" >"$dir/$s/ext"
    openssl x509 -req -in "$dir/$s/geo.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
      -days 2 -extfile "$dir/$s/ext" -out "$dir/$s/geo.pem" 2>/dev/null
  done
}

# make_server_cert DIR NAME: a private CA (DIR/ca.pem, named NAME) and a
# certificate it signs for localhost and 127.0.0.1 (DIR/server.pem and
# DIR/server.key), so clients verify the server as they would a real one
# (the server's generated self-signed certificate is a leaf that OpenSSL
# 3 will not take as a trust anchor).
make_server_cert() {
  local dir=$1 name=$2
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$name" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null || fail "making the test CA"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null || fail "making the server key"
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$dir/ext.cnf"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
    -extfile "$dir/ext.cnf" -out "$dir/server.pem" 2>/dev/null || fail "signing the server certificate"
}
