// The one typed schema of tributary.yaml; JSON Schema and docs/reference/config.md are generated from it.
import { z } from "zod";

const NAME = /^[a-z][a-z0-9_]{0,62}$/;
const DURATION = /^\d+(ms|s|m|h|d)$/;
const SIZE = /^\d+(B|KiB|MiB|GiB)$/;

/** A duration such as `500ms`, `10s`, `10m`, `1h`, `7d`. */
export const duration = z
  .string()
  .regex(DURATION, "a duration such as 500ms, 10s, 10m, 1h or 7d")
  .describe("A duration: a whole number followed by ms, s, m, h or d.");

/** A byte size such as `512KiB` or `8MiB`. */
export const byteSize = z
  .string()
  .regex(SIZE, "a size such as 512KiB, 8MiB or 1GiB")
  .describe("A byte size: a whole number followed by B, KiB, MiB or GiB.");

/** Column types an event field may declare. */
export const FIELD_TYPES = ["string", "integer", "number", "boolean", "timestamp", "json"] as const;
export type FieldType = (typeof FIELD_TYPES)[number];

const fieldSpec = z
  .strictObject({
    type: z
      .enum(FIELD_TYPES)
      .describe(
        "Column type. `integer` is a 64-bit integer, `number` a double, `timestamp` an ISO-8601 string or epoch milliseconds stored as a UTC TIMESTAMP, `json` any JSON value kept as text.",
      ),
    required: z
      .boolean()
      .default(false)
      .describe("When true, an event without this field goes to the dead-letter dataset."),
    description: z.string().optional().describe("What the field means, shown in the catalog."),
  })
  .describe("A declared field of a stream's events.");

const streamSpec = z
  .strictObject({
    format: z
      .enum(["json", "segment"])
      .default("json")
      .describe(
        "`json`: events are JSON objects with the declared `fields`. `segment`: events follow the Segment spec (track, identify, page...) and the columns are fixed.",
      ),
    description: z.string().optional().describe("What the stream carries, shown in the catalog."),
    fields: z
      .record(
        z.string().regex(NAME, "a lower_snake_case field name"),
        z.union([z.enum(FIELD_TYPES), fieldSpec]),
      )
      .default({})
      .describe(
        "Declared fields, name to type (or to `{type, required, description}`). They become typed columns; undeclared fields are kept in the `_extra` JSON column, never dropped.",
      ),
    id_field: z
      .string()
      .optional()
      .describe(
        "Field holding a unique event id used to deduplicate retries. Without it an id is generated (time-ordered UUIDv7); Segment's `messageId` is used for segment streams.",
      ),
    time_field: z
      .string()
      .optional()
      .describe(
        "Field holding the event time (a `timestamp` field). Without it, or when an event lacks it, the received time is the event time.",
      ),
    partition_key: z
      .string()
      .optional()
      .describe("Field whose value orders events within a partition of the distributed stream."),
    dedup_window: duration
      .default("10m")
      .describe("How long an event id is remembered to deduplicate retried requests."),
    dedup_max_ids: z
      .number()
      .int()
      .positive()
      .default(300_000)
      .describe(
        "Upper bound of remembered ids per stream. Ids are held as 64-bit fingerprints in typed arrays (32–96 B each: the default takes at most ~28 MiB, and no garbage-collected objects); past the bound the window shrinks to the newest ids.",
      ),
    retain: duration
      .default("1h")
      .describe(
        "How long the stream keeps events after every consumer has passed them (for replay).",
      ),
  })
  .describe("A stream of events: its schema, identity and retention.");

