#!/usr/bin/env bash
# Failing upstreams and a failing environment. The proxy answers what it can
# (502/504 with a distribution-style JSON error, counted in its metrics),
# never passes a cut-short body off as complete, recovers by itself, and
# leaks nothing: after every case its open-fd count and in-flight gauge are
# back to the baseline and GET /v2/ works.
#
# Upstream: tests/tools/misbehaving_upstream.py, which misbehaves by path
# ("/v2/<keyword>/manifests/x" so that the proxy counts the request under
# handler=manifest).
#
#  * nothing listens upstream → 502 UNAVAILABLE, counted code=502; the
#    upstream comes back → service resumes by itself (no restart);
#  * the upstream closes at once / resets / answers garbage → 502;
#  * the upstream stalls → 504 after --upstream-timeout 2, and the stalled
#    upstream connection is closed (the upstream logs its end);
#  * a response head trickling in for longer than --upstream-timeout → 504;
#    one that takes less → 200;
#  * the upstream dies mid-download → the client sees a truncated transfer
#    (curl exit 18), never a complete short body;
#  * the client disconnects mid-upload → the upstream connection is closed
#    too (the upstream logs "end eof" with fewer bytes than announced);
#  * SIGTERM during a long upload (real registry) → the upload completes with
#    201 within --shutdown-grace, new connections are refused, exit 0;
#  * out of file descriptors (prlimit --nofile=64) with 100 connections
#    piling up → the existing connections keep being served, "accept failed"
#    is logged at most about once a second per thread, no busy loop (CPU time
#    over 3 s stays low), and service resumes once the crowd leaves.
. "$(dirname "$0")/lib.sh"
require_proxy

# ---------------------------------------------------------------- helpers
UP_LOG=$E2E_TMP/upstream.log
register_log "$UP_LOG"
UP_PORT=$(free_port)
start_upstream() {
    rm -f "$E2E_TMP/up.port"
    python3 "$TOOLS/misbehaving_upstream.py" "$E2E_TMP/up.port" --port "$UP_PORT" --log "$UP_LOG" &
    UP_PID=$!
    register_pid "$UP_PID"
    wait_until 10 "misbehaving upstream on $UP_PORT" test -s "$E2E_TMP/up.port"
}

# get PATH [curl args]: "<code> <curl exit> <bytes> <seconds>" for a GET through the proxy.
get() {
    local path=$1 out rc=0
    shift
    out=$(curl -sS --max-time 20 -o "$E2E_TMP/body" -w '%{http_code} %{size_download} %{time_total}' "$@" \
        "$PROXY_URL$path" 2>/dev/null) || rc=$?
    read -r code bytes secs <<<"$out"
    printf '%s %s %s %s\n' "$code" "$rc" "$bytes" "$secs"
}

counted() { metric0 registry_http_requests_total "code=$1" handler=manifest method=get; }

settle() { # WHAT: bounded wait for the baseline, then GET /v2/ = 200
    local what=$1 deadline=$((SECONDS + 10)) fds inflight
    while :; do
        is_running "$RM_PID" || fail "$what: regmeter died"
        fds=$(fd_count "$RM_PID")
        inflight=$(metric registry_http_in_flight_requests)
        ((fds <= BASE_FDS)) && [[ "$inflight" == 0 ]] && break
        if ((SECONDS >= deadline)); then
            ls -l "/proc/$RM_PID/fd" >&2
            fail "$what: 10 s later regmeter holds $fds fds (baseline $BASE_FDS), $inflight in flight"
        fi
        sleep 0.1
    done
    assert_eq 200 "$(http_code "$PROXY_URL/v2/")" "$what: GET /v2/ afterwards"
}

# expect_failure WHAT PATH STATUS: the answer, its JSON, and the 5xx counter.
expect_failure() {
    local what=$1 path=$2 want=$3 before code rc bytes secs
    before=$(counted "$want")
    read -r code rc bytes secs < <(get "$path")
    log "$what: $code after ${secs}s"
    assert_eq "$want" "$code" "$what"
    assert_contains '"UNAVAILABLE"' "$(cat "$E2E_TMP/body")" "$what: JSON error body"
    wait_metric 5 $((before + 1)) registry_http_requests_total "code=$want" handler=manifest method=get
    LAST_SECS=$secs
}

# ---------------------------------------------------------------- 1. nothing listens, then it comes back
RM_UPSTREAM=http://127.0.0.1:$UP_PORT start_regmeter --upstream-timeout 2 --threads 2
code=$(curl -sS --max-time 10 -o "$E2E_TMP/body" -w '%{http_code}' "$PROXY_URL/v2/") || true
log "upstream down: GET /v2/ -> $code"
assert_eq 502 "$code" "GET /v2/ with nothing listening upstream"
assert_contains '"code":"UNAVAILABLE"' "$(cat "$E2E_TMP/body")" "502 body"
wait_metric 5 1 registry_http_requests_total code=502 handler=base method=get
before=$(counted 502)
read -r code rc bytes secs < <(get /v2/down/manifests/latest)
assert_eq 502 "$code" "manifest GET with nothing listening upstream"
wait_metric 5 $((before + 1)) registry_http_requests_total code=502 handler=manifest method=get
assert_eq 0 "$(metric registry_http_in_flight_requests)" "in flight while the upstream is down"

