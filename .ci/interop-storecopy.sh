#!/usr/bin/env bash
# Interop: an embedded (SQLite) installation moved to PostgreSQL with
# `mailserver store copy`, as an IMAP client sees it.
#  1. The reference server on SQLite gets the IMAP corpus (APPENDed with
#     flags and dates, .ci/imap_session.py) and 1,000 more messages over
#     SMTP; one is expunged. mbsync pulls INBOX into a Maildir. An
#     imaplib client notes UIDVALIDITY and HIGHESTMODSEQ before and after
#     the expunge; a CalDAV client (.ci/dav_synctoken.py, sync-collection
#     of RFC 6578) syncs a calendar, which is then edited, and notes its
#     old and last sync tokens.
#  2. The server stops; `store copy --to DSN` into a fresh database is
#     killed with SIGKILL once part of the mail is in, then run again: it
#     continues (messages already there are counted, not copied again)
#     and verifies the counts.
#  3. The server starts on the database ([store] backend = "postgres"):
#     a second mbsync run finds nothing to do (same UIDVALIDITY, UIDs and
#     flags: the Maildir and mbsync's sync state are unchanged), and
#     `mailserver check` finds nothing wrong. QRESYNC (RFC 7162 §3.2.5)
#     from the last HIGHESTMODSEQ reports nothing, from the one before
#     the expunge exactly VANISHED (EARLIER) of the expunged UID; the
#     CalDAV client's last token gets nothing, its old token what it got
#     before the copy, and one edit after the copy comes alone.
# PORT_BASE=N uses ports N..N+6 instead of free ones.
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh
start=$(date +%s)
work=$(mktemp -d)
chmod 755 "$work"
pid= copy_pid=
db="mailyard_copy_$$_$(date +%s)"
pg() { psql -h 127.0.0.1 -U postgres -Atq "$@"; }
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  [ -n "$copy_pid" ] && kill -9 "$copy_pid" 2>/dev/null
  wait 2>/dev/null
  pg -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" 2>/dev/null || true
  if [ -n "${KEEP_WORK:-}" ]; then echo "work dir kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
for c in mbsync python3 /usr/bin/python3 openssl psql; do command -v "$c" >/dev/null || fail "$c missing (bash .ci/peers.sh installs it)"; done
pg -d postgres -c "CREATE DATABASE $db" || fail "cannot create database $db on 127.0.0.1:5432"
dsn="postgres://postgres@127.0.0.1:5432/$db?sslmode=disable"

port() { if [ -n "${PORT_BASE:-}" ]; then echo $((PORT_BASE + $1)); else free_port; fi; }
smtp=$(port 0) sub=$(port 1) subs=$(port 2) http=$(port 3) imap=$(port 4) imaps=$(port 5) dav=$(port 6)
build_mailserver "$work"
ms() { "$work/mailserver" -config "$work/cfg.toml" "$@"; }
write_config "$work/cfg.toml" "$work/data" "$smtp" "$sub" "$subs" "$http" "$imap" "$imaps" "$dav"
printf '[auth_checks]\nenabled = false\n' >>"$work/cfg.toml"
cp "$work/cfg.toml" "$work/cfg-sqlite.toml"
serve() {
  "$work/mailserver" -config "$work/cfg.toml" serve >>"$work/server.log" 2>&1 &
  pid=$!
  wait_port 127.0.0.1 "$imap" || fail "no IMAP listener"
  wait_port 127.0.0.1 "$smtp" || fail "no SMTP listener"
}
stop() { kill "$pid"; wait "$pid" || true; pid=; }
# serve_check fails if the server exited (a port still held, a bad config).
serve_check() { kill -0 "$pid" 2>/dev/null || fail "the server exited"; }

