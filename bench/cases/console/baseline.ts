// Baseline of the console case: a bare Node `http` server (no framework) serving two static pages
// and the JSON they fetch, captured once from the Tributary API: the floor of "a page that fetches
// its data and renders it" on this machine and browser.
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { ROOT } from "../../harness.js";

/** ECharts' prebuilt UMD bundle: everything, not tree-shaken. */
export const ECHARTS_UMD = join(ROOT, "node_modules", "echarts", "dist", "echarts.min.js");

/** A chart of the dashboard as `GET /v1/dashboards` lists it (the fields the baseline draws with). */
export interface BaselineChart {
  readonly id: string;
  readonly title: string;
  readonly type: string;
  readonly x: string | null;
  readonly y: readonly string[];
}

/** What the baseline server serves: the JSON documents captured from Tributary. */
export interface BaselineContent {
  /** `GET /v1/console/overview`, as captured. */
  readonly overview: string;
  /** The dashboard's charts, in order, with each one's `GET /v1/dashboards/<d>/charts/<id>` answer. */
  readonly charts: readonly { chart: BaselineChart; payload: string }[];
}

/** A running baseline server. */
export interface BaselineServer {
  readonly url: string;
  stop(): Promise<void>;
}

// Both pages read the key from localStorage like the console does and send it (the server ignores it).
const HEAD = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">`;

const STYLE = `<style>
body { font: 14px system-ui, sans-serif; margin: 16px; color: #111827; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border: 1px solid #e5e7eb; padding: 2px 6px; text-align: left; }
.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 16px; }
figure { margin: 0; border: 1px solid #e5e7eb; padding: 8px; min-width: 0; }
.c { height: 240px; }
.big { font-size: 40px; font-weight: 600; }
</style>`;

/** The overview floor: fetch one JSON document, render every list in it as a table, mark ready. */
const OVERVIEW_PAGE = `${HEAD}
<title>baseline overview</title>
${STYLE}
</head>
<body>
<main data-page="overview"><h1>Overview</h1><div id="out">Loading…</div></main>
<script>
const key = localStorage.getItem("tributary.key");
function cell(v) {
  return v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v);
}
function table(items) {
  const t = document.createElement("table");
  const cols = [...new Set(items.flatMap((i) => Object.keys(i)))];
  const head = t.createTHead().insertRow();
  for (const c of cols) head.appendChild(document.createElement("th")).textContent = c;
  const body = t.createTBody();
  for (const i of items) {
    const row = body.insertRow();
    for (const c of cols) row.insertCell().textContent = cell(i[c]);
  }
  return t;
}
fetch("/overview.json", { headers: { Accept: "application/json", Authorization: "Bearer " + key } })
  .then((r) => r.json())
  .then((o) => {
    const out = document.getElementById("out");
    out.textContent = "";
    for (const [name, value] of Object.entries(o)) {
      out.appendChild(document.createElement("h2")).textContent = name;
      if (Array.isArray(value)) out.appendChild(table(value));
      else if (value !== null && typeof value === "object") out.appendChild(table([value]));
      else out.appendChild(document.createElement("p")).textContent = cell(value);
    }
    performance.mark("ready");
    document.querySelector("main").dataset.ready = "true";
  });
</script>
</body>
</html>
`;

/**
 * The dashboard floor: load the full ECharts UMD bundle while fetching the six charts' JSON, then
 * draw them (line, area, bar with ECharts; the table as HTML; the number as text), mark ready.
 */
