// HTTP endpoints of the batch layer: partitions, runs (start and history), and the compiled plan.
import type { FastifyInstance, FastifyRequest } from "fastify";
import { TributaryError } from "../errors.js";
import { allows, bearerSecret, type KeyRing } from "../govern/index.js";
import { dayRange, parseDay } from "./days.js";
import type { BatchEngine, RunProgress, RunRequest, RunSummary } from "./engine.js";
import type { BatchPlan } from "./plan.js";

const BODY_LIMIT = 16 * 1024;

/** What the batch routes need. */
export interface BatchRouteDeps {
  readonly engine: BatchEngine;
  readonly keys: KeyRing;
}

/** Registers `/v1/batch/*`. Reading needs a key with a read scope; starting runs needs admin. */
export function registerBatchRoutes(app: FastifyInstance, deps: BatchRouteDeps): void {
  const { engine, keys } = deps;
  const reader = (req: FastifyRequest): ReturnType<KeyRing["bySecret"]> => {
    const secret = bearerSecret(req.headers.authorization);
    if (secret === undefined) throw new TributaryError("TRB_AUTH_MISSING");
    const key = keys.bySecret(secret);
    if (!key.scopes.some((s) => s === "admin" || s.startsWith("read:"))) {
      throw new TributaryError("TRB_AUTH_FORBIDDEN", `key ${key.id} has no read scope`);
    }
    return key;
  };

  app.get<{ Querystring: { model?: string; status?: string; from?: string; to?: string } }>(
    "/v1/batch/partitions",
    async (req) => {
      const key = reader(req);
      const q = req.query;
      const plan = await engine.plan();
      const checks = await engine.markStale(plan);
      const stored = new Map(
        (await engine.partitionStates()).map((s) => [`${s.model}@${s.day}`, s] as const),
      );
      const partitions = checks
        .filter((c) => allows(key, { kind: "read", dataset: c.model }))
        .filter((c) => q.model === undefined || c.model === q.model)
        .filter((c) => q.status === undefined || c.status === q.status)
        .filter((c) => q.from === undefined || c.day === "*" || c.day >= parseDay(q.from, "from"))
        .filter((c) => q.to === undefined || c.day === "*" || c.day <= parseDay(q.to, "to"))
        .map((c) => {
          const s = stored.get(`${c.model}@${c.day}`);
          return {
            model: c.model,
            day: c.day,
            status: c.status,
            reason: c.reason,
            rows: s?.rows ?? null,
            built_at: s?.builtAt ?? null,
            run_id: s?.runId ?? null,
          };
        });
      const counts: Record<string, number> = {};
      for (const p of partitions) counts[p.status] = (counts[p.status] ?? 0) + 1;
      return { partitions, counts };
    },
  );

  app.get<{ Querystring: { limit?: string } }>("/v1/batch/runs", async (req) => {
    reader(req);
    const limit = Math.min(Math.max(Number(req.query.limit ?? 20) || 20, 1), 500);
    return { runs: await engine.runs(limit), running: engine.progress ?? null };
  });

  app.get<{ Params: { id: string } }>("/v1/batch/runs/:id", async (req) => {
    reader(req);
    const id = Number(req.params.id);
    const detail = Number.isSafeInteger(id) ? await engine.runDetail(id) : undefined;
    if (!detail) throw new TributaryError("TRB_HTTP_NOT_FOUND", `No batch run ${req.params.id}.`);
    return { ...detail, running: engine.progress?.runId === id ? engine.progress : null };
  });

  app.get("/v1/batch/plan", async (req) => {
    reader(req);
    return planJson(await engine.plan());
  });

  app.post("/v1/batch/runs", { bodyLimit: BODY_LIMIT }, async (req, reply) => {
    const secret = bearerSecret(req.headers.authorization);
    if (secret === undefined) throw new TributaryError("TRB_AUTH_MISSING");
    keys.authorize(keys.bySecret(secret), { kind: "admin" });
    const body = jsonBody(req.body);
    const started = startRun(engine, body);
    // Answer once the run has an id (or failed to start: busy, bad date, compile error).
    const first = await Promise.race([started.firstProgress, started.done.then(() => undefined)]);
    if (body.wait === true) {
      const summary = await started.done;
      return reply.code(200).send(summary ?? { run: null, message: "nothing to build" });
    }
    if (!first) {
      const summary = await started.done;
      return reply.code(200).send(summary ?? { run: null, message: "nothing to build" });
    }
    void started.done.catch(() => undefined);
    return reply
      .code(202)
      .header("location", `/v1/batch/runs/${first.runId}`)
      .send({ run: { id: first.runId }, progress: first });
  });
}

