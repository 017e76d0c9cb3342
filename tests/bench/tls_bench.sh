#!/usr/bin/env bash
# TLS termination throughput: regmeter (--tls-cert) next to nginx
# (ssl_certificate) and HAProxy (bind ... ssl crt), all with the same
# certificate and key, all in front of the same fast plain-HTTP backend
# (tests/bench/benchd.c). A single 1 GiB download (and upload) per sample,
# client curl with --cacert; targets alternate, the order rotating each
# round. Prints, per peer, the median and the run-to-run range (min-max over
# the rounds) of throughput and of the proxy's CPU per GiB, and regmeter's
# ratios to nginx and to HAProxy.
#
#   tests/bench/tls_bench.sh                  # 5 rounds, 1 GiB
#   BENCH_RUNS=3 tests/bench/tls_bench.sh     # 3 rounds (BENCH_RUNS=7: 7)
#   BENCH_QUICK=1 tests/bench/tls_bench.sh    # smoke: 1 round, 64 MiB
#
# Environment:
#   BENCH_RUNS=N        rounds (default 5; quick: 1)
#   BENCH_BYTES=N       bytes per transfer (default 1 GiB; quick: 64 MiB)
#   BENCH_REGMETER=BIN  use this binary (default: build build-bench/ in release)
#   BENCH_REV=REV       build regmeter from a committed revision instead (git
#                       archive into build-bench-rev/SHA/, the cache run.sh uses)
#   BENCH_UPLOAD=0      skip the upload rows
#   BENCH_KEEP=1        keep the work dir (logs, samples)
#   BENCH_HAPROXY_GLIBC_TUNABLES  as in run.sh (see haproxy_conf.sh)
#
# Every row also reports the CPU seconds the proxy (nginx: its workers;
# HAProxy: its one process, all threads) and
# the client spent per GiB, so a client-bound row shows as such, and the CPU
# other jobs on the machine took meanwhile ("foreign"), so a noisy sample does. Everything
# listens on 127.0.0.1; every process started here is stopped on exit; every
# wait is bounded.
set -euo pipefail

SOURCE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_DIR=$SOURCE_ROOT/tests/bench
QUICK=${BENCH_QUICK:-0}
if [[ $QUICK == 1 ]]; then
    RUNS=${BENCH_RUNS:-1}
    BYTES=${BENCH_BYTES:-$((64 << 20))}
else
    RUNS=${BENCH_RUNS:-5}
    BYTES=${BENCH_BYTES:-$((1 << 30))}
fi
UPLOAD=${BENCH_UPLOAD:-1}
THREADS=2
TARGETS=(nginx haproxy regmeter)
CLK_TCK=$(getconf CLK_TCK)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/regmeter-tls-bench.XXXXXX")
SAMPLES=$WORK/samples.tsv
: >"$SAMPLES"
PIDS=()

