// Checks a model's data tests on its staged output with DuckDB: one query per test, results per day.
import type { DuckDBConnection } from "@duckdb/node-api";
import { TributaryError } from "../errors.js";
import { quoteString } from "../lake/index.js";
import { DAY_COLUMN, WHOLE_TABLE, type DataTest } from "./plan.js";

/** The outcome of one data test on one day (or on the whole table, day `*`). */
export interface DataTestResult {
  /** `YYYY-MM-DD`, or `*` for a full-refresh model. */
  readonly day: string;
  /** Readable name, from `testName`. */
  readonly test: string;
  readonly passed: boolean;
  /** Rows that break the test (row_count: 1 when the count is out of range); 0 when passed. */
  readonly failures: number;
  /** What failed, in one line with up to 3 example values; null when passed. */
  readonly message: string | null;
}

/** Example values shown in a failure message. */
const EXAMPLES = 3;
/** Example values longer than this are cut, so a message stays one short line. */
const EXAMPLE_CHARS = 40;

/**
 * The readable name of a data test, as stored with its results.
 *
 * @example
 * testName({ kind: "unique", columns: ["day", "origin"] }); // "unique(day, origin)"
 * testName({ kind: "relationships", column: "origin", to: "seed.airports", field: "iata" });
 * // "relationships(origin → seed.airports.iata)"
 */
export function testName(t: DataTest): string {
  switch (t.kind) {
    case "not_null":
    case "accepted_values":
      return `${t.kind}(${t.column})`;
    case "unique":
      return `unique(${t.columns.join(", ")})`;
    case "relationships":
      return `relationships(${t.column} → ${t.to}.${t.field})`;
    case "row_count": {
      const bounds = [
        ...(t.min === undefined ? [] : [`min ${t.min}`]),
        ...(t.max === undefined ? [] : [`max ${t.max}`]),
      ];
      return `row_count(${bounds.join(", ")})`;
    }
  }
}

/**
 * Runs data tests on `relation`, a relation queryable on `conn` (used as written, e.g. the view
 * of a task's staged Parquet). Each test is one query, grouped by day for a partitioned model.
 *
 * - Partitioned (`day` DATE column): one result per test per requested day, in the order of
 *   `tests` then `days`; rows of other days are ignored, and a day without rows passes every test
 *   but a `row_count` with a minimum.
 * - Full refresh: one result per test, day `*`.
 *
 * Semantics (failures count rows): `not_null` rows where the column IS NULL; `unique` rows whose
 * key occurs more than once in the day (NULL keys compare equal, as in GROUP BY); `accepted_values`
 * non-null values not in the list; `relationships` non-null values with no equal `to.field`;
 * `row_count` the day's count outside [min, max] (1 failure).
 *
 * Throws TRB_BATCH_TASK_FAILED, naming the test, when its query fails (an unknown column, a type
 * mismatch): a test that cannot run is not a passed test. Throws TRB_BATCH_BAD_DATE for a day
 * not written `YYYY-MM-DD`.
 *
 * @example
 * const results = await runDataTests(conn, model.spec.tests, "staged_t1_flights", {
 *   partitioned: true,
 *   days: ["2024-01-01", "2024-01-02"],
 * });
 * // [{ day: "2024-01-01", test: "not_null(origin)", passed: false, failures: 3,
 * //    message: "3 rows with origin NULL" }, …]
 */
