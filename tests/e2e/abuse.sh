#!/usr/bin/env bash
# Hostile clients against the real proxy in front of a real registry.
#
# Every case sends raw bytes and checks the answer, then checks that the
# proxy is back where it was: still answering GET /v2/ with 200, its open-fd
# count back to the baseline, and both in-flight gauges (the proxy's
# registry_http_in_flight_requests and the registry's own) back to 0, all
# within a bounded wait.
#
#  * request smuggling shapes (CL+TE, TE+CL, duplicate or list Content-Length,
#    Transfer-Encoding gzip / "chunked, identity" / chunked twice, obs-fold,
#    NUL, bare CR, bare LF line ends, space before the colon, control byte in
#    the target) → 400, the connection closed, nothing after them answered,
#    and nothing reached the registry;
#  * malformed chunked bodies (bad size, no CRLF after the data, size
#    overflow) → 400, closed, the upstream request aborted;
#  * HTTP/2.0, "HTTP/0.9" → 505; a bare "GET /" request line → 400 at once;
#    the HTTP/2 preface → refused; CONNECT → 405 and no connection to its
#    target;
#  * RFC 9112 framing: Transfer-Encoding other than exactly "chunked" → 400
#    (an unknown coding alone → 501), no Host on HTTP/1.1 or two Host fields,
#    Content-Length above 2^63-1, a chunk extension over 4 KiB → 400; every
#    shape of bare LF (and bare CR) in a head that never completes → 400 at
#    once, not 408 at --header-timeout;
#  * head limits: 101 fields (--max-header-fields 100) and 65 Connection
#    options → 431;
#  * a request smuggled as a chunked "trailer" → 400, the upstream request
#    aborted;
#  * dot-segments and encoded slashes in /v2/ paths → 400 NAME_INVALID,
#    counted under handler="other" with the method as sent, nothing reaching
#    the registry;
#  * absolute-form targets naming another host are served by the configured
#    upstream only (a trap listener named in the target sees no connection;
#    a closed port named there still gets the registry's 200);
#  * a head over --max-header-bytes → 431 (with or without its blank line);
#    --header-timeout 1 against a head trickling in → 408; an idle keep-alive
#    connection closed after --idle-timeout; --body-timeout 1 against a
#    stalled upload body → 408 and the registry's request aborted;
#  * "Connection: Content-Length" / "Connection: Transfer-Encoding" do not
#    strip the framing (the registry receives the whole body, the next
#    pipelined request is answered);
#  * client-sent X-Forwarded-Host/-Proto do not steer the registry's Location;
#    (client-sent Forwarded does: a known bug, a warning unless ABUSE_STRICT=1);
#  * 200 pipelined requests are answered in order; 60 connections spewing
#    garbage at once leave no trace;
#  * the refusals before a request could be parsed are counted in
#    regmeter_rejected_connections_total, not in registry_http_* (no 431, no
#    505, no head-timeout 408 there); CONNECT and bad bodies are requests;
#  * through a second proxy in front of tests/tools/misbehaving_upstream.py's
#    /echo: what reaches an upstream has no hop-by-hop field, no field the
#    client's Connection named, our own X-Forwarded-*, origin-form targets
#    without our _rm parameter; a 307 is passed through, never followed.
. "$(dirname "$0")/lib.sh"
require_proxy

ABUSE_STRICT=${ABUSE_STRICT:-1}  # the findings it watches for are fixed: they fail now
MAX_HEAD=8192
start_registry
start_regmeter --max-header-bytes "$MAX_HEAD" --header-timeout 1 --idle-timeout 2 --body-timeout 1 \
    --upstream-timeout 10

# ---------------------------------------------------------------- tools
PROBE=$E2E_TMP/probe.py
cat >"$PROBE" <<'EOF'
"""probe.py PORT SECONDS OUTFILE [MODE]: send stdin to 127.0.0.1:PORT, read
until the peer closes or SECONDS pass. MODE: "all" (one write, default) or
"trickle:S" (one byte every S seconds, never finishing). Prints
"<first status or -> <responses seen> <closed|reset|open> <seconds>
<requests the registry had counted before>" (REG_METRICS: its metrics URL);
the raw answer goes to OUTFILE."""
import os, re, socket, sys, time, urllib.request
def registry_total(url):
    """Sum of registry_http_requests_total in a scrape of url."""
    total = 0
    for line in urllib.request.urlopen(url, timeout=10).read().decode().splitlines():
        if line.startswith("registry_http_requests_total{"):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total
port, limit, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
mode = sys.argv[4] if len(sys.argv) > 4 else "all"
payload = sys.stdin.buffer.read()
reg = os.environ.get("REG_METRICS")
before = registry_total(reg) if reg else -1
s = socket.create_connection(("127.0.0.1", port), timeout=5)
start = time.monotonic()
s.settimeout(0.05)
data, how = b"", "open"
if mode == "all":
    s.sendall(payload)
