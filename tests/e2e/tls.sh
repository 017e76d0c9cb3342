#!/usr/bin/env bash
# TLS on both hops, end to end, with a throwaway CA (tests/e2e/tls_lib.sh):
#  0. bad TLS configuration: exit 2 with one line naming the flag
#  1. docker-registry over https, regmeter terminating TLS and verifying the
#     registry (--upstream https://127.0.0.1:P --upstream-ca): skopeo push and
#     pull of a random multi-layer image with verification on; identical blobs
#     and manifest digest; skopeo inspect; skopeo without the CA is refused
#  2. curl without the CA is refused (exit 60), with it gets 200; the refused
#     handshake is counted in regmeter_tls_handshake_errors_total{side="client"};
#     a plain-HTTP request to the TLS port gets a plain-text 400 and is counted
#     in regmeter_rejected_connections_total{reason="http_on_tls_port"}; the
#     proxy lives on; keep-alive over TLS; stalled handshakes / request heads
#     are closed
#  3. untrusted upstream certificate -> 502 JSON with a generic message, the
#     certificate error in the log, the upstream counter; a certificate without the
#     upstream's IP in its SAN -> 502 (name check); https://localhost upstream
#     (SNI + DNS name check) -> 200; upstream TLS keep-alive reused, and an
#     idle connection the upstream (nginx, keepalive_timeout 1s) closed is not
#     reused for a POST/PATCH/PUT; --upstream-insecure -> 200 + warning
#  4. 1 GiB random blob through TLS on both hops: POST -> chunked PATCH ->
#     PUT ?digest= -> GET back; same sha256; regmeter VmHWM < 64 MiB
#  6. mTLS (--tls-client-ca): no client cert / a foreign client cert refused,
#     a client cert signed by the CA gets 200
#  7. metrics port over TLS; promtool check metrics passes on it
# (5, SIGHUP reload during a download, is tests/e2e/tls_reload.sh.)
. "$(dirname "$0")/tls_lib.sh"
require_proxy

SIZE=1073741824
# Sanitized builds carry shadow memory: tests/sanitize.sh raises the bound.
RSS_LIMIT_KIB=${E2E_RSS_LIMIT_KIB:-$((64 * 1024))}
mb_s() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }

tls_setup_pki
# A second leaf for the same names (key-mismatch check), a leaf without the IP
# SAN (upstream name check), a client certificate, and a foreign CA + client.
tls_make_leaf "$TLS_DIR" other 1002 server || fail "making a second leaf"
tls_make_leaf "$TLS_DIR" dnsonly 1003 server DNS:localhost || fail "making a DNS-only leaf"
tls_make_leaf "$TLS_DIR" client 2001 client DNS:e2e-client || fail "making a client certificate"
tls_make_ca "$E2E_TMP/foreign" || fail "making a foreign CA"
tls_make_leaf "$E2E_TMP/foreign" client 3001 client DNS:e2e-client || fail "making a foreign client certificate"

# ================================================================ 0. bad config
log "--- 0. bad TLS configuration"
bad() { # description expected-substring args...
    local what=$1 needle=$2 rc=0
    shift 2
    timeout 10 "$REGMETER" --listen "127.0.0.1:$(free_port)" --metrics-listen "127.0.0.1:$(free_port)" \
        --upstream http://127.0.0.1:9 "$@" >"$E2E_TMP/bad.out" 2>"$E2E_TMP/bad.err" || rc=$?
    assert_eq 2 "$rc" "exit status for $what"
    assert_eq 1 "$(wc -l <"$E2E_TMP/bad.err")" "stderr lines for $what: [$(cat "$E2E_TMP/bad.err")]"
    assert_contains "$needle" "$(cat "$E2E_TMP/bad.err")" "stderr for $what"
    log "  $what: $(cat "$E2E_TMP/bad.err")"
}
bad "--tls-cert without --tls-key" "regmeter: --tls-cert: needs --tls-key too" --tls-cert "$TLS_CERT"
bad "--tls-key without --tls-cert" "regmeter: --tls-key: needs --tls-cert too" --tls-key "$TLS_KEY"
bad "a key that does not match the certificate" "regmeter: --tls-key $TLS_DIR/other.key: " --tls-cert "$TLS_CERT" --tls-key "$TLS_DIR/other.key"
printf 'not a certificate\n' >"$E2E_TMP/garbage.pem"
bad "a certificate file that is not PEM" "regmeter: --tls-cert $E2E_TMP/garbage.pem: " --tls-cert "$E2E_TMP/garbage.pem" --tls-key "$TLS_KEY"
bad "a missing certificate file" "regmeter: --tls-cert: cannot read '$E2E_TMP/nonexistent.crt'" --tls-cert "$E2E_TMP/nonexistent.crt" --tls-key "$TLS_KEY"
bad "--metrics-tls-cert without --metrics-tls-key" "regmeter: --metrics-tls-cert: needs --metrics-tls-key too" --metrics-tls-cert "$TLS_CERT"
bad "--tls-client-ca without --tls-cert" "regmeter: --tls-client-ca: needs --tls-cert" --tls-client-ca "$TLS_CA"

