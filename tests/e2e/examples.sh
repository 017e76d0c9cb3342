#!/usr/bin/env bash
# The operator examples in examples/ are checked, not just shipped:
#   - Prometheus: promtool check config / check rules / test rules
#     (examples/prometheus/alerts_test.yml);
#   - every YAML file parses (all documents), every JSON file parses;
#   - the Grafana dashboard: data source variable, first panel = the blob
#     upload latency heatmap with its exact query, every query names only
#     metrics regmeter exports and uses $__rate_interval/$__range windows;
#   - provisioning, docker-compose.yml, the Kubernetes manifests and the
#     Dockerfile are consistent with each other and with the repository
#     (mount sources exist, selectors match, ports named, Debian packages
#     exist and cover what meson needs and what the binary links against);
#   - the Kubernetes variants: TLS from a kubernetes.io/tls Secret (the test
#     writes a certificate where the Secret would be mounted and talks https
#     to it) and an Ingress whose backend regmeter trusts forwarded headers;
#   - what the Dockerfile's build stage copies is enough for `meson setup`;
#   - the image's entry point (docker-entrypoint.sh): no upstream is exit 2
#     with one line, REGMETER_UPSTREAM proxies;
#   - the systemd unit passes `systemd-analyze verify` (and its offline
#     security score stays low);
#   - every regmeter command line in the examples (systemd ExecStart,
#     compose command, Dockerfile CMD, Kubernetes args with their ConfigMap
#     variables expanded) is accepted by the real binary: it is started with
#     those flags (addresses moved to free loopback ports, the upstream to a
#     local registry), /healthz and a /v2/ through it answer 200, and SIGTERM
#     stops it with status 0;
#   - the docs mention no regmeter flag that --help does not know, and
#     docs/operations.md mentions every flag --help lists;
#   - yamllint, docker-compose and systemd-analyze are required (tests/run.sh
#     installs them): a missing tool fails the test, never skips a check.
. "$(dirname "$0")/lib.sh"

EX=$SOURCE_ROOT/examples
[[ -d "$EX" ]] || fail "no examples/ directory at $EX"
[[ -x "$REGMETER" ]] || fail "REGMETER=$REGMETER is not an executable"

# python3-yaml is the one module this test needs beyond the standard library.
if ! python3 -c 'import yaml' 2>/dev/null; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        log "installing python3-yaml"
        DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y --no-install-recommends python3-yaml \
            >"$E2E_TMP/apt.log" 2>&1 || { cat "$E2E_TMP/apt.log" >&2; fail "apt-get install python3-yaml failed"; }
    fi
    python3 -c 'import yaml' 2>/dev/null || fail "python3 module yaml missing (apt-get install python3-yaml)"
fi

# ---------------------------------------------------------------- Prometheus
command -v promtool >/dev/null || fail "promtool missing (apt-get install prometheus)"
# rule_files are relative to the config file, so check it where it lives; a
# copy in the temp dir would need the alerts beside it.
cp "$EX/prometheus/prometheus.yml" "$EX/prometheus/alerts.yml" "$EX/prometheus/alerts_test.yml" "$E2E_TMP/"
promtool check config "$E2E_TMP/prometheus.yml" >"$E2E_TMP/promtool.log" 2>&1 \
    || { cat "$E2E_TMP/promtool.log" >&2; fail "promtool check config examples/prometheus/prometheus.yml"; }
assert_contains "1 rule files found" "$(cat "$E2E_TMP/promtool.log")" "prometheus.yml loads alerts.yml"
promtool check rules "$EX/prometheus/alerts.yml" >"$E2E_TMP/promtool.log" 2>&1 \
    || { cat "$E2E_TMP/promtool.log" >&2; fail "promtool check rules examples/prometheus/alerts.yml"; }
(cd "$E2E_TMP" && promtool test rules alerts_test.yml) >"$E2E_TMP/promtool.log" 2>&1 \
    || { cat "$E2E_TMP/promtool.log" >&2; fail "promtool test rules examples/prometheus/alerts_test.yml"; }
log "promtool: config, rules and rule unit tests pass"

# ---------------------------------------------------------------- structure
# One Python pass over every file; prints one line per problem and writes the
# regmeter command lines it found to cmdlines.json.
"$REGMETER" --help >"$E2E_TMP/help.txt" 2>&1 || fail "regmeter --help failed"
python3 - "$SOURCE_ROOT" "$E2E_TMP/cmdlines.json" "$E2E_TMP/help.txt" >"$E2E_TMP/structure.log" 2>&1 <<'PY' \
    || { cat "$E2E_TMP/structure.log" >&2; fail "examples are inconsistent (see above)"; }
import glob, json, math, os, re, shlex, subprocess, sys
import yaml

root, cmdlines_out, help_file = sys.argv[1:4]
ex = os.path.join(root, "examples")
problems = []
def bad(msg): problems.append(msg)
def rel(p): return os.path.relpath(p, root)

# The first panel is the native heatmap (issue 17), the classic one beside it.
NATIVE_HEATMAP = ('sum(rate(regmeter_http_request_duration_seconds'
                  '{handler="blob_upload_chunk",method=~"patch|put"}[$__rate_interval]))')
HEATMAP = ('sum by (le) (increase(registry_http_request_duration_seconds_bucket'
           '{handler="blob_upload_chunk",method=~"patch|put"}[$__rate_interval]))')
# Families with native buckets (every regmeter_* histogram): a Prometheus with
# native histograms on stores them native only, queried by their bare name.
NATIVE = {"regmeter_http_request_duration_seconds", "regmeter_upload_session_duration_seconds",
          "regmeter_upload_session_size_bytes", "regmeter_upstream_header_seconds",
          "regmeter_upstream_connect_seconds", "regmeter_blob_throughput_bytes_per_second"}
def queries_native(expr):
    return any(re.search(r'\b' + n + r'\s*[\{\[]', expr) for n in NATIVE)
HISTOGRAMS = {"registry_http_request_duration_seconds", "registry_http_request_size_bytes",
              "registry_http_response_size_bytes", "regmeter_upload_session_duration_seconds",
              "regmeter_upload_session_size_bytes", "regmeter_upstream_header_seconds",
              "regmeter_upstream_connect_seconds", "regmeter_blob_throughput_bytes_per_second",
              "regmeter_http_request_duration_seconds", "regmeter_upstream_queue_seconds"}
SIMPLE = {"registry_http_requests_total", "registry_http_in_flight_requests",
          "regmeter_image_pushes_total", "regmeter_image_pulls_total", "regmeter_blob_bytes_total",
          "regmeter_auth_challenges_total", "regmeter_tls_handshake_errors_total", "up",
          "regmeter_upstream_connect_failures_total", "regmeter_upstream_resolutions_total",
          "regmeter_upstream_addresses", "regmeter_upstream_queue_depth", "regmeter_upstream_connections"}
# issue 16
HISTOGRAMS |= {"regmeter_image_pull_duration_seconds", "regmeter_image_pull_size_bytes"}
SIMPLE |= {"regmeter_registry_errors_total", "regmeter_client_requests_total", "regmeter_client_errors_total",
           "regmeter_blob_redirects_total", "regmeter_upstream_ratelimit_limit",
           "regmeter_upstream_ratelimit_remaining", "regmeter_upstream_ratelimit_window_seconds"}
