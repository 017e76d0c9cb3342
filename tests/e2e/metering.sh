#!/usr/bin/env bash
# Metering depth II (issue 16) end to end, against the real docker-registry:
#   - error codes: a missing manifest (MANIFEST_UNKNOWN), blob (BLOB_UNKNOWN)
#     and repository (NAME_UNKNOWN on tags/list), a HEAD (none), in
#     regmeter_registry_errors_total and the access log's `error` field;
#   - client families: skopeo, podman, ctr, docker and curl each counted
#     under their family in regmeter_client_requests_total (and the access
#     log's client_family);
#   - whole image pulls: skopeo, podman, ctr and docker each pull an image
#     they do not have (one pull `complete`, its size the image's blob
#     bytes); skopeo and podman pull it again with every layer cached (one
#     pull `partial`, no layer bytes);
#   - a multi-platform index pulled by skopeo: one pull, complete, the
#     linux/amd64 child's bytes; every exported regmeter_* family documented;
#   - a stand-in upstream that redirects blob GETs to the registry (as
#     distribution on S3 with `redirect` on does): the redirects counted in
#     regmeter_blob_redirects_total, the pull ended `redirected`;
#   - a stand-in upstream that sends Docker Hub's RateLimit headers, then 429s:
#     the three gauges, and the 429s as TOOMANYREQUESTS.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/clients_lib.sh"
. "$(dirname "$0")/metrics_lib.sh"
require_proxy
require_cmd docker-registry skopeo containerd ctr podman dockerd curl python3

IDLE=2   # --pull-session-idle: a cached pull ends `partial` this long after its last request
start_registry
ACCESS_LOG=$E2E_TMP/access.log
start_regmeter --access-log "$ACCESS_LOG" --pull-session-idle "$IDLE"
register_log "$ACCESS_LOG"  # a failed client step: which request regmeter ended, and how
MAIN_METRICS=$METRICS_URL MAIN_PROXY=$PROXY_URL MAIN_HOSTPORT=$PROXY_HOSTPORT
start_containerd
start_dockerd
containers_setup

# d0 NAME [label=value...]: the value now, absent = 0.
d0() { local v; v=$(metric "$@"); [[ $v == absent ]] && v=0; printf '%s\n' "$v"; }
# grew BEFORE NAME [label=value...]: how much it grew since BEFORE.
grew() { local before=$1; shift; awk -v a="$before" -v b="$(d0 "$@")" 'BEGIN { printf "%.0f\n", b - a }'; }
errors() { d0 regmeter_registry_errors_total "$@"; }

# ---------------------------------------------------------------- error codes
img=$E2E_TMP/img-skopeo
make_client_image "$img" v1 "$MAIN_HOSTPORT/metering/skopeo:v1" 48K 1M || fail "building the test image"
skopeo_pushed=$(client_push skopeo "$img" "$MAIN_HOSTPORT/metering/skopeo:v1") || fail "skopeo push through regmeter"

absent_digest=sha256:$(printf 'nothing' | sha256sum | cut -c1-64)
curl -sS -o /dev/null "$MAIN_PROXY/v2/metering/skopeo/manifests/never-pushed"
curl -sS -o /dev/null "$MAIN_PROXY/v2/metering/skopeo/blobs/$absent_digest"
curl -sS -o /dev/null "$MAIN_PROXY/v2/metering/no-such-repo/tags/list"
curl -sS -o /dev/null -I "$MAIN_PROXY/v2/metering/skopeo/manifests/never-pushed-either"
wait_metric 10 1 regmeter_registry_errors_total handler=manifest method=get error=MANIFEST_UNKNOWN
assert_eq 1 "$(errors handler=blob method=get error=BLOB_UNKNOWN)" "missing blob: BLOB_UNKNOWN"
assert_eq 1 "$(errors handler=tags method=get error=NAME_UNKNOWN)" "missing repository: NAME_UNKNOWN"
assert_eq 1 "$(errors handler=manifest method=head error=none)" "HEAD of a missing manifest: none (no body)"
assert_eq 0 "$(errors error=other)" "no error code outside the table"
# The access log names them too (lines reach the file within a quarter second).
wait_until 5 "access log error fields" grep -q '"error":"NAME_UNKNOWN"' "$ACCESS_LOG"
line=$(grep '/never-pushed"\|"reference":"never-pushed"' "$ACCESS_LOG" | head -n 1)
assert_contains '"error":"MANIFEST_UNKNOWN"' "$line" "access log line of the missing manifest"
assert_contains '"client_family":"curl"' "$line" "access log line of the missing manifest"
log "error codes: MANIFEST_UNKNOWN, BLOB_UNKNOWN, NAME_UNKNOWN, none all counted"

