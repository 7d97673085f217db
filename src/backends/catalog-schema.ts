// The catalog's tables, defined once: the SQLite and PostgreSQL catalogs both render their DDL from here.
import type {
  BatchRunInfo,
  BatchTaskInfo,
  DatasetInfo,
  PartitionState,
  SchemaColumn,
} from "./contracts/index.js";

/**
 * A column's logical type. SQLite spells them TEXT, INTEGER, BIGINT, REAL, BLOB (all 64-bit
 * integers there); PostgreSQL TEXT COLLATE "C", INTEGER, BIGINT, DOUBLE PRECISION, BYTEA.
 * `int64` is every integer that can pass 2^31: ids, bytes, row counts, positions, epoch ms.
 */
export type LogicalType = "text" | "int32" | "int64" | "real" | "bytes";

/** The SQL dialects the catalog runs on. */
export type Dialect = "sqlite" | "postgres";

/** One column of a catalog table. */
export interface ColumnDef {
  readonly name: string;
  readonly type: LogicalType;
  readonly notNull?: boolean;
  /** The table's key is this column alone. */
  readonly primaryKey?: boolean;
  /**
   * An id the database assigns on insert: `rowid` is SQLite's `INTEGER PRIMARY KEY` (max + 1),
   * `autoincrement` adds `AUTOINCREMENT` (never reused). PostgreSQL renders both as an identity,
   * `BY DEFAULT` so its catalog can number datasets and snapshots itself, densely, under its lock.
   */
  readonly generated?: "rowid" | "autoincrement";
  /**
   * SQLite's spelling when it is not the type's own: the first catalog tables said INTEGER for
   * 64-bit columns (the same affinity as BIGINT). Kept so a new file's `sqlite_master` holds the
   * same text as every catalog written before.
   */
  readonly sqliteType?: "INTEGER";
}

/** A secondary index. */
export interface IndexDef {
  readonly name: string;
  readonly columns: readonly string[];
}

/** One catalog table. */
export interface TableDef {
  readonly name: string;
  readonly columns: readonly ColumnDef[];
  /** A key of several columns (a one-column key is marked on its column). */
  readonly primaryKey?: readonly string[];
  readonly unique?: readonly string[];
  readonly indexes?: readonly IndexDef[];
}

const text = (name: string, notNull = true): ColumnDef => ({ name, type: "text", notNull });
const int32 = (name: string, notNull = true): ColumnDef => ({ name, type: "int32", notNull });
const int64 = (name: string, notNull = true): ColumnDef => ({ name, type: "int64", notNull });
/** A 64-bit column of the first tables, spelled INTEGER in SQLite (see `sqliteType`). */
const int64Legacy = (name: string, notNull = true): ColumnDef => ({
  ...int64(name, notNull),
  sqliteType: "INTEGER",
});
const id = (generated: "rowid" | "autoincrement"): ColumnDef => ({
  ...int64Legacy("id", false),
  primaryKey: true,
  generated,
});

/**
 * The catalog schema, in creation order. Times are ISO-8601 text (what both backends return);
 * `columns`, `partition_columns`, `partition_values` and `days` hold JSON text, kept as written so
 * values round-trip byte for byte; `passed` is 0 or 1. Every statement rendered is
 * `IF NOT EXISTS`, so opening a catalog written by an older version adds the tables it lacks.
 */
