#!/usr/bin/python3
"""CalDAV/CardDAV interop scenarios for .ci/interop-dav.sh (issue 14).

Runs with Debian's /usr/bin/python3, which has python3-caldav (0.11) and
python3-requests; the server under test is named by URL and credentials,
so the same checks run against Radicale (to prove the script) and against
the reference server.

  dav_scenario.py caldav URL USER PASSWORD [--cafile F] [--known-fail a,b]
      python3-caldav: discovery from /.well-known/caldav, MKCALENDAR, a
      weekly event with an overridden instance (RECURRENCE-ID) and an
      EXDATE, date searches with and without expand that must find
      exactly the right instances, sync-collection, a todo saved and
      completed, free/busy (free-busy-query REPORT, RFC 4791 §7.10, and
      the schedule outbox POST, RFC 6638 §5).
  dav_scenario.py carddav URL USER PASSWORD [--cafile F] [--known-fail a,b]
      plain requests: discovery from /.well-known/carddav, extended MKCOL
      (RFC 5689) of an address book, PUT of vCard 3.0 and 4.0 with
      If-None-Match, If-Match, addressbook-query, addressbook-multiget,
      sync-collection, DELETE.
  dav_scenario.py delegate URL USER PASSWORD DELEGATE DELEGATE_PASSWORD [--cafile F]
      caldav-proxy (CalendarServer's delegation, as Apple Calendar uses
      it): USER makes DELEGATE a write proxy by PROPPATCH of
      calendar-proxy-write's group-member-set and then creates a
      calendar; the delegate finds USER in calendar-proxy-write-for,
      and python3-caldav, given USER's principal URL, reads its
      calendar-home-set, lists the calendars there (the new one too),
      saves an event in it and finds it by date search; USER sees it.
  dav_scenario.py vds-setup URL USER PASSWORD CAL BOOK [--cafile F]
      discovers the homes and creates calendar CAL and address book BOOK
      (emptied if they exist); prints their URLs.
  dav_scenario.py vds-put|vds-delete URL USER PASSWORD COLLECTION_URL NAME [FILE]
  dav_scenario.py vds-list URL USER PASSWORD COLLECTION_URL
      one object by resource name; vds-list prints "name etag uid summary"
      per object (the vdirsyncer steps assert on it).

Every check prints "PASS name" or "FAIL name: why"; a check listed in
--known-fail prints "KNOWN-FAIL" when it fails (and "FIXED" when it
passes, which also fails the run, so the list stays exact). The last line
is "caldav: N passed, N failed"; the exit status is 1 when any check that
is not a known failure failed.
"""
import argparse
import datetime as dt
import re
import sys
import uuid
import xml.etree.ElementTree as ET
from urllib.parse import urljoin, urlsplit

import requests

UTC = dt.timezone.utc
NS = {"d": "DAV:", "c": "urn:ietf:params:xml:ns:caldav", "a": "urn:ietf:params:xml:ns:carddav"}


class Checks:
    """Records named checks; a failing check does not stop the others
    unless later steps depend on it (then the caller raises Stop)."""

    def __init__(self, label, known_fail):
        self.label = label
        self.known = set(known_fail)
        self.passed = self.failed = self.known_failed = 0
        self.unexpected = []

    def ok(self, name, cond, why=""):
        if cond:
            if name in self.known:
                print(f"FIXED {name} (passes but is listed in --known-fail)")
                self.failed += 1
                self.unexpected.append(name)
            else:
                print(f"PASS {name}")
                self.passed += 1
        elif name in self.known:
            print(f"KNOWN-FAIL {name}: {why}")
            self.known_failed += 1
        else:
            print(f"FAIL {name}: {why}")
            self.failed += 1
            self.unexpected.append(name)
        sys.stdout.flush()
        return cond

    def run(self, name, fn):
        """ok(name) with fn's result; an exception is a failure with its text."""
        try:
            res = fn()
        except Exception as e:  # the check's failure, reported with its cause
            return self.ok(name, False, f"{type(e).__name__}: {e}")
        if isinstance(res, tuple):
            return self.ok(name, res[0], res[1])
        return self.ok(name, bool(res), "" if res else "returned false")

    def finish(self):
        extra = f", {self.known_failed} known failures" if self.known_failed else ""
        print(f"{self.label}: {self.passed} passed, {self.failed} failed{extra}")
        return 1 if self.failed else 0


class Stop(Exception):
    """A step later checks depend on failed."""