# ---------------------------------------------------------------- pulls per client
# pull_counted CLIENT REF FAMILY PUSHED [again]: a pull of an image the
# client does not have (complete, every blob byte of the manifest PUSHED, as
# the registry stored it: docker and podman recompress layers on push); with
# `again`, one more with every layer cached (partial, no layer). ctr and
# docker do not do the second: with the image in their store they HEAD the
# tag, know its digest and GET nothing, so no pull begins (containerd even
# with the manifest deleted from its namespace: its content store shares it).
pull_counted() {
    local client=$1 ref=$2 family=$3 pushed=$4 again=${5:-}
    local manifest_file=$REGISTRY_DIR/data/docker/registry/v2/blobs/sha256/${pushed:7:2}/${pushed#sha256:}/data
    [[ -f $manifest_file ]] || fail "$client: the registry has no blob for the pushed manifest $pushed"
    local blob_bytes config_bytes
    blob_bytes=$(json_get "$manifest_file" 'j["config"]["size"] + sum(l["size"] for l in j["layers"])')
    config_bytes=$(json_get "$manifest_file" 'j["config"]["size"]')
    sleep $((IDLE + 1))  # whatever the push left open has ended
    local c0 p0 s0 r0
    c0=$(d0 regmeter_image_pull_duration_seconds_count outcome=complete)
    p0=$(d0 regmeter_image_pull_duration_seconds_count outcome=partial)
    s0=$(d0 regmeter_image_pull_size_bytes_sum outcome=complete)
    r0=$(d0 regmeter_client_requests_total client="$family")
    client_pull "$client" "$img" "$ref" >/dev/null || fail "$client pull through regmeter failed"
    wait_metric 10 "$((c0 + 1))" regmeter_image_pull_duration_seconds_count outcome=complete
    assert_eq "$blob_bytes" "$(grew "$s0" regmeter_image_pull_size_bytes_sum outcome=complete)" \
        "$client: size of the complete pull (config + layers)"
    local dur
    dur=$(d0 regmeter_image_pull_duration_seconds_sum outcome=complete)
    fgt "$dur" 0 || fail "$client: complete pulls lasted $dur s in all"
    sleep $((IDLE + 1))
    assert_eq "$p0" "$(d0 regmeter_image_pull_duration_seconds_count outcome=partial)" \
        "$client: a whole pull left nothing to end partial"
    local fam
    fam=$(grew "$r0" regmeter_client_requests_total client="$family")
    ((fam >= 4)) || fail "$client: $fam requests counted under client=\"$family\", expected >= 4 (manifest + 3 blobs)"

    if [[ $again != again ]]; then
        log "$client: one pull complete ($blob_bytes bytes), $fam requests as $family"
        return 0
    fi
    # Again, every blob cached: the manifest only, then nothing for --pull-session-idle.
    local ps0
    ps0=$(d0 regmeter_image_pull_size_bytes_sum outcome=partial)
    case $client in
        skopeo) client_run "$CLIENTS_DIR/skopeo.again.log" skopeo --insecure-policy copy --src-tls-verify=false \
            "docker://$ref" "oci:$img.pulled:${ref##*:}" || fail "skopeo second pull" ;;
        podman) client_run "$CLIENTS_DIR/podman.again.log" "${PODMAN[@]}" pull --tls-verify=false "$ref" ||
            fail "podman second pull" ;;
    esac
    wait_metric $((IDLE + 10)) "$((p0 + 1))" regmeter_image_pull_duration_seconds_count outcome=partial
    # skopeo reads the config blob again (to convert the image for its
    # destination); no client fetches a layer again.
    local ps
    ps=$(grew "$ps0" regmeter_image_pull_size_bytes_sum outcome=partial)
    [[ $ps == 0 || $ps == "$config_bytes" ]] ||
        fail "$client: the cached pull delivered $ps bytes, expected 0 or the config's $config_bytes (no layer)"
    assert_eq "$((c0 + 1))" "$(d0 regmeter_image_pull_duration_seconds_count outcome=complete)" \
        "$client: the cached pull is not complete"
    log "$client: one pull complete ($blob_bytes bytes), one partial ($ps bytes), $fam requests as $family"
}

