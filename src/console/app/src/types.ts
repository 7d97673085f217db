// The shapes of the console API's JSON answers (docs: the console endpoints and docs/reference/http-api.md).

/** A SQL or view value as JSON carries it: big integers and decimals may be strings. */
export type Cell = string | number | boolean | null | Cell[] | { [key: string]: Cell };

/** A result column: its name and DuckDB type. */
export interface Column {
  name: string;
  type: string;
  description?: string;
}

/** `GET /v1/console/session`: who is signed in and what the pipeline declares. */
export interface Session {
  key: { id: string; scopes: string[] };
  can: { read: boolean; admin: boolean };
  pipeline: {
    name: string;
    roles: string[];
    streams: string[];
    views: string[];
    dashboards: { name: string; title: string }[];
  };
}

/** A batch run as the run history lists it. */
export interface Run {
  id: number | string;
  trigger: string;
  status: "running" | "succeeded" | "failed" | "interrupted";
  started_at: string | null;
  finished_at: string | null;
  days: string[];
  error: string | null;
  /** In the run list: tasks recorded and rows they wrote. */
  tasks?: number;
  rows_out?: number;
}

/** The progress of the run in progress. */
export interface RunProgress {
  run_id: number | string;
  total: number;
  done: number;
  failed: number;
  running: string[] | number;
}

/** `GET /v1/console/overview` and each `overview` event of `GET /v1/console/live`. */
export interface Overview {
  now: string;
  streams: {
    name: string;
    end: number | null;
    rate: number | null;
    dead_letters: number;
    consumers: {
      name: string;
      partition: number | string;
      position: number;
      lag: number | null;
      freshness_ms?: number | null;
    }[];
  }[];
  speed: {
    view: string;
    stream: string;
    newest_event_time: string | null;
    watermark: string | null;
    checkpoint_at: string | null;
    freshness_ms: number | null;
  }[];
  batch: { view: string; batch_until: string | null }[];
  runs: { latest: Run | null; running: RunProgress | null; not_fresh: number };
  errors: { time: string; level: "warn" | "error"; msg: string; code: string | null }[];
  storage: {
    dataset: string;
    layer: string;
    tier: string;
    files: number;
    rows: number;
    bytes: number;
  }[];
}

/** `POST /v1/query`. */
export interface QueryResult {
  columns: Column[];
  rows: Cell[][];
  snapshot?: number;
}

/** One dataset of `GET /v1/catalog`. */
export interface DatasetSummary {
  name: string;
  layer: string;
  kind: string;
  description: string | null;
  schema_version: number | null;
  columns: Column[];
  partition_columns: string[];
  files: number;
  rows: number;
  bytes: number;
  min_event_time: string | null;
  max_event_time: string | null;
}

/** `GET /v1/catalog`. */
export interface Catalog {
  snapshot: number;
  datasets: DatasetSummary[];
}

/** `GET /v1/console/datasets/<layer.name>`. */
export interface DatasetDetail {
  dataset: DatasetSummary;
  owner: string | null;
  tags: string[];
  schema_versions: { version: number; created_at: string | null; columns: Column[] }[];
  files: {
    path: string;
    partition: Record<string, Cell>;
    rows: number;
    bytes: number;
    min_time: string | null;
    max_time: string | null;
    added_in: number | null;
  }[];
  snapshots: {
    id: number;
    committed_at: string;
    summary: Cell;
    files_added: number;
    files_removed: number;
  }[];
}

/** `GET /v1/console/streams/<name>`. */
export interface StreamDetail {
  name: string;
  description: string | null;
  format: string;
  id_field: string | null;
  time_field: string | null;
  partition_key: string | null;
  fields: { name: string; type: string; required: boolean; description: string | null }[];
}

/** `POST /v1/streams/<name>/dead-letters/replay`. */
export interface ReplayResult {
  considered: number;
  stored: number;
  duplicate: number;
  already_landed: number;
  still_invalid: { id: string; reason: string }[];
}

/** One compiled model of `GET /v1/batch/plan`. */
export interface PlanModel {
  id: string;
  layer: string;
  name: string;
  materialized: string;
  description: string | null;
  owner: string | null;
  tags: string[];
  pii: string[];
  inputs: { table: string; kind: string; partitioned: boolean }[];
  dependents: string[];
  columns: Column[];
  tests: unknown[];
  hash: string;
}

/** `GET /v1/batch/plan`. */
export interface Plan {
  timezone: string;
  layers: string[];
  models: PlanModel[];
  seeds: { name: string; columns: Column[]; hash: string; description: string | null }[];
}

/** A partition's freshness. */
export type PartitionStatus = "fresh" | "stale" | "failed" | "missing";

/** `GET /v1/batch/partitions`. */
export interface Partitions {
  partitions: {
    model: string;
    day: string;
    status: PartitionStatus;
    reason: string | null;
    rows: number | null;
    built_at: string | null;
    run_id: number | string | null;
  }[];
  counts: Partial<Record<PartitionStatus, number>>;
}

/** `GET /v1/batch/runs`. */
export interface Runs {
  runs: Run[];
  running: RunProgress | null;
}

/** One task of a run. */
export interface RunTask {
  model: string;
  days: string[];
  status: string;
  attempts: number;
  started_at: string | null;
  ms: number | null;
  rows_in: number | null;
  rows_out: number | null;
  error: string | null;
}

/** `GET /v1/batch/runs/<id>`. */
export interface RunDetail {
  run: Run;
  tasks: RunTask[];
  tests?: {
    model: string;
    day: string;
    test: string;
    passed: boolean;
    failures: number;
    message: string | null;
  }[];
  running: RunProgress | null;
}

/** `POST /v1/batch/runs`: 202 with the new run, or 200 with nothing to build or a finished run. */
export interface StartRunAnswer {
  run: { id: number | string; status?: Run["status"]; error?: string | null } | null;
  progress?: RunProgress;
  tasks?: RunTask[];
  message?: string;
}

/** `GET /v1/views/<view>`. */
export interface ViewAnswer {
  view: string;
  grain: string;
  from: string;
  to: string;
  batch_until: string | null;
  columns: Column[];
  rows: Cell[][];
}

/** A chart kind a dashboard declares. */
export type ChartKind = "line" | "bar" | "area" | "table" | "number";

/** One chart of a dashboard. */
export interface DashboardChart {
  id: string;
  title: string;
  type: ChartKind;
  x: string | null;
  y: string[];
  series: string | null;
  refresh_ms: number | null;
  source: "view" | "sql";
}

/** One dashboard of `GET /v1/dashboards`. */
export interface Dashboard {
  name: string;
  title: string;
  description: string | null;
  range_ms: number;
  latest: string | null;
  filters: { name: string; label: string; values: string[] }[];
  charts: DashboardChart[];
}

/** `GET /v1/dashboards/<name>/charts/<id>`. */
export interface ChartData {
  columns: Column[];
  rows: Cell[][];
  batch_until: string | null;
  /** Why there are no rows (a table the batch layer has not built yet). */
  notice?: string;
}
