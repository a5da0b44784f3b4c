#!/usr/bin/env bash
# Interop: our DKIM against two independent implementations, for RSA and
# Ed25519 (RFC 8463).
#  1. Our signatures (a dual RSA+Ed25519 message, and one message per
#     algorithm) verify with dkimpy (python3-dkim): with dkim.verify() fed
#     our TXT records, and with the dkimverify command itself.
#  2. Our signatures verify with OpenDKIM's opendkim-testmsg; a tampered
#     copy fails there.
#  3. dkimpy's dkimsign signatures (RSA, Ed25519; simple and relaxed
#     canonicalisation) verify with ours; a tampered copy fails.
#  4. A dkimpy l= signature with appended content is "policy" for us, and
#     opendkim-testmsg's rsa-sha1 signature is refused (RFC 8301).
# dkimverify and opendkim-testmsg look keys up in DNS and cannot be given
# a key file, so they run in a private network and mount namespace
# (unshare) where /etc/resolv.conf points at our test DNS server on
# 127.0.0.1:53 serving the TXT records; nothing outside is touched.
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PATH=$PATH:/usr/sbin:/sbin
PY=/usr/bin/python3 # Debian's python3-dkim lives in the system Python
fail() { echo "FAIL: $*"; exit 1; }
for c in dkimsign dkimverify opendkim-testmsg unshare ip; do
  command -v "$c" >/dev/null || fail "peer $c missing (run .ci/peers.sh)"
done
$PY -c 'import dkim, nacl' || fail "python3-dkim or python3-nacl missing for $PY"

build_bin "$work" ./dkim/internal/dkiminterop
di() { "$work/dkiminterop" "$@"; }
cd "$work"

printf 'From: Alice <alice@%s>\r\nTo: Bob <bob@example.net>\r\nSubject: DKIM interop\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\nMessage-ID: <interop@example.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello   Bob,  \r\n\r\n\tindented line with trailing tab\t\r\n.a line that starts with a dot\r\n\r\n\r\n' \
  dual.example.test >dual.eml
sed 's/@dual\.example\.test/@rsa.example.test/' dual.eml >rsa.eml
sed 's/@dual\.example\.test/@ed.example.test/' dual.eml >ed.eml

echo "-- keys: generate, activate, export through the dkim package (SQLite store)"
di keygen -store st -domain dual.example.test -selector r1 -alg rsa -pem dual-r1.pem -txt dual-r1.txt
di keygen -store st -domain dual.example.test -selector e1 -alg ed25519 -pem dual-e1.pem -txt dual-e1.txt
di keygen -store st -domain rsa.example.test -selector r1 -alg rsa -pem rsa-r1.pem -txt rsa-r1.txt
di keygen -store st -domain ed.example.test -selector e1 -alg ed25519 -pem ed-e1.pem -txt ed-e1.txt -seed ed-e1.seed
zone=(-txt r1._domainkey.dual.example.test=dual-r1.txt -txt e1._domainkey.dual.example.test=dual-e1.txt
  -txt r1._domainkey.rsa.example.test=rsa-r1.txt -txt e1._domainkey.ed.example.test=ed-e1.txt)

di sign -store st -domain dual.example.test <dual.eml >dual.signed
di sign -store st -domain rsa.example.test <rsa.eml >rsa.signed
di sign -store st -domain ed.example.test <ed.eml >ed.signed
[ "$(grep -c '^DKIM-Signature:' dual.signed)" = 2 ] || fail "dual signing did not add two signatures"
grep -q 'a=ed25519-sha256' dual.signed && grep -q 'a=rsa-sha256' dual.signed || fail "dual signing algorithms"

cat >verify.py <<'PY'
# dkim.verify() of every signature, with our TXT records as its DNS.
import sys, dkim
msg = open(sys.argv[1], 'rb').read()
recs = {}
for a in sys.argv[2:]:
    name, f = a.split('=', 1)
    recs[name.rstrip('.') + '.'] = open(f, 'rb').read().strip()
d = dkim.DKIM(msg)
n = sum(1 for h in d.headers if h[0].lower() == b'dkim-signature')
ok = n > 0
for i in range(n):
    try:
        r = d.verify(idx=i, dnsfunc=lambda name, timeout=5: recs.get(name.decode()))
        why = ""
    except dkim.DKIMException as e:
        r, why = False, " (%s)" % e
    print("  dkimpy: signature %d %s%s" % (i, "pass" if r else "FAIL", why))
    ok = ok and r
sys.exit(0 if ok else 1)
PY
pyzone=(r1._domainkey.dual.example.test=dual-r1.txt e1._domainkey.dual.example.test=dual-e1.txt
  r1._domainkey.rsa.example.test=rsa-r1.txt e1._domainkey.ed.example.test=ed-e1.txt)

echo "-- 1. our signatures verify with dkimpy (dkim.verify)"
for m in dual rsa ed; do
  $PY verify.py $m.signed "${pyzone[@]}" || fail "dkimpy rejected our $m signature(s)"
