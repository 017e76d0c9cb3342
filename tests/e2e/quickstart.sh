#!/usr/bin/env bash
# examples/quickstart.sh as a new user runs it, on a machine where its
# default ports are busy:
#   - its package list is tests/run.sh's build list, and docs/getting-started.md
#     names the same packages;
#   - with 5000, 5001, 5080 and 9180 taken by an unknown HTTP service, it
#     picks free ports and says so, starts its own demo registry (the unknown
#     service on 5000 gets no request), and prints the banner only once
#     regmeter answers: the banner's addresses work, a push through them is
#     stored and logged to the access log file the banner names, the
#     dashboard URL it prints answers;
#   - quiet: progress lines only, no build output; a failing build shows its
#     output and the log path;
#   - a taken port given in LISTEN / METRICS_LISTEN stops it with one line
#     naming the port, before building, without a banner;
#   - SIGTERM stops regmeter and the demo registry;
#   - with UPSTREAM (and free LISTEN/METRICS_LISTEN) given: no demo registry,
#     the given addresses in the banner, requests reach that upstream.
# SKIP_APT=1 and BUILD_DIR (the tree under test) keep apt and a second build
# out of it.
. "$(dirname "$0")/lib.sh"
require_proxy
command -v docker-registry >/dev/null || fail "docker-registry missing (apt-get install docker-registry)"
command -v skopeo >/dev/null || fail "skopeo missing (apt-get install skopeo)"
QS=$SOURCE_ROOT/examples/quickstart.sh
[[ -x "$QS" ]] || fail "$QS is not executable"
[[ -n "${BUILD_ROOT:-}" && -x "$BUILD_ROOT/src/regmeter" ]] || fail "BUILD_ROOT=${BUILD_ROOT:-} has no src/regmeter"

# ---------------------------------------------------------------- one package list
run_build=$(sed -n '/^PACKAGES=(/,/^)/p' "$SOURCE_ROOT/tests/run.sh" | sed -n '/# build/,/# end-to-end/p' |
    grep -v '#' | tr -s ' \n' '\n' | sed '/^$/d' | sort -u)
[[ $(wc -l <<<"$run_build") -ge 10 ]] || fail "could not read tests/run.sh's build packages: $run_build"
qs_need=$(sed -n '/^need=(/,/)/p' "$QS" | tr -d '()' | sed 's/^need=//' | tr -s ' \n' '\n' | sed '/^$/d' | sort -u)
missing=$(comm -23 <(echo "$run_build") <(echo "$qs_need") | tr '\n' ' ')
assert_eq "" "$missing" "build packages of tests/run.sh that quickstart.sh does not install"
doc_list=$(tr '\n' ' ' <"$SOURCE_ROOT/docs/getting-started.md" |
    sed -n 's/.*Build dependencies (Debian 12 package names): `\([^`]*\)`.*/\1/p' | tr -s ' ' '\n' | sed '/^$/d' | sort -u)
[[ -n "$doc_list" ]] || fail "docs/getting-started.md has no 'Build dependencies (Debian 12 package names): \`...\`'"
assert_eq "" "$(comm -3 <(echo "$run_build") <(echo "$doc_list") | tr -s '\t\n' '  ')" \
    "docs/getting-started.md's build packages differ from tests/run.sh's"

# ---------------------------------------------------------------- busy default ports
# An unknown HTTP service that answers 200 to everything (so a /v2/ probe
# would take it for a registry) on each default port; it logs what it gets.
FAKE_LOG=$E2E_TMP/fake-requests.log
: >"$FAKE_LOG"
python3 - "$FAKE_LOG" 5000 5001 5080 9180 >"$E2E_TMP/fake.out" 2>&1 <<'PY' &
import http.server, socket, sys, threading
log = open(sys.argv[1], "a", buffering=1)
class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        log.write(f"{self.server.server_port} {self.command} {self.path}\n")
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"{}")
    do_HEAD = do_POST = do_PUT = do_PATCH = do_GET
    def log_message(self, *a): pass
servers = []
for port in map(int, sys.argv[2:]):
    try:
        servers.append(http.server.ThreadingHTTPServer(("127.0.0.1", port), Answer))
        print(f"holding {port}", flush=True)
    except OSError as e:
        print(f"{port} already taken ({e}): busy anyway", flush=True)
