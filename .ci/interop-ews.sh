#!/usr/bin/env bash
# Interop: python3-exchangelib (Debian, 4.9) against the EWS test server
# (internal/ewstest, issue 17 "Must show"): the real client lists folders,
# reads messages' MIME, creates, updates and deletes calendar items (a
# series with an exception, which gets an attachment of its own, and a
# deleted occurrence) and contacts, sends a meeting, accepts it as the
# attendee and cancels it (the server puts a MeetingRequest and a
# MeetingCancellation into the attendee's inbox, a MeetingResponse into
# the organizer's, and cancels the attendee's calendar item), syncs
# items and the hierarchy twice, uses a pull and a streaming
# subscription (a ConnectionTimeout minute lasts 3 s here), and gets
# ErrorImpersonateUserDenied, ErrorAccessDenied and ErrorServerBusy where
# Exchange gives them (.ci/ews_scenario.py). Run twice: plain HTTP, then
# HTTPS with ewsd's self-signed certificate (not verified by the client).
# Ports come from EWS_PORT_BASE (21400..21401 by default).
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh
start=$(date +%s)
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP_WORK:-}" ]; then echo "work dir kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
py=/usr/bin/python3 # Debian's, which has python3-exchangelib (see TESTING.md)
$py -c 'import exchangelib' 2>/dev/null || fail "python3-exchangelib missing (bash .ci/peers.sh installs it)"
build_bin "$work" ./internal/ewstest/cmd/ewsd
cat >"$work/seed.json" <<'JSON'
{"users": [
  {"login": "svc", "password": "correct horse", "smtp": "svc@example.test", "impersonate": true},
  {"login": "alice", "password": "correct horse", "smtp": "alice@example.test",
   "folders": [{"parent": "inbox", "name": "Проекты"}, {"parent": "inbox/Проекты", "name": "2026"},
               {"parent": "msgfolderroot", "name": "Archive"}],
   "generate": {"messages": 12, "calendar_items": 8, "recurring": 6, "contacts": 4}},
  {"login": "bob", "password": "correct horse", "smtp": "bob@example.test",
   "items": [
    {"path": "inbox", "xml": "<MeetingRequest><Subject>Plan</Subject><From><Mailbox><Name>Alice</Name><EmailAddress>alice@example.test</EmailAddress><RoutingType>SMTP</RoutingType></Mailbox></From><ResponseType>NoResponseReceived</ResponseType><UID>plan-1@example.test</UID><MeetingRequestType>NewMeetingRequest</MeetingRequestType><Start>2026-07-01T09:00:00Z</Start><End>2026-07-01T10:00:00Z</End><Location>Room 3</Location><Organizer><Mailbox><Name>Alice</Name><EmailAddress>alice@example.test</EmailAddress><RoutingType>SMTP</RoutingType></Mailbox></Organizer><RequiredAttendees><Attendee><Mailbox><EmailAddress>bob@example.test</EmailAddress></Mailbox><ResponseType>Unknown</ResponseType></Attendee></RequiredAttendees></MeetingRequest>"},
    {"path": "inbox", "xml": "<MeetingResponse><Subject>Accepted: Review</Subject><From><Mailbox><EmailAddress>carol@example.test</EmailAddress></Mailbox></From><ResponseType>Accept</ResponseType><UID>review-1@example.test</UID></MeetingResponse>"},
    {"path": "inbox", "xml": "<MeetingCancellation><Subject>Canceled: Retro</Subject><From><Mailbox><EmailAddress>alice@example.test</EmailAddress></Mailbox></From><UID>retro-1@example.test</UID></MeetingCancellation>"}
   ]},
  {"login": "carol", "password": "correct horse", "smtp": "carol@example.test",
   "throttle": {"burst": 40, "window": 60000000000}}
]}
JSON
base=${EWS_PORT_BASE:-21400}
i=0
for scheme in http https; do
  port=$((base + i)); i=$((i + 1))
  flags=()
  [ "$scheme" = https ] && flags=(-tls)
  "$work/ewsd" -listen "127.0.0.1:$port" -seed "$work/seed.json" -streaming-minute 3s "${flags[@]}" >"$work/server.log" 2>&1 &
  pids+=($!)
  wait_port 127.0.0.1 "$port" 10 && sleep 0.2 && kill -0 "${pids[-1]}" 2>/dev/null || fail "ewsd did not start on $port"
  echo "-- exchangelib over $scheme (NTLM and Basic)"
  EWS_INSECURE=$([ "$scheme" = https ] && echo 1 || echo) \
    timeout 60 $py .ci/ews_scenario.py "$scheme://127.0.0.1:$port/EWS/Exchange.asmx" || fail "exchangelib scenario over $scheme"
  kill -TERM "${pids[-1]}"; wait "${pids[-1]}" || true
  grep -q 'shutdown complete' "$work/server.log" || fail "ewsd did not shut down cleanly"
done
echo "interop-ews: ok in $(($(date +%s) - start))s"
