// Tests of the measure catalogue: merged states equal one pass, bytes round-trip, DuckDB builds the same states.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";
import fc from "fast-check";
import { isTributaryError } from "../errors.js";
import {
  measureFor,
  parseMeasure,
  stateKey,
  type Measure,
  type MeasureFieldType,
  type MeasureState,
} from "./measures.js";
import { parseViewMeasure } from "./view-node.js";
import { mergeTree, hex } from "./merge-tree.test-util.js";

/** An event of the test stream: every field may be missing or null. */
interface Event {
  g: number;
  delay?: number | null;
  miles?: number | null;
  dest?: string | null;
  late?: boolean | null;
}

const maybe = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | null | undefined> =>
  fc.oneof({ weight: 8, arbitrary: arb }, fc.constant(null), fc.constant(undefined));

const eventArb: fc.Arbitrary<Event> = fc.record({
  g: fc.integer({ min: 0, max: 2 }),
  delay: maybe(fc.oneof(fc.integer({ min: -60, max: 600 }), fc.maxSafeInteger())),
  miles: maybe(
    fc.oneof(
      fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e12, max: 1e12 }),
      fc.integer({ min: 0, max: 3000 }).map((n) => n / 10),
    ),
  ),
  dest: maybe(fc.oneof(fc.constantFrom("SFO", "LAX", "JFK", "ORD"), fc.string())),
  late: maybe(fc.boolean()),
});

/** Measures over the test stream, with the field's declared type. */
const MEASURES: readonly [string, MeasureFieldType | undefined][] = [
  ["count", undefined],
  ["count(delay)", "integer"],
  ["sum(delay)", "integer"],
  ["sum(miles)", "number"],
  ["avg(delay)", "integer"],
  ["avg(miles)", "number"],
  ["min(delay)", "integer"],
  ["max(miles)", "number"],
  ["count_distinct(dest)", "string"],
  ["count_distinct(delay)", "integer"],
  ["count_distinct(late)", "boolean"],
  ["p50(delay)", "integer"],
  ["p95(miles)", "number"],
  ["p99.9(delay)", "integer"],
];
const measures = MEASURES.map(([text, type]) => ({ m: measureFor(parseMeasure(text)), type }));

const valueOf = (m: Measure, e: Event): unknown =>
  m.spec.field === undefined ? undefined : e[m.spec.field as keyof Event];

const onePass = (m: Measure, events: readonly Event[]): MeasureState => {
  let s = m.empty();
  for (const e of events) s = m.add(s, valueOf(m, e));
  return s;
};

describe("parseMeasure", () => {
  test("reads every kind, as view-node.ts's parseViewMeasure does", () => {
    const cases: [string, string, string | undefined, number | undefined][] = [
      ["count", "count", undefined, undefined],
      ["count()", "count", undefined, undefined],
      ["count(delay)", "count", "delay", undefined],
      [" sum( delay ) ", "sum", "delay", undefined],
      ["avg(delay)", "avg", "delay", undefined],
      ["min(distance)", "min", "distance", undefined],
      ["max(distance)", "max", "distance", undefined],
      ["count_distinct(destination)", "count_distinct", "destination", undefined],
      ["p50(delay)", "quantile", "delay", 0.5],
      ["p95(delay)", "quantile", "delay", 0.95],
      ["p99(delay)", "quantile", "delay", 0.99],
      ["p99.9(delay)", "quantile", "delay", 0.999],
      ["p5(delay)", "quantile", "delay", 0.05],
    ];
    for (const [text, kind, field, q] of cases) {
      const spec = parseMeasure(text);
      assert.deepEqual([spec.kind, spec.field, spec.q], [kind, field, q], text);
      assert.ok(Object.isFrozen(spec));
      const view = parseViewMeasure("m", text);
      assert.deepEqual([view.kind, view.field, view.q], [kind, field, q], text);
    }
    assert.equal(parseMeasure(" p95( delay )").name, "p95(delay)");
    assert.equal(parseMeasure("p95(delay)", "p95_delay").name, "p95_delay");
  });

  test("refuses what is not a measure, with TRB_CONFIG_INVALID", () => {
    for (const text of [
      "",
      "sum",
      "sum()",
      "p95",
      "count_distinct",
      "median(delay)",
      "p0(delay)",
      "p00(delay)",
      "p100(delay)",
      "p95.(delay)",
      "sum(Delay)",
      "sum(delay, miles)",
      "sum(delay",
      "count(*)",
    ])
      assert.throws(
        () => parseMeasure(text),
        (e) => isTributaryError(e, "TRB_CONFIG_INVALID") && e.message.includes(text),
        text,
      );
  });

  test("measureFor refuses incomplete specs", () => {
    assert.throws(() => measureFor({ name: "x", kind: "sum" }), TypeError);
    assert.throws(() => measureFor({ name: "x", kind: "quantile", field: "d", q: 1 }), TypeError);
    assert.throws(() => measureFor({ name: "x", kind: "nope" as never, field: "d" }), TypeError);
  });
});

