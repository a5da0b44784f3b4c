#!/usr/bin/env bash
# Interop: refused IMAP literals replayed from a raw socket against the
# reference server (.ci/literal_replay.py): before and after login,
# synchronising and non-synchronising, APPEND over APPENDLIMIT, a failed
# command ending in a literal, SEARCH nested 20,000 deep, a literal announced
# on the line that ends IDLE or in an AUTHENTICATE response. Each is answered
# with a tagged NO or BAD within a second (no "+" for a synchronising
# literal), the refused data is skipped or the connection closed, and no
# command hidden in a literal runs: afterwards a fresh connection sees the
# mailbox Victim and neither Evil nor Gone. The refusals are logged.
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh
start=$(date +%s)
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  wait 2>/dev/null
  if [ -n "${KEEP_WORK:-}" ]; then echo "work dir kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

command -v python3 >/dev/null || fail "python3 missing (bash .ci/peers.sh installs it)"

user=alice@example.test pw='correct horse'
build_mailserver "$work"
ms() { "$work/mailserver" -config "$work/cfg.toml" "$@"; }
smtp=$(free_port); sub=$(free_port); subs=$(free_port); http=$(free_port); imap=$(free_port)
write_config "$work/cfg.toml" "$work/data" "$smtp" "$sub" "$subs" "$http" "$imap"
# Plain LOGIN on loopback, so that a raw socket can log in.
sed -i '/^\[imap\]$/a allow_insecure_auth = true' "$work/cfg.toml"
cat >>"$work/cfg.toml" <<CFG
[auth_checks]
enabled = false
CFG
ms init >/dev/null
ms domain add example.test >/dev/null
ms user add "$user" -password "$pw" >/dev/null
"$work/mailserver" -config "$work/cfg.toml" serve >"$work/server.log" 2>&1 &
pid=$!
wait_port 127.0.0.1 "$imap" || fail "no IMAP listener"

python3 .ci/literal_replay.py 127.0.0.1 "$imap" "$user" "$pw" || fail "literal replay"

kill -TERM "$pid"; wait "$pid" || true; pid=
grep -q 'refused literal.*kind=synchronizing size=4294967295' "$work/server.log" || fail "refused literal not logged"
grep -q 'refused literal.*kind=non-synchronizing size=52428801' "$work/server.log" || fail "refused APPEND literal not logged"
n=$(grep -ciE 'level=error|panic' "$work/server.log" || true)
[ "$n" = 0 ] || { grep -iE 'level=error|panic' "$work/server.log" | head; fail "$n errors in the server log"; }
echo "interop-literal: ok in $(($(date +%s) - start))s"
