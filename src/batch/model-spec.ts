// Loads batch models as written: <models>/<layer>/<name>.sql with optional <name>.yaml properties.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { basename, extname, join, resolve } from "node:path";
import { LineCounter, parseDocument } from "yaml";
import { z } from "zod";
import { nearest, shapeAt, valueAt, yamlLineOf } from "../config/index.js";
import { TributaryError } from "../errors.js";
import type { DataTest, ModelSpec } from "./plan.js";

/** Model and layer names: what DuckDB accepts unquoted and what a lake path can hold. */
const NAME = /^[a-z][a-z0-9_]*$/;

/** Names of the column tests, as written in properties files. */
const COLUMN_TESTS = ["not_null", "unique", "accepted_values", "relationships"] as const;

const columnTest = z
  .union([
    z
      .enum(["not_null", "unique"])
      .describe("`not_null`: no NULL in the column; `unique`: no value twice in a partition."),
    z
      .strictObject({
        accepted_values: z
          .strictObject({
            values: z
              .array(z.union([z.string(), z.number(), z.boolean()]))
              .min(1)
              .describe("The values the column may hold (NULL is left to `not_null`)."),
          })
          .describe("Every non-NULL value of the column is one of `values`."),
      })
      .describe("Test: the column holds only listed values."),
    z
      .strictObject({
        relationships: z
          .strictObject({
            to: z
              .string()
              .regex(/^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$/, "a qualified table, e.g. seed.airports")
              .describe("Qualified table the values must exist in, e.g. `seed.airports`."),
            field: z.string().min(1).describe("Column of `to` the values are looked up in."),
          })
          .describe("Every non-NULL value of the column exists in `to`.`field`."),
      })
      .describe("Test: the column is a foreign key of another table."),
  ])
  .describe("A column test: `not_null`, `unique`, `{accepted_values: …}` or `{relationships: …}`.");

/**
 * The properties of a model, `<name>.yaml` beside its `.sql`. Unknown keys are errors.
 * @example
 * materialized: partitioned
 * unique_key: flight_id
 * tests:
 *   columns:
 *     origin: [not_null, { relationships: { to: seed.airports, field: iata } }]
 *   row_count: { min: 1 }
 */
export const modelPropertiesSchema = z
  .strictObject({
    description: z.string().optional().describe("What the table holds, shown in the catalog."),
    owner: z.string().optional().describe("Team or person answering for the model."),
    materialized: z
      .enum(["partitioned", "full"])
      .default("partitioned")
      .describe(
        "`partitioned`: one partition per event day, the model outputs a `day` DATE column and a run replaces the days it builds; `full`: every run rebuilds the whole table (seeds, rolling windows).",
      ),
    unique_key: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .optional()
      .describe("Column(s) that identify a row; checked with a `unique` test per partition."),
    pii: z
      .array(z.string().min(1))
      .default([])
      .describe("Output columns holding personal data (governance masks and audits them)."),
    tags: z.array(z.string().min(1)).default([]).describe("Free-form tags shown in the catalog."),
    tests: z
      .strictObject({
        columns: z
          .record(z.string(), z.array(columnTest).describe("Tests of this column."))
          .optional()
          .describe("Tests per output column."),
        row_count: z
          .strictObject({
            min: z.number().int().min(0).optional().describe("Fewest rows a partition may have."),
            max: z.number().int().min(0).optional().describe("Most rows a partition may have."),
          })
          .refine((r) => r.min === undefined || r.max === undefined || r.min <= r.max, {
            message: "`min` is above `max`",
          })
          .optional()
          .describe("Bounds on the rows of each partition a run builds."),
      })
      .default({})
      .describe("Data tests checked on every partition before it replaces the live one."),
  })
  .describe("Properties of a batch model.");

/** Model properties as parsed (defaults applied). */
export type ModelProperties = z.output<typeof modelPropertiesSchema>;

/**
 * Reads every model of the configured layers, sorted by layer order then name.
 * A missing models folder or layer folder holds no models. A `.sql` outside a configured layer
 * folder, a `.yaml` without its `.sql`, a bad name, an empty file or invalid properties is a
 * TRB_BATCH_MODEL_INVALID error naming the file (and the line, for properties).
 * @example const specs = loadModelSpecs(pipeline.batch.modelsDir, pipeline.batch.layers);
 */