describe("measures", () => {
  test("any split and merge tree equals one pass, exactly (states byte for byte)", () => {
    fc.assert(
      fc.property(
        fc.array(eventArb, { maxLength: 120 }),
        fc.integer({ min: 1, max: 9 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 40 }),
        fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), {
          minLength: 1,
          maxLength: 20,
        }),
        fc.boolean(),
        (events, parts, assign, picks, inPlace) => {
          for (const { m } of measures) {
            const states = Array.from({ length: parts }, () => m.empty());
            events.forEach((e, i) => {
              const p = assign[i % assign.length]! % parts;
              states[p] = m.add(states[p]!, valueOf(m, e));
            });
            const merged = mergeTree(states, picks, (a, b) =>
              inPlace ? m.mergeInto(a, b) : m.merge(a, b),
            );
            const whole = onePass(m, events);
            assert.equal(hex(m.serialize(merged)), hex(m.serialize(whole)), m.spec.name);
            assert.deepEqual(m.finalize(merged), m.finalize(whole), m.spec.name);
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  test("finalize is the plain answer; empty states finalize as SQL does", () => {
    const events: Event[] = [
      { g: 0, delay: 10, miles: 0.1, dest: "SFO", late: true },
      { g: 0, delay: null, miles: 0.2, dest: "LAX" },
      { g: 0, delay: 20, miles: 0.3, dest: "SFO", late: false },
      { g: 0, delay: -3 },
    ];
    const answers = Object.fromEntries(
      measures.map(({ m }) => [m.spec.name, m.finalize(onePass(m, events))]),
    );
    assert.deepEqual(answers, {
      count: 4,
      "count(delay)": 3,
      "sum(delay)": 27,
      "sum(miles)": 0.6,
      "avg(delay)": 9,
      "avg(miles)": 0.6 / 3, // the sum rounded once, then divided: 0.19999999999999998
      "min(delay)": -3,
      "max(miles)": 0.3,
      "count_distinct(dest)": 2,
      "count_distinct(delay)": 3,
      "count_distinct(late)": 2,
      "p50(delay)": 10,
      "p95(miles)": 0.3,
      "p99.9(delay)": 20,
    });
    const empty = Object.fromEntries(measures.map(({ m }) => [m.spec.name, m.finalize(m.empty())]));
    for (const [name, v] of Object.entries(empty))
      assert.equal(v, name.startsWith("count") ? 0 : null, name);
  });

  test("merge changes neither input; serialize round-trips; bytes name their kind", () => {
    const events = fc.sample(eventArb, { numRuns: 300, seed: 7 });
    for (const { m } of measures) {
      const a = onePass(m, events.slice(0, 150));
      const b = onePass(m, events.slice(150));
      const before = [hex(m.serialize(a)), hex(m.serialize(b))];
      m.merge(a, b);
      m.merge(b, a);
      assert.deepEqual([hex(m.serialize(a)), hex(m.serialize(b))], before, m.spec.name);
      for (const s of [a, m.empty()]) {
        const back = m.deserialize(m.serialize(s));
        assert.equal(hex(m.serialize(back)), hex(m.serialize(s)), m.spec.name);
        assert.deepEqual(m.finalize(back), m.finalize(s), m.spec.name);
      }
    }
    const [count, sum, avg] = ["count", "sum(delay)", "avg(delay)"].map((t) =>
      measureFor(parseMeasure(t)),
    );
    assert.throws(() => sum!.deserialize(count!.serialize(3)), RangeError);
    assert.throws(() => count!.merge(3, sum!.empty()), TypeError);
    // avg shares sum's state: a stored sum serves an avg.
    const s = sum!.add(sum!.add(sum!.empty(), 1), 2);
    assert.equal(avg!.finalize(avg!.deserialize(sum!.serialize(s))), 1.5);
  });

  test("stateKey: measures that can share one stored state", () => {
    const key = (t: string): string => stateKey(parseMeasure(t));
    assert.equal(key("avg(delay)"), key("sum(delay)"));
    assert.equal(key("p50(delay)"), key("p99(delay)"));
    assert.notEqual(key("count"), key("count(delay)"));
    assert.notEqual(key("min(delay)"), key("max(delay)"));
  });

  test("values of the wrong type are refused, not coerced", () => {
    const [sum, distinct] = ["sum(delay)", "count_distinct(dest)"].map((t) =>
      measureFor(parseMeasure(t)),
    );
    assert.throws(() => sum!.add(sum!.empty(), "12"), TypeError);
    assert.throws(() => sum!.add(sum!.empty(), Number.NaN), RangeError);
    assert.throws(() => distinct!.add(distinct!.empty(), 1.5), RangeError);
    assert.throws(() => distinct!.add(distinct!.empty(), { a: 1 }), TypeError);
  });

  test("DuckDB's partialSql gives the states JavaScript builds, byte for byte", async () => {
    const db = await DuckDBInstance.create(":memory:");
    const conn = await db.connect();
    try {
      const events = [
        ...fc.sample(eventArb, { numRuns: 400, seed: 11 }),
        // Integer sums past 2^53 and a double sum plain addition rounds.
        { g: 1, delay: 2 ** 53 - 1 },
        { g: 1, delay: 2 ** 53 - 1 },
        { g: 2, miles: 0.1 },
        { g: 2, miles: 0.2 },
        { g: 2, miles: 0.3 },
      ];
      await conn.run(
        "CREATE TABLE e (g INTEGER, delay BIGINT, miles DOUBLE, dest VARCHAR, late BOOLEAN)",
      );
      const appender = await conn.createAppender("e");
      for (const e of events) {
        appender.appendInteger(e.g);
        for (const [v, add] of [
          [e.delay, (x: number) => appender.appendBigInt(BigInt(x))],
          [e.miles, (x: number) => appender.appendDouble(x)],
          [e.dest, (x: string) => appender.appendVarchar(x)],
          [e.late, (x: boolean) => appender.appendBoolean(x)],
        ] as const) {
          if (v === null || v === undefined) appender.appendNull();
          else (add as (x: unknown) => void)(v);
        }
        appender.endRow();
      }
      appender.closeSync();
      const columns = measures.map(
        ({ m, type }, i) => `${m.partialSql(m.spec.field && `"${m.spec.field}"`, type)} AS m${i}`,
      );
      const reader = await conn.runAndReadAll(
        `SELECT g, ${columns.join(", ")} FROM e GROUP BY g ORDER BY g`,
      );
      const rows = reader.getRowObjectsJS();
      assert.equal(rows.length, 3);
      for (const row of rows) {
        const group = events.filter((e) => e.g === row.g);
        measures.forEach(({ m }, i) => {
          const sql = m.fromPartial(row[`m${i}`]);
          const js = onePass(m, group);
          assert.equal(hex(m.serialize(sql)), hex(m.serialize(js)), `${m.spec.name} g=${row.g}`);
        });
      }
    } finally {
      conn.closeSync();
      db.closeSync();
    }
  });

  test("DuckDB's mergeSql and finalSql over split partials give finalize's answer", async () => {
    const db = await DuckDBInstance.create(":memory:");
    const conn = await db.connect();
    try {
      const events = fc
        .sample(fc.tuple(eventArb, fc.integer({ min: 0, max: 3 })), { numRuns: 500, seed: 23 })
        .map(([e, split]) => ({ ...e, split }));
      events.push({ g: 1, delay: 2 ** 53 - 1, split: 0 }, { g: 1, delay: 2 ** 53 - 1, split: 1 });
      await conn.run(
        "CREATE TABLE e (g INTEGER, split INTEGER, delay BIGINT, miles DOUBLE, dest VARCHAR, late BOOLEAN)",
      );
      const appender = await conn.createAppender("e");
      for (const e of events) {
        appender.appendInteger(e.g);
        appender.appendInteger(e.split);
        for (const [v, add] of [
          [e.delay, (x: number) => appender.appendBigInt(BigInt(x))],
          [e.miles, (x: number) => appender.appendDouble(x)],
          [e.dest, (x: string) => appender.appendVarchar(x)],
          [e.late, (x: boolean) => appender.appendBoolean(x)],
        ] as const) {
          if (v === null || v === undefined) appender.appendNull();
          else (add as (x: unknown) => void)(v);
        }
        appender.endRow();
      }
      appender.closeSync();
      // Partial states per (g, split), as view_state partitions hold them, merged per g.
      const partials = measures.map(
        ({ m, type }, i) => `${m.partialSql(m.spec.field && `"${m.spec.field}"`, type)} AS m${i}`,
      );
      const merged = measures.map(({ m, type }, i) => `${m.mergeSql(`m${i}`, type)} AS m${i}`);
      const finals = measures.map(({ m, type }, i) => `${m.finalSql(`m${i}`, type)} AS m${i}`);
      const reader = await conn.runAndReadAll(
        `SELECT g, ${finals.join(", ")} FROM (
           SELECT g, ${merged.join(", ")} FROM (
             SELECT g, split, ${partials.join(", ")} FROM e GROUP BY g, split)
           GROUP BY g)
         ORDER BY g`,
      );
      const rows = reader.getRowObjectsJS();
      assert.equal(rows.length, 3);
      for (const row of rows) {
        const group = events.filter((e) => e.g === row.g);
        measures.forEach(({ m, type }, i) => {
          const js = m.finalize(onePass(m, group));
          const got = row[`m${i}`];
          const sql = typeof got === "bigint" ? Number(got) : (got as number | null);
          const what = `${m.spec.name} g=${row.g}`;
          if (
            type === "number" &&
            (m.spec.kind === "sum" || m.spec.kind === "avg") &&
            js !== null
          ) {
            // fsum is compensated, not exactly rounded: within a few ulps of the magnitudes summed.
            const magnitude = group.reduce((a, e) => a + Math.abs(e.miles ?? 0), 0);
            assert.ok(Math.abs(sql! - js) <= 1e-12 * magnitude, `${what}: ${sql} vs ${js}`);
          } else assert.equal(sql, js, what);
        });
      }
    } finally {
      conn.closeSync();
      db.closeSync();
    }
  });
});
