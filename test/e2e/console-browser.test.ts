// The web console in real headless Chromium against the running demo: every page, the SQL editor,
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// dashboards, live charts, access by key, accessibility basics, and a dead-letter replay.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import type { Browser } from "playwright-core";
import { stringify } from "yaml";
import { loadPipeline } from "../../src/config/index.js";
import { startNode, type RunningNode } from "../../src/runtime/node.js";
import { FLIGHTS_STREAM, KEYS, createProject, merge, request, type ConfigTree } from "./harness.js";
import { audit } from "./support/a11y.js";
import {
  DEMO_KEYS,
  api,
  browserMissing,
  launchBrowser,
  openConsole,
  screenshot,
  startDemo,
  visit,
  type Demo,
} from "./support/console-browser.js";

const skip = browserMissing();

/** Every page of the console: hash route, `data-page` name, screenshot name. */
const PAGES: readonly [string, string, string][] = [
  ["#/", "overview", "overview"],
  ["#/streams", "streams", "streams"],
  ["#/streams/flights", "streams", "stream-flights"],
  ["#/catalog", "catalog", "catalog"],
  ["#/catalog/raw.flights", "dataset", "dataset-raw-flights"],
  ["#/batch", "batch", "batch"],
  ["#/views", "views", "views"],
  ["#/views/departures", "views", "view-departures"],
  ["#/sql", "sql", "sql"],
  ["#/dashboards", "dashboards", "dashboards"],
  ["#/dashboards/flights", "dashboard", "dashboard-flights"],
];

