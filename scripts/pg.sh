#!/usr/bin/env bash
# A private PostgreSQL server for tests and benchmarks: its own cluster in a temporary
# directory, listening on a loopback port only, stopped (and its directory removed) by `stop`.
#
#   scripts/pg.sh start DIR [PORT]   initdb + pg_ctl start; prints the server's URL
#                                    (postgres://parlor@127.0.0.1:PORT/parlor) on stdout
#   scripts/pg.sh stop DIR           stops the server and removes DIR
#   scripts/pg.sh down DIR           stops the server, keeping its data (fault tests)
#   scripts/pg.sh up DIR             starts it again on the same port
#
# DIR (and its parents) must be reachable by the postgres user when run as root: use a
# directory directly under /tmp, not inside a mktemp -d directory (mode 0700).
#
# Installs Debian's postgresql when missing (as root). When run as root, the cluster belongs
# to the postgres user (PostgreSQL refuses to run as root). Trust authentication on loopback:
# the server is private to this machine and lives only as long as the test run.
set -euo pipefail
usage="usage: pg.sh start|stop|down|up DIR [PORT]"
cmd=${1:?$usage}
dir=${2:?$usage}
port=${3:-55432}

bindir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    if [ -z "$d" ] && [ "$(id -u)" -eq 0 ]; then
        echo "pg.sh: installing postgresql" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                postgresql >/dev/null
        d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    fi
    [ -n "$d" ] || { echo "pg.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
    echo "$d"
}

as_owner() { # runs a command as the cluster's owner
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

case $cmd in
start)
    bin=$(bindir)
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -U parlor -A trust -E UTF8 --locale=C.UTF-8 \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    # fsync and synchronous_commit stay on: the tests and the benchmark measure durable commits.
    echo "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400 -c shared_buffers=128MB" \
        >"$dir/options"
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start -o "$(cat "$dir/options")" \
        >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U parlor parlor
    echo "postgres://parlor@127.0.0.1:$port/parlor"
    ;;
stop)
    if [ -d "$dir/data" ]; then
        bin=$(bindir)
        as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
down)
    as_owner "$(bindir)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
up)
    as_owner "$(bindir)/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start -o "$(cat "$dir/options")" \
        >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    ;;
*)
    echo "$usage" >&2
    exit 2
    ;;
esac
