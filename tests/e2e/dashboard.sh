#!/usr/bin/env bash
# The built-in /dashboard in a real browser: Debian's Chromium, driven by
# playwright-core (tests/e2e/dashboard_test.mjs), opens the page on the
# metrics port while skopeo pushes (and pulls) random images through the
# proxy and curl makes a few deliberately slow chunk uploads. The page must
# poll, draw a non-blank heatmap holding exactly the upload requests /metrics
# counts, fill its tables, log no console error, and the test saves a
# screenshot in $BUILD_ROOT/meson-logs/. Then, with the traffic over, a second
# browser run opens a fresh page: it must draw the same upload requests at
# once, from regmeter's /dashboard/history. A third run against a regmeter
# with --dashboard-history-window 0 must say the history is off, without a
# console error. Also checked here: the landing
# page / and its links, and the history endpoint's JSON shape and bound.
#
# Needs /usr/bin/chromium (apt-get install chromium) and node >= 20 with npm
# (playwright-core is installed from tests/e2e/package-lock.json into
# $BUILD_ROOT/e2e-node). Fails, not skips, when they are missing.
export SKOPEO_TIMEOUT=${SKOPEO_TIMEOUT:-45}
. "$(dirname "$0")/lib.sh"
require_proxy

E2E_DIR=$SOURCE_ROOT/tests/e2e
BUILD_ROOT=${BUILD_ROOT:-$SOURCE_ROOT/build}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
ARTIFACTS=$BUILD_ROOT/meson-logs
SCREENSHOT=$ARTIFACTS/dashboard.png
T_START=$SECONDS

# ---- the browser and its driver
[[ -x "$CHROMIUM" ]] || fail "no Chromium at $CHROMIUM: install it with 'apt-get install -y chromium' (CI: tests/run.sh)"
command -v node >/dev/null || fail "node not found: install Node.js >= 20 and npm"
command -v npm >/dev/null || fail "npm not found: install npm (it fetches playwright-core from the npm registry)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 20)) || fail "node $(node --version) is too old: playwright-core needs node >= 20"
"$CHROMIUM" --version >/dev/null 2>&1 || fail "$CHROMIUM --version failed: the Chromium install is broken"

# playwright-core from the committed lockfile, cached in the build tree while
# the lockfile is unchanged. It never downloads a browser.
NODE_DEPS=$BUILD_ROOT/e2e-node
if ! cmp -s "$E2E_DIR/package-lock.json" "$NODE_DEPS/package-lock.json" \
    || [[ ! -f "$NODE_DEPS/node_modules/playwright-core/package.json" ]]; then
    log "installing playwright-core into $NODE_DEPS"
    rm -rf "$NODE_DEPS"
    mkdir -p "$NODE_DEPS"
    cp "$E2E_DIR/package.json" "$E2E_DIR/package-lock.json" "$NODE_DEPS/"
    if ! (cd "$NODE_DEPS" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 timeout 180 \
        npm ci --no-audit --no-fund --loglevel=error >"$E2E_TMP/npm.log" 2>&1); then
        cat "$E2E_TMP/npm.log" >&2
        rm -rf "$NODE_DEPS"
        fail "npm ci of playwright-core failed (is the npm registry reachable?)"
    fi
fi

# ---- services
start_registry
start_regmeter --dashboard-history-interval 1
ADMIN_URL=http://127.0.0.1:$RM_METRICS_PORT
DASH_URL=$ADMIN_URL/dashboard
HISTORY_URL=$ADMIN_URL/dashboard/history

# The landing page on the metrics port links the three endpoints, and each works.
assert_eq 200 "$(curl -sS --max-time 10 -D "$E2E_TMP/landing.hdr" -o "$E2E_TMP/landing.html" -w '%{http_code}' "$ADMIN_URL/")" "GET /"
assert_eq "text/html; charset=utf-8" "$(header "$E2E_TMP/landing.hdr" Content-Type)" "/ Content-Type"
for target in dashboard metrics healthz; do
    assert_contains "href=\"$target\"" "$(cat "$E2E_TMP/landing.html")" "/ links $target"
    assert_eq 200 "$(http_code "$ADMIN_URL/$target")" "GET /$target (linked from /)"
done

