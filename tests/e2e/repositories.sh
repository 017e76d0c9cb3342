#!/usr/bin/env bash
# Per-repository regmeter families and upstream timing, end to end with the
# real docker-registry and skopeo:
#   5. regmeter_image_pushes_total counts manifest PUT 201s; a skopeo pull
#      (manifest GET 200) is a pull, and so is `skopeo inspect` (it GETs the
#      manifest, and inspect without --raw also GETs the config blob); a
#      manifest HEAD is not; regmeter_blob_bytes_total{direction="download"} is
#      the bytes of the blobs pulled.
#   6. --max-repositories 2: the first two repositories keep their names, the
#      next ones count as "__other__" (a HEAD takes no name);
#      --max-repositories 0: no repository label at all.
#   7. regmeter_upstream_header_seconds_count (all series) equals the requests
#      the registry itself counted for that workload, and the proxy's own
#      request count; regmeter_upstream_connect_seconds_count >= 1;
#      regmeter_auth_challenges_total absent without auth. With an htpasswd
#      registry, every 401 counts under its handler (equal to the registry's
#      own 401 counts), and a 401 in the middle of an upload session does not
#      end it.
. "$(dirname "$0")/lib.sh"
require_proxy

. "$(dirname "$0")/metrics_lib.sh"

OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json
# curl_image BASE REPO TAG: push a one-blob image with curl through BASE
# (monolithic upload of a random config + manifest PUT); prints "digest size"
# of the config blob. The manifest is left in $E2E_TMP/manifest.json.
curl_image() {
    local base=$1 repo=$2 tag=$3 cfg digest size
    cfg=$E2E_TMP/cfg.json
    printf '{"architecture":"amd64","os":"linux","nonce":"%s"}' "$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$cfg"
    digest=$(push_blob "$base" "$repo" "$cfg") || return 1
    size=$(stat -c %s "$cfg")
    printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[]}' \
        "$OCI_MANIFEST" "$digest" "$size" >"$E2E_TMP/manifest.json"
    local code
    code=$(curl -sS --max-time 30 -X PUT -H "Content-Type: $OCI_MANIFEST" --data-binary "@$E2E_TMP/manifest.json" \
        -o /dev/null -w '%{http_code}' "$base/v2/$repo/manifests/$tag")
    [[ "$code" == 201 ]] || { echo "manifest PUT to $repo:$tag answered $code" >&2; return 1; }
    printf '%s %s\n' "$digest" "$size"
}
# curl_pull BASE REPO TAG: GET the manifest (a pull) and its config blob.
curl_pull() {
    local base=$1 repo=$2 tag=$3 cfg
    curl -sSf --max-time 30 -H "Accept: $OCI_MANIFEST" -o "$E2E_TMP/pulled.json" "$base/v2/$repo/manifests/$tag" || return 1
    cfg=$(json_get "$E2E_TMP/pulled.json" 'j["config"]["digest"]')
    curl -sSf --max-time 30 -o /dev/null "$base/v2/$repo/blobs/$cfg"
}
head_manifest() { # BASE REPO TAG: status of a manifest HEAD with the right Accept
    curl -sS --max-time 30 -I -o /dev/null -w '%{http_code}' -H "Accept: $OCI_MANIFEST" "$1/v2/$2/manifests/$3"
}

start_registry
start_regmeter
P_URL=$PROXY_URL P_HOSTPORT=$PROXY_HOSTPORT P_METRICS=$METRICS_URL
# Registry-side baseline: from here on only proxied requests reach it (its
# debug port, scraped here, is not counted).
scrape "$REGISTRY_METRICS_URL" >"$E2E_TMP/registry0.txt"
reg_total() { # the registry's own request count since the baseline [label=value...]
    local now base
    scrape "$REGISTRY_METRICS_URL" >"$E2E_TMP/registry1.txt"
    now=$(val "$E2E_TMP/registry1.txt" registry_http_requests_total "$@")
    base=$(val "$E2E_TMP/registry0.txt" registry_http_requests_total "$@")
    [[ "$now" == absent ]] && now=0
    [[ "$base" == absent ]] && base=0
    echo $((now - base))
}

