#!/usr/bin/env bash
# Upload sessions end to end (regmeter_upload_session_* and the upload side of
# regmeter_blob_bytes_total), with the real docker-registry and skopeo:
#   1. skopeo pushes 3 layers + config through proxy P: exactly 4 `completed`
#      sessions whose sizes add up to the pushed blob bytes.
#   2. On proxy Q (--upload-session-timeout 2): a cancelled upload kept open
#      past the timeout by status GETs, a monolithic POST ?digest= (answered
#      202 by distribution), a wrong-digest PUT (`failed`), a cross-repository
#      mount (`mounted`), a mount attempt answered 202 then DELETEd (what skopeo
#      does: `cancelled`), and a bare POST.
#   3. Q counts the bare POST and the monolithic POST as `abandoned` within a
#      few seconds, and nothing it already closed.
#      Each abandonment is an access-log event line naming the repository,
#      the upload id, the bytes received, the age and the idle time.
#   4. An upload begun straight at the registry (no _rm token) and finished
#      through P works and observes no session.
#   5. On proxy R (--upload-session-timeout 1): one PATCH streamed slowly for
#      about 4 s (what a big docker layer does at the default timeout), then
#      the PUT: the session is counted once, `completed`, never `abandoned`
#      (no event line either); a session whose PATCH the client cut off is
#      abandoned a timeout after the cut, not after its POST.
# Every blob is fresh random data, so skopeo's blob-info cache cannot turn the
# push into mounts (checked: 4 POSTs, no mount).
. "$(dirname "$0")/lib.sh"
require_proxy

start_registry
start_regmeter
P_URL=$PROXY_URL P_HOSTPORT=$PROXY_HOSTPORT P_METRICS=$METRICS_URL
start_regmeter --upload-session-timeout 2
Q_URL=$PROXY_URL Q_METRICS=$METRICS_URL Q_LOG=$RM_LOG
start_regmeter --upload-session-timeout 1
R_URL=$PROXY_URL R_METRICS=$METRICS_URL R_LOG=$RM_LOG

. "$(dirname "$0")/metrics_lib.sh"

# =============================================================== 1. skopeo push (P)
REPO=sessions/app
IMG=$E2E_TMP/img
make_image "$IMG" v1 100K 300K 1200K
NBLOBS=$(json_get "$IMG.json" 'len(j["blobs"])')
BLOB_BYTES=$(json_get "$IMG.json" 'sum(j["blobs"].values())')
assert_eq 4 "$NBLOBS" "test image: 3 layers + config"
log "pushing $NBLOBS blobs, $BLOB_BYTES bytes, with skopeo through P"
skopeo_ copy --dest-tls-verify=false "oci:$IMG:v1" "docker://$P_HOSTPORT/$REPO:v1" >"$E2E_TMP/push.log" 2>&1 \
    || { cat "$E2E_TMP/push.log" >&2; fail "skopeo push through P"; }

snap "$P_METRICS"
# Fresh blobs: one plain POST per blob, no mount attempt (else the counts
# below would be about skopeo's cache, not about regmeter).
assert_eq "$NBLOBS" "$(v registry_http_requests_total handler=blob_upload method=post code=202)" "upload POSTs answered 202"
assert_eq absent "$(v registry_http_requests_total handler=blob_upload method=post code=201)" "no mount (POST 201) during the push"

assert_eq "$NBLOBS" "$(ses duration_seconds count completed)" "completed session duration count"
assert_eq "$NBLOBS" "$(ses size_bytes count completed)" "completed session size count"
assert_eq "$BLOB_BYTES" "$(ses size_bytes sum completed)" "completed session size sum = pushed blob bytes"
fgt "$(ses duration_seconds sum completed)" 0 || fail "completed session duration sum is not > 0"
for outcome in mounted cancelled failed abandoned; do
    assert_eq absent "$(ses duration_seconds count $outcome)" "no $outcome session on P after a clean push"
