// Wires every stage into one process (`tributary up`): backends, collect, land, serve, replay.
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { pino, type Logger } from "pino";
import { openBackends, openJobQueue, openSpeedStore, type Backends } from "../backends/registry.js";
import {
  BatchEngine,
  BatchScheduler,
  acquireBatchLock,
  registerBatchRoutes,
} from "../batch/index.js";
import { describeCatalog } from "../catalog/index.js";
import {
  Collector,
  deadLetterStream,
  registerCollectRoutes,
  registerDeadLetterRoutes,
  registerKinesisRoutes,
  type DeadLetter,
} from "../collect/index.js";
import {
  Dashboards,
  OverviewSampler,
  RecentLog,
  findConsoleAssets,
  registerConsoleRoutes,
  type SpeedShardStatus,
} from "../console/index.js";
import type { Pipeline } from "../config/index.js";
import { TributaryError } from "../errors.js";
import { KeyRing, allows, bearerSecret } from "../govern/index.js";
import { quoteString } from "../lake/index.js";
import { LAND_CONSUMER, LandStage } from "../land/index.js";
import {
  QueryEngine,
  ViewStateCache,
  queryView,
  registerServeRoutes,
  type ViewSources,
  registerViewRoutes,
} from "../serve/index.js";
import { SpeedCheckpointReader, SpeedView } from "../speed/index.js";
import { compileViews, type MeasureFieldType, type ViewAggregator } from "../views/index.js";
import { viewBatchUntil } from "../batch/index.js";
import { createHttpServer } from "./http.js";
import { PartitionLeases } from "./partition-leases.js";
import { Replayer } from "./replay.js";

/** Longest a `POST /v1/flush` waits for landing before answering 504. */
const FLUSH_TIMEOUT_MS = 120_000;

/**
 * Where processes share the lake, an uncommitted file younger than this may be another process's
 * landing in progress, not an orphan (see `LanderOptions.orphanMinAgeMs`).
 */
const SHARED_ORPHAN_MIN_AGE_MS = 15 * 60_000;

/** How often a shared batch engine looks for runs whose coordinator died. */
const RECOVERY_INTERVAL_MS = 5 * 60_000;

/** Options of a running node. */
export interface NodeOptions {
  /** Port to listen on (0 = any free port); default: the pipeline's. */
  readonly port?: number;
  readonly host?: string;
  readonly log?: Logger;
  /** Start the pipeline's replays (default true). */
  readonly replay?: boolean;
  /** Override every replay's speed. */
  readonly speed?: number;
  /**
   * The roles this process runs (default: every role, as `tributary up`). `tributary run <role>`
   * runs one: see `ROLES`.
   */
  readonly roles?: readonly Role[];
  /**
   * Run the land stage (default true). `false` runs collect and serve only: the stream keeps
   * every event and `POST /v1/flush` answers TRB_LAND_NOT_RUNNING. The http_to_stream benchmark
   * uses it to measure collect alone. Shorthand for leaving `land` out of `roles`.
   */
  readonly land?: boolean;
  /** Run the batch layer (engine, routes, schedule) (default true); shorthand for `roles`. */
  readonly batch?: boolean;
}

/**
 * What a process can do. `collect`: the ingest endpoints (appends to the stream). `land`: stream
 * to Parquet files committed in the catalog. `speed`: the lambda views' speed layer
 * (checkpointed in the catalog or the speed store). `batch`: the batch engine and its endpoints;
 * on the PostgreSQL catalog it takes tasks of any process's run from the job queue. `scheduler`:
 * `batch.schedule`, coordinating each run (alone only where a job queue is shared; embedded it
 * needs `batch` in the same process). `serve`: SQL, views and the catalog. Where a job queue is
 * shared, land and speed processes lease the stream's partitions. Every process answers
 * /healthz, /readyz and /metrics.
 */
