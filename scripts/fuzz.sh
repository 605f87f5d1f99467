#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for FUZZ_SECONDS (default 60) on a
# scratch copy of its committed seed corpus. Exits non-zero on any crash, leak or undefined
# behaviour (UBSan does not recover in this build), or a target that counted no execution.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-60}
dir=build-fuzz
CC=clang cmake -S . -B $dir -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARLOR_FUZZ=ON >/dev/null
cmake --build $dir -j"$(nproc)" >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for src in fuzz/fuzz_*.c; do
    name=$(basename "$src" .c)
    mkdir -p "$work/$name"
    [ -d "fuzz/corpus/$name" ] && cp -r "fuzz/corpus/$name/." "$work/$name/"
    if out=$("$dir/$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
            -artifact_prefix="$work/" "$work/$name" 2>&1); then
        # -a: libFuzzer's output may hold bytes that are not UTF-8 (a found input, a dictionary
        # entry), and grep would then print "binary file matches" instead of the count.
        execs=$(printf '%s\n' "$out" | grep -ao 'stat::number_of_executed_units: *[0-9]*' | grep -o '[0-9]*$' || true)
        [ -n "$execs" ] || execs=$(printf '%s\n' "$out" | grep -aoE '^Done [0-9]+ runs' | grep -oE '[0-9]+' | tail -1 || true)
        [ -n "$execs" ] || execs=$(printf '%s\n' "$out" | grep -aoE '#[0-9]+' | tail -1 | tr -d '#')
        if [ "${execs:-0}" -gt 0 ] 2>/dev/null; then
            echo "fuzz $name: ok, $execs executions in ${secs}s"
        else
            echo "fuzz $name: FAILED (no executions counted)"
            printf '%s\n' "$out" | tail -20
            status=1
        fi
    else
        echo "fuzz $name: FAILED"
        printf '%s\n' "$out" | tail -40
        status=1
    fi
done
exit $status