# =============================================================== 5. pushes and pulls
REPO=team/app
IMG=$E2E_TMP/img
make_image "$IMG" v1 50K 150K
BLOB_BYTES=$(json_get "$IMG.json" 'sum(j["blobs"].values())')
CONFIG_SIZE=$(json_get "$IMG.json" 'j["blobs"][j["config"]]')
skopeo_ copy --dest-tls-verify=false "oci:$IMG:v1" "docker://$P_HOSTPORT/$REPO:v1" >"$E2E_TMP/push.log" 2>&1 \
    || { cat "$E2E_TMP/push.log" >&2; fail "skopeo push"; }
snap "$P_METRICS"
assert_eq 1 "$(v regmeter_image_pushes_total repository=$REPO)" "pushes after one skopeo push"
assert_eq "$BLOB_BYTES" "$(v regmeter_blob_bytes_total direction=upload repository=$REPO)" "upload bytes of the push"
assert_eq absent "$(v regmeter_image_pulls_total)" "no pull yet"
# A second tag: one more manifest PUT 201.
curl -sSf --max-time 30 -X PUT -H "Content-Type: $OCI_MANIFEST" --data-binary "@$IMG/blobs/sha256/$(json_get "$IMG.json" 'j["manifest"][7:]')" \
    -o /dev/null "$P_URL/v2/$REPO/manifests/v2" || fail "manifest PUT of tag v2"
# A manifest PUT the registry rejects (unknown config blob): not a push.
unknown=sha256:$(printf x | sha256sum | awk '{print $1}')
code=$(curl -sS --max-time 30 -X PUT -H "Content-Type: $OCI_MANIFEST" -o /dev/null -w '%{http_code}' \
    --data-binary "{\"schemaVersion\":2,\"mediaType\":\"$OCI_MANIFEST\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"$unknown\",\"size\":1},\"layers\":[]}" \
    "$P_URL/v2/$REPO/manifests/bad")
assert_eq 400 "$code" "manifest PUT naming an unknown blob"
snap "$P_METRICS"
assert_eq 2 "$(v regmeter_image_pushes_total repository=$REPO)" "pushes = manifest PUT 201s"

skopeo_ copy --src-tls-verify=false "docker://$P_HOSTPORT/$REPO:v1" "oci:$E2E_TMP/out:v1" >"$E2E_TMP/pull.log" 2>&1 \
    || { cat "$E2E_TMP/pull.log" >&2; fail "skopeo pull"; }
snap "$P_METRICS"
assert_eq 1 "$(v regmeter_image_pulls_total repository=$REPO)" "one pull after skopeo copy docker:// -> oci:"
assert_eq "$BLOB_BYTES" "$(v regmeter_blob_bytes_total direction=download repository=$REPO)" "download bytes = bytes of the pulled blobs"

# skopeo inspect: a manifest GET 200 (so it IS a pull, by the Docker Hub
# definition regmeter uses) plus a GET of the config blob.
skopeo_ inspect --tls-verify=false "docker://$P_HOSTPORT/$REPO:v1" >"$E2E_TMP/inspect.json" || fail "skopeo inspect"
snap "$P_METRICS"
assert_eq 2 "$(v regmeter_image_pulls_total repository=$REPO)" "skopeo inspect counts as a pull (manifest GET 200)"
assert_eq $((BLOB_BYTES + CONFIG_SIZE)) "$(v regmeter_blob_bytes_total direction=download repository=$REPO)" \
    "skopeo inspect downloads the config blob"

