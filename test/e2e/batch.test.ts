// The batch layer end to end on the demo's models: marts equal an independent DuckDB computation over
// the raw files (duplicates, invalid rows, late data), idempotent re-runs, repair, time travel, and
// a failing data test that blocks dependents while the previous partition stays visible.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import {
  KEYS,
  duckdb,
  sqlString,
  startTestNode,
  type TestNode,
  FLIGHTS_STREAM,
} from "./harness.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const DEMO_MODELS = join(ROOT, "examples", "flights", "models");
const AIRPORTS = ["ATL", "ORD", "DFW", "LAX", "DEN", "SFO"];
const ADMIN = { authorization: `Bearer ${KEYS.admin.secret}` };

/** The demo's model files, as `models/<layer>/<file>` → content. */
function demoModels(): Record<string, string> {
  const files: Record<string, string> = {};
  for (const layer of readdirSync(DEMO_MODELS)) {
    for (const f of readdirSync(join(DEMO_MODELS, layer)))
      files[`models/${layer}/${f}`] = readFileSync(join(DEMO_MODELS, layer, f), "utf8");
  }
  return files;
}

/** A project like the demo: the flights stream, the airports seed, the demo's models. */
function flightsProject(extraFiles: Record<string, string> = {}): {
  config: Record<string, unknown>;
  files: Record<string, string>;
} {
  return {
    config: {
      name: "batch-e2e",
      streams: {
        flights: {
          ...FLIGHTS_STREAM,
          // Re-sent flights must reach the lake so t1 deduplicates them (collect would otherwise).
          dedup_window: "1ms",
        },
      },
      keys: [
        { id: KEYS.writer.id, secret: KEYS.writer.secret, scopes: ["write:flights"] },
        { id: KEYS.reader.id, secret: KEYS.reader.secret, scopes: ["read:*"] },
        { id: KEYS.admin.id, secret: KEYS.admin.secret, scopes: ["admin"] },
      ],
      lake: { flush: { max_bytes: "16MiB", max_age: "60s" } },
      seeds: { airports: { path: "seeds/airports.csv" } },
      batch: { retries: 0 },
    },
    files: {
      "seeds/airports.csv":
        "iata,name,city,state\n" +
        AIRPORTS.map((a, i) => `${a},${a} Airport,City ${i},S${i % 3}`).join("\n") +
        "\n",
      ...demoModels(),
      ...extraFiles,
    },
  };
}

/** A flight event; `bad` makes it invalid in one of the ways t1 rejects. */
interface Flight {
  flight_id: string;
  date: string;
  delay: number | null;
  distance: number;
  origin: string;
  destination: string;
}

const flightArb = (day: number, n: number): fc.Arbitrary<Flight> =>
  fc
    .record({
      minute: fc.integer({ min: 0, max: 24 * 60 - 1 }),
      delay: fc.option(fc.integer({ min: -20, max: 180 }), { freq: 15 }),
      distance: fc.integer({ min: 50, max: 2500 }),
      o: fc.integer({ min: 0, max: AIRPORTS.length - 1 }),
      d: fc.integer({ min: 0, max: AIRPORTS.length - 1 }),
      badCode: fc.boolean().map((b) => b && Math.random() < 0.05),
    })
    .map(({ minute, delay, distance, o, d, badCode }) => ({
      flight_id: `F${day}-${n}`,
      date: new Date(Date.UTC(2001, 0, day, 0, minute)).toISOString().slice(0, 19) + "Z",
      delay,
      distance,
      origin: badCode ? "x1" : AIRPORTS[o]!,
      destination: AIRPORTS[d]!,
    }));

/** Flights of days 1..3 of January 2001, ids unique per day. */
const wave = (tag: string): fc.Arbitrary<Flight[]> =>
  fc
    .tuple(
      ...[1, 2, 3].map((day) =>
        fc
          .integer({ min: 1, max: 40 })
          .chain((count) =>
            fc.tuple(
              ...Array.from({ length: count }, (_, i) =>
                flightArb(day, i).map((f) => ({ ...f, flight_id: `${f.flight_id}${tag}` })),
              ),
            ),
          ),
      ),
    )
    .map((days) =>
      days.flatMap((flights, i) => [
        ...flights,
        {
          flight_id: `V${i + 1}${tag}`,
          date: `2001-01-0${i + 1}T12:00:00Z`,
          delay: 3,
          distance: 500,
          origin: "ATL",
          destination: "ORD",
        },
      ]),
    );