export const ROLES = ["collect", "land", "speed", "batch", "scheduler", "serve"] as const;
export type Role = (typeof ROLES)[number];

/** Throws TRB_CONFIG_INVALID for unknown roles or a set of roles one process cannot run. */
export function checkRoles(roles: readonly string[]): asserts roles is readonly Role[] {
  const unknown = roles.filter((r) => !(ROLES as readonly string[]).includes(r));
  if (unknown.length > 0 || roles.length === 0)
    throw new TributaryError(
      "TRB_CONFIG_INVALID",
      `${unknown.length > 0 ? `unknown role ${unknown.join(", ")}` : "no role given"}; roles are ${ROLES.join(", ")} (\`tributary up\` runs them all)`,
    );
}

/** A running Tributary process with every role. */
export interface RunningNode {
  readonly url: string;
  readonly app: FastifyInstance;
  readonly backends: Backends;
  readonly log: Logger;
  /** Resolves once everything acknowledged before the call is committed to the lake. */
  flush(): Promise<void>;
  /** Stops intake, lands what is buffered, closes everything. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts every stage of a pipeline in this process on the embedded backends.
 * @example const node = await startNode(loadPipeline("examples/flights"), { port: 0 });
 */
export async function startNode(
  pipeline: Pipeline,
  options: NodeOptions = {},
): Promise<RunningNode> {
  // The console's overview lists the latest warnings and errors of a process that owns its log.
  const recent = new RecentLog();
  const log =
    options.log ??
    pino(
      { level: process.env.LOG_LEVEL ?? "info" },
      pino.multistream([
        { level: "trace", stream: process.stdout },
        { level: "warn", stream: recent.stream },
      ]),
    );
  const roles = new Set<Role>(options.roles ?? ROLES);
  if (options.land === false) roles.delete("land");
  if (options.batch === false) {
    roles.delete("batch");
    roles.delete("scheduler");
  }
  checkRoles([...roles]);
  // A job queue is shared where the catalog is PostgreSQL (registry's openJobQueue).
  if (
    roles.has("scheduler") &&
    !roles.has("batch") &&
    pipeline.backends.catalog.kind !== "postgres"
  )
    throw new TributaryError(
      "TRB_CONFIG_INVALID",
      "the scheduler role runs batch.schedule on this process's batch engine unless a job queue is shared (backends.catalog: postgres): run it together with the batch role (`tributary run batch scheduler`)",
    );
  const backends = await openBackends(pipeline);
  // What start-up has opened, closed in reverse if a later step fails (a caller that retries,
  // e.g. while a JetStream cluster elects its leader, must not leak connections or timers).
  const undo: (() => unknown)[] = [() => backends.stream.close(), () => backends.catalog.close()];
  try {
    const speedStore =
      roles.has("speed") || roles.has("serve") ? await openSpeedStore(pipeline) : undefined;
    if (speedStore) undo.push(() => speedStore.close());
    // Distributed (a job queue every process shares): land and speed processes lease the stream's
    // partitions, batch workers share runs. Embedded: this process does all of it.
    const queue =
      roles.has("land") || roles.has("speed") || roles.has("batch") || roles.has("scheduler")
        ? await openJobQueue(pipeline)
        : undefined;
    if (queue) undo.push(() => queue.close());
    const shared = queue?.capabilities.shared === true ? queue : undefined;
    const partitions = backends.stream.capabilities.partitions;
    let ready = false;
    // Independent start-up work overlaps: the stream writer boots in its thread while DuckDB and
    // the HTTP server initialize (restart-to-ready is on the critical path of every deploy).
    const enginePromise = !roles.has("serve")
      ? Promise.resolve(undefined)
      : QueryEngine.create({
          catalog: backends.catalog,
          lake: backends.lake,
          lakeDir: pipeline.lakeDir,
          extraReadDirs: pipeline.lakeReadDirs.filter((d) => d !== pipeline.lakeDir),
          tempDir: join(pipeline.dataDir, "duckdb-tmp"),
          memoryLimit: pipeline.serve.memoryLimit,
          maxRows: pipeline.serve.maxRows,
          timeoutMs: pipeline.serve.queryTimeoutMs,
          maxConcurrent: pipeline.serve.maxConcurrentQueries,
        });
    // The batch engine (its own DuckDB) starts alongside. Embedded, the lock keeps a CLI backfill
    // off this project; shared, runs go through the job queue and the catalog (a scheduler alone
    // only coordinates: no worker).
    const batchRole = roles.has("batch") || roles.has("scheduler");
    const releaseBatch =
      !batchRole || shared
        ? undefined
        : acquireBatchLock(
            join(pipeline.dataDir, "batch.lock"),
            `tributary (${[...roles].join(", ")})`,
          );
    const batchPromise = !batchRole
      ? Promise.resolve(undefined)
      : BatchEngine.create({
          pipeline,
          catalog: backends.catalog,
          lake: backends.lake,
          log,
          ...(shared ? { queue: shared, ...(roles.has("batch") ? {} : { workers: 0 }) } : {}),
        }).then(async (engine) => {
          const interrupted = await engine.recoverInterruptedRuns();
          if (interrupted > 0)
            log.warn({ runs: interrupted }, "batch runs interrupted by the last stop");
          return engine;
        });
    const appPromise = createHttpServer({
      log,
      bodyLimit: pipeline.server.bodyLimit,
      isReady: () => ready,
    });
    if (releaseBatch) undo.push(releaseBatch);
    undo.push(
      async () => (await enginePromise)?.close(),
      async () => (await batchPromise)?.close(),
      async () => (await appPromise).close(),
    );
    await Promise.all(
      [...pipeline.streams.values()].flatMap((plan) => {
        const settings = {
          dedupWindowMs: plan.dedupWindowMs,
          dedupMaxIds: plan.dedupMaxIds,
          retainMs: plan.retainMs,
        };
        return [
          backends.stream.open({ name: plan.name, ...settings }),
          backends.stream.open({ name: deadLetterStream(plan.name), ...settings }),
        ];
      }),
    );
    const land = !roles.has("land")
      ? undefined
      : await LandStage.start(
          pipeline,
          backends,
          log,
          shared
            ? { consume: false, partitions: [], orphanMinAgeMs: SHARED_ORPHAN_MIN_AGE_MS }
            : { consume: false },
        );
    if (land) undo.push(() => land.stop());
    const landLeases =
      land && shared
        ? new PartitionLeases({
            queue: shared,
            role: "land",
            partitions,
            leaseMs: pipeline.backends.partitionLeaseMs,
            log,
            acquire: (k) => land.addPartition(k),
            release: (k) => land.removePartition(k),
          })
        : undefined;
    const speedViews = new Map<number, SpeedView[]>();
    const flushLake = async (): Promise<void> => {
      const localViews = [...speedViews.values()].flat();
      if (land && !shared) {
        await Promise.all([land.flush(), ...localViews.map((v) => v.catchUp())]);
        return;
      }
      if (!land && !roles.has("collect") && !roles.has("serve"))
        throw new TributaryError("TRB_LAND_NOT_RUNNING");
      // Other processes land (or share the partitions with this one): wait until the catalog holds
      // every position appended before the call (land's committed positions per partition, each
      // view's speed checkpoints). Land writes a file when its buffer fills or ages
      // (lake.flush.max_age), so this can take that long; this process's own share is urged.
      const ends = (stream: string): Promise<number[]> =>
        partitions === 1
          ? backends.stream.end(stream).then((end) => [end])
          : Promise.all(
              Array.from({ length: partitions }, (_, k) => backends.stream.end(stream, k)),
            );
      const targets = await Promise.all(
        [...pipeline.streams.values()].flatMap((plan) =>
          [plan.name, deadLetterStream(plan.name)].map(async (stream) => ({
            stream,
            ends: await ends(stream),
          })),
        ),
      );
      const viewTargets = await Promise.all(
        [...views.values()].map(async (node) => ({
          view: node.name,
          ends: await ends(node.stream),
        })),
      );
      await Promise.all([land?.flush(), ...localViews.map((v) => v.catchUp())]);
      for (;;) {
        const landed = await Promise.all(
          targets.flatMap((t) =>
            t.ends.map(
              async (end, k) =>
                Math.max(1, await backends.catalog.position(LAND_CONSUMER, t.stream, k)) >= end,
            ),
          ),
        );
        const applied = await Promise.all(
          viewTargets.flatMap((t) =>
            t.ends.map(
              // A view no speed process has checkpointed yet has nothing to wait for.
              async (end, k) => {
                const position = speedStore
                  ? (await speedStore.loadShard(t.view, String(k)))?.position
                  : (await backends.catalog.speedCheckpoint(t.view))?.position;
                return (position ?? end) >= end;
              },
            ),
          ),
        );
        if (landed.every(Boolean) && applied.every(Boolean)) return;
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const engine = await enginePromise;
    const keys = new KeyRing(pipeline.keys);
    const collector = new Collector(pipeline.streams, backends.stream, pipeline.server);
    const app = await appPromise;
    if (roles.has("collect")) {
      const deps = { collector, keys, ...pipeline.server };
      registerCollectRoutes(app, deps);
      registerKinesisRoutes(app, deps);
    }
    if (engine) registerServeRoutes(app, { engine, keys });

    // Lambda views: a speed layer per view (its stream, checkpointed in the catalog) and the route
    // that merges it with the batch layer's view_state partitions at the batch watermark. A serve
    // process without the speed role reads the speed layer's checkpoints from the catalog.
    const views = compileViews(pipeline);
    const batchUntil = (view: string): Promise<number> =>
      viewBatchUntil(backends.catalog, views.get(view)!, pipeline);
    // The speed layer: a SpeedView per view and held partition, checkpointed in the speed store
    // (a shard per partition) or, embedded, in the catalog.
    const startSpeed = async (partition: number): Promise<SpeedView[]> => {
      const started = [...views.values()].map(
        (node) =>
          new SpeedView({
            node,
            stream: backends.stream,
            catalog: backends.catalog,
            log,
            batchUntil: () => batchUntil(node.name),
            partition,
            ...(speedStore ? { store: { speed: speedStore, shard: String(partition) } } : {}),
          }),
      );
      await Promise.all(started.map((v) => v.prepare()));
      speedViews.set(partition, started);
      return started;
    };
    if (roles.has("speed") && !shared) for (let k = 0; k < partitions; k++) await startSpeed(k);
    const speedLeases =
      roles.has("speed") && shared
        ? new PartitionLeases({
            queue: shared,
            role: "speed",
            partitions,
            leaseMs: pipeline.backends.partitionLeaseMs,
            log,
            acquire: async (k) => {
              for (const v of await startSpeed(k)) v.run();
            },
            release: async (k) => {
              const stopping = speedViews.get(k) ?? [];
              speedViews.delete(k);
              await Promise.all(stopping.map((v) => v.stop()));
            },
          })
        : undefined;
    // This process serves the speed layer from memory when it holds all of it (embedded); else
    // from the checkpoints (every shard, merged).
    const speedInProcess = roles.has("speed") && !shared && partitions === 1;
    const readers = new Map(
      [...views.values()].map((node) => [
        node.name,
        new SpeedCheckpointReader(node, backends.catalog, 200, speedStore),
      ]),
    );
    const speedOf = (
      view: string,
    ): ViewAggregator | undefined | Promise<ViewAggregator | undefined> =>
      speedInProcess
        ? speedViews.get(0)!.find((v) => v.aggregator.node.name === view)?.aggregator
        : readers.get(view)!.aggregator();
    let viewSources: ((view: string) => ViewSources) | undefined;
    if (engine) {
      await engine.attachViews(
        [...views.values()].map((node) => ({
          node,
          fieldType: (field) =>
            pipeline.streams.get(node.stream)!.fields.find((f) => f.name === field)!
              .type as MeasureFieldType,
          speed: () => speedOf(node.name),
          batchUntil: () => batchUntil(node.name),
        })),
      );
      const viewCache = new ViewStateCache();
      viewSources = (view) => ({
        cache: viewCache,
        catalog: backends.catalog,
        lake: backends.lake,
        readRows: (sql) => engine.readRows(sql),
        speedBuckets: async () => (await speedOf(view))?.buckets() ?? [],
        batchUntil: () => batchUntil(view),
      });
      const sources = viewSources;
      registerViewRoutes(app, {
        views,
        keys,
        sources,
      });
    }

    // The batch layer: one engine per project (lock), its routes, and the schedule if declared.
    const batch = await batchPromise;
    if (batch) registerBatchRoutes(app, { engine: batch, keys });

    // Dead-letter replay: read from the lake (serve's engine), append through the collector.
    if (engine && roles.has("collect"))
      registerDeadLetterRoutes(app, {
        collector,
        keys,
        flush: () => flushLake(),
        pending: (stream, ids, limit) => pendingDeadLetters(engine, stream, ids, limit),
      });

    // The web console (serve role): pages at `/`, the overview sampler, dashboards.
    const speedStatus = async (view: string): Promise<SpeedShardStatus[]> => {
      if (speedInProcess) {
        const v = speedViews.get(0)?.find((x) => x.aggregator.node.name === view);
        if (!v) return [];
        const w = v.watermark;
        return [
          {
            partition: 0,
            position: v.position,
            maxTime: w === null ? null : w + views.get(view)!.allowedLatenessMs,
            savedAt: null,
          },
        ];
      }
      if (speedStore)
        return (await speedStore.load(view)).map((c) => ({
          partition: Number(c.shard),
          position: c.position,
          maxTime: c.maxTime,
          savedAt: c.savedAt,
        }));
      const cp = await backends.catalog.speedCheckpoint(view);
      return cp
        ? [{ partition: 0, position: cp.position, maxTime: cp.maxTime, savedAt: cp.savedAt }]
        : [];
    };
    const sampler = engine
      ? new OverviewSampler({
          catalog: backends.catalog,
          stream: backends.stream,
          partitions,
          streams: [...pipeline.streams.keys()].map((name) => ({
            name,
            deadLetters: deadLetterStream(name),
          })),
          views: [...views.values()].map((n) => ({
            name: n.name,
            stream: n.stream,
            allowedLatenessMs: n.allowedLatenessMs,
          })),
          landConsumer: LAND_CONSUMER,
          speedStatus,
          batchUntil,
          running: () => batch?.progress,
          recent,
          tier: pipeline.backends.lake.kind,
        })
      : undefined;
    let consolePage: Awaited<ReturnType<typeof registerConsoleRoutes>> | undefined;
    if (engine && sampler && viewSources) {
      const sourcesOf = viewSources;
      const dashboards = new Dashboards({
        dashboards: pipeline.dashboards,
        views,
        query: (sql, canRead) => engine.query(sql, canRead),
        readView: (view, q) => queryView(views.get(view)!, q, sourcesOf(view)),
        latest: async (names) => {
          const times = await Promise.all(names.map((v) => sampler.newestEventTime(v)));
          const known = times.filter((t): t is number => t !== undefined);
          if (known.length > 0) return Math.max(...known);
          const landed = (await sampler.storage())
            .filter((d) => d.layer === "raw" && d.max_event_time !== null)
            .map((d) => Date.parse(d.max_event_time!));
          return landed.length > 0 ? Math.max(...landed) : undefined;
        },
      });
      consolePage = await registerConsoleRoutes(app, {
        name: pipeline.name,
        roles: ROLES.filter((r) => roles.has(r)),
        keys,
        catalog: backends.catalog,
        streams: pipeline.streams,
        views: [...views.keys()],
        sampler,
        dashboards,
        ownership: async (dataset) => {
          const model = batch
            ? (await batch.plan()).models.find((m) => m.id === dataset)
            : undefined;
          if (model) return { owner: model.spec.owner ?? null, tags: [...model.spec.tags] };
          const seed = dataset.startsWith("seed.")
            ? pipeline.seeds.get(dataset.slice(5))
            : undefined;
          return { owner: seed?.owner ?? null, tags: [] };
        },
        assetsDir: findConsoleAssets(),
      });
    }

    const admin = (authorization: string | undefined): void => {
      const secret = bearerSecret(authorization);
      if (secret === undefined) throw new TributaryError("TRB_AUTH_MISSING");
      keys.authorize(keys.bySecret(secret), { kind: "admin" });
    };
    app.post("/v1/flush", async (req) => {
      admin(req.headers.authorization);
      const started = Date.now();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new TributaryError(
                "TRB_LAND_FLUSH_TIMEOUT",
                `Landing did not commit within ${FLUSH_TIMEOUT_MS / 1000} s; see the log.`,
              ),
            ),
          FLUSH_TIMEOUT_MS,
        );
      });
      await Promise.race([flushLake(), timeout]).finally(() => clearTimeout(timer));
      return {
        flushed: true,
        snapshot: await backends.catalog.latestSnapshot(),
        ms: Date.now() - started,
      };
    });
    if (roles.has("serve"))
      app.get("/v1/catalog", async (req) => {
        const secret = bearerSecret(req.headers.authorization);
        if (secret === undefined) throw new TributaryError("TRB_AUTH_MISSING");
        const key = keys.bySecret(secret);
        const summary = await describeCatalog(backends.catalog);
        return {
          ...summary,
          datasets: summary.datasets.filter((d) => allows(key, { kind: "read", dataset: d.name })),
        };
      });
    app.get("/", async (req, reply) => {
      if (consolePage?.wantsPage(req)) return consolePage.sendPage(reply);
      return endpointIndex();
    });
    const endpointIndex = (): unknown => ({
      name: pipeline.name,
      roles: ROLES.filter((r) => roles.has(r)),
      streams: [...pipeline.streams.keys()],
      endpoints: [
        ...(roles.has("collect") ? ["POST /v1/streams/{stream}/events"] : []),
        ...(roles.has("serve")
          ? ["POST /v1/query", "GET /v1/views/{view}", "GET /v1/catalog"]
          : []),
        ...(roles.has("land") ? ["POST /v1/flush"] : []),
        ...(roles.has("batch")
          ? [
              "GET /v1/batch/partitions",
              "GET /v1/batch/runs",
              "POST /v1/batch/runs",
              "GET /v1/batch/plan",
            ]
          : []),
        "GET /metrics",
      ],
      docs: "docs/reference/http-api.md",
    });