# ================================================================ 1. skopeo, both hops
log "--- 1. skopeo push/pull with TLS on both hops"
start_registry_tls
start_regmeter_tls --upstream-ca "$TLS_CA"
MAIN_PID=$RM_PID MAIN_URL=$PROXY_URL MAIN_HOSTPORT=$PROXY_HOSTPORT MAIN_METRICS=$METRICS_URL MAIN_LOG=$RM_LOG
grep -q "listening on https://127.0.0.1:$RM_PORT, upstream https://127.0.0.1:$REGISTRY_PORT" "$RM_LOG" ||
    fail "start log line does not say https on both hops: $(cat "$RM_LOG")"

CERTS=$E2E_TMP/certs.d
mkdir -p "$CERTS"
cp "$TLS_CA" "$CERTS/ca.crt"
REPO=tls/app
IMG=$E2E_TMP/img
OUT=$E2E_TMP/out
make_image "$IMG" v1 4K 2M 12M 300K
MANIFEST=$(json_get "$IMG.json" 'j["manifest"]')
mapfile -t BLOBS < <(json_get "$IMG.json" 'sorted(j["blobs"])')
log "image: manifest $MANIFEST, ${#BLOBS[@]} blobs (config + layers)"

# Verification really is on: without the CA skopeo refuses the proxy.
if skopeo_ copy --dest-cert-dir "$E2E_TMP/empty-certs" "oci:$IMG:v1" "docker://$MAIN_HOSTPORT/$REPO:v0" \
    >"$E2E_TMP/push-noca.log" 2>&1; then
    fail "skopeo pushed through the TLS proxy without trusting its CA"
fi
assert_contains "certificate signed by unknown authority" "$(cat "$E2E_TMP/push-noca.log")" "skopeo error without the CA"

t0=$(now_ms)
skopeo_ copy --dest-cert-dir "$CERTS" "oci:$IMG:v1" "docker://$MAIN_HOSTPORT/$REPO:v1" >"$E2E_TMP/push.log" 2>&1 ||
    { cat "$E2E_TMP/push.log" >&2; fail "skopeo push through the TLS proxy failed"; }
total=$(json_get "$IMG.json" 'sum(j["blobs"].values())')
figure "tls_skopeo_push_mb_s=$(mbps "$total" $(($(now_ms) - t0)))"

skopeo_ inspect --cert-dir "$CERTS" "docker://$MAIN_HOSTPORT/$REPO:v1" >"$E2E_TMP/inspect.json" ||
    fail "skopeo inspect through the TLS proxy failed"
assert_eq "$MANIFEST" "$(json_get "$E2E_TMP/inspect.json" 'j["Digest"]')" "skopeo inspect Digest"
assert_eq "$(json_get "$IMG.json" 'j["layers"]')" "$(json_get "$E2E_TMP/inspect.json" 'j["Layers"]')" "skopeo inspect Layers"
skopeo_ inspect --cert-dir "$CERTS" --raw "docker://$MAIN_HOSTPORT/$REPO:v1" >"$E2E_TMP/raw.json" ||
    fail "skopeo inspect --raw through the TLS proxy failed"
