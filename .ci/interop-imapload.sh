#!/usr/bin/env bash
# Load: IMAP sessions racing each other's expunges (issue 12, item 5).
# Starts the real examples/mailserver on loopback, creates one account
# with three mailboxes (INBOX, Shared1, Shared2) of 100 messages each,
# and runs bench/imapload -shared: CLIENTS connections, all logged in to
# that account, each on a random one of the mailboxes, with a random mix
# of FETCH (BODY[], BODY.PEEK[], ENVELOPE + header, FLAGS), STORE
# (\Deleted, \Seen, keywords), SEARCH (BODY, TEXT, HEADER), EXPUNGE,
# COPY and APPEND for DURATION seconds, reconnecting every 20-80 commands.
#
# Fails if any response is BAD, a NO other than [EXPUNGEISSUED] after
# FETCH or STORE (RFC 2180 §4.1.2, §4.2.2), in particular [NONEXISTENT]
# or [SERVERBUG], or any NO after SEARCH (§4.3); if a SEARCH result is
# beyond the mailbox; if any BODY[] is empty, differs from RFC822.SIZE or
# is not a message; or if the server logs a store error or a FETCH that
# failed mid-response. Prints the commands per kind and every status seen.
#
#   CLIENTS=50 DURATION=60 bash .ci/interop-imapload.sh
#   MAILSERVER=path   a prebuilt server binary (e.g. of an older commit)
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh
CLIENTS=${CLIENTS:-50}
DURATION=${DURATION:-60}
for v in CLIENTS DURATION; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be a number, got '${!v}'" >&2; exit 2; }
done
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  wait 2>/dev/null
  if [ -n "${KEEP_WORK:-}" ]; then echo "work dir kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  if [ -f "$work/server.log" ]; then echo "--- server log (errors)"; grep -iE 'level=(warn|error)' "$work/server.log" | head -20; fi
  exit 1
}

user=load@example.test pw=load-password
if [ -n "${MAILSERVER:-}" ]; then cp "$MAILSERVER" "$work/mailserver"; else build_mailserver "$work"; fi
build_bin "$work" ./bench/imapload
ms() { "$work/mailserver" -config "$work/cfg.toml" "$@"; }
smtp=$(free_port); sub=$(free_port); subs=$(free_port); http=$(free_port); imap=$(free_port); imaps=$(free_port)
write_config "$work/cfg.toml" "$work/data" "$smtp" "$sub" "$subs" "$http" "$imap" "$imaps"
ms init >/dev/null
ms domain add example.test >/dev/null
ms user add "$user" -password "$pw" >/dev/null
echo "$user $pw" >"$work/accounts"
"$work/mailserver" -config "$work/cfg.toml" serve >"$work/server.log" 2>&1 &
pid=$!
wait_port 127.0.0.1 "$imaps" || fail "no IMAPS listener"

echo "-- $CLIENTS clients on $user's INBOX, Shared1, Shared2 for ${DURATION}s"
rc=0
"$work/imapload" -addr "127.0.0.1:$imaps" -tls -insecure -users "$work/accounts" -shared \
  -clients "$CLIENTS" -duration "${DURATION}s" -timeout 60s | tee "$work/load.txt" || rc=$?
kill -0 "$pid" 2>/dev/null || fail "the server died under load"
# Store errors are what IMAP answers NO [SERVERBUG] for; a FETCH that
# failed mid-response sent a short or empty literal.
issues=$(grep -cE 'store error|fetch failed mid-response|panic' "$work/server.log" || true)
echo "server log: $issues store errors / failed FETCH responses / panics"
[ "$rc" = 0 ] || fail "imapload reported failures (FAILURE lines above)"
[ "$issues" = 0 ] || fail "the server logged $issues errors"
grep -q '^SHARED .* failures=0' "$work/load.txt" || fail "no summary line"
echo "PASS"
