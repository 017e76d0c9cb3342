# shellcheck shell=bash
# Real container clients for the end-to-end tests: a private dockerd and a
# private containerd, and one push/pull function per client (docker, podman,
# buildah, skopeo, ctr). Source it after lib.sh:
#
#   . "$(dirname "$0")/lib.sh"
#   . "$(dirname "$0")/clients_lib.sh"
#
# Nothing here touches the host's own daemons or stores: every daemon gets its
# root, state, exec root, sockets and config files under $E2E_TMP/clients
# (dockerd also a mount namespace with a private /run), and is stopped before
# lib.sh's cleanup removes the temp dir. podman and buildah get private
# storage, registries.conf, containers.conf, auth file, network config and
# TMPDIR. check_global_state proves it after a run. Every client command runs
# under `timeout` (CLIENT_TIMEOUT seconds). A client that cannot run fails the
# test.
#
# Known global write left alone: the containers/image tools (skopeo at least)
# record, as root, where they have seen each blob in
# /var/lib/containers/cache/blob-info-cache-v1.boltdb, and skopeo has no option
# to move it; every test uses fresh random layers, so no run depends on it.
#
# Environment:
#   DOCKER_CLI       the docker CLI (default /usr/bin/docker, Debian docker.io's;
#                    a /usr/local/bin/docker from elsewhere may come first in PATH)
#   CLIENT_TIMEOUT   seconds per client command (default 120)

CLIENTS_DIR=$E2E_TMP/clients
DOCKER_CLI=${DOCKER_CLI:-/usr/bin/docker}
CLIENT_TIMEOUT=${CLIENT_TIMEOUT:-120}
CLIENT_DAEMON_PIDS=()
mkdir -p "$CLIENTS_DIR"

# ---------------------------------------------------------------- running
# client_run LOG CMD...: CMD under timeout, its output in LOG; on failure the
# output goes to stderr and the status is returned.
client_run() {
    local out=$1 rc=0
    shift
    timeout "$CLIENT_TIMEOUT" "$@" >"$out" 2>&1 </dev/null || rc=$?
    if ((rc != 0)); then
        printf '%s: exit %d%s\n' "$*" "$rc" "$( ((rc == 124)) && printf ' (timed out after %ss)' "$CLIENT_TIMEOUT")" >&2
        tail -n 40 "$out" | sed 's/^/  | /' >&2
    fi
    return "$rc"
}

# require_cmd NAME...: every client this test needs is installed (else FAIL).
require_cmd() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null || fail "$c is not installed (tests/run.sh installs it)"
    done
}

