#!/usr/bin/env bash
# LDAP connector benchmark (directory/ldap): a private slapd on a loopback
# port with BENCH_USERS Active-Directory-like users (default 50,000) and
# BENCH_GROUPS groups of 20 members (default 5,000), synced into the
# built-in directory on SQLite. Reports the full sync (time, peak Go heap,
# process peak RSS), an unchanged full sync, an incremental sync of 100
# changes (uSNChanged), and bind-auth latency p50/p99 through the
# server's authenticator. Installs slapd with .ci/peers.sh if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v slapd >/dev/null || [ -x /usr/sbin/slapd ] || bash .ci/peers.sh
mkdir -p bench/out
out=bench/out/ldap-sync-$(date -u +%Y%m%dT%H%M%SZ).log
MAILYARD_LDAP_BENCH=1 MAILYARD_REQUIRE_PEERS=1 \
  BENCH_USERS=${BENCH_USERS:-50000} BENCH_GROUPS=${BENCH_GROUPS:-5000} \
  go test -count=1 -timeout 60m -run '^TestLDAPSyncBench$' -v ./directory/ldap/ 2>&1 | tee "$out" | grep -E 'RESULT|slapadd|^(ok|FAIL|---)'
echo "log: $out"