export const CATALOG_TABLES: readonly TableDef[] = [
  {
    name: "datasets",
    columns: [
      id("rowid"),
      text("layer"),
      text("name"),
      text("kind"),
      text("description", false),
      text("partition_columns"),
      text("created_at"),
    ],
    unique: ["layer", "name"],
  },
  {
    name: "schema_versions",
    columns: [int64Legacy("dataset_id"), int32("version"), text("columns"), text("created_at")],
    primaryKey: ["dataset_id", "version"],
  },
  {
    name: "snapshots",
    columns: [
      id("autoincrement"),
      int64Legacy("dataset_id"),
      text("committed_at"),
      text("summary"),
      int32("files_added"),
      int32("files_removed"),
    ],
  },
  {
    name: "files",
    columns: [
      { ...text("path", false), primaryKey: true },
      int64Legacy("dataset_id"),
      text("partition_values"),
      int64Legacy("row_count"),
      int64Legacy("bytes"),
      int64Legacy("min_time", false),
      int64Legacy("max_time", false),
      int32("schema_version"),
      int64Legacy("added_in"),
      int64Legacy("removed_in", false),
    ],
    indexes: [{ name: "files_by_dataset", columns: ["dataset_id", "removed_in"] }],
  },
  {
    name: "positions",
    columns: [
      text("consumer"),
      text("stream"),
      int32("part"),
      int64Legacy("position"),
      int64Legacy("snapshot_id"),
    ],
    primaryKey: ["consumer", "stream", "part"],
  },
  {
    name: "batch_partitions",
    columns: [
      text("model"),
      text("day"),
      text("status"),
      text("model_hash", false),
      int64Legacy("input_snapshot", false),
      text("built_at", false),
      int64Legacy("run_id", false),
      int64("row_count", false),
      text("reason", false),
    ],
    primaryKey: ["model", "day"],
  },
  {
    name: "batch_runs",
    columns: [
      id("autoincrement"),
      text("trigger"),
      text("status"),
      text("started_at"),
      text("finished_at", false),
      text("days"),
      text("error", false),
    ],
  },
  {
    name: "batch_tasks",
    columns: [
      id("autoincrement"),
      int64Legacy("run_id"),
      text("model"),
      text("days"),
      text("status"),
      int32("attempts"),
      text("started_at", false),
      int64("ms", false),
      int64("rows_in", false),
      int64("rows_out", false),
      text("error", false),
    ],
    indexes: [{ name: "batch_tasks_by_run", columns: ["run_id", "id"] }],
  },
  {
    name: "batch_test_results",
    columns: [
      id("autoincrement"),
      int64Legacy("run_id"),
      text("model"),
      text("day"),
      text("test"),
      int32("passed"),
      int64("failures"),
      text("message", false),
    ],
    indexes: [
      { name: "batch_test_results_by_run", columns: ["run_id", "id"] },
      { name: "batch_test_results_by_model", columns: ["model", "id"] },
    ],
  },
  {
    name: "speed_checkpoints",
    columns: [
      { ...text("view", false), primaryKey: true },
      text("view_hash"),
      int64("position"),
      int64("max_time", false),
      int64("late"),
      { name: "state", type: "bytes", notNull: true },
      text("saved_at"),
    ],
  },
];

/** The batch tables, which a catalog written before the batch layer lacks. */
export const BATCH_TABLES: readonly string[] = [
  "batch_partitions",
  "batch_runs",
  "batch_tasks",
  "batch_test_results",
];

const SQLITE_TYPES: Record<LogicalType, string> = {
  text: "TEXT",
  int32: "INTEGER",
  int64: "BIGINT",
  real: "REAL",
  bytes: "BLOB",
};

/** Byte-order text (`COLLATE "C"`): ORDER BY then sorts by code point, as SQLite's BINARY does. */
const POSTGRES_TYPES: Record<LogicalType, string> = {
  text: 'TEXT COLLATE "C"',
  int32: "INTEGER",
  int64: "BIGINT",
  real: "DOUBLE PRECISION",
  bytes: "BYTEA",
};

/** Options of `catalogDdl`. */
export interface DdlOptions {
  /** PostgreSQL schema that holds the tables (an identifier `catalogDdl` quotes); none for SQLite. */
  readonly schema?: string;
}

/**
 * The DDL that creates (or completes) the catalog in one dialect: one string of `;`-terminated
 * statements, every one `IF NOT EXISTS`.
 * @example db.exec(catalogDdl("sqlite"));
 */
