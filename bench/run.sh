#!/usr/bin/env bash
# `make bench`: Parlor (SQLite, durable) against Node.js + socket.io (in memory), the same
# scenarios in one run, each server pinned to one core and the load generator to another.
# Prints a table of issue 17's targets (each: Parlor, Node, the ratio, the target, met?) and
# writes it to bench/results/<date>.md. See docs/performance.md.
#
# Environment (defaults in brackets):
#   BENCH_SECONDS [10]     measured seconds of the pairs and rate scenarios
#   BENCH_WARMUP [2]       load before measuring
#   BENCH_PAIRS [500]      BENCH_WINDOW [8]        the throughput scenario
#   BENCH_RATE [2000]      BENCH_RATE_PAIRS [100]  the latency scenario (open loop)
#   BENCH_IDLE [10000]     BENCH_HOLD [5]          idle connections on a fresh server, and how
#                          long they are held before memory is read; then the same again on
#                          that server (handshakes, memory after warm-up)
#   BENCH_IDLE_MAX [19000] idle connections on another fresh server (0: skip)
#   BENCH_GROUPS [200]     BENCH_GROUP_MEMBERS [20]  BENCH_GROUP_RATE [1] (msgs/s per member)
#   BENCH_GROUP_SECONDS [5]                         the group scenario (BENCH_GROUPS=0: skip)
#   BENCH_FSYNC_COUNT [500]  pwrite + fdatasync rounds of the disk probe in Parlor's data dir
#   BENCH_PG_BASELINE [4.0]  PostgreSQL/SQLite server CPU per message the target compares to
#   BENCH_SIZE [64]        bytes of message content
#   BENCH_SERVERS ["parlor parlor-pg node"]   parlor-pg: Parlor on a private PostgreSQL
#                          (scripts/pg.sh, synchronous_commit on), throughput and latency only
#   BENCH_SERVER_CPU       BENCH_LOADGEN_CPU       cores for taskset (default: the servers on the
#                          core that takes the interrupts of the disk under the run's data, the
#                          load generator on another; 0 and 1 when that cannot be told)
#   BENCH_NICE [-10]       niceness of the server and the load generator (when allowed), so
#                          that other processes on a shared machine disturb the figures less
#   BENCH_PORT_BASE        servers listen on the next free port from here (default: random
#                          free ports below the ephemeral range)
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
idle_max=${BENCH_IDLE_MAX:-19000}
groups=${BENCH_GROUPS:-200}
members=${BENCH_GROUP_MEMBERS:-20}
group_rate=${BENCH_GROUP_RATE:-1}
group_seconds=${BENCH_GROUP_SECONDS:-5}
fsync_count=${BENCH_FSYNC_COUNT:-500}
pg_baseline=${BENCH_PG_BASELINE:-4.0}
size=${BENCH_SIZE:-64}
servers=${BENCH_SERVERS:-parlor parlor-pg node}
server_cpu=${BENCH_SERVER_CPU:-}
loadgen_cpu=${BENCH_LOADGEN_CPU:-}
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

# The servers and the load generator inherit the soft open-files limit: raise it to the hard
# one (Parlor and Node raise their own too; the idle rounds need up to BENCH_IDLE_MAX sockets).
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true

