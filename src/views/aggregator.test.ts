// Property tests of view aggregation: any split and merge order equals one pass and a plain recompute.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { parseConfigText, resolvePipeline } from "../config/index.js";
import { ViewAggregator } from "./aggregator.js";
import { compileViews, type ViewNode } from "./view-node.js";

const node: ViewNode = compileViews(
  resolvePipeline(
    parseConfigText(
      `
streams:
  flights:
    time_field: date
    fields: { date: timestamp, delay: integer, origin: string, destination: string }
views:
  v:
    stream: flights
    dimensions: [origin]
    measures:
      n: count
      total: sum(delay)
      low: min(delay)
      high: max(delay)
      mean: avg(delay)
      dest: count_distinct(destination)
      p50: p50(delay)
      p95: p95(delay)
    filters: [{ field: destination, op: "!=", value: XXX }]
`,
      "/p/tributary.yaml",
      {},
    ),
    "/p",
  ),
).get("v")!;

interface Event {
  readonly time: number;
  readonly record: Record<string, unknown>;
}

const BASE = Date.parse("2001-01-01T00:00:00Z");
const eventArb: fc.Arbitrary<Event> = fc
  .record({
    minute: fc.integer({ min: 0, max: 180 }),
    second: fc.integer({ min: 0, max: 59 }),
    delay: fc.option(fc.integer({ min: -30, max: 300 }), { freq: 8 }),
    origin: fc.constantFrom("SFO", "LAX", "ORD"),
    destination: fc.constantFrom("JFK", "BOS", "SEA", "DEN", "XXX"),
  })
  .map(({ minute, second, ...record }) => ({
    time: BASE + minute * 60_000 + second * 1000,
    record,
  }));

/** The view's rows computed directly, without any state: the reference. */
function recompute(events: readonly Event[], grainMs: number): unknown[] {
  const groups = new Map<string, Event[]>();
  for (const e of events) {
    if (e.record.destination === "XXX") continue;
    const bucket = Math.floor(e.time / grainMs) * grainMs;
    const key = JSON.stringify([bucket, e.record.origin]);
    groups.set(key, [...(groups.get(key) ?? []), e]);
  }
  return [...groups.entries()]
    .sort(([a], [b]) => {
      const [ba, oa] = JSON.parse(a) as [number, string];
      const [bb, ob] = JSON.parse(b) as [number, string];
      return ba - bb || (oa < ob ? -1 : oa > ob ? 1 : 0);
    })
    .map(([key, es]) => {
      const [bucket, origin] = JSON.parse(key) as [number, string];
      const delays = es
        .map((e) => e.record.delay)
        .filter((d): d is number => typeof d === "number");
      const sorted = [...delays].sort((a, b) => a - b);
      // quantile_disc: the smallest value whose cumulative share reaches q.
      const disc = (q: number): number | null =>
        sorted.length === 0 ? null : sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
      const sum = delays.reduce((a, b) => a + b, 0);
      return {
        bucket,
        dims: [origin],
        values: [
          es.length,
          delays.length === 0 ? null : sum,
          delays.length === 0 ? null : Math.min(...delays),
          delays.length === 0 ? null : Math.max(...delays),
          delays.length === 0 ? null : sum / delays.length,
          new Set(es.map((e) => e.record.destination)).size,
          disc(0.5),
          disc(0.95),
        ],
      };
    });
}