async function send(t: TestNode, flights: readonly Flight[]): Promise<void> {
  for (let i = 0; i < flights.length; i += 200) {
    const res = await t.send("flights", flights.slice(i, i + 200));
    assert.equal(res.status, 200, res.text);
  }
}

/** A task of a run as the API returns it. */
interface TaskRow {
  model: string;
  days: string[];
  status: string;
  rows_out: number | null;
  error: string | null;
}

/** A partition as GET /v1/batch/partitions returns it. */
interface PartitionRow {
  model: string;
  day: string;
  status: string;
  reason: string | null;
}

async function batch(
  t: TestNode,
  body: Record<string, unknown>,
): Promise<{ run: { id: number; status: string }; tasks: TaskRow[] }> {
  const res = await t.post("/v1/batch/runs", { ...body, wait: true }, ADMIN);
  assert.equal(res.status, 200, res.text);
  return res.json;
}

async function partitions(t: TestNode, query = ""): Promise<PartitionRow[]> {
  const res = await fetch(`${t.url}/v1/batch/partitions${query}`, {
    headers: { authorization: `Bearer ${KEYS.reader.secret}` },
  });
  assert.equal(res.status, 200);
  return ((await res.json()) as { partitions: PartitionRow[] }).partitions;
}

const round = (v: unknown): unknown =>
  typeof v === "number" && !Number.isInteger(v) ? Math.round(v * 1e9) / 1e9 : v;
const rounded = (rows: readonly unknown[][]): unknown[][] => rows.map((r) => r.map(round));

/** daily_airport computed by hand from the raw files of the lake, without the models. */
async function expectedDailyAirport(lakeDir: string): Promise<unknown[][]> {
  const rows = await duckdb(`
    WITH valid AS (
      SELECT *, row_number() OVER (
        PARTITION BY CAST(_event_time AS DATE), flight_id ORDER BY _received_at DESC, _event_id) AS rn
      FROM read_parquet(${sqlString(join(lakeDir, "raw", "flights", "**", "*.parquet"))}, hive_partitioning = true)
      WHERE delay IS NOT NULL AND distance > 0 AND origin <> destination
        AND regexp_full_match(origin, '[A-Z0-9]{3}') AND regexp_full_match(destination, '[A-Z0-9]{3}')
    )
    SELECT strftime(CAST(_event_time AS DATE), '%Y-%m-%d') AS day, origin, count(*)::INTEGER AS flights,
           avg(delay) AS avg_delay, quantile_cont(delay, 0.95) AS p95_delay,
           avg(CASE WHEN delay <= 15 THEN 1.0 ELSE 0.0 END) AS on_time_share, sum(distance)::INTEGER AS total
    FROM valid WHERE rn = 1 GROUP BY ALL ORDER BY day, origin`);
  return rounded(rows);
}

async function martDailyAirport(t: TestNode, snapshot?: number): Promise<unknown[][]> {
  const sql = `SELECT strftime(day, '%Y-%m-%d') AS day, origin, flights, avg_delay, p95_delay,
      on_time_share, total_distance FROM mart.daily_airport ORDER BY day, origin`;
  if (snapshot === undefined) return rounded((await t.query(sql)).rows);
  const res = await t.post(
    "/v1/query",
    { sql, snapshot },
    { authorization: `Bearer ${KEYS.reader.secret}` },
  );
  assert.equal(res.status, 200, res.text);
  return rounded(res.json.rows);
}

