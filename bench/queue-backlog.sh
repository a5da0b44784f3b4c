#!/usr/bin/env bash
# Outbound queue with a large backlog (issue 13, item 3; bench/README.md,
# "queue-backlog"): enqueue RCPTS recipients to a next hop that refuses
# connections (every attempt defers), then measure RSS and the CPU time per
# scheduling pass while the backlog waits (bench/queuebacklog).
#
#   bash bench/queue-backlog.sh            # this tree
#   BEFORE=REV bash bench/queue-backlog.sh # the queue of git revision REV,
#                                          # from before package queue
#                                          # (smtp.Queue on store.Records)
#
# Environment: RCPTS=1000000 PER_MSG=1000 POLL=1s PASSES=10 BEFORE=rev
# Writes bench/out/queue-backlog-<UTC time>.txt and prints the result line.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
RCPTS=${RCPTS:-1000000}
PER_MSG=${PER_MSG:-1000}
POLL=${POLL:-1s}
PASSES=${PASSES:-10}
BEFORE=${BEFORE:-}

stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$ROOT/bench/out"
OUT=$ROOT/bench/out/queue-backlog-$stamp.txt
WORK=$(mktemp -d /tmp/mailyard-bench-queue.XXXXXX)
cleanup() {
  if [ -n "$BEFORE" ]; then git -C "$ROOT" worktree remove --force "$WORK/src" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

src=$ROOT
rev=$(git -C "$ROOT" rev-parse --short HEAD)
if [ -n "$BEFORE" ]; then
  # The same program on the old API: smtp.NewQueue(smtp.QueueOptions{...})
  # with the records in store.Records; the lines marked new-only go.
  git -C "$ROOT" worktree add --detach "$WORK/src" "$BEFORE" >/dev/null
  src=$WORK/src
  rev=$(git -C "$src" rev-parse --short HEAD)
  mkdir -p "$src/bench/queuebacklog"
  sed -e '/\/\/ new-only/d' \
      -e 's#"github.com/mailyard/mailyard/queue"#"github.com/mailyard/mailyard/smtp"#' \
      -e 's#queue\.New(queue\.Options{#smtp.NewQueue(smtp.QueueOptions{#' \
      "$ROOT/bench/queuebacklog/main.go" > "$src/bench/queuebacklog/main.go"
fi
(cd "$src" && go build -o "$WORK/queuebacklog" ./bench/queuebacklog)
mkdir -p "$WORK/data"
echo "commit=$rev $(date -u +%FT%TZ)" | tee "$OUT"
/usr/bin/time -v "$WORK/queuebacklog" -rcpts "$RCPTS" -per-msg "$PER_MSG" -poll "$POLL" -passes "$PASSES" -dir "$WORK/data" \
  2> "$WORK/time.txt" | tee -a "$OUT"
grep -E 'Elapsed|Maximum resident' "$WORK/time.txt" | tee -a "$OUT"