alice=alice@example.test alice_pw='correct horse'
ms init >/dev/null
ms domain add example.test >/dev/null
ms user add "$alice" -password "$alice_pw" >/dev/null
serve
echo "-- SQLite: corpus over IMAP, 1000 messages over SMTP, one expunged"
python3 .ci/imap_session.py corpus "$work/corpus"
python3 .ci/imap_session.py populate 127.0.0.1 "$imap" "$alice" "$alice_pw" "$work/corpus" || fail "populate"
python3 - "$smtp" "$imap" "$alice" "$alice_pw" "$work/qresync" <<'PY' || fail "bulk mail"
import imaplib, re, smtplib, ssl, sys
smtp, imap, user, pw, state = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
s = smtplib.SMTP("127.0.0.1", smtp, timeout=60)
for i in range(1000):
    s.sendmail("bulk@remote.test", [user], f"From: bulk@remote.test\r\nTo: {user}\r\nSubject: bulk {i}\r\nMessage-ID: <bulk-{i}@interop.test>\r\n\r\nmessage {i}\r\n".encode())
s.quit()
m = imaplib.IMAP4("127.0.0.1", imap, timeout=60)
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
m.starttls(ssl_context=ctx)
m.login(user, pw)
def modseq():
    # STATUS (RFC 7162 §3.1.6): the state a QRESYNC client keeps.
    typ, data = m.status("INBOX", "(UIDVALIDITY HIGHESTMODSEQ)")
    st = re.search(rb"UIDVALIDITY (\d+) HIGHESTMODSEQ (\d+)", data[0])
    return st.group(1).decode(), st.group(2).decode()
uv, before = modseq()
m.select("INBOX")
typ, data = m.uid("SEARCH", "HEADER", "Message-ID", "<bulk-7@interop.test>")
uid = data[0].split()[0]
m.uid("STORE", uid, "+FLAGS", r"(\Deleted)")
m.expunge()
m.close()
uv2, last = modseq()
assert uv2 == uv and int(last) > int(before), (uv, uv2, before, last)
open(state, "w").write(f"{uv} {before} {last} {uid.decode()}\n")
m.logout()
PY
echo "-- SQLite: a CalDAV client syncs, the calendar changes, it syncs again"
/usr/bin/python3 .ci/dav_synctoken.py before "https://127.0.0.1:$dav/" "$alice" "$alice_pw" "$work/davsync.json" ||
  fail "CalDAV sync-collection before the copy"

mbsync_setup "$imap" "$alice" "$alice_pw"
[ -s "$work/server.pem" ] || fail "no certificate from STARTTLS"
snapshot() { (cd "$work/maildir/INBOX" && find . -type f | sort && cat .mbsyncstate); }
mbsync_run mbsync1
n=$(find "$work/maildir/INBOX/cur" "$work/maildir/INBOX/new" -type f | wc -l)
echo "mbsync pulled $n messages from the SQLite server"
snapshot >"$work/tree1"
stop

echo "-- store copy, killed with SIGKILL part-way, then run again"
"$work/mailserver" -config "$work/cfg-sqlite.toml" store copy --to "$dsn" >"$work/copy1.log" 2>&1 &
copy_pid=$!
in=0
for _ in $(seq 1 600); do
  in=$(pg -d "$db" -c "SELECT count(*) FROM messages" 2>/dev/null || echo 0)
  [ "${in:-0}" -ge 200 ] && break
  sleep 0.02
