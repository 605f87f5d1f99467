#!/usr/bin/env bash
# `make bench`: Parlor (SQLite, durable) against Node.js + socket.io (in memory), the same
# scenarios in one run, each server pinned to one core and the load generator to another.
# Prints a side-by-side table and writes it to bench/results/<date>.md. See docs/performance.md.
#
# Environment (defaults in brackets):
#   BENCH_SECONDS [10]     measured seconds of the pairs and rate scenarios
#   BENCH_WARMUP [2]       load before measuring
#   BENCH_PAIRS [500]      BENCH_WINDOW [8]        the throughput scenario
#   BENCH_RATE [2000]      BENCH_RATE_PAIRS [100]  the latency scenario (open loop)
#   BENCH_IDLE [10000]     BENCH_HOLD [5]          idle connections, and how long they are held
#   BENCH_IDLE_WARMUP [2000]  handshakes made and closed before the measured idle round
#   BENCH_SIZE [64]        bytes of message content
#   BENCH_SERVERS ["parlor parlor-pg node"]   parlor-pg: Parlor on a private PostgreSQL
#                          (scripts/pg.sh, synchronous_commit on), throughput and latency only
#   BENCH_SERVER_CPU [0]   BENCH_LOADGEN_CPU [1]   cores for taskset
#   BENCH_NICE [-10]       niceness of the server and the load generator (when allowed), so
#                          that other processes on a shared machine disturb the figures less
#   BENCH_NO_BUILD         set: use the binaries as they are
#   PARLOR_BIN [build/parlor]   BENCH_RESULTS [bench/results]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

seconds=${BENCH_SECONDS:-10}
warmup=${BENCH_WARMUP:-2}
pairs=${BENCH_PAIRS:-500}
window=${BENCH_WINDOW:-8}
rate=${BENCH_RATE:-2000}
rate_pairs=${BENCH_RATE_PAIRS:-100}
idle=${BENCH_IDLE:-10000}
hold=${BENCH_HOLD:-5}
idle_warm=${BENCH_IDLE_WARMUP:-2000}
size=${BENCH_SIZE:-64}
servers=${BENCH_SERVERS:-parlor parlor-pg node}
server_cpu=${BENCH_SERVER_CPU:-0}
loadgen_cpu=${BENCH_LOADGEN_CPU:-1}
bench_nice=${BENCH_NICE:--10}
parlor_bin=${PARLOR_BIN:-$root/build/parlor}
loadgen=$root/build/bench/loadgen
results_dir=${BENCH_RESULTS:-$root/bench/results}

log() { echo "bench: $*" >&2; }

