// Runs one batch task: a model over some days, from catalog inputs to committed Parquet partitions.
import { randomUUID } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import type {
  CatalogStore,
  FileEntry,
  ObjectStore,
  PartitionState,
  SchemaColumn,
  StoredFile,
  TestResultInfo,
} from "../backends/contracts/index.js";
import { TributaryError } from "../errors.js";
import { datasetViewSql, mapLimit, quoteIdent, quoteString } from "../lake/index.js";
import { engineSetupSql } from "./compile.js";
import { runDataTests, testName } from "./data-tests.js";
import { daysSpanMs } from "./days.js";
import { daysOfFile } from "./freshness.js";
import { DAY_COLUMN, WHOLE_TABLE, type CompiledModel } from "./plan.js";

/** Files put into the lake at once. */
const PUT_CONCURRENCY = 8;

/** One unit of batch work: a model over days (or its whole table). */
export interface Task {
  readonly key: string;
  readonly model: CompiledModel;
  /** Ascending days; `["*"]` for a full-refresh model. */
  readonly days: readonly string[];
  /** Keys of the tasks that must succeed first. */
  readonly after: readonly string[];
}

/** What a task needs from its surroundings. */
export interface TaskContext {
  readonly db: DuckDBInstance;
  readonly catalog: CatalogStore;
  readonly lake: ObjectStore;
  readonly timezone: string;
  /** Folder for staged output, inside the lake folder (DuckDB may write only there). */
  readonly stagingDir: string;
  readonly compression: string;
  readonly runId: number;
  /** Tables a data test may reference besides the inputs (e.g. `seed.airports`). */
  readonly extraTables: readonly string[];
  /** Schemas of the plan's models, for inputs not in the catalog yet (never built). */
  readonly schemas: ReadonlyMap<string, DatasetShape>;
}

/** Columns and Hive partition columns of a dataset: what a view over its files needs. */
export interface DatasetShape {
  readonly columns: readonly SchemaColumn[];
  readonly partitionColumns: readonly string[];
}

/** The dataset shape a compiled model is stored with (its `day` column becomes the partition). */
export function modelShape(m: CompiledModel): DatasetShape {
  const partitioned = m.spec.materialized === "partitioned";
  return {
    columns: m.columns.filter((c) => !partitioned || c.name !== DAY_COLUMN),
    partitionColumns: partitioned ? [DAY_COLUMN] : [],
  };
}

/** The figures of a committed task. */
export interface TaskOutcome {
  readonly rowsIn: number;
  readonly rowsOut: number;
  readonly tests: readonly TestResultInfo[];
}

/** A failed task carries the test results it produced, so they are recorded too. */
export class TaskError extends Error {
  constructor(
    readonly error: unknown,
    readonly tests: readonly TestResultInfo[],
  ) {
    super((error as Error).message, { cause: error });
  }
}

let taskSeq = 0;

/**
 * Builds the task's days from the catalog's live files and replaces them in one catalog commit
 * (files removed and added, partition states set fresh). Nothing is visible before that commit:
 * a failure or a crash leaves the previous partitions as they were.
 */
