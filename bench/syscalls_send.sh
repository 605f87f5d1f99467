#!/usr/bin/env bash
# bench/syscalls_send.sh BIN PORT "loadgen args": the server's syscalls over 5 s of steady load
# (perf stat on its pid), per 1,000 messages (parlor_store_writes_total over the same 5 s).
set -u
bin=$1 port=$2 args=$3
secret=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
lg=$(cd "$(dirname "$0")/.." && pwd)/build/bench/loadgen
d=$(mktemp -d ${TMPDIR:-/tmp}/scdata.XXXX)
lift=()
while read -r opt; do lift+=("$opt" 0); done < <("$bin" serve --help 2>&1 | awk '/^  --[a-z0-9-]+ / && /\(0: no limit\)/ {print $1}')
taskset -c 0 "$bin" serve --port $port --host 127.0.0.1 --data $d --jwt-secret $secret --log-level warn "${lift[@]}" >/dev/null 2>&1 &
sp=$!
for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
m() { curl -s http://127.0.0.1:$port/metrics | awk -v k="$1" '$1==k {print $2}'; }
taskset -c 1 $lg --port $port --jwt-secret $secret --server-pid $sp $args --seconds 10 --warmup 1 > ${TMPDIR:-/tmp}/sc-lg.txt 2>&1 &
lp=$!
sleep 4
w0=$(m parlor_store_writes_total); r0=$(m parlor_store_reads_total); c0=$(m parlor_store_commits_total)
perf stat -x, -e raw_syscalls:sys_enter,syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_read,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex,syscalls:sys_enter_fdatasync,syscalls:sys_enter_pwrite64,syscalls:sys_enter_pread64 -p $sp -- sleep 5 2> ${TMPDIR:-/tmp}/sc-perf.txt
w1=$(m parlor_store_writes_total); r1=$(m parlor_store_reads_total); c1=$(m parlor_store_commits_total)
wait $lp
kill $sp; wait $sp 2>/dev/null
msgs=$((w1 - w0))
echo "messages(store writes) in window: $msgs  store reads: $((r1 - r0))  commits: $((c1 - c0))"
awk -F, -v n=$msgs '{printf "%-36s %10d  per 1000 msgs: %8.1f\n", $3, $1, $1*1000/n}' ${TMPDIR:-/tmp}/sc-perf.txt
grep -E "msgs/s|messages/s|µs|p99" ${TMPDIR:-/tmp}/sc-lg.txt | head -5
rm -rf $d
