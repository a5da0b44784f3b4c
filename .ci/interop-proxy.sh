#!/usr/bin/env bash
# Interop: HAProxy (Debian haproxy) in front of the reference server with
# the PROXY protocol.
#  1. HAProxy's health checks pass: "option smtpchk" (EHLO, QUIT) over
#     send-proxy-v2 on the MX, "option httpchk GET /healthz" on the
#     metrics listener for IMAP.
#  2. swaks, bound to 127.0.0.5, submits through HAProxy (submission with
#     send-proxy, v1) and delivers to the MX through it (send-proxy-v2):
#     the stored Received fields and the server log name 127.0.0.5, not
#     HAProxy's 127.0.0.1.
#  3. imaplib, bound to 127.0.0.5, logs in through HAProxy (send-proxy-v2,
#     STARTTLS); the log names 127.0.0.5.
#  4. A PROXY header sent directly from an untrusted address (127.0.0.6)
#     is refused (v1 on SMTP, v2 on IMAP); a direct client there without
#     a header is served with its own address (refuse_direct = false); a
#     trusted address (127.0.0.1) without a header is refused.
# Ports PROXY_PORT_BASE..+15 on 127.0.0.1 (default 21100).
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || bash .ci/peers.sh >/dev/null
haproxy=$(command -v haproxy || echo /usr/sbin/haproxy)
work=$(mktemp -d)
pid= hapid=
cleanup() {
  [ -n "$hapid" ] && kill "$hapid" 2>/dev/null
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  echo "--- server log"; tail -40 "$work/server.log"
  [ -f "$work/haproxy.log" ] && { echo "--- haproxy log"; tail -20 "$work/haproxy.log"; }
  exit 1
}

# The server's listeners, then HAProxy's frontends.
pb=${PROXY_PORT_BASE:-21100}
smtp=$((pb + 1)) sub=$((pb + 2)) subs=$((pb + 3)) http=$((pb + 4)) imap=$((pb + 5))
fe_smtp=$((pb + 11)) fe_sub=$((pb + 12)) fe_imap=$((pb + 15))

build_mailserver "$work"
ms() { "$work/mailserver" -config "$work/cfg.toml" "$@"; }
write_config "$work/cfg.toml" "$work/data" "$smtp" "$sub" "$subs" "$http" "$imap"
for s in smtp submission imap; do
  sed -i "/^\[$s\]\$/a proxy_protocol = true" "$work/cfg.toml"
done
cat >>"$work/cfg.toml" <<CFG
[proxy]
trusted = ["127.0.0.1/32"]
header_timeout = "2s"
[log]
level = "debug"
CFG
start_example_server
wait_port 127.0.0.1 "$smtp"; wait_port 127.0.0.1 "$imap"; wait_port 127.0.0.1 "$http"

cat >"$work/haproxy.cfg" <<CFG
global
  stats socket $work/haproxy.sock mode 600 level admin
defaults
  mode tcp
  log stdout format short daemon
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  timeout check 3s
frontend smtp_in
  bind 127.0.0.1:$fe_smtp
  default_backend smtp_nodes
backend smtp_nodes
  option smtpchk EHLO haproxy.example.test
  server node1 127.0.0.1:$smtp check inter 1s fall 2 rise 1 send-proxy-v2
frontend submission_in
  bind 127.0.0.1:$fe_sub
  default_backend submission_nodes
backend submission_nodes
  server node1 127.0.0.1:$sub send-proxy
frontend imap_in
  bind 127.0.0.1:$fe_imap
  default_backend imap_nodes
backend imap_nodes
  option httpchk GET /healthz
  http-check expect string ok
  server node1 127.0.0.1:$imap check port $http inter 1s fall 2 rise 1 send-proxy-v2
CFG
"$haproxy" -c -q -f "$work/haproxy.cfg" || fail "haproxy rejects its config"
"$haproxy" -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
hapid=$!
wait_port 127.0.0.1 "$fe_smtp"; wait_port 127.0.0.1 "$fe_imap"

echo "-- HAProxy health checks: smtpchk over send-proxy-v2, httpchk GET /healthz"
python3 - "$work/haproxy.sock" <<'PY' || fail "health checks did not pass"
import csv, socket, sys, time
def stat():
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
    s.sendall(b"show stat\n"); out = b""
    while chunk := s.recv(65536): out += chunk
    rows = csv.DictReader(out.decode().lstrip("# ").splitlines())
    return {(r["pxname"], r["svname"]): r for r in rows}
deadline = time.time() + 15
while True:
    st = stat()
    smtp, imap = st[("smtp_nodes", "node1")], st[("imap_nodes", "node1")]
    if smtp["status"] == "UP" and imap["status"] == "UP" and smtp["check_status"] == "L7OK" and imap["check_status"] == "L7OK":
        break
    if time.time() > deadline:
        sys.exit("smtp %s %s %s; imap %s %s %s" % (smtp["status"], smtp["check_status"], smtp["last_chk"], imap["status"], imap["check_status"], imap["last_chk"]))
    time.sleep(0.2)
