#!/usr/bin/env bash
# Interop: examples/migrate copies a mailbox from a real Dovecot into a
# running reference server, with real binaries end to end:
#
#  1. a private Dovecot (.ci/dovecot.sh) holds a generated mailbox
#     (bench/mailgen: 400 messages in nested folders, with flags);
#  2. `migrate run --csv` is killed with SIGKILL mid-copy and run again:
#     the mailbox then matches the source folder for folder and message for
#     message, byte for byte, with flags and INTERNALDATE, read back over
#     our IMAPS with python's imaplib;
#  3. a third run copies nothing;
#  4. `migrate report --mail-to` sends the report through the server's own
#     submission port (STARTTLS, AUTH PLAIN), and it arrives in the
#     administrator's INBOX with its CSV attachment.
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh
. .ci/dovecot.sh
work=$(mktemp -d /tmp/mailyard-interop-migrate.XXXXXX)
chmod 755 "$work"
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  dovecot_stop "$work/dovecot" 2>/dev/null || true
  wait 2>/dev/null
  if [ -n "${KEEP_WORK:-}" ]; then echo "work dir kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  for f in "$work"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -30 "$f"; }; done
  exit 1
}
command -v python3 >/dev/null || fail "python3 missing"
[ -x /usr/sbin/dovecot ] || fail "dovecot missing (bash .ci/peers.sh installs it)"

src_user=alice@source.test src_pw=source-pw-1
alice=alice@example.test admin=admin@example.test admin_pw='admin pw 2'
dv_port=$(free_port)
echo "$src_user $src_pw" >"$work/accounts"
dovecot_start "$work/dovecot" "$dv_port" "$work/accounts" || fail "dovecot did not start"
go run ./bench/mailgen -dir "$work/dovecot/mail/source.test/alice/Maildir" -messages 400 -seed 7 >"$work/mailgen.log"
chown -R nobody:nogroup "$work/dovecot/mail"

build_mailserver "$work"
build_bin "$work" ./examples/migrate
ms() { "$work/mailserver" -config "$work/cfg.toml" "$@"; }
smtp=$(free_port) sub=$(free_port) subs=$(free_port) http=$(free_port) imap=$(free_port) imaps=$(free_port)
write_config "$work/cfg.toml" "$work/data" "$smtp" "$sub" "$subs" "$http" "$imap" "$imaps"
cat >>"$work/cfg.toml" <<CFG
[migration]
allowlist = ["127.0.0.1"]
report_from = "$admin"
secret_key_file = "$work/migration.key"
CFG
ms init >/dev/null
ms domain add example.test >/dev/null
ms user add "$alice" -password "alice target pw" >/dev/null
ms user add "$admin" -password "$admin_pw" >/dev/null
"$work/mailserver" -config "$work/cfg.toml" serve >"$work/server.log" 2>&1 &
pid=$!
wait_port 127.0.0.1 "$imaps" || fail "no IMAPS listener"
wait_port 127.0.0.1 "$sub" || fail "no submission listener"

printf 'target,login,password,host,port,tls\n%s,%s,%s,127.0.0.1,%s,plain\n' "$alice" "$src_user" "$src_pw" "$dv_port" >"$work/run.csv"
mig() { "$work/migrate" -config "$work/cfg.toml" "$@"; }

echo "-- migrate run, killed with SIGKILL mid-copy, then run again"
# The binary itself in the background (not through mig, whose subshell
# would take the signal instead).
"$work/migrate" -config "$work/cfg.toml" run --csv "$work/run.csv" >"$work/run1.log" 2>&1 &
mpid=$!
# Kill once some mail is in: the target INBOX's blobs appear on disk.
for ((i = 0; i < 200; i++)); do
  n=$(find "$work/data/blobs" -type f 2>/dev/null | wc -l)
  [ "$n" -ge 40 ] && break
  kill -0 "$mpid" 2>/dev/null || break
  sleep 0.05
done
kill -KILL "$mpid" 2>/dev/null || true
wait "$mpid" 2>/dev/null || true
echo "killed after $(find "$work/data/blobs" -type f | wc -l) blobs"
mig run --csv "$work/run.csv" >"$work/run2.log" 2>&1 || fail "second run"
mig status "$alice" >"$work/status.log" 2>&1 || fail "status"
grep -q "ok" "$work/status.log" || fail "collector not ok after the rerun"
[ -s "$work/migration.key" ] || fail "no secret key file created"
# The data directory holds the source password only sealed.
! grep -rqaF "$src_pw" "$work/data" || fail "source password in plain text in the data directory"

