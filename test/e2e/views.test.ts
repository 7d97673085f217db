// A lambda view's two halves on the same events: the batch layer's partial states (SQL over the lake)
// and the speed layer's (JavaScript over the stream) give the same rows, and merge across any cut.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";
import fc from "fast-check";
import { quoteString } from "../../src/lake/index.js";
import { ViewAggregator, compileViews, viewMeasures } from "../../src/views/index.js";
import { FLIGHTS_STREAM, KEYS, startTestNode } from "./harness.js";

const AIRPORTS = ["SFO", "LAX", "ORD"];
const DESTINATIONS = ["JFK", "BOS", "SEA", "DEN"];
const BASE = Date.parse("2001-01-01T00:00:00Z");

const CONFIG = {
  name: "views-e2e",
  streams: { flights: FLIGHTS_STREAM },
  keys: [
    { id: KEYS.writer.id, secret: KEYS.writer.secret, scopes: ["write:flights"] },
    { id: KEYS.reader.id, secret: KEYS.reader.secret, scopes: ["read:*"] },
    { id: KEYS.admin.id, secret: KEYS.admin.secret, scopes: ["admin"] },
  ],
  lake: { flush: { max_bytes: "16MiB", max_age: "60s" } },
  views: {
    departures: {
      stream: "flights",
      dimensions: ["origin"],
      measures: {
        flights: "count",
        avg_delay: "avg(delay)",
        max_delay: "max(delay)",
        p95_delay: "p95(delay)",
        destinations: "count_distinct(destination)",
      },
      filters: [{ field: "distance", op: ">", value: 100 }],
    },
  },
};

type Flight = {
  flight_id: string;
  date: string;
  delay: number | null;
  distance: number;
  origin: string;
  destination: string;
};

const flightsArb = fc.array(
  fc.record({
    minute: fc.integer({ min: 0, max: 3 * 24 * 60 - 1 }),
    delay: fc.option(fc.integer({ min: -20, max: 200 }), { freq: 6 }),
    distance: fc.integer({ min: 50, max: 900 }),
    origin: fc.constantFrom(...AIRPORTS),
    destination: fc.constantFrom(...DESTINATIONS),
  }),
  { minLength: 1, maxLength: 400 },
);

