#!/usr/bin/env bash
# skopeo pushes a 4-layer random OCI image (one layer > 20 MiB) through the
# proxy to a nested repository, inspects it, lists tags, pulls it back, and
# checks every blob's sha256 and the manifest digest.
. "$(dirname "$0")/lib.sh"

start_registry
start_regmeter

REPO=team/app/web
IMG=$E2E_TMP/img
OUT=$E2E_TMP/out
make_image "$IMG" v1 4K 3M 21M 512K
MANIFEST=$(json_get "$IMG.json" 'j["manifest"]')
CONFIG=$(json_get "$IMG.json" 'j["config"]')
mapfile -t LAYERS < <(json_get "$IMG.json" 'j["layers"]')
log "image: manifest $MANIFEST, ${#LAYERS[@]} layers"
(( $(json_get "$IMG.json" 'max(j["blobs"].values())') >= 20 * 1024 * 1024 )) || fail "no layer >= 20 MiB"

# ---- push (POST -> PATCH -> PUT per blob, then PUT manifest)
t0=$(now_ms)
skopeo_ copy --dest-tls-verify=false "oci:$IMG:v1" "docker://$PROXY_HOSTPORT/$REPO:v1" \
    >"$E2E_TMP/push.log" 2>&1 || { cat "$E2E_TMP/push.log" >&2; fail "skopeo push through the proxy failed"; }
total=$(json_get "$IMG.json" 'sum(j["blobs"].values())')
figure "push_pull_push_mb_s=$(mbps "$total" $(($(now_ms) - t0)))"

# A second tag of the same image: blobs already exist (HEAD 200), manifest only.
skopeo_ copy --dest-tls-verify=false "oci:$IMG:v1" "docker://$PROXY_HOSTPORT/$REPO:v2" \
    >"$E2E_TMP/push2.log" 2>&1 || { cat "$E2E_TMP/push2.log" >&2; fail "second skopeo push (tag v2) failed"; }

# The content really reached the registry, under the nested name.
assert_eq 200 "$(http_code "$REGISTRY_URL/v2/$REPO/manifests/$MANIFEST" \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json')" "manifest by digest, straight from the registry"

# ---- manifest digest: raw bytes through the proxy are the bytes we pushed
skopeo_ inspect --tls-verify=false --raw "docker://$PROXY_HOSTPORT/$REPO:v1" >"$E2E_TMP/raw.json" \
    || fail "skopeo inspect --raw through the proxy failed"
assert_eq "$MANIFEST" "sha256:$(sha256_file "$E2E_TMP/raw.json")" "sha256 of the manifest from skopeo inspect --raw"
cmp -s "$E2E_TMP/raw.json" "$IMG/blobs/sha256/${MANIFEST#sha256:}" || fail "manifest bytes differ from the pushed ones"