KNOWN = SIMPLE | NATIVE | {h + s for h in HISTOGRAMS for s in ("_bucket", "_count", "_sum")}
PROMQL_WORDS = {"sum", "by", "without", "rate", "increase", "irate", "histogram_quantile", "topk",
                "bottomk", "and", "or", "unless", "max", "min", "avg", "count", "on", "ignoring",
                "group_left", "group_right", "bool", "offset", "le", "absent", "clamp_min", "delta"}

def metric_names(expr):
    e = re.sub(r'\{[^}]*\}', '', expr)          # drop label matchers
    e = re.sub(r'\[[^\]]*\]', '', e)            # drop range selectors
    e = re.sub(r'"[^"]*"', '', e)
    e = re.sub(r'by\s*\([^)]*\)|without\s*\([^)]*\)|on\s*\([^)]*\)', '', e)
    return {w for w in re.findall(r'[a-zA-Z_:][a-zA-Z0-9_:]*', e)
            if w not in PROMQL_WORDS and not re.fullmatch(r'\d.*|e\d+', w)}

def check_expr(where, expr, windows):
    for name in metric_names(expr):
        if name not in KNOWN:
            bad(f"{where}: unknown metric or function '{name}' in: {expr}")
    for w in re.findall(r'\[([^\]]*)\]', expr):
        if windows is not None and w not in windows:
            bad(f"{where}: range [{w}] (expected one of {sorted(windows)}) in: {expr}")

# ---- every YAML and JSON file parses
docs = {}
for path in sorted(glob.glob(os.path.join(ex, "**", "*"), recursive=True)):
    if path.endswith((".yml", ".yaml")):
        try:
            with open(path) as f:
                docs[path] = [d for d in yaml.safe_load_all(f) if d is not None]
        except yaml.YAMLError as e:
            bad(f"{rel(path)}: YAML does not parse: {e}")
            continue
        if not docs[path]:
            bad(f"{rel(path)}: empty YAML")
        print(f"yaml ok: {rel(path)} ({len(docs[path])} document(s))")
    elif path.endswith(".json"):
        try:
            with open(path) as f:
                json.load(f)
            print(f"json ok: {rel(path)}")
        except ValueError as e:
            bad(f"{rel(path)}: JSON does not parse: {e}")

def one(path):
    d = docs.get(os.path.join(ex, path))
    if not d:
        bad(f"examples/{path}: missing or empty")
        return {}
    return d[0]

# ---- Grafana dashboard
dash_path = os.path.join(ex, "grafana", "regmeter-dashboard.json")
try:
    dash = json.load(open(dash_path))
except (OSError, ValueError) as e:
    bad(f"dashboard: {e}")
    dash = {"panels": []}
if not 36 <= dash.get("schemaVersion", 0) <= 41:
    bad(f"dashboard: schemaVersion {dash.get('schemaVersion')} (want ~38)")
ds_vars = [v for v in dash.get("templating", {}).get("list", [])
           if v.get("type") == "datasource" and v.get("query") == "prometheus"]
if [v.get("name") for v in ds_vars] != ["DS_PROMETHEUS"]:
    bad("dashboard: needs exactly one templated data source variable DS_PROMETHEUS of type prometheus")
panels = dash.get("panels", [])
if not panels:
    bad("dashboard: no panels")
else:
    first = panels[0]
    t = (first.get("targets") or [{}])[0]
    if first.get("type") != "heatmap":
        bad(f"dashboard: first panel is a {first.get('type')}, not a heatmap")
    if t.get("expr") != NATIVE_HEATMAP:
        bad(f"dashboard: first panel query is {t.get('expr')!r}, want {NATIVE_HEATMAP!r}")
    if t.get("format") != "heatmap" or t.get("exemplar") is not True:
        bad("dashboard: first panel target needs format 'heatmap' and exemplars on")
    if first.get("gridPos", {}).get("y") != 0 or first.get("gridPos", {}).get("x") != 0:
        bad("dashboard: first panel is not at the top left")
    second = panels[1] if len(panels) > 1 else {}
    t2 = (second.get("targets") or [{}])[0]
    if second.get("type") != "heatmap" or t2.get("expr") != HEATMAP:
        bad(f"dashboard: second panel is not the classic heatmap {HEATMAP!r}")
    g1, g2 = first.get("gridPos", {}), second.get("gridPos", {})
    if g2.get("y") != 0 or g2.get("x") != g1.get("x", 0) + g1.get("w", 0):
        bad("dashboard: the classic heatmap is not beside the native one")
ids, cells, exprs = set(), {}, []
for p in panels:
    title = p.get("title", "?")
    if p.get("id") in ids:
        bad(f"dashboard: duplicate panel id {p.get('id')}")
    ids.add(p.get("id"))
    if p.get("datasource", {}).get("uid") != "${DS_PROMETHEUS}":
        bad(f"dashboard panel '{title}': data source is not ${{DS_PROMETHEUS}}")
    g = p.get("gridPos", {})
    if g.get("x", 0) + g.get("w", 0) > 24:
        bad(f"dashboard panel '{title}': wider than the grid")
    for x in range(g.get("x", 0), g.get("x", 0) + g.get("w", 0)):
        for y in range(g.get("y", 0), g.get("y", 0) + g.get("h", 0)):
            if (x, y) in cells:
                bad(f"dashboard panels '{cells[(x, y)]}' and '{title}' overlap")
                break
            cells[(x, y)] = title
    if not p.get("targets"):
        bad(f"dashboard panel '{title}': no queries")
    for t in p.get("targets", []):
        if t.get("datasource", {}).get("uid") != "${DS_PROMETHEUS}":
            bad(f"dashboard panel '{title}': a target's data source is not ${{DS_PROMETHEUS}}")
        expr = t.get("expr", "")
        check_expr(f"dashboard panel '{title}'", expr, {"$__rate_interval", "$__range"})
        exprs.append(expr)
        if p.get("type") == "heatmap" and (t.get("format") != "heatmap" or ("by (le)" not in expr and not queries_native(expr))):
            bad(f"dashboard panel '{title}': heatmap target needs format heatmap and sum by (le) (or a native histogram)")
want_families = ["regmeter_upload_session_duration_seconds_bucket", "regmeter_blob_throughput_bytes_per_second_bucket",
                 "regmeter_image_pushes_total", "regmeter_image_pulls_total", "registry_http_in_flight_requests",
                 "regmeter_auth_challenges_total", "regmeter_upstream_header_seconds_bucket",
                 'registry_http_requests_total{code=~"5.."}',
                 'histogram_quantile(0.95, sum by (le) (rate(regmeter_upload_session_duration_seconds_bucket{outcome="completed"}[$__rate_interval])))',
                 # issue 16: whole image pulls beside the upload heatmap, client families
                 "sum by (le) (increase(regmeter_image_pull_duration_seconds_bucket[",
                 "sum by (client) (rate(regmeter_client_requests_total[",
                 "sum by (client) (rate(regmeter_client_errors_total[",]
