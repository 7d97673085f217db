// SQL that reads a dataset's committed files as one relation: used by serve's views and the batch layer's inputs.
import type { SchemaColumn } from "../backends/contracts/index.js";
import { quoteString } from "./parquet-writer.js";

/** A committed file as a view reads it: a local path DuckDB may open, and its schema version. */
export interface ViewFile {
  readonly path: string;
  readonly schemaVersion: number;
}

/** SQL type of a Hive partition column: `dt` and `day` are dates, `hour` an integer. */
export function partitionColumnType(name: string): string {
  return name === "dt" || name === "day" ? "DATE" : "INTEGER";
}

/** A quoted SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * The SELECT reading a dataset's files, or no rows with the declared columns when it has none.
 * Files are grouped by schema version: within a group all files share a schema, so DuckDB reads one
 * footer to bind; groups are combined BY NAME so columns added later read as NULL in older files.
 * Hive partition columns (`dt`, `hour`, `day`) come back typed.
 */
export function datasetViewSql(
  ds: { readonly columns: readonly SchemaColumn[]; readonly partitionColumns: readonly string[] },
  files: readonly ViewFile[],
): string {
  if (files.length === 0) {
    const cols = [
      ...ds.columns.map((c) => `CAST(NULL AS ${c.type}) AS ${quoteIdent(c.name)}`),
      ...ds.partitionColumns.map(
        (c) => `CAST(NULL AS ${partitionColumnType(c)}) AS ${quoteIdent(c)}`,
      ),
    ];
    return `SELECT ${cols.join(", ")} WHERE false`;
  }
  const hiveTypes = ds.partitionColumns
    .map((c) => `${quoteString(c)}: ${partitionColumnType(c)}`)
    .join(", ");
  const hive =
    ds.partitionColumns.length > 0 ? `, hive_partitioning = true, hive_types = {${hiveTypes}}` : "";
  const groups = new Map<number, string[]>();
  for (const f of files) {
    const g = groups.get(f.schemaVersion);
    if (g) g.push(f.path);
    else groups.set(f.schemaVersion, [f.path]);
  }
  return [...groups.entries()]
    .sort(([a], [b]) => b - a)
    .map(([, paths]) => `SELECT * FROM read_parquet([${paths.map(quoteString).join(", ")}]${hive})`)
    .join(" UNION ALL BY NAME ");
}
