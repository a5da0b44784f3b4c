#!/usr/bin/env python3
"""IMAP interop with python's imaplib, for .ci/interop-imap.sh.

  corpus DIR                 writes the test messages (CRLF, varied shapes)
                             to DIR/NN.eml and DIR/manifest.json
  populate HOST PORT USER PASS DIR
                             APPENDs every corpus message to INBOX with its
                             flags and INTERNALDATE; checks each APPEND
  check-far HOST PORT USER PASS MESSAGE-ID FLAG [EML]
                             the message with that Message-ID has FLAG (- for
                             any flags); with
                             EML its bytes equal that file
  check-delivered HOST PORT USER PASS SENT-EML
                             the newest message in INBOX ends with SENT-EML
                             (below the trace fields a delivering server adds)
  session HOST PORT USER PASS DIR
                             a scripted session: APPEND, SEARCH (several
                             keys), FETCH partial BODY[]<0.100>, STORE, COPY,
                             MOVE, EXPUNGE; every response is checked

Connections use STARTTLS when the server offers it (certificate not
verified: a self-signed one on loopback), plain LOGIN otherwise. Any
mismatch raises, so the exit status is non-zero.
"""
import email.utils
import imaplib
import json
import os
import random
import re
import ssl
import sys
import time

# ------------------------------------------------------------------ corpus

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo "
         "lima mike november oscar papa quebec romeo sierra tango uniform "
         "victor whiskey xray yankee zulu meeting invoice report").split()


def text(r, n):
    lines, line = [], []
    size = 0
    while size < n:
        w = r.choice(WORDS)
        line.append(w)
        size += len(w) + 1
        if sum(len(x) + 1 for x in line) > 66:
            lines.append(" ".join(line))
            line = []
    lines.append(" ".join(line))
    return "\r\n".join(lines) + "\r\n"


def b64(data):
    import base64
    enc = base64.b64encode(data).decode()
    return "\r\n".join(enc[i:i + 76] for i in range(0, len(enc), 76)) + "\r\n"


def headers(i, subject, ctype, extra=""):
    date = email.utils.format_datetime(
        __import__("datetime").datetime(2026, 3, 1, 8, 0, tzinfo=__import__("datetime").timezone.utc)
        + __import__("datetime").timedelta(hours=i))
    return (f"From: Sender {i} <sender{i % 7}@remote.test>\r\n"
            f"To: Alice <alice@example.test>\r\n"
            f"Subject: {subject}\r\n"
            f"Date: {date}\r\n"
            f"Message-ID: <corpus-{i:02d}@interop.test>\r\n"
            f"MIME-Version: 1.0\r\n"
            f"{extra}"
            f"Content-Type: {ctype}\r\n")


