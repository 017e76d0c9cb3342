#!/usr/bin/env bash
# `meson install` puts the binary, the man page, the systemd unit and the docs
# where the unit and README say: installed with --destdir into a temp dir,
# then every file checked (exists, runs, renders, points at installed files).
# Env (tests/meson.build): BUILD_ROOT SOURCE_ROOT PREFIX BINDIR MANDIR DATADIR.
set -euo pipefail
fail() { printf 'install: FAIL: %s\n' "$*" >&2; exit 1; }

DEST=$(mktemp -d "${TMPDIR:-/tmp}/regmeter-install.XXXXXX")
trap 'rm -rf "$DEST"' EXIT
meson install -C "$BUILD_ROOT" --no-rebuild --destdir "$DEST" >"$DEST.log" 2>&1 \
    || { cat "$DEST.log" >&2; rm -f "$DEST.log"; fail "meson install --destdir failed"; }
rm -f "$DEST.log"
root=$DEST$PREFIX

bin=$root/$BINDIR/regmeter
[[ -x "$bin" ]] || fail "no executable at $PREFIX/$BINDIR/regmeter"
"$bin" --version | grep -q regmeter || fail "the installed binary does not run --version"

# The man page: every flag of --help, and it renders without warnings.
man=$root/$MANDIR/man1/regmeter.1
[[ -s "$man" ]] || fail "no man page at $PREFIX/$MANDIR/man1/regmeter.1"
mapfile -t flags < <("$bin" --help | sed -n 's/^  \(--[a-z][a-z0-9-]*\).*/\1/p')
((${#flags[@]} >= 30)) || fail "only ${#flags[@]} flags in --help"
entries=$(grep -A1 '^\.TP$' "$man" | sed -n 's/^\\fB\(\\-\\-[a-z0-9\\-]*\)\\fR.*/\1/p' | sed 's/\\-/-/g' | sort)
[[ "$entries" == "$(printf '%s\n' "${flags[@]}" | sort)" ]] \
    || fail "man page options differ from --help: $(diff <(echo "$entries") <(printf '%s\n' "${flags[@]}" | sort) | tr '\n' ' ')"
command -v groff >/dev/null || fail "groff missing (apt-get install groff-base): the man page cannot be rendered"
warnings=$(groff -man -Tutf8 -ww -z "$man" 2>&1)
[[ -z "$warnings" ]] || fail "groff warns about regmeter.1: $warnings"
rendered=$(groff -man -Tutf8 "$man" 2>/dev/null | sed 's/.\x08//g')
grep -q -- '--metrics-listen' <<<"$rendered" || fail "the rendered man page lacks --metrics-listen"
grep -q '/dashboard' <<<"$rendered" || fail "the rendered man page does not name /dashboard"

# The docs: README, LICENSE and every docs/*.md of the source tree, beside
# each other as in the repository (their relative links resolve), and the
# examples they link to.
doc=$root/$DATADIR/doc/regmeter
for f in README.md LICENSE examples/systemd/regmeter.service examples/prometheus/alerts.yml; do
    [[ -s "$doc/$f" ]] || fail "not installed: $PREFIX/$DATADIR/doc/regmeter/$f"
done
for page in "$SOURCE_ROOT"/docs/*.md; do
    cmp -s "$page" "$doc/docs/$(basename "$page")" \
        || fail "docs/$(basename "$page") is not installed as $PREFIX/$DATADIR/doc/regmeter/docs/ (add it to dist/meson.build)"
done
# Relative links from the installed README and docs land on installed files.
broken=$(cd "$doc" && python3 - <<'PY'
import glob, os, re
for md in ["README.md"] + sorted(glob.glob("docs/*.md")):
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", open(md).read()):
        if re.match(r"[a-z]+:", target):
            continue
        if not os.path.exists(os.path.normpath(os.path.join(os.path.dirname(md), target))):
            print(f"{md} -> {target}")
PY
)
[[ -z "$broken" ]] || fail "links in the installed docs that point at nothing installed: $(tr '\n' ' ' <<<"$broken")"

# The unit: where systemd looks, starting the installed binary, pointing at
# installed documentation.
unit=$root/lib/systemd/system/regmeter.service
[[ -s "$unit" ]] || fail "no systemd unit at $PREFIX/lib/systemd/system/regmeter.service"
exec_bin=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit")
[[ "$exec_bin" == "$PREFIX/$BINDIR/regmeter" ]] || fail "the unit's ExecStart runs $exec_bin, not $PREFIX/$BINDIR/regmeter"
docs_line=$(sed -n 's/^Documentation=//p' "$unit")
[[ -n "$docs_line" ]] || fail "the unit has no Documentation="
for d in $docs_line; do
    case $d in
        file://*) [[ -f "$DEST${d#file://}" ]] || fail "the unit's Documentation=$d is not installed" ;;
        man:*) page=${d#man:}; sect=${page##*(}; sect=${sect%)}; name=${page%%(*}
               [[ -f "$root/$MANDIR/man$sect/$name.$sect" ]] || fail "the unit's Documentation=$d is not installed" ;;
        *) fail "the unit's Documentation=$d is neither file:// nor man:" ;;
    esac
done
echo "install: OK (binary, man page with ${#flags[@]} options, unit, $(find "$doc" -type f | wc -l) doc files)"
