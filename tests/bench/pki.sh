# shellcheck shell=bash
# A throwaway certificate authority and a server certificate for 127.0.0.1 /
# localhost, for the TLS rows of run.sh (the static backend's TLS port, which
# every front verifies) and of tls_bench.sh (the certificate every front
# terminates with). Valid two days; nothing here is a secret.

# make_bench_pki DIR: writes DIR/ca.crt, DIR/leaf.crt, DIR/leaf.key and
# DIR/leaf.pem (certificate and key in one file, as HAProxy's `crt` takes it).
# Returns non-zero (openssl's log in DIR/pki.log) if openssl fails.
make_bench_pki() {
    local dir=$1
    mkdir -p "$dir"
    {
        openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout "$dir/ca.key" -out "$dir/ca.crt" -days 2 -sha256 -subj "/CN=regmeter bench CA" \
            -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' &&
            printf '%s\n' 'basicConstraints = critical,CA:FALSE' 'keyUsage = critical,digitalSignature' \
                'extendedKeyUsage = serverAuth' 'subjectAltName = DNS:localhost,IP:127.0.0.1' >"$dir/leaf.ext" &&
            openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
                -keyout "$dir/leaf.key" -out "$dir/leaf.csr" -subj "/CN=localhost" &&
            openssl x509 -req -in "$dir/leaf.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -set_serial 0x4242 \
                -days 2 -sha256 -extfile "$dir/leaf.ext" -out "$dir/leaf.crt" &&
            cat "$dir/leaf.crt" "$dir/leaf.key" >"$dir/leaf.pem"
    } >"$dir/pki.log" 2>&1
}
