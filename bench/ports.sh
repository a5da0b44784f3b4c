# shellcheck shell=bash
# Sourced by bench/smtp-inbound.sh and bench/imap.sh after WORK is set.
. "$(dirname "${BASH_SOURCE[0]}")/../.ci/ports.sh"

# free_port prints a free TCP port on 127.0.0.1; with PORT_BASE set, the
# next free one of PORT_BASE..PORT_BASE+99 (the next to try kept in
# $WORK/ports.next), so a run on a shared machine keeps to its own block.
free_port() {
  if [ -z "${PORT_BASE:-}" ]; then
    any_port
    return
  fi
  range_port "$PORT_BASE" $((PORT_BASE + 100)) "$WORK/ports.next"
}
