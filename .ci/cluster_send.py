#!/usr/bin/env python3
"""SMTP load that records which messages were acknowledged with 250.

    cluster_send.py HOST PORT COUNT THREADS RCPT_FMT PREFIX OUTDIR [SOURCE_IP]

THREADS connections (smtplib, one session each, reused from message to
message) send COUNT messages from sender@remote.test to RCPT_FMT % i (or RCPT_FMT
itself without a %).
Every attempt has its own Message-ID, <PREFIX-i-attempt@cluster.test>: a
message whose attempt failed (connection cut, 4xx) is sent again under a
new one on a new connection, so an attempt the server stored without the
client seeing the 250 can never be mistaken for a duplicate.

OUTDIR/acked gets the Message-IDs acknowledged with 250 (one a line),
OUTDIR/tried every Message-ID sent, OUTDIR/progress the number acked so
far (rewritten as it grows). Exits 1 if a message still has no 250 after
two minutes of retries.
"""
import os
import smtplib
import socket
import sys
import threading
import time

host, port, count, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rcpt_fmt, prefix, outdir = sys.argv[5], sys.argv[6], sys.argv[7]
source = (sys.argv[8], 0) if len(sys.argv) > 8 else None

lock = threading.Lock()
next_i = 0
acked, tried = [], []
failed = []


def rcpt(i):
    return rcpt_fmt % i if "%" in rcpt_fmt else rcpt_fmt


def take():
    global next_i
    with lock:
        if next_i >= count:
            return None
        i = next_i
        next_i += 1
        return i


def connect():
    s = smtplib.SMTP(timeout=60, source_address=source)
    s.connect(host, port)
    s.ehlo("load.remote.test")
    return s


def progress():
    tmp = os.path.join(outdir, "progress.tmp")
    with open(tmp, "w") as f:
        f.write(str(len(acked)))
    os.replace(tmp, os.path.join(outdir, "progress"))


def worker():
    try:
        send()
    except Exception as e:  # a bug here must fail the run, not hide
        with lock:
            failed.append("sender thread: %r" % e)


def send():
    conn = None
    while (i := take()) is not None:
        attempt, deadline = 0, time.time() + 120
        while True:
            mid = "<%s-%d-%d@cluster.test>" % (prefix, i, attempt)
            with lock:
                tried.append(mid)
            msg = ("From: <sender@remote.test>\r\nTo: <%s>\r\nSubject: %s %d\r\nMessage-ID: %s\r\n\r\n"
                   "message %d, attempt %d\r\n" % (rcpt(i), prefix, i, mid, i, attempt))
            try:
                if conn is None:
                    conn = connect()
                conn.sendmail("sender@remote.test", [rcpt(i)], msg.encode())
            except (smtplib.SMTPException, OSError, socket.timeout) as e:
                # Cut by a killed node, or refused for now: a new
                # connection (HAProxy picks a live node) and a new id.
                try:
                    if conn is not None:
                        conn.close()
                except OSError:
                    pass
                conn = None
                attempt += 1
                if time.time() > deadline:
                    with lock:
                        failed.append("%s: %s" % (mid, e))
                    break
                time.sleep(0.2)
                continue
            with lock:
                acked.append(mid)
                if len(acked) % 100 == 0:
                    progress()
            break
    if conn is not None:
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            pass


start = time.time()
ts = [threading.Thread(target=worker) for _ in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
progress()
with open(os.path.join(outdir, "acked"), "w") as f:
    f.write("".join(m + "\n" for m in acked))
with open(os.path.join(outdir, "tried"), "w") as f:
    f.write("".join(m + "\n" for m in tried))
el = time.time() - start
print("%s: %d acknowledged, %d attempts, %.1fs (%.0f/s)" % (prefix, len(acked), len(tried), el, len(acked) / el))
if failed:
    print("never acknowledged:", *failed[:10], sep="\n  ")
    sys.exit(1)