step = float(mode.split(":")[1]) if mode.startswith("trickle:") else 0
next_send, sent = start, 0
while time.monotonic() - start < limit:
    if step and sent < len(payload) and time.monotonic() >= next_send:
        try:
            s.send(payload[sent:sent + 1])
        except OSError:
            how = "reset"
            break
        sent += 1
        next_send += step
    try:
        c = s.recv(65536)
        if not c:
            how = "closed"
            break
        data += c
    except socket.timeout:
        pass
    except OSError:
        how = "reset"
        break
open(out, "wb").write(data)
st = re.findall(rb"HTTP/1\.[01] (\d{3}) ", data)
print(st[0].decode() if st else "-", len(st), how, "%.2f" % (time.monotonic() - start), before)
EOF
ANSWER=$E2E_TMP/answer.bin
# probe SECONDS [MODE] < payload
probe() { REG_METRICS=$REGISTRY_METRICS_URL python3 "$PROBE" "$RM_PORT" "$1" "$ANSWER" "${2:-all}"; }

registry_metric() { scrape "$REGISTRY_METRICS_URL" | python3 "$TOOLS/promq.py" "$@"; }

# ---------------------------------------------------------------- baseline
# Warm up every thread's listener and upstream pool (see client_abort.sh).
for _ in $(seq 16); do
    assert_eq 200 "$(http_code "$PROXY_URL/v2/")" "warm-up GET /v2/"
done
sleep 0.3
BASE_FDS=$(fd_count "$RM_PID")
log "baseline: $BASE_FDS open fds"

SETTLE=$E2E_TMP/settle.py
cat >"$SETTLE" <<'EOF'
"""settle.py PID BASE_FDS PROXY_METRICS REGISTRY_METRICS PROXY_URL: wait (10 s
at most) until the proxy holds no more fds than BASE_FDS and both in-flight
gauges are 0; print the registry's request count at that point, then check
that GET /v2/ through the proxy answers 200. Exit 1 with a reason otherwise."""
import os, sys, time, urllib.request
pid, base, pm, rm, purl = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
def sums(url, *names):
    out = dict.fromkeys(names, 0)
    for line in urllib.request.urlopen(url, timeout=10).read().decode().splitlines():
        for n in names:
            if line.startswith(n + "{") or line.startswith(n + " "):
                out[n] += int(float(line.rsplit(" ", 1)[1]))
    return out
def alive():
    try:
        return open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
deadline = time.monotonic() + 10
while True:
    if not alive():
        sys.exit("regmeter died")
    fds = len(os.listdir("/proc/%s/fd" % pid))
    proxy = sums(pm, "registry_http_in_flight_requests")["registry_http_in_flight_requests"]
    reg = sums(rm, "registry_http_in_flight_requests", "registry_http_requests_total")
    if fds <= base and proxy == 0 and reg["registry_http_in_flight_requests"] == 0:
        break
    if time.monotonic() > deadline:
        sys.exit("10 s later regmeter holds %d fds (baseline %d), in flight: proxy %d, registry %d"
                 % (fds, base, proxy, reg["registry_http_in_flight_requests"]))
    time.sleep(0.05)
print(reg["registry_http_requests_total"])
try:
    code = urllib.request.urlopen(purl + "/v2/", timeout=10).status
except Exception as e:
    sys.exit("GET /v2/ afterwards: %s" % e)
if code != 200:
    sys.exit("GET /v2/ afterwards: %d" % code)
EOF

# back_to_baseline WHAT: bounded wait for fds and both in-flight gauges, then
# GET /v2/ = 200. Sets SETTLED_REQUESTS: what the registry had counted just
# before that GET.
back_to_baseline() {
    local what=$1 out
    out=$(python3 "$SETTLE" "$RM_PID" "$BASE_FDS" "$METRICS_URL" "$REGISTRY_METRICS_URL" "$PROXY_URL" 2>&1) || {
        ls -l "/proc/$RM_PID/fd" >&2 || true
        fail "$what: $out"
    }
    SETTLED_REQUESTS=$out
}

# refused WHAT STATUS [upstream]: stdin is sent; expects exactly one answer
# with STATUS and the connection closed. Unless "upstream" is given (the head
# was fine and went upstream before the body turned out bad), the registry
# must not have seen the request at all.
refused() {
    local what=$1 want=$2 where=${3:-} before status count how secs
    read -r status count how secs before < <(probe 5)
    log "$what: $status ($count answer(s), $how after ${secs}s)"
    assert_eq "$want" "$status" "$what: status"
    assert_eq 1 "$count" "$what: answers on the connection (a smuggled request must not be answered)"
    assert_eq closed "$how" "$what: the connection must be closed after the refusal"
    assert_contains '"errors"' "$(tr -d '\0' <"$ANSWER")" "$what: JSON error body"
    back_to_baseline "$what"
    if [[ "$where" != upstream ]]; then
        assert_eq "$before" "$SETTLED_REQUESTS" "$what: requests the registry counted (must not reach it)"
    fi
}

registry_base_above() { # N: the registry counted more than N GET /v2/
    local v
    v=$(registry_metric registry_http_requests_total handler=base)
    [[ "$v" != absent ]] && ((v > $1))
}

