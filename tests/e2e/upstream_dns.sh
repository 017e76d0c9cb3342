#!/usr/bin/env bash
# The upstream named by DNS moves, and regmeter follows it.
#
# regmeter runs in its own mount namespace where /etc/hosts is a file of
# this test (bind-mounted; the machine's /etc/hosts is never touched), so
# the test can change what the --upstream name resolves to:
#
#  1. the registry moves (compose/Kubernetes restart: new address, same
#     name). With the default 30 s re-resolution interval, the first
#     request that fails to connect makes regmeter look the name up again,
#     and requests succeed within seconds: regmeter_upstream_resolutions_total
#     {result="changed"} counts it, the log names the new address.
#  2. the name resolves to two registries and one of them goes down: every
#     request still succeeds (a refused connect is retried on the next
#     address), none is answered 502.
#  3. one of the two addresses is blackholed (SYNs dropped: a listener whose
#     accept queue is full): with --upstream-connect-timeout 1 the first
#     request through it waits a second and goes to the other address; the
#     blackholed one is then skipped, so later requests are fast.
#  4. the name stops resolving: the old addresses are kept (requests still
#     succeed) and {result="error"} counts the failed lookups.
. "$(dirname "$0")/lib.sh"
require_proxy
command -v unshare >/dev/null || fail "unshare (util-linux) is missing"

NAME=registry.regmeter.test
HOSTS=$E2E_TMP/hosts
set_hosts() { # ADDRESS...: what NAME resolves to (rewritten in place: the bind mount keeps the inode)
    { echo "127.0.0.1 localhost"; for a in "$@"; do echo "$a $NAME"; done; } >"$HOSTS"
}
set_hosts 127.0.0.2

# regmeter inside a mount namespace with our hosts file; unshare and the
# shell exec, so the pid start_regmeter registers is regmeter's own.
WRAPPER=$E2E_TMP/regmeter-own-hosts
cat >"$WRAPPER" <<WRAP
#!/usr/bin/env bash
exec unshare --mount bash -c 'mount --bind "\$0" /etc/hosts && exec "\$@"' "$HOSTS" "$REGMETER" "\$@"
WRAP
chmod +x "$WRAPPER"
REAL_REGMETER=$REGMETER
REGMETER=$WRAPPER

PORT=$(free_port)
E2E_REGISTRY_IP=127.0.0.2 start_registry "$PORT"
FIRST_PID=$REGISTRY_PID
RM_UPSTREAM=http://$NAME:$PORT start_regmeter
assert_eq 200 "$(http_code "$PROXY_URL/v2/")" "GET /v2/ through $NAME -> 127.0.0.2"
assert_eq 1 "$(metric regmeter_upstream_addresses)" "addresses at start"
assert_contains "src/regmeter" "$(tr '\0' ' ' </proc/$RM_PID/cmdline)" "the registered pid is regmeter itself"

# ---------------------------------------------------------------- 1. the registry moves
log "moving the registry from 127.0.0.2 to 127.0.0.3 (same port, same name)"
kill_tree "$FIRST_PID"
for _ in $(seq 100); do is_running "$FIRST_PID" || break; sleep 0.1; done
E2E_REGISTRY_IP=127.0.0.3 start_registry "$PORT"
set_hosts 127.0.0.3
t0=$(now_ms)
codes=""
ok=0
for _ in $(seq 100); do  # at most ~10 s; the periodic lookup would take 30
    code=$(http_code "$PROXY_URL/v2/")
    codes+="$code "
    if [[ $code == 200 ]]; then ok=1; break; fi
    assert_eq 502 "$code" "a request to the old address before the lookup (502, never a hang)"
    sleep 0.1
done
elapsed=$(($(now_ms) - t0))
log "statuses until the move was followed: $codes(${elapsed} ms)"
((ok)) || fail "regmeter did not follow the move within 10 s: $codes"
assert_le 5000 "$elapsed" "ms until requests reach the moved registry"
figure "upstream moved: followed after ${elapsed} ms (statuses: $codes)"
assert_eq 1 "$(metric regmeter_upstream_resolutions_total result=changed)" "resolutions that changed the addresses"
grep -q "now resolves to 127.0.0.3:$PORT (was 127.0.0.2:$PORT)" "$RM_LOG" || fail "no log line naming the new address: $(tail -5 "$RM_LOG")"
for _ in $(seq 10); do assert_eq 200 "$(http_code "$PROXY_URL/v2/")" "GET /v2/ after the move"; done

