#!/usr/bin/env bash
# HTTP/1.1 details through the proxy: Expect: 100-continue, keep-alive reuse,
# HEAD without a body, Range, pipelining, CONNECT, absolute-form targets,
# malformed and oversized requests; then, against a raw upstream that shows
# what reached it: chunked trailers (checked, never relayed, in both
# directions), upstream status codes outside 100-599 (502, counted as 502),
# and --max-header-fields.
. "$(dirname "$0")/lib.sh"

start_registry
start_regmeter

# A blob to read, seeded straight into the registry.
BLOB=$E2E_TMP/blob.bin
random_file "$BLOB" 300K
SIZE=$(stat -c %s "$BLOB")
DIGEST=$(push_blob "$REGISTRY_URL" proto/blob "$BLOB") || fail "seeding a blob into the registry"
BLOB_URL=$PROXY_URL/v2/proto/blob/blobs/$DIGEST
R=$E2E_TMP/raw.json
rj() { json_get "$R" "$1"; } # expression on the last raw_send result

# ---------------------------------------------------------------- Expect: 100-continue
UP=$E2E_TMP/up.bin
random_file "$UP" 3M
UP_DIGEST=sha256:$(sha256_file "$UP")

# PATCH with Expect, then PUT ?digest= with an empty body.
loc=$(start_upload "$PROXY_URL" proto/expect) || fail "POST upload"
code=$(curl -sS --max-time 30 --expect100-timeout 10 -X PATCH -H 'Expect: 100-continue' \
    -H 'Content-Type: application/octet-stream' --data-binary "@$UP" -D "$E2E_TMP/e1.hdr" -o "$E2E_TMP/e1.body" \
    -w '%{http_code} %{time_total}' "$loc")
read -r code secs <<<"$code"
assert_eq 202 "$code" "PATCH with Expect: 100-continue ($(cat "$E2E_TMP/e1.body"))"
grep -q '^HTTP/1.1 100' "$E2E_TMP/e1.hdr" || fail "PATCH with Expect: no '100 Continue' reached the client (headers: $(tr -d '\r' <"$E2E_TMP/e1.hdr" | tr '\n' '|'))"
assert_eq "0-$((3 * 1024 * 1024 - 1))" "$(header "$E2E_TMP/e1.hdr" Range)" "Range after the PATCH"
loc=$(abs_url "$PROXY_URL" "$(header "$E2E_TMP/e1.hdr" Location)")
code=$(curl -sS --max-time 30 -X PUT -H 'Content-Type: application/octet-stream' --data-binary '' \
    -D "$E2E_TMP/e2.hdr" -o /dev/null -w '%{http_code}' "$(add_query "$loc" "digest=$UP_DIGEST")")
assert_eq 201 "$code" "PUT ?digest= closing the Expect PATCH upload"
assert_eq "$UP_DIGEST" "$(header "$E2E_TMP/e2.hdr" Docker-Content-Digest)" "Docker-Content-Digest of the Expect upload"
log "Expect: 100-continue PATCH ok (${secs}s)"

# Monolithic PUT with Expect.
random_file "$UP" 2M
UP_DIGEST=sha256:$(sha256_file "$UP")
loc=$(start_upload "$PROXY_URL" proto/expect) || fail "POST upload"
code=$(curl -sS --max-time 30 --expect100-timeout 10 -X PUT -H 'Expect: 100-continue' \
    -H 'Content-Type: application/octet-stream' -T "$UP" -D "$E2E_TMP/e3.hdr" -o "$E2E_TMP/e3.body" \
    -w '%{http_code}' "$(add_query "$loc" "digest=$UP_DIGEST")")
assert_eq 201 "$code" "monolithic PUT with Expect: 100-continue ($(cat "$E2E_TMP/e3.body"))"
grep -q '^HTTP/1.1 100' "$E2E_TMP/e3.hdr" || fail "PUT with Expect: no '100 Continue' reached the client"
assert_eq "$UP_DIGEST" "$(header "$E2E_TMP/e3.hdr" Docker-Content-Digest)" "Docker-Content-Digest of the Expect PUT"
assert_eq "$SIZE" "$(curl -sS -o /dev/null -w '%{size_download}' "$BLOB_URL")" "blob still readable"
assert_eq "${UP_DIGEST#sha256:}" "$(curl -sS "$PROXY_URL/v2/proto/expect/blobs/$UP_DIGEST" | sha256sum | awk '{print $1}')" \
    "read back the blob uploaded with Expect"