def corpus():
    """Yields (name, bytes, flags, note). Deterministic."""
    r = random.Random(1234)
    out = []
    i = 0

    def add(raw, note, flags=None):
        nonlocal i
        if flags is None:
            flags = []
            if i % 3 == 0:
                flags.append("\\Seen")
            if i % 5 == 0:
                flags.append("\\Flagged")
            if i % 11 == 4:
                flags.append("\\Answered")
        out.append((f"{i:02d}", raw if isinstance(raw, bytes) else raw.encode(), flags, note))
        i += 1

    for k in range(10):
        add(headers(i, f"plain note {k} about {r.choice(WORDS)}", "text/plain; charset=us-ascii")
            + "\r\n" + text(r, 200 + 900 * k), "text/plain")
    # A folded header and a word only this message has in its body.
    add(headers(i, "folded subject line that goes on\r\n and on over two lines", "text/plain; charset=us-ascii",
                "X-Long: " + " ".join(["token"] * 30) + "\r\n\t" + " ".join(["more"] * 20) + "\r\n")
        + "\r\nthe needle zanzibarquux is here\r\n" + text(r, 500), "folded headers")
    for k in range(4):
        add(headers(i, f"quoted-printable {k}", "text/plain; charset=utf-8",
                    "Content-Transfer-Encoding: quoted-printable\r\n")
            + "\r\nGr=C3=BC=C3=9Fe aus K=C3=B6ln, line " + str(k) + "=\r\n continued\r\n" + text(r, 400), "qp")
    for k in range(4):
        add((headers(i, f"8bit body {k}", "text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit\r\n")
             + "\r\nGrüße aus Köln — привет, 你好, émoji ✉\r\n" + text(r, 300)), "8bit body")
    # RFC 6532: raw UTF-8 in a header.
    add(headers(i, "Ünïcödé subject ✓", "text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit\r\n")
        + "\r\nbody with ü\r\n", "utf-8 header")
    for k in range(6):
        body = text(r, 300 + 200 * k)
        add(headers(i, f"alternative {k}", f'multipart/alternative; boundary="alt-{k}"')
            + f"\r\nThis is a multi-part message in MIME format.\r\n--alt-{k}\r\n"
            + "Content-Type: text/plain; charset=us-ascii\r\n\r\n" + body
            + f"--alt-{k}\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n<html><body><p>" + body
            + f"</p></body></html>\r\n--alt-{k}--\r\n", "multipart/alternative")
    for k in range(5):
        data = bytes(r.getrandbits(8) for _ in range(10000 * (k + 1)))
        add(headers(i, f"attachment {k}", f'multipart/mixed; boundary="mix-{k}"')
            + f"\r\n--mix-{k}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nsee attached\r\n"
            + f"--mix-{k}\r\nContent-Type: application/pdf; name=\"doc{k}.pdf\"\r\n"
            + f"Content-Disposition: attachment; filename=\"doc{k}.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + b64(data) + f"--mix-{k}--\r\n", "attachment")
    inner = (headers(99, "the original", "text/plain; charset=us-ascii") + "\r\n" + text(r, 600))
    for k in range(2):
        add(headers(i, f"forwarded {k}", f'multipart/mixed; boundary="fwd-{k}"')
            + f"\r\n--fwd-{k}\r\nContent-Type: text/plain\r\n\r\nforwarding this\r\n"
            + f"--fwd-{k}\r\nContent-Type: message/rfc822\r\n\r\n" + inner + f"\r\n--fwd-{k}--\r\n", "message/rfc822")
    nested = (headers(98, "nested original", 'multipart/alternative; boundary="in-alt"')
              + "\r\n--in-alt\r\nContent-Type: text/plain\r\n\r\ninner plain\r\n"
              + "--in-alt\r\nContent-Type: text/html\r\n\r\n<p>inner html</p>\r\n--in-alt--\r\n")
    add(headers(i, "bare message/rfc822", "message/rfc822") + "\r\n" + nested, "message/rfc822 top level")
    add(headers(i, "related", 'multipart/mixed; boundary="outer"')
        + "\r\n--outer\r\nContent-Type: multipart/related; boundary=\"rel\"\r\n\r\n"
        + "--rel\r\nContent-Type: text/html\r\n\r\n<img src=\"cid:img1\">\r\n"
        + "--rel\r\nContent-Type: image/png\r\nContent-ID: <img1>\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + b64(bytes(range(256)) * 8) + "--rel--\r\n"
        + "--outer\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=\"notes.txt\"\r\n\r\n"
        + text(r, 200) + "--outer--\r\n", "nested multipart")
    add(headers(i, "dots and From lines", "text/plain")
        + "\r\n.a line starting with a dot\r\n..two dots\r\nFrom the start of a line\r\n>From quoted\r\n.\r\nend\r\n",
        "dots")
    add(headers(i, "empty body", "text/plain") + "\r\n", "empty body")
    add(headers(i, "no final newline", "text/plain") + "\r\nthe last line has no CRLF", "no final CRLF")
    add(headers(i, "long line", "text/plain") + "\r\n" + ("x" * 990) + "\r\n", "990-char line")
    big = bytes(r.getrandbits(8) for _ in range(760 * 1024))
    add(headers(i, "large one", 'multipart/mixed; boundary="big"')
        + "\r\n--big\r\nContent-Type: text/plain\r\n\r\nthe big one\r\n"
        + "--big\r\nContent-Type: application/octet-stream; name=\"big.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + b64(big) + "--big--\r\n", "1 MB", flags=["\\Seen"])
    return out


def write_corpus(d):
    os.makedirs(d, exist_ok=True)
    manifest = []
    for name, raw, flags, note in corpus():
        with open(os.path.join(d, name + ".eml"), "wb") as f:
            f.write(raw)
        mid = re.search(rb"^Message-ID: (<[^>]+>)", raw, re.M | re.I).group(1).decode()
        manifest.append({"name": name, "message_id": mid, "flags": flags, "size": len(raw), "note": note,
                         "date": internaldate(int(name))})
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(f"corpus: {len(manifest)} messages, {sum(m['size'] for m in manifest)} bytes, largest "
          f"{max(m['size'] for m in manifest)}")


def internaldate(i):
    # dd-Mon-yyyy hh:mm:ss +zzzz, distinct per message.
    t = time.gmtime(1772352000 + i * 3600)  # 2026-03-01 08:00 UTC
    return time.strftime("%d-%b-%Y %H:%M:%S +0000", t)


def load(d):
    with open(os.path.join(d, "manifest.json")) as f:
        manifest = json.load(f)
    for m in manifest:
        with open(os.path.join(d, m["name"] + ".eml"), "rb") as f:
            m["raw"] = f.read()
    return manifest


# ------------------------------------------------------------------ helpers

class Mismatch(Exception):
    pass


def expect(cond, what, got=None):
    if not cond:
        raise Mismatch(what + ("" if got is None else f": got {got!r}"[:600]))


def ok(resp, what):
    typ, data = resp
    expect(typ == "OK", f"{what}: not OK", (typ, data))
    return data


def connect(host, port, user, password):
    m = imaplib.IMAP4(host, int(port), timeout=60)
    caps = m.capabilities
    if "STARTTLS" in caps:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ok(m.starttls(ctx), "STARTTLS")
    ok(m.login(user, password), "LOGIN")
    # Servers announce more after LOGIN (UIDPLUS, MOVE, ...); imaplib keeps
    # the list from before.
    data = ok(m.capability(), "CAPABILITY")
    m.capabilities = tuple(data[-1].decode().upper().split())
    return m


def select(m, box="INBOX", readonly=False):
    data = ok(m.select(box, readonly=readonly), f"SELECT {box}")
    return int(data[0])


def fetch_one(m, uid, item):
    """UID FETCH uid item for one message; returns (all non-literal text of
    the response, the literal or None). Servers order the items as they
    like, so UID or FLAGS may come before or after a literal."""
    typ, data = m.uid("FETCH", str(uid), item)
    expect(typ == "OK", f"UID FETCH {uid} {item}", (typ, data))
    meta, lit = b"", None
    for d in data:
        if d is None:
            continue
        if isinstance(d, tuple):
            meta += d[0] + b" "
            expect(lit is None, f"UID FETCH {uid} {item}: one literal", data)
            lit = d[1]
        else:
            meta += d + b" "
    expect(re.search(rb"UID %d\b" % uid, meta) is not None, f"UID FETCH {uid} {item}: response for the UID", data)
    return meta, lit


def imapset(s):
    """Expands an IMAP sequence set like 3:5,9 into a list of numbers."""
    out = []
    for part in s.split(","):
        lo, _, hi = part.partition(":")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def uid_by_msgid(m, msgid):
    data = ok(m.uid("SEARCH", None, "HEADER", "Message-ID", f'"{msgid}"'), f"SEARCH HEADER Message-ID {msgid}")
    uids = [int(x) for x in data[0].split()]
    return uids


def search(m, *crit):
    data = ok(m.uid("SEARCH", *crit), "UID SEARCH " + " ".join(str(c) for c in crit if c))
    return sorted(int(x) for x in data[0].split())


def flags_of(line):
    mt = re.search(rb"FLAGS \(([^)]*)\)", line)
    expect(mt is not None, "FLAGS in FETCH response", line)
    return set(mt.group(1).decode().split())


# ------------------------------------------------------------------ commands

def populate(host, port, user, password, d):
    manifest = load(d)
    m = connect(host, port, user, password)
    before = select(m)
    expect(before == 0, "INBOX empty before populating", before)
    for msg in manifest:
        typ, data = m.append("INBOX", "(" + " ".join(msg["flags"]) + ")", '"' + msg["date"] + '"', msg["raw"])
        expect(typ == "OK", f"APPEND {msg['name']} ({msg['note']})", (typ, data))
    n = select(m)
    expect(n == len(manifest), "EXISTS after populating", n)
    m.logout()
    print(f"populate: {len(manifest)} messages appended")


def check_far(host, port, user, password, msgid, flag, eml=None):
    m = connect(host, port, user, password)
    select(m, readonly=True)
    uids = uid_by_msgid(m, msgid)
    expect(len(uids) == 1, f"one message {msgid}", uids)
    line, _ = fetch_one(m, uids[0], "(FLAGS)")
    if flag != "-":
        expect(flag in flags_of(line), f"{msgid} has {flag}", line)
    if eml:
        want = open(eml, "rb").read()
        _, body = fetch_one(m, uids[0], "(BODY.PEEK[])")
        # mbsync adds an X-TUID header to what it uploads (its bookkeeping).
        body = re.sub(rb"\r\nX-TUID: [^\r\n]*\r\n", b"\r\n", body, count=1)
        expect(body == want, f"{msgid}: bytes equal {eml} (X-TUID left out)", (len(body or b""), len(want), body))
    m.logout()
    print(f"check-far: {msgid} has {flag}" + (", bytes equal" if eml else ""))


def check_delivered(host, port, user, password, sent):
    want = open(sent, "rb").read()
    msgid = re.search(rb"^Message-ID: (<[^>]+>)", want, re.M | re.I).group(1).decode()
    m = connect(host, port, user, password)
    select(m, readonly=True)
    uids = uid_by_msgid(m, msgid)
    expect(len(uids) == 1, f"one delivered message {msgid}", uids)
    _, body = fetch_one(m, uids[0], "(BODY.PEEK[])")
    # A delivering server prepends trace fields (Return-Path, Received, ...);
    # what the client sent follows them unchanged (swaks ends the data with
    # CRLF . CRLF, which terminates the last line).
    expect(body.endswith(want + b"\r\n"), "delivered message ends with what was sent", body[:300])
    m.logout()
    print(f"check-delivered: {msgid} readable over IMAP, {len(body)} bytes")


def session(host, port, user, password, d):
    manifest = load(d)
    byid = {msg["message_id"]: msg for msg in manifest}
    m = connect(host, port, user, password)
    steps = []

    def step(name):
        steps.append(name)
        print("  -", name)

    n0 = select(m)
    uidvalidity = m.untagged_responses.get("UIDVALIDITY", [b"0"])[-1]
    expect(n0 >= len(manifest), "EXISTS covers the corpus", n0)

    step("every corpus message: RFC822.SIZE, INTERNALDATE, BODY.PEEK[] byte-exact")
    uid_of = {}
    for msg in manifest:
        uids = uid_by_msgid(m, msg["message_id"])
        expect(len(uids) == 1, f"one message {msg['message_id']} ({msg['note']})", uids)
        uid = uids[0]
        uid_of[msg["message_id"]] = uid
        line, body = fetch_one(m, uid, "(RFC822.SIZE INTERNALDATE BODY.PEEK[])")
        expect(body == msg["raw"], f"{msg['name']} ({msg['note']}) byte-exact",
               (len(body or b""), len(msg["raw"]), (body or b"")[:120]))
        size = int(re.search(rb"RFC822\.SIZE (\d+)", line).group(1))
        expect(size == msg["size"], f"{msg['name']} RFC822.SIZE", (size, msg["size"]))
        idate = re.search(rb'INTERNALDATE "([^"]+)"', line).group(1).decode()
        expect(imaplib.Internaldate2tuple(b'INTERNALDATE "' + idate.encode() + b'"')
               == imaplib.Internaldate2tuple(b'INTERNALDATE "' + msg["date"].encode() + b'"'),
               f"{msg['name']} INTERNALDATE", (idate, msg["date"]))

    step("APPEND with flags and date; APPENDUID; read back")
    new = (b"From: Bob <bob@example.test>\r\nTo: Alice <alice@example.test>\r\nSubject: appended by imaplib\r\n"
           b"Message-ID: <session-append@interop.test>\r\nDate: Sun, 01 Mar 2026 12:00:00 +0000\r\n\r\n"
           b"hello from the scripted session\r\nsessionmarker\r\n")
    typ, data = m.append("INBOX", r"(\Flagged $Important)", '"01-Mar-2026 12:00:00 +0000"', new)
    expect(typ == "OK", "APPEND", (typ, data))
    mt = re.search(rb"APPENDUID (\d+) (\d+)", data[0])
    if "UIDPLUS" in m.capabilities or "IMAP4rev2" in m.capabilities:
        expect(mt is not None, "APPENDUID in the APPEND response (UIDPLUS)", data)
        expect(mt.group(1) == uidvalidity, "APPENDUID's UIDVALIDITY", (mt.group(1), uidvalidity))
    n1 = select(m)
    expect(n1 == n0 + 1, "EXISTS after APPEND", (n1, n0))
    [auid] = uid_by_msgid(m, "<session-append@interop.test>")
    if mt:
        expect(int(mt.group(2)) == auid, "APPENDUID equals the UID", (mt.group(2), auid))
    expect(auid > max(uid_of.values()), "new UID above all earlier UIDs", (auid, max(uid_of.values())))
    line, body = fetch_one(m, auid, "(FLAGS BODY.PEEK[])")
    expect(body == new, "appended message byte-exact", body)
    fl = flags_of(line)
    expect("\\Flagged" in fl and "$Important" in fl and "\\Seen" not in fl, "appended flags", fl)

    step("SEARCH: SUBJECT, FROM, BODY, TEXT, HEADER, LARGER, SMALLER, FLAGGED, UNSEEN, SINCE/BEFORE, OR, NOT, UID")
    expect(search(m, None, "SUBJECT", '"plain note 3"') == [uid_of["<corpus-03@interop.test>"]], "SEARCH SUBJECT",
           search(m, None, "SUBJECT", '"plain note 3"'))
    want = sorted(u for mid, u in uid_of.items() if int(byid[mid]["name"]) % 7 == 2 and int(byid[mid]["name"]) < 98)
    got = search(m, None, "FROM", '"sender2@remote.test"')
    expect(got == want, "SEARCH FROM", (got, want))
    got = search(m, None, "BODY", "zanzibarquux")
    expect(got == [uid_of["<corpus-10@interop.test>"]], "SEARCH BODY", got)
    got = search(m, None, "TEXT", "sessionmarker")
    expect(got == [auid], "SEARCH TEXT", got)
    got = search(m, None, "HEADER", "X-Long", "token")
    expect(got == [uid_of["<corpus-10@interop.test>"]], "SEARCH HEADER X-Long", got)
    big = [u for mid, u in uid_of.items() if byid[mid]["size"] > 500000]
    got = search(m, None, "LARGER", "500000")
    expect(got == sorted(big), "SEARCH LARGER 500000", (got, big))
    small = sorted([u for mid, u in uid_of.items() if byid[mid]["size"] < 400] + ([auid] if len(new) < 400 else []))
    got = search(m, None, "SMALLER", "400")
    expect(got == small, "SEARCH SMALLER 400", (got, small))
    flagged = sorted([u for mid, u in uid_of.items() if "\\Flagged" in byid[mid]["flags"]] + [auid])
    got = search(m, None, "FLAGGED")
    expect(got == flagged, "SEARCH FLAGGED", (got, flagged))
    unseen = sorted([u for mid, u in uid_of.items() if "\\Seen" not in byid[mid]["flags"]] + [auid])
    got = search(m, None, "UNSEEN")
    expect(got == unseen, "SEARCH UNSEEN", (got, unseen))
    # INTERNALDATE: corpus message i is 2026-03-01 08:00 + i hours.
    since = sorted([u for mid, u in uid_of.items() if int(byid[mid]["name"]) >= 16] + [auid])
    got = search(m, None, "SINCE", "2-Mar-2026")
    expect(got == sorted(u for u in since if u != auid), "SEARCH SINCE 2-Mar-2026", got)
    got = search(m, None, "BEFORE", "2-Mar-2026")
    expect(got == sorted(u for mid, u in uid_of.items() if int(byid[mid]["name"]) < 16) + [auid], "SEARCH BEFORE", got)
    got = search(m, None, "OR", "SUBJECT", '"plain note 1"', "SUBJECT", '"plain note 2"')
    expect(got == sorted([uid_of["<corpus-01@interop.test>"], uid_of["<corpus-02@interop.test>"]]), "SEARCH OR", got)
    got = search(m, None, "NOT", "SEEN", "NOT", "FLAGGED")
    want = sorted(u for mid, u in uid_of.items() if not ({"\\Seen", "\\Flagged"} & set(byid[mid]["flags"])))
    expect(got == want, "SEARCH NOT SEEN NOT FLAGGED", (got, want))
    u3 = sorted(uid_of.values())[:3]
    got = search(m, None, "UID", f"{u3[0]}:{u3[2]}")
    expect(got == u3, "SEARCH UID range", got)
    m.literal = "Köln".encode()
    got = search(m, "CHARSET", "UTF-8", "BODY")
    want = sorted(u for mid, u in uid_of.items() if byid[mid]["note"] in ("8bit body", "qp"))
    expect(set(got) >= set(u for mid, u in uid_of.items() if byid[mid]["note"] == "8bit body"),
           "SEARCH CHARSET UTF-8 BODY Köln finds the 8-bit bodies", (got, want))

    step("FETCH partial BODY[]<0.100>, BODY[]<100.50>, BODY[HEADER.FIELDS], BODY[1], BODYSTRUCTURE")
    for mid in ("<corpus-00@interop.test>", "<corpus-20@interop.test>", "<corpus-31@interop.test>"):
        raw = byid[mid]["raw"]
        line, part = fetch_one(m, uid_of[mid], "(BODY.PEEK[]<0.100>)")
        expect(part == raw[:100], f"{mid} BODY[]<0.100>", part)
        expect(b"BODY[]<0>" in line, f"{mid} BODY[]<0> in the response", line)
        line, part = fetch_one(m, uid_of[mid], "(BODY.PEEK[]<100.50>)")
        expect(part == raw[100:150], f"{mid} BODY[]<100.50>", part)
    raw = byid["<corpus-03@interop.test>"]["raw"]
    _, part = fetch_one(m, uid_of["<corpus-03@interop.test>"], "(BODY.PEEK[]<%d.100>)" % (len(raw) - 10))
    expect(part == raw[-10:], "partial past the end is cut short", part)
    _, part = fetch_one(m, uid_of["<corpus-03@interop.test>"], "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    expect(part == b"Subject: plain note 3 about " + raw.split(b"plain note 3 about ", 1)[1].split(b"\r\n", 1)[0]
           + b"\r\n\r\n", "BODY[HEADER.FIELDS (SUBJECT)]", part)
    alt = next(mid for mid in byid if byid[mid]["note"] == "multipart/alternative")
    _, part = fetch_one(m, uid_of[alt], "(BODY.PEEK[1])")
    want_part = byid[alt]["raw"].split(b"Content-Type: text/plain; charset=us-ascii\r\n\r\n", 2)[1].split(b"\r\n--alt-", 1)[0]
    expect(part == want_part, "BODY[1] of multipart/alternative", (part[:80], want_part[:80]))
    line, _ = fetch_one(m, uid_of[alt], "(BODYSTRUCTURE)")
    expect(b'"ALTERNATIVE"' in line.upper() and b'"HTML"' in line.upper(), "BODYSTRUCTURE alternative", line)
    fwd = next(mid for mid in byid if byid[mid]["note"] == "message/rfc822")
    line, _ = fetch_one(m, uid_of[fwd], "(BODYSTRUCTURE)")
    expect(b'"MESSAGE" "RFC822"' in line.upper(), "BODYSTRUCTURE message/rfc822", line)
    # FETCH without PEEK sets \Seen.
    unseen_uid = unseen[0]
    line, _ = fetch_one(m, unseen_uid, "(BODY[]<0.10>)")
    line, _ = fetch_one(m, unseen_uid, "(FLAGS)")
    expect("\\Seen" in flags_of(line), "BODY[] without PEEK sets \\Seen", line)

    step("STORE +FLAGS, -FLAGS, FLAGS, .SILENT, keywords")
    u = uid_of["<corpus-01@interop.test>"]
    data = ok(m.uid("STORE", str(u), "+FLAGS", r"(\Answered $Label1)"), "STORE +FLAGS")
    expect(any(b"$Label1" in (x if isinstance(x, bytes) else x[0]) for x in data if x), "STORE +FLAGS response", data)
    line, _ = fetch_one(m, u, "(FLAGS)")
    expect({"\\Answered", "$Label1"} <= flags_of(line), "flags after +FLAGS", line)
    ok(m.uid("STORE", str(u), "-FLAGS", r"($Label1)"), "STORE -FLAGS")
    line, _ = fetch_one(m, u, "(FLAGS)")
    expect("$Label1" not in flags_of(line) and "\\Answered" in flags_of(line), "flags after -FLAGS", line)
    ok(m.uid("STORE", str(u), "FLAGS", r"(\Draft)"), "STORE FLAGS")
    line, _ = fetch_one(m, u, "(FLAGS)")
    expect(flags_of(line) == {"\\Draft"}, "flags after FLAGS (replace)", line)
    ok(m.uid("STORE", str(u), "+FLAGS.SILENT", r"(\Seen)"), "STORE +FLAGS.SILENT")
    line, _ = fetch_one(m, u, "(FLAGS)")
    expect(flags_of(line) == {"\\Draft", "\\Seen"}, "flags after +FLAGS.SILENT", line)
    got = search(m, None, "KEYWORD", "$Important")
    expect(got == [auid], "SEARCH KEYWORD $Important", got)

    step("CREATE, COPY (COPYUID), the copy is byte-exact and keeps flags")
    # Fresh names: a server may create Archive, Trash, ... for new users.
    ok(m.create("InteropCopies"), "CREATE InteropCopies")
    ok(m.create("InteropMoved"), "CREATE InteropMoved")
    data = ok(m.list('""', "Interop*"), "LIST")
    expect(len([x for x in data if x]) == 2, "LIST shows the two new mailboxes", data)
    cu = [uid_of["<corpus-02@interop.test>"], uid_of["<corpus-25@interop.test>"], auid]
    typ, data = m.uid("COPY", ",".join(map(str, cu)), "InteropCopies")
    expect(typ == "OK", "UID COPY", (typ, data))
    # imaplib files the tagged response's [COPYUID ...] code under COPYUID.
    _, code = m.response("COPYUID")
    if "UIDPLUS" in m.capabilities:
        expect(code and code[0], "COPYUID in the COPY response", code)
        src = code[-1].split()[1].decode()
        expect(src == ",".join(map(str, sorted(cu))) or sorted(imapset(src)) == sorted(cu), "COPYUID source set", code)
    expect(select(m, "InteropCopies") == 3, "3 messages in the copy's target")
    [cuid] = uid_by_msgid(m, "<session-append@interop.test>")
    line, body = fetch_one(m, cuid, "(FLAGS BODY.PEEK[])")
    expect(body == new, "copied message byte-exact", body)
    expect("\\Flagged" in flags_of(line) and "$Important" in flags_of(line), "copy keeps flags", line)
    [c25] = uid_by_msgid(m, "<corpus-25@interop.test>")
    _, body = fetch_one(m, c25, "(BODY.PEEK[])")
    expect(body == byid["<corpus-25@interop.test>"]["raw"], "copied attachment message byte-exact", len(body))
    n_inbox = select(m)
    expect(n_inbox == n1, "COPY leaves the source alone", (n_inbox, n1))

    step("MOVE: gone from INBOX, in the target byte-exact")
    mu = uid_of["<corpus-05@interop.test>"]
    typ, data = m.uid("MOVE", str(mu), "InteropMoved")
    expect(typ == "OK", "UID MOVE", (typ, data))
    _, code = m.response("COPYUID")
    if "UIDPLUS" in m.capabilities:
        expect(code and code[0] and code[-1].split()[1] == str(mu).encode(), "COPYUID for MOVE (RFC 6851)", code)
    n2 = select(m)
    expect(n2 == n1 - 1, "EXISTS after MOVE", (n2, n1))
    expect(uid_by_msgid(m, "<corpus-05@interop.test>") == [], "moved message gone from INBOX")
    expect(select(m, "InteropMoved") == 1, "1 message in the move's target")
    [tu] = uid_by_msgid(m, "<corpus-05@interop.test>")
    _, body = fetch_one(m, tu, "(BODY.PEEK[])")
    expect(body == byid["<corpus-05@interop.test>"]["raw"], "moved message byte-exact")

    step("EXPUNGE: \\Deleted on two messages, untagged EXPUNGEs, gone; the rest keep their UIDs")
    n3 = select(m)
    du = [uid_of["<corpus-06@interop.test>"], uid_of["<corpus-07@interop.test>"]]
    ok(m.uid("STORE", ",".join(map(str, du)), "+FLAGS.SILENT", r"(\Deleted)"), "STORE \\Deleted")
    typ, data = m.expunge()
    expect(typ == "OK", "EXPUNGE", (typ, data))
    expunged = [x for x in data if x]
    expect(len(expunged) == 2, "two untagged EXPUNGE responses", data)
    n4 = select(m)
    expect(n4 == n3 - 2, "EXISTS after EXPUNGE", (n4, n3))
    for mid in ("<corpus-06@interop.test>", "<corpus-07@interop.test>"):
        expect(uid_by_msgid(m, mid) == [], f"{mid} expunged")
    for mid in ("<corpus-04@interop.test>", "<corpus-08@interop.test>", "<corpus-30@interop.test>"):
        expect(uid_by_msgid(m, mid) == [uid_of[mid]], f"{mid} keeps its UID")
    expect(m.untagged_responses.get("UIDVALIDITY", [b"0"])[-1] == uidvalidity, "UIDVALIDITY unchanged")

    step("CLOSE, LOGOUT")
    ok(m.close(), "CLOSE")
    typ, _ = m.logout()
    expect(typ == "BYE", "LOGOUT", typ)
    print(f"session: {len(steps)} steps ok")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    try:
        if cmd == "corpus":
            write_corpus(*args)
        elif cmd == "populate":
            populate(*args)
        elif cmd == "check-far":
            check_far(*args)
        elif cmd == "check-delivered":
            check_delivered(*args)
        elif cmd == "session":
            session(*args)
        else:
            sys.exit(f"unknown command {cmd}")
    except (Mismatch, imaplib.IMAP4.error) as e:
        print(f"FAIL ({cmd}): {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
