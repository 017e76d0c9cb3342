#!/usr/bin/env bash
# Graceful shutdown: SIGTERM during a slow 100 MiB download. The listener
# closes at once (new connections refused), the download still completes with
# the right sha256, and regmeter then exits 0. An idle regmeter with an idle
# keep-alive client exits 0 promptly on SIGINT.
. "$(dirname "$0")/lib.sh"
require_proxy

start_registry
start_regmeter

BLOB=$E2E_TMP/blob.bin
random_file "$BLOB" 100M
DIGEST=$(push_blob "$REGISTRY_URL" shutdown/blob "$BLOB") || fail "seeding a blob"

# ---- SIGTERM with a download in flight (~5 s at 20 MB/s)
curl -sS --max-time 60 --limit-rate 20M -o "$E2E_TMP/dl.bin" -w '%{http_code}' \
    "$PROXY_URL/v2/shutdown/blob/blobs/$DIGEST" >"$E2E_TMP/dl.code" 2>"$E2E_TMP/dl.err" &
DL_PID=$!
register_pid "$DL_PID"
sleep 1
wait_metric 5 1 registry_http_in_flight_requests handler=blob
kill -TERM "$RM_PID"
log "SIGTERM sent to regmeter $RM_PID"

# New connections are refused soon after the signal (curl exit 7), while the
# download keeps going.
deadline=$((SECONDS + 3))
while :; do
    rc=0
    curl -sS --max-time 2 -o /dev/null "$PROXY_URL/v2/" 2>/dev/null || rc=$?
    [[ $rc == 7 ]] && break
    ((SECONDS < deadline)) || fail "3s after SIGTERM a new connection still gets curl exit $rc (7 = refused expected)"
    sleep 0.1
done
is_running "$DL_PID" || fail "the download ended before the listener closed (cannot tell drain from abort)"
is_running "$RM_PID" || fail "regmeter exited with a download in flight"

# The download completes, intact.
rc=0
wait_for_pid() { ! is_running "$1"; }
wait_until 60 "the in-flight download to finish" wait_for_pid "$DL_PID"
wait "$DL_PID" || rc=$?
assert_eq 0 "$rc" "curl exit status of the in-flight download ($(cat "$E2E_TMP/dl.err"))"
assert_eq 200 "$(cat "$E2E_TMP/dl.code")" "status of the in-flight download"
assert_eq "${DIGEST#sha256:}" "$(sha256_file "$E2E_TMP/dl.bin")" "sha256 of the download that spanned SIGTERM"

# Then regmeter exits 0.
wait_until 10 "regmeter to exit after its last request" wait_for_pid "$RM_PID"
rc=0
wait "$RM_PID" || rc=$?
assert_eq 0 "$rc" "regmeter exit status after SIGTERM"
assert_eq 000 "$(http_code "$METRICS_URL")" "metrics port after exit"

# ---- SIGINT, idle, with an idle keep-alive client connection open
start_regmeter
python3 - "$RM_PORT" "$E2E_TMP/idle.out" <<'EOF' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
data = b""
while b"\r\n\r\n" not in data:
    data += s.recv(4096)
open(sys.argv[2], "w").write(data.split(b"\r\n")[0].decode() + "\n")
s.settimeout(60)
start = time.monotonic()
try:
    while s.recv(4096):
        pass
    what = "closed"
except socket.timeout:
    what = "timeout"
except OSError:
    what = "reset"
open(sys.argv[2], "a").write("%s %.1f\n" % (what, time.monotonic() - start))
EOF
IDLE_PID=$!
register_pid "$IDLE_PID"
wait_until 10 "the idle client's first response" test -s "$E2E_TMP/idle.out"
assert_contains " 200" "$(head -n1 "$E2E_TMP/idle.out")" "idle client's GET /v2/"
kill -INT "$RM_PID"
wait_until 5 "idle regmeter to exit on SIGINT (an idle keep-alive connection must not hold it)" wait_for_pid "$RM_PID"
rc=0
wait "$RM_PID" || rc=$?
assert_eq 0 "$rc" "regmeter exit status after SIGINT"
wait_until 5 "the idle client connection to be closed" wait_for_pid "$IDLE_PID"
log "idle client: $(tail -n1 "$E2E_TMP/idle.out")"
log "PASS"
