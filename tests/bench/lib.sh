# shellcheck shell=bash
# Shared by tests/bench/run.sh, profile.sh, soak.sh and latency_variants.sh:
# builds the helpers and regmeter, and starts on free 127.0.0.1 ports two
# backends, each with a tuned nginx and a regmeter in front of it:
#   - the blob backend (benchd: sendfile downloads, MSG_TRUNC upload sink),
#     for the streaming rows;
#   - the small-request backend, a static nginx answering GET /v2/ itself
#     (what the performance issue asks for: "a fast static upstream"), for
#     the requests/s and latency rows.
# Everything stops on exit (trap). It reads BENCH_REGMETER, BENCH_REV and
# BENCH_KEEP (see run.sh) and leaves:
#   WORK (temp dir with benchc, benchd, logs), P_BACK P_NGINX P_RM P_METRICS,
#   P_STATIC P_NGINX_S P_RM_S, NGINX_PID RM_PID NGINX_S_PID RM_S_PID
#   STATIC_PID, port_of TARGET [small], proxy_pids TARGET [small],
#   nginx_workers MASTER_PID, cpu_ticks PIDS..., hwm_reset/hwm_kib/rss_kib
#   PIDS..., machine_ticks, our_ticks, log, die.
set -euo pipefail

SOURCE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_DIR=$SOURCE_ROOT/tests/bench
THREADS=2
TARGETS=(direct nginx regmeter)
CLK_TCK=$(getconf CLK_TCK)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/regmeter-bench.XXXXXX")
PIDS=()

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

cleanup() {
    local rc=$? pid i
    trap - EXIT INT TERM
    # Reverse start order: proxies before the backend.
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        pid=${PIDS[i]}
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ ${BENCH_KEEP:-0} == 1 || $rc != 0 ]]; then
        log "work dir kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in cc nginx wrk curl python3; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install build-essential nginx-light wrk curl python3)"
done

# ---------------------------------------------------------------- build
log "building helpers into $WORK"
cc -O2 -Wall -pthread -o "$WORK/benchd" "$BENCH_DIR/benchd.c"
cc -O2 -Wall -pthread -o "$WORK/benchc" "$BENCH_DIR/benchc.c"

if [[ -n ${BENCH_REGMETER:-} ]]; then
    REGMETER=$BENCH_REGMETER
    REGMETER_FROM="given binary $REGMETER"
elif [[ -n ${BENCH_REV:-} ]]; then
    # A committed revision, exported with git archive: what is measured does
    # not depend on uncommitted edits in the work tree. Cached per commit.
    SHA=$(git -C "$SOURCE_ROOT" rev-parse --verify "$BENCH_REV^{commit}") || die "no revision $BENCH_REV"
    CACHE=$SOURCE_ROOT/build-bench-rev/$SHA
    if [[ ! -x $CACHE/build/src/regmeter ]]; then
        log "building regmeter from $BENCH_REV (${SHA:0:12}) in $CACHE"
        rm -rf "$CACHE"
        mkdir -p "$CACHE/tree"
        git -C "$SOURCE_ROOT" archive "$SHA" | tar -x -C "$CACHE/tree"
        { meson setup "$CACHE/build" "$CACHE/tree" --buildtype=release &&
            meson compile -C "$CACHE/build" regmeter; } >"$WORK/meson.log" 2>&1 ||
            { tail -40 "$WORK/meson.log" >&2; rm -rf "$CACHE"; die "building regmeter at $BENCH_REV failed"; }
    fi
    REGMETER=$CACHE/build/src/regmeter
    REGMETER_FROM="commit ${SHA:0:12} (BENCH_REV=$BENCH_REV, clean export)"
else
    REGMETER_FROM="work tree $(git -C "$SOURCE_ROOT" describe --always --dirty 2>/dev/null || echo '?'), build-bench/"
    BUILD=$SOURCE_ROOT/build-bench
    if [[ ! -f $BUILD/build.ninja ]]; then
        log "meson setup build-bench (release)"
        meson setup "$BUILD" "$SOURCE_ROOT" --buildtype=release >"$WORK/meson-setup.log" 2>&1 ||
            { cat "$WORK/meson-setup.log" >&2; die "meson setup failed"; }
    fi
    log "meson compile regmeter (release)"
    meson compile -C "$BUILD" regmeter >"$WORK/meson-compile.log" 2>&1 ||
        { tail -40 "$WORK/meson-compile.log" >&2; die "building regmeter failed"; }
    REGMETER=$BUILD/src/regmeter