# check_history FILE CAPACITY [UPLOADS SESSIONS]: the JSON shape, the ring's
# bound and, given totals, that its upload-latency and session-duration cells
# (stored intervals plus the one in progress) add up to them.
check_history() {
    python3 - "$@" <<'PY' || fail "/dashboard/history: see the line above"
import json, sys
path, capacity = sys.argv[1], int(sys.argv[2])
want = [int(v) for v in sys.argv[3:5]]
def die(msg):
    print("check_history:", msg, file=sys.stderr); sys.exit(1)
h = json.load(open(path))
for key in ("interval_seconds", "capacity", "max_columns", "ignored_readings", "columns", "intervals", "partial"):
    if key not in h: die("no key %r in %s" % (key, sorted(h)))
if h["interval_seconds"] != 1 or h["capacity"] != capacity: die("interval/capacity %r/%r" % (h["interval_seconds"], h["capacity"]))
if not 0 < len(h["intervals"]) <= h["capacity"]: die("%d intervals for capacity %d" % (len(h["intervals"]), h["capacity"]))
if len(h["columns"]) > h["max_columns"] or h["ignored_readings"] != 0: die("columns over their bound")
families = {c["family"] for c in h["columns"]}
if want and not {"upload_latency", "session_duration", "requests"} <= families:
    die("after traffic, the columns lack upload_latency/session_duration/requests: %r" % sorted(families))
intervals = h["intervals"] + ([h["partial"]] if h["partial"] else [])
last_end = None
for iv in intervals:
    if set(iv) != {"start", "end", "cells"} or not iv["start"] <= iv["end"]: die("bad interval %r" % iv)
    if last_end is not None and iv["start"] != last_end: die("intervals not contiguous at %r" % iv)
    last_end = iv["end"]
    for col, inc in iv["cells"]:
        if not (0 <= col < len(h["columns"]) and inc > 0): die("bad cell %r" % [col, inc])
if want:
    total = lambda fam: sum(inc for iv in intervals for col, inc in iv["cells"] if h["columns"][col]["family"] == fam)
    got = [total("upload_latency"), total("session_duration")]
    if got != want: die("upload requests, ended sessions: history has %r, /metrics %r" % (got, want))
PY
}
curl -sS --max-time 10 -o "$E2E_TMP/history0.json" "$HISTORY_URL" || fail "GET /dashboard/history failed"
sleep 1.2  # at least one stored interval
curl -sS --max-time 10 -D "$E2E_TMP/history.hdr" -o "$E2E_TMP/history1.json" "$HISTORY_URL" || fail "GET /dashboard/history failed"
assert_eq application/json "$(header "$E2E_TMP/history.hdr" Content-Type)" "/dashboard/history Content-Type"
assert_eq no-store "$(header "$E2E_TMP/history.hdr" Cache-Control)" "/dashboard/history Cache-Control"
check_history "$E2E_TMP/history1.json" 3600

# The route itself, before the browser: headers and both encodings.
hdr=$E2E_TMP/dash.hdr
assert_eq 200 "$(curl -sS --max-time 10 -D "$hdr" -o "$E2E_TMP/dash.html" -w '%{http_code}' "$DASH_URL")" "GET /dashboard"
assert_eq "text/html; charset=utf-8" "$(header "$hdr" Content-Type)" "/dashboard Content-Type"
assert_eq "no-store" "$(header "$hdr" Cache-Control)" "/dashboard Cache-Control"
assert_match "^default-src 'none'; script-src 'sha256-" "$(header "$hdr" Content-Security-Policy)" "/dashboard CSP"
assert_contains '<canvas id="heatmap">' "$(cat "$E2E_TMP/dash.html")" "/dashboard body"
assert_eq gzip "$(curl -sS --max-time 10 -D - -o /dev/null -H 'Accept-Encoding: gzip' "$DASH_URL" | tr -d '\r' \
    | awk -F': ' 'tolower($1) == "content-encoding" { print $2 }')" "/dashboard Content-Encoding with gzip accepted"
cmp -s "$E2E_TMP/dash.html" <(curl -sS --max-time 10 --compressed "$DASH_URL") || fail "gzip /dashboard differs from plain"

# ---- images to push while the page watches (made before the browser starts)
make_image "$E2E_TMP/img1" v1 2M 256K 16K
make_image "$E2E_TMP/img2" v1 4M 512K
make_image "$E2E_TMP/img3" v1 6M 64K
random_file "$E2E_TMP/slow1" 96K
random_file "$E2E_TMP/slow2" 160K

