#!/usr/bin/env bash
# Ports, probes and listeners (issue 13, items 7-9).
#
#  * a --listen port another process listens on (a first regmeter, a program
#    with or without SO_REUSEPORT) is refused: exit 2, one line on stderr
#    naming --listen and "address already in use", and the first instance
#    keeps every client; the same for --metrics-listen; two instances started
#    at the same instant on one port never both run;
#  * --listen 127.0.0.1:0 still works, twice (two different ports);
#  * --reuse-port (flag, or config key) shares the port on purpose: both
#    instances serve, and the old one drains on SIGTERM while every request
#    is answered (zero-downtime restart, docs/operations.md);
#  * a TLS ClientHello on the plain port (python's ssl, skopeo trying HTTPS
#    first) is answered at once with a plain 400, counted in
#    regmeter_rejected_connections_total{reason="tls_on_plain_port"} and an
#    access-log event line, never in registry_http_*; skopeo with
#    --tls-verify=true reports "server gave HTTP response to HTTPS client",
#    and with --tls-verify=false falls back and works;
#  * the other connection-level refusals (not_http, malformed_head,
#    unsupported_version, head_too_large, header_timeout) are counted the
#    same way; a parsed request refused by policy (CONNECT) stays under
#    handler="other";
#  * plain HTTP on the TLS port gets a plain-text 400 ("Client sent an HTTP
#    request to an HTTPS server."), counted as reason="http_on_tls_port", not
#    as a handshake error; a request with a body gets it too.
. "$(dirname "$0")/tls_lib.sh"
require_proxy

tls_setup_pki
start_registry

# refused_start WHAT FLAG ARGS...: regmeter with ARGS must exit 2 within 10 s
# with one line on stderr naming FLAG and "address already in use".
refused_start() {
    local what=$1 flag=$2 rc=0
    shift 2
    timeout 10 "$REGMETER" --upstream "$REGISTRY_URL" --access-log off "$@" \
        >"$E2E_TMP/refused.out" 2>"$E2E_TMP/refused.err" || rc=$?
    local err
    err=$(cat "$E2E_TMP/refused.err")
    log "$what: exit $rc: $err"
    assert_eq 2 "$rc" "$what: exit status"
    assert_eq 1 "$(wc -l <"$E2E_TMP/refused.err")" "$what: stderr lines [$err]"
    assert_contains "$flag" "$err" "$what: the error names the flag"
    assert_contains "address already in use" "${err,,}" "$what: the error says why"
    assert_eq 0 "$(stat -c %s "$E2E_TMP/refused.out")" "$what: stdout bytes"
}

base_gets() { metric0 registry_http_requests_total code=200 handler=base method=get; }

# ================================================================ 1. busy ports
log "--- 1. a busy --listen or --metrics-listen port"
start_regmeter --threads 2
FIRST_PID=$RM_PID FIRST_PORT=$RM_PORT FIRST_METRICS_PORT=$RM_METRICS_PORT FIRST_METRICS_URL=$METRICS_URL

refused_start "a second regmeter on the same --listen port" --listen \
    --listen "127.0.0.1:$FIRST_PORT" --metrics-listen "127.0.0.1:$(free_port)"
refused_start "a second regmeter on the same --metrics-listen port" --metrics-listen \
    --listen "127.0.0.1:$(free_port)" --metrics-listen "127.0.0.1:$FIRST_METRICS_PORT"
# Every client still reaches the first instance (nothing joined its port).
before=$(base_gets)
for _ in $(seq 20); do
    assert_eq 200 "$(http_code "http://127.0.0.1:$FIRST_PORT/v2/")" "GET /v2/ after the refused start"
done
wait_metric 5 $((before + 20)) registry_http_requests_total code=200 handler=base method=get

# Another program on the port, with SO_REUSEPORT (which the kernel would let
# regmeter's listeners join) and without.
for reuse in 1 0; do
    port=$(free_port)
    python3 - "$port" "$reuse" "$E2E_TMP/holder.$reuse" <<'EOF' &
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if sys.argv[2] == "1":
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(8)
open(sys.argv[3], "w").write("up")
time.sleep(120)
EOF
    holder=$!
    register_pid "$holder"
    wait_until 10 "a listener of another program" test -s "$E2E_TMP/holder.$reuse"
    refused_start "--listen on a port another program listens on (SO_REUSEPORT=$reuse)" --listen \
        --listen "127.0.0.1:$port" --metrics-listen "127.0.0.1:$(free_port)"
    kill "$holder"
done

