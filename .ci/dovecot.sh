# A private Dovecot IMAP server on loopback (sourced, not run), used by
# bench/imap.sh as the reference peer and by .ci/interop-imap.sh with
# IMAP_SERVER=dovecot to check the interop script itself against a
# well-known server. Everything lives under one directory: config, runtime
# sockets, logs and the Maildirs; the system Dovecot (if any) is untouched.
#
#   dovecot_start DIR PORT ACCOUNTS [EXTRA_CONF]
#     ACCOUNTS: file of "user password" lines (a password starting with
#     {SCHEME} is a hash, e.g. {ARGON2ID}$argon2id$...). Plain-text LOGIN is allowed
#     (ssl = no; loopback only). EXTRA_CONF is appended to dovecot.conf.
#     Sets dovecot_pid (the master process).
#   dovecot_stop DIR
#   dovecot_pids DIR     the master and all its children, one per line

dovecot_start() {
  local dir=$1 port=$2 accounts=$3 extra=${4:-} i
  mkdir -p "$dir/run" "$dir/state" "$dir/mail"
  # Login and auth processes run as dovenull/dovecot and must reach the
  # sockets under run/; mail is owned by nobody (Dovecot refuses uid 0).
  chmod 755 "$dir"
  chmod o+x "$(dirname "$dir")"
  chown nobody:nogroup "$dir/mail"
  # A password that starts with {SCHEME} is a hash and is used as is.
  awk 'NF >= 2 { print $1 ":" ($2 ~ /^\{/ ? "" : "{PLAIN}") $2 }' "$accounts" >"$dir/passwd"
  chmod 644 "$dir/passwd"
  cat >"$dir/dovecot.conf" <<CONF
# Private instance: own base_dir, state_dir and log; loopback only.
base_dir = $dir/run
state_dir = $dir/state
instance_name = mailyard-$port
log_path = $dir/dovecot.log
info_log_path = $dir/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 1
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dir/passwd
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$dir/mail/%d/%n
}
mail_location = maildir:~/Maildir
mail_max_userip_connections = 100000
namespace inbox {
  inbox = yes
  separator = /
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $port
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  # no login rate penalty on loopback
}
auth_failure_delay = 0
$extra
CONF
  /usr/sbin/dovecot -c "$dir/dovecot.conf" -F >>"$dir/dovecot.stdout" 2>&1 &
  dovecot_pid=$!
  for ((i = 0; i < 300; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    kill -0 "$dovecot_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "dovecot did not listen on 127.0.0.1:$port:" >&2
  tail -5 "$dir/dovecot.stdout" "$dir/dovecot.log" >&2 2>/dev/null
  return 1
}

dovecot_pids() {
  local master
  master=$(cat "$1/run/master.pid" 2>/dev/null) || return 0
  echo "$master"
  pgrep -P "$master" 2>/dev/null || true
}

dovecot_stop() {
  local dir=$1 master i
  master=$(cat "$dir/run/master.pid" 2>/dev/null) || return 0
  /usr/sbin/dovecot -c "$dir/dovecot.conf" stop >/dev/null 2>&1 || kill -TERM "$master" 2>/dev/null
  for ((i = 0; i < 100; i++)); do
    kill -0 "$master" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$master" 2>/dev/null || true
}
