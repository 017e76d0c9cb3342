#!/usr/bin/env bash
# The command line: --version, --help, bad flags (one line on stderr, exit 2),
# config-file mistakes (one line naming the file and the line, exit 2), and
# the documented flags are accepted by a running instance.
#
# The flag list comes from the option table the parser itself uses
# (src/core/config.cpp), so --help, README's flag table and docs/operations.md's
# flag table are each checked against every flag, whole words only
# (--upstream is not --upstream-ca), in both directions.
. "$(dirname "$0")/lib.sh"
require_proxy

VERSION=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$SOURCE_ROOT/meson.build" | head -n1)

rc=0
out=$("$REGMETER" --version 2>&1) || rc=$?
assert_eq 0 "$rc" "--version exit status"
assert_contains "$VERSION" "$out" "--version output"

# ---------------------------------------------------------------- the flags, documented
# `{"name", "VALUE-NAME", ...}` rows of kOptions (the value name empty for a
# switch), plus what parse_command_line handles by name.
mapfile -t FLAGS < <(sed -n 's/^ *{"\([a-z][a-z0-9-]*\)", "[A-Z:]*",.*/--\1/p' "$SOURCE_ROOT/src/core/config.cpp")
FLAGS+=(--config --check-config --help --version)
((${#FLAGS[@]} >= 30)) || fail "only ${#FLAGS[@]} flags read from src/core/config.cpp's option table: ${FLAGS[*]}"
ALL_FLAGS=$(printf '%s\n' "${FLAGS[@]}" | sort -u)

# help_entries TEXT: the flags --help describes (those that start an entry line).
help_entries() { sed -n 's/^  \(--[a-z][a-z0-9-]*\).*/\1/p' <<<"$1" | sort -u; }
# table_entries FILE [FROM-HEADING]: the flags in the first cell of a Markdown
# table's rows (after FROM-HEADING up to the next heading, when given).
table_entries() {
    awk -v from="${2:-}" '
        /^#/ { if (from != "") inside = ($0 == from) }
        (from == "" || inside) && /^\| `--/ { print $2 }' FS='|' "$1" |
        grep -oE -- '--[a-z][a-z0-9-]*' | sort -u
}
# differ WHAT LIST: fails naming what LIST lacks and what it has too many.
differ() {
    local missing extra
    missing=$(comm -23 <(printf '%s\n' "$ALL_FLAGS") <(printf '%s\n' "$2") | tr '\n' ' ')
    extra=$(comm -13 <(printf '%s\n' "$ALL_FLAGS") <(printf '%s\n' "$2") | tr '\n' ' ')
    printf 'missing: [%s] extra: [%s]' "${missing% }" "${extra% }"
}
NONE="missing: [] extra: []"

rc=0
help=$("$REGMETER" --help 2>&1) || rc=$?
assert_eq 0 "$rc" "--help exit status"
assert_eq "$NONE" "$(differ --help "$(help_entries "$help")")" "flags described by --help"
assert_eq "$NONE" "$(differ README "$(table_entries "$SOURCE_ROOT/README.md")")" "flags in README.md's table"
assert_eq "$NONE" "$(differ operations "$(table_entries "$SOURCE_ROOT/docs/operations.md" "## Flags")")" \
    "flags in docs/operations.md's Flags table"
# The check itself can fail: a help without one entry (and one whose flag is
# a prefix of others) is caught.
assert_eq "missing: [--upstream-ca] extra: []" "$(differ help "$(help_entries "$(sed '/^  --upstream-ca /d' <<<"$help")")")" \
    "a --help without its --upstream-ca entry is caught"
assert_eq "missing: [--upstream] extra: []" "$(differ help "$(help_entries "$(sed '/^  --upstream /d' <<<"$help")")")" \
    "a --help without its --upstream entry is caught (though --upstream-ca and others remain)"
# And the parser knows each flag (the list above is not read wrongly).
for flag in "${FLAGS[@]}"; do
    [[ $flag == --help || $flag == --version ]] && continue
    err=$("$REGMETER" --check-config /dev/null "$flag" 2>&1 >/dev/null) || true
    [[ "$err" != *"unknown option"* ]] || fail "$flag from the option table is unknown to the parser: $err"
done

# ---------------------------------------------------------------- bad flags
bad() { # description expected-stderr-line args...
    local what=$1 want=$2 rc=0
    shift 2
    timeout 10 "$REGMETER" "$@" >"$E2E_TMP/bad.out" 2>"$E2E_TMP/bad.err" || rc=$?
    assert_eq 2 "$rc" "exit status for $what ($*)"
    assert_eq 1 "$(wc -l <"$E2E_TMP/bad.err")" "stderr lines for $what: [$(cat "$E2E_TMP/bad.err")]"
    assert_eq "$want" "$(cat "$E2E_TMP/bad.err")" "stderr for $what"
    assert_eq 0 "$(stat -c %s "$E2E_TMP/bad.out")" "stdout bytes for $what"
}
bad "an unknown flag" "regmeter: unknown option '--no-such-flag' (see --help)" --no-such-flag
bad "a flag without its value" "regmeter: --upstream: needs a value" --upstream
bad "an unknown flag among good ones" "regmeter: unknown option '--bogus' (see --help)" \
    --listen 127.0.0.1:1 --upstream http://127.0.0.1:1 --bogus 1
bad "a non-numeric value" "regmeter: --threads: 'abc' is not a whole number from 1 to 256" --threads abc
bad "a listen address without a port" "regmeter: --listen: '127.0.0.1' is not HOST:PORT" --listen 127.0.0.1
# The client and the metrics port on one address: the overlap is named, not
# "address already in use" from the second bind (which sounds like another
# process), whether the hosts are equal or one is a wildcard.
p=$(free_port)
bad "--metrics-listen equal to --listen" \
    "regmeter: --metrics-listen 127.0.0.1:$p: the same address as --listen 127.0.0.1:$p; give /metrics a port of its own" \
    --listen "127.0.0.1:$p" --metrics-listen "127.0.0.1:$p" --upstream http://127.0.0.1:1
bad "--metrics-listen on the port of a wildcard --listen" \
    "regmeter: --metrics-listen 127.0.0.1:$p: the same address as --listen 0.0.0.0:$p; give /metrics a port of its own" \
    --listen "0.0.0.0:$p" --metrics-listen "127.0.0.1:$p" --upstream http://127.0.0.1:1

# ---------------------------------------------------------------- config-file mistakes
# Each: exit 2, one line `regmeter: config FILE[:LINE]: reason`, for --config
# and --check-config alike.
conf() { printf -- "$2" >"$E2E_TMP/$1.yml"; printf '%s' "$E2E_TMP/$1.yml"; }
bad_file() { # description expected-after-"config FILE" file
    local flag
    for flag in --config --check-config; do
        bad "$1 ($flag)" "regmeter: config $3$2" "$flag" "$3"
    done
}
# It used to abort with an uncaught std::ios_failure (exit 134).
bad_file "a directory" ": cannot read: Is a directory" "$E2E_TMP"
bad_file "a missing file" ": cannot read: No such file or directory" "$E2E_TMP/none.yml"
bad_file "an unknown key" ":2: unknown key 'bogus' (see --help)" "$(conf unknown 'threads: 2\nbogus: 1\n')"
bad_file "a bad value" ":1: key 'threads': 'abc' is not a whole number from 1 to 256" "$(conf value 'threads: abc\n')"
bad_file "a YAML syntax error" ":3: not valid YAML: illegal map value" \
    "$(conf syntax 'threads: 2\nlisten: 127.0.0.1:7000\n  bad: x\n')"
bad_file "a list, not a mapping" ":1: must be a mapping of option names to values" "$(conf list '- a\n- b\n')"
bad_file "a nested value" ":2: key 'listen' needs a single value (not a list or mapping)" \
    "$(conf nested 'threads: 2\nlisten:\n  host: a\n')"
bad_file "a key without a value" ":1: key 'listen' has no value" "$(conf null 'listen:\n')"
bad_file "a key given twice" ":2: key 'threads' given twice (first on line 1)" "$(conf twice 'threads: 2\nthreads: 3\n')"
# Unreadable: root reads anything, so as nobody (setpriv, util-linux).
unreadable=$(conf unreadable 'threads: 2\n')
chmod 000 "$unreadable"
as_other=()
if (($(id -u) == 0)); then
    command -v setpriv >/dev/null || fail "setpriv (util-linux) is missing"
    as_other=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi
rc=0
"${as_other[@]}" "$REGMETER" --check-config "$unreadable" >"$E2E_TMP/bad.out" 2>"$E2E_TMP/bad.err" || rc=$?
assert_eq 2 "$rc" "exit status for an unreadable config file"
assert_eq "regmeter: config $unreadable: cannot read: Permission denied" "$(cat "$E2E_TMP/bad.err")" \
    "stderr for an unreadable config file"
# An empty file (or one with only comments) configures nothing: valid.
for text in '' '# nothing yet\n'; do
    empty=$(conf empty "$text")
    rc=0
    out=$("$REGMETER" --check-config "$empty" 2>&1) || rc=$?
    assert_eq 0 "$rc" "--check-config of a file with [$text]"
    assert_eq "$empty: OK (listen 0.0.0.0:5080, upstream http://127.0.0.1:5000, metrics 127.0.0.1:9180)" "$out" \
        "--check-config summary of a file with [$text]"
done

# ---------------------------------------------------------------- a running instance
# Every tuning flag accepted by a running instance.
start_registry
start_regmeter --threads 2 --header-timeout 5 --idle-timeout 10 --upstream-timeout 10 \
    --shutdown-grace 5 --max-header-bytes 32768
assert_eq 200 "$(http_code "$PROXY_URL/v2/")" "GET /v2/ with all flags set"
assert_eq 200 "$(http_code "$HEALTH_URL")" "/healthz"
scrape >"$E2E_TMP/m.txt"
for fam in registry_http_requests_total registry_http_request_duration_seconds registry_http_request_size_bytes \
    registry_http_response_size_bytes registry_http_in_flight_requests; do
    grep -q "^# TYPE $fam " "$E2E_TMP/m.txt" || fail "/metrics lacks # TYPE $fam"
done
assert_contains text/plain "$(curl -sS -o /dev/null -w '%{content_type}' "$METRICS_URL")" "/metrics Content-Type"
assert_eq 1 "$(metric registry_http_requests_total code=200 handler=base method=get)" "the GET /v2/ is counted"
# gzip when asked (the README says so): the decoded body is the same exposition.
enc=$(curl -sS --compressed -D - -o "$E2E_TMP/mz.txt" "$METRICS_URL" | tr -d '\r' | awk -F': *' 'tolower($1) == "content-encoding" { print $2 }')
assert_eq gzip "$enc" "/metrics Content-Encoding with Accept-Encoding: gzip"
grep -q '^# TYPE registry_http_requests_total counter' "$E2E_TMP/mz.txt" || fail "gzipped /metrics does not decode to the exposition"

# ---------------------------------------------------------------- port 0
# `:0` lets the kernel pick; the start-up line names the ports it picked, so
# an operator (or a script) can find them.
zlog=$E2E_TMP/port0.log
"$REGMETER" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --upstream "$REGISTRY_URL" >"$zlog" 2>&1 &
zpid=$!
register_pid "$zpid"
register_log "$zlog"
wait_until "$E2E_WAIT" "the start-up line of a :0 instance" grep -q ' listening on ' "$zlog"
line=$(grep ' listening on ' "$zlog")
assert_match 'listening on http://127\.0\.0\.1:[1-9][0-9]*, .* metrics on http://127\.0\.0\.1:[1-9][0-9]*, ' "$line" \
    "start-up line with --listen and --metrics-listen :0"
mport=$(sed -n 's/.* metrics on http:\/\/127\.0\.0\.1:\([0-9]*\),.*/\1/p' <<<"$line")
lport=$(sed -n 's/.* listening on http:\/\/127\.0\.0\.1:\([0-9]*\),.*/\1/p' <<<"$line")
assert_eq 200 "$(http_code "http://127.0.0.1:$mport/healthz")" "/healthz on the metrics port the start-up line names"
assert_eq 200 "$(http_code "http://127.0.0.1:$lport/v2/")" "/v2/ on the client port the start-up line names"
kill -TERM "$zpid"

# ---------------------------------------------------------------- the --threads default
# The CPUs it may use (affinity mask, capped by a cgroup v2 quota): pinned to
# one CPU, one loop. README and docs/operations.md describe the default alike.
tlog=$E2E_TMP/threads.log
taskset -c 0 "$REGMETER" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --upstream "$REGISTRY_URL" >"$tlog" 2>&1 &
tpid=$!
register_pid "$tpid"
register_log "$tlog"
wait_until "$E2E_WAIT" "the start-up line of a pinned instance" grep -q ' listening on ' "$tlog"
assert_contains ", 1 thread(s)" "$(grep ' listening on ' "$tlog")" "--threads default under taskset -c 0"
kill -TERM "$tpid"
threads_default() { awk -F'|' '$2 ~ /`--threads N`/ { print $3 }' "$1" | sed 's/^ *//; s/ *$//'; }
readme_default=$(threads_default "$SOURCE_ROOT/README.md")
[[ -n "$readme_default" ]] || fail "no --threads row in README.md's flag table"
assert_eq "$readme_default" "$(threads_default "$SOURCE_ROOT/docs/operations.md")" \
    "the --threads default in docs/operations.md's table and README's"
assert_contains "cgroup" "$readme_default" "README's --threads default names the cgroup CPU quota the code honours"
log "PASS"
