# shellcheck shell=bash
# Shared by tests/bench/run.sh, profile.sh, soak.sh and latency_variants.sh:
# builds the helpers and regmeter, and starts on free 127.0.0.1 ports two
# backends, each with a tuned nginx, a tuned HAProxy and a regmeter in front
# of it:
#   - the blob backend (benchd: sendfile downloads, MSG_TRUNC upload sink),
#     for the streaming rows;
#   - the small-request backend, a static nginx answering GET /v2/ itself
#     (what the performance issue asks for: "a fast static upstream"), for
#     the requests/s, latency and storm rows; it also serves TLS, for which
#     start_tls_upstream_fronts starts a third set of fronts, and
#     start_capped_regmeter a regmeter with --upstream-max-connections.
# Everything stops on exit (trap). It reads BENCH_REGMETER, BENCH_REV,
# BENCH_KEEP, BENCH_ACCESS_LOG, BENCH_HAPROXY_SPLICE and
# BENCH_HAPROXY_GLIBC_TUNABLES (see run.sh) and
# leaves:
#   WORK (temp dir with benchc, benchd, logs), CA, the P_* ports below,
#   NGINX_PID HAPROXY_PID RM_PID (blob pair), NGINX_S_PID HAPROXY_S_PID
#   RM_S_PID (small pair), STATIC_PID, port_of TARGET [PAIR], proxy_pids
#   TARGET [PAIR], upstream_port_of TARGET PAIR, nginx_workers MASTER_PID,
#   all_nginx_workers, backend_accepts, upstream_conn_sampler, cpu_ticks
#   PIDS..., hwm_reset/hwm_kib/rss_kib PIDS..., machine_ticks, our_ticks,
#   log, die.
set -euo pipefail

SOURCE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_DIR=$SOURCE_ROOT/tests/bench
THREADS=2
TARGETS=(direct nginx haproxy regmeter)
CLK_TCK=$(getconf CLK_TCK)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/regmeter-bench.XXXXXX")
PIDS=()
declare -A PID_NAMES  # pid -> what it is, for messages

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

for tool in cc nginx haproxy wrk curl python3 openssl ss; do
    command -v "$tool" >/dev/null ||
        die "$tool is missing (apt-get install build-essential nginx haproxy wrk curl python3 openssl iproute2)"
done
. "$BENCH_DIR/nginx_conf.sh"
. "$BENCH_DIR/haproxy_conf.sh"
. "$BENCH_DIR/pki.sh"
# The storm rows open 4000 client connections (and each front as many
# upstream): every process started here inherits the hard limit.
ulimit -n "$(ulimit -Hn)"

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
free_ports() { # N -> N free 127.0.0.1 ports, space-separated
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}
# Fronts: blob pair (P_NGINX ...), small-request pair (..._S), the same with a
# TLS upstream (..._T), and the capped regmeter (..._C). The static backend
# listens on one port per front (P_SB_*, TLS: P_SBT_*), so that `ss` counts
# one front's upstream connections; direct clients use P_STATIC.
read -r P_BACK P_NGINX P_HAPROXY P_RM P_METRICS \
    P_NGINX_S P_HAPROXY_S P_RM_S P_METRICS_S \
    P_NGINX_T P_HAPROXY_T P_RM_T P_METRICS_T P_RM_C P_METRICS_C \
    P_STATIC P_SB_NGINX P_SB_HAPROXY P_SB_RM P_SB_CAP \
    P_SBT_NGINX P_SBT_HAPROXY P_SBT_RM P_STATUS < <(free_ports 24)

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
PID_NAMES[$!]="blob backend (benchd)"
wait_http "http://127.0.0.1:$P_BACK/v2/" || die "backend did not start"

make_bench_pki "$WORK/pki" || die "making the bench certificates: $(cat "$WORK/pki/pki.log")"
CA=$WORK/pki/ca.crt

# Access logs: all off by default (nginx as tuned has access_log off, so
# regmeter runs with --access-log off and HAProxy without a log line);
# BENCH_ACCESS_LOG=1 turns all on, each writing one line per request to a
# file in $WORK (HAProxy: its stdout, redirected).
ACCESS_LOG=${BENCH_ACCESS_LOG:-0}
if [[ $ACCESS_LOG == 1 ]]; then
    NGINX_ACCESS_LOG="log_format bench '\$time_iso8601 \$remote_addr \"\$request\" \$status \$request_length \$bytes_sent \$request_time \$upstream_header_time \"\$http_user_agent\"'; access_log $WORK/nginx/logs/access.log bench;"