# A manifest HEAD (how clients check a tag) is not a pull; neither is a 404 GET.
assert_eq 200 "$(head_manifest "$P_URL" "$REPO" v1)" "manifest HEAD"
assert_eq 200 "$(head_manifest "$P_URL" "$REPO" v2)" "manifest HEAD (v2)"
assert_eq 404 "$(http_code "$P_URL/v2/$REPO/manifests/nope" -H "Accept: $OCI_MANIFEST")" "GET of an unknown tag"
assert_eq 200 "$(http_code "$P_URL/v2/$REPO/tags/list")" "tags list"
assert_eq 200 "$(http_code "$P_URL/v2/$REPO/blobs/$(json_get "$IMG.json" 'j["config"]')" -I)" "blob HEAD"
snap "$P_METRICS"
assert_eq 2 "$(v regmeter_image_pulls_total repository=$REPO)" "HEADs and a 404 GET are not pulls"
assert_eq $((BLOB_BYTES + CONFIG_SIZE)) "$(v regmeter_blob_bytes_total direction=download repository=$REPO)" \
    "a blob HEAD moves no blob bytes"
# Cross-check against the registry's own counters: pulls = its manifest GET 200s.
assert_eq 2 "$(reg_total handler=manifest method=get code=200)" "registry-side manifest GET 200s"
assert_eq 2 "$(reg_total handler=manifest method=put code=201)" "registry-side manifest PUT 201s"
log "5. pushes=2, pulls=2 (skopeo copy + skopeo inspect), HEADs not counted"

# =============================================================== 7. upstream timing
# Every request of the workload above went through P and got its answer from
# the registry. skopeo first tries TLS on the plain port; if regmeter ever
# answers that itself, it is handler="other" (not classified, never sent
# upstream), so it is left out of the proxy-side count.
snap "$P_METRICS"
headers=$(v regmeter_upstream_header_seconds_count)
other=$(v registry_http_requests_total handler=other)
[[ "$other" == absent ]] && other=0
proxy_total=$(( $(v registry_http_requests_total) - other ))
registry_total=$(reg_total)
log "upstream_header count $headers, proxy requests $proxy_total (+$other handler=other), registry requests $registry_total"
assert_eq "$registry_total" "$headers" "upstream_header_seconds_count = requests the registry counted"
assert_eq "$proxy_total" "$headers" "upstream_header_seconds_count = requests the proxy counted (no local answers)"
for h in base blob blob_upload blob_upload_chunk manifest tags; do
    for m in get head post put patch; do
        p=$(v regmeter_upstream_header_seconds_count handler=$h method=$m)
        r=$(reg_total handler=$h method=$m)
        [[ "$p" == absent ]] && p=0
        assert_eq "$r" "$p" "upstream_header_seconds_count{handler=$h,method=$m} vs the registry's count"
    done
done
connects=$(v regmeter_upstream_connect_seconds_count)
(( connects >= 1 )) || fail "regmeter_upstream_connect_seconds_count is $connects"
assert_le "$headers" "$connects" "new upstream connections <= requests"
assert_eq absent "$(v regmeter_auth_challenges_total)" "no auth challenge without auth"
log "7. upstream_header count = $headers = registry's count; $connects new upstream connection(s)"

# =============================================================== 6. --max-repositories
start_regmeter --max-repositories 2
M2_URL=$PROXY_URL M2_METRICS=$METRICS_URL
start_regmeter --max-repositories 0
M0_URL=$PROXY_URL M0_METRICS=$METRICS_URL
REPO_FAMILIES='^regmeter_(image_pushes_total|image_pulls_total|blob_bytes_total)[{ ]'

# A HEAD to a repository takes no name.
assert_eq 404 "$(head_manifest "$M2_URL" lim/head-only v1)" "HEAD of an unknown repository"
for r in lim/r1 lim/r2 lim/r3 lim/r4 lim/r5; do
    for base in "$M2_URL" "$M0_URL"; do
        read -r _ size < <(curl_image "$base" "$r" "v-${base##*:}") || fail "push to $r via $base"
        curl_pull "$base" "$r" "v-${base##*:}" || fail "pull of $r via $base"
    done
