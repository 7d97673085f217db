// The state of sum and avg: an exact sum of doubles, so any order or merge tree gives the same total.

/**
 * The exact sum of finite doubles, kept as non-overlapping partials (Shewchuk, "Adaptive
 * Precision Floating-Point Arithmetic", 1997; the algorithm of Python's `math.fsum`), and the
 * number of terms. Floating-point addition is not associative (0.1 + 0.2 + 0.3 differs from
 * 0.1 + (0.2 + 0.3)); this sum is, because nothing is rounded until `value()`, which returns the
 * exact total correctly rounded. So every split and merge order gives the same `value()`, and
 * `serialize()` writes a canonical form: equal totals give equal bytes. Integers stay exact far
 * beyond 2^53 (the partials carry the low bits); only `value()` rounds.
 *
 * A RangeError when an intermediate sum overflows a double (a total beyond ±1.8e308).
 *
 * @example
 * const s = new ExactSum().add(0.1).add(0.2).add(0.3);
 * s.value(); // 0.6 (a plain loop gives 0.6000000000000001)
 */
export class ExactSum {
  #partials: number[] = [];
  #count = 0;

  /** Terms added (and merged in). */
  get count(): number {
    return this.#count;
  }

  /** Adds a finite number; a RangeError for NaN or ±Infinity. */
  add(x: number): this {
    if (!Number.isFinite(x)) throw new RangeError(`ExactSum.add: ${x} is not a finite number`);
    this.#addExact(x);
    this.#count++;
    return this;
  }

  /** Adds every term of `other`; `other` is not changed. */
  merge(other: ExactSum): this {
    const theirs = other.#partials.slice();
    for (const p of theirs) this.#addExact(p);
    this.#count += other.#count;
    return this;
  }

  /** A copy that shares nothing with this sum. */
  clone(): ExactSum {
    const c = new ExactSum();
    c.#partials = this.#partials.slice();
    c.#count = this.#count;
    return c;
  }

  /** The exact total, correctly rounded to the nearest double (ties to even); 0 when empty. */
  value(): number {
    const p = this.#partials;
    let n = p.length;
    if (n === 0) return 0;
    let hi = p[--n]!;
    let lo = 0;
    while (n > 0) {
      const x = hi;
      const y = p[--n]!;
      hi = x + y;
      lo = y - (hi - x);
      if (lo !== 0) break;
    }
    // Round half to even correctly when the rest of the partials push a tie one way (fsum).
    if (n > 0 && ((lo < 0 && p[n - 1]! < 0) || (lo > 0 && p[n - 1]! > 0))) {
      const y = lo * 2;
      const x = hi + y;
      if (y === x - hi) hi = x;
    }
    return hi;
  }

  /**
   * The canonical expansion of the exact total: t0 = the total rounded, t1 = the rest rounded,
   * ... until nothing is left. Unique for a total, whatever the order the terms came in.
   */
  expansion(): number[] {
    const rest = this.clone();
    const out: number[] = [];
    for (let t = rest.value(); t !== 0; t = rest.value()) {
      out.push(t);
      rest.#addExact(-t);
    }
    return out;
  }

  /** Bytes: the term count and the canonical expansion, as little-endian doubles. */
  serialize(): Uint8Array {
    const terms = this.expansion();
    const out = new Uint8Array(8 * (1 + terms.length));
    const view = new DataView(out.buffer);
    view.setFloat64(0, this.#count, true);
    terms.forEach((t, i) => view.setFloat64(8 * (i + 1), t, true));
    return out;
  }

  /** The sum `serialize` wrote; a RangeError when the bytes are not one. */
  static deserialize(bytes: Uint8Array): ExactSum {
    if (bytes.length < 8 || bytes.length % 8 !== 0)
      throw new RangeError("not an ExactSum: bad length");
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const count = view.getFloat64(0, true);
    if (!Number.isSafeInteger(count) || count < 0)
      throw new RangeError("not an ExactSum: bad count");
    const s = new ExactSum();
    for (let at = 8; at < bytes.length; at += 8) {
      const t = view.getFloat64(at, true);
      if (!Number.isFinite(t)) throw new RangeError("not an ExactSum: a term is not finite");
      s.#addExact(t);
    }
    s.#count = count;
    return s;
  }

  /**
   * The sum of `count` terms whose exact total is the integer `total` (e.g. DuckDB's `sum` of a
   * BIGINT column, a HUGEINT): exact at any size up to ±1.8e308.
   */
  static fromInteger(total: bigint, count: number): ExactSum {
    if (!Number.isSafeInteger(count) || count < 0)
      throw new RangeError(`ExactSum.fromInteger: bad count ${count}`);
    const s = new ExactSum();
    // Peel off the nearest double each time: every step is exact, the rest shrinks by 2^52.
    for (let rest = total; rest !== 0n;) {
      const t = Number(rest);
      if (!Number.isFinite(t)) throw new RangeError("ExactSum.fromInteger: beyond a double");
      s.#addExact(t);
      rest -= BigInt(t);
    }
    s.#count = count;
    return s;
  }

  /** Shewchuk's grow-expansion: adds x to the partials with no rounding error. */
  #addExact(x: number): void {
    let p = this.#partials;
    const n = p.length;
    // The partials grow in magnitude and do not overlap, so every intermediate sum is below
    // |x| + 2·|largest|: when that is finite nothing can overflow and the partials are updated in
    // place; else on a copy, so that an overflow throws and leaves the state as it was.
    if (n > 0 && !(Math.abs(x) + 2 * Math.abs(p[n - 1]!) < Number.MAX_VALUE)) p = p.slice();
    let i = 0;
    for (let j = 0; j < n; j++) {
      const y = p[j]!;
      const hi = x + y;
      // Two-sum, with the larger magnitude first: lo is exactly what hi rounded away.
      const lo = Math.abs(x) < Math.abs(y) ? x - (hi - y) : y - (hi - x);
      if (lo !== 0) p[i++] = lo;
      x = hi;
    }
    if (!Number.isFinite(x)) throw new RangeError("ExactSum: the total overflows a double");
    if (x !== 0) p[i++] = x;
    // Shrinking to 0 and pushing again would reallocate on every add.
    if (p.length !== i) p.length = i;
    this.#partials = p;
  }
}
