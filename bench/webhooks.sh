#!/usr/bin/env bash
# Webhooks' cost and speed (docs/webhooks.md "Performance"): the same load generator runs
# against Parlor (SQLite) without and with --webhook-url, in one run, and a receiver on this
# machine (bench/webhook_receiver.mjs) measures delivery latency (event createdAt to arrival)
# and deliveries/s. Servers on core BENCH_SERVER_CPU, load generator and receiver on
# BENCH_LOADGEN_CPU.
#   BENCH_SECONDS [10] BENCH_PAIRS [500] BENCH_WINDOW [8] BENCH_RATE [500] BENCH_RATE_PAIRS [100]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${BENCH_SECONDS:-10}
pairs=${BENCH_PAIRS:-500}
window=${BENCH_WINDOW:-8}
rate=${BENCH_RATE:-500}
rate_pairs=${BENCH_RATE_PAIRS:-100}
server_cpu=${BENCH_SERVER_CPU:-0}
loadgen_cpu=${BENCH_LOADGEN_CPU:-1}
parlor_bin=${PARLOR_BIN:-$root/build/parlor}
loadgen=$root/build/bench/loadgen
[ -x "$loadgen" ] || bench/build.sh
work=$(mktemp -d "${TMPDIR:-/tmp}/parlor-whbench.XXXXXX")
secret=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
server_pid= rcv_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    [ -n "$rcv_pid" ] && kill "$rcv_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
lift=()
while read -r opt; do lift+=("$opt" 0); done < <("$parlor_bin" serve --help 2>&1 |
    awk '/^  --[a-z0-9-]+ / && /\(0: no limit\)/ {print $1}')

taskset -c "$loadgen_cpu" node bench/webhook_receiver.mjs 0 >"$work/rcv.port" &
rcv_pid=$!
for _ in $(seq 100); do [ -s "$work/rcv.port" ] && break; sleep 0.05; done
rport=$(cat "$work/rcv.port")
stats() { curl -s "http://127.0.0.1:$rport/stats"; }

run() { # label scenario [parlor args...] -> prints kv lines prefixed with label
    local label=$1 scen=$2
    shift 2
    local port=$((20000 + RANDOM % 10000)) data=$work/data.$label.$scen
    mkdir -p "$data"
    taskset -c "$server_cpu" "$parlor_bin" serve --port "$port" --host 127.0.0.1 --data "$data" \
        --jwt-secret "$secret" --log-level warn "${lift[@]}" "$@" >"$work/$label.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
    curl -s "http://127.0.0.1:$rport/reset" >/dev/null
    local args
    if [ "$scen" = pairs ]; then args=(pairs "$pairs" --window "$window"); else args=(rate "$rate" --pairs "$rate_pairs"); fi
    taskset -c "$loadgen_cpu" "$loadgen" --port "$port" --jwt-secret "$secret" \
        --server-pid "$server_pid" --size 64 --kv "${args[@]}" --seconds "$seconds" --warmup 2 \
        >"$work/$label.$scen.out" 2>&1
    local end=$(($(date +%s%3N)))
    grep -E '^(msgs_per_s|acked|lat_p50_us|lat_p99_us|server_cpu_us_per_msg)=' "$work/$label.$scen.out" |
        sed "s/^/$label.$scen./"
    if [ $# -gt 0 ]; then
        echo "$label.$scen.receiver_at_load_end=$(stats)"
        # drain: wait until nothing is pending
        for _ in $(seq 600); do
            p=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^parlor_webhook_pending /{print $2}')
            [ "${p:-1}" = 0 ] && break
            sleep 0.5
        done
        echo "$label.$scen.receiver_drained=$(stats)"
        echo "$label.$scen.load_end_ms=$end"
        curl -s "http://127.0.0.1:$port/metrics" | grep -E '^parlor_webhook_(delivered_total|attempts_total|latency_ms_(sum|count))' |
            sed "s/^/$label.$scen./"
    fi
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}
hooks=(--webhook-url "http://127.0.0.1:$rport/hook" --webhook-secret bench-secret)
for scen in pairs rate; do
    run plain "$scen"
    run hooks "$scen" "${hooks[@]}"
done