if [ -z "${BENCH_NO_BUILD:-}" ]; then
    log "building parlor and the load generator"
    if [ -z "${PARLOR_BIN:-}" ]; then make --no-print-directory -s -C "$root" all >/dev/null; fi
    bench/build.sh
    ref=bench/reference
    if [ ! -d $ref/node_modules ] || [ $ref/package-lock.json -nt $ref/node_modules ]; then
        log "npm ci in $ref"
        (cd $ref && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    fi
fi
[ -x "$parlor_bin" ] || { log "no parlor binary at $parlor_bin"; exit 1; }
[ -x "$loadgen" ] || { log "no load generator at $loadgen"; exit 1; }

# pin CORE command...: taskset, and a higher priority than the rest of the machine if allowed
prio=()
if nice -n "$bench_nice" true 2>/dev/null && [ "$(nice -n "$bench_nice" nice)" != "$(nice)" ]; then
    prio=(nice -n "$bench_nice")
fi
pin() {
    local core=$1
    shift
    "${prio[@]}" taskset -c "$core" "$@"
}
# the same in place of the calling (background) shell, so that $! is the server's pid
pin_exec() {
    local core=$1
    shift
    exec "${prio[@]}" taskset -c "$core" "$@"
}

secret=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
work=$(mktemp -d "${TMPDIR:-/tmp}/parlor-bench.XXXXXX")
server_pid=
pg_dir=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    [ -n "$pg_dir" ] && "$root/scripts/pg.sh" stop "$pg_dir"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Options whose help says "(0: no limit)" lift Parlor's rate and connection limits.
lift=()
while read -r opt; do lift+=("$opt" 0); done < <("$parlor_bin" serve --help 2>&1 |
    awk '/^  --[a-z0-9-]+ / && /\(0: no limit\)/ {print $1}')

# A port outside the ephemeral range, which the load generator's own sockets use up.
eph_low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
free_port() {
    local p span=$((eph_low > 12000 ? eph_low - 10000 : 2000))
    while :; do
        p=$((10000 + (RANDOM * 32768 + RANDOM) % span))
        ss -Htan "sport = :$p" 2>/dev/null | grep -q . || { echo $p; return; }
    done
}

start_server() { # name -> sets server_pid, port
    local name=$1 try
    for try in 1 2 3 4 5; do
        port=$(free_port)
        case $name in
        parlor)
            local data=$work/parlor-data.$port
            mkdir -p "$data"
            pin_exec "$server_cpu" "$parlor_bin" serve --port "$port" --host 127.0.0.1 \
                --data "$data" --jwt-secret "$secret" --log-level warn "${lift[@]}" \
                >"$work/$name.$port.log" 2>&1 &
            ;;
        parlor-pg)
            # A fresh schema per server on the run's private PostgreSQL.
            local data=$work/parlor-data.$port schema=bench_$port
            mkdir -p "$data"
            psql -q "$pg_url" -c "DROP SCHEMA IF EXISTS $schema CASCADE; CREATE SCHEMA $schema" \
                >/dev/null
            pin_exec "$server_cpu" "$parlor_bin" serve --port "$port" --host 127.0.0.1 \
                --data "$data" --jwt-secret "$secret" --log-level warn "${lift[@]}" \
                --store "$pg_url?options=-csearch_path%3D$schema" \
                >"$work/$name.$port.log" 2>&1 &
            ;;
        node)
            NODE_ENV=production pin_exec "$server_cpu" node bench/reference/server.mjs \
                --port "$port" --host 127.0.0.1 --jwt-secret "$secret" \
                >"$work/$name.$port.log" 2>&1 &
            ;;
        esac
        server_pid=$!
        for _ in $(seq 200); do
            if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.05
        done
        stop_server
        grep -q "address already in use" "$work/$name.$port.log" || break
    done
    log "$name did not start:"
    cat "$work/$name.$port.log" >&2
    exit 1
}

stop_server() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}

declare -A R
failures=()

run_scenario() { # server scenario loadgen-args...
    local name=$1 scen=$2
    shift 2
    start_server "$name"
    log "$name: $scen: loadgen $*"
    local out=$work/$name.$scen.out
    local rc=0
    if [ "$scen" = idle ] && [ "$idle_warm" -gt 0 ]; then
        # A first round of handshakes, closed again, so that a JIT has compiled the path
        # before handshakes/s is measured; the memory figure is taken from just before the
        # measured round.
        pin "$loadgen_cpu" "$loadgen" --port "$port" --jwt-secret "$secret" \
            idle "$idle_warm" --hold 0 >"$work/$name.warm.out" 2>&1 ||
            { log "$name: warm-up round failed:"; cat "$work/$name.warm.out" >&2; rc=1; }
        sleep 1
    fi
    local pg0=0 pg1=0
    [ "$name" = parlor-pg ] && pg0=$(pg_cpu_ticks)
    pin "$loadgen_cpu" "$loadgen" --port "$port" --jwt-secret "$secret" \
        --server-pid "$server_pid" --size "$size" --kv "$@" >"$out" 2>&1 || rc=$?
    if [ "$name" = parlor-pg ]; then
        # PostgreSQL's own CPU over the whole run (warm-up included), per acknowledged message.
        pg1=$(pg_cpu_ticks)
        local acked
        acked=$(sed -n 's/^acked=//p' "$out")
        awk -v t=$((pg1 - pg0)) -v hz="$(getconf CLK_TCK)" -v n="${acked:-0}" \
            'BEGIN { if (n > 0) printf "pg_cpu_us_per_msg=%.2f\n", t * 1e6 / hz / n }' >>"$out"
    fi
    grep -v '^[a-z0-9_]*=' "$out" >&2 || true
    if ! kill -0 "$server_pid" 2>/dev/null; then
        log "$name exited during $scen:"
        tail -20 "$work/$name.$port.log" >&2
        rc=1
    fi
    stop_server
    while IFS='=' read -r k v; do R[$name.$scen.$k]=$v; done < <(grep '^[a-z0-9_]*=' "$out")
    if [ $rc -ne 0 ]; then
        failures+=("$name $scen")
        R[$name.$scen.verified]=FAILED
    fi
}

