#!/usr/bin/env bash
# Interop: real IMAP clients against the reference server.
#  Set-up: 40 messages of varied shape (plain, quoted-printable, 8-bit,
#    UTF-8 header, multipart/alternative, attachments, message/rfc822,
#    nested multipart, dot lines, empty body, no final CRLF, a 1 MB one;
#    .ci/imap_session.py corpus) are APPENDed with flags and dates, so
#    their bytes are known exactly.
#  1. mbsync (isync) pulls the account into a Maildir: every message equals
#     its original byte for byte and carries its flags. A second run is a
#     no-op. A flag set locally and a message added locally are pushed back
#     and seen over IMAP.
#  2. A message sent with swaks to the MX is read with imaplib.
#  Also: no LOGIN before STARTTLS on [imap]; LOGIN over implicit TLS.
#  3. A scripted imaplib session: APPEND, SEARCH (several keys), FETCH
#     BODY[]<0.100> and other partials, STORE, COPY, MOVE, EXPUNGE; every
#     response is checked (.ci/imap_session.py session).
# IMAP_SERVER=dovecot runs 1 and 3 against a private Dovecot instead, to
# check the script itself against a well-known server.
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh
start=$(date +%s)
server=${IMAP_SERVER:-ours}
work=$(mktemp -d)
chmod 755 "$work"
pid=
dovecot_pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  if [ -n "$dovecot_pid" ]; then dovecot_stop "$work/dovecot"; fi
  wait 2>/dev/null
  if [ -n "${KEEP_WORK:-}" ]; then echo "work dir kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  if [ -f "$work/server.log" ]; then echo "--- server log"; tail -50 "$work/server.log"; fi
  if [ -f "$work/dovecot/dovecot.log" ]; then echo "--- dovecot log"; grep -v ' Info: ' "$work/dovecot/dovecot.log" | tail -30; fi
  exit 1
}
for c in mbsync python3 openssl; do command -v "$c" >/dev/null || fail "$c missing (bash .ci/peers.sh installs it)"; done

alice=alice@example.test alice_pw='correct horse'
bob=bob@example.test bob_pw='battery staple'
imap=$(free_port)

