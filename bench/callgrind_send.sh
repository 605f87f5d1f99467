#!/usr/bin/env bash
# bench/callgrind_send.sh BIN PORT OUTPREFIX: instructions per message of the send path (pairs),
# all threads, under callgrind: two loadgen runs (3 s, 9 s), a dump after each; per message =
# (Ir of the second dump - Ir of the first) / (messages of the second - the first). docs/performance.md.
set -u
bin=$1 port=$2 out=$3
secret=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
lg=$(cd "$(dirname "$0")/.." && pwd)/build/bench/loadgen
d=$(mktemp -d ${TMPDIR:-/tmp}/cgdata.XXXX)
lift=()
while read -r opt; do lift+=("$opt" 0); done < <("$bin" serve --help 2>&1 | awk '/^  --[a-z0-9-]+ / && /\(0: no limit\)/ {print $1}')
rm -f $out.*
valgrind --tool=callgrind ${CG_OPTS:-} --callgrind-out-file=$out.%p.cg "$bin" serve --port $port --host 127.0.0.1 --data $d --jwt-secret $secret --log-level warn "${lift[@]}" >$out.log 2>&1 &
vp=$!
for _ in $(seq 600); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
run() { $lg --port $port --jwt-secret $secret --kv pairs 20 --window 8 --seconds $1 --warmup 0.5 --drain-timeout 60 2>/dev/null | grep -E "^(sent|received)=" | tr '\n' ' '; }
callgrind_control -z $vp >/dev/null
r1=$(run 3); callgrind_control -d $vp >/dev/null; sleep 1
r2=$(run 9); callgrind_control -d $vp >/dev/null; sleep 1
kill $vp; wait $vp
echo "run1: $r1"; echo "run2: $r2"
for f in $out.*.cg*; do echo "$f $(grep -E '^(summary|totals):' $f)"; done
rm -rf $d
