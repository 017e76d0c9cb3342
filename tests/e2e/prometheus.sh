#!/usr/bin/env bash
# A real Prometheus (Debian's /usr/bin/prometheus) scrapes regmeter every
# second, with examples/prometheus/alerts.yml loaded and evaluated every
# second, while skopeo pushes three random images through regmeter to a real
# docker-registry and pulls one back. Then, through Prometheus's HTTP API:
#   - the target is up and scraped without errors;
#   - the dashboard's classic blob upload latency heatmap ([1m] for
#     $__rate_interval) returns buckets with increases;
#   - completed upload sessions were counted;
#   - every dashboard query and every alert expression evaluates without
#     error, and the panels that the traffic feeds return data;
#   - /api/v1/rules has the example groups loaded with health "ok", and no
#     alert is pending or firing on healthy traffic;
#   - with the registry stopped, the 502s make RegmeterUpstreamUnavailable
#     pending; with regmeter stopped, RegmeterDown goes pending.
# Every wait is bounded (PROM_WAIT seconds, default 30).
. "$(dirname "$0")/lib.sh"

require_proxy
if ! python3 -c 'import yaml' 2>/dev/null; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        log "installing python3-yaml"
        DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y --no-install-recommends python3-yaml \
            >"$E2E_TMP/apt.log" 2>&1 || { cat "$E2E_TMP/apt.log" >&2; fail "apt-get install python3-yaml failed"; }
    fi
    python3 -c 'import yaml' 2>/dev/null || fail "python3 module yaml missing (apt-get install python3-yaml)"
fi
PROM_WAIT=${PROM_WAIT:-30}
EX=$SOURCE_ROOT/examples

start_registry
start_regmeter --threads 2

# ---------------------------------------------------------------- Prometheus
PROM_DIR=$E2E_TMP/prometheus
mkdir -p "$PROM_DIR"
cp "$EX/prometheus/alerts.yml" "$PROM_DIR/alerts.yml"
# The example configuration, made fast and pointed at this regmeter.
python3 - "$EX/prometheus/prometheus.yml" "$PROM_DIR/prometheus.yml" "127.0.0.1:$RM_METRICS_PORT" <<'PY'
import sys, yaml
src, dst, target = sys.argv[1:4]
cfg = yaml.safe_load(open(src))
cfg["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
cfg["rule_files"] = ["alerts.yml"]
jobs = [j for j in cfg["scrape_configs"] if j["job_name"] == "regmeter"]
assert jobs, "examples/prometheus/prometheus.yml has no job 'regmeter'"
jobs[0]["static_configs"][0]["targets"] = [target]
cfg["scrape_configs"] = jobs
yaml.safe_dump(cfg, open(dst, "w"), sort_keys=False)
PY
start_prometheus "$PROM_DIR"
log "prometheus pid $PROM_PID on $PROM_URL scraping $METRICS_URL"

# prom MODE ARGS...: talk to the HTTP API (Python, standard library only).
#   prom value QUERY         sum of the instant vector's values, "empty" if none;
#                            exits 1 (printing the error) if the query fails
#   prom positive QUERY      "positive" when that sum is > 0
#   prom count QUERY         number of series in the result
#   prom check FILE          FILE: JSON list of [label, query, must_have_data];
#                            evaluates each, prints one line each, exits 1 on
#                            an error or on missing data where required
#   prom rules               "ok" when every rule of every group has health ok
#                            (prints what is not otherwise)
#   prom alerts              the alerts pending or firing, "name=state" lines
#   prom target              "up" when the regmeter target is healthy
prom() {
    python3 - "$PROM_URL" "$@" <<'PY'
import json, sys, urllib.parse, urllib.request
base, mode, *args = sys.argv[1:]

def get(path, **params):
    url = base + path + ("?" + urllib.parse.urlencode(params) if params else "")
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)

def query(q):
    j = get("/api/v1/query", query=q)
    if j.get("status") != "success":
        return None, f"{j.get('errorType')}: {j.get('error')}"
    return j["data"]["result"], None

if mode in ("value", "count", "positive"):
    res, err = query(args[0])
    if err:
        print(err); sys.exit(1)
    if mode == "count":
        print(len(res))
    elif not res:
        print("empty")
    else:
        v = sum(float(r["value"][1]) for r in res if r["value"][1] != "NaN")
        if mode == "positive":
            print("positive" if v > 0 else "not positive: %s" % v)
        else:
            print(int(v) if v == int(v) else v)
elif mode == "check":
    bad = 0
    for label, q, need_data in json.load(open(args[0])):
        res, err = query(q)
        if err:
            print(f"ERROR {label}: {err}\n    {q}"); bad += 1
        elif need_data and not res:
            print(f"EMPTY {label}: no data\n    {q}"); bad += 1
        else:
            print(f"ok    {label}: {len(res)} series")
    sys.exit(1 if bad else 0)
elif mode == "rules":
    j = get("/api/v1/rules")
    groups = j.get("data", {}).get("groups", [])
    problems = [f"{g['name']}/{r['name']}: health={r.get('health')} {r.get('lastError', '')}"
                for g in groups for r in g.get("rules", []) if r.get("health") != "ok"]
    n = sum(len(g.get("rules", [])) for g in groups)
    print("ok %d" % n if groups and not problems else "not yet: " + "; ".join(problems or ["no groups"]))
elif mode == "alerts":
    for a in get("/api/v1/alerts").get("data", {}).get("alerts", []):
        print(f"{a['labels'].get('alertname')}={a.get('state')}")
elif mode == "target":
    for t in get("/api/v1/targets").get("data", {}).get("activeTargets", []):
        if t.get("labels", {}).get("job") == "regmeter":
            print(t.get("health"), t.get("lastError", ""))
PY
}