# Two instances started in the same instant on a free port: at most one runs.
for round in 1 2 3 4 5; do
    port=$(free_port)
    pids=()
    for i in 1 2; do
        "$REGMETER" --listen "127.0.0.1:$port" --upstream "$REGISTRY_URL" --metrics-listen "127.0.0.1:$(free_port)" \
            --access-log off >"$E2E_TMP/race.$round.$i" 2>&1 &
        pids+=($!)
        register_pid $!
    done
    sleep 2
    alive=0
    for i in 0 1; do
        if is_running "${pids[$i]}"; then
            alive=$((alive + 1))
        else
            grep -qi "address already in use" "$E2E_TMP/race.$round.$((i + 1))" ||
                fail "race round $round: instance $((i + 1)) exited for another reason: $(cat "$E2E_TMP/race.$round.$((i + 1))")"
        fi
    done
    log "simultaneous start, round $round: $alive of 2 running"
    ((alive <= 1)) || fail "two regmeters started at the same instant both run on port $port (sharing it)"
    for pid in "${pids[@]}"; do stop_service "$pid"; done
done

# Port 0: the kernel picks a free port for each instance; both run.
listening_port() { sed -n 's|.* listening on http://127\.0\.0\.1:\([0-9]*\),.*|\1|p' "$1" | head -n1; }
declare -a zero_ports=()
for i in 1 2; do
    start_regmeter --listen 127.0.0.1:0
    wait_until 5 "the listening line" log_has "$RM_LOG" 'listening on http://127\.0\.0\.1:[0-9]+,'
    p=$(listening_port "$RM_LOG")
    assert_ne 0 "$p" "--listen 127.0.0.1:0 instance $i: the port it got"
    assert_eq 200 "$(http_code "http://127.0.0.1:$p/v2/")" "GET /v2/ on the port-0 instance $i"
    zero_ports+=("$p")
done
assert_ne "${zero_ports[0]}" "${zero_ports[1]}" "two --listen 127.0.0.1:0 instances got the same port"

# ================================================================ 2. --reuse-port
log "--- 2. --reuse-port: sharing on purpose, a zero-downtime restart"
printf 'reuse-port: true\n' >"$E2E_TMP/reuse.yaml"
SECOND_METRICS_PORT=$(free_port)
"$REGMETER" --config "$E2E_TMP/reuse.yaml" --listen "127.0.0.1:$FIRST_PORT" --upstream "$REGISTRY_URL" \
    --metrics-listen "127.0.0.1:$SECOND_METRICS_PORT" --threads 2 >"$E2E_TMP/second.log" 2>&1 &
SECOND_PID=$!
register_pid "$SECOND_PID"
register_log "$E2E_TMP/second.log"
wait_until 10 "the second instance (reuse-port: true)" http_is 200 "http://127.0.0.1:$SECOND_METRICS_PORT/healthz"
SECOND_METRICS_URL=http://127.0.0.1:$SECOND_METRICS_PORT/metrics
a0=$(METRICS_URL=$FIRST_METRICS_URL metric0 registry_http_requests_total code=200 handler=base method=get)
b0=0
for _ in $(seq 40); do
    assert_eq 200 "$(http_code "http://127.0.0.1:$FIRST_PORT/v2/")" "GET /v2/ on the shared port"
done
sleep 0.5
a1=$(METRICS_URL=$FIRST_METRICS_URL metric0 registry_http_requests_total code=200 handler=base method=get)
b1=$(METRICS_URL=$SECOND_METRICS_URL metric0 registry_http_requests_total code=200 handler=base method=get)
log "40 connections to the shared port: $((a1 - a0)) to the first instance, $((b1 - b0)) to the second"
assert_eq 40 "$((a1 - a0 + b1 - b0))" "requests served by the two instances together"
((a1 > a0 && b1 > b0)) || fail "the port is not shared: first +$((a1 - a0)), second +$((b1 - b0))"
# The old one drains while a client keeps asking: every request is answered.
python3 - "$FIRST_PORT" "$E2E_TMP/during.txt" <<'EOF' &
import sys, time, urllib.request
port, out = int(sys.argv[1]), sys.argv[2]
codes = []
end = time.monotonic() + 3
while time.monotonic() < end:
    try:
        codes.append(str(urllib.request.urlopen("http://127.0.0.1:%d/v2/" % port, timeout=5).status))
    except Exception as e:
        codes.append("error:%s" % e)