# CPU ticks (user + system) of every process of the private PostgreSQL: the postmaster and
# its children (backends, WAL writer, checkpointer...).
pg_cpu_ticks() {
    local pm total=0 p
    pm=$(head -1 "$pg_dir/data/postmaster.pid")
    for p in $pm $(pgrep -P "$pm"); do
        [ -r "/proc/$p/stat" ] || continue
        total=$((total + $(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$p/stat")))
    done
    echo "$total"
}

if [[ " $servers " == *" parlor-pg "* ]]; then
    pg_dir=/tmp/parlor-bench-pg.$$
    pg_url=$("$root/scripts/pg.sh" start "$pg_dir" "$(free_port)")
    # The database server shares the Parlor server's core: both are the server side.
    for p in $(head -1 "$pg_dir/data/postmaster.pid") $(pgrep -P "$(head -1 "$pg_dir/data/postmaster.pid")"); do
        taskset -pc "$server_cpu" "$p" >/dev/null 2>&1 || true
    done
fi

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for s in $servers; do
    # The idle scenario measures the socket layer, which does not depend on the store.
    [ "$s" != parlor-pg ] && run_scenario "$s" idle idle "$idle" --hold "$hold"
    run_scenario "$s" pairs pairs "$pairs" --window "$window" --seconds "$seconds" --warmup "$warmup"
    run_scenario "$s" rate rate "$rate" --pairs "$rate_pairs" --seconds "$seconds" \
        --warmup "$warmup"
done

get() { echo "${R[$1]:-n/a}"; }
ratio() { # a b -> a/b
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a";
        else { r = a / b; printf(r >= 10 ? "%.0f×" : r >= 0.1 ? "%.2f×" : "%.3f×", r) } }'
}
fmt() { # number -> with thousands separators, one decimal below 100
    awk -v a="$1" 'BEGIN { if (a == "n/a") { print a; exit }
        if (a + 0 < 100) { printf "%.1f\n", a; exit }
        s = sprintf("%.0f", a); o = ""; while (length(s) > 3) { o = "," substr(s, length(s) - 2) o;
        s = substr(s, 1, length(s) - 3) } print s o }'
}
row() { # label key target
    local p n
    p=$(get "parlor.$2")
    n=$(get "node.$2")
    printf '| %s | %s | %s | %s | %s |\n' "$1" "$(fmt "$p")" "$(fmt "$n")" "$(ratio "$p" "$n")" "$3"
}

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$results_dir"
stamp=$(date +%Y-%m-%d)
out=$results_dir/$stamp.md
[ -e "$out" ] && out=$results_dir/$stamp-$(date +%H%M%S).md
cpu_model=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
sio_version=$(node -p "require('$root/bench/reference/node_modules/socket.io/package.json').version" 2>/dev/null || echo '?')
{
    echo "# Parlor vs Node.js + socket.io: $(date -u +'%Y-%m-%d %H:%M UTC')"
    echo
    echo "Machine: $(nproc) cores ($cpu_model), $(uname -sr); Node $(node --version), socket.io $sio_version."
    echo "Each server pinned to core $server_cpu, the load generator to core $loadgen_cpu (taskset)${prio[*]:+, both at ${prio[*]}}."
    echo "Load average before the run $load_before, after $load_after (other processes share the cores)."
    echo "Parlor: SQLite store, every message committed before it is acknowledged or delivered;"
    echo "Node: in-memory store. Rate limits lifted (${lift[*]:-none})."
    echo "Throughput: \`pairs $pairs --window $window\`; latency: \`rate $rate --pairs $rate_pairs\`"
    echo "(open loop, from the scheduled send time to delivery); ${seconds} s measured after ${warmup} s;"
    echo "idle: \`idle $idle\` after $idle_warm warm-up handshakes, memory read after ${hold} s;"
    echo "${size}-byte message content."
    echo
    echo "| | Parlor | Node | Parlor/Node | target |"
    echo "|---|---:|---:|---:|---|"
    row "messages/s (P=$pairs, W=$window)" pairs.msgs_per_s "≥ 10×"
    row "server CPU µs per message (P=$pairs, W=$window)" pairs.server_cpu_us_per_msg "≤ 0.1× where the load generator saturates"
    row "p50 latency µs at $(fmt "$rate") msgs/s" rate.lat_p50_us ""
    row "p99 latency µs at $(fmt "$rate") msgs/s" rate.lat_p99_us "Parlor ≤ 250 µs"
    row "KiB per idle connection ($(fmt "$idle"))" idle.kib_per_conn "Parlor ≤ 1 KiB"
    row "handshakes/s" idle.handshakes_per_s "≥ 20×"
    echo
    echo "Context:"
    echo
    echo "| | Parlor | Node |"
    echo "|---|---:|---:|"
    ctx() { printf '| %s | %s | %s |\n' "$1" "$(fmt "$(get "parlor.$2")")" "$(fmt "$(get "node.$2")")"; }
    ctx "throughput: server CPU % of a core" pairs.server_cpu_pct
    ctx "throughput: load generator CPU % of a core" pairs.loadgen_cpu_pct
    ctx "throughput: p50 latency µs" pairs.lat_p50_us
    ctx "throughput: p99 latency µs" pairs.lat_p99_us
    ctx "latency run: p99.9 latency µs" rate.lat_p999_us
    ctx "latency run: max latency µs" rate.lat_max_us
    ctx "latency run: server CPU µs per message" rate.server_cpu_us_per_msg
    ctx "latency run: sends > 1 ms late (load generator)" rate.late_sends
    ctx "latency run: load generator send lag p99 µs" rate.lag_p99_us
    ctx "server CPU µs per handshake" idle.server_cpu_us_per_handshake
    ctx "load generator CPU % of a core during handshakes" idle.loadgen_hs_cpu_pct
    ctx "server RSS KiB with $(fmt "$idle") idle connections" idle.rss_after_kib
    ctx "other processes' CPU % of a core: handshakes" idle.others_cpu_pct
    ctx "other processes' CPU % of a core: throughput" pairs.others_cpu_pct
    ctx "other processes' CPU % of a core: latency run" rate.others_cpu_pct
    ctx "hypervisor steal % of a core: handshakes" idle.steal_cpu_pct
    ctx "hypervisor steal % of a core: throughput" pairs.steal_cpu_pct
    ctx "hypervisor steal % of a core: latency run" rate.steal_cpu_pct
    printf '| verified (idle, pairs, rate) | %s %s %s | %s %s %s |\n' \
        "$(get parlor.idle.verified)" "$(get parlor.pairs.verified)" "$(get parlor.rate.verified)" \
        "$(get node.idle.verified)" "$(get node.pairs.verified)" "$(get node.rate.verified)"
    if [[ " $servers " == *" parlor-pg "* ]]; then
        echo
        echo "Store engines: Parlor on SQLite (above) and on PostgreSQL $(psql -qtA "$pg_url" -c 'SHOW server_version' 2>/dev/null | cut -d' ' -f1)"
        echo "(a private server on this machine, pinned to core $server_cpu with Parlor, fsync and"
        echo "synchronous_commit on; Parlor's CPU is its own process, PostgreSQL's is every process"
        echo "of its server over the whole run, per acknowledged message)."
        echo
        echo "| | SQLite | PostgreSQL | PostgreSQL/SQLite | target |"
        echo "|---|---:|---:|---:|---|"
        erow() { # label key target
            local a b
            a=$(get "parlor.$2")
            b=$(get "parlor-pg.$2")
            printf '| %s | %s | %s | %s | %s |\n' "$1" "$(fmt "$a")" "$(fmt "$b")" "$(ratio "$b" "$a")" "$3"
        }
        erow "messages/s (P=$pairs, W=$window)" pairs.msgs_per_s ""
        erow "Parlor CPU µs per message (P=$pairs, W=$window)" pairs.server_cpu_us_per_msg "≤ 1.5×"
        printf '| PostgreSQL CPU µs per message (P=%s, W=%s) | | %s | | |\n' "$pairs" "$window" \
            "$(fmt "$(get parlor-pg.pairs.pg_cpu_us_per_msg)")"
        erow "p50 latency µs at $(fmt "$rate") msgs/s" rate.lat_p50_us ""
        erow "p99 latency µs at $(fmt "$rate") msgs/s" rate.lat_p99_us ""
        erow "Parlor CPU µs per message at $(fmt "$rate") msgs/s" rate.server_cpu_us_per_msg ""
        printf '| PostgreSQL CPU µs per message at %s msgs/s | | %s | | |\n' "$(fmt "$rate")" \
            "$(fmt "$(get parlor-pg.rate.pg_cpu_us_per_msg)")"
        printf '| verified (pairs, rate) | %s %s | %s %s | | |\n' \
            "$(get parlor.pairs.verified)" "$(get parlor.rate.verified)" \
            "$(get parlor-pg.pairs.verified)" "$(get parlor-pg.rate.verified)"
    fi
} >"$out"

echo
cat "$out"
echo
log "written to ${out#"$root"/}"
if [ ${#failures[@]} -ne 0 ]; then
    log "FAILED: ${failures[*]}"
    exit 1
fi
