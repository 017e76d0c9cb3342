#!/usr/bin/env bash
# regmeter's test entry point (README "Running the tests"; CI runs it through
# .ci/run). Installs the build and test dependencies (as root; skip with
# SKIP_APT=1), builds a release tree in build-tests/, and runs every meson test
# suite: the GoogleTest unit tests and the end-to-end tests against a real
# docker-registry with real clients. Extra arguments go to `meson test`
# (e.g. `tests/run.sh --suite e2e`). Exits non-zero on any failure.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-build-tests}

PACKAGES=(
    # build
    build-essential g++ meson ninja-build pkg-config
    libevent-dev libssl-dev prometheus-cpp-dev libfmt-dev libgtest-dev googletest
    libhttp-parser-dev libbenchmark-dev zlib1g-dev libyaml-cpp-dev rapidjson-dev
    # end-to-end tests and tools
    docker-registry skopeo prometheus curl nginx haproxy wrk openssl python3
    procps iproute2 coreutils python3-yaml util-linux
    # examples.sh lints and validates the operator examples with these
    yamllint docker-compose systemd
    # tests/install.sh renders the generated man page
    groff-base
    # real container clients (tests/e2e/real_clients.sh): a private dockerd and
    # containerd, podman and buildah
    docker.io containerd podman buildah
    # independent decoders of the protobuf and OpenMetrics encoder tests
    protobuf-compiler python3-prometheus-client
    # the /dashboard browser test (node >= 20 and npm come with the machine)
    chromium fonts-dejavu-core
    # libFuzzer targets (tests/fuzz) need clang and its runtime
    clang libclang-rt-14-dev
)

step() { printf '\n==> %s\n' "$*"; }

if [[ "${SKIP_APT:-0}" == 1 ]]; then
    step "SKIP_APT=1: not installing packages"
elif [[ $(id -u) -ne 0 ]]; then
    step "not root: skipping apt-get (install these yourself: ${PACKAGES[*]})"
else
    step "installing packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${PACKAGES[@]}"
fi

step "configuring $BUILD_DIR (release)"
if [[ -f "$BUILD_DIR/meson-private/coredata.dat" ]]; then
    meson setup --reconfigure "$BUILD_DIR" --buildtype=release \
        || meson setup --wipe "$BUILD_DIR" --buildtype=release
else
    rm -rf "$BUILD_DIR"
    meson setup "$BUILD_DIR" --buildtype=release
fi

step "building"
meson compile -C "$BUILD_DIR"

step "running all test suites"
rc=0
FUZZ_STATUS=()  # extra checks beyond meson's suites: NAME=OK|FAIL
meson test -C "$BUILD_DIR" --print-errorlogs "$@" || rc=$?

# Every fuzz seed and every reported finding (tests/fuzz/findings/), once
# through each libFuzzer target: a finding that comes back or a seed that
# breaks fails here, without waiting for a fuzzing run. Quick (~25 s), so it
# runs even with RUN_FUZZ=0; RUN_FUZZ_REPLAY=0 leaves it out.
if [[ "${RUN_FUZZ_REPLAY:-1}" == 1 ]]; then
    step "fuzz replay: seeds and findings through every fuzz target"
    if bash tests/fuzz/run_fuzz.sh --replay; then
        FUZZ_STATUS+=("fuzz_replay=OK")
    else
        FUZZ_STATUS+=("fuzz_replay=FAIL"); rc=1
    fi
fi

