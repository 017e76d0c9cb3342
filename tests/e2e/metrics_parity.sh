#!/usr/bin/env bash
# The proxy's metrics mirror the ones distribution itself exports: after a
# realistic mix of requests (skopeo push/pull/inspect/list-tags, catalog,
# 404s, deletes, upload status and cancel) sent through the proxy, every
# registry_http_requests_total series, every histogram _count, the HELP/TYPE
# lines and the bucket bounds match the registry's own debug metrics (counted
# from after the harness's own readiness probes). One deliberate difference:
# regmeter counts requests that match no registry route (or that distribution's
# router answers without a handler, e.g. manifests/.INVALID) under
# handler="other", where distribution does not count them at all.
. "$(dirname "$0")/lib.sh"
require_proxy

start_registry
start_regmeter
scrape "$REGISTRY_METRICS_URL" >"$E2E_TMP/registry-base.txt"

REPO=parity/app
IMG=$E2E_TMP/img
make_image "$IMG" v1 2K 1M 300K
MANIFEST=$(json_get "$IMG.json" 'j["manifest"]')
skopeo_ copy --dest-tls-verify=false "oci:$IMG:v1" "docker://$PROXY_HOSTPORT/$REPO:v1" >"$E2E_TMP/push.log" 2>&1 \
    || { cat "$E2E_TMP/push.log" >&2; fail "skopeo push"; }
skopeo_ copy --dest-tls-verify=false "oci:$IMG:v1" "docker://$PROXY_HOSTPORT/$REPO:v2" >"$E2E_TMP/push.log" 2>&1 \
    || { cat "$E2E_TMP/push.log" >&2; fail "skopeo push v2"; }
skopeo_ copy --src-tls-verify=false "docker://$PROXY_HOSTPORT/$REPO:v1" "oci:$E2E_TMP/out:v1" >"$E2E_TMP/pull.log" 2>&1 \
    || { cat "$E2E_TMP/pull.log" >&2; fail "skopeo pull"; }
skopeo_ inspect --tls-verify=false "docker://$PROXY_HOSTPORT/$REPO:v1" >/dev/null || fail "skopeo inspect"
skopeo_ list-tags --tls-verify=false "docker://$PROXY_HOSTPORT/$REPO" >/dev/null || fail "skopeo list-tags"

P=$PROXY_URL/v2
Z=sha256:$(printf '%064d' 0)
c() { curl -sS --max-time 30 -o /dev/null -w '%{http_code}' "$@"; }
assert_eq 200 "$(c "$P/")" "GET /v2/"
assert_eq 200 "$(c -I "$P/")" "HEAD /v2/"
assert_eq 200 "$(c "$P/_catalog")" "catalog"
assert_eq 200 "$(c "$P/_catalog?n=1")" "catalog n=1"
assert_eq 200 "$(c "$P/$REPO/tags/list?n=1")" "tags n=1"
assert_eq 404 "$(c "$P/no/such/tags/list")" "tags of a missing repo"
assert_eq 404 "$(c "$P/$REPO/manifests/nope")" "missing manifest"
assert_eq 404 "$(c -I "$P/$REPO/manifests/nope")" "HEAD missing manifest"
assert_eq 404 "$(c "$P/$REPO/blobs/$Z")" "missing blob"
assert_eq 404 "$(c -I "$P/$REPO/blobs/$Z")" "HEAD missing blob"
assert_eq 206 "$(c -r 0-9 "$P/$REPO/blobs/$(json_get "$IMG.json" 'j["config"]')")" "ranged blob GET"
# An upload: status, cancel.
loc=$(start_upload "$PROXY_URL" "$REPO") || fail "POST upload"
assert_eq 204 "$(c "$loc")" "upload status"
assert_eq 204 "$(c -X DELETE "$loc")" "upload cancel"
assert_eq 404 "$(c -X DELETE "$P/$REPO/blobs/uploads/00000000-0000-0000-0000-000000000000")" "cancel unknown upload"
# Mount from another repository.
layer=$(json_get "$IMG.json" 'j["layers"][0]')
assert_eq 201 "$(c -X POST "$P/parity/other/blobs/uploads/?mount=$layer&from=$REPO")" "cross-repo mount"
# Deletes: a manifest by tag (400), by digest (202); a blob (202).
assert_eq 400 "$(c -X DELETE "$P/$REPO/manifests/v2")" "DELETE manifest by tag"
assert_eq 202 "$(c -X DELETE "$P/$REPO/manifests/$MANIFEST")" "DELETE manifest by digest"
assert_eq 202 "$(c -X DELETE "$P/parity/other/blobs/$layer")" "DELETE blob"
# A request matching no route: distribution does not count it; regmeter
# counts it under handler="other" (checked below, outside the comparison).
assert_eq 404 "$(c "$PROXY_URL/nothing/here")" "unrouted path"
# Requests that reach the registry but fail its name or reference patterns:
# its router answers 404 before any handler, so it counts nothing (the
# comparison below would see a manifest or tags series otherwise); regmeter
# counts them under handler="other" (docs/metrics.md).
assert_eq 404 "$(c "$P/$REPO/manifests/.INVALID")" "a reference that fails distribution's pattern"
assert_eq 404 "$(c "$P/Foo/tags/list")" "an upper-case repository name"

