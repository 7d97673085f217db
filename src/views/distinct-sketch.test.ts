// Tests of DistinctSketch: state equality for any split and merge tree, bytes, error ≤ 2 %, SQL registers.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";
import fc from "fast-check";
import {
  DISTINCT_EXACT_MAX,
  DISTINCT_REGISTERS,
  DistinctSketch,
  distinctRegisterSql,
} from "./distinct-sketch.js";
import { hashValue } from "./hash.js";
import { mergeTree, hex } from "./merge-tree.test-util.js";

/** xorshift128+: reproducible 64-bit hashes for the large tests (MD5 of a counter is slower). */
function hashes(seed: number): () => bigint {
  let a = BigInt(seed) * 0x9e3779b97f4a7c15n + 1n;
  let b = BigInt(seed) ^ 0xdeadbeefcafebabdn;
  const M = 0xffff_ffff_ffff_ffffn;
  return () => {
    let x = a;
    const y = b;
    a = y;
    x = (x ^ (x << 23n)) & M;
    b = x ^ y ^ (x >> 17n) ^ (y >> 26n);
    return (b + y) & M;
  };
}

describe("DistinctSketch", () => {
  test("small sets are exact; the zero hash and duplicates count right", () => {
    const s = DistinctSketch.fromHashes([0n, 5n, 0n, 2n ** 64n - 1n, 5n]);
    assert.equal(s.estimate(), 3);
    assert.ok(s.isExact);
    assert.deepEqual(s.hashes(), [0n, 5n, 2n ** 64n - 1n]);
    assert.equal(new DistinctSketch().estimate(), 0);
    assert.throws(() => s.add(-1n), RangeError);
    assert.throws(() => s.add(2n ** 64n), RangeError);
  });

  test("exact up to the threshold, dense one past it", () => {
    const next = hashes(1);
    const s = new DistinctSketch();
    for (let i = 0; i < DISTINCT_EXACT_MAX; i++) s.add(next());
    assert.ok(s.isExact);
    assert.equal(s.estimate(), DISTINCT_EXACT_MAX);
    s.add(next());
    assert.ok(!s.isExact);
    assert.ok(Math.abs(s.estimate() / (DISTINCT_EXACT_MAX + 1) - 1) < 0.02);
  });

  test("any split and merge tree gives the one-pass state, byte for byte", () => {
    // Hashes from a small pool (duplicates across parts) or fresh; sizes across the threshold.
    const arb = fc.record({
      seed: fc.integer({ min: 1, max: 1e9 }),
      size: fc.oneof(
        fc.integer({ min: 0, max: 50 }),
        fc.integer({ min: DISTINCT_EXACT_MAX - 40, max: DISTINCT_EXACT_MAX + 40 }),
        fc.integer({ min: 0, max: 3 * DISTINCT_EXACT_MAX }),
      ),
      parts: fc.integer({ min: 1, max: 12 }),
      assign: fc.array(fc.nat(), { minLength: 1, maxLength: 64 }),
      picks: fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), {
        minLength: 1,
        maxLength: 32,
      }),
    });
    fc.assert(
      fc.property(arb, ({ seed, size, parts, assign, picks }) => {
        const next = hashes(seed);
        const pool = Array.from({ length: Math.max(1, size >> 1) }, next);
        const all = Array.from({ length: size }, (_, i) =>
          i % 3 === 0 ? pool[i % pool.length]! : next(),
        );
        const sketches = Array.from({ length: parts }, () => new DistinctSketch());
        all.forEach((h, i) => sketches[assign[i % assign.length]! % parts]!.add(h));
        const merged = mergeTree(sketches, picks, (a, b) => a.merge(b));
        const whole = DistinctSketch.fromHashes(all);
        assert.equal(hex(merged.serialize()), hex(whole.serialize()));
        assert.equal(merged.estimate(), whole.estimate());
      }),
      { numRuns: 60 },
    );
  });

  test("merge leaves its argument unchanged; clone shares nothing", () => {
    const next = hashes(7);
    const small = DistinctSketch.fromHashes(Array.from({ length: 100 }, next));
    const big = DistinctSketch.fromHashes(Array.from({ length: 20_000 }, next));
    const before = [hex(small.serialize()), hex(big.serialize())];
    small.clone().merge(big);
    big.clone().merge(small);
    assert.deepEqual([hex(small.serialize()), hex(big.serialize())], before);
    const c = small.clone();
    c.add(next());
    assert.equal(small.estimate(), 100);
    assert.equal(c.estimate(), 101);
    assert.equal(small.merge(small).estimate(), 100, "merging with itself changes nothing");
  });

  test("serialize round-trips every form and refuses other bytes", () => {
    const next = hashes(3);
    for (const n of [0, 1, 500, DISTINCT_EXACT_MAX, DISTINCT_EXACT_MAX + 1, 15_000, 200_000]) {
      const s = DistinctSketch.fromHashes(Array.from({ length: n }, next));
      const bytes = s.serialize();
      const back = DistinctSketch.deserialize(bytes);
      assert.equal(hex(back.serialize()), hex(bytes), `n=${n}`);
      assert.equal(back.estimate(), s.estimate());
    }
    const good = DistinctSketch.fromHashes([1n, 2n]).serialize();
    for (const bad of [
      new Uint8Array(0),
      good.subarray(0, good.length - 1),
      Uint8Array.from([...good.subarray(0, 8), ...good.subarray(16), ...good.subarray(8, 16)]),
      Uint8Array.from([0x44, 1, 14, 0, 0, 0, 0, 0]),
      Uint8Array.from([0x44, 1, 16, 9]),
    ])
      assert.throws(() => DistinctSketch.deserialize(bad), RangeError);
  });

  test("relative error ≤ 2 % at every cardinality up to 10^6 (3 seeds each)", (t) => {
    const checkpoints = [
      1_000, 8_192, 8_193, 9_000, 12_000, 20_000, 35_000, 50_000, 80_000, 120_000, 200_000, 350_000,
      500_000, 750_000, 1_000_000,
    ];
    const worst = new Map<string, number>();
    for (const seed of [11, 22, 33]) {
      const next = hashes(seed);
      const s = new DistinctSketch();
      let n = 0;
      for (const target of checkpoints) {
        for (; n < target; n++) s.add(next());
        const error = Math.abs(s.estimate() / n - 1);
        assert.ok(error <= 0.02, `n=${n} seed=${seed}: error ${(100 * error).toFixed(2)} %`);
        const range = n <= DISTINCT_EXACT_MAX ? "exact" : n < 100_000 ? "<10^5" : "10^5..10^6";
        worst.set(range, Math.max(worst.get(range) ?? 0, error));
      }
    }
    t.diagnostic([...worst].map(([r, e]) => `worst ${r}: ${(100 * e).toFixed(3)} %`).join("; "));
  });

  test("DuckDB builds the same state: hashes as a list, or dense registers", async () => {
    const db = await DuckDBInstance.create(":memory:");
    const conn = await db.connect();
    try {
      await conn.run(
        `CREATE TABLE t AS SELECT i % 3 AS g, CASE WHEN i % 11 = 0 THEN NULL ELSE 'user-' || (i * 7 % 30011) END AS u
         FROM range(60000) r(i)`,
      );
      const users = (await conn.runAndReadAll("SELECT g, u FROM t")).getRowObjectsJS();
      const js = [0, 1, 2].map(() => new DistinctSketch());
      for (const r of users) if (r.u !== null) js[Number(r.g)]!.add(hashValue(r.u as string));
      // Small groups: the list of distinct hashes.
      const lists = await conn.runAndReadAll(
        `SELECT g, list(DISTINCT md5_number_lower(u)) FILTER (WHERE u IS NOT NULL) AS h
         FROM t WHERE g = 0 AND u < 'user-2' GROUP BY g`,
      );
      const small = DistinctSketch.fromHashes(lists.getRowObjectsJS()[0]!.h as bigint[]);
      const expected = new DistinctSketch();
      for (const r of users)
        if (r.g === 0n && r.u !== null && (r.u as string) < "user-2")
          expected.add(hashValue(r.u as string));
      assert.equal(hex(small.serialize()), hex(expected.serialize()));
      // Large groups: max rank per register, in SQL.
      const { index, rank } = distinctRegisterSql("u", "string");
      const regs = await conn.runAndReadAll(
        `SELECT g, list({'i': i, 'r': r}) AS regs FROM (
           SELECT g, ${index} AS i, max(${rank}) AS r FROM t WHERE u IS NOT NULL GROUP BY g, i
         ) GROUP BY g ORDER BY g`,
      );
      for (const row of regs.getRowObjectsJS()) {
        const registers = new Uint8Array(DISTINCT_REGISTERS);
        for (const { i, r } of row.regs as { i: number; r: number }[]) registers[i] = r;
        const sql = DistinctSketch.fromRegisters(registers);
        assert.equal(hex(sql.serialize()), hex(js[Number(row.g)]!.serialize()), `group ${row.g}`);
      }
    } finally {
      conn.closeSync();
      db.closeSync();
    }
  });
});
