#!/usr/bin/env bash
# Interop: COMPRESS=DEFLATE (RFC 4978) with Python's imaplib over a zlib
# wrapper (.ci/imap_compress.py): the corpus of .ci/imap_session.py is
# APPENDed uncompressed, then synced over STARTTLS + COMPRESS DEFLATE and
# compared byte for byte; an APPEND, SEARCH, SORT and EXPUNGE go through
# the compressed stream too. Ports IMAPCOMPRESS_PORT_BASE..+5 (default
# 21300).
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh
start=$(date +%s)
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
command -v python3 >/dev/null || fail "python3 missing (bash .ci/peers.sh installs it)"

alice=alice@example.test alice_pw='correct horse'
pb=${IMAPCOMPRESS_PORT_BASE:-21300}
smtp=$pb sub=$((pb + 1)) subs=$((pb + 2)) http=$((pb + 3)) imap=$((pb + 4)) imaps=$((pb + 5))
build_mailserver "$work"
ms() { "$work/mailserver" -config "$work/cfg.toml" "$@"; }
write_config "$work/cfg.toml" "$work/data" "$smtp" "$sub" "$subs" "$http" "$imap" "$imaps"
ms init
ms domain add example.test
ms user add "$alice" -password "$alice_pw"
"$work/mailserver" -config "$work/cfg.toml" serve >"$work/server.log" 2>&1 &
pid=$!
wait_port 127.0.0.1 "$imap" || fail "no IMAP listener"

python3 .ci/imap_session.py corpus "$work/corpus"
python3 .ci/imap_session.py populate 127.0.0.1 "$imap" "$alice" "$alice_pw" "$work/corpus" || fail "populate"
python3 .ci/imap_compress.py 127.0.0.1 "$imap" "$alice" "$alice_pw" "$work/corpus" || fail "imaplib over COMPRESS=DEFLATE"
echo "interop-imapcompress: ok in $(($(date +%s) - start)) s"
