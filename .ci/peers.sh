#!/usr/bin/env bash
# Installs the outside peers the tests and interop scripts use (Debian
# packages by name). Idempotent; safe to run on a developer machine.
set -euo pipefail
need=()
command -v swaks >/dev/null || need+=(swaks)
# swaks speaks STARTTLS/SMTPS only with these Perl modules, which
# --no-install-recommends leaves out.
perl -MNet::SSLeay -e1 2>/dev/null || need+=(libnet-ssleay-perl)
perl -MIO::Socket::SSL -e1 2>/dev/null || need+=(libio-socket-ssl-perl)
command -v smtp-source >/dev/null || need+=(postfix)
command -v python3 >/dev/null || need+=(python3)
# DKIM interop (.ci/interop-dkim.sh): dkimpy's dkimsign/dkimverify (its
# Ed25519 support comes with python3-nacl), OpenDKIM's opendkim-testmsg,
# and ip(8) to bring up loopback in the private network namespace that
# serves their DNS.
command -v dkimverify >/dev/null || need+=(python3-dkim)
command -v opendkim-testmsg >/dev/null || [ -x /usr/sbin/opendkim-testmsg ] || need+=(opendkim-tools)
command -v ip >/dev/null || [ -x /usr/sbin/ip ] || need+=(iproute2)
# Milter interop (.ci/interop-milter.sh): OpenDKIM's daemon, a real
# libmilter milter, run in the foreground on a loopback port; curl reads
# /metrics.
command -v opendkim >/dev/null || [ -x /usr/sbin/opendkim ] || need+=(opendkim)
command -v curl >/dev/null || need+=(curl)
# IMAP interop (.ci/interop-imap.sh): mbsync pulls a whole account;
# openssl fetches the server's self-signed certificate for it.
command -v mbsync >/dev/null || need+=(isync)
command -v openssl >/dev/null || need+=(openssl)
# Migration tests (migration/, examples/migrate, internal/dovecottest):
# a private Dovecot is the source server; doveadm (dovecot-core) resets a
# folder's UIDVALIDITY. No system service is started in the container.
[ -x /usr/sbin/dovecot ] || command -v dovecot >/dev/null || need+=(dovecot-imapd)
# LDAP connector tests (directory/ldap): OpenLDAP's slapd, started by the
# tests as the current user on a loopback port, and ldapadd/ldapsearch.
command -v slapd >/dev/null || [ -x /usr/sbin/slapd ] || need+=(slapd)
command -v ldapadd >/dev/null || need+=(ldap-utils)
# DAV interop (.ci/interop-dav.sh) and bench/dav.sh: vdirsyncer and
# python3-caldav (for /usr/bin/python3, with python3-requests) are the
# clients; Radicale is the reference CalDAV/CardDAV server.
command -v vdirsyncer >/dev/null || need+=(vdirsyncer)
/usr/bin/python3 -c 'import caldav' 2>/dev/null || need+=(python3-caldav)
command -v radicale >/dev/null || need+=(radicale)
# PostgreSQL (store/postgres tests): a server on 127.0.0.1:5432 that the
# user postgres reaches without a password (MAILYARD_POSTGRES_DSN
# overrides where the tests look).
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
command -v pg_isready >/dev/null || need+=(postgresql-client)
# EWS interop (.ci/interop-ews.sh): exchangelib, a real EWS client, for
# /usr/bin/python3 (it brings requests_ntlm for NTLM).
/usr/bin/python3 -c 'import exchangelib' 2>/dev/null || need+=(python3-exchangelib)
# Load balancer interop (.ci/interop-proxy.sh): HAProxy with the PROXY
# protocol, run in the foreground on loopback ports.
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
# Geo interop (.ci/interop-geo.sh): three nats-server in a JetStream
# cluster on loopback ports, for the sites' external-NATS variant.
command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  # Postfix asks how to configure itself; a local-only install is enough:
  # we use its smtp-source/smtp-sink tools and, in bench/, a private
  # instance with its own config directory.
  echo "postfix postfix/main_mailer_type select Local only" | debconf-set-selections
  echo "postfix postfix/mailname string localhost" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  # Trust on loopback, for the tests only; then start every cluster.
  for hba in /etc/postgresql/*/main/pg_hba.conf; do
    grep -q '^host all all 127.0.0.1/32 trust' "$hba" || sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  done
  service postgresql start >/dev/null 2>&1 || for d in /etc/postgresql/*/main; do
    v=$(basename "$(dirname "$d")"); pg_ctlcluster "$v" main start || true
  done
  for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
fi
psql -h 127.0.0.1 -U postgres -d postgres -Atc 'SELECT 1' >/dev/null || { echo "peer PostgreSQL does not answer on 127.0.0.1:5432 as user postgres"; exit 1; }
for c in swaks smtp-source python3 dkimsign dkimverify mbsync doveadm vdirsyncer radicale; do command -v "$c" >/dev/null || { echo "peer $c missing after install"; exit 1; }; done
echo "peers: swaks $(swaks --version 2>/dev/null | head -1 | awk '{print $NF}'), postfix tools, $(python3 --version), $(psql -h 127.0.0.1 -U postgres -Atc 'SHOW server_version')"
