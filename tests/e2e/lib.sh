# shellcheck shell=bash
# Shared helpers for regmeter's end-to-end tests. Source it first thing:
#
#   . "$(dirname "$0")/lib.sh"
#
# Environment:
#   REGMETER     the binary under test (meson sets it; default build/src/regmeter)
#   SOURCE_ROOT  repository root (derived from this file when unset)
#   E2E_DIRECT=1 debugging only: point clients at the registry instead of the
#                proxy (PROXY_URL = registry, METRICS_URL = the registry's own
#                debug metrics). Tests that need the proxy itself skip (77).
#   E2E_KEEP=1   keep the temp dir for inspection
#
# Every service a test starts is registered and killed (with its children) on
# exit, whatever the exit path; the temp dir is removed. Every wait is bounded.

set -euo pipefail

E2E_NAME=$(basename "$0" .sh)
SOURCE_ROOT=${SOURCE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
TOOLS=$SOURCE_ROOT/tests/tools
REGMETER=${REGMETER:-$SOURCE_ROOT/build/src/regmeter}
E2E_DIRECT=${E2E_DIRECT:-0}
E2E_WAIT=${E2E_WAIT:-20}
E2E_TMP=$(mktemp -d "${TMPDIR:-/tmp}/regmeter-e2e-$E2E_NAME.XXXXXX")
E2E_PIDS=()
E2E_LOGS=()
export SKOPEO_TIMEOUT=${SKOPEO_TIMEOUT:-300}

# ---------------------------------------------------------------- messages
log() { printf '[%s %s] %s\n' "$E2E_NAME" "$(date +%T)" "$*" >&2; }

# fail MESSAGE: stop the test with a clear message (call it from the top-level
# shell, not from inside $(...)).
fail() {
    printf '[%s] FAIL: %s\n' "$E2E_NAME" "$*" >&2
    exit 1
}

skip() {
    printf '[%s] SKIP: %s\n' "$E2E_NAME" "$*" >&2
    exit 77
}

# A figure worth recording (throughput, RSS); printed as key=value on stdout.
figure() { printf '%s\n' "$*"; }

# Every assert_* takes exactly its three arguments: one more (a stray `--`)
# or one fewer shifts them, and the check compares the wrong things and
# passes whatever the code does.
assert_args() { # count function-name "$@"
    local want=$1 name=$2
    shift 2
    (($# == want)) || fail "$name takes $want arguments, got $#: $(printf '[%s] ' "$@")"
}

assert_eq() { # expected actual message
    assert_args 3 assert_eq "$@"
    if [[ "$1" != "$2" ]]; then
        fail "$3: expected [$1], got [$2]"
    fi
}

assert_ne() { # unexpected actual message
    assert_args 3 assert_ne "$@"
    if [[ "$1" == "$2" ]]; then
        fail "$3: did not expect [$2]"
    fi
}

assert_match() { # regex actual message
    assert_args 3 assert_match "$@"
    if ! [[ "$2" =~ $1 ]]; then
        fail "$3: [$2] does not match /$1/"
    fi
}

assert_contains() { # needle haystack message
    assert_args 3 assert_contains "$@"
    if [[ "$2" != *"$1"* ]]; then
        fail "$3: [$1] not found in [${2:0:600}]"
    fi
}

assert_le() { # max actual message (integers)
    assert_args 3 assert_le "$@"
    if (( $2 > $1 )); then
        fail "$3: $2 > $1"
    fi
}

proxy_mode() { [[ "$E2E_DIRECT" != 1 ]]; }

require_proxy() {
    proxy_mode || skip "needs the proxy itself (E2E_DIRECT=1)"
}

# ---------------------------------------------------------------- processes
# Kill a process and all its descendants (by pid, children first).
kill_tree() { # pid [signal]
    local pid=$1 sig=${2:-TERM} child
    for child in $(ps -o pid= --ppid "$pid" 2>/dev/null); do
        kill_tree "$child" "$sig"
    done
    kill -"$sig" "$pid" 2>/dev/null || true
}

# True while pid exists and is not a zombie.
is_running() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n "$state" && "$state" != Z ]]
}

