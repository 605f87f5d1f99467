#!/usr/bin/env bash
# `make bench-cluster`: the load generator (bench/loadgen) against Parlor clusters of 1, 2 and
# 3 nodes (PostgreSQL store, Redis bus) behind haproxy, and against the stack a Node developer
# would pick instead: Node.js socket.io 4.8 + @socket.io/redis-adapter on 2 processes behind
# the same haproxy (in-memory store, as bench/run.sh's single-process reference). Prints a
# table and writes it to bench/results/cluster-<date>.md. See docs/performance.md, "Cluster".
#
# Two figures per configuration:
# - throughput: `pairs P --window W` through haproxy (handshakes balanced with leastconn, so
#   with N nodes about (N-1)/N of the pairs have sender and receiver on different nodes):
#   messages/s, and CPU per acknowledged message of the servers (every node process), of
#   Redis and of PostgreSQL over the whole run, and Redis network bytes (in + out) per message;
# - cross-node latency: `rate R --pairs RP`, open loop, senders connected to the first node and
#   receivers to the second (--recv-port): every message crosses nodes (with 1 node, both on it).
#
# Nothing is pinned: the machine may have only 2 cores shared with other work, so compare CPU
# per message rather than messages/s, and read the load average printed with the table.
#
# Environment (defaults in brackets):
#   BENCH_SECONDS [8]  BENCH_WARMUP [2]  BENCH_PAIRS [200]  BENCH_WINDOW [8]
#   BENCH_RATE [300]  BENCH_RATE_PAIRS [100]  BENCH_SIZE [64]
#   BENCH_CONFIGS ["single parlor1 parlor2 parlor3 node2"]   single: one Parlor node on the same
#                      PostgreSQL without --cluster (what the cluster mode costs)
#   BENCH_PARLOR_ARGS  more `parlor serve` options for every Parlor node (experiments)
#   BENCH_NO_BUILD     set: use the binaries as they are
#   PARLOR_BIN [build/parlor]   BENCH_RESULTS [bench/results]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

seconds=${BENCH_SECONDS:-8}
warmup=${BENCH_WARMUP:-2}
pairs=${BENCH_PAIRS:-200}
window=${BENCH_WINDOW:-8}
rate=${BENCH_RATE:-300}
rate_pairs=${BENCH_RATE_PAIRS:-100}
size=${BENCH_SIZE:-64}
configs=${BENCH_CONFIGS:-single parlor1 parlor2 parlor3 node2}
parlor_bin=${PARLOR_BIN:-$root/build/parlor}
loadgen=$root/build/bench/loadgen
results_dir=${BENCH_RESULTS:-$root/bench/results}
hz=$(getconf CLK_TCK)

log() { echo "bench-cluster: $*" >&2; }