# wait_prom DESCRIPTION EXPECTED-REGEX prom-args...: poll until the output matches.
wait_prom() { wait_match "$PROM_WAIT" "$1" "$2" prom "${@:3}"; }

wait_prom "regmeter target healthy" '^up $' target
wait_prom "rule groups loaded, all healthy" '^ok [1-9]' rules
log "target up; rules: $(prom rules)"

# ---------------------------------------------------------------- traffic
for n in 1 2 3; do
    make_image "$E2E_TMP/img$n" v$n 16K 1536K 3M
done
push() { # N
    skopeo_ copy --dest-tls-verify=false "oci:$E2E_TMP/img$1:v$1" "docker://$PROXY_HOSTPORT/team/app$1:v$1" \
        >"$E2E_TMP/push$1.log" 2>&1 || { cat "$E2E_TMP/push$1.log" >&2; fail "skopeo push $1 through the proxy failed"; }
}
push 1
# Prometheus must have the upload series before the next pushes, so that
# increase() over them is positive (a series' first sample is its baseline).
wait_prom "first push scraped" '^[1-9]' count \
    'registry_http_request_duration_seconds_bucket{handler="blob_upload_chunk",method="put"}'
sleep 2
push 2
push 3
pull() { # N
    skopeo_ copy --src-tls-verify=false "docker://$PROXY_HOSTPORT/team/app2:v2" "oci:$E2E_TMP/pulled$1:v2" \
        >"$E2E_TMP/pull$1.log" 2>&1 || { cat "$E2E_TMP/pull$1.log" >&2; fail "skopeo pull through the proxy failed"; }
}
# As with the pushes: the pull-only series (pulls per repository, download
# throughput) are born at the first pull, so Prometheus must scrape them once
# before a second pull gives increase() something to see.
pull 1
wait_prom "first pull scraped" '^[1-9]' count 'regmeter_image_pulls_total'
sleep 2
pull 2
log "pushed 3 images, pulled 2, through $PROXY_HOSTPORT"
wait_prom "second pull scraped" '^positive$' positive 'sum(increase(regmeter_image_pulls_total[5m]))'