for w in want_families:
    if not any(w in e for e in exprs):
        bad(f"dashboard: no panel queries {w}")
for direction in ("upload", "download"):
    if not any(f'direction="{direction}"' in e and "throughput" in e for e in exprs):
        bad(f"dashboard: no throughput heatmap for direction={direction}")
with open(os.path.join(os.path.dirname(cmdlines_out), "dashboard-exprs.json"), "w") as f:
    json.dump(exprs, f)
print(f"dashboard ok: {len(panels)} panels, {len(exprs)} queries")

# ---- alerts: names, for, severity, annotations, metric names
alerts = one("prometheus/alerts.yml")
rules = [r for g in alerts.get("groups", []) for r in g.get("rules", [])]
for r in rules:
    name = r.get("alert") or r.get("record")
    for key in ("for",):
        if "alert" in r and key not in r:
            bad(f"alert {name}: no '{key}:'")
    if "alert" in r:
        if r.get("labels", {}).get("severity") not in ("info", "warning", "critical"):
            bad(f"alert {name}: severity label missing or unusual")
        if not {"summary", "description"} <= set(r.get("annotations", {})):
            bad(f"alert {name}: needs summary and description annotations")
    check_expr(f"alert {name}", r.get("expr", ""), None)
alert_exprs = " ".join(r.get("expr", "") for r in rules)
for needle, what in [('handler=~"blob_upload|blob_upload_chunk"', "upload error ratio"),
                     ("regmeter_upload_session_duration_seconds_bucket", "layer push time"),
                     ("502|504", "upstream down (502/504)"), ("up{", "target down"),
                     ('outcome="abandoned"', "abandoned sessions"),
                     ("regmeter_tls_handshake_errors_total", "TLS handshake errors")]:
    if needle not in alert_exprs:
        bad(f"alerts.yml: no rule for {what} ({needle})")
print(f"alerts ok: {len(rules)} rules")

# ---- the compose Prometheus has the features the first panel and the exemplars need
compose_prom = (one("docker-compose.yml").get("services", {}).get("prometheus") or {})
if "--enable-feature=native-histograms,exemplar-storage" not in [str(a) for a in compose_prom.get("command") or []]:
    bad("docker-compose.yml: prometheus lacks --enable-feature=native-histograms,exemplar-storage")
for flag in ("--enable-feature=native-histograms", "exemplar-storage"):
    if flag not in open(os.path.join(ex, "prometheus", "prometheus.yml")).read():
        bad(f"prometheus/prometheus.yml does not show {flag}")

# ---- prometheus.yml <-> compose
prom = one("prometheus/prometheus.yml")
if prom.get("global", {}).get("scrape_interval") != "15s":
    bad("prometheus.yml: scrape_interval is not 15s")
targets = [t for sc in prom.get("scrape_configs", []) for st in sc.get("static_configs", []) for t in st.get("targets", [])]
compose = one("docker-compose.yml")
services = compose.get("services", {})
for s in ("registry", "regmeter", "prometheus", "grafana"):
    if s not in services:
        bad(f"docker-compose.yml: no service {s}")
rm = services.get("regmeter", {})
build = rm.get("build", {})
if isinstance(build, dict):
    ctx = os.path.normpath(os.path.join(ex, build.get("context", ".")))
    if not os.path.isfile(os.path.join(ctx, build.get("dockerfile", "Dockerfile"))):
        bad(f"docker-compose.yml: regmeter build {build} has no Dockerfile")
def flag_value(argv, flag):
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None
compose_cmd = [str(a) for a in (rm.get("command") or [])]
ml = flag_value(compose_cmd, "--metrics-listen") or "127.0.0.1:9180"
if f"regmeter:{ml.rsplit(':', 1)[1]}" not in targets:
    bad(f"prometheus.yml targets {targets} do not include regmeter:{ml.rsplit(':', 1)[1]} (compose --metrics-listen {ml})")
if ml.startswith("127."):
    bad("docker-compose.yml: --metrics-listen on loopback cannot be scraped from the prometheus container")
mounts = {}
for sname, svc in services.items():
    for v in svc.get("volumes", []):
        src, dst = v.split(":")[0], v.split(":")[1]
        if src.startswith((".", "/")):
            if not os.path.exists(os.path.normpath(os.path.join(ex, src))):
                bad(f"docker-compose.yml: {sname} mounts {src}, which does not exist")
            mounts[dst] = os.path.normpath(os.path.join(ex, src))
        elif src not in (compose.get("volumes") or {}):
            bad(f"docker-compose.yml: {sname} uses undeclared volume {src}")
prom_cmd = " ".join(services.get("prometheus", {}).get("command", []))
m = re.search(r"--config\.file=(\S+)", prom_cmd)
cfg_dir = os.path.dirname(m.group(1)) if m else "/etc/prometheus"
if mounts.get(cfg_dir) != os.path.join(ex, "prometheus"):
    bad(f"docker-compose.yml: prometheus config dir {cfg_dir} is not examples/prometheus")

# ---- Grafana provisioning <-> compose
prov_ds = one("grafana/provisioning/datasources/prometheus.yml")
dss = prov_ds.get("datasources", [])
if prov_ds.get("apiVersion") != 1 or not any(d.get("type") == "prometheus" for d in dss):
    bad("grafana datasource provisioning: apiVersion 1 with a prometheus data source expected")
for d in dss:
    host = re.sub(r"^https?://", "", d.get("url", "")).split(":")[0]
    if host not in services:
        bad(f"grafana datasource url {d.get('url')} is not a compose service")
prov_db = one("grafana/provisioning/dashboards/regmeter.yml")
paths = [p.get("options", {}).get("path") for p in prov_db.get("providers", [])]
if prov_db.get("apiVersion") != 1 or not paths:
    bad("grafana dashboard provisioning: apiVersion 1 with a file provider expected")
graf_prov = [dst for dst, src in mounts.items() if src == os.path.join(ex, "grafana", "provisioning")]
if graf_prov != ["/etc/grafana/provisioning"]:
    bad(f"docker-compose.yml: grafana provisioning mounted at {graf_prov}")
dash_dst = [dst for dst, src in mounts.items() if src == dash_path]
if not dash_dst or not any(os.path.dirname(d) in paths for d in dash_dst):
    bad(f"docker-compose.yml: the dashboard is mounted at {dash_dst}, provider paths are {paths}")
print("compose + provisioning ok")