const keySpec = z
  .strictObject({
    id: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, "letters, digits, _ . -")
      .describe("Public key id. For Kinesis/Firehose clients it is the AWS access key id."),
    secret: z
      .string()
      .min(8)
      .optional()
      .describe(
        "The secret itself. Prefer `${ENV_VAR}` over a literal; only needed for keys used by AWS SigV4 clients, which must know the secret to verify signatures. It is hashed at load and only SigV4 keeps it in memory.",
      ),
    secret_sha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/, "64 lowercase hex characters")
      .optional()
      .describe(
        "SHA-256 (hex) of the secret, the form to keep in files (`tributary init` writes it). Enough for Bearer and Segment clients.",
      ),
    scopes: z
      .array(
        z
          .string()
          .regex(
            /^(admin|write:(\*|[a-z][a-z0-9_]*)|read:(\*|[a-z0-9_]+\.(\*|[a-z][a-z0-9_]*)))$/,
            "admin, write:<stream>, write:*, read:*, read:<layer>.* or read:<layer>.<name>",
          ),
      )
      .min(1)
      .describe(
        "What the key may do: `write:<stream>` (or `write:*`) to send events, `read:<layer>.<name>` (or `read:raw.*`, `read:*`) to query datasets, `admin` for everything.",
      ),
    segment_stream: z
      .string()
      .optional()
      .describe(
        "Stream that receives this key's Segment-compatible calls (/v1/batch, /v1/track...).",
      ),
  })
  .refine((k) => k.secret !== undefined || k.secret_sha256 !== undefined, {
    message: "a key needs `secret` or `secret_sha256`",
  })
  .describe("An API key: id, secret and scopes.");

const serverSpec = z
  .strictObject({
    host: z.string().default("0.0.0.0").describe("Address the HTTP server listens on."),
    port: z
      .number()
      .int()
      .min(0)
      .max(65535)
      .default(8080)
      .describe("HTTP port; `--port` or the PORT environment variable override it."),
    body_limit: byteSize
      .default("5MiB")
      .describe("Largest request body accepted by the native and Kinesis endpoints (413 beyond)."),
    max_events_per_request: z
      .number()
      .int()
      .positive()
      .default(10_000)
      .describe("Most events accepted in one request (413 beyond)."),
    max_event_size: byteSize
      .default("1MiB")
      .describe("Largest single event; larger ones are dead-lettered with the reason."),
    max_inflight: byteSize
      .default("64MiB")
      .describe(
        "Bytes of events accepted but not yet durable; past it requests get 503 with Retry-After instead of growing memory.",
      ),
  })
  .describe("The HTTP server.");

const lakeSpec = z
  .strictObject({
    location: z
      .string()
      .default("lake")
      .describe("Folder of the lake, relative to the project folder (Hive-partitioned Parquet)."),
    flush: z
      .strictObject({
        max_bytes: byteSize
          .default("16MiB")
          .describe(
            "Land buffered events once they reach this size (like Firehose's buffer size).",
          ),
        max_age: duration
          .default("10s")
          .describe(
            "Land buffered events once the oldest waited this long (like Firehose's buffer interval).",
          ),
      })
      .default({ max_bytes: "16MiB", max_age: "10s" })
      .describe("When the land stage writes buffered events to the lake."),
    compression: z
      .enum(["zstd", "snappy", "gzip", "uncompressed"])
      .default("zstd")
      .describe("Parquet compression codec."),
  })
  .describe("The data lake.");

const serveSpec = z
  .strictObject({
    query_timeout: duration.default("30s").describe("Time limit of one SQL query."),
    max_rows: z
      .number()
      .int()
      .positive()
      .default(100_000)
      .describe("Most rows one query may return (413 beyond: add LIMIT)."),
    memory_limit: byteSize.default("2GiB").describe("Memory the SQL engine may use."),
    max_concurrent_queries: z
      .number()
      .int()
      .positive()
      .default(4)
      .describe("Queries run at once; more wait in a queue of the same length, then get 429."),
  })
  .describe("The SQL endpoint.");

const replaySpec = z
  .strictObject({
    stream: z.string().describe("Stream the replayed rows are sent to."),
    key: z.string().describe("Id of the write key the replay sends with."),
    sql: z
      .string()
      .describe(
        "DuckDB SELECT producing the events, one column per field, in event-time order. `{{file:<package>/<path>}}` resolves a file inside an installed npm package; paths are relative to the project folder.",
      ),
    time_column: z.string().describe("Column of the SELECT that holds the event time."),
    speed: z
      .number()
      .positive()
      .default(3600)
      .describe("Replay speed: seconds of event time per second of wall time (3600 = an hour/s)."),
    batch_size: z.number().int().positive().default(1000).describe("Events per request at most."),
  })
  .describe("A replay of a table as a live stream, used by the demo and for load tests.");

