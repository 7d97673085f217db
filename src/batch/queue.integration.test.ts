// The batch queue mode on PostgreSQL: a coordinator and two worker engines, each with its own
// catalog and job queue connections as separate processes would have, share runs through
// PostgresJobQueue and PostgresCatalog (opened through the registry), the lake a local folder.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { pino } from "pino";
import type {
  BatchTaskInfo,
  CatalogStore,
  Commit,
  JobQueue,
  ObjectStore,
} from "../backends/contracts/index.js";
import { LocalObjectStore } from "../backends/local/object-store.js";
import { PG_URL, testSchemas } from "../backends/postgres/pg.test-util.js";
import { openCatalog, openJobQueue } from "../backends/registry.js";
import { loadPipeline, type Pipeline } from "../config/index.js";
import { BatchEngine, type RunRequest } from "./engine.js";
import { BAD_DAY, DAYS, datasetRows, landRaw, recording, writeProject } from "./queue.test-util.js";

const log = pino({ level: "silent" });
const { schemaFor } = testSchemas("trb_bq");

/** The queue's schemas (`<catalog schema>_jobs`, named by the registry), dropped at the end. */
const jobSchemas: string[] = [];
const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  const { default: pg } = await import("pg");
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  try {
    for (const s of jobSchemas) await admin.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  } finally {
    await admin.end();
  }
});

/** Every day but the one whose data test fails: the run succeeds. */
const REQUEST: RunRequest = {
  trigger: "manual",
  days: DAYS.filter((d) => d !== BAD_DAY),
  onlyStale: false,
};

/** One engine as one process runs it: its own catalog and queue connections. */
interface Node {
  readonly engine: BatchEngine;
  readonly catalog: CatalogStore;
  readonly queue: JobQueue;
  /** Tasks recorded and commits made through this node's catalog. */
  readonly recorded: BatchTaskInfo[];
  readonly commits: Commit[];
  /** Closes the engine, then its connections (once). */
  close(): Promise<void>;
}

async function project(key: string): Promise<Pipeline> {
  const schema = schemaFor(key);
  jobSchemas.push(`${schema}_jobs`);
  const dir = mkdtempSync(join(tmpdir(), "trb-queue-pg-"));
  closers.push(async () => rmSync(dir, { recursive: true, force: true }));
  writeProject(dir, {}, { backends: { catalog: { kind: "postgres", url: PG_URL, schema } } });
  return loadPipeline(dir);
}

/**
 * Opens a node of the project. Every node is opened before anything runs: they share the project
 * folder here (on separate machines each has its own), and creating an engine empties its staging.
 */
async function node(
  pipeline: Pipeline,
  workers: number,
  lake?: (real: ObjectStore) => ObjectStore,
): Promise<Node> {
  const catalog = await openCatalog(pipeline);
  const queue = await openJobQueue(pipeline);
  assert.ok(queue, "a PostgreSQL catalog comes with a job queue");
  assert.equal(queue.capabilities.shared, true);
  const recorded: BatchTaskInfo[] = [];
  const commits: Commit[] = [];
  const real = new LocalObjectStore(pipeline.lakeDir);
  const engine = await BatchEngine.create({
    pipeline,
    catalog: recording(catalog, recorded, commits),
    lake: lake ? lake(real) : real,
    log,
    queue,
    workers,
  });
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      try {
        await engine.close();
      } finally {
        await queue.close();
        await catalog.close();
      }
    })());
  closers.push(close);
  return { engine, catalog, queue, recorded, commits, close };
}

/** Asserts each task of the run was recorded once, succeeded on its first attempt, and committed once. */
function assertRanOnce(tasks: readonly BatchTaskInfo[], nodes: readonly Node[]): void {
  const names = tasks.map((t) => `${t.model} ${t.days.join(",")}`);
  assert.equal(new Set(names).size, names.length, `each task recorded once: ${names.join("; ")}`);
  for (const t of tasks) {
    assert.equal(t.status, "succeeded", `${t.model} ${t.days.join(",")}: ${t.error}`);
    assert.equal(t.attempts, 1, `${t.model} ${t.days.join(",")} ran once`);
  }
  const recorded = nodes.flatMap((n) => n.recorded);
  assert.equal(recorded.length, tasks.length, "every record was made by a worker, once");
  const commits = nodes.flatMap((n) => n.commits.map((c) => c.summary));
  assert.equal(new Set(commits).size, commits.length, `one commit per task: ${commits.join("; ")}`);
  assert.equal(commits.length, tasks.length, "every task committed");
}

describe("BatchEngine queue mode on PostgreSQL", () => {
  test("a coordinator and two worker engines: each task runs once and the run succeeds", async () => {
    const pipeline = await project("shared-run");
    const coordinator = await node(pipeline, 0);
    const workers = [await node(pipeline, 2), await node(pipeline, 2)];
    await landRaw(pipeline, coordinator.catalog);
    for (const w of workers) w.engine.startWorkers();
    const summary = await coordinator.engine.run(REQUEST);
    assert.ok(summary);
    assert.equal(summary.run.status, "succeeded", summary.run.error ?? "");
    // 3 days in chunks of 1 for the four partitioned models, and t1.codes.
    assert.equal(summary.tasks.length, 4 * 3 + 1);
    assertRanOnce(summary.tasks, workers);
    assert.deepEqual(coordinator.recorded, [], "the coordinator ran nothing");
    const rows = await datasetRows(coordinator.catalog, new LocalObjectStore(pipeline.lakeDir), {
      layer: "t2",
      name: "doubled",
    });
    assert.equal(rows.length, 3);
    const keys = ["t1.codes#*", "t1.daily#0", "t1.daily#1", "t1.daily#2", "t2.doubled#2"].map(
      (k) => `${summary.run.id}/${k}`,
    );
    const statuses = await coordinator.queue.status("batch", keys);
    assert.deepEqual([...statuses.keys()], keys, "the run's jobs are in the queue");
    for (const s of statuses.values()) assert.equal(s.state, "completed");
    for (const n of [coordinator, ...workers]) await n.close();
  });

  test("a worker engine closed mid-run finishes its task and hands the rest on; the run completes", async () => {
    const pipeline = await project("closed-worker");
    // Worker A's first put waits until the test lets it go: A is then inside a task.
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let first = true;
    const gated = (real: ObjectStore): ObjectStore => ({
      capabilities: real.capabilities,
      putFile: async (key, path) => {
        if (first) {
          first = false;
          entered();
          await gate;
        }
        return real.putFile(key, path);
      },
      list: (prefix) => real.list(prefix),
      delete: (key) => real.delete(key),
      localPath: (key) => real.localPath(key),
    });
    const coordinator = await node(pipeline, 0);
    const a = await node(pipeline, 1, gated);
    const b = await node(pipeline, 2);
    await landRaw(pipeline, coordinator.catalog);
    a.engine.startWorkers();
    const running = coordinator.engine.run(REQUEST);
    await inside;
    b.engine.startWorkers();
    // Closing A stops its taking at once; its task finishes once the put goes through.
    const closing = a.close();
    release();
    await closing;
    const summary = await running;
    assert.ok(summary);
    assert.equal(summary.run.status, "succeeded", summary.run.error ?? "");
    assertRanOnce(summary.tasks, [a, b]);
    assert.equal(a.recorded.length, 1, "A finished the task it held and took no other");
    assert.equal(b.recorded.length, summary.tasks.length - 1, "B ran the rest");
    for (const n of [coordinator, b]) await n.close();
  });
});