class Dav:
    """A minimal WebDAV client over requests, for what python3-caldav does not do."""

    def __init__(self, base, user, password, cafile):
        self.base = base.rstrip("/") + "/"
        self.s = requests.Session()
        self.s.auth = (user, password)
        self.s.verify = cafile if cafile else True
        self.s.headers["User-Agent"] = "mailyard-interop-dav"

    def url(self, href):
        return urljoin(self.base, href)

    def req(self, method, href, body=None, headers=None, redirects=False):
        h = dict(headers or {})
        if body is not None and "Content-Type" not in h:
            h["Content-Type"] = "application/xml; charset=utf-8"
        if isinstance(body, str):
            body = body.encode()
        # verify per request: requests lets REQUESTS_CA_BUNDLE override
        # a Session's verify, not a request's.
        return self.s.request(method, self.url(href), data=body, headers=h,
                              allow_redirects=redirects, timeout=60, verify=self.s.verify)

    def propfind(self, href, props, depth="0"):
        body = '<?xml version="1.0" encoding="utf-8"?><d:propfind xmlns:d="DAV:" ' \
               'xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:a="urn:ietf:params:xml:ns:carddav" ' \
               'xmlns:cs="http://calendarserver.org/ns/"><d:prop>' + props + '</d:prop></d:propfind>'
        r = self.req("PROPFIND", href, body, {"Depth": depth})
        if r.status_code != 207:
            raise Stop(f"PROPFIND {href}: {r.status_code} {r.text[:300]}")
        return multistatus(r.content)

    def report(self, href, body, depth="1"):
        r = self.req("REPORT", href, body, {"Depth": depth})
        if r.status_code != 207:
            raise Stop(f"REPORT {href}: {r.status_code} {r.text[:300]}")
        return r


def multistatus(content):
    """[(href, {prop tag: element}, status)] from a 207 body (props with a 2xx propstat)."""
    out = []
    root = ET.fromstring(content)
    for resp in root.findall("d:response", NS):
        href = resp.findtext("d:href", "", NS)
        props = {}
        for ps in resp.findall("d:propstat", NS):
            st = ps.findtext("d:status", "", NS)
            if " 2" in st:
                for p in ps.find("d:prop", NS):
                    props[p.tag] = p
        out.append((href, props, resp.findtext("d:status", "", NS)))
    return out


def tag(ns, name):
    return "{%s}%s" % (NS[ns], name)


def href_of(props, ns, name):
    el = props.get(tag(ns, name))
    if el is None:
        return None
    return el.findtext("d:href", None, NS)


def discover_home(dav, kind):
    """well-known -> principal -> home set (RFC 6764 §6, RFC 5397, RFC 4791 §6.2.1)."""
    wk = "/.well-known/" + kind
    r = dav.req("PROPFIND", wk, "<propfind xmlns='DAV:'><prop><current-user-principal/></prop></propfind>",
                {"Depth": "0"}, redirects=True)
    if r.status_code != 207:
        raise Stop(f"PROPFIND {wk} (redirects followed): {r.status_code}")
    start = r.url
    ms = multistatus(r.content)
    principal = next((href_of(p, "d", "current-user-principal") for _, p, _ in ms
                      if href_of(p, "d", "current-user-principal")), None)
    if not principal:
        raise Stop(f"no current-user-principal at {start}")
    homeprop = "c:calendar-home-set" if kind == "caldav" else "a:addressbook-home-set"
    ms = dav.propfind(urljoin(start, principal), "<" + homeprop + "/>")
    home = href_of(ms[0][1], "c" if kind == "caldav" else "a",
                   "calendar-home-set" if kind == "caldav" else "addressbook-home-set")
    if not home:
        raise Stop(f"no {homeprop} on {principal}")
    return urljoin(start, principal), urljoin(start, home)


def check_well_known(c, dav, kind):
    """RFC 6764 §5: the well-known URI redirects (no body follows it)."""
    def f():
        r = dav.req("PROPFIND", "/.well-known/" + kind,
                    "<propfind xmlns='DAV:'><prop><current-user-principal/></prop></propfind>", {"Depth": "0"})
        if r.status_code in (301, 302, 303, 307, 308):
            return True, ""
        return False, f"{r.status_code} (want a redirect), Location={r.headers.get('Location')}"
    c.run(f"{kind}.well-known-redirect", f)


# ---------------------------------------------------------------- CalDAV

BERLIN = """BEGIN:VTIMEZONE
TZID:Europe/Berlin
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE"""


def weekly_event(uid):
    """Mondays 10:00-11:00 Berlin (09:00Z in winter), 8 from 2026-01-05;
    EXDATE 2026-01-19; the 2026-01-26 instance moved to Tue 2026-01-27
    14:00-15:00 Berlin (13:00Z)."""
    return "\r\n".join([
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//mailyard//interop-dav//EN", BERLIN,
        "BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20251201T120000Z",
        "DTSTART;TZID=Europe/Berlin:20260105T100000", "DTEND;TZID=Europe/Berlin:20260105T110000",
        "RRULE:FREQ=WEEKLY;COUNT=8", "EXDATE;TZID=Europe/Berlin:20260119T100000",
        "SUMMARY:Weekly sync", "END:VEVENT",
        "BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20251201T120000Z",
        "RECURRENCE-ID;TZID=Europe/Berlin:20260126T100000",
        "DTSTART;TZID=Europe/Berlin:20260127T140000", "DTEND;TZID=Europe/Berlin:20260127T150000",
        "SUMMARY:Weekly sync (moved)", "END:VEVENT",
        "END:VCALENDAR", ""]).replace("\n", "\r\n").replace("\r\r\n", "\r\n")


def utc(y, m, d, h=0, mi=0):
    return dt.datetime(y, m, d, h, mi, tzinfo=UTC)