export async function runDataTests(
  conn: DuckDBConnection,
  tests: readonly DataTest[],
  relation: string,
  options: { partitioned: boolean; days: readonly string[] },
): Promise<DataTestResult[]> {
  const days = options.partitioned ? [...new Set(options.days)] : [WHOLE_TABLE];
  const bad = options.partitioned ? days.find((d) => !/^\d{4}-\d{2}-\d{2}$/.test(d)) : undefined;
  if (bad !== undefined)
    throw new TributaryError("TRB_BATCH_BAD_DATE", `data tests: bad day ${JSON.stringify(bad)}`);
  if (days.length === 0) return [];
  const scope: Scope = { relation, partitioned: options.partitioned, days };
  const results: DataTestResult[] = [];
  for (const t of tests) {
    const name = testName(t);
    let byDay: Map<string, DayRow>;
    try {
      byDay = await query(conn, t.kind === "row_count" ? rowCountSql(scope) : failureSql(t, scope));
    } catch (e) {
      throw new TributaryError(
        "TRB_BATCH_TASK_FAILED",
        `data test ${name} on ${relation} could not run: ${(e as Error).message.split("\n", 1)[0]}`,
        { cause: e },
      );
    }
    for (const day of days) {
      const row = byDay.get(day) ?? { n: 0, groups: 0, examples: [] };
      results.push({ day, test: name, ...judge(t, row) });
    }
  }
  return results;
}

/** What a test query returns for one day: counted rows, distinct offending values, examples. */
interface DayRow {
  readonly n: number;
  readonly groups: number;
  readonly examples: readonly string[];
}

interface Scope {
  readonly relation: string;
  readonly partitioned: boolean;
  readonly days: readonly string[];
}

/** Turns a day's figures into the result of a test. */
function judge(t: DataTest, row: DayRow): Omit<DataTestResult, "day" | "test"> {
  if (t.kind === "row_count") {
    const low = t.min !== undefined && row.n < t.min;
    const high = t.max !== undefined && row.n > t.max;
    if (!low && !high) return { passed: true, failures: 0, message: null };
    const expected =
      t.min !== undefined && t.max !== undefined
        ? `between ${t.min} and ${t.max}`
        : low
          ? `at least ${t.min}`
          : `at most ${t.max}`;
    return { passed: false, failures: 1, message: `${rows(row.n)}, expected ${expected}` };
  }
  if (row.n === 0) return { passed: true, failures: 0, message: null };
  const eg = row.examples.length > 0 ? `, e.g. ${row.examples.map(oneLine).join(", ")}` : "";
  let message: string;
  switch (t.kind) {
    case "not_null":
      message = `${rows(row.n)} with ${t.column} NULL`;
      break;
    case "unique": {
      const key = t.columns.length === 1 ? t.columns[0] : `(${t.columns.join(", ")})`;
      const values = row.groups === 1 ? "1 value" : `${row.groups} values`;
      message = `${rows(row.n)} share ${values} of ${key}${eg}`;
      break;
    }
    case "accepted_values":
      message = `${row.n === 1 ? "1 value" : `${row.n} values`} of ${t.column} not accepted${eg}`;
      break;
    case "relationships":
      message = `${rows(row.n)} with ${t.column} not in ${t.to}.${t.field}${eg}`;
      break;
  }
  return { passed: false, failures: row.n, message };
}

/**
 * The query of a failure-counting test: per day, rows that break it (`n`), their distinct
 * offending values (`groups`) and the first few of those values (`examples`, rendered).
 * Offending rows are grouped by value first, so examples are distinct and memory is bounded.
 */
