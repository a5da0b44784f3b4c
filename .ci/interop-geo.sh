#!/usr/bin/env bash
# Interop: three reference servers as the three sites a, b and c of one
# distributed installation (package geo), each with its own data
# directory and embedded NATS, linked all-to-all over loopback with
# mutual TLS (a CA and one certificate per site made here with openssl).
#  1. Every link is green on every site (`mailserver geo status`).
#  2. A user created on site a (admin command) is in b's and c's global
#     address list (CardDAV GET of its card), marked with site a.
#  3. swaks to that user at c's MX lands in a's mailbox (c relays it to
#     a's MX; `route explain` on c names site a).
#  3b. An event in a user's calendar on b shows busy to `mailserver geo
#     freebusy` on c (c asks b over NATS; b answers with dav.FreeBusy).
#  4. The same address created on b and c is a conflict on every site
#     (`mailserver geo conflicts`), and mail for it stays local: each of b
#     and c delivers it to its own mailbox.
#  5. Partition and heal: site c is stopped (its NATS with it); a adds a
#     user, renames one and deletes one, b adds one and deletes its
#     conflicting address; c restarts: the three global address lists
#     (CardDAV listings) are the same, exactly the expected entries, each
#     once, the rename shown on c.
#  6. SIGKILL mid-stream: while a adds users one after another, c is
#     killed with SIGKILL once it holds some of them; restarted, it holds
#     all, and it read only what it had not acknowledged (its link's
#     received count is below the records of a's stream: no new
#     snapshot).
# Then all of it again with external NATS: the machine's nats-server, three
# servers in one JetStream cluster on loopback, each site's stream on its
# own server (nats_external) and the links naming the peers' servers.
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh
work=$(mktemp -d)
declare -A pids=() natspids=()
cleanup() {
  for s in "${!pids[@]}"; do kill "${pids[$s]}" 2>/dev/null || true; done
  for s in "${!natspids[@]}"; do kill "${natspids[$s]}" 2>/dev/null || true; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
begin=$(date +%s)

build_mailserver "$work"
sites=(a b c)
# Ports GEO_PORT_BASE.. +46 (default the lead's range 22300-22499): site i
# uses GEO_PORT_BASE+20*i onwards.
pb=${GEO_PORT_BASE:-22300}
base() { case $1 in a) echo "$pb" ;; b) echo $((pb + 20)) ;; c) echo $((pb + 40)) ;; esac; }
smtp() { echo $(($(base "$1") + 0)); }
http() { echo $(($(base "$1") + 3)); }
davp() { echo $(($(base "$1") + 4)); }
nats() { echo $(($(base "$1") + 5)); }
route() { echo $(($(base "$1") + 6)); }
ms() { local s=$1; shift; "$work/mailserver" -config "$work/$s/cfg.toml" "$@"; }

# The CA and the sites' certificates: DNS name = site ID, for server and
# client authentication.
make_geo_certs "$work" "${sites[@]}"

# site_nats SITE: the [geo] keys of SITE's NATS for $mode.
site_nats() {
  if [ "$mode" = embedded ]; then
    printf 'nats_listen = "127.0.0.1:%s"\ncert_file = "%s"\nkey_file = "%s"\nca_file = "%s"\n' \
      "$(nats "$1")" "$work/$1/geo.pem" "$work/$1/geo.key" "$work/ca.pem"
  else
    printf 'nats_external = "nats://127.0.0.1:%s"\n' "$(nats "$1")"
  fi
}

# start_nats_cluster: three nats-server with JetStream in one cluster.
start_nats_cluster() {
  local s p routes
  for s in "${sites[@]}"; do
    routes=
    for p in "${sites[@]}"; do
      [ "$p" = "$s" ] || routes+="nats-route://127.0.0.1:$(route "$p"),"
    done
    mkdir -p "$work/nats-$s"
    cat >"$work/nats-$s/nats.conf" <<CFG
server_name: geo-$s
listen: 127.0.0.1:$(nats "$s")
jetstream { store_dir: "$work/nats-$s/js" }
cluster { name: geo, listen: 127.0.0.1:$(route "$s"), routes: [${routes%,}] }
CFG
    "$(command -v nats-server || echo /usr/sbin/nats-server)" -c "$work/nats-$s/nats.conf" >"$work/nats-$s/log" 2>&1 &
    natspids[$s]=$!
  done
  for s in "${sites[@]}"; do wait_port 127.0.0.1 "$(nats "$s")" 20 || fail "nats-server $s did not start"; done
  # JetStream answers once the cluster elected its meta leader.
  for ((i = 0; i < 100; i++)); do
    grep -q 'JetStream cluster new metadata leader\|Self is new JetStream cluster metadata leader' "$work"/nats-*/log && return 0
    sleep 0.2
  done
  fail "the NATS cluster elected no JetStream leader"
}