# Expect on an upload the registry rejects: the final 404 comes back (the
# client need not send its body), and the proxy stays usable.
random_file "$UP" 8M
code=$(curl -sS --max-time 30 --expect100-timeout 10 -X PATCH -H 'Expect: 100-continue' \
    -H 'Content-Type: application/octet-stream' --data-binary "@$UP" -o "$E2E_TMP/e4.body" -w '%{http_code}' \
    "$PROXY_URL/v2/proto/expect/blobs/uploads/00000000-0000-0000-0000-000000000000") || true
assert_eq 404 "$code" "PATCH with Expect to an unknown upload"
assert_contains BLOB_UPLOAD_ "$(cat "$E2E_TMP/e4.body")" "error body of the rejected PATCH"
assert_eq 200 "$(http_code "$PROXY_URL/v2/")" "/v2/ after the rejected Expect upload"

# ---------------------------------------------------------------- keep-alive
before=$(metric0 registry_http_requests_total handler=base method=get code=200)
conns=$(curl -sS --max-time 30 -o /dev/null -o /dev/null -o /dev/null -w '%{http_code}/%{num_connects} ' \
    "$PROXY_URL/v2/" "$PROXY_URL/v2/" "$PROXY_URL/v2/")
assert_eq "200/1 200/0 200/0 " "$conns" "three GETs in one curl: status/new connections each"
wait_metric 5 $((before + 3)) registry_http_requests_total handler=base method=get code=200
# Different methods on one reused connection (curl -v says so).
curl -sS -v --max-time 30 -o /dev/null -o /dev/null "$BLOB_URL" "$PROXY_URL/v2/proto/blob/tags/list" \
    2>"$E2E_TMP/ka.log" || fail "curl keep-alive pair failed"
grep -qi 're-using existing connection' "$E2E_TMP/ka.log" || fail "curl did not reuse the connection: $(grep -i connect "$E2E_TMP/ka.log")"

# ---------------------------------------------------------------- HEAD
code=$(curl -sS -I -D "$E2E_TMP/h.hdr" -o /dev/null -w '%{http_code}' "$BLOB_URL")
assert_eq 200 "$code" "HEAD blob"
assert_eq "$SIZE" "$(header "$E2E_TMP/h.hdr" Content-Length)" "HEAD blob Content-Length"
assert_eq "$DIGEST" "$(header "$E2E_TMP/h.hdr" Docker-Content-Digest)" "HEAD blob Docker-Content-Digest"
# On the wire: HEAD then GET /v2/ on one connection. A body after the HEAD
# response would show up as a garbled second response.
printf 'HEAD /v2/proto/blob/blobs/%s HTTP/1.1\r\nHost: %s\r\n\r\nGET /v2/ HTTP/1.1\r\nHost: %s\r\n\r\n' \
    "$DIGEST" "$PROXY_HOSTPORT" "$PROXY_HOSTPORT" | raw_send "$R" 2 --head 0
assert_eq None "$(rj 'j["error"]')" "raw HEAD + GET"
assert_eq "200 200" "$(rj '" ".join(str(r["status"]) for r in j["responses"])')" "raw HEAD + GET statuses"
assert_eq "$SIZE" "$(rj '[v for k, v in j["responses"][0]["headers"] if k.lower() == "content-length"][0]')" "raw HEAD Content-Length"
assert_eq '{}' "$(rj 'j["responses"][1]["body_head"]')" "GET /v2/ body right after the HEAD"
assert_eq 0 "$(rj 'j["extra"]')" "stray bytes after the responses"

# ---------------------------------------------------------------- Range
code=$(curl -sS -r 0-99 -D "$E2E_TMP/r.hdr" -o "$E2E_TMP/r.body" -w '%{http_code}' "$BLOB_URL")
assert_eq 206 "$code" "Range: bytes=0-99"
assert_eq 100 "$(stat -c %s "$E2E_TMP/r.body")" "bytes received for Range 0-99"
cmp -s -n 100 "$BLOB" "$E2E_TMP/r.body" || fail "Range 0-99 body differs from the blob's first 100 bytes"
assert_eq "bytes 0-99/$SIZE" "$(header "$E2E_TMP/r.hdr" Content-Range)" "Content-Range"
code=$(curl -sS -r 1000-1999 -o "$E2E_TMP/r2.body" -w '%{http_code}' "$BLOB_URL")
assert_eq 206 "$code" "Range: bytes=1000-1999"
assert_eq 1000 "$(stat -c %s "$E2E_TMP/r2.body")" "bytes received for Range 1000-1999"
cmp -s -i 1000:0 -n 1000 "$BLOB" "$E2E_TMP/r2.body" || fail "Range 1000-1999 body differs"

