// The batch engine of a process: compiles the models, judges partitions, and runs tasks in dependency order.
import { mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { setTimeout as delay } from "node:timers/promises";
import { dirname, join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import type { Logger } from "pino";
import type {
  BatchRunInfo,
  BatchTaskInfo,
  CatalogStore,
  JobLease,
  JobQueue,
  JobStatus,
  JsonValue,
  ObjectStore,
  PartitionState,
  SchemaColumn,
  TestResultInfo,
} from "../backends/contracts/index.js";
import type { Pipeline } from "../config/index.js";
import { TributaryError, isTributaryError } from "../errors.js";
import { dlqDataset, partitionColumnType, quoteString, rawDataset } from "../lake/index.js";
import { metrics } from "../telemetry.js";
import { compilePlan } from "./compile.js";
import { addDays, dayOf, isDay } from "./days.js";
import { checkPartitions, readCatalogView, type PartitionCheck } from "./freshness.js";
import { loadModelSpecs } from "./model-spec.js";
import { VIEW_STATE_LAYER, compileViews, viewBatchSql } from "../views/index.js";
import { WHOLE_TABLE, type BatchPlan, type CompiledModel, type ModelSpec } from "./plan.js";
import { describeSeeds, loadSeeds } from "./seeds.js";
import {
  causeOf,
  describeDays,
  modelShape,
  runTask,
  testsOf,
  type DatasetShape,
  type Task,
} from "./task.js";

/** Most days one task builds: bounds a task's memory and keeps both cores busy in a backfill. */
const MAX_CHUNK_DAYS = 31;

/** The JobQueue queue that carries batch tasks in queue mode. */
export const BATCH_QUEUE = "batch";

/** Lease of a task taken by a worker (queue mode); the worker heartbeats every third of it. */
const DEFAULT_LEASE_MS = 60_000;

/** How long a worker's take waits for a task before it looks again. */
const TAKE_WAIT_MS = 5_000;

/** How often a coordinator reads the state of its run's jobs. */
const POLL_MS = 200;

/** Keys per `status` call when recovery looks for a run's live jobs. */
const STATUS_BATCH = 500;

/**
 * In queue mode, lake files younger than this are never swept as orphans: another engine may have
 * put them and be about to commit them (the embedded engine is alone and sweeps every orphan).
 */
const ORPHAN_GRACE_MS = 60 * 60_000;

/** What starts a run. */
export type RunTrigger = "schedule" | "manual" | "backfill" | "repair";

/** What a run should build. */
export interface RunRequest {
  readonly trigger: RunTrigger;
  /** Days to build for partitioned models (ascending or not; duplicates ignored). */
  readonly days: readonly string[];
  /** Build only partitions that are not fresh (missing, stale, failed, outdated). Default true. */
  readonly onlyStale?: boolean;
  /** Limit the run to these models and what depends on them (default: every model). */
  readonly models?: readonly string[];
}

/** Progress of a running run, for progress bars and the API. */
export interface RunProgress {
  readonly runId: number;
  readonly total: number;
  readonly done: number;
  readonly failed: number;
  readonly running: readonly string[];
}

/** A finished run with its tasks. */
export interface RunSummary {
  readonly run: BatchRunInfo;
  readonly tasks: readonly BatchTaskInfo[];
}

/** What a BatchEngine needs. */
export interface BatchEngineOptions {
  readonly pipeline: Pipeline;
  readonly catalog: CatalogStore;
  readonly lake: ObjectStore;
  readonly log: Logger;
  /**
   * Queue mode: `run()` coordinates (plans, enqueues each task to queue `batch` once its
   * dependencies succeeded, watches the jobs, records the run) and `startWorkers()` runs tasks
   * taken from the queue. Engines on several machines sharing one queue (PostgreSQL) and one
   * catalog share the work of every run. Unset: tasks run in this process (the embedded path).
   */
  readonly queue?: JobQueue;
  /**
   * Worker loops `startWorkers()` runs in queue mode, each one task at a time (default
   * `batch.concurrency`). 0: this engine only coordinates (a scheduler process).
   */
  readonly workers?: number;
  /**
   * Lease of a task a worker takes, in ms (default 60 000): a worker that stops heartbeating
   * (crashed, hung) has its task handed to another worker after it. Recovery waits two of them.
   */
  readonly leaseMs?: number;
}

/** The payload of a batch job: which run, model and days. */
interface JobPayload {
  readonly runId: number;
  readonly model: string;
  readonly days: readonly string[];
}

/** What a worker completes a batch job with. */
type JobResult =
  | { readonly rowsIn: number; readonly rowsOut: number }
  /** `recorded`: the worker recorded the task and its partitions failed; else the coordinator does. */
  | { readonly error: string; readonly recorded: boolean };

/**
 * Runs the batch layer of one process. One run at a time (a second gets TRB_BATCH_BUSY); inside
 * a run, tasks run concurrently up to `batch.concurrency`, each after the tasks it reads.
 *
 * With `queue` (queue mode) the tasks of a run go through the JobQueue instead: `run()` only
 * coordinates, and every engine that called `startWorkers()` on the same queue (any process, any
 * machine) runs them. See src/batch/README.md, "Distributed runs".
 *
 * @example
 * const engine = await BatchEngine.create({ pipeline, catalog, lake, log });
 * await engine.run({ trigger: "manual", days: ["2001-01-15"], onlyStale: false });
 * @example
 * // A worker process: takes tasks until close().
 * const worker = await BatchEngine.create({ pipeline, catalog, lake, log, queue });
 * worker.startWorkers();
 * // A scheduler process: coordinates runs, runs no task itself.
 * const coordinator = await BatchEngine.create({ pipeline, catalog, lake, log, queue, workers: 0 });
 * await coordinator.run({ trigger: "manual", days: ["2001-01-15"] });
 */
export class BatchEngine {
  readonly #o: BatchEngineOptions;
  readonly #db: DuckDBInstance;
  readonly #stagingDir: string;
  #running: RunProgress | undefined;
  #cleaned = false;
  #closed = false;
  #planning: Promise<void> = Promise.resolve();
  #cached: { fingerprint: string; plan: BatchPlan } | undefined;
  /** Queue mode: aborts the workers' waiting takes at close. */
  readonly #stopTaking = new AbortController();
  /** Queue mode: the running worker loops. */
  #workerLoops: Promise<void>[] | undefined;
  /** Queue mode: set by close once this engine's workers stopped (the coordinator then stops). */
  #workersStopped = false;

  private constructor(o: BatchEngineOptions, db: DuckDBInstance, stagingDir: string) {
    this.#o = o;
    this.#db = db;
    this.#stagingDir = stagingDir;
  }

  /** Opens the batch DuckDB: limited to the lake, the seed files and its spill folder. */
  static async create(o: BatchEngineOptions): Promise<BatchEngine> {
    const p = o.pipeline;
    if (o.workers !== undefined && (!Number.isSafeInteger(o.workers) || o.workers < 0))
      throw new RangeError(`workers must be an integer >= 0, not ${o.workers}`);
    if (o.leaseMs !== undefined && (!Number.isSafeInteger(o.leaseMs) || o.leaseMs < 1))
      throw new RangeError(`leaseMs must be an integer >= 1, not ${o.leaseMs}`);
    // Queue mode: other engines may share this folder (processes on one machine), so each has its
    // own staging and temp folder, and only those of processes no longer alive are removed.
    const own = o.queue ? `-${process.pid}` : "";
    const stagingDir = join(p.lakeDir, "_staging", `batch${own}`);
    const tempDir = join(p.dataDir, `duckdb-batch-tmp${own}`);
    if (o.queue) removeDeadStaging(join(p.lakeDir, "_staging"));
    // Staged output of an interrupted run is never committed: start clean.
    rmSync(stagingDir, { recursive: true, force: true });
    mkdirSync(stagingDir, { recursive: true });
    mkdirSync(tempDir, { recursive: true });
    const db = await DuckDBInstance.create(":memory:", {
      threads: String(p.batch.threads),
      memory_limit: p.batch.memoryLimit,
      temp_directory: tempDir,
      autoinstall_known_extensions: "false",
      autoload_known_extensions: "false",
    });
    const admin = await db.connect();
    const allowed = [
      ...p.lakeReadDirs,
      tempDir,
      ...[...p.seeds.values()].map((s) => dirname(s.path)),
    ];
    for (const d of p.lakeReadDirs) mkdirSync(d, { recursive: true });
    await admin.run(`SET allowed_directories = [${allowed.map(quoteString).join(", ")}]`);
    // Timestamps are UTC; event_day() converts to batch.timezone (see engineSetupSql).
    await admin.run("SET GLOBAL TimeZone = 'UTC'");
    await admin.run("SET enable_external_access = false");
    await admin.run("SET lock_configuration = true");
    admin.closeSync();
    // Models read raw.* and dlq.* before the first landing too: register them as land does.
    for (const plan of p.streams.values()) {
      for (const def of [rawDataset(plan), dlqDataset(plan)]) {
        await o.catalog.ensureDataset(def.ref, def);
      }
    }
    return new BatchEngine(o, db, stagingDir);
  }

  /** The run in progress, if any. */
  get progress(): RunProgress | undefined {
    return this.#running;
  }

  /**
   * Compiles the plan: loads changed seeds into the lake, reads the stream datasets' schemas from
   * the catalog, and binds every model. Throws the compile errors (unknown table, column, cycle).
   */
  async plan(): Promise<BatchPlan> {
    // Seeds are loaded (written) while planning: one planning at a time.
    const previous = this.#planning;
    let release!: () => void;
    this.#planning = new Promise<void>((r) => (release = r));
    await previous;
    try {
      return await this.#compile();
    } finally {
      release();
    }
  }

  async #compile(): Promise<BatchPlan> {
    const p = this.#o.pipeline;
    // Every schedule tick and partitions request plans: reuse the plan while no model or seed file
    // changed (binding every model in DuckDB and hashing seed files each time was most of a tick).
    const fingerprint = filesFingerprint([
      p.batch.modelsDir,
      ...[...p.seeds.values()].map((seed) => seed.path),
    ]);
    if (this.#cached && this.#cached.fingerprint === fingerprint) return this.#cached.plan;
    const conn = await this.#db.connect();
    let seeds;
    try {
      seeds = await loadSeeds({
        seeds: p.seeds,
        catalog: this.#o.catalog,
        lake: this.#o.lake,
        conn,
        stagingDir: this.#stagingDir,
        log: this.#o.log,
      });
    } finally {
      conn.closeSync();
    }
    const sources = streamSources(p);
    const plan = await compilePlan({
      specs: [...loadModelSpecs(p.batch.modelsDir, p.batch.layers), ...viewSpecs(p)],
      layers: [...p.batch.layers, VIEW_STATE_LAYER],
      timezone: p.batch.timezone,
      sources,
      seeds,
    });
    if (!this.#cleaned) {
      await this.#removeOrphans(plan);
      this.#cleaned = true;
    }
    this.#cached = { fingerprint, plan };
    return plan;
  }

  /**
   * Judges every partition and records the ones that turned stale (late data, changed model or
   * seed, a rebuilt or failed upstream day). Returns every judgement.
   */
  async markStale(plan?: BatchPlan): Promise<PartitionCheck[]> {
    const thePlan = plan ?? (await this.plan());
    const view = await readCatalogView(this.#o.catalog, thePlan);
    const checks = checkPartitions(thePlan, view);
    const changes: PartitionState[] = [];
    for (const c of checks) {
      const stored = view.states.get(c.model)?.get(c.day);
      if (c.status === "stale" && stored && stored.status === "fresh") {
        changes.push({ ...stored, status: "stale", reason: c.reason });
      }
    }
    const notFresh = new Map<string, number>(thePlan.models.map((m) => [m.id, 0]));
    for (const c of checks)
      if (c.status !== "fresh") notFresh.set(c.model, (notFresh.get(c.model) ?? 0) + 1);
    for (const [model, n] of notFresh) metrics.batchStalePartitions.set({ model }, n);
    if (changes.length > 0) {
      await this.#o.catalog.setPartitions(changes);
      this.#o.log.info({ partitions: changes.length }, "batch partitions marked stale");
    }
    return checks;
  }

  /** The day before `today()`: what a run builds by default. */
  async yesterday(): Promise<string | undefined> {
    const today = await this.today();
    return today === undefined ? undefined : addDays(today, -1);
  }

  /** Stored partition states of every model. */
  partitionStates(): Promise<PartitionState[]> {
    return this.#o.catalog.partitions();
  }

  /** The newest runs, newest first. */
  runs(limit: number): Promise<BatchRunInfo[]> {
    return this.#o.catalog.runs(limit);
  }

  /** A run with its tasks and test results. */
  /** The tasks recorded for a run, in the order they were recorded. */
  runTasks(id: number): Promise<BatchTaskInfo[]> {
    return this.#o.catalog.tasks(id);
  }

  async runDetail(
    id: number,
  ): Promise<{ run: BatchRunInfo; tasks: BatchTaskInfo[]; tests: TestResultInfo[] } | undefined> {
    const run = await this.#o.catalog.run(id);
    if (!run) return undefined;
    return {
      run,
      tasks: await this.#o.catalog.tasks(id),
      tests: await this.#o.catalog.testResults({ runId: id }),
    };
  }

  /** Today in the pipeline's time zone by its batch clock; undefined when the clock stream has no data. */
  async today(): Promise<string | undefined> {
    const p = this.#o.pipeline;
    if (p.batch.clock.kind === "wall") return dayOf(Date.now(), p.batch.timezone);
    const files = await this.#o.catalog.files({ layer: "raw", name: p.batch.clock.stream });
    const newest = Math.max(...files.map((f) => f.maxTime ?? -Infinity));
    return Number.isFinite(newest) ? dayOf(newest, p.batch.timezone) : undefined;
  }

  /**
   * A scheduled run: every day up to yesterday (by the batch clock) that has input data and is
   * missing, stale or failed, the oldest first, at most `batch.catch_up` days; plus full-refresh
   * models that are not fresh. Resolves undefined when there is nothing to do.
   */
  async runScheduled(onProgress?: (p: RunProgress) => void): Promise<RunSummary | undefined> {
    const today = await this.today();
    if (today === undefined) return undefined;
    const yesterday = addDays(today, -1);
    const plan = await this.plan();
    const checks = await this.markStale(plan);
    const days = [
      ...new Set(
        checks
          .filter((c) => c.status !== "fresh" && c.day !== WHOLE_TABLE && c.day <= yesterday)
          .map((c) => c.day),
      ),
    ]
      .sort()
      .slice(0, this.#o.pipeline.batch.catchUpDays);
    const fullStale = checks.some((c) => c.day === WHOLE_TABLE && c.status !== "fresh");
    if (days.length === 0 && !fullStale) return undefined;
    return this.run({ trigger: "schedule", days, onlyStale: true }, onProgress, plan);
  }

  /** A repair: rebuilds every partition that is stale, failed or missing (any day). */
  async repair(onProgress?: (p: RunProgress) => void): Promise<RunSummary | undefined> {
    const plan = await this.plan();
    const checks = await this.markStale(plan);
    const bad = checks.filter((c) => c.status !== "fresh");
    if (bad.length === 0) return undefined;
    const days = [...new Set(bad.filter((c) => c.day !== WHOLE_TABLE).map((c) => c.day))].sort();
    return this.run({ trigger: "repair", days, onlyStale: true }, onProgress, plan);
  }

  /**
   * Runs a request: decides the tasks, runs them (retrying failures with backoff), records the
   * run, its tasks and test results. Resolves with the run when every task has finished, failed
   * or been blocked; a failed task does not reject the promise (see the run's status). Resolves
   * undefined, recording nothing, when every requested partition is fresh already.
   */
  async run(
    request: RunRequest,
    onProgress?: (p: RunProgress) => void,
    plan?: BatchPlan,
  ): Promise<RunSummary | undefined> {
    if (this.#running) {
      throw new TributaryError(
        "TRB_BATCH_BUSY",
        `Batch run ${this.#running.runId} is in progress (${this.#running.done}/${this.#running.total} tasks).`,
      );
    }
    if (this.#closed) throw new TributaryError("TRB_HTTP_SHUTTING_DOWN");
    // Claim the engine before the first await, so concurrent callers see it busy.
    this.#running = { runId: 0, total: 0, done: 0, failed: 0, running: [] };
    let runId = 0;
    try {
      const thePlan = plan ?? (await this.plan());
      const checks = await this.markStale(thePlan);
      for (const id of request.models ?? []) {
        if (!thePlan.models.some((m) => m.id === id))
          throw new TributaryError("TRB_BATCH_UNKNOWN_MODEL", `No model ${id}.`);
      }
      const tasks = planTasks(thePlan, checks, request, this.#o.pipeline.batch.concurrency);
      // Nothing to build is not a run: no record, no progress.
      if (tasks.length === 0) return undefined;
      const days = [...new Set(tasks.flatMap((t) => t.days))].sort();
      runId = await this.#o.catalog.startRun({ trigger: request.trigger, days });
      this.#running = { runId, total: tasks.length, done: 0, failed: 0, running: [] };
      onProgress?.(this.#running);
      const outcome = this.#o.queue
        ? await this.#coordinate(this.#o.queue, tasks, runId, onProgress)
        : await this.#execute(thePlan, tasks, runId, onProgress);
      const status =
        outcome.skipped > 0 ? "interrupted" : outcome.failed > 0 ? "failed" : "succeeded";
      await this.#o.catalog.finishRun(
        runId,
        status,
        outcome.skipped > 0
          ? `stopped with ${outcome.skipped} of ${tasks.length} tasks not run; the next run builds them`
          : outcome.failed > 0
            ? `${outcome.failed} of ${tasks.length} tasks failed`
            : undefined,
      );
      metrics.batchRuns.inc({ trigger: request.trigger, status });
      return {
        run: (await this.#o.catalog.run(runId))!,
        tasks: await this.#o.catalog.tasks(runId),
      };
    } catch (e) {
      if (runId > 0) await this.#o.catalog.finishRun(runId, "failed", (e as Error).message);
      throw e;
    } finally {
      this.#running = undefined;
    }
  }

  async #execute(
    plan: BatchPlan,
    tasks: readonly Task[],
    runId: number,
    onProgress?: (p: RunProgress) => void,
  ): Promise<{ failed: number; skipped: number }> {
    const b = this.#o.pipeline.batch;
    const tally = new RunTally(tasks);
    const { schemas, extraTables } = planContext(plan);
    const running = new Set<string>();
    const writes: Promise<void>[] = [];
    const report = (): void => {
      const { done, failed } = tally;
      this.#running = { runId, total: tasks.length, done, failed, running: [...running] };
      onProgress?.(this.#running);
    };
    await new Promise<void>((resolveAll) => {
      const pump = (): void => {
        const ready = tally.sweep(this.#closed, (t, reason) =>
          writes.push(this.#blocked(t, runId, reason)),
        );
        for (const t of ready) {
          if (running.size >= b.concurrency) break;
          tally.state.set(t.key, "running");
          running.add(t.key);
          report();
          void this.#attempt(t, runId, extraTables, schemas).then((error) => {
            running.delete(t.key);
            tally.settle(t, error);
            report();
            pump();
          });
        }
        // Tasks are in dependency order, so when nothing runs after a pass every task has
        // settled: started ones finished, the rest were blocked in this pass.
        if (running.size === 0) resolveAll();
      };
      pump();
    });
    await Promise.all(writes);
    return { failed: tally.failed, skipped: tally.skipped };
  }

  /** Runs a task with retries; resolves undefined on success, else the error message. */
  async #attempt(
    task: Task,
    runId: number,
    extraTables: readonly string[],
    schemas: ReadonlyMap<string, DatasetShape>,
  ): Promise<string | undefined> {
    const p = this.#o.pipeline;
    const started = Date.now();
    const log = this.#o.log.child({ model: task.model.id, days: describeDays(task.days), runId });
    let attempts = 0;
    for (;;) {
      attempts++;
      try {
        const outcome = await this.#runOnce(task, runId, extraTables, schemas);
        await this.#recordSucceeded(task, runId, attempts, started, outcome, log);
        return undefined;
      } catch (e) {
        const cause = causeOf(e);
        const message = (cause as Error).message ?? String(cause);
        const final =
          attempts > p.batch.retries ||
          isTributaryError(cause, "TRB_BATCH_TEST_FAILED") ||
          isTributaryError(cause, "TRB_BATCH_DAY_OUT_OF_RANGE") ||
          this.#closed;
        if (!final) {
          const wait = p.batch.retryBackoffMs * 2 ** (attempts - 1);
          log.warn(
            { err: cause, attempt: attempts, retryInMs: wait },
            "batch task failed; retrying",
          );
          await new Promise((r) => setTimeout(r, wait));
          continue;
        }
        log.error({ err: cause, attempts }, "batch task failed");
        await this.#recordFailed(task, runId, attempts, started, e, message);
        return message;
      }
    }
  }

  /** One attempt of a task: `runTask` in this engine's DuckDB. */
  #runOnce(
    task: Task,
    runId: number,
    extraTables: readonly string[],
    schemas: ReadonlyMap<string, DatasetShape>,
  ): ReturnType<typeof runTask> {
    const p = this.#o.pipeline;
    return runTask(task, {
      db: this.#db,
      catalog: this.#o.catalog,
      lake: this.#o.lake,
      timezone: p.batch.timezone,
      stagingDir: this.#stagingDir,
      compression: p.lake.compression,
      runId,
      extraTables: extraTables.filter((t) => !task.model.inputs.some((i) => i.table === t)),
      schemas,
    });
  }

  /**
   * Queue mode, coordinator: enqueues every task whose dependencies succeeded, reads its job's
   * state every POLL_MS, blocks the dependents of failed tasks, and records the failures no
   * worker recorded (a job out of attempts because its last worker died, or one no worker could
   * run). Resolves when every task settled, or, once close() stopped this engine's workers, with
   * the unsettled tasks counted as skipped (workers then skip their jobs: the run is not running).
   */
  async #coordinate(
    queue: JobQueue,
    tasks: readonly Task[],
    runId: number,
    onProgress?: (p: RunProgress) => void,
  ): Promise<{ failed: number; skipped: number }> {
    const b = this.#o.pipeline.batch;
    const tally = new RunTally(tasks);
    const state = tally.state;
    const running = new Set<string>();
    const writes: Promise<void>[] = [];
    let reported = "";
    const report = (): void => {
      const { done, failed } = tally;
      const now = { runId, total: tasks.length, done, failed, running: [...running].sort() };
      const key = JSON.stringify(now);
      if (key === reported) return;
      reported = key;
      this.#running = now;
      onProgress?.(now);
    };
    const settle = (t: Task, error: string | undefined): void => {
      running.delete(t.key);
      tally.settle(t, error);
    };
    for (;;) {
      const stopping = this.#closed;
      const ready = tally.sweep(stopping, (t, reason) =>
        writes.push(this.#blocked(t, runId, reason)),
      );
      if (ready.length > 0) {
        try {
          await queue.enqueue(
            BATCH_QUEUE,
            ready.map((t) => ({
              key: jobKey(runId, t.key),
              payload: { runId, model: t.model.id, days: [...t.days] } satisfies JobPayload,
              maxAttempts: b.retries + 1,
            })),
          );
          for (const t of ready) state.set(t.key, "queued");
        } catch (e) {
          if (isTributaryError(e, "TRB_QUEUE_CLOSED")) throw e;
          // The queue is unreachable for now: enqueue again at the next round.
          this.#o.log.warn({ err: e, runId }, "batch coordinator could not enqueue; retrying");
        }
      }
      report();
      const queued = tasks.filter((t) => state.get(t.key) === "queued");
      if (queued.length === 0 && !tasks.some((t) => state.get(t.key) === "pending")) break;
      // Once close() stopped this engine's workers, one last look, then stop coordinating.
      const last = stopping && this.#workersStopped;
      await new Promise((r) => setTimeout(r, POLL_MS));
      let statuses: Map<string, JobStatus> | undefined;
      try {
        statuses = await queue.status(
          BATCH_QUEUE,
          queued.map((t) => jobKey(runId, t.key)),
        );
      } catch (e) {
        if (isTributaryError(e, "TRB_QUEUE_CLOSED")) throw e;
        this.#o.log.warn({ err: e, runId }, "batch coordinator could not read job states");
      }
      for (const t of statuses ? queued : []) {
        const s = statuses!.get(jobKey(runId, t.key));
        if (s === undefined) {
          // The queue lost the job (it keeps finished jobs for days): enqueue it again.
          state.set(t.key, "pending");
          running.delete(t.key);
        } else if (s.state === "active") running.add(t.key);
        else if (s.state === "pending") running.delete(t.key);
        else if (s.state === "failed") {
          // Out of attempts without a worker recording it (its last worker died): record it here.
          const error = s.error ?? "failed";
          writes.push(this.#failedHere(t, runId, error, s.attempts));
          settle(t, error);
        } else {
          const result = resultOf(s.result);
          if (result === undefined || "rowsOut" in result) settle(t, undefined);
          else {
            if (!result.recorded) writes.push(this.#failedHere(t, runId, result.error, s.attempts));
            settle(t, result.error);
          }
        }
      }
      if (last) {
        for (const t of tasks) {
          if (state.get(t.key) !== "queued") continue;
          running.delete(t.key);
          tally.skip(t);
        }
      }
      report();
    }
    await Promise.all(writes);
    return { failed: tally.failed, skipped: tally.skipped };
  }

  /** Records a task that failed with no worker recording it, and marks its partitions failed. */
  async #failedHere(task: Task, runId: number, error: string, attempts: number): Promise<void> {
    this.#o.log.error(
      { model: task.model.id, days: describeDays(task.days), runId, attempts, error },
      "batch task failed",
    );
    metrics.batchTaskFailures.inc({ model: task.model.id });
    await this.#o.catalog.recordTask({
      runId,
      model: task.model.id,
      days: task.days,
      status: "failed",
      attempts,
      startedAt: null,
      ms: null,
      rowsIn: null,
      rowsOut: null,
      error,
    });
    await this.#setStates(task, runId, "failed", error);
  }

  /**
   * Queue mode: starts this engine's `workers` loops (default `batch.concurrency`), each taking
   * one task at a time from queue `batch` until close(). Calling it again does nothing.
   */
  startWorkers(): void {
    const queue = this.#o.queue;
    if (queue === undefined)
      throw new TributaryError(
        "TRB_INTERNAL",
        "startWorkers() needs a queue: create the engine with `queue` (queue mode).",
      );
    if (this.#closed) throw new TributaryError("TRB_HTTP_SHUTTING_DOWN");
    if (this.#workerLoops !== undefined) return;
    const n = this.#o.workers ?? this.#o.pipeline.batch.concurrency;
    this.#workerLoops = Array.from({ length: n }, () => this.#workerLoop(queue));
  }

  /** One worker: takes a task, runs it, settles its job; until close(). */
  async #workerLoop(queue: JobQueue): Promise<void> {
    const leaseMs = this.#o.leaseMs ?? DEFAULT_LEASE_MS;
    while (!this.#closed) {
      let leases: JobLease[];
      try {
        leases = await queue.take(BATCH_QUEUE, {
          max: 1,
          leaseMs,
          waitMs: TAKE_WAIT_MS,
          signal: this.#stopTaking.signal,
        });
      } catch (e) {
        if (this.#closed || isTributaryError(e, "TRB_QUEUE_CLOSED")) return;
        this.#o.log.warn({ err: e }, "batch worker could not take a task; retrying");
        await delay(1_000, undefined, { signal: this.#stopTaking.signal }).catch(() => undefined);
        continue;
      }
      // A task taken as close() began still runs: its lease is ours, and running it finishes it.
      for (const lease of leases) await this.#work(queue, lease);
    }
  }

  /** Runs one delivered task as #attempt runs one attempt, then completes or fails its job. */
  async #work(queue: JobQueue, lease: JobLease): Promise<void> {
    const p = this.#o.pipeline;
    const started = Date.now();
    let log = this.#o.log.child({ job: lease.key, attempt: lease.attempt });
    let lost = false;
    const beat = setInterval(
      () => {
        queue.heartbeat(lease).then(
          (held) => {
            if (!held) lost = true;
          },
          (e: unknown) => log.warn({ err: e }, "batch worker heartbeat failed"),
        );
      },
      Math.max(1, Math.floor(lease.leaseMs / 3)),
    );
    // Whether the lease is still ours right before recording: a lost one is abandoned (another
    // worker may run the task; the commit already made is atomic and idempotent).
    const held = async (): Promise<boolean> => {
      if (!lost && (await queue.heartbeat(lease))) return true;
      log.warn("batch task lease lost; abandoning its result");
      return false;
    };
    try {
      const plan = await this.plan();
      const resolved = resolveJob(plan, lease.key, lease.payload);
      if (typeof resolved === "string") {
        log.error({ error: resolved }, "batch task cannot run here");
        await queue.complete(lease, { error: resolved, recorded: false } satisfies JobResult);
        return;
      }
      const { task, runId } = resolved;
      log = log.child({ model: task.model.id, days: describeDays(task.days), runId });
      const run = await this.#o.catalog.run(runId);
      if (run?.status !== "running") {
        // Its coordinator stopped (or another catalog): tasks of a stopped run are not run.
        const error = `run ${runId} is ${run ? run.status : "not in the catalog"}: task not run`;
        log.warn(error);
        await queue.complete(lease, { error, recorded: false } satisfies JobResult);
        return;
      }
      const { extraTables, schemas } = planContext(plan);
      try {
        const outcome = await this.#runOnce(task, runId, extraTables, schemas);
        if (!(await held())) return;
        await this.#recordSucceeded(task, runId, lease.attempt, started, outcome, log);
        if (
          !(await queue.complete(lease, {
            rowsIn: outcome.rowsIn,
            rowsOut: outcome.rowsOut,
          } satisfies JobResult))
        )
          log.warn("batch task lease lost after its result was recorded");
      } catch (e) {
        const cause = causeOf(e);
        const message = (cause as Error).message ?? String(cause);
        const final =
          lease.attempt >= lease.maxAttempts ||
          isTributaryError(cause, "TRB_BATCH_TEST_FAILED") ||
          isTributaryError(cause, "TRB_BATCH_DAY_OUT_OF_RANGE");
        if (!final) {
          const wait = p.batch.retryBackoffMs * 2 ** (lease.attempt - 1);
          log.warn({ err: cause, retryInMs: wait }, "batch task failed; retrying");
          await queue.fail(lease, message, { retryAfterMs: wait });
          return;
        }
        if (!(await held())) return;
        log.error({ err: cause }, "batch task failed");
        await this.#recordFailed(task, runId, lease.attempt, started, e, message);
        await queue.complete(lease, { error: message, recorded: true } satisfies JobResult);
      }
    } catch (e) {
      // Planning, the catalog or the queue failed: hand the task back (on the last attempt it
      // fails for good, and the coordinator records it).
      log.warn({ err: e }, "batch worker could not finish a task; handing it back");
      const wait = p.batch.retryBackoffMs * 2 ** (lease.attempt - 1);
      await queue
        .fail(lease, (e as Error).message ?? String(e), { retryAfterMs: wait })
        .catch((err: unknown) => log.warn({ err }, "batch worker could not hand a task back"));
    } finally {
      clearInterval(beat);
    }
  }

  /** Records a task that succeeded on attempt `attempts`, begun at `started` (epoch ms). */
  async #recordSucceeded(
    task: Task,
    runId: number,
    attempts: number,
    started: number,
    outcome: Awaited<ReturnType<typeof runTask>>,
    log: Logger,
  ): Promise<void> {
    await this.#o.catalog.recordTask({
      runId,
      model: task.model.id,
      days: task.days,
      status: "succeeded",
      attempts,
      startedAt: new Date(started).toISOString(),
      ms: Date.now() - started,
      rowsIn: outcome.rowsIn,
      rowsOut: outcome.rowsOut,
      error: null,
    });
    if (outcome.tests.length > 0) await this.#o.catalog.recordTests(outcome.tests);
    metrics.batchRowsReceived.inc({ model: task.model.id }, outcome.rowsIn);
    metrics.batchRows.inc({ model: task.model.id }, outcome.rowsOut);
    log.debug(
      { rowsIn: outcome.rowsIn, rowsOut: outcome.rowsOut, ms: Date.now() - started },
      "batch task done",
    );
  }

  /**
   * Records a task that failed for good (`error` as thrown, `message` its cause's): its data
   * tests, the task, and its partitions as failed.
   */
  async #recordFailed(
    task: Task,
    runId: number,
    attempts: number,
    started: number,
    error: unknown,
    message: string,
  ): Promise<void> {
    metrics.batchTaskFailures.inc({ model: task.model.id });
    const tests = testsOf(error);
    if (tests.length > 0) await this.#o.catalog.recordTests(tests);
    await this.#o.catalog.recordTask({
      runId,
      model: task.model.id,
      days: task.days,
      status: "failed",
      attempts,
      startedAt: new Date(started).toISOString(),
      ms: Date.now() - started,
      rowsIn: null,
      rowsOut: null,
      error: message,
    });
    await this.#setStates(task, runId, "failed", message);
  }

  async #blocked(task: Task, runId: number, reason: string): Promise<void> {
    await this.#o.catalog.recordTask({
      runId,
      model: task.model.id,
      days: task.days,
      status: "blocked",
      attempts: 0,
      startedAt: null,
      ms: null,
      rowsIn: null,
      rowsOut: null,
      error: reason,
    });
    await this.#setStates(task, runId, "stale", reason);
  }

  /** Marks a task's partitions failed or stale, keeping what is known of their live files. */
  async #setStates(
    task: Task,
    runId: number,
    status: "failed" | "stale",
    reason: string,
  ): Promise<void> {
    const current = new Map(
      (await this.#o.catalog.partitions(task.model.id)).map((s) => [s.day, s] as const),
    );
    await this.#o.catalog.setPartitions(
      task.days.map((day) => {
        const s = current.get(day);
        return {
          model: task.model.id,
          day,
          status,
          modelHash: s?.modelHash ?? null,
          inputSnapshot: s?.inputSnapshot ?? null,
          builtAt: s?.builtAt ?? null,
          runId,
          rows: s?.rows ?? null,
          reason,
        };
      }),
    );
  }

  /** Deletes lake files of model datasets that no commit registered (a crash between put and commit). */
  async #removeOrphans(plan: BatchPlan): Promise<void> {
    // Replaced files stay for time travel: only files no commit registered are orphans.
    const live = await this.#o.catalog.registeredPaths();
    let removed = 0;
    const prefixes = [
      ...plan.models.map((m) => `${m.spec.layer}/${m.spec.name}/`),
      ...plan.seeds.map((seed) => `seed/${seed.name}/`),
    ];
    // Queue mode: another engine may be between putting files and committing them.
    const before = this.#o.queue ? Date.now() - ORPHAN_GRACE_MS : Infinity;
    for (const prefix of prefixes) {
      for (const obj of await this.#o.lake.list(prefix)) {
        if (!live.has(obj.key) && obj.modified < before) {
          await this.#o.lake.delete(obj.key);
          removed++;
        }
      }
    }
    if (removed > 0)
      this.#o.log.info({ removed }, "removed uncommitted batch files left by an earlier crash");
  }

  /**
   * Marks runs left `running` by a crash as interrupted.
   *
   * In queue mode another process's coordinator may be running such a run, so a run is marked
   * only when it looks abandoned: nothing happened in it (started, or a task recorded) for two
   * lease periods, and none of its jobs is live (pending or active) in the queue. Its job keys
   * are not stored anywhere, so every key it can have is asked for: each model of this engine's
   * plan with each chunk index of the run's days (`<runId>/<model>#<n>`, `#*`). A live
   * coordinator always has a live job, but for the instant between a job settling and its
   * dependents being enqueued. Safe to call at any time (at start, or on a timer).
   */
  async recoverInterruptedRuns(): Promise<number> {
    let n = 0;
    for (const r of await this.#o.catalog.runs(50)) {
      if (r.status !== "running") continue;
      if (this.#running?.runId === r.id) continue;
      const queue = this.#o.queue;
      if (queue && !(await this.#abandoned(queue, r))) continue;
      await this.#o.catalog.finishRun(
        r.id,
        "interrupted",
        queue
          ? "its coordinator stopped during the run (no job of the run is left in the queue)"
          : "the process stopped during the run",
      );
      n++;
    }
    return n;
  }

  /** Queue mode: whether a `running` run has had no activity and has no live job (see recoverInterruptedRuns). */
  async #abandoned(queue: JobQueue, run: BatchRunInfo): Promise<boolean> {
    const quietMs = 2 * (this.#o.leaseMs ?? DEFAULT_LEASE_MS);
    let last = Date.parse(run.startedAt);
    for (const t of await this.#o.catalog.tasks(run.id)) {
      if (t.startedAt !== null) last = Math.max(last, Date.parse(t.startedAt) + (t.ms ?? 0));
    }
    if (!(Date.now() - last >= quietMs)) return false;
    let plan: BatchPlan;
    try {
      plan = await this.plan();
    } catch (e) {
      // Without the models, the run's jobs cannot be named: leave the run as it is.
      this.#o.log.warn({ err: e, runId: run.id }, "cannot check a batch run's jobs; left running");
      return false;
    }
    const chunks = run.days.filter((d) => d !== WHOLE_TABLE).length;
    const keys = plan.models.flatMap((m) => [
      jobKey(run.id, `${m.id}#${WHOLE_TABLE}`),
      ...Array.from({ length: chunks }, (_, k) => jobKey(run.id, `${m.id}#${k}`)),
    ]);
    for (let i = 0; i < keys.length; i += STATUS_BATCH) {
      const statuses = await queue.status(BATCH_QUEUE, keys.slice(i, i + STATUS_BATCH));
      for (const s of statuses.values())
        if (s.state === "pending" || s.state === "active") return false;
    }
    return true;
  }

  /**
   * Stops: no new run or task starts, the running tasks finish (their commits are atomic anyway),
   * the run is recorded as interrupted, then DuckDB closes. In queue mode the workers stop taking
   * (a waiting take is aborted), finish the tasks they run and settle their jobs; then the
   * coordinator stops, recording the run interrupted when some of its tasks had not settled.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#stopTaking.abort();
    await Promise.all(this.#workerLoops ?? []);
    this.#workersStopped = true;
    while (this.#running) await new Promise((r) => setTimeout(r, 50));
    this.#db.closeSync();
  }
}

/**
 * The batch side of every lambda view, as a partitioned model of the internal `view_state` layer:
 * built, judged fresh or stale, repaired and backfilled like any model (decision 0005).
 */
function viewSpecs(p: Pipeline): ModelSpec[] {
  return [...compileViews(p).values()].map((node) => ({
    layer: VIEW_STATE_LAYER,
    name: node.name,
    sqlFile: `${join(p.root, "tributary.yaml")}#views.${node.name}`,
    propertiesFile: undefined,
    sql: viewBatchSql(node, p),
    description: `Partial states of view ${node.name} (internal: query GET /v1/views/${node.name})`,
    owner: undefined,
    materialized: "partitioned" as const,
    uniqueKey: undefined,
    pii: [],
    tests: [],
    tags: ["view"],
  }));
}

/**
 * Path, size and modification time of every file under `paths` (folders walked, missing paths
 * noted): equal fingerprints mean no model or seed file changed.
 */
function filesFingerprint(paths: readonly string[]): string {
  const out: string[] = [];
  const visit = (path: string): void => {
    let st;
    try {
      st = statSync(path);
    } catch {
      out.push(`${path}:missing`);
      return;
    }
    if (st.isDirectory()) {
      for (const name of readdirSync(path).sort()) visit(join(path, name));
    } else out.push(`${path}:${st.size}:${st.mtimeMs}`);
  };
  for (const p of paths) visit(p);
  return out.join("\n");
}

/** Columns of the stream datasets (`raw.<stream>`, `dlq.<stream>`) as models see them, partitions included. */
function streamSources(p: Pipeline): Map<string, readonly SchemaColumn[]> {
  const sources = new Map<string, readonly SchemaColumn[]>();
  for (const plan of p.streams.values()) {
    for (const def of [rawDataset(plan), dlqDataset(plan)]) {
      sources.set(`${def.ref.layer}.${def.ref.name}`, [
        ...def.columns,
        ...def.partitionColumns.map((c) => ({ name: c, type: partitionColumnType(c) })),
      ]);
    }
  }
  return sources;
}

/**
 * Compiles a pipeline's batch plan without touching its catalog or lake (seeds are described from
 * their files): what `tributary batch plan` prints, also beside a running server.
 */
export async function compileOffline(p: Pipeline): Promise<BatchPlan> {
  const db = await DuckDBInstance.create(":memory:", { threads: "1" });
  const conn = await db.connect();
  try {
    return await compilePlan({
      specs: [...loadModelSpecs(p.batch.modelsDir, p.batch.layers), ...viewSpecs(p)],
      layers: [...p.batch.layers, VIEW_STATE_LAYER],
      timezone: p.batch.timezone,
      sources: streamSources(p),
      seeds: await describeSeeds(p.seeds, conn),
    });
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

/** Where a task of a run is: in this process (`running`) or in the job queue (`queued`). */
type TaskState = "pending" | "running" | "queued" | "ok" | "failed" | "blocked" | "skipped";

/** The tasks of one run and their outcomes, as both ways of running them keep them. */
class RunTally {
  readonly state: Map<string, TaskState>;
  /** Why a task failed or was blocked. */
  readonly #why = new Map<string, string>();
  readonly #tasks: readonly Task[];
  done = 0;
  failed = 0;
  skipped = 0;

  constructor(tasks: readonly Task[]) {
    this.#tasks = tasks;
    this.state = new Map(tasks.map((t) => [t.key, "pending"]));
  }

  /**
   * One pass over the pending tasks, in dependency order. Stopping: each is skipped (its
   * partitions keep their state). A task after a failed or blocked one is blocked, with the first
   * cause (`onBlocked` records it). Returns the tasks whose inputs all succeeded.
   */
  sweep(stopping: boolean, onBlocked: (task: Task, reason: string) => void): Task[] {
    const ready: Task[] = [];
    for (const t of this.#tasks) {
      if (this.state.get(t.key) !== "pending") continue;
      if (stopping) {
        this.skip(t);
        continue;
      }
      const blocker = t.after.find((k) => {
        const s = this.state.get(k);
        return s === "failed" || s === "blocked";
      });
      if (blocker !== undefined) {
        this.state.set(t.key, "blocked");
        const cause = this.#why.get(blocker) ?? blocker;
        const reason = cause.startsWith("blocked: ") ? cause : `blocked: ${cause}`;
        this.#why.set(t.key, reason);
        this.done++;
        this.failed++;
        onBlocked(t, reason);
        continue;
      }
      if (t.after.every((k) => this.state.get(k) === "ok")) ready.push(t);
    }
    return ready;
  }

  /** A task finished: succeeded, or failed with `error`. */
  settle(t: Task, error: string | undefined): void {
    this.done++;
    if (error === undefined) {
      this.state.set(t.key, "ok");
      return;
    }
    this.state.set(t.key, "failed");
    this.#why.set(t.key, `${t.model.id} ${describeDays(t.days)} failed: ${error}`);
    this.failed++;
  }

  /** A task not run because the run stopped. */
  skip(t: Task): void {
    this.state.set(t.key, "skipped");
    this.skipped++;
    this.done++;
  }
}

/**
 * Decides the tasks of a run. Partitioned models build the requested days (only the non-fresh
 * ones when `onlyStale`), plus every day an input model rebuilds in the run; full-refresh models
 * rebuild when requested and not fresh, or when an input rebuilds. Days are cut into chunks so a
 * backfill keeps `concurrency` tasks busy and each task stays under MAX_CHUNK_DAYS.
 */
export function planTasks(
  plan: BatchPlan,
  checks: readonly PartitionCheck[],
  request: RunRequest,
  concurrency: number,
): Task[] {
  const onlyStale = request.onlyStale ?? true;
  const status = new Map(checks.map((c) => [`${c.model}@${c.day}`, c.status] as const));
  const requested = [...new Set(request.days)].sort();
  const selected = selectedModels(plan, request.models);
  const build = new Map<string, Set<string>>();
  for (const m of plan.models) {
    const days = new Set<string>();
    const full = m.spec.materialized === "full";
    if (selected.has(m.id)) {
      if (full) {
        const s = status.get(`${m.id}@${WHOLE_TABLE}`);
        if (!onlyStale || s !== "fresh") days.add(WHOLE_TABLE);
      } else {
        for (const d of requested) {
          const s = status.get(`${m.id}@${d}`) ?? "missing";
          if (!onlyStale || s !== "fresh") days.add(d);
        }
      }
    }
    for (const i of m.inputs) {
      if (i.kind !== "model") continue;
      const upstream = build.get(i.table);
      if (!upstream || upstream.size === 0) continue;
      if (full) days.add(WHOLE_TABLE);
      else if (i.partitioned) for (const d of upstream) days.add(d);
    }
    build.set(m.id, days);
  }
  const allDays = [...new Set([...build.values()].flatMap((s) => [...s]))]
    .filter((d) => d !== WHOLE_TABLE)
    .sort();
  const size = Math.min(
    MAX_CHUNK_DAYS,
    Math.max(1, Math.ceil(allDays.length / (2 * Math.max(1, concurrency)))),
  );
  const chunkOf = new Map(allDays.map((d, i) => [d, Math.floor(i / size)] as const));
  const tasks: Task[] = [];
  const keysOf = new Map<string, Task[]>();
  for (const m of plan.models) {
    const days = build.get(m.id)!;
    if (days.size === 0) continue;
    const mine: Task[] = [];
    if (m.spec.materialized === "full") {
      const after = m.inputs.flatMap((i) => (keysOf.get(i.table) ?? []).map((t) => t.key));
      mine.push({ key: `${m.id}#*`, model: m, days: [WHOLE_TABLE], after });
    } else {
      const chunks = new Map<number, string[]>();
      for (const d of [...days].sort()) {
        const k = chunkOf.get(d)!;
        const list = chunks.get(k);
        if (list) list.push(d);
        else chunks.set(k, [d]);
      }
      for (const [k, ds] of chunks) {
        const after = m.inputs.flatMap((i) => {
          const up = keysOf.get(i.table) ?? [];
          return i.partitioned
            ? up.filter((t) => t.key.endsWith(`#${k}`)).map((t) => t.key)
            : up.map((t) => t.key);
        });
        mine.push({ key: `${m.id}#${k}`, model: m, days: ds, after });
      }
    }
    keysOf.set(m.id, mine);
    tasks.push(...mine);
  }
  return tasks;
}

/** The requested models and every model that reads them, directly or not. */
function selectedModels(plan: BatchPlan, models: readonly string[] | undefined): Set<string> {
  if (models === undefined) return new Set(plan.models.map((m) => m.id));
  const out = new Set(models);
  const byId = new Map<string, CompiledModel>(plan.models.map((m) => [m.id, m]));
  const visit = (id: string): void => {
    for (const d of byId.get(id)?.dependents ?? []) {
      if (!out.has(d)) {
        out.add(d);
        visit(d);
      }
    }
  };
  for (const id of models) visit(id);
  return out;
}

/** The schemas and data-test tables every task of a plan needs. */
function planContext(plan: BatchPlan): {
  schemas: ReadonlyMap<string, DatasetShape>;
  extraTables: readonly string[];
} {
  let c = contexts.get(plan);
  if (c === undefined) {
    c = {
      schemas: new Map(plan.models.map((m) => [m.id, modelShape(m)] as const)),
      extraTables: [
        ...new Set(
          plan.models.flatMap((m) =>
            m.spec.tests.flatMap((t) => (t.kind === "relationships" ? [t.to] : [])),
          ),
        ),
      ],
    };
    contexts.set(plan, c);
  }
  return c;
}

const contexts = new WeakMap<BatchPlan, ReturnType<typeof planContext>>();

/** The job key of a task of a run: `<runId>/<task key>`. */
function jobKey(runId: number, taskKey: string): string {
  return `${runId}/${taskKey}`;
}

/**
 * The task a job payload names, built with this engine's plan; a message when the payload is
 * malformed, or names a model or days this plan cannot build.
 */
function resolveJob(
  plan: BatchPlan,
  key: string,
  payload: JsonValue,
): { task: Task; runId: number } | string {
  const p = payload as Partial<Record<keyof JobPayload, unknown>> | null;
  if (
    typeof p !== "object" ||
    p === null ||
    Array.isArray(p) ||
    !Number.isSafeInteger(p.runId) ||
    typeof p.model !== "string" ||
    !Array.isArray(p.days) ||
    p.days.length === 0 ||
    !p.days.every((d) => typeof d === "string")
  )
    return `malformed batch job payload ${JSON.stringify(payload)}`;
  const model = plan.models.find((m) => m.id === p.model);
  if (model === undefined) return `model ${p.model} is not in this worker's plan`;
  const days = [...new Set(p.days as string[])].sort();
  const ok =
    model.spec.materialized === "full"
      ? days.length === 1 && days[0] === WHOLE_TABLE
      : days.every((d) => isDay(d));
  if (!ok) return `days ${days.join(", ")} are not days ${model.id} is built by`;
  const runId = p.runId as number;
  const prefix = jobKey(runId, "");
  const taskKey = key.startsWith(prefix) ? key.slice(prefix.length) : key;
  return { runId, task: { key: taskKey, model, days, after: [] } };
}

/** A completed job's result, when it is one a worker gives. */
function resultOf(result: JsonValue | undefined): JobResult | undefined {
  if (typeof result !== "object" || result === null || Array.isArray(result)) return undefined;
  const r = result as Record<string, JsonValue>;
  if (typeof r.error === "string") return { error: r.error, recorded: r.recorded === true };
  if (typeof r.rowsOut === "number" && typeof r.rowsIn === "number")
    return { rowsIn: r.rowsIn, rowsOut: r.rowsOut };
  return undefined;
}

/** Removes `batch-<pid>` staging folders of processes on this machine that are no longer alive. */
function removeDeadStaging(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^batch-(\d+)$/.exec(name);
    if (!m || Number(m[1]) === process.pid) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ESRCH")
        rmSync(join(dir, name), { recursive: true, force: true });
    }
  }
}
