// SQL `view.<name>`: a lambda view as a table — batch rows finalized in DuckDB before the cut, the speed layer's rows after it.
import { DuckDBTimestampValue, type DuckDBAppender, type DuckDBConnection } from "@duckdb/node-api";
import { sqlType } from "../lake/index.js";
import {
  BUCKET_COLUMN,
  measureFor,
  type MeasureFieldType,
  type ViewAggregator,
  type ViewNode,
} from "../views/index.js";

/** Schema of the lambda views in SQL: `view.<name>`. */
export const VIEW_SCHEMA = "view";
/** Internal schema holding the speed layer's finalized rows of each view (not queryable). */
export const VIEW_SPEED_SCHEMA = "view_speed";
/** Table of `view_speed` holding each view's cut (the batch watermark the speed rows start at). */
const CUTS = "__cuts";

/** A view as the SQL engine serves it. */
export interface SqlView {
  readonly node: ViewNode;
  /** The declared type of a field a measure reads. */
  readonly fieldType: (field: string) => MeasureFieldType;
  /** The speed layer's states of the view: its aggregator, or its last checkpoint's (undefined: none). */
  readonly speed: () => ViewAggregator | undefined | Promise<ViewAggregator | undefined>;
  /** Start (epoch ms) of the first bucket the batch layer has not covered (-Infinity: none). */
  readonly batchUntil: () => Promise<number>;
}

/** Columns of a view's answer, over HTTP and in SQL: bucket, dimensions, measures, layer. */
export function viewColumns(node: ViewNode): { name: string; type: string }[] {
  return [
    { name: BUCKET_COLUMN, type: "TIMESTAMP" },
    ...node.dimensions.map((d) => ({ name: d.name, type: sqlType(d.type) })),
    ...node.measures.map((m) => ({
      name: m.name,
      type: m.kind === "count" || m.kind === "count_distinct" ? "BIGINT" : "DOUBLE",
    })),
    { name: "layer", type: "VARCHAR" },
  ];
}

function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function literal(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/** DDL of the internal tables of `views` (run once, on the engine's admin connection). */
export function speedTablesSql(views: readonly SqlView[]): string[] {
  return [
    `CREATE SCHEMA IF NOT EXISTS ${VIEW_SPEED_SCHEMA}`,
    `CREATE TABLE IF NOT EXISTS ${VIEW_SPEED_SCHEMA}.${CUTS} (view VARCHAR PRIMARY KEY, cut TIMESTAMP)`,
    ...views.map(
      (v) =>
        `CREATE OR REPLACE TABLE ${VIEW_SPEED_SCHEMA}.${ident(v.node.name)} (${viewColumns(v.node)
          .map((c) => `${ident(c.name)} ${c.type}`)
          .join(", ")})`,
    ),
  ];
}

/**
 * The SELECT behind `view.<name>`: the view_state rows (`statesSql`, undefined when the batch
 * layer has built nothing yet) before the cut, merged per bucket and dimensions (a bucket may lie
 * in two day partitions) and finalized by `Measure.finalSql`, then the speed layer's rows.
 */
export function sqlViewSelect(view: SqlView, statesSql: string | undefined): string {
  const { node } = view;
  const speed = `SELECT * FROM ${VIEW_SPEED_SCHEMA}.${ident(node.name)}`;
  if (statesSql === undefined) return speed;
  const keys = [BUCKET_COLUMN, ...node.dimensions.map((d) => d.name)].map(ident);
  const measures = node.measures.map((m) => ({
    name: ident(m.name),
    measure: measureFor({ name: m.name, kind: m.kind, field: m.field, q: m.q }),
    type: m.field === undefined ? undefined : view.fieldType(m.field),
  }));
  const cut = `(SELECT cut FROM ${VIEW_SPEED_SCHEMA}.${CUTS} WHERE view = ${literal(node.name)})`;
  return [
    `SELECT ${[...keys, ...measures.map((m) => `${m.measure.finalSql(m.name, m.type)} AS ${m.name}`)].join(", ")}, 'batch' AS layer`,
    `FROM (SELECT ${[...keys, ...measures.map((m) => `${m.measure.mergeSql(m.name, m.type)} AS ${m.name}`)].join(", ")}`,
    `  FROM (${statesSql}) WHERE ${ident(BUCKET_COLUMN)} < ${cut}`,
    `  GROUP BY ${keys.join(", ")})`,
    `UNION ALL ${speed}`,
  ].join("\n");
}

/**
 * Replaces the speed rows and the cut of a view with the speed layer's current ones, in one
 * transaction (a query that started before sees the old pair, never a mix). Rows are the
 * buckets at or after the cut, finalized as GET /v1/views finalizes them.
 */
export async function loadSpeedRows(conn: DuckDBConnection, view: SqlView): Promise<void> {
  const { node } = view;
  const cut = await view.batchUntil();
  const aggregator = await view.speed();
  const rows = aggregator ? aggregator.rows({ from: cut }) : [];
  const columns = viewColumns(node);
  await conn.run("BEGIN TRANSACTION");
  try {
    await conn.run(`DELETE FROM ${VIEW_SPEED_SCHEMA}.${ident(node.name)}`);
    await conn.run(`DELETE FROM ${VIEW_SPEED_SCHEMA}.${CUTS} WHERE view = ${literal(node.name)}`);
    await conn.run(
      `INSERT INTO ${VIEW_SPEED_SCHEMA}.${CUTS} VALUES (${literal(node.name)}, ${
        Number.isFinite(cut) ? `make_timestamp(${cut * 1000}::BIGINT)` : "NULL"
      })`,
    );
    if (rows.length > 0) {
      const appender = await conn.createAppender(node.name, VIEW_SPEED_SCHEMA);
      try {
        for (const r of rows) {
          appender.appendTimestamp(new DuckDBTimestampValue(BigInt(r.bucket) * 1000n));
          r.dims.forEach((v, i) => append(appender, columns[1 + i]!.type, v));
          r.values.forEach((v, i) => append(appender, columns[1 + r.dims.length + i]!.type, v));
          appender.appendVarchar("speed");
          appender.endRow();
        }
        appender.flushSync();
      } finally {
        appender.closeSync();
      }
    }
    await conn.run("COMMIT");
  } catch (e) {
    await conn.run("ROLLBACK").catch(() => undefined);
    throw e;
  }
}

function append(appender: DuckDBAppender, type: string, v: unknown): void {
  if (v === null || v === undefined) return appender.appendNull();
  switch (type) {
    case "VARCHAR":
      return appender.appendVarchar(String(v));
    case "BIGINT":
      return appender.appendBigInt(BigInt(v as number));
    case "DOUBLE":
      return appender.appendDouble(Number(v));
    case "BOOLEAN":
      return appender.appendBoolean(Boolean(v));
    default:
      throw new TypeError(`view column of type ${type}`);
  }
}

/** A fingerprint of what `loadSpeedRows` would load: skip reloading while it is unchanged. */
export async function speedVersion(view: SqlView): Promise<string> {
  const aggregator = await view.speed();
  return `${await view.batchUntil()}:${aggregator ? `${aggregator.id}.${aggregator.version}` : "none"}`;
}
