// Resolves a validated config into frozen plan data (columns, durations in ms, hashed keys) for the stages.
import { createHash } from "node:crypto";
import { resolvePackageFile } from "./files.js";
import { isAbsolute, join } from "node:path";
import {
  parseDuration,
  parseSize,
  type DashboardConfig,
  type FieldType,
  type PipelineConfig,
  type ReplayConfig,
  type ViewConfig,
} from "./schema.js";

/** A typed column of a dataset. */
export interface Column {
  readonly name: string;
  readonly type: FieldType;
  readonly required: boolean;
  readonly description?: string;
}

/** A stream as the stages see it. */
export interface StreamPlan {
  readonly name: string;
  readonly format: "json" | "segment";
  readonly description?: string;
  /** Declared (or, for Segment, fixed) columns, in order. */
  readonly fields: readonly Column[];
  readonly idField: string | undefined;
  readonly timeField: string | undefined;
  readonly partitionKey: string | undefined;
  readonly dedupWindowMs: number;
  readonly dedupMaxIds: number;
  readonly retainMs: number;
}

/** A key as the stages see it: only the hash of its secret, unless SigV4 needs the secret. */
export interface KeyPlan {
  readonly id: string;
  readonly secretSha256: string;
  /** Kept only when the config gave the secret: AWS SigV4 verification needs it. */
  readonly secret: string | undefined;
  readonly scopes: readonly string[];
  readonly segmentStream: string | undefined;
}

/** The resolved pipeline: frozen data every stage reads. */
export interface Pipeline {
  readonly name: string;
  /** Absolute project folder. */
  readonly root: string;
  /** Absolute folder of the embedded stream log and catalog. */
  readonly dataDir: string;
  /** Absolute folder of the lake (with an S3 lake: the local staging area). */
  readonly lakeDir: string;
  /**
   * Folders DuckDB may read lake files from: the lake folder, and with an S3 lake the local
   * copies' folder (`backends.lake.cache_dir`).
   */
  readonly lakeReadDirs: readonly string[];
  readonly server: {
    readonly host: string;
    readonly port: number;
    readonly bodyLimit: number;
    readonly maxEventsPerRequest: number;
    readonly maxEventSize: number;
    readonly maxInflightBytes: number;
  };
  readonly streams: ReadonlyMap<string, StreamPlan>;
  readonly keys: readonly KeyPlan[];
  readonly lake: {
    readonly flushMaxBytes: number;
    readonly flushMaxAgeMs: number;
    readonly compression: string;
  };
  readonly serve: {
    readonly queryTimeoutMs: number;
    readonly maxRows: number;
    readonly memoryLimit: string;
    readonly maxConcurrentQueries: number;
  };
  readonly replay: readonly ReplayConfig[];
  readonly batch: BatchPlanConfig;
  /** Seeds by name (`seed.<name>`). */
  readonly seeds: ReadonlyMap<string, SeedPlan>;
  /** Lambda views as declared (validated); `src/views/` compiles each into a ViewNode. */
  readonly views: ReadonlyMap<string, ViewConfig>;
  /** Dashboards of the web console as declared (validated). */
  readonly dashboards: ReadonlyMap<string, DashboardConfig>;
  /** Which implementation of each backend the processes use (`backends:`). */
  readonly backends: BackendsPlan;
}

/** The backends of a pipeline, resolved (`backends/registry.ts` opens them). */
export interface BackendsPlan {
  /** `backends.partition_lease` in ms. */
  readonly partitionLeaseMs: number;
  readonly stream:
    | { readonly kind: "embedded" }
    | {
        readonly kind: "nats";
        readonly servers: readonly string[];
        readonly prefix: string;
        readonly replicas: number;
        readonly partitions: number;
      };
  readonly lake:
    | { readonly kind: "local" }
    | {
        readonly kind: "s3";
        readonly bucket: string;
        readonly prefix: string;
        readonly region: string;
        readonly endpoint: string | undefined;
        readonly forcePathStyle: boolean;
        readonly credentials:
          { readonly accessKeyId: string; readonly secretAccessKey: string } | undefined;
        /** Absolute folder of local copies. */
        readonly cacheDir: string;
        readonly storageClass: string | undefined;
      };
  readonly catalog:
    | { readonly kind: "sqlite" }
    | { readonly kind: "postgres"; readonly url: string; readonly schema: string };
  readonly speed:
    | { readonly kind: "catalog" }
    | { readonly kind: "redis"; readonly url: string; readonly prefix: string }
    | { readonly kind: "postgres"; readonly url: string; readonly schema: string };
}