wait_metric 10 0 registry_http_in_flight_requests
sleep 0.5
PROXY_M=$(scrape "$METRICS_URL")
REG_M=$(scrape "$REGISTRY_METRICS_URL")

compare() { # metric-name what
    local a b
    a=$(metric_of "$REG_M" --series "$1" --base "$E2E_TMP/registry-base.txt")
    b=$(metric_of "$PROXY_M" --series "$1" --drop handler=other)
    [[ -n "$a" ]] || fail "the registry exported no $1 (test bug)"
    if [[ "$a" != "$b" ]]; then
        diff <(printf '%s\n' "$a") <(printf '%s\n' "$b") | sed 's/^/  /' >&2 || true
        fail "$2 differ between the registry (<) and the proxy (>)"
    fi
}
compare registry_http_requests_total "registry_http_requests_total series"
compare registry_http_request_duration_seconds_count "request duration _count series"
compare registry_http_request_size_bytes_count "request size _count series"
compare registry_http_response_size_bytes_count "response size _count series"

assert_eq 3 "$(metric_of "$PROXY_M" registry_http_requests_total code=404 handler=other method=get)" \
    "the unrouted GET and the two the registry answered without routing, under handler=\"other\""

# HELP and TYPE lines of the five families.
for fam in registry_http_requests_total registry_http_request_duration_seconds registry_http_request_size_bytes \
    registry_http_response_size_bytes registry_http_in_flight_requests; do
    for kind in HELP TYPE; do
        want=$(printf '%s\n' "$REG_M" | grep "^# $kind $fam " || true)
        got=$(printf '%s\n' "$PROXY_M" | grep "^# $kind $fam " || true)
        # Both missing would compare equal: the registry must have the line.
        assert_ne "" "$want" "the registry's # $kind line of $fam"
        assert_eq "$want" "$got" "# $kind line of $fam"
    done
done
# Bucket bounds of the three histograms.
les() { printf '%s\n' "$1" | grep "^$2_bucket" | grep -o 'le="[^"]*"' | sort -u | tr '\n' ' '; }
for fam in registry_http_request_duration_seconds registry_http_request_size_bytes registry_http_response_size_bytes; do
    assert_ne "" "$(les "$REG_M" "$fam")" "the registry's bucket bounds of $fam"
    assert_eq "$(les "$REG_M" "$fam")" "$(les "$PROXY_M" "$fam")" "bucket bounds of $fam"
done
# Response bytes for handler=blob. Distribution also counts the error body of
# a HEAD 404 (which net/http never sends), regmeter counts bytes sent, so the
# sums may differ by those; the proxy's must still cover every blob body
# fetched (pull: 3 layers + config; plus the 10-byte ranged GET).
reg_sum=$(metric_of "$REG_M" registry_http_response_size_bytes_sum handler=blob)
proxy_sum=$(metric_of "$PROXY_M" registry_http_response_size_bytes_sum handler=blob)
log "response_size_bytes_sum{handler=blob}: registry $reg_sum, regmeter $proxy_sum"
pulled=$(json_get "$IMG.json" 'sum(v for d, v in j["blobs"].items() if d != j["manifest"])')
(( proxy_sum >= pulled + 10 )) || fail "regmeter's response size _sum for handler=blob ($proxy_sum) < bytes pulled ($pulled + 10)"
(( proxy_sum <= reg_sum )) || fail "regmeter's response size _sum for handler=blob ($proxy_sum) > the registry's ($reg_sum)"
log "PASS"
