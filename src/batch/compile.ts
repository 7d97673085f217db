// Compiles batch models to the frozen plan: inputs from the parse tree, order, schemas DuckDB binds.
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import type { SchemaColumn } from "../backends/contracts/index.js";
import { nearest, sha256Hex } from "../config/index.js";
import { walkSqlTree as walk } from "../serve/index.js";
import { TributaryError } from "../errors.js";
import { testName } from "./data-tests.js";
import { propertiesLine } from "./model-spec.js";
import {
  DAY_COLUMN,
  type BatchPlan,
  type CompiledModel,
  type ModelSpec,
  type ResolvedInput,
  type ResolvedModel,
  type SeedTable,
} from "./plan.js";

/** Layers written by the land stage: their tables are streams, read day by day. */
const STREAM_LAYERS: readonly string[] = ["raw", "dlq"];

/**
 * Table functions a model may call: they generate rows. Any other (read_parquet, query_table,
 * query, …) would read data the plan cannot see, so the model would not be rebuilt when it changes.
 */
const ALLOWED_TABLE_FUNCTIONS = new Set(["range", "generate_series", "unnest"]);

/**
 * Statements every batch DuckDB connection runs before it binds or runs models: the session zone
 * is UTC (event times are naive UTC timestamps), and `event_day(ts)` is the DATE of `ts` in the
 * pipeline's time zone (decision 0004 §3).
 * @example for (const sql of engineSetupSql(pipeline.batch.timezone)) await conn.run(sql);
 */
export function engineSetupSql(timezone: string): string[] {
  // In UTC the day is a plain cast: the two zone conversions cost ~2.5x more per row (measured on
  // 3M rows: 1.18 s against 0.46 s), a visible share of a backfill.
  const body =
    timezone === "UTC"
      ? "CAST(ts AS DATE)"
      : `CAST(timezone(${sqlString(timezone)}, CAST(ts AS TIMESTAMPTZ)) AS DATE)`;
  return ["SET TimeZone = 'UTC'", `CREATE OR REPLACE MACRO event_day(ts) AS ${body}`];
}

/** What `compilePlan` compiles. */
export interface CompileInput {
  /** Models as loaded by `loadModelSpecs`. */
  readonly specs: readonly ModelSpec[];
  /** `batch.layers`, in dependency order. */
  readonly layers: readonly string[];
  /** `batch.timezone`. */
  readonly timezone: string;
  /** Stream datasets by qualified name (`raw.flights`, `dlq.flights`), with their Hive partition columns. */
  readonly sources: ReadonlyMap<string, readonly SchemaColumn[]>;
  readonly seeds: readonly SeedTable[];
}

/** What provides a table a model may read. */
interface Provider {
  readonly kind: ResolvedInput["kind"];
  readonly partitioned: boolean;
  /** Layer index for a model (a model reads its own layer and earlier ones). */
  readonly layerIndex: number | undefined;
}

/** A table reference as DuckDB's parser reports it. */
interface ParsedRef {
  readonly catalog: string;
  readonly schema: string;
  readonly table: string;
  /** UTF-8 byte offset into the SQL, when known. */
  readonly offset: number | undefined;
  /** The bare name is a CTE in scope where it is read. */
  readonly cte: boolean;
}

/**
 * Compiles models into the batch plan: resolves each model's tables from DuckDB's parse tree
 * (json_serialize_sql), orders models so inputs come first, and binds every SQL with DuckDB
 * against empty tables of the input schemas to learn its output columns. Throws
 * TRB_BATCH_MODEL_INVALID, TRB_BATCH_UNKNOWN_TABLE, TRB_BATCH_UNKNOWN_COLUMN, TRB_BATCH_CYCLE or
 * TRB_BATCH_DAY_COLUMN with `file:line: model: what`. Reads no data and touches no file.
 * @example
 * const plan = await compilePlan({ specs, layers, timezone: "UTC", sources, seeds });
 * console.log(formatPlan(plan));
 */