done
chunk=$(v registry_http_request_size_bytes_sum handler=blob_upload_chunk)
fge "$chunk" "$BLOB_BYTES" || fail "request_size_bytes_sum{blob_upload_chunk} $chunk < pushed blob bytes $BLOB_BYTES"
assert_eq "$BLOB_BYTES" "$chunk" "request_size_bytes_sum{blob_upload_chunk}: skopeo sends every byte in PATCHes"
assert_eq "$BLOB_BYTES" "$(v regmeter_blob_bytes_total direction=upload repository=$REPO)" "blob_bytes_total{upload,$REPO}"
assert_eq absent "$(v regmeter_blob_bytes_total direction=download)" "nothing downloaded yet"
assert_eq 1 "$(v regmeter_image_pushes_total repository=$REPO)" "one manifest PUT 201"
log "1. skopeo push: $NBLOBS completed sessions, $BLOB_BYTES bytes"

# =============================================================== 2. outcomes on Q
QREPO=sessions/q

# --- a. cancelled, kept open by status GETs past the 2 s timeout
t0=$(now_ms)
assert_eq 202 "$(req POST "$Q_URL/v2/$QREPO/blobs/uploads/")" "POST (to cancel)"
loc=$(abs_url "$Q_URL" "$(last_location)")
tok=$(rm_of "$loc")
assert_match '^[0-9a-f]+\.0$' "$tok" "_rm token on the POST Location"
for i in 1 2; do
    sleep 1.1
    assert_eq 204 "$(req GET "$loc")" "status GET $i"
    loc=$(abs_url "$Q_URL" "$(last_location)")
    assert_eq "$tok" "$(rm_of "$loc")" "status GET $i hands the same _rm back"
done
sleep 1.1
assert_eq 204 "$(req DELETE "$loc")" "DELETE the upload"
t1=$(now_ms)
snap "$Q_METRICS"
# 3.3 s from POST to DELETE, never 2 s without a request: not abandoned.
assert_eq 1 "$(ses duration_seconds count cancelled)" "cancelled count"
assert_eq 0 "$(ses size_bytes sum cancelled)" "cancelled size (no body sent)"
assert_eq absent "$(ses duration_seconds count abandoned)" "status GETs kept the session open (not abandoned)"
dur=$(ses duration_seconds sum cancelled)
fge "$dur" 3.3 || fail "cancelled session duration $dur < 3.3 s (POST to DELETE)"
fge "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print (b - a) / 1000 + 0.05 }')" "$dur" \
    || fail "cancelled session duration $dur exceeds the wall time of POST..DELETE"

# --- b. monolithic POST ?digest= with the whole blob: distribution 2.8
# ignores the digest and the body and answers 202 with a fresh upload URL.
MONO=$E2E_TMP/mono.bin
random_file "$MONO" 7000
mono_digest=sha256:$(sha256_file "$MONO")
assert_eq 202 "$(req POST "$Q_URL/v2/$QREPO/blobs/uploads/?digest=$mono_digest" \
    -H 'Content-Type: application/octet-stream' --data-binary "@$MONO")" "monolithic POST ?digest= (distribution answers 202)"
mono_loc=$(last_location)
assert_match '/blobs/uploads/[0-9a-f-]+\?_state=' "$mono_loc" "monolithic POST hands out an upload URL"
# regmeter opened a session and counted the body it carried.
assert_eq 7000 "$(rm_bytes "$(rm_of "$mono_loc")")" "_rm bytes after a monolithic POST with a 7000-byte body"
assert_eq 404 "$(http_code "$REGISTRY_URL/v2/$QREPO/blobs/$mono_digest" -I)" "the registry did not store the monolithic body"

