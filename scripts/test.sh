#!/usr/bin/env bash
# The whole suite, as CI runs it: dependencies, a -Werror build, unit tests (CTest),
# integration tests with real socket.io clients, the same under ASan+UBSan, and short fuzz runs.
# Ends with one line "N passed, N failed" over every stage.
set -uo pipefail
cd "$(dirname "$0")/.."
export FUZZ_SECONDS=${FUZZ_SECONDS:-15}
jobs=$(nproc)
passed=0
failed=0
failures=()

stage() { # name, command...
    local name=$1
    shift
    echo
    echo "=== $name"
    local t0=$SECONDS
    if "$@"; then
        passed=$((passed + 1))
        echo "=== $name: ok ($((SECONDS - t0))s)"
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "=== $name: FAILED ($((SECONDS - t0))s)"
    fi
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

unit() { (cd "$1" && ctest --output-on-failure -j"$jobs"); }

integration() { # binary
    PARLOR_BIN=$1 node --test --test-concurrency=1 tests/integration/
}

stage "setup (packages, npm ci)" setup || true
if [ $failed -ne 0 ]; then echo "0 passed, 1 failed"; exit 1; fi
format_check() { git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror; }

stage "format (clang-format)" format_check
stage "build (-Werror)" build build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARLOR_WERROR=ON
stage "unit tests" unit build
stage "integration tests" integration build/parlor
stage "build (ASan+UBSan)" build build-asan -DCMAKE_BUILD_TYPE=Debug -DPARLOR_WERROR=ON -DPARLOR_SANITIZE=ON
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
stage "unit tests (ASan+UBSan)" unit build-asan
stage "integration tests (ASan+UBSan)" integration build-asan/parlor
stage "chaos (ASan+UBSan, ${CHAOS_SECONDS:-40}s)" scripts/chaos.sh
stage "browser end-to-end (Chromium)" env PARLOR_BIN=build/parlor scripts/e2e.sh
stage "benchmark smoke run (2 s)" bench/smoke.sh
stage "fuzz (${FUZZ_SECONDS}s per target)" scripts/fuzz.sh

echo
[ $failed -ne 0 ] && echo "failed stages: ${failures[*]}"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
