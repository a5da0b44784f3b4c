#!/usr/bin/python3
"""The scheduling scenario of issue 14 through the reference server, for
.ci/interop-schedule.sh. Plain requests (Debian's python3-requests) for
CalDAV; swaks for carol's iMIP REPLY.

  schedule_scenario.py DAV_URL SMTP_PORT SINK_DIR

alice@example.test organises a meeting with bob@example.test (local),
carol@remote.test (remote: the iMIP REQUEST must arrive at the smtp-sink
that stands for remote.test's MX and parse as iTIP) and the room
room1@example.test (auto-accepts when free). Bob accepts over CalDAV and
alice's copy shows ACCEPTED; a second meeting booking the room at an
overlapping time is declined by the room; carol's REPLY mailed to the MX
updates alice's copy. Every check prints PASS or FAIL; the exit status is
1 when any failed.
"""
import email
import email.policy
import glob
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from urllib.parse import urljoin

import requests

NS = {"d": "DAV:", "c": "urn:ietf:params:xml:ns:caldav"}
PW = "correct horse"
ALICE, BOB, CAROL, ROOM = "alice@example.test", "bob@example.test", "carol@remote.test", "room1@example.test"

failed = []


def check(name, cond, why=""):
    print(("PASS " if cond else "FAIL ") + name + ("" if cond else ": " + why))
    if not cond:
        failed.append(name)
    return cond


class User:
    def __init__(self, base, addr):
        self.base, self.s = base, requests.Session()
        self.s.auth = (addr, PW)
        self.addr = addr
        self.home = self.href_prop(base + "dav/", "current-user-principal")
        principal = urljoin(base, self.home)
        self.home = urljoin(base, self.href_prop(principal, "calendar-home-set", "c"))
        self.inbox = urljoin(base, self.href_prop(principal, "schedule-inbox-URL", "c"))

    def req(self, method, url, body=None, **hdrs):
        r = self.s.request(method, url, data=body.encode() if isinstance(body, str) else body, headers=hdrs, timeout=20)
        return r

    def href_prop(self, url, prop, ns="d"):
        body = '<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><%s:%s/></d:prop></d:propfind>' % (ns, prop)
        r = self.req("PROPFIND", url, body, Depth="0")
        r.raise_for_status()
        h = ET.fromstring(r.content).find(".//%s:%s/d:href" % (ns, prop), NS)
        return h.text.strip()

    def objects(self, coll):
        """(href, etag, data) of each object of a collection."""
        body = ('<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><d:getetag/><c:calendar-data/></d:prop>'
                '<c:filter><c:comp-filter name="VCALENDAR"/></c:filter></c:calendar-query>')
        r = self.req("REPORT", coll, body, Depth="1", **{"Content-Type": "application/xml"})
        r.raise_for_status()
        out = []
        for resp in ET.fromstring(r.content).findall("d:response", NS):
            data = resp.find(".//c:calendar-data", NS)
            if data is not None and data.text:
                out.append((resp.find("d:href", NS).text, resp.find(".//d:getetag", NS).text, data.text))
        return out

    def find_uid(self, uid, coll=None):
        """(url, etag, data) of the object with the UID in the user's
        calendars (not the inbox), or None."""
        colls = [coll] if coll else self.calendars()
        for c in colls:
            for href, etag, data in self.objects(c):
                if "UID:" + uid in unfold(data):
                    return urljoin(self.base, href), etag, data
        return None

    def calendars(self):
        body = '<d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/></d:prop></d:propfind>'
        r = self.req("PROPFIND", self.home, body, Depth="1")
        r.raise_for_status()
        out = []
        for resp in ET.fromstring(r.content).findall("d:response", NS):
            rt = resp.find(".//d:resourcetype", NS)
            if rt is not None and rt.find("c:calendar", NS) is not None and rt.find("c:schedule-inbox", NS) is None:
                out.append(urljoin(self.base, resp.find("d:href", NS).text))
        return out


def unfold(ics):
    return ics.replace("\r\n", "\n").replace("\n ", "").replace("\n\t", "")


def attendee(ics, addr, param):
    """A parameter of the ATTENDEE line of addr, None without the line."""
    for line in unfold(ics).split("\n"):
        name, _, value = line.partition(":")
        if name.upper().startswith("ATTENDEE") and value.strip().lower() == "mailto:" + addr:
            for p in name.split(";")[1:]:
                k, _, v = p.partition("=")
                if k.upper() == param:
                    return v.strip('"')
            return ""
    return None