H="Host: $PROXY_HOSTPORT"

# ---------------------------------------------------------------- smuggling shapes
printf 'POST /v2/abuse/blobs/uploads/ HTTP/1.1\r\n%s\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /v2/ HTTP/1.1\r\n%s\r\n\r\n' "$H" "$H" |
    refused "CL + TE" 400
printf 'POST /v2/abuse/blobs/uploads/ HTTP/1.1\r\n%s\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /v2/ HTTP/1.1\r\n%s\r\n\r\n' "$H" "$H" |
    refused "TE + CL" 400
printf 'PUT /v2/abuse/manifests/t HTTP/1.1\r\n%s\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!' "$H" |
    refused "duplicate Content-Length" 400
printf 'PUT /v2/abuse/manifests/t HTTP/1.1\r\n%s\r\nContent-Length: 5, 5\r\n\r\nhello' "$H" |
    refused "Content-Length list" 400
printf 'PUT /v2/abuse/manifests/t HTTP/1.1\r\n%s\r\nContent-Length: +5\r\n\r\nhello' "$H" |
    refused "Content-Length with a sign" 400
printf 'POST /v2/abuse/blobs/uploads/ HTTP/1.1\r\n%s\r\nTransfer-Encoding: gzip\r\n\r\nabc' "$H" |
    refused "Transfer-Encoding: gzip" 400
printf 'POST /v2/abuse/blobs/uploads/ HTTP/1.1\r\n%s\r\nTransfer-Encoding: chunked, identity\r\n\r\n3\r\nabc\r\n0\r\n\r\n' "$H" |
    refused "Transfer-Encoding: chunked, identity" 400
printf 'POST /v2/abuse/blobs/uploads/ HTTP/1.1\r\n%s\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n' "$H" |
    refused "Transfer-Encoding: chunked twice" 400
printf 'GET /v2/ HTTP/1.1\r\n%s\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n' "$H" |
    refused "obs-fold" 400
printf 'GET /v2/ HTTP/1.1\r\n%s\r\nX-A: a\0b\r\n\r\n' "$H" |
    refused "NUL in a header value" 400
printf 'GET /v2/ HTTP/1.1\r\n%s\rX-A: b\r\n\r\n' "$H" |
    refused "bare CR" 400
printf 'GET /v2/ HTTP/1.1\n%s\nX-A: b\r\n\r\n' "$H" |
    refused "bare LF line ends" 400
printf 'POST /v2/abuse/blobs/uploads/ HTTP/1.1\r\n%s\r\nTransfer-Encoding : chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n' "$H" |
    refused "space before the colon" 400
printf 'GET /v2/\x01 HTTP/1.1\r\n%s\r\n\r\n' "$H" |
    refused "control byte in the target" 400

# A head with bare LFs only never shows the proxy a CRLF blank line: it is
# refused as soon as the first bare LF arrives (not at the header timeout),
# and never reaches the registry.
read -r status count how secs before < <(printf 'GET /v2/ HTTP/1.1\n%s\n\n' "$H" | probe 5)
log "bare-LF-only head: $status after ${secs}s ($how)"
assert_eq 400 "$status" "bare-LF-only head: status"
awk -v s="$secs" 'BEGIN {exit !(s < 1.0)}' || fail "bare-LF-only head answered after ${secs}s, not at once"
assert_eq closed "$how" "bare-LF-only head: connection closed"
back_to_baseline "bare-LF-only head"
assert_eq "$before" "$SETTLED_REQUESTS" "bare-LF-only head reached the registry"

# refused_at_once WHAT: a head that never completes (no CRLF blank line will
# come) must get its 400 at once, not a 408 at --header-timeout (1 s here).
refused_at_once() {
    local what=$1 status count how secs before
    read -r status count how secs before < <(probe 5)
    log "$what: $status after ${secs}s ($how)"
    assert_eq 400 "$status" "$what: status"
    awk -v s="$secs" 'BEGIN {exit !(s < 0.9)}' || fail "$what answered after ${secs}s, not at once"
    assert_eq closed "$how" "$what: connection closed"
    back_to_baseline "$what"
    assert_eq "$before" "$SETTLED_REQUESTS" "$what reached the registry"
}
# Bare LF in every place a line can end, and bare CR; none of these heads
# ever shows the proxy a CRLF blank line.
printf 'GET /v2/ HTTP/1.1\r\n%s\r\n\n' "$H" | refused_at_once "CRLF LF (bare-LF blank line)"
printf 'GET /v2/ HTTP/1.1\r\n%s\n\r\n' "$H" | refused_at_once "bare LF ending the last field"
printf 'GET /v2/ HTTP/1.1\n' | refused_at_once "bare LF ending the request line"
printf '\n\n\n' | refused_at_once "nothing but bare LFs"
printf '\nGET /v2/ HTTP/1.1\r\n%s\r\n' "$H" | refused_at_once "a bare LF before the request line"
printf 'GET /v2/ HTTP/1.1\r\n%s\rX' "$H" | refused_at_once "bare CR"
printf 'GET /v2/ HTTP/1.1\r\n%s\r\nX-A: 1\r\n b' "$H" | refused_at_once "obs-fold in an unfinished head"
printf 'GET /v2/\r\n' | refused_at_once "HTTP/0.9 request line without a blank line"
printf '\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n' | refused_at_once "ten empty lines before any request line"