# ---- Dockerfile
def dockerfile_stages(path):
    text = open(path).read().replace("\\\n", " ")
    stages, cur = [], None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, rest = line.partition(" ")
        instr = instr.upper()
        if instr not in {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
                         "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}:
            bad(f"Dockerfile: unknown instruction {instr}")
        if instr == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
            cur = {"image": m.group(1), "name": m.group(2), "lines": []}
            stages.append(cur)
        elif cur is None and instr != "ARG":
            bad("Dockerfile: an instruction before FROM")
        else:
            cur and cur["lines"].append((instr, rest))
    return stages

dockerfile = os.path.join(ex, "Dockerfile")
stages = dockerfile_stages(dockerfile)
if len(stages) < 2 or not all(s["image"].startswith("debian:12") for s in stages):
    bad("Dockerfile: want a multi-stage build on debian:12 images")
names = {s["name"] for s in stages if s["name"]}
def apt_packages(stage):
    pk = []
    for instr, rest in stage["lines"]:
        if instr == "RUN":
            for part in re.split(r"&&|;", rest):
                w = part.split()
                if "apt-get" in w and "install" in w:
                    pk += [x for x in w[w.index("install") + 1:] if not x.startswith("-")]
    return pk
apt_ok = subprocess.run(["apt-cache", "show", "libc6"], capture_output=True).returncode == 0
all_pk = sorted({p for s in stages for p in apt_packages(s)})
if apt_ok and all_pk:
    shown = subprocess.run(["apt-cache", "show", "--no-all-versions"] + all_pk, capture_output=True, text=True).stdout
    found = set(re.findall(r"^Package: (\S+)", shown, re.M))
    for p in all_pk:
        if p not in found:
            bad(f"Dockerfile: package {p} is not in this Debian's package index")
for s in stages:
    for instr, rest in s["lines"]:
        if instr == "COPY":
            args = rest.split()
            frm = [a for a in args if a.startswith("--from=")]
            if frm:
                if frm[0][7:] not in names:
                    bad(f"Dockerfile: COPY --from={frm[0][7:]}: no such stage")
            else:
                for src in [a for a in args if not a.startswith("--")][:-1]:
                    if not os.path.exists(os.path.join(root, src)):
                        bad(f"Dockerfile: COPY source {src} does not exist in the repository")
if not all_pk:
    bad("Dockerfile: no apt-get install found, so no package name was checked")
if not apt_ok:
    bad("no apt package index (run apt-get update): the Dockerfile's package names cannot be checked")

_owner_cache = {}
def variants(path):
    v = [path, os.path.realpath(path)]
    v.append(path[4:] if path.startswith("/usr/") else "/usr" + path)
    return list(dict.fromkeys(v))
def prime_owners(paths):
    """One dpkg -S for every variant of every path (dpkg is slow per call)."""
    cand = sorted({v for p in paths for v in variants(p)})
    if not cand:
        return
    out = subprocess.run(["dpkg", "-S"] + cand, capture_output=True, text=True).stdout
    for line in out.splitlines():
        pk, _, path = line.partition(": ")
        _owner_cache[path.strip()] = pk.split(",")[0].split(":")[0].strip()
def owning_package(path):
    for v in variants(path):
        if v in _owner_cache:
            return _owner_cache[v]
    return None

build_pk = set(apt_packages(stages[0])) if stages else set()
run_pk = set(apt_packages(stages[-1])) if stages else set()
# Build stage: every pkg-config dependency() of meson.build, every find_library header.
meson_text = "".join(open(p).read() for p in (os.path.join(root, d, "meson.build") for d in ("", "src", "tests", "bench"))
                     if os.path.exists(p))
regmeter = os.environ.get("REGMETER") or os.path.join(root, "build", "src", "regmeter")
ldd = subprocess.run(["ldd", regmeter], capture_output=True, text=True).stdout
pc_paths = {}
for dep in sorted(set(re.findall(r"dependency\('([^']+)'", meson_text)) - {"threads"}):
    r = subprocess.run(["pkg-config", "--path", dep], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"note: pkg-config does not know {dep} here; not checked")
        continue
    pc_paths[dep] = r.stdout.strip()
headers = sorted(set(re.findall(r"has_headers\s*:\s*\['([^']+)'", meson_text)))
prime_owners(list(pc_paths.values()) + ["/usr/include/" + h for h in headers] + re.findall(r"=>\s+(/\S+)", ldd))
for dep, pc in pc_paths.items():
    pkg = owning_package(pc)
    if pkg and pkg not in build_pk:
        bad(f"Dockerfile build stage lacks {pkg} (meson dependency '{dep}')")
for hdr in headers:
    pkg = owning_package("/usr/include/" + hdr)
    if pkg and pkg not in build_pk:
        bad(f"Dockerfile build stage lacks {pkg} (header {hdr})")
# Runtime stage: every shared library the binary links against.
if "not found" in ldd:
    bad(f"ldd {regmeter}: a library is not found:\n{ldd}")
BASE = {"libc6", "libgcc-s1", "libstdc++6"}   # in every Debian image (apt needs them)
for lib in re.findall(r"=>\s+(/\S+)", ldd):
    # A sanitized test build (tests/sanitize.sh) links the sanitizer
    # runtimes; the image builds a release binary without them.
    if re.match(r"lib(asan|ubsan|lsan|tsan)\.so", os.path.basename(lib)):
        continue
    pkg = owning_package(lib)
    if pkg is None:
        bad(f"Dockerfile: cannot tell which package ships {lib}")
    elif pkg not in BASE and pkg not in run_pk:
        bad(f"Dockerfile runtime stage lacks {pkg} (the binary links {os.path.basename(lib)})")
if "ca-certificates" not in run_pk:
    bad("Dockerfile runtime stage lacks ca-certificates (https upstreams)")
entry = cmd = []
for instr, rest in stages[-1]["lines"] if stages else []:
    if instr == "ENTRYPOINT":
        entry = json.loads(rest)
    if instr == "CMD":
        cmd = json.loads(rest)
copied = [rest.split()[-1] for instr, rest in (stages[-1]["lines"] if stages else []) if instr == "COPY"]
if not entry or entry[0] not in copied:
    bad(f"Dockerfile: ENTRYPOINT {entry} is not the copied binary ({copied})")
print(f"Dockerfile ok: {len(stages)} stages, runtime packages {sorted(run_pk)}")

# ---- Kubernetes manifests
kdocs = []
for path in sorted(glob.glob(os.path.join(ex, "kubernetes", "*.y*ml"))):
    for d in docs.get(path, []):
        kdocs.append((rel(path), d))
        for key in ("apiVersion", "kind"):
            if key not in d:
                bad(f"{rel(path)}: a document without {key}")
        if not d.get("metadata", {}).get("name"):
            bad(f"{rel(path)}: a {d.get('kind')} without metadata.name")
def of_kind(k): return [(p, d) for p, d in kdocs if d.get("kind") == k]
configmaps = {d["metadata"]["name"]: d.get("data", {}) for _, d in of_kind("ConfigMap")}
pods = []   # (file, deployment name, pod labels, containers, pod spec)
kinds = {d.get("kind") for _, d in kdocs}
for want in ("Deployment", "Service", "ServiceMonitor", "ConfigMap"):
    if want not in kinds:
        bad(f"examples/kubernetes: no {want}")
if not any(d.get("spec", {}).get("replicas") == 3 for _, d in of_kind("Deployment")):
    bad("examples/kubernetes: no Deployment of 3 replicas")
k8s_cmdlines = []

def cpu_cores(q):
    q = str(q)
    return math.ceil(int(q[:-1]) / 1000) if q.endswith("m") else math.ceil(float(q))

for path, d in of_kind("Deployment"):
    name = d["metadata"]["name"]
    spec = d.get("spec", {})
    tmpl = spec.get("template", {})
    labels = tmpl.get("metadata", {}).get("labels", {})
    sel = spec.get("selector", {}).get("matchLabels", {})
    if not sel or any(labels.get(k) != v for k, v in sel.items()):
        bad(f"{path}: Deployment {name} selector {sel} does not match its pod labels {labels}")
    pspec = tmpl.get("spec", {})
    containers = pspec.get("containers", [])
    pods.append((path, name, labels, containers, pspec))
    vols = {v["name"]: v for v in pspec.get("volumes", [])}
    for c in containers:
        cname = f"{path}: {name}/{c.get('name')}"
        if not c.get("image"):
            bad(f"{cname}: no image")
        if "limits" not in c.get("resources", {}):
            bad(f"{cname}: no resource limits")
        ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
        for probe in ("readinessProbe", "livenessProbe"):
            hp = c.get(probe, {}).get("httpGet")
            if hp and hp.get("port") not in ports and hp.get("port") not in ports.values():
                bad(f"{cname}: {probe} port {hp.get('port')} is not a container port")
        for vm in c.get("volumeMounts", []):
            if vm["name"] not in vols:
                bad(f"{cname}: mounts undeclared volume {vm['name']}")
        for v in vols.values():
            if "configMap" in v and v["configMap"]["name"] not in configmaps:
                bad(f"{path}: volume {v['name']} uses missing ConfigMap {v['configMap']['name']}")
        env = {}
        for ef in c.get("envFrom", []):
            cm = ef.get("configMapRef", {}).get("name")
            if cm not in configmaps:
                bad(f"{cname}: envFrom missing ConfigMap {cm}")
            env.update(configmaps.get(cm, {}))
        for e in c.get("env", []):
            if "value" in e:
                env[e["name"]] = str(e["value"])
            elif e.get("valueFrom", {}).get("resourceFieldRef", {}).get("resource") == "limits.cpu":
                env[e["name"]] = str(cpu_cores(c.get("resources", {}).get("limits", {}).get("cpu", "1")))
            elif e.get("valueFrom", {}).get("configMapKeyRef"):
                ref = e["valueFrom"]["configMapKeyRef"]
                env[e["name"]] = configmaps.get(ref["name"], {}).get(ref["key"], "")
        if not str(c.get("image", "")).startswith("regmeter"):
            continue
        argv = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
        def expand(a):
            def sub(m):
                if m.group(1) not in env:
                    bad(f"{cname}: $({m.group(1)}) is not defined in env/envFrom")
                return env.get(m.group(1), "")
            return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", sub, a)
        argv = [expand(a) for a in argv]
        entry = {"source": f"{path} ({name}/{c['name']})", "argv": argv}
        # Secret volumes (TLS certificates): a file under one must be a key
        # of a kubernetes.io/tls Secret; the test writes a certificate and key
        # in a directory of its own and points the paths there.
        secret_dirs = {}
        for vm in c.get("volumeMounts", []):
            sec = vols.get(vm["name"], {}).get("secret")
            if sec:
                secret_dirs[vm["mountPath"].rstrip("/")] = os.path.join(
                    os.path.dirname(cmdlines_out), "secret-" + sec.get("secretName", vm["name"]))
        def secret_paths(text):
            for mount, local in secret_dirs.items():
                for m in re.finditer(re.escape(mount) + r"/([A-Za-z0-9._-]+)", text):
                    if m.group(1) not in ("tls.crt", "tls.key"):
                        bad(f"{cname}: {mount}/{m.group(1)} is not a key of a kubernetes.io/tls Secret (tls.crt, tls.key)")
                text = text.replace(mount + "/", local + "/")
            return text
        if secret_dirs:
            entry["secret_dirs"] = sorted(set(secret_dirs.values()))
            entry["argv"] = argv = [secret_paths(a) for a in argv]
        # --config PATH: the file comes from a ConfigMap volume; write it out
        # and point the flag at the copy.
        cfg = {}
        cfg_path = flag_value(argv, "--config")
        if cfg_path:
            content = None
            for vm in c.get("volumeMounts", []):
                if os.path.dirname(cfg_path) == vm["mountPath"].rstrip("/"):
                    cm = vols.get(vm["name"], {}).get("configMap", {})
                    key = os.path.basename(cfg_path)
                    for it in cm.get("items", []):
                        if it.get("path") == key:
                            key = it["key"]
                    content = configmaps.get(cm.get("name"), {}).get(key)
            if content is None:
                bad(f"{cname}: --config {cfg_path} is not a file of a mounted ConfigMap")
            else:
                copy = os.path.join(os.path.dirname(cmdlines_out), f"k8s-{len(k8s_cmdlines)}-{os.path.basename(cfg_path)}")
                content = secret_paths(content)
                open(copy, "w").write(content)
                entry["config_file"] = copy
                entry["argv"] = argv = [f"--config={copy}" if a.startswith("--config=") else (copy if a == cfg_path else a)
                                        for a in argv]
                try:
                    cfg = {str(k): str(v) for k, v in (yaml.safe_load(content) or {}).items()}
                except (yaml.YAMLError, AttributeError) as e:
                    bad(f"{cname}: config file {cfg_path} is not a YAML mapping: {e}")
        k8s_cmdlines.append(entry)
        def opt(name, default):
            return flag_value(argv, "--" + name) or cfg.get(name) or default
        ml = opt("metrics-listen", "127.0.0.1:9180")
        if ml.startswith("127."):
            bad(f"{cname}: --metrics-listen {ml} cannot be probed by the kubelet or scraped")
        mport = int(ml.rsplit(":", 1)[1])
        if ports.get("metrics") != mport:
            bad(f"{cname}: port 'metrics' is {ports.get('metrics')}, --metrics-listen says {mport}")
        entry["pod_labels"] = labels
        entry["trusts_forwarded"] = "--trust-forwarded-headers" in argv or cfg.get("trust-forwarded-headers") in ("True", "true")
        if opt("tls-cert", "") or opt("tls-key", ""):
            entry["scheme"] = "https"
            if not secret_dirs:
                bad(f"{cname}: --tls-cert/--tls-key without a Secret volume to read them from")
        lport = int(opt("listen", "0.0.0.0:5080").rsplit(":", 1)[1])
        if lport not in ports.values():
            bad(f"{cname}: --listen port {lport} is not a container port")
        grace = float(opt("shutdown-grace", 30))
        pre = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
        pre_s = float(pre[-1]) if pre and pre[-1].replace(".", "").isdigit() else 0
        tgps = pspec.get("terminationGracePeriodSeconds", 30)
        if tgps <= grace + pre_s:
            bad(f"{cname}: terminationGracePeriodSeconds {tgps} <= --shutdown-grace {grace} + preStop {pre_s}")
        up = opt("upstream", "")
        if not re.match(r"https?://[^/]+$", up):
            bad(f"{cname}: --upstream {up!r} is not scheme://host:port")

services_k = {}
for path, d in of_kind("Service"):
    name = d["metadata"]["name"]
    sel = d.get("spec", {}).get("selector", {})
    match = [p for p in pods if all(p[2].get(k) == v for k, v in sel.items())]
    if not sel or not match:
        bad(f"{path}: Service {name} selects no pods of the examples ({sel})")
        continue
    names_ = {p.get("name") for c in match[0][3] for p in c.get("ports", [])}
    for p in d.get("spec", {}).get("ports", []):
        if isinstance(p.get("targetPort"), str) and p["targetPort"] not in names_:
            bad(f"{path}: Service {name} targetPort {p['targetPort']} is not a container port name")
    services_k[name] = (d.get("metadata", {}).get("labels", {}), {p.get("name") for p in d["spec"].get("ports", [])})
for path, d in of_kind("ServiceMonitor"):
    name = d["metadata"]["name"]
    sel = d.get("spec", {}).get("selector", {}).get("matchLabels", {})
    hits = [s for s, (labels, _) in services_k.items() if all(labels.get(k) == v for k, v in sel.items())]
    if not hits:
        bad(f"{path}: ServiceMonitor {name} selects no Service")
    for ep in d.get("spec", {}).get("endpoints", []):
        for s in hits:
            if ep.get("port") not in services_k[s][1]:
                bad(f"{path}: ServiceMonitor {name} port {ep.get('port')} is not a port of Service {s}")
        job = next((r.get("replacement") for r in ep.get("relabelings", []) if r.get("targetLabel") == "job"), None)
        for s in hits:
            if "regmeter" not in (job or s):
                bad(f"{path}: ServiceMonitor {name} gives job {job or s}, which RegmeterDown (job=~.*regmeter.*) misses")
# The two variants: TLS from a Secret, and an Ingress in front of regmeter
# with --trust-forwarded-headers (the Ingress's backend Service selects
# those Pods, on a port they have).
if not any(e.get("scheme") == "https" and e.get("secret_dirs") for e in k8s_cmdlines):
    bad("examples/kubernetes: no regmeter with --tls-cert/--tls-key from a Secret")
ingresses = of_kind("Ingress")
if not ingresses:
    bad("examples/kubernetes: no Ingress")
svc_docs = {d["metadata"]["name"]: d for _, d in of_kind("Service")}
for path, d in ingresses:
    for rule in d.get("spec", {}).get("rules", []):
        for hp in rule.get("http", {}).get("paths", []):
            be = hp.get("backend", {}).get("service", {})
            svc = svc_docs.get(be.get("name"))
            if not svc:
                bad(f"{path}: Ingress backend Service {be.get('name')} is not in the examples")
                continue
            if be.get("port", {}).get("name") not in {p.get("name") for p in svc["spec"].get("ports", [])}:
                bad(f"{path}: Ingress backend port {be.get('port')} is not a port of Service {be.get('name')}")
            sel = svc["spec"].get("selector", {})
            behind = [e for e in k8s_cmdlines if all(e["pod_labels"].get(k) == v for k, v in sel.items())]
            if not behind or not all(e["trusts_forwarded"] for e in behind):
                bad(f"{path}: the regmeter behind Ingress {d['metadata']['name']} does not set trust-forwarded-headers")
print(f"kubernetes ok: {len(kdocs)} objects")

# ---- systemd ExecStart
unit = open(os.path.join(ex, "systemd", "regmeter.service")).read().replace("\\\n", " ")
execs = [l.split("=", 1)[1] for l in unit.splitlines() if l.startswith("ExecStart=")]
if len(execs) != 1:
    bad("regmeter.service: want exactly one ExecStart")
unit_cmd = shlex.split(execs[0]) if execs else []
for key in ("DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict", "ExecReload=/bin/kill -HUP $MAINPID"):
    if key not in unit.splitlines():
        bad(f"regmeter.service: no {key}")
grace = float(flag_value(unit_cmd, "--shutdown-grace") or 30)
m = re.search(r"^TimeoutStopSec=(\d+)", unit, re.M)
if not m or int(m.group(1)) <= grace:
    bad("regmeter.service: TimeoutStopSec must exceed --shutdown-grace")

# ---- all command lines
cmdlines = [{"source": "examples/systemd/regmeter.service ExecStart", "argv": unit_cmd[1:]},
            {"source": "examples/docker-compose.yml regmeter command", "argv": compose_cmd},
            {"source": "examples/Dockerfile CMD", "argv": cmd}] + k8s_cmdlines
if len(k8s_cmdlines) < 2:
    bad(f"examples/kubernetes: expected regmeter in the sidecar and the Deployment, found {len(k8s_cmdlines)}")
json.dump(cmdlines, open(cmdlines_out, "w"), indent=1)

# ---- docs mention only flags regmeter has
helptext = open(help_file).read()
known_flags = set(re.findall(r"(--[a-z][a-z0-9-]*)", helptext))
for c in cmdlines:
    for a in c["argv"]:
        if a.startswith("--") and a.split("=")[0] not in known_flags:
            bad(f"{c['source']}: flag {a.split('=')[0]} is not in regmeter --help")
    if c.get("config_file"):
        for k in (yaml.safe_load(open(c["config_file"])) or {}):
            if "--" + str(k) not in known_flags:
                bad(f"{c['source']}: config key {k} is not a flag in regmeter --help")
for doc in ("getting-started.md", "operations.md", "scaling.md", "registries.md"):
    path = os.path.join(root, "docs", doc)
    if not os.path.exists(path):
        bad(f"docs/{doc} is missing")
        continue
    text = open(path).read()
    # Flags of other tools the docs legitimately show; everything else that
    # looks like a flag must be one of regmeter's.
    OTHER_TOOLS = {"--dest-tls-verify", "--src-tls-verify", "--tls-verify", "--dest-cert-dir", "--src-cert-dir",
                   "--tlscacert", "--plain-http", "--insecure-registry", "--insecure-policy", "--deploy-hook",
                   "--buildtype", "--build", "--flag", "--raw", "--now", "--reconfigure", "--wipe",
                   "--kill-whom", "--signal", "--enable-feature"}  # the last: Prometheus's
    for line in text.splitlines():
        for f in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)(?![\w.])", line):
            if f not in known_flags and f not in OTHER_TOOLS:
                bad(f"docs/{doc}: mentions {f}, which regmeter --help does not list: {line.strip()[:120]}")
    missing = sorted(f for f in known_flags if not re.search(r"(?<![\w-])" + re.escape(f) + r"(?![\w-])", text)) \
        if doc == "operations.md" else []
    if missing:
        bad(f"docs/operations.md does not mention {' '.join(missing)} (flags in --help)")