export function loadModelSpecs(modelsDir: string, layers: readonly string[]): ModelSpec[] {
  const root = resolve(modelsDir);
  if (!existsSync(root)) return [];
  if (!statSync(root).isDirectory()) throw invalid(root, undefined, "the models path is a file");
  const specs: ModelSpec[] = [];
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    if (entry.name.startsWith(".")) continue;
    const path = join(root, entry.name);
    if (entry.isDirectory() && layers.includes(entry.name)) continue;
    // A model outside a layer folder would silently never run: name it instead.
    const stray = entry.isDirectory() ? modelFiles(path)[0] : isModelFile(path) ? path : undefined;
    if (stray !== undefined) {
      const folder = entry.isDirectory() ? entry.name : undefined;
      const near = folder === undefined ? undefined : nearest(folder, layers);
      throw invalid(
        stray,
        undefined,
        `not in a layer folder: models are <models>/<layer>/<name>.sql, with the layers of batch.layers (${layers.join(", ")})${near ? `; did you mean ${near}/?` : ""}`,
      );
    }
  }
  for (const layer of layers) {
    const dir = join(root, layer);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) continue;
    specs.push(...loadLayer(dir, layer));
  }
  return specs;
}

function loadLayer(dir: string, layer: string): ModelSpec[] {
  const entries = readdirSync(dir, { withFileTypes: true })
    .filter((e) => !e.name.startsWith("."))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const names = new Set<string>();
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) {
      const nested = modelFiles(path)[0];
      if (nested !== undefined)
        throw invalid(nested, undefined, `models sit directly in the layer folder ${dir}`);
      continue;
    }
    const ext = extname(e.name);
    if (ext === ".yml") throw invalid(path, undefined, "properties files end in .yaml");
    if (ext === ".sql") names.add(basename(e.name, ext));
  }
  for (const e of entries) {
    if (extname(e.name) !== ".yaml" || e.isDirectory()) continue;
    const name = basename(e.name, ".yaml");
    if (!names.has(name)) {
      const near = nearest(name, [...names]);
      throw invalid(
        join(dir, e.name),
        undefined,
        `properties without a model: there is no ${name}.sql beside it${near ? ` (did you mean ${near}.yaml?)` : ""}`,
      );
    }
  }
  return [...names].map((name) => loadModel(dir, layer, name));
}

function loadModel(dir: string, layer: string, name: string): ModelSpec {
  const sqlFile = join(dir, `${name}.sql`);
  if (!NAME.test(name))
    throw invalid(sqlFile, undefined, `model names are lower_snake_case (got \`${name}\`)`);
  // Only the end is trimmed: leading lines stay so DuckDB's line numbers match the file.
  const sql = readFileSync(sqlFile, "utf8")
    .replace(/^\uFEFF/, "")
    .replace(/[\s;]+$/, "");
  if (sql.trim().length === 0)
    throw invalid(sqlFile, undefined, "the model is empty; write one SELECT");
  const yamlFile = join(dir, `${name}.yaml`);
  const propertiesFile = existsSync(yamlFile) ? yamlFile : undefined;
  const props =
    propertiesFile === undefined
      ? modelPropertiesSchema.parse({})
      : parseModelProperties(readFileSync(propertiesFile, "utf8"), propertiesFile);
  const uniqueKey =
    props.unique_key === undefined
      ? undefined
      : typeof props.unique_key === "string"
        ? [props.unique_key]
        : props.unique_key;
  return Object.freeze({
    layer,
    name,
    sqlFile,
    propertiesFile,
    sql,
    description: props.description,
    owner: props.owner,
    materialized: props.materialized,
    uniqueKey: uniqueKey && Object.freeze([...uniqueKey]),
    pii: Object.freeze([...props.pii]),
    tests: Object.freeze(dataTests(props, uniqueKey).map((t) => Object.freeze(t))),
    tags: Object.freeze([...props.tags]),
  });
}

/** The data tests of a model: its unique key first, then column tests as written, then row count. */
function dataTests(props: ModelProperties, uniqueKey: readonly string[] | undefined): DataTest[] {
  const tests: DataTest[] = [];
  if (uniqueKey) tests.push({ kind: "unique", columns: Object.freeze([...uniqueKey]) });
  for (const [column, list] of Object.entries(props.tests.columns ?? {})) {
    for (const t of list) {
      if (t === "not_null") tests.push({ kind: "not_null", column });
      else if (t === "unique") tests.push({ kind: "unique", columns: Object.freeze([column]) });
      else if ("accepted_values" in t)
        tests.push({
          kind: "accepted_values",
          column,
          values: Object.freeze([...t.accepted_values.values]),
        });
      else tests.push({ kind: "relationships", column, ...t.relationships });
    }
  }
  const rc = props.tests.row_count;
  if (rc) {
    tests.push({
      kind: "row_count",
      ...(rc.min === undefined ? {} : { min: rc.min }),
      ...(rc.max === undefined ? {} : { max: rc.max }),
    });
  }
  // `unique_key: a` and `a: [unique]` say the same thing; check it once.
  const seen = new Set<string>();
  return tests.filter((t) => {
    const key = JSON.stringify(t);
    return seen.has(key) ? false : (seen.add(key), true);
  });
}

/**
 * Parses and validates the text of a properties file; errors are TRB_BATCH_MODEL_INVALID
 * `file:line: what`, an unknown key naming the nearest valid one.
 */