describe("lambda view halves", () => {
  it("batch partial states equal the speed layer's states, and merge at any cut", async () => {
    const t = await startTestNode(CONFIG);
    const node = compileViews(t.pipeline).get("departures")!;
    const measures = viewMeasures(node);
    const db = await DuckDBInstance.create(":memory:");
    const conn = await db.connect();
    let round = 0;
    const everything: Flight[] = [];
    try {
      await fc.assert(
        fc.asyncProperty(
          flightsArb,
          fc.integer({ min: 0, max: 3 * 24 * 60 }),
          async (raw, cutMinute) => {
            round++;
            const flights: Flight[] = raw.map((r, i) => ({
              flight_id: `R${round}-${i}`,
              date: new Date(BASE + r.minute * 60_000).toISOString().slice(0, 19) + "Z",
              delay: r.delay,
              distance: r.distance,
              origin: r.origin,
              destination: r.destination,
            }));
            // The speed half: the events, folded in JavaScript (here: this round's only).
            const speed = new ViewAggregator(node);
            for (const f of flights) speed.add(f, Date.parse(f.date));

            // The batch half: land, build the view's day partitions, read their partial states.
            for (let i = 0; i < flights.length; i += 200) {
              const res = await t.send("flights", flights.slice(i, i + 200));
              assert.equal(res.status, 200, res.text);
            }
            await t.flush();
            const run = await t.post(
              "/v1/batch/runs",
              { mode: "backfill", from: "2001-01-01", to: "2001-01-03", force: true, wait: true },
              { authorization: `Bearer ${KEYS.admin.secret}` },
            );
            assert.equal(run.status, 200, run.text);
            assert.equal(run.json.run.status, "succeeded", run.text);
            const files = await t.node.backends.catalog.files({
              layer: "view_state",
              name: "departures",
            });
            const batch = new ViewAggregator(node);
            if (files.length > 0) {
              const paths = files
                .map((f) => quoteString(`${t.pipeline.lakeDir}/${f.path}`))
                .join(", ");
              const reader = await conn.runAndReadAll(
                `SELECT epoch_ms(bucket)::DOUBLE AS bucket_ms, * FROM read_parquet([${paths}], hive_partitioning = true)`,
              );
              for (const row of reader.getRowObjectsJS()) {
                batch.mergeStates(
                  Number(row.bucket_ms),
                  [row.origin],
                  measures.map((m) => m.fromPartial(row[m.spec.name])),
                );
              }
            }
            // All rounds' events are in the lake: compare this round's flights only through a
            // fresh speed aggregator over every round so far.
            everything.push(...flights);
            const all = new ViewAggregator(node);
            for (const f of everything) all.add(f, Date.parse(f.date));
            assert.deepEqual(batch.rows(), all.rows());
            // Any cut: batch before it, speed after it, merged, equals either half alone.
            const cut = BASE + cutMinute * 60_000;
            const merged = new ViewAggregator(node);
            for (const b of batch.buckets())
              if (b.bucket < cut) merged.mergeStates(b.bucket, b.dims, b.states);
            for (const b of all.buckets())
              if (b.bucket >= cut) merged.mergeStates(b.bucket, b.dims, b.states);
            assert.deepEqual(merged.rows({ grainMs: 3_600_000 }), all.rows({ grainMs: 3_600_000 }));
          },
        ),
        { numRuns: 4, includeErrorInReport: true },
      );
    } finally {
      conn.closeSync();
      db.closeSync();
      await t.close();
    }
  });

  it("GET /v1/views merges batch and speed at the batch watermark; late events appear once the batch covers their day", async () => {
    const t = await startTestNode(CONFIG);
    const node = compileViews(t.pipeline).get("departures")!;
    const auth = { authorization: `Bearer ${KEYS.reader.secret}` };
    const admin = { authorization: `Bearer ${KEYS.admin.secret}` };
    const view = async (): Promise<{ batch_until: string | null; rows: unknown[][] }> => {
      const res = await fetch(
        `${t.url}/v1/views/departures?from=2001-01-01T00:00:00Z&to=2001-01-04T00:00:00Z&grain=hour`,
        { headers: auth },
      );
      assert.equal(res.status, 200, await res.clone().text());
      return (await res.json()) as { batch_until: string | null; rows: unknown[][] };
    };
    /** The hourly rows of a recompute over `events`, as the endpoint writes them (minus the layer). */
    const expected = (events: readonly Flight[]): unknown[][] => {
      const agg = new ViewAggregator(node);
      for (const f of events) agg.add(f, Date.parse(f.date));
      return agg
        .rows({ grainMs: 3_600_000 })
        .map((r) => [new Date(r.bucket).toISOString(), ...r.dims, ...r.values]);
    };
    const withoutLayer = (rows: unknown[][]): unknown[][] => rows.map((r) => r.slice(0, -1));
    /** SQL `view.departures` gives the rows GET /v1/views gives at the view's grain, layers included. */
    const sameInSql = async (what: string): Promise<void> => {
      const res = await fetch(
        `${t.url}/v1/views/departures?from=2000-12-31T00:00:00Z&to=2001-01-05T00:00:00Z&grain=minute`,
        { headers: auth },
      );
      const http = ((await res.json()) as { rows: unknown[][] }).rows;
      const sql = await t.post(
        "/v1/query",
        {
          sql: `SELECT strftime(bucket, '%Y-%m-%dT%H:%M:%S.000Z') AS bucket, * EXCLUDE (bucket)
                FROM view.departures ORDER BY bucket, origin`,
        },
        auth,
      );
      assert.equal(sql.status, 200, sql.text);
      assert.deepEqual(sql.json.rows, http, `${what}: SQL view.departures and GET /v1/views agree`);
    };
    try {
      const flights: Flight[] = Array.from({ length: 300 }, (_, i) => ({
        flight_id: `V${i}`,
        date: new Date(BASE + i * 13 * 60_000).toISOString().slice(0, 19) + "Z",
        delay: (i * 7) % 50,
        distance: 80 + ((i * 37) % 500),
        origin: AIRPORTS[i % 3]!,
        destination: DESTINATIONS[i % 4]!,
      }));
      const res = await t.send("flights", flights);
      assert.equal(res.status, 200, res.text);
      await t.flush();
      const live = await view();
      assert.equal(live.batch_until, null, "no batch partition yet: the speed layer answers");
      assert.deepEqual(withoutLayer(live.rows), expected(flights));
      assert.ok(live.rows.every((r) => r[r.length - 1] === "speed"));
      await sameInSql("speed only");

      // The batch layer covers the first day: its buckets come from the batch layer now.
      const run = await t.post("/v1/batch/runs", { date: "2001-01-01", wait: true }, admin);
      assert.equal(run.json.run.status, "succeeded", run.text);
      const cut = await view();
      assert.equal(cut.batch_until, "2001-01-02T00:00:00.000Z");
      assert.deepEqual(withoutLayer(cut.rows), expected(flights));
      const layers = new Set(
        cut.rows.map((r) => `${String(r[0]).slice(0, 10)} ${String(r[r.length - 1])}`),
      );
      assert.ok(
        layers.has("2001-01-01 batch") && layers.has("2001-01-02 speed"),
        [...layers].join(),
      );
      await sameInSql("after the first day's batch");

      // An event for the first day, far behind the watermark: late for the speed layer...
      const lateCount = async (): Promise<number> => {
        const text = await (await fetch(`${t.url}/metrics`)).text();
        const m = /^tributary_speed_events_late_total\{view="departures"\} (\d+)/m.exec(text);
        return m ? Number(m[1]) : 0;
      };
      const lateBefore = await lateCount();
      const late: Flight = {
        flight_id: "LATE",
        date: "2001-01-01T05:30:00Z",
        delay: 99,
        distance: 300,
        origin: "SFO",
        destination: "SEA",
      };
      assert.equal((await t.send("flights", [late])).status, 200);
      await t.flush();
      assert.equal(await lateCount(), lateBefore + 1, "counted late by the speed layer");
      assert.deepEqual(withoutLayer((await view()).rows), expected(flights), "not in the view yet");
      // ...and in the view once the batch layer rebuilds that day.
      const repaired = await t.post("/v1/batch/runs", { mode: "repair", wait: true }, admin);
      assert.equal(repaired.json.run.status, "succeeded", repaired.text);
      assert.deepEqual(withoutLayer((await view()).rows), expected([...flights, late]));
      await sameInSql("after the repair");
      const sqlCount = await t.post(
        "/v1/query",
        { sql: "SELECT sum(flights) AS n FROM view.departures" },
        auth,
      );
      assert.equal(
        sqlCount.json.rows[0][0],
        expected([...flights, late]).reduce((s, r) => s + Number(r[2]), 0),
      );
      const internal = await t.post(
        "/v1/query",
        { sql: "SELECT * FROM view_speed.departures" },
        auth,
      );
      assert.equal(internal.status, 400, "the speed rows' table is internal");
      const bad = await fetch(`${t.url}/v1/views/departures?grain=second`, { headers: auth });
      assert.equal(bad.status, 400);
      const unknown = await fetch(`${t.url}/v1/views/nope`, { headers: auth });
      assert.equal(unknown.status, 404);
    } finally {
      await t.close();
    }
  });
});