describe("web console in Chromium", { skip }, () => {
  let browser: Browser;
  let demo: Demo;

  before(async () => {
    // The replay at 2 hours of 2001 per second: a day of data in 12 s (faster replays keep the one
    // process so busy checkpointing the speed layer that it sheds requests with 503).
    [browser, demo] = await Promise.all([launchBrowser(), startDemo({ speed: 7_200 })]);
    // Wait for a little more than a day of data, and a first batch run (the schedule builds
    // yesterday every 5 s), so every page has something to show.
    const deadline = Date.now() + 120_000;
    for (;;) {
      const runs = await api<{ runs: { status: string }[] }>(
        demo.url,
        "/v1/batch/runs",
        DEMO_KEYS.read,
      );
      if (runs.runs.some((r) => r.status === "succeeded")) break;
      if (Date.now() > deadline) throw new Error("no batch run succeeded within 2 minutes");
      await new Promise((r) => setTimeout(r, 500));
    }
  });

  after(async () => {
    await browser?.close();
    await demo?.stop();
  });

  it("asks for a key, refuses a wrong one, and signs in with a read key", async () => {
    const w = await openConsole(browser, demo.url);
    try {
      await w.page.waitForSelector('main[data-page="login"]');
      await w.page.getByLabel("API key").fill("not-a-key");
      await w.page.getByRole("button", { name: "Sign in" }).click();
      const alert = w.page.getByRole("alert");
      await alert.waitFor();
      assert.match((await alert.textContent()) ?? "", /TRB_AUTH_INVALID/);
      await w.page.getByLabel("API key").fill(DEMO_KEYS.read);
      await w.page.getByRole("button", { name: "Sign in" }).click();
      await w.page.waitForSelector('main[data-page="overview"][data-ready="true"]');
      await screenshot(w.page, "login-then-overview");
      // A stored key the server no longer accepts leads back to the sign-in page.
      const stale = await openConsole(browser, demo.url, "revoked-key");
      await stale.page.waitForSelector('main[data-page="login"]');
      await stale.close();
      // The 401 of the wrong key is an answer the page handled, not a script error.
      assert.deepEqual(
        w.errors.filter((e) => !/401/.test(e)),
        [],
      );
    } finally {
      await w.close();
    }
  });

  it("loads every page without console errors, with labelled controls and AA contrast", async () => {
    const w = await openConsole(browser, demo.url, DEMO_KEYS.read);
    try {
      for (const [hash, name, shot] of PAGES) {
        await visit(w.page, hash, name);
        await screenshot(w.page, shot);
        const a = await audit(w.page);
        assert.ok(a.controls > 0 && a.texts > 0, `${hash}: the audit found nothing to check`);
        assert.deepEqual(a.unlabelled, [], `${hash}: controls without a name`);
        assert.deepEqual(a.lowContrast, [], `${hash}: text below WCAG AA contrast`);
      }
      assert.deepEqual(w.errors, []);
    } finally {
      await w.close();
    }
  });

  it("navigates by keyboard: Tab reaches the menu and Enter opens a page", async () => {
    const w = await openConsole(browser, demo.url, DEMO_KEYS.read);
    try {
      await w.page.waitForSelector('main[data-page="overview"][data-ready="true"]');
      const reached: string[] = [];
      for (let i = 0; i < 40 && !reached.includes("SQL"); i++) {
        await w.page.keyboard.press("Tab");
        reached.push(
          await w.page.evaluate(() => (document.activeElement?.textContent ?? "").trim()),
        );
      }
      assert.ok(reached.includes("SQL"), `Tab never reached the SQL link: ${reached.join(" | ")}`);
      const outline = await w.page.evaluate(() => {
        const s = getComputedStyle(document.activeElement!);
        return s.outlineStyle !== "none" || s.boxShadow !== "none";
      });
      assert.ok(outline, "the focused link shows a focus ring");
      await w.page.keyboard.press("Enter");
      await w.page.waitForSelector('main[data-page="sql"][data-ready="true"]');
      assert.deepEqual(w.errors, []);
    } finally {
      await w.close();
    }
  });

  it("runs SQL from the editor and pages through the rows", async () => {
    const w = await openConsole(browser, demo.url, DEMO_KEYS.read);
    try {
      await visit(w.page, "#/sql", "sql");
      const sql =
        "SELECT origin, count(*) AS flights FROM raw.flights GROUP BY origin ORDER BY flights DESC, origin LIMIT 120";
      const expected = await request(
        `${demo.url}/v1/query`,
        { sql },
        { authorization: `Bearer ${DEMO_KEYS.read}` },
      );
      assert.equal(expected.status, 200);
      // The replay keeps adding flights: compare the origins, whose order settles quickly.
      const editor = w.page.getByLabel("SQL", { exact: true });
      await editor.fill(sql);
      await editor.press("Control+Enter");
      const table = w.page.getByTestId("sql-results");
      await table.locator("tbody tr").first().waitFor();
      const rows = await table.locator("tbody tr").count();
      assert.equal(rows, Math.min(50, expected.json.rows.length), "50 rows per page");
      const firstCell = (await table.locator("tbody tr td").first().textContent())?.trim();
      assert.ok(
        expected.json.rows.some((r: unknown[]) => r[0] === firstCell),
        `first cell ${firstCell} is an origin of the answer`,
      );
      if (expected.json.rows.length > 50) {
        await w.page.getByRole("button", { name: "Next" }).click();
        await w.page.getByText(/rows 51–/).waitFor();
      }
      await screenshot(w.page, "sql-results");
      assert.deepEqual(w.errors, []);
    } finally {
      await w.close();
    }
  });

  it("renders the dashboard's charts with data and updates the live one", async () => {
    const w = await openConsole(browser, demo.url, DEMO_KEYS.read);
    try {
      await visit(w.page, "#/dashboards/flights", "dashboard");
      const live = w.page.locator('figure[data-chart="departures"]');
      const points = Number(await live.getAttribute("data-points"));
      assert.ok(points > 60, `the departures chart draws minutes of data (${points} points)`);
      const bars = Number(
        await w.page.locator('figure[data-chart="delay_by_airport"]').getAttribute("data-points"),
      );
      assert.ok(bars > 0, "the delays chart has bars");
      // The chart refreshes every 2 s while the replay adds flights.
      const first = Number(await live.getAttribute("data-updates"));
      await w.page.waitForFunction(
        (n) =>
          Number(
            document.querySelector('figure[data-chart="departures"]')?.getAttribute("data-updates"),
          ) >=
          n + 2,
        first,
        { timeout: 20_000 },
      );
      // A filter narrows every chart: the number of flights for one airport is smaller.
      const number = w.page.locator('figure[data-chart="flights"]');
      const all = Number(((await number.textContent()) ?? "").replace(/[^0-9]/g, ""));
      assert.ok(all > 0, "flights in range shows a number");
      await screenshot(w.page, "dashboard-live");
      assert.deepEqual(w.errors, []);
    } finally {
      await w.close();
    }
  });

  it("draws a live view chart with the batch/speed cut", async () => {
    const w = await openConsole(browser, demo.url, DEMO_KEYS.read);
    try {
      await visit(w.page, "#/views/departures", "views");
      const fig = w.page.locator('figure[data-chart="view-departures"]');
      const first = Number(await fig.getAttribute("data-updates"));
      await w.page.waitForFunction(
        (n) =>
          Number(
            document
              .querySelector('figure[data-chart="view-departures"]')
              ?.getAttribute("data-updates"),
          ) >=
          n + 2,
        first,
        { timeout: 20_000 },
      );
      assert.ok(Number(await fig.getAttribute("data-points")) > 0);
      assert.deepEqual(w.errors, []);
    } finally {
      await w.close();
    }
  });

  it("shows run buttons to admin keys only", async () => {
    const reader = await openConsole(browser, demo.url, DEMO_KEYS.read);
    const admin = await openConsole(browser, demo.url, DEMO_KEYS.admin);
    try {
      await visit(reader.page, "#/batch", "batch");
      await visit(admin.page, "#/batch", "batch");
      assert.equal(await reader.page.getByRole("button", { name: "Repair" }).count(), 0);
      assert.equal(await admin.page.getByRole("button", { name: "Repair" }).count(), 1);
      await screenshot(admin.page, "batch-admin");
      assert.deepEqual([...reader.errors, ...admin.errors], []);
    } finally {
      await reader.close();
      await admin.close();
    }
  });
});