pull_counted skopeo "$MAIN_HOSTPORT/metering/skopeo:v1" containers-image "$skopeo_pushed" again

# The other clients push the same image under their own repository first.
# podman pulls twice, ctr and docker once (dockerd's User-Agent ends in
# UpstreamClient(Docker-Client/...): family docker).
for client in ctr podman docker; do
    ref=$MAIN_HOSTPORT/metering/$client:v1
    client_tag=$img-$client
    make_client_image "$client_tag" v1 "$ref" 48K 1M || fail "building the $client test image"
    client_load "$client" "$client_tag" "$ref" || fail "$client: loading the image"
    pushed=$(client_push "$client" "$client_tag" "$ref") || fail "$client push through regmeter"
    case $client in
        ctr) family=containerd again= ;;
        podman) family=containers-image again=again ;;
        docker) family=docker again= ;;
    esac
    img=$client_tag pull_counted "$client" "$ref" "$family" "$pushed" $again
done

assert_ne 0 "$(d0 regmeter_client_requests_total client=curl)" "curl counted under client=\"curl\""
assert_eq 0 "$(d0 regmeter_image_pull_duration_seconds_count outcome=redirected)" "no redirect from the real registry"
assert_eq absent "$(metric regmeter_upstream_ratelimit_limit)" "no rate-limit gauge without rate-limit headers"

# A multi-platform index: skopeo GETs the index, then the linux/amd64
# child by digest, then that child's blobs — one pull, complete, the child's
# bytes only (the arm64 entry, never fetched, does not count).
for arch in amd64 arm64; do
    make_image "$E2E_TMP/multi-$arch" v1 16K 256K || fail "building the $arch image"
    skopeo_ copy --dest-tls-verify=false "oci:$E2E_TMP/multi-$arch:v1" \
        "docker://127.0.0.1:$REGISTRY_PORT/metering/multi:$arch" >/dev/null 2>&1 || fail "pushing the $arch image"
done
python3 - "$E2E_TMP/multi-amd64.json" "$E2E_TMP/multi-arm64.json" >"$E2E_TMP/index.json" <<'PY'
import json, sys
entries = []
for path, arch in zip(sys.argv[1:], ("amd64", "arm64")):
    j = json.load(open(path))
    entries.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": j["manifest"],
                    "size": j["manifest_size"], "platform": {"os": "linux", "architecture": arch}})
print(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries}))
PY
assert_eq 201 "$(curl -sS -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/vnd.oci.image.index.v1+json' \
    --data-binary "@$E2E_TMP/index.json" "$REGISTRY_URL/v2/metering/multi/manifests/multi")" "PUT of the index"
sleep $((IDLE + 1))
c0=$(d0 regmeter_image_pull_duration_seconds_count outcome=complete)
s0=$(d0 regmeter_image_pull_size_bytes_sum outcome=complete)
p0=$(d0 regmeter_image_pull_duration_seconds_count outcome=partial)
skopeo_ copy --src-tls-verify=false "docker://$MAIN_HOSTPORT/metering/multi:multi" "oci:$E2E_TMP/multi-pulled:v1" \
    >"$E2E_TMP/multi.log" 2>&1 || fail "skopeo pull of the index: $(tail -n 5 "$E2E_TMP/multi.log")"
wait_metric 10 "$((c0 + 1))" regmeter_image_pull_duration_seconds_count outcome=complete
assert_eq "$(json_get "$E2E_TMP/multi-amd64.json" 'sum(j["blobs"].values())')" \
    "$(grew "$s0" regmeter_image_pull_size_bytes_sum outcome=complete)" "index pull: the amd64 child's blob bytes"