# ---------------------------------------------------------------- pipelining
req() { printf '%s %s HTTP/1.1\r\nHost: %s\r\n\r\n' "$1" "$2" "$PROXY_HOSTPORT"; }
{ req GET /v2/; req GET /v2/; req GET /v2/; } | raw_send "$R" 3
assert_eq None "$(rj 'j["error"]')" "three pipelined GET /v2/"
assert_eq "200 200 200" "$(rj '" ".join(str(r["status"]) for r in j["responses"])')" "three pipelined GET /v2/ statuses"
# Order: three different answers must come back in request order.
{ req GET "/v2/proto/blob/manifests/nope"; req GET "/v2/proto/blob/blobs/$DIGEST"; req GET /v2/; } | raw_send "$R" 3
assert_eq None "$(rj 'j["error"]')" "pipelined manifest 404, blob, /v2/"
assert_eq "404 200 200" "$(rj '" ".join(str(r["status"]) for r in j["responses"])')" "pipelined statuses in order"
assert_eq "${DIGEST#sha256:}" "$(rj 'j["responses"][1]["body_sha256"]')" "pipelined blob body"
assert_eq "$SIZE" "$(rj 'j["responses"][1]["body_len"]')" "pipelined blob length"
assert_contains MANIFEST_UNKNOWN "$(rj 'j["responses"][0]["body_head"]')" "pipelined 404 body"

# ---------------------------------------------------------------- absolute-form target
# A trap listener: any connection to it means the proxy followed the URL.
python3 "$TOOLS/rawhttp.py" trap "$E2E_TMP/trap.port" "$E2E_TMP/trap.count" &
register_pid $!
wait_until 10 "trap listener" test -s "$E2E_TMP/trap.port"
TRAP=$(cat "$E2E_TMP/trap.port")
printf 'GET http://127.0.0.1:%s/v2/ HTTP/1.1\r\nHost: 127.0.0.1:%s\r\n\r\n' "$TRAP" "$TRAP" | raw_send "$R" 1
assert_eq None "$(rj 'j["error"]')" "absolute-form GET"
assert_eq 200 "$(rj 'j["responses"][0]["status"]')" "absolute-form GET status"
assert_eq registry/2.0 "$(rj '[v for k, v in j["responses"][0]["headers"] if k.lower() == "docker-distribution-api-version"][0]')" \
    "absolute-form GET answered by the registry"
sleep 0.5
assert_eq 0 "$(cat "$E2E_TMP/trap.count")" "connections made to the host named in the absolute-form target"

# ---------------------------------------------------------------- CONNECT
if proxy_mode; then
    printf 'CONNECT 127.0.0.1:%s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\n\r\n' "$TRAP" "$TRAP" | raw_send "$R" 1
    assert_eq None "$(rj 'j["error"]')" "CONNECT"
    assert_eq 405 "$(rj 'j["responses"][0]["status"]')" "CONNECT status"
    assert_eq 0 "$(cat "$E2E_TMP/trap.count")" "connections made to the CONNECT target"
fi

# ---------------------------------------------------------------- malformed / oversized
printf '\x01\x02garbage\r\n\r\n' | raw_send "$R" 1
assert_eq None "$(rj 'j["error"]')" "malformed request line: a response"
assert_match '^4[0-9][0-9]$' "$(rj 'j["responses"][0]["status"]')" "malformed request line status"
assert_eq 200 "$(http_code "$PROXY_URL/v2/")" "/v2/ after a malformed request"

# A TLS ClientHello on the plain-HTTP port (skopeo and docker try https first
# and fall back to http only once that fails) must be refused at once, like
# distribution does, not left hanging until the header timeout.
read -r secs _ < <(python3 "$TOOLS/tls_hello.py" "$RM_PORT")
log "TLS ClientHello refused after ${secs}s"
awk -v s="$secs" 'BEGIN { exit !(s < 2) }' \
    || fail "a TLS ClientHello to the plain-HTTP listener was left hanging ${secs}s (expected an immediate 400/close)"
assert_eq 200 "$(http_code "$PROXY_URL/v2/")" "/v2/ after a TLS ClientHello"

python3 -c 'import sys
sys.stdout.write("GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: " + "a" * (2 << 20) + "\r\n\r\n")' | raw_send "$R" 1
assert_eq None "$(rj 'j["error"]')" "2 MiB header: a response"
assert_match '^4[0-9][0-9]$' "$(rj 'j["responses"][0]["status"]')" "2 MiB header status"
assert_eq 200 "$(http_code "$PROXY_URL/v2/")" "/v2/ after an oversized header"