export async function compilePlan(input: CompileInput): Promise<BatchPlan> {
  const { layers, timezone } = input;
  const specs = sortSpecs(input.specs, layers);
  const providers = providersOf(input, specs);
  // External access off: binding a model must not read files (read_parquet) or the network.
  const db = await DuckDBInstance.create(":memory:", {
    threads: "1",
    enable_external_access: "false",
  });
  try {
    const conn = await db.connect();
    try {
      const resolved: ResolvedModel[] = [];
      for (const spec of specs) {
        const refs = await parseRefs(conn, spec);
        resolved.push(resolveModel(spec, refs, providers, layers));
      }
      const ordered = orderModels(resolved, layers);
      await createInputTables(conn, input, layers);
      const columns = new Map<string, readonly SchemaColumn[]>();
      for (const [name, cols] of input.sources) columns.set(name.toLowerCase(), cols);
      for (const seed of input.seeds) columns.set(`seed.${seed.name}`, seed.columns);
      for (const model of ordered) columns.set(model.id, await bindModel(conn, model));
      for (const model of ordered) checkProperties(model, columns);
      const models = ordered.map((m, order): CompiledModel => ({
        ...m,
        columns: columns.get(m.id)!,
        hash: modelHash(m.spec, timezone),
        order,
        dependents: ordered
          .filter((d) => d.inputs.some((i) => i.kind === "model" && i.table === m.id))
          .map((d) => d.id),
      }));
      // Copies: freezing must not reach into the caller's seed objects.
      const seeds = input.seeds.map((s) => ({ ...s, columns: s.columns.map((c) => ({ ...c })) }));
      return deepFreeze({ models, seeds, layers: [...layers], timezone });
    } finally {
      conn.closeSync();
    }
  } finally {
    db.closeSync();
  }
}

/**
 * The plan as text, for `tributary batch plan`: each model in order (materialization, inputs,
 * output columns, tests, description), then the seeds.
 */
export function formatPlan(plan: BatchPlan): string {
  const out: string[] = [
    `Batch plan: ${plan.models.length} model(s), ${plan.seeds.length} seed(s); layers ${plan.layers.join(" → ")}; days in ${plan.timezone}`,
  ];
  for (const m of plan.models) {
    out.push("", `${m.order + 1}. ${m.id} (${m.spec.materialized})  hash ${m.hash.slice(0, 12)}`);
    if (m.spec.description) out.push(`   ${m.spec.description.trim().replace(/\s+/g, " ")}`);
    if (m.spec.owner) out.push(`   owner: ${m.spec.owner}`);
    if (m.spec.tags.length > 0) out.push(`   tags: ${m.spec.tags.join(", ")}`);
    const reads = m.inputs.map(
      (i) => `${i.table} (${i.kind === "model" ? (i.partitioned ? "by day" : "full") : i.kind})`,
    );
    out.push(`   reads: ${reads.length > 0 ? reads.join(", ") : "(nothing)"}`);
    if (m.dependents.length > 0) out.push(`   read by: ${m.dependents.join(", ")}`);
    out.push("   columns:");
    const pii = new Set(m.spec.pii.map((c) => c.toLowerCase()));
    const width = Math.max(...m.columns.map((c) => c.name.length));
    for (const c of m.columns)
      out.push(
        `     ${c.name.padEnd(width)}  ${c.type}${pii.has(c.name.toLowerCase()) ? "  (pii)" : ""}`,
      );
    out.push(
      `   tests: ${m.spec.tests.length > 0 ? m.spec.tests.map(testName).join(", ") : "(none)"}`,
    );
    out.push(`   file: ${m.spec.sqlFile}`);
  }
  out.push("", plan.seeds.length > 0 ? "Seeds:" : "Seeds: (none)");
  for (const s of plan.seeds) {
    out.push(`  seed.${s.name}  ${s.path}  hash ${s.hash.slice(0, 12)}`);
    if (s.description) out.push(`    ${s.description.trim().replace(/\s+/g, " ")}`);
    out.push(`    columns: ${s.columns.map((c) => `${c.name} ${c.type}`).join(", ")}`);
  }
  return out.join("\n") + "\n";
}

