"""Raw-socket probe of a listener that must refuse PROXY headers from an
untrusted source (used by interop-proxy.sh and interop-cluster.sh)."""
import socket


def talk(port, send, src="127.0.0.6"):
    """Connect to 127.0.0.1:port from src, read the greeting, send send,
    and return the greeting and everything read until the server closed
    the connection (a reset or a 5 s silence is appended as <Name>)."""
    s = socket.create_connection(("127.0.0.1", port), 5, source_address=(src, 0))
    s.settimeout(5)
    greeting = s.recv(4096)
    s.sendall(send)
    out = b""
    try:
        while chunk := s.recv(4096): out += chunk
    except (ConnectionResetError, TimeoutError, socket.timeout) as e:
        out += b"<" + type(e).__name__.encode() + b">"
    s.close()
    return greeting, out