fi
[[ -x $REGMETER ]] || die "no regmeter binary at $REGMETER"

# ---------------------------------------------------------------- ports
read -r P_BACK P_NGINX P_RM P_METRICS P_STATIC P_NGINX_S P_RM_S P_METRICS_S < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(8):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
)

wait_http() { # URL: up to 10 s for any HTTP answer
    local _
    for _ in $(seq 200); do
        curl -s -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.05
    done
    return 1
}

# ---------------------------------------------------------------- services
log "backend on :$P_BACK"
"$WORK/benchd" "$P_BACK" $((1 << 30)) 2>"$WORK/benchd.log" &
PIDS+=($!)
wait_http "http://127.0.0.1:$P_BACK/v2/" || die "backend did not start"

# Access logs: both off by default (nginx as tuned has access_log off, so
# regmeter runs with --access-log off); BENCH_ACCESS_LOG=1 turns both on,
# each writing one line per request to a file in $WORK.
ACCESS_LOG=${BENCH_ACCESS_LOG:-0}
if [[ $ACCESS_LOG == 1 ]]; then
    NGINX_ACCESS_LOG="log_format bench '\$time_iso8601 \$remote_addr \"\$request\" \$status \$request_length \$bytes_sent \$request_time \$upstream_header_time \"\$http_user_agent\"'; access_log $WORK/nginx/logs/access.log bench;"
else
    NGINX_ACCESS_LOG="access_log off;"
fi
log "nginx on :$P_NGINX"
. "$BENCH_DIR/nginx_conf.sh"
write_nginx_conf "$WORK/nginx" "$P_BACK" "127.0.0.1:$P_NGINX" "" "$NGINX_ACCESS_LOG"
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' 2>"$WORK/nginx/logs/stderr.log" &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
wait_http "http://127.0.0.1:$P_NGINX/v2/" || die "nginx did not start: $(cat "$WORK/nginx/logs/"*.log)"

log "regmeter on :$P_RM (metrics :$P_METRICS, $THREADS threads)"
RM_ARGS=(--listen "127.0.0.1:$P_RM" --upstream "http://127.0.0.1:$P_BACK"
    --metrics-listen "127.0.0.1:$P_METRICS" --threads "$THREADS" --shutdown-grace 2)
# Older revisions have no access log (and no flag for it).
if "$REGMETER" --help 2>/dev/null | grep -q -- '--access-log'; then
    if [[ $ACCESS_LOG == 1 ]]; then RM_ARGS+=(--access-log "$WORK/access.log"); else RM_ARGS+=(--access-log off); fi
fi
log "regmeter ${RM_ARGS[*]}"
"$REGMETER" "${RM_ARGS[@]}" >"$WORK/regmeter.log" 2>&1 &
RM_PID=$!
PIDS+=("$RM_PID")
wait_http "http://127.0.0.1:$P_RM/v2/" || die "regmeter did not start: $(cat "$WORK/regmeter.log")"

# ------------------------------------------------- small-request backend
log "static backend (nginx answering /v2/) on :$P_STATIC"
write_static_backend_conf "$WORK/static" "127.0.0.1:$P_STATIC"
nginx -p "$WORK/static" -c "$WORK/static/nginx.conf" -g 'daemon off;' 2>"$WORK/static/logs/stderr.log" &
STATIC_PID=$!
PIDS+=("$STATIC_PID")
wait_http "http://127.0.0.1:$P_STATIC/v2/" || die "static backend did not start: $(cat "$WORK/static/logs/"*.log)"
log "nginx on :$P_NGINX_S in front of it"
write_nginx_conf "$WORK/nginx-small" "$P_STATIC" "127.0.0.1:$P_NGINX_S" "" "$NGINX_ACCESS_LOG"
nginx -p "$WORK/nginx-small" -c "$WORK/nginx-small/nginx.conf" -g 'daemon off;' 2>"$WORK/nginx-small/logs/stderr.log" &
NGINX_S_PID=$!
PIDS+=("$NGINX_S_PID")
wait_http "http://127.0.0.1:$P_NGINX_S/v2/" || die "nginx (small) did not start: $(cat "$WORK/nginx-small/logs/"*.log)"
RM_S_ARGS=("${RM_ARGS[@]}")
for i in "${!RM_S_ARGS[@]}"; do
    case ${RM_S_ARGS[i]} in
        "127.0.0.1:$P_RM") RM_S_ARGS[i]="127.0.0.1:$P_RM_S" ;;
        "http://127.0.0.1:$P_BACK") RM_S_ARGS[i]="http://127.0.0.1:$P_STATIC" ;;
        "127.0.0.1:$P_METRICS") RM_S_ARGS[i]="127.0.0.1:$P_METRICS_S" ;;
        "$WORK/access.log") RM_S_ARGS[i]="$WORK/access-small.log" ;;
    esac