# Daemons are stopped here, before lib.sh's cleanup, newest first and with
# TERM, so each shuts down cleanly (containerd unmounts what it mounted; a
# KILL would leave that behind); whatever mount is still under the temp dir is
# then detached.
clients_stop_daemons() {
    local pid i
    for ((i = ${#CLIENT_DAEMON_PIDS[@]} - 1; i >= 0; i--)); do
        pid=${CLIENT_DAEMON_PIDS[i]}
        is_running "$pid" || continue
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 1 150); do
            is_running "$pid" || break
            sleep 0.1
        done
        is_running "$pid" && kill_tree "$pid" KILL
    done
    CLIENT_DAEMON_PIDS=()
    [[ -n ${CONTAINERS_RUNROOT:-} ]] && rm -rf "$CONTAINERS_RUNROOT"
    awk -v d="$CLIENTS_DIR" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
}
clients_exit() {
    local rc=$?
    set +e   # as in e2e_cleanup: nothing here may end the trap before the cleanup ran
    clients_stop_daemons
    (exit "$rc")   # e2e_cleanup reads the exit status from $?
    e2e_cleanup
}
trap clients_exit EXIT

# ---------------------------------------------------------------- global state
# The host paths these clients write when left to their defaults. A test takes
# a snapshot before and checks after that none appeared: the private-state
# options above must keep working with newer client versions.
CLIENT_GLOBAL_PATHS=(/etc/docker/key.json /var/lib/docker /run/docker /run/docker.sock /opt/containerd
    /var/lib/containerd /run/containerd /run/libpod /run/containers /var/lib/containers/storage
    /etc/cni/net.d/cni.lock /var/cache/containers /var/lib/cni)
global_state_snapshot() { # FILE
    local p
    for p in "${CLIENT_GLOBAL_PATHS[@]}"; do
        [[ -e $p ]] && printf '%s\n' "$p"
    done >"$1"
    true
}
# check_global_state BEFORE: fails naming every path that appeared since.
check_global_state() {
    local now new
    now=$(mktemp "$E2E_TMP/global.XXXXXX")
    global_state_snapshot "$now"
    new=$(comm -13 <(sort "$1") <(sort "$now") | tr '\n' ' ')
    [[ -z $new ]] || fail "a client wrote host-global state: $new(its private-root options no longer cover it)"
}

# ---------------------------------------------------------------- containerd
# start_containerd: a containerd with its own root, state, opt dir and sockets,
# the CRI plugin off. Sets CONTAINERD_SOCK, CONTAINERD_PID, and CTR (the ctr
# command line for it) and CTR_HOSTS (an empty hosts dir for pull/push, so no
# /etc/containerd/certs.d entry of the host applies).
start_containerd() {
    require_cmd containerd ctr
    local dir=$CLIENTS_DIR/containerd
    mkdir -p "$dir/root" "$dir/state" "$dir/opt" "$dir/hosts.d"
    CONTAINERD_SOCK=$dir/containerd.sock
    CTR=(ctr -a "$CONTAINERD_SOCK")
    CTR_HOSTS=$dir/hosts.d
    cat >"$dir/config.toml" <<EOF
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"
EOF
    containerd --config "$dir/config.toml" --log-level warn >"$dir/log" 2>&1 &
    CONTAINERD_PID=$!
    register_pid "$CONTAINERD_PID"
    CLIENT_DAEMON_PIDS+=("$CONTAINERD_PID")
    register_log "$dir/log"
    local deadline=$((SECONDS + E2E_WAIT))
    until "${CTR[@]}" version >/dev/null 2>&1; do
        is_running "$CONTAINERD_PID" || fail "containerd exited during startup (log: $(tail -n 3 "$dir/log"))"
        ((SECONDS < deadline)) || fail "containerd did not answer on $CONTAINERD_SOCK within ${E2E_WAIT}s"
        sleep 0.1
    done
    log "containerd pid $CONTAINERD_PID on $CONTAINERD_SOCK ($("${CTR[@]}" version | awk '/Version:/ { print $2; exit }'))"
}

# ---------------------------------------------------------------- dockerd
# start_dockerd: a dockerd on the private containerd (started if needed), with
# its own data root, exec root, socket, pid file, daemon.json and trust key,
# and no networking set-up at all (no iptables, no bridge, no ip_forward).
# Sets DOCKERD_SOCK, DOCKERD_PID, and DOCKER (the DOCKER_CLI command line for
# it, with a private client config dir).
# dockerd treats every 127.0.0.0/8 registry as insecure (plain HTTP allowed).
start_dockerd() {
    require_cmd dockerd unshare
    [[ -x $DOCKER_CLI ]] || fail "DOCKER_CLI=$DOCKER_CLI is not an executable (Debian's docker.io installs /usr/bin/docker)"
    [[ -n ${CONTAINERD_SOCK:-} ]] || start_containerd
    local dir=$CLIENTS_DIR/docker
    mkdir -p "$dir/data" "$dir/exec" "$dir/cli"
    # The trust key (docker info's ID) goes to /etc/docker/key.json unless
    # daemon.json says otherwise; 20.10 has no flag for it.
    printf '{"deprecated-key-path": "%s"}\n' "$dir/key.json" >"$dir/daemon.json"
    DOCKERD_SOCK=$dir/docker.sock
    DOCKER=(env DOCKER_CONFIG="$dir/cli" "$DOCKER_CLI" -H "unix://$DOCKERD_SOCK")
    # dockerd 20.10 always creates /run/docker/plugins (its plugin socket
    # dir, no option moves it): it runs in a mount namespace of its own with a
    # private tmpfs on /run, which also takes its bind mount of the data root
    # with it when it exits.
    unshare --mount --propagation private -- sh -c 'mount -t tmpfs -o mode=0755 regmeter-e2e-run /run && exec "$@"' sh \
        dockerd --config-file "$dir/daemon.json" --data-root "$dir/data" --exec-root "$dir/exec" \
        --host "unix://$DOCKERD_SOCK" --pidfile "$dir/docker.pid" \
        --containerd "$CONTAINERD_SOCK" --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
        --bridge=none --log-level warn >"$dir/log" 2>&1 &
    DOCKERD_PID=$!
    register_pid "$DOCKERD_PID"
    CLIENT_DAEMON_PIDS+=("$DOCKERD_PID")
    register_log "$dir/log"
    local deadline=$((SECONDS + E2E_WAIT))
    until "${DOCKER[@]}" info >/dev/null 2>&1; do
        is_running "$DOCKERD_PID" || fail "dockerd exited during startup (log: $(tail -n 3 "$dir/log"))"
        ((SECONDS < deadline)) || fail "dockerd did not answer docker info on $DOCKERD_SOCK within ${E2E_WAIT}s"
        sleep 0.1
    done
    log "dockerd pid $DOCKERD_PID on $DOCKERD_SOCK (server $("${DOCKER[@]}" version --format '{{.Server.Version}}'))"
}

# ---------------------------------------------------------------- podman, buildah
# containers_setup: private storage (vfs: no mounts at all), registries.conf
# (no search registries, no short-name aliases), containers.conf (libpod tmp
# dir, no events), an empty auth file and a network config dir for podman and
# buildah, which read them from the environment; TMPDIR is where they stage
# image copies (default /var/tmp). Sets PODMAN and BUILDAH (command lines).
containers_setup() {
    require_cmd podman buildah
    local dir=$CLIENTS_DIR/containers
    local env=(env CONTAINERS_STORAGE_CONF="$dir/storage.conf" CONTAINERS_REGISTRIES_CONF="$dir/registries.conf"
        CONTAINERS_CONF="$dir/containers.conf" REGISTRY_AUTH_FILE="$dir/auth.json" TMPDIR="$dir/tmp")
    # podman refuses a runroot path longer than 50 characters: a short dir of
    # its own, removed on exit with the rest.
    [[ -n ${CONTAINERS_RUNROOT:-} ]] || CONTAINERS_RUNROOT=$(mktemp -d "${TMPDIR:-/tmp}/rm-run.XXXXXX")
    PODMAN=("${env[@]}" podman --root "$dir/root" --runroot "$CONTAINERS_RUNROOT" --storage-driver vfs --tmpdir "$dir/libpod"
        --events-backend none --network-config-dir "$dir/net" --cgroup-manager cgroupfs)
    BUILDAH=("${env[@]}" buildah --root "$dir/root" --runroot "$CONTAINERS_RUNROOT" --storage-driver vfs)
    [[ -d $dir ]] && return 0
    mkdir -p "$dir/root" "$dir/tmp" "$dir/libpod" "$dir/net"
    cat >"$dir/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$dir/root"
runroot = "$CONTAINERS_RUNROOT"
EOF
    cat >"$dir/registries.conf" <<EOF
unqualified-search-registries = []
short-name-mode = "disabled"
EOF
    cat >"$dir/containers.conf" <<EOF
[engine]
tmp_dir = "$dir/libpod"
events_logger = "none"
[network]
network_config_dir = "$dir/net"
EOF
    cat >"$dir/auth.json" <<EOF
{"auths": {}}
EOF
}
# ---------------------------------------------------------------- images
# make_client_image DIR TAG SIZE...: a random OCI layout (make_image), plus
# DIR.oci.tar (the layout as a tar, for ctr import) and DIR.docker.tar (a
# docker-archive, for docker/podman load), both named by the archive's REF.
make_client_image() { # DIR TAG REF SIZE...
    local dir=$1 tag=$2 ref=$3
    shift 3
    make_image "$dir" "$tag" "$@"
    tar -C "$dir" -cf "$dir.oci.tar" . || return 1
    client_run "$dir.archive.log" skopeo --insecure-policy copy "oci:$dir:$tag" "docker-archive:$dir.docker.tar:$ref"
}

# ---------------------------------------------------------------- push/pull
# Every client has three steps; each returns non-zero with the client's output
# on stderr when it fails:
#   client_load CLIENT IMAGE_DIR REF   put the image into the client's own store
#                                      under REF (skopeo pushes from the layout)
#   client_push CLIENT IMAGE_DIR REF   push REF; prints the manifest digest the
#                                      registry got
#   client_pull CLIENT IMAGE_DIR REF   remove REF from the local store, pull it
#                                      back; prints "CONFIG_DIGEST MANIFEST_DIGEST"
# and client_tag CLIENT IMAGE_DIR REF NEW_REF (a second name to push).
# REF is HOST:PORT/REPO:TAG; HOST:PORT is the registry (or the proxy) to use.
# All talk plain HTTP: dockerd and ctr because the host is on 127.0.0.0/8 (ctr
# also gets --plain-http), the containers/image clients by --tls-verify=false.
# shellcheck disable=SC2034  # used by the scripts that source this file
CLIENTS=(docker podman buildah skopeo ctr)

client_load() {
    local client=$1 dir=$2 ref=$3 out=$CLIENTS_DIR/$1.load.log
    case $client in
        docker) client_run "$out" "${DOCKER[@]}" load -i "$dir.docker.tar" ;;
        podman) client_run "$out" "${PODMAN[@]}" load -i "$dir.docker.tar" ;;
        buildah) client_run "$out" "${BUILDAH[@]}" pull "docker-archive:$dir.docker.tar" &&
            client_run "$out.tag" "${BUILDAH[@]}" tag "$(tail -n 1 "$out")" "$ref" ;;
        skopeo) true ;;
        ctr) client_run "$out" "${CTR[@]}" images import --base-name "${ref%:*}" "$dir.oci.tar" ;;
        *) echo "client_load: unknown client $client" >&2; return 2 ;;
    esac
}

