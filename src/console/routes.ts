// HTTP side of the web console: its pages and assets at `/`, and the endpoints only it needs.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { CatalogStore } from "../backends/contracts/index.js";
import type { KeyPlan, StreamPlan } from "../config/index.js";
import { TributaryError } from "../errors.js";
import { allows, bearerSecret, type KeyRing } from "../govern/index.js";
import { parseInstant } from "../serve/index.js";
import type { Dashboards } from "./dashboards.js";
import { SAMPLE_INTERVAL_MS, type OverviewSampler } from "./overview.js";

/** Most live (SSE) connections at once; more get 503 with Retry-After. */
const MAX_LIVE = 64;
/** Snapshots listed per dataset. */
const SNAPSHOTS = 200;

/** What the console routes need. */
export interface ConsoleDeps {
  readonly name: string;
  readonly roles: readonly string[];
  readonly keys: KeyRing;
  readonly catalog: CatalogStore;
  readonly streams: ReadonlyMap<string, StreamPlan>;
  readonly views: readonly string[];
  readonly sampler: OverviewSampler;
  readonly dashboards: Dashboards;
  /** Owner and tags of a dataset, where its declaration gives them. */
  readonly ownership: (dataset: string) => Promise<{ owner: string | null; tags: string[] }>;
  /** Folder of the built console (index.html, assets/); undefined: not built. */
  readonly assetsDir: string | undefined;
}

/** The built console next to this module: `dist/web` (compiled) or, from the sources, `../../dist/web`. */
export function findConsoleAssets(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  return [join(here, "..", "web"), join(here, "..", "..", "dist", "web")].find((d) =>
    existsSync(join(d, "index.html")),
  );
}

/**
 * Registers the console: `GET /` (the page, for browsers; JSON clients keep the endpoint index),
 * its hashed assets, and `/v1/console/*`, `/v1/dashboards*`. Every data endpoint needs a key with
 * a read scope (or admin); pages and assets hold no data and need none.
 */