# ---------------------------------------------------------------- RFC 9112 framing
for te in 'identity, chunked' ',chunked' 'chunked,' 'gzip, chunked' 'chunked;q=1'; do
    printf 'POST /v2/abuse/blobs/uploads/ HTTP/1.1\r\n%s\r\nTransfer-Encoding: %s\r\n\r\n3\r\nabc\r\n0\r\n\r\n' "$H" "$te" |
        refused "Transfer-Encoding: $te" 400
done
printf 'POST /v2/abuse/blobs/uploads/ HTTP/1.1\r\n%s\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding:\r\n\r\n3\r\nabc\r\n0\r\n\r\n' "$H" |
    refused "an empty second Transfer-Encoding field" 400
printf 'POST /v2/abuse/blobs/uploads/ HTTP/1.1\r\n%s\r\nTransfer-Encoding: foo\r\n\r\nabc' "$H" |
    refused "Transfer-Encoding: foo (a coding we do not implement)" 501
printf 'GET /v2/ HTTP/1.1\r\nUser-Agent: x\r\n\r\n' | refused "HTTP/1.1 without Host" 400
printf 'GET /v2/ HTTP/1.1\r\n%s\r\nHost: other.invalid\r\n\r\n' "$H" | refused "two Host fields" 400
printf 'GET /v2/ HTTP/1.0\r\n%s\r\n%s\r\n\r\n' "$H" "$H" | refused "two Host fields on HTTP/1.0" 400
printf 'GET /v2/ HTTP/1.1\r\nHost: a/b@evil\r\n\r\n' | refused "a Host that is not host[:port]" 400
printf 'PUT /v2/abuse/manifests/t HTTP/1.1\r\n%s\r\nContent-Length: 9223372036854775808\r\n\r\nx' "$H" |
    refused "Content-Length 2^63" 400
read -r status count how secs _ < <(printf 'GET /v2/ HTTP/1.0\r\n\r\n' | probe 3)
assert_eq 200 "$status" "HTTP/1.0 without Host (allowed)"
back_to_baseline "HTTP/1.0 without Host"

# ---------------------------------------------------------------- head limits
head_with_fields() { # N: a GET /v2/ head with Host and N-1 more fields
    printf 'GET /v2/ HTTP/1.1\r\n%s\r\n' "$H"
    for ((i = 1; i < $1; i++)); do printf 'X-F%d: v\r\n' "$i"; done
    printf '\r\n'
}
head_with_fields 101 | refused "101 header fields (--max-header-fields 100)" 431
read -r status count how secs _ < <(head_with_fields 100 | probe 3)
assert_eq 200 "$status" "100 header fields"
back_to_baseline "100 header fields"
OPTIONS=$(seq -s ', o' 0 64)
printf 'GET /v2/ HTTP/1.1\r\n%s\r\nConnection: o%s\r\n\r\n' "$H" "$OPTIONS" | refused "65 Connection options" 431