/** Specs in layer order then name; a layer not configured or an id given twice is an error. */
function sortSpecs(specs: readonly ModelSpec[], layers: readonly string[]): ModelSpec[] {
  const seen = new Set<string>();
  for (const s of specs) {
    if (!layers.includes(s.layer)) {
      throw invalid(
        s.sqlFile,
        undefined,
        `layer \`${s.layer}\` is not in batch.layers (${layers.join(", ")})`,
      );
    }
    const id = `${s.layer}.${s.name}`;
    if (seen.has(id)) throw invalid(s.sqlFile, undefined, `model ${id} is defined twice`);
    seen.add(id);
  }
  return [...specs].sort(byLayerThenName(layers, (s) => s));
}

function byLayerThenName<T>(
  layers: readonly string[],
  key: (t: T) => { layer: string; name: string },
): (a: T, b: T) => number {
  return (a, b) => {
    const [ka, kb] = [key(a), key(b)];
    const d = layers.indexOf(ka.layer) - layers.indexOf(kb.layer);
    return d !== 0 ? d : ka.name < kb.name ? -1 : ka.name > kb.name ? 1 : 0;
  };
}

/** Every table a model may read, by lower-case qualified name. */
function providersOf(input: CompileInput, specs: readonly ModelSpec[]): Map<string, Provider> {
  const providers = new Map<string, Provider>();
  for (const name of input.sources.keys()) {
    const layer = name.split(".")[0]!.toLowerCase();
    providers.set(name.toLowerCase(), {
      kind: "stream",
      partitioned: STREAM_LAYERS.includes(layer),
      layerIndex: undefined,
    });
  }
  for (const seed of input.seeds)
    providers.set(`seed.${seed.name}`, { kind: "seed", partitioned: false, layerIndex: undefined });
  for (const s of specs) {
    const id = `${s.layer}.${s.name}`;
    if (providers.has(id))
      throw invalid(s.sqlFile, undefined, `model ${id} has the name of a stream or seed table`);
    providers.set(id, {
      kind: "model",
      partitioned: s.materialized === "partitioned",
      layerIndex: input.layers.indexOf(s.layer),
    });
  }
  return providers;
}

/** The tables a model's SQL names, from DuckDB's parse tree; the SQL must be one SELECT. */
async function parseRefs(conn: DuckDBConnection, spec: ModelSpec): Promise<ParsedRef[]> {
  const id = `${spec.layer}.${spec.name}`;
  const reader = await conn.runAndReadAll("SELECT json_serialize_sql($1::VARCHAR)", [spec.sql]);
  const parsed = JSON.parse(String(reader.getRowsJson()[0]?.[0])) as {
    error: boolean;
    error_type?: string;
    error_message?: string;
    position?: string;
    statements?: { node: unknown }[];
  };
  if (parsed.error) {
    if (/only select/i.test(parsed.error_message ?? ""))
      throw invalid(
        spec.sqlFile,
        undefined,
        `${id}: a model is one SELECT statement (no DDL, DML, COPY, SET or PRAGMA)`,
      );
    const at =
      parsed.position === undefined ? undefined : locate(spec.sql, Number(parsed.position));
    throw invalid(
      spec.sqlFile,
      at?.line,
      `${id}: the SQL does not parse: ${parsed.error_message ?? "syntax error"}`,
    );
  }
  const statements = parsed.statements ?? [];
  if (statements.length !== 1) {
    throw invalid(
      spec.sqlFile,
      undefined,
      statements.length === 0
        ? `${id}: the model has no statement; write one SELECT`
        : `${id}: a model is one SELECT statement, this file has ${statements.length}`,
    );
  }
  const refs: ParsedRef[] = [];
  walk(statements[0]!.node, (node, ctes) => {
    const offset = typeof node.query_location === "number" ? node.query_location : undefined;
    if (node.type === "BASE_TABLE") {
      const table = String(node.table_name ?? "");
      const schema = String(node.schema_name ?? "");
      refs.push({
        catalog: String(node.catalog_name ?? ""),
        schema,
        table,
        offset,
        cte: schema === "" && ctes.has(table.toLowerCase()),
      });
    } else if (node.type === "SHOW_REF") {
      throw invalid(
        spec.sqlFile,
        locate(spec.sql, offset)?.line,
        `${id}: a model is a SELECT, not DESCRIBE or SHOW`,
      );
    } else if (node.type === "TABLE_FUNCTION") {
      const fn = (node.function as { function_name?: string } | undefined)?.function_name ?? "?";
      if (!ALLOWED_TABLE_FUNCTIONS.has(fn.toLowerCase()))
        throw invalid(
          spec.sqlFile,
          locate(spec.sql, offset)?.line,
          `${id}: table function ${fn}() is not allowed; read tables by name (layer.name) so the plan knows the model's inputs`,
        );
    }
  });
  return refs;
}

