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
});
