#!/usr/bin/env bash
# Clients that vanish mid-transfer: a chunked upload and a download are killed
# halfway. The proxy must release both sides (fd count back to its baseline),
# bring the in-flight gauge back to 0, and keep serving.
. "$(dirname "$0")/lib.sh"
require_proxy

start_registry
start_regmeter

# Warm up with a series of fresh connections, so that every worker thread
# (each has its own SO_REUSEPORT listener) holds its pooled upstream
# connection, if it keeps one, in the baseline.
for _ in $(seq 16); do
    assert_eq 200 "$(http_code "$PROXY_URL/v2/")" "GET /v2/"
done
sleep 0.5
BASE_FDS=$(fd_count "$RM_PID")
log "baseline: $BASE_FDS open fds"

fds_back() { (($(fd_count "$RM_PID") <= BASE_FDS)); }
# regmeter's TCP connections: "client" ones (local port = its listen port) and
# "upstream" ones (peer port = the registry's).
sockets() {
    ss -Htanp 2>/dev/null | awk -v pid="pid=$RM_PID," -v lp=":$RM_PORT" -v up=":$REGISTRY_PORT" '
        index($0, pid) && $1 != "LISTEN" {
            kind = "other"
            if (substr($4, length($4) - length(lp) + 1) == lp) kind = "client"
            if (substr($5, length($5) - length(up) + 1) == up) kind = "upstream"
            print kind, $1, $4, $5
        }'
}
client_conns() { sockets | awk '$1 == "client"' | wc -l; }

check_released() { # what
    local deadline=$((SECONDS + 20))
    until fds_back && (($(client_conns) == 0)); do
        if ((SECONDS >= deadline)); then
            ls -l "/proc/$RM_PID/fd" >&2
            sockets >&2
            fail "$1: regmeter holds $(fd_count "$RM_PID") fds ($(client_conns) client connections) 20s later, baseline $BASE_FDS fds"
        fi
        sleep 0.2
    done
    wait_metric 20 0 registry_http_in_flight_requests
    # The registry itself has nothing in flight: no upstream request was left
    # hanging open with half a body.
    deadline=$((SECONDS + 20))
    until [[ "$(scrape "$REGISTRY_METRICS_URL" | python3 "$TOOLS/promq.py" registry_http_in_flight_requests)" == 0 ]]; do
        ((SECONDS < deadline)) || { sockets >&2; fail "$1: the registry still has requests in flight 20s later"; }
        sleep 0.2
    done
    is_running "$RM_PID" || fail "$1: regmeter died"
    assert_eq 200 "$(http_code "$PROXY_URL/v2/")" "$1: GET /v2/ afterwards"
}

# ---- 1. a 512 MiB chunked PATCH from a pipe, killed halfway
loc=$(start_upload "$PROXY_URL" abort/upload) || fail "POST upload"
head -c 512M /dev/urandom | curl -sS --max-time 120 --limit-rate 40M -X PATCH -H 'Transfer-Encoding: chunked' \
    -H 'Content-Type: application/octet-stream' -T - -o /dev/null "$loc" 2>/dev/null &
UPLOAD_PID=$!
register_pid "$UPLOAD_PID"
sleep 2
wait_metric 5 1 registry_http_in_flight_requests handler=blob_upload_chunk
(($(fd_count "$RM_PID") > BASE_FDS)) || fail "no extra fds while an upload is in flight?"
sleep 2
is_running "$UPLOAD_PID" || fail "the upload finished before it could be aborted"
kill_tree "$UPLOAD_PID" KILL
kill -KILL "$UPLOAD_PID" 2>/dev/null || true
{ wait "$UPLOAD_PID"; } 2>/dev/null || true
log "upload killed"
check_released "aborted upload"
# The registry never got a complete upload: the session can still be queried
# (or is gone), but nothing was committed under any digest we can see.
code=$(http_code "$(abs_url "$PROXY_URL" "${loc}")")
[[ "$code" == 204 || "$code" == 404 ]] || fail "upload status after the abort is $code"

# ---- 2. a 256 MiB download, killed halfway
BLOB=$E2E_TMP/blob.bin
random_file "$BLOB" 256M
DIGEST=$(push_blob "$REGISTRY_URL" abort/download "$BLOB") || fail "seeding a blob"
rm -f "$BLOB"
curl -sS --max-time 120 --limit-rate 40M -o /dev/null "$PROXY_URL/v2/abort/download/blobs/$DIGEST" 2>/dev/null &
DL_PID=$!
register_pid "$DL_PID"
sleep 2
wait_metric 5 1 registry_http_in_flight_requests handler=blob
sleep 1
is_running "$DL_PID" || fail "the download finished before it could be aborted"
kill -KILL "$DL_PID"
{ wait "$DL_PID"; } 2>/dev/null || true
log "download killed"
check_released "aborted download"

# ---- 3. a client that sends headers and half a Content-Length body, then closes
python3 - "$RM_PORT" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"PUT /v2/abort/half/blobs/uploads/x?digest=sha256:00 HTTP/1.1\r\nHost: x\r\n"
          b"Content-Length: 10000000\r\n\r\n" + b"a" * 100000)
time.sleep(0.5)
s.close()
EOF
check_released "half-sent request body"

# ---- and a full transfer still works afterwards
got=$(curl -sS --max-time 60 "$PROXY_URL/v2/abort/download/blobs/$DIGEST" | sha256sum | awk '{print $1}')
assert_eq "${DIGEST#sha256:}" "$got" "sha256 of a complete download after the aborts"
check_released "complete download"
log "PASS"
