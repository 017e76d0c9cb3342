#!/usr/bin/env python3
"""Query Prometheus text exposition read from stdin.

promq.py NAME [label=value ...]
    Prints the sum of the samples of NAME whose labels include every given
    label=value pair (other labels may be present), or "absent" when no sample
    matches.
promq.py --series NAME [--base FILE] [--drop label=value]...
    Prints every non-zero sample of NAME as a normalized line:
    name{a="x",b="y"} value, labels sorted, lines sorted. With --base, the
    values of an earlier scrape saved in FILE are subtracted first (counter
    deltas). --drop leaves out samples carrying that label value.
"""
import re
import sys

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?\s*$')
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def parse(text):
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = LINE.match(line)
        if not m:
            continue
        labels = dict(LABEL.findall(m.group(3) or ""))
        yield m.group(1), labels, float(m.group(4))


def fmt(v):
    return str(int(v)) if v == int(v) else repr(v)


def main():
    args = sys.argv[1:]
    text = sys.stdin.read()
    if args and args[0] == "--series":
        name = args[1]
        base, drop = {}, []
        rest = args[2:]
        while rest:
            if rest[0] == "--base":
                with open(rest[1]) as f:
                    for n, labels, v in parse(f.read()):
                        base[(n, tuple(sorted(labels.items())))] = v
            elif rest[0] == "--drop":
                drop.append(tuple(rest[1].split("=", 1)))
            else:
                raise SystemExit("unknown option " + rest[0])
            rest = rest[2:]
        out = []
        for n, labels, v in parse(text):
            if n != name or any(labels.get(k) == val for k, val in drop):
                continue
            v -= base.get((n, tuple(sorted(labels.items()))), 0.0)
            if v == 0:
                continue
            lab = ",".join('%s="%s"' % (k, labels[k]) for k in sorted(labels))
            out.append("%s{%s} %s" % (n, lab, fmt(v)))
        print("\n".join(sorted(out)))
        return 0
    name = args[0]
    want = dict(a.split("=", 1) for a in args[1:])
    total, found = 0.0, False
    for n, labels, v in parse(text):
        if n == name and all(labels.get(k) == val for k, val in want.items()):
            total += v
            found = True
    print(fmt(total) if found else "absent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
