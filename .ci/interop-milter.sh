#!/usr/bin/env bash
# Interop: our milter client (smtp.Options.Milters) against a real milter
# built on Sendmail's libmilter: OpenDKIM in signing mode, on loopback.
#  1. A message to the MX from an internal host (127.0.0.1, OpenDKIM's
#     InternalHosts) passes through OpenDKIM, which inserts a
#     DKIM-Signature (SMFIR_INSHEADER, negotiated protocol version 6); the
#     stored message carries it and it verifies against the key OpenDKIM
#     generated (our verifier, fed the opendkim-genkey TXT record).
#  2. The milter's answers are counted in /metrics by milter and action.
#  3. With OpenDKIM stopped, the milter's default action (tempfail)
#     refuses the message with 451 4.7.1 and nothing is stored.
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh
export PATH=$PATH:/usr/sbin:/sbin
work=$(mktemp -d)
pid=
mpid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  [ -n "$mpid" ] && kill "$mpid" 2>/dev/null
  wait 2>/dev/null
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  echo "--- server log"; tail -50 "$work/server.log" 2>/dev/null
  echo "--- opendkim log"; tail -20 "$work/opendkim.log" 2>/dev/null
  exit 1
}
for c in opendkim opendkim-genkey swaks curl; do
  command -v "$c" >/dev/null || fail "peer $c missing (run .ci/peers.sh)"
done

build_mailserver "$work"
build_bin "$work" ./dkim/internal/dkiminterop
ms() { "$work/mailserver" -config "$work/cfg.toml" "$@"; }
smtp=$(free_port); sub=$(free_port); subs=$(free_port); http=$(free_port); mport=$(free_port)
write_config "$work/cfg.toml" "$work/data" "$smtp" "$sub" "$subs" "$http"
cat >>"$work/cfg.toml" <<CFG
[auth_checks]
enabled = false
[[milter]]
name = "opendkim"
address = "tcp:127.0.0.1:$mport"
listeners = ["smtp", "submission"]
read_timeout = "10s"
on_failure = "tempfail"
CFG

echo "-- OpenDKIM: key and signing configuration for example.test"
opendkim-genkey -D "$work" -d example.test -s mil
chmod 600 "$work/mil.private"
cat >"$work/opendkim.conf" <<CFG
Syslog no
Mode s
Domain example.test
Selector mil
KeyFile $work/mil.private
Socket inet:$mport@127.0.0.1
InternalHosts 127.0.0.1
Canonicalization relaxed/relaxed
PidFile $work/opendkim.pid
RequireSafeKeys false
CFG
opendkim -f -x "$work/opendkim.conf" >"$work/opendkim.log" 2>&1 &
mpid=$!
wait_port 127.0.0.1 "$mport" || fail "opendkim did not start"

start_example_server
wait_port 127.0.0.1 "$smtp"; wait_port 127.0.0.1 "$http"

printf 'From: Alice <alice@example.test>\r\nTo: Bob <bob@example.test>\r\nSubject: milter interop\r\nMessage-ID: <milter-1@example.test>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\nHello Bob,\r\n\r\nsigned by a milter.\r\n' >"$work/msg.eml"

echo "-- 1. through OpenDKIM: the stored message is signed and verifies"
swaks --server 127.0.0.1 --port "$smtp" --from alice@example.test --to bob@example.test \
  --data "$work/msg.eml" >"$work/swaks1.log" 2>&1 || { cat "$work/swaks1.log"; fail "swaks through the milter"; }
ms mail cat bob@example.test INBOX 1 >"$work/stored.eml"
grep -q '^DKIM-Signature: .*d=example.test' "$work/stored.eml" || { cat "$work/stored.eml"; fail "no DKIM-Signature from OpenDKIM"; }
grep -q 's=mil' "$work/stored.eml" || fail "signature lacks selector mil"
"$work/dkiminterop" verify -txt mil._domainkey.example.test="$work/mil.txt" -want pass <"$work/stored.eml" \
  || fail "OpenDKIM's signature does not verify"

echo "-- 2. /metrics counts the milter's answers"
curl -fsS "http://127.0.0.1:$http/metrics" >"$work/metrics.txt"
grep -q 'mailyard_smtp_milter_actions_total{.*milter="opendkim".*} [1-9]' "$work/metrics.txt" \
  || { grep milter "$work/metrics.txt"; fail "no milter action counted"; }

echo "-- 3. OpenDKIM down: default action tempfail, nothing stored"
kill "$mpid"; wait "$mpid" 2>/dev/null || true; mpid=
if swaks --server 127.0.0.1 --port "$smtp" --from alice@example.test --to bob@example.test \
  --data "$work/msg.eml" >"$work/swaks2.log" 2>&1; then
  cat "$work/swaks2.log"; fail "message accepted with the milter down"
fi
grep -q '451 4.7.1' "$work/swaks2.log" || { cat "$work/swaks2.log"; fail "want 451 4.7.1 with the milter down"; }
[ "$(ms mail list bob@example.test | tail -n +2 | grep -c .)" = 1 ] || fail "a message was stored with the milter down"
grep -q 'mailyard_smtp_milter_failures_total{.*action="tempfail".*milter="opendkim".*} 1' \
  <(curl -fsS "http://127.0.0.1:$http/metrics") || fail "milter failure not counted"

echo "interop-milter: ok"