export async function runTask(task: Task, ctx: TaskContext): Promise<TaskOutcome> {
  const m = task.model;
  const partitioned = m.spec.materialized === "partitioned";
  const conn = await ctx.db.connect();
  const dbName = `task_${++taskSeq}`;
  const staging = join(ctx.stagingDir, `${m.id}-${randomUUID()}`);
  let tests: TestResultInfo[] = [];
  try {
    const snapshot = await ctx.catalog.latestSnapshot();
    await conn.run(`ATTACH ':memory:' AS ${dbName}`);
    await conn.run(`USE ${dbName}`);
    // Settings (TimeZone) are fixed when the engine starts (its configuration is locked).
    for (const sql of engineSetupSql(ctx.timezone))
      if (!/^\s*SET\b/i.test(sql)) await conn.run(sql);
    let rowsIn = 0;
    const tables = new Set([...m.inputs.map((i) => i.table), ...ctx.extraTables]);
    for (const table of tables) {
      const input = m.inputs.find((i) => i.table === table);
      const dayFilter = partitioned && input?.partitioned === true ? task.days : undefined;
      const rows = await createInputView(conn, ctx, table, snapshot, dayFilter);
      // Rows read by the model itself (tables only a data test looks up are not input).
      if (input) rowsIn += rows;
    }
    try {
      await conn.run(`CREATE TABLE __out AS ${m.spec.sql}\n`);
    } catch (e) {
      throw new TributaryError("TRB_BATCH_TASK_FAILED", `${m.id}: ${firstLine(e)}`, { cause: e });
    }
    // A count of the materialized table reads no data; rows per day come from the written files.
    const total = Number(
      ((
        await conn.runAndReadAll("SELECT count(*)::BIGINT FROM __out")
      ).getRows()[0]![0] as bigint) ?? 0n,
    );
    const results = await runDataTests(conn, m.spec.tests, "__out", {
      partitioned,
      days: task.days,
    });
    tests = results.map((r) => ({ runId: ctx.runId, model: m.id, ...r }));
    const failed = tests.filter((t) => !t.passed);
    if (failed.length > 0) {
      throw new TributaryError(
        "TRB_BATCH_TEST_FAILED",
        `${m.id}: ${failed.length} data test${failed.length > 1 ? "s" : ""} failed: ${failed
          .slice(0, 3)
          .map((t) => `${t.test} on ${t.day}${t.message ? ` (${t.message})` : ""}`)
          .join("; ")}`,
      );
    }
    const files = await writeOutput(conn, ctx, m, staging, total, (day, rows) => {
      if (!task.days.includes(day)) {
        throw new TributaryError(
          "TRB_BATCH_DAY_OUT_OF_RANGE",
          `${m.id} produced ${rows} rows for day ${day} while building ${describeDays(task.days)}; a partitioned model's day must come from the rows of that day.`,
        );
      }
    });
    const rowsByDay = new Map<string, number>();
    if (partitioned) {
      for (const f of files) {
        const day = f.partition[DAY_COLUMN]!;
        rowsByDay.set(day, (rowsByDay.get(day) ?? 0) + f.rows);
      }
    } else rowsByDay.set(WHOLE_TABLE, total);
    const rowsOut = total;
    await ctx.catalog.ensureDataset(
      { layer: m.spec.layer, name: m.spec.name },
      {
        kind: "model",
        ...(m.spec.description !== undefined ? { description: m.spec.description } : {}),
        ...modelShape(m),
      },
    );
    const live = await ctx.catalog.files({ layer: m.spec.layer, name: m.spec.name });
    const replaced = live.filter((f) => !partitioned || task.days.includes(f.partition.day ?? ""));
    const builtAt = new Date().toISOString();
    const partitions: PartitionState[] = task.days.map((day) => ({
      model: m.id,
      day,
      status: "fresh",
      modelHash: m.hash,
      inputSnapshot: snapshot,
      builtAt,
      runId: ctx.runId,
      rows: rowsByDay.get(day) ?? 0,
      reason: null,
    }));
    await ctx.catalog.commit({
      dataset: { layer: m.spec.layer, name: m.spec.name },
      add: files,
      remove: replaced.map((f) => f.path),
      partitions,
      summary: `batch run ${ctx.runId}: ${m.id} ${describeDays(task.days)} (${rowsOut} rows)`,
    });
    return { rowsIn, rowsOut, tests };
  } catch (e) {
    throw new TaskError(e, tests);
  } finally {
    try {
      await conn.run("USE memory");
      await conn.run(`DETACH ${dbName}`);
    } finally {
      conn.closeSync();
      await rm(staging, { recursive: true, force: true });
    }
  }
}

