#!/usr/bin/env bash
# Two or more regmeter builds side by side against the same peers: runs
# tests/bench/run.sh once per build per round, the builds' order rotating
# each round, and prints, per build, the range over rounds of regmeter's
# ratio to nginx and to HAProxy on each row (each ratio taken within one run,
# so a noisy minute moves both sides of it). For "did this change cost
# anything on the byte path": a before/after of a refactor or a feature.
#
#   tests/bench/compare_builds.sh NAME=BINARY NAME=BINARY ...
#
# Environment: COMPARE_ROUNDS (default 3); BENCH_RUNS (default 3) and
# BENCH_WORKLOADS (default "download upload chunked chunked32k rps") go to
# run.sh; COMPARE_OUT (default docs/benchmarks-raw/compare-<time>) keeps
# every run's table and the summary.
set -euo pipefail
SOURCE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
(($# >= 2)) || { echo "usage: $0 NAME=BINARY NAME=BINARY [...]" >&2; exit 2; }
names=() bins=()
for arg in "$@"; do
    [[ $arg == *=* && -x ${arg#*=} ]] || { echo "$0: '$arg' is not NAME=EXECUTABLE" >&2; exit 2; }
    names+=("${arg%%=*}") bins+=("${arg#*=}")
done
ROUNDS=${COMPARE_ROUNDS:-3}
export BENCH_RUNS=${BENCH_RUNS:-3}
export BENCH_WORKLOADS=${BENCH_WORKLOADS:-download upload chunked chunked32k rps}
OUT=${COMPARE_OUT:-$SOURCE_ROOT/docs/benchmarks-raw/compare-$(date -u +%Y-%m-%dT%H%MZ)}
mkdir -p "$OUT"
n=${#names[@]}
for ((round = 0; round < ROUNDS; round++)); do
    for ((i = 0; i < n; i++)); do
        k=$(((i + round) % n))
        echo "[compare_builds] round $((round + 1))/$ROUNDS: ${names[k]}" >&2
        BENCH_REGMETER=${bins[k]} BENCH_OUT=$OUT/${names[k]}.$round.txt \
            bash "$SOURCE_ROOT/tests/bench/run.sh" >"$OUT/${names[k]}.$round.log" 2>&1 \
            || { echo "run.sh failed for ${names[k]} (see $OUT/${names[k]}.$round.log)" >&2; exit 1; }
    done
done
python3 - "$OUT" "${names[@]}" <<'PY' | tee "$OUT/summary.txt"
import glob, os, re, sys
out, names = sys.argv[1], sys.argv[2:]
rows = {}  # row -> name -> [(vs nginx, vs haproxy)]
order = []
for name in names:
    for path in sorted(glob.glob(os.path.join(out, f"{name}.*.txt"))):
        for line in open(path):
            cols = re.split(r"\s{2,}", line.strip())
            if len(cols) < 7 or not re.match(r"^[0-9.]+$", cols[-1]) or not re.match(r"^[0-9.]+$", cols[-2]):
                continue
            row = cols[0]
            if row not in rows:
                rows[row] = {}
                order.append(row)
            rows[row].setdefault(name, []).append((float(cols[-2]), float(cols[-1])))
def rng(v):
    return f"{min(v):.2f}-{max(v):.2f}" if v else "n/a"
print(f"regmeter/nginx and regmeter/HAProxy per round (ratio > 1: regmeter better on throughput rows, worse on CPU rows)")
print(f"{'row':<52}" + "".join(f"{n + ' /nginx':>22}{n + ' /haproxy':>22}" for n in names))
for row in order:
    cells = ""
    for n in names:
        v = rows[row].get(n, [])
        cells += f"{rng([a for a, _ in v]):>22}{rng([b for _, b in v]):>22}"
    print(f"{row:<52}{cells}")
PY