# --- c. failed: the final PUT names a wrong digest (400 DIGEST_INVALID)
BAD=$E2E_TMP/bad.bin
random_file "$BAD" 3000
assert_eq 202 "$(req POST "$Q_URL/v2/$QREPO/blobs/uploads/")" "POST (to fail)"
loc=$(abs_url "$Q_URL" "$(last_location)")
assert_eq 202 "$(req PATCH "$loc" -H 'Content-Type: application/octet-stream' --data-binary "@$BAD")" "PATCH (to fail)"
loc=$(abs_url "$Q_URL" "$(last_location)")
assert_eq 3000 "$(rm_bytes "$(rm_of "$loc")")" "_rm bytes after the PATCH"
wrong=sha256:$(printf 'not the blob' | sha256sum | awk '{print $1}')
assert_eq 400 "$(req PUT "$(add_query "$loc" "digest=$wrong")" --data-binary '')" "PUT of a wrong digest"
assert_contains DIGEST_INVALID "$(cat "$E2E_TMP/last.body")" "registry error for the wrong digest"
snap "$Q_METRICS"
assert_eq 1 "$(ses duration_seconds count failed)" "failed count"
assert_eq 3000 "$(ses size_bytes sum failed)" "failed session size (the PATCH body)"

# --- d. mounted: the blob exists in sessions/src (seeded straight at the registry)
SRC=$E2E_TMP/src.bin
random_file "$SRC" 5000
src_digest=$(push_blob "$REGISTRY_URL" sessions/src "$SRC") || fail "seed blob for the mount"
assert_eq 201 "$(req POST "$Q_URL/v2/$QREPO/blobs/uploads/?mount=$src_digest&from=sessions/src")" "cross-repo mount of an existing blob"
assert_eq "$src_digest" "$(header "$E2E_TMP/last.hdr" Docker-Content-Digest)" "mount answer digest"
snap "$Q_METRICS"
assert_eq 1 "$(ses duration_seconds count mounted)" "mounted count"
assert_eq 0 "$(ses size_bytes sum mounted)" "mounted size (no bytes moved)"
assert_eq 200 "$(http_code "$REGISTRY_URL/v2/$QREPO/blobs/$src_digest" -I)" "mounted blob present in the target repository"

# A mount of a blob the source does not have: 202 opens a session, which
# skopeo would DELETE: `cancelled`.
missing=sha256:$(printf 'no such blob %s' "$RANDOM" | sha256sum | awk '{print $1}')
assert_eq 202 "$(req POST "$Q_URL/v2/$QREPO/blobs/uploads/?mount=$missing&from=sessions/src")" "mount of an unknown blob (202)"
loc=$(abs_url "$Q_URL" "$(last_location)")
assert_eq 204 "$(req DELETE "$loc")" "DELETE after a mount answered 202"
snap "$Q_METRICS"
assert_eq 2 "$(ses duration_seconds count cancelled)" "cancelled count after the failed mount attempt"

# --- e. a POST, then nothing
assert_eq 202 "$(req POST "$Q_URL/v2/$QREPO/blobs/uploads/")" "POST (to abandon)"
bare_loc=$(last_location)
log "2. cancelled/failed/mounted observed on Q; waiting for the abandoned sweep"