log() { printf '[tls-bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

cleanup() {
    local rc=$? pid i
    trap - EXIT INT TERM
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill -TERM "${PIDS[i]}" 2>/dev/null || true
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

for tool in cc nginx haproxy curl openssl python3; do
    command -v "$tool" >/dev/null || die "$tool is missing"
done
[[ -f $BENCH_DIR/benchd.c ]] || die "no $BENCH_DIR/benchd.c (the backend of tests/bench/run.sh)"
. "$BENCH_DIR/nginx_conf.sh"
. "$BENCH_DIR/haproxy_conf.sh"
. "$BENCH_DIR/pki.sh"

# ---------------------------------------------------------------- build
cc -O2 -Wall -pthread -o "$WORK/benchd" "$BENCH_DIR/benchd.c"
if [[ -n ${BENCH_REGMETER:-} ]]; then
    REGMETER=$BENCH_REGMETER
    REGMETER_FROM="given binary $REGMETER"
elif [[ -n ${BENCH_REV:-} ]]; then
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
    REGMETER_FROM="commit ${SHA:0:12} (clean export)"
else
    BUILD=$SOURCE_ROOT/build-bench
    REGMETER_FROM="work tree $(git -C "$SOURCE_ROOT" describe --always --dirty 2>/dev/null || echo '?'), build-bench/"
    if [[ ! -f $BUILD/build.ninja ]]; then
        meson setup "$BUILD" "$SOURCE_ROOT" --buildtype=release >"$WORK/meson-setup.log" 2>&1 ||
            { cat "$WORK/meson-setup.log" >&2; die "meson setup failed"; }
    fi
    meson compile -C "$BUILD" regmeter >"$WORK/meson-compile.log" 2>&1 ||
        { tail -40 "$WORK/meson-compile.log" >&2; die "building regmeter failed (try BENCH_REV=HEAD)"; }
    REGMETER=$BUILD/src/regmeter
fi
[[ -x $REGMETER ]] || die "no regmeter binary at $REGMETER"

# ---------------------------------------------------------------- certificate
PKI=$WORK/pki
make_bench_pki "$PKI" || { cat "$PKI/pki.log" >&2; die "making the certificate"; }
CA=$PKI/ca.crt

# ---------------------------------------------------------------- services
read -r P_BACK P_NGINX P_HAPROXY P_RM P_METRICS < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(5):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
)
wait_https() { # URL: up to 10 s for any answer
    local _
    for _ in $(seq 200); do
        curl -s -o /dev/null --max-time 1 --cacert "$CA" "$1" && return 0
        sleep 0.05
    done
    return 1
}

"$WORK/benchd" "$P_BACK" "$BYTES" 2>"$WORK/benchd.log" &
BACKEND_PID=$!
PIDS+=("$BACKEND_PID")
wait_https "http://127.0.0.1:$P_BACK/v2/" || die "backend did not start"

write_nginx_conf "$WORK/nginx" "$P_BACK" "127.0.0.1:$P_NGINX ssl" \
    "ssl_certificate $PKI/leaf.crt; ssl_certificate_key $PKI/leaf.key; ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:SSL:1m;"
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' 2>"$WORK/nginx/logs/stderr.log" &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
wait_https "https://127.0.0.1:$P_NGINX/v2/" || die "nginx did not start: $(cat "$WORK/nginx/logs/"*.log)"

write_haproxy_conf "$WORK/haproxy" "127.0.0.1:$P_HAPROXY" "$P_BACK" "ssl crt $PKI/leaf.pem alpn http/1.1"
GLIBC_TUNABLES=$(haproxy_glibc_tunables) haproxy -db -f "$WORK/haproxy/haproxy.cfg" \
    >"$WORK/haproxy/stdout.log" 2>"$WORK/haproxy/stderr.log" &
HAPROXY_PID=$!
PIDS+=("$HAPROXY_PID")
wait_https "https://127.0.0.1:$P_HAPROXY/v2/" || die "haproxy did not start: $(cat "$WORK/haproxy/stderr.log")"

"$REGMETER" --listen "127.0.0.1:$P_RM" --upstream "http://127.0.0.1:$P_BACK" \
    --metrics-listen "127.0.0.1:$P_METRICS" --threads "$THREADS" --shutdown-grace 2 \
    --tls-cert "$PKI/leaf.crt" --tls-key "$PKI/leaf.key" >"$WORK/regmeter.log" 2>&1 &
RM_PID=$!
PIDS+=("$RM_PID")
wait_https "https://127.0.0.1:$P_RM/v2/" || die "regmeter did not start: $(cat "$WORK/regmeter.log")"

port_of() { case $1 in nginx) echo "$P_NGINX" ;; haproxy) echo "$P_HAPROXY" ;; regmeter) echo "$P_RM" ;; esac; }
proxy_pids() {
    case $1 in
        nginx) ps -o pid= --ppid "$NGINX_PID" | tr -d ' ' ;;
        haproxy) echo "$HAPROXY_PID" ;;
        regmeter) echo "$RM_PID" ;;
    esac
}
cpu_ticks() {
    local sum=0 pid t
    for pid in "$@"; do
        t=$(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$pid/stat" 2>/dev/null || echo 0)
        sum=$((sum + t))
    done
    echo "$sum"
}
machine_busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$SAMPLES"; }

# What each side negotiates with curl (same protocol and cipher, or the
# comparison is unfair).
for target in "${TARGETS[@]}"; do
    nego=$(curl -sv -o /dev/null --cacert "$CA" "https://127.0.0.1:$(port_of "$target")/v2/" 2>&1 |
        sed -n 's/^\* SSL connection using //p' | head -1)
    log "$target negotiates: $nego"
    echo "$target=$nego" >>"$WORK/negotiated.txt"
done

UPFILE=$WORK/upload.bin
if [[ $UPLOAD == 1 ]]; then
    head -c "$BYTES" /dev/urandom >"$UPFILE"
fi

# run_one WORKLOAD TARGET: one transfer; records MB/s and CPU seconds.
run_one() {
    local workload=$1 target=$2 port pids before after back0 back1 busy0 busy1 out rc=0 code bytes speed cu cs wall
    port=$(port_of "$target")
    pids=$(proxy_pids "$target" | xargs echo)
    before=$(cpu_ticks $pids)
    back0=$(cpu_ticks "$BACKEND_PID")
    busy0=$(machine_busy)
    case $workload in
        download)
            out=$({ TIMEFORMAT='%U %S %R'; time curl -sS --max-time 300 --cacert "$CA" -o /dev/null \
                -w '%{http_code} %{size_download} %{speed_download}\n' \
                "https://127.0.0.1:$port/blob?size=$BYTES"; } 2>&1) || rc=$? ;;
        upload)
            out=$({ TIMEFORMAT='%U %S %R'; time curl -sS --max-time 300 --cacert "$CA" -o /dev/null -X PUT -H 'Expect:' \
                -T "$UPFILE" -w '%{http_code} %{size_upload} %{speed_upload}\n' \
                "https://127.0.0.1:$port/upload"; } 2>&1) || rc=$? ;;
    esac
    after=$(cpu_ticks $pids)
    back1=$(cpu_ticks "$BACKEND_PID")
    busy1=$(machine_busy)
    read -r code bytes speed <<<"$(head -1 <<<"$out")"
    read -r cu cs wall <<<"$(tail -1 <<<"$out")"
    local want=200
    [[ $workload == upload ]] && want=201
    if [[ $rc != 0 || $code != "$want" || $bytes != "$BYTES" ]]; then
        log "  $workload $target: FAILED (exit $rc): $out"
        record "$workload" "$target" error 1
        return 0
    fi
    local gib proxy_s client_s
    gib=$(awk -v b="$BYTES" 'BEGIN { print b / 1073741824 }')
    proxy_s=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v g="$gib" 'BEGIN { printf "%.3f", t / hz / g }')
    client_s=$(awk -v u="$cu" -v s="$cs" -v g="$gib" 'BEGIN { printf "%.3f", (u + s) / g }')
    record "$workload" "$target" mb_s "$(awk -v s="$speed" 'BEGIN { printf "%.1f", s / 1e6 }')"
    record "$workload" "$target" proxy_cpu_s_per_gib "$proxy_s"
    record "$workload" "$target" client_cpu_s_per_gib "$client_s"
    # CPU used during the sample by anything but the proxy, the backend and
    # the client, in percent of all cores: other jobs share this machine, and
    # a noisy sample shows here.
    record "$workload" "$target" foreign_pct "$(awk -v b=$((busy1 - busy0)) -v p=$((after - before)) \
        -v k=$((back1 - back0)) -v c="$(awk -v u="$cu" -v s="$cs" 'BEGIN { print u + s }')" -v hz="$CLK_TCK" \
        -v w="$wall" -v n="$(nproc)" 'BEGIN { if (w <= 0) w = 1; f = (b - p - k - c * hz) / hz / w / n * 100
            if (f < 0) f = 0; printf "%.0f", f }')"
    log "  $workload $target: $(awk -v s="$speed" 'BEGIN { printf "%.1f", s / 1e6 }') MB/s, proxy ${proxy_s} s/GiB, client ${client_s} s/GiB"
}