# ---------------------------------------------------------------- malformed chunked bodies
# The head is fine and goes upstream; the body turns out bad. The proxy must
# answer 400, close, and abort the registry's request (its in-flight gauge
# returns to 0 in back_to_baseline).
UPLOAD=$(start_upload "$REGISTRY_URL" abuse/chunks) || fail "POST upload to the registry"
UPATH=/${UPLOAD#http://*/}
printf 'PATCH %s HTTP/1.1\r\n%s\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n' "$UPATH" "$H" |
    refused "bad chunk size" 400 upstream
printf 'PATCH %s HTTP/1.1\r\n%s\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX0\r\n\r\nGET /v2/ HTTP/1.1\r\n%s\r\n\r\n' "$UPATH" "$H" "$H" |
    refused "no CRLF after chunk data" 400 upstream
printf 'PATCH %s HTTP/1.1\r\n%s\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000001\r\nabc\r\n' "$UPATH" "$H" |
    refused "chunk size overflow" 400 upstream
printf 'PATCH %s HTTP/1.1\r\n%s\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n' "$UPATH" "$H" |
    refused "bare LF in chunk framing" 400 upstream

printf 'PATCH %s HTTP/1.1\r\n%s\r\nTransfer-Encoding: chunked\r\n\r\n3;%s\r\nabc\r\n0\r\n\r\n' "$UPATH" "$H" "$(head -c 4100 /dev/zero | tr '\0' e)" |
    refused "chunk extension over 4 KiB" 400 upstream
# A request hidden in the trailer section: refused, never relayed (an
# upstream expecting "0\r\n\r\n" would read it as a second request).
printf 'PATCH %s HTTP/1.1\r\n%s\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nGET /v2/SMUGGLED HTTP/1.1\r\nHost: h\r\n\r\n' "$UPATH" "$H" |
    refused "a request smuggled as a trailer" 400 upstream

# ---------------------------------------------------------------- dot-segments
# No OCI name or reference has a "." or ".." segment or an encoded '/': the
# proxy refuses them (NAME_INVALID) instead of counting one repository while
# the registry may serve another. Counted under handler="other".
for path in '/v2/a/../b/manifests/x' '/v2/a/%2e%2e/b/manifests/x' '/v2/a/.%2e/b/manifests/x' '/v2/a/./b/manifests/x' \
    '/v2/a%2Fb/manifests/x' '/v2/a%2fb/tags/list' '/v2/a/manifests/x/.' '/x/../v2/b/manifests/x'; do
    before_other=$(metric0 registry_http_requests_total code=400 handler=other method=delete)
    printf 'DELETE %s HTTP/1.1\r\n%s\r\nConnection: close\r\n\r\n' "$path" "$H" | refused "dot-segment path $path" 400
    assert_contains '"code":"NAME_INVALID"' "$(cat "$ANSWER")" "$path: error code"
    wait_metric 5 $((before_other + 1)) registry_http_requests_total code=400 handler=other method=delete
done

# ---------------------------------------------------------------- versions, CONNECT
printf 'GET /v2/ HTTP/2.0\r\n%s\r\n\r\n' "$H" | refused "HTTP/2.0" 505
printf 'GET /v2/ HTTP/0.9\r\n%s\r\n\r\n' "$H" | refused "HTTP/0.9" 505
printf 'GET /v2/\r\n\r\n' | refused "HTTP/0.9 simple request" 400
read -r status count how secs before < <(printf 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' | probe 5)
log "HTTP/2 preface: $status ($how)"
[[ "$status" == 400 || "$status" == 505 ]] || fail "HTTP/2 preface answered $status"
assert_eq closed "$how" "HTTP/2 preface: connection closed"
back_to_baseline "HTTP/2 preface"
assert_eq "$before" "$SETTLED_REQUESTS" "HTTP/2 preface reached the registry"

# A trap listener: any connection to it means the proxy went somewhere else.
python3 "$TOOLS/rawhttp.py" trap "$E2E_TMP/trap.port" "$E2E_TMP/trap.count" &
register_pid $!
wait_until 10 "trap listener" test -s "$E2E_TMP/trap.port"
TRAP=$(cat "$E2E_TMP/trap.port")
printf 'CONNECT 127.0.0.1:%s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\n\r\n' "$TRAP" "$TRAP" | refused "CONNECT" 405

# ---------------------------------------------------------------- absolute-form targets
CLOSED=$(free_port)
for target in "http://127.0.0.1:$TRAP/v2/" "https://127.0.0.1:$TRAP/v2/" "http://127.0.0.1:$CLOSED/v2/" \
    "http://evil.invalid/v2/"; do
    before=$(registry_metric registry_http_requests_total handler=base)
    [[ "$before" == absent ]] && before=0
    read -r status count how secs _ < <(printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' \
        "$target" "$TRAP" | probe 3)
    log "absolute-form $target: $status"
    assert_eq 200 "$status" "absolute-form GET $target"
    grep -qai '^Docker-Distribution-Api-Version: registry/2.0' "$ANSWER" || fail "absolute-form $target: not the registry's answer"
    wait_until 5 "the registry counting GET /v2/ for $target" registry_base_above "$before"
done
sleep 0.3
assert_eq 0 "$(cat "$E2E_TMP/trap.count")" "connections to hosts named in CONNECT / absolute-form targets"
back_to_baseline "absolute-form targets"

# ---------------------------------------------------------------- limits and timeouts
BIG=$(head -c $((MAX_HEAD + 100)) /dev/zero | tr '\0' a)
printf 'GET /v2/ HTTP/1.1\r\n%s\r\nX-Big: %s\r\n\r\n' "$H" "$BIG" | refused "head over --max-header-bytes" 431
read -r status count how secs _ < <(printf 'GET /v2/ HTTP/1.1\r\n%s\r\nX-Big: %s%s' "$H" "$BIG" "$BIG" | probe 5)
log "endless head: $status after ${secs}s ($how)"
assert_eq 431 "$status" "head over the limit with no end in sight"
awk -v s="$secs" 'BEGIN { exit !(s < 0.9) }' || fail "431 for an endless head came after ${secs}s, not at once"
back_to_baseline "endless head"

read -r status count how secs _ < <(printf 'GET /v2/ HTTP/1.1\r\n%s\r\nX-Slow: %s' "$H" "$(head -c 100 /dev/zero | tr '\0' s)" |
    probe 6 trickle:0.1)
log "slow head (a byte every 0.1 s, --header-timeout 1): $status after ${secs}s ($how)"
assert_eq 408 "$status" "slow head"
awk -v s="$secs" 'BEGIN { exit !(s >= 0.8 && s <= 3) }' || fail "408 for the slow head after ${secs}s"
back_to_baseline "slow head"

read -r status count how secs _ < <(printf 'GET /v2/ HTTP/1.1\r\n%s\r\n\r\n' "$H" | probe 8)
log "idle keep-alive (--idle-timeout 2): $status, $how after ${secs}s"
assert_eq 200 "$status" "the idle client's answer"
assert_eq closed "$how" "idle keep-alive connection"
awk -v s="$secs" 'BEGIN { exit !(s >= 1.5 && s <= 4.5) }' || fail "idle connection closed after ${secs}s"
back_to_baseline "idle keep-alive"

# Stalled upload body: the head and 1000 of 1000000 bytes, then nothing.
UPLOAD=$(start_upload "$REGISTRY_URL" abuse/stall) || fail "POST upload to the registry"
UPATH=/${UPLOAD#http://*/}
read -r status count how secs _ < <({
    printf 'PATCH %s HTTP/1.1\r\n%s\r\nContent-Length: 1000000\r\n\r\n' "$UPATH" "$H"
    head -c 1000 /dev/zero
} | probe 8)
log "stalled upload body (--body-timeout 1): $status after ${secs}s ($how)"
assert_eq 408 "$status" "stalled upload body"
assert_eq closed "$how" "stalled upload body: connection"
awk -v s="$secs" 'BEGIN { exit !(s >= 0.8 && s <= 4) }' || fail "408 for the stalled body after ${secs}s"
back_to_baseline "stalled upload body"   # includes the registry's in-flight gauge: request aborted
code=$(http_code "$UPLOAD")
[[ "$code" == 204 || "$code" == 404 ]] || fail "upload status after the stalled body: $code"

# ---------------------------------------------------------------- Connection cannot strip framing
UPLOAD=$(start_upload "$REGISTRY_URL" abuse/conn) || fail "POST upload to the registry"
UPATH=/${UPLOAD#http://*/}
read -r status count how secs _ < <({
    printf 'PATCH %s HTTP/1.1\r\n%s\r\nConnection: Content-Length\r\nContent-Length: 1000\r\n\r\n' "$UPATH" "$H"
    head -c 1000 /dev/zero | tr '\0' b
    printf 'GET /v2/ HTTP/1.1\r\n%s\r\n\r\n' "$H"
} | probe 2)
log "Connection: Content-Length: $status, $count answer(s)"
assert_eq 202 "$status" "PATCH with Connection: Content-Length"
assert_eq 2 "$count" "answers (PATCH, then the pipelined GET)"
range=$(tr -d '\r' <"$ANSWER" | awk -F': ' 'tolower($1) == "range" { print $2; exit }')
assert_eq "0-999" "$range" "Range after the PATCH (the registry got the whole body)"
loc=$(tr -d '\r' <"$ANSWER" | awk -F': ' 'tolower($1) == "location" { print $2; exit }')
UPATH=/${loc#http://*/}
read -r status count how secs _ < <({
    printf 'PATCH %s HTTP/1.1\r\n%s\r\nConnection: Transfer-Encoding, keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n' "$UPATH" "$H"
    printf '3e8\r\n'
    head -c 1000 /dev/zero | tr '\0' c
    printf '\r\n0\r\n\r\nGET /v2/ HTTP/1.1\r\n%s\r\n\r\n' "$H"
} | probe 2)
log "Connection: Transfer-Encoding: $status, $count answer(s)"
assert_eq 202 "$status" "PATCH with Connection: Transfer-Encoding"
assert_eq 2 "$count" "answers (chunked PATCH, then the pipelined GET)"
range=$(tr -d '\r' <"$ANSWER" | awk -F': ' 'tolower($1) == "range" { print $2; exit }')
assert_eq "0-1999" "$range" "Range after the chunked PATCH"
back_to_baseline "Connection naming framing fields"

# ---------------------------------------------------------------- forwarded headers from the client
hdr=$E2E_TMP/xf.hdr
curl -sS --max-time 10 -X POST -D "$hdr" -o /dev/null -H 'X-Forwarded-Host: evil.invalid' \
    -H 'X-Forwarded-Proto: https' "$PROXY_URL/v2/abuse/xf/blobs/uploads/"
loc=$(header "$hdr" Location)
case "$loc" in
    "$PROXY_URL"/v2/* | /v2/*) log "X-Forwarded-* spoofing: Location $PROXY_URL/..." ;;
    *) fail "client-sent X-Forwarded-Host/-Proto steered the registry: Location [$loc]" ;;
esac
curl -sS --max-time 10 -X POST -D "$hdr" -o /dev/null -H 'Forwarded: host=evil.invalid;proto=https' \
    "$PROXY_URL/v2/abuse/xf/blobs/uploads/"
loc=$(header "$hdr" Location)
case "$loc" in
    "$PROXY_URL"/v2/* | /v2/*) log "Forwarded spoofing: Location $PROXY_URL/..." ;;
    *)
        if [[ "$ABUSE_STRICT" == 1 ]]; then
            fail "client-sent Forwarded steered the registry: Location [$loc]"
        fi
        log "WARNING (known bug, reported): client-sent 'Forwarded' reaches the registry, which builds Location from it: [${loc:0:60}...]"
        ;;
esac
back_to_baseline "forwarded headers"

# ---------------------------------------------------------------- crowds of bad input
read -r status count how secs _ < <({
    for _ in $(seq 199); do printf 'GET /v2/ HTTP/1.1\r\n%s\r\n\r\n' "$H"; done
    printf 'GET /v2/ HTTP/1.1\r\n%s\r\nConnection: close\r\n\r\n' "$H"
} | probe 10)
log "200 pipelined GET /v2/: $count answers ($how after ${secs}s)"
assert_eq 200 "$count" "answers to 200 pipelined requests"
[[ "$(grep -ao 'HTTP/1.1 200 ' "$ANSWER" | wc -l)" == 200 ]] || fail "not every pipelined answer was a 200"
back_to_baseline "pipelined flood"

python3 - "$RM_PORT" <<'EOF' || fail "garbage crowd"
import os, random, socket, sys, threading
port = int(sys.argv[1])
rng = random.Random(7)
payloads = [bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 3000))) for _ in range(60)]
payloads[0] = b"\r\n\r\n" * 100
payloads[1] = b"GET " + b"/" * 100000
payloads[2] = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(200)
def one(p):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(p)
        s.settimeout(3)
        while s.recv(65536):
            pass
    except OSError:
        pass
ts = [threading.Thread(target=one, args=(p,)) for p in payloads]
[t.start() for t in ts]
[t.join(10) for t in ts]
EOF
back_to_baseline "60 connections of garbage"

# ---------------------------------------------------------------- how the refusals were counted
# Refused before a request could be parsed: regmeter_rejected_connections_total,
# never registry_http_* (the registry would not count them either). Requests
# refused after their head parsed (CONNECT, bad chunked bodies, a stalled
# body) are requests.
rejected() { metric0 regmeter_rejected_connections_total "reason=$1"; }
log "rejected connections: $(scrape | grep '^regmeter_rejected_connections_total' | sed 's/regmeter_rejected_connections_total//' | tr '\n' ' ')"
(($(rejected malformed_head) >= 10)) || fail "malformed heads counted as rejected: $(rejected malformed_head)"
(($(rejected head_too_large) >= 2)) || fail "heads over --max-header-bytes counted as rejected: $(rejected head_too_large)"
(($(rejected header_timeout) >= 1)) || fail "slow heads counted as rejected: $(rejected header_timeout)"
(($(rejected unsupported_version) >= 1)) || fail "HTTP/2.0 counted as rejected: $(rejected unsupported_version)"
(($(rejected tls_on_plain_port) >= 1)) || fail "the ClientHello of the garbage crowd counted as rejected"
(($(rejected not_http) >= 1)) || fail "the garbage crowd counted as rejected"
for code in 431 505; do
    assert_eq absent "$(metric registry_http_requests_total "code=$code")" "code=$code in registry_http_requests_total"
done
assert_eq absent "$(metric registry_http_requests_total code=408 handler=other)" "head timeouts in registry_http_requests_total"
assert_eq 1 "$(metric registry_http_requests_total code=405 handler=other method=other)" "the CONNECT, a request"
(($(metric0 registry_http_requests_total code=400 handler=blob_upload_chunk) >= 4)) ||
    fail "the malformed chunked bodies (parsed heads) are not counted as requests"

# ---------------------------------------------------------------- control bytes, log injection
# known_bug WHAT: a reported bug shows; a warning, or a failure with ABUSE_STRICT=1.
known_bug() {
    [[ "$ABUSE_STRICT" == 1 ]] && fail "$1"
    log "WARNING (known bug, reported): $1"
}
# A control byte leading a header value: must be refused by the proxy.
read -r status count how secs _ < <(printf 'GET /v2/ HTTP/1.1\r\n%s\r\nX-A: \001abc\r\nConnection: close\r\n\r\n' "$H" | probe 3)
assert_eq 400 "$status" "control byte leading a header value"
if ! grep -qa '"code":"UNSUPPORTED"' "$ANSWER"; then  # the proxy's own 400s say UNSUPPORTED
    known_bug "a header value starting with a control byte is forwarded (the registry, not the proxy, answered 400)"
fi
back_to_baseline "control byte leading a header value"
# Log injection: hostile User-Agents; every JSON line the proxy wrote must
# still be one JSON object.
printf 'GET /v2/ HTTP/1.1\r\n%s\r\nUser-Agent: x"},{"status":999,"x":"\\\r\nConnection: close\r\n\r\n' "$H" | probe 3 >/dev/null
printf 'GET /v2/ HTTP/1.1\r\n%s\r\nUser-Agent: caf\351 \377\376\r\nConnection: close\r\n\r\n' "$H" | probe 3 >/dev/null
printf 'GET /v2/ HTTP/1.1\r\n%s\r\nUser-Agent: a\0b\r\n\r\n' "$H" | probe 3 >/dev/null
back_to_baseline "hostile User-Agents"
sleep 0.5
log_check=$(python3 - "$RM_LOG" <<'EOF'
import json, sys
broken, not_utf8, lines = 0, 0, 0
for raw in open(sys.argv[1], "rb"):
    if not raw.startswith(b"{"):
        continue
    lines += 1
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        not_utf8 += 1
    try:
        obj = json.loads(raw.decode("utf-8", "surrogateescape"))
        if not isinstance(obj, dict) or obj.get("status") == 999:
            broken += 1
    except ValueError:
        broken += 1
print(lines, broken, not_utf8)
EOF
)
read -r json_lines json_broken json_not_utf8 <<<"$log_check"
log "access log: $json_lines JSON lines, $json_broken broken, $json_not_utf8 not UTF-8"
assert_eq 0 "$json_broken" "JSON log lines broken by hostile input"
if ((json_not_utf8 > 0)); then
    known_bug "$json_not_utf8 access-log line(s) carry raw non-UTF-8 bytes from a User-Agent (obs-text is not escaped)"
fi

# ---------------------------------------------------------------- what reaches an upstream
python3 "$TOOLS/misbehaving_upstream.py" "$E2E_TMP/echo.port" --log "$E2E_TMP/echo.log" &
register_pid $!
register_log "$E2E_TMP/echo.log"
wait_until 10 "echo upstream" test -s "$E2E_TMP/echo.port"
ECHO_PORT=$(cat "$E2E_TMP/echo.port")
MAIN_PORT=$RM_PORT MAIN_PID=$RM_PID
RM_UPSTREAM=http://127.0.0.1:$ECHO_PORT start_regmeter
read -r status count how secs _ < <(printf '%s\r\n' \
    "GET http://elsewhere.invalid:81/echo?a=1&_rm=18eb437950b449e9.0&b=2 HTTP/1.1" \
    "Host: $PROXY_HOSTPORT" \
    "Connection: keep-alive, X-Secret" \
    "Keep-Alive: timeout=5" \
    "TE: trailers" \
    "Trailer: X-T" \
    "Upgrade: h2c" \
    "Proxy-Authorization: Basic eDp5" \
    "Proxy-Connection: keep-alive" \
    "X-Secret: must-not-pass" \
    "X-Forwarded-For: 10.9.8.7" \
    "X-Forwarded-Host: evil.invalid" \
    "X-Forwarded-Proto: https" \
    "X-Kept: yes" \
    "" | probe 1.5)
assert_eq 200 "$status" "GET /echo through the proxy"
seen=$(tr -d '\r' <"$ANSWER" | sed -n '/^X-Echo: 1$/,$p' | sed '1,/^$/d')
log "the upstream saw: $(printf '%s' "$seen" | tr '\n' '|')"
assert_eq "GET /echo?a=1&b=2 HTTP/1.1" "$(printf '%s\n' "$seen" | head -n 1)" "request line upstream (origin form, no _rm)"
for name in Connection Keep-Alive TE Trailer Upgrade Proxy-Authorization Proxy-Connection X-Secret; do
    if printf '%s\n' "$seen" | grep -qi "^$name:"; then fail "hop-by-hop $name reached the upstream"; fi
done
printf '%s\n' "$seen" | grep -qx "Host: $PROXY_HOSTPORT" || fail "Host not kept"
printf '%s\n' "$seen" | grep -qx "X-Kept: yes" || fail "end-to-end header lost"
printf '%s\n' "$seen" | grep -qx "X-Forwarded-For: 10.9.8.7, 127.0.0.1" || fail "X-Forwarded-For not appended to"
printf '%s\n' "$seen" | grep -qx "X-Forwarded-Proto: http" || fail "X-Forwarded-Proto not ours"
printf '%s\n' "$seen" | grep -qx "X-Forwarded-Host: $PROXY_HOSTPORT" || fail "X-Forwarded-Host not ours"
assert_eq 1 "$(printf '%s\n' "$seen" | grep -ci '^X-Forwarded-Host:')" "X-Forwarded-Host fields upstream"
assert_eq 1 "$(printf '%s\n' "$seen" | grep -ci '^X-Forwarded-Proto:')" "X-Forwarded-Proto fields upstream"

# A redirect is the client's business: passed through, never followed.
code=$(curl -sS --max-time 10 -o /dev/null -D "$hdr" -w '%{http_code}' \
    "$PROXY_URL/redirect?to=http://127.0.0.1:$TRAP/v2/x/blobs/sha256:00")
assert_eq 307 "$code" "a 307 from the upstream"
assert_eq "http://127.0.0.1:$TRAP/v2/x/blobs/sha256:00" "$(header "$hdr" Location)" "307 Location passed through untouched"
sleep 0.3
assert_eq 0 "$(cat "$E2E_TMP/trap.count")" "connections to the redirect target"
is_running "$MAIN_PID" || fail "the first proxy died"
log "PASS"