# ---- the browser, in the background; it writes SYNC/ready after its first poll
SYNC=$E2E_TMP/sync
mkdir -p "$SYNC" "$ARTIFACTS"
rm -f "$SCREENSHOT" "${SCREENSHOT%.png}-heatmap.png"
DASH_URL="$DASH_URL?interval=1" NODE_DEPS=$NODE_DEPS CHROMIUM=$CHROMIUM PROFILE_DIR=$E2E_TMP/profile \
    SYNC_DIR=$SYNC SCREENSHOT=$SCREENSHOT DEADLINE_S=75 \
    timeout -k 5 90 node "$E2E_DIR/dashboard_test.mjs" >"$E2E_TMP/node.out" 2>"$E2E_TMP/node.err" &
NODE_PID=$!
register_log "$E2E_TMP/node.err"

deadline=$((SECONDS + 40))
until [[ -f "$SYNC/ready" ]]; do
    if ! is_running "$NODE_PID"; then
        cat "$E2E_TMP/node.err" >&2
        fail "the browser driver exited before the page's first poll"
    fi
    ((SECONDS < deadline)) || fail "the page did not complete a poll within 40s"
    sleep 0.2
done
log "page is polling; pushing images through the proxy"

# ---- traffic, spread over a few poll intervals
# skopeo pushes run in the background, a few seconds apart: skopeo probes
# https first and only then falls back to http, and that probe can take its
# full 10 s handshake timeout, so sequential pushes would blow the budget.
PUSH_PIDS=()
push() { # image repo
    local out=$E2E_TMP/push-${2//\//_}.log
    skopeo_ copy --dest-tls-verify=false "oci:$1:v1" "docker://$PROXY_HOSTPORT/$2:v1" >"$out" 2>&1 &
    PUSH_PIDS+=("$!")
}
wait_pushes() {
    local i
    for i in "${!PUSH_PIDS[@]}"; do
        wait "${PUSH_PIDS[$i]}" || {
            cat "$E2E_TMP"/push-*.log >&2
            fail "skopeo push #$((i + 1)) through the proxy failed"
        }
    done
}
# A chunked upload whose PATCH body is throttled, so it lands in a slow bucket.
slow_upload() { # file bytes-per-second
    local loc digest code
    digest=sha256:$(sha256_file "$1")
    loc=$(start_upload "$PROXY_URL" dash/slow) || fail "POST for a slow upload failed"
    code=$(curl -sS --max-time 30 -X PATCH --limit-rate "$2" -H 'Content-Type: application/octet-stream' \
        --data-binary "@$1" -D "$E2E_TMP/patch.hdr" -o /dev/null -w '%{http_code}' "$loc")
    assert_eq 202 "$code" "throttled PATCH"
    loc=$(abs_url "$PROXY_URL" "$(header "$E2E_TMP/patch.hdr" Location)")
    code=$(curl -sS --max-time 30 -X PUT -o /dev/null -w '%{http_code}' "$(add_query "$loc" "digest=$digest")")
    assert_eq 201 "$code" "PUT closing a slow upload"
}

t_push=$SECONDS
push "$E2E_TMP/img1" dash/one
sleep 1.5
slow_upload "$E2E_TMP/slow1" 256K
push "$E2E_TMP/img2" dash/two
sleep 1.5
slow_upload "$E2E_TMP/slow2" 100K
push "$E2E_TMP/img3" dash/three
wait_pushes
log "pushes took $((SECONDS - t_push))s"
# Downloads, for the bytes table: the layers of the first image, through the proxy.
while read -r digest; do
    assert_eq 200 "$(http_code "$PROXY_URL/v2/dash/one/blobs/$digest")" "GET layer $digest through the proxy"
done < <(json_get "$E2E_TMP/img1.json" 'j["layers"]')

# What the page must end up showing: every upload request since its baseline
# (none happened before it), as counted by /metrics now that traffic stopped.
text=$(scrape)
patches=$(metric_of "$text" registry_http_request_duration_seconds_count handler=blob_upload_chunk method=patch)
puts=$(metric_of "$text" registry_http_request_duration_seconds_count handler=blob_upload_chunk method=put)
completed=$(metric_of "$text" regmeter_upload_session_duration_seconds_count outcome=completed)
ended=$(metric_of "$text" regmeter_upload_session_duration_seconds_count)
[[ "$patches" != absent && "$puts" != absent && "$completed" != absent && "$ended" != absent ]] \
    || fail "no upload metrics after the pushes (patch=$patches put=$puts completed=$completed ended=$ended)"
printf '{"uploadRequests": %d, "completedSessions": %d, "endedSessions": %d, "repositories": ["dash/one", "dash/two", "dash/three"]}\n' \
    $((patches + puts)) "$completed" "$ended" >"$SYNC/pushed.tmp"
mv "$SYNC/pushed.tmp" "$SYNC/pushed"
log "pushed: $patches PATCH + $puts PUT upload requests, $completed completed of $ended ended sessions"

# ---- the browser's verdict
deadline=$((SECONDS + 60))
while is_running "$NODE_PID"; do
    ((SECONDS < deadline)) || fail "the browser driver did not finish within 60s of the pushes"
    sleep 0.2
done
rc=0
wait "$NODE_PID" || rc=$?
cat "$E2E_TMP/node.err" >&2
cat "$E2E_TMP/node.out"
if ((rc != 0)); then
    [[ -f "$SCREENSHOT" ]] && log "screenshot (as far as it got): $SCREENSHOT"
    fail "browser checks failed (exit $rc); see the dashboard_test lines above"
fi
[[ -s "$SCREENSHOT" ]] || fail "no screenshot at $SCREENSHOT"
log "screenshot: $SCREENSHOT"
log "heatmap canvas: ${SCREENSHOT%.png}-heatmap.png"

# ---- the history holds the traffic: every upload request and ended session
curl -sS --max-time 10 -o "$E2E_TMP/history2.json" "$HISTORY_URL" || fail "GET /dashboard/history failed"
check_history "$E2E_TMP/history2.json" 3600 $((patches + puts)) "$ended"
log "history: $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["intervals"]))' "$E2E_TMP/history2.json") intervals, $(stat -c %s "$E2E_TMP/history2.json") bytes of JSON"

# ---- a page opened after the traffic, not during it, draws it from history
AFTER_SHOT=$ARTIFACTS/dashboard-after.png
rm -f "$AFTER_SHOT" "${AFTER_SHOT%.png}-heatmap.png"
rc=0
MODE=after DASH_URL="$DASH_URL?interval=1" NODE_DEPS=$NODE_DEPS CHROMIUM=$CHROMIUM PROFILE_DIR=$E2E_TMP/profile-after \
    SYNC_DIR=$SYNC SCREENSHOT=$AFTER_SHOT DEADLINE_S=45 \
    timeout -k 5 60 node "$E2E_DIR/dashboard_test.mjs" >"$E2E_TMP/node-after.out" 2>"$E2E_TMP/node-after.err" || rc=$?
cat "$E2E_TMP/node-after.err" >&2
cat "$E2E_TMP/node-after.out"
((rc == 0)) || fail "browser checks of the page opened after the traffic failed (exit $rc); see above"
[[ -s "$AFTER_SHOT" ]] || fail "no screenshot at $AFTER_SHOT"
log "screenshot of the page opened after the traffic: $AFTER_SHOT"

# ---- --dashboard-history-window 0: the endpoint answers "off" (not 404) and the page says so
start_regmeter --dashboard-history-window 0
OFF_URL=http://127.0.0.1:$RM_METRICS_PORT
assert_eq 200 "$(curl -sS --max-time 10 -o "$E2E_TMP/history-off.json" -w '%{http_code}' "$OFF_URL/dashboard/history")" \
    "GET /dashboard/history with the history off"
python3 - "$E2E_TMP/history-off.json" <<'PY' || fail "the history-off answer: $(cat "$E2E_TMP/history-off.json")"
import json, sys
h = json.load(open(sys.argv[1]))
assert h["off"] is True and h["intervals"] == [] and h["columns"] == [] and h["capacity"] == 0, h
assert h["interval_seconds"] > 0, h
PY
OFF_SHOT=$ARTIFACTS/dashboard-history-off.png
rm -f "$OFF_SHOT"
rc=0
MODE=off DASH_URL="$OFF_URL/dashboard?interval=1" NODE_DEPS=$NODE_DEPS CHROMIUM=$CHROMIUM PROFILE_DIR=$E2E_TMP/profile-off \
    SYNC_DIR=$SYNC SCREENSHOT=$OFF_SHOT DEADLINE_S=30 \
    timeout -k 5 45 node "$E2E_DIR/dashboard_test.mjs" >"$E2E_TMP/node-off.out" 2>"$E2E_TMP/node-off.err" || rc=$?
cat "$E2E_TMP/node-off.err" >&2
((rc == 0)) || fail "browser checks of the page with the history off failed (exit $rc); see above"
[[ -s "$OFF_SHOT" ]] || fail "no screenshot at $OFF_SHOT"
log "history off: the page says so, no console error"
figure "dashboard_seconds=$((SECONDS - T_START))"
log "ok"
