// The measure catalogue shared by batch, speed and serve: per kind, a mergeable state and its operations.
import { TributaryError } from "../errors.js";
import { DistinctSketch } from "./distinct-sketch.js";
import { ExactSum } from "./exact-sum.js";
import { hashSql, hashValueParts, type HashableValue } from "./hash.js";
import { QuantileSketch } from "./quantile-sketch.js";

/** What a measure computes. */
export type MeasureKind = "count" | "sum" | "min" | "max" | "avg" | "count_distinct" | "quantile";

/**
 * A measure as declared (`count`, `sum(delay)`, `p95(delay)`...). `ViewMeasure` of view-node.ts
 * is one. Plan data: frozen by `parseMeasure`.
 */
export interface MeasureSpec {
  /** The measure's name (its output column). */
  readonly name: string;
  readonly kind: MeasureKind;
  /** The field it reads; undefined only for `count`, which then counts events. */
  readonly field?: string | undefined;
  /** For `quantile`: the quantile as a fraction, 0 < q < 1 (`p95` → 0.95). */
  readonly q?: number | undefined;
}

/** The column types a measure reads (the config's field types, minus timestamp and json). */
export type MeasureFieldType = "string" | "integer" | "number" | "boolean";

/**
 * A measure's partial state: a number (count), a number or null (min, max), an ExactSum (sum,
 * avg), a DistinctSketch (count_distinct) or a QuantileSketch (quantile). Treat it as opaque:
 * only the measure that made it reads it.
 */
export type MeasureState = number | null | ExactSum | DistinctSketch | QuantileSketch;

/**
 * The operations of one measure. Every state merges associatively and commutatively: any split
 * of the input and any merge tree give the same `finalize()` as one pass over all of it, exactly
 * for count, sum, min, max and avg, and within the sketches' bounds for count_distinct (≤ 2 %
 * relative; the state itself is identical) and quantiles (≤ 1 % of the count in rank).
 *
 * Ownership: `add` and `mergeInto` may change the state they are given and return the state to
 * keep (a number state cannot change in place: always use the returned value). `merge` changes
 * neither input. No operation keeps a reference to its arguments.
 */
export interface Measure {
  readonly spec: MeasureSpec;
  /** The state of no values. */
  empty(): MeasureState;
  /**
   * Adds one event's value of the field (for `count` without a field: pass anything, every call
   * counts). null and undefined are skipped, as SQL aggregates skip NULL (`count(f)` counts
   * non-null values). A TypeError or RangeError when the value is of the wrong type: a number
   * for sum, avg, min, max and quantiles (finite; -0 is 0); a string, safe integer, bigint or
   * boolean for count_distinct. Collect already guarantees these for declared fields.
   */
  add(state: MeasureState, value: unknown): MeasureState;
  /** A new state holding both; `a` and `b` are unchanged. */
  merge(a: MeasureState, b: MeasureState): MeasureState;
  /** Merges `source` into `target`, which it may change; returns the state to keep. */
  mergeInto(target: MeasureState, source: MeasureState): MeasureState;
  /**
   * The measure's value: count → the count; sum → the exact sum rounded once (null when no
   * values); avg → that sum / count (null when none); min, max → null when none; count_distinct
   * → the estimate rounded (exact up to 8,192 values); quantile → `quantile_disc` semantics
   * (null when none).
   */
  finalize(state: MeasureState): number | null;
  /** Bytes to store (batch Parquet BLOB, speed checkpoint): version, state kind, payload. */
  serialize(state: MeasureState): Uint8Array;
  /** The state `serialize` wrote; a RangeError for bytes of another state kind. */
  deserialize(bytes: Uint8Array): MeasureState;
  /**
   * A DuckDB aggregate expression whose value, given to `fromPartial`, is this measure's state of
   * the group's rows: the batch layer's half of "write a metric once, run it twice". `columnSql`
   * is the field's column, quoted (unused by `count` without a field); `type` its declared type.
   */
  partialSql(columnSql: string | undefined, type: MeasureFieldType | undefined): string;
  /**
   * The state of a `partialSql` result as `@duckdb/node-api` returns it to JavaScript
   * (`getRowObjectsJS()`: BIGINT/HUGEINT as bigint, LIST as array, STRUCT as object, MAP as
   * `{key, value}` entries). Equal to the state `add` builds from the same rows, byte for byte,
   * except a quantile past 1,024 distinct values (then: same error bound).
   */
  fromPartial(value: unknown): MeasureState;
  /**
   * A DuckDB aggregate over `partialSql` values (`columnSql`, one per row) giving one merged
   * partial per group: how SQL combines rows of the batch layer, e.g. a bucket split across two
   * day partitions. `type` is the field's declared type, as for `partialSql`.
   */
  mergeSql(columnSql: string, type: MeasureFieldType | undefined): string;
  /**
   * A DuckDB scalar expression finalizing a `mergeSql` value: `finalize` in SQL, with the same
   * semantics (quantile_disc, NULL when no values). Exact where `finalize` uses a sketch
   * (count_distinct past 8,192 values, quantiles past 1,024 distinct values); a DOUBLE sum is
   * DuckDB's compensated `fsum` where `finalize` rounds the exact sum once.
   */
  finalSql(mergedSql: string, type: MeasureFieldType | undefined): string;
}

