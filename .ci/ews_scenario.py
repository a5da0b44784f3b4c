#!/usr/bin/python3
"""exchangelib (Debian python3-exchangelib 4.9) against the EWS test server
(internal/ewstest, run by .ci/interop-ews.sh).

usage: ews_scenario.py URL

The seed (see interop-ews.sh): svc@example.test holds the impersonation
right; alice@example.test and bob@example.test do not; alice's inbox has
MESSAGES generated messages, her calendar CAL items (RECURRING series) and
CONTACTS contacts, and a folder "Проекты" under the inbox.
Every step prints one line; any failed check raises and exits 1.
"""
import base64
import datetime
import email
import email.policy
import os
import sys
import time

from exchangelib import (BASIC, DELEGATE, IMPERSONATION, NTLM, Account, Build, CalendarItem, Configuration,
                         Contact, Credentials, EWSDateTime, EWSTimeZone, FileAttachment, Message, Version)
from exchangelib.errors import (ErrorAccessDenied, ErrorImpersonateUserDenied, ErrorIrresolvableConflict,
                                ErrorNonExistentMailbox, ErrorServerBusy)
from exchangelib.indexed_properties import EmailAddress, PhoneNumber, PhysicalAddress
from exchangelib.items import SEND_TO_ALL_AND_SAVE_COPY, SEND_TO_NONE
from exchangelib.properties import Attendee, Mailbox
from exchangelib.protocol import BaseProtocol, FailFast
from exchangelib.recurrence import DeletedOccurrence, Recurrence, WeeklyPattern, RelativeMonthlyPattern

URL = sys.argv[1]
MESSAGES, CAL, RECURRING, CONTACTS = (int(os.environ.get(k, d)) for k, d in
                                      (("MESSAGES", 12), ("CAL", 8), ("RECURRING", 6), ("CONTACTS", 4)))
PW = "correct horse"
if os.environ.get("EWS_INSECURE"):
    # ewsd's certificate is self-signed for this run.
    from exchangelib.protocol import NoVerifyHTTPAdapter
    import urllib3
    urllib3.disable_warnings()
    BaseProtocol.HTTP_ADAPTER_CLS = NoVerifyHTTPAdapter
started = time.monotonic()