# =============================================================== 3. abandoned
# Open now on Q: the monolithic-POST session and the bare POST. Both must be
# counted abandoned within ~5 s; none of the closed ones may be counted again.
wait_val "$Q_METRICS" 8 2 regmeter_upload_session_duration_seconds_count outcome=abandoned
sleep 2.5   # more sweeps (every 0.1 s) and another full timeout
snap "$Q_METRICS"
assert_eq 2 "$(ses duration_seconds count abandoned)" "abandoned count (bare POST + monolithic POST), nothing closed counted twice"
assert_eq 2 "$(ses size_bytes count abandoned)" "abandoned size count"
assert_eq 7000 "$(ses size_bytes sum abandoned)" "abandoned size sum (the monolithic POST's body)"
dur=$(ses duration_seconds sum abandoned)
fgt 1 "$dur" || fail "abandoned durations are up to the last request (~0 s each), got $dur"
assert_eq 2 "$(ses duration_seconds count cancelled)" "cancelled count unchanged"
assert_eq 1 "$(ses duration_seconds count failed)" "failed count unchanged"
assert_eq 1 "$(ses duration_seconds count mounted)" "mounted count unchanged"
assert_eq absent "$(ses duration_seconds count completed)" "no completed session on Q"
# Upload bytes on Q: 7000 (monolithic POST) + 3000 (PATCH) = 10000.
assert_eq 10000 "$(v regmeter_blob_bytes_total direction=upload repository=$QREPO)" "blob_bytes_total{upload} on Q"
# One access-log event line per abandoned session (Q logs to stdout, into its log).
upload_id() { sed -n 's|.*/blobs/uploads/\([^?/]*\).*|\1|p' <<<"$1"; }
python3 - "$Q_LOG" "$QREPO" "$(upload_id "$mono_loc")" "$(upload_id "$bare_loc")" <<'PY' || fail "abandoned event lines on Q"
import json, sys
path, repo, mono, bare = sys.argv[1:]
events = [json.loads(l) for l in open(path) if l.startswith("{") and '"event":' in l]
abandoned = {e["upload_session"]: e for e in events if e["event"] == "upload_session_abandoned"}
assert len(abandoned) == 2 and len(events) == 2, events
assert set(abandoned) == {mono, bare}, (abandoned.keys(), mono, bare)
for e in abandoned.values():
    assert e["repository"] == repo, e
    assert e["time"].endswith("Z") and "T" in e["time"], e
    assert 2.0 <= e["idle_s"] <= e["age_s"] < 10, e   # idle past the 2 s timeout, not long past it
assert abandoned[mono]["bytes"] == 7000 and abandoned[bare]["bytes"] == 0, abandoned
print("abandoned event lines ok:", sorted(abandoned))
PY
log "3. abandoned: 2 within the timeout, closed sessions not counted again, 2 event lines"

