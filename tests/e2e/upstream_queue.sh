#!/usr/bin/env bash
# --upstream-max-connections: the cap on connections to the registry, its
# FIFO queue and the queue timeout. Asserts counts and states, not speed:
#
#  * cap 4, 50 concurrent keep-alive clients (wrk) against the real
#    docker-registry: every request succeeds, the registry never has more
#    than 4 established connections from us (ss, sampled during the load),
#    regmeter_upstream_queue_seconds counts every request and some waits;
#  * after the load, with --upstream-idle-timeout 2, the pool
#    (regmeter_upstream_connections) and the fd count come back down;
#  * cap 2 and --upstream-queue-timeout 1 in front of an upstream that
#    stalls (tests/tools/misbehaving_upstream.py /stall): with both slots
#    held, queued requests get 503 TOOMANYREQUESTS (registry-style JSON) with
#    Retry-After, are counted as waits of >= 1 s; once the stalled requests
#    time out (--upstream-timeout) their slots serve the next request.
. "$(dirname "$0")/lib.sh"
require_proxy
command -v wrk >/dev/null || fail "wrk is not installed (tests/run.sh installs it)"
command -v ss >/dev/null || fail "ss is not installed (iproute2)"

# Connections to the registry open at our end (connecting or established;
# remote port = the registry's), sampled every 50 ms into FILE until STOPFILE
# exists. Counted at our end: ss walks the socket table while it changes, so
# a dump of the registry's end can list a socket that closed during the walk
# beside the one that replaced it; ours is what the cap governs, and the
# registry cannot see a connection we have not opened.
sample_registry_connections() { # PORT FILE STOPFILE
    local port=$1 out=$2 stop=$3
    while [[ ! -e $stop ]]; do
        ss -Htn state established state syn-sent "( dport = :$port )" 2>/dev/null | wc -l >>"$out"
        sleep 0.05
    done
}

# ---------------------------------------------------------------- cap 4, 50 clients, real registry
start_registry
start_regmeter --threads 2 --upstream-max-connections 4 --upstream-idle-timeout 2 --access-log off
BASE_FDS=$(fd_count "$RM_PID")
log "baseline: $BASE_FDS fds, no upstream connection yet"

SAMPLES=$E2E_TMP/registry-connections
STOP=$E2E_TMP/stop-sampling
: >"$SAMPLES"
sample_registry_connections "$REGISTRY_PORT" "$SAMPLES" "$STOP" &
SAMPLER_PID=$!
register_pid "$SAMPLER_PID"
WRK_OUT=$E2E_TMP/wrk.out
log "wrk -t2 -c50 -d4s GET /v2/ through a cap of 4"
wrk -t2 -c50 -d4s --timeout 10s "$PROXY_URL/v2/" >"$WRK_OUT" 2>&1 || { cat "$WRK_OUT" >&2; fail "wrk failed"; }
touch "$STOP"
wait "$SAMPLER_PID" 2>/dev/null || true
cat "$WRK_OUT" >&2
requests=$(awk '/requests in/ { print $1 }' "$WRK_OUT")
[[ -n $requests && $requests -gt 200 ]] || fail "wrk completed only [$requests] requests"
grep -q 'Socket errors' "$WRK_OUT" && fail "socket errors through the cap: $(grep 'Socket errors' "$WRK_OUT")"
grep -q 'Non-2xx' "$WRK_OUT" && fail "non-2xx answers through the cap: $(grep 'Non-2xx' "$WRK_OUT")"
counted=$(metric registry_http_requests_total code=200 handler=base method=get)
((counted >= requests)) || fail "the proxy counted $counted GET /v2/ 200s, wrk made $requests"

samples=$(wc -l <"$SAMPLES")
peak=$(sort -n "$SAMPLES" | tail -1)
((samples >= 20)) || fail "only $samples ss samples during the load"
((peak >= 1)) || fail "ss never saw a connection to the registry: the sampling is broken"
assert_le 4 "$peak" "registry connections at the peak of the load (cap 4, $samples samples)"
figure "upstream_queue_peak_registry_connections=$peak"