register_pid() { E2E_PIDS+=("$1"); }
register_log() { E2E_LOGS+=("$1"); }

e2e_cleanup() {
    local rc=$? pid i f
    set +e
    trap - EXIT INT TERM
    if (( rc != 0 && rc != 77 )); then
        for f in "${E2E_LOGS[@]}"; do
            [[ -s "$f" ]] || continue
            printf '\n----- %s (last 150 lines) -----\n' "$f" >&2
            tail -n 150 "$f" >&2
        done
    fi
    # Registered services, plus any other child of this shell (background
    # clients a test started), with their descendants.
    E2E_PIDS+=($(ps -o pid= --ppid $$ 2>/dev/null))
    for pid in "${E2E_PIDS[@]}"; do
        kill_tree "$pid" TERM
    done
    for ((i = 0; i < 50; i++)); do
        local alive=0
        for pid in "${E2E_PIDS[@]}"; do
            is_running "$pid" && alive=1
        done
        ((alive)) || break
        sleep 0.1
    done
    for pid in "${E2E_PIDS[@]}"; do
        is_running "$pid" && kill_tree "$pid" KILL
    done
    wait "${E2E_PIDS[@]}" 2>/dev/null
    if [[ "${E2E_KEEP:-0}" == 1 ]]; then
        log "kept $E2E_TMP"
    else
        rm -rf "$E2E_TMP"
    fi
    exit "$rc"
}
trap e2e_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- waiting
# wait_until SECONDS DESCRIPTION CMD...: poll CMD every 0.1 s; fail on timeout.
wait_until() {
    local secs=$1 what=$2
    shift 2
    local deadline=$((SECONDS + secs))
    while ! "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            fail "timed out after ${secs}s waiting for: $what"
        fi
        sleep 0.1
    done
}

# wait_match SECS DESCRIPTION REGEX cmd...: poll (every 0.5 s) until the
# command's output matches REGEX; on timeout, fail showing the last output.
wait_match() {
    local secs=$1 what=$2 want=$3 got deadline
    shift 3
    deadline=$((SECONDS + secs))
    while :; do
        got=$("$@" 2>&1) || true
        [[ "$got" =~ $want ]] && return 0
        ((SECONDS < deadline)) || fail "$what: got [$got], waited ${secs}s for /$want/"
        sleep 0.5
    done
}

# http_code URL [curl args...]: status code of a GET ("000" if no connection).
http_code() {
    local url=$1
    shift
    curl -s -o /dev/null --max-time 10 -w '%{http_code}' "$@" "$url" || true
}

http_is() { # code URL
    [[ "$(http_code "$2")" == "$1" ]]
}

# free_port: a port nothing listens on now, never one handed out before in
# this test (the list lives in a file: callers run in $(...) subshells).
free_port() {
    python3 - "$E2E_TMP/ports" <<'EOF'
import socket, sys
path = sys.argv[1]
try:
    used = set(open(path).read().split())
except OSError:
    used = set()
for _ in range(100):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = str(s.getsockname()[1])
    s.close()
    if port not in used:
        break
with open(path, "a") as f:
    f.write(port + "\n")
print(port)
EOF
}

