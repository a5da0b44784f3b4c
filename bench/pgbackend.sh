# shellcheck shell=bash
# Sourced by bench/smtp-inbound.sh and bench/imap.sh: the store backend
# of our server in a benchmark run.
#
#   BACKEND=sqlite     (default) the embedded store in the data directory
#   BACKEND=postgres   store/postgres on a fresh database, created for the
#                      run on the server at PG_ADMIN_URL and dropped at the
#                      end (KEEP_WORK=1 keeps it); its name starts with
#                      PG_DB_PREFIX
#   PG_ADMIN_URL=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
#   PG_DB_PREFIX=mailyard_bench  PG_POOL=0 (the store's default, postgres.DefaultPoolSize)
#
# backend_setup sets STORE_TOML (the [store] section for the server's
# config, empty for sqlite) and backend_desc; backend_drop drops the
# database again.

BACKEND=${BACKEND:-sqlite}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
PG_DB_PREFIX=${PG_DB_PREFIX:-mailyard_bench}
PG_POOL=${PG_POOL:-0}
case "$BACKEND" in sqlite | postgres) ;; *) echo "BACKEND must be sqlite or postgres, got '$BACKEND'" >&2; exit 2 ;; esac
[[ $PG_DB_PREFIX =~ ^[a-z_][a-z0-9_]*$ ]] || { echo "PG_DB_PREFIX must be a lower-case SQL name, got '$PG_DB_PREFIX'" >&2; exit 2; }
[[ $PG_POOL =~ ^[0-9]+$ ]] || { echo "PG_POOL must be a number, got '$PG_POOL'" >&2; exit 2; }

STORE_TOML=
backend_desc=sqlite
pg_db=

backend_setup() {
  [ "$BACKEND" = postgres ] || return 0
  command -v psql >/dev/null || { echo "BACKEND=postgres needs psql (Debian postgresql-client)" >&2; return 1; }
  pg_db=${PG_DB_PREFIX}_$(date -u +%Y%m%d%H%M%S)_$$
  psql -X -q -v ON_ERROR_STOP=1 "$PG_ADMIN_URL" -c "CREATE DATABASE $pg_db" || { pg_db=; return 1; }
  local base=${PG_ADMIN_URL%%\?*} query=
  [[ $PG_ADMIN_URL == *\?* ]] && query="?${PG_ADMIN_URL#*\?}"
  local dsn="${base%/*}/$pg_db$query"
  STORE_TOML="[store]
backend = \"postgres\"
dsn = \"$dsn\"
pool_size = $PG_POOL"
  backend_desc="postgres $(psql -X -At "$PG_ADMIN_URL" -c 'SHOW server_version' | awk '{print $1}') (database $pg_db, pool ${PG_POOL/#0/default})"
}

backend_drop() {
  [ -n "$pg_db" ] || return 0
  if [ -n "${KEEP_WORK:-}" ]; then
    echo "database kept: $pg_db"
  else
    psql -X -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" || true
  fi
  pg_db=
}
