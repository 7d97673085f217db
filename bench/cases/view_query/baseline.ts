// Baseline of view_query: the hand-written DuckDB query over the raw landed files, run `times` times in one instance.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { quoteString } from "../../../src/lake/index.js";

/** What the driver asks for. */
export interface BaselineArgs {
  /** The raw files of the stream (the lake's `raw/flights/...`). */
  readonly rawDir: string;
  readonly day: string;
  readonly times: number;
  readonly warmup: number;
  readonly threads: number;
}

/** What it reports. */
export interface BaselineSummary {
  readonly sql: string;
  readonly files: number;
  readonly latenciesMs: number[];
  /** The first run (before any warm-up). */
  readonly coldMs: number;
  readonly rows: number;
  readonly flights: number;
}

function parquetFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...parquetFiles(p));
    else if (e.name.endsWith(".parquet")) out.push(p);
  }
  return out.sort();
}

async function main(): Promise<void> {
  const a = JSON.parse(process.argv[2]!) as BaselineArgs;
  const files = parquetFiles(a.rawDir);
  const db = await DuckDBInstance.create(":memory:", { threads: String(a.threads) });
  const conn = await db.connect();
  const sql = `SELECT date_trunc('minute', date) AS bucket, origin, count(*) AS flights, avg(delay) AS avg_delay,
         quantile_disc(delay, 0.95) AS p95_delay, count(DISTINCT destination) AS destinations
  FROM read_parquet([${files.map(quoteString).join(", ")}], hive_partitioning = true)
  WHERE date >= TIMESTAMP '${a.day} 00:00:00' AND date < TIMESTAMP '${a.day} 00:00:00' + INTERVAL 1 DAY
  GROUP BY ALL ORDER BY ALL`;
  let rows: unknown[][] = [];
  const latenciesMs: number[] = [];
  let coldMs = 0;
  for (let i = 0; i < a.warmup + a.times; i++) {
    const t0 = performance.now();
    const reader = await conn.runAndReadAll(sql);
    rows = reader.getRowsJS() as unknown[][];
    if (i === 0) coldMs = performance.now() - t0;
    if (i >= a.warmup) latenciesMs.push(performance.now() - t0);
  }
  conn.closeSync();
  db.closeSync();
  const summary: BaselineSummary = {
    sql: sql.replace(/\[[^\]]*\]/, `[<${files.length} raw files>]`),
    files: files.length,
    latenciesMs,
    coldMs,
    rows: rows.length,
    flights: rows.reduce((s, r) => s + Number(r[2]), 0),
  };
  process.stdout.write(JSON.stringify(summary) + "\n");
}

await main();
