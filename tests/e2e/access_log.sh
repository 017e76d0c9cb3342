#!/usr/bin/env bash
# The access log end to end: one valid JSON line per request with the fields
# operators rely on (upload session id and outcome included), reopened on
# SIGUSR1 after logrotate moved the file, and --access-log off writes nothing.
. "$(dirname "$0")/lib.sh"
require_proxy

start_registry
LOGFILE=$E2E_TMP/access.log
start_regmeter --upstream "$REGISTRY_URL" --access-log "$LOGFILE"

# A small upload session (POST, PATCH, PUT) and a few other requests.
printf 'hello access log' >"$E2E_TMP/blob"
digest=sha256:$(sha256sum "$E2E_TMP/blob" | cut -d' ' -f1)
location=$(curl -sS -D - -o /dev/null -A 'regmeter-e2e/1.0' -X POST "$PROXY_URL/v2/logs/app/blobs/uploads/" \
    | tr -d '\r' | awk -F': ' 'tolower($1) == "location" { print $2 }')
[[ -n $location ]] || fail "no Location from the POST"
location=$(curl -sS -D - -o /dev/null -A 'regmeter-e2e/1.0' -X PATCH --data-binary @"$E2E_TMP/blob" \
    -H 'Content-Type: application/octet-stream' "$location" | tr -d '\r' | awk -F': ' 'tolower($1) == "location" { print $2 }')
code=$(curl -sS -o /dev/null -w '%{http_code}' -A 'regmeter-e2e/1.0' -X PUT "$location&digest=$digest")
assert_eq 201 "$code" "final PUT"
curl -sS -o /dev/null -A $'caf\xe9 agent' "$PROXY_URL/v2/"
curl -sS -o /dev/null "$PROXY_URL/v2/logs/app/manifests/missing"

wait_until 5 "five lines in the access log" bash -c "[[ \$(wc -l <'$LOGFILE') -ge 5 ]]"
python3 - "$LOGFILE" <<'PY'
import json, sys
lines = open(sys.argv[1], "rb").read().splitlines()
records = [json.loads(line.decode("utf-8")) for line in lines]  # valid UTF-8 JSON, one per line
by = {(r["method"], r["handler"]): r for r in records}
post = by[("POST", "blob_upload")]
patch = by[("PATCH", "blob_upload_chunk")]
put = by[("PUT", "blob_upload_chunk")]
for r in records:
    for key in ("time", "client", "method", "handler", "repository", "reference", "status", "request_bytes",
                "response_bytes", "duration_s", "user_agent"):
        assert key in r, (key, r)
    assert r["client"] == "127.0.0.1", r
    assert r["time"].endswith("Z") and "T" in r["time"], r
assert post["status"] == 202 and post["repository"] == "logs/app", post
assert post["upload_session"] and post["upload_session"] == patch["upload_session"] == put["upload_session"], records
assert patch["request_bytes"] == 16 and patch["status"] == 202, patch
assert put["session_outcome"] == "completed" and put["status"] == 201, put
assert "upstream_header_s" in put and put["upstream_header_s"] <= put["duration_s"], put
assert post["user_agent"] == "regmeter-e2e/1.0", post
base = by[("GET", "base")]
assert base["user_agent"] == "caf\u00e9 agent", base   # obs-text byte kept as its code point
missing = by[("GET", "manifest")]
assert missing["status"] == 404 and missing["reference"] == "missing", missing
print("access log lines ok:", len(records))
PY

# logrotate: move the file, SIGUSR1, the next line goes to a new file.
mv "$LOGFILE" "$LOGFILE.1"
kill -USR1 "$RM_PID"
wait_until 5 "the access log reopened" grep -q "access log .* reopened" "$RM_LOG"
curl -sS -o /dev/null "$PROXY_URL/v2/"
wait_until 5 "a line in the new file" test -s "$LOGFILE"
assert_eq 1 "$(wc -l <"$LOGFILE")" "lines in the reopened file"
old_lines=$(wc -l <"$LOGFILE.1")
curl -sS -o /dev/null "$PROXY_URL/v2/"
sleep 0.6
assert_eq "$old_lines" "$(wc -l <"$LOGFILE.1")" "lines in the rotated file after reopening"
log "SIGUSR1: rotated file kept $old_lines lines; the new file takes new ones"

# --access-log off: nothing on stdout.
kill "$RM_PID"
wait_until 10 "the first proxy stopped" bash -c "! kill -0 $RM_PID 2>/dev/null"
start_regmeter --upstream "$REGISTRY_URL" --access-log off
curl -sS -o /dev/null "$PROXY_URL/v2/"
sleep 0.6
if grep -q '"handler"' "$RM_LOG"; then fail "--access-log off still wrote access lines"; fi
log "access log: ok"