# ---------------------------------------------------------------- a raw upstream
# RAW_LOG gets every byte the upstream receives. By repository name:
#   statusNNN   answers "HTTP/1.1 NNN Odd" (NNN: any three digits)
#   capture     reads the request body raw (Content-Length or chunked, its
#               trailer section included) and answers 202 with those bytes
#   trailer-ok  answers a chunked body with a valid trailer field
#   trailer-bad answers a chunked body whose "trailer" is a second response
RAW_UP=$E2E_TMP/raw_upstream.py
RAW_LOG=$E2E_TMP/raw_upstream.bytes
cat >"$RAW_UP" <<'PYEOF'
import os, socket, sys, threading
portfile, rawlog = sys.argv[1], sys.argv[2]
lock = threading.Lock()
def serve(c):
    buf = b""
    def more():
        nonlocal buf
        d = c.recv(65536)
        if not d:
            raise EOFError
        with lock, open(rawlog, "ab") as f:
            f.write(d)
        buf += d
    def line():
        nonlocal buf
        while b"\r\n" not in buf:
            more()
        l, buf = buf.split(b"\r\n", 1)
        return l
    def take(n):
        nonlocal buf
        while len(buf) < n:
            more()
        d, buf = buf[:n], buf[n:]
        return d
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                more()
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            target = lines[0].split(" ")[1]
            fields = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
            body = b""
            if "chunked" in fields.get("transfer-encoding", ""):
                while True:
                    size_line = line()
                    body += size_line + b"\r\n"
                    size = int(size_line.split(b";")[0], 16)
                    if size == 0:
                        while True:
                            t = line()
                            body += t + b"\r\n"
                            if t == b"":
                                break
                        break
                    body += take(size + 2)
            else:
                body = take(int(fields.get("content-length", "0")))
            repo = target.split("/")[2] if target.startswith("/v2/") else ""
            if repo.startswith("status"):
                c.sendall(b"HTTP/1.1 " + repo[6:].encode() + b" Odd\r\nContent-Length: 0\r\n\r\n")
            elif repo == "capture":
                c.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            elif repo == "trailer-ok":
                c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Sum: 1\r\n\r\n")
            elif repo == "trailer-bad":
                c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"
                          b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            else:
                c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}")
    except (EOFError, OSError):
        pass
    c.close()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(64)
open(portfile + ".tmp", "w").write("%d\n" % s.getsockname()[1])
os.replace(portfile + ".tmp", portfile)
while True:
    conn, _ = s.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
PYEOF
python3 "$RAW_UP" "$E2E_TMP/raw.port" "$RAW_LOG" &
register_pid $!
wait_until 10 "raw upstream" test -s "$E2E_TMP/raw.port"
MAIN_PORT=$RM_PORT
RM_UPSTREAM=http://127.0.0.1:$(cat "$E2E_TMP/raw.port") start_regmeter --max-header-fields 5
H="Host: $PROXY_HOSTPORT"

# exchange FILE: stdin to the proxy, everything it answers (until it closes,
# 5 s at most) to FILE; prints "closed" or "open".
EXCHANGE=$E2E_TMP/exchange.py
cat >"$EXCHANGE" <<'PYEOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(sys.stdin.buffer.read())
data, how, end = b"", "open", time.monotonic() + 5
while time.monotonic() < end:
    try:
        d = s.recv(65536)
    except socket.timeout:
        break
    except OSError:
        how = "closed"
        break
    if not d:
        how = "closed"
        break
    data += d
open(sys.argv[2], "wb").write(data)
print(how)
PYEOF
exchange() { python3 "$EXCHANGE" "$RM_PORT" "$1"; }
OUT=$E2E_TMP/exchange.bin
body_of() { python3 -c 'import sys; d = open(sys.argv[1], "rb").read(); print(repr(d.split(b"\r\n\r\n", 1)[1]))' "$1"; }
status_of() { head -c 12 "$1" | cut -d' ' -f2; }
DIGEST=sha256:$(printf 'a%.0s' {1..64})

# Request trailers: checked, then dropped; the upstream gets "0\r\n\r\n".
printf 'PATCH /v2/capture/blobs/uploads/u1 HTTP/1.1\r\n%s\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3;e=1\r\nabc\r\n0\r\nX-Checksum: sha256:ab\r\n\r\n' "$H" |
    exchange "$OUT" >/dev/null
assert_eq 202 "$(status_of "$OUT")" "chunked PATCH with a trailer"
assert_eq "b'3;e=1\\r\\nabc\\r\\n0\\r\\n\\r\\n'" "$(body_of "$OUT")" \
    "the request body as the upstream received it (trailer dropped, the rest byte for byte)"
