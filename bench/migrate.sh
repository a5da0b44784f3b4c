#!/usr/bin/env bash
# Whole-system benchmark: mailbox migration, ours vs mbsync, side by side in
# one run on this machine (see bench/README.md, "migrate", for results).
#
#   bash bench/migrate.sh
#
# One source account on a private Dovecot (.ci/dovecot.sh: own config,
# base_dir, log and Maildir in a temp dir, 127.0.0.1:<free port> only,
# plain LOGIN without TLS on loopback) is filled with MESSAGES generated
# messages (bench/mailgen, written straight into its Maildir: about 50 KB on
# average, so 20,000 are about 1 GB, over 6 folders, with flags and
# INTERNALDATEs). Dovecot indexes the folders and the files are read into
# the page cache once before anything is timed. Then, against that same
# account:
#
#  (a) mbsync (Debian isync) pulls every folder into a fresh Maildir:
#      Create Near, Sync Pull, CopyArrivalDate yes (it keeps INTERNALDATE),
#      its default fsync and pipelining.
#  (b) ours: examples/migrate `run --csv` into a fresh data directory of the
#      reference server with the target user created by `mailserver user
#      add`: every message stored durably (fsynced blob, committed index row,
#      checkpoint) with flags and INTERNALDATE.
#
# Both are timed from start to exit, each after a sync(1) so neither pays
# for writing back the other's (or the generator's) data; resident memory
# is the peak RSS from /usr/bin/time. Afterwards both copies are counted (Maildir files; our
# report's target counts) and must hold MESSAGES messages.
#
# Environment (optional): MESSAGES=20000 SEED=1 ONLY=ours|mbsync
# KEEP_WORK=1 PARALLEL_FOLDERS (ours: folders copied at once)
# PORT_BASE (Dovecot and the ports in our config come from
# PORT_BASE..PORT_BASE+99; else the kernel picks free ports).
#
# Writes bench/out/migrate-<UTC time>/ (logs, summary.txt, row.md).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD

MESSAGES=${MESSAGES:-20000}
SEED=${SEED:-1}
ONLY=${ONLY:-}
KEEP_WORK=${KEEP_WORK:-}
PARALLEL_FOLDERS=${PARALLEL_FOLDERS:-}
case "$ONLY" in "" | ours | mbsync) ;; *) echo "ONLY must be ours or mbsync" >&2; exit 2 ;; esac
[[ $MESSAGES =~ ^[0-9]+$ ]] || { echo "MESSAGES must be a number" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run as root: the private Dovecot instance needs it" >&2; exit 2; }

for pkg in dovecot-imapd:/usr/sbin/dovecot isync:/usr/bin/mbsync time:/usr/bin/time; do
  [ -x "${pkg#*:}" ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkg%%:*}" >/dev/null
done

. "$ROOT/.ci/lib.sh"
. "$ROOT/.ci/dovecot.sh"

stamp=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$ROOT/bench/out/migrate-$stamp
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/mailyard-bench-migrate.XXXXXX)
chmod 755 "$WORK"
if [ -n "${PORT_BASE:-}" ]; then
  [[ $PORT_BASE =~ ^[0-9]+$ ]] || { echo "PORT_BASE must be a number" >&2; exit 2; }
  export INTEROP_PORTS="$PORT_BASE $((PORT_BASE + 100)) $WORK/ports" # free_port (.ci/lib.sh)
fi
dv_dir=$WORK/dovecot
ms_pid=

cleanup() {
  [ -n "$ms_pid" ] && kill "$ms_pid" 2>/dev/null
  dovecot_stop "$dv_dir" 2>/dev/null || true
  cp "$dv_dir/dovecot.log" "$OUT/dovecot.log" 2>/dev/null || true
  [ -n "$KEEP_WORK" ] || rm -rf "$WORK"
}
trap cleanup EXIT

log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$OUT/summary.txt"; }

user=bench@bench.test
pw=bench-source-pw
echo "$user $pw" >"$WORK/accounts"
dv_port=$(free_port)
log "machine: $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg), commit $(git rev-parse --short HEAD)$(git diff --quiet || echo +dirty)"

log "dovecot on 127.0.0.1:$dv_port; generating $MESSAGES messages into its Maildir"
dovecot_start "$dv_dir" "$dv_port" "$WORK/accounts"
maildir=$dv_dir/mail/bench.test/bench/Maildir
go run ./bench/mailgen -dir "$maildir" -messages "$MESSAGES" -seed "$SEED" | tee -a "$OUT/summary.txt"
chown -R nobody:nogroup "$dv_dir/mail"
total_bytes=$(du -sb "$maildir" | cut -f1)

# Index every folder in Dovecot and read the files into the page cache, so
# neither side pays for the other's warm-up.
python3 - "$dv_port" "$user" "$pw" <<'PY' | tee -a "$OUT/summary.txt"
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
m.login(sys.argv[2], sys.argv[3])
n = 0
typ, boxes = m.list()
for line in boxes:
    name = line.decode().rsplit(' "/" ', 1)[1].strip('"')
    if b"\\Noselect" in line or b"\\NonExistent" in line:
        continue
    typ, data = m.select('"%s"' % name, readonly=True)
    assert typ == "OK", (name, data)
    count = int(data[0])
    if count:
        m.fetch("1:*", "(FLAGS INTERNALDATE RFC822.SIZE)")
    n += count