# ---------------------------------------------------------------- services
# start_registry [PORT]: Debian's docker-registry (distribution 2.8) on
# 127.0.0.1 (or E2E_REGISTRY_IP, another loopback address), with its own
# Prometheus metrics on a debug port. With
# REGISTRY_HOST_URL set, that goes in as http.host (the registry then builds
# absolute Locations from it instead of the Host header). Sets
# REGISTRY_PORT, REGISTRY_URL, REGISTRY_PID, REGISTRY_METRICS_URL, REGISTRY_DIR.
# With E2E_REGISTRY_TLS_CERT/_KEY/_CA set it serves https (tls_lib.sh).
start_registry() {
    REGISTRY_PORT=${1:-$(free_port)}
    local debug_port
    debug_port=$(free_port)
    local addr=${E2E_REGISTRY_IP:-127.0.0.1}  # another 127.x address: several registries on one port
    REGISTRY_DIR=$E2E_TMP/registry-$addr-$REGISTRY_PORT
    mkdir -p "$REGISTRY_DIR/data"
    local scheme=http tls_block=""
    if [[ -n ${E2E_REGISTRY_TLS_CERT:-} ]]; then
        scheme=https
        tls_block=$(printf '  tls:\n    certificate: %s\n    key: %s' "$E2E_REGISTRY_TLS_CERT" "$E2E_REGISTRY_TLS_KEY")
    fi
    cat >"$REGISTRY_DIR/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: $REGISTRY_DIR/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $addr:$REGISTRY_PORT
${REGISTRY_HOST_URL:+  host: $REGISTRY_HOST_URL}
$tls_block
  debug:
    addr: 127.0.0.1:$debug_port
    prometheus:
      enabled: true
      path: /metrics
EOF
    docker-registry serve "$REGISTRY_DIR/config.yml" >"$REGISTRY_DIR/log" 2>&1 &
    REGISTRY_PID=$!
    register_pid "$REGISTRY_PID"
    register_log "$REGISTRY_DIR/log"
    REGISTRY_URL=$scheme://$addr:$REGISTRY_PORT
    REGISTRY_METRICS_URL=http://127.0.0.1:$debug_port/metrics
    local deadline=$((SECONDS + E2E_WAIT)) probe=("$REGISTRY_URL/v2/")
    # TLS: probed by name (pinned to the address), so a certificate without
    # the IP in its SAN passes the readiness check too.
    [[ $scheme == https ]] && probe=("https://localhost:$REGISTRY_PORT/v2/" --cacert "$E2E_REGISTRY_TLS_CA"
        --resolve "localhost:$REGISTRY_PORT:$addr")
    until [[ "$(http_code "${probe[@]}")" == 200 ]]; do
        is_running "$REGISTRY_PID" || fail "docker-registry exited during startup"
        ((SECONDS < deadline)) || fail "docker-registry did not answer $scheme /v2/ within ${E2E_WAIT}s"
        sleep 0.1
    done
    wait_until "$E2E_WAIT" "registry debug metrics" http_is 200 "$REGISTRY_METRICS_URL"
    log "registry pid $REGISTRY_PID on $REGISTRY_URL (metrics $REGISTRY_METRICS_URL)"
}

# start_regmeter [EXTRA ARGS...]: the proxy in front of RM_UPSTREAM (default:
# the registry started last). Sets RM_PID, RM_PORT, RM_METRICS_PORT, RM_LOG,
# PROXY_URL, PROXY_HOSTPORT, METRICS_URL, HEALTH_URL. In E2E_DIRECT=1 mode
# starts nothing and points PROXY_URL/METRICS_URL at the registry.
start_regmeter() {
    if ! proxy_mode; then
        RM_PID=""
        RM_PORT=$REGISTRY_PORT
        PROXY_URL=$REGISTRY_URL
        PROXY_HOSTPORT=127.0.0.1:$REGISTRY_PORT
        METRICS_URL=$REGISTRY_METRICS_URL
        HEALTH_URL=$REGISTRY_URL/v2/
        log "E2E_DIRECT=1: clients talk to the registry directly"
        return 0
    fi
    [[ -x "$REGMETER" ]] || fail "REGMETER=$REGMETER is not an executable"
    local upstream=${RM_UPSTREAM:-$REGISTRY_URL}
    RM_PORT=$(free_port)
    RM_METRICS_PORT=$(free_port)
    RM_LOG=$E2E_TMP/regmeter-$RM_PORT.log
    "$REGMETER" --listen "127.0.0.1:$RM_PORT" --upstream "$upstream" \
        --metrics-listen "127.0.0.1:$RM_METRICS_PORT" "$@" >"$RM_LOG" 2>&1 &
    RM_PID=$!
    register_pid "$RM_PID"
    register_log "$RM_LOG"
    PROXY_URL=http://127.0.0.1:$RM_PORT
    PROXY_HOSTPORT=127.0.0.1:$RM_PORT
    METRICS_URL=http://127.0.0.1:$RM_METRICS_PORT/metrics
    HEALTH_URL=http://127.0.0.1:$RM_METRICS_PORT/healthz
    local deadline=$((SECONDS + E2E_WAIT))
    until http_is 200 "$HEALTH_URL"; do
        is_running "$RM_PID" || fail "regmeter exited during startup"
        ((SECONDS < deadline)) || fail "regmeter /healthz did not answer 200 within ${E2E_WAIT}s"
        sleep 0.1
    done
    log "regmeter pid $RM_PID on $PROXY_URL -> $upstream (metrics $METRICS_URL)"
}

