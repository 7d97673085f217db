// A lambda view compiled from its declaration: one ViewNode, from which the batch SQL and the speed aggregator derive.
import type { FieldType, Pipeline, ViewConfig, ViewFilterConfig } from "../config/index.js";
import { parseDuration, sha256Hex } from "../config/index.js";
import { parseMeasure } from "./measures.js";

/** Time grains a view stores and a query may roll up to. */
export type Grain = "minute" | "hour" | "day";

/** Milliseconds of each grain. */
export const GRAIN_MS: Readonly<Record<Grain, number>> = Object.freeze({
  minute: 60_000,
  hour: 3_600_000,
  day: 86_400_000,
});

/** A field a view reads, with its declared type. */
export interface ViewField {
  readonly name: string;
  readonly type: FieldType;
}

/** A filter condition, validated. */
export type ViewFilter = Readonly<ViewFilterConfig>;

/** A measure as declared: `count`, `sum(f)`, `p95(f)`... */
export interface ViewMeasure {
  readonly name: string;
  readonly kind: "count" | "sum" | "min" | "max" | "avg" | "count_distinct" | "quantile";
  /** The field it reads (undefined for `count`, which counts events). */
  readonly field: string | undefined;
  /** The quantile in 0..1 for `quantile`. */
  readonly q: number | undefined;
}

/** A compiled view: what both layers and serve read. Frozen. */
export interface ViewNode {
  readonly name: string;
  readonly description: string | undefined;
  readonly stream: string;
  /** Column of `raw.<stream>` holding the bucketing time (`_event_time` by default). */
  readonly timeColumn: string;
  readonly grain: Grain;
  readonly grainMs: number;
  readonly dimensions: readonly ViewField[];
  readonly measures: readonly ViewMeasure[];
  readonly filters: readonly ViewFilter[];
  readonly allowedLatenessMs: number;
  /** SHA-256 of what decides the stored states: a change rebuilds the view's partitions. */
  readonly hash: string;
}

/** Parses a measure declaration (validated by the config loader, so a mismatch is a bug). */
export function parseViewMeasure(name: string, text: string): ViewMeasure {
  const spec = parseMeasure(text, name);
  return { name, kind: spec.kind, field: spec.field, q: spec.q };
}

/**
 * Compiles every view of a pipeline. The config loader has checked names, fields and types.
 * @example const nodes = compileViews(pipeline); nodes.get("departures")!.grainMs // 60000
 */
export function compileViews(pipeline: Pipeline): ReadonlyMap<string, ViewNode> {
  const out = new Map<string, ViewNode>();
  for (const [name, config] of pipeline.views) out.set(name, compileView(name, config, pipeline));
  return out;
}

/** Compiles one view declaration. */
export function compileView(name: string, v: ViewConfig, pipeline: Pipeline): ViewNode {
  const plan = pipeline.streams.get(v.stream);
  if (!plan) throw new Error(`view ${name}: unknown stream ${v.stream}`);
  const typeOf = (field: string): FieldType => {
    const f = plan.fields.find((c) => c.name === field);
    if (!f) throw new Error(`view ${name}: ${field} is not a field of ${v.stream}`);
    return f.type;
  };
  const measures = Object.entries(v.measures).map(([m, text]) => parseViewMeasure(m, text));
  for (const m of measures) if (m.field !== undefined) typeOf(m.field);
  const node: ViewNode = {
    name,
    description: v.description,
    stream: v.stream,
    timeColumn: v.time_field ?? "_event_time",
    grain: v.grain,
    grainMs: GRAIN_MS[v.grain],
    dimensions: v.dimensions.map((d) => ({ name: d, type: typeOf(d) })),
    measures,
    filters: v.filters.map((f) => Object.freeze({ ...f })),
    allowedLatenessMs: parseDuration(v.allowed_lateness),
    hash: sha256Hex(
      JSON.stringify([
        v.stream,
        v.time_field ?? null,
        v.grain,
        v.dimensions,
        v.measures,
        v.filters,
      ]),
    ),
  };
  return deepFreeze(node);
}

/** Start (epoch ms, UTC) of the bucket of `ms` at `grainMs`. */
export function bucketOf(ms: number, grainMs: number): number {
  return Math.floor(ms / grainMs) * grainMs;
}

/** DuckDB expression of the bucket start of a TIMESTAMP column at a grain. */
export function bucketSql(column: string, grain: Grain): string {
  return `date_trunc('${grain}', ${column})`;
}

/** A JavaScript predicate equal to the view's filters (all must hold) over an event record. */
export function filterFunction(
  filters: readonly ViewFilter[],
): (record: Readonly<Record<string, unknown>>) => boolean {
  if (filters.length === 0) return () => true;
  const tests = filters.map((f) => ({ field: f.field, test: condition(f) }));
  return (record) => tests.every((t) => t.test(record[t.field]));
}

/** The test of one filter on a field's value, with SQL's semantics (NULL never passes a comparison). */
function condition(f: ViewFilter): (v: unknown) => boolean {
  const values = Array.isArray(f.value) ? f.value : [f.value];
  switch (f.op) {
    case "is_null":
      return (v) => v === null || v === undefined;
    case "not_null":
      return (v) => v !== null && v !== undefined;
    case "in":
      return (v) => v !== null && v !== undefined && values.some((x) => same(v, x));
    case "not_in":
      // SQL: NULL NOT IN (…) is unknown, so the row does not pass.
      return (v) => v !== null && v !== undefined && !values.some((x) => same(v, x));
    case "=":
      return (v) => v !== null && v !== undefined && same(v, f.value);
    case "!=":
      return (v) => v !== null && v !== undefined && !same(v, f.value);
    default:
      return (v) => v !== null && v !== undefined && compare(v, f.value, f.op);
  }
}

function same(a: unknown, b: unknown): boolean {
  return a === b;
}

function compare(a: unknown, b: unknown, op: string): boolean {
  if (typeof a !== typeof b) return false;
  const x = a as number | string;
  const y = b as number | string;
  switch (op) {
    case "<":
      return x < y;
    case "<=":
      return x <= y;
    case ">":
      return x > y;
    case ">=":
      return x >= y;
    default:
      return false;
  }
}

/** The view's filters as a SQL predicate (`true` when there are none), over columns of `raw.<stream>`. */
export function filterSql(filters: readonly ViewFilter[]): string {
  if (filters.length === 0) return "true";
  return filters
    .map((f) => {
      const col = `"${f.field.replaceAll('"', '""')}"`;
      switch (f.op) {
        case "is_null":
          return `${col} IS NULL`;
        case "not_null":
          return `${col} IS NOT NULL`;
        case "in":
        case "not_in": {
          const list = (f.value as readonly (string | number | boolean)[]).map(literal).join(", ");
          return `${col} ${f.op === "in" ? "IN" : "NOT IN"} (${list})`;
        }
        default:
          return `${col} ${f.op === "!=" ? "<>" : f.op} ${literal(f.value as string | number | boolean)}`;
      }
    })
    .map((c) => `(${c})`)
    .join(" AND ");
}

function literal(v: string | number | boolean): string {
  if (typeof v === "string") return `'${v.replaceAll("'", "''")}'`;
  if (typeof v === "boolean") return v ? "true" : "false";
  if (!Number.isFinite(v)) throw new Error(`not a finite number: ${v}`);
  return String(v);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
