#!/usr/bin/python3
"""Checks a `migrate ews sync` through the binaries (issue 17 "Must show",
run by .ci/interop-ewssync.sh): what Exchange Web Services answers from
ewsd (the source) against what real clients read from the mail server (the
target).

- Calendar: the instances of every event in [FROM, FROM + 2 years) as
  (UID, start, end, summary), in UTC. The source's are the server's own
  expansion (ewsd's FindItem CalendarView); the target's are the
  CalDAV objects (one calendar-query through python3-caldav, parsed by
  python3-icalendar) expanded here with python3-dateutil's rrule (RRULE
  in the start's zone, EXDATE, RECURRENCE-ID overrides), so neither
  side's expansion is Mailyard's. (python3-recurring-ical-events gives
  the same instances but takes 20 s for these 500 events.)
- Mail: every source message is in INBOX over IMAP exactly once (by
  Message-ID), \\Seen and \\Flagged as it is read and flagged there,
  and nothing else is.
- Contacts: one vCard per source contact over CardDAV (PROPFIND, then
  addressbook-multiget, read by python3-vobject), by e-mail address and
  name.

usage: ewsmigrate_check.py check EWS_URL IMAP_PORT DAV_URL CAFILE FROM
       ewsmigrate_check.py count IMAP_PORT DAV_URL CAFILE
(FROM is YYYY-MM-DD.) check prints one line per check and exits 1 on the
first that fails; count prints how many messages, events and contacts
the target holds.
"""
import collections
import datetime
import imaplib
import logging
import re
import ssl
import sys
import time
import xml.etree.ElementTree as ET

import caldav
import dateutil.rrule
import icalendar
import requests
import vobject

logging.getLogger().setLevel(logging.CRITICAL)
began = time.monotonic()
USER, PW = "alice@example.test", "correct horse"
DAV, CARD = "DAV:", "urn:ietf:params:xml:ns:carddav"
utc = datetime.timezone.utc


