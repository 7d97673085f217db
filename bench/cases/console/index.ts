// Case console: the web console in headless Chromium on loopback, beside bare pages that do the
// least the same screens need, in the same run and the same browser.
//
// 1. Overview first meaningful paint: a fresh browser context per run (no cache), the read key
//    pre-set in localStorage, `#/` opened until `performance.mark("overview-ready")` (the first
//    overview rendered; ms since navigation start). Baseline: a bare Node `http` server serving one
//    static HTML page whose inline script fetches one JSON document (the overview, captured once
//    from `GET /v1/console/overview`) and renders it as tables, then marks ready.
// 2. Dashboard: `#/dashboards/flights` (six charts) over a day of minute data, until
//    `performance.mark("dashboard-ready")` (every chart has drawn its first data). Baseline: a page
//    of the same bare server that loads ECharts' prebuilt UMD bundle while fetching the six charts'
//    JSON (captured once from `GET /v1/dashboards/flights/charts/<id>`), then draws them.
// 3. The console's JavaScript (dist/web/assets/*.js), gzipped, beside the full ECharts UMD bundle.
//
// Setup (not timed): dist/web is rebuilt when missing or older than src/console/app; the demo
// pipeline (examples/flights) runs in this process without its replay, with its data in a temp
// folder; one real day of flights-3m is sent through HTTP, landed and built by the batch layer (so
// the marts exist), and the speed layer is waited for until the dashboard's `latest` reaches the
// day's last event. Tributary and baseline runs alternate, after warm-up runs of each. A rebuild of
// dist/web by another build while the case runs restarts the demo (see `tributary` in `run`).
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import type { Browser } from "playwright-core";
import {
  DEMO_KEYS,
  browserMissing,
  launchBrowser,
  startDemo,
  type Demo,
} from "../../../test/e2e/support/console-browser.js";
import { ROOT, boundMetric, checkMetric, type BenchCase, type Metric } from "../../harness.js";
import { dayFlights } from "../view_query/index.js";
import { ECHARTS_UMD, startBaseline, type BaselineChart, type BaselineServer } from "./baseline.js";

/** The day loaded (a Thursday of flights-3m, ~17k flights). */
const DAY = "2001-03-01";
const DASHBOARD = "flights";
const OVERVIEW_RUNS = 15;
const DASHBOARD_RUNS = 10;
const WARMUP = 2;
/** Goals the issue sets, on loopback. */
const OVERVIEW_P95_MS = 1000;
const DASHBOARD_P95_MS = 1500;
const JS_GZIP_KB = 500;
/** How long one page may take to become ready before the run counts as failed. */
const READY_TIMEOUT_MS = 30_000;
const WEB = join(ROOT, "dist", "web");
const APP = join(ROOT, "src", "console", "app");

async function timed<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const out = await fn();
  process.stderr.write(`    ${what}: ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  return out;
}

function pct(values: readonly number[], p: number): number | null {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  return sorted[
    Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  ]!;
}

function round(v: number | null, digits = 1): number | null {
  return v === null ? null : Math.round(v * 10 ** digits) / 10 ** digits;
}

/** Newest modification time under a folder (ms). */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** Builds dist/web (`npm run build:console`) when it is missing or older than its sources. */
function ensureConsoleBuilt(): string {
  const index = join(WEB, "index.html");
  const built = existsSync(index) ? statSync(index).mtimeMs : 0;
  if (built > 0 && built >= newestMtime(APP)) return "dist/web was up to date.";
  const why = built === 0 ? "missing" : "older than src/console/app";
  process.stderr.write(`    dist/web is ${why}: npm run build:console\n`);
  const r = spawnSync("npm", ["run", "build:console"], { cwd: ROOT, encoding: "utf8" });
  if (r.status !== 0 || !existsSync(index))
    throw new Error(`npm run build:console failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return `dist/web was ${why} and was rebuilt with npm run build:console.`;
}

/** Raw and gzipped (level 9) sizes of each file. */
function sizes(files: readonly string[]): { file: string; raw: number; gzip: number }[] {
  return files.map((f) => {
    const body = readFileSync(f);
    return {
      file: f.slice(ROOT.length + 1),
      raw: body.length,
      gzip: gzipSync(body, { level: 9 }).length,
    };
  });
}

