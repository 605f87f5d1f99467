#!/usr/bin/env bash
# A private Redis for tests and benchmarks: loopback port only, no persistence, its own
# directory; stopped (and the directory removed) by `stop`.
#
#   scripts/redis.sh start DIR [PORT]   starts redis-server; prints its URL (redis://127.0.0.1:PORT)
#   scripts/redis.sh stop DIR           stops it and removes DIR
#   scripts/redis.sh down DIR           stops it, keeping DIR (fault tests)
#   scripts/redis.sh up DIR             starts it again on the same port
#
# Installs Debian's redis-server when missing (as root).
set -euo pipefail
usage="usage: redis.sh start|stop|down|up DIR [PORT]"
cmd=${1:?$usage}
dir=${2:?$usage}
port=${3:-56379}

server() {
    if ! command -v redis-server >/dev/null && [ "$(id -u)" -eq 0 ]; then
        echo "redis.sh: installing redis-server" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                redis-server >/dev/null
    fi
    command -v redis-server >/dev/null || { echo "redis.sh: redis-server is not installed" >&2; exit 1; }
    echo redis-server
}

launch() {
    "$(server)" --port "$(cat "$dir/port")" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" \
        >/dev/null
    for _ in $(seq 100); do
        redis-cli -p "$(cat "$dir/port")" ping 2>/dev/null | grep -q PONG && return 0
        sleep 0.05
    done
    cat "$dir/redis.log" >&2
    exit 1
}

halt() {
    [ -f "$dir/redis.pid" ] || return 0
    local pid
    pid=$(cat "$dir/redis.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    rm -f "$dir/redis.pid"
}

case $cmd in
start)
    mkdir -p "$dir"
    echo "$port" >"$dir/port"
    launch
    echo "redis://127.0.0.1:$port"
    ;;
stop)
    halt
    rm -rf "$dir"
    ;;
down) halt ;;
up) launch ;;
*)
    echo "$usage" >&2
    exit 2
    ;;
esac
