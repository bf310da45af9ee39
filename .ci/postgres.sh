#!/usr/bin/env bash
# Bring up a local PostgreSQL server for the store tests and export its URL.
#
#   source .ci/postgres.sh      # from .ci/run (or a shell): sets LATITUDE_TEST_PG_URL
#   bash .ci/postgres.sh        # just makes sure the server is up; prints the URL
#
# Needs root on Debian 12 with the Debian package archive reachable. Idempotent:
# installs postgresql only when missing, creates the cluster only when missing,
# starts it only when down, and (re)sets the role and database every time.
# Sourcing it does not change the caller's shell options; on failure it returns
# (or exits, when run) non-zero with a message on stderr and exports nothing.
#
# Result: role latitude / password latitude (LOGIN CREATEDB — the tests create one
# database per test), database latitude_test, listening on 127.0.0.1, and
#   LATITUDE_TEST_PG_URL=postgresql+psycopg://latitude:latitude@127.0.0.1:<port>/latitude_test
# (port 5432 unless the cluster was already set up on another one).

_latitude_pg_log() { echo "postgres.sh: $*" >&2; }

_latitude_pg_setup() {
    local version port status tries policy

    if [ "$(id -u)" != "0" ]; then
        _latitude_pg_log "must run as root (apt-get, pg_ctlcluster)"
        return 1
    fi

    if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || ! command -v pg_ctlcluster >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        # Refresh the package lists only when apt knows no candidate for postgresql.
        policy=$(apt-cache policy postgresql 2>/dev/null || true)
        if [[ "$policy" != *"Candidate: "[0-9]* ]]; then
            _latitude_pg_log "apt-get update"
            apt-get update -qq >&2 || { _latitude_pg_log "apt-get update failed"; return 1; }
        fi
        _latitude_pg_log "apt-get install postgresql"
        apt-get install -y -qq postgresql >&2 || { _latitude_pg_log "apt-get install postgresql failed"; return 1; }
    fi

    version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    if [ -z "$version" ]; then
        _latitude_pg_log "no PostgreSQL version found under /usr/lib/postgresql"
        return 1
    fi

    # The Debian package creates a cluster "main" on install; a container image
    # built with policy-rc.d or a wiped /var/lib may not have one.
    if ! pg_lsclusters -h 2>/dev/null | awk -v v="$version" '$1 == v && $2 == "main" {found=1} END {exit !found}'; then
        _latitude_pg_log "creating cluster $version/main"
        pg_createcluster "$version" main -- --auth-local=peer --auth-host=scram-sha-256 >&2 \
            || { _latitude_pg_log "pg_createcluster failed"; return 1; }
    fi

    port=$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $3}')
    status=$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $4}')
    if [ "$status" != "online" ]; then
        _latitude_pg_log "starting cluster $version/main on port $port"
        # Without systemd as PID 1, pg_ctlcluster runs pg_ctl itself.
        pg_ctlcluster "$version" main start >&2 \
            || { _latitude_pg_log "pg_ctlcluster start failed (see /var/log/postgresql/postgresql-$version-main.log)"; return 1; }
    fi

    tries=0
    until pg_isready -q -h 127.0.0.1 -p "$port"; do
        tries=$((tries + 1))
        if [ "$tries" -ge 60 ]; then
            _latitude_pg_log "server on 127.0.0.1:$port not ready after 30 s"
            return 1
        fi
        sleep 0.5
    done

    # Role and database (idempotent).
    (cd / && su postgres -c "psql -q -v ON_ERROR_STOP=1 -p $port" >&2) <<'SQL' || { _latitude_pg_log "creating role/database failed"; return 1; }
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'latitude') THEN
        CREATE ROLE latitude LOGIN PASSWORD 'latitude' CREATEDB;
    ELSE
        ALTER ROLE latitude LOGIN PASSWORD 'latitude' CREATEDB;
    END IF;
END
$$;
SELECT 'CREATE DATABASE latitude OWNER latitude'
    WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'latitude') \gexec
SELECT 'CREATE DATABASE latitude_test OWNER latitude'
    WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'latitude_test') \gexec
SQL

    if ! PGPASSWORD=latitude psql -q -h 127.0.0.1 -p "$port" -U latitude -d latitude_test -c 'SELECT 1' >/dev/null; then
        _latitude_pg_log "cannot log in as latitude over TCP on 127.0.0.1:$port"
        return 1
    fi

    export LATITUDE_TEST_PG_URL="postgresql+psycopg://latitude:latitude@127.0.0.1:${port}/latitude_test"
    _latitude_pg_log "ready: LATITUDE_TEST_PG_URL=$LATITUDE_TEST_PG_URL"
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
    # Sourced: keep the caller's shell options, report failure through the status.
    _latitude_pg_setup
    _latitude_pg_status=$?
    unset -f _latitude_pg_setup _latitude_pg_log
    return "$_latitude_pg_status"
else
    _latitude_pg_setup || exit 1
    echo "$LATITUDE_TEST_PG_URL"
fi
