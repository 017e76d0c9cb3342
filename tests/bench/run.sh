#!/usr/bin/env bash
# Side-by-side benchmark: the same backend reached directly, through a tuned
# nginx, through a tuned HAProxy, and through regmeter. One command:
#
#   tests/bench/run.sh                 # full run (5 alternating rounds, 1 GiB)
#   BENCH_QUICK=1 tests/bench/run.sh   # CI smoke: 1 round, small sizes, ~1 s each
#
# Environment:
#   BENCH_RUNS=N        rounds per workload (default 5; quick: 1)
#   BENCH_REGMETER=BIN  use this binary instead of building build-bench/
#   BENCH_REV=REV       build regmeter from a committed revision (git archive
#                       into build-bench-rev/SHA/, cached), so uncommitted
#                       edits in the work tree are not measured
#   BENCH_CHUNK=BYTES   chunk size of the "chunked" upload row (default 1 MiB)
#   BENCH_LAT_RATE=R    open-loop latency rate, req/s (default: half the lowest
#                       of the three proxies' median peak req/s); the lat4 and
#                       lat8 rows run at a half and a quarter of it (a quarter
#                       and an eighth of peak), to show where the tail starts
#   BENCH_CLIENT_COPY=1 the download client copies bodies into user space
#                       (default: recv(MSG_TRUNC), so the client stays cheap)
#   BENCH_OUT=FILE      where the table goes (default
#                       docs/benchmarks-raw/latest.txt; quick: latest-quick.txt)
#   BENCH_KEEP=1        keep the temp dir (logs, samples) for inspection
#   BENCH_ACCESS_LOG=1  all three proxies write an access log line per request
#                       to a file (default: all off, like the tuned nginx)
#   BENCH_HAPROXY_SPLICE=always|auto  HAProxy's splice options (default
#                       always; see haproxy_conf.sh for why not auto)
#   BENCH_HAPROXY_GLIBC_TUNABLES=T  HAProxy's GLIBC_TUNABLES (default: higher
#                       mmap and trim thresholds, see haproxy_conf.sh; empty:
#                       glibc's defaults)
#   BENCH_WORKLOADS="W ..." run only these workloads (download upload chunked
#                       chunked32k rps lat8 lat4 lat wrklat rps1 lat1 c64down
#                       c64up storm1k storm4k storm1k_tls storm4k_tls
#                       storm1k_cap storm4k_cap;
#                       default all; lat needs rps, lat1 needs rps1, or
#                       BENCH_LAT_RATE / BENCH_LAT1_RATE).
#                       For focused experiments; the table shows what ran.
#   BENCH_STORM_RUNS=N  rounds of the storm rows (default 3, each sample takes
#                       ~6 s; quick: 1)
#   BENCH_STORM_TIMEOUT=T  wrk --timeout of the storm rows (default 2s, wrk's
#                       own): a response slower than T counts as a timeout
#                       error and is left out of the percentiles
#   BENCH_QUIET=S       before each sample, wait up to S seconds for the other
#                       processes on the machine to use < BENCH_QUIET_PCT (20)
#                       % of the cores (default 0: don't wait). For shared
#                       machines; the samples file records the load anyway.
#
# Storm rows (a cluster-wide rollout): wrk -t2 with 1000 and 4000 keep-alive
# connections (quick: 200 and 400) of GET /v2/ through each front of the
# static backend, each sample after a 1 s warm-up at the same concurrency and
# a 1 s pause (quick: neither). storm1k/storm4k with a plain upstream, *_tls
# with each front talking TLS to the backend, *_cap through regmeter
# --upstream-max-connections 64 (only when this regmeter has the flag; the
# table says "not built yet" otherwise, and a sample in which the upstream
# connections ever exceed 64 fails).
#
# Needs: cc, nginx, haproxy, wrk, curl, python3, openssl, ss, meson + ninja
# (to build regmeter).
# Everything listens on 127.0.0.1. Every process started here is stopped on
# exit (trap), every wait and loop is bounded.
set -euo pipefail

