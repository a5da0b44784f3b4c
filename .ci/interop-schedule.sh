#!/usr/bin/env bash
# Interop: the scheduling scenario of issue 14 end to end through the
# reference server (.ci/schedule_scenario.py, python3-requests and swaks):
# alice invites bob (local), carol at remote.test (the iMIP REQUEST leaves
# through the outbound queue and arrives at Postfix's smtp-sink, which
# stands for remote.test's MX, and must parse as iTIP METHOD:REQUEST) and
# a room; bob accepts over CalDAV and alice's copy shows ACCEPTED; a
# second booking of the room at an overlapping time is declined; carol's
# iMIP REPLY sent to the MX with swaks updates alice's event.
# Ports: SCHED_PORT_BASE (default 21800) and the next five.
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh
begin=$(date +%s)
work=$(mktemp -d)
# smtp-sink drops root privileges: its dump directory lives apart.
sinkdir=$(mktemp -d)
chmod 777 "$sinkdir"
pid=
sinkpid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  [ -n "$sinkpid" ] && kill "$sinkpid" 2>/dev/null
  wait 2>/dev/null
  if [ -n "${KEEP_WORK:-}" ]; then echo "work dirs kept: $work $sinkdir"; else rm -rf "$work" "$sinkdir"; fi
}
trap cleanup EXIT
py=/usr/bin/python3 # Debian's, with python3-requests (see TESTING.md)
$py -c 'import requests' 2>/dev/null || fail "python3-requests missing (bash .ci/peers.sh installs it)"
command -v swaks >/dev/null || fail "swaks missing (bash .ci/peers.sh installs it)"
command -v smtp-sink >/dev/null || fail "smtp-sink missing (bash .ci/peers.sh installs postfix)"

base=${SCHED_PORT_BASE:-21800}
smtp=$base sub=$((base + 1)) subs=$((base + 2)) http=$((base + 3)) dav=$((base + 4)) sink=$((base + 5))
build_mailserver "$work"
ms() { "$work/mailserver" -config "$work/cfg.toml" "$@"; }
write_config "$work/cfg.toml" "$work/data" "$smtp" "$sub" "$subs" "$http" "" "" "$dav"
# DAV over plain HTTP on loopback (a lab: interop-dav.sh covers TLS);
# remote.test's MX is the sink; no SPF/DMARC (no DNS here).
sed -i "s|^\[dav\]|[dav]\ninsecure_http = true|" "$work/cfg.toml"
cat >>"$work/cfg.toml" <<CFG
[auth_checks]
enabled = false
[queue]
retry_min = "500ms"
retry_max = "1s"
[[routing.relay_domain]]
domain = "remote.test"
next_hop = "[127.0.0.1]:$sink"
CFG
ms init >/dev/null
ms domain add example.test >/dev/null
for u in alice bob; do ms user add "$u@example.test" -password 'correct horse' >/dev/null; done
ms resource add room1@example.test -name 'Room 1' -capacity 6 >/dev/null

user=()
[ "$(id -u)" = 0 ] && user=(-u nobody)
smtp-sink "${user[@]}" -d "$sinkdir/m." "127.0.0.1:$sink" 64 &
sinkpid=$!
"$work/mailserver" -config "$work/cfg.toml" serve >"$work/server.log" 2>&1 &
pid=$!
wait_port 127.0.0.1 "$sink" || fail "no smtp-sink"
wait_port 127.0.0.1 "$dav" || fail "no DAV listener"
wait_port 127.0.0.1 "$smtp" || fail "no SMTP listener"

$py .ci/schedule_scenario.py "http://127.0.0.1:$dav/" "$smtp" "$sinkdir" || fail "scheduling scenario"
echo "interop-schedule: ok in $(($(date +%s) - begin))s"