/** The request body as a JSON object (bodies arrive as text); empty means `{}`. */
function jsonBody(raw: unknown): Record<string, unknown> {
  if (raw === undefined || raw === null || raw === "") return {};
  let value: unknown = raw;
  if (typeof raw === "string") {
    try {
      value = JSON.parse(raw);
    } catch (e) {
      throw new TributaryError(
        "TRB_HTTP_BAD_REQUEST",
        `The body is not valid JSON: ${(e as Error).message}`,
      );
    }
  }
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw new TributaryError(
      "TRB_HTTP_BAD_REQUEST",
      'Send a JSON object, e.g. `{}` or `{"date": "2001-01-15"}`.',
    );
  return value as Record<string, unknown>;
}

/** Starts the run a POST body asks for; see docs/reference/http-api.md. */
function startRun(
  engine: BatchEngine,
  body: Record<string, unknown>,
): { firstProgress: Promise<RunProgress>; done: Promise<RunSummary | undefined> } {
  let resolveFirst!: (p: RunProgress) => void;
  const firstProgress = new Promise<RunProgress>((r) => (resolveFirst = r));
  const onProgress = (p: RunProgress): void => {
    if (p.runId > 0) resolveFirst(p);
  };
  const models = body.models;
  if (
    models !== undefined &&
    !(Array.isArray(models) && models.every((m) => typeof m === "string"))
  )
    throw new TributaryError("TRB_HTTP_BAD_REQUEST", "`models` is a list of model ids.");
  const text = (k: string): string | undefined => {
    const v = body[k];
    if (v === undefined) return undefined;
    if (typeof v !== "string")
      throw new TributaryError("TRB_BATCH_BAD_DATE", `\`${k}\` is a day (YYYY-MM-DD).`);
    return v;
  };
  const mode = body.mode ?? "run";
  const date = text("date");
  const from = text("from");
  const to = text("to");
  let done: Promise<RunSummary | undefined>;
  if (mode === "repair") done = engine.repair(onProgress);
  else if (mode === "backfill") {
    if (from === undefined || to === undefined)
      throw new TributaryError("TRB_BATCH_BAD_DATE", "A backfill needs `from` and `to`.");
    const request: RunRequest = {
      trigger: "backfill",
      days: dayRange(from, to),
      onlyStale: body.force !== true,
      ...(models ? { models: models as string[] } : {}),
    };
    done = engine.run(request, onProgress);
  } else if (mode === "run") {
    done = (async () => {
      const day = date !== undefined ? parseDay(date) : await engine.yesterday();
      if (day === undefined)
        throw new TributaryError(
          "TRB_BATCH_BAD_DATE",
          "The batch clock has no data yet (no event landed in its stream); pass `date`.",
        );
      return engine.run(
        {
          trigger: "manual",
          days: [day],
          onlyStale: false,
          ...(models ? { models: models as string[] } : {}),
        },
        onProgress,
      );
    })();
  } else {
    throw new TributaryError("TRB_HTTP_BAD_REQUEST", "`mode` is run, backfill or repair.");
  }
  return { firstProgress, done };
}

/** The plan as JSON: models with inputs, columns and tests; seeds. */
export function planJson(plan: BatchPlan): unknown {
  return {
    timezone: plan.timezone,
    layers: plan.layers,
    models: plan.models.map((m) => ({
      id: m.id,
      layer: m.spec.layer,
      name: m.spec.name,
      materialized: m.spec.materialized,
      description: m.spec.description ?? null,
      owner: m.spec.owner ?? null,
      tags: m.spec.tags,
      pii: m.spec.pii,
      inputs: m.inputs.map((i) => ({ table: i.table, kind: i.kind, partitioned: i.partitioned })),
      dependents: m.dependents,
      columns: m.columns,
      tests: m.spec.tests,
      hash: m.hash,
    })),
    seeds: plan.seeds.map((s) => ({
      name: `seed.${s.name}`,
      columns: s.columns,
      hash: s.hash,
      description: s.description ?? null,
    })),
  };
}