const batchSpec = z
  .strictObject({
    models: z
      .string()
      .default("models")
      .describe(
        "Folder of the SQL models, relative to the project folder: `<models>/<layer>/<name>.sql`, each one SELECT, with optional properties in `<name>.yaml` beside it.",
      ),
    layers: z
      .array(z.string().regex(NAME, "a lower_snake_case layer name"))
      .min(1)
      .default(["t1", "t2", "mart"])
      .describe(
        "Model layers in dependency order (a model may read its own layer and earlier ones). `raw`, `dlq`, `seed`, `view` and `view_state` are reserved.",
      ),
    timezone: z
      .string()
      .default("UTC")
      .describe(
        "IANA time zone of the day partitions (`event_day()` in models and the default day `yesterday` use it).",
      ),
    clock: z
      .string()
      .default("wall")
      .describe(
        "What `today` is for scheduled runs: `wall` (the system clock) or `stream:<name>`, the day of the newest event time landed in `raw.<name>` (the replayed demo uses it, so marts follow the replay).",
      ),
    schedule: z
      .string()
      .optional()
      .describe(
        "Cron expression (5 fields, or 6 with seconds first) of scheduled runs inside `tributary up`; each run builds every day up to yesterday that is missing, stale or failed. Unset: no schedule (run with `tributary batch run` or `POST /v1/batch/runs`).",
      ),
    catch_up: z
      .number()
      .int()
      .positive()
      .default(31)
      .describe("Most days one scheduled run builds (the oldest missing days first)."),
    concurrency: z
      .number()
      .int()
      .positive()
      .default(2)
      .describe(
        "Model tasks run at once. They share the batch engine's `threads` and `memory_limit`; a backfill is cut into 2 × concurrency chunks of days so every core has work.",
      ),
    threads: z.number().int().positive().default(2).describe("DuckDB threads of the batch engine."),
    memory_limit: byteSize.default("1GiB").describe("Memory the batch engine's DuckDB may use."),
    retries: z
      .number()
      .int()
      .min(0)
      .default(2)
      .describe("Retries of a failed task, with exponential backoff from `retry_backoff`."),
    retry_backoff: duration.default("1s").describe("Wait before the first retry of a failed task."),
  })
  .describe("The batch layer: SQL models per day partition, scheduled runs, backfills.");

const seedSpec = z
  .strictObject({
    path: z
      .string()
      .describe(
        "CSV (with a header row), TSV or Parquet file, relative to the project folder; `{{file:<package>/<path>}}` resolves a file inside an installed npm package.",
      ),
    description: z.string().optional().describe("What the table holds, shown in the catalog."),
    owner: z.string().optional().describe("Who answers for the table."),
  })
  .describe("A small static reference table, loaded as `seed.<name>` when its file changes.");

const filterSpec = z
  .strictObject({
    field: z.string().describe("Field of the source the condition reads."),
    op: z
      .enum(["=", "!=", "<", "<=", ">", ">=", "in", "not_in", "is_null", "not_null"])
      .describe("Comparison. `in`/`not_in` take a list; `is_null`/`not_null` take no value."),
    value: z
      .union([
        z.string(),
        z.number(),
        z.boolean(),
        z.array(z.union([z.string(), z.number(), z.boolean()])),
      ])
      .optional()
      .describe("Value (or list of values for `in`/`not_in`) compared with the field."),
  })
  .describe(
    "A condition on a field. Filters are structured (not SQL) so both layers apply exactly the same one.",
  );

