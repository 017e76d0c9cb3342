# shellcheck shell=bash
# The peer both benchmarks measure against (run.sh through lib.sh, and
# tls_bench.sh): nginx as the registry docs advise (no request or response
# buffering, no body size limit, upstream keep-alive) and as an expert would
# tune it for streaming (256 KiB relay buffers), access log off unless given;
# and the static backend of the small-request rows.

# nginx_conf_head DIR ACCESS_LOG_LINE: what every bench nginx config starts
# with, up to the inside of its http block (which the caller closes).
nginx_conf_head() {
    cat <<EOF
worker_processes auto;
pid $1/nginx.pid;
error_log $1/logs/error.log warn;
events { worker_connections 4096; }
http {
    $2
    client_body_temp_path $1/tmp/body;
    proxy_temp_path $1/tmp/proxy;
    fastcgi_temp_path $1/tmp/fastcgi;
    uwsgi_temp_path $1/tmp/uwsgi;
    scgi_temp_path $1/tmp/scgi;
EOF
}

# write_nginx_conf DIR BACKEND_PORT LISTEN [SERVER_LINES] [ACCESS_LOG_LINE]
#   LISTEN: the listen directive's argument ("127.0.0.1:8080 ssl");
#   SERVER_LINES: more directives for the server block (certificates).
write_nginx_conf() {
    local dir=$1 backend=$2 listen=$3 server_lines=${4:-} access_log=${5:-access_log off;}
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
        listen $listen;
        $server_lines
        client_max_body_size 0;
        client_body_buffer_size 256k;
        location / {
            proxy_pass http://backend;
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
# GET /v2/ itself with the registry's `{}` (no disk, no proxying).
# write_static_backend_conf DIR LISTEN
write_static_backend_conf() {
    local dir=$1 listen=$2
    mkdir -p "$dir/logs" "$dir/tmp"
    {
        nginx_conf_head "$dir" "access_log off;"
        cat <<EOF
    keepalive_requests 1000000;
    server {
        listen $listen;
        location = /v2/ {
            default_type application/json;
            add_header Docker-Distribution-Api-Version registry/2.0;
            return 200 '{}';
        }
    }
}
EOF
    } >"$dir/nginx.conf"
}
