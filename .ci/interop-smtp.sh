#!/usr/bin/env bash
# Interop: real SMTP clients against the reference server.
#  1. swaks submits with STARTTLS + AUTH PLAIN (and implicit TLS + AUTH
#     LOGIN) to a local user; the stored message equals what was sent,
#     byte for byte, below our Received header.
#  2. Open-relay variants are refused on the MX listener without AUTH.
#  3. SMTP smuggling payloads never yield a second message.
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

build_mailserver "$work"
ms() { "$work/mailserver" -config "$work/cfg.toml" "$@"; }
smtp=$(free_port); sub=$(free_port); subs=$(free_port); http=$(free_port)
write_config "$work/cfg.toml" "$work/data" "$smtp" "$sub" "$subs" "$http"

start_example_server
wait_port 127.0.0.1 "$smtp"; wait_port 127.0.0.1 "$sub"; wait_port 127.0.0.1 "$subs"

fail() { echo "FAIL: $*"; echo "--- server log"; tail -50 "$work/server.log"; exit 1; }

# A message with CRLF line endings, a line starting with a dot, 8-bit text.
# The file has no final CRLF: swaks always sends CRLF . CRLF after the
# data, and that CRLF ends the last line (RFC 5321 §4.1.1.4).
printf 'From: Alice <alice@example.test>\r\nTo: Bob <bob@example.test>\r\nSubject: interop 1\r\nMessage-ID: <interop-1@example.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nHello Bob.\r\n.a line that starts with a dot\r\nПривет' >"$work/msg1.eml"

echo "-- swaks: submission 587-style STARTTLS + AUTH PLAIN"
swaks --server 127.0.0.1 --port "$sub" --tls --auth PLAIN \
  --auth-user alice@example.test --auth-password 'correct horse' \
  --from alice@example.test --to bob@example.test --data "$work/msg1.eml" >"$work/swaks1.log" 2>&1 \
  || { cat "$work/swaks1.log"; fail "swaks submission"; }

echo "-- stored message equals the sent one below the Received header"
ms mail cat bob@example.test INBOX 1 >"$work/stored1.eml"
python3 - "$work/msg1.eml" "$work/stored1.eml" <<'PY'
import sys
sent = open(sys.argv[1], 'rb').read()
stored = open(sys.argv[2], 'rb').read()
# Our trace fields (Return-Path, Received; RFC 5321 §4.4) come first, each
# possibly folded (RFC 5322 §2.2.3); everything after them is what was sent.
i = 0
names = []
while stored[i:].split(b':', 1)[0] in (b'Return-Path', b'Received'):
    names.append(stored[i:].split(b':', 1)[0])
    i = stored.index(b'\r\n', i) + 2
    while stored[i:i+1] in (b' ', b'\t'):
        i = stored.index(b'\r\n', i) + 2
assert b'Received' in names, stored[:200]
sent += b'\r\n'
assert stored[i:] == sent, (stored[i:], sent)
print("byte-for-byte: ok (%d bytes)" % len(sent))
PY

echo "-- swaks: implicit TLS (465-style) + AUTH LOGIN"
swaks --server 127.0.0.1 --port "$subs" --tls-on-connect --auth LOGIN \
  --auth-user bob@example.test --auth-password 'battery staple' \
  --from bob@example.test --to alice@example.test --header 'Subject: interop 2' >"$work/swaks2.log" 2>&1 \
  || { cat "$work/swaks2.log"; fail "swaks submissions"; }
ms mail list alice@example.test INBOX | tail -n +2 | grep -q . || fail "alice has no mail"

echo "-- AUTH is not offered before STARTTLS on submission"
if swaks --server 127.0.0.1 --port "$sub" --auth PLAIN --auth-user alice@example.test \
  --auth-password 'correct horse' --from alice@example.test --to bob@example.test >"$work/swaks3.log" 2>&1; then
  fail "AUTH without TLS was accepted"
fi

echo "-- a sender the user does not own is refused"
if swaks --server 127.0.0.1 --port "$sub" --tls --auth PLAIN --auth-user alice@example.test \
  --auth-password 'correct horse' --from bob@example.test --to bob@example.test >"$work/swaks4.log" 2>&1; then
  fail "alice could send as bob"
