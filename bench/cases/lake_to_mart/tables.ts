// Correctness check of lake_to_mart: order-independent fingerprints of the tables both sides wrote.
import { DuckDBInstance } from "@duckdb/node-api";
import { quoteIdent, quoteString } from "../../../src/lake/index.js";

/** The tables both sides build, by qualified name (as `<layer>/<name>` folders in the output). */
export const TABLES = [
  "t1.flights",
  "t1.flights_rejects",
  "t2.flights_enriched",
  "mart.daily_airport",
  "mart.daily_route",
] as const;

/** What is compared of a table. */
export interface TableSummary {
  readonly rows: number;
  /** `sum(flights)` of a mart, else null. */
  readonly flights: number | null;
  /** `sum(total_distance)` of a mart, else null. */
  readonly totalDistance: number | null;
  /** XOR of a hash of every row (every column by name, doubles rounded to 9 decimals), in hex. */
  readonly hash: string;
}

/**
 * Summarizes a table from its Parquet files (Hive `day=` folders, so `day` comes back as a DATE).
 * The hash does not depend on row order or on how rows are split into files.
 */
export async function summarize(files: readonly string[]): Promise<TableSummary> {
  if (files.length === 0) return { rows: 0, flights: null, totalDistance: null, hash: "0" };
  const db = await DuckDBInstance.create(":memory:", { threads: "2" });
  const conn = await db.connect();
  try {
    const source = `read_parquet([${files.map(quoteString).join(", ")}], hive_partitioning = true, hive_types = {'day': DATE})`;
    const described = (await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${source}`)).getRows() as [
      string,
      string,
    ][];
    const columns = described
      .map(([name, type]) => ({ name, type }))
      .sort((a, b) => (a.name < b.name ? -1 : 1));
    const names = new Set(columns.map((c) => c.name));
    const hashed = columns.map((c) =>
      /^(DOUBLE|FLOAT|REAL)$/.test(c.type) ? `round(${quoteIdent(c.name)}, 9)` : quoteIdent(c.name),
    );
    const mart = names.has("flights") && names.has("total_distance");
    const r = await conn.runAndReadAll(
      `SELECT count(*)::BIGINT,
              ${mart ? "sum(flights)::BIGINT, sum(total_distance)::BIGINT" : "NULL, NULL"},
              to_hex(bit_xor(hash(${hashed.join(", ")})))
       FROM ${source}`,
    );
    const [rows, flights, distance, hash] = r.getRows()[0] as [
      bigint,
      bigint | null,
      bigint | null,
      string,
    ];
    return {
      rows: Number(rows),
      flights: flights === null ? null : Number(flights),
      totalDistance: distance === null ? null : Number(distance),
      hash,
    };
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

/** The tables whose summaries differ, each as `<table>: <ours> vs <theirs>`. */
export function differences(
  ours: Readonly<Record<string, TableSummary>>,
  theirs: Readonly<Record<string, TableSummary>>,
): string[] {
  const out: string[] = [];
  for (const t of TABLES) {
    const a = JSON.stringify(ours[t] ?? null);
    const b = JSON.stringify(theirs[t] ?? null);
    if (a !== b) out.push(`${t}: ${a} vs ${b}`);
  }
  return out;
}