/** Where `today` comes from for scheduled batch runs. */
export type BatchClock =
  { readonly kind: "wall" } | { readonly kind: "stream"; readonly stream: string };

/** The batch section, resolved. */
export interface BatchPlanConfig {
  /** Absolute folder of the models. */
  readonly modelsDir: string;
  readonly layers: readonly string[];
  readonly timezone: string;
  readonly clock: BatchClock;
  readonly schedule: string | undefined;
  readonly catchUpDays: number;
  readonly concurrency: number;
  readonly threads: number;
  /** DuckDB form, e.g. "1GB". */
  readonly memoryLimit: string;
  readonly retries: number;
  readonly retryBackoffMs: number;
}

/** A seed table: a static file loaded as `seed.<name>`. */
export interface SeedPlan {
  readonly name: string;
  /** Absolute path of the CSV or Parquet file. */
  readonly path: string;
  readonly description: string | undefined;
  readonly owner: string | undefined;
}

/** Fixed columns of `format: segment` streams (the rest of a call is kept in `_extra`). */
export const SEGMENT_FIELDS: readonly Column[] = Object.freeze([
  {
    name: "type",
    type: "string",
    required: true,
    description: "track, identify, page, screen, group or alias",
  },
  { name: "event", type: "string", required: false, description: "Event name of a track call" },
  { name: "name", type: "string", required: false, description: "Page or screen name" },
  { name: "user_id", type: "string", required: false, description: "Segment userId" },
  { name: "anonymous_id", type: "string", required: false, description: "Segment anonymousId" },
  { name: "properties", type: "json", required: false, description: "Event or page properties" },
  { name: "traits", type: "json", required: false, description: "User traits" },
  { name: "context", type: "json", required: false, description: "Segment context" },
] satisfies Column[]);

