// Baseline of stream_to_lake: DuckDB's own NDJSON → Parquet (zstd) COPY of the same records, in one statement.
import { DuckDBInstance } from "@duckdb/node-api";
import type { SchemaColumn } from "../../../src/backends/contracts/index.js";

/** What one COPY took and wrote. */
export interface CopyRun {
  readonly seconds: number;
  readonly rows: number;
  readonly files: number;
}

const q = (s: string): string => `'${s.replaceAll("'", "''")}'`;

/**
 * Converts `ndjson` to Parquet with DuckDB (2 threads, as the land stage's writer), typed with the
 * dataset's columns. `partitioned` adds Tributary's `dt=/hour=` layout, to show what partitioning costs.
 */
export async function duckdbCopy(
  ndjson: string,
  columns: readonly SchemaColumn[],
  out: string,
  partitioned: boolean,
): Promise<CopyRun> {
  const db = await DuckDBInstance.create(":memory:", {
    threads: "2",
    autoinstall_known_extensions: "false",
    autoload_known_extensions: "false",
  });
  const conn = await db.connect();
  try {
    const spec = columns.map((c) => `${q(c.name)}: ${q(c.type)}`).join(", ");
    const source = `read_json(${q(ndjson)}, format = 'newline_delimited', columns = {${spec}})`;
    const sql = partitioned
      ? `COPY (SELECT *, strftime(_event_time, '%Y-%m-%d') AS dt, strftime(_event_time, '%H') AS hour FROM ${source})
         TO ${q(out)} (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (dt, hour), FILENAME_PATTERN 'part-{uuid}')`
      : `COPY (SELECT * FROM ${source}) TO ${q(out)} (FORMAT parquet, COMPRESSION zstd)`;
    const started = performance.now();
    await conn.run(sql);
    const seconds = (performance.now() - started) / 1000;
    const glob = partitioned ? `${out}/**/*.parquet` : out;
    const rows = await conn.runAndReadAll(
      `SELECT count(*)::BIGINT AS n, count(DISTINCT filename)::BIGINT AS f FROM read_parquet(${q(glob)}, filename = true)`,
    );
    const [n, f] = rows.getRowsJson()[0] as [string, string];
    return { seconds, rows: Number(n), files: Number(f) };
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

/** Rows and files of the Parquet files under `dir`. */
export async function countParquet(dir: string): Promise<{ rows: number; files: number }> {
  const db = await DuckDBInstance.create(":memory:", { threads: "2" });
  const conn = await db.connect();
  try {
    const r = await conn.runAndReadAll(
      `SELECT count(*)::BIGINT, count(DISTINCT filename)::BIGINT FROM read_parquet(${q(`${dir}/**/*.parquet`)}, filename = true)`,
    );
    const [n, f] = r.getRowsJson()[0] as [string, string];
    return { rows: Number(n), files: Number(f) };
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}
