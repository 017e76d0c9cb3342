#!/usr/bin/env bash
# regmeter quick start: install what is missing (Debian/Ubuntu, apt-get),
# build a release binary, start a demo registry unless UPSTREAM is given, and
# run regmeter in front of it. Ctrl-C stops both.
#
#   examples/quickstart.sh                                  # demo registry on 127.0.0.1:5000
#   UPSTREAM=http://registry.internal:5000 examples/quickstart.sh
#
# Environment: UPSTREAM (default: a demo registry), LISTEN (127.0.0.1:5080),
# METRICS_LISTEN (127.0.0.1:9180), QUICKSTART_DIR (logs and demo registry
# state, default ~/.local/state/regmeter-quickstart), REGMETER_ARGS (extra
# flags), BUILD_DIR (build), SKIP_APT=1 (install nothing; tests use it).
#
# Quiet: one line per step; apt and build output go to QUICKSTART_DIR/
# quickstart.log and are shown only when a step fails; the access log goes to
# QUICKSTART_DIR/access.log. Ports: a default port that is taken (5000, 5080,
# 9180) is replaced by the next free one, and the banner says which; a port
# given in LISTEN or METRICS_LISTEN that is taken stops the script before it
# builds anything. Whatever already listens on 5000 is never used as the demo
# registry. The banner is printed only once regmeter answers.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
STATE=${QUICKSTART_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/regmeter-quickstart}
BUILD_DIR=${BUILD_DIR:-build}
[[ $BUILD_DIR == /* ]] || BUILD_DIR=$ROOT/$BUILD_DIR
LOG=$STATE/quickstart.log
ACCESS_LOG=$STATE/access.log

say() { printf '==> %s\n' "$*"; }
die() { printf 'quickstart: %s\n' "$*" >&2; exit 1; }

mkdir -p "$STATE"
: >"$LOG"

# run_step DESCRIPTION CMD...: one progress line; the output into $LOG, and
# this step's part of it on the terminal if it fails.
run_step() {
    local what=$1 from
    shift
    say "$what"
    from=$(($(wc -l <"$LOG") + 1))
    if ! "$@" >>"$LOG" 2>&1; then
        tail -n "+$from" "$LOG" | tail -n 60 >&2
        die "$what failed (the whole output: $LOG)"
    fi
}

# ---- 0. ports, before anything is installed or built
# port_busy HOST PORT: something accepts connections there (bash's /dev/tcp:
# no tool needed yet).
port_busy() {
    local host=${1#[}
    host=${host%]}
    [[ $host == 0.0.0.0 || -z $host ]] && host=127.0.0.1
    [[ $host == :: ]] && host=::1
    timeout 1 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$2" 2>/dev/null
}
TAKEN=()   # ports chosen so far, so two roles never get the same one
# choose_port NAME HOST:PORT GIVEN: prints HOST:PORT to use. A taken default
# moves to the next free port (said on stderr); a taken port the user gave
# is the end, before building.
choose_port() {
    local name=$1 host=${2%:*} port=${2##*:} given=$3 p
    if ! port_busy "$host" "$port" && [[ " ${TAKEN[*]} " != *" $port "* ]]; then
        printf '%s:%s\n' "$host" "$port"
        return
    fi
    [[ $given == 1 ]] && die "port $port ($name=$2) is taken by another process: free it or set $name to another address"
    for ((p = port + 1; p < port + 200; p++)); do
        if [[ " ${TAKEN[*]} " != *" $p "* ]] && ! port_busy "$host" "$p"; then
            printf '==> port %s is taken: %s uses %s:%s instead\n' "$port" "$name" "$host" "$p" >&2
            printf '%s:%s\n' "$host" "$p"
            return
        fi
    done
    die "port $port ($name) and the 199 after it are taken"
}
LISTEN_GIVEN=0; [[ -n "${LISTEN:-}" ]] && LISTEN_GIVEN=1
METRICS_GIVEN=0; [[ -n "${METRICS_LISTEN:-}" ]] && METRICS_GIVEN=1
LISTEN=$(choose_port LISTEN "${LISTEN:-127.0.0.1:5080}" "$LISTEN_GIVEN")
TAKEN+=("${LISTEN##*:}")
METRICS_LISTEN=$(choose_port METRICS_LISTEN "${METRICS_LISTEN:-127.0.0.1:9180}" "$METRICS_GIVEN")
TAKEN+=("${METRICS_LISTEN##*:}")
if [[ -z "${UPSTREAM:-}" ]]; then
    # Not "whatever answers on 5000": an unknown service there would become
    # the upstream without anyone noticing. The demo registry gets a free port.
    DEMO_ADDR=$(choose_port "the demo registry" 127.0.0.1:5000 0)
    TAKEN+=("${DEMO_ADDR##*:}")
    DEMO_DEBUG_ADDR=$(choose_port "the demo registry's debug server" 127.0.0.1:5001 0)
    TAKEN+=("${DEMO_DEBUG_ADDR##*:}")
fi

# ---- 1. packages: only what is missing. The build list is tests/run.sh's
# (and docs/getting-started.md's): everything meson.build asks for.
need=(build-essential g++ meson ninja-build pkg-config
      libevent-dev libssl-dev prometheus-cpp-dev libfmt-dev libgtest-dev googletest
      libhttp-parser-dev libbenchmark-dev zlib1g-dev libyaml-cpp-dev rapidjson-dev
      curl python3)
[[ -n "${UPSTREAM:-}" ]] || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
if [[ "${SKIP_APT:-0}" == 1 ]]; then
    say "SKIP_APT=1: not installing packages"
else
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
        run_step "installing ${missing[*]}" "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
            sh -c 'apt-get update && apt-get install -y --no-install-recommends "$@"' apt "${missing[@]}"
    else
        say "packages: all installed"
    fi
fi

# ---- 2. build
if [[ ! -f $BUILD_DIR/meson-private/coredata.dat ]]; then
    run_step "configuring $BUILD_DIR (release)" meson setup "$BUILD_DIR" --buildtype=release
fi
run_step "building regmeter (output in $LOG)" meson compile -C "$BUILD_DIR" regmeter  # just the binary
BIN=$BUILD_DIR/src/regmeter
[[ -x "$BIN" ]] || die "no binary at $BIN after the build"

# ---- 3. the upstream: given, or a demo registry
REGISTRY_PID=""
RM_PID=""
stop() { # PID NAME
    [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null || return 0
    say "stopping $2 (pid $1)"
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
cleanup() {
    trap - EXIT INT TERM
    stop "$RM_PID" regmeter
    stop "$REGISTRY_PID" "the demo registry"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -z "${UPSTREAM:-}" ]]; then
    UPSTREAM=http://$DEMO_ADDR
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
    say "starting the demo registry (docker-registry) on $DEMO_ADDR"
    docker-registry serve "$STATE/config.yml" >"$STATE/registry.log" 2>&1 &
    REGISTRY_PID=$!
    for _ in $(seq 100); do
        curl -s -o /dev/null --max-time 1 "$UPSTREAM/v2/" && break
        kill -0 "$REGISTRY_PID" 2>/dev/null || { cat "$STATE/registry.log" >&2; die "the demo registry did not start on $DEMO_ADDR"; }
        sleep 0.1
    done
    curl -s -o /dev/null --max-time 1 "$UPSTREAM/v2/" || die "the demo registry does not answer on $DEMO_ADDR"
fi

# ---- 4. regmeter; the banner once it answers
say "starting regmeter on $LISTEN (access log: $ACCESS_LOG)"
# shellcheck disable=SC2086
"$BIN" --listen "$LISTEN" --upstream "$UPSTREAM" --metrics-listen "$METRICS_LISTEN" \
    --access-log "$ACCESS_LOG" ${REGMETER_ARGS:-} &
RM_PID=$!
mhost=${METRICS_LISTEN%:*}
[[ "$mhost" == 0.0.0.0 || "$mhost" == "" ]] && mhost=127.0.0.1
METRICS_URL=http://$mhost:${METRICS_LISTEN##*:}
for _ in $(seq 100); do
    curl -s -o /dev/null --max-time 1 "$METRICS_URL/healthz" && break
    kill -0 "$RM_PID" 2>/dev/null || { RM_PID=""; die "regmeter did not start (its message is above)"; }
    sleep 0.1
done
curl -s -o /dev/null --max-time 1 "$METRICS_URL/healthz" || die "regmeter does not answer on $METRICS_URL/healthz"

host=${LISTEN%:*}
[[ "$host" == 0.0.0.0 || "$host" == "" ]] && host=127.0.0.1
TARGET=$host:${LISTEN##*:}
upstream_note=""
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$TARGET/v2/" || true)
[[ "$code" == 200 || "$code" == 401 ]] || upstream_note="
Note: GET /v2/ through regmeter answered $code: is $UPSTREAM up?
"
cat <<TXT

regmeter listens on $LISTEN and forwards to $UPSTREAM.
$upstream_note
Try it (in another terminal):

  # a random demo image (OCI layout), pushed and pulled through regmeter
  python3 $ROOT/tests/tools/mkimage.py /tmp/demo-image 1.0 1M 8M
  skopeo copy --dest-tls-verify=false oci:/tmp/demo-image:1.0 docker://$TARGET/demo/app:1.0
  skopeo inspect --tls-verify=false docker://$TARGET/demo/app:1.0
  skopeo copy --src-tls-verify=false docker://$TARGET/demo/app:1.0 dir:/tmp/demo-pulled

  # docker (127.0.0.0/8 needs no insecure-registries entry)
  docker tag alpine:latest $TARGET/demo/alpine:latest
  docker push $TARGET/demo/alpine:latest

Dashboard:  $METRICS_URL/dashboard
Metrics:    curl -s $METRICS_URL/metrics | grep registry_http_requests_total
Health:     curl -s $METRICS_URL/healthz
Access log: tail -f $ACCESS_LOG
${REGISTRY_PID:+Registry:   docker-registry on $DEMO_ADDR, data in $STATE/data, its own metrics on http://$DEMO_DEBUG_ADDR/metrics
}
Ctrl-C stops regmeter${REGISTRY_PID:+ and the demo registry}.

TXT
rc=0
wait "$RM_PID" || rc=$?
RM_PID=""
exit "$rc"
