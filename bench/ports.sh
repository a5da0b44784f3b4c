# shellcheck shell=bash
# Sourced by bench/smtp-inbound.sh and bench/imap.sh after WORK is set.
#
# free_port prints a free TCP port on 127.0.0.1; with PORT_BASE set, the
# next free one of PORT_BASE..PORT_BASE+99 (counted in $WORK/ports.next),
# so a run on a shared machine keeps to its own block.
free_port() { # PORT_BASE set: the next free one of PORT_BASE..PORT_BASE+99
  if [ -z "${PORT_BASE:-}" ]; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
    return
  fi
  python3 - "$PORT_BASE" "$WORK/ports.next" <<'PY'
import socket, sys
base, path = int(sys.argv[1]), sys.argv[2]
try:
    i = int(open(path).read())
except OSError:
    i = 0
while i < 100:
    p, i = base + i, i + 1
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    open(path, "w").write(str(i))
    print(p)
    sys.exit(0)
sys.exit("no free port left in PORT_BASE..PORT_BASE+99")
PY
}
