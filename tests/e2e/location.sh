#!/usr/bin/env bash
# A registry configured with http.host = its own address hands out absolute
# Locations that bypass the proxy; regmeter rewrites them to its own address,
# keeping path and query (_state) byte for byte, so uploads stay metered.
. "$(dirname "$0")/lib.sh"
require_proxy

port=$(free_port)
REGISTRY_HOST_URL=http://127.0.0.1:$port start_registry "$port"
start_regmeter

# Sanity: straight from the registry the Location names the registry itself.
direct=$(start_upload "$REGISTRY_URL" loc/direct) || fail "POST to the registry"
assert_match "^$REGISTRY_URL/v2/loc/direct/blobs/uploads/.*_state=" "$direct" "the registry's own Location (test setup)"

on_proxy() { # location what
    assert_match "^($PROXY_URL)?/v2/" "$1" "$2: Location points at the proxy"
}

BLOB=$E2E_TMP/blob.bin
random_file "$BLOB" 1M
DIGEST=sha256:$(sha256_file "$BLOB")

code=$(curl -sS -X POST -D "$E2E_TMP/post.hdr" -o /dev/null -w '%{http_code}' "$PROXY_URL/v2/loc/app/blobs/uploads/")
assert_eq 202 "$code" "POST upload through the proxy"
loc=$(header "$E2E_TMP/post.hdr" Location)
on_proxy "$loc" "POST"
# The registry's upload id and _state stay; regmeter may append parameters of
# its own after them.
assert_match '^[^?]*/blobs/uploads/[0-9a-f-]+\?_state=[A-Za-z0-9_=%.-]+(&.*)?$' "$loc" "POST Location shape"

code=$(curl -sS -X PATCH -H 'Content-Type: application/octet-stream' --data-binary "@$BLOB" \
    -D "$E2E_TMP/patch.hdr" -o /dev/null -w '%{http_code}' "$(abs_url "$PROXY_URL" "$loc")")
assert_eq 202 "$code" "PATCH through the rewritten Location"
loc=$(header "$E2E_TMP/patch.hdr" Location)
on_proxy "$loc" "PATCH"

code=$(curl -sS -X PUT --data-binary '' -D "$E2E_TMP/put.hdr" -o /dev/null -w '%{http_code}' \
    "$(add_query "$(abs_url "$PROXY_URL" "$loc")" "digest=$DIGEST")")
assert_eq 201 "$code" "PUT ?digest= through the rewritten Location"
loc=$(header "$E2E_TMP/put.hdr" Location)
on_proxy "$loc" "PUT (blob Location)"
got=$(curl -sS "$(abs_url "$PROXY_URL" "$loc")" | sha256sum | awk '{print $1}')
assert_eq "${DIGEST#sha256:}" "$got" "blob fetched from the PUT's Location"

# skopeo follows the Locations: every upload request must reach the proxy.
IMG=$E2E_TMP/img
make_image "$IMG" v1 1K 2M 100K
skopeo_ copy --dest-tls-verify=false "oci:$IMG:v1" "docker://$PROXY_HOSTPORT/loc/skopeo:v1" >"$E2E_TMP/push.log" 2>&1 \
    || { cat "$E2E_TMP/push.log" >&2; fail "skopeo push"; }
# 1 curl PATCH + 4 skopeo PATCHes (3 layers + config), same for the PUTs.
assert_eq 5 "$(metric registry_http_requests_total handler=blob_upload_chunk method=patch code=202)" "PATCHes seen by the proxy"
assert_eq 5 "$(metric registry_http_requests_total handler=blob_upload_chunk method=put code=201)" "upload PUTs seen by the proxy"
log "PASS"
