#!/usr/bin/env python3
"""Replays refused IMAP literals from a raw socket, for .ci/interop-literal.sh.

Usage: literal_replay.py HOST PORT USER PASS

Every case sends a literal the server must refuse, with commands hidden
in what follows it (tag "z": DELETE Victim, CREATE Evil, RENAME Victim
Gone) or, before login, the line a broken server would take as LOGIN's
arguments. Each must be answered with a tagged NO or BAD within a
second, with no "+" for a synchronising literal; afterwards the same
connection must either answer a NOOP (the refused data was skipped) or
have said BYE and closed. No line tagged "z" may ever come. At the end a
fresh connection checks that Victim exists and Evil and Gone do not.
Any failure raises, so the exit status is non-zero.
"""
import socket
import sys
import time

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
HIDDEN = (b"z DELETE Victim\r\nz CREATE Evil\r\nz RENAME Victim Gone\r\n"
          b"z LOGIN " + user.encode() + b" \"" + password.encode() + b"\"\r\n")


def hidden(n):
    """n bytes of literal data made of commands."""
    data = b"foo\r\n" + HIDDEN
    while len(data) < n:
        data += HIDDEN
    return data[:n]


class Conn:
    def __init__(self):
        self.s = socket.create_connection((host, port), timeout=10)
        self.buf = b""
        greeting = self.line(10)
        assert greeting is not None and greeting.startswith(b"* OK"), greeting

    def send(self, data):
        try:
            self.s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed: the next read says so

    def line(self, timeout):
        """The next line, or None at the end of the connection."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SystemExit(f"no answer within {timeout}s (have {self.buf[:200]!r})")
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk
        l, _, self.buf = self.buf.partition(b"\n")
        if l.startswith(b"z "):
            raise SystemExit(f"a command hidden in a literal ran: {l!r}")
        return l + b"\n"

    def tagged(self, tag, timeout=1.0, plus_ok=False):
        """Lines up to tag's answer, within timeout seconds; (answer, seconds)."""
        start = time.monotonic()
        while True:
            l = self.line(timeout - (time.monotonic() - start))
            if l is None:
                raise SystemExit(f"connection closed before {tag}'s answer")
            if l.startswith(b"+") and not plus_ok:
                raise SystemExit(f"continuation request for a literal that must be refused ({tag})")
            if l.startswith(tag.encode() + b" "):
                return l, time.monotonic() - start

    def refused(self, tag, what):
        l, secs = self.tagged(tag)
        if not (l.startswith(tag.encode() + b" NO") or l.startswith(tag.encode() + b" BAD")):
            raise SystemExit(f"{what}: got {l!r}, want a tagged NO or BAD")
        print(f"{what}: {l.decode().strip()} in {secs * 1000:.0f} ms")
        return l

    def in_step(self, what):
        """The data after the refusal was skipped (NOOP answered) or the
        server said BYE and closed; nothing hidden ran."""
        self.send(b"p NOOP\r\n")
        bye = False
        while True:
            l = self.line(2)
            if l is None:
                if not bye:
                    print(f"{what}: connection closed")
                return
            if l.startswith(b"* BYE"):
                bye = True
                print(f"{what}: {l.decode().strip()}, connection closed")
            if l.startswith(b"p "):
                assert l.startswith(b"p OK"), (what, l)
                print(f"{what}: in step (NOOP answered)")
                return

    def login(self):
        self.send(b"a LOGIN " + user.encode() + b" \"" + password.encode() + b"\"\r\n")
        l, _ = self.tagged("a", 10)
        assert l.startswith(b"a OK"), l

    def close(self):
        self.s.close()


def ok(c, tag, cmd):
    c.send(tag.encode() + b" " + cmd + b"\r\n")
    l, _ = c.tagged(tag, 10)
    assert l.startswith(tag.encode() + b" OK"), (cmd, l)


setup = Conn()
setup.login()
ok(setup, "v", b"CREATE Victim")
setup.close()

# 1. Before login, synchronising: the next line is not LOGIN's arguments.
c = Conn()
c.send(b"a LOGIN {4294967295}\r\n")
c.refused("a", "pre-auth LOGIN {4294967295}")
c.send(user.encode() + b" \"" + password.encode() + b"\"\r\n")
c.send(b"b SELECT Victim\r\n")
while True:
    l = c.line(2)
    if l is None:
        break
    if l.startswith(b"b OK") or l.startswith(user.encode() + b" OK"):
        raise SystemExit(f"the line after a refused literal logged in: {l!r}")
    if l.startswith(b"b "):
        break
print("pre-auth LOGIN {4294967295}: the next line did not log in")
c.close()

# 2. Before login, non-synchronising (only LITERAL- is announced).
c = Conn()
c.send(b"a LOGIN {5000+}\r\n" + hidden(5000) + b" x\r\n")
c.refused("a", "pre-auth LOGIN {5000+}")
c.in_step("pre-auth LOGIN {5000+}")
c.close()

# 3. After login, synchronising.
c = Conn()
c.login()
ok(c, "s", b"SELECT INBOX")
c.send(b"c CREATE {5000}\r\n")
c.refused("c", "CREATE {5000}")
c.in_step("CREATE {5000}")

# 4. After login, non-synchronising over the 4 KiB buffered limit.
c.send(b"c UID SEARCH TEXT {5222+}\r\n" + hidden(5222) + b"\r\n")
c.refused("c", "UID SEARCH TEXT {5222+}")
c.in_step("UID SEARCH TEXT {5222+}")

# 5. A failed command ending in a non-synchronising literal.
c.send(b"c CREATE abc junk {%d+}\r\n" % len(HIDDEN) + HIDDEN + b"\r\n")
c.refused("c", "CREATE abc junk {n+}")
c.in_step("CREATE abc junk {n+}")

# 6. SEARCH nested 20,000 deep: BAD, not NO [SERVERBUG].
c.send(b"d SEARCH " + b"(" * 20000 + b"ALL" + b")" * 20000 + b"\r\n")
l = c.refused("d", "SEARCH nested 20000 deep")
assert l.startswith(b"d BAD"), l
c.in_step("SEARCH nested 20000 deep")

# 7. APPEND over APPENDLIMIT, synchronising.
c.send(b"e APPEND INBOX {52428801}\r\n")
l = c.refused("e", "APPEND {52428801}")
assert b"[TOOBIG]" in l, l
c.in_step("APPEND {52428801}")

# 8. APPEND over APPENDLIMIT, non-synchronising: the message is commands.
c.send(b"e APPEND INBOX {52428801+}\r\nSubject: x\r\n\r\n" + HIDDEN * 3)
l = c.refused("e", "APPEND {52428801+}")
assert b"[TOOBIG]" in l, l
c.in_step("APPEND {52428801+}")
c.close()

# Nothing hidden ran: Victim is there, Evil and Gone are not.
c = Conn()
c.login()
c.send(b"l LIST \"\" \"*\"\r\n")
names = []
while True:
    l = c.line(10)
    assert l is not None
    if l.startswith(b"* LIST"):
        names.append(l.rsplit(b" ", 1)[1].strip().strip(b"\"").decode())
    if l.startswith(b"l "):
        assert l.startswith(b"l OK"), l
        break
c.close()
assert "Victim" in names and "Evil" not in names and "Gone" not in names, names
print(f"mailboxes afterwards: {sorted(names)}")