/** Resolves a model's references to what provides them: inputs exist and respect layer order. */
function resolveModel(
  spec: ModelSpec,
  refs: readonly ParsedRef[],
  providers: ReadonlyMap<string, Provider>,
  layers: readonly string[],
): ResolvedModel {
  const id = `${spec.layer}.${spec.name}`;
  const known = [...providers.keys()];
  const inputs = new Map<string, ResolvedInput>();
  const sorted = [...refs].sort((a, b) => (a.offset ?? Infinity) - (b.offset ?? Infinity));
  for (const ref of sorted) {
    if (ref.cte) continue;
    const at = locate(spec.sql, ref.offset);
    const written = [ref.catalog, ref.schema, ref.table].filter((p) => p !== "").join(".");
    if (ref.catalog !== "")
      throw invalid(
        spec.sqlFile,
        at?.line,
        `${id} reads ${written}; name tables layer.name, without a catalog`,
      );
    if (ref.schema === "") {
      const table = ref.table.toLowerCase();
      const same = known.filter((k) => k.endsWith(`.${table}`));
      const hint = same.length > 0 ? same.join(" or ") : nearest(`raw.${table}`, known);
      throw new TributaryError(
        "TRB_BATCH_UNKNOWN_TABLE",
        `${where(spec.sqlFile, at?.line)}: ${id} reads ${ref.table} without its layer; name tables qualified, layer.name${hint ? ` (did you mean ${hint}?)` : ""}`,
        { details: details(spec.sqlFile, at) },
      );
    }
    const table = `${ref.schema}.${ref.table}`.toLowerCase();
    const provider = providers.get(table);
    if (provider === undefined) {
      const near = nearest(table, known);
      throw new TributaryError(
        "TRB_BATCH_UNKNOWN_TABLE",
        `${where(spec.sqlFile, at?.line)}: ${id} reads ${table}, which no stream, seed or model provides${near ? ` (did you mean ${near}?)` : ""}`,
        { details: details(spec.sqlFile, at) },
      );
    }
    if (provider.layerIndex !== undefined && provider.layerIndex > layers.indexOf(spec.layer)) {
      throw invalid(
        spec.sqlFile,
        at?.line,
        `${id} reads ${table} of the later layer ${ref.schema.toLowerCase()}; a model reads its own layer and earlier ones (batch.layers: ${layers.join(", ")})`,
      );
    }
    if (inputs.has(table)) continue;
    inputs.set(table, {
      table,
      line: at?.line,
      column: at?.column,
      kind: provider.kind,
      partitioned: provider.partitioned,
    });
  }
  if (spec.materialized === "partitioned" && ![...inputs.values()].some((i) => i.partitioned)) {
    throw invalid(
      spec.sqlFile,
      undefined,
      `${id} is partitioned by day but reads no partitioned input (a raw./dlq. stream or a partitioned model); set \`materialized: full\` in ${spec.name}.yaml`,
    );
  }
  return { spec, id, inputs: [...inputs.values()] };
}