for s in servers:
    threading.Thread(target=s.serve_forever, daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
PY
register_pid $!
register_log "$E2E_TMP/fake.out"
wait_until "$E2E_WAIT" "the fake service holds the default ports" grep -q '^ready' "$E2E_TMP/fake.out"
for port in 5000 5001 5080 9180; do
    http_is 200 "http://127.0.0.1:$port/v2/" || grep -q "^$port already taken" "$E2E_TMP/fake.out" \
        || fail "port $port is neither held by the fake service nor taken"
done
: >"$FAKE_LOG"   # the probe above is not the quick start's

# ---------------------------------------------------------------- taken ports that were asked for
free_listen=127.0.0.1:$(free_port)
for given in LISTEN=127.0.0.1:5080 METRICS_LISTEN=127.0.0.1:9180; do
    var=${given%%=*} port=${given##*:}
    rc=0
    env LISTEN="$free_listen" "$given" SKIP_APT=1 BUILD_DIR="$E2E_TMP/never-built" QUICKSTART_DIR="$E2E_TMP/qs-given" \
        timeout 60 "$QS" >"$E2E_TMP/given.out" 2>"$E2E_TMP/given.err" || rc=$?
    assert_eq 1 "$rc" "exit status with $given taken"
    assert_eq "quickstart: port $port ($given) is taken by another process: free it or set $var to another address" \
        "$(cat "$E2E_TMP/given.err")" "the one line for a taken $var"
    assert_eq "" "$(cat "$E2E_TMP/given.out")" "stdout with a taken $var (no step ran, no banner)"
    [[ ! -e "$E2E_TMP/never-built" ]] || fail "$var taken: the quick start configured a build anyway"
done

# ---------------------------------------------------------------- a failing build is shown
mkdir -p "$E2E_TMP/broken-build/meson-private"
echo "not a meson build" >"$E2E_TMP/broken-build/meson-private/coredata.dat"
rc=0
SKIP_APT=1 BUILD_DIR=$E2E_TMP/broken-build QUICKSTART_DIR=$E2E_TMP/qs-broken \
    timeout 120 "$QS" >"$E2E_TMP/broken.out" 2>"$E2E_TMP/broken.err" || rc=$?
assert_eq 1 "$rc" "exit status when the build fails"
assert_contains "building regmeter (output in $E2E_TMP/qs-broken/quickstart.log) failed" "$(cat "$E2E_TMP/broken.err")" \
    "the failed step and the log path on stderr"
[[ $(wc -l <"$E2E_TMP/broken.err") -ge 2 ]] || fail "the failing build's own output is not shown: $(cat "$E2E_TMP/broken.err")"
grep -q "Ctrl-C stops" "$E2E_TMP/broken.out" && fail "a banner after a failed build"

# ---------------------------------------------------------------- the quick start on busy ports
OUT=$E2E_TMP/qs.out
ERR=$E2E_TMP/qs.err
STATE=$E2E_TMP/qs
SKIP_APT=1 BUILD_DIR=$BUILD_ROOT QUICKSTART_DIR=$STATE "$QS" >"$OUT" 2>"$ERR" &
QS_PID=$!
register_pid "$QS_PID"
register_log "$ERR"
deadline=$((SECONDS + 300))
until grep -q '^Ctrl-C stops' "$OUT"; do
    is_running "$QS_PID" || { cat "$OUT" "$ERR" >&2; fail "the quick start exited before its banner"; }
    ((SECONDS < deadline)) || { cat "$OUT" >&2; fail "no banner within 300 s"; }
    sleep 0.2
done
log "banner:"$'\n'"$(cat "$OUT")"
banner_field() { sed -n "s/^$1 *//p" "$OUT" | head -n 1; }
listen=$(sed -n 's/^regmeter listens on \([^ ]*\) and forwards to .*/\1/p' "$OUT")
upstream=$(sed -n 's/^regmeter listens on [^ ]* and forwards to \(.*\)\.$/\1/p' "$OUT")
dashboard=$(banner_field "Dashboard:")
access_log=$(banner_field "Access log: tail -f")
assert_match '^127\.0\.0\.1:[0-9]+$' "$listen" "the banner's listen address"
assert_match '^http://127\.0\.0\.1:[0-9]+$' "$upstream" "the banner's upstream"
assert_match '^http://127\.0\.0\.1:[0-9]+/dashboard$' "$dashboard" "the banner's dashboard URL"
assert_eq "$STATE/access.log" "$access_log" "the banner's access log path"
for busy in 5080:"${listen##*:}" 9180:"$(sed 's#.*:\([0-9]*\)/dashboard#\1#' <<<"$dashboard")" 5000:"${upstream##*:}"; do
    assert_ne "${busy%%:*}" "${busy##*:}" "a taken default port is not used"
done
for port in 5080 9180 5000; do
    assert_contains "port $port is taken:" "$(cat "$ERR")" "the quick start says port $port was taken"
done
# Quiet: progress lines and the banner, nothing of apt or the compiler.
grep -E -q '^\[[0-9]+/[0-9]+\]|ninja|Compiling|Linking' "$OUT" "$ERR" && fail "build output on the terminal: $(grep -E '^\[[0-9]+/[0-9]+\]|ninja|Compiling|Linking' "$OUT" "$ERR" | head -3)"
steps=$(sed -n '1,/^regmeter listens on/p' "$OUT" | grep -c -v '^$')
assert_le 8 "$steps" "lines before the banner (one per step)"
[[ -s "$STATE/quickstart.log" ]] || fail "no build log at $STATE/quickstart.log"

# The banner's addresses work: a push, a pull, the dashboard, the access log.
assert_eq 200 "$(http_code "$dashboard")" "GET the banner's dashboard URL"
assert_contains "<html" "$(curl -sS "$dashboard" | head -c 2000 | tr 'A-Z' 'a-z')" "the dashboard is a page"
make_image "$E2E_TMP/img" 1.0 64K 256K
skopeo_ copy --dest-tls-verify=false "oci:$E2E_TMP/img:1.0" "docker://$listen/qs/app:1.0" >"$E2E_TMP/push.log" 2>&1 \
    || { cat "$E2E_TMP/push.log" >&2; fail "skopeo push through the banner's address"; }
skopeo_ inspect --tls-verify=false "docker://$listen/qs/app:1.0" >/dev/null 2>"$E2E_TMP/inspect.log" \
    || { cat "$E2E_TMP/inspect.log" >&2; fail "skopeo inspect through the banner's address"; }
assert_eq 200 "$(http_code "$upstream/v2/qs/app/manifests/1.0" -H 'Accept: application/vnd.oci.image.manifest.v1+json')" \
    "the demo registry on the banner's upstream has the pushed manifest"
wait_until "$E2E_WAIT" "the push in the access log" grep -q '"handler":"manifest"' "$access_log"
assert_eq "" "$(cat "$FAKE_LOG")" "requests that reached the unknown service on the default ports"
metrics_url=${dashboard%/dashboard}/metrics
assert_contains 'regmeter_image_pushes_total' "$(scrape "$metrics_url")" "the banner's metrics port"

# SIGTERM: regmeter and the demo registry stop with the script.
kids=$(ps -o pid= --ppid "$QS_PID" | tr '\n' ' ')
[[ $(wc -w <<<"$kids") -ge 2 ]] || fail "expected regmeter and the demo registry under the quick start, found: $kids"
kill -TERM "$QS_PID"
wait_until "$E2E_WAIT" "the quick start exits on SIGTERM" bash -c "! kill -0 $QS_PID 2>/dev/null"
for pid in $kids; do
    is_running "$pid" && fail "pid $pid (started by the quick start) still runs after SIGTERM"
done
assert_contains "stopping regmeter" "$(cat "$OUT")" "the quick start says it stops regmeter"
assert_contains "stopping the demo registry" "$(cat "$OUT")" "the quick start says it stops the demo registry"

# ---------------------------------------------------------------- UPSTREAM given
# A registry of one's own: no demo registry, the banner names it, free ports
# given explicitly are used as given.
start_registry
l2=127.0.0.1:$(free_port)
m2=127.0.0.1:$(free_port)
UPSTREAM=$REGISTRY_URL LISTEN=$l2 METRICS_LISTEN=$m2 SKIP_APT=1 BUILD_DIR=$BUILD_ROOT QUICKSTART_DIR=$E2E_TMP/qs2 \
    "$QS" >"$E2E_TMP/qs2.out" 2>"$E2E_TMP/qs2.err" &
QS2_PID=$!
register_pid "$QS2_PID"
register_log "$E2E_TMP/qs2.err"
wait_until 120 "the banner with UPSTREAM given" grep -q '^Ctrl-C stops' "$E2E_TMP/qs2.out"
assert_contains "regmeter listens on $l2 and forwards to $REGISTRY_URL." "$(cat "$E2E_TMP/qs2.out")" "the banner with UPSTREAM given"
assert_contains "Dashboard:  http://$m2/dashboard" "$(cat "$E2E_TMP/qs2.out")" "the dashboard URL on the given metrics address"
grep -q -e 'demo registry' -e '^Registry:' "$E2E_TMP/qs2.out" && fail "a demo registry although UPSTREAM was given: $(cat "$E2E_TMP/qs2.out")"
assert_eq "" "$(grep "is taken" "$E2E_TMP/qs2.err" || true)" "no port moved when the given ports are free"
assert_eq 200 "$(http_code "http://$l2/v2/")" "GET /v2/ through the quick start to the given upstream"
kill -TERM "$QS2_PID"
wait_until "$E2E_WAIT" "the second quick start exits on SIGTERM" bash -c "! kill -0 $QS2_PID 2>/dev/null"
log "PASS"