open(out, "w").write("\n".join(codes) + "\n")
EOF
client=$!
sleep 1
kill -TERM "$FIRST_PID"
wait "$client"
total=$(wc -l <"$E2E_TMP/during.txt")
bad=$(grep -vc '^200$' "$E2E_TMP/during.txt" || true)
log "during the old instance's drain: $total requests, $bad not 200"
((total >= 20)) || fail "only $total requests during the drain"
assert_eq 0 "$bad" "requests not answered 200 while the old instance drained: $(grep -v '^200$' "$E2E_TMP/during.txt" | head -3)"
wait_until 10 "the old instance to exit" bash -c "! kill -0 $FIRST_PID 2>/dev/null"
assert_eq 200 "$(http_code "http://127.0.0.1:$FIRST_PORT/v2/")" "GET /v2/ once only the new instance is left"
stop_service "$SECOND_PID"

# ================================================================ 3. TLS on the plain port
log "--- 3. TLS probes and other refusals on the plain port"
ACCESS=$E2E_TMP/access.log
start_regmeter --max-header-bytes 8192 --header-timeout 1 --access-log "$ACCESS"
H="Host: $PROXY_HOSTPORT"

read -r secs reason < <(python3 "$TOOLS/tls_hello.py" "$RM_PORT")
log "python TLS handshake on the plain port: failed after ${secs}s ($reason)"
awk -v s="$secs" 'BEGIN { exit !(s < 2) }' || fail "the ClientHello was answered after ${secs}s, not at once"
# What comes back is a plain HTTP answer (what a Go registry sends too).
python3 - "$RM_PORT" "$E2E_TMP/hello.answer" <<'EOF'
import os, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
# A TLS 1.2 record header and the start of a ClientHello.
s.sendall(b"\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03" + os.urandom(189))
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
open(sys.argv[2], "wb").write(data)
EOF
assert_match '^HTTP/1\.1 400 ' "$(head -n1 "$E2E_TMP/hello.answer" | tr -d '\r')" "answer to a ClientHello"
wait_metric 5 2 regmeter_rejected_connections_total reason=tls_on_plain_port

# skopeo probes HTTPS first: with verification on it says what is wrong,
# with it off it falls back to plain HTTP and works.
rc=0
skopeo_ inspect --tls-verify=true "docker://$PROXY_HOSTPORT/x" >/dev/null 2>"$E2E_TMP/skopeo.err" || rc=$?
log "skopeo inspect --tls-verify=true: exit $rc: $(tail -n1 "$E2E_TMP/skopeo.err")"
assert_ne 0 "$rc" "skopeo --tls-verify=true against a plain port"
assert_contains "server gave HTTP response to HTTPS client" "$(cat "$E2E_TMP/skopeo.err")" "skopeo's error"
IMG=$E2E_TMP/img
make_image "$IMG" v1 2K
skopeo_ copy --dest-tls-verify=false "oci:$IMG:v1" "docker://$PROXY_HOSTPORT/probes/app:v1" >"$E2E_TMP/push.log" 2>&1 ||
    { cat "$E2E_TMP/push.log" >&2; fail "skopeo push through the plain port"; }
skopeo_ inspect --tls-verify=false "docker://$PROXY_HOSTPORT/probes/app:v1" >/dev/null ||
    fail "skopeo inspect --tls-verify=false (falls back to http)"
sleep 0.5
probes=$(metric regmeter_rejected_connections_total reason=tls_on_plain_port)
log "TLS probes counted: $probes"
((probes >= 5)) || fail "regmeter_rejected_connections_total{reason=tls_on_plain_port} is $probes after 2 + 3 skopeo runs"
assert_eq absent "$(metric registry_http_requests_total handler=other)" "TLS probes under registry_http_requests_total"
assert_eq absent "$(metric registry_http_requests_total code=400)" "400s in registry_http_requests_total"
assert_eq 0 "$(metric registry_http_in_flight_requests handler=other)" "in flight (other)"

# The other refusals before a request could be parsed.
SEND_RAW=$E2E_TMP/send_raw.py
cat >"$SEND_RAW" <<'EOF'
import re, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(sys.stdin.buffer.read())
s.settimeout(float(sys.argv[2]))
data = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
except OSError:
    pass
m = re.match(rb"HTTP/1\.[01] (\d{3}) ", data)
print(m.group(1).decode() if m else "-")
EOF
send_raw() { python3 "$SEND_RAW" "$RM_PORT" "$1"; }  # SECONDS < bytes: the first status code, or "-"
assert_eq 400 "$(printf '\x01\x02garbage\r\n\r\n' | send_raw 3)" "garbage"
assert_eq 400 "$(printf 'GET /v2/ HTTP/1.1\r\n%s\r\nX-A: a\0b\r\n\r\n' "$H" | send_raw 3)" "NUL in a header"
assert_eq 505 "$(printf 'GET /v2/ HTTP/2.0\r\n%s\r\n\r\n' "$H" | send_raw 3)" "HTTP/2.0"
assert_eq 431 "$(printf 'GET /v2/ HTTP/1.1\r\n%s\r\nX-Big: %s\r\n\r\n' "$H" "$(head -c 9000 /dev/zero | tr '\0' a)" |
    send_raw 3)" "head over --max-header-bytes"