SOURCE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
QUICK=${BENCH_QUICK:-0}
if [[ $QUICK == 1 ]]; then
    RUNS=${BENCH_RUNS:-1}
    BLOB=$((64 << 20))          # single-stream transfers
    STREAM_EACH=$((4 << 20))    # 64 x 4 MiB = 256 MiB
    WRK_S=1; LAT_S=0.5; WRKL_S=1  # wrk takes whole seconds only
    STORM_1K=200; STORM_4K=400; STORM_S=1; STORM_WARMUP_S=0; STORM_RUNS=${BENCH_STORM_RUNS:-1}
    OUT=${BENCH_OUT:-$SOURCE_ROOT/docs/benchmarks-raw/latest-quick.txt}
else
    RUNS=${BENCH_RUNS:-5}
    BLOB=$((1 << 30))           # 1 GiB
    STREAM_EACH=$((64 << 20))   # 64 x 64 MiB = 4 GiB
    WRK_S=3; LAT_S=5; WRKL_S=5
    STORM_1K=1000; STORM_4K=4000; STORM_S=3; STORM_WARMUP_S=1; STORM_RUNS=${BENCH_STORM_RUNS:-3}
    OUT=${BENCH_OUT:-$SOURCE_ROOT/docs/benchmarks-raw/latest.txt}
fi
CHUNK=${BENCH_CHUNK:-$((1 << 20))}
SMALL_CHUNK=32768               # what Go's io.Copy (docker's chunked PATCH) writes
STREAM_CONNS=64
STORM_TIMEOUT=${BENCH_STORM_TIMEOUT:-2s}
. "$SOURCE_ROOT/tests/bench/lib.sh"

selected() { # WORKLOAD...: is any of them to run (BENCH_WORKLOADS)?
    local w
    [[ -z ${BENCH_WORKLOADS:-} ]] && return 0
    for w in "$@"; do [[ " $BENCH_WORKLOADS " == *" $w "* ]] && return 0; done
    return 1
}
selected storm1k_tls storm4k_tls && start_tls_upstream_fronts
selected storm1k_cap storm4k_cap && start_capped_regmeter

SAMPLES=$WORK/samples.tsv
: >"$SAMPLES"

record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$SAMPLES"; }
kv() { # KEY LINE -> value of KEY=value in LINE
    [[ " $2" =~ [[:space:]]$1=([^[:space:]]*) ]] && echo "${BASH_REMATCH[1]}"
    return 0
}
to_us() { # wrk duration (12.34us, 1.20ms, 2.00s) -> microseconds
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000;
        else if (v ~ /s$/) print n * 1000000; else print n }'
}

for target in "${TARGETS[@]}"; do
    pids=$(proxy_pids "$target" | xargs echo)
    [[ -n $pids ]] && record idle "$target" rss_kib "$(rss_kib $pids)"
done