def step(msg):
    print(f"  {time.monotonic() - started:5.1f}s {msg}", flush=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def config(user, auth, guess=False):
    # guess=True lets exchangelib ask the server its version (ConvertId).
    version = None if guess else Version(build=Build(15, 1, 2507, 6))
    return Configuration(service_endpoint=URL, credentials=Credentials(user, PW), auth_type=auth,
                         version=version, retry_policy=FailFast())


def account(smtp, cfg, access):
    return Account(primary_smtp_address=smtp, config=cfg, autodiscover=False, access_type=access,
                   default_timezone=EWSTimeZone("Europe/Berlin"))


tz = EWSTimeZone("Europe/Berlin")

# 1. NTLM, the service account impersonating alice.
svc_ntlm = config("EXAMPLE\\svc", NTLM, guess=True)
alice = account("alice@example.test", svc_ntlm, IMPERSONATION)
check(alice.version.build.major_version == 15, f"version {alice.version}")
step(f"NTLM + impersonation: server version {alice.version.api_version}")

names = {f.name for f in alice.root.walk()}
for want in ("Inbox", "Calendar", "Contacts", "Sent Items", "Deleted Items", "Проекты"):
    check(want in names, f"folder {want} missing from root.walk(): {sorted(names)}")
check(alice.inbox.children is not None, "inbox children")
step(f"root.walk(): {len(names)} folders incl. Проекты")

msgs = list(alice.inbox.all().only("subject", "mime_content", "is_read", "datetime_received"))
check(len(msgs) == MESSAGES, f"{len(msgs)} messages, want {MESSAGES}")
for m in msgs:
    parsed = email.message_from_bytes(m.mime_content, policy=email.policy.default)
    check(parsed["Subject"] == m.subject, f"MIME subject {parsed['Subject']!r} != {m.subject!r}")
check(sum(1 for m in msgs if m.is_read) == len(range(0, MESSAGES, 3)), "read flags")
step(f"{len(msgs)} messages with mime_content, subjects match, read flags as seeded")

items = list(alice.calendar.all())
check(len(items) == CAL, f"{len(items)} calendar items, want {CAL}")
masters = [i for i in items if i.type == "RecurringMaster"]
check(len(masters) == RECURRING, f"{len(masters)} recurring masters")
patterns = {type(m.recurrence.pattern).__name__ for m in masters}
check(RECURRING < 6 or patterns == {"DailyPattern", "WeeklyPattern", "AbsoluteMonthlyPattern", "RelativeMonthlyPattern",
                                    "AbsoluteYearlyPattern", "RelativeYearlyPattern"}, f"patterns {patterns}")
for m in masters:
    check(m._start_timezone is not None and m._start_timezone.ms_id in (
        "W. Europe Standard Time", "Russian Standard Time", "Eastern Standard Time"), f"{m.subject}: zone {m._start_timezone}")
    check(len(m.deleted_occurrences or []) == 1 and len(m.modified_occurrences or []) == 1,
          f"{m.subject}: deleted {m.deleted_occurrences} modified {m.modified_occurrences}")
step(f"{len(items)} seeded calendar items, {len(masters)} series ({len(patterns)} patterns) each with one exception and one deletion")

# Calendar: create, update, delete.
start = EWSDateTime(2026, 3, 2, 10, 0, tzinfo=tz)
ev = CalendarItem(account=alice, folder=alice.calendar, subject="Interop single", body="Hello",
                  location="Room 1", start=start, end=start + datetime.timedelta(hours=1),
                  required_attendees=[Attendee(mailbox=Mailbox(email_address="bob@example.test"), response_type="Accept")],
                  reminder_minutes_before_start=10, categories=["Interop"], sensitivity="Private",
                  legacy_free_busy_status="Tentative")
ev.save(send_meeting_invitations=SEND_TO_NONE)
check(ev.id and ev.changekey, "created item has id and change key")
got = alice.calendar.get(id=ev.id)
check(got.subject == "Interop single" and got.location == "Room 1" and got.uid, f"read back {got.subject} {got.location}")
check(got.start == start and got.end == start + datetime.timedelta(hours=1), f"times {got.start} {got.end}")
check(got.categories == ["Interop"] and got.sensitivity == "Private" and got.legacy_free_busy_status == "Tentative",
      f"{got.categories} {got.sensitivity} {got.legacy_free_busy_status}")
check([a.mailbox.email_address for a in got.required_attendees] == ["bob@example.test"], "attendees")
old_ck = got.changekey
got.subject, got.location = "Interop single (edited)", "Room 2"
got.save(update_fields=["subject", "location"], send_meeting_invitations=SEND_TO_NONE)
check(got.changekey != old_ck, "change key changes on update")
again = alice.calendar.get(id=ev.id)
check(again.subject == "Interop single (edited)" and again.location == "Room 2", "update read back")
stale = CalendarItem(account=alice, folder=alice.calendar, id=ev.id, changekey=old_ck, subject="stale")
try:
    stale.save(update_fields=["subject"], conflict_resolution="NeverOverwrite", send_meeting_invitations=SEND_TO_NONE)
    raise AssertionError("stale change key accepted with NeverOverwrite")
except ErrorIrresolvableConflict:
    pass
again.delete(send_meeting_cancellations=SEND_TO_NONE)
check(not list(alice.calendar.filter(subject="Interop single (edited)")), "deleted item still found")
step("calendar item: created, read back (times, attendees, categories), updated, stale change key refused, deleted")

# A weekly series with an exception and a deleted occurrence.
rs = EWSDateTime(2026, 4, 6, 9, 0, tzinfo=tz)  # a Monday
series = CalendarItem(account=alice, folder=alice.calendar, subject="Weekly sync", start=rs,
                      end=rs + datetime.timedelta(minutes=30),
                      recurrence=Recurrence(pattern=WeeklyPattern(interval=1, weekdays=[1, 3]),
                                            start=rs.date(), number=6))
series.save(send_meeting_invitations=SEND_TO_NONE)
third = series.occurrence(index=3)
third.refresh()
check(third.type == "Occurrence", f"occurrence type {third.type}")
check(third.start == EWSDateTime(2026, 4, 13, 9, 0, tzinfo=tz), f"3rd occurrence at {third.start}")
third.subject = "Weekly sync (moved)"
third.start = third.start + datetime.timedelta(hours=2)
third.end = third.end + datetime.timedelta(hours=2)
third.save(update_fields=["subject", "start", "end"], send_meeting_invitations=SEND_TO_NONE)
second = series.occurrence(index=2)
second.refresh()
second.delete(send_meeting_cancellations=SEND_TO_NONE)
series.refresh()
check(len(series.modified_occurrences) == 1 and len(series.deleted_occurrences) == 1,
      f"modified {series.modified_occurrences} deleted {series.deleted_occurrences}")
check(series.deleted_occurrences[0].start == EWSDateTime(2026, 4, 8, 9, 0, tzinfo=tz),
      f"deleted {series.deleted_occurrences[0].start}")
view = list(alice.calendar.view(start=EWSDateTime(2026, 4, 1, tzinfo=tz), end=EWSDateTime(2026, 5, 1, tzinfo=tz)))
mine = sorted((v.start, v.subject) for v in view if v.subject.startswith("Weekly sync"))
check(len(mine) == 5, f"view has {len(mine)} instances: {mine}")
check(("Weekly sync (moved)" in [s for _, s in mine]) and
      EWSDateTime(2026, 4, 13, 11, 0, tzinfo=tz) in [t for t, _ in mine], f"exception in view: {mine}")
step("weekly series: occurrence 3 moved, occurrence 2 deleted; calendar view expands 5 instances")
# An attachment of the moved occurrence alone (CreateAttachment on the
# occurrence's ItemId): the exception lists it, the master does not.
third.refresh()
third.attach(FileAttachment(name="day3.txt", content=b"third"))
third.refresh()
series.refresh()
check([a.name for a in third.attachments] == ["day3.txt"] and not series.attachments,
      f"exception {[a.name for a in third.attachments]}, master {series.attachments}")
step("an attachment of one occurrence: on the exception only")

# Attachments: a calendar item created with a file attachment (inside
# CreateItem), one more attached later (CreateAttachment), read back
# with their content (GetAttachment), one detached (DeleteAttachment).
att_start = EWSDateTime(2026, 3, 3, 10, 0, tzinfo=tz)
pdf = b"%PDF-1.4 agenda \x00\xff" * 50
withatt = CalendarItem(account=alice, folder=alice.calendar, subject="Interop attachments", start=att_start,
                       end=att_start + datetime.timedelta(hours=1),
                       attachments=[FileAttachment(name="agenda.pdf", content_type="application/pdf", content=pdf)])
withatt.save(send_meeting_invitations=SEND_TO_NONE)
check(withatt.attachments[0].attachment_id is not None, "CreateItem returned no attachment id")
notes = FileAttachment(name="notes.txt", content=b"minutes")
withatt.attach(notes)
got = alice.calendar.get(id=withatt.id)
check(got.has_attachments, "has_attachments is false")
names = sorted((a.name, a.size) for a in got.attachments)
check(names == [("agenda.pdf", len(pdf)), ("notes.txt", 7)], f"attachments listed {names}")
byname = {a.name: a for a in got.attachments}
check(byname["agenda.pdf"].content == pdf and byname["agenda.pdf"].content_type == "application/pdf",
      "attachment content read back (GetAttachment)")
got.detach(byname["notes.txt"])
again = alice.calendar.get(id=withatt.id)
check([a.name for a in again.attachments] == ["agenda.pdf"], f"after detach {[a.name for a in again.attachments]}")
again.delete(send_meeting_cancellations=SEND_TO_NONE)
step("calendar item with a file attachment: created with it, one attached and detached, content read back")

# Contacts: create, update, delete.
c = Contact(account=alice, folder=alice.contacts, given_name="Иван", surname="Петров", company_name="Acme",
            display_name="Иван Петров",  # exchangelib requires it on create
            email_addresses=[EmailAddress(label="EmailAddress1", email="ivan@example.org")],
            phone_numbers=[PhoneNumber(label="MobilePhone", phone_number="+7 900 123 4567")],
            physical_addresses=[PhysicalAddress(label="Business", street="Тверская 1", city="Москва")])
c.save()
rc = alice.contacts.get(id=c.id)
check(rc.display_name == "Иван Петров", f"display name {rc.display_name!r}")
check(rc.email_addresses[0].email == "ivan@example.org" and rc.phone_numbers[0].phone_number == "+7 900 123 4567",
      f"{rc.email_addresses} {rc.phone_numbers}")
check(rc.physical_addresses[0].city == "Москва", f"{rc.physical_addresses}")
rc.company_name = "Acme Ltd"
rc.email_addresses = [EmailAddress(label="EmailAddress1", email="ivan.petrov@example.org")]
rc.save(update_fields=["company_name", "email_addresses"])
rc2 = alice.contacts.get(id=c.id)
check(rc2.company_name == "Acme Ltd" and rc2.email_addresses[0].email == "ivan.petrov@example.org",
      f"{rc2.company_name} {rc2.email_addresses}")
rc2.delete()
check(alice.contacts.all().count() == CONTACTS, "contact count after delete")
step("contact: created (Cyrillic, email, phone, address), updated, deleted")

# Sync: items of the calendar and the hierarchy, twice each.
first = list(alice.calendar.sync_items(only_fields=["subject"]))
kinds = {k for k, _ in first}
check(kinds == {"create"}, f"first sync kinds {kinds}")
check(len(first) == CAL + 1, f"first sync {len(first)} items, want {CAL + 1}")
state = alice.calendar.item_sync_state
second_run = list(alice.calendar.sync_items(sync_state=state))
check(second_run == [], f"second sync not empty: {second_run}")
paged = list(alice.inbox.sync_items(max_changes_returned=5))
check(len(paged) == MESSAGES, f"paged sync {len(paged)}")
hier = list(alice.root.sync_hierarchy())
check(len(hier) >= 10 and all(k == "create" for k, _ in hier), f"hierarchy {len(hier)}")
check(list(alice.root.sync_hierarchy(sync_state=alice.root.folder_sync_state)) == [], "second hierarchy sync")
new = Message(account=alice, folder=alice.inbox, subject="After sync", body="x")
new.save()
delta = list(alice.inbox.sync_items(sync_state=alice.inbox.item_sync_state))
check([(k, i.subject) for k, i in delta] == [("create", "After sync")], f"delta {delta}")
new.is_read = True
new.save(update_fields=["is_read"])
delta = list(alice.inbox.sync_items(sync_state=alice.inbox.item_sync_state))
check([k for k, _ in delta] == ["read_flag_change"], f"read flag delta {delta}")
new.delete()
delta = list(alice.inbox.sync_items(sync_state=alice.inbox.item_sync_state))
check([k for k, _ in delta] == ["delete"], f"delete delta {delta}")
step(f"sync_items {len(first)} then nothing; paged by 5; create/read-flag/delete deltas; sync_hierarchy {len(hier)} then nothing")

# Pull notifications.
sub_id, wm = alice.inbox.subscribe_to_pull(event_types=["CreatedEvent", "ModifiedEvent", "DeletedEvent"])
m = Message(account=alice, folder=alice.inbox, subject="Notify me", body="x")
m.save()
m.subject = "Notify me (2)"
m.save(update_fields=["subject"])
seen = []
for n in alice.inbox.get_events(sub_id, wm):
    seen += [e for e in n.events]
names = [type(e).__name__ for e in seen]
check(names == ["CreatedEvent", "ModifiedEvent"], f"events {names}")
check(seen[0].item_id.id == m.id, "the created event names the new message")
wm = seen[-1].watermark
last = [type(e).__name__ for n in alice.inbox.get_events(sub_id, wm) for e in n.events]
check(last == ["StatusEvent"], f"after acknowledging: {last}")
step(f"pull subscription: {names}; after the watermark only {last}")
alice.inbox.unsubscribe(sub_id)
m.delete()

# Streaming notifications (ewsd runs with -streaming-minute 3s): the
# event made before the connection comes in its first envelope; one made
# while the connection is open (by alice herself over Basic, another
# connection pool) in a later one; the server closes the connection
# with ConnectionStatus Closed after the timeout.
sub_id = alice.calendar.subscribe_to_streaming(event_types=["CreatedEvent", "ModifiedEvent"])
live = CalendarItem(account=alice, folder=alice.calendar, subject="Stream me",
                    start=EWSDateTime(2026, 5, 4, 9, 0, tzinfo=tz), end=EWSDateTime(2026, 5, 4, 10, 0, tzinfo=tz))
live.save(send_meeting_invitations=SEND_TO_NONE)
alice_basic = account("alice@example.test", config("alice@example.test", BASIC), DELEGATE)
seen, began = [], time.monotonic()
for n in alice.calendar.get_streaming_events(sub_id, connection_timeout=1):
    seen += [(type(e).__name__, e.item_id.id) for e in n.events]
    if len(seen) == 1:
        other = alice_basic.calendar.get(id=live.id)
        other.subject = "Stream me (2)"
        other.save(update_fields=["subject"], send_meeting_invitations=SEND_TO_NONE)
took = time.monotonic() - began
check([k for k, _ in seen] == ["CreatedEvent", "ModifiedEvent"], f"streamed events {seen}")
check(all(i == live.id for _, i in seen), "the streamed events name the item")
check(took < 30, f"the connection closed after its timeout ({took:.1f}s)")
step(f"streaming subscription: {[k for k, _ in seen]}, closed by the server after {took:.1f}s")
alice.calendar.unsubscribe(sub_id)
live.delete(send_meeting_cancellations=SEND_TO_NONE)

# 2. Basic auth, delegate access to one's own mailbox; another's is refused.
bob = account("bob@example.test", config("bob@example.test", BASIC), DELEGATE)
check("Inbox" in {f.name for f in bob.root.walk()}, "bob lists his folders")
# Meeting messages (seeded in bob's inbox): exchangelib reads each as its
# own item class with the meeting properties.
meetings = {type(i).__name__: i for i in bob.inbox.all()}
check(sorted(meetings) == ["MeetingCancellation", "MeetingRequest", "MeetingResponse"], f"bob's inbox {sorted(meetings)}")
req = meetings["MeetingRequest"]
check(req.subject == "Plan" and req.response_type == "NoResponseReceived" and req.location == "Room 3",
      f"request {req.subject} {req.response_type} {req.location}")
check(req.start == EWSDateTime(2026, 7, 1, 11, 0, tzinfo=tz) and req.organizer.email_address == "alice@example.test",
      f"request {req.start} {req.organizer}")
check([a.mailbox.email_address for a in req.required_attendees] == ["bob@example.test"], "request attendees")
check(req.item_class == "IPM.Schedule.Meeting.Request", f"request class {req.item_class}")
resp = meetings["MeetingResponse"]
check(resp.response_type == "Accept" and resp.author.email_address == "carol@example.test",
      f"response {resp.response_type} {resp.author}")
check(meetings["MeetingCancellation"].subject == "Canceled: Retro", "cancellation subject")
step("meeting request, response and cancellation read as exchangelib's meeting item classes")
# Meeting messages the server makes: alice invites bob, bob accepts
# (AcceptItem), alice cancels (CancelCalendarItem); bob's inbox gets a
# MeetingRequest tied to his own calendar item, alice's a
# MeetingResponse, bob's a MeetingCancellation, and his item is cancelled.
ms = EWSDateTime(2026, 8, 3, 14, 0, tzinfo=tz)
invite = CalendarItem(account=alice, folder=alice.calendar, subject="Interop invite", start=ms,
                      end=ms + datetime.timedelta(hours=1),
                      required_attendees=[Attendee(mailbox=Mailbox(email_address="bob@example.test"), response_type="Unknown")])
invite.save(send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY)
invite.refresh()
got = [i for i in bob.inbox.all() if i.subject == "Interop invite"]
check(len(got) == 1 and type(got[0]).__name__ == "MeetingRequest", f"bob's invitation {got}")
mine = bob.calendar.get(id=got[0].associated_calendar_item_id.id)
check(mine.uid == invite.uid and mine.organizer.email_address == "alice@example.test" and mine.start == ms,
      f"bob's calendar item {mine.uid} {mine.organizer} {mine.start}")
got[0].accept()  # AcceptItem on the request
resp = [i for i in alice.inbox.all() if i.subject == "Accepted: Interop invite"]
check(len(resp) == 1 and type(resp[0]).__name__ == "MeetingResponse" and resp[0].response_type == "Accept",
      f"alice's response {resp}")
check(bob.calendar.get(id=mine.id).my_response_type == "Accept", "bob's item after accepting")
invite.cancel()
got = [i for i in bob.inbox.all() if i.subject == "Canceled: Interop invite"]
check(len(got) == 1 and type(got[0]).__name__ == "MeetingCancellation", f"bob's cancellation {got}")
check(bob.calendar.get(id=mine.id).is_cancelled, "bob's calendar item is not cancelled")
step("alice invites, bob accepts, alice cancels: MeetingRequest, MeetingResponse, MeetingCancellation made by the server")
try:
    other = account("alice@example.test", config("bob@example.test", BASIC), DELEGATE)
    list(other.inbox.all()[:1])
    raise AssertionError("bob read alice's inbox without a right")
except (ErrorAccessDenied, ErrorNonExistentMailbox) as e:
    step(f"Basic + delegate: own mailbox ok; alice's refused ({type(e).__name__})")

# 3. Impersonation without the right.
try:
    denied = account("alice@example.test", config("bob@example.test", NTLM), IMPERSONATION)
    list(denied.inbox.all()[:1])
    raise AssertionError("impersonation without the right accepted")
except ErrorImpersonateUserDenied:
    step("impersonation by bob (no right): ErrorImpersonateUserDenied")

# 4. Throttling: carol's budget (see the seed) is 40 requests per minute.
carol = account("carol@example.test", config("carol@example.test", BASIC), DELEGATE)
busy = None
for i in range(60):
    try:
        carol.inbox.refresh()
    except ErrorServerBusy as e:
        busy = e
        break
check(busy is not None and busy.back_off and busy.back_off > 0, f"no ErrorServerBusy with back-off: {busy!r}")
step(f"throttling: ErrorServerBusy after {i} calls, back_off {busy.back_off:.1f}s")
print(f"ews scenario: ok in {time.monotonic() - started:.1f}s")