start_upstream
deadline=$((SECONDS + 10))
until [[ "$(http_code "$PROXY_URL/v2/")" == 200 ]]; do
    ((SECONDS < deadline)) || fail "service did not resume within 10 s of the upstream coming back"
    sleep 0.2
done
log "upstream back: GET /v2/ -> 200 without restarting the proxy"

# Baseline: every thread holds its pooled upstream connection.
for _ in $(seq 16); do
    assert_eq 200 "$(http_code "$PROXY_URL/v2/")" "warm-up"
done
sleep 0.3
BASE_FDS=$(fd_count "$RM_PID")
log "baseline: $BASE_FDS fds"

# ---------------------------------------------------------------- 2. misbehaving answers
expect_failure "upstream closes at once" /v2/refuse/manifests/latest 502
settle "refuse"
expect_failure "upstream resets" /v2/reset/manifests/latest 502
settle "reset"
expect_failure "upstream answers garbage" /v2/garbage/manifests/latest 502
settle "garbage"

ends_before=$(grep -c ' end stalled' "$UP_LOG" || true)
expect_failure "upstream stalls (--upstream-timeout 2)" /v2/stall/manifests/latest 504
awk -v s="$LAST_SECS" 'BEGIN { exit !(s >= 1.5 && s <= 5) }' || fail "504 after ${LAST_SECS}s with --upstream-timeout 2"
wait_until 5 "the stalled upstream connection to be closed by the proxy" \
    test "$(grep -c ' end stalled' "$UP_LOG")" -gt "$ends_before"
settle "stall"

expect_failure "response head trickling for 4 s (--upstream-timeout 2)" "/v2/slow-head/manifests/latest?d=4" 504
settle "slow head"
read -r code rc bytes secs < <(get "/v2/slow-head/manifests/latest?d=0.8")
assert_eq 200 "$code" "a response head trickling in over 0.8 s"
settle "slow head in time"

# ---------------------------------------------------------------- 3. upstream dies mid-download
read -r code rc bytes secs < <(get /v2/die-mid-body/blobs/sha256:00)
log "upstream died mid-body: code $code, curl exit $rc, $bytes bytes"
assert_eq 200 "$code" "status of the cut-short download"
assert_eq 18 "$rc" "curl's exit code (18 = transfer closed with data outstanding)"
((bytes > 0 && bytes < 10 * 1024 * 1024)) || fail "bytes received from a download cut short: $bytes"
settle "died mid-body"

# ---------------------------------------------------------------- 4. client disconnects mid-upload
# curl itself is the background job (its input comes from a process
# substitution): killing it must not first end its input, or it would close
# the chunked body properly and the upload would complete.
curl -sS --max-time 60 --limit-rate 20M -X PATCH -H 'Content-Type: application/octet-stream' \
    -H 'Expect:' -T - -o /dev/null "$PROXY_URL/v2/sink/blobs/uploads/abc" 2>/dev/null < <(head -c 200M /dev/zero) &