if [ -z "${BENCH_NO_BUILD:-}" ]; then
    log "building parlor and the load generator"
    if [ -z "${PARLOR_BIN:-}" ]; then make --no-print-directory -s -C "$root" all >/dev/null; fi
    bench/build.sh
    ref=bench/reference
    if [ ! -d $ref/node_modules/@socket.io/redis-adapter ] || [ $ref/package-lock.json -nt $ref/node_modules ]; then
        log "npm ci in $ref"
        (cd $ref && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    fi
fi
[ -x "$parlor_bin" ] || { log "no parlor binary at $parlor_bin"; exit 1; }
[ -x "$loadgen" ] || { log "no load generator at $loadgen"; exit 1; }

secret=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
work=$(mktemp -d "${TMPDIR:-/tmp}/parlor-bench-cluster.XXXXXX")
pg_dir=/tmp/parlor-benchc-pg.$$
redis_dir=/tmp/parlor-benchc-redis.$$
hap_dir=/tmp/parlor-benchc-haproxy.$$
pids=()
stop_nodes() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
    scripts/haproxy.sh stop "$hap_dir" 2>/dev/null || true
}
cleanup() {
    stop_nodes
    scripts/redis.sh stop "$redis_dir" 2>/dev/null || true
    scripts/pg.sh stop "$pg_dir" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Ports outside the ephemeral range, which the load generator's own sockets use up.
eph_low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
declare -A taken
free_port() {
    local p span=$((eph_low > 12000 ? eph_low - 10000 : 2000))
    while :; do
        p=$((10000 + (RANDOM * 32768 + RANDOM) % span))
        [ -n "${taken[$p]:-}" ] && continue
        ss -Htan "sport = :$p" 2>/dev/null | grep -q . && continue
        taken[$p]=1
        echo $p
        return
    done
}

lift=()
while read -r opt; do lift+=("$opt" 0); done < <("$parlor_bin" serve --help 2>&1 |
    awk '/^  --[a-z0-9-]+ / && /\(0: no limit\)/ {print $1}')

pg_url=$(scripts/pg.sh start "$pg_dir" "$(free_port)")
redis_url=$(scripts/redis.sh start "$redis_dir" "$(free_port)")
redis_port=$(cat "$redis_dir/port")
log "PostgreSQL $pg_url, Redis $redis_url"

# CPU ticks (user + system) of the given processes.
ticks() {
    local total=0 p
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] || continue
        total=$((total + $(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$p/stat")))
    done
    echo "$total"
}
pg_pids() {
    local pm
    pm=$(head -1 "$pg_dir/data/postmaster.pid")
    echo "$pm" $(pgrep -P "$pm")
}
# Store reads (parlor_store_reads_total) summed over the Parlor nodes: the cluster's catch-ups.
store_reads() {
    local total=0 p v
    for p in "${node_ports[@]}"; do
        v=$(curl -s "http://127.0.0.1:$p/metrics" | sed -n 's/^parlor_store_reads_total //p')
        total=$((total + ${v:-0}))
    done
    echo "$total"
}
redis_bytes() {
    redis-cli -p "$redis_port" INFO stats | tr -d '\r' |
        awk -F: '/^total_net_(input|output)_bytes:/ {s += $2} END {print s}'
}
redis_commands() {
    redis-cli -p "$redis_port" INFO stats | tr -d '\r' | awk -F: '/^total_commands_processed:/ {print $2}'
}

node_ports=()
start_nodes() { # kind count
    local kind=$1 n=$2 i port schema
    node_ports=()
    if [ "$kind" != node ]; then
        schema=benchc_${kind}_$n
        PGOPTIONS=--client-min-messages=warning psql -q "$pg_url" \
            -c "DROP SCHEMA IF EXISTS $schema CASCADE; CREATE SCHEMA $schema" >/dev/null
    fi
    local hap_nodes=()
    for ((i = 0; i < n; i++)); do
        port=$(free_port)
        if [ "$kind" != node ]; then
            local cl=(--cluster "$redis_url" --node-id "n$i")
            [ "$kind" = single ] && cl=()
            mkdir -p "$work/n$i.$port"
            "$parlor_bin" serve --port "$port" --host 127.0.0.1 --data "$work/n$i.$port" \
                --jwt-secret "$secret" --log-level warn "${lift[@]}" \
                --store "$pg_url?options=-csearch_path%3D$schema" \
                "${cl[@]}" ${BENCH_PARLOR_ARGS:-} >"$work/n$i.$port.log" 2>&1 &
        else
            NODE_ENV=production node bench/reference/server.mjs --port "$port" --host 127.0.0.1 \
                --jwt-secret "$secret" --redis "$redis_url" >"$work/n$i.$port.log" 2>&1 &
        fi
        pids+=($!)
        node_ports+=("$port")
        hap_nodes+=("n$i=127.0.0.1:$port")
    done
    for ((i = 0; i < n; i++)); do
        for _ in $(seq 200); do
            (exec 3<>"/dev/tcp/127.0.0.1/${node_ports[$i]}") 2>/dev/null && break
            kill -0 "${pids[$i]}" 2>/dev/null || { cat "$work"/n$i.*.log >&2; exit 1; }
            sleep 0.05
        done
    done
    lb_port=$(free_port)
    scripts/haproxy.sh start "$hap_dir" "$lb_port" "${hap_nodes[@]}" >/dev/null
    sleep 2.5 # haproxy's first health checks (every second) mark the nodes up
}

declare -A R
failures=()
kv() { sed -n "s/^$1=//p" "$2" | tail -1; }

run_config() { # name
    local name=$1 kind n
    case $name in
    single) kind=single n=1 ;;
    parlor[0-9]) kind=parlor n=${name#parlor} ;;
    node[0-9]) kind=node n=${name#node} ;;
    *) log "unknown configuration $name"; exit 2 ;;
    esac
    start_nodes "$kind" "$n"
    local out=$work/$name.pairs.out
    local s0 r0 p0 b0 s1 r1 p1 b1 rc=0
    s0=$(ticks "${pids[@]}") r0=$(ticks "$(cat "$redis_dir/redis.pid")") p0=$(ticks $(pg_pids)) b0=$(redis_bytes)
    local q0 q1 c0 c1
    q0=$(store_reads) c0=$(redis_commands)
    log "$name: pairs $pairs --window $window through haproxy"
    "$loadgen" --port "$lb_port" --jwt-secret "$secret" --size "$size" --kv \
        pairs "$pairs" --window "$window" --seconds "$seconds" --warmup "$warmup" >"$out" 2>&1 || rc=$?
    s1=$(ticks "${pids[@]}") r1=$(ticks "$(cat "$redis_dir/redis.pid")") p1=$(ticks $(pg_pids)) b1=$(redis_bytes)
    q1=$(store_reads) c1=$(redis_commands)
    local acked
    acked=$(kv acked "$out")
    R[$name.msgs]=$(kv msgs_per_s "$out")
    R[$name.verified]=$(kv verified "$out")
    awk -v s=$((s1 - s0)) -v r=$((r1 - r0)) -v p=$((p1 - p0)) -v b=$((b1 - b0)) -v hz="$hz" \
        -v q=$((q1 - q0)) -v c=$((c1 - c0)) -v n="${acked:-0}" 'BEGIN { if (n > 0)
            printf "%.1f %.1f %.1f %.0f %.2f %.1f\n", s * 1e6 / hz / n, r * 1e6 / hz / n,
                p * 1e6 / hz / n, b / n, q / n, c / n;
            else print "n/a n/a n/a n/a n/a n/a" }' >"$work/$name.cpu"
    read -r R[$name.srv_us] R[$name.redis_us] R[$name.pg_us] R[$name.redis_bytes] R[$name.reads] \
        R[$name.redis_cmds] <"$work/$name.cpu"
    [ "$kind" = node ] && R[$name.pg_us]=0 R[$name.reads]=0
    grep -v '^[a-z0-9_]*=' "$out" >&2 || true
    [ $rc -ne 0 ] && failures+=("$name pairs")

    out=$work/$name.rate.out
    local recv=${node_ports[$((n > 1 ? 1 : 0))]}
    log "$name: rate $rate --pairs $rate_pairs, senders on n0, receivers on n$((n > 1 ? 1 : 0))"
    rc=0
    "$loadgen" --port "${node_ports[0]}" --recv-port "$recv" --jwt-secret "$secret" --size "$size" \
        --kv rate "$rate" --pairs "$rate_pairs" --seconds "$seconds" --warmup "$warmup" >"$out" 2>&1 || rc=$?
    R[$name.p50]=$(kv lat_p50_us "$out")
    R[$name.p99]=$(kv lat_p99_us "$out")
    R[$name.verified]="${R[$name.verified]} $(kv verified "$out")"
    grep -v '^[a-z0-9_]*=' "$out" >&2 || true
    [ $rc -ne 0 ] && failures+=("$name rate")
    for i in "${!pids[@]}"; do
        kill -0 "${pids[$i]}" 2>/dev/null || { log "$name: node n$i died:"; tail -20 "$work"/n$i.*.log >&2; failures+=("$name died"); }
    done
    stop_nodes
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for c in $configs; do run_config "$c"; done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

get() { echo "${R[$1]:-n/a}"; }
mkdir -p "$results_dir"
out=$results_dir/cluster-$(date +%Y-%m-%d).md
[ -e "$out" ] && out=$results_dir/cluster-$(date +%Y-%m-%d-%H%M%S).md
label() {
    case $1 in
    single) echo "Parlor, 1 node without --cluster" ;;
    parlor1) echo "Parlor, 1 node" ;;
    parlor[0-9]) echo "Parlor, ${1#parlor} nodes" ;;
    node[0-9]) echo "Node socket.io + redis-adapter, ${1#node} processes" ;;
    esac
}
{
    echo "# Parlor clusters vs Node socket.io + Redis adapter: $(date -u +'%Y-%m-%d %H:%M UTC')"
    echo
    echo "Machine: $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), nothing pinned;"
    echo "load average before $load_before, after $load_after. haproxy $(haproxy -v | head -1 | awk '{print $3}'),"
    echo "Redis $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p'), PostgreSQL $(psql -qtA "$pg_url" -c 'SHOW server_version' | cut -d' ' -f1), Node $(node --version)."
    echo "Throughput: \`pairs $pairs --window $window\` through haproxy, ${seconds} s after ${warmup} s; CPU and Redis"
    echo "bytes (in + out) over the whole run per acknowledged message. Latency: \`rate $rate --pairs $rate_pairs\`,"
    echo "senders on the first node, receivers on the second (cross-node). ${size}-byte content."
    echo
    echo "| | messages/s | server CPU µs/msg (all nodes) | Redis CPU µs/msg | PostgreSQL CPU µs/msg | Redis bytes/msg | Redis commands/msg | store reads/msg | cross-node p50 µs | cross-node p99 µs | verified |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    for c in $configs; do
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$(label "$c")" "$(get "$c.msgs")" \
            "$(get "$c.srv_us")" "$(get "$c.redis_us")" "$(get "$c.pg_us")" "$(get "$c.redis_bytes")" \
            "$(get "$c.redis_cmds")" "$(get "$c.reads")" \
            "$(get "$c.p50")" "$(get "$c.p99")" "$(get "$c.verified")"
    done
} >"$out"
echo
cat "$out"
echo
log "written to ${out#"$root"/}"
if [ ${#failures[@]} -ne 0 ]; then
    log "FAILED: ${failures[*]}"
    exit 1
fi
