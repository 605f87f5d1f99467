#!/usr/bin/env bash
# `make cluster`: a Parlor cluster on this machine for a person to try in a browser:
# a private PostgreSQL and Redis, 3 nodes (n0, n1, n2) with the web client, and haproxy in
# front of them (deploy/haproxy.cfg.in), all on loopback. Ctrl-C stops everything and removes
# the temporary directories.
#
#   PORT (default 8000)   haproxy: open http://127.0.0.1:PORT
#   nodes on PORT+1..PORT+3, PostgreSQL on PORT+4, Redis on PORT+5
#
# Try: open two browser windows, sign up two users, talk; then kill a node
# (kill -9 <pid printed below>): its clients reconnect through haproxy to another node and
# are recovered there. Restart it with the command printed for it (sh <dir>/nI.cmd).
set -euo pipefail
cd "$(dirname "$0")/.."
port=${PORT:-8000}
bin=${PARLOR_BIN:-build/parlor}
tmp=/tmp/parlor-cluster-$$
pids=()

cleanup() {
    trap - EXIT INT TERM
    echo
    echo "cluster: stopping"
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    scripts/haproxy.sh stop "$tmp-haproxy" 2>/dev/null || true
    scripts/redis.sh stop "$tmp-redis" 2>/dev/null || true
    scripts/pg.sh stop "$tmp-pg" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[ -x "$bin" ] || { echo "cluster.sh: $bin is missing (make)" >&2; exit 1; }
mkdir -p "$tmp/files"
pg=$(scripts/pg.sh start "$tmp-pg" $((port + 4)))
redis=$(scripts/redis.sh start "$tmp-redis" $((port + 5)))
secret=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
nodes=()
for i in 0 1 2; do
    np=$((port + 1 + i))
    mkdir -p "$tmp/n$i"
    args=(serve --host 127.0.0.1 --port "$np" --data "$tmp/n$i" --store "$pg" --jwt-secret "$secret"
          --files-dir "$tmp/files" --cluster "$redis" --node-id "n$i"
          # Every connection comes from haproxy's address: per-IP limits would count all
          # users as one (docs/cluster.md, "The load balancer").
          --rate-connections-per-ip 0 --max-connections-per-ip 0 --max-http-connections-per-ip 0
          --rate-auth-per-min 0)
    echo "$bin ${args[*]} 2>>$tmp/n$i.log &" >"$tmp/n$i.cmd"
    "$bin" "${args[@]}" 2>>"$tmp/n$i.log" &
    pids+=($!)
    nodes+=("n$i=127.0.0.1:$np")
done
for i in 0 1 2; do
    for _ in $(seq 100); do grep -q "listening on" "$tmp/n$i.log" && break; sleep 0.1; done
    grep -q "listening on" "$tmp/n$i.log" || { cat "$tmp/n$i.log" >&2; exit 1; }
done
url=$(scripts/haproxy.sh start "$tmp-haproxy" "$port" "${nodes[@]}")
echo
echo "cluster: PostgreSQL $pg, Redis $redis"
for i in 0 1 2; do
    echo "cluster: node n$i pid ${pids[$i]} on 127.0.0.1:$((port + 1 + i)) (log $tmp/n$i.log; restart: sh $tmp/n$i.cmd)"
done
echo "cluster: haproxy at $url ($tmp-haproxy/haproxy.cfg)"
echo
echo "open $url in a browser; Ctrl-C stops everything"
# Until Ctrl-C (a node that dies, killed to try the failover, does not end it).
while :; do sleep 3600 & wait $! || true; done