def meeting(uid, start, end, org, attendees, seq=0, extra=""):
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//mailyard interop//EN", "BEGIN:VEVENT", "UID:" + uid,
             "DTSTAMP:20260101T000000Z", "DTSTART:" + start, "DTEND:" + end, "SUMMARY:Planning " + uid,
             "SEQUENCE:%d" % seq, "ORGANIZER;CN=Organizer:mailto:" + org]
    lines += ["ATTENDEE;PARTSTAT=%s;RSVP=TRUE:mailto:%s" % ("ACCEPTED" if a == org else "NEEDS-ACTION", a) for a in attendees]
    if extra:
        lines.append(extra)
    lines += ["END:VEVENT", "END:VCALENDAR", ""]
    return "\r\n".join(lines)


def sink_messages(sinkdir):
    out = []
    for f in sorted(glob.glob(sinkdir + "/m.*")):
        with open(f, "rb") as fh:
            out.append(fh.read())
    return out


def itip_parts(raw):
    """The text/calendar parts of a message dumped by smtp-sink (its
    envelope lines come first, the message after them)."""
    i = raw.find(b"\nReceived:")
    j = raw.find(b"\nReturn-Path:")
    starts = [k for k in (i, j) if k >= 0]
    msg = email.message_from_bytes(raw[min(starts) + 1:] if starts else raw, policy=email.policy.default)
    out = []
    for part in msg.walk():
        if part.get_content_type() == "text/calendar":
            out.append((part.get_param("method"), part.get_content()))
    return msg, out