describe("ViewAggregator", () => {
  test("any split into workers, merged in any order through checkpoints, equals a recompute", () => {
    fc.assert(
      fc.property(
        fc.array(eventArb, { maxLength: 300 }),
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 300, maxLength: 300 }),
        fc.array(fc.nat(), { minLength: 4, maxLength: 4 }),
        (events, parts, order) => {
          const workers = [0, 1, 2, 3].map(() => new ViewAggregator(node));
          events.forEach((e, i) => workers[parts[i]!]!.add(e.record, e.time));
          // Merge the workers' checkpoints into one, in a random order.
          const merged = new ViewAggregator(node);
          const sequence = [0, 1, 2, 3].sort((a, b) => order[a]! - order[b]! || a - b);
          for (const w of sequence) merged.restore(workers[w]!.serialize());
          assert.deepEqual(merged.rows(), recompute(events, 60_000));
          // Rolling minutes up to hours equals aggregating by the hour.
          assert.deepEqual(merged.rows({ grainMs: 3_600_000 }), recompute(events, 3_600_000));
        },
      ),
      { numRuns: 60 },
    );
  });

  test("rows select a time range and dimension values; eviction drops old buckets", () => {
    const a = new ViewAggregator(node);
    a.add({ delay: 5, origin: "SFO", destination: "JFK" }, BASE);
    a.add({ delay: 7, origin: "LAX", destination: "JFK" }, BASE + 60_000);
    a.add({ delay: 9, origin: "SFO", destination: "BOS" }, BASE + 120_000);
    assert.equal(
      a.add({ delay: 1, origin: "SFO", destination: "XXX" }, BASE),
      false,
      "filtered out",
    );
    assert.deepEqual(
      a
        .rows({ from: BASE + 60_000, where: new Map([[0, "SFO"]]) })
        .map((r) => [r.bucket - BASE, r.values[0]]),
      [[120_000, 1]],
    );
    assert.equal(a.evictBefore(BASE + 60_000), 1);
    assert.equal(a.size, 2);
  });

  test("a checkpoint of another definition of the view is refused", () => {
    const a = new ViewAggregator(node);
    a.add({ delay: 5, origin: "SFO", destination: "JFK" }, BASE);
    const other = new ViewAggregator({ ...node, hash: "different" });
    assert.throws(() => other.restore(a.serialize()), /another definition/);
  });

  test("no dimensions or several, nulls included: each distinct tuple is one bucket, as GROUP BY", () => {
    const project = (dimensions: string): ViewNode =>
      compileViews(
        resolvePipeline(
          parseConfigText(
            `
streams:
  flights:
    time_field: date
    fields: { date: timestamp, delay: integer, origin: string, destination: string }
views:
  v:
    stream: flights
    dimensions: ${dimensions}
    measures: { n: count, total: sum(delay) }
`,
            "/p/tributary.yaml",
            {},
          ),
          "/p",
        ),
      ).get("v")!;
    const record = fc.record({
      minute: fc.integer({ min: 0, max: 5 }),
      delay: fc.option(fc.integer({ min: 0, max: 3 })),
      origin: fc.option(fc.constantFrom("SFO", "null", "n")),
    });
    for (const dims of [[], ["origin"], ["origin", "delay"]]) {
      const view = project(`[${dims.join(", ")}]`);
      fc.assert(
        fc.property(
          fc.array(record, { maxLength: 80 }),
          fc.integer({ min: 0, max: 6 }),
          (rs, cut) => {
            const a = new ViewAggregator(view);
            const groups = new Map<string, number>();
            for (const { minute, ...r } of rs) {
              a.add(r, BASE + minute * 60_000);
              const key = JSON.stringify([
                BASE + minute * 60_000,
                ...dims.map((d) => r[d as keyof typeof r]),
              ]);
              groups.set(key, (groups.get(key) ?? 0) + 1);
            }
            assert.equal(a.size, groups.size);
            const got = new Map(
              a.rows().map((row) => [JSON.stringify([row.bucket, ...row.dims]), row.values[0]]),
            );
            assert.deepEqual(got, groups);
            const older = [...groups.keys()].filter(
              (k) => (JSON.parse(k) as number[])[0]! < BASE + cut * 60_000,
            );
            assert.equal(a.evictBefore(BASE + cut * 60_000), older.length);
            assert.equal(a.size, groups.size - older.length);
            assert.equal([...a.buckets()].length, a.size);
          },
        ),
        { numRuns: 40 },
      );
    }
  });
});