if [ "$server" = dovecot ]; then
  . .ci/dovecot.sh
  printf '%s %s\n' "$alice" "${alice_pw// /_}" "$bob" "${bob_pw// /_}" >"$work/accounts"
  alice_pw=${alice_pw// /_} bob_pw=${bob_pw// /_}
  dovecot_start "$work/dovecot" "$imap" "$work/accounts" || fail "dovecot did not start"
else
  build_mailserver "$work"
  ms() { "$work/mailserver" -config "$work/cfg.toml" "$@"; }
  smtp=$(free_port); sub=$(free_port); subs=$(free_port); http=$(free_port); imaps=$(free_port)
  # [imap] keeps its default: no LOGIN before STARTTLS.
  write_config "$work/cfg.toml" "$work/data" "$smtp" "$sub" "$subs" "$http" "$imap" "$imaps"
  cat >>"$work/cfg.toml" <<CFG
[auth_checks]
enabled = false
CFG
  ms init
  ms domain add example.test
  ms user add "$alice" -password "$alice_pw"
  ms user add "$bob" -password "$bob_pw"
  "$work/mailserver" -config "$work/cfg.toml" serve >"$work/server.log" 2>&1 &
  pid=$!
  wait_port 127.0.0.1 "$imap" || fail "no IMAP listener"
  wait_port 127.0.0.1 "$smtp" || fail "no SMTP listener"
  wait_port 127.0.0.1 "$imaps" || fail "no IMAPS listener"
  echo "-- no LOGIN before STARTTLS; implicit TLS (imaps) logs in"
  python3 - "$imap" "$imaps" "$alice" "$alice_pw" <<'PY' || fail "TLS checks"
import imaplib, ssl, sys
port, tls_port, user, pw = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
m = imaplib.IMAP4("127.0.0.1", port, timeout=30)
assert "STARTTLS" in m.capabilities and "LOGINDISABLED" in m.capabilities, m.capabilities
try:
    m.login(user, pw)
    raise SystemExit("LOGIN accepted without TLS")
except imaplib.IMAP4.error as e:
    assert "PRIVACYREQUIRED" in str(e) or "LOGINDISABLED" in str(e) or "TLS" in str(e).upper(), e
m.logout()
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
m = imaplib.IMAP4_SSL("127.0.0.1", tls_port, ssl_context=ctx, timeout=30)
typ, _ = m.login(user, pw)
assert typ == "OK", typ
typ, data = m.select("INBOX")
assert typ == "OK", (typ, data)
m.logout()
print("plain LOGIN refused before STARTTLS; imaps LOGIN + SELECT ok")
PY
fi
session() { python3 .ci/imap_session.py "$@"; }

echo "-- corpus, APPENDed to $alice and $bob on $server"
session corpus "$work/corpus"
session populate 127.0.0.1 "$imap" "$alice" "$alice_pw" "$work/corpus" || fail "populate $alice"
session populate 127.0.0.1 "$imap" "$bob" "$bob_pw" "$work/corpus" || fail "populate $bob"

mbsync_setup "$imap" "$alice" "$alice_pw"

echo "-- mbsync pulls the account ($(echo "$tls" | head -1))"
mbsync_run mbsync1
python3 - "$work/corpus" "$work/maildir/INBOX" <<'PY' || fail "mbsync copy differs"
import json, os, re, sys
corpus, box = sys.argv[1], sys.argv[2]
manifest = json.load(open(os.path.join(corpus, "manifest.json")))
files = [os.path.join(box, d, f) for d in ("cur", "new") for f in os.listdir(os.path.join(box, d))]
assert len(files) == len(manifest), ("messages in the Maildir", len(files), len(manifest))
by_id = {}
for p in files:
    raw = open(p, "rb").read()
    mid = re.search(rb"^Message-ID: (<[^>]+>)", raw, re.M | re.I).group(1).decode()
    assert mid not in by_id, ("duplicate", mid)
    by_id[mid] = (p, raw)
letter = {"\\Seen": "S", "\\Flagged": "F", "\\Answered": "R", "\\Draft": "D"}
for m in manifest:
    want = open(os.path.join(corpus, m["name"] + ".eml"), "rb").read()
    p, raw = by_id[m["message_id"]]
    # mbsync stores Maildir files with LF line ends and adds an X-TUID
    # header (its own bookkeeping) at the end of the header block; undo
    # both, then the rest must be the original exactly.
    head, sep, body = raw.partition(b"\n\n")
    head = re.sub(rb"(^|\n)X-TUID: [^\n]*(?=\n|$)", b"", head, count=1)
    if not sep and head.endswith(b"\n"):
        head = head[:-1]
    raw = head + sep + body
    assert raw == want.replace(b"\r\n", b"\n"), ("bytes differ", m["name"], m["note"], len(raw), len(want), raw[:300])
    info = p.rsplit(":2,", 1)[1] if ":2," in p else ""
    want_flags = "".join(sorted(letter[f] for f in m["flags"]))
    assert "".join(sorted(info)) == want_flags, ("flags", m["name"], info, want_flags)
print(f"mbsync: {len(manifest)} messages byte-for-byte equal (CRLF as LF, X-TUID left out), flags as APPENDed")
PY

echo "-- a second mbsync run is a no-op"
snapshot() { # file names (with flags) and mbsync's sync state
  (cd "$work/maildir/INBOX" && find . -type f | sort && cat .mbsyncstate)
}
snapshot >"$work/tree1"
mbsync_run mbsync2
snapshot >"$work/tree2"
if ! diff "$work/tree1" "$work/tree2" >"$work/tree.diff"; then
  head -20 "$work/tree.diff"; fail "second mbsync changed the Maildir or its sync state"
fi
echo "no-op: ok"

echo "-- a local flag and a local message are pushed back"
target=$(grep -l '^Message-ID: <corpus-02@interop.test>' "$work/maildir/INBOX"/cur/* "$work/maildir/INBOX"/new/* 2>/dev/null | head -1)
[ -n "$target" ] || fail "corpus-02 not in the Maildir"
case "$target" in
  *:2,*) flags=${target##*:2,}; base=${target%:2,*} ;;
  *) flags= base=$target ;;
esac
newflags=$(echo "${flags}F" | grep -o . | sort -u | tr -d '\n')
mv "$target" "$(dirname "$(dirname "$target")")/cur/$(basename "$base"):2,$newflags"
# Maildir files have LF line ends; mbsync sends CRLF.
printf 'From: Alice <alice@example.test>\nTo: Bob <bob@example.test>\nSubject: written offline\nMessage-ID: <local-1@interop.test>\nDate: Sun, 22 Nov 2026 10:00:00 +0000\n\ncomposed in the Maildir\n' \
  >"$work/maildir/INBOX/new/$(date +%s).local1.interop"
printf 'From: Alice <alice@example.test>\r\nTo: Bob <bob@example.test>\r\nSubject: written offline\r\nMessage-ID: <local-1@interop.test>\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n\r\ncomposed in the Maildir\r\n' \
  >"$work/local1.eml"
mbsync_run mbsync3
session check-far 127.0.0.1 "$imap" "$alice" "$alice_pw" '<corpus-02@interop.test>' '\Flagged' || fail "pushed flag not seen"
session check-far 127.0.0.1 "$imap" "$alice" "$alice_pw" '<local-1@interop.test>' - "$work/local1.eml" ||
  fail "pushed message not seen byte-exact"

if [ "$server" = ours ]; then
  echo "-- swaks to the MX, read with imaplib"
  printf 'From: Someone <someone@remote.test>\r\nTo: Alice <alice@example.test>\r\nSubject: via smtp\r\nMessage-ID: <swaks-1@interop.test>\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n\r\nsent with swaks\r\nПривет' >"$work/smtp1.eml"
  swaks --server 127.0.0.1 --port "$smtp" --from someone@remote.test --to "$alice" --data "$work/smtp1.eml" >"$work/swaks.log" 2>&1 ||
    { cat "$work/swaks.log"; fail "swaks to the MX"; }
  session check-delivered 127.0.0.1 "$imap" "$alice" "$alice_pw" "$work/smtp1.eml" || fail "delivered message over IMAP"
fi

echo "-- scripted imaplib session as $bob"
session session 127.0.0.1 "$imap" "$bob" "$bob_pw" "$work/corpus" || fail "imaplib session"

if [ -n "$pid" ]; then
  kill -TERM "$pid"; wait "$pid" || true; pid=
  grep -q 'shutdown complete' "$work/server.log" || fail "no graceful shutdown"
  n=$(grep -ciE 'level=(error)|panic' "$work/server.log" || true)
  [ "$n" = 0 ] || { grep -iE 'level=(error)|panic' "$work/server.log" | head; fail "$n errors in the server log"; }
fi
echo "interop-imap ($server): ok in $(($(date +%s) - start))s"