/** Creates the view `table` of the task's private catalog over the live files it reads; returns their rows. */
async function createInputView(
  conn: DuckDBConnection,
  ctx: TaskContext,
  table: string,
  snapshot: number,
  days: readonly string[] | undefined,
): Promise<number> {
  const [layer, name] = table.split(".") as [string, string];
  // A model never built yet reads as empty, with the columns the plan compiled for it.
  const ds = (await ctx.catalog.dataset({ layer, name })) ?? ctx.schemas.get(table);
  if (!ds) {
    throw new TributaryError(
      "TRB_BATCH_TASK_FAILED",
      `${table} is not in the catalog yet (no event landed, or seed not loaded).`,
    );
  }
  let files: readonly StoredFile[] = await ctx.catalog.files({ layer, name }, snapshot);
  let filter = "";
  if (days !== undefined) {
    const wanted = new Set(days);
    files = files.filter((f) => daysOfFile(f, ctx.timezone).some((d) => wanted.has(d)));
    if (ds.partitionColumns.includes(DAY_COLUMN)) {
      filter = ` WHERE ${DAY_COLUMN} IN (${days.map((d) => `DATE ${quoteString(d)}`).join(", ")})`;
    } else {
      // Stream datasets: whole hours of files, cut at the days' bounds in the pipeline's zone.
      const [start, end] = daysSpanMs(days[0]!, days[days.length - 1]!, ctx.timezone);
      const contiguous = days.length === 1 || isContiguous(days);
      filter = contiguous
        ? ` WHERE _event_time >= ${timestamp(start)} AND _event_time < ${timestamp(end)}`
        : ` WHERE ${days
            .map((d) => {
              const [s, e] = daysSpanMs(d, d, ctx.timezone);
              return `(_event_time >= ${timestamp(s)} AND _event_time < ${timestamp(e)})`;
            })
            .join(" OR ")}`;
    }
  }
  const local = await Promise.all(
    files.map(async (f) => ({
      path: await ctx.lake.localPath(f.path),
      schemaVersion: f.schemaVersion,
    })),
  );
  await conn.run(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(layer)}`);
  await conn.run(
    `CREATE VIEW ${quoteIdent(layer)}.${quoteIdent(name)} AS SELECT * FROM (${datasetViewSql(ds, local)})${filter}`,
  );
  return files.reduce((n, f) => n + f.rows, 0);
}

/** Writes `__out` as Parquet (one file per day for partitioned models) and puts it into the lake. */
async function writeOutput(
  conn: DuckDBConnection,
  ctx: TaskContext,
  m: CompiledModel,
  staging: string,
  rows: number,
  checkDay: (day: string, rows: number) => void,
): Promise<FileEntry[]> {
  if (rows === 0) return [];
  await mkdir(staging, { recursive: true });
  const partitioned = m.spec.materialized === "partitioned";
  const target = partitioned ? staging : join(staging, `part-${randomUUID()}.parquet`);
  const options = partitioned
    ? `PARTITION_BY (${DAY_COLUMN}), FILENAME_PATTERN 'part-{uuid}', `
    : "";
  const result = await conn.runAndReadAll(
    `COPY __out TO ${quoteString(target)} (FORMAT parquet, COMPRESSION ${ctx.compression}, ${options}RETURN_FILES true)`,
  );
  const written = (result.getRowsJson()[0]?.[1] ?? []) as string[];
  const counts = await conn.runAndReadAll(
    `SELECT file_name, num_rows::BIGINT FROM parquet_file_metadata([${written.map(quoteString).join(", ")}])`,
  );
  const rowsOf = new Map(
    (counts.getRows() as [string, bigint][]).map(([f, n]) => [f, Number(n)] as const),
  );
  const staged = written.map((localPath) => {
    const relative = localPath.slice(staging.length).replace(/^\/+/, "");
    const partition: Record<string, string> = {};
    for (const seg of relative.split("/").slice(0, -1)) {
      const eq = seg.indexOf("=");
      if (eq > 0) partition[seg.slice(0, eq)] = seg.slice(eq + 1);
    }
    return { localPath, relative, partition, rows: rowsOf.get(localPath) ?? 0 };
  });
  // Check every day before anything reaches the lake (a NULL day is written as `day=NULL`).
  if (partitioned) for (const f of staged) checkDay(f.partition[DAY_COLUMN] ?? "NULL", f.rows);
  return mapLimit(staged, PUT_CONCURRENCY, async (f): Promise<FileEntry> => {
    const key = `${m.spec.layer}/${m.spec.name}/${f.relative}`;
    const { bytes } = await ctx.lake.putFile(key, f.localPath);
    return { path: key, partition: f.partition, rows: f.rows, bytes, minTime: null, maxTime: null };
  });
}

/** Test results of a task that ran its tests, for the run history (empty otherwise). */
export function testsOf(e: unknown): readonly TestResultInfo[] {
  return e instanceof TaskError ? e.tests : [];
}

/** The underlying error of a task failure. */
export function causeOf(e: unknown): unknown {
  return e instanceof TaskError ? e.error : e;
}

export { testName };

function isContiguous(days: readonly string[]): boolean {
  for (let i = 1; i < days.length; i++) {
    const prev = Date.parse(`${days[i - 1]}T00:00:00Z`);
    if (Date.parse(`${days[i]}T00:00:00Z`) - prev !== 86_400_000) return false;
  }
  return true;
}

function timestamp(ms: number): string {
  return `TIMESTAMP ${quoteString(new Date(ms).toISOString().replace("T", " ").replace("Z", ""))}`;
}

/** `2001-01-01`, `2001-01-01..2001-01-31 (31 days)` or `the whole table`. */
export function describeDays(days: readonly string[]): string {
  if (days.length === 1) return days[0] === WHOLE_TABLE ? "the whole table" : days[0]!;
  return `${days[0]}..${days[days.length - 1]} (${days.length} days)`;
}

function firstLine(e: unknown): string {
  return ((e as Error).message ?? String(e)).split("\n")[0]!;
}
