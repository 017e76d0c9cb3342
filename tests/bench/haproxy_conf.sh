# shellcheck shell=bash
# The second peer of the benchmarks (run.sh through lib.sh, and tls_bench.sh):
# HAProxy (Debian's 2.6) in HTTP mode, tuned as one would for a registry
# front: bodies streamed, not buffered (`option http-buffer-request` off), the
# kernel's splice() for bodies it can pass through untouched (see
# BENCH_HAPROXY_SPLICE below), 256 KiB buffers (`tune.bufsize`), one thread per
# core, idle upstream connections shared by every client (`http-reuse
# always`) and kept at thousands of clients (`tune.pool-*-fd-ratio`), no
# per-server connection limit (`maxconn` unset on the `server`
# line, so nothing queues in HAProxy), timeouts long enough for 1 GiB
# streams, no logging (nginx runs with `access_log off`), and the same
# X-Forwarded-For/-Proto headers the nginx peer adds.
#
# Splicing, BENCH_HAPROXY_SPLICE:
#   always (default): `option splice-request` + `option splice-response`:
#       every Content-Length body moves socket to pipe to socket with
#       splice(2) (strace -c -f: ~35 000 splice calls and no recvfrom/sendto
#       per GiB, both directions). Chunked bodies cannot be spliced (HAProxy
#       parses the chunks) and go through the 256 KiB buffers either way.
#   auto: `option splice-auto`, HAProxy's heuristic. It splices only once a
#       channel has filled its whole buffer in one read three times in a row
#       (channel_check_xfer, "fast streamer"); with 256 KiB buffers a loopback
#       read seldom returns that much, and a 1 GiB download or upload under
#       strace -c -f made no splice call at all.
#
# Allocator, BENCH_HAPROXY_GLIBC_TUNABLES (default below; empty: glibc's own
# defaults): Debian's HAProxy takes its 256 KiB buffers from malloc, request
# after request (its per-thread pool cache holds few objects that large), and
# with glibc's default thresholds each one comes from mmap or a freshly
# grown heap top and goes back with munmap or a trim: page faults and TLB
# shootdowns: 1.5-2x the CPU per small request of the same HAProxy with
# 16 KiB buffers (wrk -c32 on /v2/ on the shared 2-core machine, alternating:
# 18-37 us per request against 11-21 us). With both thresholds raised, as
# regmeter raises its own (mallopt in src/app/server.cpp), it was level with the
# 16 KiB configuration in the same rounds (13-19 against 13-19 us).
HAPROXY_GLIBC_TUNABLES_DEFAULT=glibc.malloc.mmap_threshold=4194304:glibc.malloc.trim_threshold=33554432
haproxy_glibc_tunables() { echo "${BENCH_HAPROXY_GLIBC_TUNABLES-$HAPROXY_GLIBC_TUNABLES_DEFAULT}"; }

# write_haproxy_conf DIR BIND BACKEND_PORT [BIND_OPTIONS] [SERVER_OPTIONS] [log]
#   BIND: address:port to listen on;
#   BIND_OPTIONS: more `bind` options (TLS termination: "ssl crt FILE.pem");
#   SERVER_OPTIONS: more `server` options (TLS upstream: "ssl verify required
#   ca-file FILE verifyhost NAME");
#   log: an access log line per request on stdout (BENCH_ACCESS_LOG=1).
# Writes DIR/haproxy.cfg; run it with
#   GLIBC_TUNABLES=$(haproxy_glibc_tunables) haproxy -db -f DIR/haproxy.cfg
write_haproxy_conf() {
    local dir=$1 bind=$2 backend=$3 bind_options=${4:-} server_options=${5:-} splice log_global="" log_defaults=""
    if [[ ${6:-} == log ]]; then
        log_global="log stdout format raw local0"
        log_defaults=$'log global\n    option httplog'
    fi
    case ${BENCH_HAPROXY_SPLICE:-always} in
        always) splice=$'option splice-request\n    option splice-response' ;;
        auto) splice="option splice-auto" ;;
        *) echo "BENCH_HAPROXY_SPLICE: 'always' or 'auto', not '$BENCH_HAPROXY_SPLICE'" >&2; return 2 ;;
    esac
    local nofile maxconn
    nofile=$(ulimit -Hn)
    [[ $nofile == unlimited ]] && nofile=65536
    maxconn=$(((nofile - 100) * 2 / 5))
    ((maxconn > 20000)) && maxconn=20000
    mkdir -p "$dir"
    cat >"$dir/haproxy.cfg" <<EOF
global
    nbthread $(nproc)
    # Client connections at once (the storm rows open 4000). HAProxy raises
    # its descriptor limit to about 2.5 times this (two per connection, and a
    # pipe pair for splice per four), and without CAP_SYS_RESOURCE that must
    # fit under the hard limit, $nofile here.
    maxconn $maxconn
    tune.bufsize 262144
    # An idle upstream connection is kept for reuse only while HAProxy uses
    # less than pool-low-fd-ratio % of its descriptors (default 20: 4000 of
    # 20000, which 4000 clients reach on their own; then every request opened
    # a new upstream connection, 1.01 per request in the -c4000 storm row).
    tune.pool-low-fd-ratio 80
    tune.pool-high-fd-ratio 90
    ssl-default-bind-options ssl-min-ver TLSv1.2
    ssl-default-server-options ssl-min-ver TLSv1.2
    $log_global

defaults
    mode http
    $log_defaults
    # The frontend's own limit and listen backlog, set rather than left to
    # defaults that differ between versions (the nginx peer: backlog=4096).
    maxconn $maxconn
    backlog 4096
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-request 60s
    timeout http-keep-alive 300s
    no option http-buffer-request
    $splice
    http-reuse always
    option forwardfor

frontend registry_front
    bind $bind $bind_options
    http-request set-header X-Forwarded-Proto https if { ssl_fc }
    http-request set-header X-Forwarded-Proto http if !{ ssl_fc }
    default_backend registry

backend registry
    server registry 127.0.0.1:$backend $server_options
EOF
}
