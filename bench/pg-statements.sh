#!/usr/bin/env bash
# Statements our server sends per SMTP delivery on store/postgres
# (bench/README.md, "postgres: statements and round trips per operation").
#
#   MAILSERVER=<binary> MESSAGES=200 PORT_BASE=21000 bash bench/pg-statements.sh
#
# Runs bench/smtp-inbound.sh with BACKEND=postgres ONLY=ours on a fresh
# database and turns log_statement = all on for that database alone as
# soon as the run created it (before the server starts: the setting
# applies to new connections), then counts that database's statements
# in the server log by their text, per server process (`mail list`, run
# after the load, has its own). Needs read access to the PostgreSQL log
# (PG_LOG, Debian's default for version 15) and a superuser at
# PG_ADMIN_URL.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
PG_LOG=${PG_LOG:-/var/log/postgresql/postgresql-15-main.log}
MESSAGES=${MESSAGES:-200}
prefix=pgstmts_$$
[ -r "$PG_LOG" ] || { echo "cannot read $PG_LOG (set PG_LOG)" >&2; exit 2; }
start=$(wc -l <"$PG_LOG")
dbfile=$(mktemp)
trap 'rm -f "$dbfile"' EXIT
( for _ in $(seq 1200); do
    db=$(psql -X -At "$PG_ADMIN_URL" -c "SELECT datname FROM pg_database WHERE datname LIKE '${prefix}%'")
    if [ -n "$db" ]; then
      psql -X -q "$PG_ADMIN_URL" -c "ALTER DATABASE $db SET log_statement = 'all'"
      echo "$db" >"$dbfile"
      exit 0
    fi
    sleep 0.05
  done ) &
watcher=$!
BACKEND=postgres ONLY=ours IDLE_CONNS=0 MESSAGES=$MESSAGES PG_DB_PREFIX=$prefix bash bench/smtp-inbound.sh | grep "ours:"
wait "$watcher"
db=$(cat "$dbfile")
[ -n "$db" ] || { echo "the run's database was never seen" >&2; exit 1; }
log=$(mktemp)
tail -n +"$((start + 1))" "$PG_LOG" | grep "@$db " | grep -E 'LOG:  (execute|statement)' >"$log" || true
echo "database $db, $MESSAGES messages"
echo "statements per process (pid: count):"
sed -E 's/.*\[([0-9]+)\].*/\1/' "$log" | sort | uniq -c | sort -rn
echo "statements by text (first 70 characters; a blank one begins with a newline):"
sed -E 's/.*LOG:  (execute|statement)[^:]*: //' "$log" | cut -c1-70 | sort | uniq -c | sort -rn | head -30
rm -f "$log"
