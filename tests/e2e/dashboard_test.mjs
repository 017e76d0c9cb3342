// Browser half of tests/e2e/dashboard.sh: opens regmeter's /dashboard in
// Debian's Chromium (driven by playwright-core, no downloaded browser), checks
// the page's Prometheus parser and delta logic on crafted input, tells the
// shell when the page has its baseline poll, waits for the shell to push
// images through the proxy, then checks what the page drew against the totals
// the shell read from /metrics, and saves screenshots.
//
// MODE=after: a second run, started only once the traffic is over. It opens a
// fresh page and checks that it draws the traffic at once, from regmeter's
// /dashboard/history (the live polls can add nothing: nothing moves).
//
// MODE=off: against a regmeter started with --dashboard-history-window 0: the
// page must say the history is off, keep polling, and log no error.
//
// Environment (all set by dashboard.sh):
//   MODE           live (default), after or off
//   DASH_URL       http://127.0.0.1:PORT/dashboard?interval=1
//   NODE_DEPS      directory holding node_modules/playwright-core
//   CHROMIUM       browser binary (/usr/bin/chromium)
//   PROFILE_DIR    fresh, empty --user-data-dir
//   SYNC_DIR       ready (written here) and pushed (written by the shell)
//   SCREENSHOT     where to save the page's PNG
//   DEADLINE_S     overall budget in seconds
import { createRequire } from "node:module";
import { existsSync, readFileSync, writeFileSync, renameSync } from "node:fs";
import path from "node:path";

const env = (name) => {
  const v = process.env[name];
  if (!v) {
    console.error(`dashboard_test: ${name} is not set`);
    process.exit(2);
  }
  return v;
};
const DASH_URL = env("DASH_URL");
const NODE_DEPS = env("NODE_DEPS");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const PROFILE_DIR = env("PROFILE_DIR");
const SYNC_DIR = env("SYNC_DIR");
const SCREENSHOT = env("SCREENSHOT");
const MODE = process.env.MODE || "live";
const started = Date.now();
const deadline = started + 1000 * Number(process.env.DEADLINE_S || 55);

const require = createRequire(path.join(NODE_DEPS, "package.json"));
const { chromium } = require("playwright-core");

