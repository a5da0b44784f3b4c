#!/usr/bin/python3
"""A CalDAV client's sync-collection (RFC 6578) across `store copy`.

before BASE USER PASSWORD STATE
    Fills the user's calendar (three events), syncs (the old token),
    edits one event, deletes another and adds a fourth, then syncs from
    the old token (what it returns is the expected answer) and again
    from the new one (the last token: nothing). Writes STATE (JSON).
after BASE USER PASSWORD STATE
    On the copied server: the last token gets nothing and keeps its
    value; the old token gets exactly what it got before the copy; one
    edit made now is then the only change since the last token.
"""
import json
import sys
import xml.etree.ElementTree as ET

import urllib3

from dav_scenario import NS, Dav, Stop, discover_home, multistatus


def event(uid, summary):
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//mailyard//interop//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260102T100000Z\r\n"
            f"DTEND:20260102T110000Z\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


def put(dav, cal, name, summary):
    r = dav.req("PUT", cal + name + ".ics", event(name, summary), {"Content-Type": "text/calendar; charset=utf-8"})
    if r.status_code not in (201, 204):
        raise Stop(f"PUT {name}: {r.status_code} {r.text[:200]}")


def sync(dav, cal, token):
    """(new token, sorted [(href, status, etag)]) of a sync-collection REPORT (RFC 6578 §3.2)."""
    body = ('<?xml version="1.0" encoding="utf-8"?><d:sync-collection xmlns:d="DAV:">'
            f'<d:sync-token>{token}</d:sync-token><d:sync-level>1</d:sync-level>'
            '<d:prop><d:getetag/></d:prop></d:sync-collection>')
    r = dav.report(cal, body, depth="0")
    new = ET.fromstring(r.content).findtext("d:sync-token", None, NS)
    if not new:
        raise Stop(f"no sync-token in the REPORT answer from {token!r}")
    out = []
    for href, props, status in multistatus(r.content):
        etag = props.get("{DAV:}getetag")
        out.append([href, "404" if " 404" in status else "200", etag.text if etag is not None else None])
    return new, sorted(out)


def main():
    cmd, base, user, password, state = sys.argv[1:6]
    dav = Dav(base, user, password, None)
    # The server's generated self-signed certificate on loopback: what
    # this checks is the sync state, not TLS (interop-dav.sh does that).
    dav.s.verify = False
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    if cmd == "before":
        _, home = discover_home(dav, "caldav")
        cal = home + "calendar/"
        for name in ("a", "b", "c"):
            put(dav, cal, name, "first")
        old, first = sync(dav, cal, "")
        if len(first) != 3:
            raise Stop(f"initial sync: {first}")
        put(dav, cal, "a", "edited")
        r = dav.req("DELETE", cal + "b.ics")
        if r.status_code != 204:
            raise Stop(f"DELETE b.ics: {r.status_code}")
        put(dav, cal, "d", "new")
        last, since_old = sync(dav, cal, old)
        if [(h.rsplit("/", 1)[1], s) for h, s, _ in since_old] != [("a.ics", "200"), ("b.ics", "404"), ("d.ics", "200")]:
            raise Stop(f"changes since the old token: {since_old}")
        again, none = sync(dav, cal, last)
        if none or again != last:
            raise Stop(f"changes since the last token {last}: {none} at {again}")
        json.dump({"cal": cal, "old": old, "last": last, "since_old": since_old}, open(state, "w"))
        print(f"synced: old token {old}, last {last}; {len(since_old)} changes between them")
        return 0
    st = json.load(open(state))
    cal = st["cal"]
    tok, none = sync(dav, cal, st["last"])
    if none or tok != st["last"]:
        raise Stop(f"after the copy, changes since the last token {st['last']}: {none} at {tok}, want none")
    tok, since_old = sync(dav, cal, st["old"])
    if since_old != st["since_old"] or tok != st["last"]:
        raise Stop(f"after the copy, changes since the old token {st['old']}: {since_old} at {tok}; before: {st['since_old']} at {st['last']}")
    put(dav, cal, "c", "after the copy")
    tok, one = sync(dav, cal, st["last"])
    if [(h.rsplit("/", 1)[1], s) for h, s, _ in one] != [("c.ics", "200")] or tok == st["last"]:
        raise Stop(f"one edit after the copy: {one} at {tok}")
    print(f"after the copy: nothing since {st['last']}, the same {len(since_old)} changes since {st['old']}, one edit alone")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Stop as e:
        print(f"dav_synctoken {sys.argv[1]}: {e}", file=sys.stderr)
        sys.exit(1)
