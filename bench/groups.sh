#!/usr/bin/env bash
# The group scenario (issue 17) against Parlor (SQLite, durable) and bench/reference (Node,
# in memory) in one run, each server pinned to core 0 and the client (bench/groups.mjs) to
# core 1. Prints each server's key=value figures side by side.
#   GROUPS_N [200] MEMBERS [20] RATE [1] (messages/s per member) SECONDS_N [10]
#   PORT_BASE [27100]  PARLOR_BINS ["build/parlor"] (several: compare builds)  NODE_REF [1]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
groups=${GROUPS_N:-200} members=${MEMBERS:-20} rate=${RATE:-1} seconds=${SECONDS_N:-10}
port=${PORT_BASE:-27100}
bins=${PARLOR_BINS:-build/parlor}
secret=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
work=$(mktemp -d "${TMPDIR:-/tmp}/parlor-groups.XXXXXX")
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$work"' EXIT
lift=()
for b in $bins; do
    while read -r opt; do lift+=("$opt" 0); done < <("$b" serve --help 2>&1 |
        awk '/^  --[a-z0-9-]+ / && /\(0: no limit\)/ {print $1}')
    break
done
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
one() { # name: runs the client against the server on $port (pid $pid)
    wait_port "$port"
    echo "== $1"
    taskset -c 1 node bench/groups.mjs --port "$port" --jwt-secret "$secret" --server-pid "$pid" \
        --groups "$groups" --members "$members" --rate "$rate" --seconds "$seconds"
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
    port=$((port + 1))
}
for b in $bins; do
    mkdir -p "$work/d$port"
    taskset -c 0 "$b" serve --port "$port" --host 127.0.0.1 --data "$work/d$port" \
        --jwt-secret "$secret" --log-level warn "${lift[@]}" >"$work/log$port" 2>&1 &
    pid=$!
    one "parlor $b"
done
if [ "${NODE_REF:-1}" = 1 ]; then
    NODE_ENV=production taskset -c 0 node bench/reference/server.mjs --port "$port" --host 127.0.0.1 \
        --jwt-secret "$secret" >"$work/log$port" 2>&1 &
    pid=$!
    one "node reference"
fi