else
    NGINX_ACCESS_LOG="access_log off;"
fi
# Older revisions have no access log (and no flag for it).
RM_HAS_ACCESS_LOG=0
"$REGMETER" --help 2>/dev/null | grep -q -- '--access-log' && RM_HAS_ACCESS_LOG=1
HAPROXY_ACCESS_LOG=""
[[ $ACCESS_LOG == 1 ]] && HAPROXY_ACCESS_LOG=log

NGINX_MASTERS=()
# start_nginx NAME DIR URL: runs DIR/nginx.conf; its master's pid in LAST_PID.
start_nginx() {
    nginx -p "$2" -c "$2/nginx.conf" -g 'daemon off;' 2>"$2/logs/stderr.log" &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
    PID_NAMES[$LAST_PID]=$1
    NGINX_MASTERS+=("$LAST_PID")
    wait_http "$3" || die "$1 did not start: $(cat "$2/logs/"*.log)"
}
# start_haproxy NAME DIR URL: runs DIR/haproxy.cfg in the foreground (one
# process, one thread per core); its pid in LAST_PID.
start_haproxy() {
    GLIBC_TUNABLES=$(haproxy_glibc_tunables) haproxy -db -f "$2/haproxy.cfg" >"$2/stdout.log" 2>"$2/stderr.log" &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
    PID_NAMES[$LAST_PID]=$1
    wait_http "$3" || die "$1 did not start: $(cat "$2/stderr.log")"
}
# start_regmeter NAME LISTEN_PORT METRICS_PORT UPSTREAM_URL [ARGS...]: the
# bench's regmeter (--threads $THREADS, access log as above); pid in LAST_PID,
# log in $WORK/NAME.log.
start_regmeter() {
    local name=$1 port=$2 metrics=$3 upstream=$4 args
    shift 4
    args=(--listen "127.0.0.1:$port" --upstream "$upstream" --metrics-listen "127.0.0.1:$metrics"
        --threads "$THREADS" --shutdown-grace 2)
    if [[ $RM_HAS_ACCESS_LOG == 1 ]]; then
        if [[ $ACCESS_LOG == 1 ]]; then args+=(--access-log "$WORK/access-$name.log"); else args+=(--access-log off); fi
    fi
    args+=("$@")
    log "$name: regmeter ${args[*]}"
    "$REGMETER" "${args[@]}" >"$WORK/$name.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
    PID_NAMES[$LAST_PID]=$name
    wait_http "http://127.0.0.1:$port/v2/" || die "$name did not start: $(cat "$WORK/$name.log")"
}
log "nginx on :$P_NGINX, haproxy on :$P_HAPROXY, regmeter on :$P_RM (metrics :$P_METRICS), all before :$P_BACK"
write_nginx_conf "$WORK/nginx" "$P_BACK" "127.0.0.1:$P_NGINX" "" "$NGINX_ACCESS_LOG"
start_nginx nginx "$WORK/nginx" "http://127.0.0.1:$P_NGINX/v2/"
NGINX_PID=$LAST_PID
write_haproxy_conf "$WORK/haproxy" "127.0.0.1:$P_HAPROXY" "$P_BACK" "" "" "$HAPROXY_ACCESS_LOG"
start_haproxy haproxy "$WORK/haproxy" "http://127.0.0.1:$P_HAPROXY/v2/"
HAPROXY_PID=$LAST_PID
start_regmeter regmeter "$P_RM" "$P_METRICS" "http://127.0.0.1:$P_BACK"
RM_PID=$LAST_PID

# ------------------------------------------------- small-request backend
log "static backend (nginx answering /v2/) on :$P_STATIC, stub_status :$P_STATUS"
write_static_backend_conf "$WORK/static" \
    "127.0.0.1:$P_STATIC 127.0.0.1:$P_SB_NGINX 127.0.0.1:$P_SB_HAPROXY 127.0.0.1:$P_SB_RM 127.0.0.1:$P_SB_CAP" \
    "127.0.0.1:$P_SBT_NGINX 127.0.0.1:$P_SBT_HAPROXY 127.0.0.1:$P_SBT_RM" \
    "127.0.0.1:$P_STATUS" "$WORK/pki/leaf.crt" "$WORK/pki/leaf.key"