const FORMAT = 1;
/** State kind codes of the serialized form; avg shares sum's state, the quantiles one sketch. */
const STATE_CODE = {
  count: 1,
  sum: 2,
  min: 3,
  max: 4,
  avg: 2,
  count_distinct: 5,
  quantile: 6,
} as const satisfies Record<MeasureKind, number>;

/**
 * The key of a measure's state: measures with equal keys have identical states, so a view can
 * store one (`sum(d)` and `avg(d)` share `sum(d)`; `p50(d)` and `p99(d)` share `quantile(d)`).
 * @example stateKey(parseMeasure("avg(delay)")) // "sum(delay)"
 */
export function stateKey(spec: MeasureSpec): string {
  const kind = spec.kind === "avg" ? "sum" : spec.kind;
  return spec.field === undefined ? kind : `${kind}(${spec.field})`;
}

const MEASURE =
  /^\s*(count|sum|min|max|avg|count_distinct|p(\d{1,2}(?:\.\d+)?))\s*(?:\(\s*([a-z][a-z0-9_]*)?\s*\))?\s*$/;

/**
 * Parses a measure as written in config: `count`, `count(f)`, `sum(f)`, `min(f)`, `max(f)`,
 * `avg(f)`, `count_distinct(f)` or a quantile `pNN(f)` with 0 < NN < 100 (`p50`, `p95`, `p99.9`).
 * `name` defaults to the text without spaces. TRB_CONFIG_INVALID on anything else.
 * @example parseMeasure("p95(delay)") // { name: "p95(delay)", kind: "quantile", field: "delay", q: 0.95 }
 */
export function parseMeasure(text: string, name?: string): MeasureSpec {
  const m = MEASURE.exec(text);
  const fail = (why: string): never => {
    throw new TributaryError("TRB_CONFIG_INVALID", `measure \`${text}\`: ${why}`);
  };
  if (!m)
    return fail(
      "use count, sum(f), min(f), max(f), avg(f), count_distinct(f) or a quantile such as p95(f)",
    );
  const [, word, pct, field] = m;
  const spec = {
    name: name ?? text.replace(/\s+/g, ""),
    kind: (pct === undefined ? word : "quantile") as MeasureKind,
    field,
    q: undefined as number | undefined,
  };
  if (pct !== undefined) {
    if (!(Number(pct) > 0 && Number(pct) < 100))
      fail("a quantile is p1..p99 (e.g. p50, p95, p99.9)");
    // As view-node.ts's parseViewMeasure: p99.9 → 0.999, not 99.9 / 100 = 0.9990000000000001.
    spec.q = Number((Number(pct) / 100).toPrecision(12));
  }
  if (field === undefined && spec.kind !== "count")
    fail(`${word} needs a field, e.g. ${word}(delay)`);
  return Object.freeze(spec);
}

