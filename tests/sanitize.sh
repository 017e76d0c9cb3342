#!/usr/bin/env bash
# Builds regmeter with AddressSanitizer + UndefinedBehaviorSanitizer (and
# LeakSanitizer, part of ASan) and runs every meson test suite against that
# build: the unit tests and the end-to-end tests, whose proxy is then the
# sanitized binary.
#
#   tests/sanitize.sh [meson test args...]     e.g. tests/sanitize.sh --suite unit
#
# Fails when any test fails OR any sanitizer wrote a report, even one from a
# background process whose exit status no test looked at (a leak found when a
# proxy exits on SIGTERM, a UBSan finding in a request that still got its
# answer): every report goes to a file under $SANITIZE_REPORTS (log_path), and
# the files are printed at the end.
#
# Environment: BUILD_DIR (default build-asan), SANITIZE_REPORTS (default
# $BUILD_DIR/sanitizer-reports, emptied first), SANITIZE_TIMEOUT_MULTIPLIER
# (meson test -t, default 3: sanitized code is 2-4x slower).
#
# Under ASan the e2e tests that assert the proxy's peak RSS (big_blob's and
# tls's 64 MiB VmHWM bound) would fail on ASan's shadow memory and
# quarantine, not a leak: this script raises their bound (E2E_RSS_LIMIT_KIB,
# below). Their 1 GiB transfers run several times slower. For a quicker run:
#   tests/sanitize.sh --no-suite e2e        (then run e2e tests by name)
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-asan}
REPORTS=${SANITIZE_REPORTS:-$PWD/$BUILD_DIR/sanitizer-reports}

step() { printf '\n==> %s\n' "$*"; }

step "configuring $BUILD_DIR (address,undefined; debugoptimized)"
opts=(-Db_sanitize=address,undefined -Db_lundef=false --buildtype=debugoptimized)
if [[ -f "$BUILD_DIR/meson-private/coredata.dat" ]]; then
    meson setup --reconfigure "$BUILD_DIR" "${opts[@]}" || meson setup --wipe "$BUILD_DIR" "${opts[@]}"
else
    rm -rf "$BUILD_DIR"
    meson setup "$BUILD_DIR" "${opts[@]}"
fi

step "building"
meson compile -C "$BUILD_DIR"

rm -rf "$REPORTS"
mkdir -p "$REPORTS"
# log_path: one file per reporting process (<prefix>.<pid>), so a report from a
# proxy running in the background of an e2e script is not lost.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:log_path=$REPORTS/asan:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1${ASAN_OPTIONS_EXTRA:+:$ASAN_OPTIONS_EXTRA}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$REPORTS/ubsan"
export LSAN_OPTIONS="log_path=$REPORTS/lsan"
# ASan's shadow memory counts as resident: the e2e peak-RSS bounds (64 MiB in
# release) are about our buffers, so give the sanitized binary its shadow.
export E2E_RSS_LIMIT_KIB=${E2E_RSS_LIMIT_KIB:-$((1024 * 1024))}

step "running the test suites under the sanitizers (reports: $REPORTS)"
rc=0
meson test -C "$BUILD_DIR" --print-errorlogs -t "${SANITIZE_TIMEOUT_MULTIPLIER:-3}" "$@" || rc=$?

step "sanitizer reports"
mapfile -t reports < <(find "$REPORTS" -type f -size +0 | sort)
if ((${#reports[@]})); then
    for f in "${reports[@]}"; do
        printf '\n----- %s -----\n' "$f"
        cat "$f"
    done
    echo
    echo "sanitizers reported ${#reports[@]} finding(s)"
    rc=1
else
    echo "none"
fi
if ((rc != 0)); then
    echo "sanitize: FAILED (meson test or a sanitizer report; see above)"
else
    echo "sanitize: all suites passed with no sanitizer report"
fi
exit "$rc"