client_push() {
    local client=$1 dir=$2 ref=$3 out=$CLIENTS_DIR/$1.push.log digestfile=$CLIENTS_DIR/$1.push.digest
    rm -f "$digestfile"
    case $client in
        docker)
            client_run "$out" "${DOCKER[@]}" push "$ref" || return 1
            sed -n 's/^.*: digest: \(sha256:[0-9a-f]\{64\}\) size: .*$/\1/p' "$out" >"$digestfile" ;;
        podman) client_run "$out" "${PODMAN[@]}" push --tls-verify=false --digestfile "$digestfile" "$ref" ;;
        buildah) client_run "$out" "${BUILDAH[@]}" push --tls-verify=false --digestfile "$digestfile" "$ref" "docker://$ref" ;;
        skopeo) client_run "$out" skopeo --insecure-policy copy --dest-tls-verify=false --digestfile "$digestfile" \
            "oci:$dir:${ref##*:}" "docker://$ref" ;;
        ctr)
            client_run "$out" "${CTR[@]}" images push --plain-http --hosts-dir "$CTR_HOSTS" "$ref" || return 1
            "${CTR[@]}" images ls "name==$ref" | awk 'NR == 2 { print $3 }' >"$digestfile" ;;
        *) echo "client_push: unknown client $client" >&2; return 2 ;;
    esac || return 1
    local digest
    digest=$(tr -d '[:space:]' <"$digestfile" 2>/dev/null)
    if ! [[ $digest =~ ^sha256:[0-9a-f]{64}$ ]]; then
        echo "$client push of $ref: no manifest digest found (got [$digest])" >&2
        tail -n 20 "$out" | sed 's/^/  | /' >&2
        return 1
    fi
    printf '%s\n' "$digest"
}

