#!/usr/bin/env bash
# A 2-second smoke run of the load generator against Parlor, for `make test`: builds
# build/bench/loadgen, starts the given parlor binary on a free port with a fresh data
# directory, runs `pairs` with a few pairs, `rate`, `groups` (small groups, about 2 s), `idle`
# and the fsync probe, and exits non-zero when anything does not verify.
# Usage: bench/smoke.sh [path/to/parlor]   (default build/parlor; env SMOKE_SECONDS [2],
#        SMOKE_PORT [a random free port below the ephemeral range])
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
parlor=${1:-$root/build/parlor}
seconds=${SMOKE_SECONDS:-2}
"$root/bench/build.sh"
loadgen=$root/build/bench/loadgen

work=$(mktemp -d "${TMPDIR:-/tmp}/parlor-smoke.XXXXXX")
pid=
cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

secret=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
lift=()
while read -r opt; do lift+=("$opt" 0); done < <("$parlor" serve --help 2>&1 |
    awk '/^  --[a-z0-9-]+ / && /\(0: no limit\)/ {print $1}')

# Ports below the ephemeral range, which outgoing connections use.
eph_low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
span=$((eph_low > 12000 ? eph_low - 10000 : 2000))
for try in 1 2 3 4 5; do
    port=$((10000 + (RANDOM * 32768 + RANDOM) % span))
    [ -n "${SMOKE_PORT:-}" ] && port=$((SMOKE_PORT + try - 1))
    ss -Htan "sport = :$port" 2>/dev/null | grep -q . && continue
    "$parlor" serve --port "$port" --host 127.0.0.1 --data "$work/data" --jwt-secret "$secret" \
        --log-level warn "${lift[@]}" >"$work/parlor.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break 2; fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=
done
if [ -z "$pid" ]; then
    echo "smoke: parlor did not start:" >&2
    cat "$work/parlor.log" >&2
    exit 1
fi

rc=0
"$loadgen" --port "$port" --jwt-secret "$secret" --server-pid "$pid" \
    pairs 20 --window 4 --seconds "$seconds" --warmup 0.2 || rc=$?
"$loadgen" --port "$port" --jwt-secret "$secret" --server-pid "$pid" \
    rate 200 --pairs 10 --seconds 1 --warmup 0.2 --spin-us 0 || rc=$?
"$loadgen" --port "$port" --jwt-secret "$secret" --server-pid "$pid" \
    groups 4 --members 5 --rate 10 --seconds 1.5 --warmup 0.3 || rc=$?
"$loadgen" --port "$port" --jwt-secret "$secret" --server-pid "$pid" idle 50 --hold 0.2 || rc=$?
"$loadgen" fsync "$work/data" --count 20 || rc=$?
if ! kill -0 "$pid" 2>/dev/null; then
    echo "smoke: parlor exited during the run:" >&2
    tail -20 "$work/parlor.log" >&2
    rc=1
fi
[ $rc -eq 0 ] && echo "smoke: ok" || echo "smoke: FAILED" >&2
exit $rc