assert_eq "$MANIFEST" "sha256:$(sha256_file "$E2E_TMP/raw.json")" "sha256 of the raw manifest"

t0=$(now_ms)
skopeo_ copy --src-cert-dir "$CERTS" "docker://$MAIN_HOSTPORT/$REPO:v1" "oci:$OUT:v1" >"$E2E_TMP/pull.log" 2>&1 ||
    { cat "$E2E_TMP/pull.log" >&2; fail "skopeo pull through the TLS proxy failed"; }
figure "tls_skopeo_pull_mb_s=$(mbps "$total" $(($(now_ms) - t0)))"
assert_eq "$MANIFEST" "$(json_get "$OUT/index.json" 'j["manifests"][0]["digest"]')" "pulled manifest digest"
for digest in "$MANIFEST" "${BLOBS[@]}"; do
    f=$OUT/blobs/sha256/${digest#sha256:}
    [[ -f "$f" ]] || fail "pulled layout lacks blob $digest"
    assert_eq "${digest#sha256:}" "$(sha256_file "$f")" "sha256 of pulled blob $digest"
done
# The content is in the (TLS) registry itself, and went through the proxy.
assert_eq 200 "$(http_code "$REGISTRY_URL/v2/$REPO/manifests/$MANIFEST" -H 'Accept: application/vnd.oci.image.manifest.v1+json')" \
    "manifest by digest, straight from the TLS registry"
assert_eq 1 "$(metric registry_http_requests_total handler=manifest method=put code=201)" "manifest PUT counted by the proxy"
nblobs=$(json_get "$IMG.json" 'len(j["blobs"])')
assert_eq "$nblobs" "$(metric registry_http_requests_total handler=blob_upload_chunk method=put code=201)" "upload PUT 201 count"
gets=$(metric registry_http_requests_total handler=blob method=get code=200)
(( gets >= nblobs )) || fail "blob GET 200 count $gets < $nblobs"
assert_eq 0 "$(metric regmeter_tls_handshake_errors_total side=upstream)" "upstream handshake errors with the right CA"

# ================================================================ 2. client side refusals
log "--- 2. clients without the CA, plain HTTP to the TLS port"
before=$(metric0 regmeter_tls_handshake_errors_total side=client)
rc=0
env -u CURL_CA_BUNDLE curl -sS -o /dev/null --max-time 10 "$MAIN_URL/v2/" 2>"$E2E_TMP/noca.err" || rc=$?
assert_eq 60 "$rc" "curl exit status without the CA ($(head -1 "$E2E_TMP/noca.err"))"
assert_eq 200 "$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$TLS_CA" "$MAIN_URL/v2/")" "curl --cacert GET /v2/"
wait_metric 5 $((before + 1)) regmeter_tls_handshake_errors_total side=client

# A plain HTTP request to the TLS port: a plain-text 400 saying so (as Go's
# servers answer), counted as a rejected connection, not a handshake error.
out=$(curl -sS -o "$E2E_TMP/plain.body" -w '%{http_code}' --max-time 10 "http://$MAIN_HOSTPORT/v2/" 2>"$E2E_TMP/plain.err") ||
    fail "curl plain HTTP to the TLS port: $(cat "$E2E_TMP/plain.err")"
