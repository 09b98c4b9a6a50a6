#!/usr/bin/env bash
# A PostgreSQL server from Debian's packages (apt-get install postgresql) for the Dagster instance:
# tests and local use, listening on 127.0.0.1 only.
#
#   scripts/postgres.sh start DIR [PORT [DB [USER]]]   create the cluster in DIR (once), start it, create
#                                                      the role and database, print the settings
#   scripts/postgres.sh stop DIR                       stop it (the cluster stays in DIR)
#   scripts/postgres.sh status DIR
#
# Defaults: port 5432, database and role `dagster` (quantdag.yaml's instance.postgres). The role's
# password is $QUANTDAG_PG_PASSWORD, else one generated at the first start and kept in DIR/password
# (mode 600). TCP logins need it (scram-sha-256); the superuser `postgres` logs in only through the
# socket in DIR/run. initdb and postgres refuse to run as root: as root, the server runs as the
# `postgres` user (made by the Debian package), which is given DIR, so DIR's parents must let it in
# (e.g. under /tmp). $QUANTDAG_PG_SERVER_OPTIONS adds server options (the tests turn fsync off).
set -euo pipefail

usage() { sed -n '4,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1 dir=$(realpath -m "$2")
port=${3:-5432} db=${4:-dagster} user=${5:-dagster}

bin=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    echo "postgres.sh: no PostgreSQL binaries under /usr/lib/postgresql/*/bin: apt-get install postgresql (or set PG_BIN)" >&2
    exit 3
fi

if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || { echo "postgres.sh: running as root needs the 'postgres' user (Debian's postgresql package makes it)" >&2; exit 3; }
    as_pg() { runuser -u postgres -- "$@"; }
else
    as_pg() { "$@"; }
fi
pg_ctl() { as_pg "$bin/pg_ctl" -D "$dir/data" "$@"; }
running() { [ -f "$dir/data/postmaster.pid" ] && pg_ctl status >/dev/null 2>&1; }

case "$cmd" in
start)
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        mkdir -p "$dir"
        [ "$(id -u)" = 0 ] && chown postgres: "$dir"
        chmod 700 "$dir"
        as_pg test -w "$dir" || { echo "postgres.sh: the postgres user cannot write $dir (are its parents closed to it? try a folder under /tmp)" >&2; exit 3; }
        as_pg mkdir -p "$dir/run"
        as_pg "$bin/initdb" -D "$dir/data" -U postgres -E UTF8 --no-locale \
            --auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    if [ -z "${QUANTDAG_PG_PASSWORD:-}" ]; then
        if [ ! -s "$dir/password" ]; then
            (umask 077; head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$dir/password")
        fi
        QUANTDAG_PG_PASSWORD=$(cat "$dir/password")
        generated=1
    fi
    export QUANTDAG_PG_PASSWORD
    if ! running; then
        pg_ctl -l "$dir/postgres.log" -w -t 60 start \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/run ${QUANTDAG_PG_SERVER_OPTIONS:-}" >/dev/null \
            || { tail -n 20 "$dir/postgres.log" >&2; exit 1; }
    fi
    # the role (its password kept in step with $QUANTDAG_PG_PASSWORD) and the database, both idempotent
    as_pg "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir/run" -p "$port" -U postgres -d postgres \
        -v role="$user" -v db="$db" >/dev/null <<'SQL'
\set pw `printenv QUANTDAG_PG_PASSWORD`
SELECT format('CREATE ROLE %I LOGIN', :'role') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'role', :'pw') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
    echo "PostgreSQL $("$bin/postgres" -V | awk '{print $3}') on 127.0.0.1:$port, database $db, role $user (cluster $dir/data, log $dir/postgres.log)"
    echo "quantdag.yaml: instance: {storage: postgres, postgres: {host: 127.0.0.1, port: $port, db: $db, user: $user}}"
    if [ -n "${generated:-}" ]; then
        echo "password:      export QUANTDAG_PG_PASSWORD=\"\$(cat $dir/password)\""
    else
        echo "password:      \$QUANTDAG_PG_PASSWORD (as set when started)"
    fi
    echo "stop:          $0 stop $dir"
    ;;
stop)
    if running; then pg_ctl -m fast -w -t 60 stop >/dev/null; echo "stopped the server of $dir"; else echo "no server running in $dir"; fi
    ;;
status)
    if running; then echo "running: $dir"; else echo "not running: $dir"; exit 1; fi
    ;;
*)
    usage
    ;;
esac