queued=$(metric regmeter_upstream_queue_seconds_count)
not_waiting=$(metric regmeter_upstream_queue_seconds_bucket le=0.0001)
((queued >= requests)) || fail "regmeter_upstream_queue_seconds counted $queued requests, wrk made $requests"
waited=$((queued - not_waiting))
((waited > 0)) || fail "50 clients through 4 connections, yet no request waited (count $queued, <=0.1 ms $not_waiting)"
log "load: $requests requests, all 200; registry peak $peak connections; $waited of $queued requests waited"
figure "upstream_queue_waited=$waited"
figure "upstream_queue_new_connections=$(metric regmeter_upstream_connect_seconds_count)"

# ---------------------------------------------------------------- after the load: back down
wait_metric 15 0 regmeter_upstream_connections state=idle
wait_metric 5 0 regmeter_upstream_connections state=active
wait_metric 5 0 regmeter_upstream_queue_depth
deadline=$((SECONDS + 10))
until (($(fd_count "$RM_PID") <= BASE_FDS)); do
    ((SECONDS < deadline)) || fail "10 s after the pool emptied regmeter holds $(fd_count "$RM_PID") fds, baseline $BASE_FDS"
    sleep 0.2
done
left=$(ss -Htn state established "( dport = :$REGISTRY_PORT )" | wc -l)
assert_eq 0 "$left" "registry connections from us once idle"
log "after the load: pool empty, $(fd_count "$RM_PID") fds (baseline $BASE_FDS)"

# ---------------------------------------------------------------- cap 2, queue timeout 1 s, a stalling upstream
UP_LOG=$E2E_TMP/upstream.log
register_log "$UP_LOG"
python3 "$TOOLS/misbehaving_upstream.py" "$E2E_TMP/up.port" --log "$UP_LOG" &
register_pid $!
wait_until 10 "stalling upstream" test -s "$E2E_TMP/up.port"
UP_PORT=$(cat "$E2E_TMP/up.port")
RM_UPSTREAM=http://127.0.0.1:$UP_PORT start_regmeter --threads 2 --upstream-max-connections 2 \
    --upstream-queue-timeout 1 --upstream-timeout 4 --access-log off

STALLED=()
for i in 1 2; do
    curl -s --max-time 60 -o /dev/null "$PROXY_URL/v2/stall/manifests/held$i" &
    STALLED+=($!)
    register_pid "${STALLED[-1]}"
done
wait_until 10 "both slots held by stalled requests" \
    bash -c "(( \$(grep -c 'request GET /v2/stall' '$UP_LOG') >= 2 ))"

QUEUED=5
PIDS=()
for i in $(seq "$QUEUED"); do
    curl -s --max-time 20 -D "$E2E_TMP/queued$i.head" -o "$E2E_TMP/queued$i.body" "$PROXY_URL/v2/" &
    register_pid $!
    PIDS+=($!)
done
for pid in "${PIDS[@]}"; do wait "$pid" || fail "a queued request's curl failed (exit $?)"; done
for i in $(seq "$QUEUED"); do
    assert_eq 503 "$(final_status "$E2E_TMP/queued$i.head")" "queued request $i past the queue timeout"
    assert_eq 1 "$(header "$E2E_TMP/queued$i.head" Retry-After)" "queued request $i: Retry-After"
    code=$(python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["errors"][0]; print(e["code"] if e.get("message") else "no message")' \
        "$E2E_TMP/queued$i.body") || fail "queued request $i: body is not registry-style JSON: $(cat "$E2E_TMP/queued$i.body")"
    assert_eq TOOMANYREQUESTS "$code" "queued request $i: error code"
done
# Counted as waits of at least the timeout (the buckets around 1 s: 0.5, 1, 2.5).
long_waits=$(($(metric regmeter_upstream_queue_seconds_count) - $(metric regmeter_upstream_queue_seconds_bucket le=0.5)))
assert_eq "$QUEUED" "$long_waits" "requests counted as waiting more than 0.5 s"
assert_eq "$QUEUED" "$(metric registry_http_requests_total code=503 handler=base)" "503s counted"
grep -q 'upstream-queue-timeout' "$RM_LOG" || fail "the queue timeout is not in regmeter's log"

# The stalled requests end with 504 at --upstream-timeout (4 s): their slots
# come back and the next request is served.
for pid in "${STALLED[@]}"; do wait "$pid" || true; done
assert_eq 2 "$(metric registry_http_requests_total code=504 handler=manifest)" "stalled requests timed out"
wait_until 10 "GET /v2/ served once the slots are free" http_is 200 "$PROXY_URL/v2/"
wait_metric 5 0 regmeter_upstream_queue_depth
is_running "$RM_PID" || fail "regmeter died"
log "PASS"
