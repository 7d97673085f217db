// Writes NDJSON records to Hive-partitioned Parquet through DuckDB's COPY (the fast path; no JS Parquet).
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import type { SchemaColumn } from "../backends/contracts/index.js";

/** A file DuckDB wrote, with its partition values read from its path. */
export interface WrittenFile {
  readonly localPath: string;
  /** Path relative to the output folder, e.g. `dt=2001-01-01/hour=05/part-….parquet`. */
  readonly relative: string;
  readonly partition: Record<string, string>;
}

/**
 * Converts NDJSON files of normalized records to Parquet partitioned by event time
 * (`dt=YYYY-MM-DD/hour=HH`), with the columns typed as declared.
 */
export class ParquetWriter {
  readonly #conn: DuckDBConnection;

  private constructor(conn: DuckDBConnection) {
    this.#conn = conn;
  }

  /** Opens a private in-memory DuckDB for writing. */
  static async create(
    options: { threads?: number; memoryLimit?: string } = {},
  ): Promise<ParquetWriter> {
    const db = await DuckDBInstance.create(":memory:", {
      threads: String(options.threads ?? 2),
      // DuckDB defaults to 80 % of RAM; landing buffers are small, so keep the process bounded.
      memory_limit: options.memoryLimit ?? "128MB",
      autoinstall_known_extensions: "false",
      autoload_known_extensions: "false",
    });
    return new ParquetWriter(await db.connect());
  }

  /** Writes `ndjsonPath` into `outDir` partitioned by `_event_time`; returns the files written. */
  async writeByEventHour(
    ndjsonPath: string,
    columns: readonly SchemaColumn[],
    outDir: string,
    compression: string,
  ): Promise<WrittenFile[]> {
    const spec = columns.map((c) => `${quoteString(c.name)}: ${quoteString(c.type)}`).join(", ");
    const sql = `COPY (
        SELECT *, strftime(_event_time, '%Y-%m-%d') AS dt, strftime(_event_time, '%H') AS hour
        FROM read_json(${quoteString(ndjsonPath)}, format = 'newline_delimited', columns = {${spec}})
      ) TO ${quoteString(outDir)} (FORMAT parquet, COMPRESSION ${compression}, PARTITION_BY (dt, hour),
        FILENAME_PATTERN 'part-{uuid}', RETURN_FILES true)`;
    const result = await this.#conn.runAndReadAll(sql);
    const files = (result.getRowsJson()[0]?.[1] ?? []) as string[];
    return files.map((localPath) => {
      const relative = localPath.slice(outDir.length).replace(/^\/+/, "");
      const partition: Record<string, string> = {};
      for (const seg of relative.split("/").slice(0, -1)) {
        const eq = seg.indexOf("=");
        if (eq > 0) partition[seg.slice(0, eq)] = seg.slice(eq + 1);
      }
      return { localPath, relative, partition };
    });
  }

  close(): void {
    this.#conn.closeSync();
  }
}

/** A SQL string literal. */
export function quoteString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}