echo "-- the target matches the source, read over IMAP"
python3 - "$dv_port" "$src_user" "$src_pw" "$imaps" "$alice" "alice target pw" <<'PY' || fail "target differs from source"
import imaplib, re, ssl, sys, time
dv_port, su, sp, imaps, tu, tp = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
src = imaplib.IMAP4("127.0.0.1", dv_port); src.login(su, sp)
dst = imaplib.IMAP4_SSL("127.0.0.1", imaps, ssl_context=ctx); dst.login(tu, tp)

def folders(c):
    out = []
    for line in c.list()[1]:
        flags, name = re.match(rb'\((.*?)\) "[^"]*" (.*)', line).groups()
        if b"\\Noselect" in flags or b"\\NonExistent" in flags:
            continue
        out.append(name.decode().strip('"'))
    return out

def messages(c, box):
    typ, data = c.select('"%s"' % box, readonly=True)
    assert typ == "OK", (box, data)
    if int(data[0]) == 0:
        return {}
    typ, data = c.fetch("1:*", "(FLAGS INTERNALDATE BODY.PEEK[])")
    out = {}
    for item in data:
        if not isinstance(item, tuple):
            continue
        meta, body = item
        flags = sorted(f for f in re.search(rb"FLAGS \((.*?)\)", meta).group(1).split() if f != b"\\Recent")
        # date-day-fixed is " 1" or "01" (RFC 9051 §9): compare the time.
        date = re.search(rb'INTERNALDATE "([^"]+)"', meta).group(1).decode()
        date = time.strptime(date.strip(), "%d-%b-%Y %H:%M:%S %z")
        mid = re.search(rb"Message-ID: (<[^>]+>)", body).group(1)
        out[mid] = (body, flags, date)
    return out

sf, df = folders(src), folders(dst)
total = 0
for box in sf:
    target = box if box != "Sent" else "Sent"
    assert target in df, ("folder missing in target", box, df)
    a, b = messages(src, box), messages(dst, target)
    assert a.keys() == b.keys(), (box, len(a), len(b))
    for mid, (body, flags, date) in a.items():
        tb, tf, td = b[mid]
        assert tb == body, ("bytes differ", box, mid)
        assert tf == flags, ("flags differ", box, mid, flags, tf)
        assert td == date, ("INTERNALDATE differs", box, mid, date, td)
    total += len(a)
assert total == 400, total
print("target matches source: %d messages in %d folders, bytes, flags and INTERNALDATE" % (total, len(sf)))
PY

echo "-- a third run copies nothing"
mig run --csv "$work/run.csv" >"$work/run3.log" 2>&1 || fail "third run"
mig status "$alice" >"$work/status3.log" 2>&1
grep -Eq "copied 0 messages|nothing new|no new" "$work/status3.log" || { cat "$work/status3.log"; fail "third run was not a no-op"; }

echo "-- the report is mailed through our submission port"
printf '%s' "$admin_pw" >"$work/admin.pw"
mig report --mailboxes "$alice" --mail-to "$admin" --smtp "127.0.0.1:$sub" --smtp-user "$admin" \
  --smtp-password-file "$work/admin.pw" --smtp-insecure-skip-verify >"$work/report.log" 2>&1 || fail "report by mail"
python3 - "$imaps" "$admin" "$admin_pw" "$alice" <<'PY' || fail "report not in the admin's INBOX"
import email, imaplib, ssl, sys, time
imaps, user, pw, mailbox = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
c = imaplib.IMAP4_SSL("127.0.0.1", imaps, ssl_context=ctx); c.login(user, pw)
for _ in range(50):
    typ, data = c.select("INBOX")
    if int(data[0]) > 0:
        break
    time.sleep(0.2)
typ, data = c.fetch("1", "(BODY.PEEK[])")
msg = email.message_from_bytes(data[0][1])
parts = {p.get_content_type(): p for p in msg.walk()}
assert "text/csv" in parts, list(parts)
csv = parts["text/csv"].get_payload(decode=True).decode()
assert mailbox in csv, csv[:300]
assert "text/html" in parts, list(parts)
print("report delivered to", user, "subject:", msg["Subject"])
PY
echo "interop-migrate: ok"