    const address = await app.listen({
      port: options.port ?? pipeline.server.port,
      host: options.host ?? pipeline.server.host,
    });
    const url = address.replace("0.0.0.0", "127.0.0.1").replace("[::]", "127.0.0.1");
    ready = true;
    sampler?.start();
    land?.run();
    landLeases?.start();
    for (const v of [...speedViews.values()].flat()) v.run();
    speedLeases?.start();
    let scheduler: BatchScheduler | undefined;
    let recovery: NodeJS.Timeout | undefined;
    if (batch) {
      if (shared && roles.has("batch")) batch.startWorkers();
      // Shared: a run whose coordinator died stays `running` until an engine finds it abandoned
      // (quiet, no live job); look every few minutes, not only at start-up.
      if (shared)
        recovery = setInterval(() => {
          batch.recoverInterruptedRuns().then(
            (n) => {
              if (n > 0) log.warn({ runs: n }, "batch runs abandoned by their coordinator");
            },
            (e: unknown) => log.warn({ err: e }, "could not check for abandoned batch runs"),
          );
        }, RECOVERY_INTERVAL_MS).unref();
      // Compile once now, so model errors show at start-up (the server still serves collect).
      batch.plan().then(
        (plan) =>
          log.info({ models: plan.models.length, seeds: plan.seeds.length }, "batch plan compiled"),
        (e: unknown) => log.error({ err: e }, "batch plan does not compile; fix the models"),
      );
      if (pipeline.batch.schedule !== undefined && roles.has("scheduler")) {
        scheduler = new BatchScheduler(
          batch,
          pipeline.batch.schedule,
          pipeline.batch.timezone,
          log,
        );
      }
    }

