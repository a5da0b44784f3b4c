#!/usr/bin/python3
"""The exchangelib side of bench/ews.sh: export one mailbox's messages (MIME
content, read state, received time) and calendar items (every field, and
the modified occurrences of each series) from an EWS server, the way an
efficient exchangelib script does it.

usage: ews_export.py URL USER PASSWORD MAILBOX MESSAGES EVENTS

Basic authentication, the service account impersonating MAILBOX (as our
migrator does in bench/ews.sh). Messages: inbox.all().only(...) pages
FindItem with page_size and reads the MIME by GetItem in batches of
chunk_size (exchangelib fetches the chunks over max_connections sessions).
Calendar: calendar.all() pages FindItem and reads every field by GetItem in
batches; the modified occurrences' ids go to account.fetch() in batches.
The message bytes are only summed, as an export to /dev/null.
Prints one line "exported N messages (B bytes), E calendar items, O
occurrences" and exits 1 when the counts are not MESSAGES and EVENTS.

Environment: PAGE (FindItem page size, default 1000), CHUNK (GetItem batch,
default 100), CONNS (max_connections, default 4).
"""
import os
import sys
import time

from exchangelib import BASIC, IMPERSONATION, Account, Build, Configuration, Credentials, EWSTimeZone, Version
from exchangelib.protocol import FailFast

url, user, password, mailbox = sys.argv[1:5]
want_msgs, want_events = int(sys.argv[5]), int(sys.argv[6])
page, chunk, conns = (int(os.environ.get(k, d)) for k, d in (("PAGE", 1000), ("CHUNK", 100), ("CONNS", 4)))

cfg = Configuration(service_endpoint=url, credentials=Credentials(user, password), auth_type=BASIC,
                    version=Version(build=Build(15, 1, 2507, 6)), retry_policy=FailFast(), max_connections=conns)
acc = Account(primary_smtp_address=mailbox, config=cfg, autodiscover=False, access_type=IMPERSONATION,
              default_timezone=EWSTimeZone("UTC"))
started = time.monotonic()

qs = acc.inbox.all().only("mime_content", "is_read", "datetime_received")
qs.page_size, qs.chunk_size = page, chunk
msgs = size = 0
for m in qs:
    if isinstance(m, Exception):
        raise m
    size += len(m.mime_content)
    msgs += 1
t_mail = time.monotonic() - started

cal = acc.calendar.all()
cal.page_size, cal.chunk_size = page, chunk
events = 0
occ_ids = []
for it in cal:
    if isinstance(it, Exception):
        raise it
    events += 1
    for o in it.modified_occurrences or []:
        occ_ids.append((o.id, o.changekey))
occs = 0
for o in acc.fetch(ids=occ_ids, chunk_size=chunk):
    if isinstance(o, Exception):
        raise o
    occs += 1
elapsed = time.monotonic() - started
print(f"exported {msgs} messages ({size} bytes) in {t_mail:.1f}s, {events} calendar items, {occs} occurrences "
      f"in {elapsed - t_mail:.1f}s")
if msgs != want_msgs or events != want_events:
    print(f"want {want_msgs} messages and {want_events} calendar items", file=sys.stderr)
    sys.exit(1)
