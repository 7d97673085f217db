// The states of a view per time bucket and dimension values: what the speed layer builds from events and serve merges.
import { measureFor, type Measure, type MeasureState } from "./measures.js";
import { bucketOf, filterFunction, type ViewNode } from "./view-node.js";

/** One bucket of a view: its start (epoch ms), dimension values, and a state per measure. */
export interface BucketStates {
  readonly bucket: number;
  readonly dims: readonly unknown[];
  states: MeasureState[];
}

/** A finalized row of a view, as queries return it. */
export interface ViewRow {
  readonly bucket: number;
  readonly dims: readonly unknown[];
  /** One value per measure, in the view's measure order. */
  readonly values: readonly (number | null)[];
}

/** Measures of a view, compiled once. */
export function viewMeasures(node: ViewNode): readonly Measure[] {
  return node.measures.map((m) =>
    measureFor({ name: m.name, kind: m.kind, field: m.field, q: m.q }),
  );
}

/**
 * Mergeable states of a view by bucket and dimensions. `add` folds one event in (the speed layer),
 * `mergeStates` folds a partial state in (another worker, the batch layer, a checkpoint). Every
 * operation is associative and commutative, so the states do not depend on arrival order.
 */
export class ViewAggregator {
  readonly node: ViewNode;
  readonly #measures: readonly Measure[];
  readonly #pass: (record: Readonly<Record<string, unknown>>) => boolean;
  /**
   * Bucket start → first dimension's value → ... → the bucket's states: nested Maps keyed by the
   * values themselves (SameValueZero keeps `1`, `"1"` and null apart), so the hot path builds
   * no key string. With no dimensions the bucket start maps to the states directly.
   */
  readonly #root = new Map<number, Level>();
  #size = 0;
  #version = 0;
  static #instances = 0;
  /** Tells aggregators apart (with `version`: equal id and version, equal states). */
  readonly id = ++ViewAggregator.#instances;

  constructor(node: ViewNode) {
    this.node = node;
    this.#measures = viewMeasures(node);
    this.#pass = filterFunction(node.filters);
  }

  /** Buckets held. */
  get size(): number {
    return this.#size;
  }

  /** Changes with every add, merge and eviction: equal versions hold equal states. */
  get version(): number {
    return this.#version;
  }

  /**
   * Adds one event (its fields by name) at event time `timeMs`. Returns false when the view's
   * filters leave it out.
   */
  add(record: Readonly<Record<string, unknown>>, timeMs: number): boolean {
    if (!this.#pass(record)) return false;
    this.#version++;
    const dims = this.node.dimensions;
    const bucket = bucketOf(timeMs, this.node.grainMs);
    // The hot path: walk the nested maps by the record's values; the dims array is only built
    // for a new bucket.
    let level: Level | undefined = this.#root.get(bucket);
    if (level === undefined) {
      level = dims.length === 0 ? this.#create(bucket, []) : new Map();
      this.#root.set(bucket, level);
      if (dims.length === 0) this.#size++;
    }
    for (let i = 0; i < dims.length; i++) {
      const map = level as Map<unknown, Level>;
      const value = record[dims[i]!.name] ?? null;
      let next = map.get(value);
      if (next === undefined) {
        next =
          i === dims.length - 1
            ? this.#create(
                bucket,
                dims.map((d) => record[d.name] ?? null),
              )
            : new Map();
        map.set(value, next);
        if (i === dims.length - 1) this.#size++;
      }
      level = next;
    }
    const entry = level as BucketStates;
    const ms = this.#measures;
    for (let i = 0; i < ms.length; i++) {
      const m = ms[i]!;
      entry.states[i] = m.add(
        entry.states[i]!,
        m.spec.field === undefined ? 1 : record[m.spec.field],
      );
    }
    return true;
  }