start_nginx "static backend" "$WORK/static" "http://127.0.0.1:$P_STATIC/v2/"
STATIC_PID=$LAST_PID
log "nginx on :$P_NGINX_S, haproxy on :$P_HAPROXY_S, regmeter on :$P_RM_S in front of it"
write_nginx_conf "$WORK/nginx-small" "$P_SB_NGINX" "127.0.0.1:$P_NGINX_S" "" "$NGINX_ACCESS_LOG"
start_nginx "nginx (small)" "$WORK/nginx-small" "http://127.0.0.1:$P_NGINX_S/v2/"
NGINX_S_PID=$LAST_PID
write_haproxy_conf "$WORK/haproxy-small" "127.0.0.1:$P_HAPROXY_S" "$P_SB_HAPROXY" "" "" "$HAPROXY_ACCESS_LOG"
start_haproxy "haproxy (small)" "$WORK/haproxy-small" "http://127.0.0.1:$P_HAPROXY_S/v2/"
HAPROXY_S_PID=$LAST_PID
start_regmeter regmeter-small "$P_RM_S" "$P_METRICS_S" "http://127.0.0.1:$P_SB_RM"
RM_S_PID=$LAST_PID

# The same three fronts talking TLS to the static backend (verifying its
# certificate, reusing sessions): the storm rows with a TLS upstream. Started
# by the scripts that need them.
start_tls_upstream_fronts() {
    log "nginx on :$P_NGINX_T, haproxy on :$P_HAPROXY_T, regmeter on :$P_RM_T in front of its TLS port"
    write_nginx_conf "$WORK/nginx-tls" "$P_SBT_NGINX" "127.0.0.1:$P_NGINX_T" "" "$NGINX_ACCESS_LOG" "$CA"
    start_nginx "nginx (TLS upstream)" "$WORK/nginx-tls" "http://127.0.0.1:$P_NGINX_T/v2/"
    NGINX_T_PID=$LAST_PID
    write_haproxy_conf "$WORK/haproxy-tls" "127.0.0.1:$P_HAPROXY_T" "$P_SBT_HAPROXY" "" \
        "ssl verify required ca-file $CA verifyhost localhost sni str(localhost)" "$HAPROXY_ACCESS_LOG"
    start_haproxy "haproxy (TLS upstream)" "$WORK/haproxy-tls" "http://127.0.0.1:$P_HAPROXY_T/v2/"
    HAPROXY_T_PID=$LAST_PID
    start_regmeter regmeter-tls "$P_RM_T" "$P_METRICS_T" "https://127.0.0.1:$P_SBT_RM" --upstream-ca "$CA"
    RM_T_PID=$LAST_PID
}
# regmeter with its upstream connections capped at CAP_LIMIT, in front of the
# static backend, if this build has the flag. CAP_STATE: not-started, then
# built (RM_C_PID set) or missing (the flag is not in regmeter --help).
CAP_LIMIT=64
CAP_STATE=not-started
start_capped_regmeter() {
    if ! "$REGMETER" --help 2>/dev/null | grep -q -- '--upstream-max-connections'; then
        log "regmeter --help lists no --upstream-max-connections: its storm rows say \"not built yet\""
        CAP_STATE=missing
        return 0
    fi
    start_regmeter regmeter-cap "$P_RM_C" "$P_METRICS_C" "http://127.0.0.1:$P_SB_CAP" \
        --upstream-max-connections "$CAP_LIMIT"
    RM_C_PID=$LAST_PID
    CAP_STATE=built
}