assert_eq 400 "$out" "HTTP status of a plain request to the TLS port"
assert_eq "Client sent an HTTP request to an HTTPS server." "$(cat "$E2E_TMP/plain.body")" "its body"
wait_metric 5 1 regmeter_rejected_connections_total reason=http_on_tls_port
assert_eq $((before + 1)) "$(metric regmeter_tls_handshake_errors_total side=client)" "client handshake errors after plain HTTP"
# A client that connects and hangs up before any handshake byte is not an error.
python3 -c 'import socket; s = socket.create_connection(("127.0.0.1", '"${MAIN_HOSTPORT#*:}"')); s.close()'
# openssl s_client that does not trust the CA and insists on verification.
out=$(tls_probe "$MAIN_HOSTPORT" -verify_return_error -CAfile /etc/ssl/certs/ca-certificates.crt) && fail "s_client verified the proxy against the system store"
assert_contains "unable to get local issuer certificate" "$out" "s_client verify error"
wait_metric 5 $((before + 2)) regmeter_tls_handshake_errors_total side=client
# s_client with the CA: verified, TLS 1.3 or 1.2, ALPN not required.
out=$(tls_probe "$MAIN_HOSTPORT" -verify_return_error -CAfile "$TLS_CA") || fail "s_client with the CA failed: $out"
assert_contains "Verify return code: 0 (ok)" "$out" "s_client verification with the CA"
out=$(tls_probe "$MAIN_HOSTPORT" -CAfile "$TLS_CA" -alpn http/1.1)
assert_contains "ALPN protocol: http/1.1" "$out" "ALPN http/1.1"
# TLS 1.1 is refused.
tls_probe "$MAIN_HOSTPORT" -CAfile "$TLS_CA" -tls1_1 >/dev/null && fail "the proxy accepted TLS 1.1"
wait_metric 5 $((before + 3)) regmeter_tls_handshake_errors_total side=client
is_running "$MAIN_PID" || fail "regmeter died after the refused handshakes"
assert_eq 200 "$(http_code "$MAIN_URL/v2/")" "GET /v2/ after the refused handshakes"
figure "tls_client_handshake_errors=$(metric regmeter_tls_handshake_errors_total side=client)"

# Keep-alive over TLS: two requests, one connection.
out=$(curl -sS --max-time 10 -o /dev/null -o /dev/null -w '%{http_code} %{num_connects}\n' "$MAIN_URL/v2/" "$MAIN_URL/v2/")
assert_eq $'200 1\n200 0' "$out" "two GETs on one TLS connection (status, new connections)"

# Stalled clients are closed: a partial ClientHello (bounded by --idle-timeout;
# the handshake is not under --header-timeout), and a partial request head
# after the handshake (408 at --header-timeout, as in plain HTTP).
start_regmeter_tls --upstream-ca "$TLS_CA" --header-timeout 2 --idle-timeout 8
python3 - "$RM_PORT" "$TLS_CA" >"$E2E_TMP/stall.out" <<'PY' || fail "stalled-client probe: $(cat "$E2E_TMP/stall.out")"
import socket, ssl, sys, time
port, ca = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"\x16\x03\x01\x02\x00\x01")          # a ClientHello that never ends
s.settimeout(15); t = time.time()
try:
    data = s.recv(100)
except OSError:
    data = b""
took = time.time() - t
print(f"partial ClientHello: closed after {took:.1f}s")
if took >= 13: sys.exit("a stalled TLS handshake was still open after 13 s (--idle-timeout 8)")
ctx = ssl.create_default_context(cafile=ca)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")    # head never finished
s.settimeout(15); t = time.time()
data, took, closed = b"", None, None
try:
    while True:
        chunk = s.recv(4096)
        if not chunk:
            closed = time.time() - t
            break
        data += chunk
        if took is None and b"\r\n\r\n" in data:
            took = time.time() - t
except OSError:
    closed = time.time() - t
status = data.split(b"\r\n")[0].decode(errors="replace")
print(f"partial head over TLS: [{status}] after {took or -1:.1f}s, closed after {closed or -1:.1f}s")
if not data.startswith(b"HTTP/1.1 408"): sys.exit("no 408 for a stalled head over TLS")
if took >= 6: sys.exit("the 408 came after 6 s (--header-timeout 2, --idle-timeout 8)")
if closed is None or closed >= 13: sys.exit("the connection was not closed within 13 s after the 408")
PY
log "  $(paste -sd ';' "$E2E_TMP/stall.out")"
is_running "$RM_PID" || fail "regmeter died on stalled TLS clients"
stop_service "$RM_PID"

