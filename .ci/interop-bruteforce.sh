#!/usr/bin/env bash
# Attacker's and victim's view, in real time, on the reference server:
#  1. alice logs in over IMAPS from 127.0.0.1, her usual address.
#  2. For DURATION seconds (default 300) 20 attackers, one per source
#     address 127.0.0.2-127.0.0.21 (all on lo), guess alice's password as
#     fast as the server lets them: a new guess as soon as a wrong one is
#     answered, another 0.2 s after a refusal, a reconnect when dropped.
#     Ten guess over IMAPS (LOGIN), ten over the DAV listener (HTTP Basic
#     on a kept-alive HTTPS connection: 401 wrong, 429 refused); both
#     reserve their checks with the one shared auth limiter.
#  3. Meanwhile alice logs in from 127.0.0.1 every VICTIM_EVERY seconds,
#     over IMAPS and over DAV in turn, and once more on each after the
#     attack.
# It fails if alice is ever refused, or if the server's count of password
# checks caused by clients without a recent success there (/metrics:
# mailyard_auth_password_checks_total, classes fresh and stranger) exceeds
# the bound package authlimit states: the stranger budget
# (auth_stranger_checks per auth_stranger_window, longer than the attack)
# plus one check per address without failures (the 20 attackers and
# alice's first login).
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh
DURATION=${DURATION:-300}
VICTIM_EVERY=${VICTIM_EVERY:-3}
BUDGET=${BUDGET:-10}
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- server log"; tail -30 "$work/server.log"; exit 1; }

build_mailserver "$work"
ms() { "$work/mailserver" -config "$work/cfg.toml" "$@"; }
smtp=$(free_port); sub=$(free_port); subs=$(free_port); http=$(free_port); imaps=$(free_port); dav=$(free_port)
write_config "$work/cfg.toml" "$work/data" "$smtp" "$sub" "$subs" "$http" "" "$imaps" "$dav"
# The window is longer than the attack, so the whole run sees one budget.
sed -i "/^max_conns_per_ip/a auth_stranger_checks = $BUDGET\nauth_stranger_window = \"1h\"" "$work/cfg.toml"
ms init
ms domain add example.test
ms user add alice@example.test -password 'correct horse'
"$work/mailserver" -config "$work/cfg.toml" serve >"$work/server.log" 2>&1 &
pid=$!
wait_port 127.0.0.1 "$imaps" || fail "no IMAPS listener"
wait_port 127.0.0.1 "$http" || fail "no HTTP listener"
wait_port 127.0.0.1 "$dav" || fail "no DAV listener"

echo "-- $DURATION s: 20 attackers (127.0.0.2-21; IMAPS and DAV) against alice; alice logs in from 127.0.0.1 every $VICTIM_EVERY s"
python3 - "$imaps" "$http" "$DURATION" "$VICTIM_EVERY" "$BUDGET" "$dav" <<'PY' || fail "brute force"
import base64, http.client, socket, ssl, sys, threading, time, urllib.request

port, http_port, duration, every, budget, dav_port = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
user, password = "alice@example.test", "correct horse"
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

class Conn:
    def __init__(self, source):
        raw = socket.create_connection(("127.0.0.1", port), timeout=60, source_address=(source, 0))
        self.s = ctx.wrap_socket(raw)
        self.f = self.s.makefile("rb")
        self.n = 0
        greeting = self.f.readline()
        if not greeting.startswith(b"* OK"):
            raise ConnectionError("greeting %r" % greeting)
    def cmd(self, line):
        self.n += 1
        tag = b"t%d" % self.n
        self.s.sendall(tag + b" " + line.encode() + b"\r\n")
        while True:
            l = self.f.readline()
            if not l:
                raise ConnectionError("connection closed")
            if l.startswith(tag + b" "):
                return l[len(tag) + 1:].decode().strip()
    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

def login(source):
    c = Conn(source)
    try:
        return c.cmd('LOGIN %s "%s"' % (user, password))
    finally:
        c.close()

PROPFIND = b'<?xml version="1.0"?><propfind xmlns="DAV:"><prop><current-user-principal/></prop></propfind>'

class DAV:
    """A kept-alive HTTPS connection to the DAV listener from source."""
    def __init__(self, source):
        self.h = http.client.HTTPSConnection("127.0.0.1", dav_port, timeout=60, context=ctx, source_address=(source, 0))
    def propfind(self, pw):
        auth = base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()
        self.h.request("PROPFIND", "/dav/", body=PROPFIND, headers={"Authorization": "Basic " + auth, "Depth": "0", "Content-Type": "application/xml"})
        r = self.h.getresponse()
        r.read()
        if r.getheader("Connection", "").lower() == "close":
            self.close()
            self.h = None
        return r.status
    def close(self):
        if self.h:
            self.h.close()

def dav_login(source):
    d = DAV(source)
    try:
        st = d.propfind(password)
    finally:
        d.close()
    return "OK dav" if st == 207 else "dav status %d" % st

first = login("127.0.0.1")
assert first.startswith("OK"), first
deadline = time.monotonic() + duration
lock = threading.Lock()
counts = {"guesses": 0, "wrong": 0, "refused": 0, "reconnects": 0, "other": 0, "dav": 0}
victim = {"ok": 0, "dav": 0, "refused": []}