# port_of TARGET [PAIR]: where TARGET listens. PAIR: "" the blob pair; small:
# the fronts of the static backend (direct: the static backend itself); tls:
# the fronts of its TLS ports; cap: the capped regmeter.
port_of() {
    case $1:${2:-} in
        direct:) echo "$P_BACK" ;;
        nginx:) echo "$P_NGINX" ;;
        haproxy:) echo "$P_HAPROXY" ;;
        regmeter:) echo "$P_RM" ;;
        direct:small) echo "$P_STATIC" ;;
        nginx:small) echo "$P_NGINX_S" ;;
        haproxy:small) echo "$P_HAPROXY_S" ;;
        regmeter:small) echo "$P_RM_S" ;;
        nginx:tls) echo "$P_NGINX_T" ;;
        haproxy:tls) echo "$P_HAPROXY_T" ;;
        regmeter:tls) echo "$P_RM_T" ;;
        regmeter:cap) echo "$P_RM_C" ;;
    esac
}
# upstream_port_of TARGET PAIR: the static backend port this front talks to
# (nothing for direct).
upstream_port_of() {
    case $1:$2 in
        nginx:small) echo "$P_SB_NGINX" ;;
        haproxy:small) echo "$P_SB_HAPROXY" ;;
        regmeter:small) echo "$P_SB_RM" ;;
        nginx:tls) echo "$P_SBT_NGINX" ;;
        haproxy:tls) echo "$P_SBT_HAPROXY" ;;
        regmeter:tls) echo "$P_SBT_RM" ;;
        regmeter:cap) echo "$P_SB_CAP" ;;
    esac
}
nginx_workers() { ps -o pid= --ppid "$1" | tr -d ' '; }
# alive PID: running (a child that exited stays a zombie until reaped, and
# kill -0 would still succeed).
alive() {
    local state
    state=$(awk '{sub(/^.*\) /, ""); print $1}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z ]]
}
# check_services: dies naming the first service that is no longer running.
check_services() {
    local pid
    for pid in "${PIDS[@]}"; do
        alive "$pid" || die "${PID_NAMES[$pid]:-process $pid} died during the benchmark (logs: $WORK)"
    done
}
# The processes that do the proxying (nginx: the workers, not the master;
# HAProxy: its one process, whose /proc stat sums all its threads).
proxy_pids() {
    case $1:${2:-} in
        nginx:) nginx_workers "$NGINX_PID" ;;
        haproxy:) echo "$HAPROXY_PID" ;;
        regmeter:) echo "$RM_PID" ;;
        nginx:small) nginx_workers "$NGINX_S_PID" ;;
        haproxy:small) echo "$HAPROXY_S_PID" ;;
        regmeter:small) echo "$RM_S_PID" ;;
        nginx:tls) nginx_workers "$NGINX_T_PID" ;;
        haproxy:tls) echo "$HAPROXY_T_PID" ;;
        regmeter:tls) echo "$RM_T_PID" ;;
        regmeter:cap) echo "${RM_C_PID:-}" ;;
    esac
}
# Every nginx worker (of every nginx started here).
all_nginx_workers() { ps -o pid= --ppid "$(IFS=,; echo "${NGINX_MASTERS[*]}")" | tr -d ' '; }

# The static backend's stub_status: connections it has accepted so far
# (each query is one of them).
backend_accepts() {
    curl -s --max-time 2 "http://127.0.0.1:$P_STATUS/nginx_status" | awk 'NR == 3 {print $1}'
}
# upstream_conn_sampler PORT FILE: until killed (bounded at 10 minutes),
# writes the number of established connections to PORT every 100 ms, one a
# line (run in the background). Each sample is the median of five
# back-to-back dumps: one `ss` dump is not atomic, and while connections
# close and open it can count a closed one and its replacement both, or
# neither (tests/bench/ss_skew.py: 64 connections, never more open,
# reopened 14 000 times a second, 5-7 times the churn of the capped storm
# rows, read as up to 70-145 by single dumps and 64-68 by the median of
# five; single dumps read 68-70 in capped quick rows that hold 64, the
# median 64 in 8 of 8). A real excess lasting longer than three dumps
# (about 6 ms) is still seen.
upstream_conn_sampler() {
    local _ i
    for _ in $(seq 6000); do
        for i in 1 2 3 4 5; do ss -Htn state established "( dport = :$1 )" | wc -l; done | sort -n | sed -n 3p >>"$2"
        sleep 0.1
    done
}
cpu_ticks() { # PID... -> utime+stime summed, in clock ticks (one awk for all: samples stay cheap)
    local pid files=()
    for pid in "$@"; do [[ -r /proc/$pid/stat ]] && files+=("/proc/$pid/stat"); done
    if ((${#files[@]} == 0)); then echo 0; return; fi
    awk '{sub(/^.*\) /, ""); sum += $12 + $13} END {print sum + 0}' "${files[@]}" 2>/dev/null || echo 0
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
    services=$(cpu_ticks "${PIDS[@]}" $(all_nginx_workers))
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
