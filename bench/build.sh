#!/usr/bin/env bash
# Builds the load generator into build/bench/loadgen (gcc -O2; needs OpenSSL's libcrypto).
# Usage: bench/build.sh [output path]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build/bench/loadgen}
mkdir -p "$(dirname "$out")"
src=("$root"/bench/loadgen/*.c)
# Rebuild only when a source is newer than the binary.
if [ -x "$out" ]; then
    stale=0
    for f in "${src[@]}" "$root"/bench/loadgen/*.h "$0"; do
        [ "$f" -nt "$out" ] && stale=1
    done
    [ $stale -eq 0 ] && exit 0
fi
${CC:-gcc} -std=gnu11 -O2 -g -Wall -Wextra -Wshadow -Werror ${LOADGEN_CFLAGS:-} \
    "${src[@]}" -o "$out" -lcrypto -lm
