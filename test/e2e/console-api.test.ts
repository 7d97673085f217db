// The web console's endpoints on a running pipeline: session, overview (and its live stream), datasets,
// dashboards, and the replay of dead letters after a schema fix.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { describe, it } from "node:test";
import { pino } from "pino";
import { stringify } from "yaml";
import { loadPipeline } from "../../src/config/index.js";
import { startNode, type RunningNode } from "../../src/runtime/node.js";
import {
  FLIGHTS_STREAM,
  KEYS,
  createProject,
  merge,
  request,
  startTestNode,
  type ConfigTree,
} from "./harness.js";

const READER = { authorization: `Bearer ${KEYS.reader.secret}` };
const ADMIN = { authorization: `Bearer ${KEYS.admin.secret}` };

const CONFIG: ConfigTree = {
  name: "console-e2e",
  streams: { flights: FLIGHTS_STREAM },
  keys: [
    { id: KEYS.writer.id, secret: KEYS.writer.secret, scopes: ["write:flights"] },
    { id: KEYS.reader.id, secret: KEYS.reader.secret, scopes: ["read:*"] },
    { id: "raw-only", secret: "raw-only-secret-0001", scopes: ["read:raw.flights"] },
    { id: KEYS.admin.id, secret: KEYS.admin.secret, scopes: ["admin"] },
  ],
  lake: { flush: { max_bytes: "16MiB", max_age: "60s" } },
  views: {
    departures: {
      stream: "flights",
      dimensions: ["origin"],
      measures: { flights: "count", avg_delay: "avg(delay)" },
    },
  },
  dashboards: {
    ops: {
      title: "Operations",
      range: "6h",
      filters: {
        origin: { label: "Origin", values: "SELECT DISTINCT origin FROM raw.flights ORDER BY 1" },
      },
      charts: {
        per_minute: {
          title: "Per minute",
          type: "line",
          view: "departures",
          measures: ["flights"],
        },
        by_origin: {
          title: "By origin",
          type: "line",
          view: "departures",
          measures: ["flights"],
          by: "origin",
        },
        delays: {
          title: "Delays",
          type: "bar",
          sql: "SELECT origin, count(*) AS n FROM raw.flights WHERE date >= {{from}} AND date < {{to}} AND {{filter:origin}} GROUP BY origin ORDER BY origin",
          x: "origin",
          y: ["n"],
        },
        unfiltered: {
          title: "Whole rows",
          type: "table",
          sql: "SELECT origin, flight_id FROM raw.flights ORDER BY flight_id",
        },
        not_built: { title: "Mart", type: "table", sql: "SELECT * FROM mart.nothing" },
      },
    },
  },
};

const BASE = Date.parse("2001-01-01T00:00:00Z");
const ORIGINS = ["SFO", "LAX", "ORD"];

function flights(n: number): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, i) => ({
    flight_id: `F${String(i).padStart(5, "0")}`,
    date: new Date(BASE + i * 20_000).toISOString(),
    delay: i % 17,
    distance: 300,
    origin: ORIGINS[i % 3],
    destination: "JFK",
  }));
}

async function get(
  url: string,
  headers: Record<string, string> = READER,
): Promise<{
  status: number;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests read arbitrary bodies
  text: string;
  type: string;
}> {
  const res = await fetch(url, { headers });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text, type: res.headers.get("content-type") ?? "" };
}

