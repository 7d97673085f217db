// Names the concrete backends: the only module besides runtime/ that knows which exist.
import { join } from "node:path";
import type { Pipeline } from "../config/index.js";
import type { CatalogStore, JobQueue, ObjectStore, SpeedStore, Stream } from "./contracts/index.js";
import { LocalObjectStore } from "./local/object-store.js";
import { SqliteCatalog } from "./sqlite/catalog-store.js";
import { SqliteStream } from "./sqlite/stream-log.js";

/** The backends a process runs with. */
export interface Backends {
  readonly stream: Stream;
  readonly catalog: CatalogStore;
  readonly lake: ObjectStore;
}

/** Opens the embedded backends: SQLite stream log and catalog under `dataDir`, the lake as a folder. */
export function openEmbeddedBackends(dataDir: string, lakeDir: string): Backends {
  return {
    stream: new SqliteStream(join(dataDir, "stream.db")),
    catalog: new SqliteCatalog(join(dataDir, "catalog.db")),
    lake: new LocalObjectStore(lakeDir),
  };
}

/** Opens the embedded lake (a folder) for readers such as `tributary query`. */
export function openEmbeddedLake(lakeDir: string): ObjectStore {
  return new LocalObjectStore(lakeDir);
}

/** Opens the embedded catalog for writing, for CLI commands that commit (batch runs). */
export function openEmbeddedCatalog(dataDir: string): CatalogStore {
  return new SqliteCatalog(join(dataDir, "catalog.db"));
}

/** Opens the embedded catalog read-only, for the CLI beside a running server. */
export function openEmbeddedCatalogReadonly(dataDir: string): CatalogStore {
  return new SqliteCatalog(join(dataDir, "catalog.db"), { readonly: true });
}

/**
 * Opens the backends `pipeline.backends` names. Distributed clients are imported here, on
 * demand, so the embedded path loads none of them.
 */
export async function openBackends(pipeline: Pipeline): Promise<Backends> {
  const [stream, catalog, lake] = await Promise.allSettled([
    openStream(pipeline),
    openCatalog(pipeline),
    openLake(pipeline),
  ]);
  if (
    stream.status === "fulfilled" &&
    catalog.status === "fulfilled" &&
    lake.status === "fulfilled"
  )
    return { stream: stream.value, catalog: catalog.value, lake: lake.value };
  // One failed: close the others, so a retrying caller leaks no connection.
  if (stream.status === "fulfilled") await stream.value.close().catch(() => undefined);
  if (catalog.status === "fulfilled") await catalog.value.close().catch(() => undefined);
  throw [stream, catalog, lake].find((r) => r.status === "rejected")!.reason;
}

/** The stream backend of a pipeline. */
export async function openStream(pipeline: Pipeline): Promise<Stream> {
  const b = pipeline.backends.stream;
  if (b.kind === "embedded") return new SqliteStream(join(pipeline.dataDir, "stream.db"));
  const { NatsStream } = await import("./nats/stream.js");
  return NatsStream.open({
    servers: [...b.servers],
    prefix: b.prefix,
    replicas: b.replicas,
    partitions: b.partitions,
  });
}

/** The catalog of a pipeline (`readonly`: for the CLI beside a running server, SQLite only). */
export async function openCatalog(
  pipeline: Pipeline,
  options: { readonly?: boolean } = {},
): Promise<CatalogStore> {
  const b = pipeline.backends.catalog;
  if (b.kind === "sqlite")
    return new SqliteCatalog(join(pipeline.dataDir, "catalog.db"), {
      readonly: options.readonly ?? false,
    });
  const { PostgresCatalog } = await import("./postgres/catalog-store.js");
  return PostgresCatalog.open({ url: b.url, schema: b.schema });
}

/** The lake of a pipeline. */
export async function openLake(pipeline: Pipeline): Promise<ObjectStore> {
  const b = pipeline.backends.lake;
  if (b.kind === "local") return new LocalObjectStore(pipeline.lakeDir);
  const { S3ObjectStore } = await import("./s3/object-store.js");
  return S3ObjectStore.open({
    bucket: b.bucket,
    prefix: b.prefix,
    region: b.region,
    ...(b.endpoint === undefined ? {} : { endpoint: b.endpoint }),
    forcePathStyle: b.forcePathStyle,
    // A copy: the SDK annotates the credentials object (a frozen one breaks it).
    ...(b.credentials === undefined ? {} : { credentials: { ...b.credentials } }),
    cacheDir: b.cacheDir,
    ...(b.storageClass === undefined ? {} : { storageClass: b.storageClass }),
  });
}

/** The speed store of a pipeline; undefined when the speed layer checkpoints into the catalog. */
export async function openSpeedStore(pipeline: Pipeline): Promise<SpeedStore | undefined> {
  const b = pipeline.backends.speed;
  if (b.kind === "catalog") return undefined;
  if (b.kind === "redis") {
    const { RedisSpeedStore } = await import("./redis/speed-store.js");
    return RedisSpeedStore.open({ url: b.url, prefix: b.prefix });
  }
  const { PostgresSpeedStore } = await import("./postgres/speed-store.js");
  return PostgresSpeedStore.open({ url: b.url, schema: b.schema });
}

/**
 * The job queue processes of a pipeline share, or undefined when the pipeline is embedded (one
 * process runs everything; batch tasks run in-process). On the PostgreSQL catalog: a
 * PostgresJobQueue in the schema `<backends.catalog.schema>_jobs` of the catalog's database
 * (pg-boss owns its tables, so they stay apart from the catalog's), shared by every process on
 * that catalog. The catalog schema must then be at most 45 characters (pg-boss allows 50).
 */
export async function openJobQueue(pipeline: Pipeline): Promise<JobQueue | undefined> {
  const b = pipeline.backends.catalog;
  if (b.kind !== "postgres") return undefined;
  const { PostgresJobQueue } = await import("./postgres/job-queue.js");
  return PostgresJobQueue.open({ url: b.url, schema: `${b.schema}_jobs` });
}