function failureSql(t: Exclude<DataTest, { kind: "row_count" }>, s: Scope): string {
  const col = (name: string): string => `__r.${ident(name)}`;
  let keys: string[];
  let where: string;
  let having = "";
  switch (t.kind) {
    case "not_null":
      keys = [];
      where = `${col(t.column)} IS NULL`;
      break;
    case "unique":
      keys = t.columns.map(col);
      where = "TRUE";
      having = "HAVING count(*) > 1";
      break;
    case "accepted_values": {
      const k = col(t.column);
      keys = [k];
      where =
        t.values.length === 0
          ? `${k} IS NOT NULL`
          : `${k} NOT IN (${t.values.map(literal).join(", ")})`;
      break;
    }
    case "relationships": {
      const k = col(t.column);
      keys = [k];
      where = `${k} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ${qualified(t.to)} AS __t WHERE __t.${ident(t.field)} = ${k})`;
      break;
    }
  }
  const example =
    keys.length === 0
      ? "NULL::VARCHAR"
      : keys.length === 1
        ? render(keys[0]!)
        : `'(' || concat_ws(', ', ${keys.map(render).join(", ")}) || ')'`;
  const groupBy = [...new Set([...(s.partitioned ? [col(DAY_COLUMN)] : []), ...keys])];
  return `WITH bad AS (
      SELECT ${dayExpr(s, "__r.")} AS d, ${example} AS ex, count(*) AS n
      FROM ${s.relation} AS __r
      WHERE ${dayFilter(s, "__r.")} AND ${where}
      ${groupBy.length > 0 ? `GROUP BY ${groupBy.join(", ")}` : ""} ${having})
    SELECT d, sum(n) AS n, count(*) AS groups, min(ex, ${EXAMPLES}) AS examples
    FROM bad GROUP BY d`;
}

/** The query of `row_count`: rows per day. */
function rowCountSql(s: Scope): string {
  return `SELECT ${dayExpr(s, "")} AS d, count(*) AS n, 0 AS groups, []::VARCHAR[] AS examples
    FROM ${s.relation} WHERE ${dayFilter(s, "")} GROUP BY ALL`;
}

/** The result day of a row: its `day` as `YYYY-MM-DD`, or `*` for a full-refresh model. */
function dayExpr(s: Scope, alias: string): string {
  return s.partitioned ? `strftime(${alias}${ident(DAY_COLUMN)}, '%Y-%m-%d')` : `'${WHOLE_TABLE}'`;
}

/** Keeps the requested days of a partitioned model (all rows of a full one). */
function dayFilter(s: Scope, alias: string): string {
  if (!s.partitioned) return "TRUE";
  const days = s.days.map((d) => `DATE ${quoteString(d)}`).join(", ");
  return `${alias}${ident(DAY_COLUMN)} IN (${days})`;
}

async function query(conn: DuckDBConnection, sql: string): Promise<Map<string, DayRow>> {
  const reader = await conn.runAndReadAll(sql);
  const out = new Map<string, DayRow>();
  for (const [d, n, groups, examples] of reader.getRowsJson()) {
    out.set(String(d), {
      n: Number(n),
      groups: Number(groups),
      examples: ((examples ?? []) as (string | null)[]).filter((x): x is string => x !== null),
    });
  }
  return out;
}

/** SQL rendering an offending value for a message: strings quoted, long ones cut, NULL named. */
function render(expr: string): string {
  const text = `CAST(${expr} AS VARCHAR)`;
  const cut = `CASE WHEN length(${text}) > ${EXAMPLE_CHARS} THEN left(${text}, ${EXAMPLE_CHARS}) || '…' ELSE ${text} END`;
  return `CASE WHEN ${expr} IS NULL THEN 'NULL'
    WHEN typeof(${expr}) = 'VARCHAR' THEN '''' || replace(${cut}, '''', '''''') || ''''
    ELSE ${cut} END`;
}

/** Keeps a rendered value on one line. */
function oneLine(s: string): string {
  return s.replace(/\r\n|\r|\n/g, "\\n").replace(/\p{Cc}/gu, " ");
}

function rows(n: number): string {
  return n === 1 ? "1 row" : `${n} rows`;
}

/** A quoted SQL identifier. */
function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A qualified table name (`seed.airports`), each part quoted. */
function qualified(name: string): string {
  return name.split(".").map(ident).join(".");
}

/** A SQL literal of an accepted value. */
function literal(v: string | number | boolean): string {
  if (typeof v === "string") return quoteString(v);
  if (typeof v === "boolean") return v ? "TRUE" : "FALSE";
  // NaN and ±Infinity have no literal form; DuckDB parses them from strings.
  return Number.isFinite(v) ? String(v) : `CAST(${quoteString(String(v))} AS DOUBLE)`;
}