# start_prometheus DIR [FLAG...]: Debian's Prometheus (PROMETHEUS, default
# /usr/bin/prometheus) with DIR/prometheus.yml, data in DIR/data, on a free
# loopback port, extra flags as given (--enable-feature=...). Waits until
# ready (PROM_WAIT seconds, default 30). Sets PROM_URL and PROM_PID.
start_prometheus() {
    local dir=$1 deadline
    shift
    local prometheus=${PROMETHEUS:-/usr/bin/prometheus}
    [[ -x "$prometheus" ]] || fail "no Prometheus at $prometheus (apt-get install prometheus)"
    mkdir -p "$dir/data"
    local port
    port=$(free_port)
    PROM_URL=http://127.0.0.1:$port
    "$prometheus" --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
        --web.listen-address="127.0.0.1:$port" --log.level=warn "$@" >"$dir/log" 2>&1 &
    PROM_PID=$!
    register_pid "$PROM_PID"
    register_log "$dir/log"
    deadline=$((SECONDS + ${PROM_WAIT:-30}))
    until http_is 200 "$PROM_URL/-/ready"; do
        is_running "$PROM_PID" || fail "prometheus exited during startup"
        ((SECONDS < deadline)) || fail "prometheus not ready within ${PROM_WAIT:-30}s"
        sleep 0.2
    done
    log "prometheus pid $PROM_PID on $PROM_URL $*"
}

# Resident-set peak of a process, in KiB.
peak_rss_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# ---------------------------------------------------------------- metrics
# scrape [URL]: the metrics text (default METRICS_URL).
scrape() { curl -sS --max-time 10 "${1:-$METRICS_URL}"; }

# metric NAME [label=value...]: sum of matching samples from a fresh scrape of
# METRICS_URL, or "absent".
metric() { scrape | python3 "$TOOLS/promq.py" "$@"; }

# metric_of TEXT NAME [label=value...]: same, on a scrape taken earlier.
metric_of() {
    local text=$1
    shift
    printf '%s\n' "$text" | python3 "$TOOLS/promq.py" "$@"
}

# Like metric, but "absent" counts as 0 (for deltas of counters).
metric0() {
    local v
    v=$(metric "$@")
    [[ "$v" == absent ]] && v=0
    printf '%s\n' "$v"
}

metric_is() { # expected NAME [label=value...]
    local want=$1
    shift
    [[ "$(metric "$@")" == "$want" ]]
}

# wait_metric SECONDS EXPECTED NAME [label=value...]: until the value matches.
wait_metric() {
    local secs=$1 want=$2
    shift 2
    local deadline=$((SECONDS + secs)) got
    while :; do
        got=$(metric "$@")
        [[ "$got" == "$want" ]] && return 0
        ((SECONDS < deadline)) || fail "metric $* is [$got], expected [$want] (waited ${secs}s)"
        sleep 0.2
    done
}

# ---------------------------------------------------------------- HTTP helpers
# header FILE NAME: value of the last NAME header in a curl -D dump (CR stripped).
header() {
    tr -d '\r' <"$1" | awk -v n="$(printf '%s' "$2" | tr 'A-Z' 'a-z')" '
        { split($0, a, ":"); k = tolower(a[1]) }
        k == n { sub(/^[^:]*:[ \t]*/, ""); v = $0 }
        END { print v }'
}

