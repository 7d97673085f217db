// Tests of the batch engine's retries, failure records and schedule, on a seed-only project.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, test } from "node:test";
import { pino } from "pino";
import { stringify } from "yaml";
import type { ObjectStore } from "../backends/contracts/index.js";
import { LocalObjectStore } from "../backends/local/object-store.js";
import { SqliteCatalog } from "../backends/sqlite/catalog-store.js";
import { loadPipeline } from "../config/index.js";
import { BatchEngine } from "./engine.js";
import { BatchScheduler } from "./scheduler.js";

const log = pino({ level: "silent" });
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A project with one stream, a seed, and a full-refresh model over the seed. */
function project(batch: Record<string, unknown> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "trb-engine-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, "tributary.yaml"),
    stringify({
      name: "engine-test",
      streams: { events: { fields: { n: "integer" } } },
      seeds: { codes: { path: "codes.csv" } },
      batch: { retry_backoff: "10ms", ...batch },
    }),
  );
  writeFileSync(join(dir, "codes.csv"), "code,label\nA,alpha\nB,beta\n");
  mkdirSync(join(dir, "models", "t1"), { recursive: true });
  writeFileSync(
    join(dir, "models", "t1", "codes.sql"),
    "SELECT code, upper(label) AS label FROM seed.codes",
  );
  writeFileSync(join(dir, "models", "t1", "codes.yaml"), "materialized: full\n");
  return dir;
}

async function open(dir: string, lake?: (real: ObjectStore) => ObjectStore) {
  const pipeline = loadPipeline(dir);
  const catalog = new SqliteCatalog(join(pipeline.dataDir, "catalog.db"));
  const real = new LocalObjectStore(pipeline.lakeDir);
  const engine = await BatchEngine.create({
    pipeline,
    catalog,
    lake: lake ? lake(real) : real,
    log,
  });
  cleanups.push(async () => {
    await engine.close();
    await catalog.close();
  });
  return { pipeline, catalog, engine };
}

/**
 * An object store whose first `failures` puts of model files fail, as a full disk or a dropped
 * upload would (a fault the local disk cannot be made to produce on demand, running as root).
 */
function flaky(real: ObjectStore, failures: number): ObjectStore {
  let left = failures;
  return {
    capabilities: real.capabilities,
    putFile: async (key, path) => {
      if (key.startsWith("t1/") && left-- > 0) throw new Error("EIO: simulated write failure");
      return real.putFile(key, path);
    },
    list: (prefix) => real.list(prefix),
    delete: (key) => real.delete(key),
    localPath: (key) => real.localPath(key),
  };
}

describe("BatchEngine", () => {
  test("a task that fails once is retried with backoff and the run succeeds", async () => {
    const { engine, catalog } = await open(project({ retries: 2 }), (real) => flaky(real, 1));
    const summary = await engine.run({ trigger: "manual", days: [], onlyStale: false });
    assert.equal(summary?.run.status, "succeeded");
    assert.equal(summary?.tasks.length, 1);
    assert.equal(summary?.tasks[0]!.attempts, 2);
    assert.equal(summary?.tasks[0]!.rowsOut, 2);
    const [state] = await catalog.partitions("t1.codes");
    assert.equal(state?.status, "fresh");
    assert.equal(state?.day, "*");
  });

  test("a task failing past its retries fails the run and its partition, with the reason", async () => {
    const { engine, catalog } = await open(project({ retries: 1 }), (real) => flaky(real, 5));
    const summary = await engine.run({ trigger: "manual", days: [], onlyStale: false });
    assert.equal(summary?.run.status, "failed");
    assert.equal(summary?.tasks[0]!.status, "failed");
    assert.equal(summary?.tasks[0]!.attempts, 2);
    assert.match(summary?.tasks[0]!.error ?? "", /simulated write failure/);
    const [state] = await catalog.partitions("t1.codes");
    assert.equal(state?.status, "failed");
    assert.match(state?.reason ?? "", /simulated write failure/);
    // Nothing half-done is visible: the model has no live file.
    assert.deepEqual(await catalog.files({ layer: "t1", name: "codes" }), []);
  });

  test("a partitioned model writing a day it was not asked for fails before anything is stored", async () => {
    const dir = project();
    // An aggregate without GROUP BY returns a row even for a day without events.
    writeFileSync(
      join(dir, "models", "t1", "wrong_day.sql"),
      "SELECT DATE '2001-01-05' AS day, count(*) AS events FROM raw.events",
    );
    const { engine, catalog, pipeline } = await open(dir);
    const summary = await engine.run({ trigger: "manual", days: ["2001-01-01"], onlyStale: false });
    const task = summary?.tasks.find((t) => t.model === "t1.wrong_day");
    assert.equal(task?.status, "failed");
    assert.equal(task?.attempts, 1, "a deterministic failure is not retried");
    assert.match(task?.error ?? "", /1 rows for day 2001-01-05 while building 2001-01-01/);
    assert.deepEqual(await catalog.files({ layer: "t1", name: "wrong_day" }), []);
    const lake = new LocalObjectStore(pipeline.lakeDir);
    assert.deepEqual(await lake.list("t1/wrong_day/"), [], "nothing reached the lake");
  });

  test("a second run while one is in progress is refused; nothing to build records no run", async () => {
    const { engine, catalog } = await open(project());
    const first = engine.run({ trigger: "manual", days: [], onlyStale: false });
    await assert.rejects(
      engine.run({ trigger: "manual", days: [], onlyStale: false }),
      (e: Error & { code?: string }) => e.code === "TRB_BATCH_BUSY",
    );
    assert.equal((await first)?.run.status, "succeeded");
    const runs = (await catalog.runs(10)).length;
    assert.equal(await engine.run({ trigger: "backfill", days: ["2001-01-01"] }), undefined);
    assert.equal((await catalog.runs(10)).length, runs, "no run recorded");
  });

  test("the schedule builds what is missing, then stays idle while everything is fresh", async () => {
    const { engine, catalog } = await open(project());
    const scheduler = new BatchScheduler(engine, "* * * * * *", "UTC", log);
    try {
      let runs = await catalog.runs(10);
      const finished = (): boolean => runs.length > 0 && runs[0]!.status !== "running";
      for (let waited = 0; !finished() && waited < 10_000; waited += 100) {
        await new Promise((r) => setTimeout(r, 100));
        runs = await catalog.runs(10);
      }
      assert.equal(runs.length, 1, "a scheduled run built the missing table");
      assert.equal(runs[0]!.trigger, "schedule");
      assert.equal(runs[0]!.status, "succeeded");
      await new Promise((r) => setTimeout(r, 2_200));
      assert.equal((await catalog.runs(10)).length, 1, "no run while everything is fresh");
    } finally {
      await scheduler.stop();
    }
  });
});