assert_eq 408 "$(printf 'GET /v2/ HTTP/1.1\r\n%s\r\n' "$H" | send_raw 4)" "head not finished within --header-timeout"
# Parsed, then refused by policy: a request, counted under handler="other".
assert_eq 405 "$(printf 'CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n' | send_raw 3)" "CONNECT"
for reason in not_http malformed_head unsupported_version head_too_large header_timeout; do
    wait_metric 5 1 regmeter_rejected_connections_total "reason=$reason"
done
assert_eq 0 "$(metric regmeter_rejected_connections_total reason=http_on_tls_port)" "http_on_tls_port on a plain port"
assert_eq 1 "$(metric registry_http_requests_total handler=other)" "registry_http_requests_total{handler=other}: CONNECT only"
assert_eq 1 "$(metric registry_http_requests_total code=405 handler=other method=other)" "the CONNECT"
for code in 400 408 431 505; do
    assert_eq absent "$(metric registry_http_requests_total "code=$code")" "code=$code in registry_http_requests_total"
done

# The access log says what happened, one event line per rejected connection.
sleep 0.6  # lines leave the worker threads every 0.25 s
python3 - "$ACCESS" "$probes" <<'EOF' || fail "access log events"
import collections, json, sys
want_tls = int(sys.argv[2])
seen = collections.Counter()
for line in open(sys.argv[1]):
    j = json.loads(line)
    if j.get("event") != "rejected":
        continue
    assert j["client"] == "127.0.0.1", j
    assert j["time"].endswith("Z") and "T" in j["time"], j
    seen[(j["reason"], j["status"])] += 1
expected = {("tls_on_plain_port", 400): want_tls, ("not_http", 400): 1, ("malformed_head", 400): 1,
            ("unsupported_version", 505): 1, ("head_too_large", 431): 1, ("header_timeout", 408): 1}
if dict(seen) != expected:
    sys.exit("rejected events %s, expected %s" % (dict(seen), expected))
EOF
log "access log: one rejected event per refusal, with reason and status"
grep -m1 '"event":"rejected","reason":"tls_on_plain_port"' "$ACCESS" >&2
stop_service "$RM_PID"

# ================================================================ 4. plain HTTP on the TLS port
log "--- 4. plain HTTP on the TLS port"
start_regmeter_tls
assert_eq 200 "$(http_code "$PROXY_URL/v2/")" "GET /v2/ over TLS"
start=$(now_ms)
code=$(curl -sS --max-time 10 -D "$E2E_TMP/p.hdr" -o "$E2E_TMP/p.body" -w '%{http_code}' "http://$PROXY_HOSTPORT/v2/")
took=$(($(now_ms) - start))
log "curl http:// against the TLS port: $code after ${took} ms: $(cat "$E2E_TMP/p.body")"
assert_eq 400 "$code" "plain HTTP on the TLS port"
assert_eq "Client sent an HTTP request to an HTTPS server." "$(cat "$E2E_TMP/p.body")" "the body"
assert_match '^text/plain' "$(header "$E2E_TMP/p.hdr" Content-Type)" "Content-Type"
assert_le 2000 "$took" "milliseconds until the 400"
# With a body it is answered too (the connection lingers, so no reset eats the 400).
head -c 1000000 /dev/urandom >"$E2E_TMP/body.bin"
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -X PATCH --data-binary "@$E2E_TMP/body.bin" \
    "http://$PROXY_HOSTPORT/v2/x/blobs/uploads/abc")
assert_eq 400 "$code" "plain HTTP PATCH with a 1 MB body on the TLS port"
# Bytes that are neither TLS nor HTTP are a failed handshake, as before.
printf '\x01\x02\x03\x04\r\n' | send_raw 2 >/dev/null
wait_metric 5 2 regmeter_rejected_connections_total reason=http_on_tls_port
wait_metric 5 1 regmeter_tls_handshake_errors_total side=client
assert_eq absent "$(metric registry_http_requests_total handler=other)" "plain HTTP under registry_http_requests_total"
assert_eq 0 "$(metric regmeter_rejected_connections_total reason=tls_on_plain_port)" "tls_on_plain_port on the TLS port"
wait_until 5 "the access-log event" log_has "$RM_LOG" '"event":"rejected","reason":"http_on_tls_port","client":"127.0.0.1","status":400'
assert_eq 200 "$(http_code "$PROXY_URL/v2/")" "GET /v2/ over TLS afterwards"
is_running "$RM_PID" || fail "regmeter died"
log "PASS"