# ================================================================ 3. upstream verification
log "--- 3. upstream certificate verification"
# (a) the registry's CA is not trusted (system store only)
start_regmeter_tls
UNTRUSTED_LOG=$RM_LOG
code=$(curl -sS -D "$E2E_TMP/u.hdr" -o "$E2E_TMP/u.body" -w '%{http_code}' --max-time 20 "$PROXY_URL/v2/")
body=$(cat "$E2E_TMP/u.body")
assert_eq 502 "$code" "GET /v2/ via an untrusted upstream (body: $body)"
assert_match '^application/json' "$(header "$E2E_TMP/u.hdr" Content-Type)" "Content-Type of the 502"
assert_eq UNAVAILABLE "$(json_get "$E2E_TMP/u.body" 'j["errors"][0]["code"]')" "error code of the 502"
# The client learns that the registry is unavailable, not why: certificate
# details (and addresses) are for the operator's log.
assert_eq "upstream registry unavailable" "$(json_get "$E2E_TMP/u.body" 'j["errors"][0]["message"]')" "502 message"
wait_until 5 "log line about the upstream verification" log_has "$RM_LOG" \
    'certificate verification failed: unable to get local issuer certificate'
log "  502 body: $body"
log "  log: $(grep -m1 'certificate verification failed' "$RM_LOG")"
n=$(metric regmeter_tls_handshake_errors_total side=upstream)
(( n >= 1 )) || fail "regmeter_tls_handshake_errors_total{side=upstream} is $n after the failed verification"
assert_eq 0 "$(metric regmeter_tls_handshake_errors_total side=client)" "client handshake errors on the untrusted-upstream instance"
assert_eq 1 "$(metric registry_http_requests_total handler=base method=get code=502)" "the 502 is counted as such"
# A blob GET fails the same way, and the proxy stays up.
assert_eq 502 "$(http_code "$PROXY_URL/v2/$REPO/blobs/${BLOBS[0]}")" "blob GET via an untrusted upstream"
is_running "$RM_PID" || fail "regmeter died on an untrusted upstream"
stop_service "$RM_PID"

# (b) a registry certificate from the trusted CA but without IP:127.0.0.1 in its SAN
MAIN_REGISTRY_URL=$REGISTRY_URL MAIN_REGISTRY_PID=$REGISTRY_PID MAIN_REGISTRY_PORT=$REGISTRY_PORT
DNS_PORT=$(free_port)
REGISTRY_TLS_CERT=$TLS_DIR/dnsonly.crt REGISTRY_TLS_KEY=$TLS_DIR/dnsonly.key start_registry_tls "$DNS_PORT"
DNS_REGISTRY_PID=$REGISTRY_PID
RM_UPSTREAM=https://127.0.0.1:$DNS_PORT start_regmeter_tls --upstream-ca "$TLS_CA"
code=$(curl -sS -o "$E2E_TMP/m.body" -w '%{http_code}' --max-time 20 "$PROXY_URL/v2/")
assert_eq 502 "$code" "GET /v2/ via an upstream whose certificate lacks the IP ($(cat "$E2E_TMP/m.body"))"
assert_eq "upstream registry unavailable" "$(json_get "$E2E_TMP/m.body" 'j["errors"][0]["message"]')" \
    "502 message (IP mismatch): no detail"
wait_until 5 "log line naming the IP mismatch" log_has "$RM_LOG" 'certificate verification failed: IP address mismatch'
stop_service "$RM_PID"
# (c) the same registry by name: SNI + DNS name check pass
RM_UPSTREAM=https://localhost:$DNS_PORT start_regmeter_tls --upstream-ca "$TLS_CA"
assert_eq 200 "$(http_code "$PROXY_URL/v2/")" "GET /v2/ via https://localhost upstream (name in the certificate)"
assert_eq 0 "$(metric regmeter_tls_handshake_errors_total side=upstream)" "upstream handshake errors by name"
stop_service "$RM_PID"
stop_service "$DNS_REGISTRY_PID"
REGISTRY_URL=$MAIN_REGISTRY_URL REGISTRY_PID=$MAIN_REGISTRY_PID REGISTRY_PORT=$MAIN_REGISTRY_PORT