done
CFG=$size   # every config blob has the same length
snap "$M2_METRICS"
series=$(grep -E "$REPO_FAMILIES" "$E2E_TMP/snap.txt" | sed -n 's/.*repository="\([^"]*\)".*/\1/p' | LC_ALL=C sort -u | tr '\n' ' ')
assert_eq "__other__ lim/r1 lim/r2 " "$series" "repository label values with --max-repositories 2"
for r in lim/r1 lim/r2; do
    assert_eq 1 "$(v regmeter_image_pushes_total repository=$r)" "pushes{$r}"
    assert_eq 1 "$(v regmeter_image_pulls_total repository=$r)" "pulls{$r}"
    assert_eq "$CFG" "$(v regmeter_blob_bytes_total repository=$r direction=upload)" "upload bytes{$r}"
    assert_eq "$CFG" "$(v regmeter_blob_bytes_total repository=$r direction=download)" "download bytes{$r}"
done
assert_eq 3 "$(v regmeter_image_pushes_total repository=__other__)" "pushes{__other__}"
assert_eq 3 "$(v regmeter_image_pulls_total repository=__other__)" "pulls{__other__}"
assert_eq $((3 * CFG)) "$(v regmeter_blob_bytes_total repository=__other__ direction=upload)" "upload bytes{__other__}"
assert_eq $((3 * CFG)) "$(v regmeter_blob_bytes_total repository=__other__ direction=download)" "download bytes{__other__}"
# The assignment is stable: r1 keeps its name, a new name still goes to __other__.
curl_image "$M2_URL" lim/r1 again >/dev/null || fail "second push to lim/r1"
curl_image "$M2_URL" lim/r6 v1 >/dev/null || fail "push to lim/r6"
snap "$M2_METRICS"
assert_eq 2 "$(v regmeter_image_pushes_total repository=lim/r1)" "pushes{lim/r1} after another push"
assert_eq 4 "$(v regmeter_image_pushes_total repository=__other__)" "pushes{__other__} after a sixth repository"
assert_eq 7 "$(v regmeter_image_pushes_total)" "pushes, all series (r1: 2, r2: 1, __other__: 4)"

snap "$M0_METRICS"
lines=$(grep -cE "$REPO_FAMILIES" "$E2E_TMP/snap.txt" || true)
assert_eq 4 "$lines" "--max-repositories 0: pushes, pulls, and one blob_bytes series per direction"
if grep -E "$REPO_FAMILIES" "$E2E_TMP/snap.txt" | grep -q 'repository='; then
    fail "--max-repositories 0 still has a repository label: $(grep -E "$REPO_FAMILIES" "$E2E_TMP/snap.txt" | tr '\n' ' ')"
fi
assert_eq 5 "$(v regmeter_image_pushes_total)" "pushes without the label"
assert_eq 5 "$(v regmeter_image_pulls_total)" "pulls without the label"
assert_eq $((5 * CFG)) "$(v regmeter_blob_bytes_total direction=upload)" "upload bytes without the label"
assert_eq $((5 * CFG)) "$(v regmeter_blob_bytes_total direction=download)" "download bytes without the label"
grep -q '^regmeter_image_pushes_total 5$' "$E2E_TMP/snap.txt" || fail "pushes series is not unlabelled: $(grep regmeter_image_pushes_total "$E2E_TMP/snap.txt" | tr '\n' ' ')"
log "6. --max-repositories 2 and 0 as documented"

# =============================================================== 7b. 401s (htpasswd registry)
AUTH_DIR=$E2E_TMP/auth-registry
mkdir -p "$AUTH_DIR/data"
AUTH_PORT=$(free_port) AUTH_DEBUG=$(free_port)
python3 -W ignore -c 'import crypt; print("alice:" + crypt.crypt("s3cret", crypt.mksalt(crypt.METHOD_BLOWFISH)))' >"$AUTH_DIR/htpasswd"
grep -q '^alice:\$2' "$AUTH_DIR/htpasswd" || skip "no bcrypt in crypt(3) to build an htpasswd file"
cat >"$AUTH_DIR/config.yml" <<YML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $AUTH_DIR/data
auth:
  htpasswd:
    realm: regmeter-e2e
    path: $AUTH_DIR/htpasswd
