// HTTP endpoints of the batch layer: partitions, runs (start and history), and the compiled plan.
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { BatchRunInfo, BatchTaskInfo, TestResultInfo } from "../backends/contracts/index.js";
import { TributaryError } from "../errors.js";
import { allows, bearerSecret, type KeyRing } from "../govern/index.js";
import { dayRange, parseDay } from "./days.js";
import type { BatchEngine, RunProgress, RunRequest, RunSummary } from "./engine.js";
import type { BatchPlan } from "./plan.js";

const BODY_LIMIT = 16 * 1024;
const STATUSES = ["fresh", "stale", "failed", "missing"];
/** Keys a `POST /v1/batch/runs` body may have (a typo must not silently build everything). */
const RUN_KEYS = new Set(["mode", "date", "from", "to", "models", "force", "wait"]);

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
      if (q.from !== undefined) parseDay(q.from, "from");
      if (q.to !== undefined) parseDay(q.to, "to");
      if (q.status !== undefined && !STATUSES.includes(q.status))
        throw new TributaryError(
          "TRB_HTTP_BAD_REQUEST",
          `status is one of ${STATUSES.join(", ")}, not \`${q.status}\`.`,
        );
      const plan = await engine.plan();
      if (q.model !== undefined && !plan.models.some((m) => m.id === q.model))
        throw new TributaryError("TRB_BATCH_UNKNOWN_MODEL", `No model ${q.model}.`);
      const checks = await engine.markStale(plan);
      const stored = new Map(
        (await engine.partitionStates()).map((s) => [`${s.model}@${s.day}`, s] as const),
      );
      const partitions = checks
        .filter((c) => allows(key, { kind: "read", dataset: c.model }))
        .filter((c) => q.model === undefined || c.model === q.model)
        .filter((c) => q.status === undefined || c.status === q.status)
        .filter((c) => q.from === undefined || c.day === "*" || c.day >= q.from)
        .filter((c) => q.to === undefined || c.day === "*" || c.day <= q.to)
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
    const progress = engine.progress;
    // Each run with its task count and rows written (one read per run: the list is bounded).
    const runs = await Promise.all(
      (await engine.runs(limit)).map(async (r) => {
        const tasks = await engine.runTasks(r.id);
        return {
          ...runJson(r),
          tasks: tasks.length,
          rows_out: tasks.reduce((n, t) => n + (t.rowsOut ?? 0), 0),
        };
      }),
    );
    return {
      runs,
      running: progress && progress.runId > 0 ? progressJson(progress) : null,
    };
  });

  app.get<{ Params: { id: string } }>("/v1/batch/runs/:id", async (req) => {
    reader(req);
    const id = Number(req.params.id);
    const detail = Number.isSafeInteger(id) ? await engine.runDetail(id) : undefined;
    if (!detail) throw new TributaryError("TRB_HTTP_NOT_FOUND", `No batch run ${req.params.id}.`);
    const progress = engine.progress;
    return {
      run: runJson(detail.run),
      tasks: detail.tasks.map(taskJson),
      tests: detail.tests.map(testJson),
      running: progress?.runId === id ? progressJson(progress) : null,
    };
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
    const unknown = Object.keys(body).filter((k) => !RUN_KEYS.has(k));
    if (unknown.length > 0)
      throw new TributaryError(
        "TRB_HTTP_BAD_REQUEST",
        `Unknown field${unknown.length > 1 ? "s" : ""} ${unknown.map((k) => `\`${k}\``).join(", ")}; a run takes ${[...RUN_KEYS].join(", ")}.`,
      );
    const started = startRun(engine, body);
    // Answer once the run has an id (or failed to start: busy, bad date, compile error).
    const first = await Promise.race([started.firstProgress, started.done.then(() => undefined)]);
    if (body.wait === true || !first) {
      const summary = await started.done;
      return reply.code(200).send(summaryJson(summary));
    }
    void started.done.catch(() => undefined);
    return reply
      .code(202)
      .header("location", `/v1/batch/runs/${first.runId}`)
      .send({ run: { id: first.runId }, progress: progressJson(first) });
  });
}

/** A finished run as the API shows it; `run: null` when there was nothing to build. */
export function summaryJson(summary: RunSummary | undefined): unknown {
  if (!summary)
    return { run: null, tasks: [], message: "nothing to build: every partition is fresh" };
  return { run: runJson(summary.run), tasks: summary.tasks.map(taskJson) };
}

/** A run in the API's snake_case (as GET /v1/catalog). */
export function runJson(r: BatchRunInfo): Record<string, unknown> {
  return {
    id: r.id,
    trigger: r.trigger,
    status: r.status,
    started_at: r.startedAt,
    finished_at: r.finishedAt,
    days: r.days,
    error: r.error,
  };
}

/** A task of a run in the API's snake_case. */
export function taskJson(t: BatchTaskInfo): Record<string, unknown> {
  return {
    model: t.model,
    days: t.days,
    status: t.status,
    attempts: t.attempts,
    started_at: t.startedAt,
    ms: t.ms,
    rows_in: t.rowsIn,
    rows_out: t.rowsOut,
    error: t.error,
  };
}

function testJson(t: TestResultInfo): Record<string, unknown> {
  return {
    model: t.model,
    day: t.day,
    test: t.test,
    passed: t.passed,
    failures: t.failures,
    message: t.message,
  };
}

function progressJson(p: RunProgress): Record<string, unknown> {
  return { run_id: p.runId, total: p.total, done: p.done, failed: p.failed, running: p.running };
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
