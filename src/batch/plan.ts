// Plan data of the batch layer: a model as written, resolved, and compiled (frozen; executors only read it).
import type { SchemaColumn } from "../backends/contracts/index.js";

/** How a model's table is built. */
export type Materialization =
  /** One partition per event day (column `day`, DATE); a run replaces the days it builds. */
  | "partitioned"
  /** The whole table is rebuilt by every run that builds it. */
  | "full";

/** A data test on a model's output, checked for every partition a run builds. */
export type DataTest =
  | { readonly kind: "not_null"; readonly column: string }
  | { readonly kind: "unique"; readonly columns: readonly string[] }
  | {
      readonly kind: "accepted_values";
      readonly column: string;
      readonly values: readonly (string | number | boolean)[];
    }
  | {
      readonly kind: "relationships";
      readonly column: string;
      /** Qualified table, e.g. `seed.airports`. */
      readonly to: string;
      readonly field: string;
    }
  | { readonly kind: "row_count"; readonly min?: number; readonly max?: number };

/** A model as written: `models/<layer>/<name>.sql` and its optional `<name>.yaml`. */
export interface ModelSpec {
  readonly layer: string;
  readonly name: string;
  /** Absolute path of the .sql file. */
  readonly sqlFile: string;
  /** Absolute path of the properties file, when there is one. */
  readonly propertiesFile: string | undefined;
  /** The SELECT as written (trailing semicolon removed). */
  readonly sql: string;
  readonly description: string | undefined;
  readonly owner: string | undefined;
  readonly materialized: Materialization;
  /** Columns that identify a row; checked with a `unique` test per partition. */
  readonly uniqueKey: readonly string[] | undefined;
  /** Columns holding personal data (used by governance: masks, audit). */
  readonly pii: readonly string[];
  readonly tests: readonly DataTest[];
  /** Free-form tags shown in the catalog. */
  readonly tags: readonly string[];
}

/** A reference of a model's SQL to a table, with where it is written. */
export interface TableRef {
  /** Qualified name, e.g. `raw.flights`, `t1.flights`, `seed.airports`. */
  readonly table: string;
  /** 1-based line and column in the model's SQL file, when DuckDB's parser reports it. */
  readonly line: number | undefined;
  readonly column: number | undefined;
}

/** Where a model's input comes from. */
export type InputKind = "stream" | "seed" | "model";

/** An input of a model, resolved to what provides it. */
export interface ResolvedInput extends TableRef {
  readonly kind: InputKind;
  /** For a model input: whether that model is partitioned (it is then read day by day). */
  readonly partitioned: boolean;
}

/** A model whose references are resolved: its inputs exist, there is no cycle. */
export interface ResolvedModel {
  readonly spec: ModelSpec;
  /** `layer.name`. */
  readonly id: string;
  readonly inputs: readonly ResolvedInput[];
}

/** A model ready to run: output schema known (from DuckDB binding the SQL), order fixed. */
export interface CompiledModel extends ResolvedModel {
  /** Output columns as DuckDB binds them (a partitioned model includes `day` DATE). */
  readonly columns: readonly SchemaColumn[];
  /** SHA-256 of what decides the output (SQL and materialization): a change makes partitions outdated. */
  readonly hash: string;
  /** Position in dependency order (inputs first). */
  readonly order: number;
  /** Ids of the models that read this one. */
  readonly dependents: readonly string[];
}

/** A seed table: a static file loaded as `seed.<name>`. */
export interface SeedTable {
  readonly name: string;
  readonly path: string;
  readonly columns: readonly SchemaColumn[];
  /** SHA-256 of the file's bytes: a change reloads the seed and makes its readers stale. */
  readonly hash: string;
  readonly description: string | undefined;
  readonly owner: string | undefined;
}

/** The compiled batch plan of a pipeline: what `tributary batch plan` prints. */
export interface BatchPlan {
  /** Models in dependency order. */
  readonly models: readonly CompiledModel[];
  readonly seeds: readonly SeedTable[];
  readonly layers: readonly string[];
  readonly timezone: string;
}

/** Column every partitioned model must output: the event day (DATE) of the row. */
export const DAY_COLUMN = "day";

/** Day key of a full-refresh model's only partition (and of its data test results). */
export const WHOLE_TABLE = "*";
