// Tests of the batch queue mode on the in-process JobQueue: a coordinator and two worker engines
// build what the embedded engine builds, failures block dependents, retries and dead workers are
// handled through the queue, and recovery leaves runs with live jobs to their coordinator.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, test } from "node:test";
import { pino } from "pino";
import type {
  BatchTaskInfo,
  CatalogStore,
  JobQueue,
  ObjectStore,
} from "../backends/contracts/index.js";
import { LocalJobQueue } from "../backends/local/job-queue.js";
import { LocalObjectStore } from "../backends/local/object-store.js";
import { SqliteCatalog } from "../backends/sqlite/catalog-store.js";
import { loadPipeline, type Pipeline } from "../config/index.js";
import { BatchEngine, type RunProgress, type RunRequest } from "./engine.js";
import {
  BAD_DAY,
  DAYS,
  MODELS,
  datasetRows,
  landRaw,
  recording,
  writeProject,
} from "./queue.test-util.js";

const log = pino({ level: "silent" });
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const EVERYTHING: RunRequest = { trigger: "manual", days: [...DAYS], onlyStale: false };

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "trb-queue-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Closes an engine once, however many cleanups ask. */
function closer(engine: BatchEngine): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () => (closing ??= engine.close());
}

interface Distributed {
  readonly pipeline: Pipeline;
  readonly catalog: CatalogStore;
  readonly lake: ObjectStore;
  readonly queue: JobQueue;
  /** Queue mode with `workers: 0`: plans, enqueues and records, runs no task. */
  readonly coordinator: BatchEngine;
  /** Two worker engines (not started), each with its own record of the tasks it recorded. */
  readonly workers: readonly { engine: BatchEngine; recorded: BatchTaskInfo[] }[];
  /** Another engine on the same project and queue (closed with the others). */
  engine(options?: { leaseMs?: number }): Promise<BatchEngine>;
}

/**
 * A project whose coordinator and two worker engines share one LocalJobQueue, the catalog and the
 * lake, as processes share PostgreSQL and S3. Every engine is created before anything runs: they
 * share the project folder, and creating an engine empties its staging folder.
 */
async function distributed(
  batch: Record<string, unknown> = {},
  workerLake?: (real: ObjectStore) => ObjectStore,
): Promise<Distributed> {
  const dir = tempDir();
  writeProject(dir, batch);
  const pipeline = loadPipeline(dir);
  const catalog = new SqliteCatalog(join(pipeline.dataDir, "catalog.db"));
  const lake = new LocalObjectStore(pipeline.lakeDir);
  const queue = new LocalJobQueue();
  const engines: BatchEngine[] = [];
  const engine = async (
    options: {
      leaseMs?: number;
      workers?: number;
      catalog?: CatalogStore;
      lake?: ObjectStore;
    } = {},
  ): Promise<BatchEngine> => {
    const e = await BatchEngine.create({
      pipeline,
      catalog: options.catalog ?? catalog,
      lake: options.lake ?? lake,
      log,
      queue,
      workers: options.workers ?? 0,
      ...(options.leaseMs === undefined ? {} : { leaseMs: options.leaseMs }),
    });
    engines.push(e);
    return e;
  };
  cleanups.push(async () => {
    await catalog.close();
  });
  cleanups.push(() => queue.close());
  cleanups.push(async () => {
    for (const e of engines) await closer(e)();
  });
  const coordinator = await engine({ workers: 0 });
  const workers = [];
  for (let i = 0; i < 2; i++) {
    const recorded: BatchTaskInfo[] = [];
    const e = await engine({
      workers: pipeline.batch.concurrency,
      catalog: recording(catalog, recorded),
      ...(workerLake ? { lake: workerLake(lake) } : {}),
    });
    workers.push({ engine: e, recorded });
  }
  await landRaw(pipeline, catalog);
  return {
    pipeline,
    catalog,
    lake,
    queue,
    coordinator,
    workers,
    engine: (o) => engine(o),
  };
}

/** The same project run by one embedded engine. */
async function embeddedRun(request: RunRequest) {
  const dir = tempDir();
  writeProject(dir);
  const pipeline = loadPipeline(dir);
  const catalog = new SqliteCatalog(join(pipeline.dataDir, "catalog.db"));
  const lake = new LocalObjectStore(pipeline.lakeDir);
  const engine = await BatchEngine.create({ pipeline, catalog, lake, log });
  cleanups.push(async () => {
    await engine.close();
    await catalog.close();
  });
  await landRaw(pipeline, catalog);
  const summary = await engine.run(request);
  assert.ok(summary, "the embedded run built something");
  return { catalog, lake, summary };
}