# Trailer fields count against --max-header-fields with the head's (Host,
# Transfer-Encoding, Connection: 3 of 5): two more fit, a third does not.
TWO=$'T1: 1\r\nT2: 2\r\n'
printf 'PATCH /v2/capture/blobs/uploads/u2 HTTP/1.1\r\n%s\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n%s\r\n' "$H" "$TWO" |
    exchange "$OUT" >/dev/null
assert_eq 202 "$(status_of "$OUT")" "two trailer fields within --max-header-fields 5"
printf 'PATCH /v2/capture/blobs/uploads/u3 HTTP/1.1\r\n%s\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n%sT3: 3\r\n\r\n' "$H" "$TWO" |
    exchange "$OUT" >/dev/null
assert_eq 400 "$(status_of "$OUT")" "three trailer fields over --max-header-fields 5"
# A second request smuggled as a trailer never reaches the upstream.
how=$(printf 'PATCH /v2/capture/blobs/uploads/u4 HTTP/1.1\r\n%s\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nGET /v2/SMUGGLED HTTP/1.1\r\nHost: h\r\n\r\n' "$H" |
    exchange "$OUT")
assert_eq 400 "$(status_of "$OUT")" "a request smuggled as a trailer"
assert_eq closed "$how" "the connection after the smuggled trailer"
sleep 0.3
if grep -qa SMUGGLED "$RAW_LOG"; then fail "the smuggled trailer reached the upstream"; fi
log "request trailers: dropped when valid, refused otherwise; nothing smuggled upstream"

# Response trailers: dropped too; a malformed one cuts the client connection.
printf 'GET /v2/trailer-ok/blobs/%s HTTP/1.1\r\n%s\r\nConnection: close\r\n\r\n' "$DIGEST" "$H" | exchange "$OUT" >/dev/null
assert_eq 200 "$(status_of "$OUT")" "chunked answer with a trailer"
assert_eq "b'2\\r\\nok\\r\\n0\\r\\n\\r\\n'" "$(body_of "$OUT")" "the answer's body as the client got it (trailer dropped)"
how=$(printf 'GET /v2/trailer-bad/blobs/%s HTTP/1.1\r\n%s\r\n\r\n' "$DIGEST" "$H" | exchange "$OUT")
assert_eq closed "$how" "the client connection after a malformed response trailer"
# Closed before or after the head reached the client (as for any malformed
# response body): never a second response, never a completed body.
assert_le 1 "$(grep -ac '^HTTP/1.1 ' "$OUT")" "responses the client saw (the 'trailer' must not become a second one)"
python3 -c 'import sys; sys.exit(b"0\r\n\r\n" in open(sys.argv[1], "rb").read())' "$OUT" ||
    fail "the cut answer was passed off as complete"
log "response trailers: dropped when valid; a bad one closes the client connection"

# Status codes outside 100-599: 502 with the registry-style JSON error,
# counted as 502 (not as 499, the client closing).
for code in 000 099 600 999; do
    before=$(metric0 registry_http_requests_total code=502 handler=manifest method=get)
    before499=$(metric0 registry_http_requests_total code=499)
    got=$(curl -sS --max-time 10 -o "$OUT" -w '%{http_code}' "$PROXY_URL/v2/status$code/manifests/t" || true)
    assert_eq 502 "$got" "upstream status $code"
    assert_contains '"errors"' "$(cat "$OUT")" "upstream status $code: JSON error body"
    wait_metric 5 $((before + 1)) registry_http_requests_total code=502 handler=manifest method=get
    assert_eq "$before499" "$(metric0 registry_http_requests_total code=499)" "upstream status $code counted as 499"
done
for code in 204 599; do
    assert_eq "$code" "$(http_code "$PROXY_URL/v2/status$code/manifests/t")" "upstream status $code relayed"
done
log "upstream status codes outside 100-599: 502, counted as 502"

# --max-header-fields 5: five fields pass, six get 431.
printf 'GET /v2/x/manifests/t HTTP/1.1\r\n%s\r\nA: 1\r\nB: 2\r\nC: 3\r\nConnection: close\r\n\r\n' "$H" | exchange "$OUT" >/dev/null
assert_eq 404 "$(status_of "$OUT")" "five header fields with --max-header-fields 5"
printf 'GET /v2/x/manifests/t HTTP/1.1\r\n%s\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nConnection: close\r\n\r\n' "$H" | exchange "$OUT" >/dev/null
assert_eq 431 "$(status_of "$OUT")" "six header fields with --max-header-fields 5"
is_running "$RM_PID" || fail "the proxy in front of the raw upstream died"
assert_eq 200 "$(http_code "http://127.0.0.1:$MAIN_PORT/v2/")" "the first proxy still answers"
log "PASS"