describe("dead-letter replay from the console", { skip }, () => {
  it("lands the fixed events after a schema fix", async () => {
    const config: ConfigTree = {
      name: "replay-ui",
      streams: { flights: FLIGHTS_STREAM },
      keys: [
        { id: KEYS.writer.id, secret: KEYS.writer.secret, scopes: ["write:flights"] },
        { id: KEYS.admin.id, secret: KEYS.admin.secret, scopes: ["admin"] },
      ],
      lake: { flush: { max_bytes: "16MiB", max_age: "60s" } },
    };
    const project = createProject(config);
    const start = (): Promise<RunningNode> =>
      startNode(loadPipeline(project.dir), {
        port: 0,
        host: "127.0.0.1",
        replay: false,
        log: pino({ level: "silent" }),
      });
    let node = await start();
    const browser = await launchBrowser();
    try {
      const bad = [1, 2, 3].map((i) => ({
        flight_id: `X${i}`,
        date: `2001-01-01T0${i}:00:00Z`,
        delay: 5,
        distance: 200,
        destination: "JFK",
      }));
      const sent = await request(`${node.url}/v1/streams/flights/events`, bad, {
        authorization: `Bearer ${KEYS.writer.secret}`,
      });
      assert.equal(sent.json.dead_lettered, 3);
      await node.stop();
      // The fix: origin is no longer required.
      writeFileSync(
        project.configFile,
        stringify(
          merge(config, {
            streams: {
              flights: merge(FLIGHTS_STREAM as ConfigTree, { fields: { origin: "string" } }),
            },
          }),
        ),
      );
      node = await start();
      await request(`${node.url}/v1/flush`, {}, { authorization: `Bearer ${KEYS.admin.secret}` });
      const w = await openConsole(browser, node.url, KEYS.admin.secret);
      await visit(w.page, "#/streams/flights", "streams");
      await w.page.getByRole("button", { name: "Replay all" }).click();
      await w.page
        .getByRole("status")
        .filter({ hasText: /stored 3|3 stored/i })
        .waitFor();
      await screenshot(w.page, "dead-letters-replayed");
      const rows = await request(
        `${node.url}/v1/query`,
        { sql: "SELECT flight_id FROM raw.flights ORDER BY 1" },
        { authorization: `Bearer ${KEYS.admin.secret}` },
      );
      assert.deepEqual(rows.json.rows, [["X1"], ["X2"], ["X3"]]);
      assert.deepEqual(w.errors, []);
      await w.close();
    } finally {
      await browser.close();
      await node.stop();
      project.cleanup();
    }
  });
});