secret=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
work=$(mktemp -d "${TMPDIR:-/tmp}/parlor-bench.XXXXXX")
server_pid=
server_data=
pg_dir=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    [ -n "$pg_dir" ] && "$root/scripts/pg.sh" stop "$pg_dir"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The core that takes most of the interrupts of the disk under $1 (a virtio or NVMe device's
# queues; Parlor's commits make one or two each), or nothing when that cannot be told.
disk_irq_cpu() {
    local src dev name
    src=$(findmnt -no SOURCE -T "$1" 2>/dev/null) || return 0
    dev=$(lsblk -no PKNAME "$src" 2>/dev/null | head -1)
    [ -n "$dev" ] || dev=$(basename "$src")
    name=$(basename "$(readlink -f "/sys/block/$dev/device" 2>/dev/null)")
    [ -n "$name" ] || return 0
    awk -v n="$name" 'NR == 1 { cpus = NF; next }
        $NF ~ "^" n "([-q]|$)" { for (i = 2; i <= cpus + 1; i++) c[i - 2] += $i }
        END { best = -1; for (k in c) if (c[k] > 0 && (best < 0 || c[k] > c[best])) best = k
              if (best >= 0) print best }' /proc/interrupts
}
# Where the cores come from. This VM delivers the disk's completion interrupts to one core and
# does not let them be moved (/proc/irq/*/smp_affinity); on that core they preempt whatever
# runs there. The load generator measures latency from each message's scheduled send time, so
# it goes on another core: there ~1,300 interrupts/s at 2,000 msgs/s made Parlor's own send lag
# 2-7 ms at p99 (docs/performance.md). The servers, both alike, take the disk's core: the
# completions are part of a durable server's work (and wake its writer without a cross-core
# interrupt); Node does no disk I/O in the run.
cores_why="BENCH_SERVER_CPU / BENCH_LOADGEN_CPU"
if [ -z "$server_cpu" ] && [ -z "$loadgen_cpu" ]; then
    irq_cpu=$(disk_irq_cpu "$work")
    if [ -n "$irq_cpu" ] && [ "$(nproc)" -ge 2 ]; then
        server_cpu=$irq_cpu
        loadgen_cpu=$((irq_cpu == 0 ? 1 : 0))
        cores_why="the disk's interrupts go to core $irq_cpu: the servers run there, the load generator on core $loadgen_cpu"
    else
        cores_why="default (could not tell which core takes the disk's interrupts)"
    fi
fi
server_cpu=${server_cpu:-0}
loadgen_cpu=${loadgen_cpu:-1}
log "servers on core $server_cpu, load generator on core $loadgen_cpu ($cores_why)"

# Options whose help says "(0: no limit)" lift Parlor's rate and connection limits.
lift=()
while read -r opt; do lift+=("$opt" 0); done < <("$parlor_bin" serve --help 2>&1 |
    awk '/^  --[a-z0-9-]+ / && /\(0: no limit\)/ {print $1}')

# A port outside the ephemeral range, which the load generator's own sockets use up; or the
# next free one from BENCH_PORT_BASE on.
eph_low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
next_port=${BENCH_PORT_BASE:-}
free_port() {
    local p span=$((eph_low > 12000 ? eph_low - 10000 : 2000))
    while [ -n "$next_port" ]; do
        p=$next_port
        next_port=$((next_port + 1))
        ss -Htan "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return; }
    done
    while :; do
        p=$((10000 + (RANDOM * 32768 + RANDOM) % span))
        ss -Htan "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return; }
    done
}

start_server() { # name -> sets server_pid, port, server_data (Parlor's data directory)
    local name=$1 try
    for try in 1 2 3 4 5; do
        port=$(free_port)
        case $name in
        parlor)
            local data=$work/parlor-data.$port
            mkdir -p "$data"
            server_data=$data
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

# One load generator run against the server that is up; its key=value lines land in
# R[name.scen.key]. A run that does not verify fails `make bench`, except where the scenario
# measures a capacity (idle_max): there the table says how many connections were refused.
run_loadgen() { # server scenario loadgen-args...
    local name=$1 scen=$2
    shift 2
    log "$name: $scen: loadgen $*"
    local out=$work/$name.$scen.out
    local rc=0
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
    while IFS='=' read -r k v; do R[$name.$scen.$k]=$v; done < <(grep '^[a-z0-9_]*=' "$out")
    if [ $rc -ne 0 ]; then
        R[$name.$scen.verified]=FAILED
        if [ "$scen" != idle_max ]; then
            failures+=("$name $scen")
        elif [ "${R[$name.$scen.failed]:-0}" -gt 0 ] &&
            [ "${R[$name.$scen.errors]:-}" = "${R[$name.$scen.failed]}" ]; then
            R[$name.$scen.verified]=refused # connections refused, nothing else went wrong
        fi
    fi
    return 0
}

run_scenario() { # server scenario loadgen-args...: on a fresh server
    start_server "$1"
    run_loadgen "$@"
    stop_server
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
t_start=$(date +%s)
for s in $servers; do
    if [ "$s" != parlor-pg ]; then
        # The idle scenarios measure the socket layer, which does not depend on the store.
        # Memory without warm-up: a fresh server, its RSS before the first connection. The
        # same count again on that server then measures handshakes/s and CPU per handshake
        # (a JIT has compiled the path by then) and the memory after warm-up.
        start_server "$s"
        run_loadgen "$s" idle_fresh idle "$idle" --hold "$hold"
        sleep 1
        run_loadgen "$s" idle idle "$idle" --hold "$hold"
        stop_server
        [ "$idle_max" -gt 0 ] && run_scenario "$s" idle_max idle "$idle_max" --hold "$hold"
    fi
    run_scenario "$s" pairs pairs "$pairs" --window "$window" --seconds "$seconds" --warmup "$warmup"
    run_scenario "$s" rate rate "$rate" --pairs "$rate_pairs" --seconds "$seconds" \
        --warmup "$warmup"
    if [ "$s" = parlor ]; then
        # The disk's commit latency where Parlor's data lives (same run, server stopped), on
        # the servers' core, where Parlor's writer waits for it.
        pin "$server_cpu" "$loadgen" --kv fsync "$server_data" --count "$fsync_count" \
            >"$work/fsync.out" 2>&1 || failures+=("fsync probe")
        grep -v '^[a-z0-9_]*=' "$work/fsync.out" >&2 || true
        while IFS='=' read -r k v; do R[fsync.$k]=$v; done < <(grep '^[a-z0-9_]*=' "$work/fsync.out")
    fi
    if [ "$s" != parlor-pg ] && [ "$groups" -gt 0 ]; then
        # Open loop: a server that falls behind gets the time to deliver its backlog.
        run_scenario "$s" groups groups "$groups" --members "$members" --rate "$group_rate" \
            --seconds "$group_seconds" --warmup "$warmup" --drain-timeout 60
    fi
done
t_run=$(($(date +%s) - t_start))

get() { echo "${R[$1]:-n/a}"; }
ratio() { # a b -> a/b
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a";
        else { r = a / b; printf(r >= 10 ? "%.0f×" : r >= 0.1 ? "%.2f×" : "%.3f×", r) } }'
}
div() { # a b -> a/b as a plain number, or n/a
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a";
        else printf "%.4f\n", a / b }'
}
add() { # a b -> a+b, or n/a
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a") print "n/a";
        else printf "%.2f\n", a + b }'
}
fmt() { # number -> with thousands separators, one decimal below 100
    awk -v a="$1" 'BEGIN { if (a == "n/a") { print a; exit }
        if (a + 0 < 100) { printf "%.1f\n", a; exit }
        s = sprintf("%.0f", a); o = ""; while (length(s) > 3) { o = "," substr(s, length(s) - 2) o;
        s = substr(s, 1, length(s) - 3) } print s o }'
}
fmt2() { # number -> two decimals
    awk -v a="$1" 'BEGIN { if (a == "n/a") print a; else printf "%.2f\n", a }'
}
judge() { # value limit name [value limit name...] -> yes when every value <= its limit; else
    # by how much each is over ("name" is how the limit reads, without spaces: 8_µs)
    awk -v args="$*" 'BEGIN { n = split(args, a, " "); o = ""; na = 0
        for (i = 1; i + 2 <= n; i += 3) {
            if (a[i] == "n/a" || a[i + 1] == "n/a") { na = 1; continue }
            if (a[i] + 0 > a[i + 1] + 0) {
                lim = a[i + 2]; gsub(/_/, " ", lim)
                o = o (o == "" ? "" : ", ") (a[i + 1] + 0 > 0 ? sprintf("%.1f×", a[i] / a[i + 1]) : "over") " the " lim
            } }
        if (o != "") print "**no**: " o
        else if (na) print "n/a"
        else print "yes" }'
}
# A row of the targets table: label, Parlor, Node, Parlor/Node, target, met?
trow() { printf '| %s | %s | %s | %s | %s | %s |\n' "$@"; }
# The idle memory of one server: KiB per socket, and how many connected when not all did.
kib_cell() { # server scenario count
    local k c
    k=$(get "$1.$2.kib_per_conn")
    c=$(get "$1.$2.connected")
    if [ "$c" != n/a ] && [ "$c" -lt "$3" ]; then
        echo "$(fmt2 "$k") ($(fmt "$c") of $(fmt "$3") connected)"
    else
        fmt2 "$k"
    fi
}
kib_met() { # scenario count: Parlor's
    local c
    c=$(get "parlor.$1.connected")
    if [ "$c" != n/a ] && [ "$c" -lt "$2" ]; then
        local why
        why=$(sed -n 's/^  first error *//p' "$work/parlor.$1.out" | head -1 | cut -c1-160)
        echo "**no** ($(fmt $(($2 - c))) of $(fmt "$2") not connected${why:+: $why})"
    else
        judge "$(get "parlor.$1.kib_per_conn")" 1.0 1.0_KiB_limit
    fi
}
irow() { # label scenario count
    local p n
    p=$(get "parlor.$2.kib_per_conn")
    n=$(get "node.$2.kib_per_conn")
    trow "$1" "$(kib_cell parlor "$2" "$3")" "$(kib_cell node "$2" "$3")" "$(ratio "$p" "$n")" \
        "≤ 1.0 KiB" "$(kib_met "$2" "$3")"
}
kept_up() { # server -> whether it delivered what the group scenario asked for
    awk -v d="$(get "$1.groups.deliveries_per_s")" -v w="$2" -v v="$(get "$1.groups.verified")" \
        'BEGIN { if (d == "n/a") print "n/a"; else if (v != "ok") print "FAILED";
                 else print (d >= 0.97 * w ? "kept up" : "fell behind") }'
}

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$results_dir"
stamp=$(date +%Y-%m-%d)
out=$results_dir/$stamp.md
[ -e "$out" ] && out=$results_dir/$stamp-$(date +%H%M%S).md
cpu_model=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
sio_version=$(node -p "require('$root/bench/reference/node_modules/socket.io/package.json').version" 2>/dev/null || echo '?')
group_expect=$(awk -v g="$groups" -v m="$members" -v r="$group_rate" 'BEGIN { printf "%.0f", g * m * r * (m - 1) }')
{
    echo "# Parlor vs Node.js + socket.io: $(date -u +'%Y-%m-%d %H:%M UTC')"
    echo
    echo "Machine: $(nproc) cores ($cpu_model), $(uname -sr); Node $(node --version), socket.io $sio_version."
    echo "Each server pinned to core $server_cpu, the load generator to core $loadgen_cpu (taskset)${prio[*]:+, both at ${prio[*]}}: $cores_why."
    echo "Load average before the run $load_before, after $load_after (other processes share the cores); the run took ${t_run} s."
    echo "Parlor: SQLite store, every message committed before it is acknowledged or delivered;"
    echo "Node: in-memory store. Rate limits lifted (${lift[*]:-none})."
    echo "Throughput: \`pairs $pairs --window $window\`; latency: \`rate $rate --pairs $rate_pairs\`"
    echo "(open loop, from the scheduled send time to delivery); ${seconds} s measured after ${warmup} s;"
    echo "idle: \`idle $idle\` on a fresh server (memory from its RSS before the first connection),"
    echo "then \`idle $idle\` again on it (handshakes, memory after warm-up), and \`idle $idle_max\` on"
    echo "another fresh server; memory read after ${hold} s held; groups: \`groups $groups --members $members"
    echo "--rate $group_rate\` (open loop, each member $group_rate msg/s to its group, staggered), ${group_seconds} s measured;"
    echo "${size}-byte message content. Targets: issue 17."
    echo
    echo "| | Parlor | Node | Parlor/Node | target | met? |"
    echo "|---|---:|---:|---:|---|---|"
    p=$(get parlor.pairs.server_cpu_us_per_msg)
    n=$(get node.pairs.server_cpu_us_per_msg)
    trow "server CPU µs per message (P=$pairs, W=$window)" "$(fmt "$p")" "$(fmt "$n")" \
        "$(ratio "$p" "$n")" "≤ 8 µs and ≤ 0.2× Node's" "$(judge "$p" 8 8_µs_limit "$(div "$p" "$n")" 0.2 0.2×_limit)"
    if [[ " $servers " == *" parlor-pg "* ]]; then
        pgt=$(add "$(get parlor-pg.pairs.server_cpu_us_per_msg)" "$(get parlor-pg.pairs.pg_cpu_us_per_msg)")
        trow "on PostgreSQL: server CPU µs per message (P=$pairs, W=$window; Parlor + PostgreSQL's processes), against SQLite's" \
            "$(fmt "$pgt") (PostgreSQL)" "$(fmt "$p") (SQLite)" "$(ratio "$pgt" "$p") (PostgreSQL/SQLite)" \
            "≤ ${pg_baseline}× (no worse than 2026-12-05)" "$(judge "$(div "$pgt" "$p")" "$pg_baseline" baseline)"
    else
        trow "on PostgreSQL: server CPU µs per message, against SQLite's" "not run" "" "" \
            "≤ ${pg_baseline}×" "n/a (BENCH_SERVERS without parlor-pg)"
    fi
    irow "KiB per idle authenticated socket, fresh server, $(fmt "$idle")" idle_fresh "$idle"
    if [ "$idle_max" -gt 0 ]; then
        irow "KiB per idle authenticated socket, fresh server, $(fmt "$idle_max")" idle_max "$idle_max"
    fi
    p=$(get parlor.idle.server_cpu_us_per_handshake)
    n=$(get node.idle.server_cpu_us_per_handshake)
    trow "server CPU µs per handshake" "$(fmt "$p")" "$(fmt "$n")" "$(ratio "$p" "$n")" \
        "≤ 0.1× Node's" "$(judge "$(div "$p" "$n")" 0.1 0.1×_limit)"
    p=$(get parlor.rate.lat_p99_us)
    n=$(get node.rate.lat_p99_us)
    trow "p99 latency µs at $(fmt "$rate") msgs/s" "$(fmt "$p")" "$(fmt "$n")" "$(ratio "$p" "$n")" \
        "≤ Node's p99" "$(judge "$p" "$n" p99_of_Node)"
    trow "↳ this disk's fdatasync µs, p50 / p99 ($(get fsync.fsync_count) × 4 KiB pwrite + fdatasync in Parlor's data directory, same run)" \
        "$(fmt "$(get fsync.fsync_p50_us)") / $(fmt "$(get fsync.fsync_p99_us)")" "" "" \
        "the floor under a durable p99" ""
    p=$(get parlor.rate.server_cpu_us_per_msg)
    n=$(get node.rate.server_cpu_us_per_msg)
    trow "light load: server CPU µs per message at $(fmt "$rate") msgs/s" "$(fmt "$p")" "$(fmt "$n")" \
        "$(ratio "$p" "$n")" "≤ 1/3 of Node's" "$(judge "$(div "$p" "$n")" 0.3333 1/3_limit)"
    if [ "$groups" -gt 0 ]; then
        p=$(get parlor.groups.deliveries_per_s)
        n=$(get node.groups.deliveries_per_s)
        trow "groups $groups × $members × $group_rate/s: deliveries/s (asked: $(fmt "$group_expect"))" \
            "$(fmt "$p")" "$(fmt "$n")" "$(ratio "$p" "$n")" "report" \
            "Parlor $(kept_up parlor "$group_expect"), Node $(kept_up node "$group_expect")"
        p=$(get parlor.groups.server_cpu_us_per_delivery)
        n=$(get node.groups.server_cpu_us_per_delivery)
        trow "groups: server CPU µs per delivery" "$(fmt2 "$p")" "$(fmt2 "$n")" "$(ratio "$p" "$n")" \
            "report" ""
    fi
    p=$(get parlor.pairs.msgs_per_s)
    n=$(get node.pairs.msgs_per_s)
    trow "messages/s (P=$pairs, W=$window)" "$(fmt "$p")" "$(fmt "$n")" "$(ratio "$p" "$n")" "context" ""
    p=$(get parlor.idle.handshakes_per_s)
    n=$(get node.idle.handshakes_per_s)
    trow "handshakes/s" "$(fmt "$p")" "$(fmt "$n")" "$(ratio "$p" "$n")" "context" ""
    echo
    echo "Context:"
    echo
    echo "| | Parlor | Node |"
    echo "|---|---:|---:|"
    ctx() { printf '| %s | %s | %s |\n' "$1" "$(fmt "$(get "parlor.$2")")" "$(fmt "$(get "node.$2")")"; }
    printf '| KiB per idle socket after warm-up (%s, the same server'"'"'s second round) | %s | %s |\n' \
        "$(fmt "$idle")" "$(fmt2 "$(get parlor.idle.kib_per_conn)")" "$(fmt2 "$(get node.idle.kib_per_conn)")"
    ctx "server RSS KiB with $(fmt "$idle") idle connections (fresh server)" idle_fresh.rss_after_kib
    [ "$idle_max" -gt 0 ] && ctx "server RSS KiB with $(fmt "$idle_max") idle connections (fresh server)" idle_max.rss_after_kib
    ctx "server CPU µs per handshake on a fresh server (first round)" idle_fresh.server_cpu_us_per_handshake
    ctx "throughput: server CPU % of a core" pairs.server_cpu_pct
    ctx "throughput: load generator CPU % of a core" pairs.loadgen_cpu_pct
    ctx "throughput: p50 latency µs" pairs.lat_p50_us
    ctx "throughput: p99 latency µs" pairs.lat_p99_us
    ctx "latency run: p50 latency µs" rate.lat_p50_us
    ctx "latency run: p99.9 latency µs" rate.lat_p999_us
    ctx "latency run: max latency µs" rate.lat_max_us
    ctx "latency run: sends > 1 ms late (load generator)" rate.late_sends
    ctx "latency run: load generator send lag p99 µs" rate.lag_p99_us
    if [ "$groups" -gt 0 ]; then
        ctx "groups: messages/s" groups.msgs_per_s
        ctx "groups: server CPU µs per message" groups.server_cpu_us_per_msg
        ctx "groups: server CPU % of a core" groups.server_cpu_pct
        ctx "groups: delivery latency p50 µs (from the scheduled send)" groups.lat_p50_us
        ctx "groups: delivery latency p99 µs" groups.lat_p99_us
        ctx "groups: load generator CPU % of a core" groups.loadgen_cpu_pct
        ctx "groups: load generator send lag p99 µs" groups.lag_p99_us
    fi
    ctx "load generator CPU % of a core during handshakes" idle.loadgen_hs_cpu_pct
    ctx "other processes' CPU % of a core: handshakes" idle.others_cpu_pct
    ctx "other processes' CPU % of a core: throughput" pairs.others_cpu_pct
    ctx "other processes' CPU % of a core: latency run" rate.others_cpu_pct
    [ "$groups" -gt 0 ] && ctx "other processes' CPU % of a core: groups" groups.others_cpu_pct
    ctx "hypervisor steal % of a core: handshakes" idle.steal_cpu_pct
    ctx "hypervisor steal % of a core: throughput" pairs.steal_cpu_pct
    ctx "hypervisor steal % of a core: latency run" rate.steal_cpu_pct
    [ "$groups" -gt 0 ] && ctx "hypervisor steal % of a core: groups" groups.steal_cpu_pct
    vrow() { local x o=""; for x in idle_fresh idle idle_max pairs rate groups; do o+="$(get "$1.$x.verified") "; done; echo "${o% }"; }
    printf '| verified (idle fresh, idle, idle max, pairs, rate, groups) | %s | %s |\n' "$(vrow parlor)" "$(vrow node)"
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
        erow "Parlor CPU µs per message (P=$pairs, W=$window)" pairs.server_cpu_us_per_msg ""
        printf '| PostgreSQL CPU µs per message (P=%s, W=%s) | | %s | | |\n' "$pairs" "$window" \
            "$(fmt "$(get parlor-pg.pairs.pg_cpu_us_per_msg)")"
        a=$(get parlor.pairs.server_cpu_us_per_msg)
        printf '| Parlor + PostgreSQL CPU µs per message (P=%s, W=%s) | %s | %s | %s | ≤ %s× |\n' \
            "$pairs" "$window" "$(fmt "$a")" "$(fmt "$pgt")" "$(ratio "$pgt" "$a")" "$pg_baseline"
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