/**
 * The operations of a measure.
 * @example
 * const m = measureFor(parseMeasure("avg(delay)"));
 * let s = m.empty();
 * for (const e of events) s = m.add(s, e.delay);
 * m.finalize(m.merge(s, other)); // the average delay of both parts
 */
export function measureFor(spec: MeasureSpec): Measure {
  if (spec.kind !== "count" && spec.field === undefined)
    throw new TypeError(`measure ${spec.name}: ${spec.kind} needs a field`);
  switch (spec.kind) {
    case "count":
      return countMeasure(spec);
    case "sum":
    case "avg":
      return sumMeasure(spec);
    case "min":
    case "max":
      return extremeMeasure(spec);
    case "count_distinct":
      return distinctMeasure(spec);
    case "quantile":
      if (spec.q === undefined || !(spec.q > 0 && spec.q < 1))
        throw new TypeError(`measure ${spec.name}: a quantile needs 0 < q < 1`);
      return quantileMeasure(spec);
    default:
      throw new TypeError(`measure ${spec.name}: unknown kind ${String(spec.kind)}`);
  }
}

function countMeasure(spec: MeasureSpec): Measure {
  const everyCall = spec.field === undefined;
  const count = (s: MeasureState): number => expect(spec, s, typeof s === "number");
  const self: Measure = {
    spec,
    empty: () => 0,
    add: (s, v) => (everyCall || (v !== null && v !== undefined) ? (s as number) + 1 : s),
    merge: (a, b) => count(a) + count(b),
    mergeInto: (a, b) => self.merge(a, b),
    finalize: (s) => count(s),
    serialize: (s) => frame(spec, f64(count(s))),
    deserialize: (bytes) => wholeNumber(readF64(unframe(spec, bytes))),
    partialSql: (column) => (everyCall ? "count(*)" : `count(${need(spec, column)})`),
    fromPartial: (v) => wholeNumber(Number(v)),
    mergeSql: (c) => `CAST(coalesce(sum(${c}), 0) AS BIGINT)`,
    finalSql: (m) => m,
  };
  return self;
}

function sumMeasure(spec: MeasureSpec): Measure {
  const sum = (s: MeasureState): ExactSum => expect(spec, s, s instanceof ExactSum);
  const self: Measure = {
    spec,
    empty: () => new ExactSum(),
    add: (s, v) => (v === null || v === undefined ? s : (s as ExactSum).add(numberOf(spec, v))),
    merge: (a, b) => sum(a).clone().merge(sum(b)),
    mergeInto: (a, b) => sum(a).merge(sum(b)),
    finalize: (s) => {
      const x = sum(s);
      if (x.count === 0) return null;
      return spec.kind === "avg" ? x.value() / x.count : x.value();
    },
    serialize: (s) => frame(spec, sum(s).serialize()),
    deserialize: (bytes) => ExactSum.deserialize(unframe(spec, bytes)),
    // DuckDB sums an integer column exactly (HUGEINT) but not a DOUBLE one, so a DOUBLE column
    // comes as its values. A BIGINT column over 2^53 cannot be summed exactly by DOUBLE at all.
    partialSql: (column, type) => {
      const c = need(spec, column);
      // BIGINT, not HUGEINT: Parquet has no 128-bit integer (DuckDB would store a DOUBLE and lose
      // exactness past 2^53); a sum past 2^63 fails the cast loudly instead of rounding.
      return type === "integer"
        ? `struct_pack(n := count(${c}), s := CAST(sum(${c}) AS BIGINT))`
        : `list(${c}) FILTER (WHERE ${c} IS NOT NULL)`;
    },
    fromPartial: (v) => {
      if (v === null || v === undefined) return new ExactSum();
      if (Array.isArray(v)) {
        const s = new ExactSum();
        for (const x of v) s.add(numberOf(spec, typeof x === "bigint" ? Number(x) : x));
        return s;
      }
      const { n, s } = v as { n: bigint | number; s: bigint | number | null };
      if (typeof s === "number" && !Number.isSafeInteger(s))
        throw new RangeError(`measure ${spec.name}: the stored sum ${s} is not an exact integer`);
      const total = typeof s === "number" ? BigInt(s) : (s ?? 0n);
      return ExactSum.fromInteger(total, wholeNumber(Number(n)));
    },
    mergeSql: (c, type) =>
      type === "integer"
        ? `struct_pack(n := coalesce(sum(${c}.n), 0), s := sum(${c}.s))`
        : `flatten(list(${c}) FILTER (WHERE ${c} IS NOT NULL))`,
    finalSql: (m, type) => {
      if (type === "integer") {
        const total = `CAST(${m}.s AS DOUBLE)`;
        return `CASE WHEN ${m}.n = 0 THEN NULL ELSE ${spec.kind === "avg" ? `${total} / CAST(${m}.n AS DOUBLE)` : total} END`;
      }
      const total = `list_aggregate(${m}, 'fsum')`;
      return `CASE WHEN coalesce(len(${m}), 0) = 0 THEN NULL ELSE ${spec.kind === "avg" ? `${total} / len(${m})` : total} END`;
    },
  };
  return self;
}