/** A task's outcome, without its timing. */
function outcome(t: BatchTaskInfo) {
  return {
    model: t.model,
    days: t.days,
    status: t.status,
    attempts: t.attempts,
    rowsIn: t.rowsIn,
    rowsOut: t.rowsOut,
    error: t.error,
  };
}

function sorted<T>(items: readonly T[]): T[] {
  return [...items].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

async function states(catalog: CatalogStore) {
  return (await catalog.partitions()).map((s) => ({
    model: s.model,
    day: s.day,
    status: s.status,
    rows: s.rows,
    reason: s.reason,
  }));
}

/** Polls `check` every 20 ms until it holds (the test runner's timeout bounds the wait). */
async function until(check: () => Promise<boolean> | boolean): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 20));
}

describe("BatchEngine queue mode", () => {
  test("a coordinator and two worker engines build what an embedded run builds; a failed test blocks its dependents", async () => {
    const embedded = await embeddedRun(EVERYTHING);
    const d = await distributed();
    for (const w of d.workers) w.engine.startWorkers();
    const progress: RunProgress[] = [];
    const running = d.coordinator.run(EVERYTHING, (p) => progress.push(p));
    await assert.rejects(
      d.coordinator.run(EVERYTHING),
      (e: Error & { code?: string }) => e.code === "TRB_BATCH_BUSY",
    );
    const summary = await running;
    assert.ok(summary);
    assert.equal(summary.run.status, "failed");
    assert.equal(summary.run.status, embedded.summary.run.status);
    assert.deepEqual(
      sorted(summary.tasks.map(outcome)),
      sorted(embedded.summary.tasks.map(outcome)),
      "the same tasks with the same outcomes",
    );
    assert.deepEqual(await states(d.catalog), await states(embedded.catalog));
    for (const ref of MODELS) {
      assert.deepEqual(
        await datasetRows(d.catalog, d.lake, ref),
        await datasetRows(embedded.catalog, embedded.lake, ref),
        `${ref.layer}.${ref.name} holds the same rows`,
      );
    }
    // What the comparison compares is there: every day built, the bad day failed and blocked.
    assert.equal(
      (await datasetRows(d.catalog, d.lake, { layer: "t2", name: "doubled" })).length,
      4,
    );
    const failed = summary.tasks.find((t) => t.model === "t1.checked" && t.days.includes(BAD_DAY));
    assert.equal(failed?.status, "failed");
    assert.match(failed?.error ?? "", /not_null\(n\)/);
    const blocked = summary.tasks.find(
      (t) => t.model === "mart.checked_sum" && t.days.includes(BAD_DAY),
    );
    assert.equal(blocked?.status, "blocked");
    assert.match(blocked?.error ?? "", /^blocked: t1\.checked .* failed: /);
    assert.ok(
      summary.tasks.some((t) => t.model === "mart.checked_sum" && t.status === "succeeded"),
      "the other days of the dependent are built",
    );
    // Every task that ran was run once, by one of the workers, and both workers had some.
    const ran = d.workers.flatMap((w) => w.recorded);
    assert.equal(ran.length, summary.tasks.filter((t) => t.status !== "blocked").length);
    assert.ok(
      d.workers.every((w) => w.recorded.length > 0),
      `tasks per worker: ${d.workers.map((w) => w.recorded.length).join(", ")}`,
    );
    const last = progress[progress.length - 1];
    assert.equal(last?.done, summary.tasks.length);
    assert.equal(last?.failed, summary.tasks.filter((t) => t.status !== "succeeded").length);
    assert.equal(d.coordinator.progress, undefined, "the run is over");
  });

  test("a task failing once on a worker is retried through the queue and succeeds on attempt 2", async () => {
    let puts = 0;
    const flaky = (real: ObjectStore): ObjectStore => ({
      capabilities: real.capabilities,
      putFile: async (key, path) => {
        if (key.startsWith("t1/daily/") && puts++ === 0)
          throw new Error("EIO: simulated write failure");
        return real.putFile(key, path);
      },
      list: (prefix) => real.list(prefix),
      delete: (key) => real.delete(key),
      localPath: (key) => real.localPath(key),
    });
    const d = await distributed({ retries: 2 }, flaky);
    for (const w of d.workers) w.engine.startWorkers();
    const summary = await d.coordinator.run({ ...EVERYTHING, models: ["t1.daily"] });
    assert.equal(summary?.run.status, "succeeded");
    const retried = summary?.tasks.filter((t) => t.attempts !== 1) ?? [];
    assert.equal(retried.length, 1, "one task needed a second attempt");
    assert.equal(retried[0]!.model, "t1.daily");
    assert.equal(retried[0]!.attempts, 2);
    assert.equal(retried[0]!.status, "succeeded");
    assert.equal(puts, DAYS.length + 1, "one file per day, and the failed put once more");
    assert.equal(
      (await datasetRows(d.catalog, d.lake, { layer: "t2", name: "doubled" })).length,
      4,
    );
  });

  test("a job whose last attempt's worker died is recorded failed by the coordinator and blocks its dependents", async () => {
    const d = await distributed({ retries: 0 });
    const running = d.coordinator.run({ ...EVERYTHING, models: ["t1.daily"] });
    // A worker takes a task and dies with it: its lease ends with no complete or fail.
    const [lease] = await d.queue.take("batch", { max: 1, leaseMs: 20, waitMs: 30_000 });
    assert.ok(lease);
    const payload = lease.payload as { model: string; days: string[] };
    assert.equal(payload.model, "t1.daily");
    for (const w of d.workers) w.engine.startWorkers();
    const summary = await running;
    assert.equal(summary?.run.status, "failed");
    const dead = summary?.tasks.find((t) => t.model === "t1.daily" && t.status === "failed");
    assert.deepEqual(dead?.days, payload.days);
    assert.equal(dead?.error, "lease expired");
    assert.equal(dead?.attempts, 1);
    const dependent = summary?.tasks.find(
      (t) => t.model === "t2.doubled" && t.days.join() === payload.days.join(),
    );
    assert.equal(dependent?.status, "blocked");
    assert.match(dependent?.error ?? "", /lease expired/);
    const partitions = await d.catalog.partitions();
    for (const day of payload.days) {
      const daily = partitions.find((s) => s.model === "t1.daily" && s.day === day);
      assert.equal(daily?.status, "failed");
      assert.equal(daily?.reason, "lease expired");
      assert.equal(
        partitions.find((s) => s.model === "t2.doubled" && s.day === day)?.status,
        "stale",
      );
    }
    assert.equal(
      summary?.tasks.filter((t) => t.status === "succeeded").length,
      (summary?.tasks.length ?? 0) - 2,
      "every other task succeeded",
    );
  });

  test("recovery marks abandoned runs interrupted and leaves runs with live jobs to their coordinator", async () => {
    const d = await distributed();
    // No worker yet: the run's first tasks wait in the queue.
    const running = d.coordinator.run({ ...EVERYTHING, models: ["t1.daily"] });
    let live = 0;
    await until(async () => {
      live = d.coordinator.progress?.runId ?? 0;
      return live > 0 && (await d.queue.status("batch", [`${live}/t1.daily#0`])).size > 0;
    });
    // A coordinator that died right after starting its run: nothing of it is in the queue.
    const orphan = await d.catalog.startRun({ trigger: "manual", days: ["2001-01-01"] });
    const patient = await d.engine();
    assert.equal(
      await patient.recoverInterruptedRuns(),
      0,
      "a run started less than two leases ago may still be enqueueing",
    );
    const quick = await d.engine({ leaseMs: 10 });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(await quick.recoverInterruptedRuns(), 1);
    assert.equal((await d.catalog.run(orphan))?.status, "interrupted");
    assert.equal((await d.catalog.run(live))?.status, "running", "its jobs are live");
    // Workers that start later take the waiting jobs, and the live run completes.
    for (const w of d.workers) w.engine.startWorkers();
    const summary = await running;
    assert.equal(summary?.run.id, live);
    assert.equal(summary?.run.status, "succeeded");
    assert.equal(await quick.recoverInterruptedRuns(), 0, "nothing is left running");
  });

  test("a coordinator that stops records its run interrupted; workers then skip its waiting tasks", async () => {
    const d = await distributed();
    const running = d.coordinator.run({ ...EVERYTHING, models: ["t1.daily"] });
    let runId = 0;
    const firstKeys = (): string[] => DAYS.map((_, k) => `${runId}/t1.daily#${k}`);
    await until(async () => {
      runId = d.coordinator.progress?.runId ?? 0;
      return runId > 0 && (await d.queue.status("batch", firstKeys())).size === DAYS.length;
    });
    await closer(d.coordinator)();
    const summary = await running;
    assert.equal(summary?.run.status, "interrupted");
    assert.match(summary?.run.error ?? "", /stopped with \d+ of \d+ tasks not run/);
    for (const w of d.workers) w.engine.startWorkers();
    await until(async () =>
      [...(await d.queue.status("batch", firstKeys())).values()].every(
        (s) => s.state === "completed",
      ),
    );
    assert.deepEqual(await d.catalog.tasks(runId), [], "no task of the stopped run ran");
    assert.deepEqual(await d.catalog.files({ layer: "t1", name: "daily" }), []);
    assert.deepEqual(
      d.workers.flatMap((w) => w.recorded),
      [],
    );
  });
});
