#!/usr/bin/env bash
# Two regmeter replicas in front of one docker-registry: an upload session
# opened through replica A (POST) and continued through replica B (PATCH, then
# PUT ?digest=, at A's Location with A's host:port replaced by B's) completes,
# and B observes the whole session from the `_rm` token alone: one `completed`
# session, size = the blob, duration >= the 1 s pause between POST and PATCH
# (and <= the wall time of the whole exchange). The registry's access log
# shows the upload requests and never an `_rm` parameter. A, which saw only
# the POST, counts the session as abandoned once its timeout passes (the
# documented limitation of per-replica abandonment).
. "$(dirname "$0")/lib.sh"
require_proxy

. "$(dirname "$0")/metrics_lib.sh"

# The registry, with its access log on (request lines with the full URI).
REG_DIR=$E2E_TMP/registry
mkdir -p "$REG_DIR/data"
REGISTRY_PORT=$(free_port) REG_DEBUG=$(free_port)
cat >"$REG_DIR/config.yml" <<YML
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $REG_DIR/data
http:
  addr: 127.0.0.1:$REGISTRY_PORT
  debug:
    addr: 127.0.0.1:$REG_DEBUG
    prometheus:
      enabled: true
      path: /metrics
YML
docker-registry serve "$REG_DIR/config.yml" >"$REG_DIR/log" 2>&1 &
register_pid $!
register_log "$REG_DIR/log"
REGISTRY_URL=http://127.0.0.1:$REGISTRY_PORT
wait_until "$E2E_WAIT" "docker-registry /v2/" http_is 200 "$REGISTRY_URL/v2/"

start_regmeter --upload-session-timeout 3
A_URL=$PROXY_URL A_METRICS=$METRICS_URL
start_regmeter
B_URL=$PROXY_URL B_METRICS=$METRICS_URL

REPO=replicas/app
BLOB=$E2E_TMP/blob.bin
random_file "$BLOB" 300K
SIZE=$(stat -c %s "$BLOB")
DIGEST=sha256:$(sha256_file "$BLOB")

t0=$(now_ms)
assert_eq 202 "$(req POST "$A_URL/v2/$REPO/blobs/uploads/")" "POST through replica A"
t1=$(now_ms)
loc=$(abs_url "$A_URL" "$(last_location)")
assert_match "^$A_URL/v2/$REPO/blobs/uploads/" "$loc" "A's Location points at A"
tok=$(rm_of "$loc")
assert_match '^[0-9a-f]+\.0$' "$tok" "A's _rm token"
start_ns=$(printf '%d' "0x${tok%.*}")
# The token's start is A's wall clock at the POST (ns).
(( start_ns / 1000000 >= t0 - 5 && start_ns / 1000000 <= t1 + 5 )) \
    || fail "_rm start $start_ns ns is not within the POST ($t0..$t1 ms)"

sleep 1
loc=$B_URL${loc#"$A_URL"}
t2=$(now_ms)
assert_eq 202 "$(req PATCH "$loc" -H 'Content-Type: application/octet-stream' --data-binary "@$BLOB")" "PATCH through replica B"
loc=$(abs_url "$B_URL" "$(last_location)")
assert_match "^$B_URL/v2/$REPO/blobs/uploads/" "$loc" "B's Location points at B"
assert_eq "${tok%.*}.$(printf '%x' "$SIZE")" "$(rm_of "$loc")" "B's _rm: A's start, the PATCH's bytes"
assert_eq 201 "$(req PUT "$(add_query "$loc" "digest=$DIGEST")" --data-binary '')" "PUT ?digest= through replica B"
t3=$(now_ms)
assert_eq "$DIGEST" "$(header "$E2E_TMP/last.hdr" Docker-Content-Digest)" "Docker-Content-Digest of the PUT"
got=$(curl -sS --max-time 30 "$B_URL/v2/$REPO/blobs/$DIGEST" | sha256sum | awk '{print $1}')
assert_eq "${DIGEST#sha256:}" "$got" "sha256 of the blob read back through B"
got=$(curl -sS --max-time 30 "$REGISTRY_URL/v2/$REPO/blobs/$DIGEST" | sha256sum | awk '{print $1}')
assert_eq "${DIGEST#sha256:}" "$got" "sha256 of the blob read straight from the registry"

snap "$B_METRICS"
assert_eq 1 "$(ses duration_seconds count completed)" "B: one completed session"
assert_eq 1 "$(v regmeter_upload_session_duration_seconds_count)" "B: no other session outcome"
assert_eq 1 "$(ses size_bytes count completed)" "B: completed size count"
assert_eq "$SIZE" "$(ses size_bytes sum completed)" "B: session size = blob size"
dur=$(ses duration_seconds sum completed)
gap=$(awk -v a="$t1" -v b="$t2" 'BEGIN { print (b - a) / 1000 }')
wall=$(awk -v a="$t0" -v b="$t3" 'BEGIN { print (b - a) / 1000 + 0.05 }')
log "B: session duration $dur s (POST->PATCH gap $gap s, wall $wall s)"
fge "$dur" 1 || fail "B: session duration $dur < 1 s"
fge "$dur" "$gap" || fail "B: session duration $dur < the POST->PATCH gap $gap s"
fge "$wall" "$dur" || fail "B: session duration $dur > wall time of the whole exchange $wall s"
assert_eq "$SIZE" "$(v regmeter_blob_bytes_total direction=upload repository=$REPO)" "B: upload bytes"

snap "$A_METRICS"
assert_eq absent "$(v regmeter_upload_session_duration_seconds_count)" "A: no session closed (it saw only the POST)"
assert_eq 0 "$(v regmeter_blob_bytes_total direction=upload repository=$REPO)" "A: the POST carried no bytes"

# The registry saw the upload requests with their _state, never _rm.
for m in POST PATCH PUT; do
    grep -q "\"$m /v2/$REPO/blobs/uploads/" "$REG_DIR/log" || fail "registry access log lacks the $m (log format changed?)"
done
grep -Eq "\"PATCH /v2/$REPO/blobs/uploads/[0-9a-f-]+\?_state=[^ &\"]+ HTTP/1.1\"" "$REG_DIR/log" \
    || fail "registry access log: PATCH target is not exactly /uploads/<id>?_state=..."
grep -Eq "\"PUT /v2/$REPO/blobs/uploads/[0-9a-f-]+\?_state=[^ &\"]+&digest=sha256:[0-9a-f]{64} HTTP/1.1\"" "$REG_DIR/log" \
    || fail "registry access log: PUT target is not exactly /uploads/<id>?_state=...&digest=..."
if grep -q '_rm' "$REG_DIR/log"; then
    fail "the registry saw _rm: $(grep '_rm' "$REG_DIR/log" | head -3)"
fi

# Documented limitation: A remembers the session it opened and, with no
# request for it within its timeout (3 s), counts it abandoned.
wait_val "$A_METRICS" 8 1 regmeter_upload_session_duration_seconds_count outcome=abandoned
assert_eq 0 "$(ses size_bytes sum abandoned)" "A: abandoned size (bytes A saw)"
snap "$B_METRICS"
assert_eq absent "$(ses duration_seconds count abandoned)" "B: the session it closed is not abandoned"
log "PASS"