def main():
    base, smtp_port, sinkdir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    alice, bob = User(base, ALICE), User(base, BOB)
    cal = alice.calendars()[0]

    print("-- alice invites bob (local), carol (remote) and the room")
    url = cal + "sched-1.ics"
    r = alice.req("PUT", url, meeting("sched-1", "20260310T100000Z", "20260310T110000Z", ALICE, [ALICE, BOB, CAROL, ROOM]),
                  **{"Content-Type": "text/calendar", "If-None-Match": "*"})
    check("organizer-put", r.status_code == 201, "%d %s" % (r.status_code, r.text))
    data = alice.req("GET", url).text
    check("schedule-status-bob", (attendee(data, BOB, "SCHEDULE-STATUS") or "").startswith("1.2"), data)
    check("schedule-status-carol", (attendee(data, CAROL, "SCHEDULE-STATUS") or "").startswith("1.1"), data)
    check("room-accepted", attendee(data, ROOM, "PARTSTAT") == "ACCEPTED", data)

    print("-- bob finds the invitation in his inbox and calendar, and accepts")
    inbox = bob.find_uid("sched-1", bob.inbox)
    check("bob-inbox-request", inbox is not None and "METHOD:REQUEST" in inbox[2], str(inbox))
    got = bob.find_uid("sched-1")
    if not check("bob-copy", got is not None and attendee(got[2], BOB, "PARTSTAT") == "NEEDS-ACTION", str(got)):
        return
    burl, betag, bdata = got
    accepted = bdata.replace("PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:" + BOB, "PARTSTAT=ACCEPTED:mailto:" + BOB)
    if accepted == bdata:  # the server may order the parameters otherwise
        lines = unfold(bdata).split("\n")
        lines = [l.replace("PARTSTAT=NEEDS-ACTION", "PARTSTAT=ACCEPTED") if l.upper().startswith("ATTENDEE") and l.lower().endswith("mailto:" + BOB) else l for l in lines]
        accepted = "\r\n".join(lines)
    r = bob.req("PUT", burl, accepted, **{"Content-Type": "text/calendar", "If-Match": betag})
    check("bob-accept-put", r.status_code in (200, 204), "%d %s" % (r.status_code, r.text))
    data = alice.req("GET", url).text
    check("alice-sees-bob-accepted", attendee(data, BOB, "PARTSTAT") == "ACCEPTED", data)

    print("-- carol's invitation left as iMIP mail for remote.test")
    deadline, parts, msg = time.time() + 20, [], None
    while time.time() < deadline and not parts:
        for raw in sink_messages(sinkdir):
            m, ps = itip_parts(raw)
            if any("sched-1" in c for _, c in ps):
                msg, parts = m, ps
        if not parts:
            time.sleep(0.2)
    ok = check("imip-request-arrived", bool(parts), "no calendar message in %s" % sinkdir)
    if ok:
        method, ics = parts[0]
        check("imip-method-request", (method or "").upper() == "REQUEST" and "METHOD:REQUEST" in ics, "%s\n%s" % (method, ics))
        check("imip-attendee-carol", attendee(ics, CAROL, "PARTSTAT") is not None and "ORGANIZER" in ics, ics)
        check("imip-from-alice", ALICE in (msg.get("From") or ""), str(msg.get("From")))

    print("-- a second booking of the room at an overlapping time is declined")
    url2 = cal + "sched-2.ics"
    r = alice.req("PUT", url2, meeting("sched-2", "20260310T103000Z", "20260310T113000Z", ALICE, [ALICE, ROOM]),
                  **{"Content-Type": "text/calendar", "If-None-Match": "*"})
    check("second-booking-put", r.status_code == 201, "%d %s" % (r.status_code, r.text))
    data2 = alice.req("GET", url2).text
    check("room-declined-overlap", attendee(data2, ROOM, "PARTSTAT") == "DECLINED", data2)
    url3 = cal + "sched-3.ics"
    alice.req("PUT", url3, meeting("sched-3", "20260310T110000Z", "20260310T120000Z", ALICE, [ALICE, ROOM]),
              **{"Content-Type": "text/calendar", "If-None-Match": "*"})
    data3 = alice.req("GET", url3).text
    check("room-accepts-adjacent", attendee(data3, ROOM, "PARTSTAT") == "ACCEPTED", data3)

    print("-- carol's iMIP REPLY, mailed to the MX, updates alice's copy")
    reply = "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//remote//EN", "METHOD:REPLY", "BEGIN:VEVENT",
                         "UID:sched-1", "DTSTAMP:20260102T000000Z", "SEQUENCE:0", "DTSTART:20260310T100000Z",
                         "DTEND:20260310T110000Z", "ORGANIZER:mailto:" + ALICE,
                         "ATTENDEE;PARTSTAT=ACCEPTED:mailto:" + CAROL, "END:VEVENT", "END:VCALENDAR", ""])
    body = ("From: Carol <%s>\r\nTo: <%s>\r\nSubject: Accepted: Planning\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/calendar; charset=utf-8; method=REPLY\r\n\r\n%s") % (CAROL, ALICE, reply)
    p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(smtp_port), "--from", CAROL, "--to", ALICE,
                        "--data", "-", "--helo", "mx.remote.test", "--suppress-data"],
                       input=body.encode(), capture_output=True, timeout=30)
    check("swaks-reply-sent", p.returncode == 0, p.stdout.decode()[-500:] + p.stderr.decode()[-500:])
    data = ""
    for _ in range(50):
        data = alice.req("GET", url).text
        if attendee(data, CAROL, "PARTSTAT") == "ACCEPTED":
            break
        time.sleep(0.1)
    check("alice-sees-carol-accepted", attendee(data, CAROL, "PARTSTAT") == "ACCEPTED", data)
    check("bob-still-accepted", attendee(data, BOB, "PARTSTAT") == "ACCEPTED", data)

    print("-- alice stores her copy again with only an alarm added: no new REQUEST (RFC 6638 sec. 7.2)")
    before = len([m for m in sink_messages(sinkdir) if b"sched-1" in m])
    binbox = bob.find_uid("sched-1", bob.inbox)
    r = alice.req("GET", url)
    again = r.text.replace("END:VEVENT", "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:soon\r\nTRIGGER:-PT10M\r\nEND:VALARM\r\nEND:VEVENT")
    r = alice.req("PUT", url, again, **{"Content-Type": "text/calendar", "If-Match": r.headers.get("ETag", "*")})
    check("alarm-only-put", r.status_code in (200, 204), "%d %s" % (r.status_code, r.text))
    time.sleep(1.5)  # the queue would have delivered by now (retry_min 500ms)
    after = len([m for m in sink_messages(sinkdir) if b"sched-1" in m])
    check("no-resend-remote", after == before, "%d messages for sched-1 before, %d after" % (before, after))
    check("no-resend-local", binbox is not None and binbox[1] == bob.find_uid("sched-1", bob.inbox)[1], "bob's inbox message changed")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a failed step stops the run
        check("scenario", False, repr(e))
    print("schedule: %d failed" % len(failed) + (" (%s)" % ", ".join(failed) if failed else ""))
    sys.exit(1 if failed else 0)
