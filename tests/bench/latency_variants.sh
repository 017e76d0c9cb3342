#!/usr/bin/env bash
# Open-loop latency of regmeter variants next to nginx and the direct path, in
# one run: the experiments behind "Added latency: where the tail comes from"
# in docs/benchmarks.md. Every target gets REPS samples, alternating, and the
# table shows medians, the spread of p99s, and the proxy's CPU per request.
#
#   tests/bench/latency_variants.sh
#   LAT_RATE=10000 LAT_REPS=10 tests/bench/latency_variants.sh
#
# Environment (plus BENCH_REV / BENCH_REGMETER / BENCH_KEEP, see lib.sh):
#   LAT_RATE=R       requests/s (default 30000, about half of the proxies'
#                    peak on the 2-vCPU machine of docs/benchmarks.md)
#   LAT_REPS=N       samples per target (default 6), LAT_SECONDS (default 3)
#   LAT_CONNS=N      client connections (default 8, as in run.sh)
#   LAT_VARIANTS     ";"-separated LABEL=ARGS, each an extra regmeter started
#                    with these arguments after the defaults; ARGS may start
#                    with "WRAPPER|" (e.g. "fifo=chrt -f 1|"). Default:
#                    "threads1=--threads 1;threads4=--threads 4"
#                    (the default regmeter of lib.sh runs --threads 2).
set -euo pipefail

SOURCE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$SOURCE_ROOT/tests/bench/lib.sh"

RATE=${LAT_RATE:-30000}
REPS=${LAT_REPS:-6}
SECONDS_EACH=${LAT_SECONDS:-3}
CONNS=${LAT_CONNS:-8}
VARIANTS=${LAT_VARIANTS:-"threads1=--threads 1;threads4=--threads 4"}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

declare -A VPORT VPID
LABELS=()
IFS=';' read -r -a specs <<<"$VARIANTS"
for spec in "${specs[@]}"; do
    [[ -z $spec ]] && continue
    label=${spec%%=*}
    rest=${spec#*=}
    wrapper=""
    if [[ $rest == *"|"* ]]; then wrapper=${rest%%|*}; rest=${rest#*|}; fi
    port=$(free_port)
    metrics=$(free_port)
    [[ $rest == *--threads* ]] || rest="--threads $THREADS $rest"
    # shellcheck disable=SC2086 # the wrapper and the arguments are word lists
    $wrapper "$REGMETER" --listen "127.0.0.1:$port" --upstream "http://127.0.0.1:$P_STATIC" \
        --metrics-listen "127.0.0.1:$metrics" --access-log off --shutdown-grace 2 $rest \
        >"$WORK/regmeter-$label.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_http "http://127.0.0.1:$port/v2/" || die "variant $label did not start: $(cat "$WORK/regmeter-$label.log")"
    VPORT[$label]=$port
    VPID[$label]=$pid
    LABELS+=("$label")
    log "variant $label on :$port: ${wrapper:+$wrapper }regmeter $rest"
done

ALL=(direct nginx regmeter "${LABELS[@]}")
# Everything here is a small request: the static backend and the pair in
# front of it (lib.sh), plus the variants, which use the same backend.
target_port() { if [[ -n ${VPORT[$1]:-} ]]; then echo "${VPORT[$1]}"; else port_of "$1" small; fi; }
target_pids() { if [[ -n ${VPID[$1]:-} ]]; then echo "${VPID[$1]}"; else proxy_pids "$1" small; fi; }

OUTF=$WORK/latency.tsv
: >"$OUTF"
log "open loop at $RATE req/s, $CONNS connections, $SECONDS_EACH s, $REPS rounds over: ${ALL[*]}"
for ((round = 0; round < REPS; round++)); do
    for ((i = 0; i < ${#ALL[@]}; i++)); do
        target=${ALL[(i + round) % ${#ALL[@]}]}
        pids=$(target_pids "$target" | xargs echo)
        before=0
        [[ -n $pids ]] && before=$(cpu_ticks $pids)
        out=$(timeout $((SECONDS_EACH + 30)) "$WORK/benchc" lat "$(target_port "$target")" /v2/ "$CONNS" "$RATE" \
            "$SECONDS_EACH" 2>>"$WORK/client.log") || die "$target: benchc failed: $out"
        after=0
        [[ -n $pids ]] && after=$(cpu_ticks $pids)
        printf '%s\t%s\t%s\n' "$target" "$((after - before))" "$out" >>"$OUTF"
        log "  $target: $out"
    done
done

python3 - "$OUTF" "$RATE" "$SECONDS_EACH" "$CLK_TCK" "${ALL[@]}" <<'EOF'
import re, statistics, sys
path, rate, seconds, clk, *targets = sys.argv[1:]
rows = {}
for line in open(path):
    target, ticks, out = line.rstrip("\n").split("\t", 2)
    m = dict(re.findall(r"(\w+)=([\d.]+)", out))
    rows.setdefault(target, []).append((float(m["p50_us"]), float(m["p99_us"]), float(m["p999_us"]),
                                        int(ticks), int(m["requests"])))
direct = statistics.median(r[1] for r in rows["direct"])
print(f"open loop at {rate} req/s; medians of {len(rows['direct'])} rounds of {seconds} s")
print(f"{'target':10} {'p50 us':>7} {'p99 us':>7} {'p99-direct':>10} {'p99.9 us':>8} {'CPU us/req':>10}  p99 of each round")
for t in targets:
    r = rows[t]
    p50 = statistics.median(x[0] for x in r)
    p99 = statistics.median(x[1] for x in r)
    p999 = statistics.median(x[2] for x in r)
    ticks, reqs = sum(x[3] for x in r), sum(x[4] for x in r)
    cpu = "-" if t == "direct" else f"{ticks / float(clk) / reqs * 1e6:.1f}"
    print(f"{t:10} {p50:7.0f} {p99:7.0f} {p99 - direct:+10.0f} {p999:8.0f} {cpu:>10}  {[round(x[1]) for x in r]}")
EOF