  /**
   * Merges partial states of one bucket (states in measure order). With `owned`, the caller hands
   * the states over (it will not use them again): a new bucket then keeps them without a copy.
   */
  mergeStates(
    bucket: number,
    dims: readonly unknown[],
    states: readonly MeasureState[],
    owned = false,
  ): void {
    this.#version++;
    const [entry, fresh] = this.#find(bucket, dims);
    if (fresh) {
      if (owned) entry.states = [...states];
      else {
        const ms = this.#measures;
        for (let i = 0; i < ms.length; i++)
          entry.states[i] = ms[i]!.mergeInto(entry.states[i]!, states[i]!);
      }
      return;
    }
    const ms = this.#measures;
    for (let i = 0; i < ms.length; i++) {
      entry.states[i] = ms[i]!.mergeInto(entry.states[i]!, states[i]!);
    }
  }

  /** Every bucket, in no particular order (the states are live: do not change them). */
  *buckets(): IterableIterator<BucketStates> {
    for (const level of this.#root.values()) yield* leaves(level, this.node.dimensions.length);
  }

  /** Drops every bucket that starts before `ms`; returns how many. */
  evictBefore(ms: number): number {
    let n = 0;
    for (const [bucket, level] of this.#root) {
      if (bucket < ms) {
        for (const _ of leaves(level, this.node.dimensions.length)) n++;
        this.#root.delete(bucket);
      }
    }
    this.#size -= n;
    if (n > 0) this.#version++;
    return n;
  }

  /** Finalized rows of the buckets in [from, to), rolled up to `grainMs` and filtered on dimensions. */
  rows(
    options: {
      from?: number;
      to?: number;
      grainMs?: number;
      where?: ReadonlyMap<number, unknown>;
    } = {},
  ): ViewRow[] {
    if (options.grainMs !== undefined && options.grainMs !== this.node.grainMs) {
      return finalizeBuckets(this.#measures, rollUp(this.#measures, this.buckets(), options));
    }
    // At the stored grain nothing merges: finalize the held states without copying them.
    const from = options.from ?? -Infinity;
    const to = options.to ?? Infinity;
    const picked: BucketStates[] = [];
    for (const b of this.buckets()) {
      if (b.bucket < from || b.bucket >= to) continue;
      if (options.where && [...options.where].some(([i, v]) => b.dims[i] !== v)) continue;
      picked.push(b);
    }
    return finalizeBuckets(this.#measures, picked);
  }

  /** The states as bytes, for a checkpoint. */
  serialize(): Uint8Array {
    const parts: unknown[] = [];
    for (const b of this.buckets()) {
      parts.push([
        b.bucket,
        b.dims,
        b.states.map((s, i) => Buffer.from(this.#measures[i]!.serialize(s)).toString("base64")),
      ]);
    }
    return new TextEncoder().encode(JSON.stringify({ hash: this.node.hash, buckets: parts }));
  }

  /**
   * Restores states written by `serialize` (merging them into what is held). Throws when the
   * bytes belong to another definition of the view (its hash changed): then start empty.
   */
  restore(bytes: Uint8Array): void {
    const data = JSON.parse(new TextDecoder().decode(bytes)) as {
      hash: string;
      buckets: [number, unknown[], string[]][];
    };
    if (data.hash !== this.node.hash) {
      throw new Error(
        `view ${this.node.name}: the checkpoint is of another definition of the view`,
      );
    }
    for (const [bucket, dims, states] of data.buckets) {
      this.mergeStates(
        bucket,
        dims,
        states.map((s, i) => this.#measures[i]!.deserialize(Buffer.from(s, "base64"))),
      );
    }
  }

  #create(bucket: number, dims: unknown[]): BucketStates {
    return { bucket, dims, states: this.#measures.map((m) => m.empty()) };
  }

  /** The bucket of these dimension values, created empty (`fresh`) when missing. */
  #find(bucket: number, dims: readonly unknown[]): [BucketStates, boolean] {
    const n = this.node.dimensions.length;
    if (dims.length !== n)
      throw new TypeError(`view ${this.node.name}: ${dims.length} dimension values for ${n}`);
    let level: Level | undefined = this.#root.get(bucket);
    let fresh = false;
    if (level === undefined) {
      level = n === 0 ? this.#create(bucket, []) : new Map();
      this.#root.set(bucket, level);
      fresh = n === 0;
    }
    for (let i = 0; i < n; i++) {
      const map = level as Map<unknown, Level>;
      const value = dims[i] ?? null;
      let next = map.get(value);
      if (next === undefined) {
        next =
          i === n - 1
            ? this.#create(
                bucket,
                dims.map((d) => d ?? null),
              )
            : new Map();
        map.set(value, next);
        fresh = i === n - 1;
      }
      level = next;
    }
    if (fresh) this.#size++;
    return [level as BucketStates, fresh];
  }
}

/** A node of the aggregator's nested maps: a map by the next dimension's value, or a bucket. */
type Level = Map<unknown, Level> | BucketStates;

/** The buckets under a level `depth` dimensions above them. */
function* leaves(level: Level, depth: number): Generator<BucketStates> {
  if (depth === 0) {
    yield level as BucketStates;
    return;
  }
  for (const next of (level as Map<unknown, Level>).values()) yield* leaves(next, depth - 1);
}

/** A map key of one dimension value that keeps types apart (`1` vs `"1"`, null vs `"null"`). */
function scalarKey(v: unknown): string {
  return v === null || v === undefined ? "n" : `${(typeof v)[0]!}${String(v)}`;
}

/** A map key of several dimension values. */
function dimsKey(dims: readonly unknown[]): string {
  return JSON.stringify(dims);
}

/**
 * Merges buckets into coarser ones (`grainMs`, a multiple of the stored grain), keeping those in
 * [from, to) whose dimension values match `where` (dimension index → value). Inputs are not changed.
 */
export function rollUp(
  measures: readonly Measure[],
  buckets: Iterable<BucketStates>,
  options: { from?: number; to?: number; grainMs?: number; where?: ReadonlyMap<number, unknown> },
): BucketStates[] {
  const out = new Map<string, BucketStates>();
  const from = options.from ?? -Infinity;
  const to = options.to ?? Infinity;
  for (const b of buckets) {
    if (b.bucket < from || b.bucket >= to) continue;
    if (options.where && [...options.where].some(([i, v]) => b.dims[i] !== v)) continue;
    const bucket = options.grainMs ? bucketOf(b.bucket, options.grainMs) : b.bucket;
    const key = `${bucket}|${JSON.stringify(b.dims)}`;
    const held = out.get(key);
    if (!held)
      out.set(key, {
        bucket,
        dims: b.dims,
        states: b.states.map((s, i) => measures[i]!.merge(measures[i]!.empty(), s)),
      });
    else
      for (let i = 0; i < measures.length; i++)
        held.states[i] = measures[i]!.mergeInto(held.states[i]!, b.states[i]!);
  }
  return [...out.values()];
}

/** Final values of buckets, in bucket then dimension order. */
export function finalizeBuckets(
  measures: readonly Measure[],
  buckets: readonly BucketStates[],
): ViewRow[] {
  return sortBuckets(buckets).map((b) => ({
    bucket: b.bucket,
    dims: b.dims,
    values: b.states.map((s, i) => measures[i]!.finalize(s)),
  }));
}

/** Buckets in bucket then dimension order (each dimension key computed once); a new array. */
export function sortBuckets(buckets: readonly BucketStates[]): BucketStates[] {
  return buckets
    .map((b) => ({ b, k: b.dims.length === 1 ? scalarKey(b.dims[0]) : dimsKey(b.dims) }))
    .sort((x, y) => x.b.bucket - y.b.bucket || (x.k < y.k ? -1 : x.k > y.k ? 1 : 0))
    .map((x) => x.b);
}