# client_tag CLIENT IMAGE_DIR REF NEW_REF: the local image REF also named
# NEW_REF (skopeo pushes from the layout: nothing to do).
client_tag() {
    local client=$1 dir=$2 ref=$3 new=$4 out=$CLIENTS_DIR/$1.tag.log
    case $client in
        docker) client_run "$out" "${DOCKER[@]}" tag "$ref" "$new" ;;
        podman) client_run "$out" "${PODMAN[@]}" tag "$ref" "$new" ;;
        buildah) client_run "$out" "${BUILDAH[@]}" tag "$ref" "$new" ;;
        skopeo) true ;;
        ctr) client_run "$out" "${CTR[@]}" images tag "$ref" "$new" ;;
        *) echo "client_tag: unknown client $client" >&2; return 2 ;;
    esac
}

# client_remove CLIENT IMAGE_DIR REF: the image is gone from the local store
# (its layers too), so the pull after it has to fetch every blob.
client_remove() {
    local client=$1 dir=$2 ref=$3 out=$CLIENTS_DIR/$1.rm.log
    case $client in
        docker) client_run "$out" "${DOCKER[@]}" rmi "$ref" || return 1
            ! "${DOCKER[@]}" image inspect "$ref" >/dev/null 2>&1 ;;
        podman) client_run "$out" "${PODMAN[@]}" rmi "$ref" || return 1
            ! "${PODMAN[@]}" image exists "$ref" ;;
        buildah) client_run "$out" "${BUILDAH[@]}" rmi "$ref" ;;
        skopeo) rm -rf "$dir.pulled" ;;
        ctr) client_run "$out" "${CTR[@]}" images rm --sync "$ref" || return 1
            # the synchronous GC has dropped the content: no blob of the manifest is left
            local config
            config=$(json_get "$dir.json" 'j["config"]')
            if "${CTR[@]}" content ls -q | grep -qx "$config"; then
                echo "ctr: content $config still in the store after images rm --sync" >&2
                return 1
            fi ;;
        *) echo "client_remove: unknown client $client" >&2; return 2 ;;
    esac
}

