#!/usr/bin/env bash
# The whole suite, as CI runs it: dependencies, a -Werror build, unit tests (CTest),
# integration tests with real socket.io clients, the same with the PostgreSQL store engine (a
# private server started by scripts/pg.sh), the same under ASan+UBSan, the chaos test, browser
# tests, a benchmark smoke run and short fuzz runs; after the PostgreSQL stages, the cluster
# tests (3 nodes on PostgreSQL and a private Redis, tests/cluster/).
# Ends with one line "N passed, M failed" over every test of every stage. A test stage that
# ran no test fails; when a build fails, the stages that would run its binaries do not run.
#
#   scripts/test.sh        everything
#   scripts/test.sh pg     setup, the plain build and the PostgreSQL stages only (make test-pg)
set -uo pipefail
cd "$(dirname "$0")/.."
export FUZZ_SECONDS=${FUZZ_SECONDS:-15}
jobs=$(nproc)
tests_passed=0
tests_failed=0
stages_failed=0
failures=()
only=${1:-all}
case $only in all | pg) ;; *) echo "usage: scripts/test.sh [pg]" >&2; exit 2 ;; esac
logdir=$(mktemp -d "${TMPDIR:-/tmp}/parlor-test.XXXXXX")
# The private PostgreSQL server's directory, written by pg_start (which runs in a stage's
# subshell) before the server starts, so that whoever ends the run can stop it.
pg_stop() {
    local dir
    dir=$(cat "$logdir/pg_dir" 2>/dev/null) || return 0
    scripts/pg.sh stop "$dir"
    rm -f "$logdir/pg_dir" "$logdir/pg_url"
}
# The cluster stage's Redis (redis_start writes its directory first), stopped the same way.
redis_stop() {
    local dir
    dir=$(cat "$logdir/redis_dir" 2>/dev/null) || return 0
    scripts/redis.sh stop "$dir"
    rm -f "$logdir/redis_dir" "$logdir/redis_url"
}
# The cluster stage's haproxy (haproxy_start writes its directory first), stopped the same way.
haproxy_stop() {
    local dir
    dir=$(cat "$logdir/haproxy_dir" 2>/dev/null) || return 0
    scripts/haproxy.sh stop "$dir"
    rm -f "$logdir/haproxy_dir" "$logdir/haproxy_url" "$logdir/haproxy_nodes"
}
# The PostgreSQL, Redis and haproxy servers are stopped however the run ends: a failed stage,
# an error, Ctrl-C.
trap 'haproxy_stop; redis_stop; pg_stop; rm -rf "$logdir"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# How many tests a stage's output reports passed and failed: "pass fail", or nothing when the
# output is not a test run (setup, format, builds).
count_tests() { # kind, log
    local kind=$1 log=$2
    case $kind in
    ctest)
        # "100% tests passed, 0 tests failed out of 18"
        sed -n 's/.*tests passed, \([0-9]*\) tests\? failed out of \([0-9]*\).*/\2 \1/p' "$log" |
            tail -1 | awk '{print $1 - $2, $2}'
        ;;
    node) # the TAP summary of node --test
        local p f
        p=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$log" | tail -1)
        f=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$log" | tail -1)
        [ -n "$p" ] && echo "$p ${f:-0}"
        ;;
    fuzz) echo "$(grep -c '^fuzz .*: ok' "$log") $(grep -c '^fuzz .*: FAILED' "$log")" ;;
    cases) # the store conformance suite: "64 case runs, 0 failed"
        sed -n 's/^\([0-9]*\) case runs, \([0-9]*\) failed$/\1 \2/p' "$log" | tail -1 |
            awk '{print $1 - $2, $2}'
        ;;
    smoke) grep -q '^smoke: ok' "$log" && echo "1 0" || echo "0 1" ;;
    esac
}