function extremeMeasure(spec: MeasureSpec): Measure {
  const pick = spec.kind === "min" ? Math.min : Math.max;
  const extreme = (s: MeasureState): number | null =>
    expect(spec, s, s === null || typeof s === "number");
  const self: Measure = {
    spec,
    empty: () => null,
    add: (s, v) => {
      if (v === null || v === undefined) return s;
      const x = numberOf(spec, v);
      return s === null ? x : pick(s as number, x);
    },
    merge: (a, b) => {
      const x = extreme(a);
      const y = extreme(b);
      return x === null ? y : y === null ? x : pick(x, y);
    },
    mergeInto: (a, b) => self.merge(a, b),
    finalize: (s) => extreme(s),
    serialize: (s) => {
      const x = extreme(s);
      return frame(spec, x === null ? new Uint8Array(0) : f64(x));
    },
    deserialize: (bytes) => {
      const payload = unframe(spec, bytes);
      return payload.length === 0 ? null : numberOf(spec, readF64(payload));
    },
    partialSql: (column) => `${spec.kind}(${need(spec, column)})`,
    fromPartial: (v) =>
      v === null || v === undefined ? null : numberOf(spec, typeof v === "bigint" ? Number(v) : v),
    mergeSql: (c) => `${spec.kind}(${c})`,
    finalSql: (m) => `CAST(${m} AS DOUBLE)`,
  };
  return self;
}

function distinctMeasure(spec: MeasureSpec): Measure {
  const sketch = (s: MeasureState): DistinctSketch => expect(spec, s, s instanceof DistinctSketch);
  const parts = new Uint32Array(2);
  const self: Measure = {
    spec,
    empty: () => new DistinctSketch(),
    add: (s, v) => {
      if (v === null || v === undefined) return s;
      hashValueParts(v as HashableValue, parts);
      return (s as DistinctSketch).addParts(parts[1]!, parts[0]!);
    },
    merge: (a, b) => sketch(a).clone().merge(sketch(b)),
    mergeInto: (a, b) => sketch(a).merge(sketch(b)),
    finalize: (s) => Math.round(sketch(s).estimate()),
    serialize: (s) => frame(spec, sketch(s).serialize()),
    deserialize: (bytes) => DistinctSketch.deserialize(unframe(spec, bytes)),
    partialSql: (column, type) => {
      const c = need(spec, column);
      if (type !== "string" && type !== "integer" && type !== "boolean")
        throw new TypeError(
          `measure ${spec.name}: count_distinct reads string, integer or boolean`,
        );
      return `list(DISTINCT ${hashSql(c, type)}) FILTER (WHERE ${c} IS NOT NULL)`;
    },
    fromPartial: (v) => DistinctSketch.fromHashes((v ?? []) as bigint[]),
    mergeSql: (c) => `list_distinct(flatten(list(${c}) FILTER (WHERE ${c} IS NOT NULL)))`,
    finalSql: (m) => `CAST(coalesce(len(${m}), 0) AS BIGINT)`,
  };
  return self;
}