sleep $((IDLE + 1))
assert_eq "$p0" "$(d0 regmeter_image_pull_duration_seconds_count outcome=partial)" \
    "index pull: one pull, not a second one left partial"
log "index: one pull complete (the linux/amd64 child's blobs)"

# Every regmeter_* family this proxy exports now has its entry in docs/metrics.md.
families=$(scrape "$MAIN_METRICS" | awk '/^# TYPE regmeter_/ { print $3 }')
for name in $families; do
    grep -q "^### .*\`$name[{\`]" "$SOURCE_ROOT/docs/metrics.md" || fail "docs/metrics.md has no entry for $name"
done
for name in regmeter_registry_errors_total regmeter_client_requests_total regmeter_client_errors_total \
    regmeter_image_pull_duration_seconds regmeter_image_pull_size_bytes; do
    grep -qx "$name" <<<"$families" || fail "$name not exported after the traffic above"
done

# ---------------------------------------------------------------- object storage redirects
python3 "$TOOLS/metering_upstream.py" "$E2E_TMP/redirect.port" redirect "$REGISTRY_URL" &
register_pid $!
wait_until 10 "redirecting stand-in" test -s "$E2E_TMP/redirect.port"
RM_UPSTREAM=http://127.0.0.1:$(cat "$E2E_TMP/redirect.port") start_regmeter --pull-session-idle "$IDLE" --access-log off
skopeo_ copy --src-tls-verify=false "docker://$PROXY_HOSTPORT/metering/skopeo:v1" "oci:$E2E_TMP/redirected:v1" \
    >"$E2E_TMP/redirected.log" 2>&1 || fail "skopeo pull through the redirecting stand-in: $(tail -n 5 "$E2E_TMP/redirected.log")"
assert_eq 3 "$(metric regmeter_blob_redirects_total repository=metering/skopeo)" "blob GETs redirected (config + 2 layers)"
wait_metric $((IDLE + 10)) 1 regmeter_image_pull_duration_seconds_count outcome=redirected
assert_eq 0 "$(metric regmeter_image_pull_size_bytes_sum outcome=redirected)" "bytes through the proxy of a redirected pull"
assert_eq absent "$(metric regmeter_image_pull_duration_seconds_count outcome=complete)" "a redirected pull is not complete"
log "redirects: 3 counted, the pull ended redirected"

# ---------------------------------------------------------------- rate budget
python3 "$TOOLS/metering_upstream.py" "$E2E_TMP/ratelimit.port" ratelimit 3 &
register_pid $!
wait_until 10 "rate-limiting stand-in" test -s "$E2E_TMP/ratelimit.port"
RM_UPSTREAM=http://127.0.0.1:$(cat "$E2E_TMP/ratelimit.port") start_regmeter --access-log off
assert_eq 200 "$(http_code "$PROXY_URL/v2/")" "first request within the budget"
assert_eq 3 "$(metric regmeter_upstream_ratelimit_limit)" "regmeter_upstream_ratelimit_limit"
assert_eq 2 "$(metric regmeter_upstream_ratelimit_remaining)" "regmeter_upstream_ratelimit_remaining after one request"
assert_eq 21600 "$(metric regmeter_upstream_ratelimit_window_seconds)" "regmeter_upstream_ratelimit_window_seconds"
http_code "$PROXY_URL/v2/" >/dev/null
http_code "$PROXY_URL/v2/library/x/manifests/latest" >/dev/null
assert_eq 0 "$(metric regmeter_upstream_ratelimit_remaining)" "budget spent"
assert_eq 429 "$(http_code "$PROXY_URL/v2/library/x/manifests/latest")" "over the budget"
assert_eq 429 "$(http_code -I "$PROXY_URL/v2/library/x/manifests/latest")" "HEAD over the budget"
wait_metric 5 1 regmeter_registry_errors_total handler=manifest method=get error=TOOMANYREQUESTS
assert_eq 1 "$(metric regmeter_registry_errors_total handler=manifest method=head error=TOOMANYREQUESTS)" \
    "a body-less 429 counts as TOOMANYREQUESTS"
log "rate budget: gauges 3/2/21600 then 0, two 429s as TOOMANYREQUESTS"
