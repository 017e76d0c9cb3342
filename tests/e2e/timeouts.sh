#!/usr/bin/env bash
# --header-timeout, --idle-timeout, --upstream-timeout: slow or idle clients
# are disconnected in time (a trickle of header bytes does not reset the
# clock), and an upstream that accepts but never answers gives a 504 with a
# distribution-style JSON error.
. "$(dirname "$0")/lib.sh"
require_proxy

start_registry
start_regmeter --header-timeout 1 --idle-timeout 2 --upstream-timeout 2

# hold MODE: connect to the proxy and report "<how the connection ended>
# <seconds> <status line or ->". MODE: partial (headers never finished),
# trickle (a header byte every 0.2 s), idle (one full request, then nothing).
hold() {
    python3 - "$RM_PORT" "$1" <<'PY'
import socket, sys, time
port, mode = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(0.2)
start = time.monotonic()
data, how = b"", "timeout"
if mode == "partial":
    s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")
elif mode == "idle":
    s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
trickle = b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
answered = False
while time.monotonic() - start < 15:
    if mode == "trickle" and trickle:
        try:
            s.send(trickle[:1])
            trickle = trickle[1:]
        except OSError:
            how = "reset"
            break
    try:
        chunk = s.recv(65536)
        if not chunk:
            how = "closed"
            break
        data += chunk
        if mode == "idle" and not answered and data.endswith(b"\r\n\r\n{}"):
            answered = True
            start = time.monotonic()  # idle from the end of the response
    except socket.timeout:
        pass
    except OSError:
        how = "reset"
        break
line = data.split(b"\r\n", 1)[0].decode("latin-1") if data else "-"
if mode == "idle" and data.count(b"HTTP/1.") > 1:
    line += " then another response"
print("%s %.1f %s" % (how, time.monotonic() - start, line))
PY
}

check_closed() { # mode min max what: prints the first response line, or -
    local how secs line
    read -r how secs line < <(hold "$1")
    log "$4: $how after ${secs}s, first line [$line]"
    [[ "$how" != timeout ]] || fail "$4: connection still open after ${secs}s"
    awk -v s="$secs" -v lo="$2" -v hi="$3" 'BEGIN { exit !(s >= lo && s <= hi) }' \
        || fail "$4: closed after ${secs}s, expected between $2 and $3 s"
    printf '%s\n' "$line"
}

# The README promises a 408 when the head does not arrive in time.
line=$(check_closed partial 0.5 4 "headers never finished (--header-timeout 1)")
assert_match '^HTTP/1.[01] 408' "$line" "answer to a request head that never finished"
line=$(check_closed trickle 0.5 4 "headers trickling in (--header-timeout 1)")
assert_match '^HTTP/1.[01] 408' "$line" "answer to a request head trickling in"
line=$(check_closed idle 1 6 "idle keep-alive connection (--idle-timeout 2)")
assert_match '^HTTP/1.1 200' "$line" "the idle client's response"
[[ "$line" != *" then "* ]] || fail "idle connection: $line"
assert_eq 200 "$(http_code "$PROXY_URL/v2/")" "GET /v2/ after the timeouts"

# ---- an upstream that accepts and never answers
python3 "$TOOLS/rawhttp.py" trap "$E2E_TMP/trap.port" "$E2E_TMP/trap.count" &
register_pid $!
wait_until 10 "black-hole upstream" test -s "$E2E_TMP/trap.port"
RM_UPSTREAM=http://127.0.0.1:$(cat "$E2E_TMP/trap.port") start_regmeter --upstream-timeout 2
read -r code secs < <(curl -sS --max-time 30 -o "$E2E_TMP/b" -w '%{http_code} %{time_total}\n' "$PROXY_URL/v2/")
log "black-hole upstream: $code after ${secs}s"
assert_eq 504 "$code" "GET /v2/ with an upstream that never answers"
awk -v s="$secs" 'BEGIN { exit !(s >= 1.5 && s <= 8) }' || fail "504 came after ${secs}s with --upstream-timeout 2"
assert_contains '"UNAVAILABLE"' "$(cat "$E2E_TMP/b")" "504 body"
(( $(cat "$E2E_TMP/trap.count") >= 1 )) || fail "the proxy never connected to the upstream"
assert_eq 1 "$(metric registry_http_requests_total code=504 handler=base method=get)" "504 counted"
assert_eq 0 "$(metric registry_http_in_flight_requests)" "in-flight gauge after the 504"
log "PASS"
