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
    libhttp-parser-dev libbenchmark-dev zlib1g-dev libyaml-cpp-dev
    # end-to-end tests and tools
    docker-registry skopeo prometheus curl nginx wrk openssl python3
    procps iproute2 coreutils python3-yaml
    # the /dashboard browser test (node >= 20 and npm come with the machine)
    chromium fonts-dejavu-core
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
meson test -C "$BUILD_DIR" --print-errorlogs "$@" || rc=$?

# One closing line any CI reader understands, plus the figures the
# end-to-end tests print (throughput, peak RSS).
python3 - "$ROOT/$BUILD_DIR/meson-logs/testlog.json" <<'PY' || rc=1
import json, re, sys
passed = failed = skipped = 0
figures = []
try:
    lines = open(sys.argv[1]).read().splitlines()
except OSError:
    lines = []
for line in lines:
    t = json.loads(line)
    r = t.get("result", "")
    if r in ("OK", "EXPECTEDFAIL"):
        passed += 1
    elif r == "SKIP":
        skipped += 1
    else:
        failed += 1
        print("failed: %s (%s)" % (t.get("name"), r))
    for f in re.findall(r"^[a-z0-9_]+=[0-9.]+$", t.get("stdout") or "", re.M):
        figures.append("%s: %s" % (t.get("name"), f))
if figures:
    print("\nfigures:")
    print("\n".join("  " + f for f in figures))
print()
print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
sys.exit(1 if failed or passed == 0 else 0)
PY
exit "$rc"