done
sed 's/line that starts/line that STARTS/' dual.signed >dual.tampered
if $PY verify.py dual.tampered "${pyzone[@]}" >/dev/null; then fail "dkimpy accepted a tampered message"; fi
echo "  dkimpy: tampered copy fails, as it should"

echo "-- 2. dkimverify and opendkim-testmsg, with DNS served in a private namespace"
echo "nameserver 127.0.0.1" >resolv.conf
sed 's/line that starts/line that STARTS/' rsa.signed >rsa.tampered
sed 's/line that starts/line that STARTS/' ed.signed >ed.tampered
cat >netns.sh <<'SH'
set -euo pipefail
ip link set lo up
mount --bind "$PWD/resolv.conf" /etc/resolv.conf
./dkiminterop dns -listen 127.0.0.1:53 "$@" &
dns=$!
trap 'kill $dns 2>/dev/null; wait $dns 2>/dev/null || true' EXIT
for i in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/53) 2>/dev/null && break; sleep 0.1; done
for m in rsa ed dual; do
  dkimverify <$m.signed >dv.out 2>&1 || { cat dv.out; echo "FAIL: dkimverify rejected our $m signature"; exit 1; }
  echo "  dkimverify $m: $(cat dv.out)"
done
dkimverify --index 1 <dual.signed >dv.out 2>&1 || { cat dv.out; echo "FAIL: dkimverify rejected our second dual signature"; exit 1; }
echo "  dkimverify dual --index 1: $(cat dv.out)"
for m in rsa ed; do
  opendkim-testmsg <$m.signed || { echo "FAIL: opendkim-testmsg rejected our $m signature"; exit 1; }
  echo "  opendkim-testmsg $m: pass"
  if opendkim-testmsg <$m.tampered 2>/dev/null; then echo "FAIL: opendkim-testmsg accepted a tampered $m message"; exit 1; fi
  echo "  opendkim-testmsg $m tampered: fail, as it should"
done
SH
unshare --net --mount bash netns.sh "${zone[@]}" || fail "verification in the private namespace (see above)"

echo "-- 3. dkimsign signatures verify with ours"
for alg in rsa ed25519; do
  if [ $alg = rsa ]; then key=rsa-r1.pem dom=rsa.example.test; else key=ed-e1.seed dom=ed.example.test; fi
  for canon in "simple simple" "relaxed relaxed" "relaxed simple"; do
    set -- $canon
    dkimsign --hcanon "$1" --bcanon "$2" --signalg "$alg-sha256" e1 "$dom" "$key" <"${dom%%.*}.eml" >py.signed
    # dkimsign signs with selector e1; publish the key under that name.
    txt=$([ $alg = rsa ] && echo rsa-r1.txt || echo ed-e1.txt)
    di verify -txt "e1._domainkey.$dom=$txt" <py.signed >ours.out || { cat ours.out; fail "we rejected dkimpy's $alg $1/$2 signature"; }
    grep -q "dkim=pass header.a=$alg-sha256" ours.out || { cat ours.out; fail "no dkim=pass for dkimpy's $alg $1/$2"; }
    echo "  ours: dkimpy $alg $1/$2 pass"
    sed 's/Hello/Jello/' py.signed | di verify -want fail -txt "e1._domainkey.$dom=$txt" >/dev/null \
      || fail "we did not fail a tampered dkimpy $alg message"
  done
done

echo "-- 4a. l= with appended content is not a pass"
$PY - rsa-r1.pem rsa.eml <<'PY' >len.signed
import sys, dkim
key = open(sys.argv[1], 'rb').read()
msg = open(sys.argv[2], 'rb').read()
sys.stdout.buffer.write(dkim.sign(msg, b'r1', b'rsa.example.test', key, length=True) + msg)
PY
grep -q 'l=' len.signed || fail "dkimpy did not add l="
$PY verify.py len.signed "${pyzone[@]}" >/dev/null || fail "dkimpy rejects its own l= signature"
printf '\r\nAppended: wire the money to account 666.\r\n' >>len.signed
$PY verify.py len.signed "${pyzone[@]}" >/dev/null || fail "dkimpy should still pass l= with appended content"
di verify -want policy "${zone[@]}" <len.signed >ours.out || { cat ours.out; fail "l= with appended content not policy"; }
echo "  dkimpy: pass (l= ignores the appended text); ours: $(grep -o 'dkim=policy' ours.out)"

echo "-- 4b. opendkim-testmsg signs rsa-sha1, which we refuse (RFC 8301 §3.1)"
opendkim-testmsg -d rsa.example.test -s r1 -k rsa-r1.pem <rsa.eml >sha1.signed
grep -q 'a=rsa-sha1' sha1.signed || fail "opendkim-testmsg did not sign rsa-sha1"
di verify -want permerror "${zone[@]}" <sha1.signed >ours.out || { cat ours.out; fail "rsa-sha1 not refused"; }
echo "  ours: $(grep -o 'dkim=permerror reason="[^"]*"' ours.out)"

echo "interop-dkim: ok"
