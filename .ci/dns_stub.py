#!/usr/bin/env python3
"""A loopback DNS stub for CI, which has no DNS: it answers every query
over UDP with NXDOMAIN (RFC 1035 §4.1.1, RCODE 3), echoing the question, so
SPF, DKIM and DMARC lookups end at once with "none". Prints the port it
listens on, then serves until killed."""
import socket
import sys

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0))
print(s.getsockname()[1], flush=True)
while True:
    q, addr = s.recvfrom(4096)
    if len(q) < 12:
        continue
    qdcount = int.from_bytes(q[4:6], "big")
    # Header: same ID; QR=1, opcode from the query, RD copied, RA=1,
    # RCODE=3; the question echoed, no answers.
    flags = 0x8000 | (q[2] & 0x79) << 8 | (q[2] & 0x01) << 8 | 0x0080 | 3
    hdr = q[0:2] + flags.to_bytes(2, "big") + q[4:6] + b"\0\0\0\0\0\0"
    # The question section: names end at a zero octet, then QTYPE and QCLASS.
    i = 12
    for _ in range(qdcount):
        while i < len(q) and q[i] != 0:
            i += q[i] + 1
        i += 5
    s.sendto(hdr + q[12:i], addr)
