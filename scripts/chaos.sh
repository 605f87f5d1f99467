#!/usr/bin/env bash
# The chaos test (tests/chaos/): every operation broken off at random points against the
# ASan+UBSan build. make test runs it for CHAOS_SECONDS=40; `make chaos` for longer.
#   CHAOS_SECONDS  how long the rounds run (default 40)
#   CHAOS_SEED     repeat a run's random choices (printed by every run)
#   PARLOR_BIN     the server binary (default build-asan/parlor, built when missing)
set -euo pipefail
cd "$(dirname "$0")/.."
export CHAOS_SECONDS=${CHAOS_SECONDS:-40}
bin=${PARLOR_BIN:-build-asan/parlor}
if [ "$bin" = build-asan/parlor ]; then
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPARLOR_WERROR=ON -DPARLOR_SANITIZE=ON >/dev/null
    cmake --build build-asan -j"$(nproc)" --target parlor -- --no-print-directory -s
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
PARLOR_BIN=$bin node --test --test-reporter=tap --test-concurrency=1 tests/chaos/