# ---------------------------------------------------------------- 2. two addresses, one down
# A second regmeter that resolves every second, so it picks the pair up.
set_hosts 127.0.0.2 127.0.0.3
E2E_REGISTRY_IP=127.0.0.2 start_registry "$PORT"
SECOND_PID=$REGISTRY_PID
FIRST_PROXY=$PROXY_URL
RM_UPSTREAM=http://$NAME:$PORT start_regmeter --upstream-resolve-interval 1
wait_metric 5 2 regmeter_upstream_addresses
assert_eq 200 "$(http_code "$PROXY_URL/v2/")" "GET /v2/ with two addresses"
log "stopping the registry on 127.0.0.2; 127.0.0.3 stays"
kill_tree "$SECOND_PID"
for _ in $(seq 100); do is_running "$SECOND_PID" || break; sleep 0.1; done
statuses=""
for _ in $(seq 30); do statuses+="$(http_code "$PROXY_URL/v2/" -H 'Connection: close') "; done
log "30 requests with one of two addresses down: $statuses"
assert_eq 30 "$(grep -o 200 <<<"$statuses" | wc -l)" "requests answered 200 with one address down"
assert_eq 0 "$(metric0 registry_http_requests_total code=502)" "502s with one address down"
failures=$(metric regmeter_upstream_connect_failures_total)
awk -v n="$failures" 'BEGIN {exit !(n >= 1)}' || fail "refused connects (retried) not counted: [$failures]"
log "connect failures counted (and retried on the other address): $failures"

# ---------------------------------------------------------------- 3. a blackholed address
BLACKHOLE=$E2E_TMP/blackhole.py
cat >"$BLACKHOLE" <<'PY'
"""blackhole.py ADDR PORT: a listener that never accepts, its queue filled
by one connection of its own, so further SYNs are dropped (connects hang)."""
import socket, sys, time
listener = socket.socket()
listener.bind((sys.argv[1], int(sys.argv[2])))
listener.listen(0)
filler = socket.create_connection((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
time.sleep(600)
PY
python3 "$BLACKHOLE" 127.0.0.4 "$PORT" >"$E2E_TMP/blackhole.log" 2>&1 &
register_pid $!
wait_until 10 "blackhole listener" grep -q ready "$E2E_TMP/blackhole.log"
set_hosts 127.0.0.4 127.0.0.3
RM_UPSTREAM=http://$NAME:$PORT start_regmeter --threads 2 --upstream-resolve-interval 1 --upstream-connect-timeout 1
wait_metric 5 2 regmeter_upstream_addresses
failures_before=$(metric0 regmeter_upstream_connect_failures_total)
# Rounds of 8 requests at once: concurrent requests need new upstream
# connections, which take the two addresses in turn.
t0=$(now_ms)
for round in 1 2 3; do
    for i in $(seq 8); do
        curl -s -o /dev/null --max-time 10 -w '%{http_code}\n' "$PROXY_URL/v2/" >"$E2E_TMP/bh-$round-$i" &
    done
    wait_until 15 "round $round of concurrent requests" bash -c "[[ \$(cat $E2E_TMP/bh-$round-* | wc -l) == 8 ]]"
done
elapsed=$(($(now_ms) - t0))
statuses=$(cat "$E2E_TMP"/bh-* | sort | uniq -c | xargs)
failures=$(( $(metric0 regmeter_upstream_connect_failures_total) - failures_before ))
log "24 requests (3 rounds of 8 at once), one of two addresses blackholed: $statuses; ${elapsed} ms; connect timeouts: $failures"
assert_eq "24 200" "$statuses" "statuses with one address blackholed"
awk -v n="$failures" 'BEGIN {exit !(n >= 1)}' || fail "no connect went to the blackholed address: the test proves nothing"
# Each of the 2 threads dials the blackhole only until its first connect
# there has timed out (1 s), then skips it for 10 s. Before that first
# timeout a thread's concurrent new connections alternate between the two
# addresses, so up to 2 per thread can go there: at most 4 in all. Without
# skipping, every round's new connections would keep going there. Counted,
# not timed: a busy machine stretches the wall clock, not the count.
assert_le 4 "$failures" "connect timeouts at the blackholed address over 3 rounds (2 threads)"
assert_le 8000 "$elapsed" "ms for 3 rounds with one address blackholed"
figure "blackholed address: 3 rounds of 8 concurrent requests in ${elapsed} ms ($failures connect timeouts of 1 s, then skipped)"

# ---------------------------------------------------------------- 4. the name stops resolving
set_hosts
sleep 2.5
errors=$(metric regmeter_upstream_resolutions_total result=error)
awk -v n="$errors" 'BEGIN {exit !(n >= 1)}' || fail "failed lookups not counted: [$errors]"
for _ in $(seq 5); do assert_eq 200 "$(http_code "$PROXY_URL/v2/")" "GET /v2/ with the name gone (old addresses kept)"; done
assert_eq 1 "$(grep -c "cannot resolve '$NAME'" "$RM_LOG")" "the failing lookup is logged once, not every second"
assert_eq 200 "$(http_code "$FIRST_PROXY/v2/")" "the first regmeter still serves"
REGMETER=$REAL_REGMETER
log "ok"
