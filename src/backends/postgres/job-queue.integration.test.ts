// Runs the JobQueue contract suite against PostgreSQL (pg-boss), plus two instances taking at once as two worker processes would.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { jobQueueContract } from "../contracts/job-queue.case.js";
import type { JobQueue } from "../contracts/index.js";
import { PostgresJobQueue } from "./job-queue.js";
import { PG_URL, testSchemas } from "./pg.test-util.js";

const URL = PG_URL;
const { schemaFor } = testSchemas("trb_jobs");

// Instances made on one folder share a schema: the crash and restart cases run as written.
jobQueueContract("PostgresJobQueue", (dir) =>
  PostgresJobQueue.open({ url: URL, schema: schemaFor(dir) }),
);

test("two instances (two worker processes) take at once: each job runs once", async (t) => {
  const schema = schemaFor(`two-workers-${randomBytes(4).toString("hex")}`);
  const workers: JobQueue[] = [];
  t.after(async () => {
    for (const w of workers) await w.close();
  });
  for (let i = 0; i < 2; i++) workers.push(await PostgresJobQueue.open({ url: URL, schema }));
  const [scheduler] = workers as [JobQueue, JobQueue];
  const queue = "batch";
  const total = 300;
  await scheduler.enqueue(
    queue,
    Array.from({ length: total }, (_, i) => ({ key: `model/${i}`, payload: { i } })),
  );
  const runs = new Map<string, number>();
  const byWorker = [0, 0];
  let completed = 0;
  const deadline = Date.now() + 30_000;
  // Two takers per instance, on each instance's own pool: four concurrent FOR UPDATE SKIP LOCKED
  // fetches over two sets of connections.
  const taker = async (w: number): Promise<void> => {
    while (completed < total) {
      assert.ok(Date.now() < deadline, `only ${completed} of ${total} jobs completed`);
      const leases = await workers[w]!.take(queue, { max: 5, leaseMs: 60_000, waitMs: 100 });
      for (const lease of leases) {
        runs.set(lease.key, (runs.get(lease.key) ?? 0) + 1);
        byWorker[w]! += 1;
        assert.equal(await workers[w]!.complete(lease), true);
        completed += 1;
      }
    }
  };
  await Promise.all([taker(0), taker(1), taker(0), taker(1)]);
  assert.equal(runs.size, total);
  assert.deepEqual(
    [...runs].filter(([, n]) => n !== 1),
    [],
    "no job ran twice",
  );
  assert.ok(
    byWorker.every((n) => n > 0),
    `both instances took jobs (${byWorker.join(" and ")})`,
  );
  const status = await workers[1]!.status(queue, [...runs.keys()]);
  assert.equal(
    [...status.values()].filter((s) => s.state === "completed" && s.attempts === 1).length,
    total,
  );
});

test("the schema name is checked before connecting", async () => {
  await assert.rejects(
    PostgresJobQueue.open({ url: URL, schema: "Bad-Name" }),
    (e: unknown) => (e as { code?: string }).code === "TRB_CONFIG_INVALID",
  );
});
