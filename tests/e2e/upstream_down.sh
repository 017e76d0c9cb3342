#!/usr/bin/env bash
# The upstream is down: the proxy answers 502 with a distribution-style JSON
# error that names no address or system error (those go to its log), counts
# it, logs the failure once and then a count of its repeats at most every
# 10 s (not a line per request), and recovers by itself once the registry
# comes up.
. "$(dirname "$0")/lib.sh"
require_proxy

# A port nobody listens on (yet).
UPORT=$(free_port)
RM_UPSTREAM=http://127.0.0.1:$UPORT start_regmeter

# ---- GET /v2/ with the upstream refusing connections
code=$(curl -sS --max-time 30 -D "$E2E_TMP/h1" -o "$E2E_TMP/b1" -w '%{http_code}' "$PROXY_URL/v2/")
assert_eq 502 "$code" "GET /v2/ with the upstream down"
body=$(cat "$E2E_TMP/b1")
assert_contains '"UNAVAILABLE"' "$body" "502 body"
python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
e = j["errors"][0]
assert e["code"] == "UNAVAILABLE" and isinstance(e["message"], str) and e["message"], j' "$E2E_TMP/b1" \
    || fail "502 body is not {\"errors\":[{\"code\":\"UNAVAILABLE\",\"message\":...}]}: $body"
assert_contains json "$(header "$E2E_TMP/h1" Content-Type)" "502 Content-Type"
assert_eq "$(stat -c %s "$E2E_TMP/b1")" "$(header "$E2E_TMP/h1" Content-Length)" "502 Content-Length"
# Generic for the client; the detail (address, errno) is in the log.
assert_eq "upstream registry unavailable" "$(json_get "$E2E_TMP/b1" 'j["errors"][0]["message"]')" "502 message"
in_log() { grep -Eq -- "$1" "$RM_LOG"; }
wait_until 5 "the refused connect in the log" in_log "warn upstream 127\.0\.0\.1:$UPORT: .*Connection refused"

# A HEAD and a manifest GET fail the same way (no body for the HEAD).
code=$(curl -sS --max-time 30 -I -o /dev/null -w '%{http_code}' "$PROXY_URL/v2/some/repo/manifests/latest")
assert_eq 502 "$code" "HEAD manifest with the upstream down"
code=$(curl -sS --max-time 30 -o /dev/null -w '%{http_code}' "$PROXY_URL/v2/some/repo/blobs/sha256:$(printf '%064d' 0)")
assert_eq 502 "$code" "GET blob with the upstream down"

# The connection to the client survives a 502 (keep-alive), or is closed cleanly.
res=$(curl -sS --max-time 30 -o /dev/null -o /dev/null -w '%{http_code} ' "$PROXY_URL/v2/" "$PROXY_URL/v2/")
assert_eq "502 502 " "$res" "two GETs on one client connection with the upstream down"

# ---- counted like the registry would count them
wait_metric 5 3 registry_http_requests_total code=502 handler=base method=get
assert_eq 1 "$(metric registry_http_requests_total code=502 handler=manifest method=head)" "502 manifest HEAD count"
assert_eq 1 "$(metric registry_http_requests_total code=502 handler=blob method=get)" "502 blob GET count"
exposition=$(scrape)
grep -Eq '^registry_http_requests_total\{[^}]*code="502"[^}]*handler="base"[^}]*method="get"[^}]*\} 3$' <<<"$exposition" \
    || fail "exposition lacks registry_http_requests_total{code=\"502\",handler=\"base\",method=\"get\"} 3: $(grep requests_total <<<"$exposition")"
assert_eq 0 "$(metric registry_http_in_flight_requests)" "in-flight gauge"

# The proxy is still alive and healthy itself.
assert_eq 200 "$(http_code "$HEALTH_URL")" "/healthz with the upstream down"

# ---- one warning, then a count: 30 more failures do not make 30 lines
for _ in $(seq 30); do
    assert_eq 502 "$(http_code "$PROXY_URL/v2/")" "GET /v2/ with the upstream down"
done
failures=$(metric registry_http_requests_total code=502)
refused_lines() { grep -c 'Connection refused' "$RM_LOG" || true; }
assert_eq 1 "$(refused_lines)" "log lines about the refused connects after $failures failures (within 10 s)"
# The count arrives once the 10 s interval of the first line is over.
wait_until 15 "the summary of the repeated warning" in_log 'Connection refused \(repeated [0-9]+ times in the last 1[0-9] s\)'
summary=$(grep 'Connection refused (repeated' "$RM_LOG")
log "  after $failures failures: $(grep -m1 'Connection refused' "$RM_LOG" | cut -c1-120)"
log "  then: $summary"
assert_eq 2 "$(refused_lines)" "log lines about the refused connects: the first and one summary"
repeats=$(sed -n 's/.*(repeated \([0-9]*\) times.*/\1/p' <<<"$summary")
assert_eq "$((failures - 1))" "$repeats" "repeats in the summary (every failure after the first)"

# ---- the registry comes up on that port: service resumes without a restart
start_registry "$UPORT"
deadline=$((SECONDS + 20))
until [[ "$(http_code "$PROXY_URL/v2/")" == 200 ]]; do
    ((SECONDS < deadline)) || fail "GET /v2/ through the proxy did not recover within 20s of the registry starting"
    sleep 0.2
done
is_running "$RM_PID" || fail "regmeter is not running any more"
assert_eq 200 "$(http_code "$PROXY_URL/v2/")" "GET /v2/ after recovery"
# The registry's own answer, not ours (an empty output would not prove that).
code=$(curl -sS --max-time 10 -o "$E2E_TMP/manifest.body" -w '%{http_code}' "$PROXY_URL/v2/some/repo/manifests/latest")
assert_eq 404 "$code" "manifest GET of an unknown repository once the registry is up"
assert_match '"code":"(NAME|MANIFEST)_UNKNOWN"' "$(cat "$E2E_TMP/manifest.body")" "the registry's error body, not UNAVAILABLE"
(( $(metric registry_http_requests_total code=200 handler=base method=get) >= 2 )) || fail "200 GET /v2/ not counted"
log "PASS"