http:
  addr: 127.0.0.1:$AUTH_PORT
  debug:
    addr: 127.0.0.1:$AUTH_DEBUG
    prometheus:
      enabled: true
      path: /metrics
YML
docker-registry serve "$AUTH_DIR/config.yml" >"$AUTH_DIR/log" 2>&1 &
register_pid $!
register_log "$AUTH_DIR/log"
AUTH_METRICS=http://127.0.0.1:$AUTH_DEBUG/metrics
wait_until "$E2E_WAIT" "htpasswd registry" http_is 401 "http://127.0.0.1:$AUTH_PORT/v2/"
RM_UPSTREAM=http://127.0.0.1:$AUTH_PORT start_regmeter
A_URL=$PROXY_URL A_METRICS=$METRICS_URL
scrape "$AUTH_METRICS" >"$E2E_TMP/auth0.txt"
CRED=(-u alice:s3cret)

assert_eq 401 "$(req GET "$A_URL/v2/")" "/v2/ without credentials"
assert_match '^Basic realm="?regmeter-e2e' "$(header "$E2E_TMP/last.hdr" WWW-Authenticate)" "challenge passed through"
assert_eq 200 "$(req GET "$A_URL/v2/" "${CRED[@]}")" "/v2/ with credentials"
assert_eq 401 "$(head_manifest "$A_URL" auth/app v1)" "manifest HEAD without credentials"
assert_eq 401 "$(req POST "$A_URL/v2/auth/app/blobs/uploads/")" "upload POST without credentials"
assert_eq 202 "$(req POST "$A_URL/v2/auth/app/blobs/uploads/" "${CRED[@]}")" "upload POST with credentials"
loc=$(abs_url "$A_URL" "$(last_location)")
BLOB=$E2E_TMP/auth.bin
random_file "$BLOB" 4096
digest=sha256:$(sha256_file "$BLOB")
assert_eq 401 "$(req PATCH "$loc" -H 'Content-Type: application/octet-stream' --data-binary "@$BLOB")" "PATCH without credentials"
assert_eq 202 "$(req PATCH "$loc" "${CRED[@]}" -H 'Content-Type: application/octet-stream' --data-binary "@$BLOB")" "PATCH retried with credentials"
loc=$(abs_url "$A_URL" "$(last_location)")
assert_eq 201 "$(req PUT "$(add_query "$loc" "digest=$digest")" "${CRED[@]}" --data-binary '')" "PUT with credentials"
snap "$A_METRICS"
scrape "$AUTH_METRICS" >"$E2E_TMP/auth1.txt"
for h in base manifest blob_upload blob_upload_chunk; do
    now=$(val "$E2E_TMP/auth1.txt" registry_http_requests_total handler=$h code=401)
    base=$(val "$E2E_TMP/auth0.txt" registry_http_requests_total handler=$h code=401)
    [[ "$base" == absent ]] && base=0
    assert_eq 1 "$((now - base))" "registry-side 401s for $h (test setup)"
    assert_eq 1 "$(v regmeter_auth_challenges_total handler=$h)" "auth_challenges_total{handler=$h}"
done
assert_eq 4 "$(v regmeter_auth_challenges_total)" "auth_challenges_total, all handlers"
assert_eq 4 "$(v registry_http_requests_total code=401)" "proxy-side 401 count"
# The 401 PATCH did not end the session: it completed, and its size is the
# accepted PATCH's body (the client retried with the Location it had, so the
# rejected attempt's bytes are not session bytes).
assert_eq 1 "$(ses duration_seconds count completed)" "session completed despite a 401 in the middle"
assert_eq 4096 "$(ses size_bytes sum completed)" "session size = the accepted PATCH body"
assert_eq absent "$(ses duration_seconds count failed)" "a 401 is not a failed session"
log "7b. 401s counted per handler; a 401 leaves an upload session open"
log "PASS"