# The side-by-side benchmark as a smoke (small sizes, one round): it must not
# rot, but its figures mean nothing here. Full runs: docs/benchmarks.md.
if [[ "${RUN_BENCH_SMOKE:-1}" == 1 ]]; then
    step "benchmark smoke (tests/bench/run.sh, BENCH_QUICK=1)"
    if BENCH_QUICK=1 BENCH_REGMETER="$ROOT/$BUILD_DIR/src/regmeter" BENCH_OUT="$ROOT/$BUILD_DIR/bench-quick.txt" \
        timeout 300 bash tests/bench/run.sh >"$ROOT/$BUILD_DIR/bench-quick.log" 2>&1; then
        FUZZ_STATUS+=("bench_smoke=OK")
    else
        tail -20 "$ROOT/$BUILD_DIR/bench-quick.log"
        FUZZ_STATUS+=("bench_smoke=FAIL"); rc=1
    fi
    step "latency experiment smoke (tests/bench/latency_variants.sh, one 1 s round)"
    if LAT_REPS=1 LAT_SECONDS=1 LAT_RATE=2000 LAT_VARIANTS="threads1=--threads 1" \
        BENCH_REGMETER="$ROOT/$BUILD_DIR/src/regmeter" \
        timeout 120 bash tests/bench/latency_variants.sh >"$ROOT/$BUILD_DIR/latency-quick.log" 2>&1; then
        FUZZ_STATUS+=("latency_smoke=OK")
    else
        tail -20 "$ROOT/$BUILD_DIR/latency-quick.log"
        FUZZ_STATUS+=("latency_smoke=FAIL"); rc=1
    fi
fi

# The same suites again on an ASan+UBSan build (any sanitizer report fails),
# then a short libFuzzer run of each target. RUN_SANITIZE=0 / RUN_FUZZ=0 skip
# them on a developer machine; CI always runs both.
if [[ "${RUN_SANITIZE:-1}" == 1 ]]; then
    step "sanitizers: every suite on an ASan+UBSan build"
    SKIP_APT=1 bash tests/sanitize.sh "$@" || rc=1
fi
if [[ "${RUN_FUZZ:-1}" == 1 ]]; then
    step "fuzzing: ${FUZZ_SECONDS:-30} s per target"
    for target in fuzz_request_head fuzz_route fuzz_upload_session fuzz_client_ids; do
        if FUZZ_ARTIFACTS="$ROOT/$BUILD_DIR/fuzz-artifacts" bash tests/fuzz/run_fuzz.sh "${FUZZ_SECONDS:-30}" "$target"; then
            FUZZ_STATUS+=("$target=OK")
        else
            FUZZ_STATUS+=("$target=FAIL"); rc=1
        fi
    done
fi

# One closing line any CI reader understands (release suites, sanitized
# suites, fuzz targets), plus the figures the end-to-end tests print.
python3 - "$ROOT/$BUILD_DIR/meson-logs/testlog.json" "$ROOT/build-asan/meson-logs/testlog.json" \
    "${RUN_SANITIZE:-1}" "${FUZZ_STATUS[@]}" <<'PY' || rc=1
import json, re, sys
release_log, asan_log, sanitize = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
passed = failed = skipped = 0
figures = []
def read(path, label, keep_figures):
    global passed, failed, skipped
    try:
        lines = open(path).read().splitlines()
    except OSError:
        print("missing test log: %s" % path)
        failed += 1
        return
    for line in lines:
        t = json.loads(line)
        r = t.get("result", "")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
            print("skipped (counted as a failure): %s%s" % (label, t.get("name")))
        else:
            failed += 1
            print("failed: %s%s (%s)" % (label, t.get("name"), r))
        if keep_figures:
            for f in re.findall(r"^[a-z0-9_]+=[0-9.]+$", t.get("stdout") or "", re.M):
                figures.append("%s: %s" % (t.get("name"), f))
read(release_log, "", True)
if sanitize:
    read(asan_log, "asan ", False)
for status in sys.argv[4:]:
    target, result = status.split("=")
    if result == "OK":
        passed += 1
    else:
        failed += 1
        print("failed: %s" % target)
if figures:
    print("\nfigures:")
    print("\n".join("  " + f for f in figures))
print()
# A skipped test is not a passing one.
print("%d passed, %d failed" % (passed, failed + skipped))
sys.exit(1 if failed or skipped or passed == 0 else 0)
PY
exit "$rc"