UPLOAD_PID=$!
register_pid "$UPLOAD_PID"
wait_until 10 "upload in flight" metric_is 1 registry_http_in_flight_requests handler=blob_upload_chunk
sleep 1
kill -KILL "$UPLOAD_PID"
{ wait "$UPLOAD_PID"; } 2>/dev/null || true
conn=$(awk '/ request PATCH \/v2\/sink\// { print $2 }' "$UP_LOG" | tail -n 1)
[[ -n "$conn" ]] || fail "the upload never reached the upstream"
wait_until 10 "the upstream to see its upload connection (conn $conn) end" grep -q "^conn $conn end " "$UP_LOG"
line=$(grep "^conn $conn end " "$UP_LOG")
got=${line##*body=}
log "client vanished mid-upload; the upstream logged: $line"
assert_match "^conn $conn end eof " "$line" "how the upload's upstream connection ended"
((got > 0 && got < 209715200)) || fail "the upstream read $got body bytes of an aborted upload"
grep -q 'body complete' "$UP_LOG" && fail "the upstream saw a complete body for an aborted upload"
settle "client gone mid-upload"

# ---------------------------------------------------------------- 5. SIGTERM during a long upload
start_registry
start_regmeter --shutdown-grace 20
BLOB=$E2E_TMP/blob.bin
random_file "$BLOB" 48M
DIGEST=sha256:$(sha256_file "$BLOB")
loc=$(start_upload "$PROXY_URL" faults/term) || fail "POST upload"
curl -sS --max-time 60 --limit-rate 12M -X PUT -H 'Content-Type: application/octet-stream' -T "$BLOB" \
    -o /dev/null -w '%{http_code}\n' "$(add_query "$loc" "digest=$DIGEST")" >"$E2E_TMP/put.code" 2>/dev/null &
PUT_PID=$!
register_pid "$PUT_PID"
wait_until 10 "upload in flight" metric_is 1 registry_http_in_flight_requests handler=blob_upload_chunk
sleep 1
term_at=$SECONDS
kill -TERM "$RM_PID"
sleep 0.5
code=$(curl -s --max-time 3 -o /dev/null -w '%{http_code}' "$PROXY_URL/v2/" || true)
assert_eq 000 "$code" "a new connection during the shutdown grace"
wait "$PUT_PID" || true
assert_eq 201 "$(cat "$E2E_TMP/put.code")" "the upload in flight at SIGTERM"
rc=0
for ((i = 0; i < 100; i++)); do is_running "$RM_PID" || break; sleep 0.1; done
is_running "$RM_PID" && fail "regmeter still running 10 s after its last upload finished"
wait "$RM_PID" || rc=$?
assert_eq 0 "$rc" "regmeter's exit status after SIGTERM"
log "SIGTERM mid-upload: 201, exit 0 after $((SECONDS - term_at)) s"
assert_eq 200 "$(http_code "$REGISTRY_URL/v2/faults/term/blobs/$DIGEST")" "the blob is in the registry"

# ---------------------------------------------------------------- 6. out of file descriptors
RM_PORT=$(free_port)
RM_METRICS_PORT=$(free_port)
RM_LOG=$E2E_TMP/regmeter-nofile.log
prlimit --nofile=64:64 "$REGMETER" --listen "127.0.0.1:$RM_PORT" --upstream "http://127.0.0.1:$UP_PORT" \
    --metrics-listen "127.0.0.1:$RM_METRICS_PORT" --threads 2 >"$RM_LOG" 2>&1 &
RM_PID=$!
register_pid "$RM_PID"
register_log "$RM_LOG"
PROXY_URL=http://127.0.0.1:$RM_PORT
wait_until 10 "regmeter under prlimit --nofile=64" http_is 200 "$PROXY_URL/v2/"
grep -q '^Max open files *64 *64' "/proc/$RM_PID/limits" || fail "prlimit did not apply: $(grep 'open files' "/proc/$RM_PID/limits")"
python3 - "$RM_PORT" "$RM_PID" >"$E2E_TMP/nofile.out" <<'EOF' || { cat "$E2E_TMP/nofile.out" >&2; fail "out of fds"; }
import os, socket, sys, time
port, pid = int(sys.argv[1]), sys.argv[2]
tick = os.sysconf("SC_CLK_TCK")
def cpu():
    f = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick
def get(s):
    s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while not data.endswith(b"{}"):
        c = s.recv(4096)
        if not c:
            return "closed"
        data += c
    return data.split(b"\r\n")[0].decode()
def connect():
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.settimeout(5)
    return s
existing = [connect() for _ in range(6)]
print("before", [get(s) for s in existing])
flood = []
for _ in range(100):
    try:
        flood.append(socket.create_connection(("127.0.0.1", port), timeout=2))
    except OSError as e:
        print("flood connect failed:", e)
        break
time.sleep(1)
print("fds", len(os.listdir("/proc/%s/fd" % pid)), "flood", len(flood))
c0 = cpu()
time.sleep(3)
c1 = cpu()
print("cpu", "%.2f" % (c1 - c0))
during = [get(s) for s in existing]
print("during", during)
for s in flood:
    s.close()
deadline = time.monotonic() + 10
after = "none"
while time.monotonic() < deadline:
    try:
        s = connect()
        after = get(s)
        s.close()
        if after.startswith("HTTP/1.1 200"):
            break
    except OSError as e:
        after = str(e)
    time.sleep(0.2)
print("after", after)
ok = all(x.startswith("HTTP/1.1 200") for x in during) and after.startswith("HTTP/1.1 200") and c1 - c0 < 0.6
sys.exit(0 if ok else 1)
EOF
cat "$E2E_TMP/nofile.out" >&2
secs_flooded=6
fails=$(grep -c 'accept failed' "$RM_LOG" || true)
log "out of fds: 'accept failed' logged $fails time(s)"
((fails >= 1)) || fail "no 'accept failed' in the log although the fd limit was hit"
# Two threads, each at most about once a second, over ~6 s of flood.
assert_le $((2 * (secs_flooded + 3))) "$fails" "'accept failed' log lines"
assert_eq 200 "$(http_code "$PROXY_URL/v2/")" "GET /v2/ after the fd exhaustion"
log "PASS"