/**
 * Orders models so every model comes after the models it reads (ties: layer order, then name).
 * A cycle is TRB_BATCH_CYCLE naming it in reading order, `t1.a → t1.b → t1.a`.
 */
function orderModels(models: readonly ResolvedModel[], layers: readonly string[]): ResolvedModel[] {
  const byId = new Map(models.map((m) => [m.id, m]));
  const cmp = byLayerThenName(layers, (m: ResolvedModel) => m.spec);
  const reads = (m: ResolvedModel): ResolvedModel[] =>
    m.inputs.flatMap((i) => (i.kind === "model" ? [byId.get(i.table)!] : [])).sort(cmp);
  const state = new Map<string, "visiting" | "done">();
  const stack: ResolvedModel[] = [];
  const visit = (m: ResolvedModel): void => {
    state.set(m.id, "visiting");
    stack.push(m);
    for (const dep of reads(m)) {
      if (state.get(dep.id) === "visiting") {
        const cycle = [...stack.slice(stack.indexOf(dep)), dep];
        const first = cycle[0]!;
        const line = first.inputs.find((i) => i.table === cycle[1]!.id)?.line;
        throw new TributaryError(
          "TRB_BATCH_CYCLE",
          `${where(first.spec.sqlFile, line)}: models read each other in a cycle: ${cycle.map((c) => c.id).join(" → ")}; break it`,
          { details: { ...details(first.spec.sqlFile, { line }), cycle: cycle.map((c) => c.id) } },
        );
      }
      if (!state.has(dep.id)) visit(dep);
    }
    stack.pop();
    state.set(m.id, "done");
  };
  for (const m of [...models].sort(cmp)) if (!state.has(m.id)) visit(m);

  // Kahn's algorithm, always taking the smallest ready model so the order is deterministic.
  const waiting = new Map(models.map((m) => [m.id, new Set(reads(m).map((d) => d.id))]));
  const ordered: ResolvedModel[] = [];
  while (waiting.size > 0) {
    const next = [...waiting.entries()]
      .filter(([, deps]) => deps.size === 0)
      .map(([id]) => byId.get(id)!)
      .sort(cmp)[0]!;
    ordered.push(next);
    waiting.delete(next.id);
    for (const deps of waiting.values()) deps.delete(next.id);
  }
  return ordered;
}

/** Creates the schemas, an empty table per stream and seed, and the engine's setup. */
async function createInputTables(
  conn: DuckDBConnection,
  input: CompileInput,
  layers: readonly string[],
): Promise<void> {
  const tables: [string, readonly SchemaColumn[]][] = [
    ...[...input.sources].map(([name, cols]): [string, readonly SchemaColumn[]] => [name, cols]),
    ...input.seeds.map((s): [string, readonly SchemaColumn[]] => [`seed.${s.name}`, s.columns]),
  ];
  const schemas = new Set([...layers, "seed", ...tables.map(([n]) => n.split(".")[0]!)]);
  try {
    for (const schema of schemas) await conn.run(`CREATE SCHEMA IF NOT EXISTS ${ident(schema)}`);
    for (const [name, cols] of tables) await conn.run(createTableSql(name, cols));
  } catch (e) {
    throw new TributaryError(
      "TRB_INTERNAL",
      `batch plan: cannot create the input tables: ${(e as Error).message.split("\n")[0]}`,
      { cause: e },
    );
  }
  for (const sql of engineSetupSql(input.timezone)) await conn.run(sql);
  try {
    await conn.run("SELECT event_day(TIMESTAMP '2000-01-01 00:00:00')");
  } catch (e) {
    throw new TributaryError(
      "TRB_CONFIG_INVALID",
      `batch.timezone: DuckDB does not know the time zone \`${input.timezone}\`; use an IANA name such as UTC or Europe/Paris`,
      { cause: e },
    );
  }
}

