# shellcheck shell=bash
# Port allocation shared by the interop scripts (.ci/lib.sh) and the
# benchmark scripts (bench/ports.sh); sourced, not run.

# any_port prints a port the kernel picks as free on 127.0.0.1. Another
# process may take it before the caller binds it; range_port cannot race
# with a script that keeps to its own range.
any_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# range_port LO HI STATE prints the next port of LO..HI-1 that is free
# on 127.0.0.1: ports are handed out in order (STATE is the file with
# the next one to try), never twice, skipping any in use. It fails when
# none is left.
range_port() {
  python3 - "$1" "$2" "$3" <<'PY'
import socket, sys
lo, hi, state = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
try:
    nxt = max(lo, int(open(state).read()))
except (OSError, ValueError):
    nxt = lo
for p in range(nxt, hi):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    open(state, "w").write(str(p + 1))
    print(p)
    sys.exit(0)
sys.exit("no free port left in %d-%d" % (lo, hi - 1))
PY
}