fi
grep -q '553' "$work/swaks4.log" || { cat "$work/swaks4.log"; fail "expected 553 for a foreign sender"; }

echo "-- open-relay variants refused on MX without AUTH"
for rcpt in 'victim@remote.test' 'victim%remote.test@example.test' 'remote.test!victim@example.test' \
  '"victim@remote.test"@example.test' '@example.test:victim@remote.test' 'victim@[127.0.0.1]'; do
  for from in 'someone@remote.test' ''; do
    if swaks --server 127.0.0.1 --port "$smtp" --from "$from" --to "$rcpt" --quit-after RCPT >"$work/relay.log" 2>&1; then
      cat "$work/relay.log"; fail "relay accepted: from <$from> to <$rcpt>"
    fi
    grep -Eq '^<~?\*\* +5[0-9][0-9] ' "$work/relay.log" || { cat "$work/relay.log"; fail "no 5xx for <$rcpt>"; }
  done
done
echo "relay variants: refused"

echo "-- SMTP smuggling"
before=$(ms mail list bob@example.test INBOX | wc -l)
payloads=$(python3 .ci/smuggle.py 127.0.0.1 "$smtp" bob@example.test)
after=$(ms mail list bob@example.test INBOX | wc -l)
[ $((after - before)) -le "$payloads" ] || fail "$payloads smuggling payloads stored $((after - before)) messages"
# A smuggled second message would carry the payload's From in its own
# header block; inside the first message's body it is harmless.
for uid in $(ms mail list bob@example.test INBOX | awk 'NR > 1 {print $1}'); do
  ms mail cat bob@example.test INBOX "$uid" | python3 -c '
import sys
raw = sys.stdin.buffer.read()
head = raw.split(b"\r\n\r\n", 1)[0]
sys.exit(1 if b"\nFrom: <smuggled@" in head else 0)' || fail "message $uid is a smuggled second message"
done
echo "smuggling: no second message"

echo "-- submitted mail is DKIM-signed; dkimpy (python3-dkim) verifies the stored copy"
ms dkim keygen example.test -selector s1 -alg rsa >/dev/null
ms dkim keygen example.test -selector e1 -alg ed25519 >/dev/null
ms dns example.test -json >"$work/zone.json"
swaks --server 127.0.0.1 --port "$sub" --tls --auth PLAIN \
  --auth-user alice@example.test --auth-password 'correct horse' \
  --from alice@example.test --to bob@example.test --data "$work/msg1.eml" >"$work/swaks5.log" 2>&1 \
  || { cat "$work/swaks5.log"; fail "swaks signed submission"; }
last=$(ms mail list bob@example.test INBOX | tail -1 | awk '{print $1}')
ms mail cat bob@example.test INBOX "$last" >"$work/signed.eml"
/usr/bin/python3 - "$work/signed.eml" "$work/zone.json" <<'PY'
import json, sys, dkim
raw = open(sys.argv[1], 'rb').read()
# Below our trace fields (Return-Path, Received) is what leaves the server.
lines = raw.split(b'\r\n')
i = 0
while lines[i].split(b':', 1)[0] in (b'Return-Path', b'Received') or lines[i][:1] in (b' ', b'\t'):
    i += 1
msg = b'\r\n'.join(lines[i:])
zone = {r['name'].rstrip('.') + '.': r['value'] for r in json.load(open(sys.argv[2])) if r['type'] == 'TXT'}
dnsfunc = lambda name, timeout=5: zone.get(name.decode().rstrip('.') + '.', '').encode()
d = dkim.DKIM(msg)
sigs = [l for l in msg.split(b'\r\n\r\n', 1)[0].split(b'\r\n') if l.lower().startswith(b'dkim-signature:')]
assert len(sigs) == 2, sigs
for idx in range(len(sigs)):
    assert d.verify(idx=idx, dnsfunc=dnsfunc), ('signature %d does not verify' % idx)
print('dkimpy: %d signatures (rsa-sha256, ed25519-sha256) verify' % len(sigs))
PY

kill -TERM "$pid"; wait "$pid" || true; pid=
grep -q 'shutdown complete' "$work/server.log" || fail "no graceful shutdown"
echo "interop-smtp: ok"
