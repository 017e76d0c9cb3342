#!/usr/bin/env bash
# The real container clients through regmeter: docker (a private dockerd),
# podman, buildah, skopeo and ctr (a private containerd) each push a fresh
# 2-layer random image through the proxy to the real docker-registry, remove
# it locally, pull it back and check its digests. Then:
#   - per client: one completed upload session per pushed blob (config + 2
#     layers), its size the blobs' sizes, no other session outcome, one image
#     push and one pull per repository, every blob byte fetched on the pull;
#   - a second push of the same image to another repository (clients mount
#     blobs they know): each blob's session completed or mounted, as many of
#     each as the registry itself answered upload PUTs and mount POSTs with 201;
#   - regmeter's registry_http_* series against the registry's own exporter
#     for all that traffic;
#   - the User-Agent each client sent, against tests/unit/data/user_agents.tsv
#     (its "captured" rows), so the table cannot rot;
#   - no client wrote the host's own daemon or storage state.
# Figures: seconds per push and pull of each client.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/clients_lib.sh"
. "$(dirname "$0")/metrics_lib.sh"
require_proxy
require_cmd docker-registry skopeo podman buildah containerd ctr dockerd curl python3

UA_TABLE=$SOURCE_ROOT/tests/unit/data/user_agents.tsv
[[ -f $UA_TABLE ]] || fail "missing $UA_TABLE"

global_state_snapshot "$E2E_TMP/global.before"
start_registry
ACCESS_LOG=$E2E_TMP/access.log
start_regmeter --access-log "$ACCESS_LOG"
scrape "$REGISTRY_METRICS_URL" >"$E2E_TMP/registry-base.txt"
start_containerd
start_dockerd
containers_setup

# mark PHASE: a request with a unique User-Agent that closes PHASE in the
# access log. Every request of a client started before the client exited, so
# the lines whose start time lies between two marks are that phase's. (Worker
# threads hand their lines to the writer in batches, up to 250 ms apart: the
# file is in completion order per thread, not overall; the check below sorts
# by the "time" field and waits for the last batches first.)
mark() {
    curl -sS -o /dev/null --max-time 10 -A "regmeter-e2e-mark/$1" "$PROXY_URL/v2/" || fail "mark request $1"
}

# direct_diagnosis CLIENT DIR: after a failure through the proxy, the same
# client straight against the registry, to tell a proxy defect from a client
# that cannot run here. Prints one sentence.
direct_diagnosis() {
    local client=$1 dir=$2 ref=127.0.0.1:$REGISTRY_PORT/direct/$1:v1
    if client_load "$client" "$dir" "$ref" 2>/dev/null && client_push "$client" "$dir" "$ref" >/dev/null 2>&1; then
        printf 'the same push straight to the registry (%s) works: a regmeter defect' "$ref"
    else
        printf 'the same push straight to the registry fails too: see the client output above'
    fi
}

# d FILE0 FILE1 NAME [label=value...]: how much a counter grew between two
# scrapes (absent = 0); d_float for sums of seconds.
d_float() {
    local a b
    a=$(val "$1" "${@:3}"); b=$(val "$2" "${@:3}")
    [[ $a == absent ]] && a=0
    [[ $b == absent ]] && b=0
    awk -v a="$a" -v b="$b" 'BEGIN { printf "%.6f\n", b - a }'
}
d() { awk -v x="$(d_float "$@")" 'BEGIN { printf "%.0f\n", x }'; }
# snap_both N: regmeter's and the registry's metrics now, in $client.mN and
# $client.rN (the registry's own view of the same requests, for the session
# outcomes: a completed session is one upload PUT answered 201, a mount one
# POST answered 201).
snap_both() {
    scrape "$METRICS_URL" >"$E2E_TMP/$client.m$1" || fail "scrape of $METRICS_URL"
    scrape "$REGISTRY_METRICS_URL" >"$E2E_TMP/$client.r$1" || fail "scrape of $REGISTRY_METRICS_URL"
}
secs() { awk -v ms="$1" 'BEGIN { printf "%.2f", ms / 1000 }'; }

