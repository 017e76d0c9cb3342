#!/usr/bin/env bash
# Crowds. The proxy sits in front of a fast static upstream (nginx answering
# {} on /v2/, started here on a free port with a temp prefix) so that the
# proxy, not the registry, is what is loaded.
#
#  * 1000 concurrent keep-alive connections (wrk -t2 -c1000 -d5s GET /v2/)
#    → zero socket errors (connect, read, write, timeout) and zero non-2xx;
#  * 300 slowloris connections, each sending a partial request head one byte
#    at a time, held open while a client's 20 GET /v2/ (each on a fresh
#    connection) keep taking < 1 s each;
#  * afterwards fds and the in-flight gauge are back to the baseline.
#
# Prints load_rps=, load_p99_ms= and slowloris_max_ms= figures.
. "$(dirname "$0")/lib.sh"
require_proxy
command -v wrk >/dev/null || skip "wrk is not installed"
command -v nginx >/dev/null || skip "nginx is not installed"

# wrk holds 1000 sockets; the proxy raises its own limit (RLIMIT_NOFILE).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
(($(ulimit -n) >= 4096)) || skip "cannot raise the open-file limit to 4096 (have $(ulimit -n))"

# ---------------------------------------------------------------- nginx upstream
NGINX_PORT=$(free_port)
NGX=$E2E_TMP/nginx
mkdir -p "$NGX/logs" "$NGX/tmp"
cat >"$NGX/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 16384;
pid $NGX/nginx.pid;
error_log $NGX/logs/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $NGX/tmp/body;
    proxy_temp_path $NGX/tmp/proxy;
    fastcgi_temp_path $NGX/tmp/fastcgi;
    uwsgi_temp_path $NGX/tmp/uwsgi;
    scgi_temp_path $NGX/tmp/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    server {
        listen 127.0.0.1:$NGINX_PORT backlog=4096;
        location = /v2/ {
            default_type application/json;
            add_header Docker-Distribution-Api-Version registry/2.0;
            return 200 '{}';
        }
        location / { return 404 '{}'; }
    }
}
EOF
nginx -p "$NGX" -c "$NGX/nginx.conf" >"$NGX/logs/stdout.log" 2>&1 &
NGINX_PID=$!
register_pid "$NGINX_PID"
register_log "$NGX/logs/error.log"
wait_until 10 "nginx on $NGINX_PORT" http_is 200 "http://127.0.0.1:$NGINX_PORT/v2/"

# The pool keeps idle upstream connections up to each thread's share of
# --max-connections; a short idle timeout returns the crowd's within settle().
RM_UPSTREAM=http://127.0.0.1:$NGINX_PORT start_regmeter --header-timeout 60 --idle-timeout 60 --upstream-idle-timeout 2
for _ in $(seq 16); do
    assert_eq 200 "$(http_code "$PROXY_URL/v2/")" "warm-up"
done
sleep 0.3
BASE_FDS=$(fd_count "$RM_PID")
log "baseline: $BASE_FDS fds"

settle() { # WHAT
    local what=$1 deadline=$((SECONDS + 20)) fds
    while :; do
        is_running "$RM_PID" || fail "$what: regmeter died"
        fds=$(fd_count "$RM_PID")
        # The upstream pool closes the crowd's idle connections after
        # --upstream-idle-timeout (2 s here); the warm-up's few may remain.
        ((fds <= BASE_FDS + 16)) && [[ "$(metric registry_http_in_flight_requests)" == 0 ]] &&
            (($(client_sockets) == 0)) && break
        ((SECONDS < deadline)) || fail "$what: 20 s later regmeter holds $fds fds ($(client_sockets) client sockets), baseline $BASE_FDS"
        sleep 0.2
    done
    assert_eq 200 "$(http_code "$PROXY_URL/v2/")" "$what: GET /v2/ afterwards"
}
# The proxy's accepted client sockets (local port = its listen port).
client_sockets() {
    ss -Htan "( sport = :$RM_PORT )" 2>/dev/null | awk '$1 != "LISTEN" && $1 != "TIME-WAIT"' | wc -l
}

