#!/usr/bin/env bash
# Where the proxies spend their time: syscall counts, page faults, context
# switches and CPU per GiB (or per 1000 small requests) for nginx and
# regmeter under the same workloads as run.sh, then a perf profile of
# regmeter (user space vs kernel, top functions).
#
#   tests/bench/profile.sh            # 3 rounds of each workload
#
# Environment: BENCH_PROFILE_RUNS (3), BENCH_PROFILE_OUT (default
# docs/benchmarks-raw/profile-latest.txt), plus BENCH_REV / BENCH_REGMETER /
# BENCH_KEEP as in run.sh. Needs perf (apt-get install linux-perf).
set -euo pipefail
SOURCE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$SOURCE_ROOT/tests/bench/lib.sh"
command -v perf >/dev/null || die "perf is missing (apt-get install linux-perf)"
RUNS=${BENCH_PROFILE_RUNS:-3}
OUT=${BENCH_PROFILE_OUT:-$SOURCE_ROOT/docs/benchmarks-raw/profile-latest.txt}
BLOB=$((1 << 30))

SYSCALLS=(readv read recvfrom writev write sendto sendfile64 epoll_wait epoll_ctl mmap munmap brk madvise)
EVENTS=""
perf list tracepoint >"$WORK/perf-list.txt" 2>/dev/null || true
for call in "${SYSCALLS[@]}"; do
    if grep -q "syscalls:sys_enter_$call " "$WORK/perf-list.txt"; then EVENTS+="syscalls:sys_enter_$call,"; fi
done
[[ -n $EVENTS ]] || log "no syscall tracepoints (is tracefs mounted?): counting faults and CPU only"
EVENTS+="page-faults,context-switches,task-clock"
COUNTS=$WORK/counts.tsv
: >"$COUNTS"

# workload TARGET: runs one sample, prints the units moved (GiB or k-requests).
workload_cmd() {
    local workload=$1 port=$2
    case $workload in
        download) "$WORK/benchc" get "$port" "/blob?size=$BLOB" 1 ;;
        upload) "$WORK/benchc" put "$port" /upload "$BLOB" 1 ;;
        chunked) "$WORK/benchc" put "$port" /upload "$BLOB" 1 1048576 ;;
        chunked32k) "$WORK/benchc" put "$port" /upload "$BLOB" 1 32768 ;;
        rps) wrk -t1 -c32 -d3s "http://127.0.0.1:$port/v2/" ;;
    esac
}

for workload in download upload chunked chunked32k rps; do
    for ((round = 0; round < RUNS; round++)); do
        pair=""
        [[ $workload == rps ]] && pair=small  # the pair in front of the static backend, as in run.sh
        for target in nginx regmeter; do
            pids=$(proxy_pids "$target" $pair | paste -sd, -)
            out=$(timeout 120 perf stat -x, -e "$EVENTS" -p "$pids" -o "$WORK/stat.txt" -- \
                timeout 100 bash -c "$(declare -f workload_cmd); WORK=$WORK BLOB=$BLOB workload_cmd $workload $(port_of "$target" $pair)" 2>&1) ||
                die "$workload $target failed: $out"
            if [[ $workload == rps ]]; then
                units=$(awk '/requests in/ {print $1 / 1000}' <<<"$out")
            else
                units=$(sed -n 's/.*bytes=\([0-9]*\).*/\1/p' <<<"$out" | awk '{print $1 / 1073741824}')
            fi
            awk -F, -v w="$workload" -v t="$target" -v u="$units" \
                '!/^#/ && NF > 2 {sub(/^syscalls:sys_enter_/, "", $3); print w "\t" t "\t" $3 "\t" $1 "\t" u}' \
                "$WORK/stat.txt" >>"$COUNTS"
        done
    done
    log "$workload: counted"
done

# perf record of regmeter: where its CPU goes.
record_profile() { # workload
    local pid=$RM_PID port=$P_RM
    [[ $1 == rps ]] && { pid=$RM_S_PID; port=$P_RM_S; }
    perf record -q -F 2999 -o "$WORK/$1.perf" -p "$pid" -- \
        timeout 100 bash -c "$(declare -f workload_cmd); WORK=$WORK BLOB=$BLOB workload_cmd $1 $port" >/dev/null 2>&1 || true
    perf report -i "$WORK/$1.perf" --no-children --sort dso --stdio >"$WORK/$1.dso.txt" 2>/dev/null || true
    perf report -i "$WORK/$1.perf" --no-children --sort sym --stdio >"$WORK/$1.sym.txt" 2>/dev/null || true
    perf report -i "$WORK/$1.perf" --no-children --sort dso,sym --stdio >"$WORK/$1.dsosym.txt" 2>/dev/null || true
    echo "--- regmeter, $1: CPU by binary"
    grep '%' "$WORK/$1.dso.txt" | sed -n 1,8p
    echo "--- regmeter, $1: top functions (all)"
    grep '%' "$WORK/$1.sym.txt" | sed -n 1,15p
    echo "--- regmeter, $1: top user-space functions (% of all regmeter samples)"
    grep '%' "$WORK/$1.dsosym.txt" | grep -v kernel | sed -n 1,15p
    echo
}

{
    echo "regmeter vs nginx: where the time goes ($(date -u +%Y-%m-%dT%H:%M:%SZ), regmeter: $REGMETER_FROM)"
    echo "host: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(nproc) cores, kernel $(uname -r); nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), 2 workers; regmeter --threads $THREADS"
    echo "counts summed over $RUNS rounds, per GiB moved (per 1000 requests for rps); nginx = both workers"
    echo
    python3 - "$COUNTS" <<'PY'
import sys
from collections import defaultdict
tot = defaultdict(float); units = defaultdict(float); seen = set(); order = []
for line in open(sys.argv[1]):
    w, t, ev, v, u = line.rstrip("\n").split("\t")
    try: v = float(v)
    except ValueError: continue
    tot[(w, t, ev)] += v
    if ev == "task-clock": units[(w, t)] += float(u or 0)
    if (w, ev) not in seen: seen.add((w, ev)); order.append((w, ev))
label = {"download": "download 1 GiB, per GiB", "upload": "upload 1 GiB C-L, per GiB",
         "chunked": "upload 1 GiB chunked 1 MiB, per GiB", "chunked32k": "upload 1 GiB chunked 32 KiB, per GiB", "rps": "GET /v2/ wrk -c32, per 1000 req"}
cur = None
for w, ev in order:
    if w != cur:
        cur = w; print(f"\n{label.get(w, w):40s} {'nginx':>12s} {'regmeter':>12s} {'ratio':>7s}")
    vals = []
    for t in ("nginx", "regmeter"):
        u = units[(w, t)]
        vals.append(tot[(w, t, ev)] / u if u else float("nan"))
    name = ev + (" (ms)" if ev == "task-clock" else "")
    ratio = f"{vals[1] / vals[0]:.2f}" if vals[0] else "-"
    if tot[(w, "nginx", ev)] == 0 and tot[(w, "regmeter", ev)] == 0: continue
    print(f"  {name:38s} {vals[0]:12.1f} {vals[1]:12.1f} {ratio:>7s}")
PY
    echo
    record_profile download
    record_profile upload
    record_profile chunked
    record_profile chunked32k
    record_profile rps
} | tee "$WORK/profile.txt"
mkdir -p "$(dirname "$OUT")"
cp "$WORK/profile.txt" "$OUT"
log "written to $OUT"
