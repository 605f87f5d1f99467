#!/usr/bin/env bash
# One Parlor node on PostgreSQL, with or without --cluster, under the load generator's pairs
# scenario: server CPU per message (from the load generator) and the Redis commands the run
# caused (INFO commandstats before and after; the Redis must be private to the run).
#   bench/cluster_costs.sh single|cluster
# Environment: PG_URL (postgres://...; a schema is made and dropped), REDIS_PORT (a private
# Redis on 127.0.0.1), RATE (--rate-messages-per-s; 0: no message limit, so no rate-limit
# commands), PORT [21100], PARLOR_BIN [build/parlor], LG ["pairs 50 --window 8 --seconds 8"].
# Build the load generator first (bench/build.sh). docs/cluster.md "Measured".
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?single or cluster}
port=${PORT:-21100}
: "${PG_URL:?}" "${REDIS_PORT:?}"
schema=bench_${mode}_$$
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
psql "$PG_URL" -qc "CREATE SCHEMA $schema" >/dev/null
secret=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
args=(serve --port "$port" --host 127.0.0.1 --data "$work/data" --jwt-secret "$secret"
      --store "$PG_URL?options=-csearch_path%3D$schema"
      --rate-messages-per-s "${RATE:-100000}" --rate-messages-burst 100000 --rate-rest-per-s 0
      --rate-connections-per-ip 0 --max-connections-per-ip 0 --max-connections-per-user 0
      --rate-auth-per-min 0 --rate-events-per-s 0)
[ "$mode" = cluster ] && args+=(--cluster "redis://127.0.0.1:$REDIS_PORT/5" --node-id bench)
mkdir -p "$work/data"
"${PARLOR_BIN:-build/parlor}" "${args[@]}" 2>"$work/server.log" &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/server.log" && break; sleep 0.1; done
sleep 1
stats() {
    redis-cli -p "$REDIS_PORT" INFO commandstats | tr -d '\r' |
        sed -n 's/^cmdstat_\([a-z]*\):calls=\([0-9]*\).*/\1 \2/p' | sort
}
stats >"$work/cs0"
# shellcheck disable=SC2086
taskset -c 1 build/bench/loadgen --port "$port" --jwt-secret "$secret" --server-pid "$pid" --kv \
    ${LG:-pairs 50 --window 8 --seconds 8} >"$work/lg.out" 2>&1 || true
stats >"$work/cs1"
kill -TERM "$pid"
wait "$pid" || true
grep -E '^(connections|acked|msgs_per_s|server_cpu_us_per_msg)=' "$work/lg.out"
join -a2 "$work/cs0" "$work/cs1" |
    awk '{ d = (NF == 2) ? $2 : $3 - $2; if (d > 0) print "redis_" $1 "=" d }'
PGOPTIONS="-c client_min_messages=warning" psql "$PG_URL" -qc "DROP SCHEMA $schema CASCADE" >/dev/null
