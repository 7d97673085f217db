// Tests of ExactSum: the correctly rounded exact total, whatever the order, split or merge tree.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { ExactSum } from "./exact-sum.js";
import { mergeTree } from "./merge-tree.test-util.js";

/** A finite double as an exact integer multiple of 2^-1074. */
function scaled(x: number): bigint {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const exponent = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  const magnitude = exponent === 0 ? fraction : (fraction | (1n << 52n)) << BigInt(exponent - 1);
  return bits >> 63n ? -magnitude : magnitude;
}

/** The exact sum of doubles rounded to the nearest double, ties to even: the reference. */
function reference(xs: readonly number[]): number {
  const total = xs.reduce((s, x) => s + scaled(x), 0n);
  const negative = total < 0n;
  let m = negative ? -total : total;
  const bits = m.toString(2).length;
  const shift = Math.max(0, bits - 53);
  if (shift > 0) {
    const rest = m & ((1n << BigInt(shift)) - 1n);
    const half = 1n << BigInt(shift - 1);
    m >>= BigInt(shift);
    if (rest > half || (rest === half && (m & 1n) === 1n)) m += 1n;
  }
  // m ≤ 2^53 and -1074 ≤ shift - 1074: the product is exact, or the overflow to ±Infinity.
  const value = Number(m) * 2 ** (shift - 1074);
  return negative ? -value : value;
}

const doubles = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e300, max: 1e300 }),
  fc.double({ noNaN: true, min: -1e-300, max: 1e-300 }),
  fc.integer({ min: -1e6, max: 1e6 }).map((n) => n / 10),
  fc.maxSafeInteger(),
);

describe("ExactSum", () => {
  test("sums that plain addition gets wrong", () => {
    assert.equal(new ExactSum().add(0.1).add(0.2).add(0.3).value(), 0.6);
    assert.equal(new ExactSum().add(1e100).add(1).add(-1e100).value(), 1);
    const big = new ExactSum();
    for (let i = 0; i < 1000; i++) big.add(2 ** 53 - 1);
    assert.equal(big.value(), 1000 * (2 ** 53 - 1), "exact far beyond 2^53, rounded once");
    assert.equal(new ExactSum().value(), 0);
    assert.equal(new ExactSum().count, 0);
  });

  test("value is the exact total correctly rounded, for any doubles", () => {
    fc.assert(
      fc.property(fc.array(doubles, { maxLength: 40 }), (xs) => {
        const s = new ExactSum();
        for (const x of xs) s.add(x);
        assert.equal(s.value(), reference(xs));
        assert.equal(s.count, xs.length);
      }),
      { numRuns: 1000 },
    );
  });

  test("any split and merge tree gives the same value and the same bytes", () => {
    fc.assert(
      fc.property(
        fc.array(doubles, { maxLength: 60 }),
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 60 }),
        fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 1 }),
        (xs, parts, assign, picks) => {
          const sums = Array.from({ length: parts }, () => new ExactSum());
          xs.forEach((x, i) => sums[assign[i % assign.length]! % parts]!.add(x));
          const merged = mergeTree(sums, picks, (a, b) => a.merge(b));
          const whole = new ExactSum();
          for (const x of [...xs].reverse()) whole.add(x);
          assert.equal(merged.value(), whole.value());
          assert.equal(merged.count, xs.length);
          assert.deepEqual(merged.serialize(), whole.serialize());
        },
      ),
      { numRuns: 500 },
    );
  });

  test("serialize round-trips; merge leaves its argument and clones alone", () => {
    const a = new ExactSum().add(1e307).add(-1e-300).add(3);
    const b = ExactSum.deserialize(a.serialize());
    assert.equal(b.value(), a.value());
    assert.equal(b.count, 3);
    assert.deepEqual(b.expansion(), a.expansion());
    const before = a.serialize();
    a.clone().merge(a);
    new ExactSum().merge(a);
    assert.deepEqual(a.serialize(), before);
    assert.equal(a.merge(a).count, 6, "merging with itself doubles");
    assert.throws(() => ExactSum.deserialize(new Uint8Array(7)), RangeError);
    assert.throws(() => ExactSum.deserialize(new Uint8Array(8).fill(0xff)), RangeError);
  });

  test("fromInteger equals adding the integers", () => {
    fc.assert(
      fc.property(fc.array(fc.maxSafeInteger(), { maxLength: 50 }), (xs) => {
        const total = xs.reduce((s, x) => s + BigInt(x), 0n);
        const added = new ExactSum();
        for (const x of xs) added.add(x);
        assert.deepEqual(ExactSum.fromInteger(total, xs.length).serialize(), added.serialize());
      }),
      { numRuns: 300 },
    );
    assert.equal(ExactSum.fromInteger(2n ** 80n + 1n, 2).expansion().length, 2);
  });

  test("refuses non-finite terms and an overflowing total, leaving the state as it was", () => {
    const s = new ExactSum().add(1.5e308);
    assert.throws(() => s.add(Number.NaN), RangeError);
    assert.throws(() => s.add(Infinity), RangeError);
    assert.throws(() => s.add(1.5e308), /overflows/);
    assert.equal(s.value(), 1.5e308);
    assert.equal(s.count, 1);
    assert.equal(s.add(-1.5e308).value(), 0);
  });
});