# =============================================================== 4. no _rm: no session
DIRECT=$E2E_TMP/direct.bin
random_file "$DIRECT" 20000
direct_digest=sha256:$(sha256_file "$DIRECT")
loc=$(start_upload "$REGISTRY_URL" "$REPO") || fail "POST straight to the registry"
assert_match "^$REGISTRY_URL/" "$loc" "the registry's own Location"
[[ "$loc" != *_rm=* ]] || fail "a Location from the registry itself carries _rm"
loc=$P_URL${loc#"$REGISTRY_URL"}
snap "$P_METRICS"
before=$(v regmeter_upload_session_duration_seconds_count)
assert_eq 202 "$(req PATCH "$loc" -H 'Content-Type: application/octet-stream' --data-binary "@$DIRECT")" "PATCH through P without _rm"
loc=$(abs_url "$P_URL" "$(last_location)")
[[ "$loc" != *_rm=* ]] || fail "P handed out an _rm for a session it never saw start: $loc"
assert_eq 201 "$(req PUT "$(add_query "$loc" "digest=$direct_digest")" --data-binary '')" "PUT ?digest= through P without _rm"
got=$(curl -sS "$REGISTRY_URL/v2/$REPO/blobs/$direct_digest" | sha256sum | awk '{print $1}')
assert_eq "${direct_digest#sha256:}" "$got" "blob uploaded without _rm, read back from the registry"
snap "$P_METRICS"
assert_eq "$before" "$(v regmeter_upload_session_duration_seconds_count)" "no session observed without a known start"
assert_eq "$NBLOBS" "$(ses size_bytes count completed)" "completed size count on P unchanged"
assert_eq $((BLOB_BYTES + 20000)) "$(v regmeter_blob_bytes_total direction=upload repository=$REPO)" \
    "blob_bytes_total still counts the bytes of a session without _rm"
log "4. upload without _rm: works, no session observed"

# =============================================================== 5. a slow PATCH (R)
# One PATCH that streams for ~4 s, four times R's 1 s session timeout: the
# session has a request in flight all that time, so it is not abandoned.
RREPO=sessions/slow
SLOW=$E2E_TMP/slow.bin
random_file "$SLOW" 40000
slow_digest=sha256:$(sha256_file "$SLOW")
assert_eq 202 "$(req POST "$R_URL/v2/$RREPO/blobs/uploads/")" "POST (slow upload)"
loc=$(abs_url "$R_URL" "$(last_location)")
t0=$(now_ms)
# Chunked like docker's PATCH, 10 kB/s.
assert_eq 202 "$(req PATCH "$loc" --limit-rate 10k -H 'Transfer-Encoding: chunked' \
    -H 'Content-Type: application/octet-stream' --data-binary "@$SLOW")" "slow PATCH"
patch_ms=$(($(now_ms) - t0))
((patch_ms >= 3000)) || fail "the slow PATCH took only $patch_ms ms; it must outlast the 1 s timeout several times"
loc=$(abs_url "$R_URL" "$(last_location)")
assert_eq 201 "$(req PUT "$(add_query "$loc" "digest=$slow_digest")" --data-binary '')" "PUT after the slow PATCH"
sleep 1.5   # past another timeout: nothing may be swept now either
snap "$R_METRICS"
assert_eq absent "$(ses duration_seconds count abandoned)" "a session with a PATCH in flight is never abandoned"
assert_eq 1 "$(ses duration_seconds count completed)" "the slow session counted once, completed"
assert_eq 40000 "$(ses size_bytes sum completed)" "the slow session's size"
dur=$(ses duration_seconds sum completed)
fge "$dur" "$(awk -v ms="$patch_ms" 'BEGIN { print ms / 1000 }')" || fail "completed duration $dur < the PATCH's $patch_ms ms"
! grep -q '"event":"upload_session_abandoned"' "$R_LOG" || fail "R logged an abandoned session: $(grep '"event"' "$R_LOG")"

# A PATCH the client cuts off after ~2 s: the session is idle from the cut
# on, and abandoned a timeout later (its idle time counts from the cut).
assert_eq 202 "$(req POST "$R_URL/v2/$RREPO/blobs/uploads/")" "POST (cut upload)"
loc=$(abs_url "$R_URL" "$(last_location)")
cut_id=$(upload_id "$loc")
curl -sS --max-time 2 -X PATCH --limit-rate 10k -H 'Transfer-Encoding: chunked' \
    -H 'Content-Type: application/octet-stream' --data-binary "@$SLOW" -o /dev/null "$loc" 2>/dev/null \
    && fail "the cut PATCH completed"
cut_ms=$(now_ms)
wait_val "$R_METRICS" 5 1 regmeter_upload_session_duration_seconds_count outcome=abandoned
# The request lines carry upload_session too: wait for the event line itself
# (the access log is flushed on a timer, after the sweep counted it).
wait_until 5 "the abandoned event line of the cut session" \
    grep -q "\"event\":\"upload_session_abandoned\".*\"upload_session\":\"$cut_id\"" "$R_LOG"
python3 - "$R_LOG" "$cut_id" "$(( $(now_ms) - cut_ms ))" <<'PY' || fail "the cut session's event line"
import json, sys
path, cut, since_cut_ms = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = [json.loads(l) for l in open(path) if '"event":"upload_session_abandoned"' in l]
assert len(lines) == 1 and lines[0]["upload_session"] == cut, lines
e = lines[0]
# Idle from the cut (~2 s after the POST), so its age exceeds its idle time by the PATCH's 2 s.
assert 1.0 <= e["idle_s"] <= since_cut_ms / 1000 + 0.2, (e, since_cut_ms)
assert e["age_s"] - e["idle_s"] >= 1.8, e
assert 0 < e["bytes"] < 40000, e   # what the PATCH carried before the cut
print("cut session abandoned after its PATCH:", e)
PY
log "5. a 4 s PATCH under a 1 s session timeout: counted once, completed; a cut PATCH abandoned after the cut"
log "PASS"
