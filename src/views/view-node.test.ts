// Tests of view compilation: measures parsed, buckets, and filters that agree in SQL and JavaScript.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";
import fc from "fast-check";
import { parseConfigText, resolvePipeline } from "../config/index.js";
import {
  bucketOf,
  bucketSql,
  compileViews,
  filterFunction,
  filterSql,
  parseViewMeasure,
  type ViewFilter,
} from "./view-node.js";

const CONFIG = `
streams:
  flights:
    time_field: date
    fields: { date: timestamp, delay: integer, origin: string, destination: string }
views:
  departures:
    stream: flights
    dimensions: [origin]
    measures:
      flights: count
      avg_delay: avg(delay)
      p95_delay: p95(delay)
      destinations: count_distinct(destination)
    filters:
      - { field: delay, op: not_null }
`;

describe("compileViews", () => {
  test("the demo's view compiles to a frozen node", () => {
    const pipeline = resolvePipeline(parseConfigText(CONFIG, "/p/tributary.yaml", {}), "/p");
    const node = compileViews(pipeline).get("departures")!;
    assert.equal(node.grainMs, 60_000);
    assert.equal(node.timeColumn, "_event_time");
    assert.deepEqual(node.dimensions, [{ name: "origin", type: "string" }]);
    assert.deepEqual(
      node.measures.map((m) => [m.name, m.kind, m.field, m.q]),
      [
        ["flights", "count", undefined, undefined],
        ["avg_delay", "avg", "delay", undefined],
        ["p95_delay", "quantile", "delay", 0.95],
        ["destinations", "count_distinct", "destination", undefined],
      ],
    );
    assert.equal(node.allowedLatenessMs, 300_000);
    assert.ok(Object.isFrozen(node) && Object.isFrozen(node.measures[0]));
    const other = resolvePipeline(
      parseConfigText(CONFIG.replace("p95(delay)", "p99(delay)"), "/p/tributary.yaml", {}),
      "/p",
    );
    assert.notEqual(
      compileViews(other).get("departures")!.hash,
      node.hash,
      "a changed measure changes the hash",
    );
    assert.deepEqual(parseViewMeasure("x", "p99.9(delay)"), {
      name: "x",
      kind: "quantile",
      field: "delay",
      q: 0.999,
    });
  });

  test("buckets agree between JavaScript and DuckDB at every grain", async () => {
    const db = await DuckDBInstance.create(":memory:");
    const conn = await db.connect();
    try {
      for (const [grain, ms] of [
        ["minute", 60_000],
        ["hour", 3_600_000],
        ["day", 86_400_000],
      ] as const) {
        for (const t of [0, 59_999, 60_000, Date.parse("2001-03-04T05:06:07.891Z")]) {
          const iso = new Date(t).toISOString().replace("T", " ").replace("Z", "");
          const r = await conn.runAndReadAll(
            `SELECT epoch_ms(${bucketSql(`TIMESTAMP '${iso}'`, grain)})::BIGINT`,
          );
          assert.equal(Number(r.getRows()[0]![0] as bigint), bucketOf(t, ms), `${grain} ${iso}`);
        }
      }
    } finally {
      conn.closeSync();
      db.closeSync();
    }
  });
});

describe("filters", () => {
  const value = fc.oneof(
    fc.constant(null),
    fc.integer({ min: -3, max: 3 }),
    fc.constantFrom("a", "b", "c"),
  );
  const filterArb: fc.Arbitrary<ViewFilter> = fc.oneof(
    fc
      .record({
        field: fc.constantFrom("n", "s"),
        op: fc.constantFrom("=", "!=", "<", "<=", ">", ">="),
      })
      .chain((f) =>
        (f.field === "n" ? fc.integer({ min: -3, max: 3 }) : fc.constantFrom("a", "b", "c")).map(
          (v) => ({ ...f, value: v }) as ViewFilter,
        ),
      ),
    fc.record({
      field: fc.constant("n"),
      op: fc.constantFrom("in", "not_in"),
      value: fc.array(fc.integer({ min: -3, max: 3 }), { minLength: 1, maxLength: 3 }),
    }) as fc.Arbitrary<ViewFilter>,
    fc.record({
      field: fc.constantFrom("n", "s"),
      op: fc.constantFrom("is_null", "not_null"),
    }) as fc.Arbitrary<ViewFilter>,
  );

  test("the SQL and the JavaScript form of any filters select the same records", async () => {
    const db = await DuckDBInstance.create(":memory:");
    const conn = await db.connect();
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.array(filterArb, { maxLength: 3 }),
          fc.array(
            fc.record({
              n: value.filter((v) => v === null || typeof v === "number"),
              s: value.filter((v) => v === null || typeof v === "string"),
            }),
            { minLength: 1, maxLength: 12 },
          ),
          async (filters, records) => {
            const rows = records
              .map(
                (r, i) =>
                  `(${i}, ${r.n === null ? "NULL::INTEGER" : r.n}, ${r.s === null ? "NULL::VARCHAR" : `'${r.s}'`})`,
              )
              .join(", ");
            const res = await conn.runAndReadAll(
              `SELECT i FROM (VALUES ${rows}) t(i, n, s) WHERE ${filterSql(filters)} ORDER BY i`,
            );
            const sql = res.getRows().map((r) => Number(r[0]));
            const pass = filterFunction(filters);
            const js = records.flatMap((r, i) => (pass(r) ? [i] : []));
            assert.deepEqual(js, sql, filterSql(filters));
          },
        ),
        { numRuns: 150 },
      );
    } finally {
      conn.closeSync();
      db.closeSync();
    }
  });
});