    const replayers: Replayer[] = [];
    if (options.replay !== false && roles.has("collect")) {
      for (const r of pipeline.replay) {
        const key = pipeline.keys.find((k) => k.id === r.key)!;
        const replayer = new Replayer({
          ...r,
          speed: options.speed ?? r.speed,
          url,
          secret: key.secret!,
          root: pipeline.root,
          log,
        });
        replayers.push(replayer);
        replayer.start();
      }
    }

    let stopping: Promise<void> | undefined;
    const stop = (): Promise<void> =>
      (stopping ??= (async () => {
        ready = false;
        sampler?.stop();
        for (const r of replayers) await r.stop();
        collector.stop();
        await app.close();
        await scheduler?.stop();
        clearInterval(recovery);
        await landLeases?.stop();
        await speedLeases?.stop();
        await Promise.all([...speedViews.values()].flat().map((v) => v.stop()));
        await batch?.close();
        releaseBatch?.();
        if (land) {
          await land
            .flush()
            .catch((e: unknown) =>
              log.error({ err: e }, "final flush failed; events stay in the stream"),
            );
          await land.stop();
        }
        engine?.close();
        await backends.stream.close();
        await backends.catalog.close();
        await speedStore?.close();
        await queue?.close();
      })());

    return { url, app, backends, log, flush: flushLake, stop };
  } catch (e) {
    for (const step of undo.reverse()) {
      try {
        await step();
      } catch {
        // Already failing: the start-up error is the one to report.
      }
    }
    throw e;
  }
}

