# shellcheck shell=bash
# TLS variants of the e2e helpers (tests/e2e/lib.sh is sourced from here).
# Source it first thing:
#
#   . "$(dirname "$0")/tls_lib.sh"
#
# What it adds:
#   tls_make_ca DIR                  a throwaway CA: DIR/ca.crt, DIR/ca.key
#   tls_make_leaf DIR NAME SERIAL [server|client] [SAN]
#                                    DIR/NAME.crt + DIR/NAME.key signed by DIR/ca
#                                    (SAN default DNS:localhost,IP:127.0.0.1)
#   tls_setup_pki                    CA + server leaf under $E2E_TMP/pki; sets
#                                    TLS_DIR TLS_CA TLS_CERT TLS_KEY and exports
#                                    CURL_CA_BUNDLE=$TLS_CA, so every curl (also
#                                    the ones inside lib.sh's helpers) trusts the
#                                    test CA and nothing else. A curl that must
#                                    NOT trust it runs as `env -u CURL_CA_BUNDLE curl`.
#   start_registry_tls [PORT]        docker-registry serving https with TLS_CERT
#                                    (or REGISTRY_TLS_CERT/REGISTRY_TLS_KEY); sets
#                                    what start_registry sets; REGISTRY_URL is
#                                    https://127.0.0.1:PORT
#   start_regmeter_tls [ARGS...]     regmeter with --tls-cert/--tls-key added
#                                    (unless RM_PLAIN_LISTEN=1); PROXY_URL is
#                                    https://127.0.0.1:PORT. --metrics-tls-cert
#                                    in ARGS makes METRICS_URL/HEALTH_URL https.
#   stop_service PID                 TERM (then KILL) a service and reap it
#   cert_serial HOST:PORT [s_client args...]   serial of the certificate served
#   tls_probe HOST:PORT [s_client args...]     one openssl s_client handshake;
#                                    prints its output, returns its exit status
#   log_has FILE REGEX               grep -E -q, for wait_until
# Everything stays on 127.0.0.1; every wait is bounded.

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---------------------------------------------------------------- certificates
# P-256 keys: quick to make, and both Go (docker-registry) and OpenSSL take them.
tls_make_ca() { # DIR
    local dir=$1
    mkdir -p "$dir"
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$dir/ca.key" -out "$dir/ca.crt" -days 2 -sha256 \
        -subj "/CN=regmeter e2e test CA $$" \
        -addext 'basicConstraints=critical,CA:TRUE' \
        -addext 'keyUsage=critical,keyCertSign,cRLSign' >"$dir/ca.log" 2>&1 ||
        { cat "$dir/ca.log" >&2; return 1; }
}

tls_make_leaf() { # DIR NAME SERIAL(hex) [server|client] [SAN]
    local dir=$1 name=$2 serial=$3 kind=${4:-server} san=${5:-DNS:localhost,IP:127.0.0.1} eku
    [[ $kind == client ]] && eku=clientAuth || eku=serverAuth
    cat >"$dir/$name.ext" <<EOF
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = $eku
subjectAltName = $san
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
EOF
    {
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout "$dir/$name.key" -out "$dir/$name.csr" -subj "/CN=$name" &&
            openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
                -set_serial "0x$serial" -days 2 -sha256 -extfile "$dir/$name.ext" -out "$dir/$name.crt"
    } >"$dir/$name.log" 2>&1 || { cat "$dir/$name.log" >&2; return 1; }
}

tls_setup_pki() {
    TLS_DIR=$E2E_TMP/pki
    tls_make_ca "$TLS_DIR" || fail "making the test CA"
    tls_make_leaf "$TLS_DIR" server 1001 server || fail "making the server certificate"
    TLS_CA=$TLS_DIR/ca.crt
    TLS_CERT=$TLS_DIR/server.crt
    TLS_KEY=$TLS_DIR/server.key
    export CURL_CA_BUNDLE=$TLS_CA
    log "test CA $TLS_CA, server leaf serial $(openssl x509 -noout -serial -in "$TLS_CERT")"
}

# ---------------------------------------------------------------- services
start_registry_tls() { # [PORT]: start_registry serving https with the test PKI
    E2E_REGISTRY_TLS_CERT=${REGISTRY_TLS_CERT:-$TLS_CERT} E2E_REGISTRY_TLS_KEY=${REGISTRY_TLS_KEY:-$TLS_KEY} \
        E2E_REGISTRY_TLS_CA=$TLS_CA start_registry "$@"
}

start_regmeter_tls() { # [EXTRA ARGS...]
    [[ -x "$REGMETER" ]] || fail "REGMETER=$REGMETER is not an executable"
    local upstream=${RM_UPSTREAM:-$REGISTRY_URL} a metrics_scheme=http
    local -a tls_args=()
    [[ "${RM_PLAIN_LISTEN:-0}" == 1 ]] || tls_args=(--tls-cert "$TLS_CERT" --tls-key "$TLS_KEY")
    for a in "$@"; do [[ $a == --metrics-tls-cert ]] && metrics_scheme=https; done
    RM_PORT=$(free_port)
    RM_METRICS_PORT=$(free_port)
    RM_LOG=$E2E_TMP/regmeter-$RM_PORT.log
    "$REGMETER" --listen "127.0.0.1:$RM_PORT" --upstream "$upstream" \
        --metrics-listen "127.0.0.1:$RM_METRICS_PORT" "${tls_args[@]}" "$@" >"$RM_LOG" 2>&1 &
    RM_PID=$!
    register_pid "$RM_PID"
    register_log "$RM_LOG"
    if [[ "${RM_PLAIN_LISTEN:-0}" == 1 ]]; then PROXY_URL=http://127.0.0.1:$RM_PORT; else PROXY_URL=https://127.0.0.1:$RM_PORT; fi
    PROXY_HOSTPORT=127.0.0.1:$RM_PORT
    METRICS_URL=$metrics_scheme://127.0.0.1:$RM_METRICS_PORT/metrics
    HEALTH_URL=$metrics_scheme://127.0.0.1:$RM_METRICS_PORT/healthz
    local deadline=$((SECONDS + E2E_WAIT))
    until [[ "$(http_code "$HEALTH_URL")" == 200 ]]; do
        is_running "$RM_PID" || fail "regmeter exited during startup: $(cat "$RM_LOG")"
        ((SECONDS < deadline)) || fail "regmeter /healthz did not answer 200 within ${E2E_WAIT}s"
        sleep 0.1
    done
    log "regmeter pid $RM_PID on $PROXY_URL -> $upstream (metrics $METRICS_URL)"
}

stop_service() { # PID
    local pid=$1 i
    kill_tree "$pid" TERM
    for ((i = 0; i < 100; i++)); do
        is_running "$pid" || break
        sleep 0.1
    done
    is_running "$pid" && kill_tree "$pid" KILL
    wait "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------- probes
tls_probe() { # HOST:PORT [s_client args...]
    local target=$1
    shift
    timeout 10 openssl s_client -connect "$target" -servername localhost "$@" </dev/null 2>&1
}

cert_serial() { # HOST:PORT [s_client args...]
    local target=$1
    shift
    timeout 10 openssl s_client -connect "$target" -servername localhost "$@" </dev/null 2>/dev/null |
        openssl x509 -noout -serial 2>/dev/null | sed 's/^serial=//'
}

log_has() { grep -E -q -- "$2" "$1"; }