# (e) upstream keep-alive over TLS, through an nginx that closes idle
# connections after 1 s (close_notify + FIN, as most https front ends do):
# connections are reused while open, and one the upstream closed while idle is
# not handed a request with a body (which could not be retried).
NG=$E2E_TMP/nginx-upstream
mkdir -p "$NG/logs" "$NG/tmp"
NG_PORT=$(free_port)
cat >"$NG/nginx.conf" <<EOF
worker_processes 1;
pid $NG/nginx.pid;
error_log $NG/logs/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $NG/tmp/body;
    proxy_temp_path $NG/tmp/proxy;
    fastcgi_temp_path $NG/tmp/fastcgi;
    uwsgi_temp_path $NG/tmp/uwsgi;
    scgi_temp_path $NG/tmp/scgi;
    keepalive_timeout 1s;
    server {
        listen 127.0.0.1:$NG_PORT ssl;
        ssl_certificate $TLS_CERT;
        ssl_certificate_key $TLS_KEY;
        client_max_body_size 0;
        location / {
            proxy_pass https://127.0.0.1:$REGISTRY_PORT;
            proxy_http_version 1.1;
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-Proto https;
            proxy_request_buffering off;
            proxy_buffering off;
        }
    }
}
EOF
nginx -p "$NG" -c "$NG/nginx.conf" -g 'daemon off;' >"$NG/logs/stderr.log" 2>&1 &
NG_PID=$!
register_pid "$NG_PID"
register_log "$NG/logs/error.log"
nginx_up() { [[ "$(http_code "https://127.0.0.1:$NG_PORT/v2/")" == 200 ]]; }
wait_until "$E2E_WAIT" "nginx (TLS upstream) to answer" nginx_up
RM_UPSTREAM=https://127.0.0.1:$NG_PORT start_regmeter_tls --upstream-ca "$TLS_CA" --threads 1
for _ in 1 2 3; do
    assert_eq 200 "$(http_code "$PROXY_URL/v2/")" "GET /v2/ via nginx (TLS upstream)"
done
assert_eq 1 "$(metric regmeter_upstream_connect_seconds_count)" "upstream TLS connections for 3 quick GETs (reuse)"
head -c 8M /dev/urandom >"$E2E_TMP/ka.bin"
KA_DIGEST=sha256:$(sha256_file "$E2E_TMP/ka.bin")
sleep 2.5  # nginx closes the pooled connection
loc=$(start_upload "$PROXY_URL" tls/keepalive) || fail "POST after the upstream closed the idle connection"
sleep 2.5
code=$(curl -sS --max-time 60 -X PATCH -H 'Transfer-Encoding: chunked' -H 'Expect:' -T "$E2E_TMP/ka.bin" \
    -D "$E2E_TMP/ka.hdr" -o "$E2E_TMP/ka.body" -w '%{http_code}' "$loc")
assert_eq 202 "$code" "chunked PATCH after the upstream closed the idle connection ($(cat "$E2E_TMP/ka.body"))"
sleep 2.5
loc=$(abs_url "$PROXY_URL" "$(header "$E2E_TMP/ka.hdr" Location)")
code=$(curl -sS --max-time 60 -X PUT --data-binary '' -o "$E2E_TMP/ka.body" -w '%{http_code}' "$(add_query "$loc" "digest=$KA_DIGEST")")
assert_eq 201 "$code" "PUT ?digest= after the upstream closed the idle connection ($(cat "$E2E_TMP/ka.body"))"
assert_eq 4 "$(metric regmeter_upstream_connect_seconds_count)" "upstream TLS connections (1 reused + 3 after idle closes)"
assert_eq 0 "$(metric0 registry_http_requests_total code=502)" "no 502 across upstream idle closes"
assert_eq 0 "$(metric regmeter_tls_handshake_errors_total side=upstream)" "upstream handshake errors via nginx"
stop_service "$RM_PID"
stop_service "$NG_PID"

# (d) --upstream-insecure: works, and says so at start
start_regmeter_tls --upstream-insecure
grep -i 'warn' "$RM_LOG" | grep -q -- '--upstream-insecure' || fail "no warning about --upstream-insecure in the log: $(cat "$RM_LOG")"
log "  insecure warning: $(grep -m1 -- '--upstream-insecure' "$RM_LOG")"
assert_eq 200 "$(http_code "$PROXY_URL/v2/")" "GET /v2/ with --upstream-insecure"
assert_eq 0 "$(metric regmeter_tls_handshake_errors_total side=upstream)" "upstream handshake errors with --upstream-insecure"
stop_service "$RM_PID"

# ================================================================ 6. mTLS
log "--- 6. client certificates (mTLS)"
start_regmeter_tls --upstream-ca "$TLS_CA" --tls-client-ca "$TLS_CA"
rc=0
code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "$PROXY_URL/v2/" 2>"$E2E_TMP/mtls.err") || rc=$?
assert_eq 000 "$code" "HTTP status without a client certificate"
assert_ne 0 "$rc" "curl exit status without a client certificate"
log "  no client cert: curl exit $rc: $(head -1 "$E2E_TMP/mtls.err")"
rc=0
code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 --cert "$E2E_TMP/foreign/client.crt" \
    --key "$E2E_TMP/foreign/client.key" "$PROXY_URL/v2/" 2>"$E2E_TMP/mtls2.err") || rc=$?
assert_eq 000 "$code" "HTTP status with a client certificate from another CA"
assert_ne 0 "$rc" "curl exit status with a client certificate from another CA"
log "  foreign client cert: curl exit $rc: $(head -1 "$E2E_TMP/mtls2.err")"
assert_eq 200 "$(http_code "$PROXY_URL/v2/" --cert "$TLS_DIR/client.crt" --key "$TLS_DIR/client.key")" \
    "GET /v2/ with a client certificate signed by the CA"
# The server's certificate request names the CA it accepts.
out=$(tls_probe "$PROXY_HOSTPORT" -CAfile "$TLS_CA" -cert "$TLS_DIR/client.crt" -key "$TLS_DIR/client.key")
assert_contains "Acceptable client certificate CA names" "$out" "s_client sees a certificate request"
assert_contains "regmeter e2e test CA" "$out" "the certificate request names the test CA"
wait_metric 5 2 regmeter_tls_handshake_errors_total side=client
is_running "$RM_PID" || fail "regmeter died in the mTLS checks"
stop_service "$RM_PID"

# ================================================================ 7. metrics over TLS
log "--- 7. metrics port over TLS"
start_regmeter_tls --upstream-ca "$TLS_CA" --metrics-tls-cert "$TLS_CERT" --metrics-tls-key "$TLS_KEY"
assert_match '^https://' "$METRICS_URL" "METRICS_URL scheme"
assert_eq 200 "$(http_code "$PROXY_URL/v2/")" "GET /v2/ through the proxy"
curl -sS --max-time 10 --cacert "$TLS_CA" -o "$E2E_TMP/metrics.txt" -w '%{http_code}' "$METRICS_URL" >"$E2E_TMP/metrics.code" ||
    fail "curl --cacert $METRICS_URL failed"
assert_eq 200 "$(cat "$E2E_TMP/metrics.code")" "GET /metrics over TLS"
grep -q '^# TYPE regmeter_tls_handshake_errors_total counter' "$E2E_TMP/metrics.txt" || fail "/metrics over TLS lacks the handshake counter"
assert_eq 1 "$(metric_of "$(cat "$E2E_TMP/metrics.txt")" registry_http_requests_total handler=base method=get code=200)" "GET /v2/ counted"
promtool check metrics <"$E2E_TMP/metrics.txt" >"$E2E_TMP/promtool.out" 2>&1 ||
    { cat "$E2E_TMP/promtool.out" >&2; fail "promtool check metrics on the TLS metrics port"; }
rc=0
env -u CURL_CA_BUNDLE curl -sS -o /dev/null --max-time 10 "$METRICS_URL" 2>/dev/null || rc=$?
assert_eq 60 "$rc" "curl to the TLS metrics port without the CA"
assert_eq 000 "$(http_code "http://127.0.0.1:$RM_METRICS_PORT/metrics")" "plain HTTP to the TLS metrics port"
assert_eq 200 "$(http_code "$METRICS_URL")" "/metrics still served after the refused clients"
stop_service "$RM_PID"

# ================================================================ 4. 1 GiB, both hops
log "--- 4. 1 GiB blob through TLS on both hops (proxy pid $MAIN_PID)"
PROXY_URL=$MAIN_URL METRICS_URL=$MAIN_METRICS
BIG=$E2E_TMP/big.bin
random_file "$BIG" 1G
assert_eq "$SIZE" "$(stat -c %s "$BIG")" "size of the test file"
DIGEST=sha256:$(sha256_file "$BIG")
repo=tls/big
loc=$(start_upload "$MAIN_URL" "$repo") || fail "POST upload through the TLS proxy"
assert_match "^$MAIN_URL/v2/$repo/blobs/uploads/[^?]+\?.*_state=" "$loc" "upload Location points at the proxy, with its query"
read -r code bytes speed < <(curl -sS --max-time 600 -X PATCH -H 'Transfer-Encoding: chunked' -H 'Expect:' \
    -H 'Content-Type: application/octet-stream' -T "$BIG" -D "$E2E_TMP/patch.hdr" -o "$E2E_TMP/patch.body" \
    -w '%{http_code} %{size_upload} %{speed_upload}\n' "$loc") || fail "curl PATCH failed"
assert_eq 202 "$code" "chunked PATCH status ($(cat "$E2E_TMP/patch.body"))"
(( bytes > SIZE )) || fail "curl sent only $bytes bytes (chunk framing included)"
assert_eq "0-$((SIZE - 1))" "$(header "$E2E_TMP/patch.hdr" Range)" "PATCH response Range"
figure "tls_big_patch_chunked_upload_mb_s=$(mb_s "$speed")"
loc=$(abs_url "$MAIN_URL" "$(header "$E2E_TMP/patch.hdr" Location)")
assert_match "^$MAIN_URL/v2/$repo/blobs/uploads/[^?]+\?.*_state=" "$loc" "PATCH Location points at the proxy, with its query"
code=$(curl -sS --max-time 120 -X PUT -H 'Content-Type: application/octet-stream' --data-binary '' \
    -D "$E2E_TMP/put.hdr" -o "$E2E_TMP/put.body" -w '%{http_code}' "$(add_query "$loc" "digest=$DIGEST")")
assert_eq 201 "$code" "final PUT ?digest= ($(cat "$E2E_TMP/put.body"))"
assert_eq "$DIGEST" "$(header "$E2E_TMP/put.hdr" Docker-Content-Digest)" "final PUT Docker-Content-Digest"

got=$(curl -sS --max-time 600 -w '%{stderr}%{http_code} %{size_download} %{speed_download}\n' \
    "$MAIN_URL/v2/$repo/blobs/$DIGEST" 2>"$E2E_TMP/get.stat" | sha256sum | awk '{print $1}')
read -r code bytes speed <"$E2E_TMP/get.stat" || true
assert_eq 200 "$code" "GET of the 1 GiB blob"
assert_eq "$SIZE" "$bytes" "bytes received"
assert_eq "${DIGEST#sha256:}" "$got" "sha256 of the 1 GiB blob fetched through TLS"
read -r code bytes speed < <(curl -sS --max-time 600 -o /dev/null -w '%{http_code} %{size_download} %{speed_download}\n' \
    "$MAIN_URL/v2/$repo/blobs/$DIGEST")
assert_eq 200 "$code" "GET to /dev/null"
figure "tls_big_get_download_mb_s=$(mb_s "$speed")"
rss=$(peak_rss_kib "$MAIN_PID")
figure "tls_big_peak_rss_kib=$rss"
(( rss < RSS_LIMIT_KIB )) || fail "regmeter peak RSS ${rss} KiB >= ${RSS_LIMIT_KIB} KiB"
resp=$(metric registry_http_response_size_bytes_sum handler=blob)
awk -v r="$resp" -v s="$SIZE" 'BEGIN { exit !(r >= 2 * s) }' ||
    fail "registry_http_response_size_bytes_sum{handler=blob} is $resp, expected >= 2 GiB"
assert_eq 0 "$(metric regmeter_tls_handshake_errors_total side=upstream)" "upstream handshake errors after the big transfers"
is_running "$MAIN_PID" || fail "regmeter died"
log "PASS"