for p in problems:
    print("PROBLEM: " + p)
print(f"{len(problems)} problem(s)")
sys.exit(1 if problems else 0)
PY
cat "$E2E_TMP/structure.log" >&2

# ---------------------------------------------------------------- linters
# Required, not optional: a check that quietly does not run passes whatever
# the examples say (tests/run.sh installs yamllint and docker-compose).
command -v yamllint >/dev/null || fail "yamllint missing (apt-get install yamllint)"
# Without --strict, yamllint exits non-zero only for errors (or when it cannot run).
rc=0
find "$EX" -name '*.yml' -o -name '*.yaml' | sort | xargs yamllint -f parsable \
    -d '{extends: relaxed, rules: {line-length: disable}}' >"$E2E_TMP/yamllint.log" 2>&1 || rc=$?
((rc == 0)) || { cat "$E2E_TMP/yamllint.log" >&2; fail "yamllint errors in examples/ (exit $rc)"; }
log "yamllint: no errors"

command -v docker-compose >/dev/null || fail "docker-compose missing (apt-get install docker-compose)"
docker-compose -f "$EX/docker-compose.yml" config -q >"$E2E_TMP/compose.log" 2>&1 \
    || { cat "$E2E_TMP/compose.log" >&2; fail "docker-compose config rejects examples/docker-compose.yml"; }