done
log "regmeter on :$P_RM_S in front of it"
"$REGMETER" "${RM_S_ARGS[@]}" >"$WORK/regmeter-small.log" 2>&1 &
RM_S_PID=$!
PIDS+=("$RM_S_PID")
wait_http "http://127.0.0.1:$P_RM_S/v2/" || die "regmeter (small) did not start: $(cat "$WORK/regmeter-small.log")"

# port_of TARGET [small]: where TARGET listens; "small" picks the pair in
# front of the static backend (direct: the static backend itself).
port_of() {
    case $1:${2:-} in
        direct:) echo "$P_BACK" ;;
        nginx:) echo "$P_NGINX" ;;
        regmeter:) echo "$P_RM" ;;
        direct:small) echo "$P_STATIC" ;;
        nginx:small) echo "$P_NGINX_S" ;;
        regmeter:small) echo "$P_RM_S" ;;
    esac
}
nginx_workers() { ps -o pid= --ppid "$1" | tr -d ' '; }
# The processes that do the proxying (nginx: the workers, not the master).
proxy_pids() {
    case $1:${2:-} in
        nginx:) nginx_workers "$NGINX_PID" ;;
        regmeter:) echo "$RM_PID" ;;
        nginx:small) nginx_workers "$NGINX_S_PID" ;;
        regmeter:small) echo "$RM_S_PID" ;;
    esac
}
cpu_ticks() { # PID... -> utime+stime summed, in clock ticks
    local sum=0 pid t
    for pid in "$@"; do
        t=$(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$pid/stat" 2>/dev/null || echo 0)
        sum=$((sum + t))
    done
    echo "$sum"
}
hwm_reset() { local pid; for pid in "$@"; do echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true; done; }
hwm_kib() { # PID... -> VmHWM summed, KiB
    local sum=0 pid v
    for pid in "$@"; do
        v=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}
rss_kib() {
    local sum=0 pid v
    for pid in "$@"; do
        v=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}
# CPU used on this machine by anything but this benchmark (other sessions'
# builds and tests share the cores): busy ticks from /proc/stat minus the
# ticks of our services and of our reaped children (clients, wrk).
machine_ticks() { # -> "busy steal"
    awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9, $9}' /proc/stat
}
our_ticks() {
    local services children
    services=$(cpu_ticks "${PIDS[@]}" $(proxy_pids nginx) $(proxy_pids nginx small) $(nginx_workers "$STATIC_PID"))
    children=$(awk '{sub(/^.*\) /, ""); print $14 + $15}' /proc/$$/stat)
    echo $((services + children))
}

# foreign_pct_over SECONDS: % of all cores used by other processes meanwhile.
foreign_pct_over() {
    local busy0 steal0 ours0 busy1 steal1 ours1
    read -r busy0 steal0 < <(machine_ticks)
    ours0=$(our_ticks)
    sleep "$1"
    read -r busy1 steal1 < <(machine_ticks)
    ours1=$(our_ticks)
    awk -v b="$((busy1 - busy0))" -v s="$((steal1 - steal0))" -v o="$((ours1 - ours0))" -v t="$1" \
        -v hz="$CLK_TCK" -v n="$(nproc)" 'BEGIN {f = (b - s - o) / (t * hz * n) * 100; printf "%.0f", (f < 0) ? 0 : f}'
}

# wait_quiet MAX_SECONDS THRESHOLD_PCT: waits (bounded) until other processes
# use less than THRESHOLD_PCT of the cores over half a second. Returns 1 if
# the machine never got that quiet.
wait_quiet() {
    local deadline=$((SECONDS + $1)) pct
    while :; do
        pct=$(foreign_pct_over 0.5)
        ((pct < $2)) && return 0
        ((SECONDS >= deadline)) && return 1
    done
}