export function catalogDdl(dialect: Dialect, options: DdlOptions = {}): string {
  const prefix = options.schema === undefined ? "" : `${quoteIdent(options.schema)}.`;
  const out: string[] = [];
  for (const table of CATALOG_TABLES) {
    const items = table.columns.map((c) => renderColumn(dialect, c));
    if (table.unique) items.push(`UNIQUE (${table.unique.join(", ")})`);
    if (table.primaryKey) items.push(`PRIMARY KEY (${table.primaryKey.join(", ")})`);
    out.push(`CREATE TABLE IF NOT EXISTS ${prefix}${table.name} (\n${wrap(items)};`);
    for (const index of table.indexes ?? []) {
      out.push(
        `CREATE INDEX IF NOT EXISTS ${index.name} ON ${prefix}${table.name} (${index.columns.join(", ")});`,
      );
    }
  }
  return `\n${out.join("\n")}\n`;
}

/** Quotes a PostgreSQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function renderColumn(dialect: Dialect, c: ColumnDef): string {
  if (dialect === "sqlite") {
    const type = c.sqliteType ?? SQLITE_TYPES[c.type];
    return [
      `${c.name} ${type}`,
      c.notNull ? " NOT NULL" : "",
      c.primaryKey ? " PRIMARY KEY" : "",
      c.generated === "autoincrement" ? " AUTOINCREMENT" : "",
    ].join("");
  }
  return [
    `${c.name} ${POSTGRES_TYPES[c.type]}`,
    c.generated ? " GENERATED BY DEFAULT AS IDENTITY" : "",
    c.notNull ? " NOT NULL" : "",
    c.primaryKey ? " PRIMARY KEY" : "",
  ].join("");
}

/**
 * Lays a table's items out two spaces in, filling lines up to 98 characters, and closes the
 * parenthesis after the last: the layout of the
 * hand-written DDL the first catalogs were created with, which SQLite keeps verbatim in
 * `sqlite_master` (so a catalog made today reads the same there as one made then).
 */
function wrap(items: readonly string[]): string {
  const lines: string[] = [];
  let line = "";
  items.forEach((item, i) => {
    const piece = i === items.length - 1 ? `${item})` : `${item},`;
    if (line !== "" && 2 + line.length + 1 + piece.length > 98) {
      lines.push(`  ${line}`);
      line = piece;
    } else {
      line = line === "" ? piece : `${line} ${piece}`;
    }
  });
  lines.push(`  ${line}`);
  return lines.join("\n");
}

// Rows as both catalogs read them back (column names of the tables above), and their mapping.

export interface DatasetRow {
  id: number;
  layer: string;
  name: string;
  kind: string;
  description: string | null;
  partition_columns: string;
  created_at: string;
  version: number;
  columns: string;
}

export interface PartitionRow {
  model: string;
  day: string;
  status: PartitionState["status"];
  model_hash: string | null;
  input_snapshot: number | null;
  built_at: string | null;
  run_id: number | null;
  row_count: number | null;
  reason: string | null;
}

export interface RunRow {
  id: number;
  trigger: string;
  status: BatchRunInfo["status"];
  started_at: string;
  finished_at: string | null;
  days: string;
  error: string | null;
}

export interface TaskRow {
  run_id: number;
  model: string;
  days: string;
  status: BatchTaskInfo["status"];
  attempts: number;
  started_at: string | null;
  ms: number | null;
  rows_in: number | null;
  rows_out: number | null;
  error: string | null;
}

export interface TestResultRow {
  run_id: number;
  model: string;
  day: string;
  test: string;
  passed: number;
  failures: number;
  message: string | null;
}

export interface FileRow {
  path: string;
  dataset: string;
  partition_values: string;
  row_count: number;
  bytes: number;
  min_time: number | null;
  max_time: number | null;
  schema_version: number;
  added_in: number;
}

/** A `batch_runs` row as the contract returns it. */
export function toRun(r: RunRow): BatchRunInfo {
  return {
    id: r.id,
    trigger: r.trigger,
    status: r.status,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    days: JSON.parse(r.days) as string[],
    error: r.error,
  };
}

/** A dataset row joined with its current schema version. */
export function toDataset(r: DatasetRow): DatasetInfo {
  return {
    id: r.id,
    layer: r.layer,
    name: r.name,
    kind: r.kind,
    description: r.description,
    schemaVersion: r.version,
    columns: JSON.parse(r.columns) as SchemaColumn[],
    partitionColumns: JSON.parse(r.partition_columns) as string[],
    createdAt: r.created_at,
  };
}
