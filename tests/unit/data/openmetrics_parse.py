#!/usr/bin/python3
"""Parses an OpenMetrics exposition on stdin with prometheus_client's parser
(Debian's python3-prometheus-client, independent of regmeter's writer) and
prints what it read, one sample a line:

    family <name> <type> <help> <unit>
    sample <name> <labels sorted, k=v;...> <value> [exemplar <labels> <value> <timestamp>]

The parser is strict: it rejects a missing `# EOF`, a histogram without its
+Inf bucket or with buckets out of order, an exemplar label set over 128
characters, bad escapes. Any such error exits 1 with the message on stderr.
"""
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families


def labels(d):
    return ";".join("%s=%s" % (k, d[k]) for k in sorted(d))


def main():
    try:
        families = list(text_string_to_metric_families(sys.stdin.read()))
    except ValueError as e:
        print("openmetrics parse error: %s" % e, file=sys.stderr)
        return 1
    for f in families:
        print("family %s %s %r %r" % (f.name, f.type, f.documentation, f.unit))
        for s in f.samples:
            line = "sample %s {%s} %r" % (s.name, labels(s.labels), s.value)
            if s.exemplar is not None:
                e = s.exemplar
                ts = "%d.%09d" % (e.timestamp.sec, e.timestamp.nsec)
                line += " exemplar {%s} %r %s" % (labels(e.labels), e.value, ts)
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