# Status code of the final response in a curl -D dump.
final_status() {
    tr -d '\r' <"$1" | awk '/^HTTP\// { s = $2 } END { print s }'
}

# abs_url BASE LOCATION: LOCATION made absolute against BASE (scheme://host:port).
abs_url() {
    case "$2" in
        http://* | https://*) printf '%s\n' "$2" ;;
        /*) printf '%s%s\n' "$1" "$2" ;;
        *) printf '%s/%s\n' "$1" "$2" ;;
    esac
}

# add_query URL k=v: append a query parameter, keeping the existing query as is.
add_query() {
    case "$1" in
        *\?*) printf '%s&%s\n' "$1" "$2" ;;
        *) printf '%s?%s\n' "$1" "$2" ;;
    esac
}

sha256_file() { sha256sum "$1" | awk '{print $1}'; }

# start_upload BASE REPO: POST an upload session; prints the absolute Location.
start_upload() {
    local base=$1 repo=$2 hdr code loc
    hdr=$(mktemp "$E2E_TMP/post.XXXXXX")
    code=$(curl -sS --max-time 30 -X POST -D "$hdr" -o /dev/null -w '%{http_code}' \
        "$base/v2/$repo/blobs/uploads/")
    loc=$(header "$hdr" Location)
    if [[ "$code" != 202 || -z "$loc" ]]; then
        echo "POST $base/v2/$repo/blobs/uploads/ answered $code, Location [$loc]" >&2
        return 1
    fi
    abs_url "$base" "$loc"
}

# push_blob BASE REPO FILE: monolithic upload (POST + PUT ?digest= with the
# body); prints the digest. Used to seed blobs, usually straight to the registry.
push_blob() {
    local base=$1 repo=$2 file=$3 loc digest code
    digest=sha256:$(sha256_file "$file")
    loc=$(start_upload "$base" "$repo") || return 1
    code=$(curl -sS --max-time 600 -X PUT -H 'Content-Type: application/octet-stream' \
        -T "$file" -o /dev/null -w '%{http_code}' "$(add_query "$loc" "digest=$digest")")
    if [[ "$code" != 201 ]]; then
        echo "PUT of $file to $repo answered $code" >&2
        return 1
    fi
    printf '%s\n' "$digest"
}

# random_file PATH SIZE (head -c syntax: 100M, 1G, ...)
random_file() { head -c "$2" /dev/urandom >"$1"; }

# ---------------------------------------------------------------- images
# make_image DIR TAG SIZE...: a random OCI layout (see tests/tools/mkimage.py);
# the JSON summary goes to DIR.json.
make_image() {
    local dir=$1 tag=$2
    shift 2
    python3 "$TOOLS/mkimage.py" "$dir" "$tag" "$@" >"$dir.json"
}

# json_get FILE EXPR: evaluate a Python expression on the JSON document `j`.
json_get() {
    python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
v = eval(sys.argv[2])
print("\n".join(map(str, v)) if isinstance(v, (list, tuple)) else v)' "$1" "$2"
}

# raw_send OUTFILE COUNT [rawhttp options]: send stdin as raw bytes to the
# proxy, parse COUNT responses into OUTFILE (JSON, see tests/tools/rawhttp.py).
raw_send() {
    local out=$1 count=$2
    shift 2
    python3 "$TOOLS/rawhttp.py" send 127.0.0.1 "$RM_PORT" "$count" "$@" >"$out"
}

skopeo_() { timeout "$SKOPEO_TIMEOUT" skopeo --insecure-policy "$@"; }

# Milliseconds since the epoch, and a MB/s figure from bytes and ms.
now_ms() { date +%s%3N; }
mbps() { awk -v b="$1" -v ms="$2" 'BEGIN { if (ms < 1) ms = 1; printf "%.1f", b / 1e6 / (ms / 1000) }'; }
