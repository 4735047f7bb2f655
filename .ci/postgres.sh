#!/usr/bin/env bash
# Installs Debian's PostgreSQL and starts a cluster for the connector tests
# (internal/connect/pgsink, pgcdc), then prints the export line they read:
#
#   eval "$(bash .ci/postgres.sh)"
#
# The cluster is our own (named braidtest, port 54329, listening on
# 127.0.0.1 only) so a machine's own "main" cluster is left alone. It has
# wal_level=logical and room for replication slots; the user braid
# (password braid, REPLICATION) owns the database braid. Idempotent: an
# installed package, an existing cluster and a running server are reused;
# the script stops nothing. Progress goes to stderr, the export to stdout.
set -euo pipefail

cluster=braidtest
port=${BRAID_TEST_POSTGRES_PORT:-54329}
user=braid
password=braid
db=braid

log() { echo "postgres.sh: $*" >&2; }

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  log "installing postgresql"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -1)

if ! pg_lsclusters -h | awk '{print $1"/"$2}' | grep -qx "$version/$cluster"; then
  log "creating cluster $version/$cluster on port $port"
  pg_createcluster "$version" "$cluster" -p "$port" >&2
  # Debian's postgresql.conf includes conf.d; a file of our own there keeps
  # the settings out of the generated file.
  cat >"/etc/postgresql/$version/$cluster/conf.d/braid.conf" <<'CONF'
listen_addresses = '127.0.0.1'
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
max_connections = 200
CONF
fi

if ! pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1==v && $2==c {print $4}' | grep -qx online; then
  log "starting cluster $version/$cluster"
  pg_ctlcluster "$version" "$cluster" start >&2
fi

psql_admin() {
  runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$port" -h /var/run/postgresql "$@"
}
for _ in $(seq 50); do
  psql_admin -c 'select 1' >/dev/null 2>&1 && break
  sleep 0.2
done
if ! psql_admin -tAc "select 1 from pg_roles where rolname='$user'" | grep -q 1; then
  log "creating user $user"
  psql_admin -c "create user $user with replication login password '$password'"
fi
if ! psql_admin -tAc "select 1 from pg_database where datname='$db'" | grep -q 1; then
  log "creating database $db"
  psql_admin -c "create database $db owner $user"
fi

echo "export BRAID_TEST_POSTGRES_URL='postgres://$user:$password@127.0.0.1:$port/$db?sslmode=disable'"
# How the tests restart the server (the restart test skips without it).
echo "export BRAID_TEST_POSTGRES_RESTART='pg_ctlcluster $version $cluster restart -m fast'"