export function parseModelProperties(text: string, file: string): ModelProperties {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const err = doc.errors[0]!;
    throw invalid(
      file,
      counter.linePos(err.pos[0]).line,
      `YAML syntax: ${err.message.split("\n")[0]}`,
    );
  }
  const raw: unknown = doc.toJS() ?? {};
  if (typeof raw !== "object" || Array.isArray(raw))
    throw invalid(
      file,
      1,
      "model properties are a map of keys (description, materialized, tests, …)",
    );
  const parsed = modelPropertiesSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const { path, what } = describeIssue(parsed.error.issues[0]!, raw);
  throw invalid(file, yamlLineOf(doc, counter, path), what);
}

/**
 * The line of a key path in a properties file (for errors found once the model is compiled, such
 * as a test naming a column the output lacks); undefined when the file or key is gone.
 */
export function propertiesLine(file: string, path: readonly PropertyKey[]): number | undefined {
  try {
    const counter = new LineCounter();
    const doc = parseDocument(readFileSync(file, "utf8"), { lineCounter: counter });
    return yamlLineOf(doc, counter, path);
  } catch {
    return undefined;
  }
}

/** A TRB_BATCH_MODEL_INVALID error `file:line: what`. */
function invalid(file: string, line: number | undefined, what: string): TributaryError {
  return new TributaryError(
    "TRB_BATCH_MODEL_INVALID",
    `${file}${line === undefined ? "" : `:${line}`}: ${what}`,
    { details: { file, ...(line === undefined ? {} : { line }) } },
  );
}

function isModelFile(path: string): boolean {
  return [".sql", ".yaml", ".yml"].includes(extname(path)) && statSync(path).isFile();
}

/** Model-looking files under a folder, depth-first in name order (hidden entries skipped). */
function modelFiles(dir: string, depth = 0): string[] {
  if (depth > 8) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
    a.name < b.name ? -1 : 1,
  )) {
    if (e.name.startsWith(".")) continue;
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...modelFiles(path, depth + 1));
    else if (isModelFile(path)) out.push(path);
  }
  return out;
}

/** A readable message for a zod issue, and the key path it is about. */
function describeIssue(
  issue: z.core.$ZodIssue,
  raw: unknown,
): { path: readonly PropertyKey[]; what: string } {
  const at = (p: readonly PropertyKey[]): string => (p.length > 0 ? p.join(".") : "(top level)");
  if (issue.code === "unrecognized_keys") {
    const known = Object.keys(shapeAt(modelPropertiesSchema, issue.path) ?? {});
    const parts = issue.keys.map((k) => {
      const near = nearest(k, known);
      return near ? `unknown key \`${k}\` (did you mean \`${near}\`?)` : `unknown key \`${k}\``;
    });
    return {
      path: [...issue.path, issue.keys[0]!],
      what: `${at(issue.path)}: ${parts.join(", ")}; valid keys: ${known.join(", ")}`,
    };
  }
  if (issue.code === "invalid_union") {
    // A column test: say which test was meant, or go into the one that was named.
    const value = valueAt(raw, issue.path);
    const named = value !== null && typeof value === "object" ? Object.keys(value) : [];
    const branch = named.length === 1 ? COLUMN_TESTS.indexOf(named[0] as never) - 1 : -1;
    if (branch >= 1 && (issue.errors[branch]?.length ?? 0) > 0) {
      // Issues of a union branch have paths relative to the union's value.
      // An unknown key first: a typo also makes the key it meant missing.
      const depth = (i: z.core.$ZodIssue): number =>
        i.path.length + (i.code === "unrecognized_keys" ? 100 : 0);
      const best = [...issue.errors[branch]!].sort((a, b) => depth(b) - depth(a))[0]!;
      return describeIssue({ ...best, path: [...issue.path, ...best.path] }, raw);
    }
    const got = typeof value === "string" ? value : (named[0] ?? JSON.stringify(value));
    const near = nearest(String(got), [...COLUMN_TESTS]);
    return {
      path: issue.path,
      what: `${at(issue.path)}: unknown test \`${String(got)}\`${near ? ` (did you mean \`${near}\`?)` : ""}; tests are not_null, unique, {accepted_values: {values}}, {relationships: {to, field}}`,
    };
  }
  if (issue.code === "invalid_value") {
    const value = valueAt(raw, issue.path);
    const near = nearest(String(value), issue.values.map(String));
    return {
      path: issue.path,
      what: `${at(issue.path)}: ${issue.message}${near ? ` (did you mean \`${near}\`?)` : ""}`,
    };
  }
  if (issue.code === "invalid_type" && valueAt(raw, issue.path) === undefined)
    return { path: issue.path, what: `${at(issue.path)}: missing required key` };
  return { path: issue.path, what: `${at(issue.path)}: ${issue.message}` };
}
