// Tests of QuantileSketch: exact = DuckDB's quantile_disc, rank error ≤ 1 % for any split and merge tree.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DOUBLE, DuckDBInstance, LIST, listValue } from "@duckdb/node-api";
import fc from "fast-check";
import { QUANTILE_EXACT_MAX, QuantileSketch } from "./quantile-sketch.js";

/** xorshift32 as uniform numbers in [0, 1): reproducible large inputs. */
function uniform(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

/** Folds `parts` with `merge` in the tree the `picks` (numbers in [0, 1)) choose. */
function mergeTree<T>(parts: T[], picks: () => number, merge: (a: T, b: T) => T): T {
  const pool = parts.slice();
  const pick = (n: number): number => Math.floor(picks() * n);
  while (pool.length > 1) {
    const [a] = pool.splice(pick(pool.length), 1);
    const j = pick(pool.length);
    pool[j] = pick(2) === 0 ? merge(pool[j]!, a!) : merge(a!, pool[j]!);
  }
  return pool[0]!;
}

/**
 * How far, as a fraction of n, the rank the answer `x` covers is from the rank quantile_disc
 * asks for at `q` (0 when x is a right answer). `sorted` holds every value.
 */
function rankError(sorted: Float64Array, x: number, q: number): number {
  const n = sorted.length;
  const want = Math.max(1, n - Math.floor(n - q * n));
  const firstAbove = (strict: boolean): number => {
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (strict ? sorted[mid]! <= x : sorted[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const below = firstAbove(false);
  const upTo = firstAbove(true);
  if (want > below && want <= upTo) return 0;
  return (want <= below ? below + 1 - want : want - upTo) / n;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const EVERY_PERMILLE = Array.from({ length: 1001 }, (_, i) => i / 1000);

describe("QuantileSketch", () => {
  test("small inputs are exact and agree with DuckDB's quantile_disc", async () => {
    const db = await DuckDBInstance.create(":memory:");
    const conn = await db.connect();
    try {
      const qs = [0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1];
      const samples = fc.sample(
        fc.array(
          fc.oneof(
            fc.integer({ min: -50, max: 500 }),
            fc.double({ noNaN: true, min: -1e9, max: 1e9 }),
          ),
          { minLength: 1, maxLength: 300 },
        ),
        { numRuns: 60, seed: 42 },
      );
      for (const values of samples) {
        const s = new QuantileSketch();
        for (const v of values) s.add(v);
        assert.ok(s.isExact);
        const reader = await conn.runAndReadAll(
          `SELECT ${qs.map((q) => `quantile_disc(v, ${q})`).join(", ")} FROM unnest($1) t(v)`,
          [listValue(values)],
          [LIST(DOUBLE)],
        );
        const expected = (reader.getRowsJS()[0] as number[]).map((x) => (x === 0 ? 0 : x));
        assert.deepEqual(s.quantiles(qs), expected, JSON.stringify(values));
      }
    } finally {
      conn.closeSync();
      db.closeSync();
    }
  });

  test("while exact, any split and merge tree gives the one-pass state", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -300, max: 1500 }), { maxLength: 400 }),
        fc.integer({ min: 1, max: 10 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 50 }),
        fc.integer({ min: 1 }),
        (values, parts, assign, seed) => {
          const sketches = Array.from({ length: parts }, () => new QuantileSketch());
          values.forEach((v, i) => sketches[assign[i % assign.length]! % parts]!.add(v));
          const merged = mergeTree(sketches, uniform(seed), (a, b) => a.merge(b));
          const whole = new QuantileSketch();
          for (const v of values) whole.add(v);
          assert.equal(hex(merged.serialize()), hex(whole.serialize()));
        },
      ),
      { numRuns: 200 },
    );
  });

  test("rank error ≤ 1 % at every permille, for any input shape, split and merge tree", (t) => {
    const n = 100_000;
    const shapes: Record<string, (r: () => number) => number[]> = {
      uniform: (r) => Array.from({ length: n }, () => r()),
      "heavy-tailed": (r) => Array.from({ length: n }, () => 1 / (1 - r()) ** (1 / 1.1)),
      "many ties": (r) => Array.from({ length: n }, () => (r() < 0.3 ? 7 : Math.floor(r() * 3000))),
      sorted: (r) => Array.from({ length: n }, () => r()).sort((a, b) => a - b),
      "reverse-sorted": (r) => Array.from({ length: n }, () => r()).sort((a, b) => b - a),
    };
    let worst = 0;
    for (const [shape, make] of Object.entries(shapes)) {
      for (const [split, parts] of [
        ["one pass", 1],
        ["a few parts", 7],
        ["many parts", 400],
        ["interleaved parts", -50],
      ] as const) {
        const r = uniform(shape.length * 1000 + parts + 500);
        const values = make(r);
        const sketches = Array.from({ length: Math.abs(parts) }, () => new QuantileSketch());
        if (parts < 0) {
          // Each value to a random part (as a work-queue consumer sees them).
          for (const v of values) sketches[Math.floor(r() * -parts)]!.add(v);
        } else {
          // Contiguous runs (as time grains or partitions see them), of random lengths.
          const cuts = Array.from({ length: parts - 1 }, () => Math.floor(r() * n)).sort(
            (a, b) => a - b,
          );
          let part = 0;
          values.forEach((v, i) => {
            while (part < cuts.length && i >= cuts[part]!) part++;
            sketches[part]!.add(v);
          });
        }
        const merged = mergeTree(sketches, r, (a, b) => a.merge(b));
        assert.equal(merged.count, n);
        const sorted = Float64Array.from(values).sort();
        const answers = merged.quantiles(EVERY_PERMILLE);
        let error = 0;
        EVERY_PERMILLE.forEach((q, i) => {
          error = Math.max(error, rankError(sorted, answers[i]!, q));
        });
        assert.ok(error <= 0.01, `${shape}, ${split}: rank error ${(100 * error).toFixed(3)} %`);
        worst = Math.max(worst, error);
      }
    }
    t.diagnostic(`worst rank error: ${(100 * worst).toFixed(3)} %`);
  });

  test("the same input in the same order gives the same state; min and max stay exact", () => {
    const make = (): QuantileSketch => {
      const r = uniform(9);
      const s = new QuantileSketch();
      for (let i = 0; i < 30_000; i++) s.add(r() * 1000 - 500);
      return s;
    };
    const a = make();
    const b = make();
    assert.ok(!a.isExact);
    assert.equal(hex(a.serialize()), hex(b.serialize()));
    const r = uniform(9);
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < 30_000; i++) {
      const v = r() * 1000 - 500;
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    assert.deepEqual(a.quantiles([0, 1]), [min, max]);
  });

  test("serialize round-trips both forms; merge leaves its argument alone", () => {
    const r = uniform(5);
    const exact = new QuantileSketch();
    const kll = new QuantileSketch();
    for (let i = 0; i < 500; i++) exact.add(Math.floor(r() * 100));
    for (let i = 0; i < 50_000; i++) kll.add(r());
    for (const s of [exact, kll, new QuantileSketch()]) {
      const bytes = s.serialize();
      const back = QuantileSketch.deserialize(bytes);
      assert.equal(hex(back.serialize()), hex(bytes));
      assert.deepEqual(back.quantiles(EVERY_PERMILLE), s.quantiles(EVERY_PERMILLE));
      assert.equal(back.count, s.count);
    }
    const before = [hex(exact.serialize()), hex(kll.serialize())];
    exact.clone().merge(kll);
    kll.clone().merge(exact);
    assert.deepEqual([hex(exact.serialize()), hex(kll.serialize())], before);
    assert.equal(exact.clone().merge(exact).count, 1000, "merging with itself doubles");
    assert.equal(hex(new QuantileSketch().merge(kll).serialize()), hex(kll.serialize()));
    assert.equal(hex(kll.clone().merge(new QuantileSketch()).serialize()), hex(kll.serialize()));
    const good = kll.serialize();
    for (const bad of [
      new Uint8Array(0),
      good.subarray(0, good.length - 8),
      Uint8Array.from([0x51, 1, 0, 1, 0, 0, 0]),
      Uint8Array.from([0x51, 1, 7]),
    ])
      assert.throws(() => QuantileSketch.deserialize(bad), RangeError);
  });

  test("fromHistogram: the adds' state while exact, the bound past it", () => {
    const values = [3, -0, 0, 3, 1.5];
    const adds = new QuantileSketch();
    for (const v of values) adds.add(v);
    const hist = QuantileSketch.fromHistogram([3, 0, -0, 1.5], [2n, 1, 1, 1]);
    assert.equal(hex(hist.serialize()), hex(adds.serialize()));
    const m = 5 * QUANTILE_EXACT_MAX;
    const big = QuantileSketch.fromHistogram(
      Array.from({ length: m }, (_, i) => i),
      Array.from({ length: m }, (_, i) => 1 + (i % 5)),
    );
    const sorted = Float64Array.from(
      Array.from({ length: m }, (_, i) => Array<number>(1 + (i % 5)).fill(i)).flat(),
    );
    assert.equal(big.count, sorted.length);
    const answers = big.quantiles(EVERY_PERMILLE);
    EVERY_PERMILLE.forEach((q, i) => assert.ok(rankError(sorted, answers[i]!, q) <= 0.01));
    assert.throws(() => QuantileSketch.fromHistogram([1], [1.5]), RangeError);
    assert.throws(() => QuantileSketch.fromHistogram([NaN], [1]), RangeError);
  });

  test("edge cases: empty, -0, non-finite values, q outside 0..1", () => {
    const s = new QuantileSketch();
    assert.equal(s.quantile(0.5), null);
    s.add(-0);
    assert.ok(Object.is(s.quantile(0.5), 0));
    assert.throws(() => s.add(Number.NaN), RangeError);
    assert.throws(() => s.add(-Infinity), RangeError);
    assert.throws(() => s.quantile(1.5), RangeError);
    assert.equal(s.count, 1);
  });
});