log "docker-compose config: ok"

# ---------------------------------------------------------------- systemd
command -v systemd-analyze >/dev/null || fail "systemd-analyze missing (apt-get install systemd)"
# verify wants ExecStart's binary to exist: point it at the one under test.
sed "s#^ExecStart=/usr/local/bin/regmeter#ExecStart=$REGMETER#" "$EX/systemd/regmeter.service" \
    >"$E2E_TMP/regmeter.service"
grep -q "^ExecStart=$REGMETER" "$E2E_TMP/regmeter.service" \
    || fail "regmeter.service: ExecStart does not start with /usr/local/bin/regmeter"
# verify runs `man` for Documentation=man:regmeter(1): the page meson builds
# (dist/meson.build), in a man directory of its own.
[[ -s "$BUILD_ROOT/dist/regmeter.1" ]] || fail "no man page at $BUILD_ROOT/dist/regmeter.1 (meson compile builds it)"
mkdir -p "$E2E_TMP/man/man1"
cp "$BUILD_ROOT/dist/regmeter.1" "$E2E_TMP/man/man1/"
MANPATH=$E2E_TMP/man systemd-analyze verify "$E2E_TMP/regmeter.service" >"$E2E_TMP/verify.log" 2>&1 \
    || { cat "$E2E_TMP/verify.log" >&2; fail "systemd-analyze verify examples/systemd/regmeter.service"; }