# stop_sites stops every site's server.
stop_sites() {
  local s
  for s in "${!pids[@]}"; do kill "${pids[$s]}" 2>/dev/null || true; wait "${pids[$s]}" 2>/dev/null || true; done
  pids=()
}

# scenario MODE runs steps 1-5 with embedded or external NATS.
scenario() {
  mode=$1 scheme=tls
  [ "$mode" = external ] && scheme=nats
  echo "=== $mode NATS"
  rm -f "$work"/*/server.log
for s in "${sites[@]}"; do
  b=$(base "$s")
  write_config "$work/$s/cfg.toml" "$work/$mode/$s" "$b" $((b + 1)) $((b + 2)) $((b + 3)) "" "" $((b + 4))
  sed -i -e "s/^hostname = .*/hostname = \"mx-$s.example.test\"/" \
    -e 's/^\[dav\]$/[dav]\ninsecure_http = true/' "$work/$s/cfg.toml"
  cat >>"$work/$s/cfg.toml" <<CFG
[queue]
retry_min = "500ms"
retry_max = "1s"
[geo]
site = "$s"
name = "Site $s"
mx = "127.0.0.1:$(smtp "$s")"
$(site_nats "$s")
reconcile_interval = "5s"
CFG
  for p in "${sites[@]}"; do
    [ "$p" = "$s" ] && continue
    cat >>"$work/$s/cfg.toml" <<CFG
[[geo.link]]
site = "$p"
nats = ["$scheme://127.0.0.1:$(nats "$p")"]
mx = "127.0.0.1:$(smtp "$p")"
allow = ["127.0.0.1"]
calendar_senders = ["calendar@site-$p.example.test"]
CFG
  done
  ms "$s" init >/dev/null
  ms "$s" domain add example.test >/dev/null
  # One local user per site, to read the GAL over CardDAV.
  ms "$s" user add "reader-$s@example.test" -password 'correct horse' >/dev/null
done

start_site() {
  "$work/mailserver" -config "$work/$1/cfg.toml" serve >>"$work/$1/server.log" 2>&1 &
  pids[$1]=$!
}
fail() {
  echo "FAIL ($mode NATS): $*"
  for s in "${sites[@]}"; do
    echo "--- site $s log"; tail -25 "$work/$s/server.log"
    [ -f "$work/nats-$s/log" ] && { echo "--- nats-server $s log"; tail -10 "$work/nats-$s/log"; }
  done
  exit 1
}
# wait_for SECONDS DESCRIPTION COMMAND... retries COMMAND every 0.2 s.
wait_for() {
  local secs=$1 what=$2 i
  shift 2
  for ((i = 0; i < secs * 5; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  fail "$what (after ${secs}s)"
}
if [ "$mode" = external ]; then start_nats_cluster; fi
for s in "${sites[@]}"; do start_site "$s"; done
for s in "${sites[@]}"; do
  wait_port 127.0.0.1 "$(smtp "$s")" 30 || fail "site $s did not start"
  wait_port 127.0.0.1 "$(davp "$s")" 30 || fail "site $s did not start"
done

# 1. Every link is green on every site.
all_green() { [ "$(ms "$1" geo status | grep -c ' green ')" = 2 ] && ! ms "$1" geo status | grep ' red ' >/dev/null; }
for s in "${sites[@]}"; do wait_for 20 "links of site $s green" all_green "$s"; done
ms a geo status
echo "ok: every link green on a, b and c"

# 2. A user made on a shows in the GAL of b and c, marked with site a.
id_of() { ms "$1" user show "$2" -json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }
gal_card() { # gal_card SITE ADDRESS: the card of ADDRESS in reader-SITE's GAL
  curl -sf -u "reader-$1@example.test:correct horse" \
    "http://127.0.0.1:$(davp "$1")/dav/addressbooks/$(id_of "$1" "reader-$1@example.test")/gal/$2.vcf"
}
has_site_a() { gal_card "$1" "$2" | grep '^X-MAILYARD-SITE:a' >/dev/null; }
t0=$(date +%s%N)
ms a user add dave@example.test -name 'Dave on A' -password 'correct horse' >/dev/null
wait_for 10 "dave@example.test in b's GAL" has_site_a b dave@example.test
wait_for 10 "dave@example.test in c's GAL" has_site_a c dave@example.test
echo "ok: a user created on a is in b's and c's GAL after $((($(date +%s%N) - t0) / 1000000)) ms"
gal_card c dave@example.test | tr -d '\r' | grep -E '^(FN|EMAIL|X-MAILYARD-SITE)'

# 3. Mail for him at c's MX lands in a's mailbox.
ms c route explain dave@example.test | grep 'site a' >/dev/null || fail "route explain on c does not name site a: $(ms c route explain dave@example.test)"
swaks --silent 2 --server 127.0.0.1 --port "$(smtp c)" --from someone@outside.test --to dave@example.test \
  --header 'Subject: via site c' --body 'cross-site' || fail "c's MX refused mail for a's user"
in_mailbox() { ms "$1" mail list "$2" | grep "$3" >/dev/null; }
wait_for 20 "mail for dave@example.test sent to c arrives at a" in_mailbox a dave@example.test 'via site c'
echo "ok: swaks to a's user at c's MX landed in a's mailbox"

# 3b. Free/busy across sites: an event in reader-b's calendar on b shows
# busy to a query from c (c asks b over NATS; b answers with dav.FreeBusy).
day=$(date -u -d tomorrow +%Y%m%d)
bid=$(id_of b reader-b@example.test)
curl -sf -o /dev/null -u 'reader-b@example.test:correct horse' -X MKCALENDAR \
  "http://127.0.0.1:$(davp b)/dav/calendars/$bid/work/" || fail "MKCALENDAR of reader-b's calendar on b"
printf 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//interop-geo//EN\r\nBEGIN:VEVENT\r\nUID:geo-busy-1\r\nDTSTAMP:%sT000000Z\r\nDTSTART:%sT100000Z\r\nDTEND:%sT110000Z\r\nSUMMARY:busy\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n' "$day" "$day" "$day" |
  curl -s -o "$work/put.out" -w '%{http_code}' -u 'reader-b@example.test:correct horse' -X PUT -H 'Content-Type: text/calendar' \
    --data-binary @- "http://127.0.0.1:$(davp b)/dav/calendars/$bid/work/busy.ics" >"$work/put.code"
grep -q '^20[14]$' "$work/put.code" || fail "PUT of an event on b: $(cat "$work/put.code") $(cat "$work/put.out")"
d=$(date -u -d tomorrow +%Y-%m-%d)
fb=$(ms c geo freebusy reader-b@example.test -from "${d}T00:00:00Z" -to "${d}T23:59:59Z") || fail "geo freebusy on c: $fb"
grep -q "reader-b@example.test *${d}T10:00:00Z *${d}T11:00:00Z *BUSY" <<<"$fb" || fail "c does not see b's event as busy: $fb"
echo "ok: an event on b shows busy to a free/busy query from c"

# 4. One address on b and on c: a conflict on every site; its mail stays local.
ms b user add dup@example.test -password 'correct horse' >/dev/null
ms c user add dup@example.test -password 'correct horse' >/dev/null
conflict_on() { ms "$1" geo conflicts | grep duplicate_address | grep dup@example.test >/dev/null; }
for s in "${sites[@]}"; do wait_for 15 "conflict for dup@example.test on site $s" conflict_on "$s"; done
ms a geo conflicts
for s in b c; do
  swaks --silent 2 --server 127.0.0.1 --port "$(smtp "$s")" --from someone@outside.test --to dup@example.test \
    --header "Subject: dup via $s" --body 'stays here' || fail "$s refused mail for its own dup@example.test"
done
wait_for 10 "dup mail sent to b stays on b" in_mailbox b dup@example.test 'dup via b'
wait_for 10 "dup mail sent to c stays on c" in_mailbox c dup@example.test 'dup via c'
! in_mailbox b dup@example.test 'dup via c' || fail "mail for the conflicting address crossed from c to b"
! in_mailbox c dup@example.test 'dup via b' || fail "mail for the conflicting address crossed from b to c"
# a does not hold it and must not guess: no route to either site.
explain=$(ms a route explain dup@example.test)
grep -q 'reject dup@example.test' <<<"$explain" && ! grep -q 'remote-site' <<<"$explain" ||
  fail "a routes the conflicting address: $explain"
# Clearing the record resolves nothing: it comes back.
ms a geo clear b duplicate_address dup@example.test >/dev/null
wait_for 15 "cleared conflict comes back on a" conflict_on a
echo "ok: duplicate address is a conflict on a, b and c; its mail stayed local; clear brings it back"

# gal_list SITE: the entries of reader-SITE's GAL (CardDAV, Depth 1), sorted.
gal_list() {
  curl -sf -X PROPFIND -H 'Depth: 1' -u "reader-$1@example.test:correct horse" \
    "http://127.0.0.1:$(davp "$1")/dav/addressbooks/$(id_of "$1" "reader-$1@example.test")/gal/" |
    grep -o 'gal/[^<]*\.vcf' | sed 's|^gal/||; s|\.vcf$||' | sort
}
# same_gal WANT: every site's GAL lists exactly WANT (sorted, one per line).
same_gal() { local s; for s in "${sites[@]}"; do [ "$(gal_list "$s")" = "$1" ] || return 1; done; }
received_from() { # received_from SITE PEER: SITE's count of PEER's records since it started
  ms "$1" geo status -json | python3 -c 'import json,sys; print([l["Received"] for l in json.load(sys.stdin)["links"] if l["Peer"]==sys.argv[1]][0])' "$2"
}

# 5. Partition and heal.
ms a user add erin@example.test -password 'correct horse' >/dev/null
wait_for 15 "erin@example.test in c's GAL" has_site_a c erin@example.test
stop_site() { kill "${pids[$1]}"; wait "${pids[$1]}" 2>/dev/null || true; unset "pids[$1]"; }
stop_site c
ms a user add pa@example.test -password 'correct horse' >/dev/null
ms a user set dave@example.test -name 'Dave Renamed' >/dev/null
ms a user delete erin@example.test --yes >/dev/null 2>&1 || fail "deleting erin on a"
ms b user add pb@example.test -password 'correct horse' >/dev/null
ms b user delete dup@example.test --yes >/dev/null 2>&1 || fail "deleting dup on b"
start_site c
wait_port 127.0.0.1 "$(davp c)" 30 || fail "site c did not restart"
want=$(printf '%s@example.test\n' dave dup pa pb reader-a reader-b reader-c | sort)
wait_for 20 "the three GALs converge after the partition" same_gal "$want"
gal_card c dave@example.test | grep -q '^FN:Dave Renamed' || fail "c's GAL lacks the rename made during the partition"
echo "ok: partition and heal: a, b and c list the same $(wc -l <<<"$want") GAL entries, none lost, none twice, erin gone"

# 6. SIGKILL mid-stream: c dies while a publishes, and resumes.
( for i in 01 02 03 04 05 06 07 08 09 10 11 12; do ms a user add "burst$i@example.test" -password x >/dev/null; done ) &
burst=$!
wait_for 20 "c holds the start of a's burst" has_site_a c burst02@example.test
kill -KILL "${pids[c]}"
wait "${pids[c]}" 2>/dev/null || true
unset 'pids[c]'
wait "$burst" || fail "a's burst of users"
start_site c
wait_port 127.0.0.1 "$(davp c)" 30 || fail "site c did not restart"
want=$(printf '%s\n' "$want" $(printf 'burst%02d@example.test ' $(seq 1 12)) | sort)
wait_for 20 "the three GALs converge after c's SIGKILL" same_gal "$want"
wait_for 20 "links of site c green again" all_green c
# a's stream holds one record per entry a ever published (reader-a, dave,
# erin, pa, 12 burst users, its site record): 17. A new snapshot would
# bring them all; resuming brings the burst users c had not acknowledged.
got=$(received_from c a)
[ "$got" -ge 1 ] && [ "$got" -lt 17 ] || fail "c received $got records of a after its restart: want 1-16 (resumed), not a snapshot"
metrics=$(curl -sf "http://127.0.0.1:$(http c)/metrics")
grep -q 'mailyard_geo_link_up{peer="a"} 1' <<<"$metrics" || fail "c's /metrics lacks mailyard_geo_link_up for a"
echo "ok: c killed with SIGKILL mid-stream: restarted, it read $got of a's records (resumed, no snapshot), links green, all three GALs equal"

  stop_sites
}

scenario embedded
scenario external
echo "PASS interop-geo ($(($(date +%s) - begin))s)"
