#!/usr/bin/env bash
# SIGHUP reloads --tls-cert/--tls-key without dropping connections:
#  - a slow (curl --limit-rate 50M) download of a 200 MiB blob through the TLS
#    proxy (TLS to the registry too) is running when the files are replaced by
#    a new leaf (new serial, same CA) and regmeter gets SIGHUP; the download
#    completes with the right sha256, and a new connection sees the new serial;
#  - a broken key file, then a key that does not match the certificate: each
#    SIGHUP logs that the reload failed, and the proxy keeps serving with the
#    previous certificate;
#  - a good pair again: the next SIGHUP takes it.
. "$(dirname "$0")/tls_lib.sh"
require_proxy

BLOB_SIZE=$((200 << 20))
RATE=50M

tls_setup_pki
tls_make_leaf "$TLS_DIR" next 1005 server || fail "making the replacement leaf"
tls_make_leaf "$TLS_DIR" third 1006 server || fail "making the third leaf"
tls_make_leaf "$TLS_DIR" other 1007 server || fail "making a leaf for the mismatched key"

# The proxy serves the files under live/; the test swaps what they hold.
LIVE=$E2E_TMP/live
mkdir -p "$LIVE"
install_pair() { # CERT KEY: replace the live files (each by an atomic rename)
    cp "$1" "$LIVE/tls.crt.new" && mv -f "$LIVE/tls.crt.new" "$LIVE/tls.crt"
    cp "$2" "$LIVE/tls.key.new" && mv -f "$LIVE/tls.key.new" "$LIVE/tls.key"
}
install_pair "$TLS_CERT" "$TLS_KEY"

start_registry_tls
TLS_CERT=$LIVE/tls.crt TLS_KEY=$LIVE/tls.key start_regmeter_tls --upstream-ca "$TLS_CA"
serial() { cert_serial "$PROXY_HOSTPORT" -CAfile "$TLS_CA"; }
assert_eq 1001 "$(serial)" "serial served at start"

BLOB=$E2E_TMP/blob.bin
random_file "$BLOB" "$BLOB_SIZE"
DIGEST=$(push_blob "$REGISTRY_URL" reload/blob "$BLOB") || fail "seeding the blob into the registry"
log "seeded $DIGEST ($BLOB_SIZE bytes)"

hup_and_wait() { # REGEX: SIGHUP, then wait for one more log line matching REGEX
    local before
    before=$(grep -E -c -- "$1" "$RM_LOG" || true)
    kill -HUP "$RM_PID"
    local deadline=$((SECONDS + 10))
    until (( $(grep -E -c -- "$1" "$RM_LOG" || true) > before )); do
        ((SECONDS < deadline)) || fail "no log line /$1/ within 10 s of SIGHUP: $(tail -5 "$RM_LOG")"
        sleep 0.1
    done
}

# ---- a slow download across the reload
DL=$E2E_TMP/dl.bin
curl -sS --max-time 120 --limit-rate "$RATE" -o "$DL" -w '%{http_code} %{size_download} %{num_connects}\n' \
    "$PROXY_URL/v2/reload/blob/blobs/$DIGEST" >"$E2E_TMP/dl.stat" 2>"$E2E_TMP/dl.err" &
DL_PID=$!
downloaded_at_least() { (( $(stat -c %s "$DL" 2>/dev/null || echo 0) >= $1 )); }
wait_until 30 "the download to pass 20 MiB" downloaded_at_least $((20 << 20))

install_pair "$TLS_DIR/next.crt" "$TLS_DIR/next.key"
hup_and_wait 'SIGHUP: TLS certificate and key reloaded'
got_at_hup=$(stat -c %s "$DL")
is_running "$DL_PID" || fail "the download had finished before the reload was done ($got_at_hup bytes)"
(( got_at_hup < BLOB_SIZE )) || fail "the download was complete at reload time"
log "reloaded with $got_at_hup of $BLOB_SIZE bytes downloaded"
figure "tls_reload_bytes_at_hup=$got_at_hup"

# New connections get the new certificate while the old download goes on.
assert_eq 1005 "$(serial)" "serial on a new connection after the reload"
assert_eq 200 "$(http_code "$PROXY_URL/v2/")" "GET /v2/ on a new connection after the reload"
is_running "$DL_PID" || fail "the download ended right after the reload"

deadline=$((SECONDS + 60))
while is_running "$DL_PID"; do
    ((SECONDS < deadline)) || fail "the download did not finish within 60 s"
    sleep 0.2
done
rc=0
wait "$DL_PID" || rc=$?
assert_eq 0 "$rc" "curl exit status of the download across the reload ($(cat "$E2E_TMP/dl.err"))"
read -r code bytes connects <"$E2E_TMP/dl.stat"
assert_eq 200 "$code" "status of the download across the reload"
assert_eq "$BLOB_SIZE" "$bytes" "bytes of the download across the reload"
assert_eq 1 "$connects" "connections the download needed"
assert_eq "${DIGEST#sha256:}" "$(sha256_file "$DL")" "sha256 of the download across the reload"
rm -f "$DL"

# ---- a broken key: reload fails, the previous certificate stays
printf -- '-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n' >"$LIVE/tls.key"
hup_and_wait 'SIGHUP: TLS reload failed'
log "  $(grep 'SIGHUP: TLS reload failed' "$RM_LOG" | tail -1)"
is_running "$RM_PID" || fail "regmeter died on a broken key"
assert_eq 1005 "$(serial)" "serial after a failed reload (broken key)"
assert_eq 200 "$(http_code "$PROXY_URL/v2/")" "GET /v2/ after a failed reload (broken key)"

# ---- a valid key that does not belong to the certificate: same
install_pair "$TLS_DIR/third.crt" "$TLS_DIR/other.key"
hup_and_wait 'SIGHUP: TLS reload failed'
log "  $(grep 'SIGHUP: TLS reload failed' "$RM_LOG" | tail -1)"
assert_eq 1005 "$(serial)" "serial after a failed reload (mismatched key)"
got=$(curl -sS --max-time 60 "$PROXY_URL/v2/reload/blob/blobs/$DIGEST" | sha256sum | awk '{print $1}')
assert_eq "${DIGEST#sha256:}" "$got" "sha256 of a download after the failed reloads"

# ---- a good pair again
install_pair "$TLS_DIR/third.crt" "$TLS_DIR/third.key"
hup_and_wait 'SIGHUP: TLS certificate and key reloaded'
assert_eq 1006 "$(serial)" "serial after reloading a good pair again"
assert_eq 200 "$(http_code "$PROXY_URL/v2/")" "GET /v2/ after the third certificate"
assert_eq 0 "$(metric regmeter_tls_handshake_errors_total side=client)" "client handshake errors across the reloads"
figure "tls_reload_peak_rss_kib=$(peak_rss_kib "$RM_PID")"
log "PASS"
