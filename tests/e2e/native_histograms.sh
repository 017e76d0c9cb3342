#!/usr/bin/env bash
# Native histograms and exemplars, end to end with Debian's Prometheus 2.42:
#   - a Prometheus with --enable-feature=native-histograms,exemplar-storage
#     (it asks for the protobuf exposition) scrapes regmeter in front of the
#     real registry while skopeo pushes images;
#   - the query API returns regmeter_http_request_duration_seconds as a native
#     histogram (a "histogram" value, no _bucket series), histogram_quantile
#     over it answers, and registry_http_request_duration_seconds_bucket is
#     still stored as classic series;
#   - /api/v1/query_exemplars returns exemplars whose request_id is in
#     regmeter's access log, and a request sent with a W3C traceparent shows
#     its trace id in an exemplar (and in its access-log line); a client's
#     own X-Request-Id is logged as client_request_id beside regmeter's id;
#   - an upstream receives X-Request-Id = request_id when the client sent
#     none, and only the client's own when it did;
#   - a second Prometheus with exemplar-storage only (it scrapes OpenMetrics)
#     stores the same request's exemplar, and classic buckets only.
# Every wait is bounded (PROM_WAIT seconds, default 30).
. "$(dirname "$0")/lib.sh"

require_proxy
PROM_WAIT=${PROM_WAIT:-30}
ACCESS_LOG=$E2E_TMP/access.log

start_registry
start_regmeter --threads 2 --access-log "$ACCESS_LOG"

config() { # DIR: scrape regmeter every second
    mkdir -p "$1"
    cat >"$1/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: regmeter
    static_configs:
      - targets: ["127.0.0.1:$RM_METRICS_PORT"]
YML
}
config "$E2E_TMP/native"
start_prometheus "$E2E_TMP/native" --enable-feature=native-histograms,exemplar-storage
NATIVE_URL=$PROM_URL
config "$E2E_TMP/om"
start_prometheus "$E2E_TMP/om" --enable-feature=exemplar-storage
OM_URL=$PROM_URL

# api URL MODE ARGS...: the HTTP API (Python, standard library only).
#   api URL kind QUERY          "histogram" / "value" / "empty": what the first series of the
#                               instant vector holds; exits 1 when the query fails
#   api URL scalar QUERY        the first sample's value, "empty" if none
#   api URL count QUERY         number of series
#   api URL exemplars QUERY     every exemplar of the last 10 minutes, one "request_id trace_id"
#                               line each ("-" when there is no trace_id)
#   api URL scrape_format       the regmeter target's health and last error
api() {
    python3 - "$@" <<'PY'
import json, sys, time, urllib.parse, urllib.request
base, mode, *args = sys.argv[1:]

def get(path, **params):
    url = base + path + "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)

def query(q):
    j = get("/api/v1/query", query=q)
    if j.get("status") != "success":
        print(f"{j.get('errorType')}: {j.get('error')}")
        sys.exit(1)
    return j["data"]["result"]

if mode == "kind":
    res = query(args[0])
    print("empty" if not res else "histogram" if "histogram" in res[0] else "value" if "value" in res[0] else "other")
elif mode == "scalar":
    res = query(args[0])
    print("empty" if not res else res[0]["value"][1])
elif mode == "count":
    print(len(query(args[0])))
elif mode == "exemplars":
    now = time.time()
    j = get("/api/v1/query_exemplars", query=args[0], start=now - 600, end=now + 60)
    if j.get("status") != "success":
        print(f"{j.get('errorType')}: {j.get('error')}")
        sys.exit(1)
    for series in j["data"]:
        for e in series.get("exemplars", []):
            print(e["labels"].get("request_id", "-"), e["labels"].get("trace_id", "-"))
elif mode == "check":  # FILE: JSON list of [label, query, must_have_data]
    bad = 0
    for label, q, need in json.load(open(args[0])):
        j = get("/api/v1/query", query=q)
        if j.get("status") != "success":
            print(f"ERROR {label}: {j.get('error')}\n    {q}"); bad += 1
        elif need and not j["data"]["result"]:
            print(f"EMPTY {label}\n    {q}"); bad += 1
        else:
            print(f"ok    {label}: {len(j['data']['result'])} series")
    sys.exit(1 if bad else 0)
elif mode == "target":
    for t in get("/api/v1/targets").get("data", {}).get("activeTargets", []):
        print(t.get("health"), t.get("lastError", ""))
PY
}

# wait_api DESCRIPTION EXPECTED-REGEX api-args...: poll until the output matches.
wait_api() { wait_match "$PROM_WAIT" "$1" "$2" api "${@:3}"; }

wait_api "native Prometheus scrapes regmeter" '^up $' "$NATIVE_URL" target
wait_api "OpenMetrics Prometheus scrapes regmeter" '^up $' "$OM_URL" target

