#!/usr/bin/env bash
# The README's five-minute walkthrough, run as written: the sh block under
# "## Five-minute walkthrough" is executed line by line in a copy of the
# tree, on the default ports, with only the resolver changed (a loopback
# DNS stub answering NXDOMAIN, through $MAILYARD_CONFIG, since CI has no
# DNS). After a line that starts the server in the background the script
# waits for its ports, as a person reading along would. Then it checks that
# both messages arrived and that `kill %1` stopped the server cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh
repo=$PWD
work=$(mktemp -d)
stub=
cleanup() {
  [ -n "$stub" ] && kill "$stub" 2>/dev/null
  pkill -f "$work/tree/bin/mailserver" 2>/dev/null || true
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# The default ports must be free, or the walkthrough cannot run as written.
for p in 2525 2587 2465 2143 2993 8080 8443; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "FAIL: port $p is taken; the walkthrough uses the default ports"; exit 1; fi
done

mkdir "$work/tree"
tar -C "$repo" --exclude=./.git --exclude=./data --exclude=./bin -cf - . | tar -C "$work/tree" -xf -

python3 .ci/dns_stub.py >"$work/stub.port" &
stub=$!
for _ in $(seq 50); do [ -s "$work/stub.port" ] && break; sleep 0.1; done
printf '[dns]\nserver = "127.0.0.1:%s"\ntimeout = "2s"\n' "$(cat "$work/stub.port")" >"$work/dns.toml"

# The block: from the heading to the end of its first sh fence.
awk '/^## Five-minute walkthrough/{h=1} h&&/^```sh$/{f=1;next} f&&/^```$/{exit} f' README.md >"$work/block.sh"
[ -s "$work/block.sh" ] || { echo "FAIL: no sh block under '## Five-minute walkthrough' in README.md"; exit 1; }
grep -q '&[[:space:]]*\(#.*\)\?$' "$work/block.sh" || { echo "FAIL: the walkthrough starts no server in the background"; exit 1; }

# One script: each README line as written, a wait for the ports after the
# line that backgrounds the server, and at the end a wait for the server's
# exit status after `kill %1`.
{
  echo 'set -eo pipefail'
  echo ". '$repo/.ci/lib.sh'"
  echo "export MAILYARD_CONFIG='$work/dns.toml'"
  while IFS= read -r line; do
    printf '%s\n' "$line"
    if [[ $line =~ \&[[:space:]]*(#.*)?$ && ! $line =~ \\$ ]]; then
      echo 'for p in 2525 2587 2465 2143 2993 8443; do wait_port 127.0.0.1 $p 60; done'
    fi
  done <"$work/block.sh"
  echo 'wait %1; echo "server exit status $?"'
} >"$work/run.sh"

echo "-- the README walkthrough (first build takes about a minute)"
if ! (cd "$work/tree" && timeout 600 bash "$work/run.sh") >"$work/out.log" 2>&1; then
  cat "$work/out.log"; echo "FAIL: the walkthrough did not run as written"; exit 1
fi
grep -q 'Subject: hello' "$work/out.log" || { cat "$work/out.log"; echo "FAIL: mail cat did not show the submitted message"; exit 1; }
n=$(cd "$work/tree" && MAILYARD_CONFIG="$work/dns.toml" bin/mailserver mail list bob@example.com INBOX | tail -n +2 | grep -c .)
[ "$n" = 2 ] || { cat "$work/out.log"; echo "FAIL: bob's INBOX holds $n messages, want 2 (submission and MX)"; exit 1; }
grep -q 'server exit status 0' "$work/out.log" || { cat "$work/out.log"; echo "FAIL: kill %1 did not stop the server cleanly"; exit 1; }
echo "PASS: the README walkthrough runs as written"