const log = (...a) => console.error(`[dashboard_test +${((Date.now() - started) / 1000).toFixed(1)}s]`, ...a);
const failures = [];
const check = (ok, what) => {
  if (!ok) failures.push(what);
  return ok;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls fn() every 200 ms until it returns a truthy value or `secs` pass.
async function waitFor(what, secs, fn) {
  const until = Math.min(deadline, Date.now() + secs * 1000);
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() >= until) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--disable-dev-shm-usage", "--hide-scrollbars"];

let context;
const consoleErrors = [];
let exitCode = 0;
try {
  context = await chromium.launchPersistentContext(PROFILE_DIR, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 900 },
    timeout: 30000,
  });
  log(`chromium ${context.browser()?.version() ?? "(persistent context)"} started`);
  const page = context.pages()[0] || (await context.newPage());
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") consoleErrors.push(`console.${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => consoleErrors.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => consoleErrors.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on("response", (r) => {
    if (r.status() >= 400) consoleErrors.push(`HTTP ${r.status()} for ${r.url()}`);
  });

  const response = await page.goto(DASH_URL, { waitUntil: "load", timeout: 15000 });
  check(response && response.status() === 200, `GET ${DASH_URL} answered ${response && response.status()}`);
  const csp = response ? (await response.allHeaders())["content-security-policy"] || "" : "";
  check(csp.startsWith("default-src 'none'"), `Content-Security-Policy seen by the browser: [${csp}]`);
  check((await page.title()) === "regmeter dashboard", "page title");
  check(await page.locator("text=last hour").count() > 0, "the page says it shows the last hour");
  const data = () => page.evaluate(() => ({ ...document.body.dataset }));
  let d, expected;
  if (MODE === "off") {
    // ---- --dashboard-history-window 0: the page says the history is off
    // (from the endpoint's "off" answer, not a 404) and keeps polling.
    try {
      d = await waitFor("the page to see that the history is off, and to poll", 15, async () => {
        d = await data();
        return d.history === "off" && Number(d.polls) >= 2 ? d : null;
      });
    } catch (e) {
      check(false, `${e.message}: page data ${JSON.stringify(d)}`);
    }
    const note = await page.evaluate(() => document.getElementById("note").textContent);
    check(note.includes("--dashboard-history-window 0"), `the note says the history is off: [${note}]`);
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    log(`history off: ${JSON.stringify(d)}; screenshot: ${SCREENSHOT}`);
  } else {
    if (MODE === "after") {
      // ---- opened after the traffic: everything must come from the history
      expected = JSON.parse(readFileSync(path.join(SYNC_DIR, "pushed"), "utf8"));
      try {
        d = await waitFor("the page to draw the traffic from history", 15, async () => {
          d = await data();
          return d.history === "loaded" && Number(d.historyIntervals) > 0 && Number(d.heatmapCells) > 0 &&
            Number(d.heatmapTotal) === expected.uploadRequests &&
            Number(d.sessionHeatmapTotal) === expected.endedSessions ? d : null;
        });
      } catch (e) {
        check(false, `${e.message}: expected ${JSON.stringify(expected)}, page data ${JSON.stringify(d)}`);
      }
      if (d) log(`page opened after the traffic: ${JSON.stringify(d)}`);
    } else {

      // ---- the page's parser and delta logic on crafted input
      const selfTest = await page.evaluate(() => {
        const D = window.regmeterDashboard;
        const text = [
          "# HELP registry_http_request_duration_seconds The HTTP request latencies in seconds.",
          "# TYPE registry_http_request_duration_seconds histogram",
          'registry_http_request_duration_seconds_bucket{handler="blob_upload_chunk",method="patch",le="0.005"} 1',
          'registry_http_request_duration_seconds_bucket{handler="blob_upload_chunk",method="patch",le="1.048576e+06"} 3',
          'registry_http_request_duration_seconds_bucket{handler="blob_upload_chunk",method="patch",le="+Inf"} 4',
          'registry_http_request_duration_seconds_bucket{handler="blob_upload_chunk",method="put",le="0.005"} 2',
          'registry_http_request_duration_seconds_bucket{handler="blob_upload_chunk",method="put",le="1.048576e+06"} 2',
          'registry_http_request_duration_seconds_bucket{handler="blob_upload_chunk",method="put",le="+Inf"} 2',
          'registry_http_request_duration_seconds_bucket{handler="blob",method="get",le="+Inf"} 99',
          'weird_total{path="C:\\\\dir\\\\",quote="say \\"hi\\"",nl="a\\nb" , } 1.5e3 1712345678000',
          "# a plain comment",
          "untyped_metric -Inf",
          "nan_metric NaN",
          "this is { not a sample",
          "",
        ].join("\n");
        const p = D.parsePrometheusText(text);
        const weird = p.samples.find((s) => s.name === "weird_total");
        const les = p.samples.filter((s) => s.labels.le).map((s) => s.labels.le);
        // Histogram increase: first poll -> second poll (patch grew, put reset).
        const before = p.samples;
        const after = D.parsePrometheusText([
          'registry_http_request_duration_seconds_bucket{handler="blob_upload_chunk",method="patch",le="0.005"} 2',
          'registry_http_request_duration_seconds_bucket{handler="blob_upload_chunk",method="patch",le="1.048576e+06"} 5',
          'registry_http_request_duration_seconds_bucket{handler="blob_upload_chunk",method="patch",le="+Inf"} 7',
          'registry_http_request_duration_seconds_bucket{handler="blob_upload_chunk",method="put",le="0.005"} 0',
          'registry_http_request_duration_seconds_bucket{handler="blob_upload_chunk",method="put",le="1.048576e+06"} 1',
          'registry_http_request_duration_seconds_bucket{handler="blob_upload_chunk",method="put",le="+Inf"} 1',
          'registry_http_request_duration_seconds_bucket{handler="blob",method="get",le="+Inf"} 150',
        ].join("\n")).samples;
        const inc = D.uploadHistogramIncrease(before, after);
        const counters = D.counterIncreases(
          D.parsePrometheusText('a_total{x="1"} 10\na_total{x="2"} 5').samples,
          D.parsePrometheusText('a_total{x="1"} 4\na_total{x="2"} 8\na_total{x="3"} 2').samples,
          (s) => s.name === "a_total");
        // regmeter's history JSON: buckets parsed as numbers, every known bucket
        // in every point, the partial interval last, times moved onto this clock.
        const hist = D.historyPoints({
          columns: [{ family: "upload_latency", label: "0.005" }, { family: "upload_latency", label: "+Inf" },
            { family: "requests", label: "blob" }, { family: "errors", label: "blob" }, { family: "unknown", label: "x" }],
          intervals: [{ start: 1000, end: 2000, cells: [[0, 2], [2, 5], [3, 1], [4, 9]] }],
          partial: { start: 2000, end: 2500, cells: [[1, 1]] },
        }, 10500);
        // WCAG contrast ratio of the faintest cell colour (1 request next to a
        // column of 1000) against the plot background #0b0d12.
        const luminance = (rgb) => {
          const [r, g, b] = rgb.match(/\d+/g).map((v) => {
            const c = Number(v) / 255;
            return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
          });
          return 0.2126 * r + 0.7152 * g + 0.0722 * b;
        };
        const faintest = (luminance(D.heatColour(1, 1000)) + 0.05) / (luminance("rgb(11,13,18)") + 0.05);
        // Every handler drawn in a style of its own (colour, or colour and dash).
        const styles = new Set(D.HANDLER_ORDER.map((h) => JSON.stringify(D.styleOf(h))));
        return {
          handlerStylesDistinct: styles.size === D.HANDLER_ORDER.length && D.HANDLER_ORDER.length === 9,
          faintCellContrastAtLeast3: faintest >= 3,
          count: p.samples.length, bad: p.bad, type: p.types.registry_http_request_duration_seconds,
          weird: weird && { labels: weird.labels, value: weird.value },
          les, minusInf: p.samples.find((s) => s.name === "untyped_metric")?.value === -Infinity,
          nan: Number.isNaN(p.samples.find((s) => s.name === "nan_metric")?.value),
          inc: [...inc.entries()].map(([le, c]) => [String(le), c]),
          counters: counters.map((c) => [c.labels.x, c.inc]),
          hist: hist.map((q) => [q.t0, q.t1, [...q.heat.entries()].map(([le, c]) => [String(le), c]),
            [...q.requests], [...q.errors]]),
        };
      });
      const want = {
        handlerStylesDistinct: true,
        faintCellContrastAtLeast3: true,  // low-count cells stay visible
        count: 10, bad: 1, type: "histogram",
        weird: { labels: { path: "C:\\dir\\", quote: 'say "hi"', nl: "a\nb" }, value: 1500 },
        les: ["0.005", "1.048576e+06", "+Inf", "0.005", "1.048576e+06", "+Inf", "+Inf"],
        minusInf: true, nan: true,
        // patch: +1 +2 +3 cumulative -> 1, 1, 1; put reset: 0, 1, 1 -> 0, 1, 0. Sum: 1, 2, 1.
        inc: [["0.005", 1], ["1048576", 2], ["Infinity", 1]],
        // x=1 reset (10 -> 4 counts 4), x=2 +3, x=3 new (counts from 0)
        counters: [["1", 4], ["2", 3], ["3", 2]],
        // shifted by 10500 - 2500 = 8000 ms; the unknown family is ignored
        hist: [[9000, 10000, [["0.005", 2], ["Infinity", 0]], [["blob", 5]], [["blob", 1]]],
          [10000, 10500, [["0.005", 0], ["Infinity", 1]], [], []]],
      };
      check(JSON.stringify(selfTest) === JSON.stringify(want),
        `page parser/delta self-test:\n   got  ${JSON.stringify(selfTest)}\n   want ${JSON.stringify(want)}`);

      // ---- baseline poll, then let the shell push
      await waitFor("the first poll", 15, async () => Number((await data()).polls) >= 1);
      writeFileSync(path.join(SYNC_DIR, "ready.tmp"), String(Date.now()));
      renameSync(path.join(SYNC_DIR, "ready.tmp"), path.join(SYNC_DIR, "ready"));
      log("page has its baseline poll; waiting for the pushes");

      const pushedFile = path.join(SYNC_DIR, "pushed");
      await waitFor("the shell's pushes (file 'pushed')", 60, () => existsSync(pushedFile));
      expected = JSON.parse(readFileSync(pushedFile, "utf8"));
      const pushedAt = Date.now();
      log(`pushes done; /metrics says ${JSON.stringify(expected)}`);

      // The page must catch up: a poll after the pushes, >= 3 polls, the same
      // number of upload requests in its heatmap as /metrics counts.
      try {
        d = await waitFor("the page to show every upload request", 15, async () => {
          d = await data();
          return Number(d.polls) >= 3 && Number(d.lastPoll) > pushedAt && Number(d.heatmapCells) > 0 &&
            Number(d.heatmapTotal) === expected.uploadRequests && Number(d.sessionsCompleted) === expected.completedSessions &&
            Number(d.sessionHeatmapTotal) === expected.endedSessions ? d : null;
        });
      } catch (e) {
        check(false, `${e.message}: page data ${JSON.stringify(d)}`);
      }
      if (d) log(`page: ${JSON.stringify(d)}`);

    }

    // ---- pixels: the heatmap's plot area has cells, the rate chart has lines.
    // Each canvas is read once, through a copy made for reading (repeated
    // readbacks of the page's own canvases make Chromium log a warning).
    const pixels = await page.evaluate(() => {
      const isBg = (d, i) => Math.abs(d[i] - 11) + Math.abs(d[i + 1] - 13) + Math.abs(d[i + 2] - 18) < 12;  // #0b0d12
      const isGrid = (d, i) => Math.abs(d[i] - 42) + Math.abs(d[i + 1] - 47) + Math.abs(d[i + 2] - 58) < 12;  // #2a2f3a
      const read = (id) => {
        const c = document.getElementById(id);
        const copy = document.createElement("canvas");
        copy.width = c.width;
        copy.height = c.height;
        const ctx = copy.getContext("2d", { willReadFrequently: true });
        ctx.drawImage(c, 0, 0);
        const [x, y, w, h] = c.dataset.plot.split(",").map(Number);
        const k = c.width / c.clientWidth;
        const d = ctx.getImageData(0, 0, c.width, c.height).data;
        const at = (cx, cy) => 4 * (Math.round(cy * k) * c.width + Math.round(cx * k));
        const lit = (cx, cy) => !isBg(d, at(cx, cy)) && !isGrid(d, at(cx, cy));
        let count = 0;
        for (let cy = y + 2; cy < y + h - 2; cy++) for (let cx = x + 2; cx < x + w - 2; cx++) if (lit(cx, cy)) count++;
        // The rightmost lit cell's centre (CSS px, viewport coordinates), for hovering.
        let centre = null;
        for (let cx = x + w - 3; cx > x + 2 && !centre; cx--) {
          for (let cy = y + 3; cy < y + h - 3; cy++) {
            if (!lit(cx, cy)) continue;
            let left = cx, bottom = cy;
            while (left > x + 2 && lit(left - 1, cy)) left--;
            while (bottom < y + h - 3 && lit(cx, bottom + 1)) bottom++;
            const r = c.getBoundingClientRect();
            centre = { x: r.left + (left + cx) / 2, y: r.top + (cy + bottom) / 2 };
            break;
          }
        }
        return { lit: count, png: copy.toDataURL("image/png"), centre };
      };
      const heat = read("heatmap"), rates = read("rates"), sessions = read("session-heatmap");
      return { heatmap: heat, rates: { lit: rates.lit }, sessions: { lit: sessions.lit } };
    });
    const heatPng = pixels.heatmap.png;
    log(`pixels lit: heatmap ${pixels.heatmap.lit}, session heatmap ${pixels.sessions.lit}, rates ${pixels.rates.lit}`);
    check(pixels.heatmap.lit > 0, "heatmap plot area is blank");
    check(pixels.sessions.lit > 0, "session-duration heatmap plot area is blank");
    check(pixels.rates.lit > 0, "request-rate plot area is blank");
    check(heatPng.length > 1000, "heatmap PNG is suspiciously small");

    // ---- hovering a lit heatmap cell names its interval, bucket and count
    const cell = pixels.heatmap.centre;
    if (check(cell, "no lit heatmap cell to hover")) {
      await page.mouse.move(cell.x - 2, cell.y);
      await page.mouse.move(cell.x, cell.y);
      const tipText = await page.locator("#tip").textContent();
      check(/ [1-9]\d* requests?( |$)/.test(tipText || "") && !(await page.locator("#tip").isHidden()),
        `tooltip over a lit cell: [${tipText}]`);
      // The cell's latest exemplar (issue 17): the request id to look up in the
      // access log. Only polled intervals have one; the history keeps counts only.
      if (MODE === "live") check(/ latest: request_id [0-9a-f]{32}( trace_id [0-9a-f]{32})? \(/.test(tipText || ""),
        `tooltip names the cell's latest request: [${tipText}]`);
      log(`tooltip: ${tipText}`);
    }

    // ---- the numbers panels
    const tables = await page.evaluate(() => {
      const rows = (id) => [...document.querySelectorAll(`#${id} tbody tr`)].map((tr) =>
        [...tr.children].map((td) => td.textContent));
      return { inflight: rows("inflight"), sessions: rows("sessions"), bytes: rows("bytes"),
        repositories: rows("repositories"), legend: document.getElementById("rates-legend").textContent,
        errorsLegend: document.getElementById("errors-legend").textContent,
        first: document.querySelector("main section h2").textContent };
    });
    log(`tables: ${JSON.stringify(tables)}`);
    check(tables.inflight.some((r) => r[0] === "blob_upload_chunk"), "in-flight table lists blob_upload_chunk");
    check(tables.sessions.some((r) => r[0] === "completed" && r[1] === String(expected.completedSessions)),
      `upload sessions table shows ${expected.completedSessions} completed`);
    check(tables.bytes.some((r) => r[0] === "upload" && r[1] !== "0 B"), "blob bytes table shows uploaded bytes");
    check(tables.bytes.some((r) => r[0] === "download" && r[1] !== "0 B"), "blob bytes table shows downloaded bytes");
    check(tables.legend.includes("blob_upload_chunk"), "rate legend lists blob_upload_chunk");
    check(tables.errorsLegend.includes("blob_upload_chunk"), "error-ratio legend lists blob_upload_chunk");
    check(tables.first === "Blob upload latency", `the first panel is the upload latency heatmap, not [${tables.first}]`);
    // Every pushed repository is listed with its push (dash/one also with its pulled bytes).
    for (const repo of expected ? expected.repositories : []) {
      const row = tables.repositories.find((r) => r[0] === repo);
      check(row && Number(row[1]) >= 1 && row[3] !== "0 B", `top repositories lists ${repo} with a push and uploaded bytes: ${JSON.stringify(row)}`);
    }
    check(tables.repositories.some((r) => r[0] === "dash/one" && r[4] !== "0 B"), "top repositories shows dash/one's downloaded bytes");

    // ---- client families (issue 16): the traffic comes from curl and skopeo
    const clients = await page.evaluate(() => [...document.querySelectorAll("#clients tbody tr")].map((tr) =>
      [...tr.children].map((td) => td.textContent)));
    log(`clients: ${JSON.stringify(clients)}`);
    for (const family of ["curl", "containers-image"])
      check(clients.some((r) => r[0] === family && Number(r[1].replace(/[^0-9.]/g, "")) > 0),
        `clients table lists ${family} with requests`);

    // ---- artifacts
    await page.mouse.move(5, 5);
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    writeFileSync(SCREENSHOT.replace(/\.png$/, "-heatmap.png"), Buffer.from(heatPng.split(",")[1], "base64"));
    log(`screenshot: ${SCREENSHOT}`);

    if (d) {
      console.log(`dashboard_${MODE}_polls=${d.polls}`);
      console.log(`dashboard_${MODE}_heatmap_cells=${d.heatmapCells}`);
      console.log(`dashboard_${MODE}_history_intervals=${d.historyIntervals}`);
    }
  }
} catch (e) {
  failures.push(`exception: ${e && e.stack ? e.stack : e}`);
} finally {
  if (context) await context.close().catch(() => {});
}
check(consoleErrors.length === 0, `console errors/warnings:\n   ${consoleErrors.join("\n   ")}`);
if (failures.length) {
  for (const f of failures) console.error(`dashboard_test: FAIL: ${f}`);
  exitCode = 1;
} else {
  log("all browser checks passed");
}
process.exit(exitCode);