m.logout()
print("dovecot warm-up: %d messages indexed" % n)
PY
find "$maildir" -type f -exec cat {} + >/dev/null

tpl='elapsed_s=%e max_rss_kib=%M user_s=%U sys_s=%S'
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" "$2" | tail -1; }

mb_secs=n/a mb_rss=n/a mb_count=n/a
if [ "$ONLY" != ours ]; then
  mkdir -p "$WORK/mbsync"
  cat >"$WORK/mbsyncrc" <<RC
IMAPAccount src
Host 127.0.0.1
Port $dv_port
User $user
Pass "$pw"
SSLType None
AuthMechs LOGIN

IMAPStore far
Account src

MaildirStore near
Path $WORK/mbsync/
Inbox $WORK/mbsync/INBOX
SubFolders Verbatim

Channel ch
Far :far:
Near :near:
Patterns *
Create Near
Sync Pull
SyncState *
CopyArrivalDate yes
RC
  sync # start with no dirty pages of earlier steps to write back
  log "mbsync: pulling the account"
  /usr/bin/time -f "$tpl" -o "$OUT/mbsync.time" mbsync -c "$WORK/mbsyncrc" -q ch >"$OUT/mbsync.log" 2>&1 ||
    { cat "$OUT/mbsync.log"; log "mbsync failed"; exit 1; }
  mb_secs=$(field elapsed_s "$OUT/mbsync.time") mb_rss=$(field max_rss_kib "$OUT/mbsync.time")
  mb_count=$(find "$WORK/mbsync" -type f -path '*/cur/*' -o -type f -path '*/new/*' | wc -l)
  log "mbsync: ${mb_secs}s, peak RSS ${mb_rss} KiB, $mb_count messages in the Maildir"
  [ "$mb_count" = "$MESSAGES" ] || { log "mbsync copied $mb_count of $MESSAGES"; exit 1; }
fi

ours_secs=n/a ours_rss=n/a ours_count=n/a
if [ "$ONLY" != mbsync ]; then
  go build -o "$WORK/mailserver" ./examples/mailserver
  go build -o "$WORK/migrate" ./examples/migrate
  cfg=$WORK/ours.toml
  write_config "$cfg" "$WORK/data" "$(free_port)" "$(free_port)" "$(free_port)" "$(free_port)"
  printf '[migration]\nsecret_key_file = "%s"\n' "$WORK/migration.key" >>"$cfg"
  if [ -n "$PARALLEL_FOLDERS" ]; then
    printf 'folder_parallel = %s\n' "$PARALLEL_FOLDERS" >>"$cfg"
  fi
  "$WORK/mailserver" -config "$cfg" init >/dev/null
  "$WORK/mailserver" -config "$cfg" domain add bench.test >/dev/null
  "$WORK/mailserver" -config "$cfg" user add "$user" -password "target-pw-123" >/dev/null
  printf 'target,login,password,host,port,tls\n%s,%s,%s,127.0.0.1,%s,plain\n' "$user" "$user" "$pw" "$dv_port" >"$WORK/run.csv"
  sync # mbsync's gigabyte must not be written back during our run
  log "ours: migrate run --csv (one mailbox)"
  /usr/bin/time -f "$tpl" -o "$OUT/ours.time" ${OURS_WRAP:-} "$WORK/migrate" -config "$cfg" -allow 127.0.0.1 run --csv "$WORK/run.csv" \
    >"$OUT/ours.log" 2>&1 || { tail -20 "$OUT/ours.log"; log "migrate failed"; exit 1; }
  ours_secs=$(field elapsed_s "$OUT/ours.time") ours_rss=$(field max_rss_kib "$OUT/ours.time")
  "$WORK/migrate" -config "$cfg" report --mailboxes "$user" --csv "$OUT/ours-report.csv" >/dev/null
  ours_count=$(python3 - "$OUT/ours-report.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
key = next(k for k in rows[0] if k.lower().replace(" ", "_") in ("target_messages", "messages_target"))
print(sum(int(r[key] or 0) for r in rows))
PY
)
  log "ours: ${ours_secs}s, peak RSS ${ours_rss} KiB, $ours_count messages in the target"
  [ "$ours_count" = "$MESSAGES" ] || { log "ours copied $ours_count of $MESSAGES"; exit 1; }
fi

ratio=n/a
if [ "$ours_secs" != n/a ] && [ "$mb_secs" != n/a ]; then
  ratio=$(awk -v a="$mb_secs" -v b="$ours_secs" 'BEGIN { printf "%.2f", a / b }')
fi
mib=$(awk -v b="$total_bytes" 'BEGIN { printf "%.0f", b / 1048576 }')
log "speed ratio (mbsync time / ours time): $ratio"
row="| $(date -u +%Y-%m-%d) | $(git rev-parse --short HEAD)$(git diff --quiet || echo +dirty) | $(cut -d' ' -f1 /proc/loadavg) | $MESSAGES msgs, $mib MiB | ${ours_secs}s, $((${ours_rss/n\/a/0} / 1024)) MiB | ${mb_secs}s, $((${mb_rss/n\/a/0} / 1024)) MiB | **$ratio** |"
echo "$row" >"$OUT/row.md"
echo
echo "bench/README.md row:"
echo "$row"
echo "(results in $OUT)"