def step(msg):
    print(f"  {time.monotonic() - began:6.1f}s {msg}", flush=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def show(diff):
    return sorted(diff)[:5]


class Target:
    """The mail server as IMAP, CalDAV and CardDAV clients see it."""

    def __init__(self, imap_port, dav_url, cafile):
        self.imap_port, self.dav_url, self.cafile = int(imap_port), dav_url, cafile
        self.http = requests.Session()
        self.http.auth = (USER, PW)

    def imap(self):
        imap = imaplib.IMAP4("127.0.0.1", self.imap_port)
        if "STARTTLS" in imap.capabilities:
            imap.starttls(ssl.create_default_context(cafile=self.cafile))
        imap.login(USER, PW)
        typ, data = imap.select("INBOX", readonly=True)
        check(typ == "OK", f"SELECT INBOX: {data}")
        return imap, int(data[0])

    def calendar(self):
        client = caldav.DAVClient(url=self.dav_url + ".well-known/caldav", username=USER, password=PW,
                                  ssl_verify_cert=self.cafile, timeout=60)
        cals = client.principal().calendars()
        mine = [c for c in cals if str(c.url).rstrip("/").endswith(("/calendar", "/default"))]
        check(len(mine) == 1, f"default calendar over CalDAV: {[str(c.url) for c in cals]}")
        return mine[0]

    def propfind(self, url, body, depth):
        r = self.dav("PROPFIND", url, body, depth)
        check(r.status_code == 207, f"PROPFIND {url}: {r.status_code}")
        return ET.fromstring(r.content)

    def dav(self, method, url, body, depth):
        # verify= on each request: REQUESTS_CA_BUNDLE in the environment
        # would replace a Session's.
        return self.http.request(method, url, data=body, verify=self.cafile,
                                 headers={"Depth": depth, "Content-Type": "application/xml"})

    def members(self, url):
        root = self.propfind(url, '<propfind xmlns="DAV:"><prop><getetag/></prop></propfind>', "1")
        return [h.text for h in root.findall(f"{{{DAV}}}response/{{{DAV}}}href") if not h.text.endswith("/")]

    def addressbook(self):
        join = requests.compat.urljoin
        root = self.propfind(self.dav_url + "dav/",
                             '<propfind xmlns="DAV:"><prop><current-user-principal/></prop></propfind>', "0")
        principal = join(self.dav_url, root.find(f".//{{{DAV}}}current-user-principal/{{{DAV}}}href").text)
        root = self.propfind(principal, f'<propfind xmlns="DAV:" xmlns:C="{CARD}"><prop><C:addressbook-home-set/>'
                             '</prop></propfind>', "0")
        home = join(self.dav_url, root.find(f".//{{{CARD}}}addressbook-home-set/{{{DAV}}}href").text)
        root = self.propfind(home, '<propfind xmlns="DAV:"><prop><resourcetype/></prop></propfind>', "1")
        books = [r.find(f"{{{DAV}}}href").text for r in root.findall(f"{{{DAV}}}response")
                 if r.find(f".//{{{DAV}}}resourcetype/{{{CARD}}}addressbook") is not None
                 and not r.find(f"{{{DAV}}}href").text.rstrip("/").endswith("/gal")]
        check(len(books) <= 1, f"address books: {books}")
        return join(self.dav_url, books[0]) if books else None

    def count(self):
        imap, n = self.imap()
        imap.logout()
        book = self.addressbook()
        return n, len(self.members(str(self.calendar().url))), len(self.members(book)) if book else 0


T = "http://schemas.microsoft.com/exchange/services/2006/types"
M = "http://schemas.microsoft.com/exchange/services/2006/messages"


def find_items(ews_url, folder, fields, view):
    """One FindItem in a distinguished folder of the user's, as the
    service account impersonating it, asking for the FieldURIs (or
    IndexedFieldURIs) fields, with the whole range in one view (the
    server's own answer; exchangelib's view() of this calendar took 45 s,
    paging). Returns the t:Items' children."""
    props = "".join(f if f.startswith("<") else f'<t:FieldURI FieldURI="{f}"/>' for f in fields)
    body = f"""<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="{M}" xmlns:t="{T}">
<soap:Header><t:RequestServerVersion Version="Exchange2016"/><t:ExchangeImpersonation><t:ConnectingSID>
<t:PrimarySmtpAddress>{USER}</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation></soap:Header>
<soap:Body><m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>
<t:AdditionalProperties>{props}</t:AdditionalProperties></m:ItemShape>{view}
<m:ParentFolderIds><t:DistinguishedFolderId Id="{folder}"/></m:ParentFolderIds></m:FindItem></soap:Body>
</soap:Envelope>"""
    r = requests.post(ews_url, data=body.encode(), auth=("svc", PW), headers={"Content-Type": "text/xml; charset=utf-8"})
    check(r.status_code == 200, f"FindItem {folder}: HTTP {r.status_code}")
    root = ET.fromstring(r.content).find(f".//{{{M}}}RootFolder")
    check(root is not None and root.get("IncludesLastItemInRange") == "true", f"FindItem {folder}: {r.text[:300]}")
    return list(root.find(f"{{{T}}}Items"))


PAGE = '<m:IndexedPageItemView MaxEntriesReturned="1000000" Offset="0" BasePoint="Beginning"/>'


def t(elem, name):
    return elem.findtext(f"{{{T}}}{name}")


def localize(tz, naive):
    # pytz zones (icalendar 4 gives them) need localize for the offset
    # in force at that wall-clock time.
    return tz.localize(naive) if hasattr(tz, "localize") else naive.replace(tzinfo=tz)


def instances(vcal, lo, hi):
    """The instances of the one event in vcal that overlap [lo, hi), as
    (UID, start, end, summary) in UTC: RRULE expanded in the start's
    local time (RFC 5545 §3.3.10), EXDATEs removed, RECURRENCE-ID
    overrides in place of the instances they replace (§3.8.4.4)."""
    events = vcal.walk("VEVENT")
    master = [e for e in events if "RECURRENCE-ID" not in e]
    check(len(master) == 1, f"{len(master)} master VEVENTs")
    master = master[0]
    overrides = {e["RECURRENCE-ID"].dt.astimezone(utc): e for e in events if "RECURRENCE-ID" in e}
    start = master["DTSTART"].dt
    check("DTEND" in master, f"{master.get('UID')}: no DTEND")
    # The same exact duration for every instance (RFC 5545 §3.8.5.3).
    duration = master["DTEND"].dt - start
    uid, summary = str(master["UID"]), str(master.get("SUMMARY"))
    starts, until, excluded = [start], None, set()
    if "RRULE" in master:
        rule = dict(master["RRULE"])
        until = rule.pop("UNTIL", [None])[0]
        if until is not None and not isinstance(until, datetime.datetime):
            until = localize(start.tzinfo, datetime.datetime.combine(until, datetime.time(23, 59, 59)))
        text = master["RRULE"].__class__(rule).to_ical().decode()
        naive = dateutil.rrule.rrulestr(text, dtstart=start.replace(tzinfo=None))
        starts = (localize(start.tzinfo, n) for n in naive)
        exdates = master.get("EXDATE", [])
        for ex in exdates if isinstance(exdates, list) else [exdates]:
            excluded.update(d.dt.astimezone(utc) for d in ex.dts)
    out = []
    for s in starts:
        s = s.astimezone(utc)
        if s >= hi or (until is not None and s > until):
            break
        if s in excluded:
            continue
        ov = overrides.pop(s, None)
        if ov is None:
            inst = (uid, s, s + duration, summary)
        else:
            inst = (uid, ov["DTSTART"].dt.astimezone(utc), ov["DTEND"].dt.astimezone(utc), str(ov.get("SUMMARY")))
        if inst[1] < hi and inst[2] > lo:
            out.append(inst)
    for rid, ov in overrides.items():
        # An override that replaces no instance of the rule is an error;
        # one for an instance after hi may have moved into the range.
        check(rid >= hi, f"{uid}: RECURRENCE-ID {rid} is no instance of the rule")
        inst = (uid, ov["DTSTART"].dt.astimezone(utc), ov["DTEND"].dt.astimezone(utc), str(ov.get("SUMMARY")))
        if inst[1] < hi and inst[2] > lo:
            out.append(inst)
    return out


def check_calendar(ews_url, tgt, lo, hi):
    """Exchange's instances (its CalendarView) against CalDAV's, expanded
    by the client."""
    want = collections.Counter()
    series = set()
    view = f'<m:CalendarView MaxEntriesReturned="1000000" StartDate="{lo:%Y-%m-%dT%H:%M:%SZ}" EndDate="{hi:%Y-%m-%dT%H:%M:%SZ}"/>'
    for it in find_items(ews_url, "calendar", ("calendar:UID", "calendar:Start", "calendar:End", "item:Subject",
                                               "calendar:CalendarItemType"), view):
        start, end = (datetime.datetime.fromisoformat(t(it, f)).astimezone(utc) for f in ("Start", "End"))
        want[(t(it, "UID"), start, end, t(it, "Subject"))] += 1
        if t(it, "CalendarItemType") != "Single":
            series.add(t(it, "UID"))
    check(len(want) > 0 and max(want.values()) == 1, "the source has duplicate instances")
    moved = sum(1 for k in want if k[3].endswith("(moved)"))
    step(f"source: {len(want)} instances of {len({k[0] for k in want})} events ({len(series)} series, "
         f"{moved} moved occurrences) in [{lo.date()}, {hi.date()})")
    got = collections.Counter()
    uids = collections.Counter()
    for ev in tgt.calendar().events():
        vcal = icalendar.Calendar.from_ical(ev.data)
        uids[str(vcal.walk("VEVENT")[0]["UID"])] += 1
        for inst in instances(vcal, lo, hi):
            got[inst] += 1
    dups = [u for u, n in uids.items() if n > 1]
    check(not dups, f"{len(dups)} UIDs stored twice over CalDAV, e.g. {dups[:3]}")
    check(max(got.values(), default=1) == 1, "an instance twice over CalDAV")
    missing, extra = set(want) - set(got), set(got) - set(want)
    check(not missing and not extra, f"instances differ: {len(missing)} missing over CalDAV, e.g. {show(missing)}; "
          f"{len(extra)} extra, e.g. {show(extra)}")
    step(f"CalDAV: {len(uids)} events, the same {len(got)} instances (client-side expansion)")


def check_mail(ews_url, tgt):
    """Every message once, with its read and flagged state."""
    src = {}
    for m in find_items(ews_url, "inbox", ("message:InternetMessageId", "message:IsRead", "item:Flag"), PAGE):
        src[t(m, "InternetMessageId")] = (t(m, "IsRead") == "true", m.findtext(f".//{{{T}}}FlagStatus") == "Flagged")
    imap, _ = tgt.imap()
    typ, data = imap.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    check(typ == "OK", f"FETCH: {data}")
    imap.logout()
    dst = collections.Counter()
    flags = {}
    for part in data:
        if not isinstance(part, tuple):
            continue
        mid = re.search(rb"<[^>]*>", part[1]).group().decode()
        fl = re.search(rb"FLAGS \(([^)]*)\)", part[0]).group(1).split()
        dst[mid] += 1
        flags[mid] = (b"\\Seen" in fl, b"\\Flagged" in fl)
    twice = [m for m, n in dst.items() if n > 1]
    check(not twice, f"{len(twice)} messages twice in INBOX, e.g. {twice[:3]}")
    missing, extra = set(src) - set(dst), set(dst) - set(src)
    check(not missing and not extra, f"{len(missing)} messages missing, e.g. {show(missing)}; "
          f"{len(extra)} extra, e.g. {show(extra)}")
    wrong = [m for m in src if flags[m] != src[m]]
    check(not wrong, f"{len(wrong)} messages with other flags than the source's, e.g. {wrong[:3]}")
    step(f"IMAP: the {len(dst)} source messages once each (by Message-ID), \\Seen and \\Flagged as in the source")


def check_contacts(ews_url, tgt):
    """One vCard per source contact over CardDAV."""
    want = collections.Counter()
    email = '<t:IndexedFieldURI FieldURI="contacts:EmailAddress" FieldIndex="EmailAddress1"/>'
    for c in find_items(ews_url, "contacts", ("contacts:GivenName", "contacts:Surname", email), PAGE):
        want[(c.findtext(f".//{{{T}}}Entry"), t(c, "GivenName"), t(c, "Surname"))] += 1
    book = tgt.addressbook()
    check(book is not None, "no address book over CardDAV")
    hrefs = tgt.members(book)
    r = tgt.dav("REPORT", book, f'<C:addressbook-multiget xmlns="DAV:" xmlns:C="{CARD}"><prop><C:address-data/>'
                f'</prop>{"".join(f"<href>{h}</href>" for h in hrefs)}</C:addressbook-multiget>', "1")
    check(r.status_code == 207, f"addressbook-multiget: {r.status_code}")
    got = collections.Counter()
    for data in ET.fromstring(r.content).iter(f"{{{CARD}}}address-data"):
        card = vobject.readOne(data.text)
        got[(card.email.value, card.n.value.given, card.n.value.family)] += 1
    check(sum(got.values()) == len(hrefs), f"{len(hrefs)} vCards listed, {sum(got.values())} read")
    check(got == want, f"contacts differ: missing {show((want - got).keys())}, extra {show((got - want).keys())}")
    step(f"CardDAV: the {len(want)} source contacts once each (e-mail, given and family name)")


if sys.argv[1] == "count":
    n, events, contacts = Target(*sys.argv[2:5]).count()
    print(f"{n} messages, {events} events, {contacts} contacts")
elif sys.argv[1] == "check":
    ews_url, imap_port, dav_url, cafile, first = sys.argv[2:7]
    lo = datetime.datetime.strptime(first, "%Y-%m-%d").replace(tzinfo=utc)
    tgt = Target(imap_port, dav_url, cafile)
    check_calendar(ews_url, tgt, lo, lo.replace(year=lo.year + 2))
    check_mail(ews_url, tgt)
    check_contacts(ews_url, tgt)
    print(f"ews migrate check: ok in {time.monotonic() - began:.1f}s")
else:
    sys.exit(__doc__)