if [[ -s "$E2E_TMP/verify.log" ]]; then
    cat "$E2E_TMP/verify.log" >&2
    fail "systemd-analyze verify printed warnings for regmeter.service"
fi
log "systemd-analyze verify: ok"
if systemd-analyze security --offline=true "$E2E_TMP/regmeter.service" >"$E2E_TMP/security.log" 2>&1; then
    score=$(sed -n 's/.*Overall exposure level for regmeter.service: \([0-9.]*\).*/\1/p' "$E2E_TMP/security.log")
    [[ -n "$score" ]] || { cat "$E2E_TMP/security.log" >&2; fail "no exposure score from systemd-analyze security"; }
    awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' \
        || { tail -n 40 "$E2E_TMP/security.log" >&2; fail "regmeter.service exposure $score > 2.0"; }
    log "systemd-analyze security: exposure $score"
else
    cat "$E2E_TMP/security.log" >&2
    fail "systemd-analyze security --offline failed on regmeter.service"
fi

# ---------------------------------------------------------------- command lines run
start_registry
count=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' "$E2E_TMP/cmdlines.json")
((count >= 5)) || fail "only $count regmeter command lines found in the examples"
for ((i = 0; i < count; i++)); do
    listen_port=$(free_port)
    metrics_port=$(free_port)
    # Prints: the source, the config file ("-" if none), where the access log
    # goes (stdout, off, or the temp file it was moved to), then the argv.
    mapfile -t argv < <(python3 - "$E2E_TMP/cmdlines.json" "$i" "$listen_port" "$metrics_port" "$REGISTRY_URL" \
        "$E2E_TMP/access-$i.log" <<'PY'
import json, sys, yaml
cmdlines, i, lport, mport, upstream, access_tmp = sys.argv[1], int(sys.argv[2]), *sys.argv[3:]
entry = json.load(open(cmdlines))[i]
cfg = {}
if entry.get("config_file"):
    cfg = {str(k): str(v) for k, v in (yaml.safe_load(open(entry["config_file"])) or {}).items()}
argv, out, j = entry["argv"], [], 0
override = {"--listen": "127.0.0.1:" + lport, "--metrics-listen": "127.0.0.1:" + mport, "--upstream": upstream}
access = cfg.get("access-log", "stdout")
NO_VALUE = {"--upstream-insecure"}
seen = set()
while j < len(argv):
    a = argv[j]
    flag, eq, val = a.partition("=")
    if not eq and flag not in NO_VALUE and flag.startswith("--"):
        val = argv[j + 1] if j + 1 < len(argv) else ""
        j += 1
    j += 1
    if flag in override:
        val = override[flag]
        seen.add(flag)
    if flag == "--access-log":
        access = val
        continue
    out += [flag] if flag in NO_VALUE else [flag, val]
for flag, val in override.items():
    if flag not in seen:
        out += [flag, val]
if access not in ("stdout", "off"):
    access = access_tmp        # a file in the examples: write it here instead
out += ["--access-log", access]
print(entry["source"])
print(entry.get("config_file") or "-")
print(access)
print(entry.get("scheme", "http"))
print(" ".join(entry.get("secret_dirs", [])) or "-")
print("\n".join(out))
PY
)
    source=${argv[0]}
    config_file=${argv[1]}
    access=${argv[2]}
    scheme=${argv[3]}
    secret_dirs=${argv[4]}
    argv=("${argv[@]:5}")
    # A kubernetes.io/tls Secret's files: a self-signed certificate for 127.0.0.1.
    if [[ "$secret_dirs" != - ]]; then
        for dir in $secret_dirs; do
            mkdir -p "$dir"
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
                -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
                -keyout "$dir/tls.key" -out "$dir/tls.crt" >"$dir/openssl.log" 2>&1 \
                || { cat "$dir/openssl.log" >&2; fail "$source: openssl could not make the Secret's certificate"; }
        done
    fi
    if [[ "$config_file" != - ]]; then
        # The same settings through --check-config (which takes the file in
        # place of --config).
        check_args=()
        skip_next=0
        for a in "${argv[@]}"; do
            if ((skip_next)); then skip_next=0; continue; fi
            case $a in
                --config=*) ;;
                --config) skip_next=1 ;;
                *) check_args+=("$a") ;;
            esac
        done
        out=$("$REGMETER" --check-config "$config_file" "${check_args[@]}" 2>&1) \
            || fail "$source: regmeter --check-config rejects it: $out"
        assert_contains "OK" "$out" "$source: --check-config"
    fi
    log "running the command line of $source: regmeter ${argv[*]}"
    rlog=$E2E_TMP/cmdline-$i.log
    "$REGMETER" "${argv[@]}" >"$rlog.stdout" 2>"$rlog" &
    pid=$!
    register_pid "$pid"
    register_log "$rlog"
    deadline=$((SECONDS + E2E_WAIT))
    until http_is 200 "http://127.0.0.1:$metrics_port/healthz"; do
        is_running "$pid" || { cat "$rlog" >&2; fail "$source: regmeter exited at start with these flags"; }
        ((SECONDS < deadline)) || fail "$source: /healthz did not answer within ${E2E_WAIT}s"
        sleep 0.1
    done
    assert_eq 200 "$(http_code "$scheme://127.0.0.1:$listen_port/v2/" -A regmeter-examples-test -k)" \
        "$source: GET /v2/ through regmeter ($scheme)"
    assert_contains "registry_http_requests_total" "$(scrape "http://127.0.0.1:$metrics_port/metrics")" \
        "$source: /metrics"
    kill -TERM "$pid"
    for ((t = 0; t < 100; t++)); do
        is_running "$pid" || break
        sleep 0.1
    done
    is_running "$pid" && fail "$source: regmeter still running 10 s after SIGTERM"
    rc=0
    wait "$pid" || rc=$?
    assert_eq 0 "$rc" "$source: exit status after SIGTERM"
    # The access log went where the example says, one JSON line for the GET.
    case $access in
        off) [[ ! -s "$rlog.stdout" ]] || fail "$source: access-log off, yet stdout has: $(head -c 300 "$rlog.stdout")" ;;
        stdout) alog=$rlog.stdout ;;
        *) alog=$access ;;
    esac
    if [[ $access != off ]]; then
        line=$(grep -F regmeter-examples-test "$alog" 2>/dev/null | head -n 1) || true
        [[ -n "$line" ]] || fail "$source: no access log line for the GET in $alog"
        printf '%s' "$line" | python3 -c 'import json, sys