describe("console API", () => {
  it("answers the session, overview, live stream, datasets and dashboards by key", async () => {
    const t = await startTestNode(CONFIG);
    try {
      const events = flights(90); // 30 minutes of 2001, 30 flights per origin
      assert.equal((await t.send("flights", events)).status, 200);
      await t.flush();

      // Session: read keys read, only admin keys administer; a write key sees nothing.
      const reader = await get(`${t.url}/v1/console/session`);
      assert.equal(reader.status, 200);
      assert.deepEqual(reader.json.can, { read: true, admin: false });
      assert.deepEqual(reader.json.pipeline.dashboards, [{ name: "ops", title: "Operations" }]);
      assert.equal((await get(`${t.url}/v1/console/session`, ADMIN)).json.can.admin, true);
      const writer = await get(`${t.url}/v1/console/session`, {
        authorization: `Bearer ${KEYS.writer.secret}`,
      });
      assert.equal(writer.status, 403);
      assert.equal(writer.json.error.code, "TRB_AUTH_FORBIDDEN");
      assert.equal((await get(`${t.url}/v1/console/session`, {})).status, 401);

      // Overview: the log holds 90 events, all landed and applied by the speed layer.
      const o = (await get(`${t.url}/v1/console/overview`)).json;
      const stream = o.streams.find((s: { name: string }) => s.name === "flights");
      assert.equal(stream.end, 90);
      const land = stream.consumers.find((c: { name: string }) => c.name === "land");
      assert.deepEqual([land.lag, land.freshness_ms], [0, 0]);
      assert.equal(o.speed[0].view, "departures");
      assert.equal(o.speed[0].newest_event_time, new Date(BASE + 89 * 20_000).toISOString());
      const raw = o.storage.find((d: { dataset: string }) => d.dataset === "raw.flights");
      assert.equal(raw.rows, 90);
      // A key reading only raw.flights sees no other dataset.
      const narrow = await get(`${t.url}/v1/console/overview`, {
        authorization: "Bearer raw-only-secret-0001",
      });
      assert.deepEqual(
        narrow.json.storage.map((d: { dataset: string }) => d.dataset),
        ["raw.flights"],
      );

      // Live: server-sent events carry the same overview.
      const ctl = new AbortController();
      const res = await fetch(`${t.url}/v1/console/live`, { headers: READER, signal: ctl.signal });
      assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
      const reader2 = res.body!.getReader();
      let buffered = "";
      const framed = /event: overview\ndata: (.*)\n\n/;
      while (!framed.test(buffered)) {
        const { value, done } = await reader2.read();
        assert.ok(!done, "the live stream ended early");
        buffered += new TextDecoder().decode(value);
      }
      ctl.abort();
      const data = framed.exec(buffered)![1]!;
      assert.equal(JSON.parse(data).streams[0].end, 90);

      // Dataset detail: files, schema versions, snapshots.
      const ds = (await get(`${t.url}/v1/console/datasets/raw.flights`)).json;
      assert.equal(
        ds.files.reduce((n: number, f: { rows: number }) => n + f.rows, 0),
        90,
      );
      assert.equal(ds.schema_versions.length, 1);
      assert.ok(ds.snapshots.length >= 1);
      assert.equal((await get(`${t.url}/v1/console/datasets/raw.nope`)).status, 404);

      // Dashboards: definitions with filter values and the range's end at the newest event.
      const dash = (await get(`${t.url}/v1/dashboards`)).json.dashboards[0];
      assert.deepEqual(dash.filters[0].values, ["LAX", "ORD", "SFO"]);
      // The end of the newest event's minute (events every 20 s: the last at 29:40).
      assert.equal(dash.latest, new Date(BASE + 30 * 60_000).toISOString());
      assert.equal(dash.range_ms, 6 * 3_600_000);
      const range = `from=${new Date(BASE).toISOString()}&to=${new Date(BASE + 3_600_000).toISOString()}`;
      const chart = async (id: string, extra = "") =>
        (await get(`${t.url}/v1/dashboards/ops/charts/${id}?${range}${extra}`)).json;
      // A view chart without `by` merges origins: one row per minute, counts summing to 90.
      const merged = await chart("per_minute");
      assert.deepEqual(
        merged.columns.map((c: { name: string }) => c.name),
        ["bucket", "flights"],
      );
      assert.equal(merged.rows.length, 30);
      assert.equal(
        merged.rows.reduce((n: number, r: number[]) => n + Number(r[1]), 0),
        90,
      );
      const split = await chart("by_origin");
      assert.deepEqual(
        split.columns.map((c: { name: string }) => c.name),
        ["bucket", "origin", "flights"],
      );
      assert.equal(split.rows.length, 90);
      const onlySfo = await chart("per_minute", "&origin=SFO");
      assert.equal(
        onlySfo.rows.reduce((n: number, r: number[]) => n + Number(r[1]), 0),
        30,
      );
      // SQL charts: the placeholder filters before aggregation, the result filter after.
      assert.deepEqual((await chart("delays")).rows, [
        ["LAX", 30],
        ["ORD", 30],
        ["SFO", 30],
      ]);
      assert.deepEqual((await chart("delays", "&origin=ORD")).rows, [["ORD", 30]]);
      const whole = await chart("unfiltered", "&origin=LAX");
      assert.equal(whole.rows.length, 30);
      assert.ok(whole.rows.every((r: string[]) => r[0] === "LAX"));
      const missing = await chart("not_built");
      assert.deepEqual(missing.rows, []);
      assert.match(missing.notice, /mart\.nothing/);
      const bad = await get(`${t.url}/v1/dashboards/ops/charts/delays?${range}&dest=JFK`);
      assert.equal(bad.status, 400);
      assert.equal((await get(`${t.url}/v1/dashboards/ops/charts/nope?${range}`)).status, 404);
      assert.equal(
        (await get(`${t.url}/v1/dashboards/ops/charts/delays?from=yesterday`)).json.error.code,
        "TRB_HTTP_BAD_REQUEST",
      );

      // The page: browsers get the console, API clients the endpoint index.
      const page = await get(`${t.url}/`, { accept: "text/html,application/xhtml+xml" });
      assert.equal(page.status, 200);
      assert.match(page.type, /^text\/html/);
      assert.match(page.text, /<script[^>]+src="\/assets\//);
      const asset = /src="(\/assets\/[^"]+\.js)"/.exec(page.text)![1]!;
      assert.equal((await get(`${t.url}${asset}`, {})).status, 200);
      const index = await get(`${t.url}/`, {});
      assert.equal(index.json.name, "console-e2e");
    } finally {
      await t.close();
    }
  });

  it("replays dead letters after a schema fix, once, keeping their ids and receipt times", async () => {
    const project = createProject(CONFIG);
    const start = async (): Promise<RunningNode> =>
      startNode(loadPipeline(project.dir), {
        port: 0,
        host: "127.0.0.1",
        replay: false,
        log: pino({ level: "silent" }),
      });
    let node = await start();
    try {
      const good = flights(3);
      const noOrigin = [4, 5].map((i) => ({ ...flights(6)[i]!, origin: undefined }));
      const badDelay: Record<string, unknown> = { ...flights(7)[6]!, delay: "late" };
      const sent = await request(
        `${node.url}/v1/streams/flights/events`,
        [...good, ...noOrigin, badDelay],
        { authorization: `Bearer ${KEYS.writer.secret}` },
      );
      assert.equal(sent.json.dead_lettered, 3);
      const replay = (body: unknown): ReturnType<typeof request> =>
        request(`${node.url}/v1/streams/flights/dead-letters/replay`, body, ADMIN);
      // Before the fix nothing passes, and nothing is dead-lettered twice.
      const before = await replay({ all: true });
      assert.equal(before.status, 200);
      assert.deepEqual([before.json.stored, before.json.still_invalid.length], [0, 3]);
      assert.equal(
        (await request(`${node.url}/v1/streams/flights/dead-letters/replay`, { all: true }, READER))
          .status,
        403,
      );
      assert.equal((await replay({ ids: [] })).status, 400);
      await node.stop();

      // The fix: origin becomes optional.
      const fixed = merge(CONFIG, {
        streams: { flights: merge(FLIGHTS_STREAM as ConfigTree, { fields: { origin: "string" } }) },
      });
      writeFileSync(project.configFile, stringify(fixed));
      node = await start();
      const after = await replay({ all: true });
      assert.equal(after.status, 200);
      assert.equal(after.json.stored, 2);
      assert.deepEqual(
        after.json.still_invalid.map((x: { id: string }) => x.id),
        [badDelay.flight_id as string],
      );
      const q = async (sql: string): Promise<unknown[][]> =>
        (await request(`${node.url}/v1/query`, { sql }, READER)).json.rows;
      await request(`${node.url}/v1/flush`, {}, ADMIN);
      assert.deepEqual(
        await q(
          "SELECT r.flight_id, r.origin IS NULL, r._received_at = d._received_at FROM raw.flights r JOIN dlq.flights d USING (_event_id) ORDER BY 1",
        ),
        [
          ["F00004", true, true],
          ["F00005", true, true],
        ],
      );
      // Again: the replayed ones are in raw (skipped); only the still-invalid one is tried.
      const again = await replay({ all: true });
      assert.deepEqual(
        [again.json.considered, again.json.stored, again.json.still_invalid.length],
        [1, 0, 1],
      );
      const byId = await replay({ ids: ["F00004", badDelay.flight_id as string] });
      assert.deepEqual([byId.json.already_landed, byId.json.stored], [1, 0]);
      assert.deepEqual(await q("SELECT count(*), count(DISTINCT _event_id) FROM raw.flights"), [
        [5, 5],
      ]);
      assert.deepEqual(await q("SELECT count(*) FROM dlq.flights"), [[3]]);
      // The schema change is a new version of raw.flights.
      const ds = await get(`${node.url}/v1/console/datasets/raw.flights`);
      assert.equal(ds.json.schema_versions.length, 1, "required-ness is not a column change");
    } finally {
      await node.stop();
      project.cleanup();
    }
  });
});
