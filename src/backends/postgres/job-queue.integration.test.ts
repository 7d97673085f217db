// Runs the JobQueue contract suite against PostgreSQL (pg-boss), plus two instances taking at once as two worker processes would.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, test } from "node:test";
import pg from "pg";
import { jobQueueContract } from "../contracts/job-queue.case.js";
import type { JobQueue } from "../contracts/index.js";
import { PostgresJobQueue } from "./job-queue.js";

/** The server under test; CI starts it on the default port. A failure to connect fails the test. */
const URL = process.env.TRIBUTARY_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** Every schema this run makes, all named `<RUN>_<n>`, dropped when the file is done. */
const RUN = `trb_jobs_${randomBytes(4).toString("hex")}`;
const schemas = new Map<string, string>();

/** A schema of its own for `key` (the contract's folder, or a test), the same on every call. */
function schemaFor(key: string): string {
  let schema = schemas.get(key);
  if (schema === undefined) {
    schema = `${RUN}_${schemas.size + 1}`;
    schemas.set(key, schema);
  }
  return schema;
}

after(async () => {
  const admin = new pg.Client({ connectionString: URL });
  await admin.connect();
  try {
    for (const schema of schemas.values())
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await admin.end();
  }
});

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
