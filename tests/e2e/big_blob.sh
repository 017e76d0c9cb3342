#!/usr/bin/env bash
# A 1 GiB random blob through the proxy, both ways a real client uploads it:
#  (a) POST -> one chunked PATCH (streamed, no Content-Length) -> PUT ?digest=
#  (b) POST -> one monolithic PUT ?digest= with Content-Length
# then GET (streamed into sha256sum) and HEAD through the proxy. The proxy's
# peak RSS must stay under 64 MiB. Prints throughput and RSS figures.
. "$(dirname "$0")/lib.sh"

SIZE=1073741824
# Sanitized builds carry shadow memory: tests/sanitize.sh raises the bound.
RSS_LIMIT_KIB=${E2E_RSS_LIMIT_KIB:-$((64 * 1024))}

start_registry
start_regmeter

BIG=$E2E_TMP/big.bin
log "generating 1 GiB of random data"
random_file "$BIG" 1G
assert_eq "$SIZE" "$(stat -c %s "$BIG")" "size of the test file"
DIGEST=sha256:$(sha256_file "$BIG")
log "blob $DIGEST"

# curl -w fields: code, bytes, bytes/s.
W_UP='%{http_code} %{size_upload} %{speed_upload}\n'
W_DOWN='%{http_code} %{size_download} %{speed_download}\n'
mb_s() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }

# The upload Location must send the client back through the proxy.
check_location() { # location what
    case "$1" in
        "$PROXY_URL"/v2/* | /v2/*) ;;
        *) fail "$2: Location [$1] does not point at the proxy $PROXY_URL" ;;
    esac
    [[ "$1" == *"_state="* ]] || fail "$2: Location [$1] lost its _state query"
}

# ---- (a) chunked PATCH, then PUT ?digest= with an empty body
repo=big/chunked
loc=$(start_upload "$PROXY_URL" "$repo") || fail "POST upload through the proxy"
check_location "$loc" "POST $repo"
read -r code bytes speed < <(curl -sS --max-time 300 -X PATCH -H 'Transfer-Encoding: chunked' -H 'Expect:' \
    -H 'Content-Type: application/octet-stream' -T "$BIG" -D "$E2E_TMP/patch.hdr" -o "$E2E_TMP/patch.body" \
    -w "$W_UP" "$loc") || fail "curl PATCH failed"
assert_eq 202 "$code" "chunked PATCH status ($(cat "$E2E_TMP/patch.body"))"
(( bytes > SIZE )) || fail "curl sent only $bytes bytes (chunk framing included) in the PATCH"
assert_eq "0-$((SIZE - 1))" "$(header "$E2E_TMP/patch.hdr" Range)" "PATCH response Range"
figure "big_blob_patch_chunked_upload_mb_s=$(mb_s "$speed")"
loc=$(abs_url "$PROXY_URL" "$(header "$E2E_TMP/patch.hdr" Location)")
check_location "$loc" "PATCH $repo"
code=$(curl -sS --max-time 120 -X PUT -H 'Content-Type: application/octet-stream' --data-binary '' \
    -D "$E2E_TMP/put.hdr" -o "$E2E_TMP/put.body" -w '%{http_code}' "$(add_query "$loc" "digest=$DIGEST")")
assert_eq 201 "$code" "final PUT ?digest= after the PATCH ($(cat "$E2E_TMP/put.body"))"
assert_eq "$DIGEST" "$(header "$E2E_TMP/put.hdr" Docker-Content-Digest)" "final PUT Docker-Content-Digest"

# ---- (b) monolithic PUT ?digest= with Content-Length
repo=big/mono
loc=$(start_upload "$PROXY_URL" "$repo") || fail "POST upload through the proxy"
check_location "$loc" "POST $repo"
read -r code bytes speed < <(curl -sS --max-time 300 -X PUT -H 'Expect:' -H 'Content-Type: application/octet-stream' \
    -T "$BIG" -D "$E2E_TMP/mput.hdr" -o "$E2E_TMP/mput.body" -w "$W_UP" \
    "$(add_query "$loc" "digest=$DIGEST")") || fail "curl monolithic PUT failed"
assert_eq 201 "$code" "monolithic PUT status ($(cat "$E2E_TMP/mput.body"))"
assert_eq "$SIZE" "$bytes" "bytes curl sent in the PUT"
assert_eq "$DIGEST" "$(header "$E2E_TMP/mput.hdr" Docker-Content-Digest)" "monolithic PUT Docker-Content-Digest"
figure "big_blob_put_monolithic_upload_mb_s=$(mb_s "$speed")"

# ---- HEAD: exact Content-Length and the digest, no body
for repo in big/chunked big/mono; do
    code=$(curl -sS -I -D "$E2E_TMP/head.hdr" -o /dev/null -w '%{http_code}' "$PROXY_URL/v2/$repo/blobs/$DIGEST")
    assert_eq 200 "$code" "HEAD blob in $repo"
    assert_eq "$SIZE" "$(header "$E2E_TMP/head.hdr" Content-Length)" "HEAD Content-Length in $repo"
    assert_eq "$DIGEST" "$(header "$E2E_TMP/head.hdr" Docker-Content-Digest)" "HEAD Docker-Content-Digest in $repo"
done

# ---- GET back, streamed into sha256sum (never stored)
for repo in big/chunked big/mono; do
    got=$(curl -sS --max-time 300 -w "%{stderr}$W_DOWN" "$PROXY_URL/v2/$repo/blobs/$DIGEST" 2>"$E2E_TMP/get.stat" \
        | sha256sum | awk '{print $1}')
    read -r code bytes speed <"$E2E_TMP/get.stat" || true
    assert_eq 200 "$code" "GET blob from $repo"
    assert_eq "$SIZE" "$bytes" "bytes received from $repo"
    assert_eq "${DIGEST#sha256:}" "$got" "sha256 of the blob fetched from $repo"
done
# Download throughput without the hashing in the way.
read -r code bytes speed < <(curl -sS --max-time 300 -o /dev/null -w "$W_DOWN" "$PROXY_URL/v2/big/mono/blobs/$DIGEST")
assert_eq 200 "$code" "GET blob to /dev/null"
assert_eq "$SIZE" "$bytes" "bytes received to /dev/null"
figure "big_blob_get_download_mb_s=$(mb_s "$speed")"

# ---- the proxy's memory and what it counted
if proxy_mode; then
    rss=$(peak_rss_kib "$RM_PID")
    figure "peak_rss_kib=$rss"
    (( rss < RSS_LIMIT_KIB )) || fail "regmeter peak RSS ${rss} KiB >= ${RSS_LIMIT_KIB} KiB"

    # Reference figures: the same transfers straight to the registry.
    read -r code _ speed < <(curl -sS --max-time 300 -o /dev/null -w "$W_DOWN" "$REGISTRY_URL/v2/big/mono/blobs/$DIGEST")
    figure "big_blob_direct_get_download_mb_s=$(mb_s "$speed")"
    loc=$(start_upload "$REGISTRY_URL" big/direct) || fail "POST upload to the registry"
    read -r code _ speed < <(curl -sS --max-time 300 -X PUT -H 'Expect:' -H 'Content-Type: application/octet-stream' \
        -T "$BIG" -o /dev/null -w "$W_UP" "$(add_query "$loc" "digest=$DIGEST")")
    assert_eq 201 "$code" "direct monolithic PUT"
    figure "big_blob_direct_put_monolithic_upload_mb_s=$(mb_s "$speed")"
fi

# Response bytes of the three proxied blob GETs are in the response-size histogram.
resp=$(metric registry_http_response_size_bytes_sum handler=blob)
awk -v r="$resp" -v s="$SIZE" 'BEGIN { exit !(r >= 3 * s) }' \
    || fail "registry_http_response_size_bytes_sum{handler=blob} is $resp, expected >= 3 GiB"
assert_eq 2 "$(metric registry_http_requests_total handler=blob method=head code=200)" "HEAD blob count"
log "PASS"
