// Setup of lake_to_mart: the 3M flights of vega-datasets as landed raw Parquet, and its catalog entries.
import { linkSync, copyFileSync, mkdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import type { FileEntry } from "../../../src/backends/contracts/index.js";
import { quoteString } from "../../../src/lake/index.js";
import { ROOT } from "../../harness.js";

/** The source of the demo's replay (examples/flights/tributary.yaml). */
export const FLIGHTS_3M = join(ROOT, "node_modules", "vega-datasets", "data", "flights-3m.parquet");

/** The raw files of `raw.flights`, written once and linked into each project's lake. */
export interface RawLake {
  /** Folder holding `dt=YYYY-MM-DD/hour=HH/part-<uuid>.parquet`. */
  readonly dir: string;
  /** One entry per file, its path relative to `dir` (prefix it with `raw/flights/` for the catalog). */
  readonly files: readonly FileEntry[];
  readonly rows: number;
  readonly bytes: number;
  /** Seconds the COPY and the statistics took. */
  readonly seconds: number;
}

/**
 * Writes flights-3m.parquet in the layout and columns the land stage gives `raw.flights` — the
 * envelope (`_event_id` = flight id, `_received_at`, `_event_time` = `date`), the declared fields
 * with `flight_id` numbered as the demo's replay SQL numbers it, `_extra` NULL — as zstd Parquet
 * partitioned by event hour, without going through HTTP, the stream and the land stage (minutes).
 * `_received_at` is the event time (events received as they happen; every id is unique, so the
 * dedup's tie-break never matters). Returns each file with its rows and event-time range.
 */
export async function buildRawLake(dir: string, columns: readonly string[]): Promise<RawLake> {
  const started = performance.now();
  const db = await DuckDBInstance.create(":memory:", { threads: "2" });
  const conn = await db.connect();
  try {
    const select = {
      _event_id: "flight_id",
      _received_at: "date",
      _event_time: "date",
      flight_id: "flight_id",
      date: "date",
      delay: "delay",
      distance: "distance",
      origin: "origin",
      destination: "destination",
      _extra: "CAST(NULL AS JSON)",
    } as Record<string, string>;
    const missing = columns.filter((c) => select[c] === undefined);
    if (missing.length > 0)
      throw new Error(`raw.flights has columns ${missing.join(", ")} the bench does not fill`);
    await conn.run(`COPY (
        SELECT ${columns.map((c) => `${select[c]} AS "${c}"`).join(", ")},
               strftime(date, '%Y-%m-%d') AS dt, strftime(date, '%H') AS hour
        FROM (
          SELECT printf('FL%07d', row_number() OVER (ORDER BY date, origin, destination, distance, delay)) AS flight_id,
                 date, delay, distance, origin, destination
          FROM read_parquet(${quoteString(FLIGHTS_3M)})
        )
        ORDER BY date, flight_id
      ) TO ${quoteString(dir)} (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (dt, hour), FILENAME_PATTERN 'part-{uuid}')`);
    const stats = await conn.runAndReadAll(
      `SELECT filename, count(*)::BIGINT, epoch_ms(min(_event_time))::BIGINT, epoch_ms(max(_event_time))::BIGINT
       FROM read_parquet(${quoteString(`${dir}/**/*.parquet`)}, filename = true, hive_partitioning = false)
       GROUP BY filename ORDER BY filename`,
    );
    const files: FileEntry[] = (stats.getRows() as [string, bigint, bigint, bigint][]).map(
      ([file, rows, min, max]) => {
        const relative = file.slice(dir.length).replace(/^\/+/, "");
        const partition: Record<string, string> = {};
        for (const seg of relative.split("/").slice(0, -1)) {
          const eq = seg.indexOf("=");
          if (eq > 0) partition[seg.slice(0, eq)] = seg.slice(eq + 1);
        }
        return {
          path: relative,
          partition,
          rows: Number(rows),
          bytes: statSync(file).size,
          minTime: Number(min),
          maxTime: Number(max),
        };
      },
    );
    return {
      dir,
      files,
      rows: files.reduce((n, f) => n + f.rows, 0),
      bytes: files.reduce((n, f) => n + f.bytes, 0),
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

/**
 * Puts the raw files into a lake folder under `prefix` (e.g. `raw/flights/`) as hard links (a copy
 * when the folders are on different file systems), and returns their catalog entries.
 */
export function linkRawLake(raw: RawLake, lakeDir: string, prefix: string): FileEntry[] {
  return raw.files.map((f) => {
    const key = prefix + f.path;
    const target = join(lakeDir, key);
    mkdirSync(dirname(target), { recursive: true });
    try {
      linkSync(join(raw.dir, f.path), target);
    } catch (e) {
      // Only a link across file systems falls back to a copy; anything else is a real failure.
      if ((e as NodeJS.ErrnoException).code !== "EXDEV") throw e;
      copyFileSync(join(raw.dir, f.path), target);
    }
    return { ...f, path: key };
  });
}