/**
 * Binds a model's SQL with DuckDB (`DESCRIBE`) to learn its output columns, then creates an empty
 * table of them so the models reading it bind in turn.
 */
async function bindModel(conn: DuckDBConnection, model: ResolvedModel): Promise<SchemaColumn[]> {
  const { spec, id } = model;
  let rows: unknown[][];
  try {
    // DESCRIBE shares the SQL's first line, so DuckDB's `LINE n` is the file's line n.
    rows = (await conn.runAndReadAll(`DESCRIBE ${spec.sql}`)).getRowsJson();
  } catch (e) {
    throw bindError(model, e);
  }
  const columns = rows.map(([name, type]) => ({ name: String(name), type: String(type) }));
  const seen = new Map<string, string>();
  for (const c of columns) {
    const prior = seen.get(c.name.toLowerCase());
    if (prior !== undefined)
      throw invalid(
        spec.sqlFile,
        undefined,
        `${id} outputs the column ${c.name} twice (as ${prior} and ${c.name}); alias one of them`,
      );
    seen.set(c.name.toLowerCase(), c.name);
  }
  if (spec.materialized === "partitioned") {
    const day = columns.find((c) => c.name.toLowerCase() === DAY_COLUMN);
    const problem =
      day === undefined
        ? "outputs no `day` column"
        : day.name !== DAY_COLUMN
          ? `names its day column \`${day.name}\`; alias it \`day\``
          : day.type !== "DATE"
            ? `outputs \`day\` as ${day.type}`
            : undefined;
    if (problem !== undefined) {
      throw new TributaryError(
        "TRB_BATCH_DAY_COLUMN",
        `${spec.sqlFile}: ${id} is partitioned by day but ${problem}; add \`event_day(<event time>) AS day\` (a DATE), or set \`materialized: full\``,
        { details: { file: spec.sqlFile } },
      );
    }
  }
  try {
    await conn.run(createTableSql(id, columns));
  } catch (e) {
    throw new TributaryError(
      "TRB_BATCH_MODEL_INVALID",
      `${spec.sqlFile}: ${id}: its output cannot be stored as a table: ${(e as Error).message.split("\n")[0]}`,
      { cause: e, details: { file: spec.sqlFile } },
    );
  }
  return columns;
}

/** A DuckDB binder error as `file:line: model: message (candidates)`. */
function bindError(model: ResolvedModel, e: unknown): TributaryError {
  const message = e instanceof Error ? e.message : String(e);
  const lineMatch = /\n\s*LINE (\d+):/.exec(message);
  const line = lineMatch ? Number(lineMatch[1]) : undefined;
  const body = message.split(/\n\s*LINE \d+:/)[0]!;
  const text = body
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "")
    .join(" ")
    .replace(/Candidate bindings:\s*:\s*/, "Candidate bindings: ");
  const unknownColumn =
    /^Binder Error: (Referenced column|Referenced table|Table "[^"]*" does not have a column|Values list "[^"]*" does not have a column|Column "[^"]*" does not exist)/.test(
      message,
    );
  return new TributaryError(
    unknownColumn ? "TRB_BATCH_UNKNOWN_COLUMN" : "TRB_BATCH_MODEL_INVALID",
    `${where(model.spec.sqlFile, line)}: ${model.id}: ${text}`,
    { cause: e, details: details(model.spec.sqlFile, { line }) },
  );
}