const viewSpec = z
  .strictObject({
    description: z
      .string()
      .optional()
      .describe("What the view shows, for the catalog and console."),
    stream: z
      .string()
      .describe(
        "Stream the view aggregates: the speed layer reads it live, the batch layer from `raw.<stream>`.",
      ),
    time_field: z
      .string()
      .optional()
      .describe(
        "Timestamp field that places an event in a time bucket (default: the stream's event time).",
      ),
    grain: z
      .enum(["minute", "hour", "day"])
      .default("minute")
      .describe(
        "Finest time bucket stored; queries roll up to coarser grains by merging states. A bucket must not straddle a day of `batch.timezone`: `day` needs a zone whose days start at UTC midnight, `hour` a whole-hour offset.",
      ),
    dimensions: z
      .array(z.string())
      .default([])
      .describe("Fields the view groups by (each becomes a filterable query parameter)."),
    measures: z
      .record(z.string().regex(NAME, "a lower_snake_case measure name"), z.string())
      .refine((m) => Object.keys(m).length > 0, "declare at least one measure")
      .describe(
        "Measures by name: `count`, `sum(f)`, `min(f)`, `max(f)`, `avg(f)`, `count_distinct(f)` (≤ 2 % error) or a quantile `p50(f)`, `p95(f)`, `p99(f)` (≤ 1 % rank error).",
      ),
    filters: z
      .array(filterSpec)
      .default([])
      .describe("Conditions an event must meet to count (all of them)."),
    allowed_lateness: duration
      .default("5m")
      .describe(
        "How far behind the newest event time an event may arrive and still be counted by the speed layer; later ones are counted as `late` and reach the view through the batch layer.",
      ),
  })
  .describe(
    "A lambda view: declared once, computed by the batch and the speed layer, served as one answer.",
  );

const chartSpec = z
  .strictObject({
    title: z.string().describe("Title shown above the chart."),
    type: z
      .enum(["line", "bar", "area", "table", "number"])
      .describe(
        "How the rows are drawn: `line`, `bar` or `area` (x column against each y column), `table`, or `number` (the first row's first y column, large).",
      ),
    view: z
      .string()
      .optional()
      .describe(
        "A lambda view to chart (give `view` or `sql`): its buckets in the dashboard's time range, merged batch + speed, with the batch/speed cut marked.",
      ),
    measures: z
      .array(z.string())
      .optional()
      .describe("With `view`: the measures to draw (default: every measure)."),
    by: z
      .string()
      .optional()
      .describe(
        "With `view`: a dimension to split into one series per value. Without it, dimension values are merged (the measures merge exactly).",
      ),
    grain: z
      .enum(["minute", "hour", "day"])
      .optional()
      .describe("With `view`: the time bucket (default: the view's grain)."),
    sql: z
      .string()
      .optional()
      .describe(
        "Read-only SQL (as `POST /v1/query`) whose rows are charted. `{{from}}` and `{{to}}` become the time range as TIMESTAMP literals and `{{filter:<name>}}` the condition of a dashboard filter (`TRUE` when none is chosen). A filter without a placeholder applies to the result rows when they have a column of its name.",
      ),
    x: z.string().optional().describe("With `sql`: the column on the x axis (default: the first)."),
    y: z
      .array(z.string())
      .optional()
      .describe("With `sql`: the columns drawn as series (default: every numeric column but x)."),
    series: z
      .string()
      .optional()
      .describe("With `sql`: a column whose values split the rows into one series each."),
    refresh: duration
      .optional()
      .describe("Re-query this often while the dashboard is open (live charts)."),
  })
  .refine((c) => (c.view === undefined) !== (c.sql === undefined), {
    message: "a chart takes either `view` or `sql`",
  })
  .describe("One chart of a dashboard: a view or a SQL query, drawn one way.");

const filterDashboardSpec = z
  .strictObject({
    label: z.string().optional().describe("Label of the filter's control (default: its name)."),
    column: z
      .string()
      .optional()
      .describe(
        "Column (or view dimension) the filter compares (default: the filter's name). View charts apply it when the view has that dimension.",
      ),
    values: z
      .string()
      .describe(
        "Read-only SQL whose first column lists the values to choose from, e.g. `SELECT DISTINCT origin FROM raw.flights ORDER BY 1`.",
      ),
  })
  .describe(
    "A dimension filter: a list of values; choosing one filters every chart it applies to.",
  );