done
kill -9 "$copy_pid" 2>/dev/null || true
wait "$copy_pid" 2>/dev/null || true
copy_pid=
in=$(pg -d "$db" -c "SELECT count(*) FROM messages")
echo "killed with $in messages in the database"
if grep -q "copy verified" "$work/copy1.log"; then fail "the copy finished before the kill; nothing resumed"; fi
"$work/mailserver" -config "$work/cfg-sqlite.toml" store copy --to "$dsn" >"$work/copy2.log" 2>&1 || { cat "$work/copy2.log"; fail "resumed store copy"; }
grep -q "copy verified: every count matches" "$work/copy2.log" || { cat "$work/copy2.log"; fail "no verification"; }
there=$(grep -o '([0-9]* already there)' "$work/copy2.log" | tr -dc '0-9\n' | awk '{s += $1} END {print s + 0}')
[ "$there" -eq "$in" ] || { cat "$work/copy2.log"; fail "resumed copy found $there messages there, the database held $in"; }
grep -E '^account ' "$work/copy2.log"
total=$(pg -d "$db" -c "SELECT count(*) FROM messages")
dups=$(pg -d "$db" -c "SELECT count(*) FROM (SELECT mailbox, uid FROM messages GROUP BY 1, 2 HAVING count(*) > 1) d")
[ "$dups" -eq 0 ] || fail "$dups duplicated UIDs"
echo "resumed: $there already there, $total in all, no duplicates"

echo "-- the server on PostgreSQL: mbsync has nothing to do"
printf '[store]\nbackend = "postgres"\ndsn = "%s"\n' "$dsn" >>"$work/cfg.toml"
serve
sleep 0.5
serve_check
mbsync_run mbsync2
snapshot >"$work/tree2"
if ! diff "$work/tree1" "$work/tree2" >"$work/tree.diff"; then
  head -20 "$work/tree.diff"; cat "$work/mbsync2.log"; fail "mbsync changed the Maildir or its sync state after the move"
fi
ms check | grep -q "store ok" || fail "mailserver check on PostgreSQL"
python3 - "$imap" "$alice" "$alice_pw" "$work/qresync" <<'PY' || fail "QRESYNC after the move"
import imaplib, ssl, sys
imap, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
uv, before, last, uid = open(sys.argv[4]).read().split()
m = imaplib.IMAP4("127.0.0.1", imap, timeout=60)
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
m.starttls(ssl_context=ctx)
m.login(user, pw)
m._simple_command("ENABLE", "QRESYNC")
def resync(modseq):
    # RFC 7162 §3.2.5: SELECT with the client's UIDVALIDITY and MODSEQ.
    m.untagged_responses.clear()
    typ, data = m._simple_command("SELECT", "INBOX", f"(QRESYNC ({uv} {modseq}))")
    assert typ == "OK", (typ, data)
    return m.untagged_responses.get("VANISHED", []), m.untagged_responses.get("FETCH", []), m.untagged_responses.get("OK", [])
v, f, ok = resync(last)
assert not v and not f, f"since the last HIGHESTMODSEQ {last}: VANISHED {v}, FETCH {f}"
assert any(b"[HIGHESTMODSEQ " + last.encode() + b"]" in o for o in ok), f"HIGHESTMODSEQ moved: {ok}"
# A second SELECT closes the mailbox (RFC 7162 §3.2.11: OK [CLOSED]).
v, f, ok = resync(before)
assert v == [b"(EARLIER) " + uid.encode()] and not f, f"since {before}, before the expunge: VANISHED {v}, FETCH {f}"
m.logout()
print(f"QRESYNC: UIDVALIDITY {uv} kept; nothing since {last}; VANISHED (EARLIER) {uid} since {before}")
PY
/usr/bin/python3 .ci/dav_synctoken.py after "https://127.0.0.1:$dav/" "$alice" "$alice_pw" "$work/davsync.json" ||
  fail "CalDAV sync-collection after the copy"
# The server really is on the database: new mail lands there.
python3 -c 'import smtplib, sys; smtplib.SMTP("127.0.0.1", int(sys.argv[1])).sendmail("x@remote.test", [sys.argv[2]], b"Subject: after the move\r\n\r\nhi\r\n")' "$smtp" "$alice" ||
  fail "SMTP after the move"
[ "$(pg -d "$db" -c "SELECT count(*) FROM messages")" -eq $((total + 1)) ] || fail "the new message is not in the database"
stop
echo "OK: store copy ($n messages; killed at $in, resumed) with mbsync a no-op after the move ($(($(date +%s) - start))s)"
