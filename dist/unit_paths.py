#!/usr/bin/env python3
"""Copies examples/systemd/regmeter.service with its /usr/local paths
(ExecStart's binary, Documentation='s docs) replaced by the ones `meson
install` uses, so the installed unit starts the installed binary and points at
installed documentation whatever --prefix was given.

    unit_paths.py INPUT OUTPUT BINDIR DOCDIR   (absolute paths)
"""
import sys

src, dst, bindir, docdir = sys.argv[1:5]
text = open(src).read()
for old, new in (("/usr/local/bin/regmeter", f"{bindir}/regmeter"),
                 ("file:///usr/local/share/doc/regmeter/", f"file://{docdir}/")):
    if old not in text:
        sys.exit(f"unit_paths.py: {src} no longer contains {old}")
    text = text.replace(old, new)
open(dst, "w").write(text)