/** Tests, unique key and PII name output columns; relationships name a known table and column. */
function checkProperties(
  model: ResolvedModel,
  columns: ReadonlyMap<string, readonly SchemaColumn[]>,
): void {
  const { spec, id } = model;
  const output = columns.get(id)!.map((c) => c.name);
  const file = spec.propertiesFile ?? spec.sqlFile;
  const fail = (path: readonly PropertyKey[], what: string): never => {
    const line = spec.propertiesFile === undefined ? undefined : propertiesLine(file, path);
    throw invalid(file, line, `${id}: ${what}`);
  };
  const has = (cols: readonly string[], c: string): boolean =>
    cols.some((o) => o.toLowerCase() === c.toLowerCase());
  const missing = (c: string, cols: readonly string[], table: string): string => {
    const near = nearest(c, cols);
    return `${table} has no column ${c}${near ? ` (did you mean ${near}?)` : ""}`;
  };
  for (const c of spec.uniqueKey ?? [])
    if (!has(output, c)) fail(["unique_key"], `unique_key: ${missing(c, output, id)}`);
  for (const c of spec.pii) if (!has(output, c)) fail(["pii"], `pii: ${missing(c, output, id)}`);
  for (const t of spec.tests) {
    const cols = t.kind === "row_count" ? [] : t.kind === "unique" ? t.columns : [t.column];
    for (const c of cols)
      if (!has(output, c))
        fail(["tests", "columns", c], `test ${testName(t)}: ${missing(c, output, id)}`);
    if (t.kind === "relationships") {
      const target = columns.get(t.to.toLowerCase());
      if (target === undefined) {
        const near = nearest(t.to, [...columns.keys()]);
        fail(
          ["tests", "columns", t.column],
          `test ${testName(t)}: no stream, seed or model provides ${t.to}${near ? ` (did you mean ${near}?)` : ""}`,
        );
      } else if (
        !has(
          target.map((c) => c.name),
          t.field,
        )
      ) {
        fail(
          ["tests", "columns", t.column],
          `test ${testName(t)}: ${missing(
            t.field,
            target.map((c) => c.name),
            t.to,
          )}`,
        );
      }
    }
  }
}

function createTableSql(qualified: string, columns: readonly SchemaColumn[]): string {
  const dot = qualified.indexOf(".");
  const [schema, table] = [qualified.slice(0, dot), qualified.slice(dot + 1)];
  const cols = columns.map((c) => `${ident(c.name)} ${c.type}`).join(", ");
  return `CREATE TABLE ${ident(schema)}.${ident(table)} (${cols})`;
}

/** 1-based line and column (in characters) of a UTF-8 byte offset, as DuckDB's parser reports them. */
function locate(
  sql: string,
  offset: number | undefined,
): { line: number; column: number } | undefined {
  if (offset === undefined || !Number.isSafeInteger(offset) || offset < 0) return undefined;
  const bytes = Buffer.from(sql, "utf8");
  // DuckDB marks "no location" with 2^64-1; anything past the end is no location either.
  if (offset > bytes.length) return undefined;
  const lines = bytes.subarray(0, offset).toString("utf8").split("\n");
  return { line: lines.length, column: [...lines[lines.length - 1]!].length + 1 };
}

function where(file: string, line: number | undefined): string {
  return line === undefined ? file : `${file}:${line}`;
}

function details(
  file: string,
  at: { line?: number | undefined; column?: number | undefined } | undefined,
): Record<string, unknown> {
  return {
    file,
    ...(at?.line === undefined ? {} : { line: at.line }),
    ...(at?.column === undefined ? {} : { column: at.column }),
  };
}

function invalid(file: string, line: number | undefined, what: string): TributaryError {
  return new TributaryError("TRB_BATCH_MODEL_INVALID", `${where(file, line)}: ${what}`, {
    details: details(file, { line }),
  });
}

function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function sqlString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object") {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * The hash of a model's definition: a partition built with another hash is outdated. Serve
 * computes it too, to tell a view's partitions of the current definition from older ones.
 */
export function modelHash(
  spec: Pick<ModelSpec, "layer" | "name" | "sql" | "materialized">,
  timezone: string,
): string {
  return sha256Hex(JSON.stringify([spec.layer, spec.name, spec.sql, spec.materialized, timezone]));
}
