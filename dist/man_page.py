#!/usr/bin/env python3
"""Writes regmeter(1) from `regmeter --help` (the option table the parser
uses), so the man page cannot drift from the flags.

    man_page.py REGMETER OUTPUT VERSION

--help's layout: a "name - summary" line, a "Usage:" line, then entries that
start with two spaces and a flag, continued by lines indented to the text
column. Each entry becomes a .TP paragraph.
"""
import re
import subprocess
import sys

regmeter, output, version = sys.argv[1:4]
text = subprocess.run([regmeter, "--help"], check=True, capture_output=True, text=True).stdout
lines = text.splitlines()
name, _, summary = lines[0].partition(" - ")
if name != "regmeter" or not summary:
    sys.exit(f"man_page.py: unexpected first --help line: {lines[0]!r}")


def roff(s):
    # Backslashes first, then the characters roff treats specially at the
    # start of a line or as hyphens in option names.
    s = s.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + s if s[:1] in (".", "'") else s


entries = []  # [flag part, description words]
for line in lines[1:]:
    # The argument name is upper case (HOST:PORT, FILE, S, N); the text after
    # it may follow a single space when the flag is long.
    m = re.match(r"^  (--[a-z][a-z0-9-]*(?: [A-Z][A-Z:]*)?)(?:\s+(.*))?$", line)
    if m:
        entries.append([m.group(1), [m.group(2)] if m.group(2) else []])
    elif entries and line.startswith("    "):
        entries[-1][1].append(line.strip())
if len(entries) < 20:
    sys.exit(f"man_page.py: only {len(entries)} options read from --help")

out = [
    f'.TH REGMETER 1 "" "regmeter {version}" "User Commands"',
    ".SH NAME",
    f"regmeter \\- {roff(summary)}",
    ".SH SYNOPSIS",
    ".B regmeter",
    "[\\fIoptions\\fR]",
    ".SH DESCRIPTION",
    "regmeter sits between container clients (docker, podman, containerd, skopeo) and a",
    "registry speaking the OCI distribution API, forwards every request unchanged and",
    "exports Prometheus metrics about pushes, pulls, uploads and their latencies on",
    "the metrics port: \\fB/metrics\\fR, \\fB/healthz\\fR and the built\\-in \\fB/dashboard\\fR page.",
    ".PP",
    "A configuration mistake prints one line naming the flag or key and exits with status 2.",
    ".SH OPTIONS",
]
for flag, words in entries:
    opt, _, arg = flag.partition(" ")
    out.append(".TP")
    out.append(f"\\fB{roff(opt)}\\fR" + (f" \\fI{roff(arg)}\\fR" if arg else ""))
    out.append(roff(" ".join(words)))
out += [
    ".SH SIGNALS",
    ".TP", "\\fBSIGTERM\\fR, \\fBSIGINT\\fR",
    "stop accepting, let in\\-flight requests finish for \\-\\-shutdown\\-grace seconds, exit 0",
    ".TP", "\\fBSIGHUP\\fR", "reload \\-\\-tls\\-cert and \\-\\-tls\\-key",
    ".TP", "\\fBSIGUSR1\\fR", "reopen the \\-\\-access\\-log file (after logrotate moved it)",
    ".SH FILES",
    "The documentation (README.md, operations.md, metrics.md, ...) is installed under",
    "\\fIshare/doc/regmeter/\\fR of the installation prefix.",
    ".SH SEE ALSO",
    "docs/operations.md and docs/metrics.md in the documentation directory.",
]
with open(output, "w") as f:
    f.write("\n".join(out) + "\n")