stage() { # name, kind (ctest|node|fuzz|smoke|-), command...
    local name=$1 kind=$2
    shift 2
    echo
    echo "=== $name"
    local t0=$SECONDS log="$logdir/stage.log" rc=0 counts="" p=0 f=0
    "$@" 2>&1 | tee "$log" || rc=$?
    if [ "$kind" != - ]; then
        counts=$(count_tests "$kind" "$log")
        read -r p f <<<"${counts:-0 0}"
        tests_passed=$((tests_passed + p))
        tests_failed=$((tests_failed + f))
        if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
            echo "=== $name: ran no test"
            rc=1
        fi
    fi
    if [ $rc -eq 0 ]; then
        echo "=== $name: ok${counts:+, $p tests} ($((SECONDS - t0))s)"
        return 0
    fi
    # A failing command whose tests all passed (a crash after the last test, a sanitizer
    # report at exit) still fails its stage, and counts as one failed test.
    [ "$kind" != - ] && [ "$f" -eq 0 ] && tests_failed=$((tests_failed + 1))
    stages_failed=$((stages_failed + 1))
    failures+=("$name")
    echo "=== $name: FAILED${counts:+ ($p passed, $f failed)} ($((SECONDS - t0))s)"
    return 1
}

setup() {
    scripts/deps.sh test || return 1
    if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
        npm ci --no-audit --no-fund --loglevel=error || return 1
    fi
}

build() { # dir, cmake args...
    local dir=$1
    shift
    cmake -S . -B "$dir" "$@" >/dev/null && cmake --build "$dir" -j"$jobs" -- --no-print-directory -s
}

unit() { (cd "$1" && ctest --no-tests=error --output-on-failure -j"$jobs"); }

integration() { # binary
    PARLOR_BIN=$1 timeout 1800 node --test --test-reporter=tap --test-concurrency=1 \
        --test-timeout=300000 tests/integration/
}