/**
 * Landed dead letters of a stream whose id is not in `raw.<stream>` (not replayed yet), oldest
 * first: at most `limit`, limited to `ids` when given, and how many there are in all.
 */
async function pendingDeadLetters(
  engine: QueryEngine,
  stream: string,
  ids: readonly string[] | undefined,
  limit: number,
): Promise<{ letters: DeadLetter[]; total: number }> {
  const pick =
    ids === undefined ? "" : `AND d._event_id IN (${ids.map((id) => quoteString(id)).join(", ")})`;
  const from = `FROM dlq.${stream} d WHERE d._event_id NOT IN (SELECT _event_id FROM raw.${stream}) ${pick}`;
  const allow = (): void => undefined; // The route has authorized an admin key.
  const [rows, count] = await Promise.all([
    engine.query(
      `SELECT d._event_id, d._raw, epoch_ms(d._received_at) AS at ${from} QUALIFY row_number() OVER (PARTITION BY d._event_id ORDER BY d._received_at) = 1 ORDER BY d._received_at LIMIT ${limit}`,
      allow,
    ),
    engine.query(`SELECT count(DISTINCT d._event_id) ${from}`, allow),
  ]);
  return {
    letters: rows.rows.map((r) => ({
      id: String(r[0]),
      raw: String(r[1]),
      receivedAt: Number(r[2]),
    })),
    total: Number(count.rows[0]?.[0] ?? 0),
  };
}