# ---------------------------------------------------------------- workloads
# run_one WORKLOAD TARGET: one sample of one workload against one target.
run_one() {
    local workload=$1 target=$2 port pids out="" rc=0 before=0 after=0 busy0 steal0 ours0 t0 busy1 steal1 ours1 t1 pair=""
    local conns url uport="" accepts0=0 accepts1=0 sampler="" samples_file
    # Small requests go to the fronts of the static backend.
    case $workload in
        rps | rps1 | lat | lat4 | lat8 | lat1 | wrklat | storm1k | storm4k) pair=small ;;
        storm*_tls) pair=tls ;;
        storm*_cap) pair=cap ;;
    esac
    port=$(port_of "$target" $pair)
    pids=$(proxy_pids "$target" $pair | xargs echo)
    if ((${BENCH_QUIET:-0} > 0)) && ! wait_quiet "$BENCH_QUIET" "${BENCH_QUIET_PCT:-20}"; then
        log "  (machine still busy after ${BENCH_QUIET}s of waiting; measuring anyway)"
    fi
    if [[ $workload == storm* ]]; then
        conns=$STORM_1K
        [[ $workload == storm4k* ]] && conns=$STORM_4K
        url="http://127.0.0.1:$port/v2/"
        # Warm-up at the same concurrency: the rows measure a storm's steady
        # state, with whatever idle upstream connections the front keeps. A
        # second's pause lets the front finish what the warm-up's clients left
        # behind (upstream TLS handshakes still under way when they closed).
        if ((STORM_WARMUP_S > 0)); then
            timeout $((STORM_WARMUP_S + 30)) wrk -t2 -c"$conns" -d"${STORM_WARMUP_S}s" --timeout "$STORM_TIMEOUT" \
                "$url" >/dev/null 2>&1 || true
            sleep 1
        fi
        uport=$(upstream_port_of "$target" "$pair")
        if [[ -n $uport ]]; then
            accepts0=$(backend_accepts)
            samples_file=$WORK/upstream-conns.$workload.$target
            : >"$samples_file"
            upstream_conn_sampler "$uport" "$samples_file" &
            sampler=$!
        fi
    fi
    read -r busy0 steal0 < <(machine_ticks)
    ours0=$(our_ticks)
    t0=$(date +%s.%N)
    [[ -n $pids ]] && before=$(cpu_ticks $pids)
    [[ -n $pids && $workload == c64* ]] && hwm_reset $pids
    case $workload in
        download)
            out=$(timeout 120 "$WORK/benchc" get "$port" "/blob?size=$BLOB" 1 2>>"$WORK/client.log") || rc=$? ;;
        upload)
            out=$(timeout 120 "$WORK/benchc" put "$port" /upload "$BLOB" 1 2>>"$WORK/client.log") || rc=$? ;;
        chunked)
            out=$(timeout 120 "$WORK/benchc" put "$port" /upload "$BLOB" 1 "$CHUNK" 2>>"$WORK/client.log") || rc=$? ;;
        chunked32k)
            out=$(timeout 120 "$WORK/benchc" put "$port" /upload "$BLOB" 1 "$SMALL_CHUNK" 2>>"$WORK/client.log") || rc=$? ;;
        c64down)
            out=$(timeout 300 "$WORK/benchc" get "$port" "/blob?size=$STREAM_EACH" "$STREAM_CONNS" 2>>"$WORK/client.log") || rc=$? ;;
        c64up)
            out=$(timeout 300 "$WORK/benchc" put "$port" /upload "$STREAM_EACH" "$STREAM_CONNS" 2>>"$WORK/client.log") || rc=$? ;;
        rps)
            out=$(timeout $((WRK_S + 30)) wrk -t1 -c32 -d"${WRK_S}s" "http://127.0.0.1:$port/v2/" 2>&1) || rc=$?
            printf '%s\n' "--- rps $target" "$out" >>"$WORK/wrk.log" ;;
        lat | lat4 | lat8)
            local rate=$LAT_RATE
            [[ $workload == lat4 ]] && rate=$((LAT_RATE / 2))
            [[ $workload == lat8 ]] && rate=$((LAT_RATE / 4))
            out=$(timeout $((${LAT_S%.*} + 31)) "$WORK/benchc" lat "$port" /v2/ 8 "$rate" "$LAT_S" 2>>"$WORK/client.log") || rc=$? ;;
        rps1)
            out=$(timeout $((WRK_S + 30)) taskset -c 0 wrk -t1 -c32 -d"${WRK_S}s" "http://127.0.0.1:$port/v2/" 2>&1) || rc=$?
            printf '%s\n' "--- rps1 $target" "$out" >>"$WORK/wrk.log" ;;
        lat1)
            out=$(timeout $((${LAT_S%.*} + 31)) taskset -c 0 "$WORK/benchc" lat "$port" /v2/ 8 "$LAT1_RATE" "$LAT_S" 2>>"$WORK/client.log") || rc=$? ;;
        wrklat)
            out=$(timeout $((WRKL_S + 30)) wrk -t1 -c8 -d"${WRKL_S}s" --latency "http://127.0.0.1:$port/v2/" 2>&1) || rc=$?
            printf '%s\n' "--- wrklat $target" "$out" >>"$WORK/wrk.log" ;;
        storm*)
            out=$(timeout $((STORM_S + 30)) wrk -t2 -c"$conns" -d"${STORM_S}s" --timeout "$STORM_TIMEOUT" \
                -s "$BENCH_DIR/storm.lua" "$url" 2>&1) || rc=$?
            printf '%s\n' "--- $workload $target" "$out" >>"$WORK/wrk.log" ;;
    esac
    [[ -n $pids ]] && after=$(cpu_ticks $pids)
    read -r busy1 steal1 < <(machine_ticks)
    ours1=$(our_ticks)
    t1=$(date +%s.%N)
    if [[ -n $sampler ]]; then
        kill "$sampler" 2>/dev/null || true
        wait "$sampler" 2>/dev/null || true
        accepts1=$(backend_accepts)
    fi
    # How busy the rest of the machine was during this sample (% of all cores).
    record "$workload" "$target" foreign_pct "$(awk -v b="$((busy1 - busy0))" -v s="$((steal1 - steal0))" \
        -v o="$((ours1 - ours0))" -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" -v n="$(nproc)" \
        'BEGIN {f = (b - s - o) / ((t1 - t0) * hz * n) * 100; printf "%.1f", (f < 0) ? 0 : f}')"
    if [[ $rc != 0 ]]; then
        log "  $workload $target: FAILED (exit $rc) $out"
        record "$workload" "$target" error 1
        return 0
    fi
    case $workload in
        download | upload | chunked | chunked32k | c64down | c64up)
            record "$workload" "$target" gbps "$(kv gbps "$out")"
            record "$workload" "$target" bytes "$(kv bytes "$out")"
            [[ -n $pids ]] && record "$workload" "$target" cpu_ticks $((after - before))
            [[ -n $pids && $workload == c64* ]] && record "$workload" "$target" hwm_kib "$(hwm_kib $pids)"
            log "  $workload $target: $out" ;;
        rps | rps1)
            local reqs errs
            reqs=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
            errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out")
            [[ -n $errs ]] && { log "  $workload $target: $errs"; record "$workload" "$target" error 1; }
            record "$workload" "$target" reqs_per_s "$reqs"
            record "$workload" "$target" requests "$(awk '/requests in/ {print $1}' <<<"$out")"
            [[ -n $pids ]] && record "$workload" "$target" cpu_ticks $((after - before))
            log "  $workload $target: $reqs req/s" ;;
        lat | lat4 | lat8 | lat1)
            record "$workload" "$target" p50_us "$(kv p50_us "$out")"
            record "$workload" "$target" p99_us "$(kv p99_us "$out")"
            record "$workload" "$target" p999_us "$(kv p999_us "$out")"
            record "$workload" "$target" max_us "$(kv max_us "$out")"
            log "  $workload $target: $out" ;;
        storm*)
            local line requests key
            line=$(grep '^storm ' <<<"$out" | tail -1)
            requests=$(kv requests "$line")
            if [[ -z $requests ]]; then
                log "  $workload $target: FAILED (no figures from storm.lua): $out"
                record "$workload" "$target" error 1
                return 0
            fi
            # A front that answers nothing within the run is a result (0 req/s),
            # not a broken sample; it has no latency percentiles then.
            record "$workload" "$target" requests "$requests"
            record "$workload" "$target" reqs_per_s "$(awk -v r="$requests" -v d="$(kv duration_us "$line")" \
                'BEGIN {printf "%.0f", r / d * 1e6}')"
            if ((requests > 0)); then
                for key in p50_us p99_us p999_us max_us; do record "$workload" "$target" "$key" "$(kv "$key" "$line")"; done
            fi
            for key in connect_errors read_errors write_errors timeout_errors status_errors; do
                record "$workload" "$target" "$key" "$(kv "$key" "$line")"
            done
            [[ -n $pids ]] && record "$workload" "$target" cpu_ticks $((after - before))
            local new_conns="" max_conns=""
            if [[ -n $uport ]]; then
                # The "after" query is one of the accepted connections.
                new_conns=$((accepts1 - accepts0 - 1))
                max_conns=$(sort -n "$samples_file" | tail -1)
                record "$workload" "$target" new_upstream_conns "$new_conns"
                record "$workload" "$target" max_upstream_conns "$max_conns"
                if [[ $pair == cap ]] && ((max_conns > CAP_LIMIT)); then
                    log "  $workload $target: FAILED: $max_conns upstream connections (--upstream-max-connections $CAP_LIMIT)"
                    record "$workload" "$target" error 1
                fi
            fi
            log "  $workload $target: $line${uport:+ new_upstream_conns=$new_conns max_upstream_conns=$max_conns}" ;;
        wrklat)
            local p50 p99
            p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
            p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
            record wrklat "$target" p50_us "$(to_us "$p50")"
            record wrklat "$target" p99_us "$(to_us "$p99")"
            record wrklat "$target" reqs_per_s "$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
            log "  wrklat $target: p50 $p50 p99 $p99" ;;
    esac
}

