#!/usr/bin/env python3
"""COMPRESS=DEFLATE (RFC 4978) with Python's imaplib over a zlib wrapper.

usage: imap_compress.py HOST PORT USER PASSWORD CORPUS_DIR

The account holds the corpus of .ci/imap_session.py (populated before,
uncompressed). This client logs in over STARTTLS, turns COMPRESS DEFLATE
on, and syncs the mailbox: every message's BODY[] must equal the corpus
file byte for byte, with its flags and INTERNALDATE. It then APPENDs a
message and SEARCHes, SORTs and FETCHes it back, still compressed, and
prints how many bytes the server sent on the wire against what they
inflated to.
"""
import imaplib
import os
import re
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
imaplib.Commands.setdefault("COMPRESS", ("AUTH", "SELECTED"))
from imap_session import Mismatch, connect, expect, fetch_one, load, ok, select  # noqa: E402


class Deflate:
    """Swaps an imaplib.IMAP4's reads and writes for raw deflate (RFC 4978
    §4: no zlib header). Each write ends with a partial flush, as isync's
    mbsync does (the Go tests cover sync flushes)."""

    def __init__(self, m):
        self.m = m
        self.inflate = zlib.decompressobj(-15)
        self.deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.buf = b""
        self.wire_in = self.plain_in = 0
        raw = m.file
        sock = m.sock

        def fill():
            chunk = raw.read1(65536)
            if not chunk:
                raise imaplib.IMAP4.abort("connection closed")
            self.wire_in += len(chunk)
            out = self.inflate.decompress(chunk)
            self.plain_in += len(out)
            self.buf += out

        def read(size):
            while len(self.buf) < size:
                fill()
            out, self.buf = self.buf[:size], self.buf[size:]
            return out

        def readline():
            while b"\n" not in self.buf:
                fill()
            i = self.buf.index(b"\n") + 1
            out, self.buf = self.buf[:i], self.buf[i:]
            return out

        def send(data):
            sock.sendall(self.deflate.compress(data) + self.deflate.flush(zlib.Z_PARTIAL_FLUSH))

        m.read, m.readline, m.send = read, readline, send


def main():
    host, port, user, password, d = sys.argv[1:6]
    manifest = load(d)
    m = connect(host, port, user, password)
    expect("COMPRESS=DEFLATE" in m.capabilities, "COMPRESS=DEFLATE announced after LOGIN", m.capabilities)
    typ, data = m._simple_command("COMPRESS", "DEFLATE")
    expect(typ == "OK", "COMPRESS DEFLATE", (typ, data))
    z = Deflate(m)

    n = select(m, readonly=True)
    expect(n == len(manifest), "EXISTS", n)
    data = ok(m.uid("SEARCH", None, "ALL"), "UID SEARCH ALL")
    uids = [int(x) for x in data[0].split()]
    expect(len(uids) == len(manifest), "UIDs", uids)
    total = 0
    for uid, msg in zip(uids, manifest):
        meta, lit = fetch_one(m, uid, "(UID FLAGS INTERNALDATE BODY.PEEK[])")
        expect(lit == msg["raw"], f"message {msg['name']} ({msg['note']}) byte-exact over COMPRESS",
               None if lit is None else len(lit))
        flags = set(re.search(rb"FLAGS \(([^)]*)\)", meta).group(1).decode().split())
        expect(flags == set(msg["flags"]), f"flags of {msg['name']}", flags)
        date = re.search(rb'INTERNALDATE "([^"]+)"', meta).group(1).decode().strip()
        expect(date.lstrip("0") == msg["date"].lstrip("0"), f"INTERNALDATE of {msg['name']}", meta)
        total += len(lit)

    # A write, a search and a sort through the compressed stream.
    raw = (b"From: z@example.test\r\nSubject: compressed append\r\nMessage-ID: <z1@example.test>\r\n\r\n"
           + b"squeezed " * 5000 + b"\r\n")
    select(m)
    ok(m.append("INBOX", "(\\Flagged)", None, raw), "APPEND over COMPRESS")
    data = ok(m.uid("SEARCH", None, "SUBJECT", '"compressed append"'), "UID SEARCH")
    new = [int(x) for x in data[0].split()]
    expect(len(new) == 1, "the appended message found", new)
    _, lit = fetch_one(m, new[0], "(UID BODY.PEEK[])")
    expect(lit == raw, "appended message byte-exact", None if lit is None else len(lit))
    typ, data = m.uid("SORT", "(REVERSE ARRIVAL)", "UTF-8", "ALL")
    expect(typ == "OK" and int(data[0].split()[0]) == new[0], "UID SORT (REVERSE ARRIVAL): newest first", data)
    ok(m.uid("STORE", str(new[0]), "+FLAGS.SILENT", "(\\Deleted)"), "STORE")
    ok(m.expunge(), "EXPUNGE")
    typ, _ = m.logout()
    expect(typ == "BYE", "LOGOUT", typ)
    print(f"compress: {len(manifest)} messages ({total} bytes) synced byte-exact; "
          f"server sent {z.wire_in} bytes on the wire for {z.plain_in} ({z.plain_in / max(z.wire_in, 1):.1f}x)")


if __name__ == "__main__":
    try:
        main()
    except (Mismatch, imaplib.IMAP4.error) as e:
        print(f"FAIL (compress): {e}", file=sys.stderr)
        sys.exit(1)