print("smtp_nodes/node1 %s (%s, %s); imap_nodes/node1 %s (%s, %s)" % (smtp["status"], smtp["check_status"], smtp["last_chk"], imap["status"], imap["check_status"], imap["last_chk"]))
PY
curl -sf "http://127.0.0.1:$http/healthz" | grep -qx ok || fail "/healthz"

echo "-- swaks from 127.0.0.5 through HAProxy: submission (PROXY v1), MX (PROXY v2)"
swaks --server 127.0.0.1 --port "$fe_sub" --local-interface 127.0.0.5 --tls --auth PLAIN \
  --auth-user alice@example.test --auth-password 'correct horse' \
  --from alice@example.test --to bob@example.test --header 'Subject: via haproxy v1' >"$work/swaks1.log" 2>&1 \
  || { cat "$work/swaks1.log"; fail "swaks submission through HAProxy"; }
swaks --server 127.0.0.1 --port "$fe_smtp" --local-interface 127.0.0.5 \
  --from someone@remote.test --to bob@example.test --header 'Subject: via haproxy v2' >"$work/swaks2.log" 2>&1 \
  || { cat "$work/swaks2.log"; fail "swaks MX through HAProxy"; }
for uid in 1 2; do
  ms mail cat bob@example.test INBOX "$uid" >"$work/msg$uid.eml"
  check_received "$work/msg$uid.eml"
done
for l in submission smtp; do
  grep "message accepted" "$work/server.log" | grep "listener=$l " | grep -q "remote=127.0.0.5 " \
    || fail "$l log does not show remote=127.0.0.5"
done
grep "message accepted" "$work/server.log" | sed 's/^/  log: /'

echo "-- imaplib from 127.0.0.5 through HAProxy (PROXY v2, STARTTLS)"
python3 - 127.0.0.1 "$fe_imap" <<'PY' || fail "IMAP login through HAProxy"
import imaplib, socket, ssl, sys
class IMAP(imaplib.IMAP4):
    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=("127.0.0.5", 0))
m = IMAP(sys.argv[1], int(sys.argv[2]), timeout=10)
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
m.starttls(ctx)
m.login("bob@example.test", "battery staple")
typ, data = m.select("INBOX")
assert typ == "OK" and int(data[0]) == 2, (typ, data)
m.logout()
print("imap: logged in through HAProxy, INBOX has", int(data[0]), "messages")
PY
grep '"authenticated"\|msg=authenticated' "$work/server.log" | grep 'listener=imap' | grep -q 'client=127.0.0.5' \
  || fail "IMAP log does not show client=127.0.0.5"

echo "-- PROXY headers sent directly from an untrusted address are refused"
python3 - "$smtp" "$imap" <<'PY' || fail "untrusted PROXY header"
import socket, sys
sys.path.insert(0, ".ci")
from proxy_probe import talk
smtp, imap = int(sys.argv[1]), int(sys.argv[2])
# SMTP: the greeting comes first (server speaks first); the header that
# follows ends the connection without an answer.
g, out = talk(smtp, b"PROXY TCP4 203.0.113.9 127.0.0.1 4000 25\r\nEHLO spoof\r\nQUIT\r\n")
assert g.startswith(b"220 "), g
assert b"250" not in out and b"<timeout>" not in out, out
print("smtp: v1 header from 127.0.0.6 refused (connection closed after the greeting)")
sig = b"\r\n\r\n\x00\r\nQUIT\n"
hdr = sig + bytes([0x21, 0x11, 0, 12]) + socket.inet_aton("203.0.113.9") + socket.inet_aton("127.0.0.1") + (4000).to_bytes(2, "big") + (143).to_bytes(2, "big")
g, out = talk(imap, hdr + b"a1 CAPABILITY\r\n")
assert g.startswith(b"* OK"), g
assert b"a1 OK" not in out and b"<timeout>" not in out, out
print("imap: v2 header from 127.0.0.6 refused")
# Without a header, 127.0.0.6 is a direct client (refuse_direct = false).
g, out = talk(smtp, b"EHLO direct.example\r\nQUIT\r\n")
assert g.startswith(b"220 ") and b"250" in out and b"221" in out, out
print("smtp: direct client 127.0.0.6 without a header served")
# The trusted balancer's address without a header: refused, no greeting.
s = socket.create_connection(("127.0.0.1", smtp), 5); s.settimeout(10)
s.sendall(b"EHLO not-a-header\r\n")
data = s.recv(4096)
assert data == b"", data
print("smtp: trusted 127.0.0.1 without a header refused")
PY
grep 'PROXY header from an untrusted source' "$work/server.log" | grep -q 'remote=127.0.0.6 ' \
  || fail "no log line for the untrusted header"
grep -q 'a trusted source sent no PROXY header' "$work/server.log" || fail "no log line for the trusted source without a header"
grep 'proxy protocol: connection refused' "$work/server.log" | sed 's/^/  log: /'

kill -TERM "$hapid"; wait "$hapid" 2>/dev/null || true; hapid=
kill -TERM "$pid"; wait "$pid" || true; pid=
grep -q 'shutdown complete' "$work/server.log" || fail "no graceful shutdown"
echo "interop-proxy: ok"