# HEAD and GET of the manifest by tag: Docker-Content-Digest, Content-Type, Content-Length.
for method in HEAD GET; do
    hdr=$E2E_TMP/manifest.$method.hdr
    if [[ $method == HEAD ]]; then
        code=$(curl -sS -I -D "$hdr" -o /dev/null -w '%{http_code}' \
            -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$PROXY_URL/v2/$REPO/manifests/v1")
    else
        code=$(curl -sS -D "$hdr" -o "$E2E_TMP/manifest.body" -w '%{http_code}' \
            -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$PROXY_URL/v2/$REPO/manifests/v1")
        assert_eq "$MANIFEST" "sha256:$(sha256_file "$E2E_TMP/manifest.body")" "digest of GET manifest body"
    fi
    assert_eq 200 "$code" "$method manifest by tag"
    assert_eq "$MANIFEST" "$(header "$hdr" Docker-Content-Digest)" "$method manifest Docker-Content-Digest"
    assert_eq application/vnd.oci.image.manifest.v1+json "$(header "$hdr" Content-Type)" "$method manifest Content-Type"
    assert_eq "$(json_get "$IMG.json" 'j["manifest_size"]')" "$(header "$hdr" Content-Length)" "$method manifest Content-Length"
done

# ---- skopeo inspect (parsed) and list-tags
skopeo_ inspect --tls-verify=false "docker://$PROXY_HOSTPORT/$REPO:v1" >"$E2E_TMP/inspect.json" \
    || fail "skopeo inspect through the proxy failed"
assert_eq "$MANIFEST" "$(json_get "$E2E_TMP/inspect.json" 'j["Digest"]')" "skopeo inspect Digest"
assert_eq "$(printf '%s\n' "${LAYERS[@]}")" "$(json_get "$E2E_TMP/inspect.json" 'j["Layers"]')" "skopeo inspect Layers"
assert_eq "$PROXY_HOSTPORT/$REPO" "$(json_get "$E2E_TMP/inspect.json" 'j["Name"]')" "skopeo inspect Name"

skopeo_ list-tags --tls-verify=false "docker://$PROXY_HOSTPORT/$REPO" >"$E2E_TMP/tags.json" \
    || fail "skopeo list-tags through the proxy failed"
assert_eq "v1 v2" "$(json_get "$E2E_TMP/tags.json" '" ".join(sorted(j["Tags"]))')" "skopeo list-tags"

# The catalog lists the nested repository.
curl -sS "$PROXY_URL/v2/_catalog" >"$E2E_TMP/catalog.json"
assert_eq True "$(json_get "$E2E_TMP/catalog.json" '"'"$REPO"'" in j["repositories"]')" "repository in /v2/_catalog"

# ---- pull back through the proxy and compare every blob
t0=$(now_ms)
skopeo_ copy --src-tls-verify=false "docker://$PROXY_HOSTPORT/$REPO:v1" "oci:$OUT:v1" \
    >"$E2E_TMP/pull.log" 2>&1 || { cat "$E2E_TMP/pull.log" >&2; fail "skopeo pull through the proxy failed"; }
figure "push_pull_pull_mb_s=$(mbps "$total" $(($(now_ms) - t0)))"

assert_eq "$MANIFEST" "$(json_get "$OUT/index.json" 'j["manifests"][0]["digest"]')" "pulled manifest digest (index.json)"
for digest in "$MANIFEST" "$CONFIG" "${LAYERS[@]}"; do
    f=$OUT/blobs/sha256/${digest#sha256:}
    [[ -f "$f" ]] || fail "pulled layout lacks blob $digest"
    assert_eq "${digest#sha256:}" "$(sha256_file "$f")" "sha256 of pulled blob $digest"
    assert_eq "$(stat -c %s "$IMG/blobs/sha256/${digest#sha256:}")" "$(stat -c %s "$f")" "size of pulled blob $digest"
done

# Blob GET through the proxy: Docker-Content-Digest and body.
big=$(json_get "$IMG.json" 'max(j["blobs"], key=lambda d: j["blobs"][d])')
got=$(curl -sS "$PROXY_URL/v2/$REPO/blobs/$big" | sha256sum | awk '{print $1}')
assert_eq "${big#sha256:}" "$got" "sha256 of the biggest layer fetched with curl"

# ---- the proxy counted the push and the pull
# (In E2E_DIRECT=1 mode these are the registry's own counters: same names.)
assert_eq 5 "$(metric registry_http_requests_total handler=blob_upload method=post code=202)" "upload POST 202 count (4 layers + config)"
assert_eq 5 "$(metric registry_http_requests_total handler=blob_upload_chunk method=patch code=202)" "PATCH 202 count"
assert_eq 5 "$(metric registry_http_requests_total handler=blob_upload_chunk method=put code=201)" "upload PUT 201 count"
assert_eq 2 "$(metric registry_http_requests_total handler=manifest method=put code=201)" "manifest PUT 201 count"
pulls=$(metric registry_http_requests_total handler=blob method=get code=200)
(( pulls >= 6 )) || fail "blob GET 200 count is $pulls, expected >= 6 (5 blobs pulled + 1 curl)"
log "PASS"