/** Resolves a validated config against its project folder. */
export function resolvePipeline(config: PipelineConfig, root: string): Pipeline {
  const abs = (p: string): string => (isAbsolute(p) ? p : join(root, p));
  const streams = new Map<string, StreamPlan>();
  for (const [name, s] of Object.entries(config.streams)) {
    const fields: Column[] =
      s.format === "segment"
        ? [...SEGMENT_FIELDS]
        : Object.entries(s.fields).map(([fname, f]) =>
            typeof f === "string"
              ? { name: fname, type: f, required: false }
              : { name: fname, type: f.type, required: f.required, description: f.description },
          );
    streams.set(
      name,
      Object.freeze({
        name,
        format: s.format,
        description: s.description,
        fields: Object.freeze(fields),
        idField: s.format === "segment" ? "messageId" : s.id_field,
        timeField: s.format === "segment" ? "timestamp" : s.time_field,
        partitionKey: s.partition_key,
        dedupWindowMs: parseDuration(s.dedup_window),
        dedupMaxIds: s.dedup_max_ids,
        retainMs: parseDuration(s.retain),
      }),
    );
  }
  const keys = config.keys.map((k) =>
    Object.freeze({
      id: k.id,
      secretSha256: k.secret_sha256 ?? sha256Hex(k.secret!),
      secret: k.secret,
      scopes: Object.freeze([...k.scopes]),
      segmentStream: k.segment_stream,
    }),
  );
  return Object.freeze({
    name: config.name,
    root,
    dataDir: abs(config.data_dir),
    lakeDir: abs(config.lake.location),
    lakeReadDirs: Object.freeze(
      config.backends.lake.kind === "s3"
        ? [abs(config.lake.location), abs(config.backends.lake.cache_dir)]
        : [abs(config.lake.location)],
    ),
    server: Object.freeze({
      host: config.server.host,
      port: config.server.port,
      bodyLimit: parseSize(config.server.body_limit),
      maxEventsPerRequest: config.server.max_events_per_request,
      maxEventSize: parseSize(config.server.max_event_size),
      maxInflightBytes: parseSize(config.server.max_inflight),
    }),
    streams,
    keys: Object.freeze(keys),
    lake: Object.freeze({
      flushMaxBytes: parseSize(config.lake.flush.max_bytes),
      flushMaxAgeMs: parseDuration(config.lake.flush.max_age),
      compression: config.lake.compression,
    }),
    serve: Object.freeze({
      queryTimeoutMs: parseDuration(config.serve.query_timeout),
      maxRows: config.serve.max_rows,
      memoryLimit: config.serve.memory_limit.replace("iB", "B"),
      maxConcurrentQueries: config.serve.max_concurrent_queries,
    }),
    replay: Object.freeze([...config.replay]),
    batch: Object.freeze({
      modelsDir: abs(config.batch.models),
      layers: Object.freeze([...config.batch.layers]),
      timezone: config.batch.timezone,
      clock: Object.freeze(
        config.batch.clock.startsWith("stream:")
          ? { kind: "stream" as const, stream: config.batch.clock.slice("stream:".length) }
          : { kind: "wall" as const },
      ),
      schedule: config.batch.schedule,
      catchUpDays: config.batch.catch_up,
      concurrency: config.batch.concurrency,
      threads: config.batch.threads,
      memoryLimit: config.batch.memory_limit.replace("iB", "B"),
      retries: config.batch.retries,
      retryBackoffMs: parseDuration(config.batch.retry_backoff),
    }),
    views: new Map(Object.entries(config.views).map(([name, v]) => [name, Object.freeze(v)])),
    dashboards: new Map(
      Object.entries(config.dashboards).map(([name, d]) => [name, Object.freeze(d)]),
    ),
    backends: resolveBackends(config, abs),
    seeds: new Map(
      Object.entries(config.seeds).map(([name, seed]) => [
        name,
        Object.freeze({
          name,
          path: resolvePackageFile(seed.path, root),
          description: seed.description,
          owner: seed.owner,
        }),
      ]),
    ),
  });
}

/** The `backends:` section as plans (the loader has checked required fields). */
function resolveBackends(config: PipelineConfig, abs: (p: string) => string): BackendsPlan {
  const { stream, lake, catalog, speed } = config.backends;
  return Object.freeze({
    partitionLeaseMs: parseDuration(config.backends.partition_lease),
    speed: Object.freeze(
      speed.kind === "redis"
        ? { kind: "redis" as const, url: speed.url!, prefix: speed.prefix }
        : speed.kind === "postgres"
          ? { kind: "postgres" as const, url: speed.url!, schema: speed.schema }
          : { kind: "catalog" as const },
    ),
    stream: Object.freeze(
      stream.kind === "nats"
        ? {
            kind: "nats" as const,
            servers: Object.freeze([...stream.servers]),
            prefix: stream.prefix,
            replicas: stream.replicas,
            partitions: stream.partitions,
          }
        : { kind: "embedded" as const },
    ),
    lake: Object.freeze(
      lake.kind === "s3"
        ? {
            kind: "s3" as const,
            bucket: lake.bucket!,
            prefix: lake.prefix,
            region: lake.region,
            endpoint: lake.endpoint,
            forcePathStyle: lake.force_path_style,
            credentials:
              lake.access_key_id === undefined
                ? undefined
                : Object.freeze({
                    accessKeyId: lake.access_key_id,
                    secretAccessKey: lake.secret_access_key!,
                  }),
            cacheDir: abs(lake.cache_dir),
            storageClass: lake.storage_class,
          }
        : { kind: "local" as const },
    ),
    catalog: Object.freeze(
      catalog.kind === "postgres"
        ? { kind: "postgres" as const, url: catalog.url!, schema: catalog.schema }
        : { kind: "sqlite" as const },
    ),
  });
}

/** SHA-256 hex of a secret: how keys are stored at rest. */
export function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