# ---------------------------------------------------------------- the numbers
# The classic heatmap (second panel; the first, native one needs
# --enable-feature=native-histograms: tests/e2e/native_histograms.sh).
HEATMAP=$(python3 -c 'import json, sys
print(json.load(open(sys.argv[1]))["panels"][1]["targets"][0]["expr"].replace("$__rate_interval", "1m"))' \
    "$EX/grafana/regmeter-dashboard.json")
assert_contains 'registry_http_request_duration_seconds_bucket{handler="blob_upload_chunk"' "$HEATMAP" \
    "classic heatmap panel query"
wait_prom "heatmap query has increases" '^positive$' positive "$HEATMAP"
assert_match '^[1-9][0-9]*$' "$(prom count "$HEATMAP")" "heatmap query: number of buckets"
log "heatmap: $(prom count "$HEATMAP") buckets, $(prom value "$HEATMAP") observations in the last minute"
wait_prom "completed upload sessions" '^positive$' positive \
    'sum(regmeter_upload_session_duration_seconds_count{outcome="completed"})'
log "completed upload sessions: $(prom value 'sum(regmeter_upload_session_duration_seconds_count{outcome="completed"})')"
assert_eq 3 "$(prom value 'sum(regmeter_image_pushes_total)')" "pushes counted by Prometheus"

# Every dashboard query (windows made concrete) and every alert expression.
python3 - "$EX/grafana/regmeter-dashboard.json" "$EX/prometheus/alerts.yml" "$E2E_TMP/queries.json" <<'PY'
import json, re, sys, yaml
dash, alerts, out = sys.argv[1:4]
# Panels the pushes and the pull must feed (the others may legitimately be
# empty on healthy traffic: errors, auth challenges).
FED = ("Blob upload request latency", "Upload session duration", "Request rate by handler",
       "p95 layer push time", "Top pushed repositories", "Top pulled repositories",
       "Blob upload throughput", "Blob download throughput", "In-flight requests",
       "Upload session outcomes", "Upstream time to response head", "Blob bytes per second")
queries = []
# Native-histogram queries (a bare regmeter_* histogram name) find nothing in
# this Prometheus, which runs without the feature: tests/e2e/native_histograms.sh
# checks them; here they must only evaluate (a "classic or native" query must
# answer from its classic side).
NATIVE = re.compile(r'\bregmeter_(http_request_duration_seconds|upload_session_duration_seconds|upload_session_size_bytes|'
                    r'upstream_header_seconds|upstream_connect_seconds|blob_throughput_bytes_per_second)\s*[{\[]')
for p in json.load(open(dash))["panels"]:
    for t in p["targets"]:
        q = t["expr"].replace("$__rate_interval", "1m").replace("$__range", "5m")
        queries.append([f"panel '{p['title']}' {t['refId']}", q, p["title"].startswith(FED) and (not NATIVE.search(q) or "_bucket" in q)])
for g in yaml.safe_load(open(alerts))["groups"]:
    for r in g["rules"]:
        queries.append([f"rule {g['name']}/{r.get('alert') or r.get('record')}", r["expr"], False])
json.dump(queries, open(out, "w"))
PY
prom check "$E2E_TMP/queries.json" >"$E2E_TMP/check.log" 2>&1 \
    || { cat "$E2E_TMP/check.log" >&2; fail "dashboard or alert queries fail in Prometheus"; }
cat "$E2E_TMP/check.log" >&2

wait_prom "rules healthy after traffic" '^ok [1-9]' rules
assert_eq "up " "$(prom target)" "regmeter target health"
alerts=$(prom alerts)
assert_eq "" "$alerts" "alerts pending or firing on healthy traffic"

# ---------------------------------------------------------------- alerts in anger
# Registry down: regmeter answers 502; RegmeterUpstreamUnavailable (for: 5m)
# goes pending. One 502 first, so that the series exists before the burst.
kill_tree "$REGISTRY_PID" TERM
wait_until 10 "registry stopped" bash -c "! kill -0 $REGISTRY_PID 2>/dev/null"
assert_eq 502 "$(http_code "$PROXY_URL/v2/")" "GET /v2/ with the registry down"
wait_prom "the first 502 scraped" '^[1-9]' count 'registry_http_requests_total{code="502"}'
sleep 2
for ((i = 0; i < 40; i++)); do
    http_code "$PROXY_URL/v2/" >/dev/null
done
wait_prom "RegmeterUpstreamUnavailable pending" '(^|[[:space:]])RegmeterUpstreamUnavailable=pending' alerts
log "registry down: $(prom alerts | tr '\n' ' ')"

# regmeter down: up == 0, RegmeterDown goes pending.
kill -TERM "$RM_PID"
wait_until 40 "regmeter stopped" bash -c "! kill -0 $RM_PID 2>/dev/null"
wait_prom "RegmeterDown pending" '(^|[[:space:]])RegmeterDown=pending' alerts
log "regmeter down: $(prom alerts | tr '\n' ' ')"
echo "prometheus: ok"
