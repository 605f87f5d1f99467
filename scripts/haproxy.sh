#!/usr/bin/env bash
# A private haproxy in front of Parlor nodes, for tests, benchmarks and `make cluster`:
# loopback only, its own directory; stopped (and the directory removed) by `stop`.
#
#   scripts/haproxy.sh start DIR PORT NAME=HOST:PORT...   renders deploy/haproxy.cfg.in into
#                                                         DIR/haproxy.cfg, starts haproxy and
#                                                         prints its URL (http://127.0.0.1:PORT)
#   scripts/haproxy.sh reload DIR NAME=HOST:PORT...       new node list, same port (haproxy -sf:
#                                                         open connections finish on the old one)
#   scripts/haproxy.sh stop DIR                           stops it and removes DIR
#
# NAME is the node's --node-id: its sids start with "NAME." and are routed back to it.
# HAPROXY_STICKY=0 renders no sid routes (plain leastconn): only to show that polling then
# breaks (tests/cluster/lb.test.mjs).
set -euo pipefail
usage="usage: haproxy.sh start DIR PORT NAME=HOST:PORT... | reload DIR NAME=HOST:PORT... | stop DIR"
cmd=${1:?$usage}
dir=${2:?$usage}
here=$(cd "$(dirname "$0")/.." && pwd)

bin() {
    if ! command -v haproxy >/dev/null && [ "$(id -u)" -eq 0 ]; then
        echo "haproxy.sh: installing haproxy" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                haproxy >/dev/null
    fi
    command -v haproxy >/dev/null || { echo "haproxy.sh: haproxy is not installed" >&2; exit 1; }
    command -v haproxy
}

render() { # PORT NODES...
    local port=$1 routes="" servers="" name addr
    shift
    [ $# -gt 0 ] || { echo "$usage" >&2; exit 2; }
    for n in "$@"; do
        name=${n%%=*}
        addr=${n#*=}
        [[ $name =~ ^[A-Za-z0-9_-]{1,24}$ && $addr == *:* ]] || {
            echo "haproxy.sh: bad node '$n' (NAME=HOST:PORT, NAME 1-24 of A-Za-z0-9_-)" >&2
            exit 2
        }
        if [ "${HAPROXY_STICKY:-1}" != 0 ]; then
            routes+="    use-server $name if { urlp(sid) -m beg $name. }"$'\n'
        fi
        servers+="    server $name $addr check"$'\n'
    done
    local tpl
    tpl=$(cat "$here/deploy/haproxy.cfg.in")
    tpl=${tpl//@BIND@/127.0.0.1:$port}
    tpl=${tpl//@ROUTES@/${routes%$'\n'}}
    tpl=${tpl//@SERVERS@/${servers%$'\n'}}
    printf '%s\n' "$tpl" >"$dir/haproxy.cfg.new"
    "$(bin)" -c -q -f "$dir/haproxy.cfg.new" >&2
    mv "$dir/haproxy.cfg.new" "$dir/haproxy.cfg"
}

wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "haproxy.sh: haproxy does not listen on $1" >&2
    exit 1
}

case $cmd in
start)
    port=${3:?$usage}
    shift 3
    mkdir -p "$dir"
    echo "$port" >"$dir/port"
    render "$port" "$@"
    "$(bin)" -D -p "$dir/haproxy.pid" -f "$dir/haproxy.cfg"
    wait_port "$port"
    echo "http://127.0.0.1:$port"
    ;;
reload)
    shift 2
    render "$(cat "$dir/port")" "$@"
    old=$(cat "$dir/haproxy.pid")
    "$(bin)" -D -p "$dir/haproxy.pid" -f "$dir/haproxy.cfg" -sf "$old"
    ;;
stop)
    if [ -f "$dir/haproxy.pid" ]; then
        for pid in $(cat "$dir/haproxy.pid"); do kill "$pid" 2>/dev/null || true; done
        for pid in $(cat "$dir/haproxy.pid"); do
            for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        done
    fi
    rm -rf "$dir"
    ;;
*)
    echo "$usage" >&2
    exit 2
    ;;
esac
