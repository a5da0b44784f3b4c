#!/usr/bin/python3
"""Two-way calendar sync through the binaries (issue 17 "Must show"):
python3-exchangelib on ewsd's side, python3-caldav on the mail server's,
`migrate ews subscribe` between them (run by .ci/interop-ewssync.sh).

An event made in Exchange appears over CalDAV, and one made over CalDAV
appears in Exchange, each within 10 s; an edit on each side follows;
then nothing changes any more on either side (no edit loop): the
Exchange ChangeKeys and the CalDAV ETags stay as they are over several
of the sync's scheduled passes, and the sync prints no further pass.

usage: ewssync_scenario.py EWS_URL DAV_URL CAFILE SYNC_LOG
"""
import datetime
import logging
import os
import sys
import time
import uuid

import caldav
from exchangelib import (BASIC, IMPERSONATION, Account, CalendarItem, Configuration, Credentials, EWSDateTime,
                         EWSTimeZone, Version, Build)
from exchangelib.items import SEND_TO_NONE
from exchangelib.protocol import BaseProtocol, FailFast

logging.getLogger().setLevel(logging.CRITICAL)
ews_url, dav_url, cafile, sync_log = sys.argv[1:5]
began = time.monotonic()
BaseProtocol.RETRY_POLICY = FailFast()


def step(msg):
    print(f"  {time.monotonic() - began:6.1f}s {msg}", flush=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def within(secs, what, fn):
    start = time.monotonic()
    while True:
        got = fn()
        if got:
            return got, time.monotonic() - start
        if time.monotonic() - start > secs:
            raise AssertionError(f"{what}: not within {secs}s")
        time.sleep(0.2)


cfg = Configuration(service_endpoint=ews_url, credentials=Credentials("svc", "correct horse"), auth_type=BASIC,
                    version=Version(build=Build(15, 1, 2507, 6), api_version="Exchange2016"))
ex = Account("alice@example.test", config=cfg, access_type=IMPERSONATION, autodiscover=False)
tz = EWSTimeZone("Europe/Berlin")

client = caldav.DAVClient(url=dav_url + ".well-known/caldav", username="alice@example.test",
                          password="correct horse", ssl_verify_cert=cafile, timeout=30)
principal = client.principal()


def dav_calendar():
    for c in principal.calendars():
        if str(c.url).rstrip("/").endswith("/calendar") or str(c.url).rstrip("/").endswith("/default"):
            return c
    return None


def dav_events():
    cal = dav_calendar()
    if cal is None:
        return {}
    out = {}
    for ev in cal.events():
        comp = ev.icalendar_component
        out[str(comp.get("summary"))] = (ev, ev.get_property(caldav.elements.dav.GetEtag()))
    return out


def ex_items():
    return {i.subject: i for i in ex.calendar.all().only("subject", "changekey", "uid")}


cal, _ = within(10, "the default calendar over CalDAV", dav_calendar)
step(f"CalDAV calendar {cal.url}")

# Exchange -> Mailyard.
item = CalendarItem(account=ex, folder=ex.calendar, subject="Made in Exchange",
                    start=EWSDateTime(2027, 6, 7, 10, 0, tzinfo=tz), end=EWSDateTime(2027, 6, 7, 11, 0, tzinfo=tz))
item.save(send_meeting_invitations=SEND_TO_NONE)
_, took = within(10, "Exchange's event over CalDAV", lambda: "Made in Exchange" in dav_events())
step(f"Exchange -> CalDAV in {took:.1f}s")

# Mailyard -> Exchange.
uid = f"{uuid.uuid4()}@example.test"
cal.save_event(f"""BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//interop//EN\r
BEGIN:VEVENT\r
UID:{uid}\r
DTSTAMP:20260101T000000Z\r
DTSTART;TZID=Europe/Berlin:20270608T090000\r
DTEND;TZID=Europe/Berlin:20270608T093000\r
SUMMARY:Made over CalDAV\r
END:VEVENT\r
END:VCALENDAR\r
""")
got, took = within(10, "the CalDAV event in Exchange", lambda: ex_items().get("Made over CalDAV"))
check(got.uid == uid, f"UID in Exchange {got.uid}, want {uid}")
step(f"CalDAV -> Exchange in {took:.1f}s (same UID)")

# Edits either way.
item.refresh()
item.subject = "Edited in Exchange"
item.save(update_fields=["subject"], send_meeting_invitations=SEND_TO_NONE)
_, took = within(10, "Exchange's edit over CalDAV", lambda: "Edited in Exchange" in dav_events())
step(f"edit Exchange -> CalDAV in {took:.1f}s")
ev, _ = dav_events()["Made over CalDAV"]
ev.icalendar_component["summary"] = "Edited over CalDAV"
ev.save()
_, took = within(10, "the CalDAV edit in Exchange", lambda: "Edited over CalDAV" in ex_items())
step(f"edit CalDAV -> Exchange in {took:.1f}s")

# No edit loop: wait for the sync to print nothing for 3 s, then nothing
# changes over the next 8 s (several scheduled passes at 2 s and
# notification polls at 0.3 s) on either side, and the sync prints no
# pass that wrote.
def settled():
    try:
        return time.time() - os.path.getmtime(sync_log) > 3
    except FileNotFoundError:
        return False


within(30, "the sync settling", settled)
before_ex = {s: i.changekey for s, i in ex_items().items()}
before_dav = {s: e for s, (_, e) in dav_events().items()}
lines = open(sync_log).read().count("\n")
time.sleep(8)
after_ex = {s: i.changekey for s, i in ex_items().items()}
after_dav = {s: e for s, (_, e) in dav_events().items()}
check(sorted(before_ex) == ["Edited in Exchange", "Edited over CalDAV"], f"Exchange holds {sorted(before_ex)}")
check(sorted(before_dav) == sorted(before_ex), f"CalDAV holds {sorted(before_dav)}")
check(before_ex == after_ex, f"Exchange changed with nobody editing: {before_ex} -> {after_ex}")
check(before_dav == after_dav, f"CalDAV changed with nobody editing: {before_dav} -> {after_dav}")
new = open(sync_log).read().splitlines()[lines:]
check(not [l for l in new if "from Exchange" in l], f"the sync wrote with nobody editing: {new}")
step("no edit loop: ChangeKeys, ETags and the sync's output unchanged for 8 s")
print(f"ews sync scenario: ok in {time.monotonic() - began:.1f}s")