WORKLOADS=(download)
[[ $UPLOAD == 1 ]] && WORKLOADS+=(upload)
START=$(date +%s)
for workload in "${WORKLOADS[@]}"; do
    log "$workload: $RUNS round(s) of $BYTES bytes"
    for ((round = 0; round < RUNS; round++)); do
        for ((i = 0; i < ${#TARGETS[@]}; i++)); do
            run_one "$workload" "${TARGETS[(i + round) % ${#TARGETS[@]}]}"
        done
    done
done
ELAPSED=$(($(date +%s) - START))
kill -0 "$RM_PID" 2>/dev/null || die "regmeter died during the benchmark: $(tail -20 "$WORK/regmeter.log")"
kill -0 "$HAPROXY_PID" 2>/dev/null || die "haproxy died during the benchmark: $(tail -20 "$WORK/haproxy/stderr.log")"

# ---------------------------------------------------------------- table
{
    echo "# TLS termination: 1 stream, $BYTES bytes per transfer, $RUNS round(s), medians and min-max over the rounds"
    echo "# regmeter: $REGMETER_FROM, --threads $THREADS; nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), $(proxy_pids nginx | wc -l) worker(s);" \
        "HAProxy $(haproxy -v 2>&1 | awk '/version/ {print $3; exit}'), $(awk '/^Threads:/ {print $2}' "/proc/$HAPROXY_PID/status") threads," \
        "GLIBC_TUNABLES=$(haproxy_glibc_tunables)"
    echo "# $(uname -r), $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "# negotiated: $(paste -sd ' ' "$WORK/negotiated.txt")"
    echo "# client: curl --cacert -o /dev/null; backend: benchd (plain HTTP, sendfile)"
    python3 - "$SAMPLES" "${WORKLOADS[@]}" <<'EOF'
import sys, statistics
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
TARGETS = ("nginx", "haproxy", "regmeter")
def vals(w, t, m):
    return [float(r[3]) for r in rows if r[0] == w and r[1] == t and r[2] == m]
def med(w, t, m):
    v = vals(w, t, m)
    return statistics.median(v) if v else float("nan")
def lo(v):
    return min(v, default=float("nan"))
def hi(v):
    return max(v, default=float("nan"))
def ratio(a, b):
    return a / b if b else float("nan")
print(f"{'workload':<10} {'target':<9} {'MB/s med':>9} {'min':>8} {'max':>8} {'proxy cpu s/GiB':>16} {'min':>6} {'max':>6} "
      f"{'client cpu s/GiB':>17} {'foreign cpu %':>14} {'errors':>7}")
for w in sys.argv[2:]:
    for t in TARGETS:
        v, c = vals(w, t, "mb_s"), vals(w, t, "proxy_cpu_s_per_gib")
        print(f"{w:<10} {t:<9} {med(w, t, 'mb_s'):>9.1f} {lo(v):>8.1f} {hi(v):>8.1f} "
              f"{med(w, t, 'proxy_cpu_s_per_gib'):>16.3f} {lo(c):>6.3f} {hi(c):>6.3f} "
              f"{med(w, t, 'client_cpu_s_per_gib'):>17.3f} {med(w, t, 'foreign_pct'):>14.0f} {len(vals(w, t, 'error')):>7}")
    r, pr = med(w, "regmeter", "mb_s"), med(w, "regmeter", "proxy_cpu_s_per_gib")
    for peer in ("nginx", "haproxy"):
        n, pn = med(w, peer, "mb_s"), med(w, peer, "proxy_cpu_s_per_gib")
        print(f"{w:<10} ratio regmeter/{peer}: throughput {ratio(r, n):.2f}x, proxy CPU per GiB {ratio(pr, pn):.2f}x")
EOF
    echo "# elapsed ${ELAPSED}s; regmeter log lines with error/warn: $(grep -ciE 'error|warn' "$WORK/regmeter.log" || true)"
} | tee "$WORK/table.txt"
if grep -q $'\terror\t' "$SAMPLES"; then
    die "some samples failed (see above)"
fi