j = json.load(sys.stdin)
assert j["handler"] == "base" and j["status"] == 200, j' \
            || fail "$source: access log line is not the expected JSON: $line"
    fi
done
log "all $count example command lines pass --check-config (when they use a config file), start, proxy, log and stop cleanly"

# ---------------------------------------------------------------- the image's build context
# What the build stage copies is enough for its `meson setup` (a directory
# meson.build reads that is not copied fails the image build): the COPY
# sources, copied to a temp dir as the Dockerfile does, configure.
ctx=$E2E_TMP/docker-context
mkdir -p "$ctx"
while read -r -a words; do
    dest=${words[-1]}
    for src in "${words[@]:1:${#words[@]}-2}"; do
        [[ $dest == ./ ]] && cp -r "$SOURCE_ROOT/$src" "$ctx/" || cp -r "$SOURCE_ROOT/$src" "$ctx/$dest"
    done
done < <(sed -n '/^FROM .* AS build/,/^FROM /p' "$EX/Dockerfile" | grep -E '^COPY ' | grep -v -- '--from=')
[[ -f "$ctx/meson.build" ]] || fail "the Dockerfile's build stage does not copy meson.build"
meson setup "$ctx/build" "$ctx" --buildtype=release >"$E2E_TMP/docker-setup.log" 2>&1 \
    || { tail -n 30 "$E2E_TMP/docker-setup.log" >&2; fail "meson setup fails on what the Dockerfile's build stage copies"; }
log "the Dockerfile's build stage copies enough for meson setup"

# ---------------------------------------------------------------- the image's entry point
# examples/docker-entrypoint.sh: the Dockerfile's CMD without an upstream is
# one line and exit 2; with REGMETER_UPSTREAM it proxies. Run here with the
# binary under test in place of /usr/local/bin/regmeter (no docker needed).
grep -q '^REGMETER=/usr/local/bin/regmeter$' "$EX/docker-entrypoint.sh" \
    || fail "docker-entrypoint.sh does not exec /usr/local/bin/regmeter (the Dockerfile copies the binary there)"
grep -q '^COPY --from=build /build/src/regmeter /usr/local/bin/regmeter$' "$EX/Dockerfile" \
    || fail "the Dockerfile no longer copies the binary to /usr/local/bin/regmeter, where docker-entrypoint.sh execs it"
grep -q '^ENTRYPOINT \["/usr/local/bin/regmeter-entrypoint"\]$' "$EX/Dockerfile" \
    || fail "the Dockerfile's ENTRYPOINT is not /usr/local/bin/regmeter-entrypoint"
sed "s#^REGMETER=/usr/local/bin/regmeter\$#REGMETER=$REGMETER#" "$EX/docker-entrypoint.sh" >"$E2E_TMP/entrypoint.sh"
mapfile -t image_cmd < <(python3 -c 'import json, re, sys
text = open(sys.argv[1]).read()
print("\n".join(json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))))' "$EX/Dockerfile")
((${#image_cmd[@]} > 0)) || fail "no CMD in the Dockerfile"
printf '%s\n' "${image_cmd[@]}" | grep -q -- '--upstream' && fail "the Dockerfile's CMD names an upstream: ${image_cmd[*]}"
rc=0
env -u REGMETER_UPSTREAM sh "$E2E_TMP/entrypoint.sh" "${image_cmd[@]}" >"$E2E_TMP/ep.out" 2>"$E2E_TMP/ep.err" || rc=$?
assert_eq 2 "$rc" "exit status of the image's default command without REGMETER_UPSTREAM"
assert_eq 1 "$(wc -l <"$E2E_TMP/ep.err")" "stderr lines of the image without an upstream: $(cat "$E2E_TMP/ep.err")"
assert_contains "REGMETER_UPSTREAM" "$(cat "$E2E_TMP/ep.err")" "the error names the variable to set"
assert_eq "" "$(cat "$E2E_TMP/ep.out")" "stdout of the image without an upstream"
rc=0
out=$(env -u REGMETER_UPSTREAM sh "$E2E_TMP/entrypoint.sh" --version 2>&1) || rc=$?
assert_eq 0 "$rc" "the image's entry point runs --version without an upstream ($out)"
# With the variable: the CMD's addresses moved to free loopback ports.
ep_port=$(free_port)
ep_metrics=$(free_port)
ep_cmd=()
for a in "${image_cmd[@]}"; do
    case $a in
        0.0.0.0:5080) ep_cmd+=("127.0.0.1:$ep_port") ;;
        0.0.0.0:9180) ep_cmd+=("127.0.0.1:$ep_metrics") ;;
        *) ep_cmd+=("$a") ;;
    esac
done
[[ " ${ep_cmd[*]} " == *" 127.0.0.1:$ep_port "* && " ${ep_cmd[*]} " == *" 127.0.0.1:$ep_metrics "* ]] \
    || fail "the Dockerfile's CMD no longer listens on 0.0.0.0:5080 and 0.0.0.0:9180: ${image_cmd[*]}"
REGMETER_UPSTREAM=$REGISTRY_URL sh "$E2E_TMP/entrypoint.sh" "${ep_cmd[@]}" --access-log off \
    >"$E2E_TMP/ep-run.log" 2>&1 &
ep_pid=$!
register_pid "$ep_pid"
register_log "$E2E_TMP/ep-run.log"
wait_until "$E2E_WAIT" "the image's entry point with REGMETER_UPSTREAM answers /healthz" \
    http_is 200 "http://127.0.0.1:$ep_metrics/healthz"
assert_eq 200 "$(http_code "http://127.0.0.1:$ep_port/v2/")" "GET /v2/ through the image's entry point"
assert_contains "upstream $REGISTRY_URL" "$(cat "$E2E_TMP/ep-run.log")" "the start-up line names REGMETER_UPSTREAM"
kill -TERM "$ep_pid"
log "the image's entry point: no upstream is exit 2 with one line, REGMETER_UPSTREAM proxies"
echo "examples: ok"