const dashboardSpec = z
  .strictObject({
    title: z.string().optional().describe("Title (default: the dashboard's name)."),
    description: z.string().optional().describe("What the dashboard is for."),
    range: duration
      .default("24h")
      .describe(
        "Default time range, ending at the newest event time of the pipeline's data (the demo replays 2001).",
      ),
    filters: z
      .record(z.string().regex(NAME, "a lower_snake_case filter name"), filterDashboardSpec)
      .default({})
      .describe("Dimension filters by name."),
    charts: z
      .record(z.string().regex(NAME, "a lower_snake_case chart id"), chartSpec)
      .refine((c) => Object.keys(c).length > 0, "declare at least one chart")
      .describe("Charts by id, drawn in this order."),
  })
  .describe("A dashboard of the web console (`/#/dashboards/<name>`).");

const streamBackendSpec = z
  .strictObject({
    kind: z
      .enum(["embedded", "nats"])
      .default("embedded")
      .describe(
        "`embedded`: a log in `data_dir` (SQLite, fsync'd group commit; one process). `nats`: NATS JetStream, shared by every process.",
      ),
    servers: z
      .array(z.string())
      .default(["nats://127.0.0.1:4222"])
      .describe("NATS servers (`nats`)."),
    prefix: z
      .string()
      .regex(/^[a-z][a-z0-9-]{0,31}$/, "lower-case letters, digits and `-`, at most 32")
      .default("tributary")
      .describe("Prefix of the JetStream streams and subjects (`nats`): one per project."),
    replicas: z
      .int()
      .min(1)
      .max(5)
      .default(1)
      .describe(
        "JetStream replicas of each stream (`nats`). Use 3 in a cluster: the server acknowledges after the OS write, not after fsync.",
      ),
    partitions: z
      .int()
      .min(1)
      .max(64)
      .default(1)
      .describe("Subjects (partitions) per stream (`nats`)."),
  })
  .describe("Where streams live.");

const lakeBackendSpec = z
  .strictObject({
    kind: z
      .enum(["local", "s3"])
      .default("local")
      .describe("`local`: the folder `lake.location`. `s3`: an S3-compatible bucket."),
    bucket: z.string().optional().describe("Bucket (`s3`, required)."),
    prefix: z.string().default("").describe("Key prefix inside the bucket (`s3`)."),
    region: z.string().default("us-east-1").describe("Region (`s3`)."),
    endpoint: z
      .string()
      .optional()
      .describe("Endpoint of an S3-compatible store (MinIO, GCS interoperability); default AWS."),
    force_path_style: z
      .boolean()
      .default(false)
      .describe("Path-style addressing (`s3`; MinIO and most S3-compatible stores need it)."),
    access_key_id: z
      .string()
      .optional()
      .describe("Access key (`s3`; write `${AWS_ACCESS_KEY_ID}`). Default: the AWS SDK's chain."),
    secret_access_key: z
      .string()
      .optional()
      .describe("Secret key (`s3`; write `${AWS_SECRET_ACCESS_KEY}`)."),
    cache_dir: z
      .string()
      .default(".tributary/lake-cache")
      .describe(
        "Local copies of lake objects for DuckDB (`s3`), relative to the project folder. Objects never change once committed.",
      ),
    storage_class: z
      .string()
      .optional()
      .describe("Storage class of new objects (`s3`), e.g. STANDARD_IA; default the bucket's."),
  })
  .describe("Where lake files live.");

const catalogBackendSpec = z
  .strictObject({
    kind: z
      .enum(["sqlite", "postgres"])
      .default("sqlite")
      .describe("`sqlite`: a file in `data_dir`. `postgres`: PostgreSQL, shared by every process."),
    url: z
      .string()
      .optional()
      .describe("Connection URL (`postgres`, required; write `${DATABASE_URL}`)."),
    schema: z
      .string()
      .regex(/^[a-z][a-z0-9_]*$/, "lower_snake_case")
      .default("tributary")
      .describe("PostgreSQL schema holding the catalog's tables (`postgres`)."),
  })
  .describe("Where the catalog lives.");

const speedBackendSpec = z
  .strictObject({
    kind: z
      .enum(["catalog", "redis", "postgres"])
      .default("catalog")
      .describe(
        "Where the speed layer checkpoints its window states: `catalog` (one checkpoint per view in the catalog), or a speed store shared by processes, written with compare-and-set so a stale speed process cannot overwrite a newer checkpoint: `redis` or `postgres`.",
      ),
    url: z
      .string()
      .optional()
      .describe("Connection URL (`redis`: `redis://host:6379`; `postgres`: as the catalog's)."),
    prefix: z.string().default("tributary:").describe("Key prefix (`redis`)."),
    schema: z
      .string()
      .regex(/^[a-z][a-z0-9_]*$/, "lower_snake_case")
      .default("tributary")
      .describe("PostgreSQL schema (`postgres`)."),
  })
  .describe("Where the speed layer's states live.");