client_pull() {
    local client=$1 dir=$2 ref=$3 out=$CLIENTS_DIR/$1.pull.log
    client_remove "$client" "$dir" "$ref" || return 1
    case $client in
        docker)
            client_run "$out" "${DOCKER[@]}" pull "$ref" || return 1
            local id digests
            id=$("${DOCKER[@]}" image inspect --format '{{.Id}}' "$ref") || return 1
            digests=$("${DOCKER[@]}" image inspect --format '{{join .RepoDigests " "}}' "$ref") || return 1
            printf '%s %s\n' "$id" "$(tr ' ' '\n' <<<"$digests" | sed -n "s|^${ref%:*}@||p" | head -n 1)" ;;
        podman)
            client_run "$out" "${PODMAN[@]}" pull --tls-verify=false "$ref" || return 1
            "${PODMAN[@]}" image inspect --format 'sha256:{{.Id}} {{.Digest}}' "$ref" ;;
        buildah)
            client_run "$out" "${BUILDAH[@]}" pull --tls-verify=false "docker://$ref" || return 1
            "${BUILDAH[@]}" inspect --type image --format 'sha256:{{.FromImageID}} {{.FromImageDigest}}' "$ref" ;;
        skopeo)
            client_run "$out" skopeo --insecure-policy copy --src-tls-verify=false "docker://$ref" "oci:$dir.pulled:${ref##*:}" || return 1
            # every blob of the pulled layout hashes to its name
            local f
            for f in "$dir.pulled"/blobs/sha256/*; do
                [[ $(sha256_file "$f") == "$(basename "$f")" ]] || { echo "skopeo pull: blob $f is corrupt" >&2; return 1; }
            done
            local manifest
            manifest=$(json_get "$dir.pulled/index.json" 'j["manifests"][0]["digest"]')
            printf '%s %s\n' "$(json_get "$dir.pulled/blobs/sha256/${manifest#sha256:}" 'j["config"]["digest"]')" "$manifest" ;;
        ctr)
            client_run "$out" "${CTR[@]}" images pull --plain-http --hosts-dir "$CTR_HOSTS" "$ref" || return 1
            local manifest
            manifest=$("${CTR[@]}" images ls "name==$ref" | awk 'NR == 2 { print $3 }')
            "${CTR[@]}" content get "$manifest" >"$CLIENTS_DIR/ctr.manifest" || return 1
            [[ sha256:$(sha256_file "$CLIENTS_DIR/ctr.manifest") == "$manifest" ]] || { echo "ctr pull: manifest bytes do not hash to $manifest" >&2; return 1; }
            printf '%s %s\n' "$(json_get "$CLIENTS_DIR/ctr.manifest" 'j["config"]["digest"]')" "$manifest" ;;
        *) echo "client_pull: unknown client $client" >&2; return 2 ;;
    esac
}
