#!/usr/bin/env bash
# The command line: --version, --help, bad flags (one line on stderr, exit 2),
# and the documented flags are accepted by a running instance.
. "$(dirname "$0")/lib.sh"
require_proxy

VERSION=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$SOURCE_ROOT/meson.build" | head -n1)

rc=0
out=$("$REGMETER" --version 2>&1) || rc=$?
assert_eq 0 "$rc" "--version exit status"
assert_contains "$VERSION" "$out" "--version output"

rc=0
out=$("$REGMETER" --help 2>&1) || rc=$?
assert_eq 0 "$rc" "--help exit status"
for flag in --listen --upstream --metrics-listen --threads --header-timeout --idle-timeout --upstream-timeout --upstream-connect-timeout --upstream-resolve-interval \
    --shutdown-grace --max-header-bytes --version; do
    assert_contains -- "$flag" "$out" "--help mentions $flag"
done

bad() { # description args...
    local what=$1 rc=0
    shift
    timeout 10 "$REGMETER" "$@" >"$E2E_TMP/bad.out" 2>"$E2E_TMP/bad.err" || rc=$?
    assert_eq 2 "$rc" "exit status for $what ($*)"
    assert_eq 1 "$(wc -l <"$E2E_TMP/bad.err")" "stderr lines for $what: [$(cat "$E2E_TMP/bad.err")]"
    assert_eq 0 "$(stat -c %s "$E2E_TMP/bad.out")" "stdout bytes for $what"
}
bad "an unknown flag" --no-such-flag
bad "a flag without its value" --upstream
bad "an unknown flag among good ones" --listen 127.0.0.1:1 --upstream http://127.0.0.1:1 --bogus 1
bad "a non-numeric value" --threads abc
bad "a listen address without a port" --listen 127.0.0.1

# Every tuning flag accepted by a running instance.
start_registry
start_regmeter --threads 2 --header-timeout 5 --idle-timeout 10 --upstream-timeout 10 \
    --shutdown-grace 5 --max-header-bytes 32768
assert_eq 200 "$(http_code "$PROXY_URL/v2/")" "GET /v2/ with all flags set"
assert_eq 200 "$(http_code "$HEALTH_URL")" "/healthz"
scrape >"$E2E_TMP/m.txt"
for fam in registry_http_requests_total registry_http_request_duration_seconds registry_http_request_size_bytes \
    registry_http_response_size_bytes registry_http_in_flight_requests; do
    grep -q "^# TYPE $fam " "$E2E_TMP/m.txt" || fail "/metrics lacks # TYPE $fam"
done
assert_contains text/plain "$(curl -sS -o /dev/null -w '%{content_type}' "$METRICS_URL")" "/metrics Content-Type"
assert_eq 1 "$(metric registry_http_requests_total code=200 handler=base method=get)" "the GET /v2/ is counted"
# gzip when asked (the README says so): the decoded body is the same exposition.
enc=$(curl -sS --compressed -D - -o "$E2E_TMP/mz.txt" "$METRICS_URL" | tr -d '\r' | awk -F': *' 'tolower($1) == "content-encoding" { print $2 }')
assert_eq gzip "$enc" "/metrics Content-Encoding with Accept-Encoding: gzip"
grep -q '^# TYPE registry_http_requests_total counter' "$E2E_TMP/mz.txt" || fail "gzipped /metrics does not decode to the exposition"
log "PASS"
