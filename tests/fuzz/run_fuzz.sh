#!/usr/bin/env bash
# Builds and runs regmeter's libFuzzer targets (clang, ASan + UBSan).
#
#   tests/fuzz/run_fuzz.sh [SECONDS] [TARGET...]
#   tests/fuzz/run_fuzz.sh --replay [TARGET...]
#
# SECONDS per target (default 60); TARGET is one or more of fuzz_request_head,
# fuzz_route, fuzz_upload_session, fuzz_client_ids (default: all). Each target is built with
#   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Isrc
# into a temp dir, then run with -max_total_time=SECONDS -rss_limit_mb=2048 on
# a COPY of tests/fuzz/corpus/<target>/ (the repository corpus never grows from
# a run). Exits non-zero when any target crashes, leaks, trips a sanitizer or
# breaks an invariant; the reproducer is copied to $FUZZ_ARTIFACTS (default
# fuzz-artifacts/ in the current directory) and the last lines of the log are
# printed. Reproduce with:  <built target> <crash file>
#
# --replay: no fuzzing; each target runs once on every seed of its corpus and
# on every reproducer in tests/fuzz/findings/ (all targets get them all: no
# input may crash any target). Fails if any input crashes, trips a sanitizer
# or breaks an invariant, or if fewer inputs ran than were given. CI runs it
# on every test run (tests/run.sh), so a finding that comes back, or a seed
# that breaks, fails the build without waiting for a fuzzing run.
#
# Environment: FUZZ_SKIP_KNOWN=1 (build with -DFUZZ_SKIP_KNOWN: inputs that hit a
# finding already reported are skipped, so that a long run can look for new
# ones; see docs/security.md), FUZZ_JOBS (parallel workers per target, default 1),
# FUZZ_KEEP=1 (keep the temp dir: binaries, grown corpus, logs),
# CXX (default clang++), FUZZ_DICT (a -dict= file instead of
# tests/fuzz/<target>.dict, used when it exists).
set -euo pipefail

REPLAY=0
if [[ "${1:-}" == --replay ]]; then
    REPLAY=1
    shift
    SECONDS_EACH=0
else
    SECONDS_EACH=${1:-60}
    shift || true
fi
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CXX=${CXX:-clang++}
ALL_TARGETS=(fuzz_request_head fuzz_route fuzz_upload_session fuzz_client_ids)
TARGETS=("${@:-${ALL_TARGETS[@]}}")
ARTIFACTS=${FUZZ_ARTIFACTS:-$PWD/fuzz-artifacts}
JOBS=${FUZZ_JOBS:-1}

[[ "$SECONDS_EACH" =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2; }
command -v "$CXX" >/dev/null || { echo "$CXX not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/regmeter-fuzz.XXXXXX")
cleanup() {
    if [[ "${FUZZ_KEEP:-0}" == 1 ]]; then
        echo "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

SOURCES=("$ROOT"/src/core/{head_scanner,http_head,headers,route,upload_session,exemplar,exposition_format}.cpp)
CXXFLAGS=(-std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
          -fno-omit-frame-pointer -I"$ROOT/src" -I"$HERE")
LIBS=(-lhttp_parser -lfmt)
[[ "${FUZZ_SKIP_KNOWN:-0}" == 1 ]] && CXXFLAGS+=(-DFUZZ_SKIP_KNOWN)

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()
for target in "${TARGETS[@]}"; do
    src=$HERE/$target.cpp
    [[ -f "$src" ]] || { echo "no such target: $target" >&2; exit 2; }
    echo "==> building $target"
    "$CXX" "${CXXFLAGS[@]}" "$src" "${SOURCES[@]}" "${LIBS[@]}" -o "$WORK/$target"

    if ((REPLAY)); then
        inputs=()
        [[ -d "$HERE/corpus/$target" ]] && mapfile -t inputs < <(find "$HERE/corpus/$target" -type f | sort)
        seeds=${#inputs[@]}
        ((seeds > 0)) || { echo "!!! $target: no seed corpus in tests/fuzz/corpus/$target" >&2; failed+=("$target"); continue; }
        mapfile -t -O "$seeds" inputs < <(find "$HERE/findings" -type f ! -name '*.md' | sort)
        log=$WORK/$target.replay.log
        echo "==> replaying $target on $seeds seed(s) and $((${#inputs[@]} - seeds)) finding(s)"
        rc=0
        "$WORK/$target" -rss_limit_mb=2048 -timeout=10 "${inputs[@]}" >"$log" 2>&1 || rc=$?
        ran=$(grep -c '^Executed ' "$log" || true)
        if ((rc != 0 || ran != ${#inputs[@]})); then
            echo "!!! $target replay FAILED (exit $rc, $ran of ${#inputs[@]} input(s) ran)" >&2
            tail -n 60 "$log" >&2
            failed+=("$target")
        else
            echo "    $ran input(s), no crash"
        fi
        continue
    fi

    corpus=$WORK/corpus-$target
    mkdir -p "$corpus" "$WORK/artifacts-$target"
    if [[ -d "$HERE/corpus/$target" ]]; then
        cp -r "$HERE/corpus/$target/." "$corpus/"
    fi
    seeds=$(find "$corpus" -type f | wc -l)
    echo "==> running $target for ${SECONDS_EACH}s on a copy of $seeds seed(s)"
    args=(-max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=10 -max_len=65536
          -print_final_stats=1 -artifact_prefix="$WORK/artifacts-$target/")
    if [[ -n "${FUZZ_DICT:-}" ]]; then
        args+=(-dict="$FUZZ_DICT")
    elif [[ -f "$HERE/$target.dict" ]]; then
        args+=(-dict="$HERE/$target.dict")
    fi
    log=$WORK/$target.log
    rc=0
    if ((JOBS > 1)); then
        # -fork mode: JOBS workers share the corpus; stats per worker in the log.
        "$WORK/$target" "${args[@]}" -fork="$JOBS" "$corpus" >"$log" 2>&1 || rc=$?
    else
        "$WORK/$target" "${args[@]}" "$corpus" >"$log" 2>&1 || rc=$?
    fi
    # Summary: the last status line and the final stats.
    grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "$log" | tail -n 1 || true
    grep -E '^stat::' "$log" || true
    echo "    corpus after the run: $(find "$corpus" -type f | wc -l) input(s)"
    crashes=$(find "$WORK/artifacts-$target" -type f | wc -l)
    if ((rc != 0 || crashes > 0)); then
        echo "!!! $target FAILED (exit $rc, $crashes artifact(s))" >&2
        tail -n 60 "$log" >&2
        mkdir -p "$ARTIFACTS"
        find "$WORK/artifacts-$target" -type f -exec cp {} "$ARTIFACTS/" \;
        echo "    reproducers copied to $ARTIFACTS" >&2
        failed+=("$target")
    fi
done

if ((${#failed[@]})); then
    echo "FAILED: ${failed[*]}" >&2
    exit 1
fi
if ((REPLAY)); then
    echo "every seed and finding replayed through ${TARGETS[*]} without a crash"
else
    echo "all fuzz targets ran ${SECONDS_EACH}s each without a finding"
fi