for client in "${CLIENTS[@]}"; do
    img=$E2E_TMP/img-$client
    repo=clients/$client
    ref=$PROXY_HOSTPORT/$repo:v1
    # Two layers of fresh random bytes: every push uploads new blobs.
    make_client_image "$img" v1 "$ref" 48K 4M || fail "building the $client test image"
    client_load "$client" "$img" "$ref" || fail "$client: loading the image into its store"
    config=$(json_get "$img.json" 'j["config"]')

    mark "$client-start"
    snap_both 0
    t0=$(now_ms)
    pushed=$(client_push "$client" "$img" "$ref") ||
        fail "$client push through regmeter failed; $(direct_diagnosis "$client" "$img")"
    push_ms=$(($(now_ms) - t0))
    mark "$client-push"
    snap_both 1

    t0=$(now_ms)
    pulled=$(client_pull "$client" "$img" "$ref") || fail "$client pull through regmeter failed"
    pull_ms=$(($(now_ms) - t0))
    mark "$client-pull"
    snap_both 2
    figure "real_clients_${client}_push_s=$(secs "$push_ms")"
    figure "real_clients_${client}_pull_s=$(secs "$pull_ms")"
    log "$client: pushed $pushed in $(secs "$push_ms") s, pulled [$pulled] in $(secs "$pull_ms") s"

    # The registry holds the manifest the client reported; the pull got the
    # same manifest and the image's own config (docker, podman and buildah
    # recompress the layers, so only the config digest survives a round trip).
    manifest_file=$REGISTRY_DIR/data/docker/registry/v2/blobs/sha256/${pushed:7:2}/${pushed#sha256:}/data
    [[ -f $manifest_file ]] || fail "$client: the registry has no blob for the pushed manifest $pushed"
    assert_eq "${pushed#sha256:}" "$(sha256_file "$manifest_file")" "$client: sha256 of the manifest the registry stored"
    assert_eq "$config $pushed" "$pulled" "$client: config and manifest digest of the pulled image"
    assert_eq "$config" "$(json_get "$manifest_file" 'j["config"]["digest"]')" "$client: config of the pushed manifest"
    assert_eq 2 "$(json_get "$manifest_file" 'len(j["layers"])')" "$client: layers in the pushed manifest"
    blob_bytes=$(json_get "$manifest_file" 'j["config"]["size"] + sum(l["size"] for l in j["layers"])')

    # Push: one completed upload session per blob (config + 2 layers) and
    # nothing else; the sessions carried exactly the blobs' bytes.
    m0=$E2E_TMP/$client.m0 m1=$E2E_TMP/$client.m1 m2=$E2E_TMP/$client.m2
    for outcome in completed mounted cancelled failed abandoned; do
        want=0
        [[ $outcome == completed ]] && want=3
        assert_eq "$want" "$(d "$m0" "$m1" regmeter_upload_session_duration_seconds_count outcome="$outcome")" \
            "$client push: regmeter_upload_session_duration_seconds_count{outcome=\"$outcome\"}"
        assert_eq "$want" "$(d "$m0" "$m1" regmeter_upload_session_size_bytes_count outcome="$outcome")" \
            "$client push: regmeter_upload_session_size_bytes_count{outcome=\"$outcome\"}"
    done
    r0=$E2E_TMP/$client.r0 r1=$E2E_TMP/$client.r1 r2=$E2E_TMP/$client.r2 r3=$E2E_TMP/$client.r3
    assert_eq 3 "$(d "$r0" "$r1" registry_http_requests_total handler=blob_upload_chunk method=put code=201)" \
        "$client push: upload PUTs the registry answered 201"
    assert_eq 0 "$(d "$r0" "$r1" registry_http_requests_total handler=blob_upload method=post code=201)" \
        "$client push: mounts (POST 201) the registry answered"
    assert_eq "$blob_bytes" "$(d "$m0" "$m1" regmeter_upload_session_size_bytes_sum outcome=completed)" \
        "$client push: bytes of the completed sessions (config + layers of the pushed manifest)"
    assert_eq 1 "$(d "$m0" "$m1" registry_http_requests_total handler=manifest method=put code=201)" \
        "$client push: manifest PUT 201"
    assert_eq 1 "$(d "$m0" "$m1" regmeter_image_pushes_total repository="$repo")" "$client push: regmeter_image_pushes_total"
    assert_eq "$blob_bytes" "$(d "$m0" "$m1" regmeter_blob_bytes_total repository="$repo" direction=upload)" \
        "$client push: regmeter_blob_bytes_total{direction=\"upload\"} (config + layers)"
    # Pull: every blob came through the proxy (none was left locally).
    got=$(d "$m1" "$m2" registry_http_requests_total handler=blob method=get code=200)
    (( got >= 3 )) || fail "$client pull: $got blob GETs answered 200 through the proxy, expected >= 3 (config + 2 layers)"
    # One image pull as Docker Hub counts it (one manifest GET 200; a HEAD by
    # tag before it is not one), and every blob byte came down once.
    assert_eq 1 "$(d "$m1" "$m2" regmeter_image_pulls_total repository="$repo")" "$client pull: regmeter_image_pulls_total"
    assert_eq "$blob_bytes" "$(d "$m1" "$m2" regmeter_blob_bytes_total repository="$repo" direction=download)" \
        "$client pull: regmeter_blob_bytes_total{direction=\"download\"} (config + layers)"
    # The three sessions took some time, and no longer than the whole push.
    dur=$(d_float "$m0" "$m1" regmeter_upload_session_duration_seconds_sum outcome=completed)
    fgt "$dur" 0 && ! fgt "$dur" "$(awk -v ms="$push_ms" 'BEGIN { print 3 * ms / 1000 }')" ||
        fail "$client push: its completed sessions lasted $dur s in all, not within (0, 3 x $(secs "$push_ms")] s"
    log "$client: push sessions completed 3 ($blob_bytes bytes), pull blob GETs $got"

    # The same image under a second repository of the same registry: the
    # clients know where its blobs are and may mount them (POST ?mount=&from=)
    # instead of uploading; either way each blob's session ends once as
    # completed or mounted, and the completed ones carried every upload byte.
    copy=$repo-copy
    client_tag "$client" "$img" "$ref" "$PROXY_HOSTPORT/$copy:v1" || fail "$client: tagging the image as $copy"
    mark "$client-copy"
    client_push "$client" "$img" "$PROXY_HOSTPORT/$copy:v1" >/dev/null ||
        fail "$client push of the same image to $copy through regmeter failed"
    snap_both 3
    m3=$E2E_TMP/$client.m3
    completed=$(d "$m2" "$m3" regmeter_upload_session_duration_seconds_count outcome=completed)
    mounted=$(d "$m2" "$m3" regmeter_upload_session_duration_seconds_count outcome=mounted)
    cancelled=$(d "$m2" "$m3" regmeter_upload_session_duration_seconds_count outcome=cancelled)
    log "$client: second push to $copy: sessions completed $completed, mounted $mounted, cancelled $cancelled"
    assert_eq 3 "$((completed + mounted))" "$client push to $copy: completed + mounted sessions (3 blobs)"
    assert_eq "$(d "$r2" "$r3" registry_http_requests_total handler=blob_upload_chunk method=put code=201)" "$completed" \
        "$client push to $copy: completed sessions vs upload PUTs the registry answered 201"
    assert_eq "$(d "$r2" "$r3" registry_http_requests_total handler=blob_upload method=post code=201)" "$mounted" \
        "$client push to $copy: mounted sessions vs mounts (POST 201) the registry answered"
    assert_eq "$(d "$r2" "$r3" registry_http_requests_total handler=blob_upload_chunk method=delete code=204)" "$cancelled" \
        "$client push to $copy: cancelled sessions vs upload DELETEs the registry answered 204"
    for outcome in failed abandoned; do
        assert_eq 0 "$(d "$m2" "$m3" regmeter_upload_session_duration_seconds_count outcome="$outcome")" \
            "$client push to $copy: regmeter_upload_session_duration_seconds_count{outcome=\"$outcome\"}"
    done
    assert_eq "$(d "$m2" "$m3" regmeter_upload_session_size_bytes_sum outcome=completed)" \
        "$(d "$m2" "$m3" regmeter_blob_bytes_total repository="$copy" direction=upload)" \
        "$client push to $copy: upload bytes of the repository vs bytes of its completed sessions"
    assert_eq 1 "$(d "$m2" "$m3" regmeter_image_pushes_total repository="$copy")" "$client push to $copy: regmeter_image_pushes_total"
    mark "$client-copied"
done

# curl, for the User-Agent table.
mark curl-push
curl -sS -o /dev/null --max-time 10 "$PROXY_URL/v2/clients/skopeo/tags/list" || fail "curl through the proxy"
mark curl-pull

# ---- parity with the registry's own exporter, over all of the traffic above
wait_metric 10 0 registry_http_in_flight_requests
sleep 0.5
PROXY_M=$(scrape "$METRICS_URL")
REG_M=$(scrape "$REGISTRY_METRICS_URL")
printf '%s\n' "$PROXY_M" >"$E2E_TMP/regmeter.metrics"   # kept with E2E_KEEP=1
printf '%s\n' "$REG_M" >"$E2E_TMP/registry.metrics"
# docker, podman, buildah and skopeo try TLS first even for an insecure
# registry: each ClientHello on the plain port is a rejected connection, never
# a request (distribution never sees them), so the registry_http_* series must
# match exactly, handler="other" included.
probes=$(metric_of "$PROXY_M" --series regmeter_rejected_connections_total | \
    awk '/reason="tls_on_plain_port"/ {print $NF}')
[[ -n "$probes" ]] && (( ${probes%.*} > 0 )) || fail "the clients' TLS probes were not counted as rejected connections: [$probes]"
compare() { # metric-name
    local a b
    a=$(metric_of "$REG_M" --series "$1" --base "$E2E_TMP/registry-base.txt")
    b=$(metric_of "$PROXY_M" --series "$1")
    [[ -n "$a" ]] || fail "the registry exported no $1 (test bug)"
    if [[ "$a" != "$b" ]]; then
        diff <(printf '%s\n' "$a") <(printf '%s\n' "$b") | sed 's/^/  /' >&2 || true
        fail "$1 differs between the registry (<) and regmeter (>) for the real clients' traffic"
    fi
}
compare registry_http_requests_total
for fam in registry_http_request_duration_seconds_count registry_http_request_size_bytes_count \
    registry_http_response_size_bytes_count; do
    a=$(metric_of "$REG_M" --series "$fam" --base "$E2E_TMP/registry-base.txt")
    b=$(metric_of "$PROXY_M" --series "$fam")
    if [[ "$a" != "$b" ]]; then
        diff <(printf '%s\n' "$a") <(printf '%s\n' "$b") | sed 's/^/  /' >&2 || true
        fail "$fam differs between the registry (<) and regmeter (>) for the real clients' traffic"
    fi
done
log "registry_http_* series: regmeter matches the registry for all five clients"

# ---- User-Agents: each phase's requests carry one User-Agent, the one the
# table records for that client (docker's kernel/ token is the machine's).
wait_until 10 "the last mark in the access log" grep -q '"user_agent":"regmeter-e2e-mark/curl-pull"' "$ACCESS_LOG"
sleep 0.6   # the other threads' last batches
python3 - "$ACCESS_LOG" "$UA_TABLE" "${CLIENTS[@]}" curl >"$E2E_TMP/ua.txt" 2>"$E2E_TMP/ua.err" <<'PY' ||
import json, re, sys

log_path, table_path, clients = sys.argv[1], sys.argv[2], sys.argv[3:]
def norm(ua):
    return re.sub(r"kernel/\S+", "kernel/*", ua)

records = [json.loads(line) for line in open(log_path, encoding="utf-8")]
records.sort(key=lambda r: r["time"])   # start times, all in one format: stable sort keeps ties in file order
# A mark "<client>-<event>" starts the phase after it (or ends one).
STARTS = {"start": "push", "push": "pull", "copy": "copy", "pull": None, "copied": None}
phases, current, seen = {}, None, {}
bad = []
for r in records:
    ua = r.get("user_agent", "")
    m = re.fullmatch(r"regmeter-e2e-mark/(.+)-(start|push|pull|copy|copied)", ua)
    if m:
        if current:
            phases[current] = seen
        current = (m.group(1), STARTS[m.group(2)]) if STARTS[m.group(2)] else None
        seen = {}
        continue
    if "event" in r:
        continue  # not a request: a TLS ClientHello on the plain port, rejected
    if current:
        seen[ua] = seen.get(ua, 0) + 1
        # every routed request of the phase names the client's repository
        # (pushing the copy, containers/image also HEADs the source's blobs
        # before it mounts them)
        if current[0] != "curl" and r["handler"] not in ("base", "other"):
            want = {"clients/" + current[0]}
            if current[1] == "copy":
                want = {"clients/" + current[0] + "-copy"} | ({"clients/" + current[0]} if r["method"] == "HEAD" else set())
            if r["repository"] not in want:
                bad.append(f"{current[0]} {current[1]}: {r['method']} {r['handler']} logged repository "
                           f"[{r['repository']}], expected {sorted(want)}")

rows = {}
for n, line in enumerate(open(table_path, encoding="utf-8"), 1):
    if not line.strip() or line.startswith("#"):
        continue
    cols = line.rstrip("\n").split("\t")
    if len(cols) != 4:
        sys.exit(f"{table_path}:{n}: {len(cols)} columns, expected 4 (family, client, version source, user agent)")
    if cols[2].startswith("captured"):
        rows.setdefault(cols[1], set()).add(norm(cols[3]))

for client in clients:
    for phase in ("push", "pull", "copy"):
        got = phases.get((client, phase))
        if client == "curl" and phase != "pull":
            continue
        if not got:
            bad.append(f"{client} {phase}: no requests between its marks in the access log")
            continue
        print(f"{client}\t{phase}\t" + " | ".join(f"{ua} ({n})" for ua, n in sorted(got.items())))
        if len(got) != 1:
            bad.append(f"{client} {phase}: {len(got)} different User-Agents: {sorted(got)}")
        for ua in got:
            if norm(ua) not in rows.get(client, ()):
                bad.append(f"{client} {phase}: User-Agent [{ua}] is not a captured row of client {client} "
                           f"in the table (has {sorted(rows.get(client, ()))})")
for client in sorted(set(rows) - set(clients)):
    bad.append(f"the table has captured rows for client {client}, which this test does not run")
if bad:
    sys.exit("\n".join(bad))
PY
    { cat "$E2E_TMP/ua.txt" >&2; cat "$E2E_TMP/ua.err" >&2; fail "User-Agents differ from $UA_TABLE"; }
sed 's/^/  UA /' "$E2E_TMP/ua.txt" >&2
log "User-Agents: every client's matches its captured row in tests/unit/data/user_agents.tsv"

clients_stop_daemons
check_global_state "$E2E_TMP/global.before"
log "PASS"