# ---------------------------------------------------------------- traffic
for n in 1 2; do
    make_image "$E2E_TMP/img$n" v$n 16K 1536K
done
push() { # N
    skopeo_ copy --dest-tls-verify=false "oci:$E2E_TMP/img$1:v$1" "docker://$PROXY_HOSTPORT/team/app$1:v$1" \
        >"$E2E_TMP/push$1.log" 2>&1 || { cat "$E2E_TMP/push$1.log" >&2; fail "skopeo push $1 through the proxy failed"; }
}
push 1
# The series must exist in Prometheus before the second push, so that
# rate() over them has two samples to compare.
wait_api "first push scraped" '^[1-9]' "$NATIVE_URL" count 'registry_http_request_duration_seconds_bucket'
sleep 2
push 2
log "pushed 2 images through $PROXY_HOSTPORT"

# ---------------------------------------------------------------- native histograms
NATIVE='regmeter_http_request_duration_seconds{handler="blob_upload_chunk",method="put"}'
wait_api "the native twin scraped" '^histogram$' "$NATIVE_URL" kind "$NATIVE"
assert_eq 0 "$(api "$NATIVE_URL" count 'regmeter_http_request_duration_seconds_bucket')" \
    "native-only storage: no classic _bucket series of the native family"
assert_match '^[1-9]' "$(api "$NATIVE_URL" count 'registry_http_request_duration_seconds_bucket{handler="blob_upload_chunk"}')" \
    "registry_http_request_duration_seconds_bucket still stored classic"
assert_eq value "$(api "$NATIVE_URL" kind 'registry_http_request_duration_seconds_bucket')" \
    "registry_http_* buckets are plain samples"
Q='histogram_quantile(0.9, sum(rate(regmeter_http_request_duration_seconds{handler="blob_upload_chunk"}[1m])))'
wait_api "histogram_quantile over the native histogram" '^[0-9.e+-]+$' "$NATIVE_URL" scalar "$Q"
p90=$(api "$NATIVE_URL" scalar "$Q")
python3 -c 'import sys; v = float(sys.argv[1]); sys.exit(0 if 0 < v < 600 else 1)' "$p90" \
    || fail "native p90 of blob upload PUTs is $p90, not a duration"
