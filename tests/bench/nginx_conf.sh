# shellcheck shell=bash
# The nginx peer both benchmarks measure against (run.sh through lib.sh, and
# tls_bench.sh): nginx as the registry docs advise (no request or response
# buffering, no body size limit, upstream keep-alive) and as an expert would
# tune it for streaming (256 KiB relay buffers) and for thousands of clients
# (descriptors, worker_connections, listen backlog), access log off unless
# given; and the static backend of the small-request rows.

# nginx_conf_head DIR ACCESS_LOG_LINE: what every bench nginx config starts
# with, up to the inside of its http block (which the caller closes).
nginx_conf_head() {
    # Descriptors for the storm rows (4000 clients and as many upstream
    # connections), as many as this shell may grant: without
    # CAP_SYS_RESOURCE a worker cannot go above the hard limit.
    local nofile
    nofile=$(ulimit -Hn)
    [[ $nofile == unlimited ]] && nofile=65536
    cat <<EOF
worker_processes auto;
worker_rlimit_nofile $nofile;
pid $1/nginx.pid;
error_log $1/logs/error.log warn;
events { worker_connections 16384; }
http {
    $2
    client_body_temp_path $1/tmp/body;
    proxy_temp_path $1/tmp/proxy;
    fastcgi_temp_path $1/tmp/fastcgi;
    uwsgi_temp_path $1/tmp/uwsgi;
    scgi_temp_path $1/tmp/scgi;
EOF
}

# write_nginx_conf DIR BACKEND_PORT LISTEN [SERVER_LINES] [ACCESS_LOG_LINE] [UPSTREAM_CA]
#   LISTEN: the listen directive's argument ("127.0.0.1:8080 ssl");
#   SERVER_LINES: more directives for the server block (certificates);
#   UPSTREAM_CA: the backend speaks TLS: verify it against this CA file (its
#   certificate names localhost) and reuse TLS sessions for new connections.
write_nginx_conf() {
    local dir=$1 backend=$2 listen=$3 server_lines=${4:-} access_log=${5:-access_log off;} upstream_ca=${6:-}
    local scheme=http upstream_tls=""
    if [[ -n $upstream_ca ]]; then
        scheme=https
        upstream_tls="proxy_ssl_trusted_certificate $upstream_ca; proxy_ssl_verify on; proxy_ssl_name localhost;
            proxy_ssl_server_name on; proxy_ssl_session_reuse on;"
    fi
    mkdir -p "$dir/logs" "$dir/tmp"
    {
        nginx_conf_head "$dir" "$access_log"
        cat <<EOF
    keepalive_requests 100000;
    upstream backend {
        server 127.0.0.1:$backend;
        keepalive 32;
        keepalive_requests 100000;
    }
    server {
        listen $listen backlog=4096;
        $server_lines
        client_max_body_size 0;
        client_body_buffer_size 256k;
        location / {
            proxy_pass $scheme://backend;
            $upstream_tls
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_buffer_size 256k;
            proxy_buffers 8 256k;
            proxy_busy_buffers_size 512k;
            proxy_read_timeout 300s;
            proxy_send_timeout 300s;
        }
    }
}
EOF
    } >"$dir/nginx.conf"
}

# The fast static upstream for the small-request rows: nginx answering
# GET /v2/ itself with the registry's `{}` (no disk, no proxying), over plain
# HTTP and over TLS (with a session cache, as a registry's TLS front has), and
# a stub_status page on a port of its own, from which the storm rows count the
# connections each front opens. Its listen backlog stays nginx's default
# (511): a front that opens a connection per request overflows it, as it
# would a registry's.
# write_static_backend_conf DIR PLAIN_LISTENS TLS_LISTENS STATUS_LISTEN CERT KEY
#   PLAIN_LISTENS, TLS_LISTENS: space-separated address:port lists (a port
#   per front, so that `ss` can count each front's upstream connections).
write_static_backend_conf() {
    local dir=$1 plain=$2 tls=$3 status=$4 cert=$5 key=$6 address listens=""
    for address in $plain; do listens+="listen $address; "; done
    for address in $tls; do listens+="listen $address ssl; "; done
    mkdir -p "$dir/logs" "$dir/tmp"
    {
        nginx_conf_head "$dir" "access_log off;"
        cat <<EOF
    keepalive_requests 1000000;
    server {
        $listens
        ssl_certificate $cert;
        ssl_certificate_key $key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:10m;
        location = /v2/ {
            default_type application/json;
            add_header Docker-Distribution-Api-Version registry/2.0;
            return 200 '{}';
        }
    }
    server {
        listen $status;
        location = /nginx_status {
            stub_status;
            allow 127.0.0.1;
            deny all;
        }
    }
}
EOF
    } >"$dir/nginx.conf"
}