def dav_attacker(i):
    source = "127.0.0.%d" % (2 + i)
    d, n = None, 0
    while time.monotonic() < deadline:
        try:
            if d is None or d.h is None:
                d = DAV(source)
                with lock:
                    counts["reconnects"] += 1
            n += 1
            st = d.propfind("guess-%d-%d" % (i, n))
        except (OSError, http.client.HTTPException):
            d = None
            time.sleep(0.2)
            continue
        with lock:
            counts["guesses"] += 1
            counts["dav"] += 1
            if st == 401:
                counts["wrong"] += 1
            elif st == 429:
                counts["refused"] += 1
            else:
                counts["other"] += 1
        if st == 207:
            raise SystemExit("DAV attacker %s logged in" % source)
        if st == 429:
            time.sleep(0.2)
    if d:
        d.close()

def attacker(i):
    source = "127.0.0.%d" % (2 + i)
    c, n = None, 0
    while time.monotonic() < deadline:
        try:
            if c is None:
                c = Conn(source)
                with lock:
                    counts["reconnects"] += 1
            n += 1
            st = c.cmd('LOGIN %s "guess-%d-%d"' % (user, i, n))
        except (OSError, ConnectionError):
            c = None
            time.sleep(0.2)
            continue
        with lock:
            counts["guesses"] += 1
            if "[AUTHENTICATIONFAILED]" in st:
                counts["wrong"] += 1
            elif "[UNAVAILABLE]" in st:
                counts["refused"] += 1
            else:
                counts["other"] += 1
        if st.startswith("OK"):
            raise SystemExit("attacker %s logged in: %s" % (source, st))
        if "[UNAVAILABLE]" in st:
            time.sleep(0.2)
    if c:
        c.close()

def owner():
    turn = 0
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        turn += 1
        try:
            st = dav_login("127.0.0.1") if turn % 2 == 0 else login("127.0.0.1")
        except (OSError, ConnectionError, http.client.HTTPException) as e:
            st = "error %s" % e
        with lock:
            if st.startswith("OK"):
                victim["ok"] += 1
                victim["dav"] += st == "OK dav"
            else:
                victim["refused"].append((round(duration - (deadline - t0), 1), st))
        time.sleep(max(0, every - (time.monotonic() - t0)))

threads = [threading.Thread(target=attacker, args=(i,)) for i in range(10)] + \
    [threading.Thread(target=dav_attacker, args=(i,)) for i in range(10, 20)] + [threading.Thread(target=owner)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for name, fn in (("IMAPS", login), ("DAV", dav_login)):
    st = fn("127.0.0.1")
    if not st.startswith("OK"):
        raise SystemExit("after the attack alice's %s login: %s" % (name, st))

metrics = {}
for line in urllib.request.urlopen("http://127.0.0.1:%d/metrics" % http_port, timeout=30).read().decode().splitlines():
    if line.startswith("mailyard_auth_"):
        name, value = line.rsplit(" ", 1)
        metrics[name] = float(value)
checks = {c: int(metrics['mailyard_auth_password_checks_total{class="%s"}' % c]) for c in ("trusted", "fresh", "stranger")}
refused = {k.split('"')[1]: int(v) for k, v in metrics.items() if k.startswith("mailyard_auth_refused_total")}
limit = int(metrics["mailyard_auth_stranger_checks_limit"])
untrusted = checks["fresh"] + checks["stranger"]
bound = limit + 20 + 1  # the budget, one per attacker address, alice's first login
print("attackers: %(guesses)d guesses (%(dav)d over DAV), %(wrong)d answered wrong password, %(refused)d refused, %(reconnects)d connections" % counts)
print("alice: %d logins ok (%d over DAV), %d refused" % (victim["ok"], victim["dav"], len(victim["refused"])))
print("server: password checks %s; untrusted %d (bound %d: budget %d + 20 addresses + 1); refused %s" % (checks, untrusted, bound, limit, refused))
if victim["refused"]:
    raise SystemExit("alice was refused: %s" % victim["refused"][:5])
if victim["ok"] < max(1, int(duration / every) - 2):
    raise SystemExit("alice logged in only %d times" % victim["ok"])
if limit != budget:
    raise SystemExit("server budget %d, configured %d" % (limit, budget))
if checks["stranger"] > budget:
    raise SystemExit("%d stranger checks, budget %d" % (checks["stranger"], budget))
if untrusted > bound:
    raise SystemExit("%d password checks by untrusted clients, bound %d" % (untrusted, bound))
if counts["wrong"] > untrusted - 1:
    raise SystemExit("attackers saw %d wrong-password answers but the server counts %d checks" % (counts["wrong"], untrusted - 1))
if victim["dav"] < 1:
    raise SystemExit("alice never logged in over DAV during the attack")
if counts["other"] or counts["guesses"] <= bound or counts["dav"] == 0 or counts["dav"] == counts["guesses"]:
    raise SystemExit("the attack did not exercise the limits: %s" % counts)
print("ok: alice never refused; password checks within the bound")
PY