function dashboardPage(charts: readonly BaselineChart[]): string {
  return `${HEAD}
<title>baseline dashboard</title>
${STYLE}
</head>
<body>
<main data-page="dashboard"><h1>Dashboard</h1><div class="grid" id="grid"></div></main>
<script>
const CHARTS = ${JSON.stringify(charts).replaceAll("<", "\\u003c")};
const key = localStorage.getItem("tributary.key");
const lib = new Promise((resolve, reject) => {
  const s = document.createElement("script");
  s.src = "/echarts.min.js";
  s.onload = resolve;
  s.onerror = reject;
  document.head.appendChild(s);
});
const data = Promise.all(
  CHARTS.map((c) =>
    fetch("/charts/" + c.id + ".json", {
      headers: { Accept: "application/json", Authorization: "Bearer " + key },
    }).then((r) => r.json()),
  ),
);
function num(v) {
  if (v === null || v === undefined) return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}
function cartesian(c, d) {
  const cols = d.columns.map((k) => k.name);
  const xi = Math.max(0, cols.indexOf(c.x));
  const isTime = /TIMESTAMP|DATE/i.test(d.columns[xi] ? d.columns[xi].type : "");
  const ys = (c.y.length > 0 ? c.y : cols.filter((n, i) => i !== xi)).filter((n) => cols.includes(n));
  let points = 0;
  const series = ys.map((y) => {
    const yi = cols.indexOf(y);
    const values = d.rows.map((r) => (isTime ? [Date.parse(r[xi]), num(r[yi])] : num(r[yi])));
    points += values.length;
    return {
      name: y,
      type: c.type === "bar" ? "bar" : "line",
      data: values,
      showSymbol: d.rows.length <= 200,
      sampling: c.type === "bar" ? undefined : "lttb",
      areaStyle: c.type === "area" ? { opacity: 0.25 } : undefined,
    };
  });
  return {
    points,
    option: {
      animation: false,
      useUTC: true,
      grid: { left: 8, right: 16, top: ys.length > 1 ? 32 : 16, bottom: 8, containLabel: true },
      legend: ys.length > 1 ? {} : undefined,
      tooltip: { trigger: "axis" },
      xAxis: isTime
        ? { type: "time" }
        : { type: "category", data: d.rows.map((r) => String(r[xi])) },
      yAxis: { type: "value", scale: c.type !== "bar" },
      series,
    },
  };
}
Promise.all([lib, data]).then(([, payloads]) => {
  const grid = document.getElementById("grid");
  CHARTS.forEach((c, i) => {
    const d = payloads[i];
    const fig = grid.appendChild(document.createElement("figure"));
    fig.dataset.chart = c.id;
    fig.appendChild(document.createElement("figcaption")).textContent = c.title;
    if (c.type === "number") {
      const cols = d.columns.map((k) => k.name);
      const v = d.rows[0] ? d.rows[0][Math.max(0, cols.indexOf(c.y[0]))] : null;
      fig.appendChild(document.createElement("p")).className = "big";
      fig.lastChild.textContent = v === null ? "—" : Number(v).toLocaleString("en-US");
      fig.dataset.points = String(d.rows.length > 0 ? 1 : 0);
    } else if (c.type === "table") {
      const t = fig.appendChild(document.createElement("table"));
      const head = t.createTHead().insertRow();
      for (const k of d.columns) head.appendChild(document.createElement("th")).textContent = k.name;
      const body = t.createTBody();
      const rows = d.rows.slice(0, 100);
      for (const r of rows) {
        const row = body.insertRow();
        for (const v of r) row.insertCell().textContent = v === null ? "" : String(v);
      }
      fig.dataset.points = String(rows.length);
    } else {
      const el = fig.appendChild(document.createElement("div"));
      el.className = "c";
      const built = cartesian(c, d);
      echarts.init(el, null, { renderer: "canvas" }).setOption(built.option, { notMerge: true });
      fig.dataset.points = String(built.points);
    }
  });
  performance.mark("ready");
  document.querySelector("main").dataset.ready = "true";
});
</script>
</body>
</html>
`;
}

/** Starts the bare server on a free loopback port: `/` the overview page, `/dashboard` the dashboard page. */
export async function startBaseline(content: BaselineContent): Promise<BaselineServer> {
  const files = new Map<string, { type: string; body: Buffer }>();
  const add = (path: string, type: string, body: string | Buffer): void => {
    files.set(path, { type, body: typeof body === "string" ? Buffer.from(body) : body });
  };
  add("/", "text/html; charset=utf-8", OVERVIEW_PAGE);
  add("/overview.json", "application/json", content.overview);
  add("/dashboard", "text/html; charset=utf-8", dashboardPage(content.charts.map((c) => c.chart)));
  for (const c of content.charts) add(`/charts/${c.chart.id}.json`, "application/json", c.payload);
  add("/echarts.min.js", "text/javascript; charset=utf-8", readFileSync(ECHARTS_UMD));

  const server: Server = createServer((req, res) => {
    const file = files.get((req.url ?? "/").split("?")[0]!);
    if (file === undefined) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    res
      .writeHead(200, {
        "content-type": file.type,
        "content-length": file.body.length,
        "cache-control": "no-cache",
      })
      .end(file.body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