# ---- PostgreSQL: the store conformance suite and the chat integration suite on the
# "postgres" engine, against a private server (scripts/pg.sh) in a directory directly under
# /tmp (the postgres user must reach it) on a free loopback port. Plain build only: the ASan
# stages keep SQLite.
# tests/pg/: what needs PostgreSQL itself (several nodes on one database, the database stopped
# under load, parlor migrate); they start their own private servers where they stop them.
PG_INTEGRATION=(tests/integration/chat_*.test.mjs tests/integration/files.test.mjs
                tests/integration/context.test.mjs tests/integration/server_api.test.mjs
                tests/integration/webhooks.test.mjs
                tests/pg/*.test.mjs)

pg_start() {
    local port url dir attempt
    for attempt in 1 2 3; do
        port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
        dir=/tmp/parlor-pg-$$-$RANDOM
        [ -e "$dir" ] && continue
        echo "$dir" >"$logdir/pg_dir"
        if url=$(scripts/pg.sh start "$dir" "$port"); then
            echo "$url" >"$logdir/pg_url"
            echo "PostgreSQL $(ls /usr/lib/postgresql | sort -V | tail -1) at $url ($dir)"
            return 0
        fi
        pg_stop # a port taken meanwhile: try another
    done
    return 1
}

pg_conformance() { build/test_store_conformance --engine postgres; }

# --foreground: node stays in the foreground process group, so Ctrl-C stops it at once and the
# trap stops the PostgreSQL server (in its own group, timeout would run the tests to the end).
pg_integration() {
    PARLOR_BIN=build/parlor timeout --foreground 1200 node --test --test-reporter=tap \
        --test-concurrency=1 --test-timeout=300000 "${PG_INTEGRATION[@]}"
}

# ---- Cluster (docs/cluster.md): 3 nodes on one PostgreSQL schema and a private Redis
# (scripts/redis.sh, which the tests stop and start again for the Redis fault case).
redis_start() {
    local port url dir attempt
    for attempt in 1 2 3; do
        port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
        dir=/tmp/parlor-redis-$$-$RANDOM
        [ -e "$dir" ] && continue
        echo "$dir" >"$logdir/redis_dir"
        if url=$(scripts/redis.sh start "$dir" "$port"); then
            echo "$url" >"$logdir/redis_url"
            echo "Redis $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p') at $url ($dir)"
            return 0
        fi
        redis_stop
    done
    return 1
}

# haproxy (scripts/haproxy.sh, deploy/haproxy.cfg.in) in front of 3 node ports that
# tests/cluster/lb.test.mjs starts its nodes on (n0, n1, n2).
haproxy_start() {
    local ports dir url nodes
    ports=$(node -e 'const net=require("net");const out=[];const next=()=>{if(out.length===4){console.log(out.join(" "));return}const s=net.createServer().listen(0,"127.0.0.1",()=>{out.push(s.address().port);s.close(next)})};next()')
    read -r lb p0 p1 p2 <<<"$ports"
    dir=/tmp/parlor-haproxy-$$-$RANDOM
    echo "$dir" >"$logdir/haproxy_dir"
    nodes="n0=127.0.0.1:$p0,n1=127.0.0.1:$p1,n2=127.0.0.1:$p2"
    url=$(scripts/haproxy.sh start "$dir" "$lb" ${nodes//,/ }) || return 1
    echo "$url" >"$logdir/haproxy_url"
    echo "$nodes" >"$logdir/haproxy_nodes"
    echo "$(haproxy -v | head -1) at $url ($dir), nodes $nodes"
}

cluster_tests() {
    PARLOR_TEST_REDIS_URL=$(cat "$logdir/redis_url") PARLOR_TEST_REDIS_DIR=$(cat "$logdir/redis_dir") \
        PARLOR_TEST_HAPROXY_URL=$(cat "$logdir/haproxy_url" 2>/dev/null) \
        PARLOR_TEST_HAPROXY_NODES=$(cat "$logdir/haproxy_nodes" 2>/dev/null) \
        PARLOR_TEST_PG_DIR=$(cat "$logdir/pg_dir") \
        PARLOR_BIN=build/parlor timeout --foreground 480 node --test --test-reporter=tap \
        --test-concurrency=1 --test-timeout=120000 tests/cluster/
}

pg_stages() {
    if stage "PostgreSQL: start a private server" - pg_start; then
        export PARLOR_TEST_PG_URL
        PARLOR_TEST_PG_URL=$(cat "$logdir/pg_url")
        stage "PostgreSQL: store conformance" cases pg_conformance
        stage "PostgreSQL: integration tests (chat, files, recovery, durability, two nodes)" node pg_integration
        if stage "cluster: start a private Redis" - redis_start; then
            stage "cluster: start haproxy" - haproxy_start
            stage "cluster: 3 nodes on PostgreSQL and Redis, behind haproxy (tests/cluster)" node cluster_tests
        fi
        haproxy_stop
        redis_stop
        unset PARLOR_TEST_PG_URL
    fi
    pg_stop
}

finish() {
    echo
    [ $stages_failed -ne 0 ] && echo "failed stages: ${failures[*]}"
    echo "$tests_passed passed, $tests_failed failed"
    [ $stages_failed -eq 0 ] && [ $tests_failed -eq 0 ]
    exit
}

stage "setup (packages, npm ci)" - setup || finish
if [ "$only" = pg ]; then
    stage "build (-Werror)" - build build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARLOR_WERROR=ON && pg_stages
    finish
fi
format_check() { git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror; }

stage "format (clang-format)" - format_check
release_built=false
if stage "build (-Werror)" - build build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARLOR_WERROR=ON; then
    release_built=true
    stage "unit tests" ctest unit build
    stage "integration tests" node integration build/parlor
    pg_stages
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
if stage "build (ASan+UBSan)" - build build-asan -DCMAKE_BUILD_TYPE=Debug -DPARLOR_WERROR=ON -DPARLOR_SANITIZE=ON; then
    stage "unit tests (ASan+UBSan)" ctest unit build-asan
    stage "integration tests (ASan+UBSan)" node integration build-asan/parlor
    stage "chaos (ASan+UBSan, ${CHAOS_SECONDS:-40}s)" node scripts/chaos.sh
fi
if $release_built; then
    stage "browser end-to-end (Chromium)" node env PARLOR_BIN=build/parlor scripts/e2e.sh
    stage "benchmark smoke run (2 s)" smoke bench/smoke.sh
fi
stage "fuzz (${FUZZ_SECONDS}s per target)" fuzz scripts/fuzz.sh
finish