# Rounds alternate the targets, and the order rotates each round so none of
# them always runs first (after an idle pause) or last.
# run_workload WORKLOAD [TARGET...]: default all of TARGETS.
run_workload() {
    local workload=$1 round i target targets
    shift
    targets=("${@:-${TARGETS[@]}}")
    selected "$workload" || return 0
    log "$workload: $RUNS round(s)"
    for ((round = 0; round < RUNS; round++)); do
        for ((i = 0; i < ${#targets[@]}; i++)); do
            target=${targets[(i + round) % ${#targets[@]}]}
            run_one "$workload" "$target"
        done
    done
}

median_of() { # WORKLOAD TARGET METRIC
    awk -F'\t' -v w="$1" -v t="$2" -v m="$3" '$1 == w && $2 == t && $3 == m && $4 != "" {print $4}' "$SAMPLES" |
        sort -g | awk '{a[NR] = $1} END {if (NR == 0) exit; print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}

START=$(date +%s)
run_workload download
run_workload upload
run_workload chunked
run_workload chunked32k
run_workload rps
half_of_lower_peak() { # WORKLOAD: half the lowest of the proxies' median req/s
    local target
    for target in nginx haproxy regmeter; do median_of "$1" "$target" reqs_per_s; done |
        awk 'NR == 1 || $1 + 0 < m {m = $1 + 0} END {r = int(m / 2 / 100) * 100; print (r < 100) ? 100 : r}'
}
LAT_RATE=${BENCH_LAT_RATE:-$(half_of_lower_peak rps)}
log "open-loop latency rate: $LAT_RATE req/s (lat8, lat4: a quarter and a half of it)"
run_workload lat8
run_workload lat4
run_workload lat
run_workload wrklat
# The same on one CPU: the client, the backend and the proxy under test all
# pinned to CPU 0 (every thread, taskset), so no request waits for another
# (virtual) CPU to wake up. On a VM whose idle vCPUs halt, those wakeups are
# most of the open-loop tail above; this isolates what the proxy itself adds.
pin_services() { # CPU-LIST
    local pid
    for pid in "${PIDS[@]}" $(all_nginx_workers); do
        taskset -a -p -c "$1" "$pid" >/dev/null 2>&1 || true
    done
}
if selected rps1 lat1; then
    pin_services 0
    run_workload rps1
    LAT1_RATE=${BENCH_LAT1_RATE:-$(half_of_lower_peak rps1)}
    log "one-CPU open-loop latency rate: $LAT1_RATE req/s"
    run_workload lat1
    pin_services "0-$(($(nproc) - 1))"
fi
run_workload c64down
run_workload c64up
RUNS=$STORM_RUNS run_workload storm1k
RUNS=$STORM_RUNS run_workload storm4k
# No direct target with a TLS upstream: the fronts' clients speak plain HTTP,
# and wrk speaking TLS to the backend would measure 4000 handshakes instead.
RUNS=$STORM_RUNS run_workload storm1k_tls nginx haproxy regmeter
RUNS=$STORM_RUNS run_workload storm4k_tls nginx haproxy regmeter
if [[ $CAP_STATE == built ]]; then
    RUNS=$STORM_RUNS run_workload storm1k_cap regmeter
    RUNS=$STORM_RUNS run_workload storm4k_cap regmeter
fi
ELAPSED=$(($(date +%s) - START))

for target in nginx haproxy regmeter; do
    pids=$(proxy_pids "$target" | xargs echo)
    record end "$target" rss_kib "$(rss_kib $pids)"
    record end "$target" hwm_kib "$(hwm_kib $pids)"
done
# Whatever regmeter said while under load (errors, warnings).
cat "$WORK"/regmeter*.log | grep -ciE 'error|warn|fail' >"$WORK/regmeter-complaints" || true
curl -s --max-time 5 "http://127.0.0.1:$P_METRICS/metrics" >"$WORK/metrics.txt" || true
check_services

# ---------------------------------------------------------------- table
META=$WORK/meta.txt
{
    echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "regmeter_from=$REGMETER_FROM"
    echo "kernel=$(uname -r)"
    echo "cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "cores=$(nproc)"
    echo "nginx=$(nginx -v 2>&1 | sed 's/.*nginx\///')"
    echo "nginx_workers=$(proxy_pids nginx | wc -l)"
    echo "haproxy=$(haproxy -v 2>&1 | awk '/version/ {print $3; exit}')"
    echo "haproxy_threads=$(awk '/^Threads:/ {print $2}' "/proc/$HAPROXY_PID/status")"
    echo "haproxy_splice=${BENCH_HAPROXY_SPLICE:-always}"
    echo "haproxy_glibc_tunables=$(haproxy_glibc_tunables)"
    echo "runs=$RUNS"
    echo "quick=$QUICK"
    echo "blob=$BLOB"
    echo "chunk=$CHUNK"
    echo "small_chunk=$SMALL_CHUNK"
    echo "stream_each=$STREAM_EACH"
    echo "stream_conns=$STREAM_CONNS"
    echo "wrk_s=$WRK_S"
    echo "lat_s=$LAT_S"
    echo "wrkl_s=$WRKL_S"
    echo "lat_rate=$LAT_RATE"
    echo "lat1_rate=${LAT1_RATE:-n/a}"
    echo "storm_1k=$STORM_1K"
    echo "storm_4k=$STORM_4K"
    echo "storm_s=$STORM_S"
    echo "storm_runs=$STORM_RUNS"
    echo "storm_warmup_s=$STORM_WARMUP_S"
    echo "storm_timeout=$STORM_TIMEOUT"
    echo "cap_limit=$CAP_LIMIT"
    echo "cap_state=$CAP_STATE"
    echo "clk_tck=$CLK_TCK"
    echo "client_copy=${BENCH_CLIENT_COPY:-0}"
    echo "access_log=$([[ $ACCESS_LOG == 1 ]] && echo "on (all, to files)" || echo "off (all)")"
    echo "quiet=${BENCH_QUIET:-0}s below ${BENCH_QUIET_PCT:-20}%"
    echo "elapsed=$ELAPSED"
    echo "regmeter_complaints=$(cat "$WORK/regmeter-complaints" 2>/dev/null || echo 0)"
} >"$META"

mkdir -p "$(dirname "$OUT")"
python3 "$BENCH_DIR/table.py" "$META" "$SAMPLES" | tee "$WORK/table.txt"
cp "$WORK/table.txt" "$OUT"
cp "$SAMPLES" "${OUT%.txt}-samples.tsv"
log "table written to $OUT (samples: ${OUT%.txt}-samples.tsv)"
if [[ $(cat "$WORK/regmeter-complaints" 2>/dev/null || echo 0) != 0 ]]; then
    log "regmeter logged complaints under load:"
    cat "$WORK"/regmeter*.log | grep -iE 'error|warn|fail' | sort | uniq -c | sort -rn | head -20 >&2
fi
if grep -q $'\terror\t' "$SAMPLES"; then
    die "some samples failed (see above)"
fi
