#!/usr/bin/env python3
"""Memory per idle SMTP connection.

Opens COUNT TCP connections to HOST:PORT, reads each greeting, leaves them
idle, and compares the server's memory before and after:

  --pid PID        VmRSS of that one process (a server with one process,
                   many connections: ours).
  --pss-tree PID   summed PSS of PID and all its descendants (a
                   process-per-connection server: Postfix's master and its
                   smtpd children). PSS splits shared pages fairly, so the
                   sum does not count shared libraries once per process.

Connections come from several loopback source addresses (127.0.0.2, ...)
so a per-IP connection limit does not refuse them; the destination is
always the given host (127.0.0.1). Prints key=value lines.
"""
import argparse
import os
import resource
import selectors
import socket
import sys
import time


def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may hold spaces and parentheses.
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree(pid):
    kids = children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:  # exited meanwhile, or a kernel thread
        pass
    return 0


def measure(args):
    """Memory in KiB: mean of three samples half a second apart."""
    vals = []
    for i in range(3):
        if args.pid:
            vals.append(status_kb(args.pid, "VmRSS"))
        else:
            vals.append(sum(pss_kb(p) for p in tree(args.pss_tree)))
        if i < 2:
            time.sleep(0.5)
    return sum(vals) / len(vals), len(tree(args.pss_tree)) if args.pss_tree else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--per-source", type=int, default=100,
                    help="connections per loopback source address")
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("--timeout", type=float, default=120.0)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--pid", type=int)
    g.add_argument("--pss-tree", type=int)
    args = ap.parse_args()
    if args.host != "127.0.0.1":
        sys.exit("refusing to connect anywhere but 127.0.0.1")

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.count + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))

    time.sleep(args.settle)
    before, procs_before = measure(args)

    sel = selectors.DefaultSelector()
    bufs = {}
    for i in range(args.count):
        src = "127.0.0.%d" % (2 + i // args.per_source)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((src, 0))
        s.setblocking(False)
        s.connect_ex((args.host, args.port))
        sel.register(s, selectors.EVENT_READ)
        bufs[s] = b""

    greeted, refused, closed = [], [], []
    first_refusal = ""
    deadline = time.monotonic() + args.timeout
    pending = len(bufs)
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1.0):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except (ConnectionResetError, ConnectionRefusedError):
                data = b""
            if not data:
                closed.append(s)
            else:
                bufs[s] += data
                # A greeting may be multi-line (220-...); its last line is "220 ".
                lines = bufs[s].split(b"\r\n")
                last = [l for l in lines[:-1] if len(l) >= 4 and l[3:4] == b" "]
                if not last:
                    continue
                if last[0].startswith(b"220"):
                    greeted.append(s)
                else:
                    refused.append(s)
                    first_refusal = first_refusal or last[0].decode(errors="replace")
            sel.unregister(s)
            pending -= 1

    time.sleep(args.settle)
    after, procs_after = measure(args)

    # Still open? A closed peer reads as EOF; an open idle one would block.
    still_open = 0
    for s in greeted:
        try:
            if s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                continue
        except BlockingIOError:
            pass
        except OSError:
            continue
        still_open += 1

    n = len(greeted)
    print(f"idle_requested={args.count}")
    print(f"idle_greeted={n}")
    print(f"idle_refused={len(refused)}")
    print(f"idle_closed_before_greeting={len(closed)}")
    print(f"idle_no_greeting={pending}")
    print(f"idle_still_open={still_open}")
    if first_refusal:
        print(f"idle_first_refusal={first_refusal!r}")
    print(f"mem_before_kb={before:.0f}")
    print(f"mem_after_kb={after:.0f}")
    print(f"procs_before={procs_before}")
    print(f"procs_after={procs_after}")
    print(f"bytes_per_conn={((after - before) * 1024 / n) if n else float('nan'):.0f}")

    for s in bufs:
        try:
            s.close()
        except OSError:
            pass
    return 0 if n == args.count and still_open == n else 1


if __name__ == "__main__":
    sys.exit(main())