log "native p90 blob upload PUT: ${p90}s"
# The Grafana dashboard's first panel (the native heatmap) gets a native histogram.
FIRST_PANEL=$(python3 -c 'import json, sys
print(json.load(open(sys.argv[1]))["panels"][0]["targets"][0]["expr"].replace("$__rate_interval", "1m"))' \
    "$SOURCE_ROOT/examples/grafana/regmeter-dashboard.json")
assert_eq histogram "$(api "$NATIVE_URL" kind "$FIRST_PANEL")" "the dashboard's native heatmap query: $FIRST_PANEL"
# Every dashboard query and alert expression evaluates here too, and the
# regmeter_* panels the pushes feed answer from their native side (this
# Prometheus stores those families native only).
python3 - "$SOURCE_ROOT/examples/grafana/regmeter-dashboard.json" "$SOURCE_ROOT/examples/prometheus/alerts.yml" \
    "$E2E_TMP/queries.json" <<'PY'
import json, re, sys, yaml
dash, alerts, out = sys.argv[1:4]
NATIVE = re.compile(r'\bregmeter_(http_request_duration_seconds|upload_session_duration_seconds|upload_session_size_bytes|'
                    r'upstream_header_seconds|upstream_connect_seconds|blob_throughput_bytes_per_second)\s*[{\[]')
FED = ("Native blob upload latency", "Upload session duration", "p95 layer push time", "Blob upload throughput",
       "Upstream time to response head")
queries = []
for p in json.load(open(dash))["panels"]:
    for t in p["targets"]:
        q = t["expr"].replace("$__rate_interval", "1m").replace("$__range", "5m")
        queries.append([f"panel '{p['title']}' {t['refId']}", q, p["title"].startswith(FED) and bool(NATIVE.search(q))])
for g in yaml.safe_load(open(alerts))["groups"]:
    for r in g["rules"]:
        queries.append([f"rule {g['name']}/{r.get('alert') or r.get('record')}", r["expr"], False])
json.dump(queries, open(out, "w"))
PY
deadline=$((SECONDS + PROM_WAIT))
until api "$NATIVE_URL" check "$E2E_TMP/queries.json" >"$E2E_TMP/check.log" 2>&1; do
    ((SECONDS < deadline)) || { cat "$E2E_TMP/check.log" >&2; fail "dashboard or alert queries fail or lack data with native histograms on"; }
    sleep 1
done
log "dashboard and alert queries with native histograms: $(grep -c '^ok' "$E2E_TMP/check.log") ok"

# The OpenMetrics Prometheus has no native buckets (OpenMetrics 1.0 carries none).
wait_api "OpenMetrics Prometheus stores the classic buckets" '^[1-9]' "$OM_URL" count \
    'regmeter_http_request_duration_seconds_bucket{handler="blob_upload_chunk"}'

# ---------------------------------------------------------------- exemplars
wait_api "exemplars stored" '[0-9a-f]{32}' "$NATIVE_URL" exemplars 'registry_http_requests_total'
sleep 0.5  # the access log is flushed every quarter second
checked=0
while read -r request_id _; do
    [[ $request_id =~ ^[0-9a-f]{32}$ ]] || fail "exemplar request_id [$request_id] is not 32 hex digits"
    grep -q "\"request_id\":\"$request_id\"" "$ACCESS_LOG" || fail "exemplar request_id $request_id not in the access log"
    checked=$((checked + 1))
done < <(api "$NATIVE_URL" exemplars 'registry_http_requests_total')
assert_match '^[1-9]' "$checked" "exemplar request ids checked against the access log"
log "$checked request_id exemplars of registry_http_requests_total found in the access log"
histogram_exemplars=$(api "$NATIVE_URL" exemplars "$NATIVE" | wc -l)
assert_match '^[1-9]' "$histogram_exemplars" "exemplars on the native histogram's series"

# One request with a traceparent, to a series nothing else touches now.
TRACE=4bf92f3577b34da6a3ce929d0e0e4736
assert_eq 200 "$(curl -sS -o /dev/null -w '%{http_code}' -H "traceparent: 00-$TRACE-00f067aa0ba902b7-01" \
    "$PROXY_URL/v2/team/app1/tags/list")" "traced tags/list"
wait_api "the traced request's exemplar (protobuf)" "[0-9a-f]{32} $TRACE" "$NATIVE_URL" exemplars \
    'registry_http_request_duration_seconds_bucket{handler="tags"}'
wait_api "the traced request's exemplar (OpenMetrics)" "[0-9a-f]{32} $TRACE" "$OM_URL" exemplars \
    'registry_http_requests_total{handler="tags"}'
traced_id=$(api "$NATIVE_URL" exemplars 'registry_http_request_duration_seconds_bucket{handler="tags"}' \
    | awk -v t="$TRACE" '$2 == t {print $1; exit}')
sleep 0.5
grep -q "\"request_id\":\"$traced_id\".*\"trace_id\":\"$TRACE\"" "$ACCESS_LOG" \
    || fail "access log has no line with request_id $traced_id and trace_id $TRACE"
log "traced request $traced_id: exemplar and access-log line carry trace $TRACE"

# A client's own X-Request-Id: forwarded, logged as client_request_id beside ours.
assert_eq 200 "$(curl -sS -o /dev/null -w '%{http_code}' -H 'X-Request-Id: client-own-7' "$PROXY_URL/v2/")" \
    "GET /v2/ with an X-Request-Id"
wait_until 5 "client_request_id logged" grep -q '"request_id":"[0-9a-f]\{32\}","client_request_id":"client-own-7"' "$ACCESS_LOG"

assert_eq "up " "$(api "$NATIVE_URL" target)" "native Prometheus target health"
assert_eq "up " "$(api "$OM_URL" target)" "OpenMetrics Prometheus target health"

# ---------------------------------------------------------------- X-Request-Id upstream
# What an upstream receives (tests/tools/misbehaving_upstream.py echoes the
# request head): our id when the client sent none, the client's alone when it did.
python3 "$TOOLS/misbehaving_upstream.py" "$E2E_TMP/echo.port" --log "$E2E_TMP/echo.log" &
register_pid $!
register_log "$E2E_TMP/echo.log"
wait_until 10 "echo upstream" test -s "$E2E_TMP/echo.port"
ECHO_LOG=$E2E_TMP/echo-access.log
RM_UPSTREAM=http://127.0.0.1:$(cat "$E2E_TMP/echo.port") start_regmeter --access-log "$ECHO_LOG"
echoed=$(curl -sS --max-time 10 "$PROXY_URL/echo" | tr -d '\r')
sent_id=$(printf '%s\n' "$echoed" | sed -n 's/^X-Request-Id: //p')
assert_match '^[0-9a-f]{32}$' "$sent_id" "X-Request-Id regmeter sent upstream"
wait_until 5 "the echo request's access-log line" grep -q "\"request_id\":\"$sent_id\"" "$ECHO_LOG"
echoed=$(curl -sS --max-time 10 -H 'X-Request-Id: client-own-8' "$PROXY_URL/echo" | tr -d '\r')
assert_eq "X-Request-Id: client-own-8" "$(printf '%s\n' "$echoed" | grep -i '^X-Request-Id:')" \
    "the client's X-Request-Id upstream, alone and unchanged"
log "upstream got X-Request-Id $sent_id (ours), then the client's own"
echo "native_histograms: ok"