# ---------------------------------------------------------------- 1000 keep-alive connections
WRK_OUT=$E2E_TMP/wrk.out
log "wrk -t2 -c1000 -d5s against GET /v2/"
wrk -t2 -c1000 -d5s --timeout 10s --latency "$PROXY_URL/v2/" >"$WRK_OUT" 2>&1 || { cat "$WRK_OUT" >&2; fail "wrk failed"; }
cat "$WRK_OUT" >&2
requests=$(awk '/requests in/ { print $1 }' "$WRK_OUT")
rps=$(awk '/^Requests\/sec:/ { print $2 }' "$WRK_OUT")
[[ -n "$requests" && "$requests" -gt 1000 ]] || fail "wrk completed only [$requests] requests"
if grep -q 'Socket errors' "$WRK_OUT"; then
    fail "socket errors under 1000 connections: $(grep 'Socket errors' "$WRK_OUT")"
fi
if grep -q 'Non-2xx' "$WRK_OUT"; then
    fail "non-2xx answers under 1000 connections: $(grep 'Non-2xx' "$WRK_OUT")"
fi
p99=$(awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 } printf "%.1f", v }' "$WRK_OUT")
figure "load_rps=$rps"
figure "load_p99_ms=${p99:-0}"
log "1000 connections: $requests requests, $rps req/s, p99 ${p99} ms, no socket error, no non-2xx"
# The proxy counted them all, with the right code.
counted=$(metric registry_http_requests_total code=200 handler=base method=get)
((counted >= requests)) || fail "the proxy counted $counted GET /v2/ 200s, wrk made $requests"
settle "1000 keep-alive connections"

# ---------------------------------------------------------------- slowloris
python3 - "$RM_PORT" 300 15 "$E2E_TMP/loris.ready" >"$E2E_TMP/loris.out" 2>&1 <<'EOF' &
import socket, sys, time
port, count, seconds, ready = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
head = b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: loris\r\nX-Pad: " + b"p" * 400
socks = []
for _ in range(count):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setblocking(False)
    socks.append(s)
sent = [0] * count
open(ready, "w").write("%d\n" % len(socks))
start = time.monotonic()
closed = 0
while time.monotonic() - start < seconds:
    for i, s in enumerate(socks):
        if s is None or sent[i] >= len(head):
            continue
        try:
            s.send(head[sent[i]:sent[i] + 1])
            sent[i] += 1
        except BlockingIOError:
            pass
        except OSError:
            socks[i] = None
            closed += 1
    time.sleep(0.25)
print("slowloris: %d connections, %d closed by the proxy, %d bytes sent each at most" % (count, closed, max(sent)))
for s in socks:
    if s is not None:
        s.close()
EOF
LORIS_PID=$!
register_pid "$LORIS_PID"
wait_until 20 "300 slowloris connections" test -s "$E2E_TMP/loris.ready"
sleep 1
held=$(client_sockets)
log "slowloris: $held client sockets open at the proxy"
((held >= 300)) || fail "only $held slowloris connections reached the proxy"
max_ms=0
for i in $(seq 20); do
    read -r code secs < <(curl -s --max-time 5 -o /dev/null -w '%{http_code} %{time_total}\n' "$PROXY_URL/v2/" || echo "000 5")
    ms=$(awk -v s="$secs" 'BEGIN { printf "%d", s * 1000 }')
    assert_eq 200 "$code" "GET /v2/ #$i during the slowloris"
    ((ms < 1000)) || fail "GET /v2/ #$i took ${ms} ms during the slowloris"
    ((ms > max_ms)) && max_ms=$ms
    sleep 0.2
done
is_running "$LORIS_PID" || fail "the slowloris ended before the measurements did"
figure "slowloris_max_ms=$max_ms"
log "20 GET /v2/ during 300 slowloris connections: slowest ${max_ms} ms"
kill_tree "$LORIS_PID" TERM
{ wait "$LORIS_PID"; } 2>/dev/null || true
settle "slowloris"
log "PASS"
