#!/usr/bin/env python3
"""Turns tests/bench/run.sh samples into the result table.

usage: table.py META SAMPLES
META: key=value lines; SAMPLES: workload<TAB>target<TAB>metric<TAB>value.
"""
import statistics
import sys
from collections import defaultdict

TARGETS = ("direct", "nginx", "haproxy", "regmeter")
PROXIES = ("nginx", "haproxy", "regmeter")
PEERS = ("nginx", "haproxy")  # what regmeter's ratios are taken against
STORMS = (  # workload, concurrency key in META, upstream, capped
    ("storm1k", "storm_1k", "plain", False),
    ("storm4k", "storm_4k", "plain", False),
    ("storm1k_tls", "storm_1k", "TLS", False),
    ("storm4k_tls", "storm_4k", "TLS", False),
    ("storm1k_cap", "storm_1k", "plain", True),
    ("storm4k_cap", "storm_4k", "plain", True),
)
STORM_ERRORS = ("connect_errors", "read_errors", "write_errors", "timeout_errors", "status_errors")


def main():
    meta = {}
    with open(sys.argv[1]) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("=")
            meta[key] = value
    samples = defaultdict(list)
    with open(sys.argv[2]) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 4 or parts[3] == "":
                continue
            try:
                samples[(parts[0], parts[1], parts[2])].append(float(parts[3]))
            except ValueError:
                pass

    def values(w, t, m):
        return samples.get((w, t, m), [])

    def med(w, t, m):
        v = values(w, t, m)
        return statistics.median(v) if v else None

    def ran(w, t):  # did any sample of this workload and target run (or fail)?
        return any(key[0] == w and key[1] == t for key in samples)

    clk = float(meta.get("clk_tck", 100))
    mib = 1 << 20
    gib = 1 << 30

    def size(n):
        n = int(n)
        return f"{n // gib} GiB" if n >= gib and n % gib == 0 else f"{n // mib} MiB"

    def fmt(x, digits):
        return "n/a" if x is None else f"{x:.{digits}f}"

    def spread(w, t, m, digits, scale=1.0):
        v = [x * scale for x in values(w, t, m)]
        if not v:
            return "n/a"
        if len(v) == 1:
            return fmt(v[0], digits)
        return f"{fmt(statistics.median(v), digits)} ({fmt(min(v), digits)}-{fmt(max(v), digits)})"

    def ratio(a, b):
        return "n/a" if a is None or b in (None, 0) else f"{a / b:.2f}"

    def ratios(per):  # regmeter over each peer, from {target: value}; "" for a peer the row leaves out
        return tuple(ratio(per.get("regmeter"), per[p]) if p in per else "" for p in PEERS)

    rows = []  # (label, direct, nginx, haproxy, regmeter, regmeter/nginx, regmeter/haproxy)

    def metric_row(label, w, m, digits, with_spread=True, scale=1.0, only=TARGETS):
        cells = []
        for t in TARGETS:
            if t not in only:
                cells.append("-")
            elif with_spread:
                cells.append(spread(w, t, m, digits, scale))
            else:
                v = med(w, t, m)
                cells.append(fmt(None if v is None else v * scale, digits))
        rows.append((label, *cells, *ratios({t: med(w, t, m) for t in only})))

    blob = size(meta["blob"])
    stream_total = size(int(meta["stream_each"]) * int(meta["stream_conns"]))
    conns = meta["stream_conns"]
    metric_row(f"download {blob}, 1 conn, GB/s", "download", "gbps", 2)
    metric_row(f"upload {blob} Content-Length, GB/s", "upload", "gbps", 2)
    metric_row(f"upload {blob} chunked {size(meta['chunk'])} chunks, GB/s", "chunked", "gbps", 2)
    metric_row(f"upload {blob} chunked 32 KiB chunks, GB/s", "chunked32k", "gbps", 2)
    metric_row(f"GET /v2/ wrk -t1 -c32 -d{meta['wrk_s']}s, req/s", "rps", "reqs_per_s", 0)
    rate = meta["lat_rate"]
    metric_row(f"open-loop {rate} req/s, 8 conns: p50 us", "lat", "p50_us", 0)
    metric_row(f"open-loop {rate} req/s, 8 conns: p99 us", "lat", "p99_us", 0)
    metric_row(f"open-loop {rate} req/s, 8 conns: p99.9 us", "lat", "p999_us", 0)

    def added_p99_row(label, w):  # p99 through each proxy minus the direct p99
        direct = med(w, "direct", "p99_us")
        cells = ["0" if direct is not None else "n/a"]
        for t in PROXIES:
            v = med(w, t, "p99_us")
            cells.append("n/a" if v is None or direct is None else f"{v - direct:+.0f}")
        rows.append((label, *cells, "", ""))

    added_p99_row("open-loop p99 minus direct p99, us", "lat")
    # The same at an eighth and a quarter of peak: where the added tail starts.
    for w, fraction in (("lat8", 4), ("lat4", 2)):
        if any(values(w, t, "p99_us") for t in TARGETS):
            r = int(rate) // fraction if rate.isdigit() else "n/a"
            metric_row(f"open-loop {r} req/s, 8 conns: p50 us", w, "p50_us", 0)
            metric_row(f"open-loop {r} req/s, 8 conns: p99 us", w, "p99_us", 0)
            added_p99_row(f"open-loop {r} req/s: p99 minus direct p99, us", w)
    metric_row(f"wrk -t1 -c8 -d{meta['wrkl_s']}s --latency: p50 us", "wrklat", "p50_us", 0)
    metric_row(f"wrk -t1 -c8 -d{meta['wrkl_s']}s --latency: p99 us", "wrklat", "p99_us", 0)
    added_p99_row("wrk -c8 p99 minus direct p99, us", "wrklat")
    metric_row("one CPU: GET /v2/ wrk -t1 -c32, req/s", "rps1", "reqs_per_s", 0)
    rate1 = meta.get("lat1_rate", "n/a")
    metric_row(f"one CPU: open-loop {rate1} req/s, 8 conns: p50 us", "lat1", "p50_us", 0)
    metric_row(f"one CPU: open-loop {rate1} req/s, 8 conns: p99 us", "lat1", "p99_us", 0)
    added_p99_row("one CPU: open-loop p99 minus direct p99, us", "lat1")
    metric_row(f"download {conns} x {size(meta['stream_each'])} = {stream_total}, GB/s", "c64down", "gbps", 2)
    metric_row(f"upload {conns} x {size(meta['stream_each'])} = {stream_total}, GB/s", "c64up", "gbps", 2)

    # Storm rows: many keep-alive clients at once.
    def storm_rows(w, clients, upstream, capped):
        label = f"storm -c{clients}{' TLS upstream' if upstream == 'TLS' else ''}"
        only = PROXIES if upstream == "TLS" else TARGETS  # run.sh: no direct client speaks TLS
        if capped:
            label += f" --upstream-max-connections {meta.get('cap_limit', '?')}"
            only = ("regmeter",)
            if meta.get("cap_state") == "missing":
                rows.append((label, "-", "-", "-", "not built yet", "", ""))
                return
        if not any(ran(w, t) for t in TARGETS):
            return
        metric_row(f"{label}: req/s", w, "reqs_per_s", 0, only=only)
        for m, name in (("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9")):
            metric_row(f"{label}: {name} ms", w, m, 2, scale=1e-3, only=only)
        cells = []
        for t in TARGETS:
            if t not in only:
                cells.append("-")
                continue
            sums = [sum(values(w, t, m)) for m in STORM_ERRORS]
            cells.append("n/a" if not values(w, t, "requests") else
                         "/".join(f"{s:.0f}" for s in sums[:4]) + f" ({sums[4]:.0f})")
        rows.append((f"{label}: socket errors conn/read/write/timeout (non-2xx)", *cells, "", ""))
        per_request = {t: None for t in only if t != "direct"}
        cells = []
        for t in TARGETS:
            new, reqs = sum(values(w, t, "new_upstream_conns")), sum(values(w, t, "requests"))
            if t == "direct" or t not in only:
                cells.append("-")
            elif not values(w, t, "new_upstream_conns") or not reqs:
                cells.append("n/a")
            else:
                per_request[t] = new / reqs
                cells.append(f"{per_request[t]:.4f}")
        rows.append((f"{label}: new upstream conns per request", *cells, *ratios(per_request)))
        cells = []
        for t in TARGETS:
            v = values(w, t, "max_upstream_conns")
            cells.append("-" if t == "direct" or t not in only else
                         "n/a" if not v else f"{statistics.median(v):.0f} (max {max(v):.0f})")
        rows.append((f"{label}: peak upstream conns (ss, 100 ms)", *cells, "", ""))
        per_request = {t: None for t in only if t != "direct"}
        cells = []
        for t in TARGETS:
            ticks, reqs = sum(values(w, t, "cpu_ticks")), sum(values(w, t, "requests"))
            if t == "direct" or t not in only:
                cells.append("-")
            elif not reqs:
                cells.append("n/a")
            else:
                per_request[t] = (ticks / clk) / reqs * 1e6
                cells.append(f"{per_request[t]:.1f}")
        rows.append((f"{label}: proxy CPU us per request", *cells, *ratios(per_request)))

    for w, key, upstream, capped in STORMS:
        storm_rows(w, meta.get(key, "?"), upstream, capped)

    def hwm_row(label, w):
        cells = ["-"]
        meds = {}
        for t in PROXIES:
            v = values(w, t, "hwm_kib")
            meds[t] = statistics.median(v) / 1024 if v else None
            cells.append("n/a" if not v else f"{meds[t]:.1f} (max {max(v) / 1024:.1f})")
        rows.append((label, *cells, *ratios(meds)))

    hwm_row(f"peak RSS during {conns}-conn download, MiB", "c64down")
    hwm_row(f"peak RSS during {conns}-conn upload, MiB", "c64up")
    idle = ["-"]
    for t in PROXIES:
        v = values("idle", t, "rss_kib")
        idle.append("n/a" if not v else f"{v[0] / 1024:.1f}")
    rows.append(("RSS at start (before load), MiB", *idle, "", ""))

    def cpu_row(label, w):
        cells = ["-"]
        per = {}
        for t in PROXIES:
            ticks = sum(values(w, t, "cpu_ticks"))
            moved = sum(values(w, t, "bytes"))
            per[t] = (ticks / clk) / (moved / gib) if moved else None
            cells.append(fmt(per[t], 3))
        rows.append((label, *cells, *ratios(per)))

    cpu_row("proxy CPU s per GiB: download 1 conn", "download")
    cpu_row("proxy CPU s per GiB: upload Content-Length", "upload")
    cpu_row(f"proxy CPU s per GiB: upload chunked {size(meta['chunk'])}", "chunked")
    cpu_row("proxy CPU s per GiB: upload chunked 32 KiB", "chunked32k")
    cpu_row(f"proxy CPU s per GiB: download {conns} conns", "c64down")
    cpu_row(f"proxy CPU s per GiB: upload {conns} conns", "c64up")
    cells = ["-"]
    per = {}
    for t in PROXIES:
        ticks = sum(values("rps", t, "cpu_ticks"))
        reqs = sum(values("rps", t, "requests"))
        per[t] = (ticks / clk) / reqs * 1e6 if reqs else None
        cells.append(fmt(per[t], 1))
    rows.append(("proxy CPU us per small request (wrk -c32)", *cells, *ratios(per)))

    errors = [str(int(sum(v for (w, t, m), vs in samples.items() if t == target and m == "error" for v in vs)))
              for target in TARGETS]
    rows.append(("failed samples", *errors, "", ""))

    header = ("workload", *TARGETS, *(f"regmeter/{p}" for p in PEERS))
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    out = []
    kind = "QUICK smoke, sizes too small to quote" if meta.get("quick") == "1" else "full run"
    out.append(f"regmeter vs nginx and HAProxy benchmark ({kind})")
    out.append(f"date {meta['date']}  regmeter: {meta['regmeter_from']}")
    out.append(f"host: {meta['cpu']}, {meta['cores']} cores, kernel {meta['kernel']}; nginx {meta['nginx']} with "
               f"{meta['nginx_workers']} workers; HAProxy {meta.get('haproxy', '?')} with "
               f"{meta.get('haproxy_threads', '?')} threads (splice: {meta.get('haproxy_splice', '?')}, "
               f"GLIBC_TUNABLES={meta.get('haproxy_glibc_tunables') or 'unset'}); "
               f"regmeter --threads 2; access logs {meta.get('access_log', 'nginx off, regmeter default')}")
    out.append(f"medians of {meta['runs']} alternating rounds (min-max in brackets); GB/s = 1e9 bytes/s; "
               f"client: tests/bench/benchc.c (client_copy={meta['client_copy']}); took {meta['elapsed']} s")
    out.append("backends: streaming rows tests/bench/benchd.c (sendfile source, MSG_TRUNC sink); requests/s, latency "
               "and storm rows a static nginx answering GET /v2/ itself, with its own nginx, HAProxy and regmeter in "
               "front (same configs)")
    out.append("")
    out.append("  ".join(h.ljust(widths[i]) if i == 0 else h.rjust(widths[i]) for i, h in enumerate(header)))
    out.append("  ".join("-" * w for w in widths))
    for r in rows:
        out.append("  ".join(str(c).ljust(widths[i]) if i == 0 else str(c).rjust(widths[i]) for i, c in enumerate(r)))
    out.append("")
    out.append("Notes: ratio > 1 is better for regmeter on throughput rows, worse on latency/RSS/CPU/connection rows.")
    out.append("Peak RSS = VmHWM after a reset (clear_refs 5) just before each round; nginx = sum over its workers.")
    out.append("CPU = utime+stime from /proc/PID/stat of the proxy (nginx workers summed; HAProxy's one process, all "
               f"its threads) over the rounds, tick {1000 / clk:.0f} ms.")
    out.append(f"Open-loop latency: benchc lat, latency from each request's scheduled send time to its last byte; "
               f"rate = half the lowest proxy peak of the wrk row (the {int(rate) // 4 if rate.isdigit() else 'n/a'} "
               f"and {int(rate) // 2 if rate.isdigit() else 'n/a'} req/s rows: an eighth and a quarter of it).")
    out.append("One CPU rows: client, backend and proxy (all threads) pinned to CPU 0 with taskset; rate = half the "
               "lowest proxy peak of the one-CPU wrk row. No request waits for another vCPU to wake.")
    out.append(f"Storm rows ({meta.get('storm_runs', '?')} rounds): wrk -t2 -c{meta.get('storm_1k', '?')} / "
               f"-c{meta.get('storm_4k', '?')} "
               f"-d{meta.get('storm_s', '?')}s --timeout {meta.get('storm_timeout', '?')} GET /v2/ (tests/bench/"
               f"storm.lua prints the figures), after a {meta.get('storm_warmup_s', '?')} s warm-up at the same "
               "concurrency (and a 1 s pause, if any warm-up); a response slower than the timeout is a timeout error, not in the percentiles. Socket "
               "errors are summed over the rounds. New upstream conns = the static backend's stub_status accepts "
               "during the samples / requests; peak upstream conns = the highest `ss` count of established "
               "connections to the front's own backend port, sampled every 100 ms (median over rounds, max).")
    out.append(f"regmeter log lines mentioning error/warn/fail: {meta['regmeter_complaints']}")
    load = []
    for w in ("download", "upload", "chunked", "chunked32k", "rps", "lat8", "lat4", "lat", "wrklat", "rps1", "lat1",
              "c64down", "c64up", *(s[0] for s in STORMS)):
        f = [v for t in TARGETS for v in values(w, t, "foreign_pct")]
        if f:
            load.append(f"{w} {statistics.median(f):.0f}%")
    out.append("CPU used by other processes during the samples (median % of all cores): " + ", ".join(load))
    fp = [v for (w, t, m), vs in samples.items() if m == "foreign_pct" and t in TARGETS for v in vs]
    if fp:
        fp.sort()
        out.append(f"... per sample: median {statistics.median(fp):.0f}%, max {fp[-1]:.0f}% "
                   f"(wait for quiet before each sample: {meta.get('quiet', '0')})")
    print("\n".join(out))


if __name__ == "__main__":
    main()