const backendsSpec = z
  .strictObject({
    stream: streamBackendSpec.default(streamBackendSpec.parse({})),
    speed: speedBackendSpec.default(speedBackendSpec.parse({})),
    lake: lakeBackendSpec.default(lakeBackendSpec.parse({})),
    catalog: catalogBackendSpec.default(catalogBackendSpec.parse({})),
    partition_lease: duration
      .default("15s")
      .describe(
        "Where processes share work (the PostgreSQL catalog's job queue), how long a land or speed process holds a stream partition without renewing it: after a crash, another process takes the partition over within about this long. Renewed every third of it.",
      ),
  })
  .describe(
    "Which implementation each backend uses. The default is embedded (one process, no server); the distributed ones let each role run in its own processes (`tributary run <role>`; docs/deploy.md). Secrets come from environment variables (`${NAME}`).",
  );

/** The whole of tributary.yaml. */
export const configSchema = z
  .strictObject({
    name: z.string().default("tributary").describe("Name of the pipeline."),
    data_dir: z
      .string()
      .default(".tributary")
      .describe("Folder of the embedded stream log and catalog, relative to the project folder."),
    server: serverSpec.default(serverSpec.parse({})),
    streams: z
      .record(z.string().regex(NAME, "a lower_snake_case stream name"), streamSpec)
      .describe("Streams of events, by name. Each becomes `raw.<name>` and `dlq.<name>`."),
    keys: z.array(keySpec).default([]).describe("API keys."),
    lake: lakeSpec.default(lakeSpec.parse({})),
    serve: serveSpec.default(serveSpec.parse({})),
    replay: z.array(replaySpec).default([]).describe("Replays started by `tributary up`."),
    batch: batchSpec.default(batchSpec.parse({})),
    seeds: z
      .record(z.string().regex(NAME, "a lower_snake_case seed name"), seedSpec)
      .default({})
      .describe("Reference tables by name; each becomes `seed.<name>`."),
    views: z
      .record(z.string().regex(NAME, "a lower_snake_case view name"), viewSpec)
      .default({})
      .describe("Lambda views by name; each is served at `GET /v1/views/<name>`."),
    dashboards: z
      .record(z.string().regex(NAME, "a lower_snake_case dashboard name"), dashboardSpec)
      .default({})
      .describe("Dashboards of the web console, by name."),
    backends: backendsSpec.default(backendsSpec.parse({})),
  })
  .describe("A Tributary pipeline (tributary.yaml).");

/** tributary.yaml as written, after defaults. */
export type PipelineConfig = z.output<typeof configSchema>;
export type StreamConfig = z.output<typeof streamSpec>;
export type KeyConfig = z.output<typeof keySpec>;
export type ReplayConfig = z.output<typeof replaySpec>;
export type FieldSpec = z.output<typeof fieldSpec>;
export type BatchConfig = z.output<typeof batchSpec>;
export type SeedConfig = z.output<typeof seedSpec>;
export type ViewConfig = z.output<typeof viewSpec>;
export type ViewFilterConfig = z.output<typeof filterSpec>;
export type DashboardConfig = z.output<typeof dashboardSpec>;
export type ChartConfig = z.output<typeof chartSpec>;
export type BackendsConfig = z.output<typeof backendsSpec>;

/** Milliseconds of a duration string. */
export function parseDuration(text: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(text);
  if (!m) throw new Error(`not a duration: ${text}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "ms"];
  return Number(m[1]) * unit;
}

/** Bytes of a size string. */
export function parseSize(text: string): number {
  const m = /^(\d+)(B|KiB|MiB|GiB)$/.exec(text);
  if (!m) throw new Error(`not a size: ${text}`);
  const unit = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 }[m[2] as "B"];
  return Number(m[1]) * unit;
}
