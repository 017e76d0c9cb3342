#!/usr/bin/env bash
# regmeter quick start: install what is missing (Debian/Ubuntu, apt-get),
# build a release binary, start a demo registry unless UPSTREAM is given, and
# run regmeter in front of it in the foreground. Ctrl-C stops both.
#
#   examples/quickstart.sh                                  # demo registry on 127.0.0.1:5000
#   UPSTREAM=http://registry.internal:5000 examples/quickstart.sh
#
# Environment: UPSTREAM (default: demo registry), LISTEN (127.0.0.1:5080),
# METRICS_LISTEN (127.0.0.1:9180), QUICKSTART_DIR (demo registry state,
# default ~/.local/state/regmeter-quickstart), REGMETER_ARGS (extra flags).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
LISTEN=${LISTEN:-127.0.0.1:5080}
METRICS_LISTEN=${METRICS_LISTEN:-127.0.0.1:9180}
STATE=${QUICKSTART_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/regmeter-quickstart}
DEMO_ADDR=127.0.0.1:5000
DEMO_DEBUG_ADDR=127.0.0.1:5001

say() { printf '==> %s\n' "$*"; }
die() { printf 'quickstart: %s\n' "$*" >&2; exit 1; }

# ---- 1. packages: only what is missing
need=(build-essential g++ meson ninja-build pkg-config libevent-dev libssl-dev prometheus-cpp-dev
      libfmt-dev libgtest-dev libhttp-parser-dev libbenchmark-dev zlib1g-dev libyaml-cpp-dev rapidjson-dev
      curl python3)
[[ -n "${UPSTREAM:-}" ]] || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
missing=()
for p in "${need[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    command -v apt-get >/dev/null || die "missing packages (${missing[*]}) and no apt-get: install them yourself"
    SUDO=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || die "missing packages (${missing[*]}): run as root or install sudo"
        SUDO=(sudo)
    fi
    say "installing: ${missing[*]}"
    "${SUDO[@]}" apt-get update
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

# ---- 2. build
if [[ ! -f build/meson-private/coredata.dat ]]; then
    say "configuring build/ (release)"
    meson setup build --buildtype=release
fi
say "building"
meson compile -C build regmeter   # just the binary: the quick start needs no tests
BIN=$ROOT/build/src/regmeter
[[ -x "$BIN" ]] || die "no binary at $BIN after the build"

# ---- 3. the upstream: given, already running, or a demo registry
REGISTRY_PID=""
cleanup() {
    trap - EXIT INT TERM
    if [[ -n "$REGISTRY_PID" ]] && kill -0 "$REGISTRY_PID" 2>/dev/null; then
        say "stopping the demo registry (pid $REGISTRY_PID)"
        kill -TERM "$REGISTRY_PID" 2>/dev/null || true
        wait "$REGISTRY_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -z "${UPSTREAM:-}" ]]; then
    UPSTREAM=http://$DEMO_ADDR
    if curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$UPSTREAM/v2/" 2>/dev/null | grep -q '^200$'; then
        say "a registry already answers on $DEMO_ADDR: using it as the upstream"
    else
        mkdir -p "$STATE/data"
        cat >"$STATE/config.yml" <<YML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $STATE/data
  delete:
    enabled: true
http:
  addr: $DEMO_ADDR
  debug:
    addr: $DEMO_DEBUG_ADDR
    prometheus:
      enabled: true
      path: /metrics
YML
        docker-registry serve "$STATE/config.yml" >"$STATE/registry.log" 2>&1 &
        REGISTRY_PID=$!
        for _ in $(seq 100); do
            curl -s -o /dev/null --max-time 1 "$UPSTREAM/v2/" && break
            kill -0 "$REGISTRY_PID" 2>/dev/null || { cat "$STATE/registry.log" >&2; die "the demo registry did not start (is $DEMO_ADDR taken?)"; }
            sleep 0.1
        done
        curl -s -o /dev/null --max-time 1 "$UPSTREAM/v2/" || die "the demo registry does not answer on $DEMO_ADDR"
        say "demo registry (docker-registry) on $DEMO_ADDR, data in $STATE/data, its own metrics on http://$DEMO_DEBUG_ADDR/metrics"
    fi
fi

# ---- 4. what to try, then regmeter in the foreground
host=${LISTEN%:*}
[[ "$host" == 0.0.0.0 || "$host" == "" ]] && host=127.0.0.1
cat <<TXT

regmeter listens on $LISTEN and forwards to $UPSTREAM.

Try it (in another terminal):

  # a random demo image (OCI layout), pushed and pulled through regmeter
  python3 $ROOT/tests/tools/mkimage.py /tmp/demo-image 1.0 1M 8M
  skopeo copy --dest-tls-verify=false oci:/tmp/demo-image:1.0 docker://$host:${LISTEN##*:}/demo/app:1.0
  skopeo inspect --tls-verify=false docker://$host:${LISTEN##*:}/demo/app:1.0
  skopeo copy --src-tls-verify=false docker://$host:${LISTEN##*:}/demo/app:1.0 dir:/tmp/demo-pulled

  # docker (127.0.0.0/8 needs no insecure-registries entry)
  docker tag alpine:latest $host:${LISTEN##*:}/demo/alpine:latest
  docker push $host:${LISTEN##*:}/demo/alpine:latest

Metrics: curl -s http://$METRICS_LISTEN/metrics | grep registry_http_requests_total
Health:  curl -s http://$METRICS_LISTEN/healthz

Ctrl-C stops regmeter${REGISTRY_PID:+ and the demo registry}.

TXT
rc=0
# shellcheck disable=SC2086
"$BIN" --listen "$LISTEN" --upstream "$UPSTREAM" --metrics-listen "$METRICS_LISTEN" ${REGMETER_ARGS:-} || rc=$?
exit "$rc"