def instance_starts(objs):
    """The UTC DTSTART of each VEVENT in the objects' data."""
    starts = []
    for o in objs:
        for comp in o.icalendar_instance.walk("VEVENT"):
            s = comp.decoded("DTSTART")
            starts.append(s.astimezone(UTC) if isinstance(s, dt.datetime) else s)
    return sorted(starts)


def fmt(ts):
    return [t.strftime("%Y-%m-%dT%H:%MZ") if isinstance(t, dt.datetime) else str(t) for t in ts]


def caldav_scenario(args, c):
    import logging

    import caldav

    # python3-caldav logs tracebacks of its own for what the checks report.
    logging.getLogger("caldav").setLevel(logging.CRITICAL)
    logging.getLogger().setLevel(logging.CRITICAL)

    dav = Dav(args.url, args.user, args.password, args.cafile)
    check_well_known(c, dav, "caldav")
    verify = args.cafile if args.cafile else True
    client = caldav.DAVClient(url=dav.url("/.well-known/caldav"), username=args.user,
                              password=args.password, ssl_verify_cert=verify, timeout=60)
    principal = None

    def disc():
        nonlocal principal
        principal = client.principal()
        home = principal.calendar_home_set.url
        return bool(home), f"home={home}"
    if not c.run("caldav.discover-principal", disc):
        raise Stop("no principal")
    print(f"  principal {principal.url}, calendar home {principal.calendar_home_set.url}")

    cal_id = "interop-" + uuid.uuid4().hex[:8]
    cal = None

    def mk():
        nonlocal cal
        cal = principal.make_calendar(name="Interop " + cal_id, cal_id=cal_id)
        urls = [str(x.url) for x in principal.calendars()]
        return any(u.rstrip("/").endswith(cal_id) for u in urls), f"{cal_id} not in {urls}"
    if not c.run("caldav.make-calendar", mk):
        raise Stop("no calendar")
    c.run("caldav.displayname", lambda: (cal.get_display_name() == "Interop " + cal_id,
                                         f"got {cal.get_display_name()!r}"))

    uid = "weekly-" + uuid.uuid4().hex
    c.run("caldav.save-weekly-event", lambda: cal.save_event(weekly_event(uid)) is not None)
    one_off_uid = "oneoff-" + uuid.uuid4().hex
    c.run("caldav.save-one-off-event", lambda: cal.save_event(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//mailyard//interop-dav//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{one_off_uid}\r\nDTSTAMP:20251201T120000Z\r\nDTSTART:20260114T150000Z\r\n"
        "DTEND:20260114T160000Z\r\nSUMMARY:Dentist\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n") is not None)
    # A transparent event (RFC 5545 §3.8.2.7) is found by time range but never busy.
    c.run("caldav.save-transparent-event", lambda: cal.save_event(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//mailyard//interop-dav//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:transp-{uuid.uuid4().hex}\r\nDTSTAMP:20251201T120000Z\r\nDTSTART:20260120T080000Z\r\n"
        "DTEND:20260120T090000Z\r\nTRANSP:TRANSPARENT\r\nSUMMARY:Reminder\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
        is not None)

    weekly = lambda t: t.hour == 9 or (t.day == 27 and t.month == 1)  # noqa: E731

    def expanded(start, end, want):
        def f():
            objs = cal.search(start=start, end=end, event=True, expand=True)
            got = [t for t in instance_starts(objs)]
            return got == want, f"instances {fmt(got)}, want {fmt(want)}"
        return f
    # RFC 4791 §9.9: the overridden and the excluded instance are where
    # they are, not where the RRULE would put them.
    c.run("caldav.expand-january", expanded(utc(2026, 1, 1), utc(2026, 2, 1), [
        utc(2026, 1, 5, 9), utc(2026, 1, 12, 9), utc(2026, 1, 14, 15), utc(2026, 1, 20, 8),
        utc(2026, 1, 27, 13)]))
    c.run("caldav.expand-february", expanded(utc(2026, 2, 1), utc(2026, 3, 1), [
        utc(2026, 2, 2, 9), utc(2026, 2, 9, 9), utc(2026, 2, 16, 9), utc(2026, 2, 23, 9)]))

    def server_expands():
        # python3-caldav expands on the client when the server sends RRULEs
        # back; this looks at what the server itself sent (RFC 4791 §9.6.5).
        xml, cls = cal.build_search_xml_query(start=utc(2026, 1, 1), end=utc(2026, 2, 1),
                                              event=True, expand=True)
        _, objs = cal._request_report_build_resultlist(xml, cls)
        datas = [o.data for o in objs if uid in (o.data or "")]
        if len(datas) != 1:
            return False, f"{len(datas)} responses for the weekly event"
        d = datas[0]
        bad = [p for p in ("RRULE", "EXDATE", "TZID=") if p in d]
        n = d.count("BEGIN:VEVENT")
        return not bad and n == 3, f"{n} VEVENTs (want 3), still has {bad}"
    c.run("caldav.server-side-expand", server_expands)

    def only(start, end, want_uids):
        def f():
            objs = cal.search(start=start, end=end, event=True)
            got = sorted(o.icalendar_component.get("UID") for o in objs)
            return got == sorted(want_uids), f"UIDs {got}, want {sorted(want_uids)}"
        return f
    c.run("caldav.range-on-exdate-finds-nothing", only(utc(2026, 1, 19), utc(2026, 1, 19, 23), []))
    c.run("caldav.range-on-moved-slot-finds-nothing", only(utc(2026, 1, 26), utc(2026, 1, 26, 23), []))
    c.run("caldav.range-on-override-finds-it", only(utc(2026, 1, 27, 12), utc(2026, 1, 27, 14), [uid]))
    c.run("caldav.range-after-count-finds-nothing", only(utc(2026, 3, 1), utc(2026, 4, 1), []))
    c.run("caldav.range-week-two", only(utc(2026, 1, 12), utc(2026, 1, 19), [uid, one_off_uid]))

    # RFC 6578 sync-collection through python3-caldav.
    def sync():
        coll = cal.objects_by_sync_token(load_objects=False)
        n0 = len(list(coll))
        ev = cal.event_by_uid(one_off_uid)
        ev.icalendar_component["SUMMARY"] = "Dentist (moved)"
        ev.save()
        updated, deleted = coll.sync()
        return (n0 == 3 and len(updated) == 1 and not deleted and "Dentist (moved)" in updated[0].data,
                f"initial {n0} (want 3), updated {len(updated)} (want 1), deleted {len(deleted)}")
    c.run("caldav.sync-collection", sync)

    todo = None

    def save_todo():
        nonlocal todo
        todo = cal.save_todo(summary="Write the interop script", due=dt.date(2026, 1, 30))
        pending = [t.icalendar_component.get("UID") for t in cal.todos()]
        return todo.icalendar_component.get("UID") in pending, f"pending {pending}"
    if c.run("caldav.save-todo", save_todo):
        def complete():
            todo.complete()
            pending = [t.icalendar_component.get("UID") for t in cal.todos()]
            every = cal.todos(include_completed=True)
            done = [t for t in every if t.icalendar_component.get("UID") == todo.icalendar_component.get("UID")]
            return (not pending and len(done) == 1 and "STATUS:COMPLETED" in done[0].data,
                    f"pending after complete {pending}, completed copies {len(done)}")
        c.run("caldav.complete-todo", complete)

    def busy_periods(fb_data):
        periods = []
        for line in re.sub(r"\r?\n[ \t]", "", fb_data).splitlines():
            if line.startswith("FREEBUSY"):
                params, _, value = line.partition(":")
                fbtype = "BUSY"
                m = re.search(r"FBTYPE=([A-Z-]+)", params)
                if m:
                    fbtype = m.group(1)
                for p in value.split(","):
                    s, _, e = p.partition("/")
                    start = dt.datetime.strptime(s, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
                    if e.startswith("P"):
                        m = re.fullmatch(r"PT?(?:(\d+)H)?(?:(\d+)M)?", e)
                        end = start + dt.timedelta(hours=int(m.group(1) or 0), minutes=int(m.group(2) or 0))
                    else:
                        end = dt.datetime.strptime(e, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
                    periods.append((fbtype, start, end))
        return sorted(periods, key=lambda p: p[1])

    want_fb = [("BUSY", utc(2026, 1, 27, 13), utc(2026, 1, 27, 14))]

    # free-busy-query REPORT over Jan 14-28: the one-off at 15:00Z on the
    # 14th, nothing on the 19th (EXDATE), the 20th (TRANSPARENT) or the
    # 26th (the instance moved away), the moved instance on the 27th.
    def fb_report():
        fb = cal.freebusy_request(utc(2026, 1, 14), utc(2026, 1, 28))
        got = busy_periods(fb.data)
        want = [("BUSY", utc(2026, 1, 14, 15), utc(2026, 1, 14, 16))] + want_fb
        return got == want, f"busy {got}, want {want}"
    c.run("caldav.freebusy-report", fb_report)

    def fb_outbox():
        ms = dav.propfind(str(principal.url), "<c:schedule-outbox-URL/>")
        if not href_of(ms[0][1], "c", "schedule-outbox-URL"):
            return False, "the principal has no schedule-outbox-URL (RFC 6638 §2.1)"
        addrs = principal.calendar_user_address_set()
        mailto = [a for a in addrs if a.lower().startswith("mailto:")]
        if not mailto:
            return False, f"no mailto: in calendar-user-address-set {addrs}"
        # Principal.freebusy_request() of python3-caldav 1.x builds and
        # POSTs the request but then reads the answer as a multistatus,
        # which a schedule-response (RFC 6638 §10.2) is not, and returns
        # {None: {}}. So the request is built and sent as it does, and the
        # raw schedule-response is read here.
        import icalendar
        from caldav.objects import FreeBusy
        req = icalendar.Calendar()
        req.add("prodid", "-//mailyard interop//EN")
        req.add("version", "2.0")
        req.add("method", "REQUEST")
        comp = icalendar.FreeBusy()
        comp.add("uid", str(uuid.uuid4()))
        comp.add("dtstamp", dt.datetime.now(UTC))
        comp.add("dtstart", utc(2026, 1, 21))
        comp.add("dtend", utc(2026, 1, 28))
        req.add_component(comp)
        outbox = principal.schedule_outbox()
        fbobj = FreeBusy(data=req, parent=outbox)
        fbobj.add_organizer()
        fbobj.add_attendee(mailto[0], no_default_parameters=True)
        resp = principal.client.post(str(outbox.url), fbobj.data, headers={"Content-Type": "text/calendar; charset=utf-8"})
        if resp.status != 200:
            return False, f"POST to the outbox: {resp.status}"
        root = ET.fromstring(resp.raw)
        if root.tag != "{urn:ietf:params:xml:ns:caldav}schedule-response":
            return False, f"answer is {root.tag}, not a schedule-response"
        status = root.findtext("c:response/c:request-status", default="", namespaces=NS)
        if not status.startswith("2.0"):
            return False, f"request-status {status!r}"
        text = root.findtext("c:response/c:calendar-data", default="", namespaces=NS)
        got = busy_periods(text)
        return got == want_fb, f"busy {got}, want {want_fb}"
    c.run("caldav.freebusy-outbox", fb_outbox)

    def delete():
        cal.delete()
        r = dav.req("PROPFIND", str(cal.url), None, {"Depth": "0"})
        return r.status_code == 404, f"PROPFIND after DELETE: {r.status_code}"
    c.run("caldav.delete-calendar", delete)


# ---------------------------------------------------------------- CardDAV

def vcard3(uid, fn, email):
    return (f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{fn}\r\nN:{fn.split()[-1]};{fn.split()[0]};;;\r\n"
            f"EMAIL;TYPE=INTERNET:{email}\r\nTEL;TYPE=CELL:+49 30 1234567\r\nORG:Example GmbH\r\nEND:VCARD\r\n")


def vcard4(uid, fn, email):
    return (f"BEGIN:VCARD\r\nVERSION:4.0\r\nUID:{uid}\r\nFN:{fn}\r\nN:{fn.split()[-1]};{fn.split()[0]};;;\r\n"
            f"EMAIL;TYPE=work:{email}\r\nORG:Beispiel AG\r\nEND:VCARD\r\n")


def mkcol_body(kind, name):
    rt = "<c:calendar/>" if kind == "calendar" else "<a:addressbook/>"
    return ('<?xml version="1.0" encoding="utf-8"?><d:mkcol xmlns:d="DAV:" '
            'xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:a="urn:ietf:params:xml:ns:carddav">'
            f'<d:set><d:prop><d:resourcetype><d:collection/>{rt}</d:resourcetype>'
            f'<d:displayname>{name}</d:displayname></d:prop></d:set></d:mkcol>')


def carddav_scenario(args, c):
    dav = Dav(args.url, args.user, args.password, args.cafile)
    check_well_known(c, dav, "carddav")
    home = None

    def disc():
        nonlocal home
        _, home = discover_home(dav, "carddav")
        return True
    if not c.run("carddav.discover-home", disc):
        raise Stop("no address-book home")
    print(f"  address-book home {home}")

    book = urljoin(home, "interop-" + uuid.uuid4().hex[:8] + "/")

    def mk():
        r = dav.req("MKCOL", book, mkcol_body("addressbook", "Interop book"))
        if r.status_code != 201:
            return False, f"MKCOL: {r.status_code} {r.text[:200]}"
        ms = dav.propfind(home, "<d:resourcetype/><d:displayname/>", "1")
        hit = [p for h, p, _ in ms if urljoin(home, h) == book]
        ok = hit and hit[0].get(tag("d", "resourcetype")) is not None and \
            hit[0][tag("d", "resourcetype")].find("a:addressbook", NS) is not None
        return bool(ok), "new book not listed as an addressbook in the home"
    if not c.run("carddav.extended-mkcol", mk):
        raise Stop("no address book")

    alice = ("alice-" + uuid.uuid4().hex, "Alice Liddell", "alice@wonder.example")
    bob = ("bob-" + uuid.uuid4().hex, "Bob Builder", "bob@build.example")
    etags = {}

    def put(card, body, hdr, want):
        r = dav.req("PUT", urljoin(book, card[0] + ".vcf"), body,
                    dict(hdr, **{"Content-Type": "text/vcard; charset=utf-8"}))
        if r.status_code in want and r.headers.get("ETag"):
            etags[card[0]] = r.headers["ETag"]
        return r.status_code in want, f"PUT: {r.status_code} {r.text[:200]}"
    c.run("carddav.put-vcard3", lambda: put(alice, vcard3(*alice), {"If-None-Match": "*"}, (201, 204)))
    c.run("carddav.put-vcard4", lambda: put(bob, vcard4(*bob), {"If-None-Match": "*"}, (201, 204)))
    c.run("carddav.if-none-match-refuses-overwrite",
          lambda: put(alice, vcard3(*alice), {"If-None-Match": "*"}, (412,)))

    def get_back():
        r = dav.req("GET", urljoin(book, alice[0] + ".vcf"))
        return r.status_code == 200 and alice[2] in r.text and "FN:Alice Liddell" in r.text, \
            f"GET: {r.status_code} {r.text[:200]}"
    c.run("carddav.get", get_back)

    def if_match():
        r = dav.req("PUT", urljoin(book, alice[0] + ".vcf"), vcard3(alice[0], "Alice Pleasance", alice[2]),
                    {"If-Match": '"not-the-etag"', "Content-Type": "text/vcard"})
        if r.status_code != 412:
            return False, f"PUT with a stale If-Match: {r.status_code}, want 412"
        r = dav.req("PROPFIND", urljoin(book, alice[0] + ".vcf"),
                    "<propfind xmlns='DAV:'><prop><getetag/></prop></propfind>", {"Depth": "0"})
        etag = multistatus(r.content)[0][1][tag("d", "getetag")].text
        r = dav.req("PUT", urljoin(book, alice[0] + ".vcf"), vcard3(alice[0], "Alice Pleasance", alice[2]),
                    {"If-Match": etag, "Content-Type": "text/vcard"})
        return r.status_code in (200, 201, 204), f"PUT with the current If-Match: {r.status_code}"
    c.run("carddav.if-match", if_match)

    def query(prop, text, match_type, want):
        body = ('<?xml version="1.0" encoding="utf-8"?><a:addressbook-query xmlns:d="DAV:" '
                'xmlns:a="urn:ietf:params:xml:ns:carddav"><d:prop><d:getetag/><a:address-data/></d:prop>'
                f'<a:filter><a:prop-filter name="{prop}"><a:text-match collation="i;unicode-casemap" '
                f'match-type="{match_type}">{text}</a:text-match></a:prop-filter></a:filter>'
                '</a:addressbook-query>')

        def f():
            ms = multistatus(dav.report(book, body).content)
            got = sorted(h.rstrip("/").rsplit("/", 1)[-1] for h, p, _ in ms if tag("a", "address-data") in p)
            return got == sorted(w + ".vcf" for w in want), f"got {got}, want {want}"
        return f
    c.run("carddav.query-email", query("EMAIL", "WONDER.example", "contains", [alice[0]]))
    c.run("carddav.query-fn-starts-with", query("FN", "bob", "starts-with", [bob[0]]))
    c.run("carddav.query-org", query("ORG", "beispiel", "contains", [bob[0]]))
    c.run("carddav.query-no-match", query("EMAIL", "nobody@", "contains", []))

    def multiget():
        hrefs = "".join(f"<d:href>{urlsplit(urljoin(book, x[0] + '.vcf')).path}</d:href>" for x in (alice, bob))
        body = ('<?xml version="1.0" encoding="utf-8"?><a:addressbook-multiget xmlns:d="DAV:" '
                'xmlns:a="urn:ietf:params:xml:ns:carddav"><d:prop><d:getetag/><a:address-data/></d:prop>'
                f'{hrefs}</a:addressbook-multiget>')
        ms = multistatus(dav.report(book, body).content)
        datas = [p[tag("a", "address-data")].text or "" for _, p, _ in ms if tag("a", "address-data") in p]
        return len(datas) == 2 and any("Alice Pleasance" in d for d in datas) and any(bob[2] in d for d in datas), \
            f"{len(datas)} cards"
    c.run("carddav.multiget", multiget)

    def sync():
        body0 = ('<?xml version="1.0" encoding="utf-8"?><d:sync-collection xmlns:d="DAV:"><d:sync-token/>'
                 '<d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>')
        r = dav.report(book, body0)
        token = ET.fromstring(r.content).findtext("d:sync-token", "", NS)
        n0 = len(multistatus(r.content))
        d = dav.req("DELETE", urljoin(book, bob[0] + ".vcf"))
        if d.status_code not in (200, 204):
            return False, f"DELETE: {d.status_code}"
        r = dav.report(book, body0.replace("<d:sync-token/>", f"<d:sync-token>{token}</d:sync-token>"))
        ms = multistatus(r.content)
        gone = [h for h, _, st in ms if "404" in st]
        return n0 == 2 and len(ms) == 1 and len(gone) == 1 and bob[0] in gone[0], \
            f"initial {n0} (want 2); after DELETE {[(h, st) for h, _, st in ms]}"
    c.run("carddav.sync-collection-delete", sync)

    def delete():
        r = dav.req("DELETE", book)
        g = dav.req("PROPFIND", book, None, {"Depth": "0"})
        return r.status_code in (200, 204) and g.status_code == 404, f"DELETE {r.status_code}, then {g.status_code}"
    c.run("carddav.delete-book", delete)


# ---------------------------------------------------------------- vdirsyncer helpers

def delegate_scenario(args, c):
    import logging

    import caldav

    logging.getLogger("caldav").setLevel(logging.CRITICAL)
    owner = Dav(args.url, args.user, args.password, args.cafile)
    proxy = Dav(args.url, args.delegate, args.delegate_password, args.cafile)
    owner_principal, owner_home = discover_home(owner, "caldav")
    proxy_principal, _ = discover_home(proxy, "caldav")
    body = ('<?xml version="1.0" encoding="utf-8"?><d:propertyupdate xmlns:d="DAV:"><d:set><d:prop>'
            f'<d:group-member-set><d:href>mailto:{args.delegate}</d:href></d:group-member-set>'
            '</d:prop></d:set></d:propertyupdate>')

    def grant():
        r = owner.req("PROPPATCH", urljoin(owner_principal, "calendar-proxy-write/"), body)
        return r.status_code == 207 and "200" in r.text, f"{r.status_code} {r.text[:300]}"
    if not c.run("delegate.grant-write-proxy", grant):
        raise Stop("no proxy grant")
    # A calendar made after the grant is covered by it.
    cal_id = "delegated-" + uuid.uuid4().hex[:8]
    cal_url = urljoin(owner_home, cal_id + "/")
    r = owner.req("MKCALENDAR", cal_url, mkcol_body("calendar", cal_id).replace("d:mkcol", "c:mkcalendar"))
    if r.status_code != 201:
        raise Stop(f"MKCALENDAR {cal_url}: {r.status_code}")

    def write_for():
        ms = proxy.propfind(proxy_principal, "<cs:calendar-proxy-write-for/>")
        el = ms[0][1].get("{http://calendarserver.org/ns/}calendar-proxy-write-for")
        got = [urljoin(proxy_principal, h.text) for h in el.findall("d:href", NS)] if el is not None else []
        return owner_principal in got, f"{got}, want {owner_principal}"
    c.run("delegate.calendar-proxy-write-for", write_for)

    verify = args.cafile if args.cafile else True
    client = caldav.DAVClient(url=proxy.url("/dav/"), username=args.delegate, password=args.delegate_password,
                              ssl_verify_cert=verify, timeout=60)
    cal = None

    def open_home():
        nonlocal cal
        home = caldav.Principal(client=client, url=owner_principal).calendar_home_set
        cals = home.calendars()
        urls = [str(x.url) for x in cals]
        cal = next((x for x in cals if str(x.url).rstrip("/").endswith(cal_id)), None)
        return str(home.url) == owner_home and cal is not None, f"home {home.url}, calendars {urls}"
    if not c.run("delegate.opens-owner-home", open_home):
        raise Stop("the delegate does not reach the owner's calendars")
    uid = "delegate-" + uuid.uuid4().hex
    c.run("delegate.save-event", lambda: cal.save_event(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//mailyard//interop-dav//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20251201T120000Z\r\nDTSTART:20260210T090000Z\r\n"
        "DTEND:20260210T100000Z\r\nSUMMARY:Booked by the delegate\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n") is not None)

    def found():
        objs = cal.search(start=utc(2026, 2, 10), end=utc(2026, 2, 11), event=True)
        uids = [str(o.icalendar_instance.walk("VEVENT")[0]["UID"]) for o in objs]
        return uids == [uid], f"found {uids}"
    c.run("delegate.search", found)

    def owner_sees():
        r = owner.req("GET", urljoin(cal_url, uid + ".ics"))
        if r.status_code != 200:
            ms = owner.propfind(cal_url, "<d:getetag/>", "1")
            return len(ms) == 2, f"owner's listing {[h for h, _, _ in ms]}"
        return "Booked by the delegate" in r.text, r.text[:200]
    c.run("delegate.owner-sees-event", owner_sees)


def room_scenario(args, c):
    """A room's booking manager (made by `mailserver share add ROOM '*'
    USER`) opens the room's calendar with python3-caldav; a colleague
    finds the room by a text inside its name (principal-property-search,
    match-type contains) and sees its calendar home closed; principals
    carry CS:email-address-set."""
    import logging

    import caldav

    logging.getLogger("caldav").setLevel(logging.CRITICAL)
    user = Dav(args.url, args.user, args.password, args.cafile)
    manager = Dav(args.url, args.delegate, args.delegate_password, args.cafile)
    user_principal, _ = discover_home(user, "caldav")
    room = {}

    def search():
        body = ('<?xml version="1.0" encoding="utf-8"?><d:principal-property-search xmlns:d="DAV:" '
                'xmlns:c="urn:ietf:params:xml:ns:caldav" test="anyof"><d:property-search><d:prop><d:displayname/></d:prop>'
                '<d:match match-type="contains">OARD r</d:match></d:property-search><d:prop><d:displayname/>'
                '<c:calendar-home-set/><c:calendar-user-type/></d:prop></d:principal-property-search>')
        ms = multistatus(user.report("/dav/principals/", body, "0").content)
        got = [(h, p) for h, p, _ in ms if p.get(tag("c", "calendar-user-type")) is not None]
        if len(got) == 1 and got[0][1][tag("c", "calendar-user-type")].text == "ROOM":
            room["principal"] = urljoin(user_principal, got[0][0])
            home = got[0][1][tag("c", "calendar-home-set")].find("d:href", NS).text
            room["home"] = urljoin(user_principal, home)
        return "home" in room, f"found {[h for h, _ in got]}"
    if not c.run("room.search-contains", search):
        raise Stop("the room is not found")

    def emails():
        ms = user.propfind(user_principal, "<cs:email-address-set/>")
        el = ms[0][1].get("{http://calendarserver.org/ns/}email-address-set")
        got = [e.text for e in el] if el is not None else []
        return args.user in got, f"{got}"
    c.run("room.email-address-set", emails)

    def closed():
        r = user.req("PROPFIND", room["home"], None, {"Depth": "1"})
        return r.status_code == 403, f"{r.status_code}"
    c.run("room.closed-to-colleagues", closed)

    verify = args.cafile if args.cafile else True
    client = caldav.DAVClient(url=manager.url("/dav/"), username=args.delegate, password=args.delegate_password,
                              ssl_verify_cert=verify, timeout=60)
    cal = None

    def open_home():
        nonlocal cal
        home = caldav.Principal(client=client, url=room["principal"]).calendar_home_set
        cals = home.calendars()
        cal = cals[0] if cals else None
        return str(home.url) == room["home"] and cal is not None, f"home {home.url}, calendars {[str(x.url) for x in cals]}"
    if not c.run("room.manager-opens-home", open_home):
        raise Stop("the booking manager does not reach the room's calendar")
    uid = "room-" + uuid.uuid4().hex
    c.run("room.manager-saves-event", lambda: cal.save_event(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//mailyard//interop-dav//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20251201T120000Z\r\nDTSTART:20260211T090000Z\r\n"
        "DTEND:20260211T100000Z\r\nSUMMARY:Blocked by the booking manager\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n") is not None)

    def found():
        objs = cal.search(start=utc(2026, 2, 11), end=utc(2026, 2, 12), event=True)
        uids = [str(o.icalendar_instance.walk("VEVENT")[0]["UID"]) for o in objs]
        return uids == [uid], f"found {uids}"
    c.run("room.manager-search", found)


def vds_setup(args):
    dav = Dav(args.url, args.user, args.password, args.cafile)
    out = []
    for kind, name in (("caldav", args.cal), ("carddav", args.book)):
        _, home = discover_home(dav, kind)
        coll = urljoin(home, name + "/")
        dav.req("DELETE", coll)
        if kind == "caldav":
            body = mkcol_body("calendar", name).replace("d:mkcol", "c:mkcalendar")
            r = dav.req("MKCALENDAR", coll, body)
        else:
            r = dav.req("MKCOL", coll, mkcol_body("addressbook", name))
        if r.status_code != 201:
            raise Stop(f"creating {coll}: {r.status_code} {r.text[:200]}")
        out.append(coll)
    print(" ".join(out))


def vds_list(args):
    dav = Dav(args.url, args.user, args.password, args.cafile)
    ms = dav.propfind(args.collection, "<d:getetag/><d:resourcetype/>", "1")
    for href, props, _ in sorted(ms):
        rt = props.get(tag("d", "resourcetype"))
        if rt is not None and rt.find("d:collection", NS) is not None:
            continue
        r = dav.req("GET", urljoin(args.collection, href))
        text = re.sub(r"\r?\n[ \t]", "", r.text)
        uid = re.search(r"^UID:(.*)$", text, re.M)
        summ = re.search(r"^(?:SUMMARY|FN):(.*)$", text, re.M)
        etag = props[tag("d", "getetag")].text if tag("d", "getetag") in props else "-"
        print(href.rstrip("/").rsplit("/", 1)[-1], etag, uid.group(1).strip() if uid else "-",
              summ.group(1).strip() if summ else "-")


def vds_put(args):
    dav = Dav(args.url, args.user, args.password, args.cafile)
    data = open(args.file, "rb").read()
    ctype = "text/vcard" if args.name.endswith(".vcf") else "text/calendar"
    r = dav.req("PUT", urljoin(args.collection, args.name), data, {"Content-Type": ctype + "; charset=utf-8"})
    if r.status_code not in (200, 201, 204):
        raise Stop(f"PUT {args.name}: {r.status_code} {r.text[:200]}")


def vds_delete(args):
    dav = Dav(args.url, args.user, args.password, args.cafile)
    r = dav.req("DELETE", urljoin(args.collection, args.name))
    if r.status_code not in (200, 204):
        raise Stop(f"DELETE {args.name}: {r.status_code} {r.text[:200]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cmd", choices=["caldav", "carddav", "delegate", "room", "vds-setup", "vds-list", "vds-put", "vds-delete"])
    ap.add_argument("url")
    ap.add_argument("user")
    ap.add_argument("password")
    ap.add_argument("rest", nargs="*")
    ap.add_argument("--cafile", help="trust this certificate (PEM) for https")
    ap.add_argument("--known-fail", default="", help="comma-separated checks expected to fail")
    args = ap.parse_args()
    try:
        if args.cmd in ("caldav", "carddav", "delegate", "room"):
            c = Checks(args.cmd, [k for k in args.known_fail.split(",") if k])
            if args.cmd in ("delegate", "room"):
                args.delegate, args.delegate_password = args.rest
            scenario = {"caldav": caldav_scenario, "carddav": carddav_scenario, "delegate": delegate_scenario,
                        "room": room_scenario}[args.cmd]
            try:
                scenario(args, c)
            except Stop as e:
                c.ok("scenario-completed", False, str(e))
            return c.finish()
        if args.cmd == "vds-setup":
            args.cal, args.book = args.rest
            return vds_setup(args)
        args.collection = args.rest[0]
        if args.cmd == "vds-list":
            return vds_list(args)
        args.name = args.rest[1]
        if args.cmd == "vds-put":
            args.file = args.rest[2]
            return vds_put(args)
        return vds_delete(args)
    except Stop as e:
        print(f"{args.cmd}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main() or 0)