function quantileMeasure(spec: MeasureSpec): Measure {
  const sketch = (s: MeasureState): QuantileSketch => expect(spec, s, s instanceof QuantileSketch);
  const q = spec.q!;
  const self: Measure = {
    spec,
    empty: () => new QuantileSketch(),
    add: (s, v) =>
      v === null || v === undefined ? s : (s as QuantileSketch).add(numberOf(spec, v)),
    merge: (a, b) => sketch(a).clone().merge(sketch(b)),
    mergeInto: (a, b) => sketch(a).merge(sketch(b)),
    finalize: (s) => sketch(s).quantile(q),
    serialize: (s) => frame(spec, sketch(s).serialize()),
    deserialize: (bytes) => QuantileSketch.deserialize(unframe(spec, bytes)),
    partialSql: (column) => {
      const c = need(spec, column);
      return `histogram(${c}) FILTER (WHERE ${c} IS NOT NULL)`;
    },
    fromPartial: (v) => {
      const entries = (v ?? []) as { key: number | bigint; value: number | bigint }[];
      return QuantileSketch.fromHistogram(
        entries.map((e) => Number(e.key)),
        entries.map((e) => e.value),
      );
    },
    // The histograms' values, each repeated by its count, sorted: the group's values.
    mergeSql: (c) =>
      `list_sort(flatten(list(flatten(list_transform(map_entries(${c}), e -> list_transform(range(CAST(e.value AS BIGINT)), i -> e.key)))) FILTER (WHERE ${c} IS NOT NULL)))`,
    // The rank as QuantileSketch.quantiles computes it, in the same DOUBLE arithmetic.
    finalSql: (m) => {
      const n = `CAST(len(${m}) AS DOUBLE)`;
      return `CASE WHEN coalesce(len(${m}), 0) = 0 THEN NULL ELSE CAST(${m}[CAST(greatest(1, ${n} - floor(${n} - ${q}::DOUBLE * ${n})) AS BIGINT)] AS DOUBLE) END`;
    },
  };
  return self;
}

/** The state, when `ok`; else the caller mixed up states of different measures. */
function expect<T>(spec: MeasureSpec, s: MeasureState, ok: boolean): T {
  if (!ok) throw new TypeError(`measure ${spec.name}: not a ${spec.kind} state`);
  return s as T;
}

function numberOf(spec: MeasureSpec, v: unknown): number {
  if (typeof v !== "number")
    throw new TypeError(`measure ${spec.name}: ${spec.kind} reads numbers, got ${typeof v}`);
  if (!Number.isFinite(v)) throw new RangeError(`measure ${spec.name}: ${v} is not finite`);
  return v === 0 ? 0 : v;
}

function wholeNumber(n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`not a count: ${n}`);
  return n;
}

function need(spec: MeasureSpec, column: string | undefined): string {
  if (column === undefined)
    throw new TypeError(`measure ${spec.name}: partialSql needs the column`);
  return column;
}

function f64(x: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setFloat64(0, x, true);
  return out;
}

function readF64(bytes: Uint8Array): number {
  if (bytes.length !== 8) throw new RangeError("not a measure state: bad length");
  return new DataView(bytes.buffer, bytes.byteOffset, 8).getFloat64(0, true);
}

function frame(spec: MeasureSpec, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + payload.length);
  out[0] = FORMAT;
  out[1] = STATE_CODE[spec.kind];
  out.set(payload, 2);
  return out;
}

function unframe(spec: MeasureSpec, bytes: Uint8Array): Uint8Array {
  if (bytes.length < 2 || bytes[0] !== FORMAT)
    throw new RangeError(`measure ${spec.name}: not a serialized measure state`);
  if (bytes[1] !== STATE_CODE[spec.kind])
    throw new RangeError(`measure ${spec.name}: the bytes hold another kind of state`);
  return bytes.subarray(2);
}
