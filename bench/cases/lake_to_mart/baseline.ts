// Baseline of lake_to_mart: runs the hand-written DuckDB script baseline.sql over the raw files, timing each statement.
import { mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { ROOT } from "../../harness.js";

/** Where the script reads and writes, and the engine settings it states (as Tributary's batch engine has them). */
export interface BaselineInput {
  /** Glob of the raw Parquet files, e.g. `<dir>/**\/*.parquet` under `dt=/hour=` folders. */
  readonly rawGlob: string;
  readonly airportsCsv: string;
  /** Output folder: `t1/flights/day=…/`, `t2/…`, `mart/…` are written below it. */
  readonly out: string;
  readonly threads: number;
  /** DuckDB form, e.g. `1GB`. */
  readonly memoryLimit: string;
}

/** What one run of the script took. */
export interface BaselineRun {
  readonly seconds: number;
  /** CPU seconds of the whole process (every DuckDB thread) during the script. */
  readonly cpuSeconds: number;
  /** Each statement with its first line and seconds. */
  readonly steps: readonly { readonly statement: string; readonly seconds: number }[];
}

const SCRIPT = join(ROOT, "bench", "cases", "lake_to_mart", "baseline.sql");

/** The statements of baseline.sql with its placeholders filled in (comment lines dropped). */
export function baselineStatements(input: BaselineInput, tempDirectory: string): string[] {
  const values: Record<string, string> = {
    raw: input.rawGlob,
    airports: input.airportsCsv,
    out: input.out,
    threads: String(input.threads),
    memory_limit: input.memoryLimit,
    temp_directory: tempDirectory,
  };
  const text = readFileSync(SCRIPT, "utf8")
    .split("\n")
    .filter((line) => !line.trimStart().startsWith("--"))
    .join("\n")
    .replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
      const v = values[name];
      if (v === undefined) throw new Error(`baseline.sql: unknown placeholder {{${name}}}`);
      if (v.includes("'")) throw new Error(`baseline.sql: ${name} must not contain a quote: ${v}`);
      return v;
    });
  // The script ends each statement with `;` at the end of a line and has no `;` inside strings.
  return text
    .split(/;\s*\n/)
    .map((s) => s.trim().replace(/;$/, ""))
    .filter((s) => s.length > 0);
}

/**
 * Runs baseline.sql in a new in-process DuckDB (the script sets threads and memory_limit itself),
 * statement by statement, and times the whole and each statement.
 */
export async function runBaseline(input: BaselineInput): Promise<BaselineRun> {
  const temp = join(input.out, ".tmp");
  mkdirSync(temp, { recursive: true });
  const statements = baselineStatements(input, temp);
  // DuckDB's COPY … PARTITION_BY creates its target folder but not the parents (`mkdir -p` before the script).
  for (const sql of statements) {
    const to = /^COPY\b[\s\S]*\bTO '([^']+)'/i.exec(sql);
    if (to) mkdirSync(dirname(to[1]!), { recursive: true });
  }
  const db = await DuckDBInstance.create(":memory:");
  const conn = await db.connect();
  try {
    const steps: { statement: string; seconds: number }[] = [];
    const cpu0 = process.cpuUsage();
    const started = performance.now();
    for (const sql of statements) {
      const t = performance.now();
      await conn.run(sql);
      steps.push({ statement: label(sql, input.out), seconds: (performance.now() - t) / 1000 });
    }
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpu0);
    return { seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, steps };
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

/** A statement's short name: `COPY → t1/flights` or its first line. */
function label(sql: string, out: string): string {
  const to = /\)?\s*TO '([^']+)'/.exec(sql);
  if (/^COPY\b/i.test(sql) && to) return `COPY → ${to[1]!.slice(out.length + 1)}`;
  return sql.split("\n")[0]!.slice(0, 60);
}