export async function registerConsoleRoutes(
  app: FastifyInstance,
  deps: ConsoleDeps,
): Promise<{
  wantsPage: (req: FastifyRequest) => boolean;
  sendPage: (reply: FastifyReply) => FastifyReply;
}> {
  const reader = (req: FastifyRequest): KeyPlan => {
    const secret = bearerSecret(req.headers.authorization);
    if (secret === undefined) throw new TributaryError("TRB_AUTH_MISSING");
    const key = deps.keys.bySecret(secret);
    if (!key.scopes.some((s) => s === "admin" || s.startsWith("read:")))
      throw new TributaryError(
        "TRB_AUTH_FORBIDDEN",
        `key ${key.id} has no read scope; the console needs read:<layer>.<name>, read:* or admin`,
      );
    return key;
  };
  const canRead =
    (key: KeyPlan) =>
    (dataset: string): void =>
      deps.keys.authorize(key, { kind: "read", dataset });

  if (deps.assetsDir) {
    await app.register(fastifyStatic, {
      root: deps.assetsDir,
      prefix: "/",
      index: false,
      // Files are looked up per request, so a rebuilt console (new hashed names) is served
      // without a restart; a path with no file falls through to the JSON 404.
      wildcard: true,
      setHeaders: (res, path) => {
        // Asset names carry their content hash: cache them for good; the page itself never.
        res.setHeader(
          "cache-control",
          path.includes(`${"/"}assets${"/"}`) ? "public, max-age=31536000, immutable" : "no-cache",
        );
      },
    });
  }

  app.get("/v1/console/session", async (req) => {
    const key = reader(req);
    return {
      key: { id: key.id, scopes: key.scopes },
      can: { read: true, admin: allows(key, { kind: "admin" }) },
      pipeline: {
        name: deps.name,
        roles: deps.roles,
        streams: [...deps.streams.keys()],
        views: deps.views,
        dashboards: deps.dashboards.list(),
      },
    };
  });

  app.get("/v1/console/overview", async (req) => {
    const key = reader(req);
    return visible(key, await deps.sampler.overview());
  });

  const live = new Set<FastifyReply>();
  app.addHook("preClose", async () => {
    for (const reply of live) reply.raw.end();
    live.clear();
  });
  app.get("/v1/console/live", async (req, reply) => {
    const key = reader(req);
    if (live.size >= MAX_LIVE)
      throw new TributaryError(
        "TRB_HTTP_OVERLOADED",
        `${MAX_LIVE} live consoles are connected; retry later.`,
        { retryAfter: 5 },
      );
    reply.hijack();
    reply.raw.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    reply.raw.write(`retry: ${SAMPLE_INTERVAL_MS}\n\n`);
    live.add(reply);
    let busy = false;
    const send = async (): Promise<void> => {
      if (busy) return; // A slow overview must not queue up sends.
      busy = true;
      try {
        const overview = visible(key, await deps.sampler.overview());
        reply.raw.write(`event: overview\ndata: ${JSON.stringify(overview)}\n\n`);
      } catch (e) {
        const err =
          e instanceof TributaryError
            ? e
            : new TributaryError("TRB_INTERNAL", undefined, { cause: e });
        reply.raw.write(`event: error\ndata: ${JSON.stringify(err.toBody())}\n\n`);
      } finally {
        busy = false;
      }
    };
    const timer = setInterval(() => void send(), SAMPLE_INTERVAL_MS);
    req.raw.on("close", () => {
      clearInterval(timer);
      live.delete(reply);
    });
    await send();
  });

  app.get<{ Params: { stream: string } }>("/v1/console/streams/:stream", async (req) => {
    const key = reader(req);
    const plan = deps.streams.get(req.params.stream);
    if (!plan)
      throw new TributaryError(
        "TRB_COLLECT_STREAM_NOT_FOUND",
        `No stream \`${req.params.stream}\`.`,
      );
    canRead(key)(`raw.${plan.name}`);
    return {
      name: plan.name,
      description: plan.description ?? null,
      format: plan.format,
      id_field: plan.idField ?? null,
      time_field: plan.timeField ?? null,
      partition_key: plan.partitionKey ?? null,
      fields: plan.fields.map((f) => ({
        name: f.name,
        type: f.type,
        required: f.required,
        description: f.description ?? null,
      })),
    };
  });

  app.get<{ Params: { dataset: string } }>("/v1/console/datasets/:dataset", async (req) => {
    const key = reader(req);
    const name = req.params.dataset;
    const dot = name.indexOf(".");
    const ref = { layer: name.slice(0, dot), name: name.slice(dot + 1) };
    const summary =
      dot > 0 ? (await deps.sampler.storage()).find((d) => d.name === name) : undefined;
    if (!summary || !allows(key, { kind: "read", dataset: name }))
      throw new TributaryError("TRB_HTTP_NOT_FOUND", `No dataset ${name} (see GET /v1/catalog).`);
    const [files, versions, snapshots, ownership] = await Promise.all([
      deps.catalog.files(ref),
      deps.catalog.schemaVersions(ref),
      deps.catalog.snapshots(SNAPSHOTS * 5),
      deps.ownership(name),
    ]);
    return {
      dataset: summary,
      owner: ownership.owner,
      tags: ownership.tags,
      schema_versions: versions.map((v) => ({
        version: v.version,
        created_at: v.createdAt,
        columns: v.columns,
      })),
      files: files.map((f) => ({
        path: f.path,
        partition: f.partition,
        rows: f.rows,
        bytes: f.bytes,
        min_time: f.minTime === null ? null : new Date(f.minTime).toISOString(),
        max_time: f.maxTime === null ? null : new Date(f.maxTime).toISOString(),
        added_in: f.addedIn,
        schema_version: f.schemaVersion,
      })),
      snapshots: snapshots
        .filter((s) => s.dataset === name)
        .slice(0, SNAPSHOTS)
        .map((s) => ({
          id: s.id,
          committed_at: s.committedAt,
          summary: s.summary,
          files_added: s.filesAdded,
          files_removed: s.filesRemoved,
        })),
    };
  });

  app.get("/v1/dashboards", async (req) => {
    const key = reader(req);
    return { dashboards: await deps.dashboards.describe(canRead(key)) };
  });

  app.get<{ Params: { dashboard: string; chart: string }; Querystring: Record<string, string> }>(
    "/v1/dashboards/:dashboard/charts/:chart",
    async (req) => {
      const key = reader(req);
      const { from: fromText, to: toText, ...filters } = req.query;
      const to = parseInstant(toText, "to") ?? Date.now();
      const from = parseInstant(fromText, "from") ?? to - 86_400_000;
      if (from >= to) throw new TributaryError("TRB_HTTP_BAD_REQUEST", "from must be before to.");
      return deps.dashboards.chart(
        req.params.dashboard,
        req.params.chart,
        { from, to, filters: new Map(Object.entries(filters)) },
        canRead(key),
      );
    },
  );

  const page = deps.assetsDir;
  return {
    wantsPage: (req) => page !== undefined && (req.headers.accept ?? "").includes("text/html"),
    sendPage: (reply) => reply.header("cache-control", "no-cache").sendFile("index.html"),
  };
}

/** The overview without what the key may not read (datasets, and streams through their raw data). */
function visible(key: KeyPlan, o: Awaited<ReturnType<OverviewSampler["overview"]>>): unknown {
  const can = (dataset: string): boolean => allows(key, { kind: "read", dataset });
  return {
    ...o,
    streams: o.streams.filter((s) => can(`raw.${s.name}`)),
    speed: o.speed.filter((s) => can(`view.${s.view}`)),
    batch: o.batch.filter((s) => can(`view.${s.view}`)),
    storage: o.storage.filter((s) => can(s.dataset)),
  };
}
