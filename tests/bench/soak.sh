#!/usr/bin/env bash
# Soak: regmeter (and the tuned nginx beside it, for reference) under a steady
# mixed load for a while, its memory and descriptors sampled throughout.
# Passes when regmeter's RSS at the end is within SOAK_SLACK_MIB of what it was
# after the warm-up minute (no growth under load), its RSS once traffic has
# stopped for a few seconds is within SOAK_IDLE_SLACK_MIB of the same
# measurement after the warm-up (no growth at rest: the idle trimmer hands
# burst memory back), and its open descriptors return to the idle baseline.
#
#   tests/bench/soak.sh                 # 300 s
#   SOAK_SECONDS=30 tests/bench/soak.sh # shorter
#
# Load, in rounds until the time is up (all through the proxy, backend benchd):
# 64 connections each downloading 64 MiB, 64 connections each uploading
# 16 MiB (Content-Length and chunked in turn), and wrk -c32 on GET /v2/.
set -euo pipefail

SOURCE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SOAK_SECONDS=${SOAK_SECONDS:-300}
SOAK_SLACK_MIB=${SOAK_SLACK_MIB:-4}
SOAK_IDLE_SLACK_MIB=${SOAK_IDLE_SLACK_MIB:-1}
WARMUP_SECONDS=$(( SOAK_SECONDS < 120 ? SOAK_SECONDS / 4 : 60 ))
. "$SOURCE_ROOT/tests/bench/lib.sh"

fds_of() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
rss_mib() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
# RSS after 4 s without traffic: the idle trimmer runs after 2-3 quiet seconds.
settled_rss_mib() { sleep 4; rss_mib "$1"; }

idle_fds=$(fds_of "$RM_PID")
log "soak: ${SOAK_SECONDS}s against regmeter pid $RM_PID (idle: $(rss_mib "$RM_PID") MiB, $idle_fds fds)"

SERIES=$WORK/soak.tsv
printf 'second\trss_mib\tfds\n' >"$SERIES"
sampler() {
    local start=$SECONDS
    while kill -0 "$RM_PID" 2>/dev/null && ((SECONDS - start <= SOAK_SECONDS + 5)); do
        printf '%s\t%s\t%s\n' "$((SECONDS - start))" "$(rss_mib "$RM_PID")" "$(fds_of "$RM_PID")" >>"$SERIES"
        sleep 5
    done
}
sampler &
SAMPLER=$!
PIDS+=("$SAMPLER")

start=$SECONDS
rounds=0
warm_rss=""
# Bounded: each round takes seconds; the loop ends when the time is up.
while ((SECONDS - start < SOAK_SECONDS)); do
    chunk=0
    ((rounds % 2)) && chunk=$((1 << 20))
    "$WORK/benchc" get "$P_RM" "/blob?size=$((64 << 20))" 64 >/dev/null 2>"$WORK/soak-get.err" \
        || die "download round $rounds failed: $(tail -3 "$WORK/soak-get.err")"
    "$WORK/benchc" put "$P_RM" /upload $((16 << 20)) 64 $chunk >/dev/null 2>"$WORK/soak-put.err" \
        || die "upload round $rounds failed: $(tail -3 "$WORK/soak-put.err")"
    wrk -t1 -c32 -d2s "http://127.0.0.1:$P_RM/v2/" >"$WORK/soak-wrk.txt" 2>&1 || die "wrk failed"
    grep -q "Non-2xx" "$WORK/soak-wrk.txt" && die "wrk saw non-2xx answers: $(cat "$WORK/soak-wrk.txt")"
    rounds=$((rounds + 1))
    if [[ -z $warm_rss ]] && ((SECONDS - start >= WARMUP_SECONDS)); then
        warm_rss=$(rss_mib "$RM_PID")
        warm_idle_rss=$(settled_rss_mib "$RM_PID")
        log "after warm-up (${WARMUP_SECONDS}s, $rounds rounds): RSS $warm_rss MiB, $warm_idle_rss MiB once quiet"
    fi
done
[[ -n $warm_rss ]] || { warm_rss=$(rss_mib "$RM_PID"); warm_idle_rss=$(settled_rss_mib "$RM_PID"); }
end_rss=$(rss_mib "$RM_PID")
end_idle_rss=$(settled_rss_mib "$RM_PID")
hwm=$(hwm_kib "$RM_PID")
nginx_hwm=$(hwm_kib $(proxy_pids nginx))
# Client connections close at once; idle upstream connections stay pooled
# for up to 30 s (then the pool's sweep closes them): wait for both, bounded.
for _ in $(seq 1 45); do
    end_fds=$(fds_of "$RM_PID")
    ((end_fds <= idle_fds + 2)) && break
    sleep 1
done
kill "$SAMPLER" 2>/dev/null || true

log "rounds: $rounds in ${SOAK_SECONDS}s; RSS warm $warm_rss MiB -> end $end_rss MiB (quiet: $warm_idle_rss -> $end_idle_rss MiB); peak $((hwm / 1024)) MiB (nginx workers idle peak $((nginx_hwm / 1024)) MiB); fds idle $idle_fds -> end $end_fds"
echo "soak_seconds=$SOAK_SECONDS"
echo "soak_rounds=$rounds"
echo "soak_rss_warm_mib=$warm_rss"
echo "soak_rss_end_mib=$end_rss"
echo "soak_rss_quiet_warm_mib=$warm_idle_rss"
echo "soak_rss_quiet_end_mib=$end_idle_rss"
echo "soak_rss_peak_mib=$((hwm / 1024))"
echo "soak_fds_idle=$idle_fds"
echo "soak_fds_end=$end_fds"
column -t "$SERIES" | awk 'NR == 1 || NR % 6 == 2' >&2
awk -v w="$warm_rss" -v e="$end_rss" -v s="$SOAK_SLACK_MIB" 'BEGIN { exit !(e <= w + s) }' \
    || die "RSS grew: $warm_rss MiB after warm-up, $end_rss MiB at the end (slack $SOAK_SLACK_MIB MiB)"
awk -v w="$warm_idle_rss" -v e="$end_idle_rss" -v s="$SOAK_IDLE_SLACK_MIB" 'BEGIN { exit !(e <= w + s) }' \
    || die "RSS at rest grew: $warm_idle_rss MiB after warm-up, $end_idle_rss MiB at the end (slack $SOAK_IDLE_SLACK_MIB MiB)"
((end_fds <= idle_fds + 2)) || die "descriptors did not return: idle $idle_fds, after $end_fds"
log "soak: OK"