async function call(
  url: string,
  method: "GET" | "POST",
  secret: string,
  body?: unknown,
): Promise<{ status: number; text: string }> {
  const res = await fetch(url, {
    method,
    headers: {
      authorization: `Bearer ${secret}`,
      accept: "application/json",
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, text: await res.text() };
}

async function ok(
  url: string,
  method: "GET" | "POST",
  secret: string,
  body?: unknown,
): Promise<string> {
  const r = await call(url, method, secret, body);
  if (r.status !== 200) throw new Error(`${method} ${url}: ${r.status} ${r.text.slice(0, 500)}`);
  return r.text;
}

interface DashboardJson {
  name: string;
  range_ms: number;
  latest: string;
  charts: { id: string; title: string; type: string; x: string | null; y: string[] }[];
}

/** One page load: the ready mark (ms since navigation start) or why there is none. */
interface Load {
  readyMs: number | null;
  /** Navigation timing of the HTML document (ms since navigation start). */
  responseEndMs: number | null;
  domContentLoadedMs: number | null;
  /** Charts on the page: `data-chart` → `data-points`, and any alert text inside the figure. */
  charts: { id: string; points: number; alert: string | null }[];
  /** Resource timings: path (query left out), start and response end (ms since navigation start). */
  resources: [path: string, start: number, end: number][];
  errors: string[];
  failure: string | null;
}

/**
 * Opens `url` in a fresh context (empty cache, the read key in localStorage), waits for
 * `main[data-page=<page>][data-ready=true]` and for the performance mark `mark`.
 */
async function load(browser: Browser, url: string, page: string, mark: string): Promise<Load> {
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  try {
    // The page-side code is plain JavaScript text: no tsx transform (`__name`) and no DOM types.
    await context.addInitScript({
      content: `localStorage.setItem("tributary.key", ${JSON.stringify(DEMO_KEYS.read)});`,
    });
    const p = await context.newPage();
    const errors: string[] = [];
    p.on("console", (m) => {
      if (m.type() === "error") errors.push(`console: ${m.text()}`);
    });
    p.on("pageerror", (e) => errors.push(`page: ${e.message}`));
    p.on("response", (r) => {
      if (r.status() >= 400) errors.push(`HTTP ${r.status()} for ${new URL(r.url()).pathname}`);
    });
    const marked = `performance.getEntriesByName(${JSON.stringify(mark)})`;
    let failure: string | null = null;
    try {
      await p.goto(url, { waitUntil: "commit" });
      await p.waitForSelector(`main[data-page="${page}"][data-ready="true"]`, {
        timeout: READY_TIMEOUT_MS,
      });
      // The attribute is set in the render; the mark in an effect right after it.
      await p.waitForFunction(`${marked}.length > 0`, undefined, { timeout: 5_000 });
    } catch (e) {
      const text = await p
        .evaluate<string>(`document.querySelector("main")?.innerText.slice(0, 300) ?? ""`)
        .catch(() => "");
      failure = `${(e as Error).message.split("\n")[0]} (page shows: ${text.replace(/\s+/g, " ")})`;
    }
    const found = await p
      .evaluate<Omit<Load, "errors" | "failure">>(
        `(() => {
      const nav = performance.getEntriesByType("navigation")[0];
      return {
        readyMs: ${marked}[0]?.startTime ?? null,
        responseEndMs: nav?.responseEnd ?? null,
        domContentLoadedMs: nav?.domContentLoadedEventEnd ?? null,
        charts: [...document.querySelectorAll("figure[data-chart]")].map((f) => ({
          id: f.getAttribute("data-chart") ?? "",
          points: Number(f.getAttribute("data-points")),
          alert: f.querySelector('[role="alert"], .error')?.textContent ?? null,
        })),
        resources: performance.getEntriesByType("resource").map((e) => [
          new URL(e.name).pathname,
          Math.round(e.startTime),
          Math.round(e.responseEnd),
        ]),
      };
    })()`,
      )
      .catch((e: unknown) => {
        failure ??= `the page could not be read: ${String(e)}`;
        return {
          readyMs: null,
          responseEndMs: null,
          domContentLoadedMs: null,
          charts: [],
          resources: [],
        };
      });
    return { ...found, errors, failure };
  } finally {
    await context.close();
  }
}

/** Warm-up runs, then `runs` measured runs of each side, alternating. */
async function alternate(
  runs: number,
  tributary: () => Promise<Load>,
  baseline: () => Promise<Load>,
): Promise<{ tributary: Load[]; baseline: Load[] }> {
  for (let i = 0; i < WARMUP; i++) {
    await tributary();
    await baseline();
  }
  const out = { tributary: [] as Load[], baseline: [] as Load[] };
  for (let i = 0; i < runs; i++) {
    out.tributary.push(await tributary());
    out.baseline.push(await baseline());
  }
  return out;
}

/** p50, p95 and the raw figures of a side's runs; a run that never became ready fails the side. */
function summary(loads: readonly Load[]): {
  p50: number | null;
  p95: number | null;
  failed: number;
  ms: (number | null)[];
} {
  const ms = loads.map((l) => (l.failure === null ? l.readyMs : null));
  const good = ms.filter((v): v is number => v !== null);
  return {
    p50: round(pct(good, 50)),
    p95: round(pct(good, 95)),
    failed: ms.length - good.length,
    ms: ms.map((v) => round(v)),
  };
}

/** A p95 bound that also fails when some run never became ready. */
function p95Metric(
  name: string,
  t: ReturnType<typeof summary>,
  b: ReturnType<typeof summary>,
  max: number,
): Metric {
  const m = boundMetric(name, "ms", t.p95, max, b.p95);
  return t.failed > 0 ? { ...m, pass: false } : m;
}

/** Distinct notes of failed runs, console errors and chart alerts. */
function problems(side: string, loads: readonly Load[]): string[] {
  const seen = new Map<string, number>();
  for (const l of loads) {
    const found = [
      ...(l.failure === null ? [] : [`never ready: ${l.failure}`]),
      ...l.errors.map((e) => `browser error: ${e}`),
      ...l.charts
        .filter((c) => c.alert !== null)
        .map((c) => `chart ${c.id} shows an error: ${c.alert}`),
    ];
    for (const f of new Set(found)) seen.set(f, (seen.get(f) ?? 0) + 1);
  }
  return [...seen].map(
    ([text, n]) => `${side}: ${text.slice(0, 400)} (${n} of ${loads.length} runs)`,
  );
}

export const consoleCase: BenchCase = {
  name: "console",
  async run() {
    const missing = browserMissing();
    if (missing !== undefined) throw new Error(`the console case needs Chromium: ${missing}`);
    const notes: string[] = [
      "Both servers run in the bench process (the demo through startDemo, the baseline as a node:http server), beside the Playwright driver: these are browser-side figures on loopback, not server throughput; nothing is pinned.",
    ];
    notes.push(ensureConsoleBuilt());

    // 3. JavaScript sizes (no browser needed).
    const assets = join(WEB, "assets");
    const jsFiles = readdirSync(assets)
      .filter((f) => f.endsWith(".js"))
      .sort()
      .map((f) => join(assets, f));
    const cssFiles = readdirSync(assets)
      .filter((f) => f.endsWith(".css"))
      .map((f) => join(assets, f));
    const js = sizes(jsFiles);
    const [umd] = sizes([ECHARTS_UMD]);
    const jsGzip = js.reduce((s, f) => s + f.gzip, 0);
    const jsRaw = js.reduce((s, f) => s + f.raw, 0);

    const flights = await timed(`read ${DAY} of flights-3m`, () => dayFlights(DAY));
    const browser = await timed("start chromium", launchBrowser);
    let live: Loaded | undefined;
    let baseline: BaselineServer | undefined;
    let restarts = 0;
    try {
      live = await timed(`start the demo and load ${DAY}`, () => startLoaded(flights));
      const { board } = live;
      const url = live.demo.url;
      if (Date.parse(board.latest) < Date.parse(live.lastEvent))
        notes.push(
          `the dashboard's latest stayed at ${board.latest}, before the day's last event ${live.lastEvent} (the speed layer had not read the day within 2 minutes)`,
        );

      // Capture what the console will fetch, for the baseline to serve statically.
      const to = Date.parse(board.latest);
      const from = to - board.range_ms;
      const range = `from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}`;
      const overview = await ok(`${url}/v1/console/overview`, "GET", DEMO_KEYS.read);
      const charts: { chart: BaselineChart; payload: string }[] = [];
      for (const c of board.charts) {
        const payload = await ok(
          `${url}/v1/dashboards/${DASHBOARD}/charts/${c.id}?${range}`,
          "GET",
          DEMO_KEYS.read,
        );
        charts.push({ chart: { id: c.id, title: c.title, type: c.type, x: c.x, y: c.y }, payload });
      }
      baseline = await startBaseline({ overview, charts });
      const base = baseline.url;

      /**
       * One load of the console. The server registers the console's asset routes when it starts
       * (@fastify/static with `wildcard: false`), so when dist/web has been rebuilt since (another
       * build), the page it serves names assets it does not serve: the demo is then restarted on
       * the new build, the day reloaded, and one warm-up load made first.
       */
      const tributary = async (hash: string, page: string, mark: string): Promise<Load> => {
        if (readPage() !== live!.page) {
          restarts++;
          await live!.demo.stop();
          live = undefined;
          live = await timed("dist/web was rebuilt: restart the demo, reload the day", () =>
            startLoaded(flights),
          );
          await load(browser, `${live.demo.url}${hash}`, page, mark);
        }
        return load(browser, `${live!.demo.url}${hash}`, page, mark);
      };
      const ov = await timed(`overview: ${WARMUP} + ${OVERVIEW_RUNS} loads of each page`, () =>
        alternate(
          OVERVIEW_RUNS,
          () => tributary("/#/", "overview", "overview-ready"),
          () => load(browser, `${base}/`, "overview", "ready"),
        ),
      );
      const db = await timed(`dashboard: ${WARMUP} + ${DASHBOARD_RUNS} loads of each page`, () =>
        alternate(
          DASHBOARD_RUNS,
          () => tributary(`/#/dashboards/${DASHBOARD}`, "dashboard", "dashboard-ready"),
          () => load(browser, `${base}/dashboard`, "dashboard", "ready"),
        ),
      );
      const boardNow = (
        JSON.parse(await ok(`${live!.demo.url}/v1/dashboards`, "GET", DEMO_KEYS.read)) as {
          dashboards: DashboardJson[];
        }
      ).dashboards.find((d) => d.name === DASHBOARD);
      if (boardNow?.latest !== board.latest)
        notes.push(
          `the dashboard's latest moved from ${board.latest} (when the baseline's payloads were captured) to ${boardNow?.latest} during the loads.`,
        );
      if (restarts > 0)
        notes.push(
          `dist/web was rebuilt ${restarts} time(s) while the case ran (another build): as the server registers the console's asset routes when it starts (@fastify/static, wildcard: false), a running server answers 404 for the new assets and the page stays blank, so the demo was restarted on the new build with the day reloaded, and one warm-up load made, each time. The JavaScript sizes are those of the build at the start.`,
        );

      const tOv = summary(ov.tributary);
      const bOv = summary(ov.baseline);
      const tDb = summary(db.tributary);
      const bDb = summary(db.baseline);
      notes.push(
        ...problems("overview", ov.tributary),
        ...problems("overview baseline", ov.baseline),
        ...problems("dashboard", db.tributary),
        ...problems("dashboard baseline", db.baseline),
      );

      // Points each chart drew (the first measured load that became ready), and what to expect.
      const drawn = db.tributary.find((l) => l.failure === null) ?? db.tributary[0]!;
      const drawnBase = db.baseline.find((l) => l.failure === null) ?? db.baseline[0]!;
      const minutes = new Set(
        flights
          .filter((f) => {
            const t = Date.parse(String(f.date));
            return t >= from && t < to;
          })
          .map((f) => String(f.date).slice(0, 16)),
      ).size;
      const dayMinutes = new Set(flights.map((f) => String(f.date).slice(0, 16))).size;
      const inRange = flights.filter((f) => {
        const t = Date.parse(String(f.date));
        return t >= from && t < to;
      }).length;
      if (minutes < dayMinutes)
        notes.push(
          `the default range [latest - ${board.range_ms / 3_600_000} h, latest) ends at the newest event's time, exclusive: the dashboard leaves out the newest minute (${flights.length - inRange} of the day's ${flights.length} flights; ${minutes} of its ${dayMinutes} minutes drawn).`,
        );
      const payloadRows = Object.fromEntries(
        charts.map((c) => [c.chart.id, (JSON.parse(c.payload) as { rows: unknown[] }).rows.length]),
      );
      const departures = drawn.charts.find((c) => c.id === "departures")?.points ?? null;
      for (const c of board.charts) {
        const seen = drawn.charts.find((d) => d.id === c.id);
        if (seen === undefined) notes.push(`chart ${c.id} is not on the dashboard page`);
        else if (seen.points === 0)
          notes.push(`chart ${c.id} drew no points (its payload has ${payloadRows[c.id]} rows)`);
      }

      const metrics: Metric[] = [
        boundMetric("overview first meaningful paint: p50", "ms", tOv.p50, undefined, bOv.p50),
        p95Metric("overview first meaningful paint: p95", tOv, bOv, OVERVIEW_P95_MS),
        boundMetric(
          "dashboard (6 charts, a day of minutes) ready: p50",
          "ms",
          tDb.p50,
          undefined,
          bDb.p50,
        ),
        p95Metric("dashboard (6 charts, a day of minutes) ready: p95", tDb, bDb, DASHBOARD_P95_MS),
        checkMetric(
          "departures chart points (the day's minutes with flights)",
          "points",
          departures,
          `= ${minutes}`,
          departures === null ? null : departures === minutes,
        ),
        {
          ...checkMetric(
            "console JavaScript, gzipped",
            "KB",
            jsGzip / 1000,
            `< ${JS_GZIP_KB} KB`,
            jsGzip / 1000 < JS_GZIP_KB,
          ),
          baseline: umd!.gzip / 1000,
          ratio: jsGzip / umd!.gzip,
        },
        boundMetric("console JavaScript, raw", "KB", jsRaw / 1000, undefined, umd!.raw / 1000),
      ];
      return {
        measures: `the web console (dist/web, Preact + tree-shaken ECharts) served by \`tributary up\` (the demo pipeline, in process) in headless Chromium on loopback, a fresh context (empty cache) per load with the read key in localStorage: #/ until performance.mark("overview-ready") (${OVERVIEW_RUNS} loads after ${WARMUP} warm-up), and #/dashboards/${DASHBOARD} (six charts over the default 24 h ending at the dashboard's latest, ${board.latest}, over ${DAY}: ${flights.length} real flights of flights-3m sent through HTTP, landed and built by the batch layer) until performance.mark("dashboard-ready") (${DASHBOARD_RUNS} loads after ${WARMUP} warm-up), ms since navigation start; and the size of its JavaScript, gzipped at level 9 (1 KB = 1000 bytes).`,
        baseline: `a bare node:http server (no framework) in the same process and the same browser, loads alternating with the console's: for the overview a static page whose inline script fetches the overview JSON (captured once from GET /v1/console/overview) and renders it as tables; for the dashboard a static page that loads ECharts' full prebuilt UMD bundle (echarts.min.js) while fetching the six charts' JSON (captured once from GET /v1/dashboards/${DASHBOARD}/charts/<id>) and draws them (ECharts for line, area and bar; an HTML table; the number as text); for the size, echarts.min.js gzipped (a page that does not tree-shake).`,
        metrics,
        details: {
          day: DAY,
          events: flights.length,
          dashboardRange: { from: new Date(from).toISOString(), to: board.latest },
          overviewMs: { tributary: tOv, baseline: bOv },
          dashboardMs: { tributary: tDb, baseline: bDb },
          overviewLoads: {
            tributary: ov.tributary.map(timings),
            baseline: ov.baseline.map(timings),
          },
          dashboardLoads: {
            tributary: db.tributary.map(timings),
            baseline: db.baseline.map(timings),
          },
          // Where the time of one load goes: [path, start, response end] in ms since navigation start.
          dashboardWaterfall: { tributary: drawn.resources, baseline: drawnBase.resources },
          chartPoints: {
            tributary: Object.fromEntries(drawn.charts.map((c) => [c.id, c.points])),
            baseline: Object.fromEntries(drawnBase.charts.map((c) => [c.id, c.points])),
            payloadRows,
            dayMinutesInRange: minutes,
            dayMinutes,
            flightsInRange: inRange,
            flightsNumber:
              (
                JSON.parse(charts.find((c) => c.chart.id === "flights")?.payload ?? "{}") as {
                  rows?: unknown[][];
                }
              ).rows?.[0]?.[0] ?? null,
          },
          capturedBytes: {
            overview: overview.length,
            charts: Object.fromEntries(charts.map((c) => [c.chart.id, c.payload.length])),
          },
          javascript: { files: js, gzip: jsGzip, raw: jsRaw },
          css: sizes(cssFiles),
          echartsUmd: umd,
        },
        notes,
      };
    } finally {
      await baseline?.stop();
      await browser.close();
      await live?.demo.stop();
    }
  },
};

function timings(l: Load): Record<string, number | null> {
  return {
    ready: round(l.failure === null ? l.readyMs : null),
    responseEnd: round(l.responseEndMs),
    domContentLoaded: round(l.domContentLoadedMs),
    lastResponseEnd: l.resources.length === 0 ? null : Math.max(...l.resources.map((r) => r[2])),
  };
}

/** The built console page, or "" while there is none. */
function readPage(): string {
  try {
    return readFileSync(join(WEB, "index.html"), "utf8");
  } catch {
    return "";
  }
}

/** The built page once dist/web is complete (every asset it names exists) and unchanged for 1 s. */
async function stablePage(): Promise<string> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const page = readPage();
    const named = [...page.matchAll(/\/assets\/[^"']+/g)].map((m) => join(WEB, m[0]));
    await new Promise((r) => setTimeout(r, 1000));
    if (page !== "" && named.every((f) => existsSync(f)) && readPage() === page) return page;
    if (Date.now() > deadline) throw new Error("dist/web did not settle within 2 minutes");
  }
}

/** The demo serving one built console, with the day loaded and built. */
interface Loaded {
  readonly demo: Demo;
  /** dist/web/index.html when the demo started. */
  readonly page: string;
  readonly board: DashboardJson;
  /** The day's newest event time, ISO. */
  readonly lastEvent: string;
}

/**
 * Starts the demo (no replay) on the current build of the console, sends the day's flights through
 * HTTP, lands them, builds the day, and waits (at most 2 minutes) until the dashboard's `latest`
 * reaches the day's newest event (the speed layer has read them all).
 */
async function startLoaded(flights: readonly Record<string, unknown>[]): Promise<Loaded> {
  const page = await stablePage();
  const demo = await startDemo({ replay: false });
  try {
    const url = demo.url;
    for (let i = 0; i < flights.length; i += 1000)
      await ok(
        `${url}/v1/streams/flights/events`,
        "POST",
        DEMO_KEYS.write,
        flights.slice(i, i + 1000),
      );
    await ok(`${url}/v1/flush`, "POST", DEMO_KEYS.admin);
    const run = await ok(`${url}/v1/batch/runs`, "POST", DEMO_KEYS.admin, {
      date: DAY,
      force: true,
      wait: true,
    });
    const status = (JSON.parse(run) as { run?: { status?: string } }).run?.status;
    if (status !== "succeeded") throw new Error(`batch run: ${run.slice(0, 500)}`);
    const last = flights.reduce((m, f) => Math.max(m, Date.parse(String(f.date))), 0);
    const deadline = Date.now() + 120_000;
    let held: { latest: string; since: number } | undefined;
    for (;;) {
      const text = await ok(`${url}/v1/dashboards`, "GET", DEMO_KEYS.read);
      const board = (JSON.parse(text) as { dashboards: DashboardJson[] }).dashboards.find(
        (d) => d.name === DASHBOARD,
      );
      if (board === undefined) throw new Error(`the demo has no dashboard ${DASHBOARD}`);
      // Past the day's end, `latest` may still move once (the speed layer's handoff after the
      // batch run): wait until it has held for 3 s.
      if (Date.parse(board.latest) >= last && board.latest === held?.latest) {
        if (Date.now() - held.since >= 3_000)
          return { demo, page, board, lastEvent: new Date(last).toISOString() };
      } else held = { latest: board.latest, since: Date.now() };
      if (Date.now() > deadline)
        return { demo, page, board, lastEvent: new Date(last).toISOString() };
      await new Promise((r) => setTimeout(r, 500));
    }
  } catch (e) {
    await demo.stop();
    throw e;
  }
}