describe("batch layer on the demo models", () => {
  it("marts equal an independent computation over the raw files, with duplicates and late data", async () => {
    await fc.assert(
      fc.asyncProperty(
        wave("a"),
        wave("late"),
        fc.double({ min: 0, max: 0.3, noNaN: true }),
        async (first, late, dupShare) => {
          const { config, files } = flightsProject();
          const t = await startTestNode(config, files);
          try {
            // Some flights are sent twice, the second copy later with another delay: the latest wins.
            const dups = first
              .filter((_, i) => i < first.length * dupShare)
              .map((f) => ({ ...f, delay: f.delay === null ? 7 : f.delay + 1 }));
            await send(t, first);
            await send(t, dups);
            await t.flush();
            const run = await batch(t, { mode: "backfill", from: "2001-01-01", to: "2001-01-03" });
            assert.equal(run.run.status, "succeeded", JSON.stringify(run.tasks));
            assert.deepEqual(
              await martDailyAirport(t),
              await expectedDailyAirport(t.pipeline.lakeDir),
            );
            const before = (await t.query("SELECT 1")).snapshot;

            // Late data for days already built: those days (and only those) turn stale downstream.
            await send(
              t,
              late.filter((f) => f.date.startsWith("2001-01-02")),
            );
            await t.flush();
            const stale = (await partitions(t, "?status=stale")).map((p) => `${p.model}@${p.day}`);
            const lateDays = late.some((f) => f.date.startsWith("2001-01-02"));
            if (lateDays) {
              for (const m of [
                "t1.flights",
                "t2.flights_enriched",
                "mart.daily_airport",
                "mart.daily_route",
              ])
                assert.ok(stale.includes(`${m}@2001-01-02`), `${m} 2001-01-02 stale: ${stale}`);
              assert.ok(
                !stale.some((s) => s.endsWith("2001-01-01")),
                `only the late day: ${stale}`,
              );
            }
            const repaired = await batch(t, { mode: "repair" });
            if (lateDays) assert.equal(repaired.run.status, "succeeded");
            assert.deepEqual(await partitions(t, "?status=stale"), []);
            assert.deepEqual(
              await martDailyAirport(t),
              await expectedDailyAirport(t.pipeline.lakeDir),
            );
            // Time travel: the marts as they were before the late data.
            const old = await martDailyAirport(t, before);
            assert.equal(old.length > 0, true);
          } finally {
            await t.close();
          }
        },
      ),
      { numRuns: 3, includeErrorInReport: true },
    );
  });

  describe("runs of one project", () => {
    let t: TestNode;
    before(async () => {
      const { config, files } = flightsProject();
      t = await startTestNode(config, files);
      const flights = [1, 2].flatMap((day) =>
        Array.from({ length: 50 }, (_, i) => ({
          flight_id: `D${day}-${i}`,
          date: new Date(Date.UTC(2001, 0, day, i % 24, i)).toISOString().slice(0, 19) + "Z",
          delay: (i * 7) % 60,
          distance: 100 + i,
          origin: AIRPORTS[i % AIRPORTS.length]!,
          destination: AIRPORTS[(i + 1) % AIRPORTS.length]!,
        })),
      );
      await send(t, flights);
      await t.flush();
    });
    after(async () => t.close());

    it("re-running a day leaves the same rows and one live copy of each file", async () => {
      const first = await batch(t, { mode: "run", date: "2001-01-02" });
      assert.equal(first.run.status, "succeeded", JSON.stringify(first.tasks));
      const rows1 = await martDailyAirport(t);
      const files1 = await t.query("SELECT count(*) FROM t1.flights WHERE day = DATE '2001-01-02'");
      const second = await batch(t, { mode: "run", date: "2001-01-02" });
      assert.equal(second.run.status, "succeeded");
      assert.deepEqual(await martDailyAirport(t), rows1);
      assert.deepEqual(
        (await t.query("SELECT count(*) FROM t1.flights WHERE day = DATE '2001-01-02'")).rows,
        files1.rows,
      );
      // One live file per model and day: the re-run replaced, not added.
      const catalog = (await (
        await fetch(`${t.url}/v1/catalog`, {
          headers: { authorization: `Bearer ${KEYS.reader.secret}` },
        })
      ).json()) as { datasets: { name: string; files: number }[] };
      const t1 = catalog.datasets.find((d) => d.name === "t1.flights")!;
      assert.equal(t1.files, 1);
      // Each run recorded every task with its rows.
      const detail = (await (
        await fetch(`${t.url}/v1/batch/runs/${second.run.id}`, {
          headers: { authorization: `Bearer ${KEYS.reader.secret}` },
        })
      ).json()) as {
        tasks: { model: string; status: string; rows_out: number }[];
        tests: unknown[];
      };
      assert.deepEqual(detail.tasks.map((x) => x.model).sort(), [
        "mart.daily_airport",
        "mart.daily_route",
        "t1.flights",
        "t1.flights_rejects",
        "t2.flights_enriched",
      ]);
      assert.equal(detail.tasks.find((x) => x.model === "t1.flights")!.rows_out, 50);
      assert.ok(detail.tests.length > 0);
      // The run list sums them per run.
      const list = (await (
        await fetch(`${t.url}/v1/batch/runs`, {
          headers: { authorization: `Bearer ${KEYS.reader.secret}` },
        })
      ).json()) as { runs: { id: number; tasks: number; rows_out: number }[] };
      const listed = list.runs.find((r) => r.id === second.run.id)!;
      assert.deepEqual(
        [listed.tasks, listed.rows_out],
        [detail.tasks.length, detail.tasks.reduce((n, x) => n + x.rows_out, 0)],
      );
    });

    it("a failing data test fails its partition, blocks dependents and keeps the previous data", async () => {
      await batch(t, { mode: "run", date: "2001-01-01" });
      const before = await t.query(
        "SELECT count(*) FROM mart.daily_airport WHERE day = DATE '2001-01-01'",
      );
      // A test that every row breaks: t1.flights' delay must be one of two values.
      const props = join(t.dir, "models", "t1", "flights.yaml");
      writeFileSync(
        props,
        readFileSync(props, "utf8").replace(
          "delay_minutes: [not_null]",
          "delay_minutes: [not_null, { accepted_values: { values: [-999] } }]",
        ),
      );
      const run = await batch(t, { mode: "run", date: "2001-01-01" });
      assert.equal(run.run.status, "failed");
      const byModel = new Map(run.tasks.map((x) => [x.model, x]));
      assert.equal(byModel.get("t1.flights")?.status, "failed");
      assert.match(byModel.get("t1.flights")?.error ?? "", /accepted_values\(delay_minutes\)/);
      assert.equal(byModel.get("t2.flights_enriched")?.status, "blocked");
      assert.match(byModel.get("mart.daily_airport")?.error ?? "", /blocked: t1\.flights/);
      assert.equal(
        byModel.get("t1.flights_rejects")?.status,
        "succeeded",
        "independent models run",
      );
      const parts = await partitions(t, "?model=t1.flights");
      assert.equal(parts.find((p) => p.day === "2001-01-01")?.status, "failed");
      assert.deepEqual(
        (await t.query("SELECT count(*) FROM mart.daily_airport WHERE day = DATE '2001-01-01'"))
          .rows,
        before.rows,
        "the previous partition stays visible",
      );
    });

    it("rejects bad requests with coded errors", async () => {
      const bad = await t.post(
        "/v1/batch/runs",
        { mode: "backfill", from: "2001-01-05", to: "2001-01-01" },
        ADMIN,
      );
      assert.equal(bad.status, 400);
      assert.equal(bad.json.error.code, "TRB_BATCH_BAD_DATE");
      const unknown = await t.post(
        "/v1/batch/runs",
        { date: "2001-01-01", models: ["t1.nope"] },
        ADMIN,
      );
      assert.equal(unknown.status, 404);
      assert.equal(unknown.json.error.code, "TRB_BATCH_UNKNOWN_MODEL");
      const reader = await t.post(
        "/v1/batch/runs",
        { date: "2001-01-01" },
        {
          authorization: `Bearer ${KEYS.reader.secret}`,
        },
      );
      assert.equal(reader.status, 403);
      const snap = await t.post(
        "/v1/query",
        { sql: "SELECT 1", snapshot: 999999 },
        {
          authorization: `Bearer ${KEYS.reader.secret}`,
        },
      );
      assert.equal(snap.status, 404);
      assert.equal(snap.json.error.code, "TRB_SERVE_UNKNOWN_SNAPSHOT");
    });
  });
});
